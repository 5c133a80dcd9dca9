// The seed write-up's two figures above the lab (issue 28): drawn when the
// page loads from the CLI's shipped numbers (www/lab/seed-figures.json),
// every seed's points and their spread, naive's distance and logged gap
// growing with G; "Run it yourself" trains one seed here and draws its
// points for every G, with its progress, and can be cancelled.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { ARTIFACTS, open, serveSite } from "./browser.mjs";

serveSite();

const SHIPPED = JSON.parse(readFileSync(new URL("../../www/lab/seed-figures.json", import.meta.url), "utf8"));
const figures = (page) => page.evaluate(() => document.querySelector("gradlab-seed-figures").figures());
const loaded = (page) => page.waitForFunction(() => document.querySelector("gradlab-seed-figures")?.figures() !== undefined, null, { timeout: 60_000 });
const increasing = (xs) => xs.every((x, i) => i === 0 || x > xs[i - 1]);
// Waits until the run's status line matches `pattern`; a timeout says what it read last.
async function statusMatches(page, pattern, timeout) {
  try {
    await page.waitForFunction((source) => new RegExp(source).test(deepQuery('[data-testid="run-yourself-status"]').textContent), pattern.source, { timeout, polling: 200 });
  } catch (e) {
    throw new Error(`the status line never matched ${pattern}; it reads "${await page.getByTestId("run-yourself-status").textContent()}" (${e.message.split("\n")[0]})`);
  }
}

test("both figures are drawn on load from the shipped numbers: at least 5 seeds, the means growing with G", async () => {
  const { browser, page, errors } = await open("");
  try {
    await loaded(page);
    const f = await figures(page);
    assert.deepEqual(f.gs, [1, 2, 4, 8, 16]);
    assert.ok(f.seeds.length >= 5, `${f.seeds.length} seeds`);
    assert.deepEqual(f.seeds, SHIPPED.per_seed.map((s) => s.seed), "the shipped file's seeds");
    for (const key of ["logged_gap", "distance"]) {
      const q = f.naive[key];
      assert.equal(q.seeds.length, f.seeds.length);
      assert.ok(q.seeds.every((s) => s.length === 5 && s.every(Number.isFinite)), `${key}: every seed has a point at every G`);
      assert.ok(increasing(q.mean), `naive's ${key} mean grows with G: ${q.mean}`);
      assert.ok(q.sd.slice(1).every((s) => s > 0), `${key}: a spread at every G past the full batch`);
    }
    // the figures carry the spread, and a caption with the seed count, in words
    for (const id of ["seed-figure-loss", "seed-figure-distance"]) {
      const figure = page.getByTestId(id);
      assert.equal(await figure.locator("canvas").count(), 1, `${id} is drawn`);
      const caption = await page.getByTestId(`${id}-caption`).textContent();
      assert.match(caption, new RegExp(`${f.seeds.length} seeds`), `${id}'s caption names the seeds`);
      assert.match(caption, /mean ± one standard deviation/);
    }
    // no tick label twice on any axis
    for (const id of ["seed-figure-loss", "seed-figure-distance"]) {
      const labels = await page.getByTestId(id).locator(".u-axis").evaluateAll((axes) => axes.map((a) => [...a.querySelectorAll(".u-value")].map((v) => v.textContent)));
      for (const axis of labels) {
        const shown = axis.filter(Boolean);
        assert.equal(new Set(shown).size, shown.length, `${id}: repeated tick labels ${shown}`);
      }
    }
    const about = await page.getByTestId("seed-figures-about").textContent();
    assert.ok(about.includes(SHIPPED.command) && about.includes(SHIPPED.commit.slice(0, 10)), "the command and commit are named");
    await page.getByTestId("seed-figure-loss").scrollIntoViewIfNeeded();
    await page.screenshot({ path: ARTIFACTS + "seed-figures.png", fullPage: false });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForTimeout(300);
    await page.screenshot({ path: ARTIFACTS + "seed-figures-dark.png", fullPage: false });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("Run it yourself trains one seed here and draws its points for every G; a second run can be cancelled", async () => {
  const { browser, page, errors } = await open("");
  try {
    await loaded(page);
    const button = page.getByTestId("run-yourself");
    const seed = SHIPPED.per_seed[0].seed;
    await page.getByTestId("run-yourself-seed").fill(String(seed));
    const began = Date.now();
    await button.click();
    assert.equal(await button.textContent(), "Cancel");
    await statusMatches(page, /about \d+ s left/, 60_000);
    assert.equal(await page.getByTestId("run-yourself-progress").isVisible(), true, "a progress bar while it runs");
    await page.screenshot({ path: ARTIFACTS + "seed-figures-running.png" });
    await statusMatches(page, /^done/, 300_000);
    const seconds = (Date.now() - began) / 1000;
    console.log(`Run it yourself: ${seconds.toFixed(1)} s; ${await page.getByTestId("run-yourself-status").textContent()}`);
    const { live, gs } = await figures(page);
    assert.equal(live.done, true);
    assert.equal(live.step, SHIPPED.steps);
    for (const g of gs) {
      for (const key of ["logged_gap", "true_gap", "distance"]) assert.ok(Number.isFinite(live.points[g]?.[key]), `G = ${g}: ${key} drawn`);
    }
    assert.equal(live.points[1].distance, 0, "G = 1 is the full batch itself");
    assert.ok(increasing(gs.map((g) => live.points[g].distance)), "this seed's distance grows with G");
    // the same seed as the file's: the browser's f32 CPU backend takes the CLI's steps
    const shipped = SHIPPED.per_seed[0].points.filter((p) => p.strategy === "naive");
    for (const p of shipped) {
      const rel = Math.abs(live.points[p.g].distance - p.distance) / p.distance;
      assert.ok(rel < 1e-3, `G = ${p.g}: distance ${live.points[p.g].distance} here, ${p.distance} shipped`);
    }
    assert.equal(await button.textContent(), "Run it yourself");
    await page.getByTestId("seed-figure-loss").scrollIntoViewIfNeeded();
    await page.screenshot({ path: ARTIFACTS + "seed-figures-yours.png" });

    // a second run, cancelled once steps arrive: the button comes back, no points stay
    await button.click();
    await statusMatches(page, /^step \d+ of/, 60_000);
    await button.click();
    await statusMatches(page, /^cancelled/, 10_000);
    assert.equal(await button.textContent(), "Run it yourself");
    assert.equal((await figures(page)).live, null);
    assert.equal(await page.getByTestId("run-yourself-progress").isVisible(), false);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
