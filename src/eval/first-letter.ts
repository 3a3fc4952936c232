/**
 * The first-letter spelling task of SAEBench's absorption eval (Chanin et al., "A is for
 * Absorption"): every single-token word of the vocabulary, asked about in a few-shot prompt
 *
 *   " tree has the first letter: T\n bank has the first letter: B\n ... cat has the first letter:"
 *
 * and the model's activation read at the word's token. The words are the tokens that
 * decode to letters only (optionally after one leading space), as SAEBench's
 * get_alpha_tokens picks them; each prompt's 10 examples come from the same split's words.
 */
import type { Rng } from "../core/rng.js";
import type { LanguageModel } from "../lm/model.js";
import type { TextTokenizer } from "../lm/tokenizer.js";
import { ProgressBar } from "../util/progress.js";
import { forEachPaddedBatch } from "./pooled-activations.js";

export const LETTERS = "abcdefghijklmnopqrstuvwxyz";
export const FIRST_LETTER_TEMPLATE = "{word} has the first letter:";

export interface SpellingWord {
  /** The word's token id. */
  token: number;
  /** The token as text (with its leading space, if any). */
  word: string;
  /** 0 .. 25: a .. z. */
  letter: number;
}

/** Every token that decodes to letters only, after at most one leading space. */
export function alphaTokens(tokenizer: TextTokenizer): SpellingWord[] {
  const out: SpellingWord[] = [];
  for (let id = 0; id < tokenizer.vocabSize; id++) {
    const word = tokenizer.decode([id]);
    const bare = word.startsWith(" ") ? word.slice(1) : word;
    if (/^[A-Za-z]+$/.test(bare)) out.push({ token: id, word, letter: LETTERS.indexOf(bare[0]!.toLowerCase()) });
  }
  return out;
}

export interface SpellingPrompt {
  word: SpellingWord;
  /** The prompt's tokens (BOS first when the model has one). */
  tokens: Int32Array;
  /** Index of the word's token in `tokens`. */
  position: number;
}

export interface PromptOptions {
  template?: string;
  /** Few-shot examples per prompt (SAEBench: 10). */
  examples?: number;
  bos: number | null;
}

/**
 * One prompt per word, its examples drawn from `pool` (never the word itself). Words
 * whose token does not survive in context (the tokenizer merges it with a neighbour) are
 * left out and counted.
 */
export function spellingPrompts(tokenizer: TextTokenizer, words: SpellingWord[], pool: SpellingWord[], rng: Rng,
  o: PromptOptions): { prompts: SpellingPrompt[]; skipped: number } {
  const template = o.template ?? FIRST_LETTER_TEMPLATE;
  if (!template.includes("{word}")) throw new Error(`the prompt template "${template}" has no {word}`);
  const examples = o.examples ?? 10;
  if (pool.length <= examples) throw new Error(`${pool.length} words are too few for prompts with ${examples} examples each`);
  const line = (w: SpellingWord) => template.replace("{word}", w.word);
  const head = template.slice(0, template.indexOf("{word}"));
  const prompts: SpellingPrompt[] = [];
  let skipped = 0;
  for (const word of words) {
    const chosen = new Set<number>();
    while (chosen.size < examples) {
      const pick = rng.int(pool.length);
      if (pool[pick]!.token !== word.token) chosen.add(pick);
    }
    const shots = [...chosen].map((i) => `${line(pool[i]!)} ${LETTERS[pool[i]!.letter]!.toUpperCase()}`).join("\n");
    const ids = tokenizer.encode(`${shots}\n${line(word)}`);
    // The word's token is the last of the prompt's text up to the word, if the tokenizer
    // splits that text the same way inside the whole prompt.
    const upTo = tokenizer.encode(`${shots}\n${head}${word.word}`);
    const at = upTo.length - 1;
    if (upTo[at] !== word.token || upTo.some((id, i) => ids[i] !== id)) {
      skipped++;
      continue;
    }
    const tokens = Int32Array.from(o.bos === null ? ids : [o.bos, ...ids]);
    prompts.push({ word, tokens, position: at + (o.bos === null ? 0 : 1) });
  }
  return { prompts, skipped };
}

/** The hook's activation at each prompt's word token, [prompts, hook width]. */
export function wordActivations(model: LanguageModel, prompts: SpellingPrompt[], hook: string,
  o: { batch?: number; progress?: boolean } = {}): Float32Array {
  model.checkHook(hook);
  const d = model.hookWidth(hook);
  const out = new Float32Array(prompts.length * d);
  const bar = new ProgressBar(prompts.length, `spelling ${hook}`, o.progress !== false && process.stderr.isTTY === true);
  forEachPaddedBatch(model, prompts.map((p) => p.tokens), hook, o.batch ?? 32, (act, members, T) => {
    members.forEach((i, b) => {
      const row = b * T + prompts[i]!.position;
      out.set(act.subarray(row * d, (row + 1) * d), i * d);
    });
  }, bar);
  return out;
}
