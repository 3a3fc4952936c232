#include "topk.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <vector>

#include "cpu.h"
#include "threadpool.h"

#if SAEKIT_X86
#include <immintrin.h>
#endif

namespace saekit {
namespace {

struct Cand {
  float key;
  int32_t idx;
};

// Ranking: key descending, then index ascending. A function object (not a function
// pointer) so std::sort and std::nth_element inline the comparison.
struct Better {
  bool operator()(const Cand& a, const Cand& b) const {
    return a.key > b.key || (a.key == b.key && a.idx < b.idx);
  }
};
constexpr Better better{};

inline float key_of(float v, SelectMode mode) {
  if (v != v) return -std::numeric_limits<float>::infinity();  // NaN ranks last
  return mode == SelectMode::Abs ? std::fabs(v) : v;
}

inline float out_value(float v, SelectMode mode) {
  return mode == SelectMode::Relu ? (v > 0.0f ? v : 0.0f) : v;
}

// Candidate buffer for one row. Holds at most `cap` entries; when full it keeps only the
// best k and raises the admission threshold to the k-th key. Later columns have larger
// indices, so an entry equal to the threshold can never beat the k-th: admission is `>`.
class RowSelector {
 public:
  RowSelector(long k, long cap) : k_(k), cap_(cap) { buf_.resize(cap); }

  void reset() { n_ = 0; }
  float threshold() const { return thr_; }

  void seed(const float* x, const float* bias, long count, SelectMode mode) {
    for (long j = 0; j < count; j++)
      buf_[n_++] = {key_of(x[j] + (bias ? bias[j] : 0.0f), mode), static_cast<int32_t>(j)};
    thr_ = buf_[0].key;
    for (long i = 0; i < n_; i++) thr_ = std::min(thr_, buf_[i].key);
  }

  inline void offer(float key, int32_t j) {
    if (!(key > thr_)) return;
    buf_[n_++] = {key, j};
    if (n_ == cap_) compact();
  }

  void compact() {
    std::nth_element(buf_.begin(), buf_.begin() + (k_ - 1), buf_.begin() + n_, better);
    thr_ = buf_[k_ - 1].key;
    n_ = k_;
  }

  void finish(const float* x, const float* bias, SelectMode mode, float* vals, int32_t* idx) {
    if (n_ > k_) std::nth_element(buf_.begin(), buf_.begin() + (k_ - 1), buf_.begin() + n_, better);
    std::sort(buf_.begin(), buf_.begin() + k_, better);
    for (long i = 0; i < k_; i++) {
      int32_t j = buf_[i].idx;
      idx[i] = j;
      vals[i] = out_value(x[j] + (bias ? bias[j] : 0.0f), mode);
    }
  }

 private:
  long k_, cap_, n_ = 0;
  float thr_ = 0;
  std::vector<Cand> buf_;
};

// Scans x[start, m) offering every entry whose key beats the selector's threshold. The
// vector versions test 16 (8) keys against the threshold at once and only look at lanes
// that pass, which after the first few hundred columns is almost none.
void scan_generic(const float* x, const float* bias, long start, long m, SelectMode mode,
                  RowSelector& sel) {
  for (long j = start; j < m; j++)
    sel.offer(key_of(x[j] + (bias ? bias[j] : 0.0f), mode), static_cast<int32_t>(j));
}

#if SAEKIT_X86
SAEKIT_TARGET_AVX512
void scan_avx512(const float* x, const float* bias, long start, long m, SelectMode mode,
                 RowSelector& sel) {
  long j = start;
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const bool use_abs = mode == SelectMode::Abs;
  for (; j + 16 <= m; j += 16) {
    __m512 v = _mm512_loadu_ps(x + j);
    if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + j));
    if (use_abs) v = _mm512_and_ps(v, abs_mask);
    __mmask16 pass = _mm512_cmp_ps_mask(v, _mm512_set1_ps(sel.threshold()), _CMP_GT_OQ);
    while (pass) {
      int lane = __builtin_ctz(pass);
      pass &= pass - 1;
      sel.offer(key_of(x[j + lane] + (bias ? bias[j + lane] : 0.0f), mode), static_cast<int32_t>(j + lane));
    }
  }
  scan_generic(x, bias, j, m, mode, sel);
}

SAEKIT_TARGET_AVX2
void scan_avx2(const float* x, const float* bias, long start, long m, SelectMode mode,
               RowSelector& sel) {
  long j = start;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const bool use_abs = mode == SelectMode::Abs;
  for (; j + 8 <= m; j += 8) {
    __m256 v = _mm256_loadu_ps(x + j);
    if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
    if (use_abs) v = _mm256_and_ps(v, abs_mask);
    unsigned pass = _mm256_movemask_ps(_mm256_cmp_ps(v, _mm256_set1_ps(sel.threshold()), _CMP_GT_OQ));
    while (pass) {
      int lane = __builtin_ctz(pass);
      pass &= pass - 1;
      sel.offer(key_of(x[j + lane] + (bias ? bias[j + lane] : 0.0f), mode), static_cast<int32_t>(j + lane));
    }
  }
  scan_generic(x, bias, j, m, mode, sel);
}
#endif

// k = 1, the choice of each matching pursuit step: where the best key of x[0, m) first
// occurs. The vector versions find the maximum in one pass (a NaN lane leaves it as it
// was, since NaN ranks last) and its first lane in a second; a row whose best key is -inf
// (all -inf or NaN, which tie) goes to the scalar scan, where the lower index wins a tie.
long argmax_generic(const float* x, const float* bias, long m, SelectMode mode) {
  float best = key_of(x[0] + (bias ? bias[0] : 0.0f), mode);
  long at = 0;
  for (long j = 1; j < m; j++) {
    const float key = key_of(x[j] + (bias ? bias[j] : 0.0f), mode);
    if (key > best) {
      best = key;
      at = j;
    }
  }
  return at;
}

// The first j >= start whose key equals best (found by the caller's vector pass).
long first_key_at(const float* x, const float* bias, long start, long m, SelectMode mode, float best) {
  for (long j = start; j < m; j++)
    if (key_of(x[j] + (bias ? bias[j] : 0.0f), mode) == best) return j;
  return -1;
}

#if SAEKIT_X86
// Sixteen (eight) keys from column j: x + bias, its magnitude in Abs mode.
SAEKIT_TARGET_AVX512
inline __m512 keys16(const float* x, const float* bias, long j, bool use_abs) {
  __m512 v = _mm512_loadu_ps(x + j);
  if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + j));
  return use_abs ? _mm512_and_ps(v, _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff))) : v;
}

SAEKIT_TARGET_AVX2
inline __m256 keys8(const float* x, const float* bias, long j, bool use_abs) {
  __m256 v = _mm256_loadu_ps(x + j);
  if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
  return use_abs ? _mm256_and_ps(v, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))) : v;
}

SAEKIT_TARGET_AVX512
long argmax_avx512(const float* x, const float* bias, long m, SelectMode mode) {
  const bool use_abs = mode == SelectMode::Abs;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  __m512 acc = _mm512_set1_ps(neg_inf);
  long j = 0;
  for (; j + 16 <= m; j += 16) {
    const __m512 v = keys16(x, bias, j, use_abs);
    acc = _mm512_mask_mov_ps(acc, _mm512_cmp_ps_mask(v, acc, _CMP_GT_OQ), v);  // a NaN key keeps acc
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, acc);
  float best = neg_inf;
  for (float v : lanes) best = std::max(best, v);
  for (long t = j; t < m; t++) best = std::max(best, key_of(x[t] + (bias ? bias[t] : 0.0f), mode));
  if (!(best > neg_inf)) return argmax_generic(x, bias, m, mode);
  const __m512 target = _mm512_set1_ps(best);
  for (j = 0; j + 16 <= m; j += 16) {
    const __mmask16 eq = _mm512_cmp_ps_mask(keys16(x, bias, j, use_abs), target, _CMP_EQ_OQ);
    if (eq) return j + __builtin_ctz(eq);
  }
  return first_key_at(x, bias, j, m, mode, best);
}

SAEKIT_TARGET_AVX2
long argmax_avx2(const float* x, const float* bias, long m, SelectMode mode) {
  const bool use_abs = mode == SelectMode::Abs;
  const float neg_inf = -std::numeric_limits<float>::infinity();
  __m256 acc = _mm256_set1_ps(neg_inf);
  long j = 0;
  for (; j + 8 <= m; j += 8) acc = _mm256_max_ps(keys8(x, bias, j, use_abs), acc);  // a NaN key keeps acc
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, acc);
  float best = neg_inf;
  for (float v : lanes) best = std::max(best, v);
  for (long t = j; t < m; t++) best = std::max(best, key_of(x[t] + (bias ? bias[t] : 0.0f), mode));
  if (!(best > neg_inf)) return argmax_generic(x, bias, m, mode);
  const __m256 target = _mm256_set1_ps(best);
  for (j = 0; j + 8 <= m; j += 8) {
    const unsigned eq = _mm256_movemask_ps(_mm256_cmp_ps(keys8(x, bias, j, use_abs), target, _CMP_EQ_OQ));
    if (eq) return j + __builtin_ctz(eq);
  }
  return first_key_at(x, bias, j, m, mode, best);
}
#endif

long argmax(const float* x, const float* bias, long m, SelectMode mode) {
#if SAEKIT_X86
  switch (active_isa()) {
    case Isa::Avx512: return argmax_avx512(x, bias, m, mode);
    case Isa::Avx2: return argmax_avx2(x, bias, m, mode);
    default: break;
  }
#endif
  return argmax_generic(x, bias, m, mode);
}

void scan(const float* x, const float* bias, long start, long m, SelectMode mode, RowSelector& sel) {
#if SAEKIT_X86
  switch (active_isa()) {
    case Isa::Avx512: return scan_avx512(x, bias, start, m, mode, sel);
    case Isa::Avx2: return scan_avx2(x, bias, start, m, mode, sel);
    default: break;
  }
#endif
  scan_generic(x, bias, start, m, mode, sel);
}


// ---------------------------------------------------------------- sampled-threshold path
// Most rows are long (m >> k): estimate a threshold t from a strided sample so that about
// 4k keys exceed it, collect every key > t in one vectorized pass, and rank only those.
// Anything with key > t outranks everything with key <= t, so if at least k keys pass, the
// top k lies among them exactly; otherwise (or if far too many pass) the caller falls back
// to the adaptive selector, which is always exact.
// Order-preserving map from a key to uint32 (larger key -> larger code); NaN -> 0.
inline uint32_t radix_code(float v, SelectMode mode) {
  if (v != v) return 0;
  // -0 and +0 compare equal, so they must share a code (then the lower column wins).
  if (v == 0.0f) v = 0.0f;
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if (mode == SelectMode::Abs) return u & 0x7fffffffu;
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

// The key a Value-mode radix code stands for (its inverse; NaN never reaches it).
inline float key_of_code(uint32_t code) {
  const uint32_t u = (code & 0x80000000u) ? (code & 0x7fffffffu) : ~code;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

// A candidate's rank packed in one integer, larger = better: the key's order-preserving
// code above the inverted column, so ties in key go to the lower column. Integer
// comparisons make selection and sorting of candidates branch-light.
inline uint64_t packed_rank(float key, int32_t j) {
  return (static_cast<uint64_t>(radix_code(key, SelectMode::Value)) << 32) | (0xffffffffu - static_cast<uint32_t>(j));
}

struct Candidates {
  std::vector<float> key;
  std::vector<int32_t> idx;
  std::vector<uint64_t> ranks;
  long cap = 0;
  void reserve(long c) {
    cap = c;
    key.resize(c + 16);  // vector stores may write a full register past the count
    idx.resize(c + 16);
    ranks.resize(c);
  }
};

// Two threshold estimates from a sample: the r-th and 2r-th largest keys among the first
// s columns, with s chosen so that about 2k (resp. 4k) of the m keys should exceed them
// and r = 8 (enough samples above for a stable estimate, few enough to keep by insertion).
// The first is tried first (fewer candidates to rank); it yields fewer than k about 5% of
// the time, and then the second does (all but ~0.1%). Latent order carries no meaning, so a
// contiguous prefix samples as well as a strided one, and it streams from memory instead
// of costing a cache miss per sample (and is then reused by the collect pass from L1).
constexpr long kSampleRank = 8;

void sampled_thresholds(const float* x, const float* bias, long m, long k, SelectMode mode,
                        std::vector<float>& top, float* tight, float* loose) {
  const long s = std::min(m, std::max(2 * kSampleRank, std::min(8192L, (2 * kSampleRank * m) / (4 * k))));
  const long r = std::max(1L, std::min(kSampleRank, s / 2));
  // Keep the 2r largest sample keys in top[0..2r), descending, by insertion.
  const long keep = 2 * r;
  top.assign(keep, -std::numeric_limits<float>::infinity());
  for (long j = 0; j < s; j++) {
    float key = key_of(x[j] + (bias ? bias[j] : 0.0f), mode);
    if (!(key > top[keep - 1])) continue;
    long p = keep - 1;
    while (p > 0 && top[p - 1] < key) {
      top[p] = top[p - 1];
      p--;
    }
    top[p] = key;
  }
  *tight = top[r - 1];
  *loose = top[keep - 1];
}

// Collects keys > t (with their column) into c; returns the count, or cap + 1 on overflow.
long collect_generic(const float* x, const float* bias, long start, long m, SelectMode mode,
                     float t, Candidates& c, long n) {
  for (long j = start; j < m; j++) {
    float key = key_of(x[j] + (bias ? bias[j] : 0.0f), mode);
    if (key > t) {
      if (n == c.cap) return c.cap + 1;
      c.key[n] = key;
      c.idx[n++] = static_cast<int32_t>(j);
    }
  }
  return n;
}

#if SAEKIT_X86
// Register-form compress then a full store: memory-destination compress is microcoded and
// slow on some CPUs (Zen 4).
SAEKIT_TARGET_AVX512
long collect_avx512(const float* x, const float* bias, long m, SelectMode mode, float t,
                    Candidates& c) {
  const __m512 abs_mask = _mm512_castsi512_ps(_mm512_set1_epi32(0x7fffffff));
  const __m512 vt = _mm512_set1_ps(t);
  const __m512i lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const bool use_abs = mode == SelectMode::Abs;
  long n = 0, j = 0;
  for (; j + 16 <= m; j += 16) {
    __m512 v = _mm512_loadu_ps(x + j);
    if (bias) v = _mm512_add_ps(v, _mm512_loadu_ps(bias + j));
    if (use_abs) v = _mm512_and_ps(v, abs_mask);
    __mmask16 pass = _mm512_cmp_ps_mask(v, vt, _CMP_GT_OQ);
    if (!pass) continue;
    if (n + 16 > c.cap) return c.cap + 1;
    _mm512_storeu_ps(c.key.data() + n, _mm512_maskz_compress_ps(pass, v));
    __m512i cols = _mm512_add_epi32(lanes, _mm512_set1_epi32(static_cast<int>(j)));
    _mm512_storeu_si512(c.idx.data() + n, _mm512_maskz_compress_epi32(pass, cols));
    n += __builtin_popcount(pass);
  }
  return collect_generic(x, bias, j, m, mode, t, c, n);
}

SAEKIT_TARGET_AVX2
long collect_avx2(const float* x, const float* bias, long m, SelectMode mode, float t,
                  Candidates& c) {
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 vt = _mm256_set1_ps(t);
  const bool use_abs = mode == SelectMode::Abs;
  long n = 0, j = 0;
  for (; j + 8 <= m; j += 8) {
    __m256 v = _mm256_loadu_ps(x + j);
    if (bias) v = _mm256_add_ps(v, _mm256_loadu_ps(bias + j));
    if (use_abs) v = _mm256_and_ps(v, abs_mask);
    unsigned pass = _mm256_movemask_ps(_mm256_cmp_ps(v, vt, _CMP_GT_OQ));
    if (!pass) continue;
    if (n + 8 > c.cap) return c.cap + 1;
    alignas(32) float keys[8];
    _mm256_store_ps(keys, v);
    while (pass) {
      int lane = __builtin_ctz(pass);
      pass &= pass - 1;
      c.key[n] = keys[lane];
      c.idx[n++] = static_cast<int32_t>(j + lane);
    }
  }
  return collect_generic(x, bias, j, m, mode, t, c, n);
}
#endif

long collect(const float* x, const float* bias, long m, SelectMode mode, float t, Candidates& c) {
#if SAEKIT_X86
  switch (active_isa()) {
    case Isa::Avx512: return collect_avx512(x, bias, m, mode, t, c);
    case Isa::Avx2: return collect_avx2(x, bias, m, mode, t, c);
    default: break;
  }
#endif
  return collect_generic(x, bias, 0, m, mode, t, c, 0);
}

// The top k of one row by a threshold: first `hint` (the one that worked for the previous
// row, as rows of one batch are alike; NaN for none), else the row's own sampled estimates.
// On success `hint` becomes the threshold that worked; false if the caller must fall back.
bool topk_row_sampled(const float* x, const float* bias, long m, long k, SelectMode mode,
                      std::vector<float>& sample, Candidates& c, float* vals, int32_t* idx, float& hint) {
  long n = -1;
  if (hint == hint) {
    n = collect(x, bias, m, mode, hint, c);
    if (n < k || n > c.cap) n = -1;
  }
  if (n < 0) {
    float tight, loose;
    sampled_thresholds(x, bias, m, k, mode, sample, &tight, &loose);
    hint = tight;
    n = collect(x, bias, m, mode, tight, c);
    if (n < k) {
      hint = loose;
      n = collect(x, bias, m, mode, loose, c);
    }
    if (n < k || n > c.cap) {
      hint = std::numeric_limits<float>::quiet_NaN();
      return false;
    }
  }
  for (long i = 0; i < n; i++) c.ranks[i] = packed_rank(c.key[i], c.idx[i]);
  if (n > 4 * k) {
    // Far more candidates than needed: keep the best 2k (the top k lie among them) and make
    // the 2k-th key the next row's threshold, so the hint follows the rows as they drift.
    std::nth_element(c.ranks.begin(), c.ranks.begin() + (2 * k - 1), c.ranks.begin() + n, std::greater<uint64_t>());
    hint = key_of_code(static_cast<uint32_t>(c.ranks[2 * k - 1] >> 32));
    n = 2 * k;
  }
  std::nth_element(c.ranks.begin(), c.ranks.begin() + (k - 1), c.ranks.begin() + n, std::greater<uint64_t>());
  std::sort(c.ranks.begin(), c.ranks.begin() + k, std::greater<uint64_t>());
  for (long i = 0; i < k; i++) {
    int32_t j = static_cast<int32_t>(0xffffffffu - static_cast<uint32_t>(c.ranks[i]));
    idx[i] = j;
    vals[i] = out_value(x[j] + (bias ? bias[j] : 0.0f), mode);
  }
  return true;
}

}  // namespace

void topk_rows(const float* x, long batch, long m, long k, SelectMode mode, const float* bias,
               float* vals, int32_t* idx) {
  if (k <= 0 || batch <= 0) return;
  k = std::min(k, m);
  if (k == 1) {
    parallel_range(batch, 16, [&](long b0, long b1) {
      for (long b = b0; b < b1; b++) {
        const float* row = x + b * m;
        const long at = argmax(row, bias, m, mode);
        idx[b] = static_cast<int32_t>(at);
        vals[b] = out_value(row[at] + (bias ? bias[at] : 0.0f), mode);
      }
    });
    return;
  }
  // A buffer of 2k (at least k + 64) amortises each O(k) compaction over k admissions.
  long cap = std::max(2 * k, k + 64);
  // The sampled path pays off unless k is more than half the row: at 4096 x 3000, k = 256
  // (AuxK among 3000 dead latents) it takes 25 ms where the adaptive selector takes 68, and
  // at k = m / 4 half the time; below 2k columns it would pass nearly everything.
  const bool sampled = m >= 512 && m >= 2 * k;
  parallel_range(batch, 8, [&](long b0, long b1) {
    RowSelector sel(k, cap);
    std::vector<float> sample;
    Candidates cands;
    if (sampled) cands.reserve(std::min(m, 32 * k + 1024));
    float hint = std::numeric_limits<float>::quiet_NaN();
    for (long b = b0; b < b1; b++) {
      const float* row = x + b * m;
      if (sampled && topk_row_sampled(row, bias, m, k, mode, sample, cands, vals + b * k, idx + b * k, hint))
        continue;
      sel.reset();
      sel.seed(row, bias, k, mode);
      scan(row, bias, k, m, mode, sel);
      sel.finish(row, bias, mode, vals + b * k, idx + b * k);
    }
  });
}

namespace {

// Batch-wide selection by a sampled threshold, the batch analogue of topk_row_sampled: a
// threshold t estimated from a few whole rows so that ~1.3 k_total keys exceed it, one
// vectorized pass collecting every key > t with its flat index, and an exact ranking of
// those only. Every key > t outranks every key <= t (float order and the radix order agree
// wherever floats compare unequal, and NaN ranks last), so when at least k_total keys
// pass, the selection among them is exact. Returns -1 when the caller must use the
// histogram path: too few or too many keys passed, or the selection is too dense to pay.
long batch_topk_sampled(const float* x, long batch, long m, long k_total, SelectMode mode,
                        const float* bias, int32_t* row_ptr, int32_t* idx, float* vals) {
  const long total = batch * m;
  if (k_total <= 0 || total < (1L << 16) || k_total * 8 > total) return -1;
  // Sample whole rows spread over the batch: every column is seen, and rows stream.
  const long sample_rows = std::min(batch, std::max(4L, (1L << 16) / m + 1));
  std::vector<float> sample;
  sample.reserve(sample_rows * m);
  for (long s = 0; s < sample_rows; s++) {
    const float* row = x + (s * batch / sample_rows) * m;
    for (long j = 0; j < m; j++) sample.push_back(key_of(row[j] + (bias ? bias[j] : 0.0f), mode));
  }
  const long n_sample = static_cast<long>(sample.size());
  const int threads = pool_threads();
  const long rows_per = (batch + threads - 1) / threads;
  const long cap_per_thread = (4 * k_total) / threads + 4096;
  struct Found {
    float key;
    long flat;
  };
  std::vector<std::vector<Found>> found(threads);
  double expected = static_cast<double>(k_total) / static_cast<double>(total) * n_sample;
  for (double slack = 1.3; slack < 5; slack *= 2) {
    const long r = static_cast<long>(expected * slack) + 16;
    if (r >= n_sample) return -1;
    std::nth_element(sample.begin(), sample.begin() + (r - 1), sample.end(), std::greater<float>());
    const float t = sample[r - 1];
    std::atomic<bool> overflow{false};
    parallel_for(threads, [&](int th) {
      std::vector<Found>& f = found[th];
      f.clear();
      Candidates row_cands;
      row_cands.reserve(m);  // a whole row fits: collect never reports overflow
      const long r0 = std::min(batch, th * rows_per), r1 = std::min(batch, r0 + rows_per);
      for (long b = r0; b < r1 && !overflow.load(std::memory_order_relaxed); b++) {
        const long n = collect(x + b * m, bias, m, mode, t, row_cands);
        if (n > m || static_cast<long>(f.size()) + n > cap_per_thread) {
          overflow.store(true, std::memory_order_relaxed);  // every thread stops early
          break;
        }
        for (long i = 0; i < n; i++) f.push_back({row_cands.key[i], b * m + row_cands.idx[i]});
      }
    });
    if (overflow) return -1;
    long count = 0;
    for (auto& f : found) count += static_cast<long>(f.size());
    if (count < k_total) continue;  // the sample overestimated t: loosen it

    // Rank the candidates exactly: (radix code desc, flat index asc).
    std::vector<std::pair<uint32_t, long>> ranked;
    ranked.reserve(count);
    for (auto& f : found)
      for (const Found& c : f) ranked.push_back({radix_code(c.key, SelectMode::Value), c.flat});
    auto order = [](const std::pair<uint32_t, long>& a, const std::pair<uint32_t, long>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    std::nth_element(ranked.begin(), ranked.begin() + (k_total - 1), ranked.end(), order);
    const std::pair<uint32_t, long> cut = ranked[k_total - 1];

    // Emit per row, in column order (each thread's candidates are in row-major order),
    // the candidates at or above the cut whose output value is non-zero.
    std::fill(row_ptr, row_ptr + batch + 1, 0);
    long e = 0;
    for (auto& f : found)
      for (const Found& c : f) {
        const std::pair<uint32_t, long> rank{radix_code(c.key, SelectMode::Value), c.flat};
        if (order(cut, rank)) continue;  // below the cut
        const long b = c.flat / m, j = c.flat % m;
        const float out = out_value(x[c.flat] + (bias ? bias[j] : 0.0f), mode);
        if (out == 0.0f) continue;
        idx[e] = static_cast<int32_t>(j);
        vals[e++] = out;
        row_ptr[b + 1]++;
      }
    for (long b = 0; b < batch; b++) row_ptr[b + 1] += row_ptr[b];
    return e;
  }
  return -1;
}

}  // namespace

long batch_topk(const float* x, long batch, long m, long k_total, SelectMode mode,
                const float* bias, int32_t* row_ptr, int32_t* idx, float* vals) {
  k_total = std::max(0L, std::min(k_total, batch * m));
  const long fast = batch_topk_sampled(x, batch, m, k_total, mode, bias, row_ptr, idx, vals);
  if (fast >= 0) return fast;
  // The histogram path: exact for any input, three full passes.
  auto value = [&](long b, long j) { return x[b * m + j] + (bias ? bias[j] : 0.0f); };
  // Threads own contiguous row ranges in every pass below.
  const int threads = pool_threads();
  const long rows_per = (batch + threads - 1) / threads;
  auto rows_of = [&](int t, long* r0, long* r1) {
    *r0 = std::min(batch, t * rows_per);
    *r1 = std::min(batch, *r0 + rows_per);
  };

  // 1. Histogram of the top 16 bits of every code, per thread, then merged.
  constexpr int kBins = 1 << 16;
  std::vector<std::vector<uint32_t>> hists(threads);
  parallel_for(threads, [&](int t) {
    std::vector<uint32_t>& h = hists[t];
    h.assign(kBins, 0);
    long r0, r1;
    rows_of(t, &r0, &r1);
    for (long b = r0; b < r1; b++)
      for (long j = 0; j < m; j++) h[radix_code(value(b, j), mode) >> 16]++;
  });

  // 2. The bin holding the k_total-th best code; everything in higher bins is selected.
  //    Then rank that bin's entries exactly: the last one needed is the cut (code, flat index).
  uint32_t cut_code = 0xffffffffu;
  long cut_index = -1;
  if (k_total > 0) {
    long above = 0;
    int bin = kBins - 1;
    for (; bin > 0; bin--) {
      long count = 0;
      for (int t = 0; t < threads; t++) count += hists[t][bin];
      if (above + count >= k_total) break;
      above += count;
    }
    std::vector<std::vector<std::pair<uint32_t, long>>> found(threads);
    parallel_for(threads, [&](int t) {
      long r0, r1;
      rows_of(t, &r0, &r1);
      for (long b = r0; b < r1; b++)
        for (long j = 0; j < m; j++) {
          uint32_t c = radix_code(value(b, j), mode);
          if (static_cast<int>(c >> 16) == bin) found[t].push_back({c, b * m + j});
        }
    });
    std::vector<std::pair<uint32_t, long>> cands;
    for (auto& f : found) cands.insert(cands.end(), f.begin(), f.end());
    long need = k_total - above;
    auto order = [](const std::pair<uint32_t, long>& a, const std::pair<uint32_t, long>& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    };
    std::nth_element(cands.begin(), cands.begin() + (need - 1), cands.end(), order);
    cut_code = cands[need - 1].first;
    cut_index = cands[need - 1].second;
  }

  // 3. Emit, per row, every entry at or above the cut whose output value is non-zero.
  std::vector<std::vector<int32_t>> part_idx(threads);
  std::vector<std::vector<float>> part_val(threads);
  parallel_for(threads, [&](int t) {
    long r0, r1;
    rows_of(t, &r0, &r1);
    for (long b = r0; b < r1; b++) {
      int32_t count = 0;
      for (long j = 0; j < m; j++) {
        float v = value(b, j);
        uint32_t c = radix_code(v, mode);
        if (c > cut_code || (c == cut_code && b * m + j <= cut_index)) {
          float out = out_value(v, mode);
          if (out != 0.0f) {
            part_idx[t].push_back(static_cast<int32_t>(j));
            part_val[t].push_back(out);
            count++;
          }
        }
      }
      row_ptr[b + 1] = count;  // turned into offsets below
    }
  });
  row_ptr[0] = 0;
  for (long b = 0; b < batch; b++) row_ptr[b + 1] += row_ptr[b];
  long offset = 0;
  for (int t = 0; t < threads; t++) {
    std::copy(part_idx[t].begin(), part_idx[t].end(), idx + offset);
    std::copy(part_val[t].begin(), part_val[t].end(), vals + offset);
    offset += static_cast<long>(part_idx[t].size());
  }
  return offset;
}

long threshold_select(const float* x, long batch, long m, const float* bias,
                      const float* threshold, int32_t* row_ptr, int32_t* idx, float* vals,
                      long capacity) {
  auto passes = [&](long b, long j, float* value) {
    float v = x[b * m + j] + (bias ? bias[j] : 0.0f);
    *value = v;
    return v > (threshold ? threshold[j] : 0.0f);
  };
  // Pass 1: count per row; pass 2 (only if it fits): write at the prefix-sum offsets.
  parallel_range(batch, 16, [&](long b0, long b1) {
    for (long b = b0; b < b1; b++) {
      int32_t count = 0;
      float v;
      for (long j = 0; j < m; j++) count += passes(b, j, &v);
      row_ptr[b + 1] = count;
    }
  });
  row_ptr[0] = 0;
  long total = 0;
  for (long b = 0; b < batch; b++) {
    total += row_ptr[b + 1];
    if (total > 2147483647L) return total;  // cannot be indexed by int32
    row_ptr[b + 1] = static_cast<int32_t>(total);
  }
  if (total > capacity) return total;
  // Branch-free: every column is written at the next free slot, which only a passing one
  // then claims; a row stops once its count is reached, so nothing lands past its end.
  // (A branch per column mispredicts at every other one in a code as dense as a fresh ReLU
  // SAE's, half its columns passing: at batch 4096, m = 16384 the kernel took ~200 ms
  // that way, ~42 this way, and ~38-40 either way on a sparse code.)
  parallel_range(batch, 16, [&](long b0, long b1) {
    for (long b = b0; b < b1; b++) {
      int32_t e = row_ptr[b];
      const int32_t end = row_ptr[b + 1];
      float v;
      for (long j = 0; j < m && e < end; j++) {
        const bool pass = passes(b, j, &v);
        idx[e] = static_cast<int32_t>(j);
        vals[e] = v;
        e += pass;
      }
    }
  });
  return total;
}

void group_max_rows(const float* x, long batch, long m, long groups, SelectMode mode, const float* bias,
                    float* vals, int32_t* idx) {
  if (batch <= 0 || groups <= 0) return;
  const long size = m / groups;
  parallel_range(batch, 16, [&](long b0, long b1) {
    for (long b = b0; b < b1; b++) {
      const float* row = x + b * m;
      for (long g = 0; g < groups; g++) {
        const long start = g * size;
        const long at = start + argmax(row + start, bias ? bias + start : nullptr, size, mode);
        idx[b * groups + g] = static_cast<int32_t>(at);
        vals[b * groups + g] = out_value(row[at] + (bias ? bias[at] : 0.0f), mode);
      }
    }
  });
}

}  // namespace saekit
