//! The encoder family: token + position embedding forward and backward.

use super::compare::{compare, f64s, run_and_read, Comparison};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, ProgramBuilder, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "encoder", checks };

/// b sequences of t tokens from a vocabulary of v, c channels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Encoder {
    pub b: usize,
    pub t: usize,
    pub c: usize,
    pub v: usize,
}

impl Case for Encoder {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(encoder(ctx, seed, self.b, self.t, self.c, self.v).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    vec![
        family.kernel(Encoder { b: 3, t: 17, c: 19, v: 11 }, true),
        family.kernel(Encoder { b: 1, t: 1, c: 1, v: 1 }, false),
    ]
}

/// Token + position embedding forward and backward (with repeated tokens).
pub async fn encoder(
    ctx: &GpuContext,
    seed: u64,
    b: usize,
    t: usize,
    c: usize,
    v: usize,
) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let inp: Vec<u32> = (0..b * t).map(|_| rng.below(v) as u32).collect();
    let wte = rng.vec_f32(v * c, 1.0);
    let wpe = rng.vec_f32(t * c, 1.0);
    let dout = rng.vec_f32(b * t * c, 1.0);
    let dwte0 = rng.vec_f32(v * c, 1.0);
    let dwpe0 = rng.vec_f32(t * c, 1.0);
    let (offsets, positions) = crate::gpu::token_positions(&inp, v);
    let (inp_b, wte_b, wpe_b, dout_b) =
        (ctx.upload("inp", &inp), ctx.upload("wte", &wte), ctx.upload("wpe", &wpe), ctx.upload("dout", &dout));
    let (dwte_b, dwpe_b) = (ctx.upload("dwte", &dwte0), ctx.upload("dwpe", &dwpe0));
    let (off_b, pos_b) = (ctx.upload("offsets", &offsets), ctx.upload("positions", &positions));
    let out_b = ctx.storage("out", b * t * c);
    let w = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    pb.encoder_forward(&w(&out_b), &w(&inp_b), &w(&wte_b), &w(&wpe_b), b, t, c);
    pb.encoder_backward(&w(&dwte_b), &w(&dwpe_b), &w(&dout_b), &w(&off_b), &w(&pos_b), b, t, c, v);
    let got = run_and_read(ctx, pb, &[("out", &out_b, b * t * c), ("dwte", &dwte_b, v * c), ("dwpe", &dwpe_b, t * c)])
        .await?;
    let mut out = vec![0.0; b * t * c];
    cpu::encoder_forward(&mut out, &inp, &f64s(&wte), &f64s(&wpe), b, t, c);
    let (mut dwte, mut dwpe) = (f64s(&dwte0), f64s(&dwpe0));
    cpu::encoder_backward(&mut dwte, &mut dwpe, &f64s(&dout), &inp, b, t, c);
    Ok(vec![
        compare("encoder_forward out", &got[0], &out),
        compare("encoder_backward dwte", &got[1], &dwte),
        compare("encoder_backward dwpe", &got[2], &dwpe),
    ])
}
