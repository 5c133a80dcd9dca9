//! Kernel timings for the benchmark page: a matmul shaped like one of the
//! model's Linear layers, recorded once on the GPU and replayed as often as
//! asked, and the same multiply on the f32 CPU backend's kernel, so the page
//! can time both next to other libraries on the same inputs.
//!
//! Legend: M rows (B*T), K input channels, N output channels.

use crate::gpu::model::check_buffer;
use crate::gpu::{GpuContext, GpuError, MatmulKernel, Program, ProgramBuilder, Readback, View};
use crate::model::ConfigError;

/// Largest side the benchmark accepts: beyond it one multiply takes seconds
/// on a software adapter.
pub const MAX_SIDE: usize = 4096;

/// Refuses sides outside 1..=MAX_SIDE and operands that do not match them.
fn check_operands(m: usize, k: usize, n: usize, inp: &[f32], weight: &[f32], bias: &[f32]) -> Result<(), ConfigError> {
    for (field, side) in [("m", m), ("k", k), ("n", n)] {
        if side == 0 || side > MAX_SIDE {
            return Err(ConfigError::Invalid { field, reason: format!("must be 1..={MAX_SIDE}, got {side}") });
        }
    }
    for (field, len, want) in [("inp", inp.len(), m * k), ("weight", weight.len(), n * k), ("bias", bias.len(), n)] {
        if len != want {
            return Err(ConfigError::Invalid { field, reason: format!("expected {want} floats, got {len}") });
        }
    }
    Ok(())
}

/// The same multiply on the f32 CPU backend's kernel (`cpu::simd`), `times`
/// times over: its output [M,N].
pub fn cpu_matmul(
    m: usize,
    k: usize,
    n: usize,
    inp: &[f32],
    weight: &[f32],
    bias: &[f32],
    times: usize,
) -> Result<Vec<f32>, ConfigError> {
    check_operands(m, k, n, inp, weight, bias)?;
    let mut out = vec![0.0; m * n];
    for _ in 0..times {
        crate::cpu::simd::matmul_forward(&mut out, inp, weight, Some(bias), m, k, n);
    }
    Ok(out)
}

/// out [M,N] = inp [M,K] · weightᵀ (weight [N,K]) + bias [N], recorded once.
pub struct MatmulCase {
    pub m: usize,
    pub k: usize,
    pub n: usize,
    program: Program,
    out: wgpu::Buffer,
    /// One output float read back after each batch: the GPU is done when it arrives.
    probe: Readback,
}

impl MatmulCase {
    /// Uploads the operands and records one forward matmul. Refuses sides
    /// outside 1..=MAX_SIDE and operands that do not match the sides.
    pub fn new(
        ctx: &GpuContext,
        m: usize,
        k: usize,
        n: usize,
        inp: &[f32],
        weight: &[f32],
        bias: &[f32],
    ) -> Result<Self, ConfigError> {
        Self::with_kernel(ctx, None, m, k, n, inp, weight, bias)
    }

    /// The same multiply, on `kernel` when one is given, whatever the shape
    /// and adapter would pick (the native benchmark compares them).
    #[allow(clippy::too_many_arguments)]
    pub fn with_kernel(
        ctx: &GpuContext,
        kernel: Option<MatmulKernel>,
        m: usize,
        k: usize,
        n: usize,
        inp: &[f32],
        weight: &[f32],
        bias: &[f32],
    ) -> Result<Self, ConfigError> {
        check_operands(m, k, n, inp, weight, bias)?;
        check_buffer(ctx, "matmul output", m * n)?;
        check_buffer(ctx, "matmul input", m.max(n) * k)?;
        let (inp, weight, bias) = (ctx.upload("inp", inp), ctx.upload("weight", weight), ctx.upload("bias", bias));
        let out = ctx.storage("out", m * n);
        let mut pb = ProgramBuilder::new(ctx);
        pb.forced_matmul = kernel;
        pb.matmul_forward(
            &View::whole(&out),
            &View::whole(&inp),
            &View::whole(&weight),
            Some(&View::whole(&bias)),
            m,
            k,
            n,
        );
        Ok(Self { m, k, n, program: pb.finish(), out, probe: Readback::new(ctx, "matmul probe", 1) })
    }

    /// Floating-point operations of one multiply.
    pub fn flops(&self) -> f64 {
        2.0 * (self.m * self.k * self.n) as f64
    }

    /// Submits the multiply `times` times in one command buffer and returns
    /// once the GPU has finished them (a one-float readback, recorded in the same
    /// submission, waits for it).
    pub async fn run(&self, ctx: &GpuContext, times: usize) -> Result<(), GpuError> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for _ in 0..times.max(1) {
            self.program.encode(&mut encoder);
        }
        self.probe.record_copy(&mut encoder, &self.out, 0, 4);
        ctx.queue.submit([encoder.finish()]);
        self.probe.read_bytes(ctx, 4).await?;
        Ok(())
    }

    /// The result [M,N].
    pub async fn output(&self, ctx: &GpuContext) -> Result<Vec<f32>, GpuError> {
        ctx.read_f32(&self.out, 0, self.m * self.n).await
    }
}
