// Tests for ecq/container.hpp: round trips over the parameter space, a real
// tensor (4-bit affine codes of a use-lite weight matrix, or synthetic
// weights when ../shared/data is absent), every truncation, 10 000 random
// bit flips, every header rule, the byte accounting, and the seed corpora of
// the container and round_trip fuzz targets (regenerated with
// ECQ_REGENERATE_TEST_DATA=1, checked on every run).
#include <ecq/checksum.hpp>
#include <ecq/container.hpp>

#include <gtest/gtest.h>

#include "support/ecq_test_support.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using bytes = std::vector<std::uint8_t>;

bytes read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  return bytes(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_file(const fs::path& p, const std::uint8_t* data, std::size_t size) {
  fs::create_directories(p.parent_path());
  std::ofstream f(p, std::ios::binary);
  f.write(reinterpret_cast<const char*>(data), std::streamsize(size));
  ASSERT_TRUE(f.good()) << p;
}

// ---------------------------------------------------------------------------
// Test data.

// Skewed synthetic symbols: a discretised Gaussian around the alphabet's middle.
std::vector<std::uint16_t> gaussian_symbols(std::size_t n, std::uint32_t alphabet, double sigma, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> d(double(alphabet - 1) / 2.0, sigma);
  std::vector<std::uint16_t> s(n);
  for (auto& x : s) x = std::uint16_t(std::clamp(std::lround(d(rng)), 0l, long(alphabet - 1)));
  return s;
}

// The smallest safetensors reader that serves this test: finds one F32
// tensor by name and returns its values and shape (empty when absent). Reads
// only the header and that tensor (the file is 28 MB).
std::vector<float> read_safetensors_f32(const fs::path& file, const std::string& name, std::vector<std::uint64_t>* shape) {
  std::ifstream f(file, std::ios::binary);
  std::uint8_t size_bytes[8] = {};
  if (!f.read(reinterpret_cast<char*>(size_bytes), 8)) return {};
  std::uint64_t header_size = 0;
  for (int k = 0; k < 8; ++k) header_size |= std::uint64_t(size_bytes[k]) << (8 * k);
  if (header_size > (std::uint64_t(1) << 24)) return {};
  std::string header(std::size_t(header_size), '\0');
  if (!f.read(header.data(), std::streamsize(header_size))) return {};
  const std::size_t at = header.find("\"" + name + "\"");
  if (at == std::string::npos) return {};
  const std::size_t end = header.find('}', at);
  const std::string entry = header.substr(at, end - at);
  if (entry.find("\"F32\"") == std::string::npos) return {};
  auto numbers_after = [&](const std::string& key) {
    std::vector<std::uint64_t> v;
    std::size_t p = entry.find(key);
    if (p == std::string::npos) return v;
    p = entry.find('[', p) + 1;
    const std::size_t close = entry.find(']', p);
    while (p < close) {
      v.push_back(std::strtoull(entry.c_str() + p, nullptr, 10));
      p = entry.find_first_of(",]", p) + 1;
    }
    return v;
  };
  *shape = numbers_after("\"shape\"");
  const std::vector<std::uint64_t> offsets = numbers_after("\"data_offsets\"");
  if (offsets.size() != 2 || offsets[1] < offsets[0] || (offsets[1] - offsets[0]) % 4 != 0) return {};
  std::vector<float> values((offsets[1] - offsets[0]) / 4);
  f.seekg(std::streamoff(8 + header_size + offsets[0]));
  if (!f.read(reinterpret_cast<char*>(values.data()), std::streamsize(values.size() * 4))) return {};
  return values;
}

// 4-bit affine codes (groups of 64 along a row, min/max) of a 128 x 512 slice
// of a real weight matrix: 65 536 symbols. Scales and biases, rounded to
// bf16 (the top 16 bits of the float), become sections.
struct quantised_tensor {
  std::uint64_t rows = 128, cols = 512;
  std::vector<std::uint16_t> codes;
  std::vector<std::uint16_t> scales, biases;
  bool real = false;
};

quantised_tensor real_tensor() {
  quantised_tensor q;
  std::vector<std::uint64_t> shape;
  const fs::path file = fs::path(ECQ_SHARED_DATA_DIR) / "use-lite.safetensors";
  std::vector<float> w;
  if (fs::exists(file)) w = read_safetensors_f32(file, "module/Encoder_en/hidden_layers/tanh_layer_0/weights", &shape);
  q.real = !w.empty() && shape.size() == 2 && shape[1] == q.cols && shape[0] >= q.rows;
  if (!q.real) {  // synthetic, heavy-tailed like real weights
    std::mt19937_64 rng(1);
    std::student_t_distribution<float> t(4.0f);
    w.resize(q.rows * q.cols);
    for (auto& x : w) x = 0.02f * t(rng);
  }
  q.codes.resize(q.rows * q.cols);
  for (std::uint64_t g = 0; g < q.rows * q.cols / 64; ++g) {
    const float* x = w.data() + g * 64;
    const float lo = *std::min_element(x, x + 64), hi = *std::max_element(x, x + 64);
    auto bf16 = [](float f) {
      std::uint32_t u;
      std::memcpy(&u, &f, 4);
      return std::uint16_t(u >> 16);
    };
    auto from_bf16 = [](std::uint16_t h) {
      const std::uint32_t u = std::uint32_t(h) << 16;
      float f;
      std::memcpy(&f, &u, 4);
      return f;
    };
    q.scales.push_back(bf16(hi > lo ? (hi - lo) / 15.0f : 1.0f));
    q.biases.push_back(bf16(lo));
    const float scale = from_bf16(q.scales.back());
    for (int i = 0; i < 64; ++i)
      q.codes[g * 64 + std::uint64_t(i)] =
          std::uint16_t(std::clamp(std::lround((x[i] - from_bf16(q.biases.back())) / scale), 0l, 15l));
  }
  return q;
}

ecq::tensor_description describe(const quantised_tensor& q) {
  ecq::tensor_description d;
  d.rows = q.rows;
  d.cols = q.cols;
  d.symbols_per_row = q.cols;
  d.alphabet_size = 16;
  d.scheme_id = 0x1234;
  d.scheme_params = {4, 64};  // e.g. bits and group size, opaque to the container
  d.sections.push_back({1, 2, q.scales.data(), q.scales.size() * 2});
  d.sections.push_back({2, 2, q.biases.data(), q.biases.size() * 2});
  return d;
}

// The robustness tests cut the tensor into 16 blocks of 32 rows x 128
// columns, so that a damaged block is cheap to decode on its own.
ecq::coding_options robustness_options() {
  ecq::coding_options o;
  o.chunk_symbols = 128;
  return o;
}

// A container in 16-byte-aligned memory that tests may modify in place.
struct aligned_copy {
  std::vector<std::uint64_t> storage;
  std::size_t size;
  explicit aligned_copy(const ecq::encoded_tensor& t) : storage(t.size() / 8 + 2), size(t.size()) {
    std::memcpy(storage.data(), t.data(), size);
  }
  std::uint8_t* data() { return reinterpret_cast<std::uint8_t*>(storage.data()); }
};

void put_u64(std::uint8_t* p, std::uint64_t v) {
  for (int k = 0; k < 8; ++k) p[k] = std::uint8_t(v >> (8 * k));
}

// ---------------------------------------------------------------------------
// Round trips.

void expect_round_trip(const std::vector<std::uint16_t>& symbols, const ecq::tensor_description& d,
                       const ecq::coding_options& o) {
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::ok);
  ecq::encoded_tensor opened;
  ASSERT_EQ(ecq::encoded_tensor::open(t.data(), t.size(), &opened), ecq::status::ok);
  std::vector<std::uint16_t> out(symbols.size(), 0xffff);
  ASSERT_EQ(ecq_test::decode_checked(opened, out.data(), out.size()), ecq::status::ok);
  ASSERT_EQ(out, symbols);
  std::vector<std::uint16_t> fast(symbols.size(), 0xffff);
  ecq_test::decode(opened, fast.data());
  ASSERT_EQ(fast, symbols);
  const ecq::tensor_geometry& g = opened.geometry();
  EXPECT_EQ(g.rows, d.rows);
  EXPECT_EQ(g.symbols_per_row, d.symbols_per_row);
  EXPECT_EQ(g.lanes, o.lanes);
  EXPECT_EQ(g.scale_bits, std::uint32_t(o.scale_bits));
  EXPECT_EQ(opened.frequencies(), t.frequencies());
}

TEST(Container, RoundTripsAcrossTheSupportedParameters) {
  std::mt19937_64 rng(99);
  for (int scale_bits = 10; scale_bits <= 15; ++scale_bits)
    for (std::uint32_t lanes : {1u, 8u, 16u, 32u, 64u}) {
      const std::uint64_t rows = 1 + rng() % 70, spr = 1 + rng() % 60;
      const std::uint32_t alphabet_limit = std::uint32_t(1) << ecq::decode_symbol_bits(scale_bits);
      const std::uint32_t alphabet = 1 + std::uint32_t(rng() % std::min<std::uint32_t>(alphabet_limit, 1024));
      ecq::tensor_description d;
      d.rows = rows;
      d.cols = spr * 2;
      d.symbols_per_row = spr;
      d.alphabet_size = alphabet;
      ecq::coding_options o;
      o.scale_bits = scale_bits;
      o.lanes = lanes;
      o.tile_rows = lanes * std::uint32_t(1 + rng() % 3);
      o.chunk_symbols = rng() % 2 ? 0 : 1 + rng() % spr;
      SCOPED_TRACE(testing::Message() << "S=" << scale_bits << " N=" << lanes << " rows=" << rows << " spr=" << spr
                                      << " A=" << alphabet << " tile=" << o.tile_rows << " chunk=" << o.chunk_symbols);
      expect_round_trip(gaussian_symbols(rows * spr, alphabet, 1.0 + double(alphabet) / 8.0, rng()), d, o);
    }
}

TEST(Container, RoundTripsLargeAlphabetsAndDegenerateTensors) {
  ecq::tensor_description d;
  d.rows = 33;
  d.cols = d.symbols_per_row = 200;
  d.alphabet_size = 4096;
  ecq::coding_options o;
  o.scale_bits = 15;
  o.lanes = 16;
  expect_round_trip(gaussian_symbols(33 * 200, 4096, 600.0, 3), d, o);
  // One symbol everywhere: a stream of states only.
  d.alphabet_size = 1;
  o.scale_bits = 10;
  expect_round_trip(std::vector<std::uint16_t>(33 * 200, 0), d, o);
  // One row, one column.
  d.rows = d.cols = d.symbols_per_row = 1;
  d.alphabet_size = 5;
  expect_round_trip({4}, d, o);
}

TEST(Container, UsesAGivenFrequencyTable) {
  const std::vector<std::uint16_t> symbols = gaussian_symbols(40 * 30, 8, 1.5, 4);
  std::vector<std::uint32_t> freqs = {16, 64, 200, 250, 250, 200, 30, 14};  // sums to 1024
  ecq::tensor_description d;
  d.rows = 40;
  d.cols = d.symbols_per_row = 30;
  d.alphabet_size = 8;
  ecq::coding_options o;
  o.scale_bits = 10;
  o.lanes = 8;
  o.frequencies = freqs.data();
  expect_round_trip(symbols, d, o);
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::ok);
  EXPECT_EQ(t.frequencies(), freqs);
  EXPECT_EQ(t.geometry().pad_symbol, 3u);  // the first most frequent symbol
  // A symbol the given table cannot code.
  freqs = {0, 80, 200, 250, 250, 200, 30, 14};
  EXPECT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::invalid_argument);
  freqs = {1, 80, 200, 250, 250, 200, 30, 14};  // sums to 1025
  EXPECT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::corrupt_table);
}

TEST(Container, RealTensorRoundTripSectionsAndOverhead) {
  const quantised_tensor q = real_tensor();
  RecordProperty("real_weights", q.real ? "use-lite tanh_layer_0 rows 0-127" : "synthetic (../shared/data absent)");
  const ecq::tensor_description d = describe(q);
  for (std::uint32_t lanes : {8u, 32u}) {
    ecq::coding_options o;
    o.lanes = lanes;
    expect_round_trip(q.codes, d, o);
  }
  ecq::coding_options o;
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(q.codes.data(), d, o, &t), ecq::status::ok);
  const ecq::encoded_tensor_view v = t.view();
  ASSERT_EQ(v.num_sections, 2u);
  const ecq::section_view* scales = v.find_section(1);
  ASSERT_NE(scales, nullptr);
  ASSERT_EQ(scales->size, q.scales.size() * 2);
  EXPECT_EQ(std::memcmp(v.section_data(*scales), q.scales.data(), scales->size), 0);
  EXPECT_EQ(scales->offset % 16, 0u);
  EXPECT_EQ(t.scheme_params_size(), 2u);
  EXPECT_EQ(t.scheme_params()[1], 64);
  EXPECT_EQ(t.geometry().scheme_id, 0x1234u);

  const ecq::container_overhead ov = t.overhead();
  EXPECT_EQ(ov.container_bytes, t.size());
  EXPECT_EQ(ov.header_bytes + ov.table_bytes + ov.directory_bytes + ov.index_bytes + ov.section_bytes + ov.state_bytes +
                ov.word_bytes + ov.block_padding_bytes + ov.checksum_bytes,
            ov.container_bytes);
  EXPECT_EQ(ov.blocks, 4u);                  // 128 rows / 32-row tiles, whole rows
  EXPECT_EQ(ov.state_bytes, 4u * 32 * 4);    // 32 four-byte states per block
  EXPECT_EQ(ov.index_bytes, 4u * 16);
  EXPECT_EQ(ov.section_bytes, 2u * 1024 * 2);
  EXPECT_EQ(ov.coded_symbols, q.codes.size());
  EXPECT_EQ(ov.padding_symbols, 0u);
  // The coded size is near the entropy of the codes: normalisation and rANS
  // cost a fraction of a percent, and the flushed states hold up to 31 bits
  // each of which about half is information (this bound is loose on purpose).
  std::vector<std::uint64_t> counts(16);
  for (auto c : q.codes) ++counts[c];
  const double entropy_bytes = ecq::entropy_bits_per_symbol(counts.data(), 16) * double(q.codes.size()) / 8.0;
  EXPECT_LT(double(ov.word_bytes), entropy_bytes * 1.005);
  EXPECT_LT(double(ov.word_bytes + ov.state_bytes), entropy_bytes * 1.005 + double(ov.state_bytes));
  std::printf("real tensor (%s): %zu symbols, entropy %.0f B, words %llu B, states %llu B, index %llu B, "
              "flush+index %.3f %% of words, container %llu B\n",
              q.real ? "use-lite" : "synthetic", q.codes.size(), entropy_bytes, (unsigned long long)ov.word_bytes,
              (unsigned long long)ov.state_bytes, (unsigned long long)ov.index_bytes, 100.0 * ov.flush_index_fraction(),
              (unsigned long long)ov.container_bytes);
}

TEST(Container, OverheadCountsPaddingRows) {
  ecq::tensor_description d;
  d.rows = 21;  // 2 tiles of 16 rows with N = 8: the last has 5 rows in one group of 8
  d.cols = d.symbols_per_row = 10;
  d.alphabet_size = 4;
  ecq::coding_options o;
  o.lanes = 8;
  o.tile_rows = 16;
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(gaussian_symbols(210, 4, 1.0, 5).data(), d, o, &t), ecq::status::ok);
  const ecq::container_overhead ov = t.overhead();
  EXPECT_EQ(ov.padding_symbols, 3u * 10);
  EXPECT_EQ(ov.coded_symbols, 24u * 10);
  EXPECT_GT(ov.padding_symbol_bytes, 0.0);
}

// ---------------------------------------------------------------------------
// Untrusted bytes.

TEST(ContainerOpen, EveryTruncationIsReported) {
  const quantised_tensor q = real_tensor();
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(q.codes.data(), describe(q), robustness_options(), &t), ecq::status::ok);
  aligned_copy c(t);
  for (std::size_t n = 0; n < c.size; ++n) {
    ecq::encoded_tensor u;
    ASSERT_EQ(ecq::encoded_tensor::open_borrowed(c.data(), n, &u), ecq::status::truncated) << n;
    ASSERT_EQ(ecq::encoded_tensor::open_borrowed(c.data(), n, &u, ecq::open_options{false}), ecq::status::truncated)
        << n;
    ASSERT_EQ(u.data(), nullptr);
  }
}

TEST(ContainerOpen, TruncationsDisguisedAsCompleteFilesAreRejected) {
  // A truncated file whose container_size and checksum were patched to match
  // its new length: only the layout rules can catch it. Every length from
  // the header on is tried.
  const quantised_tensor q = real_tensor();
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(q.codes.data(), describe(q), robustness_options(), &t), ecq::status::ok);
  aligned_copy c(t);
  std::uint8_t saved[8];
  for (std::size_t n = ecq::container_header_size + 8; n < c.size; ++n) {
    std::memcpy(saved, c.data() + n - 8, 8);
    put_u64(c.data() + 16, n);
    put_u64(c.data() + n - 8, ecq::xxh64(c.data(), n - 8));
    ecq::encoded_tensor u;
    const ecq::status st = ecq::encoded_tensor::open_borrowed(c.data(), n, &u);
    ASSERT_NE(st, ecq::status::ok) << n;
    ASSERT_NE(st, ecq::status::checksum_mismatch) << n;
    std::memcpy(c.data() + n - 8, saved, 8);
  }
  put_u64(c.data() + 16, c.size);
  ecq::encoded_tensor u;
  EXPECT_EQ(ecq::encoded_tensor::open_borrowed(c.data(), c.size, &u), ecq::status::ok);
}

TEST(ContainerOpen, TenThousandRandomBitFlips) {
  // Each flip, with the checksum verified: always an error. Without it: the
  // container opens and decodes to exactly the original symbols, or a
  // status reports the damage; nothing reads or writes out of bounds
  // (AddressSanitizer in the asan preset). Flips that no check can see
  // without the checksum (side data, scheme parameters, unused header bits,
  // and the rare stream flip that rANS decoding heals before the final state
  // check) are counted, not failed.
  // Runtime: blocks are independent streams, so a flip inside one block's
  // bytes is decoded by decoding that block alone; a flip anywhere else
  // (header, table, index, sections) decodes the whole tensor.
  const quantised_tensor q = real_tensor();
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(q.codes.data(), describe(q), robustness_options(), &t), ecq::status::ok);
  aligned_copy c(t);
  const ecq::tensor_geometry& g = t.geometry();
  std::mt19937_64 rng(12345);
  std::vector<std::uint16_t> out(q.codes.size());
  int detected_unverified = 0, exact = 0, silent = 0;
  for (int trial = 0; trial < 10000; ++trial) {
    const std::uint64_t bit = rng() % (c.size * 8);
    c.data()[bit / 8] ^= std::uint8_t(1u << (bit % 8));
    ecq::encoded_tensor u;
    ASSERT_NE(ecq::encoded_tensor::open_borrowed(c.data(), c.size, &u), ecq::status::ok) << "bit " << bit;
    ecq::status st = ecq::encoded_tensor::open_borrowed(c.data(), c.size, &u, ecq::open_options{false});
    std::uint64_t first_block = 0, last_block = g.num_blocks();
    if (st == ecq::status::ok) {
      const ecq::encoded_tensor_view v = u.view();
      for (std::uint64_t b = 0; b < g.num_blocks(); ++b) {
        const ecq::block_view bv = v.block(b / g.num_chunks(), b % g.num_chunks());
        const std::uint64_t begin = std::uint64_t(bv.data - c.data());
        if (bit / 8 >= begin && bit / 8 < begin + bv.size_bytes) first_block = b, last_block = b + 1;
      }
      std::copy(q.codes.begin(), q.codes.end(), out.begin());
      for (std::uint64_t b = first_block; b < last_block && st == ecq::status::ok; ++b)
        st = u.decode_block_checked(b / g.num_chunks(), b % g.num_chunks(), out.data(), out.size());
    }
    if (st != ecq::status::ok) {
      ++detected_unverified;
    } else if (out == q.codes) {
      ++exact;
    } else {
      ++silent;
    }
    c.data()[bit / 8] ^= std::uint8_t(1u << (bit % 8));
  }
  std::printf("bit flips without checksum: %d detected, %d decoded exactly, %d decoded to other symbols\n",
              detected_unverified, exact, silent);
  EXPECT_EQ(detected_unverified + exact + silent, 10000);
  EXPECT_GT(detected_unverified, 5000);  // most bytes are stream words, which the checked decoder checks
}

// Patches one field of a valid container (checksum refreshed), opens it
// and, if that works, decodes it; returns the first error.
ecq::status open_with_field(const ecq::encoded_tensor& t, std::size_t offset, int width, std::uint64_t value) {
  aligned_copy c(t);
  for (int k = 0; k < width; ++k) c.data()[offset + std::size_t(k)] = std::uint8_t(value >> (8 * k));
  put_u64(c.data() + c.size - 8, ecq::xxh64(c.data(), c.size - 8));
  ecq::encoded_tensor u;
  ecq::status st = ecq::encoded_tensor::open_borrowed(c.data(), c.size, &u);
  if (st != ecq::status::ok) return st;
  std::vector<std::uint16_t> out(std::size_t(u.geometry().rows * u.geometry().symbols_per_row));
  return ecq_test::decode_checked(u, out.data(), out.size());
}

TEST(ContainerOpen, HeaderRules) {
  const std::vector<std::uint16_t> symbols = gaussian_symbols(40 * 50, 16, 2.0, 8);
  ecq::tensor_description d;
  d.rows = 40;
  d.cols = d.symbols_per_row = 50;
  d.alphabet_size = 16;
  const std::uint32_t scale_data[4] = {1, 2, 3, 4};
  d.sections.push_back({5, 4, scale_data, sizeof scale_data});
  ecq::coding_options o;
  o.lanes = 8;
  o.tile_rows = 16;
  o.chunk_symbols = 20;
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::ok);
  using ecq::status;
  EXPECT_EQ(open_with_field(t, 0, 0, 0), status::ok);                    // the unmodified container
  EXPECT_EQ(open_with_field(t, 0, 1, 0x88), status::bad_magic);
  EXPECT_EQ(open_with_field(t, 8, 4, 2), status::unsupported_version);
  EXPECT_EQ(open_with_field(t, 12, 4, 99), status::ok);                  // scheme id: opaque
  EXPECT_EQ(open_with_field(t, 16, 8, t.size() + 16), status::truncated);
  EXPECT_EQ(open_with_field(t, 16, 8, t.size() - 16), status::trailing_data);
  EXPECT_EQ(open_with_field(t, 24, 8, 0), status::bad_shape);            // rows
  EXPECT_EQ(open_with_field(t, 24, 8, 1000), status::bad_offset);        // rows: more blocks than the index holds
  EXPECT_EQ(open_with_field(t, 24, 8, 41), status::truncated);           // rows: the last tile gains a row group
  EXPECT_EQ(open_with_field(t, 24, 8, 39), status::corrupt_stream);      // rows: real row 39 decodes as padding
  EXPECT_EQ(open_with_field(t, 32, 8, 7), status::ok);                   // cols: for the scheme
  EXPECT_EQ(open_with_field(t, 32, 8, 0), status::bad_shape);
  EXPECT_EQ(open_with_field(t, 40, 8, 0), status::bad_shape);            // symbols_per_row
  EXPECT_EQ(open_with_field(t, 48, 8, 51), status::bad_shape);           // chunk > symbols_per_row
  EXPECT_EQ(open_with_field(t, 48, 8, 0), status::bad_shape);            // chunk
  EXPECT_EQ(open_with_field(t, 56, 4, 12), status::bad_shape);           // tile_rows not a multiple of lanes
  EXPECT_EQ(open_with_field(t, 56, 4, 4), status::bad_shape);            // tile_rows < lanes
  EXPECT_EQ(open_with_field(t, 60, 4, 17), status::corrupt_table);       // alphabet != table
  EXPECT_EQ(open_with_field(t, 60, 4, 0), status::corrupt_table);
  EXPECT_EQ(open_with_field(t, 64, 4, 16), status::corrupt_table);       // pad symbol outside the alphabet
  EXPECT_EQ(open_with_field(t, 68, 2, 4), status::unsupported_parameters);   // lanes
  EXPECT_EQ(open_with_field(t, 70, 1, 64), status::unsupported_parameters);  // state bits
  EXPECT_EQ(open_with_field(t, 71, 1, 8), status::unsupported_parameters);   // word bits
  EXPECT_EQ(open_with_field(t, 72, 1, 16), status::unsupported_parameters);  // scale bits
  EXPECT_EQ(open_with_field(t, 72, 1, 6), status::unsupported_parameters);  // below the range 7..15
  EXPECT_EQ(open_with_field(t, 72, 1, 9), status::corrupt_table);         // in range, but not the table's
  EXPECT_EQ(open_with_field(t, 72, 1, 13), status::corrupt_table);       // scale bits != the table's
  EXPECT_EQ(open_with_field(t, 73, 1, 9), status::bad_offset);           // more sections than allowed
  EXPECT_EQ(open_with_field(t, 73, 1, 0), status::bad_offset);           // directory no longer matches
  EXPECT_EQ(open_with_field(t, 74, 2, 1), status::corrupt_table);        // scheme params: the table moves
  EXPECT_EQ(open_with_field(t, 76, 4, 3), status::corrupt_table);        // table size shorter than the table
  // Section directory (one entry), then the block index.
  const std::size_t directory = std::size_t(t.view().index_offset) - 16;
  const std::size_t index = std::size_t(t.view().index_offset);
  EXPECT_EQ(open_with_field(t, directory, 4, 77), status::ok);           // tag: opaque
  EXPECT_EQ(open_with_field(t, directory + 4, 4, 3), status::bad_offset);   // item size not a power of two
  EXPECT_EQ(open_with_field(t, directory + 4, 4, 32), status::bad_offset);  // item size above 16
  EXPECT_EQ(open_with_field(t, directory + 8, 8, 15), status::bad_offset);  // size not a multiple of the item size
  EXPECT_EQ(open_with_field(t, directory + 8, 8, 12), status::bad_offset);  // payload moves
  EXPECT_EQ(open_with_field(t, index, 8, 16), status::bad_offset);         // offset of block 0 must be 0
  EXPECT_EQ(open_with_field(t, index + 8, 8, 31), status::bad_offset);     // odd size
  EXPECT_EQ(open_with_field(t, index + 8, 8, 8), status::bad_offset);      // smaller than the states
  EXPECT_EQ(open_with_field(t, index + 8, 8, 1u << 20), status::bad_offset);  // larger than the symbols allow
}

TEST(ContainerOpen, NonzeroPaddingIsRejected) {
  const std::vector<std::uint16_t> symbols = gaussian_symbols(9 * 7, 16, 2.0, 6);
  ecq::tensor_description d;
  d.rows = 9;
  d.cols = d.symbols_per_row = 7;
  d.alphabet_size = 16;
  d.scheme_params = {1, 2, 3};
  ecq::coding_options o;
  o.lanes = 8;
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::ok);
  EXPECT_EQ(open_with_field(t, 83, 1, 1), ecq::status::bad_offset);  // after the 3 scheme bytes
  // The last block's padding sits just before the checksum when its size is not a multiple of 16.
  const ecq::block_view last = t.view().block(1, 0);
  ASSERT_NE(last.size_bytes % 16, 0u);
  const std::size_t pad_at = std::size_t(last.data - t.data() + std::ptrdiff_t(last.size_bytes));
  EXPECT_EQ(open_with_field(t, pad_at, 1, 1), ecq::status::bad_offset);
}

TEST(ContainerOpen, ChecksumMismatchAndBorrowedAlignment) {
  const std::vector<std::uint16_t> symbols = gaussian_symbols(16 * 16, 16, 2.0, 7);
  ecq::tensor_description d;
  d.rows = d.cols = d.symbols_per_row = 16;
  d.alphabet_size = 16;
  ecq::coding_options o;
  o.lanes = 16;
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::ok);
  aligned_copy c(t);
  c.data()[c.size - 1] ^= 1;
  ecq::encoded_tensor u;
  EXPECT_EQ(ecq::encoded_tensor::open_borrowed(c.data(), c.size, &u), ecq::status::checksum_mismatch);
  EXPECT_EQ(ecq::encoded_tensor::open_borrowed(c.data(), c.size, &u, ecq::open_options{false}), ecq::status::ok);
  EXPECT_EQ(u.data(), c.data());  // borrowed, not copied
  c.data()[c.size - 1] ^= 1;
  std::vector<std::uint64_t> shifted(c.storage.size() + 1);
  std::uint8_t* odd = reinterpret_cast<std::uint8_t*>(shifted.data()) + 8;
  std::memcpy(odd, c.data(), c.size);
  EXPECT_EQ(ecq::encoded_tensor::open_borrowed(odd, c.size, &u), ecq::status::invalid_argument);
  EXPECT_EQ(ecq::encoded_tensor::open(odd, c.size, &u), ecq::status::ok);  // open copies into aligned storage
}

TEST(ContainerDecode, BlockAccessAndArgumentErrors) {
  const std::vector<std::uint16_t> symbols = gaussian_symbols(20 * 30, 16, 2.0, 10);
  ecq::tensor_description d;
  d.rows = 20;
  d.cols = d.symbols_per_row = 30;
  d.alphabet_size = 16;
  ecq::coding_options o;
  o.lanes = 8;
  o.chunk_symbols = 12;
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::ok);
  ASSERT_EQ(t.geometry().num_tiles(), 3u);
  ASSERT_EQ(t.geometry().num_chunks(), 3u);
  // Decoding the blocks one by one, in any order, rebuilds the tensor.
  std::vector<std::uint16_t> out(symbols.size(), 0xffff);
  for (std::uint64_t b = 9; b-- > 0;) {
    ASSERT_EQ(t.decode_block_checked(b / 3, b % 3, out.data(), out.size()), ecq::status::ok);
    // Block (b / 3, b % 3) wrote its rectangle and nothing else.
    for (std::uint64_t r = 0; r < 20; ++r)
      for (std::uint64_t c = 0; c < 30; ++c) {
        const bool decoded = r / 8 > b / 3 || (r / 8 == b / 3 && c / 12 >= b % 3);
        ASSERT_EQ(out[r * 30 + c], decoded ? symbols[r * 30 + c] : 0xffff) << b << " " << r << " " << c;
      }
  }
  EXPECT_EQ(t.decode_block_checked(3, 0, out.data(), out.size()), ecq::status::invalid_argument);
  EXPECT_EQ(t.decode_block_checked(0, 3, out.data(), out.size()), ecq::status::invalid_argument);
  EXPECT_EQ(t.decode_block_checked(0, 0, out.data(), out.size() - 1), ecq::status::output_too_small);
  EXPECT_EQ(ecq_test::decode_checked(t, out.data(), out.size() - 1), ecq::status::output_too_small);
  ecq::encoded_tensor empty;
  EXPECT_EQ(ecq_test::decode_checked(empty, out.data(), out.size()), ecq::status::invalid_argument);
  EXPECT_EQ(empty.decode_block_checked(0, 0, out.data(), out.size()), ecq::status::invalid_argument);
}

TEST(ContainerEncode, RejectsBadInput) {
  std::vector<std::uint16_t> symbols = gaussian_symbols(8 * 8, 16, 2.0, 11);
  ecq::tensor_description d;
  d.rows = d.cols = d.symbols_per_row = 8;
  d.alphabet_size = 16;
  ecq::coding_options o;
  o.lanes = 8;
  ecq::encoded_tensor t;
  using ecq::status;
  auto encode = [&](ecq::tensor_description dd, ecq::coding_options oo) {
    return ecq_test::encode(symbols.data(), dd, oo, &t);
  };
  ASSERT_EQ(encode(d, o), status::ok);
  {
    auto dd = d;
    dd.rows = 0;
    EXPECT_EQ(encode(dd, o), status::bad_shape);
  }
  {
    auto oo = o;
    oo.chunk_symbols = 9;
    EXPECT_EQ(encode(d, oo), status::bad_shape);
    oo.chunk_symbols = 0;
    oo.tile_rows = 12;
    EXPECT_EQ(encode(d, oo), status::bad_shape);
    oo.tile_rows = 0;
    oo.lanes = 4;
    EXPECT_EQ(encode(d, oo), status::unsupported_parameters);
    oo.lanes = 8;
    oo.scale_bits = 16;
    EXPECT_EQ(encode(d, oo), status::unsupported_parameters);
    oo.scale_bits = 10;
    auto dd = d;
    dd.alphabet_size = 2048;  // more than 2^10 symbols
    EXPECT_EQ(encode(dd, oo), status::unsupported_parameters);
  }
  {
    auto dd = d;
    dd.alphabet_size = 15;  // a symbol 15 exists
    EXPECT_EQ(encode(dd, o), std::count(symbols.begin(), symbols.end(), 15) ? status::invalid_argument : status::ok);
    dd.alphabet_size = 0;
    EXPECT_EQ(encode(dd, o), status::invalid_argument);
  }
  {
    auto dd = d;
    const std::uint8_t x[6] = {};
    dd.sections = {{1, 4, x, 6}};
    EXPECT_EQ(encode(dd, o), status::invalid_argument);  // size not a multiple of the item size
    dd.sections = {{1, 3, x, 6}};
    EXPECT_EQ(encode(dd, o), status::invalid_argument);  // item size not a power of two
    dd.sections = {{1, 2, x, 6}, {1, 2, x, 6}};
    EXPECT_EQ(encode(dd, o), status::invalid_argument);  // duplicate tag
    dd.sections.assign(9, {0, 1, x, 1});
    for (std::uint32_t i = 0; i < 9; ++i) dd.sections[i].tag = i;
    EXPECT_EQ(encode(dd, o), status::invalid_argument);  // too many sections
    dd.sections.clear();
    dd.scheme_params.assign(ecq::max_scheme_params_size + 1, 0);
    EXPECT_EQ(encode(dd, o), status::invalid_argument);
  }
  EXPECT_EQ(t.data(), nullptr);  // a failed encode leaves nothing open
}

TEST(ContainerPeek, WalksConcatenatedContainers) {
  // Three containers back to back, each padded to 16 bytes, as a multi-tensor
  // file would hold them.
  std::vector<std::uint8_t> file;
  std::vector<std::vector<std::uint16_t>> originals;
  for (std::uint64_t rows : {3u, 17u, 40u}) {
    originals.push_back(gaussian_symbols(rows * 9, 16, 2.0, rows));
    ecq::tensor_description d;
    d.rows = rows;
    d.cols = d.symbols_per_row = 9;
    d.alphabet_size = 16;
    ecq::coding_options o;
    o.lanes = 8;
    ecq::encoded_tensor t;
    ASSERT_EQ(ecq_test::encode(originals.back().data(), d, o, &t), ecq::status::ok);
    file.insert(file.end(), t.data(), t.data() + t.size());
    file.resize((file.size() + 15) / 16 * 16, 0);
  }
  std::size_t at = 0;
  for (const auto& original : originals) {
    std::uint64_t size = 0;
    ASSERT_EQ(ecq::peek_container_size(file.data() + at, file.size() - at, &size), ecq::status::ok);
    ASSERT_LE(size, file.size() - at);
    ecq::encoded_tensor t;
    ASSERT_EQ(ecq::encoded_tensor::open(file.data() + at, std::size_t(size), &t), ecq::status::ok);
    std::vector<std::uint16_t> out(original.size());
    ASSERT_EQ(ecq_test::decode_checked(t, out.data(), out.size()), ecq::status::ok);
    EXPECT_EQ(out, original);
    at += std::size_t((size + 15) / 16 * 16);
  }
  EXPECT_EQ(at, file.size());
  std::uint64_t size = 1;
  EXPECT_EQ(ecq::peek_container_size(file.data(), 79, &size), ecq::status::truncated);
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(ecq::peek_container_size(file.data() + 1, 100, &size), ecq::status::bad_magic);
  file[8] = 9;
  EXPECT_EQ(ecq::peek_container_size(file.data(), file.size(), &size), ecq::status::unsupported_version);
}

// ---------------------------------------------------------------------------
// Seed corpora of fuzz/container_fuzz.cpp and fuzz/round_trip_fuzz.cpp.

const fs::path container_corpus = fs::path(ECQ_SOURCE_DIR) / "fuzz/corpus/container";
const fs::path round_trip_corpus = fs::path(ECQ_SOURCE_DIR) / "fuzz/corpus/round_trip";

void write_container_seeds() {
  struct seed {
    const char* name;
    std::uint64_t rows, spr;
    std::uint32_t alphabet;
    int scale_bits;
    std::uint32_t lanes, tile_rows;
    std::uint64_t chunk;
    int sections;
  };
  const seed seeds[] = {
      {"valid-4bit-n32", 40, 64, 16, 12, 32, 32, 0, 2},  {"valid-byte-n8-chunks", 21, 30, 256, 13, 8, 16, 8, 1},
      {"valid-n1-row", 1, 100, 16, 10, 1, 1, 0, 0},      {"valid-wide-s15", 17, 20, 4096, 15, 16, 16, 7, 3},
      {"valid-n64-s11", 70, 5, 40, 11, 64, 128, 2, 0},   {"valid-single-symbol", 9, 9, 1, 14, 8, 8, 4, 0},
  };
  std::uint64_t salt = 0;
  for (const seed& s : seeds) {
    ecq::tensor_description d;
    d.rows = s.rows;
    d.cols = s.spr * 2;
    d.symbols_per_row = s.spr;
    d.alphabet_size = s.alphabet;
    d.scheme_id = 7;
    d.scheme_params = {1, 2, 3};
    std::vector<std::uint32_t> side(20);
    for (std::uint32_t i = 0; i < side.size(); ++i) side[i] = i * 2654435761u;
    for (int k = 0; k < s.sections; ++k)
      d.sections.push_back({std::uint32_t(k + 1), std::uint32_t(1) << k, side.data(), std::uint64_t(8 * (k + 1))});
    ecq::coding_options o;
    o.scale_bits = s.scale_bits;
    o.lanes = s.lanes;
    o.tile_rows = s.tile_rows;
    o.chunk_symbols = s.chunk;
    const auto symbols = gaussian_symbols(s.rows * s.spr, s.alphabet, 0.5 + double(s.alphabet) / 6.0, ++salt);
    ecq::encoded_tensor t;
    ASSERT_EQ(ecq_test::encode(symbols.data(), d, o, &t), ecq::status::ok) << s.name;
    write_file(container_corpus / s.name, t.data(), t.size());
  }
  std::mt19937_64 rng(31);
  bytes noise(300);
  for (auto& b : noise) b = std::uint8_t(rng());
  write_file(container_corpus / "random-300", noise.data(), noise.size());
  std::memcpy(noise.data(), ecq::container_magic, 8);
  write_file(container_corpus / "magic-then-random", noise.data(), noise.size());
  for (std::size_t n : {std::size_t(1), std::size_t(33), std::size_t(200), std::size_t(1500)}) {
    noise.resize(n);
    for (auto& b : noise) b = std::uint8_t(rng());
    write_file(round_trip_corpus / ("random-" + std::to_string(n)), noise.data(), noise.size());
  }
}

TEST(ContainerSeedCorpus, ValidSeedsOpenAndDecode) {
  if (std::getenv("ECQ_REGENERATE_TEST_DATA") != nullptr) write_container_seeds();
  ASSERT_TRUE(fs::is_directory(container_corpus)) << container_corpus;
  ASSERT_TRUE(fs::is_directory(round_trip_corpus)) << round_trip_corpus;
  int valid = 0;
  for (const auto& entry : fs::directory_iterator(container_corpus)) {
    if (entry.path().filename().string().rfind("valid-", 0) != 0) continue;
    const bytes b = read_file(entry.path());
    ecq::encoded_tensor t;
    ASSERT_EQ(ecq::encoded_tensor::open(b.data(), b.size(), &t), ecq::status::ok) << entry.path();
    std::vector<std::uint16_t> out(t.geometry().rows * t.geometry().symbols_per_row);
    EXPECT_EQ(ecq_test::decode_checked(t, out.data(), out.size()), ecq::status::ok) << entry.path();
    ++valid;
  }
  EXPECT_GE(valid, 6);
}

}  // namespace
