// Shared by the end-to-end test files (not a test file itself): serves the
// built site (dist/) under a sub-path, opens pages in Debian's headless
// Chromium through playwright-core (WebGPU on SwiftShader unless asked not
// to), and waits on the lab. Screenshots go to ARTIFACTS (test-artifacts/).
import assert from "node:assert/strict";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { before, after } from "node:test";
import { chromium } from "playwright-core";
import { startServer } from "../../scripts/serve.mjs";

export const ARTIFACTS = new URL("../../test-artifacts/", import.meta.url).pathname;
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
export const QUIET = ["--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
// small and fast on a software adapter
export const FAST = "scenario=custom&batch=4&micro=2&ctx=16&lr=0.01";

let server;
export const site = { base: "" };

// Every Content-Security-Policy violation any watched page reports; a file's
// tests fail at the end if there was one (each page declares a strict policy).
const cspViolations = [];

// Prepares `page` before it loads anything: records its CSP violations and
// gives it deepQuery(selector) / deepQueryAll(selector), querySelector that
// also looks inside open shadow roots (each gradlab element draws in one).
// A descendant combinator may cross into a shadow root, as in Playwright's
// own selectors: deepQuery('#lab-2 [data-testid="status"]').
export async function preparePage(page) {
  await page.addInitScript(() => {
    const roots = (root, out = [root]) => {
      for (const e of root.querySelectorAll("*")) {
        if (!e.shadowRoot) continue;
        out.push(e.shadowRoot);
        roots(e.shadowRoot, out);
      }
      return out;
    };
    // the parent, or the host of a shadow root's top element
    const up = (e) => e.parentElement ?? e.getRootNode().host ?? null;
    const within = (e, outer) => {
      let node = up(e);
      for (const sel of outer) {
        while (node && !node.matches(sel)) node = up(node);
        if (!node) return false;
        node = up(node);
      }
      return true;
    };
    window.deepQueryAll = (selector) => {
      const parts = selector.trim().split(/\s+(?![^[]*\])/);
      const last = parts.pop();
      const outer = parts.reverse(); // nearest ancestor first
      return roots(document).flatMap((r) => [...r.querySelectorAll(last)]).filter((e) => within(e, outer));
    };
    window.deepQuery = (selector) => window.deepQueryAll(selector)[0] ?? null;
  });
  await watchCsp(page);
}

// Records `page`'s CSP violations (call before it loads anything).
async function watchCsp(page) {
  await page.addInitScript(() =>
    document.addEventListener("securitypolicyviolation", (e) =>
      console.error(`CSP violation: ${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`),
    ),
  );
  page.on("console", (m) => m.type() === "error" && /^CSP violation|Content Security Policy/.test(m.text()) && cspViolations.push(`${page.url()}: ${m.text()}`));
}

// Starts the site's server before the file's tests and stops it after.
export function serveSite() {
  before(async () => {
    assert.ok(existsSync(new URL("../../dist/index.html", import.meta.url)), "run `npm run build` first");
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await startServer(0);
    site.base = `http://127.0.0.1:${server.address().port}/gradlab/`;
  });
  after(() => {
    server?.close();
    assert.deepEqual(cspViolations, [], "no page may break its Content-Security-Policy");
  });
}

// Opens `path` (under the site, or a whole URL) in a new headless Chromium.
// `errors`: console errors and uncaught ones; `uncaught`: only the latter.
// `before(page)` runs before the page loads (init scripts).
export async function open(path, { webgpu = true, before: prepare } = {}) {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", ...QUIET, ...(webgpu ? ["--enable-unsafe-webgpu"] : [])],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
    const errors = [];
    const uncaught = [];
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("pageerror", (e) => {
      errors.push(String(e));
      uncaught.push(String(e));
    });
    await preparePage(page);
    await prepare?.(page);
    await page.goto(/^https?:/.test(path) ? path : site.base + path);
    return { browser, page, errors, uncaught };
  } catch (e) {
    await browser.close();
    throw e;
  }
}

// Keeps every GPU device the page opens in window.gpuDevices, to count them
// or to destroy them from a test. Pass as open()'s `before`.
export const recordGpuDevices = (page) =>
  page.addInitScript(() => {
    window.gpuDevices = [];
    const request = GPUAdapter.prototype.requestDevice;
    GPUAdapter.prototype.requestDevice = async function (...args) {
      const device = await request.apply(this, args);
      window.gpuDevices.push(device);
      return device;
    };
  });

// How many GPU devices the page and its workers have opened: the lab worker
// (www/lab/worker.js) keeps its own in self.gpuDevices; the page's are counted
// when it was opened with recordGpuDevices.
export async function gpuDeviceCount(page) {
  let n = await page.evaluate(() => window.gpuDevices?.length ?? 0);
  for (const worker of page.workers()) n += await worker.evaluate(() => self.gpuDevices?.length ?? 0);
  return n;
}

// Destroys every GPU device the page and its workers opened, as a GPU reset would.
export async function destroyGpuDevices(page) {
  await page.evaluate(() => window.gpuDevices?.forEach((d) => d.destroy()));
  for (const worker of page.workers()) await worker.evaluate(() => self.gpuDevices?.forEach((d) => d.destroy()));
}

// Appends a second <gradlab-lab id=`id`> with the FAST settings (and `extra`
// attributes) to the page.
export const appendLab = (page, id, extra = {}) =>
  page.evaluate(({ id, fast, extra }) => {
    const lab = document.createElement("gradlab-lab");
    lab.id = id;
    for (const kv of fast.split("&")) lab.setAttribute(...kv.split("="));
    for (const [k, v] of Object.entries(extra)) lab.setAttribute(k, v);
    document.body.append(lab);
  }, { id, fast: FAST, extra });

// Where the lab's runs start, as its "Start from:" line says.
export const weightsSource = (page) => page.textContent('[data-testid="weights-source"]');

// The lab's scenarios (www/lab/scenarios.json), the page's default first.
export const SCENARIOS = JSON.parse(readFileSync(new URL("../../www/lab/scenarios.json", import.meta.url), "utf8")).scenarios;

export const stepCount = (page) => page.$eval('[data-testid="step-count"]', (e) => Number(e.textContent));
export const curves = (page, sel = "gradlab-lab") => page.$eval(sel, (e) => e.curves());

// Whether the page's WebGPU adapter is a software renderer, judged here from
// its name (independently of the page's own test, www/wasm.js softwareAdapter).
export async function softwareAdapter(page) {
  return page.evaluate(async () => {
    const info = (await navigator.gpu?.requestAdapter())?.info;
    return /swiftshader|llvmpipe|lavapipe/i.test(`${info?.vendor} ${info?.architecture} ${info?.description}`);
  });
}

export async function waitForSteps(page, n, timeout = 240_000) {
  await page.waitForFunction((n) => Number(deepQuery('[data-testid="step-count"]').textContent) >= n, n, { timeout, polling: 250 });
}

// Every lab's "Advanced" fold is then opened, as a reader would to reach
// the controls the scenario does not put beside the charts.
export async function waitReady(page) {
  // (the element may not be defined yet: its module is still loading)
  await page.waitForFunction(() => /ready|steps\/s/.test(deepQuery('[data-testid="status"]')?.textContent ?? ""), null, { timeout: 120_000 });
  await openAdvanced(page);
}

// Opens every lab's "Advanced" fold (its controls are hidden while folded).
export const openAdvanced = (page) => page.evaluate(() => deepQueryAll('[data-testid="advanced"]').forEach((d) => (d.open = true)));

// Trains the page's first lab for at least `n` steps and pauses it; resolves
// once the step that was in flight at Pause has landed, so the curves hold
// still from then on.
export async function trainFor(page, n) {
  await waitReady(page);
  await page.click('[data-testid="train-toggle"]');
  await waitForSteps(page, n);
  await page.click('[data-testid="train-toggle"]');
  await page.waitForFunction((n) => deepQuery("gradlab-lab").curves().step.length >= n, n, { timeout: 60_000 });
  // every lab call goes through the training's Serial queue: an empty task
  // at its tail runs after the last step
  await page.evaluate(() => deepQuery("gradlab-lab").panel.training.serial.run(() => {}));
}
