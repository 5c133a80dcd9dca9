//! The elementwise family: GELU's backward (its forward and the residual
//! add are matmul epilogues, checked with the matmul).

use super::compare::{compare, f64s, grad_start, per_variant, run_and_read, Comparison, WRITES};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, GradWrite, ProgramBuilder, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "elementwise", checks };

/// n elements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Elementwise {
    pub n: usize,
}

impl Case for Elementwise {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(elementwise(ctx, seed, self.n).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    vec![family.kernel(Elementwise { n: 1001 }, true)]
}

/// GELU's backward, dinp added to and overwritten (its forward and the
/// residual add are matmul epilogues, checked with the matmul).
pub async fn elementwise(ctx: &GpuContext, seed: u64, n: usize) -> Result<Vec<Comparison>, GpuError> {
    per_variant(&WRITES, |write| elementwise_with(ctx, seed, n, write)).await
}

async fn elementwise_with(
    ctx: &GpuContext,
    seed: u64,
    n: usize,
    write: GradWrite,
) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let x = rng.vec_f32(n, 4.0);
    let dout = rng.vec_f32(n, 1.0);
    let (dinp0, dinp64) = grad_start(&mut rng, n, write);
    let (x_b, dout_b, dinp_b) = (ctx.upload("x", &x), ctx.upload("dout", &dout), ctx.upload("dinp", &dinp0));
    let w = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    pb.gelu_backward(&w(&dinp_b), &w(&x_b), &w(&dout_b), n, write);
    let got = run_and_read(ctx, pb, &[("dinp", &dinp_b, n)]).await?;
    let mut dinp = dinp64;
    cpu::gelu_backward(&mut dinp, &f64s(&x), &f64s(&dout));
    Ok(vec![compare("gelu_backward dinp", &got[0], &dinp)])
}
