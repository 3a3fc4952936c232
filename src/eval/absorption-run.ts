/**
 * The absorption eval end to end on a language model: the vocabulary's single-token words
 * split 80 / 20 into train and test (seeded), one few-shot first-letter prompt per word
 * (examples from its own split), the hook's activation at each word, then
 * measureAbsorption (absorption.ts) on them.
 */
import { Rng } from "../core/rng.js";
import type { LanguageModel } from "../lm/model.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import type { Sae } from "../sae/sae.js";
import { type AbsorptionOptions, type AbsorptionResult, measureAbsorption } from "./absorption.js";
import { type SpellingPrompt, alphaTokens, spellingPrompts, wordActivations } from "./first-letter.js";

export interface AbsorptionRunOptions extends AbsorptionOptions {
  hook: string;
  bos: number | null;
  template?: string;
  /** Few-shot examples per prompt (10). */
  examples?: number;
  /** Share of the words held out for testing (0.2). */
  testFraction?: number;
  seed?: number;
  batch?: number;
  progress?: boolean;
}

export interface AbsorptionRunResult extends AbsorptionResult {
  hook: string;
  /** Alphabetic single-token words of the vocabulary, and how they were used. */
  words: number;
  train_words: number;
  test_words: number;
  /** Words whose token the tokenizer merged with its neighbours in the prompt. */
  skipped_words: number;
}

export function runAbsorption(model: LanguageModel, tokenizer: TextTokenizer, sae: Sae,
  o: AbsorptionRunOptions): AbsorptionRunResult {
  if (sae.cfg.d_in !== model.hookWidth(o.hook)) {
    throw new Error(`the SAE reads ${sae.cfg.d_in}-dim activations, ${o.hook} of this model is ${model.hookWidth(o.hook)}-dim`);
  }
  const rng = new Rng(o.seed ?? 42);
  const vocab = alphaTokens(tokenizer);
  if (vocab.length < 20) {
    throw new Error(`the tokenizer has only ${vocab.length} alphabetic tokens: too few for the first-letter task`);
  }
  const shuffled = rng.shuffle([...vocab]);
  const nTest = Math.max(1, Math.round(shuffled.length * (o.testFraction ?? 0.2)));
  const splits = [shuffled.slice(nTest), shuffled.slice(0, nTest)];
  let skipped = 0;
  const [train, test] = splits.map((words) => {
    const promptOpts = { template: o.template, examples: Math.min(o.examples ?? 10, words.length - 1), bos: o.bos };
    const made = spellingPrompts(tokenizer, words, words, rng, promptOpts);
    skipped += made.skipped;
    return labelled(model, made.prompts, o);
  });
  return {
    hook: o.hook, words: vocab.length, train_words: train!.n, test_words: test!.n, skipped_words: skipped,
    ...measureAbsorption(sae, train!, test!, o),
  };
}

function labelled(model: LanguageModel, prompts: SpellingPrompt[], o: AbsorptionRunOptions) {
  return {
    x: wordActivations(model, prompts, o.hook, { batch: o.batch, progress: o.progress }),
    letters: Uint8Array.from(prompts, (p) => p.word.letter),
    n: prompts.length,
  };
}
