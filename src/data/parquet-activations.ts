/**
 * Activations in Parquet files: how a SAELens activation cache reaches the Hugging Face Hub
 * (CacheActivationsRunner with hf_repo_id calls `push_to_hub`, which writes the dataset as
 * data/train-NNNNN-of-NNNNN.parquet), and how any dataset of activation vectors may be
 * shared. The layout is the Arrow cache's (arrow-activations.ts): one row per context, the
 * hook's activations in a column named after it — Array2D(context_size, d_in), a list of
 * lists of floats — beside `token_ids`.
 *
 * A read unit is one row group, whose pages are decoded straight into the caller's
 * Float32Array and checked against the first row's shape (parquet-column.ts); here, the
 * files and folders, the codecs, and what a training stream needs besides.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { openFileSource } from "../core/file-range.js";
import type { Decompress } from "../core/parquet-pages.js";
import { TOKEN_IDS_COLUMN, UNFINISHED_EXPORT_FILE, saelensProvenance, type SaelensProvenance } from "./arrow-activations.js";
import { type ParquetChunk, ParquetArrayColumn, type ParquetFile, chooseParquetFloatColumn, hasIntColumn, readParquetFooter } from "./parquet-column.js";

export type { ParquetChunk } from "./parquet-column.js";

/** Is this a Parquet file, or a folder holding any (and no store or saved dataset)? */
export function isParquetData(path: string): boolean {
  if (path.endsWith(".parquet")) return true;
  return existsSync(path) && statSync(path).isDirectory() && parquetFilesUnder(path).length > 0;
}

export class ParquetActivations {
  /** Shape of one dataset row of the column: [..., d]. */
  readonly dims: number[];
  readonly d: number;
  /** Activation vectors per dataset row (the product of all but the last dimension). */
  readonly vectorsPerRow: number;
  readonly column: string;
  /** Activation vectors in all the files. */
  readonly vectors: number;
  private readonly acts: ParquetArrayColumn;
  private readonly tokens: ParquetArrayColumn | null;

  private constructor(readonly where: string, readonly paths: string[], files: ParquetFile[], codecs: Record<string, Decompress>, column?: string) {
    const name = chooseParquetFloatColumn(files[0]!, column, where);
    this.acts = new ParquetArrayColumn(name, "float", files, codecs);
    if (this.acts.dims.length === 0) this.fail(`column "${name}" holds single numbers, not vectors`);
    this.column = name;
    this.dims = this.acts.dims;
    this.d = this.dims[this.dims.length - 1]!;
    this.vectorsPerRow = this.acts.perRow / this.d;
    this.vectors = files.reduce((a, f) => a + Number(f.meta.num_rows), 0) * this.vectorsPerRow;
    this.tokens = hasIntColumn(files[0]!, TOKEN_IDS_COLUMN) ? new ParquetArrayColumn(TOKEN_IDS_COLUMN, "int", files, codecs) : null;
    if (this.tokens && this.tokens.perRow !== this.vectorsPerRow) {
      this.fail(`${TOKEN_IDS_COLUMN} holds ${this.tokens.perRow} tokens per row, "${name}" ${this.vectorsPerRow} vectors`);
    }
  }

  /**
   * A Parquet file, or a folder of them (every .parquet file under it, in path order, as a
   * dataset downloaded from the Hub lays them out); `column` picks the column (default: the
   * only one of float vectors).
   */
  static async open(path: string, column?: string): Promise<ParquetActivations> {
    if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
    const isFolder = statSync(path).isDirectory();
    if (isFolder && existsSync(join(path, UNFINISHED_EXPORT_FILE))) throw new Error(`${path}: an unfinished export; rerun it to finish (saekit export-cache)`);
    const paths = isFolder ? parquetFilesUnder(path).map((f) => join(path, f)) : [path];
    if (paths.length === 0) throw new Error(`${path}: no .parquet files`);
    const { parquetMetadata } = await import("hyparquet");
    const { compressors } = await import("hyparquet-compressors");
    const files = paths.map((p) => readParquetFooter(p, openFileSource(p), parquetMetadata));
    return new ParquetActivations(path, paths, files, compressors as Record<string, Decompress>, column);
  }

  get hasTokens(): boolean {
    return this.tokens !== null;
  }

  /** Every non-empty row group, in order: a row group's pages decode together, so it is the unit read. */
  chunks(): ParquetChunk[] {
    return this.acts.chunks();
  }

  /** The chunk's activation vectors [rows * vectorsPerRow, d] as float32, into `into` at `at` (in floats). */
  read(chunk: ParquetChunk, into: Float32Array, at = 0): void {
    this.acts.read(chunk, into, at);
  }

  /** The token of each of the chunk's vectors [rows * vectorsPerRow]. */
  readTokens(chunk: ParquetChunk): Int32Array {
    if (!this.tokens) this.fail(`no ${TOKEN_IDS_COLUMN} column: which token each vector belongs to is not recorded`);
    const out = new Int32Array(chunk.rows * this.tokens!.perRow);
    this.tokens!.read(chunk, out, 0);
    return out;
  }

  describe(): Record<string, unknown> {
    return { kind: "parquet", path: this.where, files: this.paths.length, column: this.column, shape: this.dims, vectors: this.vectors };
  }

  /** Where the activations came from, in the terms of SAELens' cfg.json (arrow-activations.ts). */
  provenance(): SaelensProvenance {
    return saelensProvenance(this.where, this.column, this.dims);
  }

  private fail(why: string): never {
    throw new Error(`${this.where}: ${why}`);
  }
}

/** Every .parquet file under a folder (hidden folders skipped), as paths relative to it, in order. */
function parquetFilesUnder(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      if (entry.name.startsWith(".")) continue;
      const p = join(d, entry.name);
      if (entry.isDirectory()) walk(p);
      else if (entry.name.endsWith(".parquet")) out.push(relative(dir, p));
    }
  };
  walk(dir);
  return out.sort();
}
