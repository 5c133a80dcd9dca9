// Steps the lab page takes in headless Chromium (WebGPU on SwiftShader
// without a GPU): for each URL query given, opens the page, presses Start,
// and counts the curve's points after --seconds of training (the status
// line's own steps/s is a short window that dips while samples are made).
// --in-page also times each query with the lab in the page instead of its
// worker (Worker removed, as where none can start), right after.
// Usage: npm run build && node scripts/page-speed.mjs [--seconds 20] [--in-page] "" "device=webgpu" "precision=f64" …
import { existsSync } from "node:fs";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { startServer } from "./serve.mjs";

const { values, positionals } = parseArgs({ options: { seconds: { type: "string", default: "20" }, "in-page": { type: "boolean", default: false } }, allowPositionals: true });
const seconds = Number(values.seconds);
if (!Number.isFinite(seconds) || seconds < 1 || seconds > 3600) {
  console.error(`--seconds must be a number from 1 to 3600, got "${values.seconds}"`);
  process.exit(2);
}
if (!existsSync(new URL("../dist/index.html", import.meta.url))) {
  console.error("dist/index.html is missing: run `npm run build` first");
  process.exit(2);
}
const queries = positionals.length ? positionals : ["", "device=webgpu", "precision=f64"];
const server = await startServer(0);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
});
try {
  const runs = queries.flatMap((query) => (values["in-page"] ? [[query, "worker"], [query, "page"]] : [[query, "worker"]]));
  for (const [query, where] of runs) {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
    if (where === "page") await page.addInitScript(() => (window.Worker = undefined));
    page.on("pageerror", (e) => console.error(`page error: ${e}`));
    await page.goto(`http://127.0.0.1:${server.address().port}/gradlab/?${query}`);
    const status = page.getByTestId("status");
    await status.filter({ hasText: /ready/ }).waitFor({ timeout: 180_000 });
    const backend = (await status.textContent()).replace(/ · ready$/, "");
    await page.getByTestId("train-toggle").click();
    await page.waitForTimeout(seconds * 1000);
    const points = await page.evaluate(() => document.querySelector("gradlab-lab").curves().step.length);
    console.log(`${(query || "(default)").padEnd(28)} ${where === "page" ? "in the page" : "in a worker"} ${String(points).padStart(6)} points in ${seconds} s = ${(points / seconds).toFixed(2).padStart(6)} steps/s  on ${backend}`);
    await page.close();
  }
} finally {
  await browser.close();
  server.close();
}
