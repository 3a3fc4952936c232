/**
 * Muon (Jordan et al. 2024, "MomentUm Orthogonalized by Newton-Schulz"), as sparsify trains
 * SAEs with it (`--optimizer muon`): each weight matrix steps along its Nesterov momentum
 * made (nearly) orthogonal, every singular value pushed toward 1, so that no direction of the
 * update dominates; the other parameters (biases, thresholds) use Adam.
 *
 * Per matrix W [r, c] with gradient G, at learning rate lr:
 *   W   <- W (1 - lr * weight_decay)                      decoupled weight decay (0.1)
 *   buf <- momentum buf + (1 - momentum) G                (momentum 0.95)
 *   U    = (1 - momentum) G + momentum buf                Nesterov
 *   W   <- W - lr * 0.2 sqrt(max(r, c)) * NS5(U)          the update's RMS matched to Adam's
 * NS5 is five steps of the quintic Newton-Schulz iteration X <- a X + (b A + c A^2) X with
 * A = X X^T, from X = U / ||U||_F, (a, b, c) = (3.4445, -4.7750, 2.0315): it maps each
 * singular value s of U to roughly 0.7..1.2 without an SVD, using only matrix products
 * (sparsify runs them in bfloat16; here at the run's matmul precision, so float32 unless
 * --matmul-precision medium). They cost about ten GEMMs of the matrix's size per step: for
 * a [16384, 512] encoder and decoder, more than the rest of a batch-4096 training step.
 *
 * sparsify's defaults: lr 2e-3 whatever the dictionary's width, no warm-up, a linear decay
 * to zero over the run. (sparsify gives the biases' Adam a warm-up of its own; here the one
 * schedule of the run drives both.)
 */
import { kernels } from "../core/kernels.js";
import { Workspace } from "../core/workspace.js";
import { type ParamSet, zerosLike } from "../sae/sae.js";
import { ADAM_DEFAULTS, Adam, type AdamOptions, adamMoments } from "./adam.js";
import { zeroLatentRows } from "./latent-rows.js";
import type { Optimizer } from "./optimizer.js";
import { type OptimizerState, expectSetFor, stateSet } from "./optimizer-state.js";

export const MUON_MOMENTUM = 0.95;
export const MUON_DEFAULT_LR = 2e-3;
export const MUON_DEFAULT_WEIGHT_DECAY = 0.1;
/** The quintic's coefficients, chosen (Jordan) for the steepest slope at zero. */
const QUINTIC = [3.4445, -4.775, 2.0315] as const;
const NS_STEPS = 5;

/**
 * NS_STEPS quintic Newton-Schulz steps on G [rows, cols] (row-major), from X = G / (||G||_F
 * + 1e-7): a matrix with G's singular vectors and singular values near 1. Works on the
 * smaller Gram matrix (X X^T or X^T X), as Muon transposes a tall matrix. Returns a
 * workspace view.
 *
 * (Every X_t is X_0 times a polynomial in X_0^T X_0, so the steps could run on the small
 * Gram matrix alone, with two products by the big matrix instead of ten; but in float32 the
 * polynomial's large values for small singular values amplify rounding to errors of 1e-2
 * and worse, so each step here multiplies by X itself. Multiplying only the Gram matrix's
 * blocks on and above the diagonal, three products of four, saved ~4% of the iteration at
 * [16384, 512]: not kept.)
 */
export function newtonSchulz(G: Float32Array, rows: number, cols: number, ws: Workspace = new Workspace()): Float32Array {
  const k = kernels();
  const [a, b, c] = QUINTIC;
  const n = Math.min(rows, cols);
  const wide = rows <= cols;
  let X = ws.float("ns_x", rows * cols);
  let Y = ws.float("ns_y", rows * cols);
  const A = ws.float("ns_a", n * n);
  const B = ws.float("ns_b", n * n);
  X.set(G.subarray(0, rows * cols));
  k.scale(X, 1 / (Math.sqrt(k.sumSquares(X)) + 1e-7));
  for (let s = 0; s < NS_STEPS; s++) {
    // A = X X^T (wide) or X^T X (tall): n x n.
    if (wide) k.sgemm(false, true, n, n, cols, 1, X, cols, X, cols, 0, A, n);
    else k.sgemm(true, false, n, n, rows, 1, X, cols, X, cols, 0, A, n);
    // B = b A + c A A (symmetric).
    B.set(A);
    k.sgemm(false, false, n, n, n, c, A, n, A, n, b, B, n);
    // Y = a X + B X (wide) or a X + X B (tall).
    Y.set(X);
    if (wide) k.sgemm(false, false, rows, cols, rows, 1, B, n, X, cols, a, Y, cols);
    else k.sgemm(false, false, rows, cols, cols, 1, X, cols, B, n, a, Y, cols);
    [X, Y] = [Y, X];
  }
  return X;
}

/** Muon steps the matrices (two or more dimensions, as sparsify picks them); Adam the rest. */
export function isMuonParam(shape: readonly number[]): boolean {
  return shape.length >= 2;
}

export class Muon implements Optimizer {
  readonly kind = "muon";
  /** Momentum buffers of the matrices. */
  readonly momentum: ParamSet;
  /** Adam over the other parameters. */
  readonly adam: Adam;
  private readonly ws = new Workspace();

  constructor(params: ParamSet, readonly weightDecay = MUON_DEFAULT_WEIGHT_DECAY, adamOptions: AdamOptions = ADAM_DEFAULTS,
    state?: OptimizerState) {
    const [matrices, others] = split(params);
    this.momentum = state ? expectSetFor(matrices, stateSet(state, "muon_m", "Muon momentum"), "Muon: momentum") : zerosLike(matrices);
    // Adam's moments are saved only when it has parameters to step (state() leaves out empty sets).
    const moments = state && others.size ? adamMoments(state) : undefined;
    this.adam = new Adam(others, { ...adamOptions, weightDecay: 0 }, moments);
  }

  step(params: ParamSet, grads: ParamSet, lr: number, step: number): void {
    const k = kernels();
    const [matrices, others] = split(params);
    const beta = MUON_MOMENTUM;
    for (const [name, p] of matrices) {
      const rows = p.shape[0]!;
      const cols = p.numel / rows;
      const g = grads.get(name)!.data;
      const buf = this.momentum.get(name)!.data;
      const u = this.ws.float("nesterov", p.numel);
      for (let i = 0; i < p.numel; i++) {
        const m = beta * buf[i]! + (1 - beta) * g[i]!;
        buf[i] = m;
        u[i] = (1 - beta) * g[i]! + beta * m;
      }
      const update = newtonSchulz(u, rows, cols, this.ws);
      if (this.weightDecay > 0) k.scale(p.data, 1 - lr * this.weightDecay);
      const rate = lr * 0.2 * Math.sqrt(Math.max(rows, cols));
      const w = p.data;
      for (let i = 0; i < p.numel; i++) w[i]! -= rate * update[i]!;
    }
    this.adam.step(others, grads, lr, step);
  }

  /** A restarted latent's momentum (and its Adam moments) start from zero. */
  restartRows(params: ParamSet, j: number, m: number): void {
    zeroLatentRows(this.momentum, j, m);
    this.adam.restartRows(params, j, m);
  }

  state(): OptimizerState {
    const adam = this.adam.state().tensors;
    return { tensors: { muon_m: this.momentum, ...(this.adam.m.size ? adam : {}) }, scalars: {} };
  }

  finalWeights(params: ParamSet): ParamSet {
    return params;
  }
}

/** [the matrices Muon steps, the parameters Adam steps]. */
function split(params: ParamSet): [ParamSet, ParamSet] {
  const matrices: ParamSet = new Map();
  const others: ParamSet = new Map();
  for (const [name, t] of params) (isMuonParam(t.shape) ? matrices : others).set(name, t);
  return [matrices, others];
}
