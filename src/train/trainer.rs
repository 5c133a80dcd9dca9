//! `Trainer`: a model that takes accumulation steps. The wgpu run
//! (`gpu::GpuRun`) and the CPU run (`cpu::CpuRunOf<F>`: the f64 reference and
//! the f32 backend) implement it; the lab (`lab::Lab`) and everything
//! above it are written once against it.
//!
//! Adding a backend means implementing this trait for its run type and
//! nothing else (docs/DESIGN.md §4).

use crate::model::ConfigError;

use super::batch::{Batch, MicroBatch};
use super::run::{RunConfig, StepError, StepStats};
use super::state::RunState;

/// One run's share of a lockstep step: its G micro-batches and the dlogits
/// scale of each (`accum::scales`).
#[derive(Debug, Clone, Copy)]
pub struct StepWork<'a> {
    pub micro_batches: &'a [MicroBatch],
    pub scales: &'a [f32],
}

/// A model with its optimizer state that takes accumulation steps: for each
/// micro-batch a forward pass, the fused loss with that micro-batch's dlogits
/// scale and a backward pass that adds into one gradient, then the optimizer.
///
/// The futures are awaited on one thread (pollster natively, the browser's
/// event loop in wasm, where wgpu's objects are not `Send`), so the trait
/// asks for no `Send` bound.
#[allow(async_fn_in_trait)]
pub trait Trainer: Sized + 'static {
    /// What runs are built on: a GPU context, or `()` for the CPU.
    type Device;

    /// A run of `config` starting from `weights` (flat `ParamLayout` order);
    /// makes every buffer it will ever need.
    fn new(device: &Self::Device, config: RunConfig, weights: &[f32]) -> Result<Self, ConfigError>;

    /// Whether runs of `configs` fit `device` together, checked before any
    /// is built (`Lab` asks): on the GPU every buffer within the adapter's
    /// limits (`gpu::plan::check_lab`); nothing to check on the CPU.
    fn check_runs(device: &Self::Device, configs: &[RunConfig]) -> Result<(), ConfigError> {
        let _ = (device, configs);
        Ok(())
    }

    /// The hardware this run is on, for status lines and reports.
    fn describe(&self) -> String;

    fn config(&self) -> &RunConfig;

    /// Optimizer steps taken so far.
    fn steps(&self) -> u64;

    /// One optimizer step of every run in `runs` on its `work` (same length),
    /// then each run's weight distance ‖w − w_0‖ to `runs[0]` into that step's
    /// stats. A run whose work is `None` sits the step out: it neither moves
    /// nor reports (a stopped, diverged run). Input is checked first
    /// (`RunConfig::check_step`); a refused step changes no run. Stats arrive
    /// through `poll`.
    async fn lockstep(runs: &mut [Self], work: &[Option<StepWork<'_>>]) -> Result<(), StepError>;

    /// Stats of finished steps, oldest first; with `wait`, of every step
    /// taken so far. A backend may return them a few steps late.
    async fn poll(&mut self, wait: bool) -> Result<Vec<StepStats>, StepError>;

    /// Mean loss over the targets of `batch` (each sequence at most T+1
    /// tokens, prompts masked) without training.
    async fn eval_loss(&mut self, batch: &Batch) -> Result<f64, StepError>;

    /// Continues `window` (at most T tokens, ids inside V) by one token per
    /// uniform in `draws` = [1/temperature, u_1 .. u_k] (`sample_draws`),
    /// each picked by `sample_next_token` from the model's distribution.
    async fn generate(&mut self, window: &[u32], draws: &[f32]) -> Result<Vec<u32>, StepError>;

    /// The current weights, flat (`ParamLayout`); under LoRA the frozen base
    /// with every adapter merged in, W + (α/r)·B·A — the model the run is.
    async fn params(&self) -> Result<Vec<f32>, StepError>;

    /// Overwrites the weights (under LoRA: the frozen base, the adapters back
    /// at their init) and resets optimizer state and step count.
    fn set_params(&mut self, params: &[f32]) -> Result<(), ConfigError>;

    /// Everything that decides the next steps: weights, optimizer state,
    /// step count (after every step submitted so far).
    async fn state(&self) -> Result<RunState, StepError>;

    /// Puts back a `state` read from a run of the same config: the run then
    /// continues bit for bit as the saved one would have. Stats not yet
    /// polled are dropped.
    fn set_state(&mut self, state: &RunState) -> Result<(), ConfigError>;

    /// The accumulated gradient of `work` at the current weights, without
    /// updating them: (gradient of what trains — flat `ParamLayout`, or under
    /// LoRA flat `AdapterLayout` — and the loss sum of each micro-batch).
    async fn gradients(&mut self, work: StepWork<'_>) -> Result<(Vec<f32>, Vec<f32>), StepError>;

    /// Why the device this run is on was lost, if it was (then nothing
    /// further works and the run must be rebuilt on a new device). A CPU
    /// never is.
    fn device_lost(&self) -> Option<String> {
        None
    }

    /// The checks every `lockstep` makes before any run moves, so a refused
    /// step changes none: one share of work per run, each share valid for its
    /// run (`RunConfig::check_step`). Returns each stepping run's N_g (none
    /// for a run that sits out).
    fn check_lockstep(runs: &[Self], work: &[Option<StepWork<'_>>]) -> Result<Vec<Option<Vec<usize>>>, StepError> {
        if runs.len() != work.len() {
            return Err(ConfigError::Invalid {
                field: "batch",
                reason: format!("{} runs were given {} shares of work", runs.len(), work.len()),
            }
            .into());
        }
        Ok(runs
            .iter()
            .zip(work)
            .map(|(r, w)| w.map(|w| r.config().check_step(w.micro_batches, w.scales)).transpose())
            .collect::<Result<_, _>>()?)
    }

    /// One optimizer step of this run alone.
    async fn step(&mut self, work: StepWork<'_>) -> Result<(), StepError> {
        Self::lockstep(std::slice::from_mut(self), &[Some(work)]).await
    }
}
