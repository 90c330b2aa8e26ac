// Weights for the scheme tests (not a test itself): real tensors from
// ECQ_SHARED_DATA_DIR when the folder exists, else nothing, and synthetic
// heavy-tailed matrices that every test can fall back to.
#ifndef ECQ_TESTS_SCHEMES_TEST_WEIGHTS_HPP
#define ECQ_TESTS_SCHEMES_TEST_WEIGHTS_HPP

#include <ecq/io/safetensors.hpp>
#include <ecq/schemes/quantized_tensor.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace ecq_test {

struct test_tensor {
  std::string name;
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  std::vector<float> w;
};

/// rows x cols weights: Student-t with 4 degrees of freedom (heavy tails,
/// like trained weights, max|w|/std around 10-20), a per-row scale varying
/// over a factor of 4, and a few rows and columns with a mean offset.
inline test_tensor synthetic_tensor(std::uint64_t rows, std::uint64_t cols, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(4.0f);
  std::uniform_real_distribution<float> u(0.25f, 1.0f);
  test_tensor x;
  x.name = "synthetic_" + std::to_string(rows) + "x" + std::to_string(cols) + "_" + std::to_string(seed);
  x.rows = rows;
  x.cols = cols;
  x.w.resize(std::size_t(rows * cols));
  for (std::uint64_t r = 0; r < rows; ++r) {
    const float scale = 0.02f * u(rng);
    const float offset = r % 7 == 3 ? 0.01f : 0.0f;
    for (std::uint64_t c = 0; c < cols; ++c) x.w[std::size_t(r * cols + c)] = offset + scale * t(rng);
  }
  return x;
}

/// The tensors of ECQ_SHARED_DATA_DIR/<file> as float (empty if the file is
/// missing: a fresh clone has no ../shared).
inline std::vector<test_tensor> real_tensors(const std::string& file) {
  std::vector<test_tensor> out;
  std::vector<std::uint8_t> bytes;
  if (ecq::read_file_bytes(std::string(ECQ_SHARED_DATA_DIR) + "/" + file, &bytes) != ecq::status::ok) return out;
  ecq::safetensors_file f;
  if (f.parse(bytes.data(), bytes.size()) != ecq::status::ok) return out;
  for (const auto& t : f.tensors()) {
    test_tensor x;
    x.name = t.name;
    x.rows = ecq::shape_rows(t.shape);
    x.cols = ecq::shape_cols(t.shape);
    if (ecq::to_float(t, f.data(t), &x.w) == ecq::status::ok) out.push_back(std::move(x));
  }
  return out;
}

}  // namespace ecq_test

#endif  // ECQ_TESTS_SCHEMES_TEST_WEIGHTS_HPP
