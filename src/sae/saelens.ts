/**
 * SAE folders on disk in SAELens' format: `cfg.json` + `sae_weights.safetensors` (+ saekit's
 * extras), written atomically and read back; the format itself is saelens-format.ts.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "../core/atomic.js";
import { SafetensorsFile, writeSafetensors } from "../core/safetensors.js";
import type { Sae } from "./sae.js";
import { CFG_FILE, type LoadedSae, type SaveOptions, saeFromFolder, saeLensFolder } from "./saelens-format.js";

export * from "./saelens-format.js";

/**
 * Writes `dir/cfg.json` and `dir/sae_weights.safetensors` (+ extras, + sparsity.safetensors
 * when given the training's feature sparsity), each atomically; cfg.json last, so a folder
 * with a cfg.json has its weights.
 */
export function saveSae(dir: string, sae: Sae, opts: SaveOptions = {}): void {
  const { cfg, tensorFiles } = saeLensFolder(sae, opts);
  for (const [name, tensors] of Object.entries(tensorFiles)) writeSafetensors(join(dir, name), tensors, { format: "pt" });
  writeJsonAtomic(join(dir, CFG_FILE), cfg);
}

/** Loads an SAE folder written by saekit or by SAELens (see saeFromSaeLens). */
export function loadSae(dir: string): LoadedSae {
  const path = (name: string) => join(dir, name);
  return saeFromFolder(dir, (name) => (existsSync(path(name)) ? readFileSync(path(name), "utf8") : null),
    (name) => (existsSync(path(name)) ? SafetensorsFile.open(path(name)) : null));
}
