/**
 * One optimization step of any SAE, with no I/O: what the trainer (trainer.ts) runs for
 * every batch, and what a browser page runs on activations in memory.
 *
 *   1. latents silent for deadAfterTokens tokens are marked dead (AuxK and the
 *      pre-activation loss train them);
 *   2. the SAE's forward and hand-written backward (end to end: of the model's loss with
 *      the reconstruction spliced in, through a stand-in target; endToEndLossAndGrad);
 *   3. for unit-norm decoders, the gradient's component along each decoder row is removed;
 *   4. the global gradient norm is clipped; the optimizer (Adam, Schedule-Free SignSGD or
 *      Muon) steps at the scheduled learning rate;
 *   5. unit-norm decoder rows are renormalised, and the SAE's own after-step hook runs
 *      (threshold EMAs, p-annealing's schedule);
 *   6. each latent's count of tokens since it last fired (f != 0) is updated.
 */
import { kernels } from "../core/kernels.js";
import type { SaeConfig } from "../sae/config.js";
import { type ParamSet, type Sae, type StepStats, type TrainStep, zerosLike } from "../sae/sae.js";
import { meanL0 } from "../sae/sparse-code.js";
import type { Optimizer } from "./optimizer.js";
import { type LrSchedule, lrAt } from "./schedule.js";

export interface CoreOptions {
  schedule: LrSchedule;
  /** Clip the global gradient norm to this (0: no clipping). */
  clipGradNorm: number;
  /** A latent is dead once it has not fired for this many tokens. */
  deadAfterTokens: number;
  /** Seed of the variational SAEs' noise streams. */
  seed: number;
  /**
   * TopK and AbsTopK: k starts at `from` and falls linearly to the config's k over `steps`
   * steps, as sparsify's k_decay_steps (many latents train at first, so fewer die).
   */
  kDecay?: { from: number; steps: number };
  /**
   * End-to-end training (sparsify's loss_fn ce / kl): the SAE's reconstruction is spliced
   * into a model and the model's loss, not the reconstruction error, trains it.
   */
  downstream?: Downstream;
}

/**
 * A model's loss with an SAE's reconstruction spliced in (data/splice-source.ts): for the
 * batch x [batch, d_in] last served, the loss with xHat in its place and d loss / d xHat.
 */
export interface Downstream {
  /** What the loss is (e.g. { loss_fn: "kl", downstream_mse: 0.1 }): checkpoints keep it, and a resumed run must match. */
  readonly settings: Record<string, unknown>;
  /**
   * The loss, its named parts for the metrics ("kl_loss", "downstream_mse", ...) and d loss / d xHat.
   * xHat is the SAE's workspace: read it during the call, do not keep it.
   */
  lossAndGrad(x: Float32Array, xHat: Float32Array, batch: number): { loss: number; terms: Record<string, number>; grad: Float32Array };
}

/**
 * Architectures whose loss is the squared error plus terms that do not read the target, so
 * that a stand-in target passes any gradient through (endToEndLossAndGrad): not vaease (its
 * error is scaled by a learned variance), matching pursuit, Matryoshka or gated SAEs (their
 * extra reconstructions of the target), nor Multi-TopK's.
 */
const END_TO_END = new Set(["relu", "panneal", "topk", "batchtopk", "jumprelu", "abstopk", "vsae"]);

/** Refuses SAEs end-to-end training cannot train through a stand-in target. */
export function checkEndToEnd(cfg: SaeConfig): void {
  if (!END_TO_END.has(cfg.architecture)) {
    throw new RangeError(`end-to-end training (a model's loss) trains ${[...END_TO_END].join(", ")} SAEs; a ${cfg.architecture} SAE's loss reconstructs its target in ways a model's gradient cannot stand in for`);
  }
  if ("multi_topk" in cfg && cfg.multi_topk) throw new RangeError("end-to-end training does not take Multi-TopK (its second reconstruction has no model loss); drop --multi-topk");
}

/** The k a step selects under a k decay from `from` to `to` over `steps` steps (sparsify's get_current_k). */
export function decayedK(from: number, to: number, steps: number, step: number): number {
  if (step >= steps) return to;
  const progress = step / steps;
  return Math.round(from * (1 - progress) + to * progress);
}

/**
 * Refuses what saekit does not train: a per-token input normalisation (read from other
 * tools' SAEs for inference only), and what cannot work with or without targets (a
 * transcoder's, or none): a skip connection without them (on a plain SAE, W_skip = I
 * reconstructs everything and leaves the code nothing to learn), and a matching pursuit
 * with them (it subtracts its decoder rows from the input, so they must live in the
 * input's space, not the target's).
 */
export function checkTrainingSettings(cfg: SaeConfig, hasTargets: boolean): void {
  if (cfg.input_normalization !== "none") {
    throw new RangeError(`saekit does not train SAEs with a per-token input normalisation (${cfg.input_normalization}); it reads them for inference`);
  }
  if (cfg.skip_connection && !hasTargets) {
    throw new RangeError("a skip connection is for transcoders (an SAE's W_skip would learn the identity): train it on a store harvested with --target-hook");
  }
  if (cfg.architecture === "mp" && hasTargets) {
    throw new RangeError("a matching pursuit cannot be a transcoder: it subtracts its decoder rows (output space) from its input; train it on a store without --target-hook");
  }
}

export class TrainingCore {
  readonly grads: ParamSet;
  /** Latents counted dead at the start of the last step. */
  readonly dead: Uint8Array;
  private readonly fired: Uint8Array;

  constructor(readonly sae: Sae, readonly optimizer: Optimizer, readonly o: CoreOptions,
    /** Per latent, tokens since it last fired (checkpoints save it). */
    readonly tokensSinceFired: Float64Array = new Float64Array(sae.cfg.d_sae)) {
    this.grads = zerosLike(sae.params);
    this.dead = new Uint8Array(sae.cfg.d_sae);
    this.fired = new Uint8Array(sae.cfg.d_sae);
    if (o.downstream) checkEndToEnd(sae.cfg);
    sae.startRun?.(o.schedule.steps);
  }

  /**
   * One step on x [batch, d_in] (and a transcoder's targets) at 0-based step `step`; `k`
   * is the k it selected, under a k decay, and `l0` its code's mean L0. With `fireCounts`,
   * each latent's count there grows by the tokens it fired on.
   */
  step(x: Float32Array, batch: number, step: number, target?: Float32Array, fireCounts?: Float64Array): { stats: StepStats; lr: number; k?: number; l0: number } {
    const { sae, grads, dead, tokensSinceFired } = this;
    const { d_in: d, d_sae: m } = sae.cfg;
    const k = kernels();
    for (let j = 0; j < m; j++) dead[j] = tokensSinceFired[j]! >= this.o.deadAfterTokens ? 1 : 0;

    const decay = this.o.kDecay;
    const kNow = decay && "k" in sae.cfg ? decayedK(decay.from, sae.cfg.k, decay.steps, step) : undefined;
    const s: TrainStep = { x, batch, step, seed: this.o.seed, dead, target, ...(kNow !== undefined ? { k: kNow } : {}) };
    const downstream = this.o.downstream;
    const stats = downstream ? endToEndLossAndGrad(sae, s, downstream, grads) : sae.lossAndGrad(s, grads);
    if (!Number.isFinite(stats.loss)) {
      throw new Error(`the loss became ${stats.loss} at step ${step}; lower the learning rate or normalise the inputs`);
    }
    const W_dec = sae.params.get("W_dec")?.data;
    const unitDecoder = sae.cfg.decoder_norm === "unit" && W_dec !== undefined;
    if (unitDecoder) k.removeParallelComponent(W_dec, grads.get("W_dec")!.data, m, d);
    if (this.o.clipGradNorm > 0) clipGlobalNorm(grads, this.o.clipGradNorm);
    const lr = lrAt(this.o.schedule, step);
    this.optimizer.step(sae.params, grads, lr, step);
    if (unitDecoder) normalizeRows(W_dec, m, d);
    sae.afterStep?.(stats);

    // Which latents fired, the trainer's per-latent counts and the step's L0: one pass over
    // the code (33M entries in a fresh ReLU SAE's half-dense code at m = 16384).
    this.fired.fill(0);
    const { code } = stats;
    const firing = k.codeFirings(code.batch, code.m, code.rowPtr, code.idx, code.val, this.fired, fireCounts ?? null);
    for (let j = 0; j < m; j++) tokensSinceFired[j] = this.fired[j] ? 0 : tokensSinceFired[j]! + batch;
    return { stats, lr, l0: code.batch === 0 ? 0 : firing / code.batch, ...(kNow !== undefined ? { k: kNow } : {}) };
  }
}

/**
 * An end-to-end step's forward and backward: `grads` gets the gradient of the model's loss
 * (plus the SAE's own sparsity terms) in the SAE's parameters. The SAE's loss is
 * (1 / B) sum ||x_hat - y||^2 plus terms that do not read y, so its gradient in x_hat is
 * (2 / B)(x_hat - y); with the stand-in target
 *   y = x_hat - (B / 2) g,   g = d (model loss) / d x_hat,
 * that is g itself, and the SAE's own backward carries the model's gradient to its
 * weights. The step makes the stand-in as soon as its code is decoded
 * (TrainStep.targetFromReconstruction), so the encoder and its selection run once. AuxK
 * still fits the true residual x - x_hat. The stand-in is float32, so the gradient the SAE
 * sees carries a rounding error of about 6e-8 |x_hat| per element (relative to g's own
 * size, small unless activations are large and the model's gradient tiny).
 */
export function endToEndLossAndGrad(sae: Sae, s: TrainStep, downstream: Downstream, grads: ParamSet): StepStats {
  const n = s.batch * sae.cfg.d_in;
  let model: ReturnType<Downstream["lossAndGrad"]> | undefined;
  const standIn = new Float32Array(n);
  const targetFromReconstruction = (xHat: Float32Array) => {
    model = downstream.lossAndGrad(s.x, xHat.subarray(0, n), s.batch);
    for (let i = 0; i < n; i++) standIn[i] = xHat[i]! - (s.batch / 2) * model.grad[i]!;
    return standIn;
  };
  const stats = sae.lossAndGrad({ ...s, auxTarget: s.x, targetFromReconstruction }, grads);
  if (!model) throw new Error(`a ${sae.cfg.architecture} SAE's step did not make the end-to-end stand-in target`);
  const { loss, terms: modelTerms } = model;
  // The model's loss replaces the stand-in's error in the loss; "mse" reports the true
  // reconstruction error, which no longer trains the SAE.
  const { mse: standInError = 0, ...terms } = stats.terms;
  let sse = 0;
  for (let i = 0; i < n; i++) sse += (s.x[i]! - stats.xHat[i]!) ** 2;
  return { ...stats, loss: loss + stats.loss - standInError, terms: { ...modelTerms, mse: sse / s.batch, ...terms }, sumSquaredError: sse };
}

/**
 * What a step measured, for metrics: the loss and its terms, FVU against the step's
 * reconstruction target y [batch, d] (sum ||y - y_hat||^2 / sum ||y - mean_batch(y)||^2),
 * L0 (f != 0; the step's own count, when it made one) and the dead fraction.
 */
export function stepMetrics(stats: StepStats, y: Float32Array, batch: number, d: number, dead: Uint8Array,
  l0 = meanL0(stats.code)): Record<string, number> {
  const k = kernels();
  // sum ||y - mean||^2 = sum y^2 - B ||mean||^2.
  const mean = new Float32Array(d);
  k.colSums(y, batch, d, mean, false);
  k.scale(mean, 1 / batch);
  const total = k.sumSquares(y.subarray(0, batch * d)) - batch * k.sumSquares(mean);
  let nDead = 0;
  for (let j = 0; j < dead.length; j++) nDead += dead[j]!;
  // Loss terms come first so that no term can shadow a metric of the same name.
  return {
    ...stats.terms, ...stats.schedule, loss: stats.loss, fvu: total > 0 ? stats.sumSquaredError / total : 0, l0,
    dead_frac: nDead / dead.length,
  };
}

function clipGlobalNorm(grads: ParamSet, maxNorm: number): void {
  const k = kernels();
  let sq = 0;
  for (const g of grads.values()) sq += k.sumSquares(g.data);
  const norm = Math.sqrt(sq);
  if (norm > maxNorm) for (const g of grads.values()) k.scale(g.data, maxNorm / norm);
}

function normalizeRows(W: Float32Array, rows: number, cols: number): void {
  const k = kernels();
  const norms = new Float32Array(rows);
  k.rowNorms(W, rows, cols, norms);
  for (let r = 0; r < rows; r++) norms[r] = norms[r]! > 0 ? 1 / norms[r]! : 1;
  k.scaleRows(W, rows, cols, norms);
}
