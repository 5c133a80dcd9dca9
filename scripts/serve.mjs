// Serves dist/ under a sub-path (default /gradlab/) on localhost, the way a
// static host would, and prints the address. Usage: node scripts/serve.mjs [port] [base]
// Like most static hosts and CDNs it allows cross-origin reads
// (Access-Control-Allow-Origin: *), so a page on another origin can load the
// elements from it.
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

// `dir`: the folder served (dist/ unless given).
export function startServer(listenPort = 8080, basePath = "/gradlab/", dir = distDir) {
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
      res.writeHead(200, { "content-type": types[extname(file)] ?? "application/octet-stream", "cache-control": "no-cache", "access-control-allow-origin": "*" });
      res.end(await readFile(file));
    } catch {
      res.writeHead(404);
      res.end("not found");
    }
  });
  return new Promise((resolve) => server.listen(listenPort, "127.0.0.1", () => resolve(server)));
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const port = Number(process.argv[2] ?? process.env.PORT ?? 8080);
  const base = (process.argv[3] ?? process.env.BASE ?? "/gradlab/").replace(/\/?$/, "/");
  const server = await startServer(port, base);
  console.log(`gradlab: serving dist/ at http://127.0.0.1:${server.address().port}${base}  (Ctrl-C to stop)`);
}
