/**
 * The logistic probe against an independent float64 Newton solver (the reference twin of
 * the L-BFGS fit) and against a closed-form stationary point.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { balancedSampleWeights, fitLogisticRegression, predictLogistic, probeAccuracy } from "../../src/eval/logistic-regression.js";

/** Newton's method on (1/n) sum log(1 + exp(-s z)) + ||w||^2 / (2 C n), all in float64. */
function newtonReference(X: Float32Array, n: number, p: number, y: Uint8Array, C: number, c?: ArrayLike<number>): { w: number[]; b: number } {
  const dim = p + 1;
  const theta = new Float64Array(dim);
  const lambda = 1 / (C * n);
  for (let iter = 0; iter < 50; iter++) {
    const g = new Float64Array(dim);
    const H = Array.from({ length: dim }, () => new Float64Array(dim));
    for (let i = 0; i < n; i++) {
      const row = [...X.subarray(i * p, (i + 1) * p), 1];
      const z = row.reduce((s, v, j) => s + v * theta[j]!, 0);
      const prob = 1 / (1 + Math.exp(-z));
      const r = ((c ? c[i]! : 1) * (prob - y[i]!)) / n;
      const h = ((c ? c[i]! : 1) * prob * (1 - prob)) / n;
      for (let a = 0; a < dim; a++) {
        g[a]! += r * row[a]!;
        for (let c = 0; c < dim; c++) H[a]![c]! += h * row[a]! * row[c]!;
      }
    }
    for (let a = 0; a < p; a++) {
      g[a]! += lambda * theta[a]!;
      H[a]![a]! += lambda;
    }
    // Solve H step = g by Gaussian elimination with partial pivoting.
    const M = H.map((rowH, a) => [...rowH, g[a]!]);
    for (let col = 0; col < dim; col++) {
      let piv = col;
      for (let r = col + 1; r < dim; r++) if (Math.abs(M[r]![col]!) > Math.abs(M[piv]![col]!)) piv = r;
      [M[col], M[piv]] = [M[piv]!, M[col]!];
      for (let r = col + 1; r < dim; r++) {
        const f = M[r]![col]! / M[col]![col]!;
        for (let c = col; c <= dim; c++) M[r]![c]! -= f * M[col]![c]!;
      }
    }
    const step = new Float64Array(dim);
    for (let r = dim - 1; r >= 0; r--) {
      let s = M[r]![dim]!;
      for (let c = r + 1; c < dim; c++) s -= M[r]![c]! * step[c]!;
      step[r] = s / M[r]![r]!;
    }
    for (let a = 0; a < dim; a++) theta[a]! -= step[a]!;
  }
  return { w: [...theta.subarray(0, p)], b: theta[p]! };
}

function noisyProblem(seed: number, n: number, p: number) {
  const rng = new Rng(seed);
  const truth = Array.from({ length: p }, () => rng.normal());
  const X = new Float32Array(n * p);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let z = 0.3;
    for (let j = 0; j < p; j++) {
      X[i * p + j] = rng.normal();
      z += X[i * p + j]! * truth[j]!;
    }
    y[i] = rng.uniform() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { X, y };
}

describe("logistic regression probe", () => {
  it("matches a float64 Newton solution of the same objective", () => {
    for (const [seed, n, p, C] of [[1, 300, 4, 1], [2, 120, 9, 0.1], [3, 57, 1, 10]] as const) {
      const { X, y } = noisyProblem(seed, n, p);
      const fit = fitLogisticRegression(X, n, p, y, { C, tol: 1e-5 });
      const ref = newtonReference(X, n, p, y, C);
      expect(fit.converged).toBe(true);
      const scale = Math.max(1, ...ref.w.map(Math.abs), Math.abs(ref.b));
      for (let j = 0; j < p; j++) expect(Math.abs(fit.w[j]! - ref.w[j]!) / scale).toBeLessThan(1e-4);
      expect(Math.abs(fit.b - ref.b) / scale).toBeLessThan(1e-4);
    }
  });

  it("weighs rows: class_weight balanced as scikit-learn defines it", () => {
    const { X, y } = noisyProblem(4, 200, 3);
    for (let i = 0; i < 200; i++) if (i % 3) y[i] = 0; // imbalanced
    const c = balancedSampleWeights(y);
    const pos = y.reduce((a, v) => a + v, 0);
    expect(c[y.indexOf(1)]).toBeCloseTo(200 / (2 * pos), 12);
    expect(c[y.indexOf(0)]).toBeCloseTo(200 / (2 * (200 - pos)), 12);
    const fit = fitLogisticRegression(X, 200, 3, y, { sampleWeight: c, tol: 1e-5 });
    const ref = newtonReference(X, 200, 3, y, 1, c);
    for (let j = 0; j < 3; j++) expect(fit.w[j]).toBeCloseTo(ref.w[j]!, 3);
    expect(fit.b).toBeCloseTo(ref.b, 3);
    // Unweighted, the intercept leans to the majority class.
    expect(fitLogisticRegression(X, 200, 3, y).b).toBeLessThan(fit.b);
  });

  it("finds the closed-form stationary point of a symmetric one-dimensional problem", () => {
    // x = +1 (class 1) and x = -1 (class 0), 5 each: b = 0 by symmetry and w solves
    // w / (C n) = sigmoid(-w), i.e. w = C n / (1 + e^w).
    const n = 10;
    const C = 1;
    const X = Float32Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1));
    const y = Uint8Array.from({ length: n }, (_, i) => i % 2);
    let lo = 0, hi = 10;
    for (let it = 0; it < 200; it++) {
      const mid = (lo + hi) / 2;
      if (mid - (C * n) / (1 + Math.exp(mid)) < 0) lo = mid;
      else hi = mid;
    }
    const fit = fitLogisticRegression(X, n, 1, y, { C, tol: 1e-8 });
    expect(fit.w[0]).toBeCloseTo(lo, 5);
    expect(fit.b).toBeCloseTo(0, 6);
    expect(probeAccuracy(fit, X, n, 1, y)).toBe(1);
  });

  it("keeps separable data finite through the L2 penalty and predicts by the sign of x.w + b", () => {
    const n = 40;
    const X = Float32Array.from({ length: n * 2 }, (_, i) => (i % 2 === 0 ? (Math.floor(i / 2) < 20 ? 3 : -3) : ((i * 7) % 5) - 2));
    const y = Uint8Array.from({ length: n }, (_, i) => (i < 20 ? 1 : 0));
    const fit = fitLogisticRegression(X, n, 2, y);
    expect(Number.isFinite(fit.w[0])).toBe(true);
    expect(fit.w[0]).toBeGreaterThan(0);
    expect([...predictLogistic(fit, X, n, 2)]).toEqual([...y]);
    expect(() => fitLogisticRegression(new Float32Array(0), 0, 2, new Uint8Array(0))).toThrow(/no training rows/);
    expect(() => fitLogisticRegression(new Float32Array(3), 2, 2, new Uint8Array(2))).toThrow(/needs 4/);
  });
});
