// Tests for include/ecq/frequency_table.hpp:
//   * invariants (sum exactly 2^S, present >= 1, absent == 0) over many random
//     histograms, alphabets 1..4096 and ScaleBits 8..16;
//   * optimality: equal to an exhaustive search over every valid table for
//     small alphabets, no improving single-unit exchange for large ones, and
//     never worse than the "proportional rounding + greedy correction" bar;
//   * the reported expected size and loss, and the error cases.
#include <ecq/frequency_table.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ecq::status;

// Coded size in bits of data with these counts under table f: sum c_s log2(M / f_s).
double cost_bits(const std::vector<std::uint64_t>& c, const std::vector<std::uint32_t>& f, int scale_bits) {
  double bits = 0;
  for (std::size_t s = 0; s < c.size(); ++s)
    if (c[s] != 0) bits += double(c[s]) * (double(scale_bits) - std::log2(double(f[s])));
  return bits;
}

std::vector<std::uint32_t> normalize(const std::vector<std::uint64_t>& counts, int scale_bits, status expect = status::ok) {
  std::vector<std::uint32_t> f(counts.size(), 0xdeadbeefu);
  EXPECT_EQ(ecq::normalize_frequencies(counts.data(), std::uint32_t(counts.size()), scale_bits, f.data()), expect);
  return f;
}

void check_invariants(const std::vector<std::uint64_t>& counts, const std::vector<std::uint32_t>& f, int scale_bits) {
  std::uint64_t sum = 0;
  bool any = false;
  for (std::size_t s = 0; s < counts.size(); ++s) {
    sum += f[s];
    any |= counts[s] != 0;
    if (counts[s] != 0) {
      ASSERT_GE(f[s], 1u) << "present symbol " << s;
    } else if (any || s != 0) {
      ASSERT_EQ(f[s], 0u) << "absent symbol " << s;
    }
  }
  ASSERT_EQ(sum, std::uint64_t(1) << scale_bits);
}

// A table is optimal iff no single-unit exchange lowers the cost (the cost is
// a sum of convex functions of the f_s). Checks that with the two largest
// gains, so that "up" and "down" can be different symbols.
void check_no_improving_exchange(const std::vector<std::uint64_t>& c, const std::vector<std::uint32_t>& f) {
  double best_gain = -1, second_gain = -1;
  std::size_t best = c.size();
  for (std::size_t s = 0; s < c.size(); ++s) {
    if (c[s] == 0) continue;
    const double g = double(c[s]) * std::log2((double(f[s]) + 1) / double(f[s]));
    if (g > best_gain) {
      second_gain = best_gain;
      best_gain = g;
      best = s;
    } else if (g > second_gain) {
      second_gain = g;
    }
  }
  for (std::size_t s = 0; s < c.size(); ++s) {
    if (c[s] == 0 || f[s] < 2) continue;
    const double loss = double(c[s]) * std::log2(double(f[s]) / (double(f[s]) - 1));
    const double gain = s == best ? second_gain : best_gain;
    ASSERT_LE(gain, loss * (1 + 1e-9)) << "moving a unit from symbol " << s << " lowers the cost";
  }
}

// The bar from issue #2: proportional rounding, then a greedy correction of
// the sum that always makes the cheapest single move. Plain O(A) scans.
std::vector<std::uint32_t> rounding_plus_greedy(const std::vector<std::uint64_t>& c, int scale_bits) {
  const std::int64_t M = std::int64_t(1) << scale_bits;
  double n = 0;
  for (auto x : c) n += double(x);
  std::vector<std::uint32_t> f(c.size(), 0);
  if (n == 0) {  // empty input: the library's convention, nothing to compare
    f[0] = std::uint32_t(M);
    return f;
  }
  std::int64_t sum = 0;
  for (std::size_t s = 0; s < c.size(); ++s) {
    if (c[s] == 0) continue;
    f[s] = std::max<std::uint32_t>(1, std::uint32_t(std::llround(double(c[s]) * double(M) / n)));
    sum += f[s];
  }
  while (sum != M) {
    std::size_t pick = c.size();
    double best = 0;
    for (std::size_t s = 0; s < c.size(); ++s) {
      if (c[s] == 0 || (sum > M && f[s] < 2)) continue;
      const double v = sum < M ? double(c[s]) * std::log2((f[s] + 1.0) / f[s])    // gain, maximise
                               : -double(c[s]) * std::log2(f[s] / (f[s] - 1.0));  // -loss, maximise
      if (pick == c.size() || v > best) {
        best = v;
        pick = s;
      }
    }
    f[pick] += sum < M ? 1 : std::uint32_t(-1);
    sum += sum < M ? 1 : -1;
  }
  return f;
}

enum class shape { uniform, geometric, sparse, huge, ones, spike };

std::vector<std::uint64_t> random_counts(std::mt19937_64& rng, std::uint32_t alphabet, shape kind) {
  std::vector<std::uint64_t> c(alphabet, 0);
  switch (kind) {
    case shape::uniform:
      for (auto& x : c) x = rng() % 1000;
      break;
    case shape::geometric: {
      const double r = 0.5 + 0.5 * double(rng() % 1000) / 1000.0;
      double v = 1e9;
      for (auto& x : c) {
        x = std::uint64_t(v);
        v *= r;
      }
      std::shuffle(c.begin(), c.end(), rng);
      break;
    }
    case shape::sparse:
      for (auto& x : c) x = rng() % 16 == 0 ? 1 + rng() % 100000 : 0;
      break;
    case shape::huge:
      for (auto& x : c) x = rng() % (std::uint64_t(1) << 40);
      break;
    case shape::ones:
      for (auto& x : c) x = 1;
      break;
    case shape::spike:
      for (auto& x : c) x = rng() % 3 == 0 ? 1 : 0;
      c[rng() % alphabet] = std::uint64_t(1) << 36;
      break;
  }
  return c;
}

TEST(NormalizeFrequencies, InvariantsAndOptimalityOnRandomHistograms) {
  std::mt19937_64 rng(31);
  for (int trial = 0; trial < 240; ++trial) {
    const int scale_bits = 8 + trial % 9;
    const std::uint32_t M = 1u << scale_bits;
    std::uint32_t alphabet = trial % 4 == 0 ? 1 + std::uint32_t(rng() % 4096) : 1 + std::uint32_t(rng() % 300);
    const shape kind = shape(trial % 6);
    auto c = random_counts(rng, alphabet, kind);
    // Keep at most M present symbols (the rest is too_many_symbols, tested below).
    std::uint32_t present = 0;
    for (auto& x : c)
      if (x != 0 && ++present > M) x = 0;
    SCOPED_TRACE(::testing::Message() << "trial " << trial << " S " << scale_bits << " alphabet " << alphabet
                                      << " shape " << int(kind));
    const auto f = normalize(c, scale_bits);
    check_invariants(c, f, scale_bits);
    check_no_improving_exchange(c, f);
    const double ours = cost_bits(c, f, scale_bits);
    const double bar = cost_bits(c, rounding_plus_greedy(c, scale_bits), scale_bits);
    EXPECT_LE(ours, bar * (1 + 1e-12) + 1e-9);
    const double h = ecq::entropy_bits_per_symbol(c.data(), alphabet);
    const double e = ecq::expected_bits_per_symbol(c.data(), f.data(), alphabet, scale_bits);
    EXPECT_GE(e, h - 1e-12) << "no table beats the entropy";
  }
}

TEST(NormalizeFrequencies, AllSlotsUsedWhenPresentEqualsM) {
  for (int scale_bits : {1, 4, 8, 12}) {
    const std::uint32_t M = 1u << scale_bits;
    const std::uint32_t absent = scale_bits < 12 ? 3 : 0;  // 4096 symbols is the largest alphabet
    std::vector<std::uint64_t> c(M + absent, 0);
    std::mt19937_64 rng{std::uint64_t(scale_bits)};
    for (std::uint32_t s = 0; s < M; ++s) c[s + absent] = 1 + rng() % 1000000;
    const auto f = normalize(c, scale_bits);
    for (std::uint32_t s = 0; s < M + absent; ++s) ASSERT_EQ(f[s], s < absent ? 0u : 1u) << s;
  }
}

// Every table with f_s >= 1 exactly for present symbols and sum M.
void for_each_table(const std::vector<std::uint64_t>& c, std::uint32_t M,
                    const std::function<void(const std::vector<std::uint32_t>&)>& visit) {
  std::vector<std::uint32_t> f(c.size(), 0);
  std::function<void(std::size_t, std::uint32_t)> rec = [&](std::size_t s, std::uint32_t left) {
    if (s == c.size()) {
      if (left == 0) visit(f);
      return;
    }
    if (c[s] == 0) {
      f[s] = 0;
      rec(s + 1, left);
      return;
    }
    std::uint32_t later = 0;  // present symbols after s each need at least 1
    for (std::size_t t = s + 1; t < c.size(); ++t) later += c[t] != 0;
    for (std::uint32_t v = 1; v + later <= left; ++v) {
      f[s] = v;
      rec(s + 1, left - v);
    }
  };
  rec(0, M);
}

TEST(NormalizeFrequencies, EqualsExhaustiveSearchForSmallAlphabets) {
  std::mt19937_64 rng(32);
  int checked = 0;
  for (int trial = 0; trial < 400; ++trial) {
    const std::uint32_t alphabet = 1 + std::uint32_t(trial % 5);
    const int scale_bits = 1 + (trial / 5) % 6;
    // S = 6 with five symbols has 595665 tables: only a few of those.
    if (alphabet == 5 && scale_bits == 6 && trial % 20 != 19) continue;
    const std::uint32_t M = 1u << scale_bits;
    std::vector<std::uint64_t> c(alphabet);
    for (auto& x : c) {
      switch (rng() % 5) {
        case 0: x = 0; break;
        case 1: x = 1 + rng() % 3; break;                  // tiny counts
        case 2: x = 1 + rng() % 1000000; break;            // wide spread
        case 3: x = std::uint64_t(1) << (rng() % 40); break;  // extreme skew
        default: x = 1 + rng() % 100;
      }
    }
    std::uint32_t present = 0;
    for (auto x : c) present += x != 0;
    if (present > M) continue;
    SCOPED_TRACE(::testing::Message() << "trial " << trial << " S " << scale_bits << " counts "
                                      << ::testing::PrintToString(c));
    const auto f = normalize(c, scale_bits);
    check_invariants(c, f, scale_bits);
    double best = INFINITY;
    if (present == 0) {
      best = 0;  // empty: any valid table costs nothing
    } else {
      for_each_table(c, M, [&](const std::vector<std::uint32_t>& t) { best = std::min(best, cost_bits(c, t, scale_bits)); });
    }
    double n = 0;
    for (auto x : c) n += double(x);
    const double ours = cost_bits(c, f, scale_bits);
    // Within 1e-9 bits per symbol of the exhaustive optimum.
    ASSERT_LE(ours - best, 1e-9 * std::max(1.0, n)) << "ours " << ours << " optimum " << best;
    ++checked;
  }
  EXPECT_GT(checked, 300);
}

TEST(NormalizeFrequencies, ProportionalCountsGiveProportionalTables) {
  // When c is proportional to a valid table, that table is the unique optimum
  // (its cost is the entropy, which nothing beats).
  EXPECT_THAT(normalize({2, 1, 1}, 2), ElementsAre(2, 1, 1));
  EXPECT_THAT(normalize({30, 10, 0}, 2), ElementsAre(3, 1, 0));
  EXPECT_THAT(normalize({0, 5, 5, 10, 20, 0}, 3), ElementsAre(0, 1, 1, 2, 4, 0));
  const std::uint64_t c[] = {1000, 3000};
  const std::uint32_t f[] = {1024, 3072};
  EXPECT_NEAR(ecq::expected_bits_per_symbol(c, f, 2, 12), ecq::entropy_bits_per_symbol(c, 2), 1e-12);
  EXPECT_NEAR(ecq::normalization_loss(c, f, 2, 12), 0.0, 1e-12);
}

TEST(NormalizeFrequencies, EmptyInputGivesSymbolZeroTheWholeRange) {
  EXPECT_THAT(normalize({0, 0, 0, 0, 0}, 12), ElementsAre(4096, 0, 0, 0, 0));
  EXPECT_THAT(normalize({0}, 1), ElementsAre(2));
}

TEST(NormalizeFrequencies, SingleSymbolGetsTheWholeRange) {
  EXPECT_THAT(normalize({0, 0, 7, 0}, 10), ElementsAre(0, 0, 1024, 0));
  const std::uint64_t c[] = {0, 9};
  const std::uint32_t f[] = {0, 1024};
  EXPECT_EQ(ecq::expected_bits_per_symbol(c, f, 2, 10), 0.0);
  EXPECT_EQ(ecq::normalization_loss(c, f, 2, 10), 0.0);
}

TEST(NormalizeFrequencies, TooManySymbols) {
  std::vector<std::uint64_t> c(257, 1);
  normalize(c, 8, status::too_many_symbols);
  c[100] = 0;
  check_invariants(c, normalize(c, 8), 8);
  normalize({1, 1, 1}, 1, status::too_many_symbols);
  std::vector<std::uint64_t> wide(4096, 5);
  normalize(wide, 11, status::too_many_symbols);
  check_invariants(wide, normalize(wide, 12), 12);
}

TEST(NormalizeFrequencies, InvalidArguments) {
  const std::vector<std::uint64_t> c = {1, 2};
  std::uint32_t f[2];
  EXPECT_EQ(ecq::normalize_frequencies(c.data(), 0, 12, f), status::invalid_argument);
  EXPECT_EQ(ecq::normalize_frequencies(c.data(), 2, 0, f), status::invalid_argument);
  EXPECT_EQ(ecq::normalize_frequencies(c.data(), 2, 17, f), status::invalid_argument);
  std::vector<std::uint64_t> big(4097, 1);
  std::vector<std::uint32_t> fb(4097);
  EXPECT_EQ(ecq::normalize_frequencies(big.data(), 4097, 16, fb.data()), status::invalid_argument);
  EXPECT_EQ(ecq::normalize_frequencies(big.data(), 4096, 16, fb.data()), status::ok);
  EXPECT_EQ(ecq::normalize_frequencies(c.data(), 2, 16, f), status::ok);
}

TEST(NormalizedFrequencies, ConvenienceMatchesAndIsEmptyOnError) {
  std::mt19937_64 rng(33);
  const auto c = random_counts(rng, 200, shape::uniform);
  std::vector<std::uint32_t> f(200);
  ASSERT_EQ(ecq::normalize_frequencies(c.data(), 200, 12, f.data()), status::ok);
  EXPECT_EQ(ecq::normalized_frequencies(c, 12), f);
  EXPECT_THAT(ecq::normalized_frequencies(std::vector<std::uint64_t>(200, 1), 7), IsEmpty());  // 200 > 128 slots
  EXPECT_THAT(ecq::normalized_frequencies({}, 12), IsEmpty());
}

TEST(ExpectedBits, EdgeCases) {
  const std::uint64_t c[] = {3, 1};
  const std::uint32_t missing[] = {4096, 0};
  EXPECT_TRUE(std::isinf(ecq::expected_bits_per_symbol(c, missing, 2, 12)));
  const std::uint64_t none[] = {0, 0};
  const std::uint32_t f[] = {2048, 2048};
  EXPECT_EQ(ecq::expected_bits_per_symbol(none, f, 2, 12), 0.0);
  EXPECT_EQ(ecq::normalization_loss(none, f, 2, 12), 0.0);
  // 3:1 coded as 1:1 costs exactly 1 bit per symbol.
  EXPECT_DOUBLE_EQ(ecq::expected_bits_per_symbol(c, f, 2, 12), 1.0);
  const double h = 2.0 - 0.75 * std::log2(3.0);
  EXPECT_NEAR(ecq::normalization_loss(c, f, 2, 12), 1.0 / h - 1.0, 1e-12);
}

// Expected counts of n draws from a distribution quantised to `levels` bins
// (bin k collects [k - 0.5, k + 0.5), the end bins also the tails), computed
// from the CDF, so the histogram is deterministic.
std::vector<std::uint64_t> quantised_counts(std::uint32_t levels, std::uint64_t n, const std::function<double(double)>& cdf) {
  std::vector<std::uint64_t> c(levels);
  for (std::uint32_t k = 0; k < levels; ++k) {
    const double lo = k == 0 ? 0.0 : cdf(double(k) - 0.5);
    const double hi = k + 1 == levels ? 1.0 : cdf(double(k) + 0.5);
    c[k] = std::uint64_t(std::llround(double(n) * (hi - lo)));
  }
  return c;
}

TEST(NormalizeFrequencies, LossIsSmallForSmoothDistributions) {
  const std::uint64_t n = std::uint64_t(1) << 20;
  for (std::uint32_t levels : {16u, 64u, 256u}) {
    const double mu = (double(levels) - 1) / 2, sigma = double(levels) / 6;
    const auto gauss = quantised_counts(levels, n, [&](double x) { return 0.5 * std::erfc(-(x - mu) / (sigma * std::sqrt(2.0))); });
    const double b = double(levels) / 10;  // Laplace scale
    const auto laplace = quantised_counts(levels, n, [&](double x) {
      return x < mu ? 0.5 * std::exp((x - mu) / b) : 1 - 0.5 * std::exp(-(x - mu) / b);
    });
    for (const auto* c : {&gauss, &laplace}) {
      for (int scale_bits : {12, 14}) {
        const auto f = normalize(*c, scale_bits);
        const double loss = ecq::normalization_loss(c->data(), f.data(), levels, scale_bits);
        // Issue #2 asks for <= 0.05% at S = 12; more slots can only help.
        EXPECT_LE(loss, 5e-4) << "levels " << levels << " S " << scale_bits << (c == &gauss ? " gauss" : " laplace");
        EXPECT_GE(loss, 0.0);
      }
    }
  }
}

}  // namespace
