#include "gemm_kernels.h"

#include <algorithm>

#include "cpu.h"

#if SAEKIT_X86
#include <immintrin.h>
#endif
#if defined(__aarch64__)
#include <arm_neon.h>
#endif

namespace saekit {
namespace {

// ---------------------------------------------------------------- portable (any CPU)
// A source element as float32: itself, or bfloat16 bits widened.
inline float as_float(float x) { return x; }
inline float as_float(uint16_t h) { return bf16_to_f32(h); }

// One k at a time, all rows: the writes are contiguous and the rows' reads are `rows`
// sequential streams (row by row instead would write with a stride of `stride` floats).
template <typename T>
void pack_transposed_generic(const T* src, long ld, int rows, int lanes, long kc, float alpha,
                             float* dst, long stride) {
  const T* row[16];
  for (int r = 0; r < rows; r++) row[r] = src + r * ld;
  for (long k = 0; k < kc; k++) {
    float* out = dst + k * stride;
    int r = 0;
    for (; r < rows; r++) out[r] = alpha * as_float(row[r][k]);
    for (; r < lanes; r++) out[r] = 0.0f;
  }
}

#if defined(__aarch64__)
// ---------------------------------------------------------------- arm64 (NEON): 8 x 12
// NEON is part of every arm64 CPU (Apple M-series, Graviton, Ampere), so this is the portable
// kernel there. 24 accumulators of 4 floats + 3 for B + 2 for A = 29 of 32 q registers;
// each k step loads 8 values of A and 12 of B and does 24 FMAs, A's values taken by lane
// (fmla v.4s, v.4s, v.s[i]) so nothing is broadcast. The classic shape of arm64 sgemm.
constexpr int kGenericMR = 8, kGenericNR = 12;
constexpr long kGenericKC = 256, kGenericMC = 128, kGenericNC = 4096;

void kernel_generic(long kc, const float* Ap, const float* Bp, float* C, long ldc, float beta) {
  float32x4_t c[8][3];
#pragma GCC unroll 8
  for (int r = 0; r < 8; r++)
#pragma GCC unroll 3
    for (int v = 0; v < 3; v++) c[r][v] = vdupq_n_f32(0.0f);
  for (long k = 0; k < kc; k++) {
    const float32x4_t a0 = vld1q_f32(Ap), a1 = vld1q_f32(Ap + 4);
    const float32x4_t b[3] = {vld1q_f32(Bp), vld1q_f32(Bp + 4), vld1q_f32(Bp + 8)};
#pragma GCC unroll 3
    for (int v = 0; v < 3; v++) {
      c[0][v] = vfmaq_laneq_f32(c[0][v], b[v], a0, 0);
      c[1][v] = vfmaq_laneq_f32(c[1][v], b[v], a0, 1);
      c[2][v] = vfmaq_laneq_f32(c[2][v], b[v], a0, 2);
      c[3][v] = vfmaq_laneq_f32(c[3][v], b[v], a0, 3);
      c[4][v] = vfmaq_laneq_f32(c[4][v], b[v], a1, 0);
      c[5][v] = vfmaq_laneq_f32(c[5][v], b[v], a1, 1);
      c[6][v] = vfmaq_laneq_f32(c[6][v], b[v], a1, 2);
      c[7][v] = vfmaq_laneq_f32(c[7][v], b[v], a1, 3);
    }
    Ap += kGenericMR;
    Bp += kGenericNR;
  }
#pragma GCC unroll 8
  for (int r = 0; r < 8; r++) {
    float* crow = C + r * ldc;
#pragma GCC unroll 3
    for (int v = 0; v < 3; v++) {
      float32x4_t x = c[r][v];
      if (beta != 0.0f) x = vfmaq_n_f32(x, vld1q_f32(crow + 4 * v), beta);
      vst1q_f32(crow + 4 * v, x);
    }
  }
}
#else
// ---------------------------------------------------------------- any other CPU: 6 x 8
// GCC/Clang vector extensions: 4-float vectors the compiler maps to whatever SIMD the target
// has (SSE2 on any x86-64). 12 accumulators + 2 for B + 1 broadcast of A fit x86-64's 16
// registers. (Written as arrays of floats instead, GCC vectorised along k with shuffles and
// ran 5x slower.)
typedef float f32x4 __attribute__((vector_size(16)));
constexpr int kGenericMR = 6, kGenericNR = 8;
constexpr long kGenericKC = 256, kGenericMC = 120, kGenericNC = 4096;

inline f32x4 load4(const float* p) {
  f32x4 v;
  __builtin_memcpy(&v, p, sizeof v);
  return v;
}
inline void store4(float* p, f32x4 v) { __builtin_memcpy(p, &v, sizeof v); }

void kernel_generic(long kc, const float* Ap, const float* Bp, float* C, long ldc, float beta) {
  f32x4 c0[kGenericMR], c1[kGenericMR];
#pragma GCC unroll 8
  for (int r = 0; r < kGenericMR; r++) c0[r] = c1[r] = f32x4{0.0f, 0.0f, 0.0f, 0.0f};
  for (long k = 0; k < kc; k++) {
    const f32x4 b0 = load4(Bp), b1 = load4(Bp + 4);
#pragma GCC unroll 8
    for (int r = 0; r < kGenericMR; r++) {
      const float x = Ap[r];
      const f32x4 a = {x, x, x, x};
      c0[r] += a * b0;
      c1[r] += a * b1;
    }
    Ap += kGenericMR;
    Bp += kGenericNR;
  }
#pragma GCC unroll 8
  for (int r = 0; r < kGenericMR; r++) {
    float* crow = C + r * ldc;
    if (beta != 0.0f) {
      c0[r] += beta * load4(crow);
      c1[r] += beta * load4(crow + 4);
    }
    store4(crow, c0[r]);
    store4(crow + 4, c1[r]);
  }
}
#endif

#if SAEKIT_X86
// ---------------------------------------------------------------- AVX2 + FMA: 6 x 16
// 12 ymm accumulators + 2 for B + 1 broadcast of A = 15 of 16 registers.
// The tile of C is prefetched as the kernel starts, so that its misses (C is usually far
// bigger than the caches) are served while the k loop runs instead of stalling the stores
// at the end: on a Zen 3 core, 4096 x 512 x 16384 went from 75 to 84 GFLOP/s (OpenBLAS 91).
constexpr int kAvx2MR = 6, kAvx2NR = 16;

SAEKIT_TARGET_AVX2
void kernel_avx2(long kc, const float* Ap, const float* Bp, float* C, long ldc, float beta) {
  __m256 c0[kAvx2MR], c1[kAvx2MR];
#pragma GCC unroll 8
  for (int r = 0; r < kAvx2MR; r++) {
    c0[r] = c1[r] = _mm256_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 15), _MM_HINT_T0);
  }
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

// 8 consecutive source elements as float32 (bfloat16 widened by a 16-bit shift).
SAEKIT_TARGET_AVX2 inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
SAEKIT_TARGET_AVX2 inline __m256 load8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// 8 k at a time, in groups of 8 rows: load 8 consecutive k of each row (rows past `rows`
// are zero), transpose the 8 x 8 block in registers (unpack pairs, shuffle pairs of pairs,
// swap 128-bit halves), and store each k's lanes of the group with one masked store.
template <typename T>
SAEKIT_TARGET_AVX2 void pack_transposed_avx2(const T* src, long ld, int rows, int lanes, long kc,
                                             float alpha, float* dst, long stride) {
  const __m256 va = _mm256_set1_ps(alpha);
  const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  long k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int g = 0; g < lanes; g += 8) {
      const int group_lanes = std::min(8, lanes - g), group_rows = std::max(0, std::min(8, rows - g));
      const __m256i store = _mm256_cmpgt_epi32(_mm256_set1_epi32(group_lanes), lane_index);
      __m256 r[8];
#pragma GCC unroll 8
      for (int i = 0; i < 8; i++)
        r[i] = i < group_rows ? _mm256_mul_ps(va, load8(src + (g + i) * ld + k)) : _mm256_setzero_ps();
      const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
      const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
      const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
      const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
      const __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xee);
      const __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xee);
      const __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xee);
      const __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xee);
      const __m256 out[8] = {
          _mm256_permute2f128_ps(s0, s4, 0x20), _mm256_permute2f128_ps(s1, s5, 0x20),
          _mm256_permute2f128_ps(s2, s6, 0x20), _mm256_permute2f128_ps(s3, s7, 0x20),
          _mm256_permute2f128_ps(s0, s4, 0x31), _mm256_permute2f128_ps(s1, s5, 0x31),
          _mm256_permute2f128_ps(s2, s6, 0x31), _mm256_permute2f128_ps(s3, s7, 0x31)};
#pragma GCC unroll 8
      for (int j = 0; j < 8; j++) _mm256_maskstore_ps(dst + (k + j) * stride + g, store, out[j]);
    }
  }
  if (k < kc) pack_transposed_generic(src + k, ld, rows, lanes, kc - k, alpha, dst + k * stride, stride);
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

// 16 consecutive source elements as float32 (bfloat16 widened by a 16-bit shift).
SAEKIT_TARGET_AVX512 inline __m512 load16(const float* p) { return _mm512_loadu_ps(p); }
SAEKIT_TARGET_AVX512 inline __m512 load16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Transposes a 16 x 16 block of 32-bit values held one row per register, in registers:
// unpack pairs, then pairs of pairs, then 128-bit lanes twice.
SAEKIT_TARGET_AVX512 inline __attribute__((always_inline)) void transpose16x16(__m512 r[16]) {
  __m512 t[16];
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
}

// 16 k at a time: load 16 consecutive k of each row (rows past `rows` are zero), transpose
// the 16 x 16 block in registers, and store each k's `lanes` values with one masked store.
// The k that remain go through the generic loop; both compute alpha * x, so the results are
// identical.
// GCC 12 reports the intrinsics' own internal "undefined" operands (the masked forms'
// pass-through) as maybe-uninitialized here; nothing of ours is read uninitialized.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
template <typename T>
SAEKIT_TARGET_AVX512 void pack_transposed_avx512(const T* src, long ld, int rows, int lanes, long kc,
                                                 float alpha, float* dst, long stride) {
  const __m512 va = _mm512_set1_ps(alpha);
  const __mmask16 store = static_cast<__mmask16>((1u << lanes) - 1);
  long k = 0;
  for (; k + 16 <= kc; k += 16) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++)
      r[i] = i < rows ? _mm512_mul_ps(va, load16(src + i * ld + k)) : _mm512_setzero_ps();
    transpose16x16(r);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++) _mm512_mask_storeu_ps(dst + (k + j) * stride, store, r[j]);
  }
  if (k < kc) pack_transposed_generic(src + k, ld, rows, lanes, kc - k, alpha, dst + k * stride, stride);
}

#if SAEKIT_BF16_DOT
// ---------------------------------------------------------------- AVX-512 BF16: 14 x 32
// The float32 kernel's tile and registers, with each vdpbf16ps doing two k of 16 columns:
// 32 multiply-adds where an FMA does 16, at the same rate on Zen 4.
constexpr int kBf16MR = 14, kBf16NR = 32;

SAEKIT_TARGET_AVX512_BF16
void kernel_avx512_bf16(long pairs, const uint32_t* Ap, const uint32_t* Bp, float* C, long ldc,
                        float alpha, float beta) {
  __m512 c0[kBf16MR], c1[kBf16MR];
#pragma GCC unroll 16
  for (int r = 0; r < kBf16MR; r++) {
    c0[r] = c1[r] = _mm512_setzero_ps();
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C + r * ldc + 16), _MM_HINT_T0);
  }
#pragma GCC unroll 4
  for (long q = 0; q < pairs; q++) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(Bp), b1 = (__m512bh)_mm512_load_si512(Bp + 16);
#pragma GCC unroll 16
    for (int r = 0; r < kBf16MR; r++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32(static_cast<int>(Ap[r]));
      c0[r] = _mm512_dpbf16_ps(c0[r], a, b0);
      c1[r] = _mm512_dpbf16_ps(c1[r], a, b1);
    }
    Ap += kBf16MR;
    Bp += kBf16NR;
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int r = 0; r < kBf16MR; r++) {
    float* crow = C + r * ldc;
    if (alpha != 1.0f) c0[r] = _mm512_mul_ps(va, c0[r]), c1[r] = _mm512_mul_ps(va, c1[r]);
    if (beta != 0.0f) {
      c0[r] = _mm512_fmadd_ps(vb, _mm512_loadu_ps(crow), c0[r]);
      c1[r] = _mm512_fmadd_ps(vb, _mm512_loadu_ps(crow + 16), c1[r]);
    }
    _mm512_storeu_ps(crow, c0[r]);
    _mm512_storeu_ps(crow + 16, c1[r]);
  }
}

// Sources of pairs: float32 rounded to bfloat16, or bfloat16 bits (weights kept at half the
// memory) taken as they are.
template <typename T>
void pack_pairs_transposed_generic(const T* src, long ld, int rows, int lanes, long kc, uint32_t* dst, long stride) {
  for (long k = 0; k < kc; k += 2) {
    uint32_t* out = dst + (k / 2) * stride;
    int r = 0;
    for (; r < rows; r++) out[r] = bf16_pair(src[r * ld + k], k + 1 < kc ? src[r * ld + k + 1] : T(0));
    for (; r < lanes; r++) out[r] = 0;
  }
}

// 16 words of pairs from a row's 32 consecutive values: vcvtne2ps2bf16 rounds as
// bf16_round_bits does; bfloat16 values already sit in pairs, first in the low half.
SAEKIT_TARGET_AVX512_BF16 inline __m512 pairs16(const float* row) {
  return (__m512)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(row + 16), _mm512_loadu_ps(row));
}
SAEKIT_TARGET_AVX512_BF16 inline __m512 pairs16(const uint16_t* row) {
  return _mm512_castsi512_ps(_mm512_loadu_si512(row));
}

// 32 k at a time: each row's 32 consecutive k as 16 words of pairs, the 16 x 16 block of
// words transposed, each pair's `lanes` words stored with one masked store; the k that
// remain go through the generic loop.
template <typename T>
SAEKIT_TARGET_AVX512_BF16 void pack_pairs_transposed_avx512_bf16(const T* src, long ld, int rows, int lanes, long kc,
                                                                 uint32_t* dst, long stride) {
  const __mmask16 store = static_cast<__mmask16>((1u << lanes) - 1);
  long k = 0;
  for (; k + 32 <= kc; k += 32) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; i++) r[i] = i < rows ? pairs16(src + i * ld + k) : _mm512_setzero_ps();
    transpose16x16(r);
#pragma GCC unroll 16
    for (int j = 0; j < 16; j++)
      _mm512_mask_storeu_ps(reinterpret_cast<float*>(dst + (k / 2 + j) * stride), store, r[j]);
  }
  if (k < kc) pack_pairs_transposed_generic(src + k, ld, rows, lanes, kc - k, dst + (k / 2) * stride, stride);
}

template <typename T>
void pack_pairs_generic(const T* src, long ld, long cols, long lanes, long kc, uint32_t* dst, long stride) {
  for (long k = 0; k < kc; k += 2) {
    const T* first = src + k * ld;
    const T* second = k + 1 < kc ? first + ld : nullptr;
    uint32_t* out = dst + (k / 2) * stride;
    long c = 0;
    for (; c < cols; c++) out[c] = bf16_pair(first[c], second ? second[c] : T(0));
    for (; c < lanes; c++) out[c] = 0;
  }
}

// 16 values of each of two rows as 32 bfloat16, the first row's in the low half.
SAEKIT_TARGET_AVX512_BF16 inline __m512i halves16(const float* first, const float* second) {
  return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(second), _mm512_loadu_ps(first));
}
SAEKIT_TARGET_AVX512_BF16 inline __m512i halves16(const uint16_t* first, const uint16_t* second) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(first))),
                            _mm256_loadu_si256(reinterpret_cast<const __m256i*>(second)), 1);
}

// 16 columns at a time: both rows' values as bfloat16 halves, interleaved into pairs by one
// 16-bit permute.
template <typename T>
SAEKIT_TARGET_AVX512_BF16 void pack_pairs_avx512_bf16(const T* src, long ld, long cols, long lanes, long kc,
                                                      uint32_t* dst, long stride) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8,
                                              23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  long k = 0;
  for (; k + 2 <= kc; k += 2) {
    const T* first = src + k * ld;
    uint32_t* out = dst + (k / 2) * stride;
    long c = 0;
    for (; c + 16 <= cols; c += 16)
      _mm512_storeu_si512(out + c, _mm512_permutexvar_epi16(interleave, halves16(first + c, first + ld + c)));
    for (; c < cols; c++) out[c] = bf16_pair(first[c], first[ld + c]);
    for (; c < lanes; c++) out[c] = 0;
  }
  if (k < kc) pack_pairs_generic(src + k * ld, ld, cols, lanes, kc - k, dst + (k / 2) * stride, stride);
}
#endif  // SAEKIT_BF16_DOT
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace

MicroKernel micro_kernel_generic() {
  return {{kGenericMR, kGenericNR, kGenericKC, kGenericMC, kGenericNC}, kernel_generic,
          pack_transposed_generic<float>, pack_transposed_generic<uint16_t>};
}

#if SAEKIT_X86
MicroKernel micro_kernel_avx2() {
  // KC = 512 takes an SAE encoder's usual depth (d_in = 512) in one pass, so its C (4096 x
  // 16384 floats, far beyond the caches) is written once instead of written, read back and
  // written again: on a 2-core Zen 3, 4096 x 512 x 16384 on 2 threads went from ~148 to
  // ~163 GFLOP/s (mean of 10 alternated runs), other shapes and one thread unchanged.
  // MC = 72 keeps the packed A block at 144 KiB, in L2; NC = 4096 columns of B in L3.
  return {{kAvx2MR, kAvx2NR, 512, 72, 4096}, kernel_avx2, pack_transposed_avx2<float>,
          pack_transposed_avx2<uint16_t>};
}
MicroKernel micro_kernel_avx512() {
  // KC = 512 keeps a 14 x 512 A micro-panel (28 KiB) in L1; MC = 112 (8 micro-panels) keeps
  // the packed A block in L2; NC = 4096 columns of packed B (8 MiB) sit in L3. Tuned on a
  // Zen 4 core, where this reaches OpenBLAS's speed (bench/peer_gemm.py).
  return {{kAvx512MR, kAvx512NR, 512, 112, 4096}, kernel_avx512, pack_transposed_avx512<float>,
          pack_transposed_avx512<uint16_t>};
}
#if SAEKIT_BF16_DOT
bool dot_kernel_bf16(DotKernel* out) {
  if (!has_bf16_dot() || active_isa() != Isa::Avx512) return false;
  // The float32 kernel's blocking with twice the depth: a pair of k takes one word, as one k
  // does there, so the panels fill the same caches.
  *out = {{kBf16MR, kBf16NR, 1024, 112, 4096}, kernel_avx512_bf16,
          pack_pairs_transposed_avx512_bf16<float>, pack_pairs_avx512_bf16<float>,
          pack_pairs_transposed_avx512_bf16<uint16_t>, pack_pairs_avx512_bf16<uint16_t>};
  return true;
}
#else
bool dot_kernel_bf16(DotKernel*) { return false; }
#endif
#else
MicroKernel micro_kernel_avx2() { return micro_kernel_generic(); }
MicroKernel micro_kernel_avx512() { return micro_kernel_generic(); }
bool dot_kernel_bf16(DotKernel*) { return false; }
#endif

}  // namespace saekit
