// The threads build's pool, survived (issue 32). A lab worker and each of
// its pool's workers hold a Web Lock while they live (www/lab/remote.js
// watchWorker); one that stops lets it go, and the page learns it at once,
// where no Worker event would say. Here: a pool worker ended mid-run, one
// trapping mid-step (a trap ends it: the threads build's workerHelpers.js,
// patched by scripts/build-site.mjs), and the lab worker itself closing,
// each turn into one named line and a lab
// that goes on training in a new worker on one thread; and four labs on an
// isolated page start no more pool workers, all together, than the cores.
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "../../scripts/serve.mjs";
import { ARTIFACTS, FAST, appendLab, open, serveSite, stepCount, waitForSteps, waitReady } from "./browser.mjs";

serveSite();
const isolated = { base: "" };
let server;
before(async () => {
  server = await startServer(0, "/gradlab/", undefined, { isolated: true });
  isolated.base = `http://127.0.0.1:${server.address().port}/gradlab/`;
});
after(() => server?.close());

// The page's lab workers (not the pool's), each with its pool's size.
async function labWorkers(page) {
  const found = [];
  for (const worker of page.workers()) {
    // a pool worker waits inside wasm for work and never answers: not a lab worker
    const silent = new Promise((r) => setTimeout(() => r(null), 2_000));
    const asked = worker.evaluate(() => (self.gradlabPoolLock === undefined ? null : (self.gradlabPoolWorkers?.length ?? 0))).catch(() => null);
    const pool = await Promise.race([asked, silent]);
    if (pool !== null) found.push({ worker, pool });
  }
  return found;
}

const errorLine = (page) => page.evaluate(() => deepQuery('gradlab-lab [data-testid="error"]').textContent);

// Trains on the isolated page until it steps on a pool of threads; runs
// `stop(labWorker)` mid-run; the lab must say so within 15 s and go on.
async function survives(t, stop, said) {
  const { browser, page, errors, uncaught } = await open(`${isolated.base}?${FAST}&device=cpu`);
  try {
    await waitReady(page);
    assert.match(await page.textContent('[data-testid="status"]'), /on 2 threads|on \d+ threads/, "the lab steps on a pool");
    await page.click('[data-testid="train-toggle"]');
    await waitForSteps(page, 8);
    const [lab] = (await labWorkers(page)).filter((w) => w.pool > 0);
    assert.ok(lab, "a lab worker with a pool");
    const at = await stepCount(page);
    await stop(lab.worker);
    const began = Date.now();
    await page.waitForFunction((said) => new RegExp(said, "i").test(deepQuery('gradlab-lab [data-testid="error"]').textContent), said.source, { timeout: 15_000 }).catch(async (e) => {
      const lines = await page.evaluate(() => [deepQuery('[data-testid="error"]').textContent, deepQuery('[data-testid="status"]').textContent, deepQuery('[data-testid="step-count"]').textContent, navigator.locks.query()]);
      t.diagnostic(`not said in 15 s: ${JSON.stringify(lines)}; ${JSON.stringify(errors)}`);
      throw e;
    });
    t.diagnostic(`said after ${(Date.now() - began) / 1000} s: ${await errorLine(page)}`);
    assert.match(await errorLine(page), /rebuilt in a new worker on one thread/);
    // trains on, on one thread
    await waitForSteps(page, at + 5, 60_000);
    const status = await page.textContent('[data-testid="status"]');
    assert.doesNotMatch(status, /threads/, `one thread now: ${status}`);
    assert.equal(await page.textContent('[data-testid="train-toggle"]'), "Pause");
    await page.screenshot({ path: `${ARTIFACTS}pool-survived.png` });
    assert.deepEqual(uncaught, []);
    assert.deepEqual(errors.filter((e) => !/a thread of the lab's pool stopped/.test(e)), []);
  } finally {
    await browser.close();
  }
}

test("a pool worker ended mid-run: named within 15 s, and the lab trains on in a new worker on one thread", { timeout: 300_000 }, async (t) => {
  await survives(t, (labWorker) => labWorker.evaluate(() => self.gradlabPoolWorkers[0].terminate()), /thread 1 of the lab's pool of \d+ stopped/);
});

test("a pool worker trapping mid-step: named within 15 s, and the lab trains on in a new worker on one thread", { timeout: 300_000 }, async (t) => {
  // the threads build's rehearsal (src/cpu/threads.rs): the next item a pool thread takes traps
  const trap = (labWorker) => labWorker.evaluate(async () => (await import(new URL("../../pkg-threads/gradlab.js", location.href))).rehearsePoolTrap());
  await survives(t, trap, /thread \d of the lab's pool of \d+ stopped/);
});

test("the lab worker closing itself mid-run: named within 15 s, and the lab trains on in a new worker", { timeout: 300_000 }, async (t) => {
  await survives(t, (labWorker) => labWorker.evaluate(() => setTimeout(() => self.close(), 0)), /The lab's worker stopped/);
});

test("four labs on an isolated page start at most hardwareConcurrency pool workers in total", { timeout: 300_000 }, async (t) => {
  const cores = 8;
  // the page counts 8 cores (the machine may have fewer): up to 4 lab workers, 8 threads
  const eight = (page) => page.addInitScript((n) => Object.defineProperty(Navigator.prototype, "hardwareConcurrency", { get: () => n }), cores);
  const { browser, page, errors } = await open(`${isolated.base}?${FAST}&device=cpu`, { before: eight });
  try {
    await waitReady(page);
    for (const id of ["b", "c", "d"]) await appendLab(page, id, { device: "cpu" });
    await page.waitForFunction(() => deepQueryAll('[data-testid="status"]').length === 4 && deepQueryAll('[data-testid="status"]').every((s) => /ready/.test(s.textContent)), null, { timeout: 120_000 });
    const found = await labWorkers(page);
    const pools = found.map((w) => w.pool);
    t.diagnostic(`lab workers ${found.length}, their pools ${JSON.stringify(pools)}`);
    assert.ok(found.length >= 2, "the labs are spread over several workers");
    assert.ok(pools.reduce((a, b) => a + b, 0) <= cores, `pool workers ${pools} in all, at most ${cores}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
