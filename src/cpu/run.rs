//! A training run on the CPU, generic over its float: in f64 (`ReferenceRun`) the
//! reference the GPU lab is compared with; in f32 (`FastCpuRun`) the backend
//! for browsers without WebGPU, or where a software adapter is slower than
//! plain code. Same steps, same optimizers and clipping as `gpu::GpuRun`;
//! stats are ready as soon as a step returns.
//! With LoRA the optimizer steps the adapters (`CpuModel::lora`) and the
//! weights stay frozen; `params` hands out the merged weights W + s·B·A.

use super::kernels::{grad_norm, sample_next_token, squared_distance, update};
use super::model::CpuModelOf;
use super::Real;
use crate::model::{AdapterLayout, ConfigError, ParamLayout};
use crate::train::{check_window, Batch, MicroBatch, RunConfig, RunState, StepError, StepStats, StepWork, Trainer};
use crate::IGNORE_INDEX;

pub struct CpuRunOf<F> {
    pub config: RunConfig,
    pub model: CpuModelOf<F>,
    /// The optimizer's first and second moments, one value per trainable
    /// value (`optim`: for SGD moment1 is the velocity).
    moment1: Vec<F>,
    moment2: Vec<F>,
    step: u64,
    /// Stats of steps taken, not yet handed out by `poll`.
    ready: Vec<StepStats>,
}

/// What the optimizer steps: the adapters with LoRA, every weight without.
struct Trainable<'a, F> {
    values: &'a mut [F],
    /// d loss / d values, accumulated over the step's micro-batches
    grads: &'a [F],
    /// weight decay applies to values[..decay_end] (the matrices; with LoRA
    /// every adapter value)
    decay_end: usize,
}

/// The f64 reference run.
pub type ReferenceRun = CpuRunOf<f64>;
/// The f32 run with SIMD matmuls: the page's CPU backend.
pub type FastCpuRun = CpuRunOf<f32>;

impl<F: Real> CpuRunOf<F> {
    /// The weights the model computes with (merged with its adapters), as
    /// the GPU stores them.
    pub fn params_f32(&self) -> Vec<f32> {
        self.model.effective_params().iter().map(|&x| x.as_f64() as f32).collect()
    }

    fn trainable(&mut self) -> Trainable<'_, F> {
        let m = &mut self.model;
        match &mut m.lora {
            Some(a) => Trainable { values: &mut a.params, grads: &a.grads, decay_end: a.layout.total },
            None => Trainable { values: &mut m.params, grads: &m.grads, decay_end: m.layout.decay_end },
        }
    }

    /// Zeroes the gradient, then forward and backward of every micro-batch
    /// with its scale (`+=` into the gradient); returns each loss sum.
    fn accumulate(&mut self, work: StepWork<'_>) -> Vec<f32> {
        let (b, t) = (self.config.micro_batch, self.config.seq_len);
        self.model.zero_grad();
        let mut loss_sums = Vec::new();
        for (mb, &scale) in work.micro_batches.iter().zip(work.scales) {
            let losses = self.model.forward(&mb.inputs, &mb.targets, b, t);
            loss_sums.push(losses.iter().map(|l| l.as_f64()).sum::<f64>() as f32);
            self.model.backward(scale as f64);
        }
        loss_sums
    }

    /// One optimizer step on already checked input.
    fn step_checked(&mut self, work: StepWork<'_>, tokens: Vec<usize>) -> StepStats {
        let loss_sums = self.accumulate(work);
        self.step += 1;
        let (rule, at) = (self.config.optimizer.update_rule(), self.config.optimizer.step_scalars(self.step));
        let (mut moment1, mut moment2) = (std::mem::take(&mut self.moment1), std::mem::take(&mut self.moment2));
        let t = self.trainable();
        let norm = grad_norm(t.grads);
        update(t.values, t.grads, &mut moment1, &mut moment2, &rule, &at, t.decay_end, rule.clip_factor(norm));
        (self.moment1, self.moment2) = (moment1, moment2);
        StepStats { step: self.step, loss_sums, tokens, grad_norm: norm as f32, weight_distance: 0.0 }
    }
}

impl<F: Real> Trainer for CpuRunOf<F> {
    type Device = ();

    fn new(_: &(), config: RunConfig, weights: &[f32]) -> Result<Self, ConfigError> {
        config.validate()?;
        let layout = ParamLayout::new(&config.model);
        layout.check_len(weights.len())?;
        // fresh adapters from the run's LoRA seed (B = 0: the base model)
        let adapters = config.lora.map(|lora| AdapterLayout::new(&layout, lora)).transpose()?;
        let n = adapters.as_ref().map_or(layout.total, |a| a.total);
        let mut model = CpuModelOf::new(layout, weights);
        if let Some(a) = adapters {
            let init = a.init();
            model = model.with_adapters(a, &init);
        }
        Ok(Self { config, model, moment1: vec![F::zero(); n], moment2: vec![F::zero(); n], step: 0, ready: Vec::new() })
    }

    fn describe(&self) -> String {
        F::BACKEND.to_string()
    }

    fn config(&self) -> &RunConfig {
        &self.config
    }

    fn steps(&self) -> u64 {
        self.step
    }

    async fn lockstep(runs: &mut [Self], work: &[Option<StepWork<'_>>]) -> Result<(), StepError> {
        let tokens = Self::check_lockstep(runs, work)?;
        // the runs share nothing: each steps on a thread of its own where
        // there are threads
        let steps: Vec<_> = runs
            .iter_mut()
            .zip(work)
            .zip(tokens)
            .filter_map(|((run, w), tokens)| Some((run, (*w)?, tokens?)))
            .collect();
        super::threads::for_each(steps, |(run, w, tokens)| {
            let stats = run.step_checked(w, tokens);
            run.ready.push(stats);
        });
        if let Some((reference, others)) = runs.split_first_mut() {
            let reference = reference.model.effective_params();
            for (run, _) in others.iter_mut().zip(&work[1..]).filter(|(_, w)| w.is_some()) {
                let d = squared_distance(&run.model.effective_params(), &reference).sqrt() as f32;
                if let Some(last) = run.ready.last_mut() {
                    last.weight_distance = d;
                }
            }
        }
        Ok(())
    }

    async fn poll(&mut self, _wait: bool) -> Result<Vec<StepStats>, StepError> {
        Ok(std::mem::take(&mut self.ready))
    }

    async fn eval_loss(&mut self, batch: &Batch) -> Result<f64, StepError> {
        let t = self.config.seq_len;
        if batch.is_empty() {
            return Ok(0.0);
        }
        let mb = MicroBatch::from_prompted(&batch.sequences, &batch.prompt_lengths, t)?;
        mb.check(0, batch.len(), t, self.config.model.vocab_size)?;
        let n = mb.tokens().max(1) as f64;
        Ok(self.model.forward(&mb.inputs, &mb.targets, batch.len(), t).iter().map(|l| l.as_f64()).sum::<f64>() / n)
    }

    async fn generate(&mut self, window: &[u32], draws: &[f32]) -> Result<Vec<u32>, StepError> {
        let (t, v) = (self.config.seq_len, self.config.model.vocab_size);
        check_window(window, t, v)?;
        let new_tokens = draws.len().saturating_sub(1);
        let draws: Vec<f64> = draws.iter().map(|&x| x as f64).collect();
        let mut state = [window.len() as u32, 0];
        let mut window = window.to_vec();
        window.resize(t, 0);
        let mut picked = vec![0u32; new_tokens];
        for _ in 0..new_tokens {
            let n = state[0] as usize;
            self.model.forward(&window[..n], &vec![IGNORE_INDEX; n], 1, n);
            sample_next_token(&mut state, &mut window, &mut picked, self.model.logits(), &draws, t, v);
        }
        Ok(picked)
    }

    async fn params(&self) -> Result<Vec<f32>, StepError> {
        Ok(self.params_f32())
    }

    fn set_params(&mut self, params: &[f32]) -> Result<(), ConfigError> {
        self.model.layout.check_len(params.len())?;
        self.model.params = params.iter().map(|&x| F::of(x as f64)).collect();
        if let Some(a) = &mut self.model.lora {
            a.params = a.layout.init().iter().map(|&x| F::of(x as f64)).collect();
        }
        self.moment1.fill(F::zero());
        self.moment2.fill(F::zero());
        self.step = 0;
        Ok(())
    }

    async fn state(&self) -> Result<RunState, StepError> {
        Ok(RunState {
            weights: wide(&self.model.params),
            adapters: self.model.lora.as_ref().map(|a| wide(&a.params)),
            moment1: wide(&self.moment1),
            moment2: wide(&self.moment2),
            step: self.step,
        })
    }

    fn set_state(&mut self, state: &RunState) -> Result<(), ConfigError> {
        let adapters = self.model.lora.as_ref().map(|a| a.layout.total);
        state.check(self.model.layout.total, adapters, self.moment1.len())?;
        self.model.params = narrow(&state.weights);
        if let (Some(a), Some(saved)) = (&mut self.model.lora, &state.adapters) {
            a.params = narrow(saved);
        }
        self.moment1 = narrow(&state.moment1);
        self.moment2 = narrow(&state.moment2);
        self.step = state.step;
        self.ready.clear();
        Ok(())
    }

    async fn gradients(&mut self, work: StepWork<'_>) -> Result<(Vec<f32>, Vec<f32>), StepError> {
        self.config.check_step(work.micro_batches, work.scales)?;
        let sums = self.accumulate(work);
        let grads = self.trainable().grads;
        Ok((grads.iter().map(|&g| g.as_f64() as f32).collect(), sums))
    }
}

/// A state's values in f64, as `RunState` keeps them (exact for f32).
fn wide<F: Real>(v: &[F]) -> Vec<f64> {
    v.iter().map(|x| x.as_f64()).collect()
}

/// A saved state's values in this run's float.
fn narrow<F: Real>(v: &[f64]) -> Vec<F> {
    v.iter().map(|&x| F::of(x)).collect()
}
