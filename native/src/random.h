// Counter-based Gaussian noise: normal number i of stream (seed, stream) depends only on
// (seed, stream, i), so large noise tensors fill in parallel with results independent of the
// thread count, and a training run can re-create any step's noise from two integers.
// The TypeScript twin is counterNormal in src/core/rng.ts.
#pragma once

#include <cstdint>

namespace saekit {

// out[i] = N(seed, stream, offset + i) for i in [0, n); offset must be even.
void fill_normal(float* out, long n, uint32_t seed, uint32_t stream, long offset);

// The vSAE sampling step over pre[batch, m] (flat index i = b*m + j):
//   mu = act(pre + bias[j]),  act = ReLU or identity
//   z  = mu + noise_scale * sigma_i * N(seed, stream, i),  sigma_i = exp(0.5*logvar[i]) or 1
// writes z (may alias pre) and returns sum of mu^2 (the KL of a unit-variance posterior is
// half of it).
double sample_latents(const float* pre, long batch, long m, const float* bias, bool relu,
                      const float* logvar, float noise_scale, uint32_t seed, uint32_t stream,
                      float* z);

}  // namespace saekit
