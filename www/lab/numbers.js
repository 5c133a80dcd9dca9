// How the charts write numbers: tick labels that never repeat (uPlot's
// `values` callback, for linear and log axes alike) and the exact figures the
// hover readouts show. Pure functions, no DOM, so Node tests import them as
// they are.

// `v` with `digits` significant digits: plain between 1e-3 and 1e5, else as
// 1.5e-4 (no trailing zeros either way).
export function sig(v, digits) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  return a >= 1e-3 && a < 1e5 ? String(+v.toPrecision(digits)) : expo(v, digits);
}

// `v` as 1.5e-4 with at most `digits` significant digits.
function expo(v, digits) {
  const [mantissa, exponent] = v.toExponential(digits - 1).split("e");
  return `${mantissa.includes(".") ? mantissa.replace(/\.?0+$/, "") : mantissa}e${exponent.replace("+", "")}`;
}

// Labels for the ticks `splits`, each with the fewest significant digits
// (at least `min`) that say the tick's value and tell every label from its
// neighbour: uPlot's own labels keep at most 3 decimals, which gave "0.001"
// twice on the sweep's gap axis and "5.557" four times on a logged loss
// spanning a few 1e-4.
// A tick within 1e-9 steps of zero is written 0 (not 1.1e-19, never "-0").
export function tickLabels(splits, incr = 0, min = 1) {
  const near0 = (v) => v === 0 || (incr > 0 && Math.abs(v) < incr * 1e-9);
  // a label must also say its tick (1500 is not "2000"), up to float noise
  const says = (label, v) => Math.abs(Number(label) - v) <= Math.abs(v) * 1e-9 + (incr > 0 ? incr * 1e-6 : 0);
  for (let d = min; d <= 17; d++) {
    const labels = splits.map((v) => (v == null || !Number.isFinite(v) ? "" : near0(v) ? "0" : sig(v, d)));
    if (!labels.every((l, i) => l === "" || says(l, splits[i]))) continue;
    // neighbours as the reader sees them: a tick uPlot left unlabelled (a
    // log axis thins its labels) is skipped
    const shown = labels.filter((l) => l !== "");
    if (shown.every((l, i) => i === 0 || l !== shown[i - 1])) return labels;
  }
  return splits.map((v) => (v == null ? "" : String(v)));
}

// As uPlot's axis `values` option: (u, splits, axisIdx, space, incr).
export const distinctTicks = (u, splits, axisIdx, space, incr) => tickLabels(splits, incr);

// A value as a readout shows it: 8 significant digits, f32's precision and
// a little more, so two losses near 5 that differ in float rounding (3e-7)
// read differently; a small figure as 1.2345e-3.
export const exact = (v) => (v == null || !Number.isFinite(v) ? "—" : v === 0 ? "0" : Math.abs(v) >= 0.01 && Math.abs(v) < 1e5 ? String(+v.toPrecision(8)) : expo(v, 5));
