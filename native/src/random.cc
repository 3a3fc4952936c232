#include "random.h"

#include <cmath>
#include <cstring>
#include <vector>

#include "cpu.h"
#include "fastmath.h"
#include "threadpool.h"

namespace saekit {
namespace {

inline uint32_t hash32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x21f0aaadu;
  x ^= x >> 15;
  x *= 0x735a2d97u;
  x ^= x >> 15;
  return x;
}

struct Keys {
  uint32_t k1, k2;
};

Keys counter_keys(uint32_t seed, uint32_t stream) {
  uint32_t k1 = hash32((seed * 0x9e3779b9u) ^ hash32(stream));
  return {k1, hash32(k1 ^ 0x85ebca6bu)};
}

inline uint32_t word(Keys k, uint32_t i) { return hash32(hash32(i + k.k1) ^ k.k2); }

// sin and cos of 2*pi*t for t in [0, 1): reduce to a quarter-turn index q and a remainder
// |phi| <= pi/4, evaluate Cephes' minimax polynomials there, rotate by q.
inline void sincos_turns(float t, float* s_out, float* c_out) {
  float q = round_nearest(t * 4.0f);               // 0..4
  float phi = (t - q * 0.25f) * 6.28318530717958647692f;
  float p2 = phi * phi;
  float s = phi + phi * p2 * (-1.6666654611e-1f + p2 * (8.3321608736e-3f + p2 * -1.9515295891e-4f));
  float c = 1.0f - 0.5f * p2 +
            p2 * p2 * (4.166664568298827e-2f + p2 * (-1.388731625493765e-3f + p2 * 2.443315711809948e-5f));
  int qi = static_cast<int>(q) & 3;
  float sin_v = qi == 0 ? s : qi == 1 ? c : qi == 2 ? -s : -c;
  float cos_v = qi == 0 ? c : qi == 1 ? -s : qi == 2 ? -c : s;
  *s_out = sin_v;
  *c_out = cos_v;
}

// Box-Muller on words 2p and 2p+1: u1 in (0, 1], u2 in [0, 1), 24 bits each.
inline void normal_pair(Keys k, uint32_t p, float* n0, float* n1) {
  float u1 = static_cast<float>((word(k, 2 * p) >> 8) + 1) * (1.0f / 16777216.0f);
  float u2 = static_cast<float>(word(k, 2 * p + 1) >> 8) * (1.0f / 16777216.0f);
  float r = std::sqrt(-2.0f * fast_log(u1));
  float s, c;
  sincos_turns(u2, &s, &c);
  *n0 = r * c;
  *n1 = r * s;
}

// Fills out[0, 2*np) with pairs p0 .. p0+np-1 (out[2q] = cos branch, out[2q+1] = sin).
SAEKIT_BODY void fill_pairs_body(float* out, long np, Keys k, uint32_t p0) {
  constexpr long kBlock = 256;
  float cos_part[kBlock], sin_part[kBlock];
  for (long b = 0; b < np; b += kBlock) {
    long n = np - b < kBlock ? np - b : kBlock;
#pragma omp simd
    for (long q = 0; q < n; q++) normal_pair(k, p0 + static_cast<uint32_t>(b + q), &cos_part[q], &sin_part[q]);
    for (long q = 0; q < n; q++) {
      out[2 * (b + q)] = cos_part[q];
      out[2 * (b + q) + 1] = sin_part[q];
    }
  }
}
SAEKIT_MULTIVERSION(void, fill_pairs, (float* out, long np, Keys k, uint32_t p0), (out, np, k, p0))

// Fills out[0, n) with normals offset .. offset+n-1 (offset even), in pair-sized pieces.
void fill_range(float* out, long n, Keys k, long offset) {
  long np = n / 2;
  fill_pairs(out, np, k, static_cast<uint32_t>(offset / 2));
  if (n % 2) {
    float a, b;
    normal_pair(k, static_cast<uint32_t>((offset + n - 1) / 2), &a, &b);
    out[n - 1] = a;
  }
}

SAEKIT_BODY double sample_rows_body(const float* pre, long b0, long b1, long m, const float* bias,
                                    bool relu, const float* logvar, float noise_scale,
                                    const float* noise, float* z) {
  double total = 0;
  for (long b = b0; b < b1; b++) {
    const float* x = pre + b * m;
    const float* lv = logvar ? logvar + b * m : nullptr;
    const float* eps = noise ? noise + (b - b0) * m : nullptr;
    float* out = z + b * m;
    float s = 0;
    // One loop per case, so the common ones (no learned variance) vectorize cleanly.
    if (!noise) {
#pragma omp simd reduction(+ : s)
      for (long j = 0; j < m; j++) {
        float mu = x[j] + (bias ? bias[j] : 0.0f);
        mu = relu && mu < 0.0f ? 0.0f : mu;
        s += mu * mu;
        out[j] = mu;
      }
    } else if (!lv) {
#pragma omp simd reduction(+ : s)
      for (long j = 0; j < m; j++) {
        float mu = x[j] + (bias ? bias[j] : 0.0f);
        mu = relu && mu < 0.0f ? 0.0f : mu;
        s += mu * mu;
        out[j] = mu + noise_scale * eps[j];
      }
    } else {
      for (long j = 0; j < m; j++) {
        float mu = x[j] + (bias ? bias[j] : 0.0f);
        mu = relu && mu < 0.0f ? 0.0f : mu;
        s += mu * mu;
        out[j] = mu + noise_scale * std::exp(0.5f * lv[j]) * eps[j];
      }
    }
    total += s;
  }
  return total;
}
SAEKIT_MULTIVERSION(double, sample_rows,
                    (const float* pre, long b0, long b1, long m, const float* bias, bool relu,
                     const float* logvar, float noise_scale, const float* noise, float* z),
                    (pre, b0, b1, m, bias, relu, logvar, noise_scale, noise, z))

}  // namespace

void fill_normal(float* out, long n, uint32_t seed, uint32_t stream, long offset) {
  Keys k = counter_keys(seed, stream);
  constexpr long kChunk = 1 << 14;  // even, so every chunk starts on a pair
  parallel_chunks(n, kChunk, [&](long b, long e) { fill_range(out + b, e - b, k, offset + b); });
}

double sample_latents(const float* pre, long batch, long m, const float* bias, bool relu,
                      const float* logvar, float noise_scale, uint32_t seed, uint32_t stream,
                      float* z) {
  Keys k = counter_keys(seed, stream);
  const bool noisy = noise_scale != 0.0f;
  // Row blocks sized so the block's noise stays in L2 between generating and using it.
  const long rows_per_task = std::max(1L, (1L << 15) / std::max(1L, m));
  long tasks = (batch + rows_per_task - 1) / rows_per_task;
  std::vector<double> partial(tasks, 0.0);
  parallel_chunks(batch, rows_per_task, [&](long b0, long b1) {
    thread_local std::vector<float> noise;
    if (noisy) {
      // Row b's noise is numbers b*m .. b*m+m-1 of the stream; b*m is even unless m is odd,
      // in which case the block is filled from the even number below and shifted.
      long first = b0 * m, start = first & ~1L, lead = first - start;
      noise.resize(static_cast<size_t>((b1 - b0) * m + lead));
      fill_range(noise.data(), static_cast<long>(noise.size()), k, start);
      partial[b0 / rows_per_task] =
          sample_rows(pre, b0, b1, m, bias, relu, logvar, noise_scale, noise.data() + lead, z);
    } else {
      partial[b0 / rows_per_task] =
          sample_rows(pre, b0, b1, m, bias, relu, logvar, noise_scale, nullptr, z);
    }
  });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace saekit
