//! The cross-entropy family: the fused forward and backward on rows of
//! several shapes (`LogitRows`), with each way of walking a row.

use super::compare::{compare, f64s, per_variant, run_and_read, Comparison};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, ProgramBuilder, RowKernel, View};
use crate::rng::Rng;
use crate::IGNORE_INDEX;

pub const FAMILY: Family = Family { name: "crossentropy", checks };

/// n rows of v logits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CrossEntropy {
    pub n: usize,
    pub v: usize,
    pub rows: LogitRows,
}

impl Case for CrossEntropy {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(crossentropy(ctx, seed, self.n, self.v, self.rows).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    let mut all = Vec::new();
    for (n, v) in [(1, 2), (77, 257), (300, 65), (5, 1000)] {
        for rows in [LogitRows::Random, LogitRows::Confident, LogitRows::Tied] {
            all.push(family.kernel(CrossEntropy { n, v, rows }, (n, v) == (77, 257)));
        }
    }
    all
}

/// What the rows of logits in a cross-entropy check look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogitRows {
    /// Spread-out logits, random targets, some rows padding.
    Random,
    /// Wide logits whose target is the row's maximum: losses far below 1e-3,
    /// where `ln(sum)` of a sum near 1 would keep only an absolute error.
    Confident,
    /// Small integers, so rows hold several equal maxima.
    Tied,
}

/// Fused cross-entropy with some ignored targets and a non-trivial scale,
/// once with a row per workgroup and once with a row per invocation.
pub async fn crossentropy(
    ctx: &GpuContext,
    seed: u64,
    n: usize,
    v: usize,
    rows: LogitRows,
) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let mut logits = rng.vec_f32(n * v, if rows == LogitRows::Confident { 12.0 } else { 4.0 });
    if rows == LogitRows::Tied {
        logits.iter_mut().for_each(|x| *x = (*x / 2.0).round());
    }
    let argmax = |r: usize| {
        let row = &logits[r * v..(r + 1) * v];
        (0..v).fold(0, |best, j| if row[j] > row[best] { j } else { best }) as u32
    };
    let targets: Vec<u32> = (0..n)
        .map(|r| match rows {
            LogitRows::Confident => argmax(r),
            _ if rng.below(5) == 0 => IGNORE_INDEX,
            _ => rng.below(v) as u32,
        })
        .collect();
    let scale = 1.0 / (3.0 * n as f32);
    let (mut losses, mut dlogits) = (vec![0.0; n], vec![0.0; n * v]);
    cpu::crossentropy_forward_backward(&mut losses, &mut dlogits, &f64s(&logits), &targets, scale as f64, n, v);
    // a row per workgroup and a row per invocation, both against the one twin
    per_variant(&[RowKernel::Workgroup, RowKernel::Invocation], |kernel| {
        let (logits, targets, losses, dlogits) = (&logits, &targets, &losses, &dlogits);
        async move {
            let (logits_b, targets_b, scalars_b) =
                (ctx.upload("logits", logits), ctx.upload("targets", targets), ctx.upload("scalars", &[0.5f32, scale]));
            let (losses_b, dlogits_b) = (ctx.storage("losses", n), ctx.storage("dlogits", n * v));
            let w = View::whole;
            let mut pb = ProgramBuilder::new(ctx);
            pb.forced_rows = Some(kernel);
            pb.crossentropy_forward_backward(
                &w(&losses_b),
                &w(&dlogits_b),
                &w(&logits_b),
                &w(&targets_b),
                &w(&scalars_b),
                1,
                n,
                v,
            );
            let got = run_and_read(ctx, pb, &[("losses", &losses_b, n), ("dlogits", &dlogits_b, n * v)]).await?;
            Ok(vec![compare("crossentropy losses", &got[0], losses), compare("crossentropy dlogits", &got[1], dlogits)])
        }
    })
    .await
}
