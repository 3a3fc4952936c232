/**
 * Training checkpoints: one safetensors file holding everything a run needs to continue
 * exactly where it stopped — parameters, buffers, the optimizer's state (Adam's moments
 * "adam_m.*" / "adam_v.*", Schedule-Free's iterate and average "sf_z.*" / "sf_x.*", Muon's
 * momentum "muon_m.*" beside the Adam moments of its other parameters), dead-latent counters and
 * the feature-sparsity window's firing counts (I64) — and, in its metadata, the step, the
 * data position, the trainer options and the metrics window. Written atomically (temp, fsync, rename), so a run killed at any moment
 * leaves either the previous checkpoint or the new one.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { SafetensorsFile, type TensorToWrite, writeSafetensors } from "../core/safetensors.js";
import type { Tensor } from "../core/tensor.js";
import type { SaeConfig } from "../sae/config.js";
import type { ParamSet } from "../sae/sae.js";
import type { OptimizerState } from "./optimizer.js";

export const CHECKPOINT_FILE = "checkpoint.safetensors";
const FORMAT = "saekit-checkpoint-1";

/** The JSON part of a checkpoint. */
export interface CheckpointMeta {
  format: typeof FORMAT;
  /** Steps completed. */
  step: number;
  tokens: number;
  config: SaeConfig;
  /** The trainer options the run was started with. */
  options: Record<string, unknown>;
  sourceState: unknown;
  inputScale: number;
  /** Partial sums of the metrics window in progress. */
  window: Record<string, number>;
  /** Tokens the feature-sparsity window in progress has counted (absent in older checkpoints). */
  sparsityTokens?: number;
  /** With saveBest: the lowest step loss a checkpoint has seen, the SAE in best/ (absent: none yet). */
  bestLoss?: number;
  /** The optimizer's scalar state (Schedule-Free's largest lr and weight sum; absent for Adam). */
  optimizerScalars?: Record<string, number>;
}

export interface Checkpoint {
  meta: CheckpointMeta;
  params: ParamSet;
  buffers: ParamSet;
  /** Tensor sets by name prefix; the scalars live in meta.optimizerScalars. */
  optimizer: OptimizerState;
  tokensSinceFired: Float64Array;
  /** Per latent, tokens it fired on in the feature-sparsity window in progress. */
  fireCounts: Float64Array;
}

export function checkpointPath(dir: string): string {
  return join(dir, CHECKPOINT_FILE);
}

export function saveCheckpoint(dir: string, c: Checkpoint): void {
  const tensors: Record<string, TensorToWrite | Tensor> = {};
  for (const [prefix, set] of [["param", c.params], ["buffer", c.buffers], ...Object.entries(c.optimizer.tensors)] as const) {
    for (const [name, t] of set) tensors[`${prefix}.${name}`] = t;
  }
  tensors.tokens_since_fired = { dtype: "I64", shape: [c.tokensSinceFired.length], data: c.tokensSinceFired };
  tensors.fire_counts = { dtype: "I64", shape: [c.fireCounts.length], data: c.fireCounts };
  writeSafetensors(checkpointPath(dir), tensors, { saekit: JSON.stringify({ ...c.meta, optimizerScalars: c.optimizer.scalars }) });
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(checkpointPath(dir));
}

export function loadCheckpoint(dir: string): Checkpoint {
  const path = checkpointPath(dir);
  const file = SafetensorsFile.open(path);
  let meta: CheckpointMeta;
  try {
    meta = JSON.parse(file.metadata.saekit ?? "");
  } catch {
    throw new Error(`${path}: not a saekit checkpoint (no valid "saekit" metadata)`);
  }
  if (meta.format !== FORMAT) throw new Error(`${path}: checkpoint format ${JSON.stringify(meta.format)} is not ${FORMAT}`);
  // "prefix.name": the parameters, the buffers, and every other prefix an optimizer's set.
  const sets: Record<string, ParamSet> = { param: new Map(), buffer: new Map() };
  for (const name of file.names()) {
    const dot = name.indexOf(".");
    if (dot <= 0) continue;
    const prefix = name.slice(0, dot);
    (sets[prefix] ??= new Map()).set(name.slice(dot + 1), file.read(name));
  }
  const { param: params, buffer: buffers, ...optimizerTensors } = sets;
  const counters = (name: string, required: boolean): Float64Array => {
    if (!file.has(name)) {
      if (required) throw new Error(`${path}: missing tensor "${name}"`);
      return new Float64Array(meta.config.d_sae);
    }
    const values = Float64Array.from(file.readInts(name).data);
    if (values.length !== meta.config.d_sae) throw new Error(`${path}: ${name} has ${values.length} entries, d_sae is ${meta.config.d_sae}`);
    return values;
  };
  // Checkpoints from before the sparsity window start it afresh.
  const fireCounts = counters("fire_counts", false);
  if (!file.has("fire_counts")) meta.sparsityTokens = 0;
  return {
    meta, params: params!, buffers: buffers!, optimizer: { tensors: optimizerTensors, scalars: meta.optimizerScalars ?? {} },
    tokensSinceFired: counters("tokens_since_fired", true), fireCounts,
  };
}
