//! The LoRA kernels' family: the merge W + s·B·A and the backward into
//! dinp, dA and dB, on adapters of several ranks.

use super::compare::{compare, f64s, run_and_read, Comparison};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, ProgramBuilder, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "lora", checks };

/// An adapter of rank r on a Linear from c to oc channels, over n rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Lora {
    pub n: usize,
    pub c: usize,
    pub oc: usize,
    pub r: usize,
}

impl Case for Lora {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(lora(ctx, seed, self.n, self.c, self.oc, self.r).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    let sizes = [(67, 13, 29, 3), (130, 65, 191, 8), (1, 1, 1, 1), (45, 84, 21, 21)];
    sizes.into_iter().map(|(n, c, oc, r)| family.kernel(Lora { n, c, oc, r }, r == 8)).collect()
}

/// LoRA's kernels on an adapter of rank r: the merge W + s·B·A and the
/// backward into dinp, dA and dB (which start non-zero to check that they
/// accumulate).
pub async fn lora(
    ctx: &GpuContext,
    seed: u64,
    n: usize,
    c: usize,
    oc: usize,
    r: usize,
) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let scale = 0.5 + rng.uniform() as f32 * 4.0;
    let (inp, dout) = (rng.vec_f32(n * c, 1.0), rng.vec_f32(n * oc, 1.0));
    let (a, b_, w0) = (rng.vec_f32(r * c, 1.0), rng.vec_f32(oc * r, 1.0), rng.vec_f32(oc * c, 1.0));
    let (dinp0, da0, db0) = (rng.vec_f32(n * c, 1.0), rng.vec_f32(r * c, 1.0), rng.vec_f32(oc * r, 1.0));
    let up = |name, data: &[f32]| ctx.upload(name, data);
    let (inp_b, dout_b, a_b, b_b, w_b) = (up("inp", &inp), up("dout", &dout), up("a", &a), up("b", &b_), up("w", &w0));
    let (dinp_b, da_b, db_b) = (up("dinp", &dinp0), up("da", &da0), up("db", &db0));
    let (h_b, dh_b) = (ctx.storage("h", n * r), ctx.storage("dh", n * r));
    let v = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    pb.lora_merge(&v(&w_b), &v(&a_b), &v(&b_b), scale, oc, c, r);
    let (dinp_v, scratch) = (v(&dinp_b), (&v(&h_b), &v(&dh_b)));
    pb.lora_backward(
        Some(&dinp_v),
        &v(&da_b),
        &v(&db_b),
        &v(&dout_b),
        &v(&inp_b),
        &v(&a_b),
        &v(&b_b),
        scale,
        scratch,
        [n, c, oc, r],
    );
    let outputs = [("w", &w_b, oc * c), ("dinp", &dinp_b, n * c), ("da", &da_b, r * c), ("db", &db_b, oc * r)];
    let got = run_and_read(ctx, pb, &outputs).await?;

    let (a, b_, s) = (f64s(&a), f64s(&b_), scale as f64);
    let mut w = f64s(&w0);
    cpu::lora_merge(&mut w, &a, &b_, s, oc, c, r);
    let (mut dinp, mut da, mut db) = (f64s(&dinp0), f64s(&da0), f64s(&db0));
    cpu::lora_backward(Some(&mut dinp), &mut da, &mut db, &f64s(&dout), &f64s(&inp), &a, &b_, s, n, c, oc, r);
    Ok(vec![
        compare("lora_merge w", &got[0], &w),
        compare("lora_backward dinp", &got[1], &dinp),
        compare("lora_backward da", &got[2], &da),
        compare("lora_backward db", &got[3], &db),
    ])
}
