// `gradlab export-grads` against the independent float64 model in gpt2_f64.mjs:
// the reported losses must match its forward pass, and the GPU gradients of
// every strategy must match central differences of that strategy's loss.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readSafetensors, strategyLosses } from "./gpt2_f64.mjs";

// each case: export-grads flags, and the strategies it must write
const CASES = [
  { name: "micro-batch 4", flags: ["--micro-batch", "4"], strategies: ["full", "naive", "corrected"] },
  { name: "micro-batch 1", flags: ["--micro-batch", "1"], strategies: ["full", "naive", "corrected"] },
  {
    name: "masked prompts on 2 ranks (devil corpus)",
    flags: ["--micro-batch", "2", "--batch", "8", "--mask-prompt", "--ranks", "2", "--corpus", "devil"],
    strategies: ["full", "naive", "local", "corrected"],
  },
];
// tensors whose gradients are probed: every kind of layer, both blocks
const PROBED = ["wte", "wpe", "h.0.ln_1.weight", "h.0.attn.c_attn.weight", "h.0.attn.c_attn.bias", "h.1.attn.c_proj.weight",
  "h.1.ln_2.bias", "h.1.mlp.c_fc.weight", "h.0.mlp.c_proj.weight", "ln_f.weight", "ln_f.bias"];

function exportGrads(flags, seed, STRATEGIES) {
  const dir = mkdtempSync(join(tmpdir(), "gradlab-export-"));
  const args = ["run", "--release", "--quiet", "--", "export-grads", dir, ...flags, "--seed", String(seed)];
  const run = spawnSync("cargo", args, { encoding: "utf8" });
  assert.equal(run.status, 0, `cargo ${args.join(" ")} failed:\n${run.stderr}`);
  const json = (f) => JSON.parse(readFileSync(join(dir, f), "utf8"));
  const grads = Object.fromEntries(STRATEGIES.map((s) => [s, readSafetensors(join(dir, `grads_${s}.safetensors`))]));
  return { config: json("config.json"), batch: json("batch.json"), report: json("report.json"), weights: readSafetensors(join(dir, "model.safetensors")), grads };
}

for (const { name: caseName, flags, strategies: STRATEGIES } of CASES) {
  test(`export-grads (${caseName}) agrees with an independent f64 model`, () => {
    const seed = Number(process.env.GRADLAB_SEED ?? Date.now() % 1_000_000);
    console.log(`seed ${seed} (GRADLAB_SEED replays it)`);
    const { config, batch, report, weights, grads } = exportGrads(flags, seed, STRATEGIES);
    const microBatch = batch.micro_batch;
    assert.deepEqual(Object.keys(report.loss).sort(), [...STRATEGIES].sort(), "report.json has every strategy run");
    assert.equal(batch.prompt_lengths.length, batch.sequences.length);
    const names = Object.keys(weights).sort();
    for (const s of STRATEGIES) assert.deepEqual(Object.keys(grads[s]).sort(), names, `grads_${s} names the same tensors as the model`);

    const lossesOf = () => strategyLosses(config, weights, batch.sequences, microBatch, batch.prompt_lengths, batch.ranks);
    const losses = lossesOf();
    for (const s of STRATEGIES) {
      const rel = Math.abs(report.loss[s] - losses[s]) / losses[s];
      assert.ok(rel < 1e-5, `${s}: reported loss ${report.loss[s]} vs f64 ${losses[s]} (rel ${rel})`);
    }

    // central differences; the error is measured against the tensor's largest
    // gradient, since single entries can be near zero
    let state = seed + 1;
    const below = (n) => (state = (state * 48271) % 2147483647) % n;
    const worst = Object.fromEntries(STRATEGIES.map((s) => [s, 0]));
    const h = 1e-5;
    for (const name of PROBED) {
      const w = weights[name].data;
      for (let probe = 0; probe < 3; probe++) {
        // an embedding row only has a gradient if its token is in the batch
        const i = name === "wte" ? batch.sequences[probe][0] * config.n_embd + below(config.n_embd) : below(w.length);
        const original = w[i];
        w[i] = original + h;
        const up = lossesOf();
        w[i] = original - h;
        const down = lossesOf();
        w[i] = original;
        for (const s of STRATEGIES) {
          const fd = (up[s] - down[s]) / (2 * h);
          const g = grads[s][name].data;
          const scale = g.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
          const err = Math.abs(fd - g[i]) / scale;
          worst[s] = Math.max(worst[s], err);
          assert.ok(err < 1e-4, `${s} ${name}[${i}]: GPU ${g[i]} vs central difference ${fd}`);
        }
      }
    }
    console.log(`worst gradient error (relative to the tensor's largest): ${JSON.stringify(worst)}`);
  });
}
