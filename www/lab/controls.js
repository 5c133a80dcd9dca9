// The lab's settings side: builds the form, one row a setting of the lab's
// table (lab/settings.json, through settings.js), and its buttons, parses the
// initial settings (URL query / element attributes, see settings.js), reads
// the controls back into settings, writes them to the URL, and keeps the
// hints under the controls current. The model presets and the corpora come
// from wasm (loadPresets, loadCorpora), never from here. It does not train, draw or export: the
// panel (www/lab.js) wires the buttons and the change event to those.
import { CUSTOM, LAB_SETTINGS, labConfig, labFields, MAX_TEXT_BYTES, parseLabSettings, reflectToUrl, SCENARIOS, scenarioFields, scenarioNamed } from "../settings.js";
import { button, controlsForm, el, formatLogSlider, formRow, fromLogSlider, hintOf, selectInput, setChoices, toLogSlider } from "../ui.js";
import { loadCorpora, loadPresets } from "../wasm.js";

// How the scenario control shows custom settings (settings.js CUSTOM).
const CUSTOM_CHOICE = { name: CUSTOM, label: "Custom settings", summary: "every setting as you choose it", controls: ["micro", "lr", "batch"] };

// Settings a control's row stands for that are not in the table.
const TEXT = "text";

// The settings with a row in this form, in its order (settings.js LAB_SETTINGS).
const FORM_SETTINGS = LAB_SETTINGS.filter((s) => s.form !== false);

// The input for setting `s` (its field `f`, as labFields makes it; `name`
// and the test id set). Number boxes and sliders take their limits from the
// table; the context's maximum comes with the presets (usePresets).
function inputFor(s, f) {
  const attrs = { "data-testid": s.testid, name: s.name };
  const limits = () => ({ min: String(f.min), ...(Number.isFinite(f.max) ? { max: String(f.max) } : {}), step: String(s.step) });
  switch (s.kind) {
    case "choice":
      return selectInput(f.choices, undefined, attrs);
    case "number":
      return el("input", { type: "number", ...limits(), ...attrs });
    case "range":
      return el("input", { type: "range", ...limits(), ...attrs });
    // the slider holds log10 of the value
    case "log-slider":
      return el("input", { type: "range", min: String(Math.log10(f.min)), max: String(Math.log10(f.max)), step: String(s.step), ...attrs });
    case "checkbox":
      return el("input", { type: "checkbox", ...attrs });
  }
  throw new Error(`lab/settings.json: ${s.name} has no kind of control "${s.kind}"`);
}

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
    // every field but the model's, to fill the form with now; `basis` is the
    // scenario the settings start from (null: custom), and where the
    // weights start (the panel reads it)
    const { values, scenario } = parseLabSettings(labFields(null), get, where);
    this.values = values;
    this.basis = scenario;
    this.build(onChange);
    this.ready = Promise.all([loadPresets(), loadCorpora()]).then(([presets, corpora]) => this.usePresets(presets, corpora));
  }

  // Parses the settings again, now with the presets' names and block sizes
  // and the corpora's names, and fills in the Model and Corpus choices and
  // the context's limit.
  usePresets(presets, corpora) {
    this.presets = presets;
    this.corpora = corpora;
    this.baseFields = labFields(presets, corpora);
    const { values, problems, scenario } = parseLabSettings(this.baseFields, this.source.get, this.source.where);
    this.basis = scenario;
    // problems with the settings we were given stay visible until a control changes
    this.problems = problems.join(" ");
    const f = this.fields;
    const { preset, ctx, corpus } = this.inputs;
    setChoices(preset, f.preset.choices, values.preset);
    // the default (smallest) preset's shape
    hintOf(preset).textContent = presetHint(this.presetNamed(f.preset.def));
    ctx.max = String(f.ctx.max);
    setChoices(corpus, f.corpus.choices, values.corpus);
    // a context longer than any block size was shown until now; it is not taken
    if (values.ctx !== this.values.ctx) ctx.value = String(values.ctx);
    this.values = values;
    this.describe();
  }

  // The settings the form shows and parses with: the table's, with the
  // scenario's defaults (settings.js scenarioFields); undefined until `ready`.
  get fields() {
    return this.baseFields && scenarioFields(this.baseFields, this.basis);
  }

  // The form: the scenario, then one row a setting of the table and the
  // pasted text, the rows the scenario is about first and the rest folded
  // under "Advanced" (arrange); and the buttons. `inputs` holds the
  // controls by setting name.
  build(onChange) {
    const fields = labFields(null);
    const form = (this.form = controlsForm("Lab controls"));
    // the scenario sets the other controls (`onScenario`, wired by the
    // panel); a control changed by hand makes the settings custom
    this.scenario = formRow(form, "Scenario", el("select", { "data-testid": "scenario", name: "scenario" }), "");
    for (const x of [CUSTOM_CHOICE, ...SCENARIOS]) this.scenario.append(el("option", { value: x.name, text: x.label }));
    this.scenario.addEventListener("change", () => this.scenarioPicked(this.scenario.value));
    this.quick = el("div", { class: "gl-controls" });
    this.advanced = el("details", { class: "gl-advanced", "data-testid": "advanced" }, el("summary", { text: "Advanced: every setting" }));
    this.advancedRows = el("div", { class: "gl-controls" });
    this.advanced.append(this.advancedRows);
    form.append(this.quick, this.advanced);
    this.inputs = {};
    for (const s of FORM_SETTINGS) {
      const input = (this.inputs[s.name] = formRow(this.advancedRows, s.label, inputFor(s, fields[s.name]), typeof s.hint === "string" ? s.hint : ""));
      input.addEventListener("change", onChange);
      // a slider's hint follows it while it is dragged
      if (s.kind === "range" || s.kind === "log-slider") input.addEventListener("input", () => this.describe());
    }
    // the inputs precisionHint and deviceHint write under
    this.precision = this.inputs.precision;
    this.device = this.inputs.device;
    this.textArea = formRow(this.advancedRows, "Your own text (optional)", el("textarea", { rows: "3", placeholder: "Paste at least a few paragraphs to train on them instead of the bundled text.", "data-testid": "user-text" }));
    this.textArea.addEventListener("change", onChange);
    this.fill(this.values);
    this.arrange();

    this.buttons = el("div", { class: "gl-buttons" });
    this.toggle = button("Start", "train-toggle");
    this.stepBtn = button("Step", "step-once");
    this.stepBtn.title = "one optimizer step";
    this.resetBtn = button("Reset", "reset");
    this.sweepBtn = button("Sweep G", "sweep");
    this.buttons.append(this.toggle, this.stepBtn, this.resetBtn, this.sweepBtn);
    this.describe();
  }

  // Parses the settings again from their source (the element's attributes,
  // or the URL) into the form — an attribute changed after the element was
  // made. Problems go to `problems`; the caller applies the form (`apply`).
  // Returns whether the scenario they start from changed (and with it where
  // the weights start).
  reparse() {
    const before = this.basis;
    const { values, problems, scenario } = parseLabSettings(this.baseFields ?? labFields(null), this.source.get, this.source.where);
    this.problems = problems.join(" ");
    this.basis = scenario;
    this.values = { ...this.values, scenario: values.scenario };
    this.fill(values);
    this.arrange();
    return before !== scenario;
  }

  // Settings saved with a lab state (state.js), checked like attributes:
  // they become the settings exactly as saved (the form shows them; it is
  // not read back, so a learning rate between the slider's notches stays as
  // it was). Returns the problems in words, "" when there are none.
  load(settings) {
    const get = (name) => (settings?.[name] === undefined || settings[name] === null ? null : String(settings[name]));
    const { values, problems, scenario } = parseLabSettings(this.baseFields, get, "the state file's");
    this.basis = scenario;
    this.fill(values);
    this.arrange();
    this.values = values;
    this.problems = "";
    this.describe();
    if (this.syncUrl) reflectToUrl(this.fields, this.values);
    return problems.join(" ");
  }

  // Shows `values` in the form; a value not given (the model and the corpus
  // before the presets) leaves its control as it is.
  fill(values) {
    for (const s of FORM_SETTINGS) {
      const input = this.inputs[s.name];
      const value = values[s.name];
      if (value === undefined) continue;
      if (s.kind === "checkbox") input.checked = value === 1;
      else if (s.kind === "log-slider") {
        input.value = toLogSlider(value);
        // where the slider landed (its step rounds the value): read() keeps
        // the exact value filled in until the slider moves from here
        input.filledAt = input.value;
        input.filledValue = value;
      } else input.value = String(value);
    }
  }

  // The hints that follow the controls (a log slider's value, G, spread,
  // corpus, ranks, LoRA), the table's hint for each choice, and the controls
  // that another one switches off.
  describe() {
    const { batch, micro, spread, corpus, ranks, lora, lorarank } = this.inputs;
    for (const s of FORM_SETTINGS) {
      const input = this.inputs[s.name];
      // a log slider's position means nothing read off it: its value shows under it
      if (s.kind === "log-slider") hintOf(input).textContent = input.value === input.filledAt ? input.filledValue.toPrecision(2) : formatLogSlider(input);
      if (s.hint && typeof s.hint === "object") hintOf(input).textContent = s.hint[input.value] ?? "";
      if (s.when) input.disabled = !this.inputs[s.when].checked;
    }
    const g = Number(batch.value) / Number(micro.value);
    hintOf(micro).textContent = Number.isInteger(g) ? `G = ${g} micro-batches per step` : "must divide the batch";
    const x = Number(spread.value);
    hintOf(spread).textContent = x === 0 ? "0: only the longest documents" : `${x.toFixed(2)}: ${x === 1 ? "every document" : "longer documents"}, lengths vary`;
    const shipped = this.corpora?.find((c) => c.name === corpus.value);
    hintOf(corpus).textContent = shipped ? `${shipped.title}; a document is ${shipped.documents}` : "";
    hintOf(lora).textContent = lora.checked
      ? "the starting weights are frozen; adapters B·A train on every Linear (load a base model below)"
      : "off: every weight trains";
    const rank = Number(lorarank.value);
    hintOf(lorarank).textContent = `the update is (α/r)·B·A with α = ${2 * rank}; B [out, ${rank}] starts at zero`;
    hintOf(ranks).textContent = Number(ranks.value) > 1 ? `adds a "local" run: each rank divides by its own token count` : "one device";
    this.scenario.value = this.shownScenario();
    hintOf(this.scenario).textContent = (scenarioNamed(this.scenario.value) ?? CUSTOM_CHOICE).summary;
    // a setting the last change turned, said where it was turned
    if (this.adjusted) hintOf(this.inputs[this.adjusted.name]).textContent = this.adjusted.text;
    this.precisionHint();
    this.deviceHint();
  }

  // What the scenario control shows: the scenario the settings start from
  // while every setting is still that scenario's, else custom.
  shownScenario() {
    const fields = this.fields;
    if (!this.basis || !fields) return this.basis?.name ?? CUSTOM;
    const page = ["scenario", "sweepsteps"];
    const same = Object.entries(fields).every(([name, f]) => page.includes(name) || this.values[name] === undefined || this.values[name] === f.def);
    return same && !this.textArea.value.trim() ? this.basis.name : CUSTOM;
  }

  // The scenario control was changed by hand to `name`: custom keeps every
  // setting as it is (and the weights) but makes the table's defaults the
  // ones links leave out; a scenario goes to the panel (`onScenario`).
  scenarioPicked(name) {
    const scenario = scenarioNamed(name);
    if (scenario) return this.onScenario?.(scenario);
    this.basis = null;
    this.values = { ...this.values, scenario: CUSTOM };
    this.arrange();
    this.describe();
    if (this.syncUrl && this.fields) reflectToUrl(this.fields, this.values);
  }

  // The form set to `scenario`'s settings, every other setting at its
  // default (not yet taken: the panel applies them, as after a change by
  // hand). The sweep's step count stays.
  fillScenario(scenario) {
    this.basis = scenario;
    const defaults = Object.fromEntries(Object.entries(this.fields).map(([name, f]) => [name, f.def]));
    this.values = { ...this.values, scenario: scenario.name };
    this.fill(defaults);
    this.textArea.value = "";
    this.arrange();
  }

  // The rows the scenario (or custom settings) is about stand beside the
  // charts, in the table's order; every other row folds under "Advanced".
  arrange() {
    const about = (this.basis ?? CUSTOM_CHOICE).controls;
    const rowOf = (name) => (name === TEXT ? this.textArea : this.inputs[name]).parentElement;
    const names = [...FORM_SETTINGS.map((s) => s.name), TEXT];
    this.quick.replaceChildren(this.scenario.parentElement, ...names.filter((n) => about.includes(n)).map(rowOf));
    this.advancedRows.replaceChildren(...names.filter((n) => !about.includes(n)).map(rowOf));
  }

  // The table's hint for the choice `name` shows now.
  choiceHint(name) {
    return LAB_SETTINGS.find((s) => s.name === name).hint[this.inputs[name].value] ?? "";
  }

  // The hint under Precision; `text` once the lab knows what it runs on.
  precisionHint(text) {
    hintOf(this.precision).textContent = text ?? this.choiceHint("precision");
  }

  // The hint under Device; `text` once the lab knows where it runs and why.
  deviceHint(text) {
    hintOf(this.device).textContent = text ?? this.choiceHint("device");
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
    const values = {};
    for (const s of FORM_SETTINGS) {
      const input = this.inputs[s.name];
      const f = this.fields[s.name];
      if (s.kind === "checkbox") values[s.name] = input.checked ? 1 : 0;
      // a value between the slider's notches (from a URL, an attribute, a
      // saved state) stays as it was until the slider itself moves
      else if (s.kind === "log-slider") values[s.name] = input.value === input.filledAt ? input.filledValue : fromLogSlider(input);
      else if (s.kind === "range") values[s.name] = Number(input.value);
      else if (s.kind === "choice") values[s.name] = typeof f.choices[0] === "number" ? Number(input.value) : input.value;
      else {
        const x = Number(input.value);
        if (!Number.isFinite(x) || x < f.min || x > f.max) throw new Error(`${f.label} must be between ${f.min} and ${f.max}, got "${String(input.value).slice(0, 20)}"`);
        values[s.name] = f.int ? Math.round(x) : x;
      }
    }
    return values;
  }

  // After a control changed (and `ready`): takes the new settings (and writes
  // them to the URL). Returns the problem in words when they cannot be taken, else "".
  apply() {
    this.problems = "";
    this.adjusted = null;
    let values;
    try {
      values = { ...this.values, ...this.read() };
    } catch (e) {
      this.describe();
      return e.message;
    }
    this.values = this.resolveConflicts(this.values, values);
    this.values.scenario = this.basis?.name ?? CUSTOM;
    this.describe();
    if (this.syncUrl) reflectToUrl(this.fields, this.values);
    return "";
  }

  // Settings that cannot go together are settled as they are chosen, the
  // latest choice winning, and the one turned is said under its control
  // (`adjusted`), never left as an error: masking prompts needs one whole
  // document per sequence, so packed windows turn the mask off and the mask
  // turns packing back to padded. Returns the values to take.
  resolveConflicts(before, after) {
    if (!(after.packing === "packed" && after.mask === 1)) return after;
    const maskJustOn = before.mask !== 1;
    const turned = maskJustOn ? { ...after, packing: "padded" } : { ...after, mask: 0 };
    this.fill(turned);
    this.adjusted = maskJustOn
      ? { name: "packing", text: "back to padded: masking prompts needs one whole document per sequence" }
      : { name: "mask", text: "turned off: packed windows run documents together, so there is no prompt to mask" };
    return turned;
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

  // The smallest preset: the one the f64 reference always runs
  // (LabSettings::model in src/lab/settings.rs builds nano whatever preset
  // was asked for), so a "both" lab's f32 side matches it.
  smallestPreset() {
    return this.presets[0].name;
  }

  // The G sweep's step count (its input lives with the sweep, sweep.js).
  setSweepSteps(steps) {
    this.values = { ...this.values, sweepsteps: steps };
    if (this.syncUrl && this.fields) reflectToUrl(this.fields, this.values);
  }
}
