// Threads in the browser (issue 10): served cross-origin isolated (COOP and
// COEP, scripts/serve.mjs), the lab worker loads pkg-threads/ and its f32 CPU
// backend shares each step among a pool of Web Workers; served as a plain
// static host serves it, the same page trains on one thread. The work is cut
// so that each number is summed by one thread in one order
// (src/cpu/threads.rs), so both must train the same runs to the same bits.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../../scripts/serve.mjs";
import { FAST, curves, open, serveSite, site, trainFor } from "./browser.mjs";

serveSite();
const isolated = { base: "" };
let server;
before(async () => {
  server = await startServer(0, "/gradlab/", undefined, { isolated: true });
  isolated.base = `http://127.0.0.1:${server.address().port}/gradlab/`;
});
after(() => server?.close());

// products above the split into rows (2^20 multiply-adds: 4 x 64 rows x 64
// x 256) and below it, three runs stepping at once
const SETTINGS = "device=cpu&batch=16&micro=4&ctx=64&lr=0.003&packing=padded&mask=1";

// Trains `query` for `steps` on the plain server and then the isolated one;
// `check(where, status, page)` asserts what each should show. Resolves to
// each page's curves, cut by `pick(run)`, keyed by where.
async function plainThenIsolated(t, query, steps, pick, check) {
  const seen = {};
  for (const [where, base] of [["plain", site.base], ["isolated", isolated.base]]) {
    const { browser, page, errors } = await open(`${base}?${query}`);
    try {
      await trainFor(page, steps);
      const status = await page.textContent('[data-testid="status"]');
      t.diagnostic(`${where}: ${status}`);
      await check(where, status, page);
      seen[where] = (await curves(page)).runs.map(pick);
      assert.ok(seen[where].every((r) => r.logged.length === steps && r.logged.every(Number.isFinite)), JSON.stringify(seen[where]));
      assert.deepEqual(errors, []);
    } finally {
      await browser.close();
    }
  }
  return seen;
}

test("an isolated page trains the CPU lab on threads, to the same bits as a plain page on one", async (t) => {
  const pick = (r) => ({ logged: r.logged.slice(0, 4), true: r.true.slice(0, 4), dist: r.dist.slice(0, 4) });
  const seen = await plainThenIsolated(t, SETTINGS, 4, pick, async (where, status, page) => {
    const { crossOriginIsolated, cores } = await page.evaluate(() => ({ crossOriginIsolated, cores: navigator.hardwareConcurrency }));
    if (where === "isolated") {
      assert.equal(crossOriginIsolated, true, "served with COOP and COEP, the page is cross-origin isolated");
      const threads = Math.min(cores, 8);
      if (threads > 1) assert.match(status, new RegExp(`^CPU \\(f32, SIMD\\) on ${threads} threads`), "the status line names the threads");
      else t.diagnostic("one core here: the page has no threads to use, so this compares one thread with one");
    } else {
      assert.equal(crossOriginIsolated, false);
      assert.match(status, /^CPU \(f32, SIMD\) · /, "one thread: no count in the status line");
    }
  });
  assert.deepEqual(seen.isolated, seen.plain, "threads change no bit of any loss or distance");
});

// `node scripts/serve.mjs` (the main job's server) isolates the pages, so a
// GPU lab there runs in the threads build's worker too: wgpu in a module on
// shared memory
test("an isolated page trains on WebGPU from the threads build, to the same losses as a plain page", async (t) => {
  const pick = (r) => ({ logged: r.logged.slice(0, 4) });
  const seen = await plainThenIsolated(t, `${FAST}&device=webgpu`, 4, pick, (where, status) => assert.match(status, /^WebGPU/));
  assert.deepEqual(seen.isolated, seen.plain, "the same kernels on the same adapter: the same losses");
});

// Where the threads build cannot start, the isolated page falls back to pkg/
// and says why in the console: its module not fetched, or its pool's workers
// not loaded (initThreadPool would wait for ever; the worker gives up after 10 s).
test("an isolated page whose threads build cannot start trains on one thread", async (t) => {
  for (const blocked of ["**/pkg-threads/gradlab_bg.wasm", "**/workerHelpers.js"]) {
    const block = (page) => page.context().route(blocked, (route) => route.abort());
    const { browser, page, errors } = await open(`${isolated.base}?${FAST}&device=cpu`, { before: block });
    const warnings = [];
    page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
    try {
      await trainFor(page, 2);
      const status = await page.textContent('[data-testid="status"]');
      t.diagnostic(`${blocked} blocked: ${status}`);
      assert.match(status, /^CPU \(f32, SIMD\) · /, "one thread: no count in the status line");
      assert.ok(warnings.some((w) => w.includes("the threads build (pkg-threads/) could not start")), `the console says why: ${JSON.stringify(warnings)}`);
      const c = await curves(page);
      assert.ok(c.runs.every((r) => r.logged.length >= 2 && r.logged.every(Number.isFinite)), "the lab trained");
      // the blocked request itself is the only error
      assert.deepEqual(errors.filter((e) => !/Failed to load resource|net::ERR_FAILED|workerHelpers/.test(e)), []);
    } finally {
      await browser.close();
    }
  }
});
