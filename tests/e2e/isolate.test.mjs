// Hosting (issue 30): on a host that sends no COOP/COEP headers (GitHub
// Pages), a site built with --isolate (scripts/isolate.mjs) registers the
// service worker www/isolate-sw.js, which adds them, and reloads once: the
// page is then cross-origin isolated and the CPU lab trains on threads. A
// plain build on the same host is untouched: no worker, one thread. Each
// site is a copy of dist/ in a temporary folder, served as a plain static
// host serves it; each page opens in a fresh browser, as a worker's
// registration outlives its page.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { startServer } from "../../scripts/serve.mjs";
import { isolateSite } from "../../scripts/isolate.mjs";
import { ARTIFACTS, FAST, open, serveSite, trainFor } from "./browser.mjs";

serveSite();
const dist = fileURLToPath(new URL("../../dist/", import.meta.url));
const QUERY = `?${FAST}&device=cpu`;
const GAVE_UP = "still not cross-origin isolated";
const sites = {};
// each site's pages as its server was asked for them, in order: a reload
// comes before the first load has finished, so the browser's load events
// would miss it
const documents = {};
const servers = [];
let temp;

before(async () => {
  assert.ok(!readFileSync(join(dist, "index.html"), "utf8").includes("isolate.js"), "dist/ was built with --isolate: build it plain (npm run build) for the tests");
  temp = mkdtempSync(join(tmpdir(), "gradlab-isolate-"));
  // the npm package's files are not the site's
  const site = (src) => !src.startsWith(join(dist, "npm")) && !src.endsWith(".tgz");
  for (const name of ["plain", "isolated", "refused"]) {
    const dir = join(temp, name);
    cpSync(dist, dir, { recursive: true, filter: site });
    if (name !== "plain") isolateSite(dir);
    // a browser that takes no headers from a service worker, as far as the
    // page can tell: a worker that takes the page and adds nothing
    if (name === "refused") {
      writeFileSync(
        join(dir, "isolate-sw.js"),
        'self.addEventListener("install", () => self.skipWaiting());\nself.addEventListener("activate", (e) => e.waitUntil(self.clients.claim()));\n',
      );
    }
    const server = await startServer(0, "/gradlab/", dir, { isolated: false });
    servers.push(server);
    documents[name] = [];
    server.on("request", (req) => /\/$|\.html$/.test(new URL(req.url, "http://host").pathname) && documents[name].push(req.url));
    sites[name] = `http://127.0.0.1:${server.address().port}/gradlab/`;
  }
});
after(() => {
  for (const server of servers) server.close();
  if (temp) rmSync(temp, { recursive: true, force: true });
});

// Opens site `name`'s page `path` in a fresh browser, keeping its console
// warnings; `loads` is the site's list of documents fetched.
async function openSite(name, path) {
  const warnings = [];
  const watch = (page) => page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
  return { ...(await open(sites[name] + path, { before: watch })), loads: documents[name], warnings };
}

// Waits until the page has fetched `n` documents, then for the last one's load.
async function waitForLoads(page, loads, n, timeout = 60_000) {
  const until = Date.now() + timeout;
  while (loads.length < n) {
    assert.ok(Date.now() < until, `the page fetched ${loads.length} document(s), not ${n}, in ${timeout / 1000} s`);
    await page.waitForTimeout(100);
  }
  await page.waitForLoadState("load");
}

const workers = (page) => page.evaluate(async () => (await navigator.serviceWorker.getRegistrations()).map((r) => r.active?.scriptURL));

test("built with --isolate, a page on a host without COOP/COEP reloads once through its service worker, isolated, and trains on threads", async (t) => {
  const { browser, page, errors, uncaught, loads, warnings } = await openSite("isolated", QUERY);
  try {
    await waitForLoads(page, loads, 2);
    const { isolated, cores, navigation } = await page.evaluate(() => ({
      isolated: crossOriginIsolated,
      cores: navigator.hardwareConcurrency,
      navigation: performance.getEntriesByType("navigation")[0].type,
    }));
    assert.equal(isolated, true, "cross-origin isolated after the reload");
    assert.equal(navigation, "reload");
    assert.deepEqual(await workers(page), [`${sites.isolated}isolate-sw.js?skip=www/bench.html`], "one worker, at the site's root");

    await trainFor(page, 2);
    const status = await page.textContent('[data-testid="status"]');
    t.diagnostic(`isolated by the service worker: ${status}`);
    const threads = Math.min(cores, 8);
    if (threads > 1) assert.match(status, new RegExp(`^CPU \\(f32, SIMD\\) on ${threads} threads`), "the status line names the threads");
    else t.diagnostic("one core here: the page has no threads to use");
    await page.screenshot({ path: ARTIFACTS + "isolate-threads.png", fullPage: true });
    assert.equal(loads.length, 2, `one reload only: ${JSON.stringify(loads)}`);

    // the article is isolated from its first load, the worker already in place
    await page.goto(sites.isolated + "www/explainer.html");
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, "the article, isolated");
    // the benchmark, under the same worker, is left as the host sends it: it
    // times one thread against one thread
    await page.goto(sites.isolated + "www/bench.html");
    assert.equal(await page.evaluate(() => crossOriginIsolated), false, "the benchmark page, not isolated");
    await page.waitForTimeout(500);
    assert.equal(loads.length, 4, `neither reloaded: ${JSON.stringify(loads)}`);

    assert.deepEqual(uncaught, []);
    assert.deepEqual(errors, []);
    assert.ok(!warnings.some((w) => w.includes(GAVE_UP)), JSON.stringify(warnings));
  } finally {
    await browser.close();
  }
});

test("a plain build on the same host is as it was: no service worker, not isolated, one thread", async (t) => {
  const { browser, page, errors, loads } = await openSite("plain", QUERY);
  try {
    await trainFor(page, 2);
    const status = await page.textContent('[data-testid="status"]');
    t.diagnostic(`plain: ${status}`);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    assert.equal(await page.$('script[src*="isolate"]'), null, "the page does not include isolate.js");
    assert.deepEqual(await workers(page), [], "no service worker");
    assert.deepEqual(page.context().serviceWorkers(), []);
    assert.match(status, /^CPU \(f32, SIMD\) · /, "one thread: no count in the status line");
    assert.equal(loads.length, 1, "no reload");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("where the worker's headers do not isolate the page, it reloads once, says why, and trains on one thread", async () => {
  const { browser, page, errors, loads, warnings } = await openSite("refused", QUERY);
  try {
    await waitForLoads(page, loads, 2);
    assert.equal(await page.evaluate(() => crossOriginIsolated), false);
    await trainFor(page, 2);
    assert.match(await page.textContent('[data-testid="status"]'), /^CPU \(f32, SIMD\) · /, "one thread: no count in the status line");
    assert.equal(warnings.filter((w) => w.includes(GAVE_UP)).length, 1, `one warning: ${JSON.stringify(warnings)}`);
    // the next page of the tab does not try again
    await page.goto(sites.refused + "www/explainer.html");
    await page.waitForTimeout(1000);
    assert.equal(loads.length, 3, `no reload loop: ${JSON.stringify(loads)}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
