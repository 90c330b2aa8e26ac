// ecq/schemes/affine.hpp — READ ME FIRST
//
// Group-wise affine quantisation, in MLX's layout: b-bit codes q in
// [0, 2^b), groups of `group_size` consecutive weights along the last
// dimension, one scale and one bias per group, stored as 16-bit floats, and
//     w ~= scale * q + bias,   scale = (max - min) / (2^b - 1),  bias = min.
// Codes are entropy coded; scales and biases are side data at their stored
// width (32 bits per group: 0.5 bits/weight at group size 64).
//
// Quantiser (affine_quantize): per group, min and max, then scale and bias
// rounded to their 16-bit format first, and q = clamp(round((w - bias) /
// scale)) with the rounded values, so the codes are the nearest the stored
// side data can express. A constant group gets scale 0 and codes 0.
//
// Already-quantised weights (affine_from_codes): codes plus scale and bias
// bit patterns are taken as they are, so an MLX or GGUF-style tensor is
// re-encoded losslessly; unpack_* / pack_* convert between codes and the
// packed forms (nibbles two per byte; MLX's uint32 words of 32/b codes, least
// significant first) and pack(unpack(x)) == x bit for bit.
//
// Multi-weight symbols: codes_per_symbol codes per symbol with raw_bits low
// bits each kept raw (ecq/symbol_packing.hpp; the pairs visit_code_packing
// supports).
//
// Parameter block (8 bytes): byte 0 bits, 1 float16_format of scales and
// biases, 2 codes_per_symbol, 3 raw_bits, 4-7 group_size (uint32 LE).
// Sections: scales and biases (rows * groups_per_row 16-bit floats each,
// groups_per_row = ceil(cols / group_size)), raw_plane when raw_bits > 0.
#ifndef ECQ_SCHEMES_AFFINE_HPP
#define ECQ_SCHEMES_AFFINE_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../config.hpp"
#include "../status.hpp"
#include "dequantizer.hpp"
#include "float_formats.hpp"
#include "quantized_tensor.hpp"

ECQ_NAMESPACE_BEGIN

struct affine_params {
  int bits = 4;              // code width b, in [2, 8]
  std::uint32_t group_size = 64;  // a power of two in [2, 2^16]
  float16_format side_format = float16_format::binary16;
  int codes_per_symbol = 1;
  int raw_bits = 0;

  static constexpr std::size_t serialized_size = 8;

  /// @return whether the parameters are in range and the packing is supported.
  bool valid() const {
    if (bits < 2 || bits > 8 || group_size < 2 || group_size > (1u << 16) || (group_size & (group_size - 1)) != 0)
      return false;
    if (side_format != float16_format::binary16 && side_format != float16_format::bfloat16) return false;
    return visit_code_packing(bits, codes_per_symbol, raw_bits, [](auto) {});
  }
  void serialize(std::vector<std::uint8_t>* out) const {
    out->push_back(std::uint8_t(bits));
    out->push_back(std::uint8_t(side_format));
    out->push_back(std::uint8_t(codes_per_symbol));
    out->push_back(std::uint8_t(raw_bits));
    detail::append_u32(group_size, out);
  }
  /// Parses an untrusted parameter block.
  /// @return status::ok, or status::unsupported_parameters (wrong size or
  ///         values outside the ranges above).
  static status parse(const std::uint8_t* data, std::uint64_t size, affine_params* out) {
    if (size != serialized_size) return status::unsupported_parameters;
    affine_params p;
    p.bits = data[0];
    p.side_format = float16_format(data[1]);
    p.codes_per_symbol = data[2];
    p.raw_bits = data[3];
    p.group_size = detail::load_u32(data + 4);
    if (!p.valid()) return status::unsupported_parameters;
    *out = p;
    return status::ok;
  }
};

/// @return log2 of a power of two.
ECQ_HOST_DEVICE constexpr std::uint32_t log2_pow2(std::uint32_t x) {
  std::uint32_t s = 0;
  while ((std::uint32_t(1) << s) < x) ++s;
  return s;
}

/// Dequantiser (see ecq/schemes/dequantizer.hpp): w = scale * q + bias.
template <class Packing>
struct affine_dequantizer {
  using value_type = float;
  using packing = Packing;
  static constexpr int weights_per_symbol = Packing::codes_per_symbol;

  const std::uint16_t* scales;
  const std::uint16_t* biases;
  const std::uint32_t* raw_plane;  // null without raw bits
  std::uint64_t symbols_per_row;
  std::uint64_t groups_per_row;
  std::uint32_t group_shift;       // log2(group_size)
  float16_format format;

  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::uint64_t row, std::uint64_t column, std::uint32_t symbol,
                                                  float* w) const {
    const std::uint32_t raw = Packing::raw_field(raw_plane, std::size_t(row * symbols_per_row + column));
    const std::uint64_t row_base = row * groups_per_row;
    const std::uint64_t first = column * weights_per_symbol;
    const std::uint64_t g0 = first >> group_shift;
    // All weights of a symbol in one group (always, when the group size is a
    // multiple of weights_per_symbol): one scale and bias for the symbol.
    bool one_group = true;
    if constexpr (weights_per_symbol > 1) one_group = ((first + weights_per_symbol - 1) >> group_shift) == g0;
    if (one_group) {
      const float scale = float16_to_float(scales[row_base + g0], format);
      const float bias = float16_to_float(biases[row_base + g0], format);
      ECQ_PRAGMA_UNROLL
      for (int j = 0; j < weights_per_symbol; ++j) w[j] = scale * float(Packing::code(symbol, raw, j)) + bias;
    } else {
      for (int j = 0; j < weights_per_symbol; ++j) {
        std::uint64_t g = (first + std::uint64_t(j)) >> group_shift;
        if (g >= groups_per_row) g = groups_per_row - 1;  // padding past the row's end
        const float scale = float16_to_float(scales[row_base + g], format);
        const float bias = float16_to_float(biases[row_base + g], format);
        w[j] = scale * float(Packing::code(symbol, raw, j)) + bias;
      }
    }
  }
};

/// @return groups per row for cols weights.
inline std::uint64_t affine_groups_per_row(std::uint64_t cols, std::uint32_t group_size) {
  return (cols + group_size - 1) / group_size;
}

/// Builds an affine_dequantizer over side data found by `lookup` (a function
/// object side_span(section_tag)), after checking every size against the
/// geometry. Packing must match p (codes_per_symbol, raw_bits, bits).
/// @return status::ok; status::invalid_argument if Packing does not match p;
///         status::bad_shape if a section is missing or has the wrong size,
///         or the geometry does not match the packing.
template <class Packing, class Lookup>
status make_affine_dequantizer(const affine_params& p, const Lookup& lookup, const dequant_geometry& g,
                               affine_dequantizer<Packing>* out) {
  const status s = detail::check_packing_and_geometry<Packing>(p, g);
  if (s != status::ok) return s;
  const std::uint64_t gpr = affine_groups_per_row(g.cols, p.group_size);
  const side_span sc = lookup(section_tag::scales), bi = lookup(section_tag::biases);
  if (sc.size != g.rows * gpr * 2 || bi.size != g.rows * gpr * 2) return status::bad_shape;
  out->scales = reinterpret_cast<const std::uint16_t*>(sc.data);
  out->biases = reinterpret_cast<const std::uint16_t*>(bi.data);
  out->symbols_per_row = g.symbols_per_row;
  out->groups_per_row = gpr;
  out->group_shift = log2_pow2(p.group_size);
  out->format = p.side_format;
  return detail::bind_raw_plane<Packing>(lookup, g, &out->raw_plane);
}

/// Packs codes with the packing p names and fills q (symbols, raw plane,
/// sections) from the codes and the 16-bit scale and bias patterns.
/// @return status::ok; status::invalid_argument if p is not valid, a code is
///         >= 2^bits, or the side arrays are not rows * groups_per_row long.
inline status affine_from_codes(const std::uint8_t* codes, std::uint64_t rows, std::uint64_t cols,
                                const std::vector<std::uint16_t>& scales, const std::vector<std::uint16_t>& biases,
                                const affine_params& p, quantized_tensor* q) {
  if (!p.valid()) return status::invalid_argument;
  const std::uint64_t gpr = affine_groups_per_row(cols, p.group_size);
  if (scales.size() != rows * gpr || biases.size() != rows * gpr) return status::invalid_argument;
  for (std::uint64_t i = 0; i < rows * cols; ++i)
    if (codes[i] >> p.bits) return status::invalid_argument;
  *q = quantized_tensor{};
  q->kind = scheme_kind::affine;
  q->rows = rows;
  q->cols = cols;
  visit_code_packing(p.bits, p.codes_per_symbol, p.raw_bits,
                     [&](auto packing) { pack_code_rows<decltype(packing)>(codes, rows, cols, q); });
  p.serialize(&q->params);
  q->sections.push_back(detail::u16_section(section_tag::scales, scales));
  q->sections.push_back(detail::u16_section(section_tag::biases, biases));
  if (!q->raw_plane.empty()) q->sections.push_back(detail::u32_section(section_tag::raw_plane, q->raw_plane));
  return status::ok;
}

/// Quantises w[0 .. rows * cols) (row-major) with p (see the file comment);
/// if `codes_out` is not null it receives the codes (rows * cols).
/// @return status::ok; status::invalid_argument if p is not valid or w holds
///         a non-finite value or a scale or bias overflows its 16-bit format.
inline status affine_quantize(const float* w, std::uint64_t rows, std::uint64_t cols, const affine_params& p,
                              quantized_tensor* q, std::vector<std::uint8_t>* codes_out = nullptr) {
  if (!p.valid()) return status::invalid_argument;
  const std::uint64_t gpr = affine_groups_per_row(cols, p.group_size);
  const int qmax = (1 << p.bits) - 1;
  std::vector<std::uint8_t> codes(std::size_t(rows * cols));
  std::vector<std::uint16_t> scales(std::size_t(rows * gpr)), biases(std::size_t(rows * gpr));
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t g = 0; g < gpr; ++g) {
      const std::uint64_t begin = r * cols + g * p.group_size;
      const std::uint64_t end = begin + (cols - g * p.group_size < p.group_size ? cols - g * p.group_size : p.group_size);
      float lo = w[begin], hi = w[begin];
      for (std::uint64_t i = begin; i < end; ++i) {
        if (!std::isfinite(w[i])) return status::invalid_argument;
        lo = w[i] < lo ? w[i] : lo;
        hi = w[i] > hi ? w[i] : hi;
      }
      const std::uint16_t s16 = float_to_float16((hi - lo) / float(qmax), p.side_format);
      const std::uint16_t b16 = float_to_float16(lo, p.side_format);
      const float scale = float16_to_float(s16, p.side_format), bias = float16_to_float(b16, p.side_format);
      if (!std::isfinite(scale) || !std::isfinite(bias)) return status::invalid_argument;
      scales[std::size_t(r * gpr + g)] = s16;
      biases[std::size_t(r * gpr + g)] = b16;
      for (std::uint64_t i = begin; i < end; ++i) {
        const float t = scale > 0.0f ? std::nearbyint((w[i] - bias) / scale) : 0.0f;
        codes[std::size_t(i)] = std::uint8_t(t < 0.0f ? 0 : t > float(qmax) ? qmax : int(t));
      }
    }
  const status s = affine_from_codes(codes.data(), rows, cols, scales, biases, p, q);
  if (codes_out != nullptr) *codes_out = std::move(codes);
  return s;
}

// ---------------------------------------------------------------------------
// Packed codes of already-quantised tensors.

/// Unpacks n 4-bit codes stored two per byte, low nibble first (byte k holds
/// codes 2k and 2k + 1), into codes[0..n). n odd: the last byte's high nibble
/// must be 0. @return status::ok, or status::invalid_argument for a non-zero
/// padding nibble (pack could then not reproduce the bytes).
inline status unpack_nibbles(const std::uint8_t* packed, std::size_t n, std::uint8_t* codes) {
  for (std::size_t i = 0; i < n; ++i) codes[i] = std::uint8_t((packed[i / 2] >> (4 * (i % 2))) & 0xf);
  if (n % 2 != 0 && (packed[n / 2] >> 4) != 0) return status::invalid_argument;
  return status::ok;
}

/// Inverse of unpack_nibbles: writes (n + 1) / 2 bytes.
inline void pack_nibbles(const std::uint8_t* codes, std::size_t n, std::uint8_t* packed) {
  for (std::size_t k = 0; k < (n + 1) / 2; ++k) {
    const std::uint8_t hi = 2 * k + 1 < n ? codes[2 * k + 1] : 0;
    packed[k] = std::uint8_t((codes[2 * k] & 0xf) | (hi & 0xf) << 4);
  }
}

/// MLX's packing: each row of `cols` b-bit codes (b in {2, 4, 8}) as
/// cols * b / 32 uint32 words, code j of a word in bits [j * b, (j + 1) * b).
/// @return the words per row, or 0 if b is not 2, 4 or 8 or cols * b is not
///         a multiple of 32 (MLX requires both).
inline std::uint64_t mlx_words_per_row(std::uint64_t cols, int bits) {
  if (bits != 2 && bits != 4 && bits != 8) return 0;
  if ((cols * std::uint64_t(bits)) % 32 != 0) return 0;
  return cols * std::uint64_t(bits) / 32;
}

/// Unpacks rows x cols codes from MLX uint32 words (rows * mlx_words_per_row).
/// @return status::ok, or status::invalid_argument for an unsupported width.
inline status unpack_mlx_words(const std::uint32_t* words, std::uint64_t rows, std::uint64_t cols, int bits,
                               std::uint8_t* codes) {
  const std::uint64_t wpr = mlx_words_per_row(cols, bits);
  if (wpr == 0 && cols != 0) return status::invalid_argument;
  const int per_word = 32 / bits;
  const std::uint32_t mask = (1u << bits) - 1;
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t c = 0; c < cols; ++c)
      codes[r * cols + c] = std::uint8_t((words[r * wpr + c / per_word] >> (bits * (c % per_word))) & mask);
  return status::ok;
}

/// Inverse of unpack_mlx_words.
/// @return status::ok, or status::invalid_argument for an unsupported width.
inline status pack_mlx_words(const std::uint8_t* codes, std::uint64_t rows, std::uint64_t cols, int bits,
                             std::uint32_t* words) {
  const std::uint64_t wpr = mlx_words_per_row(cols, bits);
  if (wpr == 0 && cols != 0) return status::invalid_argument;
  const int per_word = 32 / bits;
  for (std::uint64_t k = 0; k < rows * wpr; ++k) words[k] = 0;
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t c = 0; c < cols; ++c)
      words[r * wpr + c / per_word] |= std::uint32_t(codes[r * cols + c]) << (bits * (c % per_word));
  return status::ok;
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_AFFINE_HPP
