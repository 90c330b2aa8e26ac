// Fuzz target (c): frequency-table deserialisation (ecq/frequency_table_io.hpp).
//
// Input: arbitrary bytes, read as a serialised table. Properties checked:
//   * the checked parser never reads outside the input (AddressSanitizer) and
//     returns a status;
//   * an accepted table is normalised (validate_frequencies), its size is at
//     most the input size, and its serialisation reproduces exactly the bytes
//     it was read from (the encoding is canonical);
//   * a decode table builds from it whenever ScaleBits allows the alphabet;
//   * a caller buffer one entry too small gives output_too_small, never a write.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ecq/frequency_table_io.hpp>
#include <ecq/symbol_table.hpp>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint32_t> freqs(ecq::max_alphabet_size);
  ecq::frequency_table_info info;
  const ecq::status st = ecq::read_frequency_table(data, size, freqs.data(), std::uint32_t(freqs.size()), &info);
  if (st != ecq::status::ok) {
    ECQ_FUZZ_CHECK(st == ecq::status::truncated || st == ecq::status::corrupt_table);
    return 0;
  }
  ECQ_FUZZ_CHECK(info.size_bytes <= size);
  ECQ_FUZZ_CHECK(ecq::validate_frequencies(freqs.data(), info.alphabet_size, info.scale_bits) == ecq::status::ok);

  std::vector<std::uint8_t> again;
  ECQ_FUZZ_CHECK(ecq::write_frequency_table(freqs.data(), info.alphabet_size, info.scale_bits, &again) ==
                 ecq::status::ok);
  ECQ_FUZZ_CHECK(again.size() == info.size_bytes);
  ECQ_FUZZ_CHECK(std::memcmp(again.data(), data, again.size()) == 0);

  // The widest decode table (ScaleBits 16, 12-bit symbols) accepts every
  // table of ScaleBits 16 with at most 4096 symbols.
  if (info.scale_bits == 16) {
    ecq::decode_table<16, 12> table;
    ECQ_FUZZ_CHECK(table.build(freqs.data(), info.alphabet_size) == ecq::status::ok);
  }

  // Exactly the right capacity works; one less is refused.
  std::vector<std::uint32_t> tight(info.alphabet_size);
  ecq::frequency_table_info info2;
  ECQ_FUZZ_CHECK(ecq::read_frequency_table(data, size, tight.data(), info.alphabet_size, &info2) == ecq::status::ok);
  ECQ_FUZZ_CHECK(std::memcmp(tight.data(), freqs.data(), tight.size() * sizeof(std::uint32_t)) == 0);
  ECQ_FUZZ_CHECK(ecq::read_frequency_table(data, size, tight.data(), info.alphabet_size - 1, &info2) ==
                 ecq::status::output_too_small);
  return 0;
}
