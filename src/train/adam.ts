/**
 * Adam (Kingma & Ba; PyTorch's formulation) over a ParamSet, one fused native update per
 * tensor. Holds the first and second moments, which checkpoints save.
 */
import { kernels } from "../core/kernels.js";
import { type ParamSet, zerosLike } from "../sae/sae.js";
import { zeroLatentRows } from "./latent-rows.js";
import type { Optimizer } from "./optimizer.js";
import { type OptimizerState, expectSetFor, stateSet } from "./optimizer-state.js";

export interface AdamOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAM_DEFAULTS: AdamOptions = { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0 };

/** Adam's moments in a checkpoint's optimizer state (as Adam.state() names them). */
export function adamMoments(state: OptimizerState): { m: ParamSet; v: ParamSet } {
  return { m: stateSet(state, "adam_m", "Adam moments"), v: stateSet(state, "adam_v", "Adam moments") };
}

export class Adam implements Optimizer {
  readonly kind = "adam";
  readonly m: ParamSet;
  readonly v: ParamSet;

  constructor(params: ParamSet, readonly opts: AdamOptions = ADAM_DEFAULTS, moments?: { m: ParamSet; v: ParamSet }) {
    this.m = moments ? expectSetFor(params, moments.m, "Adam: m moment") : zerosLike(params);
    this.v = moments ? expectSetFor(params, moments.v, "Adam: v moment") : zerosLike(params);
  }

  /** One update at 0-based step `step` (bias corrections use step + 1). */
  step(params: ParamSet, grads: ParamSet, lr: number, step: number): void {
    const k = kernels();
    const { beta1, beta2, eps, weightDecay } = this.opts;
    const t = step + 1;
    const bias1 = 1 - beta1 ** t;
    const bias2 = 1 - beta2 ** t;
    for (const [name, p] of params) {
      k.adamUpdate(p.data, grads.get(name)!.data, this.m.get(name)!.data, this.v.get(name)!.data,
        lr, beta1, beta2, eps, bias1, bias2, weightDecay);
    }
  }

  /** A restarted latent's moments start from zero. */
  restartRows(_params: ParamSet, j: number, m: number): void {
    zeroLatentRows(this.m, j, m);
    zeroLatentRows(this.v, j, m);
  }

  state(): OptimizerState {
    return { tensors: { adam_m: this.m, adam_v: this.v }, scalars: {} };
  }

  finalWeights(params: ParamSet): ParamSet {
    return params;
  }
}
