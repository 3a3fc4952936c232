/**
 * Exact k nearest neighbours (squared Euclidean) of every row of a [n, dim] matrix, as
 * Barnes-Hut t-SNE needs them: the n x n distances come from GEMMs, a block of rows at a
 * time (||a - b||^2 = ||a||^2 + ||b||^2 - 2 a.b), so 20,000 decoder directions of width
 * 512 take about a second, and the top-k selection kernel picks each row's nearest. The
 * distances returned are recomputed in float64 from the points, and sorted by them. (The
 * candidates are ranked in float32, so two points whose distances differ by less than its
 * rounding can trade places at the k-th.)
 */
import { kernels, SelectMode } from "../core/kernels.js";

export interface Neighbors {
  k: number;
  /** [n, k] neighbour indices, nearest first (ties by lower index); never the row itself. */
  index: Int32Array;
  /** [n, k] their squared distances. */
  dist2: Float64Array;
}

export function nearestNeighbors(points: ArrayLike<number>, n: number, dim: number, k: number,
  o: { block?: number } = {}): Neighbors {
  if (!Number.isInteger(k) || k < 1 || k > n - 1) throw new RangeError(`nearestNeighbors: k = ${k} needs 1 <= k <= n - 1 = ${n - 1}`);
  if (points.length < n * dim) throw new RangeError(`nearestNeighbors: ${points.length} values for ${n} rows of ${dim}`);
  const x = Float32Array.from({ length: n * dim }, (_, i) => points[i]!);
  // Ranking v_ij = 2 a_i.b_j - ||b_j||^2 = ||a_i||^2 - ||a_i - b_j||^2 from the largest
  // picks the nearest; the row's own ||a_i||^2 does not change its order.
  const negNorm = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    let s = 0;
    for (let c = 0; c < dim; c++) s += x[j * dim + c]! ** 2;
    negNorm[j] = -s;
  }
  const index = new Int32Array(n * k);
  const dist2 = new Float64Array(n * k);
  const order = Array.from({ length: k }, (_, q) => q);
  const rowIdx = new Int32Array(k);
  const rowDist = new Float64Array(k);
  // k + 1 candidates: the row itself is among them unless more than k others tie with it at
  // distance 0, and then dropping the last one is as right.
  rankPairs(x, n, dim, 2, negNorm, k + 1, o.block, (i, cand) => {
    let q = 0;
    for (let t = 0; t < cand.length && q < k; t++) {
      const j = cand[t]!;
      if (j === i) continue;
      let s = 0;
      for (let c = 0; c < dim; c++) s += (Number(points[i * dim + c]) - Number(points[j * dim + c])) ** 2;
      rowIdx[q] = j;
      rowDist[q] = s;
      q++;
    }
    order.sort((a, b) => rowDist[a]! - rowDist[b]! || rowIdx[a]! - rowIdx[b]!);
    for (let q2 = 0; q2 < k; q2++) {
      index[i * k + q2] = rowIdx[order[q2]!]!;
      dist2[i * k + q2] = rowDist[order[q2]!]!;
    }
    for (let q2 = 0; q2 < k; q2++) order[q2] = q2;
  });
  return { k, index, dist2 };
}

/**
 * For each row i of x [n, dim], the `take` columns j that rank highest by
 * alpha x_i.x_j + bias[j] (topkRows' order: best first, ties by lower index), handed to
 * `visit(i, candidates)`: the n x n products come from GEMMs a block of rows at a time and
 * are never held whole.
 */
function rankPairs(x: Float32Array, n: number, dim: number, alpha: number, bias: Float32Array | null, take: number,
  blockRows: number | undefined, visit: (i: number, candidates: Int32Array) => void): void {
  const kern = kernels();
  const block = Math.max(1, Math.min(n, blockRows ?? Math.max(1, Math.floor((1 << 24) / n))));
  const sims = new Float32Array(block * n);
  const vals = new Float32Array(block * take);
  const cand = new Int32Array(block * take);
  for (let r0 = 0; r0 < n; r0 += block) {
    const rows = Math.min(block, n - r0);
    kern.sgemm(false, true, rows, n, dim, alpha, x.subarray(r0 * dim, (r0 + rows) * dim), dim, x, dim, 0, sims, n);
    kern.topkRows(sims.subarray(0, rows * n), rows, n, take, SelectMode.Value, bias,
      vals.subarray(0, rows * take), cand.subarray(0, rows * take));
    for (let r = 0; r < rows; r++) visit(r0 + r, cand.subarray(r * take, (r + 1) * take));
  }
}

export interface Opposites {
  /** Per row, the other row with the smallest dot product, and that dot product (float64). */
  index: Int32Array;
  dot: Float64Array;
}

/**
 * Each row's most opposite other row: the smallest dot product (for unit rows, the most
 * negative cosine), by the same blocked GEMM and top-1 selection on the negated products.
 * A row is never its own opposite (its dot with itself is the largest, or all tie at 0).
 */
export function mostOpposite(points: ArrayLike<number>, n: number, dim: number, o: { block?: number } = {}): Opposites {
  if (n < 2) throw new RangeError(`mostOpposite: needs at least 2 rows, got ${n}`);
  if (points.length < n * dim) throw new RangeError(`mostOpposite: ${points.length} values for ${n} rows of ${dim}`);
  const x = Float32Array.from({ length: n * dim }, (_, i) => points[i]!);
  const index = new Int32Array(n);
  const dot = new Float64Array(n);
  // Two candidates: the row itself can be one only when its products tie (a zero row).
  rankPairs(x, n, dim, -1, null, 2, o.block, (i, cand) => {
    const j = cand[0]! !== i ? cand[0]! : cand[1]!;
    let s = 0;
    for (let c = 0; c < dim; c++) s += Number(points[i * dim + c]) * Number(points[j * dim + c]);
    index[i] = j;
    dot[i] = s;
  });
  return { index, dot };
}
