// The benchmark page: gradlab's matmul kernel against TensorFlow.js's and
// jax-js's WebGPU backends, and gradlab's f32 CPU kernel (wasm SIMD, this
// thread) against jax-js's wasm backend (one thread: this page is not
// cross-origin isolated), on the same operands, timed side by side in one tab;
// and one whole training step of the GPT against the same step written with
// jax-js (gptstep.js), on WebGPU and on the CPU. Results go to the tables and
// to `window.gradlabBench` (for scripts/bench-browser.mjs), the training
// step's to `window.gradlabBench.gptStep`.
import { browserAdapterName, ensureCorpus, loadGradlab, loadGradlabFull, loadPresets } from "./wasm.js";
import { el, errorText } from "./ui.js";
import { compareGptStep, oneRunSettings } from "./gptstep.js";
import { timeInTurns } from "./timing.js";

// Sequences per batch the shapes assume: M = B·T = 16 × the preset's block size.
const SEQUENCES = 16;

// Per choice of the page, (layer, M, K, N) for a Linear forward
// out[M,N] = inp[M,K] · Wᵀ + b, from the model presets (wasm `presets()`,
// smallest first): "tiny", a quick check on one sequence of the smallest
// model, then every preset at B = 16; the smallest also times the logits
// (tied wte), the larger ones leave it out to keep the run short; and
// square multiplies, the usual yardstick.
function shapeSets(presets) {
  const linears = (p, m, logits) => {
    const c = p.n_embd;
    return [
      ["attn.c_attn", m, c, 3 * c],
      ["mlp.c_fc", m, c, 4 * c],
      ["mlp.c_proj", m, 4 * c, c],
      ...(logits ? [["logits (tied wte)", m, c, p.vocab_size]] : []),
    ];
  };
  const [smallest] = presets;
  const [cAttn, , cProj] = linears(smallest, smallest.block_size, false);
  return {
    tiny: { label: "tiny (a quick check)", shapes: [cAttn, cProj] },
    square: { label: "square 256, 512, 1024 (slow on a software adapter)", shapes: [256, 512, 1024].map((s) => [`square ${s}`, s, s, s]) },
    ...Object.fromEntries(
      presets.map((p, i) => {
        const m = SEQUENCES * p.block_size;
        return [p.name, { label: `${p.name} (B·T = ${m}, C = ${p.n_embd})`, shapes: linears(p, m, i === 0) }];
      }),
    ),
  };
}

const $ = (id) => document.getElementById(id);
const status = (text) => ($("bench-status").textContent = text);

function randomArray(n, seed) {
  // xorshift, so both libraries get identical, reproducible operands
  let s = seed >>> 0 || 1;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5;
    out[i] = ((s >>> 0) / 4294967296 - 0.5) * 2;
  }
  return out;
}

async function loadTf() {
  const tf = await import("../vendor/tf-core.fesm.min.js");
  await import("../vendor/tf-backend-webgpu.fesm.min.js");
  if (!(await tf.setBackend("webgpu"))) throw new Error("TensorFlow.js could not start its WebGPU backend");
  await tf.ready();
  return tf;
}

// jax-js and the devices it started, loaded once for every run of the page.
let jaxLoad;
function loadJax() {
  jaxLoad ??= (async () => {
    const jax = await import("../vendor/jax/index.js");
    const devices = await jax.init("webgpu", "wasm");
    return { jax, devices };
  })();
  return jaxLoad;
}

// A jax-js multiply on `device`, jit-compiled, for timeInTurns: `once`
// forces each batch (blockUntilReady) and reads the last result back;
// `output()` is one result; `dispose()` frees the operands.
function jaxMatmul({ jax }, device, [x, w, b], m, k, n) {
  const np = jax.numpy;
  const put = (data, shape) => np.array(data, { shape, device });
  const [X, W, B] = [put(x, [m, k]), put(w, [n, k]), put(b, [n])];
  const linear = jax.jit((x, w, b) => np.add(np.matmul(x, np.transpose(w)), b));
  const multiply = () => linear(X.ref, W.ref, B.ref);
  return {
    once: async (times) => {
      const outs = [];
      for (let i = 0; i < times; i++) outs.push(multiply());
      await jax.blockUntilReady(outs);
      const last = outs.pop();
      outs.forEach((o) => o.dispose());
      await last.data();
    },
    output: () => multiply().data(),
    dispose: () => {
      [X, W, B].forEach((a) => a.dispose());
      linear.dispose();
    },
  };
}

// max |got − want| / max |want|
function relDiff(got, want) {
  let diff = 0, scale = 0;
  for (let i = 0; i < want.length; i++) {
    diff = Math.max(diff, Math.abs(want[i] - got[i]));
    scale = Math.max(scale, Math.abs(want[i]));
  }
  return diff / (scale || 1);
}

const row = (cells) => el("tr", {}, ...cells.map((c) => el("td", { text: c })));

// One benchmark at a time: each would slow the other's clock.
function busy(yes) {
  $("bench-run").disabled = yes;
  $("step-run").disabled = yes;
}

async function run(size) {
  const shapes = SHAPES[size]?.shapes;
  if (!shapes) throw new Error(`shapes "${size}" is not one of ${Object.keys(SHAPES).join(", ")}`);
  busy(true);
  $("bench-rows").replaceChildren();
  $("bench-jax-rows").replaceChildren();
  const results = [];
  window.gradlabBench = { gptStep: window.gradlabBench?.gptStep, done: false, results };
  try {
    if (!navigator.gpu) throw new Error("This browser has no WebGPU (navigator.gpu is missing), so there is nothing to time.");
    status("Starting WebGPU…");
    // WebBench is in the module's full build only (wasm.js)
    const gl = await loadGradlabFull();
    const bench = await gl.WebBench.create();
    const tf = await loadTf();
    const jax = await loadJax();
    const adapter = bench.adapter().replace("unnamed adapter", (await browserAdapterName()) || "unnamed adapter");
    for (const [layer, m, k, n] of shapes) {
      status(`Timing ${layer} (${m} × ${k} → ${n}) on ${adapter}…`);
      const [x, w, b] = [randomArray(m * k, m + k), randomArray(n * k, n * 7 + k), randomArray(n, n)];
      const index = bench.addMatmul(m, k, n, x, w, b);
      const [tx, tw, tb] = [tf.tensor2d(x, [m, k]), tf.tensor2d(w, [n, k]), tf.tensor1d(b)];
      const multiply = () => tf.fused.matMul({ a: tx, b: tw, transposeB: true, bias: tb });
      const jaxGpuRun = jax.devices.includes("webgpu") ? jaxMatmul(jax, "webgpu", [x, w, b], m, k, n) : null;
      // the three WebGPU multiplies side by side, gradlab's first
      const gpu = await timeInTurns({
        gradlab: (times) => bench.run(index, times),
        tfjs: async (times) => {
          const outs = [];
          for (let i = 0; i < times; i++) outs.push(multiply());
          await outs[outs.length - 1].data();
          outs.forEach((t) => t.dispose());
        },
        ...(jaxGpuRun ? { jax: jaxGpuRun.once } : {}),
      });
      const ours = gpu.gradlab.seconds, theirs = gpu.tfjs.seconds;
      const ref = multiply();
      const [want, got] = [await ref.data(), await bench.output(index)];
      ref.dispose();
      [tx, tw, tb].forEach((t) => t.dispose());
      let diff = 0, scale = 0;
      for (let i = 0; i < want.length; i++) {
        diff = Math.max(diff, Math.abs(want[i] - got[i]));
        scale = Math.max(scale, Math.abs(want[i]));
      }
      // and a third opinion: 64 entries recomputed in float64 here
      let spot = 0;
      for (let s = 0; s < 64; s++) {
        const i = (s * 7919) % m, j = (s * 104729) % n;
        let exact = b[j];
        for (let q = 0; q < k; q++) exact += x[i * k + q] * w[j * k + q];
        spot = Math.max(spot, Math.abs(got[i * n + j] - exact) / (scale || 1));
      }
      const jaxGpu = jaxGpuRun ? { seconds: gpu.jax.seconds, ratio: gpu.jax.overFirst, out: await jaxGpuRun.output() } : null;
      jaxGpuRun?.dispose();
      // both CPU paths side by side, gradlab's first
      status(`Timing ${layer} (${m} × ${k} → ${n}): gradlab's CPU kernel and jax-js's wasm…`);
      let cpuOut;
      const jaxWasmRun = jaxMatmul(jax, "wasm", [x, w, b], m, k, n);
      const onCpu = await timeInTurns({
        gradlab: async (times) => {
          cpuOut = gl.WebBench.cpuMatmul(m, k, n, x, w, b, times);
        },
        jax: jaxWasmRun.once,
      });
      const cpu = onCpu.gradlab.seconds;
      const jaxWasm = { seconds: onCpu.jax.seconds, ratio: onCpu.jax.overFirst, out: await jaxWasmRun.output() };
      jaxWasmRun.dispose();
      const flops = 2 * m * k * n;
      const r = {
        layer, m, k, n, gradlabMs: ours * 1e3, tfjsMs: theirs * 1e3, gradlabGflops: flops / ours / 1e9, tfjsGflops: flops / theirs / 1e9, ratio: gpu.tfjs.overFirst, relDiff: diff / (scale || 1), f64Diff: spot,
        jaxGpuMs: jaxGpu ? jaxGpu.seconds * 1e3 : null, jaxGpuRatio: jaxGpu ? jaxGpu.ratio : null, jaxGpuDiff: jaxGpu ? relDiff(jaxGpu.out, got) : null,
        cpuMs: cpu * 1e3, jaxWasmMs: jaxWasm.seconds * 1e3, cpuGflops: flops / cpu / 1e9, jaxWasmGflops: flops / jaxWasm.seconds / 1e9, cpuRatio: jaxWasm.ratio,
        cpuDiff: relDiff(cpuOut, got), jaxWasmDiff: relDiff(jaxWasm.out, got),
      };
      results.push(r);
      const fixed = (v, d = 2) => (v === null ? "–" : v.toFixed(d));
      $("bench-rows").append(row([layer, `${m} × ${k} → ${n}`, r.gradlabMs.toFixed(2), r.tfjsMs.toFixed(2), r.gradlabGflops.toFixed(2), r.tfjsGflops.toFixed(2), r.ratio.toFixed(2), r.relDiff.toExponential(1), r.f64Diff.toExponential(1)]));
      $("bench-jax-rows").append(row([layer, `${m} × ${k} → ${n}`, fixed(r.jaxGpuMs), fixed(r.jaxGpuRatio), r.cpuMs.toFixed(2), r.jaxWasmMs.toFixed(2), r.cpuGflops.toFixed(2), r.jaxWasmGflops.toFixed(2), r.cpuRatio.toFixed(2), Math.max(r.cpuDiff, r.jaxWasmDiff, r.jaxGpuDiff ?? 0).toExponential(1)]));
    }
    status(`Done on ${adapter}.`);
    window.gradlabBench.adapter = adapter;
  } catch (e) {
    window.gradlabBench.error = errorText(e);
    status(`Could not run the benchmark: ${window.gradlabBench.error}`);
  } finally {
    window.gradlabBench.done = true;
    busy(false);
  }
}

// The whole-step comparison's choices: a quick check (the smallest preset on
// a short batch, fewer timed batches), then every preset at B = 16 and its own
// block size, as the matmul shapes above; each with the page's prompt mask on.
function stepSets(presets) {
  const [smallest] = presets;
  return {
    quick: { label: `quick check: ${smallest.name}, B = 4, T = 16`, settings: { preset: smallest.name, batch: 4, seqLen: 16, maskPrompt: true }, timing: { batches: 3, seconds: 0.25 } },
    ...Object.fromEntries(
      presets.map((p, i) => [p.name, { label: `${p.name}, B = 16, T = ${p.block_size}${i > 0 ? " (slow on a software adapter)" : ""}`, settings: { preset: p.name, batch: 16, seqLen: p.block_size, maskPrompt: true }, timing: {} }]),
    ),
  };
}

const stepStatus = (text) => ($("step-status").textContent = text);

// Compares whole training steps for choice `name` (STEP_SETS) from `seed`.
async function runStep(name, seed = 1) {
  const set = STEP_SETS[name];
  if (!set) throw new Error(`step "${name}" is not one of ${Object.keys(STEP_SETS).join(", ")}`);
  busy(true);
  $("step-rows").replaceChildren();
  const settings = oneRunSettings({ ...set.settings, seed });
  const out = { done: false, choice: name, settings, rows: [] };
  window.gradlabBench = { ...window.gradlabBench, gptStep: out };
  try {
    stepStatus("Loading gradlab and jax-js…");
    const gl = await loadGradlab();
    await ensureCorpus(settings.corpus);
    const { jax, devices } = await loadJax();
    const result = await compareGptStep({ gl, jax, devices, settings, ...set.timing, onStatus: stepStatus });
    out.rows = result.rows;
    // wgpu cannot name the adapter in a browser; WebGPU's adapter.info can
    const adapter = await browserAdapterName();
    for (const r of result.rows) if (r.gradlab && adapter) r.gradlab.label = r.gradlab.label.replace("unnamed adapter", adapter);
    const pair = (a, b, d = 6) => `${a.toFixed(d)} · ${b.toFixed(d)}`;
    for (const r of result.rows) {
      const why = r.skipped ?? (r.error && `failed: ${r.error}`);
      if (why) {
        $("step-rows").append(el("tr", {}, el("td", { text: r.backend }), el("td", { colspan: "8", text: why })));
        continue;
      }
      const { gradlab: g, jax: j } = r.losses;
      $("step-rows").append(row([r.backend, r.gradlab.label, String(r.gradlab.runs), pair(g[0], j[0]), pair(g[1], j[1]), Math.max(...r.relDiff).toExponential(1), r.gradlabMs.toFixed(2), r.jaxMs.toFixed(2), r.ratio.toFixed(2)]));
    }
    const failed = result.rows.find((r) => r.error);
    if (failed) out.error = `${failed.backend}: ${failed.error}`;
    stepStatus(failed ? `The ${failed.backend} comparison failed: ${failed.error}` : `Done: ${set.label}, seed ${seed}.`);
    if (!failed && navigator.gpu) out.profile = await profileStep(settings);
  } catch (e) {
    out.error = errorText(e);
    stepStatus(`Could not compare training steps: ${out.error}`);
  } finally {
    out.done = true;
    busy(false);
  }
}

// Where gradlab's WebGPU step of `settings`' preset and batch spends its GPU
// time (WebBench.profileStep, in the module's full build), into the profile
// table; null, said in words, where it cannot be had (no timestamp queries).
async function profileStep(settings) {
  const say = (text) => ($("profile-status").textContent = text);
  $("profile-rows").replaceChildren();
  try {
    say("Profiling gradlab's WebGPU step kernel by kernel…");
    const full = await loadGradlabFull();
    await ensureCorpus("kjv", full);
    const bench = await full.WebBench.create();
    try {
      const profile = await bench.profileStep(settings.preset, settings.batch, settings.seq_len, 5);
      const total = profile.kernels.reduce((sum, k) => sum + k.seconds, 0);
      for (const k of profile.kernels) {
        $("profile-rows").append(row([k.kernel, String(k.count), (k.seconds * 1e3).toFixed(2), `${((100 * k.seconds) / total).toFixed(1)}%`]));
      }
      say(`gradlab's WebGPU step as compared above (${settings.preset} preset, batch ${settings.batch} × ${settings.seq_len}): ${profile.dispatches} dispatches, ${(total * 1e3).toFixed(1)} ms in them.`);
      return profile;
    } finally {
      bench.free();
    }
  } catch (e) {
    say(`No per-kernel profile: ${errorText(e)}`);
    return null;
  }
}

let SHAPES;
let STEP_SETS;
try {
  // one thread against one thread: on an isolated page jax-js's wasm backend
  // would start worker threads (from blob: URLs, which this page's policy
  // refuses) while gradlab's benchmark runs on one
  if (globalThis.crossOriginIsolated) {
    throw new Error(
      "this page was served cross-origin isolated (COOP and COEP headers), where jax-js's wasm backend starts worker threads while gradlab's side runs on one: serve it without those headers (scripts/serve.mjs leaves them off this page; --not-isolated leaves them off every page)",
    );
  }
  const presets = await loadPresets();
  SHAPES = shapeSets(presets);
  STEP_SETS = stepSets(presets);
  const params = new URLSearchParams(location.search);
  const size = params.get("shapes") ?? presets[0].name;
  // the presets in size order, the quick check last
  const choices = [...Object.keys(SHAPES).filter((k) => k !== "tiny"), "tiny"];
  $("bench-size").replaceChildren(...choices.map((k) => el("option", { value: k, text: SHAPES[k].label })));
  if (SHAPES[size]) $("bench-size").value = size;
  $("bench-run").addEventListener("click", () => run($("bench-size").value));
  // ?step=<choice> runs the whole-step comparison (seed from ?seed=, default 1)
  const step = params.get("step") || presets[0].name;
  const asked = Number(params.get("seed") ?? 1);
  // a seed a number holds exactly (the lab refuses a larger one)
  const seed = Number.isSafeInteger(asked) && asked >= 0 ? asked : 1;
  $("step-size").replaceChildren(...Object.keys(STEP_SETS).map((k) => el("option", { value: k, text: STEP_SETS[k].label })));
  if (STEP_SETS[step]) $("step-size").value = step;
  $("step-run").addEventListener("click", () => runStep($("step-size").value, seed));
  // with both ?run and ?step, the matmuls first: never two clocks at once
  const matmuls = params.has("run") ? run(size) : null;
  if (!matmuls) status(SHAPES[size] ? "Press Run." : `shapes="${size}" is not one of ${Object.keys(SHAPES).join(", ")}; pick one above.`);
  if (params.has("step")) {
    const problem =
      !STEP_SETS[step] ? `step="${step}" is not one of ${Object.keys(STEP_SETS).join(", ")}; pick one above.` :
      seed !== asked ? `seed="${params.get("seed")}" is not a whole number; seed 1 is used when you press Run.` : "";
    if (problem) {
      stepStatus(problem);
      window.gradlabBench = { ...window.gradlabBench, gptStep: { done: true, rows: [], error: problem } };
    } else Promise.resolve(matmuls).catch(() => {}).then(() => runStep(step, seed));
  }
} catch (e) {
  // neither benchmark can run: both say so
  const error = errorText(e);
  window.gradlabBench = { done: true, results: [], error, gptStep: { done: true, rows: [], error } };
  status(`Could not run the benchmark: ${error}`);
  stepStatus(`Could not compare training steps: ${error}`);
}
