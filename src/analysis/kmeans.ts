/**
 * k-means (Lloyd's algorithm with greedy k-means++ seeding, Arthur & Vassilvitskii 2007, as sklearn seeds) on rows of
 * a [n, dim] matrix: the "10 arbitrary clusters" of the vSAE paper's latent-space view.
 * Deterministic given the seed.
 */
import { Rng } from "../core/rng.js";

export interface KMeansResult {
  /** Cluster of each point. */
  labels: Int32Array;
  /** [k, dim] cluster centres. */
  centers: Float64Array;
  /** Sum of squared distances of points to their centres. */
  inertia: number;
  iterations: number;
}

function sqDist(a: ArrayLike<number>, ai: number, b: ArrayLike<number>, bi: number, dim: number): number {
  let s = 0;
  for (let c = 0; c < dim; c++) s += (a[ai + c]! - b[bi + c]!) ** 2;
  return s;
}

export function kMeans(points: ArrayLike<number>, n: number, dim: number, k: number, seed = 0, maxIter = 300): KMeansResult {
  if (n < 1) throw new RangeError("kMeans: no points");
  k = Math.min(k, n);
  const rng = new Rng(seed);
  const centers = new Float64Array(k * dim);
  // Greedy k-means++ (sklearn's KMeans): each next centre is the best, by the total squared
  // distance it leaves, of 2 + ln k candidates each drawn with probability proportional to
  // its squared distance from the nearest centre chosen so far. One draw per centre (plain
  // k-means++) now and then lands two centres in one cluster, which Lloyd's steps keep.
  const trials = 2 + Math.floor(Math.log(k));
  let nearest = new Float64Array(n);
  let candidate = new Float64Array(n);
  let best = new Float64Array(n);
  const first = rng.int(n);
  for (let i = 0; i < dim; i++) centers[i] = points[first * dim + i]!;
  let potential = 0;
  for (let p = 0; p < n; p++) potential += nearest[p] = sqDist(points, p * dim, centers, 0, dim);
  for (let c = 1; c < k && potential > 0; c++) {
    let bestPick = -1;
    let bestPotential = Infinity;
    for (let t = 0; t < trials; t++) {
      let r = rng.uniform() * potential;
      let pick = n - 1;
      for (let p = 0; p < n; p++) {
        r -= nearest[p]!;
        if (r < 0) { pick = p; break; }
      }
      let total = 0;
      for (let p = 0; p < n; p++) total += candidate[p] = Math.min(nearest[p]!, sqDist(points, p * dim, points, pick * dim, dim));
      if (total < bestPotential) {
        bestPotential = total;
        bestPick = pick;
        [best, candidate] = [candidate, best];
      }
    }
    for (let i = 0; i < dim; i++) centers[c * dim + i] = points[bestPick * dim + i]!;
    [nearest, best] = [best, nearest];
    potential = bestPotential;
  }

  const labels = new Int32Array(n).fill(-1);
  const sums = new Float64Array(k * dim);
  const counts = new Int32Array(k);
  let inertia = 0;
  let iterations = 0;
  for (; iterations < maxIter; iterations++) {
    let changed = false;
    inertia = 0;
    for (let p = 0; p < n; p++) {
      let best = 0;
      let bestD = Infinity;
      for (let c = 0; c < k; c++) {
        const dd = sqDist(points, p * dim, centers, c * dim, dim);
        if (dd < bestD) { bestD = dd; best = c; }
      }
      inertia += bestD;
      if (labels[p] !== best) { labels[p] = best; changed = true; }
    }
    if (!changed) break;
    sums.fill(0);
    counts.fill(0);
    for (let p = 0; p < n; p++) {
      const c = labels[p]!;
      counts[c]!++;
      for (let i = 0; i < dim; i++) sums[c * dim + i]! += points[p * dim + i]!;
    }
    // An emptied cluster keeps its centre; the others move to their means.
    for (let c = 0; c < k; c++) if (counts[c]! > 0) for (let i = 0; i < dim; i++) centers[c * dim + i] = sums[c * dim + i]! / counts[c]!;
  }
  return { labels, centers, inertia, iterations };
}
