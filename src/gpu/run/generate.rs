//! Generation: text sampled from the model on the GPU. A one-sequence
//! forward and `sample_next_token` alternate up to `SAMPLE_CHUNK` times in one
//! submission; the window slides on the GPU and only the picks come back.

use super::Shared;
use crate::gpu::{Program, ProgramBuilder, Readback, View};
use crate::train::{StepError, SAMPLE_CHUNK};
use crate::IGNORE_INDEX;

pub(super) struct Generator {
    /// Forward of one sequence in token slot 0, then one pick.
    program: Program,
    /// [window length, tokens picked]
    state: wgpu::Buffer,
    /// [1/temperature, SAMPLE_CHUNK uniforms]
    draws: wgpu::Buffer,
    /// [SAMPLE_CHUNK] token ids
    picked: wgpu::Buffer,
    readback: Readback,
}

impl Generator {
    pub(super) fn new(s: &Shared) -> Self {
        let ctx = &s.ctx;
        let state = ctx.storage("sample state", 2);
        let draws = ctx.storage("sample draws", 1 + SAMPLE_CHUNK);
        let picked = ctx.storage("sampled tokens", SAMPLE_CHUNK);
        let mut pb = ProgramBuilder::new(ctx);
        let window = &s.tokens.slots()[0];
        s.model.record_forward_first(&mut pb, window, 1);
        pb.sample_next_token(
            &View::whole(&state),
            &window.inputs,
            &View::whole(&picked),
            &s.model.logits,
            &View::whole(&draws),
            s.config.seq_len,
            s.config.model.vocab_size,
        );
        let program = pb.finish();
        Self { program, state, draws, picked, readback: Readback::new(ctx, "sampled tokens readback", SAMPLE_CHUNK) }
    }

    /// Continues a checked `window` by one token per uniform of `draws`
    /// ([1/temperature, u_1 .. u_k]).
    pub(super) async fn generate(&self, s: &Shared, window: &[u32], draws: &[f32]) -> Result<Vec<u32>, StepError> {
        let (b, t) = (s.config.micro_batch, s.config.seq_len);
        let Some((&inv_temperature, uniforms)) = draws.split_first() else {
            return Ok(Vec::new());
        };
        let mut inputs = vec![0u32; b * t];
        inputs[..window.len()].copy_from_slice(window);
        s.tokens.write(&s.ctx, &[crate::train::MicroBatch { inputs, targets: vec![IGNORE_INDEX; b * t] }]);
        let queue = &s.ctx.queue;
        queue.write_buffer(&self.state, 0, bytemuck::cast_slice(&[window.len() as u32, 0]));
        let mut out = Vec::with_capacity(uniforms.len());
        for chunk in uniforms.chunks(SAMPLE_CHUNK) {
            let k = chunk.len();
            // the window carries over from the last chunk on the GPU; only the count restarts
            queue.write_buffer(&self.state, 4, bytemuck::bytes_of(&0u32));
            let chunk_draws: Vec<f32> = std::iter::once(inv_temperature).chain(chunk.iter().copied()).collect();
            queue.write_buffer(&self.draws, 0, bytemuck::cast_slice(&chunk_draws));
            let mut encoder = s.ctx.device.create_command_encoder(&Default::default());
            for _ in 0..k {
                self.program.encode(&mut encoder);
            }
            self.readback.record_copy(&mut encoder, &self.picked, 0, (k * 4) as u64);
            queue.submit([encoder.finish()]);
            out.extend(self.readback.read_u32(&s.ctx, k).await.map_err(StepError::from)?);
        }
        Ok(out)
    }
}
