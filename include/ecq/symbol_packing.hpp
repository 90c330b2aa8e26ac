// ecq/symbol_packing.hpp — READ ME FIRST
//
// Multi-weight symbols. One rANS step per 4-bit weight is too slow for fused
// GPU kernels (about 0.7e12 steps/s on an H100 against the 5-6e12 weights/s a
// memory-bound 4-bit GEMV consumes), so several small codes are coded as one
// symbol. symbol_packing<CodeBits, CodesPerSymbol, RawBits> maps
// CodesPerSymbol consecutive codes of CodeBits bits each to
//   * one entropy-coded symbol made of the high CodeBits - RawBits bits of
//     every code, code j in bits [j * h, (j + 1) * h) with h = CodeBits - RawBits;
//   * a raw field of the low RawBits bits of every code, code j in bits
//     [j * RawBits, (j + 1) * RawBits), stored uncoded in a bit plane.
// Examples: <4, 2, 0> codes two nibbles as one 8-bit symbol (alphabet 256);
// <4, 3, 1> codes the high 3 bits of three nibbles as a 9-bit symbol and keeps
// 3 low bits raw.
//
// The raw plane is an array of std::uint32_t words, least significant bit
// first: the raw field of symbol i occupies bits [i * R, (i + 1) * R) with
// R = CodesPerSymbol * RawBits, which must be 0 or a power of two <= 32 so a
// field never straddles two words (one load and one shift in a kernel).
// A trailing partial group of codes is padded with zero codes.
#ifndef ECQ_SYMBOL_PACKING_HPP
#define ECQ_SYMBOL_PACKING_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "config.hpp"

ECQ_NAMESPACE_BEGIN

template <int CodeBits, int CodesPerSymbol, int RawBits = 0>
struct symbol_packing {
  static_assert(CodeBits >= 1 && CodeBits <= 8, "CodeBits must be in [1, 8]");
  static_assert(CodesPerSymbol >= 1, "CodesPerSymbol must be at least 1");
  static_assert(RawBits >= 0 && RawBits < CodeBits, "RawBits must be in [0, CodeBits): at least one bit is coded");
  static constexpr int code_bits = CodeBits;
  static constexpr int codes_per_symbol = CodesPerSymbol;
  static constexpr int raw_bits = RawBits;
  static constexpr int high_bits = CodeBits - RawBits;  // bits of each code inside the symbol
  static constexpr int symbol_bits = high_bits * CodesPerSymbol;
  static constexpr int raw_bits_per_symbol = RawBits * CodesPerSymbol;
  static_assert(symbol_bits <= 12, "a packed symbol must fit a 4096-symbol alphabet");
  static_assert(raw_bits_per_symbol == 0 ||
                    (raw_bits_per_symbol <= 32 && (raw_bits_per_symbol & (raw_bits_per_symbol - 1)) == 0),
                "CodesPerSymbol * RawBits must be 0 or a power of two <= 32");

  static constexpr std::uint32_t alphabet_size = std::uint32_t(1) << symbol_bits;
  using symbol_type = std::conditional_t<symbol_bits <= 8, std::uint8_t, std::uint16_t>;
  static constexpr std::uint32_t high_mask = (std::uint32_t(1) << high_bits) - 1;
  static constexpr std::uint32_t raw_code_mask = (std::uint32_t(1) << RawBits) - 1;
  static constexpr std::uint32_t raw_field_mask =
      raw_bits_per_symbol == 32 ? 0xffffffffu : (std::uint32_t(1) << raw_bits_per_symbol) - 1;

  /// @return the number of symbols that carry n codes.
  ECQ_HOST_DEVICE static constexpr std::size_t symbol_count(std::size_t n) {
    return (n + CodesPerSymbol - 1) / CodesPerSymbol;
  }
  /// @return the number of 32-bit words of the raw plane for n codes.
  ECQ_HOST_DEVICE static constexpr std::size_t raw_plane_words(std::size_t n) {
    return (symbol_count(n) * std::size_t(raw_bits_per_symbol) + 31) / 32;
  }

  /// The symbol of codes[0..count), count <= CodesPerSymbol (missing codes are 0).
  ECQ_HOST_DEVICE static constexpr std::uint32_t symbol_of(const std::uint8_t* codes, int count = CodesPerSymbol) {
    std::uint32_t s = 0;
    for (int j = 0; j < count; ++j) s |= (std::uint32_t(codes[j] >> RawBits) & high_mask) << (j * high_bits);
    return s;
  }
  /// The raw field of codes[0..count).
  ECQ_HOST_DEVICE static constexpr std::uint32_t raw_of(const std::uint8_t* codes, int count = CodesPerSymbol) {
    std::uint32_t r = 0;
    for (int j = 0; j < count; ++j) r |= (std::uint32_t(codes[j]) & raw_code_mask) << (j * RawBits);
    return r;
  }
  /// Code j of the group given by its symbol and raw field.
  ECQ_HOST_DEVICE ECQ_FORCEINLINE static constexpr std::uint32_t code(std::uint32_t symbol, std::uint32_t raw, int j) {
    return (((symbol >> (j * high_bits)) & high_mask) << RawBits) | ((raw >> (j * RawBits)) & raw_code_mask);
  }
  /// The raw field of symbol `index` in a raw plane (0 when RawBits == 0).
  ECQ_HOST_DEVICE ECQ_FORCEINLINE static std::uint32_t raw_field(const std::uint32_t* raw_plane, std::size_t index) {
    if constexpr (raw_bits_per_symbol == 0) {
      (void)raw_plane;
      (void)index;
      return 0;
    } else {
      const std::size_t bit = index * std::size_t(raw_bits_per_symbol);
      return (raw_plane[bit / 32] >> (bit % 32)) & raw_field_mask;
    }
  }

  /// Splits codes[0..n) into symbols[0..symbol_count(n)) and the raw plane
  /// raw_plane[0..raw_plane_words(n)) (fully overwritten). Codes must be
  /// < 2^CodeBits; extra high bits are ignored.
  template <class Symbol>
  ECQ_HOST_DEVICE static void pack(const std::uint8_t* codes, std::size_t n, Symbol* symbols, std::uint32_t* raw_plane) {
    for (std::size_t w = 0; w < raw_plane_words(n); ++w) raw_plane[w] = 0;
    const std::size_t groups = symbol_count(n);
    for (std::size_t g = 0; g < groups; ++g) {
      const std::size_t first = g * CodesPerSymbol;
      const int count = n - first < std::size_t(CodesPerSymbol) ? int(n - first) : CodesPerSymbol;
      symbols[g] = Symbol(symbol_of(codes + first, count));
      if constexpr (raw_bits_per_symbol != 0) {
        const std::size_t bit = g * std::size_t(raw_bits_per_symbol);
        raw_plane[bit / 32] |= raw_of(codes + first, count) << (bit % 32);
      }
    }
  }

  /// Exact inverse of pack: rebuilds codes[0..n).
  template <class Symbol>
  ECQ_HOST_DEVICE static void unpack(const Symbol* symbols, const std::uint32_t* raw_plane, std::size_t n,
                                     std::uint8_t* codes) {
    for (std::size_t i = 0; i < n; ++i) {
      const std::size_t g = i / CodesPerSymbol;
      codes[i] = std::uint8_t(code(std::uint32_t(symbols[g]), raw_field(raw_plane, g), int(i % CodesPerSymbol)));
    }
  }
};

ECQ_NAMESPACE_END

#endif  // ECQ_SYMBOL_PACKING_HPP
