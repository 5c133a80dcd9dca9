// Thinning long series for drawing: uPlot redraws every point on every frame,
// so after a long run the live charts would slow the page down. Columns are
// thinned together (the x column first) to at most `max` points: every k-th
// point, the first and the last always kept. The lab's data itself stays
// whole, for the CSV export and the element's curves().
export const MAX_DRAWN = 2000;

export function decimate(columns, max = MAX_DRAWN) {
  const n = columns[0]?.length ?? 0;
  if (n <= max) return columns;
  const k = Math.ceil((n - 1) / (max - 1));
  const keep = (i) => i % k === 0 || i === n - 1;
  return columns.map((c) => c.filter((_, i) => keep(i)));
}
