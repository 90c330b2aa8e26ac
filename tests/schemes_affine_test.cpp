// Tests for include/ecq/schemes/affine.hpp: the quantiser against an
// exhaustive-search reference in MLX's layout, the dequantiser for every
// supported packing, lossless re-encoding of packed codes (nibbles and MLX
// uint32 words) through a real container, parameter blocks, and the checks
// the dequantiser factory makes on untrusted side data.
#include <ecq/schemes/affine.hpp>
#include <ecq/schemes/scheme.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "schemes_test_weights.hpp"
#include "support/ecq_test_support.hpp"

namespace {

using ecq::status;

ecq::affine_params params(int bits, std::uint32_t group, int cps = 1, int raw = 0,
                          ecq::float16_format f = ecq::float16_format::binary16) {
  ecq::affine_params p;
  p.bits = bits;
  p.group_size = group;
  p.codes_per_symbol = cps;
  p.raw_bits = raw;
  p.side_format = f;
  return p;
}

// The codes back from a quantized tensor, through code_dequantizer.
std::vector<std::uint8_t> codes_of(const ecq::quantized_tensor& q, const ecq::affine_params& p) {
  std::vector<std::uint8_t> codes(std::size_t(q.rows * q.cols));
  bool visited = ecq::visit_code_packing(p.bits, p.codes_per_symbol, p.raw_bits, [&](auto packing) {
    ecq::code_dequantizer<decltype(packing)> dq{};
    ASSERT_EQ(ecq::make_code_dequantizer(ecq::quantized_tensor_sections{&q}, ecq::geometry_of(q), &dq), status::ok);
    ecq::dequantize_tensor(dq, q.symbols.data(), q.rows, q.cols, q.symbols_per_row, codes.data());
  });
  EXPECT_TRUE(visited);
  return codes;
}

std::vector<std::uint16_t> u16s(const ecq::side_section* s) {
  std::vector<std::uint16_t> v(s->bytes.size() / 2);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::uint16_t(s->bytes[2 * i] | s->bytes[2 * i + 1] << 8);
  return v;
}

TEST(Affine, QuantiserMatchesExhaustiveReferenceInMlxLayout) {
  for (int bits : {2, 3, 4, 8})
    for (std::uint32_t group : {32u, 64u, 128u})
      for (auto fmt : {ecq::float16_format::binary16, ecq::float16_format::bfloat16}) {
        const auto t = ecq_test::synthetic_tensor(5, 200, std::uint32_t(bits * 1000 + group));  // partial last group
        const auto p = params(bits, group, 1, 0, fmt);
        ecq::quantized_tensor q;
        std::vector<std::uint8_t> codes;
        ASSERT_EQ(ecq::affine_quantize(t.w.data(), t.rows, t.cols, p, &q, &codes), status::ok);
        const std::uint64_t gpr = (t.cols + group - 1) / group;
        const auto scales = u16s(q.find(ecq::section_tag::scales)), biases = u16s(q.find(ecq::section_tag::biases));
        ASSERT_EQ(scales.size(), t.rows * gpr);
        const int qmax = (1 << bits) - 1;
        for (std::uint64_t r = 0; r < t.rows; ++r)
          for (std::uint64_t g = 0; g < gpr; ++g) {
            float lo = INFINITY, hi = -INFINITY;
            for (std::uint64_t c = g * group; c < std::min<std::uint64_t>(t.cols, (g + 1) * group); ++c) {
              lo = std::min(lo, t.w[r * t.cols + c]);
              hi = std::max(hi, t.w[r * t.cols + c]);
            }
            // MLX: scale = (max - min) / (2^b - 1), bias = min, stored as 16-bit floats.
            ASSERT_EQ(scales[r * gpr + g], ecq::float_to_float16((hi - lo) / float(qmax), fmt));
            ASSERT_EQ(biases[r * gpr + g], ecq::float_to_float16(lo, fmt));
            const double s = ecq::float16_to_float(scales[r * gpr + g], fmt);
            const double b = ecq::float16_to_float(biases[r * gpr + g], fmt);
            for (std::uint64_t c = g * group; c < std::min<std::uint64_t>(t.cols, (g + 1) * group); ++c) {
              const double w = t.w[r * t.cols + c];
              double best = INFINITY;
              for (int k = 0; k <= qmax; ++k) best = std::min(best, std::fabs(w - (s * k + b)));
              const int code = codes[r * t.cols + c];
              ASSERT_LE(std::fabs(w - (s * code + b)), best + 1e-6 * s) << bits << " " << r << " " << c;
            }
          }
        EXPECT_EQ(codes_of(q, p), codes);
      }
}

TEST(Affine, DequantiserIsScaleTimesCodePlusBiasForEveryPacking) {
  const auto t = ecq_test::synthetic_tensor(7, 131, 5);  // odd width: padded last symbols
  for (int bits = 2; bits <= 8; ++bits)
    for (auto [cps, raw] : {std::pair{1, 0}, {2, 0}, {3, 0}, {2, 1}, {4, 1}, {4, 2}}) {
      const auto p = params(bits, 32, cps, raw);
      if (!p.valid()) continue;
      ecq::quantized_tensor q;
      std::vector<std::uint8_t> codes;
      ASSERT_EQ(ecq::affine_quantize(t.w.data(), t.rows, t.cols, p, &q, &codes), status::ok);
      EXPECT_EQ(q.weights_per_symbol, std::uint32_t(cps));
      EXPECT_EQ(q.raw_bits_per_symbol, std::uint32_t(cps * raw));
      EXPECT_EQ(q.symbols_per_row, (t.cols + cps - 1) / cps);
      EXPECT_EQ(q.find(ecq::section_tag::raw_plane) != nullptr, raw != 0);
      EXPECT_EQ(codes_of(q, p), codes) << bits << " p" << cps << "r" << raw;
      std::vector<float> w;
      ASSERT_EQ(ecq::dequantize(q, &w), status::ok);
      const auto scales = u16s(q.find(ecq::section_tag::scales)), biases = u16s(q.find(ecq::section_tag::biases));
      const std::uint64_t gpr = (t.cols + 31) / 32;
      for (std::uint64_t r = 0; r < t.rows; ++r)
        for (std::uint64_t c = 0; c < t.cols; ++c) {
          const float s = ecq::f16_to_float(scales[r * gpr + c / 32]), b = ecq::f16_to_float(biases[r * gpr + c / 32]);
          ASSERT_EQ(w[r * t.cols + c], s * float(codes[r * t.cols + c]) + b);
        }
    }
}

TEST(Affine, MoreBitsGiveMoreSqnr) {
  auto tensors = ecq_test::real_tensors("stories260K.safetensors");
  if (tensors.empty()) tensors.push_back(ecq_test::synthetic_tensor(64, 256, 9));
  const auto& t = tensors[0];
  double previous = -INFINITY;
  for (int bits = 2; bits <= 8; ++bits) {
    ecq::quantized_tensor q;
    ASSERT_EQ(ecq::affine_quantize(t.w.data(), t.rows, t.cols, params(bits, 64), &q), status::ok);
    std::vector<float> w;
    ASSERT_EQ(ecq::dequantize(q, &w), status::ok);
    const double sqnr = ecq::sqnr_db(t.w.data(), w.data(), w.size());
    // Each extra bit halves the step: about 6 dB, never less than 4.
    EXPECT_GT(sqnr, previous + 4.0) << bits;
    previous = sqnr;
  }
}

TEST(Affine, ConstantGroupsAndBadInput) {
  std::vector<float> w(64, 0.375f);
  ecq::quantized_tensor q;
  std::vector<std::uint8_t> codes;
  ASSERT_EQ(ecq::affine_quantize(w.data(), 1, 64, params(4, 64), &q, &codes), status::ok);
  EXPECT_THAT(codes, ::testing::Each(0));
  std::vector<float> back;
  ASSERT_EQ(ecq::dequantize(q, &back), status::ok);
  EXPECT_THAT(back, ::testing::Each(0.375f));
  w[3] = NAN;
  EXPECT_EQ(ecq::affine_quantize(w.data(), 1, 64, params(4, 64), &q), status::invalid_argument);
  w[3] = 1e6f;  // (max - min) / 15 fits binary16, but the bias... min is 0.375; scale 66666 overflows binary16
  EXPECT_EQ(ecq::affine_quantize(w.data(), 1, 64, params(4, 64), &q), status::invalid_argument);
  EXPECT_EQ(ecq::affine_quantize(w.data(), 1, 64, params(4, 64, 1, 0, ecq::float16_format::bfloat16), &q),
            status::ok);
  EXPECT_EQ(ecq::affine_quantize(w.data(), 1, 64, params(9, 64), &q), status::invalid_argument);
  EXPECT_EQ(ecq::affine_quantize(w.data(), 1, 64, params(4, 48), &q), status::invalid_argument);
  EXPECT_EQ(ecq::affine_quantize(w.data(), 1, 64, params(8, 64, 2, 0), &q), status::invalid_argument);  // 16-bit symbol
}

TEST(Affine, ParameterBlockRoundTripsAndRejectsBadBlocks) {
  const auto p = params(3, 128, 4, 1, ecq::float16_format::bfloat16);
  std::vector<std::uint8_t> b;
  p.serialize(&b);
  ASSERT_EQ(b.size(), ecq::affine_params::serialized_size);
  EXPECT_THAT(b, ::testing::ElementsAre(3, 1, 4, 1, 128, 0, 0, 0));
  ecq::affine_params back;
  ASSERT_EQ(ecq::affine_params::parse(b.data(), b.size(), &back), status::ok);
  EXPECT_EQ(back.bits, 3);
  EXPECT_EQ(back.group_size, 128u);
  EXPECT_EQ(back.codes_per_symbol, 4);
  EXPECT_EQ(back.raw_bits, 1);
  EXPECT_EQ(back.side_format, ecq::float16_format::bfloat16);
  EXPECT_EQ(ecq::affine_params::parse(b.data(), b.size() - 1, &back), status::unsupported_parameters);
  for (std::size_t i = 0; i < b.size(); ++i)
    for (std::uint8_t v : {0, 2, 5, 9, 255}) {
      std::vector<std::uint8_t> c = b;
      c[i] = v;
      ecq::affine_params x;
      const status s = ecq::affine_params::parse(c.data(), c.size(), &x);
      EXPECT_TRUE(s == status::ok || s == status::unsupported_parameters);
      if (s == status::ok) {
        EXPECT_TRUE(x.valid());
      }
    }
}

TEST(Affine, FactoryChecksSideDataAgainstTheGeometry) {
  const auto t = ecq_test::synthetic_tensor(3, 100, 2);
  const auto p = params(4, 32, 2, 1);
  ecq::quantized_tensor q;
  ASSERT_EQ(ecq::affine_quantize(t.w.data(), t.rows, t.cols, p, &q), status::ok);
  using P = ecq::symbol_packing<4, 2, 1>;
  ecq::affine_dequantizer<P> dq{};
  const ecq::quantized_tensor_sections lookup{&q};
  ASSERT_EQ(ecq::make_affine_dequantizer(p, lookup, ecq::geometry_of(q), &dq), status::ok);
  EXPECT_EQ(ecq::make_affine_dequantizer(params(4, 32, 2, 0), lookup, ecq::geometry_of(q), &dq),
            status::invalid_argument);
  auto g = ecq::geometry_of(q);
  g.rows += 1;  // scales too short for one more row
  EXPECT_EQ(ecq::make_affine_dequantizer(p, lookup, g, &dq), status::bad_shape);
  g = ecq::geometry_of(q);
  g.symbols_per_row += 1;
  EXPECT_EQ(ecq::make_affine_dequantizer(p, lookup, g, &dq), status::bad_shape);
  for (auto tag : {ecq::section_tag::scales, ecq::section_tag::biases, ecq::section_tag::raw_plane}) {
    ecq::quantized_tensor r = q;
    for (auto& s : r.sections)
      if (s.tag == tag) s.bytes.resize(s.bytes.size() - 4);
    EXPECT_EQ(ecq::make_affine_dequantizer(p, ecq::quantized_tensor_sections{&r}, ecq::geometry_of(r), &dq),
              status::bad_shape);
  }
}

TEST(Affine, NibblesRoundTripBitExactly) {
  std::mt19937 rng(11);
  for (std::size_t n : {0, 1, 2, 7, 64, 1001}) {
    std::vector<std::uint8_t> packed((n + 1) / 2);
    for (auto& b : packed) b = std::uint8_t(rng());
    if (n % 2) packed.back() &= 0x0f;
    std::vector<std::uint8_t> codes(n), again(packed.size());
    ASSERT_EQ(ecq::unpack_nibbles(packed.data(), n, codes.data()), status::ok);
    for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(codes[i], (packed[i / 2] >> (4 * (i % 2))) & 15) << "low nibble first";
    ecq::pack_nibbles(codes.data(), n, again.data());
    EXPECT_EQ(again, packed);
  }
  const std::uint8_t odd[1] = {0x31};
  std::uint8_t c[1];
  EXPECT_EQ(ecq::unpack_nibbles(odd, 1, c), status::invalid_argument) << "a non-zero padding nibble cannot be repacked";
}

TEST(Affine, MlxWordsRoundTripBitExactly) {
  std::mt19937 rng(12);
  for (int bits : {2, 4, 8}) {
    const std::uint64_t rows = 3, cols = 64;
    const std::uint64_t wpr = ecq::mlx_words_per_row(cols, bits);
    ASSERT_EQ(wpr, cols * std::uint64_t(bits) / 32);
    std::vector<std::uint32_t> words(rows * wpr), again(words.size());
    for (auto& w : words) w = rng();
    std::vector<std::uint8_t> codes(rows * cols);
    ASSERT_EQ(ecq::unpack_mlx_words(words.data(), rows, cols, bits, codes.data()), status::ok);
    // Code c of a row: bits [(c % (32/b)) * b, ...) of word c / (32/b), least significant first.
    EXPECT_EQ(codes[1], (words[0] >> bits) & ((1u << bits) - 1));
    ASSERT_EQ(ecq::pack_mlx_words(codes.data(), rows, cols, bits, again.data()), status::ok);
    EXPECT_EQ(again, words);
  }
  EXPECT_EQ(ecq::mlx_words_per_row(64, 3), 0u);
  EXPECT_EQ(ecq::mlx_words_per_row(12, 4), 0u);
  std::uint8_t c[4];
  std::uint32_t w[1] = {0};
  EXPECT_EQ(ecq::unpack_mlx_words(w, 1, 4, 3, c), status::invalid_argument);
}

TEST(Affine, PackedMlxTensorReencodesLosslesslyThroughTheContainer) {
  // An MLX-quantised tensor (uint32 words + binary16 scales and biases) is
  // unpacked, entropy coded, decoded and repacked bit for bit, with every
  // packing; and one code per symbol takes fewer bytes than the packed words
  // (wider symbols need bigger tables than this small tensor pays back).
  const auto t = ecq_test::synthetic_tensor(40, 256, 21);
  const auto p4 = params(4, 64);
  ecq::quantized_tensor reference;
  std::vector<std::uint8_t> codes;
  ASSERT_EQ(ecq::affine_quantize(t.w.data(), t.rows, t.cols, p4, &reference, &codes), status::ok);
  std::vector<std::uint32_t> words(t.rows * ecq::mlx_words_per_row(t.cols, 4));
  ASSERT_EQ(ecq::pack_mlx_words(codes.data(), t.rows, t.cols, 4, words.data()), status::ok);
  const auto scales = u16s(reference.find(ecq::section_tag::scales));
  const auto biases = u16s(reference.find(ecq::section_tag::biases));

  for (auto [cps, raw] : {std::pair{1, 0}, {2, 0}, {3, 0}, {2, 1}, {4, 1}, {4, 2}}) {
    const auto p = params(4, 64, cps, raw);
    std::vector<std::uint8_t> unpacked(t.rows * t.cols);
    ASSERT_EQ(ecq::unpack_mlx_words(words.data(), t.rows, t.cols, 4, unpacked.data()), status::ok);
    ecq::quantized_tensor q;
    ASSERT_EQ(ecq::affine_from_codes(unpacked.data(), t.rows, t.cols, scales, biases, p, &q), status::ok);
    ecq::encoded_tensor e;
    ASSERT_EQ(ecq_test::encode_quantized(q, ecq::choose_coding_options(q, ecq::layout_goal::storage), &e), status::ok);
    ecq::encoded_tensor opened;
    ASSERT_EQ(ecq::encoded_tensor::open(e.data(), e.size(), &opened), status::ok);
    std::vector<std::uint16_t> symbols(q.symbols.size());
    ASSERT_EQ(ecq_test::decode_checked(opened, symbols.data(), symbols.size()), status::ok);
    ecq::quantized_tensor decoded = q;  // geometry and side data as stored in the container
    decoded.symbols = symbols;
    const auto v = opened.view();
    for (auto& s : decoded.sections) {
      const auto span = ecq::container_sections{&v}(s.tag);
      s.bytes.assign(span.data, span.data + span.size);
    }
    const auto back = codes_of(decoded, p);
    std::vector<std::uint32_t> repacked(words.size());
    ASSERT_EQ(ecq::pack_mlx_words(back.data(), t.rows, t.cols, 4, repacked.data()), status::ok);
    EXPECT_EQ(repacked, words) << "p" << cps << "r" << raw;
    EXPECT_EQ(u16s(decoded.find(ecq::section_tag::scales)), scales);
    EXPECT_EQ(u16s(decoded.find(ecq::section_tag::biases)), biases);
    if (cps == 1) {
      EXPECT_LT(e.overhead().word_bytes + e.overhead().state_bytes + e.overhead().table_bytes, words.size() * 4);
    }
  }
}

TEST(Affine, FromCodesRejectsBadInput) {
  std::vector<std::uint8_t> codes(64, 3);
  std::vector<std::uint16_t> side(1, 0x3c00);
  ecq::quantized_tensor q;
  EXPECT_EQ(ecq::affine_from_codes(codes.data(), 1, 64, side, side, params(4, 64), &q), status::ok);
  EXPECT_EQ(ecq::affine_from_codes(codes.data(), 1, 64, side, side, params(2, 64), &q), status::ok);
  codes[7] = 4;
  EXPECT_EQ(ecq::affine_from_codes(codes.data(), 1, 64, side, side, params(2, 64), &q), status::invalid_argument);
  EXPECT_EQ(ecq::affine_from_codes(codes.data(), 1, 64, {}, side, params(4, 64), &q), status::invalid_argument);
  codes[5] = 16;
  EXPECT_EQ(ecq::affine_from_codes(codes.data(), 1, 64, side, side, params(4, 64), &q), status::invalid_argument);
}

}  // namespace
