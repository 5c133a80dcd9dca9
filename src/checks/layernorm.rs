//! The LayerNorm family: forward and backward, dinp added to and
//! overwritten.

use super::compare::{compare, f64s, grad_start, per_variant, run_and_read, Comparison, WRITES};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, GradWrite, ProgramBuilder, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "layernorm", checks };

/// n rows of c channels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Layernorm {
    pub n: usize,
    pub c: usize,
}

impl Case for Layernorm {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(layernorm(ctx, seed, self.n, self.c).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    vec![family.kernel(Layernorm { n: 131, c: 67 }, true), family.kernel(Layernorm { n: 1, c: 3 }, false)]
}

/// LayerNorm forward and backward, dinp added to and overwritten.
pub async fn layernorm(ctx: &GpuContext, seed: u64, n: usize, c: usize) -> Result<Vec<Comparison>, GpuError> {
    per_variant(&WRITES, |write| layernorm_with(ctx, seed, n, c, write)).await
}

async fn layernorm_with(
    ctx: &GpuContext,
    seed: u64,
    n: usize,
    c: usize,
    write: GradWrite,
) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let inp: Vec<f32> = rng.vec_f32(n * c, 2.0).iter().map(|x| x + 0.5).collect();
    let weight = rng.vec_f32(c, 1.0);
    let bias = rng.vec_f32(c, 1.0);
    let dout = rng.vec_f32(n * c, 1.0);
    let (dinp0, dinp64) = grad_start(&mut rng, n * c, write);
    let (dw0, db0) = (rng.vec_f32(c, 1.0), rng.vec_f32(c, 1.0));
    let up = |name, d: &[f32]| ctx.upload(name, d);
    let (inp_b, w_b, b_b, dout_b) = (up("inp", &inp), up("weight", &weight), up("bias", &bias), up("dout", &dout));
    let (dinp_b, dw_b, db_b) = (up("dinp", &dinp0), up("dweight", &dw0), up("dbias", &db0));
    let (out_b, mean_b, rstd_b) = (ctx.storage("out", n * c), ctx.storage("mean", n), ctx.storage("rstd", n));
    let w = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    pb.layernorm_forward(&w(&out_b), &w(&mean_b), &w(&rstd_b), &w(&inp_b), &w(&w_b), &w(&b_b), n, c);
    pb.layernorm_backward(
        &w(&dinp_b),
        Some((&w(&dw_b), &w(&db_b))),
        &w(&dout_b),
        &w(&inp_b),
        &w(&w_b),
        &w(&mean_b),
        &w(&rstd_b),
        n,
        c,
        write,
    );
    let got = run_and_read(
        ctx,
        pb,
        &[
            ("out", &out_b, n * c),
            ("mean", &mean_b, n),
            ("rstd", &rstd_b, n),
            ("dinp", &dinp_b, n * c),
            ("dw", &dw_b, c),
            ("db", &db_b, c),
        ],
    )
    .await?;
    let (mut out, mut mean, mut rstd) = (vec![0.0; n * c], vec![0.0; n], vec![0.0; n]);
    let (inp64, w64) = (f64s(&inp), f64s(&weight));
    cpu::layernorm_forward(&mut out, &mut mean, &mut rstd, &inp64, &w64, &f64s(&bias), n, c);
    let (mut dinp, mut dw, mut db) = (dinp64, f64s(&dw0), f64s(&db0));
    cpu::layernorm_backward(&mut dinp, &mut dw, &mut db, &f64s(&dout), &inp64, &w64, &mean, &rstd, n, c);
    Ok(vec![
        compare("layernorm_forward out", &got[0], &out),
        compare("layernorm_forward mean", &got[1], &mean),
        compare("layernorm_forward rstd", &got[2], &rstd),
        compare("layernorm_backward dinp", &got[3], &dinp),
        compare("layernorm_backward dweight", &got[4], &dw),
        compare("layernorm_backward dbias", &got[5], &db),
    ])
}
