// tests/gpu_test_support.cuh — READ ME FIRST
//
// Shared by the GPU tests (tests/*_test.cu): a checked device buffer, a skip
// when no GPU is present (CI compiles these tests but has no GPU; they run on
// the GPU machine, see bench/cuda/run_device.sh), and random 32- or 64-row
// tile streams encoded with the core encoder in the container's tile layout
// (bench/cuda/tile_codec.hpp).
#ifndef ECQ_TESTS_GPU_TEST_SUPPORT_CUH
#define ECQ_TESTS_GPU_TEST_SUPPORT_CUH

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <vector>

#include "../bench/cuda/reference_kernels.cuh"
#include "../bench/cuda/tile_codec.hpp"

namespace ecq_test {

#define ECQ_TEST_CUDA(call) ASSERT_EQ((call), cudaSuccess) << #call

/// GTEST_SKIP unless a CUDA device is present.
#define ECQ_REQUIRE_GPU()                                                  \
  do {                                                                     \
    int n_ = 0;                                                            \
    if (cudaGetDeviceCount(&n_) != cudaSuccess || n_ == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

template <class T>
struct device_vector {
  T* p = nullptr;
  std::size_t n = 0;
  explicit device_vector(std::size_t count) : n(count) { cudaMalloc(&p, std::max<std::size_t>(count, 1) * sizeof(T)); }
  explicit device_vector(const std::vector<T>& v) : device_vector(v.size()) {
    cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice);
  }
  device_vector(const device_vector&) = delete;
  device_vector& operator=(const device_vector&) = delete;
  ~device_vector() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
};

/// Random symbols (row-major rows x symbols_per_row, skewed like real
/// weights) encoded as tile_rows-row tiles (32 or 64) of `chunk` symbol
/// columns.
struct random_tiles {
  ecq_bench::tile_layout layout;
  std::vector<std::uint16_t> symbols;
  ecq_bench::encoded_streams streams;

  random_tiles(std::uint32_t rows, std::uint32_t symbols_per_row, std::uint32_t chunk, std::uint32_t alphabet,
               std::uint32_t seed, std::uint32_t tile_rows = 32) {
    layout = {rows, symbols_per_row, chunk, 1, tile_rows};
    std::mt19937 rng(seed);
    std::geometric_distribution<int> geo(0.04);  // P(0) = 4%: fits narrow tables up to S = 12
    symbols.resize(std::size_t(rows) * symbols_per_row);
    for (auto& s : symbols) s = std::uint16_t(std::uint32_t(geo(rng)) % alphabet);
    ecq_bench::encode_items(layout, symbols, alphabet, &streams);
  }
  /// The bench_tiles view over device copies of the streams (no raw/side).
  ecq_bench::bench_tiles view(const std::uint16_t* words, const std::uint32_t* offset, const std::uint32_t* count) const {
    ecq_bench::bench_tiles t = ecq_bench::bench_tiles::geometry(layout.tiles(), layout.chunks(), layout.chunk_cols,
                                                                layout.rounds(), layout.tile_rows, 1);
    t.words = words;
    t.offset = offset;
    t.count = count;
    return t;
  }
  /// Symbol of stream s (item order tile * chunks + chunk), round k, tile row r.
  std::uint16_t expected(std::uint32_t s, std::uint32_t k, std::uint32_t r) const {
    const std::uint32_t tile = s / layout.chunks(), chunk = s % layout.chunks();
    return symbols[std::size_t(tile * layout.tile_rows + r) * layout.cols + std::size_t(chunk) * layout.chunk_cols + k];
  }
};

}  // namespace ecq_test

#endif  // ECQ_TESTS_GPU_TEST_SUPPORT_CUH
