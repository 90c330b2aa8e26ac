// Fuzz target (b): round trip of arbitrary symbols under arbitrary frequency
// tables through the container (ecq/container.hpp).
//
// Input layout (missing bytes read as 0):
//   byte 0   ScaleBits = 10 + b % 6
//   byte 1   lanes = {1, 8, 16, 32, 64}[b % 5]
//   byte 2   tile_rows = lanes * (1 + b % 4)
//   byte 3   rows = 1 + b % 80
//   byte 4   symbols_per_row = 1 + b % 96
//   byte 5   chunk_symbols = 1 + b % symbols_per_row, or the whole row when b >= 128
//   bytes 6-7  alphabet size = 1 + (little-endian value) % min(4096, 2^min(12, ScaleBits))
//   then one byte per symbol of the alphabet: its count (so any subset of
//   present symbols and any skew), normalised to a table (the frequency
//   normaliser is part of what is tested);
//   then the symbols, one byte each (two bytes each for alphabets over 256),
//   mapped onto the present symbols; the input is reused cyclically.
// Property: encoding with that table succeeds, the container opens with its
// checksum verified, and both decoders return exactly the input symbols.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <ecq/container.hpp>
#include <ecq/frequency_table.hpp>

#include "fuzz_check.hpp"
#include "support/ecq_test_support.hpp"

namespace {

struct input_reader {
  const std::uint8_t* data;
  std::size_t size;
  std::size_t pos = 0;
  std::uint32_t byte() { return pos < size ? data[pos++] : 0; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  input_reader in{data, size};
  const int scale_bits = 10 + int(in.byte() % 6);
  static constexpr std::uint32_t lane_choices[5] = {1, 8, 16, 32, 64};
  const std::uint32_t lanes = lane_choices[in.byte() % 5];
  const std::uint32_t tile_rows = lanes * (1 + in.byte() % 4);
  const std::uint64_t rows = 1 + in.byte() % 80;
  const std::uint64_t symbols_per_row = 1 + in.byte() % 96;
  const std::uint32_t chunk_byte = in.byte();
  const std::uint64_t chunk = chunk_byte >= 128 ? 0 : 1 + chunk_byte % symbols_per_row;
  const std::uint32_t alphabet_limit = std::uint32_t(1) << ecq::decode_symbol_bits(scale_bits);
  const std::uint32_t alphabet_low = in.byte();
  const std::uint32_t alphabet = 1 + (alphabet_low | (in.byte() << 8)) % alphabet_limit;

  std::vector<std::uint64_t> counts(alphabet);
  for (auto& c : counts) c = in.byte();
  std::vector<std::uint32_t> freqs(alphabet);
  const ecq::status norm = ecq::normalize_frequencies(counts.data(), alphabet, scale_bits, freqs.data());
  ECQ_FUZZ_CHECK(norm == ecq::status::ok || norm == ecq::status::too_many_symbols);
  if (norm != ecq::status::ok) return 0;
  std::vector<std::uint16_t> present;
  for (std::uint32_t s = 0; s < alphabet; ++s)
    if (freqs[s] != 0) present.push_back(std::uint16_t(s));
  ECQ_FUZZ_CHECK(!present.empty());

  const std::size_t symbol_start = in.pos;
  std::vector<std::uint16_t> symbols(std::size_t(rows * symbols_per_row));
  for (auto& s : symbols) {
    if (in.pos >= size) in.pos = symbol_start < size ? symbol_start : size;
    std::uint32_t v = in.byte();
    if (alphabet > 256) v |= in.byte() << 8;
    s = present[v % present.size()];
  }

  ecq::tensor_description d;
  d.rows = rows;
  d.cols = symbols_per_row;
  d.symbols_per_row = symbols_per_row;
  d.alphabet_size = alphabet;
  ecq::coding_options o;
  o.scale_bits = scale_bits;
  o.lanes = lanes;
  o.tile_rows = tile_rows;
  o.chunk_symbols = chunk;
  o.frequencies = freqs.data();
  ecq::encoded_tensor t;
  ECQ_FUZZ_CHECK(ecq_test::encode(symbols.data(), d, o, &t) == ecq::status::ok);
  ecq::encoded_tensor opened;
  ECQ_FUZZ_CHECK(ecq::encoded_tensor::open(t.data(), t.size(), &opened) == ecq::status::ok);
  std::vector<std::uint16_t> out(symbols.size());
  ECQ_FUZZ_CHECK(ecq_test::decode_checked(opened, out.data(), out.size()) == ecq::status::ok);
  ECQ_FUZZ_CHECK(out == symbols);
  std::vector<std::uint16_t> fast(symbols.size());
  ecq_test::decode(opened, fast.data());
  ECQ_FUZZ_CHECK(fast == symbols);
  return 0;
}
