// <gradlab-figure name="…">: one figure of the article (www/explainer.html)
// as an element anyone can embed, each with only the controls it needs:
//   loss-vs-g      the seed write-up's loss figure alone (seed-figures.json,
//                  with "Run it yourself")
//   distance-vs-g  its weight-distance figure alone
//   token-weights  the worked example: every target token's weight in the
//                  step's gradient under naive and corrected accumulation,
//                  for micro-batches of the lengths given (lengths="3,12")
//   precision      the Fine-tuning lab with its f64 twin beside it
//                  (precision both), trained only when the reader presses Start
//   affected       the "am I affected?" calculator (www/lab/affected.js),
//                  imported when asked for, so this element works without it
// Every figure states its result in words (aria-label, figcaption). An
// unknown or missing name is an error line naming the attribute. Not here:
// the element's registration and shadow root (elements.js), the figures'
// own drawing code where it already exists (seedfigures.js, lab.js).
import { packageFile } from "./assets.js";
import { el, errorLine, errorText, showMessage } from "./ui.js";
import { SeedFiguresPanel } from "./lab/seedfigures.js";
import { LabPanel } from "./lab.js";
import { loadStrategies, strategyStyle } from "./lab/charts.js";

export const FIGURE_NAMES = ["loss-vs-g", "distance-vs-g", "token-weights", "precision", "affected"];
// named literally so that bundlers copy it (assets.js)
const STYLES = () => packageFile("www/figure.css", new URL("./figure.css", import.meta.url));

// lengths="…": micro-batches' target-token counts, the worked example's by default
const DEFAULT_LENGTHS = [3, 12];
const MAX_MICRO_BATCHES = 8;
const MAX_TOKENS = 64;

const gcd = (a, b) => (b ? gcd(b, a % b) : a);
// a / b in lowest terms, "1/6"; a whole number without its "/1"
function fraction(a, b) {
  const d = gcd(a, b);
  return b / d === 1 ? String(a / d) : `${a / d}/${b / d}`;
}
// a ratio as a short decimal: 2.5, 0.625, 1.33
const ratio = (x) => String(Number(x.toPrecision(3)));

// Parses lengths="3,12": { lengths, problem } with the default and a
// sentence naming the attribute when the value is not usable.
export function parseLengths(raw) {
  if (raw === null || raw === undefined || raw.trim() === "") return { lengths: DEFAULT_LENGTHS, problem: "" };
  const text = String(raw).slice(0, 80);
  const parts = text.split(",").map((p) => p.trim());
  const ok = parts.length >= 1 && parts.length <= MAX_MICRO_BATCHES && parts.every((p) => /^\d+$/.test(p) && Number(p) >= 1 && Number(p) <= MAX_TOKENS);
  if (ok) return { lengths: parts.map(Number), problem: "" };
  return {
    lengths: DEFAULT_LENGTHS,
    problem: `lengths="${text}" must be 1 to ${MAX_MICRO_BATCHES} whole numbers from 1 to ${MAX_TOKENS}, separated by commas (each micro-batch's count of target tokens); showing lengths="${DEFAULT_LENGTHS.join(",")}".`,
  };
}

// Every token's weight in the accumulated gradient, per micro-batch g with
// N_g targets, G micro-batches and N = Σ N_g (docs/DESIGN.md §1): naive
// 1/(G·N_g), corrected (= the full batch) 1/N.
export function tokenWeights(lengths) {
  const G = lengths.length;
  const N = lengths.reduce((a, b) => a + b, 0);
  return {
    G,
    N,
    microBatches: lengths.map((n) => ({
      tokens: n,
      naive: { each: 1 / (G * n), text: fraction(1, G * n), total: fraction(1, G) },
      corrected: { each: 1 / N, text: fraction(1, N), total: fraction(n, N) },
      // naive's weight over corrected's: N/(G·N_g)
      ratio: N / (G * n),
    })),
  };
}

// The worked example of the article's second section, drawn: one bar per
// target token, its height its weight, naive above corrected on one scale.
class TokenWeightsFigure {
  constructor(root, get) {
    this.root = root;
    const { lengths, problem } = parseLengths(get("lengths"));
    this.error = errorLine({ "data-testid": "figure-error" });
    this.weights = tokenWeights(lengths);
    this.figure = el("figure", { class: "gl-tw", "data-testid": "token-weights" });
    root.append(this.error, this.figure);
    showMessage(this.error, problem);
    this.ready = loadStrategies().then(
      () => this.draw(),
      (e) => showMessage(this.error, `The token-weights figure could not load the strategies' colours: ${errorText(e)}`),
    );
  }

  summary() {
    const { G, N, microBatches } = this.weights;
    const each = microBatches
      .map((m, i) => `micro-batch ${i + 1} (${m.tokens} token${m.tokens === 1 ? "" : "s"}): naive ${m.naive.text} per token, corrected ${m.corrected.text}, ${ratio(m.ratio)}×`)
      .join("; ");
    const totals = microBatches.map((m) => m.corrected.total).join(", ");
    return (
      `${G} micro-batch${G === 1 ? "" : "es"} holding ${N} target tokens. ${each}. ` +
      `Naive gives every micro-batch the same share of the step, 1/${G}; corrected gives each its share of the tokens (${totals}), as the full batch does.`
    );
  }

  draw() {
    const { microBatches } = this.weights;
    const top = Math.max(...microBatches.map((m) => Math.max(m.naive.each, m.corrected.each)));
    const row = (strategy) => {
      const style = strategyStyle(strategy);
      const groups = microBatches.map((m, i) => {
        const w = m[strategy];
        const bars = el("div", { class: "gl-tw-bars" });
        for (let t = 0; t < m.tokens; t++) {
          const bar = el("span", { class: "gl-tw-bar" });
          bar.style.height = `${Math.max(2, (w.each / top) * 100)}%`;
          bar.style.background = style.colour;
          bars.append(bar);
        }
        const note = strategy === "naive" ? `${w.text} each · ${ratio(m.ratio)}×` : `${w.text} each`;
        const group = el("div", { class: "gl-tw-group", "data-strategy": strategy, "data-weight": String(w.each) }, bars, el("small", { text: note }));
        // a micro-batch's width follows its token count, so bars keep one width
        group.style.flexGrow = String(m.tokens);
        group.title = `micro-batch ${i + 1}: ${m.tokens} tokens, ${w.text} each, ${w.total} of the step`;
        return group;
      });
      return el("div", { class: "gl-tw-row" }, el("span", { class: "gl-tw-label", text: style.label }), el("div", { class: "gl-tw-groups" }, ...groups));
    };
    const text = this.summary();
    this.figure.replaceChildren(
      el("div", { class: "gl-tw-plot", role: "img", "aria-label": `Per-token weights in the gradient. ${text}` }, row("naive"), row("corrected")),
      el("figcaption", { class: "gl-small", text }),
    );
    this.figure.dataset.drawn = "1";
  }
}

// The Fine-tuning lab with its f64 twin (precision both): nothing trains
// until Start. Any lab attribute set on the element is passed on, except
// precision, which is this figure's point.
function precisionFigure(root, get) {
  const caption = el("p", {
    class: "gl-small gl-fig-note",
    "data-testid": "precision-caption",
    text:
      "Press Start: the f32 lab and its f64 twin take the same steps. On the distance chart naive accumulation leaves the full batch by the same amount in both precisions, " +
      "while corrected stays at each precision's rounding (f32 about 1e−5, f64 about 1e−14): the drift is the strategy's, not the arithmetic's.",
  });
  const lab = el("div");
  root.append(caption, lab);
  const labGet = (name) => (name === "precision" ? "both" : name === "scenario" ? get("scenario") ?? "fine-tuning" : get(name));
  const panel = new LabPanel(lab, { get: labGet, where: "attribute", syncUrl: false, autoplay: false });
  lab.classList.add("gl-compact");
  return panel;
}

// The calculator another module draws: imported only when asked for, so the
// other figures work where it is missing.
function affectedFigure(root, get) {
  const error = errorLine({ "data-testid": "figure-error" });
  const box = el("div", { "data-testid": "affected" });
  root.append(error, box);
  const figure = { ready: null, panel: null };
  figure.ready = import("./lab/affected.js")
    .then(({ AffectedPanel }) => {
      if (typeof AffectedPanel !== "function") throw new Error("www/lab/affected.js has no AffectedPanel export");
      figure.panel = new AffectedPanel(box, get);
    })
    .catch((e) => showMessage(error, `The "affected" calculator could not be loaded (www/lab/affected.js): ${errorText(e)}`));
  return figure;
}

// The figure `get("name")` names, drawn into `root`; an unknown name is an
// error line naming the attribute and the names there are.
export function makeFigure(root, get) {
  root.classList.add("gl-figure");
  root.append(el("link", { rel: "stylesheet", href: STYLES().href }));
  const name = (get("name") ?? "").trim().toLowerCase();
  switch (name) {
    case "loss-vs-g":
      return new SeedFiguresPanel(root, { only: "loss" });
    case "distance-vs-g":
      return new SeedFiguresPanel(root, { only: "distance" });
    case "token-weights":
      return new TokenWeightsFigure(root, get);
    case "precision":
      return precisionFigure(root, get);
    case "affected":
      return affectedFigure(root, get);
    default: {
      const error = errorLine({ "data-testid": "figure-error" });
      root.append(error);
      const given = get("name") === null ? "no name attribute" : `name="${String(get("name")).slice(0, 40)}"`;
      showMessage(error, `<gradlab-figure>: ${given} is not a figure; name= takes one of ${FIGURE_NAMES.join(", ")}.`);
      return null;
    }
  }
}

// The element, made with elements.js's `shadowPanel` (our style sheets in
// the element's shadow root, returning the panel's container). A changed
// name or lengths draws the figure afresh; a removed element stops any
// training or run of its figure, and builds afresh when put back.
export function figureElement(shadowPanel) {
  return class GradlabFigure extends HTMLElement {
    static get observedAttributes() {
      return ["name", "lengths"];
    }
    attributeChangedCallback(name, before, after) {
      if (this.panel === undefined || before === after) return;
      this.build();
    }
    connectedCallback() {
      if (this.panel === undefined || this.stopped) this.build();
      this.stopped = false;
    }
    disconnectedCallback() {
      this.stopped = true;
      this.release();
    }
    release() {
      this.panel?.cancel?.();
      this.panel?.stop?.();
    }
    build() {
      this.release();
      this.panel = makeFigure(shadowPanel(this), (n) => this.getAttribute(n));
    }
    /** The figure's panel (SeedFiguresPanel, LabPanel, …), null for an unknown name. */
    get figurePanel() {
      return this.panel;
    }
  };
}
