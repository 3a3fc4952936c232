#include "gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>

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
struct Scratch {
  float* data = nullptr;
  size_t size = 0;
  ~Scratch() { std::free(data); }
  float* get(size_t n) {
    if (n > size) {
      std::free(data);
      size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
      data = static_cast<float*>(std::aligned_alloc(64, bytes));
      if (!data) throw std::bad_alloc();
      size = n;
    }
    return data;
  }
};

// Packs rows [i0, i0+mc) x depth [k0, k0+kc) of alpha*op(A) into MR-row micro-panels:
// panel p holds, for each k, the MR values op(A)[i0+p*MR+r, k0+k]; rows past M are zero.
void pack_a(const Problem& p, const MicroKernel& uk, long i0, long mc, long k0, long kc, float* dst) {
  const int MR = uk.mr;
  for (long ip = 0; ip < mc; ip += MR) {
    long rows = std::min<long>(MR, mc - ip);
    float* panel = dst + ip * kc;
    if (p.ta) {
      // op(A)[i,k] = A[k*lda+i]: MR consecutive values per k.
      for (long k = 0; k < kc; k++) {
        const float* src = p.A + (k0 + k) * p.lda + i0 + ip;
        float* out = panel + k * MR;
        long r = 0;
        for (; r < rows; r++) out[r] = p.alpha * src[r];
        for (; r < MR; r++) out[r] = 0.0f;
      }
    } else {
      // op(A)[i,k] = A[i*lda+k]: each row is contiguous in k, the panel wants it across.
      uk.pack_transposed(p.A + (i0 + ip) * p.lda + k0, p.lda, rows, MR, kc, p.alpha, panel, MR);
    }
  }
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
}

// The five BLIS loops over one rectangle of C: rows [m0, m1), columns [n0, n1).
void gemm_block(const Problem& p, const MicroKernel& uk, long m0, long m1, long n0, long n1) {
  thread_local Scratch a_scratch, b_scratch, tile_scratch;
  const int MR = uk.mr, NR = uk.nr;
  const long KC = uk.kc, MC = uk.mc, NC = uk.nc;
  float* packed_b = b_scratch.get(KC * (((std::min(NC, n1 - n0) + NR - 1) / NR) * NR));
  float* packed_a = a_scratch.get(KC * (((std::min(MC, m1 - m0) + MR - 1) / MR) * MR));
  float* tile = tile_scratch.get(MR * NR);

  for (long jc = n0; jc < n1; jc += NC) {
    long nc = std::min(NC, n1 - jc);
    for (long pc = 0; pc < p.K; pc += KC) {
      long kc = std::min(KC, p.K - pc);
      float beta = pc == 0 ? p.beta : 1.0f;
      pack_b(p, uk, pc, kc, jc, nc, packed_b);
      for (long ic = m0; ic < m1; ic += MC) {
        long mc = std::min(MC, m1 - ic);
        pack_a(p, uk, ic, mc, pc, kc, packed_a);
        for (long jr = 0; jr < nc; jr += NR) {
          long cols = std::min<long>(NR, nc - jr);
          const float* bp = packed_b + jr * kc;
          for (long ir = 0; ir < mc; ir += MR) {
            long rows = std::min<long>(MR, mc - ir);
            const float* ap = packed_a + ir * kc;
            float* c = p.C + (ic + ir) * p.ldc + jc + jr;
            if (rows == MR && cols == NR) {
              uk.fn(kc, ap, bp, c, p.ldc, beta);
            } else {
              // Edge tile: compute the full tile aside, write back only what exists.
              uk.fn(kc, ap, bp, tile, NR, 0.0f);
              for (long r = 0; r < rows; r++)
                for (long col = 0; col < cols; col++) {
                  float* out = c + r * p.ldc + col;
                  float v = tile[r * NR + col];
                  *out = beta == 0.0f ? v : (beta == 1.0f ? *out + v : beta * *out + v);
                }
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
void choose_grid(const Problem& p, const MicroKernel& uk, int threads, int* tm, int* tn) {
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

// M == 1 (a vector times a matrix, e.g. W^T g for a bias gradient): packing B would copy
// the whole matrix for one use, so stream it instead. Columns are split across threads;
// each output is accumulated over k in order, so the result is thread-count independent.
// A bfloat16 B stored as [n, k] is widened a row at a time into `row` (K floats) and summed
// by the very loop a float32 B goes through: the vectorised reduction's order then matches,
// and so does the result, to the bit.
SAEKIT_BODY float dot_row(const Problem& p, const float* brow) {
  float s = 0.0f;
#pragma omp simd reduction(+ : s)
  for (long k = 0; k < p.K; k++) s += p.A[p.ta ? k * p.lda : k] * brow[k];
  return s;
}

SAEKIT_BODY void gemv_cols_body(const Problem& p, long j0, long j1, float* acc, float* row) {
  for (long j = j0; j < j1; j++) acc[j - j0] = 0.0f;
  if (p.Bh && p.tb) {
    for (long j = j0; j < j1; j++) {
      const uint16_t* brow = p.Bh + j * p.ldb;
      for (long k = 0; k < p.K; k++) row[k] = bf16_to_f32(brow[k]);
      acc[j - j0] = dot_row(p, row);
    }
  } else if (p.Bh) {
    for (long k = 0; k < p.K; k++) {
      const float a = p.A[p.ta ? k * p.lda : k];
      const uint16_t* brow = p.Bh + k * p.ldb;
#pragma omp simd
      for (long j = j0; j < j1; j++) acc[j - j0] += a * bf16_to_f32(brow[j]);
    }
  } else if (p.tb) {
    for (long j = j0; j < j1; j++) acc[j - j0] = dot_row(p, p.B + j * p.ldb);
  } else {
    for (long k = 0; k < p.K; k++) {
      const float a = p.A[p.ta ? k * p.lda : k];
      const float* brow = p.B + k * p.ldb;
#pragma omp simd
      for (long j = j0; j < j1; j++) acc[j - j0] += a * brow[j];
    }
  }
  for (long j = j0; j < j1; j++) {
    float v = p.alpha * acc[j - j0];
    p.C[j] = p.beta == 0.0f ? v : v + p.beta * p.C[j];
  }
}
SAEKIT_MULTIVERSION(void, gemv_cols, (const Problem& p, long j0, long j1, float* acc, float* row),
                    (p, j0, j1, acc, row))

void gemv(const Problem& p) {
  parallel_chunks(p.N, 1024, [&](long j0, long j1) {
    thread_local Scratch acc, row;
    gemv_cols(p, j0, j1, acc.get(1024), p.Bh && p.tb ? row.get(p.K) : nullptr);
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
  if (M == 1) return gemv(p);
  const MicroKernel& uk = active_kernel();
  // Below ~4 MFLOP a thread wake-up costs more than it saves.
  double flops = 2.0 * M * N * K;
  int threads = flops < 4e6 ? 1 : pool_threads();
  int tm = 1, tn = 1;
  choose_grid(p, uk, threads, &tm, &tn);
  parallel_for(tm * tn, [&](int t) {
    int bi = t / tn, bj = t % tn;
    long m0 = split_point(M, uk.mr, bi, tm), m1 = split_point(M, uk.mr, bi + 1, tm);
    long n0 = split_point(N, uk.nr, bj, tn), n1 = split_point(N, uk.nr, bj + 1, tn);
    if (m0 < m1 && n0 < n1) gemm_block(p, uk, m0, m1, n0, n1);
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

void sgemm_bf16b(bool trans_a, bool trans_b, long M, long N, long K, float alpha, const float* A,
                 long lda, const uint16_t* B, long ldb, float beta, float* C, long ldc) {
  Problem p{trans_a, trans_b, M, N, K, alpha, A, lda, nullptr, ldb, beta, C, ldc};
  p.Bh = B;
  run(p);
}

}  // namespace saekit
