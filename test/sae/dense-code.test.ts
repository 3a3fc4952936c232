/**
 * The code kernels' dense GEMM twins (dense-code.ts) against the sparse kernels they stand
 * in for, block by block and whole, and an SAE step on either path.
 */
import { describe, expect, it } from "vitest";
import type { Kernels } from "../../src/core/kernel-api.js";
import { kernels } from "../../src/core/kernels.js";
import { referenceKernels } from "../../src/core/reference.js";
import { Rng } from "../../src/core/rng.js";
import { Workspace } from "../../src/core/workspace.js";
import { defaultConfig } from "../../src/sae/config.js";
import { codeIsDense, denseDecode, denseReconstruct, denseRowDots, denseScatterRows, setDenseCodeDensity } from "../../src/sae/dense-code.js";
import { createSae } from "../../src/sae/registry.js";
import { zerosLike } from "../../src/sae/sae.js";
import type { SparseCode } from "../../src/sae/sparse-code.js";
import { initializeSae } from "../../src/train/init.js";
import { maxAbs, maxAbsDiff, randn } from "../helpers.js";

/** A code of `batch` rows over m latents, about half of each row's latents set, every fifth row empty. */
function halfDenseCode(rng: Rng, batch: number, m: number): SparseCode {
  const rowPtr = new Int32Array(batch + 1);
  const idx: number[] = [];
  for (let b = 0; b < batch; b++) {
    if (b % 5 !== 2) for (let j = 0; j < m; j++) if (rng.uniform() < 0.5) idx.push(j);
    rowPtr[b + 1] = idx.length;
  }
  return { batch, m, rowPtr, idx: Int32Array.from(idx), val: randn(rng, idx.length) };
}

const close = (a: Float32Array, b: Float32Array) => expect(maxAbsDiff(a, b)).toBeLessThan(1e-5 * (1 + maxAbs(b)));

describe("dense twins of the code kernels", () => {
  const B = 23, m = 37, d = 11;
  // Four rows a block (six blocks, the last short), and the whole batch in one.
  for (const [kernelsName, K] of [["native", kernels()], ["reference", referenceKernels]] as Array<[string, Kernels]>) {
    for (const blockFloats of [4 * m, 1 << 24]) {
      it(`equal the sparse kernels (${kernelsName} kernels, ${Math.min(B, Math.floor(blockFloats / m))} rows a block)`, () => {
        const rng = new Rng(5);
        const code = halfDenseCode(rng, B, m);
        const n = code.rowPtr[B]!;
        const W = randn(rng, m * d), bias = randn(rng, d), x = randn(rng, B * d), G = randn(rng, B * d);
        const ws = new Workspace();

        const decoded = new Float32Array(B * d), want = new Float32Array(B * d);
        denseDecode(K, ws, code, W, d, bias, decoded, blockFloats);
        K.sparseDecode(B, code.rowPtr, code.idx, code.val, W, d, bias, want);
        close(decoded, want);

        for (const accumulate of [false, true]) {
          const start = randn(new Rng(9), m * d);
          const got = { xHat: new Float32Array(B * d), g: new Float32Array(B * d), gVal: new Float32Array(n), gW: start.slice() };
          const ref = { xHat: new Float32Array(B * d), g: new Float32Array(B * d), gVal: new Float32Array(n), gW: start.slice() };
          const sumSq = denseReconstruct(K, ws, code, W, d, bias, x, 0.3, got.xHat, got.g, got.gVal, got.gW, accumulate, blockFloats);
          const wantSq = K.sparseReconstruct(B, code.rowPtr, code.idx, code.val, W, d, bias, x, 0.3, ref.xHat, ref.g, ref.gVal, ref.gW, accumulate);
          expect(Math.abs(sumSq - wantSq)).toBeLessThan(1e-5 * wantSq);
          for (const key of ["xHat", "g", "gVal", "gW"] as const) close(got[key], ref[key]);
          // Decode and reconstruct form x_hat the same way, to the bit.
          expect(got.xHat).toEqual(decoded);
        }

        const dots = new Float32Array(n), wantDots = new Float32Array(n);
        denseRowDots(K, ws, code, G, W, d, dots, blockFloats);
        K.sparseRowDots(B, code.rowPtr, code.idx, G, W, d, wantDots);
        close(dots, wantDots);

        const colPtr = new Int32Array(m + 1), entries = new Int32Array(n), entryRow = new Int32Array(n);
        K.sparseTranspose(B, code.rowPtr, code.idx, m, colPtr, entries, entryRow);
        const coef = randn(rng, n);
        for (const accumulate of [false, true]) {
          for (const withBias of [true, false]) {
            const out = randn(new Rng(11), m * d), wantOut = out.slice();
            const sums = withBias ? randn(new Rng(12), m) : null, wantSums = sums?.slice() ?? null;
            denseScatterRows(K, ws, code, coef, x, d, accumulate, out, sums, blockFloats);
            K.sparseScatterRows(m, colPtr, entries, entryRow, coef, x, d, accumulate, wantOut, wantSums);
            close(out, wantOut);
            if (sums) close(sums, wantSums!);
          }
        }
      });
    }
  }

  it("an empty batch leaves the decoder gradient zero, as the sparse kernel does", () => {
    const code: SparseCode = { batch: 0, m: 4, rowPtr: new Int32Array(1), idx: new Int32Array(0), val: new Float32Array(0) };
    const gW = new Float32Array(8).fill(7), out = new Float32Array(8).fill(7), sums = new Float32Array(4).fill(7);
    const none = new Float32Array(0);
    expect(denseReconstruct(kernels(), new Workspace(), code, new Float32Array(8), 2, null, none, 1, none, none, none, gW, false)).toBe(0);
    denseScatterRows(kernels(), new Workspace(), code, none, none, 2, false, out, sums);
    expect([...gW, ...out, ...sums].every((v) => v === 0)).toBe(true);
  });

  it("take a code from the set density on, refuse a density below 0 and a W of another shape", () => {
    const code = (perRow: number): SparseCode => ({
      batch: 2, m: 10, rowPtr: Int32Array.from([0, perRow, 2 * perRow]),
      idx: Int32Array.from({ length: 2 * perRow }, (_, e) => e % perRow), val: new Float32Array(2 * perRow),
    });
    expect(() => denseDecode(kernels(), new Workspace(), code(1), new Float32Array(5), 2, null, new Float32Array(4)))
      .toThrow(/W holds 5 values; a code over 10 latents of width 2 needs 20/);
    expect(codeIsDense(code(1))).toBe(false); // 10%
    expect(codeIsDense(code(2))).toBe(true); // 20%, above the default 15%
    const previous = setDenseCodeDensity(0.05);
    try {
      expect(codeIsDense(code(1))).toBe(true);
      setDenseCodeDensity(Infinity);
      expect(codeIsDense(code(10))).toBe(false);
      expect(() => setDenseCodeDensity(-1)).toThrow(/dense code density must be >= 0, got -1/);
      expect(() => setDenseCodeDensity(Number.NaN)).toThrow(/>= 0/);
    } finally {
      setDenseCodeDensity(previous);
    }
  });
});

describe("an SAE step on a dense code", () => {
  for (const architecture of ["relu", "jumprelu", "gated"] as const) {
    it(`${architecture}: the GEMM twins give the sparse kernels' loss and gradients, and decode(encode(x)) is the step's x_hat`, () => {
      const d = 16, m = 64, B = 50;
      const sae = createSae(defaultConfig({ architecture, d_in: d, d_sae: m }));
      const rng = new Rng(3);
      const x = rng.fillNormal(new Float32Array(B * d));
      initializeSae(sae, rng, x, { decoderInitNorm: 1, bDecInit: "mean" });
      const step = { x, batch: B, step: 0, seed: 0, dead: null };
      const run = (density: number) => {
        const previous = setDenseCodeDensity(density);
        try {
          const grads = zerosLike(sae.params);
          const stats = sae.lossAndGrad(step, grads);
          const decoded = sae.decode(sae.encode(x, B), x).slice();
          return { loss: stats.loss, xHat: stats.xHat.slice(), dense: codeIsDense(stats.code), grads, decoded };
        } finally {
          setDenseCodeDensity(previous);
        }
      };
      const sparse = run(Infinity);
      const dense = run(0.15); // the default: a fresh SAE fires about half its latents
      expect(sparse.dense).toBe(false);
      expect(dense.dense).toBe(true);
      expect(Math.abs(dense.loss - sparse.loss)).toBeLessThan(1e-5 * sparse.loss);
      close(dense.xHat, sparse.xHat);
      for (const [name, g] of sparse.grads) {
        expect(maxAbs(g.data), name).toBeGreaterThan(0);
        close(dense.grads.get(name)!.data, g.data);
      }
      expect(dense.decoded).toEqual(dense.xHat);
    });
  }
});
