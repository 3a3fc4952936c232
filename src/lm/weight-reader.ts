/**
 * The tensors of a model checkpoint, one file or several shards, read by name: every
 * missing or mis-shaped tensor is recorded and named in one error together with its file.
 * Where the files come from (a folder on disk, bytes in the browser) is the caller's.
 */
import { Tensor } from "../core/tensor.js";

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

/** One checkpoint file: safetensors or torch.save, on disk or in memory. */
export interface TensorFile {
  names(): string[];
  shape(name: string): readonly number[];
  read(name: string): Tensor;
}

export class CheckpointWeights implements WeightReader {
  private readonly files = new Map<string, TensorFile>();
  private readonly where = new Map<string, string>();
  private readonly problems: string[] = [];
  private readonly used = new Set<string>();

  /** `source` names the checkpoint in errors; each file comes with the path it is named by. */
  constructor(readonly source: string, shards: ReadonlyArray<{ path: string; file: TensorFile }>) {
    for (const { path, file } of shards) {
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

/** The distinct shard file names a `*.index.json`'s weight_map names; each must be a plain file name. */
export function shardNamesOf(indexJson: string, source: string): string[] {
  let map: Record<string, string>;
  try {
    map = JSON.parse(indexJson).weight_map;
  } catch (err) {
    throw new Error(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (!map || typeof map !== "object") throw new Error(`${source}: no "weight_map"`);
  const names = [...new Set(Object.values(map))];
  for (const f of names) {
    if (typeof f !== "string" || !/^[\w.-]+$/.test(f) || f.startsWith(".")) throw new Error(`${source}: bad shard name ${JSON.stringify(f)}`);
  }
  return names;
}
