// Dense elementwise kernels and reductions the trainer needs, threaded and vectorized.
// Reductions accumulate in double per chunk so results do not depend on vector width more
// than float rounding of the inputs allows.
#pragma once

#include <cstdint>

namespace saekit {

// Adam (PyTorch's formulation), in place on n parameters:
//   m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g^2
//   p -= lr * (m / bias1) / (sqrt(v / bias2) + eps)      (bias_k = 1 - b_k^step)
// weight_decay > 0 adds decoupled decay (AdamW): p -= lr * weight_decay * p.
void adam_update(float* p, const float* g, float* m, float* v, long n, float lr, float b1,
                 float b2, float eps, float bias1, float bias2, float weight_decay);

// One Schedule-Free SignSGD step (Defazio et al. 2024, "The Road Less Scheduled", as the
// schedulefree package's wrapper around sparsify's SignSGD), in place on n parameters p,
// which hold the point y where the gradient g was taken; z is the base iterate, x the average:
//   z -= lr * weight_decay * y + lr * sign(g)        (sign(0) = 0)
//   x += c * (z - x)                                  (c: this step's averaging weight)
//   p  = x + (1 - momentum) * (z - x)                 (the next y)
void schedule_free_sign_update(float* p, const float* g, float* z, float* x, long n, float lr,
                               float weight_decay, float c, float momentum);

double sum_squares(const float* x, long n);
double dot(const float* a, const float* b, long n);

// x *= s
void scale(float* x, long n, float s);

// out = s * (a - b); returns sum of (a - b)^2 (in double). out may alias a or b.
double diff_scaled(const float* a, const float* b, float* out, long n, float s);

// out[r] = ||X[r]||_2 for X [rows, cols].
void row_norms(const float* X, long rows, long cols, float* out);

// G[r] += s[r] * W[r].
void add_scaled_rows(float* G, const float* W, long rows, long cols, const float* s);

// X[r] *= s[r].
void scale_rows(float* X, long rows, long cols, const float* s);

// G[r] -= (G[r].W[r] / ||W[r]||^2) W[r]: removes from each gradient row its component
// along the (unit-norm) decoder row, so a step does not change the row's norm to first order.
void remove_parallel_component(const float* W, float* G, long rows, long cols);

// out[c] = sum_r X[r, c] (accumulate adds into out).
void col_sums(const float* X, long rows, long cols, float* out, bool accumulate);

// out[b, j] = scale * act(x[b, j] + bias[j]), act = ReLU or identity (bias may be null).
void bias_act(const float* x, long batch, long m, const float* bias, bool relu, float scale,
              float* out);

// X[r] += bias for every row.
void add_row_vector(float* X, long rows, long cols, const float* bias);

// out[r, i] = X[r, pick[i]] for i < n (X [rows, cols], out [rows, n]): a block of chosen
// columns, such as the pre-activations of an SAE's dead latents that AuxK selects among.
void gather_columns(const float* X, long rows, long cols, const int32_t* pick, long n, float* out);

// out[e] = X[b, idx[e]] for every entry e of row b of a CSR code (row_ptr [rows + 1]):
// a dense matrix's values where a code selected, e.g. the pre-activations under a vSAE's
// noisy selection. Each read is a cache miss of its own; threads keep many in flight.
void gather_entries(const float* X, long rows, long cols, const int32_t* row_ptr, const int32_t* idx, float* out);

// The inverse of gather_entries: out [rows, cols] zeroed, then out[b, idx[e]] += val[e] for
// every entry e of row b: a code made dense, for the GEMMs that beat the sparse kernels
// once a code is dense enough (a ReLU or JumpReLU SAE early in training).
void scatter_entries(long rows, long cols, const int32_t* row_ptr, const int32_t* idx, const float* val, float* out);

}  // namespace saekit
