// The article (www/explainer.html, issue 29) and its embeddable figures
// (<gradlab-figure>, www/figure.js): the article at 1280×900 and 390×844 in
// light and dark, without WebGPU, with no horizontal overflow, no console
// errors and nothing training until asked (screenshots in ARTIFACTS); every
// figure alone on a bare page under the strict policy; every external link
// listed in docs/links.txt; and the playground's opening run doing what the
// text says (GD, momentum and Adam end lower than they started, none diverged).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { ARTIFACTS, open, serveSite, site } from "./browser.mjs";

serveSite();

const ROOT = new URL("../../", import.meta.url);
const ARTICLE = readFileSync(new URL("www/explainer.html", ROOT), "utf8");
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";
const AFFECTED_SHIPPED = existsSync(new URL("dist/www/lab/affected.js", ROOT));

// The state the playground leaves on its surface (playground.js drawPaths).
const playgroundState = (page) =>
  page.evaluate(() => {
    const d = deepQuery('gradlab-playground [data-testid="surface"]')?.dataset;
    return d?.losses ? { steps: Number(d.steps), start: Number(d.startLoss), names: JSON.parse(d.names), losses: JSON.parse(d.losses), diverged: JSON.parse(d.diverged) } : null;
  });

// What the article's text promises of its playground after the opening run.
function assertPlaygroundAsTold(state) {
  assert.equal(state.steps, 600, "the default run is over");
  for (const name of ["GD", "Momentum", "Adam"]) {
    const i = state.names.indexOf(name);
    assert.ok(i >= 0, `${name} is drawn`);
    assert.ok(state.losses[i] < state.start, `${name} ends lower (${state.losses[i]}) than it started (${state.start})`);
  }
  assert.deepEqual(state.diverged, state.names.map(() => false), `none diverged: ${state.names}`);
}

const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

test("the article reads at 1280×900 and 390×844, light and dark, without WebGPU; nothing trains until asked", async () => {
  const { browser, page, errors } = await open("www/explainer.html", { webgpu: false });
  try {
    await page.setViewportSize({ width: 1280, height: 900 });
    // every figure drawn: the seed figures' canvases, the worked example's bars, the playground's run, the lab ready
    await page.waitForFunction(() => deepQueryAll("gradlab-figure canvas").length >= 2, null, { timeout: 60_000 });
    await page.waitForFunction(() => deepQuery('gradlab-figure [data-testid="token-weights"]')?.dataset.drawn === "1", null, { timeout: 60_000 });
    await page.waitForFunction(() => /ready/.test(deepQuery('gradlab-lab [data-testid="status"]')?.textContent ?? ""), null, { timeout: 180_000 });
    await page.waitForFunction(() => Number(deepQuery('gradlab-playground [data-testid="surface"]')?.dataset.steps) >= 600, null, { timeout: 60_000 });
    assertPlaygroundAsTold(await playgroundState(page));
    assert.equal(await page.locator("gradlab-lab").getAttribute("precision"), "both");
    assert.equal(await page.evaluate(() => Number(deepQuery('gradlab-lab [data-testid="step-count"]').textContent)), 0, "the lab waits for Start");
    assert.equal(await page.evaluate(() => deepQueryAll('[data-testid="run-yourself-progress"]').every((p) => p.hidden)), true, "no seed is re-run until asked");
    // the text alternatives state the results
    const labels = await page.evaluate(() => ["seed-figure-loss", "seed-figure-distance"].map((id) => deepQuery(`[data-testid="${id}"]`).getAttribute("aria-label")));
    assert.match(labels[0], /G = 16/);
    assert.match(labels[1], /G = 16/);
    for (const [width, height] of [[1280, 900], [390, 844]]) {
      for (const scheme of ["light", "dark"]) {
        await page.setViewportSize({ width, height });
        await page.emulateMedia({ colorScheme: scheme });
        await page.waitForTimeout(400);
        assert.ok((await overflow(page)) <= 0, `no horizontal overflow at ${width}×${height} ${scheme}: ${await overflow(page)} px`);
        await page.screenshot({ path: `${ARTIFACTS}explainer-${width}-${scheme}.png`, fullPage: true });
        // a phone's screenfuls where the figures are, to look at without a tall image
        if (width < 500) {
          for (const [k, sel] of ["gradlab-playground", 'gradlab-figure[name="token-weights"]', 'gradlab-figure[name="loss-vs-g"]', ".gl-table", "gradlab-lab"].entries()) {
            await page.locator(sel).first().scrollIntoViewIfNeeded();
            await page.screenshot({ path: `${ARTIFACTS}explainer-${width}-${scheme}-${k}.png` });
          }
        }
      }
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("with reduced motion the playground draws its run finished, without animating", async () => {
  const { browser, page, errors } = await open("www/explainer.html", { webgpu: false, before: (p) => p.emulateMedia({ reducedMotion: "reduce" }) });
  try {
    await page.waitForFunction(() => deepQuery('gradlab-playground [data-testid="surface"]')?.dataset.losses, null, { timeout: 60_000 });
    const state = await playgroundState(page);
    // no frame in between: the first drawing with losses is already the end
    assertPlaygroundAsTold(state);
    assert.equal(await page.evaluate(() => deepQuery('gradlab-playground [data-testid="pg-play"]').textContent), "Play", "not playing");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

// A page holding only `body` under the strict policy, served at `name` on our
// origin (so elements.js loads as a blog would load it).
async function bare(name, body) {
  const url = `${site.base}www/${name}`;
  const html = `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1"><link rel="icon" href="favicon.svg" type="image/svg+xml">
<title>bare</title><script type="module" src="elements.js"></script></head><body>${body}</body></html>`;
  return open(url, { webgpu: false, before: (p) => p.route(url, (route) => route.fulfill({ status: 200, contentType: "text/html", body: html })) });
}

const figureText = (page, sel) => page.evaluate((sel) => deepQuery(sel)?.textContent ?? null, sel);

test("every figure renders alone on a bare page, and says its result in words", async () => {
  const cases = [
    ["loss-vs-g", "", async (page) => {
      await page.waitForFunction(() => deepQuery('gradlab-figure [data-testid="seed-figure-loss"] canvas'), null, { timeout: 60_000 });
      assert.equal(await page.evaluate(() => deepQuery('gradlab-figure [data-testid="seed-figure-distance"]')), null, "the loss figure alone");
      assert.match(await page.evaluate(() => deepQuery('[data-testid="seed-figure-loss"]').getAttribute("aria-label")), /nats at G = 2, .* at G = 16/);
      assert.ok(await page.evaluate(() => deepQuery('gradlab-figure [data-testid="run-yourself"]')), "with Run it yourself");
    }],
    ["distance-vs-g", "", async (page) => {
      await page.waitForFunction(() => deepQuery('gradlab-figure [data-testid="seed-figure-distance"] canvas'), null, { timeout: 60_000 });
      assert.equal(await page.evaluate(() => deepQuery('gradlab-figure [data-testid="seed-figure-loss"]')), null, "the distance figure alone");
      assert.match(await page.evaluate(() => deepQuery('[data-testid="seed-figure-distance"]').getAttribute("aria-label")), /at G = 16; corrected/);
    }],
    ["token-weights", 'lengths="3,12"', async (page) => {
      await page.waitForFunction(() => deepQuery('gradlab-figure [data-testid="token-weights"]')?.dataset.drawn === "1", null, { timeout: 60_000 });
      const bars = await page.evaluate(() => ["naive", "corrected"].map((s) => deepQueryAll(`[data-strategy="${s}"]`).map((g) => [g.querySelectorAll(".gl-tw-bar").length, Number(g.dataset.weight)])));
      assert.deepEqual(bars[0].map(([n]) => n), [3, 12], "one bar per target token");
      assert.ok(Math.abs(bars[0][0][1] - 1 / 6) < 1e-12 && Math.abs(bars[0][1][1] - 1 / 24) < 1e-12, `naive weighs 1/6 and 1/24: ${bars[0]}`);
      assert.ok(bars[1].every(([, w]) => Math.abs(w - 1 / 15) < 1e-12), `corrected weighs 1/15: ${bars[1]}`);
      const caption = await figureText(page, "gradlab-figure figcaption");
      for (const part of ["1/6", "1/15", "2.5×", "1/24", "0.625×"]) assert.ok(caption.includes(part), `the caption says ${part}: ${caption}`);
    }],
    ["precision", "", async (page) => {
      await page.waitForFunction(() => /ready/.test(deepQuery('gradlab-figure [data-testid="status"]')?.textContent ?? ""), null, { timeout: 180_000 });
      assert.equal(await page.evaluate(() => deepQuery('gradlab-figure [data-testid="precision"]').value), "both");
      assert.match(await figureText(page, '[data-testid="precision-caption"]'), /not the arithmetic's/);
      assert.equal(await page.evaluate(() => Number(deepQuery('gradlab-figure [data-testid="step-count"]').textContent)), 0, "waits for Start");
    }],
    ["affected", "", async (page) => {
      // the calculator is another module: drawn where it ships, a clear line where it does not
      await page.waitForFunction(() => deepQuery('gradlab-figure [data-testid="affected"]')?.childElementCount > 0 || !deepQuery('gradlab-figure [data-testid="figure-error"]')?.hidden, null, { timeout: 60_000 });
      const error = await page.evaluate(() => deepQuery('gradlab-figure [data-testid="figure-error"]'));
      const shown = await page.evaluate(() => !deepQuery('gradlab-figure [data-testid="figure-error"]').hidden);
      if (AFFECTED_SHIPPED) assert.equal(shown, false, "the calculator loads");
      else assert.match(await figureText(page, 'gradlab-figure [data-testid="figure-error"]'), /"affected" calculator could not be loaded/, String(error));
    }],
    ["nope", "", async (page) => {
      await page.waitForFunction(() => deepQuery('gradlab-figure [data-testid="figure-error"]')?.hidden === false, null, { timeout: 30_000 });
      assert.match(await figureText(page, 'gradlab-figure [data-testid="figure-error"]'), /name="nope" is not a figure; name= takes one of loss-vs-g, distance-vs-g, token-weights, precision, affected/);
    }],
    ["token-weights", 'lengths="3,banana"', async (page) => {
      await page.waitForFunction(() => deepQuery('gradlab-figure [data-testid="figure-error"]')?.hidden === false, null, { timeout: 30_000 });
      assert.match(await figureText(page, 'gradlab-figure [data-testid="figure-error"]'), /lengths="3,banana" must be/);
      await page.waitForFunction(() => deepQuery('gradlab-figure [data-testid="token-weights"]')?.dataset.drawn === "1", null, { timeout: 60_000 });
    }],
  ];
  for (const [name, extra, check] of cases) {
    const file = `bare-${name}-${extra ? "b" : "a"}.html`;
    const { browser, page, errors } = await bare(file, `<gradlab-figure name="${name}" ${extra}></gradlab-figure>`);
    try {
      await page.setViewportSize({ width: 390, height: 844 });
      await check(page);
      assert.ok((await overflow(page)) <= 0, `${name}: no horizontal overflow on a phone`);
      await page.screenshot({ path: `${ARTIFACTS}figure-${name}${extra ? "-b" : ""}.png`, fullPage: true });
      // a missing calculator's module is a failed fetch the browser reports; nothing else may be
      const unexpected = errors.filter((e) => !(name === "affected" && !AFFECTED_SHIPPED && /affected\.js|Failed to load resource|404/.test(e)));
      assert.deepEqual(unexpected, [], name);
    } finally {
      await browser.close();
    }
  }
});

test("every external link in the article is listed in docs/links.txt with its title; the article links the lab", () => {
  const listed = new Map(
    readFileSync(new URL("docs/links.txt", ROOT), "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .map((line) => {
        const [url, title, ...rest] = line.split("\t");
        assert.ok(/^https:\/\//.test(url) && title?.trim() && rest.length === 0, `docs/links.txt: "URL<TAB>title" a line, got ${JSON.stringify(line)}`);
        return [url, title];
      }),
  );
  const external = [...ARTICLE.matchAll(/href="(https?:[^"]*)"/g)].map((m) => m[1].replace(/&amp;/g, "&"));
  assert.ok(external.length > 0);
  const missing = external.filter((u) => !listed.has(u));
  assert.deepEqual(missing, [], "links in www/explainer.html missing from docs/links.txt");
  // each title the article quotes is the one listed
  const flat = ARTICLE.replace(/\s+/g, " ");
  for (const [url, title] of listed) if (ARTICLE.includes(url)) assert.ok(flat.includes(title), `the article quotes ${url}'s title "${title}"`);
  assert.match(ARTICLE, /href="\.\.\/index\.html"/, "the article links the full lab");
});
