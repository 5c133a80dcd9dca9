// End-to-end tests of the lab's experiment controls and figures: corpus,
// packing, prompt mask, ranks and precision (URL and attributes, bad values
// reported), the true/logged loss switch, the token-weight strip, precision
// "both" and the G sweep's figures. The page's other behaviour is in
// site.test.mjs. Screenshots go to test-artifacts/.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARTIFACTS, FAST, curves, open, serveSite, trainFor, waitReady } from "./browser.mjs";

serveSite();

const value = (page, id) => page.inputValue(`[data-testid="${id}"]`);
const errorText = (page, sel = '[data-testid="error"]') => page.waitForFunction((sel) => deepQuery(sel)?.textContent, sel, { timeout: 30_000 }).then((h) => h.jsonValue());

test("corpus, packing, mask, ranks and precision come from the URL, and a change goes back to it", async () => {
  const { browser, page, errors } = await open(`?${FAST}&corpus=devil&packing=packed&mask=0&ranks=2&precision=f64`);
  try {
    await waitReady(page);
    assert.equal(await value(page, "corpus"), "devil");
    assert.equal(await value(page, "packing"), "packed");
    assert.equal(await page.isChecked('[data-testid="mask-prompt"]'), false);
    assert.equal(await value(page, "ranks"), "2");
    assert.equal(await value(page, "precision"), "f64");
    // the corpus choices are wasm's corpora(), not a list in the page
    const names = await page.$$eval('[data-testid="corpus"] option', (os) => os.map((o) => o.value));
    assert.deepEqual(names, ["kjv", "devil"]);
    assert.match(await page.textContent('[data-testid="status"]'), /^CPU/);
    await trainFor(page, 2);
    const c = await curves(page);
    assert.deepEqual(c.runs.map((r) => r.strategy), ["full", "naive", "local", "corrected"], "ranks 2 adds a local run");
    await page.selectOption('[data-testid="ranks"]', "1");
    await page.waitForFunction(() => !new URL(location.href).searchParams.has("ranks"), null, { timeout: 10_000 });
    await page.selectOption('[data-testid="packing"]', "padded");
    await page.check('[data-testid="mask-prompt"]');
    await page.selectOption('[data-testid="corpus"]', "kjv");
    await page.waitForFunction(() => {
      const q = new URL(location.href).searchParams;
      return !q.has("packing") && !q.has("mask") && !q.has("corpus") && q.get("precision") === "f64";
    }, null, { timeout: 10_000 });
    await waitReady(page);
    await page.screenshot({ path: ARTIFACTS + "lab-experiment-controls.png", fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("bad corpus, packing, mask, ranks and precision are reported in words and replaced by defaults", async () => {
  const { browser, page, errors } = await open(`?${FAST}&corpus=moon&packing=tight&mask=2&ranks=3&precision=f16`);
  try {
    const text = await errorText(page);
    for (const word of ["corpus", "packing", "mask", "ranks", "precision"]) assert.ok(text.includes(word), `error names ${word}: ${text}`);
    await waitReady(page);
    assert.equal(await value(page, "corpus"), "kjv");
    assert.equal(await value(page, "packing"), "padded");
    assert.equal(await page.isChecked('[data-testid="mask-prompt"]'), true);
    assert.equal(await value(page, "ranks"), "1");
    assert.equal(await value(page, "precision"), "f32");
    // a combination the ranks cannot share is refused in words
    await page.selectOption('[data-testid="ranks"]', "8");
    const refused = await page.waitForFunction(() => /ranks cannot share/.test(deepQuery('[data-testid="error"]').textContent), null, { timeout: 30_000 });
    assert.ok(refused);
    // the mask needs whole documents: packed turns it off as it is chosen,
    // and says so, instead of leaving an error (issue 28; conflicts.test.mjs)
    await page.selectOption('[data-testid="ranks"]', "1");
    await page.selectOption('[data-testid="packing"]', "packed");
    await page.waitForFunction(() => !deepQuery('[data-testid="mask-prompt"]').checked, null, { timeout: 30_000 });
    assert.doesNotMatch(await page.evaluate(() => deepQuery('[data-testid="error"]').textContent), /mask_prompt/);
    await page.screenshot({ path: ARTIFACTS + "lab-experiment-bad.png", fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("the new settings work as element attributes, and bad attributes are reported", async () => {
  const { browser, page, errors } = await open("www/explainer.html");
  try {
    await page.evaluate(() => {
      const add = (id, attrs) => {
        const lab = document.createElement("gradlab-lab");
        lab.id = id;
        for (const [k, v] of Object.entries(attrs)) lab.setAttribute(k, v);
        document.body.append(lab);
      };
      add("good-lab", { batch: "4", micro: "1", ctx: "16", corpus: "devil", packing: "packed", mask: "0", ranks: "4", precision: "f64" });
      add("bad-lab", { batch: "4", micro: "2", ctx: "16", corpus: "bible", ranks: "5", precision: "double" });
    });
    const bad = await errorText(page, '#bad-lab [data-testid="error"]');
    for (const word of ["corpus", "ranks", "precision"]) assert.ok(bad.includes(word), `attribute error names ${word}: ${bad}`);
    await page.waitForFunction(() => /ready/.test(deepQuery('#good-lab [data-testid="status"]')?.textContent ?? ""), null, { timeout: 120_000 });
    const good = page.locator("#good-lab");
    assert.equal(await good.locator('[data-testid="corpus"]').inputValue(), "devil");
    assert.equal(await good.locator('[data-testid="packing"]').inputValue(), "packed");
    assert.equal(await good.locator('[data-testid="ranks"]').inputValue(), "4");
    assert.equal(await good.locator('[data-testid="precision"]').inputValue(), "f64");
    assert.equal(await good.locator('[data-testid="mask-prompt"]').isChecked(), false);
    assert.equal(await good.locator('[data-testid="error"]').isHidden(), true);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("the loss chart shows the true loss, the logged one a click away, and says why they differ", async () => {
  const { browser, page, errors } = await open(`?scenario=custom&batch=8&micro=2&ctx=32&lr=0.01&mask=1`);
  try {
    await waitReady(page);
    const kind = page.locator('[data-testid="loss-kind"]');
    assert.equal(await kind.getAttribute("data-kind"), "true");
    assert.match(await page.textContent('[data-testid="chart-loss"] .u-title'), /true loss/);
    assert.match(await page.textContent(".gl-kind"), /even at step 1/);
    await page.click('[data-testid="step-once"]');
    await page.waitForFunction(() => deepQuery("gradlab-lab").curves().step.length >= 1, null, { timeout: 60_000 });
    const c = await curves(page);
    const [full, naive] = c.runs;
    // step 1: the same weights, the same token losses, averaged differently
    assert.ok(Math.abs(full.logged[0] - full.true[0]) < 1e-5, "the full batch logs its true loss");
    assert.ok(Math.abs(naive.true[0] - full.true[0]) < 1e-5, "at step 1 every run has the same true loss");
    assert.ok(Math.abs(naive.logged[0] - naive.true[0]) > 1e-5, `naive logs another number: ${naive.logged[0]} vs ${naive.true[0]}`);
    await kind.click();
    assert.equal(await kind.getAttribute("data-kind"), "logged");
    assert.match(await page.textContent('[data-testid="chart-loss"] .u-title'), /logged loss/);
    await page.locator('[data-testid="chart-loss"]').screenshot({ path: ARTIFACTS + "loss-logged.png" });
    await kind.click();
    assert.equal(await kind.getAttribute("data-kind"), "true");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("the token-weight strip appears after steps, and naive colours tokens unlike corrected", async () => {
  const { browser, page, errors } = await open(`?scenario=custom&batch=8&micro=2&ctx=32&lr=0.01&mask=1`);
  try {
    await waitReady(page);
    const strip = page.locator('[data-testid="token-weights"]');
    assert.equal(await strip.locator(".gl-tw-row").count(), 0, "nothing before the first step");
    await page.click('[data-testid="step-once"]');
    await page.click('[data-testid="step-once"]');
    await page.waitForFunction(() => Number(deepQuery('[data-testid="token-weights"]').dataset.step) >= 1, null, { timeout: 60_000 });
    // one evaluation, so a later step's redraw cannot detach the rows between
    // finding them and reading their colours (page.$$eval takes two)
    const rows = await page.evaluate(() =>
      deepQueryAll('[data-testid="token-weights"] .gl-tw-row').map((r) => ({
        strategy: r.dataset.strategy,
        ratios: [...r.querySelectorAll(".gl-tw-cell[data-ratio]")].map((c) => Number(c.dataset.ratio)),
        colors: [...r.querySelectorAll(".gl-tw-cell[data-ratio]")].map((c) => getComputedStyle(c).backgroundColor),
        prompts: r.querySelectorAll(".gl-tw-prompt").length,
      })),
    );
    const of = (s) => rows.filter((r) => r.strategy === s);
    assert.ok(of("full").length >= 2 && of("naive").length === of("full").length && of("corrected").length === of("full").length, JSON.stringify(rows.map((r) => r.strategy)));
    for (const r of [...of("full"), ...of("corrected")]) assert.ok(r.ratios.every((x) => Math.abs(x - 1) < 1e-3), `full and corrected weigh every token 1/N: ${r.ratios}`);
    const naiveRatios = of("naive").flatMap((r) => r.ratios);
    assert.ok(naiveRatios.some((x) => Math.abs(x - 1) > 0.01), `naive weighs some tokens differently: ${naiveRatios}`);
    const corrected = new Set(of("corrected").flatMap((r) => r.colors));
    const naive = new Set(of("naive").flatMap((r) => r.colors));
    assert.equal(corrected.size, 1, "corrected: one colour");
    assert.ok([...naive].some((c) => !corrected.has(c)), `naive's colours differ: ${[...naive]} vs ${[...corrected]}`);
    assert.ok(rows.every((r) => r.prompts > 0), "masked prompt tokens are drawn as such");
    assert.match(await strip.textContent(), /padding/);
    await strip.screenshot({ path: ARTIFACTS + "token-weights.png" });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("precision both: the f64 lab beside the f32 one, corrected's distance down to f64 rounding", async () => {
  const { browser, page, errors } = await open(`?scenario=custom&batch=4&micro=2&ctx=32&lr=0.01&mask=1&precision=both`);
  try {
    await trainFor(page, 4);
    const c = await curves(page);
    assert.ok(c.twin, "the f64 lab's curves are there");
    await page.waitForFunction(() => deepQuery("gradlab-lab").curves().twin.step.length >= 4, null, { timeout: 60_000 });
    const t = (await curves(page)).twin;
    const max = (r) => Math.max(...r.dist.map((x) => x ?? 0));
    const f64 = Object.fromEntries(t.runs.map((r) => [r.strategy, r]));
    const f32 = Object.fromEntries(c.runs.map((r) => [r.strategy, r]));
    assert.ok(max(f64.corrected) < 1e-9, `f64 corrected is the full batch to rounding: ${max(f64.corrected)}`);
    assert.ok(max(f64.naive) > 1e-3, `f64 naive is not: ${max(f64.naive)}`);
    assert.ok(max(f32.naive) > 100 * max(f32.corrected), "f32: naive far, corrected near");
    // the same experiment: the f32 and f64 losses agree closely
    assert.ok(Math.abs(f64.full.true[0] - f32.full.true[0]) < 1e-4, `step 1 losses: ${f64.full.true[0]} vs ${f32.full.true[0]}`);
    assert.ok((await page.locator('[data-testid="chart-distance"] .u-legend').textContent()).includes("f64"));
    // the twin steps beside the lab, in a worker of its own, where the machine has two cores
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    const workers = page.workers().filter((w) => w.url().endsWith("/www/lab/worker.js")).length;
    assert.equal(workers, Math.min(2, cores), `${workers} lab workers on ${cores} cores`);
    await page.screenshot({ path: ARTIFACTS + "lab-precision-both.png", fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("the G sweep is labelled, plots only trained runs, and draws one loss curve per G", async () => {
  const { browser, page, errors } = await open(`?scenario=custom&batch=4&micro=1&ctx=16&lr=0.01&sweepsteps=3&ranks=4`);
  try {
    await waitReady(page);
    const note = await page.textContent('[data-testid="sweep-note"]');
    assert.match(note, /quick version: 3 steps/i);
    assert.match(note, /lr 3e-3/);
    await page.click('[data-testid="sweep"]');
    await page.waitForFunction(() => deepQuery("gradlab-lab").sweepResult(), null, { timeout: 600_000, polling: 500 });
    const result = await page.$eval("gradlab-lab", (e) => e.sweepResult());
    // 4 ranks cannot share G = 2: that run is not trained, so G = 2 is not on the axis
    assert.deepEqual(result.gs, [4, 8, 16]);
    assert.equal(result.runs[0].strategy, "full");
    assert.ok(!result.runs.some((r) => r.strategy !== "full" && r.G === 1), "no run stands in for G = 1");
    assert.ok(result.runs.some((r) => r.strategy === "local"));
    for (const r of result.runs) assert.ok(r.true.every((x) => Number.isFinite(x)), `${r.strategy} G=${r.G} trained every step`);
    assert.ok(await page.locator('[data-testid="chart-sweep"] .uplot').count());
    assert.ok(await page.locator('[data-testid="chart-sweep-curves"] .uplot').count());
    assert.equal(await page.locator('[data-testid="sweep-table"] tbody tr').count(), result.runs.length);
    await page.locator('[data-testid="chart-sweep-curves"]').screenshot({ path: ARTIFACTS + "sweep-curves.png" });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
