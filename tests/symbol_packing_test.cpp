// Tests for include/ecq/symbol_packing.hpp: pack/unpack are exact inverses,
// pack agrees with an independent bit-by-bit reference, and the bit positions
// of the symbol and raw fields are frozen by small hand-worked examples.
#include <ecq/symbol_packing.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;

// Reference: assemble symbols and the raw plane one bit at a time, straight
// from the layout described in the header comment.
template <int CodeBits, int CodesPerSymbol, int RawBits>
void reference_pack(const std::vector<std::uint8_t>& codes, std::vector<std::uint32_t>& symbols,
                    std::vector<std::uint32_t>& plane) {
  const int high = CodeBits - RawBits;
  const std::size_t groups = (codes.size() + CodesPerSymbol - 1) / CodesPerSymbol;
  symbols.assign(groups, 0);
  plane.assign((groups * CodesPerSymbol * RawBits + 31) / 32, 0);
  for (std::size_t i = 0; i < codes.size(); ++i) {
    const std::size_t g = i / CodesPerSymbol;
    const int j = int(i % CodesPerSymbol);
    for (int b = 0; b < CodeBits; ++b) {
      const std::uint32_t bit = (codes[i] >> b) & 1u;
      if (b < RawBits) {
        const std::size_t pos = g * CodesPerSymbol * RawBits + std::size_t(j) * RawBits + std::size_t(b);
        plane[pos / 32] |= bit << (pos % 32);
      } else {
        symbols[g] |= bit << (j * high + (b - RawBits));
      }
    }
  }
}

template <class Packing>
void check_round_trip(std::mt19937_64& rng, std::size_t n) {
  using symbol_type = typename Packing::symbol_type;
  std::vector<std::uint8_t> codes(n);
  for (auto& c : codes) c = std::uint8_t(rng() & ((1u << Packing::code_bits) - 1));

  const std::size_t groups = Packing::symbol_count(n);
  ASSERT_EQ(groups, (n + Packing::codes_per_symbol - 1) / Packing::codes_per_symbol);
  // Poison the outputs: pack must overwrite every symbol and plane word.
  std::vector<symbol_type> symbols(groups, symbol_type(~0u));
  std::vector<std::uint32_t> plane(Packing::raw_plane_words(n), 0xdeadbeefu);
  Packing::pack(codes.data(), n, symbols.data(), plane.data());

  std::vector<std::uint32_t> ref_symbols, ref_plane;
  reference_pack<Packing::code_bits, Packing::codes_per_symbol, Packing::raw_bits>(codes, ref_symbols, ref_plane);
  ASSERT_EQ(plane, ref_plane) << "n=" << n;
  for (std::size_t g = 0; g < groups; ++g) {
    ASSERT_EQ(std::uint32_t(symbols[g]), ref_symbols[g]) << "n=" << n << " group " << g;
    ASSERT_LT(std::uint32_t(symbols[g]), Packing::alphabet_size);
  }

  std::vector<std::uint8_t> back(n + 1, 0xee);  // one guard byte past the end
  Packing::unpack(symbols.data(), plane.data(), n, back.data());
  EXPECT_EQ(back[n], 0xee) << "unpack wrote past n";
  back.resize(n);
  EXPECT_EQ(back, codes) << "n=" << n;
}

template <class Packing>
class SymbolPackingRoundTrip : public ::testing::Test {};

using packings = ::testing::Types<ecq::symbol_packing<4, 2, 0>, ecq::symbol_packing<4, 2, 1>,
                                  ecq::symbol_packing<4, 4, 2>, ecq::symbol_packing<2, 4, 0>,
                                  ecq::symbol_packing<8, 1, 0>, ecq::symbol_packing<3, 4, 1>,
                                  ecq::symbol_packing<4, 3, 0>, ecq::symbol_packing<4, 4, 1>,
                                  ecq::symbol_packing<8, 2, 4>, ecq::symbol_packing<5, 8, 4>,
                                  ecq::symbol_packing<4, 1, 1>, ecq::symbol_packing<1, 8, 0>>;
// Readable test names ("code4_per2_raw1"); naming the generator also keeps
// clang's -Wpedantic quiet about the macro's empty variadic argument.
struct packing_names {
  template <class P>
  static std::string GetName(int) {
    return "code" + std::to_string(P::code_bits) + "_per" + std::to_string(P::codes_per_symbol) + "_raw" +
           std::to_string(P::raw_bits);
  }
};
TYPED_TEST_SUITE(SymbolPackingRoundTrip, packings, packing_names);

TYPED_TEST(SymbolPackingRoundTrip, ExactInverseAndMatchesReference) {
  std::mt19937_64 rng(TypeParam::code_bits * 1000 + TypeParam::codes_per_symbol * 10 + TypeParam::raw_bits);
  // Every n up to 70 covers all paddings (partial last groups) and raw-plane
  // word boundaries; then a few larger odd sizes.
  for (std::size_t n = 0; n <= 70; ++n) check_round_trip<TypeParam>(rng, n);
  for (std::size_t n : {999u, 4097u, 10001u}) check_round_trip<TypeParam>(rng, n);
}

TYPED_TEST(SymbolPackingRoundTrip, DerivedConstants) {
  using P = TypeParam;
  EXPECT_EQ(P::high_bits, P::code_bits - P::raw_bits);
  EXPECT_EQ(P::symbol_bits, P::high_bits * P::codes_per_symbol);
  EXPECT_EQ(P::raw_bits_per_symbol, P::raw_bits * P::codes_per_symbol);
  EXPECT_EQ(P::alphabet_size, 1u << P::symbol_bits);
  EXPECT_EQ(sizeof(typename P::symbol_type), P::symbol_bits <= 8 ? 1u : 2u);
  EXPECT_EQ(P::raw_plane_words(0), 0u);
  EXPECT_EQ(P::symbol_count(0), 0u);
  EXPECT_EQ(P::raw_plane_words(std::size_t(P::codes_per_symbol) * 64),
            std::size_t(P::raw_bits_per_symbol) * 64 / 32);
}

// Hand-worked examples. Symbol: code j's high bits at [j*h, (j+1)*h);
// raw field: code j's low bits at [j*R, (j+1)*R); raw field of symbol i at
// plane bits [i*Rs, (i+1)*Rs).
TEST(SymbolPacking, TwoNibblesPerSymbol) {
  using P = ecq::symbol_packing<4, 2, 0>;
  static_assert(P::alphabet_size == 256 && P::raw_bits_per_symbol == 0, "<4,2,0> is a 256-symbol alphabet");
  const std::uint8_t codes[] = {0x3, 0xA, 0xF, 0x1, 0x7};
  std::uint8_t symbols[3];
  P::pack(codes, 5, symbols, nullptr);  // no raw plane: raw_plane_words(5) == 0
  EXPECT_THAT(symbols, ElementsAre(0xA3, 0x1F, 0x07));  // last group padded with a zero code
  EXPECT_EQ(P::raw_plane_words(5), 0u);
  EXPECT_EQ(P::raw_field(nullptr, 2), 0u);
  EXPECT_EQ(P::code(0xA3, 0, 0), 0x3u);
  EXPECT_EQ(P::code(0xA3, 0, 1), 0xAu);
}

TEST(SymbolPacking, HighThreeBitsOfTwoNibblesWithOneRawBitEach) {
  using P = ecq::symbol_packing<4, 2, 1>;
  // 11 = 0b101'1, 6 = 0b011'0: symbol = 0b011'101 = 29, raw = 0b0'1 = 1.
  static constexpr std::uint8_t pair[] = {11, 6};
  static_assert(P::symbol_of(pair) == 29 && P::raw_of(pair) == 1, "frozen <4,2,1> layout");
  EXPECT_EQ(P::code(29, 1, 0), 11u);
  EXPECT_EQ(P::code(29, 1, 1), 6u);

  // 17 groups: raw fields of 2 bits, 16 per word; group 16 sits in word 1, bits 0-1.
  std::vector<std::uint8_t> codes(34, 0);
  codes[0] = 1;   // group 0, raw bit 0
  codes[3] = 1;   // group 1, code 1: raw bit 3 of word 0
  codes[32] = 0;  // group 16, code 0
  codes[33] = 15; // group 16, code 1: high 0b111 -> symbol bits 3-5, raw 1 -> plane word 1 bit 1
  std::vector<std::uint8_t> symbols(P::symbol_count(34));
  std::vector<std::uint32_t> plane(P::raw_plane_words(34));
  ASSERT_EQ(plane.size(), 2u);
  P::pack(codes.data(), 34, symbols.data(), plane.data());
  EXPECT_EQ(plane[0], (1u << 0) | (1u << 3));
  EXPECT_EQ(plane[1], 1u << 1);
  EXPECT_EQ(symbols[16], 0x7u << 3);
  EXPECT_EQ(P::raw_field(plane.data(), 1), 2u);
  EXPECT_EQ(P::raw_field(plane.data(), 16), 2u);
}

TEST(SymbolPacking, FourThreeBitCodesWithOneRawBitEach) {
  using P = ecq::symbol_packing<3, 4, 1>;
  // codes 7,0,5,2: high bits 3,0,2,1 -> 3 | 0<<2 | 2<<4 | 1<<6 = 99; raw bits 1,0,1,0 -> 0b0101 = 5.
  static constexpr std::uint8_t codes[] = {7, 0, 5, 2, 6};
  static_assert(P::symbol_of(codes) == 99 && P::raw_of(codes) == 5, "frozen <3,4,1> layout");
  std::uint8_t symbols[2];
  std::uint32_t plane[1];
  P::pack(codes, 5, symbols, plane);
  // Group 1 is {6, 0, 0, 0}: symbol 3, raw 0, at plane bits [4, 8).
  EXPECT_THAT(symbols, ElementsAre(99, 3));
  EXPECT_EQ(plane[0], 5u);
  std::uint8_t back[5];
  P::unpack(symbols, plane, 5, back);
  EXPECT_THAT(back, ElementsAreArray(codes));
}

TEST(SymbolPacking, ThirtyTwoRawBitsPerSymbolUseWholeWords) {
  using P = ecq::symbol_packing<5, 8, 4>;
  static_assert(P::raw_bits_per_symbol == 32 && P::raw_field_mask == 0xffffffffu, "a full-word raw field");
  std::vector<std::uint8_t> codes(16);
  for (int i = 0; i < 16; ++i) codes[std::size_t(i)] = std::uint8_t(i + 16 * (i % 2));  // low nibble i, high bit i%2
  std::uint8_t symbols[2];
  std::uint32_t plane[2];
  P::pack(codes.data(), 16, symbols, plane);
  EXPECT_EQ(plane[0], 0x76543210u);
  EXPECT_EQ(plane[1], 0xfedcba98u);
  EXPECT_EQ(symbols[0], 0xAAu);  // high bits 0,1,0,1,...
  EXPECT_EQ(P::raw_field(plane, 1), 0xfedcba98u);
}

TEST(SymbolPacking, BitsAboveCodeBitsAreIgnored) {
  using P = ecq::symbol_packing<4, 2, 1>;
  const std::uint8_t dirty[] = {0xFB, 0x36};  // low nibbles 0xB, 0x6
  const std::uint8_t clean[] = {0x0B, 0x06};
  EXPECT_EQ(P::symbol_of(dirty), P::symbol_of(clean));
  EXPECT_EQ(P::raw_of(dirty), P::raw_of(clean));
}

TEST(SymbolPacking, PartialGroupTreatsMissingCodesAsZero) {
  using P = ecq::symbol_packing<4, 4, 2>;
  const std::uint8_t full[] = {0xD, 0x6, 0, 0};
  EXPECT_EQ(P::symbol_of(full, 2), P::symbol_of(full));
  EXPECT_EQ(P::raw_of(full, 2), P::raw_of(full));
  // 0xD = 0b11'01, 0x6 = 0b01'10: symbol 0b01'11 = 7, raw 0b10'01 = 9.
  EXPECT_EQ(P::symbol_of(full, 2), 7u);
  EXPECT_EQ(P::raw_of(full, 2), 9u);
}

}  // namespace
