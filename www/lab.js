// The accumulation lab panel: controls, live charts (uPlot), samples, status.
// It only draws and handles events: every number comes from the wasm lab.
import uPlot from "../vendor/uPlot.esm.js";
import { backendLabel, loadGradlab, Serial } from "./wasm.js";
import { LAB_FIELDS, MAX_TEXT_BYTES, labConfig, parseSettings, reflectToUrl } from "./settings.js";

// generated text per model and refresh: tokens, and the time one model's sample may take
const SAMPLE_MIN = 12;
const SAMPLE_MAX = 60;
const SAMPLE_MS = 700;

// whole steps (and whole G) on the x axes, never 2.5
const STEP_TICKS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
// log-scale tick labels as 1e-3, 0.01 … 100, not rounded to "0"
const powersOfTen = (u, ticks) => ticks.map((v) => (v == null ? "" : v >= 0.01 && v < 1e4 ? String(+v.toPrecision(2)) : v.toExponential(0)));

const COLORS = { full: "#6b7280", naive: "#dc2626", corrected: "#2563eb" };
const SWEEP_STEPS_DEFAULT = 40;
// A loss far above a uniform guess over 256 bytes (ln 256 ≈ 5.5) means the run has blown up.
const DIVERGED_LOSS = 2 * Math.log(256);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

function download(name, blob) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r()));

function runLabel(spec) {
  return spec.strategy === "full" ? "full batch" : `${spec.strategy} (b=${spec.micro_batch})`;
}

export class LabPanel {
  constructor(root, { get, where, syncUrl }) {
    this.root = root;
    this.syncUrl = syncUrl;
    const { values, problems } = parseSettings(LAB_FIELDS, get, where);
    this.values = values;
    this.serial = new Serial();
    this.running = false;
    this.diverged = new Set();
    // problems with the settings we were given stay visible until a control changes
    this.settingsProblems = problems.join(" ");
    this.build();
    this.reset();
  }

  // ---- layout -------------------------------------------------------------
  build() {
    const v = this.values;
    this.root.classList.add("gl-lab");
    const controls = el("form", { class: "gl-controls", "aria-label": "Lab controls" });
    controls.addEventListener("submit", (e) => e.preventDefault());
    const row = (label, input, help) => {
      const id = `gl-${Math.random().toString(36).slice(2)}`;
      input.id = id;
      const wrap = el("div", { class: "gl-row" }, el("label", { for: id, text: label }), input);
      wrap.append(el("small", { text: help ?? "" }));
      controls.append(wrap);
      return input;
    };
    const select = (name, choices, testid) => {
      const s = el("select", { "data-testid": testid ?? name, name });
      for (const c of choices) s.append(el("option", { value: String(c), text: String(c) }));
      s.value = String(v[name]);
      return s;
    };
    // learning rate on a log slider: position = log10(lr)
    this.lr = row("Learning rate", el("input", { type: "range", min: "-5", max: "0", step: "0.05", "data-testid": "lr", name: "lr" }), "");
    this.lr.value = String(Math.log10(v.lr));
    this.lrText = this.lr.parentElement.querySelector("small");
    this.batch = row("Effective batch B", select("batch", LAB_FIELDS.batch.choices, "batch"), "sequences per optimizer step");
    this.micro = row("Micro-batch b", select("micro", LAB_FIELDS.micro.choices, "micro-batch"), "");
    this.microText = this.micro.parentElement.querySelector("small");
    this.spread = row("Length spread", el("input", { type: "range", min: "0", max: "1", step: "0.05", "data-testid": "spread", name: "spread" }), "");
    this.spread.value = String(v.spread);
    this.spreadText = this.spread.parentElement.querySelector("small");
    this.opt = row("Optimizer", select("opt", LAB_FIELDS.opt.choices, "optimizer"));
    this.momentum = row("Momentum", el("input", { type: "number", min: "0", max: "0.999", step: "0.01", "data-testid": "momentum" }));
    this.beta1 = row("β1", el("input", { type: "number", min: "0", max: "0.999", step: "0.01", "data-testid": "beta1" }));
    this.beta2 = row("β2", el("input", { type: "number", min: "0", max: "0.9999", step: "0.001", "data-testid": "beta2" }));
    this.wd = row("Weight decay", el("input", { type: "number", min: "0", max: "1", step: "0.01", "data-testid": "weight-decay" }));
    this.clip = row("Gradient clipping", el("input", { type: "number", min: "0", max: "100", step: "0.1", "data-testid": "clip" }), "max ‖g‖; 0 turns it off");
    for (const k of ["momentum", "beta1", "beta2", "wd", "clip"]) this[k].value = String(v[k]);
    this.sched = row("LR schedule", select("sched", LAB_FIELDS.sched.choices, "schedule"));
    this.preset = row("Model", select("preset", LAB_FIELDS.preset.choices, "preset"), "nano: 2 layers, 64 channels");
    this.compute = row("Compute", select("compute", LAB_FIELDS.compute.choices, "compute"), "WebGPU where the browser has it, else the CPU");
    this.computeText = this.compute.parentElement.querySelector("small");
    this.ctx = row("Context T", el("input", { type: "number", min: "8", max: "256", step: "8", "data-testid": "context" }));
    this.ctx.value = String(v.ctx);
    this.seed = row("Seed", el("input", { type: "number", min: "0", step: "1", "data-testid": "seed" }));
    this.seed.value = String(v.seed);
    this.textArea = row("Your own text (optional)", el("textarea", { rows: "3", placeholder: "Paste at least a few paragraphs to train on them instead of the bundled King James text.", "data-testid": "user-text" }));

    const buttons = el("div", { class: "gl-buttons" });
    this.toggle = el("button", { type: "button", "data-testid": "train-toggle", text: "Start" });
    this.stepBtn = el("button", { type: "button", "data-testid": "step-once", text: "Step once" });
    this.resetBtn = el("button", { type: "button", "data-testid": "reset", text: "Reset" });
    this.sweepBtn = el("button", { type: "button", "data-testid": "sweep", text: "Sweep G" });
    buttons.append(this.toggle, this.stepBtn, this.resetBtn, this.sweepBtn);

    this.notice = el("p", { class: "gl-notice", "data-testid": "notice", hidden: "" });
    this.error = el("p", { class: "gl-error", role: "alert", "data-testid": "error", hidden: "" });
    this.status = el("p", { class: "gl-status", "data-testid": "status", "aria-live": "polite", text: "Loading…" });
    this.stepCount = el("span", { "data-testid": "step-count", text: "0" });
    const stepLine = el("p", { class: "gl-step" }, "Step ", this.stepCount);

    const explain = el("div", { class: "gl-explain" });
    explain.innerHTML = `
      <p>Every step uses the same <var>B</var> sequences, cut into <var>G</var> = <var>B</var>/<var>b</var> micro-batches.
      Token <var>t</var> has loss ℓ<sub>t</sub>; micro-batch <var>g</var> has <var>N</var><sub>g</sub> real (unpadded) tokens, <var>N</var> = Σ<var>N</var><sub>g</sub>.</p>
      <ul>
        <li><b style="color:${COLORS.full}">Full batch</b>: loss Σ<sub>t</sub> ℓ<sub>t</sub> / <var>N</var>.</li>
        <li><b style="color:${COLORS.naive}">Naive accumulation</b>: loss (1/<var>G</var>) Σ<sub>g</sub> (Σ<sub>t∈g</sub> ℓ<sub>t</sub> / <var>N</var><sub>g</sub>): every micro-batch counts the same, so tokens of short micro-batches count more.</li>
        <li><b style="color:${COLORS.corrected}">Corrected accumulation</b>: every token's loss divided by the token count <var>N</var> of the whole accumulated batch — the full-batch gradient, up to float rounding.</li>
      </ul>
      <p>With spread 0 every sequence has the same length, so all <var>N</var><sub>g</sub> are equal and naive = corrected. Raise the spread and watch them part.</p>`;

    this.trueToggle = el("input", { type: "checkbox", "data-testid": "true-loss" });
    const trueLabel = el("label", { class: "gl-check" }, this.trueToggle, " show the true token-mean loss instead of the logged loss");
    this.chartLoss = el("div", { class: "gl-chart", "data-testid": "chart-loss", role: "img", "aria-label": "Training loss of each run" });
    this.chartDist = el("div", { class: "gl-chart", "data-testid": "chart-distance", role: "img", "aria-label": "Weight distance to the full-batch run, log scale" });
    this.chartNorm = el("div", { class: "gl-chart", "data-testid": "chart-gradnorm", role: "img", "aria-label": "Gradient norm of each run" });
    this.chartSweep = el("div", { class: "gl-chart", "data-testid": "chart-sweep", role: "img", "aria-label": "Sweep over G: final loss gap and weight distance" });
    this.sweepNote = el("p", { class: "gl-small", text: `“Sweep G” runs the reference experiment: effective batch 16, micro-batch 1, 2, 4, 8 and 16 (G = 16 … 1), naive and corrected, ${this.sweepSteps()} steps from the same weights on the same data.` });

    this.samples = el("div", { class: "gl-samples", "data-testid": "samples" });
    this.validation = el("p", { class: "gl-small", "data-testid": "validation", text: "Validation loss on held-out text: measured every 50 steps." });
    const exports = el("div", { class: "gl-buttons" });
    this.csvBtn = el("button", { type: "button", "data-testid": "export-csv", text: "Curves as CSV" });
    this.pngBtn = el("button", { type: "button", "data-testid": "export-png", text: "Charts as PNG" });
    this.weightsRun = el("select", { "aria-label": "Run whose weights to download", "data-testid": "weights-run" });
    this.weightsBtn = el("button", { type: "button", "data-testid": "download-weights", text: "Download weights (.safetensors)" });
    exports.append(this.csvBtn, this.pngBtn, this.weightsRun, this.weightsBtn);

    const side = el("div", { class: "gl-side" }, controls, buttons, explain);
    const main = el(
      "div",
      { class: "gl-main" },
      this.notice,
      this.error,
      this.status,
      stepLine,
      el("h3", { text: "Loss" }),
      trueLabel,
      this.chartLoss,
      el("h3", { text: "‖w − w_full‖: distance to the full-batch weights (log scale)" }),
      this.chartDist,
      el("h3", { text: "Gradient norm" }),
      this.chartNorm,
      el("h3", { text: "Samples (refreshed as the models learn)" }),
      this.samples,
      this.validation,
      el("h3", { text: "Sweep over G" }),
      this.sweepNote,
      this.chartSweep,
      exports,
    );
    this.root.append(side, main);

    const onChange = () => this.settingsChanged();
    for (const input of [this.batch, this.micro, this.opt, this.sched, this.preset, this.compute, this.ctx, this.seed, this.momentum, this.beta1, this.beta2, this.wd, this.clip]) {
      input.addEventListener("change", onChange);
    }
    this.lr.addEventListener("input", () => this.describe());
    this.lr.addEventListener("change", onChange);
    this.spread.addEventListener("input", () => this.describe());
    this.spread.addEventListener("change", onChange);
    this.textArea.addEventListener("change", onChange);
    this.toggle.addEventListener("click", () => (this.running || this.startWhenReady ? this.pause() : this.start()));
    this.stepBtn.addEventListener("click", () => this.stepOnce());
    this.resetBtn.addEventListener("click", () => this.reset());
    this.sweepBtn.addEventListener("click", () => this.sweep());
    this.trueToggle.addEventListener("change", () => this.redraw());
    this.csvBtn.addEventListener("click", () => this.exportCsv());
    this.pngBtn.addEventListener("click", () => this.exportPng());
    this.weightsBtn.addEventListener("click", () => this.downloadWeights());
    this.describe();
  }

  describe() {
    this.lrText.textContent = `${Number(10 ** Number(this.lr.value)).toPrecision(2)}`;
    const g = Number(this.batch.value) / Number(this.micro.value);
    this.microText.textContent = Number.isInteger(g) ? `G = ${g} micro-batches per step` : "must divide the batch";
    const s = Number(this.spread.value);
    this.spreadText.textContent = s === 0 ? "0: all sequences full length, no padding" : `${s.toFixed(2)}: lengths vary, short ones padded`;
  }

  readControls() {
    const num = (input, name) => {
      const f = LAB_FIELDS[name];
      const x = Number(input.value);
      if (!Number.isFinite(x) || x < f.min || x > f.max) throw new Error(`${f.label} must be between ${f.min} and ${f.max}, got "${String(input.value).slice(0, 20)}"`);
      return x;
    };
    return {
      lr: 10 ** Number(this.lr.value),
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
      compute: this.compute.value,
      ctx: Math.round(num(this.ctx, "ctx")),
      seed: Math.round(num(this.seed, "seed")),
    };
  }

  settingsChanged() {
    this.settingsProblems = "";
    this.describe();
    try {
      this.values = { ...this.values, ...this.readControls() };
    } catch (e) {
      return this.showError(e.message);
    }
    if (this.syncUrl) reflectToUrl(LAB_FIELDS, this.values);
    this.reset();
  }

  showError(message) {
    this.error.textContent = message;
    this.error.hidden = !message;
  }

  // ---- the run --------------------------------------------------------------
  async reset() {
    const wasRunning = this.running || this.startWhenReady;
    this.running = false;
    this.startWhenReady = false;
    // until the new lab exists, Start only records the wish
    this.building = true;
    this.showError(this.settingsProblems);
    this.diverged.clear();
    this.data = { step: [], runs: [] };
    // first samples after a few steps, then every 25; short until the speed is known
    this.lastSamples = -20;
    this.sampleTokens = SAMPLE_MIN;
    const gl = await loadGradlab();
    const raw = this.textArea.value;
    const text = raw.trim();
    if (raw.length > 0 && !text) return this.showError("Your text is empty (only spaces); clear the box to use the bundled text.");
    const bytes = new TextEncoder().encode(text).length;
    if (bytes > MAX_TEXT_BYTES) {
      this.status.textContent = "Not running: the pasted text is too large.";
      return this.showError(`Your text is ${(bytes / 1048576).toFixed(1)} MB; the page accepts up to ${MAX_TEXT_BYTES / 1048576} MB. Nothing was lost: it is still in the box.`);
    }
    const config = labConfig(this.values, text ? { text } : {});
    const problem = gl.validateLabConfig(config);
    if (problem) {
      this.building = false;
      this.startWhenReady = false;
      this.toggle.textContent = "Start";
      this.status.textContent = "Not running: fix the setting above.";
      return this.showError([this.settingsProblems, problem].filter(Boolean).join(" "));
    }
    const token = (this.resetToken = {});
    await this.serial.run(async () => {
      this.lab?.free();
      this.lab = null;
      this.status.textContent = "Building the lab…";
      try {
        this.lab = await gl.WebLab.create(config, "gpu" in navigator && this.values.compute !== "cpu");
      } catch (e) {
        this.showError(String(e.message ?? e));
        this.status.textContent = "Not running.";
      }
    });
    if (this.lab) this.backendName = await backendLabel(this.lab);
    if (token !== this.resetToken) return;
    this.building = false;
    if (!this.lab) {
      this.startWhenReady = false;
      this.toggle.textContent = "Start";
      return;
    }
    this.specs = this.lab.runs();
    this.data.runs = this.specs.map(() => ({ logged: [], true: [], dist: [], norm: [] }));
    const problemGpu = this.values.compute === "cpu" ? null : this.lab.gpuProblem();
    this.notice.hidden = !problemGpu;
    // a software WebGPU adapter (no GPU behind it) runs slower than gradlab's own CPU path
    const software = /\(BrowserWebGpu, Cpu\)/.test(this.backendName);
    this.computeText.textContent = this.values.compute === "cpu"
      ? "the f64 CPU reference, nano preset"
      : software ? "this WebGPU adapter is a software renderer; the CPU choice is usually faster here" : "WebGPU where the browser has it, else the CPU";
    if (problemGpu) this.notice.textContent = `No WebGPU here (${problemGpu}). The lab runs on the CPU reference instead, with the nano preset — slower, but the same maths.`;
    this.weightsRun.replaceChildren(...this.specs.map((s, i) => el("option", { value: String(i), text: runLabel(s) })));
    this.makeCharts();
    this.stepCount.textContent = "0";
    this.status.textContent = `${this.backendName} · ready`;
    this.renderSamples(this.specs.map(() => ""));
    if (wasRunning || this.startWhenReady) this.start();
  }

  makeCharts() {
    for (const c of [this.lossPlot, this.distPlot, this.normPlot]) c?.destroy();
    const width = Math.max(280, Math.min(760, this.chartLoss.clientWidth || 600));
    const series = (filter) => [
      {},
      ...this.specs.filter(filter).map((s) => ({
        label: runLabel(s),
        stroke: COLORS[s.strategy],
        width: s.strategy === "corrected" ? 2 : 1.5,
        dash: s.strategy === "corrected" ? [6, 4] : undefined,
        spanGaps: true,
      })),
    ];
    const opts = (title, filter, { yAxis = {}, ...extra } = {}) => ({
      width,
      height: 220,
      title,
      series: series(filter),
      axes: [{ label: "step", incrs: STEP_TICKS }, yAxis],
      legend: { live: false },
      ...extra,
      scales: { x: { time: false }, ...(extra.scales ?? {}) },
    });
    const all = () => true;
    this.lossPlot = new uPlot(opts("loss (nats per token)", all), [[]], this.chartLoss);
    this.distPlot = new uPlot(opts("weight distance", (s) => s.strategy !== "full", { scales: { y: { distr: 3 } }, yAxis: { values: powersOfTen } }), [[]], this.chartDist);
    this.normPlot = new uPlot(opts("‖g‖ before clipping", all), [[]], this.chartNorm);
  }

  // Metrics of `lab`; dropped if a reset has replaced it (or is replacing it)
  // since the step that produced them was queued.
  ingest(metrics, lab) {
    if (lab !== this.lab || this.building) return;
    for (const m of metrics) {
      if (m.run === 0) {
        this.data.step.push(m.step);
        // real tokens of run 0 since the status line last counted them
        this.tokensSinceStatus = (this.tokensSinceStatus ?? 0) + (m.tokens ?? 0);
      }
      const r = this.data.runs[m.run];
      if (!r) continue;
      r.logged.push(Number.isFinite(m.logged_loss) ? m.logged_loss : null);
      r.true.push(Number.isFinite(m.true_loss) ? m.true_loss : null);
      r.dist.push(m.weight_distance > 0 && Number.isFinite(m.weight_distance) ? m.weight_distance : null);
      r.norm.push(Number.isFinite(m.grad_norm) ? m.grad_norm : null);
      const blewUp = !Number.isFinite(m.true_loss) || m.true_loss > DIVERGED_LOSS;
      if (blewUp && !this.diverged.has(m.run)) {
        this.diverged.add(m.run);
        const names = [...this.diverged].map((i) => runLabel(this.specs[i])).join(", ");
        const what = Number.isFinite(m.true_loss) ? `loss ${m.true_loss.toFixed(1)}, far above a uniform guess` : "its loss is not a number";
        this.showError(`Diverged: ${names} (at step ${m.step}, ${what}). The learning rate is too high for it — lower it and press Reset. Runs that have not diverged keep going.`);
      }
    }
    this.dirty = true;
  }

  redraw() {
    if (!this.lossPlot) return;
    const key = this.trueToggle.checked ? "true" : "logged";
    const n = this.data.step.length;
    const cut = (a) => a.slice(0, n);
    this.lossPlot.setData([this.data.step, ...this.data.runs.map((r) => cut(r[key]))]);
    this.distPlot.setData([this.data.step, ...this.data.runs.slice(1).map((r) => cut(r.dist))]);
    this.normPlot.setData([this.data.step, ...this.data.runs.map((r) => cut(r.norm))]);
    this.dirty = false;
  }

  start() {
    if (this.running) return;
    if (!this.lab || this.building) {
      // pressed while the lab is being built: start as soon as it is ready
      this.startWhenReady = true;
      this.toggle.textContent = "Pause";
      return;
    }
    this.startWhenReady = false;
    this.running = true;
    this.toggle.textContent = "Pause";
    this.loop();
  }

  pause() {
    this.running = false;
    this.startWhenReady = false;
    this.toggle.textContent = "Start";
    const lab = this.lab;
    this.serial.run(async () => lab && this.ingest(await lab.flush(), lab)).then(() => {
      this.redraw();
      this.refreshSamples();
    });
  }

  async stepOnce() {
    if (this.running || !this.lab || this.building) return;
    const lab = this.lab;
    await this.serial.run(async () => {
      if (lab !== this.lab) return;
      this.ingest(await lab.step(1), lab);
      this.ingest(await lab.flush(), lab);
      this.stepCount.textContent = String(lab.steps());
    });
    this.redraw();
    this.refreshSamples();
  }

  async loop() {
    const lab = this.lab;
    let t0 = performance.now();
    let steps0 = lab.steps();
    this.tokensSinceStatus = 0;
    let lastDraw = 0;
    while (this.running && this.lab === lab) {
      try {
        await this.serial.run(async () => {
          if (this.running && this.lab === lab) this.ingest(await lab.step(1), lab);
        });
      } catch (e) {
        this.showError(`Training stopped: ${e.message ?? e}`);
        this.pause();
        break;
      }
      const now = performance.now();
      this.stepCount.textContent = String(lab.steps());
      if (now - lastDraw > 150) {
        this.redraw();
        lastDraw = now;
        const dt = (now - t0) / 1000;
        if (dt > 1) {
          const sps = (lab.steps() - steps0) / dt;
          const tps = Math.round((this.tokensSinceStatus ?? 0) / dt);
          this.tokensSinceStatus = 0;
          this.status.textContent = `${this.backendName} · ${sps.toFixed(2)} steps/s · ${tps} tokens/s per run (real, unpadded tokens)`;
          t0 = now;
          steps0 = lab.steps();
        }
      }
      // first samples early, then every 25 steps
      if (lab.steps() - this.lastSamples >= 25) this.refreshSamples();
      if (lab.steps() % 50 === 0) this.refreshValidation(lab);
      await nextFrame();
    }
  }

  async refreshSamples() {
    if (!this.lab || this.sampling) return;
    this.sampling = true;
    this.lastSamples = this.lab.steps();
    try {
      const texts = [];
      for (let i = 0; i < this.specs.length; i++) {
        const lab = this.lab;
        texts.push(
          await this.serial.run(async () => {
            if (!lab || lab !== this.lab) return "";
            // as many tokens as fit in about SAMPLE_MS, so a big model on a slow
            // adapter does not hold training up for long
            const n = this.sampleTokens;
            const t0 = performance.now();
            const text = await lab.sample(i, "And ", n, 0.8, 7);
            const msPerToken = (performance.now() - t0) / n;
            this.sampleTokens = Math.max(SAMPLE_MIN, Math.min(SAMPLE_MAX, Math.round(SAMPLE_MS / msPerToken)));
            return text;
          }),
        );
      }
      this.renderSamples(texts);
    } catch (e) {
      this.showError(`Sampling failed: ${e.message ?? e}`);
    } finally {
      this.sampling = false;
    }
  }

  async refreshValidation(lab) {
    try {
      // the lab may have been replaced (Reset) while this call waited its turn
      const losses = await this.serial.run(() => (lab === this.lab ? lab.validationLoss() : null));
      if (!losses) return;
      const step = lab.steps();
      this.validation.textContent = `Validation loss at step ${step}: ` + this.specs.map((s, i) => `${runLabel(s)} ${losses[i].toFixed(4)}`).join(" · ");
    } catch (e) {
      this.showError(`Validation failed: ${e.message ?? e}`);
    }
  }

  renderSamples(texts) {
    this.samples.replaceChildren(
      ...this.specs.map((s, i) =>
        el("figure", {}, el("figcaption", { text: runLabel(s) }), el("pre", { "data-testid": `sample-${s.strategy}`, text: texts[i] ? `And ${texts[i]}` : "…" })),
      ),
    );
  }

  // ---- the reference experiment --------------------------------------------------
  sweepSteps() {
    return this.values.sweepsteps ?? SWEEP_STEPS_DEFAULT;
  }

  async sweep() {
    const gl = await loadGradlab();
    this.pause();
    this.sweepBtn.disabled = true;
    const config = labConfig({ ...this.values, batch: 16 }, { sweep: true });
    let lab;
    try {
      lab = await gl.WebLab.create(config, "gpu" in navigator && this.values.compute !== "cpu");
      const specs = lab.runs();
      const last = specs.map(() => null);
      for (let i = 0; i < this.sweepSteps(); i++) {
        const got = [...(await lab.step(1)), ...(i === this.sweepSteps() - 1 ? await lab.flush() : [])];
        for (const m of got) last[m.run] = m;
        this.status.textContent = `Sweep over G: step ${i + 1} of ${this.sweepSteps()}…`;
        await nextFrame();
      }
      const gs = [16, 8, 4, 2, 1];
      const pick = (strategy, G) => last.find((m, i) => specs[i].strategy === strategy && 16 / specs[i].micro_batch === G) ?? last[0];
      const gap = (strategy) => gs.map((G) => pick(strategy, G).true_loss - last[0].true_loss);
      const dist = (strategy) => gs.map((G) => (G === 1 ? null : pick(strategy, G).weight_distance || null));
      this.sweepPlot?.destroy();
      const width = Math.max(280, Math.min(760, this.chartSweep.clientWidth || 600));
      this.sweepPlot = new uPlot(
        {
          width,
          height: 240,
          title: `after ${this.sweepSteps()} steps: true-loss gap to full batch (left) and ‖w − w_full‖ (right, log)`,
          scales: { x: { time: false, distr: 3, log: 2 }, d: { distr: 3 } },
          legend: { live: false },
          axes: [{ label: "G (micro-batches per step)", incrs: STEP_TICKS }, { label: "loss gap" }, { scale: "d", side: 1, label: "distance", values: powersOfTen }],
          series: [
            {},
            { label: "naive gap", stroke: COLORS.naive, points: { show: true } },
            { label: "corrected gap", stroke: COLORS.corrected, dash: [6, 4], points: { show: true } },
            { label: "naive distance", stroke: COLORS.naive, scale: "d", width: 1, points: { show: true }, dash: [2, 2] },
            { label: "corrected distance", stroke: COLORS.corrected, scale: "d", width: 1, points: { show: true }, dash: [2, 2] },
          ],
        },
        [gs, gap("naive"), gap("corrected"), dist("naive"), dist("corrected")],
        this.chartSweep,
      );
      this.status.textContent = `${this.backendName} · sweep done`;
    } catch (e) {
      this.showError(`Sweep failed: ${e.message ?? e}`);
    } finally {
      lab?.free();
      this.sweepBtn.disabled = false;
    }
  }

  // ---- exports --------------------------------------------------------------
  curves() {
    return { step: [...this.data.step], runs: this.specs.map((s, i) => ({ ...s, ...this.data.runs[i] })) };
  }

  exportCsv() {
    const lines = ["step,run,strategy,micro_batch,logged_loss,true_loss,weight_distance,grad_norm"];
    this.data.step.forEach((step, k) => {
      this.specs.forEach((s, i) => {
        const r = this.data.runs[i];
        lines.push([step, i, s.strategy, s.micro_batch, r.logged[k], r.true[k], r.dist[k] ?? 0, r.norm[k]].join(","));
      });
    });
    download("gradlab-curves.csv", new Blob([lines.join("\n") + "\n"], { type: "text/csv" }));
  }

  exportPng() {
    for (const [name, plot] of [["loss", this.lossPlot], ["distance", this.distPlot], ["gradnorm", this.normPlot], ["sweep", this.sweepPlot]]) {
      if (!plot) continue;
      plot.ctx.canvas.toBlob((blob) => blob && download(`gradlab-${name}.png`, blob));
    }
  }

  async downloadWeights() {
    if (!this.lab) return;
    const run = Number(this.weightsRun.value) || 0;
    try {
      const bytes = await this.serial.run(() => this.lab.weightsSafetensors(run));
      download(`gradlab-${this.specs[run].strategy}-b${this.specs[run].micro_batch}.safetensors`, new Blob([bytes]));
    } catch (e) {
      this.showError(`Download failed: ${e.message ?? e}`);
    }
  }
}
