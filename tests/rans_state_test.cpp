// Tests for include/ecq/rans_state.hpp: the derived parameters of every
// documented configuration, each single-state operation against a textbook
// (division-based, ryg_rans-style) reference, and a one-state encode/decode
// round trip that exercises multi-word renormalisation.
#include <ecq/rans_state.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

__extension__ typedef unsigned __int128 u128;

template <class P>
using state_t = typename P::state_type;
template <class P>
using word_t = typename P::word_type;

// ---------------------------------------------------------------------------
// Parameters, from the rules in the header: U = 2^(StateBits-1),
// L = U >> WordBits, K = StateBits / WordBits, ceil(S / WordBits) words per
// symbol at most.
struct expected_params {
  int state_bits, word_bits, scale_bits;
  std::uint64_t upper, lower;
  int words_per_state, max_words_per_symbol, renorm_shift;
};

template <class P>
void check_params(const expected_params& e) {
  SCOPED_TRACE(::testing::Message() << "state " << e.state_bits << " word " << e.word_bits << " S " << e.scale_bits);
  EXPECT_EQ(P::state_bits, e.state_bits);
  EXPECT_EQ(P::word_bits, e.word_bits);
  EXPECT_EQ(P::scale_bits, e.scale_bits);
  EXPECT_EQ(std::uint64_t(P::upper_bound), e.upper);
  EXPECT_EQ(std::uint64_t(P::lower_bound), e.lower);
  EXPECT_EQ(P::words_per_state, e.words_per_state);
  EXPECT_EQ(P::max_words_per_symbol, e.max_words_per_symbol);
  EXPECT_EQ(P::renorm_shift, e.renorm_shift);
  EXPECT_EQ(P::total_frequency, 1u << e.scale_bits);
  EXPECT_EQ(P::slot_mask, (1u << e.scale_bits) - 1);
  EXPECT_EQ(std::uint64_t(P::word_mask), (std::uint64_t(1) << e.word_bits) - 1);
  EXPECT_LE(std::uint64_t(P::total_frequency), std::uint64_t(P::lower_bound)) << "M <= L";
  EXPECT_EQ(std::uint64_t(ecq::rans_init<P>()), e.lower);
}

TEST(RansParams, DocumentedConfigurations) {
  check_params<ecq::rans32x8<12>>({32, 8, 12, 1ull << 31, 1ull << 23, 4, 2, 19});
  check_params<ecq::rans32x16<12>>({32, 16, 12, 1ull << 31, 1ull << 15, 2, 1, 19});
  check_params<ecq::rans64x16<12>>({64, 16, 12, 1ull << 63, 1ull << 47, 4, 1, 51});
  check_params<ecq::rans64x32<12>>({64, 32, 12, 1ull << 63, 1ull << 31, 2, 1, 51});
  // Other ScaleBits: one word per symbol exactly when S <= WordBits.
  check_params<ecq::rans32x8<8>>({32, 8, 8, 1ull << 31, 1ull << 23, 4, 1, 23});
  check_params<ecq::rans32x8<16>>({32, 8, 16, 1ull << 31, 1ull << 23, 4, 2, 15});
  check_params<ecq::rans32x16<15>>({32, 16, 15, 1ull << 31, 1ull << 15, 2, 1, 16});
  check_params<ecq::rans64x16<16>>({64, 16, 16, 1ull << 63, 1ull << 47, 4, 1, 47});
  check_params<ecq::rans64x32<16>>({64, 32, 16, 1ull << 63, 1ull << 31, 2, 1, 47});
  check_params<ecq::rans32x16<4>>({32, 16, 4, 1ull << 31, 1ull << 15, 2, 1, 27});
  static_assert(std::is_same<ecq::rans64x32<12>::word_type, std::uint32_t>::value &&
                    std::is_same<ecq::rans64x32<12>::state_type, std::uint64_t>::value,
                "rans64x32 = 64-bit state, 32-bit words");
}

TEST(RansState, StateRange) {
  using P = ecq::rans32x16<12>;
  EXPECT_FALSE(ecq::rans_state_in_range<P>(P::lower_bound - 1));
  EXPECT_TRUE(ecq::rans_state_in_range<P>(P::lower_bound));
  EXPECT_TRUE(ecq::rans_state_in_range<P>(P::upper_bound - 1));
  EXPECT_FALSE(ecq::rans_state_in_range<P>(P::upper_bound));
  EXPECT_FALSE(ecq::rans_state_in_range<P>(0));
  using Q = ecq::rans64x32<12>;
  EXPECT_FALSE(ecq::rans_state_in_range<Q>(Q::lower_bound - 1));
  EXPECT_TRUE(ecq::rans_state_in_range<Q>(Q::upper_bound - 1));
  EXPECT_FALSE(ecq::rans_state_in_range<Q>(~std::uint64_t(0)));
}

// ---------------------------------------------------------------------------
// detail helpers against wide arithmetic.
TEST(RansDetail, MulHighMatchesWideProduct) {
  std::mt19937_64 rng(3);
  for (int i = 0; i < 100000; ++i) {
    const std::uint64_t a = rng(), b = rng();
    ASSERT_EQ(ecq::detail::mul_high(a, b), std::uint64_t((u128(a) * b) >> 64));
    const std::uint32_t c = std::uint32_t(a), d = std::uint32_t(b >> 32);
    ASSERT_EQ(ecq::detail::mul_high(c, d), std::uint32_t((std::uint64_t(c) * d) >> 32));
  }
  EXPECT_EQ(ecq::detail::mul_high(~std::uint64_t(0), ~std::uint64_t(0)), ~std::uint64_t(0) - 1);
  EXPECT_EQ(ecq::detail::mul_high(~std::uint32_t(0), ~std::uint32_t(0)), ~std::uint32_t(0) - 1);
}

TEST(RansDetail, CeilPow2DivMatchesWideDivision) {
  // The exponents the encoder uses: StateBits - 1 + ceil(log2 f), results below 2^StateBits.
  for (std::uint32_t f = 2; f <= 65536; f += (f < 300 ? 1 : 97)) {
    int shift = 0;
    while ((1u << shift) < f) ++shift;
    for (int n : {31, 63}) {
      const int e = n + shift;
      const u128 num = u128(1) << e;
      const u128 expect = (num + f - 1) / f;
      if (n == 31) {
        ASSERT_EQ(ecq::detail::ceil_pow2_div<std::uint32_t>(e, f), std::uint32_t(expect)) << f;
        ASSERT_LT(expect, u128(1) << 32);
      } else {
        ASSERT_EQ(ecq::detail::ceil_pow2_div<std::uint64_t>(e, f), std::uint64_t(expect)) << f;
        ASSERT_LT(expect, u128(1) << 64);
      }
    }
  }
  EXPECT_EQ(ecq::detail::ceil_pow2_div<std::uint32_t>(0, 1), 1u);
  EXPECT_EQ(ecq::detail::ceil_pow2_div<std::uint32_t>(4, 3), 6u);   // ceil(16 / 3)
  EXPECT_EQ(ecq::detail::ceil_pow2_div<std::uint32_t>(4, 16), 1u);  // exact
}

// ---------------------------------------------------------------------------
// Typed tests over the documented configurations.
template <class P>
class RansStateTyped : public ::testing::Test {};
using configs = ::testing::Types<ecq::rans32x8<12>, ecq::rans32x8<8>, ecq::rans32x16<12>, ecq::rans32x16<15>,
                                 ecq::rans64x16<12>, ecq::rans64x16<16>, ecq::rans64x32<12>, ecq::rans64x32<16>>;
// Readable test names ("rans32x16_S12"); naming the generator also keeps
// clang's -Wpedantic quiet about the macro's empty variadic argument.
struct config_names {
  template <class P>
  static std::string GetName(int) {
    return "rans" + std::to_string(P::state_bits) + "x" + std::to_string(P::word_bits) + "_S" +
           std::to_string(P::scale_bits);
  }
};
TYPED_TEST_SUITE(RansStateTyped, configs, config_names);

// Textbook encoder step (ryg_rans RansEncPut with a division): emit words
// while x >= x_max = ((L >> S) << WordBits) * f, then x = (x/f)*M + x%f + start.
// Words are appended to `emitted` in emission order.
template <class P>
state_t<P> reference_put(state_t<P> x, std::uint32_t start, std::uint32_t freq, std::vector<word_t<P>>& emitted) {
  const state_t<P> x_max = ((P::lower_bound >> P::scale_bits) << P::word_bits) * freq;
  while (x >= x_max) {
    emitted.push_back(word_t<P>(x & P::word_mask));
    x >>= P::word_bits;
  }
  return (x / freq) * P::total_frequency + x % freq + start;
}

template <class P>
state_t<P> random_state(std::mt19937_64& rng) {
  // Log-uniform over [L, U), as the states of a long stream are distributed.
  const int bits = P::state_bits - 1 - P::word_bits + int(rng() % std::uint64_t(P::word_bits));
  const state_t<P> lo = state_t<P>(1) << bits;
  return lo + state_t<P>(rng() % std::uint64_t(lo));
}

TYPED_TEST(RansStateTyped, PutMatchesTextbookStepIncludingRenormalisation) {
  using P = TypeParam;
  using W = word_t<P>;
  std::mt19937_64 rng(P::state_bits * 100 + P::word_bits + P::scale_bits);
  const std::uint32_t M = P::total_frequency;
  for (int i = 0; i < 20000; ++i) {
    std::uint32_t freq;
    switch (i % 4) {
      case 0: freq = 1; break;
      case 1: freq = M; break;
      default: freq = 1 + std::uint32_t(rng() % M);
    }
    const std::uint32_t start = std::uint32_t(rng() % (M - freq + 1));
    const state_t<P> x = i % 7 == 0 ? P::upper_bound - 1 - state_t<P>(rng() % 5) : random_state<P>(rng);
    std::vector<W> expected_words;
    const state_t<P> expected = reference_put<P>(x, start, freq, expected_words);

    std::vector<W> buffer(P::max_words_per_symbol + 1, W(0x5a));
    W* const end = buffer.data() + buffer.size();
    W* p = end;
    const auto e = ecq::encode_symbol<P>::make(start, freq);
    const state_t<P> got = ecq::rans_put<P>(x, e, &p);
    ASSERT_EQ(got, expected) << "x=" << x << " start=" << start << " freq=" << freq;
    ASSERT_TRUE(ecq::rans_state_in_range<P>(got));
    // The stream grows downwards: the first emitted word is highest.
    ASSERT_EQ(std::size_t(end - p), expected_words.size());
    for (std::size_t k = 0; k < expected_words.size(); ++k) ASSERT_EQ(end[-1 - std::ptrdiff_t(k)], expected_words[k]);
    // Speculative stores stay in the slots the caller reserved ((*p)[-1] and
    // above); the word before that is never touched.
    if (p - buffer.data() >= 2) {
      EXPECT_EQ(p[-2], W(0x5a));
    }
  }
}

TYPED_TEST(RansStateTyped, AdvanceStaysInRangeForAnyEntry) {
  using P = TypeParam;
  std::mt19937_64 rng(11);
  for (int i = 0; i < 20000; ++i) {
    const state_t<P> x = i % 3 == 0 ? (i % 2 ? P::lower_bound : P::upper_bound - 1) : random_state<P>(rng);
    const std::uint32_t freq = 1 + std::uint32_t(rng() % P::total_frequency);
    const std::uint32_t offset = std::uint32_t(rng() % freq);
    const state_t<P> y = ecq::rans_advance<P>(x, freq, offset);
    ASSERT_EQ(y, state_t<P>(freq) * (x >> P::scale_bits) + offset);
    ASSERT_GE(y, state_t<P>(1));
    ASSERT_LT(y, P::upper_bound);
    ASSERT_GE(y, P::lower_bound >> P::scale_bits) << "one refill of max_words_per_symbol words suffices";
  }
}

TYPED_TEST(RansStateTyped, RenormalizeShiftsWordsInMostSignificantFirst) {
  using P = TypeParam;
  using W = word_t<P>;
  std::mt19937_64 rng(12);
  for (int i = 0; i < 2000; ++i) {
    // Every state a decode step can produce: [L >> S, U).
    const state_t<P> lo = P::lower_bound >> P::scale_bits;
    const state_t<P> x = i < 3 ? (i == 0 ? lo : i == 1 ? P::lower_bound - 1 : P::lower_bound)
                               : lo + state_t<P>(rng() % std::uint64_t(P::upper_bound - lo));
    std::vector<W> words(P::max_words_per_symbol + 1);
    for (auto& w : words) w = W(rng());
    std::size_t reads = 0;
    const state_t<P> y = ecq::rans_renormalize<P>(x, [&] { return words[reads++]; });
    state_t<P> expected = x;
    std::size_t expected_reads = 0;
    while (expected < P::lower_bound) expected = (expected << P::word_bits) | words[expected_reads++];
    ASSERT_EQ(y, expected) << "x=" << x;
    ASSERT_EQ(reads, expected_reads);
    ASSERT_LE(reads, std::size_t(P::max_words_per_symbol));
    ASSERT_TRUE(ecq::rans_state_in_range<P>(y));
  }
}

TYPED_TEST(RansStateTyped, FlushAndLoadStateAreInverse) {
  using P = TypeParam;
  using W = word_t<P>;
  std::mt19937_64 rng(13);
  for (int i = 0; i < 1000; ++i) {
    const state_t<P> x = i == 0 ? P::lower_bound : i == 1 ? P::upper_bound - 1 : random_state<P>(rng);
    std::vector<W> emitted;
    ecq::rans_flush<P>(x, [&](W w) { emitted.push_back(w); });
    ASSERT_EQ(emitted.size(), std::size_t(P::words_per_state));
    // Emitted most significant first...
    for (int k = 0; k < P::words_per_state; ++k)
      ASSERT_EQ(emitted[std::size_t(k)], W(x >> ((P::words_per_state - 1 - k) * P::word_bits)));
    // ... so a downward-growing stream holds it least significant word first.
    std::vector<W> stream(emitted.rbegin(), emitted.rend());
    ASSERT_EQ(ecq::rans_load_state<P>(stream.data()), x);
  }
}

TEST(RansState, FlushLayoutByExample) {
  std::vector<std::uint8_t> b;
  ecq::rans_flush<ecq::rans32x8<12>>(0x12345678u, [&](std::uint8_t w) { b.push_back(w); });
  EXPECT_EQ(b, (std::vector<std::uint8_t>{0x12, 0x34, 0x56, 0x78}));
  const std::uint8_t le[] = {0x78, 0x56, 0x34, 0x12};
  EXPECT_EQ(ecq::rans_load_state<ecq::rans32x8<12>>(le), 0x12345678u);
  const std::uint16_t w16[] = {0xcdef, 0x89ab, 0x4567, 0x0123};
  EXPECT_EQ(ecq::rans_load_state<ecq::rans64x16<12>>(w16), 0x0123456789abcdefull);
  const std::uint32_t w32[] = {0x89abcdefu, 0x01234567u};
  EXPECT_EQ(ecq::rans_load_state<ecq::rans64x32<12>>(w32), 0x0123456789abcdefull);
}

// The symbol whose slots [start, start + freq) hold `slot` (frequencies > 0).
std::uint32_t symbol_of_slot(const std::vector<std::uint32_t>& starts, std::uint32_t slot) {
  return std::uint32_t(std::upper_bound(starts.begin(), starts.end(), slot) - starts.begin()) - 1;
}

// One state, many symbols: encode backwards with rans_put, flush, then decode
// forwards with load_state/get/advance/renormalize and check every symbol, the
// final state L and that exactly the written words were read.
template <class P>
void single_state_round_trip(const std::vector<std::uint32_t>& freqs, std::size_t n, std::uint64_t seed,
                             int* max_words_in_one_put) {
  using W = word_t<P>;
  std::vector<std::uint32_t> starts(freqs.size());
  std::uint32_t sum = 0;
  for (std::size_t s = 0; s < freqs.size(); ++s) {
    starts[s] = sum;
    sum += freqs[s];
  }
  ASSERT_EQ(sum, P::total_frequency);
  std::mt19937_64 rng(seed);
  std::vector<std::uint32_t> symbols(n);
  for (auto& s : symbols) {
    // Draw from the table's own distribution.
    const std::uint32_t slot = std::uint32_t(rng() % P::total_frequency);
    s = symbol_of_slot(starts, slot);
  }
  std::vector<ecq::encode_symbol<P>> table;
  for (std::size_t s = 0; s < freqs.size(); ++s) table.push_back(ecq::encode_symbol<P>::make(starts[s], freqs[s]));

  std::vector<W> buffer(n * P::max_words_per_symbol + P::words_per_state + 1);
  W* const end = buffer.data() + buffer.size();
  W* p = end;
  state_t<P> x = ecq::rans_init<P>();
  for (std::size_t i = n; i-- > 0;) {
    W* const before = p;
    x = ecq::rans_put<P>(x, table[symbols[i]], &p);
    *max_words_in_one_put = std::max(*max_words_in_one_put, int(before - p));
    ASSERT_TRUE(ecq::rans_state_in_range<P>(x));
  }
  ecq::rans_flush<P>(x, [&p](W w) { *--p = w; });

  const W* read = p;
  state_t<P> y = ecq::rans_load_state<P>(read);
  read += P::words_per_state;
  ASSERT_EQ(y, x);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t slot = ecq::rans_get<P>(y);
    const std::uint32_t s = symbol_of_slot(starts, slot);
    ASSERT_EQ(s, symbols[i]) << "symbol " << i;
    y = ecq::rans_advance<P>(y, freqs[s], slot - starts[s]);
    y = ecq::rans_renormalize<P>(y, [&read, end] {
      EXPECT_LT(read, end);
      return *read++;
    });
    ASSERT_TRUE(ecq::rans_state_in_range<P>(y));
  }
  EXPECT_EQ(y, ecq::rans_init<P>());
  EXPECT_EQ(read, end);
}

TYPED_TEST(RansStateTyped, SingleStateRoundTrip) {
  using P = TypeParam;
  const std::uint32_t M = P::total_frequency;
  // Symbols of frequency 1 (half of all slots) force the largest renormalisations.
  std::vector<std::uint32_t> skewed(M / 2 + 1, 1);
  skewed[0] = M / 2;
  const std::vector<std::uint32_t> flat(16, M / 16);
  const std::vector<std::uint32_t> single = {M};
  int max_words = 0;
  single_state_round_trip<P>(skewed, 5000, 1, &max_words);
  single_state_round_trip<P>(flat, 5000, 2, &max_words);
  single_state_round_trip<P>(single, 100, 3, &max_words);
  single_state_round_trip<P>(flat, 0, 4, &max_words);
  // The frequency-1 symbols must have triggered the largest renormalisation.
  EXPECT_EQ(max_words, P::max_words_per_symbol);
}

TEST(RansState, MultiWordRenormalisationRoundTrip) {
  // rans32x8<12>: a symbol of frequency 1 moves 12 bits, i.e. two bytes.
  using P = ecq::rans32x8<12>;
  static_assert(P::max_words_per_symbol == 2, "rans32x8<12> needs two-word renormalisation");
  std::vector<std::uint32_t> freqs(4096, 1);
  int max_words = 0;
  single_state_round_trip<P>(freqs, 3000, 5, &max_words);
  EXPECT_EQ(max_words, 2);
  // And by hand: x = 2^30 with f = 1 must emit two bytes (x >= 1 << 19, then
  // x >> 8 = 2^22 >= 2^19 still), leaving x = 2^14, x' = 2^14 * 4096 + start.
  std::uint8_t buffer[3] = {0xaa, 0xaa, 0xaa};
  std::uint8_t* p = buffer + 3;
  const std::uint32_t x = (1u << 30) | 0x1234u;
  const auto y = ecq::rans_put<P>(x, ecq::encode_symbol<P>::make(7, 1), &p);
  EXPECT_EQ(p, buffer + 1);
  EXPECT_EQ(buffer[2], 0x34);  // least significant byte emitted first, highest address
  EXPECT_EQ(buffer[1], 0x12);
  EXPECT_EQ(y, (1u << 14) * 4096u + 7u);
  // Decoding: y's slot is 7, x = 1 * (y >> 12) + 0 = 2^14 < L, two bytes refill it.
  std::uint32_t z = ecq::rans_advance<P>(y, 1, ecq::rans_get<P>(y) - 7);
  const std::uint8_t* r = buffer + 1;
  z = ecq::rans_renormalize<P>(z, [&r] { return *r++; });
  EXPECT_EQ(z, x);
  EXPECT_EQ(r, buffer + 3);
}

}  // namespace
