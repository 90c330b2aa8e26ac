// Tests for include/ecq/config.hpp: version macros, the host expansion of the
// host/device macros, the versioned inline namespace and ECQ_ASSERT.
#include <ecq/config.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <type_traits>
#include <typeinfo>

#include <ecq/status.hpp>

#define ECQ_TEST_STRINGIZE_IMPL(...) #__VA_ARGS__
#define ECQ_TEST_STRINGIZE(...) ECQ_TEST_STRINGIZE_IMPL(__VA_ARGS__)

// Something declared through the namespace macros, to check where they put it.
ECQ_NAMESPACE_BEGIN
struct config_test_probe {
  int value = 7;
};
ECQ_HOST_DEVICE constexpr int config_test_twice(int x) { return 2 * x; }
ECQ_FORCEINLINE int config_test_sum_to(int n) {
  int sum = 0;
  ECQ_PRAGMA_UNROLL
  for (int i = 1; i <= 4; ++i) sum += i <= n ? i : 0;
  return sum;
}
ECQ_NAMESPACE_END

namespace {

TEST(Config, VersionMacrosAreNonNegativeIntegers) {
  static_assert(std::is_same<decltype(ECQ_VERSION_MAJOR), int>::value, "ECQ_VERSION_MAJOR must be an int literal");
  static_assert(std::is_same<decltype(ECQ_VERSION_MINOR), int>::value, "ECQ_VERSION_MINOR must be an int literal");
  static_assert(std::is_same<decltype(ECQ_VERSION_PATCH), int>::value, "ECQ_VERSION_PATCH must be an int literal");
  EXPECT_GE(ECQ_VERSION_MAJOR, 0);
  EXPECT_GE(ECQ_VERSION_MINOR, 0);
  EXPECT_GE(ECQ_VERSION_PATCH, 0);
  // The inline namespace is v<major>: a major version bump must rename it.
  EXPECT_EQ(ECQ_VERSION_MAJOR, 0) << "ECQ_VERSION_MAJOR changed: rename the inline namespace v0 in ECQ_NAMESPACE_BEGIN";
}

TEST(Config, HostDeviceMacrosAreEmptyOnTheHost) {
  EXPECT_STREQ(ECQ_TEST_STRINGIZE(ECQ_HOST_DEVICE), "");
  EXPECT_STREQ(ECQ_TEST_STRINGIZE(ECQ_DEVICE), "");
  EXPECT_EQ(ECQ_IS_CUDA_COMPILER(), 0);
  EXPECT_EQ(ECQ_IS_DEVICE_CODE(), 0);
}

TEST(Config, NamespaceIsTheInlineNamespaceV0) {
  static_assert(std::is_same<ecq::config_test_probe, ecq::v0::config_test_probe>::value,
                "ECQ_NAMESPACE_BEGIN must open ecq::v0, reachable as ecq::");
  static_assert(std::is_same<ecq::status, ecq::v0::status>::value, "ecq::status must live in ecq::v0");
  static_assert(ecq::config_test_twice(21) == 42 && ecq::v0::config_test_twice(4) == 8,
                "functions declared between the macros are reachable through both names");
  EXPECT_EQ(ecq::config_test_probe{}.value, 7);
  // The mangled name carries the version (Itanium ABI: N3ecq2v0...E), which
  // is what lets two builds with different versions link into one program.
  const std::string mangled = typeid(ecq::config_test_probe).name();
  EXPECT_NE(mangled.find("3ecq2v0"), std::string::npos) << mangled;
}

TEST(Config, ForceInlineAndUnrollPragmaCompileAndKeepSemantics) {
  EXPECT_EQ(ecq::config_test_sum_to(0), 0);
  EXPECT_EQ(ecq::config_test_sum_to(2), 3);
  EXPECT_EQ(ecq::config_test_sum_to(9), 10);
}

#if defined(ECQ_ENABLE_ASSERTS)
TEST(ConfigDeathTest, AssertAbortsWithTheConditionWhenEnabled) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  int calls = 0;
  ECQ_ASSERT(++calls == 1);  // true: no abort, evaluated once
  EXPECT_EQ(calls, 1);
  EXPECT_DEATH(ECQ_ASSERT(1 + 1 == 3), "ECQ_ASSERT\\(1 \\+ 1 == 3\\) failed");
}
#else
TEST(Config, AssertIsOffAndDoesNotEvaluateItsArgumentByDefault) {
  int calls = 0;
  ECQ_ASSERT(++calls == 100);  // would abort if it were evaluated and enabled
  EXPECT_EQ(calls, 0);
}
#endif

TEST(Config, TargetIsLittleEndian) {
  // config.hpp refuses big-endian targets because streams are read in place;
  // check the assumption holds where the tests run.
  const std::uint32_t word = 0x04030201u;
  unsigned char bytes[4];
  std::memcpy(bytes, &word, 4);
  EXPECT_EQ(bytes[0], 1);
  EXPECT_EQ(bytes[3], 4);
}

}  // namespace
