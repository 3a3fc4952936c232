#include "gemm_kernels.h"

#include "cpu.h"

#if SAEKIT_X86
#include <immintrin.h>
#endif

namespace saekit {
namespace {

// ---------------------------------------------------------------- portable (any CPU)
// 4 x 16 with plain arrays: the compiler keeps acc in vector registers where it can.
constexpr int kGenericMR = 4, kGenericNR = 16;

void kernel_generic(long kc, const float* Ap, const float* Bp, float* C, long ldc, float beta) {
  float acc[kGenericMR][kGenericNR] = {};
  for (long k = 0; k < kc; k++) {
    const float* a = Ap + k * kGenericMR;
    const float* b = Bp + k * kGenericNR;
    for (int r = 0; r < kGenericMR; r++)
      for (int c = 0; c < kGenericNR; c++) acc[r][c] += a[r] * b[c];
  }
  for (int r = 0; r < kGenericMR; r++) {
    float* crow = C + r * ldc;
    if (beta == 0.0f)
      for (int c = 0; c < kGenericNR; c++) crow[c] = acc[r][c];
    else if (beta == 1.0f)
      for (int c = 0; c < kGenericNR; c++) crow[c] += acc[r][c];
    else
      for (int c = 0; c < kGenericNR; c++) crow[c] = beta * crow[c] + acc[r][c];
  }
}

#if SAEKIT_X86
// ---------------------------------------------------------------- AVX2 + FMA: 6 x 16
// 12 ymm accumulators + 2 for B + 1 broadcast of A = 15 of 16 registers.
constexpr int kAvx2MR = 6, kAvx2NR = 16;

SAEKIT_TARGET_AVX2
void kernel_avx2(long kc, const float* Ap, const float* Bp, float* C, long ldc, float beta) {
  __m256 c0[kAvx2MR], c1[kAvx2MR];
#pragma GCC unroll 8
  for (int r = 0; r < kAvx2MR; r++) c0[r] = c1[r] = _mm256_setzero_ps();
  for (long k = 0; k < kc; k++) {
    __m256 b0 = _mm256_load_ps(Bp), b1 = _mm256_load_ps(Bp + 8);
#pragma GCC unroll 8
    for (int r = 0; r < kAvx2MR; r++) {
      __m256 a = _mm256_broadcast_ss(Ap + r);
      c0[r] = _mm256_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm256_fmadd_ps(a, b1, c1[r]);
    }
    Ap += kAvx2MR;
    Bp += kAvx2NR;
  }
  __m256 vb = _mm256_set1_ps(beta);
#pragma GCC unroll 8
  for (int r = 0; r < kAvx2MR; r++) {
    float* crow = C + r * ldc;
    if (beta != 0.0f) {
      c0[r] = _mm256_fmadd_ps(vb, _mm256_loadu_ps(crow), c0[r]);
      c1[r] = _mm256_fmadd_ps(vb, _mm256_loadu_ps(crow + 8), c1[r]);
    }
    _mm256_storeu_ps(crow, c0[r]);
    _mm256_storeu_ps(crow + 8, c1[r]);
  }
}

// ---------------------------------------------------------------- AVX-512: MR x 32
// MR rows x 2 zmm: with MR = 14, 28 accumulators + 2 for B + 1 broadcast = 31 of 32 zmm
// registers; each k step loads 2 vectors of B and MR scalars of A for 2*MR FMAs.
constexpr int kAvx512MR = 14, kAvx512NR = 32;

SAEKIT_TARGET_AVX512
void kernel_avx512(long kc, const float* Ap, const float* Bp, float* C, long ldc, float beta) {
  __m512 c0[kAvx512MR], c1[kAvx512MR];
#pragma GCC unroll 16
  for (int r = 0; r < kAvx512MR; r++) {
    c0[r] = c1[r] = _mm512_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (long k = 0; k < kc; k++) {
    __m512 b0 = _mm512_load_ps(Bp), b1 = _mm512_load_ps(Bp + 16);
#pragma GCC unroll 16
    for (int r = 0; r < kAvx512MR; r++) {
      __m512 a = _mm512_set1_ps(Ap[r]);
      c0[r] = _mm512_fmadd_ps(a, b0, c0[r]);
      c1[r] = _mm512_fmadd_ps(a, b1, c1[r]);
    }
    Ap += kAvx512MR;
    Bp += kAvx512NR;
  }
  __m512 vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int r = 0; r < kAvx512MR; r++) {
    float* crow = C + r * ldc;
    if (beta != 0.0f) {
      c0[r] = _mm512_fmadd_ps(vb, _mm512_loadu_ps(crow), c0[r]);
      c1[r] = _mm512_fmadd_ps(vb, _mm512_loadu_ps(crow + 16), c1[r]);
    }
    _mm512_storeu_ps(crow, c0[r]);
    _mm512_storeu_ps(crow + 16, c1[r]);
  }
}
#endif

}  // namespace

MicroKernel micro_kernel_generic() {
  return {kGenericMR, kGenericNR, 256, 128, 4096, kernel_generic};
}

#if SAEKIT_X86
MicroKernel micro_kernel_avx2() { return {kAvx2MR, kAvx2NR, 256, 144, 4096, kernel_avx2}; }
MicroKernel micro_kernel_avx512() {
  // KC = 512 keeps a 14 x 512 A micro-panel (28 KiB) in L1; MC = 112 (8 micro-panels) keeps
  // the packed A block in L2; NC = 4096 columns of packed B (8 MiB) sit in L3. Tuned on a
  // Zen 4 core, where this reaches OpenBLAS's speed (bench/peer_gemm.py).
  return {kAvx512MR, kAvx512NR, 512, 112, 4096, kernel_avx512};
}
#else
MicroKernel micro_kernel_avx2() { return micro_kernel_generic(); }
MicroKernel micro_kernel_avx512() { return micro_kernel_generic(); }
#endif

}  // namespace saekit
