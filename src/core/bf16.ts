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

/** bfloat16 bits -> float32 (exact). */
export function bf16ToFloat32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i]! << 16;
  return out;
}

/**
 * sgemmBf16B for kernel sets without a native one: B widened to float32 (the part the
 * product reads) and handed to their sgemm, which then computes exactly what it would on
 * the widened matrix.
 */
export function sgemmBf16BVia(sgemm: Kernels["sgemm"]): Kernels["sgemmBf16B"] {
  return (transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc) => {
    const rows = transB ? N : K, cols = transB ? K : N;
    const span = rows === 0 || cols === 0 ? 0 : (rows - 1) * ldb + cols;
    if (B.length < span) throw new RangeError(`B: needs ${span} elements, has ${B.length}`);
    sgemm(transA, transB, M, N, K, alpha, A, lda, bf16ToFloat32(B.subarray(0, span)), ldb, beta, C, ldc);
  };
}
