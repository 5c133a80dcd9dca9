// The G sweep ("Sweep G"): the CLI's reference experiment (`gradlab sweep`:
// nano, effective batch 16, context 128, spread 1, AdamW lr 3e-3, naive and
// corrected at micro-batch 1, 2, 4, 8, final = mean of the last tenth of the
// steps) in a separate wasm lab, with this lab's corpus, packing, mask, ranks,
// seed and precision, for as many steps as the reader asks (a quick version
// unless 100; the README's table is 5 seeds of it). It collects every run's curves, works out the finals and hands
// them to sweepcharts.js. It pauses the training lab but does not touch it
// otherwise; it draws nothing itself.
import { backendFor } from "../wasm.js";
import { createLab } from "./remote.js";
import { el, errorText, formRow, nextFrame } from "../ui.js";

// The reference experiment's settings (src/bin/gradlab/sweep.rs and common.rs defaults).
const REFERENCE = { batch: 16, ctx: 128, spread: 1, opt: "adamw", lr: 3e-3, beta1: 0.9, beta2: 0.99, wd: 0, clip: 1, sched: "constant" };
const REFERENCE_STEPS = 100;

export class Sweep {
  // `controls`, `training`, `charts` (the live ones, for the loss kind),
  // `sweepCharts`, `showError` as the panel has them.
  constructor({ controls, training, charts, sweepCharts, showError }) {
    Object.assign(this, { controls, training, charts, sweepCharts, showError });
    this.note = el("p", { class: "gl-small", "data-testid": "sweep-note" });
    const form = el("div", { class: "gl-sweep-form" });
    this.stepsInput = formRow(form, "Sweep steps", el("input", { type: "number", min: "2", max: "1000", step: "10", "data-testid": "sweep-steps" }), `${REFERENCE_STEPS} = the reference experiment`);
    this.stepsInput.value = String(controls.values.sweepsteps);
    this.stepsInput.addEventListener("change", () => this.takeSteps());
    this.form = form;
    controls.ready.then(() => {
      this.stepsInput.value = String(controls.values.sweepsteps);
      this.describe();
    });
    this.describe();
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

  describe() {
    const v = this.controls.values;
    const steps = v.sweepsteps;
    const quick = steps === REFERENCE_STEPS ? `${steps} steps, as the reference does.` : `A quick version: ${steps} steps, where the reference runs ${REFERENCE_STEPS}.`;
    const corpus = v.corpus ?? "kjv";
    const precision = this.where();
    this.note.textContent =
      `“Sweep G” runs the command line's reference experiment (gradlab sweep): the nano model, effective batch 16, context 128, spread 1, ` +
      `AdamW lr 3e-3 (β 0.9/0.99, clip 1), naive and corrected at micro-batch 1, 2, 4, 8 (G = 16, 8, 4, 2) beside the full batch, all from the same weights ` +
      `on the same batches; “final” is the mean of the last tenth of the steps. ${quick} ` +
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
    const cpu = controls.cpuPreset();
    const config = controls.config({ ...REFERENCE, preset: cpu, micro: REFERENCE.batch }, { sweep: true });
    let lab;
    this.cancelled = false;
    try {
      const { backend } = await backendFor(controls.values);
      lab = await createLab(config, backend, training.startWeights?.start);
      const where = lab.onGpu() ? "f32 WebGPU" : backend === "reference" ? "f64 CPU" : "f32 CPU";
      const specs = lab.runs();
      const runs = specs.map((s) => ({ ...s, G: REFERENCE.batch / s.micro_batch, true: new Array(steps).fill(null), logged: new Array(steps).fill(null), dist: null }));
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
      for (let i = 0; i < steps; i++) {
        // the element left the page (lab.js stop())
        if (this.cancelled) return;
        take(await lab.step(1));
        training.setStatus(`Sweep over G: step ${i + 1} of ${steps}…`);
        await nextFrame();
      }
      take(await lab.flush());
      this.sweepCharts.draw(finals(runs, steps), this.charts.lossKind);
      training.setStatus(`${training.statusName} · sweep done (${steps} steps, ${where})`);
    } catch (e) {
      this.showError(`Sweep failed: ${errorText(e)}`);
    } finally {
      lab?.free();
      controls.sweepBtn.disabled = false;
    }
  }
}

// Each run's finals as the CLI computes them: the mean over the last tenth
// of the steps (at least one), the true-loss gap to the full batch (run 0),
// the weight distance after the last step.
export function finals(runs, steps) {
  const tail = Math.max(1, Math.floor(steps / 10));
  const mean = (xs) => {
    const ok = xs.slice(-tail).filter((x) => x !== null);
    return ok.length ? ok.reduce((a, b) => a + b, 0) / ok.length : NaN;
  };
  for (const r of runs) {
    r.finalTrue = mean(r.true);
    r.finalLogged = mean(r.logged);
  }
  for (const r of runs) r.gap = r.finalTrue - runs[0].finalTrue;
  const gs = [...new Set(runs.filter((r) => r.strategy !== "full").map((r) => r.G))].sort((a, b) => a - b);
  return { steps, tail, gs, runs };
}
