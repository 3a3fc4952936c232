/**
 * TopK SAE (Gao et al. 2024; OpenAI, sparsify, SAELens "topk"):
 *   f = TopK_k(ReLU(pre)),  loss = ||x - x_hat||^2 + aux_alpha * AuxK
 *   (+ ||x - x_hat_4k||^2 / 8 with Multi-TopK).
 * The k largest pre-activations per token are kept (then clamped at 0), everything else is
 * zero; the step costs one dense GEMM for pre and O(batch * k * d_in) sparse work.
 * With activation "groupmax" (sparsify's), the k kept are the largest of each of k runs of
 * d_sae / k latents instead; the rest of the step is the same.
 */
import { SelectMode } from "../core/kernels.js";
import type { TopKConfig } from "./config.js";
import type { ParamSet, StepStats, TrainStep } from "./sae.js";
import { fixedKRowPtr, type SparseCode } from "./sparse-code.js";
import { TopKFamilySae } from "./topk-family.js";

export class TopKSae extends TopKFamilySae {
  declare readonly cfg: TopKConfig;

  /** ReLU (topk) or magnitude with sign kept (abstopk). */
  protected get mode(): SelectMode {
    return SelectMode.Relu;
  }

  encode(x: Float32Array, batch: number): SparseCode {
    const xc = this.centered(x, batch);
    return this.select(this.preActivations(xc, batch), batch);
  }

  /** The k latents each token keeps: its top k, or with groupmax the best of each run. */
  private select(pre: Float32Array, batch: number, k = this.cfg.k): SparseCode {
    if (this.cfg.activation !== "groupmax") return this.selectTopK(pre, batch, k, this.mode, this.b_enc);
    const code = this.codeBuffers("code", batch, batch * k);
    fixedKRowPtr(batch, k, code.rowPtr);
    this.k.groupMaxRows(pre, batch, this.cfg.d_sae, k, this.mode, this.b_enc, code.val, code.idx);
    return code;
  }

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const xc = this.centered(s.x, s.batch);
    const pre = this.preActivations(xc, s.batch);
    const k = s.k ?? this.cfg.k;
    if (k !== this.cfg.k && this.cfg.activation === "groupmax") throw new RangeError("groupmax keeps one latent per run of d_sae / k: its k cannot change during training");
    const code = this.select(pre, s.batch, k);
    const multiK = this.cfg.multi_topk ? Math.min(4 * k, this.cfg.d_sae) : 0;
    return this.finishStep(code, pre, xc, s, grads, this.mode, this.cfg, multiK);
  }
}
