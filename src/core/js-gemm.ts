/**
 * The GEMM of the TypeScript kernels (what runs in a browser, or where the native addon is
 * not built): C = alpha * op(A) * op(B) + beta * C, row-major, as kernel-api.ts defines it.
 * The reference twin's triple loop is the oracle; this one computes the same products
 * about five times faster in plain JavaScript (~5 GFLOP/s on one core):
 *
 *   - both operands are made K-contiguous — op(A) as [M, K] rows and op(B) as [N, K] rows,
 *     packed once per call when a transpose says they are not — so every product is a dot
 *     product of two contiguous rows;
 *   - a 4 x 4 block of C is sixteen independent dot products kept in local variables
 *     (doubles: the sums are as accurate as the reference's), reading 8 values per 16
 *     multiply-adds;
 *   - B's rows are taken in panels that fit the L2 cache, all of A's rows passing over each;
 *   - a few rows of A against an untransposed B (one token at a time) sum B's rows instead.
 * Every sum runs over k in order in a double, as the reference's does, so C is the same to
 * the bit.
 */

/** Rows of B per panel: about 256 KiB of it at this K. */
function panelRows(K: number): number {
  return Math.max(4, Math.floor(65536 / Math.max(1, K)) & ~3);
}

/** op(X) as a K-contiguous [rows, K] matrix: X itself (with its stride) or a packed transpose. */
function kContiguous(trans: boolean, X: Float32Array, ld: number, rows: number, K: number): { data: Float32Array; ld: number } {
  if (!trans) return { data: X, ld };
  // X is [K, rows] with stride ld: row r of op(X) is column r of X.
  const out = new Float32Array(rows * K);
  for (let k = 0; k < K; k++) {
    const from = k * ld;
    for (let r = 0; r < rows; r++) out[r * K + k] = X[from + r]!;
  }
  return { data: out, ld: K };
}

export function sgemmBlocked(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): void {
  if (!transB && M < 8) {
    // A few rows (a token at a time) against B as stored: packing B would cost more than
    // the product, so each row of C sums B's rows scaled by that row of A.
    rowsTimesB(transA, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  const a = kContiguous(transA, A, lda, M, K);
  const b = kContiguous(transB ? false : true, B, ldb, N, K);
  const Ad = a.data, Bd = b.data, la = a.ld, lb = b.ld;
  const store = (c: number, v: number) => { C[c] = alpha * v + (beta === 0 ? 0 : beta * C[c]!); };
  const M4 = M & ~3, N4 = N & ~3;
  const panel = panelRows(K);
  for (let p0 = 0; p0 < N; p0 += panel) {
    const p1 = Math.min(N, p0 + panel);
    const p4 = Math.min(p1, N4);
    for (let i = 0; i < M; i += 4) {
      if (i < M4) {
        const a0 = i * la, a1 = a0 + la, a2 = a1 + la, a3 = a2 + la;
        let j = p0;
        for (; j < p4; j += 4) {
          const b0 = j * lb, b1 = b0 + lb, b2 = b1 + lb, b3 = b2 + lb;
          let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
          let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
          for (let k = 0; k < K; k++) {
            const x0 = Ad[a0 + k]!, x1 = Ad[a1 + k]!, x2 = Ad[a2 + k]!, x3 = Ad[a3 + k]!;
            const y0 = Bd[b0 + k]!, y1 = Bd[b1 + k]!, y2 = Bd[b2 + k]!, y3 = Bd[b3 + k]!;
            c00 += x0 * y0; c01 += x0 * y1; c02 += x0 * y2; c03 += x0 * y3;
            c10 += x1 * y0; c11 += x1 * y1; c12 += x1 * y2; c13 += x1 * y3;
            c20 += x2 * y0; c21 += x2 * y1; c22 += x2 * y2; c23 += x2 * y3;
            c30 += x3 * y0; c31 += x3 * y1; c32 += x3 * y2; c33 += x3 * y3;
          }
          const r0 = i * ldc + j, r1 = r0 + ldc, r2 = r1 + ldc, r3 = r2 + ldc;
          store(r0, c00); store(r0 + 1, c01); store(r0 + 2, c02); store(r0 + 3, c03);
          store(r1, c10); store(r1 + 1, c11); store(r1 + 2, c12); store(r1 + 3, c13);
          store(r2, c20); store(r2 + 1, c21); store(r2 + 2, c22); store(r2 + 3, c23);
          store(r3, c30); store(r3 + 1, c31); store(r3 + 2, c32); store(r3 + 3, c33);
        }
        // The panel's last columns, when N is not a multiple of 4.
        for (; j < p1; j++) for (let r = 0; r < 4; r++) store((i + r) * ldc + j, dot(Ad, (i + r) * la, Bd, j * lb, K));
      } else {
        // The last rows, when M is not a multiple of 4 (all of them when M < 4: one token).
        for (let r = i; r < M; r++) rowTimesPanel(Ad, r * la, Bd, lb, p0, p1, K, (j, v) => store(r * ldc + j, v));
      }
    }
  }
}

/** One row of A against B's rows j0..j1, four at a time. */
function rowTimesPanel(Ad: Float32Array, a: number, Bd: Float32Array, lb: number, j0: number, j1: number, K: number,
  put: (j: number, v: number) => void): void {
  let j = j0;
  for (; j + 4 <= j1; j += 4) {
    const b0 = j * lb, b1 = b0 + lb, b2 = b1 + lb, b3 = b2 + lb;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let k = 0; k < K; k++) {
      const x = Ad[a + k]!;
      s0 += x * Bd[b0 + k]!; s1 += x * Bd[b1 + k]!; s2 += x * Bd[b2 + k]!; s3 += x * Bd[b3 + k]!;
    }
    put(j, s0); put(j + 1, s1); put(j + 2, s2); put(j + 3, s3);
  }
  for (; j < j1; j++) put(j, dot(Ad, a, Bd, j * lb, K));
}

function dot(X: Float32Array, x: number, Y: Float32Array, y: number, K: number): number {
  let s = 0;
  for (let k = 0; k < K; k++) s += X[x + k]! * Y[y + k]!;
  return s;
}

/** C's rows as sums of B's rows ([K, N], stride ldb), in the reference's order of k. */
function rowsTimesB(transA: boolean, M: number, N: number, K: number, alpha: number, A: Float32Array, lda: number,
  B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): void {
  const acc = new Float64Array(N);
  for (let i = 0; i < M; i++) {
    acc.fill(0);
    for (let k = 0; k < K; k++) {
      const x = transA ? A[k * lda + i]! : A[i * lda + k]!;
      const row = k * ldb;
      for (let j = 0; j < N; j++) acc[j] += x * B[row + j]!;
    }
    for (let j = 0; j < N; j++) {
      const c = i * ldc + j;
      C[c] = alpha * acc[j]! + (beta === 0 ? 0 : beta * C[c]!);
    }
  }
}
