/**
 * `saekit dashboard`: sae_vis-style feature dashboards of chosen latents, as JSON and HTML, or
 * (--format neuronpedia) every latent's as the batch files Neuronpedia imports.
 */
import { basename, join } from "node:path";
import type { Command } from "commander";
import { dashboardHtml } from "../analysis/dashboard-html.js";
import { buildDashboards, parseLatentList } from "../analysis/dashboard.js";
import { exportNeuronpedia } from "../analysis/neuronpedia-export.js";
import { hookLayer } from "../analysis/neuronpedia.js";
import { promptLatents, promptView } from "../analysis/prompt-view.js";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { openContexts } from "../lm/dataset.js";
import { modelExclusions } from "./exclusions.js";
import { addSaeModelDatasetOptions, contextOptions, openModel, openSaeAtHook } from "./lm-options.js";
import { ProgressBar } from "../util/progress.js";
import { defaultThreads, nonNegativeInt, positiveInt, printJson, tokenExclusions } from "./options.js";

export function registerDashboard(program: Command): void {
  const cmd = program
    .command("dashboard")
    .description("feature dashboards (as sae_vis): per latent its density, activation histogram, logit effects, feature tables and the contexts it fires on, and with --prompt the prompt-centric view; written as dashboards.json and dashboard.html, or (--format neuronpedia) as the batch files Neuronpedia imports")
    .requiredOption("--out <dir>", "folder for dashboards.json and dashboard.html (or the Neuronpedia batch files)")
    .option("--format <f>", "html: dashboards.json + dashboard.html; neuronpedia: batch-{n}.json files as SAEDashboard's Neuronpedia runner writes them (a rerun resumes)", "html")
    .option("--latents <list>", "latents to show, e.g. 0-31 or 3,7,42 (default 0-31, or with --prompt the latents that fire most on it; every latent for --format neuronpedia)")
    .option("--prompt <text>", "also the prompt-centric view: each token's strongest latents and their loss effects")
    .option("--prompt-top <n>", "latents listed per prompt token", positiveInt, 10)
    .option("--tokens <n>", "token positions to read", positiveInt, 32768)
    .option("--batch <n>", "contexts per forward pass", positiveInt, 16)
    .option("--top <n>", "top-activating examples per latent", positiveInt, 20)
    .option("--quantiles <n>", "equal-count groups of each latent's activations to draw examples from", positiveInt, 5)
    .option("--per-quantile <n>", "examples drawn from each group", positiveInt, 5)
    .option("--features-per-batch <n>", "--format neuronpedia: latents per batch file", positiveInt, 128)
    .option("--np-model-id <id>", "--format neuronpedia: the model's id on Neuronpedia (default: the last part of the SAE config's model_name, else of --model)")
    .option("--np-set-name <name>", "--format neuronpedia: the SAE set's name (default: the SAE's folder name)")
    .option("--np-sae-id-suffix <s>", "--format neuronpedia: suffix of the SAE's id after its set (an L0, a step...)")
    .option("--np-dataset <name>", "--format neuronpedia: the dataset's name in the files, e.g. roneneldan/TinyStories (default: --dataset)")
    .option("--keep-bos", "also look at each context's first position (BOS)")
    .option("--exclude-tokens <ids>", "leave out the positions of these tokens wherever they stand: \"special\" for the model's BOS, EOS and special tokens (BOS between documents included), or ids, e.g. 0,1", tokenExclusions)
    .option("--skip-contexts <n>", "skip this many contexts first", nonNegativeInt, 0)
    .option("--seed <n>", "seed for the quantile examples", nonNegativeInt, 0)
    .option("--threads <n>", "threads", positiveInt, defaultThreads());
  addSaeModelDatasetOptions(cmd);
  cmd.action(async (o) => {
    setThreads(o.threads);
    if (o.format !== "html" && o.format !== "neuronpedia") throw new Error(`--format must be html or neuronpedia, got "${o.format}"`);
    if (o.format === "neuronpedia" && o.prompt !== undefined) throw new Error("--prompt makes the HTML page's prompt view; Neuronpedia files have none");
    const loaded = await openModel(o);
    const { sae, hook, metadata } = await openSaeAtHook(o);
    const tokenizer = loaded.tokenizer;
    const excludeTokens = modelExclusions(o.excludeTokens, loaded);
    if (o.format === "neuronpedia") {
      const layer = hookLayer(hook);
      if (layer === null) throw new Error(`Neuronpedia files name a layer, and ${hook} is outside the blocks`);
      const src = openContexts(loaded, o.dataset, { ...contextOptions(o), skip: o.skipContexts });
      const latents = parseLatentList(o.latents ?? `0-${sae.cfg.d_sae - 1}`, sae.cfg.d_sae);
      const name = (path: string) => basename(path.replace(/^hf:/, "").replace(/@[^/]*$/, "").replace(/\/+$/, "")).replace(/\.(bin|safetensors|pt)$/, "");
      let bar = null as ProgressBar | null;
      const result = await exportNeuronpedia(loaded.model, tokenizer, sae, src.contexts, {
        out: o.out, hook, latents, tokens: o.tokens, ctx: o.ctx, batch: o.batch, topExamples: o.top,
        quantiles: o.quantiles, perQuantile: o.perQuantile, excludeBos: o.keepBos !== true, excludeTokens, seed: o.seed,
        featuresPerBatch: o.featuresPerBatch,
        source: {
          modelId: o.npModelId ?? name(metadata.model_name ?? o.model), layer,
          saeSet: o.npSetName ?? name(o.sae), saeIdSuffix: o.npSaeIdSuffix ?? null, dataset: o.npDataset ?? o.dataset, ctx: o.ctx,
        },
        settings: { model: o.model, sae: o.sae, data: o.dataset, skip_contexts: o.skipContexts },
        onProgress: (done, total) => (bar ??= new ProgressBar(total, "neuronpedia", process.stderr.isTTY === true)).update(done),
      });
      bar?.finish();
      printJson({ ...result, hook, latents: latents.length });
      return;
    }
    const prompt = o.prompt === undefined ? undefined : (() => {
      if (!tokenizer) throw new Error(`${loaded.source} has no tokenizer for --prompt; pass --tokenizer`);
      const ids = [...(o.bos !== false && loaded.bosId !== null ? [loaded.bosId] : []), ...tokenizer.encode(o.prompt)];
      return promptView(loaded.model, sae, Int32Array.from(ids), (id) => tokenizer.decode([id]),
        { hook, top: o.promptTop, skipFirst: o.bos !== false });
    })();
    // Without --latents: those the prompt fires most, else the first 32.
    const latents = o.latents ? parseLatentList(o.latents, sae.cfg.d_sae)
      : prompt ? promptLatents(prompt, 32) : parseLatentList("0-31", sae.cfg.d_sae);
    const src = openContexts(loaded, o.dataset, { ...contextOptions(o), skip: o.skipContexts });
    const bar = new ProgressBar(Math.ceil(o.tokens / (o.ctx - 1)), "dashboard", process.stderr.isTTY === true);
    const d = await buildDashboards(loaded.model, loaded.tokenizer, sae, src.contexts, {
      hook, latents, tokens: o.tokens, ctx: o.ctx, batch: o.batch, topExamples: o.top, quantiles: o.quantiles,
      perQuantile: o.perQuantile, excludeBos: o.keepBos !== true, excludeTokens,
      seed: o.seed, onProgress: (n) => bar.update(n),
    });
    bar.finish();
    const page = { ...d, ...(prompt ? { prompt } : {}) };
    writeJsonAtomic(join(o.out, "dashboards.json"), { model: o.model, sae: o.sae, dataset: o.dataset, ...page });
    writeFileAtomic(join(o.out, "dashboard.html"), dashboardHtml(page, { model: o.model, sae: o.sae, dataset: o.dataset }));
    printJson({
      out: o.out, hook, tokens: d.tokens, latents: d.latents.length,
      firing: d.latents.filter((l) => l.density > 0).length, files: ["dashboards.json", "dashboard.html"],
    });
  });
}
