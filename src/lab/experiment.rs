//! The reference experiment, defined once: its settings and the statistics
//! its figures are made of. The CLI's `sweep` takes its defaults and its
//! statistics from here, the page's "Sweep G" takes the settings and "final"
//! through the wasm API (web/experiment.rs), and README.md's tables are this
//! experiment's output.
//!
//! The experiment trains the full batch beside naive and corrected
//! accumulation at every micro-batch size b that divides the effective batch
//! B (G = B / b micro-batches per step), all from the same weights on the
//! same batches, over several seeds; `REFERENCE` holds its values. Not here:
//! running it, or anything about a backend.

use serde::Serialize;

use super::config::LabConfig;
use crate::model::{ConfigError, ModelConfig};
use crate::optim::{OptimizerConfig, OptimizerKind, Schedule};

/// The settings of an accumulation experiment; `REFERENCE` is the one the
/// project reports.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Experiment {
    /// The model preset (`ModelConfig::PRESETS`).
    pub preset: &'static str,
    /// T: positions per sequence; the model's context grows to match.
    pub context: usize,
    /// B: sequences per optimizer step (the effective batch).
    pub batch: usize,
    /// Which documents: 1 = all, so lengths vary and naive ≠ corrected.
    pub spread: f64,
    /// The shipped corpus (`data::CORPORA`).
    pub corpus: &'static str,
    /// The optimizer; its other settings are `OptimizerConfig`'s defaults
    /// (β 0.9/0.99, eps 1e-8, no weight decay, clipping at norm 1).
    pub optimizer: OptimizerKind,
    /// The learning rate, constant over the steps.
    pub lr: f64,
    /// Optimizer steps of every run.
    pub steps: u64,
    /// The first seed; the others follow it.
    pub first_seed: u64,
    /// How many seeds every figure is the mean ± sd over.
    pub seeds: u64,
    /// Held-out sequences the validation loss is measured on.
    pub val_sequences: usize,
}

/// The reference experiment (README.md "The reference experiment").
pub const REFERENCE: Experiment = Experiment {
    preset: "nano",
    context: 128,
    batch: 16,
    spread: 1.0,
    corpus: "kjv",
    optimizer: OptimizerKind::AdamW,
    lr: 3e-3,
    steps: 100,
    first_seed: 1,
    seeds: 5,
    val_sequences: 128,
};

impl Experiment {
    /// The optimizer's settings, as every run of the experiment uses them.
    pub fn optimizer_config(&self) -> OptimizerConfig {
        OptimizerConfig { kind: self.optimizer, lr: self.lr, schedule: Schedule::Constant, ..Default::default() }
    }

    /// The optimizer's name as the CLI and the page spell it (`adamw`).
    pub fn optimizer_name(&self) -> String {
        // serde's spelling is the one `OptimizerKind` parses from
        serde_json::to_value(self.optimizer).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default()
    }

    /// The model: the preset with its context widened (or narrowed) to T.
    pub fn model(&self) -> Result<ModelConfig, ConfigError> {
        let mut model = ModelConfig::preset(self.preset)?;
        model.block_size = self.context;
        model.validate()?;
        Ok(model)
    }

    /// The lab of one seed: the full batch, and naive and corrected at every
    /// micro-batch size (`LabConfig::sweep`), with this optimizer.
    pub fn lab_config(&self, seed: u64) -> Result<LabConfig, ConfigError> {
        let mut config = LabConfig::sweep(self.model()?, self.batch, self.spread, seed);
        config.optimizer = self.optimizer_config();
        config.validate()?;
        Ok(config)
    }

    /// The micro-batch sizes b beside the full batch, smallest first (G = B / b).
    pub fn micro_batches(&self) -> Vec<usize> {
        // which sizes depends on B alone, not on the model
        let config = LabConfig::sweep(ModelConfig::nano(), self.batch, self.spread, self.first_seed);
        let mut sizes: Vec<usize> = config.runs.iter().map(|r| r.micro_batch).collect();
        sizes.dedup();
        sizes
    }
}

/// How many of a run's last steps "final" averages: the last tenth, at
/// least one.
pub fn final_window(steps: usize) -> usize {
    (steps / 10).max(1)
}

/// "final": the mean over the last tenth of the steps (`final_window`) of a
/// run's values, one per step. A step without a value (`None`: the page's
/// gap where a loss was not finite) is left out of the mean; NaN when no
/// step of the window has one.
pub fn final_mean<T: Copy + Into<Option<f64>>>(per_step: &[T]) -> f64 {
    let window = &per_step[per_step.len() - final_window(per_step.len()).min(per_step.len())..];
    let (sum, n) = window.iter().filter_map(|&x| x.into()).fold((0.0, 0usize), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        f64::NAN
    } else {
        sum / n as f64
    }
}

/// A figure over seeds: the mean and the sample standard deviation (n − 1;
/// 0 for one seed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MeanSd {
    pub mean: f64,
    pub sd: f64,
}

impl MeanSd {
    pub fn of(xs: &[f64]) -> Self {
        let n = xs.len().max(1) as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = if xs.len() > 1 { xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0) } else { 0.0 };
        MeanSd { mean, sd: var.sqrt() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::accum::Strategy;

    #[test]
    fn the_reference_is_the_readme_experiment() {
        let config = REFERENCE.lab_config(REFERENCE.first_seed).unwrap();
        assert_eq!((config.batch, config.seq_len, config.model.block_size), (16, 128, 128));
        assert_eq!(REFERENCE.micro_batches(), vec![1, 2, 4, 8]);
        let runs: Vec<(Strategy, usize)> = config.all_runs().iter().map(|r| (r.strategy, r.micro_batch)).collect();
        assert_eq!(runs[0], (Strategy::FullBatch, 16));
        assert_eq!(runs.len(), 1 + 2 * 4);
        assert_eq!(config.optimizer, OptimizerConfig { lr: 3e-3, ..OptimizerConfig::default() });
        assert_eq!(REFERENCE.optimizer_name().parse::<OptimizerKind>().unwrap(), REFERENCE.optimizer);
        assert!(crate::data::shipped(REFERENCE.corpus).is_ok());
    }

    #[test]
    fn final_is_the_mean_of_the_last_tenth() {
        let xs: Vec<f64> = (1..=25).map(f64::from).collect();
        assert_eq!(final_window(25), 2);
        assert_eq!(final_mean(&xs), 24.5);
        assert_eq!(final_window(5), 1);
        assert_eq!(final_mean(&xs[..5]), 5.0);
        // a step without a value is left out: 20 steps, the last 2, one of them missing
        let mut gaps = vec![Some(9.0); 18];
        gaps.extend([Some(2.0), None]);
        assert_eq!(final_mean(&gaps), 2.0);
        assert!(final_mean(&[Some(1.0), None]).is_nan());
        assert!(final_mean::<f64>(&[]).is_nan());
    }

    #[test]
    fn mean_sd_is_the_sample_standard_deviation() {
        assert_eq!(MeanSd::of(&[2.0]), MeanSd { mean: 2.0, sd: 0.0 });
        let s = MeanSd::of(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(s.mean, 2.5);
        assert!((s.sd - (5.0f64 / 3.0).sqrt()).abs() < 1e-15);
    }
}
