//! What a lab is asked to run: the model, the batch, how documents become
//! sequences, the ranks, and which runs sit beside the full-batch reference.

use serde::{Deserialize, Serialize};

use crate::accum::Strategy;
use crate::data::{DataConfig, Packing};
use crate::model::config::ConfigError;
use crate::model::{LoraConfig, ModelConfig};
use crate::optim::OptimizerConfig;
use crate::train::RunConfig;

/// One run of the lab besides the reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    pub strategy: Strategy,
    /// b: sequences per micro-batch (G = batch / b).
    pub micro_batch: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LabConfig {
    pub model: ModelConfig,
    /// B: sequences per optimizer step (the effective batch).
    pub batch: usize,
    /// T: positions per sequence.
    pub seq_len: usize,
    /// Which documents: 0 = only the longest, 1 = all (widely varying lengths).
    pub spread: f64,
    /// One document per sequence, padded (fine-tuning), or packed windows (pretraining).
    #[serde(default = "padded")]
    pub packing: Packing,
    /// Fine-tuning: prompt tokens are not targets.
    #[serde(default)]
    pub mask_prompt: bool,
    /// R: simulated data-parallel ranks, each accumulating its share of the
    /// micro-batches; gradients averaged across ranks.
    #[serde(default = "one")]
    pub ranks: usize,
    pub optimizer: OptimizerConfig,
    /// Fine-tune LoRA adapters on the starting weights, which stay frozen.
    #[serde(default)]
    pub lora: Option<LoraConfig>,
    /// Decides the initial weights and every batch.
    pub seed: u64,
    /// Runs compared with the full-batch reference (which is added first).
    pub runs: Vec<RunSpec>,
}

fn padded() -> Packing {
    Packing::Padded
}

fn one() -> usize {
    1
}

impl LabConfig {
    /// Full batch, naive and corrected at one micro-batch size.
    pub fn three_way(model: ModelConfig, batch: usize, micro_batch: usize, spread: f64, seed: u64) -> Self {
        let runs = vec![
            RunSpec { strategy: Strategy::Naive, micro_batch },
            RunSpec { strategy: Strategy::Corrected, micro_batch },
        ];
        Self::with_runs(model, batch, spread, seed, runs)
    }

    /// `runs` beside the reference, with the defaults every lab starts from:
    /// the preset's context, whole documents padded, no mask, one rank, AdamW.
    fn with_runs(model: ModelConfig, batch: usize, spread: f64, seed: u64, runs: Vec<RunSpec>) -> Self {
        Self {
            model,
            batch,
            seq_len: model.block_size,
            spread,
            packing: Packing::Padded,
            mask_prompt: false,
            ranks: 1,
            optimizer: OptimizerConfig::default(),
            lora: None,
            seed,
            runs,
        }
    }

    /// The same lab on `ranks` simulated data-parallel ranks, with a `local`
    /// run (each rank normalising by its own count) beside each naive one
    /// when there is more than one rank.
    /// Runs whose micro-batches the ranks cannot share evenly are dropped.
    pub fn with_ranks(mut self, ranks: usize) -> Self {
        self.ranks = ranks;
        if ranks > 1 {
            let batch = self.batch;
            let mut runs = Vec::new();
            let shared = |r: &RunSpec| r.micro_batch > 0 && (batch / r.micro_batch).is_multiple_of(ranks);
            for r in self.runs.iter().filter(|r| shared(r)) {
                runs.push(*r);
                if r.strategy == Strategy::Naive {
                    runs.push(RunSpec { strategy: Strategy::Local, micro_batch: r.micro_batch });
                }
            }
            self.runs = runs;
        }
        self
    }

    /// How the sampler turns documents into sequences.
    pub fn data(&self) -> DataConfig {
        DataConfig { packing: self.packing, spread: self.spread, mask_prompt: self.mask_prompt }
    }

    /// The reference experiment: naive and corrected at every micro-batch size
    /// that divides `batch` among 1, 2, 4, 8, 16, ...
    pub fn sweep(model: ModelConfig, batch: usize, spread: f64, seed: u64) -> Self {
        let mut runs = Vec::new();
        let mut b = 1;
        while b < batch {
            if batch.is_multiple_of(b) {
                runs.push(RunSpec { strategy: Strategy::Naive, micro_batch: b });
                runs.push(RunSpec { strategy: Strategy::Corrected, micro_batch: b });
            }
            b *= 2;
        }
        Self::with_runs(model, batch, spread, seed, runs)
    }

    /// What each run of `all_runs` is built with.
    pub fn run_configs(&self) -> Vec<RunConfig> {
        self.all_runs()
            .iter()
            .map(|spec| RunConfig {
                model: self.model,
                micro_batch: spec.micro_batch,
                grad_accum: self.batch / spec.micro_batch.max(1),
                seq_len: self.seq_len,
                optimizer: self.optimizer,
                lora: self.lora,
            })
            .collect()
    }

    /// Every run including the reference, in lab order.
    pub fn all_runs(&self) -> Vec<RunSpec> {
        let mut all = vec![RunSpec { strategy: Strategy::FullBatch, micro_batch: self.batch }];
        all.extend(self.runs.iter().copied());
        all
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate()?;
        self.optimizer.validate()?;
        self.data().validate()?;
        if let Some(lora) = &self.lora {
            lora.validate(self.model.n_embd)?;
        }
        if self.ranks == 0 || self.ranks > 64 {
            return Err(ConfigError::Invalid {
                field: "ranks",
                reason: format!("must be between 1 and 64, got {}", self.ranks),
            });
        }
        if !self.batch.is_multiple_of(self.ranks) {
            return Err(ConfigError::Invalid {
                field: "ranks",
                reason: format!("{} ranks cannot share a batch of {} sequences", self.ranks, self.batch),
            });
        }
        if self.batch == 0 || self.batch > 4096 {
            return Err(ConfigError::Invalid {
                field: "batch",
                reason: format!("must be between 1 and 4096, got {}", self.batch),
            });
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
        if self.runs.len() > 32 {
            return Err(ConfigError::TooLarge { field: "runs", value: self.runs.len() as f64, max: 32.0 });
        }
        for r in &self.runs {
            if r.micro_batch == 0 || !self.batch.is_multiple_of(r.micro_batch) {
                return Err(ConfigError::Invalid {
                    field: "micro_batch",
                    reason: format!("{} does not divide the batch of {}", r.micro_batch, self.batch),
                });
            }
            if r.strategy != Strategy::FullBatch && !(self.batch / r.micro_batch).is_multiple_of(self.ranks) {
                return Err(ConfigError::Invalid {
                    field: "ranks",
                    reason: format!(
                        "{} ranks cannot share the {} micro-batches of {} (batch {})",
                        self.ranks,
                        self.batch / r.micro_batch,
                        r.micro_batch,
                        self.batch
                    ),
                });
            }
        }
        Ok(())
    }
}
