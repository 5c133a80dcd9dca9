// Builds the static site into dist/: the wasm module and its JS glue
// (wasm-bindgen, --target web), the page's modules and CSS, vendored charting
// libraries from node_modules, the shipped base model, and the example article. No server code; every
// path is relative, so dist/ works from any static host and under a sub-path.
// The module then goes through wasm-opt -O2 from npm's binaryen (pinned in
// package-lock.json): Debian's binaryen 108 produced modules Chromium refused
// to load (docs/DESIGN.md §5); 132 does not. -O2, not -Oz: the two differ by
// 1% in size here, and the CPU path runs in this module.
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, rmSync, readFileSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildSync } from "esbuild";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// the nightly that builds pkg-threads/ (below); scripts/setup.sh installs the same
const THREADS_TOOLCHAIN = readFileSync(join(root, "scripts", "threads-toolchain"), "utf8").trim();
const dist = join(root, "dist");
const run = (cmd, args) => {
  try {
    execFileSync(cmd, args, { cwd: root, stdio: "inherit" });
  } catch (e) {
    // a missing tool, said as such rather than as a spawn stack trace
    if (e.code === "ENOENT") throw new Error(`${cmd} is not installed (or not on PATH): bash scripts/run.sh installs what the build needs, wasm-bindgen pinned to Cargo.lock`);
    throw e;
  }
};

rmSync(dist, { recursive: true, force: true });
mkdirSync(join(dist, "vendor"), { recursive: true });
// The module, twice: pkg/ is what every page loads; pkg-full/ adds the
// rarely used parts (the f64 reference's lab, the benchmark's matmul, the
// file codecs: the `rarely-used` feature), loaded only where asked for
// (www/wasm.js, www/files.js).
// Both without the corpora compiled in (1.48 MB of text): the page fetches
// the one it uses. Cargo.toml's `web` profile links each as one unit (LTO);
// the two share one target folder, so each is linked in turn.
for (const [out, features] of [["pkg", []], ["pkg-full", ["--features", "rarely-used"]]]) {
  run("cargo", ["build", "--profile", "web", "--target", "wasm32-unknown-unknown", "--lib", "--no-default-features", ...features]);
  run("wasm-bindgen", ["--target", "web", "--out-dir", join(dist, out), join(root, "target/wasm32-unknown-unknown/web/gradlab.wasm")]);
  const wasm = join(dist, out, "gradlab_bg.wasm");
  run(join(root, "node_modules", ".bin", "wasm-opt"), ["-O2", wasm, "-o", wasm]);
}

// The third build, pkg-threads/: the lab worker's module where the page is
// cross-origin isolated (www/wasm.js threadCount), its f32 CPU backend on
// rayon's pool of Web Workers over one shared memory (feature `threads`,
// wasm-bindgen-rayon). Shared memory needs std rebuilt with atomics, which
// only a nightly toolchain does: the one pinned here, which scripts/setup.sh
// installs with its rust-src. Its own target folder, as its flags differ.
const threadsRustflags = [
  "-C target-feature=+atomics,+bulk-memory,+mutable-globals,+simd128",
  // the memory is made by the glue (shared, up to 4 GiB as pkg/'s may grow) and handed to every thread
  "-C link-arg=--shared-memory -C link-arg=--import-memory -C link-arg=--max-memory=4294967296",
  // what wasm-bindgen needs to give each thread its own thread-locals
  ...["__wasm_init_tls", "__tls_size", "__tls_align", "__tls_base"].map((s) => `-C link-arg=--export=${s}`),
].join(" ");
{
  const env = { ...process.env, RUSTFLAGS: threadsRustflags };
  try {
    execFileSync("cargo", [`+${THREADS_TOOLCHAIN}`, "build", "--profile", "web", "--target", "wasm32-unknown-unknown", "--lib", "--no-default-features", "--features", "threads", "-Z", "build-std=std,panic_abort", "--target-dir", join(root, "target", "threads")], { cwd: root, stdio: "inherit", env });
  } catch (e) {
    throw new Error(`building pkg-threads/ failed: see cargo's message above (a missing ${THREADS_TOOLCHAIN} toolchain or its rust-src: bash scripts/setup.sh installs them)`, { cause: e });
  }
  const out = join(dist, "pkg-threads");
  run("wasm-bindgen", ["--target", "web", "--out-dir", out, join(root, "target/threads/wasm32-unknown-unknown/web/gradlab.wasm")]);
  const wasm = join(out, "gradlab_bg.wasm");
  run(join(root, "node_modules", ".bin", "wasm-opt"), ["-O2", "--enable-threads", "--enable-bulk-memory", "--enable-mutable-globals", "--enable-simd", wasm, "-o", wasm]);
  // wasm-bindgen-rayon's worker imports the module's glue as "../../..",
  // which a bundler resolves to the package and a browser to a folder: name the file
  const helpers = readdirSync(join(out, "snippets"), { recursive: true }).filter((f) => f.endsWith("workerHelpers.js"));
  if (helpers.length !== 1) throw new Error(`pkg-threads/: expected one workerHelpers.js from wasm-bindgen-rayon, found ${helpers.length}`);
  const helper = join(out, "snippets", helpers[0]);
  const source = readFileSync(helper, "utf8");
  // and make its pool watchable (www/lab/remote.js watchWorker): each pool
  // worker holds a Web Lock named by the lab worker (self.gradlabPoolLock)
  // and its index while it lives; a trap in one ends it, which lets the lock
  // go, instead of leaving the lab's step waiting for ever; the lab worker
  // keeps its pool's Worker objects where a test can end one
  const patches = [
    ["import('../../..')", "import('../../../gradlab.js')"],
    [
      "then(async ({ init, receiver }) => {",
      "then(async ({ init, receiver, gradlabLock }) => {\n  if (gradlabLock && self.navigator?.locks) await new Promise((held) => navigator.locks.request(gradlabLock, () => (held(), new Promise(() => {}))));",
    ],
    [
      "  pkg.wbg_rayon_start_worker(receiver);\n",
      "  try {\n    pkg.wbg_rayon_start_worker(receiver);\n  } catch (e) {\n    console.error(`gradlab: a thread of the lab's pool stopped: ${e?.message ?? e}`);\n    self.close();\n  }\n",
    ],
    ["Array.from({ length: builder.numThreads() }, async () => {", "Array.from({ length: builder.numThreads() }, async (_, gradlabIndex) => {"],
    ["worker.postMessage(workerInit);", "worker.postMessage({ ...workerInit, gradlabLock: self.gradlabPoolLock && `${self.gradlabPoolLock}/${gradlabIndex}` });"],
    ["  builder.build();\n}", "  self.gradlabPoolWorkers = _workers;\n  builder.build();\n}"],
  ];
  // (it comes with Windows line ends)
  let patched = source.replace(/\r\n/g, "\n");
  for (const [from, to] of patches) {
    if (!patched.includes(from)) throw new Error(`${helper} no longer has ${JSON.stringify(from)}: check how wasm-bindgen-rayon starts its pool`);
    patched = patched.replace(from, to);
  }
  writeFileSync(helper, patched);
}

// hosts that read a _headers file (Netlify, Cloudflare Pages) make the pages
// cross-origin isolated with it, so the lab's CPU backend gets its threads
// there too, and hold the lab's workers to the pages' Content-Security-Policy
// (a worker takes its policy from its script's response, not from a page's
// meta tag); scripts/serve.mjs sends the same headers
writeFileSync(
  join(dist, "_headers"),
  "/*\n  Cross-Origin-Opener-Policy: same-origin\n  Cross-Origin-Embedder-Policy: require-corp\n" +
    "  Content-Security-Policy: default-src 'self'; script-src 'self' 'wasm-unsafe-eval'\n",
);

cpSync(join(root, "index.html"), join(dist, "index.html"));
cpSync(join(root, "www"), join(dist, "www"), { recursive: true });
// the shipped base model, for the lab's "load weights" (data/base/SOURCE.md)
cpSync(join(root, "data/base"), join(dist, "data/base"), { recursive: true });
// the shipped corpora, fetched by the page (www/wasm.js ensureCorpus)
cpSync(join(root, "data/corpus"), join(dist, "data/corpus"), { recursive: true });
const vendor = [
  ["uplot/dist/uPlot.esm.js", "uPlot.esm.js"],
  ["uplot/dist/uPlot.min.css", "uPlot.min.css"],
  ["uplot/LICENSE", "uPlot.LICENSE"],
  ["d3-array/LICENSE", "d3-array.LICENSE"],
  ["d3-contour/LICENSE", "d3-contour.LICENSE"],
  // the benchmark page's peer (www/bench.html), as ES modules; the backend's
  // bare import of the core is made relative below (an import map would be
  // inline script, which the pages' Content-Security-Policy forbids)
  ["@tensorflow/tfjs-core/dist/tf-core.fesm.min.js", "tf-core.fesm.min.js"],
  ["@tensorflow/tfjs-backend-webgpu/dist/tf-backend-webgpu.fesm.min.js", "tf-backend-webgpu.fesm.min.js"],
];
for (const [from, to] of vendor) {
  const src = join(root, "node_modules", from);
  if (!existsSync(src)) throw new Error(`missing ${src}: run npm ci first`);
  cpSync(src, join(dist, "vendor", to));
}
const backend = join(dist, "vendor", "tf-backend-webgpu.fesm.min.js");
const bare = /from\s*"@tensorflow\/tfjs-core"/g;
const backendSource = readFileSync(backend, "utf8");
if (!bare.test(backendSource)) throw new Error(`${backend} no longer imports "@tensorflow/tfjs-core": check the bench page's imports`);
writeFileSync(backend, backendSource.replace(bare, 'from"./tf-core.fesm.min.js"'));
// jax-js, the benchmark page's other peer: its ES modules import each other
// by relative paths, so the folder is copied whole
const jax = join(root, "node_modules", "@jax-js", "jax");
if (!existsSync(jax)) throw new Error(`missing ${jax}: run npm ci first`);
mkdirSync(join(dist, "vendor", "jax"), { recursive: true });
for (const f of readdirSync(join(jax, "dist")).filter((f) => f.endsWith(".js"))) cpSync(join(jax, "dist", f), join(dist, "vendor", "jax", f));
cpSync(join(jax, "LICENSE"), join(dist, "vendor", "jax", "LICENSE"));
// d3-contour and the d3-array it imports, from their ES module sources, as
// one true ES module (esbuild, pinned in package-lock.json): no require()
// and no global, so a bundler that meets it in the package finds nothing to
// resolve, and a page without one imports it as it is
buildSync({
  stdin: { contents: 'export { contours } from "d3-contour";', resolveDir: root },
  bundle: true,
  format: "esm",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  outfile: join(dist, "vendor", "d3-contour.esm.js"),
});
console.log(`site built in ${dist}`);

// --isolate: for hosts that cannot send COOP/COEP (GitHub Pages), the opt-in service worker that sends them (scripts/isolate.mjs)
if (process.argv.includes("--isolate")) {
  const { isolateSite } = await import("./isolate.mjs");
  const pages = isolateSite(dist);
  console.log(`site isolated by a service worker (isolate-sw.js at the root; www/isolate.js in ${pages.join(", ")})`);
}
