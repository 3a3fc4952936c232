/**
 * The TPP eval end to end: pool the model's activations and the SAE's codes over a class
 * split's train and test texts (as sparse probing does), then targetedProbePerturbation.
 */
import type { ClassSplit } from "../data/labeled.js";
import type { LanguageModel } from "../lm/model.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import { pooledDecoderMatrix, type Sae } from "../sae/sae.js";
import { type PoolTextOptions, poolClassTexts } from "./sparse-probing-run.js";
import { type TppOptions, type TppResult, targetedProbePerturbation } from "./tpp.js";

export interface TppRunResult extends TppResult {
  hook: string;
  dropped_classes: string[];
  train_texts: number;
  test_texts: number;
}

export function runTpp(model: LanguageModel, tokenizer: TextTokenizer, sae: Sae, split: ClassSplit,
  o: PoolTextOptions & TppOptions): TppRunResult {
  const W_dec = pooledDecoderMatrix(sae, "TPP");
  const train = poolClassTexts(model, tokenizer, [sae], split.train, o);
  const test = poolClassTexts(model, tokenizer, [sae], split.test, o);
  const r = targetedProbePerturbation({ model: train.model, sae: train.saes[0]! }, { model: test.model, sae: test.saes[0]! }, W_dec, o);
  return { hook: o.hook, dropped_classes: split.dropped, train_texts: train.count, test_texts: test.count, ...r };
}
