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
 * Optimised as sklearn does: early exaggeration of P (x12 for the first 250 iterations),
 * momentum 0.5 then 0.8, per-coordinate adaptive gains, the "auto" learning rate
 * max(n / exaggeration / 4, 50), and a phase that ends early once its gradient vanishes
 * (which is how unstructured points, which the exaggerated attraction draws to a point,
 * get out of it). sklearn also stops after 300 iterations without a lower KL; that needs the
 * KL as it goes, and is left out. Deterministic given the seed.
 */
import { Rng } from "../core/rng.js";
import { nearestNeighbors, type Neighbors } from "./neighbors.js";
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
  /** Barnes-Hut: the points' neighborCount(perplexity, n) nearest neighbours, if already found. */
  neighbors?: Neighbors;
  /**
   * Starting layout: "pca" (default, as sklearn's since 1.2): the points' first two principal
   * components, scaled to a standard deviation of 1e-4 along the first; "random": N(0, 1e-4^2).
   */
  init?: "pca" | "random";
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
// sklearn's min_gain, min_grad_norm and the interval at which it checks the gradient norm.
const MIN_GAIN = 0.01;
const MIN_GRAD_NORM = 1e-7;
const CHECK_EVERY = 50;

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
 * `neighbors`: those neighbours, when the caller has found them already.
 */
export function sparseTsneAffinities(points: ArrayLike<number>, n: number, dim: number, perplexity: number,
  neighbors?: Neighbors): SparseAffinities {
  const k = neighborCount(perplexity, n);
  if (neighbors && (neighbors.k !== k || neighbors.index.length !== n * k)) {
    throw new RangeError(`t-SNE at perplexity ${perplexity} needs each of the ${n} points' ${k} nearest neighbours, given ${neighbors.k}`);
  }
  const { index, dist2 } = neighbors ?? nearestNeighbors(points, n, dim, k);
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
  const Z = normalizer(Y, n);
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

/**
 * The points [n, dim] projected on their first two principal components, scaled so that the
 * first coordinate's standard deviation is 1e-4 (sklearn's "pca" init). The components are
 * the covariance's top eigenvectors by subspace iteration, each signed so that its largest
 * entry is positive (the layout does not depend on the run). All zeros when the points do
 * not vary.
 */
export function pcaLayout(points: ArrayLike<number>, n: number, dim: number): Float64Array {
  const mean = new Float64Array(dim);
  for (let i = 0; i < n; i++) for (let c = 0; c < dim; c++) mean[c]! += points[i * dim + c]!;
  for (let c = 0; c < dim; c++) mean[c]! /= n;
  const X = Float32Array.from({ length: n * dim }, (_, e) => points[e]! - mean[e % dim]!);
  const C32 = new Float32Array(dim * dim);
  kernels().sgemm(true, false, dim, dim, n, 1, X, dim, X, dim, 0, C32, dim);
  const C = Float64Array.from(C32);
  // Subspace iteration on [v0, v1]: multiply by C, then Gram-Schmidt, until the pair settles.
  const start = new Rng(0);
  const V = Float64Array.from({ length: 2 * dim }, () => start.normal());
  const W = new Float64Array(2 * dim);
  for (let it = 0; it < 100; it++) {
    for (let r = 0; r < 2; r++) {
      for (let a = 0; a < dim; a++) {
        let s = 0;
        for (let b = 0; b < dim; b++) s += C[a * dim + b]! * V[r * dim + b]!;
        W[r * dim + a] = s;
      }
    }
    let change = 0;
    for (let r = 0; r < 2; r++) {
      for (let q = 0; q < r; q++) {
        let proj = 0;
        for (let a = 0; a < dim; a++) proj += W[r * dim + a]! * W[q * dim + a]!;
        for (let a = 0; a < dim; a++) W[r * dim + a]! -= proj * W[q * dim + a]!;
      }
      let norm = 0;
      for (let a = 0; a < dim; a++) norm += W[r * dim + a]! ** 2;
      norm = Math.sqrt(norm);
      for (let a = 0; a < dim; a++) {
        W[r * dim + a] = norm > 0 ? W[r * dim + a]! / norm : 0;
        change = Math.max(change, Math.abs(Math.abs(W[r * dim + a]!) - Math.abs(V[r * dim + a]!)));
      }
    }
    V.set(W);
    if (change < 1e-7) break;
  }
  for (let r = 0; r < 2; r++) {
    let big = 0;
    for (let a = 0; a < dim; a++) if (Math.abs(V[r * dim + a]!) > Math.abs(big)) big = V[r * dim + a]!;
    if (big < 0) for (let a = 0; a < dim; a++) V[r * dim + a] = -V[r * dim + a]!;
  }
  const Y = new Float64Array(2 * n);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < 2; r++) {
      let s = 0;
      for (let a = 0; a < dim; a++) s += X[i * dim + a]! * V[r * dim + a]!;
      Y[2 * i + r] = s;
    }
  }
  let m0 = 0, s0 = 0;
  for (let i = 0; i < n; i++) m0 += Y[2 * i]! / n;
  for (let i = 0; i < n; i++) s0 += (Y[2 * i]! - m0) ** 2 / n;
  const scale = s0 > 0 ? 1e-4 / Math.sqrt(s0) : 0;
  for (let e = 0; e < 2 * n; e++) Y[e]! *= scale;
  return Y;
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
  const init = o.init ?? "pca";
  if (method !== "exact" && method !== "barnes_hut") throw new RangeError(`t-SNE method ${JSON.stringify(method)}: use "exact" or "barnes_hut"`);
  if (init !== "pca" && init !== "random") throw new RangeError(`t-SNE init ${JSON.stringify(init)}: use "pca" or "random"`);
  const iterations = o.iterations ?? 1000;
  const perplexity = effectivePerplexity(o.perplexity ?? 30, n);
  const dense = method === "exact" ? tsneAffinities(points, n, dim, perplexity) : null;
  const sparse = method === "barnes_hut" ? sparseTsneAffinities(points, n, dim, perplexity, o.neighbors) : null;
  const Y = init === "pca" ? pcaLayout(points, n, dim) : new Float64Array(2 * n);
  if (init === "random" || Y.every((v) => v === 0)) {
    const rng = new Rng(o.seed ?? 0);
    for (let i = 0; i < 2 * n; i++) Y[i] = 1e-4 * rng.normal();
  }
  const update = new Float64Array(2 * n);
  const gains = new Float64Array(2 * n);
  const grad = new Float64Array(2 * n);
  const lr = Math.max(n / EXAGGERATION / 4, 50);

  /**
   * Gradient descent over iterations [from, to) as sklearn's _gradient_descent runs each
   * phase: fresh momentum and gains; every CHECK_EVERY iterations, the phase ends early
   * once the (gain-scaled) gradient norm is down to MIN_GRAD_NORM. Returns the last iteration run.
   */
  const phase = (from: number, to: number, exaggeration: number, momentum: number): number => {
    update.fill(0);
    gains.fill(1);
    let it = from;
    for (; it < to; it++) {
      if (dense) exactGradient(dense, Y, n, exaggeration, grad);
      else barnesHutGradient(sparse!, Y, n, exaggeration, angle, grad);
      let norm2 = 0;
      for (let c = 0; c < 2 * n; c++) {
        // Grow the step where the gradient turns against the last step, shrink it elsewhere.
        gains[c] = update[c]! * grad[c]! < 0 ? gains[c]! + 0.2 : Math.max(gains[c]! * 0.8, MIN_GAIN);
        const g = gains[c]! * grad[c]!;
        norm2 += g * g;
        update[c] = momentum * update[c]! - lr * g;
        Y[c]! += update[c]!;
      }
      let mx = 0, my = 0;
      for (let i = 0; i < n; i++) { mx += Y[2 * i]!; my += Y[2 * i + 1]!; }
      for (let i = 0; i < n; i++) { Y[2 * i]! -= mx / n; Y[2 * i + 1]! -= my / n; }
      if (o.onProgress && it % CHECK_EVERY === 0) o.onProgress(it);
      if ((it + 1) % CHECK_EVERY === 0 && Math.sqrt(norm2) <= MIN_GRAD_NORM) break;
    }
    return Math.min(it, to - 1);
  };
  // Early exaggeration, then the rest (from wherever the first phase stopped).
  const last = phase(0, Math.min(EXAGGERATION_ITERS, iterations), EXAGGERATION, 0.5);
  if (last + 1 < iterations) phase(last + 1, iterations, 1, 0.8);
  return { embedding: Y, kl: dense ? tsneKl(dense, Y, n) : sparseTsneKl(sparse!, Y, n) };
}

/** w_ij = (1 + ||y_i - y_j||^2)^-1, the Student-t kernel between two points of Y [n, 2]. */
function kernelWeight(Y: Float64Array, i: number, j: number): number {
  return 1 / (1 + (Y[2 * i]! - Y[2 * j]!) ** 2 + (Y[2 * i + 1]! - Y[2 * j + 1]!) ** 2);
}

/** Z = sum_{i != j} w_ij, exactly. */
function normalizer(Y: Float64Array, n: number): number {
  let Z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) Z += 2 * kernelWeight(Y, i, j);
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
      const q = Math.max(kernelWeight(Y, i, j) / Z, 1e-12);
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
      const q = Math.max(kernelWeight(Y, i, j) / Z, 1e-12);
      kl += p * Math.log(p / q);
    }
  }
  return kl;
}
