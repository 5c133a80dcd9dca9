// The lab's table of settings (www/lab/settings.json) against the page's
// settings module (www/settings.js), in Node, without a browser: every
// setting is a field the URL and attributes parse, labConfig puts each value
// where its entry's path says and nothing anywhere else, and every value the
// table offers parses back as itself. tests/settings.rs checks the same table
// against the Rust LabSettings.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LAB_SETTINGS, SCENARIOS, labConfig, labFields, parseLabSettings, parseSettings } from "../../www/settings.js";

// stand-ins for the wasm module's lists: names and block sizes are all labFields reads
const presets = [{ name: "nano", block_size: 64 }, { name: "micro", block_size: 128 }, { name: "small", block_size: 256 }];
const corpora = [{ name: "kjv" }, { name: "devil" }];
const fields = labFields(presets, corpora);
const defaults = parseSettings(fields, () => null, "URL").values;

// The value at a dotted path, or undefined.
const at = (object, path) => path.split(".").reduce((node, key) => node?.[key], object);

// What the table says is sent for setting `s` among `values`.
function sent(s, values) {
  if (s.when && values[s.when] !== 1) return s.off;
  if (s.kind === "checkbox") return values[s.name] === 1;
  return s.settings ? s.settings[values[s.name]] : values[s.name];
}

// The dotted paths of an object's leaves, a path's value counting as one leaf.
function leaves(object, paths, prefix = "") {
  return Object.entries(object).flatMap(([key, value]) => {
    const path = prefix + key;
    return value && typeof value === "object" && !paths.has(path) ? leaves(value, paths, `${path}.`) : [path];
  });
}

// Every value the table offers for `s`: its choices, or both ends of its range.
const offered = (s) => fields[s.name].choices ?? [fields[s.name].min, fields[s.name].max];

test("every setting of the table is a field the URL and the attributes parse, in the table's order", () => {
  assert.deepEqual(Object.keys(labFields(null)), LAB_SETTINGS.map((s) => s.name));
  assert.deepEqual(parseSettings(fields, () => null, "URL").problems, []);
  for (const s of LAB_SETTINGS) assert.notEqual(defaults[s.name], undefined, `${s.name} has a default`);
});

test("labConfig puts each setting at its path and writes nothing else", () => {
  const paths = new Set(LAB_SETTINGS.filter((s) => s.path).map((s) => s.path));
  for (const s of LAB_SETTINGS.filter((s) => s.path)) {
    for (const value of offered(s)) {
      const values = { ...defaults, [s.name]: value };
      // a control another switches off is tried switched on
      if (s.when) values[s.when] = 1;
      const config = labConfig(values, presets);
      assert.deepEqual(at(config, s.path), sent(s, values), `${s.name}=${value}`);
      assert.deepEqual(leaves(config, paths).sort(), [...paths].sort(), `${s.name}=${value}: only the table's paths`);
    }
  }
  // a control switched off sends its `off` value
  for (const s of LAB_SETTINGS.filter((s) => s.when)) {
    assert.deepEqual(at(labConfig({ ...defaults, [s.when]: 0 }, presets), s.path), s.off, s.name);
  }
  // `extra` goes in beside them
  assert.equal(labConfig(defaults, presets, { sweep: true }).sweep, true);
});

test("every value the table offers parses back as itself, and its neighbours outside are refused", () => {
  for (const s of LAB_SETTINGS) {
    for (const value of offered(s)) {
      if (!Number.isFinite(value) && typeof value !== "string") continue;
      const { values, problems } = parseSettings(fields, (name) => (name === s.name ? String(value) : null), "URL");
      assert.deepEqual(problems, [], `${s.name}=${value}`);
      assert.equal(values[s.name], value, `${s.name}=${value}`);
    }
    const f = fields[s.name];
    const outside = f.choices ? ["not-a-choice"] : [f.min - 1, ...(Number.isFinite(f.max) ? [f.max + 1] : [])];
    for (const value of outside) {
      const { values, problems } = parseSettings(fields, (name) => (name === s.name ? String(value) : null), "URL");
      assert.equal(problems.length, 1, `${s.name}=${value}`);
      assert.equal(values[s.name], defaults[s.name], `${s.name}=${value}`);
    }
  }
});

test("the settings start from a scenario: the first by default, custom for the table's defaults, any setting given over it", () => {
  const parse = (query) => parseLabSettings(fields, (name) => new URLSearchParams(query).get(name), "URL");
  const [first] = SCENARIOS;
  const opened = parse("");
  assert.equal(opened.scenario, first);
  assert.equal(opened.values.scenario, first.name);
  assert.deepEqual(opened.problems, []);
  for (const [name, value] of Object.entries(first.settings)) assert.equal(opened.values[name], value, name);

  const custom = parse("scenario=custom");
  assert.equal(custom.scenario, null);
  assert.deepEqual({ ...custom.values, scenario: undefined }, { ...defaults, scenario: undefined });

  const over = parse("batch=16&lr=0.02");
  assert.equal(over.scenario, first);
  assert.equal(over.values.batch, 16);
  assert.equal(over.values.lr, 0.02);
  assert.equal(over.values.micro, first.settings.micro);

  for (const x of SCENARIOS) assert.equal(parse(`scenario=${x.name}`).values.ctx, x.settings.ctx ?? defaults.ctx, x.name);

  const bad = parse("scenario=finetune");
  assert.equal(bad.scenario, first);
  assert.match(bad.problems.join(" "), /scenario="finetune" is not one of custom, fine-tuning/);
});
