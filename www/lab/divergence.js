// When a run has blown up, which runs have, and how the page says so. A run
// whose true loss is not a number, or far above a uniform guess over the
// vocabulary, has diverged: training.js then halts it in the wasm lab (it sits
// out every later step), ends its curve (curves.js) and, once every run has,
// pauses. This module only judges, remembers and words; it does not halt,
// pause or draw.
import { runLabel } from "./charts.js";

// How a diverged run is named in the page's message: its label, "f64 " in
// front for the f64 twin's runs.
function divergedKey(twin, spec) {
  return `${twin ? "f64 " : ""}${runLabel(spec)}`;
}

export class Divergence {
  constructor() {
    this.diverged = new Set();
    this.limit = undefined;
  }

  // A new lab: no run has diverged yet.
  clear() {
    this.diverged.clear();
  }

  // The new lab's vocabulary: a loss above twice a uniform guess over it
  // (ln 256 ≈ 5.5 for bytes) means the run has blown up.
  setVocabulary(size) {
    this.limit = 2 * Math.log(size);
  }

  blewUp(m) {
    return !Number.isFinite(m.true_loss) || m.true_loss > this.limit;
  }

  has(twin, spec) {
    return this.diverged.has(divergedKey(twin, spec));
  }

  // Records that run `spec` of the lab (or its twin) diverged; false if it
  // was already recorded.
  add(twin, spec) {
    if (this.has(twin, spec)) return false;
    this.diverged.add(divergedKey(twin, spec));
    return true;
  }

  // Whether every run of the lab with runs `specs` (not the twin's) has diverged.
  all(specs) {
    return specs.every((s) => this.has(false, s));
  }

  // The page's message after metric `m` showed a run blown up: which runs
  // have, what to change, and whether training goes on (`all`: it pauses).
  message(m, all) {
    const what = Number.isFinite(m.true_loss) ? `loss ${m.true_loss.toFixed(1)}, far above a uniform guess` : "its loss is not a number";
    if (all) {
      return `Every run diverged (the last at step ${m.step}, ${what}) and stopped; training is paused. Lower the learning rate (or turn gradient clipping on) and press Reset.`;
    }
    const names = [...this.diverged].join(", ");
    return `Diverged: ${names} (at step ${m.step}, ${what}) — stopped there, its curve ends in a dot. The learning rate is too high for it — lower it and press Reset. Runs that have not diverged keep going.`;
  }
}
