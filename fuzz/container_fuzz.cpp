// Fuzz target (a): arbitrary bytes as a container (ecq/container.hpp).
//
// Input: arbitrary bytes, opened as one encoded tensor. Properties checked:
//   * open never reads outside the input and returns a status; with the
//     checksum verified it accepts nothing that it rejects unverified;
//   * an opened container's byte accounting adds up and every block view
//     lies inside the container;
//   * for tensors small enough to decode quickly (a fuzz input must run in
//     milliseconds): the checked decoder never reads outside a block or writes
//     outside the output (AddressSanitizer), and when it accepts the streams,
//     every symbol is in the alphabet, the fast decoder agrees, and
//     re-encoding the symbols with the container's own parameters reproduces
//     the container byte for byte (rANS streams are canonical).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include <ecq/container.hpp>

#include "fuzz_check.hpp"
#include "support/ecq_test_support.hpp"

namespace {

// Decoding work per input is bounded by the coded symbol count, padding
// included, which the header can make as large as 2^56: skip big ones.
constexpr std::uint64_t max_fuzz_symbols = std::uint64_t(1) << 18;

void check_reencode(const ecq::encoded_tensor& t, const std::vector<std::uint16_t>& symbols) {
  const ecq::tensor_geometry& g = t.geometry();
  const std::vector<std::uint32_t>& freqs = t.frequencies();
  // The encoder pads with the (first) most frequent symbol of a given table.
  std::uint32_t pad = 0;
  for (std::uint32_t s = 1; s < freqs.size(); ++s)
    if (freqs[s] > freqs[pad]) pad = s;
  if (pad != g.pad_symbol) return;

  const ecq::encoded_tensor_view v = t.view();
  ecq::tensor_description d;
  d.rows = g.rows;
  d.cols = g.cols;
  d.symbols_per_row = g.symbols_per_row;
  d.alphabet_size = g.alphabet_size;
  d.scheme_id = g.scheme_id;
  d.scheme_params.assign(t.scheme_params(), t.scheme_params() + t.scheme_params_size());
  for (std::uint32_t i = 0; i < v.num_sections; ++i)
    d.sections.push_back({v.sections[i].tag, v.sections[i].item_size, v.section_data(v.sections[i]), v.sections[i].size});
  ecq::coding_options o;
  o.scale_bits = int(g.scale_bits);
  o.lanes = g.lanes;
  o.tile_rows = g.tile_rows;
  o.chunk_symbols = g.chunk_symbols;
  o.frequencies = freqs.data();
  ecq::encoded_tensor again;
  ECQ_FUZZ_CHECK(ecq_test::encode(symbols.data(), d, o, &again) == ecq::status::ok);
  ECQ_FUZZ_CHECK(again.size() == t.size());
  ECQ_FUZZ_CHECK(std::memcmp(again.data(), t.data(), t.size() - ecq::container_checksum_size) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ecq::encoded_tensor t;
  const ecq::status st = ecq::encoded_tensor::open(data, size, &t, ecq::open_options{false});
  ecq::encoded_tensor verified;
  const ecq::status st_verified = ecq::encoded_tensor::open(data, size, &verified);
  ECQ_FUZZ_CHECK(st_verified != ecq::status::ok || st == ecq::status::ok);
  if (st != ecq::status::ok) {
    ECQ_FUZZ_CHECK(t.data() == nullptr);
    return 0;
  }

  const ecq::tensor_geometry& g = t.geometry();
  const ecq::container_overhead ov = t.overhead();
  ECQ_FUZZ_CHECK(ov.container_bytes == size);
  ECQ_FUZZ_CHECK(ov.header_bytes + ov.table_bytes + ov.directory_bytes + ov.index_bytes + ov.section_bytes +
                     ov.state_bytes + ov.word_bytes + ov.block_padding_bytes + ov.checksum_bytes ==
                 ov.container_bytes);
  const ecq::encoded_tensor_view v = t.view();
  for (std::uint64_t tile = 0; tile < g.num_tiles(); ++tile)
    for (std::uint64_t chunk = 0; chunk < g.num_chunks(); ++chunk) {
      const ecq::block_view b = v.block(tile, chunk);
      ECQ_FUZZ_CHECK(b.data >= t.data() && b.size_bytes <= std::uint64_t(t.data() + t.size() - b.data));
      ECQ_FUZZ_CHECK(reinterpret_cast<std::uintptr_t>(b.data) % ecq::container_alignment == 0);
    }

  if (ov.coded_symbols > max_fuzz_symbols) return 0;
  std::vector<std::uint16_t> symbols(std::size_t(g.rows * g.symbols_per_row));
  if (ecq_test::decode_checked(t, symbols.data(), symbols.size()) != ecq::status::ok) return 0;
  for (std::uint16_t s : symbols) ECQ_FUZZ_CHECK(s < g.alphabet_size);
  std::vector<std::uint16_t> fast(symbols.size());
  ecq_test::decode(t, fast.data());
  ECQ_FUZZ_CHECK(fast == symbols);
  check_reencode(t, symbols);
  return 0;
}
