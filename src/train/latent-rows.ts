/**
 * Row j of every per-latent tensor of a parameter set (those whose first dimension is
 * d_sae = m: W_enc, W_dec, b_enc, thresholds, ...): what restarting latent j touches in an
 * optimizer's state.
 */
import type { ParamSet } from "../sae/sae.js";

/** Copies row j of every per-latent tensor of `from` into the same tensor of `into`. */
export function copyLatentRows(from: ParamSet, into: ParamSet, j: number, m: number): void {
  for (const [name, t] of from) {
    if (t.shape[0] !== m) continue;
    const width = t.numel / m;
    into.get(name)!.data.set(t.data.subarray(j * width, (j + 1) * width), j * width);
  }
}

/** Zeroes row j of every per-latent tensor (first dimension d_sae = m) of a set. */
export function zeroLatentRows(set: ParamSet, j: number, m: number): void {
  for (const t of set.values()) {
    if (t.shape[0] !== m) continue;
    const width = t.numel / m;
    t.data.fill(0, j * width, (j + 1) * width);
  }
}
