// The lab's charts as a reader meets them (issue 28): the difference chart
// (each run's loss minus the full batch's, smoothed, zero line, following the
// loss switch), exact values under the cursor on hover and on a tap, tick
// labels that never repeat (the formatter in Node and in the page, and the
// labels the live charts drew), chart text readable in dark mode (contrast
// of titles, legends and axis text against what is behind them), the token
// strip on a phone, and the samples: the same text for every run at step 0,
// no U+FFFD. Screenshots (light, dark, 1280×900 and 390×844) go to
// test-artifacts/gap-*.png.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chromium } from "playwright-core";
import { ARTIFACTS, CHROMIUM, FAST, QUIET, curves, open, preparePage, serveSite, site, trainFor, waitReady } from "./browser.mjs";
import { gaps, GAP_WINDOW } from "../../www/lab/curves.js";
import { exact, tickLabels } from "../../www/lab/numbers.js";

serveSite();

const LAB = `?${FAST}&sweepsteps=12`;
// on the phone, rows of 64 positions: what overflowed to x = 485
const PHONE_LAB = `?${FAST.replace(/ctx=\d+/, "ctx=64")}`;
const CHARTS = ["loss", "gap", "distance", "gradnorm"];

// adjacent labels a reader sees (uPlot leaves some ticks unlabelled: "")
const repeats = (labels) => labels.filter((l) => l !== "").filter((l, i, a) => i > 0 && l === a[i - 1]);

test("tick labels add digits until neighbours differ, on linear and log axes", () => {
  // the logged loss's axis that read "5.557" four times
  assert.deepEqual(tickLabels([5.5565, 5.557, 5.5575, 5.558], 0.0005), ["5.5565", "5.557", "5.5575", "5.558"]);
  // the sweep's axis that read "0.001" twice
  assert.deepEqual(tickLabels([0.001, 0.0015, 0.002], 0.0005), ["0.001", "0.0015", "0.002"]);
  // a log axis over decades, some ticks unlabelled
  assert.deepEqual(tickLabels([1e-5, null, 1e-4, 2e-4, 1e-3, 0.01, 1]), ["1e-5", "", "1e-4", "2e-4", "0.001", "0.01", "1"]);
  assert.deepEqual(tickLabels([1.2e-5, null, 1.24e-5]), ["1.2e-5", "", "1.24e-5"], "neighbours across an unlabelled tick");
  // signed, around 0: rounding noise at zero is 0, never -0 or 1e-19
  assert.deepEqual(tickLabels([-0.002, -0.001, 1.1e-19, 0.001, 0.002], 0.001), ["-0.002", "-0.001", "0", "0.001", "0.002"]);
  assert.deepEqual(tickLabels([0, 500, 1000, 1500]), ["0", "500", "1000", "1500"]);
  assert.equal(exact(2.3456789123), "2.3456789");
  assert.equal(exact(0.00123456), "1.2346e-3");
  assert.equal(exact(-1.23456e-7), "-1.2346e-7");
  assert.equal(exact(null), "—");
});

test("the gap is each run's loss minus the full batch's at the same step, a moving mean", () => {
  const d = {
    step: [1, 2, 3, 4],
    runs: [
      { true: [3, 2, 1, 1], logged: [3, 2, 1, 1] },
      { true: [3.1, 2.3, 1, null], logged: [3, 2, 1, null] },
    ],
  };
  const [g] = gaps(d, "true", 2);
  [0.1, 0.2, 0.15, null].forEach((x, i) => (x == null ? assert.equal(g[i], null) : assert.ok(Math.abs(g[i] - x) < 1e-12, `${g[i]} ≠ ${x}`)));
  assert.deepEqual(gaps(d, "logged", 2), [[0, 0, 0, null]]);
  assert.equal(gaps(d, "true").length, 1, "no series for the full batch itself");
  assert.ok(GAP_WINDOW >= 1);
});

// WCAG contrast of two "rgb(a)(r, g, b…)" colours.
const luminance = (css) => {
  const [r, g, b] = css.match(/[\d.]+/g).slice(0, 3).map((x) => {
    const c = Number(x) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
};
const contrast = (a, b) => {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi + 0.05) / (lo + 0.05);
};

// Every chart text's colour and the background it sits on (the first
// ancestor with an opaque background), and the filters on the way up (a
// filter changes what is seen from what is computed); the axis text colour
// each live chart's canvas is drawn with.
const chartColours = (page) =>
  page.evaluate(() => {
    const up = (e) => e.parentElement ?? e.getRootNode().host ?? null;
    const behind = (e) => {
      const filters = [];
      for (let n = e; n; n = up(n)) {
        const s = getComputedStyle(n);
        if (s.filter !== "none") filters.push(s.filter);
        const bg = s.backgroundColor;
        if (bg && !/rgba\(.*, 0\)$/.test(bg) && bg !== "transparent") return { bg, filters };
      }
      return { bg: "rgb(255, 255, 255)", filters };
    };
    const texts = [...deepQueryAll(".gl-chart .u-title"), ...deepQueryAll(".gl-chart .u-legend th"), ...deepQueryAll(".gl-chart .u-legend td")]
      .filter((e) => e.textContent.trim())
      .map((e) => ({ what: `${e.closest(".gl-chart").dataset.testid} ${e.className || e.tagName}: ${e.textContent.slice(0, 30)}`, color: getComputedStyle(e).color, ...behind(e) }));
    const panel = deepQuery("gradlab-lab").panel;
    const plots = [...panel.charts.plots(), ...panel.sweepCharts.plots()];
    const axes = plots.flatMap(([name, p]) => p.axes.map((a, i) => ({ what: `${name} axis ${i}`, color: a.stroke(p, i), ...behind(p.root) })));
    return { texts, axes };
  });

function assertReadable({ texts, axes }, scheme) {
  assert.ok(texts.length >= 8 && axes.length >= 8, `${texts.length} texts, ${axes.length} axes`);
  for (const t of [...texts, ...axes]) {
    assert.deepEqual(t.filters, [], `${scheme}: no filter over ${t.what}`);
    const c = contrast(t.color, t.bg);
    assert.ok(c >= 4.5, `${scheme}: ${t.what} is ${t.color} on ${t.bg}, contrast ${c.toFixed(2)} < 4.5`);
  }
}

// Hovers over the middle of chart `name`'s plot area; returns its readout's
// text and the cursor's index into the drawn data.
async function hover(page, name) {
  const over = page.locator(`[data-testid="chart-${name}"] .u-over`);
  // in the middle of the window, clear of the panel's sticky bar
  await over.evaluate((e) => e.scrollIntoView({ block: "center" }));
  const box = await over.boundingBox();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height / 2);
  return page.evaluate((name) => {
    const plot = Object.fromEntries(deepQuery("gradlab-lab").panel.charts.plots())[name];
    return { text: deepQuery(`[data-testid="readout-${name}"]`).textContent, idx: plot.cursor.idx, data: plot.data.map((c) => c[plot.cursor.idx]) };
  }, name);
}

test("samples agree at step 0; the gap chart, hover readouts, distinct ticks and dark-mode contrast", async () => {
  const { browser, page, errors } = await open(LAB);
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    await waitReady(page);
    // step 0: every run has the same weights and the same draws, so the same text
    await page.waitForFunction(() => deepQueryAll('[data-testid^="sample-"]').every((e) => e.textContent.length > 8), null, { timeout: 60_000 });
    const samples = await page.$$eval('[data-testid^="sample-"]', (es) => es.map((e) => e.textContent));
    assert.ok(samples.length >= 3, samples);
    assert.ok(samples.every((s) => s === samples[0]), `at step 0 every run's sample is the same: ${JSON.stringify(samples)}`);
    assert.ok(samples.every((s) => !/[\uFFFD\u0000-\u0008\u000B-\u001F\u007F]/.test(s)), `no U+FFFD or control code in ${JSON.stringify(samples)}`);
    assert.match(await page.textContent('[data-testid="samples-note"]'), /same random draws.*▫ marks bytes that are not text/s);

    await page.locator('[data-testid="samples"]').screenshot({ path: ARTIFACTS + "gap-samples-step0.png" });
    await trainFor(page, 30);
    await page.locator('[data-testid="token-weights"]').screenshot({ path: ARTIFACTS + "gap-tokens-1280.png" });
    const c = await curves(page);
    assert.deepEqual(Object.keys(c), ["step", "runs"], "curves() keeps its shape");
    const drawn = (name) => page.evaluate((name) => Object.fromEntries(deepQuery("gradlab-lab").panel.charts.plots())[name].data, name);
    // the difference chart: the curves' gaps (true loss, the switch's default)
    const gap = await drawn("gap");
    const want = gaps(c, "true");
    assert.equal(gap.length, c.runs.length, "x and one series per run but the full batch");
    assert.deepEqual(gap[0], c.step);
    want.forEach((ys, k) => ys.forEach((y, i) => assert.ok(y == null ? gap[k + 1][i] == null : Math.abs(gap[k + 1][i] - y) < 1e-12, `run ${k + 1} step ${i}`)));
    assert.ok(want.some((ys) => ys.some((y) => y !== 0 && y != null)), "some run parts from the full batch");
    assert.match(await page.textContent('[data-testid="chart-gap"] .u-title'), /true loss − the full batch's.*mean of the last \d+ steps/);
    assert.match(await page.textContent('[data-testid="gap-note"]'), /moving mean over the last \d+ steps/);
    await page.screenshot({ path: ARTIFACTS + "gap-light-1280.png", fullPage: true });
    await page.locator('[data-testid="chart-gap"]').screenshot({ path: ARTIFACTS + "gap-chart-light.png" });

    // hovering reads out the exact values at the cursor's step
    for (const name of CHARTS) {
      const { text, idx, data } = await hover(page, name);
      assert.ok(idx != null, `${name}: the cursor is on a step`);
      assert.ok(text.includes(String(data[0])), `${name} readout names step ${data[0]}: ${text}`);
      for (const v of data.slice(1).filter((v) => v != null)) assert.ok(text.includes(exact(v)), `${name} readout shows ${exact(v)}: ${text}`);
    }
    const { text } = await hover(page, "loss");
    assert.match(text, /\d\.\d{6}/, "a loss with at least seven significant digits");
    await page.locator('[data-testid="chart-loss"]').screenshot({ path: ARTIFACTS + "gap-readout-loss.png" });

    // the logged loss: the gap chart follows the switch
    await page.click('[data-testid="loss-kind"]');
    assert.match(await page.textContent('[data-testid="chart-gap"] .u-title'), /logged loss − the full batch's/);
    const logged = await drawn("gap");
    gaps(c, "logged").forEach((ys, k) => ys.forEach((y, i) => assert.ok(y == null ? logged[k + 1][i] == null : Math.abs(logged[k + 1][i] - y) < 1e-12)));

    // the formatter as the page loads it, and the labels the live charts drew
    const inPage = await page.evaluate(async (url) => (await import(url)).tickLabels([5.5565, 5.557, 5.5575, 5.558], 0.0005), `${site.base}www/lab/numbers.js`);
    assert.deepEqual(inPage, ["5.5565", "5.557", "5.5575", "5.558"]);
    // and the sweep's figures (its gap axis read "0.001" twice)
    await page.click('[data-testid="sweep"]');
    await page.waitForFunction(() => deepQuery("gradlab-lab").panel.sweepCharts.plots().length === 2, null, { timeout: 300_000, polling: 500 });
    await page.locator('[data-testid="chart-sweep"]').screenshot({ path: ARTIFACTS + "gap-sweep-light.png" });
    const ticks = await page.evaluate(() => {
      const panel = deepQuery("gradlab-lab").panel;
      return [...panel.charts.plots(), ...panel.sweepCharts.plots()].flatMap(([name, p]) => p.axes.map((a, i) => ({ what: `${name} axis ${i}`, labels: a._values ?? [] })));
    });
    assert.equal(ticks.length, 13, "four live charts' axes, the sweep's three and two");
    for (const { what, labels } of ticks) {
      assert.ok(labels.some((l) => l !== ""), `${what} has labels`);
      assert.deepEqual(repeats(labels), [], `${what}: ${labels.join(" | ")}`);
    }

    // light, then dark: every chart text readable, the canvas redrawn in the new colour
    assertReadable(await chartColours(page), "light");
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForFunction(() => getComputedStyle(deepQuery(".gl-lab")).backgroundColor === "rgb(21, 27, 46)");
    const dark = await chartColours(page);
    assertReadable(dark, "dark");
    const drewDark = await page.evaluate(() => {
      // the axis text's pixels: the canvas's brightest pixel left of the plot is light in dark mode
      const p = deepQuery("gradlab-lab").panel.charts.lossPlot;
      const { left } = p.bbox;
      const px = p.ctx.getImageData(0, 0, Math.max(1, left), p.ctx.canvas.height).data;
      let max = 0;
      for (let i = 0; i < px.length; i += 4) if (px[i + 3] > 200) max = Math.max(max, px[i] + px[i + 1] + px[i + 2]);
      return max;
    });
    assert.ok(drewDark > 3 * 180, `the loss chart's axis text was redrawn light (brightest ${drewDark / 3})`);
    await page.screenshot({ path: ARTIFACTS + "gap-dark-1280.png", fullPage: true });
    await page.locator('[data-testid="chart-gap"]').screenshot({ path: ARTIFACTS + "gap-chart-dark.png" });
    await page.locator('[data-testid="chart-sweep"]').screenshot({ path: ARTIFACTS + "gap-sweep-dark.png" });
    for (const name of ["loss", "distance"]) await page.locator(`[data-testid="chart-${name}"]`).screenshot({ path: ARTIFACTS + `gap-${name}-dark.png` });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("on a phone: the token strip fits 390 px with whole labels, and a tap reads out a chart", async () => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--enable-unsafe-webgpu", ...QUIET] });
  try {
    for (const colorScheme of ["light", "dark"]) {
      const context = await browser.newContext({ viewport: { width: 390, height: 844 }, hasTouch: true, isMobile: true, colorScheme });
      const page = await context.newPage();
      await preparePage(page);
      const errors = [];
      page.on("pageerror", (e) => errors.push(String(e)));
      await page.goto(site.base + PHONE_LAB);
      await waitReady(page);
      await page.tap('[data-testid="step-once"]');
      await page.waitForFunction(() => deepQuery('[data-testid="token-weights"]').dataset.step === "1", null, { timeout: 60_000 });
      const strip = await page.evaluate(() => {
        const node = deepQuery('[data-testid="token-weights"]');
        const wide = [node, ...node.querySelectorAll("*")].filter((e) => e.getBoundingClientRect().right > innerWidth + 0.5).map((e) => `${e.className}: ${Math.round(e.getBoundingClientRect().right)}`);
        const cut = [...node.querySelectorAll(".gl-tw-label")].filter((e) => e.scrollWidth > e.clientWidth || e.scrollHeight > e.clientHeight).map((e) => e.textContent);
        const labels = [...node.querySelectorAll(".gl-tw-label")].map((e) => e.textContent);
        return { wide, cut, labels, scrollWidth: document.documentElement.scrollWidth };
      });
      assert.deepEqual(strip.wide, [], `${colorScheme}: strip elements past 390 px`);
      assert.deepEqual(strip.cut, [], `${colorScheme}: cut labels`);
      assert.ok(strip.scrollWidth <= 390, `page ${strip.scrollWidth} px wide`);
      assert.ok(strip.labels.some((l) => /^\d+\.\d\d× (naive|corrected) b=\d+, micro-batch \d+$/.test(l)), `the number first: ${strip.labels.slice(0, 4)}`);
      await page.locator('[data-testid="token-weights"]').screenshot({ path: ARTIFACTS + `gap-tokens-390-${colorScheme}.png` });

      // a tap on the loss chart shows the values at that step
      const over = page.locator('[data-testid="chart-loss"] .u-over');
      await over.evaluate((e) => e.scrollIntoView({ block: "center" }));
      const box = await over.boundingBox();
      await page.touchscreen.tap(box.x + box.width * 0.8, box.y + box.height / 2);
      const readout = await page.textContent('[data-testid="readout-loss"]');
      assert.match(readout, /\d\.\d{5}/, `a tap reads out the losses: ${readout}`);
      await page.locator('[data-testid="chart-loss"]').screenshot({ path: ARTIFACTS + `gap-loss-tap-390-${colorScheme}.png` });
      await page.locator('[data-testid="chart-gap"]').screenshot({ path: ARTIFACTS + `gap-chart-390-${colorScheme}.png` });
      await page.screenshot({ path: ARTIFACTS + `gap-phone-390-${colorScheme}.png`, fullPage: true });
      assert.deepEqual(errors, []);
      await context.close();
    }
  } finally {
    await browser.close();
  }
});
