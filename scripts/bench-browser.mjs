// Runs the benchmark page (dist/www/bench.html) in headless Chromium on its
// WebGPU adapter (SwiftShader without a GPU) and prints gradlab's matmul next
// to TensorFlow.js's, measured side by side in the one page.
// Usage: npm run build && node scripts/bench-browser.mjs [tiny|nano|micro|small]
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { startServer } from "./serve.mjs";

const shapes = process.argv[2] ?? "nano";
if (!existsSync(new URL("../dist/www/bench.html", import.meta.url))) {
  console.error("dist/www/bench.html is missing: run `npm run build` first");
  process.exit(2);
}
const server = await startServer(0);
const url = `http://127.0.0.1:${server.address().port}/gradlab/www/bench.html?run&shapes=${encodeURIComponent(shapes)}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
});
try {
  const page = await browser.newPage();
  page.on("pageerror", (e) => console.error(`page error: ${e}`));
  await page.goto(url);
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
} finally {
  await browser.close();
  server.close();
}
