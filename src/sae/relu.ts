/**
 * ReLU SAE with L1 penalty (Bricken et al. 2023, Anthropic's April update; SAELens
 * "standard"):
 *   f = ReLU(pre),  loss = ||x - x_hat||^2 + l1(t) * sum_j f_j ||W_dec_j||,
 * with l1(t) warming up linearly over l1_warmup_steps. Weighting by the decoder norm
 * makes the penalty invariant to trading scale between f and W_dec.
 */
import type { ReluConfig } from "./config.js";
import { warmup } from "./config.js";
import { LinearSae, type ParamSet, type StepStats, type TrainStep } from "./sae.js";
import { nnz, type SparseCode } from "./sparse-code.js";

/**
 * What the ReLU SAEs (relu, panneal) share: the code f = ReLU(pre), and the gradient of a
 * penalty on f_j ||W_dec_j|| reaching the decoder rows through their norms.
 */
export abstract class ReluCodeSae extends LinearSae {
  encode(x: Float32Array, batch: number): SparseCode {
    return this.reluCode(this.centered(x, batch), batch);
  }

  /** f = ReLU(W_enc xc + b_enc) as a sparse code. */
  protected reluCode(xc: Float32Array, batch: number): SparseCode {
    return this.selectAbove(this.preActivations(xc, batch), batch, this.b_enc, null, "code");
  }

  /**
   * A training step's code and reconstruction: xc, f = ReLU(pre), and reconstructFused's
   * sum of squared errors, x_hat, dL/dx_hat and dL/df per entry (gPre: the ReLU passes it),
   * with the reconstruction's gradient of W_dec written into `grads`.
   */
  protected reluStep(s: TrainStep, grads: ParamSet) {
    const xc = this.centered(s.x, s.batch);
    const code = this.reluCode(xc, s.batch);
    const { sumSq, xHat, gXhat, gVal: gPre } = this.reconstructFused(code, this.reconstructionTarget(s, code), s.batch, "", 1, grads);
    return { xc, code, sumSq, xHat, gXhat, gPre };
  }
}

export class ReluSae extends ReluCodeSae {
  declare readonly cfg: ReluConfig;

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const m = this.cfg.d_sae;
    const B = s.batch;
    const { xc, code, sumSq, xHat, gXhat, gPre } = this.reluStep(s, grads);
    const l1 = this.cfg.l1_coefficient * warmup(s.step, this.cfg.l1_warmup_steps);
    const norms = this.decoderNorms();
    // Per entry: dL/df = g . W_dec_j + (l1 / B) ||W_dec_j||; the ReLU passes it (f > 0).
    // Per latent: dL/d||W_dec_j|| = (l1 / B) sum_b f_bj.
    const gNorm = this.ws.float("g_norm", m, true);
    const c = l1 / B;
    const { idx, val } = code;
    const n = nnz(code);
    let penalty = 0;
    for (let e = 0; e < n; e++) {
      const j = idx[e]!;
      const f = val[e]!;
      penalty += f * norms[j]!;
      gNorm[j]! += c * f;
      gPre[e]! += c * norms[j]!;
    }
    this.scatterGrads(code, "code", null, gPre, xc, grads, false);
    this.addNormGrads(gNorm, norms, grads);
    this.outputGrads(gXhat, s, grads);

    const mse = sumSq / B;
    const l1Term = (l1 * penalty) / B;
    return { loss: mse + l1Term, terms: { mse, l1: l1Term }, sumSquaredError: sumSq, xHat, code };
  }
}
