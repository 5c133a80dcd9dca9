// The lab's training loop: builds the wasm lab from the settings (Reset) —
// and, with precision "both", its f64 twin on the CPU — steps them in
// lockstep (Start/Pause, Step once), collects their metrics, keeps the status
// line, the step count and the divergence warning current, measures the
// validation loss every 50 steps, refreshes the generated samples and, every
// few steps, the token-weight strip. Every number comes from the wasm labs.
// It does not build the settings form (controls.js), draw (charts.js,
// tokens.js), sweep (sweep.js) or export (exports.js).
import { backendFor, backendLabel, loadGradlab, Serial } from "../wasm.js";
import { createLab, prepareLabs } from "./remote.js";
import { el, errorText, nextFrame, sentences } from "../ui.js";
import { runLabel } from "./charts.js";

// generated text per model and refresh: tokens, and the time one model's sample may take
const SAMPLE_MIN = 12;
const SAMPLE_MAX = 60;
const SAMPLE_MS = 700;

// the token-weight strip is redrawn at most every this many steps while running
const TOKEN_EVERY = 10;

const emptyData = () => ({ step: [], runs: [] });

// A lab on the GPU keeps its whole state in memory every this many steps, so
// Recover after a lost device goes on from there with the weights trained so
// far instead of starting afresh.
const CHECKPOINT_EVERY = 50;

// `data` as it was when it held `points` steps, up to step `step`: every
// series is append-only, and a run stopped later was not stopped then.
const SERIES = ["logged", "true", "dist", "norm"];
const cutData = (data, points, step) => ({
  step: data.step.slice(0, points),
  runs: data.runs.map((r) => ({
    ...Object.fromEntries(SERIES.map((k) => [k, r[k].slice(0, points)])),
    ...(r.stopped != null && r.stopped <= step ? { stopped: r.stopped } : {}),
  })),
});
const runData = (specs) => specs.map(() => ({ logged: [], true: [], dist: [], norm: [] }));

// How a diverged run is named in `Training.diverged` and in the page's
// message: its label, "f64 " in front for the f64 twin's runs.
function divergedKey(twin, spec) {
  return `${twin ? "f64 " : ""}${runLabel(spec)}`;
}

export class Training {
  // `controls`: the settings (controls.js); `charts`: where curves go;
  // `showError(message)`: the panel's error line; `onReady(specs)`: a new
  // lab with these runs is built.
  // `tokens`: the token-weight strip (tokens.js). `startWeights`: where the
  // runs start (weights.js; its `bytes`, undefined for a fresh init), set later.
  constructor({ controls, charts, tokens, showError, onReady }) {
    this.startWeights = null;
    this.controls = controls;
    this.charts = charts;
    this.tokens = tokens;
    this.showError = showError;
    this.onReady = onReady;
    this.serial = new Serial();
    this.running = false;
    this.diverged = new Set();
    this.data = emptyData();
    this.twinData = emptyData();
    this.notice = el("p", { class: "gl-notice", "data-testid": "notice", hidden: "" });
    this.status = el("p", { class: "gl-status", "data-testid": "status", "aria-live": "polite", text: "Loading…" });
    this.stepCount = el("span", { "data-testid": "step-count", text: "0" });
    this.stepLine = el("p", { class: "gl-step" }, "Step ", this.stepCount);
    this.samples = el("div", { class: "gl-samples", "data-testid": "samples" });
    this.validation = el("p", { class: "gl-small", "data-testid": "validation", text: "Validation loss on held-out text: measured every 50 steps." });
    this.matrices = el("div", { class: "gl-matrices", "data-testid": "matrix-distances" });
    this.recoverBtn = el("button", { type: "button", "data-testid": "recover", hidden: "", text: "Recover: rebuild the lab on a new GPU device" });
    this.recoverBtn.addEventListener("click", () => this.recover());
    this.stepOffset = 0;
  }

  setStatus(text) {
    this.status.textContent = text;
  }

  // The Start/Pause button's label.
  set toggleLabel(text) {
    this.controls.toggle.textContent = text;
  }

  // Throws away the lab and builds one for the current settings; starts it
  // again if it was running (or Start was pressed meanwhile).
  async reset() {
    const controls = this.controls;
    // pasted text that cannot be used changes nothing: the lab, its curves and
    // its settings stay as they were, paused, and the reason is shown
    const pasted = controls.pastedText();
    if (pasted.problem) {
      this.running = false;
      this.startWhenReady = false;
      this.toggleLabel = "Start";
      this.setStatus(pasted.status ?? "Paused: the pasted text cannot be used; the lab keeps its last settings and curves.");
      return this.showError(pasted.problem);
    }
    const wasRunning = this.running || this.startWhenReady;
    this.running = false;
    // kept as a wish, so a second reset while this one builds still starts
    this.startWhenReady = wasRunning;
    // until the new lab exists, Start only records the wish
    this.building = true;
    this.diverged.clear();
    // a checkpoint belongs to the lab it was taken from
    this.checkpoint = null;
    // Recover keeps the curves; the new lab's steps continue their numbering
    const keep = this.keepCurves && this.data.step.length > 0;
    this.keepCurves = false;
    this.recoverBtn.hidden = true;
    this.stepOffset = keep ? this.data.step[this.data.step.length - 1] : 0;
    this.keptData = keep ? { data: this.data, twin: this.twinData } : null;
    this.data = emptyData();
    this.twinData = emptyData();
    this.tokens.clear();
    this.lastTokens = -TOKEN_EVERY;
    // first samples after a few steps, then every 25; short until the speed is known
    this.lastSamples = -20;
    this.sampleTokens = SAMPLE_MIN;
    // the settings are complete once the presets have come with the wasm module
    await controls.ready;
    this.showError(controls.problems);
    const gl = await loadGradlab();
    const { text } = pasted;
    const values = controls.values;
    if (!text) prepareLabs(values.corpus);
    // both precisions on the same model: the CPU reference's (the smallest preset)
    const both = values.precision === "both";
    const overrides = both ? { preset: controls.cpuPreset() } : {};
    // pasted text has no prompts to mask
    const config = controls.config(overrides, text ? { text, mask_prompt: false } : {});
    let chosen = await backendFor(values);
    // auto leaves a software adapter for the CPU only for labs the CPU can take
    if (chosen.why && gl.validateLabConfig(config, "cpu") && !gl.validateLabConfig(config, "webgpu")) {
      chosen = { backend: "webgpu", why: "", tooBig: true };
    }
    const problem = controls.combinationProblem() || gl.validateLabConfig(config, chosen.backend);
    if (problem) {
      this.building = false;
      this.startWhenReady = false;
      this.toggleLabel = "Start";
      this.setStatus("Not running: fix the setting above.");
      return this.showError(sentences(controls.problems, problem));
    }
    const token = (this.resetToken = {});
    await this.serial.run(async () => {
      this.lab?.free();
      this.twin?.free();
      this.lab = null;
      this.twin = null;
      this.setStatus("Building the lab…");
      try {
        // in the lab worker (remote.js), which fetches the corpus it needs
        const weights = this.startWeights?.start;
        this.lab = await createLab(config, chosen.backend, weights);
        if (both) this.twin = await createLab(config, "reference", weights);
      } catch (e) {
        this.showError(errorText(e));
        this.setStatus("Not running.");
      }
    });
    if (this.lab) this.backendName = await backendLabel(this.lab);
    // "reference" (f64), "cpu" (f32) or "webgpu": what the lab was built on
    this.backend = this.lab?.onGpu() ? "webgpu" : chosen.backend === "reference" ? "reference" : "cpu";
    if (token !== this.resetToken) return;
    this.building = false;
    if (!this.lab) {
      this.startWhenReady = false;
      this.toggleLabel = "Start";
      return;
    }
    this.stepsTaken = 0;
    this.specs = this.lab.runs();
    this.data.runs = runData(this.specs);
    this.twinSpecs = this.twin ? this.twin.runs() : null;
    this.twinData.runs = this.twinSpecs ? runData(this.twinSpecs) : [];
    // the same settings give the same runs: the kept curves go on
    if (this.keptData?.data.runs.length === this.data.runs.length) {
      this.data = this.keptData.data;
      if (this.keptData.twin.runs.length === this.twinData.runs.length) this.twinData = this.keptData.twin;
    } else {
      this.stepOffset = 0;
    }
    this.keptData = null;
    this.seqLen = this.lab.config().seq_len;
    // A loss far above a uniform guess over the vocabulary (ln 256 ≈ 5.5 for bytes) means the run has blown up.
    this.divergedLoss = 2 * Math.log(controls.presetNamed(values.preset).vocab_size);
    // read once here: a call on the lab while another is in flight throws
    const gpuProblem = this.lab.gpuProblem();
    this.onGpu = this.backend === "webgpu";
    const problemGpu = chosen.backend === "webgpu" ? gpuProblem : null;
    this.notice.hidden = !problemGpu;
    const cpu = controls.cpuPreset();
    const f32Where = this.onGpu ? "WebGPU" : "the CPU";
    controls.precisionHint(
      values.precision === "f64"
        ? `the f64 CPU reference, ${cpu} preset`
        : this.twin
          ? `f32 on ${f32Where} and f64 on the CPU, both ${cpu}; f64 curves dotted`
          : undefined,
    );
    controls.deviceHint(
      values.precision === "f64"
        ? "the f64 reference always runs on the CPU"
        : chosen.why
          ? `auto: ${chosen.why}`
          : chosen.tooBig
            ? "auto: WebGPU, although a software renderer here: this lab is beyond the CPU path's budget"
            : undefined,
    );
    // the status line says on how many threads the CPU steps and why auto
    // left WebGPU out (state files keep the plain name)
    const threads = this.lab?.threads() ?? 1;
    this.statusName = this.backendName + (threads > 1 ? ` on ${threads} threads` : "") + (chosen.why ? " · auto: WebGPU here is a software renderer" : "");
    if (problemGpu) {
      this.notice.textContent = `No WebGPU here (${problemGpu}). The lab runs on gradlab's f32 CPU backend instead: the same maths, on the processor.`;
    }
    this.onReady(this.specs);
    this.lora = config.lora_rank > 0 ? config.lora_rank : 0;
    this.charts.make(this.specs, this.twinSpecs, this.lora);
    if (this.stepOffset) this.redraw();
    this.matrices.replaceChildren();
    this.stepCount.textContent = "0";
    this.setStatus(`${this.statusName} · ready`);
    this.renderSamples(this.specs.map(() => ""));
    if (wasRunning || this.startWhenReady) this.start();
  }

  // A step failed: a lost GPU is said as such, with the way back (Recover);
  // anything else pauses with the reason.
  async stepFailed(lab, e) {
    // the device's lost promise may settle a little after the failed readback
    let lost;
    for (let i = 0; i < 10 && !lost; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 100));
      try {
        lost = await this.serial.run(() => (lab === this.lab ? lab.deviceLost() : undefined));
      } catch {
        lost = undefined;
      }
    }
    this.running = false;
    this.startWhenReady = false;
    this.toggleLabel = "Start";
    if (!lost) {
      this.setStatus("Paused: a step failed.");
      return this.showError(`Training stopped: ${errorText(e)}`);
    }
    this.recoverBtn.hidden = false;
    this.setStatus(`The GPU was lost (${lost}).`);
    this.showError(`The GPU was lost (${lost}), so nothing more can run on it. Press Recover to rebuild the lab from the same settings on a new device: from the state kept every 50 steps, the curves cut back to it, or afresh before the first, the curves so far kept.`);
  }

  // Keeps `lab`'s (and its twin's) whole state in memory, with how many
  // points the curves had then; only on the GPU, the one backend that can be
  // lost. A failure here is a step failure's business, not this one's.
  async keepCheckpoint(lab, twin) {
    if (!this.onGpu) return;
    try {
      await this.serial.run(async () => {
        if (lab !== this.lab || this.stepsTaken === this.checkpoint?.step) return;
        this.ingest(await lab.flush(), lab);
        if (twin) this.ingest(await twin.flush(), twin);
        // the state itself (typed arrays), not a file: nothing to encode
        const twinState = twin ? await twin.state() : undefined;
        const state = await lab.state();
        this.checkpoint = { lab, step: lab.steps(), state, twinState, points: this.data.step.length, twinPoints: this.twinData.step.length, stepOffset: this.stepOffset };
      });
    } catch {
      // the next step reports what went wrong
    }
  }

  // After a lost GPU: a new lab from the same settings on a new device. With
  // a checkpoint it goes on from the weights kept there (the steps since are
  // taken again, bit for bit on the same kind of device) and the curves are
  // cut back to it; without one it starts afresh, the curves so far kept and
  // the new steps numbered on from them.
  async recover() {
    this.recoverBtn.hidden = true;
    const kept = this.checkpoint?.lab === this.lab ? this.checkpoint : null;
    if (!kept) {
      this.keepCurves = true;
      return this.reset();
    }
    const at = kept.stepOffset + kept.step;
    const page = {
      backend: this.backendName,
      stepOffset: kept.stepOffset,
      curves: { data: cutData(this.data, kept.points, at), twin: this.twin ? cutData(this.twinData, kept.twinPoints, at) : null },
    };
    const before = this.backendName;
    await this.restore({ name: `the state kept at step ${kept.step}`, state: kept.state, twinState: kept.twinState, page });
    if (!this.lab || this.stepsTaken !== kept.step) return;
    // the same checkpoint serves a second loss before the next one is taken
    this.checkpoint = { ...kept, lab: this.lab };
    // restore() has said what differs (another backend, curves that do not fit)
    if (this.backendName === before) this.setStatus(`${this.statusName} · recovered on a new device from the weights kept at step ${at}`);
  }

  // A saved lab (state.js: `state` read from a file, the twin's file as
  // `twinBytes`) or the GPU's checkpoint (`state`, `twinState`), its
  // settings already in the controls: builds the lab for them, puts every
  // run's state back and the curves with it. A state the new lab refuses
  // leaves it fresh, with the reason shown.
  async restore({ name, state, twinState, twinBytes, page }) {
    this.running = false;
    this.startWhenReady = false;
    await this.reset();
    const { lab, twin } = this;
    if (!lab) return;
    try {
      await this.serial.run(async () => {
        if (lab !== this.lab) throw new Error("the lab was rebuilt meanwhile; load it again");
        await lab.restore(state);
        if (twin) {
          if (twinState) await twin.restore(twinState);
          else if (twinBytes) await twin.restoreState(twinBytes);
          else throw new Error("it holds no f64 twin for precision both");
        }
      });
    } catch (e) {
      return this.showError(`${name} cannot be loaded (${errorText(e).replace(/^state file: /, "")}); the lab starts afresh from its settings.`);
    }
    const curves = page.curves ?? {};
    const fits = (d, specs) => {
      const n = d?.step?.length;
      return Number.isInteger(n) && d.step.every(Number.isFinite) && Array.isArray(d.runs) && d.runs.length === specs.length &&
        d.runs.every((r) => ["logged", "true", "dist", "norm"].every((k) => Array.isArray(r?.[k]) && r[k].length <= n && r[k].every((x) => x === null || Number.isFinite(x))));
    };
    const curvesFit = fits(curves.data, this.specs) && (!twin || fits(curves.twin, this.twinSpecs));
    if (curvesFit) {
      this.data = curves.data;
      if (twin) this.twinData = curves.twin;
      this.stepOffset = Number.isInteger(page.stepOffset) && page.stepOffset >= 0 ? page.stepOffset : 0;
    }
    // runs the saved lab had stopped stay stopped
    const halted = async (l, specs) => [...(await this.serial.run(() => l.halted()))].forEach((h, i) => h && this.diverged.add(divergedKey(l === twin, specs[i])));
    await halted(lab, this.specs);
    if (twin) await halted(twin, this.twinSpecs);
    this.stepsTaken = lab.steps();
    this.stepCount.textContent = String(this.stepsTaken);
    this.redraw();
    this.refreshSamples();
    this.refreshMatrices(lab);
    const elsewhere = page.backend && page.backend !== this.backendName ? ` It was saved on ${page.backend} and goes on here on ${this.backendName}: from the same state, but not bit for bit.` : "";
    this.setStatus(`${this.statusName} · loaded ${name} at step ${this.stepsTaken}`);
    if (!curvesFit || elsewhere) this.showError(`${curvesFit ? "" : `${name}: its curves do not fit these runs, so they start empty.`}${elsewhere}`.trim());
  }

  // The element left the page: stop stepping and free the labs' memory (and
  // GPU buffers) once the call in flight, if any, has finished. A reset
  // builds them again.
  dispose() {
    this.running = false;
    this.startWhenReady = false;
    this.toggleLabel = "Start";
    const { lab, twin } = this;
    this.lab = null;
    this.twin = null;
    this.resetToken = {};
    this.serial.run(() => {
      lab?.free();
      twin?.free();
    });
  }

  // Metrics of `lab`; dropped if a reset has replaced it (or is replacing it)
  // since the step that produced them was queued. They come by step, then
  // run; a stopped (diverged) run has none for its later steps, so its
  // columns end there, and on the GPU one run's figures for a step may come
  // a poll after another's.
  ingest(metrics, lab) {
    if (this.building || !lab || (lab !== this.lab && lab !== this.twin)) return;
    const twin = lab === this.twin;
    const data = twin ? this.twinData : this.data;
    const specs = twin ? this.twinSpecs : this.specs;
    for (const m of metrics) {
      const step = m.step + this.stepOffset;
      if (!(data.step.length && data.step[data.step.length - 1] >= step)) {
        data.step.push(step);
        // real tokens of a step since the status line last counted them
        if (!twin) this.tokensSinceStatus = (this.tokensSinceStatus ?? 0) + (m.tokens ?? 0);
      }
      const r = data.runs[m.run];
      if (!r) continue;
      const at = data.step.lastIndexOf(step);
      while (r.logged.length < at) for (const k of ["logged", "true", "dist", "norm"]) r[k].push(null);
      r.logged.push(Number.isFinite(m.logged_loss) ? m.logged_loss : null);
      r.true.push(Number.isFinite(m.true_loss) ? m.true_loss : null);
      r.dist.push(m.weight_distance > 0 && Number.isFinite(m.weight_distance) ? m.weight_distance : null);
      r.norm.push(Number.isFinite(m.grad_norm) ? m.grad_norm : null);
      const blewUp = !Number.isFinite(m.true_loss) || m.true_loss > this.divergedLoss;
      if (blewUp) this.diverging(m, lab, specs, r);
    }
  }

  // Run `m.run` of `lab` blew up: it is stopped (it sits out every later
  // step, and its curve ends in a dot), the others go on; when every run
  // has, training pauses and the page says what to change.
  diverging(m, lab, specs, r) {
    const twin = lab === this.twin;
    const key = divergedKey(twin, specs[m.run]);
    if (this.diverged.has(key)) return;
    this.diverged.add(key);
    r.stopped ??= m.step + this.stepOffset;
    // the request queues behind the lab's calls in flight, so the run is
    // stopped from the next step on
    lab.halt(m.run).catch(() => {});
    const names = [...this.diverged].join(", ");
    const what = Number.isFinite(m.true_loss) ? `loss ${m.true_loss.toFixed(1)}, far above a uniform guess` : "its loss is not a number";
    const all = this.specs.every((s) => this.diverged.has(divergedKey(false, s)));
    if (all) {
      // nothing left to learn from: the lab refuses further steps
      if (this.running) this.pause();
      this.showError(`Every run diverged (the last at step ${m.step}, ${what}) and stopped; training is paused. Lower the learning rate (or turn gradient clipping on) and press Reset.`);
    } else {
      this.showError(`Diverged: ${names} (at step ${m.step}, ${what}) — stopped there, its curve ends in a dot. The learning rate is too high for it — lower it and press Reset. Runs that have not diverged keep going.`);
    }
  }

  redraw() {
    this.charts.draw(this.data, this.twin ? this.twinData : null);
  }

  // The token-weight strip for the lab's last step (at most every
  // TOKEN_EVERY steps unless `now`).
  refreshTokens(now = false) {
    const lab = this.lab;
    if (!lab || this.building) return;
    const step = this.stepsTaken;
    if (step === 0 || (!now && step - this.lastTokens < TOKEN_EVERY)) return;
    this.lastTokens = step;
    // the batch and its step number read together: more steps may be queued before this runs
    this.serial.run(async () => (lab === this.lab ? { tw: await lab.tokenWeights(), at: lab.steps() } : {})).then(({ tw, at }) => {
      if (lab === this.lab && tw) this.tokens.draw(tw, at, this.seqLen);
    }, (e) => this.showError(`Token weights failed: ${errorText(e)}`));
  }

  // One lockstep step of the lab and its twin (inside the serial queue).
  // `stepsTaken` follows the lab's count here, inside the queue: a call on
  // the lab outside it would fail while another call is in flight.
  // The two step at the same time where they live in different workers.
  async stepBoth(lab, twin) {
    const [stepped, twinStepped] = await Promise.allSettled([lab.step(1), twin && twin === this.twin ? twin.step(1) : []]);
    if (stepped.status === "rejected") throw stepped.reason;
    this.ingest(stepped.value, lab);
    if (lab === this.lab) this.stepsTaken = lab.steps();
    if (twinStepped.status === "rejected") throw twinStepped.reason;
    if (twin) this.ingest(twinStepped.value, twin);
  }

  start() {
    if (this.running) return;
    if (!this.lab || this.building) {
      // pressed while the lab is being built: start as soon as it is ready
      this.startWhenReady = true;
      this.toggleLabel = "Pause";
      return;
    }
    this.startWhenReady = false;
    this.running = true;
    this.toggleLabel = "Pause";
    this.loop();
  }

  pause() {
    this.running = false;
    this.startWhenReady = false;
    this.toggleLabel = "Start";
    const lab = this.lab;
    const twin = this.twin;
    this.serial.run(async () => {
      if (lab) this.ingest(await lab.flush(), lab);
      if (twin) this.ingest(await twin.flush(), twin);
    }).then(() => {
      this.redraw();
      this.refreshTokens(true);
      this.refreshSamples();
      this.refreshMatrices(lab);
    }, (e) => this.showError(`Pausing: the last steps' results could not be read (${errorText(e)}).`));
  }

  // Start when paused, pause when running (or about to run).
  toggle() {
    if (this.running || this.startWhenReady) this.pause();
    else this.start();
  }

  async stepOnce() {
    if (this.running || !this.lab || this.building) return;
    const lab = this.lab;
    const twin = this.twin;
    try {
      await this.serial.run(async () => {
        if (lab !== this.lab) return;
        await this.stepBoth(lab, twin);
        this.ingest(await lab.flush(), lab);
        if (twin) this.ingest(await twin.flush(), twin);
        this.stepCount.textContent = String(lab.steps());
      });
    } catch (e) {
      return this.stepFailed(lab, e);
    }
    this.redraw();
    this.refreshTokens(true);
    this.refreshSamples();
    this.refreshMatrices(lab);
  }

  async loop() {
    const lab = this.lab;
    const twin = this.twin;
    let t0 = performance.now();
    let steps0 = this.stepsTaken;
    this.tokensSinceStatus = 0;
    let lastDraw = 0;
    while (this.running && this.lab === lab) {
      try {
        await this.serial.run(async () => {
          if (this.running && this.lab === lab) await this.stepBoth(lab, twin);
        });
      } catch (e) {
        await this.stepFailed(lab, e);
        break;
      }
      const now = performance.now();
      this.stepCount.textContent = String(this.stepsTaken);
      if (now - lastDraw > 150) {
        this.redraw();
        lastDraw = now;
        const dt = (now - t0) / 1000;
        if (dt > 1) {
          const sps = (this.stepsTaken - steps0) / dt;
          const tps = Math.round((this.tokensSinceStatus ?? 0) / dt);
          this.tokensSinceStatus = 0;
          this.setStatus(`${this.statusName} · ${sps.toFixed(2)} steps/s · ${tps} tokens/s per run (real, unpadded tokens)`);
          t0 = now;
          steps0 = this.stepsTaken;
        }
      }
      // first samples early, then every 25 steps
      if (this.stepsTaken - this.lastSamples >= 25) this.refreshSamples();
      this.refreshTokens();
      if (this.stepsTaken % 50 === 0) {
        this.refreshValidation(lab);
        this.refreshMatrices(lab);
      }
      if (this.stepsTaken % CHECKPOINT_EVERY === 0) await this.keepCheckpoint(lab, twin);
      await nextFrame();
    }
  }

  async refreshSamples() {
    if (!this.lab || this.sampling) return;
    this.sampling = true;
    this.lastSamples = this.stepsTaken;
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
      this.showError(`Sampling failed: ${errorText(e)}`);
    } finally {
      this.sampling = false;
    }
  }

  async refreshValidation(lab) {
    try {
      // the lab may have been replaced (Reset) while this call waited its turn
      let step;
      const losses = await this.serial.run(async () => {
        if (lab !== this.lab) return null;
        step = lab.steps();
        return await lab.validationLoss();
      });
      if (!losses) return;
      this.validation.textContent = `Validation loss at step ${step}: ` + this.specs.map((s, i) => `${runLabel(s)} ${losses[i].toFixed(4)}`).join(" · ");
    } catch (e) {
      this.showError(`Validation failed: ${errorText(e)}`);
    }
  }

  // The table of each trained matrix's distance to the full batch's (under
  // LoRA each adapted Linear's), read back from every run: on pause, after
  // Step once and with every validation.
  async refreshMatrices(lab) {
    try {
      const got = await this.serial.run(async () => (lab && lab === this.lab && lab.steps() > 0 ? { at: lab.steps(), rows: await lab.tensorDistances() } : null));
      if (!got || lab !== this.lab) return;
      const rows = got.rows;
      // full training: the matrices and embeddings, not every bias and norm
      const shown = this.lora ? rows : rows.filter((r) => /^(wte|wpe)$|\.(c_attn|c_proj|c_fc)\.weight$/.test(r.name));
      const runs = this.specs.slice(1);
      const what = this.lora
        ? `each adapted Linear's merged weight, ‖W − W_full‖ = (α/r)·‖B·A − B_full·A_full‖ (r = ${this.lora}, α = ${2 * this.lora})`
        : "each weight matrix, ‖W − W_full‖";
      const head = el("tr", {}, el("th", { text: "tensor" }), ...runs.map((s) => el("th", { text: runLabel(s) })));
      const body = shown.map((r) => el("tr", {}, el("td", { text: r.name }), ...runs.map((_, i) => el("td", { text: r.distances[i + 1].toExponential(2) }))));
      this.matrices.replaceChildren(el("p", { class: "gl-small", text: `Per matrix at step ${got.at}: ${what}.` }), el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
    } catch (e) {
      this.showError(`Per-matrix distances failed: ${errorText(e)}`);
    }
  }

  renderSamples(texts) {
    this.samples.replaceChildren(
      ...this.specs.map((s, i) =>
        el("figure", {}, el("figcaption", { text: runLabel(s) }), el("pre", { "data-testid": `sample-${s.strategy}`, text: texts[i] ? `And ${texts[i]}` : "…" })),
      ),
    );
  }
}
