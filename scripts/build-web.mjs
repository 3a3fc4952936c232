#!/usr/bin/env node
// Builds the saekit explorer (web/): web/explorer.ts and the saekit browser build it uses,
// bundled by esbuild into one script inlined in web/index.html, written to
// dist/web/explorer.html. One self-contained file: it opens from disk, with no server and
// no network. `saekit web` writes a copy wherever a user wants it.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

/** The explorer page as one HTML string. */
export async function buildExplorer() {
  const { build } = await import("esbuild").catch((err) => {
    throw Object.assign(new Error(`esbuild is not installed (${err.message})`), { noBundler: true });
  });
  const result = await build({
    entryPoints: [join(root, "web", "explorer.ts")], bundle: true, platform: "browser", format: "iife",
    target: "es2022", minify: true, write: false, logLevel: "silent",
    plugins: [{
      // The page runs on the TypeScript reference kernels: swap the addon loader for its
      // browser stand-in, as the package's "browser" field does for the built files.
      name: "saekit-browser",
      setup(b) {
        b.onResolve({ filter: /^\.\/native\.js$/ }, (args) =>
          args.importer.endsWith(join("src", "core", "kernels.ts")) ? { path: join(root, "src", "core", "native-browser.ts") } : undefined);
      },
    }],
  });
  // A closing script tag inside the bundle would end the inline script early.
  const script = result.outputFiles[0].text.replace(/<\/script/gi, "<\\/script");
  const page = readFileSync(join(root, "web", "index.html"), "utf8");
  return page.replace("<!-- saekit bundle -->", () => `<script>\n${script}</script>`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  let html;
  try {
    html = await buildExplorer();
  } catch (err) {
    // Installs without dev dependencies (no esbuild) keep the page that shipped in dist/;
    // any other failure is a broken page and fails the build.
    if (!err.noBundler) throw err;
    console.warn(`saekit: the web explorer was not rebuilt: ${err.message}`);
    process.exit(0);
  }
  const out = join(root, "dist", "web", "explorer.html");
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, html);
}
