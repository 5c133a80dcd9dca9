// LoRA in the page: the shipped base loaded through the file picker, LoRA
// switched on, the three strategies trained on the same adapter init, and the
// distance chart and per-matrix table showing naive apart from corrected; a
// corrupt file is refused in words while the lab keeps its weights.
import { test } from "node:test";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import { ARTIFACTS, FAST, curves, open, serveSite, stepCount, trainFor, waitForSteps, waitReady, weightsSource } from "./browser.mjs";

serveSite();

const BASE = fileURLToPath(new URL("../../data/base/nano-kjv.safetensors", import.meta.url));

test("load the shipped base, switch LoRA on, train: naive's adapters leave the full batch's, corrected's do not", async () => {
  const { browser, page, errors } = await open(`?${FAST}`);
  try {
    await waitReady(page);
    assert.match(await weightsSource(page), /fresh init/);
    await page.setInputFiles('[data-testid="load-weights"]', BASE);
    await page.waitForFunction(() => deepQuery('[data-testid="weights-source"]').textContent.includes("nano-kjv.safetensors"), null, { timeout: 30_000 });
    await page.click('[data-testid="lora"]');
    await page.waitForFunction(() => new URL(location.href).searchParams.get("lora") === "1", null, { timeout: 10_000 });
    await page.selectOption('[data-testid="lora-rank"]', "4");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("lorarank") === "4", null, { timeout: 10_000 });
    await trainFor(page, 8);
    const c = await curves(page);
    // the base is pretrained: its loss starts far below a fresh model's ln 256 ≈ 5.5
    const firstLoss = c.runs[0].true.find((x) => x !== null);
    assert.ok(firstLoss < 3.5, `the loaded base starts at loss ${firstLoss}`);
    const maxDist = (r) => Math.max(...r.dist.map((x) => x ?? 0));
    const naive = maxDist(c.runs.find((r) => r.strategy === "naive"));
    const corrected = maxDist(c.runs.find((r) => r.strategy === "corrected"));
    assert.ok(naive > 10 * corrected && naive > 1e-5, `LoRA: naive ${naive} should be far from the full batch, corrected ${corrected} at rounding`);
    const title = await page.textContent('[data-testid="chart-distance"] .u-title');
    assert.match(title, /ΔW − ΔW_full.*r = 4/);
    // one row per adapted Linear: 2 blocks x 4
    await page.waitForFunction(() => deepQueryAll('[data-testid="matrix-distances"] tbody tr').length === 8, null, { timeout: 60_000 });
    const names = await page.$$eval('[data-testid="matrix-distances"] tbody td:first-child', (tds) => tds.map((t) => t.textContent));
    assert.ok(names.includes("h.0.attn.c_attn.weight") && names.includes("h.1.mlp.c_proj.weight"), names.join(" "));
    await page.screenshot({ path: ARTIFACTS + "lab-lora.png", fullPage: true });

    // a corrupt file: a clear error, and the lab goes on from the weights it had
    const steps = await stepCount(page);
    await page.setInputFiles('[data-testid="load-weights"]', { name: "corrupt.safetensors", mimeType: "application/octet-stream", buffer: Buffer.from("this is not a model") });
    await page.waitForFunction(() => !deepQuery('[data-testid="error"]').hidden, null, { timeout: 30_000 });
    const error = await page.textContent('[data-testid="error"]');
    assert.match(error, /corrupt\.safetensors: .*not a safetensors file/);
    assert.match(error, /keeps the weights it had/);
    assert.match(await weightsSource(page), /nano-kjv\.safetensors/);
    assert.equal(await stepCount(page), steps, "the lab was not rebuilt");
    await page.click('[data-testid="step-once"]');
    await page.waitForFunction((n) => Number(deepQuery('[data-testid="step-count"]').textContent) > n, steps, { timeout: 60_000 });

    // the weights the lab just trained become the next lab's start
    await page.click('[data-testid="adapt-trained"]');
    await page.waitForFunction(() => /full-batch weights after \d+ steps/.test(deepQuery('[data-testid="weights-source"]').textContent), null, { timeout: 30_000 });
    // the old lab's status says "ready" too until the new one replaces it: wait for the new lab's step count
    await page.waitForFunction(() => deepQuery('[data-testid="step-count"]').textContent === "0", null, { timeout: 120_000 });
    await waitReady(page);
    assert.equal(await stepCount(page), 0, "a new lab from the trained weights");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("trained weights with a grown position table start a lab of a shorter context", async () => {
  // nano's block is 64 positions: a context of 80 grows wpe to 80 rows
  const { browser, page, errors } = await open("?scenario=custom&batch=2&micro=1&ctx=80&lr=0.01");
  try {
    await trainFor(page, 1);
    await page.click('[data-testid="adapt-trained"]');
    await page.waitForFunction(() => /full-batch weights after \d+ steps/.test(deepQuery('[data-testid="weights-source"]').textContent), null, { timeout: 30_000 });
    await page.waitForFunction(() => deepQuery('[data-testid="step-count"]').textContent === "0", null, { timeout: 120_000 });
    await waitReady(page);
    // one step of the adapted lab, so that its replacement shows as a step count of 0
    await page.click('[data-testid="step-once"]');
    await waitForSteps(page, 1);
    // back to the preset's context: the next lab takes wpe's first 64 rows
    const ctx = page.locator('[data-testid="context"]');
    await ctx.fill("48");
    await ctx.dispatchEvent("change");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("ctx") === "48", null, { timeout: 10_000 });
    // the rebuilt lab, or the error that refused it
    const refused = () => !deepQuery('[data-testid="error"]').hidden;
    // a function, not a string: a string predicate is eval'd, which the page's CSP refuses
    await page.waitForFunction(() => !deepQuery('[data-testid="error"]').hidden || deepQuery('[data-testid="step-count"]').textContent === "0", null, { timeout: 120_000 });
    assert.equal(await page.evaluate(refused), false, await page.textContent('[data-testid="error"]'));
    // Start, pressed while the new lab may still be building, trains it once ready
    await page.click('[data-testid="train-toggle"]');
    await waitForSteps(page, 1, 120_000).catch(async (e) => {
      throw new Error(`${e.message}; status: ${await page.textContent('[data-testid="status"]')}; error: ${await page.textContent('[data-testid="error"]')}`);
    });
    await page.click('[data-testid="train-toggle"]');
    assert.equal(await page.evaluate(refused), false, await page.textContent('[data-testid="error"]'));
    assert.match(await weightsSource(page), /full-batch weights after \d+ steps/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("one click starts from the shipped base, fetched beside the module (no download and upload)", async () => {
  const { browser, page, errors } = await open(`?${FAST}&lora=1&lorarank=4`);
  try {
    await waitReady(page);
    await page.click('[data-testid="shipped-base"]');
    await page.waitForFunction(() => deepQuery('[data-testid="weights-source"]').textContent.includes("the shipped nano base"), null, { timeout: 30_000 });
    await trainFor(page, 4);
    const c = await curves(page);
    const firstLoss = c.runs[0].true.find((x) => x !== null);
    assert.ok(firstLoss < 3.5, `the shipped base starts at loss ${firstLoss}, far below a fresh model's ln 256`);
    assert.equal((await page.textContent('[data-testid="error"]')).trim(), "");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
