// The lab's and the playground's settings: defaults, allowed ranges, and
// parsing from URL queries and element attributes. Anything out of range or
// malformed is replaced by the default and reported in words.
// It holds no model presets: those come from the wasm module (`presets()`,
// see wasm.js loadPresets) and are passed in. It builds no DOM.

// The lab's fields without the ones the presets decide; see labFields.
const LAB_FIELDS = {
  // defaults sized so a first visit on a slow (even software) adapter moves visibly
  lr: { label: "learning rate", def: 0.01, min: 1e-5, max: 1 },
  batch: { label: "effective batch", def: 8, choices: [4, 8, 16, 32] },
  micro: { label: "micro-batch size", def: 2, choices: [1, 2, 4, 8, 16, 32] },
  spread: { label: "length spread", def: 1, min: 0, max: 1 },
  opt: { label: "optimizer", def: "adamw", choices: ["sgd", "momentum", "adam", "adamw"] },
  momentum: { label: "momentum", def: 0.9, min: 0, max: 0.999 },
  beta1: { label: "β1", def: 0.9, min: 0, max: 0.999 },
  beta2: { label: "β2", def: 0.99, min: 0, max: 0.9999 },
  wd: { label: "weight decay", def: 0, min: 0, max: 1 },
  clip: { label: "gradient clipping", def: 1, min: 0, max: 100 },
  sched: { label: "schedule", def: "constant", choices: ["constant", "warmup", "cosine"] },
  // choices and default (the smallest) from the presets: labFields
  preset: { label: "model" },
  // max: the longest block size of any preset, from labFields
  ctx: { label: "context length", def: 32, min: 8, int: true },
  seed: { label: "seed", def: 1, min: 0, max: 1e9, int: true },
  sweepsteps: { label: "sweep steps", def: 40, min: 2, max: 1000, int: true },
  // choices and default (the first) from the shipped corpora: labFields
  corpus: { label: "corpus" },
  // padded: one whole document per sequence (fine-tuning); packed: full windows (pretraining)
  packing: { label: "packing", def: "padded", choices: ["padded", "packed"] },
  // 1: a document's prompt (verse reference, headword) is not a target, as in
  // fine-tuning. On by default: whole verses rarely fit the short default
  // context, so without the mask most sequences would hold the same count and
  // the strategies would agree; the prompts' lengths make the counts differ.
  mask: { label: "prompt mask", def: 1, choices: [0, 1] },
  // simulated data-parallel ranks; above 1 the lab adds a "local" run
  ranks: { label: "ranks", def: 1, choices: [1, 2, 4, 8] },
  // 1: the starting weights are frozen and LoRA adapters of rank `lorarank`
  // (α = 2r, on all four Linears of every block) train instead
  lora: { label: "LoRA", def: 0, choices: [0, 1] },
  lorarank: { label: "LoRA rank", def: 8, choices: [1, 2, 4, 8, 16] },
  // f32: the lab on WebGPU (the CPU where there is none); f64: on the CPU
  // reference (the smallest preset); both: the two side by side
  precision: { label: "precision", def: "f32", choices: ["f32", "f64", "both"] },
  // where the f32 lab runs. auto: WebGPU on a real GPU; gradlab's f32 CPU
  // backend where there is no WebGPU or its adapter is a software renderer
  // (SwiftShader, llvmpipe), which steps slower than the CPU path
  device: { label: "device", def: "auto", choices: ["auto", "webgpu", "cpu"] },
};

// Older links say compute=webgpu|cpu; it stands for precision f32|f64 when
// precision itself is not given.
const COMPUTE_ALIAS = { webgpu: "f32", cpu: "f64" };

// The lab's fields, given the presets from wasm ([{name, block_size, …}],
// smallest first): the preset is one of their names, the smallest by default
// (as in web.rs), and no context is longer than the longest block size.
// Without presets (null: not loaded yet) no preset is valid and any context is.
// `corpora` ([{name, title, documents}], the default first) likewise.
export function labFields(presets, corpora = null) {
  return {
    ...LAB_FIELDS,
    preset: { ...LAB_FIELDS.preset, def: presets?.[0].name, choices: presets?.map((p) => p.name) ?? [] },
    corpus: { ...LAB_FIELDS.corpus, def: corpora?.[0].name, choices: corpora?.map((c) => c.name) ?? [] },
    ctx: { ...LAB_FIELDS.ctx, max: presets ? Math.max(...presets.map((p) => p.block_size)) : Infinity },
  };
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

// The lab settings as the wasm API expects them; `presets` as for labFields.
export function labConfig(v, presets, extra = {}) {
  const schedule =
    v.sched === "warmup" ? { kind: "warmup", warmup: 20 } :
    v.sched === "cosine" ? { kind: "cosine", warmup: 20, total: 1000, min_ratio: 0.1 } : { kind: "constant" };
  return {
    preset: v.preset,
    batch: v.batch,
    micro_batch: v.micro,
    spread: v.spread,
    // a context past the preset's grows the model's position table (the CLI's --ctx)
    seq_len: v.ctx,
    seed: v.seed,
    ...(v.corpus ? { corpus: v.corpus } : {}),
    packing: v.packing,
    mask_prompt: v.mask === 1,
    ranks: v.ranks,
    lora_rank: v.lora === 1 ? v.lorarank : 0,
    optimizer: { kind: v.opt, lr: v.lr, momentum: v.momentum, beta1: v.beta1, beta2: v.beta2, weight_decay: v.wd, max_grad_norm: v.clip, schedule },
    ...extra,
  };
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
