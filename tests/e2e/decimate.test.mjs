// The charts' thinning of long series (www/lab/decimate.js), in Node: bounded,
// aligned across columns, first and last point kept, short series untouched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { decimate, MAX_DRAWN } from "../../www/lab/decimate.js";

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
