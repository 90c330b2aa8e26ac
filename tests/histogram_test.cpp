// Tests for include/ecq/histogram.hpp: counting against a std::map reference,
// error handling for out-of-range symbols, and the empirical entropy against
// closed forms and an independent formula.
#include <ecq/histogram.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <random>
#include <vector>

namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

template <class Symbol>
std::vector<std::uint64_t> reference_histogram(const std::vector<Symbol>& symbols, std::uint32_t alphabet_size) {
  std::map<std::uint32_t, std::uint64_t> m;
  for (Symbol s : symbols) ++m[std::uint32_t(s)];
  std::vector<std::uint64_t> counts(alphabet_size, 0);
  for (const auto& kv : m) counts.at(kv.first) = kv.second;
  return counts;
}

TEST(Histogram, MatchesReferenceOnRandomData) {
  std::mt19937_64 rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    const std::uint32_t alphabet = 1 + std::uint32_t(rng() % 4096);
    const std::size_t n = std::size_t(rng() % 20000);
    std::vector<std::uint16_t> symbols(n);
    for (auto& s : symbols) s = std::uint16_t(rng() % alphabet);
    EXPECT_EQ(ecq::histogram(symbols.data(), n, alphabet), reference_histogram(symbols, alphabet)) << trial;
  }
}

TEST(Histogram, CountSymbolsAccumulates) {
  const std::uint8_t a[] = {0, 1, 1, 3};
  const std::uint8_t b[] = {3, 3, 2};
  std::vector<std::uint64_t> counts(4, 0);
  ASSERT_EQ(ecq::count_symbols(a, 4, 4, counts.data()), ecq::status::ok);
  ASSERT_EQ(ecq::count_symbols(b, 3, 4, counts.data()), ecq::status::ok);
  EXPECT_THAT(counts, ElementsAre(1, 2, 1, 3));
}

TEST(Histogram, OutOfRangeSymbolIsRejected) {
  // Counts before the bad symbol are kept (documented: partially updated);
  // nothing at or after it is counted, and nothing is written past the end.
  const std::uint16_t symbols[] = {0, 2, 4, 1};
  std::vector<std::uint64_t> counts(4, 0);
  EXPECT_EQ(ecq::count_symbols(symbols, 4, 4, counts.data()), ecq::status::invalid_argument);
  EXPECT_THAT(counts, ElementsAre(1, 0, 1, 0));
  EXPECT_THAT(ecq::histogram(symbols, 4, 4), IsEmpty());
  EXPECT_THAT(ecq::histogram(symbols, 4, 5), ElementsAre(1, 1, 1, 0, 1));
}

TEST(Histogram, NegativeSymbolsAreOutOfRange) {
  const std::int8_t symbols[] = {1, -1};
  std::vector<std::uint64_t> counts(256, 0);
  EXPECT_EQ(ecq::count_symbols(symbols, 2, 256, counts.data()), ecq::status::invalid_argument);
  EXPECT_EQ(counts[1], 1u);
  EXPECT_EQ(counts[255], 0u);
}

TEST(Histogram, EmptyInputGivesZeroCounts) {
  const std::uint8_t* none = nullptr;
  EXPECT_THAT(ecq::histogram(none, 0, 3), ElementsAre(0, 0, 0));
}

TEST(Entropy, ClosedForms) {
  const std::uint64_t empty[3] = {0, 0, 0};
  EXPECT_EQ(ecq::entropy_bits_per_symbol(empty, 3), 0.0);
  const std::uint64_t single[3] = {0, 17, 0};
  EXPECT_EQ(ecq::entropy_bits_per_symbol(single, 3), 0.0);
  const std::uint64_t fair[2] = {5, 5};
  EXPECT_DOUBLE_EQ(ecq::entropy_bits_per_symbol(fair, 2), 1.0);
  // p = (1/4, 3/4): H = 2 - (3/4) log2 3.
  const std::uint64_t skew[3] = {1, 0, 3};
  EXPECT_NEAR(ecq::entropy_bits_per_symbol(skew, 3), 2.0 - 0.75 * std::log2(3.0), 1e-15);
  for (int k = 0; k <= 12; ++k) {
    std::vector<std::uint64_t> uniform(std::size_t(1) << k, 3);
    EXPECT_NEAR(ecq::entropy_bits_per_symbol(uniform.data(), std::uint32_t(uniform.size())), double(k), 1e-12) << k;
  }
  // Dyadic: p = (1/2, 1/4, 1/8, 1/8) -> 1.75 bits.
  const std::uint64_t dyadic[4] = {4, 2, 1, 1};
  EXPECT_NEAR(ecq::entropy_bits_per_symbol(dyadic, 4), 1.75, 1e-15);
}

TEST(Entropy, MatchesProbabilityFormOnRandomHistograms) {
  std::mt19937_64 rng(2);
  for (int trial = 0; trial < 100; ++trial) {
    const std::uint32_t alphabet = 1 + std::uint32_t(rng() % 300);
    std::vector<std::uint64_t> counts(alphabet);
    for (auto& c : counts) c = rng() % 4 == 0 ? 0 : rng() % 100000;
    double n = 0;
    for (auto c : counts) n += double(c);
    double h = 0;
    for (auto c : counts)
      if (c != 0) h -= (double(c) / n) * std::log2(double(c) / n);
    const double got = ecq::entropy_bits_per_symbol(counts.data(), alphabet);
    EXPECT_NEAR(got, h, 1e-9) << trial;
    EXPECT_GE(got, 0.0);
    EXPECT_LE(got, std::log2(double(alphabet)) + 1e-12);
  }
}

}  // namespace
