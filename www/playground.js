// The gradient-descent playground: contours of a 2-D loss surface (computed in
// Rust, traced by d3-contour) and five optimizers' trajectories, each step made
// by the project's Rust optimizer kernels. Click the surface to choose the start.
// A reader who asks for reduced motion gets each run drawn finished, not
// animated. The surface's data-* attributes (steps, start-loss, losses,
// diverged, names) hold the run's state for tests and for a page that wants
// to read the result; its aria-label says the same in words.
import { contours } from "../vendor/d3-contour.esm.js";
import { loadGradlab } from "./wasm.js";
import { decimal, PLAYGROUND_FIELDS, parseSettings, reflectToUrl } from "./settings.js";
import { button, columns, controlsForm, el, errorLine, errorText, formatLogSlider, formRow, fromLogSlider, hintOf, selectInput, sentences, showMessage, toLogSlider } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#111827", "#f59e0b", "#16a34a", "#9333ea", "#2563eb"];
const GRID = 120;
const MAX_STEPS = 600;
const reducedMotion = () => globalThis.matchMedia?.("(prefers-reduced-motion: reduce)").matches ?? false;

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

export class PlaygroundPanel {
  constructor(root, { get, where, syncUrl, autoplay }) {
    this.root = root;
    this.syncUrl = syncUrl;
    this.autoplay = autoplay;
    const { values, problems } = parseSettings(PLAYGROUND_FIELDS, get, where);
    this.values = values;
    this.playing = false;
    this.settingsProblems = problems.join(" ");
    this.start = this.startFrom(get, where);
    this.build();
    this.showError(this.settingsProblems);
    this.init();
  }

  build() {
    this.root.classList.add("gl-playground");
    this.root.setAttribute("data-testid", "playground");
    const controls = controlsForm("Playground controls");
    const row = (label, input, name) => {
      input.name = name;
      formRow(controls, label, input);
      input.addEventListener("change", () => this.changed());
      input.addEventListener("input", () => this.describe());
      return input;
    };
    this.surface = row("Surface", selectInput(PLAYGROUND_FIELDS.surface.choices, this.values.surface, { "data-testid": "surface-select" }), "surface");
    const range = (label, name, min, max, step, testid) => {
      const r = el("input", { type: "range", min, max, step, "data-testid": testid });
      r.value = name === "pglr" ? toLogSlider(this.values[name]) : String(this.values[name]);
      // where the slider landed (its step rounds the value): changed() keeps
      // the exact value, the default's or the URL's, until the slider moves
      r.filledAt = r.value;
      return row(label, r, name);
    };
    this.lr = range("Learning rate", "pglr", "-4", "0.3", "0.05", "pg-lr");
    this.momentum = range("Momentum", "pgmomentum", "0", "0.99", "0.01", "pg-momentum");
    this.beta1 = range("Adam β1", "pgbeta1", "0", "0.99", "0.01", "pg-beta1");
    this.beta2 = range("Adam β2 / RMSProp α", "pgbeta2", "0.5", "0.9999", "0.0001", "pg-beta2");
    this.noise = range("SGD gradient noise", "pgnoise", "0", "3", "0.05", "pg-noise");
    this.playBtn = button("Play", "pg-play");
    this.playBtn.addEventListener("click", () => (this.playing ? this.stop() : this.play()));
    this.restartBtn = button("Restart");
    this.restartBtn.addEventListener("click", () => this.restart(true));
    const buttons = el("div", { class: "gl-buttons" }, this.playBtn, this.restartBtn);

    this.error = errorLine();
    this.plot = svg("svg", { viewBox: "0 0 400 400", "data-testid": "surface", role: "img", "aria-label": "Loss surface with optimizer paths; click to choose a start point", tabindex: "0" });
    this.plot.addEventListener("click", (e) => this.clicked(e));
    this.plot.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        e.preventDefault();
        this.playing ? this.stop() : this.play();
      }
    });
    this.legend = el("ul", { class: "gl-legend", "data-testid": "pg-legend" });
    columns(this.root, [controls, buttons], [this.error, this.plot, this.legend]);
    this.describe();
  }

  describe() {
    hintOf(this.lr).textContent = formatLogSlider(this.lr);
    for (const r of [this.momentum, this.beta1, this.beta2, this.noise]) hintOf(r).textContent = r.value;
  }

  showError(message) {
    showMessage(this.error, message);
  }

  async init() {
    try {
      this.gl = await loadGradlab();
    } catch (e) {
      // the module could not be loaded: said naming its URL (wasm.js)
      return this.showError(errorText(e));
    }
    this.restart(false);
  }

  changed() {
    this.settingsProblems = "";
    this.values = {
      surface: this.surface.value,
      pglr: this.lr.value === this.lr.filledAt ? this.values.pglr : fromLogSlider(this.lr),
      pgmomentum: Number(this.momentum.value),
      pgbeta1: Number(this.beta1.value),
      pgbeta2: Number(this.beta2.value),
      pgnoise: Number(this.noise.value),
    };
    if (this.syncUrl) reflectToUrl(PLAYGROUND_FIELDS, this.values);
    if (this.surfaceDrawn !== this.values.surface) this.start = null;
    this.restart(true);
  }

  // The start a link or the attributes give (start-x and start-y, together,
  // in decimal notation), or null for the surface's own; a bad one is said
  // in words (added to settingsProblems) and the surface's start is used.
  startFrom(get, where) {
    const raw = [get("start-x"), get("start-y")];
    if (raw.every((r) => r === null || r === undefined)) return null;
    const say = (why) => {
      this.settingsProblems = sentences(this.settingsProblems, `${where} ${why}; using the surface's own start.`);
      return null;
    };
    if (raw.some((r) => r === null || r === undefined)) return say("start-x and start-y go together, and only one was given");
    const xy = raw.map(decimal);
    const bad = xy.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) return say(`${["start-x", "start-y"][bad]}="${String(raw[bad]).slice(0, 40)}" is not a number`);
    return xy;
  }

  restart(autoplay) {
    if (!this.gl) return;
    const s = this.values.surface;
    this.bounds = this.gl.WebPlayground.bounds(s);
    // a start off the surface would be drawn nowhere
    const [x0, x1, y0, y1] = this.bounds;
    if (this.start && !(this.start[0] >= x0 && this.start[0] <= x1 && this.start[1] >= y0 && this.start[1] <= y1)) {
      const at = this.start.map((v) => String(v)).join(", ");
      this.settingsProblems = sentences(this.settingsProblems, `The start (${at}) is off the ${s} surface (x ${x0} to ${x1}, y ${y0} to ${y1}); using its own start.`);
      this.start = null;
    }
    if (this.surfaceDrawn !== s) this.drawSurface(s);
    const start = this.start ?? Array.from(this.gl.WebPlayground.defaultStart(s));
    this.pg?.free();
    try {
      this.pg = new this.gl.WebPlayground(s, { lr: this.values.pglr, momentum: this.values.pgmomentum, beta1: this.values.pgbeta1, beta2: this.values.pgbeta2, noise: this.values.pgnoise }, start[0], start[1], 1);
      this.showError(this.settingsProblems);
    } catch (e) {
      this.pg = null;
      return this.showError(sentences(this.settingsProblems, errorText(e)));
    }
    this.steps = 0;
    this.startLoss = this.pg.losses()[0];
    this.drawPaths();
    if (autoplay || this.autoplay) this.play();
  }

  toPx([x, y]) {
    const [x0, x1, y0, y1] = this.bounds;
    return [((x - x0) / (x1 - x0)) * 400, 400 - ((y - y0) / (y1 - y0)) * 400];
  }

  drawSurface(s) {
    const values = Array.from(this.gl.WebPlayground.grid(s, GRID, GRID));
    // log scale so the valley floor gets as many lines as the walls
    const logv = values.map((v) => Math.log1p(Math.max(0, v)));
    const lo = Math.min(...logv), hi = Math.max(...logv);
    const levels = Array.from({ length: 18 }, (_, i) => lo + ((hi - lo) * (i + 0.5)) / 18);
    const rings = contours().size([GRID, GRID]).thresholds(levels)(logv);
    this.surfaceLayer?.remove();
    this.surfaceLayer = svg("g", { class: "gl-contours" });
    const scale = 400 / (GRID - 1);
    rings.forEach((ring, k) => {
      let d = "";
      for (const polygon of ring.coordinates) {
        for (const line of polygon) {
          d += line.map(([gx, gy], i) => `${i ? "L" : "M"}${(gx * scale).toFixed(1)},${(400 - gy * scale).toFixed(1)}`).join("") + "Z";
        }
      }
      const shade = Math.round(235 - (k / levels.length) * 120);
      this.surfaceLayer.append(svg("path", { d, fill: `rgb(${shade},${shade + 8},255)`, "fill-opacity": "0.35", stroke: "currentColor", "stroke-opacity": "0.35", "stroke-width": "0.6" }));
    });
    this.plot.replaceChildren(this.surfaceLayer);
    this.pathLayer = svg("g", { class: "gl-paths" });
    this.plot.append(this.pathLayer);
    this.surfaceDrawn = s;
  }

  drawPaths() {
    if (!this.pg) return;
    const names = this.gl.WebPlayground.names();
    const diverged = this.pg.diverged();
    const losses = this.pg.losses();
    this.pathLayer.replaceChildren();
    this.legend.replaceChildren();
    names.forEach((name, i) => {
      const flat = this.pg.path(i);
      const pts = [];
      for (let k = 0; k < flat.length; k += 2) pts.push(this.toPx([flat[k], flat[k + 1]]).map((v) => Math.max(-50, Math.min(450, v)).toFixed(1)).join(","));
      this.pathLayer.append(svg("polyline", { points: pts.join(" "), fill: "none", stroke: COLORS[i], "stroke-width": "1.6", "data-optimizer": name }));
      const last = pts[pts.length - 1].split(",");
      this.pathLayer.append(svg("circle", { cx: last[0], cy: last[1], r: "4", fill: COLORS[i] }));
      const sw = el("span", { class: "gl-swatch" });
      sw.style.background = COLORS[i];
      // GD's near-black swatch stays visible on a dark page
      sw.style.boxShadow = "0 0 0 1px currentColor";
      this.legend.append(el("li", {}, sw, `${name}: ${diverged[i] ? "diverged — lower the learning rate" : `loss ${losses[i].toPrecision(3)}`}`));
    });
    const plot = this.plot;
    plot.dataset.steps = String(this.steps);
    plot.dataset.startLoss = String(this.startLoss);
    plot.dataset.names = JSON.stringify(names);
    plot.dataset.losses = JSON.stringify(Array.from(losses));
    plot.dataset.diverged = JSON.stringify(Array.from(diverged, Boolean));
    const where = names.map((name, i) => `${name} ${diverged[i] ? "diverged" : `at loss ${losses[i].toPrecision(3)}`}`).join(", ");
    plot.setAttribute("aria-label", `${this.values.surface} surface, learning rate ${this.values.pglr}, started at loss ${this.startLoss.toPrecision(3)}; after ${this.steps} steps: ${where}. Click to choose a start point.`);
  }

  play() {
    if (!this.pg || this.playing) return;
    if (reducedMotion()) {
      // the finished run at once, no animation
      const left = MAX_STEPS - this.steps;
      if (left > 0) this.pg.step(left);
      this.steps = Math.max(this.steps, MAX_STEPS);
      return this.drawPaths();
    }
    this.playing = true;
    this.playBtn.textContent = "Pause";
    const tick = () => {
      if (!this.playing) return;
      this.pg.step(2);
      this.steps += 2;
      this.drawPaths();
      if (this.steps >= MAX_STEPS) return this.stop();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  stop() {
    this.playing = false;
    this.playBtn.textContent = "Play";
  }

  clicked(event) {
    const rect = this.plot.getBoundingClientRect();
    const [x0, x1, y0, y1] = this.bounds;
    const fx = (event.clientX - rect.left) / rect.width;
    const fy = (event.clientY - rect.top) / rect.height;
    this.start = [x0 + fx * (x1 - x0), y1 - fy * (y1 - y0)];
    this.stop();
    this.restart(true);
  }
}
