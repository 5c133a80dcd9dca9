// The seed write-up's two figures, as <gradlab-seed-figures> (elements.js)
// shows them above the lab: naive's logged and true loss minus the full
// batch's, and ‖ΔW − ΔW_full‖ at the last step, against G, every shipped
// seed's point with the mean ± sd over the seeds. The numbers are the CLI's
// (`gradlab figures`, www/lab/seed-figures.json, loaded with the page), not
// computed here. "Run it yourself" trains one seed of the same lab in this
// browser (a lab worker, remote.js, on the f32 CPU backend the file was
// computed on, with the file's own settings) and draws its points over the
// shipped ones as the steps arrive: running means over the steps so far and
// the distance now, which are the file's figures once the last step is in.
// With `only` ("loss" or "distance") the panel shows that one figure alone,
// as <gradlab-figure name="loss-vs-g"> / "distance-vs-g" do (www/figure.js),
// its caption visible and its run's button under it.
import { fetchPackageFile, packageFile } from "../assets.js";
import uPlot from "../../vendor/uPlot.esm.js";
import { button, el, errorLine, errorText, showMessage, stepClock } from "../ui.js";
import { axisStyle, ink, loadStrategies, paperHooks, strategyStyle, widthOf } from "./charts.js";
import { exact } from "./numbers.js";
import { createLab } from "./remote.js";
import { SHIPPED_BASE } from "./weights.js";

// named literally so that bundlers copy them (assets.js)
const DATA_URL = () => packageFile("www/lab/seed-figures.json", new URL("./seed-figures.json", import.meta.url));
const STYLES = () => packageFile("www/lab/seedfigures.css", new URL("./seedfigures.css", import.meta.url));

// The file's shape, checked once so that a stale or hand-edited file is
// refused in words naming the field rather than drawn wrong.
function checkData(data) {
  const fail = (field, why) => {
    throw new Error(`seed-figures.json: ${field} ${why}`);
  };
  if (!data || typeof data !== "object") fail("(the whole file)", "is not a JSON object");
  if (!Array.isArray(data.per_seed) || data.per_seed.length === 0) fail("per_seed", "must list at least one seed");
  if (!Number.isInteger(data.steps) || data.steps < 1) fail("steps", `must be a whole number of steps, got ${JSON.stringify(data.steps)}`);
  if (!data.settings || typeof data.settings !== "object") fail("settings", "must be the lab settings the seeds were trained with");
  if (typeof data.start !== "string" || !data.start.endsWith(SHIPPED_BASE.file)) fail("start", `must name the shipped base (${SHIPPED_BASE.file}), got ${JSON.stringify(data.start)}`);
  const gs = data.per_seed[0].points?.map((p) => `${p.strategy} ${p.g}`).join();
  for (const [i, s] of data.per_seed.entries()) {
    if (!Number.isInteger(s.seed)) fail(`per_seed[${i}].seed`, `must be a whole number, got ${JSON.stringify(s.seed)}`);
    if (!Array.isArray(s.points) || s.points.map((p) => `${p.strategy} ${p.g}`).join() !== gs) fail(`per_seed[${i}].points`, "must hold the same runs as the first seed's");
    for (const [j, p] of s.points.entries()) {
      for (const key of ["logged_gap", "true_gap", "distance"]) if (!Number.isFinite(p[key])) fail(`per_seed[${i}].points[${j}].${key}`, `must be a number, got ${JSON.stringify(p[key])}`);
    }
  }
  return data;
}

let shipped;
export const loadSeedFigures = () =>
  (shipped ??= fetchPackageFile(DATA_URL(), { name: "the seed's figures", kind: "JSON" })
    .then((r) => r.json())
    .then(checkData)
    .catch((e) => {
      shipped = undefined;
      throw e;
    }));

// mean and sample standard deviation, as the CLI's MeanSd
function meanSd(xs) {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = xs.length > 1 ? Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1)) : 0;
  return { mean, sd };
}

// What the figures draw of `data`: G in ascending order (1 is the full
// batch), and per figure quantity and strategy each seed's values and their
// mean ± sd, by G.
function figureData(data) {
  const points = (s) => s.points.filter((p) => p.strategy !== "corrected");
  const gs = points(data.per_seed[0]).map((p) => p.g).sort((a, b) => a - b);
  const at = (s, strategy, g) => s.points.find((p) => p.g === g && (g === 1 ? p.strategy === "full" : p.strategy === strategy));
  const of = (strategy, key) => {
    const seeds = data.per_seed.map((s) => gs.map((g) => at(s, strategy, g)?.[key] ?? null));
    const stats = gs.map((_, k) => meanSd(seeds.map((v) => v[k]).filter((v) => v !== null)));
    return { seeds, mean: stats.map((s) => s.mean), sd: stats.map((s) => s.sd) };
  };
  return {
    gs,
    seeds: data.per_seed.map((s) => s.seed),
    naive: { logged_gap: of("naive", "logged_gap"), true_gap: of("naive", "true_gap"), distance: of("naive", "distance") },
    corrected: { logged_gap: of("corrected", "logged_gap"), distance: of("corrected", "distance") },
  };
}

// A seed's points sit a little apart along G (in octaves), so that five
// seeds at one G stay five dots.
const jitter = (k, n) => 2 ** (((k - (n - 1) / 2) / Math.max(1, n - 1)) * 0.35);

// uPlot's draw hook for `spreads` ([{series, seeds, mean, sd, colour}]):
// every seed's dot and a bar from mean − sd to mean + sd, for series shown.
function spreadHook(gs, spreads) {
  return (u) => {
    const { ctx } = u;
    const r = Math.max(2, 2.5 * devicePixelRatio);
    ctx.save();
    for (const s of spreads) {
      if (!u.series[s.series].show) continue;
      ctx.strokeStyle = ctx.fillStyle = s.colour;
      ctx.lineWidth = 1.5 * devicePixelRatio;
      gs.forEach((g, k) => {
        if (g === 1) return;
        const x = u.valToPos(g, "x", true);
        const [lo, hi] = [s.mean[k] - s.sd[k], s.mean[k] + s.sd[k]].map((v) => u.valToPos(v, "y", true));
        const cap = 5 * devicePixelRatio;
        ctx.beginPath();
        ctx.moveTo(x, lo);
        ctx.lineTo(x, hi);
        ctx.moveTo(x - cap, lo);
        ctx.lineTo(x + cap, lo);
        ctx.moveTo(x - cap, hi);
        ctx.lineTo(x + cap, hi);
        ctx.stroke();
        ctx.globalAlpha = 0.45;
        s.seeds.forEach((values, j) => {
          const v = values[k];
          if (v == null) return;
          ctx.beginPath();
          ctx.arc(u.valToPos(g * jitter(j, s.seeds.length), "x", true), u.valToPos(v, "y", true), r, 0, 2 * Math.PI);
          ctx.fill();
        });
        ctx.globalAlpha = 1;
      });
    }
    ctx.restore();
  };
}

// uPlot's draw hook for the live run's rings: series `series` (whose own
// points are not drawn), each value at its G shifted by `shift`, where that
// seed's dot sits when it is a shipped seed; `size` in CSS pixels.
function ringHook(gs, rings, shift, colour) {
  return (u) => {
    const { ctx } = u;
    ctx.save();
    ctx.strokeStyle = colour;
    ctx.lineWidth = 2 * devicePixelRatio;
    for (const { series, size } of rings) {
      if (!u.series[series].show) continue;
      gs.forEach((g, k) => {
        const v = u.data[series][k];
        if (v == null) return;
        ctx.beginPath();
        ctx.arc(u.valToPos(g * shift, "x", true), u.valToPos(v, "y", true), (size / 2) * devicePixelRatio, 0, 2 * Math.PI);
        ctx.stroke();
      });
    }
    ctx.restore();
  };
}

// y range holding every value of `lists` (nulls skipped), padded.
function rangeOf(lists) {
  const all = lists.flat().filter((v) => v != null && Number.isFinite(v));
  const lo = Math.min(0, ...all);
  const hi = Math.max(0, ...all);
  const pad = (hi - lo || 1e-6) * 0.08;
  return [lo - pad, hi + pad];
}

// Numbers in the figures' text alternatives: three significant digits.
const short = (v) => (Math.abs(v) >= 0.01 && Math.abs(v) < 1000 ? v.toPrecision(3) : v.toExponential(1));

export class SeedFiguresPanel {
  // `only`: "loss" or "distance" for one figure alone; both when absent
  constructor(root, { only = null } = {}) {
    if (only !== null && only !== "loss" && only !== "distance") throw new Error(`SeedFiguresPanel: only must be "loss" or "distance", got ${JSON.stringify(only)}`);
    this.root = root;
    this.only = only;
    root.classList.add("gl-seedfigs");
    if (only) root.classList.add("gl-seedfigs-one");
    this.error = errorLine({ "data-testid": "seed-figures-error" });
    this.lossNode = el("div", { class: "gl-chart", "data-testid": "seed-figure-loss", role: "img", "aria-label": "Naive accumulation's logged and true loss minus the full batch's, against G" });
    this.distNode = el("div", { class: "gl-chart", "data-testid": "seed-figure-distance", role: "img", "aria-label": "Distance of naive accumulation's LoRA weights from the full batch's at the last step, against G" });
    // one line under each figure; what they show in full, and how they were
    // made, folded under them, so the lab's Start button is on the first screen
    this.lossLine = el("figcaption", { class: "gl-small" });
    this.distLine = el("figcaption", { class: "gl-small" });
    this.lossCaption = el("p", { class: "gl-small", "data-testid": "seed-figure-loss-caption" });
    this.distCaption = el("p", { class: "gl-small", "data-testid": "seed-figure-distance-caption" });
    this.runBtn = button("Run it yourself", "run-yourself");
    this.runBtn.disabled = true;
    this.seedInput = el("input", { type: "number", min: "1", max: "1000000", step: "1", value: "1", "data-testid": "run-yourself-seed", "aria-label": "Seed to re-run" });
    this.bar = el("progress", { max: "1", value: "0", "data-testid": "run-yourself-progress", hidden: "" });
    this.progress = el("span", { class: "gl-small", "data-testid": "run-yourself-status", "aria-live": "polite" });
    this.about = el("p", { class: "gl-small", "data-testid": "seed-figures-about" });
    root.append(
      el("link", { rel: "stylesheet", href: STYLES().href }),
      this.error,
      el("div", { class: "gl-seedfigs-grid" }, ...[
        only !== "distance" && el("figure", {}, this.lossNode, this.lossLine),
        only !== "loss" && el("figure", {}, this.distNode, this.distLine),
      ].filter(Boolean)),
      el("div", { class: "gl-seedfigs-run" }, this.runBtn, el("label", { class: "gl-small" }, "seed ", this.seedInput), this.bar, this.progress),
      el("details", { class: "gl-seedfigs-more" }, el("summary", { class: "gl-small", text: "What the figures show, and how they were made" }), this.lossCaption, this.distCaption, this.about),
    );
    this.runBtn.addEventListener("click", () => (this.running ? this.cancel() : this.runYourself()));
    // made again, not only redrawn, when the reader's light/dark preference
    // flips: the legend's swatch of the live points is drawn in the text's colour
    globalThis.matchMedia?.("(prefers-color-scheme: dark)").addEventListener("change", () => {
      this.drawnLabel = null;
      if (this.data) this.draw();
    });
    this.ready = Promise.all([loadSeedFigures(), loadStrategies()]).then(
      ([data]) => this.show(data),
      (e) => showMessage(this.error, `The seed figures could not be loaded: ${errorText(e)}`),
    );
  }

  show(data) {
    this.data = data;
    this.fig = figureData(data);
    const n = this.fig.seeds.length;
    const seeds = `${n} seeds (${this.fig.seeds.join(", ")})`;
    const s = data.settings;
    this.seedInput.value = String(this.fig.seeds[0]);
    this.lossLine.textContent = `Naive's loss minus the full batch's (solid: logged, dashed: true); blue: corrected; rings: your run. ${n} seeds, mean ± sd.`;
    this.distLine.textContent = `How far naive's adapters end from the full batch's; blue: corrected; rings: your run. ${n} seeds, mean ± sd.`;
    this.lossCaption.textContent =
      `How much higher naive accumulation's loss is than the full batch's, averaged over the ${data.steps} steps, for G micro-batches per step (G = 1 is the full batch itself). ` +
      `Solid: the loss naive would print (logged); dashed: its true loss Σℓ/N on the same batches. Dots: each of ${seeds}; bars: mean ± one standard deviation. ` +
      `The printed gap grows with G; part of it is how naive averages, part a worse model.`;
    this.describeResults();
    this.distCaption.textContent =
      `How far naive's LoRA weights end from the full batch's after ${data.steps} steps, ‖ΔW − ΔW_full‖, for each G. Dots: each of ${seeds}; bars: mean ± one standard deviation. ` +
      `The further the weighting is from the full batch's (more, smaller micro-batches), the further the weights go; corrected accumulation (thin line) stays on the full batch.`;
    this.about.textContent =
      `Computed by the command line (${data.command}) at commit ${String(data.commit ?? "unknown").slice(0, 10)}${data.uncommitted_changes ? " with uncommitted changes" : ""}, on the f32 CPU backend: ` +
      `LoRA r = ${s.lora_rank} on the shipped nano base, effective batch B = ${s.batch} whole verses (b = B/G each micro-batch) with their references masked, context ${s.seq_len}, ${s.optimizer.kind} lr ${s.optimizer.lr}, ${data.steps} steps. ` +
      `“Run it yourself” trains one seed of exactly this lab in your browser, on the CPU (one lab: the full batch and naive and corrected at every G), and draws its points (rings) over the shipped ones as they come in.`;
    this.draw();
    this.runBtn.disabled = false;
  }

  // Each figure's text alternative states what it shows, from the file's
  // numbers: naive's mean at the smallest and largest G past the full
  // batch, and corrected's largest mean beside it.
  describeResults() {
    const { gs, naive, corrected, seeds } = this.fig;
    const k0 = gs.findIndex((g) => g > 1);
    const k1 = gs.length - 1;
    const worst = (q) => short(Math.max(...q.mean.map(Math.abs)));
    const over = `mean of ${seeds.length} seeds, ${this.data.steps} steps`;
    this.lossNode.setAttribute(
      "aria-label",
      `Naive accumulation's logged loss minus the full batch's, against G: ${short(naive.logged_gap.mean[k0])} nats at G = ${gs[k0]}, ${short(naive.logged_gap.mean[k1])} at G = ${gs[k1]} ` +
        `(true loss: ${short(naive.true_gap.mean[k0])} and ${short(naive.true_gap.mean[k1])}); corrected accumulation's at most ${worst(corrected.logged_gap)}; ${over}.`,
    );
    this.distNode.setAttribute(
      "aria-label",
      `Distance of naive accumulation's LoRA weights from the full batch's after the last step, against G: ${short(naive.distance.mean[k0])} at G = ${gs[k0]}, ${short(naive.distance.mean[k1])} at G = ${gs[k1]}; ` +
        `corrected accumulation's at most ${worst(corrected.distance)}; ${over}.`,
    );
  }

  // Both figures (or the one asked for) from the shipped data and the live run so far.
  draw() {
    const { gs, naive, corrected } = this.fig;
    const live = this.live;
    const naiveColour = strategyStyle("naive").colour;
    const correctedStyle = strategyStyle("corrected");
    const text = ink(this.only === "distance" ? this.distNode : this.lossNode);
    // drawn by ringHook, beside that seed's dot; the series give the legend
    const liveSeries = (label) => ({ label, stroke: text, width: 2, paths: () => null, points: { show: false } });
    const k = live ? this.fig.seeds.indexOf(live.seed) : -1;
    const shift = k >= 0 ? jitter(k, this.fig.seeds.length) : 1;
    const liveAt = (key) => gs.map((g) => (live ? live.points[g]?.[key] ?? null : null));
    // the step count is in the progress line: a legend's text is set when the plot is made
    const liveLabel = live ? `your seed ${live.seed}` : "your run";
    // on a phone the figures are half a screen wide: every G's tick still
    // shows, the axis titles give way to the one-line caption above the run
    const narrow = (node) => width(node) < 300;
    const xAxis = (node) => ({ label: narrow(node) ? "G" : "G, micro-batches per step", ...axisStyle(node), splits: () => gs, space: 8 });
    const xScale = { time: false, distr: 3, log: 2, range: () => [gs[0] / 1.3, gs.at(-1) * 1.3] };
    // two figures side by side even on a phone: as wide as their column
    const width = (node) => Math.max(140, Math.min(node.clientWidth || widthOf(node), 560));
    const height = (node) => (width(node) < 300 ? 170 : 185);
    const value = (u, v) => exact(v);

    const lossLists = [naive.logged_gap, naive.true_gap].flatMap((q) => [...q.seeds, q.mean.map((m, k) => m + q.sd[k]), q.mean.map((m, k) => m - q.sd[k])]);
    const lossOpts = {
      width: width(this.lossNode),
      height: height(this.lossNode),
      title: `naive's loss − the full batch's, ${this.data.steps}-step mean`,
      legend: { live: false },
      hooks: { ...paperHooks(this.lossNode), draw: [spreadHook(gs, [
        { series: 1, ...naive.logged_gap, colour: naiveColour },
        { series: 2, ...naive.true_gap, colour: naiveColour },
      ]), ringHook(gs, [{ series: 4, size: 12 }, { series: 5, size: 8 }], shift, text)] },
      scales: { x: xScale, y: { range: () => rangeOf([...lossLists, liveAt("logged_gap"), liveAt("true_gap")]) } },
      axes: [xAxis(this.lossNode), { label: narrow(this.lossNode) ? "" : "nats per token", ...axisStyle(this.lossNode), ...(narrow(this.lossNode) ? {} : { size: 70 }) }],
      series: [
        { label: "G", value },
        { label: "naive, logged", stroke: naiveColour, width: 2, points: { show: true, size: 7 }, value },
        { label: "naive, true", stroke: naiveColour, width: 2, dash: [6, 4], points: { show: true, size: 7 }, value },
        { label: "corrected", stroke: correctedStyle.colour, width: 1, dash: [2, 3], value },
        { ...liveSeries(`${liveLabel}, logged`), value },
        { ...liveSeries(`${liveLabel}, true`), dash: [6, 4], value },
      ],
    };
    const lossData = [gs, naive.logged_gap.mean, naive.true_gap.mean, corrected.logged_gap.mean, liveAt("logged_gap"), liveAt("true_gap")];

    const distLists = [...naive.distance.seeds, naive.distance.mean.map((m, k) => m + naive.distance.sd[k])];
    const distOpts = {
      width: width(this.distNode),
      height: height(this.distNode),
      title: `‖ΔW − ΔW_full‖ after ${this.data.steps} steps`,
      legend: { live: false },
      hooks: { ...paperHooks(this.distNode), draw: [spreadHook(gs, [{ series: 1, ...naive.distance, colour: naiveColour }]), ringHook(gs, [{ series: 3, size: 12 }], shift, text)] },
      scales: { x: xScale, y: { range: () => rangeOf([...distLists, liveAt("distance")]) } },
      axes: [xAxis(this.distNode), { label: narrow(this.distNode) ? "" : "distance", ...axisStyle(this.distNode), ...(narrow(this.distNode) ? {} : { size: 60 }) }],
      series: [
        { label: "G", value },
        { label: "naive", stroke: naiveColour, width: 2, points: { show: true, size: 7 }, value },
        { label: "corrected", stroke: correctedStyle.colour, width: 1, dash: [2, 3], value },
        { ...liveSeries(liveLabel), value },
      ],
    };
    const distData = [gs, naive.distance.mean, corrected.distance.mean, liveAt("distance")];

    // the live points change every step: new data on the same plots, unless
    // a label changed (a legend's text is set when the plot is made)
    if (this.drawnLabel === liveLabel && (this.lossPlot || this.distPlot)) {
      this.lossPlot?.setData(lossData);
      this.distPlot?.setData(distData);
      return;
    }
    this.lossPlot?.destroy();
    this.distPlot?.destroy();
    // a figure left out is not drawn at all (its node is not on the page)
    this.lossPlot = this.only === "distance" ? null : new uPlot(lossOpts, lossData, this.lossNode);
    this.distPlot = this.only === "loss" ? null : new uPlot(distOpts, distData, this.distNode);
    this.drawnLabel = liveLabel;
  }

  // Trains the chosen seed's lab here and draws its points as steps arrive.
  async runYourself() {
    const seed = Number(this.seedInput.value);
    if (!Number.isInteger(seed) || seed < 1 || seed > 1e6) {
      showMessage(this.error, `seed must be a whole number from 1 to 1000000, got "${String(this.seedInput.value).slice(0, 20)}"`);
      return;
    }
    showMessage(this.error, "");
    const { steps, settings } = this.data;
    const token = (this.running = {});
    this.runBtn.textContent = "Cancel";
    this.seedInput.disabled = true;
    this.bar.hidden = false;
    this.bar.value = 0;
    const began = performance.now();
    let lab;
    try {
      this.progress.textContent = "fetching the shipped base and building the lab…";
      const response = await fetchPackageFile(SHIPPED_BASE.url(), { name: "the shipped base", kind: "weights" });
      const base = new Uint8Array(await response.arrayBuffer());
      if (this.running !== token) return;
      lab = await createLab({ ...settings, seed }, "cpu", base);
      if (this.running !== token) return;
      const specs = lab.runs();
      const G = (spec) => settings.batch / spec.micro_batch;
      // per run, sums over the steps so far of its logged and true loss
      // minus the full batch's; the figures' points are their means
      const byStep = new Map();
      const sums = specs.map(() => ({ logged: 0, true: 0, n: 0, distance: 0 }));
      this.live = { seed, step: 0, done: false, points: {} };
      const take = (metrics) => {
        for (const m of metrics) {
          if (!byStep.has(m.step)) byStep.set(m.step, []);
          const at = byStep.get(m.step);
          at[m.run] = m;
          if (at.filter(Boolean).length < specs.length) continue;
          byStep.delete(m.step);
          at.forEach((r, i) => {
            sums[i].logged += r.logged_loss - at[0].logged_loss;
            sums[i].true += r.true_loss - at[0].true_loss;
            sums[i].n += 1;
            sums[i].distance = r.weight_distance;
          });
          this.live.step = Math.max(this.live.step, m.step);
        }
        specs.forEach((spec, i) => {
          if (spec.strategy === "corrected" || !sums[i].n) return;
          this.live.points[G(spec)] = { logged_gap: sums[i].logged / sums[i].n, true_gap: sums[i].true / sums[i].n, distance: sums[i].distance };
        });
      };
      const clock = stepClock(steps);
      for (let i = 0; i < steps; i++) {
        take(await lab.step(1));
        if (this.running !== token) return;
        this.bar.value = (i + 1) / steps;
        this.progress.textContent = `step ${i + 1} of ${steps} on this browser's CPU${lab.threads?.() > 1 ? ` (${lab.threads()} threads)` : ""}, about ${Math.ceil(clock.left(i))} s left`;
        this.draw();
      }
      take(await lab.flush());
      if (this.running !== token) return;
      this.live.done = true;
      this.live.seconds = (performance.now() - began) / 1000;
      this.draw();
      this.progress.textContent = `done: seed ${seed}, ${steps} steps in ${this.live.seconds.toFixed(0)} s. ${this.agreement(seed)}`;
    } catch (e) {
      if (this.running === token) {
        showMessage(this.error, `Run it yourself failed: ${errorText(e)}`);
        this.progress.textContent = "";
      }
    } finally {
      lab?.free();
      if (this.running === token) this.finish();
    }
  }

  // How the live seed compares with the same seed in the file, in words.
  agreement(seed) {
    const shippedSeed = this.data.per_seed.find((s) => s.seed === seed);
    if (!shippedSeed) return `Seed ${seed} is not among the shipped ones (${this.fig.seeds.join(", ")}): a fresh draw beside them.`;
    let worst = 0;
    for (const p of shippedSeed.points.filter((p) => p.strategy !== "corrected" && p.g !== 1)) {
      const mine = this.live.points[p.g];
      for (const key of ["logged_gap", "true_gap", "distance"]) worst = Math.max(worst, Math.abs(mine[key] - p[key]) / Math.max(Math.abs(p[key]), 1e-12));
    }
    this.live.worstRelative = worst;
    return worst === 0 ? "Its naive points equal the shipped seed's exactly." : `Its naive points are within ${worst.toExponential(1)} (relative) of the shipped seed's.`;
  }

  // Stops a run in flight; its partial points are taken off the figures.
  cancel() {
    if (!this.running) return;
    const at = this.live?.step ?? 0;
    this.finish();
    this.live = null;
    if (this.data) this.draw();
    this.progress.textContent = `cancelled${at ? ` at step ${at}` : ""}`;
  }

  finish() {
    this.running = null;
    this.runBtn.textContent = "Run it yourself";
    this.seedInput.disabled = false;
    this.bar.hidden = true;
  }

  // The shipped figures' data and the live run's points so far, for tests
  // and for readers who want the numbers.
  figures() {
    return this.data ? { ...figureData(this.data), steps: this.data.steps, live: this.live ? structuredClone(this.live) : null } : undefined;
  }
}
