/**
 * ReLU SAE with L1 penalty (Bricken et al. 2023, Anthropic's April update; SAELens
 * "standard"):
 *   f = ReLU(pre),  loss = ||x - x_hat||^2 + l1(t) * sum_j f_j ||W_dec_j||,
 * with l1(t) warming up linearly over l1_warmup_steps. Weighting by the decoder norm
 * makes the penalty invariant to trading scale between f and W_dec.
 */
import type { ReluConfig } from "./config.js";
import { warmup } from "./config.js";
import { LinearSae, type ParamSet, type StepStats, type TrainStep, targetOf } from "./sae.js";
import { nnz, type SparseCode } from "./sparse-code.js";

export class ReluSae extends LinearSae {
  declare readonly cfg: ReluConfig;

  encode(x: Float32Array, batch: number): SparseCode {
    const xc = this.centered(x, batch);
    return this.selectAbove(this.preActivations(xc, batch), batch, this.b_enc, null, "code");
  }

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const { d_in: d, d_sae: m } = this.cfg;
    const B = s.batch;
    const xc = this.centered(s.x, B);
    const pre = this.preActivations(xc, B);
    const code = this.selectAbove(pre, B, this.b_enc, null, "code");
    const { sumSq, xHat, gXhat, gVal: gPre } = this.reconstructFused(code, targetOf(s), B);

    const l1 = this.cfg.l1_coefficient * warmup(s.step, this.cfg.l1_warmup_steps);
    const norms = this.ws.float("dec_norms", m);
    this.k.rowNorms(this.W_dec, m, d, norms);
    // Per entry: dL/df = g . W_dec_j + (l1 / B) ||W_dec_j||; the ReLU passes it (f > 0).
    const fSum = this.ws.float("f_sum", m, true);
    let penalty = 0;
    for (let e = 0; e < nnz(code); e++) {
      const j = code.idx[e]!;
      const f = code.val[e]!;
      penalty += f * norms[j]!;
      fSum[j]! += f;
      gPre[e]! += (l1 / B) * norms[j]!;
    }
    this.scatterGrads(code, this.transpose(code, "code"), gXhat, gPre, xc, grads, false);
    // d/dW_dec_j of (l1/B) sum_b f_bj ||W_dec_j|| = (l1/B) (sum_b f_bj) W_dec_j / ||W_dec_j||.
    const rowScale = this.ws.float("l1_row_scale", m);
    for (let j = 0; j < m; j++) rowScale[j] = norms[j]! > 0 ? ((l1 / B) * fSum[j]!) / norms[j]! : 0;
    this.k.addScaledRows(grads.get("W_dec")!.data, this.W_dec, m, d, rowScale);
    this.outputGrads(gXhat, s, grads);

    const mse = sumSq / B;
    const l1Term = (l1 * penalty) / B;
    return { loss: mse + l1Term, terms: { mse, l1: l1Term }, sumSquaredError: sumSq, xHat, code };
  }
}
