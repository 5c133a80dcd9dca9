// Loud failures (issue 30): a file the elements need that cannot load is
// said in the element's own error line within 5 s, naming its URL and what
// came back, never an endless "Loading…". The faults are made by answering
// the request otherwise (Playwright's routing): the wasm module answered
// with the site's index.html, as a single-page app's fallback route does; the
// lab worker's script a 404 (the lab then trains on the page's thread, and
// says so); the corpus a 404; a style sheet a 404.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARTIFACTS, FAST, open, serveSite } from "./browser.mjs";

serveSite();

const HTML = "<!doctype html><html><head><title>Some blog</title></head><body>index.html</body></html>";

// Opens the page with `path` (a glob) answered by `answer`, and resolves to
// the error line's text once it names `expected` (5 s at most).
async function failing(glob, answer, { query = FAST, selector = 'gradlab-lab [data-testid="error"]' } = {}) {
  const opened = await open(`index.html?${query}&device=cpu`, {
    before: (page) => page.context().route(glob, (route) => route.fulfill(answer)),
  });
  const began = Date.now();
  const read = () => opened.page.evaluate((sel) => deepQuery(sel)?.textContent ?? "", selector);
  // the page's own start (the wasm compiled, the worker started) counts in the 5 s
  await opened.page.waitForFunction((sel) => Boolean(deepQuery(sel)?.textContent), selector, { timeout: 5_000 }).catch(() => {});
  return { ...opened, text: await read(), seconds: (Date.now() - began) / 1000 };
}

test("the wasm module answered with HTML: the error line names its URL and says the server answered with index.html", async () => {
  const { browser, page, text, seconds } = await failing("**/pkg/gradlab_bg.wasm", { status: 200, contentType: "text/html", body: HTML });
  try {
    console.log(`error line after ${seconds} s: ${text}`);
    assert.match(text, /pkg\/gradlab_bg\.wasm/, "names the URL");
    assert.match(text, /got text\/html, not wasm: is the server answering every path with index\.html\?/);
    assert.ok(seconds <= 5, `within 5 s (${seconds} s)`);
    const status = await page.evaluate(() => deepQuery('gradlab-lab [data-testid="status"]').textContent);
    assert.doesNotMatch(status, /Loading/, "not left at Loading…");
    // the playground too
    assert.match(await page.evaluate(() => deepQuery("gradlab-playground .gl-error")?.textContent ?? ""), /pkg\/gradlab_bg\.wasm.*text\/html/);
    await page.screenshot({ path: `${ARTIFACTS}loadfail-wasm.png` });
  } finally {
    await browser.close();
  }
});

test("the lab worker's script is a 404: the error line names it and its status, and the lab trains on the page's thread", async () => {
  const { browser, page, text, seconds, uncaught } = await failing("**/www/lab/worker.js", { status: 404, contentType: "text/plain", body: "not found" });
  try {
    console.log(`error line after ${seconds} s: ${text}`);
    assert.match(text, /No lab worker could start/);
    assert.match(text, /www\/lab\/worker\.js/, "names the URL");
    assert.match(text, /HTTP 404/);
    assert.ok(seconds <= 5, `within 5 s (${seconds} s)`);
    await page.waitForFunction(() => /ready/.test(deepQuery('gradlab-lab [data-testid="status"]').textContent), null, { timeout: 60_000 });
    assert.match(await page.evaluate(() => deepQuery('gradlab-lab [data-testid="status"]').textContent), /on the page's thread/);
    await page.click('gradlab-lab [data-testid="train-toggle"]');
    await page.waitForFunction(() => Number(deepQuery('[data-testid="step-count"]').textContent) >= 3, null, { timeout: 120_000 });
    assert.deepEqual(uncaught, []);
  } finally {
    await browser.close();
  }
});

test("the corpus is a 404: the error line names its URL and the status", async () => {
  const { browser, text, seconds } = await failing("**/data/corpus/kjv-genesis-ruth.txt", { status: 404, contentType: "text/plain", body: "not found" });
  try {
    console.log(`error line after ${seconds} s: ${text}`);
    assert.match(text, /corpus .*could not be loaded from \S*data\/corpus\/kjv-genesis-ruth\.txt \(HTTP 404/);
    assert.ok(seconds <= 5, `within 5 s (${seconds} s)`);
  } finally {
    await browser.close();
  }
});

test("a style sheet is a 404: the element says so above its unstyled panel", async () => {
  const { browser, text, seconds } = await failing("**/www/elements.css", { status: 404, contentType: "text/plain", body: "not found" }, { selector: 'gradlab-lab [data-testid="style-error"]' });
  try {
    console.log(`style error after ${seconds} s: ${text}`);
    assert.match(text, /styles could not be loaded from \S*www\/elements\.css \(HTTP 404/);
    assert.ok(seconds <= 5, `within 5 s (${seconds} s)`);
  } finally {
    await browser.close();
  }
});

test("the plain site loads with none of those lines", async () => {
  const { browser, page, errors } = await open(`index.html?${FAST}&device=cpu`);
  try {
    await page.waitForFunction(() => /ready/.test(deepQuery('gradlab-lab [data-testid="status"]').textContent), null, { timeout: 60_000 });
    const lines = await page.evaluate(() => ({
      error: deepQuery('gradlab-lab [data-testid="error"]').textContent,
      style: deepQuery('[data-testid="style-error"]')?.textContent ?? null,
      status: deepQuery('gradlab-lab [data-testid="status"]').textContent,
    }));
    assert.equal(lines.style, null);
    assert.doesNotMatch(lines.error, /could not|No lab worker/);
    assert.doesNotMatch(lines.status, /page's thread/);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
