/**
 * sae_vis's feature tables for a dashboard latent j (three rows each):
 *
 *   - neuron alignment: the input dimensions ("neurons") with the largest |W_dec[j, i]|, and
 *     each one's share of the row's L1 norm;
 *   - correlated neurons: the dimensions whose activation x_i correlates most (Pearson, over
 *     tokens) with the latent's activation f_j, with the cosine between the decoder direction
 *     and that dimension's basis vector, W_dec[j, i] / ||W_dec[j]||;
 *   - correlated features: the other latents k whose activations correlate most with f_j
 *     (latents off on a token count as 0 there), with the cosine of their decoder rows.
 *
 * Pearson(a, b) = (N sum ab - sum a sum b) / sqrt((N sum a^2 - (sum a)^2)(N sum b^2 - (sum b)^2)),
 * from float64 sums accumulated a batch at a time; only tokens where f_j != 0 add to the
 * cross sums, so the cost follows the code's sparsity.
 */
import type { SparseCode } from "../sae/sparse-code.js";

export interface NeuronAlignment {
  index: number;
  value: number;
  /** |W_dec[j, i]| / sum_i |W_dec[j, i]|. */
  l1_share: number;
}

export interface Correlation {
  index: number;
  pearson: number;
  /** Cosine of the latent's decoder direction with the neuron's basis vector / the other latent's decoder row. */
  cosine: number | null;
}

export interface FeatureTables {
  neuron_alignment: NeuronAlignment[];
  correlated_neurons: Correlation[];
  correlated_features: Correlation[];
}

export class FeatureCorrelations {
  private n = 0;
  private readonly sumF: Float64Array;
  private readonly sumF2: Float64Array;
  private readonly sumX: Float64Array;
  private readonly sumX2: Float64Array;
  /** Per chosen latent s: sum over tokens of f_s x_i [d], and of f_s f_k [m]. */
  private readonly sumFX: Float64Array[];
  private readonly sumFF: Float64Array[];
  private readonly slot: Map<number, number>;

  constructor(readonly latents: number[], readonly d: number, readonly m: number) {
    this.sumF = new Float64Array(m);
    this.sumF2 = new Float64Array(m);
    this.sumX = new Float64Array(d);
    this.sumX2 = new Float64Array(d);
    this.sumFX = latents.map(() => new Float64Array(d));
    this.sumFF = latents.map(() => new Float64Array(m));
    this.slot = new Map(latents.map((j, s) => [j, s]));
  }

  /** Adds `rows` tokens: activations x [rows, d] and their code. */
  add(x: Float32Array, code: SparseCode, rows: number): void {
    const d = this.d;
    for (let r = 0; r < rows; r++) {
      const xr = x.subarray(r * d, (r + 1) * d);
      for (let i = 0; i < d; i++) {
        this.sumX[i]! += xr[i]!;
        this.sumX2[i]! += xr[i]! * xr[i]!;
      }
      const e0 = code.rowPtr[r]!, e1 = code.rowPtr[r + 1]!;
      for (let e = e0; e < e1; e++) {
        const v = code.val[e]!;
        this.sumF[code.idx[e]!]! += v;
        this.sumF2[code.idx[e]!]! += v * v;
        const s = this.slot.get(code.idx[e]!);
        if (s === undefined || v === 0) continue;
        const fx = this.sumFX[s]!;
        for (let i = 0; i < d; i++) fx[i]! += v * xr[i]!;
        const ff = this.sumFF[s]!;
        for (let e2 = e0; e2 < e1; e2++) ff[code.idx[e2]!]! += v * code.val[e2]!;
      }
    }
    this.n += rows;
  }

  /** The tables of the s-th chosen latent; W_dec [m, d] (null: no linear decoder, no cosines). */
  tables(s: number, W_dec: Float32Array | null, rowsShown = 3): FeatureTables {
    const j = this.latents[s]!;
    const { d, m, n } = this;
    const pearson = (sumA: number, sumA2: number, sumB: number, sumB2: number, sumAB: number): number => {
      const den = (n * sumA2 - sumA * sumA) * (n * sumB2 - sumB * sumB);
      return den > 0 ? (n * sumAB - sumA * sumB) / Math.sqrt(den) : NaN;
    };
    const row = W_dec ? W_dec.subarray(j * d, (j + 1) * d) : null;
    const norm = (v: Float32Array) => Math.sqrt(v.reduce((a, b) => a + b * b, 0));
    const rowNorm = row ? norm(row) : 0;
    const best = (scores: Float64Array, skip: number) =>
      [...scores.keys()].filter((i) => i !== skip && Number.isFinite(scores[i]!))
        .sort((a, b) => scores[b]! - scores[a]! || a - b).slice(0, rowsShown);

    let l1 = 0;
    if (row) for (const v of row) l1 += Math.abs(v);
    const alignment = row
      ? best(Float64Array.from(row, Math.abs), -1).map((i) => ({ index: i, value: row[i]!, l1_share: l1 > 0 ? Math.abs(row[i]!) / l1 : 0 }))
      : [];

    const neuronCorr = Float64Array.from({ length: d }, (_, i) =>
      pearson(this.sumF[j]!, this.sumF2[j]!, this.sumX[i]!, this.sumX2[i]!, this.sumFX[s]![i]!));
    const neurons = best(neuronCorr, -1).map((i) => ({
      index: i, pearson: neuronCorr[i]!, cosine: row && rowNorm > 0 ? row[i]! / rowNorm : null,
    }));

    const featureCorr = Float64Array.from({ length: m }, (_, k) =>
      pearson(this.sumF[j]!, this.sumF2[j]!, this.sumF[k]!, this.sumF2[k]!, this.sumFF[s]![k]!));
    const features = best(featureCorr, j).map((k) => {
      let cosine: number | null = null;
      if (W_dec && rowNorm > 0) {
        const other = W_dec.subarray(k * d, (k + 1) * d);
        const otherNorm = norm(other);
        let dot = 0;
        for (let i = 0; i < d; i++) dot += row![i]! * other[i]!;
        cosine = otherNorm > 0 ? dot / (rowNorm * otherNorm) : null;
      }
      return { index: k, pearson: featureCorr[k]!, cosine };
    });
    return { neuron_alignment: alignment, correlated_neurons: neurons, correlated_features: features };
  }
}
