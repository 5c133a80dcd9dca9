// "Does this affect my training?" (issue 29): the calculator panel
// (www/lab/affected.js) mounted on a bare page of the served site, as
// <gradlab-figure name="affected"> mounts it: its answer for an input is the
// CLI's `gradlab affected --json` for the same input, the case worked by
// hand reads as such, bad input is named, a file is read locally.
// Needs the site built (`npm run build`) and the release CLI
// (`cargo build --release --bin gradlab`).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { ARTIFACTS, open, serveSite, site } from "./browser.mjs";

serveSite();

const CLI = new URL("../../target/release/gradlab", import.meta.url).pathname;
const cli = (...args) => {
  assert.ok(existsSync(CLI), "run `cargo build --release --bin gradlab` first");
  return JSON.parse(execFileSync(CLI, ["affected", ...args, "--json"], { encoding: "utf8" }));
};

// A same-origin page with the site's policy and nothing else on it, the
// panel mounted in a shadow root where www/elements.css applies, with the
// host's attributes `attrs`; `window.panel` is the panel.
async function mount(attrs = {}) {
  const opened = await open(`${site.base}affected-test-page`);
  const { page } = opened;
  await page.setContent(
    `<!doctype html><html><head><meta http-equiv="Content-Security-Policy" content="default-src 'self'; script-src 'self' 'wasm-unsafe-eval'"></head>` +
      `<body><div id="host"></div></body></html>`,
  );
  await page.evaluate(
    async ({ base, attrs }) => {
      const shadow = document.getElementById("host").attachShadow({ mode: "open" });
      const css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = `${base}www/elements.css`;
      const root = document.createElement("div");
      shadow.append(css, root);
      const { AffectedPanel } = await import(`${base}www/lab/affected.js`);
      window.panel = new AffectedPanel(root, (name) => attrs[name] ?? null);
      await window.panel.ready;
    },
    { base: site.base, attrs },
  );
  return opened;
}

const answer = (page) => page.evaluate(() => window.panel.answer());
const text = (page, id) => page.getByTestId(id).textContent();
// the navigation's own 404 is the only error allowed
const real = (errors) => errors.filter((e) => !/404|Not Found/i.test(e));

test("the panel's answer is the CLI's, and the 3,12 case reads as worked by hand", async () => {
  const { browser, page, errors } = await mount({ lengths: "3,12", micro: "1" });
  try {
    const ours = await answer(page);
    assert.deepEqual(ours, cli("--lengths", "3,12", "--micro-batch", "1"));
    // N = 15, G = 2: 1/(2·3) and 1/(2·12) against 1/15
    assert.deepEqual(ours.naive, [2.5, 0.625]);
    assert.deepEqual(ours.local, [1, 1]);
    assert.match(await text(page, "affected-verdict"), /^Yes: naive weighs 100% of your tokens/);
    const summary = await page.getByTestId("affected-summary").locator("tbody tr").allTextContents();
    assert.match(summary[0], /^naive2\.50×0\.625×2\.50×100%/);
    const rows = await page.getByTestId("affected-examples").locator("tbody tr").allTextContents();
    assert.deepEqual(rows, ["000032.50×1.00×", "1010120.625×1.00×"]);
    assert.equal(await page.getByTestId("affected-chart").locator(".gl-affected-bin").count(), 8, "a header and 7 bins");
    await page.screenshot({ path: ARTIFACTS + "affected.png", fullPage: true });
    await page.emulateMedia({ colorScheme: "dark" });
    await page.waitForTimeout(200);
    await page.screenshot({ path: ARTIFACTS + "affected-dark.png", fullPage: true });
    assert.deepEqual(real(errors), []);
  } finally {
    await browser.close();
  }
});

test("B, b and R typed in agree with the CLI over several steps and two devices", async () => {
  const lengths = "2,6,4,8,5,5,5,5,30,1,1,1,9";
  const { browser, page, errors } = await mount();
  try {
    await page.getByTestId("affected-lengths").fill(lengths);
    await page.getByTestId("affected-batch").fill("4");
    await page.getByTestId("affected-micro").fill("1");
    await page.getByTestId("affected-ranks").fill("2");
    await page.waitForFunction(() => window.panel.answer()?.ranks === 2 && window.panel.answer()?.batch === 4);
    const ours = await answer(page);
    assert.deepEqual(ours, cli("--lengths", lengths, "--batch", "4", "--ranks", "2"));
    // the first step by hand: N = 20, ranks of 8 and 12 tokens
    assert.deepEqual(ours.local.slice(0, 4), [1.25, 1.25, 20 / 24, 20 / 24]);
    assert.equal(ours.examples_left_over, 1);
    assert.match(await text(page, "affected-note"), /1 example past the last whole step left out/);
    await page.screenshot({ path: ARTIFACTS + "affected-ranks.png", fullPage: true });
    assert.deepEqual(real(errors), []);
  } finally {
    await browser.close();
  }
});

test("bad input is named in words and clears the answer", async () => {
  const { browser, page, errors } = await mount({ lengths: "3,4,5" });
  try {
    const error = page.getByTestId("affected-error");
    const shows = async (pattern) => {
      await page.waitForFunction((re) => new RegExp(re).test(deepQuery('[data-testid="affected-error"]')?.textContent ?? ""), pattern.source);
      assert.match(await error.textContent(), pattern);
      assert.equal(await answer(page), null);
    };
    await page.getByTestId("affected-micro").fill("2");
    await shows(/^Micro-batch b: 2 does not divide the batch B = 3/);
    await page.getByTestId("affected-micro").fill("1");
    await page.getByTestId("affected-ranks").fill("2");
    await shows(/^Devices R: 2 ranks cannot share G = B\/b = 3/);
    await page.getByTestId("affected-ranks").fill("1");
    await page.getByTestId("affected-lengths").fill("3, four, 5");
    await shows(/^Lengths: item 2 is "four"/);
    await page.getByTestId("affected-lengths").fill("3,4,5");
    await page.getByTestId("affected-batch").fill("0");
    await shows(/^Batch B: must be a whole number of at least 1/);
    await page.screenshot({ path: ARTIFACTS + "affected-error.png", fullPage: true });
    await page.getByTestId("affected-batch").fill("");
    await page.waitForFunction(() => window.panel.answer() !== null);
    assert.equal(await error.isVisible(), false);
    assert.deepEqual(real(errors), []);
  } finally {
    await browser.close();
  }
});

test("a JSONL file is read here, its prompts masked or not, as the CLI reads it", async () => {
  const lines = [
    { prompt: "Q: what is 2 + 2?", completion: " 4" },
    { prompt: "Q: name a colour.", completion: " A deep and quiet blue." },
    { text: "A whole document with no prompt at all." },
    { messages: [{ role: "user", content: "hi" }, { role: "assistant", content: "hello there" }] },
  ];
  const jsonl = lines.map((l) => JSON.stringify(l)).join("\n") + "\n";
  const { browser, page, errors } = await mount({ micro: "1" });
  try {
    await page.getByTestId("affected-file").setInputFiles({ name: "mine.jsonl", mimeType: "application/jsonl", buffer: Buffer.from(jsonl) });
    await page.waitForFunction(() => window.panel.answer()?.lengths.length === 4);
    const { writeFileSync, mkdtempSync } = await import("node:fs");
    const dir = mkdtempSync("/tmp/gradlab-affected-");
    writeFileSync(`${dir}/mine.jsonl`, jsonl);
    assert.deepEqual(await answer(page), cli("--lengths-file", `${dir}/mine.jsonl`, "--micro-batch", "1"));
    await page.getByTestId("affected-mask").check();
    await page.waitForFunction(() => window.panel.answer()?.lengths[0] === 2);
    const masked = await answer(page);
    assert.deepEqual(masked, cli("--lengths-file", `${dir}/mine.jsonl`, "--micro-batch", "1", "--mask-prompt"));
    assert.deepEqual(masked.lengths, [2, 23, 38, 11]);
    assert.match(await text(page, "affected-note"), /mine\.jsonl: 4 examples/);
    assert.deepEqual(real(errors), []);
  } finally {
    await browser.close();
  }
});

test("a file past the caps is cut where the panel says, and the page stays responsive", async () => {
  // 10 MB of counts: the first 8 MiB are read, of them the first 100,000 used
  const big = Buffer.from("5\n17\n".repeat(2_000_000));
  const { browser, page, errors } = await mount({ batch: "16", micro: "2" });
  try {
    const began = Date.now();
    await page.getByTestId("affected-file").setInputFiles({ name: "big.txt", mimeType: "text/plain", buffer: big });
    await page.waitForFunction(() => window.panel.answer()?.lengths.length === 100_000, null, { timeout: 30_000 });
    const note = await text(page, "affected-note");
    assert.match(note, /only the first 8 MiB of 9\.5 MiB read/);
    assert.match(note, /only the first 100,000 used/);
    assert.equal(await page.getByTestId("affected-examples").locator("tbody tr").count(), 100, "only the first rows are drawn");
    assert.ok(Date.now() - began < 30_000);
    // still answering: a change is drawn at once
    await page.getByTestId("affected-micro").fill("1");
    await page.waitForFunction(() => window.panel.answer()?.micro_batch === 1);
    assert.deepEqual(real(errors), []);
  } finally {
    await browser.close();
  }
});
