/**
 * The SCR eval end to end: for each target pair, the quadrants of the train and test texts
 * (test: the dataset's own test split, or 20% of the texts held out), pooled model
 * activations and SAE codes over them, then spuriousCorrelationRemoval; the scores are
 * averaged over pairs, as SAEBench averages over its class pairs.
 */
import { Rng } from "../core/rng.js";
import type { LabeledText } from "../data/labeled.js";
import type { LanguageModel } from "../lm/model.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import { pooledDecoderMatrix, type Sae } from "../sae/sae.js";
import { type ScrOptions, type ScrPair, type ScrResult, quadrantTexts, scrQuadrants, spuriousCorrelationRemoval } from "./scr.js";
import { type PoolTextOptions, poolClassTexts } from "./sparse-probing-run.js";

export interface ScrRunOptions extends PoolTextOptions, ScrOptions {
  /** Texts per quadrant (SAEBench: 1000 train, 250 test). */
  trainPerQuadrant: number;
  testPerQuadrant: number;
  seed?: number;
}

export interface ScrRunResult {
  hook: string;
  pairs: Array<ScrPair & ScrResult>;
  /** N -> means over pairs (scr_metric over the pairs that have a metric direction). */
  scr_dir1: Record<string, number>;
  scr_dir2: Record<string, number>;
  scr_metric: Record<string, number | null>;
}

export function runScr(model: LanguageModel, tokenizer: TextTokenizer, sae: Sae, items: LabeledText[],
  testItems: LabeledText[] | null, pairs: ScrPair[], o: ScrRunOptions): ScrRunResult {
  const W_dec = pooledDecoderMatrix(sae, "SCR");
  const seed = o.seed ?? 42;
  let train = items;
  let test = testItems;
  if (!test) {
    const shuffled = new Rng(seed).shuffle([...items]);
    const cut = Math.round(shuffled.length * 0.2);
    test = shuffled.slice(0, cut);
    train = shuffled.slice(cut);
  }
  const results = pairs.map((pair) => {
    const pool = (texts: Map<string, string[]>) => {
      const p = poolClassTexts(model, tokenizer, [sae], texts, o);
      return { model: p.model, sae: p.saes[0]! };
    };
    const trainPooled = pool(quadrantTexts(scrQuadrants(train, pair, seed), o.trainPerQuadrant, pair));
    const testPooled = pool(quadrantTexts(scrQuadrants(test!, pair, seed + 1), o.testPerQuadrant, pair));
    return { ...pair, ...spuriousCorrelationRemoval(trainPooled, testPooled, o.trainPerQuadrant, o.testPerQuadrant, W_dec, o) };
  });
  const mean = (values: number[]) => (values.length ? values.reduce((a, b) => a + b, 0) / values.length : null);
  const byN = (key: "scr_dir1" | "scr_dir2" | "scr_metric") => Object.fromEntries(o.nValues.map((n) => [String(n),
    mean(results.map((r) => r[key][n]).filter((v): v is number => v !== null && v !== undefined))]));
  return {
    hook: o.hook, pairs: results,
    scr_dir1: byN("scr_dir1") as Record<string, number>, scr_dir2: byN("scr_dir2") as Record<string, number>, scr_metric: byN("scr_metric"),
  };
}
