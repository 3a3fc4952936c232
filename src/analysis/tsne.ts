/**
 * t-SNE (van der Maaten & Hinton 2008), exact O(n^2) version, for the vSAE paper's global
 * view of an SAE's latents (a few thousand points at most; the caller subsamples beyond).
 *
 *   p_j|i ∝ exp(-beta_i ||x_i - x_j||^2), beta_i set by bisection so that the entropy of
 *           p_.|i is log(perplexity);  P = (p_j|i + p_i|j) / 2n
 *   q_ij  = (1 + ||y_i - y_j||^2)^-1 / Z
 *   dC/dy_i = 4 sum_j (p_ij - q_ij) (1 + ||y_i - y_j||^2)^-1 (y_i - y_j)
 *
 * Optimised as in the reference implementation: early exaggeration of P (x12 for the first
 * 250 iterations), momentum 0.5 then 0.8, per-coordinate adaptive gains, and sklearn's
 * "auto" learning rate max(n / exaggeration / 4, 50). Deterministic given the seed.
 */
import { Rng } from "../core/rng.js";

export interface TsneOptions {
  perplexity?: number;
  iterations?: number;
  seed?: number;
  /** Called every 50 iterations with the iteration number. */
  onProgress?: (iteration: number) => void;
}

export interface TsneResult {
  /** [n, 2] coordinates. */
  embedding: Float64Array;
  /** KL(P || Q) of the final embedding. */
  kl: number;
}

const EXAGGERATION = 12;
const EXAGGERATION_ITERS = 250;

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
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let beta = 1;
    let lo = 0;
    let hi = Infinity;
    for (let step = 0; step < 100; step++) {
      // Entropy H = log Z + beta * E[D] of the row distribution at this precision.
      let min = Infinity;
      for (let j = 0; j < n; j++) if (j !== i) min = Math.min(min, D[i * n + j]!);
      let z = 0;
      let ed = 0;
      for (let j = 0; j < n; j++) {
        const v = j === i ? 0 : Math.exp(-beta * (D[i * n + j]! - min));
        row[j] = v;
        z += v;
        ed += v * D[i * n + j]!;
      }
      const entropy = Math.log(z) + beta * (ed / z - min);
      for (let j = 0; j < n; j++) P[i * n + j] = row[j]! / z;
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

/** The perplexity t-SNE uses for n points: the requested one, kept below (n - 1) / 3 neighbours (and above 1). */
export function effectivePerplexity(requested: number, n: number): number {
  return Math.max(1.01, Math.min(requested, (n - 1) / 3));
}

export function tsne(points: ArrayLike<number>, n: number, dim: number, o: TsneOptions = {}): TsneResult {
  if (n < 2) return { embedding: new Float64Array(2 * n), kl: 0 };
  const iterations = o.iterations ?? 1000;
  const P = tsneAffinities(points, n, dim, effectivePerplexity(o.perplexity ?? 30, n));
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
  return { embedding: Y, kl: tsneKl(P, Y, n) };
}

/** KL(P || Q) of an embedding Y [n, 2]. */
export function tsneKl(P: Float64Array, Y: Float64Array, n: number): number {
  let Z = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      if (i !== j) Z += 1 / (1 + (Y[2 * i]! - Y[2 * j]!) ** 2 + (Y[2 * i + 1]! - Y[2 * j + 1]!) ** 2);
    }
  }
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
