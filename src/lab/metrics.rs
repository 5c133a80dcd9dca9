//! What a lab reports: each run's figures per step (with the loss its
//! trainer would log beside the true loss), throughput, gradients and token
//! weights.

use serde::Serialize;

use crate::accum::{self, Strategy};
use crate::train::StepStats;

use super::config::RunSpec;

/// What one run measured on one step.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunMetrics {
    pub step: u64,
    pub run: usize,
    pub strategy: Strategy,
    pub micro_batch: usize,
    pub micro_batches: usize,
    /// The loss this run's trainer would log (weighted like its gradient).
    pub logged_loss: f64,
    /// The true token-mean loss of the same batch, Σ ℓ / N.
    pub true_loss: f64,
    /// ‖w − w_full‖ after the step.
    pub weight_distance: f64,
    /// ‖g‖ before clipping.
    pub grad_norm: f64,
    /// N: real targets in the batch.
    pub tokens: usize,
    /// Real tokens per second this run trained on, over the interval in which
    /// these metrics arrived (wall clock; 0 when unknown).
    pub tokens_per_second: f64,
}

/// Seconds on a monotonic-enough clock, natively and in the browser.
pub fn now_seconds() -> f64 {
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() / 1000.0
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        static START: OnceLock<std::time::Instant> = OnceLock::new();
        START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64()
    }
}

/// Fills `tokens_per_second` of metrics that arrived over `seconds`.
pub(super) fn set_throughput(metrics: &mut [RunMetrics], seconds: f64) {
    let runs = metrics.iter().map(|m| m.run).max().map_or(0, |r| r + 1);
    for run in 0..runs {
        let tokens: usize = metrics.iter().filter(|m| m.run == run).map(|m| m.tokens).sum();
        let rate = if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 };
        for m in metrics.iter_mut().filter(|m| m.run == run) {
            m.tokens_per_second = rate;
        }
    }
}

/// One run's accumulated gradient on a batch, and the loss its trainer would log.
#[derive(Debug, Clone)]
pub struct RunGradient {
    /// The gradient of what trains: flat `ParamLayout`, or under LoRA flat
    /// `AdapterLayout`.
    pub grads: Vec<f32>,
    pub logged_loss: f64,
}

/// One trained tensor's L2 distance to the full-batch run's, per run (run 0,
/// the full batch itself, at 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TensorDistance {
    /// GPT-2 name, e.g. `h.0.attn.c_attn.weight`.
    pub name: String,
    pub distances: Vec<f64>,
}

/// How much each target token of a batch weighs in each run's step: its
/// micro-batch's dlogits scale (the bug in one picture: under naive a token
/// of a short micro-batch weighs more).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TokenWeights {
    pub sequences: Vec<Vec<u32>>,
    pub prompt_lengths: Vec<usize>,
    pub runs: Vec<RunTokenWeights>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunTokenWeights {
    pub strategy: Strategy,
    pub micro_batch: usize,
    /// weights[i][j]: the weight of token j+1 of sequence i as a target (0
    /// where it is none: a prompt token).
    pub weights: Vec<Vec<f32>>,
}

pub(super) fn metrics(specs: &[RunSpec], per_run: Vec<Vec<StepStats>>, ranks: usize) -> Vec<RunMetrics> {
    let mut out = Vec::new();
    for (i, stats) in per_run.into_iter().enumerate() {
        let spec = specs[i];
        for s in stats {
            out.push(RunMetrics {
                step: s.step,
                run: i,
                strategy: spec.strategy,
                micro_batch: spec.micro_batch,
                micro_batches: s.tokens.len(),
                logged_loss: accum::logged_loss(spec.strategy, &s.loss_sums, &s.tokens, ranks),
                true_loss: s.mean_loss(),
                weight_distance: s.weight_distance as f64,
                grad_norm: s.grad_norm as f64,
                tokens: s.tokens.iter().sum(),
                tokens_per_second: 0.0,
            });
        }
    }
    out.sort_by_key(|m| (m.step, m.run));
    out
}
