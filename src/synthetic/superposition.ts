/**
 * Toy superposition data with known ground truth (Elhage et al. 2022's toy models; the
 * standard SAE sanity check): n unit feature directions in R^d with n > d, each sample a
 * sparse non-negative combination of them (or, with `negative` > 0, a signed one: each
 * feature an axis that fires both ways, as the AbsTopK paper's bidirectional concepts). A
 * good SAE's decoder rows should line up with the true directions; scoreFeatureRecovery
 * measures how well, and how many latents each true feature takes.
 */
import { maxCosines, matchSummary } from "../analysis/compare.js";
import { GeneratedSource, structureRng } from "./generated-source.js";
import { withDefaults } from "../util/defaults.js";

export interface SuperpositionOptions {
  /** Ambient dimension. */
  d: number;
  /** Number of true features (directions). */
  nFeatures: number;
  /** Expected number of features active per sample. */
  meanActive: number;
  /** Firing probabilities: all equal, or Zipf-like (feature i proportional to 1/(i+1)^0.5). */
  firing: "uniform" | "zipf";
  /** Magnitude of an active feature: uniform on [0.5, 1.5], exponential(1), or |N(0,1)|. */
  magnitude: "uniform" | "exponential" | "halfnormal";
  /** Features come in groups of groupSize; when one fires, each other member of its group
   *  also fires with this probability (0 = independent). */
  correlation: number;
  groupSize: number;
  /** Standard deviation of isotropic Gaussian noise added to every sample. */
  noise: number;
  /** Probability that an active feature's coefficient is negative (0: non-negative data; 0.5: every feature fires both ways alike). */
  negative: number;
  seed: number;
}

export const SUPERPOSITION_DEFAULTS: SuperpositionOptions = {
  d: 64, nFeatures: 512, meanActive: 4, firing: "uniform", magnitude: "uniform",
  correlation: 0, groupSize: 4, noise: 0, negative: 0, seed: 0,
};

export class SuperpositionSource extends GeneratedSource {
  readonly d: number;
  readonly opts: SuperpositionOptions;
  /** True feature directions [nFeatures, d], unit rows. */
  readonly features: Float32Array;
  readonly probabilities: Float64Array;

  constructor(options: Partial<SuperpositionOptions> = {}) {
    const o = withDefaults(SUPERPOSITION_DEFAULTS, options);
    super(o.seed + 1); // the sample stream; the fixed structure below has a stream of its own
    if (!(o.d >= 1 && o.nFeatures >= 1)) throw new RangeError("superposition: d and nFeatures must be >= 1");
    if (!(o.meanActive > 0 && o.meanActive <= o.nFeatures)) throw new RangeError("superposition: meanActive must be in (0, nFeatures]");
    if (!(o.correlation >= 0 && o.correlation <= 1)) throw new RangeError("superposition: correlation must be in [0, 1]");
    if (!(o.negative >= 0 && o.negative <= 1)) throw new RangeError("superposition: negative must be in [0, 1]");
    this.opts = o;
    this.d = o.d;
    const setup = structureRng(o.seed);
    this.features = new Float32Array(o.nFeatures * o.d);
    for (let i = 0; i < o.nFeatures; i++) {
      const row = this.features.subarray(i * o.d, (i + 1) * o.d);
      setup.fillNormal(row);
      const norm = Math.hypot(...row);
      for (let c = 0; c < o.d; c++) row[c]! /= norm;
    }
    const weights = Array.from({ length: o.nFeatures }, (_, i) => (o.firing === "zipf" ? 1 / Math.sqrt(i + 1) : 1));
    const total = weights.reduce((a, b) => a + b, 0);
    this.probabilities = Float64Array.from(weights, (w) => Math.min(1, (o.meanActive * w) / total));
  }

  /** An active feature's coefficient: its magnitude, negated with probability `negative`. */
  private magnitude(): number {
    let a: number;
    switch (this.opts.magnitude) {
      case "exponential": a = -Math.log(1 - this.rng.uniform()); break;
      case "halfnormal": a = Math.abs(this.rng.normal()); break;
      default: a = 0.5 + this.rng.uniform();
    }
    // No draw for non-negative data, so its stream is what it always was.
    return this.opts.negative > 0 && this.rng.uniform() < this.opts.negative ? -a : a;
  }

  /** Fills out with `batch` samples; codes (if given) receives the true coefficients [batch, n]. */
  sample(out: Float32Array, batch: number, codes?: Float32Array): void {
    const { d, nFeatures: n, correlation, groupSize, noise } = this.opts;
    const coef = new Float64Array(n);
    for (let b = 0; b < batch; b++) {
      coef.fill(0);
      for (let i = 0; i < n; i++) {
        if (this.rng.uniform() >= this.probabilities[i]!) continue;
        coef[i] = this.magnitude();
        if (correlation > 0) {
          const g0 = i - (i % groupSize);
          for (let j = g0; j < Math.min(n, g0 + groupSize); j++) {
            if (j !== i && coef[j] === 0 && this.rng.uniform() < correlation) coef[j] = this.magnitude();
          }
        }
      }
      const row = out.subarray(b * d, (b + 1) * d);
      row.fill(0);
      for (let i = 0; i < n; i++) {
        const a = coef[i]!;
        if (a === 0) continue;
        for (let c = 0; c < d; c++) row[c]! += a * this.features[i * d + c]!;
      }
      if (noise > 0) for (let c = 0; c < d; c++) row[c]! += noise * this.rng.normal();
      if (codes) for (let i = 0; i < n; i++) codes[b * n + i] = coef[i]!;
    }
  }

  describe(): Record<string, unknown> {
    return { kind: "synthetic:superposition", ...this.opts };
  }
}

export interface FeatureRecovery {
  /** Mean over true features of the best |cosine| with any decoder row. */
  mmcs: number;
  /** Fraction of true features with a decoder row at |cosine| > threshold. */
  recovered: number;
  threshold: number;
  /**
   * Mean over the recovered features of how many decoder rows sit at |cosine| > threshold:
   * 1 when each takes one latent; 2 when a non-negative SAE spends one latent on each sign
   * of a feature that fires both ways (f and -f), the split the AbsTopK paper describes.
   */
  latents_per_feature: number;
  /** Per true feature, the best |cosine|. */
  best: Float32Array;
}

/**
 * How well decoder rows W_dec [m, d] recover true features [n, d]: per true feature the
 * largest |cos| with any decoder row (sign-agnostic, since a signed SAE may learn -f), and
 * how many rows are that close.
 */
export function scoreFeatureRecovery(features: Float32Array, W_dec: Float32Array, d: number,
  threshold = 0.9): FeatureRecovery {
  // |cos|: a signed latent (AbsTopK) that learned -f has learned f.
  const { aToB: best, countsAToB } = maxCosines(features, W_dec, d, { abs: true, countAbove: threshold });
  const { mmcs, matched } = matchSummary(best, threshold);
  let latents = 0, found = 0;
  for (const c of countsAToB!) if (c > 0) { latents += c; found++; }
  return { mmcs, recovered: matched, threshold, latents_per_feature: found > 0 ? latents / found : 0, best };
}
