/**
 * The sparse probing eval end to end: pool the model's activations (and each SAE's codes)
 * over every train and test text of a class split, then probe the model's channels and
 * each SAE's latents with the same data (sparse-probing.ts). The model runs once however
 * many SAEs are compared, as SAEBench reuses its cached activations.
 */
import type { ClassSplit } from "../data/labeled.js";
import type { LanguageModel } from "../lm/model.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import type { Sae } from "../sae/sae.js";
import { meanPooledActivations, probeTokens } from "./pooled-activations.js";
import { type ClassRows, type ProbingResult, sparseProbing } from "./sparse-probing.js";

export interface SparseProbingRunOptions extends PoolTextOptions {
  kValues: number[];
  /** Full-width probes on the model's activations and on every latent (slower for wide SAEs). */
  full?: boolean;
  C?: number;
  seed?: number;
}

export interface SparseProbingRunResult {
  hook: string;
  classes: string[];
  dropped_classes: string[];
  train_texts: number;
  test_texts: number;
  /** Positions averaged over, train and test together. */
  positions: number;
  /** Probes on the model's own activations (SAEBench's llm_* metrics). */
  model: ProbingResult;
  /** Probes on each SAE's latents, in the order given (SAEBench's sae_* metrics). */
  saes: ProbingResult[];
}

export interface PoolTextOptions {
  hook: string;
  ctx: number;
  bos: number | null;
  /** Token ids left out of the pooled means (BOS, EOS, padding). */
  special: number[];
  batch?: number;
  progress?: boolean;
}

/** Pools the texts of every class, in class order, and cuts the rows back into classes. */
export function poolClassTexts(model: LanguageModel, tokenizer: TextTokenizer, saes: Sae[], texts: Map<string, string[]>,
  o: PoolTextOptions): { model: ClassRows; saes: ClassRows[]; count: number; positions: number } {
  const all = [...texts.values()].flat();
  const tokens = probeTokens(tokenizer, all, { ctx: o.ctx, bos: o.bos });
  const pooled = meanPooledActivations(model, tokens, saes, { hook: o.hook, special: o.special, batch: o.batch, progress: o.progress });
  const cut = (data: Float32Array, width: number): ClassRows => {
    const classes = new Map<string, Float32Array>();
    let at = 0;
    for (const [c, list] of texts) {
      classes.set(c, data.subarray(at * width, (at + list.length) * width));
      at += list.length;
    }
    return { width, classes };
  };
  return {
    model: cut(pooled.model, model.hookWidth(o.hook)),
    saes: pooled.saes.map((data, s) => cut(data, saes[s]!.cfg.d_sae)),
    count: all.length,
    positions: pooled.positions,
  };
}

export function runSparseProbing(model: LanguageModel, tokenizer: TextTokenizer, saes: Sae[], split: ClassSplit,
  o: SparseProbingRunOptions): SparseProbingRunResult {
  const train = poolClassTexts(model, tokenizer, saes, split.train, o);
  const test = poolClassTexts(model, tokenizer, saes, split.test, o);
  const probing = { kValues: o.kValues, full: o.full, C: o.C, seed: o.seed };
  return {
    hook: o.hook,
    classes: [...split.train.keys()],
    dropped_classes: split.dropped,
    train_texts: train.count,
    test_texts: test.count,
    positions: train.positions + test.positions,
    model: sparseProbing(train.model, test.model, probing),
    saes: saes.map((_, s) => sparseProbing(train.saes[s]!, test.saes[s]!, probing)),
  };
}
