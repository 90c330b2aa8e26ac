// bench/synthetic_safetensors.cpp — writes the synthetic 268 M-weight checkpoint of bench/bench_checkpoint.hpp
// (16 matrices of 4096 x 4096 with the statistics of trained weights) as a BF16 .safetensors file, the input of
// the `ecq` tool's rows in docs/performance.md ("The CPU product path": `ecq pack --scheme bf16`, then `ecq verify`
// and `ecq unpack` of the result). Not a benchmark: it only makes the file.
//
//   ecq_bench_synthetic_safetensors OUT.safetensors
#include <cstdio>
#include <string>
#include <vector>

#include "bench_checkpoint.hpp"
#include "ecq/io/safetensors.hpp"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT.safetensors\n", argv[0]);
    return 2;
  }
  ecq::safetensors_writer w;
  for (ecq_bench::detail::float_matrix& m : ecq_bench::synthetic_matrices()) {
    std::vector<std::uint8_t> bytes(m.w.size() * 2);
    for (std::size_t i = 0; i < m.w.size(); ++i) {
      const std::uint16_t h = ecq::float_to_bf16(m.w[i]);
      bytes[2 * i] = std::uint8_t(h);
      bytes[2 * i + 1] = std::uint8_t(h >> 8);
    }
    std::vector<float>().swap(m.w);
    if (w.add(m.name, ecq::tensor_dtype::bf16, {m.rows, m.cols}, std::move(bytes)) != ecq::status::ok) return 1;
  }
  std::string error;
  if (ecq::write_file_bytes(argv[1], w.serialize(), &error) != ecq::status::ok) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 1;
  }
  return 0;
}
