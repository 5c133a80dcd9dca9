// Thinning long series for drawing: uPlot redraws every point on every frame,
// so after a long run the live charts would slow the page down. Columns are
// thinned together (the x column first) to at most `max` points: every k-th
// point, the first and the last always kept. The lab's data itself stays
// whole, for the CSV export and the element's curves().
export const MAX_DRAWN = 2000;

export function decimate(columns, max = MAX_DRAWN) {
  const n = columns[0]?.length ?? 0;
  if (n <= max) return columns;
  const keep = keptIndices(n, max);
  return columns.map((c) => keep.map((i) => c[i]));
}

// The indices `decimate` keeps of `n` points, ascending: for preparing only
// the points that will be drawn, so that a draw costs the points drawn and
// not the steps taken.
export function keptIndices(n, max = MAX_DRAWN) {
  const k = n <= max ? 1 : Math.ceil((n - 1) / (max - 1));
  const keep = [];
  for (let i = 0; i < n; i += k) keep.push(i);
  if (n > 0 && keep[keep.length - 1] !== n - 1) keep.push(n - 1);
  return keep;
}
