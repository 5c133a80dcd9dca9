// The lab worker: trains off the page's main thread, so sliders, charts and
// the playground stay smooth while a step runs (issue 10). The page (remote.js)
// sends the wasm module it has already compiled, then requests that host.js
// answers; each answer goes back with the request's id.
import { loadGradlab, loadGradlabThreads } from "../wasm.js";
import { labHost } from "./host.js";

// The GPU devices this worker opened. A test, or a person in the console,
// destroys them to rehearse a lost GPU and the page's Recover.
self.gpuDevices = [];
if (self.GPUAdapter) {
  const request = GPUAdapter.prototype.requestDevice;
  GPUAdapter.prototype.requestDevice = async function (...args) {
    const device = await request.apply(this, args);
    self.gpuDevices.push(device);
    return device;
  };
}

let handle;
self.onmessage = async ({ data }) => {
  if (data.module) {
    try {
      // held while this worker lives: the page learns from it that the
      // worker stopped (remote.js watchWorker); the pool's workers hold
      // `${lock}/pool/i` each (the threads build's workerHelpers.js)
      if (data.lock && navigator.locks) {
        await new Promise((held) => navigator.locks.request(data.lock, () => (held(), new Promise(() => {}))));
        self.gradlabPoolLock = `${data.lock}/pool`;
      }
      // `threads`: the module is the threads build (pkg-threads/), started with that many
      handle = labHost(await (data.threads ? loadGradlabThreads(data.module, data.threads) : loadGradlab(data.module)));
      self.postMessage({ ready: true });
    } catch (e) {
      self.postMessage({ ready: false, error: String(e?.message ?? e) });
    }
    return;
  }
  const { id, request } = data;
  try {
    const { value, steps } = await handle(request);
    // typed arrays go back moved, not copied (files, weights, a state's vectors)
    const views = ArrayBuffer.isView(value) ? [value] : Array.isArray(value?.runs) ? value.runs.flatMap((r) => Object.values(r ?? {})) : [];
    const transfer = views.filter((v) => ArrayBuffer.isView(v)).map((v) => v.buffer);
    self.postMessage({ id, value, steps }, transfer);
  } catch (e) {
    self.postMessage({ id, error: String(e?.message ?? e) });
  }
};
