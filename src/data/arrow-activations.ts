/**
 * Activations in Arrow files, as SAELens caches them: its `CacheActivationsRunner` saves a
 * Hugging Face dataset to disk (state.json, dataset_info.json, data-NNNNN-of-NNNNN.arrow),
 * one row per context, the hook's activations in a column named after the hook, of type
 * Array2D(context_size, d_in) (stored as list<list<float>>), beside `token_ids`, the
 * context's tokens.
 *
 * Any column of nested lists of floats reads the same way (arrow-column.ts): each innermost
 * list is one activation vector [d], and a dataset row holds as many of them as its outer
 * dimensions multiply to (ctx for Array2D; 1 for a column of plain vectors).
 */
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { ArrowIpcFile } from "../core/arrow-ipc.js";
import { openFileSource } from "../core/file-range.js";
import { ArrowArrayColumn, type ArrowChunk, chooseFloatColumn } from "./arrow-column.js";

export type { ArrowChunk } from "./arrow-column.js";

/** SAELens' name for the column of each context's tokens. */
export const TOKEN_IDS_COLUMN = "token_ids";

/** SAELens' record of how a cache was made (model, hook, dataset), written beside it. */
export const CACHE_RUNNER_CONFIG = "cache_activations_runner_cfg.json";

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
  private readonly acts: ArrowArrayColumn;
  /** The token of each vector (SAELens' token_ids), when the files have it. */
  private readonly tokens: ArrowArrayColumn | null;

  private constructor(readonly where: string, readonly paths: string[], private readonly files: ArrowIpcFile[], column?: string) {
    const fields = files[0]!.fields;
    const name = chooseFloatColumn(fields, column, where);
    this.acts = new ArrowArrayColumn(name, "float", files, paths);
    this.column = name;
    this.dims = this.acts.dims;
    this.d = this.dims[this.dims.length - 1]!;
    this.vectorsPerRow = this.acts.perRow / this.d;
    this.vectors = files.reduce((a, f) => a + f.rows, 0) * this.vectorsPerRow;
    const hasTokens = ArrowArrayColumn.candidates(fields, "int").includes(TOKEN_IDS_COLUMN);
    this.tokens = hasTokens ? new ArrowArrayColumn(TOKEN_IDS_COLUMN, "int", files, paths) : null;
    if (this.tokens && this.tokens.perRow !== this.vectorsPerRow) {
      this.fail(`${TOKEN_IDS_COLUMN} holds ${this.tokens.perRow} tokens per row, "${name}" ${this.vectorsPerRow} vectors`);
    }
  }

  /**
   * A Hugging Face dataset folder (its state.json lists the .arrow files, in order) or one
   * Arrow file; `column` picks the column (default: the only one of float vectors).
   */
  static open(path: string, column?: string): ArrowActivations {
    if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
    const paths = statSync(path).isDirectory() ? savedDatasetFiles(path) : [path];
    const files = paths.map((p) => ArrowIpcFile.open(openFileSource(p), p));
    return new ArrowActivations(path, paths, files, column);
  }

  /** Whether each vector's token is known (a token_ids column). */
  get hasTokens(): boolean {
    return this.tokens !== null;
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
    this.acts.readFloats(chunk, into, at);
  }

  /** The token of each of the chunk's vectors [rows * vectorsPerRow]. */
  readTokens(chunk: ArrowChunk): Int32Array {
    if (!this.tokens) this.fail(`no ${TOKEN_IDS_COLUMN} column: which token each vector belongs to is not recorded`);
    return this.tokens!.readInts(chunk);
  }

  /** What the column holds, for run metadata. */
  describe(): Record<string, unknown> {
    return { kind: "arrow", path: this.where, column: this.column, shape: this.dims, vectors: this.vectors };
  }

  /** Where the activations came from, in the terms of SAELens' cfg.json (saelensProvenance). */
  provenance(): SaelensProvenance {
    return saelensProvenance(this.where, this.column, this.dims);
  }

  private fail(why: string): never {
    throw new Error(`${this.where}: ${why}`);
  }
}

export interface SaelensProvenance {
  hook_name: string;
  context_size?: number;
  model_name?: string;
  dataset_path?: string;
  prepend_bos?: boolean;
}

/**
 * Where a cache's activations came from, in the terms of SAELens' cfg.json: SAELens names
 * the column after the hook, and an Array2D's first dimension is the context size; the
 * cache_activations_runner_cfg.json SAELens writes beside a cache it pushes to the Hub (in
 * `where`, the cache's folder) adds the model, dataset and BOS setting.
 */
export function saelensProvenance(where: string, column: string, dims: number[]): SaelensProvenance {
  const out: SaelensProvenance = { hook_name: column };
  if (dims.length === 2) out.context_size = dims[0]!;
  const cfgPath = join(where, CACHE_RUNNER_CONFIG);
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

/**
 * The file an unfinished export to SAELens' cache format (saelens-cache.ts) leaves in its
 * folder until state.json is written: its .arrow files are not all there yet.
 */
export const UNFINISHED_EXPORT_FILE = ".saekit-export.json";

/** The .arrow files of a dataset saved to disk, in the order its state.json lists them. */
export function savedDatasetFiles(dir: string): string[] {
  const statePath = join(dir, "state.json");
  if (existsSync(join(dir, UNFINISHED_EXPORT_FILE))) throw new Error(`${dir}: an unfinished export; rerun it to finish (saekit export-cache)`);
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
