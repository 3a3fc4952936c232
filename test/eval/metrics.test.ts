/** Every metric formula against values computed by hand. */
import { describe, expect, it } from "vitest";
import { ReconstructionMetrics, SparsityMetrics, densityHistogram, linearHistogram } from "../../src/eval/metrics.js";
import { fromDense } from "../../src/sae/sparse-code.js";

describe("reconstruction metrics", () => {
  // x = [[1, 2], [3, 4]], x_hat = [[1, 1], [2, 4]].
  const x = Float32Array.from([1, 2, 3, 4]);
  const xHat = Float32Array.from([1, 1, 2, 4]);

  it("match hand-computed FVU, cosine, l2 ratio, bias and MSE", () => {
    const m = new ReconstructionMetrics(2);
    m.add(x, xHat, 2);
    const r = m.result();
    // SSE = (0 + 1) + (1 + 0) = 2. Mean = (2, 3); SST = (1+1) + (1+1) = 4. FVU = 0.5.
    expect(r.fvu).toBeCloseTo(0.5, 12);
    expect(r.explained_variance).toBeCloseTo(0.5, 12);
    expect(r.mse).toBeCloseTo(2 / 4, 12);
    expect(r.sse_per_token).toBeCloseTo(1, 12);
    // cos: row 1 = 3 / (sqrt5 sqrt2), row 2 = 22 / (5 sqrt20).
    expect(r.cossim).toBeCloseTo((3 / Math.sqrt(10) + 22 / (5 * Math.sqrt(20))) / 2, 12);
    expect(r.l2_ratio).toBeCloseTo((Math.sqrt(2 / 5) + Math.sqrt(20 / 25)) / 2, 12);
    // sum ||x_hat||^2 = 2 + 20 = 22; sum <x, x_hat> = 3 + 22 = 25.
    expect(r.relative_reconstruction_bias).toBeCloseTo(22 / 25, 12);
    expect(r.l2_norm_in).toBeCloseTo((Math.sqrt(5) + 5) / 2, 12);
    expect(r.l2_norm_out).toBeCloseTo((Math.sqrt(2) + Math.sqrt(20)) / 2, 12);
  });

  it("does not depend on how tokens are batched (sums, not means of batch ratios)", () => {
    const a = new ReconstructionMetrics(2);
    a.add(x, xHat, 2);
    const b = new ReconstructionMetrics(2);
    b.add(x.subarray(0, 2), xHat.subarray(0, 2), 1);
    b.add(x.subarray(2), xHat.subarray(2), 1);
    expect(b.result()).toEqual(a.result());
  });

  it("uses the variance about the mean, not about zero (the SAELens #659 bug)", () => {
    // A constant offset changes the second moment but not the variance.
    const m = new ReconstructionMetrics(1);
    m.add(Float32Array.from([100, 102]), Float32Array.from([101, 101]), 2);
    expect(m.result().fvu).toBeCloseTo(1, 12); // SSE 2, SST 2
  });
});

describe("sparsity metrics", () => {
  it("count L0 as f != 0, liveness and density by hand", () => {
    // 3 tokens, 4 latents; latent 3 never fires; negative values count.
    const dense = Float32Array.from([
      1, 0, -2, 0,
      0, 0, 3, 0,
      0.5, -1, 0, 0,
    ]);
    const s = new SparsityMetrics(4);
    s.add(fromDense(dense, 3, 4));
    const r = s.result();
    expect(r.l0).toBeCloseTo(5 / 3, 12);
    expect(r.l1).toBeCloseTo((3 + 3 + 1.5) / 3, 12);
    expect(r.frac_alive).toBe(0.75);
    expect(r.frac_dead).toBe(0.25);
    expect([...s.density()]).toEqual([2 / 3, 1 / 3, 2 / 3, 0]);
    expect(r.freq_over_10_percent).toBe(0.75);
    expect([...s.maxAbs]).toEqual([1, 1, 3, 0]);
    expect([...s.meanActive()]).toEqual([0.75, 1, 2.5, 0]);
  });

  it("counts firings per prompt among the prompts where a latent fires", () => {
    // Two prompts of 2 tokens in one batch, then a third prompt of 2 tokens in another.
    // Latent 0 fires at tokens 0, 1 (prompt 0) and 4 (prompt 2): 3 firings / 2 prompts.
    // Latent 1 fires once (prompt 1). Latent 2 never fires.
    const s = new SparsityMetrics(3);
    s.add(fromDense(Float32Array.from([1, 0, 0, 2, 0, 0, 0, 0, 0, 0, -1, 0]), 4, 3), 2);
    s.add(fromDense(Float32Array.from([4, 0, 0, 0, 0, 0]), 2, 3), 2);
    expect(s.consistentActivation()).toEqual([1.5, 1, null]);
    expect([...s.promptsFired]).toEqual([2, 1, 0]);
  });

  it("bins values in equal widths from min(0, smallest) to the largest, the largest in the last bin", () => {
    const h = linearHistogram([-1, 0.5, 1, 3], 4);
    expect(h.edges).toEqual([-1, 0, 1, 2, 3]);
    expect(h.counts).toEqual([1, 1, 1, 1]);
    expect(linearHistogram([2, 4], 2)).toEqual({ edges: [0, 2, 4], counts: [0, 2] });
  });

  it("bins log10 densities over [-10, 0], dead latents in the first bin", () => {
    const h = densityHistogram([0, 1, 0.01, 1e-5], 10);
    expect(h.edges[0]).toBe(-10);
    expect(h.edges[10]).toBe(0);
    expect(h.counts[0]).toBe(1); // dead
    expect(h.counts[9]).toBe(1); // density 1 -> log10 = 0, last bin
    expect(h.counts[8]).toBe(1); // 0.01 -> -2
    expect(h.counts[5]).toBe(1); // 1e-5 -> -5
    expect(h.counts.reduce((a, b) => a + b, 0)).toBe(4);
    // The default 50 bins' edges are the round numbers they stand for, in the JSON too.
    expect(JSON.stringify(densityHistogram([]).edges)).toBe(JSON.stringify(Array.from({ length: 51 }, (_, i) => +(-10 + i / 5).toFixed(1))));
  });
});
