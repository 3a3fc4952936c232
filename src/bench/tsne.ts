/**
 * `saekit bench tsne`: the latent map of `saekit analyze` on n unit vectors in R^d that
 * cluster as an SAE's decoder directions do (bench/peer_tsne.py times sklearn's TSNE on the
 * same recipe).
 */
import { runtimeInfo, setThreads } from "../core/kernels.js";
import { Rng } from "../core/rng.js";
import { tsne, type TsneMethod } from "../analysis/tsne.js";
import { round, timeIt } from "./timing.js";

export interface TsneBenchOptions {
  n: number;
  d: number;
  iterations: number;
  method: TsneMethod;
  threads: number;
  runs?: number;
}

/**
 * n unit vectors: each a random one of `clusters` Gaussian centres plus noise of a third of
 * its scale, normalised (decoder directions are unit-norm, and related latents point alike).
 */
export function clusteredDirections(n: number, d: number, clusters: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const centres = Float64Array.from({ length: clusters * d }, () => rng.normal());
  const x = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    const c = rng.int(clusters);
    let norm = 0;
    for (let t = 0; t < d; t++) {
      const v = centres[c * d + t]! + rng.normal() / 3;
      x[i * d + t] = v;
      norm += v * v;
    }
    for (let t = 0; t < d; t++) x[i * d + t]! /= Math.sqrt(norm);
  }
  return x;
}

export function benchTsne(o: TsneBenchOptions) {
  setThreads(o.threads);
  const points = clusteredDirections(o.n, o.d, 50, 0);
  let kl = 0;
  const t = timeIt(() => { kl = tsne(points, o.n, o.d, { iterations: o.iterations, method: o.method, seed: 0 }).kl; },
    { warmup: 1, runs: o.runs ?? 5 });
  const info = runtimeInfo();
  return {
    bench: "tsne" as const, impl: "saekit" as const, kernels: info.kernels, isa: info.isa, method: o.method, init: "pca",
    n: o.n, d: o.d, iterations: o.iterations, threads: o.threads, s: round(t.ms / 1000), kl: round(kl, 4),
  };
}
