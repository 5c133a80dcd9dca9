//! `GpuRun`: one model with its optimizer state, trained on the GPU — the
//! wgpu implementation of `Trainer`. Split by job over one shared model,
//! token buffer and scalars buffer: `step` (the recorded step and its
//! readback ring), `eval` (validation), `generate` (text), `tokens` (the
//! buffer they share).
//!
//! A lockstep step of several runs records every run's step, then each run's
//! distance to the reference, into one command buffer and submits it once.

mod eval;
mod generate;
mod step;
mod tokens;

use crate::gpu::model::GpuModel;
use crate::gpu::plan::{check_lab, DeviceBudget};
use crate::gpu::{GpuContext, GpuError};
use crate::model::{ConfigError, ParamLayout};
use crate::train::{check_window, Batch, RunConfig, RunState, StepError, StepStats, StepWork, Trainer};

use eval::Evaluator;
use generate::Generator;
use step::Stepper;
use tokens::TokenBuffer;

impl From<GpuError> for StepError {
    fn from(e: GpuError) -> Self {
        match e {
            GpuError::Config(c) => StepError::Config(c),
            other => StepError::Backend(Box::new(other)),
        }
    }
}

/// What every job of a run reads and writes.
struct Shared {
    ctx: GpuContext,
    config: RunConfig,
    model: GpuModel,
    tokens: TokenBuffer,
    /// [0, G) dlogits scales, then lr, 1-β1^t, 1-β2^t
    scalars: wgpu::Buffer,
}

pub struct GpuRun {
    shared: Shared,
    stepper: Stepper,
    evaluator: Evaluator,
    generator: Generator,
}

impl GpuRun {
    pub fn layout(&self) -> &ParamLayout {
        &self.shared.model.layout
    }

    /// Number of dispatches one step records (for the curious and for benchmarks).
    pub fn dispatches_per_step(&self) -> usize {
        self.stepper.dispatches_per_step()
    }

    /// One optimizer step with every dispatch timed by the GPU: (kernel
    /// entry point, seconds) in recorded order. For the benchmark's profile;
    /// the step's stats are not read back.
    pub async fn profile_step(&mut self, work: StepWork<'_>) -> Result<Vec<(&'static str, f64)>, StepError> {
        self.shared.config.check_step(work.micro_batches, work.scales)?;
        Ok(self.stepper.profile(&self.shared, work).await?)
    }
}

/// Writes the starting weights; with LoRA they become the frozen base and the
/// adapters start afresh (B = 0, so the merged weights are the base exactly).
fn write_weights(ctx: &GpuContext, model: &GpuModel, weights: &[f32]) {
    ctx.queue.write_buffer(&model.params, 0, bytemuck::cast_slice(weights));
    if let Some(a) = &model.lora {
        ctx.queue.write_buffer(&a.base, 0, bytemuck::cast_slice(weights));
        ctx.queue.write_buffer(&a.values, 0, bytemuck::cast_slice(&a.layout.init()));
    }
}

impl Trainer for GpuRun {
    type Device = GpuContext;

    /// Builds every buffer and program once.
    fn new(ctx: &GpuContext, config: RunConfig, weights: &[f32]) -> Result<Self, ConfigError> {
        config.validate()?;
        Self::check_runs(ctx, std::slice::from_ref(&config))?;
        let layout = ParamLayout::new(&config.model);
        layout.check_len(weights.len())?;
        let (b, t, g) = (config.micro_batch, config.seq_len, config.grad_accum);
        let model = GpuModel::new(ctx, layout, b, t, config.lora)?;
        write_weights(ctx, &model, weights);
        let tokens = TokenBuffer::new(ctx, b * t, config.model.vocab_size, g)?;
        let scalars = ctx.storage("step scalars", g + 3);
        let shared = Shared { ctx: ctx.clone(), config, model, tokens, scalars };
        Ok(Self {
            stepper: Stepper::new(&shared),
            evaluator: Evaluator::new(&shared),
            generator: Generator::new(&shared),
            shared,
        })
    }

    /// Every buffer of every run within the adapter's limits, before any is made.
    fn check_runs(ctx: &GpuContext, configs: &[RunConfig]) -> Result<(), ConfigError> {
        check_lab(configs, DeviceBudget { limits: &ctx.limits, memory: None })
    }

    fn describe(&self) -> String {
        self.shared.ctx.adapter.to_string()
    }

    fn device_lost(&self) -> Option<String> {
        self.shared.ctx.lost()
    }

    fn config(&self) -> &RunConfig {
        &self.shared.config
    }

    fn steps(&self) -> u64 {
        self.stepper.step
    }

    async fn lockstep(runs: &mut [Self], work: &[Option<StepWork<'_>>]) -> Result<(), StepError> {
        let tokens = Self::check_lockstep(runs, work)?;
        let Some(ctx) = runs.first().map(|r| r.shared.ctx.clone()) else {
            return Ok(());
        };
        for ((run, w), tokens) in runs.iter_mut().zip(work).zip(tokens) {
            if let (Some(w), Some(tokens)) = (w, tokens) {
                run.stepper.prepare(&run.shared, *w, tokens).await?;
            }
        }
        if let Some((reference, others)) = runs.split_first_mut() {
            for (run, _) in others.iter_mut().zip(&work[1..]).filter(|(_, w)| w.is_some()) {
                run.stepper.distance_to(&run.shared, &reference.shared.model.params);
            }
        }
        // the runs that step (a halted one sits out), in run order
        let active = || runs.iter().zip(work).filter(|(_, w)| w.is_some()).map(|(r, _)| r);
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for run in active() {
            run.stepper.encode_step(&mut encoder);
        }
        for run in runs.iter().zip(work).skip(1).filter(|(_, w)| w.is_some()).map(|(r, _)| r) {
            run.stepper.encode_distance(&mut encoder);
        }
        for run in active() {
            run.stepper.encode_readback(&mut encoder);
        }
        ctx.queue.submit([encoder.finish()]);
        ctx.check_errors()?;
        for (run, _) in runs.iter_mut().zip(work).filter(|(_, w)| w.is_some()) {
            run.stepper.submitted();
        }
        Ok(())
    }

    async fn poll(&mut self, wait: bool) -> Result<Vec<StepStats>, StepError> {
        Ok(self.stepper.poll(&self.shared, wait).await?)
    }

    async fn eval_loss(&mut self, batch: &Batch) -> Result<f64, StepError> {
        self.evaluator.eval_loss(&self.shared, batch).await
    }

    async fn generate(&mut self, window: &[u32], draws: &[f32]) -> Result<Vec<u32>, StepError> {
        let c = &self.shared.config;
        check_window(window, c.seq_len, c.model.vocab_size)?;
        self.generator.generate(&self.shared, window, draws).await
    }

    async fn params(&self) -> Result<Vec<f32>, StepError> {
        let s = &self.shared;
        Ok(s.ctx.read_f32(&s.model.params, 0, s.model.layout.total).await?)
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), ConfigError> {
        let s = &self.shared;
        s.model.layout.check_len(params.len())?;
        write_weights(&s.ctx, &s.model, params);
        self.stepper.restart(s);
        Ok(())
    }

    async fn state(&self) -> Result<RunState, StepError> {
        let s = &self.shared;
        let widen = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<f64>>();
        let (weights, adapters) = match &s.model.lora {
            Some(a) => (
                s.ctx.read_f32(&a.base, 0, s.model.layout.total).await?,
                Some(widen(s.ctx.read_f32(&a.values, 0, a.layout.total).await?)),
            ),
            None => (s.ctx.read_f32(&s.model.params, 0, s.model.layout.total).await?, None),
        };
        let (moment1, moment2) = self.stepper.moments(s).await?;
        Ok(RunState {
            weights: widen(weights),
            adapters,
            moment1: widen(moment1),
            moment2: widen(moment2),
            step: self.stepper.step,
        })
    }

    fn set_state(&mut self, state: &RunState) -> Result<(), ConfigError> {
        let s = &self.shared;
        let trains = s.model.trainable().len;
        state.check(s.model.layout.total, s.model.lora.as_ref().map(|a| a.layout.total), trains)?;
        if self.stepper.in_flight() {
            return Err(ConfigError::Invalid {
                field: "state",
                reason: "steps are still in flight; flush the run before restoring it".into(),
            });
        }
        // f64 values that came from this backend narrow back exactly
        let narrow = |v: &[f64]| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
        match (&s.model.lora, &state.adapters) {
            (Some(a), Some(adapters)) => {
                s.ctx.queue.write_buffer(&a.base, 0, bytemuck::cast_slice(&narrow(&state.weights)));
                s.ctx.queue.write_buffer(&s.model.params, 0, bytemuck::cast_slice(&narrow(&state.weights)));
                s.ctx.queue.write_buffer(&a.values, 0, bytemuck::cast_slice(&narrow(adapters)));
            }
            _ => s.ctx.queue.write_buffer(&s.model.params, 0, bytemuck::cast_slice(&narrow(&state.weights))),
        }
        self.stepper.restore(s, &narrow(&state.moment1), &narrow(&state.moment2), state.step);
        Ok(())
    }

    async fn gradients(&mut self, work: StepWork<'_>) -> Result<(Vec<f32>, Vec<f32>), StepError> {
        self.shared.config.check_step(work.micro_batches, work.scales)?;
        Ok(self.stepper.gradients(&self.shared, work).await?)
    }
}
