/**
 * A model's special tokens: BOS and EOS as its config names them, and, given its tokenizer,
 * every token the tokenizer marks special (tokenizer.json's added tokens with "special":
 * true, such as GPT-NeoX's <|padding|>). Their positions carry no text of their own, so
 * pooled means leave them out, and training can (SAELens' exclude_special_tokens, sparsify's
 * exclude_tokens): BOS in particular often has a residual norm many times the others'.
 */
import type { LmConfig } from "./config.js";
import type { TextTokenizer } from "./tokenizer.js";

/** Sorted, without repeats. */
export function specialTokens(cfg: Pick<LmConfig, "bosTokenId" | "eosTokenId">, tokenizer?: TextTokenizer | null): number[] {
  const ids = new Set([cfg.bosTokenId, cfg.eosTokenId].filter((t): t is number => t !== null));
  for (const id of tokenizer?.specialIds ?? []) ids.add(id);
  return [...ids].sort((a, b) => a - b);
}
