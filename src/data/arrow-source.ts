/**
 * A shuffled, exactly resumable stream of activation rows from Arrow files: a SAELens
 * activation cache (a Hugging Face dataset saved to disk) or one .arrow file, read a chunk
 * of contexts at a time and mixed in a buffer like a store's shards (mixed-source.ts). Rows
 * of excluded tokens are left out, as SAELens leaves them out of a cache it trains on, by
 * the cache's token_ids.
 */
import { type ArrowChunk, ArrowActivations } from "./arrow-activations.js";
import { MixedSource } from "./mixed-source.js";

/** Activation vectors per chunk read from disk (8192 x 512 floats: 16 MiB). */
const VECTORS_PER_CHUNK = 8192;

export class ArrowSource extends MixedSource {
  readonly d: number;
  readonly dTarget = undefined;
  readonly totalRows: number;
  readonly activations: ArrowActivations;
  private readonly chunkList: ArrowChunk[];

  /**
   * bufferRows: about how many rows are mixed at a time (whole chunks); column: which
   * column holds the activations; excludeTokens: token ids whose rows are left out.
   */
  constructor(readonly path: string, seed = 0, bufferRows = 1 << 18, column?: string, excludeTokens: readonly number[] = []) {
    const activations = ArrowActivations.open(path, column);
    const rowsPerChunk = Math.max(1, Math.floor(VECTORS_PER_CHUNK / activations.vectorsPerRow));
    const chunks = activations.chunks(rowsPerChunk);
    if (chunks.length === 0) throw new Error(`${path}: no rows`);
    const chunkVectors = rowsPerChunk * activations.vectorsPerRow;
    super(seed, chunks.length, Math.max(1, Math.min(chunks.length, Math.round(bufferRows / chunkVectors))));
    this.activations = activations;
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

  /** The token of each vector a chunk holds, from the cache's token_ids. */
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
