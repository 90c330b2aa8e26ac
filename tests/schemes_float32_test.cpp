// Tests for include/ecq/schemes/float32.hpp: float32 patterns of every kind
// (NaNs with payloads of both signs, infinities, subnormals, negative zero,
// normals) survive encode -> container -> checked decode bit for bit; the
// split puts the exponent in the symbol, sign and top mantissa in the raw
// plane and the low halves in their own section; the factory checks the
// geometry and both sections; real weights cost less than 32 bits each.
#include <ecq/schemes/float32.hpp>
#include <ecq/schemes/scheme.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "schemes_test_weights.hpp"
#include "support/ecq_test_support.hpp"

namespace {

using ecq::status;

/// Special patterns first, then random bits (every exponent, every payload).
std::vector<std::uint32_t> awkward_patterns(std::size_t n) {
  std::vector<std::uint32_t> u = {
      0x00000000u, 0x80000000u,  // +0, -0
      0x7f800000u, 0xff800000u,  // +inf, -inf
      0x7fc00000u, 0xffc00001u,  // quiet NaNs, one with a payload and the sign set
      0x7f800001u, 0x7fbfffffu,  // signalling NaNs (lowest and highest payload)
      0x00000001u, 0x807fffffu,  // smallest and largest subnormal (negative)
      0x00800000u, 0x7f7fffffu,  // smallest normal, largest finite
      0x3f800000u, 0xbf800001u,  // 1, -1 - ulp
  };
  std::mt19937 rng(15);
  while (u.size() < n) u.push_back(std::uint32_t(rng()));
  return u;
}

TEST(Float32, EveryKindOfPatternRoundTripsThroughTheContainer) {
  const std::uint64_t rows = 37, cols = 29;  // padding rows, a width that is no multiple of 4
  const std::vector<std::uint32_t> u = awkward_patterns(std::size_t(rows * cols));
  ecq::quantized_tensor q;
  ecq::float32_encode(u.data(), rows, cols, &q);
  EXPECT_EQ(q.kind, ecq::scheme_kind::f32);
  EXPECT_EQ(q.alphabet_size, 256u);
  EXPECT_EQ(q.raw_bits_per_symbol, 8u);
  EXPECT_TRUE(q.params.empty());
  ASSERT_NE(q.find(ecq::section_tag::low_halves), nullptr);
  EXPECT_EQ(q.find(ecq::section_tag::low_halves)->item_size, 2u);
  for (std::size_t i = 0; i < u.size(); ++i) ASSERT_EQ(q.symbols[i], (u[i] >> 23) & 0xffu) << i;
  for (auto goal : {ecq::layout_goal::storage, ecq::layout_goal::kernel}) {
    ecq::encoded_tensor e;
    ASSERT_EQ(ecq_test::encode_quantized(q, ecq::choose_coding_options(q, goal), &e), status::ok);
    ecq::encoded_tensor opened;
    ASSERT_EQ(ecq::encoded_tensor::open(e.data(), e.size(), &opened), status::ok);
    EXPECT_EQ(opened.geometry().scheme_id, 6u);
    std::vector<std::uint16_t> symbols(std::size_t(rows * cols));
    ASSERT_EQ(ecq_test::decode_checked(opened, symbols.data(), symbols.size()), status::ok);
    const ecq::encoded_tensor_view v = opened.view();
    ecq::float32_dequantizer dq{};
    ASSERT_EQ(ecq::make_float32_dequantizer(ecq::container_sections{&v}, ecq::geometry_of(opened.geometry()), &dq),
              status::ok);
    for (std::uint64_t r = 0; r < rows; ++r)
      for (std::uint64_t c = 0; c < cols; ++c) {
        const std::size_t i = std::size_t(r * cols + c);
        ASSERT_EQ(dq.bits(r, c, symbols[i]), u[i]) << r << "," << c;
        float w;
        dq(r, c, symbols[i], &w);
        std::uint32_t got;
        std::memcpy(&got, &w, 4);
        ASSERT_EQ(got, u[i]) << "the float keeps the pattern, NaN payloads included";
      }
    // The generic path through visit_dequantizer gives the same floats.
    std::vector<float> w;
    ASSERT_EQ(ecq_test::decode_and_dequantize(opened, &w), status::ok);
    ASSERT_EQ(w.size(), u.size());
    EXPECT_EQ(std::memcmp(w.data(), u.data(), 4 * u.size()), 0);
  }
}

TEST(Float32, FloatInputIsTakenAsItsBits) {
  const auto t = ecq_test::synthetic_tensor(9, 33, 4);
  ecq::scheme_spec spec;
  ASSERT_EQ(ecq::parse_scheme("f32", &spec), status::ok);
  EXPECT_TRUE(spec.lossless());
  EXPECT_EQ(spec.name(), "f32");
  ecq::quantized_tensor q;
  ASSERT_EQ(ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q), status::ok);
  std::vector<float> back;
  ASSERT_EQ(ecq::dequantize(q, &back), status::ok);
  ASSERT_EQ(back.size(), t.w.size());
  EXPECT_EQ(std::memcmp(back.data(), t.w.data(), 4 * back.size()), 0);
}

TEST(Float32, FactoryChecksGeometryAndBothSections) {
  const std::vector<std::uint32_t> u = awkward_patterns(15);
  ecq::quantized_tensor q;
  ecq::float32_encode(u.data(), 3, 5, &q);
  EXPECT_EQ(q.raw_plane.size(), 4u);  // 15 bytes in whole words
  EXPECT_EQ(q.find(ecq::section_tag::low_halves)->bytes.size(), 30u);
  const ecq::quantized_tensor_sections lookup{&q};
  ecq::float32_dequantizer dq{};
  ASSERT_EQ(ecq::make_float32_dequantizer(lookup, ecq::geometry_of(q), &dq), status::ok);
  auto g = ecq::geometry_of(q);
  g.rows = 4;
  EXPECT_EQ(ecq::make_float32_dequantizer(lookup, g, &dq), status::bad_shape);
  g = ecq::geometry_of(q);
  g.symbols_per_row = 4;
  EXPECT_EQ(ecq::make_float32_dequantizer(lookup, g, &dq), status::bad_shape);
  g = ecq::geometry_of(q);
  g.alphabet_size = 257;
  EXPECT_EQ(ecq::make_float32_dequantizer(lookup, g, &dq), status::bad_shape);
  for (ecq::section_tag drop : {ecq::section_tag::raw_plane, ecq::section_tag::low_halves}) {
    ecq::quantized_tensor less = q;
    less.sections.erase(less.sections.begin() + (drop == ecq::section_tag::raw_plane ? 0 : 1));
    EXPECT_EQ(ecq::make_float32_dequantizer(ecq::quantized_tensor_sections{&less}, ecq::geometry_of(q), &dq),
              status::bad_shape);
  }
  ecq::quantized_tensor shorter = q;
  shorter.sections[1].bytes.resize(28);
  EXPECT_EQ(ecq::make_float32_dequantizer(ecq::quantized_tensor_sections{&shorter}, ecq::geometry_of(q), &dq),
            status::bad_shape);
}

TEST(Float32, RealWeightsCodeBelow32Bits) {
  const auto tensors = ecq_test::real_tensors("stories260K.safetensors");
  if (tensors.empty()) GTEST_SKIP() << "no real weights in " << ECQ_SHARED_DATA_DIR;
  std::uint64_t weights = 0, bytes = 0;
  for (const auto& t : tensors) {
    ecq::quantized_tensor q;
    ecq::float32_quantize(t.w.data(), t.rows, t.cols, &q);
    ecq::encoded_tensor e;
    ASSERT_EQ(ecq_test::encode_quantized(q, ecq::choose_coding_options(q, ecq::layout_goal::storage), &e), status::ok);
    std::vector<float> w;
    ASSERT_EQ(ecq_test::decode_and_dequantize(e, &w), status::ok);
    ASSERT_EQ(std::memcmp(w.data(), t.w.data(), 4 * w.size()), 0) << t.name;
    weights += t.w.size();
    bytes += e.size();
  }
  // 24 raw bits per weight plus the exponents' code (about 2.6 bits) plus the containers' fixed costs.
  const double bits = 8.0 * double(bytes) / double(weights);
  EXPECT_GT(bits, 24.0);
  EXPECT_LT(bits, 28.0);
}

}  // namespace
