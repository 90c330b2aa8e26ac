// Tests for ecq/fused_gemv.cuh (GPU; skipped without one): the fused
// decode -> dequantise -> tensor-core dot GEMV equals a float64 reference on
// the exact weights, for the bf16 pair scheme and for 4-bit affine codes,
// several batch sizes, several warps per row tile, K split into parts,
// 16-round blocks (two raw units per block, advanced one at a time), and
// 64-row tiles decoded with two states per lane (4- and 8-round blocks).
#include <ecq/fused_gemv.cuh>

#include <cmath>
#include <cstdio>

#include "gpu_test_support.cuh"

namespace {

using words = ecq::staged_words<1024, 8, 1>;
constexpr int kWarps = 4;

template <class Decoder, class Dequant, int Batch>
double run_gemv(const ecq_bench::encoded_streams& es, const ecq_bench::tile_layout& L,
                const std::vector<std::uint32_t>& raw, std::uint32_t raw_words, const std::vector<std::uint32_t>* side,
                std::uint32_t side_words, const std::vector<std::uint32_t>& table, const std::vector<std::uint16_t>& x,
                std::uint32_t parts, const std::vector<double>& ref, int grid) {
  ecq_test::device_vector<std::uint16_t> words_d(es.words), x_d(x);
  ecq_test::device_vector<std::uint32_t> offset_d(es.offset), count_d(es.count), raw_d(raw), table_d(table);
  ecq_test::device_vector<std::uint32_t> side_d(side ? *side : std::vector<std::uint32_t>(1));
  ecq_bench::bench_tiles t =
      ecq_bench::bench_tiles::geometry(L.tiles(), L.chunks(), L.chunk_cols, L.rounds(), L.tile_rows, parts);
  t.words = words_d.p;
  t.offset = offset_d.p;
  t.count = count_d.p;
  t.raw = raw_d.p;
  t.side = side ? side_d.p : nullptr;
  t.raw_words = raw_words;
  t.side_words = side_words;
  using G = ecq::block_fused_gemv<kWarps, Decoder, Dequant, Batch>;
  auto kern = ecq_bench::fused_gemv_kernel<kWarps, 1, Decoder, Dequant, Batch>;
  const std::size_t smem = G::shared_bytes(L.cols / parts);
  if (cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)) != cudaSuccess) return -1;
  ecq_test::device_vector<float> y(std::size_t(Batch) * L.rows);
  cudaMemset(y.p, 0, y.n * 4);
  // Two thirds of each part's items split statically, the rest taken from a pool: both paths of the kernel.
  const std::uint32_t per_part = t.items_per_part() / Decoder::ways;
  ecq_test::device_vector<std::uint32_t> pool(parts);
  cudaMemset(pool.p, 0, parts * 4);
  kern<<<grid, kWarps * 32, smem>>>(t, table_d.p, x_d.p, L.cols, parts, y.p, L.rows, per_part * 2 / 3, pool.p, nullptr);
  if (cudaDeviceSynchronize() != cudaSuccess) return -1;
  const auto got = y.get();
  double num = 0, den = 0;
  for (std::size_t i = 0; i < got.size(); ++i) {
    num += (got[i] - ref[i]) * (got[i] - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / den);
}

std::vector<double> reference(std::uint32_t M, std::uint32_t K, int batch, const std::vector<std::uint16_t>& x,
                              const std::function<double(std::size_t, std::size_t)>& w) {
  std::vector<double> y(std::size_t(batch) * M, 0.0);
  for (int b = 0; b < batch; ++b)
    for (std::uint32_t r = 0; r < M; ++r)
      for (std::uint32_t c = 0; c < K; ++c)
        y[std::size_t(b) * M + r] += w(r, c) * ecq_bench::bf16_to_float(x[std::size_t(b) * K + c]);
  return y;
}

struct fixture_data {
  std::uint32_t M = 192, K = 1024;  // 6 tiles of 32 rows, 3 of 64
  std::vector<float> wf;
  std::vector<std::uint16_t> wb, x;
  fixture_data() {
    wf.resize(std::size_t(M) * K);
    wb.resize(wf.size());
    for (std::size_t i = 0; i < wf.size(); ++i) {
      wf[i] = ecq_bench::t8_at(0x1234, i, 0.02f);
      wb[i] = ecq_bench::float_to_bf16(wf[i]);
    }
    x.resize(8 * std::size_t(K));
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = ecq_bench::float_to_bf16(float(ecq_bench::normal_at(9, i, 1)));
  }
};

TEST(FusedGemv, Bf16PairsMatchTheExactWeights) {
  ECQ_REQUIRE_GPU();
  fixture_data d;
  ecq_bench::bf16_pair_tensor bt;
  ecq_bench::encoded_streams es;
  ASSERT_TRUE(ecq_bench::make_bf16_pairs(d.wb, {d.M, d.K, 256, 2}, &bt));
  ASSERT_TRUE(ecq_bench::encode_items(bt.layout, bt.symbols, 4096, &es));
  ASSERT_EQ(es.scale_bits, 11);
  std::vector<std::uint32_t> table(2048);
  ASSERT_EQ(ecq::build_narrow_decode_table(es.freqs.data(), 4096, 11,
                                           [&](std::uint32_t s) {
                                             const auto& e = bt.exponents;
                                             return ecq::bf16_pair_dequant::payload(e[(s & 63) % e.size()],
                                                                                    e[(s >> 6) % e.size()]);
                                           },
                                           table.data()),
            ecq::status::ok);
  auto w = [&](std::size_t r, std::size_t c) { return double(ecq_bench::bf16_to_float(d.wb[r * d.K + c])); };
  using dec1 = ecq::warp_decoder<ecq::rans32x16<11>, ecq::narrow_entry_policy, 1, words, 1>;
  using dec2 = ecq::warp_decoder<ecq::rans32x16<11>, ecq::narrow_entry_policy, 1, words, 2>;
  using bd = ecq::bf16_pair_dequant;
  const auto r1 = reference(d.M, d.K, 1, d.x, w), r3 = reference(d.M, d.K, 3, d.x, w), r8 = reference(d.M, d.K, 8, d.x, w);
  EXPECT_LT((run_gemv<dec1, bd, 1>(es, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, table, d.x, 1, r1, 3)), 1e-5);
  EXPECT_LT((run_gemv<dec2, bd, 1>(es, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, table, d.x, 1, r1, 2)), 1e-5);
  EXPECT_LT((run_gemv<dec1, bd, 3>(es, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, table, d.x, 2, r3, 4)), 1e-5);
  EXPECT_LT((run_gemv<dec1, bd, 8>(es, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, table, d.x, 4, r8, 4)), 1e-5);
  // 16-round blocks: a block's second raw unit becomes current at its round 8.
  using dec16 = ecq::warp_decoder<ecq::rans32x16<11>, ecq::narrow_entry_policy, 1, ecq::staged_words<2048, 16, 1>, 1>;
  EXPECT_LT((run_gemv<dec16, bd, 1>(es, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, table, d.x, 1, r1, 3)),
            1e-5);
  EXPECT_LT((run_gemv<dec16, bd, 3>(es, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, table, d.x, 2, r3, 4)),
            1e-5);
  // ... in a 1024-word ring with 768 words of lookahead (fused_gemv_kernel's configuration).
  using dec16a =
      ecq::warp_decoder<ecq::rans32x16<11>, ecq::narrow_entry_policy, 1, ecq::staged_words<1024, 16, 1, 32, 768>, 1>;
  EXPECT_LT((run_gemv<dec16a, bd, 1>(es, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, table, d.x, 1, r1, 3)),
            1e-5);
  EXPECT_LT((run_gemv<dec16a, bd, 8>(es, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, table, d.x, 2, r8, 4)),
            1e-5);

  // The same weights in 64-row tiles, lane j decoding rows j and j + 32.
  ecq_bench::bf16_pair_tensor bt64;
  ecq_bench::encoded_streams es64;
  ASSERT_TRUE(ecq_bench::make_bf16_pairs(d.wb, {d.M, d.K, 256, 2, 64}, &bt64));
  ASSERT_TRUE(ecq_bench::encode_items(bt64.layout, bt64.symbols, 4096, &es64));
  ASSERT_EQ(es64.freqs, es.freqs);  // the same histogram: the same table
  using x2r4 = ecq::warp_decoder<ecq::rans32x16<11>, ecq::narrow_entry_policy, 1, ecq::staged_words<1024, 4, 1, 64>, 1, 2>;
  using x2r8 = ecq::warp_decoder<ecq::rans32x16<11>, ecq::narrow_entry_policy, 1, ecq::staged_words<2048, 8, 1, 64>, 1, 2>;
  EXPECT_LT((run_gemv<x2r4, bd, 1>(es64, bt64.layout, bt64.raw, bt64.raw_words_per_item, nullptr, 0, table, d.x, 1, r1,
                                   2)),
            1e-5);
  EXPECT_LT((run_gemv<x2r8, bd, 1>(es64, bt64.layout, bt64.raw, bt64.raw_words_per_item, nullptr, 0, table, d.x, 1, r1,
                                   3)),
            1e-5);
  EXPECT_LT((run_gemv<x2r4, bd, 3>(es64, bt64.layout, bt64.raw, bt64.raw_words_per_item, nullptr, 0, table, d.x, 2, r3,
                                   4)),
            1e-5);
}

/// The narrow decode table of 4-bit affine codes coded as `es` (the payload does not depend on the group size).
std::vector<std::uint32_t> affine4_table(const ecq_bench::encoded_streams& es) {
  std::vector<std::uint32_t> table(std::size_t(1) << es.scale_bits);
  EXPECT_EQ(ecq::build_narrow_decode_table(es.freqs.data(), 256, es.scale_bits,
                                           [](std::uint32_t s) { return ecq::affine4_quad_dequant<64>::payload(s); },
                                           table.data()),
            ecq::status::ok);
  return table;
}

TEST(FusedGemv, Affine4MatchesTheDequantisedWeights) {
  ECQ_REQUIRE_GPU();
  fixture_data d;
  ecq_bench::affine4_tensor at;
  ecq_bench::make_affine4(d.wf, {d.M, d.K, 256, 4}, 128, &at);
  ecq_bench::encoded_streams es;
  ASSERT_TRUE(ecq_bench::encode_items(at.layout, at.symbols, 256, &es));
  ASSERT_EQ(es.scale_bits, 12);
  const std::vector<std::uint32_t> table = affine4_table(es);
  auto w = [&](std::size_t r, std::size_t c) { return at.weight(r, c); };
  using dec = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, words, 1>;
  using ad = ecq::affine4_quad_dequant<128>;
  const auto r1 = reference(d.M, d.K, 1, d.x, w), r2 = reference(d.M, d.K, 2, d.x, w), r5 = reference(d.M, d.K, 5, d.x, w);
  EXPECT_LT((run_gemv<dec, ad, 1>(es, at.layout, at.raw, at.raw_words_per_item, &at.side, at.side_words_per_item, table,
                                  d.x, 1, r1, 3)),
            1e-5);
  EXPECT_LT((run_gemv<dec, ad, 2>(es, at.layout, at.raw, at.raw_words_per_item, &at.side, at.side_words_per_item, table,
                                  d.x, 2, r2, 2)),
            1e-5);
  EXPECT_LT((run_gemv<dec, ad, 5>(es, at.layout, at.raw, at.raw_words_per_item, &at.side, at.side_words_per_item, table,
                                  d.x, 4, r5, 4)),
            1e-5);
  // 16-round blocks (64 weights a block, two per group of 128): the second raw unit at round 8.
  using dec16 = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, ecq::staged_words<2048, 16, 1>, 1>;
  EXPECT_LT((run_gemv<dec16, ad, 2>(es, at.layout, at.raw, at.raw_words_per_item, &at.side, at.side_words_per_item,
                                    table, d.x, 2, r2, 2)),
            1e-5);

  // The same codes in 64-row tiles, two states per lane.
  ecq_bench::affine4_tensor at64 = at;
  at64.layout.tile_rows = 64;
  ecq_bench::make_affine4_layout(&at64);
  ecq_bench::encoded_streams es64;
  ASSERT_TRUE(ecq_bench::encode_items(at64.layout, at64.symbols, 256, &es64));
  ASSERT_EQ(es64.freqs, es.freqs);
  using x2r4 = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, ecq::staged_words<1024, 4, 1, 64>, 1, 2>;
  using x2r8 = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, ecq::staged_words<2048, 8, 1, 64>, 1, 2>;
  EXPECT_LT((run_gemv<x2r4, ad, 1>(es64, at64.layout, at64.raw, at64.raw_words_per_item, &at64.side,
                                   at64.side_words_per_item, table, d.x, 1, r1, 3)),
            1e-5);
  EXPECT_LT((run_gemv<x2r8, ad, 2>(es64, at64.layout, at64.raw, at64.raw_words_per_item, &at64.side,
                                   at64.side_words_per_item, table, d.x, 2, r2, 2)),
            1e-5);
}

// Activations with a common offset (as a transformer's often have): the
// affine correction must not cancel. With uncentred fragments (128 + q) the
// dot and its correction were ~128 sum x each; the centred ones keep the
// error at the level of zero-mean activations.
TEST(FusedGemv, Affine4StaysAccurateOnOffsetActivations) {
  ECQ_REQUIRE_GPU();
  fixture_data d;
  ecq_bench::affine4_tensor at;
  ecq_bench::make_affine4(d.wf, {d.M, d.K, 256, 4}, 64, &at);
  ecq_bench::encoded_streams es;
  ASSERT_TRUE(ecq_bench::encode_items(at.layout, at.symbols, 256, &es));
  ASSERT_EQ(es.scale_bits, 12);
  const std::vector<std::uint32_t> table = affine4_table(es);
  auto w = [&](std::size_t r, std::size_t c) { return at.weight(r, c); };
  using dec = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, words, 1>;
  using ad = ecq::affine4_quad_dequant<64>;
  for (const float offset : {0.0f, 4.0f, 16.0f, 64.0f}) {
    std::vector<std::uint16_t> x(2 * std::size_t(d.K));
    for (std::size_t i = 0; i < x.size(); ++i)
      x[i] = ecq_bench::float_to_bf16(offset + float(ecq_bench::normal_at(11, i, 1)));
    const auto ref = reference(d.M, d.K, 2, x, w);
    const double err = run_gemv<dec, ad, 2>(es, at.layout, at.raw, at.raw_words_per_item, &at.side,
                                            at.side_words_per_item, table, x, 1, ref, 3);
    std::printf("affine4-g64, activations %g + N(0, 1): relative rms error %.3g\n", double(offset), err);
    EXPECT_GE(err, 0.0) << "the kernel failed to run";
    EXPECT_LT(err, 2e-7) << "offset " << offset;
  }
}

}  // namespace
