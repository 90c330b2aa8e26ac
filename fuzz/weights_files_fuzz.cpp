// Fuzz target: arbitrary bytes as the two weight-file formats the `ecq` tool
// reads, a safetensors file (ecq/io/safetensors.hpp) and an .ecq file
// (ecq/io/ecq_file.hpp) whose containers are then decoded and dequantised
// with the scheme their header names (ecq/schemes/scheme.hpp). Properties:
//   * neither parser reads outside the input (AddressSanitizer) and both
//     return a status;
//   * an accepted safetensors file has every tensor inside its data section
//     with the size its shape and dtype give; writing the parsed tensors
//     back and parsing again gives the same names, dtypes, shapes and bytes;
//     to_float succeeds exactly for the convertible dtypes;
//   * an accepted .ecq file has every container inside the input, and a
//     container exactly for the container entries with elements; a raw
//     entry's bytes lie inside the directory and number elements x dtype
//     size; opening each container (copied, and in place when the input is
//     16-byte aligned: both give the same status) and decoding it (checked,
//     at most 2^18 weights) returns a status and, on success, exactly
//     rows * cols values.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include <ecq/io/ecq_file.hpp>
#include <ecq/io/safetensors.hpp>
#include <ecq/schemes/scheme.hpp>

#include "fuzz_check.hpp"
#include "support/ecq_test_support.hpp"

namespace {

void check_safetensors(const std::uint8_t* data, std::size_t size) {
  ecq::safetensors_file f;
  if (f.parse(data, size) != ecq::status::ok) return;
  ecq::safetensors_writer w;
  for (const auto& t : f.tensors()) {
    const std::uint64_t bytes = t.end - t.begin;
    ECQ_FUZZ_CHECK(f.data(t) >= data && f.data(t) + bytes <= data + size);
    ECQ_FUZZ_CHECK(t.elements() * ecq::dtype_size(t.dtype) == bytes);
    std::vector<float> v;
    const ecq::status s = ecq::to_float(t, f.data(t), &v);
    const bool convertible = t.dtype == ecq::tensor_dtype::f32 || t.dtype == ecq::tensor_dtype::f16 ||
                             t.dtype == ecq::tensor_dtype::bf16 || t.dtype == ecq::tensor_dtype::f64 ||
                             t.dtype == ecq::tensor_dtype::i8 || t.dtype == ecq::tensor_dtype::i16;
    ECQ_FUZZ_CHECK((s == ecq::status::ok) == convertible);
    if (s == ecq::status::ok) ECQ_FUZZ_CHECK(v.size() == t.elements());
    ECQ_FUZZ_CHECK(w.add(t.name, t.dtype, t.shape, std::vector<std::uint8_t>(f.data(t), f.data(t) + bytes)) ==
                   ecq::status::ok);
  }
  for (const auto& kv : f.metadata()) w.add_metadata(kv.first, kv.second);
  const std::vector<std::uint8_t> again = w.serialize();
  ecq::safetensors_file g;
  ECQ_FUZZ_CHECK(g.parse(again.data(), again.size()) == ecq::status::ok);
  ECQ_FUZZ_CHECK(g.tensors().size() == f.tensors().size());
  ECQ_FUZZ_CHECK(g.metadata() == f.metadata());
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const auto &a = f.tensors()[i], &b = g.tensors()[i];
    ECQ_FUZZ_CHECK(a.name == b.name && a.dtype == b.dtype && a.shape == b.shape);
    ECQ_FUZZ_CHECK(std::memcmp(f.data(a), g.data(b), std::size_t(a.end - a.begin)) == 0);
  }
}

void check_ecq_file(const std::uint8_t* data, std::size_t size) {
  ecq::ecq_file_reader r;
  if (r.parse(data, size) != ecq::status::ok) return;
  for (std::size_t i = 0; i < r.tensors().size(); ++i) {
    const auto& t = r.tensors()[i];
    if (t.storage == ecq::ecq_storage::raw) {
      const std::uint64_t directory = ecq::detail::load_le64(data + 16);
      ECQ_FUZZ_CHECK(r.raw_data(i) == data + t.offset && r.container_data(i) == nullptr);
      ECQ_FUZZ_CHECK(t.offset >= 32 && t.size <= directory && t.offset - 32 <= directory - t.size);
      ECQ_FUZZ_CHECK(t.elements() != 0 && t.size == t.elements() * ecq::dtype_size(t.source_dtype));
      continue;
    }
    ECQ_FUZZ_CHECK(t.offset % 16 == 0 && t.offset <= size && t.size <= size - t.offset);
    ECQ_FUZZ_CHECK((t.elements() == 0) == (t.size == 0));
    ecq::encoded_tensor e;
    if (reinterpret_cast<std::uintptr_t>(data) % 16 == 0) {
      const ecq::status borrowed = r.open_tensor_borrowed(i, &e, ecq::open_options{false});
      if (borrowed == ecq::status::ok) ECQ_FUZZ_CHECK(e.data() == data + t.offset);
      ecq::encoded_tensor copy;
      ECQ_FUZZ_CHECK(r.open_tensor(i, &copy, ecq::open_options{false}) == borrowed);
    }
    if (r.open_tensor(i, &e, ecq::open_options{false}) != ecq::status::ok) continue;
    std::vector<float> w;
    if (ecq_test::decode_and_dequantize(e, &w, std::uint64_t(1) << 18) != ecq::status::ok) continue;
    ECQ_FUZZ_CHECK(w.size() == e.geometry().rows * e.geometry().cols);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  check_safetensors(data, size);
  check_ecq_file(data, size);
  return 0;
}
