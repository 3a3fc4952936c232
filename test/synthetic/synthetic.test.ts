/**
 * The synthetic ground truths themselves: superposition samples are exactly their codes
 * times the true directions, fire at the rates asked, with the magnitudes and signs asked;
 * union-of-subspaces samples lie in the subspace they are labelled with; and the feature
 * recovery score gives known answers on dictionaries built from the truth.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { initializeSae } from "../../src/train/init.js";
import { SubspacesSource } from "../../src/synthetic/subspaces.js";
import { SuperpositionSource, scoreFeatureRecovery } from "../../src/synthetic/superposition.js";

function samples(src: SuperpositionSource, batch: number) {
  const x = new Float32Array(batch * src.d);
  const codes = new Float32Array(batch * src.opts.nFeatures);
  src.sample(x, batch, codes);
  return { x, codes };
}

describe("superposition data", () => {
  it("is its codes times the unit feature directions, firing meanActive features per sample", () => {
    const src = new SuperpositionSource({ d: 16, nFeatures: 48, meanActive: 3, seed: 2 });
    const { d, opts: { nFeatures: n } } = src;
    for (let i = 0; i < n; i++) expect(Math.hypot(...src.features.subarray(i * d, (i + 1) * d))).toBeCloseTo(1, 5);
    const batch = 4000;
    const { x, codes } = samples(src, batch);
    let worst = 0;
    for (let b = 0; b < 50; b++) {
      for (let c = 0; c < d; c++) {
        let s = 0;
        for (let i = 0; i < n; i++) s += codes[b * n + i]! * src.features[i * d + c]!;
        worst = Math.max(worst, Math.abs(s - x[b * d + c]!));
      }
    }
    expect(worst).toBeLessThan(1e-5);
    const active = codes.filter((v) => v !== 0);
    expect(active.length / batch).toBeCloseTo(3, 1);
    expect(active.every((v) => v >= 0.5 && v <= 1.5)).toBe(true); // uniform magnitudes on [0.5, 1.5]
  });

  it("fires both ways when asked: a share `negative` of the active coefficients below zero", () => {
    const plain = samples(new SuperpositionSource({ d: 16, nFeatures: 48, seed: 3 }), 3000).codes;
    expect(plain.every((v) => v >= 0)).toBe(true);
    for (const negative of [0.5, 0.2, 1]) {
      const { codes } = samples(new SuperpositionSource({ d: 16, nFeatures: 48, seed: 3, negative }), 3000);
      const active = codes.filter((v) => v !== 0);
      expect(active.filter((v) => v < 0).length / active.length).toBeCloseTo(negative, 1);
      expect(active.every((v) => Math.abs(v) >= 0.5 && Math.abs(v) <= 1.5)).toBe(true);
    }
    expect(() => new SuperpositionSource({ negative: 1.5 })).toThrow(/negative must be in \[0, 1\]/);
  });

  it("is a function of its seed, and Zipf firing favours the first features", () => {
    const a = samples(new SuperpositionSource({ seed: 4 }), 64).x;
    expect(samples(new SuperpositionSource({ seed: 4 }), 64).x).toEqual(a);
    expect(samples(new SuperpositionSource({ seed: 5 }), 64).x).not.toEqual(a);
    const zipf = new SuperpositionSource({ firing: "zipf", nFeatures: 100 });
    for (let i = 1; i < 100; i++) expect(zipf.probabilities[i]!).toBeLessThanOrEqual(zipf.probabilities[i - 1]!);
    expect(zipf.probabilities[0]! / zipf.probabilities[99]!).toBeCloseTo(10, 6); // 1/sqrt(i+1)
  });
});

describe("the ground truth and an SAE's start", () => {
  it("are independent even when the SAE is seeded like the data: its initial decoder has found nothing", () => {
    for (const seed of [0, 1, 7]) {
      const src = new SuperpositionSource({ seed });
      const sae = createSae(defaultConfig({ architecture: "topk", d_in: 64, d_sae: 1024, k: 8 }));
      initializeSae(sae, new Rng(seed), samples(src, 256).x, { decoderInitNorm: 1, bDecInit: "mean" });
      const start = scoreFeatureRecovery(src.features, sae.params.get("W_dec")!.data, 64);
      expect(start.recovered, `seed ${seed}`).toBe(0);
      expect(start.mmcs, `seed ${seed}`).toBeLessThan(0.7);
    }
  });
});

describe("feature recovery", () => {
  const src = new SuperpositionSource({ d: 24, nFeatures: 40, seed: 6 });
  const { d, features } = src;
  const n = 40;

  it("is perfect for the true dictionary, sign-blind, and counts the latents each feature takes", () => {
    const exact = scoreFeatureRecovery(features, features, d);
    expect(exact.mmcs).toBeCloseTo(1, 6);
    expect(exact).toMatchObject({ recovered: 1, latents_per_feature: 1 });
    // Each feature and its negation, as a non-negative SAE learns a feature that fires both ways.
    const both = new Float32Array(2 * n * d);
    both.set(features);
    both.set(features.map((v) => -v), n * d);
    expect(scoreFeatureRecovery(features, both, d)).toMatchObject({ recovered: 1, latents_per_feature: 2 });
    // Half the features, the rest of the rows random: half recovered, one latent each.
    const half = new Rng(1).fillNormal(new Float32Array(n * d));
    half.set(features.subarray(0, (n / 2) * d));
    const h = scoreFeatureRecovery(features, half, d);
    expect(h.recovered).toBe(0.5);
    expect(h.latents_per_feature).toBe(1);
    expect(h.mmcs).toBeLessThan(0.8);
    expect(scoreFeatureRecovery(features, new Rng(2).fillNormal(new Float32Array(n * d)), d))
      .toMatchObject({ recovered: 0, latents_per_feature: 0 });
  });
});

describe("union of subspaces", () => {
  it("puts every sample in the span of its subspace's columns of A", () => {
    const src = new SubspacesSource({ d: 12, nSubspaces: 3, subspaceDim: 2, seed: 1 });
    const d = 12, batch = 30;
    const x = new Float32Array(batch * d);
    const labels = new Int32Array(batch);
    src.sample(x, batch, labels);
    expect(new Set(labels)).toEqual(new Set([0, 1, 2]));
    for (let b = 0; b < batch; b++) {
      // Least squares on the two columns of the labelled subspace leaves no residual.
      const [c0, c1] = src.coords[labels[b]!]!;
      const col = (c: number) => Array.from({ length: d }, (_, r) => src.A[r * d + c]!);
      const u = col(c0!), v = col(c1!), y = Array.from(x.subarray(b * d, (b + 1) * d));
      const dot = (a: number[], bb: number[]) => a.reduce((s, ai, i) => s + ai * bb[i]!, 0);
      const [uu, uv, vv, uy, vy] = [dot(u, u), dot(u, v), dot(v, v), dot(u, y), dot(v, y)];
      const det = uu * vv - uv * uv;
      const alpha = (vv * uy - uv * vy) / det, beta = (uu * vy - uv * uy) / det;
      const residual = Math.hypot(...y.map((yi, i) => yi - alpha * u[i]! - beta * v[i]!));
      expect(residual).toBeLessThan(1e-4 * (1 + Math.hypot(...y)));
    }
  });
});
