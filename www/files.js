// The lab's files: a whole lab's state and a run's weights, as safetensors.
// A lab hands over its state (`state()`) and a run's weights (`weights(run)`)
// as typed arrays and takes them back the same way (`restore(state)`,
// `WebLab.create`'s weights); the file format is written and read by the
// module's full build (pkg-full/, web/files.rs), loaded on the first file,
// so the module every page loads carries no file codec.
import { loadGradlabFull } from "./wasm.js";

// `lab`'s state as a file, with `page` (a string: the page's settings and
// curves) and `twinBytes` (the f64 twin's state file, or undefined) inside.
export async function saveState(lab, page, twinBytes) {
  const state = await lab.state();
  return (await loadGradlabFull()).encodeState(state, page, twinBytes);
}

// What a state file holds, without building anything: {state, page, steps,
// config, twin}; rejects with what is wrong with the file ("state file: …").
export async function readState(bytes) {
  return (await loadGradlabFull()).decodeState(bytes);
}

// Puts a state file back into `lab` (which refuses one of other settings).
export async function restoreState(lab, bytes) {
  const { state } = await readState(bytes);
  await lab.restore(state);
}

// Run `run`'s weights as a file (GPT-2 names, float32).
export async function weightsFile(lab, run) {
  const weights = await lab.weights(run);
  return (await loadGradlabFull()).encodeWeights(lab.config(), weights);
}

// The weights in a safetensors file (ours or nanoGPT's names), flat, for the
// model a lab of `config` builds on `backend`; rejects naming the tensor
// that does not fit.
export async function readWeights(config, bytes, backend) {
  return (await loadGradlabFull()).decodeWeights(config, bytes, backend);
}
