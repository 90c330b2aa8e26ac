// Tests for include/ecq/status.hpp. The numeric values and names are part of
// the API ("stable, only ever appended"), so they are frozen here: changing or
// renumbering a code must fail this test.
#include <ecq/status.hpp>

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>
#include <type_traits>

namespace {

using ecq::status;

struct frozen_code {
  status code;
  int value;
  const char* name;
};

// The complete list, in numeric order. A new code is appended here, at the end.
constexpr frozen_code all_codes[] = {
    {status::ok, 0, "ok"},
    {status::invalid_argument, 1, "invalid argument"},
    {status::output_too_small, 2, "output buffer too small"},
    {status::truncated, 3, "truncated data"},
    {status::corrupt_stream, 4, "corrupt rANS stream"},
    {status::corrupt_table, 5, "corrupt frequency table"},
    {status::bad_magic, 6, "bad magic"},
    {status::unsupported_version, 7, "unsupported version"},
    {status::bad_offset, 8, "offset or size out of bounds"},
    {status::bad_shape, 9, "inconsistent shape"},
    {status::checksum_mismatch, 10, "checksum mismatch"},
    {status::unsupported_parameters, 11, "unsupported parameters"},
    {status::too_many_symbols, 12, "more symbols than frequency slots"},
    {status::trailing_data, 13, "trailing data after the stream"},
    {status::device_error, 14, "CUDA call failed"},
};
constexpr int code_count = int(sizeof(all_codes) / sizeof(all_codes[0]));

TEST(Status, NumericValuesAreFrozen) {
  for (const auto& c : all_codes) EXPECT_EQ(static_cast<int>(c.code), c.value) << c.name;
  // Values are dense 0..count-1, so the table above lists every code.
  for (int i = 0; i < code_count; ++i) EXPECT_EQ(all_codes[i].value, i);
  static_assert(std::is_same<std::underlying_type_t<status>, int>::value, "status is stored as int");
}

TEST(Status, EveryCodeHasADistinctNonEmptyFrozenName) {
  std::set<std::string> seen;
  for (const auto& c : all_codes) {
    const char* s = ecq::status_string(c.code);
    ASSERT_NE(s, nullptr);
    EXPECT_GT(std::strlen(s), 0u);
    EXPECT_STREQ(s, c.name);
    EXPECT_STRNE(s, "unknown status") << c.value;
    EXPECT_TRUE(seen.insert(s).second) << "duplicate name " << s;
  }
}

TEST(Status, UnknownValuesHaveAName) {
  EXPECT_STREQ(ecq::status_string(static_cast<status>(code_count)), "unknown status");
  EXPECT_STREQ(ecq::status_string(static_cast<status>(-1)), "unknown status");
}

TEST(Status, IsOkOnlyForOk) {
  for (const auto& c : all_codes) EXPECT_EQ(ecq::is_ok(c.code), c.value == 0) << c.name;
}

TEST(Status, UsableInConstantExpressions) {
  static_assert(ecq::is_ok(status::ok) && !ecq::is_ok(status::truncated), "is_ok is constexpr");
  static_assert(ecq::status_string(status::ok)[0] == 'o' && ecq::status_string(status::ok)[2] == '\0',
                "status_string is constexpr");
  SUCCEED();
}

}  // namespace
