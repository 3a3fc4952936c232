/**
 * Ground-truth scores of an SAE trained on synthetic data: feature recovery on
 * superposition data, active dimensions per subspace on the union of subspaces.
 */
import { Rng } from "../core/rng.js";
import type { Sae } from "../sae/sae.js";
import { VaeaseSae, activeDims } from "../sae/vaease.js";
import { type FeatureRecovery, SuperpositionSource, scoreFeatureRecovery } from "./superposition.js";
import { SubspacesSource } from "./subspaces.js";

export interface SubspaceDims {
  /** Mean active dimensions of the samples of each subspace. */
  perSubspace: number[];
  mean: number;
  std: number;
  /** The truth: each subspace's dimension. */
  truth: number;
}

/**
 * VAEase's active dimensions on fresh labelled samples (per sample, the low-variance
 * group of its log-variances), averaged per subspace. `inputScale` is the scale the SAE
 * was trained with (the in-memory SAE works on scaled inputs).
 */
export function subspaceActiveDims(sae: VaeaseSae, data: SubspacesSource, samples = 3000, inputScale = 1): SubspaceDims {
  const evalData = new SubspacesSource(data.opts);
  evalData.restore(new Rng(data.opts.seed + 7919).state());
  const d = data.d;
  const x = new Float32Array(samples * d);
  const labels = new Int32Array(samples);
  evalData.sample(x, samples, labels);
  for (let i = 0; i < x.length; i++) x[i]! *= inputScale;
  const kappa = sae.cfg.d_sae;
  const logvar = sae.logVariances(x, samples);
  const sums = new Float64Array(data.opts.nSubspaces);
  const counts = new Float64Array(data.opts.nSubspaces);
  const all: number[] = [];
  for (let b = 0; b < samples; b++) {
    const ad = activeDims(logvar.subarray(b * kappa, (b + 1) * kappa));
    sums[labels[b]!]! += ad;
    counts[labels[b]!]!++;
    all.push(ad);
  }
  const mean = all.reduce((a, v) => a + v, 0) / samples;
  const std = Math.sqrt(all.reduce((a, v) => a + (v - mean) ** 2, 0) / samples);
  return { perSubspace: Array.from(sums, (s, i) => s / Math.max(1, counts[i]!)), mean, std, truth: data.opts.subspaceDim };
}

/** Scores an SAE against the ground truth of the synthetic source it was trained on. */
export function scoreSynthetic(sae: Sae, source: unknown, inputScale = 1): { recovery?: FeatureRecovery; subspaces?: SubspaceDims } {
  if (source instanceof SuperpositionSource && sae.params.has("W_dec")) {
    return { recovery: scoreFeatureRecovery(source.features, sae.params.get("W_dec")!.data, source.d) };
  }
  if (source instanceof SubspacesSource && sae instanceof VaeaseSae) {
    return { subspaces: subspaceActiveDims(sae, source, 3000, inputScale) };
  }
  return {};
}
