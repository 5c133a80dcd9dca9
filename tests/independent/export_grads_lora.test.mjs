// `gradlab export-grads --lora --adapters FILE` against the independent
// float64 model: adapters trained for a few steps (`train --save-adapters`,
// so B is not zero and A is not its init) sit on the frozen base, and every
// element of every strategy's GPU gradient of A and of B must match the
// reverse pass of backward_f64.mjs, itself checked here by central
// differences of gpt2_f64.mjs's forward pass. From B = 0 every gradient of A
// is zero, so the check asserts that A's are not.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mergeAdapters, readSafetensors, readSafetensorsMetadata, strategyLosses } from "./gpt2_f64.mjs";
import { adapterGradients, strategyGradients } from "./backward_f64.mjs";

// the tolerance of export_grads.test.mjs: the error relative to the tensor's largest gradient
const TOLERANCE = 1e-4;

// each case: the adapters' flags (train and export-grads alike), export-grads' other flags, the strategies it writes
const CASES = [
  {
    name: "r=4, α=6 on all four Linears; micro-batch 2, masked prompts on 2 ranks (devil corpus)",
    lora: ["--lora", "4", "--lora-alpha", "6"],
    flags: ["--micro-batch", "2", "--batch", "8", "--mask-prompt", "--ranks", "2", "--corpus", "devil"],
    strategies: ["full", "naive", "local", "corrected"],
  },
  {
    name: "r=2 on attn and fc_proj; micro-batch 1",
    lora: ["--lora", "2", "--lora-targets", "attn,fc_proj"],
    flags: ["--micro-batch", "1", "--batch", "8"],
    strategies: ["full", "naive", "corrected"],
  },
];

function gradlab(args) {
  const all = ["run", "--release", "--quiet", "--", ...args];
  const run = spawnSync("cargo", all, { encoding: "utf8" });
  assert.equal(run.status, 0, `cargo ${all.join(" ")} failed:\n${run.stderr}`);
  return run;
}

const maxAbs = (v) => v.reduce((m, x) => Math.max(m, Math.abs(x)), 0);

for (const { name: caseName, lora, flags, strategies: STRATEGIES } of CASES) {
  test(`export-grads --lora --adapters (${caseName}): dA and dB agree with an independent f64 model`, () => {
    const seed = Number(process.env.GRADLAB_SEED ?? Date.now() % 1_000_000);
    console.log(`seed ${seed} (GRADLAB_SEED replays it)`);
    const dir = mkdtempSync(join(tmpdir(), "gradlab-export-lora-"));
    const start = join(dir, "start.safetensors");
    const out = join(dir, "export");
    // a few steps of training move B off zero and A off its init
    const common = ["--preset", "nano", "--seed", String(seed), ...lora];
    gradlab(["train", ...common, "--steps", "3", "--lr", "0.02", "--batch", "4", "--save-adapters", start]);
    gradlab(["export-grads", out, ...common, ...flags, "--adapters", start]);

    const json = (f) => JSON.parse(readFileSync(join(out, f), "utf8"));
    const config = json("config.json");
    const batch = json("batch.json");
    const report = json("report.json");
    const base = readSafetensors(join(out, "model.safetensors"));
    const adapters = readSafetensors(join(out, "adapters.safetensors"));
    const meta = readSafetensorsMetadata(join(out, "adapters.safetensors"));
    const scale = Number(meta.lora_alpha) / Number(meta.lora_rank);
    assert.ok(scale > 0, `adapters.safetensors names its rank and α: ${JSON.stringify(meta)}`);

    // the export started from the file's adapters, and they are not the fresh ones
    const given = readSafetensors(start);
    const names = Object.keys(given).sort();
    assert.deepEqual(Object.keys(adapters).sort(), names, "adapters.safetensors holds the file's tensors");
    for (const n of names) assert.deepEqual(adapters[n].data, given[n].data, `${n} is the file's`);
    const bNames = names.filter((n) => n.endsWith(".lora_B"));
    const aNames = names.filter((n) => n.endsWith(".lora_A"));
    for (const n of bNames) assert.ok(maxAbs(adapters[n].data) > 0, `${n} is not zero`);

    const merged = mergeAdapters(base, adapters, scale);
    const lossesOf = (w) => strategyLosses(config, w, batch.sequences, batch.micro_batch, batch.prompt_lengths, batch.ranks);
    const losses = lossesOf(merged);
    assert.deepEqual(Object.keys(report.loss).sort(), [...STRATEGIES].sort(), "report.json has every strategy run");
    for (const s of STRATEGIES) {
      const rel = Math.abs(report.loss[s] - losses[s]) / losses[s];
      assert.ok(rel < 1e-5, `${s}: reported loss ${report.loss[s]} vs f64 ${losses[s]} (rel ${rel})`);
    }

    // the f64 gradients of every adapter, by the reverse pass
    const linear = strategyGradients(config, merged, batch.sequences, batch.micro_batch, batch.prompt_lengths, batch.ranks);
    const f64 = Object.fromEntries(STRATEGIES.map((s) => [s, adapterGradients(linear[s], adapters, scale)]));
    const gpu = Object.fromEntries(STRATEGIES.map((s) => [s, readSafetensors(join(out, `grads_${s}.safetensors`))]));

    // the reverse pass against central differences of the forward pass: a
    // few single entries, and one random direction through all of A and all of B
    let state = seed + 1;
    const below = (k) => (state = (state * 48271) % 2147483647) % k;
    const h = 1e-5;
    // moveBy(d) puts the probed values at their own plus d (0: back as they were)
    const centralDifference = (moveBy) => {
      moveBy(h);
      const up = lossesOf(mergeAdapters(base, adapters, scale));
      moveBy(-h);
      const down = lossesOf(mergeAdapters(base, adapters, scale));
      moveBy(0);
      return Object.fromEntries(STRATEGIES.map((s) => [s, (up[s] - down[s]) / (2 * h)]));
    };
    let worstFd = 0;
    for (const group of [aNames, bNames]) {
      for (let probe = 0; probe < 2; probe++) {
        const name = group[below(group.length)];
        const t = adapters[name].data;
        const i = below(t.length);
        const original = t[i];
        const fd = centralDifference((d) => (t[i] = original + d));
        for (const s of STRATEGIES) {
          const scaleOf = maxAbs(f64[s][name]);
          const err = Math.abs(fd[s] - f64[s][name][i]) / scaleOf;
          worstFd = Math.max(worstFd, err);
          assert.ok(err < TOLERANCE, `${s} ${name}[${i}]: f64 reverse pass ${f64[s][name][i]} vs central difference ${fd[s]}`);
          const gpuErr = Math.abs(fd[s] - gpu[s][name].data[i]) / scaleOf;
          assert.ok(gpuErr < TOLERANCE, `${s} ${name}[${i}]: GPU ${gpu[s][name].data[i]} vs central difference ${fd[s]}`);
        }
      }
      const direction = Object.fromEntries(group.map((n) => [n, adapters[n].data.map(() => (below(2) ? 1 : -1))]));
      const original = Object.fromEntries(group.map((n) => [n, Float64Array.from(adapters[n].data)]));
      const fd = centralDifference((d) =>
        group.forEach((n) => direction[n].forEach((sign, i) => (adapters[n].data[i] = original[n][i] + d * sign))),
      );
      for (const s of STRATEGIES) {
        let dot = 0;
        let size = 0;
        for (const n of group) {
          f64[s][n].forEach((g, i) => {
            dot += g * direction[n][i];
            size += Math.abs(g);
          });
        }
        const err = Math.abs(fd[s] - dot) / size;
        worstFd = Math.max(worstFd, err);
        assert.ok(err < TOLERANCE, `${s}: along a random direction through ${group[0]}…, f64 reverse pass ${dot} vs central difference ${fd[s]}`);
      }
    }

    // every element of the GPU's dA and dB against the f64 reverse pass
    const worst = { dA: 0, dB: 0 };
    for (const s of STRATEGIES) {
      assert.deepEqual(Object.keys(gpu[s]).sort(), names, `grads_${s} names every adapter`);
      for (const n of names) {
        const [g, ref] = [gpu[s][n].data, f64[s][n]];
        assert.equal(g.length, ref.length, `${s} ${n}: ${g.length} values, expected ${ref.length}`);
        const tensorScale = maxAbs(ref);
        assert.ok(tensorScale > 0, `${s} ${n}: the f64 gradient is zero`);
        const key = n.endsWith(".lora_A") ? "dA" : "dB";
        for (let i = 0; i < g.length; i++) {
          const err = Math.abs(g[i] - ref[i]) / tensorScale;
          worst[key] = Math.max(worst[key], err);
          if (!(err < TOLERANCE)) assert.fail(`${s} ${n}[${i}]: GPU ${g[i]} vs f64 ${ref[i]} (error ${err} of the tensor's largest ${tensorScale})`);
        }
      }
      // not vacuous: every A has a gradient, of the order of B's
      const largest = (group) => Math.max(...group.map((n) => maxAbs(gpu[s][n].data)));
      for (const n of aNames) assert.ok(maxAbs(gpu[s][n].data) > 0, `${s}: the GPU's gradient of ${n} is all zero`);
      assert.ok(largest(aNames) > 1e-2 * largest(bNames), `${s}: dA ${largest(aNames)} is negligible beside dB ${largest(bNames)}`);
    }
    console.log(
      `max error vs the f64 model (relative to the tensor's largest), every element of ${STRATEGIES.join(", ")}: ` +
        `dA ${worst.dA.toExponential(2)}, dB ${worst.dB.toExponential(2)}; f64 reverse pass vs central differences ${worstFd.toExponential(2)}`,
    );
    rmSync(dir, { recursive: true, force: true });
  });
}
