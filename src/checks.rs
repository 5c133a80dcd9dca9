//! GPU-versus-CPU checks of every kernel and of a whole training step.
//!
//! They live in the library, not only in `tests/`, because the same checks run
//! natively (cargo test), in the browser (wasm-bindgen-test) and from the
//! command line (`gradlab check`): one definition, three adapters. Each draws
//! fresh inputs from a seed at sizes that are not multiples of any tile, runs
//! the kernel on the GPU and its CPU twin in f64, and reports the relative
//! error ‖gpu − cpu‖ / ‖cpu‖ of every output.
#![allow(clippy::too_many_arguments)]

use crate::cpu;
use crate::gpu::GpuRun;
use crate::gpu::{GpuContext, GpuError, GradWrite, MatmulKernel, ProgramBuilder, RowKernel, UpdateSettings, View};
use crate::model::{AdapterLayout, LoraConfig, ModelConfig, ParamLayout};
use crate::optim::{OptimizerConfig, OptimizerKind};
use crate::rng::Rng;
use crate::train::{MicroBatch, RunConfig, StepError, StepWork, Trainer};
use crate::IGNORE_INDEX;

/// Relative error of one output.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Comparison {
    pub name: String,
    pub rel_error: f64,
    /// Largest |gpu − cpu| and where.
    pub worst_abs: f64,
    pub worst_index: usize,
}

impl std::fmt::Display for Comparison {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:<28} rel {:.2e}  worst |Δ| {:.2e} at {}",
            self.name, self.rel_error, self.worst_abs, self.worst_index
        )
    }
}

/// ‖gpu − cpu‖ / ‖cpu‖ (or the absolute norm when cpu is all zeros).
pub fn compare(name: &str, gpu: &[f32], cpu: &[f64]) -> Comparison {
    compare_with_slack(name, gpu, cpu, |_| 0.0)
}

/// `compare`, forgiving each element `slack(i)` of absolute difference first:
/// for errors the GPU cannot avoid, such as storing a result in f32.
fn compare_with_slack(name: &str, gpu: &[f32], cpu: &[f64], slack: impl Fn(usize) -> f64) -> Comparison {
    assert_eq!(gpu.len(), cpu.len(), "{name}: lengths differ");
    let (mut diff2, mut ref2, mut worst_abs, mut worst_index) = (0.0f64, 0.0f64, 0.0f64, 0usize);
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        let raw = g as f64 - c;
        let d = if raw.is_nan() { raw } else { (raw.abs() - slack(i)).max(0.0) };
        diff2 += d * d;
        ref2 += c * c;
        if d.abs() > worst_abs || d.is_nan() {
            worst_abs = d.abs();
            worst_index = i;
        }
    }
    let rel_error = if ref2 > 0.0 { (diff2 / ref2).sqrt() } else { diff2.sqrt() };
    Comparison {
        name: name.to_string(),
        rel_error: if rel_error.is_nan() { f64::INFINITY } else { rel_error },
        worst_abs,
        worst_index,
    }
}

fn f64s(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| v as f64).collect()
}

/// Both ways a backward kernel writes an activation's gradient.
const WRITES: [GradWrite; 2] = [GradWrite::Accumulate, GradWrite::Overwrite];

/// Where a check starts an activation's gradient, on the GPU and for the CPU
/// twin: random values to add to, or NaN on the GPU, which an overwrite must
/// never read, against zeros for the twin.
fn grad_start(rng: &mut Rng, len: usize, write: GradWrite) -> (Vec<f32>, Vec<f64>) {
    match write {
        GradWrite::Accumulate => {
            let start = rng.vec_f32(len, 1.0);
            let wide = f64s(&start);
            (start, wide)
        }
        GradWrite::Overwrite => (vec![f32::NAN; len], vec![0.0; len]),
    }
}

/// Runs a check once per variant (a kernel forced, a way of writing),
/// naming each comparison after its variant.
async fn per_variant<V, F, Fut>(variants: &[V], mut check: F) -> Result<Vec<Comparison>, GpuError>
where
    V: Copy + std::fmt::Debug,
    F: FnMut(V) -> Fut,
    Fut: std::future::Future<Output = Result<Vec<Comparison>, GpuError>>,
{
    let mut all = Vec::new();
    for &variant in variants {
        let name = format!("{variant:?}").to_lowercase();
        all.extend(check(variant).await?.into_iter().map(|r| Comparison { name: format!("{} ({name})", r.name), ..r }));
    }
    Ok(all)
}

async fn run_and_read(
    ctx: &GpuContext,
    pb: ProgramBuilder,
    outputs: &[(&str, &wgpu::Buffer, usize)],
) -> Result<Vec<Vec<f32>>, GpuError> {
    pb.finish().run(ctx);
    let mut out = Vec::new();
    for (_, buf, n) in outputs {
        out.push(ctx.read_f32(buf, 0, *n).await?);
    }
    Ok(out)
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

/// Fused cross-entropy with some ignored targets and a non-trivial scale.
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
        compare(&format!("{name} state1"), &got[1], &m),
    ];
    if kind == UpdateKind::AdamW {
        out.push(compare("adamw_update state2", &got[2], &v));
    }
    Ok(out)
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

/// A model, weights and a ragged micro-batch for whole-model checks.
pub struct ModelCase {
    pub config: ModelConfig,
    pub params: Vec<f32>,
    pub batch: MicroBatch,
    pub b: usize,
    pub t: usize,
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

/// A small model with perturbed GPT-2 init (so biases and gains matter) and a
/// micro-batch of right-padded sequences of different lengths.
pub fn model_case(seed: u64, config: ModelConfig, b: usize, t: usize) -> ModelCase {
    let layout = ParamLayout::new(&config);
    let mut rng = Rng::new(seed);
    let mut params = layout.init(seed);
    for tv in &layout.tensors {
        for x in &mut params[tv.offset..tv.offset + tv.len] {
            *x += (rng.uniform() as f32 - 0.5) * 0.1;
        }
    }
    let sequences: Vec<Vec<u32>> = (0..b)
        .map(|i| {
            let len = if i == 0 { t + 1 } else { 2 + rng.below(t) };
            (0..len).map(|_| rng.below(config.vocab_size) as u32).collect()
        })
        .collect();
    let batch = MicroBatch::from_sequences(&sequences, t).unwrap_or_else(|e| unreachable!("{e}"));
    ModelCase { config, params, batch, b, t }
}

/// A whole LoRA step and gradient, GPU against the CPU reference: one SGD
/// step from fresh adapters (B = 0, so only B moves), then the adapters'
/// gradient at the moved adapters, where A's is no longer zero. The GPU
/// merges the adapters into the weights; the CPU applies them unmerged.
pub async fn lora_model_gradients(
    ctx: &GpuContext,
    case: &ModelCase,
    lora: LoraConfig,
) -> Result<Vec<Comparison>, StepError> {
    let optimizer = OptimizerConfig { kind: OptimizerKind::Sgd, lr: 0.5, ..Default::default() };
    let run_config = RunConfig {
        model: case.config,
        micro_batch: case.b,
        grad_accum: 1,
        seq_len: case.t,
        optimizer,
        lora: Some(lora),
    };
    let mut gpu = GpuRun::new(ctx, run_config, &case.params)?;
    let mut cpu = cpu::CpuRun::new(&(), run_config, &case.params)?;
    let scale = 1.0 / case.batch.tokens() as f32;
    let work = StepWork { micro_batches: std::slice::from_ref(&case.batch), scales: &[scale] };
    gpu.step(work).await?;
    cpu.step(work).await?;
    let (gpu_grads, gpu_sums) = gpu.gradients(work).await?;
    let (cpu_grads, cpu_sums) = cpu.gradients(work).await?;
    let (gpu_weights, cpu_weights) = (gpu.params().await?, cpu.params().await?);
    let adapters = AdapterLayout::new(&ParamLayout::new(&case.config), lora)?;
    let mut out = vec![
        compare("lora loss sum after a step", &gpu_sums, &f64s(&cpu_sums)),
        compare("merged weights after a step", &gpu_weights, &f64s(&cpu_weights)),
    ];
    for tv in adapters.tensors() {
        let r = tv.offset..tv.offset + tv.len;
        out.push(compare(&format!("grad {}", tv.name), &gpu_grads[r.clone()], &f64s(&cpu_grads[r])));
    }
    Ok(out)
}

/// Whole model: per-token losses and every parameter's gradient, GPU against
/// the CPU reference, for one micro-batch with dlogits scale 1/N.
pub async fn model_gradients(ctx: &GpuContext, case: &ModelCase) -> Result<Vec<Comparison>, StepError> {
    let layout = ParamLayout::new(&case.config);
    let run_config = RunConfig {
        model: case.config,
        micro_batch: case.b,
        grad_accum: 1,
        seq_len: case.t,
        optimizer: Default::default(),
        lora: None,
    };
    let mut run = GpuRun::new(ctx, run_config, &case.params)?;
    let n_tokens = case.batch.tokens();
    let scale = 1.0 / n_tokens as f32;
    let work = StepWork { micro_batches: std::slice::from_ref(&case.batch), scales: &[scale] };
    let (grads, loss_sums) = run.gradients(work).await?;

    let mut reference = cpu::CpuModel::new(layout.clone(), &case.params);
    let losses = reference.forward(&case.batch.inputs, &case.batch.targets, case.b, case.t);
    reference.backward(scale as f64);
    let mut out = vec![compare("model loss sum", &loss_sums, &[losses.iter().sum()])];
    for tv in &layout.tensors {
        let r = tv.offset..tv.offset + tv.len;
        out.push(compare(&format!("grad {}", tv.name), &grads[r.clone()], &reference.grads[r]));
    }
    Ok(out)
}

/// f32 kernels against their f64 twins.
pub const KERNEL_TOLERANCE: f64 = 1e-4;
/// A whole model's loss and gradients: many f32 kernels in a row.
pub const MODEL_TOLERANCE: f64 = 1e-3;
/// Token ids agree exactly or not at all (`rel_error` is the fraction that differ).
pub const EXACT: f64 = f64::MIN_POSITIVE;

/// One GPU-versus-CPU comparison the suite runs: which kernel family, at
/// what sizes (deliberately not multiples of any tile), within what tolerance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Case {
    Matmul {
        n: usize,
        c: usize,
        oc: usize,
    },
    CrossEntropy {
        n: usize,
        v: usize,
        rows: LogitRows,
    },
    /// (t, v, picks, tokens in the window at the start, temperature)
    Sampling {
        t: usize,
        v: usize,
        k: usize,
        start: usize,
        temperature: f64,
    },
    Optimizer {
        kind: UpdateKind,
        n: usize,
    },
    Encoder {
        b: usize,
        t: usize,
        c: usize,
        v: usize,
    },
    Layernorm {
        n: usize,
        c: usize,
    },
    Attention {
        b: usize,
        t: usize,
        c: usize,
        nh: usize,
    },
    Elementwise {
        n: usize,
    },
    Lora {
        n: usize,
        c: usize,
        oc: usize,
        r: usize,
    },
    Reductions {
        n: usize,
    },
    Model {
        config: ModelConfig,
        b: usize,
        t: usize,
    },
    /// A LoRA step and gradient of the whole model.
    LoraModel {
        config: ModelConfig,
        b: usize,
        t: usize,
        lora: LoraConfig,
    },
}

/// A case with its tolerance, and whether the quick suite (browser tests and
/// `gradlab check`, where SwiftShader or a user waits) includes it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Check {
    pub case: Case,
    pub tolerance: f64,
    pub quick: bool,
}

impl Check {
    /// The kernel family, for grouping: "matmul", "crossentropy", ...
    pub fn family(&self) -> &'static str {
        match self.case {
            Case::Matmul { .. } => "matmul",
            Case::CrossEntropy { .. } => "crossentropy",
            Case::Sampling { .. } => "sampling",
            Case::Optimizer { .. } => "optimizer",
            Case::Encoder { .. } => "encoder",
            Case::Layernorm { .. } => "layernorm",
            Case::Attention { .. } => "attention",
            Case::Elementwise { .. } => "elementwise",
            Case::Lora { .. } => "lora",
            Case::Reductions { .. } => "reductions",
            Case::Model { .. } => "model",
            Case::LoraModel { .. } => "lora_model",
        }
    }

    /// Runs the case on `ctx` with inputs drawn from `seed`.
    pub async fn run(&self, ctx: &GpuContext, seed: u64) -> Result<Vec<Comparison>, StepError> {
        Ok(match self.case {
            Case::Matmul { n, c, oc } => matmul(ctx, seed, n, c, oc).await?,
            Case::CrossEntropy { n, v, rows } => crossentropy(ctx, seed, n, v, rows).await?,
            Case::Sampling { t, v, k, start, temperature } => sampling(ctx, seed, t, v, k, start, temperature).await?,
            Case::Optimizer { kind, n } => optimizer(ctx, seed, kind, n).await?,
            Case::Encoder { b, t, c, v } => encoder(ctx, seed, b, t, c, v).await?,
            Case::Layernorm { n, c } => layernorm(ctx, seed, n, c).await?,
            Case::Attention { b, t, c, nh } => attention(ctx, seed, b, t, c, nh).await?,
            Case::Elementwise { n } => elementwise(ctx, seed, n).await?,
            Case::Reductions { n } => reductions(ctx, seed, n).await?,
            Case::Lora { n, c, oc, r } => lora(ctx, seed, n, c, oc, r).await?,
            Case::Model { config, b, t } => model_gradients(ctx, &model_case(seed, config, b, t)).await?,
            Case::LoraModel { config, b, t, lora } => {
                lora_model_gradients(ctx, &model_case(seed, config, b, t), lora).await?
            }
        })
    }

    /// The comparisons of a run at or above the tolerance.
    pub fn failures<'a>(&self, results: &'a [Comparison]) -> Vec<&'a Comparison> {
        results.iter().filter(|r| r.rel_error >= self.tolerance).collect()
    }
}

/// Every check, in a fixed order (seeds are derived from the position).
pub fn suite() -> Vec<Check> {
    use Case::*;
    let kernel = |case, quick| Check { case, tolerance: KERNEL_TOLERANCE, quick };
    let mut all = Vec::new();
    for (n, c, oc) in [(1, 1, 1), (67, 13, 29), (130, 65, 191), (64, 64, 64), (37, 204, 3)] {
        all.push(kernel(Matmul { n, c, oc }, matches!((n, c, oc), (67, 13, 29) | (130, 65, 191) | (37, 204, 3))));
    }
    for (n, v) in [(1, 2), (77, 257), (300, 65), (5, 1000)] {
        for rows in [LogitRows::Random, LogitRows::Confident, LogitRows::Tied] {
            all.push(kernel(CrossEntropy { n, v, rows }, (n, v) == (77, 257)));
        }
    }
    for (t, v, k, start, temperature) in
        [(7, 13, 20, 3, 0.0), (7, 13, 20, 1, 0.7), (64, 256, 100, 40, 1.0), (1, 5, 9, 1, 2.0), (5, 300, 4, 5, 0.0)]
    {
        let quick = (t, v) == (64, 256);
        all.push(Check { case: Sampling { t, v, k, start, temperature }, tolerance: EXACT, quick });
    }
    for n in [1, 1000, 70_001, 10_007] {
        for kind in [UpdateKind::AdamW, UpdateKind::Sgd] {
            all.push(kernel(Optimizer { kind, n }, n == 10_007));
        }
    }
    all.push(kernel(Encoder { b: 3, t: 17, c: 19, v: 11 }, true));
    all.push(kernel(Encoder { b: 1, t: 1, c: 1, v: 1 }, false));
    all.push(kernel(Layernorm { n: 131, c: 67 }, true));
    all.push(kernel(Layernorm { n: 1, c: 3 }, false));
    all.push(kernel(Attention { b: 3, t: 23, c: 12, nh: 3 }, true));
    all.push(kernel(Attention { b: 1, t: 1, c: 4, nh: 1 }, false));
    // a head of 21 channels: one whole chunk of the `_serial` kernels' 16 and a
    // ragged one, not a multiple of their four-channel loads
    all.push(kernel(Attention { b: 2, t: 19, c: 63, nh: 3 }, true));
    // rows longer than a workgroup and heads wider than one (the `_rows` kernels stride)
    all.push(kernel(Attention { b: 2, t: 150, c: 140, nh: 2 }, false));
    all.push(kernel(Elementwise { n: 1001 }, true));
    for (n, c, oc, r) in [(67, 13, 29, 3), (130, 65, 191, 8), (1, 1, 1, 1), (45, 84, 21, 21)] {
        all.push(kernel(Lora { n, c, oc, r }, r == 8));
    }
    for n in [1, 255, 4097, 100_003] {
        all.push(kernel(Reductions { n }, n == 100_003));
    }
    let ragged = ModelConfig { vocab_size: 67, block_size: 19, n_layer: 2, n_head: 3, n_embd: 21 };
    let model = |case, quick| Check { case, tolerance: MODEL_TOLERANCE, quick };
    all.push(model(Model { config: ragged, b: 3, t: 17 }, true));
    all.push(model(Model { config: ModelConfig::nano(), b: 2, t: 64 }, false));
    let two_layers = LoraConfig { rank: 5, alpha: 7.0, targets: 0b1101, seed: 3 };
    all.push(model(LoraModel { config: ragged, b: 3, t: 17, lora: two_layers }, true));
    all.push(model(LoraModel { config: ModelConfig::nano(), b: 2, t: 64, lora: LoraConfig::all_layers(8, 1) }, false));
    all
}

/// The checks the browser tests and `gradlab check` run.
pub fn quick_suite() -> Vec<Check> {
    suite().into_iter().filter(|c| c.quick).collect()
}

/// A seed for fresh random inputs: `GRADLAB_SEED` when set (natively), the
/// clock otherwise. Printed when made and again if the test holding it
/// fails, so any failure can be replayed.
pub struct Seed(pub u64);

impl Seed {
    pub fn fresh() -> Self {
        #[cfg(not(target_arch = "wasm32"))]
        let seed = std::env::var("GRADLAB_SEED").ok().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1)
        });
        #[cfg(target_arch = "wasm32")]
        let seed = js_sys::Date::now() as u64;
        log(&format!("seed {seed} (GRADLAB_SEED={seed} replays it)"));
        Seed(seed)
    }
}

impl Drop for Seed {
    fn drop(&mut self) {
        if std::thread::panicking() {
            log(&format!("FAILED with seed {0}: replay with GRADLAB_SEED={0}", self.0));
        }
    }
}

/// A line on stderr natively, on the console in a browser.
pub fn log(line: &str) {
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("{line}");
    #[cfg(target_arch = "wasm32")]
    web_sys::console::log_1(&line.into());
}

/// Runs every check of `family` in `checks` with seeds seed+i (i its position
/// in the suite), logs every comparison, and returns the failures in words.
pub async fn run_family(ctx: &GpuContext, checks: &[Check], family: &str, seed: u64) -> Result<Vec<String>, StepError> {
    let mut failed = Vec::new();
    let mut ran = 0;
    for (i, check) in checks.iter().enumerate().filter(|(_, c)| c.family() == family) {
        let results = check.run(ctx, seed.wrapping_add(i as u64)).await?;
        ran += 1;
        for r in &results {
            log(&r.to_string());
        }
        for bad in check.failures(&results) {
            failed.push(format!("{:?}: {bad} (tolerance {:e})", check.case, check.tolerance));
        }
    }
    if ran == 0 {
        failed.push(format!("no check of family {family:?}"));
    }
    Ok(failed)
}
