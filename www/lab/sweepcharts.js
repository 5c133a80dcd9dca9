// The G sweep's figures (uPlot) and table: the final true-loss gap and
// weight distance to the full batch per G, only for runs that were trained;
// one loss curve per run over the steps (naive's fanning out with G,
// corrected's on top of each other and of the full batch), laid out like the
// seed write-up's figure; and the finals as a table. It only draws a sweep
// result it is given (sweep.js runs the sweep). Axes, text colour and the
// hover readouts are styled as the live charts' (charts.js).
import uPlot from "../../vendor/uPlot.esm.js";
import { el } from "../ui.js";
import { axisStyle, followScheme, paperHooks, readout, STEP_TICKS, strategyNames, strategyStyle, widthOf } from "./charts.js";
import { exact } from "./numbers.js";

const value = (u, v) => exact(v);

// The colour of `strategy`'s run at G among `gs` (ascending): its per-G
// shades (accum.rs `Strategy::style`) light for small G, dark for large; its
// one colour where it has no shades (the full batch).
const shade = (strategy, G, gs) => {
  const { shades, colour } = strategyStyle(strategy);
  const k = gs.indexOf(G);
  return shades[Math.round((k * (shades.length - 1)) / Math.max(1, gs.length - 1))] ?? colour;
};

export class SweepCharts {
  constructor() {
    this.summary = el("div", { class: "gl-chart", "data-testid": "chart-sweep", role: "img", "aria-label": "Sweep over G: final true-loss gap and weight distance to the full batch" });
    this.curves = el("div", { class: "gl-chart", "data-testid": "chart-sweep-curves", role: "img", "aria-label": "Sweep over G: loss per step of every run" });
    this.table = el("div", { class: "gl-sweep-table", "data-testid": "sweep-table" });
    followScheme(() => this.plots().map(([, p]) => p));
  }

  // `result`: {steps, tail, gs, runs: [{strategy, micro_batch, G, true[], logged[], finalTrue, finalLogged, gap, dist}]}
  // (runs[0] the full batch); `kind`: "true" or "logged" for the curves.
  draw(result, kind) {
    this.result = result;
    this.drawSummary(result);
    this.drawCurves(result, kind);
    this.drawTable(result);
  }

  drawSummary({ steps, tail, gs, runs }) {
    this.summaryPlot?.destroy();
    // the strategies beside the full batch, in the module's order
    const present = strategyNames().filter((s) => s !== "full" && runs.some((r) => r.strategy === s));
    // a G whose run was not trained has no point (null), never 0 or the full batch's
    const at = (strategy, key) => gs.map((G) => runs.find((r) => r.strategy === strategy && r.G === G)?.[key] ?? null);
    const positive = (xs) => xs.map((x) => (x > 0 && Number.isFinite(x) ? x : null));
    const axes = axisStyle(this.summary);
    this.summaryPlot = readout(new uPlot(
      {
        width: widthOf(this.summary),
        height: 240,
        title: `after ${steps} steps: true-loss gap to the full batch (left; mean of the last ${tail}) and ‖w − w_full‖ (right, log)`,
        scales: { x: { time: false, distr: 3, log: 2 }, d: { distr: 3 } },
        legend: { live: true },
        hooks: paperHooks(this.summary),
        axes: [
          { label: "G (micro-batches per step)", incrs: STEP_TICKS, ...axes },
          { label: "true-loss gap", ...axes },
          { scale: "d", side: 1, label: "distance", ...axes, grid: { show: false } },
        ],
        series: [
          { label: "G", value },
          ...present.map((s) => ({ label: `${strategyStyle(s).label} gap`, stroke: strategyStyle(s).colour, dash: strategyStyle(s).dashed ? [6, 4] : undefined, points: { show: true }, value })),
          ...present.map((s) => ({ label: `${strategyStyle(s).label} distance`, stroke: strategyStyle(s).colour, scale: "d", width: 1, points: { show: true }, dash: [2, 2], value })),
        ],
      },
      [gs, ...present.map((s) => at(s, "gap")), ...present.map((s) => positive(at(s, "dist")))],
      this.summary,
    ), "sweep");
  }

  drawCurves({ steps, gs, runs }, kind) {
    this.curvesPlot?.destroy();
    const x = Array.from({ length: steps }, (_, i) => i + 1);
    const label = (r) => `${strategyStyle(r.strategy).label} ${r.strategy === "full" ? "(G = 1)" : `G = ${r.G}`}`;
    const axes = axisStyle(this.curves);
    this.curvesPlot = readout(new uPlot(
      {
        width: widthOf(this.curves),
        height: 260,
        title: `${kind === "true" ? "true loss Σℓ/N" : "logged loss"} per step, one curve per G: naive fans out, corrected stays on the full batch`,
        scales: { x: { time: false } },
        legend: { live: true },
        hooks: paperHooks(this.curves),
        axes: [{ label: "step", incrs: STEP_TICKS, ...axes }, axes],
        series: [
          { label: "step", value },
          ...runs.map((r) => ({
            label: label(r),
            stroke: shade(r.strategy, r.G, gs),
            width: r.strategy === "full" ? 2.5 : 1.5,
            dash: strategyStyle(r.strategy).dashed ? [6, 4] : undefined,
            spanGaps: true,
            value,
          })),
        ],
      },
      [x, ...runs.map((r) => r[kind])],
      this.curves,
    ), "sweep-curves");
  }

  drawTable({ tail, runs }) {
    const fmt = (x, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : "—");
    const sci = (x) => (Number.isFinite(x) && x !== 0 ? x.toExponential(2) : "0");
    const head = ["strategy", "b", "G", `final logged (last ${tail})`, `final true (last ${tail})`, "true gap to full", "‖w − w_full‖"];
    const rows = runs.map((r) => [r.strategy, r.micro_batch, r.G, fmt(r.finalLogged), fmt(r.finalTrue), r.strategy === "full" ? "0" : sci(r.gap), r.strategy === "full" ? "0" : sci(r.dist)]);
    this.table.replaceChildren(
      el(
        "table",
        { class: "gl-table" },
        el("thead", {}, el("tr", {}, ...head.map((h) => el("th", { text: h })))),
        el("tbody", {}, ...rows.map((cells) => el("tr", {}, ...cells.map((c) => el("td", { text: String(c) }))))),
      ),
    );
  }

  // Redraws the curves with the other loss kind.
  setKind(kind) {
    if (this.result) this.drawCurves(this.result, kind);
  }

  plots() {
    return [["sweep", this.summaryPlot], ["sweep-curves", this.curvesPlot]].filter(([, p]) => p);
  }
}
