#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <type_traits>

#include "cpu.h"
#include "gemm_kernels.h"
#include "threadpool.h"

namespace saekit {
namespace {

struct Problem {
  bool ta, tb;
  long M, N, K;
  float alpha;
  const float* A;
  long lda;
  const float* B;
  long ldb;
  float beta;
  float* C;
  long ldc;
  // B as bfloat16 bits instead (B is then null): widened to float32 as it is packed.
  const uint16_t* Bh = nullptr;
  // bfloat16 precision: op(A) and op(B) rounded to bfloat16 (bf16_round_bits), products
  // summed in float32; on the dot-product instructions where the CPU has them.
  bool bf16 = false;
};

const MicroKernel& active_kernel() {
  static const MicroKernel generic = micro_kernel_generic();
  static const MicroKernel avx2 = micro_kernel_avx2();
  static const MicroKernel avx512 = micro_kernel_avx512();
  switch (active_isa()) {
    case Isa::Avx512: return avx512;
    case Isa::Avx2: return avx2;
    default: return generic;
  }
}

// 64-byte aligned scratch that grows on demand, one per thread and purpose.
template <typename T>
struct ScratchOf {
  T* data = nullptr;
  size_t size = 0;
  ~ScratchOf() { std::free(data); }
  T* get(size_t n) {
    if (n > size) {
      std::free(data);
      size_t bytes = ((n * sizeof(T) + 63) / 64) * 64;
      data = static_cast<T*>(std::aligned_alloc(64, bytes));
      if (!data) throw std::bad_alloc();
      size = n;
    }
    return data;
  }
};
using Scratch = ScratchOf<float>;

// x[i] = bf16(x[i]) * scale: what the bfloat16-precision product reads, on CPUs without the
// dot-product instructions (the float32 kernel then multiplies values that are bfloat16).
SAEKIT_BODY void round_to_bf16_body(float* x, long n, float scale) {
  for (long i = 0; i < n; i++) x[i] = scale * bf16_round(x[i]);
}
SAEKIT_MULTIVERSION(void, round_to_bf16, (float* x, long n, float scale), (x, n, scale))

// Packs rows [i0, i0+mc) x depth [k0, k0+kc) of alpha*op(A) into MR-row micro-panels:
// panel p holds, for each k, the MR values op(A)[i0+p*MR+r, k0+k]; rows past M are zero.
// With bfloat16 precision the values are rounded and then multiplied by alpha.
void pack_a(const Problem& p, const MicroKernel& uk, long i0, long mc, long k0, long kc, float* dst) {
  const int MR = uk.mr;
  const float alpha = p.bf16 ? 1.0f : p.alpha;
  for (long ip = 0; ip < mc; ip += MR) {
    long rows = std::min<long>(MR, mc - ip);
    float* panel = dst + ip * kc;
    if (p.ta) {
      // op(A)[i,k] = A[k*lda+i]: MR consecutive values per k.
      for (long k = 0; k < kc; k++) {
        const float* src = p.A + (k0 + k) * p.lda + i0 + ip;
        float* out = panel + k * MR;
        long r = 0;
        for (; r < rows; r++) out[r] = alpha * src[r];
        for (; r < MR; r++) out[r] = 0.0f;
      }
    } else {
      // op(A)[i,k] = A[i*lda+k]: each row is contiguous in k, the panel wants it across.
      uk.pack_transposed(p.A + (i0 + ip) * p.lda + k0, p.lda, rows, MR, kc, alpha, panel, MR);
    }
  }
  if (p.bf16) round_to_bf16(dst, ((mc + MR - 1) / MR) * MR * kc, p.alpha);
}

// Packs depth [k0, k0+kc) x columns [j0, j0+nc) of op(B) into NR-column micro-panels:
// panel q holds, for each k, the NR values op(B)[k0+k, j0+q*NR+c]; columns past N are zero.
void pack_b(const Problem& p, const MicroKernel& uk, long k0, long kc, long j0, long nc, float* dst) {
  const int NR = uk.nr;
  for (long jp = 0; jp < nc; jp += NR) {
    long cols = std::min<long>(NR, nc - jp);
    float* panel = dst + jp * kc;
    if (p.tb) {
      // op(B)[k,j] = B[j*ldb+k]: source rows are contiguous in k; transpose up to 16
      // columns at a time (bfloat16 widened as it is read).
      for (int c0 = 0; c0 < NR; c0 += 16) {
        const int lanes = std::min(16, NR - c0);
        const int have = static_cast<int>(std::max<long>(0, std::min<long>(lanes, cols - c0)));
        // With no columns left (have == 0) only zeros are written and nothing is read.
        const long at = have > 0 ? (j0 + jp + c0) * p.ldb + k0 : 0;
        if (p.Bh) uk.pack_transposed_bf16(p.Bh + at, p.ldb, have, lanes, kc, 1.0f, panel + c0, NR);
        else uk.pack_transposed(p.B + at, p.ldb, have, lanes, kc, 1.0f, panel + c0, NR);
      }
    } else {
      for (long k = 0; k < kc; k++) {
        const long at = (k0 + k) * p.ldb + j0 + jp;
        float* out = panel + k * NR;
        if (p.Bh) {
          for (long c = 0; c < cols; c++) out[c] = bf16_to_f32(p.Bh[at + c]);
        } else {
          std::memcpy(out, p.B + at, cols * sizeof(float));
        }
        for (long c = cols; c < NR; c++) out[c] = 0.0f;
      }
    }
  }
  if (p.bf16) round_to_bf16(dst, ((nc + NR - 1) / NR) * NR * kc, 1.0f);
}

// Edge tile: the kernel computed the full tile aside; write back only what exists.
void write_edge_tile(const float* tile, int NR, float* c, long ldc, long rows, long cols, float beta) {
  for (long r = 0; r < rows; r++)
    for (long col = 0; col < cols; col++) {
      float* out = c + r * ldc + col;
      float v = tile[r * NR + col];
      *out = beta == 0.0f ? v : (beta == 1.0f ? *out + v : beta * *out + v);
    }
}

// ---------------------------------------------------------------- bfloat16 dot products
// The same loops for the BF16 dot-product kernel, whose panels hold pairs of k per word.

// Rows [i0, i0+mc) x depth [k0, k0+kc) of op(A) as MR-row micro-panels of pairs.
void pack_a_pairs(const Problem& p, const DotKernel& dk, long i0, long mc, long k0, long kc, uint32_t* dst) {
  const int MR = dk.mr;
  const long pairs = (kc + 1) / 2;
  for (long ip = 0; ip < mc; ip += MR) {
    const int rows = static_cast<int>(std::min<long>(MR, mc - ip));
    uint32_t* panel = dst + ip * pairs;
    if (!p.ta) {
      dk.pack_pairs_transposed(p.A + (i0 + ip) * p.lda + k0, p.lda, rows, MR, kc, panel, MR);
      continue;
    }
    // op(A)[i,k] = A[k*lda+i]: the pair's two k are rows of A.
    dk.pack_pairs(p.A + k0 * p.lda + i0 + ip, p.lda, rows, MR, kc, panel, MR);
  }
}

// Depth [k0, k0+kc) x columns [j0, j0+nc) of op(B) as NR-column micro-panels of pairs.
void pack_b_pairs(const Problem& p, const DotKernel& dk, long k0, long kc, long j0, long nc, uint32_t* dst) {
  const int NR = dk.nr;
  const long pairs = (kc + 1) / 2;
  for (long jp = 0; jp < nc; jp += NR) {
    const long cols = std::min<long>(NR, nc - jp);
    uint32_t* panel = dst + jp * pairs;
    if (p.tb) {
      for (int c0 = 0; c0 < NR; c0 += 16) {
        const int have = static_cast<int>(std::max<long>(0, std::min<long>(16, cols - c0)));
        const long at = have > 0 ? (j0 + jp + c0) * p.ldb + k0 : 0;
        if (p.Bh) dk.pack_pairs_transposed_bf16(p.Bh + at, p.ldb, have, 16, kc, panel + c0, NR);
        else dk.pack_pairs_transposed(p.B + at, p.ldb, have, 16, kc, panel + c0, NR);
      }
      continue;
    }
    const long at = k0 * p.ldb + j0 + jp;
    if (p.Bh) dk.pack_pairs_bf16(p.Bh + at, p.ldb, cols, NR, kc, panel, NR);
    else dk.pack_pairs(p.B + at, p.ldb, cols, NR, kc, panel, NR);
  }
}

// How one product packs and multiplies its operands: float32 values for the float32
// micro-kernels, or pairs of bfloat16 for the dot-product one (which applies alpha itself).
struct FloatPanels {
  using Word = float;
  const MicroKernel& uk;
  const Blocking& blocking() const { return uk; }
  long depth(long kc) const { return kc; }  // words per packed row or column
  void pack_a(const Problem& p, long i0, long mc, long k0, long kc, float* dst) const {
    saekit::pack_a(p, uk, i0, mc, k0, kc, dst);
  }
  void pack_b(const Problem& p, long k0, long kc, long j0, long nc, float* dst) const {
    saekit::pack_b(p, uk, k0, kc, j0, nc, dst);
  }
  void multiply(const Problem&, long depth, const float* ap, const float* bp, float* c, long ldc, float beta) const {
    uk.fn(depth, ap, bp, c, ldc, beta);
  }
};

struct PairPanels {
  using Word = uint32_t;
  const DotKernel& dk;
  const Blocking& blocking() const { return dk; }
  long depth(long kc) const { return (kc + 1) / 2; }
  void pack_a(const Problem& p, long i0, long mc, long k0, long kc, uint32_t* dst) const {
    pack_a_pairs(p, dk, i0, mc, k0, kc, dst);
  }
  void pack_b(const Problem& p, long k0, long kc, long j0, long nc, uint32_t* dst) const {
    pack_b_pairs(p, dk, k0, kc, j0, nc, dst);
  }
  void multiply(const Problem& p, long depth, const uint32_t* ap, const uint32_t* bp, float* c, long ldc,
                float beta) const {
    dk.fn(depth, ap, bp, c, ldc, p.alpha, beta);
  }
};

// The five BLIS loops over one rectangle of C: rows [m0, m1), columns [n0, n1).
template <typename Panels>
void gemm_block(const Problem& p, const Panels& panels, long m0, long m1, long n0, long n1) {
  using Word = typename Panels::Word;
  thread_local ScratchOf<Word> a_scratch, b_scratch;
  thread_local Scratch tile_scratch;
  const Blocking& bl = panels.blocking();
  const int MR = bl.mr, NR = bl.nr;
  const long KC = bl.kc, MC = bl.mc, NC = bl.nc;
  Word* packed_b = b_scratch.get(panels.depth(KC) * (((std::min(NC, n1 - n0) + NR - 1) / NR) * NR));
  Word* packed_a = a_scratch.get(panels.depth(KC) * (((std::min(MC, m1 - m0) + MR - 1) / MR) * MR));
  float* tile = tile_scratch.get(MR * NR);

  for (long jc = n0; jc < n1; jc += NC) {
    long nc = std::min(NC, n1 - jc);
    for (long pc = 0; pc < p.K; pc += KC) {
      long kc = std::min(KC, p.K - pc), depth = panels.depth(kc);
      float beta = pc == 0 ? p.beta : 1.0f;
      panels.pack_b(p, pc, kc, jc, nc, packed_b);
      for (long ic = m0; ic < m1; ic += MC) {
        long mc = std::min(MC, m1 - ic);
        panels.pack_a(p, ic, mc, pc, kc, packed_a);
        for (long jr = 0; jr < nc; jr += NR) {
          long cols = std::min<long>(NR, nc - jr);
          const Word* bp = packed_b + jr * depth;
          for (long ir = 0; ir < mc; ir += MR) {
            long rows = std::min<long>(MR, mc - ir);
            const Word* ap = packed_a + ir * depth;
            float* c = p.C + (ic + ir) * p.ldc + jc + jr;
            if (rows == MR && cols == NR) {
              panels.multiply(p, depth, ap, bp, c, p.ldc, beta);
            } else {
              panels.multiply(p, depth, ap, bp, tile, NR, 0.0f);
              write_edge_tile(tile, NR, c, p.ldc, rows, cols, beta);
            }
          }
        }
      }
    }
  }
}

long ceil_div(long a, long b) { return (a + b - 1) / b; }

// Picks a tm x tn grid of C rectangles, one per thread, that minimises total packing work:
// every rectangle packs its own rows of A once per NC-wide column block and its columns of B
// once, so splitting N re-packs A and splitting M re-packs B.
void choose_grid(const Problem& p, const Blocking& uk, int threads, int* tm, int* tn) {
  double best = -1;
  for (int a = 1; a <= threads; a++) {
    if (threads % a) continue;
    int b = threads / a;
    if (ceil_div(p.M, uk.mr) < a || ceil_div(p.N, uk.nr) < b) continue;
    double pack_a = double(b) * p.M * p.K * ceil_div(ceil_div(p.N, b), uk.nc);
    double pack_b = double(a) * p.N * p.K;
    double cost = pack_a + pack_b;
    if (best < 0 || cost < best) best = cost, *tm = a, *tn = b;
  }
  if (best < 0) *tm = *tn = 1;
}

// Splits [0, n) into `parts` ranges whose boundaries fall on multiples of `align`.
long split_point(long n, long align, int part, int parts) {
  long units = ceil_div(n, align);
  return std::min(n, (units * part / parts) * align);
}

// M == 1 (a vector times a matrix, e.g. W^T g for a bias gradient, or a token's step of
// generation): packing B would copy the whole matrix for one use, so stream it instead.
// Columns are split across threads; each output is accumulated over k in order, so the
// result is thread-count independent. The vector `a` is contiguous (a transposed A's column
// is gathered first, and rounded at bfloat16 precision): read with a stride, the dot
// products did not vectorise and ran at a third of the memory's speed. A B stored as
// [n, k] that must be widened from bfloat16 or rounded to it is converted a row at a time
// into `row` (K floats) and summed by the very loop a float32 B goes through: the
// vectorised reduction's order then matches, and so does the result, to the bit.
SAEKIT_BODY float dot_row(const float* a, const float* brow, long K) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (long k = 0; k < K; k++) s += a[k] * brow[k];
  return s;
}

// B's element as the product reads it: widened from bfloat16 and/or rounded to it.
template <bool round, typename T>
SAEKIT_BODY float b_value(T x) {
  float v;
  if constexpr (std::is_same_v<T, uint16_t>) v = bf16_to_f32(x);
  else v = x;
  return round ? bf16_round(v) : v;
}

template <bool round, typename T>
SAEKIT_BODY void gemv_cols_from(const Problem& p, const T* B, const float* a, long j0, long j1, float* acc, float* row) {
  const long K = p.K;
  constexpr bool convert = round || std::is_same_v<T, uint16_t>;
  if (p.tb) {
    for (long j = j0; j < j1; j++) {
      const T* brow = B + j * p.ldb;
      if constexpr (convert) {
        for (long k = 0; k < K; k++) row[k] = b_value<round>(brow[k]);
        acc[j - j0] = dot_row(a, row, K);
      } else {
        acc[j - j0] = dot_row(a, brow, K);
      }
    }
    return;
  }
  for (long j = j0; j < j1; j++) acc[j - j0] = 0.0f;
  for (long k = 0; k < K; k++) {
    const T* brow = B + k * p.ldb;
#pragma omp simd
    for (long j = j0; j < j1; j++) acc[j - j0] += a[k] * b_value<round>(brow[j]);
  }
}

SAEKIT_BODY void gemv_cols_body(const Problem& p, const float* a, long j0, long j1, float* acc, float* row) {
  if (p.Bh) {
    if (p.bf16) gemv_cols_from<true>(p, p.Bh, a, j0, j1, acc, row);
    else gemv_cols_from<false>(p, p.Bh, a, j0, j1, acc, row);
  } else {
    if (p.bf16) gemv_cols_from<true>(p, p.B, a, j0, j1, acc, row);
    else gemv_cols_from<false>(p, p.B, a, j0, j1, acc, row);
  }
  for (long j = j0; j < j1; j++) {
    float v = p.alpha * acc[j - j0];
    p.C[j] = p.beta == 0.0f ? v : v + p.beta * p.C[j];
  }
}
SAEKIT_MULTIVERSION(void, gemv_cols, (const Problem& p, const float* a, long j0, long j1, float* acc, float* row),
                    (p, a, j0, j1, acc, row))

void gemv(const Problem& p) {
  Scratch gathered;
  const float* a = p.A;
  if (p.ta || p.bf16) {
    float* vector = gathered.get(p.K);
    for (long k = 0; k < p.K; k++) {
      const float x = p.A[p.ta ? k * p.lda : k];
      vector[k] = p.bf16 ? bf16_round(x) : x;
    }
    a = vector;
  }
  const bool row_needed = p.tb && (p.Bh || p.bf16);
  // B as [k, n] is read a strip of columns per task, a stretch of every row: one wide strip
  // per thread streams; narrow ones (4 KB of each row) made the prefetchers stumble.
  const int threads = pool_threads();
  const long chunk = p.tb ? 1024 : std::max<long>(1024, ((p.N + threads - 1) / threads + 15) / 16 * 16);
  parallel_chunks(p.N, chunk, [&](long j0, long j1) {
    thread_local Scratch acc, row;
    gemv_cols(p, a, j0, j1, acc.get(chunk), row_needed ? row.get(p.K) : nullptr);
  });
}

// The GEMM of a problem: the trivial cases, a vector times a matrix, or the blocked product
// with C split into one rectangle per thread.
void run(const Problem& p) {
  const long M = p.M, N = p.N, K = p.K;
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || p.alpha == 0.0f) {
    for (long i = 0; i < M; i++)
      for (long j = 0; j < N; j++) p.C[i * p.ldc + j] = p.beta == 0.0f ? 0.0f : p.beta * p.C[i * p.ldc + j];
    return;
  }
  // One row streams B; two or three would stream faster too (2 x 50304 x 512: 4.5 ms
  // against 9.4 packed), but the vector path sums in another order than the micro-kernels,
  // and decoding a batch of two or three on a key/value cache must give the full pass's
  // logits within float32 rounding, not drift by a few ulps more.
  if (M == 1) return gemv(p);
  DotKernel dk;
  const bool dot = p.bf16 && dot_kernel_bf16(&dk);
  const MicroKernel& uk = active_kernel();
  const Blocking& blocking = dot ? static_cast<const Blocking&>(dk) : uk;
  // Below ~4 MFLOP a thread wake-up costs more than it saves.
  double flops = 2.0 * M * N * K;
  int threads = flops < 4e6 ? 1 : pool_threads();
  int tm = 1, tn = 1;
  choose_grid(p, blocking, threads, &tm, &tn);
  parallel_for(tm * tn, [&](int t) {
    int bi = t / tn, bj = t % tn;
    long m0 = split_point(M, blocking.mr, bi, tm), m1 = split_point(M, blocking.mr, bi + 1, tm);
    long n0 = split_point(N, blocking.nr, bj, tn), n1 = split_point(N, blocking.nr, bj + 1, tn);
    if (m0 >= m1 || n0 >= n1) return;
    if (dot) gemm_block(p, PairPanels{dk}, m0, m1, n0, n1);
    else gemm_block(p, FloatPanels{uk}, m0, m1, n0, n1);
  });
}

}  // namespace

void gemm_tile_shape(int* mr, int* nr) {
  *mr = active_kernel().mr;
  *nr = active_kernel().nr;
}

void sgemm(bool trans_a, bool trans_b, long M, long N, long K, float alpha, const float* A,
           long lda, const float* B, long ldb, float beta, float* C, long ldc) {
  run(Problem{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc});
}

void sgemm_bf16(bool trans_a, bool trans_b, long M, long N, long K, float alpha, const float* A,
                long lda, const float* B, long ldb, float beta, float* C, long ldc) {
  Problem p{trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc};
  p.bf16 = true;
  run(p);
}

bool gemm_bf16_dot_native() {
  DotKernel dk;
  return dot_kernel_bf16(&dk);
}

void sgemm_bf16b(bool trans_a, bool trans_b, long M, long N, long K, float alpha, const float* A,
                 long lda, const uint16_t* B, long ldb, float beta, float* C, long ldc, bool bf16_precision) {
  Problem p{trans_a, trans_b, M, N, K, alpha, A, lda, nullptr, ldb, beta, C, ldc};
  p.Bh = B;
  p.bf16 = bf16_precision;
  run(p);
}

}  // namespace saekit
