//! The three ways of taking one step on a batch split into micro-batches, and
//! the one function where they differ: the scale handed to the cross-entropy
//! backward of each micro-batch (see docs/DESIGN.md §1).
//!
//! With ℓ_t a token's loss, N_g the real targets of micro-batch g, N = Σ N_g
//! and G micro-batches:
//! - full batch: one micro-batch, loss Σ ℓ / N, scale 1/N;
//! - naive accumulation: loss (1/G) Σ_g (Σ_{t∈g} ℓ_t / N_g), scale 1/(G·N_g) —
//!   tokens of short micro-batches weigh more;
//! - corrected accumulation: loss Σ ℓ / N, scale 1/N with N counted over the
//!   whole accumulated batch before the first backward.
//!
//! Nothing else in the crate knows which strategy is running.

use serde::{Deserialize, Serialize};

/// Serialised by the same name it prints as (`full`, `naive`, `corrected`),
/// so the page's CSV and the CLI's agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Strategy {
    #[serde(rename = "full")]
    FullBatch,
    Naive,
    Corrected,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [Strategy::FullBatch, Strategy::Naive, Strategy::Corrected];

    pub fn name(self) -> &'static str {
        match self {
            Strategy::FullBatch => "full",
            Strategy::Naive => "naive",
            Strategy::Corrected => "corrected",
        }
    }
}

/// The dlogits scale of micro-batch g: the only number that differs between
/// strategies.
pub fn dlogits_scale(
    strategy: Strategy,
    tokens_in_micro_batch: usize,
    micro_batches: usize,
    tokens_in_accumulated_batch: usize,
) -> f32 {
    let scale = match strategy {
        Strategy::FullBatch | Strategy::Corrected => 1.0 / tokens_in_accumulated_batch.max(1) as f64,
        Strategy::Naive => 1.0 / (micro_batches.max(1) * tokens_in_micro_batch.max(1)) as f64,
    };
    scale as f32
}

/// The scales of every micro-batch of one step, given each one's N_g.
pub fn scales(strategy: Strategy, tokens_per_micro_batch: &[usize]) -> Vec<f32> {
    let total: usize = tokens_per_micro_batch.iter().sum();
    let g = tokens_per_micro_batch.len();
    tokens_per_micro_batch.iter().map(|&n_g| dlogits_scale(strategy, n_g, g, total)).collect()
}

/// The loss a trainer using `strategy` would log, from each micro-batch's sum
/// of token losses and token count: the same weighting as its gradient.
pub fn logged_loss(strategy: Strategy, loss_sums: &[f32], tokens: &[usize]) -> f64 {
    loss_sums.iter().zip(scales(strategy, tokens)).map(|(&s, scale)| s as f64 * scale as f64).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_follow_the_design_table() {
        let tokens = [10, 30, 60];
        assert_eq!(scales(Strategy::Corrected, &tokens), vec![0.01; 3]);
        let naive = scales(Strategy::Naive, &tokens);
        assert!((naive[0] - 1.0 / 30.0).abs() < 1e-9 && (naive[2] - 1.0 / 180.0).abs() < 1e-9);
        // equal counts: naive is the corrected scale
        assert_eq!(scales(Strategy::Naive, &[25, 25, 25, 25]), scales(Strategy::Corrected, &[25, 25, 25, 25]));
        let sums = [20.0f32, 30.0, 60.0];
        assert!((logged_loss(Strategy::FullBatch, &sums, &tokens) - 1.1).abs() < 1e-6);
        assert!((logged_loss(Strategy::Naive, &sums, &tokens) - (2.0 + 1.0 + 1.0) / 3.0).abs() < 1e-6);
    }

    #[test]
    fn strategies_serialise_as_they_print() {
        for s in Strategy::ALL {
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.name()));
            assert_eq!(serde_json::from_str::<Strategy>(&format!("\"{}\"", s.name())).unwrap(), s);
        }
    }
}
