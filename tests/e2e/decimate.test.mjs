// The charts' thinning of long series (www/lab/decimate.js), in Node: bounded,
// aligned across columns, first and last point kept, short series untouched;
// the charts' preparation of only the kept points (keptIndices, gaps with
// `keep`) equal to thinning the whole, on fresh random curves (seed printed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { decimate, keptIndices, MAX_DRAWN } from "../../www/lab/decimate.js";
import { gaps, GAP_WINDOW } from "../../www/lab/curves.js";

test("long series are thinned to at most MAX_DRAWN points, aligned, ends kept", () => {
  for (const n of [1, 2, MAX_DRAWN - 1, MAX_DRAWN, MAX_DRAWN + 1, 2 * MAX_DRAWN + 7, 30_011, 100_000]) {
    const x = Array.from({ length: n }, (_, i) => i + 1);
    const y = x.map((v) => (v % 3 === 0 ? null : 1 / v));
    const [dx, dy] = decimate([x, y]);
    assert.ok(dx.length <= MAX_DRAWN, `n=${n}: ${dx.length} points drawn`);
    assert.equal(dx.length, dy.length);
    if (n <= MAX_DRAWN) assert.equal(dx, x, "short series are the same arrays");
    if (n > 0) {
      assert.equal(dx[0], 1);
      assert.equal(dx[dx.length - 1], n, `n=${n}: the last step is drawn`);
    }
    dx.forEach((v, i) => assert.equal(dy[i], y[v - 1], "each kept y stays with its x"));
    if (n > MAX_DRAWN) assert.ok(dx.length > MAX_DRAWN / 2, `n=${n}: not thinned more than needed (${dx.length})`);
  }
  assert.deepEqual(decimate([[]]), [[]]);
});

test("a draw that works out only the kept points draws what thinning the whole curves drew", () => {
  const seed = Number(process.env.DECIMATE_SEED ?? Date.now() % 2 ** 31);
  console.log(`# decimate seed ${seed}: DECIMATE_SEED=${seed} replays it`);
  let s = seed >>> 0;
  // mulberry32
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  for (const n of [0, 1, 2, GAP_WINDOW - 1, GAP_WINDOW, GAP_WINDOW + 1, MAX_DRAWN + 1, 2 * MAX_DRAWN + 7, 17_647]) {
    const x = Array.from({ length: n }, (_, i) => i + 1);
    const keep = keptIndices(n);
    assert.deepEqual(keep.map((i) => x[i]), decimate([x])[0], `n=${n}: the same points kept`);
    // losses with gaps (a missing value) and a run stopped part way
    const loss = (len) => Array.from({ length: len }, () => (rand() < 0.05 ? null : 5 + rand()));
    const d = { step: x, runs: [{ true: loss(n) }, { true: loss(n) }, { true: loss(Math.floor(n * (0.3 + 0.6 * rand()))) }] };
    const whole = gaps(d, "true");
    const kept = gaps(d, "true", GAP_WINDOW, keep);
    whole.forEach((ys, r) =>
      keep.forEach((i) => {
        const [a, b] = [ys[i] ?? null, kept[r][i] ?? null];
        assert.ok(a == null ? b == null : Math.abs(a - b) < 1e-12, `seed ${seed}, n=${n}, run ${r + 1}, step ${i + 1}: ${a} against ${b}`);
      }),
    );
  }
});
