//! `affected`: "does this affect my training?" without training. From the
//! target-token counts of a reader's examples, B, b and R, how much naive and
//! `local` accumulation over- or under-weight each example's tokens against
//! corrected's; the numbers are `gradlab::accum::affected`'s, the same the
//! page's calculator shows.

use std::path::PathBuf;

use gradlab::accum::affected::{
    format_ratio, format_share, lengths_from_text, token_weights_for, Affected, AffectedError, AffectedSettings,
    CountUnit, WeightSummary,
};

use crate::common::AnyError;

/// Examples are taken in the order given: each B in a row make one optimizer
/// step (a shorter tail is left out), each b in a row one micro-batch, and
/// rank r holds micro-batches r·G/R … (r+1)·G/R − 1 of every step.
#[derive(clap::Args)]
pub struct Args {
    /// Target-token counts of the examples, in order, comma-separated (0 is
    /// allowed: an example whose every token is masked).
    #[arg(long, value_name = "N,N,…", conflicts_with = "lengths_file")]
    lengths: Option<String>,
    /// A file of counts (whole numbers separated by commas or white space)
    /// or a JSONL file (one object a line, counted from its "messages", else
    /// "prompt" + "completion", else "text").
    #[arg(long, value_name = "PATH")]
    lengths_file: Option<PathBuf>,
    /// B: sequences per optimizer step [default: the number of counts given].
    #[arg(long)]
    batch: Option<usize>,
    /// b: sequences per micro-batch (G = B/b micro-batches a step).
    #[arg(long, default_value_t = 1)]
    micro_batch: usize,
    /// R: devices (data-parallel ranks); must divide G.
    #[arg(long, default_value_t = 1)]
    ranks: usize,
    /// JSONL: count only the completion (or the assistant messages), as a
    /// fine-tuning run that masks its prompts trains on.
    #[arg(long)]
    mask_prompt: bool,
    /// JSONL: count bytes (gradlab's tokens: n bytes make n − 1 targets) or
    /// whitespace-separated words (closer to a subword tokenizer's count).
    #[arg(long, value_enum, default_value_t = Unit::Bytes)]
    count: Unit,
    /// Print the whole answer as JSON (what the page's calculator receives).
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Unit {
    Bytes,
    Words,
}

/// Rows of the per-example table printed without --json before it is cut.
const ROWS_SHOWN: usize = 40;

pub fn run(args: Args) -> Result<(), AnyError> {
    let unit = match args.count {
        Unit::Bytes => CountUnit::Bytes,
        Unit::Words => CountUnit::Words,
    };
    let flag = |e: AffectedError| format!("--{}: {}", e.field, e.reason);
    let (lengths, source) = match (&args.lengths, &args.lengths_file) {
        (Some(list), _) => (lengths_from_text(list, "lengths", args.mask_prompt, unit).map_err(flag)?, "lengths"),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--lengths-file: cannot read {}: {e}", path.display()))?;
            (lengths_from_text(&text, "lengths-file", args.mask_prompt, unit).map_err(flag)?, "lengths-file")
        }
        (None, None) => return Err("--lengths or --lengths-file: give the examples' target-token counts".into()),
    };
    let settings =
        AffectedSettings { lengths, batch: args.batch, micro_batch: args.micro_batch, ranks: Some(args.ranks) };
    let affected = token_weights_for(&settings).map_err(|e| {
        // the counts' errors name the flag they came in by
        flag(AffectedError { field: if e.field == "lengths" { source } else { e.field }, reason: e.reason })
    })?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&affected)?);
    } else {
        print_table(&affected);
    }
    Ok(())
}

fn print_table(a: &Affected) {
    println!(
        "B = {} sequences a step, b = {} (G = {} micro-batches), R = {} rank{}: {} step{}, {} examples, {} target tokens{}",
        a.batch,
        a.micro_batch,
        a.micro_batches_per_step,
        a.ranks,
        if a.ranks == 1 { "" } else { "s" },
        a.steps,
        if a.steps == 1 { "" } else { "s" },
        a.lengths.len(),
        a.tokens,
        if a.examples_left_over > 0 {
            let n = a.examples_left_over;
            format!(" ({n} example{} past the last whole step left out)", if n == 1 { "" } else { "s" })
        } else {
            String::new()
        },
    );
    println!("Each example's token weight over corrected's (1/N, N the step's target tokens):");
    println!(
        "{:>8} {:>5} {:>6} {:>5} {:>7} {:>8} {:>8}",
        "example", "step", "micro", "rank", "tokens", "naive", "local"
    );
    let shown = |r: Option<f64>| r.map_or("-".to_string(), format_ratio);
    for (i, p) in a.placement.iter().enumerate().take(ROWS_SHOWN) {
        println!(
            "{i:>8} {:>5} {:>6} {:>5} {:>7} {:>8} {:>8}",
            p.step,
            p.micro_batch,
            p.rank,
            a.lengths[i],
            shown(a.naive[i]),
            shown(a.local[i])
        );
    }
    if a.placement.len() > ROWS_SHOWN {
        println!("(the first {ROWS_SHOWN} of {} examples; --json prints them all)", a.placement.len());
    }
    println!("{:>8} {:>10} {:>10} {:>10} {:>26}", "", "worst", "lowest", "highest", "tokens off by more than 10%");
    let line = |name: &str, s: &WeightSummary| {
        println!(
            "{name:>8} {:>10} {:>10} {:>10} {:>26}",
            format_ratio(s.worst_ratio),
            format_ratio(s.min_ratio),
            format_ratio(s.max_ratio),
            format_share(s.share_of_tokens_off_by_more_than_10_percent)
        )
    };
    line("naive", &a.summary.naive);
    line("local", &a.summary.local);
    println!("{}", a.verdict);
}
