// Branch-free float approximations of exp, log, erfc and tanh, accurate to about 1e-7
// relative (a few ulp), written with plain arithmetic so loops calling them vectorize.
// Cephes' expf/logf polynomials; erfc from Numerical Recipes' Chebyshev fit (fractional
// error < 1.2e-7 everywhere).
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace saekit {

inline float bits_as_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint32_t float_as_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// x rounded to the nearest integer, ties to even, for |x| < 2^22: the value nearbyint gives
// (up to the sign of a zero). Adding 1.5 * 2^23 leaves no fraction bits, so the sum is
// rounded there. Plain arithmetic, unlike nearbyint, which x86-64's baseline (SSE2) has no
// instruction for, and so would keep the portable build's loops from vectorizing.
inline float round_nearest(float x) {
  const float kRound = 12582912.0f;
  return (x + kRound) - kRound;
}

// e^x; 0 below -87.3, saturates at e^88 above 88.
inline float fast_exp(float x) {
  x = x < -87.3f ? -87.3f : (x > 88.0f ? 88.0f : x);
  float n = round_nearest(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f + n * 2.12194440e-4f;
  float rr = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  float y = p * rr + r + 1.0f;
  int32_t e = static_cast<int32_t>(n) + 127;
  e = e < 1 ? 1 : e;  // clamp keeps the exponent field valid; y < 1 handles the rest
  float scale = bits_as_float(static_cast<uint32_t>(e) << 23);
  return x <= -87.3f ? 0.0f : y * scale;
}

// ln x for finite x > 0 (normal floats).
inline float fast_log(float x) {
  uint32_t u = float_as_bits(x);
  float e = static_cast<float>(static_cast<int>((u >> 23) & 0xff) - 127);
  float m = bits_as_float((u & 0x7fffffu) | 0x3f800000u);  // [1, 2)
  bool big = m > 1.41421356f;
  m = big ? m * 0.5f : m;
  e = big ? e + 1.0f : e;
  float f = m - 1.0f, z = f * f;
  float y = 7.0376836292e-2f;
  y = y * f - 1.1514610310e-1f;
  y = y * f + 1.1676998740e-1f;
  y = y * f - 1.2420140846e-1f;
  y = y * f + 1.4249322787e-1f;
  y = y * f - 1.6668057665e-1f;
  y = y * f + 2.0000714765e-1f;
  y = y * f - 2.4999993993e-1f;
  y = y * f + 3.3333331174e-1f;
  y = y * f * z;
  y += -2.12194440e-4f * e;
  y += -0.5f * z;
  return f + y + 0.693359375f * e;
}

// erfc(x) = 1 - erf(x).
inline float fast_erfc(float x) {
  float z = std::fabs(x);
  float t = 1.0f / (1.0f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  float ans = t * fast_exp(-z * z + p);
  return x >= 0.0f ? ans : 2.0f - ans;
}

inline float fast_tanh(float x) {
  float e = fast_exp(-2.0f * std::fabs(x));
  float t = (1.0f - e) / (1.0f + e);
  return x < 0.0f ? -t : t;
}

}  // namespace saekit
