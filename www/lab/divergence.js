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
  // have, why, what to change, and whether training goes on (`all`: it
  // pauses). `specs`: the lab's runs. While the full batch trains on at the
  // same learning rate, the rate alone is not the cause: the runs that blew
  // up weight tokens unlike the full batch, and that is what the page is
  // about.
  message(m, all, specs = []) {
    const what = Number.isFinite(m.true_loss) ? `loss ${m.true_loss.toFixed(1)}, far above a uniform guess` : "its loss is not a number";
    if (all) {
      return `Every run diverged (the last at step ${m.step}, ${what}) and stopped; training is paused. Lower the learning rate (or turn gradient clipping on) and press Reset.`;
    }
    const names = [...this.diverged].join(", ");
    const full = specs.find((s) => s.strategy === "full");
    const fullGoesOn = full && !this.has(false, full);
    const misweighted = [...this.diverged].every((name) => /naive|local/.test(name));
    const why = fullGoesOn && misweighted
      ? "The full batch trains on at this learning rate: the diverged run weights tokens unlike it (a short micro-batch's tokens count more), so its steps are not the full batch's. A lower learning rate keeps it going longer; the weighting is the bug."
      : "The learning rate is too high for it — lower it and press Reset.";
    return `Diverged: ${names} (at step ${m.step}, ${what}) — stopped there, its curve ends in a dot. ${why} Runs that have not diverged keep going.`;
  }
}
