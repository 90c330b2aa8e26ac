// bench/bench_checkpoint.hpp — READ ME FIRST
//
// Checkpoints as users have them, for the benchmark rows of the product path:
// every tensor quantised with a scheme (ecq/schemes/scheme.hpp), coded in the
// library's default layout (layout_goal::storage, what `ecq pack` writes),
// written into a real .ecq file in memory (ecq/io/ecq_file.hpp), parsed by
// the checked reader and opened, without a copy, from the file's bytes.
//
//   real_checkpoint(scheme)       every 2-D F32 tensor of
//                                 $ECQ_SHARED_DATA_DIR/use-lite.safetensors
//                                 (empty when the file is absent);
//   synthetic_checkpoint(scheme)  16 matrices of 4096 x 4096 (268 M weights)
//                                 with the statistics of trained weights:
//                                 Gaussian with a per-row scale in [0.5, 1.5]
//                                 x 0.02 and one weight in 500 an outlier of
//                                 8 to 16 sigma (real transformers have
//                                 max|w|/std of 10-30).
//   synthetic_matrices()          the float weights of synthetic_checkpoint
//                                 (bench/synthetic_safetensors.cpp writes
//                                 them to a BF16 .safetensors file for the
//                                 `ecq` tool's rows).
// Both are built once per process and scheme, on every core.
#ifndef ECQ_BENCH_BENCH_CHECKPOINT_HPP
#define ECQ_BENCH_BENCH_CHECKPOINT_HPP

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "ecq/ecq.hpp"
#include "ecq/io/safetensors.hpp"
#include "ecq/schemes/scheme.hpp"

namespace ecq_bench {

struct ecq_checkpoint {
  std::string source;                       // what the weights are ("" when there are none)
  std::vector<std::uint8_t> file;           // the .ecq file
  std::vector<ecq::encoded_tensor> tensors;  // borrowed from `file`
  std::uint64_t weights = 0;
  std::uint64_t symbols = 0;
};

namespace detail {

struct float_matrix {
  std::string name;
  std::uint64_t rows = 0, cols = 0;
  std::vector<float> w;
};

/// Quantises and codes the matrices (in parallel), writes the .ecq file and opens every tensor from it.
inline void pack(std::vector<float_matrix> matrices, const std::string& scheme, ecq_checkpoint* c) {
  ecq::scheme_spec spec;
  if (ecq::parse_scheme(scheme, &spec) != ecq::status::ok) return;
  std::vector<ecq::encoded_tensor> coded(matrices.size());
  std::vector<ecq::status> st(matrices.size(), ecq::status::ok);
  auto code = [&](std::size_t i) {
    ecq::quantized_tensor q;
    st[i] = ecq::quantize(spec, matrices[i].w.data(), matrices[i].rows, matrices[i].cols, &q);
    if (st[i] == ecq::status::ok)
      st[i] = ecq::encode_quantized(q, ecq::choose_coding_options(q, ecq::layout_goal::storage), &coded[i]);
    std::vector<float>().swap(matrices[i].w);
  };
  ecq::default_thread_pool().parallel_for(matrices.size(), ecq::task_ref(code));
  ecq::ecq_file_writer writer;
  for (std::size_t i = 0; i < matrices.size(); ++i) {
    if (st[i] != ecq::status::ok) {
      std::fprintf(stderr, "bench: %s: cannot code with %s (%s)\n", matrices[i].name.c_str(), scheme.c_str(),
                   ecq::status_string(st[i]));
      c->source.clear();
      return;
    }
    writer.add(matrices[i].name, ecq::tensor_dtype::f32, {matrices[i].rows, matrices[i].cols}, coded[i]);
  }
  coded.clear();
  c->file = writer.serialize();
  ecq::ecq_file_reader reader;
  if (reader.parse(c->file.data(), c->file.size()) != ecq::status::ok) return;
  c->tensors.resize(reader.tensors().size());
  for (std::size_t i = 0; i < reader.tensors().size(); ++i) {
    if (ecq::encoded_tensor::open_borrowed(reader.container_data(i), std::size_t(reader.tensors()[i].size),
                                           &c->tensors[i]) != ecq::status::ok)
      return;
    c->weights += c->tensors[i].geometry().rows * c->tensors[i].geometry().cols;
    c->symbols += c->tensors[i].geometry().rows * c->tensors[i].geometry().symbols_per_row;
  }
}

}  // namespace detail

/// See the file comment.
inline const ecq_checkpoint& real_checkpoint(const std::string& scheme) {
  static std::map<std::string, std::unique_ptr<ecq_checkpoint>> cache;
  auto& slot = cache[scheme];
  if (slot) return *slot;
  slot.reset(new ecq_checkpoint);
  const std::string path = shared_data_dir() + "/use-lite.safetensors";
  std::vector<std::uint8_t> bytes;
  ecq::safetensors_file f;
  if (ecq::read_file_bytes(path, &bytes) != ecq::status::ok || f.parse(bytes.data(), bytes.size()) != ecq::status::ok)
    return *slot;
  std::vector<detail::float_matrix> matrices;
  for (const auto& t : f.tensors()) {
    if (t.shape.size() != 2 || t.dtype != ecq::tensor_dtype::f32) continue;
    detail::float_matrix m{t.name, t.shape[0], t.shape[1], {}};
    if (ecq::to_float(t, f.data(t), &m.w) == ecq::status::ok) matrices.push_back(std::move(m));
  }
  slot->source = path + " (every 2-D tensor)";
  detail::pack(std::move(matrices), scheme, slot.get());
  return *slot;
}

/// The float matrices of synthetic_checkpoint (see the file comment), made on every core.
inline std::vector<detail::float_matrix> synthetic_matrices() {
  constexpr std::uint64_t n = 4096;
  std::vector<detail::float_matrix> matrices(16);
  auto make = [&](std::size_t i) {
    detail::float_matrix& m = matrices[i];
    m.name = "layers." + std::to_string(i / 4) + ".w" + std::to_string(i % 4);
    m.rows = m.cols = n;
    m.w.resize(n * n);
    splitmix64 rng{1000 + i};
    for (std::uint64_t r = 0; r < n; ++r) {
      const double scale = 0.02 * (0.5 + rng.uniform());
      for (std::uint64_t c = 0; c < n; c += 2) {
        const double a = std::sqrt(-2.0 * std::log(rng.uniform())), b = 6.283185307179586 * rng.uniform();
        double g0 = a * std::cos(b), g1 = a * std::sin(b);
        if (rng() % 500 == 0) g0 = (g0 < 0 ? -1 : 1) * (8.0 + 8.0 * rng.uniform());
        m.w[r * n + c] = float(scale * g0);
        m.w[r * n + c + 1] = float(scale * g1);
      }
    }
  };
  ecq::default_thread_pool().parallel_for(matrices.size(), ecq::task_ref(make));
  return matrices;
}

/// See the file comment.
inline const ecq_checkpoint& synthetic_checkpoint(const std::string& scheme) {
  static std::map<std::string, std::unique_ptr<ecq_checkpoint>> cache;
  auto& slot = cache[scheme];
  if (slot) return *slot;
  slot.reset(new ecq_checkpoint);
  slot->source = "synthetic: 16 x (4096 x 4096), Gaussian with per-row scale and 1/500 outliers";
  detail::pack(synthetic_matrices(), scheme, slot.get());
  return *slot;
}

}  // namespace ecq_bench

#endif  // ECQ_BENCH_BENCH_CHECKPOINT_HPP
