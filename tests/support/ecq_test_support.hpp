// tests/support/ecq_test_support.hpp — READ ME FIRST
//
// The container and scheme entry points that compile one coder per
// configuration visit_coder supports (30 encoders or decoders, lanes fully
// unrolled), compiled once into the static library ecq_test_support instead
// of again in every test and fuzz target that calls them: the 30 checked
// decoders alone take 12 s of g++ -O2, and 36 s of the fuzz build's clang
// (ASan, UBSan, libFuzzer's coverage), in each translation unit that has them.
//
// Each function is exactly the library call its name gives, for 16-bit
// symbols, with nothing added: a caller runs the same code as if it called
// the library directly. The library is compiled with the caller's flags
// (CMAKE_CXX_FLAGS of the preset, sanitizers included; the fuzz preset links
// fuzz targets to ecq_test_support_fuzz, instrumented like them).
//
// Who calls these: tests that need an encoded tensor to test something else
// (fused_dot_test, schemes_affine_test, io_ecq_file_test) and the fuzz
// targets. A header's own unit test calls its functions directly, so that
// their instantiations stay in the test of that header (container_test for
// encoded_tensor, schemes_scheme_test for encode_quantized and
// decode_and_dequantize).
#ifndef ECQ_TESTS_SUPPORT_ECQ_TEST_SUPPORT_HPP
#define ECQ_TESTS_SUPPORT_ECQ_TEST_SUPPORT_HPP

#include <ecq/container.hpp>
#include <ecq/schemes/scheme.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace ecq_test {

/// ecq::encoded_tensor::encode(symbols, d, o, out).
ecq::status encode(const std::uint16_t* symbols, const ecq::tensor_description& d, const ecq::coding_options& o,
                   ecq::encoded_tensor* out);

/// t.decode_checked(out, capacity).
ecq::status decode_checked(const ecq::encoded_tensor& t, std::uint16_t* out, std::size_t capacity);

/// t.decode(out).
void decode(const ecq::encoded_tensor& t, std::uint16_t* out);

/// ecq::encode_quantized(q, o, out).
ecq::status encode_quantized(const ecq::quantized_tensor& q, const ecq::coding_options& o, ecq::encoded_tensor* out);

/// ecq::decode_and_dequantize(t, out, max_weights).
ecq::status decode_and_dequantize(const ecq::encoded_tensor& t, std::vector<float>* out,
                                  std::uint64_t max_weights = ecq::default_max_decoded_weights);

}  // namespace ecq_test

#endif  // ECQ_TESTS_SUPPORT_ECQ_TEST_SUPPORT_HPP
