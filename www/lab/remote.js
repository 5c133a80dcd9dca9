// The page's side of the labs: `createLab` builds a WebLab in a lab worker
// (worker.js) and answers with a RemoteLab, which has the WebLab's methods.
// Those that compute (step, flush, sample, ...) resolve when the worker has
// answered; those that describe the lab (backend, runs, config, steps, ...)
// answer at once from what the worker last said. Where no worker can be
// started (the elements loaded from another origin, which may not start
// one), the labs live in the page, behind the same requests (host.js).
import { fetchProblem, packageFile } from "../assets.js";
import { gradlabModule, gradlabThreadsModule, loadGradlab, threadCount } from "../wasm.js";
import { LAB_CALLS, LAB_INFO, labHost } from "./host.js";

// A new lab worker. The literal `new Worker(new URL(…), {type: "module"})`
// is the form bundlers recognise and bundle as a worker (assets.js); where
// the page named the package's folder, the worker is the package's own
// script there. Throws where the page may not start it (the elements loaded
// from another origin).
function newLabWorker() {
  const named = packageFile("www/lab/worker.js", null);
  if (named) return new Worker(named, { type: "module", name: "gradlab-lab" });
  // the options written out here: Vite reads them from the source
  return new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "gradlab-lab" });
}

// Why no lab worker could start, once a lab has fallen back to the page's
// own thread (null while workers start): for the lab's notice.
let workerProblem = null;
export const labWorkerProblem = () => workerProblem;

// how long the worker may take to start the module before the page gives up on it
const WORKER_START_MS = 20_000;

// Labs on the GPU share the first worker, and so one device. A lab on the
// CPU goes to the worker holding the fewest labs, and a new one starts while
// cores are left, so that the f64 twin of precision "both", or two labs on
// one page, step at the same time.
const POOL = Math.max(1, Math.min(4, globalThis.navigator?.hardwareConcurrency ?? 2));

// {start: resolves to the worker's send function, or null; labs: how many it holds}
const workers = [];
// the host in the page, where no worker can start
let pageHost = null;
let noWorker = false;

function worker(i) {
  if (!workers[i]) {
    const entry = { labs: 0 };
    // a worker that stopped leaves the table: the next lab placed starts another
    entry.start = startLabWorker(() => workers.includes(entry) && workers.splice(workers.indexOf(entry), 1));
    workers[i] = entry;
  }
  return workers[i];
}

// One pool's worth of threads per page: the pool workers of every lab
// worker together never outnumber the cores (a lab worker that would get
// fewer than two takes pkg/, on its own thread).
let poolThreads = 0;

// A lab worker on the threads build where the page can have threads, else
// on pkg/; once a threads worker has failed to start (its build could not be
// fetched, its pool could not start) or its pool has stopped, every later
// one takes pkg/ at once. `gone()`: called once if the worker stops.
let threadsFailed = false;
async function startLabWorker(gone) {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  const threads = Math.min(threadCount(), cores - poolThreads);
  if (threads >= 2 && !threadsFailed && typeof Worker === "function") {
    let send = null;
    poolThreads += threads;
    try {
      send = await startWorker(await gradlabThreadsModule(), threads, () => {
        poolThreads -= threads;
        gone();
      });
    } catch (e) {
      threadsFailed = true;
      console.warn(`gradlab: the threads build (pkg-threads/) could not start, so the lab trains on one thread: ${e?.message ?? e}`);
    }
    if (send) return send;
    poolThreads -= threads;
  }
  return startWorker(await gradlabModule(), 0, gone);
}

// Each lab worker holds a Web Lock named for it, and each of its pool's
// workers one named after it (worker.js, the threads build's pool): a lock
// is let go only when its holder stops (closed, terminated, crashed), which
// no event on a Worker says. The page waits on them to learn it.
const PAGE_ID = Math.random().toString(36).slice(2);
let lockCount = 0;
const locks = globalThis.navigator?.locks;

// Calls `stopped(what)` once, when the worker holding `name`, or one of the
// `threads` pool workers holding `${name}/pool/i`, lets its lock go.
function watchWorker(name, threads, stopped) {
  if (!locks) return;
  locks.request(name, () => stopped("the lab's worker stopped")).catch(() => {});
  for (let i = 0; i < threads; i++) locks.request(`${name}/pool/${i}`, () => stopped(`thread ${i + 1} of the lab's pool of ${threads} stopped`)).catch(() => {});
}

// The worker's script as the browser fetched it, to say why it did not
// start: a worker's error event carries no status or URL.
async function workerScriptProblem() {
  const url = packageFile("www/lab/worker.js", null) ?? new URL("./worker.js", import.meta.url);
  try {
    const response = await fetch(url);
    const type = response.headers.get("Content-Type") ?? "";
    if (!response.ok || !/javascript|ecmascript/.test(type)) return fetchProblem({ name: "its script", kind: "JavaScript" }, url, response);
  } catch (e) {
    return `its script ${url} could not be fetched (${e?.message ?? e})`;
  }
  return "";
}

// Where a new lab lives: {send, left} (`left()` when it is freed).
async function placeLab(onGpu) {
  if (!noWorker) {
    let chosen = worker(0);
    if (!onGpu) {
      chosen = workers.reduce((a, w) => (w.labs < a.labs ? w : a));
      if (chosen.labs > 0 && workers.length < POOL) chosen = worker(workers.length);
    }
    chosen.labs++;
    const send = await chosen.start;
    if (send) return { send, left: () => chosen.labs--, inPage: false };
    chosen.labs--;
    noWorker = true;
  }
  if (!workerProblem) console.warn(`gradlab: no lab worker could start, so the labs train on the page's main thread (the page may stutter while a step runs): ${lastWorkerFailure}`);
  workerProblem = `No lab worker could start, so the lab trains on the page's own thread (the page may stutter while a step runs): ${lastWorkerFailure}`;
  pageHost ??= loadGradlab().then(labHost);
  return { send: await pageHost, left: () => {}, inPage: true };
}

// The lab worker with the module started in it (with `threads`: the
// threads build, its pool that many workers), or null where none can run.
let lastWorkerFailure = "";
async function startWorker(module, threads = 0, gone = () => {}) {
  let worker;
  const lock = `gradlab-${PAGE_ID}-${++lockCount}`;
  try {
    worker = newLabWorker();
  } catch (e) {
    lastWorkerFailure = `the browser refused it (${e?.message ?? e}; a worker's script must come from the page's origin)`;
    return null;
  }
  // true, or why not
  const started = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve(`it did not start in ${WORKER_START_MS / 1000} s`), WORKER_START_MS);
    worker.onmessage = ({ data }) => {
      clearTimeout(timer);
      resolve(data.ready === true || data.error || "it did not start");
    };
    worker.onerror = async (e) => {
      e.preventDefault();
      clearTimeout(timer);
      resolve(e.message || (await workerScriptProblem()) || "its script failed to load or run, and the browser gave no reason");
    };
    worker.postMessage({ module, threads, lock });
  });
  if (started !== true) {
    worker.terminate();
    lastWorkerFailure = started;
    // the threads build's caller falls back to pkg/ and says why
    if (threads) throw new Error(started);
    return null;
  }
  const pending = new Map();
  let next = 1;
  worker.onmessage = ({ data }) => {
    const answer = pending.get(data.id);
    pending.delete(data.id);
    if (data.error !== undefined) answer?.reject(new Error(data.error));
    else answer?.resolve({ value: data.value, steps: data.steps });
  };
  // the worker failed (out of memory, say): every request in flight fails in words
  worker.onerror = (e) => {
    e.preventDefault();
    for (const { reject } of pending.values()) reject(new Error(`the lab's worker failed (${e.message || "no reason given"}); press Reset to build the lab again`));
    pending.clear();
  };
  // Stopped (its lock let go, watchWorker): the worker is ended, with its
  // pool, every request in flight or to come fails saying why, and the page
  // starts another worker for the next lab; a pool that stopped leaves the
  // later workers on pkg/, one thread each.
  const send = (request) =>
    new Promise((resolve, reject) => {
      if (send.lost) return reject(lostError(send.lost));
      const id = next++;
      pending.set(id, { resolve, reject });
      worker.postMessage({ id, request });
    });
  send.lost = null;
  watchWorker(lock, threads, (what) => {
    if (send.lost) return;
    send.lost = what;
    if (threads) threadsFailed = true;
    console.warn(`gradlab: ${what}; its labs are lost, the next ones start in a new worker${threads ? " on one thread" : ""}`);
    worker.terminate();
    for (const { reject } of pending.values()) reject(lostError(what));
    pending.clear();
    gone();
  });
  return send;
}

const lostError = (what) => Object.assign(new Error(`${what}, and the labs in it with it`), { workerLost: what });

// Starts the first worker and has it fetch `corpus` while the page is still
// getting ready, so the first lab is built sooner; labs are placed as ever.
export function prepareLabs(corpus) {
  if (noWorker) return;
  worker(0).start.then((send) => send?.({ op: "corpus", corpus }).catch(() => {}));
}

// Bytes of linear memory the labs' modules hold, in every worker (or in the
// page, where none started).
export async function labMemoryBytes() {
  const sends = [...(await Promise.all(workers.map((w) => w.start))), await pageHost];
  const bytes = await Promise.all(sends.filter(Boolean).map(async (send) => (await send({ op: "memory" })).value));
  return bytes.reduce((a, b) => a + b, 0);
}

// Whether `lab` computes on the page's own thread, where a loop must leave
// frames for the page to paint (a RemoteLab says; any other lab is taken to).
export const onPageThread = (lab) => lab.onPageThread?.() ?? true;

// Builds a lab (as WebLab.create) where the labs live.
export async function createLab(config, backend, weights) {
  const { send, left, inPage } = await placeLab(backend === "webgpu" || backend === true);
  try {
    const { value, steps } = await send({ op: "create", config, backend, weights });
    return new RemoteLab(send, value.id, value.info, steps, left, inPage);
  } catch (e) {
    left();
    throw e;
  }
}

// WebLab's API: a request per call (LAB_CALLS), and what describes the lab
// (LAB_INFO) answered at once; the step count as of the last answer.
export class RemoteLab {
  #send;
  #id;
  #info;
  #steps;
  #freed = false;
  #left;
  #inPage;

  constructor(send, id, info, steps, left, inPage = false) {
    this.#send = send;
    this.#id = id;
    this.#info = info;
    this.#steps = steps;
    this.#left = left;
    this.#inPage = inPage;
  }

  // Whether the lab lives on the page's own thread (no worker could start).
  onPageThread() {
    return this.#inPage;
  }

  // Why the lab is gone with its worker (or a thread of its pool), or null.
  workerLost() {
    return this.#send.lost ?? null;
  }

  static {
    for (const name of LAB_CALLS) {
      RemoteLab.prototype[name] = function (...args) {
        return this.#call(name, ...args);
      };
    }
    for (const name of LAB_INFO) {
      RemoteLab.prototype[name] = function () {
        return this.#info[name];
      };
    }
  }

  async #call(method, ...args) {
    if (this.#freed) throw new Error(`lab: ${method}() was called after free(); build a new lab with createLab`);
    const { value, steps } = await this.#send({ op: "call", lab: this.#id, method, args });
    this.#steps = steps;
    return value;
  }

  steps() {
    return this.#steps;
  }

  // Frees the lab's memory (and GPU buffers) once the call in flight has
  // finished; a second free does nothing.
  free() {
    if (this.#freed) return;
    this.#freed = true;
    this.#left();
    this.#send({ op: "free", lab: this.#id }).catch(() => {});
  }

  // what `using` calls: free(), so a second dispose does nothing
  [Symbol.dispose ?? Symbol.for("gradlab.dispose")]() {
    this.free();
  }
}
