// The G sweep ("Sweep G"), the reference experiment: a separate wasm lab with
// effective batch 16 at micro-batch 16, 8, 4, 2 and 1, naive and corrected,
// run for a number of steps from the same weights on the same data; then the
// final true-loss gap and weight distance to the full batch per G go to the
// sweep chart. It pauses the training lab but does not touch it otherwise.
import { loadGradlab } from "../wasm.js";
import { el, errorText, nextFrame } from "../ui.js";
import { useGpu } from "./training.js";

const BATCH = 16;
const GS = [16, 8, 4, 2, 1];

export class Sweep {
  // `controls`, `training`, `charts`, `showError` as the panel has them.
  constructor({ controls, training, charts, showError }) {
    Object.assign(this, { controls, training, charts, showError });
    this.note = el("p", {
      class: "gl-small",
      text: `“Sweep G” runs the reference experiment: effective batch ${BATCH}, micro-batch 1, 2, 4, 8 and 16 (G = 16 … 1), naive and corrected, ${controls.sweepSteps()} steps from the same weights on the same data.`,
    });
  }

  async run() {
    const { controls, training } = this;
    await controls.ready;
    const gl = await loadGradlab();
    training.pause();
    controls.sweepBtn.disabled = true;
    const steps = controls.sweepSteps();
    const config = controls.config({ batch: BATCH }, { sweep: true });
    let lab;
    try {
      lab = await gl.WebLab.create(config, useGpu(controls.values));
      const specs = lab.runs();
      const last = specs.map(() => null);
      for (let i = 0; i < steps; i++) {
        const got = [...(await lab.step(1)), ...(i === steps - 1 ? await lab.flush() : [])];
        for (const m of got) last[m.run] = m;
        training.setStatus(`Sweep over G: step ${i + 1} of ${steps}…`);
        await nextFrame();
      }
      // run 0 is the full batch; G = 1 is the full batch too, so it has no distance
      const pick = (strategy, G) => last.find((m, i) => specs[i].strategy === strategy && BATCH / specs[i].micro_batch === G) ?? last[0];
      const gap = (strategy) => GS.map((G) => pick(strategy, G).true_loss - last[0].true_loss);
      const dist = (strategy) => GS.map((G) => (G === 1 ? null : pick(strategy, G).weight_distance || null));
      this.charts.drawSweep(steps, GS, { naive: gap("naive"), corrected: gap("corrected") }, { naive: dist("naive"), corrected: dist("corrected") });
      training.setStatus(`${training.backendName} · sweep done`);
    } catch (e) {
      this.showError(`Sweep failed: ${errorText(e)}`);
    } finally {
      lab?.free();
      controls.sweepBtn.disabled = false;
    }
  }
}
