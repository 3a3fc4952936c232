// Top-k selection for TopK-family SAEs.
//
// Ordering (identical in the TypeScript twin): entries are ranked by key descending, ties by
// column index ascending; NaN keys rank below everything. The key is the value itself
// (modes Relu and Value) or its magnitude (mode Abs). Output values are the original
// values, clamped at zero in Relu mode (TopK after ReLU), signed in Abs and Value modes.
#pragma once

#include <cstdint>

namespace saekit {

enum class SelectMode { Relu = 0, Abs = 1, Value = 2 };

// Every kernel here ranks x[b, j] + bias[j] when a column bias is given (bias may be null):
// the SAE encoder bias is folded into selection instead of costing a pass over [batch, m],
// and a bias of -inf masks a column out (AuxK selects among dead latents that way).

// Per row of x[batch, m]: the top k entries (k <= m), written sorted best-first to
// vals[batch, k] and idx[batch, k].
void topk_rows(const float* x, long batch, long m, long k, SelectMode mode, const float* bias,
               float* vals, int32_t* idx);

// GroupMax (sparsify's "groupmax" activation): the m columns split into `groups` runs of
// m / groups (m divisible by groups); per row, each run's best entry, in run order, into
// vals[batch, groups] and idx[batch, groups]. Ranking and output values as topk_rows.
void group_max_rows(const float* x, long batch, long m, long groups, SelectMode mode, const float* bias,
                    float* vals, int32_t* idx);

// Batch-wide (BatchTopK): the top k_total entries of the whole matrix, flattened row-major,
// ties by flat index. Entries whose output value is 0 are dropped (they change nothing).
// Writes CSR: row_ptr[batch + 1], then idx/vals in row order, columns ascending; returns nnz
// (<= k_total, the capacity of idx and vals).
long batch_topk(const float* x, long batch, long m, long k_total, SelectMode mode,
                const float* bias, int32_t* row_ptr, int32_t* idx, float* vals);

// Every entry with x[b, j] + bias[j] > threshold[j] (threshold null: > 0), as CSR with the
// value x + bias: the support of a ReLU or JumpReLU code. Returns the number of entries;
// they are written only if it is <= capacity (else call again with room for that many).
long threshold_select(const float* x, long batch, long m, const float* bias,
                      const float* threshold, int32_t* row_ptr, int32_t* idx, float* vals,
                      long capacity);

}  // namespace saekit
