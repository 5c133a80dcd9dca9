// The accumulation lab panel that <gradlab-lab> (elements.js) holds: lays out
// the parts in www/lab/ and wires them together. The parts do the work:
// controls.js the settings form, training.js the wasm lab and its loop
// (with curves.js its curves, readouts.js the status line, samples and the
// other readouts, divergence.js and recovery.js blown-up runs and a lost GPU),
// charts.js the live uPlot charts, tokens.js the token-weight strip,
// weights.js where the runs start (a fresh init, the shipped base, a loaded file),
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
import { el, errorLine, showMessage } from "./ui.js";

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
      return this.reset();
    } }));
    training.startWeights = weights;
    this.sweep = new Sweep({ controls, training, charts, sweepCharts, showError });
    this.exports = new Exports({ training, charts, sweepCharts, showError });
    this.saved = new SavedState({ controls, training, showError });
    this.showError = showError;
    controls.onScenario = (scenario) => this.scenarioChosen(scenario);

    // Four areas (elements.css .gl-lab): the buttons and the status line,
    // which stay in view while the page scrolls; under them the loss and
    // distance charts, side by side where there is room; the controls (the
    // scenario and the rows it is about, the rest folded under Advanced,
    // where the weights start among them); and every other readout below.
    // On a wide screen the controls are a column beside the charts, on a
    // phone they come after the first two. `compact` (elements.js) keeps the
    // first two areas only.
    root.classList.add("gl-lab");
    controls.advanced.append(weights.node);
    const area = (name, ...children) => el("div", { class: `gl-${name}` }, ...children);
    root.append(
      area("bar", controls.buttons, training.stepLine, training.status),
      area("side", controls.form),
      area("top", training.notice, this.error, training.recoverBtn,
        // their titles say what they show
        el("div", { class: "gl-pair" }, charts.loss, charts.dist)),
      area("rest",
      charts.kindLine,
      el("h3", { text: charts.gapHeading }),
      charts.gap,
      charts.gapNote,
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
      el("div", { class: "gl-buttons" }, controls.sweepBtn, this.sweep.progress),
      sweepCharts.summary,
      sweepCharts.curves,
      sweepCharts.table,
      this.exports.buttons,
      this.saved.node,
      el("h3", { text: "The four ways to take a step" }),
      explanation(),
      history(),
    ));

    controls.toggle.addEventListener("click", () => training.toggle());
    controls.stepBtn.addEventListener("click", () => training.stepOnce());
    controls.resetBtn.addEventListener("click", () => this.reset());
    controls.sweepBtn.addEventListener("click", () => this.sweep.run());
    charts.onLossKind((kind) => {
      training.redraw();
      sweepCharts.setKind(kind);
    });
    /** Settles once the first lab is built on the scenario's weights. */
    this.ready = this.firstLab();
  }

  // The first lab, on the weights the scenario starts from: the shipped
  // base is fetched (a failure is said, and the lab starts from a fresh init).
  async firstLab() {
    // a module that cannot load: reset says so in the error line
    if (!(await this.controls.ready.then(() => true, () => false))) return this.reset();
    if (this.controls.basis?.start === "base" && (await this.weights.shippedBase())) return;
    await this.reset();
  }

  // An attribute of the element changed after it was made: the form takes
  // the new settings (bad ones reported and replaced by defaults) and the lab
  // is rebuilt.
  async attributesChanged() {
    await this.controls.ready;
    const newBasis = this.controls.reparse();
    const problems = this.controls.problems;
    const problem = this.controls.apply();
    this.weights.describe();
    this.sweep.describe();
    if (problem) return this.showError(problem);
    // a new scenario brings its own start
    await (newBasis ? this.startsFrom(this.controls.basis) : this.reset());
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
    await this.startsFrom(scenario);
  }

  // The lab rebuilt on the weights `scenario` starts from (null: custom
  // settings keep the weights they have).
  async startsFrom(scenario) {
    if (!scenario) return this.reset();
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
