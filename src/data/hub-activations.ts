/**
 * Activation datasets on the Hugging Face hub: `--data hf:ORG/NAME[/FOLDER][@revision]`, a
 * SAELens activation cache pushed with `hf_repo_id` (or any dataset of activation vectors in
 * Parquet). Training reads every row in a shuffled order, so the whole dataset is needed:
 * its .parquet files and, where SAELens wrote one, cache_activations_runner_cfg.json (the
 * model, hook and dataset the activations came from) are downloaded into the cache once,
 * each resumable, and read from there afterwards, also without a network.
 */
import { type HubOptions, resolveHubFolder } from "../lm/hub.js";
import { CACHE_RUNNER_CONFIG } from "./arrow-activations.js";
import { hubDatasetFiles } from "./hub-dataset.js";

/** The local folder holding a hub dataset of activations, downloading it on first use. */
export function resolveHubActivations(specText: string, opts: HubOptions = {}): Promise<string> {
  return resolveHubFolder(specText, "the dataset's .parquet files (in their folders, as on the hub)", opts, async (get, dir, spec) => {
    const where = `dataset ${spec.repo}${spec.path ? `/${spec.path}` : ""}@${spec.revision}`;
    for (const file of await hubDatasetFiles(spec, dir, where, opts, /\.parquet$/, ".parquet")) await get(file, true);
    await get(CACHE_RUNNER_CONFIG, false);
  }, "dataset");
}
