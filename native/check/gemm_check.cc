// A self-contained check of the GEMM against a plain float64 triple loop, with no Node: for
// building the kernels for another CPU (arm64 under qemu, say) where the vitest suites, which
// need the addon loaded in Node, cannot run. scripts/check-gemm-cross.sh builds and runs it;
// on this machine's own CPU the suites in test/core/kernels.test.ts check the same and more.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <vector>

#include "../src/cpu.h"
#include "../src/gemm.h"
#include "../src/gemm_kernels.h"
#include "../src/threadpool.h"

namespace {

// Whether C is within float32 rounding of a float64 product (|error| <= 4e-5 sqrt(K + 1)),
// leaves its padding (columns past N) untouched, and, with B as bfloat16, equals the product
// on B widened to the bit.
bool check(std::mt19937& rng, bool ta, bool tb, long M, long N, long K, float alpha, float beta) {
  std::normal_distribution<float> normal;
  const long lda = (ta ? M : K) + 1, ldb = (tb ? K : N) + 2, ldc = N + 3;
  std::vector<float> A((ta ? K : M) * lda), B((tb ? N : K) * ldb), C(M * ldc);
  for (float& x : A) x = normal(rng);
  for (float& x : B) x = normal(rng);
  for (float& x : C) x = normal(rng);
  std::vector<float> C0 = C;
  saekit::sgemm(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  double worst = 0;
  for (long i = 0; i < M; i++) {
    for (long j = 0; j < ldc; j++) {
      if (j >= N) {
        if (C[i * ldc + j] != C0[i * ldc + j]) return std::printf("wrote past N at %ld,%ld\n", i, j), false;
        continue;
      }
      double s = 0;
      for (long k = 0; k < K; k++)
        s += double(ta ? A[k * lda + i] : A[i * lda + k]) * double(tb ? B[j * ldb + k] : B[k * ldb + j]);
      const double want = alpha * s + (beta == 0.0f ? 0.0 : beta * double(C0[i * ldc + j]));
      worst = std::fmax(worst, std::fabs(C[i * ldc + j] - want));
    }
  }
  // B as bfloat16: the same product, to the bit, as on B rounded to bfloat16 and widened.
  std::vector<uint16_t> Bh(B.size());
  std::vector<float> wide(B.size()), Cw = C0, Ch = C0;
  for (size_t i = 0; i < B.size(); i++) {
    uint32_t bits;
    std::memcpy(&bits, &B[i], 4);
    Bh[i] = static_cast<uint16_t>(bits >> 16);
    bits = static_cast<uint32_t>(Bh[i]) << 16;
    std::memcpy(&wide[i], &bits, 4);
  }
  saekit::sgemm(ta, tb, M, N, K, alpha, A.data(), lda, wide.data(), ldb, beta, Cw.data(), ldc);
  saekit::sgemm_bf16b(ta, tb, M, N, K, alpha, A.data(), lda, Bh.data(), ldb, beta, Ch.data(), ldc);
  if (std::memcmp(Cw.data(), Ch.data(), Cw.size() * sizeof(float)) != 0)
    return std::printf("FAIL %ldx%ldx%ld ta=%d tb=%d: bfloat16 B differs from B widened\n", M, N, K, ta, tb), false;
  // bfloat16 precision: within float32 rounding of the float64 product of the rounded inputs.
  auto rounded = [](float x) {
    uint32_t bits;
    std::memcpy(&bits, &x, 4);
    bits = saekit::bf16_round_bits(bits);
    std::memcpy(&x, &bits, 4);
    return double(x);
  };
  std::vector<float> Cb = C0;
  saekit::sgemm_bf16(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, Cb.data(), ldc);
  double worst_bf16 = 0;
  for (long i = 0; i < M; i++)
    for (long j = 0; j < N; j++) {
      double s = 0;
      for (long k = 0; k < K; k++)
        s += rounded(ta ? A[k * lda + i] : A[i * lda + k]) * rounded(tb ? B[j * ldb + k] : B[k * ldb + j]);
      const double want = alpha * s + (beta == 0.0f ? 0.0 : beta * double(C0[i * ldc + j]));
      worst_bf16 = std::fmax(worst_bf16, std::fabs(Cb[i * ldc + j] - want));
    }
  const double tol = 1e-5 * std::sqrt(double(K) + 1) * 4;
  if (!(worst_bf16 < tol))
    return std::printf("FAIL %ldx%ldx%ld ta=%d tb=%d: at bfloat16 precision, max error %g > %g\n", M, N, K, ta, tb,
                       worst_bf16, tol), false;
  if (!(worst < tol)) {
    std::printf("FAIL %ldx%ldx%ld ta=%d tb=%d alpha=%g beta=%g: max error %g > %g\n", M, N, K, ta, tb,
                alpha, beta, worst, tol);
    return false;
  }
  return true;
}

}  // namespace

int main() {
  int mr, nr;
  saekit::gemm_tile_shape(&mr, &nr);
  std::printf("isa %s, micro-kernel %d x %d, %d threads\n", saekit::isa_name(saekit::active_isa()), mr,
              nr, saekit::pool_threads());
  std::mt19937 rng(7);
  // Around the tile (MR, NR and one past each), across the depth blocks (K past 256 and 512),
  // and big enough to go parallel and to split into several row and column blocks.
  const long shapes[][3] = {{1, 1, 1},       {3, 5, 7},        {mr, nr, 16},     {mr + 1, nr + 1, 17},
                            {2 * mr - 1, 3 * nr + 5, 33}, {29, 47, 130}, {113, 65, 9}, {64, 1, 37},
                            {1, 100, 513},   {300, 40, 600},   {130, 260, 1100}, {257, 515, 300}};
  int failures = 0, runs = 0;
  for (const auto& s : shapes)
    for (int t = 0; t < 4; t++)
      for (float beta : {0.0f, 1.0f, 0.5f}) {
        failures += !check(rng, t & 1, t & 2, s[0], s[1], s[2], beta == 1.0f ? 1.0f : 0.75f, beta);
        runs++;
      }
  std::printf("%d of %d products match the float64 reference (and, B as bfloat16, the widened B's; at "
              "bfloat16 precision, the reference on rounded inputs)\n",
              runs - failures, runs);
  return failures == 0 ? 0 : 1;
}
