/**
 * What a checkpoint keeps of an optimizer, and the checks every optimizer makes when it is
 * restored from one: the tensor sets it needs are there, with a tensor the size of each
 * parameter.
 */
import type { ParamSet } from "../sae/sae.js";

/** Per-parameter tensor sets by name (checkpoints prefix them, "adam_m.W_enc"), and scalars. */
export interface OptimizerState {
  tensors: Record<string, ParamSet>;
  scalars: Record<string, number>;
}

/** The state's tensor set `prefix`; `missing` says what a checkpoint without it lacks. */
export function stateSet(state: OptimizerState, prefix: string, missing: string): ParamSet {
  const set = state.tensors[prefix];
  if (!set) throw new Error(`the checkpoint holds no ${missing} (was it trained with another optimizer?)`);
  return set;
}

/** `set`, refused unless it holds a tensor the size of each parameter; `label` names it in the error. */
export function expectSetFor(params: ParamSet, set: ParamSet, label: string): ParamSet {
  for (const [name, p] of params) {
    if (set.get(name)?.numel !== p.numel) throw new Error(`${label} for "${name}" missing or of the wrong size`);
  }
  return set;
}
