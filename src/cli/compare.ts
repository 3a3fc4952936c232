/** `saekit compare`: how alike two SAEs' decoder directions are (MMCS both ways). */
import { join } from "node:path";
import type { Command } from "commander";
import { maxCosines, matchSummary } from "../analysis/compare.js";
import { svgToPng } from "../analysis/png.js";
import { histogramSvg } from "../analysis/svg.js";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { linearHistogram } from "../eval/metrics.js";
import { fetchSae } from "../sae/open.js";
import { decoderMatrix } from "../sae/sae.js";
import { SAE_HELP } from "./lm-options.js";
import { defaultThreads, finiteNumber, positiveInt, printJson } from "./options.js";

export function registerCompare(program: Command): void {
  program
    .command("compare")
    .description("compare two SAEs' dictionaries: for each latent the largest cosine between its decoder direction and the other SAE's, their mean (MMCS) and the fraction matched, both ways")
    .requiredOption("--sae <path>", `${SAE_HELP}; give it twice`, (v: string, prev: string[] = []) => [...prev, v])
    .option("--threshold <x>", "a latent counts as matched above this cosine", finiteNumber, 0.9)
    .option("--abs", "compare |cos|, for signed latents (abstopk), where a flipped direction is the same feature")
    .option("--out <dir>", "also write compare.json and histograms of the best cosines (SVG and PNG)")
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .option("--cache-dir <dir>", "where hf: SAEs are downloaded (default ~/.cache/saekit/hub or $SAEKIT_CACHE)")
    .action(async (o) => {
      setThreads(o.threads);
      const paths = o.sae as string[];
      if (paths.length !== 2) throw new Error(`--sae: give exactly two SAEs, got ${paths.length}`);
      const [a, b] = await Promise.all(paths.map((p) => fetchSae(p, { cacheDir: o.cacheDir })));
      const d = a!.sae.cfg.d_in;
      if (b!.sae.cfg.d_in !== d) throw new Error(`${paths[0]} reads ${d}-dim activations, ${paths[1]} ${b!.sae.cfg.d_in}-dim: nothing to compare`);
      const best = maxCosines(decoderMatrix(a!.sae, "compare"), decoderMatrix(b!.sae, "compare"), d, { abs: o.abs === true });
      const side = (path: string, d_sae: number, cos: Float32Array) => ({
        sae: path, d_sae, ...matchSummary(cos, o.threshold), best_cos_histogram: linearHistogram(Array.from(cos), 40),
      });
      const result = {
        threshold: o.threshold, abs: o.abs === true,
        a_to_b: side(paths[0]!, a!.sae.cfg.d_sae, best.aToB), b_to_a: side(paths[1]!, b!.sae.cfg.d_sae, best.bToA),
      };
      if (o.out) {
        writeJsonAtomic(join(o.out, "compare.json"), { ...result, a_best: Array.from(best.aToB), b_best: Array.from(best.bToA) });
        for (const [name, s, other] of [["a", result.a_to_b, paths[1]!], ["b", result.b_to_a, paths[0]!]] as const) {
          const svg = histogramSvg({ title: `${s.sae}: best cosine with ${other} (MMCS ${s.mmcs.toFixed(3)})`, xLabel: "max cosine similarity", yLabel: "latents", ...s.best_cos_histogram });
          writeFileAtomic(join(o.out, `best-cos-${name}.svg`), svg);
          writeFileAtomic(join(o.out, `best-cos-${name}.png`), svgToPng(svg));
        }
      }
      printJson(result);
    });
}
