// Where the labs live: a table of WebLabs answering requests from the page
// (remote.js). It runs in the lab worker (worker.js) so a CPU step, a
// validation pass or a sample never holds the page's main thread; where no
// worker can be started (the elements loaded from another origin) it runs in
// the page itself, the same code, so the two behave alike.
//
// A request is {op: "create", config, backend, weights (a file's bytes or
// another lab's Float32Array)}, {op: "call", lab,
// method, args}, {op: "free", lab}, {op: "corpus", corpus} (fetch it ahead)
// or {op: "memory"}; the answer is {value, steps} (steps: the lab's
// lockstep count after the call) or throws.
import { readWeights, restoreState, saveState, weightsFile } from "../files.js";
import { ensureCorpus, loadGradlabFull, Serial, wasmMemoryBytes } from "../wasm.js";

// The lab's calls a page may make through the host (anything else is
// refused); remote.js gives its RemoteLab one method per name.
export const LAB_CALLS = [
  "step",
  "flush",
  "validationLoss",
  "sample",
  "tokenWeights",
  "tensorDistances",
  "weights",
  "state",
  "restore",
  "weightsSafetensors",
  "saveState",
  "restoreState",
  "halt",
  "halted",
  "deviceLost",
];
const CALLS = new Set(LAB_CALLS);

// The calls that write or read a file: the lab hands over or takes back
// typed arrays, the module's full build does the file (files.js).
const FILE_CALLS = {
  weightsSafetensors: (lab, run) => weightsFile(lab, run),
  saveState: (lab, page, twinBytes) => saveState(lab, page, twinBytes),
  restoreState: (lab, bytes) => restoreState(lab, bytes),
};

// What describes a lab and never changes, read once when it is built; the
// RemoteLab answers these at once.
export const LAB_INFO = ["backend", "gpuProblem", "onGpu", "runs", "config", "threads"];

export function labHost(gl) {
  const labs = new Map();
  let next = 1;
  return async function handle(request) {
    switch (request.op) {
      case "create": {
        const { config, backend, weights } = request;
        // the f64 reference ("reference", or false) is in the module's full build only
        const lib = backend === "reference" || backend === false ? await loadGradlabFull() : gl;
        // pasted text comes with the settings; a shipped corpus is fetched here, once
        if (!config?.text) await ensureCorpus(config?.corpus, lib);
        // a file's bytes (a picked .safetensors) are read for this lab's
        // model; a Float32Array (another lab's weights) is taken as it is
        let start = weights;
        if (weights instanceof Uint8Array) {
          // the settings first, so that their problems are not blamed on the file
          const problem = lib.validateLabConfig(config, backend);
          if (problem) throw new Error(problem);
          start = await readWeights(config, weights, backend).catch((e) => {
            throw new Error(`weights: ${e?.message ?? e}`);
          });
        }
        const lab = await lib.WebLab.create(config, backend, start);
        let info;
        try {
          info = Object.fromEntries(LAB_INFO.map((name) => [name, lab[name]()]));
        } catch (e) {
          // a lab the page cannot describe is one it cannot hold: not kept here
          lab.free();
          throw e;
        }
        const id = next++;
        // wasm-bindgen objects take one call at a time: each lab has its own queue
        labs.set(id, { lab, serial: new Serial() });
        return { value: { id, info }, steps: lab.steps() };
      }
      case "call": {
        const held = labs.get(request.lab);
        if (!held) throw new Error(`lab: ${request.method}() was called after free(); build a new lab`);
        if (!CALLS.has(request.method)) throw new Error(`lab: no method ${request.method}()`);
        return held.serial.run(async () => {
          const args = request.args ?? [];
          const file = FILE_CALLS[request.method];
          const value = await (file ? file(held.lab, ...args) : held.lab[request.method](...args));
          return { value, steps: held.lab.steps() };
        });
      }
      case "free": {
        const held = labs.get(request.lab);
        labs.delete(request.lab);
        // after the call in flight, if any
        await held?.serial.run(() => held.lab.free());
        return { value: undefined, steps: 0 };
      }
      case "corpus":
        // ahead of a lab that will use it; a failure is the lab's to report
        await ensureCorpus(request.corpus).catch(() => {});
        return { value: undefined, steps: 0 };
      case "memory":
        return { value: wasmMemoryBytes(), steps: 0 };
      default:
        throw new Error(`lab host: unknown request ${request.op}`);
    }
  };
}
