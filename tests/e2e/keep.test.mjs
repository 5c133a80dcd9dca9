// Settings the library refuses only when the lab is built (issue 32: a
// pasted text too short for the batch passes validateLabConfig, and
// WebLab.create refuses it) leave the lab as it was: its curves, its
// settings, and a Start that goes on from where it stopped. The text stays
// in its box.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARTIFACTS, FAST, curves, open, serveSite, trainFor, waitForSteps } from "./browser.mjs";

serveSite();

test("a pasted text the lab cannot be built on loses nothing: curves, settings and training go on", async () => {
  const { browser, page, errors } = await open(`?${FAST}`);
  try {
    await trainFor(page, 6);
    const before = await curves(page);
    const steps = before.step.length;
    const short = "In the beginning was a short text.";
    await page.fill('[data-testid="user-text"]', short);
    await page.locator('[data-testid="user-text"]').dispatchEvent("change");
    await page.waitForFunction(() => /Nothing was lost/.test(deepQuery('[data-testid="error"]').textContent), null, { timeout: 60_000 });
    const error = await page.textContent('[data-testid="error"]');
    const after = await curves(page);
    assert.equal(after.step.length, steps, `the curves are kept: ${error}`);
    assert.deepEqual(after.runs.map((r) => r.true.length), before.runs.map((r) => r.true.length));
    assert.equal(await page.inputValue('[data-testid="user-text"]'), short, "the text stays in its box");
    assert.match(await page.textContent('[data-testid="status"]'), /keeps its last settings and curves/);
    await page.screenshot({ path: `${ARTIFACTS}keep-short-text.png`, fullPage: true });
    // Start goes on from where the lab stopped
    await page.click('[data-testid="train-toggle"]');
    await waitForSteps(page, steps + 3);
    await page.click('[data-testid="train-toggle"]');
    const later = await curves(page);
    assert.ok(later.step.length >= steps + 3 && later.step[steps - 1] === before.step[steps - 1], `numbered on: ${later.step.slice(0, steps + 3)}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

// A saved lab's file with its page settings changed (ctx 16 → 24, so the
// state's position table no longer fits the lab its settings build): the
// lab it would replace runs on untouched, as the README's fault table says.
function withOtherSettings(bytes) {
  const n = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString());
  const page = JSON.parse(header.__metadata__.page);
  page.settings = { ...page.settings, ctx: 24 };
  header.__metadata__.page = JSON.stringify(page);
  // the data offsets in the header are relative to its end: they stay right
  let text = JSON.stringify(header);
  text += " ".repeat((8 - (text.length % 8)) % 8);
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  return Buffer.concat([length, Buffer.from(text), bytes.subarray(8 + n)]);
}

test("a saved lab whose state does not fit its own settings is refused naming the file; the running lab runs on untouched", async () => {
  const { browser, page, errors } = await open(`?${FAST}`);
  try {
    await trainFor(page, 3);
    const [saved] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="save-state"]')]);
    const bytes = withOtherSettings(Buffer.concat(await (await saved.createReadStream()).toArray()));
    // running when the file comes
    await page.click('[data-testid="train-toggle"]');
    await waitForSteps(page, 5);
    const url = page.url();
    await page.setInputFiles('[data-testid="load-state"]', { name: "other.safetensors", mimeType: "application/octet-stream", buffer: bytes });
    await page.waitForFunction(() => /other\.safetensors cannot be loaded/.test(deepQuery('[data-testid="error"]').textContent), null, { timeout: 60_000 });
    const error = await page.textContent('[data-testid="error"]');
    assert.match(error, /the lab runs on as it was/, error);
    const at = Number(await page.textContent('[data-testid="step-count"]'));
    assert.ok(at >= 5, `the step count is not reset (${at})`);
    await waitForSteps(page, at + 3);
    assert.equal(await page.textContent('[data-testid="train-toggle"]'), "Pause", "still running, and the button says so");
    assert.match(page.url(), /ctx=16/, `the address keeps the lab's settings (${url} before)`);
    assert.equal(await page.inputValue('[data-testid="context"]'), "16", "so does the form");
    const kept = await curves(page);
    assert.ok(kept.step[0] === 1 && kept.step.length >= at, `the curves are kept from step 1: ${kept.step.slice(0, 5)}`);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("a weights file of the right shapes full of NaN is refused naming the file; Start from and the lab stay as they were", async () => {
  const { browser, page, errors } = await open(`?${FAST}`);
  try {
    await trainFor(page, 3);
    // the lab's own start as a file, its values made NaN
    const source = await page.textContent('[data-testid="weights-source"]');
    const [saved] = await Promise.all([page.waitForEvent("download"), page.click('[data-testid="download-weights"]')]);
    const bytes = Buffer.concat(await (await saved.createReadStream()).toArray());
    const n = Number(bytes.readBigUInt64LE(0));
    const nan = Buffer.from(bytes);
    for (let i = 8 + n; i + 4 <= nan.length; i += 4) nan.writeFloatLE(NaN, i);
    const steps = (await curves(page)).step.length;
    await page.setInputFiles('[data-testid="load-weights"]', { name: "nan.safetensors", mimeType: "application/octet-stream", buffer: nan });
    await page.waitForFunction(() => /nan\.safetensors/.test(deepQuery('[data-testid="error"]').textContent), null, { timeout: 60_000 });
    const error = await page.textContent('[data-testid="error"]');
    assert.match(error, /not a finite number/, error);
    assert.equal(await page.textContent('[data-testid="weights-source"]'), source, "Start from is unchanged");
    assert.equal((await curves(page)).step.length, steps, "the curves are kept");
    await page.click('[data-testid="reset"]');
    await page.waitForFunction(() => /ready/.test(deepQuery('[data-testid="status"]').textContent), null, { timeout: 60_000 });
    assert.doesNotMatch(await page.textContent('[data-testid="error"]'), /nan\.safetensors/, "Reset builds on the weights the lab had");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("free() then Symbol.dispose, and dispose twice, do nothing more (what `using` calls)", async () => {
  const { browser, page, errors } = await open(`?${FAST}`);
  try {
    await page.waitForFunction(() => /ready/.test(deepQuery('[data-testid="status"]')?.textContent ?? ""), null, { timeout: 60_000 });
    const outcome = await page.evaluate(async () => {
      const { ensureCorpus, loadGradlab } = await import(new URL("www/wasm.js", document.baseURI));
      const gl = await loadGradlab();
      await ensureCorpus();
      const lab = await gl.WebLab.create({ batch: 4, micro_batch: 2, seq_len: 16 }, "cpu");
      const said = [];
      const attempt = (name, fn) => {
        try {
          fn();
        } catch (e) {
          said.push(`${name}: ${e.message}`);
        }
      };
      attempt("free then dispose", () => {
        lab.free();
        lab[Symbol.dispose]();
      });
      const pg = new gl.WebPlayground("rosenbrock", { lr: 0.001, momentum: 0.9, beta1: 0.9, beta2: 0.999, noise: 0 }, -1, 1, 1);
      attempt("playground dispose twice", () => {
        pg[Symbol.dispose]();
        pg[Symbol.dispose]();
        pg.free();
      });
      return said;
    });
    assert.deepEqual(outcome, []);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
