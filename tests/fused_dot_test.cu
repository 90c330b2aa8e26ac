// GPU test for include/ecq/fused_dot.hpp: the same dot_sink / fused_block_dot
// that the host runs (tests/fused_dot_test.cpp), compiled for the device and
// run with one thread per tile over containers in device memory (the view
// and the dequantiser rebased to device pointers). Results must match the
// host's fused GEMV within the float bound the header states (the device
// contracts multiply-adds into FMAs, so bit equality is not expected).
// Skips without a GPU; runs on the GPU machine (bench/cuda/run_device.sh).
#include <ecq/fused_dot.hpp>
#include <ecq/schemes/scheme.hpp>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include "gpu_test_support.cuh"
#include "schemes_test_weights.hpp"

namespace {

using ecq::status;
using P12 = ecq::rans32x16<12>;

template <class Dequantizer>
__global__ void fused_tiles(ecq::encoded_tensor_view v, Dequantizer dq, const float* x, float* y) {
  const std::uint64_t t = std::uint64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (t >= v.geometry.num_tiles()) return;
  using table_view = ecq::decode_table_view<12, ecq::decode_symbol_bits(12)>;
  const table_view table{static_cast<const table_view::entry_type*>(v.decode_table)};
  const std::uint64_t first = t * v.geometry.tile_rows;
  for (std::uint64_t r = first; r < v.geometry.rows && r < first + v.geometry.tile_rows; ++r) y[r] = 0.0f;
  for (std::uint64_t k = 0; k < v.geometry.num_chunks(); ++k) {
    const ecq::block_view b = v.block(t, k);
    ecq::fused_block_dot<P12, 32>(b, table, dq, x, v.geometry.cols, y + b.first_row);
  }
}

template <class D>
constexpr bool on_device =
    std::is_same<D, ecq::float16_dequantizer<ecq::float16_format::bfloat16>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<4, 1, 0>>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<4, 4, 1>>>::value ||
    std::is_same<D, ecq::codebook_dequantizer<ecq::symbol_packing<4, 2, 0>>>::value ||
    std::is_same<D, ecq::uniform_dequantizer>::value;

TEST(FusedDotDevice, MatchesTheHost) {
  ECQ_REQUIRE_GPU();
  const auto t = ecq_test::synthetic_tensor(300, 520, 1);
  std::mt19937 rng(2);
  std::normal_distribution<float> nd;
  std::vector<float> x(t.cols);
  for (auto& v : x) v = nd(rng);
  for (const char* scheme : {"bf16", "affine4-g64", "affine4-g64-p4r1", "codebook-nf4-g32-p2", "uniform-sqnr24-row"}) {
    ecq::scheme_spec spec;
    ASSERT_EQ(ecq::parse_scheme(scheme, &spec), status::ok);
    ecq::quantized_tensor q;
    ASSERT_EQ(ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q), status::ok);
    ecq::coding_options o;
    o.scale_bits = 12;
    o.lanes = 32;
    o.tile_rows = 32;
    o.chunk_symbols = 128;  // several chunks per tile
    ecq::encoded_tensor e;
    ASSERT_EQ(ecq::encode_quantized(q, o, &e), status::ok);
    std::vector<float> w;
    ASSERT_EQ(ecq::decode_and_dequantize(e, &w), status::ok);

    const std::vector<std::uint8_t> bytes(e.data(), e.data() + e.size());
    const auto* entries = static_cast<const std::uint8_t*>(e.view().decode_table);
    const std::vector<std::uint8_t> table(entries, entries + e.decode_table_bytes());
    ecq_test::device_vector<std::uint8_t> d_bytes(bytes), d_table(table);
    ecq_test::device_vector<float> d_x(x), d_y(t.rows);
    const ecq::encoded_tensor_view host_view = e.view();
    const ecq::encoded_tensor_view dev_view = host_view.rebased(d_bytes.p, d_table.p);

    std::vector<float> host_y(t.rows);
    const status st = ecq::visit_dequantizer(
        e.geometry().scheme_id, e.scheme_params(), e.scheme_params_size(), ecq::container_sections{&host_view},
        ecq::geometry_of(e.geometry()), [&](const auto& dq) {
          using D = std::decay_t<decltype(dq)>;
          if constexpr (on_device<D>) {
            return ecq::fused_gemv_with<P12, 32>(host_view, dq, x.data(), host_y.data(), 0,
                                                 host_view.geometry.num_tiles());
          } else {
            return status::unsupported_parameters;
          }
        });
    ASSERT_EQ(st, status::ok) << scheme;
    // The same factory over the device view gives device pointers.
    const status sd = ecq::visit_dequantizer(
        e.geometry().scheme_id, e.scheme_params(), e.scheme_params_size(), ecq::container_sections{&dev_view},
        ecq::geometry_of(e.geometry()), [&](const auto& dq) {
          using D = std::decay_t<decltype(dq)>;
          if constexpr (on_device<D>) {
            const unsigned tiles = unsigned(dev_view.geometry.num_tiles());
            fused_tiles<<<(tiles + 63) / 64, 64>>>(dev_view, dq, d_x.p, d_y.p);
            return cudaDeviceSynchronize() == cudaSuccess ? status::ok : status::invalid_argument;
          } else {
            return status::unsupported_parameters;
          }
        });
    ASSERT_EQ(sd, status::ok) << scheme << ": " << cudaGetErrorString(cudaGetLastError());
    const std::vector<float> dev_y = d_y.get();
    for (std::uint64_t r = 0; r < t.rows; ++r) {
      double magnitude = 0;
      for (std::uint64_t c = 0; c < t.cols; ++c) magnitude += std::fabs(double(w[r * t.cols + c]) * x[c]);
      const double bound = 2.0 * double(t.cols) * std::ldexp(1.0, -24) * magnitude;
      ASSERT_LE(std::fabs(double(dev_y[r]) - double(host_y[r])), bound) << scheme << " row " << r;
    }
  }
}

}  // namespace
