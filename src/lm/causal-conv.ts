/**
 * The backward of the kernels' causalConv from no history, which the token mixers other than
 * attention share (Gated DeltaNet, Mamba-2, LFM2's short convolution): row t of each sequence's
 * output read input rows t - (kernel - 1) + j with tap j, so each input row's gradient is the
 * taps' sum of the output gradients that read it.
 */

/**
 * Adds d loss / d the input to dIn (row r's channels at r * stride + offset), from
 * dOut [batch * seq, channels] = d loss / d the output and the taps w [channels, kernel].
 */
export function causalConvInputGrad(dOut: Float32Array, batch: number, seq: number, channels: number, kernel: number, w: Float32Array,
  dIn: Float32Array, stride: number, offset: number): void {
  // The taps as [kernel, channels], so the inner loop runs along contiguous channels.
  const taps = new Float32Array(kernel * channels);
  for (let c = 0; c < channels; c++) for (let j = 0; j < kernel; j++) taps[j * channels + c] = w[c * kernel + j]!;
  for (let b = 0; b < batch; b++) {
    for (let t = 0; t < seq; t++) {
      const from = (b * seq + t) * channels;
      for (let j = 0; j < kernel; j++) {
        const src = t - (kernel - 1) + j;
        if (src < 0) continue;
        const into = (b * seq + src) * stride + offset, tap = j * channels;
        for (let c = 0; c < channels; c++) dIn[into + c]! += taps[tap + c]! * dOut[from + c]!;
      }
    }
  }
}
