/**
 * bfloat16: the top 16 bits of a float32 (same exponent range, 8 bits of mantissa), the
 * format language-model weights usually ship in. Kept as bits in a Uint16Array, a matrix
 * takes half the memory of float32; widening back is exact.
 */
import type { Kernels } from "./kernel-api.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 -> bfloat16 bits, rounding to nearest (ties to even); NaN stays NaN. */
export function float32ToBf16(src: Float32Array, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) {
    f32[0] = src[i]!;
    const bits = u32[0]!;
    if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x7fffff) !== 0) {
      out[i] = (bits >>> 16) | 0x40; // a quiet NaN, whatever mantissa bits rounding would drop
      continue;
    }
    out[i] = (bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16;
  }
  return out;
}

/**
 * float32 values rounded to bfloat16 precision in place, as the AVX-512 BF16 instructions
 * round them (native/src/gemm_kernels.h, bf16_round_bits): to nearest, ties to even; a
 * denormal becomes a zero of its sign; a NaN stays a quiet NaN. What sgemmBf16 reads.
 */
export function roundToBf16(x: Float32Array): Float32Array {
  const bits = new Uint32Array(x.buffer, x.byteOffset, x.length);
  for (let i = 0; i < bits.length; i++) {
    const u = bits[i]!;
    if ((u & 0x7f800000) === 0) bits[i] = u & 0x80000000;
    else if ((u & 0x7fffffff) > 0x7f800000) bits[i] = (u | 0x00400000) & 0xffff0000;
    else bits[i] = (u + 0x7fff + ((u >>> 16) & 1)) & 0xffff0000;
  }
  return x;
}

/** bfloat16 bits -> float32 (exact). */
export function bf16ToFloat32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/** Elements [0, span) of a row-major matrix view: what a product reads of it. */
function readSpan(name: string, X: { length: number }, rows: number, cols: number, ld: number): number {
  const span = rows === 0 || cols === 0 ? 0 : (rows - 1) * ld + cols;
  if (X.length < span) throw new RangeError(`${name}: needs ${span} elements, has ${X.length}`);
  return span;
}

/**
 * sgemmBf16 for kernel sets without a native one: the parts of A and B the product reads,
 * rounded to bfloat16 (copies), handed to their sgemm. Products of bfloat16 values are exact
 * in float32, so this is the same computation up to the order of the sums.
 */
export function sgemmBf16Via(sgemm: Kernels["sgemm"]): Kernels["sgemmBf16"] {
  return (transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) => {
    const a = readSpan("A", A, transA ? K : M, transA ? M : K, lda);
    const b = readSpan("B", B, transB ? N : K, transB ? K : N, ldb);
    sgemm(transA, transB, M, N, K, alpha, roundToBf16(A.slice(0, a)), lda, roundToBf16(B.slice(0, b)), ldb, beta, C, ldc);
  };
}

/**
 * sgemmBf16B for kernel sets without a native one: B widened to float32 (the part the
 * product reads) and handed to their sgemm, which then computes exactly what it would on
 * the widened matrix (or, at bfloat16 precision, to their sgemmBf16).
 */
export function sgemmBf16BVia(sgemm: Kernels["sgemm"], sgemmBf16: Kernels["sgemmBf16"] = sgemmBf16Via(sgemm)): Kernels["sgemmBf16B"] {
  return (transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, bf16Precision = false) => {
    const span = readSpan("B", B, transB ? N : K, transB ? K : N, ldb);
    (bf16Precision ? sgemmBf16 : sgemm)(transA, transB, M, N, K, alpha, A, lda, bf16ToFloat32(B.subarray(0, span)), ldb, beta, C, ldc);
  };
}
