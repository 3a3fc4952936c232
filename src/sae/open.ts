/**
 * Opens an SAE whichever Python tool wrote it: a SAELens folder (cfg.json +
 * sae_weights.safetensors, also what saekit writes), a sparsify folder (cfg.json +
 * sae.safetensors), a dictionary_learning ae.pt (the file, or its trainer folder), an OpenAI
 * sparse_autoencoder .pt or a Goodfire .pth (each told from a dictionary_learning one by its
 * tensors) or a
 * GemmaScope params.npz (the file, or its folder); local, or `hf:ORG/NAME/FOLDER[@revision]`
 * downloaded from the hub (fetchSae).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { HubOptions } from "../lm/hub.js";
import { TorchCheckpoint } from "../core/torch-checkpoint.js";
import { subfolders } from "../util/folders.js";
import { dictionaryLearningFile, loadDictionaryLearningSae } from "./dictionary-learning.js";
import { gemmaScopeFile, loadGemmaScopeSae } from "./gemma-scope.js";
import { resolveHubSae } from "./hub.js";
import { goodfireFile, isGoodfireStateDict, loadGoodfireSae } from "./goodfire.js";
import { isOpenAiStateDict, loadOpenAiSae } from "./openai.js";
import { type LoadedSae, loadSae, WEIGHTS_FILE } from "./saelens.js";
import { isSparsifyFolder, loadSparsifySae } from "./sparsify.js";

export type SaeFormat = "saelens" | "sparsify" | "dictionary_learning" | "openai" | "goodfire" | "gemma_scope";

/** Whether a path holds an SAE openSae reads (which format is openSae's to say). */
export function isSaePath(path: string): boolean {
  return existsSync(path) && (existsSync(join(path, WEIGHTS_FILE)) || isSparsifyFolder(path) ||
    dictionaryLearningFile(path) !== null || goodfireFile(path) !== null || gemmaScopeFile(path) !== null);
}

/**
 * The SAE folders directly inside a folder that is not an SAE itself — one run per hook
 * (`saekit train --hook 'blocks.*...'`), a sparsify checkpoint's `layers.N` — in natural
 * order (layers.2 before layers.10).
 */
export function saesIn(dir: string): string[] {
  return isSaePath(dir) ? [] : subfolders(dir, isSaePath);
}

/**
 * What a command's --sae names when it may be a folder of SAE folders (a run's checkpoints/,
 * a sweep, one run per hook): the paths of the SAEs inside it, in saesIn's order; null when
 * it names one SAE (an hf: spec always does).
 */
export function saeFolderPaths(spec: string): string[] | null {
  const inside = spec.startsWith("hf:") ? [] : saesIn(spec);
  return inside.length > 0 ? inside.map((name) => join(spec, name)) : null;
}

export function openSae(path: string): LoadedSae & { format: SaeFormat } {
  if (!existsSync(path)) throw new Error(`${path}: no such SAE file or folder`);
  if (existsSync(join(path, WEIGHTS_FILE))) return { ...loadSae(path), format: "saelens" };
  if (isSparsifyFolder(path)) return { ...loadSparsifySae(path), format: "sparsify" };
  const pt = dictionaryLearningFile(path) ?? goodfireFile(path);
  if (pt) {
    const ck = TorchCheckpoint.open(pt);
    if (isOpenAiStateDict(ck)) return { ...loadOpenAiSae(pt, ck), format: "openai" };
    if (isGoodfireStateDict(ck)) return { ...loadGoodfireSae(pt, ck), format: "goodfire" };
    return { ...loadDictionaryLearningSae(pt), format: "dictionary_learning" };
  }
  if (gemmaScopeFile(path)) return { ...loadGemmaScopeSae(path), format: "gemma_scope" };
  throw new Error(`${path}: not an SAE saekit can read: expected a SAELens folder (cfg.json + ${WEIGHTS_FILE}), a sparsify folder (cfg.json + sae.safetensors), a dictionary_learning ae.pt, an OpenAI sparse_autoencoder .pt, a Goodfire .pth or a GemmaScope params.npz / params.safetensors`);
}

/** openSae for a local path or an `hf:` spec (downloaded into the cache first). */
export async function fetchSae(spec: string, opts: HubOptions = {}): Promise<ReturnType<typeof openSae>> {
  return openSae(spec.startsWith("hf:") ? await resolveHubSae(spec, opts) : spec);
}
