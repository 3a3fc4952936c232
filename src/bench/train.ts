/**
 * `saekit bench train`: tokens per second of one full training step (forward, backward,
 * the optimizer: Adam, as the peer, unless told otherwise) at the shapes of ../shared/bench/peer_topk_sae.py, configured as that peer is (no
 * AuxK, no gradient clipping, free decoder norms; vsae with unit variance and KL over all
 * latents) so the two measure the same work. `mp` (no peer here) runs at most k pursuit
 * steps per token; on random data every token takes all k. With `dead` latents (spread
 * evenly over the dictionary) AuxK is on at its default aux_k = d / 2, as a training run
 * pays for it once latents die (for jumprelu: the pre-activation loss on them, at SAELens'
 * coefficient 3e-6).
 *
 * relu, jumprelu and gated (bench/peer_relu_sae.py computes their steps as SAELens does,
 * with the sparsity coefficients at 1) select no k: as initialised they fire about half their latents, as such SAEs do when
 * training starts; with `l0` their bias (relu, gated) or threshold (jumprelu) is set once so
 * that the batch's l0 * batch largest pre-activations fire, as after training.
 */
import { SelectMode } from "../core/kernel-api.js";
import { type MatmulPrecision, kernels, runtimeInfo, setThreads, withMatmulPrecision } from "../core/kernels.js";
import { Rng } from "../core/rng.js";
import { defaultConfig } from "../sae/config.js";
import { createSae } from "../sae/registry.js";
import { type Sae, zerosLike } from "../sae/sae.js";
import { type OptimizerKind, createOptimizer, defaultLrFor } from "../train/optimizer.js";
import { initializeSae } from "../train/init.js";
import { round, timeIt } from "./timing.js";

export interface TrainBenchOptions {
  arch: "topk" | "vsae" | "abstopk" | "batchtopk" | "matryoshka" | "mp" | "relu" | "jumprelu" | "gated";
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
  /** relu, jumprelu, gated: the L0 to set them to (default 0: as initialised, ~m / 2). */
  l0?: number;
}

/** The architectures without a k, whose L0 follows their biases or thresholds. */
export const UNSELECTED_ARCHS = ["relu", "jumprelu", "gated"] as const;
const unselected = (arch: TrainBenchOptions["arch"]) => (UNSELECTED_ARCHS as readonly string[]).includes(arch);

/**
 * Shifts a relu or gated SAE's b_enc (the gate's bias), or sets a jumprelu SAE's threshold,
 * to the (l0 * batch)-th largest pre-activation of x, so that about l0 latents fire a token.
 */
function setL0(sae: Sae, x: Float32Array, batch: number, l0: number): void {
  const { d_in: d, d_sae: m } = sae.cfg;
  const k = kernels();
  const pre = new Float32Array(batch * m);
  k.sgemm(false, true, batch, m, d, 1, x, d, sae.params.get("W_enc")!.data, d, 0, pre, m);
  const top = l0 * batch;
  const vals = new Float32Array(top);
  const count = k.batchTopk(pre, batch, m, top, SelectMode.Value, null, new Int32Array(batch + 1), new Int32Array(top), vals);
  let q = Infinity;
  for (let e = 0; e < count; e++) q = Math.min(q, vals[e]!);
  if (!(q > 0)) throw new Error(`--l0 ${l0}: that many pre-activations per token are not all positive; ask for fewer than half of --m`);
  if (sae.cfg.architecture === "jumprelu") sae.params.get("log_threshold")!.data.fill(Math.log(q));
  else sae.params.get("b_enc")!.data.fill(-q);
}

export function benchTrain(o: TrainBenchOptions) {
  setThreads(o.threads);
  const extra = o.arch === "vsae" ? { beta: 1, kl_scope: "all", variance: "fixed", topk_mode: "relu", relu_mu: false } : {};
  const cfg = defaultConfig(o.arch === "mp"
    ? { architecture: "mp", d_in: o.d, d_sae: o.m, max_iterations: o.k, residual_threshold: 0 }
    : o.arch === "jumprelu" ? { architecture: o.arch, d_in: o.d, d_sae: o.m, pre_act_loss_coefficient: o.dead ? 3e-6 : 0 }
    : unselected(o.arch) ? { architecture: o.arch, d_in: o.d, d_sae: o.m, decoder_norm: "none", l1_coefficient: 1 }
    : { architecture: o.arch, d_in: o.d, d_sae: o.m, k: o.k, decoder_norm: "none", ...(o.dead ? {} : { aux_k: 0 }), ...extra });
  const sae = createSae(cfg);
  const rng = new Rng(0);
  const x = rng.fillNormal(new Float32Array(o.batch * o.d));
  initializeSae(sae, rng, x, { decoderInitNorm: 1, bDecInit: "zeros" });
  if (o.l0) setL0(sae, x, o.batch, o.l0);
  const grads = zerosLike(sae.params);
  const kind = o.optimizer ?? "adam";
  const optimizer = createOptimizer(kind, sae.params);
  const lr = kind === "adam" ? 1e-4 : defaultLrFor(kind, o.m);
  let step = 0;
  const nDead = o.dead ?? 0;
  const dead = nDead > 0 ? Uint8Array.from({ length: o.m }, (_, j) => (Math.floor(((j + 1) * nDead) / o.m) > Math.floor((j * nDead) / o.m) ? 1 : 0)) : null;
  const precision = o.matmulPrecision ?? "highest";
  let l0 = 0;
  // L0 and the latents that fired, as the trainer counts them each step (TrainingCore.step).
  const fired = new Uint8Array(o.m);
  const t = withMatmulPrecision(precision, () => timeIt(() => {
    const { code } = sae.lossAndGrad({ x, batch: o.batch, step, seed: 0, dead }, grads);
    l0 = kernels().codeFirings(code.batch, code.m, code.rowPtr, code.idx, code.val, fired, null) / code.batch;
    optimizer.step(sae.params, grads, lr, step);
    step++;
  }, { warmup: 2, runs: o.steps }));
  const info = runtimeInfo();
  return {
    bench: "train" as const, impl: "saekit" as const, kernels: info.kernels, isa: info.isa, arch: o.arch,
    threads: o.threads, d: o.d, m: o.m, ...(unselected(o.arch) ? {} : { k: o.k }), batch: o.batch, optimizer: kind,
    matmul_precision: precision, dead: nDead, aux_k: "aux_k" in sae.cfg ? sae.cfg.aux_k : 0,
    // The last timed step's code, for the architectures whose L0 is not their k.
    l0: round(l0, 1),
    tokens_per_s: Math.round((o.batch / t.ms) * 1000), ms_per_step: round(t.ms, 2),
  };
}
