import type { ParamSet } from "./sae.js";

/**
 * Folds decoder norms into an SAE's weights. dictionary_learning (JumpReLU, gated) and
 * SAELens (TopK trained with rescale_acts_by_decoder_norm) compute codes multiplied by the
 * decoder norms n_j and divide them out again to decode. Scaling W_enc row j and the listed
 * per-latent biases by n_j, and W_dec row j by 1 / n_j, gives the same codes and
 * reconstructions in saekit's plain form. Returns the norms (1 for an all-zero row).
 */
export function foldDecoderNorms(params: ParamSet, biases: string[]): Float32Array {
  const W_enc = params.get("W_enc")!;
  const W_dec = params.get("W_dec")!;
  const [m, d] = W_dec.shape as [number, number];
  const norms = new Float32Array(m);
  for (let j = 0; j < m; j++) {
    let sq = 0;
    for (let i = 0; i < d; i++) sq += W_dec.data[j * d + i]! ** 2;
    const n = Math.sqrt(sq) || 1;
    norms[j] = n;
    for (let i = 0; i < d; i++) {
      W_enc.data[j * d + i]! *= n;
      W_dec.data[j * d + i]! /= n;
    }
    for (const b of biases) params.get(b)!.data[j]! *= n;
  }
  return norms;
}
