// Tests for include/ecq/fused_dot.hpp: y = W x computed by decoding,
// dequantising and accumulating in one pass, for every scheme and both
// layout goals, against a float64 reference over the dequantised weights
// (float path: within n * 2^-24 * sum |w x|, the bound the header states;
// integer path with code_dequantizer: exact) and against decode-then-dot.
// Also: tile ranges, the checked path on corrupted streams, and activations
// read only inside [0, cols) (asan).
#include <ecq/fused_dot.hpp>
#include <ecq/schemes/scheme.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "schemes_test_weights.hpp"
#include "support/ecq_test_support.hpp"

namespace {

using ecq::status;

// One coder configuration per lane count keeps this test's instantiations
// (dequantiser types x coders) small: ScaleBits 12, lanes 1 or 8. Each
// instantiation unrolls the decoder over its lanes with the dequantiser
// inlined, so its compile time grows with the lane count (32 lanes cost
// minutes over these types); the lane count is a template parameter of code
// that is otherwise the same for any count, and tests/tensor_view_test.cpp
// runs the decoder itself at every lane count.
using P12 = ecq::rans32x16<12>;

struct layout {
  std::uint32_t lanes;
  std::uint32_t tile_rows;
  std::uint64_t chunk_symbols;  // 0: whole rows
};

struct encoded {
  ecq::quantized_tensor q;
  ecq::encoded_tensor e;
  std::vector<float> w;  // dequantised, rows x cols
};

encoded make(const ecq_test::test_tensor& t, const std::string& scheme, layout l) {
  encoded r;
  ecq::scheme_spec spec;
  EXPECT_EQ(ecq::parse_scheme(scheme, &spec), status::ok) << scheme;
  EXPECT_EQ(ecq::quantize(spec, t.w.data(), t.rows, t.cols, &r.q), status::ok);
  ecq::coding_options o;
  o.scale_bits = 12;
  o.lanes = l.lanes;
  o.tile_rows = l.tile_rows;
  o.chunk_symbols = std::min<std::uint64_t>(l.chunk_symbols, r.q.symbols_per_row);
  EXPECT_EQ(ecq_test::encode_quantized(r.q, o, &r.e), status::ok) << scheme;
  EXPECT_EQ(ecq_test::decode_and_dequantize(r.e, &r.w), status::ok);
  return r;
}

// The dequantiser types of the schemes below; visit_dequantizer instantiates
// the fused path only for these.
template <class D>
constexpr bool tested_type =
    std::is_same<D, ecq::float16_dequantizer<ecq::float16_format::bfloat16>>::value ||
    std::is_same<D, ecq::float16_dequantizer<ecq::float16_format::binary16>>::value ||
    std::is_same<D, ecq::float32_dequantizer>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<4, 1, 0>>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<3, 4, 1>>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<4, 2, 0>>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<6, 2, 1>>>::value ||
    std::is_same<D, ecq::codebook_dequantizer<ecq::symbol_packing<4, 1, 0>>>::value ||
    std::is_same<D, ecq::codebook_dequantizer<ecq::symbol_packing<4, 3, 0>>>::value ||
    std::is_same<D, ecq::uniform_dequantizer>::value;

// The packings of IntegerPathIsExact's schemes; visit_code_packing
// instantiates the integer path only for these.
template <class P>
constexpr bool tested_packing =
    std::is_same<P, ecq::symbol_packing<4, 1, 0>>::value || std::is_same<P, ecq::symbol_packing<4, 2, 0>>::value ||
    std::is_same<P, ecq::symbol_packing<4, 3, 0>>::value || std::is_same<P, ecq::symbol_packing<4, 2, 1>>::value ||
    std::is_same<P, ecq::symbol_packing<4, 4, 1>>::value || std::is_same<P, ecq::symbol_packing<5, 4, 2>>::value ||
    std::is_same<P, ecq::symbol_packing<8, 1, 0>>::value;

template <class Activation, class Accumulator>
status gemv(const ecq::encoded_tensor& e, const Activation* x, Accumulator* y, std::uint64_t first_tile,
            std::uint64_t end_tile, ecq::decode_path path) {
  const ecq::encoded_tensor_view v = e.view();
  return ecq::visit_dequantizer(e, [&](const auto& dq) {
    using D = std::decay_t<decltype(dq)>;
    if constexpr (tested_type<D>) {
      switch (v.geometry.lanes) {
        case 1: return ecq::fused_gemv_with<P12, 1>(v, dq, x, y, first_tile, end_tile, path);
        default: return ecq::fused_gemv_with<P12, 8>(v, dq, x, y, first_tile, end_tile, path);
      }
    } else {
      ADD_FAILURE() << "untested dequantiser type";
      return status::unsupported_parameters;
    }
  });
}

std::vector<float> activations(std::uint64_t n, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  return x;
}

const char* const schemes[] = {"bf16", "f16", "f32", "affine4-g64", "affine3-g32-p4r1", "affine4-g64-p2", "affine6-g128-p2r1",
                               "codebook-nf4-g64", "codebook-nf4-g32-p3", "uniform-sqnr21", "uniform-sqnr25-row",
                               "uniform-sqnr30-g32"};

TEST(FusedDot, MatchesFloat64ReferenceAndDecodeThenDot) {
  struct tensor_case {
    ecq_test::test_tensor t;
    layout l;
  };
  const tensor_case cases[] = {
      {ecq_test::synthetic_tensor(70, 131, 1), {8, 32, 48}},   // padding rows, several chunks (split-K)
      {ecq_test::synthetic_tensor(40, 600, 3), {1, 3, 0}},     // tiles of 3 row groups, whole rows
      {ecq_test::synthetic_tensor(1, 512, 2), {1, 1, 0}}};     // a bias
  for (const auto& tc : cases)
    for (const char* scheme : schemes) {
      const auto& t = tc.t;
      const encoded m = make(t, scheme, tc.l);
      const std::vector<float> x = activations(t.cols, 7);
      for (auto path : {ecq::decode_path::fast, ecq::decode_path::checked}) {
        std::vector<float> y(t.rows, NAN);
        ASSERT_EQ(gemv(m.e, x.data(), y.data(), 0, m.e.geometry().num_tiles(), path), status::ok) << scheme;
          const std::uint32_t wps = m.q.weights_per_symbol;
          for (std::uint64_t r = 0; r < t.rows; ++r) {
            double exact = 0, magnitude = 0;
            float sequential = 0;  // decode-then-dot, one weight at a time in column order
            for (std::uint64_t c = 0; c < t.cols; ++c) {
              const double p = double(m.w[r * t.cols + c]) * double(x[c]);
              exact += p;
              magnitude += std::fabs(p);
              sequential += m.w[r * t.cols + c] * x[c];
            }
            const double bound = double(t.cols) * std::ldexp(1.0, -24) * magnitude;
            ASSERT_LE(std::fabs(double(y[r]) - exact), bound) << scheme << " row " << r;
            if (wps == 1) {
              ASSERT_EQ(y[r], sequential) << scheme << " row " << r << ": same products, same order";
            } else {
              ASSERT_LE(std::fabs(double(y[r]) - double(sequential)), 2 * bound) << scheme << " row " << r;
            }
          }
      }
    }
}

TEST(FusedDot, IntegerPathIsExact) {
  // Codes times int8 activations, accumulated in int64: exactly the integer
  // dot product, for every packing.
  const auto t = ecq_test::synthetic_tensor(45, 203, 4);
  std::mt19937 rng(5);
  std::vector<std::int8_t> x(t.cols);
  for (auto& v : x) v = std::int8_t(int(rng() % 256) - 128);
  for (const char* scheme : {"affine4-g64", "affine4-g64-p2", "affine4-g64-p3", "affine4-g64-p2r1", "affine4-g64-p4r1",
                             "affine5-g32-p4r2", "affine8-g64", "codebook-nf4-g64-p2"}) {
    const encoded m = make(t, scheme, {8, 32, 0});
    const ecq::encoded_tensor_view v = m.e.view();
    ecq::affine_params p;
    ASSERT_EQ(ecq::affine_params::parse(m.e.scheme_params(), m.e.scheme_params_size(), &p), status::ok);
    bool ran = ecq::visit_code_packing(p.bits, p.codes_per_symbol, p.raw_bits, [&](auto packing) {
      using P = decltype(packing);
      if constexpr (tested_packing<P>) {
        ecq::code_dequantizer<P> dq{};
        ASSERT_EQ(ecq::make_code_dequantizer(ecq::container_sections{&v}, ecq::geometry_of(v.geometry), &dq),
                  status::ok);
        std::vector<int> codes(t.rows * t.cols);
        std::vector<std::uint16_t> symbols(t.rows * m.q.symbols_per_row);
        ASSERT_EQ(ecq_test::decode_checked(m.e, symbols.data(), symbols.size()), status::ok);
        ecq::dequantize_tensor(dq, symbols.data(), t.rows, t.cols, m.q.symbols_per_row, codes.data());
        std::vector<std::int64_t> y(t.rows, -1);
        const status st = ecq::fused_gemv_with<P12, 8>(v, dq, x.data(), y.data(), 0, v.geometry.num_tiles(),
                                                        ecq::decode_path::checked);
        ASSERT_EQ(st, status::ok);
        for (std::uint64_t r = 0; r < t.rows; ++r) {
          std::int64_t expect = 0;
          for (std::uint64_t c = 0; c < t.cols; ++c) expect += std::int64_t(codes[r * t.cols + c]) * x[c];
          ASSERT_EQ(y[r], expect) << scheme << " row " << r;
        }
      } else {
        ADD_FAILURE() << "untested packing";
      }
    });
    EXPECT_TRUE(ran) << scheme;
  }
}

TEST(FusedDot, TileRangesTouchOnlyTheirRows) {
  const auto t = ecq_test::synthetic_tensor(100, 64, 6);
  const encoded m = make(t, "affine4-g64", {8, 32, 0});
  const std::vector<float> x = activations(t.cols, 8);
  std::vector<float> all(t.rows), part(t.rows, -7.0f);
  auto run = [&](std::vector<float>& y, std::uint64_t a, std::uint64_t b) {
    return gemv(m.e, x.data(), y.data(), a, b, ecq::decode_path::fast);
  };
  ASSERT_EQ(run(all, 0, 4), status::ok);
  ASSERT_EQ(run(part, 1, 3), status::ok);
  for (std::uint64_t r = 0; r < t.rows; ++r) {
    if (r >= 32 && r < 96) {
      EXPECT_EQ(part[r], all[r]) << r;
    } else {
      EXPECT_EQ(part[r], -7.0f) << r;
    }
  }
  EXPECT_EQ(run(part, 3, 5), status::invalid_argument);
  EXPECT_EQ(run(part, 2, 1), status::invalid_argument);
  // A configuration other than the one compiled for is refused.
  ecq::affine_dequantizer<ecq::symbol_packing<4, 1, 0>> dq{};
  const ecq::encoded_tensor_view v = m.e.view();
  ASSERT_EQ(ecq::make_affine_dequantizer(ecq::affine_params{}, ecq::container_sections{&v}, ecq::geometry_of(v.geometry),
                                         &dq),
            status::ok);
  EXPECT_EQ((ecq::fused_gemv_with<P12, 1>(v, dq, x.data(), part.data(), 0, 1)), status::unsupported_parameters);
  EXPECT_EQ((ecq::fused_gemv_with<ecq::rans32x16<11>, 8>(v, dq, x.data(), part.data(), 0, 1)),
            status::unsupported_parameters);
}

// A dequantiser whose weight is the symbol itself: the smallest type that
// meets the Dequantizer requirements, so that the run-time dispatch below
// compiles its 45 coder configurations with the cheapest sink.
struct symbol_as_weight {
  using value_type = float;
  static constexpr int weights_per_symbol = 1;
  void operator()(std::uint64_t, std::uint64_t, std::uint32_t symbol, float* w) const { w[0] = float(symbol); }
};

TEST(FusedDot, RunTimeDispatchMatchesTheCompiledConfigurationAndTheSymbols) {
  const auto t = ecq_test::synthetic_tensor(100, 64, 6);
  const encoded m = make(t, "affine4-g64", {32, 32, 0});
  const ecq::encoded_tensor_view v = m.e.view();
  const std::vector<float> x = activations(t.cols, 8);
  const std::uint64_t tiles = v.geometry.num_tiles(), spr = m.q.symbols_per_row;
  std::vector<std::uint16_t> symbols(t.rows * spr);
  ASSERT_EQ(ecq_test::decode_checked(m.e, symbols.data(), symbols.size()), status::ok);
  for (auto path : {ecq::decode_path::fast, ecq::decode_path::checked}) {
    std::vector<float> with(t.rows, NAN), any(t.rows, NAN);
    ASSERT_EQ((ecq::fused_gemv_with<P12, 32>(v, symbol_as_weight{}, x.data(), with.data(), 0, tiles, path)),
              status::ok);
    ASSERT_EQ(ecq::fused_gemv(v, symbol_as_weight{}, x.data(), any.data(), 0, tiles, path), status::ok);
    EXPECT_EQ(any, with);
    for (std::uint64_t r = 0; r < t.rows; ++r) {
      float expect = 0;  // same products, same (column) order
      for (std::uint64_t c = 0; c < spr; ++c) expect += float(symbols[r * spr + c]) * x[c];
      ASSERT_EQ(with[r], expect) << "row " << r;
    }
  }
}

TEST(FusedDot, CheckedPathReportsCorruptStreams) {
  const auto t = ecq_test::synthetic_tensor(64, 256, 9);
  const encoded m = make(t, "uniform-sqnr21", {8, 32, 64});
  const ecq::encoded_tensor_view v0 = m.e.view();
  const std::vector<float> x = activations(t.cols, 10);
  std::mt19937 rng(11);
  int detected = 0, trials = 0;
  for (; trials < 200; ++trials) {
    std::vector<std::uint8_t> bytes(m.e.data(), m.e.data() + m.e.size());
    const std::uint64_t payload = v0.payload_offset, end = bytes.size() - 8;
    bytes[payload + rng() % (end - payload)] ^= std::uint8_t(1u << (rng() % 8));
    ecq::encoded_tensor x_e;
    if (ecq::encoded_tensor::open(bytes.data(), bytes.size(), &x_e, ecq::open_options{false}) != status::ok) {
      ++detected;  // a flip in the zero padding after a block
      continue;
    }
    std::vector<float> y(t.rows);
    const status s = gemv(x_e, x.data(), y.data(), 0, x_e.geometry().num_tiles(), ecq::decode_path::checked);
    detected += s != status::ok;
  }
  // A flipped word changes the decoded symbols and, almost always, the final
  // states; flips in a block's zero padding fail open. The few that decode
  // to other valid symbols ending at L need the checksum to be caught.
  EXPECT_GT(detected, trials * 8 / 10);
}

}  // namespace
