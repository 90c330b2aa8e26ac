// ecq/cpu_features.hpp — READ ME FIRST
//
// Run-time choice of the CPU code path (host only). ecq's CPU decoders
// (ecq/cpu_decode.hpp) exist in several versions, one per instruction set;
// this header says which of them this CPU can run and which one to use.
//
//   cpu_path::scalar    portable C++, every target (also what nvcc and
//                       non-x86 compilers get).
//   cpu_path::avx2      x86-64 with AVX2 + BMI2 (Haswell, Zen 1 and later).
//   cpu_path::avx512    x86-64 with AVX-512 F, BW, DQ, VL, VBMI and VBMI2
//                       (Ice Lake, Zen 4 and later). Skylake-X lacks VBMI
//                       and gets the AVX2 path.
//   cpu_path::neon      AArch64 (ASIMD is part of the architecture).
//   cpu_path::automatic "the best one": the highest path the CPU supports,
//                       or the one the environment variable ECQ_CPU_PATH
//                       (scalar | avx2 | avx512 | neon) names, read once per
//                       process, if this CPU supports it. The variable can
//                       only pick a supported path: it never selects code
//                       the CPU cannot run.
//
// The SIMD kernels are compiled with per-function target attributes, so no
// -march flag is needed and a binary built on one machine runs on any
// x86-64: the kernels are only called after the CPU was checked here.
// ECQ_HAS_X86_KERNELS() is 1 where those kernels are compiled at all
// (x86-64, GCC or Clang, not inside nvcc), ECQ_HAS_NEON_KERNELS() likewise
// for AArch64; elsewhere only the scalar path exists and every query below
// answers accordingly.
#ifndef ECQ_CPU_FEATURES_HPP
#define ECQ_CPU_FEATURES_HPP

#include <cstdlib>
#include <cstring>

#include "config.hpp"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__)) && !ECQ_IS_CUDA_COMPILER()
#define ECQ_HAS_X86_KERNELS() 1
#else
#define ECQ_HAS_X86_KERNELS() 0
#endif

#if defined(__aarch64__) && defined(__ARM_NEON) && (defined(__GNUC__) || defined(__clang__)) && !ECQ_IS_CUDA_COMPILER()
#define ECQ_HAS_NEON_KERNELS() 1
#else
#define ECQ_HAS_NEON_KERNELS() 0
#endif

ECQ_NAMESPACE_BEGIN

/// A CPU code path. The x86 values are ordered: a higher path needs more features.
enum class cpu_path : int {
  automatic = 0,
  scalar = 1,
  avx2 = 2,
  avx512 = 3,
  neon = 4,
};

/// @return "automatic", "scalar", "avx2", "avx512" or "neon".
inline const char* cpu_path_name(cpu_path p) {
  switch (p) {
    case cpu_path::automatic: return "automatic";
    case cpu_path::scalar: return "scalar";
    case cpu_path::avx2: return "avx2";
    case cpu_path::avx512: return "avx512";
    case cpu_path::neon: return "neon";
  }
  return "unknown";
}

/// @return the path named `name` (as cpu_path_name spells it), or
///         cpu_path::automatic for a null pointer or any other string.
inline cpu_path parse_cpu_path(const char* name) {
  if (name == nullptr) return cpu_path::automatic;
  if (std::strcmp(name, "scalar") == 0) return cpu_path::scalar;
  if (std::strcmp(name, "avx2") == 0) return cpu_path::avx2;
  if (std::strcmp(name, "avx512") == 0) return cpu_path::avx512;
  if (std::strcmp(name, "neon") == 0) return cpu_path::neon;
  return cpu_path::automatic;
}

/// @return the highest path this CPU (and this build) can run.
inline cpu_path highest_supported_cpu_path() {
#if ECQ_HAS_X86_KERNELS()
  static const cpu_path highest = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2") &&
        __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt"))
      return cpu_path::avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt"))
      return cpu_path::avx2;
    return cpu_path::scalar;
  }();
  return highest;
#elif ECQ_HAS_NEON_KERNELS()
  return cpu_path::neon;
#else
  return cpu_path::scalar;
#endif
}

/// @return whether this CPU can run path `p` (automatic and scalar: always;
///         an x86 path up to the highest one on x86; neon on AArch64).
inline bool cpu_path_supported(cpu_path p) {
  const cpu_path highest = highest_supported_cpu_path();
  switch (p) {
    case cpu_path::automatic:
    case cpu_path::scalar: return true;
    case cpu_path::avx2:
    case cpu_path::avx512: return highest != cpu_path::neon && int(p) <= int(highest);
    case cpu_path::neon: return highest == cpu_path::neon;
  }
  return false;
}

/// @return the path `automatic` stands for: highest_supported_cpu_path(),
///         or the path ECQ_CPU_PATH names if this CPU supports it.
inline cpu_path default_cpu_path() {
  static const cpu_path chosen = [] {
    const cpu_path wanted = parse_cpu_path(std::getenv("ECQ_CPU_PATH"));
    return wanted != cpu_path::automatic && cpu_path_supported(wanted) ? wanted : highest_supported_cpu_path();
  }();
  return chosen;
}

ECQ_NAMESPACE_END

#endif  // ECQ_CPU_FEATURES_HPP
