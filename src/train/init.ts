/**
 * Initialisation as the peers do it: tied weights (W_enc = W_dec^T, SAELens and
 * dictionary_learning), decoder rows of a set norm (SAELens' decoder_init_norm 0.1, or 1
 * for unit-norm decoders), b_enc = 0, and b_dec from the data: the mean (sparsify), the
 * geometric median (OpenAI, dictionary_learning) or zeros (SAELens v6). Or, to fine-tune,
 * a trained SAE as the start.
 */
import { kernels } from "../core/kernels.js";
import { Rng } from "../core/rng.js";
import { type ActivationSource, checkFinite, peekBatch } from "../data/source.js";
import type { SaeConfig } from "../sae/config.js";
import { foldDecoderNorms } from "../sae/decoder-norms.js";
import { createSae } from "../sae/registry.js";
import { type ParamSet, type Sae, cloneParams } from "../sae/sae.js";
import { withInputScaleFolded } from "../sae/saelens-format.js";

export type BDecInit = "mean" | "geometric_median" | "zeros";

export interface InitOptions {
  decoderInitNorm: number;
  bDecInit: BDecInit;
}

/** Initialises every parameter of `sae` in place from `rng` and a data sample [rows, d_in]. */
export function initializeSae(sae: Sae, rng: Rng, sample: Float32Array, opts: InitOptions): void {
  const { d_in: d } = sae.cfg;
  const p = sae.params;
  if (sae.cfg.architecture === "vaease") {
    initVaease(p, rng);
  } else {
    const W_dec = p.get("W_dec")!.data;
    const m = W_dec.length / d;
    for (let j = 0; j < m; j++) {
      const row = W_dec.subarray(j * d, (j + 1) * d);
      rng.fillNormal(row);
      const norm = Math.hypot(...row);
      for (let c = 0; c < d; c++) row[c] = (row[c]! / norm) * opts.decoderInitNorm;
    }
    // Tied: the encoder starts as the decoder's transpose (a matching pursuit SAE has none).
    p.get("W_enc")?.data.set(W_dec);
    p.get("b_enc")?.data.fill(0);
  }
  const rows = sample.length / d;
  const b_dec = p.get("b_dec")!.data;
  if (opts.bDecInit === "zeros" || rows === 0) b_dec.fill(0);
  else if (opts.bDecInit === "mean") b_dec.set(mean(sample, rows, d));
  else b_dec.set(geometricMedian(sample, rows, d));
}

/** N(0, 1/fan_in) weights for the MLP and heads, a 1/sqrt(kappa) decoder, zero biases. */
function initVaease(p: ParamSet, rng: Rng): void {
  for (const [name, t] of p) {
    if (name === "log_gamma" || name === "b_dec") continue;
    if (name.startsWith("b_")) {
      t.data.fill(0);
    } else {
      const fanIn = t.shape[1]!;
      const scale = name === "W_dec" ? 1 / Math.sqrt(t.shape[0]!) : 1 / Math.sqrt(fanIn);
      rng.fillNormal(t.data, scale);
    }
  }
}

/**
 * Fine-tuning's start (SAELens' from_pretrained_path): a copy of `start`, which takes raw
 * activations as a saved SAE does, under `cfg` (the same architecture and size, settings
 * possibly changed), ready to train on s x with s the input scale a fresh run would use on
 * the sample x. `start` is left as it was.
 */
export function startFromSae(start: Sae, cfg: SaeConfig, x: Float32Array,
  normalizeActivations: "none" | "expected_norm"): { sae: Sae; inputScale: number } {
  if (start.cfg.architecture !== cfg.architecture || start.cfg.d_in !== cfg.d_in || start.cfg.d_sae !== cfg.d_sae) {
    throw new Error(`the SAE to fine-tune is a ${start.cfg.architecture} SAE ${start.cfg.d_in}x${start.cfg.d_sae}; this run trains a ${cfg.architecture} SAE ${cfg.d_in}x${cfg.d_sae}`);
  }
  const inputScale = inputScaleOf(x, cfg.d_in, normalizeActivations);
  // It takes x and will be fed s x: fold 1/s into a copy.
  const sae = withInputScaleFolded(createSae(cfg, cloneParams(start.params), cloneParams(start.buffers)), 1 / inputScale);
  // The scale leaves a unit-norm decoder's rows at norm s, which the constraint would snap
  // back to 1, changing what the SAE computes. For the TopK family, whose codes scale with
  // their pre-activations, moving the norms into the encoder (and BatchTopK's threshold)
  // keeps the codes and reconstructions exactly, the rows' norms being equal. A start whose
  // rows differ in norm (Schedule-Free's average, which the constraint never touched) ranks
  // its latents by pre-activation times norm from here on, each code still decoding as before.
  if (cfg.decoder_norm === "unit" && ["topk", "abstopk", "batchtopk", "matryoshka"].includes(cfg.architecture)) {
    foldDecoderNorms(new Map([...sae.params, ...sae.buffers]), ["b_enc", ...(sae.buffers.has("threshold") ? ["threshold"] : [])]);
  }
  return { sae, inputScale };
}

/** Norm of decoder rows at init: 1 for unit-norm decoders, else SAELens' 0.1. */
export function defaultDecoderInitNorm(cfg: SaeConfig): number {
  return cfg.decoder_norm === "unit" ? 1 : 0.1;
}

/** Rows every trainer initialises from: min(32768, max(batchSize, 4096)). */
export function initSampleRows(batchSize: number): number {
  return Math.min(32768, Math.max(batchSize, 4096));
}

/**
 * Initialises an SAE for training on a stream, as every trainer does: from the stream's
 * first initSampleRows(batchSize) rows (peeked, not consumed). Returns the input scale.
 */
export function initializeFromSource(sae: Sae, source: ActivationSource, o: InitOptions & {
  batchSize: number; seed: number; normalizeActivations: "none" | "expected_norm";
}): number {
  return initializeFromSample(sae, peekBatch(source, initSampleRows(o.batchSize)), o);
}

/**
 * Initialises an SAE from a sample of its training rows (and a transcoder's targets),
 * refused if not finite: the expected-norm input scale when asked, then b_dec at the
 * centre of the outputs (the targets of a transcoder). Returns the input scale.
 */
export function initializeFromSample(sae: Sae, sample: { x: Float32Array; target: Float32Array | null }, o: InitOptions & {
  seed: number; normalizeActivations: "none" | "expected_norm";
}): number {
  const inputScale = inputScaleOf(sample.x, sae.cfg.d_in, o.normalizeActivations);
  if (sample.target) checkFinite(sample.target, "training targets");
  const outputs = sample.target ?? sample.x;
  if (inputScale !== 1) kernels().scale(outputs, inputScale);
  initializeSae(sae, new Rng(o.seed), outputs, { decoderInitNorm: o.decoderInitNorm, bDecInit: o.bDecInit });
  return inputScale;
}

/** A run's input scale from a sample of its rows, refused if not finite: expectedNormScale or 1. */
function inputScaleOf(x: Float32Array, d: number, normalizeActivations: "none" | "expected_norm"): number {
  checkFinite(x, "training data");
  return normalizeActivations === "expected_norm" ? expectedNormScale(x, d) : 1;
}

/** s with E||s x||^2 = d over the sample (SAELens' expected_average_only_in normalisation). */
export function expectedNormScale(sample: Float32Array, d: number): number {
  const rows = sample.length / d;
  const meanSq = kernels().sumSquares(sample) / rows;
  return meanSq > 0 ? Math.sqrt(d / meanSq) : 1;
}

export function mean(x: Float32Array, rows: number, d: number): Float64Array {
  const out = new Float64Array(d);
  for (let r = 0; r < rows; r++) for (let c = 0; c < d; c++) out[c]! += x[r * d + c]!;
  for (let c = 0; c < d; c++) out[c]! /= rows;
  return out;
}

/**
 * The point minimising the sum of Euclidean distances to the rows (Weiszfeld's iteration
 * from the mean), robust to outliers in a way the mean is not.
 */
export function geometricMedian(x: Float32Array, rows: number, d: number, iterations = 100, tol = 1e-7): Float64Array {
  let y = mean(x, rows, d);
  for (let it = 0; it < iterations; it++) {
    const next = new Float64Array(d);
    let wsum = 0;
    for (let r = 0; r < rows; r++) {
      let dist = 0;
      for (let c = 0; c < d; c++) dist += (x[r * d + c]! - y[c]!) ** 2;
      const w = 1 / Math.max(Math.sqrt(dist), 1e-12);
      wsum += w;
      for (let c = 0; c < d; c++) next[c]! += w * x[r * d + c]!;
    }
    let move = 0;
    let size = 0;
    for (let c = 0; c < d; c++) {
      next[c]! /= wsum;
      move += (next[c]! - y[c]!) ** 2;
      size += next[c]! ** 2;
    }
    y = next;
    if (Math.sqrt(move) <= tol * Math.max(1, Math.sqrt(size))) break;
  }
  return y;
}
