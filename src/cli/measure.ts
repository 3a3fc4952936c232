/** `saekit measure`: an SAE's reconstruction and sparsity on stored activations, without a model. */
import { mkdirSync } from "node:fs";
import { basename, join } from "node:path";
import type { Command } from "commander";
import { writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { openActivationSource } from "../data/open.js";
import { type MeasureResult, measureSaesWithin } from "../eval/measure.js";
import type { SaeConfig } from "../sae/config.js";
import { defaultGroupMemory } from "../util/load-groups.js";
import { fetchSae, saeFolderPaths } from "../sae/open.js";
import { f4, formatMetrics, formatTable } from "./lm.js";
import { SAE_HELP } from "./lm-options.js";
import { dataExclusions } from "./exclusions.js";
import { defaultThreads, intList, nonNegativeInt, positiveInt, printJson, saeMemoryOption, tokenExclusions } from "./options.js";

export function registerMeasure(program: Command): void {
  program
    .command("measure")
    .description("measure an SAE on stored activations, no model needed: FVU, explained variance, cosine, L0, alive and dense fractions, density histogram (against the targets of a transcoder's store)")
    .requiredOption("--sae <path>", `${SAE_HELP}; or a folder of SAE folders (a run's checkpoints/, a sweep, one run per hook), each measured on the same rows`)
    .requiredOption("--data <source>", "activations: a store folder (best one the SAE was not trained on), a SAELens activation cache (folder, .arrow or .parquet files, or hf:ORG/NAME), an activation file (--tensor, --shape) or synthetic:...")
    .option("--tokens <n>", "activation rows to measure on", positiveInt, 65536)
    .option("--tensor <name>", "tensor to read from a .safetensors or .pt file, or column of a SAELens cache / .arrow file")
    .option("--shape <rows,d>", "shape of a raw float32 file", intList)
    .option("--seed <n>", "seed of the store's shuffle (which rows are read)", nonNegativeInt, 0)
    .option("--exclude-tokens <ids>", "leave out the rows of these tokens, as training with --exclude-tokens did: \"special\" (a store's manifest lists them) or ids, e.g. 0,1; a store or a SAELens cache", tokenExclusions)
    .option("--out <file>", "also write the JSON result here (with a folder of SAEs: a folder, <SAE>.json each)")
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .option("--cache-dir <dir>", "where hf: SAEs and datasets are downloaded (default ~/.cache/saekit/hub or $SAEKIT_CACHE)")
    .addOption(saeMemoryOption())
    .action(async (o) => {
      setThreads(o.threads);
      // A folder of SAE folders: every SAE on the same rows, read once for as many SAEs as
      // --sae-memory holds, the same rows again (the same seed) for the next group.
      const folder = saeFolderPaths(o.sae);
      const paths = folder ?? [o.sae];
      const cfgs: SaeConfig[] = [];
      let transcoder = false;
      const load = async (i: number) => {
        const { sae } = await fetchSae(paths[i]!, { cacheDir: o.cacheDir });
        cfgs[i] = sae.cfg;
        return sae;
      };
      const openSource = async () => {
        const source = await openActivationSource(o.data, { hub: { cacheDir: o.cacheDir }, seed: o.seed, tensor: o.tensor, shape: o.shape, excludeTokens: dataExclusions(o.excludeTokens, o.data) });
        transcoder = source.dTarget !== undefined;
        return source;
      };
      const measured = await measureSaesWithin(paths.length, load, openSource, o.tokens, o.saeMemory ?? defaultGroupMemory());
      const results = measured.map((r, i) => ({
        sae: paths[i]!, data: o.data, architecture: cfgs[i]!.architecture, d_sae: cfgs[i]!.d_sae, transcoder, ...r,
      }));
      if (!folder) {
        const result = results[0]!;
        if (o.out) writeJsonAtomic(o.out, result);
        if (process.stdout.isTTY) process.stdout.write(formatMetrics([["rows", String(result.rows)]], result) + "\n");
        else printJson(result);
        return;
      }
      if (o.out) {
        mkdirSync(o.out, { recursive: true });
        results.forEach((r) => writeJsonAtomic(join(o.out, `${basename(r.sae)}.json`), r));
      }
      if (process.stdout.isTTY) process.stdout.write(formatMeasureSummary(results) + "\n");
      else for (const r of results) printJson(r);
    });
}

/** Several SAEs' measurements as one table, a row each. */
function formatMeasureSummary(results: Array<MeasureResult & { sae: string }>): string {
  return formatTable(["SAE", "FVU", "explained variance", "cosine", "L0", "alive"], results.map((r) => [r.sae,
    f4(r.reconstruction.fvu), f4(r.reconstruction.explained_variance), f4(r.reconstruction.cossim), r.sparsity.l0.toFixed(2), f4(r.sparsity.frac_alive)]));
}
