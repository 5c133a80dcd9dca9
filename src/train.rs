//! A run: one model with its optimizer state, trained step by step on the GPU.
//!
//! A step is G micro-batches: for each, forward, the fused loss with that
//! micro-batch's dlogits scale, and backward accumulating into one gradient
//! buffer; then the gradient norm and one optimizer dispatch. All of it is one
//! recorded `Program`, encoded into one command buffer and submitted once.
//! Losses come back through a small ring of mappable buffers, a few steps late,
//! so the CPU (or the page) never waits for the GPU on every step.
//! Not here: which scale each micro-batch gets (the caller decides; see the
//! accumulation strategies) or where sequences come from.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use crate::gpu::model::{check_buffer, GpuModel, TokenViews};
use crate::gpu::{token_positions, GpuContext, GpuError, Program, ProgramBuilder, Readback, UpdateSettings, View};
use crate::model::config::ConfigError;
use crate::model::{ModelConfig, ParamLayout};
use crate::optim::{OptimizerConfig, OptimizerKind};
use crate::IGNORE_INDEX;

/// One micro-batch: B sequences of T positions, right-padded. `inputs` and
/// `targets` are [B,T]; padded targets are `IGNORE_INDEX`.
#[derive(Debug, Clone, PartialEq)]
pub struct MicroBatch {
    pub inputs: Vec<u32>,
    pub targets: Vec<u32>,
}

impl MicroBatch {
    /// Builds a micro-batch from whole sequences: sequence s gives inputs
    /// s[..n-1] and targets s[1..], right-padded to `t` positions.
    pub fn from_sequences(sequences: &[Vec<u32>], t: usize) -> Result<Self, ConfigError> {
        let mut inputs = vec![0u32; sequences.len() * t];
        let mut targets = vec![IGNORE_INDEX; sequences.len() * t];
        for (i, s) in sequences.iter().enumerate() {
            if s.len() < 2 {
                return Err(ConfigError::Invalid {
                    field: "sequence",
                    reason: format!("sequence {i} has {} tokens; at least 2 are needed for one target", s.len()),
                });
            }
            if s.len() - 1 > t {
                return Err(ConfigError::Invalid {
                    field: "sequence",
                    reason: format!("sequence {i} has {} tokens, longer than the context of {} + 1", s.len(), t),
                });
            }
            let n = s.len() - 1;
            inputs[i * t..i * t + n].copy_from_slice(&s[..n]);
            targets[i * t..i * t + n].copy_from_slice(&s[1..]);
        }
        Ok(Self { inputs, targets })
    }

    /// Number of real (non-padded) targets: N_g in DESIGN.md.
    pub fn tokens(&self) -> usize {
        self.targets.iter().filter(|&&t| t != IGNORE_INDEX).count()
    }
}

/// Everything fixed for the life of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub model: ModelConfig,
    /// B: sequences per micro-batch.
    pub micro_batch: usize,
    /// G: micro-batches per optimizer step.
    pub grad_accum: usize,
    /// T: positions per sequence (at most block_size).
    pub seq_len: usize,
    pub optimizer: OptimizerConfig,
}

impl RunConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.model.validate()?;
        self.optimizer.validate()?;
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
                reason: format!("must be between 1 and block_size ({}), got {}", self.model.block_size, self.seq_len),
            });
        }
        Ok(())
    }
}

/// What one step measured, read back from the GPU.
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

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

const RING: usize = 4;

/// Tokens generated per submission: the forward pass and the pick alternate
/// this many times inside one command buffer before the picks are read back.
pub const SAMPLE_CHUNK: usize = 128;

/// 1/temperature for the pick kernels, 0 meaning greedy; refuses what is not
/// a temperature.
pub fn inverse_temperature(temperature: f64) -> Result<f64, ConfigError> {
    if !temperature.is_finite() || temperature < 0.0 {
        return Err(ConfigError::Invalid {
            field: "temperature",
            reason: format!("must be a finite number >= 0 (0 picks the likeliest token), got {temperature}"),
        });
    }
    Ok(if temperature == 0.0 { 0.0 } else { 1.0 / temperature })
}

/// The window a continuation of `prompt` starts from: its last `t` tokens (a
/// newline for an empty prompt), refused if a token is outside `v`.
pub fn prompt_window(prompt: &[u32], t: usize, v: usize) -> Result<Vec<u32>, ConfigError> {
    if let Some(bad) = prompt.iter().find(|&&x| x as usize >= v) {
        return Err(ConfigError::Invalid { field: "prompt", reason: format!("token {bad} is outside the vocabulary") });
    }
    let context = if prompt.is_empty() { &[b'\n' as u32][..] } else { prompt };
    Ok(context[context.len().saturating_sub(t)..].to_vec())
}

/// The draws `sample_next_token` reads for `k` picks: 1/temperature, then one
/// uniform per pick, in f32 so the GPU and the CPU twin see the same numbers.
pub fn sample_draws(inv_temperature: f64, k: usize, rng: &mut crate::rng::Rng) -> Vec<f32> {
    std::iter::once(inv_temperature as f32).chain((0..k).map(|_| rng.uniform() as f32)).collect()
}

struct ReadSlot {
    buffer: wgpu::Buffer,
    pending: Option<Pending>,
}

struct Pending {
    step: u64,
    tokens: Vec<usize>,
    mapped: futures_channel::oneshot::Receiver<Result<(), wgpu::BufferAsyncError>>,
}

/// Words of one micro-batch's section of the token buffer, each part 64-aligned.
struct TokenSection {
    bt: usize,
    vocab: usize,
}

impl TokenSection {
    fn part(n: usize) -> usize {
        n.div_ceil(64) * 64
    }
    fn words(&self) -> usize {
        3 * Self::part(self.bt) + Self::part(self.vocab + 1)
    }
    fn views(&self, buffer: &wgpu::Buffer, g: usize) -> TokenViews {
        let base = g * self.words();
        let p = Self::part(self.bt);
        TokenViews {
            inputs: View::words(buffer, base, self.bt),
            targets: View::words(buffer, base + p, self.bt),
            offsets: View::words(buffer, base + 2 * p, self.vocab + 1),
            positions: View::words(buffer, base + 2 * p + Self::part(self.vocab + 1), self.bt),
        }
    }
    fn fill(&self, out: &mut [u32], mb: &MicroBatch) {
        let p = Self::part(self.bt);
        let (offsets, positions) = token_positions(&mb.inputs, self.vocab);
        out[..self.bt].copy_from_slice(&mb.inputs);
        out[p..p + self.bt].copy_from_slice(&mb.targets);
        out[2 * p..2 * p + self.vocab + 1].copy_from_slice(&offsets);
        let q = 2 * p + Self::part(self.vocab + 1);
        out[q..q + self.bt].copy_from_slice(&positions);
    }
}

/// A model, its optimizer state and its recorded step.
pub struct Run {
    pub config: RunConfig,
    model: GpuModel,
    state1: wgpu::Buffer,
    state2: wgpu::Buffer,
    tokens: wgpu::Buffer,
    section: TokenSection,
    scalars: wgpu::Buffer,
    stats: wgpu::Buffer,
    step_program: Program,
    grads_program: Program,
    /// Forward and loss sum on token slot i into eval_stats[i], one per slot,
    /// so a validation pass fills every slot before one readback.
    eval_programs: Vec<Program>,
    eval_stats: wgpu::Buffer,
    eval_readback: Readback,
    /// Forward of one sequence and one pick; see `sample`.
    sample_program: Program,
    /// [window length, tokens picked]
    sample_state: wgpu::Buffer,
    /// [1/temperature, SAMPLE_CHUNK uniforms]
    sample_draws: wgpu::Buffer,
    /// [SAMPLE_CHUNK] token ids
    sample_picked: wgpu::Buffer,
    sample_readback: Readback,
    /// Token counts of the step uploaded but not yet submitted.
    staged: Option<Vec<usize>>,
    ring: Vec<ReadSlot>,
    next_slot: usize,
    step: u64,
    /// Step stats read back but not yet taken by the caller.
    ready: VecDeque<StepStats>,
}

impl Run {
    /// Builds every buffer and both programs (full step, gradients only) once.
    pub fn new(ctx: &GpuContext, config: RunConfig, init_params: &[f32]) -> Result<Self, ConfigError> {
        config.validate()?;
        let layout = ParamLayout::new(&config.model);
        layout.check_len(init_params.len())?;
        let (b, t, g) = (config.micro_batch, config.seq_len, config.grad_accum);
        let model = GpuModel::new(ctx, layout.clone(), b, t)?;
        ctx.queue.write_buffer(&model.params, 0, bytemuck::cast_slice(init_params));
        let section = TokenSection { bt: b * t, vocab: config.model.vocab_size };
        check_buffer(ctx, "token ids of one step", g * section.words())?;
        let tokens = ctx.storage("tokens", g * section.words());
        let state1 = ctx.storage("optimizer state 1", layout.total);
        let state2 = ctx.storage("optimizer state 2", layout.total);
        // scalars: [0, G) dlogits scales, then lr, 1-β1^t, 1-β2^t
        let scalars = ctx.storage("step scalars", g + 3);
        // stats: [0, G) loss sums, then Σ g², then ‖w − w_ref‖² (written by a lab)
        let stats = ctx.storage("step stats", g + 2);
        let partials = ctx.storage("norm partials", layout.total.div_ceil(crate::gpu::kernels::SUM_BLOCK));
        let eval_stats = ctx.storage("eval loss sums", g);
        let token_views: Vec<TokenViews> = (0..g).map(|i| section.views(&tokens, i)).collect();

        let record_grads = |pb: &mut ProgramBuilder| {
            let (scalars_v, stats_v, grads_v) = (View::whole(&scalars), View::whole(&stats), View::whole(&model.grads));
            // zeroing the gradient is the step's job: backward only ever adds
            pb.clear(&grads_v);
            for (i, tv) in token_views.iter().enumerate() {
                model.record_forward(pb, tv);
                model.record_loss(pb, tv, &scalars_v, i);
                pb.sum(&stats_v, i, &model.losses, b * t);
                model.record_backward(pb, tv);
            }
            pb.sum_squares(&stats_v, g, &View::whole(&partials), &grads_v, layout.total);
        };
        let mut pb = ProgramBuilder::new(ctx);
        record_grads(&mut pb);
        let grads_program = pb.finish();

        let mut pb = ProgramBuilder::new(ctx);
        record_grads(&mut pb);
        let opt = &config.optimizer;
        let settings = UpdateSettings {
            n: layout.total,
            decay_end: layout.decay_end,
            scalars_index: g,
            norm_index: g,
            beta1: match opt.kind {
                OptimizerKind::Sgd => 0.0,
                OptimizerKind::Momentum => opt.momentum as f32,
                OptimizerKind::Adam | OptimizerKind::AdamW => opt.beta1 as f32,
            },
            beta2: opt.beta2 as f32,
            eps: opt.eps as f32,
            weight_decay: opt.effective_weight_decay() as f32,
            max_grad_norm: opt.max_grad_norm as f32,
        };
        let (p, gr, s1, s2) =
            (View::whole(&model.params), View::whole(&model.grads), View::whole(&state1), View::whole(&state2));
        let (sc, st) = (View::whole(&scalars), View::whole(&stats));
        match opt.kind {
            OptimizerKind::Sgd | OptimizerKind::Momentum => pb.sgd_update(&p, &gr, &s1, &sc, &st, &settings),
            OptimizerKind::Adam | OptimizerKind::AdamW => pb.adamw_update(&p, &gr, &s1, &s2, &sc, &st, &settings),
        }
        let step_program = pb.finish();

        // forward only, for validation: the dlogits they also write go unused
        let eval_programs = token_views
            .iter()
            .enumerate()
            .map(|(i, tv)| {
                let mut pb = ProgramBuilder::new(ctx);
                model.record_forward(&mut pb, tv);
                model.record_loss(&mut pb, tv, &View::whole(&scalars), 0);
                pb.sum(&View::whole(&eval_stats), i, &model.losses, b * t);
                pb.finish()
            })
            .collect();

        // generating text: one sequence forward, then the pick appends to its window
        let sample_state = ctx.storage("sample state", 2);
        let sample_draws = ctx.storage("sample draws", 1 + SAMPLE_CHUNK);
        let sample_picked = ctx.storage("sampled tokens", SAMPLE_CHUNK);
        let mut pb = ProgramBuilder::new(ctx);
        let window = &token_views[0];
        model.record_forward_first(&mut pb, window, 1);
        pb.sample_next_token(
            &View::whole(&sample_state),
            &window.inputs,
            &View::whole(&sample_picked),
            &model.logits,
            &View::whole(&sample_draws),
            t,
            config.model.vocab_size,
        );
        let sample_program = pb.finish();

        let ring = (0..RING)
            .map(|_| ReadSlot {
                buffer: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("stats readback"),
                    size: ((g + 2) * 4) as u64,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }),
                pending: None,
            })
            .collect();
        Ok(Self {
            config,
            model,
            state1,
            state2,
            tokens,
            section,
            scalars,
            stats,
            step_program,
            grads_program,
            eval_programs,
            eval_readback: Readback::new(ctx, "eval loss sums readback", g),
            eval_stats,
            sample_program,
            sample_state,
            sample_draws,
            sample_readback: Readback::new(ctx, "sampled tokens readback", SAMPLE_CHUNK),
            sample_picked,
            staged: None,
            ring,
            next_slot: 0,
            step: 0,
            ready: VecDeque::new(),
        })
    }

    pub fn layout(&self) -> &ParamLayout {
        &self.model.layout
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Number of dispatches one step records (for the curious and for benchmarks).
    pub fn dispatches_per_step(&self) -> usize {
        self.step_program.dispatch_count()
    }

    /// Checks a step's input and writes tokens and scalars into the GPU buffers.
    fn upload(
        &self,
        ctx: &GpuContext,
        batch: &[MicroBatch],
        scales: &[f32],
        step: u64,
    ) -> Result<Vec<usize>, ConfigError> {
        let g = self.config.grad_accum;
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
        self.write_tokens(ctx, batch)?;
        let mut scalars = scales.to_vec();
        scalars.extend_from_slice(&self.config.optimizer.step_scalars(step));
        ctx.queue.write_buffer(&self.scalars, 0, bytemuck::cast_slice(&scalars));
        Ok(batch.iter().map(MicroBatch::tokens).collect())
    }

    /// Checks micro-batches and writes them into the first `batch.len()` slots
    /// of the token buffer (forward-only work uses slot 0 alone).
    fn write_tokens(&self, ctx: &GpuContext, batch: &[MicroBatch]) -> Result<(), ConfigError> {
        let (b, t) = (self.config.micro_batch, self.config.seq_len);
        let v = self.config.model.vocab_size;
        let w = self.section.words();
        let mut words = vec![0u32; batch.len() * w];
        for (i, mb) in batch.iter().enumerate() {
            if mb.inputs.len() != b * t || mb.targets.len() != b * t {
                return Err(ConfigError::Invalid {
                    field: "batch",
                    reason: format!(
                        "micro-batch {i} must hold {b}x{t} inputs and targets, got {} and {}",
                        mb.inputs.len(),
                        mb.targets.len()
                    ),
                });
            }
            if let Some(bad) = mb.inputs.iter().chain(&mb.targets).find(|&&x| x as usize >= v && x != IGNORE_INDEX) {
                return Err(ConfigError::Invalid {
                    field: "batch",
                    reason: format!("token id {bad} is outside the vocabulary of {v}"),
                });
            }
            if mb.inputs.contains(&IGNORE_INDEX) {
                return Err(ConfigError::Invalid {
                    field: "batch",
                    reason: "an input position holds IGNORE_INDEX".into(),
                });
            }
            self.section.fill(&mut words[i * w..(i + 1) * w], mb);
        }
        ctx.queue.write_buffer(&self.tokens, 0, bytemuck::cast_slice(&words));
        Ok(())
    }

    /// One optimizer step on `batch` (G micro-batches), micro-batch i's dlogits
    /// scaled by `scales[i]`. Returns once the work is submitted; its stats
    /// arrive later through `poll` or `flush`. Waits only if the GPU is more
    /// than a few steps behind.
    pub async fn step(&mut self, ctx: &GpuContext, batch: &[MicroBatch], scales: &[f32]) -> Result<(), StepError> {
        self.prepare(ctx, batch, scales).await?;
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        self.encode_step(&mut encoder);
        self.encode_readback(&mut encoder);
        ctx.queue.submit([encoder.finish()]);
        self.submitted(ctx)
    }

    /// First part of a step: frees the readback slot this step will use and
    /// uploads its tokens and scalars. A refused batch changes nothing.
    pub(crate) async fn prepare(
        &mut self,
        ctx: &GpuContext,
        batch: &[MicroBatch],
        scales: &[f32],
    ) -> Result<(), StepError> {
        let slot = self.next_slot;
        if self.ring[slot].pending.is_some() {
            self.collect_slot(ctx, slot, true).await?;
        }
        let tokens = self.upload(ctx, batch, scales, self.step + 1)?;
        self.step += 1;
        self.staged = Some(tokens);
        Ok(())
    }

    /// Records the step's forward, backward and update.
    pub(crate) fn encode_step(&self, encoder: &mut wgpu::CommandEncoder) {
        self.step_program.encode(encoder);
    }

    /// Records the copy of the step's stats into its readback slot.
    pub(crate) fn encode_readback(&self, encoder: &mut wgpu::CommandEncoder) {
        let dst = &self.ring[self.next_slot].buffer;
        encoder.copy_buffer_to_buffer(&self.stats, 0, dst, 0, dst.size());
    }

    /// After the submission: starts mapping the readback slot.
    pub(crate) fn submitted(&mut self, ctx: &GpuContext) -> Result<(), StepError> {
        ctx.check_errors()?;
        let slot = self.next_slot;
        let tokens = self.staged.take().unwrap_or_default();
        let (tx, rx) = futures_channel::oneshot::channel();
        self.ring[slot].buffer.slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.ring[slot].pending = Some(Pending { step: self.step, tokens, mapped: rx });
        self.next_slot = (slot + 1) % RING;
        Ok(())
    }

    pub(crate) fn params_buffer(&self) -> &wgpu::Buffer {
        &self.model.params
    }

    pub(crate) fn stats_buffer(&self) -> &wgpu::Buffer {
        &self.stats
    }

    /// Mean loss over `sequences` (each at most T+1 tokens) without training:
    /// forward passes of one micro-batch per token slot, up to G of them per
    /// submission and readback. Awaits the GPU.
    pub async fn eval_loss(&mut self, ctx: &GpuContext, sequences: &[Vec<u32>]) -> Result<f64, StepError> {
        let (b, t) = (self.config.micro_batch, self.config.seq_len);
        let (mut sum, mut count) = (0.0f64, 0usize);
        for group in sequences.chunks(b * self.eval_programs.len()) {
            let mut batch = Vec::new();
            for chunk in group.chunks(b) {
                let mut padded: Vec<Vec<u32>> = chunk.to_vec();
                // fill the micro-batch with copies; their targets are ignored below
                padded.resize(b, chunk[0].clone());
                let mut mb = MicroBatch::from_sequences(&padded, t)?;
                mb.targets[chunk.len() * t..].fill(IGNORE_INDEX);
                count += mb.tokens();
                batch.push(mb);
            }
            self.write_tokens(ctx, &batch)?;
            ctx.queue.write_buffer(&self.scalars, 0, bytemuck::bytes_of(&1.0f32));
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            for program in &self.eval_programs[..batch.len()] {
                program.encode(&mut encoder);
            }
            self.eval_readback.record_copy(&mut encoder, &self.eval_stats, 0, (batch.len() * 4) as u64);
            ctx.queue.submit([encoder.finish()]);
            sum += self.eval_readback.read_f32(ctx, batch.len()).await?.iter().map(|&x| x as f64).sum::<f64>();
        }
        Ok(sum / count.max(1) as f64)
    }

    /// Continues `prompt` by `new_tokens` tokens sampled at `temperature`
    /// (0 = greedy) from the model's next-token distribution.
    pub async fn sample(
        &mut self,
        ctx: &GpuContext,
        prompt: &[u32],
        new_tokens: usize,
        temperature: f64,
        rng: &mut crate::rng::Rng,
    ) -> Result<Vec<u32>, StepError> {
        let (b, t, v) = (self.config.micro_batch, self.config.seq_len, self.config.model.vocab_size);
        let inv_temperature = inverse_temperature(temperature)?;
        let window = prompt_window(prompt, t, v)?;
        let mut inputs = vec![0u32; b * t];
        inputs[..window.len()].copy_from_slice(&window);
        self.write_tokens(ctx, &[MicroBatch { inputs, targets: vec![IGNORE_INDEX; b * t] }])?;
        ctx.queue.write_buffer(&self.sample_state, 0, bytemuck::cast_slice(&[window.len() as u32, 0]));
        let mut out = Vec::with_capacity(new_tokens);
        while out.len() < new_tokens {
            let k = (new_tokens - out.len()).min(SAMPLE_CHUNK);
            // the window carries over from the last chunk on the GPU; only the count restarts
            ctx.queue.write_buffer(&self.sample_state, 4, bytemuck::bytes_of(&0u32));
            ctx.queue.write_buffer(&self.sample_draws, 0, bytemuck::cast_slice(&sample_draws(inv_temperature, k, rng)));
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            for _ in 0..k {
                self.sample_program.encode(&mut encoder);
            }
            self.sample_readback.record_copy(&mut encoder, &self.sample_picked, 0, (k * 4) as u64);
            ctx.queue.submit([encoder.finish()]);
            out.extend(self.sample_readback.read_u32(ctx, k).await?);
        }
        Ok(out)
    }

    /// Reads back slot `slot` if its map finished (or, with `wait`, once it has).
    async fn collect_slot(&mut self, ctx: &GpuContext, slot: usize, wait: bool) -> Result<bool, GpuError> {
        let Some(pending) = self.ring[slot].pending.as_mut() else {
            return Ok(false);
        };
        #[cfg(target_arch = "wasm32")]
        let _ = ctx;
        let result = if wait {
            #[cfg(not(target_arch = "wasm32"))]
            ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|e| GpuError::Readback(e.to_string()))?;
            Some((&mut pending.mapped).await.map_err(|_| GpuError::Readback("map callback dropped".into()))?)
        } else {
            match pending.mapped.try_recv() {
                Ok(r) => r,
                Err(_) => return Err(GpuError::Readback("map callback dropped".into())),
            }
        };
        let Some(result) = result else {
            return Ok(false);
        };
        result.map_err(|e| GpuError::Readback(e.to_string()))?;
        let pending = self.ring[slot].pending.take().unwrap_or_else(|| unreachable!());
        let buffer = &self.ring[slot].buffer;
        let values: Vec<f32> = {
            let view = buffer.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
            bytemuck::cast_slice(&view).to_vec()
        };
        buffer.unmap();
        let g = self.config.grad_accum;
        self.ready.push_back(StepStats {
            step: pending.step,
            loss_sums: values[..g].to_vec(),
            tokens: pending.tokens,
            grad_norm: values[g].sqrt(),
            weight_distance: values[g + 1].sqrt(),
        });
        Ok(true)
    }

    /// Stats of finished steps, oldest first, without waiting.
    pub async fn poll(&mut self, ctx: &GpuContext) -> Result<Vec<StepStats>, GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        ctx.device.poll(wgpu::PollType::Poll).map_err(|e| GpuError::Readback(e.to_string()))?;
        self.collect_in_order(ctx, false).await
    }

    /// Waits for every submitted step and returns the stats not yet taken.
    pub async fn flush(&mut self, ctx: &GpuContext) -> Result<Vec<StepStats>, GpuError> {
        self.collect_in_order(ctx, true).await
    }

    async fn collect_in_order(&mut self, ctx: &GpuContext, wait: bool) -> Result<Vec<StepStats>, GpuError> {
        loop {
            // the oldest pending slot is the one the next step would reuse first
            let oldest = (0..RING).map(|k| (self.next_slot + k) % RING).find(|&s| self.ring[s].pending.is_some());
            let Some(slot) = oldest else { break };
            if !self.collect_slot(ctx, slot, wait).await? {
                break;
            }
        }
        Ok(self.ready.drain(..).collect())
    }

    /// Computes the accumulated gradient of `batch` with `scales`, without
    /// updating the weights, and reads it back ([layout.total] floats).
    pub async fn gradients(
        &mut self,
        ctx: &GpuContext,
        batch: &[MicroBatch],
        scales: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>), StepError> {
        self.upload(ctx, batch, scales, self.step.max(1))?;
        self.grads_program.run(ctx);
        let grads = ctx.read_f32(&self.model.grads, 0, self.model.layout.total).await?;
        let stats = ctx.read_f32(&self.stats, 0, self.config.grad_accum).await?;
        Ok((grads, stats))
    }

    /// The current weights, flat ([layout.total] floats).
    pub async fn params(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        ctx.read_f32(&self.model.params, 0, self.model.layout.total).await
    }

    /// Overwrites the weights and resets optimizer state and step count.
    pub fn set_params(&mut self, ctx: &GpuContext, params: &[f32]) -> Result<(), ConfigError> {
        self.model.layout.check_len(params.len())?;
        ctx.queue.write_buffer(&self.model.params, 0, bytemuck::cast_slice(params));
        let zeros = vec![0u8; self.model.layout.total * 4];
        ctx.queue.write_buffer(&self.state1, 0, &zeros);
        ctx.queue.write_buffer(&self.state2, 0, &zeros);
        self.step = 0;
        Ok(())
    }
}
