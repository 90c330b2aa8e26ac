// docs/format.md, frozen: the committed container tests/data/golden-v1.ecq
// is decoded by a second decoder written from docs/format.md alone (namespace
// `spec` below: standard library only, no ecq code), and by the library; both
// must give the symbols that docs/format.md section 12 defines. The library's
// encoder must also reproduce the file byte for byte. Regenerate the file
// (only for a deliberate format change, with a version bump) by running this
// test with ECQ_REGENERATE_TEST_DATA=1.
#include <ecq/container.hpp>

#include "support/ecq_test_support.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace spec {

// ----- A decoder of docs/format.md version 1, independent of the library. -----

struct tensor {
  std::uint32_t scheme_id = 0;
  std::uint64_t rows = 0, cols = 0, symbols_per_row = 0;
  std::vector<std::uint8_t> scheme_params;
  struct section {
    std::uint32_t tag, item_size;
    std::vector<std::uint8_t> data;
  };
  std::vector<section> sections;
  std::vector<std::uint32_t> symbols;  // rows x symbols_per_row
};

std::uint64_t le(const std::vector<std::uint8_t>& b, std::uint64_t at, int width) {
  if (at + std::uint64_t(width) > b.size()) throw std::string("read past the end");
  std::uint64_t v = 0;
  for (int k = 0; k < width; ++k) v |= std::uint64_t(b[at + std::uint64_t(k)]) << (8 * k);
  return v;
}

std::uint64_t align16(std::uint64_t x) { return (x + 15) / 16 * 16; }

std::uint64_t rotl(std::uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

// Section 8.
std::uint64_t xxh64(const std::vector<std::uint8_t>& b, std::uint64_t len) {
  const std::uint64_t P1 = 0x9E3779B185EBCA87ull, P2 = 0xC2B2AE3D27D4EB4Full, P3 = 0x165667B19E3779F9ull,
                      P4 = 0x85EBCA77C2B2AE63ull, P5 = 0x27D4EB2F165667C5ull;
  auto round = [&](std::uint64_t acc, std::uint64_t v) { return rotl(acc + v * P2, 31) * P1; };
  auto merge = [&](std::uint64_t acc, std::uint64_t v) { return (acc ^ round(0, v)) * P1 + P4; };
  std::uint64_t acc, p = 0;
  if (len >= 32) {
    std::uint64_t v[4] = {P1 + P2, P2, 0, 0 - P1};
    for (; p + 32 <= len; p += 32)
      for (int k = 0; k < 4; ++k) v[k] = round(v[k], le(b, p + 8 * std::uint64_t(k), 8));
    acc = rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18);
    for (int k = 0; k < 4; ++k) acc = merge(acc, v[k]);
  } else {
    acc = P5;
  }
  acc += len;
  for (; p + 8 <= len; p += 8) acc = rotl(acc ^ round(0, le(b, p, 8)), 27) * P1 + P4;
  if (p + 4 <= len) {
    acc = rotl(acc ^ (le(b, p, 4) * P1), 23) * P2 + P3;
    p += 4;
  }
  for (; p < len; ++p) acc = rotl(acc ^ (std::uint64_t(b[p]) * P5), 11) * P1;
  acc ^= acc >> 33;
  acc *= P2;
  acc ^= acc >> 29;
  acc *= P3;
  acc ^= acc >> 32;
  return acc;
}

void require(bool ok, const char* what) {
  if (!ok) throw std::string(what);
}

// Section 1: canonical LEB128.
std::uint64_t varint(const std::vector<std::uint8_t>& b, std::uint64_t& p, std::uint64_t end) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    require(p < end, "varint past the table");
    const std::uint8_t byte = b[p++];
    require(!(shift > 0 && byte == 0), "overlong varint");
    v |= std::uint64_t(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return v;
  }
  throw std::string("varint too long");
}

tensor decode(const std::vector<std::uint8_t>& b) {
  tensor t;
  // Section 2.
  const std::uint8_t magic[8] = {0x89, 0x45, 0x43, 0x51, 0x0D, 0x0A, 0x1A, 0x0A};
  require(b.size() >= 80, "short header");
  for (int k = 0; k < 8; ++k) require(b[std::size_t(k)] == magic[k], "magic");
  require(le(b, 8, 4) == 1, "version");
  t.scheme_id = std::uint32_t(le(b, 12, 4));
  const std::uint64_t container_size = le(b, 16, 8);
  require(container_size == b.size() && container_size % 16 == 8, "container_size");
  t.rows = le(b, 24, 8);
  t.cols = le(b, 32, 8);
  t.symbols_per_row = le(b, 40, 8);
  const std::uint64_t chunk_symbols = le(b, 48, 8), tile_rows = le(b, 56, 4), alphabet = le(b, 60, 4);
  const std::uint64_t pad_symbol = le(b, 64, 4), lanes = le(b, 68, 2), state_bits = le(b, 70, 1),
                      word_bits = le(b, 71, 1), scale_bits = le(b, 72, 1), section_count = le(b, 73, 1),
                      scheme_params_size = le(b, 74, 2), table_size = le(b, 76, 4);
  require(state_bits == 32 && word_bits == 16 && scale_bits >= 10 && scale_bits <= 15, "coder");
  require(lanes >= 1 && tile_rows % lanes == 0 && tile_rows >= lanes, "tile");
  require(t.rows >= 1 && t.symbols_per_row >= 1 && chunk_symbols >= 1 && chunk_symbols <= t.symbols_per_row, "shape");
  require(alphabet >= 1 && pad_symbol < alphabet && section_count <= 8, "alphabet");
  // Section 8.
  require(le(b, container_size - 8, 8) == xxh64(b, container_size - 8), "checksum");

  // Section 3.
  t.scheme_params.assign(b.begin() + 80, b.begin() + 80 + std::ptrdiff_t(scheme_params_size));
  const std::uint64_t T = align16(80 + scheme_params_size);
  const std::uint64_t D = align16(T + table_size);
  const std::uint64_t I = D + 16 * section_count;

  // Section 4.
  std::uint64_t p = T;
  const std::uint64_t table_end = T + table_size;
  require(p < table_end && b[p++] == scale_bits, "table ScaleBits");
  require(varint(b, p, table_end) == alphabet, "table alphabet");
  std::vector<std::uint64_t> freq;
  bool after_zero_run = false;
  while (freq.size() < alphabet) {
    const std::uint64_t tok = varint(b, p, table_end);
    if (tok != 0) {
      require(tok <= (std::uint64_t(1) << scale_bits), "frequency");
      freq.push_back(tok);
      after_zero_run = false;
    } else {
      require(!after_zero_run, "two zero runs");
      const std::uint64_t run = varint(b, p, table_end) + 1;
      require(freq.size() + run <= alphabet, "zero run");
      freq.insert(freq.end(), run, 0);
      after_zero_run = true;
    }
  }
  require(p == table_end, "table size");
  const std::uint64_t M = std::uint64_t(1) << scale_bits;
  std::vector<std::uint64_t> start(alphabet + 1, 0);
  for (std::uint64_t s = 0; s < alphabet; ++s) start[s + 1] = start[s] + freq[s];
  require(start[alphabet] == M, "table sum");
  require(freq[pad_symbol] > 0, "pad symbol frequency");
  std::vector<std::uint32_t> symbol_of_slot(M);
  for (std::uint64_t s = 0; s < alphabet; ++s)
    for (std::uint64_t k = start[s]; k < start[s + 1]; ++k) symbol_of_slot[k] = std::uint32_t(s);

  // Section 6 geometry.
  const std::uint64_t num_tiles = (t.rows + tile_rows - 1) / tile_rows;
  const std::uint64_t num_chunks = (t.symbols_per_row + chunk_symbols - 1) / chunk_symbols;
  const std::uint64_t num_blocks = num_tiles * num_chunks;

  // Section 5.
  std::uint64_t cursor = I + 16 * num_blocks;
  for (std::uint64_t i = 0; i < section_count; ++i) {
    tensor::section s;
    s.tag = std::uint32_t(le(b, D + 16 * i, 4));
    s.item_size = std::uint32_t(le(b, D + 16 * i + 4, 4));
    const std::uint64_t size = le(b, D + 16 * i + 8, 8);
    require(size % s.item_size == 0 && cursor + size <= container_size - 8, "section");
    s.data.assign(b.begin() + std::ptrdiff_t(cursor), b.begin() + std::ptrdiff_t(cursor + size));
    t.sections.push_back(s);
    cursor = align16(cursor + size);
  }
  const std::uint64_t P = cursor;

  // Sections 6 and 7.
  t.symbols.assign(t.rows * t.symbols_per_row, 0xffffffffu);
  const std::uint64_t L = 1u << 15, U = 1u << 31;
  std::uint64_t expected_offset = 0;
  for (std::uint64_t blk = 0; blk < num_blocks; ++blk) {
    const std::uint64_t tile = blk / num_chunks, chunk = blk % num_chunks;
    const std::uint64_t offset = le(b, I + 16 * blk, 8), size = le(b, I + 16 * blk + 8, 8);
    require(offset == expected_offset && size % 2 == 0 && size >= 4 * lanes, "block index");
    expected_offset = align16(offset + size);
    const std::uint64_t first_row = tile * tile_rows;
    const std::uint64_t R = std::min(t.rows, first_row + tile_rows) - first_row;
    const std::uint64_t G = (R + lanes - 1) / lanes;
    const std::uint64_t first_col = chunk * chunk_symbols;
    const std::uint64_t C = std::min(t.symbols_per_row, first_col + chunk_symbols) - first_col;
    const std::uint64_t n = G * lanes * C;
    const std::uint64_t words = size / 2;
    auto word = [&](std::uint64_t k) { return le(b, P + offset + 2 * k, 2); };
    std::vector<std::uint64_t> x(lanes);
    for (std::uint64_t j = 0; j < lanes; ++j) {
      x[j] = word(2 * j) + (word(2 * j + 1) << 16);
      require(x[j] >= L && x[j] < U, "initial state");
    }
    std::uint64_t next = 2 * lanes;
    for (std::uint64_t i = 0; i < n; ++i) {
      const std::uint64_t j = i % lanes;
      const std::uint64_t slot = x[j] % M;
      const std::uint32_t s = symbol_of_slot[slot];
      x[j] = freq[s] * (x[j] / M) + slot - start[s];
      if (x[j] < L) {
        require(next < words, "stream too short");
        x[j] = x[j] * 65536 + word(next++);
      }
      const std::uint64_t r = i % lanes, c = (i / lanes) % C, g = i / lanes / C;
      const std::uint64_t row = first_row + g * lanes + r;
      if (row < t.rows) {
        t.symbols[row * t.symbols_per_row + first_col + c] = s;
      } else {
        require(s == pad_symbol, "padding symbol");
      }
    }
    for (std::uint64_t j = 0; j < lanes; ++j) require(x[j] == L, "final state");
    require(next == words, "words left over");
  }
  require(P + expected_offset == container_size - 8, "payload end");
  return t;
}

}  // namespace spec

namespace {

namespace fs = std::filesystem;

const fs::path golden_path = fs::path(ECQ_SOURCE_DIR) / "tests/data/golden-v1.ecq";

// docs/format.md section 12.
constexpr std::uint64_t golden_rows = 21, golden_spr = 23;

std::uint32_t golden_symbol(std::uint64_t r, std::uint64_t c) {
  const std::uint64_t h = (r * 131 + c * 71 + 17) % 29;
  return h < 10 ? 0 : h < 16 ? 1 : h < 20 ? 2 : h < 23 ? 3 : h < 25 ? 4 : h < 26 ? 5 : h < 27 ? 7 : h < 28 ? 9 : 11;
}

std::vector<std::uint32_t> golden_symbols() {
  std::vector<std::uint32_t> s;
  for (std::uint64_t r = 0; r < golden_rows; ++r)
    for (std::uint64_t c = 0; c < golden_spr; ++c) s.push_back(golden_symbol(r, c));
  return s;
}

const std::uint32_t golden_section1[6] = {1000, 2000, 3000, 4000, 5000, 6000};
const std::uint16_t golden_section2[3] = {7, 8, 9};

ecq::status encode_golden(ecq::encoded_tensor* out) {
  ecq::tensor_description d;
  d.rows = golden_rows;
  d.cols = 46;
  d.symbols_per_row = golden_spr;
  d.alphabet_size = 12;
  d.scheme_id = 0x474F4C44;
  d.scheme_params = {'g', 'o', 'l', 'd', 0};
  d.sections = {{1, 4, golden_section1, sizeof golden_section1}, {2, 2, golden_section2, sizeof golden_section2}};
  ecq::coding_options o;
  o.scale_bits = 11;
  o.lanes = 8;
  o.tile_rows = 16;
  o.chunk_symbols = 10;
  const std::vector<std::uint32_t> wide = golden_symbols();
  const std::vector<std::uint16_t> symbols(wide.begin(), wide.end());
  return ecq_test::encode(symbols.data(), d, o, out);
}

std::vector<std::uint8_t> read_golden() {
  if (std::getenv("ECQ_REGENERATE_TEST_DATA") != nullptr) {
    ecq::encoded_tensor t;
    if (encode_golden(&t) == ecq::status::ok) {
      fs::create_directories(golden_path.parent_path());
      std::ofstream(golden_path, std::ios::binary).write(reinterpret_cast<const char*>(t.data()), std::streamsize(t.size()));
    }
  }
  std::ifstream f(golden_path, std::ios::binary);
  return std::vector<std::uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

TEST(FormatGolden, SpecDecoderReadsTheGoldenFile) {
  const std::vector<std::uint8_t> file = read_golden();
  ASSERT_FALSE(file.empty()) << golden_path;
  spec::tensor t;
  try {
    t = spec::decode(file);
  } catch (const std::string& e) {
    FAIL() << "spec decoder: " << e;
  }
  EXPECT_EQ(t.symbols, golden_symbols());
  EXPECT_EQ(t.scheme_id, 0x474F4C44u);
  EXPECT_EQ(t.cols, 46u);
  EXPECT_EQ(t.scheme_params, (std::vector<std::uint8_t>{'g', 'o', 'l', 'd', 0}));
  ASSERT_EQ(t.sections.size(), 2u);
  EXPECT_EQ(t.sections[0].tag, 1u);
  EXPECT_EQ(t.sections[0].item_size, 4u);
  ASSERT_EQ(t.sections[0].data.size(), sizeof golden_section1);
  EXPECT_EQ(std::memcmp(t.sections[0].data.data(), golden_section1, sizeof golden_section1), 0);
  EXPECT_EQ(t.sections[1].tag, 2u);
  ASSERT_EQ(t.sections[1].data.size(), sizeof golden_section2);
  EXPECT_EQ(std::memcmp(t.sections[1].data.data(), golden_section2, sizeof golden_section2), 0);
}

TEST(FormatGolden, SpecDecoderRejectsADamagedCopy) {
  std::vector<std::uint8_t> file = read_golden();
  ASSERT_GT(file.size(), 200u);
  file[file.size() - 20] ^= 0x10;
  EXPECT_THROW(spec::decode(file), std::string);
}

TEST(FormatGolden, LibraryDecodesTheGoldenFile) {
  const std::vector<std::uint8_t> file = read_golden();
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq::encoded_tensor::open(file.data(), file.size(), &t), ecq::status::ok);
  std::vector<std::uint16_t> decoded(golden_rows * golden_spr);
  ASSERT_EQ(ecq_test::decode_checked(t, decoded.data(), decoded.size()), ecq::status::ok);
  const std::vector<std::uint32_t> symbols(decoded.begin(), decoded.end());
  EXPECT_EQ(symbols, golden_symbols());
  spec::tensor s;
  try {
    s = spec::decode(file);
  } catch (const std::string& e) {
    FAIL() << "spec decoder: " << e;
  }
  EXPECT_EQ(symbols, s.symbols);
  const ecq::tensor_geometry& g = t.geometry();
  EXPECT_EQ(g.num_tiles(), 2u);
  EXPECT_EQ(g.num_chunks(), 3u);
  EXPECT_EQ(g.scale_bits, 11u);
  EXPECT_EQ(t.overhead().padding_symbols, 3u * golden_spr);
}

TEST(FormatGolden, LibraryEncoderReproducesTheGoldenFile) {
  const std::vector<std::uint8_t> file = read_golden();
  ecq::encoded_tensor t;
  ASSERT_EQ(encode_golden(&t), ecq::status::ok);
  ASSERT_EQ(t.size(), file.size());
  EXPECT_EQ(std::vector<std::uint8_t>(t.data(), t.data() + t.size()), file);
}

}  // namespace
