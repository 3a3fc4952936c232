/**
 * Matryoshka BatchTopK SAE (Bussmann, Nabeshima, Karvonen & Nanda 2025, "Learning
 * Multi-Level Features with Matryoshka Sparse Autoencoders"; SAELens
 * "matryoshka_batchtopk", dictionary_learning MatryoshkaBatchTopKSAE).
 *
 * The latents are nested dictionaries: level i is the first matryoshka_widths[i] of them.
 * One BatchTopK selection picks the code f; each level reconstructs from its own prefix,
 *   x_hat_i = b_dec + sum_{j < width_i} f_j W_dec_j,
 *   loss    = sum_i w_i ||x - x_hat_i||^2 + AuxK,
 * so early latents must carry the broad, frequent directions on their own and cannot be
 * absorbed into the specific ones that come later. The last level is the full dictionary,
 * and inference is BatchTopK's (a JumpReLU at the learned threshold); saved in SAELens
 * format as "jumprelu", as SAELens saves it.
 *
 * The backward walks the levels from the widest down. Write G_i = dL/dx_hat_i =
 * (2 w_i / B)(x_hat_i - x); a latent of group g (widths[g-1] <= j < widths[g]) appears in
 * every level i >= g, so its entries see S_g = sum_{i >= g} G_i, the suffix sum built on the
 * way down. Each entry's gradients are therefore scattered once, against S of its group.
 */
import { SelectMode } from "../core/kernels.js";
import { BatchTopKSae } from "./batchtopk.js";
import type { MatryoshkaConfig } from "./config.js";
import { type ParamSet, type StepStats, type TrainStep, targetOf } from "./sae.js";
import type { SparseCode } from "./sparse-code.js";

export class MatryoshkaSae extends BatchTopKSae {
  declare readonly cfg: MatryoshkaConfig;

  protected override sparseLossAndGrad(s: TrainStep, grads: ParamSet): StepStats {
    const { d_in: d, matryoshka_widths: widths, level_weights: weights } = this.cfg;
    const B = s.batch;
    const n = B * d;
    const y = targetOf(s).subarray(0, n);
    const xc = this.centered(s.x, B);
    const pre = this.preActivations(xc, B);
    const code = this.selectBatchTopK(pre, B);
    const groups = this.splitByGroup(code);

    const xHat = this.decodeCode(code);
    const levelHat = this.ws.float("level_x_hat", n);
    levelHat.set(xHat);
    const suffix = this.ws.float("level_suffix_grad", n);
    const levelGrad = this.ws.float("level_grad", n);
    const part = this.ws.float("level_part", n);
    const ones = this.ws.float("level_ones", B).fill(1);
    const terms: Record<string, number> = {};
    let fullSumSq = 0;
    let loss = 0;
    for (let g = widths.length - 1; g >= 0; g--) {
      // levelHat = x_hat_g here; its gradient joins the suffix sum S_g.
      const sumSq = this.k.diffScaled(levelHat, y, levelGrad, (2 * weights[g]!) / B);
      if (g === widths.length - 1) {
        suffix.set(levelGrad);
        fullSumSq = sumSq;
      } else {
        this.k.addScaledRows(suffix, levelGrad, B, d, ones);
      }
      const term = (weights[g]! * sumSq) / B;
      terms[g === widths.length - 1 ? "mse" : `mse_w${widths[g]}`] = term;
      loss += term;
      // Group g's entries: the first group processed writes its gradients, later ones add.
      this.backwardCode(groups[g]!, suffix, xc, SelectMode.Relu, grads, g !== widths.length - 1, `group${g}`);
      if (g > 0) {
        this.k.sparseDecode(B, groups[g]!.rowPtr, groups[g]!.idx, groups[g]!.val, this.W_dec, d, null, part);
        this.k.diffScaled(levelHat, part, levelHat, 1); // x_hat_{g-1} = x_hat_g - group g's part
      }
    }
    const aux = this.auxK(this.cfg, y, xHat, pre, xc, B, s.dead, SelectMode.Relu, grads);
    terms.aux = aux;
    this.outputGrads(suffix, s, grads); // S_0: every level's dL/dx_hat summed
    return { loss: loss + aux, terms, sumSquaredError: fullSumSq, xHat, code };
  }

  /** The code split by matryoshka group (latents widths[g-1] <= j < widths[g]), one CSR code each. */
  private splitByGroup(code: SparseCode): SparseCode[] {
    const widths = this.cfg.matryoshka_widths;
    const G = widths.length;
    const groupOf = (j: number): number => {
      let g = 0;
      while (j >= widths[g]!) g++;
      return g;
    };
    const total = code.rowPtr[code.batch]!;
    const entryGroup = this.ws.int("group_of_entry", total);
    const counts = new Array<number>(G).fill(0);
    for (let e = 0; e < total; e++) counts[(entryGroup[e] = groupOf(code.idx[e]!))]!++;
    const groups = counts.map((c, g) => this.codeBuffers(`group${g}`, code.batch, Math.max(c, 1)));
    const fill = new Array<number>(G).fill(0);
    for (let b = 0; b < code.batch; b++) {
      for (let g = 0; g < G; g++) groups[g]!.rowPtr[b] = fill[g]!;
      for (let e = code.rowPtr[b]!; e < code.rowPtr[b + 1]!; e++) {
        const g = entryGroup[e]!;
        groups[g]!.idx[fill[g]!] = code.idx[e]!;
        groups[g]!.val[fill[g]!++] = code.val[e]!;
      }
    }
    for (let g = 0; g < G; g++) groups[g]!.rowPtr[code.batch] = fill[g]!;
    return groups;
  }
}

/**
 * The code restricted to latents below `width` (a new CSR code): decoding it gives a
 * Matryoshka level's reconstruction, the nested dictionary of that size on its own.
 */
export function prefixCode(code: SparseCode, width: number): SparseCode {
  const total = code.rowPtr[code.batch]!;
  const rowPtr = new Int32Array(code.batch + 1);
  const idx = new Int32Array(total);
  const val = new Float32Array(total);
  let n = 0;
  for (let b = 0; b < code.batch; b++) {
    for (let e = code.rowPtr[b]!; e < code.rowPtr[b + 1]!; e++) {
      if (code.idx[e]! < width) {
        idx[n] = code.idx[e]!;
        val[n++] = code.val[e]!;
      }
    }
    rowPtr[b + 1] = n;
  }
  return { batch: code.batch, m: code.m, rowPtr, idx: idx.subarray(0, n), val: val.subarray(0, n) };
}
