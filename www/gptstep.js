// One whole training step of gradlab's GPT written with jax-js (`valueAndGrad`
// + `jit`), and the driver that runs it beside gradlab's own step (issue 10):
// the same initial weights (read from the gradlab lab as safetensors), the same
// batch (rebuilt from `lab.tokenWeights()`), the same AdamW with the same
// clipping, so both print the same losses; then each is timed over many steps.
// Nothing here touches the DOM: the benchmark page (bench.js) draws the table,
// and a script can call `compareGptStep` with the two libraries it loaded.
//
// The model is docs/DESIGN.md §2 (src/cpu/model.rs is the ground truth):
// x = wte[idx] + wpe[pos]; per block x += attn(ln_1(x)), x += mlp(ln_2(x));
// ln_f; logits = x · wteᵀ (tied). LayerNorm eps 1e-5 with the biased variance,
// GELU in its tanh form, causal attention scaled by 1/sqrt(C/H), no dropout.
// Linear weights are [out, in] as in nn.Linear: y = x·Wᵀ + b.
//
// Legend: B sequences, T positions, N = B·T rows, C channels, H heads,
// hs = C/H, V vocabulary, L layers.

import { weightsFile } from "./files.js";
import { timeInTurns } from "./timing.js";

// sqrt(2/π), the GELU tanh form's constant (gradlab's SQRT_2_OVER_PI)
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

// The tensors of a safetensors file (8-byte little-endian header length, JSON
// header, raw data), as {name: {shape, data: Float32Array}}; F32 only, which
// is what files.js `weightsFile` writes.
export function parseSafetensors(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = Number(view.getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + headerLength)));
  const start = 8 + headerLength;
  const tensors = {};
  for (const [name, info] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    if (info.dtype !== "F32") throw new Error(`safetensors: ${name} is ${info.dtype}, expected F32`);
    const [from, to] = info.data_offsets;
    // copied: a tensor's offset need not be a multiple of 4
    const data = new Float32Array(bytes.slice(start + from, start + to).buffer);
    tensors[name] = { shape: info.shape, data };
  }
  return tensors;
}

// The last lab step's batch as jax-js inputs, rebuilt from `lab.tokenWeights()`
// the way gradlab's MicroBatch::from_prompted builds it: sequence s fills
// positions 0..n-2 of its row with inputs s[j] and targets s[j+1], the rest is
// padding (input 0, weight 0); token j+1 is a target only when j+1 ≥ its
// prompt length. Every target weighs 1/N (the full batch's loss Σℓ/N), in f32
// as gradlab's dlogits scale. Checked against the weights gradlab reports for
// its full-batch run, so a batch that was not rebuilt exactly is refused.
export function batchFromTokenWeights(tokenWeights, t) {
  const { sequences, prompt_lengths: prompts } = tokenWeights;
  const full = tokenWeights.runs.find((r) => r.strategy === "full");
  const b = sequences.length;
  const inputs = new Int32Array(b * t); // [B,T]
  const targets = new Int32Array(b * t); // [B,T]
  const mask = new Uint8Array(b * t); // [B,T]
  let count = 0;
  sequences.forEach((s, i) => {
    if (s.length - 1 > t) throw new Error(`batch: sequence ${i} has ${s.length} tokens, more than T + 1 = ${t + 1}`);
    for (let j = 0; j + 1 < s.length; j++) {
      inputs[i * t + j] = s[j];
      targets[i * t + j] = s[j + 1];
      const target = j + 1 >= prompts[i];
      if (target !== full.weights[i][j] > 0) throw new Error(`batch: token ${j + 1} of sequence ${i} is ${target ? "" : "not "}a target here, but ${target ? "not " : ""}in gradlab's step`);
      if (target) {
        mask[i * t + j] = 1;
        count++;
      }
    }
  });
  const scale = Math.fround(1 / count);
  const weights = Float32Array.from(mask, (m) => m * scale); // [B,T]
  return { b, t, inputs, targets, weights, count };
}

// The GPT's whole training step (loss, gradient, clipping, AdamW), jitted,
// for `model` ({vocab_size, block_size, n_layer, n_head, n_embd}, as
// `lab.config().model`) at T = `t` positions and `opt` (gradlab's optimizer
// settings: kind, lr, beta1, beta2, eps, weight_decay, max_grad_norm).
export function gptTrainStep(jax, model, opt, t) {
  const np = jax.numpy;
  const { vocab_size: V, n_layer: L, n_head: H, n_embd: C } = model;
  const hs = C / H;

  // y [N,OC] = x [N,IC] · Wᵀ [IC,OC] + b [OC]
  const linear = (x, w, b) => np.matmul(x, w.transpose()).add(b);

  // [N,C] → [N,C], over the channels
  function layerNorm(x, w, b) {
    const xc = x.ref.sub(x.mean(-1, { keepdims: true })); // [N,C]
    const variance = np.square(xc.ref).mean(-1, { keepdims: true }); // [N,1], biased
    return xc.div(np.sqrt(variance.add(1e-5))).mul(w).add(b);
  }

  // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
  function gelu(x) {
    const cube = x.ref.mul(x.ref).mul(x.ref);
    const inner = x.ref.add(cube.mul(0.044715)).mul(SQRT_2_OVER_PI);
    return x.mul(0.5).mul(np.tanh(inner).add(1));
  }

  // [N,C] → [N,C]: causal self-attention of the B sequences' T positions
  function attention(x, p, i, b) {
    const qkv = linear(x, p[`h.${i}.attn.c_attn.weight`], p[`h.${i}.attn.c_attn.bias`]); // [N,3C]
    const [q, k, v] = np.split(qkv, 3, 1).map((a) => a.reshape([b, t, H, hs])); // [B,T,H,hs] each
    const y = jax.nn.dotProductAttention(q, k, v, { isCausal: true, scale: 1 / Math.sqrt(hs) }); // [B,T,H,hs]
    return linear(y.reshape([b * t, C]), p[`h.${i}.attn.c_proj.weight`], p[`h.${i}.attn.c_proj.bias`]);
  }

  // Σ_t w_t ℓ_t over the batch: with w = 1/N on every target, the full
  // batch's token-mean loss; padding and prompts weigh 0.
  function loss(p, inputs, targets, weights) {
    const [b] = inputs.shape;
    const n = b * t;
    // The gather's gradient is a scatter, which jax-js's jit runs only on a
    // materialised input, not on a view: so the embedding sum is formed at
    // [N,C] (no reshape after the gather), where its cotangent is a sum.
    const tok = np.take(p.wte.ref, inputs.reshape([n]), 0); // [N,C]
    const pos = np.broadcastTo(p.wpe.slice([0, t]), [b, t, C]).reshape([n, C]); // [N,C] from rows 0..T-1 of [block_size,C]
    let x = tok.add(pos); // [N,C]
    for (let i = 0; i < L; i++) {
      const a = layerNorm(x.ref, p[`h.${i}.ln_1.weight`], p[`h.${i}.ln_1.bias`]);
      x = x.add(attention(a, p, i, b));
      const m = layerNorm(x.ref, p[`h.${i}.ln_2.weight`], p[`h.${i}.ln_2.bias`]);
      const f = gelu(linear(m, p[`h.${i}.mlp.c_fc.weight`], p[`h.${i}.mlp.c_fc.bias`])); // [N,4C]
      x = x.add(linear(f, p[`h.${i}.mlp.c_proj.weight`], p[`h.${i}.mlp.c_proj.bias`]));
    }
    const logits = np.matmul(layerNorm(x, p["ln_f.weight"], p["ln_f.bias"]), p.wte.transpose()); // [N,V]
    const lse = jax.nn.logsumexp(logits.ref, -1); // [N]
    const picked = logits.mul(jax.nn.oneHot(targets.reshape([n]), V)).sum(-1); // [N]
    return lse.sub(picked).mul(weights.reshape([n])).sum();
  }

  if (opt.kind !== "adamw" && opt.kind !== "adam") throw new Error(`the jax-js step implements Adam and AdamW, not ${opt.kind}`);
  // Adam is AdamW without decay (optim.rs effective_weight_decay)
  const decay = opt.kind === "adamw" ? opt.weight_decay : 0;
  const [b1, b2] = [opt.beta1, opt.beta2];
  const [rest1, rest2] = [Math.fround(1 - b1), Math.fround(1 - b2)];

  // One whole step: loss and gradient at the weights it starts from, global
  // norm clipping (‖g‖ > max_grad_norm scales g by max/‖g‖; 0 = off), then
  // AdamW with decoupled decay:
  //   m = β1·m + (1−β1)·g, v = β2·v + (1−β2)·g²,
  //   w −= lr·((m/bc1) / (sqrt(v/bc2) + eps) + wd·w)
  // with the per-step lr, bc1 = 1−β1^t, bc2 = 1−β2^t as 0-d arrays, so the
  // step compiles once.
  function step(params, m, v, inputs, targets, weights, lr, bc1, bc2) {
    const [value, grads] = jax.valueAndGrad(loss)(jax.tree.ref(params), inputs, targets, weights);
    const names = Object.keys(params);
    let squares = null;
    for (const name of names) {
      const s = np.square(grads[name].ref).sum();
      squares = squares === null ? s : squares.add(s);
    }
    const norm = np.sqrt(squares);
    // min(1, max/‖g‖) is 1 unless ‖g‖ > max, as gradlab's grad_scale
    const clip = opt.max_grad_norm > 0 ? np.minimum(np.divide(opt.max_grad_norm, norm), 1) : null;
    if (clip === null) norm.dispose();
    const out = { params: {}, m: {}, v: {} };
    for (const name of names) {
      const g = clip === null ? grads[name] : grads[name].mul(clip.ref);
      const m1 = m[name].mul(b1).add(g.ref.mul(rest1));
      const v1 = v[name].mul(b2).add(np.square(g).mul(rest2));
      let update = m1.ref.div(bc1.ref).div(np.sqrt(v1.ref.div(bc2.ref)).add(opt.eps));
      const w = params[name];
      // decay on the matrices only (wte, wpe, Linear weights), as gradlab's
      // layout applies it: not on biases or LayerNorm gains
      if (decay > 0 && w.ndim === 2) update = update.add(w.ref.mul(decay));
      out.params[name] = w.sub(update.mul(lr.ref));
      out.m[name] = m1;
      out.v[name] = v1;
    }
    clip?.dispose();
    [lr, bc1, bc2].forEach((a) => a.dispose());
    return { loss: value, ...out };
  }

  return jax.jit(step);
}

// A jax-js training state on `device`: the weights of `tensors` (parsed
// safetensors) and zeroed Adam moments, with the jitted step, the step count,
// and the per-step scalars gradlab's optimizer uses (lr, constant, and the
// bias corrections, each rounded to f32 as `step_scalars` does).
export function jaxTrainer(jax, device, model, opt, t, tensors) {
  if (opt.schedule && opt.schedule.kind !== "constant") throw new Error("the jax-js step implements the constant schedule only");
  const np = jax.numpy;
  const trainStep = gptTrainStep(jax, model, opt, t);
  const put = (data, shape, dtype = np.float32) => np.array(data, { shape, dtype, device });
  const params = {};
  const m = {};
  const v = {};
  for (const [name, { shape, data }] of Object.entries(tensors)) {
    params[name] = put(data, shape);
    m[name] = np.zeros(shape, { device });
    v[name] = np.zeros(shape, { device });
  }
  let state = { params, m, v };
  let steps = 0;
  const scalar = (x) => np.full([], Math.fround(x), { device });
  const upload = (batch) => [put(batch.inputs, [batch.b, batch.t], np.int32), put(batch.targets, [batch.b, batch.t], np.int32), put(batch.weights, [batch.b, batch.t])];
  return {
    // Loss on `batch` at the weights the step starts from (not yet forced),
    // after which the weights are updated.
    step(batch) {
      steps++;
      const [lr, bc1, bc2] = [opt.lr, 1 - opt.beta1 ** steps, 1 - opt.beta2 ** steps].map(scalar);
      const out = trainStep(state.params, state.m, state.v, ...upload(batch), lr, bc1, bc2);
      state = { params: out.params, m: out.m, v: out.v };
      return out.loss;
    },
    // Resolves when every step asked for has run.
    ready: () => jax.blockUntilReady(state),
    dispose() {
      jax.tree.dispose(state);
      trainStep.dispose();
    },
  };
}

const relative = (a, b) => Math.abs(a - b) / Math.max(Math.abs(b), 1e-30);

// The pairs compared: gradlab's WebGPU lab against jax-js on WebGPU, and
// gradlab's f32 CPU backend (wasm SIMD, one thread) against jax-js's wasm
// backend (one thread where the page is not cross-origin isolated).
export const BACKENDS = [
  { name: "WebGPU", gradlab: "webgpu", jax: "webgpu" },
  { name: "CPU", gradlab: "cpu", jax: "wasm" },
];

// Lab settings for a lab of one run. A lab always holds the full-batch run
// and, in its three-way form, naive and corrected beside it; simulated ranks
// drop every run whose micro-batches they cannot share, and a single
// micro-batch (b = B) cannot be shared by two ranks, so with ranks = 2 only
// the full batch, one device whatever R is (accum::scales), remains. An odd
// batch cannot be split over two ranks: that lab keeps its three runs.
export function oneRunSettings({ preset = "nano", batch = 8, seqLen = 64, seed = 1, corpus = "kjv", maskPrompt = false, optimizer = {} } = {}) {
  return {
    preset,
    batch,
    micro_batch: batch,
    ranks: batch % 2 === 0 ? 2 : 1,
    seq_len: seqLen,
    seed,
    corpus,
    mask_prompt: maskPrompt,
    optimizer: { kind: "adamw", lr: 3e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weight_decay: 0.1, max_grad_norm: 1, ...optimizer },
  };
}

// Both libraries on each backend pair: the losses of the first `checkSteps`
// steps (step 1 from the same initial weights on the same batch; later steps
// after the same updates), then the time per whole step, timed in turns
// (timing.js): `batches` rounds, each a batch of K steps of gradlab then of
// jax-js (K chosen so a batch lasts about `seconds`), each batch ended by a
// readback; the ratio is the median over rounds of the ratio within a round.
// `gl`: the loaded gradlab module (wasm.js loadGradlab); `jax`: jax-js after
// init; `devices`: what init started. Resolves to {settings, rows}; a row
// whose backend is missing says why in `skipped`.
export async function compareGptStep({ gl, jax, devices, settings, backends = BACKENDS, checkSteps = 3, batches = 5, seconds = 0.5, maxK = 100, onStatus = () => {} }) {
  const rows = [];
  for (const pair of backends) {
    const row = { backend: pair.name, gradlabBackend: pair.gradlab, jaxDevice: pair.jax };
    rows.push(row);
    if (!devices.includes(pair.jax)) {
      row.skipped = `jax-js has no ${pair.jax} device here`;
      continue;
    }
    onStatus(`${pair.name}: building gradlab's lab…`);
    const lab = await gl.WebLab.create(settings, pair.gradlab, undefined);
    let trainer;
    const previous = jax.defaultDevice();
    try {
      if (pair.gradlab === "webgpu" && !lab.onGpu()) {
        row.skipped = `gradlab has no WebGPU here: ${lab.gpuProblem() ?? "it fell back to the CPU"}`;
        continue;
      }
      row.gradlab = { label: lab.backend(), runs: lab.runs().length };
      const { model, seq_len: t, optimizer } = lab.config();
      const tensors = parseSafetensors(await weightsFile(lab, 0));
      // constants a trace makes (the causal mask, literals) land on this device
      jax.defaultDevice(pair.jax);
      trainer = jaxTrainer(jax, pair.jax, model, optimizer, t, tensors);

      // the same steps on both, batch by batch
      onStatus(`${pair.name}: the first ${checkSteps} steps on both…`);
      const used = [];
      row.losses = { gradlab: [], jax: [] };
      for (let s = 0; s < checkSteps; s++) {
        const metrics = [...(await lab.step(1)), ...(await lab.flush())];
        const ours = metrics.find((x) => x.run === 0 && x.step === s + 1);
        const batch = batchFromTokenWeights(lab.tokenWeights(), t);
        used.push(batch);
        const loss = trainer.step(batch);
        const [theirs] = await loss.data();
        row.losses.gradlab.push(ours.true_loss);
        row.losses.jax.push(theirs);
      }
      row.tokens = used.map((b) => b.count);
      row.relDiff = row.losses.jax.map((x, i) => relative(x, row.losses.gradlab[i]));

      // timed: gradlab steps on fresh batches from its sampler (drawing and
      // cutting them is part of its step); jax-js gets one of the batches
      // above each step, uploaded as part of the step (the cost of a step does
      // not depend on the tokens: every batch is [B,T])
      onStatus(`${pair.name}: timing…`);
      let next = 0;
      const gradlabSteps = async (k) => {
        for (let i = 0; i < k; i++) await lab.step(1);
        await lab.flush();
      };
      const jaxSteps = async (k) => {
        let loss;
        for (let i = 0; i < k; i++) {
          loss?.dispose();
          loss = trainer.step(used[next++ % used.length]);
        }
        await trainer.ready();
        await loss.data();
      };
      const timed = await timeInTurns(
        { gradlab: gradlabSteps, jax: jaxSteps },
        { rounds: batches, seconds, maxCount: maxK, onRound: (i) => onStatus(`${pair.name}: timing, round ${i + 1} of ${batches}…`) },
      );
      row.k = { gradlab: timed.gradlab.count, jax: timed.jax.count };
      row.samples = { gradlab: timed.gradlab.samples.map((s) => s * 1e3), jax: timed.jax.samples.map((s) => s * 1e3) };
      row.gradlabMs = timed.gradlab.seconds * 1e3;
      row.jaxMs = timed.jax.seconds * 1e3;
      // the median over rounds of jax-js's time over gradlab's in the same round
      row.ratio = timed.jax.overFirst;
    } catch (e) {
      row.error = e?.message ?? String(e);
    } finally {
      jax.defaultDevice(previous);
      trainer?.dispose();
      lab.free();
    }
  }
  return { settings, rows };
}
