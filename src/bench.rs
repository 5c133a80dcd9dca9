//! Kernel timings for the benchmark page: a matmul shaped like one of the
//! model's Linear layers, recorded once on the GPU and replayed as often as
//! asked, and the same multiply on the f32 CPU backend's kernel, so the page
//! can time both next to other libraries on the same inputs; and where a
//! training step's GPU time goes, kernel by kernel (the page and `cargo bench`).
//!
//! Legend: M rows (b*T), K input channels, N output channels.

use std::sync::Arc;

use crate::accum::{scales, Strategy};
use crate::data::{BatchSampler, Corpus, DataConfig, Packing};
use crate::gpu::model::check_buffer;
use crate::gpu::{GpuContext, GpuError, GpuRun, MatmulKernel, Program, ProgramBuilder, Readback, View};
use crate::model::{ConfigError, ModelConfig, ParamLayout};
use crate::train::{MicroBatch, RunConfig, StepError, StepWork, Trainer};

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

/// One full-batch step's work on `corpus`: b packed windows of t tokens as
/// one micro-batch, its token-mean scale, and the run's config (AdamW
/// defaults).
pub fn full_batch_step(
    corpus: &Arc<Corpus>,
    model: ModelConfig,
    b: usize,
    t: usize,
) -> Result<(Vec<MicroBatch>, [f32; 1], RunConfig), ConfigError> {
    let packed = DataConfig { packing: Packing::Packed, ..Default::default() };
    let mut sampler = BatchSampler::new(corpus.clone(), 1, b, t, packed)?;
    let batch = sampler.next_batch().micro_batches(b, t)?;
    let scale = [scales(Strategy::FullBatch, &[batch[0].tokens()], 1)[0]];
    let config =
        RunConfig { model, micro_batch: b, grad_accum: 1, seq_len: t, optimizer: Default::default(), lora: None };
    Ok((batch, scale, config))
}

/// Where one training step's GPU time goes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StepProfile {
    /// Dispatches in one step.
    pub dispatches: usize,
    /// Each kernel's dispatches and their time in a step, slowest first.
    pub kernels: Vec<KernelTime>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct KernelTime {
    pub kernel: &'static str,
    pub count: usize,
    /// Summed over its dispatches, each the median over the profiled steps.
    pub seconds: f64,
}

/// A full-batch run of `model` on b × t tokens of `corpus`, its step profiled
/// `rounds` times (1..=20) after one step that warms up (`GpuRun::profile_step`:
/// each dispatch in a pass of its own, timed by the GPU's timestamps, so the
/// sum bounds the kernels' time from above).
pub async fn profile_step(
    ctx: &GpuContext,
    corpus: &Arc<Corpus>,
    model: ModelConfig,
    [b, t]: [usize; 2],
    rounds: usize,
) -> Result<StepProfile, StepError> {
    if !(1..=20).contains(&rounds) {
        return Err(ConfigError::Invalid { field: "rounds", reason: format!("must be 1..=20, got {rounds}") }.into());
    }
    let (batch, scale, config) = full_batch_step(corpus, model, b, t)?;
    let work = StepWork { micro_batches: &batch, scales: &scale };
    let mut run = GpuRun::new(ctx, config, &ParamLayout::new(&model).init(1))?;
    run.profile_step(work).await?;
    let mut profiles = Vec::new();
    for _ in 0..rounds {
        profiles.push(run.profile_step(work).await?);
    }
    let mut kernels: Vec<KernelTime> = Vec::new();
    for (i, &(kernel, _)) in profiles[0].iter().enumerate() {
        let mut times: Vec<f64> = profiles.iter().map(|p| p[i].1).collect();
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        match kernels.iter_mut().find(|k| k.kernel == kernel) {
            Some(k) => {
                k.count += 1;
                k.seconds += median;
            }
            None => kernels.push(KernelTime { kernel, count: 1, seconds: median }),
        }
    }
    kernels.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
    Ok(StepProfile { dispatches: profiles[0].len(), kernels })
}
