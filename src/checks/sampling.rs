//! The sampling family: `sample_next_token` picks, which must agree with the
//! CPU twin's token for token.

use super::compare::{f64s, run_and_read, Comparison};
use super::{Case, Check, Family, Running, EXACT};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, ProgramBuilder, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "sampling", checks };

/// k picks from a window of t tokens holding `start` at first, over a
/// vocabulary of v, at `temperature`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub t: usize,
    pub v: usize,
    pub k: usize,
    pub start: usize,
    pub temperature: f64,
}

impl Case for Sampling {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        let Sampling { t, v, k, start, temperature } = *self;
        Box::pin(async move { Ok(sampling(ctx, seed, t, v, k, start, temperature).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    let cases =
        [(7, 13, 20, 3, 0.0), (7, 13, 20, 1, 0.7), (64, 256, 100, 40, 1.0), (1, 5, 9, 1, 2.0), (5, 300, 4, 5, 0.0)];
    cases
        .into_iter()
        .map(|(t, v, k, start, temperature)| {
            family.check(Sampling { t, v, k, start, temperature }, EXACT, (t, v) == (64, 256))
        })
        .collect()
}

/// `k` picks of `sample_next_token` in one submission from a window holding
/// `start` of `t` tokens (so it fills and then slides), at `temperature`
/// (0 = greedy). The logits stay fixed, so each pick reads the row of the
/// window's current length. Token ids must agree exactly: `rel_error` is the
/// fraction that differ.
pub async fn sampling(
    ctx: &GpuContext,
    seed: u64,
    t: usize,
    v: usize,
    k: usize,
    start: usize,
    temperature: f64,
) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let logits = rng.vec_f32(t * v, 3.0);
    let mut window: Vec<u32> = (0..t).map(|i| if i < start { rng.below(v) as u32 } else { 0 }).collect();
    let inv_temperature = crate::train::inverse_temperature(temperature).unwrap_or(0.0);
    let draws = crate::train::sample_draws(inv_temperature, k, &mut rng);
    let (state_b, window_b, picked_b) =
        (ctx.upload("state", &[start as u32, 0]), ctx.upload("window", &window), ctx.storage("picked", k));
    let (logits_b, draws_b) = (ctx.upload("logits", &logits), ctx.upload("draws", &draws));
    let w = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    for _ in 0..k {
        pb.sample_next_token(&w(&state_b), &w(&window_b), &w(&picked_b), &w(&logits_b), &w(&draws_b), t, v);
    }
    let got =
        run_and_read(ctx, pb, &[("state", &state_b, 2), ("window", &window_b, t), ("picked", &picked_b, k)]).await?;
    let (mut state, mut picked) = ([start as u32, 0], vec![0u32; k]);
    let (logits64, draws64) = (f64s(&logits), f64s(&draws));
    for _ in 0..k {
        cpu::sample_next_token(&mut state, &mut window, &mut picked, &logits64, &draws64, t, v);
    }
    let ids = |name: &str, gpu: &[f32], cpu: &[u32]| {
        let differ: Vec<usize> = (0..cpu.len()).filter(|&i| gpu[i].to_bits() != cpu[i]).collect();
        Comparison {
            name: name.to_string(),
            rel_error: differ.len() as f64 / cpu.len().max(1) as f64,
            worst_abs: differ.first().map_or(0.0, |&i| (gpu[i].to_bits() as f64 - cpu[i] as f64).abs()),
            worst_index: differ.first().copied().unwrap_or(0),
        }
    };
    Ok(vec![
        ids("sample_next_token picked", &got[2], &picked),
        ids("sample_next_token window", &got[1], &window),
        ids("sample_next_token state", &got[0], &state),
    ])
}
