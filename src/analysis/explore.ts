/**
 * Exploring an SAE on activations already in memory: the web explorer's engine, and a
 * library call for anyone holding activations in TypeScript.
 *
 *   - reconstruction and sparsity metrics as `saekit eval` reports them (FVU, explained
 *     variance, cosine, L0 with f != 0, frac alive, density histogram);
 *   - the vSAE paper's latent analyses (latents.ts) and their figures;
 *   - one latent's detail: the histogram of its non-zero activations and the rows where it
 *     fires hardest.
 */
import type { ActivationMatrix } from "../data/activation-matrix.js";
import { ReconstructionMetrics, SparsityMetrics, linearHistogram } from "../eval/metrics.js";
import type { Sae } from "../sae/sae.js";
import { analysisFigures } from "./figures.js";
import { type LatentAnalysis, analyzeLatentStats } from "./latents.js";
import { histogramSvg } from "./svg.js";

export interface Exploration {
  rows: number;
  reconstruction: ReturnType<ReconstructionMetrics["result"]>;
  sparsity: ReturnType<SparsityMetrics["result"]>;
  analysis: LatentAnalysis;
  /** SVG figures by name: the log-density histogram and the latent analysis figures. */
  figures: Record<string, string>;
}

export interface ExploreOptions {
  /** Latents placed by t-SNE at most (0: no t-SNE map). */
  tsnePoints?: number;
  seed?: number;
  /** Rows encoded at a time. */
  batch?: number;
}

export function exploreActivations(sae: Sae, acts: ActivationMatrix, o: ExploreOptions = {}): Exploration {
  const { d_in: d, d_sae: m } = sae.cfg;
  if (acts.d !== d) throw new RangeError(`the activations have width ${acts.d}, the SAE reads ${d}`);
  const rec = new ReconstructionMetrics(d);
  const sparsity = new SparsityMetrics(m);
  // One pass of the SAE feeds the metrics and the latent analysis.
  forEachBatch(acts, o.batch ?? 4096, (x, n) => {
    const code = sae.encode(x, n);
    sparsity.add(code);
    rec.add(x, sae.decode(code, x), n);
  });
  const analysis = analyzeLatentStats(sae, sparsity, acts.rows, { maxPoints: o.tsnePoints ?? 0, seed: o.seed ?? 0 });
  const s = sparsity.result();
  const figures = {
    density: histogramSvg({
      title: `log10 firing frequency of the ${m} latents (${(100 * s.frac_alive).toFixed(1)}% alive)`,
      xLabel: "log10 density", yLabel: "latents", ...s.density_histogram,
    }),
    ...analysisFigures({ name: "SAE", source: "", analysis }),
  };
  return { rows: acts.rows, reconstruction: rec.result(), sparsity: s, analysis, figures };
}

export interface LatentDetail {
  latent: number;
  /** Histogram of its non-zero activations (50 bins). */
  histogram: { edges: number[]; counts: number[] };
  /** The rows where |f| is largest, strongest first. */
  top: Array<{ row: number; value: number }>;
}

export function latentDetail(sae: Sae, acts: ActivationMatrix, latent: number, o: { top?: number; batch?: number } = {}): LatentDetail {
  if (!Number.isInteger(latent) || latent < 0 || latent >= sae.cfg.d_sae) throw new RangeError(`latent ${latent} is outside 0..${sae.cfg.d_sae - 1}`);
  const rows: number[] = [];
  const values: number[] = [];
  forEachBatch(acts, o.batch ?? 4096, (x, n, first) => {
    const code = sae.encode(x, n);
    for (let r = 0; r < n; r++) {
      for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
        if (code.idx[e] === latent && code.val[e] !== 0) {
          rows.push(first + r);
          values.push(code.val[e]!);
        }
      }
    }
  });
  const order = [...values.keys()].sort((a, b) => Math.abs(values[b]!) - Math.abs(values[a]!) || rows[a]! - rows[b]!);
  return {
    latent, histogram: linearHistogram(values, 50),
    top: order.slice(0, o.top ?? 20).map((i) => ({ row: rows[i]!, value: values[i]! })),
  };
}

/** Calls fn on the rows in chunks: (rows [n, d], n, index of the first). */
function forEachBatch(acts: ActivationMatrix, batch: number, fn: (x: Float32Array, n: number, first: number) => void): void {
  for (let r0 = 0; r0 < acts.rows; r0 += batch) {
    const n = Math.min(batch, acts.rows - r0);
    fn(acts.data.subarray(r0 * acts.d, (r0 + n) * acts.d), n, r0);
  }
}
