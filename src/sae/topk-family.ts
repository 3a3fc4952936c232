/**
 * What the TopK family (topk, abstopk, batchtopk, vsae) shares beyond the linear maps:
 * selection with the encoder bias folded in, the standard sparse backward, and AuxK.
 */
import { SelectMode } from "../core/kernels.js";
import type { AuxKOptions } from "./config.js";
import { denseReconstruct, denseScatterRows } from "./dense-code.js";
import { LinearSae, type ParamSet, type StepStats, type TrainStep, targetOf } from "./sae.js";
import { fixedKRowPtr, nnz, type SparseCode } from "./sparse-code.js";

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
    this.scatterGrads(code, name, gVal ? null : gXhat, gPre, xc, grads, accumulate);
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
    const target = this.reconstructionTarget(s, code);
    const { sumSq, xHat, gXhat, gVal } = this.reconstructFused(code, target, s.batch, "", 1, grads);
    this.backwardCode(code, gXhat, xc, mode, grads, false, "code", gVal);
    const aux = this.auxK(opts, s.auxTarget ?? target, xHat, pre, xc, s.batch, s.dead, mode, grads);
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
    const { code, cols } = this.selectDead(pre, batch, kAux, nDead, dead, mode);

    const n = batch * d;
    const e = this.ws.float("aux_residual", n);
    this.k.diffScaled(target.subarray(0, n), xHat, e, 1);
    const mean = this.ws.float("aux_mean", d);
    this.k.colSums(e, batch, d, mean, false);
    this.k.scale(mean, -1 / batch);
    const centeredRes = this.ws.float("aux_centered", n);
    centeredRes.set(e);
    this.k.addRowVector(centeredRes, batch, d, mean);
    const denom = this.k.sumSquares(centeredRes) / batch;
    if (!(denom > 0)) return 0;
    const scale = (2 * opts.aux_alpha) / (batch * denom);
    const sumSq = kAux * DENSE_AUXK_RATIO >= nDead && batch * nDead <= AUXK_DENSE_FLOATS
      ? this.denseAuxK(code, cols, e, xc, batch, scale, mode, grads)
      : this.sparseAuxK(code, cols, e, xc, batch, scale, mode, grads);
    return (opts.aux_alpha * sumSq) / batch / denom;
  }

  /**
   * Each token's top k of the nDead dead latents (pre + b_enc, ranked as selectTopK ranks):
   * their columns of pre are gathered, a block of rows at a time (cols: the latent of each
   * of its columns), and selected there, reading and ranking only those columns. The code's
   * indices are positions among the dead latents.
   */
  private selectDead(pre: Float32Array, batch: number, k: number, nDead: number, dead: Uint8Array,
    mode: SelectMode): { code: SparseCode; cols: Int32Array } {
    const m = this.cfg.d_sae;
    const cols = this.ws.int("aux_cols", nDead);
    const bias = this.ws.float("aux_bias", nDead);
    for (let j = 0, i = 0; j < m; j++) {
      if (!dead[j]) continue;
      cols[i] = j;
      bias[i++] = this.b_enc[j]!;
    }
    const code = this.codeBuffers("aux", batch, batch * k);
    fixedKRowPtr(batch, k, code.rowPtr);
    // Blocks of at most AUXK_BLOCK_FLOATS: with most latents dead, one block of all rows
    // would cost as much memory again as the pre-activations.
    const blockRows = Math.max(1, Math.min(batch, Math.floor(AUXK_BLOCK_FLOATS / nDead)));
    const block = this.ws.float("aux_pre", blockRows * nDead);
    for (let b0 = 0; b0 < batch; b0 += blockRows) {
      const rows = Math.min(blockRows, batch - b0);
      this.k.gatherColumns(pre.subarray(b0 * m), rows, m, cols, nDead, block);
      if (k < nDead) {
        this.k.topkRows(block, rows, nDead, k, mode, bias, code.val.subarray(b0 * k), code.idx.subarray(b0 * k));
        continue;
      }
      // Every dead latent is selected (the common case early on, with fewer dead than
      // aux_k): nothing to rank; the entries go in latent order, valued as selection does.
      for (let at = 0; at < rows * nDead; at++) {
        const i = at % nDead;
        const v = block[at]! + bias[i]!;
        code.idx[b0 * k + at] = i;
        code.val[b0 * k + at] = mode === SelectMode.Relu && !(v > 0) ? 0 : v;
      }
    }
    return { code, cols };
  }

  /**
   * AuxK's reconstruction and backward on the sparse kernels, for a code spread thinly over
   * many dead latents. Returns sum ||e_hat - e||^2; `scale` is dL/de_hat per unit of error.
   */
  private sparseAuxK(code: SparseCode, cols: Int32Array, e: Float32Array, xc: Float32Array, batch: number,
    scale: number, mode: SelectMode, grads: ParamSet): number {
    const d = this.cfg.d_in;
    for (let i = 0; i < nnz(code); i++) code.idx[i] = cols[code.idx[i]!]!;
    const eHat = this.ws.float("aux_e_hat", batch * d);
    const gEhat = this.ws.float("aux_g", batch * d);
    const gVal = this.ws.float("aux_g_val", nnz(code));
    const sumSq = this.k.sparseReconstruct(batch, code.rowPtr, code.idx, code.val, this.W_dec, d, null, e, scale,
      eHat, gEhat, gVal, grads.get("W_dec")!.data, true);
    this.backwardCode(code, gEhat, xc, mode, grads, true, "aux", gVal);
    return sumSq;
  }

  /**
   * The same on dense products over the dead latents, for a code that selects a good share
   * of them in every token (the usual case: a few hundred dead latents, aux_k = d_in / 2):
   * the code taken as one over the dead latents' decoder rows W_dec[dead] alone, decoded
   * and differentiated by the dense GEMM twins (dense-code.ts), and the rows' gradients
   * (W_dec's, W_enc's, b_enc's) added back to the dead latents'. Four GEMMs instead of four
   * passes that each gather a 2 KB row per entry.
   */
  private denseAuxK(code: SparseCode, cols: Int32Array, e: Float32Array, xc: Float32Array, batch: number,
    scale: number, mode: SelectMode, grads: ParamSet): number {
    const d = this.cfg.d_in;
    const n = cols.length;
    const rowsOf = this.ws.float("aux_dead_rows", n * d);
    for (let i = 0; i < n; i++) rowsOf.set(this.W_dec.subarray(cols[i]! * d, (cols[i]! + 1) * d), i * d);
    const overDead: SparseCode = { ...code, m: n };
    const eHat = this.ws.float("aux_e_hat", batch * d);
    const g = this.ws.float("aux_g", batch * d);
    const gVal = this.ws.float("aux_g_val", nnz(code));
    const rowGrads = this.ws.float("aux_dense_rows", n * d);
    const addRows = (into: Float32Array) => {
      for (let i = 0; i < n; i++) {
        const at = cols[i]! * d;
        for (let c = 0; c < d; c++) into[at + c]! += rowGrads[i * d + c]!;
      }
    };
    const sumSq = denseReconstruct(this.k, this.ws, overDead, rowsOf, d, null, e, scale, eHat, g, gVal, rowGrads, false);
    addRows(grads.get("W_dec")!.data);
    // dL/dpre where the ReLU passes it; then W_enc[dead] and b_enc[dead] through it.
    if (mode === SelectMode.Relu) for (let i = 0; i < gVal.length; i++) if (!(code.val[i]! > 0)) gVal[i] = 0;
    const sums = this.ws.float("aux_dense_sums", n);
    denseScatterRows(this.k, this.ws, overDead, gVal, xc, d, false, rowGrads, sums);
    addRows(grads.get("W_enc")!.data);
    const gb = grads.get("b_enc")!.data;
    for (let i = 0; i < n; i++) gb[cols[i]!]! += sums[i]!;
    return sumSq;
  }
}

/**
 * AuxK runs on dense products when each token selects at least one in this many of the
 * dead latents (aux_k >= nDead / 5): their cost grows with nDead, the sparse kernels' with
 * the entries; at 4096 x 16384, aux_k = 256, the two meet near 1500 dead latents (a step
 * with 768 dead: 580 ms dense, 710 sparse).
 */
const DENSE_AUXK_RATIO = 5;

/** The most floats a block of dead latents' pre-activations holds while AuxK selects (16 MB). */
const AUXK_BLOCK_FLOATS = 1 << 22;

/** The largest code, counted as [batch, dead] floats (64 MB), that AuxK hands to the dense products. */
const AUXK_DENSE_FLOATS = 1 << 24;
