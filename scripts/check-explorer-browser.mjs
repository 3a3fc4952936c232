#!/usr/bin/env node
// Drives the explorer page (`saekit web`) in a real browser, as a user would: generate
// synthetic activations, train an SAE, measure it with the t-SNE map, open a latent; then
// load stories260K (../shared/data), compute activations from TinyStories text, train on
// them and show a prompt token by token. test/web.test.ts runs the same flows in Node
// against a stand-in DOM; this catches what only a browser can (layout, real DOM and File
// APIs, WebAssembly in the browser's engine). Not part of `npm test`: it needs Debian's
// chromium and playwright-core, neither of which a clean machine has:
//   apt-get install -y chromium && npm i --no-save playwright-core
//   node scripts/check-explorer-browser.mjs [--screenshots DIR]
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const shared = join(root, "..", "shared", "data");
const chromiumPath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const shotsAt = process.argv.indexOf("--screenshots");
const shots = shotsAt > 0 ? process.argv[shotsAt + 1] : undefined;

let chromium;
try {
  ({ chromium } = await import("playwright-core"));
} catch {
  console.error("playwright-core is not installed: npm i --no-save playwright-core");
  process.exit(2);
}
if (!existsSync(chromiumPath)) {
  console.error(`no browser at ${chromiumPath}: apt-get install -y chromium (or set CHROMIUM)`);
  process.exit(2);
}

const pageDir = mkdtempSync(join(tmpdir(), "saekit-explorer-"));
const page_ = join(pageDir, "explorer.html");
execFileSync(process.execPath, [join(root, "bin", "saekit.js"), "web", "--out", page_]);

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}

const browser = await chromium.launch({ executablePath: chromiumPath, args: ["--no-sandbox"] });
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  const text = (sel) => page.textContent(sel);
  const waitFor = (sel, re, timeout = 120_000) =>
    page.waitForFunction(([s, r]) => new RegExp(r).test(document.querySelector(s).textContent), [sel, re.source], { timeout });
  await page.goto("file://" + page_);
  check(/WebAssembly SIMD/.test(await text("#runtime")), `runtime line: ${await text("#runtime")}`);

  // Synthetic data -> train -> measure and explore -> one latent.
  await page.click("#synth");
  await waitFor("#acts-status", /rows of width/);
  await page.fill("#steps", "300");
  await page.click("#train");
  await waitFor("#train-status", /300 \/ 300/);
  const fvu = Number(/FVU ([\d.]+)/.exec(await text("#train-status"))?.[1]);
  check(fvu < 0.5, `trained 300 steps on toy data: ${await text("#train-status")}`);
  await page.check("#tsne");
  await page.click("#explore");
  await waitFor("#explore-status", /measured on/);
  check(/living latents/.test(await text("#metrics")), "metrics table shown");
  await page.waitForFunction(() => document.querySelectorAll("#figures svg").length >= 6, null, { timeout: 120_000 });
  check(true, `figures drawn: ${await page.$$eval("#figures svg", (s) => s.length)} SVGs`);
  await (await page.$("[data-latent]")).click();
  await waitFor("#latent-detail", /Latent \d+/, 10_000);
  check(true, "a latent opens");
  if (shots) await page.screenshot({ path: join(shots, "explorer-synthetic.png"), fullPage: true });

  // A language model from its files -> activations from text -> train -> a prompt.
  const model = join(shared, "stories260K");
  const textFile = join(shared, "tinystories", "tinystories_train_first2MiB.txt");
  if (existsSync(model) && existsSync(textFile)) {
    await page.setInputFiles("#model-files", [join(model, "stories260K.bin"), join(model, "tok512.bin")]);
    await waitFor("#model-status", /model loaded/);
    check(true, await text("#model-status"));
    await page.setInputFiles("#text-file", textFile);
    await page.fill("#lm-tokens", "8000");
    await page.click("#model-acts");
    await waitFor("#acts-status", /contexts: \d+ rows/);
    check(true, await text("#acts-status"));
    await page.fill("#steps", "200");
    await page.click("#train");
    await waitFor("#train-status", /200 \/ 200/);
    await page.click("#show-prompt");
    await waitFor("#prompt-status", /^\d+ tokens at/); // not "reading N tokens at ...", set before the table
    const rows = await page.$$eval("#prompt-view tr", (r) => r.length);
    check(rows > 10, `prompt view: ${await text("#prompt-status")}, ${rows} table rows`);
    if (shots) await page.screenshot({ path: join(shots, "explorer-lm.png"), fullPage: true });
  } else {
    console.log(`skip the language-model flow: ${model} or ${textFile} is missing`);
  }
  check(errors.length === 0, `no errors in the page${errors.length ? ": " + errors.join("; ") : ""}`);
} finally {
  await browser.close();
  rmSync(pageDir, { recursive: true, force: true });
}
if (failures.length) {
  console.error(`${failures.length} check(s) failed`);
  process.exit(1);
}
