// Tests for include/ecq/schemes/dequantizer.hpp: code_dequantizer gives the
// codes back for every packing (raw plane included), dequantize_tensor
// drops the padding of a row's last symbol, and the factory checks the raw
// plane and the geometry.
#include <ecq/schemes/dequantizer.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <type_traits>
#include <vector>

namespace {

using ecq::status;

template <class P>
void round_trip(std::uint64_t rows, std::uint64_t cols) {
  std::mt19937 rng(std::uint32_t(rows * 131 + cols));
  std::vector<std::uint8_t> codes(rows * cols);
  for (auto& c : codes) c = std::uint8_t(rng() % (1u << P::code_bits));
  ecq::quantized_tensor q;
  q.rows = rows;
  q.cols = cols;
  ecq::pack_code_rows<P>(codes.data(), rows, cols, &q);
  if (!q.raw_plane.empty()) q.sections.push_back(ecq::detail::u32_section(ecq::section_tag::raw_plane, q.raw_plane));
  const ecq::dequant_geometry g{rows, cols, q.symbols_per_row, q.alphabet_size};
  ecq::code_dequantizer<P> dq{};
  ASSERT_EQ(ecq::make_code_dequantizer(ecq::quantized_tensor_sections{&q}, g, &dq), status::ok);
  static_assert(std::is_trivially_copyable<ecq::code_dequantizer<P>>::value, "views are passed by value");
  std::vector<int> back(rows * cols, -1);
  ecq::dequantize_tensor(dq, q.symbols.data(), rows, cols, q.symbols_per_row, back.data());
  for (std::size_t i = 0; i < codes.size(); ++i) ASSERT_EQ(back[i], codes[i]) << i;
}

TEST(Dequantizer, CodeDequantizerGivesTheCodesBack) {
  round_trip<ecq::symbol_packing<4, 1, 0>>(3, 17);
  round_trip<ecq::symbol_packing<4, 2, 0>>(3, 17);
  round_trip<ecq::symbol_packing<3, 3, 0>>(4, 10);
  round_trip<ecq::symbol_packing<4, 2, 1>>(5, 9);
  round_trip<ecq::symbol_packing<4, 4, 1>>(2, 31);
  round_trip<ecq::symbol_packing<5, 4, 2>>(2, 30);
}

TEST(Dequantizer, FactoryChecksRawPlaneAndGeometry) {
  using P = ecq::symbol_packing<4, 4, 1>;
  std::vector<std::uint8_t> codes(3 * 10, 5);
  ecq::quantized_tensor q;
  q.rows = 3;
  q.cols = 10;
  ecq::pack_code_rows<P>(codes.data(), 3, 10, &q);
  ecq::code_dequantizer<P> dq{};
  const ecq::dequant_geometry g{3, 10, q.symbols_per_row, q.alphabet_size};
  EXPECT_EQ(ecq::make_code_dequantizer(ecq::quantized_tensor_sections{&q}, g, &dq), status::bad_shape) << "no plane";
  q.sections.push_back(ecq::detail::u32_section(ecq::section_tag::raw_plane, q.raw_plane));
  EXPECT_EQ(ecq::make_code_dequantizer(ecq::quantized_tensor_sections{&q}, g, &dq), status::ok);
  const ecq::dequant_geometry wide{3, 11, q.symbols_per_row, q.alphabet_size};
  EXPECT_EQ(ecq::make_code_dequantizer(ecq::quantized_tensor_sections{&q}, wide, &dq), status::ok)
      << "11 columns make 3 symbols per row too: the same plane";
  const ecq::dequant_geometry more{3, 25, 7, q.alphabet_size};  // 84 raw bits: 3 words, not 2
  EXPECT_EQ(ecq::make_code_dequantizer(ecq::quantized_tensor_sections{&q}, more, &dq), status::bad_shape);
  const ecq::dequant_geometry big{3, 10, q.symbols_per_row, 1u << 13};
  EXPECT_EQ(ecq::make_code_dequantizer(ecq::quantized_tensor_sections{&q}, big, &dq), status::bad_shape);
  ecq::code_dequantizer<ecq::symbol_packing<4, 1, 0>> plain{};
  const ecq::dequant_geometry g1{3, 10, 10, 16};
  EXPECT_EQ(ecq::make_code_dequantizer(ecq::quantized_tensor_sections{&q}, g1, &plain), status::bad_shape)
      << "a raw plane where the packing has none";
}

}  // namespace
