// Small DOM builders and formatting shared by the lab (www/lab.js, www/lab/*)
// and the playground (www/playground.js): elements, labelled form rows,
// selects, the error line, log-scale sliders, error messages in words.
// It is not settings parsing (settings.js) nor wasm loading (wasm.js), and it
// knows nothing about either panel.

// <tag attrs…>children</tag>; `class` and `text` set className and
// textContent, `style` goes through the CSSOM (a style attribute would be
// inline style, which the pages' Content-Security-Policy refuses).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else if (k === "style") node.style.cssText = v;
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c);
  return node;
}

// The settings form of a panel; Enter in a field never reloads the page.
export function controlsForm(label) {
  const form = el("form", { class: "gl-controls", "aria-label": label });
  form.addEventListener("submit", (e) => e.preventDefault());
  return form;
}

// Appends a labelled row (label, input, a <small> hint) to `form`; returns the input.
export function formRow(form, label, input, help = "") {
  const id = `gl-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  form.append(el("div", { class: "gl-row" }, el("label", { for: id, text: label }), input, el("small", { text: help })));
  return input;
}

// The <small> hint of a row made by formRow.
export const hintOf = (input) => input.parentElement.querySelector("small");

// <select> of `choices` (shown as they are) with `value` selected.
export function selectInput(choices, value, attrs = {}) {
  const s = el("select", attrs);
  setChoices(s, choices, value);
  return s;
}

export function setChoices(select, choices, value) {
  select.replaceChildren(...choices.map((c) => el("option", { value: String(c), text: String(c) })));
  select.value = String(value);
}

// <button type=button>
export const button = (text, testid) => el("button", { type: "button", ...(testid ? { "data-testid": testid } : {}), text });

// The panel's error line, hidden while empty; text only, never HTML.
export const errorLine = (attrs = {}) => el("p", { class: "gl-error", role: "alert", ...attrs, hidden: "" });

export function showMessage(node, message) {
  node.textContent = message;
  node.hidden = !message;
}

// A panel's two columns: settings on the side, results in the main one.
export function columns(root, side, main) {
  root.append(el("div", { class: "gl-side" }, ...side), el("div", { class: "gl-main" }, ...main));
}

// Sliders over a log scale hold log10(x).
export const toLogSlider = (x) => String(Math.log10(x));
export const fromLogSlider = (input) => 10 ** Number(input.value);
export const formatLogSlider = (input) => fromLogSlider(input).toPrecision(2);

// The message of a thrown Error (wasm-bindgen's JsError included), or the thing itself.
export const errorText = (e) => String(e?.message ?? e);

// Sentences joined with spaces, empty ones left out.
export const sentences = (...parts) => parts.filter(Boolean).join(" ");

// A clock for `total` steps about to run: `left(i)` after step i (from 0)
// gives the seconds still to go, reckoned from the steps after the first,
// which also warms a lab up.
export function stepClock(total) {
  const began = performance.now();
  let first;
  return {
    left(i) {
      const now = performance.now();
      first ??= { at: now, took: now - began };
      const perStep = i > 0 ? (now - first.at) / i : first.took;
      return (perStep * (total - i - 1)) / 1000;
    },
    seconds: () => (performance.now() - began) / 1000,
  };
}

export const nextFrame = () => new Promise((r) => requestAnimationFrame(() => r()));
