/** `saekit measure`: an SAE's reconstruction and sparsity on stored activations, without a model. */
import type { Command } from "commander";
import { writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { openActivationSource } from "../data/open.js";
import { measureSae } from "../eval/measure.js";
import { fetchSae } from "../sae/open.js";
import { formatMetrics } from "./lm.js";
import { SAE_HELP } from "./lm-options.js";
import { dataExclusions } from "./exclusions.js";
import { defaultThreads, intList, nonNegativeInt, positiveInt, printJson, tokenExclusions } from "./options.js";

export function registerMeasure(program: Command): void {
  program
    .command("measure")
    .description("measure an SAE on stored activations, no model needed: FVU, explained variance, cosine, L0, alive and dense fractions, density histogram (against the targets of a transcoder's store)")
    .requiredOption("--sae <path>", SAE_HELP)
    .requiredOption("--data <source>", "activations: a store folder (best one the SAE was not trained on), a SAELens activation cache (folder, .arrow or .parquet files, or hf:ORG/NAME), an activation file (--tensor, --shape) or synthetic:...")
    .option("--tokens <n>", "activation rows to measure on", positiveInt, 65536)
    .option("--tensor <name>", "tensor to read from a .safetensors or .pt file, or column of a SAELens cache / .arrow file")
    .option("--shape <rows,d>", "shape of a raw float32 file", intList)
    .option("--seed <n>", "seed of the store's shuffle (which rows are read)", nonNegativeInt, 0)
    .option("--exclude-tokens <ids>", "leave out the rows of these tokens, as training with --exclude-tokens did: \"special\" (a store's manifest lists them) or ids, e.g. 0,1; a store or a SAELens cache", tokenExclusions)
    .option("--out <file>", "also write the JSON result here")
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .option("--cache-dir <dir>", "where hf: SAEs and datasets are downloaded (default ~/.cache/saekit/hub or $SAEKIT_CACHE)")
    .action(async (o) => {
      setThreads(o.threads);
      const { sae } = await fetchSae(o.sae, { cacheDir: o.cacheDir });
      const source = await openActivationSource(o.data, { hub: { cacheDir: o.cacheDir }, seed: o.seed, tensor: o.tensor, shape: o.shape, excludeTokens: dataExclusions(o.excludeTokens, o.data) });
      const r = measureSae(sae, source, o.tokens);
      const result = { sae: o.sae, data: o.data, architecture: sae.cfg.architecture, d_sae: sae.cfg.d_sae, transcoder: source.dTarget !== undefined, ...r };
      if (o.out) writeJsonAtomic(o.out, result);
      if (process.stdout.isTTY) process.stdout.write(formatMetrics([["rows", String(r.rows)]], r) + "\n");
      else printJson(result);
    });
}
