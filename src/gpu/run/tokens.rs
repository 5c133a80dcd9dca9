//! The token buffer a run's jobs share: G slots, one per micro-batch of a
//! step, each holding the micro-batch's inputs [b,T], targets [b,T] and the
//! embedding backward's position lists (offsets [V+1], positions [b*T]).
//! Validation uses the first slots; generation uses slot 0's inputs as its
//! window. Not here: checking input (`RunConfig::check_step` does that first).

use crate::gpu::model::{check_buffer, TokenViews};
use crate::gpu::token_positions;
use crate::gpu::{GpuContext, View};
use crate::model::ConfigError;
use crate::train::MicroBatch;

pub(super) struct TokenBuffer {
    buffer: wgpu::Buffer,
    /// b*T: positions in one micro-batch.
    bt: usize,
    vocab: usize,
    slots: Vec<TokenViews>,
}

use crate::gpu::plan::{token_part as part, token_slot_words};

impl TokenBuffer {
    pub(super) fn new(ctx: &GpuContext, bt: usize, vocab: usize, slots: usize) -> Result<Self, ConfigError> {
        let words = Self::slot_words(bt, vocab);
        check_buffer(ctx, "token ids of one step", slots * words)?;
        let buffer = ctx.storage("tokens", slots * words);
        let p = part(bt);
        let views = (0..slots)
            .map(|g| {
                let base = g * words;
                TokenViews {
                    inputs: View::words(&buffer, base, bt),
                    targets: View::words(&buffer, base + p, bt),
                    offsets: View::words(&buffer, base + 2 * p, vocab + 1),
                    positions: View::words(&buffer, base + 2 * p + part(vocab + 1), bt),
                }
            })
            .collect();
        Ok(Self { buffer, bt, vocab, slots: views })
    }

    fn slot_words(bt: usize, vocab: usize) -> usize {
        token_slot_words(bt, vocab)
    }

    /// Slot g's views, for recording programs.
    pub(super) fn slots(&self) -> &[TokenViews] {
        &self.slots
    }

    /// Writes checked micro-batches into the first `batch.len()` slots.
    pub(super) fn write(&self, ctx: &GpuContext, batch: &[MicroBatch]) {
        let (bt, w) = (self.bt, Self::slot_words(self.bt, self.vocab));
        let p = part(bt);
        let q = 2 * p + part(self.vocab + 1);
        let mut words = vec![0u32; batch.len() * w];
        for (slot, mb) in words.chunks_mut(w).zip(batch) {
            let (offsets, positions) = token_positions(&mb.inputs, self.vocab);
            slot[..bt].copy_from_slice(&mb.inputs);
            slot[p..p + bt].copy_from_slice(&mb.targets);
            slot[2 * p..2 * p + self.vocab + 1].copy_from_slice(&offsets);
            slot[q..q + bt].copy_from_slice(&positions);
        }
        ctx.queue.write_buffer(&self.buffer, 0, bytemuck::cast_slice(&words));
    }
}
