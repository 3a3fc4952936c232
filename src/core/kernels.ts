/**
 * Picks the kernels saekit runs on: the native addon when it is built, else the TypeScript
 * kernels: the reference twins with a faster GEMM, TopK, sparse decode and attention, the
 * GEMM on WebAssembly SIMD where the engine has it (see kernel-api.ts for the interface and
 * its conventions).
 */
import { cachedAttentionRows, causalAttentionRows } from "./js-attention.js";
import { sgemmBf16BVia, sgemmBf16Via } from "./bf16.js";
import { sgemmBlocked } from "./js-gemm.js";
import { sparseDecodeRows, sparseRowDotsBlocked, sparseScatterRowsBlocked } from "./js-sparse.js";
import { topkRowsHeap } from "./js-topk.js";
import type { Kernels } from "./kernel-api.js";
import { loadNativeAddon } from "./native.js";
import { referenceKernels } from "./reference.js";
import { sgemmWasm, wasmSimdAvailable } from "./wasm-gemm.js";

export { Activation, RotaryStyle, SelectMode } from "./kernel-api.js";
export type { Kernels } from "./kernel-api.js";

/** What the native runtime reports about itself. */
export interface RuntimeInfo {
  kernels: "native" | "reference";
  isa: string;
  bestIsa: string;
  threads: number;
  /** The native GEMM's register tile, rows x columns of C per micro-kernel call ("14x32"). */
  gemmTile?: string;
  /** What sgemm computes in: "highest" (float32) or "medium" (bfloat16 inputs). */
  matmulPrecision: MatmulPrecision;
  /**
   * How bfloat16-precision products run: on the CPU's dot-product instructions (AVX-512
   * BF16, about twice float32's speed) or emulated (the same precision, float32's speed).
   */
  bf16Matmul: "dot-product instructions" | "emulated";
  loadError?: string;
}

/**
 * What runs where neither the addon nor WebAssembly SIMD is: the reference twins, except
 * the GEMM, the per-row TopK, the sparse decode and its backward products, and attention,
 * which give the reference's results (to the bit) faster.
 */
export const typescriptKernels: Kernels = Object.freeze({
  ...referenceKernels, sgemm: sgemmBlocked, sgemmBf16B: sgemmBf16BVia(sgemmBlocked), sgemmBf16: sgemmBf16Via(sgemmBlocked), topkRows: topkRowsHeap, causalAttention: causalAttentionRows, cachedAttention: cachedAttentionRows,
  sparseDecode: sparseDecodeRows, sparseRowDots: sparseRowDotsBlocked, sparseScatterRows: sparseScatterRowsBlocked,
});

/**
 * The TypeScript kernels with the GEMM on WebAssembly's 128-bit SIMD (wasm-gemm.ts): about
 * six times the TypeScript GEMM's speed, summing in float32 as the native GEMM does rather
 * than matching the reference to the bit. What runs in a browser or without the addon.
 */
export const wasmKernels: Kernels = Object.freeze({
  ...typescriptKernels, sgemm: sgemmWasm, sgemmBf16B: sgemmBf16BVia(sgemmWasm), sgemmBf16: sgemmBf16Via(sgemmWasm),
});

/**
 * What every sgemm of kernels() computes in, as PyTorch's torch.set_float32_matmul_precision:
 * "highest" is float32; "medium" rounds both inputs to bfloat16 and sums the exact products
 * in float32 (sgemmBf16), about twice as fast on CPUs with AVX-512 BF16 (Zen 4, Sapphire
 * Rapids and later). SAE training and LM forwards then run as under PyTorch's bf16 autocast:
 * the weights, gradients and optimizer stay float32, each product sees 8-bit mantissas.
 */
export type MatmulPrecision = "highest" | "medium";
export const MATMUL_PRECISIONS: readonly MatmulPrecision[] = ["highest", "medium"];

let precision: MatmulPrecision = "highest";

/** The matmul precision in effect (default "highest", or SAEKIT_MATMUL_PRECISION). */
export function matmulPrecision(): MatmulPrecision {
  kernels();
  return precision;
}

/** Sets the precision every sgemm of kernels() computes in from now on. */
export function setMatmulPrecision(p: MatmulPrecision): void {
  if (!MATMUL_PRECISIONS.includes(p)) throw new RangeError(`matmul precision must be one of ${MATMUL_PRECISIONS.join(", ")}, got ${JSON.stringify(p)}`);
  kernels();
  precision = p;
}

/**
 * Runs fn at matmul precision p, then restores the one before. For synchronous work: the
 * continuation of a promise fn returns runs at whatever precision is in effect by then.
 */
export function withMatmulPrecision<T>(p: MatmulPrecision, fn: () => T): T {
  const before = matmulPrecision();
  setMatmulPrecision(p);
  try {
    return fn();
  } finally {
    precision = before;
  }
}

/** `base` with its sgemm and sgemmBf16B following the matmul precision, checked on each call. */
function followingPrecision(base: Kernels): Kernels {
  return Object.freeze({
    ...base,
    sgemm: (...args: Parameters<Kernels["sgemm"]>) => (precision === "medium" ? base.sgemmBf16 : base.sgemm)(...args),
    sgemmBf16B: (transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bf16Precision) =>
      base.sgemmBf16B(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bf16Precision ?? precision === "medium"),
  } satisfies Kernels);
}

let active: Kernels | null = null;
let activeBase: Kernels | null = null;
let warned = false;

/** Environment variables where there are any (Node), none in a browser. */
const env: Record<string, string | undefined> = typeof process !== "undefined" ? process.env : {};

/**
 * The kernels saekit uses: native when the addon is built (unless SAEKIT_NO_NATIVE=1),
 * otherwise the WebAssembly + TypeScript kernels (the TypeScript ones alone where the
 * engine lacks WebAssembly SIMD), with a one-time warning on stderr; their sgemm computes
 * at the matmul precision in effect (setMatmulPrecision).
 */
export function kernels(): Kernels {
  if (active) return active;
  const native = env.SAEKIT_NO_NATIVE === "1"
    ? { addon: null, error: "SAEKIT_NO_NATIVE=1" }
    : loadNativeAddon();
  const requested = env.SAEKIT_MATMUL_PRECISION;
  if (requested !== undefined && requested !== "") {
    if (!MATMUL_PRECISIONS.includes(requested as MatmulPrecision)) {
      throw new RangeError(`SAEKIT_MATMUL_PRECISION must be one of ${MATMUL_PRECISIONS.join(", ")}, got ${JSON.stringify(requested)}`);
    }
    precision = requested as MatmulPrecision;
  }
  if (native.addon) {
    activeBase = native.addon;
    const threads = Number(env.SAEKIT_THREADS);
    if (Number.isInteger(threads) && threads > 0) native.addon.setThreads(threads);
  } else {
    activeBase = wasmSimdAvailable() ? wasmKernels : typescriptKernels;
    // In a browser there is no addon to miss; there is nothing to warn about.
    if (!warned && env.SAEKIT_QUIET !== "1" && typeof process !== "undefined") {
      warned = true;
      process.stderr.write(
        `saekit: native kernels unavailable (${native.error}); running on the TypeScript ` +
          "reference kernels (the GEMM on WebAssembly SIMD where it can), which are much slower. " +
          "Run `npm rebuild saekit` to build them.\n",
      );
    }
  }
  active = followingPrecision(activeBase);
  return active;
}

/** Sets the number of threads native kernels use (the reference kernels are single-threaded). */
export function setThreads(n: number): void {
  if (!Number.isInteger(n) || n < 1) throw new RangeError(`threads must be a positive integer, got ${n}`);
  const native = loadNativeAddon();
  if (native.addon) native.addon.setThreads(n);
}

export function runtimeInfo(): RuntimeInfo {
  kernels();
  const native = loadNativeAddon();
  if (activeBase === native.addon && native.addon) {
    const info = native.addon.info();
    return {
      kernels: "native", isa: info.isa, bestIsa: info.bestIsa, threads: info.threads, gemmTile: `${info.gemmMR}x${info.gemmNR}`,
      matmulPrecision: precision, bf16Matmul: info.bf16Dot ? "dot-product instructions" : "emulated",
    };
  }
  const isa = activeBase === wasmKernels ? "wasm-simd128" : "typescript";
  return { kernels: "reference", isa, bestIsa: isa, threads: 1, matmulPrecision: precision, bf16Matmul: "emulated", loadError: native.error };
}
