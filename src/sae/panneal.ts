/**
 * p-annealing (Karvonen et al. 2024, "Measuring Progress in Dictionary Learning for Language
 * Model Interpretability with Board Game Models"; dictionary_learning's PAnnealTrainer):
 *
 *   f = ReLU(pre),  loss = ||x - x_hat||^2 + alpha * w(t) * mean_b P_p(u_b),  u_bj = f_bj ||W_dec_j||,
 *
 * P_p the penalty annealed in p (p-annealing.ts: sum_j u_j^p or its 1/p-th power, p stepping
 * from p_start toward p_end, alpha rescaled at each step of p so the penalty keeps its size).
 * At p = 1 this is relu.ts's L1 penalty. Inference is a plain ReLU SAE (SAELens "standard").
 */
import type { PAnnealConfig } from "./config.js";
import { PAnnealing } from "./p-annealing.js";
import { ReluCodeSae } from "./relu.js";
import type { ParamSet, StepStats, TrainStep } from "./sae.js";

export class PAnnealSae extends ReluCodeSae {
  declare readonly cfg: PAnnealConfig;
  private readonly anneal: PAnnealing;

  constructor(cfg: PAnnealConfig, params?: ParamSet, buffers?: ParamSet) {
    super(cfg, params);
    this.anneal = new PAnnealing(cfg, this.buffers, buffers);
  }

  /** The exponent and the coefficient (before warm-up) in force now. */
  get annealing(): { p: number; coefficient: number; updates: number } {
    return this.anneal.annealing;
  }

  startRun(steps: number): void {
    this.anneal.startRun(steps);
  }

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const B = s.batch;
    const { xc, code, sumSq, xHat, gXhat, gPre } = this.reluStep(s, grads);
    const norms = this.decoderNorms();
    // dL/d||W_dec_j||, summed over the batch.
    const gNorm = this.ws.float("g_norm", this.cfg.d_sae, true);
    const { penalty: sparsity, p, coefficient } = this.anneal.penalize(s.step, code, norms, gPre, gNorm);
    this.scatterGrads(code, "code", null, gPre, xc, grads, false);
    this.addNormGrads(gNorm, norms, grads);
    this.outputGrads(gXhat, s, grads);
    const mse = sumSq / B;
    return {
      loss: mse + sparsity, terms: { mse, sparsity }, sumSquaredError: sumSq, xHat, code,
      schedule: { p, sparsity_coefficient: coefficient },
    };
  }

  /** Records the step's penalties and, at an update step, rescales alpha and moves p on. */
  afterStep(): void {
    this.anneal.afterStep();
  }
}
