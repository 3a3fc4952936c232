/**
 * TypeScript reference twins of the native kernels: the plainest loops that compute the
 * same thing, accumulating in float64. The tests hold the native kernels to these, and
 * saekit runs on them when the addon is not built. Keep them obviously correct, not fast.
 */
import { type Kernels, SelectMode } from "./kernel-api.js";
import { counterNormal } from "./rng.js";

function need(arr: { length: number }, n: number, name: string): void {
  if (arr.length < n) throw new RangeError(`${name}: needs ${n} elements, has ${arr.length}`);
}

function checkCsr(rowPtr: Int32Array, idx: Int32Array, batch: number, m: number): void {
  need(rowPtr, batch + 1, "rowPtr");
  if (rowPtr[0] !== 0) throw new RangeError("rowPtr[0] must be 0");
  for (let b = 0; b < batch; b++) {
    if (rowPtr[b + 1]! < rowPtr[b]!) throw new RangeError("rowPtr must be non-decreasing");
  }
  need(idx, rowPtr[batch]!, "idx");
  for (let e = 0; e < rowPtr[batch]!; e++) {
    if (idx[e]! < 0 || idx[e]! >= m) throw new RangeError(`idx[${e}] = ${idx[e]} is outside [0, ${m})`);
  }
}

/** The ranking key of a value: itself or its magnitude; NaN ranks below everything. */
export function selectKey(v: number, mode: SelectMode): number {
  if (Number.isNaN(v)) return -Infinity;
  return mode === SelectMode.Abs ? Math.abs(v) : v;
}

/** The value top-k outputs for a selected entry. */
export function selectOutput(v: number, mode: SelectMode): number {
  return mode === SelectMode.Relu ? (v > 0 ? v : 0) : v;
}

/** Orders (key, index) pairs best-first: key descending, then index ascending. */
function byRank(keys: ArrayLike<number>): (a: number, b: number) => number {
  return (a, b) => (keys[b]! - keys[a]!) || (a - b);
}

export const referenceKernels: Kernels = Object.freeze({
  kind: "reference" as const,

  sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number,
    C: Float32Array, ldc: number): void {
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          const a = transA ? A[k * lda + i]! : A[i * lda + k]!;
          const b = transB ? B[j * ldb + k]! : B[k * ldb + j]!;
          acc += a * b;
        }
        const c = i * ldc + j;
        C[c] = alpha * acc + (beta === 0 ? 0 : beta * C[c]!);
      }
    }
  },

  topkRows(x: Float32Array, batch: number, m: number, k: number, mode: SelectMode,
    bias: Float32Array | null, vals: Float32Array, idx: Int32Array): void {
    if (k > m) throw new RangeError("topk: k must be <= m");
    need(x, batch * m, "x");
    const v = new Float32Array(m);
    const keys = new Float64Array(m);
    const order = Array.from({ length: m }, (_, j) => j);
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < m; j++) {
        v[j] = x[b * m + j]! + (bias ? bias[j]! : 0);
        keys[j] = selectKey(v[j]!, mode);
      }
      order.sort(byRank(keys));
      for (let i = 0; i < k; i++) {
        idx[b * k + i] = order[i]!;
        vals[b * k + i] = selectOutput(v[order[i]!]!, mode);
      }
      for (let j = 0; j < m; j++) order[j] = j;
    }
  },

  batchTopk(x: Float32Array, batch: number, m: number, kTotal: number, mode: SelectMode,
    bias: Float32Array | null, rowPtr: Int32Array, idx: Int32Array, vals: Float32Array): number {
    const total = batch * m;
    need(x, total, "x");
    const v = new Float32Array(total);
    const keys = new Float64Array(total);
    for (let i = 0; i < total; i++) {
      v[i] = x[i]! + (bias ? bias[i % m]! : 0);
      keys[i] = selectKey(v[i]!, mode);
    }
    const order = Array.from({ length: total }, (_, i) => i).sort(byRank(keys));
    const chosen = order.slice(0, Math.min(kTotal, total)).sort((a, b) => a - b);
    let nnz = 0;
    rowPtr.fill(0, 0, batch + 1);
    for (const flat of chosen) {
      const out = selectOutput(v[flat]!, mode);
      if (out === 0) continue;
      const row = Math.floor(flat / m);
      idx[nnz] = flat - row * m;
      vals[nnz] = out;
      rowPtr[row + 1]!++;
      nnz++;
    }
    for (let b = 0; b < batch; b++) rowPtr[b + 1]! += rowPtr[b]!;
    return nnz;
  },

  thresholdSelect(x: Float32Array, batch: number, m: number, bias: Float32Array | null,
    threshold: Float32Array | null, rowPtr: Int32Array, idx: Int32Array, vals: Float32Array): number {
    need(x, batch * m, "x");
    const capacity = Math.min(idx.length, vals.length);
    let nnz = 0;
    rowPtr[0] = 0;
    for (let b = 0; b < batch; b++) {
      for (let j = 0; j < m; j++) {
        const v = Math.fround(x[b * m + j]! + (bias ? bias[j]! : 0));
        if (v > (threshold ? threshold[j]! : 0)) {
          if (nnz < capacity) {
            idx[nnz] = j;
            vals[nnz] = v;
          }
          nnz++;
        }
      }
      rowPtr[b + 1] = nnz;
    }
    return nnz;
  },

  fillNormal(out: Float32Array, seed: number, stream: number, offset: number): void {
    if (offset % 2 !== 0) throw new RangeError("fillNormal: offset must be even");
    for (let i = 0; i < out.length; i++) out[i] = counterNormal(seed, stream, offset + i);
  },

  sampleLatents(pre: Float32Array, batch: number, m: number, bias: Float32Array | null,
    relu: boolean, logvar: Float32Array | null, noiseScale: number, seed: number,
    stream: number, z: Float32Array): number {
    let sumSq = 0;
    for (let i = 0; i < batch * m; i++) {
      let mu = Math.fround(pre[i]! + (bias ? bias[i % m]! : 0));
      if (relu && mu < 0) mu = 0;
      sumSq += mu * mu;
      const sigma = logvar ? Math.exp(0.5 * logvar[i]!) : 1;
      z[i] = noiseScale === 0 ? mu : mu + noiseScale * sigma * counterNormal(seed, stream, i);
    }
    return sumSq;
  },

  biasAct(x: Float32Array, batch: number, m: number, bias: Float32Array | null, relu: boolean,
    scale: number, out: Float32Array): void {
    for (let i = 0; i < batch * m; i++) {
      const v = Math.fround(x[i]! + (bias ? bias[i % m]! : 0));
      out[i] = scale * (relu && v < 0 ? 0 : v);
    }
  },

  sparseDecode(batch: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array,
    W: Float32Array, d: number, bias: Float32Array | null, out: Float32Array): void {
    checkCsr(rowPtr, idx, batch, Math.floor(W.length / d));
    need(out, batch * d, "out");
    const acc = new Float64Array(d);
    for (let b = 0; b < batch; b++) {
      for (let c = 0; c < d; c++) acc[c] = bias ? bias[c]! : 0;
      for (let e = rowPtr[b]!; e < rowPtr[b + 1]!; e++) {
        const base = idx[e]! * d;
        for (let c = 0; c < d; c++) acc[c]! += val[e]! * W[base + c]!;
      }
      for (let c = 0; c < d; c++) out[b * d + c] = acc[c]!;
    }
  },

  sparseRowDots(batch: number, rowPtr: Int32Array, idx: Int32Array, G: Float32Array,
    W: Float32Array, d: number, out: Float32Array): void {
    checkCsr(rowPtr, idx, batch, Math.floor(W.length / d));
    for (let b = 0; b < batch; b++) {
      for (let e = rowPtr[b]!; e < rowPtr[b + 1]!; e++) {
        let s = 0;
        for (let c = 0; c < d; c++) s += G[b * d + c]! * W[idx[e]! * d + c]!;
        out[e] = s;
      }
    }
  },

  sparseReconstruct(batch: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array,
    W: Float32Array, d: number, bias: Float32Array | null, x: Float32Array, scale: number,
    xHat: Float32Array, g: Float32Array, dval: Float32Array): number {
    this.sparseDecode(batch, rowPtr, idx, val, W, d, bias, xHat);
    const sumSq = this.diffScaled(xHat.subarray(0, batch * d), x.subarray(0, batch * d), g, scale);
    this.sparseRowDots(batch, rowPtr, idx, g, W, d, dval);
    return sumSq;
  },

  sparseTranspose(batch: number, rowPtr: Int32Array, idx: Int32Array, m: number,
    colPtr: Int32Array, entries: Int32Array, entryRow: Int32Array): void {
    checkCsr(rowPtr, idx, batch, m);
    const lists: number[][] = Array.from({ length: m }, () => []);
    for (let b = 0; b < batch; b++) {
      for (let e = rowPtr[b]!; e < rowPtr[b + 1]!; e++) {
        lists[idx[e]!]!.push(e);
        entryRow[e] = b;
      }
    }
    let p = 0;
    for (let r = 0; r < m; r++) {
      colPtr[r] = p;
      for (const e of lists[r]!) entries[p++] = e;
    }
    colPtr[m] = p;
  },

  sparseScatterRows(m: number, colPtr: Int32Array, entries: Int32Array, entryRow: Int32Array,
    coef: Float32Array, X: Float32Array, d: number, accumulate: boolean, out: Float32Array,
    coefSum: Float32Array | null): void {
    need(out, m * d, "out");
    const acc = new Float64Array(d);
    for (let r = 0; r < m; r++) {
      for (let c = 0; c < d; c++) acc[c] = accumulate ? out[r * d + c]! : 0;
      let s = accumulate && coefSum ? coefSum[r]! : 0;
      for (let p = colPtr[r]!; p < colPtr[r + 1]!; p++) {
        const e = entries[p]!;
        const base = entryRow[e]! * d;
        for (let c = 0; c < d; c++) acc[c]! += coef[e]! * X[base + c]!;
        s += coef[e]!;
      }
      for (let c = 0; c < d; c++) out[r * d + c] = acc[c]!;
      if (coefSum) coefSum[r] = s;
    }
  },

  adamUpdate(param: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array,
    lr: number, beta1: number, beta2: number, eps: number, bias1: number, bias2: number,
    weightDecay: number): void {
    const n = param.length;
    need(grad, n, "grad");
    for (let i = 0; i < n; i++) {
      const g = grad[i]!;
      m[i] = beta1 * m[i]! + (1 - beta1) * g;
      v[i] = beta2 * v[i]! + (1 - beta2) * g * g;
      const denom = Math.sqrt(v[i]!) / Math.sqrt(bias2) + eps;
      param[i] = param[i]! * (1 - lr * weightDecay) - (lr / bias1) * (m[i]! / denom);
    }
  },

  sumSquares(x: Float32Array): number {
    let s = 0;
    for (let i = 0; i < x.length; i++) s += x[i]! * x[i]!;
    return s;
  },

  dot(a: Float32Array, b: Float32Array): number {
    if (a.length !== b.length) throw new RangeError("dot: lengths differ");
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
    return s;
  },

  scale(x: Float32Array, s: number): void {
    for (let i = 0; i < x.length; i++) x[i]! *= s;
  },

  diffScaled(a: Float32Array, b: Float32Array, out: Float32Array, s: number): number {
    let total = 0;
    for (let i = 0; i < a.length; i++) {
      const diff = a[i]! - b[i]!;
      total += diff * diff;
      out[i] = s * diff;
    }
    return total;
  },

  rowNorms(X: Float32Array, rows: number, cols: number, out: Float32Array): void {
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < cols; c++) s += X[r * cols + c]! ** 2;
      out[r] = Math.sqrt(s);
    }
  },

  scaleRows(X: Float32Array, rows: number, cols: number, scales: Float32Array): void {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) X[r * cols + c]! *= scales[r]!;
  },

  addScaledRows(G: Float32Array, W: Float32Array, rows: number, cols: number, scales: Float32Array): void {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) G[r * cols + c]! += scales[r]! * W[r * cols + c]!;
  },

  removeParallelComponent(W: Float32Array, G: Float32Array, rows: number, cols: number): void {
    for (let r = 0; r < rows; r++) {
      let gw = 0;
      let ww = 0;
      for (let c = 0; c < cols; c++) {
        gw += G[r * cols + c]! * W[r * cols + c]!;
        ww += W[r * cols + c]! ** 2;
      }
      if (ww <= 0) continue;
      for (let c = 0; c < cols; c++) G[r * cols + c]! -= (gw / ww) * W[r * cols + c]!;
    }
  },

  colSums(X: Float32Array, rows: number, cols: number, out: Float32Array, accumulate: boolean): void {
    for (let c = 0; c < cols; c++) {
      let s = accumulate ? out[c]! : 0;
      for (let r = 0; r < rows; r++) s += X[r * cols + c]!;
      out[c] = s;
    }
  },

  addRowVector(X: Float32Array, rows: number, cols: number, bias: Float32Array): void {
    for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) X[r * cols + c]! += bias[c]!;
  },
});
