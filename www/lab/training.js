// The lab's lifecycle and its training loop: builds the wasm lab from the
// settings (Reset) — and, with precision "both", its f64 twin on the CPU —,
// steps them in lockstep (Start/Pause, Step), hands their metrics to the
// curves, halts a run that diverged, puts a saved or checkpointed lab back
// (restore) and frees the labs when the element leaves the page. What it is
// doing is one `phase`, changed in one place (`enter`). Every number comes
// from the wasm labs. It does not keep the curves' data (curves.js), judge
// divergence (divergence.js), keep checkpoints or recover a lost GPU
// (recovery.js), build or update the status line, samples and other readouts
// (readouts.js), build the settings form (controls.js), draw (charts.js,
// tokens.js), sweep (sweep.js) or export (exports.js).
import { backendFor, backendLabel, loadGradlab, Serial } from "../wasm.js";
import { createLab, labWorkerProblem, onPageThread, prepareLabs } from "./remote.js";
import { errorText, nextFrame, sentences } from "../ui.js";
import { Curves } from "./curves.js";
import { Divergence } from "./divergence.js";
import { Readouts } from "./readouts.js";
import { Recovery } from "./recovery.js";

// What the training is doing. Only `enter` changes it.
export const PHASE = Object.freeze({
  // A reset is building a new lab: Start only records the wish
  // (`startWhenReady`) and Step does nothing; the old lab, until the new
  // one replaces it, keeps the metrics of its steps still in flight.
  building: "building",
  // Not stepping and not building. Start steps the lab — or, where there is
  // none (before the first build, after a failed one, after `dispose`),
  // records the wish as while building.
  paused: "paused",
  // The loop steps the lab.
  running: "running",
});

// While running, the charts are redrawn at most this often (ms), and the
// speed on the status line measured over at least this long (ms): drawing
// every step would cost more than a small lab's step.
const DRAW_MS = 150;
const SPEED_MS = 1000;

// A saved state the new lab refused (reset's `restoreInto`), said as it is.
class RestoreRefused extends Error {}

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
    this.showError = showError;
    this.onReady = onReady;
    this.serial = new Serial();
    this.phase = PHASE.paused;
    // Pending intents: data beside the phase, as they outlive it.
    // Start was pressed while there was no lab to step, or a reset replaced
    // a running lab: the next lab starts once it is built.
    this.startWhenReady = false;
    // Recover without a checkpoint: the next build keeps the curves so far.
    this.keepCurves = false;
    // The latest build's token: a later reset or `dispose` replaces it, and
    // a build that finds its token replaced when done leaves the lab to them.
    this.buildToken = null;
    this.curves = new Curves();
    this.divergence = new Divergence();
    this.recovery = new Recovery(this);
    const readouts = (this.readouts = new Readouts({ training: this, tokens, showError, onRecover: () => this.recovery.recover() }));
    // what the panel lays out (lab.js)
    this.notice = readouts.notice;
    this.status = readouts.status;
    this.stepLine = readouts.stepLine;
    this.recoverBtn = readouts.recoverBtn;
    this.samples = readouts.samples;
    this.validation = readouts.validation;
    this.matrices = readouts.matrices;
  }

  get running() {
    return this.phase === PHASE.running;
  }

  get building() {
    return this.phase === PHASE.building;
  }

  // The one place the phase and the start wish change. The Start/Pause
  // button says what a press does: Pause while running or about to.
  enter(phase, startWhenReady = false) {
    this.phase = phase;
    this.startWhenReady = startWhenReady;
    this.controls.toggle.textContent = phase === PHASE.running || startWhenReady ? "Pause" : "Start";
  }

  // Stepping stops and the start wish is dropped; a build under way goes on.
  stopStepping() {
    this.enter(this.running ? PHASE.paused : this.phase);
  }

  setStatus(text) {
    this.readouts.setStatus(text);
  }

  // Throws away the lab and builds one for the current settings; starts it
  // again if it was running (or Start was pressed meanwhile). Resolves to
  // true once the new lab stands. `restoreInto(built)`: puts a saved state
  // into the new labs before they replace the old one (restore); if it
  // throws, the new labs are dropped and the old one runs on untouched,
  // with its settings, and the reset resolves to false.
  async reset({ restoreInto } = {}) {
    const controls = this.controls;
    // pasted text that cannot be used changes nothing: the lab, its curves and
    // its settings stay as they were, paused, and the reason is shown
    const pasted = controls.pastedText();
    if (pasted.problem) {
      this.stopStepping();
      this.setStatus(pasted.status ?? "Paused: the pasted text cannot be used; the lab keeps its last settings and curves.");
      return this.showError(pasted.problem);
    }
    // Kept as a wish, so a second reset while this one builds still starts;
    // and this build starts what was running even if Pause is pressed while
    // it builds.
    const wasRunning = this.running || this.startWhenReady;
    this.enter(PHASE.building, wasRunning);
    // the settings are complete once the presets have come with the wasm module
    let gl;
    try {
      await controls.ready;
      gl = await loadGradlab();
    } catch (e) {
      // the module could not be loaded: said in the error line, naming its URL
      this.enter(PHASE.paused);
      this.setStatus("Not running: gradlab could not be loaded.");
      return this.showError(errorText(e));
    }
    this.showError(controls.problems);
    const { text } = pasted;
    const values = controls.values;
    if (!text) prepareLabs(values.corpus);
    // both precisions on the same model: the CPU reference's (the smallest preset)
    const both = values.precision === "both";
    const overrides = both ? { preset: controls.smallestPreset() } : {};
    // pasted text has no prompts to mask
    const config = controls.config(overrides, text ? { text, mask_prompt: false } : {});
    let chosen = await backendFor(values);
    // auto leaves a software adapter for the CPU only for labs the CPU can take
    if (chosen.why && gl.validateLabConfig(config, "cpu") && !gl.validateLabConfig(config, "webgpu")) {
      chosen = { backend: "webgpu", why: "", tooBig: true };
    }
    const problem = controls.combinationProblem() || gl.validateLabConfig(config, chosen.backend);
    if (problem) {
      this.enter(PHASE.paused);
      this.setStatus("Not running: fix the setting above.");
      return this.showError(sentences(controls.problems, problem));
    }
    const token = (this.buildToken = {});
    // The new labs are built beside the old one, which is freed only once
    // they stand: settings the library refuses at build time (a pasted text
    // too short for the batch, weights it cannot take) leave the lab, its
    // curves and its settings as they were.
    this.setStatus("Building the lab…");
    let built;
    try {
      // in the lab worker (remote.js), which fetches the corpus it needs
      const weights = this.startWeights?.start;
      const lab = await createLab(config, chosen.backend, weights);
      const twin = both ? await createLab(config, "reference", weights).catch((e) => (lab.free(), Promise.reject(e))) : null;
      built = { lab, twin };
      if (restoreInto) {
        try {
          await restoreInto(built);
        } catch (e) {
          throw new RestoreRefused(errorText(e));
        }
      }
    } catch (e) {
      built?.lab.free();
      built?.twin?.free();
      if (token !== this.buildToken) return;
      if (e instanceof RestoreRefused && this.lab && this.builtValues) {
        // the old lab runs on as it was, on its own settings
        controls.load(this.builtValues);
        this.enter(PHASE.paused, wasRunning);
        if (wasRunning) this.start();
        else this.setStatus(`${this.statusName} · paused`);
        this.showError(e.message);
        return false;
      }
      this.enter(PHASE.paused);
      if (!this.lab || !this.builtValues) {
        this.setStatus("Not running.");
        this.showError(errorText(e));
        return false;
      }
      // the form goes back to the settings the lab runs on; a pasted text stays in its box
      controls.load(this.builtValues);
      this.setStatus(`${this.statusName} · paused: the new settings could not be built; the lab keeps its last settings and curves.`);
      this.showError(`${errorText(e)} Nothing was lost: the lab keeps its last settings and curves (press Start to go on).`);
      return false;
    }
    if (token !== this.buildToken) {
      built.lab.free();
      built.twin?.free();
      return;
    }
    await this.serial.run(async () => {
      this.lab?.free();
      this.twin?.free();
      // the old lab's metrics still on their way are dropped from here (ingest)
      this.lab = built.lab;
      this.twin = built.twin;
      this.divergence.clear();
      this.recovery.forget();
      // Recover keeps the curves; the new lab's steps continue their numbering
      this.curves.rebuild(this.keepCurves);
      this.keepCurves = false;
      this.readouts.rebuilding();
    });
    this.builtValues = { ...values };
    if (this.lab) this.backendName = await backendLabel(this.lab);
    // "reference" (f64), "cpu" (f32) or "webgpu": what the lab was built on
    this.backend = this.lab?.onGpu() ? "webgpu" : chosen.backend === "reference" ? "reference" : "cpu";
    // superseded: the later reset (or dispose) owns the phase from here
    if (token !== this.buildToken) return;
    if (!this.lab) return this.enter(PHASE.paused);
    // a restored lab waits, paused, for its curves (restore)
    this.enter(PHASE.paused, restoreInto ? false : this.startWhenReady);
    this.stepsTaken = 0;
    this.specs = this.lab.runs();
    this.twinSpecs = this.twin ? this.twin.runs() : null;
    this.curves.setRuns(this.specs, this.twinSpecs);
    this.seqLen = this.lab.config().seq_len;
    this.divergence.setVocabulary(controls.presetNamed(values.preset).vocab_size);
    this.onGpu = this.backend === "webgpu";
    this.showWhere(values, chosen);
    this.onReady(this.specs);
    this.lora = config.lora_rank > 0 ? config.lora_rank : 0;
    this.charts.make(this.specs, this.twinSpecs, this.lora);
    if (this.curves.stepOffset) this.redraw();
    this.readouts.built(`${this.statusName} · ready`);
    if (!restoreInto && (wasRunning || this.startWhenReady)) this.start();
    return true;
  }

  // Says where the new lab runs and why: the form's precision and device
  // hints, the status line's name (`statusName`) and, where WebGPU was asked
  // for and is missing, the notice. `chosen`: backendFor's answer.
  showWhere(values, chosen) {
    const controls = this.controls;
    // read once here: a call on the lab while another is in flight throws
    const gpuProblem = this.lab.gpuProblem();
    const problemGpu = chosen.backend === "webgpu" ? gpuProblem : null;
    const cpu = controls.smallestPreset();
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
    const inPage = this.lab?.onPageThread?.() ?? false;
    this.statusName = this.backendName + (threads > 1 ? ` on ${threads} threads` : "") + (inPage ? " · on the page's thread" : "") + (chosen.why ? " · auto: WebGPU here is a software renderer" : "");
    this.readouts.showGpuProblem(problemGpu);
    // said once: later labs on the page's thread keep the status line's mark
    if (inPage && !this.saidWorkerProblem && labWorkerProblem()) {
      this.saidWorkerProblem = true;
      this.showError(labWorkerProblem());
    }
  }

  // A step failed: a lost GPU is said as such, with the way back (Recover);
  // anything else pauses with the reason.
  async stepFailed(lab, e) {
    // its worker, or a thread of its pool, stopped: rebuilt and going on at once
    const gone = lab.workerLost?.() ?? this.twin?.workerLost?.();
    if (gone && lab === this.lab) {
      const wasRunning = this.running;
      this.stopStepping();
      return this.recovery.afterWorkerLost(gone, wasRunning);
    }
    const lost = await this.recovery.lostReason(lab);
    this.stopStepping();
    if (lost) return this.recovery.offer(lost);
    this.setStatus("Paused: a step failed.");
    this.showError(`Training stopped: ${errorText(e)}`);
  }

  // A saved lab (state.js: `state` read from a file, the twin's file as
  // `twinBytes`) or the GPU's checkpoint (`state`, `twinState`), its
  // settings already in the controls: builds the lab for them, puts every
  // run's state back and the curves with it. A state the new lab refuses
  // leaves it fresh, with the reason shown.
  // Resolves to whether it was loaded: a state the new lab refuses leaves
  // the old lab running on as it was (reset's `restoreInto`).
  // `refused(why)`: the message for a refused state.
  async restore({ name, state, twinState, twinBytes, page, refused = (why) => `${name} cannot be loaded (${why}); the lab runs on as it was.` }) {
    const loaded = await this.reset({
      restoreInto: async ({ lab, twin }) => {
        try {
          await lab.restore(state);
          if (twin) {
            if (twinState) await twin.restore(twinState);
            else if (twinBytes) await twin.restoreState(twinBytes);
            else throw new Error("it holds no f64 twin for precision both");
          }
        } catch (e) {
          throw new Error(refused(errorText(e).replace(/^state file: /, "")));
        }
      },
    });
    if (!loaded) return false;
    // the new lab stands, paused, with the state in it
    const { lab, twin } = this;
    const curvesFit = this.curves.load(page, this.specs, twin ? this.twinSpecs : null);
    // runs the saved lab had stopped stay stopped
    const halted = async (l, specs) => [...(await this.serial.run(() => l.halted()))].forEach((h, i) => h && this.divergence.add(l === twin, specs[i]));
    await halted(lab, this.specs);
    if (twin) await halted(twin, this.twinSpecs);
    this.stepsTaken = lab.steps();
    this.readouts.showStep(this.stepsTaken);
    this.redraw();
    this.readouts.refreshSamples();
    this.readouts.refreshMatrices(lab);
    const elsewhere = page.backend && page.backend !== this.backendName ? ` It was saved on ${page.backend} and goes on here on ${this.backendName}: from the same state, but not bit for bit.` : "";
    this.setStatus(`${this.statusName} · loaded ${name} at step ${this.stepsTaken}`);
    if (!curvesFit || elsewhere) this.showError(`${curvesFit ? "" : `${name}: its curves do not fit these runs, so they start empty.`}${elsewhere}`.trim());
    return true;
  }

  // The element left the page: stop stepping and free the labs' memory (and
  // GPU buffers) once the call in flight, if any, has finished. A reset
  // builds them again.
  dispose() {
    this.stopStepping();
    const { lab, twin } = this;
    this.lab = null;
    this.twin = null;
    this.buildToken = {};
    this.serial.run(() => {
      lab?.free();
      twin?.free();
    });
  }

  // Metrics of `lab`, into the curves; dropped if a reset has replaced it
  // since the step that produced them was queued (while a new lab is being
  // built the old one's last steps still count: the build may fail, and the
  // old lab go on). A run whose loss blew up is stopped.
  ingest(metrics, lab) {
    if (!lab || (lab !== this.lab && lab !== this.twin)) return;
    const twin = lab === this.twin;
    const specs = twin ? this.twinSpecs : this.specs;
    for (const m of metrics) {
      const { opened, run } = this.curves.append(twin, m);
      // real tokens of a step since the status line last counted them
      if (opened && !twin) this.tokensSinceStatus = (this.tokensSinceStatus ?? 0) + (m.tokens ?? 0);
      if (run !== undefined && this.divergence.blewUp(m)) this.diverging(m, lab, specs);
    }
  }

  // Run `m.run` of `lab` blew up: it is stopped (it sits out every later
  // step, and its curve ends in a dot), the others go on; when every run
  // has, training pauses and the page says what to change.
  diverging(m, lab, specs) {
    const twin = lab === this.twin;
    if (!this.divergence.add(twin, specs[m.run])) return;
    this.curves.stop(twin, m.run, m.step);
    // the request queues behind the lab's calls in flight, so the run is
    // stopped from the next step on
    lab.halt(m.run).catch(() => {});
    const all = this.divergence.all(this.specs);
    // nothing left to learn from: the lab refuses further steps
    if (all && this.running) this.pause();
    this.showError(this.divergence.message(m, all, this.specs));
  }

  redraw() {
    this.charts.draw(...this.curves.drawn(!!this.twin));
  }

  // The charts drawn at the next frame, once however often asked before it.
  // The loop asks and sends the next step at once, so a lab in a worker
  // computes while the page draws: drawing in the loop kept the worker
  // waiting, longer as the curves grew (BENCHMARKS.md, "Soak").
  redrawSoon() {
    if (this.drawPending) return;
    this.drawPending = true;
    requestAnimationFrame(() => {
      this.drawPending = false;
      this.redraw();
    });
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
    // pressed while the lab is being built (or with none): start as soon as one is ready
    if (!this.lab || this.building) return this.enter(this.phase, true);
    this.enter(PHASE.running);
    this.loop();
  }

  pause() {
    this.stopStepping();
    const lab = this.lab;
    const twin = this.twin;
    this.serial.run(async () => {
      if (lab) this.ingest(await lab.flush(), lab);
      if (twin) this.ingest(await twin.flush(), twin);
    }).then(() => {
      this.redraw();
      this.readouts.afterStop(lab);
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
        this.readouts.showStep(lab.steps());
      });
    } catch (e) {
      return this.stepFailed(lab, e);
    }
    this.redraw();
    this.readouts.afterStop(lab);
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
      this.readouts.showStep(this.stepsTaken);
      if (now - lastDraw > DRAW_MS) {
        this.redrawSoon();
        lastDraw = now;
        const dt = (now - t0) / 1000;
        if (dt > SPEED_MS / 1000) {
          const sps = (this.stepsTaken - steps0) / dt;
          const tps = Math.round((this.tokensSinceStatus ?? 0) / dt);
          this.tokensSinceStatus = 0;
          this.setStatus(`${this.statusName} · ${sps.toFixed(2)} steps/s · ${tps} tokens/s per run (real, unpadded tokens)`);
          t0 = now;
          steps0 = this.stepsTaken;
        }
      }
      this.readouts.afterStep(lab);
      await this.recovery.afterStep(lab, twin);
      // a lab on the page's own thread steps between frames, so that the
      // page paints; labs in workers do not wait for a frame
      if (onPageThread(lab) || (twin && onPageThread(twin))) await nextFrame();
    }
  }
}
