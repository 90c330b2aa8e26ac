// tests/support/ecq_test_support.hpp — READ ME FIRST
//
// The container and scheme entry points that compile one coder per
// configuration visit_coder supports (45 encoders or decoders, lanes fully
// unrolled), compiled once into the static library ecq_test_support instead
// of again in every test and fuzz target that calls them: 30 checked
// decoders alone took 12 s of g++ -O2, and 36 s of the fuzz build's clang
// (ASan, UBSan, libFuzzer's coverage), in each translation unit that has them.
//
// Each function is exactly the library call its name gives, for 16-bit
// symbols, with nothing added: a caller runs the same code as if it called
// the library directly. The library is compiled with the caller's flags
// (CMAKE_CXX_FLAGS of the preset, sanitizers included; the fuzz preset links
// fuzz targets to ecq_test_support_fuzz, instrumented like them).
//
// Who calls these: every test and fuzz target that encodes or decodes a
// container, the tests of container.hpp and scheme.hpp included (a test that
// called the library directly would compile the same 45 coders again: in
// container_test, format_golden_test, gpu_container_test and
// schemes_scheme_test that cost 1-4 minutes of CI's two cores each). Only the
// 16-bit symbol type is compiled here; a test of another symbol type calls
// the library itself.
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
