/**
 * Reads the tensors of a Hugging Face model folder: `model.safetensors` or the shards listed
 * by `model.safetensors.index.json`, else the PyTorch checkpoints of older repositories
 * (`pytorch_model.bin` or `pytorch_model.bin.index.json`). Tensors are read on demand (only
 * the directory of each shard is parsed up front), converted to float32, and every missing
 * or mis-shaped tensor is named in the error together with the file.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "../core/safetensors.js";
import { TorchCheckpoint } from "../core/torch-checkpoint.js";
import { CheckpointWeights, type TensorFile, weightMapOf } from "./weight-reader.js";

export type { WeightReader } from "./weight-reader.js";

function openTensorFile(path: string): TensorFile {
  return path.endsWith(".safetensors") ? SafetensorsFile.open(path) : TorchCheckpoint.open(path);
}

/**
 * Opens the weights of a Hugging Face model folder, preferring safetensors. With
 * `missingShardsOk`, shards absent from the folder are left out instead of refused (a model
 * loaded for hooks, whose download skipped the shards it does not read).
 */
export function openHfWeights(dir: string, missingShardsOk = false): CheckpointWeights {
  for (const base of ["model.safetensors", "pytorch_model.bin"]) {
    const single = join(dir, base);
    if (existsSync(single)) return new CheckpointWeights(single, [{ path: single, file: openTensorFile(single) }]);
    const index = join(dir, `${base}.index.json`);
    if (existsSync(index)) {
      const shards = shardsOf(index, dir, missingShardsOk);
      return new CheckpointWeights(index, shards.map((path) => ({ path, file: openTensorFile(path) })));
    }
  }
  throw new Error(`${dir}: no model.safetensors, pytorch_model.bin or their .index.json`);
}

/** The shard files a `*.index.json` weight map names, all of which must exist unless `missingOk`. */
function shardsOf(index: string, dir: string, missingOk: boolean): string[] {
  return indexShardNames(index).flatMap((f) => {
    const p = join(dir, f);
    if (existsSync(p)) return [p];
    if (missingOk) return [];
    throw new Error(`${index}: shard ${f} is missing from ${dir}`);
  });
}

/** The distinct shard file names of a `*.index.json` file. */
export function indexShardNames(index: string): string[] {
  return [...new Set(Object.values(indexWeightMap(index)))];
}

/** A `*.index.json` file's weight_map, tensor name -> shard file (weightMapOf). */
export function indexWeightMap(index: string): Record<string, string> {
  let text: string;
  try {
    text = readFileSync(index, "utf8");
  } catch (err) {
    throw new Error(`${index}: cannot read the index (${(err as Error).message})`);
  }
  return weightMapOf(text, index);
}
