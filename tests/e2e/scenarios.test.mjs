// The scenario control (issue 28): one choice sets the settings a scenario
// names (www/lab/scenarios.json) and where its weights start; changing any
// control by hand makes the settings custom. Fine-tuning adapts the shipped
// base, fetched beside the module.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ARTIFACTS, SCENARIOS, curves, open, serveSite, trainFor, waitReady, weightsSource } from "./browser.mjs";

serveSite();


test("each scenario sets its settings and its start; a change by hand makes them custom", async () => {
  const { browser, page, errors } = await open("?batch=4&micro=2&ctx=16");
  try {
    await waitReady(page);
    assert.equal(await page.inputValue('[data-testid="scenario"]'), "custom");
    const names = await page.$$eval('[data-testid="scenario"] option', (os) => os.map((o) => o.value));
    assert.deepEqual(names, ["custom", ...SCENARIOS.map((s) => s.name)]);

    const fineTuning = SCENARIOS.find((s) => s.name === "fine-tuning");
    await page.selectOption('[data-testid="scenario"]', "fine-tuning");
    await page.waitForFunction(() => deepQuery('[data-testid="weights-source"]').textContent.includes("the shipped nano base"), null, { timeout: 60_000 });
    assert.equal(await page.isChecked('[data-testid="lora"]'), true);
    assert.equal(await page.isChecked('[data-testid="mask-prompt"]'), true);
    assert.equal(await page.inputValue('[data-testid="lora-rank"]'), String(fineTuning.settings.lorarank));
    assert.equal(await page.inputValue('[data-testid="context"]'), String(fineTuning.settings.ctx));
    assert.equal(await page.inputValue('[data-testid="micro-batch"]'), String(fineTuning.settings.micro));
    // the link holds only what differs from the scenario: here nothing
    assert.equal(new URL(page.url()).search, "", "a scenario's own settings are not written into the link");
    assert.match(await page.evaluate(() => deepQuery('[data-testid="lr"]').closest(".gl-row").textContent), /0\.0030/, "the scenario's learning rate, exactly");
    await trainFor(page, 3);
    const c = await curves(page);
    const firstLoss = c.runs[0].true.find((x) => x !== null);
    assert.ok(firstLoss < 3.5, `fine-tuning starts from the pretrained base: loss ${firstLoss}`);
    assert.equal((await page.textContent('[data-testid="error"]')).trim(), "");
    await page.screenshot({ path: ARTIFACTS + "scenario-fine-tuning.png", fullPage: true });

    // packed windows: the mask goes off, the weights start fresh
    await page.selectOption('[data-testid="scenario"]', "pretraining");
    await page.waitForFunction(() => /fresh init/.test(deepQuery('[data-testid="weights-source"]').textContent), null, { timeout: 30_000 });
    assert.equal(await page.inputValue('[data-testid="packing"]'), "packed");
    assert.equal(await page.isChecked('[data-testid="mask-prompt"]'), false);
    assert.equal(await page.isChecked('[data-testid="lora"]'), false);
    assert.match(await weightsSource(page), /fresh init/);

    // a control changed by hand: custom settings, the rest kept
    await page.locator('[data-testid="seed"]').fill("3");
    await page.locator('[data-testid="seed"]').dispatchEvent("change");
    await page.waitForFunction(() => new URL(location.href).searchParams.get("seed") === "3", null, { timeout: 10_000 });
    assert.equal(await page.inputValue('[data-testid="scenario"]'), "custom");
    assert.equal(await page.inputValue('[data-testid="packing"]'), "packed");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
