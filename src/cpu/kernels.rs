//! The CPU twin of every GPU kernel, in f64: the reference the kernels are
//! tested against, and (later) the fallback when there is no WebGPU.
//!
//! Legend: B batch, T time, C channels, OC output channels, V vocabulary,
//! NH heads, N = B*T rows. Arguments go outputs, inputs, dimensions (llm.c
//! order). Backward functions accumulate (`+=`) into their gradients.
//! Clarity over speed: plain loops in the order the maths reads.
#![allow(clippy::too_many_arguments)]

use crate::IGNORE_INDEX;

/// out [B,T,C] = wte [V,C] [inp [B,T]] + wpe [T,C]
pub fn encoder_forward(out: &mut [f64], inp: &[u32], wte: &[f64], wpe: &[f64], b: usize, t: usize, c: usize) {
    for bt in 0..b * t {
        let (tok, pos) = (inp[bt] as usize, bt % t);
        for i in 0..c {
            out[bt * c + i] = wte[tok * c + i] + wpe[pos * c + i];
        }
    }
}

/// dwte [V,C] += scattered dout [B,T,C]; dwpe [T,C] += Σ_b dout
pub fn encoder_backward(dwte: &mut [f64], dwpe: &mut [f64], dout: &[f64], inp: &[u32], b: usize, t: usize, c: usize) {
    for bt in 0..b * t {
        let (tok, pos) = (inp[bt] as usize, bt % t);
        for i in 0..c {
            dwte[tok * c + i] += dout[bt * c + i];
            dwpe[pos * c + i] += dout[bt * c + i];
        }
    }
}

/// out [N,C], mean [N], rstd [N] = LayerNorm(inp [N,C]; weight [C], bias [C]); eps 1e-5, biased variance
pub fn layernorm_forward(
    out: &mut [f64],
    mean: &mut [f64],
    rstd: &mut [f64],
    inp: &[f64],
    weight: &[f64],
    bias: &[f64],
    n: usize,
    c: usize,
) {
    for r in 0..n {
        let x = &inp[r * c..(r + 1) * c];
        let m = x.iter().sum::<f64>() / c as f64;
        let var = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / c as f64;
        let rs = 1.0 / (var + 1e-5).sqrt();
        for i in 0..c {
            out[r * c + i] = (x[i] - m) * rs * weight[i] + bias[i];
        }
        mean[r] = m;
        rstd[r] = rs;
    }
}

/// dinp [N,C], dweight [C], dbias [C] += LayerNorm backward of dout [N,C]
pub fn layernorm_backward(
    dinp: &mut [f64],
    dweight: &mut [f64],
    dbias: &mut [f64],
    dout: &[f64],
    inp: &[f64],
    weight: &[f64],
    mean: &[f64],
    rstd: &[f64],
    n: usize,
    c: usize,
) {
    for r in 0..n {
        let norm = |i: usize| (inp[r * c + i] - mean[r]) * rstd[r];
        let dnorm = |i: usize| weight[i] * dout[r * c + i];
        let dnorm_mean = (0..c).map(dnorm).sum::<f64>() / c as f64;
        let dnorm_norm_mean = (0..c).map(|i| dnorm(i) * norm(i)).sum::<f64>() / c as f64;
        for i in 0..c {
            dbias[i] += dout[r * c + i];
            dweight[i] += norm(i) * dout[r * c + i];
            dinp[r * c + i] += (dnorm(i) - dnorm_mean - norm(i) * dnorm_norm_mean) * rstd[r];
        }
    }
}

/// out [N,OC] = inp [N,C] · weightᵀ (weight [OC,C]) + bias [OC]
pub fn matmul_forward(
    out: &mut [f64],
    inp: &[f64],
    weight: &[f64],
    bias: Option<&[f64]>,
    n: usize,
    c: usize,
    oc: usize,
) {
    for r in 0..n {
        let x = &inp[r * c..(r + 1) * c];
        for o in 0..oc {
            let w = &weight[o * c..(o + 1) * c];
            let dot: f64 = x.iter().zip(w).map(|(a, b)| a * b).sum();
            out[r * oc + o] = dot + bias.map_or(0.0, |b| b[o]);
        }
    }
}

/// dinp [N,C] += dout [N,OC] · weight [OC,C]; dweight [OC,C] += doutᵀ · inp; dbias [OC] += Σ_rows dout
pub fn matmul_backward(
    dinp: &mut [f64],
    dweight: &mut [f64],
    dbias: Option<&mut [f64]>,
    dout: &[f64],
    inp: &[f64],
    weight: &[f64],
    n: usize,
    c: usize,
    oc: usize,
) {
    for r in 0..n {
        for o in 0..oc {
            let d = dout[r * oc + o];
            for i in 0..c {
                dinp[r * c + i] += d * weight[o * c + i];
                dweight[o * c + i] += d * inp[r * c + i];
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

/// out [B,T,C], att [B,NH,T,T] = causal self-attention over qkv [B,T,3C]; scale 1/sqrt(C/NH)
pub fn attention_forward(out: &mut [f64], att: &mut [f64], qkv: &[f64], b: usize, t: usize, c: usize, nh: usize) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f64).sqrt();
    let at = |bi: usize, ti: usize, part: usize, h: usize| (bi * t + ti) * 3 * c + part * c + h * hs;
    for bi in 0..b {
        for h in 0..nh {
            for ti in 0..t {
                let row = ((bi * nh + h) * t + ti) * t;
                let q = at(bi, ti, 0, h);
                let scores: Vec<f64> = (0..=ti)
                    .map(|t2| {
                        let k = at(bi, t2, 1, h);
                        (0..hs).map(|i| qkv[q + i] * qkv[k + i]).sum::<f64>() * scale
                    })
                    .collect();
                let max = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let exps: Vec<f64> = scores.iter().map(|s| (s - max).exp()).collect();
                let sum: f64 = exps.iter().sum();
                for t2 in 0..t {
                    att[row + t2] = if t2 <= ti { exps[t2] / sum } else { 0.0 };
                }
                for i in 0..hs {
                    out[(bi * t + ti) * c + h * hs + i] =
                        (0..=ti).map(|t2| att[row + t2] * qkv[at(bi, t2, 2, h) + i]).sum();
                }
            }
        }
    }
}

/// dqkv [B,T,3C] += attention backward of dout [B,T,C], given qkv and att from forward
pub fn attention_backward(
    dqkv: &mut [f64],
    dout: &[f64],
    qkv: &[f64],
    att: &[f64],
    b: usize,
    t: usize,
    c: usize,
    nh: usize,
) {
    let hs = c / nh;
    let scale = 1.0 / (hs as f64).sqrt();
    let at = |bi: usize, ti: usize, part: usize, h: usize| (bi * t + ti) * 3 * c + part * c + h * hs;
    for bi in 0..b {
        for h in 0..nh {
            for ti in 0..t {
                let row = ((bi * nh + h) * t + ti) * t;
                let o = (bi * t + ti) * c + h * hs;
                // out = Σ att·v: gradients of att (datt) and of v
                let mut datt = vec![0.0; ti + 1];
                for t2 in 0..=ti {
                    let v = at(bi, t2, 2, h);
                    for i in 0..hs {
                        datt[t2] += dout[o + i] * qkv[v + i];
                        dqkv[v + i] += att[row + t2] * dout[o + i];
                    }
                }
                // softmax backward, then the score q·k·scale
                let dot: f64 = (0..=ti).map(|t2| att[row + t2] * datt[t2]).sum();
                let q = at(bi, ti, 0, h);
                for t2 in 0..=ti {
                    let dpre = att[row + t2] * (datt[t2] - dot) * scale;
                    let k = at(bi, t2, 1, h);
                    for i in 0..hs {
                        dqkv[q + i] += dpre * qkv[k + i];
                        dqkv[k + i] += dpre * qkv[q + i];
                    }
                }
            }
        }
    }
}

const SQRT_2_OVER_PI: f64 = 0.797_884_560_802_865_4;

/// out [n] = GELU(inp), tanh form
pub fn gelu_forward(out: &mut [f64], inp: &[f64]) {
    for (o, &x) in out.iter_mut().zip(inp) {
        *o = 0.5 * x * (1.0 + (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh());
    }
}

/// dinp [n] += GELU'(inp) · dout
pub fn gelu_backward(dinp: &mut [f64], inp: &[f64], dout: &[f64]) {
    for ((d, &x), &g) in dinp.iter_mut().zip(inp).zip(dout) {
        let th = (SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)).tanh();
        let sech2 = 1.0 - th * th;
        let local = 0.5 * (1.0 + th) + 0.5 * x * sech2 * SQRT_2_OVER_PI * (1.0 + 3.0 * 0.044715 * x * x);
        *d += local * g;
    }
}

/// out [n] = inp1 + inp2
pub fn residual_forward(out: &mut [f64], inp1: &[f64], inp2: &[f64]) {
    for ((o, a), b) in out.iter_mut().zip(inp1).zip(inp2) {
        *o = a + b;
    }
}

/// dinp1, dinp2 [n] += dout
pub fn residual_backward(dinp1: &mut [f64], dinp2: &mut [f64], dout: &[f64]) {
    for ((a, b), d) in dinp1.iter_mut().zip(dinp2.iter_mut()).zip(dout) {
        *a += d;
        *b += d;
    }
}

/// losses [N], dlogits [N,V] (written, not accumulated) from logits [N,V] and
/// targets [N]: loss = −log softmax[target]; dlogits = (softmax − onehot) · dlogits_scale.
/// Targets equal to IGNORE_INDEX (padding) give zero loss and zero gradient.
pub fn crossentropy_forward_backward(
    losses: &mut [f64],
    dlogits: &mut [f64],
    logits: &[f64],
    targets: &[u32],
    dlogits_scale: f64,
    n: usize,
    v: usize,
) {
    for r in 0..n {
        let row = &logits[r * v..(r + 1) * v];
        let drow = &mut dlogits[r * v..(r + 1) * v];
        let tgt = targets[r];
        if tgt == IGNORE_INDEX || tgt as usize >= v {
            losses[r] = 0.0;
            drow.fill(0.0);
            continue;
        }
        let max = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let sum: f64 = row.iter().map(|x| (x - max).exp()).sum();
        losses[r] = sum.ln() + max - row[tgt as usize];
        for (j, d) in drow.iter_mut().enumerate() {
            let p = (row[j] - max).exp() / sum;
            *d = (p - if j == tgt as usize { 1.0 } else { 0.0 }) * dlogits_scale;
        }
    }
}

/// AdamW over a flat buffer; decay applies to [0, decay_end); `step` is 1-based;
/// `grad_scale` is the clipping factor.
pub fn adamw_update(
    params: &mut [f64],
    grads: &[f64],
    m: &mut [f64],
    v: &mut [f64],
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    step: u32,
    decay_end: usize,
    grad_scale: f64,
) {
    let bc1 = 1.0 - beta1.powi(step as i32);
    let bc2 = 1.0 - beta2.powi(step as i32);
    for i in 0..params.len() {
        let g = grads[i] * grad_scale;
        m[i] = beta1 * m[i] + (1.0 - beta1) * g;
        v[i] = beta2 * v[i] + (1.0 - beta2) * g * g;
        let decay = if i < decay_end { weight_decay } else { 0.0 };
        params[i] -= lr * ((m[i] / bc1) / ((v[i] / bc2).sqrt() + eps) + decay * params[i]);
    }
}

/// SGD with heavy-ball momentum and L2 weight decay on [0, decay_end); momentum 0 is plain SGD.
pub fn sgd_update(
    params: &mut [f64],
    grads: &[f64],
    velocity: &mut [f64],
    lr: f64,
    momentum: f64,
    weight_decay: f64,
    decay_end: usize,
    grad_scale: f64,
) {
    for i in 0..params.len() {
        let g = grads[i] * grad_scale + if i < decay_end { weight_decay * params[i] } else { 0.0 };
        velocity[i] = momentum * velocity[i] + g;
        params[i] -= lr * velocity[i];
    }
}

/// RMSProp: mean_square = α·ms + (1−α)·g²; params −= lr·g / (sqrt(ms) + eps)
pub fn rmsprop_update(
    params: &mut [f64],
    grads: &[f64],
    mean_square: &mut [f64],
    lr: f64,
    alpha: f64,
    eps: f64,
    grad_scale: f64,
) {
    for i in 0..params.len() {
        let g = grads[i] * grad_scale;
        mean_square[i] = alpha * mean_square[i] + (1.0 - alpha) * g * g;
        params[i] -= lr * g / (mean_square[i].sqrt() + eps);
    }
}

/// Σ (a − b)²: squared L2 distance between two weight vectors
pub fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// sqrt(Σ g²)
pub fn grad_norm(grads: &[f64]) -> f64 {
    grads.iter().map(|g| g * g).sum::<f64>().sqrt()
}
