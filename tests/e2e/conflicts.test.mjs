// Settings that cannot go together are settled as they are chosen, never
// left as an error (issue 28): packed windows turn the prompt mask off, and
// the mask turns packing back to padded, each said under the control that
// turned. And a value between a log slider's notches (from the URL) stays
// exact when another control changes, on the lab and on the playground.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARTIFACTS, FAST, curves, open, serveSite, trainFor, waitForSteps, waitReady } from "./browser.mjs";

serveSite();

const hintUnder = (page, testid) =>
  page.evaluate((testid) => {
    const input = deepQuery(`[data-testid="${testid}"]`);
    return input.closest(".gl-row").textContent;
  }, testid);

test("packed with the prompt mask on turns the mask off and says so; the mask turns packing back", async () => {
  // the mask is on by default
  const { browser, page, errors } = await open(`?${FAST}&packing=padded&mask=1`);
  try {
    await trainFor(page, 2);
    await page.locator('[data-testid="packing"]').selectOption("packed");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("packing") === "packed", null, { timeout: 10_000 });
    assert.equal(await page.locator('[data-testid="mask-prompt"]').isChecked(), false, "the mask is off");
    assert.match(await hintUnder(page, "mask-prompt"), /turned off: packed windows/);
    assert.equal(new URL(page.url()).searchParams.get("mask"), "0");
    assert.equal((await page.locator('[data-testid="error"]').textContent()).trim(), "", "no error is left");
    // the lab was rebuilt with the settled settings and trains
    await waitReady(page);
    await page.click('[data-testid="train-toggle"]');
    await waitForSteps(page, 3);
    await page.click('[data-testid="train-toggle"]');
    const c = await curves(page);
    const naive = c.runs.find((r) => r.strategy === "naive");
    const corrected = c.runs.find((r) => r.strategy === "corrected");
    const gap = Math.max(...naive.logged.map((x, i) => Math.abs(x - corrected.logged[i])));
    assert.ok(gap < 1e-6, `packed: naive and corrected coincide, max gap ${gap}`);
    await page.screenshot({ path: ARTIFACTS + "conflict-packed.png", fullPage: true });

    // the latest choice wins: the mask back on turns packing back to padded
    await page.locator('[data-testid="mask-prompt"]').check();
    await page.waitForFunction(() => new URL(location.href).searchParams.get("packing") === null, null, { timeout: 10_000 });
    assert.equal(await page.locator('[data-testid="packing"]').inputValue(), "padded");
    assert.match(await hintUnder(page, "packing"), /back to padded/);
    assert.equal((await page.locator('[data-testid="error"]').textContent()).trim(), "");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("a learning rate between the slider's notches stays exact when another control changes", async () => {
  const { browser, page, errors } = await open("?scenario=custom&batch=4&micro=2&ctx=16&lr=0.02");
  try {
    await waitReady(page);
    await page.locator('[data-testid="batch"]').selectOption("16");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("batch") === "16", null, { timeout: 10_000 });
    assert.equal(new URL(page.url()).searchParams.get("lr"), "0.02", "the URL's learning rate is kept, not snapped to the slider");
    // the playground's default learning rate (0.02) is between notches too
    await page.locator('[data-testid="pg-momentum"]').fill("0.5");
    await page.locator('[data-testid="pg-momentum"]').dispatchEvent("change");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("pgmomentum") === "0.5", null, { timeout: 10_000 });
    assert.equal(new URL(page.url()).searchParams.get("pglr"), null, "the playground's default learning rate stays the default");
    // moving the slider itself takes the slider's value
    const lr = page.locator('[data-testid="lr"]');
    await lr.fill("-2.5");
    await lr.dispatchEvent("change");
    await page.waitForFunction(() => Math.abs(Number(new URL(location.href).searchParams.get("lr")) - 10 ** -2.5) < 1e-9, null, { timeout: 10_000 });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
