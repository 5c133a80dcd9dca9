// Surviving a lost GPU: while a lab on the GPU trains, its whole state is
// kept in memory every CHECKPOINT_EVERY steps; when a step fails this tells a
// lost device from any other failure, and Recover rebuilds the lab on a new
// device, going on from the checkpoint (the curves cut back to it) or, before
// the first, afresh with the curves so far kept. It does not step or build
// the lab itself: the training's reset and restore do (training.js).

// A lab on the GPU keeps its whole state in memory every this many steps, so
// Recover after a lost device goes on from there with the weights trained so
// far instead of starting afresh. Each copy reads every run's weights and
// optimizer state back from the GPU, so not every step.
const CHECKPOINT_EVERY = 50;

// The device's lost promise may settle a little after the failed readback:
// asked this many times, this far apart.
const LOST_TRIES = 10;
const LOST_WAIT_MS = 100;

export class Recovery {
  // `training`: the lab, its queue, curves and readouts (training.js), whose
  // reset and restore rebuild the lab.
  constructor(training) {
    this.training = training;
    // {lab, step, state, twinState, mark (the curves' then)}: the last state kept, of `lab`
    this.checkpoint = null;
  }

  // A new lab: a checkpoint belongs to the lab it was taken from.
  forget() {
    this.checkpoint = null;
  }

  // After a step of the running loop: a checkpoint when one is due.
  async afterStep(lab, twin) {
    if (this.training.stepsTaken % CHECKPOINT_EVERY === 0) await this.keep(lab, twin);
  }

  // Keeps `lab`'s (and its twin's) whole state in memory, with how far the
  // curves were then; only where it can be lost: on the GPU, or in a lab
  // worker (which can stop, or lose a thread of its pool). A failure here is
  // a step failure's business, not this one's.
  async keep(lab, twin) {
    const t = this.training;
    const inWorker = typeof lab.workerLost === "function" && !lab.onPageThread();
    if (!t.onGpu && !inWorker) return;
    try {
      await t.serial.run(async () => {
        if (lab !== t.lab || t.stepsTaken === this.checkpoint?.step) return;
        t.ingest(await lab.flush(), lab);
        if (twin) t.ingest(await twin.flush(), twin);
        // the state itself (typed arrays), not a file: nothing to encode
        const twinState = twin ? await twin.state() : undefined;
        const state = await lab.state();
        this.checkpoint = { lab, step: lab.steps(), state, twinState, mark: t.curves.mark() };
      });
    } catch {
      // the next step reports what went wrong
    }
  }

  // Why `lab`'s device was lost, after one of its steps failed; undefined
  // when it was not (or the lab was replaced meanwhile).
  async lostReason(lab) {
    const t = this.training;
    let lost;
    for (let i = 0; i < LOST_TRIES && !lost; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, LOST_WAIT_MS));
      try {
        lost = await t.serial.run(() => (lab === t.lab ? lab.deviceLost() : undefined));
      } catch {
        lost = undefined;
      }
    }
    return lost;
  }

  // The device was lost (`lost`: why): said as such, with the way back.
  offer(lost) {
    const t = this.training;
    t.readouts.recoverBtn.hidden = false;
    t.setStatus(`The GPU was lost (${lost}).`);
    t.showError(
      `The GPU was lost (${lost}), so nothing more can run on it. Press Recover to rebuild the lab from the same settings on a new device: from the state kept every ${CHECKPOINT_EVERY} steps, the curves cut back to it, or afresh before the first, the curves so far kept.`,
    );
  }

  // After a lost GPU: a new lab from the same settings on a new device. With
  // a checkpoint it goes on from the weights kept there (the steps since are
  // taken again, bit for bit on the same kind of device) and the curves are
  // cut back to it; without one it starts afresh, the curves so far kept and
  // the new steps numbered on from them.
  // `where`: what the new lab is built on, for the status line.
  async recover(where = "on a new device") {
    const t = this.training;
    t.readouts.recoverBtn.hidden = true;
    const kept = this.checkpoint?.lab === t.lab ? this.checkpoint : null;
    if (!kept) {
      t.keepCurves = true;
      return t.reset();
    }
    const at = kept.mark.stepOffset + kept.step;
    const page = { backend: t.backendName, ...t.curves.cutBack(kept.mark, at, !!t.twin) };
    const before = t.backendName;
    const restored = await t.restore({
      name: `the state kept at step ${kept.step}`,
      state: kept.state,
      twinState: kept.twinState,
      page,
      refused: (why) => `The state kept at step ${kept.step} could not be put back (${why}); the lab starts afresh, the curves so far kept.`,
    });
    if (restored === false) {
      t.keepCurves = true;
      return t.reset();
    }
    if (!t.lab || t.stepsTaken !== kept.step) return;
    // the same checkpoint serves a second loss before the next one is taken
    this.checkpoint = { ...kept, lab: t.lab };
    // restore() has said what differs (another backend, curves that do not fit)
    if (t.backendName === before) t.setStatus(`${t.statusName} · recovered ${where} from the weights kept at step ${at}`);
  }

  // The lab's worker, or a thread of its pool, stopped (`what`): nothing
  // of the lab is left there. Said once, and the lab rebuilt at once in a new
  // worker (one thread: a pool that stopped is not started again) from the
  // last state kept, as after a lost GPU, and started again if it ran.
  async afterWorkerLost(what, wasRunning) {
    const t = this.training;
    const kept = this.checkpoint?.lab === t.lab ? this.checkpoint : null;
    const from = kept ? `from the state kept at step ${kept.step} (the steps since are taken again)` : "afresh, the curves so far kept";
    const message = `${what[0].toUpperCase()}${what.slice(1)}, so the lab was rebuilt in a new worker on one thread, ${from}.`;
    console.warn(`gradlab: ${message}`);
    await this.recover("in a new worker");
    t.showError(message);
    if (wasRunning) t.start();
  }
}
