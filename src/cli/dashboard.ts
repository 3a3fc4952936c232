/** `saekit dashboard`: sae_vis-style feature dashboards of chosen latents, as JSON and HTML. */
import { join } from "node:path";
import type { Command } from "commander";
import { dashboardHtml } from "../analysis/dashboard-html.js";
import { buildDashboards, parseLatentList } from "../analysis/dashboard.js";
import { promptLatents, promptView } from "../analysis/prompt-view.js";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { openContexts } from "../lm/dataset.js";
import { addSaeModelDatasetOptions, contextOptions, openModel, openSaeAtHook } from "./lm-options.js";
import { ProgressBar } from "../util/progress.js";
import { defaultThreads, nonNegativeInt, positiveInt, printJson } from "./options.js";

export function registerDashboard(program: Command): void {
  const cmd = program
    .command("dashboard")
    .description("feature dashboards (as sae_vis): per latent its density, activation histogram, logit effects, feature tables and the contexts it fires on, and with --prompt the prompt-centric view; written as dashboards.json and dashboard.html")
    .requiredOption("--out <dir>", "folder for dashboards.json and dashboard.html")
    .option("--latents <list>", "latents to show, e.g. 0-31 or 3,7,42 (default 0-31, or with --prompt the latents that fire most on it)")
    .option("--prompt <text>", "also the prompt-centric view: each token's strongest latents and their loss effects")
    .option("--prompt-top <n>", "latents listed per prompt token", positiveInt, 10)
    .option("--tokens <n>", "token positions to read", positiveInt, 32768)
    .option("--batch <n>", "contexts per forward pass", positiveInt, 16)
    .option("--top <n>", "top-activating examples per latent", positiveInt, 20)
    .option("--keep-bos", "also look at BOS positions")
    .option("--skip-contexts <n>", "skip this many contexts first", nonNegativeInt, 0)
    .option("--seed <n>", "seed for the quantile examples", nonNegativeInt, 0)
    .option("--threads <n>", "threads", positiveInt, defaultThreads());
  addSaeModelDatasetOptions(cmd);
  cmd.action(async (o) => {
    setThreads(o.threads);
    const loaded = await openModel(o);
    const { sae, hook } = await openSaeAtHook(o);
    const tokenizer = loaded.tokenizer;
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
      hook, latents, tokens: o.tokens, ctx: o.ctx, batch: o.batch, topExamples: o.top, excludeBos: o.keepBos !== true,
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
