// Tests for include/ecq/schemes/scheme.hpp: scheme names, the coding layout
// choices, and the whole path quantise -> container -> checked open ->
// decode -> dequantise for every scheme and both layout goals, which must
// reproduce the quantiser's own dequantisation bit for bit (bf16: the
// bf16-rounded input). Also: untrusted parameters and sections through
// visit_dequantizer, and corrupted containers.
#include <ecq/schemes/scheme.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "schemes_test_weights.hpp"
#include "support/ecq_test_support.hpp"

namespace {

using ecq::status;

const char* const all_schemes[] = {"bf16",          "f16",           "f32",           "affine4-g64",       "affine2-g32-bf16",
                                   "affine3-g128-p4r1", "affine4-g64-p2", "affine5-g32-p2r1", "affine8-g64",
                                   "codebook-nf4-g64",  "codebook-nf4-g32-p3", "uniform-sqnr21", "uniform-sqnr18.5-row",
                                   "uniform-sqnr30-g64-bf16"};

TEST(Scheme, NamesParseAndPrintCanonically) {
  for (const char* name : all_schemes) {
    ecq::scheme_spec s;
    std::string error;
    ASSERT_EQ(ecq::parse_scheme(name, &s, &error), status::ok) << name << ": " << error;
    EXPECT_EQ(s.name(), name);
  }
  ecq::scheme_spec s;
  ASSERT_EQ(ecq::parse_scheme("affine4-g64-bf16-p4r1", &s), status::ok);
  EXPECT_EQ(s.kind, ecq::scheme_kind::affine);
  EXPECT_EQ(s.codes.bits, 4);
  EXPECT_EQ(s.codes.group_size, 64u);
  EXPECT_EQ(s.codes.side_format, ecq::float16_format::bfloat16);
  EXPECT_EQ(s.codes.codes_per_symbol, 4);
  EXPECT_EQ(s.codes.raw_bits, 1);
  ASSERT_EQ(ecq::parse_scheme("uniform-sqnr21.05", &s), status::ok);
  EXPECT_EQ(s.target_sqnr_db, 21.05);
  EXPECT_EQ(s.uniform.granularity, ecq::step_granularity::tensor);
  EXPECT_TRUE(ecq::scheme_spec{}.lossless());
}

TEST(Scheme, BadNamesAreRejectedWithAMessage) {
  for (const char* name : {"", "bf17", "affine", "affine9-g64", "affine1-g64", "affine4", "affine4-g48", "affine4-g64x",
                           "affine8-g64-p2", "affine4-g64-p5", "affine4-g64-p4r", "codebook-nf4", "codebook-nf3-g64",
                           "uniform-sqnr", "uniform-sqnr-3", "uniform-sqnrnan", "uniform-sqnr21-g3",
                           "uniform-sqnr21-bf16", "uniform-sqnr21-row-x"}) {
    ecq::scheme_spec s;
    std::string error;
    EXPECT_EQ(ecq::parse_scheme(name, &s, &error), status::invalid_argument) << name;
    EXPECT_THAT(error, ::testing::HasSubstr("bad scheme")) << name;
  }
}

TEST(Scheme, LanesAvoidPaddingAndScaleBitsMinimiseTheSize) {
  EXPECT_EQ(ecq::choose_lanes(1, ecq::layout_goal::kernel), 1u);
  EXPECT_EQ(ecq::choose_lanes(5, ecq::layout_goal::kernel), 1u);
  EXPECT_EQ(ecq::choose_lanes(8, ecq::layout_goal::kernel), 8u);
  EXPECT_EQ(ecq::choose_lanes(512, ecq::layout_goal::kernel), 32u);
  EXPECT_EQ(ecq::choose_lanes(8002, ecq::layout_goal::kernel), 32u);  // 30 padding rows < 1/8
  EXPECT_EQ(ecq::choose_lanes(48, ecq::layout_goal::kernel), 16u);    // 32 would pad 16 rows of 48
  EXPECT_EQ(ecq::choose_lanes(20, ecq::layout_goal::kernel), 1u);     // 8 would pad 4 rows of 20
  EXPECT_EQ(ecq::choose_lanes(8002, ecq::layout_goal::storage), 64u);  // 62 padding rows < 1/8
  EXPECT_EQ(ecq::choose_lanes(100, ecq::layout_goal::storage), 16u);   // 32 would pad 28 rows of 100
  EXPECT_EQ(ecq::choose_lanes(12, ecq::layout_goal::storage), 1u);     // 4 padding rows of 12

  // choose_scale_bits against a brute-force size: payload + table for each S.
  std::mt19937 rng(5);
  for (int trial = 0; trial < 5; ++trial) {
    std::vector<std::uint64_t> counts(1u << (4 + 2 * trial % 8));
    for (auto& c : counts) c = rng() % 3 == 0 ? 0 : std::uint64_t(std::exp(double(rng() % 1400) / 100.0));
    const int best = ecq::choose_scale_bits(counts);
    double best_bits = INFINITY;
    int expect = 0;
    for (int s = 7; s <= 15; ++s) {
      if (counts.size() > (1u << ecq::decode_symbol_bits(s))) continue;
      const auto freqs = ecq::normalized_frequencies(counts, s);
      if (freqs.empty()) continue;
      const double bits = ecq::expected_bits_per_symbol(counts.data(), freqs.data(), std::uint32_t(counts.size()), s) *
                              double(std::accumulate(counts.begin(), counts.end(), std::uint64_t(0))) +
                          8.0 * double(ecq::serialized_frequency_table(freqs, s).size());
      if (bits < best_bits * (1 - 1e-9)) {
        best_bits = bits;
        expect = s;
      }
    }
    EXPECT_EQ(best, expect) << trial;
  }
}

TEST(Scheme, StorageLayoutHasBigBlocksKernelLayoutSmallOnes) {
  const auto t = ecq_test::synthetic_tensor(1000, 300, 3);
  ecq::quantized_tensor q;
  ASSERT_EQ(ecq::affine_quantize(t.w.data(), t.rows, t.cols, ecq::affine_params{}, &q), status::ok);
  // 300k weights, ~150 KB: a budget of ~75 bytes. 16 lanes would pad 8 rows (0.8 % of the size), so 8 lanes,
  // whose 32 bytes of states the budget pays twice: two blocks of 500 rows, rounded up to whole row groups.
  const auto s = ecq::choose_coding_options(q, ecq::layout_goal::storage);
  EXPECT_EQ(s.lanes, 8u);
  EXPECT_EQ(s.tile_rows, 504u);
  EXPECT_EQ(s.chunk_symbols, 300u);
  const auto k = ecq::choose_coding_options(q, ecq::layout_goal::kernel);
  EXPECT_EQ(k.lanes, 32u);
  EXPECT_EQ(k.tile_rows, 32u);
  EXPECT_EQ(k.chunk_symbols, 256u);
}

TEST(Scheme, StorageLayoutWidensWithTheTensorAndKeepsStatesUnderTheBudget) {
  struct expectation {
    std::uint64_t rows, cols;
    std::uint32_t lanes;
  };
  // Large tensors get the 64 lanes the CPU kernels run fastest, small ones stay at 8 lanes and 2^17-weight
  // blocks; 4000 rows take 32 lanes, since 64 would pad 32 rows (0.8 %).
  for (const expectation e : {expectation{4096, 1024, 64}, expectation{64, 64, 8}, expectation{4000, 256, 32}}) {
    const auto t = ecq_test::synthetic_tensor(e.rows, e.cols, 4);
    ecq::quantized_tensor q;
    ASSERT_EQ(ecq::affine_quantize(t.w.data(), t.rows, t.cols, ecq::affine_params{}, &q), status::ok);
    const auto o = ecq::choose_coding_options(q, ecq::layout_goal::storage);
    EXPECT_EQ(o.lanes, e.lanes) << e.rows << "x" << e.cols;
    EXPECT_EQ(o.tile_rows % o.lanes, 0u);
    ecq::encoded_tensor c;
    ASSERT_EQ(ecq_test::encode_quantized(q, o, &c), status::ok);
    const ecq::container_overhead ov = c.overhead();
    if (e.lanes > 8) {
      EXPECT_GT(ov.blocks, 1u) << "a large tensor is cut for threads";
      EXPECT_LE(double(ov.state_bytes), double(ov.container_bytes) * ecq::storage_state_fraction);
    } else {
      EXPECT_GE(std::uint64_t(o.tile_rows) * e.cols, std::min(ecq::storage_block_weights, e.rows * e.cols));
    }
  }
  // bf16 exponents: ScaleBits in the SIMD kernels' range (<= 12) unless that costs more than 1/2000.
  const auto t = ecq_test::synthetic_tensor(512, 512, 5);
  ecq::quantized_tensor q;
  ecq::float16_quantize(t.w.data(), t.rows, t.cols, ecq::float16_format::bfloat16, &q);
  EXPECT_LE(ecq::choose_coding_options(q, ecq::layout_goal::storage).scale_bits, 12);
}

TEST(Scheme, FourBitCodesTakeScaleBits7WhenItCostsUnderTheTolerance) {
  // 16 symbols: ScaleBits 7 (the permute kernel's one-vpermi2b lookup) when it costs at most
  // simd_scale_bits_tolerance of the tensor's estimated size more than the smallest coding, else the best value
  // <= 8 under the same rule. 4-bit codes of a Gaussian over the levels: a wide one (sigma 4 levels) is within
  // the tolerance at 7, a narrow one (sigma 2.5: +0.2 % at 7, +0.04 % at 8) keeps 8.
  for (const double sigma : {4.0, 2.5}) {
    const std::uint64_t rows = 256, cols = 512;
    std::mt19937 rng(7);
    std::normal_distribution<double> level(7.5, sigma);
    std::vector<std::uint8_t> codes(rows * cols);
    for (auto& c : codes) c = std::uint8_t(std::min(15.0, std::max(0.0, std::round(level(rng)))));
    const std::vector<std::uint16_t> scales(rows * cols / 64, ecq::float_to_f16(0.01f));
    const std::vector<std::uint16_t> biases(rows * cols / 64, ecq::float_to_f16(-0.075f));
    ecq::quantized_tensor q;
    ASSERT_EQ(ecq::affine_from_codes(codes.data(), rows, cols, scales, biases, ecq::affine_params{}, &q), status::ok);
    ASSERT_EQ(q.alphabet_size, 16u);
    const std::vector<std::uint64_t> counts = ecq::histogram(q.symbols.data(), q.symbols.size(), q.alphabet_size);
    const int best = ecq::choose_scale_bits(counts);
    ASSERT_GT(best, 8) << "the test needs codes whose smallest coding is above ScaleBits 8";
    const double side_bits = 8.0 * double(q.side_bytes());
    const double limit = (ecq::coded_bits_at(counts, best) + side_bits) * (1.0 + ecq::simd_scale_bits_tolerance);
    const bool seven = ecq::coded_bits_at(counts, 7) + side_bits <= limit;
    EXPECT_EQ(seven, sigma == 4.0);
    ASSERT_LE(ecq::coded_bits_at(counts, 8) + side_bits, limit);
    for (const ecq::layout_goal goal : {ecq::layout_goal::storage, ecq::layout_goal::kernel})
      EXPECT_EQ(ecq::choose_coding_options(q, goal).scale_bits, seven ? 7 : 8) << "sigma " << sigma;
  }
}

// quantise -> encode -> open (checked) -> decode_checked -> dequantise must
// equal dequantise(quantise) exactly.
void round_trip(const ecq_test::test_tensor& t, const std::string& scheme, ecq::layout_goal goal) {
  ecq::scheme_spec spec;
  ASSERT_EQ(ecq::parse_scheme(scheme, &spec), status::ok);
  ecq::quantized_tensor q;
  ASSERT_EQ(ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q), status::ok) << scheme;
  std::vector<float> expect;
  ASSERT_EQ(ecq::dequantize(q, &expect), status::ok);
  ecq::encoded_tensor e;
  ASSERT_EQ(ecq_test::encode_quantized(q, ecq::choose_coding_options(q, goal), &e), status::ok) << scheme;
  ecq::encoded_tensor opened;
  ASSERT_EQ(ecq::encoded_tensor::open(e.data(), e.size(), &opened), status::ok);
  EXPECT_EQ(opened.geometry().scheme_id, std::uint32_t(spec.kind));
  std::vector<float> got;
  ASSERT_EQ(ecq_test::decode_and_dequantize(opened, &got), status::ok) << scheme;
  ASSERT_EQ(got.size(), expect.size());
  EXPECT_EQ(std::memcmp(got.data(), expect.data(), got.size() * 4), 0) << scheme << " " << t.name;
  if (spec.kind == ecq::scheme_kind::bf16) {
    for (std::size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(ecq::float_to_bf16(got[i]), ecq::float_to_bf16(t.w[i])) << "bit-exact bf16 " << i;
  }
}

TEST(Scheme, EverySchemeRoundTripsThroughTheContainer) {
  const ecq_test::test_tensor tensors[] = {ecq_test::synthetic_tensor(70, 130, 1),  // padding rows, odd width
                                           ecq_test::synthetic_tensor(1, 64, 2),    // a bias
                                           ecq_test::synthetic_tensor(33, 8, 3)};
  for (const auto& t : tensors)
    for (const char* scheme : all_schemes)
      for (auto goal : {ecq::layout_goal::storage, ecq::layout_goal::kernel}) round_trip(t, scheme, goal);
}

TEST(Scheme, RealWeightsRoundTrip) {
  const auto tensors = ecq_test::real_tensors("stories260K.safetensors");
  if (tensors.empty()) GTEST_SKIP() << "no real weights in " << ECQ_SHARED_DATA_DIR;
  for (const auto& t : tensors)
    for (const char* scheme : {"bf16", "affine4-g64", "uniform-sqnr21"}) round_trip(t, scheme, ecq::layout_goal::storage);
}

TEST(Scheme, VisitDequantizerRejectsUntrustedMismatches) {
  const auto t = ecq_test::synthetic_tensor(4, 64, 7);
  auto ok = [](const auto&) { return status::ok; };
  for (const char* scheme : all_schemes) {
    ecq::scheme_spec spec;
    ASSERT_EQ(ecq::parse_scheme(scheme, &spec), status::ok);
    ecq::quantized_tensor q;
    ASSERT_EQ(ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q), status::ok);
    ASSERT_EQ(ecq::visit_dequantizer(q, ok), status::ok) << scheme;
    EXPECT_EQ(ecq::visit_dequantizer(99, q.params.data(), q.params.size(), ecq::quantized_tensor_sections{&q},
                                     ecq::geometry_of(q), ok),
              status::unsupported_parameters);
    std::vector<std::uint8_t> longer = q.params;
    longer.push_back(0);
    EXPECT_EQ(ecq::visit_dequantizer(std::uint32_t(q.kind), longer.data(), longer.size(),
                                     ecq::quantized_tensor_sections{&q}, ecq::geometry_of(q), ok),
              status::unsupported_parameters)
        << scheme;
    auto g = ecq::geometry_of(q);
    g.rows = 5;  // side data sized for 4 rows
    const status s = ecq::visit_dequantizer(std::uint32_t(q.kind), q.params.data(), q.params.size(),
                                            ecq::quantized_tensor_sections{&q}, g, ok);
    if (spec.kind == ecq::scheme_kind::uniform && spec.uniform.granularity == ecq::step_granularity::tensor) {
      EXPECT_EQ(s, status::ok) << "no side data";
    } else {
      EXPECT_EQ(s, status::bad_shape) << scheme;
    }
  }
}

TEST(Scheme, CorruptedContainersFailCleanly) {
  // Random byte flips anywhere: with the checksum every flip is caught;
  // without it, decoding either succeeds or returns a status (asan checks
  // that nothing is read out of bounds), never a crash.
  const auto t = ecq_test::synthetic_tensor(40, 96, 8);
  std::mt19937 rng(9);
  for (const char* scheme : {"bf16", "affine4-g64-p4r1", "codebook-nf4-g32", "uniform-sqnr25-g32"}) {
    ecq::scheme_spec spec;
    ASSERT_EQ(ecq::parse_scheme(scheme, &spec), status::ok);
    ecq::quantized_tensor q;
    ASSERT_EQ(ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q), status::ok);
    ecq::encoded_tensor e;
    ASSERT_EQ(ecq_test::encode_quantized(q, ecq::choose_coding_options(q, ecq::layout_goal::kernel), &e), status::ok);
    for (int trial = 0; trial < 300; ++trial) {
      std::vector<std::uint8_t> bytes(e.data(), e.data() + e.size());
      bytes[rng() % bytes.size()] ^= std::uint8_t(1u << (rng() % 8));
      ecq::encoded_tensor x;
      EXPECT_NE(ecq::encoded_tensor::open(bytes.data(), bytes.size(), &x), status::ok);
      if (ecq::encoded_tensor::open(bytes.data(), bytes.size(), &x, ecq::open_options{false}) != status::ok) continue;
      std::vector<float> w;
      ecq_test::decode_and_dequantize(x, &w);
    }
  }
}

}  // namespace
