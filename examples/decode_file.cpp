// examples/decode_file.cpp — the smallest complete use of ecq: open an .ecq file (what `ecq pack` writes),
// decode each tensor to float32 and run y = W x on it, through the one-call CPU API (ecq/cpu/tensor_ops.hpp).
//   example_decode_file [FILE.ecq]     (default: tests/data/example-affine4-g64.ecq, made by `ecq pack`)
#include <ecq/ecq.hpp>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  const std::string path = argc > 1 ? argv[1] : ECQ_SOURCE_DIR "/tests/data/example-affine4-g64.ecq";
  std::vector<std::uint8_t> bytes;
  ecq::ecq_file_reader file;
  std::string error;
  if (ecq::read_file_bytes(path, &bytes, &error) != ecq::status::ok ||
      file.parse(bytes.data(), bytes.size(), &error) != ecq::status::ok)
    return std::fprintf(stderr, "%s: %s\n", path.c_str(), error.c_str()), 1;
  for (std::size_t i = 0; i < file.tensors().size(); ++i) {
    ecq::encoded_tensor t;
    if (file.tensors()[i].elements() == 0 || file.open_tensor(i, &t) != ecq::status::ok) continue;
    const std::uint64_t rows = t.geometry().rows, cols = t.geometry().cols;
    std::vector<float> w(rows * cols), x(cols, 1.0f), y(rows);
    ecq::status st = ecq::decode_to_float(t, w.data(), w.size());
    if (st == ecq::status::ok) st = ecq::gemv(t, x.data(), 1, y.data());
    if (st != ecq::status::ok)
      return std::fprintf(stderr, "%s: %s\n", file.tensors()[i].name.c_str(), ecq::status_string(st)), 1;
    double row0 = 0;  // y[0] must be the sum of row 0 (x is all ones)
    for (std::uint64_t c = 0; c < cols; ++c) row0 += w[c];
    std::printf("%s: %llu x %llu, y[0] = %.6g (row sum %.6g)\n", file.tensors()[i].name.c_str(),
                (unsigned long long)rows, (unsigned long long)cols, double(y[0]), row0);
    if (std::fabs(double(y[0]) - row0) > 1e-4 * (1.0 + std::fabs(row0))) return 1;
  }
  return 0;
}
