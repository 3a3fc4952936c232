/**
 * Turns a `--data` argument into an activation source: an activation store folder
 * (`saekit harvest`), a SAELens activation cache (a Hugging Face dataset saved to disk, or
 * pushed to the hub as Parquet: a local folder or file, or hf:ORG/NAME) or an .arrow file,
 * an activation file, or a synthetic generator ("synthetic:superposition",
 * "synthetic:subspaces").
 */
import { existsSync, statSync } from "node:fs";
import type { HubOptions } from "../lm/hub.js";
import { SubspacesSource, type SubspacesOptions } from "../synthetic/subspaces.js";
import { SuperpositionSource, type SuperpositionOptions } from "../synthetic/superposition.js";
import { loadActivations } from "./activation-files.js";
import { ArraySource } from "./array-source.js";
import { DatasetSource, isActivationDataset } from "./dataset-source.js";
import { resolveHubActivations } from "./hub-activations.js";
import type { ActivationSource } from "./source.js";
import { StoreSource } from "./store-source.js";
import { isStore, storesIn } from "./store.js";

export interface OpenDataOptions {
  seed?: number;
  /** Which tensor of a file, or column of Arrow data, holds the activations. */
  tensor?: string;
  shape?: [number, number];
  superposition?: Partial<SuperpositionOptions>;
  subspaces?: Partial<SubspacesOptions>;
  /** Rows an activation store mixes at a time. */
  bufferRows?: number;
  /**
   * Token ids whose rows are left out (token-filter.ts): a store knows each row's token, and
   * so does a SAELens cache (its token_ids); other data does not, and refuses them.
   */
  excludeTokens?: readonly number[];
  /** Where hf: datasets are downloaded, and how. */
  hub?: HubOptions;
}

export async function openActivationSource(spec: string, o: OpenDataOptions = {}): Promise<ActivationSource> {
  const seed = o.seed ?? 0;
  if (spec.startsWith("hf:")) spec = await resolveHubActivations(spec, o.hub);
  const isFolder = existsSync(spec) && statSync(spec).isDirectory();
  const dataset = !(isFolder && isStore(spec)) && isActivationDataset(spec);
  if ((o.excludeTokens?.length ?? 0) > 0 && !(isFolder && isStore(spec)) && !dataset) {
    throw new Error(`${spec}: leaving tokens out needs to know each row's token, which an activation store (saekit harvest), a SAELens cache (its token_ids) or a model (--model) does; this data does not`);
  }
  if (dataset) return DatasetSource.open(spec, seed, o.bufferRows, o.tensor, o.excludeTokens);
  if (spec === "synthetic:superposition") return new SuperpositionSource({ seed, ...o.superposition });
  if (spec === "synthetic:subspaces") return new SubspacesSource({ seed, ...o.subspaces });
  if (spec.startsWith("synthetic:")) throw new Error(`unknown synthetic data "${spec}" (synthetic:superposition, synthetic:subspaces)`);
  if (isFolder) {
    if (!isStore(spec)) {
      const inside = storesIn(spec);
      throw new Error(inside.length
        ? `${spec} holds ${inside.length} activation stores (${inside.join(", ")}), not one: name one of them`
        : `${spec}: a folder of activations needs a manifest.json (made by saekit harvest), or, for a SAELens activation cache, a state.json or .parquet files`);
    }
    return new StoreSource(spec, seed, o.bufferRows, o.excludeTokens);
  }
  const m = loadActivations(spec, { tensor: o.tensor, shape: o.shape });
  return new ArraySource(m.data, m.d, seed, { path: spec });
}
