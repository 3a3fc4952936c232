/**
 * The GEMM of the WebAssembly kernels (a browser, or Node without the native addon):
 * C = alpha * op(A) * op(B) + beta * C, row-major, as kernel-api.ts defines it, on 128-bit
 * SIMD. It follows the GotoBLAS design the native kernel does, scaled down to what
 * WebAssembly offers (sixteen 128-bit registers, no FMA, one thread):
 *
 *   - op(A) is packed into 4-row micro-panels and op(B) into 8-column micro-panels, each
 *     k-major, in the module's memory (zero-padded, so the kernel never sees an edge);
 *   - the microkernel keeps a 4 x 8 block of C in eight f32x4 registers and, per k, loads
 *     two vectors of B and broadcasts four scalars of A: 32 multiply-adds per 6 loads
 *     (measured on one AMD EPYC core: a 6 x 8 tile ran 8% faster in Node 20's V8 but 40%
 *     slower in Chromium 156, whose register allocator spills it; relaxed SIMD's fused
 *     multiply-add gained nothing there; 4 x 8 runs at ~41 GFLOP/s in Chromium);
 *   - k runs in blocks of KC (a B micro-panel stays in L1), rows in blocks of MC (A's
 *     panels stay in L2), columns in blocks of NC (the block of C the module holds).
 * The kernel is generated at load time by wasm-module.ts (see there for why). Products are
 * summed in float32, as the native kernels' are, so C matches the reference twin's to
 * float32 rounding, not to the bit.
 */
import { sgemmBlocked } from "./js-gemm.js";
import { Code, I32, V128, type WasmApi, type WasmMemory, wasmModule, webAssembly } from "./wasm-module.js";

/** Rows and columns of the microkernel's block of C. */
const MR = 4;
const NR = 8;
/** k steps per microkernel loop iteration: each block of k is padded to a multiple of it. */
const UNROLL = 4;
const KC = 256;
const MC = 128;
const NC = 1024;
/**
 * Floats of packed A, and of C's block, the module holds at once (16 MiB each); taller
 * products run in slices of rows.
 */
const SLICE_FLOATS = 1 << 22;
/** Below this many rows, columns or k, packing costs more than it saves. */
const SMALL = 16;

const F32 = 4;
const PAGE = 65536;

/**
 * micro(a, b, c, kc, ldc, accumulate): C[4, 8] (+)= A-panel[kc, 4]^T B-panel[kc, 8], where
 * the panels are k-major and ldc is C's row stride in bytes.
 */
function microkernel(): Code {
  const [a, b, c, kc, ldc, accumulate] = [0, 1, 2, 3, 4, 5];
  const acc = (r: number, h: number) => 6 + r * 2 + h;
  const bv = (h: number) => 14 + h;
  const av = 16;
  const code = new Code();
  for (let r = 0; r < MR; r++) for (let h = 0; h < 2; h++) code.v128Zero().set(acc(r, h));
  code.loop();
  for (let u = 0; u < UNROLL; u++) {
    for (let h = 0; h < 2; h++) code.get(b).v128Load((u * NR + h * 4) * F32).set(bv(h));
    for (let r = 0; r < MR; r++) {
      code.get(a).v128Load32Splat((u * MR + r) * F32).set(av);
      for (let h = 0; h < 2; h++) code.get(acc(r, h)).get(av).get(bv(h)).f32x4Mul().f32x4Add().set(acc(r, h));
    }
  }
  code.addTo(a, UNROLL * MR * F32).addTo(b, UNROLL * NR * F32);
  code.get(kc).i32(UNROLL).i32Sub().tee(kc).brIf(0).end();
  for (let r = 0; r < MR; r++) {
    code.get(accumulate).if();
    for (let h = 0; h < 2; h++) code.get(acc(r, h)).get(c).v128Load(h * 16).f32x4Add().set(acc(r, h));
    code.end();
    for (let h = 0; h < 2; h++) code.get(c).get(acc(r, h)).v128Store(h * 16);
    code.addLocal(c, ldc);
  }
  return code;
}

/**
 * macro(a, b, c, mBlocks, nBlocks, kc, ldc, accumulate): every 8-column panel of B against
 * every 4-row panel of A (B's panel outermost, so it stays in L1 while A's stream past).
 */
function macrokernel(): Code {
  const [a, b, c, mBlocks, nBlocks, kc, ldc, accumulate] = [0, 1, 2, 3, 4, 5, 6, 7];
  const [jr, ir, ap, ci] = [8, 9, 10, 11];
  const code = new Code();
  code.get(nBlocks).set(jr).loop();
  code.get(a).set(ap).get(c).set(ci).get(mBlocks).set(ir).loop();
  code.get(ap).get(b).get(ci).get(kc).get(ldc).get(accumulate).call(0);
  code.get(ap).get(kc).i32(MR * F32).i32Mul().i32Add().set(ap);
  code.get(ci).get(ldc).i32(MR).i32Mul().i32Add().set(ci);
  code.get(ir).i32(1).i32Sub().tee(ir).brIf(0).end();
  code.get(b).get(kc).i32(NR * F32).i32Mul().i32Add().set(b);
  code.addTo(c, NR * F32);
  code.get(jr).i32(1).i32Sub().tee(jr).brIf(0).end();
  return code;
}

/** The module's bytes: function 0 the microkernel, 1 the macrokernel. */
export function gemmModuleBytes(): Uint8Array {
  return wasmModule([
    { name: "micro", params: [I32, I32, I32, I32, I32, I32], locals: [...new Array<number>(11).fill(V128)] as typeof V128[], body: microkernel() },
    { name: "macro", params: [I32, I32, I32, I32, I32, I32, I32, I32], locals: [I32, I32, I32, I32], body: macrokernel() },
  ]);
}

const roundUp = (n: number, to: number) => Math.ceil(n / to) * to;

/** The instantiated module and its memory: [packed A | packed B | block of C], in floats. */
class GemmModule {
  private memory: WasmMemory;
  private readonly macro: (a: number, b: number, c: number, mBlocks: number, nBlocks: number, kc: number, ldc: number, accumulate: number) => void;
  private f32: Float32Array;

  constructor(api: WasmApi, module: object) {
    this.memory = new api.Memory({ initial: 1 });
    this.f32 = new Float32Array(this.memory.buffer);
    const instance = new api.Instance(module, { env: { memory: this.memory } });
    this.macro = instance.exports.macro as GemmModule["macro"];
  }

  get memoryBytes(): number {
    return this.memory.buffer.byteLength;
  }

  /** The module's memory as floats, grown to hold at least n. */
  floats(n: number): Float32Array {
    const pages = Math.ceil((n * F32) / PAGE) - this.memory.buffer.byteLength / PAGE;
    if (pages > 0) {
      this.memory.grow(pages);
      this.f32 = new Float32Array(this.memory.buffer);
    }
    return this.f32;
  }

  sgemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
    A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): void {
    const kPad = roundUp(K, UNROLL);
    const ncMax = Math.min(NC, roundUp(N, NR));
    const sliceRows = Math.max(MR, Math.floor(SLICE_FLOATS / Math.max(kPad, ncMax) / MR) * MR);
    for (let m0 = 0; m0 < M; m0 += sliceRows) {
      const rows = Math.min(sliceRows, M - m0);
      const mPad = roundUp(rows, MR);
      // Packed A at float 0, packed B after it, the block of C last; all 16-byte aligned.
      const bAt = mPad * kPad, cAt = bAt + ncMax * Math.min(KC, kPad);
      const mem = this.floats(cAt + mPad * ncMax);
      packA(transA, A, lda, m0, rows, mPad, K, mem);
      for (let n0 = 0; n0 < N; n0 += NC) {
        const cols = Math.min(NC, N - n0), nPad = roundUp(cols, NR);
        for (let k0 = 0; k0 < K; k0 += KC) {
          const kc = Math.min(KC, K - k0), kcPad = roundUp(kc, UNROLL);
          packB(transB, B, ldb, k0, kc, kcPad, n0, cols, nPad, mem, bAt);
          for (let i0 = 0; i0 < mPad; i0 += MC) {
            const mBlocks = Math.min(MC, mPad - i0) / MR;
            this.macro((mPad * k0 + i0 * kcPad) * F32, bAt * F32, (cAt + i0 * nPad) * F32,
              mBlocks, nPad / NR, kcPad, nPad * F32, k0 > 0 ? 1 : 0);
          }
        }
        for (let i = 0; i < rows; i++) {
          const from = cAt + i * nPad, to = (m0 + i) * ldc + n0;
          if (beta === 0) for (let j = 0; j < cols; j++) C[to + j] = alpha * mem[from + j]!;
          else for (let j = 0; j < cols; j++) C[to + j] = alpha * mem[from + j]! + beta * C[to + j]!;
        }
      }
    }
  }
}

/**
 * Rows m0..m0+rows of op(A) as 4-row micro-panels, block of k by block of k: element (i, k)
 * of the slice, k in block k0 (kc wide, padded to kcPad), sits at
 * mPad * k0 + (i / 4) * 4 * kcPad + (k - k0) * 4 + i % 4. Padding is zero.
 */
function packA(trans: boolean, A: Float32Array, lda: number, m0: number, rows: number, mPad: number, K: number, out: Float32Array): void {
  for (let k0 = 0; k0 < K; k0 += KC) {
    const kc = Math.min(KC, K - k0), kcPad = roundUp(kc, UNROLL);
    const block = mPad * k0;
    for (let i = 0; i < mPad; i++) {
      const panel = block + (i >> 2) * MR * kcPad + (i & 3);
      if (i >= rows) {
        for (let k = 0; k < kcPad; k++) out[panel + k * MR] = 0;
        continue;
      }
      if (trans) for (let k = 0; k < kc; k++) out[panel + k * MR] = A[(k0 + k) * lda + m0 + i]!;
      else {
        const row = (m0 + i) * lda + k0;
        for (let k = 0; k < kc; k++) out[panel + k * MR] = A[row + k]!;
      }
      for (let k = kc; k < kcPad; k++) out[panel + k * MR] = 0;
    }
  }
}

/**
 * Rows k0..k0+kc of op(B), columns n0..n0+cols, as 8-column micro-panels at `at`: element
 * (k, j) sits at at + (j / 8) * 8 * kcPad + (k - k0) * 8 + j % 8. Padding is zero.
 */
function packB(trans: boolean, B: Float32Array, ldb: number, k0: number, kc: number, kcPad: number,
  n0: number, cols: number, nPad: number, out: Float32Array, at: number): void {
  for (let j = 0; j < nPad; j++) {
    const panel = at + (j >> 3) * NR * kcPad + (j & 7);
    if (j >= cols) {
      for (let k = 0; k < kcPad; k++) out[panel + k * NR] = 0;
      continue;
    }
    if (trans) {
      const row = (n0 + j) * ldb + k0;
      for (let k = 0; k < kc; k++) out[panel + k * NR] = B[row + k]!;
    } else for (let k = 0; k < kc; k++) out[panel + k * NR] = B[(k0 + k) * ldb + n0 + j]!;
    for (let k = kc; k < kcPad; k++) out[panel + k * NR] = 0;
  }
}

let gemmModule: GemmModule | null | undefined;

/**
 * The compiled module, or null where WebAssembly or its SIMD instructions are missing. It
 * is a few hundred bytes, so compiling it synchronously is allowed on a browser's main
 * thread too.
 */
function loadGemmModule(): GemmModule | null {
  if (gemmModule !== undefined) return gemmModule;
  try {
    const bytes = gemmModuleBytes();
    gemmModule = webAssembly?.validate(bytes) ? new GemmModule(webAssembly, new webAssembly.Module(bytes)) : null;
  } catch {
    gemmModule = null;
  }
  return gemmModule;
}

/** Whether this JavaScript engine runs WebAssembly with 128-bit SIMD. */
export function wasmSimdAvailable(): boolean {
  return loadGemmModule() !== null;
}

/** Bytes of memory the WebAssembly GEMM holds (it grows to its largest product's slice, ~33 MiB at most). */
export function wasmGemmMemoryBytes(): number {
  return loadGemmModule()?.memoryBytes ?? 0;
}

export function sgemmWasm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number,
  A: Float32Array, lda: number, B: Float32Array, ldb: number, beta: number, C: Float32Array, ldc: number): void {
  const module = loadGemmModule();
  if (module === null || M < SMALL || N < SMALL || K < SMALL) {
    sgemmBlocked(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  module.sgemm(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
