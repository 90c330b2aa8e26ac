// Tests for ecq/tensor_view.hpp: block geometry against brute force, the
// tile symbol order (i = (g * columns + c) * N + r) through both block
// decoders, every error of the checked block decoder, block lookup through
// the index, sections, rebasing, and visit_coder's dispatch table.
#include <ecq/frequency_table.hpp>
#include <ecq/interleaved_rans.hpp>
#include <ecq/symbol_table.hpp>
#include <ecq/tensor_view.hpp>

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <tuple>
#include <vector>

namespace {

using params = ecq::rans32x16<12>;
constexpr int symbol_bits = ecq::decode_symbol_bits(12);

ecq::tensor_geometry make_geometry(std::uint64_t rows, std::uint64_t spr, std::uint64_t chunk, std::uint32_t tile_rows,
                                   std::uint32_t lanes) {
  ecq::tensor_geometry g{};
  g.rows = rows;
  g.cols = spr;
  g.symbols_per_row = spr;
  g.chunk_symbols = chunk;
  g.tile_rows = tile_rows;
  g.lanes = lanes;
  g.alphabet_size = 16;
  g.state_bits = 32;
  g.word_bits = 16;
  g.scale_bits = 12;
  return g;
}

TEST(TensorGeometry, BlocksPartitionTheTensorAndPadOnlyTheLastGroup) {
  std::mt19937_64 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    const std::uint32_t lanes = std::uint32_t(1) << (rng() % 7);
    const std::uint32_t tile_rows = lanes * std::uint32_t(1 + rng() % 4);
    const std::uint64_t rows = 1 + rng() % 300, spr = 1 + rng() % 200;
    const std::uint64_t chunk = 1 + rng() % spr;
    const ecq::tensor_geometry g = make_geometry(rows, spr, chunk, tile_rows, lanes);
    // Brute force: which block each (row, column) falls in.
    std::vector<int> covered(rows * spr, 0);
    std::uint64_t coded = 0;
    for (std::uint64_t t = 0; t < g.num_tiles(); ++t)
      for (std::uint64_t k = 0; k < g.num_chunks(); ++k) {
        const std::uint64_t valid = g.rows_in_tile(t), groups = g.row_groups_in_tile(t);
        ASSERT_GE(groups * lanes, valid);
        ASSERT_LT(groups * lanes - valid, lanes);  // padding only inside the last group
        for (std::uint64_t r = 0; r < valid; ++r)
          for (std::uint64_t c = 0; c < g.columns_in_chunk(k); ++c)
            ++covered[(t * tile_rows + r) * spr + k * chunk + c];
        coded += g.symbols_in_block(t, k);
      }
    for (int c : covered) ASSERT_EQ(c, 1);
    EXPECT_EQ(g.num_blocks(), g.num_tiles() * g.num_chunks());
    EXPECT_EQ(coded, (rows + lanes - 1) / lanes * lanes * spr);
  }
}

// One block built by hand: symbols laid out in the documented tile order,
// encoded with the core coder, placed 16-byte aligned in a buffer.
struct hand_block {
  std::vector<std::uint64_t> storage;  // 8-byte units keep the stream aligned
  ecq::block_view view{};
  std::vector<std::uint32_t> freqs;
  ecq::decode_table<12, symbol_bits> table;
  // expected[(row - first_row) * columns + column - first_column]
  std::vector<std::uint32_t> expected;
};

template <int Lanes>
hand_block make_block(std::uint32_t row_groups, std::uint32_t valid_rows, std::uint64_t columns, std::uint32_t pad,
                      std::uint32_t coded_pad, std::uint64_t seed) {
  hand_block h;
  std::mt19937_64 rng(seed);
  const std::uint32_t alphabet = 16;
  std::vector<std::uint64_t> counts(alphabet);
  for (auto& c : counts) c = 1 + rng() % 100;
  h.freqs.resize(alphabet);
  EXPECT_EQ(ecq::normalize_frequencies(counts.data(), alphabet, 12, h.freqs.data()), ecq::status::ok);
  EXPECT_EQ(h.table.build(h.freqs.data(), alphabet), ecq::status::ok);
  ecq::encode_table<params> enc;
  EXPECT_EQ(enc.build(h.freqs.data(), alphabet), ecq::status::ok);

  h.expected.resize(std::size_t(valid_rows * columns));
  for (auto& s : h.expected) s = std::uint32_t(rng() % alphabet);
  std::vector<std::uint16_t> stream_symbols;
  for (std::uint32_t g = 0; g < row_groups; ++g)
    for (std::uint64_t c = 0; c < columns; ++c)
      for (std::uint32_t r = 0; r < std::uint32_t(Lanes); ++r) {
        const std::uint32_t row = g * Lanes + r;
        stream_symbols.push_back(std::uint16_t(row < valid_rows ? h.expected[row * columns + c] : coded_pad));
      }
  const std::vector<std::uint16_t> words = ecq::interleaved_encode<params, Lanes>(stream_symbols.data(), stream_symbols.size(), enc);
  EXPECT_FALSE(words.empty());
  h.storage.assign(words.size() / 4 + 2, 0);
  std::memcpy(h.storage.data(), words.data(), words.size() * 2);
  h.view.data = reinterpret_cast<const std::uint8_t*>(h.storage.data());
  h.view.size_bytes = words.size() * 2;
  h.view.first_row = 1000;
  h.view.first_column = 50;
  h.view.columns = columns;
  h.view.row_groups = row_groups;
  h.view.valid_rows = valid_rows;
  h.view.lanes = Lanes;
  h.view.pad_symbol = pad;
  return h;
}

struct recorded {
  std::uint64_t row, column;
  std::uint32_t symbol;
};

template <int Lanes>
void check_block_order(std::uint32_t row_groups, std::uint32_t valid_rows, std::uint64_t columns) {
  const hand_block h = make_block<Lanes>(row_groups, valid_rows, columns, 3, 3, row_groups * 7 + columns);
  std::vector<recorded> fast, checked;
  ecq::decode_block<params, Lanes>(h.view, h.table.view(),
                                   [&](std::uint64_t r, std::uint64_t c, std::uint32_t s) { fast.push_back({r, c, s}); });
  const ecq::status st = ecq::decode_block_checked<params, Lanes>(
      h.view, h.table.view(), [&](std::uint64_t r, std::uint64_t c, std::uint32_t s) { checked.push_back({r, c, s}); });
  ASSERT_EQ(st, ecq::status::ok);
  ASSERT_EQ(fast.size(), std::size_t(valid_rows * columns));
  ASSERT_EQ(checked.size(), fast.size());
  // Stream order: group, then column, then lane; padding rows skipped.
  std::size_t i = 0;
  for (std::uint32_t g = 0; g < row_groups; ++g)
    for (std::uint64_t c = 0; c < columns; ++c)
      for (std::uint32_t r = 0; r < std::uint32_t(Lanes); ++r) {
        const std::uint32_t row = g * Lanes + r;
        if (row >= valid_rows) continue;
        EXPECT_EQ(fast[i].row, 1000 + row);
        EXPECT_EQ(fast[i].column, 50 + c);
        EXPECT_EQ(fast[i].symbol, h.expected[row * columns + c]);
        EXPECT_EQ(checked[i].row, fast[i].row);
        EXPECT_EQ(checked[i].column, fast[i].column);
        EXPECT_EQ(checked[i].symbol, fast[i].symbol);
        ++i;
      }
}

TEST(BlockDecode, TileOrderWithPadding) {
  check_block_order<8>(3, 19, 5);   // last group has 3 real rows of 8
  check_block_order<32>(1, 32, 40); // one full group
  check_block_order<16>(2, 17, 1);  // one column
  check_block_order<1>(4, 4, 9);    // N = 1: rows one after another
  check_block_order<64>(2, 100, 3);
}

TEST(BlockDecode, PointerFreeSinkKeepsState) {
  // A stateful sink (a GEMV-like accumulator) is used by reference.
  const hand_block h = make_block<8>(2, 16, 10, 0, 0, 11);
  struct dot {
    double acc[16] = {};
    void operator()(std::uint64_t r, std::uint64_t c, std::uint32_t s) { acc[r - 1000] += double(s) * double(c); }
  } sink;
  ASSERT_EQ((ecq::decode_block_checked<params, 8>(h.view, h.table.view(), sink)), ecq::status::ok);
  for (std::uint32_t r = 0; r < 16; ++r) {
    double want = 0;
    for (std::uint64_t c = 0; c < 10; ++c) want += double(h.expected[r * 10 + c]) * double(50 + c);
    EXPECT_EQ(sink.acc[r], want);
  }
}

TEST(BlockDecodeChecked, WrongPaddingSymbolIsCorrupt) {
  const hand_block h = make_block<8>(2, 13, 6, /*pad=*/3, /*coded_pad=*/4, 9);
  EXPECT_EQ((ecq::decode_block_checked<params, 8>(h.view, h.table.view(), [](std::uint64_t, std::uint64_t, std::uint32_t) {})),
            ecq::status::corrupt_stream);
}

TEST(BlockDecodeChecked, RejectsGeometryMismatches) {
  const hand_block h = make_block<8>(1, 8, 6, 0, 0, 1);
  auto ignore = [](std::uint64_t, std::uint64_t, std::uint32_t) {};
  EXPECT_EQ((ecq::decode_block_checked<params, 16>(h.view, h.table.view(), ignore)), ecq::status::invalid_argument);
  ecq::block_view odd = h.view;
  odd.size_bytes -= 1;
  EXPECT_EQ((ecq::decode_block_checked<params, 8>(odd, h.table.view(), ignore)), ecq::status::invalid_argument);
}

TEST(BlockDecodeChecked, ShortAndLongStreams) {
  const hand_block h = make_block<8>(2, 16, 20, 0, 0, 4);
  auto ignore = [](std::uint64_t, std::uint64_t, std::uint32_t) {};
  // Every shorter whole-word length is truncated (or, below the states, too).
  for (std::uint64_t size = 0; size < h.view.size_bytes; size += 2) {
    ecq::block_view b = h.view;
    b.size_bytes = size;
    EXPECT_EQ((ecq::decode_block_checked<params, 8>(b, h.table.view(), ignore)), ecq::status::truncated) << size;
  }
  ecq::block_view longer = h.view;  // the buffer has spare zero words after the stream
  longer.size_bytes += 2;
  EXPECT_EQ((ecq::decode_block_checked<params, 8>(longer, h.table.view(), ignore)), ecq::status::trailing_data);
  ecq::block_view fewer_columns = h.view;
  fewer_columns.columns -= 1;
  EXPECT_NE((ecq::decode_block_checked<params, 8>(fewer_columns, h.table.view(), ignore)), ecq::status::ok);
}

TEST(BlockDecodeChecked, SinkSeesOnlyTheBlockRectangle) {
  // Random stream contents: whatever the status, every call lies inside the block.
  const hand_block h = make_block<16>(2, 30, 7, 1, 1, 8);
  std::mt19937_64 rng(77);
  std::vector<std::uint64_t> noise(h.storage.size());
  for (int trial = 0; trial < 500; ++trial) {
    for (auto& w : noise) w = rng();
    ecq::block_view b = h.view;
    b.data = reinterpret_cast<const std::uint8_t*>(noise.data());
    b.size_bytes = 2 * (rng() % (noise.size() * 4 + 1));
    bool inside = true;
    (void)ecq::decode_block_checked<params, 16>(b, h.table.view(), [&](std::uint64_t r, std::uint64_t c, std::uint32_t s) {
      inside &= r >= 1000 && r < 1030 && c >= 50 && c < 57 && s < 16;
    });
    EXPECT_TRUE(inside);
  }
}

TEST(EncodedTensorView, BlockLookupReadsTheIndex) {
  // Container image: index at byte 16 (3 tiles x 2 chunks), payload at 128.
  std::vector<std::uint64_t> image(64, 0);
  ecq::encoded_tensor_view v{};
  v.geometry = make_geometry(40, 30, 16, 16, 8);
  v.geometry.pad_symbol = 5;
  v.base = reinterpret_cast<const std::uint8_t*>(image.data());
  v.index_offset = 16;
  v.payload_offset = 128;
  ASSERT_EQ(v.geometry.num_blocks(), 6u);
  for (std::uint64_t b = 0; b < 6; ++b) {
    image[2 + 2 * b] = b * 48;    // offset
    image[3 + 2 * b] = 40 + b * 2;  // size
  }
  for (std::uint64_t t = 0; t < 3; ++t)
    for (std::uint64_t k = 0; k < 2; ++k) {
      const ecq::block_view b = v.block(t, k);
      const std::uint64_t id = t * 2 + k;
      EXPECT_EQ(b.data, v.base + 128 + id * 48);
      EXPECT_EQ(b.size_bytes, 40 + id * 2);
      EXPECT_EQ(b.first_row, t * 16);
      EXPECT_EQ(b.first_column, k * 16);
      EXPECT_EQ(b.columns, k == 0 ? 16u : 14u);
      EXPECT_EQ(b.valid_rows, t < 2 ? 16u : 8u);
      EXPECT_EQ(b.row_groups, t < 2 ? 2u : 1u);
      EXPECT_EQ(b.lanes, 8u);
      EXPECT_EQ(b.pad_symbol, 5u);
    }
}

TEST(EncodedTensorView, SectionsAndRebasing) {
  ecq::encoded_tensor_view v{};
  std::uint8_t bytes[64] = {};
  std::uint8_t other[64] = {};
  v.base = bytes;
  v.num_sections = 2;
  v.sections[0] = {7, 4, 16, 8};
  v.sections[1] = {9, 2, 32, 4};
  ASSERT_NE(v.find_section(9), nullptr);
  EXPECT_EQ(v.find_section(9)->item_size, 2u);
  EXPECT_EQ(v.section_data(*v.find_section(9)), bytes + 32);
  EXPECT_EQ(v.find_section(8), nullptr);
  int table = 0;
  const ecq::encoded_tensor_view moved = v.rebased(other, &table);
  EXPECT_EQ(moved.section_data(*moved.find_section(7)), other + 16);
  EXPECT_EQ(moved.payload(), other + moved.payload_offset);
  EXPECT_EQ(moved.decode_table, &table);
  EXPECT_EQ(v.base, bytes);
}

TEST(VisitCoder, DispatchesEverySupportedConfiguration) {
  std::set<std::tuple<int, int, int>> seen;
  for (std::uint32_t s = 7; s <= 15; ++s)
    for (std::uint32_t lanes : {1u, 8u, 16u, 32u, 64u}) {
      ecq::tensor_geometry g = make_geometry(1, 1, 1, lanes, lanes);
      g.scale_bits = s;
      const ecq::status st = ecq::visit_coder(g, nullptr, [&](auto p, auto n, auto table) {
        using table_view = decltype(table);
        EXPECT_EQ(decltype(p)::scale_bits, int(s));
        EXPECT_EQ(decltype(n)::value, int(lanes));
        EXPECT_EQ(table_view::scale_bits, int(s));
        EXPECT_EQ(table_view::symbol_bits, s < 12 ? int(s) : 12);
        seen.insert({decltype(p)::scale_bits, decltype(n)::value, table_view::symbol_bits});
        return ecq::status::ok;
      });
      EXPECT_EQ(st, ecq::status::ok);
    }
  EXPECT_EQ(seen.size(), 45u);
}

TEST(VisitCoder, RefusesUnsupportedConfigurationsWithoutCallingF) {
  auto must_not_call = [](auto, auto, auto) {
    ADD_FAILURE() << "f called for an unsupported configuration";
    return ecq::status::ok;
  };
  ecq::tensor_geometry g = make_geometry(1, 1, 1, 8, 8);
  for (std::uint32_t s : {0u, 6u, 16u}) {
    g.scale_bits = s;
    EXPECT_EQ(ecq::visit_coder(g, nullptr, must_not_call), ecq::status::unsupported_parameters) << s;
  }
  g.scale_bits = 12;
  for (std::uint32_t lanes : {0u, 2u, 4u, 24u, 128u}) {
    g.lanes = lanes;
    EXPECT_EQ(ecq::visit_coder(g, nullptr, must_not_call), ecq::status::unsupported_parameters) << lanes;
  }
  g.lanes = 8;
  g.state_bits = 64;
  EXPECT_EQ(ecq::visit_coder(g, nullptr, must_not_call), ecq::status::unsupported_parameters);
  g.state_bits = 32;
  g.word_bits = 8;
  EXPECT_EQ(ecq::visit_coder(g, nullptr, must_not_call), ecq::status::unsupported_parameters);
  g.word_bits = 16;
  EXPECT_EQ(ecq::visit_coder(g, nullptr, [](auto, auto, auto) { return ecq::status::corrupt_stream; }),
            ecq::status::corrupt_stream);
}

}  // namespace
