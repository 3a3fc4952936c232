/**
 * Writes an SAE's feature dashboards as Neuronpedia batch files (neuronpedia.ts), the way
 * SAEDashboard's NeuronpediaRunner does: the latents split into batches of about
 * `featuresPerBatch`, each batch's dashboards built over the same contexts and written as
 * `batch-{n}.json` (atomically), with every example a whole context, as Neuronpedia shows
 * them. The hook's activations and their codes are computed once and kept in memory for
 * the later batches, as far as they fit in `cacheBytes` (2 GiB; 32,768 tokens of a
 * 2,304-wide model take 302 MB); what does not fit is computed again for each batch. A
 * rerun skips the batch files already there, so a killed export resumes;
 * `run_settings.json` records what the folder holds, and a rerun asking for something else
 * is refused rather than mixing two exports in one folder.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic, writeJsonAtomic } from "../core/atomic.js";
import type { LanguageModel } from "../lm/model.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import type { Sae } from "../sae/sae.js";
import { changedSettings } from "../util/settings.js";
import { buildDashboards, DashboardCache, type DashboardOptions } from "./dashboard.js";
import { decoderHeadShares, latentBatches, neuronpediaBatch, type NeuronpediaSource } from "./neuronpedia.js";

export const RUN_SETTINGS_FILE = "run_settings.json";

export interface NeuronpediaExportOptions extends Omit<DashboardOptions, "window" | "onProgress"> {
  /** Folder for the batch files. */
  out: string;
  source: NeuronpediaSource;
  /** Latents per batch file (SAEDashboard's n_features_at_a_time, 128). */
  featuresPerBatch?: number;
  /** Anything else that decides the contents (model, SAE, dataset paths), kept in run_settings.json. */
  settings?: Record<string, unknown>;
  /** Most memory the activations and codes kept across batches may take, in bytes (default 2 GiB). */
  cacheBytes?: number;
  /** Progress in contexts read, summed over the batches this call builds. */
  onProgress?: (done: number, total: number) => void;
}

export interface NeuronpediaExportResult {
  out: string;
  batches: number;
  /** Batch files written by this run, and found already written by an earlier one. */
  written: number;
  skipped: number;
}

export async function exportNeuronpedia(model: LanguageModel, tokenizer: TextTokenizer | null, sae: Sae,
  contexts: AsyncIterable<Int32Array>, o: NeuronpediaExportOptions): Promise<NeuronpediaExportResult> {
  const batches = latentBatches(o.latents, o.featuresPerBatch ?? 128);
  const settings = {
    ...o.settings, model_id: o.source.modelId, layer: o.source.layer, sae_set: o.source.saeSet,
    sae_id_suffix: o.source.saeIdSuffix ?? null, dataset: o.source.dataset, hook: o.hook, n_tokens_in_prompt: o.ctx,
    tokens: o.tokens, exclude_bos: o.excludeBos !== false, ...(o.excludeTokens?.length ? { exclude_tokens: [...o.excludeTokens] } : {}), top_examples: o.topExamples ?? null, quantiles: o.quantiles ?? null,
    per_quantile: o.perQuantile ?? null, logit_tokens: o.logitTokens ?? null, seed: o.seed ?? 0,
    features_per_batch: o.featuresPerBatch ?? 128, latents: o.latents,
  };
  const settingsPath = join(o.out, RUN_SETTINGS_FILE);
  if (existsSync(settingsPath)) {
    let before: unknown;
    try { before = JSON.parse(readFileSync(settingsPath, "utf8")); } catch (e) {
      throw new Error(`${settingsPath} is not valid JSON (${(e as Error).message}); remove it or write to another folder`);
    }
    if (JSON.stringify(before) !== JSON.stringify(settings)) {
      throw new Error(`${o.out} holds a Neuronpedia export made with other settings (${changedSettings(before, settings).join(", ")}); ` +
        "rerun with the same ones to resume it, or write to another folder");
    }
  } else {
    writeJsonAtomic(settingsPath, settings);
  }
  const file = (n: number) => join(o.out, `batch-${n}.json`);
  const todo = batches.map((_, n) => n).filter((n) => !existsSync(file(n)));
  const result = { out: o.out, batches: batches.length, written: 0, skipped: batches.length - todo.length };
  if (todo.length === 0) return result;

  // The contexts are read once and shown to every batch.
  const first = o.excludeBos === false ? 0 : 1;
  const wanted = Math.ceil(o.tokens / (o.ctx - first));
  const kept: Int32Array[] = [];
  for await (const c of contexts) {
    if (kept.length >= wanted) break;
    kept.push(c);
  }
  async function* replay(): AsyncIterable<Int32Array> { yield* kept; }

  const W_dec = sae.params.get("W_dec");
  const d = sae.cfg.d_in;
  const headShares = /\.attn\.hook_z$/.test(o.hook) && W_dec && W_dec.shape[0] === sae.cfg.d_sae
    ? (j: number) => decoderHeadShares(W_dec.data.subarray(j * d, (j + 1) * d), model.cfg.nHeads)
    : undefined;
  const cache = new DashboardCache(o.cacheBytes ?? 2 ** 31);
  const total = todo.length * kept.length;
  for (const [i, n] of todo.entries()) {
    const dash = await buildDashboards(model, tokenizer, sae, replay(), {
      ...o, latents: batches[n]!, window: [o.ctx, o.ctx], cache,
      onProgress: (c) => o.onProgress?.(i * kept.length + c, total),
    });
    writeFileAtomic(file(n), JSON.stringify(neuronpediaBatch(dash, o.source, headShares)));
    result.written++;
  }
  return result;
}
