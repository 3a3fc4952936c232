// Single-precision GEMM for row-major matrices, in the GotoBLAS/BLIS design: op(B) is
// packed into KC x NC panels and op(A) into MC x KC blocks laid out as MR x NR micro-panels,
// and a register-blocked micro-kernel (AVX-512, AVX2+FMA, NEON on arm64, or portable)
// computes each MR x NR tile of C from them. Threads split C into a grid chosen to minimise re-packing.
#pragma once

#include <cstdint>

namespace saekit {

// C[M,N] = alpha * op(A) * op(B) + beta * C.  op(A) is [M,K]: A is [M,K] (lda >= K) or, when
// trans_a, [K,M] (lda >= M). op(B) is [K,N]: B is [K,N] (ldb >= N) or, when trans_b, [N,K]
// (ldb >= K). beta == 0 overwrites C without reading it (NaN in C does not propagate).
void sgemm(bool trans_a, bool trans_b, long M, long N, long K, float alpha, const float* A,
           long lda, const float* B, long ldb, float beta, float* C, long ldc);

// The same with B stored as bfloat16 (the top 16 bits of each float32), as language-model
// weights can be kept at half the memory: each element is widened exactly as B is packed,
// so the result equals sgemm on the widened matrix, to the bit. With bf16_precision, it is
// sgemm_bf16's product instead (A rounded too), on the dot-product instructions where the
// CPU has them.
void sgemm_bf16b(bool trans_a, bool trans_b, long M, long N, long K, float alpha, const float* A,
                 long lda, const uint16_t* B, long ldb, float beta, float* C, long ldc,
                 bool bf16_precision = false);

// bfloat16 precision (PyTorch's "medium" float32 matmul precision): C = alpha * bf16(op(A)) *
// bf16(op(B)) + beta * C, each input rounded to bfloat16 (to nearest even, denormals to zero;
// bf16_round_bits in gemm_kernels.h), each product exact in float32, the sums in float32.
// On CPUs with AVX-512 BF16 it runs on the dot-product instructions at about twice sgemm's
// speed; elsewhere the float32 kernel multiplies the rounded values (same precision, no gain).
void sgemm_bf16(bool trans_a, bool trans_b, long M, long N, long K, float alpha, const float* A,
                long lda, const float* B, long ldb, float beta, float* C, long ldc);
// Whether sgemm_bf16 runs on the dot-product instructions now.
bool gemm_bf16_dot_native();

// The micro-kernel geometry in use (for tests that want edge cases around MR and NR).
void gemm_tile_shape(int* mr, int* nr);

}  // namespace saekit
