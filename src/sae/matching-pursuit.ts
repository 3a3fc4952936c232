/**
 * Matching pursuit SAE (Costa et al. 2025, "From Flat to Hierarchical: Extracting Sparse
 * Representations with Matching Pursuit"; SAELens "matching_pursuit"). There is no encoder:
 * a token's code is found greedily against the decoder's rows, as SAELens finds it:
 *
 *   r = x - b_dec;  repeat:  j = argmax_j r . W_dec_j,  a = ReLU(r . W_dec_j),
 *                            f_j += a,  r -= a W_dec_j
 *   until the support stops growing (a is 0 or j was already chosen: that step's a still
 *   counts), ||r|| < residual_threshold, or max_iterations steps;
 *   x_hat = W_dec^T f + b_dec,
 * where, as in SAELens' tied decoder, b_dec is subtracted and added back only when
 * apply_b_dec_to_input is set (otherwise it is unused).
 *
 * Each pursuit step picks its latent by one [active tokens, d_sae] product on the GEMM, so
 * a step costs what a TopK SAE's whole encoder does; tokens leave the product as they
 * finish. Gradients flow through the amounts and the residual chain with the choices held
 * fixed, as autograd does through SAELens' loop; the backward replays each token's pursuit
 * from its recorded choices to recover the residuals it needs.
 */
import { kernels, type Kernels, SelectMode } from "../core/kernels.js";
import { Tensor } from "../core/tensor.js";
import { Workspace } from "../core/workspace.js";
import type { MatchingPursuitConfig } from "./config.js";
import { type ParamSet, type Sae, type StepStats, type TrainStep, centeredInput, targetOf } from "./sae.js";
import type { SparseCode } from "./sparse-code.js";

/** One batch's pursuits: each token's choices in order, and the code they add up to. */
interface Pursuit {
  /** The input the pursuit started from: x - b_dec (or x) [batch, d_in]. */
  start: Float32Array;
  /** Steps taken per token. */
  steps: Int32Array;
  /** Token b's step t chose latent chosen[b * T + t] with amount amount[b * T + t] (T = max_iterations). */
  chosen: Int32Array;
  amount: Float32Array;
  code: SparseCode;
}

export class MatchingPursuitSae implements Sae {
  readonly params: ParamSet;
  readonly buffers: ParamSet = new Map();
  private readonly ws = new Workspace();
  private readonly k: Kernels = kernels();

  constructor(readonly cfg: MatchingPursuitConfig, params?: ParamSet) {
    const { d_in: d, d_sae: m } = cfg;
    this.params = params ?? new Map([["W_dec", Tensor.zeros([m, d])], ["b_dec", Tensor.zeros([d])]]);
    for (const name of this.params.keys()) {
      if (name !== "W_dec" && name !== "b_dec") throw new Error(`mp SAE: unexpected parameter "${name}" (it has only W_dec and b_dec)`);
    }
    this.param("W_dec").expectShape([m, d], "W_dec");
    this.param("b_dec").expectShape([d], "b_dec");
  }

  private param(name: string): Tensor {
    const t = this.params.get(name);
    if (!t) throw new Error(`mp SAE has no parameter "${name}"`);
    return t;
  }

  private get W_dec(): Float32Array { return this.param("W_dec").data; }
  private get b_dec(): Float32Array { return this.param("b_dec").data; }

  encode(x: Float32Array, batch: number): SparseCode {
    return this.pursue(x, batch).code;
  }

  decode(code: SparseCode): Float32Array {
    const d = this.cfg.d_in;
    const out = this.ws.float("x_hat", code.batch * d);
    const bias = this.cfg.apply_b_dec_to_input ? this.b_dec : null;
    this.k.sparseDecode(code.batch, code.rowPtr, code.idx, code.val, this.W_dec, d, bias, out);
    return out;
  }

  lossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const { d_in: d } = this.cfg;
    const B = s.batch;
    const pursuit = this.pursue(s.x, B);
    const xHat = this.decode(pursuit.code);
    const gXhat = this.ws.float("g_xhat", B * d);
    const sumSq = this.k.diffScaled(xHat, targetOf(s).subarray(0, B * d), gXhat, 2 / B);
    this.backward(pursuit, gXhat, B, grads);
    const mse = sumSq / B;
    return { loss: mse, terms: { mse }, sumSquaredError: sumSq, xHat, code: pursuit.code };
  }

  /** Every token's pursuit, all tokens stepping together until the last one stops. */
  private pursue(x: Float32Array, batch: number): Pursuit {
    const { d_in: d, d_sae: m, max_iterations: T, residual_threshold: threshold } = this.cfg;
    const W = this.W_dec;
    const start = centeredInput(this.k, this.ws, x, batch, this.b_dec, this.cfg.apply_b_dec_to_input);
    const residual = this.ws.float("residual", batch * d);
    residual.set(start);
    const steps = this.ws.int("steps", batch).fill(0);
    const chosen = this.ws.int("chosen", batch * T);
    const amount = this.ws.float("amount", batch * T);
    // Which latents each token's support holds, one bit each.
    const words = Math.ceil(m / 32);
    const support = this.ws.int("support", batch * words).fill(0);

    let active = Int32Array.from({ length: batch }, (_, b) => b);
    const top = this.ws.float("top_value", batch);
    const topIdx = this.ws.int("top_index", batch);
    while (active.length > 0) {
      const n = active.length;
      // The correlations of the still-running tokens' residuals with every decoder row.
      const rows = this.ws.float("active_residuals", n * d);
      for (let i = 0; i < n; i++) rows.set(residual.subarray(active[i]! * d, (active[i]! + 1) * d), i * d);
      const corr = this.ws.float("correlations", n * m);
      this.k.sgemm(false, true, n, m, d, 1, rows, d, W, d, 0, corr, m);
      this.k.topkRows(corr, n, m, 1, SelectMode.Value, null, top, topIdx);
      const still: number[] = [];
      for (let i = 0; i < n; i++) {
        const b = active[i]!, j = topIdx[i]!, r = b * d, w = j * d;
        // The amount from the residual itself (not the GEMM's rounding of it), as SAELens does.
        let dot = 0;
        for (let c = 0; c < d; c++) dot += residual[r + c]! * W[w + c]!;
        const a = Math.fround(Math.max(0, dot));
        const t = steps[b]!++;
        chosen[b * T + t] = j;
        amount[b * T + t] = a;
        const word = b * words + (j >>> 5), bit = 1 << (j & 31);
        const grew = a > 0 && (support[word]! & bit) === 0;
        let norm = 0;
        if (a > 0) {
          support[word]! |= bit;
          for (let c = 0; c < d; c++) {
            residual[r + c] = residual[r + c]! - a * W[w + c]!;
            norm += residual[r + c]! * residual[r + c]!;
          }
        }
        if (grew && Math.sqrt(norm) >= threshold && t + 1 < T) still.push(b);
      }
      active = Int32Array.from(still);
    }
    return { start, steps, chosen, amount, code: this.codeOf(steps, chosen, amount, batch) };
  }

  /** Each token's amounts summed per latent, in the order the latents were first chosen. */
  private codeOf(steps: Int32Array, chosen: Int32Array, amount: Float32Array, batch: number): SparseCode {
    const { d_sae: m, max_iterations: T } = this.cfg;
    let total = 0;
    for (let b = 0; b < batch; b++) total += steps[b]!;
    const code: SparseCode = {
      batch, m, rowPtr: this.ws.int("code_row_ptr", batch + 1), idx: this.ws.int("code_idx", total), val: this.ws.float("code_val", total),
    };
    const slot = this.ws.int("slot", m);
    slot.fill(-1);
    let e = 0;
    for (let b = 0; b < batch; b++) {
      code.rowPtr[b] = e;
      const first = e;
      for (let t = 0; t < steps[b]!; t++) {
        const j = chosen[b * T + t]!, a = amount[b * T + t]!;
        if (a === 0) continue;
        if (slot[j]! >= 0) code.val[slot[j]!]! += a;
        else { slot[j] = e; code.idx[e] = j; code.val[e++] = a; }
      }
      for (let f = first; f < e; f++) slot[code.idx[f]!] = -1;
    }
    code.rowPtr[batch] = e;
    return code;
  }

  /**
   * Gradients from dL/dx_hat [batch, d_in], token by token. With r_t the residual before
   * step t and rho the gradient reaching the residual after it (0 after the last step):
   *   abar = g . W_j - rho . W_j           (x_hat gains a W_j; the next residual loses it)
   *   dW_j += a g - a rho + abar r_t       (where a = ReLU(r_t . W_j) > 0)
   *   rho  += abar W_j                     (the residual before the step)
   * and b_dec (when it is used) gets sum g, minus the rho that reaches the start.
   */
  private backward(p: Pursuit, gXhat: Float32Array, batch: number, grads: ParamSet): void {
    const { d_in: d, max_iterations: T } = this.cfg;
    const W = this.W_dec;
    const gW = grads.get("W_dec")!.data;
    const gb = grads.get("b_dec")!.data;
    gW.fill(0);
    const useBias = this.cfg.apply_b_dec_to_input;
    if (useBias) this.k.colSums(gXhat, batch, d, gb, false);
    else gb.fill(0);
    const history = this.ws.float("history", T * d);
    const rho = new Float64Array(d);
    for (let b = 0; b < batch; b++) {
      const n = p.steps[b]!, g = b * d;
      // Replay the pursuit: the same float32 updates give the same residuals.
      history.set(p.start.subarray(g, g + d), 0);
      for (let t = 0; t + 1 < n; t++) {
        const a = p.amount[b * T + t]!, w = p.chosen[b * T + t]! * d, from = t * d, to = from + d;
        for (let c = 0; c < d; c++) history[to + c] = history[from + c]! - a * W[w + c]!;
      }
      rho.fill(0);
      for (let t = n - 1; t >= 0; t--) {
        const a = p.amount[b * T + t]!;
        if (a === 0) continue; // the ReLU was closed: nothing flows through this step
        const w = p.chosen[b * T + t]! * d, r = t * d;
        let abar = 0;
        for (let c = 0; c < d; c++) abar += (gXhat[g + c]! - rho[c]!) * W[w + c]!;
        for (let c = 0; c < d; c++) {
          gW[w + c]! += a * (gXhat[g + c]! - rho[c]!) + abar * history[r + c]!;
          rho[c]! += abar * W[w + c]!;
        }
      }
      if (useBias) for (let c = 0; c < d; c++) gb[c]! -= rho[c]!;
    }
  }
}
