// Fuzz target: arbitrary bytes as a container, decoded through the one-call CPU API (ecq/cpu/tensor_ops.hpp) on
// every CPU path this machine runs (the SIMD kernels of ecq/cpu_decode.hpp behind ecq/cpu/tensor_decoder.hpp, the
// stream-order affine GEMV), against the core's scalar checked decoder. Properties:
//   * nothing reads outside the container or writes outside the caller's buffers (AddressSanitizer);
//   * decode_to_symbols returns exactly the status of encoded_tensor::decode_checked, and on success its symbols
//     (its one-byte overload too, for alphabets of at most 256 symbols; unsupported_parameters above);
//   * decode_to_float returns exactly the status of decode_and_dequantize, and on success its weights, bit for bit;
//     check_decode returns that status too, and decode_to_bf16 (for the lossless bf16 scheme: its symbols joined
//     with their raw bytes in the row scatter) gives it and, on success, the weights rounded to bfloat16 (exact
//     for that scheme);
//   * gemv returns that status too, and on success y within the documented bound of the float64 product of those
//     weights (when they are finite).
// Inputs are bounded to 2^18 coded symbols and weights, so that one runs in milliseconds.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ecq/cpu/tensor_ops.hpp>

#include "fuzz_check.hpp"
#include "support/ecq_test_support.hpp"

namespace {

constexpr std::uint64_t max_fuzz_symbols = std::uint64_t(1) << 18;

std::vector<ecq::cpu_path> paths() {
  std::vector<ecq::cpu_path> p{ecq::cpu_path::scalar};
  for (ecq::cpu_path q : {ecq::cpu_path::avx2, ecq::cpu_path::avx512, ecq::cpu_path::neon})
    if (ecq::cpu_path_supported(q)) p.push_back(q);
  return p;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ecq::encoded_tensor t;
  if (ecq::encoded_tensor::open(data, size, &t, ecq::open_options{false}) != ecq::status::ok) return 0;
  const ecq::tensor_geometry& g = t.geometry();
  if (t.overhead().coded_symbols > max_fuzz_symbols || g.cols > max_fuzz_symbols / g.rows) return 0;

  const std::size_t n = std::size_t(g.rows * g.symbols_per_row), weights = std::size_t(g.rows * g.cols);
  std::vector<std::uint16_t> ref(n), out(n);
  const ecq::status expected = ecq_test::decode_checked(t, ref.data(), n);
  std::vector<float> w_ref;
  const ecq::status dequantized = ecq_test::decode_and_dequantize(t, &w_ref, max_fuzz_symbols);

  std::vector<float> x(std::size_t(g.cols));
  for (std::size_t c = 0; c < x.size(); ++c) x[c] = float(int(c % 7) - 3) * 0.25f;
  for (ecq::cpu_path p : paths()) {
    ecq::cpu_options o;
    o.path = p;
    o.threads = 1;
    ECQ_FUZZ_CHECK(ecq::decode_to_symbols(t, out.data(), n, o) == expected);
    if (expected == ecq::status::ok) ECQ_FUZZ_CHECK(out == ref);
    std::vector<std::uint8_t> bytes(n);
    const ecq::status got_bytes = ecq::decode_to_symbols(t, bytes.data(), n, o);
    ECQ_FUZZ_CHECK(got_bytes == (g.alphabet_size > 256 ? ecq::status::unsupported_parameters : expected));
    if (got_bytes == ecq::status::ok)
      for (std::size_t i = 0; i < n; ++i) ECQ_FUZZ_CHECK(bytes[i] == ref[i]);

    std::vector<float> w(weights);
    ECQ_FUZZ_CHECK(ecq::decode_to_float(t, w.data(), weights, o) == dequantized);
    if (dequantized == ecq::status::ok) ECQ_FUZZ_CHECK(same_bits(w, w_ref));
    ECQ_FUZZ_CHECK(ecq::check_decode(t, o) == dequantized);
    std::vector<std::uint16_t> h(weights);
    ECQ_FUZZ_CHECK(ecq::decode_to_bf16(t, h.data(), weights, o) == dequantized);
    if (dequantized == ecq::status::ok)
      for (std::size_t i = 0; i < weights; ++i)
        ECQ_FUZZ_CHECK(std::isnan(w_ref[i]) ? std::isnan(ecq::bf16_to_float(h[i])) : h[i] == ecq::float_to_bf16(w_ref[i]));

    std::vector<float> y(std::size_t(g.rows));
    ECQ_FUZZ_CHECK(ecq::gemv(t, x.data(), 1, y.data(), o) == dequantized);
    if (dequantized != ecq::status::ok) continue;
    for (std::uint64_t r = 0; r < g.rows; ++r) {
      double exact = 0, magnitude = 0;
      bool finite = true;
      for (std::uint64_t c = 0; c < g.cols; ++c) {
        const double prod = double(w_ref[r * g.cols + c]) * double(x[c]);
        finite &= std::isfinite(prod);
        exact += prod;
        magnitude += std::fabs(prod);
      }
      if (finite && std::isfinite(magnitude) && magnitude < 1e30)
        ECQ_FUZZ_CHECK(std::fabs(double(y[r]) - exact) <= double(g.cols) * std::ldexp(1.0, -24) * magnitude + 1e-30);
    }
  }
  return 0;
}
