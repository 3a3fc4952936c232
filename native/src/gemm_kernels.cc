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

// One k at a time, all rows: the writes are contiguous and the rows' reads are `rows`
// sequential streams (row by row instead would write with a stride of `stride` floats).
void pack_transposed_generic(const float* src, long ld, int rows, int lanes, long kc, float alpha,
                             float* dst, long stride) {
  const float* row[16];
  for (int r = 0; r < rows; r++) row[r] = src + r * ld;
  for (long k = 0; k < kc; k++) {
    float* out = dst + k * stride;
    int r = 0;
    for (; r < rows; r++) out[r] = alpha * row[r][k];
    for (; r < lanes; r++) out[r] = 0.0f;
  }
}

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

// 16 k at a time: load 16 consecutive k of each row (rows past `rows` are zero), transpose
// the 16 x 16 block in registers (unpack pairs of floats, then pairs of pairs, then 128-bit
// lanes twice), and store each k's `lanes` values with one masked store. The k that remain
// go through the generic loop; both compute alpha * x, so the results are identical.
SAEKIT_TARGET_AVX512
void pack_transposed_avx512(const float* src, long ld, int rows, int lanes, long kc, float alpha,
                            float* dst, long stride) {
  const __m512 va = _mm512_set1_ps(alpha);
  const __mmask16 store = static_cast<__mmask16>((1u << lanes) - 1);
  long k = 0;
  for (; k + 16 <= kc; k += 16) {
    __m512 r[16], t[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
      r[i] = i < rows ? _mm512_mul_ps(va, _mm512_loadu_ps(src + i * ld + k)) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int i = 0; i < 16; i += 2) {
      t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
      t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
#pragma GCC unroll 4
    for (int i = 0; i < 16; i += 4) {
      const __m512d t0 = _mm512_castps_pd(t[i]), t1 = _mm512_castps_pd(t[i + 1]);
      const __m512d t2 = _mm512_castps_pd(t[i + 2]), t3 = _mm512_castps_pd(t[i + 3]);
      r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
      r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
      r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
      r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
#pragma GCC unroll 4
    for (int i = 0; i < 4; i++) {
      t[i] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0x88);
      t[i + 4] = _mm512_shuffle_f32x4(r[i], r[i + 4], 0xdd);
      t[i + 8] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0x88);
      t[i + 12] = _mm512_shuffle_f32x4(r[i + 8], r[i + 12], 0xdd);
    }
#pragma GCC unroll 8
    for (int i = 0; i < 8; i++) {
      r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
      r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
    }
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps(dst + (k + j) * stride, store, r[j]);
  }
  if (k < kc) pack_transposed_generic(src + k, ld, rows, lanes, kc - k, alpha, dst + k * stride, stride);
}
#endif

}  // namespace

MicroKernel micro_kernel_generic() {
  return {kGenericMR, kGenericNR, 256, 128, 4096, kernel_generic, pack_transposed_generic};
}

#if SAEKIT_X86
MicroKernel micro_kernel_avx2() {
  return {kAvx2MR, kAvx2NR, 256, 144, 4096, kernel_avx2, pack_transposed_generic};
}
MicroKernel micro_kernel_avx512() {
  // KC = 512 keeps a 14 x 512 A micro-panel (28 KiB) in L1; MC = 112 (8 micro-panels) keeps
  // the packed A block in L2; NC = 4096 columns of packed B (8 MiB) sit in L3. Tuned on a
  // Zen 4 core, where this reaches OpenBLAS's speed (bench/peer_gemm.py).
  return {kAvx512MR, kAvx512NR, 512, 112, 4096, kernel_avx512, pack_transposed_avx512};
}
#else
MicroKernel micro_kernel_avx2() { return micro_kernel_generic(); }
MicroKernel micro_kernel_avx512() { return micro_kernel_generic(); }
#endif

}  // namespace saekit
