// The page tells the seed's story by default (issue 28): it opens on the
// Fine-tuning scenario with the shipped base loaded, no setting in its link;
// `scenario=` in a link or as an attribute opens another; the Start button
// and the first chart are in view together at a desktop's and a phone's size,
// light and dark, with nothing wider than a phone's screen.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { ARTIFACTS, CHROMIUM, QUIET, SCENARIOS, curves, open, preparePage, serveSite, site, trainFor, waitReady, weightsSource } from "./browser.mjs";

serveSite();


test("the page opens on the fine-tuning scenario, adapters on the shipped base, and its link stays clean", async () => {
  const { browser, page, errors } = await open("");
  try {
    await waitReady(page);
    await page.waitForFunction(() => /shipped nano base/.test(deepQuery('[data-testid="weights-source"]').textContent), null, { timeout: 60_000 });
    assert.equal(await page.inputValue('[data-testid="scenario"]'), "fine-tuning");
    assert.equal(await page.isChecked('[data-testid="lora"]'), true);
    assert.equal(await page.isChecked('[data-testid="mask-prompt"]'), true);
    assert.equal(await page.inputValue('[data-testid="micro-batch"]'), String(SCENARIOS[0].settings.micro));
    assert.equal(new URL(page.url()).search, "", "nothing to write: every setting is the scenario's");
    await trainFor(page, 4);
    const c = await curves(page);
    const first = c.runs[0].true.find((x) => x !== null);
    assert.ok(first < 3, `the adapters start on the pretrained base: first loss ${first}`);
    const naive = c.runs.find((r) => r.strategy === "naive");
    const corrected = c.runs.find((r) => r.strategy === "corrected");
    const last = (xs) => xs.filter((x) => x !== null).at(-1);
    assert.ok(last(corrected.dist) <= 1e-3 * last(naive.dist), `corrected ${last(corrected.dist)} vs naive ${last(naive.dist)}`);
    assert.equal((await page.textContent('[data-testid="error"]')).trim(), "");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("scenario= in the link opens that scenario with its start; settings beside it override it", async () => {
  const { browser, page, errors } = await open("?scenario=pretraining&seed=3");
  try {
    await waitReady(page);
    assert.equal(await page.inputValue('[data-testid="packing"]'), "packed");
    assert.equal(await page.isChecked('[data-testid="mask-prompt"]'), false);
    assert.equal(await page.inputValue('[data-testid="seed"]'), "3");
    // the seed is not the scenario's: the settings are custom, built on pretraining
    assert.equal(await page.inputValue('[data-testid="scenario"]'), "custom");
    assert.match(await weightsSource(page), /fresh init/);
    const url = new URL(page.url()).searchParams;
    assert.equal(url.get("scenario"), "pretraining");
    assert.equal(url.get("packing"), null, "the scenario's own settings stay out of the link");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("a bad scenario in the link is named and the default one opens", async () => {
  const { browser, page, errors } = await open("?scenario=finetune");
  try {
    await waitReady(page);
    assert.match(await page.textContent('[data-testid="error"]'), /scenario="finetune" is not one of custom, fine-tuning/);
    assert.equal(await page.inputValue('[data-testid="scenario"]'), "fine-tuning");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("an embedded lab takes its scenario from an attribute, and follows a change of it", async () => {
  const { browser, page, errors } = await open("");
  try {
    await waitReady(page);
    await page.evaluate(() => {
      const lab = document.createElement("gradlab-lab");
      lab.id = "lab-2";
      lab.setAttribute("scenario", "devices");
      document.querySelector("main").prepend(lab);
    });
    await page.waitForFunction(() => /ready|steps\/s/.test(deepQuery('#lab-2 [data-testid="status"]').textContent), null, { timeout: 120_000 });
    assert.equal(await page.evaluate(() => deepQuery('#lab-2 [data-testid="scenario"]').value), "devices");
    assert.equal(await page.evaluate(() => deepQuery('#lab-2 [data-testid="ranks"]').value), "2");
    await page.evaluate(() => document.getElementById("lab-2").setAttribute("scenario", "scratch"));
    await page.waitForFunction(() => /fresh init/.test(deepQuery('#lab-2 [data-testid="weights-source"]').textContent), null, { timeout: 60_000 });
    assert.equal(await page.evaluate(() => deepQuery('#lab-2 [data-testid="scenario"]').value), "scratch");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

// Every scenario, opened from its link, trains and shows what it claims from
// the first steps on (the CLI's `gradlab scenario` holds each to its horizon).
for (const scenario of SCENARIOS) {
  test(`the ${scenario.name} scenario trains from its link and shows its claim`, async () => {
    const { browser, page, errors } = await open(`?scenario=${scenario.name}`);
    try {
      await waitReady(page);
      assert.equal(await page.inputValue('[data-testid="scenario"]'), scenario.name);
      assert.match(await weightsSource(page), scenario.start === "base" ? /shipped nano base/ : /fresh init/);
      // the controls the scenario is about stand outside the Advanced fold
      const beside = await page.evaluate(() => [...deepQuery("gradlab-lab .gl-side").querySelectorAll("form > .gl-controls > .gl-row")].map((r) => r.querySelector("[name], textarea").getAttribute("name") ?? "text"));
      for (const name of scenario.controls) assert.ok(beside.includes(name), `${name} beside the charts: ${beside}`);
      if (scenario.controls.includes("text")) {
        const text = Array.from({ length: 40 }, (_, i) => `Paragraph ${i}: ${"a reader's own words, ".repeat(1 + (i % 7))}`).join("\n\n");
        await page.fill('[data-testid="user-text"]', text);
        await page.locator('[data-testid="user-text"]').dispatchEvent("change");
        // the lab is rebuilt on the text
        await page.waitForTimeout(1000);
        await waitReady(page);
      }
      await trainFor(page, 6);
      const c = await curves(page);
      const last = (run) => run.dist.filter((x) => x !== null).at(-1);
      const naive = c.runs.find((r) => r.strategy === "naive");
      const corrected = c.runs.find((r) => r.strategy === "corrected");
      if (scenario.claim === "naive-drifts") assert.ok(last(corrected) <= 1e-3 * last(naive), `corrected ${last(corrected)}, naive ${last(naive)}`);
      else assert.ok(Math.abs(last(corrected) - last(naive)) <= 1e-6, `naive ${last(naive)} is corrected ${last(corrected)}`);
      assert.equal((await page.textContent('[data-testid="error"]')).trim(), "");
      await page.screenshot({ path: `${ARTIFACTS}scenario-${scenario.name}-link.png`, fullPage: true });
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  });
}

// Where the Start button and the first chart are, at a viewport's size.
async function firstScreen(width, height, colorScheme) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", ...QUIET, "--enable-unsafe-webgpu"] });
  try {
    const page = await browser.newPage({ viewport: { width, height }, colorScheme });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    await preparePage(page);
    await page.goto(site.base);
    await page.waitForFunction(() => /ready|steps\/s/.test(deepQuery('[data-testid="status"]').textContent), null, { timeout: 120_000 });
    const boxes = await page.evaluate(() => {
      const box = (e) => JSON.parse(JSON.stringify(e.getBoundingClientRect()));
      return {
        start: box(deepQuery('[data-testid="train-toggle"]')),
        chart: box(deepQuery('gradlab-lab .gl-top .gl-chart')),
        scrollWidth: document.documentElement.scrollWidth,
        scrollY: window.scrollY,
      };
    });
    await page.screenshot({ path: `${ARTIFACTS}first-screen-${width}x${height}-${colorScheme}.png` });
    // it stays reachable while training: the bar sticks to the top as the page scrolls
    await page.click('[data-testid="train-toggle"]', { noWaitAfter: true });
    await page.evaluate(() => deepQuery("gradlab-lab .gl-rest").scrollIntoView());
    await page.evaluate(() => window.scrollBy(0, 300));
    const startLater = await page.evaluate(() => JSON.parse(JSON.stringify(deepQuery('[data-testid="train-toggle"]').getBoundingClientRect())));
    await page.screenshot({ path: `${ARTIFACTS}scrolled-${width}x${height}-${colorScheme}.png` });
    return { ...boxes, startLater, errors };
  } finally {
    await browser.close();
  }
}

for (const [width, height] of [[1280, 900], [390, 844]]) {
  for (const scheme of ["light", "dark"]) {
    test(`at ${width}×${height} (${scheme}) Start and the first chart are in view together, and Start stays in view`, async () => {
      const s = await firstScreen(width, height, scheme);
      const inView = (b) => b.top >= 0 && b.bottom <= height && b.left >= 0 && b.right <= width;
      assert.equal(s.scrollY, 0);
      assert.ok(inView(s.start), `Start at ${JSON.stringify(s.start)}`);
      assert.ok(inView(s.chart), `the first chart at ${JSON.stringify(s.chart)}`);
      assert.ok(s.scrollWidth <= width, `the page is ${s.scrollWidth} px wide`);
      assert.ok(inView(s.startLater), `scrolled down to the lab's later charts, Start at ${JSON.stringify(s.startLater)}`);
      assert.deepEqual(s.errors, []);
    });
  }
}

// corpus=devil made naive diverge at step 22 of the old defaults (from
// scratch, lr 0.01) and the page blamed the learning rate, although the full
// batch trained on at that rate.
test("the Devil's Dictionary trains at the page's defaults; a naive run that diverges beside a training full batch is not blamed on the rate", async () => {
  const { browser, page, errors } = await open("?corpus=devil");
  try {
    await trainFor(page, 30);
    assert.equal((await page.textContent('[data-testid="error"]')).trim(), "", "nothing diverges at the defaults");
    const c = await curves(page);
    for (const r of c.runs) assert.ok(Number.isFinite(r.true.filter((x) => x !== null).at(-1)), `${r.strategy} trains`);
  } finally {
    await browser.close();
  }
  // on the f32 CPU backend, whose steps are the same bits on any machine:
  // the old defaults' divergence is reproduced, not hoped for
  const old = await open("?scenario=custom&corpus=devil&device=cpu");
  try {
    await waitReady(old.page);
    await old.page.click('[data-testid="train-toggle"]');
    await old.page.waitForFunction(() => Number(deepQuery('[data-testid="step-count"]').textContent) >= 60 || /Diverged/.test(deepQuery('[data-testid="error"]').textContent), null, { timeout: 240_000 });
    const error = await old.page.textContent('[data-testid="error"]');
    const c = await curves(old.page);
    const full = c.runs.find((r) => r.strategy === "full");
    assert.match(error, /Diverged: naive/, "the old defaults still make naive diverge");
    assert.equal(full.stopped, undefined, "while the full batch trains on");
    assert.match(error, /The full batch trains on at this learning rate/, error);
    assert.doesNotMatch(error, /too high for it/, error);
    await old.page.screenshot({ path: `${ARTIFACTS}devil-old-defaults.png`, fullPage: true });
    assert.deepEqual(old.errors.filter((e) => !/Diverged/.test(e)), []);
  } finally {
    await old.browser.close();
  }
});

test("precision=both at the default scenario: the f64 adapters' corrected run stays at f64 rounding beside the f32 one", async () => {
  const { browser, page, errors } = await open("?precision=both");
  try {
    await page.waitForFunction(() => /shipped nano base/.test(deepQuery('[data-testid="weights-source"]').textContent), null, { timeout: 60_000 });
    await trainFor(page, 5);
    await page.waitForFunction(() => deepQuery("gradlab-lab").curves().twin?.step.length >= 5, null, { timeout: 120_000 });
    const c = await curves(page);
    const max = (r) => Math.max(...r.dist.map((x) => x ?? 0));
    const f64 = Object.fromEntries(c.twin.runs.map((r) => [r.strategy, r]));
    assert.ok(max(f64.corrected) <= 1e-8, `f64 corrected: ${max(f64.corrected)}`);
    assert.ok(max(f64.naive) > 1e-3, `f64 naive: ${max(f64.naive)}`);
    assert.equal((await page.textContent('[data-testid="error"]')).trim(), "");
    await page.screenshot({ path: `${ARTIFACTS}default-precision-both.png`, fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
