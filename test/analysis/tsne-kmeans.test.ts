/** k-means and t-SNE on data whose structure is known: well-separated Gaussian blobs. */
import { describe, expect, it } from "vitest";
import { kMeans } from "../../src/analysis/kmeans.js";
import { conditionalAffinities, tsne, tsneAffinities } from "../../src/analysis/tsne.js";
import { Rng } from "../../src/core/rng.js";

/** `perBlob` points around each of `blobs` random centres in R^dim (spread 0.1, centres ~N(0, 25)). */
function blobs(blobs: number, perBlob: number, dim: number, seed: number): { points: Float64Array; truth: Int32Array } {
  const rng = new Rng(seed);
  const centres = Array.from({ length: blobs }, () => Array.from({ length: dim }, () => 5 * rng.normal()));
  const points = new Float64Array(blobs * perBlob * dim);
  const truth = new Int32Array(blobs * perBlob);
  for (let b = 0; b < blobs; b++) {
    for (let p = 0; p < perBlob; p++) {
      const i = b * perBlob + p;
      truth[i] = b;
      for (let c = 0; c < dim; c++) points[i * dim + c] = centres[b]![c]! + 0.1 * rng.normal();
    }
  }
  return { points, truth };
}

/** True when the labels split the points exactly as the truth does (up to renaming). */
function samePartition(labels: Int32Array, truth: Int32Array): boolean {
  const map = new Map<number, number>();
  const used = new Set<number>();
  for (let i = 0; i < labels.length; i++) {
    const m = map.get(truth[i]!);
    if (m === undefined) {
      if (used.has(labels[i]!)) return false;
      map.set(truth[i]!, labels[i]!);
      used.add(labels[i]!);
    } else if (m !== labels[i]) {
      return false;
    }
  }
  return true;
}

describe("k-means", () => {
  it("recovers separated blobs exactly, deterministically, with the inertia of that partition", () => {
    const { points, truth } = blobs(4, 25, 6, 1);
    const r = kMeans(points, 100, 6, 4, 7);
    expect(samePartition(r.labels, truth)).toBe(true);
    expect(kMeans(points, 100, 6, 4, 7).labels).toEqual(r.labels);
    // Inertia = sum of squared distances to the blob means, computed directly.
    let inertia = 0;
    for (let b = 0; b < 4; b++) {
      const mean = new Float64Array(6);
      for (let p = 0; p < 25; p++) for (let c = 0; c < 6; c++) mean[c]! += points[(b * 25 + p) * 6 + c]! / 25;
      for (let p = 0; p < 25; p++) for (let c = 0; c < 6; c++) inertia += (points[(b * 25 + p) * 6 + c]! - mean[c]!) ** 2;
    }
    expect(r.inertia).toBeCloseTo(inertia, 8);
  });

  it("k above the number of points gives each point its own cluster", () => {
    const r = kMeans(Float64Array.from([0, 0, 1, 1, 5, 5]), 3, 2, 10);
    expect(new Set(r.labels).size).toBe(3);
    expect(r.inertia).toBe(0);
  });
});

describe("t-SNE", () => {
  it("affinities: each conditional row has the requested perplexity; P is symmetric and sums to 1", () => {
    const { points } = blobs(2, 15, 4, 2);
    const n = 30;
    const cond = conditionalAffinities(points, n, 4, 5);
    for (let i = 0; i < n; i++) {
      let h = 0, sum = 0;
      for (let j = 0; j < n; j++) {
        const p = cond[i * n + j]!;
        sum += p;
        if (p > 0) h -= p * Math.log(p);
      }
      expect(sum).toBeCloseTo(1, 12);
      expect(Math.exp(h)).toBeCloseTo(5, 3);
    }
    const P = tsneAffinities(points, n, 4, 5);
    let total = 0;
    for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) {
      expect(P[i * n + j]).toBeCloseTo(P[j * n + i]!, 15);
      total += P[i * n + j]!;
    }
    expect(total).toBeCloseTo(1, 6);
  });

  it("keeps neighbourhoods: every point's nearest neighbour in 2-D is from its own blob", () => {
    const { points, truth } = blobs(3, 30, 10, 3);
    const r = tsne(points, 90, 10, { perplexity: 10, iterations: 500, seed: 1 });
    const Y = r.embedding;
    const dist = (i: number, j: number) => Math.hypot(Y[2 * i]! - Y[2 * j]!, Y[2 * i + 1]! - Y[2 * j + 1]!);
    let within = 0, across = 0, nWithin = 0, nAcross = 0;
    for (let i = 0; i < 90; i++) {
      let best = -1;
      for (let j = 0; j < 90; j++) {
        if (j === i) continue;
        if (best < 0 || dist(i, j) < dist(i, best)) best = j;
        if (truth[i] === truth[j]) { within += dist(i, j); nWithin++; } else { across += dist(i, j); nAcross++; }
      }
      expect(truth[best]).toBe(truth[i]);
    }
    expect(within / nWithin).toBeLessThan(0.5 * (across / nAcross));
    // The optimisation lowers KL(P || Q) well below that of the initial random layout.
    const start = tsne(points, 90, 10, { perplexity: 10, iterations: 1, seed: 1 });
    expect(r.kl).toBeLessThan(0.5 * start.kl);
    expect(tsne(points, 90, 10, { perplexity: 10, iterations: 500, seed: 1 }).embedding).toEqual(Y);
  });
});
