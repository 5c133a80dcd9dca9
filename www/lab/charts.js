// The lab's live charts (uPlot): how runs are named and coloured (from each
// strategy's display metadata in Rust, accum.rs `Strategy::style`), the three
// live charts (loss, weight distance, gradient norm) with the f64 twin's
// curves beside them when precision is "both", the true/logged loss switch,
// and the note that explains the colours. It only draws what it is given: it
// does not step the lab (training.js), run or draw the sweep (sweep.js,
// sweepcharts.js) or export (exports.js).
import uPlot from "../../vendor/uPlot.esm.js";
import { button, el } from "../ui.js";
import { loadGradlab } from "../wasm.js";
import { decimate } from "./decimate.js";

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
// log-scale tick labels as 1e-3, 0.01 … 100, not rounded to "0"
export const powersOfTen = (u, ticks) => ticks.map((v) => (v == null ? "" : v >= 0.01 && v < 1e4 ? String(+v.toPrecision(2)) : v.toExponential(0)));

export const widthOf = (node) => Math.max(280, Math.min(760, node.clientWidth || 600));

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

// Index of the last drawn value of `ys`, as uPlot's points filter wants it.
function lastPoint(ys) {
  let k = ys.length - 1;
  while (k >= 0 && ys[k] == null) k--;
  return k >= 0 ? [k] : null;
}

// Series options of the runs `specs`; `twin`: the f64 copies, dotted.
// `stopped(plot, seriesIdx)`: whether that run was stopped (diverged); its
// curve then ends in a dot.
function seriesOf(specs, twin, stopped) {
  return specs.map((s) => {
    const { colour, dashed } = strategyStyle(s.strategy);
    return {
      label: runLabel(s) + (twin ? " · f64" : ""),
      stroke: colour,
      width: twin ? 2.5 : dashed ? 2 : 1.5,
      dash: twin ? [2, 4] : dashed ? [6, 4] : undefined,
      spanGaps: true,
      points: { show: false, size: 10, width: 2, fill: colour, stroke: colour, filter: (u, i) => (stopped(u, i) ? lastPoint(u.data[i]) : null) },
    };
  });
}

// The x values of the longer of `labs` ({step}), and each lab's column `pick`
// of every run padded with nulls to that length, thinned for drawing.
function aligned(labs, columns) {
  const x = labs.reduce((a, d) => (d.step.length > a.length ? d.step : a), []);
  const n = x.length;
  const pad = (a) => (a.length >= n ? a.slice(0, n) : [...a, ...new Array(n - a.length).fill(null)]);
  return decimate([x, ...labs.flatMap((d, k) => columns(d, k).map(pad))]);
}

export class Charts {
  constructor() {
    this.loss = el("div", { class: "gl-chart", "data-testid": "chart-loss", role: "img", "aria-label": "Training loss of each run" });
    this.dist = el("div", { class: "gl-chart", "data-testid": "chart-distance", role: "img", "aria-label": "Weight distance to the full-batch run, log scale" });
    this.norm = el("div", { class: "gl-chart", "data-testid": "chart-gradnorm", role: "img", "aria-label": "Gradient norm of each run" });
    this.lossKind = "true";
    this.kindBtn = button(LOSS_KINDS.true.button, "loss-kind");
    this.kindBtn.dataset.kind = "true";
    this.kindNote = el("span", { text: LOSS_KINDS.true.note });
    this.kindLine = el("p", { class: "gl-small gl-kind" }, this.kindBtn, " ", this.kindNote, " ", el("span", { text: WHY_THEY_DIFFER }));
    this.listeners = [];
    // per plot, which of its series are stopped runs (index as uPlot's)
    this.stopped = new WeakMap();
    this.kindBtn.addEventListener("click", () => this.setLossKind(this.lossKind === "true" ? "logged" : "true"));
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
    for (const fn of this.listeners) fn(kind);
  }

  // Fresh, empty live charts for the runs `specs` (run 0 is the full batch)
  // and, when precision is "both", `twinSpecs` of the f64 lab; `loraRank`
  // above 0 when only LoRA adapters train.
  make(specs, twinSpecs = null, loraRank = 0) {
    for (const c of [this.lossPlot, this.distPlot, this.normPlot]) c?.destroy();
    this.twin = !!twinSpecs;
    const width = widthOf(this.loss);
    const stopped = (u, i) => this.stopped.get(u)?.[i] === true;
    const series = (filter) => [{}, ...seriesOf(specs.filter(filter), false, stopped), ...(twinSpecs ? seriesOf(twinSpecs.filter(filter), true, stopped) : [])];
    const opts = (title, filter, { yAxis = {}, ...extra } = {}) => ({
      width,
      height: 220,
      title,
      series: series(filter),
      axes: [{ label: "step", incrs: STEP_TICKS }, yAxis],
      legend: { live: false },
      ...extra,
      scales: { x: { time: false }, ...(extra.scales ?? {}) },
    });
    const all = () => true;
    this.lossPlot = new uPlot(opts(LOSS_KINDS[this.lossKind].title, all), [[]], this.loss);
    const distTitle = loraRank ? `LoRA: ‖ΔW − ΔW_full‖, ΔW = (α/r)·B·A, r = ${loraRank}` : "weight distance";
    this.distPlot = new uPlot(opts(distTitle, (s) => s.strategy !== "full", { scales: { y: { distr: 3 } }, yAxis: { values: powersOfTen } }), [[]], this.dist);
    this.normPlot = new uPlot(opts("‖g‖ before clipping", all), [[]], this.norm);
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
    this.stopped.set(this.normPlot, stops((d) => d.runs));
    this.lossPlot.setData(aligned(labs, (d) => d.runs.map((r) => r[key])));
    this.distPlot.setData(aligned(labs, (d) => d.runs.slice(1).map((r) => r.dist)));
    this.normPlot.setData(aligned(labs, (d) => d.runs.map((r) => r.norm)));
  }

  // [name, uPlot] of every live chart drawn so far, for the PNG export.
  plots() {
    return [["loss", this.lossPlot], ["distance", this.distPlot], ["gradnorm", this.normPlot]].filter(([, p]) => p);
  }
}
