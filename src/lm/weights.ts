/**
 * Reads the tensors of a Hugging Face model folder: `model.safetensors`, or the shards
 * listed by `model.safetensors.index.json`. Tensors are read on demand (only the header
 * of each shard is parsed up front), converted to float32, and every missing or
 * mis-shaped tensor is named in the error together with the file.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile } from "../core/safetensors.js";
import type { Tensor } from "../core/tensor.js";

export interface WeightReader {
  /** Where the weights come from, for error messages. */
  readonly source: string;
  has(name: string): boolean;
  /** The tensor, checked against `shape`. */
  get(name: string, shape: number[]): Tensor;
  names(): string[];
}

export class SafetensorsWeights implements WeightReader {
  private readonly files = new Map<string, SafetensorsFile>();
  private readonly where = new Map<string, string>();

  constructor(readonly source: string, shardPaths: string[]) {
    for (const path of shardPaths) {
      const file = SafetensorsFile.open(path);
      this.files.set(path, file);
      for (const name of file.names()) this.where.set(name, path);
    }
  }

  has(name: string): boolean {
    return this.where.has(name);
  }

  names(): string[] {
    return [...this.where.keys()];
  }

  get(name: string, shape: number[]): Tensor {
    const path = this.where.get(name);
    if (!path) throw new Error(`${this.source}: missing tensor "${name}" (expected shape [${shape.join(", ")}])`);
    const t = this.files.get(path)!.read(name);
    if (t.shape.length !== shape.length || t.shape.some((s, i) => s !== shape[i])) {
      throw new Error(`${path}: tensor "${name}" has shape [${t.shape.join(", ")}], expected [${shape.join(", ")}]`);
    }
    return t;
  }
}

/** Opens the weights of a Hugging Face model folder. */
export function openHfWeights(dir: string): SafetensorsWeights {
  const single = join(dir, "model.safetensors");
  const index = join(dir, "model.safetensors.index.json");
  if (existsSync(single)) return new SafetensorsWeights(single, [single]);
  if (existsSync(index)) {
    let map: Record<string, string>;
    try {
      map = JSON.parse(readFileSync(index, "utf8")).weight_map;
    } catch (err) {
      throw new Error(`${index}: not valid JSON (${(err as Error).message})`);
    }
    if (!map || typeof map !== "object") throw new Error(`${index}: no "weight_map"`);
    const shards = [...new Set(Object.values(map))].map((f) => {
      if (typeof f !== "string" || f.includes("/") || f.includes("\\")) throw new Error(`${index}: bad shard name ${JSON.stringify(f)}`);
      const p = join(dir, f);
      if (!existsSync(p)) throw new Error(`${index}: shard ${f} is missing from ${dir}`);
      return p;
    });
    return new SafetensorsWeights(index, shards);
  }
  const hasBin = existsSync(join(dir, "pytorch_model.bin"));
  throw new Error(`${dir}: no model.safetensors or model.safetensors.index.json${hasBin ? " (pytorch_model.bin is not supported: convert it to safetensors)" : ""}`);
}
