/**
 * L1-regularised logistic regression on SAE codes kept sparse (the CSR layout of
 * sae/sparse-code.ts): the probe SAEBench's absorption eval trains over every latent to
 * rank them for one class,
 *
 *   F(w, b) = (1/n) sum_i c_i log(1 + exp(-s_i (x_i . w + b)))  +  l1 ||w||_1,   s_i = +-1
 *
 * with c_i = posWeight on positives (BCEWithLogitsLoss' pos_weight: n_neg / n_pos balances
 * the classes) and 1 on negatives; the intercept is not penalised. SAEBench runs Adam on
 * this for 50 epochs; here it is solved to convergence by FISTA (accelerated proximal
 * gradient with backtracking), so the ranking does not depend on an optimiser schedule.
 * Every product with the data touches only the code's non-zero entries.
 */
import type { SparseCode } from "../sae/sparse-code.js";
import { sigmoid, softplus } from "./logistic-regression.js";

export interface L1LogisticOptions {
  l1: number;
  /** Weight of the positive rows (default 1). */
  posWeight?: number;
  maxIter?: number;
  /** Stop when no weight moves by more than tol * max(1, max |w|) in a step. */
  tol?: number;
}

export interface L1LogisticModel {
  /** Weights [m] (exact zeros where the L1 penalty wins) and intercept. */
  w: Float64Array;
  b: number;
  iterations: number;
}

/** Smooth part of F and its gradient (grad [m + 1], the intercept last). */
function smooth(X: SparseCode, y: Uint8Array, posWeight: number, theta: Float64Array, grad: Float64Array): number {
  const { batch: n, m, rowPtr, idx, val } = X;
  grad.fill(0);
  let loss = 0;
  for (let i = 0; i < n; i++) {
    let z = theta[m]!;
    for (let e = rowPtr[i]!; e < rowPtr[i + 1]!; e++) z += val[e]! * theta[idx[e]!]!;
    const s = y[i] ? 1 : -1;
    const c = y[i] ? posWeight : 1;
    loss += c * softplus(-s * z);
    const r = (-c * s * sigmoid(-s * z)) / n;
    for (let e = rowPtr[i]!; e < rowPtr[i + 1]!; e++) grad[idx[e]!]! += r * val[e]!;
    grad[m]! += r;
  }
  return loss / n;
}

export function fitL1LogisticCsr(X: SparseCode, y: Uint8Array, o: L1LogisticOptions): L1LogisticModel {
  const { batch: n, m } = X;
  if (n === 0) throw new Error("no rows for the L1 probe");
  if (!(o.l1 >= 0)) throw new RangeError(`l1 must be >= 0, got ${o.l1}`);
  const posWeight = o.posWeight ?? 1;
  const maxIter = o.maxIter ?? 2000;
  const tol = o.tol ?? 1e-6;
  const dim = m + 1;
  let x = new Float64Array(dim); // iterate
  let xPrev = new Float64Array(dim);
  const yk = new Float64Array(dim); // extrapolated point
  const g = new Float64Array(dim);
  const gTrial = new Float64Array(dim);
  const trial = new Float64Array(dim);
  let L = 1; // step 1/L, grown by backtracking
  let t = 1;
  let iterations = 0;
  for (; iterations < maxIter; iterations++) {
    const fy = smooth(X, y, posWeight, yk, g);
    // Backtracking: the quadratic model at yk must bound f at the proximal step.
    for (;;) {
      for (let j = 0; j < dim; j++) {
        const v = yk[j]! - g[j]! / L;
        // Soft-threshold the weights (prox of l1 ||w||_1); the intercept is free.
        trial[j] = j === m ? v : Math.sign(v) * Math.max(0, Math.abs(v) - o.l1 / L);
      }
      const ft = smooth(X, y, posWeight, trial, gTrial);
      let lin = 0;
      let quad = 0;
      for (let j = 0; j < dim; j++) {
        const dlt = trial[j]! - yk[j]!;
        lin += g[j]! * dlt;
        quad += dlt * dlt;
      }
      if (ft <= fy + lin + (L / 2) * quad + 1e-12 * Math.max(1, Math.abs(fy))) break;
      L *= 2;
    }
    [xPrev, x] = [x, xPrev];
    x.set(trial);
    let moved = 0;
    let size = 1;
    for (let j = 0; j < m; j++) {
      moved = Math.max(moved, Math.abs(x[j]! - xPrev[j]!));
      size = Math.max(size, Math.abs(x[j]!));
    }
    moved = Math.max(moved, Math.abs(x[m]! - xPrev[m]!));
    const tNext = (1 + Math.sqrt(1 + 4 * t * t)) / 2;
    for (let j = 0; j < dim; j++) yk[j] = x[j]! + ((t - 1) / tNext) * (x[j]! - xPrev[j]!);
    t = tNext;
    if (moved <= tol * size && iterations > 0) {
      iterations++;
      break;
    }
  }
  return { w: x.slice(0, m), b: x[m]!, iterations };
}
