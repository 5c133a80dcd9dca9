//! The attention family: causal attention forward and backward, with each
//! way of walking a row forced (the `_serial` kernels of software adapters
//! and the real GPUs' ones) and each way of writing dqkv.

use super::compare::{compare, f64s, grad_start, per_variant, run_and_read, Comparison, WRITES};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, GradWrite, ProgramBuilder, RowKernel, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "attention", checks };

/// b sequences of t positions, c channels in nh heads.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attention {
    pub b: usize,
    pub t: usize,
    pub c: usize,
    pub nh: usize,
}

impl Case for Attention {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(attention(ctx, seed, self.b, self.t, self.c, self.nh).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    vec![
        family.kernel(Attention { b: 3, t: 23, c: 12, nh: 3 }, true),
        family.kernel(Attention { b: 1, t: 1, c: 4, nh: 1 }, false),
        // a head of 21 channels: one whole chunk of the `_serial` kernels' 16 and a
        // ragged one, not a multiple of their four-channel loads
        family.kernel(Attention { b: 2, t: 19, c: 63, nh: 3 }, true),
        // rows longer than a workgroup and heads wider than one (the `_rows` kernels stride)
        family.kernel(Attention { b: 2, t: 150, c: 140, nh: 2 }, false),
    ]
}

/// Causal attention forward and backward, with each way of walking a row forced.
pub async fn attention(
    ctx: &GpuContext,
    seed: u64,
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) -> Result<Vec<Comparison>, GpuError> {
    let kernels = [RowKernel::Invocation, RowKernel::Workgroup];
    let variants: Vec<_> = kernels.into_iter().flat_map(|k| WRITES.map(|w| (k, w))).collect();
    per_variant(&variants, |(kernel, write)| attention_with(ctx, seed, [b, t, c, nh], kernel, write)).await
}

async fn attention_with(
    ctx: &GpuContext,
    seed: u64,
    [b, t, c, nh]: [usize; 4],
    kernel: RowKernel,
    write: GradWrite,
) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let qkv = rng.vec_f32(b * t * 3 * c, 1.5);
    let dout = rng.vec_f32(b * t * c, 1.0);
    let (dqkv0, dqkv64) = grad_start(&mut rng, b * t * 3 * c, write);
    let (qkv_b, dout_b, dqkv_b) = (ctx.upload("qkv", &qkv), ctx.upload("dout", &dout), ctx.upload("dqkv", &dqkv0));
    // outputs start as NaN: a kernel must write every entry it or a later
    // pass reads (the `_serial` ones lean on the zeros past each row's end)
    let nans = |n: usize| vec![f32::NAN; n];
    let (out_b, att_b, dpre_b) = (
        ctx.upload("out", &nans(b * t * c)),
        ctx.upload("att", &nans(b * nh * t * t)),
        ctx.upload("dpreatt", &nans(b * nh * t * t)),
    );
    let w = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    pb.forced_rows = Some(kernel);
    pb.attention_forward(&w(&out_b), &w(&att_b), &w(&qkv_b), b, t, c, nh);
    pb.attention_backward(&w(&dqkv_b), &w(&dpre_b), &w(&dout_b), &w(&qkv_b), &w(&att_b), b, t, c, nh, write);
    let got = run_and_read(
        ctx,
        pb,
        &[("out", &out_b, b * t * c), ("att", &att_b, b * nh * t * t), ("dqkv", &dqkv_b, b * t * 3 * c)],
    )
    .await?;
    let (mut out, mut att) = (vec![0.0; b * t * c], vec![0.0; b * nh * t * t]);
    let qkv64 = f64s(&qkv);
    cpu::attention_forward(&mut out, &mut att, &qkv64, b, t, c, nh);
    let mut dqkv = dqkv64;
    cpu::attention_backward(&mut dqkv, &f64s(&dout), &qkv64, &att, b, t, c, nh);
    Ok(vec![
        compare("attention_forward out", &got[0], &out),
        compare("attention_forward att", &got[1], &att),
        compare("attention_backward dqkv", &got[2], &dqkv),
    ])
}
