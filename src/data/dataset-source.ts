/**
 * A shuffled, exactly resumable stream of activation rows from a Hugging Face dataset of
 * activations: a SAELens activation cache saved to disk (Arrow files, arrow-activations.ts)
 * or pushed to the Hub (Parquet files, parquet-activations.ts), or one such file. It is read
 * a chunk of contexts at a time and mixed in a buffer like a store's shards
 * (mixed-source.ts). Rows of excluded tokens are left out, as SAELens leaves them out of a
 * cache it trains on, by the cache's token_ids.
 */
import { existsSync, statSync } from "node:fs";
import { ArrowActivations, isArrowDataset, type SaelensProvenance } from "./arrow-activations.js";
import { MixedSource } from "./mixed-source.js";
import { isParquetData, ParquetActivations } from "./parquet-activations.js";

/** What the stream needs of a column of activations, whichever files hold it. */
export interface DatasetActivations<Chunk extends { rows: number }> {
  readonly d: number;
  /** Activation vectors per dataset row (a context's positions, for an Array2D). */
  readonly vectorsPerRow: number;
  readonly vectors: number;
  readonly hasTokens: boolean;
  /** Runs of dataset rows covering every row in order, each of at most about `maxRows` where the files allow. */
  chunks(maxRows: number): Chunk[];
  read(chunk: Chunk, into: Float32Array, at?: number): void;
  readTokens(chunk: Chunk): Int32Array;
  describe(): Record<string, unknown>;
  provenance(): SaelensProvenance;
}

/** Activation vectors per chunk read from disk, where the format can split them (8192 x 512 floats: 16 MiB). */
const VECTORS_PER_CHUNK = 8192;

/** Is this a dataset of activations: Arrow (a saved dataset folder, an .arrow file) or Parquet (files, or a folder of them)? */
export function isActivationDataset(path: string): boolean {
  return isArrowData(path) || isParquetData(path);
}

function isArrowData(path: string): boolean {
  return path.endsWith(".arrow") || path.endsWith(".feather") || (existsSync(path) && statSync(path).isDirectory() && isArrowDataset(path));
}

export class DatasetSource<Chunk extends { rows: number } = { rows: number }> extends MixedSource {
  readonly d: number;
  readonly dTarget = undefined;
  readonly totalRows: number;
  private readonly chunkList: Chunk[];

  /**
   * The dataset at `path`: Arrow where it is an Arrow file or a saved dataset, else Parquet.
   * bufferRows: about how many rows are mixed at a time (whole chunks); column: which
   * column holds the activations; excludeTokens: token ids whose rows are left out.
   */
  static async open(path: string, seed = 0, bufferRows?: number, column?: string, excludeTokens: readonly number[] = []): Promise<DatasetSource> {
    const activations: DatasetActivations<{ rows: number }> = isArrowData(path) ? ArrowActivations.open(path, column) : await ParquetActivations.open(path, column);
    return new DatasetSource(path, activations, seed, bufferRows, excludeTokens);
  }

  constructor(readonly path: string, readonly activations: DatasetActivations<Chunk>, seed = 0, bufferRows = 1 << 18, excludeTokens: readonly number[] = []) {
    const rowsPerChunk = Math.max(1, Math.floor(VECTORS_PER_CHUNK / activations.vectorsPerRow));
    const chunks = activations.chunks(rowsPerChunk);
    if (chunks.length === 0) throw new Error(`${path}: no rows`);
    const chunkVectors = activations.vectors / chunks.length;
    super(seed, chunks.length, Math.max(1, Math.min(chunks.length, Math.round(bufferRows / chunkVectors))));
    this.chunkList = chunks;
    this.d = activations.d;
    this.excluded = new Set(excludeTokens);
    if (this.excluded.size > 0 && !activations.hasTokens) {
      throw new Error(`${path}: leaving tokens out needs each vector's token, and these files have no token_ids column`);
    }
    this.totalRows = this.rowsKept(activations.vectors);
    this.begin();
  }

  protected loadRows(units: number[], reuse: Float32Array): Float32Array {
    const { d, vectorsPerRow } = this.activations;
    const n = units.reduce((a, u) => a + this.chunkList[u]!.rows * vectorsPerRow, 0);
    const out = MixedSource.rowsBuffer(reuse, n * d);
    let at = 0;
    for (const u of units) {
      const chunk = this.chunkList[u]!;
      this.activations.read(chunk, out, at * d);
      at += chunk.rows * vectorsPerRow;
    }
    return out;
  }

  /** The token of each vector a chunk holds, from the dataset's token_ids. */
  protected override unitTokens(chunk: number): Int32Array {
    return this.activations.readTokens(this.chunkList[chunk]!);
  }

  protected where(): string {
    return this.path;
  }

  describe(): Record<string, unknown> {
    return { ...this.activations.describe(), ...(this.excluded.size > 0 ? { exclude_tokens: [...this.excluded], rows: this.totalRows } : {}) };
  }
}
