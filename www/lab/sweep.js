// The G sweep ("Sweep G"): the CLI's reference experiment (`gradlab sweep`;
// its settings and its "final" statistic come from the wasm module, which
// takes them from src/lab/experiment.rs) in a separate wasm lab, with this
// lab's corpus, packing, mask, ranks, seed and precision, for as many steps
// as the reader asks (a quick version unless the reference's count; the
// README's table is several seeds of it). It collects every run's curves,
// works out the finals through the module and hands them to sweepcharts.js.
// It pauses the training lab but does not touch it otherwise; it draws
// nothing itself.
import { backendFor, loadGradlab } from "../wasm.js";
import { createLab, onPageThread } from "./remote.js";
import { el, errorText, formRow, hintOf, nextFrame, stepClock } from "../ui.js";
import { loadStrategies, strategyStyle } from "./charts.js";

// The reference experiment (wasm `referenceExperiment()`): {preset, context,
// batch, spread, corpus, optimizer, lr, steps, first_seed, seeds,
// val_sequences, micro_batches, optimizer_config}.
let reference;
const loadReference = () => (reference ??= loadGradlab().then((gl) => gl.referenceExperiment()));

export class Sweep {
  // `controls`, `training`, `charts` (the live ones, for the loss kind),
  // `sweepCharts`, `showError` as the panel has them.
  constructor({ controls, training, charts, sweepCharts, showError }) {
    Object.assign(this, { controls, training, charts, sweepCharts, showError });
    this.note = el("p", { class: "gl-small", "data-testid": "sweep-note" });
    const form = el("div", { class: "gl-sweep-form" });
    this.stepsInput = formRow(form, "Sweep steps", el("input", { type: "number", min: "2", max: "1000", step: "10", "data-testid": "sweep-steps" }));
    this.stepsInput.value = String(controls.values.sweepsteps);
    this.stepsInput.addEventListener("change", () => this.takeSteps());
    this.form = form;
    // beside the Sweep G button (the panel puts them together)
    this.progress = el("span", { class: "gl-small", "data-testid": "sweep-progress", "aria-live": "polite" });
    // the reference is described once the module has it (the note is empty until then)
    Promise.all([controls.ready, loadReference(), loadStrategies(), loadGradlab()]).then(([, ref, , gl]) => {
      this.reference = ref;
      this.gl = gl;
      this.stepsInput.value = String(controls.values.sweepsteps);
      hintOf(this.stepsInput).textContent = `${ref.steps} = the reference experiment`;
      this.describe();
    }, () => {});
  }

  // The sweep's step count from its input; false (and the problem shown) when out of range.
  takeSteps() {
    const x = Number(this.stepsInput.value);
    if (!Number.isInteger(x) || x < 2 || x > 1000) {
      this.showError(`sweep steps must be a whole number between 2 and 1000, got "${String(this.stepsInput.value).slice(0, 20)}"`);
      this.stepsInput.value = String(this.controls.values.sweepsteps);
      return false;
    }
    this.controls.setSweepSteps(x);
    this.describe();
    return true;
  }

  // Where the sweep runs, in words, before it is built: as the lab's own
  // f32 lab where "auto" has already chosen.
  where() {
    const v = this.controls.values;
    if (v.precision === "f64") return "f64 on the CPU";
    const device = !("gpu" in navigator) ? "cpu" : v.device === "auto" ? { webgpu: "webgpu", cpu: "cpu" }[this.training.backend] : v.device;
    const f32 = device === "cpu" ? "f32 on the CPU" : device === "webgpu" ? "f32 on WebGPU" : "f32 on WebGPU, or the CPU where WebGPU is a software renderer";
    return `${f32}${v.precision === "both" ? " (choose precision f64 for the f64 sweep)" : ""}`;
  }

  // The note: the reference's settings (from the module) and what this lab
  // changes; empty until the module has described the reference.
  describe() {
    const ref = this.reference;
    if (!ref) return;
    const v = this.controls.values;
    const steps = v.sweepsteps;
    const quick = steps === ref.steps ? `${steps} steps, as the reference does.` : `A quick version: ${steps} steps, where the reference runs ${ref.steps}.`;
    const corpus = v.corpus ?? ref.corpus;
    const precision = this.where();
    const opt = ref.optimizer_config;
    const naming = ["naive", "corrected"].map((s) => strategyStyle(s).label).join(" and ");
    this.note.textContent =
      `“Sweep G” runs the command line's reference experiment (gradlab sweep): the ${ref.preset} model, effective batch ${ref.batch}, context ${ref.context}, spread ${ref.spread}, ` +
      `${opt.kind} lr ${opt.lr.toExponential()} (β ${opt.beta1}/${opt.beta2}, clip ${opt.max_grad_norm}), ${naming} at micro-batch ${ref.micro_batches.join(", ")} ` +
      `(G = ${ref.micro_batches.map((b) => ref.batch / b).join(", ")}) beside the ${strategyStyle("full").label}, all from the same weights ` +
      `on the same batches; “final” is the mean of the last tenth of the steps (here the last ${this.gl.finalWindow(steps)}). ${quick} ` +
      `From this lab: corpus ${corpus}, packing ${v.packing}, prompt mask ${v.mask ? "on" : "off"}, ${v.ranks} rank${v.ranks > 1 ? "s (adds local runs; G must divide among them)" : ""}, seed ${v.seed}, ` +
      `${v.lora ? `LoRA r = ${v.lorarank} on the starting weights (the distance is then ‖ΔW − ΔW_full‖, as the seed measured it)` : "every weight trained"}, starting from ${this.training.startWeights?.current?.name ?? "a fresh init"}; ${precision}. ` +
      `The lab's other settings (learning rate, batch, context, model) do not apply.`;
  }

  async run() {
    const { controls, training } = this;
    await controls.ready;
    if (!this.takeSteps()) return;
    training.pause();
    controls.sweepBtn.disabled = true;
    const steps = controls.values.sweepsteps;
    let lab;
    this.cancelled = false;
    try {
      const ref = await loadReference();
      // this lab's settings, the reference's in place of its model, batch, context and optimizer
      const config = controls.config({}, {
        sweep: true,
        preset: ref.preset,
        batch: ref.batch,
        micro_batch: ref.batch,
        spread: ref.spread,
        seq_len: ref.context,
        optimizer: ref.optimizer_config,
      });
      const { backend } = await backendFor(controls.values);
      lab = await createLab(config, backend, training.startWeights?.start);
      const where = lab.onGpu() ? "f32 WebGPU" : backend === "reference" ? "f64 CPU" : "f32 CPU";
      const specs = lab.runs();
      const runs = specs.map((s) => ({ ...s, G: ref.batch / s.micro_batch, true: new Array(steps).fill(null), logged: new Array(steps).fill(null), dist: null }));
      const take = (metrics) => {
        for (const m of metrics) {
          const r = runs[m.run];
          const k = m.step - 1;
          if (!r || k < 0 || k >= steps) continue;
          r.true[k] = Number.isFinite(m.true_loss) ? m.true_loss : null;
          r.logged[k] = Number.isFinite(m.logged_loss) ? m.logged_loss : null;
          if (k === steps - 1) r.dist = m.weight_distance;
        }
      };
      const clock = stepClock(steps);
      for (let i = 0; i < steps; i++) {
        // the element left the page (lab.js stop())
        if (this.cancelled) return;
        take(await lab.step(1));
        this.progress.textContent = `step ${i + 1} of ${steps} on ${where}, about ${Math.ceil(clock.left(i))} s left`;
        training.setStatus(`Sweep over G: step ${i + 1} of ${steps}…`);
        // only a lab on the page's thread waits for a frame to let the page paint
        if (onPageThread(lab)) await nextFrame();
      }
      take(await lab.flush());
      this.sweepCharts.draw(finals(await loadGradlab(), runs, steps), this.charts.lossKind);
      this.progress.textContent = `done: ${steps} steps on ${where} in ${clock.seconds().toFixed(0)} s`;
      training.setStatus(`${training.statusName} · sweep done (${steps} steps, ${where})`);
    } catch (e) {
      this.progress.textContent = "failed (the error is above)";
      this.showError(`Sweep failed: ${errorText(e)}`);
    } finally {
      lab?.free();
      controls.sweepBtn.disabled = false;
    }
  }
}

// Each run's finals as the CLI computes them, by the module `gl`'s "final"
// (src/lab/experiment.rs: the mean over the last tenth of the steps), the
// true-loss gap to the full batch (run 0), the weight distance after the
// last step.
export function finals(gl, runs, steps) {
  const tail = gl.finalWindow(steps);
  for (const r of runs) {
    r.finalTrue = gl.finalMean(r.true);
    r.finalLogged = gl.finalMean(r.logged);
  }
  for (const r of runs) r.gap = r.finalTrue - runs[0].finalTrue;
  const gs = [...new Set(runs.filter((r) => r.strategy !== "full").map((r) => r.G))].sort((a, b) => a - b);
  return { steps, tail, gs, runs };
}
