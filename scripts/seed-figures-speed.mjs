// How long the seed figures' "Run it yourself" takes in headless Chromium on
// this machine's default path (WebGPU on SwiftShader is a software adapter,
// so the lab trains on the f32 CPU backend, on threads where the page is
// cross-origin isolated as scripts/serve.mjs serves it): opens the page,
// presses the button and times it from the click to "done", --runs times
// (a fresh page each), printing each run's wall time and the page's own
// count (from the click, the base's fetch and the lab's build included).
// Usage: npm run build && node scripts/seed-figures-speed.mjs [--runs 2] [--seed 1] [--not-isolated]
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { startServer } from "./serve.mjs";

const { values } = parseArgs({ options: { runs: { type: "string", default: "2" }, seed: { type: "string", default: "" }, "not-isolated": { type: "boolean", default: false } } });
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1 || runs > 20) {
  console.error(`--runs must be a whole number from 1 to 20, got "${values.runs}"`);
  process.exit(2);
}
if (values.seed && !/^[1-9]\d{0,5}$/.test(values.seed)) {
  console.error(`--seed must be a whole number from 1 to 999999, got "${values.seed}"`);
  process.exit(2);
}
if (!existsSync(new URL("../dist/index.html", import.meta.url))) {
  console.error("dist/index.html is missing: run `npm run build` first");
  process.exit(2);
}
const server = await startServer(0, "/gradlab/", undefined, { isolated: !values["not-isolated"] });
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
});
const seconds = [];
try {
  for (let i = 0; i < runs; i++) {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
    page.on("pageerror", (e) => console.error(`page error: ${e}`));
    await page.goto(`http://127.0.0.1:${server.address().port}/gradlab/`);
    const button = page.getByTestId("run-yourself");
    await page.waitForFunction(() => document.querySelector("gradlab-seed-figures")?.figures() !== undefined, null, { timeout: 60_000 });
    if (values.seed) await page.getByTestId("run-yourself-seed").fill(values.seed);
    const began = Date.now();
    await button.click();
    await page.getByTestId("run-yourself-status").filter({ hasText: /^done/ }).waitFor({ timeout: 600_000 });
    const wall = (Date.now() - began) / 1000;
    const live = await page.evaluate(() => document.querySelector("gradlab-seed-figures").figures().live);
    const status = await page.getByTestId("run-yourself-status").textContent();
    const isolated = await page.evaluate(() => crossOriginIsolated);
    seconds.push(wall);
    console.log(`run ${i + 1}: ${wall.toFixed(1)} s from the click to done (the page counts ${live.seconds.toFixed(1)} s), seed ${live.seed}, ${isolated ? "cross-origin isolated" : "not isolated"}; ${status}`);
    await page.close();
  }
  console.log(`Run it yourself: ${seconds.map((s) => s.toFixed(1)).join(", ")} s`);
} finally {
  await browser.close();
  server.close();
}
