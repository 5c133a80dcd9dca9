// The lab's and the playground's settings: defaults, allowed ranges, and
// parsing from URL queries and element attributes. Anything out of range or
// malformed is replaced by the default and reported in words. The lab's come
// from its table (lab/settings.json), which also says how each becomes the
// wasm API's settings (labConfig).
// It holds no model presets: those come from the wasm module (`presets()`,
// see wasm.js loadPresets) and are passed in. It builds no DOM.
import table from "./lab/settings.json" with { type: "json" };
import scenarioTable from "./lab/scenarios.json" with { type: "json" };

// The lab's settings, one entry a control, in the form's order: kind, range
// or choices, default, label, hint, test id and where the value goes in the
// wasm API's LabSettings (lab/settings.json says what each property means).
// Everything below reads it; a new control is an entry there and a field in
// LabSettings (src/lab/settings.rs).
export const LAB_SETTINGS = table.settings;

// The lab's scenarios (lab/scenarios.json), the page's default first: each
// sets some of the settings and where the weights start; `gradlab scenario`
// measures what each claims. "custom" is none: the table's own defaults.
export const SCENARIOS = scenarioTable.scenarios;
export const CUSTOM = "custom";

// The lab's settings by name; the presets and corpora complete the preset's,
// the corpus's and the context's: labFields.
const LAB_FIELDS = Object.fromEntries(LAB_SETTINGS.map((s) => [s.name, s]));

// Older links say compute=webgpu|cpu; it stands for precision f32|f64 when
// precision itself is not given.
const COMPUTE_ALIAS = { webgpu: "f32", cpu: "f64" };

// The lab's fields, given the presets from wasm ([{name, block_size, …}],
// smallest first): the preset is one of their names, the smallest by default
// (as LabSettings' default, src/lab/settings.rs), and no context is longer
// than the longest block size.
// Without presets (null: not loaded yet) no preset is valid and any context is.
// `corpora` ([{name, title, documents}], the default first) likewise.
export function labFields(presets, corpora = null) {
  return {
    ...LAB_FIELDS,
    preset: { ...LAB_FIELDS.preset, def: presets?.[0].name, choices: presets?.map((p) => p.name) ?? [] },
    corpus: { ...LAB_FIELDS.corpus, def: corpora?.[0].name, choices: corpora?.map((c) => c.name) ?? [] },
    ctx: { ...LAB_FIELDS.ctx, max: presets ? Math.max(...presets.map((p) => p.block_size)) : Infinity },
    scenario: { ...LAB_FIELDS.scenario, choices: [CUSTOM, ...SCENARIOS.map((x) => x.name)] },
  };
}

// The scenario named `name`, or null for custom settings.
export const scenarioNamed = (name) => SCENARIOS.find((x) => x.name === name) ?? null;

// `fields` with the defaults of `scenario` (null: custom, the table's): what
// a setting not given takes, and what the URL leaves out.
export function scenarioFields(fields, scenario) {
  const out = { ...fields };
  for (const [name, value] of Object.entries(scenario?.settings ?? {})) out[name] = { ...fields[name], def: value };
  return out;
}

// The lab's settings from `get` (as parseSettings): the scenario first, then
// every other setting over that scenario's defaults, so `?batch=16` is the
// default scenario with a batch of 16 and `?scenario=custom&…` the table's
// defaults. Returns { values, problems, scenario }.
export function parseLabSettings(fields, get, where) {
  const { scenario: scenarioField, ...rest } = fields;
  const first = parseSettings({ scenario: scenarioField }, get, where);
  const scenario = scenarioNamed(first.values.scenario);
  const { values, problems } = parseSettings(scenarioFields(rest, scenario), get, where);
  return { values: { ...values, scenario: first.values.scenario }, problems: [...first.problems, ...problems], scenario };
}

export const PLAYGROUND_FIELDS = {
  surface: { label: "surface", def: "quadratic", choices: ["quadratic", "rosenbrock", "saddle", "himmelblau"] },
  pglr: { label: "learning rate", def: 0.02, min: 1e-4, max: 2 },
  pgmomentum: { label: "momentum", def: 0.9, min: 0, max: 0.99 },
  pgbeta1: { label: "β1", def: 0.9, min: 0, max: 0.99 },
  pgbeta2: { label: "β2", def: 0.999, min: 0.5, max: 0.9999 },
  pgnoise: { label: "SGD noise", def: 0.5, min: 0, max: 3 },
};

const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

// `text` as a number written in decimal notation, else NaN: Number() would
// also take "0x10", " 1 " and "".
export const decimal = (text) => (DECIMAL.test(String(text)) ? Number(text) : NaN);

// Parses `get(name)` (URLSearchParams.get or getAttribute) for every field.
// Returns { values, problems } with problems as sentences for the page.
export function parseSettings(fields, get, where) {
  const values = {};
  const problems = [];
  for (const [name, f] of Object.entries(fields)) {
    let raw = get(name);
    if (name === "precision" && (raw === null || raw === undefined || raw === "")) {
      const compute = get("compute");
      if (compute !== null && compute !== undefined && compute !== "") {
        raw = COMPUTE_ALIAS[String(compute).trim().toLowerCase()];
        if (raw === undefined) problems.push(`${where} compute="${String(compute).slice(0, 40)}" is not one of ${Object.keys(COMPUTE_ALIAS).join(", ")}; using ${f.def}.`);
      }
    }
    values[name] = f.def;
    if (raw === null || raw === undefined || raw === "") continue;
    const text = String(raw).slice(0, 40);
    if (f.choices) {
      const match = f.choices.find((c) => String(c) === text.trim().toLowerCase());
      if (match === undefined) problems.push(`${where} ${name}="${text}" is not one of ${f.choices.join(", ")}; using ${f.def}.`);
      else values[name] = match;
      continue;
    }
    // decimal notation only: Number() would also take "0x10", " 0.5 " and ""
    const x = DECIMAL.test(text) ? Number(text) : NaN;
    if (!Number.isFinite(x)) problems.push(`${where} ${name}="${text}" is not a number; using ${f.def}.`);
    else if (x < f.min || x > f.max) problems.push(`${where} ${name}=${text} is outside ${f.min}…${f.max}; using ${f.def}.`);
    else if (f.int && !Number.isInteger(x)) problems.push(`${where} ${name}=${text} must be a whole number; using ${f.def}.`);
    else values[name] = x;
  }
  return { values, problems };
}

// The page refuses pasted text above this size rather than freeze the tab.
export const MAX_TEXT_BYTES = 8 << 20;

// The lab settings as the wasm API expects them (LabSettings), each value put
// where its entry's `path` says; `extra` added. `presets` as for labFields.
export function labConfig(v, presets, extra = {}) {
  const config = {};
  for (const s of LAB_SETTINGS) {
    // the preset and corpus are unset until the wasm module lists them
    if (!s.path || v[s.name] === undefined || v[s.name] === "") continue;
    const sent = s.when && v[s.when] !== 1 ? s.off : s.kind === "checkbox" ? v[s.name] === 1 : s.settings ? s.settings[v[s.name]] : v[s.name];
    const keys = s.path.split(".");
    const last = keys.pop();
    let node = config;
    for (const k of keys) node = node[k] ??= {};
    node[last] = sent;
  }
  return { ...config, ...extra };
}

// Writes `values` that differ from the defaults into the page URL
// (replaceState); the old `compute` alias gives way to `precision`.
export function reflectToUrl(fields, values) {
  const url = new URL(location.href);
  url.searchParams.delete("compute");
  for (const [name, f] of Object.entries(fields)) {
    if (values[name] === f.def) url.searchParams.delete(name);
    else url.searchParams.set(name, String(values[name]));
  }
  history.replaceState(null, "", url);
}
