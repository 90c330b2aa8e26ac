// ecq/schemes/float32.hpp — READ ME FIRST
//
// Lossless float32 (scheme_kind::f32): decoding gives back the identical
// 32-bit pattern of every weight, NaN payloads, infinities, subnormals and
// negative zero included.
//
// A float32 is a bfloat16 (its upper 16 bits) followed by 16 more mantissa
// bits. The upper half is split as bf16 splits it (ecq/schemes/float16.hpp):
// symbol = the 8 exponent bits (alphabet 256, entropy coded: about 2.6
// bits on trained weights), raw byte = sign << 7 | the top 7 mantissa bits
// (raw plane, 8 bits per symbol). The low 16 mantissa bits are near-uniform
// on trained weights, so coding them would gain nothing; they are stored as
// they are, in their own section (low_halves: one little-endian u16 per
// weight, row-major), not in the raw plane: a raw plane holds 0 or a power
// of two bits per symbol, and 8 + 16 is neither, while 16-bit items in a
// section of their own stay directly addressable (item i = weight i).
//
// So a weight costs 24 raw bits + its exponent's code, about 26.6 bits
// instead of 32 on real transformer weights. One weight per symbol; no
// parameters.
#ifndef ECQ_SCHEMES_FLOAT32_HPP
#define ECQ_SCHEMES_FLOAT32_HPP

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../config.hpp"
#include "../status.hpp"
#include "dequantizer.hpp"
#include "float16.hpp"
#include "float_formats.hpp"
#include "quantized_tensor.hpp"

ECQ_NAMESPACE_BEGIN

/// Dequantiser (see ecq/schemes/dequantizer.hpp). bits() gives the exact
/// 32-bit pattern, operator() the float with that pattern.
struct float32_dequantizer {
  using value_type = float;
  static constexpr int weights_per_symbol = 1;

  const std::uint32_t* raw_plane;   // one byte per symbol: sign and the top 7 mantissa bits
  const std::uint16_t* low_halves;  // one u16 per symbol: the low 16 mantissa bits
  std::uint64_t symbols_per_row;

  ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint32_t bits(std::uint64_t row, std::uint64_t column,
                                                     std::uint32_t symbol) const {
    const std::uint64_t i = row * symbols_per_row + column;
    const std::uint32_t raw = (raw_plane[i / 4] >> (8 * (i % 4))) & 0xffu;
    return std::uint32_t(float16_split::join(symbol, raw)) << 16 | low_halves[i];
  }
  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::uint64_t row, std::uint64_t column, std::uint32_t symbol,
                                                  float* w) const {
    w[0] = bits_to_float(bits(row, column, symbol));
  }
};

/// Builds a float32_dequantizer over checked side data: symbols_per_row must
/// equal cols, the raw plane hold one byte per symbol (rounded up to whole
/// words) and low_halves two bytes per symbol.
/// @return status::ok or status::bad_shape.
template <class Lookup>
status make_float32_dequantizer(const Lookup& lookup, const dequant_geometry& g, float32_dequantizer* out) {
  if (g.symbols_per_row != g.cols || g.alphabet_size > 256) return status::bad_shape;
  const std::uint64_t n = g.rows * g.cols;
  const side_span plane = lookup(section_tag::raw_plane);
  const side_span low = lookup(section_tag::low_halves);
  if (plane.size != (n + 3) / 4 * 4 || low.size != 2 * n) return status::bad_shape;
  out->raw_plane = reinterpret_cast<const std::uint32_t*>(plane.data);
  out->low_halves = reinterpret_cast<const std::uint16_t*>(low.data);
  out->symbols_per_row = g.symbols_per_row;
  return status::ok;
}

/// Codes float32 bit patterns u[0 .. rows * cols) losslessly into q.
inline void float32_encode(const std::uint32_t* u, std::uint64_t rows, std::uint64_t cols, quantized_tensor* q) {
  *q = quantized_tensor{};
  q->kind = scheme_kind::f32;
  q->rows = rows;
  q->cols = cols;
  q->weights_per_symbol = 1;
  q->raw_bits_per_symbol = 8;
  q->symbols_per_row = cols;
  q->alphabet_size = 256;
  const std::size_t n = std::size_t(rows * cols);
  q->symbols.resize(n);
  q->raw_plane.assign((n + 3) / 4, 0);
  std::vector<std::uint16_t> low(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint16_t high = std::uint16_t(u[i] >> 16);
    q->symbols[i] = std::uint16_t(float16_split::symbol(high));
    q->raw_plane[i / 4] |= float16_split::raw(high) << (8 * (i % 4));
    low[i] = std::uint16_t(u[i]);
  }
  q->sections.push_back(detail::u32_section(section_tag::raw_plane, q->raw_plane));
  q->sections.push_back(detail::u16_section(section_tag::low_halves, low));
}

/// float32_encode of the bit patterns of float weights w[0 .. rows * cols).
inline void float32_quantize(const float* w, std::uint64_t rows, std::uint64_t cols, quantized_tensor* q) {
  std::vector<std::uint32_t> u(std::size_t(rows * cols));
  for (std::size_t i = 0; i < u.size(); ++i) u[i] = float_to_bits(w[i]);
  float32_encode(u.data(), rows, cols, q);
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_FLOAT32_HPP
