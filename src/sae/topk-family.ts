/**
 * What the TopK family (topk, abstopk, batchtopk, vsae) shares beyond the linear maps:
 * selection with the encoder bias folded in, the standard sparse backward, and AuxK.
 */
import { SelectMode } from "../core/kernels.js";
import type { AuxKOptions } from "./config.js";
import { LinearSae, type ParamSet, type StepStats, type TrainStep, targetOf } from "./sae.js";
import { fixedKRowPtr, type SparseCode } from "./sparse-code.js";

export abstract class TopKFamilySae extends LinearSae {
  /** Per-row top-k of v = pre + bias into a fixed-k code in the workspace. */
  protected selectTopK(pre: Float32Array, batch: number, k: number, mode: SelectMode,
    bias: Float32Array | null, name = "code"): SparseCode {
    const code = this.codeBuffers(name, batch, batch * k);
    fixedKRowPtr(batch, k, code.rowPtr);
    this.k.topkRows(pre, batch, this.cfg.d_sae, k, mode, bias, code.val, code.idx);
    return code;
  }

  /**
   * The standard backward of a selected code: g_val = dL/dx_hat . W_dec rows (computed here
   * unless given by reconstructFused, which has then written W_dec's gradient too), passed
   * to the pre-activation where the activation is the identity (every entry in Abs/Value
   * mode, entries > 0 after the ReLU), then scattered into W_enc and b_enc (and W_dec).
   */
  protected backwardCode(code: SparseCode, gXhat: Float32Array, xc: Float32Array, mode: SelectMode,
    grads: ParamSet, accumulate: boolean, name = "code", gVal?: Float32Array): Float32Array {
    const gPre = gVal ?? this.codeGrad(code, gXhat, `${name}_g_val`);
    if (mode === SelectMode.Relu) {
      for (let e = 0; e < gPre.length; e++) if (!(code.val[e]! > 0)) gPre[e] = 0;
    }
    this.scatterGrads(code, this.transpose(code, name), gVal ? null : gXhat, gPre, xc, grads, accumulate);
    return gPre;
  }

  /**
   * The rest of a TopK-family step once the code is selected: reconstruction loss, the
   * code's backward, AuxK on dead latents (selected by `auxMode` from the noise-free
   * pre-activations), Multi-TopK's wider reconstruction when `multiK` > 0, and the output
   * side's gradients.
   */
  protected finishStep(code: SparseCode, pre: Float32Array, xc: Float32Array, s: TrainStep, grads: ParamSet,
    mode: SelectMode, opts: AuxKOptions, multiK = 0): StepStats {
    const { sumSq, xHat, gXhat, gVal } = this.reconstructFused(code, targetOf(s), s.batch, "", 1, grads);
    this.backwardCode(code, gXhat, xc, mode, grads, false, "code", gVal);
    const aux = this.auxK(opts, s.auxTarget ?? targetOf(s), xHat, pre, xc, s.batch, s.dead, mode, grads);
    const multi = multiK > 0 ? this.multiTopK(multiK, pre, xc, s, gXhat, mode, grads) : 0;
    this.outputGrads(gXhat, s, grads);
    const mse = sumSq / s.batch;
    return { loss: mse + aux + multi, terms: multiK > 0 ? { mse, aux, multi_topk: multi } : { mse, aux }, sumSquaredError: sumSq, xHat, code };
  }

  /**
   * Multi-TopK's term (Gao et al. 2024; sparsify): the top multiK latents reconstruct the
   * target too, weighted 1/8. Its gradients accumulate into `grads`, and its dL/dx_hat
   * into `gXhat` for the output side. Returns the weighted loss.
   */
  private multiTopK(multiK: number, pre: Float32Array, xc: Float32Array, s: TrainStep, gXhat: Float32Array,
    mode: SelectMode, grads: ParamSet): number {
    const B = s.batch;
    const wide = this.selectTopK(pre, B, multiK, mode, this.b_enc, "multi");
    const r = this.reconstructFused(wide, targetOf(s), B, "multi_", 1 / 8, grads, true);
    this.backwardCode(wide, r.gXhat, xc, mode, grads, true, "multi", r.gVal);
    this.k.addScaledRows(gXhat, r.gXhat, B, this.cfg.d_in, this.ws.float("multi_ones", B).fill(1));
    return r.sumSq / 8 / B;
  }

  /**
   * AuxK (OpenAI's sparse_autoencoder, dictionary_learning): the top aux_k dead latents
   * reconstruct the detached residual e = target - x_hat; the loss is
   *   aux_alpha * mean_b ||e - e_hat||^2 / mean_b ||e - mean(e)||^2
   * (normalised by the residual's variance). Gradients accumulate into `grads`.
   * Returns the weighted loss (0 when nothing is dead or AuxK is off).
   */
  protected auxK(opts: AuxKOptions, target: Float32Array, xHat: Float32Array, pre: Float32Array,
    xc: Float32Array, batch: number, dead: Uint8Array | null, mode: SelectMode, grads: ParamSet): number {
    if (!dead || opts.aux_k === 0 || opts.aux_alpha === 0) return 0;
    const { d_in: d, d_sae: m } = this.cfg;
    let nDead = 0;
    for (let j = 0; j < m; j++) nDead += dead[j]!;
    if (nDead === 0) return 0;
    const kAux = Math.min(opts.aux_k, nDead);

    // Dead latents keep their encoder bias; live ones are masked out with NaN.
    const mask = this.ws.float("aux_bias", m);
    for (let j = 0; j < m; j++) mask[j] = dead[j] ? this.b_enc[j]! : NaN;
    const code = this.selectTopK(pre, batch, kAux, mode, mask, "aux");

    const n = batch * d;
    const e = this.ws.float("aux_residual", n);
    this.k.diffScaled(target.subarray(0, n), xHat, e, 1);
    const eHat = this.ws.float("aux_e_hat", n);
    this.k.sparseDecode(batch, code.rowPtr, code.idx, code.val, this.W_dec, d, null, eHat);
    const mean = this.ws.float("aux_mean", d);
    this.k.colSums(e, batch, d, mean, false);
    this.k.scale(mean, -1 / batch);
    const centeredRes = this.ws.float("aux_centered", n);
    centeredRes.set(e);
    this.k.addRowVector(centeredRes, batch, d, mean);
    const denom = this.k.sumSquares(centeredRes) / batch;
    if (!(denom > 0)) return 0;
    const gEhat = this.ws.float("aux_g", n);
    const sumSq = this.k.diffScaled(eHat, e, gEhat, (2 * opts.aux_alpha) / (batch * denom));
    this.backwardCode(code, gEhat, xc, mode, grads, true, "aux");
    return (opts.aux_alpha * sumSq) / batch / denom;
  }
}
