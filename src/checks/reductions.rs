//! The reductions family: loss sums, the global gradient norm and the
//! squared distance between runs.

use super::compare::{compare, f64s, run_and_read, Comparison};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, ProgramBuilder, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "reductions", checks };

/// n values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Reductions {
    pub n: usize,
}

impl Case for Reductions {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(reductions(ctx, seed, self.n).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    [1, 255, 4097, 100_003].into_iter().map(|n| family.kernel(Reductions { n }, n == 100_003)).collect()
}

/// Loss sums, the global gradient norm and the distance between runs.
pub async fn reductions(ctx: &GpuContext, seed: u64, n: usize) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    // non-negative like the losses it sums: a sum that cancels has no relative accuracy to check
    let x: Vec<f32> = rng.vec_f32(n, 1.0).iter().map(|v| v.abs()).collect();
    let x_b = ctx.upload("x", &x);
    let stats_b = ctx.upload("stats", &[7.0f32, 7.0, 7.0]);
    let partials_b = ctx.storage("partials", n.div_ceil(crate::gpu::kernels::SUM_BLOCK));
    let y = rng.vec_f32(n, 1.0);
    let y_b = ctx.upload("y", &y);
    let dist_b = ctx.storage("distance", 1);
    let w = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    pb.sum(&w(&stats_b), 0, &w(&x_b), n);
    pb.sum_squares(&w(&stats_b), 2, &w(&partials_b), &w(&x_b), n);
    pb.squared_distance(&w(&dist_b), 0, &w(&partials_b), &w(&x_b), &w(&y_b), n);
    let got = run_and_read(ctx, pb, &[("stats", &stats_b, 3), ("distance", &dist_b, 1)]).await?;
    let x64 = f64s(&x);
    let sum: f64 = x64.iter().sum();
    let norm = cpu::grad_norm(&x64);
    Ok(vec![
        compare("sum (loss sum)", &got[0][..1], &[sum]),
        compare("untouched stats slot", &got[0][1..2], &[7.0]),
        compare("grad_norm", &[got[0][2].sqrt()], &[norm]),
        compare("squared_distance", &got[1], &[cpu::squared_distance(&x64, &f64s(&y))]),
    ])
}
