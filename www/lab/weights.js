// Where the lab's runs start: a fresh init (the seed's), the shipped base
// (fetched beside the module), a safetensors file the reader picks (our
// tensor names or nanoGPT's), or the weights the lab has just trained (its
// full-batch run's) — the base a LoRA lab adapts. A picked file or the
// shipped base is read for the model in wasm (files.js readWeights) before
// it is taken: a bad one is refused in words and the lab keeps running on the
// weights it had. It does not build or step the lab (training.js); it hands
// the weights to it and asks for a reset.
import { button, el, errorText } from "../ui.js";
import { readWeights } from "../files.js";
import { backendFor } from "../wasm.js";
import { fetchPackageFile, packageFile } from "../assets.js";

// The shipped base: nano pretrained on the King James text (data/base/SOURCE.md).
export const SHIPPED_BASE = {
  file: "nano-kjv.safetensors",
  name: "the shipped nano base",
  // named literally so that bundlers copy it (assets.js)
  url: () => packageFile("data/base/nano-kjv.safetensors", new URL("../../data/base/nano-kjv.safetensors", import.meta.url)),
};

// Larger files are refused before they are read: the small preset is 44 MB in f32.
const MAX_WEIGHT_BYTES = 256 << 20;

export class StartWeights {
  // `controls`: the settings; `training`: the lab (for its backend and its
  // trained weights); `showError` as the panel has it; `onChange()`: the
  // starting weights changed, the lab must be rebuilt.
  constructor({ controls, training, showError, onChange }) {
    Object.assign(this, { controls, training, showError, onChange });
    // {name, bytes (a file's)} or {name, weights (a lab's Float32Array)},
    // or null for a fresh init
    this.current = null;
    this.source = el("span", { "data-testid": "weights-source" });
    this.picker = el("input", { type: "file", accept: ".safetensors,application/octet-stream", "data-testid": "load-weights", "aria-label": "Load weights (.safetensors)" });
    this.baseBtn = button("Start from the shipped base", "shipped-base");
    this.adaptBtn = button("Start from the trained full-batch weights", "adapt-trained");
    this.freshBtn = button("Fresh init", "fresh-weights");
    const shipped = el("a", { href: SHIPPED_BASE.url().href, download: SHIPPED_BASE.file, text: "the shipped nano base" });
    this.node = el(
      "div",
      { class: "gl-weights" },
      el("p", { class: "gl-small" }, "Start from: ", this.source),
      el("label", { class: "gl-small" }, "Load weights (.safetensors, ours or nanoGPT's names): ", this.picker),
      el("div", { class: "gl-buttons" }, this.baseBtn, this.adaptBtn, this.freshBtn),
      el("p", { class: "gl-small" }, "For LoRA, start from ", shipped, " (nano pretrained on the King James text; the link downloads it)."),
    );
    this.picker.addEventListener("change", () => this.pick());
    this.baseBtn.addEventListener("click", () => this.shippedBase());
    this.adaptBtn.addEventListener("click", () => this.adaptTrained());
    this.freshBtn.addEventListener("click", () => this.take(null));
    this.describe();
  }

  // What every run starts from (WebLab.create's weights, a file's bytes
  // read in the lab's worker): undefined for a fresh init.
  get start() {
    return this.current?.bytes ?? this.current?.weights;
  }

  describe() {
    this.source.textContent = this.current ? this.current.name : `a fresh init (seed ${this.controls.values.seed})`;
    this.freshBtn.disabled = !this.current;
  }

  // A lab that refuses them at its build leaves "Start from" on the weights it had.
  async take(weights) {
    const before = this.current;
    this.current = weights;
    this.describe();
    if ((await this.onChange()) === false) {
      this.current = before;
      this.describe();
    }
  }

  // The file in the picker: checked, then taken, or refused with the lab untouched.
  async pick() {
    const file = this.picker.files?.[0];
    if (!file) return;
    const refuse = (problem) => {
      this.picker.value = "";
      this.showError(`${file.name}: ${problem} The lab keeps the weights it had (${this.source.textContent}).`);
    };
    if (file.size > MAX_WEIGHT_BYTES) return refuse(`${(file.size / 1048576).toFixed(0)} MB is more than the ${MAX_WEIGHT_BYTES / 1048576} MB this page reads.`);
    let bytes;
    try {
      bytes = new Uint8Array(await file.arrayBuffer());
    } catch (e) {
      return refuse(`could not be read (${errorText(e)}).`);
    }
    this.picker.value = "";
    const problem = await this.problemWith(bytes);
    if (problem) return refuse(`${problem}.`);
    this.take({ name: file.name, bytes });
  }

  // The shipped base, fetched beside the module (no download and upload):
  // checked like a picked file, then taken. Returns whether it was taken.
  async shippedBase() {
    let bytes;
    try {
      const response = await fetchPackageFile(SHIPPED_BASE.url(), { name: "the shipped base", kind: "weights" });
      bytes = new Uint8Array(await response.arrayBuffer());
    } catch (e) {
      this.showError(`The shipped base could not be fetched: ${errorText(e)}. The lab keeps the weights it had (${this.source.textContent}).`);
      return false;
    }
    const problem = await this.problemWith(bytes);
    if (problem) {
      this.showError(`The shipped base: ${problem}. The lab keeps the weights it had (${this.source.textContent}).`);
      return false;
    }
    this.take({ name: SHIPPED_BASE.name, bytes });
    return true;
  }

  // Why `bytes` cannot start the next lab, in words, or "" when they can:
  // read for that lab's model in wasm, as its worker will read them.
  async problemWith(bytes) {
    await this.controls.ready;
    // the model the next lab is built with: the preset's, or nano on the f64
    // reference (WebGPU and the f32 CPU build the same model)
    const { backend } = await backendFor(this.controls.values);
    try {
      // with both precisions the lab runs the CPU reference's preset (training.js)
      const overrides = this.controls.values.precision === "both" ? { preset: this.controls.smallestPreset() } : {};
      const weights = await readWeights(this.controls.config(overrides), bytes, backend);
      // the right shapes full of NaN or Inf would be refused only by the lab's build
      const bad = weights.findIndex((x) => !Number.isFinite(x));
      return bad < 0 ? "" : `value ${bad} of its weights is ${weights[bad]}, not a finite number, so no run can start from it`;
    } catch (e) {
      return errorText(e);
    }
  }

  // The full-batch run's weights as they are now, as the next lab's start.
  async adaptTrained() {
    const { training } = this;
    if (!training.lab) return;
    const lab = training.lab;
    try {
      // one call at a time on the lab: through its queue, both together. As
      // a file, not lab.weights(0): the file names its tensors, so the next
      // lab can take it with a shorter context (wpe's first rows), as it
      // would a picked file
      const { at, bytes } = await training.serial.run(async () => ({ at: lab.steps(), bytes: await lab.weightsSafetensors(0) }));
      this.take({ name: `the lab's full-batch weights after ${at} steps`, bytes });
    } catch (e) {
      this.showError(`Could not take the trained weights: ${errorText(e)}`);
    }
  }
}
