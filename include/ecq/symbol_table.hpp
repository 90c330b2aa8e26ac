// ecq/symbol_table.hpp — READ ME FIRST
//
// Tables built once on the host from a normalised frequency table (see
// ecq/frequency_table.hpp) and then used by every encoder and decoder:
//
//   encode_table<Params>     symbol -> encode_symbol<Params> (division-free
//                            put, see ecq/rans_state.hpp).
//   decode_table<S, SymBits> slot in [0, 2^S) -> one packed entry holding
//                            (symbol, freq, slot - start).
//
// Packed decode entry, least significant bits first:
//     bits [0, S)               offset = slot - start(symbol)   (< freq)
//     bits [S, 2S)              freq - 1                        (freq <= 2^S)
//     bits [2S, 2S + SymBits)   symbol
// The entry is a std::uint32_t when 2S + SymBits <= 32 (e.g. S = 12 with
// 8-bit symbols, S = 11 with 10-bit symbols) and a std::uint64_t otherwise
// (alphabets of up to 4096 symbols at S = 12). A decode step is then
//     e = table[x & (M - 1)];  x = (freq(e)) * (x >> S) + offset(e);
//
// Building tables validates the frequencies (build_* return a status), so the
// table views handed to kernels may be trusted by the decoders' fast paths.
// decode_table_view is trivially copyable: copy the entries to device memory
// and pass a view holding the device pointer by value into a kernel.
#ifndef ECQ_SYMBOL_TABLE_HPP
#define ECQ_SYMBOL_TABLE_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "config.hpp"
#include "rans_state.hpp"
#include "status.hpp"

ECQ_NAMESPACE_BEGIN

/// Checks that `freqs[0..alphabet_size)` is a normalised table for ScaleBits:
/// the sum is exactly 2^scale_bits and no entry exceeds it.
/// @return status::ok, status::invalid_argument (alphabet_size == 0 or over
///         max_alphabet_size), or status::corrupt_table.
ECQ_HOST_DEVICE constexpr status validate_frequencies(const std::uint32_t* freqs, std::uint32_t alphabet_size,
                                                      int scale_bits, std::uint32_t max_alphabet_size = 4096) {
  if (alphabet_size == 0 || alphabet_size > max_alphabet_size || scale_bits < 1 || scale_bits > 16)
    return status::invalid_argument;
  const std::uint64_t total = std::uint64_t(1) << scale_bits;
  std::uint64_t sum = 0;
  for (std::uint32_t s = 0; s < alphabet_size; ++s) {
    if (freqs[s] > total) return status::corrupt_table;
    sum += freqs[s];
  }
  return sum == total ? status::ok : status::corrupt_table;
}

/// symbol -> encode_symbol. Symbols of frequency 0 are present with freq 0
/// and are rejected by the encoders.
template <class Params>
class encode_table {
 public:
  /// Builds from a validated table; @return status of validate_frequencies.
  status build(const std::uint32_t* freqs, std::uint32_t alphabet_size) {
    const status st = validate_frequencies(freqs, alphabet_size, Params::scale_bits);
    if (st != status::ok) return st;
    symbols_.resize(alphabet_size);
    std::uint32_t start = 0;
    for (std::uint32_t s = 0; s < alphabet_size; ++s) {
      symbols_[s] = encode_symbol<Params>::make(start, freqs[s]);
      start += freqs[s];
    }
    return status::ok;
  }

  const encode_symbol<Params>* data() const { return symbols_.data(); }
  std::uint32_t alphabet_size() const { return std::uint32_t(symbols_.size()); }
  const encode_symbol<Params>& operator[](std::uint32_t s) const { return symbols_[s]; }

 private:
  std::vector<encode_symbol<Params>> symbols_;
};

/// Field layout of one packed decode entry (see the file comment).
template <int ScaleBits, int SymbolBits>
struct decode_entry_layout {
  static_assert(ScaleBits >= 1 && ScaleBits <= 16, "ScaleBits must be in [1, 16]");
  static_assert(SymbolBits >= 1 && SymbolBits <= 12, "SymbolBits must be in [1, 12]: alphabets of up to 4096 symbols");
  static_assert(SymbolBits <= ScaleBits, "an alphabet of 2^SymbolBits symbols needs at least as many slots");

  static constexpr int scale_bits = ScaleBits;
  static constexpr int symbol_bits = SymbolBits;
  using entry_type = std::conditional_t<2 * ScaleBits + SymbolBits <= 32, std::uint32_t, std::uint64_t>;
  using symbol_type = std::conditional_t<SymbolBits <= 8, std::uint8_t, std::uint16_t>;
  static constexpr std::uint32_t field_mask = (std::uint32_t(1) << ScaleBits) - 1;

  ECQ_HOST_DEVICE static constexpr entry_type pack(std::uint32_t symbol, std::uint32_t freq, std::uint32_t offset) {
    return entry_type(offset) | (entry_type(freq - 1) << ScaleBits) | (entry_type(symbol) << (2 * ScaleBits));
  }
  ECQ_HOST_DEVICE static constexpr std::uint32_t symbol(entry_type e) { return std::uint32_t(e >> (2 * ScaleBits)); }
  ECQ_HOST_DEVICE static constexpr std::uint32_t freq(entry_type e) {
    return (std::uint32_t(e >> ScaleBits) & field_mask) + 1;
  }
  ECQ_HOST_DEVICE static constexpr std::uint32_t offset(entry_type e) { return std::uint32_t(e) & field_mask; }
};

/// Non-owning, trivially copyable view of 2^ScaleBits packed decode entries;
/// valid in host or device code depending on where `entries` points.
template <int ScaleBits, int SymbolBits>
struct decode_table_view {
  using layout = decode_entry_layout<ScaleBits, SymbolBits>;
  using entry_type = typename layout::entry_type;
  using symbol_type = typename layout::symbol_type;
  static constexpr int scale_bits = ScaleBits;
  static constexpr int symbol_bits = SymbolBits;
  static constexpr std::size_t size = std::size_t(1) << ScaleBits;

  const entry_type* entries;

  ECQ_HOST_DEVICE ECQ_FORCEINLINE entry_type operator[](std::uint32_t slot) const { return entries[slot]; }
};

/// Owning host-side decode table.
template <int ScaleBits, int SymbolBits>
class decode_table {
 public:
  using view_type = decode_table_view<ScaleBits, SymbolBits>;
  using layout = typename view_type::layout;
  using entry_type = typename view_type::entry_type;

  /// Fills the 2^ScaleBits slots from `freqs`.
  /// @return status::ok, status::invalid_argument (alphabet larger than
  ///         2^SymbolBits), or status::corrupt_table (sum != 2^ScaleBits).
  status build(const std::uint32_t* freqs, std::uint32_t alphabet_size) {
    const status st = validate_frequencies(freqs, alphabet_size, ScaleBits, std::uint32_t(1) << SymbolBits);
    if (st != status::ok) return st;
    entries_.resize(view_type::size);
    std::uint32_t slot = 0;
    for (std::uint32_t s = 0; s < alphabet_size; ++s)
      for (std::uint32_t k = 0; k < freqs[s]; ++k) entries_[slot++] = layout::pack(s, freqs[s], k);
    return status::ok;
  }

  view_type view() const { return view_type{entries_.data()}; }
  const entry_type* data() const { return entries_.data(); }
  std::size_t size_bytes() const { return entries_.size() * sizeof(entry_type); }

 private:
  std::vector<entry_type> entries_;
};

ECQ_NAMESPACE_END

#endif  // ECQ_SYMBOL_TABLE_HPP
