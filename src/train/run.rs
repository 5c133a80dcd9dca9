//! What is fixed for the life of a run, what one step measured, and how a
//! step can fail — the same on every backend.

use serde::{Deserialize, Serialize};

use crate::model::{ConfigError, LoraConfig, ModelConfig};
use crate::optim::OptimizerConfig;

use super::batch::MicroBatch;

/// Everything fixed for the life of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    /// b: sequences per micro-batch.
    pub micro_batch: usize,
    /// G: micro-batches per optimizer step.
    pub grad_accum: usize,
    /// T: positions per sequence (at most block_size).
    pub seq_len: usize,
    pub optimizer: OptimizerConfig,
    /// Train LoRA adapters on frozen weights instead of the weights themselves.
    #[serde(default)]
    pub lora: Option<LoraConfig>,
}

impl RunConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate()?;
        self.optimizer.validate()?;
        if let Some(lora) = &self.lora {
            lora.validate(self.model.n_embd)?;
        }
        if self.micro_batch == 0 {
            return Err(ConfigError::TooSmall { field: "micro_batch", value: 0.0, min: 1.0 });
        }
        if self.grad_accum == 0 {
            return Err(ConfigError::TooSmall { field: "grad_accum", value: 0.0, min: 1.0 });
        }
        if self.grad_accum > 1024 {
            return Err(ConfigError::TooLarge { field: "grad_accum", value: self.grad_accum as f64, max: 1024.0 });
        }
        if self.seq_len == 0 || self.seq_len > self.model.block_size {
            return Err(ConfigError::Invalid {
                field: "seq_len",
                reason: format!(
                    "must be between 1 and the model's context, block_size ({}), got {}",
                    self.model.block_size, self.seq_len
                ),
            });
        }
        Ok(())
    }

    /// Refuses a step's input before anything is written: G micro-batches of
    /// [B,T] with ids inside the vocabulary, and G finite dlogits scales.
    /// Returns N_g of each micro-batch. Every backend calls this, so a batch
    /// one refuses the others refuse too.
    pub fn check_step(&self, batch: &[MicroBatch], scales: &[f32]) -> Result<Vec<usize>, ConfigError> {
        let g = self.grad_accum;
        if batch.len() != g || scales.len() != g {
            return Err(ConfigError::Invalid {
                field: "batch",
                reason: format!(
                    "this run takes {g} micro-batches and {g} scales per step, got {} and {}",
                    batch.len(),
                    scales.len()
                ),
            });
        }
        if let Some(bad) = scales.iter().find(|s| !s.is_finite()) {
            return Err(ConfigError::NotFinite { field: "dlogits_scale", value: *bad as f64 });
        }
        self.check_micro_batches(batch)?;
        Ok(batch.iter().map(MicroBatch::tokens).collect())
    }

    /// `MicroBatch::check` of each, against this run's B, T and V.
    pub fn check_micro_batches(&self, batch: &[MicroBatch]) -> Result<(), ConfigError> {
        for (i, mb) in batch.iter().enumerate() {
            mb.check(i, self.micro_batch, self.seq_len, self.model.vocab_size)?;
        }
        Ok(())
    }
}

/// What one step measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StepStats {
    /// 1-based step number.
    pub step: u64,
    /// Σ of per-token losses of each micro-batch.
    pub loss_sums: Vec<f32>,
    /// N_g: real targets of each micro-batch.
    pub tokens: Vec<usize>,
    /// ‖g‖ of the accumulated gradient, before clipping.
    pub grad_norm: f32,
    /// ‖w − w_ref‖ after the step, where a lab compares runs (0 otherwise).
    pub weight_distance: f32,
}

impl StepStats {
    /// The true token-mean loss of the whole batch: Σ ℓ / N.
    pub fn mean_loss(&self) -> f64 {
        let n: usize = self.tokens.iter().sum();
        self.loss_sums.iter().map(|&s| s as f64).sum::<f64>() / n.max(1) as f64
    }
}

/// Why a step (or any other call on a run) failed: the input was refused, or
/// the backend failed (a GPU error, a lost device), with its own message.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}
