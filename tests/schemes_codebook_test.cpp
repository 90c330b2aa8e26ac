// Tests for include/ecq/schemes/codebook.hpp: the built-in NF4 table, the
// quantiser against an exhaustive nearest-entry search (NF4 and an unsorted
// user table), the dequantiser, and input and side-data validation.
#include <ecq/schemes/codebook.hpp>
#include <ecq/schemes/scheme.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "schemes_test_weights.hpp"

namespace {

using ecq::status;

ecq::codebook_params params(int bits, std::uint32_t group, int cps = 1, int raw = 0) {
  ecq::codebook_params p;
  p.bits = bits;
  p.group_size = group;
  p.codes_per_symbol = cps;
  p.raw_bits = raw;
  return p;
}

std::vector<std::uint16_t> u16s(const ecq::side_section* s) {
  std::vector<std::uint16_t> v(s->bytes.size() / 2);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::uint16_t(s->bytes[2 * i] | s->bytes[2 * i + 1] << 8);
  return v;
}

TEST(Codebook, Nf4TableIsSortedSpansMinusOneToOneAndHasZero) {
  for (int i = 1; i < 16; ++i) EXPECT_LT(ecq::nf4_table[i - 1], ecq::nf4_table[i]);
  EXPECT_EQ(ecq::nf4_table[0], -1.0f);
  EXPECT_EQ(ecq::nf4_table[15], 1.0f);
  EXPECT_EQ(ecq::nf4_table[7], 0.0f);
}

void check_nearest(const ecq_test::test_tensor& t, const ecq::codebook_params& p, const std::vector<float>& table) {
  ecq::quantized_tensor q;
  std::vector<std::uint8_t> codes;
  ASSERT_EQ(ecq::codebook_quantize(t.w.data(), t.rows, t.cols, p, table, &q, &codes), status::ok);
  const std::vector<float> tb = table.empty() ? std::vector<float>(ecq::nf4_table, ecq::nf4_table + 16) : table;
  const auto scales = u16s(q.find(ecq::section_tag::scales));
  const std::uint64_t gpr = (t.cols + p.group_size - 1) / p.group_size;
  std::vector<float> back;
  ASSERT_EQ(ecq::dequantize(q, &back), status::ok);
  for (std::uint64_t r = 0; r < t.rows; ++r)
    for (std::uint64_t c = 0; c < t.cols; ++c) {
      const std::uint64_t g = c / p.group_size;
      float absmax = 0;
      for (std::uint64_t k = g * p.group_size; k < std::min<std::uint64_t>(t.cols, (g + 1) * p.group_size); ++k)
        absmax = std::max(absmax, std::fabs(t.w[r * t.cols + k]));
      ASSERT_EQ(scales[r * gpr + g], ecq::float_to_f16(absmax));
      const float s = ecq::f16_to_float(scales[r * gpr + g]);
      const double x = double(t.w[r * t.cols + c]) / s;
      double best = INFINITY;
      for (float e : tb) best = std::min(best, std::fabs(x - e));
      const int code = codes[r * t.cols + c];
      ASSERT_LE(std::fabs(x - tb[std::size_t(code)]), best + 1e-6);
      ASSERT_EQ(back[r * t.cols + c], tb[std::size_t(code)] * s);
    }
}

TEST(Codebook, Nf4QuantiserPicksTheNearestEntry) {
  check_nearest(ecq_test::synthetic_tensor(6, 192, 1), params(4, 64), {});
  check_nearest(ecq_test::synthetic_tensor(3, 100, 2), params(4, 32, 2, 1), {});  // partial group, packing
}

TEST(Codebook, UserTablesNeedNotBeSorted) {
  std::vector<float> table = {0.5f, -1.0f, 0.0f, 1.0f, -0.25f, 0.125f, -0.5f, 0.75f};
  check_nearest(ecq_test::synthetic_tensor(4, 128, 3), params(3, 128), table);
  std::vector<float> twobit = {1.0f, -1.0f, 0.1f, -0.1f};
  check_nearest(ecq_test::synthetic_tensor(4, 64, 4), params(2, 32, 4, 1), twobit);
}

TEST(Codebook, TableTravelsAsASection) {
  const auto t = ecq_test::synthetic_tensor(2, 64, 5);
  ecq::quantized_tensor q;
  ASSERT_EQ(ecq::codebook_quantize(t.w.data(), t.rows, t.cols, params(4, 64), {}, &q), status::ok);
  const ecq::side_section* s = q.find(ecq::section_tag::codebook);
  ASSERT_NE(s, nullptr);
  ASSERT_EQ(s->bytes.size(), 64u);
  for (int i = 0; i < 16; ++i) EXPECT_EQ(ecq::detail::load_f32(s->bytes.data() + 4 * i), ecq::nf4_table[i]);
  EXPECT_EQ(q.kind, ecq::scheme_kind::codebook);
  EXPECT_EQ(q.find(ecq::section_tag::biases), nullptr);
}

TEST(Codebook, ZeroGroupsAndBadInput) {
  std::vector<float> w(64, 0.0f);
  ecq::quantized_tensor q;
  std::vector<std::uint8_t> codes;
  ASSERT_EQ(ecq::codebook_quantize(w.data(), 1, 64, params(4, 64), {}, &q, &codes), status::ok);
  EXPECT_THAT(codes, ::testing::Each(7));  // the entry 0.0
  EXPECT_EQ(ecq::codebook_quantize(w.data(), 1, 64, params(3, 64), {}, &q), status::invalid_argument)
      << "no built-in 3-bit table";
  EXPECT_EQ(ecq::codebook_quantize(w.data(), 1, 64, params(2, 64), {0, 1, 2}, &q), status::invalid_argument);
  EXPECT_EQ(ecq::codebook_quantize(w.data(), 1, 64, params(2, 64), {0, 1, 2, NAN}, &q), status::invalid_argument);
  w[0] = INFINITY;
  EXPECT_EQ(ecq::codebook_quantize(w.data(), 1, 64, params(4, 64), {}, &q), status::invalid_argument);
}

TEST(Codebook, FactoryChecksSideData) {
  const auto t = ecq_test::synthetic_tensor(3, 64, 6);
  const auto p = params(4, 64);
  ecq::quantized_tensor q;
  ASSERT_EQ(ecq::codebook_quantize(t.w.data(), t.rows, t.cols, p, {}, &q), status::ok);
  ecq::codebook_dequantizer<ecq::symbol_packing<4, 1, 0>> dq{};
  ASSERT_EQ(ecq::make_codebook_dequantizer(p, ecq::quantized_tensor_sections{&q}, ecq::geometry_of(q), &dq),
            status::ok);
  for (auto tag : {ecq::section_tag::scales, ecq::section_tag::codebook}) {
    ecq::quantized_tensor r = q;
    for (auto& s : r.sections)
      if (s.tag == tag) s.bytes.pop_back();
    EXPECT_EQ(ecq::make_codebook_dequantizer(p, ecq::quantized_tensor_sections{&r}, ecq::geometry_of(r), &dq),
              status::bad_shape);
  }
  EXPECT_EQ(ecq::make_codebook_dequantizer(params(4, 64, 2), ecq::quantized_tensor_sections{&q}, ecq::geometry_of(q),
                                           &dq),
            status::invalid_argument);
}

TEST(Codebook, RealWeightsSqnrIsCloseToAffine) {
  // Both spend 4 bits per code; NF4 has half the side data (no bias) and a
  // grid shaped for bell-shaped groups. On trained weights their SQNR is
  // within 2 dB of each other (QLoRA's observation).
  auto tensors = ecq_test::real_tensors("stories260K.safetensors");
  if (tensors.empty()) GTEST_SKIP() << "no real weights in " << ECQ_SHARED_DATA_DIR;
  double sig = 0, n_nf4 = 0, n_aff = 0;
  for (const auto& t : tensors) {
    ecq::quantized_tensor qn, qa;
    ASSERT_EQ(ecq::codebook_quantize(t.w.data(), t.rows, t.cols, params(4, 64), {}, &qn), status::ok);
    ecq::affine_params ap;
    ASSERT_EQ(ecq::affine_quantize(t.w.data(), t.rows, t.cols, ap, &qa), status::ok);
    std::vector<float> wn, wa;
    ASSERT_EQ(ecq::dequantize(qn, &wn), status::ok);
    ASSERT_EQ(ecq::dequantize(qa, &wa), status::ok);
    for (std::size_t i = 0; i < t.w.size(); ++i) {
      sig += double(t.w[i]) * t.w[i];
      n_nf4 += (double(t.w[i]) - wn[i]) * (double(t.w[i]) - wn[i]);
      n_aff += (double(t.w[i]) - wa[i]) * (double(t.w[i]) - wa[i]);
    }
  }
  EXPECT_NEAR(10 * std::log10(sig / n_nf4), 10 * std::log10(sig / n_aff), 2.0);
}

}  // namespace
