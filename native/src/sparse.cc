#include "sparse.h"

#include <algorithm>
#include <vector>

#include "cpu.h"
#include "threadpool.h"

namespace saekit {
namespace {

SAEKIT_BODY void decode_rows_body(long b0, long b1, const int32_t* row_ptr, const int32_t* idx,
                                  const float* val, const float* W, long d, const float* bias,
                                  float* out) {
  for (long b = b0; b < b1; b++) {
    float* o = out + b * d;
    if (bias)
      for (long c = 0; c < d; c++) o[c] = bias[c];
    else
      for (long c = 0; c < d; c++) o[c] = 0.0f;
    for (int32_t e = row_ptr[b]; e < row_ptr[b + 1]; e++) {
      const float* w = W + static_cast<long>(idx[e]) * d;
      const float v = val[e];
      for (long c = 0; c < d; c++) o[c] += v * w[c];
    }
  }
}
SAEKIT_MULTIVERSION(void, decode_rows,
                    (long b0, long b1, const int32_t* row_ptr, const int32_t* idx,
                     const float* val, const float* W, long d, const float* bias, float* out),
                    (b0, b1, row_ptr, idx, val, W, d, bias, out))

SAEKIT_BODY void row_dots_body(long b0, long b1, const int32_t* row_ptr, const int32_t* idx,
                               const float* G, const float* W, long d, float* out) {
  for (long b = b0; b < b1; b++) {
    const float* g = G + b * d;
    for (int32_t e = row_ptr[b]; e < row_ptr[b + 1]; e++) {
      const float* w = W + static_cast<long>(idx[e]) * d;
      float s = 0.0f;
#pragma omp simd reduction(+ : s)
      for (long c = 0; c < d; c++) s += g[c] * w[c];
      out[e] = s;
    }
  }
}
SAEKIT_MULTIVERSION(void, row_dots,
                    (long b0, long b1, const int32_t* row_ptr, const int32_t* idx,
                     const float* G, const float* W, long d, float* out),
                    (b0, b1, row_ptr, idx, G, W, d, out))

SAEKIT_BODY void scatter_rows_body(long r0, long r1, const int32_t* col_ptr,
                                   const int32_t* entries, const int32_t* entry_row,
                                   const float* coef, const float* X, long d, bool accumulate,
                                   float* out, float* coef_sum) {
  for (long r = r0; r < r1; r++) {
    float* o = out + r * d;
    if (!accumulate)
      for (long c = 0; c < d; c++) o[c] = 0.0f;
    float s = 0.0f;
    for (int32_t p = col_ptr[r]; p < col_ptr[r + 1]; p++) {
      const int32_t e = entries[p];
      const float a = coef[e];
      const float* x = X + static_cast<long>(entry_row[e]) * d;
      for (long c = 0; c < d; c++) o[c] += a * x[c];
      s += a;
    }
    if (coef_sum) coef_sum[r] = accumulate ? coef_sum[r] + s : s;
  }
}
SAEKIT_MULTIVERSION(void, scatter_rows,
                    (long r0, long r1, const int32_t* col_ptr, const int32_t* entries,
                     const int32_t* entry_row, const float* coef, const float* X, long d,
                     bool accumulate, float* out, float* coef_sum),
                    (r0, r1, col_ptr, entries, entry_row, coef, X, d, accumulate, out, coef_sum))

}  // namespace

void sparse_decode(long batch, const int32_t* row_ptr, const int32_t* idx, const float* val,
                   const float* W, long d, const float* bias, float* out) {
  parallel_range(batch, 16, [&](long b0, long b1) {
    decode_rows(b0, b1, row_ptr, idx, val, W, d, bias, out);
  });
}

void sparse_row_dots(long batch, const int32_t* row_ptr, const int32_t* idx, const float* G,
                     const float* W, long d, float* out) {
  parallel_range(batch, 16, [&](long b0, long b1) { row_dots(b0, b1, row_ptr, idx, G, W, d, out); });
}

void sparse_transpose(long batch, const int32_t* row_ptr, const int32_t* idx, long m,
                      int32_t* col_ptr, int32_t* entries, int32_t* entry_row) {
  // Counting sort by latent; entries stay ascending within a latent (stable).
  std::fill(col_ptr, col_ptr + m + 1, 0);
  const int32_t nnz = row_ptr[batch];
  for (int32_t e = 0; e < nnz; e++) col_ptr[idx[e] + 1]++;
  for (long r = 0; r < m; r++) col_ptr[r + 1] += col_ptr[r];
  std::vector<int32_t> next(col_ptr, col_ptr + m);
  for (long b = 0; b < batch; b++)
    for (int32_t e = row_ptr[b]; e < row_ptr[b + 1]; e++) {
      entry_row[e] = static_cast<int32_t>(b);
      entries[next[idx[e]]++] = e;
    }
}

void sparse_scatter_rows(long m, const int32_t* col_ptr, const int32_t* entries,
                         const int32_t* entry_row, const float* coef, const float* X, long d,
                         bool accumulate, float* out, float* coef_sum) {
  parallel_chunks(m, 256, [&](long r0, long r1) {
    scatter_rows(r0, r1, col_ptr, entries, entry_row, coef, X, d, accumulate, out, coef_sum);
  });
}

}  // namespace saekit
