/**
 * Where training activations come from. A source hands out batches of [batch, d] float32
 * rows and can save and restore its position, so a resumed run reads exactly the batches
 * an uninterrupted one would have.
 */
import { kernels } from "../core/kernels.js";

export interface ActivationSource {
  /** Width of each activation row. */
  readonly d: number;
  /**
   * Width of the target that follows each row, for sources that pair an input with what a
   * transcoder should predict from it (a store harvested with a target hook); absent otherwise.
   */
  readonly dTarget?: number;
  /**
   * Rows in one pass over the data, for sources that hold a fixed set of rows and start over
   * (reshuffled) once they are served; absent for endless ones (synthetic generators).
   */
  readonly totalRows?: number;
  /** Fills out[0 .. batch * rowWidth) with the next `batch` rows ([input | target] when paired). */
  next(out: Float32Array, batch: number): void;
  /** A JSON-serialisable position in the stream. */
  state(): unknown;
  /** Moves to a position saved by state(). */
  restore(state: unknown): void;
  /** What the data is, for run metadata (paths, generator settings). */
  describe(): Record<string, unknown>;
}

/**
 * How many passes over a fixed set of rows a run of `tokens` rows makes, when it makes more
 * than one (null otherwise): worth saying, since an SAE that sees its data several times
 * can fit that data rather than the model's activations.
 */
export function passesOver(source: ActivationSource, tokens: number): number | null {
  const rows = source.totalRows;
  return rows !== undefined && rows > 0 && tokens > rows ? tokens / rows : null;
}

/** Floats per row that next() writes: the input, and the target when the source pairs them. */
export function rowWidth(source: ActivationSource): number {
  return source.d + (source.dTarget ?? 0);
}

/** Splits paired rows [batch, d + dTarget] into inputs x [batch, d] and targets [batch, dTarget]. */
export function splitPairs(rows: Float32Array, batch: number, d: number, dTarget: number,
  x: Float32Array, target: Float32Array): void {
  columns(rows, batch, d + dTarget, 0, d, x);
  columns(rows, batch, d + dTarget, d, dTarget, target);
}

/**
 * Reads `count` rows from a source without moving it (restores its position afterwards):
 * the inputs [count, d], and the targets [count, dTarget] of a paired source.
 */
export function peekBatch(source: ActivationSource, count: number, batch = 4096): { x: Float32Array; target: Float32Array | null } {
  const rows = peekWholeRows(source, count, batch);
  if (!source.dTarget) return { x: rows, target: null };
  const x = new Float32Array(count * source.d);
  const target = new Float32Array(count * source.dTarget);
  splitPairs(rows, count, source.d, source.dTarget, x, target);
  return { x, target };
}

/** The next `count` rows as next() writes them ([count, rowWidth]), without moving the source. */
export function peekWholeRows(source: ActivationSource, count: number, batch = 4096): Float32Array {
  const saved = source.state();
  const w = rowWidth(source);
  const rows = new Float32Array(count * w);
  for (let done = 0; done < count; done += batch) {
    const n = Math.min(batch, count - done);
    source.next(rows.subarray(done * w, (done + n) * w), n);
  }
  source.restore(saved);
  return rows;
}

/** Columns [offset, offset + width) of rows [count, stride], as a [count, width] matrix. */
export function columns(rows: Float32Array, count: number, stride: number, offset: number, width: number,
  out: Float32Array = new Float32Array(count * width)): Float32Array {
  for (let r = 0; r < count; r++) out.set(rows.subarray(r * stride + offset, r * stride + offset + width), r * width);
  return out;
}

/** The inputs of the next `count` rows, without moving the source. */
export function peekRows(source: ActivationSource, count: number, batch = 4096): Float32Array {
  return peekBatch(source, count, batch).x;
}

/** Throws naming the source if a batch holds NaN or infinite values. */
export function checkFinite(values: Float32Array, what: string): void {
  // A finite sum of squares (one threaded native pass) clears the batch at once; the element
  // scan runs only to find the culprit, or to clear values so large that their squares
  // overflowed. (On a 4096 x 512 training batch: ~0.4 ms against the scan's ~3.)
  if (Number.isFinite(kernels().sumSquares(values))) return;
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new Error(`${what}: non-finite activation ${values[i]} at flat index ${i}; clean the data or check the model that produced it`);
    }
  }
}
