// Tests for include/ecq/schemes/quantized_tensor.hpp: row-wise packing of
// codes into symbols and the row-major raw plane against a bit-by-bit
// reference, the packings visit_code_packing supports, shape folding, SQNR.
#include <ecq/schemes/quantized_tensor.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <set>
#include <tuple>
#include <vector>

namespace {

template <class P>
void check_packing(std::uint64_t rows, std::uint64_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::uint8_t> codes(rows * cols);
  for (auto& c : codes) c = std::uint8_t(rng() % (1u << P::code_bits));
  ecq::quantized_tensor q;
  ecq::pack_code_rows<P>(codes.data(), rows, cols, &q);
  const std::uint64_t spr = (cols + P::codes_per_symbol - 1) / P::codes_per_symbol;
  ASSERT_EQ(q.symbols_per_row, spr);
  ASSERT_EQ(q.symbols.size(), rows * spr);
  ASSERT_EQ(q.alphabet_size, 1u << (P::codes_per_symbol * (P::code_bits - P::raw_bits)));
  ASSERT_EQ(q.raw_plane.size(), (rows * spr * P::raw_bits_per_symbol + 31) / 32);
  const int h = P::code_bits - P::raw_bits;
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t s = 0; s < spr; ++s) {
      std::uint32_t sym = 0, raw = 0;
      for (int j = 0; j < P::codes_per_symbol; ++j) {
        const std::uint64_t c = s * P::codes_per_symbol + std::uint64_t(j);
        const std::uint32_t code = c < cols ? codes[r * cols + c] : 0;  // zero codes past the row's end
        sym |= (code >> P::raw_bits) << (j * h);
        raw |= (code & ((1u << P::raw_bits) - 1)) << (j * P::raw_bits);
      }
      const std::uint64_t i = r * spr + s;
      ASSERT_EQ(q.symbols[i], sym);
      std::uint32_t got = 0;  // bit by bit from the plane, least significant first
      for (int b = 0; b < P::raw_bits_per_symbol; ++b) {
        const std::uint64_t bit = i * P::raw_bits_per_symbol + std::uint64_t(b);
        got |= ((q.raw_plane[bit / 32] >> (bit % 32)) & 1u) << b;
      }
      ASSERT_EQ(got, raw);
    }
}

TEST(QuantizedTensor, PackCodeRowsMatchesReference) {
  check_packing<ecq::symbol_packing<4, 1, 0>>(3, 7, 1);
  check_packing<ecq::symbol_packing<4, 2, 0>>(3, 7, 2);
  check_packing<ecq::symbol_packing<4, 3, 0>>(5, 10, 3);
  check_packing<ecq::symbol_packing<4, 2, 1>>(4, 9, 4);
  check_packing<ecq::symbol_packing<4, 4, 1>>(6, 13, 5);
  check_packing<ecq::symbol_packing<5, 4, 2>>(2, 33, 6);
  check_packing<ecq::symbol_packing<8, 1, 0>>(2, 5, 7);
  check_packing<ecq::symbol_packing<2, 3, 0>>(3, 11, 8);
}

TEST(QuantizedTensor, VisitCodePackingListsTheSupportedPairs) {
  std::set<std::tuple<int, int, int>> seen;
  for (int bits = 1; bits <= 9; ++bits)
    for (int c = 0; c <= 5; ++c)
      for (int r = 0; r <= 3; ++r) {
        const bool ok = ecq::visit_code_packing(bits, c, r, [&](auto p) {
          using P = decltype(p);
          EXPECT_EQ(P::code_bits, bits);
          EXPECT_EQ(P::codes_per_symbol, c);
          EXPECT_EQ(P::raw_bits, r);
        });
        if (ok) seen.insert({bits, c, r});
        const bool listed = (c == 1 && r == 0) || (c == 2 && r == 0) || (c == 3 && r == 0) || (c == 2 && r == 1) ||
                            (c == 4 && r == 1) || (c == 4 && r == 2);
        const bool fits = bits >= 2 && bits <= 8 && r < bits && (bits - r) * c <= 12;
        EXPECT_EQ(ok, listed && fits) << bits << " " << c << " " << r;
      }
  EXPECT_TRUE(seen.count({4, 2, 0}));
  EXPECT_TRUE(seen.count({4, 4, 1}));
  EXPECT_FALSE(seen.count({8, 2, 0})) << "16-bit symbols exceed the 4096-symbol alphabets";
}

TEST(QuantizedTensor, ShapesFoldIntoRowsAndLastDimension) {
  EXPECT_EQ(ecq::shape_rows({5, 172, 64}), 860u);
  EXPECT_EQ(ecq::shape_cols({5, 172, 64}), 64u);
  EXPECT_EQ(ecq::shape_rows({512}), 1u);
  EXPECT_EQ(ecq::shape_cols({512}), 512u);
  EXPECT_EQ(ecq::shape_rows({}), 1u);
  EXPECT_EQ(ecq::shape_cols({}), 1u);
  EXPECT_EQ(ecq::shape_rows({3, 0, 4}), 0u);
}

TEST(QuantizedTensor, SqnrDb) {
  const float a[4] = {1, -1, 1, -1}, b[4] = {1.1f, -1, 1, -1};
  const double d = double(1.1f) - 1.0;
  EXPECT_NEAR(ecq::sqnr_db(a, b, 4), 10 * std::log10(4.0 / (d * d)), 1e-9);
  EXPECT_TRUE(std::isinf(ecq::sqnr_db(a, a, 4)));
}

TEST(QuantizedTensor, SideBytesCountEverySection) {
  ecq::quantized_tensor q;
  q.params = {1, 2, 3};
  q.sections.push_back(ecq::detail::u16_section(ecq::section_tag::scales, {1, 2, 3}));
  q.sections.push_back(ecq::detail::u32_section(ecq::section_tag::raw_plane, {7}));
  EXPECT_EQ(q.side_bytes(), 10u);
  ASSERT_NE(q.find(ecq::section_tag::raw_plane), nullptr);
  EXPECT_THAT(q.find(ecq::section_tag::raw_plane)->bytes, ::testing::ElementsAre(7, 0, 0, 0));
  EXPECT_EQ(q.find(ecq::section_tag::steps), nullptr);
  // Tags and kinds are stored in containers: frozen.
  EXPECT_EQ(int(ecq::section_tag::raw_plane), 1);
  EXPECT_EQ(int(ecq::section_tag::codebook), 5);
  EXPECT_EQ(int(ecq::scheme_kind::affine), 1);
  EXPECT_EQ(int(ecq::scheme_kind::uniform), 5);
}

}  // namespace
