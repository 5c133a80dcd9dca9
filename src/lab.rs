//! The accumulation lab: several runs stepped in lockstep from the same
//! initial weights on the same sequences, each with its own optimizer state.
//!
//! Run 0 is always the full-batch reference; every other run takes the same
//! batch cut into micro-batches and differs only in `Strategy` (hence in the
//! dlogits scales `accum::scales` gives it) and micro-batch size. A lab step
//! records every run's step, then the distance of every run's weights to the
//! reference, into one command buffer and submits it once.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::accum::{self, Strategy};
use crate::data::{split_micro_batches, Corpus, Sampler};
use crate::gpu::{GpuContext, GpuError, Program, ProgramBuilder, View};
use crate::model::config::ConfigError;
use crate::model::{ModelConfig, ParamLayout};
use crate::optim::OptimizerConfig;
use crate::train::{MicroBatch, Run, RunConfig, StepError, StepStats};

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
    /// 0 = all sequences T+1 tokens, 1 = widely varying lengths.
    pub spread: f64,
    pub optimizer: OptimizerConfig,
    /// Decides the initial weights and every batch.
    pub seed: u64,
    /// Runs compared with the full-batch reference (which is added first).
    pub runs: Vec<RunSpec>,
}

impl LabConfig {
    /// Full batch, naive and corrected at one micro-batch size.
    pub fn three_way(model: ModelConfig, batch: usize, micro_batch: usize, spread: f64, seed: u64) -> Self {
        Self {
            model,
            batch,
            seq_len: model.block_size,
            spread,
            optimizer: OptimizerConfig::default(),
            seed,
            runs: vec![
                RunSpec { strategy: Strategy::Naive, micro_batch },
                RunSpec { strategy: Strategy::Corrected, micro_batch },
            ],
        }
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
        Self { model, batch, seq_len: model.block_size, spread, optimizer: OptimizerConfig::default(), seed, runs }
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
        crate::model::config::check_range("spread", self.spread, 0.0, 1.0)?;
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

pub struct Lab {
    pub config: LabConfig,
    specs: Vec<RunSpec>,
    runs: Vec<Run>,
    sampler: Sampler,
    distances: Program,
    steps: u64,
    /// When metrics were last handed out (for throughput).
    last_report: f64,
}

impl Lab {
    /// Builds every run from the same initial weights (`seed`).
    pub fn new(ctx: &GpuContext, config: LabConfig, corpus: Arc<Corpus>) -> Result<Self, ConfigError> {
        config.validate()?;
        let layout = ParamLayout::new(&config.model);
        let init = layout.init(config.seed);
        Self::with_weights(ctx, config, corpus, &init)
    }

    /// Like `new`, starting every run from `weights`.
    pub fn with_weights(
        ctx: &GpuContext,
        config: LabConfig,
        corpus: Arc<Corpus>,
        weights: &[f32],
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let layout = ParamLayout::new(&config.model);
        let sampler = Sampler::new(corpus, config.seed ^ 0x5EED_BA7C, config.batch, config.seq_len, config.spread)?;
        let specs = config.all_runs();
        let mut runs = Vec::new();
        for spec in &specs {
            let rc = RunConfig {
                model: config.model,
                micro_batch: spec.micro_batch,
                grad_accum: config.batch / spec.micro_batch,
                seq_len: config.seq_len,
                optimizer: config.optimizer,
            };
            runs.push(Run::new(ctx, rc, weights)?);
        }
        let partials = ctx.storage("distance partials", layout.total.div_ceil(crate::gpu::kernels::SUM_BLOCK));
        let mut pb = ProgramBuilder::new(ctx);
        let reference = View::whole(runs[0].params_buffer());
        for run in &runs[1..] {
            let slot = run.config.grad_accum + 1;
            pb.squared_distance(
                &View::whole(run.stats_buffer()),
                slot,
                &View::whole(&partials),
                &View::whole(run.params_buffer()),
                &reference,
                layout.total,
            );
        }
        Ok(Self { config, specs, runs, sampler, distances: pb.finish(), steps: 0, last_report: now_seconds() })
    }

    pub fn specs(&self) -> &[RunSpec] {
        &self.specs
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One lockstep step: a fresh batch, cut for each run, scaled by its
    /// strategy; one submission for everything.
    pub async fn step(&mut self, ctx: &GpuContext) -> Result<(), StepError> {
        let sequences = self.sampler.next_batch();
        self.step_on(ctx, &sequences).await
    }

    /// A lockstep step on given sequences (the batch of B).
    pub async fn step_on(&mut self, ctx: &GpuContext, sequences: &[Vec<u32>]) -> Result<(), StepError> {
        let cut = cut_for_runs(&self.config, &self.specs, sequences)?;
        for (run, (mbs, scales)) in self.runs.iter_mut().zip(&cut) {
            run.prepare(ctx, mbs, scales).await?;
        }
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for run in &self.runs {
            run.encode_step(&mut encoder);
        }
        self.distances.encode(&mut encoder);
        for run in &self.runs {
            run.encode_readback(&mut encoder);
        }
        ctx.queue.submit([encoder.finish()]);
        for run in &mut self.runs {
            run.submitted(ctx)?;
        }
        self.steps += 1;
        Ok(())
    }

    fn metrics(&mut self, per_run: Vec<Vec<StepStats>>) -> Vec<RunMetrics> {
        let mut out = metrics(&self.specs, per_run);
        if !out.is_empty() {
            let now = now_seconds();
            set_throughput(&mut out, now - self.last_report);
            self.last_report = now;
        }
        out
    }

    /// Metrics of finished steps, without waiting.
    pub async fn poll(&mut self, ctx: &GpuContext) -> Result<Vec<RunMetrics>, GpuError> {
        let mut per_run = Vec::new();
        for run in &mut self.runs {
            per_run.push(run.poll(ctx).await?);
        }
        Ok(self.metrics(per_run))
    }

    /// Waits for every submitted step.
    pub async fn flush(&mut self, ctx: &GpuContext) -> Result<Vec<RunMetrics>, GpuError> {
        let mut per_run = Vec::new();
        for run in &mut self.runs {
            per_run.push(run.flush(ctx).await?);
        }
        Ok(self.metrics(per_run))
    }

    /// Validation loss of every run on the same held-out sequences.
    pub async fn validation_loss(&mut self, ctx: &GpuContext, sequences: usize) -> Result<Vec<f64>, StepError> {
        let val = self.sampler.validation_sequences(sequences);
        let mut out = Vec::new();
        for run in &mut self.runs {
            out.push(run.eval_loss(ctx, &val).await?);
        }
        Ok(out)
    }

    /// A text continuation of `prompt` by run `run`.
    pub async fn sample(
        &mut self,
        ctx: &GpuContext,
        run: usize,
        prompt: &str,
        new_tokens: usize,
        temperature: f64,
        seed: u64,
    ) -> Result<String, StepError> {
        let count = self.runs.len();
        let r = self.runs.get_mut(run).ok_or(no_such_run(run, count))?;
        let mut rng = crate::rng::Rng::new(seed);
        let tokens = r.sample(ctx, &crate::data::encode(prompt), new_tokens, temperature, &mut rng).await?;
        Ok(crate::data::decode(&tokens))
    }

    /// The current weights of run `run` (flat layout).
    pub async fn weights(&self, ctx: &GpuContext, run: usize) -> Result<Vec<f32>, StepError> {
        let r = self.runs.get(run).ok_or(no_such_run(run, self.runs.len()))?;
        Ok(r.params(ctx).await?)
    }

    /// The accumulated gradient each run computes on `sequences` at its
    /// current weights, without stepping (flat layout), with each run's
    /// logged loss.
    pub async fn gradients(&mut self, ctx: &GpuContext, sequences: &[Vec<u32>]) -> Result<Vec<RunGradient>, StepError> {
        let cut = cut_for_runs(&self.config, &self.specs, sequences)?;
        let mut out = Vec::new();
        for ((spec, run), (mbs, scales)) in self.specs.iter().zip(&mut self.runs).zip(&cut) {
            let (grads, sums) = run.gradients(ctx, mbs, scales).await?;
            let tokens: Vec<usize> = mbs.iter().map(MicroBatch::tokens).collect();
            out.push(RunGradient { grads, logged_loss: accum::logged_loss(spec.strategy, &sums, &tokens) });
        }
        Ok(out)
    }

    /// The sampler's next batch, without stepping (for tests and export).
    pub fn draw_batch(&mut self) -> Vec<Vec<u32>> {
        self.sampler.next_batch()
    }
}

/// One run's share of a lab step: its micro-batches and the dlogits scale of each.
type RunBatch = (Vec<MicroBatch>, Vec<f32>);

/// Cuts one batch of B sequences for every run: its micro-batches, and the
/// dlogits scale its strategy gives each of them.
fn cut_for_runs(config: &LabConfig, specs: &[RunSpec], sequences: &[Vec<u32>]) -> Result<Vec<RunBatch>, ConfigError> {
    if sequences.len() != config.batch {
        return Err(ConfigError::Invalid {
            field: "batch",
            reason: format!("the lab takes {} sequences per step, got {}", config.batch, sequences.len()),
        });
    }
    specs
        .iter()
        .map(|spec| {
            let micro_batches = split_micro_batches(sequences, spec.micro_batch, config.seq_len)?;
            let tokens: Vec<usize> = micro_batches.iter().map(MicroBatch::tokens).collect();
            Ok((micro_batches, accum::scales(spec.strategy, &tokens)))
        })
        .collect()
}

fn no_such_run(run: usize, count: usize) -> ConfigError {
    ConfigError::Invalid { field: "run", reason: format!("run {run} does not exist; there are {count}") }
}

fn metrics(specs: &[RunSpec], per_run: Vec<Vec<StepStats>>) -> Vec<RunMetrics> {
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
                logged_loss: accum::logged_loss(spec.strategy, &s.loss_sums, &s.tokens),
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

/// The same lab on the CPU reference (f64), for browsers without WebGPU.
/// Slow: meant for the `nano` preset.
pub struct CpuLab {
    pub config: LabConfig,
    specs: Vec<RunSpec>,
    runs: Vec<crate::cpu::CpuRun>,
    sampler: Sampler,
    steps: u64,
}

impl CpuLab {
    pub fn new(config: LabConfig, corpus: Arc<Corpus>) -> Result<Self, ConfigError> {
        config.validate()?;
        let layout = ParamLayout::new(&config.model);
        let init = layout.init(config.seed);
        let sampler = Sampler::new(corpus, config.seed ^ 0x5EED_BA7C, config.batch, config.seq_len, config.spread)?;
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
                crate::cpu::CpuRun::new(rc, &init)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self { config, specs, runs, sampler, steps: 0 })
    }

    pub fn specs(&self) -> &[RunSpec] {
        &self.specs
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// One lockstep step on a fresh batch; returns every run's metrics.
    pub fn step(&mut self) -> Result<Vec<RunMetrics>, ConfigError> {
        let sequences = self.sampler.next_batch();
        self.step_on(&sequences)
    }

    pub fn step_on(&mut self, sequences: &[Vec<u32>]) -> Result<Vec<RunMetrics>, ConfigError> {
        let started = now_seconds();
        let cut = cut_for_runs(&self.config, &self.specs, sequences)?;
        let mut per_run = Vec::new();
        for (run, (mbs, scales)) in self.runs.iter_mut().zip(&cut) {
            per_run.push(vec![run.step(mbs, scales)?]);
        }
        let now = now_seconds();
        let reference = self.runs[0].model.params.clone();
        for (stats, run) in per_run.iter_mut().zip(&self.runs) {
            stats[0].weight_distance = crate::cpu::squared_distance(&run.model.params, &reference).sqrt() as f32;
        }
        self.steps += 1;
        let mut out = metrics(&self.specs, per_run);
        set_throughput(&mut out, now - started);
        Ok(out)
    }

    pub fn validation_loss(&mut self, sequences: usize) -> Result<Vec<f64>, ConfigError> {
        let val = self.sampler.validation_sequences(sequences);
        let t = self.config.seq_len;
        let mb = crate::train::MicroBatch::from_sequences(&val, t)?;
        let n = mb.tokens().max(1) as f64;
        Ok(self
            .runs
            .iter_mut()
            .map(|r| r.model.forward(&mb.inputs, &mb.targets, val.len(), t).iter().sum::<f64>() / n)
            .collect())
    }

    pub fn sample(
        &mut self,
        run: usize,
        prompt: &str,
        new_tokens: usize,
        temperature: f64,
        seed: u64,
    ) -> Result<String, ConfigError> {
        let count = self.runs.len();
        let r = self.runs.get_mut(run).ok_or(no_such_run(run, count))?;
        let (t, v) = (self.config.seq_len, self.config.model.vocab_size);
        let inv_temperature = crate::train::inverse_temperature(temperature)?;
        let start = crate::train::prompt_window(&crate::data::encode(prompt), t, v)?;
        // the GPU path's pick and draws, so a seed gives the same text on both
        let draws: Vec<f64> = crate::train::sample_draws(inv_temperature, new_tokens, &mut crate::rng::Rng::new(seed))
            .iter()
            .map(|&x| x as f64)
            .collect();
        let mut state = [start.len() as u32, 0];
        let mut window = start;
        window.resize(t, 0);
        let mut picked = vec![0u32; new_tokens];
        for _ in 0..new_tokens {
            let n = state[0] as usize;
            r.model.forward(&window[..n], &vec![crate::IGNORE_INDEX; n], 1, n);
            crate::cpu::sample_next_token(&mut state, &mut window, &mut picked, r.model.logits(), &draws, t, v);
        }
        Ok(crate::data::decode(&picked))
    }

    pub fn weights(&self, run: usize) -> Result<Vec<f32>, ConfigError> {
        self.runs.get(run).map(|r| r.params_f32()).ok_or(no_such_run(run, self.runs.len()))
    }
}
