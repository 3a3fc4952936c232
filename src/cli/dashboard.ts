/** `saekit dashboard`: sae_vis-style feature dashboards of chosen latents, as JSON and HTML. */
import { join } from "node:path";
import type { Command } from "commander";
import { dashboardHtml } from "../analysis/dashboard-html.js";
import { buildDashboards, parseLatentList } from "../analysis/dashboard.js";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { openContexts } from "../lm/dataset.js";
import { addSaeModelDatasetOptions, openModel, openSaeAtHook } from "./lm-options.js";
import { ProgressBar } from "../util/progress.js";
import { defaultThreads, nonNegativeInt, positiveInt, printJson } from "./options.js";

export function registerDashboard(program: Command): void {
  const cmd = program
    .command("dashboard")
    .description("feature dashboards (as sae_vis): per latent its density, activation histogram, logit effects and the contexts it fires on, written as dashboards.json and dashboard.html")
    .requiredOption("--out <dir>", "folder for dashboards.json and dashboard.html")
    .option("--latents <list>", "latents to show, e.g. 0-31 or 3,7,42", "0-31")
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
    const latents = parseLatentList(o.latents, sae.cfg.d_sae);
    const src = openContexts(loaded, o.dataset, { ctx: o.ctx, prependBos: o.bos !== false, textField: o.textField, split: o.split, skip: o.skipContexts });
    const bar = new ProgressBar(Math.ceil(o.tokens / (o.ctx - 1)), "dashboard", process.stderr.isTTY === true);
    const d = await buildDashboards(loaded.model, loaded.tokenizer, sae, src.contexts, {
      hook, latents, tokens: o.tokens, ctx: o.ctx, batch: o.batch, topExamples: o.top, excludeBos: o.keepBos !== true,
      seed: o.seed, onProgress: (n) => bar.update(n),
    });
    bar.finish();
    writeJsonAtomic(join(o.out, "dashboards.json"), { model: o.model, sae: o.sae, dataset: o.dataset, ...d });
    writeFileAtomic(join(o.out, "dashboard.html"), dashboardHtml(d, { model: o.model, sae: o.sae, dataset: o.dataset }));
    printJson({
      out: o.out, hook, tokens: d.tokens, latents: d.latents.length,
      firing: d.latents.filter((l) => l.density > 0).length, files: ["dashboards.json", "dashboard.html"],
    });
  });
}
