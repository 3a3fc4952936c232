/**
 * What the synthetic generators share as activation sources: samples come from one seeded
 * stream, so the stream's state is the source's position.
 */
import { Rng, type RngState } from "../core/rng.js";
import type { ActivationSource } from "../data/source.js";

export abstract class GeneratedSource implements ActivationSource {
  abstract readonly d: number;
  protected rng: Rng;

  constructor(seed: number) {
    this.rng = new Rng(seed);
  }

  /** Fills out with `batch` samples. */
  abstract sample(out: Float32Array, batch: number): void;
  abstract describe(): Record<string, unknown>;

  next(out: Float32Array, batch: number): void {
    this.sample(out, batch);
  }

  state(): RngState {
    return this.rng.state();
  }

  restore(state: unknown): void {
    this.rng = Rng.fromState(state as RngState);
  }
}
