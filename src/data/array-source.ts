/**
 * An in-memory activation matrix served in shuffled order: every epoch is a fresh
 * permutation of the rows, derived from (seed, epoch) so the stream is reproducible and a
 * saved (epoch, position) pair is enough to resume it.
 */
import { Rng } from "../core/rng.js";
import type { ActivationSource } from "./source.js";

interface ArraySourceState {
  epoch: number;
  position: number;
}

export class ArraySource implements ActivationSource {
  readonly rows: number;
  get totalRows(): number {
    return this.rows;
  }
  private epoch = 0;
  private position = 0;
  private order: Uint32Array;

  constructor(readonly data: Float32Array, readonly d: number, private readonly seed = 0,
    private readonly info: Record<string, unknown> = {}, private readonly shuffle = true) {
    if (d < 1 || data.length % d !== 0) throw new RangeError(`activation data of ${data.length} values is not a whole number of rows of width ${d}`);
    this.rows = data.length / d;
    if (this.rows === 0) throw new RangeError("activation data has no rows");
    this.order = this.permutation(0);
  }

  private permutation(epoch: number): Uint32Array {
    const order = new Uint32Array(this.rows);
    for (let i = 0; i < this.rows; i++) order[i] = i;
    if (this.shuffle) new Rng(this.seed * 1_000_003 + epoch).shuffle(order);
    return order;
  }

  next(out: Float32Array, batch: number): void {
    const d = this.d;
    for (let r = 0; r < batch; r++) {
      if (this.position === this.rows) {
        this.epoch++;
        this.position = 0;
        this.order = this.permutation(this.epoch);
      }
      const src = this.order[this.position++]! * d;
      out.set(this.data.subarray(src, src + d), r * d);
    }
  }

  state(): ArraySourceState {
    return { epoch: this.epoch, position: this.position };
  }

  restore(state: unknown): void {
    const s = state as ArraySourceState;
    if (!s || !Number.isSafeInteger(s.epoch) || !Number.isSafeInteger(s.position) || s.position < 0 || s.position > this.rows) {
      throw new Error(`cannot restore the activation stream from ${JSON.stringify(state)}`);
    }
    this.epoch = s.epoch;
    this.position = s.position;
    this.order = this.permutation(this.epoch);
  }

  describe(): Record<string, unknown> {
    return { kind: "array", rows: this.rows, d: this.d, ...this.info };
  }
}
