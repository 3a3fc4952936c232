/** `saekit export-cache`: write an activation store as SAELens' activation cache, for training in Python or the hub. */
import { basename, join } from "node:path";
import { type Command, Option } from "commander";
import { CACHE_FORMATS, exportSaelensCache } from "../data/saelens-cache.js";
import { storesIn } from "../data/store.js";
import { positiveInt, printJson } from "./options.js";

export function registerExportCache(program: Command): void {
  program
    .command("export-cache")
    .description("write an activation store (saekit harvest) as SAELens' activation cache, one row per context (the hook's Array2D column and token_ids): a Hugging Face dataset saved to disk, which datasets.load_from_disk and SAELens' cached_activations_path read, or (--format parquet) the Parquet files push_to_hub uploads, for a dataset repository on the hub; a killed export rerun continues")
    .requiredOption("--store <dir>", "activation store folder (or a folder of stores, one per hook: each is written to --out/<hook>)")
    .requiredOption("--out <dir>", "an empty folder to write the cache to")
    .addOption(new Option("--format <f>", "arrow: a dataset saved to disk (data-NNNNN-of-NNNNN.arrow, state.json); parquet: data/train-NNNNN-of-NNNNN.parquet, as on the hub").choices([...CACHE_FORMATS]).default("arrow"))
    .option("--batch-contexts <n>", "contexts per Arrow record batch or Parquet row group", positiveInt, 1000)
    .action((o) => {
      const stores = storesIn(o.store);
      const pairs = stores.length > 0 ? stores.map((s) => [s, join(o.out, basename(s))] as const) : [[o.store, o.out] as const];
      for (const [store, out] of pairs) {
        const r = exportSaelensCache(store, out, { format: o.format, batchContexts: o.batchContexts });
        printJson({ store, out: r.out, column: r.column, shape: r.shape, dtype: r.dtype, contexts: r.contexts, tokens: r.tokens, files: r.files.length });
      }
    });
}
