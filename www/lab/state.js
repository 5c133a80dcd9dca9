// Save the whole lab and load it back: every run's weights, optimizer state,
// step count and where the batches stand (the lab's `state` / `restore`,
// the file written and read by files.js), with the settings, the pasted text and
// the curves so far, in one .safetensors file. A loaded lab continues bit for
// bit as the saved one would have (on the same backend). A file that is not
// a state, or does not fit, is refused in words and the lab runs on as it
// was. It does not build or step the lab (training.js).
import { button, el, errorText } from "../ui.js";
import { readState } from "../files.js";
import { download } from "./exports.js";

// What the page adds to the wasm lab's state, in its `page` metadata.
const PAGE_FORMAT = "gradlab-page/1";

// Larger files are refused before they are read.
const MAX_STATE_BYTES = 1 << 30;

export class SavedState {
  // `controls`: the settings; `training`: the lab, its curves and its queue;
  // `showError` as the panel has it.
  constructor({ controls, training, showError }) {
    Object.assign(this, { controls, training, showError });
    this.saveBtn = button("Save the lab (.safetensors)", "save-state");
    this.picker = el("input", { type: "file", accept: ".safetensors,application/octet-stream", "data-testid": "load-state", "aria-label": "Load a saved lab" });
    this.node = el(
      "div",
      { class: "gl-state" },
      el("div", { class: "gl-buttons" }, this.saveBtn),
      el("label", { class: "gl-small" }, "Load a saved lab (it goes on where it stopped): ", this.picker),
    );
    this.saveBtn.addEventListener("click", () => this.save());
    this.picker.addEventListener("change", () => this.load());
  }

  // Pauses (the steps in flight land in the curves first), writes the file,
  // and starts again if it was running.
  async save() {
    const t = this.training;
    if (!t.lab || t.building) return this.showError("Nothing to save yet: the lab is still being built.");
    const wasRunning = t.running || t.startWhenReady;
    if (wasRunning) t.pause();
    const { lab, twin } = t;
    try {
      const bytes = await t.serial.run(async () => {
        if (lab !== t.lab) throw new Error("the lab was rebuilt meanwhile; save again");
        t.ingest(await lab.flush(), lab);
        if (twin) t.ingest(await twin.flush(), twin);
        const page = JSON.stringify({
          format: PAGE_FORMAT,
          settings: this.controls.values,
          text: this.controls.textArea.value,
          backend: t.backendName,
          ...t.curves.saved(!!twin),
        });
        const twinBytes = twin ? await twin.saveState("", undefined) : undefined;
        return lab.saveState(page, twinBytes);
      });
      download(`gradlab-lab-step${t.stepsTaken}.safetensors`, new Blob([bytes]));
      t.setStatus(`${t.statusName} · saved at step ${t.stepsTaken}`);
    } catch (e) {
      this.showError(`Saving failed: ${errorText(e)}`);
    }
    if (wasRunning) t.start();
  }

  // Reads the picked file; a good one replaces the settings, the lab and the
  // curves, a bad one changes nothing.
  async load() {
    const file = this.picker.files?.[0];
    this.picker.value = "";
    if (!file) return;
    if (file.size > MAX_STATE_BYTES) return this.showError(`${file.name}: ${(file.size / 1048576).toFixed(0)} MB is larger than a saved lab can be here (${MAX_STATE_BYTES >> 20} MB); nothing was loaded.`);
    let info;
    let page;
    try {
      info = await readState(new Uint8Array(await file.arrayBuffer()));
      page = JSON.parse(info.page);
      if (page?.format !== PAGE_FORMAT) throw new Error(`its page data is not ${PAGE_FORMAT}`);
    } catch (e) {
      return this.showError(`${file.name} cannot be loaded (${errorText(e).replace(/^state file: /, "")}); the lab runs on as it was.`);
    }
    // the pasted text goes back too if the lab refuses the state (its settings do by restore)
    const text = this.controls.textArea.value;
    const problems = this.controls.load(page.settings);
    if (problems) {
      this.showError(`${file.name}: ${problems}`);
    }
    this.controls.textArea.value = typeof page.text === "string" ? page.text : "";
    if (!(await this.training.restore({ name: file.name, state: info.state, twinBytes: info.twin, page }))) this.controls.textArea.value = text;
  }
}
