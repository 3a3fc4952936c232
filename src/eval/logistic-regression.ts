/**
 * Binary L2-regularised logistic regression, the probe SAEBench trains with scikit-learn's
 * LogisticRegression(penalty="l2", C=1, lbfgs). The same minimiser as scikit-learn's:
 *
 *   J(w, b) = (1/n) sum_i c_i log(1 + exp(-s_i (x_i . w + b)))  +  ||w||^2 / (2 C n),   s_i = +-1
 *
 * with sample weights c_i (1, or scikit-learn's class_weight="balanced": n / (2 n_class)),
 * (scikit-learn scales C * sum(loss) + ||w||^2 / 2 by 1/(C n); the argmin is the same and
 * the gradient stays O(1), which keeps the stopping tolerance meaningful). The intercept is
 * not penalised. Solved by L-BFGS (10 correction pairs, backtracking Armijo line search),
 * stopping when max |grad| <= tol, as scipy's L-BFGS-B does for scikit-learn.
 *
 * The two products with the data, X w and X^T r, run on the sgemm kernel (the data is
 * float32, as scikit-learn's probe data is in SAEBench); the optimiser state is float64.
 */
import { kernels } from "../core/kernels.js";

export interface LogisticRegressionOptions {
  /** Inverse regularisation strength (scikit-learn's C). */
  C?: number;
  /** Stop when max |dJ/dparam| falls to this. */
  tol?: number;
  maxIter?: number;
  /** Per-row weights c_i (default 1); balancedSampleWeights(y) gives class_weight="balanced". */
  sampleWeight?: ArrayLike<number>;
}

export interface LogisticModel {
  /** Weights [p] and intercept. */
  w: Float64Array;
  b: number;
  /** Objective at the solution, L-BFGS iterations taken, and whether tol was met. */
  objective: number;
  iterations: number;
  converged: boolean;
}

/** scikit-learn's class_weight="balanced": each row weighs n / (2 * rows of its class). */
export function balancedSampleWeights(y: Uint8Array, n = y.length): Float64Array {
  let pos = 0;
  for (let i = 0; i < n; i++) pos += y[i] ? 1 : 0;
  const wPos = pos > 0 ? n / (2 * pos) : 0;
  const wNeg = n - pos > 0 ? n / (2 * (n - pos)) : 0;
  return Float64Array.from({ length: n }, (_, i) => (y[i] ? wPos : wNeg));
}

/** log(1 + exp(z)) without overflow. */
export function softplus(z: number): number {
  return z > 0 ? z + Math.log1p(Math.exp(-z)) : Math.log1p(Math.exp(z));
}

export function sigmoid(z: number): number {
  return z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z));
}

/**
 * Fits a probe on X [n, p] (row-major float32) with labels y[i] in {0, 1}.
 */
export function fitLogisticRegression(X: Float32Array, n: number, p: number, y: Uint8Array,
  o: LogisticRegressionOptions = {}): LogisticModel {
  if (X.length < n * p) throw new RangeError(`the probe data holds ${X.length} values, ${n} x ${p} needs ${n * p}`);
  if (y.length < n) throw new RangeError(`${y.length} labels for ${n} rows`);
  if (n === 0) throw new Error("no training rows for the probe");
  const C = o.C ?? 1;
  const tol = o.tol ?? 1e-4;
  const maxIter = o.maxIter ?? 1000;
  const weight = o.sampleWeight;
  if (weight && weight.length < n) throw new RangeError(`${weight.length} sample weights for ${n} rows`);
  const k = kernels();
  const lambda = 1 / (C * n);
  const dim = p + 1; // weights, then the intercept
  const w32 = new Float32Array(p);
  const z = new Float32Array(n);
  const r32 = new Float32Array(n);
  const gw32 = new Float32Array(p);

  /** J and its gradient at theta = (w, b). */
  const evaluate = (theta: Float64Array, grad: Float64Array): number => {
    for (let j = 0; j < p; j++) w32[j] = theta[j]!;
    const b = theta[p]!;
    k.sgemm(false, true, n, 1, p, 1, X, p, w32, p, 0, z, 1);
    let loss = 0;
    let gb = 0;
    for (let i = 0; i < n; i++) {
      const s = y[i] ? 1 : -1;
      const margin = s * (z[i]! + b);
      const c = weight ? weight[i]! : 1;
      loss += c * softplus(-margin);
      // d/dz log(1 + exp(-s z)) = -s sigmoid(-s z)
      const r = (-c * s * sigmoid(-margin)) / n;
      r32[i] = r;
      gb += r;
    }
    k.sgemm(true, false, p, 1, n, 1, X, p, r32, 1, 0, gw32, 1);
    let reg = 0;
    for (let j = 0; j < p; j++) {
      const wj = theta[j]!;
      reg += wj * wj;
      grad[j] = gw32[j]! + lambda * wj;
    }
    grad[p] = gb;
    return loss / n + 0.5 * lambda * reg;
  };

  const memory = 10;
  const S: Float64Array[] = [];
  const Yc: Float64Array[] = [];
  const rho: number[] = [];
  let theta = new Float64Array(dim);
  let grad = new Float64Array(dim);
  let f = evaluate(theta, grad);
  const trial = new Float64Array(dim);
  const trialGrad = new Float64Array(dim);
  const dir = new Float64Array(dim);
  const alpha = new Float64Array(memory);
  let iterations = 0;
  let converged = maxAbs(grad) <= tol;

  while (!converged && iterations < maxIter) {
    // Two-loop recursion: dir = -H grad.
    for (let i = 0; i < dim; i++) dir[i] = -grad[i]!;
    for (let m = S.length - 1; m >= 0; m--) {
      alpha[m] = rho[m]! * dot(S[m]!, dir);
      axpy(-alpha[m]!, Yc[m]!, dir);
    }
    let scale = 1;
    if (S.length) {
      const last = S.length - 1;
      scale = dot(S[last]!, Yc[last]!) / dot(Yc[last]!, Yc[last]!);
    } else {
      scale = 1 / Math.max(1, Math.sqrt(dot(grad, grad)));
    }
    for (let i = 0; i < dim; i++) dir[i]! *= scale;
    for (let m = 0; m < S.length; m++) {
      const beta = rho[m]! * dot(Yc[m]!, dir);
      axpy(alpha[m]! - beta, S[m]!, dir);
    }
    let slope = dot(grad, dir);
    if (slope >= 0) {
      // Not a descent direction (rounding): restart from steepest descent.
      S.length = Yc.length = rho.length = 0;
      for (let i = 0; i < dim; i++) dir[i] = -grad[i]!;
      slope = dot(grad, dir);
    }
    // Backtracking until the Armijo condition holds.
    let step = 1;
    let fTrial = Infinity;
    for (let tries = 0; tries < 40; tries++) {
      for (let i = 0; i < dim; i++) trial[i] = theta[i]! + step * dir[i]!;
      fTrial = evaluate(trial, trialGrad);
      if (fTrial <= f + 1e-4 * step * slope) break;
      step *= 0.5;
    }
    iterations++;
    if (!(fTrial <= f + 1e-4 * step * slope)) break; // no progress possible at float32 precision
    const s = new Float64Array(dim);
    const yv = new Float64Array(dim);
    for (let i = 0; i < dim; i++) {
      s[i] = trial[i]! - theta[i]!;
      yv[i] = trialGrad[i]! - grad[i]!;
    }
    const sy = dot(s, yv);
    if (sy > 1e-12 * Math.sqrt(dot(s, s) * dot(yv, yv))) {
      if (S.length === memory) {
        S.shift();
        Yc.shift();
        rho.shift();
      }
      S.push(s);
      Yc.push(yv);
      rho.push(1 / sy);
    }
    [theta, grad] = [Float64Array.from(trial), Float64Array.from(trialGrad)];
    const fPrev = f;
    f = fTrial;
    converged = maxAbs(grad) <= tol;
    if (!converged && Math.abs(fPrev - f) <= 1e-15 * Math.max(1, Math.abs(f))) break;
  }
  return { w: theta.slice(0, p), b: theta[p]!, objective: f, iterations, converged };
}

/** The probe's class (1 when x . w + b > 0) for each row of X [n, p]. */
export function predictLogistic(model: Pick<LogisticModel, "w" | "b">, X: Float32Array, n: number, p: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let z = model.b;
    for (let j = 0; j < p; j++) z += X[i * p + j]! * model.w[j]!;
    out[i] = z > 0 ? 1 : 0;
  }
  return out;
}

/** Fraction of rows the probe classifies correctly. */
export function probeAccuracy(model: Pick<LogisticModel, "w" | "b">, X: Float32Array, n: number, p: number, y: Uint8Array): number {
  const pred = predictLogistic(model, X, n, p);
  let right = 0;
  for (let i = 0; i < n; i++) if (pred[i] === y[i]) right++;
  return n === 0 ? NaN : right / n;
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function axpy(alpha: number, x: Float64Array, y: Float64Array): void {
  for (let i = 0; i < y.length; i++) y[i]! += alpha * x[i]!;
}

function maxAbs(a: Float64Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
