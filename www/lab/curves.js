// The lab's curves: for every step, every run's logged loss, true loss,
// distance to the full-batch weights and gradient norm, for the lab and, with
// precision "both", for its f64 twin. One lab's curves are plain data,
//   {step: [], runs: [{logged: [], true: [], dist: [], norm: [], stopped?}]},
// the shape charts.js draws and a saved lab's page data holds (state.js), so
// files saved before keep loading. This module is the one place that builds,
// appends to, cuts back, checks and reads out that shape: the element's
// curves(), the CSV and the difference chart's gaps to the full batch come
// from here. It does not step the lab
// (training.js), draw (charts.js) or decide when a run has diverged
// (divergence.js); it only records where one stopped.

// The series every run has, one value (or null) per step up to where it stopped.
export const SERIES = ["logged", "true", "dist", "norm"];

const emptyCurves = () => ({ step: [], runs: [] });
const emptyRuns = (specs) => specs.map(() => Object.fromEntries(SERIES.map((k) => [k, []])));
const finiteOrNull = (x) => (Number.isFinite(x) ? x : null);
const lastOf = (a) => a[a.length - 1];

// `data` as it was when it held `points` steps, up to step `step`: every
// series is append-only, and a run stopped later was not stopped then.
function cutCurves(data, points, step) {
  return {
    step: data.step.slice(0, points),
    runs: data.runs.map((r) => ({
      ...Object.fromEntries(SERIES.map((k) => [k, r[k].slice(0, points)])),
      ...(r.stopped != null && r.stopped <= step ? { stopped: r.stopped } : {}),
    })),
  };
}

// Whether curves read from a file can stand for a lab with runs `specs`:
// finite steps, one entry per run, no series longer than the steps, every
// value a number or null.
function fitsRuns(d, specs) {
  const n = d?.step?.length;
  return (
    Number.isInteger(n) &&
    d.step.every(Number.isFinite) &&
    Array.isArray(d.runs) &&
    d.runs.length === specs.length &&
    d.runs.every((r) => SERIES.every((k) => Array.isArray(r?.[k]) && r[k].length <= n && r[k].every((x) => x === null || Number.isFinite(x))))
  );
}

// Steps in the gap chart's moving mean: the logged loss's gap changes with
// every batch's token counts, and a mean over this many steps shows its level
// without hiding a trend over hundreds.
export const GAP_WINDOW = 20;

// Every run's loss minus the full batch's (run 0) at the same step, for
// `key` "true" or "logged" of one lab's curves `d`: the mean of the last
// `window` steps' differences (fewer at the start), null where either run
// has no value, so a stopped run's gap ends where it stopped. The full
// batch's own (all 0) is left out: one series per other run. With `keep`
// (ascending steps, as the charts draw them) only those steps are worked
// out and the others are left unset.
export function gaps(d, key, window = GAP_WINDOW, keep = null) {
  const full = d.runs[0]?.[key] ?? [];
  return d.runs.slice(1).map((r) => {
    const ys = r[key];
    const diff = (k) => (ys[k] != null && full[k] != null ? ys[k] - full[k] : null);
    const out = keep ? new Array(ys.length) : new Array(ys.length).fill(null);
    for (const k of keep ?? ys.keys()) {
      if (k >= ys.length || diff(k) == null) continue;
      let sum = 0;
      let count = 0;
      for (let j = Math.max(0, k - window + 1); j <= k; j++) {
        const x = diff(j);
        if (x != null) (sum += x), count++;
      }
      out[k] = sum / count;
    }
    return out;
  });
}

export class Curves {
  constructor() {
    this.main = emptyCurves();
    this.twin = emptyCurves();
    // The steps on the charts are the lab's own plus this: after a Recover
    // without a checkpoint the new lab counts from 0 again while its curves
    // go on from the kept ones' last step.
    this.stepOffset = 0;
    // the curves set aside while a rebuild that keeps them builds
    this.kept = null;
  }

  // A rebuild begins: the curves empty until the new lab's runs are known.
  // With `keep` (Recover without a checkpoint) and curves to keep, they are
  // set aside and the new lab's steps will be numbered on from their last.
  rebuild(keep) {
    const kept = keep && this.main.step.length > 0;
    this.stepOffset = kept ? lastOf(this.main.step) : 0;
    this.kept = kept ? { main: this.main, twin: this.twin } : null;
    this.main = emptyCurves();
    this.twin = emptyCurves();
  }

  // The new lab has runs `specs` (and its twin `twinSpecs`, or null): empty
  // series for each, or the kept curves where they hold the same number of
  // runs (the same settings give the same runs).
  setRuns(specs, twinSpecs) {
    this.main.runs = emptyRuns(specs);
    this.twin.runs = twinSpecs ? emptyRuns(twinSpecs) : [];
    if (this.kept?.main.runs.length === this.main.runs.length) {
      this.main = this.kept.main;
      if (this.kept.twin.runs.length === this.twin.runs.length) this.twin = this.kept.twin;
    } else {
      this.stepOffset = 0;
    }
    this.kept = null;
  }

  // One metric of the lab (`twin` false) or its twin. Metrics come by step,
  // then run; a stopped run has none for its later steps, so its columns end
  // there, and on the GPU one run's figures for a step may come a poll after
  // another's: a run behind is padded with nulls up to the step. Returns
  // whether the metric opened a new step, and the run's index where the
  // curves have that run.
  append(twin, m) {
    const data = twin ? this.twin : this.main;
    const step = m.step + this.stepOffset;
    // figures of steps a run was already stopped for are not its curve: on
    // the GPU they are read back a few steps late, after the halt was asked
    if (data.runs[m.run]?.stopped != null && step > data.runs[m.run].stopped) return { opened: false };
    const opened = !(data.step.length && lastOf(data.step) >= step);
    if (opened) data.step.push(step);
    const r = data.runs[m.run];
    if (!r) return { opened };
    const at = data.step.lastIndexOf(step);
    while (r.logged.length < at) for (const k of SERIES) r[k].push(null);
    r.logged.push(finiteOrNull(m.logged_loss));
    r.true.push(finiteOrNull(m.true_loss));
    // a distance of 0 is the full-batch run's to itself: nothing to plot on a log scale
    r.dist.push(m.weight_distance > 0 && Number.isFinite(m.weight_distance) ? m.weight_distance : null);
    r.norm.push(finiteOrNull(m.grad_norm));
    return { opened, run: m.run };
  }

  // Run `run` of the lab (or twin) stopped at the lab's step `step`: its
  // curve ends there in a dot. The first stop counts.
  stop(twin, run, step) {
    (twin ? this.twin : this.main).runs[run].stopped ??= step + this.stepOffset;
  }

  // How far the curves are now, for cutting them back to it later (`cutBack`).
  mark() {
    return { points: this.main.step.length, twinPoints: this.twin.step.length, stepOffset: this.stepOffset };
  }

  // The curves as they were at `mark`, the lab's step `at` (offset
  // included), as a saved lab's page data has them (`load` takes it).
  cutBack(mark, at, withTwin) {
    return {
      stepOffset: mark.stepOffset,
      curves: { data: cutCurves(this.main, mark.points, at), twin: withTwin ? cutCurves(this.twin, mark.twinPoints, at) : null },
    };
  }

  // The curves as a saved lab's page data holds them (state.js): the twin's
  // only where the lab has one.
  saved(withTwin) {
    return { stepOffset: this.stepOffset, curves: { data: this.main, twin: withTwin ? this.twin : null } };
  }

  // Takes the curves of a saved lab's page data (`saved`, `cutBack`) if they
  // fit the runs `specs` and, where the lab has a twin, `twinSpecs` (else
  // null); returns whether they did. Curves that do not fit leave these as
  // they are.
  load(page, specs, twinSpecs) {
    const curves = page.curves ?? {};
    const fit = fitsRuns(curves.data, specs) && (!twinSpecs || fitsRuns(curves.twin, twinSpecs));
    if (fit) {
      this.main = curves.data;
      if (twinSpecs) this.twin = curves.twin;
      this.stepOffset = Number.isInteger(page.stepOffset) && page.stepOffset >= 0 ? page.stepOffset : 0;
    }
    return fit;
  }

  // What the charts draw (charts.js draw): the lab's curves and the twin's,
  // or null where the lab has none.
  drawn(withTwin) {
    return [this.main, withTwin ? this.twin : null];
  }

  // The element's curves(): {step: [], runs: [{...spec, logged, true, dist,
  // norm, stopped?}]}, copies of the steps, each run's spec (strategy,
  // micro_batch, …) beside its series; with a twin (`twinSpecs` not null)
  // its curves of the same shape as `twin`.
  view(specs, twinSpecs) {
    const of = (d, sp) => ({ step: [...d.step], runs: (sp ?? []).map((s, i) => ({ ...s, ...d.runs[i] })) });
    return { ...of(this.main, specs), ...(twinSpecs ? { twin: of(this.twin, twinSpecs) } : {}) };
  }

  // The curves as CSV, one row per step and run: the lab's with
  // `precision` ("f32" or "f64"), then the twin's (`twinSpecs` not null) as f64.
  csv(specs, twinSpecs, precision) {
    const lines = ["step,run,strategy,micro_batch,logged_loss,true_loss,weight_distance,grad_norm,precision"];
    const rows = (d, sp, precision) =>
      d.step.forEach((step, k) => {
        sp.forEach((s, i) => {
          const r = d.runs[i];
          // a stopped run has no rows past its last step
          if (k >= r.logged.length) return;
          lines.push([step, i, s.strategy, s.micro_batch, r.logged[k], r.true[k], r.dist[k] ?? 0, r.norm[k], precision].join(","));
        });
      });
    rows(this.main, specs, precision);
    if (twinSpecs) rows(this.twin, twinSpecs, "f64");
    return lines.join("\n") + "\n";
  }
}
