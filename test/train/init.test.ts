/**
 * Initialisation: tied weights at the set decoder norm, b_dec from the data (mean, geometric
 * median or zeros), the expected-norm input scale. The geometric median is checked by what
 * defines it: the sum of unit vectors from the points to it vanishes, nothing nearby is
 * closer to them in total, a median of numbers is the middle one, and an outlier barely
 * moves it.
 */
import { describe, expect, it } from "vitest";
import { Rng } from "../../src/core/rng.js";
import { defaultConfig } from "../../src/sae/config.js";
import { createSae } from "../../src/sae/registry.js";
import { expectedNormScale, geometricMedian, initializeSae } from "../../src/train/init.js";

/** sum_i ||y - x_i||, in float64. */
function totalDistance(x: Float32Array, rows: number, d: number, y: ArrayLike<number>): number {
  let total = 0;
  for (let r = 0; r < rows; r++) {
    let s = 0;
    for (let c = 0; c < d; c++) s += (x[r * d + c]! - y[c]!) ** 2;
    total += Math.sqrt(s);
  }
  return total;
}

function randomRows(rows: number, d: number, seed: number, scale = 1): Float32Array {
  const x = new Float32Array(rows * d);
  new Rng(seed).fillNormal(x, scale);
  return x;
}

describe("geometric median", () => {
  it("of numbers is the middle one, where the mean follows the outlier", () => {
    const x = Float32Array.of(0, 1, 10);
    expect(geometricMedian(x, 3, 1)[0]).toBeCloseTo(1, 4);
    expect(geometricMedian(Float32Array.of(-3, 2, 2.5, 7, 40), 5, 1)[0]).toBeCloseTo(2.5, 4);
  });

  it("is the point of least total distance: its gradient vanishes and no nearby point does better", () => {
    const rows = 300, d = 5;
    const x = randomRows(rows, d, 3);
    // Skew the cloud so that its median and mean differ.
    for (let r = 0; r < rows; r++) x[r * d] = Math.exp(x[r * d]!);
    const y = geometricMedian(x, rows, d);
    const grad = new Float64Array(d);
    for (let r = 0; r < rows; r++) {
      let s = 0;
      for (let c = 0; c < d; c++) s += (y[c]! - x[r * d + c]!) ** 2;
      for (let c = 0; c < d; c++) grad[c]! += (y[c]! - x[r * d + c]!) / Math.sqrt(s);
    }
    expect(Math.hypot(...grad) / rows).toBeLessThan(1e-5);
    const best = totalDistance(x, rows, d, y);
    const rng = new Rng(4);
    for (let t = 0; t < 20; t++) {
      const step = new Float32Array(d);
      rng.fillNormal(step, 0.01);
      expect(totalDistance(x, rows, d, y.map((v, c) => v + step[c]!))).toBeGreaterThan(best);
    }
    // The mean is not it, on this skewed cloud.
    const mean = Array.from({ length: d }, (_, c) => x.filter((_, i) => i % d === c).reduce((a, b) => a + b, 0) / rows);
    expect(totalDistance(x, rows, d, mean)).toBeGreaterThan(best + 1);
  });

  it("stays with the bulk of the data when one row is far away", () => {
    const rows = 201, d = 8;
    const x = randomRows(rows, d, 5);
    x.fill(1e6, (rows - 1) * d);
    const y = geometricMedian(x, rows, d);
    expect(Math.hypot(...y)).toBeLessThan(0.5);
    const meanNorm = Math.hypot(...Array.from({ length: d }, (_, c) => x.filter((_, i) => i % d === c).reduce((a, b) => a + b, 0) / rows));
    expect(meanNorm).toBeGreaterThan(1e4);
  });
});

describe("initializeSae", () => {
  const d = 12, m = 40, rows = 64;
  const sample = randomRows(rows, d, 7, 2);
  for (let r = 0; r < rows; r++) sample[r * d] += 5; // an offset for b_dec to find

  it("ties the encoder to the decoder, rows at the given norm, b_enc zero, b_dec from the data", () => {
    for (const [bDecInit, expected] of [
      ["mean", Array.from({ length: d }, (_, c) => sample.filter((_, i) => i % d === c).reduce((a, b) => a + b, 0) / rows)],
      ["geometric_median", Array.from(geometricMedian(sample, rows, d))],
      ["zeros", new Array<number>(d).fill(0)],
    ] as const) {
      const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: 4 }));
      initializeSae(sae, new Rng(1), sample, { decoderInitNorm: 0.1, bDecInit });
      const W_dec = sae.params.get("W_dec")!.data;
      for (let j = 0; j < m; j++) expect(Math.hypot(...W_dec.subarray(j * d, (j + 1) * d))).toBeCloseTo(0.1, 6);
      expect(sae.params.get("W_enc")!.data).toEqual(W_dec);
      expect(sae.params.get("b_enc")!.data.every((v) => v === 0)).toBe(true);
      const b_dec = Array.from(sae.params.get("b_dec")!.data);
      b_dec.forEach((v, c) => expect(v, `${bDecInit} b_dec[${c}]`).toBeCloseTo(expected[c]!, 5));
    }
  });

  it("is a function of the seed", () => {
    const init = (seed: number) => {
      const sae = createSae(defaultConfig({ architecture: "topk", d_in: d, d_sae: m, k: 4 }));
      initializeSae(sae, new Rng(seed), sample, { decoderInitNorm: 1, bDecInit: "mean" });
      return sae.params.get("W_dec")!.data;
    };
    expect(init(3)).toEqual(init(3));
    expect(init(3)).not.toEqual(init(4));
  });
});

describe("expectedNormScale", () => {
  it("scales rows to a mean squared norm of d", () => {
    const d = 16, rows = 50;
    const x = randomRows(rows, d, 9, 7);
    const s = expectedNormScale(x, d);
    let sq = 0;
    for (const v of x) sq += (s * v) ** 2;
    expect(sq / rows).toBeCloseTo(d, 3);
    expect(expectedNormScale(new Float32Array(d * 3), d)).toBe(1); // all-zero data: left alone
  });
});
