// The lab's live charts (uPlot): how runs are named and coloured (from each
// strategy's display metadata in Rust, accum.rs `Strategy::style`), the four
// live charts (loss, each run's loss minus the full batch's, weight distance,
// gradient norm) with the f64 twin's curves beside them when precision is
// "both", the true/logged loss switch, the readouts of exact values under
// the cursor (each chart's live legend), chart text in the theme's colour,
// and the note that explains the colours. It only draws what it is given: it
// does not step the lab (training.js), run or draw the sweep (sweep.js,
// sweepcharts.js) or export (exports.js).
import uPlot from "../../vendor/uPlot.esm.js";
import { button, el } from "../ui.js";
import { loadGradlab } from "../wasm.js";
import { gaps, GAP_WINDOW } from "./curves.js";
import { keptIndices } from "./decimate.js";
import { distinctTicks, exact } from "./numbers.js";

// Every strategy's display metadata from the wasm module (`strategies()`):
// {name, label, colour, shades, dashed}, the full batch first, keyed by the
// name the lab's runs carry ("full", "naive", "local", "corrected"). Loaded
// once (`loadStrategies`, which the Charts constructor starts): everything
// that names or draws a run does so after a lab was built, which awaits the
// same module, so `strategyStyle` has it by then.
let styles = null;
export function loadStrategies() {
  return loadGradlab().then((gl) => (styles ??= gl.strategies()));
}

// The display metadata of `strategy` (a name); a strategy the module does
// not describe is an error, never an undefined colour.
export function strategyStyle(strategy) {
  if (!styles) throw new Error(`the strategies' styles are used before the module has loaded (${strategy})`);
  const style = styles.find((s) => s.name === strategy);
  if (!style) throw new Error(`no display metadata for strategy "${strategy}"`);
  return style;
}

// The strategies' names in the module's order, the full batch first.
export const strategyNames = () => {
  if (!styles) throw new Error("the strategies' styles are used before the module has loaded");
  return styles.map((s) => s.name);
};

export function runLabel(spec) {
  const { label } = strategyStyle(spec.strategy);
  return spec.strategy === "full" ? label : `${label} (b=${spec.micro_batch})`;
}

// whole steps (and whole G) on the x axes, never 2.5
export const STEP_TICKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];

export const widthOf = (node) => Math.max(280, Math.min(760, node.clientWidth || 600));

// Chart text and lines in the colour of the text around `node` (the theme's
// --fg, a host page's --gradlab-fg), read when uPlot draws: canvas text does
// not follow CSS, and a filter that inverted the charts in dark mode made
// their DOM titles and legends dark on dark. `alpha` below 1 for grid lines.
export function ink(node, alpha = 1) {
  const rgb = getComputedStyle(node).color.match(/[\d.]+/g) ?? ["17", "24", "39"];
  return `rgba(${rgb[0]}, ${rgb[1]}, ${rgb[2]}, ${alpha})`;
}

// A y axis as wide as its longest label: labels that tell 5.5807557 from
// 5.5807558 are longer than uPlot's fixed 50 px, and were cut at the left.
function axisSize(u, values, axisIdx, cycleNum) {
  const axis = u.axes[axisIdx];
  if (axis.side % 2 === 0) return 50;
  if (cycleNum > 1) return axis._size;
  const longest = (values ?? []).reduce((a, v) => (v.length > a.length ? v : a), "");
  u.ctx.font = axis.font[0];
  return Math.ceil(axis.ticks.size + axis.gap + 4 + u.ctx.measureText(longest).width / (devicePixelRatio || 1));
}

// uPlot axis options for a chart inside `node`: labels that never repeat
// (numbers.js) and are never cut, text in the theme's colour, a faint grid
// and ticks.
export function axisStyle(node) {
  const faint = { stroke: () => ink(node, 0.12), width: 1 };
  // grid lines only where there is a label: a log axis has a tick at every 2…9
  const labelled = (u, splits, i, space, incr) => u.axes[i].filter(u, splits, i, space, incr);
  return { values: distinctTicks, size: axisSize, stroke: () => ink(node), grid: { ...faint, filter: labelled }, ticks: { ...faint, size: 6 } };
}

// The colour behind `node`: the first ancestor's (across shadow roots)
// background that is not transparent.
function paperOf(node) {
  for (let n = node; n; n = n.parentElement ?? n.getRootNode().host) {
    const bg = getComputedStyle(n).backgroundColor;
    if (bg && bg !== "transparent" && !/^rgba\(.*,\s*0\)$/.test(bg)) return bg;
  }
  return "#ffffff";
}

// uPlot hooks for a chart inside `node`: its canvas filled with the colour
// behind it before each draw, so a downloaded PNG (exports.js) reads as the
// page did, light text on dark included.
export const paperHooks = (node) => ({
  drawClear: [
    (u) => {
      u.ctx.save();
      u.ctx.fillStyle = paperOf(node);
      u.ctx.fillRect(0, 0, u.ctx.canvas.width, u.ctx.canvas.height);
      u.ctx.restore();
    },
  ],
});

// Redraws `plots()` when the reader's light/dark preference flips: their
// canvas text was drawn in the old colour.
export function followScheme(plots) {
  globalThis.matchMedia?.("(prefers-color-scheme: dark)").addEventListener("change", () => {
    for (const p of plots()) p.redraw(false, true);
  });
}

// The live legend as the chart's readout: the step and every run's exact
// value under the cursor (mouse hover, or a tap, which the browser sends
// uPlot as a mouse move); `name` makes it data-testid readout-<name>.
export function readout(plot, name) {
  const legend = plot.root.querySelector(".u-legend");
  if (legend) legend.dataset.testid = `readout-${name}`;
  return plot;
}
export const stepSeries = { label: "step", value: (u, v) => (v == null ? "—" : String(v)) };

// What the three strategies compute, in the colours of the charts.
export function explanation() {
  const explain = el("div", { class: "gl-explain" });
  explain.innerHTML = `
      <p>Every step uses the same <var>B</var> sequences, cut into <var>G</var> = <var>B</var>/<var>b</var> micro-batches.
      Token <var>t</var> has loss ℓ<sub>t</sub>; micro-batch <var>g</var> has <var>N</var><sub>g</sub> real (unpadded) tokens, <var>N</var> = Σ<var>N</var><sub>g</sub>.</p>
      <ul>
        <li><b data-colour="full">Full batch</b>: loss Σ<sub>t</sub> ℓ<sub>t</sub> / <var>N</var>.</li>
        <li><b data-colour="naive">Naive accumulation</b>: loss (1/<var>G</var>) Σ<sub>g</sub> (Σ<sub>t∈g</sub> ℓ<sub>t</sub> / <var>N</var><sub>g</sub>): every micro-batch counts the same, so tokens of short micro-batches count more.</li>
        <li><b data-colour="local">Local</b> (with more than one rank): each rank divides by its own token count, then the ranks' gradients are averaged — the same error one level up.</li>
        <li><b data-colour="corrected">Corrected accumulation</b>: every token's loss divided by the token count <var>N</var> of the whole accumulated batch — the full-batch gradient, up to float rounding.</li>
      </ul>
      <p>With packed windows every micro-batch holds the same count, so all <var>N</var><sub>g</sub> are equal and naive = corrected (the prompt mask goes off with packing: there are no prompts to mask). Whole documents of different lengths, or prompts of different lengths masked, make the counts differ, and the runs part.</p>`;
  // coloured through the CSSOM: a style attribute in markup is inline style,
  // which the pages' Content-Security-Policy refuses
  // (a module that fails to load is reported where the lab loads it)
  loadStrategies().then(() => {
    for (const b of explain.querySelectorAll("b[data-colour]")) b.style.color = strategyStyle(b.dataset.colour).colour;
  }, () => {});
  return explain;
}

// What the loss chart shows, and why the two kinds differ from step 1.
const LOSS_KINDS = {
  true: {
    title: "true loss Σℓ/N (nats per token)",
    button: "Show the logged loss",
    note: "Shown: the true loss Σℓ/N of each step's batch, the same quantity for every run — compare runs by this.",
  },
  logged: {
    title: "logged loss: what each trainer would print (nats per token)",
    button: "Show the true loss",
    note: "Shown: the loss each trainer would log; naive's is the mean of its micro-batch means.",
  },
};
const WHY_THEY_DIFFER =
  "The two differ even at step 1, while every run still has the same weights: naive averages the same token losses differently (each micro-batch's mean counts the same), so that gap is a measurement effect, not yet divergence.";
const HOVER = "Hover over or tap a chart: its legend reads out every run's exact value at that step.";

// The difference chart's title per loss kind, and what it shows.
const GAP_TITLES = {
  true: `true loss − the full batch's (nats per token, mean of the last ${GAP_WINDOW} steps)`,
  logged: `logged loss − the full batch's (nats per token, mean of the last ${GAP_WINDOW} steps)`,
};
const GAP_NOTE =
  `Each run's loss minus the full batch's at the same step, as the loss switch above says (true or logged), smoothed by a moving mean over the last ${GAP_WINDOW} steps (fewer at the start). ` +
  "Above the zero line the run's loss is higher than the full batch's. A logged gap from step 1 is how naive averages, not yet its weights leaving; a true gap is the weights.";

// Index of the last drawn value of `ys`, as uPlot's points filter wants it.
function lastPoint(ys) {
  let k = ys.length - 1;
  while (k >= 0 && ys[k] == null) k--;
  return k >= 0 ? [k] : null;
}

// Series options of the runs `specs`; `twin`: the f64 copies, dotted.
// `stopped(plot, seriesIdx)`: whether that run was stopped (diverged); its
// curve then ends in a dot, as does a curve of one step (no line to draw).
function seriesOf(specs, twin, stopped) {
  return specs.map((s) => {
    const { colour, dashed } = strategyStyle(s.strategy);
    return {
      label: runLabel(s) + (twin ? " · f64" : ""),
      stroke: colour,
      width: twin ? 2.5 : dashed ? 2 : 1.5,
      dash: twin ? [2, 4] : dashed ? [6, 4] : undefined,
      spanGaps: true,
      value: (u, v) => exact(v),
      points: { show: false, size: 10, width: 2, fill: colour, stroke: colour, filter: (u, i) => (stopped(u, i) || u.data[0].length === 1 ? lastPoint(u.data[i]) : null) },
    };
  });
}

// The x values of the longer of `labs` ({step}), and each lab's `columns`
// (d, k, keep) of every run, null past its end, at the points kept for
// drawing (`keep`, decimate.js): only those are read, so a draw costs the
// points drawn, not the steps taken (a column may leave the others unset).
function aligned(labs, columns) {
  const x = labs.reduce((a, d) => (d.step.length > a.length ? d.step : a), []);
  const keep = keptIndices(x.length);
  const at = (a) => keep.map((i) => a[i] ?? null);
  return [at(x), ...labs.flatMap((d, k) => columns(d, k, keep).map(at))];
}

export class Charts {
  constructor() {
    this.loss = el("div", { class: "gl-chart", "data-testid": "chart-loss", role: "img", "aria-label": "Training loss of each run" });
    this.dist = el("div", { class: "gl-chart", "data-testid": "chart-distance", role: "img", "aria-label": "Weight distance to the full-batch run, log scale" });
    this.norm = el("div", { class: "gl-chart", "data-testid": "chart-gradnorm", role: "img", "aria-label": "Gradient norm of each run" });
    this.gap = el("div", { class: "gl-chart", "data-testid": "chart-gap", role: "img", "aria-label": "Each run's loss minus the full batch's, smoothed" });
    // for the panel's heading above the difference chart, and its caption below
    this.gapHeading = "Minus the full batch: each run's loss − the full batch's";
    this.gapNote = el("p", { class: "gl-small", "data-testid": "gap-note", text: GAP_NOTE });
    this.lossKind = "true";
    this.kindBtn = button(LOSS_KINDS.true.button, "loss-kind");
    this.kindBtn.dataset.kind = "true";
    this.kindNote = el("span", { text: LOSS_KINDS.true.note });
    this.kindLine = el("p", { class: "gl-small gl-kind" }, this.kindBtn, " ", this.kindNote, " ", el("span", { text: WHY_THEY_DIFFER }), " ", el("span", { text: HOVER }));
    this.listeners = [];
    // per plot, which of its series are stopped runs (index as uPlot's)
    this.stopped = new WeakMap();
    this.kindBtn.addEventListener("click", () => this.setLossKind(this.lossKind === "true" ? "logged" : "true"));
    followScheme(() => this.plots().map(([, p]) => p));
    loadStrategies().catch(() => {});
  }

  // `fn(kind)` after the reader switched between the true and the logged loss.
  onLossKind(fn) {
    this.listeners.push(fn);
  }

  setLossKind(kind) {
    this.lossKind = kind;
    this.kindBtn.dataset.kind = kind;
    this.kindBtn.textContent = LOSS_KINDS[kind].button;
    this.kindNote.textContent = LOSS_KINDS[kind].note;
    const title = this.lossPlot?.root.querySelector(".u-title");
    if (title) title.textContent = LOSS_KINDS[kind].title;
    const gapTitle = this.gapPlot?.root.querySelector(".u-title");
    if (gapTitle) gapTitle.textContent = GAP_TITLES[kind];
    for (const fn of this.listeners) fn(kind);
  }

  // Fresh, empty live charts for the runs `specs` (run 0 is the full batch)
  // and, when precision is "both", `twinSpecs` of the f64 lab; `loraRank`
  // above 0 when only LoRA adapters train.
  make(specs, twinSpecs = null, loraRank = 0) {
    for (const [, c] of this.plots()) c.destroy();
    this.twin = !!twinSpecs;
    const width = widthOf(this.loss);
    const stopped = (u, i) => this.stopped.get(u)?.[i] === true;
    const series = (filter) => [stepSeries, ...seriesOf(specs.filter(filter), false, stopped), ...(twinSpecs ? seriesOf(twinSpecs.filter(filter), true, stopped) : [])];
    const plot = (node, name, title, filter, { scales = {}, hooks = {}, height = 190 } = {}) => {
      const axes = axisStyle(node);
      const opts = {
        width,
        height,
        title,
        series: series(filter),
        axes: [{ label: "step", incrs: STEP_TICKS, ...axes }, axes],
        legend: { live: true },
        scales: { x: { time: false }, ...scales },
        hooks: { ...paperHooks(node), ...hooks },
      };
      return readout(new uPlot(opts, [[]], node), name);
    };
    const all = () => true;
    const notFull = (s) => s.strategy !== "full";
    this.lossPlot = plot(this.loss, "loss", LOSS_KINDS[this.lossKind].title, all);
    // signed and small (~1e-3): a linear axis that always holds 0, a zero
    // line, and the room for a few labels between them
    const withZero = (u, min, max) => {
      const lo = Math.min(min ?? 0, 0);
      const hi = Math.max(max ?? 0, 0);
      // a tenth of the span beyond either end, so nothing sits on the frame
      const pad = (hi - lo || Math.abs(hi) || 1e-9) * 0.1;
      return [lo - pad, hi + pad];
    };
    const zeroLine = (u) => {
      const y = Math.round(u.valToPos(0, "y", true)) + 0.5;
      const { ctx, bbox } = u;
      ctx.save();
      ctx.strokeStyle = ink(this.gap, 0.6);
      ctx.lineWidth = Math.max(1, devicePixelRatio || 1);
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
      ctx.restore();
    };
    this.gapPlot = plot(this.gap, "gap", GAP_TITLES[this.lossKind], notFull, { scales: { y: { range: withZero } }, hooks: { drawAxes: [zeroLine] }, height: 250 });
    const distTitle = loraRank ? `LoRA: ‖ΔW − ΔW_full‖, ΔW = (α/r)·B·A, r = ${loraRank}` : "weight distance";
    this.distPlot = plot(this.dist, "distance", distTitle, notFull, { scales: { y: { distr: 3 } } });
    this.normPlot = plot(this.norm, "gradnorm", "‖g‖ before clipping", all);
  }

  // Draws `data` ({step: [], runs: [{logged, true, dist, norm}]}) and, when
  // given, the f64 twin's `twin` of the same shape; the loss as the switch says.
  draw(data, twin = null) {
    if (!this.lossPlot) return;
    const labs = this.twin && twin ? [data, twin] : [data];
    const key = this.lossKind;
    const stops = (runs) => [false, ...labs.flatMap((d) => runs(d).map((r) => r.stopped != null))];
    this.stopped.set(this.lossPlot, stops((d) => d.runs));
    this.stopped.set(this.distPlot, stops((d) => d.runs.slice(1)));
    this.stopped.set(this.gapPlot, stops((d) => d.runs.slice(1)));
    this.stopped.set(this.normPlot, stops((d) => d.runs));
    this.lossPlot.setData(aligned(labs, (d) => d.runs.map((r) => r[key])));
    this.distPlot.setData(aligned(labs, (d) => d.runs.slice(1).map((r) => r.dist)));
    this.gapPlot.setData(aligned(labs, (d, k, keep) => gaps(d, key, GAP_WINDOW, keep)));
    this.normPlot.setData(aligned(labs, (d) => d.runs.map((r) => r.norm)));
  }

  // [name, uPlot] of every live chart drawn so far, for the PNG export.
  plots() {
    return [["loss", this.lossPlot], ["gap", this.gapPlot], ["distance", this.distPlot], ["gradnorm", this.normPlot]].filter(([, p]) => p);
  }
}
