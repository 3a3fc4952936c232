/**
 * Causal attention for the TypeScript kernels: the reference twin's arithmetic in an order
 * the cache likes. The reference sums each output channel over the positions with a stride
 * of a whole row between terms; here each position's value row is read once, contiguously,
 * into per-channel sums. Every sum still runs over the positions in order, in a double, so
 * the results are the reference's to the bit (kernel-api.ts has the contract).
 */
import { capLogit } from "./reference.js";

/**
 * One query's logits against n keys (key row j at kBase + j * kStride): four keys at a
 * time, each dot product summed over the channels in order, then scaled and capped.
 */
function queryKeyLogits(q: Float32Array, qa: number, keys: Float32Array, kBase: number, kStride: number, n: number,
  headDim: number, scale: number, softcap: number, scores: Float64Array): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const k0 = kBase + j * kStride, k1 = k0 + kStride, k2 = k1 + kStride, k3 = k2 + kStride;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let c = 0; c < headDim; c++) {
      const x = q[qa + c]!;
      s0 += x * keys[k0 + c]!; s1 += x * keys[k1 + c]!; s2 += x * keys[k2 + c]!; s3 += x * keys[k3 + c]!;
    }
    scores[j] = s0 * scale; scores[j + 1] = s1 * scale; scores[j + 2] = s2 * scale; scores[j + 3] = s3 * scale;
  }
  for (; j < n; j++) {
    const k = kBase + j * kStride;
    let s = 0;
    for (let c = 0; c < headDim; c++) s += q[qa + c]! * keys[k + c]!;
    scores[j] = s * scale;
  }
  if (softcap > 0) for (let t = 0; t < n; t++) scores[t] = capLogit(scores[t]!, softcap);
}

/**
 * One query's softmax-weighted sum of value rows: scores[0..n) are its logits, value row j
 * starts at vBase + j * vStride; the result, divided by the weights' sum, goes to out[o..).
 */
function weightedValues(scores: Float64Array, n: number, values: Float32Array, vBase: number, vStride: number,
  headDim: number, acc: Float64Array, out: Float32Array, o: number): void {
  let mx = -Infinity;
  for (let j = 0; j < n; j++) mx = Math.max(mx, scores[j]!);
  let sum = 0;
  for (let j = 0; j < n; j++) sum += (scores[j] = Math.exp(scores[j]! - mx));
  acc.fill(0, 0, headDim);
  for (let j = 0; j < n; j++) {
    const w = scores[j]!;
    const v = vBase + j * vStride;
    for (let c = 0; c < headDim; c++) acc[c] += w * values[v + c]!;
  }
  for (let c = 0; c < headDim; c++) out[o + c] = acc[c]! / sum;
}

export function causalAttentionRows(qkv: Float32Array, batch: number, seq: number, rowStride: number, qOffset: number,
  kOffset: number, vOffset: number, heads: number, kvHeads: number, headDim: number, scale: number,
  softcap: number, out: Float32Array): void {
  const group = heads / kvHeads;
  const scores = new Float64Array(seq);
  const acc = new Float64Array(headDim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const kBase = b * seq * rowStride + kOffset + g * headDim;
      for (let i = 0; i < seq; i++) {
        const q = (b * seq + i) * rowStride + qOffset + h * headDim;
        queryKeyLogits(qkv, q, qkv, kBase, rowStride, i + 1, headDim, scale, softcap, scores);
        weightedValues(scores, i + 1, qkv, b * seq * rowStride + vOffset + g * headDim, rowStride, headDim, acc,
          out, (b * seq + i) * heads * headDim + h * headDim);
      }
    }
  }
}

export function cachedAttentionRows(q: Float32Array, qStride: number, qOffset: number, batch: number, n: number, pos0: number,
  kCache: Float32Array, vCache: Float32Array, cacheLen: number, heads: number, kvHeads: number,
  headDim: number, scale: number, softcap: number, out: Float32Array): void {
  const group = heads / kvHeads;
  const kvStride = kvHeads * headDim;
  const scores = new Float64Array(pos0 + n);
  const acc = new Float64Array(headDim);
  for (let b = 0; b < batch; b++) {
    for (let h = 0; h < heads; h++) {
      const g = Math.floor(h / group);
      const base = b * cacheLen * kvStride + g * headDim;
      for (let i = 0; i < n; i++) {
        const qa = (b * n + i) * qStride + qOffset + h * headDim;
        const last = pos0 + i;
        queryKeyLogits(q, qa, kCache, base, kvStride, last + 1, headDim, scale, softcap, scores);
        weightedValues(scores, last + 1, vCache, base, kvStride, headDim, acc, out, (b * n + i) * heads * headDim + h * headDim);
      }
    }
  }
}
