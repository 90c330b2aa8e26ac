// Tests for ecq/cpu/row_dequantizer.hpp (and through it ecq/cpu/detail/row_dequant_simd.hpp): the one-byte symbol
// calls on every path this CPU runs equal the portable loop on 16-bit symbols bit for bit, for every scheme (those
// with a SIMD kernel and those without), on random pieces of synthetic and real rows, with cached and streaming
// stores at every alignment of the output, and never write outside the piece's weights; side values that are
// infinite, NaN, subnormal or large enough for scale * q to overflow give the portable values too.
#include <ecq/cpu/row_dequantizer.hpp>
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "schemes_test_weights.hpp"
#include "support/ecq_test_support.hpp"

namespace {

using ecq::status;

struct coded_tensor {
  ecq::quantized_tensor q;
  ecq::encoded_tensor t;
};

coded_tensor encode_scheme(const std::string& scheme, const ecq_test::test_tensor& w) {
  coded_tensor c;
  ecq::scheme_spec spec;
  EXPECT_EQ(ecq::parse_scheme(scheme, &spec), status::ok) << scheme;
  EXPECT_EQ(ecq::quantize(spec, w.w.data(), w.rows, w.cols, &c.q), status::ok) << scheme;
  EXPECT_EQ(ecq_test::encode_quantized(c.q, ecq::choose_coding_options(c.q, ecq::layout_goal::storage), &c.t),
            status::ok)
      << scheme;
  return c;
}

/// The paths to compare with the portable loop (scalar, which is the portable loop itself, included).
std::vector<ecq::cpu_path> paths() {
  std::vector<ecq::cpu_path> p{ecq::cpu_path::scalar};
  for (ecq::cpu_path q : {ecq::cpu_path::avx2, ecq::cpu_path::avx512, ecq::cpu_path::neon})
    if (ecq::cpu_path_supported(q)) p.push_back(q);
  return p;
}

/// Every row of q's symbols in random pieces, through rd's byte calls into outputs at every offset from a 64-byte
/// line, cached and streaming, against ref's 16-bit calls; guards around each piece must stay untouched.
void expect_byte_calls_equal(const ecq::row_dequantizer& rd, const ecq::row_dequantizer& ref,
                             const ecq::quantized_tensor& q, const std::string& what, std::uint32_t seed) {
  std::mt19937 rng(seed);
  const std::uint64_t spr = q.symbols_per_row, cols = q.cols, wps = std::uint64_t(ref.weights_per_symbol());
  std::vector<std::uint8_t> bytes(q.symbols.size());
  for (std::size_t i = 0; i < bytes.size(); ++i) bytes[i] = std::uint8_t(q.symbols[i]);
  constexpr std::size_t guard = 40;
  std::vector<float> wf(std::size_t(cols) + 2 * guard + 64), want_f(std::size_t(cols) + 64);
  std::vector<std::uint16_t> wh(std::size_t(cols) + 2 * guard + 64), want_h(std::size_t(cols) + 64);
  for (std::uint64_t row = 0; row < q.rows; ++row) {
    std::uint64_t first = 0;
    while (first < spr) {
      std::uint64_t count = 1 + rng() % (rng() % 2 ? 300 : 20);
      if (count > spr - first) count = spr - first;
      const std::uint64_t n = std::min(count * wps, cols - first * wps);
      const std::uint16_t* s16 = q.symbols.data() + row * spr + first;
      const std::uint8_t* s8 = bytes.data() + row * spr + first;
      ref.weights(row, first, s16, std::size_t(count), want_f.data());
      ref.bf16_bits(row, first, s16, std::size_t(count), want_h.data(), cols);
      const std::size_t offset = rng() % 32;
      for (ecq::detail::row_stores stores : {ecq::detail::row_stores::cached, ecq::detail::row_stores::streaming}) {
        std::fill(wf.begin(), wf.end(), -7.0f);
        std::fill(wh.begin(), wh.end(), std::uint16_t(0x5a5a));
        float* of = wf.data() + guard;
        std::uint16_t* oh = wh.data() + guard;
        while (reinterpret_cast<std::uintptr_t>(of) % 64 != 0) ++of;
        while (reinterpret_cast<std::uintptr_t>(oh) % 64 != 0) ++oh;
        of += offset, oh += offset;
        rd.weights(row, first, s8, std::size_t(count), of, stores);
        rd.bf16_bits(row, first, s8, std::size_t(count), oh, stores);
        ecq::detail::streaming_fence();
        const std::string where = what + ": row " + std::to_string(row) + ", symbols " + std::to_string(first) +
                                  " + " + std::to_string(count) + ", offset " + std::to_string(offset) +
                                  (stores == ecq::detail::row_stores::streaming ? ", streaming" : ", cached");
        ASSERT_EQ(std::memcmp(of, want_f.data(), std::size_t(n) * 4), 0) << where;
        ASSERT_EQ(std::memcmp(oh, want_h.data(), std::size_t(n) * 2), 0) << where;
        for (float* p = wf.data(); p < of; ++p) ASSERT_EQ(*p, -7.0f) << where;
        for (float* p = of + n; p < wf.data() + wf.size(); ++p) ASSERT_EQ(*p, -7.0f) << where;
        for (std::uint16_t* p = wh.data(); p < oh; ++p) ASSERT_EQ(*p, 0x5a5a) << where;
        for (std::uint16_t* p = oh + n; p < wh.data() + wh.size(); ++p) ASSERT_EQ(*p, 0x5a5a) << where;
      }
      first += count;
    }
  }
}

TEST(RowDequantizer, ByteSymbolsOnEveryPathEqualThePortableLoop) {
  // With a SIMD kernel: affine of 1-3 codes per symbol of at most 8 bits (groups of 2 to 128, groups that symbols
  // straddle, bfloat16 side values) and the lossless bf16 scheme; without: the rest.
  const char* const with_kernel[] = {"affine4-g64", "affine4-g64-p2", "affine3-g16-p2", "affine2-g8-p3",
                                     "affine8-g32", "affine3-g128-bf16", "affine4-g2", "affine5-g4-bf16", "bf16"};
  const char* const without_kernel[] = {"affine4-g64-p3", "affine4-g64-p4r2", "codebook-nf4-g64", "f16",
                                        "uniform-sqnr20"};
  std::vector<ecq_test::test_tensor> tensors{ecq_test::synthetic_tensor(9, 333, 1),
                                             ecq_test::synthetic_tensor(3, 1030, 2), ecq_test::synthetic_tensor(4, 7, 3)};
  for (auto& t : ecq_test::real_tensors("stories260K.safetensors"))
    if (t.rows > 1 && t.cols >= 64 && tensors.size() < 5) {
      t.rows = std::min<std::uint64_t>(t.rows, 8);  // the first rows are enough
      t.w.resize(std::size_t(t.rows * t.cols));
      tensors.push_back(std::move(t));
    }
  std::uint32_t seed = 1;
  for (const auto& w : tensors) {
    for (const char* scheme : with_kernel) {
      const coded_tensor c = encode_scheme(scheme, w);
      ecq::row_dequantizer ref;
      ASSERT_EQ(ref.build(c.t, ecq::cpu_path::scalar), status::ok);
      EXPECT_EQ(ref.simd_path(), ecq::cpu_path::scalar);
      for (ecq::cpu_path p : paths()) {
        ecq::row_dequantizer rd;
        ASSERT_EQ(rd.build(c.t, p), status::ok);
        if (p == ecq::cpu_path::avx512 || p == ecq::cpu_path::avx2) {
          EXPECT_EQ(rd.simd_path(), p) << scheme;
        }
        expect_byte_calls_equal(rd, ref, c.q, std::string(scheme) + " on " + w.name + ", " + ecq::cpu_path_name(p),
                                seed++);
      }
    }
    for (const char* scheme : without_kernel) {
      const coded_tensor c = encode_scheme(scheme, w);
      if (c.t.geometry().alphabet_size > 256) continue;  // the byte calls take symbols of at most 8 bits
      ecq::row_dequantizer ref, rd;
      ASSERT_EQ(ref.build(c.t, ecq::cpu_path::scalar), status::ok);
      ASSERT_EQ(rd.build(c.t), status::ok);
      EXPECT_EQ(rd.simd_path(), ecq::cpu_path::scalar) << scheme;
      expect_byte_calls_equal(rd, ref, c.q, std::string(scheme) + " on " + w.name, seed++);
    }
  }
}

TEST(RowDequantizer, SpecialSideValuesGiveThePortableValues) {
  // Scale and bias patterns a crafted file may hold: infinities, quiet and signalling NaNs, subnormals, zeros of
  // both signs, and (bfloat16) scales so large that scale * q overflows while scale * q + bias, computed exactly,
  // would not: where a multiply-add rounded once would differ.
  const std::uint16_t f16_values[] = {0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfe01, 0x0001, 0x8001, 0x03ff,
                                      0x0000, 0x8000, 0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x1234, 0x5678};
  const std::uint16_t bf16_values[] = {0x7f80, 0xff80, 0x7fc0, 0x7f81, 0xffc1, 0x0001, 0x8001, 0x007f,
                                       0x0000, 0x8000, 0x7f7f, 0xff7f, 0x7e00, 0xfe7f, 0x3f80, 0x4321};
  std::mt19937 rng(3);
  for (ecq::float16_format format : {ecq::float16_format::binary16, ecq::float16_format::bfloat16})
    for (int codes_per_symbol : {1, 2}) {
      ecq::affine_params p;
      p.bits = 4;
      p.group_size = 16;
      p.side_format = format;
      p.codes_per_symbol = codes_per_symbol;
      const std::uint64_t rows = 6, cols = 16 * 40 + 5;
      const std::uint64_t gpr = ecq::affine_groups_per_row(cols, p.group_size);
      std::vector<std::uint8_t> codes(std::size_t(rows * cols));
      for (auto& c : codes) c = std::uint8_t(rng() % 16);
      const std::uint16_t* table = format == ecq::float16_format::bfloat16 ? bf16_values : f16_values;
      std::vector<std::uint16_t> scales(std::size_t(rows * gpr)), biases(scales.size());
      for (std::size_t i = 0; i < scales.size(); ++i) {
        // Mostly ordinary values, so special groups sit next to ordinary ones inside one vector.
        scales[i] = rng() % 3 == 0 ? table[rng() % 16] : table[14 + rng() % 2];
        biases[i] = rng() % 3 == 0 ? table[rng() % 16] : table[14 + rng() % 2];
      }
      ecq::quantized_tensor q;
      ASSERT_EQ(ecq::affine_from_codes(codes.data(), rows, cols, scales, biases, p, &q), status::ok);
      ecq::encoded_tensor t;
      const ecq::coding_options o = ecq::choose_coding_options(q, ecq::layout_goal::storage);
      ASSERT_EQ(ecq_test::encode_quantized(q, o, &t), status::ok);
      ecq::row_dequantizer ref;
      ASSERT_EQ(ref.build(t, ecq::cpu_path::scalar), status::ok);
      for (ecq::cpu_path path : paths()) {
        ecq::row_dequantizer rd;
        ASSERT_EQ(rd.build(t, path), status::ok);
        expect_byte_calls_equal(rd, ref, q,
                                std::string(format == ecq::float16_format::bfloat16 ? "bf16" : "f16") + " side, p" +
                                    std::to_string(codes_per_symbol) + ", " + ecq::cpu_path_name(path),
                                std::uint32_t(codes_per_symbol));
      }
    }
}

}  // namespace
