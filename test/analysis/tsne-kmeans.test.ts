/** k-means and t-SNE on data whose structure is known: well-separated Gaussian blobs. */
import { describe, expect, it } from "vitest";
import { kMeans } from "../../src/analysis/kmeans.js";
import { nearestNeighbors } from "../../src/analysis/neighbors.js";
import {
  barnesHutGradient, conditionalAffinities, exactGradient, neighborCount, pcaLayout, sparseTsneAffinities, tsne, tsneAffinities,
} from "../../src/analysis/tsne.js";
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

  it("greedy seeding: 20 separated blobs in the plane are found from every one of 30 seeds", () => {
    // With one draw per centre (plain k-means++) 13 of these seeds put two centres in one blob,
    // and Lloyd's steps never move one out; the best of 2 + ln k draws does not.
    const { points, truth } = blobs(20, 30, 2, 3);
    const found = Array.from({ length: 30 }, (_, seed) => samePartition(kMeans(points, 600, 2, 20, seed).labels, truth));
    expect(found.filter((ok) => !ok)).toHaveLength(0);
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

  it("Barnes-Hut affinities: with every other point a neighbour they are the dense ones; with fewer, symmetric over neighbour pairs", () => {
    const { points } = blobs(2, 15, 4, 2);
    const dense = tsneAffinities(points, 30, 4, 9.5);
    expect(neighborCount(9.5, 30)).toBe(29);
    const all = sparseTsneAffinities(points, 30, 4, 9.5);
    for (let i = 0; i < 30; i++) {
      expect([...all.col.subarray(all.rowPtr[i]!, all.rowPtr[i + 1]!)]).toEqual([...Array(30).keys()].filter((j) => j !== i));
      // (The dense P floors at 1e-12 what underflows to 0 across the blobs.)
      for (let e = all.rowPtr[i]!; e < all.rowPtr[i + 1]!; e++) expect(Math.max(all.val[e]!, 1e-12)).toBeCloseTo(dense[i * 30 + all.col[e]!]!, 14);
    }

    const { points: many } = blobs(4, 50, 6, 5);
    const n = 200, k = neighborCount(5, n);
    expect(k).toBe(16);
    const P = sparseTsneAffinities(many, n, 6, 5);
    const nb = nearestNeighbors(many, n, 6, k);
    const isNeighbor = (i: number, j: number) => nb.index.subarray(i * k, (i + 1) * k).includes(j);
    const entries = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < n; i++) {
      for (let e = P.rowPtr[i]!; e < P.rowPtr[i + 1]!; e++) {
        const j = P.col[e]!;
        expect(isNeighbor(i, j) || isNeighbor(j, i)).toBe(true);
        if (e > P.rowPtr[i]!) expect(j).toBeGreaterThan(P.col[e - 1]!);
        entries.set(`${i},${j}`, P.val[e]!);
        total += P.val[e]!;
      }
      // Every neighbour is there, with at least its own conditional share.
      for (let q = 0; q < k; q++) expect(entries.has(`${i},${nb.index[i * k + q]!}`)).toBe(true);
    }
    for (const [key, v] of entries) expect(entries.get(key.split(",").reverse().join(","))).toBe(v);
    expect(total).toBeCloseTo(1, 12);
    // Neighbours found already serve as they are; too few of them are refused.
    expect(sparseTsneAffinities(many, n, 6, 5, nb)).toEqual(P);
    expect(() => sparseTsneAffinities(many, n, 6, 5, nearestNeighbors(many, n, 6, 10)))
      .toThrow("t-SNE at perplexity 5 needs each of the 200 points' 16 nearest neighbours, given 10");
  });

  it("the Barnes-Hut gradient at angle 0 is the exact gradient; at 0.5 it is close", () => {
    const { points } = blobs(3, 20, 5, 4);
    const n = 60;
    const dense = tsneAffinities(points, n, 5, 19.5);
    const sparse = sparseTsneAffinities(points, n, 5, 19.5);
    expect(sparse.col.length).toBe(n * (n - 1));
    const rng = new Rng(9);
    const Y = Float64Array.from({ length: 2 * n }, () => 3 * rng.normal());
    const exact = new Float64Array(2 * n), bh0 = new Float64Array(2 * n), bh5 = new Float64Array(2 * n);
    exactGradient(dense, Y, n, 12, exact);
    barnesHutGradient(sparse, Y, n, 12, 0, bh0);
    barnesHutGradient(sparse, Y, n, 12, 0.5, bh5);
    const norm = Math.hypot(...exact);
    expect(Math.hypot(...exact.map((g, c) => g - bh0[c]!)) / norm).toBeLessThan(1e-9);
    const err5 = Math.hypot(...exact.map((g, c) => g - bh5[c]!)) / norm;
    expect(err5).toBeGreaterThan(1e-9);
    expect(err5).toBeLessThan(0.02);
  });

  for (const method of ["exact", "barnes_hut"] as const) {
    it(`${method}: keeps neighbourhoods: every point's nearest neighbour in 2-D is from its own blob`, () => {
      const { points, truth } = blobs(3, 30, 10, 3);
      const r = tsne(points, 90, 10, { perplexity: 10, iterations: 500, seed: 1, method });
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
      const start = tsne(points, 90, 10, { perplexity: 10, iterations: 1, seed: 1, method });
      expect(r.kl).toBeLessThan(0.5 * start.kl);
      expect(tsne(points, 90, 10, { perplexity: 10, iterations: 500, seed: 1, method }).embedding).toEqual(Y);
    });
  }

  it("Barnes-Hut (the default) separates 20 blobs of 100 points in R^32", () => {
    const { points, truth } = blobs(20, 100, 32, 6);
    const n = 2000;
    const r = tsne(points, n, 32, { iterations: 400, seed: 2 });
    // Each point's 10 nearest in 2-D are almost all from its own blob.
    const nb = nearestNeighbors(r.embedding, n, 2, 10);
    let same = 0;
    for (let e = 0; e < n * 10; e++) if (truth[nb.index[e]!] === truth[Math.floor(e / 10)]) same++;
    expect(same / (n * 10)).toBeGreaterThan(0.99);
  });

  it("pca init: the first two principal axes, the first scaled to standard deviation 1e-4, signed by their largest entry", () => {
    // Points a u + b v + noise in R^10 with sd(a) = 3, sd(b) = 1, u = (e0 - 2 e3) / sqrt 5, v = -e7.
    const rng = new Rng(8);
    const n = 400, dim = 10;
    const a = Array.from({ length: n }, () => 3 * rng.normal()), b = Array.from({ length: n }, () => rng.normal());
    // b uncorrelated with a in the sample too, so that u and v are the sample's axes.
    const ma = a.reduce((s, v) => s + v, 0) / n, mb = b.reduce((s, v) => s + v, 0) / n;
    const k = a.reduce((s, v, i) => s + (v - ma) * (b[i]! - mb), 0) / a.reduce((s, v) => s + (v - ma) ** 2, 0);
    for (let i = 0; i < n; i++) b[i]! -= k * (a[i]! - ma);
    const points = new Float64Array(n * dim);
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < dim; c++) points[i * dim + c] = 0.01 * rng.normal() + 5;
      points[i * dim] += a[i]! / Math.sqrt(5);
      points[i * dim + 3] -= (2 * a[i]!) / Math.sqrt(5);
      points[i * dim + 7] -= b[i]!;
    }
    const Y = pcaLayout(points, n, dim);
    const col = (r: number) => Array.from({ length: n }, (_, i) => Y[2 * i + r]!);
    const corr = (x: number[], y: number[]) => {
      const mx = x.reduce((s, v) => s + v, 0) / n, my = y.reduce((s, v) => s + v, 0) / n;
      let sxy = 0, sxx = 0, syy = 0;
      for (let i = 0; i < n; i++) { sxy += (x[i]! - mx) * (y[i]! - my); sxx += (x[i]! - mx) ** 2; syy += (y[i]! - my) ** 2; }
      return sxy / Math.sqrt(sxx * syy);
    };
    // The largest entry of u is -2 / sqrt 5 (so the axis is -u), of v it is -1 (so -v).
    expect(corr(col(0), a)).toBeLessThan(-0.9999);
    expect(corr(col(1), b)).toBeLessThan(-0.999);
    const m0 = col(0).reduce((s, v) => s + v, 0) / n;
    expect(Math.sqrt(col(0).reduce((s, v) => s + (v - m0) ** 2, 0) / n)).toBeCloseTo(1e-4, 12);
    // Points that do not vary have no axes: all zeros (tsne then starts from random).
    expect(pcaLayout(new Float64Array(30).fill(2), 10, 3).every((v) => v === 0)).toBe(true);
  });

  it("unstructured points are not left collapsed by the exaggerated attraction: the phase ends when its gradient vanishes", () => {
    // Random directions: nothing for early exaggeration to cluster, so it draws every point to
    // the centre until the gradient vanishes; the next phase then spreads them out, as in
    // sklearn (which reaches a spread of ~15 after 250 iterations on 4,000 such points; without
    // the early end, 1,000 of them are still within 1e-19 of each other after 300).
    const rng = new Rng(10);
    const n = 1000, dim = 64;
    const points = Float64Array.from({ length: n * dim }, () => rng.normal());
    for (let i = 0; i < n; i++) {
      const row = points.subarray(i * dim, (i + 1) * dim);
      const norm = Math.hypot(...row);
      row.forEach((v, c) => { row[c] = v / norm; });
    }
    for (const method of ["exact", "barnes_hut"] as const) {
      for (const init of ["random", "pca"] as const) {
        const Y = tsne(points, n, dim, { iterations: 300, method, init }).embedding;
        expect(Math.max(...Y.map(Math.abs)), `${method} ${init}`).toBeGreaterThan(3);
      }
    }
  });
});
