/**
 * The vSAE paper's analyses of an SAE's latents (Baker & Li, sections 4.2-4.3) on a set of
 * activations:
 *
 *   - the maximum activation each latent reaches, its histogram over living latents, and
 *     the living-feature fraction (a latent lives if it fires, f != 0, on any token);
 *   - per latent, utilization (fraction of tokens where it fires) and mean |f| when active;
 *   - how far apart the living latents' decoder directions are: each one's largest cosine
 *     with another's (the paper's hypothesis is that the vSAE's noise pushes features apart,
 *     which would lower these);
 *   - the global view: t-SNE of the living latents' decoder directions (unit W_dec rows;
 *     Barnes-Hut, so all of them, as the paper plots them, up to DEFAULT_TSNE_POINTS),
 *     k-means clusters on the 2-D embedding, and each cluster's size and mean utilization.
 *
 * Magnitudes are |f|, so signed latents (AbsTopK, vSAE with |z| selection) count the same way.
 */
import { Rng } from "../core/rng.js";
import { linearHistogram, SparsityMetrics } from "../eval/metrics.js";
import type { Sae } from "../sae/sae.js";
import { kMeans } from "./kmeans.js";
import { mostOpposite, nearestNeighbors, type Neighbors } from "./neighbors.js";
import { effectivePerplexity, neighborCount, tsne, type TsneMethod } from "./tsne.js";

/** Living latents the t-SNE map places at most by default: all of them in most SAEs. */
export const DEFAULT_TSNE_POINTS = 20000;

export interface LatentAnalysisOptions {
  /** Latents placed by t-SNE at most (living ones, a seeded sample beyond this; 0: no t-SNE). */
  maxPoints?: number;
  /** t-SNE: "barnes_hut" (default; O(n log n)) or "exact" (O(n^2), a few thousand latents at most). */
  method?: TsneMethod;
  /** Barnes-Hut t-SNE's angle (0.5). */
  angle?: number;
  /** t-SNE's starting layout: "pca" (default) or "random". */
  init?: "pca" | "random";
  clusters?: number;
  perplexity?: number;
  iterations?: number;
  seed?: number;
  /** Rows encoded at a time. */
  batch?: number;
  onProgress?: (what: string) => void;
  /** Called every 50 t-SNE iterations with the iteration number and the total. */
  onTsneIteration?: (iteration: number, iterations: number) => void;
}

export interface LatentAnalysis {
  d_sae: number;
  tokens: number;
  living: number;
  living_fraction: number;
  /** Per latent. */
  max_activation: number[];
  utilization: number[];
  mean_activation: number[];
  /** Histogram of max_activation over living latents (50 equal bins from 0). */
  max_activation_histogram: { edges: number[]; counts: number[] };
  /** null when fewer than 2 latents live or the SAE has no per-latent decoder rows. */
  tsne: null | {
    perplexity: number;
    kl: number;
    latent: number[];
    x: number[];
    y: number[];
    cluster: number[];
  };
  clusters: Array<{ cluster: number; size: number; mean_utilization: number; mean_activation: number }>;
  /**
   * For the latents the map places (tsne.latent): the largest cosine between each one's
   * decoder direction and another's, which latent that is, their mean, and a histogram
   * (50 bins over [0, 1], or [-1, 1] if any is negative); and the smallest cosine (the most
   * opposite direction), which latent, their mean, and the share of latents with an
   * antipode (cos < -0.9: the +f / -f pairs a non-negative SAE makes of an axis that fires
   * both ways, the AbsTopK paper's concern). null as tsne is.
   */
  decoder_similarity: null | {
    max_cosine: number[];
    nearest: number[];
    mean_max_cosine: number;
    histogram: { edges: number[]; counts: number[] };
    min_cosine: number[];
    opposite: number[];
    mean_min_cosine: number;
    antipodal_fraction: number;
  };
}

export function analyzeLatents(sae: Sae, x: Float32Array, rows: number, o: LatentAnalysisOptions = {}): LatentAnalysis {
  const { d_in: d, d_sae: m } = sae.cfg;
  if (x.length < rows * d) throw new RangeError(`analyzeLatents: ${x.length} values for ${rows} rows of ${d}`);
  const stats = new SparsityMetrics(m);
  const batch = o.batch ?? 4096;
  for (let r0 = 0; r0 < rows; r0 += batch) {
    const n = Math.min(batch, rows - r0);
    stats.add(sae.encode(x.subarray(r0 * d, (r0 + n) * d), n));
  }
  return analyzeLatentStats(sae, stats, rows, o);
}

/** The analysis from the codes' statistics already gathered over `rows` tokens. */
export function analyzeLatentStats(sae: Sae, stats: SparsityMetrics, rows: number, o: LatentAnalysisOptions = {}): LatentAnalysis {
  const { d_in: d, d_sae: m } = sae.cfg;
  const maxAct = [...stats.maxAbs];
  const utilization = [...stats.density()];
  const meanAct = [...stats.meanActive()];
  const living = [...Array(m).keys()].filter((j) => stats.fires[j]! > 0);

  const analysis: LatentAnalysis = {
    d_sae: m, tokens: rows, living: living.length, living_fraction: living.length / m,
    max_activation: maxAct, utilization, mean_activation: meanAct,
    max_activation_histogram: linearHistogram(living.map((j) => maxAct[j]!), 50), tsne: null, clusters: [],
    decoder_similarity: null,
  };
  const W_dec = sae.params.get("W_dec");
  if (Math.min(living.length, o.maxPoints ?? DEFAULT_TSNE_POINTS) < 2 || !W_dec || W_dec.shape[0] !== m) return analysis;

  // A seeded sample of the living latents, their decoder rows scaled to unit norm (t-SNE
  // then sees cosine geometry: ||u - v||^2 = 2 - 2 cos).
  const chosen = new Rng(o.seed ?? 0).shuffle([...living]);
  chosen.length = Math.min(chosen.length, o.maxPoints ?? DEFAULT_TSNE_POINTS);
  chosen.sort((a, b) => a - b);
  const n = chosen.length;
  const dirs = new Float64Array(n * d);
  chosen.forEach((j, p) => {
    let norm = 0;
    for (let c = 0; c < d; c++) norm += W_dec.data[j * d + c]! ** 2;
    norm = Math.sqrt(norm) || 1;
    for (let c = 0; c < d; c++) dirs[p * d + c] = W_dec.data[j * d + c]! / norm;
  });
  // One nearest-neighbour search serves both the decoder similarity (the nearest) and
  // Barnes-Hut t-SNE's affinities (the 3 x perplexity nearest).
  const perplexity = effectivePerplexity(o.perplexity ?? 30, n);
  const neighbors = nearestNeighbors(dirs, n, d, neighborCount(perplexity, n));
  analysis.decoder_similarity = decoderSimilarity(dirs, d, chosen, neighbors);
  o.onProgress?.(`t-SNE of ${n} living latents`);
  const iterations = o.iterations ?? 1000;
  const t = tsne(dirs, n, d, {
    perplexity, iterations, seed: o.seed ?? 0, method: o.method, angle: o.angle, init: o.init, neighbors,
    onProgress: o.onTsneIteration && ((it) => o.onTsneIteration!(it, iterations)),
  });
  const k = Math.min(o.clusters ?? 10, n);
  const km = kMeans(t.embedding, n, 2, k, o.seed ?? 0);
  analysis.tsne = {
    perplexity, kl: t.kl, latent: chosen,
    x: Array.from({ length: n }, (_, p) => t.embedding[2 * p]!),
    y: Array.from({ length: n }, (_, p) => t.embedding[2 * p + 1]!),
    cluster: [...km.labels],
  };
  analysis.clusters = Array.from({ length: k }, (_, c) => {
    const members = chosen.filter((_, p) => km.labels[p] === c);
    const mean = (v: number[]) => (members.length ? members.reduce((s, j) => s + v[j]!, 0) / members.length : 0);
    return { cluster: c, size: members.length, mean_utilization: mean(utilization), mean_activation: mean(meanAct) };
  });
  return analysis;
}

/** Each direction's largest cosine with another (dirs [n, d], unit-norm or zero rows), from its nearest neighbour, and its smallest. */
function decoderSimilarity(dirs: Float64Array, d: number, latent: number[], nb: Neighbors): LatentAnalysis["decoder_similarity"] {
  const n = latent.length;
  const nearest = Array.from({ length: n }, (_, p) => nb.index[p * nb.k]!);
  const maxCosine = nearest.map((q, p) => {
    let dot = 0;
    for (let c = 0; c < d; c++) dot += dirs[p * d + c]! * dirs[q * d + c]!;
    return dot;
  });
  const lo = maxCosine.some((v) => v < 0) ? -1 : 0;
  const bins = 50;
  const counts = new Array<number>(bins).fill(0);
  for (const v of maxCosine) counts[Math.max(0, Math.min(bins - 1, Math.floor(((v - lo) / (1 - lo)) * bins)))]!++;
  const opposite = mostOpposite(dirs, n, d);
  const minCosine = Array.from(opposite.dot);
  return {
    max_cosine: maxCosine,
    nearest: nearest.map((q) => latent[q]!),
    mean_max_cosine: maxCosine.reduce((a, b) => a + b, 0) / n,
    histogram: { edges: Array.from({ length: bins + 1 }, (_, i) => (lo * (bins - i) + i) / bins), counts },
    min_cosine: minCosine,
    opposite: Array.from(opposite.index, (q) => latent[q]!),
    mean_min_cosine: minCosine.reduce((a, b) => a + b, 0) / n,
    antipodal_fraction: minCosine.filter((v) => v < ANTIPODAL_COSINE).length / n,
  };
}

/** Below this cosine two decoder directions count as one axis's two ends. */
export const ANTIPODAL_COSINE = -0.9;
