//! The ways of taking one step on a batch split into micro-batches (and,
//! data-parallel, across ranks), and the one function where they differ: the
//! scale handed to the cross-entropy backward of each micro-batch (see
//! docs/DESIGN.md §1).
//!
//! With ℓ_t a token's loss, N_g the real targets of micro-batch g, N_r those
//! of rank r (its G micro-batches), N = Σ N_g, and R ranks whose gradients are
//! averaged as data-parallel training does:
//! - full batch: one micro-batch on one device, loss Σ ℓ / N, scale 1/N;
//! - naive: each micro-batch's mean, averaged over micro-batches and ranks:
//!   scale 1/(R·G·N_g) — tokens of short micro-batches weigh more;
//! - local: each rank divides by its own count, ranks averaged: scale
//!   1/(R·N_r) — right on one device, wrong across ranks of unequal counts;
//! - corrected: every token divided by the global N, counted over all ranks
//!   before the first backward: scale 1/N (R·1/N on each rank, averaged).
//!
//! Nothing else in the crate knows which strategy is running; `affected`
//! asks `scale_denominator` what each strategy divides by.

use serde::{Deserialize, Serialize};

pub mod affected;

/// Serialised by the same name it prints as (`full`, `naive`, `local`,
/// `corrected`), so the page's CSV and the CLI's agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    #[serde(rename = "full")]
    FullBatch,
    Naive,
    Local,
    Corrected,
}

impl Strategy {
    pub const ALL: [Strategy; 4] = [Strategy::FullBatch, Strategy::Naive, Strategy::Local, Strategy::Corrected];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::FullBatch => "full",
            Strategy::Naive => "naive",
            Strategy::Local => "local",
            Strategy::Corrected => "corrected",
        }
    }

    /// How the page names and draws this strategy's runs (www/lab/charts.js
    /// and sweepcharts.js, through the wasm API's `strategies()`). A match
    /// without a default arm: a new strategy does not compile until it has
    /// a colour.
    pub fn style(self) -> StrategyStyle {
        match self {
            Strategy::FullBatch => StrategyStyle { label: "full batch", colour: "#6b7280", shades: &[], dashed: false },
            Strategy::Naive => StrategyStyle {
                label: "naive",
                colour: "#dc2626",
                shades: &["#fca5a5", "#f87171", "#dc2626", "#991b1b", "#450a0a"],
                dashed: false,
            },
            Strategy::Local => StrategyStyle {
                label: "local",
                colour: "#d97706",
                shades: &["#fcd34d", "#f59e0b", "#d97706", "#92400e", "#451a03"],
                dashed: false,
            },
            Strategy::Corrected => StrategyStyle {
                label: "corrected",
                colour: "#2563eb",
                shades: &["#93c5fd", "#60a5fa", "#2563eb", "#1e40af", "#172554"],
                dashed: true,
            },
        }
    }
}

/// A strategy's display metadata, kept beside the strategy so that a new one
/// brings its own (`Strategy::style`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct StrategyStyle {
    /// Its runs' name in legends and tables; the page adds b (the micro-batch
    /// size) to every run but the full batch's.
    pub label: &'static str,
    /// Its curves' colour (CSS).
    pub colour: &'static str,
    /// In the G sweep, one curve per G in these, light for the smallest G,
    /// dark for the largest; empty where a strategy has one G (the full
    /// batch), which is drawn in `colour`.
    pub shades: &'static [&'static str],
    /// Drawn dashed: corrected's curves lie on the full batch's, and dashes
    /// let both show.
    pub dashed: bool,
}

/// What one micro-batch's summed token loss is divided by: the only number
/// that differs between strategies. `micro_batches_per_rank` is G, `ranks`
/// is R. A whole number, so that a ratio of two strategies' weights (the
/// calculator in `affected`) is one exact division.
pub fn scale_denominator(
    strategy: Strategy,
    tokens_in_micro_batch: usize,
    tokens_on_rank: usize,
    micro_batches_per_rank: usize,
    ranks: usize,
    tokens_in_accumulated_batch: usize,
) -> usize {
    let r = ranks.max(1);
    match strategy {
        Strategy::FullBatch | Strategy::Corrected => tokens_in_accumulated_batch.max(1),
        Strategy::Naive => r * micro_batches_per_rank.max(1) * tokens_in_micro_batch.max(1),
        Strategy::Local => r * tokens_on_rank.max(1),
    }
}

/// The dlogits scale of one micro-batch, 1/`scale_denominator`.
pub fn dlogits_scale(
    strategy: Strategy,
    tokens_in_micro_batch: usize,
    tokens_on_rank: usize,
    micro_batches_per_rank: usize,
    ranks: usize,
    tokens_in_accumulated_batch: usize,
) -> f32 {
    let denominator = scale_denominator(
        strategy,
        tokens_in_micro_batch,
        tokens_on_rank,
        micro_batches_per_rank,
        ranks,
        tokens_in_accumulated_batch,
    );
    (1.0 / denominator as f64) as f32
}

/// The scales of every micro-batch of one step, given each one's N_g, the
/// micro-batches split evenly over `ranks` in order (rank r holds
/// micro-batches r·G .. r·G+G−1). The full batch is one device whatever R is.
pub fn scales(strategy: Strategy, tokens_per_micro_batch: &[usize], ranks: usize) -> Vec<f32> {
    let total: usize = tokens_per_micro_batch.iter().sum();
    let n = tokens_per_micro_batch.len();
    let ranks = if strategy == Strategy::FullBatch { 1 } else { ranks.clamp(1, n.max(1)) };
    let per_rank = n.div_ceil(ranks).max(1);
    let rank_tokens: Vec<usize> = tokens_per_micro_batch.chunks(per_rank).map(|c| c.iter().sum()).collect();
    tokens_per_micro_batch
        .iter()
        .enumerate()
        .map(|(i, &n_g)| dlogits_scale(strategy, n_g, rank_tokens[i / per_rank], per_rank, ranks, total))
        .collect()
}

/// The loss a trainer using `strategy` would log, from each micro-batch's sum
/// of token losses and token count: the same weighting as its gradient.
pub fn logged_loss(strategy: Strategy, loss_sums: &[f32], tokens: &[usize], ranks: usize) -> f64 {
    loss_sums.iter().zip(scales(strategy, tokens, ranks)).map(|(&s, scale)| s as f64 * scale as f64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_follow_the_design_table() {
        let tokens = [10, 30, 60];
        assert_eq!(scales(Strategy::Corrected, &tokens, 1), vec![0.01; 3]);
        let naive = scales(Strategy::Naive, &tokens, 1);
        assert!((naive[0] - 1.0 / 30.0).abs() < 1e-9 && (naive[2] - 1.0 / 180.0).abs() < 1e-9);
        // on one device a rank's count is the batch's: local is corrected
        assert_eq!(scales(Strategy::Local, &tokens, 1), scales(Strategy::Corrected, &tokens, 1));
        // equal counts: naive is the corrected scale
        assert_eq!(scales(Strategy::Naive, &[25, 25, 25, 25], 1), scales(Strategy::Corrected, &[25, 25, 25, 25], 1));
        let sums = [20.0f32, 30.0, 60.0];
        assert!((logged_loss(Strategy::FullBatch, &sums, &tokens, 1) - 1.1).abs() < 1e-6);
        assert!((logged_loss(Strategy::Naive, &sums, &tokens, 1) - (2.0 + 1.0 + 1.0) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn ranks_reproduce_the_data_parallel_forms() {
        // two ranks of two micro-batches: N_r = 40 and 60, N = 100
        let tokens = [10, 30, 20, 40];
        let local = scales(Strategy::Local, &tokens, 2);
        assert_eq!(local, vec![1.0 / 80.0, 1.0 / 80.0, 1.0 / 120.0, 1.0 / 120.0]);
        // local over R ranks is naive over R micro-batches, one per rank's share
        let shares = [40, 60];
        let naive_shares = scales(Strategy::Naive, &shares, 1);
        assert_eq!(local[0], naive_shares[0]);
        assert_eq!(local[2], naive_shares[1]);
        // naive over R ranks of G is naive over R·G micro-batches
        assert_eq!(scales(Strategy::Naive, &tokens, 2), scales(Strategy::Naive, &tokens, 1));
        // corrected and full use the global count whatever R is
        assert_eq!(scales(Strategy::Corrected, &tokens, 2), vec![0.01; 4]);
        assert_eq!(scales(Strategy::FullBatch, &[100], 4), vec![0.01]);
        let sums = [10.0f32, 30.0, 40.0, 80.0];
        // local logs the mean over ranks of each rank's token mean
        assert!((logged_loss(Strategy::Local, &sums, &tokens, 2) - (40.0 / 40.0 + 120.0 / 60.0) / 2.0).abs() < 1e-6);
    }

    #[test]
    fn every_strategy_has_a_distinct_colour() {
        let colours: std::collections::HashSet<&str> = Strategy::ALL.iter().map(|s| s.style().colour).collect();
        assert_eq!(colours.len(), Strategy::ALL.len());
        for s in Strategy::ALL {
            let style = s.style();
            assert!(style.colour.starts_with('#') && !style.label.is_empty());
            assert!(style.shades.is_empty() || style.shades.contains(&style.colour), "{s:?}'s shades hold its colour");
        }
    }

    #[test]
    fn strategies_serialise_as_they_print() {
        for s in Strategy::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<Strategy>(&format!("\"{}\"", s.name())).unwrap(), s);
        }
    }
}
