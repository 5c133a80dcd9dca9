//! The CPU twin of every GPU kernel, generic over the float it computes in
//! (`Real`): in f64 the reference the kernels are tested against; in f32 what
//! the fast CPU backend runs, except where `Real` gives f32 its own kernel
//! (`cpu::simd`).
//!
//! Beside the twins, forms the GPU has no kernel of: GELU and the residual
//! add alone (`gelu_forward`, `residual_forward`: on the GPU they are the
//! matmul's epilogues, whose twins `matmul_forward_gelu` and
//! `matmul_forward_residual` are built from them), LoRA unmerged
//! (`lora_forward`, what `lora_merge` is checked against), RMSProp (the
//! playground's only), and `residual_backward`: the rule the model's backward
//! applies in place, written out with its test.
//!
//! Legend: b sequences per micro-batch, T time, C channels, OC output channels, V vocabulary,
//! NH heads, N = b*T rows. Arguments go outputs, inputs, dimensions (llm.c
//! order). Backward functions accumulate (`+=`) into their gradients.
//! Clarity over speed: plain loops in the order the maths reads.
//! Hyperparameters and scales arrive as f64 whatever `F` is.
#![allow(clippy::too_many_arguments)]

use super::Real;
use crate::optim::{bias_correction, StepScalars, UpdateKernel, UpdateRule};
use crate::IGNORE_INDEX;

/// out [b,T,C] = wte [V,C] [inp [b,T]] + wpe [T,C]
pub fn encoder_forward<F: Real>(out: &mut [F], inp: &[u32], wte: &[F], wpe: &[F], b: usize, t: usize, c: usize) {
    for bt in 0..b * t {
        let (tok, pos) = (inp[bt] as usize, bt % t);
        for i in 0..c {
            out[bt * c + i] = wte[tok * c + i] + wpe[pos * c + i];
        }
    }
}

/// dwte [V,C] += scattered dout [b,T,C]; dwpe [T,C] += Σ_b dout
pub fn encoder_backward<F: Real>(
    dwte: &mut [F],
    dwpe: &mut [F],
    dout: &[F],
    inp: &[u32],
    b: usize,
    t: usize,
    c: usize,
) {
    for bt in 0..b * t {
        let (tok, pos) = (inp[bt] as usize, bt % t);
        for i in 0..c {
            dwte[tok * c + i] += dout[bt * c + i];
            dwpe[pos * c + i] += dout[bt * c + i];
        }
    }
}

/// out [N,C], mean [N], rstd [N] = LayerNorm(inp [N,C]; weight [C], bias [C]); eps 1e-5, biased variance
pub fn layernorm_forward<F: Real>(
    out: &mut [F],
    mean: &mut [F],
    rstd: &mut [F],
    inp: &[F],
    weight: &[F],
    bias: &[F],
    n: usize,
    c: usize,
) {
    let cf = F::of(c as f64);
    for r in 0..n {
        let x = &inp[r * c..(r + 1) * c];
        let m = x.iter().sum::<F>() / cf;
        let var = x.iter().map(|&v| (v - m) * (v - m)).sum::<F>() / cf;
        let rs = F::one() / (var + F::of(1e-5)).sqrt();
        for i in 0..c {
            out[r * c + i] = (x[i] - m) * rs * weight[i] + bias[i];
        }
        mean[r] = m;
        rstd[r] = rs;
    }
}

/// dinp [N,C], dweight [C], dbias [C] += LayerNorm backward of dout [N,C]
pub fn layernorm_backward<F: Real>(
    dinp: &mut [F],
    dweight: &mut [F],
    dbias: &mut [F],
    dout: &[F],
    inp: &[F],
    weight: &[F],
    mean: &[F],
    rstd: &[F],
    n: usize,
    c: usize,
) {
    let cf = F::of(c as f64);
    for r in 0..n {
        let norm = |i: usize| (inp[r * c + i] - mean[r]) * rstd[r];
        let dnorm = |i: usize| weight[i] * dout[r * c + i];
        let dnorm_mean = (0..c).map(dnorm).sum::<F>() / cf;
        let dnorm_norm_mean = (0..c).map(|i| dnorm(i) * norm(i)).sum::<F>() / cf;
        for i in 0..c {
            dbias[i] += dout[r * c + i];
            dweight[i] += norm(i) * dout[r * c + i];
            dinp[r * c + i] += (dnorm(i) - dnorm_mean - norm(i) * dnorm_norm_mean) * rstd[r];
        }
    }
}

/// out [N,OC] = inp [N,C] · weightᵀ (weight [OC,C]) + bias [OC]
pub fn matmul_forward<F: Real>(
    out: &mut [F],
    inp: &[F],
    weight: &[F],
    bias: Option<&[F]>,
    n: usize,
    c: usize,
    oc: usize,
) {
    for r in 0..n {
        let x = &inp[r * c..(r + 1) * c];
        for o in 0..oc {
            let w = &weight[o * c..(o + 1) * c];
            let dot: F = x.iter().zip(w).map(|(&a, &b)| a * b).sum();
            out[r * oc + o] = dot + bias.map_or(F::zero(), |b| b[o]);
        }
    }
}

/// out [N,OC] = residual [N,OC] + (inp [N,C] · weightᵀ + bias [OC]), the
/// GPU's projection with the residual add as its epilogue.
pub fn matmul_forward_residual<F: Real>(
    out: &mut [F],
    residual: &[F],
    inp: &[F],
    weight: &[F],
    bias: Option<&[F]>,
    n: usize,
    c: usize,
    oc: usize,
) {
    let mut projected = vec![F::zero(); n * oc];
    matmul_forward(&mut projected, inp, weight, bias, n, c, oc);
    residual_forward(out, residual, &projected);
}

/// out [N,OC] = GELU(pre), pre [N,OC] = inp [N,C] · weightᵀ + bias [OC], the
/// GPU's MLP Linear with GELU as its epilogue.
pub fn matmul_forward_gelu<F: Real>(
    out: &mut [F],
    pre: &mut [F],
    inp: &[F],
    weight: &[F],
    bias: Option<&[F]>,
    n: usize,
    c: usize,
    oc: usize,
) {
    matmul_forward(pre, inp, weight, bias, n, c, oc);
    gelu_forward(out, pre);
}

/// dinp [N,C] += dout [N,OC] · weight [OC,C]; dweight [OC,C] += doutᵀ · inp; dbias [OC] += Σ_rows dout.
/// A frozen weight (LoRA) passes no `dweight` and gets no gradient.
pub fn matmul_backward<F: Real>(
    dinp: &mut [F],
    mut dweight: Option<&mut [F]>,
    dbias: Option<&mut [F]>,
    dout: &[F],
    inp: &[F],
    weight: &[F],
    n: usize,
    c: usize,
    oc: usize,
) {
    for r in 0..n {
        for o in 0..oc {
            let d = dout[r * oc + o];
            for i in 0..c {
                dinp[r * c + i] += d * weight[o * c + i];
                if let Some(dw) = dweight.as_deref_mut() {
                    dw[o * c + i] += d * inp[r * c + i];
                }
            }
        }
    }
    if let Some(dbias) = dbias {
        for r in 0..n {
            for o in 0..oc {
                dbias[o] += dout[r * oc + o];
            }
        }
    }
}

/// LoRA forward, unmerged: out [N,OC] += scale · (inp [N,C] · aᵀ) · bᵀ with
/// a [R,C], b [OC,R]; `out` already holds the frozen layer's output. (The GPU
/// merges instead, `lora_merge`; this is the form the merge is checked against.)
pub fn lora_forward<F: Real>(
    out: &mut [F],
    inp: &[F],
    a: &[F],
    b: &[F],
    scale: f64,
    n: usize,
    c: usize,
    oc: usize,
    r: usize,
) {
    let scale = F::of(scale);
    let mut h = vec![F::zero(); n * r];
    matmul_forward(&mut h, inp, a, None, n, c, r);
    for row in 0..n {
        for o in 0..oc {
            let up: F = (0..r).map(|k| h[row * r + k] * b[o * r + k]).sum();
            out[row * oc + o] += scale * up;
        }
    }
}

/// LoRA merge: w [OC,C] += scale · b [OC,R] · a [R,C].
pub fn lora_merge<F: Real>(w: &mut [F], a: &[F], b: &[F], scale: f64, oc: usize, c: usize, r: usize) {
    let scale = F::of(scale);
    for o in 0..oc {
        for i in 0..c {
            let delta: F = (0..r).map(|k| b[o * r + k] * a[k * c + i]).sum();
            w[o * c + i] += scale * delta;
        }
    }
}

/// LoRA backward of dout [N,OC] through the adapter (a [R,C], b [OC,R]) of a
/// Linear with input inp [N,C]: h = inp·aᵀ, dh = scale·dout·b [N,R];
/// db [OC,R] += scale·doutᵀ·h; da [R,C] += dhᵀ·inp; dinp [N,C] += dh·a (left
/// out when `None`: a merged weight already carries it). The frozen weight
/// gets no gradient.
pub fn lora_backward<F: Real>(
    dinp: Option<&mut [F]>,
    da: &mut [F],
    db: &mut [F],
    dout: &[F],
    inp: &[F],
    a: &[F],
    b: &[F],
    scale: f64,
    n: usize,
    c: usize,
    oc: usize,
    r: usize,
) {
    let mut h = vec![F::zero(); n * r];
    matmul_forward(&mut h, inp, a, None, n, c, r);
    let scaled: Vec<F> = dout.iter().map(|&d| F::of(scale) * d).collect();
    let mut dh = vec![F::zero(); n * r];
    matmul_backward(&mut dh, Some(db), None, &scaled, &h, b, n, r, oc);
    let mut unused = Vec::new();
    let dinp = match dinp {
        Some(d) => d,
        None => {
            unused.resize(n * c, F::zero());
            &mut unused[..]
        }
    };
    matmul_backward(dinp, Some(da), None, &dh, inp, a, n, c, r);
}

/// out [b,T,C], att [b,NH,T,T] = causal self-attention over qkv [b,T,3C]; scale 1/sqrt(C/NH)
pub fn attention_forward<F: Real>(out: &mut [F], att: &mut [F], qkv: &[F], b: usize, t: usize, c: usize, nh: usize) {
    let hs = c / nh;
    let scale = F::one() / F::of(hs as f64).sqrt();
    let at = |bi: usize, ti: usize, part: usize, h: usize| (bi * t + ti) * 3 * c + part * c + h * hs;
    let mut exps = Vec::with_capacity(t);
    for bi in 0..b {
        for h in 0..nh {
            for ti in 0..t {
                let row = ((bi * nh + h) * t + ti) * t;
                let q = &qkv[at(bi, ti, 0, h)..][..hs];
                exps.clear();
                exps.extend((0..=ti).map(|t2| F::dot(q, &qkv[at(bi, t2, 1, h)..][..hs]) * scale));
                let max = exps.iter().fold(F::neg_infinity(), |m, &s| m.max(s));
                for e in exps.iter_mut() {
                    *e = (*e - max).exp();
                }
                let sum: F = exps.iter().sum();
                for t2 in 0..t {
                    att[row + t2] = if t2 <= ti { exps[t2] / sum } else { F::zero() };
                }
                let o = &mut out[(bi * t + ti) * c + h * hs..][..hs];
                o.fill(F::zero());
                for t2 in 0..=ti {
                    axpy(o, att[row + t2], &qkv[at(bi, t2, 2, h)..][..hs]);
                }
            }
        }
    }
}

/// dqkv [b,T,3C] += attention backward of dout [b,T,C], given qkv and att from forward
pub fn attention_backward<F: Real>(
    dqkv: &mut [F],
    dout: &[F],
    qkv: &[F],
    att: &[F],
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = F::one() / F::of(hs as f64).sqrt();
    let at = |bi: usize, ti: usize, part: usize, h: usize| (bi * t + ti) * 3 * c + part * c + h * hs;
    let mut datt = Vec::with_capacity(t);
    for bi in 0..b {
        for h in 0..nh {
            for ti in 0..t {
                let att_row = &att[((bi * nh + h) * t + ti) * t..][..=ti];
                let dout_t = &dout[(bi * t + ti) * c + h * hs..][..hs];
                // out = Σ att·v: gradients of att (datt) and of v
                datt.clear();
                for (t2, &a) in att_row.iter().enumerate() {
                    let v = at(bi, t2, 2, h);
                    datt.push(F::dot(dout_t, &qkv[v..][..hs]));
                    axpy(&mut dqkv[v..][..hs], a, dout_t);
                }
                // softmax backward, then the score q·k·scale
                let dot: F = att_row.iter().zip(&datt).map(|(&a, &d)| a * d).sum();
                let q = at(bi, ti, 0, h);
                for (t2, (&a, &d)) in att_row.iter().zip(&datt).enumerate() {
                    let dpre = a * (d - dot) * scale;
                    let k = at(bi, t2, 1, h);
                    axpy(&mut dqkv[q..][..hs], dpre, &qkv[k..][..hs]);
                    axpy(&mut dqkv[k..][..hs], dpre, &qkv[q..][..hs]);
                }
            }
        }
    }
}

/// y += a·x, element by element (each in the order the loops around it give)
fn axpy<F: Real>(y: &mut [F], a: F, x: &[F]) {
    for (y, &x) in y.iter_mut().zip(x) {
        *y += a * x;
    }
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// out [n] = GELU(inp), tanh form
pub fn gelu_forward<F: Real>(out: &mut [F], inp: &[F]) {
    let (half, k, cube) = (F::of(0.5), F::of(SQRT_2_OVER_PI), F::of(0.044715));
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = half * x * (F::one() + (k * (x + cube * x * x * x)).gelu_tanh());
    }
}

/// dinp [n] += GELU'(inp) · dout
pub fn gelu_backward<F: Real>(dinp: &mut [F], inp: &[F], dout: &[F]) {
    let (half, k, cube) = (F::of(0.5), F::of(SQRT_2_OVER_PI), F::of(0.044715));
    for ((d, &x), &g) in dinp.iter_mut().zip(inp).zip(dout) {
        let th = (k * (x + cube * x * x * x)).gelu_tanh();
        let sech2 = F::one() - th * th;
        let local = half * (F::one() + th) + half * x * sech2 * k * (F::one() + F::of(3.0) * cube * x * x);
        *d += local * g;
    }
}

/// out [n] = inp1 + inp2
pub fn residual_forward<F: Real>(out: &mut [F], inp1: &[F], inp2: &[F]) {
    for ((o, &a), &b) in out.iter_mut().zip(inp1).zip(inp2) {
        *o = a + b;
    }
}

/// dinp1, dinp2 [n] += dout. The model's backward (`CpuModel`, as the GPU's)
/// does not call it: the residual stream's gradient dresidual passes unchanged
/// to both branches, whose backward adds into it in place.
pub fn residual_backward<F: Real>(dinp1: &mut [F], dinp2: &mut [F], dout: &[F]) {
    for ((a, b), &d) in dinp1.iter_mut().zip(dinp2.iter_mut()).zip(dout) {
        *a += d;
        *b += d;
    }
}

/// losses [N], dlogits [N,V] (written, not accumulated) from logits [N,V] and
/// targets [N]: loss = −log softmax[target]; dlogits = (softmax − onehot) · dlogits_scale.
/// Targets equal to IGNORE_INDEX (padding) give zero loss and zero gradient.
pub fn crossentropy_forward_backward<F: Real>(
    losses: &mut [F],
    dlogits: &mut [F],
    logits: &[F],
    targets: &[u32],
    dlogits_scale: f64,
    n: usize,
    v: usize,
) {
    let scale = F::of(dlogits_scale);
    for r in 0..n {
        let row = &logits[r * v..(r + 1) * v];
        let drow = &mut dlogits[r * v..(r + 1) * v];
        let tgt = targets[r];
        if tgt == IGNORE_INDEX || tgt as usize >= v {
            losses[r] = F::zero();
            drow.fill(F::zero());
            continue;
        }
        let max = row.iter().fold(F::neg_infinity(), |m, &x| m.max(x));
        let sum: F = row.iter().map(|&x| (x - max).exp()).sum();
        losses[r] = sum.ln() + max - row[tgt as usize];
        for (j, d) in drow.iter_mut().enumerate() {
            let p = (row[j] - max).exp() / sum;
            *d = (p - if j == tgt as usize { F::one() } else { F::zero() }) * scale;
        }
    }
}

/// The token drawn from one row of logits [V]: the argmax when
/// `inv_temperature` is 0, else the inverse-CDF pick at `u` in [0, 1) from
/// softmax(logits · inv_temperature), falling back to the argmax if rounding
/// leaves the scan short of `u`.
pub fn pick_token<F: Real>(logits: &[F], inv_temperature: f64, u: f64) -> usize {
    let best = (1..logits.len()).fold(0, |best, j| if logits[j] > logits[best] { j } else { best });
    if inv_temperature <= 0.0 {
        return best;
    }
    let (top, inv_temperature) = (logits[best].as_f64(), inv_temperature);
    let weight = |x: F| ((x.as_f64() - top) * inv_temperature).exp();
    let total: f64 = logits.iter().map(|&x| weight(x)).sum();
    let mut rest = u * total;
    for (j, &x) in logits.iter().enumerate() {
        rest -= weight(x);
        if rest <= 0.0 {
            return j;
        }
    }
    best
}

/// state [2] = (tokens in the window, tokens picked so far); window [T];
/// picked [K]. Picks from row state[0]-1 of logits [T,V] with draws [1+K]
/// (1/temperature, then one uniform per token), appends to `picked` and to
/// the window, sliding it left by one once it holds T tokens.
pub fn sample_next_token<F: Real>(
    state: &mut [u32; 2],
    window: &mut [u32],
    picked: &mut [u32],
    logits: &[F],
    draws: &[f64],
    t: usize,
    v: usize,
) {
    let (len, k) = (state[0] as usize, state[1] as usize);
    let pick = pick_token(&logits[(len - 1) * v..len * v], draws[0], draws[1 + k]) as u32;
    picked[k] = pick;
    state[1] += 1;
    if len < t {
        window[len] = pick;
        state[0] += 1;
    } else {
        window.copy_within(1..t, 0);
        window[t - 1] = pick;
    }
}

/// One optimizer step of `rule` with this step's numbers on the trainable
/// values: the CPU side of the update the GPU records in `gpu::run::step`.
/// `moment2` is unused by SGD; `grad_scale` is the clipping factor.
pub fn update<F: Real>(
    values: &mut [F],
    grads: &[F],
    moment1: &mut [F],
    moment2: &mut [F],
    rule: &UpdateRule,
    at: &StepScalars,
    decay_end: usize,
    grad_scale: f64,
) {
    let (lr, wd) = (at.lr as f64, rule.weight_decay);
    match rule.kernel {
        UpdateKernel::Sgd { momentum } => sgd_update(values, grads, moment1, lr, momentum, wd, decay_end, grad_scale),
        UpdateKernel::Adam { beta1, beta2, eps } => {
            let corrections = [at.bias_correction1, at.bias_correction2];
            adamw_update_corrected(
                values,
                grads,
                moment1,
                moment2,
                lr,
                beta1,
                beta2,
                eps,
                wd,
                corrections,
                decay_end,
                grad_scale,
            )
        }
    }
}

/// AdamW over a flat buffer; decay applies to [0, decay_end); `step` is 1-based;
/// `grad_scale` is the clipping factor.
pub fn adamw_update<F: Real>(
    params: &mut [F],
    grads: &[F],
    m: &mut [F],
    v: &mut [F],
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    step: u32,
    decay_end: usize,
    grad_scale: f64,
) {
    let corrections = [bias_correction(beta1, step as u64), bias_correction(beta2, step as u64)];
    adamw_update_corrected(params, grads, m, v, lr, beta1, beta2, eps, weight_decay, corrections, decay_end, grad_scale)
}

/// `adamw_update` given the step's bias corrections [1 − β1^t, 1 − β2^t]
/// rather than t (a run computes them once per step, `StepScalars`).
pub fn adamw_update_corrected<F: Real>(
    params: &mut [F],
    grads: &[F],
    m: &mut [F],
    v: &mut [F],
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    [bc1, bc2]: [f64; 2],
    decay_end: usize,
    grad_scale: f64,
) {
    let (bc1, bc2) = (F::of(bc1), F::of(bc2));
    let (lr, eps, grad_scale) = (F::of(lr), F::of(eps), F::of(grad_scale));
    let (b1, b2, rest1, rest2) = (F::of(beta1), F::of(beta2), F::of(1.0 - beta1), F::of(1.0 - beta2));
    for i in 0..params.len() {
        let g = grads[i] * grad_scale;
        m[i] = b1 * m[i] + rest1 * g;
        v[i] = b2 * v[i] + rest2 * g * g;
        let decay = if i < decay_end { F::of(weight_decay) } else { F::zero() };
        params[i] -= lr * ((m[i] / bc1) / ((v[i] / bc2).sqrt() + eps) + decay * params[i]);
    }
}

/// SGD with heavy-ball momentum and L2 weight decay on [0, decay_end); momentum 0 is plain SGD.
pub fn sgd_update<F: Real>(
    params: &mut [F],
    grads: &[F],
    velocity: &mut [F],
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    decay_end: usize,
    grad_scale: f64,
) {
    let (lr, momentum, weight_decay, grad_scale) = (F::of(lr), F::of(momentum), F::of(weight_decay), F::of(grad_scale));
    for i in 0..params.len() {
        let g = grads[i] * grad_scale + if i < decay_end { weight_decay * params[i] } else { F::zero() };
        velocity[i] = momentum * velocity[i] + g;
        params[i] -= lr * velocity[i];
    }
}

/// RMSProp: mean_square = α·ms + (1−α)·g²; params −= lr·g / (sqrt(ms) + eps)
pub fn rmsprop_update<F: Real>(
    params: &mut [F],
    grads: &[F],
    mean_square: &mut [F],
    lr: f64,
    alpha: f64,
    eps: f64,
    grad_scale: f64,
) {
    let (lr, a, rest, eps, grad_scale) = (F::of(lr), F::of(alpha), F::of(1.0 - alpha), F::of(eps), F::of(grad_scale));
    for i in 0..params.len() {
        let g = grads[i] * grad_scale;
        mean_square[i] = a * mean_square[i] + rest * g * g;
        params[i] -= lr * g / (mean_square[i].sqrt() + eps);
    }
}

/// Σ (a − b)²: squared L2 distance between two weight vectors, summed in f64
pub fn squared_distance<F: Real>(a: &[F], b: &[F]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x.as_f64() - y.as_f64()).map(|d| d * d).sum()
}

/// sqrt(Σ g²), summed in f64
pub fn grad_norm<F: Real>(grads: &[F]) -> f64 {
    grads.iter().map(|&g| g.as_f64() * g.as_f64()).sum::<f64>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    const B: usize = 2;
    const T: usize = 5;
    const C: usize = 6;
    const NH: usize = 2;
    const V: usize = 7;

    fn randn(rng: &mut Rng, n: usize, scale: f64) -> Vec<f64> {
        (0..n).map(|_| rng.normal() * scale).collect()
    }

    fn dot(a: &[f64], b: &[f64]) -> f64 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    fn minus(a: &[f64], b: &[f64]) -> Vec<f64> {
        a.iter().zip(b).map(|(x, y)| x - y).collect()
    }

    /// Central differences of `f` at `x` against the analytic gradient `grad`.
    fn check_fd(name: &str, x: &[f64], grad: &[f64], f: impl Fn(&[f64]) -> f64) {
        assert_eq!(x.len(), grad.len(), "{name}");
        let eps = 1e-5;
        let mut xp = x.to_vec();
        for i in 0..x.len() {
            xp[i] = x[i] + eps;
            let up = f(&xp);
            xp[i] = x[i] - eps;
            let down = f(&xp);
            xp[i] = x[i];
            let numeric = (up - down) / (2.0 * eps);
            let abs = (grad[i] - numeric).abs();
            let rel = abs / (grad[i].abs() + numeric.abs()).max(1e-8);
            assert!(rel < 1e-6 || abs < 1e-9, "{name}[{i}]: analytic {} numeric {numeric}", grad[i]);
        }
    }

    #[test]
    fn encoder_matches_finite_differences() {
        let mut rng = Rng::new(1);
        let inp: Vec<u32> = (0..B * T).map(|_| rng.below(V) as u32).collect();
        // wpe has more rows than T, as the model's block_size usually exceeds T.
        let (wte, wpe) = (randn(&mut rng, V * C, 1.0), randn(&mut rng, (T + 2) * C, 1.0));
        let w = randn(&mut rng, B * T * C, 1.0);
        let mut out = vec![0.0; B * T * C];
        encoder_forward(&mut out, &inp, &wte, &wpe, B, T, C);
        assert_eq!(out[C + 2], wte[inp[1] as usize * C + 2] + wpe[C + 2]);

        // Start from non-zero gradients: backward must add to them.
        let (prior_wte, prior_wpe) = (randn(&mut rng, V * C, 1.0), randn(&mut rng, (T + 2) * C, 1.0));
        let (mut dwte, mut dwpe) = (prior_wte.clone(), prior_wpe.clone());
        encoder_backward(&mut dwte, &mut dwpe, &w, &inp, B, T, C);
        let loss = |wte: &[f64], wpe: &[f64]| {
            let mut out = vec![0.0; B * T * C];
            encoder_forward(&mut out, &inp, wte, wpe, B, T, C);
            dot(&out, &w)
        };
        check_fd("dwte", &wte, &minus(&dwte, &prior_wte), |x| loss(x, &wpe));
        check_fd("dwpe", &wpe, &minus(&dwpe, &prior_wpe), |x| loss(&wte, x));
    }

    #[test]
    fn layernorm_matches_finite_differences() {
        let mut rng = Rng::new(2);
        let n = B * T;
        let inp = randn(&mut rng, n * C, 2.0);
        let weight: Vec<f64> = (0..C).map(|_| 1.0 + 0.3 * rng.normal()).collect();
        let bias = randn(&mut rng, C, 0.5);
        let w = randn(&mut rng, n * C, 1.0);
        let forward = |inp: &[f64], weight: &[f64], bias: &[f64]| {
            let (mut out, mut mean, mut rstd) = (vec![0.0; n * C], vec![0.0; n], vec![0.0; n]);
            layernorm_forward(&mut out, &mut mean, &mut rstd, inp, weight, bias, n, C);
            (out, mean, rstd)
        };
        let (out, mean, rstd) = forward(&inp, &weight, &bias);
        // With unit gain and zero bias each row has mean 0 and (biased) variance ~1.
        let (plain, _, _) = forward(&inp, &[1.0; C], &[0.0; C]);
        let row = &plain[..C];
        assert!(row.iter().sum::<f64>().abs() < 1e-12);
        assert!((dot(row, row) / C as f64 - 1.0).abs() < 1e-4);
        assert_eq!(out.len(), n * C);

        let (p_inp, p_w, p_b) = (randn(&mut rng, n * C, 1.0), randn(&mut rng, C, 1.0), randn(&mut rng, C, 1.0));
        let (mut dinp, mut dweight, mut dbias) = (p_inp.clone(), p_w.clone(), p_b.clone());
        layernorm_backward(&mut dinp, &mut dweight, &mut dbias, &w, &inp, &weight, &mean, &rstd, n, C);
        check_fd("dinp", &inp, &minus(&dinp, &p_inp), |x| dot(&forward(x, &weight, &bias).0, &w));
        check_fd("dweight", &weight, &minus(&dweight, &p_w), |x| dot(&forward(&inp, x, &bias).0, &w));
        check_fd("dbias", &bias, &minus(&dbias, &p_b), |x| dot(&forward(&inp, &weight, x).0, &w));
    }

    #[test]
    fn matmul_matches_finite_differences() {
        let mut rng = Rng::new(3);
        let (n, oc) = (B * T, 5);
        let inp = randn(&mut rng, n * C, 1.0);
        let weight = randn(&mut rng, oc * C, 1.0);
        let bias = randn(&mut rng, oc, 1.0);
        let w = randn(&mut rng, n * oc, 1.0);
        let loss = |inp: &[f64], weight: &[f64], bias: Option<&[f64]>| {
            let mut out = vec![0.0; n * oc];
            matmul_forward(&mut out, inp, weight, bias, n, C, oc);
            dot(&out, &w)
        };
        let mut out = vec![0.0; n * oc];
        matmul_forward(&mut out, &inp, &weight, Some(&bias), n, C, oc);
        let expect = dot(&inp[C..2 * C], &weight[2 * C..3 * C]) + bias[2];
        assert!((out[oc + 2] - expect).abs() < 1e-12);

        let (p_inp, p_w, p_b) = (randn(&mut rng, n * C, 1.0), randn(&mut rng, oc * C, 1.0), randn(&mut rng, oc, 1.0));
        let (mut dinp, mut dweight, mut dbias) = (p_inp.clone(), p_w.clone(), p_b.clone());
        matmul_backward(&mut dinp, Some(&mut dweight), Some(&mut dbias), &w, &inp, &weight, n, C, oc);
        check_fd("dinp", &inp, &minus(&dinp, &p_inp), |x| loss(x, &weight, Some(&bias)));
        check_fd("dweight", &weight, &minus(&dweight, &p_w), |x| loss(&inp, x, Some(&bias)));
        check_fd("dbias", &bias, &minus(&dbias, &p_b), |x| loss(&inp, &weight, Some(x)));

        // Without a bias the other two gradients are unchanged.
        let (mut dinp2, mut dweight2) = (p_inp.clone(), p_w.clone());
        matmul_backward(&mut dinp2, Some(&mut dweight2), None, &w, &inp, &weight, n, C, oc);
        assert_eq!((dinp2, dweight2), (dinp, dweight));
    }

    #[test]
    fn lora_matches_finite_differences() {
        let mut rng = Rng::new(11);
        let (n, oc, r, scale) = (B * T, 5, 3, 0.75);
        let inp = randn(&mut rng, n * C, 1.0);
        let (a, b) = (randn(&mut rng, r * C, 1.0), randn(&mut rng, oc * r, 1.0));
        let base = randn(&mut rng, n * oc, 1.0);
        let w = randn(&mut rng, n * oc, 1.0);
        let forward = |inp: &[f64], a: &[f64], b: &[f64]| {
            let mut out = base.clone();
            lora_forward(&mut out, inp, a, b, scale, n, C, oc, r);
            (out, ())
        };
        // The update adds scale · (B·A) applied to each row, on top of what was there.
        let (out, ()) = forward(&inp, &a, &b);
        let ba_2_3: f64 = (0..r).map(|k| b[2 * r + k] * a[k * C + 3]).sum();
        let zero_a_out = forward(&inp, &vec![0.0; r * C], &b).0;
        assert_eq!(zero_a_out, base);
        let mut one_hot = vec![0.0; n * C];
        one_hot[C + 3] = 1.0;
        assert!((forward(&one_hot, &a, &b).0[oc + 2] - base[oc + 2] - scale * ba_2_3).abs() < 1e-12);

        let (p_inp, p_a, p_b) =
            (randn(&mut rng, n * C, 1.0), randn(&mut rng, r * C, 1.0), randn(&mut rng, oc * r, 1.0));
        let (mut dinp, mut da, mut db) = (p_inp.clone(), p_a.clone(), p_b.clone());
        lora_backward(Some(&mut dinp), &mut da, &mut db, &w, &inp, &a, &b, scale, n, C, oc, r);
        check_fd("dinp", &inp, &minus(&dinp, &p_inp), |x| dot(&forward(x, &a, &b).0, &w));
        check_fd("da", &a, &minus(&da, &p_a), |x| dot(&forward(&inp, x, &b).0, &w));
        check_fd("db", &b, &minus(&db, &p_b), |x| dot(&forward(&inp, &a, x).0, &w));
        assert!(out.iter().zip(&base).any(|(o, b)| o != b));
        // Merged, the same update is a change of weight: W + scale·B·A.
        let mut merged = randn(&mut rng, oc * C, 1.0);
        let frozen = merged.clone();
        lora_merge(&mut merged, &a, &b, scale, oc, C, r);
        let (mut via_weight, mut via_adapter) = (vec![0.0; n * oc], vec![0.0; n * oc]);
        matmul_forward(&mut via_weight, &inp, &merged, None, n, C, oc);
        matmul_forward(&mut via_adapter, &inp, &frozen, None, n, C, oc);
        lora_forward(&mut via_adapter, &inp, &a, &b, scale, n, C, oc, r);
        assert!(via_weight.iter().zip(&via_adapter).all(|(x, y)| (x - y).abs() < 1e-12));
    }

    #[test]
    fn attention_matches_finite_differences() {
        let mut rng = Rng::new(4);
        let qkv = randn(&mut rng, B * T * 3 * C, 1.0);
        let w = randn(&mut rng, B * T * C, 1.0);
        let forward = |qkv: &[f64]| {
            let (mut out, mut att) = (vec![0.0; B * T * C], vec![0.0; B * NH * T * T]);
            attention_forward(&mut out, &mut att, qkv, B, T, C, NH);
            (out, att)
        };
        let (_, att) = forward(&qkv);
        for row in 0..B * NH * T {
            let (ti, r) = (row % T, &att[row * T..(row + 1) * T]);
            assert!((r.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(r[ti + 1..].iter().all(|&p| p == 0.0), "causal mask");
            assert!(r[..=ti].iter().all(|&p| p > 0.0));
        }
        // The first position can only attend to itself, so it copies its own v.
        let (out, _) = forward(&qkv);
        assert!((out[0] - qkv[2 * C]).abs() < 1e-12);

        let prior = randn(&mut rng, B * T * 3 * C, 1.0);
        let mut dqkv = prior.clone();
        attention_backward(&mut dqkv, &w, &qkv, &att, B, T, C, NH);
        check_fd("dqkv", &qkv, &minus(&dqkv, &prior), |x| dot(&forward(x).0, &w));
    }

    #[test]
    fn gelu_matches_finite_differences() {
        let mut rng = Rng::new(5);
        let mut inp = randn(&mut rng, 40, 2.5);
        inp.extend([0.0, -6.0, 6.0]);
        let w = randn(&mut rng, inp.len(), 1.0);
        let mut out = vec![0.0; inp.len()];
        gelu_forward(&mut out, &inp);
        let n = inp.len();
        // GELU(0) = 0, and far from 0 it is ~ReLU.
        assert_eq!(out[n - 3], 0.0);
        assert!(out[n - 2].abs() < 1e-6 && (out[n - 1] - 6.0).abs() < 1e-6);
        // gelu(1), evaluated independently with Python's math module.
        let mut one = [0.0f64];
        gelu_forward(&mut one, &[1.0]);
        assert!((one[0] - 0.841_191_990_608_276_8).abs() < 1e-12);

        let prior = randn(&mut rng, inp.len(), 1.0);
        let mut dinp = prior.clone();
        gelu_backward(&mut dinp, &inp, &w);
        check_fd("dinp", &inp, &minus(&dinp, &prior), |x| {
            let mut out = vec![0.0; x.len()];
            gelu_forward(&mut out, x);
            dot(&out, &w)
        });
    }

    #[test]
    fn residual_adds_and_accumulates() {
        let mut out = [0.0; 3];
        residual_forward(&mut out, &[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]);
        assert_eq!(out, [11.0, 22.0, 33.0]);
        let (mut d1, mut d2) = ([1.0, 1.0, 1.0], [0.0, -1.0, 0.0]);
        residual_backward(&mut d1, &mut d2, &[0.5, 0.25, 2.0]);
        assert_eq!((d1, d2), ([1.5, 1.25, 3.0], [0.5, -0.75, 2.0]));
    }

    #[test]
    fn crossentropy_matches_finite_differences_and_ignores_padding() {
        let mut rng = Rng::new(6);
        let n = B * T;
        let logits = randn(&mut rng, n * V, 2.0);
        let mut targets: Vec<u32> = (0..n).map(|_| rng.below(V) as u32).collect();
        targets[3] = IGNORE_INDEX;
        targets[n - 1] = IGNORE_INDEX;
        let scale = 0.37;
        let run = |logits: &[f64]| {
            let (mut losses, mut dlogits) = (vec![9.0; n], vec![9.0; n * V]);
            crossentropy_forward_backward(&mut losses, &mut dlogits, logits, &targets, scale, n, V);
            (losses, dlogits)
        };
        let (losses, dlogits) = run(&logits);
        for r in [3, n - 1] {
            assert_eq!(losses[r], 0.0);
            assert!(dlogits[r * V..(r + 1) * V].iter().all(|&d| d == 0.0), "row {r} must be written as zeros");
        }
        let row = &logits[..V];
        let expect = -(row[targets[0] as usize].exp() / row.iter().map(|x| x.exp()).sum::<f64>()).ln();
        assert!((losses[0] - expect).abs() < 1e-12);
        // Each real row's gradient sums to zero (softmax minus a one-hot).
        assert!(dlogits[..V].iter().sum::<f64>().abs() < 1e-12);
        check_fd("dlogits", &logits, &dlogits, |x| scale * run(x).0.iter().sum::<f64>());
    }

    #[test]
    fn crossentropy_survives_huge_logits() {
        let (mut losses, mut dlogits) = ([0.0f64; 1], [0.0f64; 3]);
        crossentropy_forward_backward(&mut losses, &mut dlogits, &[1000.0, 0.0, -1000.0], &[2], 1.0, 1, 3);
        assert!((losses[0] - 2000.0).abs() < 1e-9);
        assert!((dlogits[0] - 1.0).abs() < 1e-12 && (dlogits[2] + 1.0).abs() < 1e-12);
    }

    #[test]
    fn adamw_with_constant_gradient_moves_by_lr() {
        // With a constant gradient the bias-corrected moments are exactly g and g²
        // at every step, so each step is lr * (g/(|g|+eps) + decay * p).
        let (lr, b1, b2, eps, wd, s) = (0.1, 0.9, 0.95, 1e-8, 0.5, 2.0);
        let grads = [0.1, -0.3, 0.2, 0.0];
        let mut params = [1.0, -2.0, 0.5, 0.7];
        let (mut m, mut v) = ([0.0; 4], [0.0; 4]);
        let mut expect = params;
        for step in 1..=3 {
            adamw_update(&mut params, &grads, &mut m, &mut v, lr, b1, b2, eps, wd, step, 2, s);
            for i in 0..4 {
                let g = grads[i] * s;
                let decay = if i < 2 { wd } else { 0.0 };
                expect[i] -= lr * (g / (g.abs() + eps) + decay * expect[i]);
            }
            for i in 0..4 {
                assert!((params[i] - expect[i]).abs() < 1e-12, "step {step} [{i}]: {} vs {}", params[i], expect[i]);
            }
        }
        assert_eq!(params[3], 0.7, "no gradient and no decay past decay_end");
    }

    #[test]
    fn sgd_momentum_and_coupled_decay() {
        let (lr, mom, wd, s) = (0.1, 0.9, 0.01, 0.5);
        let grads = [2.0, 2.0];
        let mut params = [1.0f64, 1.0];
        let mut vel = [0.0; 2];
        sgd_update(&mut params, &grads, &mut vel, lr, mom, wd, 1, s);
        sgd_update(&mut params, &grads, &mut vel, lr, mom, wd, 1, s);
        // By hand: decayed element 0 and undecayed element 1.
        let v1 = 1.0 + 0.01 * 1.0;
        let p1 = 1.0 - 0.1 * v1;
        let v2 = 0.9 * v1 + 1.0 + 0.01 * p1;
        assert!((params[0] - (p1 - 0.1 * v2)).abs() < 1e-15);
        assert!((params[1] - (1.0 - 0.1 * 1.0 - 0.1 * 1.9)).abs() < 1e-15);

        let mut plain = [1.0f64];
        sgd_update(&mut plain, &[3.0], &mut [0.0], 0.1, 0.0, 0.0, 0, 1.0);
        assert!((plain[0] - 0.7).abs() < 1e-15);
    }

    #[test]
    fn rmsprop_first_step() {
        let (mut params, mut ms) = ([1.0f64, 1.0], [0.0, 0.0]);
        rmsprop_update(&mut params, &[0.5, 0.0], &mut ms, 0.01, 0.99, 1e-8, 2.0);
        // ms = 0.01 * 1² so sqrt(ms) = 0.1, update = 0.01 * 1 / 0.1.
        assert!((ms[0] - 0.01).abs() < 1e-15 && ms[1] == 0.0);
        assert!((params[0] - (1.0 - 0.01 / (0.1 + 1e-8))).abs() < 1e-12);
        assert_eq!(params[1], 1.0);
    }

    #[test]
    fn grad_norm_is_euclidean() {
        assert_eq!(grad_norm(&[3.0, -4.0]), 5.0);
        assert_eq!(grad_norm::<f64>(&[]), 0.0);
    }
}
