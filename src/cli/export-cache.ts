/** `saekit export-cache`: write an activation store as SAELens' activation cache, for training in Python. */
import { basename, join } from "node:path";
import type { Command } from "commander";
import { exportSaelensCache } from "../data/saelens-cache.js";
import { storesIn } from "../data/store.js";
import { positiveInt, printJson } from "./options.js";

export function registerExportCache(program: Command): void {
  program
    .command("export-cache")
    .description("write an activation store (saekit harvest) as SAELens' activation cache: a Hugging Face dataset saved to disk, one row per context (the hook's Array2D column and token_ids), which datasets.load_from_disk and SAELens' cached_activations_path read; a killed export rerun continues")
    .requiredOption("--store <dir>", "activation store folder (or a folder of stores, one per hook: each is written to --out/<hook>)")
    .requiredOption("--out <dir>", "an empty folder to write the cache to")
    .option("--batch-contexts <n>", "contexts per Arrow record batch", positiveInt, 1000)
    .action((o) => {
      const stores = storesIn(o.store);
      const pairs = stores.length > 0 ? stores.map((s) => [s, join(o.out, basename(s))] as const) : [[o.store, o.out] as const];
      for (const [store, out] of pairs) {
        const r = exportSaelensCache(store, out, { batchContexts: o.batchContexts });
        printJson({ store, out: r.out, column: r.column, shape: r.shape, dtype: r.dtype, contexts: r.contexts, tokens: r.tokens, files: r.files.length });
      }
    });
}
