/** `--exclude-tokens`: which token ids a command leaves out, of a model's or of stored activations. */
import { isStore, readManifest } from "../data/store.js";
import type { LoadedModel } from "../lm/load.js";
import { specialTokens } from "../lm/special-tokens.js";

/** --exclude-tokens where the model is loaded: the ids given, or for "special" the model's special tokens. */
export function modelExclusions(given: "special" | number[] | undefined, loaded: LoadedModel): number[] | undefined {
  return given === "special" ? specialTokens(loaded.model.cfg, loaded.tokenizer) : given;
}

/**
 * --exclude-tokens for stored activations: the ids given, or for "special" the special
 * tokens the store's manifest recorded at harvest.
 */
export function dataExclusions(given: "special" | number[] | undefined, data: string): number[] | undefined {
  if (given !== "special") return given;
  if (!isStore(data)) throw new Error(`--exclude-tokens special needs an activation store (its manifest lists them) or --model; for ${data} give the token ids`);
  const m = readManifest(data);
  if (!m.special_tokens) {
    throw new Error(`${data}: the store's manifest does not list the model's special tokens (it was harvested before saekit recorded them); give their ids, e.g. --exclude-tokens 0 for Pythia's <|endoftext|>`);
  }
  return m.special_tokens;
}
