/**
 * TypeScript reference twins of the native kernels: the plainest loops that compute the
 * same thing, accumulating in float64. The tests hold the native kernels to these, and
 * saekit runs on them when the addon is not built. Keep them obviously correct, not fast.
 */
import { sgemmBf16BVia, sgemmBf16Via } from "./bf16.js";
import { Activation, type Kernels, RotaryStyle, SelectMode } from "./kernel-api.js";
import { QuadTree } from "./quadtree.js";
import { counterNormal } from "./rng.js";

export function need(arr: { length: number }, n: number, name: string): void {
  if (arr.length < n) throw new RangeError(`${name}: needs ${n} elements, has ${arr.length}`);
}

/**
 * erfc(x) to ~1e-12 in double, from its definitions rather than a fitted approximation:
 * the Maclaurin series of erf below |x| = 3, Laplace's continued fraction above.
 */
export function erfc(x: number): number {
  const z = Math.abs(x);
  let r: number;
  if (z < 3) {
    // erf(z) = 2/sqrt(pi) sum_n (-1)^n z^(2n+1) / (n! (2n+1))
    let term = z;
    let sum = z;
    for (let n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-z * z) / n;
      sum += term / (2 * n + 1);
    }
    r = 1 - (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    // erfc(z) = exp(-z^2)/sqrt(pi) / (z + (1/2)/(z + 1/(z + (3/2)/(z + 2/(z + ...))))), from the tail.
    let f = z;
    for (let n = 60; n >= 1; n--) f = z + n / 2 / f;
    r = Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
  }
  return x >= 0 ? r : 2 - r;
}

function logSumExp(x: Float32Array, offset: number, n: number): number {
  let mx = -Infinity;
  for (let j = 0; j < n; j++) mx = Math.max(mx, x[offset + j]!);
  let s = 0;
  for (let j = 0; j < n; j++) s += Math.exp(x[offset + j]! - mx);
  return mx + Math.log(s);
}

export function checkCsr(rowPtr: Int32Array, idx: Int32Array, batch: number, m: number): void {
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

  sgemmBf16B(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Uint16Array, ldb: number, beta: number,
    C: Float32Array, ldc: number, bf16Precision = false): void {
    sgemmBf16BVia(referenceKernels.sgemm)(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bf16Precision);
  },

  sgemmBf16(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number,
    C: Float32Array, ldc: number): void {
    sgemmBf16Via(referenceKernels.sgemm)(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
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

  groupMaxRows(x: Float32Array, batch: number, m: number, groups: number, mode: SelectMode,
    bias: Float32Array | null, vals: Float32Array, idx: Int32Array): void {
    if (!(groups >= 1 && m % groups === 0)) throw new RangeError("groupmax: m must split into groups of equal size");
    need(x, batch * m, "x");
    const size = m / groups;
    // x + bias rounded to float32, as the native kernel adds them.
    const value = (b: number, j: number) => Math.fround(x[b * m + j]! + (bias ? bias[j]! : 0));
    for (let b = 0; b < batch; b++) {
      for (let g = 0; g < groups; g++) {
        let at = g * size;
        let best = selectKey(value(b, at), mode);
        for (let j = at + 1; j < (g + 1) * size; j++) {
          const key = selectKey(value(b, j), mode);
          if (key > best) {
            best = key;
            at = j;
          }
        }
        idx[b * groups + g] = at;
        vals[b * groups + g] = selectOutput(value(b, at), mode);
      }
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
    xHat: Float32Array, g: Float32Array, dval: Float32Array,
    gW: Float32Array | null = null, accumulate = false): number {
    this.sparseDecode(batch, rowPtr, idx, val, W, d, bias, xHat);
    const sumSq = this.diffScaled(xHat.subarray(0, batch * d), x.subarray(0, batch * d), g, scale);
    this.sparseRowDots(batch, rowPtr, idx, g, W, d, dval);
    if (gW) {
      const m = Math.floor(W.length / d);
      const n = rowPtr[batch]!;
      const colPtr = new Int32Array(m + 1), entries = new Int32Array(n), entryRow = new Int32Array(n);
      this.sparseTranspose(batch, rowPtr, idx, m, colPtr, entries, entryRow);
      this.sparseScatterRows(m, colPtr, entries, entryRow, val, g, d, accumulate, gW, null);
    }
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

  scheduleFreeSignUpdate(param: Float32Array, grad: Float32Array, z: Float32Array, x: Float32Array,
    lr: number, weightDecay: number, averageWeight: number, momentum: number): void {
    const n = param.length;
    need(grad, n, "grad");
    need(z, n, "z");
    need(x, n, "x");
    for (let i = 0; i < n; i++) {
      z[i] = z[i]! - lr * weightDecay * param[i]! - lr * Math.sign(grad[i]!);
      x[i] = x[i]! + averageWeight * (z[i]! - x[i]!);
      param[i] = x[i]! + (1 - momentum) * (z[i]! - x[i]!);
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

  tsneGradient(Y: Float64Array, n: number, rowPtr: Int32Array, col: Int32Array, val: Float64Array,
    exaggeration: number, angle: number, grad: Float64Array): number {
    const tree = new QuadTree(Y, n);
    const force = new Float64Array(2 * n);
    const z = new Float64Array(n);
    for (let i = 0; i < n; i++) z[i] = tree.repulsion(i, angle, force);
    let Z = 0;
    for (let i = 0; i < n; i++) Z += z[i]!;
    for (let i = 0; i < n; i++) {
      let ax = 0, ay = 0;
      for (let e = rowPtr[i]!; e < rowPtr[i + 1]!; e++) {
        const j = col[e]!;
        const dx = Y[2 * i]! - Y[2 * j]!, dy = Y[2 * i + 1]! - Y[2 * j + 1]!;
        const pw = val[e]! / (1 + dx * dx + dy * dy);
        ax += pw * dx;
        ay += pw * dy;
      }
      grad[2 * i] = 4 * (exaggeration * ax - force[2 * i]! / Z);
      grad[2 * i + 1] = 4 * (exaggeration * ay - force[2 * i + 1]! / Z);
    }
    return Z;
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

  gatherEntries(X: Float32Array, rows: number, cols: number, rowPtr: Int32Array, idx: Int32Array, out: Float32Array): void {
    need(X, rows * cols, "X");
    checkCsr(rowPtr, idx, rows, cols);
    need(out, rowPtr[rows]!, "out");
    for (let r = 0; r < rows; r++) for (let e = rowPtr[r]!; e < rowPtr[r + 1]!; e++) out[e] = X[r * cols + idx[e]!]!;
  },

  scatterEntries(rows: number, cols: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array, out: Float32Array): void {
    checkCsr(rowPtr, idx, rows, cols);
    need(val, rowPtr[rows]!, "val");
    need(out, rows * cols, "out");
    out.fill(0, 0, rows * cols);
    for (let r = 0; r < rows; r++) for (let e = rowPtr[r]!; e < rowPtr[r + 1]!; e++) out[r * cols + idx[e]!]! += val[e]!;
  },

  codeFirings(rows: number, cols: number, rowPtr: Int32Array, idx: Int32Array, val: Float32Array, fired: Uint8Array, counts: Float64Array | null): number {
    checkCsr(rowPtr, idx, rows, cols);
    need(val, rowPtr[rows]!, "val");
    need(fired, cols, "fired");
    if (counts) need(counts, cols, "counts");
    let n = 0;
    for (let e = 0; e < rowPtr[rows]!; e++) {
      if (val[e] === 0) continue;
      fired[idx[e]!] = 1;
      if (counts) counts[idx[e]!]! += 1;
      n++;
    }
    return n;
  },

  gatherColumns(X: Float32Array, rows: number, cols: number, pick: Int32Array, n: number, out: Float32Array): void {
    need(X, rows * cols, "X");
    need(out, rows * n, "out");
    for (let i = 0; i < n; i++) {
      if (!(pick[i]! >= 0 && pick[i]! < cols)) throw new RangeError(`gatherColumns: pick[${i}] = ${pick[i]} is outside [0, ${cols})`);
    }
    for (let r = 0; r < rows; r++) for (let i = 0; i < n; i++) out[r * n + i] = X[r * cols + pick[i]!]!;
  },

  layerNorm(x: Float32Array, rows: number, d: number, w: Float32Array, b: Float32Array | null,
    eps: number, out: Float32Array): void {
    for (let r = 0; r < rows; r++) {
      let mean = 0;
      for (let c = 0; c < d; c++) mean += x[r * d + c]!;
      mean /= d;
      let v = 0;
      for (let c = 0; c < d; c++) v += (x[r * d + c]! - mean) ** 2;
      const inv = 1 / Math.sqrt(v / d + eps);
      for (let c = 0; c < d; c++) out[r * d + c] = (x[r * d + c]! - mean) * inv * w[c]! + (b ? b[c]! : 0);
    }
  },

  rmsNorm(x: Float32Array, rows: number, d: number, w: Float32Array, eps: number, out: Float32Array): void {
    for (let r = 0; r < rows; r++) {
      let ss = 0;
      for (let c = 0; c < d; c++) ss += x[r * d + c]! ** 2;
      const inv = 1 / Math.sqrt(ss / d + eps);
      for (let c = 0; c < d; c++) out[r * d + c] = x[r * d + c]! * inv * w[c]!;
    }
  },

  activate(x: Float32Array, act: Activation): void {
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      switch (act) {
        case Activation.GeluErf: x[i] = 0.5 * v * erfc(-v / Math.SQRT2); break;
        case Activation.GeluTanh: x[i] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3))); break;
        case Activation.Silu: x[i] = v / (1 + Math.exp(-v)); break;
        default: x[i] = Math.max(0, v);
      }
    }
  },

  activationBackward(x: Float32Array, grad: Float32Array, act: Activation): void {
    if (grad.length < x.length) throw new RangeError(`grad holds ${grad.length} values, x ${x.length}`);
    for (let i = 0; i < x.length; i++) {
      const v = x[i]!;
      let slope: number;
      switch (act) {
        case Activation.GeluErf: slope = 0.5 * erfc(-v / Math.SQRT2) + (v * Math.exp(-0.5 * v * v)) / Math.sqrt(2 * Math.PI); break;
        case Activation.GeluTanh: {
          const a = Math.sqrt(2 / Math.PI);
          const t = Math.tanh(a * (v + 0.044715 * v ** 3));
          slope = 0.5 * (1 + t) + 0.5 * v * (1 - t * t) * a * (1 + 3 * 0.044715 * v * v);
          break;
        }
        case Activation.Silu: {
          const sg = 1 / (1 + Math.exp(-v));
          slope = sg * (1 + v * (1 - sg));
          break;
        }
        default: slope = v > 0 ? 1 : 0;
      }
      grad[i] = grad[i]! * slope;
    }
  },

  siluMul(gate: Float32Array, up: Float32Array): void {
    for (let i = 0; i < gate.length; i++) gate[i] = (gate[i]! / (1 + Math.exp(-gate[i]!))) * up[i]!;
  },

  rotary(x: Float32Array, rows: number, seq: number, pos0: number, rowStride: number, offset: number,
    heads: number, headDim: number, invFreq: Float32Array, style: RotaryStyle): void {
    const half = invFreq.length;
    for (let r = 0; r < rows; r++) {
      const pos = pos0 + (r % seq);
      for (let h = 0; h < heads; h++) {
        const at = r * rowStride + offset + h * headDim;
        for (let i = 0; i < half; i++) {
          const angle = Math.fround(pos * invFreq[i]!);
          const c = Math.cos(angle);
          const s = Math.sin(angle);
          const a = at + (style === RotaryStyle.RotateHalf ? i : 2 * i);
          const b = at + (style === RotaryStyle.RotateHalf ? i + half : 2 * i + 1);
          const x0 = x[a]!;
          const x1 = x[b]!;
          x[a] = x0 * c - x1 * s;
          x[b] = x1 * c + x0 * s;
        }
      }
    }
  },

  causalConv(x: Float32Array, batch: number, seq: number, channels: number, kernel: number, w: Float32Array,
    history: Float32Array, silu: boolean, out: Float32Array): void {
    if (kernel < 1) throw new RangeError("causalConv: kernel must be at least 1");
    const C = channels, K = kernel;
    for (let b = 0; b < batch; b++) {
      const hist = history.subarray(b * (K - 1) * C, (b + 1) * (K - 1) * C);
      for (let t = 0; t < seq; t++) {
        const r = b * seq + t;
        for (let c = 0; c < C; c++) {
          let acc = w[c * K + K - 1]! * x[r * C + c]!;
          for (let j = 0; j < K - 1; j++) acc += w[c * K + j]! * hist[j * C + c]!;
          out[r * C + c] = silu ? acc / (1 + Math.exp(-acc)) : acc;
        }
        if (K > 1) {
          hist.copyWithin(0, C);
          hist.set(x.subarray(r * C, (r + 1) * C), (K - 2) * C);
        }
      }
    }
  },

  ssmScan(u: Float32Array, B: Float32Array, C: Float32Array, decay: Float32Array, batch: number, seq: number, heads: number,
    headDim: number, groups: number, dState: number, state: Float32Array, out: Float32Array): void {
    if (groups === 0 || heads % groups !== 0) throw new RangeError("ssmScan: heads must be a multiple of groups");
    const perGroup = heads / groups;
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const S = state.subarray((b * heads + h) * dState * headDim, (b * heads + h + 1) * dState * headDim);
        const g = Math.floor(h / perGroup);
        for (let t = 0; t < seq; t++) {
          const r = b * seq + t, ua = r * heads * headDim + h * headDim, ba = r * groups * dState + g * dState;
          const a = decay[r * heads + h]!;
          for (let i = 0; i < dState; i++) {
            for (let j = 0; j < headDim; j++) S[i * headDim + j] = a * S[i * headDim + j]! + B[ba + i]! * u[ua + j]!;
          }
          for (let j = 0; j < headDim; j++) {
            let o = 0;
            for (let i = 0; i < dState; i++) o += S[i * headDim + j]! * C[ba + i]!;
            out[ua + j] = o;
          }
        }
      }
    }
  },

  ssmScanBackward(u: Float32Array, B: Float32Array, C: Float32Array, decay: Float32Array, dOut: Float32Array, batch: number,
    seq: number, heads: number, headDim: number, groups: number, dState: number, du: Float32Array, dB: Float32Array,
    dC: Float32Array, dDecay: Float32Array): void {
    if (groups === 0 || heads % groups !== 0) throw new RangeError("ssmScanBackward: heads must be a multiple of groups");
    const perGroup = heads / groups, N = dState, P = headDim, HP = heads * P, GN = groups * N, HN = heads * N;
    // Each head's states S_0 (zeros) .. S_seq, then dS back through time; float64 throughout.
    const states = new Float64Array((seq + 1) * N * P), dS = new Float64Array(N * P);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const g = Math.floor(h / perGroup);
        for (let t = 0; t < seq; t++) {
          const r = b * seq + t, a = decay[r * heads + h]!, prev = t * N * P, cur = prev + N * P;
          for (let i = 0; i < N; i++) {
            const bi = B[r * GN + g * N + i]!;
            for (let j = 0; j < P; j++) states[cur + i * P + j] = a * states[prev + i * P + j]! + bi * u[r * HP + h * P + j]!;
          }
        }
        dS.fill(0);
        for (let t = seq - 1; t >= 0; t--) {
          const r = b * seq + t, a = decay[r * heads + h]!, prev = t * N * P, cur = prev + N * P;
          let dDecayT = 0;
          const duT = new Float64Array(P);
          for (let i = 0; i < N; i++) {
            const bi = B[r * GN + g * N + i]!, ci = C[r * GN + g * N + i]!;
            let dCi = 0, dBi = 0;
            for (let j = 0; j < P; j++) {
              const dy = dOut[r * HP + h * P + j]!, e = i * P + j;
              dS[e]! += ci * dy;
              dCi += states[cur + e]! * dy;
              dBi += dS[e]! * u[r * HP + h * P + j]!;
              duT[j]! += dS[e]! * bi;
              dDecayT += dS[e]! * states[prev + e]!;
              dS[e] = a * dS[e]!;
            }
            dC[r * HN + h * N + i] = dCi;
            dB[r * HN + h * N + i] = dBi;
          }
          for (let j = 0; j < P; j++) du[r * HP + h * P + j] = duT[j]!;
          dDecay[r * heads + h] = dDecayT;
        }
      }
    }
  },

  gatedDeltaRuleBackward(q: Float32Array, k: Float32Array, v: Float32Array, decay: Float32Array, beta: Float32Array,
    dOut: Float32Array, batch: number, seq: number, kHeads: number, vHeads: number, dk: number, dv: number, dq: Float32Array,
    dK: Float32Array, dV: Float32Array, dDecay: Float32Array, dBeta: Float32Array): void {
    if (kHeads === 0 || vHeads % kHeads !== 0) throw new RangeError("gatedDeltaRuleBackward: vHeads must be a multiple of kHeads");
    const group = vHeads / kHeads, KD = kHeads * dk, VD = vHeads * dv, HK = vHeads * dk, n = dk * dv;
    // Each value head's states S_0 (zeros) .. S_seq, then dS back through time; float64 throughout.
    const states = new Float64Array((seq + 1) * n), dS = new Float64Array(n);
    const kv = new Float64Array(dv), delta = new Float64Array(dv), dDelta = new Float64Array(dv);
    const recall = (t: number, r: number, h: number, g: number) => {
      const d = decay[r * vHeads + h]!, be = beta[r * vHeads + h]!;
      kv.fill(0);
      for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) kv[j]! += d * states[t * n + i * dv + j]! * k[r * KD + g * dk + i]!;
      for (let j = 0; j < dv; j++) delta[j] = be * (v[r * VD + h * dv + j]! - kv[j]!);
    };
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < vHeads; h++) {
        const g = Math.floor(h / group);
        for (let t = 0; t < seq; t++) {
          const r = b * seq + t, d = decay[r * vHeads + h]!;
          recall(t, r, h, g);
          for (let i = 0; i < dk; i++) {
            for (let j = 0; j < dv; j++) states[(t + 1) * n + i * dv + j] = d * states[t * n + i * dv + j]! + k[r * KD + g * dk + i]! * delta[j]!;
          }
        }
        dS.fill(0);
        for (let t = seq - 1; t >= 0; t--) {
          const r = b * seq + t, d = decay[r * vHeads + h]!, be = beta[r * vHeads + h]!;
          // out = S_t^T q: dS += q dOut^T, dq = S_t dOut.
          for (let i = 0; i < dk; i++) {
            let dqi = 0;
            for (let j = 0; j < dv; j++) {
              const dO = dOut[r * VD + h * dv + j]!;
              dS[i * dv + j]! += q[r * KD + g * dk + i]! * dO;
              dqi += states[(t + 1) * n + i * dv + j]! * dO;
            }
            dq[r * HK + h * dk + i] = dqi;
          }
          // S_t = P + k delta^T.
          recall(t, r, h, g);
          dDelta.fill(0);
          for (let i = 0; i < dk; i++) {
            let dki = 0;
            for (let j = 0; j < dv; j++) {
              dDelta[j]! += dS[i * dv + j]! * k[r * KD + g * dk + i]!;
              dki += dS[i * dv + j]! * delta[j]!;
            }
            dK[r * HK + h * dk + i] = dki;
          }
          // delta = beta (v - kv); dDelta becomes d loss / d kv.
          let dBe = 0;
          for (let j = 0; j < dv; j++) {
            dBe += dDelta[j]! * (v[r * VD + h * dv + j]! - kv[j]!);
            dV[r * VD + h * dv + j] = be * dDelta[j]!;
            dDelta[j] = -be * dDelta[j]!;
          }
          dBeta[r * vHeads + h] = dBe;
          // kv = P^T k, P = decay S_{t-1}: dk += P dkv, dP = dS + k dkv^T, dDecay = <dP, S_{t-1}>, dS <- decay dP.
          let dDec = 0;
          for (let i = 0; i < dk; i++) {
            const ki = k[r * KD + g * dk + i]!;
            let dkP = 0;
            for (let j = 0; j < dv; j++) {
              const prev = states[t * n + i * dv + j]!;
              dkP += d * prev * dDelta[j]!;
              const dP = dS[i * dv + j]! + ki * dDelta[j]!;
              dDec += dP * prev;
              dS[i * dv + j] = d * dP;
            }
            dK[r * HK + h * dk + i]! += dkP;
          }
          dDecay[r * vHeads + h] = dDec;
        }
      }
    }
  },

  gatedDeltaRule(q: Float32Array, k: Float32Array, v: Float32Array, decay: Float32Array, beta: Float32Array, batch: number,
    seq: number, kHeads: number, vHeads: number, dk: number, dv: number, state: Float32Array, out: Float32Array): void {
    if (kHeads === 0 || vHeads % kHeads !== 0) throw new RangeError("gatedDeltaRule: vHeads must be a multiple of kHeads");
    const group = vHeads / kHeads;
    const kv = new Float64Array(dv);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < vHeads; h++) {
        const S = state.subarray((b * vHeads + h) * dk * dv, (b * vHeads + h + 1) * dk * dv);
        const g = Math.floor(h / group);
        for (let t = 0; t < seq; t++) {
          const r = b * seq + t;
          const qa = r * kHeads * dk + g * dk, va = r * vHeads * dv + h * dv;
          const d = decay[r * vHeads + h]!, be = beta[r * vHeads + h]!;
          for (let i = 0; i < dk * dv; i++) S[i] = S[i]! * d;
          for (let j = 0; j < dv; j++) {
            let recalled = 0;
            for (let i = 0; i < dk; i++) recalled += S[i * dv + j]! * k[qa + i]!;
            kv[j] = be * (v[va + j]! - recalled);
          }
          for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) S[i * dv + j] = S[i * dv + j]! + k[qa + i]! * kv[j]!;
          for (let j = 0; j < dv; j++) {
            let o = 0;
            for (let i = 0; i < dk; i++) o += S[i * dv + j]! * q[qa + i]!;
            out[va + j] = o;
          }
        }
      }
    }
  },

  causalAttention(qkv: Float32Array, batch: number, seq: number, rowStride: number, qOffset: number,
    kOffset: number, vOffset: number, heads: number, kvHeads: number, headDim: number, scale: number,
    softcap: number, out: Float32Array): void {
    const group = heads / kvHeads;
    const scores = new Float64Array(seq);
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const g = Math.floor(h / group);
        for (let i = 0; i < seq; i++) {
          const q = (b * seq + i) * rowStride + qOffset + h * headDim;
          let mx = -Infinity;
          for (let j = 0; j <= i; j++) {
            const k = (b * seq + j) * rowStride + kOffset + g * headDim;
            let s = 0;
            for (let c = 0; c < headDim; c++) s += qkv[q + c]! * qkv[k + c]!;
            scores[j] = capLogit(s * scale, softcap);
            mx = Math.max(mx, scores[j]!);
          }
          let sum = 0;
          for (let j = 0; j <= i; j++) sum += (scores[j] = Math.exp(scores[j]! - mx));
          const o = (b * seq + i) * heads * headDim + h * headDim;
          for (let c = 0; c < headDim; c++) {
            let acc = 0;
            for (let j = 0; j <= i; j++) acc += scores[j]! * qkv[(b * seq + j) * rowStride + vOffset + g * headDim + c]!;
            out[o + c] = acc / sum;
          }
        }
      }
    }
  },

  cachedAttention(q: Float32Array, qStride: number, qOffset: number, batch: number, n: number, pos0: number,
    kCache: Float32Array, vCache: Float32Array, cacheLen: number, heads: number, kvHeads: number,
    headDim: number, scale: number, softcap: number, out: Float32Array): void {
    const group = heads / kvHeads;
    const kvStride = kvHeads * headDim;
    for (let b = 0; b < batch; b++) {
      for (let h = 0; h < heads; h++) {
        const g = Math.floor(h / group);
        for (let i = 0; i < n; i++) {
          const qa = (b * n + i) * qStride + qOffset + h * headDim;
          const last = pos0 + i;
          const scores = new Float64Array(last + 1);
          for (let j = 0; j <= last; j++) {
            let s = 0;
            for (let c = 0; c < headDim; c++) s += q[qa + c]! * kCache[(b * cacheLen + j) * kvStride + g * headDim + c]!;
            scores[j] = capLogit(s * scale, softcap);
          }
          const mx = Math.max(...scores);
          let sum = 0;
          for (let j = 0; j <= last; j++) sum += (scores[j] = Math.exp(scores[j]! - mx));
          for (let c = 0; c < headDim; c++) {
            let acc = 0;
            for (let j = 0; j <= last; j++) acc += scores[j]! * vCache[(b * cacheLen + j) * kvStride + g * headDim + c]!;
            out[(b * n + i) * heads * headDim + h * headDim + c] = acc / sum;
          }
        }
      }
    }
  },

  crossEntropyRows(logits: Float32Array, rows: number, vocab: number, targets: Int32Array, loss: Float32Array): void {
    for (let r = 0; r < rows; r++) {
      const t = targets[r]!;
      if (t >= vocab) throw new RangeError(`targets[${r}] is outside the vocabulary`);
      loss[r] = t < 0 ? 0 : logSumExp(logits, r * vocab, vocab) - logits[r * vocab + t]!;
    }
  },

  klRows(p: Float32Array, q: Float32Array, rows: number, vocab: number, kl: Float32Array): void {
    for (let r = 0; r < rows; r++) {
      const lp = logSumExp(p, r * vocab, vocab);
      const lq = logSumExp(q, r * vocab, vocab);
      let s = 0;
      for (let j = 0; j < vocab; j++) {
        const a = p[r * vocab + j]! - lp;
        s += Math.exp(a) * (a - (q[r * vocab + j]! - lq));
      }
      kl[r] = s;
    }
  },

  causalAttentionBackward(qkv: Float32Array, batch: number, seq: number, rowStride: number, qOffset: number,
    kOffset: number, vOffset: number, heads: number, kvHeads: number, headDim: number, scale: number,
    softcap: number, dOut: Float32Array, dqkv: Float32Array): void {
    const group = heads / kvHeads;
    const p = new Float64Array(seq);
    const dp = new Float64Array(seq);
    // d(capped logit) / d(logit) per key: 1 - tanh^2(s / softcap), or 1 without a cap.
    const capGrad = new Float64Array(seq).fill(1);
    const dk = new Float64Array(seq * headDim);
    const dv = new Float64Array(seq * headDim);
    const dotRows = (a: number, b: number, x: Float32Array, y: Float32Array) => {
      let s = 0;
      for (let c = 0; c < headDim; c++) s += x[a + c]! * y[b + c]!;
      return s;
    };
    for (let b = 0; b < batch; b++) {
      for (let g = 0; g < kvHeads; g++) {
        dk.fill(0);
        dv.fill(0);
        const kAt = (j: number) => (b * seq + j) * rowStride + kOffset + g * headDim;
        const vAt = (j: number) => (b * seq + j) * rowStride + vOffset + g * headDim;
        for (let h = g * group; h < (g + 1) * group; h++) {
          for (let i = 0; i < seq; i++) {
            const q = (b * seq + i) * rowStride + qOffset + h * headDim;
            const dz = (b * seq + i) * heads * headDim + h * headDim;
            let mx = -Infinity;
            for (let j = 0; j <= i; j++) {
              let logit = dotRows(q, kAt(j), qkv, qkv) * scale;
              if (softcap > 0) {
                const t = Math.tanh(logit / softcap);
                logit = softcap * t;
                capGrad[j] = 1 - t * t;
              }
              mx = Math.max(mx, (p[j] = logit));
            }
            let sum = 0;
            for (let j = 0; j <= i; j++) sum += (p[j] = Math.exp(p[j]! - mx));
            let dot = 0;
            for (let j = 0; j <= i; j++) {
              p[j]! /= sum;
              dp[j] = dotRows(dz, vAt(j), dOut, qkv);
              dot += p[j]! * dp[j]!;
            }
            for (let c = 0; c < headDim; c++) {
              let acc = 0;
              for (let j = 0; j <= i; j++) acc += p[j]! * (dp[j]! - dot) * scale * capGrad[j]! * qkv[kAt(j) + c]!;
              dqkv[q + c] = acc;
            }
            for (let j = 0; j <= i; j++) {
              const ds = p[j]! * (dp[j]! - dot) * scale * capGrad[j]!;
              for (let c = 0; c < headDim; c++) {
                dk[j * headDim + c]! += ds * qkv[q + c]!;
                dv[j * headDim + c]! += p[j]! * dOut[dz + c]!;
              }
            }
          }
        }
        for (let j = 0; j < seq; j++) {
          for (let c = 0; c < headDim; c++) {
            dqkv[kAt(j) + c] = dk[j * headDim + c]!;
            dqkv[vAt(j) + c] = dv[j * headDim + c]!;
          }
        }
      }
    }
  },

  crossEntropyGradRows(logits: Float32Array, rows: number, vocab: number, targets: Int32Array, scale: number, loss: Float32Array): void {
    for (let r = 0; r < rows; r++) {
      const t = targets[r]!;
      if (t >= vocab) throw new RangeError(`targets[${r}] is outside the vocabulary`);
      const row = logits.subarray(r * vocab, (r + 1) * vocab);
      if (t < 0) {
        row.fill(0);
        loss[r] = 0;
        continue;
      }
      const lse = logSumExp(logits, r * vocab, vocab);
      loss[r] = lse - row[t]!;
      for (let j = 0; j < vocab; j++) row[j] = Math.exp(row[j]! - lse) * scale;
      row[t]! -= scale;
    }
  },

  klGradRows(p: Float32Array, q: Float32Array, rows: number, vocab: number, scale: number, kl: Float32Array): void {
    // The KL as klRows has it, then q overwritten by its gradient.
    this.klRows(p, q, rows, vocab, kl);
    for (let r = 0; r < rows; r++) {
      const lp = logSumExp(p, r * vocab, vocab);
      const lq = logSumExp(q, r * vocab, vocab);
      for (let j = 0; j < vocab; j++) {
        q[r * vocab + j] = (Math.exp(q[r * vocab + j]! - lq) - Math.exp(p[r * vocab + j]! - lp)) * scale;
      }
    }
  },
});

/** Gemma 2's logit soft cap: softcap * tanh(s / softcap), or s when softcap is 0. */
export function capLogit(s: number, softcap: number): number {
  return softcap > 0 ? softcap * Math.tanh(s / softcap) : s;
}
