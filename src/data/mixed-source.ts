/**
 * A shuffled, exactly resumable stream of rows made from units (a store's shards, a
 * model's contexts). Like SAELens' mixing buffer it mixes rows from many units: every
 * epoch visits the units in a seeded random order, in groups whose rows fill the buffer,
 * and serves each group's rows in a seeded random permutation. A position is then
 * (epoch, group, row), which a checkpoint saves and a restore re-creates by loading one
 * group again. Subclasses say what a group's rows are, and, where they know each row's
 * token, which rows a group leaves out (token-filter.ts).
 */
import { Rng } from "../core/rng.js";
import type { ActivationSource } from "./source.js";
import { checkSomethingKept, countKept, keepRows } from "./token-filter.js";

interface MixedSourceState {
  epoch: number;
  group: number;
  row: number;
}

export abstract class MixedSource implements ActivationSource {
  abstract readonly d: number;
  abstract readonly dTarget?: number;
  private epoch = 0;
  private group = 0;
  private row = 0;
  private order: number[] = [];
  private rows: Float32Array = new Float32Array(0);
  /** Token ids whose rows every group leaves out; set by subclasses that give unitTokens. */
  protected excluded: ReadonlySet<number> = new Set();
  private perm: Uint32Array = new Uint32Array(0);

  /** `units` in all, `unitsPerGroup` of them mixed at a time. */
  protected constructor(protected readonly seed: number, private readonly units: number, private readonly unitsPerGroup: number) {}

  /**
   * The rows of these units, [n, d (+ dTarget)] ([input | target] when paired). `reuse` is
   * the previous group's buffer, no longer needed: a subclass fills it (rowsBuffer) instead
   * of allocating when the new group fits in it (a fresh buffer of hundreds of MB costs its
   * page faults again, which on some machines take longer than reading the rows).
   */
  protected abstract loadRows(units: number[], reuse: Float32Array): Float32Array;

  /**
   * `floats` floats for a group's rows: over the previous group's memory when it holds that
   * many (a group that left rows out returned a shorter view of it), else fresh.
   */
  protected static rowsBuffer(reuse: Float32Array, floats: number): Float32Array {
    return reuse.byteOffset === 0 && reuse.buffer.byteLength >= 4 * floats ? new Float32Array(reuse.buffer, 0, floats) : new Float32Array(floats);
  }
  /**
   * The token at each row of a unit, in the order loadRows gives them: asked for only when
   * tokens are excluded, by sources that know them.
   */
  protected unitTokens(_unit: number): Int32Array {
    throw new Error(`${this.where()}: which token each row holds is not known here, so none can be left out`);
  }

  /**
   * Rows in all the units: `all` when nothing is excluded, else those kept, counted from
   * every unit's tokens (an exclusion that keeps nothing is refused).
   */
  protected rowsKept(all: number): number {
    if (this.excluded.size === 0) return all;
    let kept = 0;
    for (let u = 0; u < this.units; u++) kept += countKept(this.unitTokens(u), this.excluded);
    checkSomethingKept(kept, this.excluded, this.where());
    return kept;
  }

  /** The stream's name in errors. */
  protected abstract where(): string;
  abstract describe(): Record<string, unknown>;

  /** Loads the first group; subclasses call it once their fields are set. */
  protected begin(): void {
    this.startEpoch(0);
    this.loadGroup(0);
  }

  private get width(): number {
    return this.d + (this.dTarget ?? 0);
  }

  private get groups(): number {
    return Math.ceil(this.units / this.unitsPerGroup);
  }

  private startEpoch(epoch: number): void {
    this.epoch = epoch;
    this.order = new Rng(this.seed * 7919 + epoch).shuffle(Array.from({ length: this.units }, (_, i) => i));
  }

  private loadGroup(group: number): void {
    this.group = group;
    this.row = 0;
    const units = this.order.slice(group * this.unitsPerGroup, (group + 1) * this.unitsPerGroup);
    try {
      const previous = this.rows;
      this.rows = new Float32Array(0); // a load that fails leaves no half-overwritten group
      this.rows = this.withoutExcluded(units, this.loadRows(units, previous));
    } catch (err) {
      // A typed array too large to allocate: say which setting makes the buffer smaller.
      if (!(err instanceof RangeError) || !/allocat|Invalid typed array length|Array buffer/i.test(err.message)) throw err;
      throw new RangeError(`${this.where()}: a mixing buffer of ${units.length} units of rows ${this.width} floats wide does not fit in memory (${err.message}); lower --buffer-rows`);
    }
    const n = this.rows.length / this.width;
    this.perm = new Uint32Array(n);
    for (let i = 0; i < n; i++) this.perm[i] = i;
    new Rng(this.seed * 104729 + this.epoch * 65537 + group).shuffle(this.perm);
  }

  /** A group's rows less those of excluded tokens (moved up in place). */
  private withoutExcluded(units: number[], rows: Float32Array): Float32Array {
    if (this.excluded.size === 0) return rows;
    const tokens = units.map((u) => this.unitTokens(u));
    const all = new Int32Array(tokens.reduce((a, t) => a + t.length, 0));
    let at = 0;
    for (const t of tokens) {
      all.set(t, at);
      at += t.length;
    }
    return keepRows(rows, this.width, all, this.excluded);
  }

  next(out: Float32Array, batch: number): void {
    const w = this.width;
    for (let r = 0; r < batch; r++) {
      while (this.row >= this.perm.length) {
        if (this.group + 1 < this.groups) this.loadGroup(this.group + 1);
        else {
          this.startEpoch(this.epoch + 1);
          this.loadGroup(0);
        }
      }
      const src = this.perm[this.row++]! * w;
      out.set(this.rows.subarray(src, src + w), r * w);
    }
  }

  state(): MixedSourceState {
    return { epoch: this.epoch, group: this.group, row: this.row };
  }

  restore(state: unknown): void {
    const s = state as MixedSourceState;
    if (!s || !Number.isSafeInteger(s.epoch) || !Number.isSafeInteger(s.group) || !Number.isSafeInteger(s.row) || s.group >= this.groups) {
      throw new Error(`cannot restore the activation stream of ${this.where()} from ${JSON.stringify(state)}`);
    }
    this.startEpoch(s.epoch);
    this.loadGroup(s.group);
    this.row = s.row;
  }
}
