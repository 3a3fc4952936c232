/**
 * Where training activations come from. A source hands out batches of [batch, d] float32
 * rows and can save and restore its position, so a resumed run reads exactly the batches
 * an uninterrupted one would have.
 */
export interface ActivationSource {
  /** Width of each activation row. */
  readonly d: number;
  /** Fills out[0 .. batch*d) with the next `batch` rows. */
  next(out: Float32Array, batch: number): void;
  /** A JSON-serialisable position in the stream. */
  state(): unknown;
  /** Moves to a position saved by state(). */
  restore(state: unknown): void;
  /** What the data is, for run metadata (paths, generator settings). */
  describe(): Record<string, unknown>;
}

/** Reads `count` rows from a source without moving it (restores its position afterwards). */
export function peekRows(source: ActivationSource, count: number, batch = 4096): Float32Array {
  const saved = source.state();
  const out = new Float32Array(count * source.d);
  for (let done = 0; done < count; done += batch) {
    const n = Math.min(batch, count - done);
    source.next(out.subarray(done * source.d, (done + n) * source.d), n);
  }
  source.restore(saved);
  return out;
}

/** Throws naming the source if a batch holds NaN or infinite values. */
export function checkFinite(values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i]!)) {
      throw new Error(`${what}: non-finite activation ${values[i]} at flat index ${i}; clean the data or check the model that produced it`);
    }
  }
}
