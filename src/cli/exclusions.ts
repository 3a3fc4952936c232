/** `--exclude-tokens` for stored activations: which token ids a command leaves out. */
import { isStore, readManifest } from "../data/store.js";

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
