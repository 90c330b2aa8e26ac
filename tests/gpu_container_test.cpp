// Tests for ecq/gpu_container.hpp and the GPU layout (docs/format.md section
// 15), frozen by two committed containers: tests/data/golden-gpu-bf16-v1.ecq
// (scheme 8) and tests/data/golden-gpu-affine4-v1.ecq (scheme 9). The
// library's encoder must reproduce them byte for byte, and the weights are
// rebuilt from their symbols and sections by a reader written from section
// 15's text (namespace `spec`, no gpu_layout.hpp code). Regenerate them (only
// for a deliberate layout change, with new scheme ids) with
// ECQ_REGENERATE_TEST_DATA=1.
#include <ecq/gpu_container.hpp>

#include "support/ecq_test_support.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

std::uint64_t hash(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Weights with a few exponents of unequal frequency (118..125, triangular:
// the commonest pair has probability 1/64, well inside a narrow table).
std::vector<std::uint16_t> bf16_weights(std::uint64_t rows, std::uint64_t cols) {
  std::vector<std::uint16_t> w(rows * cols);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const std::uint64_t h = hash(i);
    const std::uint32_t e = 118 + std::uint32_t((h & 7) + ((h >> 3) & 7)) / 2;
    w[i] = std::uint16_t(((h >> 8) & 0x8000u) | (e << 7) | ((h >> 20) & 0x7fu));
  }
  return w;
}

struct affine4_input {
  std::vector<std::uint8_t> codes;
  std::vector<std::uint16_t> scales, biases;
};
affine4_input affine4_weights(std::uint64_t rows, std::uint64_t cols, std::uint32_t group) {
  affine4_input a;
  a.codes.resize(rows * cols);
  for (std::size_t i = 0; i < a.codes.size(); ++i) {
    const std::uint64_t h = hash(i + 77);
    a.codes[i] = std::uint8_t((h & 15) + ((h >> 4) & 15) + ((h >> 8) & 15) + ((h >> 12) & 15)) / 4;
  }
  for (std::size_t g = 0; g < rows * cols / group; ++g) {
    a.scales.push_back(std::uint16_t(0x3c00u + (hash(g) & 0xffu)));
    a.biases.push_back(std::uint16_t(0xbc00u + (hash(g + 1000) & 0xffu)));
  }
  return a;
}

constexpr std::uint64_t bf16_rows = 33, bf16_cols = 256;                       // two tiles, the second one row
constexpr std::uint64_t a4_rows = 45, a4_cols = 512, a4_group = 128;           // 2 tiles x 2 chunks

std::vector<std::uint8_t> golden(const char* name, const ecq::encoded_tensor& fresh) {
  const fs::path path = fs::path(ECQ_SOURCE_DIR) / "tests/data" / name;
  if (std::getenv("ECQ_REGENERATE_TEST_DATA") != nullptr && fresh.data() != nullptr)
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(fresh.data()), std::streamsize(fresh.size()));
  std::ifstream f(path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

namespace spec {

// Section 15, read literally: block b = tile * chunks + chunk; a block's
// section-10 words are units of 8 rounds, [unit][row of 32][unit words].
std::uint32_t word(const std::uint8_t* section, std::uint64_t at) {
  return std::uint32_t(section[4 * at]) | std::uint32_t(section[4 * at + 1]) << 8 |
         std::uint32_t(section[4 * at + 2]) << 16 | std::uint32_t(section[4 * at + 3]) << 24;
}

// Scheme 8: symbol = rank(e0) * E + rank(e1); round k's 16 raw bits at bit
// 16 (k % 2) of word k % 8 / 2 of its unit (4 words); byte = sign << 7 |
// mantissa.
std::vector<std::uint16_t> bf16(const ecq::encoded_tensor& t, const std::vector<std::uint32_t>& symbols) {
  const auto& g = t.geometry();
  const std::uint8_t* p = t.scheme_params();
  const std::uint32_t E = p[0];
  const std::uint8_t* raw = t.data() + t.view().find_section(10)->offset;
  const std::uint64_t chunks = g.cols / 256;
  std::vector<std::uint16_t> w(g.rows * g.cols);
  for (std::uint64_t r = 0; r < g.rows; ++r)
    for (std::uint64_t c = 0; c < g.cols / 2; ++c) {
      const std::uint32_t s = symbols[r * (g.cols / 2) + c];
      const std::uint64_t block = (r / 32) * chunks + c / 128, k = c % 128;
      const std::uint64_t at = block * (128 / 8 * 32 * 4) + (k / 8 * 32 + r % 32) * 4 + k % 8 / 2;
      const std::uint32_t bits = word(raw, at) >> (16 * (k % 2));
      for (int j = 0; j < 2; ++j) {
        const std::uint32_t e = p[1 + (j == 0 ? s / E : s % E)], b = (bits >> (8 * j)) & 0xffu;
        w[r * g.cols + 2 * c + j] = std::uint16_t((b & 0x80u) << 8 | e << 7 | (b & 0x7fu));
      }
    }
  return w;
}

// Scheme 9: code j of symbol (r, c) = high bits (s >> 2j) & 3, low bits from
// word k % 8 / 4 of the unit (2 words), round q = k % 4: l0 at [4q, 4q+2),
// l2 at [4q+2, 4q+4), l1 at [16+4q, 18+4q), l3 at [18+4q, 20+4q). Section 11:
// per block, per group of the chunk, 32 words scale | bias << 16.
affine4_input affine4(const ecq::encoded_tensor& t, const std::vector<std::uint32_t>& symbols) {
  const auto& g = t.geometry();
  const std::uint32_t G = std::uint32_t(t.scheme_params()[4]) | std::uint32_t(t.scheme_params()[5]) << 8;
  const std::uint8_t* raw = t.data() + t.view().find_section(10)->offset;
  const std::uint8_t* side = t.data() + t.view().find_section(11)->offset;
  const std::uint64_t chunks = g.cols / 256;
  affine4_input a;
  a.codes.resize(g.rows * g.cols);
  const int at_bit[4] = {0, 16, 2, 18};
  for (std::uint64_t r = 0; r < g.rows; ++r)
    for (std::uint64_t c = 0; c < g.cols / 4; ++c) {
      const std::uint32_t s = symbols[r * (g.cols / 4) + c];
      const std::uint64_t block = (r / 32) * chunks + c / 64, k = c % 64;
      const std::uint32_t bits = word(raw, block * (64 / 8 * 32 * 2) + (k / 8 * 32 + r % 32) * 2 + k % 8 / 4);
      for (int j = 0; j < 4; ++j)
        a.codes[r * g.cols + 4 * c + j] =
            std::uint8_t(((s >> (2 * j)) & 3u) << 2 | ((bits >> (4 * (k % 4) + at_bit[j])) & 3u));
    }
  for (std::uint64_t r = 0; r < g.rows; ++r)
    for (std::uint64_t grp = 0; grp < g.cols / G; ++grp) {
      const std::uint64_t block = (r / 32) * chunks + grp * G / 256, in_chunk = grp % (256 / G);
      const std::uint32_t v = word(side, block * (256 / G * 32) + in_chunk * 32 + r % 32);
      a.scales.push_back(std::uint16_t(v & 0xffffu));
      a.biases.push_back(std::uint16_t(v >> 16));
    }
  return a;
}

}  // namespace spec

std::vector<std::uint32_t> symbols_of(const ecq::encoded_tensor& t) {
  std::vector<std::uint16_t> s(t.geometry().rows * t.geometry().symbols_per_row);
  EXPECT_EQ(ecq_test::decode_checked(t, s.data(), s.size()), ecq::status::ok);
  return std::vector<std::uint32_t>(s.begin(), s.end());
}

TEST(GpuContainer, Bf16GoldenFileIsWhatTheEncoderWritesAndDecodesExactly) {
  const std::vector<std::uint16_t> w = bf16_weights(bf16_rows, bf16_cols);
  ecq::encoded_tensor fresh;
  ASSERT_EQ(ecq::encode_gpu_bf16(w.data(), bf16_rows, bf16_cols, &fresh), ecq::status::ok);
  const std::vector<std::uint8_t> file = golden("golden-gpu-bf16-v1.ecq", fresh);
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(file, std::vector<std::uint8_t>(fresh.data(), fresh.data() + fresh.size()));
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq::encoded_tensor::open(file.data(), file.size(), &t), ecq::status::ok);
  EXPECT_EQ(t.geometry().scheme_id, 8u);
  EXPECT_EQ(t.geometry().lanes, 32u);
  EXPECT_EQ(t.geometry().chunk_symbols, 128u);
  ecq::gpu_tensor_layout L;
  ASSERT_EQ(ecq::check_gpu_layout(t, &L), ecq::status::ok);
  EXPECT_EQ(L.tiles, 2u);
  EXPECT_EQ(L.chunks, 1u);
  EXPECT_EQ(L.num_exponents, 8u);
  EXPECT_EQ(spec::bf16(t, symbols_of(t)), w);
}

TEST(GpuContainer, Affine4GoldenFileIsWhatTheEncoderWritesAndDecodesExactly) {
  const affine4_input a = affine4_weights(a4_rows, a4_cols, a4_group);
  ecq::encoded_tensor fresh;
  ASSERT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, a4_rows, a4_cols, a4_group, &fresh),
            ecq::status::ok);
  const std::vector<std::uint8_t> file = golden("golden-gpu-affine4-v1.ecq", fresh);
  ASSERT_FALSE(file.empty());
  EXPECT_EQ(file, std::vector<std::uint8_t>(fresh.data(), fresh.data() + fresh.size()));
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq::encoded_tensor::open(file.data(), file.size(), &t), ecq::status::ok);
  ecq::gpu_tensor_layout L;
  ASSERT_EQ(ecq::check_gpu_layout(t, &L), ecq::status::ok);
  EXPECT_EQ(L.group_size, 128u);
  EXPECT_EQ(L.tiles * L.chunks, 4u);
  const affine4_input back = spec::affine4(t, symbols_of(t));
  EXPECT_EQ(back.codes, a.codes);
  EXPECT_EQ(back.scales, a.scales);
  EXPECT_EQ(back.biases, a.biases);
}

TEST(GpuContainer, EncodersRefuseWhatTheLayoutCannotHold) {
  ecq::encoded_tensor t;
  std::vector<std::uint16_t> w = bf16_weights(4, 512);
  EXPECT_EQ(ecq::encode_gpu_bf16(w.data(), 4, 300, &t), ecq::status::bad_shape);  // not whole chunks
  EXPECT_EQ(ecq::encode_gpu_bf16(w.data(), 0, 512, &t), ecq::status::bad_shape);
  std::vector<std::uint16_t> many(4 * 512);
  for (std::size_t i = 0; i < many.size(); ++i) many[i] = std::uint16_t((i % 65) << 7);  // 65 exponents
  EXPECT_EQ(ecq::encode_gpu_bf16(many.data(), 4, 512, &t), ecq::status::unsupported_parameters);
  std::vector<std::uint16_t> constant(4 * 512, 0x3f80);  // one pair: frequency 2^S > 255
  EXPECT_EQ(ecq::encode_gpu_bf16(constant.data(), 4, 512, &t), ecq::status::unsupported_parameters);
  affine4_input a = affine4_weights(4, 512, 128);
  EXPECT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, 4, 512, 32, &t),
            ecq::status::invalid_argument);  // groups must be 64, 128 or 256
  a.codes[5] = 16;
  EXPECT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, 4, 512, 128, &t),
            ecq::status::invalid_argument);
  a.codes[5] = 1;
  a.scales.pop_back();
  EXPECT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, 4, 512, 128, &t),
            ecq::status::invalid_argument);
}

// Containers valid for the format but not for the layout: check_gpu_layout
// must say so before a loader hands them to a kernel.
TEST(GpuContainer, CheckRejectsContainersOutsideTheLayout) {
  const std::vector<std::uint16_t> w = bf16_weights(bf16_rows, bf16_cols);
  ecq::encoded_tensor good;
  ASSERT_EQ(ecq::encode_gpu_bf16(w.data(), bf16_rows, bf16_cols, &good), ecq::status::ok);
  const std::vector<std::uint32_t> wide = symbols_of(good);
  const std::vector<std::uint16_t> symbols(wide.begin(), wide.end());
  const ecq::encoded_tensor_view v = good.view();
  const ecq::section_view raw = *v.find_section(10);
  auto variant = [&](auto&& change) {
    ecq::tensor_description d;
    d.rows = bf16_rows;
    d.cols = bf16_cols;
    d.symbols_per_row = bf16_cols / 2;
    d.alphabet_size = good.geometry().alphabet_size;
    d.scheme_id = 8;
    d.scheme_params.assign(good.scheme_params(), good.scheme_params() + good.scheme_params_size());
    d.sections = {{10, 16, good.data() + raw.offset, raw.size}};
    ecq::coding_options o;
    o.scale_bits = int(good.geometry().scale_bits);
    o.lanes = 32;
    o.tile_rows = 32;
    o.chunk_symbols = 128;
    o.frequencies = good.frequencies().data();
    change(d, o);
    ecq::encoded_tensor t;
    EXPECT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::ok);
    ecq::gpu_tensor_layout L;
    return ecq::check_gpu_layout(t, &L);
  };
  using ecq::status;
  EXPECT_EQ(variant([](auto&, auto&) {}), status::ok);
  EXPECT_EQ(variant([](auto& d, auto&) { d.scheme_id = 3; }), status::unsupported_parameters);
  EXPECT_EQ(variant([](auto& d, auto&) { d.scheme_params.pop_back(); }), status::unsupported_parameters);
  EXPECT_EQ(variant([](auto& d, auto&) { std::swap(d.scheme_params[1], d.scheme_params[2]); }),
            status::unsupported_parameters);  // exponents out of order
  EXPECT_EQ(variant([](auto&, auto& o) { o.chunk_symbols = 64; }), status::bad_shape);
  EXPECT_EQ(variant([](auto&, auto& o) { o.lanes = 16; o.tile_rows = 32; }), status::bad_shape);
  EXPECT_EQ(variant([](auto& d, auto&) { d.sections[0].size -= 16; }), status::bad_shape);
  EXPECT_EQ(variant([](auto& d, auto&) { d.sections[0].tag = 11; }), status::bad_shape);
  EXPECT_EQ(variant([](auto& d, auto&) { d.sections.clear(); }), status::bad_shape);
  ecq::encoded_tensor empty;
  ecq::gpu_tensor_layout L;
  EXPECT_EQ(ecq::check_gpu_layout(empty, &L), status::invalid_argument);
}

TEST(GpuContainer, TablesCarryThePayloadsOfTheLayout) {
  const affine4_input a = affine4_weights(a4_rows, a4_cols, a4_group);
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, a4_rows, a4_cols, a4_group, &t),
            ecq::status::ok);
  ecq::gpu_tensor_layout L;
  ASSERT_EQ(ecq::check_gpu_layout(t, &L), ecq::status::ok);
  std::vector<std::uint32_t> gemv, codes;
  ASSERT_EQ(ecq::build_gpu_table(t, L, ecq::gpu_table_kind::gemv, &gemv), ecq::status::ok);
  ASSERT_EQ(ecq::build_gpu_table(t, L, ecq::gpu_table_kind::codes, &codes), ecq::status::ok);
  ASSERT_EQ(gemv.size(), std::size_t(1) << L.scale_bits);
  // Slot -> symbol by the cumulative frequencies; the payloads are the layout's.
  std::uint32_t slot = 0;
  for (std::uint32_t s = 0; s < 256; ++s)
    for (std::uint32_t k = 0; k < t.frequencies()[s]; ++k, ++slot) {
      EXPECT_EQ(ecq::narrow_entry::freq(gemv[slot]), t.frequencies()[s]);
      EXPECT_EQ(ecq::narrow_entry::offset(codes[slot]), k);
      EXPECT_EQ(ecq::narrow_entry::payload(gemv[slot]), ecq::gpu_layout::affine4_gemv_payload(s));
      EXPECT_EQ(ecq::narrow_entry::payload(codes[slot]), ecq::gpu_layout::affine4_code_payload(s));
    }
  EXPECT_EQ(slot, std::uint32_t(gemv.size()));
  ecq::encoded_tensor b;
  const std::vector<std::uint16_t> w = bf16_weights(bf16_rows, bf16_cols);
  ASSERT_EQ(ecq::encode_gpu_bf16(w.data(), bf16_rows, bf16_cols, &b), ecq::status::ok);
  ASSERT_EQ(ecq::check_gpu_layout(b, &L), ecq::status::ok);
  EXPECT_EQ(ecq::build_gpu_table(b, L, ecq::gpu_table_kind::codes, &codes), ecq::status::invalid_argument);
}

TEST(GpuContainer, HostDequantizeGivesTheWeights) {
  const std::vector<std::uint16_t> w = bf16_weights(bf16_rows, bf16_cols);
  ecq::encoded_tensor b;
  ASSERT_EQ(ecq::encode_gpu_bf16(w.data(), bf16_rows, bf16_cols, &b), ecq::status::ok);
  std::vector<float> v;
  ASSERT_EQ(ecq::gpu_dequantize(b, &v), ecq::status::ok);
  ASSERT_EQ(v.size(), w.size());
  for (std::size_t i = 0; i < w.size(); ++i) ASSERT_EQ(ecq::float_to_bf16(v[i]), w[i]) << i;
  const affine4_input a = affine4_weights(a4_rows, a4_cols, a4_group);
  ecq::encoded_tensor q;
  ASSERT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, a4_rows, a4_cols, a4_group, &q),
            ecq::status::ok);
  ASSERT_EQ(ecq::gpu_dequantize(q, &v), ecq::status::ok);
  ASSERT_EQ(v.size(), a.codes.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::size_t g = i / a4_group;  // rows are whole groups: row-major group index
    ASSERT_EQ(v[i], ecq::bf16_to_float(a.scales[g]) * float(a.codes[i]) + ecq::bf16_to_float(a.biases[g])) << i;
  }
  ecq::encoded_tensor plain;
  EXPECT_EQ(ecq::gpu_dequantize(plain, &v), ecq::status::invalid_argument);
}

}  // namespace
