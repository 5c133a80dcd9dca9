// Settings the library refuses only when the lab is built (issue 32: a
// pasted text too short for the batch passes validateLabConfig, and
// WebLab.create refuses it) leave the lab as it was: its curves, its
// settings, and a Start that goes on from where it stopped. The text stays
// in its box.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARTIFACTS, FAST, curves, open, serveSite, trainFor, waitForSteps } from "./browser.mjs";

serveSite();

test("a pasted text the lab cannot be built on loses nothing: curves, settings and training go on", async () => {
  const { browser, page, errors } = await open(`?${FAST}`);
  try {
    await trainFor(page, 6);
    const before = await curves(page);
    const steps = before.step.length;
    const short = "In the beginning was a short text.";
    await page.fill('[data-testid="user-text"]', short);
    await page.locator('[data-testid="user-text"]').dispatchEvent("change");
    await page.waitForFunction(() => /Nothing was lost/.test(deepQuery('[data-testid="error"]').textContent), null, { timeout: 60_000 });
    const error = await page.textContent('[data-testid="error"]');
    const after = await curves(page);
    assert.equal(after.step.length, steps, `the curves are kept: ${error}`);
    assert.deepEqual(after.runs.map((r) => r.true.length), before.runs.map((r) => r.true.length));
    assert.equal(await page.inputValue('[data-testid="user-text"]'), short, "the text stays in its box");
    assert.match(await page.textContent('[data-testid="status"]'), /keeps its last settings and curves/);
    await page.screenshot({ path: `${ARTIFACTS}keep-short-text.png`, fullPage: true });
    // Start goes on from where the lab stopped
    await page.click('[data-testid="train-toggle"]');
    await waitForSteps(page, steps + 3);
    await page.click('[data-testid="train-toggle"]');
    const later = await curves(page);
    assert.ok(later.step.length >= steps + 3 && later.step[steps - 1] === before.step[steps - 1], `numbered on: ${later.step.slice(0, steps + 3)}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
