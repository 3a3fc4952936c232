/** `saekit analyze`: the vSAE paper's latent analyses of one or more SAEs, as JSON, SVG and HTML. */
import { basename } from "node:path";
import { type Command, Option } from "commander";
import { analyzeLatents, DEFAULT_TSNE_POINTS, type LatentAnalysis } from "../analysis/latents.js";
import { type NamedAnalysis, writeAnalysisReport } from "../analysis/report.js";
import { setThreads } from "../core/kernels.js";
import { checkAngle } from "../core/quadtree.js";
import { openActivationSource } from "../data/open.js";
import { checkFinite, peekRows } from "../data/source.js";
import { fetchSae, saeFolderPaths } from "../sae/open.js";
import { ProgressBar } from "../util/progress.js";
import { SAE_HELP } from "./lm-options.js";
import { dataExclusions } from "./exclusions.js";
import { defaultThreads, finiteNumber, nonNegativeInt, positiveInt, printJson, tokenExclusions } from "./options.js";

export function registerAnalyze(program: Command): void {
  program
    .command("analyze")
    .description("max-activation histograms, living-feature fraction, decoder similarity (each latent's nearest other direction) and a t-SNE + k-means map of the latents (the vSAE paper's analyses), written as analysis.json, SVG and PNG figures and report.html")
    .requiredOption("--sae <path>", `${SAE_HELP}; or a folder of SAE folders (a run's checkpoints/, a sweep), each analyzed; repeat to compare several`, (v: string, prev: string[] = []) => [...prev, v])
    .requiredOption("--data <source>", "activations: a store folder, a SAELens activation cache (folder, .arrow or .parquet files, or hf:ORG/NAME), an activation file or synthetic:...")
    .requiredOption("--out <dir>", "report folder")
    .option("--tokens <n>", "activation rows to encode", positiveInt, 20000)
    .option("--max-points <n>", "living latents placed by t-SNE at most (a seeded sample beyond)", positiveInt, DEFAULT_TSNE_POINTS)
    .addOption(new Option("--tsne-method <method>", "t-SNE: barnes_hut (O(n log n): P over each latent's 3 x perplexity nearest, repulsion from a quadtree) or exact (O(n^2))")
      .choices(["barnes_hut", "exact"]).default("barnes_hut"))
    .addOption(new Option("--tsne-init <how>", "t-SNE's starting layout: the first two principal components (sklearn's default) or random")
      .choices(["pca", "random"]).default("pca"))
    .option("--angle <x>", "Barnes-Hut t-SNE: a cell stands in for its latents when its side < angle x its distance (0: exact sums; at most 0.7)", finiteNumber, 0.5)
    .option("--clusters <n>", "k-means clusters on the t-SNE map", positiveInt, 10)
    .option("--perplexity <n>", "t-SNE perplexity", positiveInt, 30)
    .option("--iterations <n>", "t-SNE iterations", positiveInt, 1000)
    .option("--seed <n>", "seed for sampling and t-SNE", nonNegativeInt, 0)
    .option("--exclude-tokens <ids>", "leave out the rows of these tokens, as training with --exclude-tokens did: \"special\" (a store's manifest lists them) or ids; a store or a SAELens cache", tokenExclusions)
    .option("--threads <n>", "threads", positiveInt, defaultThreads())
    .option("--cache-dir <dir>", "where hf: SAEs and datasets are downloaded (default ~/.cache/saekit/hub or $SAEKIT_CACHE)")
    .action(async (o) => {
      setThreads(o.threads);
      checkAngle(o.angle);
      const source = await openActivationSource(o.data, { hub: { cacheDir: o.cacheDir }, seed: o.seed, excludeTokens: dataExclusions(o.excludeTokens, o.data) });
      const x = peekRows(source, o.tokens);
      checkFinite(x, o.data);
      const names = new Set<string>();
      const results: NamedAnalysis[] = [];
      // A folder of SAE folders stands for each SAE in it, in natural order.
      const paths = (o.sae as string[]).flatMap((p) => saeFolderPaths(p) ?? [p]);
      for (const path of paths) {
        const { sae } = await fetchSae(path, { cacheDir: o.cacheDir });
        if (sae.cfg.d_in !== source.d) throw new Error(`${path}: the SAE reads ${sae.cfg.d_in}-dim activations, ${o.data} has ${source.d}`);
        const base = basename(path.replace(/[\\/]+$/, "")).replace(/[^\w.-]+/g, "_") || "sae";
        let name = base;
        for (let i = 2; names.has(name); i++) name = `${base}-${i}`;
        names.add(name);
        process.stderr.write(`analyze ${name}: ${sae.cfg.architecture}, ${sae.cfg.d_sae} latents, ${o.tokens} tokens\n`);
        const bar = new ProgressBar(o.iterations, "  t-SNE");
        const analysis: LatentAnalysis = analyzeLatents(sae, x, o.tokens, {
          maxPoints: o.maxPoints, method: o.tsneMethod, angle: o.angle, init: o.tsneInit, clusters: o.clusters, perplexity: o.perplexity, iterations: o.iterations, seed: o.seed,
          onProgress: (what) => process.stderr.write(`  ${what}\n`),
          onTsneIteration: (it) => bar.update(it),
        });
        if (analysis.tsne) bar.finish();
        results.push({ name, source: path, analysis });
      }
      const files = writeAnalysisReport(o.out, results);
      printJson({
        out: o.out, files,
        saes: results.map((r) => ({ name: r.name, d_sae: r.analysis.d_sae, living: r.analysis.living, living_fraction: r.analysis.living_fraction })),
      });
    });
}
