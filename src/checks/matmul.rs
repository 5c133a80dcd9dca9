//! The matmul family: forward (with each epilogue) and backward, once with
//! each matmul kernel forced and each way of writing dinp.

use super::compare::{compare, f64s, grad_start, per_variant, run_and_read, Comparison, WRITES};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, GradWrite, MatmulKernel, ProgramBuilder, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "matmul", checks };

/// out [n,oc] = inp [n,c] · weight [oc,c]ᵀ + bias [oc]
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Matmul {
    pub n: usize,
    pub c: usize,
    pub oc: usize,
}

impl Case for Matmul {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(matmul(ctx, seed, self.n, self.c, self.oc).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    let sizes = [(1, 1, 1), (67, 13, 29), (130, 65, 191), (64, 64, 64), (37, 204, 3)];
    let quick = |n, c, oc| matches!((n, c, oc), (67, 13, 29) | (130, 65, 191) | (37, 204, 3));
    sizes.into_iter().map(|(n, c, oc)| family.kernel(Matmul { n, c, oc }, quick(n, c, oc))).collect()
}

/// Matmul forward (A·Bᵀ + bias, and with each epilogue) and backward (A·B,
/// Aᵀ·B, bias column sums); the weight and bias gradients start non-zero to
/// check that they accumulate, dinp both ways (`grad_start`). Once with each
/// matmul kernel forced, so all are checked on any adapter (a software one
/// alone would pick only the direct kernel and its vec4 variants, a real GPU
/// never those variants).
pub async fn matmul(ctx: &GpuContext, seed: u64, n: usize, c: usize, oc: usize) -> Result<Vec<Comparison>, GpuError> {
    let kernels =
        [MatmulKernel::Tiled, MatmulKernel::Direct, MatmulKernel::SplitK(3), MatmulKernel::Dot4, MatmulKernel::Cols4];
    let variants: Vec<_> = kernels.into_iter().flat_map(|k| WRITES.map(|w| (k, w))).collect();
    per_variant(&variants, |(kernel, write)| matmul_with(ctx, seed, [n, c, oc], kernel, write)).await
}

async fn matmul_with(
    ctx: &GpuContext,
    seed: u64,
    [n, c, oc]: [usize; 3],
    kernel: MatmulKernel,
    write: GradWrite,
) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let inp = rng.vec_f32(n * c, 1.0);
    let weight = rng.vec_f32(oc * c, 1.0);
    let bias = rng.vec_f32(oc, 1.0);
    let dout = rng.vec_f32(n * oc, 1.0);
    let (dinp0, dinp64) = grad_start(&mut rng, n * c, write);
    let dweight0 = rng.vec_f32(oc * c, 1.0);
    let dbias0 = rng.vec_f32(oc, 1.0);
    let residual = rng.vec_f32(n * oc, 1.0);
    let b = |name, data: &[f32]| ctx.upload(name, data);
    let (inp_b, w_b, bias_b, dout_b) = (b("inp", &inp), b("weight", &weight), b("bias", &bias), b("dout", &dout));
    let (dinp_b, dw_b, db_b) = (b("dinp", &dinp0), b("dweight", &dweight0), b("dbias", &dbias0));
    let (out_b, residual_b) = (ctx.storage("out", n * oc), b("residual", &residual));
    let (summed_b, pre_b, gelu_b) =
        (ctx.storage("summed", n * oc), ctx.storage("pre", n * oc), ctx.storage("gelu", n * oc));
    let v = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    pb.forced_matmul = Some(kernel);
    pb.matmul_forward(&v(&out_b), &v(&inp_b), &v(&w_b), Some(&v(&bias_b)), n, c, oc);
    pb.matmul_backward(&v(&dinp_b), &v(&dw_b), Some(&v(&db_b)), &v(&dout_b), &v(&inp_b), &v(&w_b), n, c, oc, write);
    // the epilogues (a forced split-K computes them unsplit: they need the whole sum)
    pb.matmul_forward_residual(&v(&summed_b), &v(&residual_b), &v(&inp_b), &v(&w_b), Some(&v(&bias_b)), n, c, oc);
    pb.matmul_forward_gelu(&v(&gelu_b), &v(&pre_b), &v(&inp_b), &v(&w_b), Some(&v(&bias_b)), n, c, oc);
    let got = run_and_read(
        ctx,
        pb,
        &[
            ("out", &out_b, n * oc),
            ("dinp", &dinp_b, n * c),
            ("dweight", &dw_b, oc * c),
            ("dbias", &db_b, oc),
            ("summed", &summed_b, n * oc),
            ("pre", &pre_b, n * oc),
            ("gelu", &gelu_b, n * oc),
        ],
    )
    .await?;

    let (inp64, weight64, bias64) = (f64s(&inp), f64s(&weight), f64s(&bias));
    let mut out = vec![0.0; n * oc];
    cpu::matmul_forward(&mut out, &inp64, &weight64, Some(&bias64), n, c, oc);
    let mut summed = vec![0.0; n * oc];
    cpu::matmul_forward_residual(&mut summed, &f64s(&residual), &inp64, &weight64, Some(&bias64), n, c, oc);
    let (mut gelu, mut pre) = (vec![0.0; n * oc], vec![0.0; n * oc]);
    cpu::matmul_forward_gelu(&mut gelu, &mut pre, &inp64, &weight64, Some(&bias64), n, c, oc);
    let (mut dinp, mut dweight, mut dbias) = (dinp64, f64s(&dweight0), f64s(&dbias0));
    cpu::matmul_backward(
        &mut dinp,
        Some(&mut dweight),
        Some(&mut dbias),
        &f64s(&dout),
        &f64s(&inp),
        &f64s(&weight),
        n,
        c,
        oc,
    );
    Ok(vec![
        compare("matmul_forward out", &got[0], &out),
        compare("matmul_backward dinp", &got[1], &dinp),
        compare("matmul_backward dweight", &got[2], &dweight),
        compare("matmul_backward dbias", &got[3], &dbias),
        compare("matmul_forward_residual out", &got[4], &summed),
        compare("matmul_forward_gelu pre", &got[5], &pre),
        compare("matmul_forward_gelu out", &got[6], &gelu),
    ])
}
