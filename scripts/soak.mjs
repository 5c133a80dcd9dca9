// A long run of the page, to see whether memory stays flat: opens the built
// site in headless Chromium and samples memory, workers and speed while it
// trains, or while it runs G sweeps one after another. Not part of the test
// suite (it takes as long as you ask); README "Memory over a long run" and
// BENCHMARKS.md "Soak: an hour of the default page, ten sweeps" have its figures.
//
// Usage: npm run build && node scripts/soak.mjs [--minutes 30] [--every 30]
//          [--device auto|webgpu|cpu] [--query "batch=8&micro=2"] [--isolated]
//          [--sweeps 10] [--sweep-steps 40] [--gc] [--dir dist]
//          [--csv test-artifacts/soak.csv]
//
// By default it opens the page with no query (its default scenario, on the
// device "auto" picks), presses Start and samples every --every seconds for
// --minutes minutes. With --sweeps N it does not train: it presses "Sweep G"
// N times, each once the last has finished, samples every --every seconds
// and at the end of each sweep, then leaves the page open --minutes more
// (5 unless given) and samples on. --device adds device= to the query
// (--compute is its old name; the page's own compute= now means precision),
// --sweep-steps adds sweepsteps=. The site is served as a plain static host
// does (one thread) unless --isolated (COOP/COEP: the threads build, its pool
// workers); --dir serves another copy of the built site than dist/. --gc
// collects garbage in the page and in every worker before each sample, so
// that the heaps are what is held, not what awaits collection.
//
// Each sample: the step count and the steps/s since the last sample (and the
// status line's), the page's JS heap (CDP Performance.getMetrics
// JSHeapUsedSize) and its lab workers' (CDP Runtime.getHeapUsage in each;
// not the pool workers', which do not answer while they wait), its DOM node count, the wasm modules' linear memory (the page's and every lab
// worker's: www/wasm.js wasmMemoryBytes, www/lab/remote.js labMemoryBytes;
// a threads build's pool shares its lab worker's), the workers alive
// (Playwright's page.workers(), which lists the pool workers a lab worker
// of the threads build starts too: given as lab + pool), the GPU devices the
// lab workers opened (worker.js gpuDevices) and the GPU buffers they hold
// (created through GPUDevice.createBuffer, counted in each lab worker from
// when it starts, less those collected: wgpu never destroys a buffer, it
// lets it go), the numbers the lab's curves hold (the element's curves():
// the data kept whole for the CSV, which grows a few numbers a step), and
// the resident memory of every Chromium process together and of the
// renderer and GPU process alone (the GPU process holds SwiftShader's
// buffers), read from /proc, and the machine's load average. The summary
// gives each figure's range and trend (least-squares slope per 10 minutes)
// after a warm-up of a tenth of the run, the figures at minute 1 and at the end, the steps/s at the start
// and the end; with --sweeps, a row per sweep and each figure's trend per sweep.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { chromium } from "playwright-core";
import { startServer } from "./serve.mjs";

const USAGE =
  "usage: node scripts/soak.mjs [--minutes 30] [--every 30] [--device auto|webgpu|cpu] [--query Q] [--isolated] [--sweeps N] [--sweep-steps N] [--gc] [--dir dist] [--csv test-artifacts/soak.csv]";
let opts;
try {
  ({ values: opts } = parseArgs({
    options: {
      minutes: { type: "string" },
      every: { type: "string", default: "30" },
      device: { type: "string", default: "" },
      compute: { type: "string", default: "" },
      csv: { type: "string", default: "test-artifacts/soak.csv" },
      query: { type: "string", default: "" },
      isolated: { type: "boolean", default: false },
      sweeps: { type: "string", default: "0" },
      "sweep-steps": { type: "string", default: "" },
      gc: { type: "boolean", default: false },
      dir: { type: "string", default: "" },
    },
  }));
} catch (e) {
  console.error(`soak: ${e.message}\n${USAGE}`);
  process.exit(2);
}
const number = (name, min, max, fallback) => {
  const text = opts[name] ?? fallback;
  const x = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(x >= min && x <= max)) {
    console.error(`--${name}: expected a number from ${min} to ${max}, got "${text}"\n${USAGE}`);
    process.exit(2);
  }
  return x;
};
const sweeps = number("sweeps", 0, 1000, "0");
if (!Number.isInteger(sweeps)) {
  console.error(`--sweeps: expected a whole number, got "${opts.sweeps}"`);
  process.exit(2);
}
// training: how long it trains; sweeps: how long the page stays open after the last
const minutes = sweeps ? number("minutes", 0, 24 * 60, "5") : number("minutes", 0.1, 24 * 60, "30");
const every = number("every", 1, 3600);
const sweepSteps = opts["sweep-steps"] ? number("sweep-steps", 2, 1000) : null;
const device = opts.device || opts.compute;
if (device && !["auto", "webgpu", "cpu"].includes(device)) {
  console.error(`--device: expected auto, webgpu or cpu, got "${device}"`);
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

// `promise`, or `fallback` if it has not settled in `ms` (a worker busy in a
// long step answers late; a sample does not wait for ever).
const within = (promise, ms, fallback) =>
  Promise.race([promise.catch(() => fallback), new Promise((r) => setTimeout(() => r(fallback), ms).unref())]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const server = await startServer(0, "/gradlab/", opts.dir ? resolve(opts.dir) + "/" : undefined, { isolated: opts.isolated });
const query = [opts.query, device && `device=${device}`, sweepSteps && `sweepsteps=${sweepSteps}`].filter(Boolean).join("&");
const url = `http://127.0.0.1:${server.address().port}/gradlab/${query ? `?${query}` : ""}`;
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-quic", "--no-first-run", "--disable-background-networking"],
});
const mib = (b) => (b / 2 ** 20).toFixed(2);
const isLabWorker = (w) => /\/www\/lab\/worker\.js(\?|$)/.test(w.url());

// Counts, in a lab worker, the GPU buffers its module creates and how many of
// them have been collected since. wgpu's glue calls createBuffer on the device
// object (so a patched prototype sees every later call) and never destroy():
// a buffer is let go when wgpu drops it and the object is collected.
function countGpuBuffers() {
  if (self.gradlabSoak) return;
  const soak = (self.gradlabSoak = { created: 0, collected: 0 });
  if (!self.GPUDevice) return;
  const gone = new FinalizationRegistry(() => soak.collected++);
  const create = GPUDevice.prototype.createBuffer;
  GPUDevice.prototype.createBuffer = function (...args) {
    const buffer = create.apply(this, args);
    soak.created++;
    gone.register(buffer, null);
    return buffer;
  };
}

try {
  // the browser's own pid: playwright launches it as a child of this process
  const browserPid = [...parents()].find(([, { ppid, name }]) => ppid === process.pid && /chrom/i.test(name))?.[0];
  const page = await browser.newPage({ viewport: { width: 1200, height: 1600 } });
  const problems = [];
  const consoleErrors = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text().slice(0, 300)));
  // lab workers count their GPU buffers from as soon as they are seen (before
  // the page has sent them the module, so before any lab is built)
  page.on("worker", (w) => {
    if (isLabWorker(w)) w.evaluate(countGpuBuffers).catch(() => {});
  });
  await page.goto(url);
  const cdp = await page.context().newCDPSession(page);
  await cdp.send("Performance.enable");
  // the workers' own heaps: a session on each worker's target (not flattened:
  // Playwright's CDP sessions cannot address a child session)
  const browserCdp = await browser.newBrowserCDPSession();
  let messageId = 0;
  const answers = new Map();
  browserCdp.on("Target.receivedMessageFromTarget", ({ message }) => {
    const m = JSON.parse(message);
    answers.get(m.id)?.(m);
    answers.delete(m.id);
  });
  // {targets, heap}: how many worker targets there are, and the lab workers' heap, with a collection first where --gc
  async function workerHeaps() {
    const { targetInfos } = await browserCdp.send("Target.getTargets");
    let heap = 0;
    const targets = targetInfos.filter((t) => t.type === "worker");
    // the lab workers only: a threads build's pool workers wait in
    // Atomics.wait between steps, where the inspector gets no answer from them
    for (const t of targets.filter((t) => isLabWorker({ url: () => t.url }))) {
      let sessionId;
      try {
        ({ sessionId } = await browserCdp.send("Target.attachToTarget", { targetId: t.targetId, flatten: false }));
        const call = (method) =>
          within(
            new Promise((res) => {
              const id = ++messageId;
              answers.set(id, res);
              browserCdp.send("Target.sendMessageToTarget", { sessionId, message: JSON.stringify({ id, method, params: {} }) }).catch(() => {});
            }),
            30_000,
            null,
          );
        if (opts.gc) await call("HeapProfiler.collectGarbage");
        heap += (await call("Runtime.getHeapUsage"))?.result?.usedSize ?? NaN;
      } catch {
        // the worker ended while we looked
      } finally {
        if (sessionId) await browserCdp.send("Target.detachFromTarget", { sessionId }).catch(() => {});
      }
    }
    return { targets: targets.length, heap };
  }

  const status = page.getByTestId("status");
  await status.filter({ hasText: /ready|steps\/s/ }).waitFor({ timeout: 180_000 });
  console.log(`soak: ${url}${opts.isolated ? " (cross-origin isolated)" : ""} on ${await status.textContent()}`);
  console.log(`  ${sweeps ? `${sweeps} sweeps, then ${minutes} min left open` : `${minutes} min of training`}; a sample every ${every} s${opts.gc ? ", after a garbage collection in the page and every worker" : ""}`);

  const samples = [];
  const started = Date.now();
  let last = null;
  console.log("minute   steps  steps/s  js-heap MiB  workers' heap  dom-nodes  wasm MiB  workers (lab+pool)  gpu-buffers  curve-numbers  chromium RSS MiB  renderer  gpu-process  load  event");
  async function takeSample(event) {
    const workersHeap = await workerHeaps();
    if (opts.gc) {
      await cdp.send("HeapProfiler.collectGarbage");
      // finalizers (the buffers' count) run after the collection
      await sleep(200);
    }
    const { metrics } = await cdp.send("Performance.getMetrics");
    const metric = (name) => metrics.find((m) => m.name === name)?.value ?? NaN;
    // the page's module and the lab workers' (www/lab/remote.js), together
    const wasm = await within(
      page.evaluate(async () => (await import("./www/wasm.js")).wasmMemoryBytes() + (await (await import("./www/lab/remote.js")).labMemoryBytes())),
      60_000,
      NaN,
    );
    const workers = page.workers();
    const labWorkers = workers.filter(isLabWorker);
    const gpu = await Promise.all(
      labWorkers.map((w) =>
        within(
          w.evaluate(() => ({ devices: self.gpuDevices?.length ?? 0, held: self.gradlabSoak ? self.gradlabSoak.created - self.gradlabSoak.collected : NaN })),
          30_000,
          { devices: NaN, held: NaN },
        ),
      ),
    );
    const curveNumbers = await within(
      page.evaluate(() => {
        const c = document.querySelector("gradlab-lab")?.curves?.();
        if (!c) return NaN;
        const count = (d) => d.step.length + d.runs.reduce((a, r) => a + ["logged", "true", "dist", "norm"].reduce((b, k) => b + (r[k]?.length ?? 0), 0), 0);
        return count(c) + (c.twin ? count(c.twin) : 0);
      }),
      30_000,
      NaN,
    );
    const steps = Number(await page.getByTestId("step-count").textContent());
    const minute = (Date.now() - started) / 60_000;
    const rss = browserPid ? treeRss(browserPid) : { total: NaN, byType: {} };
    const s = {
      minute,
      event,
      steps,
      rate: last && minute > last.minute ? (steps - last.steps) / ((minute - last.minute) * 60) : NaN,
      statusRate: Number((await status.textContent()).match(/([\d.]+) steps\/s/)?.[1] ?? NaN),
      jsHeap: metric("JSHeapUsedSize"),
      workersHeap: workersHeap.heap,
      nodes: metric("Nodes"),
      wasm,
      workers: workers.length,
      labWorkers: labWorkers.length,
      poolWorkers: workers.length - labWorkers.length,
      workerTargets: workersHeap.targets,
      gpuDevices: gpu.reduce((a, g) => a + g.devices, 0),
      gpuBuffers: gpu.reduce((a, g) => a + g.held, 0),
      curveNumbers,
      rss: rss.total,
      renderer: rss.byType.renderer ?? NaN,
      gpu: rss.byType["gpu-process"] ?? NaN,
      // the machine's load (1-minute average), for reading the steps/s
      load: Number(readFileSync("/proc/loadavg", "utf8").split(" ")[0]),
    };
    last = s;
    samples.push(s);
    console.log(
      `${s.minute.toFixed(1).padStart(6)} ${String(s.steps).padStart(7)} ${s.rate.toFixed(2).padStart(8)} ${mib(s.jsHeap).padStart(12)} ${mib(s.workersHeap).padStart(14)} ${String(s.nodes).padStart(10)} ${mib(s.wasm).padStart(9)} ${`${s.workers} (${s.labWorkers}+${s.poolWorkers})`.padStart(19)} ${String(s.gpuBuffers).padStart(12)} ${String(s.curveNumbers).padStart(14)} ${mib(s.rss).padStart(17)} ${mib(s.renderer).padStart(9)} ${mib(s.gpu).padStart(12)} ${s.load.toFixed(1).padStart(5)}  ${event}`,
    );
    return s;
  }
  // one sample at a time: the sweeps' and the clock's take turns
  let sampling = Promise.resolve();
  const sample = (event) => (sampling = sampling.then(() => takeSample(event)));

  // The sweeps, one after another: each pressed once the last has finished
  // (its progress line cleared first, so that the last one's "done" is not
  // taken for this one's), timed from the press to its "done".
  const sweepRows = [];
  let sweepProblem = null;
  async function runSweeps() {
    const button = page.getByTestId("sweep");
    const progress = page.getByTestId("sweep-progress");
    for (let i = 1; i <= sweeps; i++) {
      await page.waitForFunction((b) => !b.disabled, await button.elementHandle(), { timeout: 600_000, polling: 500 });
      await progress.evaluate((e) => (e.textContent = ""));
      const t0 = Date.now();
      await button.click();
      await progress.filter({ hasText: /^(done|failed)/ }).waitFor({ timeout: 24 * 3_600_000 });
      const seconds = (Date.now() - t0) / 1000;
      const text = await progress.textContent();
      // "done: 40 steps on f32 CPU in 53 s": the page's own time, its steps alone
      const steps = Number(text.match(/^done: (\d+) steps/)?.[1] ?? NaN);
      const pageSeconds = Number(text.match(/ in (\d+(?:\.\d+)?) s/)?.[1] ?? NaN);
      const s = await sample(`sweep ${i} done`);
      sweepRows.push({ sweep: i, seconds, pageSeconds, steps, rate: steps / pageSeconds, text, s });
      if (text.startsWith("failed")) throw new Error(`sweep ${i} failed: ${await page.getByTestId("error").textContent()}`);
    }
  }

  let endAt = sweeps ? Infinity : started + minutes * 60_000;
  if (sweeps) {
    await sample("before the sweeps");
    runSweeps().then(
      () => (endAt = Date.now() + minutes * 60_000),
      (e) => {
        sweepProblem = e;
        endAt = Date.now();
      },
    );
  } else {
    await page.getByTestId("train-toggle").click();
    await sample("");
  }
  // a sample every `every` seconds, and one at the end; the clock wakes every
  // second, so that the end of the sweeps is not waited past
  while (Date.now() < endAt) {
    const due = Date.now() + every * 1000;
    while (Date.now() < Math.min(due, endAt)) await sleep(Math.min(1000, Math.min(due, endAt) - Date.now()));
    // the end, a moment after the last sample: that one stands for it
    if (Date.now() >= endAt && Date.now() - (started + last.minute * 60_000) < 5000) break;
    await sample(sweeps && (sweepRows.length === sweeps || sweepProblem) ? "left open" : "");
  }
  await sampling;
  const error = await page.getByTestId("error").textContent();
  mkdirSync(dirname(opts.csv), { recursive: true });
  const columns = [
    ["minute", (s) => s.minute.toFixed(2)],
    ["steps", (s) => s.steps],
    ["js_heap_bytes", (s) => s.jsHeap],
    ["dom_nodes", (s) => s.nodes],
    ["wasm_bytes", (s) => s.wasm],
    ["chromium_rss_bytes", (s) => s.rss],
    ["renderer_rss_bytes", (s) => s.renderer],
    ["gpu_process_rss_bytes", (s) => s.gpu],
    ["steps_per_s", (s) => (Number.isFinite(s.rate) ? s.rate.toFixed(3) : "")],
    ["status_steps_per_s", (s) => (Number.isFinite(s.statusRate) ? s.statusRate : "")],
    ["workers_js_heap_bytes", (s) => s.workersHeap],
    ["workers", (s) => s.workers],
    ["lab_workers", (s) => s.labWorkers],
    ["pool_workers", (s) => s.poolWorkers],
    ["worker_targets", (s) => s.workerTargets],
    ["gpu_devices", (s) => s.gpuDevices],
    ["gpu_buffers", (s) => s.gpuBuffers],
    ["curve_numbers", (s) => s.curveNumbers],
    ["load_1m", (s) => s.load],
    ["event", (s) => s.event],
  ];
  writeFileSync(opts.csv, [columns.map(([name]) => name).join(","), ...samples.map((s) => columns.map(([, f]) => f(s)).join(","))].join("\n") + "\n");

  // The least-squares slope of `key` over `rows` against `x`.
  const slopeOf = (rows, key, x) => {
    const n = rows.length;
    const mx = rows.reduce((a, s) => a + x(s), 0) / n;
    const my = rows.reduce((a, s) => a + s[key], 0) / n;
    const sxy = rows.reduce((a, s) => a + (x(s) - mx) * (s[key] - my), 0);
    const sxx = rows.reduce((a, s) => a + (x(s) - mx) ** 2, 0);
    return sxx > 0 ? sxy / sxx : 0;
  };
  const FIGURES = [
    ["jsHeap", "JS heap", mib],
    ["workersHeap", "workers' heap", mib],
    ["wasm", "wasm memory", mib],
    ["rss", "Chromium RSS", mib],
    ["renderer", "  renderer", mib],
    ["gpu", "  GPU process", mib],
    ["nodes", "DOM nodes", String],
    ["workers", "workers", String],
    ["gpuBuffers", "GPU buffers", String],
    ["curveNumbers", "curve numbers", String],
    ["load", "machine load", (x) => x.toFixed(1)],
  ];
  const range = (rows, key, unit) => {
    const xs = rows.map((s) => s[key]).filter(Number.isFinite);
    return xs.length ? `${unit(Math.min(...xs))} to ${unit(Math.max(...xs))}${unit === mib ? " MiB" : ""}` : "n/a";
  };
  const signed = (x, unit) => (unit === mib ? `${x >= 0 ? "+" : ""}${mib(x)} MiB` : `${x >= 0 ? "+" : ""}${x.toFixed(unit === String ? 0 : 2)}`);

  console.log(`\n${samples.at(-1).steps} steps in ${samples.at(-1).minute.toFixed(1)} min; samples in ${opts.csv}`);
  const end = samples.at(-1);
  if (!sweeps) {
    // After a warm-up (the first tenth of the run: kernels compiled, charts,
    // samples and the first validation made), the range of each figure and
    // its trend: the least-squares slope, per 10 minutes.
    const body = samples.filter((s) => s.minute >= minutes / 10);
    console.log(`from minute ${(minutes / 10).toFixed(1)} on (${body.length} samples):`);
    for (const [key, label, unit] of FIGURES) {
      if (body.length < 2) break;
      console.log(`${label.padEnd(14)} ${range(body, key, unit)}; trend ${signed(10 * slopeOf(body, key, (s) => s.minute), unit)} per 10 min`);
    }
    // the figures at minute 1 (the sample nearest it) and at the end
    const one = samples.reduce((a, s) => (Math.abs(s.minute - 1) < Math.abs(a.minute - 1) ? s : a));
    console.log(`\nat minute ${one.minute.toFixed(1)} and at minute ${end.minute.toFixed(1)}:`);
    for (const [key, label, unit] of FIGURES) console.log(`${label.padEnd(14)} ${unit(one[key])} → ${unit(end[key])}${unit === mib ? " MiB" : ""}`);
    // steps/s: between the first two samples after minute 1, and the last two
    const rated = samples.filter((s) => Number.isFinite(s.rate) && s.minute > 1);
    if (rated.length >= 2) {
      const first = rated[0];
      const lastRate = rated.at(-1);
      const mean = (end.steps - one.steps) / ((end.minute - one.minute) * 60);
      console.log(
        `steps/s       ${first.rate.toFixed(2)} (to minute ${first.minute.toFixed(1)}) → ${lastRate.rate.toFixed(2)} (to minute ${lastRate.minute.toFixed(1)}); ` +
          `trend ${signed(10 * slopeOf(rated, "rate", (s) => s.minute), Number)} per 10 min; mean ${mean.toFixed(2)} from minute ${one.minute.toFixed(1)}`,
      );
    }
  } else {
    console.log(`\nseconds: from the press to "done"; steps/s: the sweep's steps over the seconds its progress line gives`);
    console.log(`sweep  seconds  steps/s  js-heap MiB  workers' heap  wasm MiB  workers (lab+pool)  gpu-buffers  chromium RSS MiB  renderer  gpu-process`);
    for (const { sweep, seconds, rate, s } of sweepRows) {
      console.log(
        `${String(sweep).padStart(5)} ${seconds.toFixed(0).padStart(8)} ${rate.toFixed(2).padStart(8)} ${mib(s.jsHeap).padStart(12)} ${mib(s.workersHeap).padStart(14)} ${mib(s.wasm).padStart(9)} ${`${s.workers} (${s.labWorkers}+${s.poolWorkers})`.padStart(19)} ${String(s.gpuBuffers).padStart(12)} ${mib(s.rss).padStart(17)} ${mib(s.renderer).padStart(9)} ${mib(s.gpu).padStart(12)}`,
      );
    }
    // after the first sweep (its lab worker started, its module grown): the
    // trend per sweep of what each sweep's end leaves
    const body = sweepRows.slice(1).map((r) => ({ ...r.s, sweep: r.sweep, sweepRate: r.rate }));
    if (body.length >= 2) {
      console.log(`\nfrom sweep 2 on (${body.length} sweeps), each sweep's end:`);
      for (const [key, label, unit] of [...FIGURES, ["sweepRate", "steps/s", Number]]) {
        console.log(`${label.padEnd(14)} ${range(body, key, unit === Number ? (x) => x.toFixed(2) : unit)}; trend ${signed(slopeOf(body, key, (s) => s.sweep), unit)} per sweep`);
      }
    }
    console.log(`\nleft open until minute ${end.minute.toFixed(1)}: ${end.workers} workers (${end.labWorkers} lab + ${end.poolWorkers} pool), ${mib(end.wasm)} MiB wasm, ${mib(end.jsHeap)} + ${mib(end.workersHeap)} MiB JS heap`);
  }
  console.log(`workers alive at the end: ${end.workers} (${end.labWorkers} lab, ${end.poolWorkers} of their pools; ${end.workerTargets} worker targets over CDP); GPU devices the lab workers opened: ${end.gpuDevices}; GPU buffers held: ${end.gpuBuffers}`);
  if (error) console.log(`the page's error line: ${error}`);
  if (consoleErrors.length) console.log(`console errors (${consoleErrors.length}), the first:\n${consoleErrors.slice(0, 5).join("\n")}`);
  if (sweepProblem) {
    console.log(`the sweeps stopped: ${sweepProblem.message ?? sweepProblem}`);
    process.exitCode = 1;
  }
  if (problems.length) {
    console.log(`page errors:\n${problems.join("\n")}`);
    process.exitCode = 1;
  }
} finally {
  await browser.close();
  server.close();
}
