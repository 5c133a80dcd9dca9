// "Does this affect my training?": the calculator panel. The reader gives B,
// b, R and their examples' target-token counts (typed, pasted, or read from a
// local file that never leaves the browser) and sees how much naive and
// local accumulation over- or under-weight each example's tokens against
// corrected's. Every number comes from the wasm module's tokenWeightsFor
// (src/accum/affected.rs), which `gradlab affected --json` prints too; this
// file only reads the controls and draws. It registers no element:
// <gradlab-figure name="affected"> (www/figure.js) mounts it with
// `new AffectedPanel(root, get)`.
import { packageFile } from "../assets.js";
import { loadGradlab } from "../wasm.js";
import { el, errorLine, errorText, formRow, showMessage } from "../ui.js";

// named literally so that bundlers copy it (assets.js)
const STYLES = () => packageFile("www/lab/affected.css", new URL("./affected.css", import.meta.url));

// A file is read only this far, and only this many examples are used, so a
// huge file cannot freeze the page; the panel says when either cut.
export const MAX_FILE_BYTES = 8 * 1024 * 1024;
export const MAX_EXAMPLES = 100_000;
// per-example rows drawn; the summary and the chart cover every example
const ROWS_SHOWN = 100;
// how long typing may pause before the panel recomputes
const SETTLE_MS = 150;

// The module's field names (the CLI's flags) as the reader sees them.
const LABELS = { batch: "Batch B", "micro-batch": "Micro-batch b", ranks: "Devices R", lengths: "Lengths", unit: "Count" };

export const ASSIGNMENT =
  "The examples are taken in the order given: each B in a row are one optimizer step (a tail shorter than B is left out), " +
  "each b in a row within a step one micro-batch (G = B/b of them), and device r holds micro-batches r·G/R to (r+1)·G/R − 1. " +
  "A token's weight is 1/N under corrected (N: the step's target tokens), 1/(G·N_g) under naive (N_g: its micro-batch's), " +
  "1/(R·N_r) under local (N_r: its device's); the figures are each weight over corrected's, over every step.";

const ratio = (r) => (r === null || r === undefined ? "–" : `${r.toFixed(r >= 100 ? 0 : r >= 10 ? 1 : r >= 1 ? 2 : 3)}×`);
const percent = (share) => {
  const p = share * 100;
  if (p > 0 && p < 0.1) return "under 0.1%";
  if (p < 100 && p > 99.9) return "over 99.9%";
  return `${p.toFixed(1).replace(/\.0$/, "")}%`;
};
// the module's bins: below 0.9 closed on the left, 0.9–1.1 closed, above closed on the right
const binLabel = (b) => (b.to === null ? `over ${b.from}×` : b.from === 0 ? `under ${b.to}×` : b.from === 0.9 ? `${b.from}–${b.to}× (within 10%)` : `${b.from}–${b.to}×`);

export class AffectedPanel {
  // `root`: a container inside a shadow root where www/elements.css applies;
  // `get(name)`: the host's attribute (batch, micro, ranks, mask, lengths) or null.
  constructor(root, get) {
    this.root = root;
    this.file = null; // {name, text, note} of the file last picked
    this.last = null;
    const form = el("form", { class: "gl-controls gl-affected-form", "aria-label": "Your training" });
    form.addEventListener("submit", (e) => e.preventDefault());
    const number = (testid, min) => el("input", { type: "number", min, step: "1", inputmode: "numeric", "data-testid": testid });
    this.batch = formRow(form, LABELS.batch, number("affected-batch", "1"), "sequences per optimizer step; empty: all the examples, one step");
    this.micro = formRow(form, LABELS["micro-batch"], number("affected-micro", "1"), "sequences per micro-batch");
    this.ranks = formRow(form, LABELS.ranks, number("affected-ranks", "1"), "data-parallel ranks; each holds G/R micro-batches");
    this.mask = el("input", { type: "checkbox", "data-testid": "affected-mask" });
    this.unit = el("select", { "data-testid": "affected-unit" }, el("option", { value: "bytes", text: "bytes (gradlab's tokens)" }), el("option", { value: "words", text: "words" }));
    this.lengths = el("textarea", { rows: "3", spellcheck: "false", "data-testid": "affected-lengths", placeholder: "3, 12, 40, 7 …" });
    this.fileInput = el("input", { type: "file", accept: ".jsonl,.json,.txt,.csv,text/plain", "data-testid": "affected-file" });
    formRow(form, LABELS.lengths, this.lengths, "target tokens per example, in order: numbers separated by commas or spaces, or JSONL lines");
    formRow(form, "…or a local file", this.fileInput, `numbers, or JSONL ("text", "prompt" + "completion", or "messages"); read here, never uploaded; the first ${MAX_FILE_BYTES / 1024 / 1024} MiB and ${MAX_EXAMPLES.toLocaleString("en")} examples`);
    formRow(form, "Prompts masked", this.mask, "JSONL: only the completion (the assistant's messages) counts");
    formRow(form, LABELS.unit, this.unit, "JSONL: how a text's tokens are counted");

    this.error = errorLine({ "data-testid": "affected-error" });
    this.note = el("p", { class: "gl-small", "data-testid": "affected-note", "aria-live": "polite" });
    this.verdict = el("p", { class: "gl-affected-verdict", "data-testid": "affected-verdict", "aria-live": "polite" });
    this.result = el("div", { class: "gl-affected-result", "data-testid": "affected-result" });
    root.append(
      el("link", { rel: "stylesheet", href: STYLES().href }),
      el("div", { class: "gl-affected" }, form, el("div", { class: "gl-affected-out" }, this.error, this.verdict, this.note, this.result, el("p", { class: "gl-small", text: ASSIGNMENT }))),
    );

    const prefill = (input, name, fallback) => (input.value = get(name) ?? fallback);
    prefill(this.batch, "batch", "");
    prefill(this.micro, "micro", "1");
    prefill(this.ranks, "ranks", "1");
    prefill(this.lengths, "lengths", "3, 12");
    this.mask.checked = get("mask") !== null && get("mask") !== "false";

    let timer;
    const soon = () => {
      clearTimeout(timer);
      timer = setTimeout(() => this.update(), SETTLE_MS);
    };
    for (const input of [this.batch, this.micro, this.ranks]) input.addEventListener("input", soon);
    this.lengths.addEventListener("input", () => {
      // typing takes over from a file picked before
      this.file = null;
      this.fileInput.value = "";
      soon();
    });
    for (const input of [this.mask, this.unit]) input.addEventListener("change", () => this.update());
    this.fileInput.addEventListener("change", () => this.readFile(this.fileInput.files?.[0]));

    this.ready = loadGradlab().then(
      (gl) => {
        this.gl = gl;
        this.colours = Object.fromEntries(gl.strategies().map((s) => [s.name, s.colour]));
        this.update();
      },
      (e) => showMessage(this.error, `The calculator could not load its WebAssembly module: ${errorText(e)}`),
    );
  }

  // The last answer (tokenWeightsFor's object, as `gradlab affected --json`
  // prints it), or null while the input is wrong.
  answer() {
    return this.last;
  }

  async readFile(file) {
    if (!file) return;
    showMessage(this.error, "");
    this.note.textContent = `reading ${file.name}…`;
    try {
      let text = await file.slice(0, MAX_FILE_BYTES).text();
      let note = "";
      if (file.size > MAX_FILE_BYTES) {
        // a line cut in two would be a bad number or bad JSON: drop it
        text = text.slice(0, text.lastIndexOf("\n") + 1);
        note = `only the first ${MAX_FILE_BYTES / 1024 / 1024} MiB of ${(file.size / 1024 / 1024).toFixed(1)} MiB read`;
      }
      this.file = { name: file.name, text, note };
      this.lengths.value = "";
      this.lengths.placeholder = `(from ${file.name}; type here to use a list instead)`;
      this.update();
    } catch (e) {
      this.file = null;
      showMessage(this.error, `${file.name} could not be read: ${errorText(e)}`);
    }
  }

  // B, b, R from the inputs; a message naming the field when one is not a
  // whole number of at least 1.
  numbers() {
    const whole = (input, label, optional = false) => {
      const text = input.value.trim();
      if (optional && text === "") return null;
      const x = Number(text);
      if (text === "" || !Number.isInteger(x) || x < 1) throw new Error(`${label}: must be a whole number of at least 1, got "${text.slice(0, 20)}"`);
      return x;
    };
    return { batch: whole(this.batch, LABELS.batch, true), micro_batch: whole(this.micro, LABELS["micro-batch"]), ranks: whole(this.ranks, LABELS.ranks) };
  }

  // The counts from the picked file, else the text box; a note when capped.
  lengthsFrom() {
    const source = this.file ? this.file.text : this.lengths.value;
    let lengths;
    try {
      lengths = Array.from(this.gl.lengthsFromText(source, this.mask.checked, this.unit.value));
    } catch (e) {
      // the module says "lengths: line 3: …"; name the file it came from
      throw this.file ? new Error(`${this.file.name}: ${errorText(e).replace(/^lengths: /, "")}`) : e;
    }
    const notes = this.file ? [`${this.file.name}: ${lengths.length.toLocaleString("en")} examples`, this.file.note] : [];
    if (lengths.length > MAX_EXAMPLES) {
      notes.push(`only the first ${MAX_EXAMPLES.toLocaleString("en")} used`);
      lengths = lengths.slice(0, MAX_EXAMPLES);
    }
    return { lengths, note: notes.filter(Boolean).join("; ") };
  }

  update() {
    if (!this.gl) return;
    try {
      const numbers = this.numbers();
      const { lengths, note } = this.lengthsFrom();
      const answer = this.gl.tokenWeightsFor({ lengths, ...numbers });
      this.last = answer;
      showMessage(this.error, "");
      const left = answer.examples_left_over ? `${answer.examples_left_over} example${answer.examples_left_over === 1 ? "" : "s"} past the last whole step left out` : "";
      this.note.textContent = [note, left].filter(Boolean).join("; ");
      this.draw(answer);
    } catch (e) {
      this.last = null;
      showMessage(this.error, inWords(errorText(e)));
      this.verdict.textContent = "";
      this.result.replaceChildren();
    }
  }

  draw(a) {
    this.verdict.textContent = a.verdict;
    const strategies = ["naive", "local"];
    const head = (...cells) => el("tr", {}, ...cells.map((c) => el("th", { text: c })));
    const row = (...cells) => el("tr", {}, ...cells.map((c) => el("td", { text: String(c) })));
    const s = a.summary;
    const summary = el(
      "table",
      { class: "gl-table", "data-testid": "affected-summary" },
      el("thead", {}, head("", "worst", "lowest", "highest", "tokens off by > 10%", "over", "under")),
      el(
        "tbody",
        {},
        ...strategies.map((k) => row(k, ratio(s[k].worst_ratio), ratio(s[k].min_ratio), ratio(s[k].max_ratio), percent(s[k].share_of_tokens_off_by_more_than_10_percent), percent(s[k].share_of_tokens_over), percent(s[k].share_of_tokens_under))),
      ),
    );
    const about = el("p", {
      class: "gl-small",
      text: `B = ${a.batch}, b = ${a.micro_batch} (G = ${a.micro_batches_per_step}), R = ${a.ranks}: ${a.steps} step${a.steps === 1 ? "" : "s"}, ${a.lengths.length.toLocaleString("en")} examples, ${a.tokens.toLocaleString("en")} target tokens. Weight over corrected's: above 1× a token counts for more, below for less.`,
    });
    this.result.replaceChildren(about, summary, this.chart(a), this.examples(a));
  }

  // The share of tokens in each band of ratio, naive's and local's bars side
  // by side, as plain DOM: a handful of bars needs no chart library.
  chart(a) {
    const bins = a.summary.naive.histogram;
    const bar = (strategy, share) => {
      const fill = el("span", { class: "gl-affected-fill" });
      fill.style.width = `${(share * 100).toFixed(2)}%`;
      fill.style.background = this.colours?.[strategy] ?? "currentColor";
      return el("div", { class: "gl-affected-bar", title: `${strategy}: ${percent(share)} of tokens` }, el("span", { class: "gl-affected-track" }, fill), el("span", { class: "gl-affected-share", text: percent(share) }));
    };
    const legend = el(
      "p",
      { class: "gl-small gl-affected-legend" },
      ...["naive", "local"].flatMap((k) => {
        const swatch = el("span", { class: "gl-affected-swatch" });
        swatch.style.background = this.colours?.[k] ?? "currentColor";
        return [swatch, ` ${k}  `];
      }),
    );
    return el(
      "figure",
      { class: "gl-affected-chart", "data-testid": "affected-chart" },
      el("figcaption", { class: "gl-small", text: "Share of tokens by their weight over corrected's" }),
      legend,
      el("div", { class: "gl-affected-bin gl-small" }, el("span", { text: "weight over corrected's" }), el("span", { text: "naive" }), el("span", { text: "local" })),
      ...bins.map((b, i) => el("div", { class: `gl-affected-bin${b.from === 0.9 ? " gl-affected-ok" : ""}` }, el("span", { class: "gl-affected-label", text: binLabel(b) }), bar("naive", b.share_of_tokens), bar("local", a.summary.local.histogram[i].share_of_tokens))),
    );
  }

  examples(a) {
    const n = a.lengths.length;
    const rows = [];
    for (let i = 0; i < Math.min(n, ROWS_SHOWN); i++) {
      const p = a.placement[i];
      rows.push(el("tr", {}, ...[i, p.step, p.micro_batch, p.rank, a.lengths[i], ratio(a.naive[i]), ratio(a.local[i])].map((c) => el("td", { text: String(c) }))));
    }
    return el(
      "details",
      { class: "gl-affected-examples", ...(n <= 16 ? { open: "" } : {}) },
      el("summary", { class: "gl-small", text: n > ROWS_SHOWN ? `Each example (the first ${ROWS_SHOWN} of ${n.toLocaleString("en")})` : "Each example" }),
      el(
        "table",
        { class: "gl-table", "data-testid": "affected-examples" },
        el("thead", {}, el("tr", {}, ...["example", "step", "micro-batch", "device", "tokens", "naive", "local"].map((c) => el("th", { text: c })))),
        el("tbody", {}, ...rows),
      ),
    );
  }
}

// "micro-batch: …" from the module as the panel labels the field.
function inWords(message) {
  const m = /^([a-z-]+): (.*)$/s.exec(message);
  return m && LABELS[m[1]] ? `${LABELS[m[1]]}: ${m[2]}` : message;
}
