// ecq/schemes/float16.hpp — READ ME FIRST
//
// Lossless 16-bit floats: the part of each weight that carries little
// information is entropy coded and the rest is kept raw, so decoding gives
// back the identical bit pattern.
//
//   bf16 (scheme_kind::bf16): symbol = the 8 exponent bits (alphabet 256);
//        raw byte = sign << 7 | the 7 mantissa bits. Trained weights use a
//        few exponents (about 2.6 bits of entropy on real transformers), so
//        a weight costs about 8 + 2.6 bits instead of 16.
//   f16  (scheme_kind::f16): symbol = the 5 exponent bits and the top 3
//        mantissa bits (alphabet 256); raw byte = sign << 7 | the low 7
//        mantissa bits. (Raw fields must be a power of two wide, so three
//        near-uniform mantissa bits join the coded symbol; coding them costs
//        what storing them does.)
//
// One weight per symbol, 8 raw bits per symbol in the raw plane (see
// ecq/schemes/quantized_tensor.hpp). No other side data, no parameters.
//
// Inputs: 16-bit patterns are coded as they are (float16_encode); float32
// weights are first rounded to the format, to nearest with ties to even
// (float16_quantize), the same rounding as torch's .to(bfloat16) and MLX.
#ifndef ECQ_SCHEMES_FLOAT16_HPP
#define ECQ_SCHEMES_FLOAT16_HPP

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../config.hpp"
#include "../status.hpp"
#include "dequantizer.hpp"
#include "float_formats.hpp"
#include "quantized_tensor.hpp"

ECQ_NAMESPACE_BEGIN

/// Where the bits of a 16-bit pattern go. Both formats split the same bit
/// positions: bits 14..7 are bf16's exponent, and binary16's 5 exponent bits
/// with its top 3 mantissa bits; only their meaning differs.
struct float16_split {
  /// @return the coded symbol of pattern h.
  ECQ_HOST_DEVICE static constexpr std::uint32_t symbol(std::uint16_t h) { return (h >> 7) & 0xffu; }
  /// @return the raw byte of pattern h.
  ECQ_HOST_DEVICE static constexpr std::uint32_t raw(std::uint16_t h) { return ((h >> 8) & 0x80u) | (h & 0x7fu); }
  /// @return the pattern of a symbol and its raw byte.
  ECQ_HOST_DEVICE static constexpr std::uint16_t join(std::uint32_t symbol, std::uint32_t raw) {
    return std::uint16_t(((raw & 0x80u) << 8) | ((symbol & 0xffu) << 7) | (raw & 0x7fu));
  }
};

/// Dequantiser (see ecq/schemes/dequantizer.hpp). bits() gives the exact
/// 16-bit pattern, operator() its float value (exact).
template <float16_format Format>
struct float16_dequantizer {
  using value_type = float;
  static constexpr int weights_per_symbol = 1;
  static constexpr float16_format format = Format;

  const std::uint32_t* raw_plane;  // one byte per symbol
  std::uint64_t symbols_per_row;

  ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint16_t bits(std::uint64_t row, std::uint64_t column,
                                                     std::uint32_t symbol) const {
    const std::uint64_t i = row * symbols_per_row + column;
    const std::uint32_t raw = (raw_plane[i / 4] >> (8 * (i % 4))) & 0xffu;
    return float16_split::join(symbol, raw);
  }
  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::uint64_t row, std::uint64_t column, std::uint32_t symbol,
                                                  float* w) const {
    const std::uint16_t h = bits(row, column, symbol);
    w[0] = Format == float16_format::bfloat16 ? bf16_to_float(h) : f16_to_float(h);
  }
};

/// @return the scheme_kind of a format.
inline scheme_kind float16_kind(float16_format f) {
  return f == float16_format::bfloat16 ? scheme_kind::bf16 : scheme_kind::f16;
}

/// Builds a float16_dequantizer over checked side data: symbols_per_row must
/// equal cols and the raw plane hold one byte per symbol (rounded up to
/// whole words).
/// @return status::ok or status::bad_shape.
template <float16_format Format, class Lookup>
status make_float16_dequantizer(const Lookup& lookup, const dequant_geometry& g, float16_dequantizer<Format>* out) {
  if (g.symbols_per_row != g.cols || g.alphabet_size > 256) return status::bad_shape;
  const side_span s = lookup(section_tag::raw_plane);
  if (s.size != (g.rows * g.cols + 3) / 4 * 4) return status::bad_shape;
  out->raw_plane = reinterpret_cast<const std::uint32_t*>(s.data);
  out->symbols_per_row = g.symbols_per_row;
  return status::ok;
}

/// Codes 16-bit patterns h[0 .. rows * cols) of `format` losslessly into q.
inline void float16_encode(const std::uint16_t* h, std::uint64_t rows, std::uint64_t cols, float16_format format,
                           quantized_tensor* q) {
  *q = quantized_tensor{};
  q->kind = float16_kind(format);
  q->rows = rows;
  q->cols = cols;
  q->weights_per_symbol = 1;
  q->raw_bits_per_symbol = 8;
  q->symbols_per_row = cols;
  q->alphabet_size = 256;
  const std::size_t n = std::size_t(rows * cols);
  q->symbols.resize(n);
  q->raw_plane.assign((n + 3) / 4, 0);
  for (std::size_t i = 0; i < n; ++i) {
    q->symbols[i] = std::uint16_t(float16_split::symbol(h[i]));
    q->raw_plane[i / 4] |= float16_split::raw(h[i]) << (8 * (i % 4));
  }
  q->sections.push_back(detail::u32_section(section_tag::raw_plane, q->raw_plane));
}

/// Rounds float weights w[0 .. rows * cols) to `format` (nearest, ties to
/// even) and codes them with float16_encode; `rounded`, if not null,
/// receives the 16-bit patterns.
inline void float16_quantize(const float* w, std::uint64_t rows, std::uint64_t cols, float16_format format,
                             quantized_tensor* q, std::vector<std::uint16_t>* rounded = nullptr) {
  std::vector<std::uint16_t> h(std::size_t(rows * cols));
  for (std::size_t i = 0; i < h.size(); ++i) h[i] = float_to_float16(w[i], format);
  float16_encode(h.data(), rows, cols, format, q);
  if (rounded != nullptr) *rounded = std::move(h);
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_FLOAT16_HPP
