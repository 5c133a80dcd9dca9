// <gradlab-lab> and <gradlab-playground>: the page's two panels as custom
// elements, so a blog post embeds them with one script tag:
//   <script type="module" src=".../www/elements.js"></script>
//   <gradlab-lab lr="0.003" micro="4" spread="1"></gradlab-lab>
// Attributes set the settings (same names as the URL query), at creation and
// whenever they change; with `sync-url` the element reads and writes the
// page's URL query instead, and later attribute changes are not followed.
// Each element draws into its own shadow root: the host page's styles do not
// reach in, ours do not leak out, and the CSS custom properties listed in
// elements.css theme it. Every asset (styles, the wasm module, corpora) is
// found from this file's URL, so it works from any origin and sub-path.
// All labs on a page share one GPU device (src/web/device.rs `shared_gpu`).
import { LabPanel } from "./lab.js";
import { PlaygroundPanel } from "./playground.js";
import { SeedFiguresPanel } from "./lab/seedfigures.js";
import { figureElement } from "./figure.js";
import { labFields } from "./settings.js";
import { fetchProblem, packageFile } from "./assets.js";

// named literally so that bundlers copy them (assets.js)
const sheets = () => [
  packageFile("vendor/uPlot.min.css", new URL("../vendor/uPlot.min.css", import.meta.url)),
  packageFile("www/elements.css", new URL("./elements.css", import.meta.url)),
];

// The element's shadow root, holding our style sheets and the panel's
// container (returned). A sheet that cannot load is said at the top, naming
// its URL and what came back, since the element is then unstyled.
function shadowPanel(element) {
  const shadow = element.shadowRoot ?? element.attachShadow({ mode: "open" });
  const links = sheets().map((href) => Object.assign(document.createElement("link"), { rel: "stylesheet", href: href.href }));
  const container = document.createElement("div");
  for (const link of links) link.addEventListener("error", () => styleFailed(shadow, link.href), { once: true });
  shadow.replaceChildren(...links, container);
  return container;
}

async function styleFailed(shadow, href) {
  const what = { name: "gradlab's styles", kind: "CSS" };
  // the link's error event gives no reason; fetching it again tells what came back
  let message = `${what.name} could not be loaded from ${href}.`;
  try {
    const response = await fetch(href);
    if (!response.ok || !(response.headers.get("Content-Type") ?? "").startsWith("text/css")) message = fetchProblem(what, href, response);
  } catch (e) {
    message = `${what.name} could not be loaded from ${href} (${e?.message ?? e}).`;
  }
  console.error(`gradlab: ${message}`);
  const line = Object.assign(document.createElement("p"), { role: "alert", textContent: message });
  line.dataset.testid = "style-error";
  line.style.color = "#b00020";
  shadow.prepend(line);
}

function getter(element) {
  const query = new URLSearchParams(location.search);
  const fromUrl = element.hasAttribute("sync-url");
  return {
    get: (name) => (fromUrl && query.has(name) ? query.get(name) : element.getAttribute(name)),
    where: fromUrl && [...query.keys()].length ? "URL/attribute" : "attribute",
    syncUrl: fromUrl,
    autoplay: element.hasAttribute("autoplay"),
  };
}

class GradlabLab extends HTMLElement {
  // every lab setting is an attribute (settings.js labFields)
  static get observedAttributes() {
    return Object.keys(labFields(null));
  }
  attributeChangedCallback(name, before, after) {
    // before the panel exists the constructor reads them; a value set again unchanged is no change
    if (!this.panel || before === after || this.hasAttribute("sync-url")) return;
    clearTimeout(this.pendingChange);
    // several attributes set in a row rebuild the lab once
    this.pendingChange = setTimeout(() => this.panel.attributesChanged(), 0);
  }
  connectedCallback() {
    if (this.panel) {
      // moved, or put back after removal: a fresh lab from the same settings
      if (this.stopped) this.panel.reset();
      this.stopped = false;
      return;
    }
    this.panel = new LabPanel(shadowPanel(this), getter(this));
    // a lab as a figure in an article: its buttons and first two charts only
    if (this.hasAttribute("compact")) this.panel.root.classList.add("gl-compact");
    if (this.hasAttribute("autostart")) this.panel.ready.then(() => this.panel.start());
  }
  // A removed lab stops training and frees its memory and GPU buffers.
  disconnectedCallback() {
    this.stopped = true;
    this.panel?.stop();
  }
  /** The plotted data, for tests and for readers who want the numbers. */
  curves() {
    return this.panel?.curves();
  }
  /** The last G sweep's result, or undefined. */
  sweepResult() {
    return this.panel?.sweepResult();
  }
}

class GradlabPlayground extends HTMLElement {
  connectedCallback() {
    if (this.panel) return;
    this.panel = new PlaygroundPanel(shadowPanel(this), getter(this));
  }
}

// The seed write-up's two figures from the numbers the CLI shipped, and a
// button that re-runs one of their seeds in this browser.
class GradlabSeedFigures extends HTMLElement {
  connectedCallback() {
    if (this.panel) return;
    this.panel = new SeedFiguresPanel(shadowPanel(this));
  }
  // a removed element stops its run and frees that lab
  disconnectedCallback() {
    this.panel?.cancel();
  }
  /** The shipped figures' numbers and the live run's points so far. */
  figures() {
    return this.panel?.figures();
  }
}

customElements.get("gradlab-lab") || customElements.define("gradlab-lab", GradlabLab);
customElements.get("gradlab-playground") || customElements.define("gradlab-playground", GradlabPlayground);
customElements.get("gradlab-seed-figures") || customElements.define("gradlab-seed-figures", GradlabSeedFigures);
// <gradlab-figure name="…">: one of the article's figures alone (www/figure.js)
customElements.get("gradlab-figure") || customElements.define("gradlab-figure", figureElement(shadowPanel));
