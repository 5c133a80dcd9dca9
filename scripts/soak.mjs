// A long run of the page, to see whether memory stays flat: opens the built
// site in headless Chromium, starts the lab and samples memory while it trains.
// Not part of the test suite (it takes as long as you ask); README "Memory over
// a long run" has its figures.
//
// Usage: npm run build && node scripts/soak.mjs [--minutes 30] [--every 30]
//          [--compute webgpu|cpu] [--csv test-artifacts/soak.csv] [--query "batch=8&micro=2"]
//
// Each sample: the step count, the page's JS heap (CDP Performance.getMetrics),
// its DOM node count, the wasm module's linear memory, and the resident memory
// of every Chromium process together and of the renderer and GPU process
// alone (the GPU process holds SwiftShader's buffers), read from /proc. The summary gives each figure's range and trend
// (least-squares slope per 10 minutes) after a warm-up of a tenth of the run.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { startServer } from "./serve.mjs";

const { values: opts } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    every: { type: "string", default: "30" },
    compute: { type: "string", default: "webgpu" },
    csv: { type: "string", default: "test-artifacts/soak.csv" },
    query: { type: "string", default: "" },
  },
});
const number = (name, min, max) => {
  const text = opts[name];
  const x = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(x >= min && x <= max)) {
    console.error(`--${name}: expected a number from ${min} to ${max}, got "${text}"`);
    process.exit(2);
  }
  return x;
};
const minutes = number("minutes", 0.1, 24 * 60);
const every = number("every", 1, 3600);
if (!["webgpu", "cpu"].includes(opts.compute)) {
  console.error(`--compute: expected webgpu or cpu, got "${opts.compute}"`);
  process.exit(2);
}

// Every process's parent, from /proc: pid → ppid.
function parents() {
  const of = new Map();
  for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      // the command name may hold spaces and parentheses: fields follow the last ")"
      const stat = readFileSync(`/proc/${p}/stat`, "utf8");
      of.set(Number(p), { ppid: Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]), name: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")) });
    } catch {
      // the process ended while we looked
    }
  }
  return of;
}

// Resident memory (bytes) of `pid` and every process under it, in all and
// by Chromium's process type (--type=renderer, gpu-process, …; "browser" for
// the main process).
function treeRss(pid) {
  const children = new Map();
  for (const [p, { ppid }] of parents()) children.set(ppid, [...(children.get(ppid) ?? []), p]);
  const byType = {};
  let total = 0;
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop();
    try {
      const kb = readFileSync(`/proc/${p}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
      const type = readFileSync(`/proc/${p}/cmdline`, "utf8").match(/--type=([\w-]+)/)?.[1] ?? "browser";
      const bytes = kb ? Number(kb[1]) * 1024 : 0;
      byType[type] = (byType[type] ?? 0) + bytes;
      total += bytes;
    } catch {
      // gone
    }
    stack.push(...(children.get(p) ?? []));
  }
  return { total, byType };
}

const server = await startServer(0);
const query = [opts.query, `compute=${opts.compute}`].filter(Boolean).join("&");
const url = `http://127.0.0.1:${server.address().port}/gradlab/?${query}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
});
const mib = (b) => (b / 2 ** 20).toFixed(1);
try {
  // the browser's own pid: playwright launches it as a child of this process
  const browserPid = [...parents()].find(([, { ppid, name }]) => ppid === process.pid && /chrom/i.test(name))?.[0];
  const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(url);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  const status = page.getByTestId("status");
  await status.filter({ hasText: /ready|steps\/s/ }).waitFor({ timeout: 180_000 });
  console.log(`soak: ${url} on ${await status.textContent()}`);
  await page.getByTestId("train-toggle").click();

  const samples = [];
  const started = Date.now();
  const end = started + minutes * 60_000;
  console.log("minute   steps  js-heap MiB  dom-nodes  wasm MiB  chromium RSS MiB  renderer  gpu-process");
  while (true) {
    const { metrics } = await cdp.send("Performance.getMetrics");
    const metric = (name) => metrics.find((m) => m.name === name)?.value ?? NaN;
    // the page's module and the lab worker's (www/lab/remote.js), together
    const wasm = await page.evaluate(async () => (await import("./www/wasm.js")).wasmMemoryBytes() + (await (await import("./www/lab/remote.js")).labMemoryBytes()));
    const s = {
      minute: (Date.now() - started) / 60_000,
      steps: Number(await page.getByTestId("step-count").textContent()),
      jsHeap: metric("JSHeapUsedSize"),
      nodes: metric("Nodes"),
      wasm,
      ...(() => {
        const rss = browserPid ? treeRss(browserPid) : { total: NaN, byType: {} };
        return { rss: rss.total, renderer: rss.byType.renderer ?? NaN, gpu: rss.byType["gpu-process"] ?? NaN };
      })(),
    };
    samples.push(s);
    console.log(`${s.minute.toFixed(1).padStart(6)} ${String(s.steps).padStart(7)} ${mib(s.jsHeap).padStart(12)} ${String(s.nodes).padStart(10)} ${mib(s.wasm).padStart(9)} ${mib(s.rss).padStart(17)} ${mib(s.renderer).padStart(9)} ${mib(s.gpu).padStart(12)}`);
    if (Date.now() >= end) break;
    await new Promise((r) => setTimeout(r, Math.min(every * 1000, Math.max(0, end - Date.now()))));
  }
  const error = await page.getByTestId("error").textContent();
  mkdirSync(dirname(opts.csv), { recursive: true });
  writeFileSync(opts.csv, ["minute,steps,js_heap_bytes,dom_nodes,wasm_bytes,chromium_rss_bytes,renderer_rss_bytes,gpu_process_rss_bytes", ...samples.map((s) => [s.minute.toFixed(2), s.steps, s.jsHeap, s.nodes, s.wasm, s.rss, s.renderer, s.gpu].join(","))].join("\n") + "\n");

  // After a warm-up (the first tenth of the run: kernels compiled, charts,
  // samples and the first validation made), the range of each figure and its
  // trend: the least-squares slope, per 10 minutes.
  const body = samples.filter((s) => s.minute >= minutes / 10);
  const slope = (key) => {
    const n = body.length;
    const mx = body.reduce((a, s) => a + s.minute, 0) / n;
    const my = body.reduce((a, s) => a + s[key], 0) / n;
    const sxy = body.reduce((a, s) => a + (s.minute - mx) * (s[key] - my), 0);
    const sxx = body.reduce((a, s) => a + (s.minute - mx) ** 2, 0);
    return sxx > 0 ? (10 * sxy) / sxx : 0;
  };
  console.log(`\n${samples.at(-1).steps} steps in ${samples.at(-1).minute.toFixed(1)} min; samples in ${opts.csv}`);
  console.log(`from minute ${(minutes / 10).toFixed(1)} on (${body.length} samples):`);
  for (const [key, label, unit] of [["jsHeap", "JS heap", mib], ["wasm", "wasm memory", mib], ["rss", "Chromium RSS", mib], ["renderer", "  renderer", mib], ["gpu", "  GPU process", mib], ["nodes", "DOM nodes", String]]) {
    if (body.length < 2) break;
    const xs = body.map((s) => s[key]);
    const per10 = slope(key);
    const trend = unit === mib ? `${per10 >= 0 ? "+" : ""}${mib(per10)} MiB` : `${per10 >= 0 ? "+" : ""}${per10.toFixed(0)}`;
    console.log(`${label.padEnd(13)} ${unit(Math.min(...xs))} to ${unit(Math.max(...xs))}${unit === mib ? " MiB" : ""}; trend ${trend} per 10 min`);
  }
  if (error) console.log(`the page's error line: ${error}`);
  if (problems.length) {
    console.log(`page errors:\n${problems.join("\n")}`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
  server.close();
}
