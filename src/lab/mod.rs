//! The accumulation lab: several runs stepped in lockstep from the same
//! initial weights on the same sequences, each with its own optimizer state.
//!
//! Run 0 is always the full-batch reference; every other run takes the same
//! batch cut into micro-batches and differs only in `Strategy` (hence in the
//! dlogits scales `accum::scales` gives it) and micro-batch size.
//! `Lab` is written once against `Trainer`, through the `Runs` object that
//! holds its runs: the same lab runs on the GPU (`Lab::new::<GpuRun>`, one
//! submission per lab step), on the f64 reference (`ReferenceRun`) and on the f32
//! CPU backend (`FastCpuRun`). Not here: anything that knows which backend it
//! is on.

mod backend;
mod config;
pub mod experiment;
mod metrics;
pub mod page;
mod runs;
pub mod settings;
mod state;

pub use backend::Backend;
pub use config::{LabConfig, RunSpec};
pub use metrics::{now_seconds, RunGradient, RunMetrics, RunTokenWeights, TensorDistance, TokenWeights};
pub use runs::{LocalFuture, Runs};
pub use state::{LabState, StateFile, STATE_FORMAT};

use std::sync::Arc;

use crate::accum;
use crate::data::{BatchSampler, Corpus};
use crate::model::config::ConfigError;
use crate::model::{AdapterLayout, ParamLayout, TensorView};
use crate::rng::Rng;
use crate::train::{inverse_temperature, prompt_window, sample_draws};
use crate::train::{Batch, MicroBatch, StepError, StepWork, Trainer};

use metrics::{metrics, set_throughput};

/// Seeds the batch sampler apart from the weights, which `seed` seeds directly.
const BATCH_SEED_SALT: u64 = 0x5EED_BA7C;

/// Several runs of one backend in lockstep; see the module comment.
pub struct Lab {
    pub config: LabConfig,
    specs: Vec<RunSpec>,
    runs: Box<dyn Runs>,
    batches: BatchSampler,
    steps: u64,
    /// When metrics were last handed out (for throughput).
    last_report: f64,
    /// The batch of the last step.
    last_batch: Option<Batch>,
    /// Runs stopped by `halt` (diverged): they sit every later step out.
    halted: Vec<bool>,
}

impl Lab {
    /// Builds every run, on backend `R`, from the same initial weights (`seed`).
    pub fn new<R: Trainer>(device: &R::Device, config: LabConfig, corpus: Arc<Corpus>) -> Result<Self, ConfigError> {
        config.validate()?;
        let init = ParamLayout::new(&config.model).init(config.seed);
        Self::with_weights::<R>(device, config, corpus, &init)
    }

    /// Like `new`, starting every run from `weights`.
    pub fn with_weights<R: Trainer>(
        device: &R::Device,
        config: LabConfig,
        corpus: Arc<Corpus>,
        weights: &[f32],
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let batches =
            BatchSampler::new(corpus, config.seed ^ BATCH_SEED_SALT, config.batch, config.seq_len, config.data())?;
        let specs = config.all_runs();
        let configs = config.run_configs();
        // all of them fit the device together before any is built
        R::check_runs(device, &configs)?;
        let runs = configs.into_iter().map(|rc| R::new(device, rc, weights)).collect::<Result<Vec<R>, _>>()?;
        let halted = vec![false; runs.len()];
        let runs: Box<dyn Runs> = Box::new(runs);
        Ok(Self { config, specs, runs, batches, steps: 0, last_report: now_seconds(), last_batch: None, halted })
    }

    pub fn specs(&self) -> &[RunSpec] {
        &self.specs
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Stops run `run` for good (it diverged: its loss is no longer worth a
    /// step): it keeps its weights and sits out every later step, reporting
    /// nothing more; the other runs go on. Stats of steps it already took
    /// still arrive.
    pub fn halt(&mut self, run: usize) -> Result<(), ConfigError> {
        let run = settings::run_index(run as f64, self.runs.count())?;
        self.halted[run] = true;
        Ok(())
    }

    /// Which runs `halt` stopped, in run order.
    pub fn halted(&self) -> &[bool] {
        &self.halted
    }

    fn check_run(&self, run: usize) -> Result<(), ConfigError> {
        settings::run_index(run as f64, self.runs.count()).map(|_| ())
    }

    /// Why the runs' device was lost, if it was (see `Trainer::device_lost`).
    pub fn device_lost(&self) -> Option<String> {
        self.runs.device_lost()
    }

    /// The hardware the runs are on.
    pub fn describe(&self) -> String {
        self.runs.describe()
    }

    /// One lockstep step on a fresh batch, cut for each run and scaled by its
    /// strategy. Metrics arrive through `poll` (on the GPU a few steps late).
    pub async fn step(&mut self) -> Result<(), StepError> {
        let batch = self.batches.next_batch();
        self.step_on(&batch).await
    }

    /// A lockstep step on a given batch of B sequences.
    pub async fn step_on(&mut self, batch: &Batch) -> Result<(), StepError> {
        if self.halted.iter().all(|&h| h) {
            return Err(ConfigError::Invalid {
                field: "runs",
                reason: "every run has been stopped (diverged); build a new lab to train again".into(),
            }
            .into());
        }
        let cut = cut_for_runs(&self.config, &self.specs, batch)?;
        let work: Vec<Option<StepWork>> = cut
            .iter()
            .zip(&self.halted)
            .map(|((micro_batches, scales), &halted)| (!halted).then_some(StepWork { micro_batches, scales }))
            .collect();
        self.runs.lockstep(&work).await?;
        self.steps += 1;
        self.last_batch = Some(batch.clone());
        Ok(())
    }

    /// Each run's weight for every target token of the last step's batch.
    pub fn token_weights(&self) -> Option<TokenWeights> {
        let batch = self.last_batch.as_ref()?;
        let cut = cut_for_runs(&self.config, &self.specs, batch).ok()?;
        let runs = self
            .specs
            .iter()
            .zip(&cut)
            .map(|(spec, (_, scales))| {
                let weights = batch
                    .sequences
                    .iter()
                    .zip(&batch.prompt_lengths)
                    .enumerate()
                    .map(|(i, (s, &p))| {
                        let scale = scales[i / spec.micro_batch];
                        (1..s.len()).map(|j| if j >= p { scale } else { 0.0 }).collect()
                    })
                    .collect();
                RunTokenWeights { strategy: spec.strategy, micro_batch: spec.micro_batch, weights }
            })
            .collect();
        Some(TokenWeights { sequences: batch.sequences.clone(), prompt_lengths: batch.prompt_lengths.clone(), runs })
    }

    async fn collect(&mut self, wait: bool) -> Result<Vec<RunMetrics>, StepError> {
        let mut per_run = Vec::new();
        for run in 0..self.runs.count() {
            per_run.push(self.runs.poll(run, wait).await?);
        }
        let mut out = metrics(&self.specs, per_run, self.config.ranks);
        if !out.is_empty() {
            let now = now_seconds();
            set_throughput(&mut out, now - self.last_report);
            self.last_report = now;
        }
        Ok(out)
    }

    /// Metrics of finished steps, without waiting.
    pub async fn poll(&mut self) -> Result<Vec<RunMetrics>, StepError> {
        self.collect(false).await
    }

    /// Waits for every step taken and returns the metrics not yet taken.
    pub async fn flush(&mut self) -> Result<Vec<RunMetrics>, StepError> {
        self.collect(true).await
    }

    /// Validation loss of every run on the same `sequences` held-out
    /// sequences, drawn like training batches (documents, packing, mask).
    pub async fn validation_loss(&mut self, sequences: usize) -> Result<Vec<f64>, StepError> {
        let val = self.batches.validation_batch(sequences);
        let mut out = Vec::new();
        for run in 0..self.runs.count() {
            out.push(self.runs.eval_loss(run, &val).await?);
        }
        Ok(out)
    }

    /// Text run `run` generates after `prompt`: `new_tokens` tokens at
    /// `temperature` (0 = greedy), the draws seeded by `seed` so both
    /// backends give the same text.
    pub async fn generate(
        &mut self,
        run: usize,
        prompt: &str,
        new_tokens: usize,
        temperature: f64,
        seed: u64,
    ) -> Result<String, StepError> {
        self.check_run(run)?;
        let inv_temperature = inverse_temperature(temperature)?;
        let window = prompt_window(&crate::data::encode(prompt), self.config.seq_len, self.config.model.vocab_size)?;
        let draws = sample_draws(inv_temperature, new_tokens, &mut Rng::new(seed));
        Ok(crate::data::decode(&self.runs.generate(run, &window, &draws).await?))
    }

    /// The current weights of run `run` (flat layout).
    pub async fn weights(&self, run: usize) -> Result<Vec<f32>, StepError> {
        self.check_run(run)?;
        self.runs.params(run).await
    }

    /// ‖W − W_full‖ of every run for each tensor the runs train, from their
    /// current weights: under LoRA each adapted Linear's merged weight, where
    /// it is (α/r)·‖B·A − B_full·A_full‖ (the base is shared and frozen);
    /// otherwise every tensor of the model. Reads every run's weights back.
    pub async fn tensor_distances(&self) -> Result<Vec<TensorDistance>, StepError> {
        let layout = ParamLayout::new(&self.config.model);
        let tensors: Vec<TensorView> = match self.config.lora {
            Some(lora) => AdapterLayout::new(&layout, lora)?.linears.into_iter().map(|l| l.weight).collect(),
            None => layout.tensors,
        };
        let mut weights = Vec::new();
        for run in 0..self.runs.count() {
            weights.push(self.runs.params(run).await?);
        }
        Ok(tensors
            .iter()
            .map(|t| {
                let full = &weights[0][t.range()];
                let distances = weights
                    .iter()
                    .map(|w| {
                        w[t.range()].iter().zip(full).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum::<f64>().sqrt()
                    })
                    .collect();
                TensorDistance { name: t.name.clone(), distances }
            })
            .collect())
    }

    /// The accumulated gradient each run computes on `batch` at its current
    /// weights, without stepping (of what trains: flat `ParamLayout`, or under
    /// LoRA flat `AdapterLayout`), with each run's logged loss.
    pub async fn gradients(&mut self, batch: &Batch) -> Result<Vec<RunGradient>, StepError> {
        let ranks = self.config.ranks;
        let cut = cut_for_runs(&self.config, &self.specs, batch)?;
        let mut out = Vec::new();
        for (run, (spec, (micro_batches, scales))) in self.specs.iter().zip(&cut).enumerate() {
            let (grads, sums) = self.runs.gradients(run, StepWork { micro_batches, scales }).await?;
            let tokens: Vec<usize> = micro_batches.iter().map(MicroBatch::tokens).collect();
            out.push(RunGradient { grads, logged_loss: accum::logged_loss(spec.strategy, &sums, &tokens, ranks) });
        }
        Ok(out)
    }

    /// Everything that decides the lab's next steps (`LabState`), after
    /// every step taken; stats not yet handed out stay to be polled.
    pub async fn state(&self) -> Result<LabState, StepError> {
        let mut runs = Vec::new();
        for run in 0..self.runs.count() {
            runs.push(self.runs.state(run).await?);
        }
        Ok(LabState {
            config: self.config.clone(),
            steps: self.steps,
            sampler: self.batches.position(),
            runs,
            halted: self.halted.clone(),
        })
    }

    /// Puts back a state saved from a lab of the same config: this lab then
    /// continues bit for bit as that one would have. Stats of steps taken
    /// before are dropped; a refused state changes nothing.
    pub async fn restore(&mut self, state: &LabState) -> Result<(), StepError> {
        state.check_config(&self.config)?;
        for (what, held) in [("runs", state.runs.len()), ("halted flags", state.halted.len())] {
            if held != self.runs.count() {
                return Err(ConfigError::Invalid {
                    field: "state",
                    reason: format!("holds {held} {what}, the lab has {} runs", self.runs.count()),
                }
                .into());
            }
        }
        // every saved run must fit before any run changes
        for (run, saved) in state.runs.iter().enumerate() {
            let config = self.runs.config(run);
            let (weights, adapters) = (ParamLayout::new(&config.model).total, config.lora);
            let adapters = adapters.map(|l| AdapterLayout::new(&ParamLayout::new(&config.model), l)).transpose()?;
            let trains = adapters.as_ref().map_or(weights, |a| a.total);
            saved.check(weights, adapters.map(|a| a.total), trains).map_err(|e| match e {
                // which run's vectors do not fit
                ConfigError::Invalid { field, reason } => {
                    ConfigError::Invalid { field, reason: format!("runs[{run}]: {reason}") }
                }
                other => other,
            })?;
        }
        self.flush().await?;
        for (run, saved) in state.runs.iter().enumerate() {
            self.runs.set_state(run, saved)?;
        }
        self.steps = state.steps;
        self.halted.clone_from(&state.halted);
        self.batches.set_position(state.sampler);
        self.last_batch = None;
        self.last_report = now_seconds();
        Ok(())
    }

    /// The sampler's next batch, without stepping (for tests and export).
    pub fn draw_batch(&mut self) -> Batch {
        self.batches.next_batch()
    }
}

/// One run's share of a lab step: its micro-batches and the dlogits scale of each.
type RunBatch = (Vec<MicroBatch>, Vec<f32>);

/// Cuts one batch of B sequences for every run: its micro-batches, and the
/// dlogits scale its strategy gives each of them.
fn cut_for_runs(config: &LabConfig, specs: &[RunSpec], batch: &Batch) -> Result<Vec<RunBatch>, ConfigError> {
    if batch.len() != config.batch {
        return Err(ConfigError::Invalid {
            field: "batch",
            reason: format!("the lab takes {} sequences per step, got {}", config.batch, batch.len()),
        });
    }
    specs
        .iter()
        .map(|spec| {
            let micro_batches = batch.micro_batches(spec.micro_batch, config.seq_len)?;
            let tokens: Vec<usize> = micro_batches.iter().map(MicroBatch::tokens).collect();
            Ok((micro_batches, accum::scales(spec.strategy, &tokens, config.ranks)))
        })
        .collect()
}
