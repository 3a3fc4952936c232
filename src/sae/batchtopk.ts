/**
 * BatchTopK SAE (Bussmann et al. 2024; SAELens "batchtopk", dictionary_learning):
 * training keeps the top k*batch pre-activations (after ReLU) of the whole batch, so tokens
 * get a variable number of latents with k on average. Inference cannot depend on the
 * batch, so it uses a threshold theta tracked during training as an EMA of the smallest
 * selected activation,  theta <- (1 - momentum) theta + momentum * min(selected),  and
 * runs as a JumpReLU: f = pre * 1[pre > theta]. Saved in SAELens format as "jumprelu".
 */
import { SelectMode } from "../core/kernels.js";
import { Tensor } from "../core/tensor.js";
import type { BatchTopKConfig, MatryoshkaConfig } from "./config.js";
import type { ParamSet, StepStats, TrainStep } from "./sae.js";
import { nnz, type SparseCode } from "./sparse-code.js";
import { TopKFamilySae } from "./topk-family.js";

export class BatchTopKSae extends TopKFamilySae {
  declare readonly cfg: BatchTopKConfig | MatryoshkaConfig;

  constructor(cfg: BatchTopKConfig | MatryoshkaConfig, params?: ParamSet, buffers?: ParamSet) {
    super(cfg, params);
    const threshold = buffers?.get("threshold") ?? Tensor.zeros([cfg.d_sae]);
    this.buffers.set("threshold", threshold.expectShape([cfg.d_sae], "threshold"));
  }

  /** The inference threshold (one value, stored per latent as SAELens' JumpReLU has it). */
  get threshold(): number {
    return this.buffers.get("threshold")!.data[0]!;
  }

  /** Inference: JumpReLU with the learned threshold. */
  encode(x: Float32Array, batch: number): SparseCode {
    const xc = this.centered(x, batch);
    const pre = this.preActivations(xc, batch);
    return this.selectAbove(pre, batch, this.b_enc, this.buffers.get("threshold")!.data, "code");
  }

  protected sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const xc = this.centered(s.x, s.batch);
    const pre = this.preActivations(xc, s.batch);
    const code = this.selectBatchTopK(pre, s.batch);
    return this.finishStep(code, pre, xc, s, grads, SelectMode.Relu, this.cfg);
  }

  /** The training code: the top k * batch entries of ReLU(pre + b_enc) over the whole batch. */
  protected selectBatchTopK(pre: Float32Array, batch: number): SparseCode {
    const m = this.cfg.d_sae;
    const code = this.codeBuffers("code", batch, Math.min(this.cfg.k * batch, batch * m));
    this.k.batchTopk(pre, batch, m, this.cfg.k * batch, SelectMode.Relu, this.b_enc, code.rowPtr, code.idx, code.val);
    return code;
  }

  /** theta <- (1 - momentum) theta + momentum * (smallest selected activation). */
  afterStep(stats: StepStats): void {
    const code = stats.code;
    let smallest = Infinity;
    for (let e = 0; e < nnz(code); e++) smallest = Math.min(smallest, code.val[e]!);
    if (!Number.isFinite(smallest)) return;
    const t = this.buffers.get("threshold")!.data;
    t.fill((1 - this.cfg.threshold_momentum) * t[0]! + this.cfg.threshold_momentum * smallest);
  }
}
