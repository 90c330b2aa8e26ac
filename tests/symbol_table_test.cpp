// Tests for include/ecq/symbol_table.hpp (and encode_symbol from
// ecq/rans_state.hpp, whose reciprocal the encode table holds):
//   * the division-free quotient equals x / freq for every freq in [1, 2^S]
//     and x across the whole state range, including the worst cases;
//   * encode and decode tables agree with the cumulative frequencies;
//   * the packed decode entry layout (bit positions, 32- vs 64-bit entries);
//   * validate_frequencies and the build functions reject bad tables.
#include <ecq/symbol_table.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

namespace {

using ecq::status;

template <class P>
using state_t = typename P::state_type;

// x values in [1, U) for divisor f: the ends of the range, the neighbourhoods
// of multiples of f (where floor(x / f) steps), the largest x = k*f - 1 below
// U (the worst case of a rounded-up reciprocal), the encoder's renormalisation
// bound f << renorm_shift, and random values.
template <class P>
std::vector<state_t<P>> probe_values(std::uint32_t f, std::mt19937_64& rng, int random_count) {
  using S = state_t<P>;
  const S U = P::upper_bound;
  std::vector<S> xs = {1, 2, 3, U - 1, U - 2, P::lower_bound, P::lower_bound - 1};
  for (S k : {S(1), S(2), S(3), S(1000)}) {
    const S m = k * f;
    if (m + 1 < U) {
      if (m > 1) xs.push_back(m - 1);
      xs.push_back(m);
      xs.push_back(m + 1);
    }
  }
  const S top = (U - 1) / f;  // largest k with k*f <= U - 1
  for (S k = top; k + 8 > top && k >= 2; --k) {
    xs.push_back(k * f - 1);
    if (k * f < U) xs.push_back(k * f);
  }
  const S bound = S(f) << P::renorm_shift;  // x < bound when the encoder divides
  if (bound <= U) {
    xs.push_back(bound - 1);
    xs.push_back(bound - S(f));
  }
  for (int i = 0; i < random_count; ++i) {
    const int bits = 1 + int(rng() % std::uint64_t(P::state_bits - 1));
    xs.push_back(S(1) + S(rng() % std::uint64_t((S(1) << bits) - 1)));
  }
  return xs;
}

template <class P>
void check_reciprocals(std::uint32_t f_first, std::uint32_t f_last, std::uint32_t f_step, int random_count) {
  using S = state_t<P>;
  const std::uint32_t M = P::total_frequency;
  std::mt19937_64 rng(P::state_bits + 7 * P::scale_bits + f_first);
  for (std::uint32_t f = f_first; f <= f_last; f += f_step) {
    const std::uint32_t start = M - f;  // any start with start + f <= M
    const auto e = ecq::encode_symbol<P>::make(start, f);
    ASSERT_EQ(e.freq, f);
    ASSERT_EQ(e.cmpl_freq, M - f);
    for (const S x : probe_values<P>(f, rng, random_count)) {
      if (f == 1) {
        // The all-ones multiplier yields x - 1; put adds it back through the bias.
        ASSERT_EQ(ecq::detail::mul_high(x, e.rcp_freq) >> e.rcp_shift, x - 1) << "x=" << x;
      } else {
        ASSERT_EQ(ecq::detail::mul_high(x, e.rcp_freq) >> e.rcp_shift, x / f) << "f=" << f << " x=" << x;
      }
      // The complete step for every x the encoder divides (after renormalisation, x < f << renorm_shift):
      // (x / f) * M + x % f + start, computed with a division.
      if (x < (S(f) << P::renorm_shift)) {
        const S q = ecq::detail::mul_high(x, e.rcp_freq) >> e.rcp_shift;
        ASSERT_EQ(S(x + e.bias + q * e.cmpl_freq), (x / f) * M + x % f + start) << "f=" << f << " x=" << x;
      }
    }
  }
}

TEST(EncodeSymbol, ReciprocalIsExactForEveryFrequencyAtScaleBits12) {
  check_reciprocals<ecq::rans32x16<12>>(1, 4096, 1, 24);
  check_reciprocals<ecq::rans32x8<12>>(1, 4096, 1, 24);
  check_reciprocals<ecq::rans64x16<12>>(1, 4096, 1, 24);
  check_reciprocals<ecq::rans64x32<12>>(1, 4096, 1, 24);
}

TEST(EncodeSymbol, ReciprocalSpotChecksAtScaleBits16) {
  check_reciprocals<ecq::rans32x8<16>>(1, 65536, 61, 40);
  check_reciprocals<ecq::rans32x8<16>>(65500, 65536, 1, 40);
  check_reciprocals<ecq::rans64x32<16>>(1, 65536, 127, 40);
  check_reciprocals<ecq::rans32x16<15>>(1, 32768, 31, 40);
}

TEST(EncodeSymbol, FieldsByDefinition) {
  using P = ecq::rans32x16<12>;
  const auto one = ecq::encode_symbol<P>::make(100, 1);
  EXPECT_EQ(one.rcp_freq, ~std::uint32_t(0));
  EXPECT_EQ(one.rcp_shift, 0u);
  EXPECT_EQ(one.bias, 100u + 4096u - 1u);
  const auto three = ecq::encode_symbol<P>::make(5, 3);
  EXPECT_EQ(three.rcp_shift, 1u);  // ceil(log2 3) - 1
  EXPECT_EQ(three.rcp_freq, 0xAAAAAAABu);  // ceil(2^33 / 3)
  EXPECT_EQ(three.bias, 5u);
  const auto all = ecq::encode_symbol<P>::make(0, 4096);
  EXPECT_EQ(all.cmpl_freq, 0u);
  EXPECT_EQ(all.rcp_shift, 11u);
  const auto none = ecq::encode_symbol<P>::make(7, 0);
  EXPECT_EQ(none.freq, 0u);
  static_assert(std::is_trivially_copyable<ecq::encode_symbol<P>>::value, "encode entries are copied to devices");
  static_assert(ecq::encode_symbol<P>::make(0, 3).rcp_freq == 0xAAAAAAABu, "make is constexpr");
}

// ---------------------------------------------------------------------------
template <class P>
void check_encode_table(const std::vector<std::uint32_t>& freqs) {
  ecq::encode_table<P> t;
  ASSERT_EQ(t.build(freqs.data(), std::uint32_t(freqs.size())), status::ok);
  ASSERT_EQ(t.alphabet_size(), freqs.size());
  std::uint32_t start = 0;
  for (std::uint32_t s = 0; s < freqs.size(); ++s) {
    const auto& e = t[s];
    EXPECT_EQ(&e, t.data() + s);
    EXPECT_EQ(e.freq, freqs[s]);
    if (freqs[s] >= 1) {
      const auto expected = ecq::encode_symbol<P>::make(start, freqs[s]);
      EXPECT_EQ(e.bias, expected.bias);
      EXPECT_EQ(e.rcp_freq, expected.rcp_freq);
      EXPECT_EQ(e.bias, freqs[s] == 1 ? start + P::total_frequency - 1 : start) << s;
    }
    start += freqs[s];
  }
}

std::vector<std::uint32_t> random_table(std::mt19937_64& rng, std::uint32_t alphabet, int scale_bits,
                                        bool allow_zeros) {
  // Random positive weights (some zero), then fix the sum by moving units.
  const std::uint32_t M = 1u << scale_bits;
  std::vector<std::uint32_t> f(alphabet, 0);
  std::uint32_t sum = 0;
  for (std::uint32_t s = 0; s < alphabet; ++s) {
    if (allow_zeros && s != 0 && rng() % 3 == 0) continue;
    f[s] = 1;
    ++sum;
  }
  while (sum < M) {
    const std::uint32_t s = std::uint32_t(rng() % alphabet);
    if (f[s] == 0) continue;
    const std::uint32_t add = std::min<std::uint32_t>(M - sum, 1 + std::uint32_t(rng() % (M / 8 + 1)));
    f[s] += add;
    sum += add;
  }
  return f;
}

TEST(EncodeTable, EntriesFollowCumulativeFrequencies) {
  std::mt19937_64 rng(21);
  for (int trial = 0; trial < 50; ++trial) {
    const std::uint32_t alphabet = 1 + std::uint32_t(rng() % 256);
    check_encode_table<ecq::rans32x16<12>>(random_table(rng, alphabet, 12, true));
    check_encode_table<ecq::rans64x32<16>>(random_table(rng, alphabet, 16, true));
  }
}

TEST(EncodeTable, BuildRejectsBadTables) {
  ecq::encode_table<ecq::rans32x16<12>> t;
  const std::uint32_t short_sum[] = {4000, 95};
  EXPECT_EQ(t.build(short_sum, 2), status::corrupt_table);
  const std::uint32_t long_sum[] = {4000, 97};
  EXPECT_EQ(t.build(long_sum, 2), status::corrupt_table);
  EXPECT_EQ(t.build(long_sum, 0), status::invalid_argument);
}

// ---------------------------------------------------------------------------
TEST(DecodeEntryLayout, EntryTypeFollowsTheBitBudget) {
  static_assert(std::is_same<ecq::decode_entry_layout<12, 8>::entry_type, std::uint32_t>::value, "12+12+8 = 32");
  static_assert(std::is_same<ecq::decode_entry_layout<11, 10>::entry_type, std::uint32_t>::value, "11+11+10 = 32");
  static_assert(std::is_same<ecq::decode_entry_layout<15, 2>::entry_type, std::uint32_t>::value, "15+15+2 = 32");
  static_assert(std::is_same<ecq::decode_entry_layout<12, 9>::entry_type, std::uint64_t>::value, "33 bits");
  static_assert(std::is_same<ecq::decode_entry_layout<12, 12>::entry_type, std::uint64_t>::value,
                "12-bit symbols at S = 12 need 64-bit entries");
  static_assert(std::is_same<ecq::decode_entry_layout<16, 8>::entry_type, std::uint64_t>::value, "40 bits");
  static_assert(std::is_same<ecq::decode_entry_layout<12, 8>::symbol_type, std::uint8_t>::value, "8-bit symbols");
  static_assert(std::is_same<ecq::decode_entry_layout<12, 9>::symbol_type, std::uint16_t>::value, "9-bit symbols");
  SUCCEED();
}

TEST(DecodeEntryLayout, BitPositionsAreFrozen) {
  // [offset:S][freq-1:S][symbol], least significant first.
  using L8 = ecq::decode_entry_layout<12, 8>;
  EXPECT_EQ(L8::pack(0xAB, 0x123 + 1, 0x456), 0xAB123456u);
  EXPECT_EQ(L8::symbol(0xAB123456u), 0xABu);
  EXPECT_EQ(L8::freq(0xAB123456u), 0x124u);
  EXPECT_EQ(L8::offset(0xAB123456u), 0x456u);
  EXPECT_EQ(L8::pack(0, 4096, 0), 0x00FFF000u);  // freq = M is stored as M - 1
  using L12 = ecq::decode_entry_layout<12, 12>;
  EXPECT_EQ(L12::pack(0xFFF, 4096, 0xFFF), 0xFFFFFFFFFull);
  EXPECT_EQ(L12::pack(0xABC, 1, 0), 0xABCull << 24);
  EXPECT_EQ(L12::symbol(0xABC000001ull), 0xABCu);
  using L16 = ecq::decode_entry_layout<16, 8>;
  EXPECT_EQ(L16::pack(0x5A, 65536, 0x1234), (0x5Aull << 32) | (0xFFFFull << 16) | 0x1234u);
  EXPECT_EQ(L16::freq(L16::pack(0x5A, 65536, 0x1234)), 65536u);
}

template <int S, int B>
void check_layout_round_trip(std::mt19937_64& rng) {
  using L = ecq::decode_entry_layout<S, B>;
  for (int i = 0; i < 10000; ++i) {
    const std::uint32_t symbol = std::uint32_t(rng() % (1u << B));
    const std::uint32_t freq = 1 + std::uint32_t(rng() % (1u << S));
    const std::uint32_t offset = std::uint32_t(rng() % freq);
    const auto e = L::pack(symbol, freq, offset);
    ASSERT_EQ(L::symbol(e), symbol);
    ASSERT_EQ(L::freq(e), freq);
    ASSERT_EQ(L::offset(e), offset);
  }
}

TEST(DecodeEntryLayout, PackUnpackRoundTrip) {
  std::mt19937_64 rng(22);
  check_layout_round_trip<12, 8>(rng);
  check_layout_round_trip<12, 12>(rng);
  check_layout_round_trip<11, 10>(rng);
  check_layout_round_trip<16, 8>(rng);
  check_layout_round_trip<8, 8>(rng);
  check_layout_round_trip<15, 2>(rng);
}

template <int S, int B>
void check_decode_table(const std::vector<std::uint32_t>& freqs) {
  using T = ecq::decode_table<S, B>;
  using L = typename T::layout;
  T t;
  ASSERT_EQ(t.build(freqs.data(), std::uint32_t(freqs.size())), status::ok);
  const auto v = t.view();
  EXPECT_EQ(v.entries, t.data());
  EXPECT_EQ(t.size_bytes(), (std::size_t(1) << S) * sizeof(typename T::entry_type));
  std::uint32_t slot = 0;
  for (std::uint32_t s = 0; s < freqs.size(); ++s) {
    for (std::uint32_t k = 0; k < freqs[s]; ++k, ++slot) {
      const auto e = v[slot];
      ASSERT_EQ(L::symbol(e), s) << "slot " << slot;
      ASSERT_EQ(L::freq(e), freqs[s]) << "slot " << slot;
      ASSERT_EQ(L::offset(e), k) << "slot " << slot;
    }
  }
  ASSERT_EQ(slot, 1u << S);
}

TEST(DecodeTable, EntriesAreConsistentWithFrequencies) {
  std::mt19937_64 rng(23);
  for (int trial = 0; trial < 30; ++trial) {
    check_decode_table<12, 8>(random_table(rng, 1 + std::uint32_t(rng() % 256), 12, true));
    check_decode_table<8, 8>(random_table(rng, 1 + std::uint32_t(rng() % 256), 8, true));
    check_decode_table<16, 8>(random_table(rng, 1 + std::uint32_t(rng() % 256), 16, true));
    check_decode_table<12, 12>(random_table(rng, 1 + std::uint32_t(rng() % 4096), 12, true));
  }
  check_decode_table<12, 8>(std::vector<std::uint32_t>{4096});
  check_decode_table<12, 8>(std::vector<std::uint32_t>{0, 0, 4096, 0});
}

TEST(DecodeTable, FullTwelveBitAlphabetUsesSixtyFourBitEntries) {
  using T = ecq::decode_table<12, 12>;
  static_assert(std::is_same<T::entry_type, std::uint64_t>::value, "36-bit entries");
  std::vector<std::uint32_t> freqs(4096, 1);
  check_decode_table<12, 12>(freqs);
  T t;
  ASSERT_EQ(t.build(freqs.data(), 4096), status::ok);
  EXPECT_EQ(t.size_bytes(), 4096u * 8u);
  EXPECT_EQ(t.data()[4095], 0xFFFull << 24);  // symbol 4095, freq 1 (stored 0), offset 0
}

TEST(DecodeTable, BuildRejectsBadTables) {
  ecq::decode_table<12, 8> t;
  std::vector<std::uint32_t> freqs(257, 0);
  freqs[0] = 4096;
  EXPECT_EQ(t.build(freqs.data(), 257), status::invalid_argument) << "257 symbols do not fit 8-bit symbols";
  EXPECT_EQ(t.build(freqs.data(), 256), status::ok);
  freqs[1] = 1;
  EXPECT_EQ(t.build(freqs.data(), 256), status::corrupt_table);
  EXPECT_EQ(t.build(freqs.data(), 0), status::invalid_argument);
}

TEST(DecodeTable, ViewIsTriviallyCopyable) {
  static_assert(std::is_trivially_copyable<ecq::decode_table_view<12, 8>>::value, "views are passed to kernels by value");
  static_assert(std::is_trivially_copyable<ecq::decode_table_view<12, 12>>::value, "views are passed to kernels by value");
  static_assert(ecq::decode_table_view<12, 8>::size == 4096, "2^S slots");
  SUCCEED();
}

// ---------------------------------------------------------------------------
TEST(ValidateFrequencies, AcceptsExactSums) {
  const std::uint32_t a[] = {4096};
  EXPECT_EQ(ecq::validate_frequencies(a, 1, 12), status::ok);
  const std::uint32_t b[] = {0, 1, 4095, 0};
  EXPECT_EQ(ecq::validate_frequencies(b, 4, 12), status::ok);
  const std::uint32_t c[] = {1, 1};
  EXPECT_EQ(ecq::validate_frequencies(c, 2, 1), status::ok);
  std::vector<std::uint32_t> d(4096, 16);
  EXPECT_EQ(ecq::validate_frequencies(d.data(), 4096, 16), status::ok);
  static constexpr std::uint32_t e[] = {2, 2};
  static_assert(ecq::validate_frequencies(e, 2, 2) == status::ok, "usable in constant expressions");
}

TEST(ValidateFrequencies, RejectsBadTables) {
  const std::uint32_t short_sum[] = {1, 4094};
  EXPECT_EQ(ecq::validate_frequencies(short_sum, 2, 12), status::corrupt_table);
  const std::uint32_t long_sum[] = {1, 4096};
  EXPECT_EQ(ecq::validate_frequencies(long_sum, 2, 12), status::corrupt_table);
  const std::uint32_t too_big[] = {4097};
  EXPECT_EQ(ecq::validate_frequencies(too_big, 1, 12), status::corrupt_table);
  // An entry near 2^32 would wrap a 32-bit sum back to 2^S.
  const std::uint32_t wrapping[] = {0xFFFFFFFFu, 4097};
  EXPECT_EQ(ecq::validate_frequencies(wrapping, 2, 12), status::corrupt_table);
  const std::uint32_t zeros[] = {0, 0};
  EXPECT_EQ(ecq::validate_frequencies(zeros, 2, 12), status::corrupt_table);
}

TEST(ValidateFrequencies, RejectsBadArguments) {
  std::vector<std::uint32_t> f(4097, 0);
  f[0] = 4096;
  EXPECT_EQ(ecq::validate_frequencies(f.data(), 0, 12), status::invalid_argument);
  EXPECT_EQ(ecq::validate_frequencies(f.data(), 4097, 12), status::invalid_argument);
  EXPECT_EQ(ecq::validate_frequencies(f.data(), 4096, 12), status::ok);
  EXPECT_EQ(ecq::validate_frequencies(f.data(), 300, 12, 256), status::invalid_argument);
  EXPECT_EQ(ecq::validate_frequencies(f.data(), 256, 12, 256), status::ok);
  const std::uint32_t one[] = {1};
  EXPECT_EQ(ecq::validate_frequencies(one, 1, 0), status::invalid_argument);
  const std::uint32_t big[] = {1u << 17};
  EXPECT_EQ(ecq::validate_frequencies(big, 1, 17), status::invalid_argument);
}

}  // namespace
