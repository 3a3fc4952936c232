/**
 * What the synthetic generators share as activation sources: samples come from one seeded
 * stream, so the stream's state is the source's position.
 */
import { Rng, type RngState } from "../core/rng.js";
import type { ActivationSource } from "../data/source.js";

/**
 * The stream a generator draws its fixed structure from (the true feature directions, the
 * subspaces' mixing matrix), apart from every stream an SAE's initialisation draws. Trainers
 * start from `new Rng(seed)`, and a generator that drew its features from that same stream
 * would hand an SAE trained with the data's seed its first decoder rows equal to the true
 * features before any training.
 */
export function structureRng(seed: number): Rng {
  return new Rng(Math.imul((seed ^ 0x27d4eb2f) | 0, 0x165667b1) ^ 0x5bd1e995);
}

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
