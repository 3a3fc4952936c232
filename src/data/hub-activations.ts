/**
 * Activation datasets on the Hugging Face hub: `--data hf:ORG/NAME[/FOLDER][@revision]`, a
 * SAELens activation cache pushed with `hf_repo_id` (Parquet files), or a cache saved to disk
 * and uploaded as it is (.arrow files beside state.json and dataset_info.json). Training
 * reads every row in a shuffled order, so the whole dataset is needed: those files and,
 * where SAELens wrote one, cache_activations_runner_cfg.json (the model, hook and dataset the
 * activations came from) are downloaded into the cache once, each resumable, and read from
 * there afterwards, also without a network.
 */
import { type HubOptions, hubSpecName, resolveHubFolder } from "../lm/hub.js";
import { CACHE_RUNNER_CONFIG } from "./arrow-activations.js";
import { hubDatasetFiles } from "./hub-dataset.js";

/** A dataset's data: Parquet files, or Arrow files with the saved dataset's own records of them. */
const DATA_FILE = /\.(parquet|arrow)$|(^|\/)(state|dataset_info)\.json$/;

/** The local folder holding a hub dataset of activations, downloading it on first use. */
export function resolveHubActivations(specText: string, opts: HubOptions = {}): Promise<string> {
  return resolveHubFolder(specText, "the dataset's .parquet files, or its .arrow files with state.json (in their folders, as on the hub)", opts, async (get, dir, spec) => {
    const where = hubSpecName(spec);
    for (const file of await hubDatasetFiles(spec, dir, where, opts, DATA_FILE, ".parquet / .arrow")) await get(file, true);
    await get(CACHE_RUNNER_CONFIG, false);
  }, "dataset");
}
