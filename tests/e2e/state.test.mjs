// Saving the whole lab and loading it back (issue 11): a lab saved after a
// few steps and loaded into a fresh page with other settings takes the saved
// settings, shows the saved curves, and goes on bit for bit as the page that
// kept training did. A file that is not a saved lab is refused in words and
// the lab runs on untouched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARTIFACTS, FAST, curves, open, serveSite, waitReady } from "./browser.mjs";

serveSite();

async function stepOnce(page) {
  const before = Number(await page.textContent('[data-testid="step-count"]'));
  await page.click('[data-testid="step-once"]');
  await page.waitForFunction((n) => Number(deepQuery('[data-testid="step-count"]').textContent) > n && deepQuery("gradlab-lab").curves().step.length > n, before, {
    timeout: 120_000,
    polling: 100,
  });
}

test("a saved lab loads into a fresh page and goes on bit for bit; a bad file changes nothing", async () => {
  const a = await open(`?${FAST}&spread=0.9`);
  const b = await open("?scenario=custom&batch=8&micro=4&ctx=24&lr=0.003");
  try {
    await waitReady(a.page);
    for (let i = 0; i < 3; i++) await stepOnce(a.page);
    const [saved] = await Promise.all([a.page.waitForEvent("download"), a.page.click('[data-testid="save-state"]')]);
    assert.match(saved.suggestedFilename(), /^gradlab-lab-step3\.safetensors$/);
    const bytes = Buffer.concat(await (await saved.createReadStream()).toArray());
    const header = JSON.parse(bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString());
    assert.equal(header.__metadata__.format, "gradlab-lab-state/1");
    assert.ok(header["run0.moment1"], `every run's Adam moments are saved: ${Object.keys(header)}`);
    for (let i = 0; i < 3; i++) await stepOnce(a.page);
    const uninterrupted = await curves(a.page);

    await waitReady(b.page);
    await b.page.setInputFiles('[data-testid="load-state"]', { name: "lab.safetensors", mimeType: "application/octet-stream", buffer: bytes });
    await b.page.waitForFunction(() => /loaded lab\.safetensors at step 3/.test(deepQuery('[data-testid="status"]').textContent), null, { timeout: 120_000 });
    assert.equal(await b.page.textContent('[data-testid="step-count"]'), "3");
    assert.equal(await b.page.inputValue('[data-testid="micro-batch"]'), "2", "the saved settings replace the page's");
    assert.equal(await b.page.inputValue('[data-testid="context"]'), "16");
    assert.match(b.page.url(), /ctx=16/, "the address shows the loaded settings");
    const loaded = await curves(b.page);
    assert.deepEqual(loaded.step, uninterrupted.step.slice(0, 3), "the saved curves come back");
    for (let i = 0; i < 3; i++) await stepOnce(b.page);
    const resumed = await curves(b.page);
    assert.deepEqual(resumed.step, uninterrupted.step);
    for (const [r, run] of uninterrupted.runs.entries()) {
      assert.deepEqual(resumed.runs[r].logged, run.logged, `run ${r}: the logged losses of the resumed lab equal the uninterrupted one's`);
      assert.deepEqual(resumed.runs[r].dist, run.dist, `run ${r}: so do the weight distances`);
    }

    const junk = Buffer.from("this is not a saved lab at all, just some words");
    await b.page.setInputFiles('[data-testid="load-state"]', { name: "junk.safetensors", mimeType: "application/octet-stream", buffer: junk });
    await b.page.waitForFunction(() => /junk\.safetensors cannot be loaded/.test(deepQuery('[data-testid="error"]').textContent), null, { timeout: 30_000 });
    assert.equal(await b.page.textContent('[data-testid="step-count"]'), "6", "the lab is untouched");
    await stepOnce(b.page);
    assert.equal((await curves(b.page)).step.length, 7, "and it runs on");
    await b.page.screenshot({ path: ARTIFACTS + "lab-state-loaded.png", fullPage: true });
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  } finally {
    await a.browser.close();
    await b.browser.close();
  }
});
