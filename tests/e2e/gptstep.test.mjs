// One whole training step against jax-js (issue 10), on the benchmark page:
// the GPT written with jax-js (www/gptstep.js) must take the same step as
// gradlab's, on WebGPU (SwiftShader here) and on the CPU (gradlab's f32
// backend against jax-js's wasm). What is asserted is that the work is the
// same: from the same initial weights on the same batch the two losses agree,
// and after one and two updates (each library's own AdamW) they still do.
// The timings are printed for BENCHMARKS.md, never asserted.
import assert from "node:assert/strict";
import { test } from "node:test";
import { ARTIFACTS, open, serveSite } from "./browser.mjs";

serveSite();

// a fresh lab seed each run, printed; GPTSTEP_SEED=N replays one
const SEED = Number(process.env.GPTSTEP_SEED ?? 1 + Math.floor(Math.random() * 1_000_000));

// Relative distance of the two losses. Both are f32 sums over the same
// tokens, so they differ by rounding alone (under 1e-6 over seeds 1-8 and six
// steps, both backends). Step 1's bound is tight because every model starts
// near ln 256: a LayerNorm eps of 1e-6, or attention unscaled, moved it by
// 3e-5 and 1e-4, where the bound of 1e-4 one might pick would let both pass.
// After an update the gap may only grow by what Adam makes of rounding; decay
// on every tensor instead of the matrices moved step 2 by 3e-5, step 3 by 1e-4.
const FIRST_STEP = 1e-5;
const AFTER_UPDATES = 2e-5;

test(`jax-js's GPT takes the same whole training step as gradlab's, on WebGPU and on the CPU (seed ${SEED})`, async (t) => {
  const { browser, page, errors } = await open(`www/bench.html?step=quick&seed=${SEED}`);
  try {
    await page.waitForFunction(() => window.gradlabBench?.gptStep?.done, null, { timeout: 240_000, polling: 500 });
    const { settings, rows, error } = await page.evaluate(() => window.gradlabBench.gptStep);
    t.diagnostic(`seed ${SEED} (GPTSTEP_SEED=${SEED} replays it); lab settings ${JSON.stringify(settings)}`);
    assert.equal(error, undefined, `the comparison failed: ${error}`);
    assert.deepEqual(rows.map((r) => r.backend), ["WebGPU", "CPU"]);
    const positions = settings.batch * settings.seq_len;
    for (const r of rows) {
      // the test's Chromium has WebGPU (SwiftShader) for both libraries
      assert.equal(r.skipped, undefined, `${r.backend}: ${r.skipped}`);
      assert.equal(r.error, undefined, `${r.backend}: ${r.error}`);
      assert.equal(r.gradlab.runs, 1, `${r.backend}: gradlab's lab holds the full-batch run only`);
      // the prompt mask and padding leave positions out of the loss: the
      // rebuilt batch must leave out the same ones for the losses to agree
      assert.ok(r.tokens.every((n) => n > 0 && n < positions), `${r.backend}: targets per step ${r.tokens} of ${positions} positions`);
      const { gradlab, jax } = r.losses;
      t.diagnostic(`${r.backend} (${r.gradlab.label} vs jax-js ${r.jaxDevice}): losses gradlab ${gradlab.map((x) => x.toFixed(7)).join(", ")}; jax-js ${jax.map((x) => x.toFixed(7)).join(", ")}; relative differences ${r.relDiff.map((x) => x.toExponential(1)).join(", ")}`);
      t.diagnostic(`${r.backend}: gradlab ${r.gradlabMs.toFixed(2)} ms/step (K = ${r.k.gradlab}), jax-js ${r.jaxMs.toFixed(2)} ms/step (K = ${r.k.jax}), jax-js time / gradlab time ${r.ratio.toFixed(2)}`);
      assert.equal(gradlab.length, 3);
      assert.ok(r.relDiff[0] < FIRST_STEP, `${r.backend}: step 1 from the same weights on the same batch: gradlab ${gradlab[0]}, jax-js ${jax[0]}`);
      for (const s of [1, 2]) {
        assert.ok(r.relDiff[s] < AFTER_UPDATES, `${r.backend}: step ${s + 1}, after ${s} update(s): gradlab ${gradlab[s]}, jax-js ${jax[s]}`);
      }
      // the updates did something, so agreeing after them says something
      assert.ok(Math.abs(gradlab[1] - gradlab[0]) > 100 * AFTER_UPDATES * gradlab[0], `${r.backend}: the loss moved: ${gradlab}`);
      assert.ok(r.gradlabMs > 0 && r.jaxMs > 0 && Number.isFinite(r.ratio), JSON.stringify(r));
    }
    assert.equal(await page.locator('[data-testid="step-table"] tbody tr').count(), 2);
    // the per-kernel profile of gradlab's step, where the adapter has
    // timestamp queries (Chromium's SwiftShader does): every dispatch counted once
    const { profile } = await page.evaluate(() => window.gradlabBench.gptStep);
    const timestamps = await page.evaluate(async () => (await navigator.gpu.requestAdapter()).features.has("timestamp-query"));
    if (!timestamps) t.diagnostic("no timestamp queries on this adapter: the profile is not checked");
    else {
      assert.ok(profile, `no profile: ${await page.textContent('[data-testid="profile-status"]')}`);
      const kernels = profile.kernels.map((k) => k.kernel);
      // attention's and cross-entropy's kernels carry `_serial` on a software adapter
      for (const family of ["encoder_forward", "layernorm_forward", "attention_backward_dq", "crossentropy_forward_backward", "adamw_update"]) {
        assert.ok(kernels.some((k) => k === family || k === `${family}_serial`), `${family} in ${kernels}`);
      }
      assert.equal(profile.kernels.reduce((n, k) => n + k.count, 0), profile.dispatches);
      assert.ok(profile.kernels.every((k) => k.seconds >= 0 && Number.isFinite(k.seconds)), JSON.stringify(profile.kernels));
      assert.equal(await page.locator('[data-testid="profile-table"] tbody tr').count(), profile.kernels.length);
    }
    await page.screenshot({ path: ARTIFACTS + "bench-step.png", fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
