// Makes a built site cross-origin isolated on a host that cannot send
// COOP/COEP headers (GitHub Pages), through the opt-in service worker:
// puts www/isolate-sw.js at the site's root (a worker's scope is its own
// folder, and it must cover every page) and includes www/isolate.js first in
// the <head> of each page: index.html and www/explainer.html. Not the
// benchmark page, which times one thread against one thread; the worker is
// told to leave it alone too, as it controls every page under the root.
// Running it again changes nothing.
// Usage: node scripts/isolate.mjs [distDir]  (default dist/); the site build
// runs it as `node scripts/build-site.mjs --isolate`.
import { copyFileSync, existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// pages that must stay unisolated, relative to the site's root
const SKIP = ["www/bench.html"];
const TAG = /[ \t]*<script src="[^"]*isolate\.js"[^>]*><\/script>\n?/g;

// Returns the pages given the script, relative to `distDir`.
export function isolateSite(distDir) {
  if (!existsSync(join(distDir, "index.html"))) throw new Error(`${distDir} holds no built site (index.html): run node scripts/build-site.mjs first`);
  copyFileSync(join(root, "www", "isolate-sw.js"), join(distDir, "isolate-sw.js"));
  // the script the tags load, also into a site built before it existed
  copyFileSync(join(root, "www", "isolate.js"), join(distDir, "www", "isolate.js"));
  const pages = [];
  for (const folder of ["", "www"]) {
    for (const name of readdirSync(join(distDir, folder)).filter((f) => f.endsWith(".html"))) {
      const page = join(folder, name).split(sep).join("/");
      if (SKIP.includes(page)) continue;
      const file = join(distDir, page);
      // URLs in the tag are relative to the page
      const up = (to) => relative(dirname(file), join(distDir, to)).split(sep).join("/");
      const sw = `${up("isolate-sw.js")}?${SKIP.map((p) => `skip=${encodeURI(p)}`).join("&")}`;
      const tag = `<script src="${up("www/isolate.js")}" data-sw="${sw}"></script>`;
      const html = readFileSync(file, "utf8").replace(TAG, "");
      // after the Content-Security-Policy <meta>, so the page's policy holds
      // the script too, and before every stylesheet and script
      const csp = html.match(/<meta http-equiv="Content-Security-Policy"[^>]*>\n?/i);
      const head = html.match(/<head[^>]*>\n?/i);
      const at = csp ?? head;
      if (!at) throw new Error(`${file} has no <head>`);
      const end = at.index + at[0].length;
      const indent = html.slice(0, at.index).match(/[ \t]*$/)[0];
      writeFileSync(file, `${html.slice(0, end)}${at[0].endsWith("\n") ? "" : "\n"}${indent}${tag}\n${html.slice(end)}`);
      pages.push(page);
    }
  }
  return pages;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const dist = resolve(process.argv[2] ?? join(root, "dist"));
  const pages = isolateSite(dist);
  console.log(`isolate: ${dist}: isolate-sw.js at the root; www/isolate.js included in ${pages.join(", ")}`);
}
