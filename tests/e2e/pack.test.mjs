// The npm package as published (issue 30): `npm pack` of dist/npm/ holds
// exactly the files tests/package-files.txt lists, and its package.json the
// fields a registry and the bundlers read, with every `exports` entry a
// file in the package.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";

const repo = new URL("../../", import.meta.url).pathname;
const out = join(repo, "dist/npm");

test("npm pack holds exactly the listed files", () => {
  assert.ok(existsSync(join(out, "package.json")), "run `npm run build` first");
  const [packed] = JSON.parse(execFileSync("npm", ["pack", "--dry-run", "--json"], { cwd: out, encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
  const files = packed.files.map((f) => f.path.replace(/wasm-bindgen-rayon-[0-9a-f]+/, "wasm-bindgen-rayon-*")).sort();
  const listed = readFileSync(join(repo, "tests/package-files.txt"), "utf8").split("\n").filter((l) => l && !l.startsWith("#")).sort();
  assert.deepEqual(
    { added: files.filter((f) => !listed.includes(f)), missing: listed.filter((f) => !files.includes(f)) },
    { added: [], missing: [] },
    "the tarball's files against tests/package-files.txt",
  );
});

test("package.json carries what publishing and the bundlers need, and every export exists", () => {
  const pkg = JSON.parse(readFileSync(join(out, "package.json"), "utf8"));
  for (const field of ["name", "version", "license", "repository", "files", "exports", "types", "sideEffects", "description"]) {
    assert.ok(pkg[field] !== undefined && pkg[field] !== "", `package.json has ${field}`);
  }
  assert.equal(pkg.name, "gradlab");
  assert.equal(pkg.type, "module");
  assert.equal(pkg.dependencies, undefined, "no dependencies: the vendored code is in the package, as ES modules");
  // every target of every export, conditions included
  const targets = (v) => (typeof v === "string" ? [v] : Object.values(v).flatMap(targets));
  for (const [entry, target] of Object.entries(pkg.exports)) {
    for (const file of targets(target)) assert.ok(existsSync(join(out, file)), `exports["${entry}"] → ${file} is in the package`);
  }
  // the element script the README names, by its path
  assert.ok(pkg.exports["./www/elements.js"], "exports maps ./www/elements.js");
  assert.ok(existsSync(join(out, pkg.types)));
  // no vendored file needs another package: a require() or a bare import would fail in a bundler
  for (const file of ["vendor/d3-contour.esm.js", "vendor/uPlot.esm.js"]) {
    const text = readFileSync(join(out, file), "utf8");
    assert.doesNotMatch(text, /\brequire\s*\(/, `${file} has no require()`);
    assert.doesNotMatch(text, /(^|[;}])\s*(import|export)\b[^;"'`]*\bfrom\s*["'](?![./])/m, `${file} imports nothing by a bare name`);
  }
});
