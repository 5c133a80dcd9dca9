export default {
  // gradlab's modules load its wasm, worker and data from beside themselves:
  // the dev server must serve the package as it is, not pre-bundled
  optimizeDeps: { exclude: ["gradlab"] },
};
