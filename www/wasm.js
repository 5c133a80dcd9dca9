// Loads the gradlab WebAssembly module once, relative to this file, so the
// site works under any sub-path.
//
// The module comes in three builds of the same API (scripts/build-site.mjs):
// pkg/, which every page loads; pkg-threads/, which a lab worker loads
// instead on a cross-origin isolated page (threadCount below); and
// pkg-full/, which adds the rarely used
// parts: the f64 reference's lab (precision f64 or both), the benchmark
// page's matmul (WebBench) and the file codecs (files.js: state and weights
// as safetensors). pkg-full/ is loaded only where one of those is asked for
// (`loadGradlabFull`), so the rest of the time a page carries a smaller
// module.
import init, * as gradlab from "../pkg/gradlab.js";
import { fetchPackageFile, packageFile } from "./assets.js";

// The three builds' modules, each named literally so that bundlers copy it (assets.js).
const PKG_WASM = () => packageFile("pkg/gradlab_bg.wasm", new URL("../pkg/gradlab_bg.wasm", import.meta.url));
const FULL_WASM = () => packageFile("pkg-full/gradlab_bg.wasm", new URL("../pkg-full/gradlab_bg.wasm", import.meta.url));
const THREADS_WASM = () => packageFile("pkg-threads/gradlab_bg.wasm", new URL("../pkg-threads/gradlab_bg.wasm", import.meta.url));

let ready;
let memory;
let compiled;
// Loads the module once; `module`, a WebAssembly.Module compiled elsewhere
// (the page's, handed to the lab worker), saves compiling it again.
export function loadGradlab(module) {
  ready ??= (async () => {
    compiled = module ?? (await compileGradlab());
    const exports = await init({ module_or_path: compiled });
    memory = exports.memory;
    guardFreedLabs(gradlab.WebLab);
    guardFree(gradlab.WebPlayground);
    return gradlab;
  })();
  // a module that could not be fetched is tried again next time (Reset)
  ready.catch(() => (ready = undefined));
  return ready;
}

// The compiled module, to hand to a worker.
export const gradlabModule = () => loadGradlab().then(() => compiled);

// Threads: where the page is cross-origin isolated (served with COOP and
// COEP, scripts/serve.mjs) a lab worker loads the third build, pkg-threads/,
// whose f32 CPU backend shares each step among a pool of Web Workers over
// one shared memory (src/cpu/threads.rs). How many: the cores the browser
// reports, at most 8; 0 where there can be no threads (a plain static host,
// one core), and the lab worker then loads pkg/ as ever.
export function threadCount() {
  const cores = globalThis.navigator?.hardwareConcurrency ?? 1;
  return globalThis.crossOriginIsolated === true && typeof SharedArrayBuffer === "function" && cores > 1 ? Math.min(cores, 8) : 0;
}

// how long a threads build's pool may take to start before the worker gives up on it
const POOL_START_MS = 10_000;

// The threads build compiled (not started), to hand to a lab worker.
let threadsCompiled;
export function gradlabThreadsModule() {
  threadsCompiled ??= compileGradlab(THREADS_WASM()).catch((e) => {
    threadsCompiled = undefined;
    throw e;
  });
  return threadsCompiled;
}

// In a lab worker: the threads build started from `module`, with its pool
// of `threads` workers, as this thread's gradlab (loadGradlab then answers
// it). Rejects where the pool cannot start; the worker then takes pkg/.
export function loadGradlabThreads(module, threads) {
  if (ready) return Promise.reject(new Error("loadGradlabThreads: this thread has loaded a gradlab module already"));
  ready = (async () => {
    const lib = await import("../pkg-threads/gradlab.js");
    const exports = await lib.default({ module_or_path: module });
    // a pool worker that cannot load leaves initThreadPool waiting for ever
    let timer;
    const late = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`its pool of ${threads} workers did not start in ${POOL_START_MS / 1000} s`)), POOL_START_MS)));
    await Promise.race([lib.initThreadPool(threads), late]).finally(() => clearTimeout(timer));
    memory = exports.memory;
    guardFreedLabs(lib.WebLab);
    return lib;
  })();
  ready.catch(() => (ready = undefined));
  return ready;
}

// The build with the rarely used parts (see the top of this file), loaded
// once, on first use, in the thread that asks (the lab worker for a
// reference lab, the benchmark page for WebBench).
let fullReady;
let fullMemory;
export function loadGradlabFull() {
  fullReady ??= (async () => {
    const full = await import("../pkg-full/gradlab.js");
    const exports = await full.default({ module_or_path: await compileGradlab(FULL_WASM()) });
    fullMemory = exports.memory;
    guardFreedLabs(full.WebLab);
    return full;
  })().catch((e) => {
    // tried again next time
    fullReady = undefined;
    throw new Error(`loading the module's full build (pkg-full/) failed: ${e?.message ?? e}`, { cause: e });
  });
  return fullReady;
}

// The module at `url` compiled; what came back instead of one (a 404, an
// HTML page, a file that is not wasm) is said naming the URL.
async function compileGradlab(url = PKG_WASM()) {
  const what = { name: "gradlab's WebAssembly module", kind: "wasm" };
  const response = await fetchPackageFile(url, what);
  // a host that serves .wasm under another MIME type cannot stream it
  const bytes = await response.arrayBuffer();
  const magic = new Uint8Array(bytes, 0, Math.min(4, bytes.byteLength));
  if (!(magic.length === 4 && magic[0] === 0 && magic[1] === 0x61 && magic[2] === 0x73 && magic[3] === 0x6d)) {
    const start = [...magic].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new Error(`${what.name} from ${url} is not WebAssembly (it starts ${start || "empty"}, ${response.headers.get("Content-Type") || "no content type"}): is the server answering that path with another file?`);
  }
  return WebAssembly.compile(bytes);
}

// Bytes of the modules' linear memories (they only grow), for scripts/soak.mjs.
export const wasmMemoryBytes = () => (memory?.buffer.byteLength ?? 0) + (fullMemory?.buffer.byteLength ?? 0);

// The lab's calls that answer with a promise (src/web/lab.rs): after free()
// they reject, the others throw.
const LAB_PROMISES = new Set(["step", "flush", "validationLoss", "sample", "tensorDistances", "weights", "state", "restore"]);

// A call on a freed lab says so, instead of wasm-bindgen's "null pointer
// passed to rust"; free() a second time does nothing.
function guardFreedLabs(WebLab) {
  const proto = WebLab.prototype;
  for (const name of Object.getOwnPropertyNames(proto)) {
    const call = proto[name];
    if (name === "constructor" || typeof call !== "function" || name.startsWith("__")) continue;
    proto[name] = function (...args) {
      if (!this.__wbg_ptr) {
        if (name === "free") return undefined;
        const freed = new Error(`lab: ${name}() was called after free(); build a new lab with WebLab.create`);
        if (LAB_PROMISES.has(name)) return Promise.reject(freed);
        throw freed;
      }
      return call.apply(this, args);
    };
  }
  // `using` and an explicit dispose call free() as guarded above: the glue's
  // own Symbol.dispose is the unguarded free, which throws on a freed lab
  if (typeof Symbol.dispose === "symbol") proto[Symbol.dispose] = proto.free;
}

// free() a second time, or Symbol.dispose after free(), does nothing
// (wasm-bindgen's own says "null pointer passed to rust").
function guardFree(cls) {
  const free = cls.prototype.free;
  cls.prototype.free = function () {
    if (this.__wbg_ptr) free.call(this);
  };
  if (typeof Symbol.dispose === "symbol") cls.prototype[Symbol.dispose] = cls.prototype.free;
}

// The model presets, from the one list in Rust (src/web/catalog.rs
// `presets()`), smallest first: [{name, vocab_size, block_size, n_layer,
// n_head, n_embd, parameters}].
let presetList;
export function loadPresets() {
  presetList ??= loadGradlab().then((gl) => gl.presets());
  return presetList;
}

// The shipped corpora (src/web/catalog.rs `corpora()`), the default first:
// [{name, title, documents}]. The page builds its corpus choice from this.
let corpusList;
export function loadCorpora() {
  corpusList ??= loadGradlab().then((gl) => gl.corpora());
  return corpusList;
}

// A shipped corpus the module does not carry (the site's build leaves them
// out) is fetched from data/corpus/ beside the page and handed over, once
// to each module that asks (`module`: a loaded build, the one every page
// loads when left out; a second build's fetch comes from the browser's
// cache); resolves when a lab can use it. Unknown names resolve too: the
// lab's own validation refuses them in words.
const corpusLoads = new WeakMap();
// each file of data/corpus/, named literally so that bundlers copy it (assets.js);
// scripts/build-package.mjs checks that every file there is listed
const CORPUS_FILES = {
  "kjv-genesis-ruth.txt": () => packageFile("data/corpus/kjv-genesis-ruth.txt", new URL("../data/corpus/kjv-genesis-ruth.txt", import.meta.url)),
  "kjv-genesis-ruth.refs": () => packageFile("data/corpus/kjv-genesis-ruth.refs", new URL("../data/corpus/kjv-genesis-ruth.refs", import.meta.url)),
  "devils-dictionary.txt": () => packageFile("data/corpus/devils-dictionary.txt", new URL("../data/corpus/devils-dictionary.txt", import.meta.url)),
};
export async function ensureCorpus(name, module) {
  const gl = module ?? (await loadGradlab());
  // no name: the lab's default, the first shipped corpus
  name ||= gl.corpora()[0]?.name;
  if (!corpusLoads.has(gl)) corpusLoads.set(gl, new Map());
  const loads = corpusLoads.get(gl);
  if (!loads.has(name)) {
    const load = (async () => {
      let available;
      try {
        available = gl.corpusAvailable(name);
      } catch {
        return;
      }
      if (available) return;
      const corpus = gl.corpora().find((c) => c.name === name);
      const texts = await Promise.all(
        corpus.files.map(async (file) => {
          const url = CORPUS_FILES[file];
          if (!url) throw new Error(`corpus ${name}: its file ${file} is not among the package's corpora (www/wasm.js CORPUS_FILES)`);
          const response = await fetchPackageFile(url(), { name: `corpus ${name} (${file})`, kind: "text" });
          return response.text();
        }),
      );
      gl.provideCorpus(name, texts);
    })();
    // a failed fetch is tried again next time
    loads.set(name, load.catch((e) => {
      loads.delete(name);
      throw e;
    }));
  }
  return loads.get(name);
}

// wasm-bindgen objects allow one call at a time; chain every call through this.
export class Serial {
  #tail = Promise.resolve();
  run(fn) {
    const next = this.#tail.then(fn);
    this.#tail = next.catch(() => {});
    return next;
  }
}

// wgpu cannot read the adapter's name in a browser; WebGPU's adapter.info can
// (e.g. "google swiftshader"). Empty when there is no WebGPU.
let adapterName;
export function browserAdapterName() {
  adapterName ??= (async () => {
    try {
      const info = (await navigator.gpu?.requestAdapter())?.info;
      return [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ");
    } catch {
      return "";
    }
  })();
  return adapterName;
}

// The name of this browser's WebGPU adapter when it is a software renderer
// (no GPU behind it: SwiftShader, llvmpipe, WARP, or one the browser marks as
// a fallback), which steps slower than gradlab's f32 CPU backend; "" when
// the adapter is a real GPU or there is no WebGPU.
let softwareName;
export function softwareAdapter() {
  softwareName ??= (async () => {
    try {
      const adapter = await navigator.gpu?.requestAdapter();
      if (!adapter) return "";
      const name = await browserAdapterName();
      const fallback = adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false;
      return fallback || /swiftshader|llvmpipe|lavapipe|softpipe|software|warp|basic render/i.test(name) ? name || "a fallback adapter" : "";
    } catch {
      return "";
    }
  })();
  return softwareName;
}

// The backend a lab of `values` is built on (WebLab.create), and why when
// "auto" chose the CPU: {backend: "webgpu" | "cpu" | "reference", why}.
export async function backendFor(values) {
  if (values.precision === "f64") return { backend: "reference", why: "" };
  if (values.device === "cpu") return { backend: "cpu", why: "" };
  // without WebGPU the lab itself falls back to the f32 CPU and says why (gpuProblem)
  if (values.device === "webgpu" || !("gpu" in navigator)) return { backend: "webgpu", why: "" };
  const software = await softwareAdapter();
  return software
    ? { backend: "cpu", why: `WebGPU here is a software renderer (${software}), slower than the CPU; choose device webgpu to use it anyway` }
    : { backend: "webgpu", why: "" };
}

// `lab.backend()` with the browser's name for an adapter wgpu calls unnamed.
export async function backendLabel(lab) {
  const label = lab.backend();
  const name = label.includes("unnamed adapter") ? await browserAdapterName() : "";
  return name ? label.replace("unnamed adapter", name) : label;
}
