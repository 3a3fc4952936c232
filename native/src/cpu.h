// Run-time CPU feature detection. Kernels are compiled for several instruction sets in one
// binary (per-function target attributes) and the best one the CPU supports is picked when
// the addon loads; SAEKIT_ISA=generic|avx2|avx512 or set_isa() forces a lower one, which is
// how the tests cover every path on one machine.
#pragma once

namespace saekit {

enum class Isa { Generic = 0, Avx2 = 1, Avx512 = 2 };

Isa best_isa();          // what this CPU supports
Isa active_isa();        // what kernels use now
bool set_isa(Isa isa);   // false (and no change) if the CPU lacks it
const char* isa_name(Isa isa);
// Whether the CPU has the AVX-512 BF16 dot-product instructions (vdpbf16ps).
bool has_bf16_dot();

}  // namespace saekit

// Attributes for functions compiled for one instruction set.
#if defined(__x86_64__) || defined(__i386__)
#define SAEKIT_X86 1
#define SAEKIT_TARGET_AVX2 __attribute__((target("avx2,fma,f16c")))
#define SAEKIT_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,f16c")))
#define SAEKIT_TARGET_AVX512_BF16 \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma,f16c")))
#else
#define SAEKIT_X86 0
#endif

// Whether the compiler knows the AVX-512 BF16 instructions (GCC 10 and Clang 11 on): without
// them the bfloat16-precision GEMM is emulated (see gemm.h). -DSAEKIT_BF16_DOT=0 builds so.
#ifndef SAEKIT_BF16_DOT
#if SAEKIT_X86 && ((defined(__clang__) && __clang_major__ >= 11) || (!defined(__clang__) && __GNUC__ >= 10))
#define SAEKIT_BF16_DOT 1
#else
#define SAEKIT_BF16_DOT 0
#endif
#endif

// SAEKIT_MULTIVERSION(ret, name, (params), (args)) defines ret name(params) that runs the
// body `name##_body`, a static always-inline function written once with plain loops,
// compiled three times (AVX-512, AVX2, portable) and picked by active_isa() per call.
// The body is inlined into each target-specific wrapper, so the compiler vectorizes it
// for that instruction set (GCC inlines a callee whose ISA is a subset of the caller's).
#if SAEKIT_X86
#define SAEKIT_MULTIVERSION(ret, name, params, args)                             \
  SAEKIT_TARGET_AVX512 static ret name##_avx512 params { return name##_body args; } \
  SAEKIT_TARGET_AVX2 static ret name##_avx2 params { return name##_body args; }     \
  static ret name##_generic params { return name##_body args; }                     \
  ret name params {                                                              \
    switch (::saekit::active_isa()) {                                            \
      case ::saekit::Isa::Avx512: return name##_avx512 args;                     \
      case ::saekit::Isa::Avx2: return name##_avx2 args;                         \
      default: return name##_generic args;                                       \
    }                                                                            \
  }
#else
#define SAEKIT_MULTIVERSION(ret, name, params, args) \
  ret name params { return name##_body args; }
#endif
#define SAEKIT_BODY static inline __attribute__((always_inline))
