// The lab's charts (uPlot): how runs are named and coloured, the three live
// charts (loss, weight distance, gradient norm), the G-sweep chart, and the
// note that explains the colours. It only draws what it is given: it does not
// step the lab (training.js), run the sweep (sweep.js) or export (exports.js).
import uPlot from "../../vendor/uPlot.esm.js";
import { el } from "../ui.js";

// keyed by the strategy as the wasm module serialises it: "full", "naive", "corrected"
export const COLORS = { full: "#6b7280", naive: "#dc2626", corrected: "#2563eb" };

export function runLabel(spec) {
  return spec.strategy === "full" ? "full batch" : `${spec.strategy} (b=${spec.micro_batch})`;
}

// whole steps (and whole G) on the x axes, never 2.5
const STEP_TICKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
// log-scale tick labels as 1e-3, 0.01 … 100, not rounded to "0"
const powersOfTen = (u, ticks) => ticks.map((v) => (v == null ? "" : v >= 0.01 && v < 1e4 ? String(+v.toPrecision(2)) : v.toExponential(0)));

const widthOf = (node) => Math.max(280, Math.min(760, node.clientWidth || 600));

// What the three strategies compute, in the colours of the charts.
export function explanation() {
  const explain = el("div", { class: "gl-explain" });
  explain.innerHTML = `
      <p>Every step uses the same <var>B</var> sequences, cut into <var>G</var> = <var>B</var>/<var>b</var> micro-batches.
      Token <var>t</var> has loss ℓ<sub>t</sub>; micro-batch <var>g</var> has <var>N</var><sub>g</sub> real (unpadded) tokens, <var>N</var> = Σ<var>N</var><sub>g</sub>.</p>
      <ul>
        <li><b style="color:${COLORS.full}">Full batch</b>: loss Σ<sub>t</sub> ℓ<sub>t</sub> / <var>N</var>.</li>
        <li><b style="color:${COLORS.naive}">Naive accumulation</b>: loss (1/<var>G</var>) Σ<sub>g</sub> (Σ<sub>t∈g</sub> ℓ<sub>t</sub> / <var>N</var><sub>g</sub>): every micro-batch counts the same, so tokens of short micro-batches count more.</li>
        <li><b style="color:${COLORS.corrected}">Corrected accumulation</b>: every token's loss divided by the token count <var>N</var> of the whole accumulated batch — the full-batch gradient, up to float rounding.</li>
      </ul>
      <p>With spread 0 every sequence has the same length, so all <var>N</var><sub>g</sub> are equal and naive = corrected. Raise the spread and watch them part.</p>`;
  return explain;
}

export class Charts {
  constructor() {
    this.loss = el("div", { class: "gl-chart", "data-testid": "chart-loss", role: "img", "aria-label": "Training loss of each run" });
    this.dist = el("div", { class: "gl-chart", "data-testid": "chart-distance", role: "img", "aria-label": "Weight distance to the full-batch run, log scale" });
    this.norm = el("div", { class: "gl-chart", "data-testid": "chart-gradnorm", role: "img", "aria-label": "Gradient norm of each run" });
    this.sweep = el("div", { class: "gl-chart", "data-testid": "chart-sweep", role: "img", "aria-label": "Sweep over G: final loss gap and weight distance" });
    this.trueToggle = el("input", { type: "checkbox", "data-testid": "true-loss" });
    this.trueLabel = el("label", { class: "gl-check" }, this.trueToggle, " show the true token-mean loss instead of the logged loss");
  }

  // Fresh, empty live charts for the runs `specs` (run 0 is the full batch).
  make(specs) {
    for (const c of [this.lossPlot, this.distPlot, this.normPlot]) c?.destroy();
    const width = widthOf(this.loss);
    const series = (filter) => [
      {},
      ...specs.filter(filter).map((s) => ({
        label: runLabel(s),
        stroke: COLORS[s.strategy],
        width: s.strategy === "corrected" ? 2 : 1.5,
        dash: s.strategy === "corrected" ? [6, 4] : undefined,
        spanGaps: true,
      })),
    ];
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
    this.lossPlot = new uPlot(opts("loss (nats per token)", all), [[]], this.loss);
    this.distPlot = new uPlot(opts("weight distance", (s) => s.strategy !== "full", { scales: { y: { distr: 3 } }, yAxis: { values: powersOfTen } }), [[]], this.dist);
    this.normPlot = new uPlot(opts("‖g‖ before clipping", all), [[]], this.norm);
  }

  // Draws `data` ({step: [], runs: [{logged, true, dist, norm}]}), the loss
  // as logged or as the true token mean as the checkbox says.
  draw(data) {
    if (!this.lossPlot) return;
    const key = this.trueToggle.checked ? "true" : "logged";
    const n = data.step.length;
    const cut = (a) => a.slice(0, n);
    this.lossPlot.setData([data.step, ...data.runs.map((r) => cut(r[key]))]);
    this.distPlot.setData([data.step, ...data.runs.slice(1).map((r) => cut(r.dist))]);
    this.normPlot.setData([data.step, ...data.runs.map((r) => cut(r.norm))]);
  }

  // The sweep's result: per G, naive's and corrected's true-loss gap to the
  // full batch and their weight distance to it, after `steps` steps.
  drawSweep(steps, gs, gap, dist) {
    this.sweepPlot?.destroy();
    this.sweepPlot = new uPlot(
      {
        width: widthOf(this.sweep),
        height: 240,
        title: `after ${steps} steps: true-loss gap to full batch (left) and ‖w − w_full‖ (right, log)`,
        scales: { x: { time: false, distr: 3, log: 2 }, d: { distr: 3 } },
        legend: { live: false },
        axes: [{ label: "G (micro-batches per step)", incrs: STEP_TICKS }, { label: "loss gap" }, { scale: "d", side: 1, label: "distance", values: powersOfTen }],
        series: [
          {},
          { label: "naive gap", stroke: COLORS.naive, points: { show: true } },
          { label: "corrected gap", stroke: COLORS.corrected, dash: [6, 4], points: { show: true } },
          { label: "naive distance", stroke: COLORS.naive, scale: "d", width: 1, points: { show: true }, dash: [2, 2] },
          { label: "corrected distance", stroke: COLORS.corrected, scale: "d", width: 1, points: { show: true }, dash: [2, 2] },
        ],
      },
      [gs, gap.naive, gap.corrected, dist.naive, dist.corrected],
      this.sweep,
    );
  }

  // [name, uPlot] of every chart drawn so far, for the PNG export.
  plots() {
    return [["loss", this.lossPlot], ["distance", this.distPlot], ["gradnorm", this.normPlot], ["sweep", this.sweepPlot]].filter(([, p]) => p);
  }
}
