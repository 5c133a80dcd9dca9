// A second, independent float64 implementation of docs/DESIGN.md §2, written
// in plain JavaScript straight from the text (not from src/cpu/), so that a
// misreading shared by the WGSL kernels and their Rust twins cannot hide.
// Only the forward pass: gradients are checked by central differences (and,
// for LoRA's adapters, by the reverse pass in backward_f64.mjs, itself
// checked by central differences of this forward pass).
import { readFileSync } from "node:fs";

function header(path) {
  const bytes = readFileSync(path);
  const headerLen = Number(bytes.readBigUInt64LE(0));
  return { bytes, headerLen, header: JSON.parse(bytes.subarray(8, 8 + headerLen).toString("utf8")) };
}

/** The string metadata of a safetensors file ({} when it has none). */
export function readSafetensorsMetadata(path) {
  return header(path).header.__metadata__ ?? {};
}

/** Tensors of a safetensors file as { name: { shape, data: Float64Array } }. */
export function readSafetensors(path) {
  const { bytes, headerLen, header: entries } = header(path);
  const tensors = {};
  for (const [name, info] of Object.entries(entries)) {
    if (name === "__metadata__") continue;
    if (info.dtype !== "F32") throw new Error(`${path}: ${name} is ${info.dtype}, expected F32`);
    const [start, end] = info.data_offsets.map((o) => bytes.byteOffset + 8 + headerLen + o);
    tensors[name] = { shape: info.shape, data: Float64Array.from(new Float32Array(bytes.buffer.slice(start, end))) };
  }
  return tensors;
}

// y [n, out] = x [n, in] · wᵀ + b, with w [out, in] as nn.Linear stores it
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

function layerNorm(x, n, c, gain, bias) {
  const y = new Float64Array(n * c);
  for (let i = 0; i < n; i++) {
    const row = x.subarray(i * c, (i + 1) * c);
    const mean = row.reduce((a, v) => a + v, 0) / c;
    const variance = row.reduce((a, v) => a + (v - mean) ** 2, 0) / c;
    const inv = 1 / Math.sqrt(variance + 1e-5);
    for (let j = 0; j < c; j++) y[i * c + j] = (row[j] - mean) * inv * gain[j] + bias[j];
  }
  return y;
}

const gelu = (u) => 0.5 * u * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (u + 0.044715 * u ** 3)));

/** Per-position losses of one sequence: inputs s[0..n-1), targets s[1..n). */
export function sequenceLosses(config, weights, seq) {
  const { vocab_size: V, n_layer: L, n_head: H, n_embd: C } = config;
  const w = (name) => {
    if (!weights[name]) throw new Error(`model.safetensors has no tensor ${name}`);
    return weights[name].data;
  };
  const n = seq.length - 1;
  const hs = C / H;
  const wte = w("wte");
  const wpe = w("wpe");
  const x = new Float64Array(n * C);
  for (let t = 0; t < n; t++) for (let j = 0; j < C; j++) x[t * C + j] = wte[seq[t] * C + j] + wpe[t * C + j];
  for (let l = 0; l < L; l++) {
    const p = `h.${l}.`;
    const a = layerNorm(x, n, C, w(p + "ln_1.weight"), w(p + "ln_1.bias"));
    const qkv = linear(a, n, C, w(p + "attn.c_attn.weight"), w(p + "attn.c_attn.bias"), 3 * C);
    const y = new Float64Array(n * C);
    for (let h = 0; h < H; h++) {
      const q = (t, d) => qkv[t * 3 * C + h * hs + d];
      const k = (t, d) => qkv[t * 3 * C + C + h * hs + d];
      const v = (t, d) => qkv[t * 3 * C + 2 * C + h * hs + d];
      for (let t = 0; t < n; t++) {
        const scores = [];
        for (let u = 0; u <= t; u++) {
          let s = 0;
          for (let d = 0; d < hs; d++) s += q(t, d) * k(u, d);
          scores.push(s / Math.sqrt(hs));
        }
        const top = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - top));
        const z = e.reduce((acc, v) => acc + v, 0);
        for (let d = 0; d < hs; d++) {
          let s = 0;
          for (let u = 0; u <= t; u++) s += (e[u] / z) * v(u, d);
          y[t * C + h * hs + d] = s;
        }
      }
    }
    const attn = linear(y, n, C, w(p + "attn.c_proj.weight"), w(p + "attn.c_proj.bias"), C);
    attn.forEach((v, i) => (x[i] += v));
    const b = layerNorm(x, n, C, w(p + "ln_2.weight"), w(p + "ln_2.bias"));
    const hidden = linear(b, n, C, w(p + "mlp.c_fc.weight"), w(p + "mlp.c_fc.bias"), 4 * C).map(gelu);
    const mlp = linear(hidden, n, 4 * C, w(p + "mlp.c_proj.weight"), w(p + "mlp.c_proj.bias"), C);
    mlp.forEach((v, i) => (x[i] += v));
  }
  const logits = linear(layerNorm(x, n, C, w("ln_f.weight"), w("ln_f.bias")), n, C, wte, null, V);
  const losses = [];
  for (let t = 0; t < n; t++) {
    const row = logits.subarray(t * V, (t + 1) * V);
    const top = Math.max(...row);
    const z = row.reduce((acc, v) => acc + Math.exp(v - top), 0);
    losses.push(Math.log(z) + top - row[seq[t + 1]]);
  }
  return losses;
}

/**
 * The loss each strategy's trainer reports for a batch cut into micro-batches
 * of `micro` sequences, spread over `ranks` data-parallel ranks in order.
 * Token j of sequence i is a target only when j >= prompts[i] (a masked
 * fine-tuning prompt; 0 = no mask). naive averages micro-batch means over all
 * micro-batches; local averages each rank's token mean over ranks; corrected
 * and full divide every token by the whole batch's count.
 */
export function strategyLosses(config, weights, sequences, micro, prompts = null, ranks = 1) {
  const perSequence = sequences.map((s, i) => {
    const p = prompts ? prompts[i] : 0;
    // losses[t] is the loss of target token t+1
    return sequenceLosses(config, weights, s).filter((_, t) => t + 1 >= p);
  });
  const sum = (xs) => xs.reduce((a, v) => a + v, 0);
  const all = perSequence.flat();
  const full = sum(all) / all.length;
  const groups = sequences.length / micro;
  const perRank = groups / ranks;
  let naive = 0;
  let local = 0;
  for (let g = 0; g < groups; g++) {
    const tokens = perSequence.slice(g * micro, (g + 1) * micro).flat();
    naive += sum(tokens) / tokens.length / groups;
  }
  for (let r = 0; r < ranks; r++) {
    const tokens = perSequence.slice(r * perRank * micro, (r + 1) * perRank * micro).flat();
    local += sum(tokens) / tokens.length / ranks;
  }
  const out = { full, naive, corrected: full };
  if (ranks > 1) out.local = local;
  return out;
}

/**
 * The weights a LoRA run computes with (docs/DESIGN.md §2: an adapted Linear
 * computes x·(W + s·B·A)ᵀ, s = α/r): a copy of `weights` with
 * `<module>.weight` += scale · B·A for every `<module>.lora_A` / `lora_B` pair
 * of `adapters` (A [r, in], B [out, r], W [out, in]).
 */
export function mergeAdapters(weights, adapters, scale) {
  const merged = Object.fromEntries(Object.entries(weights).map(([k, v]) => [k, { shape: v.shape, data: Float64Array.from(v.data) }]));
  for (const name of Object.keys(adapters).filter((k) => k.endsWith(".lora_A"))) {
    const module = name.slice(0, -".lora_A".length);
    const A = adapters[name];
    const B = adapters[`${module}.lora_B`];
    const W = merged[`${module}.weight`];
    if (!B || !W) throw new Error(`${name}: no ${module}.lora_B or ${module}.weight`);
    const [r, inDim] = A.shape;
    const [outDim, rB] = B.shape;
    if (rB !== r || W.shape[0] !== outDim || W.shape[1] !== inDim) throw new Error(`${module}: shapes do not fit`);
    for (let o = 0; o < outDim; o++) {
      for (let j = 0; j < inDim; j++) {
        let s = 0;
        for (let k = 0; k < r; k++) s += B.data[o * r + k] * A.data[k * inDim + j];
        W.data[o * inDim + j] += scale * s;
      }
    }
  }
  return merged;
}
