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

// float32 bits rounded to bfloat16 (the result's low 16 bits are zero) as the AVX-512 BF16
// conversions round: to nearest, ties to even; a denormal becomes a zero of its sign; a NaN
// stays a quiet NaN. The bfloat16-precision GEMM rounds its inputs this way on every CPU.
inline uint32_t bf16_round_bits(uint32_t u) {
  const bool denormal = (u & 0x7f800000u) == 0;
  const bool nan = (u & 0x7fffffffu) > 0x7f800000u;
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  return denormal ? u & 0x80000000u : nan ? (u | 0x00400000u) & 0xffff0000u : rounded;
}

inline float bf16_round(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  u = bf16_round_bits(u);
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Two consecutive k of one row or column as the BF16 dot-product instructions read them:
// the first in the low half of a 32-bit word, the second in the high half.
inline uint32_t bf16_pair(float first, float second) {
  uint32_t a, b;
  std::memcpy(&a, &first, sizeof a);
  std::memcpy(&b, &second, sizeof b);
  return (bf16_round_bits(a) >> 16) | bf16_round_bits(b);
}
// The same of two bfloat16 values (a matrix stored as bfloat16 bits): nothing to round.
inline uint32_t bf16_pair(uint16_t first, uint16_t second) {
  return static_cast<uint32_t>(first) | (static_cast<uint32_t>(second) << 16);
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

struct Blocking {
  int mr, nr;          // register tile
  long kc, mc, nc;     // cache blocking: KC (depth), MC (rows of A per L2 block), NC (cols of B)
};

struct MicroKernel : Blocking {
  MicroKernelFn fn;
  PackTransposedFn pack_transposed;
  PackTransposedBf16Fn pack_transposed_bf16;
};

MicroKernel micro_kernel_generic();
MicroKernel micro_kernel_avx2();
MicroKernel micro_kernel_avx512();

// The bfloat16 dot-product micro-kernel (AVX-512 BF16: Zen 4, Cooper Lake, Sapphire Rapids
// and later), twice the multiply-adds per instruction of float32 FMA. Its packed operands
// hold pairs of consecutive k as bf16_pair words: Apanel, for each pair, MR words; Bpanel,
// for each pair, NR words. C[MR,NR] = alpha * Apanel^T Bpanel (+ beta * C as above), each
// product of two bfloat16 values exact in float32 and summed in float32.
using DotKernelFn = void (*)(long pairs, const uint32_t* Ap, const uint32_t* Bp, float* C, long ldc,
                             float alpha, float beta);
// dst[p*stride + r] = bf16_pair(src[r*ld + 2p], src[r*ld + 2p + 1]) for r < rows (a missing
// last k is 0), and 0 for rows <= r < lanes (lanes <= 16), over the ceil(kc / 2) pairs.
using PackPairsFn = void (*)(const float* src, long ld, int rows, int lanes, long kc, uint32_t* dst,
                             long stride);

// dst[p*stride + c] = bf16_pair(src[2p*ld + c], src[(2p+1)*ld + c]) for c < cols (a missing
// last row is 0), and 0 for cols <= c < lanes, over the ceil(kc / 2) pairs of rows.
using PackPairsAcrossFn = void (*)(const float* src, long ld, long cols, long lanes, long kc, uint32_t* dst,
                                   long stride);
// The two from bfloat16 bits (a B stored as bfloat16), taken as they are.
using PackPairsBf16Fn = void (*)(const uint16_t* src, long ld, int rows, int lanes, long kc, uint32_t* dst,
                                 long stride);
using PackPairsAcrossBf16Fn = void (*)(const uint16_t* src, long ld, long cols, long lanes, long kc, uint32_t* dst,
                                       long stride);

struct DotKernel : Blocking {  // kc counts k, two per packed word
  DotKernelFn fn;
  PackPairsFn pack_pairs_transposed;  // from rows contiguous in k
  PackPairsAcrossFn pack_pairs;       // from rows that each hold one k
  PackPairsBf16Fn pack_pairs_transposed_bf16;
  PackPairsAcrossBf16Fn pack_pairs_bf16;
};

// Whether this CPU runs the dot-product kernel (and the active ISA is AVX-512); if so, it.
bool dot_kernel_bf16(DotKernel* out);

}  // namespace saekit
