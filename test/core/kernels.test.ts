/**
 * Native kernels against their TypeScript reference twins, on every instruction set this
 * CPU has (AVX-512, AVX2, portable), on odd shapes that straddle the vector width and the
 * GEMM tile and cache-block sizes, with ties, k = 1 and k = m.
 */
import { availableParallelism } from "node:os";
import { describe, expect, it } from "vitest";
import { Activation, type Kernels, RotaryStyle, SelectMode } from "../../src/core/kernel-api.js";
import { bf16ToFloat32, float32ToBf16, roundToBf16 } from "../../src/core/bf16.js";
import { kernels, matmulPrecision, runtimeInfo, setMatmulPrecision, typescriptKernels, wasmKernels, withMatmulPrecision } from "../../src/core/kernels.js";
import { referenceKernels as ref } from "../../src/core/reference.js";
import { Rng, counterNormal } from "../../src/core/rng.js";
import { forEachIsa, maxAbs, maxAbsDiff, nativeAddon, randn, worstCentralDifference } from "../helpers.js";

const native = nativeAddon();

/** A random CSR code with `perRow` distinct latents per row (some rows empty). */
function randomCsr(rng: Rng, batch: number, m: number, maxPerRow: number) {
  const rowPtr = new Int32Array(batch + 1);
  const idx: number[] = [];
  for (let b = 0; b < batch; b++) {
    const count = b % 5 === 3 ? 0 : 1 + rng.int(Math.min(maxPerRow, m));
    const picked = new Set<number>();
    while (picked.size < count) picked.add(rng.int(m));
    idx.push(...picked);
    rowPtr[b + 1] = idx.length;
  }
  return { rowPtr, idx: Int32Array.from(idx), val: randn(rng, idx.length) };
}

describe("sgemm", () => {
  const shapes: Array<[number, number, number]> = [
    [1, 1, 1], [3, 5, 7], [14, 32, 16], [15, 33, 17], [29, 47, 130], [113, 65, 9],
    [300, 40, 600], [20, 4200, 1100], [64, 1, 37], [1, 100, 513],
  ];
  it("matches the reference for every transpose, odd shapes and block edges", () => {
    const rng = new Rng(1);
    forEachIsa((isa) => {
      for (const [M, N, K] of shapes) {
        for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          if (M * N * K > 2e7 && (ta || tb)) continue; // the big shape once per ISA is enough
          const A = randn(rng, M * K);
          const B = randn(rng, K * N);
          const C0 = randn(rng, M * N);
          const lda = ta ? M : K;
          const ldb = tb ? K : N;
          const got = C0.slice();
          const want = C0.slice();
          native.sgemm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, got, N);
          ref.sgemm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, want, N);
          const tol = 1e-5 * Math.sqrt(K) * 4;
          expect(maxAbsDiff(got, want), `${isa} ${M}x${N}x${K} ta=${ta} tb=${tb}`).toBeLessThan(tol);
        }
      }
    });
  });

  it("the TypeScript kernels' blocked GEMM gives the reference's result to the bit, strides and tails included", () => {
    const rng = new Rng(11);
    // Tails in M and N, a token at a time (M < 8), B panels shorter than N, K = 0.
    const cases: Array<[number, number, number]> = [[1, 1, 1], [3, 5, 7], [1, 33, 64], [7, 9, 200], [8, 8, 8], [13, 300, 700], [37, 6, 3], [5, 4, 0]];
    for (const [M, N, K] of cases) {
      for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
        // Leading dimensions wider than the matrices, and C wider than N, whose extra columns stay as they were.
        const lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 2, ldc = N + 5;
        const A = randn(rng, (ta ? K : M) * lda);
        const B = randn(rng, (tb ? N : K) * ldb);
        const got = randn(rng, M * ldc);
        const want = got.slice();
        typescriptKernels.sgemm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, got, ldc);
        ref.sgemm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, want, ldc);
        expect(got, `${M}x${N}x${K} ta=${ta} tb=${tb}`).toEqual(want);
      }
    }
    expect(typescriptKernels.adamUpdate).toBe(ref.adamUpdate); // the rest are the reference twins themselves
  });

  it("honours leading dimensions larger than the rows and writes nothing outside C", () => {
    const rng = new Rng(2);
    const M = 17, N = 19, K = 23, lda = 30, ldb = 25, ldc = 40;
    const A = randn(rng, M * lda);
    const B = randn(rng, K * ldb);
    const got = new Float32Array(M * ldc).fill(7);
    const want = got.slice();
    native.sgemm(false, false, M, N, K, 1, A, lda, B, ldb, 0, got, ldc);
    ref.sgemm(false, false, M, N, K, 1, A, lda, B, ldb, 0, want, ldc);
    expect(maxAbsDiff(got, want)).toBeLessThan(1e-4);
    for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) expect(got[i * ldc + j]).toBe(7);
  });

  it("beta = 0 overwrites C without reading it, K = 0 scales C by beta", () => {
    const rng = new Rng(3);
    const A = randn(rng, 8 * 8);
    const C = new Float32Array(64).fill(NaN);
    native.sgemm(false, false, 8, 8, 8, 1, A, 8, A, 8, 0, C, 8);
    expect(C.every(Number.isFinite)).toBe(true);
    const D = new Float32Array(6).fill(2);
    native.sgemm(false, false, 2, 3, 0, 1, new Float32Array(0), 0, new Float32Array(0), 3, 3, D, 3);
    expect([...D]).toEqual([6, 6, 6, 6, 6, 6]);
  });

  it("gives the same result after the thread pool is resized, again and again", () => {
    // Workers created by a resize must not mistake an earlier job for theirs.
    const rng = new Rng(17);
    const M = 128, N = 256, K = 128; // above the size where GEMM goes parallel
    const A = randn(rng, M * K), B = randn(rng, K * N);
    native.setThreads(1);
    const want = new Float32Array(M * N);
    native.sgemm(false, false, M, N, K, 1, A, K, B, N, 0, want, N);
    try {
      for (let i = 0; i < 60; i++) {
        native.setThreads(1 + (i % 3));
        for (let rep = 0; rep < 3; rep++) {
          const got = new Float32Array(M * N);
          native.sgemm(false, false, M, N, K, 1, A, K, B, N, 0, got, N);
          expect(maxAbsDiff(got, want)).toBe(0);
        }
      }
    } finally {
      native.setThreads(availableParallelism());
    }
  });

  it("thin products (a few rows times a wide matrix, streamed) give the same bits on any thread count", () => {
    const rng = new Rng(18);
    for (const [M, N, K] of [[1, 5000, 300], [2, 5000, 300], [3, 2100, 70]] as const) {
      for (const [ta, tb] of [[false, false], [false, true], [true, false]] as const) {
        const A = randn(rng, M * K), B = randn(rng, K * N);
        for (const f of [native.sgemm, native.sgemmBf16]) {
          const at = (threads: number) => {
            native.setThreads(threads);
            const C = new Float32Array(M * N);
            f(ta, tb, M, N, K, 1, A, ta ? M : K, B, tb ? K : N, 0, C, N);
            return C;
          };
          try {
            expect(at(2), `${M}x${N}x${K} ta=${ta} tb=${tb}`).toEqual(at(1));
          } finally {
            native.setThreads(availableParallelism());
          }
        }
      }
    }
  });

  it("refuses buffers too small for the shapes instead of reading past them", () => {
    const A = new Float32Array(10);
    expect(() => native.sgemm(false, false, 4, 4, 4, 1, A, 4, new Float32Array(16), 4, 0, new Float32Array(16), 4))
      .toThrow(/A: needs 16 elements/);
    expect(() => native.sgemm(false, false, 2, 2, 2, 1, new Float32Array(4), 1, new Float32Array(4), 2, 0, new Float32Array(4), 2))
      .toThrow(/leading dimension/);
  });

  it("with B as bfloat16: to the bit the product on B widened to float32, in every kernel set", () => {
    const rng = new Rng(12);
    forEachIsa((isa) => {
      for (const [M, N, K] of [[1, 100, 513], [1, 7, 3], [15, 33, 17], [113, 65, 9], [300, 40, 600]] as const) {
        for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          // Leading dimensions past the matrices' widths, so rows start at every alignment
          // (a vector times a bfloat16 matrix once summed in another order when they did not).
          const lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2;
          const A = randn(rng, (ta ? K : M) * lda);
          const B = float32ToBf16(randn(rng, (tb ? N : K) * ldb));
          const wide = bf16ToFloat32(B);
          const C0 = randn(rng, M * N);
          const atBf16 = C0.slice();
          ref.sgemmBf16(ta, tb, M, N, K, 0.75, A, lda, wide, ldb, 0.5, atBf16, N);
          for (const k of [native, ref, typescriptKernels, wasmKernels]) {
            const label = `${isa} ${k === native ? "native" : k.kind} ${M}x${N}x${K} ta=${ta} tb=${tb}`;
            const got = C0.slice(), want = C0.slice();
            k.sgemmBf16B(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, got, N);
            k.sgemm(ta, tb, M, N, K, 0.75, A, lda, wide, ldb, 0.5, want, N);
            expect(got, label).toEqual(want);
            // At bfloat16 precision (A rounded too): the reference's product on the rounded inputs.
            const half = C0.slice();
            k.sgemmBf16B(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, half, N, true);
            expect(maxAbsDiff(half, atBf16), label).toBeLessThan(4e-5 * Math.sqrt(K));
          }
        }
      }
    });
    expect(() => native.sgemmBf16B(false, false, 2, 2, 2, 1, new Float32Array(4), 2, new Float32Array(4) as unknown as Uint16Array, 2, 0, new Float32Array(4), 2))
      .toThrow(/B: expected a Uint16Array/);
    expect(() => native.sgemmBf16B(false, false, 4, 4, 4, 1, new Float32Array(16), 4, new Uint16Array(10), 4, 0, new Float32Array(16), 4))
      .toThrow(/B: needs 16 elements/);
  });

  it("rounds float32 to bfloat16 to nearest, ties to even, and widens back exactly", () => {
    const x = Float32Array.of(1, 1 + 2 ** -8, 1 + 3 * 2 ** -8, -2.5, 3.4028234663852886e38, Infinity, -0, NaN, 1e-40);
    // ..., the largest float32 and infinity to infinity, -0 kept, and a subnormal to its top bits.
    const bits = [...float32ToBf16(x)].map((h) => h.toString(16));
    expect([...bits.slice(0, 7), bits[8]]).toEqual(["3f80", "3f80", "3f82", "c020", "7f80", "7f80", "8000", "1"]);
    const back = bf16ToFloat32(float32ToBf16(x));
    expect([...back.slice(0, 4)]).toEqual([1, 1, 1 + 2 ** -6, -2.5]);
    expect(Number.isNaN(back[7]!)).toBe(true);
    const r = randn(new Rng(3), 1000);
    expect(maxAbsDiff(bf16ToFloat32(float32ToBf16(r)), r)).toBeLessThanOrEqual(2 ** -8 * maxAbs(r));
  });
});

describe("sgemm at bfloat16 precision", () => {
  const bitsOf = (x: Float32Array) => [...new Uint32Array(x.buffer, x.byteOffset, x.length)].map((u) => u.toString(16));

  it("rounds each input as the AVX-512 BF16 conversions do: nearest, ties to even, denormals to zero, NaN quiet", () => {
    // The values the C++ check in the commit that added this met on a Zen 4 core's vcvtne2ps2bf16.
    const x = new Float32Array(new Uint32Array([
      0x00000001, 0x80400000, 0x007fffff, 0x00800000, 0x7f800001, 0xffc00001, 0x3f808000, 0x3f818000, 0x7f7fffff, 0x3f80ffff,
    ]).buffer);
    expect(bitsOf(roundToBf16(x))).toEqual([
      "0", "80000000", "0", "800000", "7fc00000", "ffc00000", "3f800000", "3f820000", "7f800000", "3f810000",
    ]);
  });

  it("is the product of the rounded inputs summed in float32, on every kernel set, the dot-product instructions included", () => {
    const rng = new Rng(13);
    const shapes: Array<[number, number, number]> = [
      [1, 1, 1], [1, 100, 513], [3, 5, 7], [15, 33, 17], [29, 47, 130], [113, 65, 9], [300, 40, 1100], [20, 4200, 33],
    ];
    forEachIsa((isa) => {
      for (const [M, N, K] of shapes) {
        for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
          // Strided operands and a C wider than N, whose extra columns stay as they were.
          const lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
          const A = randn(rng, (ta ? K : M) * lda), B = randn(rng, (tb ? N : K) * ldb);
          const C0 = randn(rng, M * ldc);
          const want = C0.slice();
          ref.sgemmBf16(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, want, ldc);
          const tol = 4e-5 * Math.sqrt(K);
          for (const [name, k] of [["native", native], ["typescript", typescriptKernels], ["wasm", wasmKernels]] as const) {
            if (name !== "native" && isa !== "avx512") continue; // they do not depend on the ISA
            const got = C0.slice();
            k.sgemmBf16(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, got, ldc);
            const label = `${name} ${isa} ${M}x${N}x${K} ta=${ta} tb=${tb}`;
            expect(maxAbsDiff(got, want), label).toBeLessThan(tol);
            for (let i = 0; i < M; i++) for (let j = N; j < ldc; j++) expect(got[i * ldc + j], label).toBe(C0[i * ldc + j]);
          }
        }
      }
    });
  });

  it("differs from the float32 product by bfloat16's rounding, not float32's", () => {
    const rng = new Rng(14);
    const M = 64, N = 48, K = 256;
    const A = randn(rng, M * K), B = randn(rng, N * K);
    const full = new Float32Array(M * N), half = new Float32Array(M * N);
    native.sgemm(false, true, M, N, K, 1, A, K, B, K, 0, full, N);
    native.sgemmBf16(false, true, M, N, K, 1, A, K, B, K, 0, half, N);
    // Each product is off by ~2^-8 relative; over K of them the error grows like sqrt(K).
    const err = maxAbsDiff(full, half);
    expect(err).toBeGreaterThan(100 * 4e-5 * Math.sqrt(K));
    expect(err).toBeLessThan(2 ** -7 * Math.sqrt(K) * 4);
  });

  it("kernels().sgemm follows the matmul precision, which withMatmulPrecision sets for a while", () => {
    const rng = new Rng(15);
    const M = 33, N = 70, K = 90;
    const A = randn(rng, M * K), B = randn(rng, K * N);
    const product = (f: typeof native.sgemm) => {
      const C = new Float32Array(M * N);
      f(false, false, M, N, K, 1, A, K, B, N, 0, C, N);
      return C;
    };
    expect(matmulPrecision()).toBe("highest");
    expect(runtimeInfo().bf16Matmul).toBe(native.info().bf16Dot ? "dot-product instructions" : "emulated");
    try {
      setMatmulPrecision("medium");
      expect(runtimeInfo().matmulPrecision).toBe("medium");
      expect(product(kernels().sgemm)).toEqual(product(native.sgemmBf16));
      const inside = withMatmulPrecision("highest", () => product(kernels().sgemm));
      expect(inside).toEqual(product(native.sgemm));
      // Weights kept as bfloat16 follow it too.
      const Bh = float32ToBf16(B);
      const weights = (f: (...a: Parameters<typeof native.sgemm>) => void) => product((ta, tb, m, n, k, al, a, lda, _b, ldb, be, c, ldc) => f(ta, tb, m, n, k, al, a, lda, bf16ToFloat32(Bh), ldb, be, c, ldc));
      const viaKernels = new Float32Array(M * N);
      kernels().sgemmBf16B(false, false, M, N, K, 1, A, K, Bh, N, 0, viaKernels, N);
      expect(viaKernels).toEqual(weights(native.sgemmBf16));
      expect(matmulPrecision()).toBe("medium");
      expect(() => withMatmulPrecision("highest", () => { throw new Error("boom"); })).toThrow("boom");
      expect(matmulPrecision()).toBe("medium");
      expect(() => setMatmulPrecision("low" as "medium")).toThrow(/must be one of highest, medium/);
    } finally {
      setMatmulPrecision("highest");
    }
    expect(product(kernels().sgemm)).toEqual(product(native.sgemm));
  });

  it("refuses buffers too small for the shapes", () => {
    expect(() => native.sgemmBf16(false, false, 4, 4, 4, 1, new Float32Array(10), 4, new Float32Array(16), 4, 0, new Float32Array(16), 4))
      .toThrow(/A: needs 16 elements/);
    expect(() => ref.sgemmBf16(false, false, 4, 4, 4, 1, new Float32Array(16), 4, new Float32Array(10), 4, 0, new Float32Array(16), 4))
      .toThrow(/B: needs 16 elements/);
  });
});

describe("topk", () => {
  const modes = [SelectMode.Relu, SelectMode.Abs, SelectMode.Value];

  /** The native kernel and the TypeScript kernels' heap selection, each against the reference's full sort. */
  function compareTopk(x: Float32Array, batch: number, m: number, k: number, mode: SelectMode,
    bias: Float32Array | null, label: string) {
    const v2 = new Float32Array(batch * k), i2 = new Int32Array(batch * k);
    ref.topkRows(x, batch, m, k, mode, bias, v2, i2);
    for (const [name, kernel] of [["native", native], ["typescript", typescriptKernels]] as const) {
      const v1 = new Float32Array(batch * k), i1 = new Int32Array(batch * k);
      kernel.topkRows(x, batch, m, k, mode, bias, v1, i1);
      expect([...i1], `${name} ${label}`).toEqual([...i2]);
      expect([...v1], `${name} ${label}`).toEqual([...v2]);
    }
  }

  it("top-1 (a matching pursuit's choice) equals the reference on the rows a vector argmax gets wrong", () => {
    const rng = new Rng(21);
    forEachIsa((isa) => {
      for (const m of [5, 16, 37, 100]) {
        const rows: number[][] = [];
        const base = () => Array.from(randn(rng, m));
        let r = base(); r[m - 1] = 9; rows.push(r); // the maximum in the scalar tail
        r = base(); r[3] = 9; r[m - 2] = 9; rows.push(r); // tied maxima in different vectors
        r = base(); r[1] = 9; r[2] = 9; rows.push(r); // tied maxima in one vector
        r = base(); r[0] = Number.NaN; r[m - 1] = Number.NaN; rows.push(r); // NaN ranks last
        rows.push(new Array(m).fill(Number.NaN)); // all NaN: index 0
        r = new Array(m).fill(Number.NEGATIVE_INFINITY); r[0] = Number.NaN; r[m - 1] = Number.NaN; rows.push(r); // -inf ties NaN
        r = base().map((v) => -Math.abs(v) - 1); rows.push(r); // every key negative
        r = base(); r[2] = -9; rows.push(r); // Abs mode's best is negative
        const x = Float32Array.from(rows.flat());
        for (const mode of modes) {
          compareTopk(x, rows.length, m, 1, mode, null, `${isa} top-1 m=${m} mode=${mode}`);
          const bias = randn(rng, m);
          bias[m >> 1] = Number.NaN; // a masked column
          compareTopk(x, rows.length, m, 1, mode, bias, `${isa} top-1 biased m=${m} mode=${mode}`);
        }
      }
    });
  });

  it("group max (sparsify's groupmax) equals the reference exactly: each run's best, ties and NaN as top-1", () => {
    const rng = new Rng(31);
    forEachIsa((isa) => {
      for (const [m, groups] of [[12, 3], [12, 12], [37, 1], [96, 4], [2048, 64], [100, 5]] as const) {
        const batch = 7;
        const x = randn(rng, batch * m);
        const tied = Float32Array.from(x, (v) => Math.round(v * 2));
        tied[3] = Number.NaN;
        for (const mode of modes) {
          for (const [label, data, bias] of [["plain", x, null], ["ties", tied, null], ["bias", x, randn(rng, m)]] as const) {
            const v2 = new Float32Array(batch * groups), i2 = new Int32Array(batch * groups);
            ref.groupMaxRows(data, batch, m, groups, mode, bias, v2, i2);
            const v1 = new Float32Array(batch * groups), i1 = new Int32Array(batch * groups);
            native.groupMaxRows(data, batch, m, groups, mode, bias, v1, i1);
            const what = `${isa} ${label} m=${m} groups=${groups} mode=${mode}`;
            expect([...i1], what).toEqual([...i2]);
            expect([...v1], what).toEqual([...v2]);
            // Each run's entry is its own top-1.
            const size = m / groups;
            for (let b = 0; b < batch; b++) {
              for (let g = 0; g < groups; g++) {
                const v = new Float32Array(1), at = new Int32Array(1);
                ref.topkRows(data.subarray(b * m + g * size, b * m + (g + 1) * size), 1, size, 1, mode,
                  bias ? bias.subarray(g * size, (g + 1) * size) : null, v, at);
                expect(i2[b * groups + g], what).toBe(g * size + at[0]!);
              }
            }
          }
        }
      }
    });
    expect(() => native.groupMaxRows(new Float32Array(10), 1, 10, 3, SelectMode.Relu, null, new Float32Array(3), new Int32Array(3)))
      .toThrow(/groupmax: m must split into groups of equal size/);
    expect(() => ref.groupMaxRows(new Float32Array(10), 1, 10, 3, SelectMode.Relu, null, new Float32Array(3), new Int32Array(3)))
      .toThrow(/groupmax: m must split into groups of equal size/);
  });

  it("per-row top-k equals the reference exactly: odd sizes, k = 1, k = m, ties, biases", () => {
    const rng = new Rng(4);
    forEachIsa((isa) => {
      for (const m of [1, 7, 16, 33, 100, 257, 1000]) {
        for (const k of [...new Set([1, Math.min(5, m), Math.min(64, m), m])]) {
          for (const mode of modes) {
            const batch = 9;
            const x = randn(rng, batch * m);
            compareTopk(x, batch, m, k, mode, null, `${isa} m=${m} k=${k} mode=${mode}`);
            // Heavy ties: small integers, many equal keys (and equal magnitudes of +-v).
            const tied = Float32Array.from(x, (v) => Math.round(v * 2));
            compareTopk(tied, batch, m, k, mode, null, `${isa} ties m=${m} k=${k} mode=${mode}`);
            const bias = randn(rng, m);
            compareTopk(x, batch, m, k, mode, bias, `${isa} bias m=${m} k=${k} mode=${mode}`);
          }
        }
      }
    });
  });

  it("long rows (the sampled-threshold path) and its fallback on sorted rows match exactly", () => {
    const rng = new Rng(11);
    forEachIsa((isa) => {
      // k up to half the row (AuxK's selection among a few thousand dead latents) too.
      for (const [m, k] of [[4096, 64], [2048, 1], [5000, 100], [1000, 3], [3000, 256], [1000, 500], [777, 300]] as const) {
        const batch = 6;
        const x = randn(rng, batch * m);
        // Row 1 ascending and row 2 descending: the prefix sample misjudges the threshold
        // (too low / too high), forcing the overflow and the too-few fallbacks.
        const asc = [...x.subarray(m, 2 * m)].sort((a, b) => a - b);
        x.set(asc, m);
        x.set([...asc].reverse(), 2 * m);
        // Row 3 heavily tied.
        for (let j = 0; j < m; j++) x[3 * m + j] = Math.round(x[3 * m + j]!);
        for (const mode of modes) {
          compareTopk(x, batch, m, k, mode, null, `${isa} long m=${m} k=${k} mode=${mode}`);
          compareTopk(x, batch, m, k, mode, randn(rng, m), `${isa} long+bias m=${m} k=${k} mode=${mode}`);
        }
      }
    });
  });

  it("rows that drift from one to the next (each row's threshold is tried on the next) stay exact", () => {
    const rng = new Rng(12);
    forEachIsa((isa) => {
      for (const [m, k] of [[4096, 64], [5000, 100], [2048, 16], [3000, 256]] as const) {
        // One chunk of rows in order: shifted far down (the previous threshold admits too
        // few), far up (too many to hold), a little up (many more than needed, within
        // bounds), scaled, and tied.
        const shifts = [0, -10, 10, 1.5, 0, -0.3, 0, 0];
        const scales = [1, 1, 1, 1, 3, 0.2, 1, 1];
        const batch = shifts.length;
        const x = randn(rng, batch * m);
        for (let b = 0; b < batch; b++) for (let j = 0; j < m; j++) x[b * m + j] = x[b * m + j]! * scales[b]! + shifts[b]!;
        for (let j = 0; j < m; j++) x[7 * m + j] = Math.round(x[7 * m + j]! * 2);
        for (const mode of modes) compareTopk(x, batch, m, k, mode, null, `${isa} drift m=${m} k=${k} mode=${mode}`);
        // AuxK's mask: a NaN bias on 90% of the columns (the live latents), the dead ones left.
        const mask = Float32Array.from({ length: m }, (_, j) => (j % 10 === 3 ? 0.1 : NaN));
        for (const mode of modes) compareTopk(x, batch, m, k, mode, mask, `${isa} masked m=${m} k=${k} mode=${mode}`);
      }
    });
  });

  it("returns rows sorted best-first and a -inf bias masks columns out", () => {
    const x = Float32Array.from([0.5, -3, 2, 1, -1, 4]);
    const vals = new Float32Array(3), idx = new Int32Array(3);
    native.topkRows(x, 1, 6, 3, SelectMode.Abs, null, vals, idx);
    expect([...idx]).toEqual([5, 1, 2]);
    expect([...vals]).toEqual([4, -3, 2]);
    native.topkRows(x, 1, 6, 3, SelectMode.Relu, null, vals, idx);
    expect([...idx]).toEqual([5, 2, 3]);
    const mask = Float32Array.from([0, 0, -Infinity, 0, 0, -Infinity]);
    native.topkRows(x, 1, 6, 2, SelectMode.Relu, mask, vals, idx);
    expect([...idx.subarray(0, 2)]).toEqual([3, 0]);
    expect([...vals.subarray(0, 2)]).toEqual([1, 0.5]);
    // AuxK masks live latents with a NaN bias: they rank below every dead one.
    compareTopk(x, 1, 6, 4, SelectMode.Relu, Float32Array.from([NaN, 0, NaN, 0, 0, NaN]), "NaN mask");
  });

  it("ranks NaN last, like the reference", () => {
    const x = Float32Array.from([NaN, 1, NaN, -2, 3, NaN, 0, 5]);
    for (const mode of modes) compareTopk(x, 1, 8, 8, mode, null, `nan mode=${mode}`);
    for (const mode of modes) compareTopk(x, 2, 4, 2, mode, null, `nan mode=${mode}`);
  });

  it("batch top-k equals the reference exactly, including ties and the zero drop", () => {
    const rng = new Rng(5);
    for (const [batch, m] of [[1, 1], [3, 7], [8, 33], [16, 100], [5, 1000]] as const) {
      for (const kTotal of [0, 1, 3, batch * 2, batch * m, batch * m + 5]) {
        for (const mode of modes) {
          for (const tied of [false, true]) {
            let x = randn(rng, batch * m);
            if (tied) x = Float32Array.from(x, (v) => Math.round(v * 2));
            const bias = rng.uniform() < 0.5 ? randn(rng, m) : null;
            const cap = Math.min(kTotal, batch * m);
            const out = [0, 1].map(() => ({ rowPtr: new Int32Array(batch + 1), idx: new Int32Array(cap), vals: new Float32Array(cap) }));
            const n1 = native.batchTopk(x, batch, m, kTotal, mode, bias, out[0]!.rowPtr, out[0]!.idx, out[0]!.vals);
            const n2 = ref.batchTopk(x, batch, m, kTotal, mode, bias, out[1]!.rowPtr, out[1]!.idx, out[1]!.vals);
            const label = `batch=${batch} m=${m} K=${kTotal} mode=${mode} tied=${tied}`;
            expect(n1, label).toBe(n2);
            expect([...out[0]!.rowPtr], label).toEqual([...out[1]!.rowPtr]);
            expect([...out[0]!.idx.subarray(0, n1)], label).toEqual([...out[1]!.idx.subarray(0, n2)]);
            expect([...out[0]!.vals.subarray(0, n1)], label).toEqual([...out[1]!.vals.subarray(0, n2)]);
          }
        }
      }
    }
  });

  it("batch top-k at training sizes (sampled threshold and its fallbacks) equals the reference exactly", () => {
    const rng = new Rng(15);
    const check = (x: Float32Array, batch: number, m: number, kTotal: number, mode: SelectMode, bias: Float32Array | null, label: string) => {
      const cap = Math.min(kTotal, batch * m);
      const out = [0, 1].map(() => ({ rowPtr: new Int32Array(batch + 1), idx: new Int32Array(cap), vals: new Float32Array(cap) }));
      const n1 = native.batchTopk(x, batch, m, kTotal, mode, bias, out[0]!.rowPtr, out[0]!.idx, out[0]!.vals);
      const n2 = ref.batchTopk(x, batch, m, kTotal, mode, bias, out[1]!.rowPtr, out[1]!.idx, out[1]!.vals);
      expect(n1, label).toBe(n2);
      expect(Buffer.from(out[0]!.rowPtr.buffer).equals(Buffer.from(out[1]!.rowPtr.buffer)), label).toBe(true);
      expect(Buffer.from(out[0]!.idx.buffer).equals(Buffer.from(out[1]!.idx.buffer)), label).toBe(true);
      expect(Buffer.from(out[0]!.vals.buffer).equals(Buffer.from(out[1]!.vals.buffer)), label).toBe(true);
    };
    for (const [batch, m] of [[64, 2048], [37, 4099]] as const) {
      for (const kTotal of [1, batch, batch * 16, Math.floor((batch * m) / 9)]) {
        for (const mode of modes) {
          const x = randn(rng, batch * m);
          check(x, batch, m, kTotal, mode, rng.uniform() < 0.5 ? randn(rng, m) : null, `batch=${batch} m=${m} K=${kTotal} mode=${mode}`);
          // Heavy ties at the cut, NaNs, and a dense latent every token selects.
          const tied = Float32Array.from(x, (v, i) => (i % 101 === 0 ? NaN : Math.round(v * 2)));
          const dense = new Float32Array(m);
          dense[m >> 1] = 100;
          check(tied, batch, m, kTotal, mode, dense, `tied batch=${batch} m=${m} K=${kTotal} mode=${mode}`);
        }
      }
    }
    // Rows unlike the ones the kernel samples (9 of these 16: rows s * 16 / 9) put its
    // threshold estimate far off both ways, so it must loosen it or give up for the
    // histogram path (too many candidates), and still be exact.
    const batch = 16, m = 8192;
    const sampled = new Set(Array.from({ length: 9 }, (_, s) => Math.floor((s * batch) / 9)));
    for (const factor of [8, 0.125]) {
      const x = randn(rng, batch * m);
      for (let b = 0; b < batch; b++) if (!sampled.has(b)) for (let j = 0; j < m; j++) x[b * m + j]! *= factor;
      for (const mode of modes) check(x, batch, m, batch * 16, mode, null, `skewed x${factor} mode=${mode}`);
    }
  });

  it("threshold select equals the reference and reports the count when out of room", () => {
    const rng = new Rng(6);
    const batch = 13, m = 57;
    const x = randn(rng, batch * m);
    x.fill(100, 0, m); // a row where every column passes
    x.fill(-100, m, 2 * m); // and one where none does
    x[batch * m - 1] = -100; // the last row ends on a column that fails
    const bias = randn(rng, m, 0.3);
    const thr = Float32Array.from(randn(rng, m), Math.abs);
    for (const [b, t] of [[null, null], [bias, null], [bias, thr]] as const) {
      const cap = batch * m;
      const a = { rowPtr: new Int32Array(batch + 1), idx: new Int32Array(cap), vals: new Float32Array(cap) };
      const r = { rowPtr: new Int32Array(batch + 1), idx: new Int32Array(cap), vals: new Float32Array(cap) };
      const n1 = native.thresholdSelect(x, batch, m, b, t, a.rowPtr, a.idx, a.vals);
      const n2 = ref.thresholdSelect(x, batch, m, b, t, r.rowPtr, r.idx, r.vals);
      expect(n1).toBe(n2);
      expect([...a.rowPtr]).toEqual([...r.rowPtr]);
      expect([...a.idx.subarray(0, n1)]).toEqual([...r.idx.subarray(0, n2)]);
      expect([...a.vals.subarray(0, n1)]).toEqual([...r.vals.subarray(0, n2)]);
      const small = native.thresholdSelect(x, batch, m, b, t, new Int32Array(batch + 1), new Int32Array(3), new Float32Array(3));
      expect(small).toBe(n1);
      // Room for exactly the entries: nothing is written past them (one sentinel slot after).
      const exact = { rowPtr: new Int32Array(batch + 1), idx: new Int32Array(n1 + 1).fill(-7), vals: new Float32Array(n1 + 1).fill(-7) };
      expect(native.thresholdSelect(x, batch, m, b, t, exact.rowPtr, exact.idx.subarray(0, n1), exact.vals.subarray(0, n1))).toBe(n1);
      expect([exact.idx[n1], exact.vals[n1]]).toEqual([-7, -7]);
      expect([...exact.idx.subarray(0, n1)]).toEqual([...r.idx.subarray(0, n2)]);
    }
  });
});

describe("sparse codes", () => {
  it("decode, row dots, fused reconstruction, transpose and scatter match the reference (odd d, empty rows)", () => {
    const rng = new Rng(7);
    forEachIsa((isa) => {
      // The last shape's code uses over 8 MB of W rows: its reconstruction goes latent by latent.
      for (const [batch, m, d, perRow] of [[1, 1, 1, 1], [10, 37, 19, 5], [64, 300, 64, 16], [33, 1000, 129, 64], [600, 8000, 512, 40]] as const) {
        const { rowPtr, idx, val } = randomCsr(rng, batch, m, perRow);
        if (m === 8000) expect(new Set(idx).size * d * 4).toBeGreaterThan(8e6);
        const nnz = idx.length;
        const W = randn(rng, m * d);
        const bias = randn(rng, d);
        const label = `${isa} batch=${batch} m=${m} d=${d}`;

        const o1 = new Float32Array(batch * d), o2 = new Float32Array(batch * d);
        native.sparseDecode(batch, rowPtr, idx, val, W, d, bias, o1);
        ref.sparseDecode(batch, rowPtr, idx, val, W, d, bias, o2);
        expect(maxAbsDiff(o1, o2), label).toBeLessThan(1e-5 * (1 + maxAbs(o2)));

        const G = randn(rng, batch * d);
        const dots1 = new Float32Array(nnz), dots2 = new Float32Array(nnz);
        native.sparseRowDots(batch, rowPtr, idx, G, W, d, dots1);
        ref.sparseRowDots(batch, rowPtr, idx, G, W, d, dots2);
        expect(maxAbsDiff(dots1, dots2), label).toBeLessThan(1e-5 * Math.sqrt(d) * 4);

        const X = randn(rng, batch * d);
        const r1 = { xHat: new Float32Array(batch * d), g: new Float32Array(batch * d), dval: new Float32Array(nnz) };
        const r2 = { xHat: new Float32Array(batch * d), g: new Float32Array(batch * d), dval: new Float32Array(nnz) };
        const sq1 = native.sparseReconstruct(batch, rowPtr, idx, val, W, d, bias, X, 0.5, r1.xHat, r1.g, r1.dval);
        const sq2 = ref.sparseReconstruct(batch, rowPtr, idx, val, W, d, bias, X, 0.5, r2.xHat, r2.g, r2.dval);
        expect(Math.abs(sq1 - sq2) / (1 + sq2), label).toBeLessThan(1e-5);
        expect(maxAbsDiff(r1.xHat, r2.xHat), label).toBeLessThan(1e-5 * (1 + maxAbs(r2.xHat)));
        expect(maxAbsDiff(r1.g, r2.g), label).toBeLessThan(1e-5 * (1 + maxAbs(r2.g)));
        expect(maxAbsDiff(r1.dval, r2.dval), label).toBeLessThan(1e-4 * (1 + maxAbs(r2.dval)));
        // With the decoder's gradient: every row written (unselected ones zeroed), or added to.
        for (const accumulate of [false, true]) {
          const gW1 = randn(rng, m * d), gW2 = gW1.slice();
          native.sparseReconstruct(batch, rowPtr, idx, val, W, d, bias, X, 0.5, r1.xHat, r1.g, r1.dval, gW1, accumulate);
          ref.sparseReconstruct(batch, rowPtr, idx, val, W, d, bias, X, 0.5, r2.xHat, r2.g, r2.dval, gW2, accumulate);
          expect(maxAbsDiff(gW1, gW2), `${label} accumulate=${accumulate}`).toBeLessThan(1e-4 * (1 + maxAbs(gW2)));
          expect(maxAbsDiff(r1.dval, r2.dval), label).toBeLessThan(1e-4 * (1 + maxAbs(r2.dval)));
        }

        const t1 = { colPtr: new Int32Array(m + 1), entries: new Int32Array(nnz), entryRow: new Int32Array(nnz) };
        const t2 = { colPtr: new Int32Array(m + 1), entries: new Int32Array(nnz), entryRow: new Int32Array(nnz) };
        native.sparseTranspose(batch, rowPtr, idx, m, t1.colPtr, t1.entries, t1.entryRow);
        ref.sparseTranspose(batch, rowPtr, idx, m, t2.colPtr, t2.entries, t2.entryRow);
        expect([...t1.colPtr]).toEqual([...t2.colPtr]);
        expect([...t1.entries]).toEqual([...t2.entries]);
        expect([...t1.entryRow]).toEqual([...t2.entryRow]);

        for (const accumulate of [false, true]) {
          const s1 = randn(rng, m * d), s2 = s1.slice();
          const c1 = randn(rng, m), c2 = c1.slice();
          native.sparseScatterRows(m, t1.colPtr, t1.entries, t1.entryRow, val, G, d, accumulate, s1, c1);
          ref.sparseScatterRows(m, t2.colPtr, t2.entries, t2.entryRow, val, G, d, accumulate, s2, c2);
          expect(maxAbsDiff(s1, s2), label).toBeLessThan(1e-4);
          expect(maxAbsDiff(c1, c2), label).toBeLessThan(1e-4);
        }
      }
    });
  });

  it("the TypeScript kernels' decode, row dots, reconstruction and scatter give the reference's results to the bit", () => {
    const rng = new Rng(17);
    // Rows of 0 to 10 latents: the four-at-a-time passes and their tails.
    for (const [batch, m, d, perRow] of [[1, 1, 1, 1], [12, 40, 7, 10], [40, 300, 33, 10], [9, 20, 64, 20]] as const) {
      const { rowPtr, idx, val } = randomCsr(rng, batch, m, perRow);
      const nnz = idx.length;
      const W = randn(rng, m * d), bias = randn(rng, d), X = randn(rng, batch * d);
      const label = `batch=${batch} m=${m} d=${d}`;
      const run = (K: typeof ref) => {
        const decoded = new Float32Array(batch * d), noBias = new Float32Array(batch * d), dots = new Float32Array(nnz);
        K.sparseDecode(batch, rowPtr, idx, val, W, d, bias, decoded);
        K.sparseDecode(batch, rowPtr, idx, val, W, d, null, noBias);
        K.sparseRowDots(batch, rowPtr, idx, X, W, d, dots);
        const xHat = new Float32Array(batch * d), g = new Float32Array(batch * d), dval = new Float32Array(nnz);
        const sumSq = K.sparseReconstruct(batch, rowPtr, idx, val, W, d, bias, X, 0.5, xHat, g, dval);
        const gW = randn(new Rng(5), m * d);
        K.sparseReconstruct(batch, rowPtr, idx, val, W, d, bias, X, 0.5, xHat, g, dval, gW, true);
        const colPtr = new Int32Array(m + 1), entries = new Int32Array(nnz), entryRow = new Int32Array(nnz);
        K.sparseTranspose(batch, rowPtr, idx, m, colPtr, entries, entryRow);
        const scattered = randn(new Rng(3), m * d), sums = randn(new Rng(4), m), added = scattered.slice(), addedSums = sums.slice();
        K.sparseScatterRows(m, colPtr, entries, entryRow, val, X, d, false, scattered, sums);
        K.sparseScatterRows(m, colPtr, entries, entryRow, val, X, d, true, added, addedSums);
        return { decoded, noBias, dots, xHat, g, dval, sumSq, gW, scattered, sums, added, addedSums };
      };
      expect(run(typescriptKernels), label).toEqual(run(ref));
    }
    expect(typescriptKernels.sparseDecode).not.toBe(ref.sparseDecode);
    expect(typescriptKernels.sparseTranspose).toBe(ref.sparseTranspose); // the rest are the reference twins themselves
  });

  it("scatter gives the same bits on any thread count, and reads only the rows the entries name", () => {
    // Threads take latent ranges as they come free: which thread sums a latent must not
    // change the sum. X carries rows beyond the last entry's, filled with NaN, which must
    // never reach the output.
    const rng = new Rng(19);
    for (const [batch, m, d, perRow] of [[700, 900, 100, 30], [50, 7, 33, 7]] as const) {
      const { rowPtr, idx, val } = randomCsr(rng, batch, m, perRow);
      const nnz = idx.length;
      const X = new Float32Array((batch + 3) * d).fill(NaN);
      X.set(randn(rng, batch * d));
      const colPtr = new Int32Array(m + 1), entries = new Int32Array(nnz), entryRow = new Int32Array(nnz);
      native.sparseTranspose(batch, rowPtr, idx, m, colPtr, entries, entryRow);
      const at = (threads: number) => {
        native.setThreads(threads);
        const out = new Float32Array(m * d), sums = new Float32Array(m);
        native.sparseScatterRows(m, colPtr, entries, entryRow, val, X, d, false, out, sums);
        return { out, sums };
      };
      try {
        const one = at(1);
        expect(one.out.every(Number.isFinite)).toBe(true);
        const want = new Float32Array(m * d);
        ref.sparseScatterRows(m, colPtr, entries, entryRow, val, X, d, false, want, null);
        expect(maxAbsDiff(one.out, want)).toBeLessThan(1e-4);
        for (const threads of [2, 3]) expect(at(threads), `batch=${batch} m=${m} threads=${threads}`).toEqual(one);
      } finally {
        native.setThreads(availableParallelism());
      }
    }
  });

  it("the fused reconstruction gives the same bits on any thread count and decode's x_hat, and its decoder gradient is the scatter's", () => {
    // Threads split the decode by tokens and the backward by latents; each token sums its
    // terms in latent order and each latent its entries in token order, whatever the split.
    const rng = new Rng(23);
    // Token by token (small dictionaries) and latent by latent (over 8 MB of W rows in use).
    for (const [batch, m, d, perRow] of [[700, 900, 100, 30], [50, 7, 33, 7], [3, 5000, 16, 4], [600, 8000, 512, 40]] as const) {
      const { rowPtr, idx, val } = randomCsr(rng, batch, m, perRow);
      if (m === 8000) expect(new Set(idx).size * d * 4).toBeGreaterThan(8e6);
      const nnz = idx.length;
      const W = randn(rng, m * d), bias = randn(rng, d), X = randn(rng, batch * d);
      const at = (threads: number) => {
        native.setThreads(threads);
        const xHat = new Float32Array(batch * d), g = new Float32Array(batch * d), dval = new Float32Array(nnz);
        const gW = new Float32Array(m * d).fill(NaN);
        const sumSq = native.sparseReconstruct(batch, rowPtr, idx, val, W, d, bias, X, 0.5, xHat, g, dval, gW, false);
        return { xHat, g, dval, gW, sumSq };
      };
      // Bit for bit (compared as bytes: toEqual walks millions of elements slowly).
      const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
      try {
        const one = at(1);
        for (const threads of [2, 3]) {
          const other = at(threads);
          for (const name of ["xHat", "g", "dval", "gW"] as const) {
            expect(bytes(other[name]).equals(bytes(one[name])), `${name} batch=${batch} m=${m} threads=${threads}`).toBe(true);
          }
          expect(other.sumSq).toBe(one.sumSq);
        }
        // Decode alone gives the reconstruction's x_hat, to the bit (end-to-end training
        // takes the model's loss at one and trains through the other).
        const decoded = new Float32Array(batch * d);
        native.sparseDecode(batch, rowPtr, idx, val, W, d, bias, decoded);
        expect(bytes(decoded).equals(bytes(one.xHat)), `decode batch=${batch} m=${m}`).toBe(true);
        // The same sums as scattering g by the code's transpose, row for row.
        const colPtr = new Int32Array(m + 1), entries = new Int32Array(nnz), entryRow = new Int32Array(nnz);
        native.sparseTranspose(batch, rowPtr, idx, m, colPtr, entries, entryRow);
        const scattered = new Float32Array(m * d);
        native.sparseScatterRows(m, colPtr, entries, entryRow, val, one.g, d, false, scattered, null);
        expect(maxAbsDiff(one.gW, scattered)).toBeLessThan(1e-5 * (1 + maxAbs(scattered)));
      } finally {
        native.setThreads(availableParallelism());
      }
    }
  });

  it("gathers chosen columns as the reference does, and refuses columns out of range", () => {
    const rng = new Rng(29);
    for (const [rows, cols, n] of [[1, 1, 1], [300, 1000, 37], [70, 16, 16]] as const) {
      const X = randn(rng, rows * cols);
      const pick = Int32Array.from({ length: n }, (_, i) => (i * 7919 + 3) % cols);
      const a = new Float32Array(rows * n), b = new Float32Array(rows * n);
      native.gatherColumns(X, rows, cols, pick, n, a);
      ref.gatherColumns(X, rows, cols, pick, n, b);
      expect(a).toEqual(b);
      expect(a[n - 1]).toBe(X[pick[n - 1]!]);
    }
    for (const K of [native, ref]) {
      expect(() => K.gatherColumns(new Float32Array(6), 2, 3, Int32Array.from([0, 3]), 2, new Float32Array(4)))
        .toThrow(/gatherColumns: pick\[1\] = 3 is outside \[0, 3\)/);
    }
  });

  it("gathers a matrix's values at a code's entries as the reference does, and refuses a bad code", () => {
    const rng = new Rng(31);
    for (const [rows, cols, perRow] of [[1, 1, 1], [200, 1000, 30], [9, 17, 17]] as const) {
      const X = randn(rng, rows * cols);
      const { rowPtr, idx } = randomCsr(rng, rows, cols, perRow);
      const a = new Float32Array(idx.length), b = new Float32Array(idx.length);
      native.gatherEntries(X, rows, cols, rowPtr, idx, a);
      ref.gatherEntries(X, rows, cols, rowPtr, idx, b);
      expect(a).toEqual(b);
      const last = rows - 1, e = rowPtr[rows]! - 1;
      if (e >= rowPtr[last]!) expect(a[e]).toBe(X[last * cols + idx[e]!]);
    }
    for (const K of [native, ref]) {
      expect(() => K.gatherEntries(new Float32Array(6), 2, 3, Int32Array.from([0, 1, 2]), Int32Array.from([0, 3]), new Float32Array(2)))
        .toThrow(/idx\[1\] = 3 is outside \[0, 3\)/);
    }
  });

  it("scatters a code into a dense matrix as the reference does (gatherEntries' inverse), and refuses a bad code", () => {
    const rng = new Rng(37);
    for (const [rows, cols, perRow] of [[1, 1, 1], [200, 1000, 30], [9, 17, 17]] as const) {
      const { rowPtr, idx, val } = randomCsr(rng, rows, cols, perRow);
      const a = randn(rng, rows * cols), b = randn(rng, rows * cols); // stale contents are overwritten
      native.scatterEntries(rows, cols, rowPtr, idx, val, a);
      ref.scatterEntries(rows, cols, rowPtr, idx, val, b);
      expect(a).toEqual(b);
      const back = new Float32Array(idx.length);
      native.gatherEntries(a, rows, cols, rowPtr, idx, back);
      expect(back).toEqual(val);
      expect(a.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0)).toBe(val.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0));
    }
    for (const K of [native, ref]) {
      expect(() => K.scatterEntries(2, 3, Int32Array.from([0, 1, 2]), Int32Array.from([0, 3]), new Float32Array(2), new Float32Array(6)))
        .toThrow(/idx\[1\] = 3 is outside \[0, 3\)/);
    }
  });

  it("counts a code's firings per latent in one pass as the reference does, and refuses a bad code before changing anything", () => {
    const rng = new Rng(41);
    for (const [rows, cols, perRow] of [[1, 1, 1], [300, 1000, 30], [9, 17, 17], [4096, 64, 40]] as const) {
      const { rowPtr, idx, val } = randomCsr(rng, rows, cols, perRow);
      // Zeros (a ReLU's, a TopK's padding) fire nothing; -0 neither.
      for (let e = 0; e < val.length; e += 3) val[e] = e % 2 ? 0 : -0;
      const firedA = new Uint8Array(cols), firedB = new Uint8Array(cols);
      firedA[0] = firedB[0] = 1; // marks accumulate, as counts do
      const countsA = Float64Array.from({ length: cols }, (_, j) => j), countsB = Float64Array.from(countsA);
      const nA = native.codeFirings(rows, cols, rowPtr, idx, val, firedA, countsA);
      const nB = ref.codeFirings(rows, cols, rowPtr, idx, val, firedB, countsB);
      expect(nA).toBe(nB);
      expect(nA).toBe(val.reduce((n, v) => n + (v !== 0 ? 1 : 0), 0));
      expect(firedA).toEqual(firedB);
      expect(countsA).toEqual(countsB);
      const onlyFired = new Uint8Array(cols);
      expect(native.codeFirings(rows, cols, rowPtr, idx, val, onlyFired, null)).toBe(nA);
      expect(Array.from(onlyFired)).toEqual(Array.from(countsB, (c, j) => (c - j > 0 ? 1 : 0)));
    }
    for (const K of [native, ref]) {
      const fired = new Uint8Array(3);
      const counts = new Float64Array(3);
      expect(() => K.codeFirings(2, 3, Int32Array.from([0, 1, 2]), Int32Array.from([0, 3]), Float32Array.from([1, 1]), fired, counts))
        .toThrow(/idx\[1\] = 3 is outside \[0, 3\)/);
      expect([...fired, ...counts]).toEqual([0, 0, 0, 0, 0, 0]);
    }
  });

  it("decode is an embedding bag: W rows weighted by values plus the bias", () => {
    const W = Float32Array.from([1, 0, 0, 1, 2, 2]); // 3 latents, d = 2
    const out = new Float32Array(4);
    native.sparseDecode(2, Int32Array.from([0, 2, 3]), Int32Array.from([0, 2, 1]), Float32Array.from([3, 0.5, -1]),
      W, 2, Float32Array.from([10, 20]), out);
    expect([...out]).toEqual([14, 21, 10, 19]);
  });

  it("refuses out-of-range latent indices and malformed row pointers", () => {
    const W = new Float32Array(8); // m = 4, d = 2
    const out = new Float32Array(4);
    expect(() => native.sparseDecode(2, Int32Array.from([0, 1, 2]), Int32Array.from([0, 4]), new Float32Array(2), W, 2, null, out))
      .toThrow(/outside \[0, 4\)/);
    expect(() => native.sparseDecode(2, Int32Array.from([0, 2, 1]), Int32Array.from([0, 1]), new Float32Array(2), W, 2, null, out))
      .toThrow(/non-decreasing/);
    expect(() => native.sparseDecode(2, Int32Array.from([0, 1, 2]), Int32Array.from([0, 1]), new Float32Array(2), W, 2, null, new Float32Array(3)))
      .toThrow(/out: needs 4/);
  });
});

describe("elementwise and reductions", () => {
  it("fused Adam equals the reference formula", () => {
    const rng = new Rng(8);
    forEachIsa((isa) => {
      const n = 10_007;
      const p1 = randn(rng, n), g = randn(rng, n), m1 = randn(rng, n, 0.1);
      const v1 = Float32Array.from(randn(rng, n, 0.1), (x) => x * x);
      const p2 = p1.slice(), m2 = m1.slice(), v2 = v1.slice();
      for (const step of [1, 2, 50]) {
        const b1 = 1 - 0.9 ** step, b2 = 1 - 0.999 ** step;
        native.adamUpdate(p1, g, m1, v1, 1e-3, 0.9, 0.999, 1e-8, b1, b2, 0.01);
        ref.adamUpdate(p2, g, m2, v2, 1e-3, 0.9, 0.999, 1e-8, b1, b2, 0.01);
      }
      expect(maxAbsDiff(p1, p2), isa).toBeLessThan(1e-5);
      expect(maxAbsDiff(m1, m2), isa).toBeLessThan(1e-6);
      expect(maxAbsDiff(v1, v2), isa).toBeLessThan(1e-6);
    });
  });

  it("fused Schedule-Free SignSGD equals the reference formula, sign(0) = 0 included", () => {
    const rng = new Rng(18);
    forEachIsa((isa) => {
      const n = 10_007;
      const g = randn(rng, n);
      for (let i = 0; i < n; i += 97) g[i] = 0; // zero gradients leave z where it is
      const p1 = randn(rng, n), z1 = randn(rng, n), x1 = randn(rng, n);
      const p2 = p1.slice(), z2 = z1.slice(), x2 = x1.slice();
      for (const c of [1, 0.5, 1 / 3]) {
        native.scheduleFreeSignUpdate(p1, g, z1, x1, 1e-2, 0.1, c, 0.95);
        ref.scheduleFreeSignUpdate(p2, g, z2, x2, 1e-2, 0.1, c, 0.95);
      }
      expect(maxAbsDiff(z1, z2), isa).toBeLessThan(1e-6);
      expect(maxAbsDiff(x1, x2), isa).toBeLessThan(1e-6);
      expect(maxAbsDiff(p1, p2), isa).toBeLessThan(1e-6);
    });
    // By hand: z = 1 - 0.1 * 0.5 * 2 - 0.1 * sign(-3) = 1.0; x = 0 + 0.25 * (1 - 0) = 0.25;
    // y = 0.25 + 0.05 * (1 - 0.25) = 0.2875.
    for (const k of [native, ref]) {
      const p = Float32Array.of(2), z = Float32Array.of(1), x = Float32Array.of(0);
      k.scheduleFreeSignUpdate(p, Float32Array.of(-3), z, x, 0.1, 0.5, 0.25, 0.95);
      expect(z[0]).toBeCloseTo(1, 6);
      expect(x[0]).toBeCloseTo(0.25, 6);
      expect(p[0]).toBeCloseTo(0.2875, 6);
    }
    expect(() => native.scheduleFreeSignUpdate(new Float32Array(4), new Float32Array(3), new Float32Array(4), new Float32Array(4), 1, 0, 1, 0.9))
      .toThrow(/grad/);
  });

  it("reductions, row operations and column sums match the reference", () => {
    const rng = new Rng(9);
    forEachIsa((isa) => {
      for (const [rows, cols] of [[1, 1], [7, 13], [300, 65], [1000, 512]] as const) {
        const n = rows * cols;
        const a = randn(rng, n), b = randn(rng, n);
        const rel = (x: number, y: number) => Math.abs(x - y) / (1 + Math.abs(y));
        expect(rel(native.sumSquares(a), ref.sumSquares(a)), isa).toBeLessThan(1e-5);
        expect(rel(native.dot(a, b), ref.dot(a, b)), isa).toBeLessThan(1e-5);

        const o1 = new Float32Array(n), o2 = new Float32Array(n);
        expect(rel(native.diffScaled(a, b, o1, 0.25), ref.diffScaled(a, b, o2, 0.25))).toBeLessThan(1e-5);
        expect(maxAbsDiff(o1, o2)).toBeLessThan(1e-6);

        const s1 = a.slice(), s2 = a.slice();
        native.scale(s1, -1.5);
        ref.scale(s2, -1.5);
        expect(maxAbsDiff(s1, s2)).toBe(0);

        const n1 = new Float32Array(rows), n2 = new Float32Array(rows);
        native.rowNorms(a, rows, cols, n1);
        ref.rowNorms(a, rows, cols, n2);
        expect(maxAbsDiff(n1, n2)).toBeLessThan(1e-4);

        const sc = randn(rng, rows);
        const r1 = a.slice(), r2 = a.slice();
        native.scaleRows(r1, rows, cols, sc);
        ref.scaleRows(r2, rows, cols, sc);
        expect(maxAbsDiff(r1, r2)).toBe(0);

        const a1 = b.slice(), a2 = b.slice();
        native.addScaledRows(a1, a, rows, cols, sc);
        ref.addScaledRows(a2, a, rows, cols, sc);
        expect(maxAbsDiff(a1, a2)).toBeLessThan(1e-5);

        const g1 = b.slice(), g2 = b.slice();
        native.removeParallelComponent(a, g1, rows, cols);
        ref.removeParallelComponent(a, g2, rows, cols);
        expect(maxAbsDiff(g1, g2)).toBeLessThan(1e-4);
        // What it is for: each gradient row ends orthogonal to its weight row.
        for (let r = 0; r < rows; r++) {
          expect(Math.abs(ref.dot(g1.subarray(r * cols, (r + 1) * cols), a.subarray(r * cols, (r + 1) * cols)))).toBeLessThan(1e-3);
        }

        for (const acc of [false, true]) {
          const c1 = randn(rng, cols), c2 = c1.slice();
          native.colSums(a, rows, cols, c1, acc);
          ref.colSums(a, rows, cols, c2, acc);
          expect(maxAbsDiff(c1, c2)).toBeLessThan(1e-3);
        }

        const bias = randn(rng, cols);
        const x1 = a.slice(), x2 = a.slice();
        native.addRowVector(x1, rows, cols, bias);
        ref.addRowVector(x2, rows, cols, bias);
        expect(maxAbsDiff(x1, x2)).toBe(0);

        for (const relu of [false, true]) {
          const y1 = new Float32Array(n), y2 = new Float32Array(n);
          native.biasAct(a, rows, cols, bias, relu, 0.5, y1);
          ref.biasAct(a, rows, cols, bias, relu, 0.5, y2);
          expect(maxAbsDiff(y1, y2)).toBe(0);
        }
      }
    });
  });
});

describe("counter-based normal noise", () => {
  it("native fillNormal equals counterNormal, at any offset and on any ISA", () => {
    forEachIsa((isa) => {
      for (const offset of [0, 2, 1000]) {
        const n = 1001;
        const out = new Float32Array(n);
        native.fillNormal(out, 42, 7, offset);
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(out[i]! - counterNormal(42, 7, offset + i)));
        expect(worst, `${isa} offset ${offset}`).toBeLessThan(2e-5);
      }
    });
  });

  it("does not depend on the thread count and has unit Gaussian moments", () => {
    const n = 1 << 20;
    const a = new Float32Array(n), b = new Float32Array(n);
    native.setThreads(1);
    native.fillNormal(a, 1, 2, 0);
    native.setThreads(2);
    native.fillNormal(b, 1, 2, 0);
    expect(maxAbsDiff(a, b)).toBe(0);
    let s = 0, s2 = 0, s4 = 0;
    for (const v of a) { s += v; s2 += v * v; s4 += v ** 4; }
    expect(Math.abs(s / n)).toBeLessThan(0.005);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.01);
    expect(Math.abs(s4 / n - 3)).toBeLessThan(0.05); // Gaussian kurtosis
    // Different streams are different noise.
    native.fillNormal(b, 1, 3, 0);
    expect(maxAbsDiff(a.subarray(0, 100), b.subarray(0, 100))).toBeGreaterThan(0.1);
  });

  it("sampleLatents matches the reference (bias, ReLU, learned variance, odd m)", () => {
    const rng = new Rng(10);
    forEachIsa((isa) => {
      for (const m of [7, 64, 129]) {
        const batch = 11;
        const pre = randn(rng, batch * m), bias = randn(rng, m), logvar = randn(rng, batch * m, 0.5);
        for (const [relu, lv, scale] of [[false, null, 1], [true, null, 1], [true, logvar, 0.7], [false, null, 0]] as const) {
          const z1 = new Float32Array(batch * m), z2 = new Float32Array(batch * m);
          const s1 = native.sampleLatents(pre, batch, m, bias, relu, lv, scale, 9, 4, z1);
          const s2 = ref.sampleLatents(pre, batch, m, bias, relu, lv, scale, 9, 4, z2);
          expect(Math.abs(s1 - s2) / s2, isa).toBeLessThan(1e-5);
          expect(maxAbsDiff(z1, z2), `${isa} m=${m} relu=${relu}`).toBeLessThan(1e-4);
        }
      }
    });
  });
});

describe("transformer blocks", () => {
  it("layer norm, RMS norm, activations and SwiGLU match the reference", () => {
    const rng = new Rng(12);
    forEachIsa((isa) => {
      for (const [rows, d] of [[1, 1], [5, 7], [33, 64], [130, 257]] as const) {
        const x = randn(rng, rows * d, 2), w = randn(rng, d), b = randn(rng, d);
        for (const bias of [b, null]) {
          const o1 = new Float32Array(rows * d), o2 = new Float32Array(rows * d);
          native.layerNorm(x, rows, d, w, bias, 1e-5, o1);
          ref.layerNorm(x, rows, d, w, bias, 1e-5, o2);
          expect(maxAbsDiff(o1, o2), `${isa} layerNorm ${rows}x${d}`).toBeLessThan(1e-4);
        }
        const r1 = new Float32Array(rows * d), r2 = new Float32Array(rows * d);
        native.rmsNorm(x, rows, d, w, 1e-6, r1);
        ref.rmsNorm(x, rows, d, w, 1e-6, r2);
        expect(maxAbsDiff(r1, r2), `${isa} rmsNorm`).toBeLessThan(1e-4);
      }
      // Activations over a range that covers both tails.
      const x = Float32Array.from({ length: 2001 }, (_, i) => (i - 1000) / 80);
      for (const act of [Activation.GeluErf, Activation.GeluTanh, Activation.Silu, Activation.Relu]) {
        const a = x.slice(), b = x.slice();
        native.activate(a, act);
        ref.activate(b, act);
        for (let i = 0; i < x.length; i++) {
          expect(Math.abs(a[i]! - b[i]!), `${isa} act ${act} at ${x[i]}`).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(b[i]!)));
        }
      }
      // Far negative GELU is tiny but not zero; relative accuracy holds in the tail.
      const tail = Float32Array.from([-5, -6, -8]);
      const want = tail.slice();
      native.activate(tail, Activation.GeluErf);
      ref.activate(want, Activation.GeluErf);
      for (let i = 0; i < 3; i++) expect(Math.abs(tail[i]! / want[i]! - 1)).toBeLessThan(1e-5);
      const g1 = randn(rng, 999), up = randn(rng, 999), g2 = g1.slice();
      native.siluMul(g1, up);
      ref.siluMul(g2, up);
      expect(maxAbsDiff(g1, g2)).toBeLessThan(1e-5);
    });
  });

  it("rotary embeddings match the reference in both conventions and preserve norms", () => {
    const rng = new Rng(13);
    const seq = 37, batch = 2, heads = 3, dh = 16, stride = 70, offset = 5;
    const freqs = (rot: number) => Float32Array.from({ length: rot / 2 }, (_, i) => 10000 ** ((-2 * i) / rot));
    for (const style of [RotaryStyle.RotateHalf, RotaryStyle.Interleaved]) {
      for (const rot of [dh, 8]) {
        const x = randn(rng, batch * seq * stride);
        const a = x.slice(), b = x.slice();
        native.rotary(a, batch * seq, seq, 0, stride, offset, heads, dh, freqs(rot), style);
        ref.rotary(b, batch * seq, seq, 0, stride, offset, heads, dh, freqs(rot), style);
        expect(maxAbsDiff(a, b), `style ${style} rot ${rot}`).toBeLessThan(1e-5);
        // Position 0 is unrotated; columns outside the heads are untouched; norms preserved.
        expect(a.subarray(0, stride)).toEqual(x.subarray(0, stride));
        for (let r = 0; r < batch * seq; r++) {
          expect(a[r * stride]).toBe(x[r * stride]);
          const head = (arr: Float32Array) => arr.subarray(r * stride + offset, r * stride + offset + dh);
          expect(Math.hypot(...head(a))).toBeCloseTo(Math.hypot(...head(x)), 4);
        }
      }
    }
    // Rotating rows one position at a time with pos0 = the position equals a whole pass.
    const x = randn(rng, seq * stride);
    const whole = x.slice();
    native.rotary(whole, seq, seq, 0, stride, offset, heads, dh, freqs(dh), RotaryStyle.RotateHalf);
    for (let p = 0; p < seq; p++) {
      const row = x.subarray(p * stride, (p + 1) * stride);
      native.rotary(row, 1, 1, p, stride, offset, heads, dh, freqs(dh), RotaryStyle.RotateHalf);
    }
    expect(maxAbsDiff(x, whole)).toBeLessThan(1e-6);
    // By hand: pair (0, 2) of a 4-wide head at position 3 turns by 3 * 0.5 rad, pair (1, 3) by 3 * 0.25.
    for (const kern of [native, ref]) {
      const v = Float32Array.from([1, 2, 0, 0]);
      kern.rotary(v, 1, 1, 3, 4, 0, 1, 4, Float32Array.from([0.5, 0.25]), RotaryStyle.RotateHalf);
      expect([...v].map((t) => +t.toFixed(6))).toEqual([Math.cos(1.5), 2 * Math.cos(0.75), Math.sin(1.5), 2 * Math.sin(0.75)].map((t) => +t.toFixed(6)));
    }
    expect(() => native.rotary(new Float32Array(10), 2, 3, 0, 5, 0, 1, 4, freqs(4), 0)).toThrow(/multiple of seq/);
    expect(() => native.rotary(new Float32Array(8), 1, 1, 0, 8, 0, 1, 4, freqs(6), 0)).toThrow(/headDim/);
  });

  it("the causal depthwise convolution (with and without SiLU) matches the reference, by hand too, and carries its history across calls", () => {
    const rng = new Rng(21);
    forEachIsa((isa) => {
      for (const [batch, seq, C, K] of [[1, 1, 1, 1], [2, 7, 5, 4], [3, 17, 33, 4], [1, 40, 130, 3], [2, 5, 16, 1]] as const) {
        for (const silu of [true, false]) {
          const x = randn(rng, batch * seq * C), w = randn(rng, C * K), h0 = randn(rng, batch * (K - 1) * C);
          const [h1, h2] = [h0.slice(), h0.slice()];
          const o1 = new Float32Array(batch * seq * C), o2 = o1.slice();
          native.causalConv(x, batch, seq, C, K, w, h1, silu, o1);
          ref.causalConv(x, batch, seq, C, K, w, h2, silu, o2);
          expect(maxAbsDiff(o1, o2), `${isa} ${batch}x${seq} C${C} K${K} silu ${silu}`).toBeLessThan(1e-5);
          expect(maxAbsDiff(h1, h2)).toBe(0);
          // Token by token, the history carried between calls, gives the same as one call.
          const h3 = h0.slice(), o3 = new Float32Array(batch * seq * C), step = new Float32Array(batch * C), one = step.slice();
          for (let t = 0; t < seq; t++) {
            for (let b = 0; b < batch; b++) step.set(x.subarray((b * seq + t) * C, (b * seq + t + 1) * C), b * C);
            native.causalConv(step, batch, 1, C, K, w, h3, silu, one);
            for (let b = 0; b < batch; b++) o3.set(one.subarray(b * C, (b + 1) * C), (b * seq + t) * C);
          }
          expect(maxAbsDiff(o3, o1)).toBeLessThan(1e-6);
          expect(maxAbsDiff(h3, h1)).toBe(0);
        }
      }
    });
    // By hand: one channel, kernel [1, 2, 3] over inputs 1, 1 (history 0, 0): 3, then 2 + 3; through SiLU, silu(3) and silu(5).
    for (const kern of [native, ref]) {
      const out = new Float32Array(2);
      kern.causalConv(Float32Array.of(1, 1), 1, 2, 1, 3, Float32Array.of(1, 2, 3), new Float32Array(2), false, out);
      expect([...out]).toEqual([3, 5]);
      kern.causalConv(Float32Array.of(1, 1), 1, 2, 1, 3, Float32Array.of(1, 2, 3), new Float32Array(2), true, out);
      expect(out[0]).toBeCloseTo(3 / (1 + Math.exp(-3)), 5);
      expect(out[1]).toBeCloseTo(5 / (1 + Math.exp(-5)), 5);
    }
    expect(() => native.causalConv(new Float32Array(4), 1, 2, 2, 2, new Float32Array(4), new Float32Array(1), false, new Float32Array(4))).toThrow(/history/);
  });

  it("Mamba-2's selective scan matches the reference (grouped B and C, odd widths), by hand too, and continues from its state", () => {
    const rng = new Rng(23);
    forEachIsa((isa) => {
      for (const [batch, seq, H, P, G, N] of [[1, 1, 1, 1, 1, 1], [2, 9, 4, 6, 2, 8], [1, 33, 3, 19, 1, 17], [3, 12, 4, 130, 4, 16]] as const) {
        const rows = batch * seq;
        const u = randn(rng, rows * H * P), B = randn(rng, rows * G * N), C = randn(rng, rows * G * N);
        const decay = Float32Array.from({ length: rows * H }, () => 0.5 + 0.5 * rng.uniform());
        const s0 = randn(rng, batch * H * N * P, 0.1);
        const [s1, s2] = [s0.slice(), s0.slice()];
        const o1 = new Float32Array(rows * H * P), o2 = o1.slice();
        native.ssmScan(u, B, C, decay, batch, seq, H, P, G, N, s1, o1);
        ref.ssmScan(u, B, C, decay, batch, seq, H, P, G, N, s2, o2);
        const tag = `${isa} ${batch}x${seq} heads ${H} of ${P}, groups ${G}, state ${N}`;
        expect(maxAbsDiff(o1, o2) / Math.max(1, maxAbs(o2)), tag).toBeLessThan(1e-5);
        expect(maxAbsDiff(s1, s2) / Math.max(1, maxAbs(s2)), tag).toBeLessThan(1e-5);
        if (seq < 2) continue;
        // The first half, then the rest from the state it left (one sequence): the whole run's outputs and state.
        const half = Math.floor(seq / 2), uw = H * P, bw = G * N;
        const s3 = s0.slice(0, H * N * P), o3 = new Float32Array(seq * uw);
        for (const [t0, n] of [[0, half], [half, seq - half]] as const) {
          const part = new Float32Array(n * uw);
          native.ssmScan(u.subarray(t0 * uw), B.subarray(t0 * bw), C.subarray(t0 * bw), decay.subarray(t0 * H), 1, n, H, P, G, N, s3, part);
          o3.set(part, t0 * uw);
        }
        expect(maxAbsDiff(o3, o1.subarray(0, seq * uw)) / Math.max(1, maxAbs(o1)), tag).toBeLessThan(1e-5);
        expect(maxAbsDiff(s3, s1.subarray(0, H * N * P)) / Math.max(1, maxAbs(s1)), tag).toBeLessThan(1e-5);
      }
    });
    // By hand, one head, state 1 x 1, from 0: S = 2 * 3 = 6, out 6 * 0.5; then S = 0.5 * 6 + 1 * 4 = 7, out 7 * 2.
    for (const kern of [native, ref]) {
      const state = new Float32Array(1), out = new Float32Array(2);
      kern.ssmScan(Float32Array.of(3, 4), Float32Array.of(2, 1), Float32Array.of(0.5, 2), Float32Array.of(0.9, 0.5), 1, 2, 1, 1, 1, 1, state, out);
      expect([...out]).toEqual([3, 14]);
      expect(state[0]).toBe(7);
    }
    expect(() => native.ssmScan(new Float32Array(6), new Float32Array(2), new Float32Array(2), new Float32Array(3), 1, 1, 3, 2, 2, 1,
      new Float32Array(6), new Float32Array(6))).toThrow(/multiple of groups/);
  });

  it("Mamba-2's selective scan backward matches the reference (grouped B and C, odd widths), by hand too, and the reference the scan's central differences", () => {
    const rng = new Rng(29);
    const inputs = (batch: number, seq: number, H: number, P: number, G: number, N: number) => {
      const rows = batch * seq;
      return {
        u: randn(rng, rows * H * P), B: randn(rng, rows * G * N), C: randn(rng, rows * G * N),
        decay: Float32Array.from({ length: rows * H }, () => 0.5 + 0.5 * rng.uniform()), dOut: randn(rng, rows * H * P),
      };
    };
    const backward = (kern: Kernels, x: ReturnType<typeof inputs>, batch: number, seq: number, H: number, P: number, G: number, N: number) => {
      const rows = batch * seq;
      const g = { du: new Float32Array(rows * H * P), dB: new Float32Array(rows * H * N), dC: new Float32Array(rows * H * N), dDecay: new Float32Array(rows * H) };
      // Outputs are written, not added to: start them dirty.
      for (const a of Object.values(g)) a.fill(7);
      kern.ssmScanBackward(x.u, x.B, x.C, x.decay, x.dOut, batch, seq, H, P, G, N, g.du, g.dB, g.dC, g.dDecay);
      return g;
    };
    forEachIsa((isa) => {
      for (const [batch, seq, H, P, G, N] of [[1, 1, 1, 1, 1, 1], [2, 9, 4, 6, 2, 8], [1, 33, 3, 19, 1, 17], [3, 12, 4, 130, 4, 16]] as const) {
        const x = inputs(batch, seq, H, P, G, N);
        const got = backward(native, x, batch, seq, H, P, G, N), want = backward(ref, x, batch, seq, H, P, G, N);
        const tag = `${isa} ${batch}x${seq} heads ${H} of ${P}, groups ${G}, state ${N}`;
        for (const name of ["du", "dB", "dC", "dDecay"] as const) {
          expect(maxAbsDiff(got[name], want[name]) / Math.max(1, maxAbs(want[name])), `${tag}: ${name}`).toBeLessThan(1e-5);
        }
      }
    });
    // The reference against central differences of L = <dOut, ssmScan(u, B, C, decay)> (float64 forward written here).
    const [batch, seq, H, P, G, N] = [2, 5, 4, 3, 2, 2];
    const x = inputs(batch, seq, H, P, G, N);
    const g = backward(ref, x, batch, seq, H, P, G, N);
    const loss = (v: { u: Float64Array; B: Float64Array; C: Float64Array; decay: Float64Array }) => {
      let L = 0;
      for (let b = 0; b < batch; b++) {
        for (let h = 0; h < H; h++) {
          const S = new Float64Array(N * P), gr = Math.floor(h / (H / G));
          for (let t = 0; t < seq; t++) {
            const r = b * seq + t;
            for (let i = 0; i < N; i++) {
              for (let j = 0; j < P; j++) S[i * P + j] = v.decay[r * H + h]! * S[i * P + j]! + v.B[r * G * N + gr * N + i]! * v.u[r * H * P + h * P + j]!;
            }
            for (let j = 0; j < P; j++) for (let i = 0; i < N; i++) L += x.dOut[r * H * P + h * P + j]! * S[i * P + j]! * v.C[r * G * N + gr * N + i]!;
          }
        }
      }
      return L;
    };
    const v = { u: Float64Array.from(x.u), B: Float64Array.from(x.B), C: Float64Array.from(x.C), decay: Float64Array.from(x.decay) };
    // The per-head dB and dC of a group summed: the gradient in that group's B and C.
    const perGroup = (d: Float32Array) => Float64Array.from({ length: batch * seq * G * N }, (_, e) => {
      const r = Math.floor(e / (G * N)), gr = Math.floor((e % (G * N)) / N), i = e % N;
      let sum = 0;
      for (let h = gr * (H / G); h < (gr + 1) * (H / G); h++) sum += d[(r * H + h) * N + i]!;
      return sum;
    });
    expect(worstCentralDifference(v.u, () => loss(v), g.du)).toBeLessThan(1e-6);
    expect(worstCentralDifference(v.B, () => loss(v), perGroup(g.dB))).toBeLessThan(1e-6);
    expect(worstCentralDifference(v.C, () => loss(v), perGroup(g.dC))).toBeLessThan(1e-6);
    expect(worstCentralDifference(v.decay, () => loss(v), g.dDecay)).toBeLessThan(1e-6);
    // By hand, one head, state 1 x 1, two tokens (u 3, 4; B 2, 1; C 0.5, 2; decay 0.9, 0.5; dOut 1, 1): S_1 = 6, S_2 = 7;
    // dS_2 = C_2 = 2: dC_2 = S_2 = 7, dB_2 = dS u = 8, du_2 = dS B = 2, dDecay_2 = dS S_1 = 12; dS_1 = 0.5 * 2 + C_1 = 1.5:
    // dC_1 = 6, dB_1 = 4.5, du_1 = 3, dDecay_1 = dS S_0 = 0.
    for (const kern of [native, ref]) {
      const du = new Float32Array(2), dB = new Float32Array(2), dC = new Float32Array(2), dDecay = new Float32Array(2);
      kern.ssmScanBackward(Float32Array.of(3, 4), Float32Array.of(2, 1), Float32Array.of(0.5, 2), Float32Array.of(0.9, 0.5), Float32Array.of(1, 1),
        1, 2, 1, 1, 1, 1, du, dB, dC, dDecay);
      expect([...du, ...dB, ...dC, ...dDecay]).toEqual([3, 2, 4.5, 8, 6, 7, 0, 12]);
    }
    expect(() => native.ssmScanBackward(new Float32Array(6), new Float32Array(2), new Float32Array(2), new Float32Array(3), new Float32Array(6),
      1, 1, 3, 2, 2, 1, new Float32Array(6), new Float32Array(3), new Float32Array(3), new Float32Array(3))).toThrow(/multiple of groups/);
  });

  it("the gated delta rule's backward matches the reference (grouped heads, odd widths), by hand too, and the reference the rule's central differences", () => {
    const rng = new Rng(31);
    const inputs = (batch: number, seq: number, Hk: number, Hv: number, dk: number, dv: number) => {
      const rows = batch * seq;
      return {
        q: randn(rng, rows * Hk * dk, 0.5), k: randn(rng, rows * Hk * dk, 0.5), v: randn(rng, rows * Hv * dv),
        decay: Float32Array.from({ length: rows * Hv }, () => 0.5 + 0.5 * rng.uniform()),
        beta: Float32Array.from({ length: rows * Hv }, () => rng.uniform()), dOut: randn(rng, rows * Hv * dv),
      };
    };
    const backward = (kern: Kernels, x: ReturnType<typeof inputs>, batch: number, seq: number, Hk: number, Hv: number, dk: number, dv: number) => {
      const rows = batch * seq;
      const g = {
        dq: new Float32Array(rows * Hv * dk), dK: new Float32Array(rows * Hv * dk), dV: new Float32Array(rows * Hv * dv),
        dDecay: new Float32Array(rows * Hv), dBeta: new Float32Array(rows * Hv),
      };
      // Outputs are written, not added to: start them dirty.
      for (const a of Object.values(g)) a.fill(7);
      kern.gatedDeltaRuleBackward(x.q, x.k, x.v, x.decay, x.beta, x.dOut, batch, seq, Hk, Hv, dk, dv, g.dq, g.dK, g.dV, g.dDecay, g.dBeta);
      return g;
    };
    forEachIsa((isa) => {
      for (const [batch, seq, Hk, Hv, dk, dv] of [[1, 1, 1, 1, 1, 1], [2, 9, 2, 4, 6, 5], [1, 33, 1, 3, 19, 17], [3, 12, 2, 2, 16, 130]] as const) {
        const x = inputs(batch, seq, Hk, Hv, dk, dv);
        const got = backward(native, x, batch, seq, Hk, Hv, dk, dv), want = backward(ref, x, batch, seq, Hk, Hv, dk, dv);
        const tag = `${isa} ${batch}x${seq} key heads ${Hk}, value heads ${Hv}, ${dk} x ${dv}`;
        for (const name of ["dq", "dK", "dV", "dDecay", "dBeta"] as const) {
          expect(maxAbsDiff(got[name], want[name]) / Math.max(1, maxAbs(want[name])), `${tag}: ${name}`).toBeLessThan(1e-5);
        }
      }
    });
    // The reference against central differences of L = <dOut, gatedDeltaRule(q, k, v, decay, beta)> (float64 forward written here).
    const [batch, seq, Hk, Hv, dk, dv] = [2, 5, 1, 2, 3, 2];
    const x = inputs(batch, seq, Hk, Hv, dk, dv);
    const g = backward(ref, x, batch, seq, Hk, Hv, dk, dv);
    type V = Record<"q" | "k" | "v" | "decay" | "beta", Float64Array>;
    const loss = (a: V) => {
      let L = 0;
      for (let b = 0; b < batch; b++) {
        for (let h = 0; h < Hv; h++) {
          const S = new Float64Array(dk * dv), kh = Math.floor(h / (Hv / Hk));
          for (let t = 0; t < seq; t++) {
            const r = b * seq + t, d = a.decay[r * Hv + h]!, be = a.beta[r * Hv + h]!;
            const key = (i: number) => a.k[r * Hk * dk + kh * dk + i]!;
            for (let e = 0; e < dk * dv; e++) S[e]! *= d;
            for (let j = 0; j < dv; j++) {
              let kv = 0;
              for (let i = 0; i < dk; i++) kv += S[i * dv + j]! * key(i);
              const delta = be * (a.v[r * Hv * dv + h * dv + j]! - kv);
              for (let i = 0; i < dk; i++) S[i * dv + j]! += key(i) * delta;
            }
            for (let j = 0; j < dv; j++) for (let i = 0; i < dk; i++) L += x.dOut[r * Hv * dv + h * dv + j]! * S[i * dv + j]! * a.q[r * Hk * dk + kh * dk + i]!;
          }
        }
      }
      return L;
    };
    const a: V = { q: Float64Array.from(x.q), k: Float64Array.from(x.k), v: Float64Array.from(x.v), decay: Float64Array.from(x.decay), beta: Float64Array.from(x.beta) };
    // The per-value-head dq and dk of a key head summed: the gradient in that key head's q and k.
    const perKeyHead = (d: Float32Array) => Float64Array.from({ length: batch * seq * Hk * dk }, (_, e) => {
      const r = Math.floor(e / (Hk * dk)), kh = Math.floor((e % (Hk * dk)) / dk), i = e % dk;
      let sum = 0;
      for (let h = kh * (Hv / Hk); h < (kh + 1) * (Hv / Hk); h++) sum += d[(r * Hv + h) * dk + i]!;
      return sum;
    });
    expect(worstCentralDifference(a.q, () => loss(a), perKeyHead(g.dq))).toBeLessThan(1e-6);
    expect(worstCentralDifference(a.k, () => loss(a), perKeyHead(g.dK))).toBeLessThan(1e-6);
    expect(worstCentralDifference(a.v, () => loss(a), g.dV)).toBeLessThan(1e-6);
    expect(worstCentralDifference(a.decay, () => loss(a), g.dDecay)).toBeLessThan(1e-6);
    expect(worstCentralDifference(a.beta, () => loss(a), g.dBeta)).toBeLessThan(1e-6);
    // By hand, one token of one head, dk = dv = 1 (q 2, k 3, v 5, decay 0.5, beta 0.4, dOut 1): from S_0 = 0, delta = 0.4 * 5 = 2,
    // S_1 = 3 * 2 = 6, out 12; dS = q = 2: dq = S_1 = 6, dDelta = dS k = 6, dk = dS delta = 4, dv = beta dDelta = 2.4,
    // dBeta = dDelta (v - 0) = 30, dDecay = <dP, S_0> = 0.
    for (const kern of [native, ref]) {
      const out = Array.from({ length: 5 }, () => new Float32Array(1));
      kern.gatedDeltaRuleBackward(Float32Array.of(2), Float32Array.of(3), Float32Array.of(5), Float32Array.of(0.5), Float32Array.of(0.4), Float32Array.of(1),
        1, 1, 1, 1, 1, 1, out[0]!, out[1]!, out[2]!, out[3]!, out[4]!);
      expect(out.map((o) => o[0]!)).toEqual([6, 4, Math.fround(2.4), 0, 30]);
    }
    expect(() => native.gatedDeltaRuleBackward(new Float32Array(2), new Float32Array(2), new Float32Array(3), new Float32Array(3), new Float32Array(3),
      new Float32Array(3), 1, 1, 2, 3, 1, 1, new Float32Array(3), new Float32Array(3), new Float32Array(3), new Float32Array(3), new Float32Array(3)))
      .toThrow(/multiple of kHeads/);
  });

  it("the gated delta rule matches the reference (grouped heads, odd widths), by hand too, and continues from its state", () => {
    const rng = new Rng(22);
    forEachIsa((isa) => {
      for (const [batch, seq, kH, vH, dk, dv] of [[1, 1, 1, 1, 1, 1], [2, 9, 2, 4, 8, 6], [1, 33, 3, 3, 17, 19], [3, 12, 1, 4, 16, 130]] as const) {
        const rows = batch * seq;
        const q = randn(rng, rows * kH * dk), k = randn(rng, rows * kH * dk), v = randn(rng, rows * vH * dv);
        const decay = Float32Array.from({ length: rows * vH }, () => 0.5 + 0.5 * rng.uniform());
        const beta = Float32Array.from({ length: rows * vH }, () => rng.uniform());
        const s0 = randn(rng, batch * vH * dk * dv, 0.1);
        const [s1, s2] = [s0.slice(), s0.slice()];
        const o1 = new Float32Array(rows * vH * dv), o2 = o1.slice();
        native.gatedDeltaRule(q, k, v, decay, beta, batch, seq, kH, vH, dk, dv, s1, o1);
        ref.gatedDeltaRule(q, k, v, decay, beta, batch, seq, kH, vH, dk, dv, s2, o2);
        const tag = `${isa} ${batch}x${seq} heads ${kH}/${vH} ${dk}x${dv}`;
        expect(maxAbsDiff(o1, o2) / Math.max(1, maxAbs(o2)), tag).toBeLessThan(1e-5);
        expect(maxAbsDiff(s1, s2) / Math.max(1, maxAbs(s2)), tag).toBeLessThan(1e-5);
        if (seq < 2) continue;
        // The first half, then the rest from the state it left: the whole run's outputs and state (one sequence).
        const half = Math.floor(seq / 2), qw = kH * dk, vw = vH * dv;
        const s3 = s0.slice(0, vH * dk * dv), o3 = new Float32Array(seq * vw);
        for (const [t0, n] of [[0, half], [half, seq - half]] as const) {
          const part = new Float32Array(n * vw);
          native.gatedDeltaRule(q.subarray(t0 * qw), k.subarray(t0 * qw), v.subarray(t0 * vw), decay.subarray(t0 * vH), beta.subarray(t0 * vH),
            1, n, kH, vH, dk, dv, s3, part);
          o3.set(part, t0 * vw);
        }
        expect(maxAbsDiff(o3, o1.subarray(0, seq * vw)) / Math.max(1, maxAbs(o1)), tag).toBeLessThan(1e-5);
        expect(maxAbsDiff(s3, s1.subarray(0, vH * dk * dv)) / Math.max(1, maxAbs(s1)), tag).toBeLessThan(1e-5);
      }
    });
    // By hand, dk = dv = 1, from S = 0: t = 0 writes S = beta v and reads S q; t = 1 decays, then corrects toward v.
    for (const kern of [native, ref]) {
      const state = new Float32Array(1), out = new Float32Array(2);
      kern.gatedDeltaRule(Float32Array.of(2, 1), Float32Array.of(1, 1), Float32Array.of(3, 5), Float32Array.of(0.5, 0.5), Float32Array.of(0.5, 1),
        1, 2, 1, 1, 1, 1, state, out);
      // t0: S = 0.5 * (3 - 0) = 1.5, out 3; t1: S = 0.75, S += 1 * (5 - 0.75) = 5, out 5.
      expect([...out]).toEqual([3, 5]);
      expect(state[0]).toBe(5);
    }
    expect(() => native.gatedDeltaRule(new Float32Array(4), new Float32Array(4), new Float32Array(4), new Float32Array(2), new Float32Array(2),
      1, 2, 2, 3, 1, 1, new Float32Array(3), new Float32Array(6))).toThrow(/multiple of kHeads/);
  });

  it("causal attention (multi-head and grouped-query) matches the reference", () => {
    const rng = new Rng(14);
    forEachIsa((isa) => {
      for (const [batch, seq, heads, kv, dh] of [[1, 1, 1, 1, 4], [2, 17, 4, 4, 8], [3, 33, 8, 2, 16], [1, 70, 6, 3, 64], [2, 9, 2, 1, 80]] as const) {
        const width = (heads + 2 * kv) * dh + 3; // padded rows
        const qkv = randn(rng, batch * seq * width);
        const o1 = new Float32Array(batch * seq * heads * dh), o2 = o1.slice();
        for (const softcap of [0, 1.5]) {
          native.causalAttention(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 1 / Math.sqrt(dh), softcap, o1);
          ref.causalAttention(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 1 / Math.sqrt(dh), softcap, o2);
          expect(maxAbsDiff(o1, o2), `${isa} ${batch}x${seq} h${heads}/${kv} cap ${softcap}`).toBeLessThan(1e-5);
          // The TypeScript kernels' reordered loops: the reference's bits.
          const o3 = o1.slice();
          typescriptKernels.causalAttention(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 1 / Math.sqrt(dh), softcap, o3);
          expect(o3).toEqual(o2);
        }
        // A cap far above every logit changes nothing; a tiny one flattens attention to
        // the mean of the values seen so far.
        native.causalAttention(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 1 / Math.sqrt(dh), 0, o2);
        native.causalAttention(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 1 / Math.sqrt(dh), 1e6, o1);
        expect(maxAbsDiff(o1, o2), isa).toBeLessThan(1e-5);
        native.causalAttention(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 1 / Math.sqrt(dh), 1e-6, o1);
        const t = seq - 1, v0 = (heads + kv) * dh; // last position of sequence 0, head 0 (kv head 0)
        let mean = 0;
        for (let j = 0; j <= t; j++) mean += qkv[j * width + v0]! / (t + 1);
        expect(o1[t * heads * dh]).toBeCloseTo(mean, 4);
      }
    });
  });

  it("attention over a key/value cache matches the reference and equals full causal attention", () => {
    const rng = new Rng(16);
    forEachIsa((isa) => {
      const batch = 2, seq = 9, heads = 4, kv = 2, dh = 8, cacheLen = 12;
      const width = (heads + 2 * kv) * dh;
      const qkv = randn(rng, batch * seq * width);
      const full = new Float32Array(batch * seq * heads * dh);
      const softcap = 0.7;
      native.causalAttention(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 0.3, softcap, full);
      // The same keys and values laid out as a cache; queries for the last 4 positions.
      const kc = new Float32Array(batch * cacheLen * kv * dh), vc = kc.slice();
      for (let b = 0; b < batch; b++) {
        for (let t = 0; t < seq; t++) {
          const row = (b * seq + t) * width;
          kc.set(qkv.subarray(row + heads * dh, row + (heads + kv) * dh), (b * cacheLen + t) * kv * dh);
          vc.set(qkv.subarray(row + (heads + kv) * dh, row + width), (b * cacheLen + t) * kv * dh);
        }
      }
      const n = 4, pos0 = seq - n;
      const q = new Float32Array(batch * n * width);
      for (let b = 0; b < batch; b++) q.set(qkv.subarray((b * seq + pos0) * width, (b * seq + seq) * width), b * n * width);
      const o1 = new Float32Array(batch * n * heads * dh), o2 = o1.slice();
      native.cachedAttention(q, width, 0, batch, n, pos0, kc, vc, cacheLen, heads, kv, dh, 0.3, softcap, o1);
      ref.cachedAttention(q, width, 0, batch, n, pos0, kc, vc, cacheLen, heads, kv, dh, 0.3, softcap, o2);
      expect(maxAbsDiff(o1, o2), isa).toBeLessThan(1e-5);
      const o3 = o1.slice();
      typescriptKernels.cachedAttention(q, width, 0, batch, n, pos0, kc, vc, cacheLen, heads, kv, dh, 0.3, softcap, o3);
      expect(o3).toEqual(o2);
      for (let b = 0; b < batch; b++) {
        const want = full.subarray((b * seq + pos0) * heads * dh, (b * seq + seq) * heads * dh);
        expect(maxAbsDiff(o1.subarray(b * n * heads * dh, (b + 1) * n * heads * dh), want), isa).toBeLessThan(1e-6);
      }
    });
  });

  it("the activations' backward matches the reference, and the reference matches finite differences of the forward", () => {
    const rng = new Rng(23);
    for (const act of [Activation.GeluErf, Activation.GeluTanh, Activation.Silu, Activation.Relu]) {
      forEachIsa((isa) => {
        const x = randn(rng, 1003, 3);
        const g = randn(rng, 1003);
        const [a, b] = [g.slice(), g.slice()];
        native.activationBackward(x, a, act);
        ref.activationBackward(x, b, act);
        expect(maxAbsDiff(a, b), `${isa} activation ${act}`).toBeLessThan(2e-6 * Math.max(1, maxAbs(b)));
      });
      for (const v of [-2.5, -0.7, -0.1, 0.3, 1.1, 3]) {
        const h = 1e-3;
        const at = (u: number) => {
          const t = Float64Array.of(u);
          const f = Float32Array.from(t);
          ref.activate(f, act);
          return f[0]!;
        };
        const slope = Float32Array.of(1);
        ref.activationBackward(Float32Array.of(v), slope, act);
        expect(slope[0], `activation ${act} at ${v}`).toBeCloseTo((at(v + h) - at(v - h)) / (2 * h), 3);
      }
    }
  });

  it("causal attention's backward (soft-capped too) matches the reference, and the reference matches finite differences of the forward", () => {
    const rng = new Rng(21);
    forEachIsa((isa) => {
      for (const [batch, seq, heads, kv, dh, softcap] of [[1, 1, 1, 1, 4, 0], [2, 17, 4, 4, 8, 0], [3, 33, 8, 2, 16, 0], [1, 40, 6, 3, 13, 0], [2, 19, 4, 2, 8, 1.5]] as const) {
        const width = (heads + 2 * kv) * dh + 3; // padded rows, whose gradient columns stay untouched
        const qkv = randn(rng, batch * seq * width);
        const dOut = randn(rng, batch * seq * heads * dh);
        const g1 = new Float32Array(batch * seq * width).fill(7), g2 = g1.slice();
        native.causalAttentionBackward(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 0.4, softcap, dOut, g1);
        ref.causalAttentionBackward(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 0.4, softcap, dOut, g2);
        expect(maxAbsDiff(g1, g2), `${isa} ${batch}x${seq} heads ${heads}/${kv} dh ${dh} softcap ${softcap}`).toBeLessThan(2e-5 * Math.max(1, maxAbs(g2)));
        for (let r = 0; r < batch * seq; r++) expect([...g1.subarray((r + 1) * width - 3, (r + 1) * width)]).toEqual([7, 7, 7]);
      }
    });
    // The reference against central differences of <dOut, attention(qkv)> in float64 terms,
    // without and with a soft cap tight enough to bend the logits (scale 0.7 x |q.k| ~ 2).
    for (const softcap of [0, 0.8]) {
      const [batch, seq, heads, kv, dh] = [2, 6, 4, 2, 3];
      const width = (heads + 2 * kv) * dh;
      const qkv = randn(rng, batch * seq * width);
      const dOut = randn(rng, batch * seq * heads * dh);
      const grad = new Float32Array(qkv.length);
      ref.causalAttentionBackward(qkv, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 0.7, softcap, dOut, grad);
      const objective = (x: Float32Array) => {
        const out = new Float32Array(batch * seq * heads * dh);
        ref.causalAttention(x, batch, seq, width, 0, heads * dh, (heads + kv) * dh, heads, kv, dh, 0.7, softcap, out);
        let s = 0;
        for (let i = 0; i < out.length; i++) s += out[i]! * dOut[i]!;
        return s;
      };
      for (let i = 0; i < qkv.length; i += 5) {
        const x = qkv.slice();
        const h = 1e-2;
        x[i] = qkv[i]! + h;
        const plus = objective(x);
        x[i] = qkv[i]! - h;
        const numeric = (plus - objective(x)) / (2 * h);
        expect(grad[i]!, `softcap ${softcap}: d/dqkv[${i}]`).toBeCloseTo(numeric, 3);
      }
    }
  });

  it("cross-entropy and KL gradient rows match the reference: softmax minus the target distribution, and the losses of the plain rows", () => {
    const rng = new Rng(22);
    for (const V of [1, 3, 50, 1003]) {
      const rows = 7;
      const p = randn(rng, rows * V, 3), q = randn(rng, rows * V, 3);
      const targets = Int32Array.from({ length: rows }, (_, r) => (r === 2 ? -1 : rng.int(V)));
      const plain = new Float32Array(rows), plainKl = new Float32Array(rows);
      native.crossEntropyRows(p, rows, V, targets, plain);
      native.klRows(p, q, rows, V, plainKl);
      const [a, b] = [p.slice(), p.slice()];
      const l1 = new Float32Array(rows), l2 = new Float32Array(rows);
      native.crossEntropyGradRows(a, rows, V, targets, 0.5, l1);
      ref.crossEntropyGradRows(b, rows, V, targets, 0.5, l2);
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-6);
      expect(maxAbsDiff(l1, plain)).toBeLessThan(1e-4);
      expect(maxAbsDiff(l1, l2)).toBeLessThan(1e-4);
      expect(a.subarray(2 * V, 3 * V).every((v) => v === 0)).toBe(true);
      // Each row of a softmax minus a one-hot sums to 0.
      for (let r = 0; r < rows; r++) expect(Math.abs(a.subarray(r * V, (r + 1) * V).reduce((s, v) => s + v, 0))).toBeLessThan(1e-5);
      const [c, d] = [q.slice(), q.slice()];
      const k1 = new Float32Array(rows), k2 = new Float32Array(rows);
      native.klGradRows(p, c, rows, V, 2, k1);
      ref.klGradRows(p, d, rows, V, 2, k2);
      expect(maxAbsDiff(c, d)).toBeLessThan(1e-5);
      expect(maxAbsDiff(k1, plainKl)).toBeLessThan(1e-4);
      expect(maxAbsDiff(k1, k2)).toBeLessThan(1e-4);
    }
    // By hand: uniform logits over 4 classes, target 3: (1/4 - [0,0,0,1]) * scale.
    const flat = new Float32Array(4);
    const loss = new Float32Array(1);
    native.crossEntropyGradRows(flat, 1, 4, Int32Array.from([3]), 2, loss);
    expect([...flat].map((v) => +v.toFixed(6))).toEqual([0.5, 0.5, 0.5, -1.5]);
    expect(loss[0]).toBeCloseTo(Math.log(4), 6);
    expect(() => native.crossEntropyGradRows(flat, 1, 4, Int32Array.from([4]), 1, loss)).toThrow(/outside the vocabulary/);
  });

  it("cross-entropy and KL rows match the reference and hand values", () => {
    const rng = new Rng(15);
    for (const V of [1, 3, 50, 1003]) {
      const rows = 7;
      const p = randn(rng, rows * V, 3), q = randn(rng, rows * V, 3);
      const targets = Int32Array.from({ length: rows }, (_, r) => (r === 2 ? -1 : rng.int(V)));
      const l1 = new Float32Array(rows), l2 = new Float32Array(rows), k1 = new Float32Array(rows), k2 = new Float32Array(rows);
      native.crossEntropyRows(p, rows, V, targets, l1);
      ref.crossEntropyRows(p, rows, V, targets, l2);
      native.klRows(p, q, rows, V, k1);
      ref.klRows(p, q, rows, V, k2);
      expect(maxAbsDiff(l1, l2)).toBeLessThan(1e-4);
      expect(maxAbsDiff(k1, k2)).toBeLessThan(1e-4);
      expect(l1[2]).toBe(0);
    }
    // Uniform logits over 4 classes: CE = ln 4; KL(p || p) = 0.
    const flat = new Float32Array(4);
    const loss = new Float32Array(1), kl = new Float32Array(1);
    native.crossEntropyRows(flat, 1, 4, Int32Array.from([3]), loss);
    native.klRows(flat, flat, 1, 4, kl);
    expect(loss[0]).toBeCloseTo(Math.log(4), 6);
    expect(Math.abs(kl[0]!)).toBeLessThan(1e-7);
    expect(() => native.crossEntropyRows(flat, 1, 4, Int32Array.from([4]), loss)).toThrow(/outside the vocabulary/);
  });
});

describe("t-SNE gradient", () => {
  it("Barnes-Hut's gradient is the reference's to the bit (same tree, order and arithmetic), on any thread count", () => {
    const rng = new Rng(16);
    const threads = native.info().threads;
    try {
      for (const n of [0, 1, 2, 7, 300, 2500]) {
        // Clustered points, some of them coinciding (they share a leaf at the tree's depth limit).
        const Y = Float64Array.from({ length: 2 * n }, (_, c) => 8 * ((c >> 1) % 3) + rng.normal());
        if (n > 10) { Y.copyWithin(2, 8, 10); Y.copyWithin(4, 8, 10); }
        const P = randomCsr(rng, n, Math.max(n, 1), 9);
        const val = Float64Array.from(P.val, Math.abs);
        for (const angle of [0, 0.5, 0.7]) {
          const want = new Float64Array(2 * n);
          const Z = ref.tsneGradient(Y, n, P.rowPtr, P.idx, val, 12, angle, want);
          for (const t of [1, 2, 3]) {
            native.setThreads(t);
            const got = new Float64Array(2 * n);
            expect(native.tsneGradient(Y, n, P.rowPtr, P.idx, val, 12, angle, got)).toBe(Z);
            expect(got, `n=${n} angle=${angle} threads=${t}`).toEqual(want);
          }
        }
      }
    } finally {
      native.setThreads(threads);
    }
  });

  it("refuses an angle where a point's own cell could stand in for it, coordinates that are not finite and bad sparse rows", () => {
    const Y = Float64Array.from([0, 0, 1, 1, 2, 0]);
    const rowPtr = Int32Array.from([0, 1, 2, 2]), col = Int32Array.from([1, 0]), val = Float64Array.from([0.5, 0.5]);
    const grad = new Float64Array(6);
    for (const k of [native, ref]) {
      expect(() => k.tsneGradient(Y, 3, rowPtr, col, val, 1, 0.8, grad)).toThrow(/angle 0.8 must be in \[0, 0.7\]/);
      expect(() => k.tsneGradient(Float64Array.from([0, 0, NaN, 1, 2, 0]), 3, rowPtr, col, val, 1, 0.5, grad)).toThrow(/not finite/);
    }
    expect(() => native.tsneGradient(Y, 3, rowPtr, Int32Array.from([1, 3]), val, 1, 0.5, grad)).toThrow(/outside \[0, 3\)/);
    expect(() => native.tsneGradient(Y, 4, rowPtr, col, val, 1, 0.5, grad)).toThrow(/needs 8 elements/);
  });
});
