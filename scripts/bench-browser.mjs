// Runs the benchmark page (dist/www/bench.html) in headless Chromium on its
// WebGPU adapter (SwiftShader without a GPU) and prints gradlab's matmul next
// to TensorFlow.js's and jax-js's, measured side by side in the one page;
// with `step`, one whole training step of gradlab's against the same GPT
// written with jax-js (www/gptstep.js), on WebGPU and on the CPU.
// Usage: npm run build && node scripts/bench-browser.mjs [tiny|nano|micro|small|square]
//        node scripts/bench-browser.mjs step [quick|nano|micro|small] [seed]
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { startServer } from "./serve.mjs";

const stepMode = process.argv[2] === "step";
const shapes = (stepMode ? process.argv[3] : process.argv[2]) ?? "nano";
const seed = stepMode ? (process.argv[4] ?? "1") : "";
if (!existsSync(new URL("../dist/www/bench.html", import.meta.url))) {
  console.error("dist/www/bench.html is missing: run `npm run build` first");
  process.exit(2);
}
const server = await startServer(0);
const query = stepMode ? `step=${encodeURIComponent(shapes)}&seed=${encodeURIComponent(seed)}` : `run&shapes=${encodeURIComponent(shapes)}`;
const url = `http://127.0.0.1:${server.address().port}/gradlab/www/bench.html?${query}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  await page.goto(url);
  if (stepMode) {
    await page.waitForFunction(() => window.gradlabBench?.gptStep?.done, null, { timeout: 1_800_000, polling: 500 });
    const { rows, error } = await page.evaluate(() => window.gradlabBench.gptStep);
    if (error) throw new Error(error);
    console.log(await page.textContent('[data-testid="step-status"]'));
    const cells = await page.$$eval('[data-testid="step-table"] tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    for (const row of cells) console.log(row.join(" | "));
    console.log(`\n${await page.textContent('[data-testid="profile-status"]')}`);
    const profile = await page.$$eval('[data-testid="profile-table"] tr', (trs) => trs.map((tr) => [...tr.children].map((c) => c.textContent)));
    for (const row of profile) console.log(row.join(" | "));
    if (rows.some((r) => r.error || r.skipped)) process.exitCode = 1;
  } else {
    await matmulTables(page);
  }
} finally {
  await browser.close();
  server.close();
}

async function matmulTables(page) {
  await page.waitForFunction(() => window.gradlabBench?.done, null, { timeout: 900_000, polling: 500 });
  const bench = await page.evaluate(() => window.gradlabBench);
  if (bench.error) throw new Error(bench.error);
  console.log(`adapter: ${bench.adapter}`);
  const pad = (s, n) => String(s).padStart(n);
  console.log(`${"layer".padEnd(18)}${pad("M x K -> N", 20)}${pad("gradlab ms", 12)}${pad("tfjs ms", 10)}${pad("gradlab GF/s", 14)}${pad("tfjs GF/s", 11)}${pad("tfjs/gradlab", 14)}${pad("vs tfjs", 10)}${pad("vs f64", 10)}`);
  for (const r of bench.results) {
    console.log(`${r.layer.padEnd(18)}${pad(`${r.m} x ${r.k} -> ${r.n}`, 20)}${pad(r.gradlabMs.toFixed(2), 12)}${pad(r.tfjsMs.toFixed(2), 10)}${pad(r.gradlabGflops.toFixed(2), 14)}${pad(r.tfjsGflops.toFixed(2), 11)}${pad(r.ratio.toFixed(2), 14)}${pad(r.relDiff.toExponential(1), 10)}${pad(r.f64Diff.toExponential(1), 10)}`);
  }
  const fixed = (v) => (v === null ? "-" : v.toFixed(2));
  console.log(`\n${"layer".padEnd(18)}${pad("M x K -> N", 20)}${pad("jax GPU ms", 12)}${pad("jax/gradlab", 13)}${pad("CPU ms", 10)}${pad("jax wasm ms", 13)}${pad("CPU GF/s", 10)}${pad("wasm GF/s", 11)}${pad("wasm/CPU", 10)}`);
  for (const r of bench.results) {
    console.log(`${r.layer.padEnd(18)}${pad(`${r.m} x ${r.k} -> ${r.n}`, 20)}${pad(fixed(r.jaxGpuMs), 12)}${pad(fixed(r.jaxGpuRatio), 13)}${pad(r.cpuMs.toFixed(2), 10)}${pad(r.jaxWasmMs.toFixed(2), 13)}${pad(r.cpuGflops.toFixed(2), 10)}${pad(r.jaxWasmGflops.toFixed(2), 11)}${pad(r.cpuRatio.toFixed(2), 10)}`);
  }
}
