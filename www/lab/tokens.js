// The token-weight strip: for a few sequences of the last step's batch, one
// small cell per token, coloured by how much that token's loss weighs in each
// run's gradient, relative to the full batch's 1/N (the wasm lab's
// tokenWeights()). Masked prompt tokens and padding are drawn as such. It
// only draws what it is given: it does not step the lab or decide when to
// refresh (readouts.js does, every few steps). Each row's label gives the
// weight first and wraps rather than being cut, and the cells wrap to the
// width there is, so a phone shows the whole strip.
import { el } from "../ui.js";

// at most this many sequences, and the first this many positions of each
const MAX_SEQUENCES = 4;
const MAX_TOKENS = 64;
// colour scale: log2 of (weight × N) over ±range, the smallest of these
// ratios that covers the batch, so small differences still show
const RANGES = [1.1, 1.25, 1.5, 2, 4];
const NEUTRAL = [209, 213, 219];
const HEAVY = [234, 88, 12];
const LIGHT = [13, 148, 136];

const mix = (a, b, t) => a.map((x, i) => Math.round(x + (b[i] - x) * t));
const rgb = (c) => `rgb(${c[0]}, ${c[1]}, ${c[2]})`;

// The cell colour of a token weighing `ratio` times the full batch's 1/N,
// on a scale whose ends are 1/top and top.
export function weightColor(ratio, top) {
  const t = Math.max(-1, Math.min(1, Math.log2(ratio) / Math.log2(top)));
  return rgb(t >= 0 ? mix(NEUTRAL, HEAVY, t) : mix(NEUTRAL, LIGHT, -t));
}

// Text decoded from bytes as the page shows it: a model picks bytes, and an
// untrained one (or a window cut mid-character) gives sequences that are not
// UTF-8, which decode to U+FFFD "�", and control codes, which fonts draw as
// boxes; both shown as ▫, the mark a cell gives a byte it cannot show (the
// samples say so in their note). Newlines and tabs stay.
export const INVALID_MARK = "▫";
export const shownText = (text) => text.replace(/[\uFFFD\u0000-\u0008\u000B-\u001F\u007F-\u009F]/g, INVALID_MARK);

// A byte as something visible in a cell.
const glyph = (b) => (b === 32 ? "·" : b >= 33 && b < 127 ? String.fromCharCode(b) : "▫");

// Evenly spaced sequence indices, so more than one micro-batch shows.
function picks(count) {
  const n = Math.min(count, MAX_SEQUENCES);
  return [...new Set(Array.from({ length: n }, (_, k) => Math.floor((k * count) / n)))];
}

// The legend's swatches for a scale whose ends are 1/top and top.
function legendItems(top) {
  const swatch = (color, text, cls = "") => el("span", { class: "gl-tw-key" }, el("span", { class: `gl-tw-cell ${cls}`, style: color ? `background:${color}` : "" }), text);
  const mid = Math.sqrt(top);
  const x = (r) => `${+r.toFixed(2)}×`;
  return [
    "Colour: how much a token's loss counts in the step, against the full batch's 1/N. ",
    swatch(weightColor(1 / top, top), `${x(1 / top)} or less`),
    swatch(weightColor(1 / mid, top), x(1 / mid)),
    swatch(weightColor(1, top), "1× (= full batch)"),
    swatch(weightColor(mid, top), x(mid)),
    swatch(weightColor(top, top), `${x(top)} or more`),
    swatch(null, "prompt, masked (no target)", "gl-tw-prompt"),
    swatch(null, "padding", "gl-tw-pad"),
  ];
}

export class TokenStrip {
  constructor() {
    this.body = el("div", { class: "gl-tw-body" });
    this.caption = el("p", { class: "gl-small", text: "Take a step to see how each run weighs the tokens of its batch." });
    this.legend = el("p", { class: "gl-small gl-tw-legend" }, ...legendItems(RANGES[0]));
    this.node = el("div", { class: "gl-tw", "data-testid": "token-weights" }, this.caption, this.body, this.legend);
  }

  clear() {
    this.body.replaceChildren();
    this.node.dataset.step = "";
    this.caption.textContent = "Take a step to see how each run weighs the tokens of its batch.";
  }

  // `tw`: tokenWeights() of a lab at step `step`; `seqLen`: T, for padding.
  draw(tw, step, seqLen) {
    if (!tw) return this.clear();
    const { sequences, prompt_lengths: prompts, runs } = tw;
    // the full batch weighs every target 1/N: the unit of the colour scale
    const full = runs.find((r) => r.strategy === "full") ?? runs[0];
    const unit = full.weights.flat().find((w) => w > 0) ?? 1;
    const total = Math.round(1 / unit);
    let spread = 1;
    for (const r of runs) for (const ws of r.weights) for (const w of ws) if (w > 0) spread = Math.max(spread, w / unit, unit / w);
    const top = RANGES.find((t) => t >= spread * 0.999) ?? RANGES[RANGES.length - 1];
    this.legend.replaceChildren(...legendItems(top));
    const shown = picks(sequences.length);
    const width = Math.min(seqLen, MAX_TOKENS);
    this.node.dataset.step = String(step);
    this.caption.textContent = `The batch of step ${step}: ${shown.length} of its ${sequences.length} sequences, first ${width} positions; N = ${total} target tokens in all.`;
    this.body.replaceChildren(
      ...shown.map((i) => {
        const seq = sequences[i];
        const targets = seq.length - 1;
        const rows = runs.map((run) => {
          const g = Math.floor(i / run.micro_batch);
          const cells = [];
          for (let j = 0; j < width; j++) {
            if (j >= targets) {
              cells.push(el("span", { class: "gl-tw-cell gl-tw-pad", title: "padding: no target" }));
              continue;
            }
            const w = run.weights[i][j];
            const ch = glyph(seq[j + 1]);
            if (!(w > 0)) {
              cells.push(el("span", { class: "gl-tw-cell gl-tw-prompt", title: `“${ch}”: prompt, not a target`, text: ch }));
              continue;
            }
            const ratio = w / unit;
            cells.push(el("span", { class: "gl-tw-cell", style: `background:${weightColor(ratio, top)}`, "data-ratio": ratio.toFixed(4), title: `“${ch}”: ${ratio.toFixed(2)} × 1/N`, text: ch }));
          }
          const ratio = (run.weights[i].find((w) => w > 0) ?? 0) / unit;
          const name = run.strategy === "full" ? "full batch" : `${run.strategy} b=${run.micro_batch}, micro-batch ${g + 1}`;
          const label = el("span", { class: "gl-tw-label" }, el("b", { text: ratio ? `${ratio.toFixed(2)}×` : "—" }), ` ${name}`);
          return el("div", { class: "gl-tw-row", "data-strategy": run.strategy }, label, el("span", { class: "gl-tw-cells" }, ...cells));
        });
        const text = shownText(new TextDecoder().decode(new Uint8Array(seq.slice(0, width + 1))));
        return el("div", { class: "gl-tw-seq" }, el("div", { class: "gl-tw-title", text: `sequence ${i + 1}: ${targets} positions, ${Math.max(0, targets - Math.max(0, prompts[i] - 1))} targets — “${text}”` }), ...rows);
      }),
    );
  }
}
