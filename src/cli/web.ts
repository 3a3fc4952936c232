/** `saekit web`: write the explorer page (web/), a self-contained HTML file that opens from disk. */
import { copyFileSync, existsSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { packageRoot } from "../core/native.js";
import { printJson } from "./options.js";

/** Where the build (scripts/build-web.mjs) puts the page. */
export function explorerPage(): string {
  return join(packageRoot(), "dist", "web", "explorer.html");
}

export function registerWeb(program: Command): void {
  program
    .command("web")
    .description("write the saekit explorer, one self-contained HTML page (no server, no network): load an SAE and activations from local files, train an SAE in the page, measure it, browse its latents, download it in SAELens format")
    .option("--out <file>", "where to write the page", "saekit-explorer.html")
    .action((o) => {
      const page = explorerPage();
      if (!existsSync(page)) throw new Error(`${page} is missing; build it with npm run build (it needs the dev dependency esbuild)`);
      const out = resolve(o.out);
      mkdirSync(dirname(out), { recursive: true });
      copyFileSync(page, out);
      printJson({ out, open: `file://${out}` });
    });
}
