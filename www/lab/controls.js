// The lab's settings side: builds the form and its buttons, parses the
// initial settings (URL query / element attributes, see settings.js), reads
// the controls back into settings, writes them to the URL, and keeps the
// hints under the controls current. The model presets and the corpora come
// from wasm (loadPresets, loadCorpora), never from here. It does not train, draw or export: the
// panel (www/lab.js) wires the buttons and the change event to those.
import { labConfig, labFields, MAX_TEXT_BYTES, parseSettings, reflectToUrl } from "../settings.js";
import { button, controlsForm, el, formatLogSlider, formRow, fromLogSlider, hintOf, selectInput, setChoices, toLogSlider } from "../ui.js";
import { loadCorpora, loadPresets } from "../wasm.js";

const PRECISION_HINTS = {
  f32: "f32, on the device below",
  f64: "the f64 CPU reference (smallest model)",
  both: "f32 on the device below and f64 on the CPU, side by side (smallest model); f64 curves dotted",
};
const DEVICE_HINTS = {
  auto: "WebGPU on a real GPU; the CPU where WebGPU is missing or a software renderer",
  webgpu: "WebGPU, even on a software adapter (the CPU where there is no WebGPU)",
  cpu: "gradlab's f32 CPU backend (SIMD), whatever the browser has",
};
const PACKING_HINTS = {
  padded: "one whole document per sequence, padded (fine-tuning)",
  packed: "documents run together in full windows (pretraining): every micro-batch has the same count",
};

// "nano: 2 layers, 64 channels"
const presetHint = (p) => `${p.name}: ${p.n_layer} layers, ${p.n_embd} channels`;

export class Controls {
  // `source`: {get, where, syncUrl} as elements.js makes it; `onChange()`
  // after a control changed.
  //
  // The form is built at once, but the model presets and corpora come with
  // the wasm module: until `ready` resolves, the Model and Corpus choices are
  // empty, `values` lacks the model, the corpus and the context, and `problems`, `read()`, `apply()` and
  // `config()` are not to be used. Everything that needs them awaits `ready`.
  constructor({ get, where, syncUrl }, onChange) {
    this.source = { get, where };
    this.syncUrl = syncUrl;
    // every field but the model's, to fill the form with now
    this.values = parseSettings(labFields(null), get, where).values;
    this.build(onChange);
    this.ready = Promise.all([loadPresets(), loadCorpora()]).then(([presets, corpora]) => this.usePresets(presets, corpora));
  }

  // Parses the settings again, now with the presets' names and block sizes
  // and the corpora's names, and fills in the Model and Corpus choices and
  // the context's limit.
  usePresets(presets, corpora) {
    this.presets = presets;
    this.corpora = corpora;
    this.fields = labFields(presets, corpora);
    const { values, problems } = parseSettings(this.fields, this.source.get, this.source.where);
    // problems with the settings we were given stay visible until a control changes
    this.problems = problems.join(" ");
    const f = this.fields;
    setChoices(this.preset, f.preset.choices, values.preset);
    // the default (smallest) preset's shape
    hintOf(this.preset).textContent = presetHint(this.presetNamed(f.preset.def));
    this.ctx.max = String(f.ctx.max);
    setChoices(this.corpus, f.corpus.choices, values.corpus);
    // a context longer than any block size was shown until now; it is not taken
    if (values.ctx !== this.values.ctx) this.ctx.value = String(values.ctx);
    this.values = values;
    this.describe();
  }

  build(onChange) {
    const v = this.values;
    const f = labFields(null);
    const form = (this.form = controlsForm("Lab controls"));
    const row = (label, input, help) => formRow(form, label, input, help);
    const select = (name, testid) => selectInput(f[name].choices, v[name], { "data-testid": testid, name });
    const number = (name, testid, attrs) => {
      const input = el("input", { type: "number", ...attrs, "data-testid": testid });
      input.value = String(v[name]);
      return input;
    };
    this.lr = row("Learning rate", el("input", { type: "range", min: "-5", max: "0", step: "0.05", "data-testid": "lr", name: "lr" }));
    this.lr.value = toLogSlider(v.lr);
    this.batch = row("Effective batch B", select("batch", "batch"), "sequences per optimizer step");
    this.micro = row("Micro-batch b", select("micro", "micro-batch"));
    this.spread = row("Length spread", el("input", { type: "range", min: "0", max: "1", step: "0.05", "data-testid": "spread", name: "spread" }));
    this.spread.value = String(v.spread);
    this.opt = row("Optimizer", select("opt", "optimizer"));
    this.momentum = row("Momentum", number("momentum", "momentum", { min: "0", max: "0.999", step: "0.01" }));
    this.beta1 = row("β1", number("beta1", "beta1", { min: "0", max: "0.999", step: "0.01" }));
    this.beta2 = row("β2", number("beta2", "beta2", { min: "0", max: "0.9999", step: "0.001" }));
    this.wd = row("Weight decay", number("wd", "weight-decay", { min: "0", max: "1", step: "0.01" }));
    this.clip = row("Gradient clipping", number("clip", "clip", { min: "0", max: "100", step: "0.1" }), "max ‖g‖; 0 turns it off");
    this.sched = row("LR schedule", select("sched", "schedule"));
    // choices and hint: usePresets
    this.preset = row("Model", select("preset", "preset"));
    this.precision = row("Precision", select("precision", "precision"), PRECISION_HINTS[v.precision]);
    this.device = row("Device", select("device", "device"), DEVICE_HINTS[v.device]);
    // max: usePresets
    this.ctx = row("Context T", number("ctx", "context", { min: String(f.ctx.min), step: "8" }));
    this.seed = row("Seed", number("seed", "seed", { min: "0", step: "1" }));
    // choices: usePresets
    this.corpus = row("Corpus", select("corpus", "corpus"));
    this.packing = row("Packing", select("packing", "packing"), PACKING_HINTS[v.packing]);
    this.mask = row("Mask the prompt", el("input", { type: "checkbox", "data-testid": "mask-prompt", name: "mask" }));
    this.mask.checked = v.mask === 1;
    this.ranks = row("Data-parallel ranks", select("ranks", "ranks"));
    this.lora = row("LoRA fine-tuning", el("input", { type: "checkbox", "data-testid": "lora", name: "lora" }));
    this.lora.checked = v.lora === 1;
    this.loraRank = row("LoRA rank r", select("lorarank", "lora-rank"));
    this.textArea = row("Your own text (optional)", el("textarea", { rows: "3", placeholder: "Paste at least a few paragraphs to train on them instead of the bundled King James text.", "data-testid": "user-text" }));

    this.buttons = el("div", { class: "gl-buttons" });
    this.toggle = button("Start", "train-toggle");
    this.stepBtn = button("Step once", "step-once");
    this.resetBtn = button("Reset", "reset");
    this.sweepBtn = button("Sweep G", "sweep");
    this.buttons.append(this.toggle, this.stepBtn, this.resetBtn, this.sweepBtn);

    for (const input of [this.batch, this.micro, this.opt, this.sched, this.preset, this.precision, this.device, this.corpus, this.packing, this.mask, this.ranks, this.lora, this.loraRank, this.ctx, this.seed, this.momentum, this.beta1, this.beta2, this.wd, this.clip, this.lr, this.spread, this.textArea]) {
      input.addEventListener("change", onChange);
    }
    this.lr.addEventListener("input", () => this.describe());
    this.spread.addEventListener("input", () => this.describe());
    this.describe();
  }

  // Parses the settings again from their source (the element's attributes,
  // or the URL) into the form — an attribute changed after the element was
  // made. Problems go to `problems`; the caller applies the form (`apply`).
  reparse() {
    const { values, problems } = parseSettings(this.fields ?? labFields(null), this.source.get, this.source.where);
    this.problems = problems.join(" ");
    this.fill(values);
  }

  // Settings saved with a lab state (state.js), checked like attributes:
  // they become the settings exactly as saved (the form shows them; it is
  // not read back, so a learning rate between the slider's notches stays as
  // it was). Returns the problems in words, "" when there are none.
  load(settings) {
    const get = (name) => (settings?.[name] === undefined || settings[name] === null ? null : String(settings[name]));
    const { values, problems } = parseSettings(this.fields, get, "the state file's");
    this.fill(values);
    this.values = values;
    this.problems = "";
    this.describe();
    if (this.syncUrl) reflectToUrl(this.fields, this.values);
    return problems.join(" ");
  }

  // Shows `values` in the form.
  fill(values) {
    const set = (input, value) => {
      if (value !== undefined) input.value = String(value);
    };
    this.lr.value = toLogSlider(values.lr);
    for (const [input, name] of [
      [this.batch, "batch"], [this.micro, "micro"], [this.spread, "spread"], [this.opt, "opt"], [this.momentum, "momentum"],
      [this.beta1, "beta1"], [this.beta2, "beta2"], [this.wd, "wd"], [this.clip, "clip"], [this.sched, "sched"],
      [this.preset, "preset"], [this.precision, "precision"], [this.device, "device"], [this.ctx, "ctx"], [this.seed, "seed"], [this.corpus, "corpus"],
      [this.packing, "packing"], [this.ranks, "ranks"], [this.loraRank, "lorarank"],
    ]) {
      set(input, values[name]);
    }
    this.mask.checked = values.mask === 1;
    this.lora.checked = values.lora === 1;
  }

  // The hints that follow the controls: learning rate, G, spread.
  describe() {
    hintOf(this.lr).textContent = formatLogSlider(this.lr);
    const g = Number(this.batch.value) / Number(this.micro.value);
    hintOf(this.micro).textContent = Number.isInteger(g) ? `G = ${g} micro-batches per step` : "must divide the batch";
    const s = Number(this.spread.value);
    hintOf(this.spread).textContent = s === 0 ? "0: only the longest documents" : `${s.toFixed(2)}: ${s === 1 ? "every document" : "longer documents"}, lengths vary`;
    hintOf(this.packing).textContent = PACKING_HINTS[this.packing.value] ?? "";
    const corpus = this.corpora?.find((c) => c.name === this.corpus.value);
    hintOf(this.corpus).textContent = corpus ? `${corpus.title}; a document is ${corpus.documents}` : "";
    hintOf(this.mask).textContent = "fine-tuning: the prompt (verse reference, headword) is no target; not with packing";
    const r = Number(this.ranks.value);
    hintOf(this.lora).textContent = this.lora.checked
      ? "the starting weights are frozen; adapters B·A train on every Linear (load a base model below)"
      : "off: every weight trains";
    const rank = Number(this.loraRank.value);
    hintOf(this.loraRank).textContent = `the update is (α/r)·B·A with α = ${2 * rank}; B [out, ${rank}] starts at zero`;
    this.loraRank.disabled = !this.lora.checked;
    hintOf(this.ranks).textContent = r > 1 ? `adds a "local" run: each rank divides by its own token count` : "one device";
    this.precisionHint();
    this.deviceHint();
  }

  // The hint under Precision; `text` once the lab knows what it runs on.
  precisionHint(text) {
    hintOf(this.precision).textContent = text ?? PRECISION_HINTS[this.precision.value] ?? "";
  }

  // The hint under Device; `text` once the lab knows where it runs and why.
  deviceHint(text) {
    hintOf(this.device).textContent = text ?? DEVICE_HINTS[this.device.value] ?? "";
    this.device.disabled = this.precision.value === "f64";
  }

  // A problem with how the settings combine that the wasm validation would
  // not word for this page, or "".
  combinationProblem(v = this.values) {
    const g = v.batch / v.micro;
    if (v.ranks > 1 && Number.isInteger(g) && g % v.ranks !== 0) {
      return `${v.ranks} ranks cannot share the ${g} micro-batch${g === 1 ? "" : "es"} of a step (B = ${v.batch}, b = ${v.micro}): choose fewer ranks or a smaller micro-batch.`;
    }
    return "";
  }

  // Settings from the controls; throws an Error in words for a number out of range.
  read() {
    const num = (input, name) => {
      const f = this.fields[name];
      const x = Number(input.value);
      if (!Number.isFinite(x) || x < f.min || x > f.max) throw new Error(`${f.label} must be between ${f.min} and ${f.max}, got "${String(input.value).slice(0, 20)}"`);
      return x;
    };
    return {
      lr: fromLogSlider(this.lr),
      batch: Number(this.batch.value),
      micro: Number(this.micro.value),
      spread: Number(this.spread.value),
      opt: this.opt.value,
      momentum: num(this.momentum, "momentum"),
      beta1: num(this.beta1, "beta1"),
      beta2: num(this.beta2, "beta2"),
      wd: num(this.wd, "wd"),
      clip: num(this.clip, "clip"),
      sched: this.sched.value,
      preset: this.preset.value,
      precision: this.precision.value,
      device: this.device.value,
      corpus: this.corpus.value,
      packing: this.packing.value,
      mask: this.mask.checked ? 1 : 0,
      ranks: Number(this.ranks.value),
      lora: this.lora.checked ? 1 : 0,
      lorarank: Number(this.loraRank.value),
      ctx: Math.round(num(this.ctx, "ctx")),
      seed: Math.round(num(this.seed, "seed")),
    };
  }

  // After a control changed (and `ready`): takes the new settings (and writes
  // them to the URL). Returns the problem in words when they cannot be taken, else "".
  apply() {
    this.problems = "";
    this.describe();
    try {
      this.values = { ...this.values, ...this.read() };
    } catch (e) {
      return e.message;
    }
    if (this.syncUrl) reflectToUrl(this.fields, this.values);
    return "";
  }

  // The pasted text: {text} ("" for the bundled one), or {problem, status}
  // when it cannot be used (status: what the status line should say, if anything).
  pastedText() {
    const raw = this.textArea.value;
    const text = raw.trim();
    if (raw.length > 0 && !text) return { problem: "Your text is empty (only spaces); clear the box to use the bundled text." };
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > MAX_TEXT_BYTES) {
      return {
        problem: `Your text is ${(bytes / 1048576).toFixed(1)} MB; the page accepts up to ${MAX_TEXT_BYTES / 1048576} MB. Nothing was lost: it is still in the box.`,
        status: "Paused: the pasted text is too large; the lab keeps its last settings and curves.",
      };
    }
    return { text };
  }

  // The wasm lab config for these settings, `overrides` applied, `extra` added.
  config(overrides = {}, extra = {}) {
    return labConfig({ ...this.values, ...overrides }, this.presets, extra);
  }

  presetNamed(name) {
    return this.presets.find((p) => p.name === name);
  }

  // The CPU reference always runs the smallest preset (web.rs builds it with nano).
  cpuPreset() {
    return this.presets[0].name;
  }

  // The G sweep's step count (its input lives with the sweep, sweep.js).
  setSweepSteps(steps) {
    this.values = { ...this.values, sweepsteps: steps };
    if (this.syncUrl && this.fields) reflectToUrl(this.fields, this.values);
  }
}
