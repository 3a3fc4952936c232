/**
 * A batch of sparse latent codes in CSR form: row b holds entries e in
 * [rowPtr[b], rowPtr[b+1]) with latent idx[e] and value val[e]. TopK codes have exactly k
 * entries per row (some may be 0 after the ReLU); BatchTopK, ReLU and JumpReLU codes
 * have a variable number. Every sparse kernel (decode, backward) consumes this form.
 */

export interface SparseCode {
  batch: number;
  /** Number of latents (d_sae). */
  m: number;
  rowPtr: Int32Array;
  idx: Int32Array;
  val: Float32Array;
}

export function nnz(code: SparseCode): number {
  return code.rowPtr[code.batch]!;
}

/** A fixed-k code over preallocated arrays (rowPtr[b] = b * k). */
export function fixedKRowPtr(batch: number, k: number, out?: Int32Array): Int32Array {
  const rowPtr = out && out.length >= batch + 1 ? out.subarray(0, batch + 1) : new Int32Array(batch + 1);
  for (let b = 0; b <= batch; b++) rowPtr[b] = b * k;
  return rowPtr;
}

/** Mean number of non-zero entries per row (L0 as f != 0, right for signed codes). */
export function meanL0(code: SparseCode): number {
  let count = 0;
  const n = nnz(code);
  for (let e = 0; e < n; e++) if (code.val[e] !== 0) count++;
  return code.batch === 0 ? 0 : count / code.batch;
}

/** Marks every latent with a non-zero value somewhere in the batch. */
export function markFired(code: SparseCode, fired: Uint8Array): Uint8Array {
  const n = nnz(code);
  for (let e = 0; e < n; e++) if (code.val[e] !== 0) fired[code.idx[e]!] = 1;
  return fired;
}

/** The dense [batch, m] matrix of a code (for small batches: tests, analysis). */
export function toDense(code: SparseCode): Float32Array {
  const out = new Float32Array(code.batch * code.m);
  for (let b = 0; b < code.batch; b++) {
    for (let e = code.rowPtr[b]!; e < code.rowPtr[b + 1]!; e++) out[b * code.m + code.idx[e]!] = code.val[e]!;
  }
  return out;
}

/** A code from a dense [batch, m] matrix, keeping the non-zero entries. */
export function fromDense(dense: Float32Array, batch: number, m: number): SparseCode {
  const rowPtr = new Int32Array(batch + 1);
  const idx: number[] = [];
  const val: number[] = [];
  for (let b = 0; b < batch; b++) {
    for (let j = 0; j < m; j++) {
      const v = dense[b * m + j]!;
      if (v !== 0) {
        idx.push(j);
        val.push(v);
      }
    }
    rowPtr[b + 1] = idx.length;
  }
  return { batch, m, rowPtr, idx: Int32Array.from(idx), val: Float32Array.from(val) };
}
