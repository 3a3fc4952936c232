/**
 * Schedule-Free SignSGD: sparsify's default optimizer ("signum"), the schedulefree package's
 * wrapper (Defazio et al. 2024, "The Road Less Scheduled"; momentum 0.95) around SignSGD
 * (steepest descent in the L-infinity norm: z -= lr * sign(g)). It keeps two copies of the
 * weights besides the parameters:
 *
 *   z  the base iterate, which the sign steps move;
 *   x  the running average of the z's, weighted by (largest lr so far)^2: what a run ends
 *      with (sparsify saves it, switching the wrapper to eval mode);
 *   y  = x + (1 - momentum) (z - x): where the gradients are taken, held in the parameters.
 *
 * Weight decay is taken at y, as the wrapper's weight_decay_at_y. No learning-rate schedule
 * is needed (the averaging stands in for the decay), so sparsify runs it at a constant lr,
 * 5e-3 / sqrt(d_sae / 2^14) by default.
 */
import { kernels } from "../core/kernels.js";
import { type ParamSet, cloneParams } from "../sae/sae.js";
import { copyLatentRows } from "./latent-rows.js";
import type { Optimizer } from "./optimizer.js";
import { type OptimizerState, expectSetFor, stateSet } from "./optimizer-state.js";

/** The wrapper's momentum, as sparsify sets it: y sits 1 - momentum of the way from the average x to z. */
export const SCHEDULE_FREE_MOMENTUM = 0.95;

/** sparsify's default learning rate for signum: 5e-3, scaled by 1 / sqrt(d_sae / 2^14). */
export function signumDefaultLr(dSae: number): number {
  return 5e-3 / Math.sqrt(dSae / 2 ** 14);
}

export class ScheduleFreeSignSgd implements Optimizer {
  readonly kind = "signum";
  readonly z: ParamSet;
  readonly x: ParamSet;
  /** The largest learning rate so far, and the sum of the averaging weights (lrMax^2 per step). */
  private lrMax: number;
  private weightSum: number;

  constructor(params: ParamSet, readonly weightDecay = 0, state?: OptimizerState) {
    if (state) {
      this.z = expectSetFor(params, stateSet(state, "sf_z", "Schedule-Free state"), "Schedule-Free: z");
      this.x = expectSetFor(params, stateSet(state, "sf_x", "Schedule-Free state"), "Schedule-Free: x");
      this.lrMax = state.scalars.lr_max ?? 0;
      this.weightSum = state.scalars.weight_sum ?? 0;
    } else {
      this.z = cloneParams(params);
      this.x = cloneParams(params);
      this.lrMax = 0;
      this.weightSum = 0;
    }
  }

  step(params: ParamSet, grads: ParamSet, lr: number): void {
    this.lrMax = Math.max(this.lrMax, lr);
    const weight = this.lrMax ** 2;
    this.weightSum += weight;
    // The first step's weight is 1: x starts as that step's z.
    const averageWeight = this.weightSum > 0 ? weight / this.weightSum : 1;
    const k = kernels();
    for (const [name, p] of params) {
      k.scheduleFreeSignUpdate(p.data, grads.get(name)!.data, this.z.get(name)!.data, this.x.get(name)!.data,
        lr, this.weightDecay, averageWeight, SCHEDULE_FREE_MOMENTUM);
    }
  }

  /** A restarted latent's z and x rows take its new parameters, so the average starts over from them. */
  restartRows(params: ParamSet, j: number, m: number): void {
    copyLatentRows(params, this.z, j, m);
    copyLatentRows(params, this.x, j, m);
  }

  state(): OptimizerState {
    return { tensors: { sf_z: this.z, sf_x: this.x }, scalars: { lr_max: this.lrMax, weight_sum: this.weightSum } };
  }

  finalWeights(): ParamSet {
    return this.x;
  }
}
