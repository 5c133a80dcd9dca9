// The lab's curve data model (www/lab/curves.js), in Node: metrics appended
// by step with a run behind padded, a stopped run's end, a rebuild that keeps
// the curves and numbers on from them, a checkpoint's cut, the saved shape
// loaded back (and refused where it does not fit), the element's curves()
// view and the CSV.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Curves } from "../../www/lab/curves.js";

const SPECS = [
  { strategy: "full", micro_batch: 4 },
  { strategy: "naive", micro_batch: 2 },
];
const metric = (step, run, loss, extra = {}) => ({ step, run, logged_loss: loss, true_loss: loss, weight_distance: run ? 0.5 : 0, grad_norm: 1, ...extra });

function trained(steps) {
  const c = new Curves();
  c.rebuild(false);
  c.setRuns(SPECS, null);
  for (let s = 1; s <= steps; s++) for (const run of [0, 1]) c.append(false, metric(s, run, 3 - s / 10));
  return c;
}

test("metrics append by step; a run behind is padded; a stopped run ends with a dot", () => {
  const c = new Curves();
  c.rebuild(false);
  c.setRuns(SPECS, null);
  assert.deepEqual(c.append(false, metric(1, 0, 2)), { opened: true, run: 0 });
  assert.deepEqual(c.append(false, metric(2, 0, 2)), { opened: true, run: 0 });
  // run 1's figures for step 1 never came: padded with null up to step 2
  assert.deepEqual(c.append(false, metric(2, 1, NaN)), { opened: false, run: 1 });
  assert.deepEqual(c.append(false, metric(2, 5, 1)), { opened: false }, "a run the curves do not have");
  c.stop(false, 1, 2);
  c.stop(false, 1, 9);
  assert.deepEqual(c.main.step, [1, 2]);
  assert.deepEqual(c.main.runs[1], { logged: [null, null], true: [null, null], dist: [null, 0.5], norm: [null, 1], stopped: 2 }, "the first stop counts");
  assert.deepEqual(c.main.runs[0].dist, [null, null], "the full batch's distance to itself is not plotted");
});

test("a rebuild that keeps the curves numbers the new lab's steps on from them, if the runs match", () => {
  const c = trained(3);
  c.rebuild(true);
  assert.deepEqual(c.main.step, [], "empty while the new lab builds");
  c.setRuns(SPECS, null);
  assert.equal(c.stepOffset, 3);
  c.append(false, metric(1, 0, 1));
  assert.deepEqual(c.main.step, [1, 2, 3, 4]);
  const other = trained(3);
  other.rebuild(true);
  other.setRuns([SPECS[0]], null);
  assert.equal(other.stepOffset, 0, "other runs: the curves start afresh");
  assert.deepEqual(other.main.step, []);
});

test("a checkpoint's cut and a saved lab's curves load back; curves that do not fit are refused", () => {
  const c = trained(2);
  const mark = c.mark();
  c.append(false, metric(3, 0, 1));
  c.append(false, metric(3, 1, NaN));
  c.stop(false, 1, 3);
  const cut = c.cutBack(mark, 2, false);
  assert.deepEqual(cut.curves.data.step, [1, 2]);
  assert.equal(cut.curves.data.runs[1].stopped, undefined, "stopped after the cut: not stopped then");
  assert.equal(cut.curves.twin, null);
  const d = new Curves();
  assert.ok(d.load(JSON.parse(JSON.stringify(cut)), SPECS, null));
  assert.deepEqual(d.main, cut.curves.data);
  const saved = JSON.parse(JSON.stringify(c.saved(false)));
  assert.deepEqual(Object.keys(saved), ["stepOffset", "curves"]);
  assert.ok(!d.load(saved, [SPECS[0]], null), "one run less");
  assert.ok(!d.load({ curves: { data: { step: [1], runs: [{ logged: [1, 2], true: [], dist: [], norm: [] }, {}] } } }, SPECS, null), "a series longer than the steps");
  assert.deepEqual(d.main, cut.curves.data, "a refused load leaves the curves as they were");
});

test("the element's curves() view and the CSV", () => {
  const c = trained(2);
  c.stop(false, 1, 2);
  const view = c.view(SPECS, null);
  assert.deepEqual(Object.keys(view), ["step", "runs"]);
  assert.deepEqual(view.runs[1], { ...SPECS[1], ...c.main.runs[1] });
  assert.notEqual(view.step, c.main.step, "the steps are a copy");
  assert.deepEqual(Object.keys(c.view(SPECS, [])), ["step", "runs", "twin"]);
  const lines = c.csv(SPECS, null, "f32").trimEnd().split("\n");
  assert.equal(lines[0], "step,run,strategy,micro_batch,logged_loss,true_loss,weight_distance,grad_norm,precision");
  assert.equal(lines.length, 5);
  assert.equal(lines[1], "1,0,full,4,2.9,2.9,0,1,f32");
});
