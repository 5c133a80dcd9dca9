// The accumulation lab panel that <gradlab-lab> (elements.js) holds: lays out
// the parts in www/lab/ and wires them together. The parts do the work:
// controls.js the settings form, training.js the wasm lab and its loop
// (with curves.js its curves, readouts.js the status line, samples and the
// other readouts, divergence.js and recovery.js blown-up runs and a lost GPU),
// charts.js the live uPlot charts, tokens.js the token-weight strip,
// weights.js where the runs start (a fresh init, a loaded file),
// sweep.js and sweepcharts.js the G sweep, exports.js the downloads,
// state.js saving the whole lab and loading it back,
// history.js where the bug came from.
// Nothing here computes, draws or parses settings.
import { Charts, explanation } from "./lab/charts.js";
import { Controls } from "./lab/controls.js";
import { Exports } from "./lab/exports.js";
import { history } from "./lab/history.js";
import { Sweep } from "./lab/sweep.js";
import { SweepCharts } from "./lab/sweepcharts.js";
import { TokenStrip } from "./lab/tokens.js";
import { Training } from "./lab/training.js";
import { SavedState } from "./lab/state.js";
import { SHIPPED_BASE, StartWeights } from "./lab/weights.js";
import { columns, el, errorLine, showMessage } from "./ui.js";

export class LabPanel {
  // `source`: {get, where, syncUrl} as elements.js makes it.
  constructor(root, source) {
    this.root = root;
    this.error = errorLine({ "data-testid": "error" });
    const showError = (message) => showMessage(this.error, message);
    const controls = (this.controls = new Controls(source, () => this.settingsChanged()));
    const charts = (this.charts = new Charts());
    const tokens = (this.tokens = new TokenStrip());
    const sweepCharts = (this.sweepCharts = new SweepCharts());
    const training = (this.training = new Training({ controls, charts, tokens, showError, onReady: (specs) => this.exports.setRuns(specs) }));
    const weights = (this.weights = new StartWeights({ controls, training, showError, onChange: () => {
      this.sweep.describe();
      this.reset();
    } }));
    training.startWeights = weights;
    this.sweep = new Sweep({ controls, training, charts, sweepCharts, showError });
    this.exports = new Exports({ training, charts, sweepCharts, showError });
    this.saved = new SavedState({ controls, training, showError });
    this.showError = showError;
    controls.onScenario = (scenario) => this.scenarioChosen(scenario);

    root.classList.add("gl-lab");
    columns(root, [controls.form, weights.node, controls.buttons, explanation()], [
      training.notice,
      this.error,
      training.status,
      training.recoverBtn,
      training.stepLine,
      el("h3", { text: "Loss" }),
      charts.kindLine,
      charts.loss,
      el("h3", { text: "‖w − w_full‖: distance to the full-batch weights (log scale)" }),
      charts.dist,
      training.matrices,
      el("h3", { text: "Gradient norm" }),
      charts.norm,
      el("h3", { text: "Samples (refreshed as the models learn)" }),
      training.samples,
      training.validation,
      el("h3", { text: "How much each token counts" }),
      tokens.node,
      el("h3", { text: "Sweep over G" }),
      this.sweep.note,
      this.sweep.form,
      sweepCharts.summary,
      sweepCharts.curves,
      sweepCharts.table,
      this.exports.buttons,
      this.saved.node,
      history(),
    ]);

    controls.toggle.addEventListener("click", () => training.toggle());
    controls.stepBtn.addEventListener("click", () => training.stepOnce());
    controls.resetBtn.addEventListener("click", () => this.reset());
    controls.sweepBtn.addEventListener("click", () => this.sweep.run());
    charts.onLossKind((kind) => {
      training.redraw();
      sweepCharts.setKind(kind);
    });
    this.reset();
  }

  // An attribute of the element changed after it was made: the form takes
  // the new settings (bad ones reported and replaced by defaults) and the lab
  // is rebuilt.
  async attributesChanged() {
    await this.controls.ready;
    this.controls.reparse();
    const problems = this.controls.problems;
    await this.settingsChanged();
    if (problems) this.showError(problems);
  }

  async settingsChanged() {
    await this.controls.ready;
    const problem = this.controls.apply();
    this.weights.describe();
    this.sweep.describe();
    if (problem) return this.showError(problem);
    this.reset();
  }

  // A scenario was chosen: its settings are taken as if set by hand, and
  // its weights (the shipped base, or a fresh init) become the start; the lab
  // is rebuilt once. Custom settings change nothing.
  async scenarioChosen(scenario) {
    if (!scenario) return;
    await this.controls.ready;
    this.controls.fillScenario(scenario);
    const problem = this.controls.apply();
    this.sweep.describe();
    if (problem) return this.showError(problem);
    if (scenario.start === "base") {
      if (this.weights.current?.name === SHIPPED_BASE.name) return this.reset();
      // taken, it rebuilds the lab; refused, the lab is rebuilt on the weights it had
      if (!(await this.weights.shippedBase())) this.reset();
    } else if (this.weights.current) {
      this.weights.take(null);
    } else {
      this.reset();
    }
  }

  reset() {
    return this.training.reset();
  }

  start() {
    this.training.start();
  }

  /** Stops training and frees the lab (the element was removed from the page). */
  stop() {
    this.sweep.cancelled = true;
    this.training.dispose();
    this.training.setStatus("Stopped: the lab left the page.");
  }

  /** The plotted data, for tests and for readers who want the numbers. */
  curves() {
    return this.exports.curves();
  }

  /** The last G sweep's result (finals and curves), or undefined. */
  sweepResult() {
    return this.sweepCharts.result;
  }
}
