// Kernels on sparse latent codes, the heart of a fast TopK SAE: they touch only the
// selected latents, so decode and backward cost O(nnz * d) instead of O(batch * m * d).
//
// Codes are CSR: row b holds entries e in [row_ptr[b], row_ptr[b+1]) with latent idx[e] and
// value val[e]. A fixed-k TopK code is CSR with row_ptr[b] = b * k.
#pragma once

#include <cstdint>

namespace saekit {

// out[b] = bias + sum_e val[e] * W[idx[e]]   (W [m, d]; bias [d] or null). "embedding bag".
// In the order sparse_reconstruct takes (see there), and so to its x_hat's bits.
void sparse_decode(long batch, long m, const int32_t* row_ptr, const int32_t* idx, const float* val,
                   const float* W, long d, const float* bias, float* out);

// out[e] = dot(G[b(e)], W[idx[e]]) for every entry: the gradient w.r.t. the code values.
void sparse_row_dots(long batch, const int32_t* row_ptr, const int32_t* idx, const float* G,
                     const float* W, long d, float* out);

// The reconstruction step of an SAE (W [m, d]):
//   x_hat[b] = bias + sum_e val[e] W[idx[e]],   g[b] = scale * (x_hat[b] - x[b]),
//   dval[e] = g[b] . W[idx[e]];   returns sum_b ||x_hat[b] - x[b]||^2;
// and, when gW is not null, W's gradient gW[r] (+)= sum over r's entries of val[e] g[b(e)]
// (every row written, zero where no entry selects it, unless accumulate).
// When the W rows the code uses are too many to stay cached (over 8 MB), the products run
// latent by latent over the code's transpose, so each W row is read from memory about once
// per thread instead of once per token that selected it (a token's x_hat then sums its
// terms in ascending latent order); otherwise token by token, each token's rows fetched
// once for the decode and the dots. Either way the results do not depend on the threads.
double sparse_reconstruct(long batch, long m, const int32_t* row_ptr, const int32_t* idx,
                          const float* val, const float* W, long d, const float* bias,
                          const float* x, float scale, float* x_hat, float* g, float* dval,
                          float* gW, bool accumulate);

// Transposes a CSR code into per-latent lists: col_ptr[m + 1], and for each latent r the
// entries e (ascending) in entries[col_ptr[r] .. col_ptr[r+1]), with entry_row[e] = b(e).
void sparse_transpose(long batch, const int32_t* row_ptr, const int32_t* idx, long m,
                      int32_t* col_ptr, int32_t* entries, int32_t* entry_row);

// out[r] = sum over entries e of latent r of coef[e] * X[b(e)]   (X [batch, d], out [m, d]),
// and coef_sum[r] = sum of coef[e] (if not null). Every one of the m rows is written (zero
// when no entry selects it) unless accumulate, which adds into out and coef_sum.
// This is the weight gradient of both decoder and encoder rows; threads own latent ranges,
// so there are no write conflicts and the sum order is fixed.
void sparse_scatter_rows(long m, const int32_t* col_ptr, const int32_t* entries,
                         const int32_t* entry_row, const float* coef, const float* X, long d,
                         bool accumulate, float* out, float* coef_sum);

// A trainer's per-step bookkeeping on a code, in one pass: for every entry with val != 0,
// fired[idx] = 1 and (when counts is not null) counts[idx] += 1; returns how many such
// entries there are (the batch's L0 times its rows). Each thread counts its rows into its
// own array, so the pass reads the code once at any density. If any entry's latent lies
// outside [0, m), fired and counts are left untouched and the first such entry's position
// goes to *bad (else -1), for the caller's error.
long code_firings(long batch, long m, const int32_t* row_ptr, const int32_t* idx, const float* val,
                  uint8_t* fired, double* counts, long* bad);

}  // namespace saekit
