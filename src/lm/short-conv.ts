/**
 * LFM2's short convolution (Liquid AI's LFM2; modeling_lfm2.py's Lfm2ShortConv), the token mixer
 * of most of its layers in place of attention. From the normed stream h_t it projects three
 * gates, convolves one gated copy causally over the last few tokens, and gates the result:
 *
 *   [B; C; x] = W_in h_t,   y_t = C_t * sum_j w[:, j] (B * x)_{t - (K - 1) + j},   out_t = W_out y_t
 *
 * (each channel its own kernel of K taps, the first K - 1 inputs zero). The convolution's last
 * K - 1 inputs carry over in the cache for generation.
 */
import type { Kernels } from "../core/kernels.js";
import { causalConvInputGrad } from "./causal-conv.js";
import type { WeightMatrix } from "./model.js";

export interface ShortConvWeights {
  /** [3 dModel, dModel]: B, C and x (in_proj). */
  win: WeightMatrix;
  /** [dModel, kernel]: each channel's taps (conv.weight). */
  conv: Float32Array;
  /** [dModel, dModel] (out_proj). */
  wout: WeightMatrix;
}

/** The convolution's input B * x [rows, d], from bcx [rows, 3 d]. */
function gatedInput(bcx: Float32Array, rows: number, d: number): Float32Array {
  const bx = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) bx[r * d + c] = bcx[r * 3 * d + c]! * bcx[r * 3 * d + 2 * d + c]!;
  return bx;
}

/**
 * y [rows, d] (what out_proj reads) from bcx [rows, 3 d] = W_in h of `seq` new tokens per
 * sequence; `history` [batch, kernel - 1, d] holds the sequences' last inputs to the
 * convolution (zeros: none) and is advanced past these tokens.
 */
export function shortConvMix(k: Kernels, d: number, kernel: number, batch: number, seq: number, conv: Float32Array, bcx: Float32Array,
  history: Float32Array): Float32Array {
  const rows = batch * seq;
  const bx = gatedInput(bcx, rows, d);
  const y = new Float32Array(rows * d);
  k.causalConv(bx, batch, seq, d, kernel, conv, history, false, y);
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) y[r * d + c]! *= bcx[r * 3 * d + d + c]!;
  return y;
}

/**
 * d loss / d bcx [rows, 3 d] from d loss / d y (shortConvMix from no past): with s the
 * convolution's output, dC = dy s, ds = dy C, d(Bx) at each input = the taps' sum of the ds
 * that read it, dB = d(Bx) x, dx = d(Bx) B.
 */
export function shortConvBackward(k: Kernels, d: number, kernel: number, batch: number, seq: number, conv: Float32Array, bcx: Float32Array,
  dy: Float32Array): Float32Array {
  const rows = batch * seq, K = kernel;
  const bx = gatedInput(bcx, rows, d);
  const s = new Float32Array(rows * d);
  k.causalConv(bx, batch, seq, d, K, conv, new Float32Array(batch * (K - 1) * d), false, s);
  const dBcx = new Float32Array(rows * 3 * d);
  const ds = new Float32Array(rows * d), dBx = new Float32Array(rows * d);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < d; c++) {
      const g = dy[r * d + c]!;
      dBcx[r * 3 * d + d + c] = g * s[r * d + c]!;
      ds[r * d + c] = g * bcx[r * 3 * d + d + c]!;
    }
  }
  causalConvInputGrad(ds, batch, seq, d, K, conv, dBx, d, 0);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < d; c++) {
      dBcx[r * 3 * d + c] = dBx[r * d + c]! * bcx[r * 3 * d + 2 * d + c]!;
      dBcx[r * 3 * d + 2 * d + c] = dBx[r * d + c]! * bcx[r * 3 * d + c]!;
    }
  }
  return dBcx;
}
