// A lost GPU (issue 11, defect 1): the page's WebGPU device is destroyed
// while the lab trains. The page must say the GPU was lost, raise no uncaught
// error, and rebuild the lab on a new device with Recover, keeping the curves
// so far and numbering the new steps on from them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { ARTIFACTS, CHROMIUM, FAST, QUIET, serveSite, site, watchCsp, curves, waitForSteps, waitReady } from "./browser.mjs";

serveSite();

test("a lost GPU is said as such, and Recover rebuilds the lab keeping the curves", async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--enable-unsafe-webgpu", ...QUIET] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
    await watchCsp(page);
    const uncaught = [];
    page.on("pageerror", (e) => uncaught.push(String(e)));
    // keep every device the page opens, to destroy it from the test
    await page.addInitScript(() => {
      window.gpuDevices = [];
      const request = GPUAdapter.prototype.requestDevice;
      GPUAdapter.prototype.requestDevice = async function (...args) {
        const device = await request.apply(this, args);
        window.gpuDevices.push(device);
        return device;
      };
    });
    await page.goto(site.base + `?${FAST}`);
    await waitReady(page);
    await page.click('[data-testid="train-toggle"]');
    // metrics come back a few steps late: wait until some have
    await page.waitForFunction(() => document.querySelector("gradlab-lab").curves().step.length >= 4, null, { timeout: 240_000, polling: 250 });
    await page.evaluate(() => window.gpuDevices.forEach((d) => d.destroy()));
    await page.waitForFunction(() => document.querySelector('[data-testid="error"]').textContent.includes("The GPU was lost"), null, { timeout: 60_000 });
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
    await page.click('[data-testid="train-toggle"]');
    await waitForSteps(page, 3);
    await page.click('[data-testid="train-toggle"]');
    await page.waitForFunction((n) => document.querySelector("gradlab-lab").curves().step.length >= n + 3, before.step.length, { timeout: 60_000 });
    const after = await curves(page);
    const last = before.step[before.step.length - 1];
    assert.equal(after.step[before.step.length], last + 1, "new steps are numbered on from the kept ones");
    assert.deepEqual(uncaught, []);
  } finally {
    await browser.close();
  }
});
