// Timing for the benchmark page (bench.js, gptstep.js): calls timed in turns.
// This machine's speed drifts by 2× within a minute, so two libraries timed
// one after the other can read anything; timed in turns, a ratio is taken
// within a round, and what drifts slower than a round cancels out.

// the middle of `xs` (the upper one of an even count)
export const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// Times each of `calls` (a map of name to an async function that runs
// `count` operations and waits for them) in turns: one warm-up call each
// (pipelines compiled, buffers resident), one timed call that sets its batch
// size, so a batch lasts about `seconds` (at most `maxCount` operations),
// then `rounds` rounds, each a batch of every call in turn. `onRound(i)` is
// told as each round starts. Resolves, per name, to {seconds: the median
// seconds per operation, overFirst: the median over rounds of its time over
// the first call's in the same round, count: its batch size, samples: its
// seconds per operation, round by round}.
export async function timeInTurns(calls, { rounds = 7, seconds = 0.25, maxCount = 200, onRound = () => {} } = {}) {
  const names = Object.keys(calls);
  const count = {};
  for (const name of names) {
    await calls[name](1);
    const start = performance.now();
    await calls[name](1);
    const single = Math.max((performance.now() - start) / 1000, 1e-4);
    count[name] = Math.max(1, Math.min(maxCount, Math.round(seconds / single)));
  }
  const samples = Object.fromEntries(names.map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    onRound(round);
    for (const name of names) {
      const start = performance.now();
      await calls[name](count[name]);
      samples[name].push((performance.now() - start) / 1000 / count[name]);
    }
  }
  const first = samples[names[0]];
  return Object.fromEntries(
    names.map((name) => [
      name,
      { seconds: median(samples[name]), overFirst: median(samples[name].map((s, r) => s / first[r])), count: count[name], samples: samples[name] },
    ]),
  );
}
