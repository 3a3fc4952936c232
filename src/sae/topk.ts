/**
 * TopK SAE (Gao et al. 2024; OpenAI, sparsify, SAELens "topk"):
 *   f = TopK_k(ReLU(pre)),  loss = ||x - x_hat||^2 + aux_alpha * AuxK
 *   (+ ||x - x_hat_4k||^2 / 8 with Multi-TopK).
 * The k largest pre-activations per token are kept (then clamped at 0), everything else is
 * zero; the step costs one dense GEMM for pre and O(batch * k * d_in) sparse work.
 */
import { SelectMode } from "../core/kernels.js";
import type { TopKConfig } from "./config.js";
import type { ParamSet, StepStats, TrainStep } from "./sae.js";
import type { SparseCode } from "./sparse-code.js";
import { TopKFamilySae } from "./topk-family.js";

export class TopKSae extends TopKFamilySae {
  declare readonly cfg: TopKConfig;

  /** ReLU (topk) or magnitude with sign kept (abstopk). */
  protected get mode(): SelectMode {
    return SelectMode.Relu;
  }

  encode(x: Float32Array, batch: number): SparseCode {
    const xc = this.centered(x, batch);
    return this.selectTopK(this.preActivations(xc, batch), batch, this.cfg.k, this.mode, this.b_enc);
  }

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const xc = this.centered(s.x, s.batch);
    const pre = this.preActivations(xc, s.batch);
    const code = this.selectTopK(pre, s.batch, this.cfg.k, this.mode, this.b_enc);
    const multiK = this.cfg.multi_topk ? Math.min(4 * this.cfg.k, this.cfg.d_sae) : 0;
    return this.finishStep(code, pre, xc, s, grads, this.mode, this.cfg, multiK);
  }
}
