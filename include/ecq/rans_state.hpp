// ecq/rans_state.hpp — READ ME FIRST
//
// One rANS state and the five operations on it: init, put (encode one
// symbol), get (find the slot of the next symbol), advance (consume it) and
// renormalise; plus the flush layout of a final state. Interleaving several
// states over one word stream is ecq/interleaved_rans.hpp; tables live in
// ecq/symbol_table.hpp.
//
// Parameters are compile-time: rans_params<State, Word, ScaleBits>.
//   State     std::uint32_t or std::uint64_t: the coder state x.
//   Word      std::uint8_t, std::uint16_t or std::uint32_t: the unit that
//             renormalisation moves between the state and the stream.
//   ScaleBits frequencies sum to M = 2^ScaleBits.
//
// Invariants (the non-obvious rules, in the spirit of ryg_rans):
//   * Between symbols every state lies in [L, U) with
//       U = 2^(StateBits - 1)       (the top bit of the state is always 0)
//       L = U >> WordBits.
//     Keeping the top bit free makes the encoder's fixed-point reciprocal
//     exact for every reachable x (Alverson, "Integer division using
//     reciprocals", needs x < 2^(StateBits-1) for a StateBits-wide
//     multiplier) and lets the renormalisation bound be computed without
//     overflow, even for a symbol of frequency M.
//   * The encoder runs backwards (last symbol first) and its output grows
//     downwards; the decoder then reads forwards. Words of one state
//     renormalisation are emitted least significant first, so the decoder
//     shifts them in most significant first.
//   * The encoder starts every state at L; a decoder that consumed a valid
//     stream therefore ends with every state equal to L (a free integrity
//     check, used by the checked decoders).
//   * ScaleBits <= StateBits - 1 - WordBits, i.e. M <= L, so that a symbol of
//     frequency f keeps x >= f * L / M >= 1 after decoding.
//   * A renormalisation moves at most ceil(ScaleBits / WordBits) words: one
//     whenever ScaleBits <= WordBits.
#ifndef ECQ_RANS_STATE_HPP
#define ECQ_RANS_STATE_HPP

#include <cstdint>
#include <type_traits>

#include "config.hpp"

#if defined(_MSC_VER) && !defined(__clang__) && !ECQ_IS_CUDA_COMPILER()
#include <intrin.h>
#endif

ECQ_NAMESPACE_BEGIN

template <class State, class Word, int ScaleBits>
struct rans_params {
  static_assert(std::is_same<State, std::uint32_t>::value || std::is_same<State, std::uint64_t>::value,
                "State must be std::uint32_t or std::uint64_t");
  static_assert(std::is_same<Word, std::uint8_t>::value || std::is_same<Word, std::uint16_t>::value ||
                    std::is_same<Word, std::uint32_t>::value,
                "Word must be std::uint8_t, std::uint16_t or std::uint32_t");
  static_assert(sizeof(Word) < sizeof(State), "Word must be narrower than State (32-bit words need 64-bit states)");
  static_assert(ScaleBits >= 1 && ScaleBits <= 16, "ScaleBits must be in [1, 16]: decode tables have 2^ScaleBits slots");
  static_assert(ScaleBits <= 8 * int(sizeof(State)) - 1 - 8 * int(sizeof(Word)),
                "ScaleBits must be <= StateBits - 1 - WordBits so that M <= L");

  using state_type = State;
  using word_type = Word;

  static constexpr int state_bits = 8 * int(sizeof(State));
  static constexpr int word_bits = 8 * int(sizeof(Word));
  static constexpr int scale_bits = ScaleBits;
  static constexpr std::uint32_t total_frequency = std::uint32_t(1) << ScaleBits;  // M
  static constexpr std::uint32_t slot_mask = total_frequency - 1;
  static constexpr State upper_bound = State(1) << (state_bits - 1);        // U (exclusive)
  static constexpr State lower_bound = upper_bound >> word_bits;             // L
  static constexpr State word_mask = (State(1) << word_bits) - 1;
  /// A state is flushed as this many words, least significant first.
  static constexpr int words_per_state = state_bits / word_bits;
  /// After decoding, x >= L >> ScaleBits, so at most this many words refill it.
  static constexpr int max_words_per_symbol = (ScaleBits + word_bits - 1) / word_bits;
  /// x >= f << renorm_shift is the encoder's "emit a word first" condition.
  static constexpr int renorm_shift = state_bits - 1 - ScaleBits;
};

/// The configurations the library documents and tests.
template <int ScaleBits> using rans32x8 = rans_params<std::uint32_t, std::uint8_t, ScaleBits>;
template <int ScaleBits> using rans32x16 = rans_params<std::uint32_t, std::uint16_t, ScaleBits>;
template <int ScaleBits> using rans64x16 = rans_params<std::uint64_t, std::uint16_t, ScaleBits>;
template <int ScaleBits> using rans64x32 = rans_params<std::uint64_t, std::uint32_t, ScaleBits>;

namespace detail {

/// High half of the product of two 32- or 64-bit unsigned integers.
ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint32_t mul_high(std::uint32_t a, std::uint32_t b) {
  return std::uint32_t((std::uint64_t(a) * b) >> 32);
}

ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint64_t mul_high(std::uint64_t a, std::uint64_t b) {
#if ECQ_IS_DEVICE_CODE()
  return __umul64hi(a, b);
#elif defined(_MSC_VER) && !defined(__clang__)
  return __umulh(a, b);
#else
  __extension__ typedef unsigned __int128 u128;
  return std::uint64_t((u128(a) * b) >> 64);
#endif
}

/// ceil(2^exponent / divisor) by long division, for results that fit in T
/// although 2^exponent does not. Runs only while building tables.
template <class T>
ECQ_HOST_DEVICE constexpr T ceil_pow2_div(int exponent, std::uint32_t divisor) {
  // Divide the binary numeral "1 followed by `exponent` zeros", digit by digit.
  T quotient = T(1 / divisor);
  std::uint64_t remainder = 1 % divisor;
  for (int i = 0; i < exponent; ++i) {
    remainder <<= 1;
    const bool digit = remainder >= divisor;
    quotient = T((quotient << 1) | T(digit));
    if (digit) remainder -= divisor;
  }
  return quotient + T(remainder != 0);
}

}  // namespace detail

/// Everything the encoder needs for one symbol, chosen so that put() has no
/// division: x / freq is computed as mul_high(x, rcp_freq) >> rcp_shift.
template <class Params>
struct encode_symbol {
  using state_type = typename Params::state_type;
  state_type rcp_freq;     // fixed-point reciprocal of freq (Alverson)
  std::uint32_t freq;      // 0 marks a symbol that cannot be encoded
  std::uint32_t bias;      // start, or start + M - 1 for freq == 1 (see make)
  std::uint32_t cmpl_freq; // M - freq
  std::uint32_t rcp_shift;

  /// Builds the entry for a symbol occupying slots [start, start + freq).
  /// Precondition: start + freq <= M. freq == 0 yields an unencodable entry.
  ECQ_HOST_DEVICE static constexpr encode_symbol make(std::uint32_t start, std::uint32_t freq) {
    constexpr int n = Params::state_bits - 1;  // reciprocal exact for x < 2^n
    encode_symbol e{};
    e.freq = freq;
    e.cmpl_freq = Params::total_frequency - freq;
    if (freq <= 1) {
      // The reciprocal of 1 is not representable below 1.0. With an all-ones
      // multiplier and no shift, mul_high(x, 2^B - 1) = x - 1 for 1 <= x < 2^B,
      // so x + bias + (x - 1) * (M - 1) = x * M + start when bias = start + M - 1.
      e.rcp_freq = ~state_type(0);
      e.rcp_shift = 0;
      e.bias = start + Params::total_frequency - 1;
    } else {
      std::uint32_t shift = 0;  // ceil(log2(freq))
      while ((std::uint32_t(1) << shift) < freq) ++shift;
      // ceil(2^(n + shift) / freq) < 2^StateBits because freq > 2^(shift - 1).
      e.rcp_freq = detail::ceil_pow2_div<state_type>(n + int(shift), freq);
      e.rcp_shift = shift - 1;
      e.bias = start;
    }
    return e;
  }
};

/// @return the initial state of an encoder (and the final state of a decoder).
template <class Params>
ECQ_HOST_DEVICE constexpr typename Params::state_type rans_init() {
  return Params::lower_bound;
}

/// Encodes one symbol into `x`, first moving words out of x while it is too
/// large. Words go below `*p` (the stream grows downwards), least significant
/// first. Branch-free: each possible word is stored at (*p)[-1] and the pointer
/// moves only if the word was needed, so (*p)[-1] must be writable, which the
/// interleaved encoder guarantees by reserving the flushed states below.
/// Precondition: e.freq > 0, x in [L, U).
template <class Params>
ECQ_HOST_DEVICE ECQ_FORCEINLINE typename Params::state_type rans_put(typename Params::state_type x,
                                                                     const encode_symbol<Params>& e,
                                                                     typename Params::word_type** p) {
  using word_type = typename Params::word_type;
  ECQ_PRAGMA_UNROLL
  for (int k = 0; k < Params::max_words_per_symbol; ++k) {
    const bool emit = (x >> Params::renorm_shift) >= e.freq;
    (*p)[-1] = word_type(x & Params::word_mask);
    *p -= emit;
    x = emit ? x >> Params::word_bits : x;
  }
  const auto q = detail::mul_high(x, e.rcp_freq) >> e.rcp_shift;
  return x + e.bias + q * e.cmpl_freq;
}

/// @return the slot in [0, M) that identifies the next symbol to decode.
template <class Params>
ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint32_t rans_get(typename Params::state_type x) {
  return std::uint32_t(x) & Params::slot_mask;
}

/// Removes the decoded symbol (frequency `freq`, slot - start == `offset`)
/// from x. The result is in [1, U) for any x in [L, U) and any table entry,
/// so corrupt input can never push the state out of range.
template <class Params>
ECQ_HOST_DEVICE ECQ_FORCEINLINE typename Params::state_type rans_advance(typename Params::state_type x,
                                                                         std::uint32_t freq, std::uint32_t offset) {
  return typename Params::state_type(freq) * (x >> Params::scale_bits) + offset;
}

/// Refills x from `read()` (returns the next word) until x >= L.
template <class Params, class Read>
ECQ_HOST_DEVICE ECQ_FORCEINLINE typename Params::state_type rans_renormalize(typename Params::state_type x,
                                                                             Read&& read) {
  if constexpr (Params::max_words_per_symbol == 1) {
    if (x < Params::lower_bound) x = (x << Params::word_bits) | read();
  } else {
    while (x < Params::lower_bound) x = (x << Params::word_bits) | read();
  }
  return x;
}

/// Emits a final state as Params::words_per_state words through `emit`, most
/// significant first, so that a downward-growing stream holds it least
/// significant word first (little-endian order when read forwards).
template <class Params, class Emit>
ECQ_HOST_DEVICE ECQ_FORCEINLINE void rans_flush(typename Params::state_type x, Emit&& emit) {
  using word_type = typename Params::word_type;
  for (int k = Params::words_per_state - 1; k >= 0; --k) emit(word_type((x >> (k * Params::word_bits)) & Params::word_mask));
}

/// Reads a state written by rans_flush from `words` (least significant first).
template <class Params>
ECQ_HOST_DEVICE ECQ_FORCEINLINE typename Params::state_type rans_load_state(const typename Params::word_type* words) {
  typename Params::state_type x = 0;
  for (int k = 0; k < Params::words_per_state; ++k) x |= typename Params::state_type(words[k]) << (k * Params::word_bits);
  return x;
}

/// @return whether x is a state a valid stream can hold between symbols.
template <class Params>
ECQ_HOST_DEVICE constexpr bool rans_state_in_range(typename Params::state_type x) {
  return x >= Params::lower_bound && x < Params::upper_bound;
}

ECQ_NAMESPACE_END

#endif  // ECQ_RANS_STATE_HPP
