// A lost GPU (issue 11, defect 1): the page's WebGPU device is destroyed
// while the lab trains. The page must say the GPU was lost, raise no uncaught
// error, and rebuild the lab on a new device with Recover: before the first
// checkpoint keeping the curves so far and numbering the new steps on from
// them; past one, going on from the weights kept there.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARTIFACTS, FAST, curves, destroyGpuDevices, open, serveSite, waitForSteps, waitReady } from "./browser.mjs";

serveSite();

// A page of the FAST lab, training on WebGPU.
async function trainingPage() {
  const opened = await open(`?${FAST}&device=webgpu`);
  try {
    await waitReady(opened.page);
    await opened.page.click('[data-testid="train-toggle"]');
  } catch (e) {
    await opened.browser.close();
    throw e;
  }
  return opened;
}

// Waits until the curves hold `points` steps, destroys the GPU devices of the
// page and its lab worker and waits for the page to say so.
async function loseDeviceAfter(page, points) {
  await page.waitForFunction((n) => deepQuery("gradlab-lab").curves().step.length >= n, points, { timeout: 480_000, polling: 250 });
  await destroyGpuDevices(page);
  await page.waitForFunction(() => deepQuery('[data-testid="error"]').textContent.includes("The GPU was lost"), null, { timeout: 60_000 });
}

test("a lost GPU is said as such, and Recover rebuilds the lab keeping the curves", async () => {
  const { browser, page, uncaught } = await trainingPage();
  try {
    // metrics come back a few steps late: wait until some have
    await loseDeviceAfter(page, 4);
    assert.match(await page.textContent('[data-testid="status"]'), /GPU was lost/);
    assert.equal(await page.textContent('[data-testid="train-toggle"]'), "Start");
    assert.ok(await page.isVisible('[data-testid="recover"]'));
    const before = await curves(page);
    assert.ok(before.step.length >= 4, `${before.step.length} steps kept`);
    await page.screenshot({ path: ARTIFACTS + "lab-gpu-lost.png", fullPage: true });

    await page.click('[data-testid="recover"]');
    await waitReady(page);
    assert.ok(!(await page.isVisible('[data-testid="recover"]')));
    const kept = await curves(page);
    assert.equal(kept.step.length, before.step.length, "the curves so far stay");
    // the counter goes on from the kept steps too, as the curves do
    assert.equal(await page.textContent('[data-testid="step-count"]'), String(before.step.at(-1)));
    await page.click('[data-testid="train-toggle"]');
    // the counter is numbered on from the kept steps
    await waitForSteps(page, before.step.at(-1) + 3);
    await page.click('[data-testid="train-toggle"]');
    await page.waitForFunction((n) => deepQuery("gradlab-lab").curves().step.length >= n + 3, before.step.length, { timeout: 60_000 });
    const after = await curves(page);
    const last = before.step[before.step.length - 1];
    assert.equal(after.step[before.step.length], last + 1, "new steps are numbered on from the kept ones");
    assert.deepEqual(uncaught, []);
  } finally {
    await browser.close();
  }
});

test("past a checkpoint, Recover goes on from the weights kept there and retakes the later steps bit for bit", async () => {
  const { browser, page, uncaught } = await trainingPage();
  try {
    // the page keeps a checkpoint every 50 steps; lose the device a few past it
    await loseDeviceAfter(page, 56);
    const before = await curves(page);

    await page.click('[data-testid="recover"]');
    const status = await page.waitForFunction(() => deepQuery('[data-testid="status"]').textContent.match(/recovered on a new device from the weights kept at step (\d+)/)?.[1], null, { timeout: 120_000 });
    const kept = Number(await status.jsonValue());
    assert.ok(kept >= 50 && kept % 50 === 0, `kept at step ${kept}`);
    const cut = before.step.indexOf(kept) + 1;
    assert.ok(cut > 0 && cut < before.step.length, `step ${kept} is in the curves (${before.step.length} points)`);
    const restored = await curves(page);
    assert.deepEqual(restored.step, before.step.slice(0, cut), "the curves are cut back to the checkpoint");
    assert.equal(await page.textContent('[data-testid="step-count"]'), String(kept));

    await page.click('[data-testid="train-toggle"]');
    await page.waitForFunction((n) => deepQuery("gradlab-lab").curves().step.length >= n, before.step.length, { timeout: 240_000, polling: 250 });
    await page.click('[data-testid="train-toggle"]');
    const again = await curves(page);
    assert.deepEqual(again.step.slice(0, before.step.length), before.step);
    for (const [i, run] of before.runs.entries()) {
      for (const key of ["logged", "true", "dist", "norm"]) {
        assert.deepEqual(again.runs[i][key].slice(cut, before.step.length), run[key].slice(cut), `run ${i} ${key}: steps after the checkpoint retaken bit for bit`);
      }
    }
    assert.deepEqual(uncaught, []);
  } finally {
    await browser.close();
  }
});
