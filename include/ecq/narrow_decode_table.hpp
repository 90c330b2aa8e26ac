// ecq/narrow_decode_table.hpp — READ ME FIRST
//
// A decode table whose entries are 32 bits whatever the alphabet, for
// decoders that keep the table in GPU shared memory (ecq/warp_decode.cuh).
// It decodes exactly the streams of ecq/interleaved_rans.hpp: only the
// in-memory table differs from ecq/symbol_table.hpp's, not the format.
//
// Entry layout, least significant byte first:
//     byte 0   payload bits [0, 8)
//     byte 1   offset = slot - start(symbol)          (< freq <= 255)
//     byte 2   payload bits [8, 16)
//     byte 3   freq                                    (1 .. 255)
// A decode step is then one multiply-add on byte fields:
//     e = table[x & (M - 1)];  x = byte3(e) * (x >> S) + byte1(e);
// and the 16-bit payload is whatever the kernel wants per symbol instead of
// the symbol itself (two bf16 exponents already in place, the high bits of
// four 4-bit codes spread for a tensor-core fragment, ...): the payload
// function is given when the table is built.
//
// The price: every frequency must be <= 255 (max_frequency), i.e. no symbol
// may have probability above 255 / 2^S. choose_narrow_scale_bits picks the
// largest S whose optimal normalised table satisfies this; a symbol more
// likely than 255/1024 (25%) has no narrow table at all (use the packed
// entries of ecq/symbol_table.hpp then).
//
// Which path is which: build_narrow_decode_table validates the frequencies
// (host); narrow_advance is the FAST PATH step and trusts the table.
#ifndef ECQ_NARROW_DECODE_TABLE_HPP
#define ECQ_NARROW_DECODE_TABLE_HPP

#include <cstdint>
#include <vector>

#include "config.hpp"
#include "frequency_table.hpp"
#include "status.hpp"
#include "symbol_table.hpp"

ECQ_NAMESPACE_BEGIN

/// Field access for one narrow entry (see the file comment).
struct narrow_entry {
  /// Frequencies must fit the 8-bit field; offsets are then < 255 too.
  static constexpr std::uint32_t max_frequency = 255;

  ECQ_HOST_DEVICE static constexpr std::uint32_t pack(std::uint32_t offset, std::uint32_t freq, std::uint32_t payload) {
    return (payload & 0xffu) | (offset << 8) | ((payload >> 8) << 16) | (freq << 24);
  }
  ECQ_HOST_DEVICE static constexpr std::uint32_t offset(std::uint32_t e) { return (e >> 8) & 0xffu; }
  ECQ_HOST_DEVICE static constexpr std::uint32_t freq(std::uint32_t e) { return e >> 24; }
  ECQ_HOST_DEVICE static constexpr std::uint32_t payload(std::uint32_t e) { return (e & 0xffu) | ((e >> 8) & 0xff00u); }
};

/// FAST PATH. Removes the symbol whose narrow entry is `e` from state `x`
/// (rans_advance of ecq/rans_state.hpp on narrow fields); the caller then
/// renormalises. Params must be a 32-bit-state configuration.
template <class Params>
ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint32_t narrow_advance(std::uint32_t x, std::uint32_t e) {
  static_assert(Params::state_bits == 32, "narrow entries serve 32-bit states");
#if ECQ_IS_DEVICE_CODE()
  // On a GPU the two shifts run as IMAD.HI on the FMA pipe, which the rest of
  // a decode round (LOP3, PRMT, ISETP) leaves idle, and byte 1 is one PRMT.
  const std::uint32_t freq = __umulhi(e, 256u);
  const std::uint32_t q = __umulhi(x, std::uint32_t(1) << (32 - Params::scale_bits));
  return freq * q + __byte_perm(e, 0u, 0x4441u);
#else
  return narrow_entry::freq(e) * (x >> Params::scale_bits) + narrow_entry::offset(e);
#endif
}

/// Builds the 2^scale_bits narrow entries for `freqs[0..alphabet_size)` into
/// `entries`, with payload_of(symbol) (a std::uint32_t below 2^16) as each
/// symbol's payload.
/// @return status::ok; status::invalid_argument or status::corrupt_table as
///         validate_frequencies; status::unsupported_parameters if a
///         frequency exceeds narrow_entry::max_frequency; status::invalid_argument
///         if a payload does not fit 16 bits. Nothing is written on error.
template <class PayloadOf>
status build_narrow_decode_table(const std::uint32_t* freqs, std::uint32_t alphabet_size, int scale_bits,
                                 PayloadOf&& payload_of, std::uint32_t* entries) {
  const status st = validate_frequencies(freqs, alphabet_size, scale_bits);
  if (st != status::ok) return st;
  for (std::uint32_t s = 0; s < alphabet_size; ++s) {
    if (freqs[s] > narrow_entry::max_frequency) return status::unsupported_parameters;
    if (freqs[s] != 0 && std::uint32_t(payload_of(s)) > 0xffffu) return status::invalid_argument;
  }
  std::uint32_t slot = 0;
  for (std::uint32_t s = 0; s < alphabet_size; ++s) {
    if (freqs[s] == 0) continue;
    const std::uint32_t payload = std::uint32_t(payload_of(s));
    for (std::uint32_t k = 0; k < freqs[s]; ++k) entries[slot++] = narrow_entry::pack(k, freqs[s], payload);
  }
  return status::ok;
}

/// Normalises `counts` for the largest ScaleBits in [min_scale_bits,
/// max_scale_bits] whose optimal table (normalize_frequencies) has every
/// frequency <= narrow_entry::max_frequency, and writes that table to
/// `freqs` (alphabet_size entries).
/// @return the ScaleBits chosen, or 0 if none qualifies (or normalisation
///         fails); freqs is then unspecified.
inline int choose_narrow_scale_bits(const std::uint64_t* counts, std::uint32_t alphabet_size, int min_scale_bits,
                                    int max_scale_bits, std::uint32_t* freqs) {
  for (int s = max_scale_bits; s >= min_scale_bits; --s) {
    if (normalize_frequencies(counts, alphabet_size, s, freqs) != status::ok) return 0;
    bool fits = true;
    for (std::uint32_t k = 0; k < alphabet_size && fits; ++k) fits = freqs[k] <= narrow_entry::max_frequency;
    if (fits) return s;
  }
  return 0;
}

/// Host convenience: the entries as a vector (empty on error, status in *st).
template <class PayloadOf>
std::vector<std::uint32_t> narrow_decode_table(const std::vector<std::uint32_t>& freqs, int scale_bits,
                                               PayloadOf&& payload_of, status* st = nullptr) {
  std::vector<std::uint32_t> entries(std::size_t(1) << scale_bits);
  const status s = build_narrow_decode_table(freqs.data(), std::uint32_t(freqs.size()), scale_bits,
                                             static_cast<PayloadOf&&>(payload_of), entries.data());
  if (s != status::ok) entries.clear();
  if (st != nullptr) *st = s;
  return entries;
}

ECQ_NAMESPACE_END

#endif  // ECQ_NARROW_DECODE_TABLE_HPP
