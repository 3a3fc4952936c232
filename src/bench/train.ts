/**
 * `saekit bench train`: tokens per second of one full training step (forward, backward,
 * the optimizer: Adam, as the peer, unless told otherwise) at the shapes of ../shared/bench/peer_topk_sae.py, configured as that peer is (no
 * AuxK, no gradient clipping, free decoder norms; vsae with unit variance and KL over all
 * latents) so the two measure the same work. `mp` (no peer here) runs at most k pursuit
 * steps per token; on random data every token takes all k. With `dead` latents (spread
 * evenly over the dictionary) AuxK is on at its default aux_k = d / 2, as a training run
 * pays for it once latents die.
 */
import { type MatmulPrecision, runtimeInfo, setThreads, withMatmulPrecision } from "../core/kernels.js";
import { Rng } from "../core/rng.js";
import { defaultConfig } from "../sae/config.js";
import { createSae } from "../sae/registry.js";
import { zerosLike } from "../sae/sae.js";
import { type OptimizerKind, createOptimizer, defaultLrFor } from "../train/optimizer.js";
import { initializeSae } from "../train/init.js";
import { round, timeIt } from "./timing.js";

export interface TrainBenchOptions {
  arch: "topk" | "vsae" | "abstopk" | "batchtopk" | "matryoshka" | "mp";
  d: number;
  m: number;
  k: number;
  batch: number;
  steps: number;
  threads: number;
  /** The matrix products' precision (kernels.ts). Default "highest". */
  matmulPrecision?: MatmulPrecision;
  /** Default "adam", as the peer. */
  optimizer?: OptimizerKind;
  /** Latents counted dead (AuxK trains them); default 0, AuxK off. */
  dead?: number;
}

export function benchTrain(o: TrainBenchOptions) {
  setThreads(o.threads);
  const extra = o.arch === "vsae" ? { beta: 1, kl_scope: "all", variance: "fixed", topk_mode: "relu", relu_mu: false } : {};
  const cfg = defaultConfig(o.arch === "mp"
    ? { architecture: "mp", d_in: o.d, d_sae: o.m, max_iterations: o.k, residual_threshold: 0 }
    : { architecture: o.arch, d_in: o.d, d_sae: o.m, k: o.k, decoder_norm: "none", ...(o.dead ? {} : { aux_k: 0 }), ...extra });
  const sae = createSae(cfg);
  const rng = new Rng(0);
  const x = rng.fillNormal(new Float32Array(o.batch * o.d));
  initializeSae(sae, rng, x, { decoderInitNorm: 1, bDecInit: "zeros" });
  const grads = zerosLike(sae.params);
  const kind = o.optimizer ?? "adam";
  const optimizer = createOptimizer(kind, sae.params);
  const lr = kind === "adam" ? 1e-4 : defaultLrFor(kind, o.m);
  let step = 0;
  const nDead = o.dead ?? 0;
  const dead = nDead > 0 ? Uint8Array.from({ length: o.m }, (_, j) => (Math.floor(((j + 1) * nDead) / o.m) > Math.floor((j * nDead) / o.m) ? 1 : 0)) : null;
  const precision = o.matmulPrecision ?? "highest";
  const t = withMatmulPrecision(precision, () => timeIt(() => {
    sae.lossAndGrad({ x, batch: o.batch, step, seed: 0, dead }, grads);
    optimizer.step(sae.params, grads, lr, step);
    step++;
  }, { warmup: 2, runs: o.steps }));
  const info = runtimeInfo();
  return {
    bench: "train" as const, impl: "saekit" as const, kernels: info.kernels, isa: info.isa, arch: o.arch,
    threads: o.threads, d: o.d, m: o.m, k: o.k, batch: o.batch, optimizer: kind, matmul_precision: precision, dead: nDead,
    aux_k: "aux_k" in sae.cfg ? sae.cfg.aux_k : 0,
    tokens_per_s: Math.round((o.batch / t.ms) * 1000), ms_per_step: round(t.ms, 2),
  };
}
