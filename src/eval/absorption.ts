/**
 * Feature absorption (SAEBench's absorption_first_letter eval; Chanin et al., "A is for
 * Absorption"): an SAE latent that looks like "starts with S" stays silent on some S-words
 * because a more specific latent ("snake") has absorbed the direction. Given activations of
 * words labelled with their first letter (first-letter.ts):
 *
 * 1. Ground-truth probes: one balanced L2 logistic probe per letter on the model's
 *    activations (train words); its unit weight vector p is the letter's direction.
 * 2. Main latents: an L1 logistic probe over all SAE latents ranks them for the letter
 *    (l1-logistic.ts); k-sparse probes (balanced logistic regression on the top k, k = 1 ..
 *    maxK) are scored by F1 on the test words, and k grows while F1 jumps by more than
 *    f1JumpThreshold: the top k latents are the letter's main latents (k > 1 is feature
 *    splitting).
 * 3. For each test word of the letter the ground-truth probe gets right, with x its
 *    activation, f its SAE code and proj_j = f_j (W_dec_j . p) each latent's share of the
 *    probe projection x . p:
 *    - absorption fraction: 0 if the main latents' share covers x . p, or if the top 3
 *      other latents with cos(W_dec_j, p) >= 0.1 and proj_j > 0 carry less than 0.4 of it;
 *      1 if the main latents contribute nothing; else absorbed / (absorbed + main) with
 *      absorbed = min(those latents' share, x . p - main share).
 *    - full absorption: no main latent fires (f_j < 1e-8), the latent with the largest
 *      share has cos >= 0.025 with p, and carries >= 0.4 of x . p.
 * 4. Per letter: mean absorption fraction and full-absorption rate over those words; the
 *    scores are the means over letters whose probe reaches minProbeF1, and null when fewer
 *    than minLetters letters do (the model cannot spell well enough to measure anything).
 *
 * SAEBench computes proj_j as f_j cos(W_dec_j, p) after folding decoder norms into the
 * code; f_j (W_dec_j . p) is the same quantity for any decoder norm.
 */
import { decoderMatrix, type Sae } from "../sae/sae.js";
import type { SparseCode } from "../sae/sparse-code.js";
import { fitL1LogisticCsr } from "./l1-logistic.js";
import { LETTERS } from "./first-letter.js";
import { balancedSampleWeights, fitLogisticRegression, predictLogistic } from "./logistic-regression.js";

export interface AbsorptionOptions {
  maxK?: number;
  f1JumpThreshold?: number;
  /** L1 strength of the latent-ranking probe (SAEBench: 0.01). */
  l1?: number;
  /** Weight decay of the ground-truth probes (SAEBench: 1e-4). */
  probeWeightDecay?: number;
  /** Letters whose ground-truth probe has a lower test F1 are left out (SAEBench: 0.6). */
  minProbeF1?: number;
  /** Fewer letters left than this: the model does not spell well enough; no scores (SAEBench: 20). */
  minLetters?: number;
  fullAbsorptionCosThreshold?: number;
  absorberCosThreshold?: number;
  projectionProportionThreshold?: number;
  maxAbsorbers?: number;
}

export const ABSORPTION_DEFAULTS: Required<AbsorptionOptions> = {
  maxK: 10, f1JumpThreshold: 0.03, l1: 0.01, probeWeightDecay: 1e-4, minProbeF1: 0.6, minLetters: 20,
  fullAbsorptionCosThreshold: 0.025, absorberCosThreshold: 0.1, projectionProportionThreshold: 0.4, maxAbsorbers: 3,
};

/** Activations [n, d] of words and each word's first letter (0 .. 25). */
export interface LabelledActivations {
  x: Float32Array;
  letters: Uint8Array;
  n: number;
}

export interface WordAbsorption {
  /** Row of the test set. */
  row: number;
  probe_projection: number;
  main_projection: number;
  absorption_fraction: number;
  is_full_absorption: boolean;
  /** The latent with the largest share of the probe projection, and that share. */
  top_latent: number;
  top_projection: number;
}

export interface LetterAbsorption {
  letter: string;
  /** Test F1 of the ground-truth probe. */
  probe_f1: number;
  /** False when the probe's F1 is below minProbeF1: the letter is left out of the scores. */
  included: boolean;
  main_latents: number[];
  /** Test F1 of the k-sparse probe for k = 1 .. maxK. */
  k_sparse_f1: number[];
  num_probe_true_positives: number;
  num_full_absorption: number;
  mean_absorption_fraction: number;
  full_absorption_rate: number;
  words: WordAbsorption[];
}

export interface AbsorptionResult {
  mean_absorption_fraction_score: number | null;
  mean_full_absorption_score: number | null;
  mean_num_split_features: number | null;
  std_dev_absorption_fraction_score: number | null;
  std_dev_full_absorption_score: number | null;
  std_dev_num_split_features: number | null;
  /** Letters whose probe reached minProbeF1 (the scores need at least minLetters). */
  letters_scored: number;
  letters: LetterAbsorption[];
}

/** F1 of predictions against labels (0 when there are no true positives). */
export function f1Score(pred: ArrayLike<boolean>, truth: ArrayLike<boolean>): number {
  let tp = 0, fp = 0, fn = 0;
  for (let i = 0; i < truth.length; i++) {
    if (pred[i] && truth[i]) tp++;
    else if (pred[i]) fp++;
    else if (truth[i]) fn++;
  }
  return tp === 0 ? 0 : (2 * tp) / (2 * tp + fp + fn);
}

/** The SAE code of every row, in one CSR (encode works in chunks on workspace buffers). */
export function encodeAll(sae: Sae, x: Float32Array, n: number, chunk = 1024): SparseCode {
  const d = sae.cfg.d_in;
  const rowPtr = new Int32Array(n + 1);
  const idx: number[] = [];
  const val: number[] = [];
  for (let start = 0; start < n; start += chunk) {
    const rows = Math.min(chunk, n - start);
    const code = sae.encode(x.subarray(start * d, (start + rows) * d), rows);
    for (let r = 0; r < rows; r++) {
      for (let e = code.rowPtr[r]!; e < code.rowPtr[r + 1]!; e++) {
        if (code.val[e] === 0) continue;
        idx.push(code.idx[e]!);
        val.push(code.val[e]!);
      }
      rowPtr[start + r + 1] = idx.length;
    }
  }
  return { batch: n, m: sae.cfg.d_sae, rowPtr, idx: Int32Array.from(idx), val: Float32Array.from(val) };
}

/** Columns `latents` of a CSR code as a dense [n, latents.length] matrix. */
function gatherLatents(code: SparseCode, latents: number[]): Float32Array {
  const k = latents.length;
  const where = new Map(latents.map((j, c) => [j, c]));
  const out = new Float32Array(code.batch * k);
  for (let i = 0; i < code.batch; i++) {
    for (let e = code.rowPtr[i]!; e < code.rowPtr[i + 1]!; e++) {
      const c = where.get(code.idx[e]!);
      if (c !== undefined) out[i * k + c] = code.val[e]!;
    }
  }
  return out;
}

export interface LetterProbe {
  w: Float64Array;
  b: number;
}

/** One balanced L2 logistic probe per letter on activations (the ground-truth directions). */
export function trainLetterProbes(train: LabelledActivations, d: number, weightDecay: number): LetterProbe[] {
  return Array.from({ length: LETTERS.length }, (_, L) => {
    const y = Uint8Array.from(train.letters.subarray(0, train.n), (l) => (l === L ? 1 : 0));
    if (!y.includes(1)) return { w: new Float64Array(d), b: -1 };
    // mean loss + (wd / 2) ||w||^2 is the C = 1 / (n wd) objective.
    const C = 1 / (train.n * weightDecay);
    const fit = fitLogisticRegression(train.x, train.n, d, y, { C, sampleWeight: balancedSampleWeights(y) });
    return { w: fit.w, b: fit.b };
  });
}

/** Absorption fraction and full absorption of one word (step 3 above). */
export function wordAbsorption(probeProjection: number, code: { idx: ArrayLike<number>; val: ArrayLike<number> },
  latentProjection: Float64Array, cosine: Float64Array, main: number[],
  o: Required<AbsorptionOptions>): Omit<WordAbsorption, "row"> {
  const isMain = new Set(main);
  const proj = new Map<number, number>();
  for (let e = 0; e < code.idx.length; e++) proj.set(code.idx[e]!, code.val[e]! * latentProjection[code.idx[e]!]!);
  const act = (j: number) => {
    for (let e = 0; e < code.idx.length; e++) if (code.idx[e] === j) return code.val[e]!;
    return 0;
  };
  let mainProjection = 0;
  for (const j of main) mainProjection += proj.get(j) ?? 0;
  // Other latents aligned with the probe that push along it: the candidate absorbers.
  const absorbers = [...proj].filter(([j, p]) => !isMain.has(j) && cosine[j]! >= o.absorberCosThreshold && p > 0)
    .map(([, p]) => p).sort((a, b) => b - a).slice(0, o.maxAbsorbers);
  const absorberTotal = absorbers.reduce((a, b) => a + b, 0);
  let fraction: number;
  const tooLittle = absorberTotal / probeProjection < o.projectionProportionThreshold;
  if (!(probeProjection > 0) || mainProjection >= probeProjection || tooLittle) {
    fraction = 0;
  } else if (mainProjection <= 0) {
    fraction = 1;
  } else {
    const absorbed = Math.min(absorberTotal, probeProjection - mainProjection);
    fraction = Math.min(1, Math.max(0, absorbed / (absorbed + mainProjection)));
  }
  // The latent carrying the largest share (a silent latent's share is 0).
  let top = -1;
  let topProjection = 0;
  for (const [j, p] of proj) if (p > topProjection || top < 0) [top, topProjection] = [j, p];
  if (topProjection < 0) [top, topProjection] = [-1, 0];
  const full = main.every((j) => act(j) < 1e-8) && top >= 0 && cosine[top]! >= o.fullAbsorptionCosThreshold &&
    probeProjection > 0 && topProjection / probeProjection >= o.projectionProportionThreshold;
  return {
    probe_projection: probeProjection, main_projection: mainProjection, absorption_fraction: fraction,
    is_full_absorption: full, top_latent: top, top_projection: topProjection,
  };
}

function meanStd(values: number[]): [number | null, number | null] {
  if (values.length === 0) return [null, null];
  const mean = values.reduce((a, b) => a + b, 0) / values.length;
  if (values.length < 2) return [mean, null];
  const variance = values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1);
  return [mean, Math.sqrt(variance)];
}

/** Steps 1-4 for an SAE with a linear decoder. */
export function measureAbsorption(sae: Sae, train: LabelledActivations, test: LabelledActivations,
  options: AbsorptionOptions = {}): AbsorptionResult {
  const o = { ...ABSORPTION_DEFAULTS, ...options };
  const W_dec = decoderMatrix(sae, "absorption");
  const { d_in: d, d_sae: m } = sae.cfg;
  const probes = trainLetterProbes(train, d, o.probeWeightDecay);
  const trainCode = encodeAll(sae, train.x, train.n);
  const testCode = encodeAll(sae, test.x, test.n);
  const letters: LetterAbsorption[] = [];
  for (let L = 0; L < LETTERS.length; L++) {
    const yTrain = Uint8Array.from(train.letters.subarray(0, train.n), (l) => (l === L ? 1 : 0));
    const isL = Array.from(test.letters.subarray(0, test.n), (l) => l === L);
    const nPos = yTrain.reduce((a, v) => a + v, 0);
    if (nPos === 0 || nPos === train.n || !isL.includes(true)) continue;
    // 1. The ground-truth probe on the test words.
    const probe = probes[L]!;
    const probeSays = Array.from(predictLogistic(probe, test.x, test.n, d), (v) => v === 1);
    const probeF1 = f1Score(probeSays, isL);
    // 2. Rank latents by an L1 probe; grow k while the k-sparse probe's F1 jumps.
    const ranking = fitL1LogisticCsr(trainCode, yTrain, { l1: o.l1, posWeight: (train.n - nPos) / nPos });
    const ranked = Array.from({ length: m }, (_, j) => j).sort((a, b) => ranking.w[b]! - ranking.w[a]! || a - b).slice(0, o.maxK);
    const kF1: number[] = [];
    let main: number[] = [];
    let best = -Infinity;
    let growing = true;
    for (let k = 1; k <= ranked.length; k++) {
      const latents = ranked.slice(0, k);
      const fit = fitLogisticRegression(gatherLatents(trainCode, latents), train.n, k, yTrain, {
        sampleWeight: balancedSampleWeights(yTrain),
      });
      const pred = predictLogistic(fit, gatherLatents(testCode, latents), test.n, k);
      const f1 = f1Score(Array.from(pred, (v) => v === 1), isL);
      kF1.push(f1);
      if (growing && f1 > best + o.f1JumpThreshold) {
        best = f1;
        main = latents;
      } else {
        growing = false;
      }
    }
    // 3. Each latent's share of the unit probe direction, and its cosine with it.
    let norm = 0;
    for (let c = 0; c < d; c++) norm += probe.w[c]! ** 2;
    norm = Math.sqrt(norm) || 1;
    const latentProjection = new Float64Array(m);
    const cosine = new Float64Array(m);
    for (let j = 0; j < m; j++) {
      let dot = 0, dd = 0;
      for (let c = 0; c < d; c++) {
        const v = W_dec[j * d + c]!;
        dot += v * probe.w[c]!;
        dd += v * v;
      }
      latentProjection[j] = dot / norm;
      cosine[j] = dd > 0 ? dot / (norm * Math.sqrt(dd)) : 0;
    }
    const words: WordAbsorption[] = [];
    for (let i = 0; i < test.n; i++) {
      if (!isL[i] || !probeSays[i]) continue;
      let probeProjection = 0;
      for (let c = 0; c < d; c++) probeProjection += test.x[i * d + c]! * probe.w[c]!;
      const lo = testCode.rowPtr[i]!, hi = testCode.rowPtr[i + 1]!;
      const code = { idx: testCode.idx.subarray(lo, hi), val: testCode.val.subarray(lo, hi) };
      words.push({ row: i, ...wordAbsorption(probeProjection / norm, code, latentProjection, cosine, main, o) });
    }
    const tp = words.length;
    const full = words.filter((w) => w.is_full_absorption).length;
    letters.push({
      letter: LETTERS[L]!, probe_f1: probeF1, included: probeF1 >= o.minProbeF1 && tp > 0, main_latents: main, k_sparse_f1: kF1,
      num_probe_true_positives: tp, num_full_absorption: full,
      mean_absorption_fraction: tp ? words.reduce((a, w) => a + w.absorption_fraction, 0) / tp : 0,
      full_absorption_rate: tp ? full / tp : 0, words,
    });
  }
  const included = letters.filter((l) => l.included);
  const used = included.length >= o.minLetters ? included : [];
  const [fracMean, fracStd] = meanStd(used.map((l) => l.mean_absorption_fraction));
  const [fullMean, fullStd] = meanStd(used.map((l) => l.full_absorption_rate));
  const [splitMean, splitStd] = meanStd(used.map((l) => l.main_latents.length));
  return {
    mean_absorption_fraction_score: fracMean, mean_full_absorption_score: fullMean, mean_num_split_features: splitMean,
    std_dev_absorption_fraction_score: fracStd, std_dev_full_absorption_score: fullStd, std_dev_num_split_features: splitStd,
    letters_scored: included.length, letters,
  };
}
