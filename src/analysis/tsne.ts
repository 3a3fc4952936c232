/**
 * t-SNE (van der Maaten & Hinton 2008) for the vSAE paper's global view of an SAE's latents,
 * in sklearn's two methods:
 *
 *   p_j|i ∝ exp(-beta_i ||x_i - x_j||^2), beta_i set by bisection so that the entropy of
 *           p_.|i is log(perplexity);  P = (p_j|i + p_i|j) / 2n
 *   q_ij  = w_ij / Z,  w_ij = (1 + ||y_i - y_j||^2)^-1,  Z = sum_{k != l} w_kl
 *   dC/dy_i = 4 sum_j (p_ij - q_ij) w_ij (y_i - y_j)
 *           = 4 [ sum_j p_ij w_ij (y_i - y_j)  -  (1 / Z) sum_j w_ij^2 (y_i - y_j) ]
 *
 * - "exact": dense P and forces, O(n^2) per iteration (a few thousand points at most).
 * - "barnes_hut" (van der Maaten 2014; sklearn's default): p_j|i over each point's
 *   3 x perplexity nearest neighbours only (the rest are ~0 anyway), so the attractive sum
 *   is sparse, and the repulsive sums come from a quadtree (core/quadtree.ts, native in the addon) in O(n log n): tens
 *   of thousands of latents in seconds.
 *
 * Optimised as in the reference implementation: early exaggeration of P (x12 for the first
 * 250 iterations), momentum 0.5 then 0.8, per-coordinate adaptive gains, and sklearn's
 * "auto" learning rate max(n / exaggeration / 4, 50). Deterministic given the seed.
 */
import { Rng } from "../core/rng.js";
import { nearestNeighbors } from "./neighbors.js";
import { kernels } from "../core/kernels.js";
import { checkAngle } from "../core/quadtree.js";

export type TsneMethod = "exact" | "barnes_hut";

export interface TsneOptions {
  perplexity?: number;
  iterations?: number;
  seed?: number;
  /** Default "barnes_hut", as sklearn's. */
  method?: TsneMethod;
  /** Barnes-Hut: how far a cell must be to stand in for its points (sklearn's angle, 0.5; 0: exact sums). */
  angle?: number;
  /** Called every 50 iterations with the iteration number. */
  onProgress?: (iteration: number) => void;
}

export interface TsneResult {
  /** [n, 2] coordinates. */
  embedding: Float64Array;
  /** KL(P || Q) of the final embedding (Q exact, over the P the method used). */
  kl: number;
}

/** Symmetric affinities held sparsely: row i's entries are col/val[rowPtr[i] .. rowPtr[i+1]). */
export interface SparseAffinities {
  rowPtr: Int32Array;
  col: Int32Array;
  val: Float64Array;
}

const EXAGGERATION = 12;
const EXAGGERATION_ITERS = 250;

/**
 * One conditional distribution: p[t] ∝ exp(-beta dist[t]) over the given squared distances
 * (the point itself left out), with beta found by bisection so that its entropy is `target`.
 */
function perplexityRow(dist: ArrayLike<number>, len: number, target: number, p: Float64Array): void {
  let min = Infinity;
  for (let t = 0; t < len; t++) min = Math.min(min, dist[t]!);
  let beta = 1;
  let lo = 0;
  let hi = Infinity;
  for (let step = 0; step < 100; step++) {
    // Entropy H = log Z + beta * E[D] of the row distribution at this precision.
    let z = 0;
    let ed = 0;
    for (let t = 0; t < len; t++) {
      const v = Math.exp(-beta * (dist[t]! - min));
      p[t] = v;
      z += v;
      ed += v * dist[t]!;
    }
    const entropy = Math.log(z) + beta * (ed / z - min);
    for (let t = 0; t < len; t++) p[t]! /= z;
    if (Math.abs(entropy - target) < 1e-5) break;
    if (entropy > target) {
      lo = beta;
      beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
    } else {
      hi = beta;
      beta = (beta + lo) / 2;
    }
  }
}

/** Row-stochastic p_j|i [n, n] of points [n, dim], each row at the given perplexity. */
export function conditionalAffinities(points: ArrayLike<number>, n: number, dim: number, perplexity: number): Float64Array {
  const D = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      for (let c = 0; c < dim; c++) s += (points[i * dim + c]! - points[j * dim + c]!) ** 2;
      D[i * n + j] = s;
      D[j * n + i] = s;
    }
  }
  const P = new Float64Array(n * n);
  const target = Math.log(perplexity);
  const others = new Float64Array(n - 1);
  const row = new Float64Array(n - 1);
  for (let i = 0; i < n; i++) {
    for (let j = 0, t = 0; j < n; j++) if (j !== i) others[t++] = D[i * n + j]!;
    perplexityRow(others, n - 1, target, row);
    for (let j = 0, t = 0; j < n; j++) if (j !== i) P[i * n + j] = row[t++]!;
  }
  return P;
}

/** Symmetrised affinities P [n, n] = (p_j|i + p_i|j) / 2n, floored at 1e-12 off the diagonal. */
export function tsneAffinities(points: ArrayLike<number>, n: number, dim: number, perplexity: number): Float64Array {
  const P = conditionalAffinities(points, n, dim, perplexity);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const v = Math.max((P[i * n + j]! + P[j * n + i]!) / (2 * n), 1e-12);
      P[i * n + j] = v;
      P[j * n + i] = v;
    }
    P[i * n + i] = 0;
  }
  return P;
}

/** The neighbours Barnes-Hut t-SNE keeps per point: sklearn's min(n - 1, 3 x perplexity + 1). */
export function neighborCount(perplexity: number, n: number): number {
  return Math.min(n - 1, Math.floor(3 * perplexity + 1));
}

/**
 * P = (p_j|i + p_i|j) / 2n as Barnes-Hut t-SNE has it: each p_.|i spread over the point's
 * neighborCount nearest neighbours only (zero elsewhere), then symmetrised; columns ascending.
 */
export function sparseTsneAffinities(points: ArrayLike<number>, n: number, dim: number, perplexity: number): SparseAffinities {
  const k = neighborCount(perplexity, n);
  const { index, dist2 } = nearestNeighbors(points, n, dim, k);
  const cond = new Float64Array(n * k);
  const target = Math.log(perplexity);
  for (let i = 0; i < n; i++) perplexityRow(dist2.subarray(i * k, (i + 1) * k), k, target, cond.subarray(i * k, (i + 1) * k));

  // Every neighbour pair (i, j) puts p_j|i / 2n at both (i, j) and (j, i); duplicates merge.
  const degree = new Int32Array(n + 1);
  for (let e = 0; e < n * k; e++) { degree[Math.floor(e / k) + 1]!++; degree[index[e]! + 1]!++; }
  for (let i = 0; i < n; i++) degree[i + 1]! += degree[i]!;
  const fill = degree.slice(0, n);
  const rawCol = new Int32Array(2 * n * k);
  const rawVal = new Float64Array(2 * n * k);
  for (let e = 0; e < n * k; e++) {
    const i = Math.floor(e / k), j = index[e]!, v = cond[e]! / (2 * n);
    rawCol[fill[i]!] = j; rawVal[fill[i]!++] = v;
    rawCol[fill[j]!] = i; rawVal[fill[j]!++] = v;
  }
  const rowPtr = new Int32Array(n + 1);
  const col: number[] = [];
  const val: number[] = [];
  for (let i = 0; i < n; i++) {
    const entries = Array.from({ length: degree[i + 1]! - degree[i]! }, (_, t) => degree[i]! + t)
      .sort((a, b) => rawCol[a]! - rawCol[b]!);
    for (const e of entries) {
      if (col.length > rowPtr[i]! && col[col.length - 1] === rawCol[e]) val[val.length - 1]! += rawVal[e]!;
      else { col.push(rawCol[e]!); val.push(rawVal[e]!); }
    }
    rowPtr[i + 1] = col.length;
  }
  return { rowPtr, col: Int32Array.from(col), val: Float64Array.from(val) };
}

/** The exact gradient of KL(exaggeration x P || Q) at Y [n, 2], P dense, into grad. */
export function exactGradient(P: Float64Array, Y: Float64Array, n: number, exaggeration: number, grad: Float64Array): void {
  let Z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = Y[2 * i]! - Y[2 * j]!, dy = Y[2 * i + 1]! - Y[2 * j + 1]!;
      Z += 2 / (1 + dx * dx + dy * dy);
    }
  }
  grad.fill(0);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = Y[2 * i]! - Y[2 * j]!, dy = Y[2 * i + 1]! - Y[2 * j + 1]!;
      const num = 1 / (1 + dx * dx + dy * dy);
      const f = 4 * (exaggeration * P[i * n + j]! - Math.max(num / Z, 1e-12)) * num;
      grad[2 * i]! += f * dx;
      grad[2 * i + 1]! += f * dy;
      grad[2 * j]! -= f * dx;
      grad[2 * j + 1]! -= f * dy;
    }
  }
}

/** The Barnes-Hut gradient of KL(exaggeration x P || Q) at Y [n, 2], P sparse, into grad (a native kernel). */
export function barnesHutGradient(P: SparseAffinities, Y: Float64Array, n: number, exaggeration: number, angle: number,
  grad: Float64Array): void {
  kernels().tsneGradient(Y, n, P.rowPtr, P.col, P.val, exaggeration, angle, grad);
}

/** The perplexity t-SNE uses for n points: the requested one, kept below (n - 1) / 3 neighbours (and above 1). */
export function effectivePerplexity(requested: number, n: number): number {
  return Math.max(1.01, Math.min(requested, (n - 1) / 3));
}

export function tsne(points: ArrayLike<number>, n: number, dim: number, o: TsneOptions = {}): TsneResult {
  if (n < 2) return { embedding: new Float64Array(2 * n), kl: 0 };
  const method = o.method ?? "barnes_hut";
  const angle = o.angle ?? 0.5;
  checkAngle(angle);
  const iterations = o.iterations ?? 1000;
  const perplexity = effectivePerplexity(o.perplexity ?? 30, n);
  const dense = method === "exact" ? tsneAffinities(points, n, dim, perplexity) : null;
  const sparse = method === "barnes_hut" ? sparseTsneAffinities(points, n, dim, perplexity) : null;
  if (!dense && !sparse) throw new RangeError(`t-SNE method ${JSON.stringify(method)}: use "exact" or "barnes_hut"`);
  const rng = new Rng(o.seed ?? 0);
  const Y = new Float64Array(2 * n);
  for (let i = 0; i < 2 * n; i++) Y[i] = 1e-4 * rng.normal();
  const update = new Float64Array(2 * n);
  const gains = new Float64Array(2 * n).fill(1);
  const grad = new Float64Array(2 * n);
  const lr = Math.max(n / EXAGGERATION / 4, 50);

  for (let it = 0; it < iterations; it++) {
    const exaggeration = it < EXAGGERATION_ITERS ? EXAGGERATION : 1;
    const momentum = it < EXAGGERATION_ITERS ? 0.5 : 0.8;
    if (dense) exactGradient(dense, Y, n, exaggeration, grad);
    else barnesHutGradient(sparse!, Y, n, exaggeration, angle, grad);
    for (let c = 0; c < 2 * n; c++) {
      // Grow the step where the gradient keeps its direction, shrink it where it flips.
      gains[c] = Math.sign(grad[c]!) !== Math.sign(update[c]!) ? gains[c]! + 0.2 : Math.max(gains[c]! * 0.8, 0.01);
      update[c] = momentum * update[c]! - lr * gains[c]! * grad[c]!;
      Y[c]! += update[c]!;
    }
    let mx = 0, my = 0;
    for (let i = 0; i < n; i++) { mx += Y[2 * i]!; my += Y[2 * i + 1]!; }
    for (let i = 0; i < n; i++) { Y[2 * i]! -= mx / n; Y[2 * i + 1]! -= my / n; }
    if (o.onProgress && it % 50 === 0) o.onProgress(it);
  }
  return { embedding: Y, kl: dense ? tsneKl(dense, Y, n) : sparseTsneKl(sparse!, Y, n) };
}

/** Z = sum_{i != j} (1 + ||y_i - y_j||^2)^-1, exactly. */
function normalizer(Y: Float64Array, n: number): number {
  let Z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) Z += 2 / (1 + (Y[2 * i]! - Y[2 * j]!) ** 2 + (Y[2 * i + 1]! - Y[2 * j + 1]!) ** 2);
  }
  return Z;
}

/** KL(P || Q) of an embedding Y [n, 2]. */
export function tsneKl(P: Float64Array, Y: Float64Array, n: number): number {
  const Z = normalizer(Y, n);
  let kl = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i === j) continue;
      const q = Math.max(1 / (1 + (Y[2 * i]! - Y[2 * j]!) ** 2 + (Y[2 * i + 1]! - Y[2 * j + 1]!) ** 2) / Z, 1e-12);
      const p = P[i * n + j]!;
      kl += p * Math.log(p / q);
    }
  }
  return kl;
}

/** KL(P || Q) over the non-zero entries of a sparse P (Q, and its Z, exact). */
export function sparseTsneKl(P: SparseAffinities, Y: Float64Array, n: number): number {
  const Z = normalizer(Y, n);
  let kl = 0;
  for (let i = 0; i < n; i++) {
    for (let e = P.rowPtr[i]!; e < P.rowPtr[i + 1]!; e++) {
      const j = P.col[e]!, p = P.val[e]!;
      if (p <= 0) continue;
      const q = Math.max(1 / (1 + (Y[2 * i]! - Y[2 * j]!) ** 2 + (Y[2 * i + 1]! - Y[2 * j + 1]!) ** 2) / Z, 1e-12);
      kl += p * Math.log(p / q);
    }
  }
  return kl;
}
