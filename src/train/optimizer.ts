/**
 * The optimizers a run can use, behind the one interface the training step drives: Adam
 * (adam.ts), as SAELens and dictionary_learning train; "signum", Schedule-Free SignSGD
 * (schedule-free.ts), sparsify's default; and "muon" (muon.ts), sparsify's other choice.
 */
import { createSae } from "../sae/registry.js";
import { type ParamSet, type Sae, cloneParams } from "../sae/sae.js";
import { ADAM_DEFAULTS, Adam, type AdamOptions, adamMoments } from "./adam.js";
import type { OptimizerState } from "./optimizer-state.js";
import { MUON_DEFAULT_LR, MUON_DEFAULT_WEIGHT_DECAY, Muon } from "./muon.js";
import { ScheduleFreeSignSgd, signumDefaultLr } from "./schedule-free.js";
import { type LrSchedule, type LrScheduleKind, defaultSchedule } from "./schedule.js";

export const OPTIMIZERS = ["adam", "signum", "muon"] as const;
export type OptimizerKind = (typeof OPTIMIZERS)[number];

export type { OptimizerState } from "./optimizer-state.js";

export interface Optimizer {
  readonly kind: OptimizerKind;
  /** One update of `params` from `grads` at learning rate `lr`, at 0-based step `step`. */
  step(params: ParamSet, grads: ParamSet, lr: number, step: number): void;
  /**
   * Latent j starts afresh from its parameters' current rows (in every tensor whose first
   * dimension is d_sae = m): what resampling a dead latent asks of the optimizer.
   */
  restartRows(params: ParamSet, j: number, m: number): void;
  state(): OptimizerState;
  /**
   * The weights a run ends with: Adam's are its parameters; Schedule-Free's are the running
   * average x, its parameters holding the point y where the gradients are taken.
   */
  finalWeights(params: ParamSet): ParamSet;
}

export type OptimizerOptions = AdamOptions;

/**
 * A fresh optimizer for `params`, or one restored from a checkpoint's `state`; `opts`
 * default to Adam's settings and the kind's weight decay (defaultWeightDecayFor).
 */
export function createOptimizer(kind: OptimizerKind, params: ParamSet,
  opts: OptimizerOptions = { ...ADAM_DEFAULTS, weightDecay: defaultWeightDecayFor(kind) }, state?: OptimizerState): Optimizer {
  switch (kind) {
    case "adam":
      return new Adam(params, opts, state && adamMoments(state));
    case "signum":
      return new ScheduleFreeSignSgd(params, opts.weightDecay, state);
    case "muon":
      // opts.weightDecay is the matrices' decoupled decay; the Adam for the rest has none, as in sparsify.
      return new Muon(params, opts.weightDecay, opts, state);
    default:
      throw new RangeError(`unknown optimizer ${JSON.stringify(kind)} (known: ${OPTIMIZERS.join(", ")})`);
  }
}

/**
 * The default schedule for an optimizer: schedule.ts's warm-up and decay for Adam; none
 * for Schedule-Free SignSGD, whose averaging does what a decay would (sparsify runs it at a
 * constant rate); for Muon, sparsify's linear decay to zero over the whole run, no warm-up.
 */
export function defaultScheduleFor(kind: OptimizerKind, lr: number, steps: number, schedule?: LrScheduleKind): LrSchedule {
  const s = defaultSchedule(lr, steps, schedule);
  if (kind === "signum") return { ...s, warmupSteps: 0, decayStart: steps };
  if (kind === "muon") return { ...s, warmupSteps: 0, decayStart: s.kind === "constant" ? 0 : steps };
  return s;
}

/** The default learning rate: Adam's, and sparsify's for signum (by d_sae) and Muon (2e-3). */
export function defaultLrFor(kind: OptimizerKind, dSae: number): number {
  return kind === "signum" ? signumDefaultLr(dSae) : kind === "muon" ? MUON_DEFAULT_LR : DEFAULT_ADAM_LR;
}

/** Adam's default learning rate. */
export const DEFAULT_ADAM_LR = 4e-4;

/** The default weight decay: none, but Muon's decoupled 0.1 on its matrices (sparsify's). */
export function defaultWeightDecayFor(kind: OptimizerKind): number {
  return kind === "muon" ? MUON_DEFAULT_WEIGHT_DECAY : 0;
}

/**
 * The SAE as its training ends: the SAE itself for Adam and Muon; for Schedule-Free, a copy holding
 * the running average (the SAE keeps the point training goes on from).
 */
export function withFinalWeights(sae: Sae, optimizer: Optimizer): Sae {
  const weights = optimizer.finalWeights(sae.params);
  return weights === sae.params ? sae : createSae(sae.cfg, cloneParams(weights), sae.buffers);
}
