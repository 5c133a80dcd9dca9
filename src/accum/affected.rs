//! "Does this affect my training?": from the target-token counts of a
//! reader's examples and their B, b and R, how much weight naive and `local`
//! accumulation give each example's tokens against corrected's, with no
//! training. The CLI (`gradlab affected`) and the page (www/lab/affected.js,
//! through the wasm API's `tokenWeightsFor`) both call `token_weights_for`,
//! so they cannot disagree.
//!
//! How examples meet the trainer (docs/DESIGN.md §1): the lengths are taken
//! in the order given; each run of B consecutive examples is one optimizer
//! step, and a tail shorter than B is left out (a trainer never steps on a
//! partial batch); within a step, consecutive groups of b examples are the
//! G = B/b micro-batches, and rank r holds micro-batches r·G/R … (r+1)·G/R − 1.
//! The statistics are over the tokens of every step.
//!
//! A token's weight in the gradient is its dlogits scale, one over what the
//! trainer divides its micro-batch by (`super::scale_denominator`, the one
//! place strategies differ): N under corrected (target tokens of the whole
//! step), G·N_g under naive (N_g: those of its micro-batch), R·N_r under local
//! (N_r: those of its rank, micro-batches accumulated correctly within the
//! rank, ranks averaged). Reported here as the ratio to corrected's weight,
//! N over that denominator, one division of whole numbers so that an exact
//! ratio (2.5, 1) prints exactly; a test holds them to the trainer's f32
//! scales.

use serde::{Deserialize, Serialize};

use super::{scale_denominator, Strategy};

/// A ratio further than this from 1 counts as "off by more than 10%".
pub const OFF_BY: f64 = 0.1;

/// Ratios closer than this to 1 are 1: naive is the corrected weighting
/// exactly when every micro-batch holds the same count, and then the ratio
/// N/(G·N_g) is exactly 1 anyway; the slack only keeps `off` honest at 1.1.
const SAME: f64 = 1e-12;

/// Where the histogram's bins of ratio meet: under-weighted below 0.9,
/// within 10% up to 1.1, over-weighted above.
const BIN_EDGES: [f64; 6] = [0.5, 0.8, 1.0 - OFF_BY, 1.0 + OFF_BY, 1.25, 2.0];

/// What the reader gives: their examples' target-token counts in order, B,
/// b and R. `batch` left out is the number of lengths (one step of all of
/// them); `ranks` left out is 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AffectedSettings {
    pub lengths: Vec<usize>,
    #[serde(default)]
    pub batch: Option<usize>,
    pub micro_batch: usize,
    #[serde(default)]
    pub ranks: Option<usize>,
}

/// Bad input, naming the setting as the CLI spells its flag (`batch`,
/// `micro-batch`, `ranks`, `lengths`); the page maps the name to its label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AffectedError {
    pub field: &'static str,
    pub reason: String,
}

impl std::fmt::Display for AffectedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for AffectedError {}

fn bad(field: &'static str, reason: impl Into<String>) -> AffectedError {
    AffectedError { field, reason: reason.into() }
}

/// Where one example sits in the steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Placement {
    pub step: usize,
    /// g within the step, 0 … G−1.
    pub micro_batch: usize,
    pub rank: usize,
}

/// One histogram bin: the share of all tokens whose ratio lies in
/// [from, to) below 1 − 10%, in [0.9, 1.1] (within 10%), in (from, to]
/// above; `to` null is unbounded.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RatioBin {
    pub from: f64,
    pub to: Option<f64>,
    pub share_of_tokens: f64,
}

/// One strategy's weights summed up over every token.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeightSummary {
    /// True when every token weighs what corrected gives it.
    pub exact: bool,
    /// The smallest and largest ratio of any token (1 where there is none).
    pub min_ratio: f64,
    pub max_ratio: f64,
    /// The ratio furthest from 1 (by factor: 0.5 and 2 are as far), and the
    /// example (index into the lengths) whose tokens have it.
    pub worst_ratio: f64,
    pub worst_example: Option<usize>,
    /// Tokens whose ratio is more than 10% from 1, as a share of all tokens.
    pub share_of_tokens_off_by_more_than_10_percent: f64,
    pub share_of_tokens_over: f64,
    pub share_of_tokens_under: f64,
    pub histogram: Vec<RatioBin>,
}

/// The answer, as `gradlab affected --json` prints it and the page receives
/// it. `naive` and `local` hold, per example, its tokens' weight over
/// corrected's (null for an example with no target tokens: nothing to weigh).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Affected {
    pub batch: usize,
    pub micro_batch: usize,
    pub ranks: usize,
    /// G = B/b, over all ranks.
    pub micro_batches_per_step: usize,
    pub micro_batches_per_rank: usize,
    pub steps: usize,
    /// Examples past the last whole step, left out of everything below.
    pub examples_left_over: usize,
    /// The counts of the examples used, in order.
    pub lengths: Vec<usize>,
    pub tokens: usize,
    pub naive: Vec<Option<f64>>,
    pub local: Vec<Option<f64>>,
    pub placement: Vec<Placement>,
    pub summary: Summaries,
    pub verdict: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summaries {
    pub naive: WeightSummary,
    pub local: WeightSummary,
}

/// Each example's token weight under naive and local against corrected's,
/// with the examples cut into steps, micro-batches and ranks as the module
/// comment says.
pub fn token_weights_for(settings: &AffectedSettings) -> Result<Affected, AffectedError> {
    let lengths = &settings.lengths;
    if lengths.is_empty() {
        return Err(bad("lengths", "no examples given; give at least one target-token count"));
    }
    let batch = settings.batch.unwrap_or(lengths.len());
    let micro_batch = settings.micro_batch;
    let ranks = settings.ranks.unwrap_or(1);
    if batch == 0 {
        return Err(bad("batch", "must be at least 1 sequence per optimizer step"));
    }
    if micro_batch == 0 {
        return Err(bad("micro-batch", "must be at least 1 sequence per micro-batch"));
    }
    if ranks == 0 {
        return Err(bad("ranks", "must be at least 1 device"));
    }
    if !batch.is_multiple_of(micro_batch) {
        return Err(bad(
            "micro-batch",
            format!("{micro_batch} does not divide the batch B = {batch}; B must be a whole number of micro-batches"),
        ));
    }
    let micro_batches_per_step = batch / micro_batch;
    if !micro_batches_per_step.is_multiple_of(ranks) {
        return Err(bad(
            "ranks",
            format!(
                "{ranks} ranks cannot share G = B/b = {micro_batches_per_step} micro-batches evenly; G must be a multiple of R"
            ),
        ));
    }
    if lengths.len() < batch {
        return Err(bad(
            "lengths",
            format!("{} examples are fewer than one step of B = {batch}; give at least {batch}", lengths.len()),
        ));
    }
    let micro_batches_per_rank = micro_batches_per_step / ranks;
    let steps = lengths.len() / batch;
    let used = &lengths[..steps * batch];

    let mut naive = Vec::with_capacity(used.len());
    let mut local = Vec::with_capacity(used.len());
    let mut placement = Vec::with_capacity(used.len());
    for (step, examples) in used.chunks(batch).enumerate() {
        let tokens_in_accumulated_batch: usize = examples.iter().sum();
        if tokens_in_accumulated_batch == 0 {
            return Err(bad(
                "lengths",
                format!(
                    "step {step} (examples {} to {}) has no target tokens at all; a trainer would divide by zero",
                    step * batch,
                    step * batch + batch - 1
                ),
            ));
        }
        let tokens_per_micro_batch: Vec<usize> = examples.chunks(micro_batch).map(|m| m.iter().sum()).collect();
        let tokens_per_rank: Vec<usize> =
            tokens_per_micro_batch.chunks(micro_batches_per_rank).map(|r| r.iter().sum()).collect();
        for (i, &tokens) in examples.iter().enumerate() {
            let g = i / micro_batch;
            let rank = g / micro_batches_per_rank;
            placement.push(Placement { step, micro_batch: g, rank });
            // against corrected's 1/N, what the trainer divides this micro-batch by
            let ratio = |strategy: Strategy| {
                let denominator = scale_denominator(
                    strategy,
                    tokens_per_micro_batch[g],
                    tokens_per_rank[rank],
                    micro_batches_per_rank,
                    ranks,
                    tokens_in_accumulated_batch,
                );
                (tokens > 0).then(|| tokens_in_accumulated_batch as f64 / denominator as f64)
            };
            naive.push(ratio(Strategy::Naive));
            local.push(ratio(Strategy::Local));
        }
    }

    let summary = Summaries { naive: summarise(used, &naive), local: summarise(used, &local) };
    let verdict = verdict(&summary, ranks);
    Ok(Affected {
        batch,
        micro_batch,
        ranks,
        micro_batches_per_step,
        micro_batches_per_rank,
        steps,
        examples_left_over: lengths.len() - used.len(),
        lengths: used.to_vec(),
        tokens: used.iter().sum(),
        naive,
        local,
        placement,
        summary,
        verdict,
    })
}

fn off(ratio: f64) -> bool {
    (ratio - 1.0).abs() > OFF_BY + SAME
}

fn summarise(lengths: &[usize], ratios: &[Option<f64>]) -> WeightSummary {
    let total: usize = lengths.iter().sum();
    let share = |tokens: usize| tokens as f64 / total.max(1) as f64;
    let (mut off_tokens, mut over, mut under) = (0, 0, 0);
    let mut bins = vec![0usize; BIN_EDGES.len() + 1];
    let (mut min_ratio, mut max_ratio) = (f64::INFINITY, f64::NEG_INFINITY);
    let (mut worst_ratio, mut worst_example) = (1.0f64, None);
    for (i, (&n, &r)) in lengths.iter().zip(ratios).enumerate() {
        // an example with no target tokens has no weight to be wrong
        let Some(r) = r else { continue };
        min_ratio = min_ratio.min(r);
        max_ratio = max_ratio.max(r);
        if r.ln().abs() > worst_ratio.ln().abs() + SAME {
            (worst_ratio, worst_example) = (r, Some(i));
        }
        if off(r) {
            off_tokens += n;
        }
        if r > 1.0 + SAME {
            over += n;
        } else if r < 1.0 - SAME {
            under += n;
        }
        bins[bin_of(r)] += n;
    }
    let exact = worst_example.is_none();
    if !min_ratio.is_finite() {
        (min_ratio, max_ratio) = (1.0, 1.0);
    }
    let mut from = 0.0;
    let histogram = bins
        .iter()
        .enumerate()
        .map(|(k, &n)| {
            let to = BIN_EDGES.get(k).copied();
            let bin = RatioBin { from, to, share_of_tokens: share(n) };
            from = to.unwrap_or(f64::INFINITY);
            bin
        })
        .collect();
    WeightSummary {
        exact,
        min_ratio,
        max_ratio,
        worst_ratio,
        worst_example,
        share_of_tokens_off_by_more_than_10_percent: share(off_tokens),
        share_of_tokens_over: share(over),
        share_of_tokens_under: share(under),
        histogram,
    }
}

/// The bin of `ratio`: the edges below 1 close their bin on the left, those
/// above 1 on the right, so that 0.9 and 1.1 both fall within 10%.
fn bin_of(ratio: f64) -> usize {
    let (low, high) = (1.0 - OFF_BY, 1.0 + OFF_BY);
    if !off(ratio) {
        return BIN_EDGES.iter().position(|&e| e == high).unwrap_or(0);
    }
    if ratio < low {
        BIN_EDGES.iter().position(|&e| ratio < e).unwrap_or(0)
    } else {
        BIN_EDGES.iter().position(|&e| ratio <= e).unwrap_or(BIN_EDGES.len())
    }
}

/// A ratio as the verdict and the CLI print it: three significant figures.
pub fn format_ratio(ratio: f64) -> String {
    let digits = if ratio >= 100.0 {
        0
    } else if ratio >= 10.0 {
        1
    } else if ratio >= 1.0 {
        2
    } else {
        3
    };
    format!("{ratio:.digits$}×")
}

/// A share of tokens as a percentage, never rounded to 0% or 100% unless it is.
pub fn format_share(share: f64) -> String {
    let percent = share * 100.0;
    if percent > 0.0 && percent < 0.1 {
        "under 0.1%".into()
    } else if percent < 100.0 && percent > 99.9 {
        "over 99.9%".into()
    } else {
        format!("{percent:.1}%").replace(".0%", "%")
    }
}

fn describe(name: &str, s: &WeightSummary) -> String {
    if s.exact {
        return format!("{name} weighs every token exactly as corrected does");
    }
    let range = format!("{} to {}", format_ratio(s.min_ratio), format_ratio(s.max_ratio));
    if s.share_of_tokens_off_by_more_than_10_percent == 0.0 {
        format!("{name} moves token weights a little ({range}), none by more than 10%")
    } else {
        format!(
            "{name} weighs {} of your tokens more than 10% off corrected ({range})",
            format_share(s.share_of_tokens_off_by_more_than_10_percent)
        )
    }
}

fn verdict(s: &Summaries, ranks: usize) -> String {
    let off = |w: &WeightSummary| w.share_of_tokens_off_by_more_than_10_percent > 0.0;
    let lead = if off(&s.naive) || off(&s.local) {
        "Yes"
    } else if !s.naive.exact || !s.local.exact {
        "Slightly"
    } else {
        "No"
    };
    let local = if ranks == 1 { "local is corrected on one device".to_string() } else { describe("local", &s.local) };
    format!("{lead}: {}; {local}.", describe("naive", &s.naive))
}

/// How `lengths_from_text` counts an example's target tokens in JSONL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum CountUnit {
    /// gradlab's tokens: UTF-8 bytes. A sequence of n bytes has n − 1
    /// targets; with a masked prompt of p ≥ 1 bytes, n − p
    /// (`train::Batch::tokens`).
    #[default]
    Bytes,
    /// Whitespace-separated words of the counted text, a rough stand-in for a
    /// subword tokenizer's count.
    Words,
}

/// The examples' target-token counts from a file's or a text box's text,
/// `field` naming where it came from in errors. JSONL (the first non-blank
/// character is `{`): one object a line, blank lines skipped, counted from
/// its `messages` ([{role, content}]), else `prompt` and `completion`, else
/// `text`; with `mask_prompt` only the completion, or the assistant
/// messages, count. Anything else: whole numbers separated by commas or
/// white space.
pub fn lengths_from_text(
    text: &str,
    field: &'static str,
    mask_prompt: bool,
    unit: CountUnit,
) -> Result<Vec<usize>, AffectedError> {
    if text.trim_start().starts_with('{') {
        return text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty())
            .map(|(i, line)| {
                jsonl_targets(line, mask_prompt, unit).map_err(|why| bad(field, format!("line {}: {why}", i + 1)))
            })
            .collect();
    }
    let lengths = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|item| !item.is_empty())
        .enumerate()
        .map(|(i, item)| {
            item.parse::<usize>().map_err(|_| {
                bad(field, format!("item {} is \"{item}\", not a whole number of target tokens (0 or more)", i + 1))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if lengths.is_empty() {
        return Err(bad(field, "holds no numbers; give target-token counts separated by commas or spaces"));
    }
    Ok(lengths)
}

fn jsonl_targets(line: &str, mask_prompt: bool, unit: CountUnit) -> Result<usize, String> {
    use serde_json::Value;
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON ({e})"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let string = |key: &str| -> Result<Option<&str>, String> {
        match object.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(format!("\"{key}\" is not a string")),
        }
    };
    // (prompt, the part that is trained on)
    let (prompt, answer): (String, String) = if let Some(messages) = object.get("messages") {
        let messages = messages.as_array().ok_or("\"messages\" is not a list")?;
        let (mut prompt, mut answer) = (String::new(), String::new());
        for (k, m) in messages.iter().enumerate() {
            let content =
                m.get("content").and_then(Value::as_str).ok_or(format!("messages[{k}] has no string \"content\""))?;
            if m.get("role").and_then(Value::as_str) == Some("assistant") {
                answer.push_str(content);
            } else {
                prompt.push_str(content);
            }
        }
        (prompt, answer)
    } else if let Some(completion) = string("completion")? {
        (string("prompt")?.unwrap_or("").to_string(), completion.to_string())
    } else if let Some(text) = string("text")? {
        (String::new(), text.to_string())
    } else {
        return Err("has none of the fields \"messages\", \"prompt\" + \"completion\", \"text\"".into());
    };
    Ok(match unit {
        CountUnit::Words if mask_prompt => answer.split_whitespace().count(),
        CountUnit::Words => prompt.split_whitespace().count() + answer.split_whitespace().count(),
        CountUnit::Bytes if mask_prompt && !prompt.is_empty() => answer.len(),
        CountUnit::Bytes => (prompt.len() + answer.len()).saturating_sub(1),
    })
}

#[cfg(test)]
mod tests {
    use super::super::scales;
    use super::*;

    fn settings(lengths: &[usize], batch: Option<usize>, micro_batch: usize, ranks: usize) -> AffectedSettings {
        AffectedSettings { lengths: lengths.to_vec(), batch, micro_batch, ranks: Some(ranks) }
    }

    #[test]
    fn two_examples_one_a_micro_batch() {
        // N = 15, G = 2: naive gives 1/(2·3) and 1/(2·12) against 1/15
        let a = token_weights_for(&settings(&[3, 12], None, 1, 1)).unwrap();
        assert_eq!((a.batch, a.micro_batches_per_step, a.steps), (2, 2, 1));
        assert_eq!(a.naive, vec![Some(2.5), Some(0.625)]);
        assert_eq!(a.local, vec![Some(1.0), Some(1.0)]);
        let n = &a.summary.naive;
        assert_eq!((n.min_ratio, n.max_ratio, n.worst_ratio, n.worst_example), (0.625, 2.5, 2.5, Some(0)));
        assert_eq!(n.share_of_tokens_off_by_more_than_10_percent, 1.0);
        assert_eq!((n.share_of_tokens_over, n.share_of_tokens_under), (0.2, 0.8));
        assert!(a.summary.local.exact);
        assert!(a.verdict.starts_with("Yes: naive weighs 100% of your tokens"), "{}", a.verdict);
        let in_bins: f64 = n.histogram.iter().map(|b| b.share_of_tokens).sum();
        assert!((in_bins - 1.0).abs() < 1e-12);
        assert_eq!(n.histogram.last().unwrap().share_of_tokens, 0.2, "2.5 is above 2");
        assert_eq!(n.histogram[1].share_of_tokens, 0.8, "0.625 is in [0.5, 0.8)");
    }

    #[test]
    fn two_ranks_worked_by_hand() {
        // B = 4, b = 1, R = 2: micro-batches [2], [6] on rank 0 (N_0 = 8),
        // [4], [8] on rank 1 (N_1 = 12); N = 20, G = 4.
        // naive: N/(G·N_g) = 20/8, 20/24, 20/16, 20/32
        // local: N/(R·N_r) = 20/16 on rank 0, 20/24 on rank 1
        let a = token_weights_for(&settings(&[2, 6, 4, 8], None, 1, 2)).unwrap();
        assert_eq!(a.naive, vec![Some(2.5), Some(20.0 / 24.0), Some(1.25), Some(0.625)]);
        assert_eq!(a.local, vec![Some(1.25), Some(1.25), Some(20.0 / 24.0), Some(20.0 / 24.0)]);
        let ranks: Vec<usize> = a.placement.iter().map(|p| p.rank).collect();
        assert_eq!(ranks, vec![0, 0, 1, 1]);
        // every local ratio is 25% or 17% off: all 20 tokens
        assert_eq!(a.summary.local.share_of_tokens_off_by_more_than_10_percent, 1.0);
        assert_eq!(a.summary.local.share_of_tokens_over, 0.4);
        // the tokens carry the same total weight under every strategy
        let total = |r: &[Option<f64>]| a.lengths.iter().zip(r).map(|(&n, r)| n as f64 * r.unwrap()).sum::<f64>();
        assert!((total(&a.naive) - 20.0).abs() < 1e-12 && (total(&a.local) - 20.0).abs() < 1e-12);
    }

    #[test]
    fn equal_counts_weigh_every_token_as_corrected_does() {
        let a = token_weights_for(&settings(&[7; 16], Some(8), 2, 2)).unwrap();
        assert_eq!(a.steps, 2);
        assert!(a.naive.iter().chain(&a.local).all(|&r| r == Some(1.0)));
        assert!(a.summary.naive.exact && a.summary.local.exact);
        assert_eq!(a.summary.naive.share_of_tokens_off_by_more_than_10_percent, 0.0);
        assert!(a.verdict.starts_with("No:"), "{}", a.verdict);
    }

    #[test]
    fn ratios_are_the_trainers_scales_over_corrected() {
        // the trainer's f32 scales, step by step, over a mix of counts,
        // micro-batch sizes and ranks
        let lengths: Vec<usize> = (0..48).map(|i| 1 + (i * 37 + 11) % 53).collect();
        for (batch, micro_batch, ranks) in [(8, 1, 1), (8, 2, 2), (16, 2, 4), (12, 3, 2), (48, 4, 3)] {
            let a = token_weights_for(&settings(&lengths, Some(batch), micro_batch, ranks)).unwrap();
            for (s, step) in lengths.chunks(batch).enumerate() {
                let per_micro_batch: Vec<usize> = step.chunks(micro_batch).map(|m| m.iter().sum()).collect();
                let n: usize = step.iter().sum();
                for (strategy, ratios) in [(Strategy::Naive, &a.naive), (Strategy::Local, &a.local)] {
                    let trainer = scales(strategy, &per_micro_batch, ranks);
                    for i in 0..batch {
                        let ours = ratios[s * batch + i].unwrap() / n as f64;
                        let theirs = trainer[i / micro_batch] as f64;
                        assert!(
                            (ours - theirs).abs() <= 1e-7 * theirs,
                            "{strategy:?} B={batch} b={micro_batch} R={ranks}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn a_tail_shorter_than_a_step_is_left_out_and_empty_examples_weigh_nothing() {
        let a = token_weights_for(&settings(&[4, 0, 4, 4, 9], Some(2), 1, 1)).unwrap();
        assert_eq!((a.steps, a.examples_left_over), (2, 1));
        assert_eq!(a.naive, vec![Some(0.5), None, Some(1.0), Some(1.0)]);
        assert_eq!(a.summary.naive.share_of_tokens_off_by_more_than_10_percent, 4.0 / 12.0);
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let field = |s: AffectedSettings| token_weights_for(&s).unwrap_err().field;
        assert_eq!(field(settings(&[], None, 1, 1)), "lengths");
        assert_eq!(field(settings(&[1, 2, 3], None, 2, 1)), "micro-batch");
        assert_eq!(field(settings(&[1, 2, 3, 4], None, 2, 3)), "ranks");
        assert_eq!(field(settings(&[1, 2], Some(4), 1, 1)), "lengths");
        assert_eq!(field(settings(&[1, 2], Some(0), 1, 1)), "batch");
        assert_eq!(field(settings(&[0, 0], None, 1, 1)), "lengths");
        assert_eq!(field(settings(&[1, 2], None, 0, 1)), "micro-batch");
        assert_eq!(field(settings(&[1, 2], None, 1, 0)), "ranks");
    }

    #[test]
    fn lengths_from_numbers_and_jsonl() {
        assert_eq!(lengths_from_text("3, 12\n7 0", "lengths", false, CountUnit::Bytes).unwrap(), vec![3, 12, 7, 0]);
        let e = lengths_from_text("3,x,4", "lengths-file", false, CountUnit::Bytes).unwrap_err();
        assert_eq!(e.field, "lengths-file");
        assert!(e.reason.contains("item 2 is \"x\""), "{e}");
        assert!(lengths_from_text("3,-1", "lengths", false, CountUnit::Bytes).is_err());
        assert!(lengths_from_text(" \n", "lengths", false, CountUnit::Bytes).is_err());
        let jsonl = concat!(
            "{\"text\": \"hello\"}\n",
            "\n",
            "{\"prompt\": \"Q: 2+2?\", \"completion\": \" 4\"}\n",
            "{\"messages\": [{\"role\": \"user\", \"content\": \"hi there\"}, {\"role\": \"assistant\", \"content\": \"hello you\"}]}\n",
        );
        // bytes: a sequence of n has n − 1 targets; a masked prompt leaves the answer's
        assert_eq!(lengths_from_text(jsonl, "lengths-file", false, CountUnit::Bytes).unwrap(), vec![4, 8, 16]);
        assert_eq!(lengths_from_text(jsonl, "lengths-file", true, CountUnit::Bytes).unwrap(), vec![4, 2, 9]);
        assert_eq!(lengths_from_text(jsonl, "lengths-file", false, CountUnit::Words).unwrap(), vec![1, 3, 4]);
        assert_eq!(lengths_from_text(jsonl, "lengths-file", true, CountUnit::Words).unwrap(), vec![1, 1, 2]);
        let e =
            lengths_from_text("{\"text\": 1}\n{\"nope\": \"x\"}", "lengths-file", false, CountUnit::Bytes).unwrap_err();
        assert!(e.reason.starts_with("line 1: \"text\" is not a string"), "{e}");
        let e = lengths_from_text("{\"text\": \"a\"}\n{\"nope\": \"x\"}", "lengths-file", false, CountUnit::Bytes)
            .unwrap_err();
        assert!(e.reason.starts_with("line 2: has none"), "{e}");
    }

    #[test]
    fn formats() {
        assert_eq!(format_ratio(2.5), "2.50×");
        assert_eq!(format_ratio(0.625), "0.625×");
        assert_eq!(format_share(1.0), "100%");
        assert_eq!(format_share(0.123), "12.3%");
        assert_eq!(format_share(0.0004), "under 0.1%");
    }
}
