// The package in the tools blog authors build with (issue 30): the packed
// tarball (`npm run build` writes it) is installed into a fresh project per
// recipe of the README's "With a bundler" section: Vite's dev server, `vite
// build` + `vite preview`, an esbuild bundle, a webpack 5 production build
// and a plain script tag. Each project is one of tests/consumers/ (the files
// the README quotes); the README's own commands are run in it, word for
// word, with the tools `npx` finds in the project: the versions pinned in
// our package-lock.json, linked in as `npm install --save-dev` would put them.
// In each: no page error, no failed request, the lab trains 20 steps in a Web
// Worker, the playground draws, precision=f64 trains, and the shipped base's
// link downloads a safetensors file.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ARTIFACTS, open, openAdvanced, waitForSteps, waitReady } from "./browser.mjs";

const repo = new URL("../../", import.meta.url).pathname;
const README = readFileSync(join(repo, "README.md"), "utf8");
const { version } = JSON.parse(readFileSync(join(repo, "dist/npm/package.json"), "utf8"));
const TARBALL = `gradlab-${version}.tgz`;
mkdirSync(ARTIFACTS, { recursive: true });

// `recipe`: the README's marker before its commands; `project`: the folder
// of tests/consumers/; `url`: where its last command serves the page.
const RECIPES = [
  { recipe: "vite-dev", project: "vite", url: "http://localhost:5173/", tools: ["vite"] },
  { recipe: "vite-build", project: "vite", url: "http://localhost:4173/", tools: ["vite"] },
  { recipe: "esbuild", project: "esbuild", url: "http://localhost:8000/", tools: ["esbuild"] },
  { recipe: "webpack", project: "webpack", url: "http://localhost:8080/", tools: ["webpack", "http-server"] },
  { recipe: "script-tag", project: "script-tag", url: "http://localhost:8081/", tools: ["http-server"] },
];

// The shell commands of the README's block after `<!-- recipe: name -->`.
function commandsOf(recipe) {
  const marker = `<!-- recipe: ${recipe} -->`;
  const at = README.indexOf(marker);
  assert.ok(at >= 0, `README.md has no ${marker}`);
  const block = README.slice(at).match(/```sh\n([\s\S]*?)```/);
  assert.ok(block, `README.md: no sh block after ${marker}`);
  return block[1].split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));
}

const running = [];
after(() => {
  for (const child of running) {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {}
  }
});

// A fresh project: the consumer's files, the tarball beside them, the tools linked in.
function freshProject({ project, tools }) {
  const dir = mkdtempSync(join(tmpdir(), `gradlab-${project}-`));
  cpSync(join(repo, "tests/consumers", project), dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: `a-${project}-site`, private: true, type: "module" }, null, 2));
  cpSync(join(repo, "dist", TARBALL), join(dir, TARBALL));
  return {
    dir,
    linkTools() {
      mkdirSync(join(dir, "node_modules", ".bin"), { recursive: true });
      for (const tool of tools) symlinkSync(join(repo, "node_modules", ".bin", tool), join(dir, "node_modules", ".bin", tool));
    },
  };
}

async function waitForServer(url, child, output) {
  const until = Date.now() + 90_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`the server exited (${child.exitCode}): ${output.join("")}`);
    try {
      if ((await fetch(url)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${url} did not answer in 90 s: ${output.join("")}`);
}

// Runs the recipe's commands in a fresh project: all but the last to the
// end, the last (the server) left running. Resolves to the project's folder.
async function build(r) {
  const commands = commandsOf(r.recipe);
  const { dir, linkTools } = freshProject(r);
  for (const [i, command] of commands.slice(0, -1).entries()) {
    console.log(`[${r.recipe}] $ ${command}`);
    execFileSync("bash", ["-c", command], { cwd: dir, stdio: "inherit", env: { ...process.env, CI: "true" } });
    // the tools, once npm install has made node_modules/
    if (i === 0) linkTools();
  }
  const server = commands.at(-1);
  console.log(`[${r.recipe}] $ ${server}`);
  const output = [];
  // stdin kept open, as a terminal's: esbuild's server stops when it closes
  const child = spawn("bash", ["-c", server], { cwd: dir, detached: true, stdio: ["pipe", "pipe", "pipe"] });
  running.push(child);
  child.stdout.on("data", (d) => output.push(String(d)));
  child.stderr.on("data", (d) => output.push(String(d)));
  await waitForServer(r.url, child, output);
  return { dir, stop: () => process.kill(-child.pid, "SIGTERM") };
}

// What went wrong on `page`: failed requests and answers of 400 and up.
function watchRequests(page, failed) {
  page.on("requestfailed", (req) => failed.push(`${req.url()}: ${req.failure()?.errorText}`));
  page.on("response", (res) => res.status() >= 400 && failed.push(`${res.url()}: HTTP ${res.status()}`));
}

// A safetensors file: an 8-byte little-endian header length, then that much JSON.
function assertSafetensors(bytes) {
  assert.ok(bytes.length > 8, "the download has bytes");
  const n = Number(bytes.readBigUInt64LE(0));
  assert.ok(n > 2 && 8 + n <= bytes.length, `header length ${n} fits in ${bytes.length} bytes`);
  const header = JSON.parse(bytes.subarray(8, 8 + n).toString("utf8"));
  assert.ok(Object.keys(header).some((k) => k !== "__metadata__"), "the header names tensors");
}

async function checkSite(r) {
  const failed = [];
  const { browser, page, errors } = await open(r.url, { before: (p) => watchRequests(p, failed) });
  try {
    await waitReady(page);
    await page.click('gradlab-lab [data-testid="train-toggle"]');
    await waitForSteps(page, 20);
    const inPage = await page.evaluate(() => deepQuery("gradlab-lab").panel.training.lab.onPageThread());
    assert.equal(inPage, false, "the lab trains in its Web Worker, not on the page's thread");
    assert.ok(page.workers().length >= 1, "a worker runs");
    await page.click('gradlab-lab [data-testid="train-toggle"]');
    await page.waitForFunction(() => Number(deepQuery('[data-testid="surface"]')?.dataset.steps ?? 0) > 5, null, { timeout: 60_000 });
    await page.screenshot({ path: `${ARTIFACTS}bundler-${r.recipe}.png` });

    // the shipped base's link, in Advanced beside where the weights start
    await openAdvanced(page);
    const [download] = await Promise.all([page.waitForEvent("download", { timeout: 30_000 }), page.click("gradlab-lab a[download]")]);
    assert.match(download.suggestedFilename(), /\.safetensors$/);
    assertSafetensors(readFileSync(await download.path()));

    // the f64 reference: the module's full build, in the worker
    await page.goto(`${r.url}?precision=f64`);
    await waitReady(page);
    assert.match(await page.evaluate(() => deepQuery('[data-testid="status"]').textContent), /f64|reference/i);
    await page.click('gradlab-lab [data-testid="train-toggle"]');
    await waitForSteps(page, 3);
    assert.deepEqual(errors, [], "no page error");
    assert.deepEqual(failed, [], "no failed request");
  } catch (e) {
    await page.screenshot({ path: `${ARTIFACTS}bundler-${r.recipe}-failed.png` }).catch(() => {});
    const lines = await page.evaluate(() => [deepQuery('[data-testid="status"]')?.textContent, deepQuery('[data-testid="error"]')?.textContent]).catch(() => []);
    console.log(`[${r.recipe}] failed; status and error lines: ${JSON.stringify(lines)}; page errors: ${JSON.stringify(errors)}; failed requests: ${JSON.stringify(failed)}`);
    throw e;
  } finally {
    await browser.close();
  }
}

for (const r of RECIPES) {
  test(`the packed package with ${r.recipe}: the README's commands build and serve a page that trains in a worker`, { timeout: 600_000 }, async () => {
    const { dir, stop } = await build(r);
    try {
      await checkSite(r);
    } finally {
      stop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test("the README quotes each consumer's files as they are (a page: its lines that load gradlab)", () => {
  for (const project of new Set(RECIPES.map((r) => r.project))) {
    const root = join(repo, "tests/consumers", project);
    for (const file of readdirSync(root, { recursive: true })) {
      let text;
      try {
        text = readFileSync(join(root, file), "utf8");
      } catch {
        continue; // a folder
      }
      // a page: the lines that load gradlab; any other file whole
      const quoted = file.endsWith(".html") ? text.split("\n").filter((l) => /<script|gradlab-assets/.test(l)) : [text.trim()];
      for (const q of quoted) assert.ok(README.includes(q), `README.md quotes tests/consumers/${project}/${file} as it is: ${q}`);
    }
  }
});
