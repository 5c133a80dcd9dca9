// A service worker that makes the pages it controls cross-origin isolated on a
// host that cannot send headers of its own (GitHub Pages): it adds the
// isolation headers to each same-origin response as the page receives it.
// Opt-in: only a page that includes www/isolate.js registers it; it must sit
// at the site's root so that its scope covers every page.
//
// Its URL may name pages to leave alone, relative to the site's root:
// isolate-sw.js?skip=www/bench.html (the benchmark times one thread against
// one thread, and on an isolated page its peer would start threads).

// Every page in scope is controlled from the moment the worker runs, not
// from the next visit: isolate.js reloads once, and that reload must come
// through this worker.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));
// A page loaded with the cache bypassed (Shift+Reload) is not controlled even
// though this worker is active, and claim() already ran; isolate.js asks again.
self.addEventListener("message", (event) => {
  if (event.data === "claim") event.waitUntil(self.clients.claim());
});

const skipped = new Set(
  new URL(self.location.href).searchParams.getAll("skip").map((path) => new URL(path, self.registration.scope).pathname),
);

self.addEventListener("fetch", (event) => {
  const request = event.request;
  // Chromium sends these for DevTools, and fetch() rejects them outside
  // same-origin mode; the browser answers them better itself.
  if (request.cache === "only-if-cached" && request.mode !== "same-origin") return;
  const url = new URL(request.url);
  // Another origin's response passes the page's COEP only on that origin's
  // own headers (CORP, or CORS), which nothing here can vouch for; and where
  // a host does send a Content-Security-Policy for this script, its
  // default-src 'self' would refuse the fetch.
  if (url.origin !== self.location.origin) return;
  if (request.mode === "navigate" && skipped.has(url.pathname)) return;
  event.respondWith(isolated(request));
});

async function isolated(request) {
  const response = await fetch(request);
  // Opaque responses (a navigation's redirect that the browser follows
  // itself) cannot be read or rebuilt. A rebuilt response carries no URL of
  // its own, so one that was redirected would be taken as the requested
  // URL, and a script's relative imports would resolve against the wrong
  // folder: those are left as they came.
  if (response.status === 0 || response.redirected) return response;
  // The headers already there stay, the host's Content-Security-Policy above
  // all: a worker takes its policy from its script's response, never from
  // the page's <meta http-equiv>.
  const headers = new Headers(response.headers);
  headers.set("Cross-Origin-Opener-Policy", "same-origin");
  // require-corp rather than credentialless: every browser that isolates
  // pages knows require-corp (Safari does not know credentialless, and would
  // leave the page unisolated), and it is what the site's own hosts send
  // (dist/_headers, scripts/serve.mjs), so a page behaves the same on each.
  // Its cost, that every other origin's resource must opt in with CORP or
  // CORS, falls on a page that loads them, and these pages load none.
  headers.set("Cross-Origin-Embedder-Policy", "require-corp");
  // So that a page on another origin that is isolated itself may still load
  // the site's files (the elements embedded from here, as from a CDN).
  if (!headers.has("Cross-Origin-Resource-Policy")) headers.set("Cross-Origin-Resource-Policy", "cross-origin");
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}
