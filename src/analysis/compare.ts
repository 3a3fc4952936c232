/**
 * How alike two dictionaries are: for every direction of one, the largest cosine
 * similarity with a direction of the other (the mean of these is the MMCS, mean max cosine
 * similarity, of Sharkey et al. and the superposition benchmarks). Comparing SAEs trained
 * with other seeds, sizes or architectures on the same activations shows which features are
 * stable and which split or move.
 */
import { kernels } from "../core/kernels.js";

export interface MaxCosines {
  /** Per row of a: its largest cosine with a row of b. */
  aToB: Float32Array;
  /** Per row of b: its largest cosine with a row of a. */
  bToA: Float32Array;
  /** With countAbove: per row of a, how many rows of b it has a cosine above that with. */
  countsAToB?: Int32Array;
}

/** Unit-norm copies of the rows (zero rows stay zero). */
function unitRows(x: Float32Array, d: number): Float32Array {
  const k = kernels();
  const rows = x.length / d;
  const out = x.slice();
  const norms = new Float32Array(rows);
  k.rowNorms(out, rows, d, norms);
  k.scaleRows(out, rows, d, norms.map((v) => (v > 0 ? 1 / v : 0)));
  return out;
}

/**
 * Largest cosine similarities between the rows of a [n, d] and b [m, d], both ways, `abs`:
 * of |cos| (for signed latents, where a flipped direction is the same feature). The
 * n x m similarities are computed `block` rows of a at a time, so two 65k-latent
 * dictionaries need no 16 GiB matrix.
 */
export function maxCosines(a: Float32Array, b: Float32Array, d: number,
  o: { abs?: boolean; block?: number; countAbove?: number } = {}): MaxCosines {
  if (a.length % d !== 0 || b.length % d !== 0) throw new RangeError(`the rows are not ${d} wide`);
  const k = kernels();
  const n = a.length / d;
  const m = b.length / d;
  const ua = unitRows(a, d);
  const ub = unitRows(b, d);
  const aToB = new Float32Array(n).fill(-Infinity);
  const bToA = new Float32Array(m).fill(-Infinity);
  const above = o.countAbove;
  const countsAToB = above === undefined ? undefined : new Int32Array(n);
  const block = Math.max(1, Math.min(n, o.block ?? Math.max(1, Math.floor((1 << 24) / Math.max(1, m)))));
  const cos = new Float32Array(block * m);
  for (let r0 = 0; r0 < n; r0 += block) {
    const rows = Math.min(block, n - r0);
    k.sgemm(false, true, rows, m, d, 1, ua.subarray(r0 * d, (r0 + rows) * d), d, ub, d, 0, cos, m);
    for (let i = 0; i < rows; i++) {
      let best = -Infinity;
      let count = 0;
      for (let j = 0; j < m; j++) {
        const c = o.abs ? Math.abs(cos[i * m + j]!) : cos[i * m + j]!;
        if (c > best) best = c;
        if (c > bToA[j]!) bToA[j] = c;
        if (above !== undefined && c > above) count++;
      }
      aToB[r0 + i] = best;
      if (countsAToB) countsAToB[r0 + i] = count;
    }
  }
  return { aToB, bToA, ...(countsAToB ? { countsAToB } : {}) };
}

/** The mean of the best cosines and the fraction above `threshold`. */
export function matchSummary(best: Float32Array, threshold: number): { mmcs: number; matched: number } {
  let sum = 0;
  let hits = 0;
  for (const v of best) {
    sum += v;
    if (v > threshold) hits++;
  }
  return { mmcs: sum / Math.max(1, best.length), matched: hits / Math.max(1, best.length) };
}
