/**
 * Reconstruction and sparsity metrics as SAEBench's core eval defines them, accumulated
 * over any number of batches (numerators and denominators are summed over all tokens and
 * divided once at the end, so batching does not change the result):
 *
 *   FVU  = sum_t ||x_t - x_hat_t||^2 / sum_t ||x_t - mean||^2     (mean over all tokens)
 *   explained variance = 1 - FVU
 *   cossim = mean_t cos(x_t, x_hat_t);   l2_ratio = mean_t ||x_hat_t|| / ||x_t||
 *   relative reconstruction bias = sum_t ||x_hat_t||^2 / sum_t <x_t, x_hat_t>
 *   mse = mean over tokens and dimensions of (x - x_hat)^2
 *   l2_norm_in / l2_norm_out = mean_t ||x_t|| / mean_t ||x_hat_t||
 *   L0 = mean_t #{j : f_tj != 0}  (f != 0, not f > 0: signed latents count);  L1 = mean_t sum_j |f_tj|
 *   density_j = fraction of tokens where f_j != 0;  frac_alive = #{j : density_j > 0} / d_sae
 *   consistent activation heuristic_j = (tokens where f_j != 0) / (prompts where it fires
 *     at least once): how many times per prompt a latent fires, once it fires at all
 *
 * All sums are float64.
 */
import type { SparseCode } from "../sae/sparse-code.js";

export class ReconstructionMetrics {
  private tokens = 0;
  private sse = 0;
  private sumSq = 0;
  private readonly sum: Float64Array;
  private cosSum = 0;
  private ratioSum = 0;
  private hatSq = 0;
  private cross = 0;
  private normIn = 0;
  private normOut = 0;

  constructor(readonly d: number) {
    this.sum = new Float64Array(d);
  }

  add(x: Float32Array, xHat: Float32Array, batch: number): void {
    const d = this.d;
    for (let b = 0; b < batch; b++) {
      let err = 0;
      let xx = 0;
      let hh = 0;
      let xh = 0;
      for (let c = 0; c < d; c++) {
        const xv = x[b * d + c]!;
        const hv = xHat[b * d + c]!;
        err += (xv - hv) ** 2;
        xx += xv * xv;
        hh += hv * hv;
        xh += xv * hv;
        this.sum[c]! += xv;
      }
      this.sse += err;
      this.sumSq += xx;
      this.hatSq += hh;
      this.cross += xh;
      this.normIn += Math.sqrt(xx);
      this.normOut += Math.sqrt(hh);
      this.cosSum += xx > 0 && hh > 0 ? xh / Math.sqrt(xx * hh) : 0;
      this.ratioSum += xx > 0 ? Math.sqrt(hh / xx) : 0;
    }
    this.tokens += batch;
  }

  result() {
    const n = this.tokens;
    let meanSq = 0;
    for (let c = 0; c < this.d; c++) meanSq += (this.sum[c]! / n) ** 2;
    const sst = this.sumSq - n * meanSq;
    const fvu = sst > 0 ? this.sse / sst : NaN;
    return {
      tokens: n,
      fvu,
      explained_variance: 1 - fvu,
      mse: this.sse / (n * this.d),
      sse_per_token: this.sse / n,
      cossim: this.cosSum / n,
      l2_ratio: this.ratioSum / n,
      l2_norm_in: this.normIn / n,
      l2_norm_out: this.normOut / n,
      relative_reconstruction_bias: this.cross !== 0 ? this.hatSq / this.cross : NaN,
    };
  }
}

export class SparsityMetrics {
  private tokens = 0;
  private active = 0;
  private l1 = 0;
  private prompts = 0;
  readonly fires: Float64Array;
  /** Per latent: the largest |f| seen, and the sum of |f| over the tokens where it fires. */
  readonly maxAbs: Float64Array;
  readonly sumAbs: Float64Array;
  /** Per latent: prompts in which it fired at least once. */
  readonly promptsFired: Float64Array;
  /** Per latent: the last prompt it fired in (to count each prompt once). */
  private readonly lastPrompt: Float64Array;

  constructor(readonly m: number) {
    this.fires = new Float64Array(m);
    this.maxAbs = new Float64Array(m);
    this.sumAbs = new Float64Array(m);
    this.promptsFired = new Float64Array(m);
    this.lastPrompt = new Float64Array(m).fill(-1);
  }

  /**
   * Adds a batch of codes; each run of `rowsPerPrompt` consecutive rows is one prompt, or,
   * given a row's prompt index within the batch for every row, the prompts are as it says.
   */
  add(code: SparseCode, rowsPerPrompt: number | { promptOf: Int32Array; prompts: number } = 1): void {
    const promptOf = typeof rowsPerPrompt === "number" ? null : rowsPerPrompt.promptOf;
    const per = typeof rowsPerPrompt === "number" ? rowsPerPrompt : 1;
    for (let b = 0; b < code.batch; b++) {
      const prompt = this.prompts + (promptOf ? promptOf[b]! : Math.floor(b / per));
      for (let e = code.rowPtr[b]!; e < code.rowPtr[b + 1]!; e++) {
        const v = code.val[e]!;
        if (v === 0) continue;
        const j = code.idx[e]!;
        const a = Math.abs(v);
        this.fires[j]!++;
        this.active++;
        this.l1 += a;
        this.sumAbs[j]! += a;
        if (a > this.maxAbs[j]!) this.maxAbs[j] = a;
        if (this.lastPrompt[j] !== prompt) {
          this.lastPrompt[j] = prompt;
          this.promptsFired[j]!++;
        }
      }
    }
    this.tokens += code.batch;
    this.prompts += typeof rowsPerPrompt === "number" ? Math.ceil(code.batch / per) : rowsPerPrompt.prompts;
  }

  /** Per latent: mean |f| over the tokens where it fires (0 if it never does). */
  meanActive(): Float64Array {
    return this.sumAbs.map((s, j) => (this.fires[j]! > 0 ? s / this.fires[j]! : 0));
  }

  /** Per latent: firings per prompt among the prompts where it fires (null if it never does). */
  consistentActivation(): Array<number | null> {
    return Array.from(this.fires, (f, j) => (this.promptsFired[j]! > 0 ? f / this.promptsFired[j]! : null));
  }

  /** Per latent: fraction of tokens where it is non-zero. */
  density(): Float64Array {
    return this.fires.map((f) => f / Math.max(1, this.tokens));
  }

  result() {
    const density = this.density();
    let alive = 0;
    let over1 = 0;
    let over10 = 0;
    for (const p of density) {
      if (p > 0) alive++;
      if (p > 0.01) over1++;
      if (p > 0.1) over10++;
    }
    return {
      l0: this.active / Math.max(1, this.tokens),
      l1: this.l1 / Math.max(1, this.tokens),
      frac_alive: alive / this.m,
      frac_dead: 1 - alive / this.m,
      freq_over_1_percent: over1 / this.m,
      freq_over_10_percent: over10 / this.m,
      density_histogram: densityHistogram(density),
    };
  }
}

/**
 * Histogram of log10(density + 1e-10) over latents (SAELens' feature-density plot), with
 * `bins` equal-width bins spanning [-10, 0]; dead latents land in the first bin.
 */
export function densityHistogram(density: ArrayLike<number>, bins = 50): { edges: number[]; counts: number[] } {
  const lo = -10;
  const hi = 0;
  const counts = new Array<number>(bins).fill(0);
  for (let j = 0; j < density.length; j++) {
    const v = Math.log10(density[j]! + 1e-10);
    const i = Math.min(bins - 1, Math.max(0, Math.floor(((v - lo) / (hi - lo)) * bins)));
    counts[i]!++;
  }
  // Each edge is one rounding of an exact quotient, so -3.6 prints as -3.6, not -3.5999999999999996.
  const edges = Array.from({ length: bins + 1 }, (_, i) => (lo * (bins - i) + hi * i) / bins);
  return { edges, counts };
}

/** Equal-width histogram of values over [min(0, smallest), largest] (activations, maxima). */
export function linearHistogram(values: number[], bins: number): { edges: number[]; counts: number[] } {
  const lo = values.reduce((a, v) => Math.min(a, v), 0);
  const hi = values.reduce((a, v) => Math.max(a, v), lo + 1e-12);
  const edges = Array.from({ length: bins + 1 }, (_, i) => lo + ((hi - lo) * i) / bins);
  const counts = new Array<number>(bins).fill(0);
  for (const v of values) counts[Math.min(bins - 1, Math.floor(((v - lo) / (hi - lo)) * bins))]!++;
  return { edges, counts };
}
