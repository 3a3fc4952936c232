#include "sparse.h"

#include <algorithm>
#include <vector>

#include "cpu.h"
#include "threadpool.h"

namespace saekit {
namespace {

// W rows are gathered in random order, which hardware prefetchers cannot predict; asking
// for the row kPrefetch entries ahead keeps several row fetches in flight.
constexpr int32_t kPrefetch = 4;

// sparse_reconstruct goes token by token while the W rows a code uses take at most this
// many bytes (a quarter of a typical L3: they stay cached between the tokens that share
// them), latent by latent beyond. At 4096 tokens, k = 64, d = 512: 16384 latents (32 MB of
// rows) reconstruct in 20 ms latent by latent against 27 token by token; AuxK's 1M entries
// over 3000 dead latents (6 MB) the other way round.
constexpr double kTokenMajorBytes = 8e6;

inline void prefetch_row(const float* row, long d) {
  for (long c = 0; c < d; c += 16) __builtin_prefetch(row + c, 0, 3);
}

// o = bias + sum over the row's entries of val[e] * W[idx[e]], prefetching W rows ahead
// (up to entry `limit`, the end of the caller's range).
SAEKIT_BODY void decode_row(int32_t e0, int32_t e1, int32_t limit, const int32_t* idx, const float* val,
                            const float* W, long d, const float* bias, float* o) {
  if (bias)
    for (long c = 0; c < d; c++) o[c] = bias[c];
  else
    for (long c = 0; c < d; c++) o[c] = 0.0f;
  for (int32_t e = e0; e < e1; e++) {
    if (e + kPrefetch < limit) prefetch_row(W + static_cast<long>(idx[e + kPrefetch]) * d, d);
    const float* w = W + static_cast<long>(idx[e]) * d;
    const float v = val[e];
#pragma omp simd
    for (long c = 0; c < d; c++) o[c] += v * w[c];
  }
}

SAEKIT_BODY void decode_rows_body(long b0, long b1, const int32_t* row_ptr, const int32_t* idx,
                                  const float* val, const float* W, long d, const float* bias,
                                  float* out) {
  for (long b = b0; b < b1; b++) decode_row(row_ptr[b], row_ptr[b + 1], row_ptr[b1], idx, val, W, d, bias, out + b * d);
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
      if (e + kPrefetch < row_ptr[b1]) prefetch_row(W + static_cast<long>(idx[e + kPrefetch]) * d, d);
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

// g = scale * (o - x) for one token's row; returns ||o - x||^2.
SAEKIT_BODY float residual_row(const float* o, const float* x, long d, float scale, float* g) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (long c = 0; c < d; c++) {
    float diff = o[c] - x[c];
    s += diff * diff;
    g[c] = scale * diff;
  }
  return s;
}

// The reconstruction token by token (tokens [b0, b1)): each token's W rows are fetched
// once for the decode and re-read from cache for the dots. Each token's squared error into sq[b].
SAEKIT_BODY void reconstruct_rows_body(long b0, long b1, const int32_t* row_ptr,
                                       const int32_t* idx, const float* val, const float* W,
                                       long d, const float* bias, const float* x, float scale,
                                       float* x_hat, float* g, float* dval, double* sq) {
  for (long b = b0; b < b1; b++) {
    float* o = x_hat + b * d;
    decode_row(row_ptr[b], row_ptr[b + 1], row_ptr[b1], idx, val, W, d, bias, o);
    float* gb = g + b * d;
    sq[b] = residual_row(o, x + b * d, d, scale, gb);
    // The token's W rows were just read: the dots hit cache.
    for (int32_t e = row_ptr[b]; e < row_ptr[b + 1]; e++) {
      const float* w = W + static_cast<long>(idx[e]) * d;
      float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
      for (long c = 0; c < d; c++) dot += gb[c] * w[c];
      dval[e] = dot;
    }
  }
}
SAEKIT_MULTIVERSION(void, reconstruct_rows,
                    (long b0, long b1, const int32_t* row_ptr, const int32_t* idx, const float* val,
                     const float* W, long d, const float* bias, const float* x, float scale,
                     float* x_hat, float* g, float* dval, double* sq),
                    (b0, b1, row_ptr, idx, val, W, d, bias, x, scale, x_hat, g, dval, sq))

// Token by token, each token gathers its W rows; latent by latent, each latent gathers its
// tokens' rows. The first wins while the W rows in use stay in cache (AuxK's few dead
// latents, small dictionaries), the second once they do not (a 16384-latent TopK code).
// Decode and reconstruction decide alike, so that they give the same x_hat to the bit.
bool by_latent_order(long batch, const int32_t* row_ptr, const int32_t* idx, long m, long d) {
  const int32_t nnz = row_ptr[batch];
  std::vector<uint8_t> used(m, 0);
  long distinct = 0;
  for (int32_t e = 0; e < nnz; e++) distinct += used[idx[e]] ? 0 : (used[idx[e]] = 1);
  return double(distinct) * d * sizeof(float) > kTokenMajorBytes;
}

// A code in latent-major order, gathered once so the per-latent loops stream contiguous
// arrays: latent r's entries are p in [col_ptr[r], col_ptr[r+1]), ascending by token, with
// token row[p], value val[p] and CSR entry index entry[p].
struct LatentMajor {
  std::vector<int32_t> col_ptr, row, entry;
  std::vector<float> val;
};

// sparse_transpose's counting sort, filling row and val in the same pass: built on
// sparse_transpose, the second pass gathering them cost ~3 ms of a 4096 x 16384 step.
LatentMajor latent_major(long batch, const int32_t* row_ptr, const int32_t* idx, const float* val, long m) {
  LatentMajor t;
  const int32_t nnz = row_ptr[batch];
  t.col_ptr.assign(m + 1, 0);
  t.row.resize(nnz);
  t.entry.resize(nnz);
  t.val.resize(nnz);
  for (int32_t e = 0; e < nnz; e++) t.col_ptr[idx[e] + 1]++;
  for (long r = 0; r < m; r++) t.col_ptr[r + 1] += t.col_ptr[r];
  std::vector<int32_t> next(t.col_ptr.begin(), t.col_ptr.end() - 1);
  for (long b = 0; b < batch; b++)
    for (int32_t e = row_ptr[b]; e < row_ptr[b + 1]; e++) {
      const int32_t p = next[idx[e]]++;
      t.row[p] = static_cast<int32_t>(b);
      t.entry[p] = e;
      t.val[p] = val[e];
    }
  return t;
}

// Decode of tokens [b0, b1) latent by latent: each W row is read once per range and added
// into the rows of the range's tokens that selected it (a batch's x_hat rows stay in cache
// far better than W's rows would: 1.4x faster for a 4096 x 16384, k = 64 step). A token's
// terms are summed in ascending latent order whatever the split.
// Then, unless x is null, g = scale * (x_hat - x) and each token's squared error into sq[b].
SAEKIT_BODY void decode_latent_major_body(long b0, long b1, long m, const int32_t* col_ptr,
                                          const int32_t* row, const float* val, const float* W,
                                          long d, const float* bias, const float* x, float scale,
                                          float* x_hat, float* g, double* sq) {
  for (long b = b0; b < b1; b++) {
    float* o = x_hat + b * d;
    if (bias)
      for (long c = 0; c < d; c++) o[c] = bias[c];
    else
      for (long c = 0; c < d; c++) o[c] = 0.0f;
  }
  for (long r = 0; r < m; r++) {
    const int32_t* first = row + col_ptr[r];
    const int32_t* last = row + col_ptr[r + 1];
    const int32_t p0 = static_cast<int32_t>(std::lower_bound(first, last, static_cast<int32_t>(b0)) - row);
    const int32_t p1 = static_cast<int32_t>(std::lower_bound(row + p0, last, static_cast<int32_t>(b1)) - row);
    const float* w = W + r * d;
    for (int32_t p = p0; p < p1; p++) {
      if (p + kPrefetch < p1) prefetch_row(x_hat + static_cast<long>(row[p + kPrefetch]) * d, d);
      float* o = x_hat + static_cast<long>(row[p]) * d;
      const float v = val[p];
#pragma omp simd
      for (long c = 0; c < d; c++) o[c] += v * w[c];
    }
  }
  if (x)
    for (long b = b0; b < b1; b++) sq[b] = residual_row(x_hat + b * d, x + b * d, d, scale, g + b * d);
}
SAEKIT_MULTIVERSION(void, decode_latent_major,
                    (long b0, long b1, long m, const int32_t* col_ptr, const int32_t* row,
                     const float* val, const float* W, long d, const float* bias, const float* x,
                     float scale, float* x_hat, float* g, double* sq),
                    (b0, b1, m, col_ptr, row, val, W, d, bias, x, scale, x_hat, g, sq))

// For latents [r0, r1): dval[entry[p]] = G[row[p]] . W[r] (unless dval is null), and when gW
// is given the gradient of W's rows, gW[r] (+)= sum_p val[p] G[row[p]], from the same
// gathered G rows.
// W's row and gW's row stay in L1 while the tokens' gradient rows stream past.
SAEKIT_BODY void backward_latent_major_body(long r0, long r1, const int32_t* col_ptr, const int32_t* row,
                                            const int32_t* entry, const float* val, const float* G,
                                            const float* W, long d, float* dval, float* gW,
                                            bool accumulate) {
  const int32_t end = col_ptr[r1];
  for (long r = r0; r < r1; r++) {
    const float* w = W + r * d;
    float* o = gW ? gW + r * d : nullptr;
    if (o && !accumulate)
      for (long c = 0; c < d; c++) o[c] = 0.0f;
    for (int32_t p = col_ptr[r]; p < col_ptr[r + 1]; p++) {
      if (p + kPrefetch < end) prefetch_row(G + static_cast<long>(row[p + kPrefetch]) * d, d);
      const float* gb = G + static_cast<long>(row[p]) * d;
      const float v = val[p];
      if (!dval) {
#pragma omp simd
        for (long c = 0; c < d; c++) o[c] += v * gb[c];
        continue;
      }
      float s = 0.0f;
      if (o) {
#pragma omp simd reduction(+ : s)
        for (long c = 0; c < d; c++) {
          s += gb[c] * w[c];
          o[c] += v * gb[c];
        }
      } else {
#pragma omp simd reduction(+ : s)
        for (long c = 0; c < d; c++) s += gb[c] * w[c];
      }
      dval[entry[p]] = s;
    }
  }
}
SAEKIT_MULTIVERSION(void, backward_latent_major,
                    (long r0, long r1, const int32_t* col_ptr, const int32_t* row, const int32_t* entry,
                     const float* val, const float* G, const float* W, long d, float* dval, float* gW,
                     bool accumulate),
                    (r0, r1, col_ptr, row, entry, val, G, W, d, dval, gW, accumulate))

// out[r] (+)= sum_p coef[p] * X[off[p] : off[p] + d] over latent r's entries p in
// [col_ptr[r], col_ptr[r+1]), with coefficients and row offsets already gathered in
// latent-major order: contiguous streams instead of dependent lookups, and the X row of the
// entry kPrefetch ahead requested early. The output row stays in L1 while it accumulates.
SAEKIT_BODY void scatter_rows_body(long r0, long r1, const int32_t* col_ptr, const float* coef,
                                   const long* off, const float* X, long d, bool accumulate,
                                   float* out) {
  const int32_t end = col_ptr[r1];
  for (long r = r0; r < r1; r++) {
    float* o = out + r * d;
    if (!accumulate)
      for (long c = 0; c < d; c++) o[c] = 0.0f;
    for (int32_t p = col_ptr[r]; p < col_ptr[r + 1]; p++) {
      if (p + kPrefetch < end) prefetch_row(X + off[p + kPrefetch], d);
      const float a = coef[p];
      const float* x = X + off[p];
#pragma omp simd
      for (long c = 0; c < d; c++) o[c] += a * x[c];
    }
  }
}
SAEKIT_MULTIVERSION(void, scatter_rows,
                    (long r0, long r1, const int32_t* col_ptr, const float* coef, const long* off,
                     const float* X, long d, bool accumulate, float* out),
                    (r0, r1, col_ptr, coef, off, X, d, accumulate, out))

}  // namespace

void sparse_decode(long batch, long m, const int32_t* row_ptr, const int32_t* idx, const float* val,
                   const float* W, long d, const float* bias, float* out) {
  if (!by_latent_order(batch, row_ptr, idx, m, d)) {
    parallel_range(batch, 16, [&](long b0, long b1) { decode_rows(b0, b1, row_ptr, idx, val, W, d, bias, out); });
    return;
  }
  const LatentMajor t = latent_major(batch, row_ptr, idx, val, m);
  parallel_range(batch, 64, [&](long b0, long b1) {
    decode_latent_major(b0, b1, m, t.col_ptr.data(), t.row.data(), t.val.data(), W, d, bias, nullptr, 0.0f, out,
                        nullptr, nullptr);
  });
}

void sparse_row_dots(long batch, const int32_t* row_ptr, const int32_t* idx, const float* G,
                     const float* W, long d, float* out) {
  parallel_range(batch, 16, [&](long b0, long b1) { row_dots(b0, b1, row_ptr, idx, G, W, d, out); });
}

double sparse_reconstruct(long batch, long m, const int32_t* row_ptr, const int32_t* idx,
                          const float* val, const float* W, long d, const float* bias,
                          const float* x, float scale, float* x_hat, float* g, float* dval,
                          float* gW, bool accumulate) {
  const bool by_latent = by_latent_order(batch, row_ptr, idx, m, d);
  LatentMajor t;
  if (by_latent || gW) t = latent_major(batch, row_ptr, idx, val, m);
  std::vector<double> sq(batch);
  if (by_latent) {
    parallel_range(batch, 64, [&](long b0, long b1) {
      decode_latent_major(b0, b1, m, t.col_ptr.data(), t.row.data(), t.val.data(), W, d, bias, x, scale,
                          x_hat, g, sq.data());
    });
  } else {
    parallel_chunks(batch, 64, [&](long b0, long b1) {
      reconstruct_rows(b0, b1, row_ptr, idx, val, W, d, bias, x, scale, x_hat, g, dval, sq.data());
    });
  }
  if (by_latent || gW) {
    parallel_chunks(m, 256, [&](long r0, long r1) {
      backward_latent_major(r0, r1, t.col_ptr.data(), t.row.data(), t.entry.data(), t.val.data(), g, W, d,
                            by_latent ? dval : nullptr, gW, accumulate);
    });
  }
  // Summed in token order: the total does not depend on the thread count.
  double total = 0;
  for (double v : sq) total += v;
  return total;
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
  // Gather each entry's coefficient and row offset into latent-major order once, so the
  // per-latent loops stream contiguous arrays.
  const int32_t nnz = col_ptr[m];
  std::vector<float> tcoef(nnz);
  std::vector<long> toff(nnz);
  parallel_range(nnz, 1 << 14, [&](long p0, long p1) {
    for (long p = p0; p < p1; p++) {
      tcoef[p] = coef[entries[p]];
      toff[p] = static_cast<long>(entry_row[entries[p]]) * d;
    }
  });
  parallel_chunks(m, 256, [&](long r0, long r1) {
    scatter_rows(r0, r1, col_ptr, tcoef.data(), toff.data(), X, d, accumulate, out);
  });
  if (coef_sum) {
    for (long r = 0; r < m; r++) {
      float s = 0.0f;
      for (int32_t p = col_ptr[r]; p < col_ptr[r + 1]; p++) s += tcoef[p];
      coef_sum[r] = accumulate ? coef_sum[r] + s : s;
    }
  }
}

long code_firings(long batch, long m, const int32_t* row_ptr, const int32_t* idx, const float* val,
                  uint8_t* fired, double* counts, long* bad) {
  // Contiguous row ranges, one or two per thread, each with its own counts; summed in range
  // order afterwards (integers, so the order changes nothing).
  const long tasks = std::max(1L, std::min<long>(2L * pool_threads(), batch / 64));
  const long rows_per_task = (batch + tasks - 1) / tasks;
  std::vector<uint32_t> partial(static_cast<size_t>(tasks) * m, 0);
  std::vector<long> first_bad(tasks, -1);
  parallel_for(static_cast<int>(tasks), [&](int t) {
    uint32_t* c = partial.data() + static_cast<size_t>(t) * m;
    const long r0 = t * rows_per_task, r1 = std::min(batch, r0 + rows_per_task);
    if (r0 >= r1) return;
    for (int32_t e = row_ptr[r0]; e < row_ptr[r1]; e++) {
      const int32_t j = idx[e];
      if (static_cast<uint32_t>(j) >= static_cast<uint32_t>(m)) {
        if (first_bad[t] < 0) first_bad[t] = e;
        continue;
      }
      c[j] += val[e] != 0.0f;
    }
  });
  *bad = -1;
  for (long t = 0; t < tasks; t++)
    if (first_bad[t] >= 0) {
      *bad = first_bad[t];
      return 0;  // fired and counts left as they were
    }
  long total = 0;
  for (long j = 0; j < m; j++) {
    uint64_t n = 0;
    for (long t = 0; t < tasks; t++) n += partial[static_cast<size_t>(t) * m + j];
    if (n > 0) fired[j] = 1;
    if (counts) counts[j] += static_cast<double>(n);
    total += static_cast<long>(n);
  }
  return total;
}

}  // namespace saekit
