/**
 * SAE folders on disk in SAELens' format: `cfg.json` + `sae_weights.safetensors` (+ saekit's
 * extras), written atomically and read back; the format itself is saelens-format.ts.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeJsonAtomic } from "../core/atomic.js";
import { SafetensorsFile, writeSafetensors } from "../core/safetensors.js";
import type { Sae } from "./sae.js";
import {
  CFG_FILE, EXTRAS_FILE, type LoadedSae, SPARSITY_FILE, type SaveOptions, WEIGHTS_FILE, saeFromSaeLens, saeLensForm,
} from "./saelens-format.js";

export * from "./saelens-format.js";

/**
 * Writes `dir/cfg.json` and `dir/sae_weights.safetensors` (+ extras, + sparsity.safetensors
 * when given the training's feature sparsity), each atomically.
 */
export function saveSae(dir: string, sae: Sae, opts: SaveOptions = {}): void {
  const { cfg, weights, extras } = saeLensForm(sae, opts);
  writeSafetensors(join(dir, WEIGHTS_FILE), weights, { format: "pt" });
  if (Object.keys(extras).length) writeSafetensors(join(dir, EXTRAS_FILE), extras, { format: "pt" });
  if (opts.logFeatureSparsity) {
    const s = opts.logFeatureSparsity;
    if (s.length !== sae.cfg.d_sae) throw new RangeError(`feature sparsity has ${s.length} entries, d_sae is ${sae.cfg.d_sae}`);
    writeSafetensors(join(dir, SPARSITY_FILE), { sparsity: { shape: [s.length], data: s } }, { format: "pt" });
  }
  writeJsonAtomic(join(dir, CFG_FILE), cfg);
}

/** Loads an SAE folder written by saekit or by SAELens (see saeFromSaeLens). */
export function loadSae(dir: string): LoadedSae {
  const cfgPath = join(dir, CFG_FILE);
  if (!existsSync(cfgPath)) throw new Error(`${dir}: no ${CFG_FILE}; expected an SAE folder in SAELens format (cfg.json + sae_weights.safetensors)`);
  let raw: Record<string, unknown>;
  try {
    raw = JSON.parse(readFileSync(cfgPath, "utf8"));
  } catch (err) {
    throw new Error(`${cfgPath}: not valid JSON (${(err as Error).message})`);
  }
  const loaded = saeFromSaeLens(raw, cfgPath, SafetensorsFile.open(join(dir, WEIGHTS_FILE)), () => SafetensorsFile.open(join(dir, EXTRAS_FILE)));
  const sparsityPath = join(dir, SPARSITY_FILE);
  if (existsSync(sparsityPath)) {
    const file = SafetensorsFile.open(sparsityPath);
    if (!file.has("sparsity")) throw new Error(`${sparsityPath}: missing tensor "sparsity"`);
    loaded.logFeatureSparsity = file.read("sparsity").expectShape([loaded.sae.cfg.d_sae], `${sparsityPath}: tensor "sparsity"`).data;
  }
  return loaded;
}
