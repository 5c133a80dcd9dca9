// Makes this page cross-origin isolated where its host cannot send the
// headers that do it (GitHub Pages): registers the service worker
// isolate-sw.js, which adds them, and reloads once so the page comes back
// through it. Isolated, the lab's f32 CPU backend trains on threads
// (www/wasm.js threadCount); not isolated, it trains on one thread as before,
// so whatever goes wrong here only costs the threads.
//
// A classic script, not a module, included first in <head>: the reload then
// comes before the page has started any work worth keeping. The pages' policy
// forbids inline script, so it is a file:
//   <script src="www/isolate.js"></script>
// The worker's URL is data-sw if given (relative to the page), else
// ../isolate-sw.js relative to this file: the worker's scope is its own
// folder, and it must cover the pages.
(() => {
  // whatever fails here, the page goes on as a plain one
  const giveUp = (why) => console.warn(`gradlab: ${why}; the lab trains on one thread.`);
  try {
    if (window.crossOriginIsolated) return;
    // a service worker needs HTTPS or localhost, and a browser that has them
    if (!window.isSecureContext || !navigator.serviceWorker) return;
    // only while this script runs does the page say which tag loaded it
    const tag = document.currentScript;
    const url = tag?.dataset.sw ? new URL(tag.dataset.sw, document.baseURI) : new URL("../isolate-sw.js", tag?.src || location.href);
    // This page came through the worker and is still not isolated: the
    // browser does not take the headers from a service worker, and another
    // reload would change nothing.
    if (navigator.serviceWorker.controller?.scriptURL === url.href) {
      giveUp("this page came through its service worker (isolate-sw.js) and is still not cross-origin isolated: this browser does not take the isolation headers from a service worker, so the page is not reloaded");
      return;
    }
    // When this tab last reloaded for the worker. A reload that comes back
    // without the worker in control (the browser would not let it take the
    // page) must not lead to another: within RETRY_MS of one, no second.
    // Not a flag cleared once isolated: Chromium gives an isolated page a
    // sessionStorage of its own, so the plain page's note would outlive it;
    // a time also lets a later reload past the worker (Shift+Reload) try again.
    const KEY = "gradlab-isolate-reloaded";
    const RETRY_MS = 30_000;
    let store;
    try {
      store = window.sessionStorage;
    } catch {
      // storage refused (a sandboxed frame, a blocked site's data)
    }
    // without somewhere to note the reload, one reload could become many
    if (!store) return;
    if (Date.now() - Number(store.getItem(KEY)) < RETRY_MS) {
      giveUp("this page was reloaded for its service worker (isolate-sw.js), which still does not control it, so it is not reloaded again");
      return;
    }

    let reloading = false;
    const reload = () => {
      if (reloading) return;
      reloading = true;
      try {
        store.setItem(KEY, String(Date.now()));
      } catch {
        // storage full or refused: no note, so no reload
        return;
      }
      location.reload();
    };

    (async () => {
      // before registering: the worker's claim() may take the page at once
      navigator.serviceWorker.addEventListener("controllerchange", reload);
      const registration = await navigator.serviceWorker.register(url.href);
      await navigator.serviceWorker.ready;
      // a newer worker on its way: its claim() fires controllerchange
      if (registration.installing || registration.waiting) return;
      if (navigator.serviceWorker.controller) reload();
      // active, but this page came past it (Shift+Reload), after its claim():
      // ask it to take the page, which fires controllerchange
      else registration.active?.postMessage("claim");
    })().catch((e) => giveUp(`could not make this page cross-origin isolated (${e?.message ?? e})`));
  } catch (e) {
    // navigator.serviceWorker itself throws where the site's storage is blocked
    giveUp(`could not make this page cross-origin isolated (${e?.message ?? e})`);
  }
})();
