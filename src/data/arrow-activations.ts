/**
 * Activations in Arrow files, as SAELens caches them: its `CacheActivationsRunner` saves a
 * Hugging Face dataset to disk (state.json, dataset_info.json, data-NNNNN-of-NNNNN.arrow),
 * one row per context, the hook's activations in a column named after the hook, of type
 * Array2D(context_size, d_in) (stored as list<list<float>>), beside `token_ids`.
 *
 * Any column of nested lists of floats reads the same way: each innermost list is one
 * activation vector [d], and a dataset row holds as many of them as its outer dimensions
 * multiply to (ctx for Array2D; 1 for a column of plain vectors). Every list must be full
 * (no nulls) and of its column's one size, which each read checks.
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { type ArrowField, ArrowIpcFile, type ColumnStart, type RecordBatch } from "../core/arrow-ipc.js";
import { type Fail, readFloatsInto } from "../core/byte-source.js";
import { fileSource } from "../core/file-range.js";

/** How one dimension of a column is stored: a list with offsets (32- or 64-bit), or a fixed-size list. */
type Level = { kind: "list"; offsetBytes: 4 | 8 } | { kind: "fixed"; size: number };

/** A run of dataset rows inside one record batch: what a read fetches at once. */
export interface ArrowChunk {
  file: number;
  batch: number;
  firstRow: number;
  rows: number;
}

const FLOAT_DTYPES = { 16: "F16", 32: "F32", 64: "F64" } as const;
const BYTES = { F16: 2, F32: 4, F64: 8 } as const;

/** Is this folder a Hugging Face dataset saved to disk (state.json beside .arrow files)? */
export function isArrowDataset(dir: string): boolean {
  return existsSync(join(dir, "state.json")) && statSync(dir).isDirectory();
}

export class ArrowActivations {
  /** Shape of one dataset row of the column: [..., d]. */
  readonly dims: number[];
  readonly d: number;
  /** Activation vectors per dataset row (the product of all but the last dimension). */
  readonly vectorsPerRow: number;
  readonly column: string;
  /** Activation vectors in all the files. */
  readonly vectors: number;
  private readonly levels: Level[];
  private readonly dtype: "F16" | "F32" | "F64";
  private readonly starts: ColumnStart[];

  private constructor(readonly where: string, readonly paths: string[], private readonly files: ArrowIpcFile[], column?: string) {
    const first = files[0]!;
    const candidates = first.fields.filter((f) => floatLevels(f) !== null).map((f) => f.name);
    const name = column ?? (candidates.length === 1 ? candidates[0]! : this.fail(candidates.length === 0
      ? `no column of float vectors (columns: ${first.fields.map((f) => `${f.name}: ${describeType(f)}`).join(", ")})`
      : `several columns of float vectors (${candidates.join(", ")}); choose one with --tensor`));
    const index = first.fields.findIndex((f) => f.name === name);
    if (index < 0) this.fail(`no column "${name}" (columns: ${first.fields.map((f) => f.name).join(", ")})`);
    const field = first.fields[index]!;
    const shape = floatLevels(field) ?? this.fail(`column "${name}" is ${describeType(field)}, not (lists of) float vectors`);
    this.column = name;
    this.levels = shape.levels;
    this.dtype = FLOAT_DTYPES[shape.bits as 16 | 32 | 64];
    this.starts = files.map((f, i) => {
      const j = f.fields.findIndex((g) => g.name === name);
      if (j < 0 || describeType(f.fields[j]!) !== describeType(field)) this.fail(`${paths[i]} does not hold column "${name}" as ${describeType(field)}, as ${paths[0]} does`);
      return f.columnStarts[j] ?? this.fail(`${paths[i]}: a column before "${name}" has a type whose layout varies by batch (a view type); cannot find the column`);
    });
    this.dims = this.findDims();
    if (this.dims.some((n) => n < 1)) this.fail(`column "${name}" holds arrays of shape [${this.dims.join(", ")}]`);
    this.d = this.dims[this.dims.length - 1]!;
    this.vectorsPerRow = this.dims.slice(0, -1).reduce((a, b) => a * b, 1);
    this.vectors = files.reduce((a, f) => a + f.rows, 0) * this.vectorsPerRow;
    this.checkBatchSizes();
  }

  /**
   * Each batch's row count agrees with the column's and its values buffer is big enough for
   * them: a corrupt count is refused here, before anything is sized by it.
   */
  private checkBatchSizes(): void {
    const valueBytes = this.vectorsPerRow * this.d * BYTES[this.dtype];
    this.files.forEach((file, i) => file.batches.forEach((b, j) => {
      const start = this.starts[i]!;
      const top = b.nodes[start.node];
      if (top?.length !== b.rows) this.fail(`${this.paths[i]}, record batch ${j}: ${b.rows} rows, but ${top?.length ?? "no"} entries in column "${this.column}"`);
      const values = b.buffers[this.valuesBuffer(start.buffer)];
      if ((values?.length ?? 0) < b.rows * valueBytes) {
        this.fail(`${this.paths[i]}, record batch ${j}: ${b.rows} rows of [${this.dims.join(", ")}] need ${b.rows * valueBytes} bytes of values, the batch has ${values?.length ?? 0}`);
      }
    }));
  }

  /** Index of the column's float values buffer, from its first buffer: past each level's validity (and offsets), then the leaf's validity. */
  private valuesBuffer(first: number): number {
    return first + this.levels.reduce((a, l) => a + (l.kind === "fixed" ? 1 : 2), 0) + 1;
  }

  /**
   * A Hugging Face dataset folder (its state.json lists the .arrow files, in order) or one
   * Arrow file; `column` picks the column (default: the only one of float vectors).
   */
  static open(path: string, column?: string): ArrowActivations {
    const paths = statSync(path).isDirectory() ? datasetFiles(path) : [path];
    const files = paths.map((p) => ArrowIpcFile.open(fileSource(p, (why) => { throw new Error(`${p}: ${why}`); }), p));
    return new ArrowActivations(path, paths, files, column);
  }

  /** Runs of at most `maxRows` dataset rows, never crossing a record batch, covering every row in order. */
  chunks(maxRows: number): ArrowChunk[] {
    const out: ArrowChunk[] = [];
    this.files.forEach((f, file) => f.batches.forEach((b, batch) => {
      for (let firstRow = 0; firstRow < b.rows; firstRow += maxRows) out.push({ file, batch, firstRow, rows: Math.min(maxRows, b.rows - firstRow) });
    }));
    return out;
  }

  /** The chunk's activation vectors [rows * vectorsPerRow, d] as float32, into `into` at `at` (in floats). */
  read(chunk: ArrowChunk, into: Float32Array, at = 0): void {
    const file = this.files[chunk.file]!;
    const batch = file.batches[chunk.batch]!;
    const where = `${this.paths[chunk.file]}, column "${this.column}", record batch ${chunk.batch}`;
    const fail: Fail = (why) => { throw new Error(`${where}: ${why}`); };
    let { node, buffer } = this.starts[chunk.file]!;
    // Elements [lo, hi) at each level down: rows, then the lists inside them, then floats.
    let lo = chunk.firstRow;
    let hi = chunk.firstRow + chunk.rows;
    for (let level = 0; level <= this.levels.length; level++) {
      const n = batch.nodes[node] ?? fail(`the batch has no field node ${node}`);
      if (n.nullCount > 0) fail(`${n.nullCount} null entries; every activation must be present`);
      if (hi > n.length) fail(`reads entries up to ${hi} of ${n.length}`);
      if (level === this.levels.length) break;
      const l = this.levels[level]!;
      const size = this.dims[level]!;
      if (l.kind === "fixed") {
        [lo, hi] = [lo * l.size, hi * l.size];
        buffer += 1;
      } else {
        const offsets = readOffsets(file, batch, buffer + 1, lo, hi - lo + 1, l.offsetBytes);
        for (let k = 0; k + 1 < offsets.length; k++) {
          if (offsets[k + 1]! - offsets[k]! !== size) fail(`entry ${lo + k} holds ${offsets[k + 1]! - offsets[k]!} values at depth ${level + 1}, not ${size}: the column's arrays must all be [${this.dims.join(", ")}]`);
        }
        [lo, hi] = [offsets[0]!, offsets[offsets.length - 1]!];
        buffer += 2;
      }
      node += 1;
    }
    const count = hi - lo;
    const bytes = BYTES[this.dtype];
    if (into.length < at + count) fail(`${count} values do not fit the ${into.length - at} left in the buffer`);
    const position = file.bufferPosition(batch, buffer + 1, lo * bytes, count * bytes);
    readFloatsInto(file.source, position, this.dtype, into.subarray(at, at + count), fail);
  }

  /** What the column holds, for run metadata. */
  describe(): Record<string, unknown> {
    return { kind: "arrow", path: this.where, column: this.column, shape: this.dims, dtype: this.dtype, vectors: this.vectors };
  }

  /**
   * Where the activations came from, in the terms of SAELens' cfg.json: SAELens names the
   * column after the hook, and an Array2D's first dimension is the context size; the
   * cache_activations_runner_cfg.json SAELens writes beside a cache it pushes to the Hub adds
   * the model, dataset and BOS setting.
   */
  provenance(): { hook_name: string; context_size?: number; model_name?: string; dataset_path?: string; prepend_bos?: boolean } {
    const out: ReturnType<ArrowActivations["provenance"]> = { hook_name: this.column };
    if (this.dims.length === 2) out.context_size = this.dims[0]!;
    const cfgPath = join(this.where, "cache_activations_runner_cfg.json");
    if (!existsSync(cfgPath)) return out;
    let cfg: Record<string, unknown>;
    try {
      cfg = JSON.parse(readFileSync(cfgPath, "utf8"));
    } catch (err) {
      throw new Error(`${cfgPath}: cannot read SAELens' cache config (${(err as Error).message})`);
    }
    if (typeof cfg.model_name === "string") out.model_name = cfg.model_name;
    if (typeof cfg.dataset_path === "string") out.dataset_path = cfg.dataset_path;
    if (typeof cfg.prepend_bos === "boolean") out.prepend_bos = cfg.prepend_bos;
    return out;
  }

  /** Each dimension: fixed sizes from the type, list sizes from the first row of the first non-empty batch. */
  private findDims(): number[] {
    const dims: number[] = [];
    const fileIndex = this.files.findIndex((f) => f.batches.some((b) => b.rows > 0));
    if (fileIndex < 0) this.fail("no rows");
    const file = this.files[fileIndex]!;
    const batch = file.batches.find((b) => b.rows > 0)!;
    let { buffer } = this.starts[fileIndex]!;
    let lo = 0;
    for (const l of this.levels) {
      if (l.kind === "fixed") {
        dims.push(l.size);
        lo *= l.size;
        buffer += 1;
        continue;
      }
      const [start, end] = readOffsets(file, batch, buffer + 1, lo, 2, l.offsetBytes);
      dims.push(end! - start!);
      lo = start!;
      buffer += 2;
    }
    return dims;
  }

  private fail(why: string): never {
    throw new Error(`${this.where}: ${why}`);
  }
}

/** The .arrow files of a dataset saved to disk, in the order its state.json lists them. */
function datasetFiles(dir: string): string[] {
  const statePath = join(dir, "state.json");
  if (!existsSync(statePath)) {
    const arrow = readdirSync(dir).filter((f) => f.endsWith(".arrow")).sort();
    if (arrow.length === 0) throw new Error(`${dir}: no state.json and no .arrow files`);
    return arrow.map((f) => join(dir, f));
  }
  let state: { _data_files?: Array<{ filename?: unknown }> };
  try {
    state = JSON.parse(readFileSync(statePath, "utf8"));
  } catch (err) {
    throw new Error(`${statePath}: cannot read the dataset state (${(err as Error).message})`);
  }
  const files = state?._data_files;
  if (!Array.isArray(files) || files.length === 0) throw new Error(`${statePath}: no _data_files listed`);
  return files.map((f) => {
    const name = f?.filename;
    // Names only: a state.json must not point outside its folder.
    if (typeof name !== "string" || !/^[\w.-]+\.arrow$/.test(name) || name.startsWith(".")) throw new Error(`${statePath}: bad data file name ${JSON.stringify(name)}`);
    return join(dir, name);
  });
}

/**
 * How a column of nested lists ending in floats is stored, or null for any other column:
 * one level per list around the floats, outermost first; at least one (the vectors).
 */
function floatLevels(field: ArrowField): { levels: Level[]; bits: number } | null {
  const levels: Level[] = [];
  let f = field;
  for (;;) {
    if (f.dictionary) return null;
    const t = f.type;
    if (t.name === "FloatingPoint") return levels.length > 0 ? { levels, bits: t.bitWidth! } : null;
    if (t.name === "List" || t.name === "LargeList") levels.push({ kind: "list", offsetBytes: t.name === "List" ? 4 : 8 });
    else if (t.name === "FixedSizeList") levels.push({ kind: "fixed", size: t.listSize! });
    else return null;
    if (f.children.length !== 1) return null;
    f = f.children[0]!;
  }
}

function describeType(f: ArrowField): string {
  const t = f.type;
  const inner = f.children.map(describeType).join(", ");
  const detail = t.name === "FloatingPoint" || t.name === "Int" ? `${t.bitWidth}` : t.name === "FixedSizeList" ? `${t.listSize}` : "";
  return `${t.name}${detail}${inner ? `<${inner}>` : ""}`;
}

/** `count` list offsets from entry `first` of an offsets buffer, as numbers. */
function readOffsets(file: ArrowIpcFile, batch: RecordBatch, buffer: number, first: number, count: number, bytes: 4 | 8): number[] {
  const raw = file.readBuffer(batch, buffer, first * bytes, count * bytes);
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  return Array.from({ length: count }, (_, k) => (bytes === 4 ? view.getInt32(k * bytes, true) : Number(view.getBigInt64(k * bytes, true))));
}
