/**
 * The tensors of a model checkpoint, one file or several shards, read by name: every
 * missing or mis-shaped tensor is recorded and named in one error together with its file.
 * Where the files come from (a folder on disk, bytes in the browser) is the caller's.
 */
import { float32ToBf16 } from "../core/bf16.js";
import { numel, Tensor } from "../core/tensor.js";
import type { WeightDtype, WeightMatrix } from "./model.js";

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
  /**
   * A weight matrix, as get checks it, held in `dtype`: float32, or bfloat16 read without
   * a float32 copy where the file allows (a BF16 safetensors tensor is its own bits).
   */
  getMatrix(name: string, shape: number[], dtype: WeightDtype): WeightMatrix;
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
  /** The tensor as bfloat16 bits, where the format can give them without a float32 copy. */
  readBf16?(name: string): Uint16Array;
}

/**
 * Problems listed before loading stops: a config that disagrees with its checkpoint
 * throughout (a wrong layer count, say) is plain from these.
 */
const MAX_PROBLEMS = 100;
/**
 * The zeros standing in for missing or mis-shaped tensors (so that loading goes on and one
 * error lists every problem) stop at this many times the checkpoint's own values: a config
 * claiming thousands of layers, or a huge vocabulary, is refused before it exhausts memory.
 */
const MAX_STAND_IN_RATIO = 4;

export class CheckpointWeights implements WeightReader {
  private readonly files = new Map<string, TensorFile>();
  private readonly where = new Map<string, string>();
  private readonly problems: string[] = [];
  private readonly used = new Set<string>();
  /** Values the checkpoint holds, and values of zeros standing in for missing or mis-shaped tensors. */
  private stored = 0;
  private standIns = 0;

  /** `source` names the checkpoint in errors; each file comes with the path it is named by. */
  constructor(readonly source: string, shards: ReadonlyArray<{ path: string; file: TensorFile }>) {
    for (const { path, file } of shards) {
      this.files.set(path, file);
      for (const name of file.names()) {
        this.where.set(name, path);
        this.stored += numel(file.shape(name));
      }
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
    const file = this.checked(name, shape);
    return file ? file.read(name) : new Tensor(shape);
  }

  getMatrix(name: string, shape: number[], dtype: WeightDtype): WeightMatrix {
    if (dtype === "f32") return this.get(name, shape).data;
    const file = this.checked(name, shape);
    if (!file) return new Uint16Array(numel(shape));
    return file.readBf16 ? file.readBf16(name) : float32ToBf16(file.read(name).data);
  }

  /** The file holding `name` when it is there with `shape`; else the problem is recorded (problem). */
  private checked(name: string, shape: number[]): TensorFile | null {
    const path = this.where.get(name);
    if (!path) return this.problem(`missing tensor "${name}" (expected shape [${shape.join(", ")}])`, shape);
    this.used.add(name);
    const file = this.files.get(path)!;
    const has = file.shape(name);
    if (has.length !== shape.length || has.some((s, i) => s !== shape[i])) {
      return this.problem(`tensor "${name}" has shape [${has.join(", ")}], expected [${shape.join(", ")}]${path === this.source ? "" : ` (in ${path})`}`, shape);
    }
    return file;
  }

  /**
   * Records a problem and returns null: the caller goes on with zeros of `shape`, so that one
   * error can list every problem — unless the problems are many, or the zeros would be many
   * times what the checkpoint holds: then the error comes at once.
   */
  private problem(message: string, shape: number[]): null {
    this.problems.push(message);
    if (this.problems.length >= MAX_PROBLEMS) this.fail(` (stopped after ${MAX_PROBLEMS}: does config.json belong to this checkpoint?)`);
    this.standIns += numel(shape);
    if (this.standIns > MAX_STAND_IN_RATIO * this.stored) this.fail(" (stopped: config.json asks for far more weights than the checkpoint holds)");
    return null;
  }

  /** Throws the problems met; `unexpected`: the last of them lists tensors nothing read. */
  private fail(why = "", unexpected = false): never {
    const n = this.problems.length - (unexpected ? 1 : 0);
    const head = n === 0 ? "tensors this config.json does not use"
      : `${n} tensor${n > 1 ? "s" : ""} missing or mis-shaped for this config.json${unexpected ? ", and tensors it does not use" : ""}`;
    throw new Error(`${this.source}: ${head}${why}:\n  ${this.problems.join("\n  ")}`);
  }

  finish(ignorable?: RegExp): void {
    const unused = this.names().filter((n) => !this.used.has(n) && !ignorable?.test(n));
    if (unused.length) {
      const shown = unused.slice(0, 10).map((n) => `"${n}"`).join(", ");
      this.problems.push(`unexpected tensor${unused.length > 1 ? "s" : ""} ${shown}${unused.length > 10 ? ` and ${unused.length - 10} more` : ""}: weights this architecture does not use (a different model type?)`);
    }
    if (this.problems.length > 0) this.fail("", unused.length > 0);
  }
}

/** A `*.index.json`'s weight_map, tensor name -> shard file; each shard must be a plain file name. */
export function weightMapOf(indexJson: string, source: string): Record<string, string> {
  let map: Record<string, string>;
  try {
    map = JSON.parse(indexJson).weight_map;
  } catch (err) {
    throw new Error(`${source}: not valid JSON (${(err as Error).message})`);
  }
  if (!map || typeof map !== "object") throw new Error(`${source}: no "weight_map"`);
  for (const f of new Set(Object.values(map))) {
    if (typeof f !== "string" || !/^[\w.-]+$/.test(f) || f.startsWith(".")) throw new Error(`${source}: bad shard name ${JSON.stringify(f)}`);
  }
  return map;
}

/** The distinct shard file names a `*.index.json`'s weight_map names (weightMapOf). */
export function shardNamesOf(indexJson: string, source: string): string[] {
  return [...new Set(Object.values(weightMapOf(indexJson, source)))];
}
