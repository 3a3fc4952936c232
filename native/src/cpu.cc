#include "cpu.h"

#include <cstdlib>
#include <cstring>

namespace saekit {
namespace {

Isa detect() {
#if SAEKIT_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq"))
    return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Generic;
}

Isa initial() {
  Isa best = detect();
  const char* forced = std::getenv("SAEKIT_ISA");
  if (forced) {
    if (!std::strcmp(forced, "generic")) return Isa::Generic;
    if (!std::strcmp(forced, "avx2") && best >= Isa::Avx2) return Isa::Avx2;
  }
  return best;
}

Isa g_active = initial();

}  // namespace

Isa best_isa() {
  static Isa best = detect();
  return best;
}

Isa active_isa() { return g_active; }

bool set_isa(Isa isa) {
  if (isa > best_isa()) return false;
  g_active = isa;
  return true;
}

bool has_bf16_dot() {
#if SAEKIT_BF16_DOT
  static const bool has = (__builtin_cpu_init(), best_isa() == Isa::Avx512 && __builtin_cpu_supports("avx512bf16"));
  return has;
#else
  return false;
#endif
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    default: return "generic";
  }
}

}  // namespace saekit
