//! The optimizer family: one AdamW and one SGD update over a flat buffer,
//! with clipping active.

use super::compare::{compare, compare_with_slack, f64s, run_and_read, Comparison};
use super::{Case, Check, Family, Running};
use crate::cpu;
use crate::gpu::{GpuContext, GpuError, ProgramBuilder, UpdateSettings, View};
use crate::rng::Rng;

pub const FAMILY: Family = Family { name: "optimizer", checks };

/// One update by `kind` over n floats.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Optimizer {
    pub kind: UpdateKind,
    pub n: usize,
}

impl Case for Optimizer {
    fn run<'a>(&'a self, ctx: &'a GpuContext, seed: u64) -> Running<'a> {
        Box::pin(async move { Ok(optimizer(ctx, seed, self.kind, self.n).await?) })
    }
}

fn checks(family: &Family) -> Vec<Check> {
    let mut all = Vec::new();
    for n in [1, 1000, 70_001, 10_007] {
        for kind in [UpdateKind::AdamW, UpdateKind::Sgd] {
            all.push(family.kernel(Optimizer { kind, n }, n == 10_007));
        }
    }
    all
}

/// Which update kernel `optimizer` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateKind {
    AdamW,
    Sgd,
}

/// One optimizer update over a flat buffer of `n` floats, with clipping active.
pub async fn optimizer(ctx: &GpuContext, seed: u64, kind: UpdateKind, n: usize) -> Result<Vec<Comparison>, GpuError> {
    let mut rng = Rng::new(seed);
    let params = rng.vec_f32(n, 1.0);
    let grads = rng.vec_f32(n, 1.0);
    let m0 = rng.vec_f32(n, 0.1);
    let v0: Vec<f32> = rng.vec_f32(n, 0.1).iter().map(|x| x.abs()).collect();
    let (lr, beta1, beta2, eps, wd, step) = (0.01f32, 0.9f32, 0.95f32, 1e-8f32, 0.1f32, 3u32);
    let decay_end = n / 3;
    let norm2: f64 = grads.iter().map(|&g| g as f64 * g as f64).sum();
    let max_norm = (norm2.sqrt() * 0.5) as f32; // forces clipping by 0.5
    let bc1 = 1.0 - beta1.powi(step as i32);
    let bc2 = 1.0 - beta2.powi(step as i32);
    let scalars = [lr, bc1, bc2];
    let stats = [norm2 as f32];
    let b = |name, data: &[f32]| ctx.upload(name, data);
    let (p_b, g_b, m_b, v_b, sc_b, st_b) = (
        b("params", &params),
        b("grads", &grads),
        b("m", &m0),
        b("v", &v0),
        b("scalars", &scalars),
        b("stats", &stats),
    );
    let settings = UpdateSettings {
        n,
        decay_end,
        scalars_index: 0,
        norm_index: 0,
        beta1,
        beta2,
        eps,
        weight_decay: wd,
        max_grad_norm: max_norm,
    };
    let w = View::whole;
    let mut pb = ProgramBuilder::new(ctx);
    match kind {
        UpdateKind::AdamW => pb.adamw_update(&w(&p_b), &w(&g_b), &w(&m_b), &w(&v_b), &w(&sc_b), &w(&st_b), &settings),
        UpdateKind::Sgd => pb.sgd_update(&w(&p_b), &w(&g_b), &w(&m_b), &w(&sc_b), &w(&st_b), &settings),
    }
    let got = run_and_read(ctx, pb, &[("params", &p_b, n), ("m", &m_b, n), ("v", &v_b, n)]).await?;
    let grad_scale = max_norm as f64 / (norm2 as f32 as f64).sqrt();
    let (mut p, mut m, mut v) = (f64s(&params), f64s(&m0), f64s(&v0));
    let name = match kind {
        UpdateKind::AdamW => {
            cpu::adamw_update(
                &mut p,
                &f64s(&grads),
                &mut m,
                &mut v,
                lr as f64,
                beta1 as f64,
                beta2 as f64,
                eps as f64,
                wd as f64,
                step,
                decay_end,
                grad_scale,
            );
            "adamw_update"
        }
        UpdateKind::Sgd => {
            cpu::sgd_update(&mut p, &f64s(&grads), &mut m, lr as f64, beta1 as f64, wd as f64, decay_end, grad_scale);
            "sgd_update"
        }
    };
    // The update is small next to the weights, so compare the change, not the
    // weights. Its error counts relative to the change, except for one unit in
    // the last place of the new weight: no f32 kernel can store it closer.
    let delta_gpu: Vec<f32> = got[0].iter().zip(&params).map(|(a, b)| a - b).collect();
    let delta_cpu: Vec<f64> = p.iter().zip(&params).map(|(a, b)| a - *b as f64).collect();
    let ulp = |x: f64| (x as f32).abs().max(f32::MIN_POSITIVE) as f64 * f32::EPSILON as f64;
    let mut out = vec![
        compare_with_slack(&format!("{name} Δparams"), &delta_gpu, &delta_cpu, |i| ulp(p[i])),
        compare(&format!("{name} moment1"), &got[1], &m),
    ];
    if kind == UpdateKind::AdamW {
        out.push(compare("adamw_update moment2", &got[2], &v));
    }
    Ok(out)
}
