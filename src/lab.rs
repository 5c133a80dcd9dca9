//! The accumulation lab: several runs stepped in lockstep from the same
//! initial weights on the same sequences, each with its own optimizer state.
//!
//! Run 0 is always the full-batch reference; every other run takes the same
//! batch cut into micro-batches and differs only in `Strategy` (hence in the
//! dlogits scales `accum::scales` gives it) and micro-batch size.
//! `Lab<R>` is written once against `Trainer`: the same lab runs on the GPU
//! (`Lab<GpuRun>`, one submission per lab step) and on the f64 reference
//! (`Lab<CpuRun>`). Not here: anything that knows which backend it is on.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::accum::{self, Strategy};
use crate::data::{BatchSampler, Corpus, DataConfig, Packing};
use crate::model::config::ConfigError;
use crate::model::{ModelConfig, ParamLayout};
use crate::optim::OptimizerConfig;
use crate::rng::Rng;
use crate::train::{inverse_temperature, prompt_window, sample_draws};
use crate::train::{Batch, MicroBatch, RunConfig, StepError, StepStats, StepWork, Trainer};

/// One run of the lab besides the reference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunSpec {
    pub strategy: Strategy,
    /// b: sequences per micro-batch (G = batch / b).
    pub micro_batch: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        Self {
            model,
            batch,
            seq_len: model.block_size,
            spread,
            packing: Packing::Padded,
            mask_prompt: false,
            ranks: 1,
            optimizer: OptimizerConfig::default(),
            seed,
            runs: vec![
                RunSpec { strategy: Strategy::Naive, micro_batch },
                RunSpec { strategy: Strategy::Corrected, micro_batch },
            ],
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
        Self {
            model,
            batch,
            seq_len: model.block_size,
            spread,
            packing: Packing::Padded,
            mask_prompt: false,
            ranks: 1,
            optimizer: OptimizerConfig::default(),
            seed,
            runs,
        }
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
                reason: format!("must be between 1 and block_size ({}), got {}", self.model.block_size, self.seq_len),
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
fn set_throughput(metrics: &mut [RunMetrics], seconds: f64) {
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
    /// Flat layout (`ParamLayout`).
    pub grads: Vec<f32>,
    pub logged_loss: f64,
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

/// Seeds the batch sampler apart from the weights, which `seed` seeds directly.
const BATCH_SEED_SALT: u64 = 0x5EED_BA7C;

/// Several runs of one backend in lockstep; see the module comment.
pub struct Lab<R: Trainer> {
    pub config: LabConfig,
    specs: Vec<RunSpec>,
    runs: Vec<R>,
    batches: BatchSampler,
    steps: u64,
    /// When metrics were last handed out (for throughput).
    last_report: f64,
    /// The batch of the last step.
    last_batch: Option<Batch>,
}

impl<R: Trainer> Lab<R> {
    /// Builds every run from the same initial weights (`seed`).
    pub fn new(device: &R::Device, config: LabConfig, corpus: Arc<Corpus>) -> Result<Self, ConfigError> {
        config.validate()?;
        let init = ParamLayout::new(&config.model).init(config.seed);
        Self::with_weights(device, config, corpus, &init)
    }

    /// Like `new`, starting every run from `weights`.
    pub fn with_weights(
        device: &R::Device,
        config: LabConfig,
        corpus: Arc<Corpus>,
        weights: &[f32],
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let batches =
            BatchSampler::new(corpus, config.seed ^ BATCH_SEED_SALT, config.batch, config.seq_len, config.data())?;
        let specs = config.all_runs();
        let runs = specs
            .iter()
            .map(|spec| {
                let rc = RunConfig {
                    model: config.model,
                    micro_batch: spec.micro_batch,
                    grad_accum: config.batch / spec.micro_batch,
                    seq_len: config.seq_len,
                    optimizer: config.optimizer,
                };
                R::new(device, rc, weights)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { config, specs, runs, batches, steps: 0, last_report: now_seconds(), last_batch: None })
    }

    pub fn specs(&self) -> &[RunSpec] {
        &self.specs
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The hardware the runs are on.
    pub fn describe(&self) -> String {
        self.runs[0].describe()
    }

    /// One lockstep step on a fresh batch, cut for each run and scaled by its
    /// strategy. Metrics arrive through `poll` (on the GPU a few steps late).
    pub async fn step(&mut self) -> Result<(), StepError> {
        let batch = self.batches.next_batch();
        self.step_on(&batch).await
    }

    /// A lockstep step on a given batch of B sequences.
    pub async fn step_on(&mut self, batch: &Batch) -> Result<(), StepError> {
        let cut = cut_for_runs(&self.config, &self.specs, batch)?;
        let work: Vec<StepWork> =
            cut.iter().map(|(micro_batches, scales)| StepWork { micro_batches, scales }).collect();
        R::lockstep(&mut self.runs, &work).await?;
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
        for run in &mut self.runs {
            per_run.push(run.poll(wait).await?);
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
        for run in &mut self.runs {
            out.push(run.eval_loss(&val).await?);
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
        let count = self.runs.len();
        let r = self.runs.get_mut(run).ok_or(no_such_run(run, count))?;
        let inv_temperature = inverse_temperature(temperature)?;
        let window = prompt_window(&crate::data::encode(prompt), self.config.seq_len, self.config.model.vocab_size)?;
        let draws = sample_draws(inv_temperature, new_tokens, &mut Rng::new(seed));
        Ok(crate::data::decode(&r.generate(&window, &draws).await?))
    }

    /// The current weights of run `run` (flat layout).
    pub async fn weights(&self, run: usize) -> Result<Vec<f32>, StepError> {
        let r = self.runs.get(run).ok_or(no_such_run(run, self.runs.len()))?;
        r.params().await
    }

    /// The accumulated gradient each run computes on `sequences` at its
    /// current weights, without stepping (flat layout), with each run's
    /// logged loss.
    pub async fn gradients(&mut self, batch: &Batch) -> Result<Vec<RunGradient>, StepError> {
        let ranks = self.config.ranks;
        let cut = cut_for_runs(&self.config, &self.specs, batch)?;
        let mut out = Vec::new();
        for ((spec, run), (micro_batches, scales)) in self.specs.iter().zip(&mut self.runs).zip(&cut) {
            let (grads, sums) = run.gradients(StepWork { micro_batches, scales }).await?;
            let tokens: Vec<usize> = micro_batches.iter().map(MicroBatch::tokens).collect();
            out.push(RunGradient { grads, logged_loss: accum::logged_loss(spec.strategy, &sums, &tokens, ranks) });
        }
        Ok(out)
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

fn no_such_run(run: usize, count: usize) -> ConfigError {
    ConfigError::Invalid { field: "run", reason: format!("run {run} does not exist; there are {count}") }
}

fn metrics(specs: &[RunSpec], per_run: Vec<Vec<StepStats>>, ranks: usize) -> Vec<RunMetrics> {
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

/// A future awaited on the thread that made it (the browser's, or pollster's).
pub type LocalFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + 'a>>;

/// A `Lab` of any backend behind one type, for a caller that picks the
/// backend at run time (the page: WebGPU, or the CPU where there is none).
/// Implemented once for every `Lab<R>`, so a new backend needs nothing here.
pub trait AnyLab {
    fn config(&self) -> &LabConfig;
    fn specs(&self) -> &[RunSpec];
    fn steps(&self) -> u64;
    fn describe(&self) -> String;
    fn step(&mut self) -> LocalFuture<'_, Result<(), StepError>>;
    fn poll(&mut self) -> LocalFuture<'_, Result<Vec<RunMetrics>, StepError>>;
    fn flush(&mut self) -> LocalFuture<'_, Result<Vec<RunMetrics>, StepError>>;
    fn validation_loss(&mut self, sequences: usize) -> LocalFuture<'_, Result<Vec<f64>, StepError>>;
    fn generate<'a>(
        &'a mut self,
        run: usize,
        prompt: &'a str,
        new_tokens: usize,
        temperature: f64,
        seed: u64,
    ) -> LocalFuture<'a, Result<String, StepError>>;
    fn weights(&self, run: usize) -> LocalFuture<'_, Result<Vec<f32>, StepError>>;
    fn token_weights(&self) -> Option<TokenWeights>;
}

impl<R: Trainer> AnyLab for Lab<R> {
    fn config(&self) -> &LabConfig {
        &self.config
    }
    fn specs(&self) -> &[RunSpec] {
        Lab::specs(self)
    }
    fn steps(&self) -> u64 {
        Lab::steps(self)
    }
    fn describe(&self) -> String {
        Lab::describe(self)
    }
    fn step(&mut self) -> LocalFuture<'_, Result<(), StepError>> {
        Box::pin(Lab::step(self))
    }
    fn poll(&mut self) -> LocalFuture<'_, Result<Vec<RunMetrics>, StepError>> {
        Box::pin(Lab::poll(self))
    }
    fn flush(&mut self) -> LocalFuture<'_, Result<Vec<RunMetrics>, StepError>> {
        Box::pin(Lab::flush(self))
    }
    fn validation_loss(&mut self, sequences: usize) -> LocalFuture<'_, Result<Vec<f64>, StepError>> {
        Box::pin(Lab::validation_loss(self, sequences))
    }
    fn generate<'a>(
        &'a mut self,
        run: usize,
        prompt: &'a str,
        new_tokens: usize,
        temperature: f64,
        seed: u64,
    ) -> LocalFuture<'a, Result<String, StepError>> {
        Box::pin(Lab::generate(self, run, prompt, new_tokens, temperature, seed))
    }
    fn weights(&self, run: usize) -> LocalFuture<'_, Result<Vec<f32>, StepError>> {
        Box::pin(Lab::weights(self, run))
    }
    fn token_weights(&self) -> Option<TokenWeights> {
        Lab::token_weights(self)
    }
}
