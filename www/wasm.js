// Loads the gradlab WebAssembly module once, relative to this file, so the
// site works under any sub-path.
import init, * as gradlab from "../pkg/gradlab.js";

let ready;
export function loadGradlab() {
  ready ??= init({ module_or_path: new URL("../pkg/gradlab_bg.wasm", import.meta.url) }).then(() => gradlab);
  return ready;
}

// The model presets, from the one list in Rust (web.rs `presets()`), smallest
// first: [{name, vocab_size, block_size, n_layer, n_head, n_embd, parameters}].
let presetList;
export function loadPresets() {
  presetList ??= loadGradlab().then((gl) => gl.presets());
  return presetList;
}

// The shipped corpora (web.rs `corpora()`), the default first:
// [{name, title, documents}]. The page builds its corpus choice from this.
let corpusList;
export function loadCorpora() {
  corpusList ??= loadGradlab().then((gl) => gl.corpora());
  return corpusList;
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

// `lab.backend()` with the browser's name for an adapter wgpu calls unnamed.
export async function backendLabel(lab) {
  const label = lab.backend();
  const name = label.includes("unnamed adapter") ? await browserAdapterName() : "";
  return name ? label.replace("unnamed adapter", name) : label;
}
