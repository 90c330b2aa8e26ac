// Tests for include/ecq/schemes/float16.hpp: every bf16 and binary16 pattern
// survives split -> dequantise bit for bit, float32 input is rounded to
// nearest-even first, the raw plane layout is one byte per weight, and the
// factory checks the geometry and the plane size.
#include <ecq/schemes/float16.hpp>
#include <ecq/schemes/scheme.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "schemes_test_weights.hpp"

namespace {

using ecq::float16_format;
using ecq::status;

template <float16_format F>
void check_every_pattern() {
  std::vector<std::uint16_t> h(65536);
  for (std::uint32_t i = 0; i < 65536; ++i) h[i] = std::uint16_t(i * 40503u);  // a permutation (40503 is odd)
  ecq::quantized_tensor q;
  ecq::float16_encode(h.data(), 256, 256, F, &q);
  EXPECT_EQ(q.kind, F == float16_format::bfloat16 ? ecq::scheme_kind::bf16 : ecq::scheme_kind::f16);
  EXPECT_EQ(q.alphabet_size, 256u);
  EXPECT_EQ(q.raw_bits_per_symbol, 8u);
  EXPECT_TRUE(q.params.empty());
  ecq::float16_dequantizer<F> dq{};
  ASSERT_EQ(ecq::make_float16_dequantizer(ecq::quantized_tensor_sections{&q}, ecq::geometry_of(q), &dq), status::ok);
  for (std::uint64_t r = 0; r < 256; ++r)
    for (std::uint64_t c = 0; c < 256; ++c) {
      const std::uint16_t want = h[r * 256 + c];
      const std::uint32_t sym = q.symbols[r * 256 + c];
      ASSERT_EQ(sym, (want >> 7) & 0xffu);
      ASSERT_EQ(dq.bits(r, c, sym), want);
      float w;
      dq(r, c, sym, &w);
      const float expect = F == float16_format::bfloat16 ? ecq::bf16_to_float(want) : ecq::f16_to_float(want);
      if (std::isnan(expect)) {
        ASSERT_TRUE(std::isnan(w));
      } else {
        ASSERT_EQ(std::memcmp(&w, &expect, 4), 0);
      }
    }
  // Raw byte i of the plane: sign << 7 | the 7 low bits.
  const std::uint32_t word = q.raw_plane[0];
  for (int k = 0; k < 4; ++k) EXPECT_EQ((word >> (8 * k)) & 0xffu, std::uint32_t((h[std::size_t(k)] >> 8 & 0x80) | (h[std::size_t(k)] & 0x7f)));
}

TEST(Float16, EveryBf16PatternRoundTrips) { check_every_pattern<float16_format::bfloat16>(); }
TEST(Float16, EveryF16PatternRoundTrips) { check_every_pattern<float16_format::binary16>(); }

TEST(Float16, Float32InputIsRoundedToNearestEven) {
  auto tensors = ecq_test::real_tensors("stories260K.safetensors");
  tensors.push_back(ecq_test::synthetic_tensor(9, 33, 1));
  for (const auto& t : tensors) {
    for (auto f : {float16_format::bfloat16, float16_format::binary16}) {
      ecq::quantized_tensor q;
      std::vector<std::uint16_t> rounded;
      ecq::float16_quantize(t.w.data(), t.rows, t.cols, f, &q, &rounded);
      std::vector<float> back;
      ASSERT_EQ(ecq::dequantize(q, &back), status::ok);
      for (std::size_t i = 0; i < t.w.size(); ++i) {
        ASSERT_EQ(rounded[i], ecq::float_to_float16(t.w[i], f));
        ASSERT_EQ(back[i], ecq::float16_to_float(rounded[i], f)) << t.name << " " << i;
      }
    }
  }
}

TEST(Float16, FactoryChecksGeometryAndPlane) {
  std::vector<std::uint16_t> h(15, 0x3f80);
  ecq::quantized_tensor q;
  ecq::float16_encode(h.data(), 3, 5, float16_format::bfloat16, &q);
  EXPECT_EQ(q.raw_plane.size(), 4u);  // 15 bytes in whole words
  ecq::float16_dequantizer<float16_format::bfloat16> dq{};
  const ecq::quantized_tensor_sections lookup{&q};
  ASSERT_EQ(ecq::make_float16_dequantizer(lookup, ecq::geometry_of(q), &dq), status::ok);
  auto g = ecq::geometry_of(q);
  g.rows = 5;
  EXPECT_EQ(ecq::make_float16_dequantizer(lookup, g, &dq), status::bad_shape);
  g = ecq::geometry_of(q);
  g.symbols_per_row = 3;
  EXPECT_EQ(ecq::make_float16_dequantizer(lookup, g, &dq), status::bad_shape);
  ecq::quantized_tensor none = q;
  none.sections.clear();
  EXPECT_EQ(ecq::make_float16_dequantizer(ecq::quantized_tensor_sections{&none}, ecq::geometry_of(q), &dq),
            status::bad_shape);
}

TEST(Float16, RealBf16ExponentsCarryFewBits) {
  // The premise of the scheme: trained weights use few exponents.
  auto tensors = ecq_test::real_tensors("stories260K.safetensors");
  if (tensors.empty()) GTEST_SKIP() << "no real weights in " << ECQ_SHARED_DATA_DIR;
  std::vector<std::uint64_t> counts(256, 0);
  for (const auto& t : tensors) {
    ecq::quantized_tensor q;
    ecq::float16_quantize(t.w.data(), t.rows, t.cols, float16_format::bfloat16, &q);
    for (auto s : q.symbols) ++counts[s];
  }
  EXPECT_LT(ecq::entropy_bits_per_symbol(counts.data(), 256), 4.0);
}

}  // namespace
