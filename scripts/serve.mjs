// Serves dist/ under a sub-path (default /gradlab/) on localhost, the way a
// static host would, and prints the address.
// Usage: node scripts/serve.mjs [port] [base] [--not-isolated]
// Like most static hosts and CDNs it allows cross-origin reads
// (Access-Control-Allow-Origin: *), so a page on another origin can load the
// elements from it. From the command line it also makes the pages
// cross-origin isolated (COOP same-origin, COEP require-corp), which lets the
// lab's f32 CPU backend use threads (www/wasm.js threadCount), all but the
// benchmark page, which compares one thread with one thread;
// --not-isolated serves them as a plain static host does, on one thread.
import { createServer } from "node:http";
import { readFile, stat } from "node:fs/promises";
import { extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";

const distDir = fileURLToPath(new URL("../dist/", import.meta.url));
const types = {
  ".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".mjs": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8", ".wasm": "application/wasm", ".json": "application/json", ".txt": "text/plain; charset=utf-8",
  ".svg": "image/svg+xml", ".png": "image/png", ".ts": "text/plain",
};

// The pages' policy (their <meta http-equiv>). A worker takes its policy
// from its script's response, never from a meta tag, so every script is
// served with it as a header: the lab's workers are held to what the pages are.
export const POLICY = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";

// `dir`: the folder served (dist/ unless given); `isolated`: send the
// headers that make a page cross-origin isolated.
export function startServer(listenPort = 8080, basePath = "/gradlab/", dir = distDir, { isolated = false } = {}) {
  const isolation = isolated ? { "cross-origin-opener-policy": "same-origin", "cross-origin-embedder-policy": "require-corp" } : {};
  const base = basePath.replace(/\/?$/, "/");
  const server = createServer(async (req, res) => {
    const url = new URL(req.url, "http://localhost");
    if (url.pathname === "/" || url.pathname === base.slice(0, -1)) {
      res.writeHead(302, { location: base });
      return res.end();
    }
    if (!url.pathname.startsWith(base)) {
      res.writeHead(404);
      return res.end("not found");
    }
    const path = decodeURIComponent(url.pathname.slice(base.length));
    let rel = path === "" || path.endsWith("/") ? path + "index.html" : path;
    rel = normalize(rel).replace(/^(\.\.[/\\])+/, "");
    const file = join(dir, rel);
    try {
      if (!(await stat(file)).isFile()) throw new Error("not a file");
      // not the benchmark page: it times one thread against one (www/bench.js),
      // and isolated, jax-js's wasm backend would start threads
      const policy = /\.m?js$/.test(file) ? { "content-security-policy": POLICY } : {};
      res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "cache-control": "no-cache", "access-control-allow-origin": "*", ...policy, ...(rel.endsWith("bench.html") ? {} : isolation) });
      res.end(await readFile(file));
    } catch {
      res.writeHead(404);
      res.end("not found");
    }
  });
  return new Promise((resolve) => server.listen(listenPort, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const flags = process.argv.slice(2).filter((a) => a.startsWith("--"));
  const unknown = flags.filter((f) => f !== "--not-isolated");
  if (unknown.length) {
    console.error(`serve: unknown option ${unknown[0]} (usage: node scripts/serve.mjs [port] [base] [--not-isolated])`);
    process.exit(2);
  }
  const [portArg, baseArg] = process.argv.slice(2).filter((a) => !a.startsWith("--"));
  const port = Number(portArg ?? process.env.PORT ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error(`serve: port must be a whole number from 0 to 65535, got ${JSON.stringify(portArg ?? process.env.PORT)}`);
    process.exit(2);
  }
  const base = (baseArg ?? process.env.BASE ?? "/gradlab/").replace(/\/?$/, "/");
  const isolated = !flags.includes("--not-isolated");
  const server = await startServer(port, base, distDir, { isolated });
  const how = isolated ? "cross-origin isolated: the CPU backend uses threads" : "not isolated: one thread, as on a plain static host";
  console.log(`gradlab: serving dist/ at http://127.0.0.1:${server.address().port}${base}  (${how}; Ctrl-C to stop)`);
}
