/**
 * The sparse kernels of the TypeScript kernels (the TopK SAE's decode and its backward
 * products): the reference twins' sums, in the reference's order, four latents at a time.
 * Each pass over a row of d floats then does four multiply-adds per accumulator load and
 * store instead of one, which is where the reference spends its time. Per output element
 * the terms are added one by one in the reference's order, in a double, so the results are
 * the reference's to the bit.
 */
import { checkCsr, need } from "./reference.js";

/** out[b] = bias + sum_e val[e] * W[idx[e]]  (W [m, d]). */
export function sparseDecodeRows(batch: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array,
  W: Float32Array, d: number, bias: Float32Array | null, out: Float32Array): void {
  checkCsr(rowPtr, idx, batch, Math.floor(W.length / d));
  need(out, batch * d, "out");
  const acc = new Float64Array(d);
  for (let b = 0; b < batch; b++) {
    if (bias) acc.set(bias.subarray(0, d));
    else acc.fill(0);
    const end = rowPtr[b + 1]!;
    let e = rowPtr[b]!;
    for (; e + 4 <= end; e += 4) {
      const v0 = val[e]!, v1 = val[e + 1]!, v2 = val[e + 2]!, v3 = val[e + 3]!;
      const w0 = idx[e]! * d, w1 = idx[e + 1]! * d, w2 = idx[e + 2]! * d, w3 = idx[e + 3]! * d;
      for (let c = 0; c < d; c++) acc[c] = acc[c]! + v0 * W[w0 + c]! + v1 * W[w1 + c]! + v2 * W[w2 + c]! + v3 * W[w3 + c]!;
    }
    for (; e < end; e++) {
      const v = val[e]!, w = idx[e]! * d;
      for (let c = 0; c < d; c++) acc[c] = acc[c]! + v * W[w + c]!;
    }
    out.set(acc, b * d);
  }
}

/** out[e] = dot(G[b(e)], W[idx[e]]). */
export function sparseRowDotsBlocked(batch: number, rowPtr: Int32Array, idx: Int32Array, G: Float32Array,
  W: Float32Array, d: number, out: Float32Array): void {
  checkCsr(rowPtr, idx, batch, Math.floor(W.length / d));
  for (let b = 0; b < batch; b++) {
    const g = b * d, end = rowPtr[b + 1]!;
    let e = rowPtr[b]!;
    for (; e + 4 <= end; e += 4) {
      const w0 = idx[e]! * d, w1 = idx[e + 1]! * d, w2 = idx[e + 2]! * d, w3 = idx[e + 3]! * d;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      for (let c = 0; c < d; c++) {
        const x = G[g + c]!;
        s0 += x * W[w0 + c]!; s1 += x * W[w1 + c]!; s2 += x * W[w2 + c]!; s3 += x * W[w3 + c]!;
      }
      out[e] = s0; out[e + 1] = s1; out[e + 2] = s2; out[e + 3] = s3;
    }
    for (; e < end; e++) {
      const w = idx[e]! * d;
      let s = 0;
      for (let c = 0; c < d; c++) s += G[g + c]! * W[w + c]!;
      out[e] = s;
    }
  }
}

/**
 * out[r] (+)= sum over entries e of latent r of coef[e] * X[b(e)]; coefSum[r] (+)= sum of
 * coef[e] (kernel-api.ts).
 */
export function sparseScatterRowsBlocked(m: number, colPtr: Int32Array, entries: Int32Array, entryRow: Int32Array,
  coef: Float32Array, X: Float32Array, d: number, accumulate: boolean, out: Float32Array,
  coefSum: Float32Array | null): void {
  need(out, m * d, "out");
  const acc = new Float64Array(d);
  for (let r = 0; r < m; r++) {
    const row = r * d, end = colPtr[r + 1]!;
    if (accumulate) for (let c = 0; c < d; c++) acc[c] = out[row + c]!;
    else acc.fill(0);
    let s = accumulate && coefSum ? coefSum[r]! : 0;
    let p = colPtr[r]!;
    for (; p + 4 <= end; p += 4) {
      const e0 = entries[p]!, e1 = entries[p + 1]!, e2 = entries[p + 2]!, e3 = entries[p + 3]!;
      const k0 = coef[e0]!, k1 = coef[e1]!, k2 = coef[e2]!, k3 = coef[e3]!;
      const x0 = entryRow[e0]! * d, x1 = entryRow[e1]! * d, x2 = entryRow[e2]! * d, x3 = entryRow[e3]! * d;
      for (let c = 0; c < d; c++) acc[c] = acc[c]! + k0 * X[x0 + c]! + k1 * X[x1 + c]! + k2 * X[x2 + c]! + k3 * X[x3 + c]!;
      s = s + k0 + k1 + k2 + k3;
    }
    for (; p < end; p++) {
      const e = entries[p]!, k = coef[e]!, x = entryRow[e]! * d;
      for (let c = 0; c < d; c++) acc[c] = acc[c]! + k * X[x + c]!;
      s += k;
    }
    out.set(acc, row);
    if (coefSum) coefSum[r] = s;
  }
}
