// Loads the gradlab WebAssembly module once, relative to this file, so the
// site works under any sub-path.
import init, * as gradlab from "../pkg/gradlab.js";

let ready;
export function loadGradlab() {
  ready ??= init({ module_or_path: new URL("../pkg/gradlab_bg.wasm", import.meta.url) }).then(() => gradlab);
  return ready;
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
