// Embedding in someone else's blog (issue 11): the npm package that
// `npm run build` packs is installed into a separate static site, served on
// another port under another path, and two labs run there under the strict
// Content-Security-Policy, on one shared GPU device, styled in their shadow
// roots whatever the blog's own CSS says, themed through custom properties.
// The package's types check with tsc. A second page loads the elements from
// our site's origin instead, as from a CDN.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startServer } from "../../scripts/serve.mjs";
import { ARTIFACTS, FAST, gpuDeviceCount, open, recordGpuDevices, serveSite, site } from "./browser.mjs";

serveSite();

const repo = new URL("../../", import.meta.url).pathname;
const CSP = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'";
// on WebGPU even where it is a software renderer: the labs share its device
const fastAttributes = `${FAST}&device=webgpu`.split("&").map((kv) => kv.replace("=", '="') + '"').join(" ");
let blog;
let blogServer;
let blogBase;

before(() => {
  const { version } = JSON.parse(readFileSync(join(repo, "dist/npm/package.json"), "utf8"));
  const tarball = join(repo, `dist/gradlab-${version}.tgz`);
  blog = mkdtempSync(join(tmpdir(), "gradlab-blog-"));
  writeFileSync(join(blog, "package.json"), JSON.stringify({ name: "a-blog", private: true }));
  execFileSync("npm", ["install", "--no-audit", "--no-fund", "--ignore-scripts", tarball], { cwd: blog, stdio: "inherit" });
  // the blog's own CSS: it would wreck our panels if it reached them
  writeFileSync(
    join(blog, "blog.css"),
    `body { font-family: Georgia, serif; }
button { background: rgb(255, 0, 0) !important; border-radius: 0; }
div { letter-spacing: 3px; }
h3 { display: none; }
#themed { --gradlab-panel: rgb(250, 240, 200); --gradlab-accent: rgb(1, 2, 3); }
`,
  );
  writeFileSync(join(blog, "favicon.svg"), readFileSync(join(repo, "www/favicon.svg")));
  mkdirSync(join(blog, "posts", "accumulation"), { recursive: true });
  writeFileSync(
    join(blog, "posts", "accumulation", "index.html"),
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${CSP}">
<title>A post that embeds gradlab</title>
<link rel="icon" href="../../favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="../../blog.css">
<script type="module" src="../../node_modules/gradlab/www/elements.js"></script>
</head><body>
<p>Some prose, then two labs. <button id="blog-button" type="button">The blog's button</button></p>
<gradlab-lab id="plain" ${fastAttributes}></gradlab-lab>
<gradlab-lab id="themed" ${fastAttributes} seed="2"></gradlab-lab>
<gradlab-playground id="pg" surface="saddle" autoplay></gradlab-playground>
</body></html>
`,
  );
  // the package's types, as a TypeScript reader of the package uses them
  writeFileSync(
    join(blog, "check.ts"),
    `import type { GradlabLabAttributes, LabCurves } from "gradlab";
import { loadGradlab } from "gradlab/wasm";
const lab = document.createElement("gradlab-lab");
const curves: LabCurves | undefined = lab.curves();
export const attributes: GradlabLabAttributes = { lr: "0.01", batch: "8", micro: "2", precision: "f64", device: "cpu", "sync-url": "" };
// @ts-expect-error 3 is not one of the batch sizes
export const wrong: GradlabLabAttributes = { batch: "3" };
export async function build(): Promise<number> {
  const gl = await loadGradlab();
  const problem: string | undefined = gl.validateLabConfig({ batch: 8 }) ?? gl.validateLabConfig({ batch: 8 }, "cpu");
  if (problem) throw new Error(problem);
  const made = await gl.WebLab.create({ batch: 8 }, "cpu");
  // @ts-expect-error "gpu" is not a backend
  gl.WebLab.create({ batch: 8 }, "gpu");
  const steps = made.steps();
  made.free();
  return steps + (curves?.step.length ?? 0);
}
`,
  );
  writeFileSync(
    join(blog, "tsconfig.json"),
    JSON.stringify({ compilerOptions: { strict: true, noEmit: true, target: "es2022", module: "esnext", moduleResolution: "bundler", lib: ["esnext", "dom"], types: [] }, files: ["check.ts"] }),
  );
});

before(async () => {
  blogServer = await startServer(0, "/blog/", blog);
  blogBase = `http://127.0.0.1:${blogServer.address().port}/blog/`;
});

after(() => {
  blogServer?.close();
  if (blog) rmSync(blog, { recursive: true, force: true });
});

test("the package's types check: attributes, curves() and the wasm API", () => {
  execFileSync(join(repo, "node_modules/.bin/tsc"), ["-p", join(blog, "tsconfig.json")], { stdio: "inherit" });
});

// The blog's page, counting the GPU devices it opens (gpuDeviceCount).
const openCounting = (url) => open(url, { before: recordGpuDevices });

const statusOf = (page, id) => page.evaluate((id) => deepQuery(`#${id} [data-testid="status"]`)?.textContent ?? "", id);
const stepsOf = (page, id) => page.evaluate((id) => Number(deepQuery(`#${id} [data-testid="step-count"]`).textContent), id);
const waitFor = (page, fn, arg, timeout = 240_000) => page.waitForFunction(fn, arg, { timeout, polling: 250 });

test("two labs from the installed package run in another site under its CSP, on one GPU device, styled apart", async () => {
  const { browser, page, errors } = await openCounting(`${blogBase}posts/accumulation/`);
  try {
    for (const id of ["plain", "themed"]) {
      await waitFor(page, (id) => /ready/.test(deepQuery(`#${id} [data-testid="status"]`)?.textContent ?? ""), id, 180_000);
      assert.match(await statusOf(page, id), /WebGPU/, `${id} runs on WebGPU`);
    }
    assert.equal(await gpuDeviceCount(page), 1, "both labs share one GPU device");

    await page.click('#plain [data-testid="train-toggle"]');
    await page.click('#themed [data-testid="train-toggle"]');
    for (const id of ["plain", "themed"]) await waitFor(page, (id) => Number(deepQuery(`#${id} [data-testid="step-count"]`).textContent) >= 3, id);

    // the blog's CSS stays out, ours stays in, the custom properties cross
    const look = await page.evaluate(() => {
      const inside = (id, sel) => getComputedStyle(deepQuery(`#${id} ${sel}`));
      return {
        ourButton: inside("plain", '[data-testid="train-toggle"]').backgroundColor,
        ourRadius: inside("plain", '[data-testid="train-toggle"]').borderRadius,
        ourHeading: inside("plain", "h3").display,
        ourSpacing: inside("plain", ".gl-rest").letterSpacing,
        plainPanel: inside("plain", ".gl-lab").backgroundColor,
        themedPanel: inside("themed", ".gl-lab").backgroundColor,
        blogButton: getComputedStyle(document.getElementById("blog-button")).borderRadius,
        shadow: Boolean(document.getElementById("plain").shadowRoot),
      };
    });
    assert.ok(look.shadow, "the lab draws in a shadow root");
    assert.notEqual(look.ourButton, "rgb(255, 0, 0)", "the blog's button rule does not reach in");
    assert.equal(look.ourRadius, "6px");
    assert.notEqual(look.ourHeading, "none", "the blog's h3 rule does not reach in");
    assert.equal(look.ourSpacing, "normal");
    assert.equal(look.themedPanel, "rgb(250, 240, 200)", "--gradlab-panel themes the panel");
    assert.notEqual(look.plainPanel, look.themedPanel);
    assert.equal(look.blogButton, "0px", "our button rule does not leak out");
    await page.screenshot({ path: ARTIFACTS + "embed-blog.png", fullPage: true });

    // the playground from the package draws its descent (its vendored contour code loaded)
    await waitFor(page, () => Number(deepQuery('#pg [data-testid="surface"]')?.dataset.steps ?? 0) > 5, null, 60_000);

    // removing one stops it; the other trains on, on the same device
    await page.evaluate(() => {
      window.removed = document.getElementById("themed");
      window.removed.remove();
    });
    assert.match(await page.evaluate(() => window.removed.shadowRoot.querySelector('[data-testid="status"]').textContent), /Stopped: the lab left the page/);
    const removedAt = await page.evaluate(() => window.removed.panel.training.stepsTaken);
    const at = await stepsOf(page, "plain");
    await waitFor(page, (n) => Number(deepQuery('#plain [data-testid="step-count"]').textContent) >= n + 3, at);
    assert.equal(await gpuDeviceCount(page), 1);
    assert.equal(await page.evaluate(() => window.removed.panel.training.stepsTaken), removedAt, "the removed lab took no step");
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});

test("the elements load from another origin, as from a CDN, under a CSP that names it", async () => {
  const origin = new URL(site.base).origin;
  const cdn = `${site.base}www/elements.js`;
  writeFileSync(
    join(blog, "posts", "accumulation", "cdn.html"),
    `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'self' ${origin}; script-src 'self' ${origin} 'wasm-unsafe-eval'">
<title>From a CDN</title>
<link rel="icon" href="../../favicon.svg" type="image/svg+xml">
<script type="module" src="${cdn}"></script>
</head><body>
<gradlab-lab id="lab" ${fastAttributes}></gradlab-lab>
<gradlab-playground id="pg" autoplay></gradlab-playground>
</body></html>
`,
  );
  const { browser, page, errors } = await openCounting(`${blogBase}posts/accumulation/cdn.html`);
  try {
    assert.notEqual(new URL(blogBase).origin, origin, "the two sites are different origins");
    await waitFor(page, () => /ready/.test(deepQuery('#lab [data-testid="status"]')?.textContent ?? ""), null, 180_000);
    await page.click('#lab [data-testid="train-toggle"]');
    await waitFor(page, () => Number(deepQuery('#lab [data-testid="step-count"]').textContent) >= 2, null);
    await waitFor(page, () => Number(deepQuery('#pg [data-testid="surface"]')?.dataset.steps ?? 0) > 5, null, 60_000);
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
