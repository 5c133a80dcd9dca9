// What the reader can take away from the lab: the curves as CSV (and as data,
// for the element's curves()), the charts as PNG, a run's weights as
// safetensors (written by the wasm lab). It builds the export buttons; it
// does not train (training.js), keep or lay out the curves (curves.js) or
// draw (charts.js).
import { button, el, errorText } from "../ui.js";
import { runLabel } from "./charts.js";

export function download(name, blob) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

export class Exports {
  // `training`: the lab and its data; `charts`, `sweepCharts`: the drawn charts; `showError` as the panel has it.
  constructor({ training, charts, sweepCharts, showError }) {
    Object.assign(this, { training, charts, sweepCharts, showError });
    this.csvBtn = button("Curves as CSV", "export-csv");
    this.pngBtn = button("Charts as PNG", "export-png");
    this.weightsRun = el("select", { "aria-label": "Run whose weights to download", "data-testid": "weights-run" });
    this.weightsBtn = button("Download weights (.safetensors)", "download-weights");
    this.buttons = el("div", { class: "gl-buttons" }, this.csvBtn, this.pngBtn, this.weightsRun, this.weightsBtn);
    this.csvBtn.addEventListener("click", () => this.csv());
    this.pngBtn.addEventListener("click", () => this.png());
    this.weightsBtn.addEventListener("click", () => this.weights());
  }

  // A new lab with these runs: they are the ones whose weights can be downloaded.
  setRuns(specs) {
    this.weightsRun.replaceChildren(...specs.map((s, i) => el("option", { value: String(i), text: runLabel(s) })));
  }

  // The plotted data: {step: [], runs: [{strategy, micro_batch, logged, true, dist, norm}]},
  // and with precision "both" the f64 twin's as `twin` of the same shape.
  curves() {
    const { curves, specs } = this.training;
    return curves.view(specs, this.twinRuns());
  }

  csv() {
    const { curves, specs, backend } = this.training;
    const text = curves.csv(specs, this.twinRuns(), backend === "reference" ? "f64" : "f32");
    download("gradlab-curves.csv", new Blob([text], { type: "text/csv" }));
  }

  // The twin's runs where the lab has an f64 twin (precision "both"), else null.
  twinRuns() {
    const { twin, twinSpecs } = this.training;
    return twin ? (twinSpecs ?? []) : null;
  }

  png() {
    for (const [name, plot] of [...this.charts.plots(), ...this.sweepCharts.plots()]) {
      plot.ctx.canvas.toBlob((blob) => blob && download(`gradlab-${name}.png`, blob));
    }
  }

  async weights() {
    const { training } = this;
    if (!training.lab) return;
    const run = Number(this.weightsRun.value) || 0;
    try {
      const bytes = await training.serial.run(() => training.lab.weightsSafetensors(run));
      download(`gradlab-${training.specs[run].strategy}-b${training.specs[run].micro_batch}.safetensors`, new Blob([bytes]));
    } catch (e) {
      this.showError(`Download failed: ${errorText(e)}`);
    }
  }
}
