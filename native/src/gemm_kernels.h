// Micro-kernels for sgemm: C[MR,NR] (+)= Apanel[kc,MR]^T * Bpanel[kc,NR].
// Apanel holds, for each k, MR consecutive values of a column of op(A); Bpanel holds, for
// each k, NR consecutive values of a row of op(B). beta selects how C is written:
// 0 overwrite, 1 accumulate, otherwise C = beta*C + AB.
#pragma once

#include <cstdint>
#include <cstring>

namespace saekit {

// bfloat16 is the top half of a float32: widening is exact.
inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

using MicroKernelFn = void (*)(long kc, const float* Ap, const float* Bp, float* C, long ldc,
                               float beta);

// Transposing pack: dst[k*stride + r] = alpha * src[r*ld + k] for r < rows, and 0 for
// rows <= r < lanes (lanes <= 16), over k in [0, kc). This is how a row-major A (or a B
// stored as [n, k]) becomes micro-panels; done element by element it costs a tenth of a
// GEMM whose N is only a few hundred, so each ISA brings its own.
using PackTransposedFn = void (*)(const float* src, long ld, int rows, int lanes, long kc,
                                  float alpha, float* dst, long stride);
// The same from bfloat16 bits (weights kept at half the memory), widened exactly.
using PackTransposedBf16Fn = void (*)(const uint16_t* src, long ld, int rows, int lanes, long kc,
                                      float alpha, float* dst, long stride);

struct MicroKernel {
  int mr, nr;          // register tile
  long kc, mc, nc;     // cache blocking: KC (depth), MC (rows of A per L2 block), NC (cols of B)
  MicroKernelFn fn;
  PackTransposedFn pack_transposed;
  PackTransposedBf16Fn pack_transposed_bf16;
};

MicroKernel micro_kernel_generic();
MicroKernel micro_kernel_avx2();
MicroKernel micro_kernel_avx512();

}  // namespace saekit
