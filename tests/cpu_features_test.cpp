// Tests for ecq/cpu_features.hpp: path names, what the CPU supports, and the
// ECQ_CPU_PATH override (checked in forked children, because the variable is
// read once per process).
#include "ecq/cpu_features.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#if defined(__unix__)
#include <sys/wait.h>
#include <unistd.h>
#endif

namespace {

using ecq::cpu_path;

TEST(CpuFeatures, NamesRoundTrip) {
  for (cpu_path p : {cpu_path::automatic, cpu_path::scalar, cpu_path::avx2, cpu_path::avx512, cpu_path::neon})
    EXPECT_EQ(ecq::parse_cpu_path(ecq::cpu_path_name(p)), p);
  EXPECT_EQ(ecq::parse_cpu_path(nullptr), cpu_path::automatic);
  EXPECT_EQ(ecq::parse_cpu_path("AVX512"), cpu_path::automatic);  // names are case-sensitive
  EXPECT_EQ(ecq::parse_cpu_path("sse4"), cpu_path::automatic);
  EXPECT_EQ(ecq::parse_cpu_path(""), cpu_path::automatic);
}

TEST(CpuFeatures, SupportFollowsTheHighestPath) {
  const cpu_path highest = ecq::highest_supported_cpu_path();
  EXPECT_NE(highest, cpu_path::automatic);
  EXPECT_TRUE(ecq::cpu_path_supported(cpu_path::scalar));
  EXPECT_TRUE(ecq::cpu_path_supported(cpu_path::automatic));
  EXPECT_TRUE(ecq::cpu_path_supported(highest));
  const bool x86 = highest == cpu_path::avx2 || highest == cpu_path::avx512;
  for (cpu_path p : {cpu_path::avx2, cpu_path::avx512})  // x86 paths are ordered
    EXPECT_EQ(ecq::cpu_path_supported(p), x86 && int(p) <= int(highest)) << ecq::cpu_path_name(p);
  EXPECT_EQ(ecq::cpu_path_supported(cpu_path::neon), highest == cpu_path::neon);
}

#if ECQ_HAS_X86_KERNELS()
TEST(CpuFeatures, AgreesWithCompilerBuiltins) {
  __builtin_cpu_init();
  const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi2");
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                      __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vbmi2");
  EXPECT_EQ(ecq::cpu_path_supported(cpu_path::avx2), avx2);
  EXPECT_EQ(ecq::cpu_path_supported(cpu_path::avx512), avx512 && avx2);
}
#elif ECQ_HAS_NEON_KERNELS()
TEST(CpuFeatures, AArch64HasNeon) { EXPECT_EQ(ecq::highest_supported_cpu_path(), cpu_path::neon); }
#else
TEST(CpuFeatures, PortableBuildHasOnlyScalar) {
  EXPECT_EQ(ecq::highest_supported_cpu_path(), cpu_path::scalar);
}
#endif

#if defined(__unix__)
/// default_cpu_path() in a child process started with ECQ_CPU_PATH = value.
cpu_path default_path_with_env(const char* value) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (value != nullptr) setenv("ECQ_CPU_PATH", value, 1);
    else unsetenv("ECQ_CPU_PATH");
    _exit(int(ecq::default_cpu_path()));
  }
  int wstatus = 0;
  waitpid(pid, &wstatus, 0);
  return WIFEXITED(wstatus) ? cpu_path(WEXITSTATUS(wstatus)) : cpu_path::automatic;
}

TEST(CpuFeatures, EnvironmentPicksOnlySupportedPaths) {
  const cpu_path highest = ecq::highest_supported_cpu_path();
  EXPECT_EQ(default_path_with_env(nullptr), highest);
  EXPECT_EQ(default_path_with_env("scalar"), cpu_path::scalar);
  for (cpu_path p : {cpu_path::avx2, cpu_path::avx512, cpu_path::neon})
    EXPECT_EQ(default_path_with_env(ecq::cpu_path_name(p)), ecq::cpu_path_supported(p) ? p : highest)
        << ecq::cpu_path_name(p);
  EXPECT_EQ(default_path_with_env("automatic"), highest);
  EXPECT_EQ(default_path_with_env("bogus"), highest);
}
#endif

}  // namespace
