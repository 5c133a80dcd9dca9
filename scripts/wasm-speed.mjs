// Steps per second of the page's f32 CPU path in two or more builds of the
// module, side by side in one Node process, rounds interleaved so a drift in
// the machine's speed falls on every build alike (BENCHMARKS.md, "module
// size"). Each argument is a folder holding wasm-bindgen's `--target web`
// output (gradlab.js, gradlab_bg.wasm), e.g. dist/pkg and a copy of an older one.
// BACKEND=reference needs the module's full build, dist/pkg-full: dist/pkg
// leaves the f64 reference out.
//
//   node scripts/wasm-speed.mjs dist/pkg /tmp/other-build [ROUNDS=7 STEPS=5 BACKEND=cpu]
import { readFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const dirs = process.argv.slice(2);
if (dirs.length === 0) {
  console.error("usage: node scripts/wasm-speed.mjs BUILD_DIR [BUILD_DIR ...]");
  process.exit(2);
}
const positive = (name, fallback) => {
  const x = Number(process.env[name] ?? fallback);
  if (!Number.isInteger(x) || x < 1) throw new Error(`${name}: must be a whole number above 0, got ${process.env[name]}`);
  return x;
};
const rounds = positive("ROUNDS", 7);
const steps = positive("STEPS", 5);
const backend = process.env.BACKEND ?? "cpu";

const labs = [];
for (const dir of dirs) {
  const glue = join(resolve(dir), "gradlab.js");
  if (!existsSync(glue)) throw new Error(`${dir}: no gradlab.js there (wasm-bindgen --target web output expected)`);
  // a query string per folder: each build is its own module instance
  const gl = await import(`${pathToFileURL(glue)}?build=${encodeURIComponent(dir)}`);
  gl.initSync({ module: readFileSync(join(dir, "gradlab_bg.wasm")) });
  const corpus = gl.corpora()[0];
  if (!gl.corpusAvailable(corpus.name)) {
    gl.provideCorpus(corpus.name, corpus.files.map((f) => readFileSync(join("data/corpus", f), "utf8")));
  }
  labs.push(await gl.WebLab.create({}, backend));
}
const times = dirs.map(() => []);
for (let round = 0; round < rounds; round++) {
  for (const [i, lab] of labs.entries()) {
    const start = performance.now();
    await lab.step(steps);
    await lab.flush();
    times[i].push((performance.now() - start) / steps);
  }
}
const median = (xs) => xs.slice().sort((a, b) => a - b)[xs.length >> 1];
const first = median(times[0]);
for (const [i, dir] of dirs.entries()) {
  const ms = median(times[i]);
  console.log(`${dir}: ${ms.toFixed(1)} ms per lab step (median of ${rounds}), ${(ms / first).toFixed(3)} x the first`);
}
