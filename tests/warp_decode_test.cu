// Tests for ecq/warp_decode.cuh (GPU; skipped without one): a warp decodes
// sequences of 32- and 64-state streams written by the core encoder, across
// stream boundaries, with narrow and packed table entries, one or two
// streams at a time or two states per lane, with the worst-case or an
// adaptive lookahead of the word ring, and reproduces every symbol.
#include <ecq/warp_decode.cuh>

#include "gpu_test_support.cuh"

namespace {

template <class Decoder, bool Packed>
struct store_symbols {
  std::uint16_t* out;
  std::uint32_t rounds;
  std::uint32_t item = 0, block = 0;
  __device__ void step(int k, int j, std::uint32_t e) {  // state set j = way * states_per_lane + h
    const std::uint32_t s = item * Decoder::ways + std::uint32_t(j / Decoder::states_per_lane);
    const std::uint32_t row = ecq::detail::lane_id() + 32u * std::uint32_t(j % Decoder::states_per_lane);
    const std::uint32_t symbol = Packed ? ecq::decode_entry_layout<Decoder::params::scale_bits, 8>::symbol(e)
                                        : ecq::narrow_entry::payload(e);
    out[(std::size_t(s) * rounds + block * Decoder::rounds_per_block + std::uint32_t(k)) * Decoder::tile_rows + row] =
        std::uint16_t(symbol);
  }
};

/// One warp per block; block b decodes items [b * per_block, (b + 1) * per_block).
template <class Decoder, bool Packed>
__global__ void decode_kernel(ecq_bench::bench_tiles t, const std::uint32_t* table, std::uint32_t items,
                              std::uint32_t per_block, std::uint16_t* out) {
  __shared__ std::uint32_t tab[Decoder::table_entries];
  __shared__ typename Decoder::TempStorage ring;
  for (std::uint32_t i = threadIdx.x; i < (1u << Decoder::params::scale_bits); i += 32)
    for (int r = 0; r < Decoder::replicas; ++r) tab[i * Decoder::replicas + r] = table[i];
  __syncthreads();
  const std::uint32_t first = blockIdx.x * per_block, last = min(items, first + per_block);
  if (first >= last) return;
  Decoder d(ring, tab);
  store_symbols<Decoder, Packed> sink{out, t.rounds};
  d.start(t, first, last);
  for (std::uint32_t item = first; item < last; ++item) {
    d.begin_tile(t);
    sink.item = item;
    for (std::uint32_t b = 0; b < t.rounds / Decoder::rounds_per_block; ++b) {
      sink.block = b;
      d.decode_block(t, sink);
    }
    d.end_tile(t, item);
  }
}

template <int S, int Replicas, int Ways, bool Packed, int StatesPerLane = 1, int Rounds = 8, int Lookahead = 0>
void run_case(std::uint32_t rows, std::uint32_t cols, std::uint32_t chunk, std::uint32_t per_block) {
  using words = ecq::staged_words<Lookahead ? 1024 : 1024 * StatesPerLane * Rounds / 8, Rounds, 1, 32 * StatesPerLane,
                                  Lookahead>;
  using entry = std::conditional_t<Packed, ecq::packed_entry_policy<8>, ecq::narrow_entry_policy>;
  using decoder = ecq::warp_decoder<ecq::rans32x16<S>, entry, Replicas, words, Ways, StatesPerLane>;
  ecq_test::random_tiles tiles(rows, cols, chunk, 256, rows * 31 + cols, decoder::tile_rows);
  ASSERT_GE(tiles.streams.scale_bits, 10);
  // The decoder needs the stream's ScaleBits: re-encode at S if the chooser picked another.
  if (tiles.streams.scale_bits != S) {
    std::vector<std::uint64_t> counts(256, 0);
    for (auto s : tiles.symbols) ++counts[s];
    tiles.streams.freqs.assign(256, 0);
    ASSERT_EQ(ecq::normalize_frequencies(counts.data(), 256, S, tiles.streams.freqs.data()), ecq::status::ok);
    ASSERT_TRUE(ecq_bench::detail::encode_items_s<S>(tiles.layout, tiles.symbols, 256, &tiles.streams));
  }
  std::vector<std::uint32_t> table(std::size_t(1) << S);
  if constexpr (Packed) {
    ecq::decode_table<S, 8> core;
    ASSERT_EQ(core.build(tiles.streams.freqs.data(), 256), ecq::status::ok);
    std::copy(core.data(), core.data() + table.size(), table.begin());
  } else {
    const ecq::status st = ecq::build_narrow_decode_table(tiles.streams.freqs.data(), 256, S,
                                                          [](std::uint32_t s) { return s; }, table.data());
    if (st == ecq::status::unsupported_parameters) GTEST_SKIP() << "a frequency above 255 at S=" << S;
    ASSERT_EQ(st, ecq::status::ok);
  }
  ecq_test::device_vector<std::uint16_t> words_d(tiles.streams.words);
  ecq_test::device_vector<std::uint32_t> offset_d(tiles.streams.offset), count_d(tiles.streams.count), table_d(table);
  const std::uint32_t streams = tiles.layout.items(), items = streams / Ways;
  ecq_test::device_vector<std::uint16_t> out(std::size_t(streams) * tiles.layout.rounds() * decoder::tile_rows);
  ECQ_TEST_CUDA(cudaMemset(out.p, 0xff, out.n * 2));
  const std::uint32_t blocks = (items + per_block - 1) / per_block;
  decode_kernel<decoder, Packed><<<blocks, 32>>>(tiles.view(words_d.p, offset_d.p, count_d.p), table_d.p, items,
                                                 per_block, out.p);
  ECQ_TEST_CUDA(cudaGetLastError());
  ECQ_TEST_CUDA(cudaDeviceSynchronize());
  const auto got = out.get();
  std::size_t bad = 0;
  for (std::uint32_t s = 0; s < streams; ++s)
    for (std::uint32_t k = 0; k < tiles.layout.rounds(); ++k)
      for (std::uint32_t r = 0; r < decoder::tile_rows; ++r)
        bad += got[(std::size_t(s) * tiles.layout.rounds() + k) * decoder::tile_rows + r] != tiles.expected(s, k, r);
  EXPECT_EQ(bad, 0u) << "S=" << S << " replicas=" << Replicas << " ways=" << Ways << " packed=" << Packed
                     << " states per lane=" << StatesPerLane << " rounds per block=" << Rounds
                     << " lookahead=" << Lookahead;
}

TEST(WarpDecode, NarrowEntriesAcrossStreamBoundaries) {
  ECQ_REQUIRE_GPU();
  run_case<12, 1, 1, false>(96, 512, 128, 5);   // 12 streams, 5 per warp: ranges end mid-tile
  run_case<11, 1, 1, false>(64, 256, 64, 3);
}

TEST(WarpDecode, ReplicatedTable) {
  ECQ_REQUIRE_GPU();
  run_case<11, 4, 1, false>(64, 512, 256, 2);  // 4 copies x 2^11 entries: 32 KB of static shared memory
}

TEST(WarpDecode, TwoStreamsPerWarp) {
  ECQ_REQUIRE_GPU();
  run_case<12, 1, 2, false>(64, 1024, 128, 3);  // items are pairs of chunks of one row tile
}

TEST(WarpDecode, TwoStatesPerLane) {
  ECQ_REQUIRE_GPU();
  run_case<12, 1, 1, false, 2, 4>(192, 512, 128, 5);  // 64-row tiles, 4-round blocks (half raw units)
  run_case<11, 1, 1, false, 2, 8>(128, 256, 64, 3);   // 8-round blocks
  run_case<10, 1, 1, true, 2, 4>(64, 512, 256, 2);    // packed entries, one warp decodes both streams
}

TEST(WarpDecode, AdaptiveLookahead) {
  ECQ_REQUIRE_GPU();
  // 16-round blocks (worst case 520 words) in a 1024-word ring. These 8-bit symbols take ~256 words a block, so
  // with 768 words ahead the previous copies cover some blocks and not others: both waits run.
  run_case<12, 1, 1, false, 1, 16, 768>(96, 512, 128, 5);
  // One worst-case block ahead: prepare() waits for all copies nearly every block.
  run_case<11, 1, 1, false, 1, 16, 520>(64, 256, 64, 3);
}

TEST(WarpDecode, PackedCoreEntries) {
  ECQ_REQUIRE_GPU();
  run_case<10, 1, 1, true>(64, 512, 128, 4);  // 2 * 10 + 8 bits: the core's 32-bit entries
}

}  // namespace
