// Tests for ecq/warp_row_dot.cuh (GPU; skipped without one): the tensor-core
// row dot products equal a float64 reference for every row and batch column.
#include <ecq/warp_row_dot.cuh>

#include <cmath>

#include "gpu_test_support.cuh"

namespace {

/// w: 32 rows x K bf16 (row-major, pairs as uint32); records: per quad
/// records_per_quad A records; y[b * 32 + row].
template <int Batch>
__global__ void dot_kernel(const std::uint32_t* w, const uint4* records, int K, float* y) {
  ecq::warp_row_dot<Batch> dot;
  const std::uint32_t* row = w + std::size_t(ecq::detail::lane_id()) * (K / 2);
  for (int q = 0; q < K / 4; ++q) {
    dot.load_activations(records + q * dot.records_per_quad);
    dot.mma(row[2 * q], row[2 * q + 1]);
  }
  for (int s = 0; s < dot.sets; ++s)
    for (int i = 0; i < 4; ++i)
      if (dot.holds(s, i, Batch)) y[dot.batch_of(s, i) * 32 + dot.row_of(i)] = dot.d[s][i];
}

template <int Batch>
void run_case(int K, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<std::uint16_t> w(32 * std::size_t(K)), x(std::size_t(Batch) * K);
  for (auto& v : w) v = ecq_bench::float_to_bf16(nd(rng));
  for (auto& v : x) v = ecq_bench::float_to_bf16(nd(rng));
  std::vector<std::uint32_t> wp(w.size() / 2);
  for (std::size_t i = 0; i < wp.size(); ++i) wp[i] = w[2 * i] | (std::uint32_t(w[2 * i + 1]) << 16);
  constexpr int rpq = ecq::warp_row_dot<Batch>::records_per_quad;
  std::vector<uint4> rec(std::size_t(K / 4) * rpq);
  auto pair = [&](int b, int c) -> std::uint32_t {
    return b < Batch ? x[std::size_t(b) * K + c] | (std::uint32_t(x[std::size_t(b) * K + c + 1]) << 16) : 0u;
  };
  for (int q = 0; q < K / 4; ++q)
    for (int r = 0; r < rpq; ++r) {
      const int lo = 4 * (r / 2) + r % 2, hi = lo + 2;
      rec[std::size_t(q) * rpq + r] =
          ecq::warp_row_dot<Batch>::make_record(pair(lo, 4 * q), pair(lo, 4 * q + 2), pair(hi, 4 * q), pair(hi, 4 * q + 2));
    }
  ecq_test::device_vector<std::uint32_t> wd(wp);
  ecq_test::device_vector<uint4> rd(rec);
  ecq_test::device_vector<float> yd(std::size_t(Batch) * 32);
  dot_kernel<Batch><<<1, 32>>>(wd.p, rd.p, K, yd.p);
  ECQ_TEST_CUDA(cudaGetLastError());
  ECQ_TEST_CUDA(cudaDeviceSynchronize());
  const auto y = yd.get();
  for (int b = 0; b < Batch; ++b)
    for (int r = 0; r < 32; ++r) {
      double ref = 0, mag = 0;
      for (int c = 0; c < K; ++c) {
        const double p = double(ecq_bench::bf16_to_float(w[std::size_t(r) * K + c])) *
                         ecq_bench::bf16_to_float(x[std::size_t(b) * K + c]);
        ref += p;
        mag += std::fabs(p);
      }
      EXPECT_NEAR(y[std::size_t(b) * 32 + r], ref, 1e-5 * mag + 1e-6) << "batch " << b << " row " << r;
    }
}

TEST(WarpRowDot, MatchesFloat64ForEveryBatchSize) {
  ECQ_REQUIRE_GPU();
  run_case<1>(256, 1);
  run_case<2>(128, 2);
  run_case<3>(64, 3);
  run_case<4>(64, 4);
  run_case<5>(64, 5);
  run_case<8>(128, 8);
}

}  // namespace
