// The reverse pass of the float64 model in gpt2_f64.mjs, written, like it, in
// plain JavaScript from docs/DESIGN.md §2 (not from src/cpu/ or the WGSL):
// the gradient of a loss with respect to the four Linear weights of every
// block (attn.c_attn, attn.c_proj, mlp.c_fc, mlp.c_proj), the matrices LoRA
// adapts, and from them the gradients of the adapters A and B. The forward
// pass is repeated here with what the reverse pass needs kept; the tests
// check this pass against central differences of gpt2_f64.mjs's forward.

/** The Linear weights whose gradients `sequenceGradients` returns. */
export const LINEARS = ["attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"];

// y [n, out] = x [n, in] · wᵀ + b
function linear(x, n, inDim, w, b, outDim) {
  const y = new Float64Array(n * outDim);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outDim; o++) {
      let s = b ? b[o] : 0;
      for (let j = 0; j < inDim; j++) s += x[i * inDim + j] * w[o * inDim + j];
      y[i * outDim + o] = s;
    }
  }
  return y;
}

// dx [n, in] = dy [n, out] · w, and dw [out, in] += dyᵀ · x when dw is given
function linearBack(dy, x, n, inDim, w, outDim, dw) {
  const dx = new Float64Array(n * inDim);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outDim; o++) {
      const g = dy[i * outDim + o];
      if (g === 0) continue;
      for (let j = 0; j < inDim; j++) {
        dx[i * inDim + j] += g * w[o * inDim + j];
        if (dw) dw[o * inDim + j] += g * x[i * inDim + j];
      }
    }
  }
  return dx;
}

// y = x̂·gain + bias with x̂ = (x − mean)/√(var + 1e-5), keeping x̂ and 1/√(var + 1e-5)
function layerNorm(x, n, c, gain, bias) {
  const y = new Float64Array(n * c);
  const xhat = new Float64Array(n * c);
  const inv = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let mean = 0;
    for (let j = 0; j < c; j++) mean += x[i * c + j];
    mean /= c;
    let variance = 0;
    for (let j = 0; j < c; j++) variance += (x[i * c + j] - mean) ** 2;
    variance /= c;
    inv[i] = 1 / Math.sqrt(variance + 1e-5);
    for (let j = 0; j < c; j++) {
      xhat[i * c + j] = (x[i * c + j] - mean) * inv[i];
      y[i * c + j] = xhat[i * c + j] * gain[j] + bias[j];
    }
  }
  return { y, xhat, inv };
}

// dx = (1/σ)·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)), dx̂ = dy·gain
function layerNormBack(ln, dy, n, c, gain) {
  const dx = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    let m1 = 0;
    let m2 = 0;
    for (let j = 0; j < c; j++) {
      const d = dy[i * c + j] * gain[j];
      m1 += d;
      m2 += d * ln.xhat[i * c + j];
    }
    m1 /= c;
    m2 /= c;
    for (let j = 0; j < c; j++) {
      dx[i * c + j] = ln.inv[i] * (dy[i * c + j] * gain[j] - m1 - ln.xhat[i * c + j] * m2);
    }
  }
  return dx;
}

const K = Math.sqrt(2 / Math.PI);
const gelu = (u) => 0.5 * u * (1 + Math.tanh(K * (u + 0.044715 * u ** 3)));
function geluGrad(u) {
  const th = Math.tanh(K * (u + 0.044715 * u ** 3));
  return 0.5 * (1 + th) + 0.5 * u * (1 - th * th) * K * (1 + 3 * 0.044715 * u * u);
}

/**
 * The sum of the losses of one sequence's targets (inputs s[0..n-1),
 * targets s[1..n); target j counts only when j >= prompt) and its gradient
 * with respect to every block's Linear weights: { loss, tokens, grads:
 * { "h.{l}.<module>.weight": Float64Array [out·in] } }.
 */
export function sequenceGradients(config, weights, seq, prompt = 0) {
  const { vocab_size: V, n_layer: L, n_head: H, n_embd: C } = config;
  const w = (name) => {
    if (!weights[name]) throw new Error(`no tensor ${name}`);
    return weights[name].data;
  };
  const n = seq.length - 1;
  const hs = C / H;
  const scale = 1 / Math.sqrt(hs);
  const wte = w("wte");
  const wpe = w("wpe");
  let x = new Float64Array(n * C);
  for (let t = 0; t < n; t++) for (let j = 0; j < C; j++) x[t * C + j] = wte[seq[t] * C + j] + wpe[t * C + j];

  // forward, keeping each block's activations
  const kept = [];
  for (let l = 0; l < L; l++) {
    const p = `h.${l}.`;
    const ln1 = layerNorm(x, n, C, w(p + "ln_1.weight"), w(p + "ln_1.bias"));
    const qkv = linear(ln1.y, n, C, w(p + "attn.c_attn.weight"), w(p + "attn.c_attn.bias"), 3 * C);
    const y = new Float64Array(n * C);
    const probs = []; // probs[h][t]: softmax over u = 0..t
    for (let h = 0; h < H; h++) {
      const rows = [];
      for (let t = 0; t < n; t++) {
        const s = new Float64Array(t + 1);
        for (let u = 0; u <= t; u++) {
          let dot = 0;
          for (let d = 0; d < hs; d++) dot += qkv[t * 3 * C + h * hs + d] * qkv[u * 3 * C + C + h * hs + d];
          s[u] = dot * scale;
        }
        let top = -Infinity;
        for (const v of s) top = Math.max(top, v);
        let z = 0;
        for (let u = 0; u <= t; u++) z += (s[u] = Math.exp(s[u] - top));
        for (let u = 0; u <= t; u++) s[u] /= z;
        for (let d = 0; d < hs; d++) {
          let acc = 0;
          for (let u = 0; u <= t; u++) acc += s[u] * qkv[u * 3 * C + 2 * C + h * hs + d];
          y[t * C + h * hs + d] = acc;
        }
        rows.push(s);
      }
      probs.push(rows);
    }
    const attn = linear(y, n, C, w(p + "attn.c_proj.weight"), w(p + "attn.c_proj.bias"), C);
    const x1 = x.map((v, i) => v + attn[i]);
    const ln2 = layerNorm(x1, n, C, w(p + "ln_2.weight"), w(p + "ln_2.bias"));
    const pre = linear(ln2.y, n, C, w(p + "mlp.c_fc.weight"), w(p + "mlp.c_fc.bias"), 4 * C);
    const act = pre.map(gelu);
    const mlp = linear(act, n, 4 * C, w(p + "mlp.c_proj.weight"), w(p + "mlp.c_proj.bias"), C);
    kept.push({ ln1, qkv, probs, y, ln2, pre, act });
    x = x1.map((v, i) => v + mlp[i]);
  }
  const lnf = layerNorm(x, n, C, w("ln_f.weight"), w("ln_f.bias"));
  const logits = linear(lnf.y, n, C, wte, null, V);

  // loss, and d(loss)/d(logits) = softmax − one-hot on every counted target
  let loss = 0;
  let tokens = 0;
  const dlogits = new Float64Array(n * V);
  for (let t = 0; t < n; t++) {
    if (t + 1 < prompt) continue;
    tokens++;
    const row = logits.subarray(t * V, (t + 1) * V);
    let top = -Infinity;
    for (const v of row) top = Math.max(top, v);
    let z = 0;
    for (const v of row) z += Math.exp(v - top);
    loss += Math.log(z) + top - row[seq[t + 1]];
    for (let v = 0; v < V; v++) dlogits[t * V + v] = Math.exp(row[v] - top) / z;
    dlogits[t * V + seq[t + 1]] -= 1;
  }

  // reverse: the tied head, ln_f, then the blocks from the last
  const grads = {};
  for (let l = 0; l < L; l++) {
    for (const m of LINEARS) grads[`h.${l}.${m}.weight`] = new Float64Array(w(`h.${l}.${m}.weight`).length);
  }
  let dx = layerNormBack(lnf, linearBack(dlogits, lnf.y, n, C, wte, V, null), n, C, w("ln_f.weight"));
  for (let l = L - 1; l >= 0; l--) {
    const p = `h.${l}.`;
    const { ln1, qkv, probs, y, ln2, pre, act } = kept[l];
    // x2 = x1 + c_proj(gelu(c_fc(ln_2(x1))))
    const dact = linearBack(dx, act, n, 4 * C, w(p + "mlp.c_proj.weight"), C, grads[p + "mlp.c_proj.weight"]);
    const dpre = dact.map((g, i) => g * geluGrad(pre[i]));
    const dln2 = linearBack(dpre, ln2.y, n, C, w(p + "mlp.c_fc.weight"), 4 * C, grads[p + "mlp.c_fc.weight"]);
    const back2 = layerNormBack(ln2, dln2, n, C, w(p + "ln_2.weight"));
    const dx1 = dx.map((v, i) => v + back2[i]);
    // x1 = x + c_proj(attention(c_attn(ln_1(x))))
    const dy = linearBack(dx1, y, n, C, w(p + "attn.c_proj.weight"), C, grads[p + "attn.c_proj.weight"]);
    const dqkv = new Float64Array(n * 3 * C);
    for (let h = 0; h < H; h++) {
      for (let t = 0; t < n; t++) {
        const pr = probs[h][t];
        const dp = new Float64Array(t + 1);
        let mean = 0;
        for (let u = 0; u <= t; u++) {
          let acc = 0;
          for (let d = 0; d < hs; d++) {
            const g = dy[t * C + h * hs + d];
            acc += g * qkv[u * 3 * C + 2 * C + h * hs + d];
            dqkv[u * 3 * C + 2 * C + h * hs + d] += pr[u] * g; // dv
          }
          dp[u] = acc;
          mean += pr[u] * acc;
        }
        for (let u = 0; u <= t; u++) {
          const ds = pr[u] * (dp[u] - mean) * scale;
          for (let d = 0; d < hs; d++) {
            dqkv[t * 3 * C + h * hs + d] += ds * qkv[u * 3 * C + C + h * hs + d]; // dq
            dqkv[u * 3 * C + C + h * hs + d] += ds * qkv[t * 3 * C + h * hs + d]; // dk
          }
        }
      }
    }
    const dln1 = linearBack(dqkv, ln1.y, n, C, w(p + "attn.c_attn.weight"), 3 * C, grads[p + "attn.c_attn.weight"]);
    const back1 = layerNormBack(ln1, dln1, n, C, w(p + "ln_1.weight"));
    dx = dx1.map((v, i) => v + back1[i]);
  }
  return { loss, tokens, grads };
}

/**
 * The gradient of each strategy's loss (as gpt2_f64.mjs's strategyLosses
 * defines it: full and corrected divide every target by the batch's count,
 * naive each micro-batch's by its own count and by the number of
 * micro-batches, local each rank's by its count and by the number of ranks)
 * with respect to the blocks' Linear weights: { strategy: { name: Float64Array } }.
 * Each strategy's loss is a weighted sum of the sequences' loss sums, so it
 * is the same weighted sum of their gradients.
 */
export function strategyGradients(config, weights, sequences, micro, prompts = null, ranks = 1) {
  const per = sequences.map((s, i) => sequenceGradients(config, weights, s, prompts ? prompts[i] : 0));
  const count = (from, to) => per.slice(from, to).reduce((a, r) => a + r.tokens, 0);
  const groups = sequences.length / micro;
  const perRank = groups / ranks;
  const all = count(0, sequences.length);
  const weightOf = {
    full: () => 1 / all,
    corrected: () => 1 / all,
    naive: (i) => {
      const g = Math.floor(i / micro);
      return 1 / (groups * count(g * micro, (g + 1) * micro));
    },
    local: (i) => {
      const r = Math.floor(i / (perRank * micro));
      return 1 / (ranks * count(r * perRank * micro, (r + 1) * perRank * micro));
    },
  };
  const strategies = ranks > 1 ? ["full", "naive", "local", "corrected"] : ["full", "naive", "corrected"];
  const out = {};
  for (const s of strategies) {
    const grads = {};
    for (const name of Object.keys(per[0].grads)) grads[name] = new Float64Array(per[0].grads[name].length);
    per.forEach((r, i) => {
      const c = weightOf[s](i);
      for (const [name, g] of Object.entries(r.grads)) {
        const dst = grads[name];
        for (let k = 0; k < g.length; k++) dst[k] += c * g[k];
      }
    });
    out[s] = grads;
  }
  return out;
}

/**
 * The gradients of LoRA's adapters from the gradient G [out, in] of the
 * merged weight W + s·B·A: dA = s·Bᵀ·G [r, in], dB = s·G·Aᵀ [out, r], for
 * every `<module>.lora_A` / `lora_B` pair of `adapters`.
 */
export function adapterGradients(linearGrads, adapters, scale) {
  const out = {};
  for (const name of Object.keys(adapters).filter((k) => k.endsWith(".lora_A"))) {
    const module = name.slice(0, -".lora_A".length);
    const A = adapters[name];
    const B = adapters[`${module}.lora_B`];
    const G = linearGrads[`${module}.weight`];
    const [r, inDim] = A.shape;
    const outDim = B.shape[0];
    const dA = new Float64Array(r * inDim);
    const dB = new Float64Array(outDim * r);
    for (let o = 0; o < outDim; o++) {
      for (let j = 0; j < inDim; j++) {
        const g = scale * G[o * inDim + j];
        for (let k = 0; k < r; k++) {
          dA[k * inDim + j] += B.data[o * r + k] * g;
          dB[o * r + k] += g * A.data[k * inDim + j];
        }
      }
    }
    out[name] = dA;
    out[`${module}.lora_B`] = dB;
  }
  return out;
}
