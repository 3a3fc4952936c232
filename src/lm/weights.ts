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
import { Tensor } from "../core/tensor.js";
import { TorchCheckpoint } from "../core/torch-checkpoint.js";

export interface WeightReader {
  /** Where the weights come from, for error messages. */
  readonly source: string;
  has(name: string): boolean;
  /** The stored shape of a tensor (null when absent), e.g. to size a table before get. */
  shapeOf(name: string): readonly number[] | null;
  /**
   * The tensor, checked against `shape`. A missing or mis-shaped tensor is recorded (and
   * zeros of `shape` returned) so that one error can name every problem: see `finish`.
   */
  get(name: string, shape: number[]): Tensor;
  names(): string[];
  /**
   * Throws an error listing every missing or mis-shaped tensor `get` met, and every tensor
   * of the checkpoint nothing read (a weight this forward pass would silently leave out),
   * except those `ignorable` matches.
   */
  finish(ignorable?: RegExp): void;
}

/** One checkpoint file: safetensors or torch.save. */
interface TensorFile {
  names(): string[];
  shape(name: string): readonly number[];
  read(name: string): Tensor;
}

function openTensorFile(path: string): TensorFile {
  return path.endsWith(".safetensors") ? SafetensorsFile.open(path) : TorchCheckpoint.open(path);
}

export class CheckpointWeights implements WeightReader {
  private readonly files = new Map<string, TensorFile>();
  private readonly where = new Map<string, string>();
  private readonly problems: string[] = [];
  private readonly used = new Set<string>();

  constructor(readonly source: string, shardPaths: string[]) {
    for (const path of shardPaths) {
      const file = openTensorFile(path);
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

  shapeOf(name: string): readonly number[] | null {
    const path = this.where.get(name);
    return path ? this.files.get(path)!.shape(name) : null;
  }

  get(name: string, shape: number[]): Tensor {
    const path = this.where.get(name);
    if (!path) {
      this.problems.push(`missing tensor "${name}" (expected shape [${shape.join(", ")}])`);
      return new Tensor(shape);
    }
    this.used.add(name);
    const file = this.files.get(path)!;
    const has = file.shape(name);
    if (has.length !== shape.length || has.some((s, i) => s !== shape[i])) {
      this.problems.push(`tensor "${name}" has shape [${has.join(", ")}], expected [${shape.join(", ")}]${path === this.source ? "" : ` (in ${path})`}`);
      return new Tensor(shape);
    }
    return file.read(name);
  }

  finish(ignorable?: RegExp): void {
    const unused = this.names().filter((n) => !this.used.has(n) && !ignorable?.test(n));
    if (unused.length) {
      const shown = unused.slice(0, 10).map((n) => `"${n}"`).join(", ");
      this.problems.push(`unexpected tensor${unused.length > 1 ? "s" : ""} ${shown}${unused.length > 10 ? ` and ${unused.length - 10} more` : ""}: weights this architecture does not use (a different model type?)`);
    }
    if (this.problems.length === 0) return;
    const n = this.problems.length;
    throw new Error(`${this.source}: ${n} tensor${n > 1 ? "s" : ""} missing or mis-shaped for this config.json:\n  ${this.problems.join("\n  ")}`);
  }
}

/** Opens the weights of a Hugging Face model folder, preferring safetensors. */
export function openHfWeights(dir: string): CheckpointWeights {
  for (const base of ["model.safetensors", "pytorch_model.bin"]) {
    const single = join(dir, base);
    if (existsSync(single)) return new CheckpointWeights(single, [single]);
    const index = join(dir, `${base}.index.json`);
    if (existsSync(index)) return new CheckpointWeights(index, shardsOf(index, dir));
  }
  throw new Error(`${dir}: no model.safetensors, pytorch_model.bin or their .index.json`);
}

/** The shard files a `*.index.json` weight map names, all of which must exist. */
function shardsOf(index: string, dir: string): string[] {
  return indexShardNames(index).map((f) => {
    const p = join(dir, f);
    if (!existsSync(p)) throw new Error(`${index}: shard ${f} is missing from ${dir}`);
    return p;
  });
}

/** The distinct shard file names of a `*.index.json`; each must be a plain file name. */
export function indexShardNames(index: string): string[] {
  let map: Record<string, string>;
  try {
    map = JSON.parse(readFileSync(index, "utf8")).weight_map;
  } catch (err) {
    throw new Error(`${index}: not valid JSON (${(err as Error).message})`);
  }
  if (!map || typeof map !== "object") throw new Error(`${index}: no "weight_map"`);
  const names = [...new Set(Object.values(map))];
  for (const f of names) {
    if (typeof f !== "string" || !/^[\w.-]+$/.test(f) || f.startsWith(".")) throw new Error(`${index}: bad shard name ${JSON.stringify(f)}`);
  }
  return names;
}
