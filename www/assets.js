// Where the package's files are: every asset the elements load (the wasm
// builds, styles, corpora, the shipped base, the figures' data) is named at
// its call site as a literal `new URL("./relative/path", import.meta.url)`,
// the one form Vite, webpack and Rollup find, copy and rewrite; unbundled, it
// is the file beside this module on any host and sub-path.
//
// A bundler that leaves those URLs alone (esbuild) moves the code but not
// the files. There the page copies the package's folder to its site and
// names it once, `<meta name="gradlab-assets" content="/gradlab/">`; every
// asset is then found under that folder by its path in the package.
// README "With a bundler" gives each tool's recipe.

const META = 'meta[name="gradlab-assets"]';

// The folder the page named, or null (no meta tag, or in a worker: a worker
// is the package's own file, so its literal URLs are right).
function namedFolder() {
  const content = globalThis.document?.querySelector(META)?.getAttribute("content");
  if (content == null) return null;
  try {
    return new URL(content.replace(/\/?$/, "/"), document.baseURI);
  } catch {
    throw new Error(`<meta name="gradlab-assets" content="${content}">: not a URL (the folder the gradlab package was copied to, e.g. /gradlab/)`);
  }
}

// The URL of the package's file at `path` (from the package's root, e.g.
// "pkg/gradlab_bg.wasm"); `bundled`, the literal URL of it at the call site.
export function packageFile(path, bundled) {
  const folder = namedFolder();
  return folder ? new URL(path, folder) : bundled;
}

// True when this module was pre-bundled by Vite's dev server, which copies
// the code to node_modules/.vite/deps/ and leaves every file it loads behind.
export const preBundledByVite = () => /\/node_modules\/\.vite\/deps(_temp_[^/]*)?\//.test(import.meta.url);

// Why a package file could not be used, for the element's error line:
// `url` and what came back in its place.
export function fetchProblem(what, url, response) {
  const type = response.headers.get("Content-Type") ?? "no content type";
  let why = `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ""}`;
  if (response.ok && type.startsWith("text/html")) why = `got text/html, not ${what.kind}: is the server answering every path with index.html?`;
  // Vite 8 moves the files' URLs with the code it pre-bundles; Vite 7 and before do not
  const hint = preBundledByVite() ? " Vite's dev server pre-bundled gradlab away from its files (Vite before 8 does): add optimizeDeps: { exclude: [\"gradlab\"] } to vite.config.js (README \"With a bundler\")." : "";
  return `${what.name} could not be loaded from ${url} (${why}).${hint}`;
}

// Fetches a package file and checks that it is what was asked for (`what`:
// {name, kind, html?}): a failed status, or an HTML page where a file was
// expected, is said naming the URL.
export async function fetchPackageFile(url, what) {
  let response;
  try {
    response = await fetch(url);
  } catch (e) {
    throw new Error(`${what.name} could not be loaded from ${url} (${e?.message ?? e}: offline, or blocked by the page's Content-Security-Policy?)`);
  }
  const type = response.headers.get("Content-Type") ?? "";
  if (!response.ok || (type.startsWith("text/html") && !what.html)) throw new Error(fetchProblem(what, url, response));
  return response;
}
