//! Evaluation: the mean loss of held-out sequences without training. One
//! recorded forward-and-loss per token slot, so a validation pass fills up to
//! G micro-batches before one submission and one readback.

use super::Shared;
use crate::gpu::{Program, ProgramBuilder, Readback, View};
use crate::train::{Batch, MicroBatch, StepError};
use crate::IGNORE_INDEX;

pub(super) struct Evaluator {
    /// Forward and loss sum on token slot i into `sums[i]`.
    programs: Vec<Program>,
    /// [G] loss sums of one pass
    sums: wgpu::Buffer,
    readback: Readback,
}

impl Evaluator {
    pub(super) fn new(s: &Shared) -> Self {
        let (b, t, g) = (s.config.micro_batch, s.config.seq_len, s.config.grad_accum);
        let sums = s.ctx.storage("eval loss sums", g);
        let programs = s
            .tokens
            .slots()
            .iter()
            .enumerate()
            .map(|(i, tv)| {
                // forward only: the dlogits the loss kernel also writes go unused
                let mut pb = ProgramBuilder::new(&s.ctx);
                s.model.record_forward(&mut pb, tv);
                s.model.record_loss(&mut pb, tv, &View::whole(&s.scalars), 0);
                pb.sum(&View::whole(&sums), i, &s.model.losses, b * t);
                pb.finish()
            })
            .collect();
        Self { programs, sums, readback: Readback::new(&s.ctx, "eval loss sums readback", g) }
    }

    /// Mean loss over the targets of `batch`. Awaits the GPU.
    pub(super) async fn eval_loss(&self, s: &Shared, whole: &Batch) -> Result<f64, StepError> {
        let (b, t) = (s.config.micro_batch, s.config.seq_len);
        let (mut sum, mut count) = (0.0f64, 0usize);
        let per_group = b * self.programs.len();
        for (group, prompts) in whole.sequences.chunks(per_group).zip(whole.prompt_lengths.chunks(per_group)) {
            let mut batch = Vec::new();
            for (chunk, chunk_prompts) in group.chunks(b).zip(prompts.chunks(b)) {
                let mut padded: Vec<Vec<u32>> = chunk.to_vec();
                let mut padded_prompts = chunk_prompts.to_vec();
                // fill the micro-batch with copies; their targets are ignored below
                padded.resize(b, chunk[0].clone());
                padded_prompts.resize(b, chunk_prompts[0]);
                let mut mb = MicroBatch::from_prompted(&padded, &padded_prompts, t)?;
                mb.targets[chunk.len() * t..].fill(IGNORE_INDEX);
                count += mb.tokens();
                batch.push(mb);
            }
            s.config.check_micro_batches(&batch)?;
            s.tokens.write(&s.ctx, &batch);
            s.ctx.queue.write_buffer(&s.scalars, 0, bytemuck::bytes_of(&1.0f32));
            let mut encoder = s.ctx.device.create_command_encoder(&Default::default());
            for program in &self.programs[..batch.len()] {
                program.encode(&mut encoder);
            }
            self.readback.record_copy(&mut encoder, &self.sums, 0, (batch.len() * 4) as u64);
            s.ctx.queue.submit([encoder.finish()]);
            let sums = self.readback.read_f32(&s.ctx, batch.len()).await.map_err(StepError::from)?;
            sum += sums.iter().map(|&x| x as f64).sum::<f64>();
        }
        Ok(sum / count.max(1) as f64)
    }
}
