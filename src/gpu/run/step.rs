//! Stepping: the recorded optimizer step (forward, loss, backward of every
//! micro-batch into one gradient, its norm, the update), the gradients-only
//! variant, the distance to a lab's reference run, and the ring of readback
//! buffers that hands step stats back a few steps late, so neither the CLI
//! nor the page waits for the GPU on every step.
//! Not here: which scale each micro-batch gets (`accum`), or where batches
//! come from.

use std::collections::VecDeque;

use super::Shared;
use crate::gpu::{GpuError, PendingMap, Program, ProgramBuilder, UpdateSettings, View};
use crate::optim::UpdateKernel;
use crate::train::{StepError, StepStats, StepWork};

/// Steps whose stats may be in flight at once.
const RING: usize = crate::gpu::plan::STATS_RING;

struct ReadSlot {
    buffer: wgpu::Buffer,
    pending: Option<Pending>,
}

struct Pending {
    step: u64,
    tokens: Vec<usize>,
    map: PendingMap,
}

pub(super) struct Stepper {
    /// The optimizer's first and second moments over the trainable values
    /// (`optim`: for SGD moment1 is the velocity).
    moment1: wgpu::Buffer,
    moment2: wgpu::Buffer,
    /// [0, G) loss sums, then Σ g², then ‖w − w_ref‖² (written by a lockstep)
    pub(super) stats: wgpu::Buffer,
    step_program: Program,
    grads_program: Program,
    /// Under LoRA, params = base + s·B·A alone (after a restored state).
    merge_program: Option<Program>,
    /// Squared distance of this run's weights to a reference run's, into
    /// stats[G+1], built the first time a lockstep names that reference.
    distance: Option<(wgpu::Buffer, Program)>,
    ring: Vec<ReadSlot>,
    next_slot: usize,
    pub(super) step: u64,
    /// Token counts of the step uploaded but not yet submitted.
    staged: Option<Vec<usize>>,
    /// Step stats read back but not yet taken.
    ready: VecDeque<StepStats>,
}

impl Stepper {
    pub(super) fn new(s: &Shared) -> Self {
        let ctx = &s.ctx;
        let (b, t, g) = (s.config.micro_batch, s.config.seq_len, s.config.grad_accum);
        let model = &s.model;
        // what the optimizer steps: the weights, or with LoRA the adapters
        let trainable = model.trainable();
        let total = trainable.len;
        let moment1 = ctx.storage("optimizer moment 1", total);
        let moment2 = ctx.storage("optimizer moment 2", total);
        let stats = ctx.storage("step stats", g + 2);
        let partials = ctx.storage("norm partials", total.div_ceil(crate::gpu::kernels::SUM_BLOCK));
        let record_grads = |pb: &mut ProgramBuilder| {
            let (scalars, stats, grads) = (View::whole(&s.scalars), View::whole(&stats), View::whole(trainable.grads));
            // zeroing the gradient is the step's job: backward only ever adds
            pb.clear(&grads);
            for (i, tv) in s.tokens.slots().iter().enumerate() {
                model.record_forward(pb, tv);
                model.record_loss(pb, tv, &scalars, i);
                pb.sum(&stats, i, &model.losses, b * t);
                model.record_backward(pb, tv);
            }
            pb.sum_squares(&stats, g, &View::whole(&partials), &grads, total);
        };
        let mut pb = ProgramBuilder::new(ctx);
        record_grads(&mut pb);
        let grads_program = pb.finish();

        let mut pb = ProgramBuilder::new(ctx);
        record_grads(&mut pb);
        // the rule's constants go in the program; its step scalars are
        // uploaded before each step (`upload`)
        let rule = s.config.optimizer.update_rule();
        let (beta1, beta2, eps) = match rule.kernel {
            // the SGD kernel reads its momentum as beta1
            UpdateKernel::Sgd { momentum } => (momentum, 0.0, 0.0),
            UpdateKernel::Adam { beta1, beta2, eps } => (beta1, beta2, eps),
        };
        let settings = UpdateSettings {
            n: total,
            decay_end: trainable.decay_end,
            scalars_index: g,
            norm_index: g,
            beta1: beta1 as f32,
            beta2: beta2 as f32,
            eps: eps as f32,
            weight_decay: rule.weight_decay as f32,
            max_grad_norm: rule.max_grad_norm as f32,
        };
        let (p, gr) = (View::whole(trainable.values), View::whole(trainable.grads));
        let (m1, m2) = (View::whole(&moment1), View::whole(&moment2));
        let (sc, st) = (View::whole(&s.scalars), View::whole(&stats));
        match rule.kernel {
            UpdateKernel::Sgd { .. } => pb.sgd_update(&p, &gr, &m1, &sc, &st, &settings),
            UpdateKernel::Adam { .. } => pb.adamw_update(&p, &gr, &m1, &m2, &sc, &st, &settings),
        }
        model.record_merge(&mut pb);
        let step_program = pb.finish();
        let merge_program = model.lora.as_ref().map(|_| {
            let mut pb = ProgramBuilder::new(ctx);
            model.record_merge(&mut pb);
            pb.finish()
        });

        let ring =
            (0..RING).map(|_| ReadSlot { buffer: ctx.mappable("stats readback", g + 2), pending: None }).collect();
        Self {
            moment1,
            moment2,
            stats,
            step_program,
            grads_program,
            merge_program,
            distance: None,
            ring,
            next_slot: 0,
            step: 0,
            staged: None,
            ready: VecDeque::new(),
        }
    }

    pub(super) fn dispatches_per_step(&self) -> usize {
        self.step_program.dispatch_count()
    }

    /// Writes tokens, dlogits scales and this step's optimizer scalars.
    fn upload(s: &Shared, work: StepWork<'_>, step: u64) {
        s.tokens.write(&s.ctx, work.micro_batches);
        let mut scalars = work.scales.to_vec();
        scalars.extend_from_slice(&s.config.optimizer.step_scalars(step).to_f32());
        s.ctx.queue.write_buffer(&s.scalars, 0, bytemuck::cast_slice(&scalars));
    }

    /// First part of a step on checked input: frees the readback slot this
    /// step will use, then uploads its tokens and scalars.
    pub(super) async fn prepare(
        &mut self,
        s: &Shared,
        work: StepWork<'_>,
        tokens: Vec<usize>,
    ) -> Result<(), StepError> {
        if self.ring[self.next_slot].pending.is_some() {
            self.collect_slot(s, self.next_slot, true).await?;
        }
        Self::upload(s, work, self.step + 1);
        self.step += 1;
        self.staged = Some(tokens);
        Ok(())
    }

    /// One step of checked `work` with every dispatch timed on the GPU
    /// (`Program::profile`); its stats are not read back.
    pub(super) async fn profile(
        &mut self,
        s: &Shared,
        work: StepWork<'_>,
    ) -> Result<Vec<(&'static str, f64)>, GpuError> {
        Self::upload(s, work, self.step + 1);
        self.step += 1;
        self.step_program.profile(&s.ctx).await
    }

    /// Makes sure the distance program measures against `reference` (built
    /// once per reference, not per step).
    pub(super) fn distance_to(&mut self, s: &Shared, reference: &wgpu::Buffer) {
        if self.distance.as_ref().is_some_and(|(r, _)| r == reference) {
            return;
        }
        let total = s.model.layout.total;
        let partials = s.ctx.storage("distance partials", total.div_ceil(crate::gpu::kernels::SUM_BLOCK));
        let mut pb = ProgramBuilder::new(&s.ctx);
        pb.squared_distance(
            &View::whole(&self.stats),
            s.config.grad_accum + 1,
            &View::whole(&partials),
            &View::whole(&s.model.params),
            &View::whole(reference),
            total,
        );
        self.distance = Some((reference.clone(), pb.finish()));
    }

    /// Records the step's forward, backward and update.
    pub(super) fn encode_step(&self, encoder: &mut wgpu::CommandEncoder) {
        self.step_program.encode(encoder);
    }

    /// Records the distance to the reference (after every run's update).
    pub(super) fn encode_distance(&self, encoder: &mut wgpu::CommandEncoder) {
        if let Some((_, program)) = &self.distance {
            program.encode(encoder);
        }
    }

    /// Records the copy of the step's stats into its readback slot.
    pub(super) fn encode_readback(&self, encoder: &mut wgpu::CommandEncoder) {
        let dst = &self.ring[self.next_slot].buffer;
        encoder.copy_buffer_to_buffer(&self.stats, 0, dst, 0, dst.size());
    }

    /// After the submission: starts mapping the readback slot.
    pub(super) fn submitted(&mut self) {
        let slot = self.next_slot;
        let tokens = self.staged.take().unwrap_or_default();
        let map = PendingMap::start(&self.ring[slot].buffer);
        self.ring[slot].pending = Some(Pending { step: self.step, tokens, map });
        self.next_slot = (slot + 1) % RING;
    }

    /// Reads back slot `slot` if its map finished (or, with `wait`, once it has).
    async fn collect_slot(&mut self, s: &Shared, slot: usize, wait: bool) -> Result<bool, GpuError> {
        let Some(mut pending) = self.ring[slot].pending.take() else {
            return Ok(false);
        };
        if wait {
            pending.map.wait(&s.ctx.device).await?;
        } else if !pending.map.is_done()? {
            self.ring[slot].pending = Some(pending);
            return Ok(false);
        }
        let buffer = &self.ring[slot].buffer;
        let values: Vec<f32> = {
            let view = buffer.slice(..).get_mapped_range().map_err(|e| GpuError::Readback(e.to_string()))?;
            bytemuck::cast_slice(&view).to_vec()
        };
        buffer.unmap();
        let g = s.config.grad_accum;
        self.ready.push_back(StepStats {
            step: pending.step,
            loss_sums: values[..g].to_vec(),
            tokens: pending.tokens,
            grad_norm: values[g].sqrt(),
            weight_distance: values[g + 1].sqrt(),
        });
        Ok(true)
    }

    /// Stats of finished steps, oldest first; with `wait`, of all of them.
    pub(super) async fn poll(&mut self, s: &Shared, wait: bool) -> Result<Vec<StepStats>, GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        if !wait {
            s.ctx.device.poll(wgpu::PollType::Poll).map_err(|e| GpuError::Readback(e.to_string()))?;
        }
        loop {
            // the oldest pending slot is the one the next step would reuse first
            let oldest = (0..RING).map(|k| (self.next_slot + k) % RING).find(|&i| self.ring[i].pending.is_some());
            let Some(slot) = oldest else { break };
            if !self.collect_slot(s, slot, wait).await? {
                break;
            }
        }
        Ok(self.ready.drain(..).collect())
    }

    /// The accumulated gradient of checked `work`, without updating the
    /// weights: (gradient, loss sum of each micro-batch). Awaits the GPU.
    pub(super) async fn gradients(&self, s: &Shared, work: StepWork<'_>) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        Self::upload(s, work, self.step.max(1));
        self.grads_program.run(&s.ctx);
        let trainable = s.model.trainable();
        let grads = s.ctx.read_f32(trainable.grads, 0, trainable.len).await?;
        let sums = s.ctx.read_f32(&self.stats, 0, s.config.grad_accum).await?;
        Ok((grads, sums))
    }

    /// The optimizer's two moments (after every step submitted).
    pub(super) async fn moments(&self, s: &Shared) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
        let total = s.model.trainable().len;
        Ok((s.ctx.read_f32(&self.moment1, 0, total).await?, s.ctx.read_f32(&self.moment2, 0, total).await?))
    }

    /// Whether step stats are still being read back (their buffers must not
    /// be reused, so a restore waits for them).
    pub(super) fn in_flight(&self) -> bool {
        self.ring.iter().any(|slot| slot.pending.is_some())
    }

    /// Puts back saved optimizer state and step count, once the weights are
    /// written (under LoRA it merges the adapters into the weights). Only
    /// when nothing is `in_flight`.
    pub(super) fn restore(&mut self, s: &Shared, moment1: &[f32], moment2: &[f32], step: u64) {
        s.ctx.queue.write_buffer(&self.moment1, 0, bytemuck::cast_slice(moment1));
        s.ctx.queue.write_buffer(&self.moment2, 0, bytemuck::cast_slice(moment2));
        if let Some(merge) = &self.merge_program {
            merge.run(&s.ctx);
        }
        self.step = step;
        self.staged = None;
        self.ready.clear();
    }

    /// Zeroes the optimizer state and the step count (new weights).
    pub(super) fn restart(&mut self, s: &Shared) {
        let zeros = vec![0u8; s.model.trainable().len * 4];
        s.ctx.queue.write_buffer(&self.moment1, 0, &zeros);
        s.ctx.queue.write_buffer(&self.moment2, 0, &zeros);
        self.step = 0;
    }
}
