// Tests for ecq/block_decode.cuh (GPU; skipped without one): several warps
// share one table and split the items with warp_item_range; every symbol is
// decoded once, in place, and the per-block hooks are called in order.
#include <ecq/block_decode.cuh>

#include "gpu_test_support.cuh"

namespace {

using words = ecq::staged_words<1024, 8, 1>;
using decoder = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, words, 1>;
constexpr int kWarps = 4;
using block = ecq::block_decoder<kWarps, decoder>;

struct recording_sink {
  std::uint16_t* out;
  std::uint32_t* hooks;  // per stream: begin_tile, begin_block count, end_block count, end_tile
  std::uint32_t rounds;
  std::uint32_t item = 0, block = 0;
  __device__ void begin_tile(std::uint32_t i) {
    item = i;
    if (ecq::detail::lane_id() == 0) hooks[4 * i] += 1;
  }
  __device__ void begin_block(std::uint32_t i, std::uint32_t b) {
    block = b;
    if (ecq::detail::lane_id() == 0 && i == item) hooks[4 * i + 1] += 1;
  }
  __device__ void step(int k, int, std::uint32_t e) {
    out[(std::size_t(item) * rounds + block * 8 + std::uint32_t(k)) * 32 + ecq::detail::lane_id()] =
        std::uint16_t(ecq::narrow_entry::payload(e));
  }
  __device__ void end_block(std::uint32_t i, std::uint32_t b) {
    if (ecq::detail::lane_id() == 0 && i == item && b == block) hooks[4 * i + 2] += 1;
  }
  __device__ void end_tile(std::uint32_t i) {
    if (ecq::detail::lane_id() == 0) hooks[4 * i + 3] += 1;
  }
};

__global__ void __launch_bounds__(kWarps * 32)
    decode_kernel(ecq_bench::bench_tiles t, const std::uint32_t* table, std::uint32_t items, std::uint16_t* out,
                  std::uint32_t* hooks) {
  extern __shared__ uint4 smem[];
  block b(*reinterpret_cast<block::TempStorage*>(smem));
  b.load_table(table);
  const ecq::item_range r = ecq::warp_item_range(items, blockIdx.x * kWarps + threadIdx.x / 32, gridDim.x * kWarps);
  recording_sink sink{out, hooks, t.rounds};
  b.decode(t, r.first, r.last, sink);
}

TEST(BlockDecode, WarpsSplitTheItems) {
  ECQ_REQUIRE_GPU();
  ecq_test::random_tiles tiles(224, 384, 128, 256, 5);  // 7 tiles x 3 chunks = 21 streams over 2 x 4 warps
  ASSERT_EQ(tiles.streams.scale_bits, 12);
  std::vector<std::uint32_t> table(4096);
  ASSERT_EQ(ecq::build_narrow_decode_table(tiles.streams.freqs.data(), 256, 12, [](std::uint32_t s) { return s; },
                                           table.data()),
            ecq::status::ok);
  ecq_test::device_vector<std::uint16_t> words_d(tiles.streams.words);
  ecq_test::device_vector<std::uint32_t> offset_d(tiles.streams.offset), count_d(tiles.streams.count), table_d(table);
  const std::uint32_t items = tiles.layout.items(), rounds = tiles.layout.rounds();
  ecq_test::device_vector<std::uint16_t> out(std::size_t(items) * rounds * 32);
  ecq_test::device_vector<std::uint32_t> hooks(std::size_t(items) * 4);
  ECQ_TEST_CUDA(cudaMemset(out.p, 0xff, out.n * 2));
  ECQ_TEST_CUDA(cudaMemset(hooks.p, 0, hooks.n * 4));
  const std::size_t smem = sizeof(block::TempStorage);
  ECQ_TEST_CUDA(cudaFuncSetAttribute(decode_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  decode_kernel<<<2, kWarps * 32, smem>>>(tiles.view(words_d.p, offset_d.p, count_d.p), table_d.p, items, out.p,
                                          hooks.p);
  ECQ_TEST_CUDA(cudaGetLastError());
  ECQ_TEST_CUDA(cudaDeviceSynchronize());
  const auto got = out.get();
  std::size_t bad = 0;
  for (std::uint32_t s = 0; s < items; ++s)
    for (std::uint32_t k = 0; k < rounds; ++k)
      for (std::uint32_t r = 0; r < 32; ++r) bad += got[(std::size_t(s) * rounds + k) * 32 + r] != tiles.expected(s, k, r);
  EXPECT_EQ(bad, 0u);
  const auto h = hooks.get();
  for (std::uint32_t s = 0; s < items; ++s) {
    EXPECT_EQ(h[4 * s], 1u) << "begin_tile of " << s;
    EXPECT_EQ(h[4 * s + 1], rounds / 8) << "begin_block of " << s;
    EXPECT_EQ(h[4 * s + 2], rounds / 8) << "end_block of " << s;
    EXPECT_EQ(h[4 * s + 3], 1u) << "end_tile of " << s;
  }
}

TEST(BlockDecode, ItemRangesCoverEverythingOnce) {
  for (std::uint32_t items : {0u, 1u, 7u, 28672u})
    for (std::uint32_t warps : {1u, 3u, 4224u}) {
      std::uint32_t next = 0;
      for (std::uint32_t w = 0; w < warps; ++w) {
        const ecq::item_range r = ecq::warp_item_range(items, w, warps);
        EXPECT_EQ(r.first, next);
        EXPECT_LE(r.last - r.first, items / warps + 1);
        next = r.last;
      }
      EXPECT_EQ(next, items);
    }
}

}  // namespace
