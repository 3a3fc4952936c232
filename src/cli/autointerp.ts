/** `saekit autointerp`: SAEBench's autointerp eval, with any OpenAI-compatible LLM as the judge. */
import type { Command } from "commander";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import { setThreads } from "../core/kernels.js";
import { AUTOINTERP_DEFAULTS, type AutoInterpConfig, openAiChat } from "../eval/autointerp.js";
import { openAutoInterpJournal } from "../eval/autointerp-journal.js";
import { type AutoInterpRunResult, runAutoInterp } from "../eval/autointerp-run.js";
import { specialTokens } from "../lm/special-tokens.js";
import { saeBenchAutoInterpOutput } from "../eval/saebench.js";
import { openContexts } from "../lm/dataset.js";
import { parseLatentList } from "../analysis/dashboard.js";
import { addSaeModelDatasetOptions, contextOptions, openModel, openSaeAtHook } from "./lm-options.js";
import { defaultThreads, nonNegativeInt, positiveInt, printJson } from "./options.js";

export function registerAutoInterp(program: Command): void {
  const cmd = program
    .command("autointerp")
    .description("autointerp (SAEBench): an LLM explains each latent from the contexts where it fires, then predicts where it fires from the explanation; the score is how often it is right")
    .option("--tokens <n>", "dataset tokens to read (whole contexts)", positiveInt, 2_000_000)
    .option("--n-latents <n>", "latents to interpret, sampled from those firing more than 15 times", positiveInt, AUTOINTERP_DEFAULTS.nLatents)
    .option("--latents <list>", "interpret exactly these latents, e.g. 0-99 or 3,17,42")
    .option("--llm-url <url>", "an OpenAI-compatible API (OpenAI, or a local llama.cpp / vLLM / Ollama server)", "https://api.openai.com/v1")
    .option("--llm-model <name>", "the judge model", "gpt-4o-mini")
    .option("--api-key-env <name>", "environment variable holding the API key (none for local servers without one)", "OPENAI_API_KEY")
    .option("--concurrency <n>", "latents sent to the LLM at a time", positiveInt, 8)
    .option("--no-scoring", "only explain the latents")
    .option("--seed <n>", "seed for the latent sample and the examples", nonNegativeInt, AUTOINTERP_DEFAULTS.seed)
    .option("--batch <n>", "contexts per forward pass", positiveInt, 16)
    .option("--out <file>", "also write the JSON result (explanation and score per latent) here")
    .option("--logs <file>", "write every prompt and reply here")
    .option("--journal <file>", "append each latent's result here as it arrives; rerun with the same journal to skip the latents already in it (a killed or failed run loses no LLM call)")
    .option("--saebench <file>", "also write the result as SAEBench's autointerp output")
    .option("--threads <n>", "threads", positiveInt, defaultThreads());
  addSaeModelDatasetOptions(cmd);
  cmd.action(async (o) => {
    setThreads(o.threads);
    const { sae, metadata, raw, hook } = await openSaeAtHook(o);
    // The latents' activations are all it runs the model for: only as far as the SAE's hook.
    const loaded = await openModel(o, [hook]);
    if (!loaded.tokenizer) throw new Error(`${loaded.source} has no tokenizer to show the LLM text; pass --tokenizer`);
    const tokenizer = loaded.tokenizer;
    const cfg: AutoInterpConfig = { ...AUTOINTERP_DEFAULTS, nLatents: o.nLatents, seed: o.seed, scoring: o.scoring !== false };
    const latents = o.latents ? parseLatentList(o.latents, sae.cfg.d_sae) : undefined;
    const apiKey = process.env[o.apiKeyEnv];
    if (!apiKey && o.llmUrl.startsWith("https://api.openai.com")) throw new Error(`set ${o.apiKeyEnv} to an OpenAI API key (or point --llm-url at a local server)`);
    const contexts: Int32Array[] = [];
    const target = Math.ceil(o.tokens / o.ctx);
    for await (const c of openContexts(loaded, o.dataset, contextOptions(o)).contexts) {
      if (contexts.push(c) >= target) break;
    }
    // What decides the answers; a journal of a run with other settings is refused.
    const journal = o.journal ? openAutoInterpJournal(o.journal, {
      model: o.model, sae: o.sae, hook, dataset: o.dataset, tokens: o.tokens, ctx: o.ctx, llm_url: o.llmUrl, llm: o.llmModel,
      n_latents: o.nLatents, latents: latents ?? null, seed: o.seed, scoring: cfg.scoring,
    }) : null;
    let r: AutoInterpRunResult;
    try {
      r = await runAutoInterp(loaded.model, sae, contexts, (id) => tokenizer.decode([id]),
        openAiChat({ baseUrl: o.llmUrl, model: o.llmModel, apiKey }), cfg, {
          hook, ctx: o.ctx, batch: o.batch, special: specialTokens(loaded.model.cfg, loaded.tokenizer), latents, concurrency: o.concurrency,
          done: journal?.done, onResult: journal?.append,
        });
    } finally {
      journal?.close();
    }
    const head = { model: o.model, sae: o.sae, hook, llm: o.llmModel };
    const summary = { ...head, ...r, latents: r.latents.map(({ logs: _l, ...l }) => l) };
    if (o.out) writeJsonAtomic(o.out, summary);
    if (o.logs) writeFileAtomic(o.logs, r.latents.map((l) => `=== latent ${l.latent} (score ${l.score ?? "-"})\n${l.logs}\n`).join("\n"));
    if (o.saebench) {
      writeJsonAtomic(o.saebench, saeBenchAutoInterpOutput(r, cfg, {
        modelName: String(metadata.model_name ?? o.model), dataset: o.dataset, contextSize: o.ctx, batch: o.batch,
        totalTokens: r.tokens, overrideLatents: latents ?? null, llmModel: o.llmModel, saeCfg: raw, saeId: o.sae,
      }));
    }
    if (process.stdout.isTTY) process.stdout.write(formatAutoInterp(r) + "\n");
    else printJson(summary);
  });
}

/** The scores and explanations as lines for a terminal. */
export function formatAutoInterp(r: AutoInterpRunResult): string {
  const f = (v: number | null | undefined) => (v === null || v === undefined ? "-" : v.toFixed(3));
  return [
    `autointerp score ${f(r.autointerp_score)} (std ${f(r.autointerp_std_dev)}) over ${r.latents.length} latents; ` +
      `${r.skipped.length} of ${r.chosen.length} chosen had too few examples`,
    ...r.latents.map((l) => `${String(l.latent).padStart(6)}  ${f(l.score)}  ${l.explanation}`),
  ].join("\n");
}
