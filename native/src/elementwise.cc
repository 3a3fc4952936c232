#include "elementwise.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "cpu.h"
#include "threadpool.h"

namespace saekit {
namespace {

constexpr long kChunk = 1 << 14;  // elements per task for flat loops

SAEKIT_BODY void adam_body(float* p, const float* g, float* m, float* v, long n, float lr,
                           float b1, float b2, float eps, float bias1, float bias2, float wd) {
  const float step = lr / bias1, inv_sqrt_bias2 = 1.0f / std::sqrt(bias2);
  const float decay = 1.0f - lr * wd;
#pragma omp simd
  for (long i = 0; i < n; i++) {
    float gi = g[i];
    float mi = b1 * m[i] + (1.0f - b1) * gi;
    float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay - step * mi / (std::sqrt(vi) * inv_sqrt_bias2 + eps);
  }
}
SAEKIT_MULTIVERSION(void, adam,
                    (float* p, const float* g, float* m, float* v, long n, float lr, float b1,
                     float b2, float eps, float bias1, float bias2, float wd),
                    (p, g, m, v, n, lr, b1, b2, eps, bias1, bias2, wd))

SAEKIT_BODY void schedule_free_sign_body(float* p, const float* g, float* z, float* x, long n,
                                         float lr, float wd, float c, float momentum) {
  const float lr_wd = lr * wd, towards_z = 1.0f - momentum;
#pragma omp simd
  for (long i = 0; i < n; i++) {
    float gi = g[i];
    float sign = static_cast<float>(gi > 0.0f) - static_cast<float>(gi < 0.0f);
    float zi = z[i] - lr_wd * p[i] - lr * sign;
    float xi = x[i] + c * (zi - x[i]);
    z[i] = zi;
    x[i] = xi;
    p[i] = xi + towards_z * (zi - xi);
  }
}
SAEKIT_MULTIVERSION(void, schedule_free_sign,
                    (float* p, const float* g, float* z, float* x, long n, float lr, float wd,
                     float c, float momentum),
                    (p, g, z, x, n, lr, wd, c, momentum))

// Sums of float lanes are folded into double every 1024 elements, bounding float error.
SAEKIT_BODY double dot_chunk_body(const float* a, const float* b, long n) {
  double total = 0;
  for (long s0 = 0; s0 < n; s0 += 1024) {
    long e = s0 + 1024 < n ? s0 + 1024 : n;
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (long i = s0; i < e; i++) s += a[i] * b[i];
    total += s;
  }
  return total;
}
SAEKIT_MULTIVERSION(double, dot_chunk, (const float* a, const float* b, long n), (a, b, n))

double sum_squares_chunk(const float* x, long n) { return dot_chunk(x, x, n); }

SAEKIT_BODY double diff_scaled_chunk_body(const float* a, const float* b, float* out, long n, float s) {
  double total = 0;
  for (long s0 = 0; s0 < n; s0 += 1024) {
    long e = s0 + 1024 < n ? s0 + 1024 : n;
    float acc = 0;
#pragma omp simd reduction(+ : acc)
    for (long i = s0; i < e; i++) {
      float diff = a[i] - b[i];
      acc += diff * diff;
      out[i] = s * diff;
    }
    total += acc;
  }
  return total;
}
SAEKIT_MULTIVERSION(double, diff_scaled_chunk,
                    (const float* a, const float* b, float* out, long n, float s),
                    (a, b, out, n, s))

SAEKIT_BODY void scale_chunk_body(float* x, long n, float s) {
#pragma omp simd
  for (long i = 0; i < n; i++) x[i] *= s;
}
SAEKIT_MULTIVERSION(void, scale_chunk, (float* x, long n, float s), (x, n, s))

SAEKIT_BODY void add_scaled_rows_range_body(float* G, const float* W, long r0, long r1, long cols,
                                      const float* s) {
  for (long r = r0; r < r1; r++) {
    const float f = s[r];
    const float* w = W + r * cols;
    float* g = G + r * cols;
#pragma omp simd
    for (long c = 0; c < cols; c++) g[c] += f * w[c];
  }
}
SAEKIT_MULTIVERSION(void, add_scaled_rows_range,
                    (float* G, const float* W, long r0, long r1, long cols, const float* s),
                    (G, W, r0, r1, cols, s))

SAEKIT_BODY void remove_parallel_rows_body(const float* W, float* G, long r0, long r1, long cols) {
  for (long r = r0; r < r1; r++) {
    const float* w = W + r * cols;
    float* g = G + r * cols;
    float gw = 0, ww = 0;
#pragma omp simd reduction(+ : gw, ww)
    for (long c = 0; c < cols; c++) {
      gw += g[c] * w[c];
      ww += w[c] * w[c];
    }
    if (ww <= 0) continue;
    float f = gw / ww;
#pragma omp simd
    for (long c = 0; c < cols; c++) g[c] -= f * w[c];
  }
}
SAEKIT_MULTIVERSION(void, remove_parallel_rows,
                    (const float* W, float* G, long r0, long r1, long cols),
                    (W, G, r0, r1, cols))

SAEKIT_BODY void col_sums_rows_body(const float* X, long r0, long r1, long cols, float* out) {
  for (long r = r0; r < r1; r++) {
    const float* x = X + r * cols;
#pragma omp simd
    for (long c = 0; c < cols; c++) out[c] += x[c];
  }
}
SAEKIT_MULTIVERSION(void, col_sums_rows,
                    (const float* X, long r0, long r1, long cols, float* out),
                    (X, r0, r1, cols, out))

SAEKIT_BODY void add_row_vector_rows_body(float* X, long r0, long r1, long cols, const float* bias) {
  for (long r = r0; r < r1; r++) {
    float* x = X + r * cols;
#pragma omp simd
    for (long c = 0; c < cols; c++) x[c] += bias[c];
  }
}
SAEKIT_MULTIVERSION(void, add_row_vector_rows,
                    (float* X, long r0, long r1, long cols, const float* bias),
                    (X, r0, r1, cols, bias))

SAEKIT_BODY void bias_act_rows_body(const float* x, long b0, long b1, long m, const float* bias,
                                    bool relu, float scale, float* out) {
  for (long b = b0; b < b1; b++) {
    const float* xr = x + b * m;
    float* o = out + b * m;
#pragma omp simd
    for (long j = 0; j < m; j++) {
      float v = xr[j] + (bias ? bias[j] : 0.0f);
      o[j] = scale * (relu && v < 0.0f ? 0.0f : v);
    }
  }
}
SAEKIT_MULTIVERSION(void, bias_act_rows,
                    (const float* x, long b0, long b1, long m, const float* bias, bool relu,
                     float scale, float* out),
                    (x, b0, b1, m, bias, relu, scale, out))

// Runs a chunked double reduction with a fixed chunking (so the result does not depend on
// which thread ran which chunk) and sums the partials in chunk order.
template <typename F>
double reduce_chunks(long n, F chunk_fn) {
  long tasks = (n + kChunk - 1) / kChunk;
  std::vector<double> partial(tasks, 0.0);
  parallel_chunks(n, kChunk, [&](long b, long e) { partial[b / kChunk] = chunk_fn(b, e); });
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

}  // namespace

void adam_update(float* p, const float* g, float* m, float* v, long n, float lr, float b1,
                 float b2, float eps, float bias1, float bias2, float weight_decay) {
  parallel_chunks(n, kChunk * 4, [&](long b, long e) {
    adam(p + b, g + b, m + b, v + b, e - b, lr, b1, b2, eps, bias1, bias2, weight_decay);
  });
}

void schedule_free_sign_update(float* p, const float* g, float* z, float* x, long n, float lr,
                               float weight_decay, float c, float momentum) {
  parallel_chunks(n, kChunk * 4, [&](long b, long e) {
    schedule_free_sign(p + b, g + b, z + b, x + b, e - b, lr, weight_decay, c, momentum);
  });
}

double sum_squares(const float* x, long n) {
  return reduce_chunks(n, [&](long b, long e) { return sum_squares_chunk(x + b, e - b); });
}

double dot(const float* a, const float* b, long n) {
  return reduce_chunks(n, [&](long s, long e) { return dot_chunk(a + s, b + s, e - s); });
}

void scale(float* x, long n, float s) {
  parallel_chunks(n, kChunk * 4, [&](long b, long e) { scale_chunk(x + b, e - b, s); });
}

double diff_scaled(const float* a, const float* b, float* out, long n, float s) {
  return reduce_chunks(
      n, [&](long s0, long e) { return diff_scaled_chunk(a + s0, b + s0, out + s0, e - s0, s); });
}

void row_norms(const float* X, long rows, long cols, float* out) {
  parallel_chunks(rows, 256, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) out[r] = static_cast<float>(std::sqrt(sum_squares_chunk(X + r * cols, cols)));
  });
}

void scale_rows(float* X, long rows, long cols, const float* s) {
  parallel_chunks(rows, 256, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) scale_chunk(X + r * cols, cols, s[r]);
  });
}

void add_scaled_rows(float* G, const float* W, long rows, long cols, const float* s) {
  parallel_chunks(rows, 256, [&](long r0, long r1) { add_scaled_rows_range(G, W, r0, r1, cols, s); });
}

void remove_parallel_component(const float* W, float* G, long rows, long cols) {
  parallel_chunks(rows, 256, [&](long r0, long r1) { remove_parallel_rows(W, G, r0, r1, cols); });
}

void col_sums(const float* X, long rows, long cols, float* out, bool accumulate) {
  // Fixed row blocks, each summed into its own partial, then added in block order.
  const long block = 256;
  long tasks = (rows + block - 1) / block;
  std::vector<float> partial(static_cast<size_t>(tasks) * cols, 0.0f);
  parallel_chunks(rows, block, [&](long r0, long r1) {
    col_sums_rows(X, r0, r1, cols, partial.data() + (r0 / block) * cols);
  });
  for (long c = 0; c < cols; c++) {
    double s = accumulate ? out[c] : 0.0;
    for (long t = 0; t < tasks; t++) s += partial[t * cols + c];
    out[c] = static_cast<float>(s);
  }
}

void bias_act(const float* x, long batch, long m, const float* bias, bool relu, float scale,
              float* out) {
  long rows = std::max(1L, kChunk / std::max(1L, m));
  parallel_chunks(batch, rows, [&](long b0, long b1) { bias_act_rows(x, b0, b1, m, bias, relu, scale, out); });
}

void add_row_vector(float* X, long rows, long cols, const float* bias) {
  parallel_chunks(rows, 256, [&](long r0, long r1) { add_row_vector_rows(X, r0, r1, cols, bias); });
}

void gather_entries(const float* X, long rows, long cols, const int32_t* row_ptr, const int32_t* idx, float* out) {
  parallel_range(rows, 64, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++)
      for (int32_t e = row_ptr[r]; e < row_ptr[r + 1]; e++) out[e] = X[r * cols + idx[e]];
  });
}

void scatter_entries(long rows, long cols, const int32_t* row_ptr, const int32_t* idx, const float* val, float* out) {
  parallel_range(rows, 16, [&](long r0, long r1) {
    std::fill(out + r0 * cols, out + r1 * cols, 0.0f);
    for (long r = r0; r < r1; r++)
      for (int32_t e = row_ptr[r]; e < row_ptr[r + 1]; e++) out[r * cols + idx[e]] += val[e];
  });
}

void gather_columns(const float* X, long rows, long cols, const int32_t* pick, long n, float* out) {
  parallel_chunks(rows, 64, [&](long r0, long r1) {
    for (long r = r0; r < r1; r++) {
      const float* x = X + r * cols;
      float* o = out + r * n;
      for (long i = 0; i < n; i++) o[i] = x[pick[i]];
    }
  });
}

}  // namespace saekit
