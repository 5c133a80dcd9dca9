// What the page shows of the training besides the charts: the notice when
// WebGPU is missing, the status line, the step count, the Recover button, the
// generated samples, the validation loss, the per-matrix distance table — their
// DOM and their updates — and when the token-weight strip is refreshed (it is
// drawn by tokens.js). Samples, validation losses, distances and token
// weights are read from the wasm lab through the training's queue, and one
// the lab was replaced under (Reset) is dropped; the status line's words come
// from training.js and recovery.js.
// It does not step, build or pause the lab (training.js), keep the curves
// (curves.js) or draw the charts (charts.js).
import { el, errorText } from "../ui.js";
import { runLabel } from "./charts.js";
import { INVALID_MARK, shownText } from "./tokens.js";

// Generated text per model and refresh: tokens, and the time one model's
// sample may take. Sampling holds the lab's queue, so a big model on a slow
// adapter samples fewer tokens rather than hold training up.
const SAMPLE_MIN = 12;
const SAMPLE_MAX = 60;
const SAMPLE_MS = 700;

// Every run samples with the same prompt, temperature and seed, and in one
// refresh the same number of tokens: the draws are the same, so the texts
// differ only where the weights do (at step 0, not at all).
const SAMPLE_PROMPT = "And ";
const SAMPLE_TEMPERATURE = 0.8;
const SAMPLE_SEED = 7;
const SAMPLE_NOTE =
  `Every run continues “${SAMPLE_PROMPT.trim()}” with the same random draws (temperature ${SAMPLE_TEMPERATURE}, seed ${SAMPLE_SEED}), so the texts differ only where the weights do. ` +
  `${INVALID_MARK} marks bytes that are not text (not valid UTF-8, or control codes): a model picks single bytes, and an untrained one picks any.`;

// While running, the samples are refreshed every this many steps — often
// enough to watch the text take shape, rarely enough that sampling (up to
// SAMPLE_MS per run, in the lab's queue) costs little of the training time.
// A new lab shows its untrained samples at once (`built`).
const SAMPLE_EVERY = 25;

// While running, the validation loss and the per-matrix table are read at
// every step that is a multiple of this: each is a pass over the held-out
// text or every run's weights, too slow for every step, and the curves
// already show the step-by-step trend.
const VALIDATE_EVERY = 50;

// The token-weight strip is redrawn at most every this many steps while running.
const TOKEN_EVERY = 10;

export class Readouts {
  // `training`: the lab, its runs and its queue (training.js); `tokens`: the
  // token-weight strip (tokens.js); `showError(message)`: the panel's error
  // line; `onRecover()`: the Recover button was pressed.
  constructor({ training, tokens, showError, onRecover }) {
    // a readout that failed because the lab's worker stopped says nothing:
    // the step that fails with it rebuilds the lab and says so (recovery.js)
    const show = (message, e) => e?.workerLost || showError(message);
    Object.assign(this, { training, tokens, showError, failed: show });
    this.notice = el("p", { class: "gl-notice", "data-testid": "notice", hidden: "" });
    this.status = el("p", { class: "gl-status", "data-testid": "status", "aria-live": "polite", text: "Loading…" });
    this.stepCount = el("span", { "data-testid": "step-count", text: "0" });
    this.stepLine = el("p", { class: "gl-step" }, "Step ", this.stepCount);
    this.samples = el("div", { class: "gl-samples", "data-testid": "samples" });
    this.validation = el("p", { class: "gl-small", "data-testid": "validation", text: `Validation loss on held-out text: measured every ${VALIDATE_EVERY} steps.` });
    this.matrices = el("div", { class: "gl-matrices", "data-testid": "matrix-distances" });
    this.recoverBtn = el("button", { type: "button", "data-testid": "recover", hidden: "", text: "Recover: rebuild the lab on a new GPU device" });
    this.recoverBtn.addEventListener("click", () => onRecover());
    // A sample refresh is under way: not a phase of the training (it happens
    // running or paused), only a guard. A refresh asked for meanwhile runs
    // once after it (`samplesAgain`): the lab may have moved on (a pause, a
    // loaded state) since the one in flight read its weights.
    this.samplesInFlight = false;
    this.samplesAgain = false;
    this.restartCadences();
  }

  setStatus(text) {
    this.status.textContent = text;
    // the line is cut to one line where it is narrow: the whole of it on hover
    this.status.title = text;
  }

  // `step`: the lab's own count; after a Recover that kept the curves the
  // new lab's steps are numbered on from them, and so is the counter.
  showStep(step) {
    this.stepCount.textContent = String(step + (this.training.curves.stepOffset ?? 0));
  }

  // A new lab is being built: the old one's readings go (the strip, the
  // Recover button of its lost device).
  rebuilding() {
    this.recoverBtn.hidden = true;
    this.tokens.clear();
    this.restartCadences();
  }

  // Nothing is due from a new lab yet; its first samples are short (until
  // the speed is known).
  restartCadences() {
    this.lastTokens = -TOKEN_EVERY;
    this.lastSamples = 0;
    this.sampleTokens = SAMPLE_MIN;
  }

  // Why the lab is not on WebGPU where it was asked for, or null where it
  // is: one sentence for the reader; wgpu's own account of every backend it
  // tried is for whoever debugs it (the console, and the notice's tooltip).
  showGpuProblem(problem) {
    this.notice.hidden = !problem;
    this.notice.title = problem ?? "";
    if (problem) {
      this.notice.textContent = "This browser offers no WebGPU, so the lab trains on your processor instead, with the same maths in f32.";
      console.info(`gradlab: no WebGPU adapter: ${problem}`);
    }
  }

  // The new lab is built: nothing read from it yet but its untrained
  // samples, which every run shares.
  built(status) {
    this.matrices.replaceChildren();
    this.showStep(0);
    this.setStatus(status);
    this.renderSamples(this.training.specs.map(() => ""));
    this.refreshSamples();
  }

  // After a step of the running loop on `lab`: whatever is due.
  afterStep(lab) {
    const step = this.training.stepsTaken;
    if (step - this.lastSamples >= SAMPLE_EVERY) this.refreshSamples();
    this.refreshTokens();
    if (step % VALIDATE_EVERY === 0) {
      this.refreshValidation(lab);
      this.refreshMatrices(lab);
    }
  }

  // The lab stopped stepping (Pause, Step): the samples, the strip and
  // the table for where it stands.
  afterStop(lab) {
    this.refreshTokens(true);
    this.refreshSamples();
    this.refreshMatrices(lab);
  }

  // The token-weight strip for the lab's last step (at most every
  // TOKEN_EVERY steps unless `now`).
  refreshTokens(now = false) {
    const t = this.training;
    const lab = t.lab;
    if (!lab || t.building) return;
    const step = t.stepsTaken;
    if (step === 0 || (!now && step - this.lastTokens < TOKEN_EVERY)) return;
    this.lastTokens = step;
    // the batch and its step number read together: more steps may be queued before this runs
    t.serial.run(async () => (lab === t.lab ? { tw: await lab.tokenWeights(), at: lab.steps() } : {})).then(({ tw, at }) => {
      if (lab === t.lab && tw) this.tokens.draw(tw, at, t.seqLen);
    }, (e) => this.failed(`Token weights failed: ${errorText(e)}`, e));
  }

  async refreshSamples() {
    const t = this.training;
    if (!t.lab) return;
    if (this.samplesInFlight) {
      this.samplesAgain = true;
      return;
    }
    this.samplesInFlight = true;
    this.lastSamples = t.stepsTaken;
    const lab = t.lab;
    // one length for every run of this refresh (a different length was a
    // different text), adjusted for the next from how fast this one went
    const n = this.sampleTokens;
    try {
      const texts = [];
      let ms = 0;
      for (let i = 0; i < t.specs.length; i++) {
        texts.push(
          await t.serial.run(async () => {
            if (lab !== t.lab) return "";
            const t0 = performance.now();
            const text = await lab.sample(i, SAMPLE_PROMPT, n, SAMPLE_TEMPERATURE, SAMPLE_SEED);
            ms = Math.max(ms, performance.now() - t0);
            return text;
          }),
        );
      }
      // as many tokens as the slowest run samples in about SAMPLE_MS
      if (ms > 0) this.sampleTokens = Math.max(SAMPLE_MIN, Math.min(SAMPLE_MAX, Math.round((SAMPLE_MS * n) / ms)));
      // a lab replaced meanwhile has other runs: its own refresh shows them
      if (lab === t.lab) this.renderSamples(texts);
    } catch (e) {
      this.failed(`Sampling failed: ${errorText(e)}`, e);
    } finally {
      this.samplesInFlight = false;
      if (this.samplesAgain) {
        this.samplesAgain = false;
        this.refreshSamples();
      }
    }
  }

  renderSamples(texts) {
    this.samples.replaceChildren(
      el("p", { class: "gl-small", "data-testid": "samples-note", text: SAMPLE_NOTE }),
      ...this.training.specs.map((s, i) =>
        el("figure", {}, el("figcaption", { text: runLabel(s) }), el("pre", { "data-testid": `sample-${s.strategy}`, text: texts[i] ? shownText(SAMPLE_PROMPT + texts[i]) : "…" })),
      ),
    );
  }

  async refreshValidation(lab) {
    const t = this.training;
    try {
      // the lab may have been replaced (Reset) while this call waited its turn
      let step;
      const losses = await t.serial.run(async () => {
        if (lab !== t.lab) return null;
        step = lab.steps();
        return await lab.validationLoss();
      });
      if (!losses) return;
      this.validation.textContent = `Validation loss at step ${step}: ` + t.specs.map((s, i) => `${runLabel(s)} ${losses[i].toFixed(4)}`).join(" · ");
    } catch (e) {
      this.failed(`Validation failed: ${errorText(e)}`, e);
    }
  }

  // The table of each trained matrix's distance to the full batch's (under
  // LoRA each adapted Linear's), read back from every run: on pause, after
  // Step and with every validation.
  async refreshMatrices(lab) {
    const t = this.training;
    try {
      const got = await t.serial.run(async () => (lab && lab === t.lab && lab.steps() > 0 ? { at: lab.steps(), rows: await lab.tensorDistances() } : null));
      if (!got || lab !== t.lab) return;
      const rows = got.rows;
      // full training: the matrices and embeddings, not every bias and norm
      const shown = t.lora ? rows : rows.filter((r) => /^(wte|wpe)$|\.(c_attn|c_proj|c_fc)\.weight$/.test(r.name));
      const runs = t.specs.slice(1);
      const what = t.lora
        ? `each adapted Linear's merged weight, ‖W − W_full‖ = (α/r)·‖B·A − B_full·A_full‖ (r = ${t.lora}, α = ${2 * t.lora})`
        : "each weight matrix, ‖W − W_full‖";
      const head = el("tr", {}, el("th", { text: "tensor" }), ...runs.map((s) => el("th", { text: runLabel(s) })));
      const body = shown.map((r) => el("tr", {}, el("td", { text: r.name }), ...runs.map((_, i) => el("td", { text: r.distances[i + 1].toExponential(2) }))));
      this.matrices.replaceChildren(el("p", { class: "gl-small", text: `Per matrix at step ${got.at}: ${what}.` }), el("table", {}, el("thead", {}, head), el("tbody", {}, ...body)));
    } catch (e) {
      this.failed(`Per-matrix distances failed: ${errorText(e)}`, e);
    }
  }
}
