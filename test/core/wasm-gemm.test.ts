/**
 * The WebAssembly kernels: the binary writer against the format's known encodings and a
 * running engine, and the SIMD GEMM against the reference twin on shapes that straddle its
 * micro-panels, k blocks, column blocks and row slices.
 */
import { describe, expect, it } from "vitest";
import { kernels, runtimeInfo, typescriptKernels, wasmKernels } from "../../src/core/kernels.js";
import { referenceKernels as ref } from "../../src/core/reference.js";
import { Rng } from "../../src/core/rng.js";
import { sgemmWasm, wasmGemmMemoryBytes, wasmSimdAvailable } from "../../src/core/wasm-gemm.js";
import { Code, I32, signedLeb, unsignedLeb, wasmModule, webAssembly } from "../../src/core/wasm-module.js";
import { maxAbsDiff, randn } from "../helpers.js";

describe("WebAssembly binary writer", () => {
  it("encodes LEB128 integers as the format's examples do", () => {
    expect(unsignedLeb(0)).toEqual([0x00]);
    expect(unsignedLeb(127)).toEqual([0x7f]);
    expect(unsignedLeb(128)).toEqual([0x80, 0x01]);
    expect(unsignedLeb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(unsignedLeb(0xffffffff)).toEqual([0xff, 0xff, 0xff, 0xff, 0x0f]);
    expect(signedLeb(0)).toEqual([0x00]);
    expect(signedLeb(63)).toEqual([0x3f]);
    expect(signedLeb(64)).toEqual([0xc0, 0x00]);
    expect(signedLeb(-1)).toEqual([0x7f]);
    expect(signedLeb(-64)).toEqual([0x40]);
    expect(signedLeb(-65)).toEqual([0xbf, 0x7f]);
    expect(signedLeb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
    expect(() => unsignedLeb(-1)).toThrow(/out of range/);
    expect(() => signedLeb(2 ** 31)).toThrow(/out of range/);
  });

  it("writes a module the engine validates and runs: loops, locals, SIMD loads, arithmetic and stores", () => {
    // axpy4(x, y, n): y[i..i+4] += x[i..i+4] * x[i..i+4] for n groups of four floats, then
    // one more group at byte offset 16 * n through an immediate offset, a zero vector added.
    const [x, y, n] = [0, 1, 2];
    const body = new Code().loop()
      .get(y).get(y).v128Load().get(x).v128Load().get(x).v128Load().f32x4Mul().f32x4Add().v128Store()
      .addTo(x, 16).addTo(y, 16)
      .get(n).i32(1).i32Sub().tee(n).brIf(0).end()
      .get(y).get(y).v128Load(16).v128Zero().f32x4Add().v128Store(16);
    const bytes = wasmModule([{ name: "axpy4", params: [I32, I32, I32], locals: [], body }]);
    const wasm = webAssembly!;
    expect(wasm.validate(bytes)).toBe(true);
    const memory = new wasm.Memory({ initial: 1 });
    const instance = new wasm.Instance(new wasm.Module(bytes), { env: { memory } });
    const f = new Float32Array(memory.buffer);
    for (let i = 0; i < 8; i++) { f[i] = i + 1; f[64 + i] = 10 * i; }
    f[64 + 8] = 7;
    (instance.exports.axpy4 as (x: number, y: number, n: number) => void)(0, 256, 2);
    expect([...f.subarray(64, 64 + 9)]).toEqual([1, 14, 29, 46, 65, 86, 109, 134, 7]);
  });
});

describe("sgemm on WebAssembly SIMD", () => {
  it("is what saekit runs on where the addon is not, in this engine", () => {
    expect(wasmSimdAvailable()).toBe(true);
    expect(wasmKernels.sgemm).toBe(sgemmWasm);
    expect(wasmKernels.topkRows).toBe(typescriptKernels.topkRows); // the rest are the TypeScript kernels
    if (kernels().kind !== "native") expect(runtimeInfo().isa).toBe("wasm-simd128");
  });

  it("matches the reference for every transpose, with strides, alpha and beta, across every block edge", () => {
    const rng = new Rng(5);
    // Edges of the 4 x 8 micro-panels, k not a multiple of the unroll, several k blocks
    // (KC = 256), several column blocks (NC = 1024), and products too small to pack.
    const shapes: Array<[number, number, number]> = [
      [16, 16, 16], [17, 23, 19], [33, 1030, 41], [130, 70, 600], [64, 9, 513], [21, 2051, 37], [5, 300, 64], [40, 3, 40],
    ];
    for (const [M, N, K] of shapes) {
      for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
        const lda = (ta ? M : K) + 3, ldb = (tb ? K : N) + 1, ldc = N + 2;
        const A = randn(rng, (ta ? K : M) * lda);
        const B = randn(rng, (tb ? N : K) * ldb);
        const got = randn(rng, M * ldc);
        const want = got.slice();
        sgemmWasm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, got, ldc);
        ref.sgemm(ta, tb, M, N, K, 0.75, A, lda, B, ldb, 0.5, want, ldc);
        const label = `${M}x${N}x${K} ta=${ta} tb=${tb}`;
        expect(maxAbsDiff(got, want), label).toBeLessThan(4e-5 * Math.sqrt(K));
        // C's columns past N are untouched.
        for (let i = 0; i < M; i++) expect(got.subarray(i * ldc + N, (i + 1) * ldc), label).toEqual(want.subarray(i * ldc + N, (i + 1) * ldc));
      }
    }
  });

  it("runs products taller than its memory holds in slices of rows, and leaves no padding behind for the next call", () => {
    const rng = new Rng(6);
    // 520 rows of K = 8200 is more packed A than one slice (2^22 floats), 9000 rows of 1024
    // columns more of C: two and three slices.
    for (const [M, N, K] of [[520, 24, 8200], [18, 20, 30], [9000, 1024, 16], [300, 17, 257]] as Array<[number, number, number]>) {
      const A = randn(rng, M * K), B = randn(rng, N * K);
      const got = new Float32Array(M * N), want = new Float32Array(M * N);
      sgemmWasm(false, true, M, N, K, 1, A, K, B, K, 0, got, N);
      ref.sgemm(false, true, M, N, K, 1, A, K, B, K, 0, want, N);
      expect(maxAbsDiff(got, want), `${M}x${N}x${K}`).toBeLessThan(4e-5 * Math.sqrt(K));
    }
    // Packed A and C's block are bounded (16 MiB each), B's block is 1 MiB.
    expect(wasmGemmMemoryBytes()).toBeLessThanOrEqual(34 * 2 ** 20);
  });

  it("propagates NaN and infinity from the operands, and overwrites a NaN C when beta = 0", () => {
    const rng = new Rng(7);
    const M = 20, N = 24, K = 32;
    const A = randn(rng, M * K), B = randn(rng, K * N);
    A[3 * K + 5] = Number.NaN; // row 3 of C
    B[7 * N + 10] = Number.POSITIVE_INFINITY; // column 10 of C: +-inf, or NaN in row 3
    const C = new Float32Array(M * N).fill(Number.NaN);
    sgemmWasm(false, false, M, N, K, 1, A, K, B, N, 0, C, N);
    const want = new Float32Array(M * N);
    ref.sgemm(false, false, M, N, K, 1, A, K, B, N, 0, want, N);
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        const c = C[i * N + j]!, w = want[i * N + j]!;
        if (Number.isFinite(w)) expect(Math.abs(c - w)).toBeLessThan(1e-4);
        else expect(c, `C[${i}, ${j}]`).toBe(w);
      }
    }
    expect(Number.isNaN(C[3 * N])).toBe(true);
    expect(Math.abs(C[10]!)).toBe(Number.POSITIVE_INFINITY);
  });
});
