/**
 * Token contexts for a model from a `--dataset` argument: a text dataset (file or folder,
 * data/text.ts) tokenized and packed, or a pretokenized one's rows (data/contexts.ts), or
 * `sampled:N[:SEED]`, N contexts sampled from the model itself at temperature 1, for models
 * without a tokenizer.
 */
import { contextsFromItems } from "../data/contexts.js";
import { datasetFingerprint } from "../data/store.js";
import { type TextDatasetOptions, readItems } from "../data/text.js";
import { sampleContexts } from "./generate.js";
import type { LoadedModel } from "./load.js";

export interface ContextSourceOptions extends TextDatasetOptions {
  ctx: number;
  /** Put BOS first in every context (SAELens' prepend_bos). */
  prependBos: boolean;
  /** Skip this many contexts first (e.g. those a harvest used, to evaluate on held-out text). */
  skip?: number;
}

export interface ContextSource {
  contexts: AsyncIterable<Int32Array>;
  /** Identity of the data, for activation-store resume checks. */
  fingerprint: string;
}

/** Whether contexts from `spec` come from the model's own logits (sampled:N), so that it must be loaded whole. */
export function samplesFromModel(spec: string): boolean {
  return spec.startsWith("sampled:");
}

export function openContexts(loaded: LoadedModel, spec: string, o: ContextSourceOptions): ContextSource {
  const src = openAll(loaded, spec, o);
  return o.skip ? { ...src, contexts: skipFirst(src.contexts, o.skip) } : src;
}

async function* skipFirst<T>(items: AsyncIterable<T>, n: number): AsyncGenerator<T> {
  let i = 0;
  for await (const item of items) if (i++ >= n) yield item;
}

function openAll(loaded: LoadedModel, spec: string, o: ContextSourceOptions): ContextSource {
  const bos = o.prependBos ? loaded.bosId : null;
  if (o.prependBos && bos === null) throw new Error("this model has no BOS token id; pass --no-bos");
  const sampled = /^sampled:(\d+)(?::(\d+))?$/.exec(spec);
  if (sampled) {
    const count = Number(sampled[1]);
    const seed = Number(sampled[2] ?? 0);
    if (bos === null) throw new Error("sampled contexts start from BOS; this model has none");
    return { contexts: sampleContexts(loaded.model, count, o.ctx, bos, { seed }), fingerprint: `sampled:${count}:${seed}:${loaded.source}` };
  }
  if (spec.startsWith("sampled:")) throw new Error(`"${spec}" should be sampled:N or sampled:N:SEED`);
  return {
    contexts: contextsFromItems(readItems(spec, o), loaded.tokenizer, { ctx: o.ctx, bos, vocabSize: loaded.model.cfg.vocabSize, source: spec }),
    fingerprint: datasetFingerprint(spec),
  };
}

/** The first `count` contexts (fewer if the data runs out), held in memory. */
export async function takeContexts(contexts: AsyncIterable<Int32Array>, count: number): Promise<Int32Array[]> {
  const out: Int32Array[] = [];
  if (count <= 0) return out;
  for await (const c of contexts) if (out.push(c.slice()) >= count) break;
  return out;
}
