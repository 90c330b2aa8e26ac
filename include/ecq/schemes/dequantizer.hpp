// ecq/schemes/dequantizer.hpp — READ ME FIRST
//
// The dequantiser concept that ties schemes to decoders and fused kernels,
// the side-data lookup every scheme's factory takes, and two things built on
// the concept alone: code_dequantizer (the integer codes themselves) and
// dequantize_tensor (the decode-then-dequantise reference path).
//
// A dequantiser D is a trivially copyable view, usable in host and device
// code, that turns one decoded symbol back into weights:
//
//   using value_type = float;             // or an integer type (codes)
//   static constexpr int weights_per_symbol = ...;
//   ECQ_HOST_DEVICE void operator()(std::uint64_t row, std::uint64_t column,
//                                   std::uint32_t symbol, value_type* w) const;
//
// (row, column) are tensor coordinates of the symbol (column counts symbols,
// see ecq/schemes/quantized_tensor.hpp): exactly what the container's block
// decoders hand their sinks. w[j] receives weight column * weights_per_symbol
// + j of the row, for every j < weights_per_symbol; weights past the end of
// the row (padding of the last symbol) get some finite value that callers
// ignore. A dequantiser reads only side data (scales, raw planes, tables),
// which its factory checked against the tensor's geometry; it trusts row <
// rows, column < symbols_per_row and symbol < alphabet_size, which the
// container's decoders guarantee (its checked decoder included).
#ifndef ECQ_SCHEMES_DEQUANTIZER_HPP
#define ECQ_SCHEMES_DEQUANTIZER_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "../config.hpp"
#include "../status.hpp"
#include "quantized_tensor.hpp"

ECQ_NAMESPACE_BEGIN

/// Bytes of one side-data section as a factory sees them (data may be null
/// when size is 0). Data must be aligned to its item size.
struct side_span {
  const std::uint8_t* data;
  std::uint64_t size;
};

/// A function object side_span(section_tag) over a quantized_tensor's sections
/// (an absent section gives {nullptr, 0}).
struct quantized_tensor_sections {
  const quantized_tensor* q;
  side_span operator()(section_tag tag) const {
    const side_section* s = q->find(tag);
    if (s == nullptr) return {nullptr, 0};
    return {s->bytes.data(), s->bytes.size()};
  }
};

/// The geometry facts a factory checks side data against.
struct dequant_geometry {
  std::uint64_t rows;
  std::uint64_t cols;
  std::uint64_t symbols_per_row;
  std::uint32_t alphabet_size;
};

/// The integer codes of a code-based scheme (affine, codebook) as weights:
/// w[j] = code j of the symbol, with the raw plane's low bits put back. The
/// integer path of fused kernels (codes times integer activations, scaled
/// once per group afterwards) and exact tests use it.
template <class Packing>
struct code_dequantizer {
  using value_type = std::int32_t;
  using packing = Packing;
  static constexpr int weights_per_symbol = Packing::codes_per_symbol;

  const std::uint32_t* raw_plane;  // null when Packing has no raw bits
  std::uint64_t symbols_per_row;

  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::uint64_t row, std::uint64_t column, std::uint32_t symbol,
                                                  value_type* w) const {
    const std::uint32_t raw = Packing::raw_field(raw_plane, std::size_t(row * symbols_per_row + column));
    ECQ_PRAGMA_UNROLL
    for (int j = 0; j < weights_per_symbol; ++j) w[j] = value_type(Packing::code(symbol, raw, j));
  }
};

namespace detail {

/// Checks that the raw plane has exactly the words `Packing` needs for the
/// geometry and points *plane at it (null when there are no raw bits).
template <class Packing, class Lookup>
status bind_raw_plane(const Lookup& lookup, const dequant_geometry& g, const std::uint32_t** plane) {
  *plane = nullptr;
  const side_span s = lookup(section_tag::raw_plane);
  if constexpr (Packing::raw_bits_per_symbol == 0) {
    return s.size == 0 ? status::ok : status::bad_shape;
  } else {
    const std::uint64_t bits = g.rows * g.symbols_per_row * std::uint64_t(Packing::raw_bits_per_symbol);
    if (s.size != (bits + 31) / 32 * 4) return status::bad_shape;
    *plane = reinterpret_cast<const std::uint32_t*>(s.data);
    return status::ok;
  }
}

/// Geometry checks shared by the code-based schemes: symbols_per_row and the
/// alphabet must be what Packing makes of cols.
template <class Packing>
status check_code_geometry(const dequant_geometry& g) {
  if (g.symbols_per_row != Packing::symbol_count(std::size_t(g.cols))) return status::bad_shape;
  if (g.alphabet_size > Packing::alphabet_size) return status::bad_shape;
  return status::ok;
}

/// check_code_geometry, after checking that Packing is the packing the scheme
/// parameters name (any params type with bits, codes_per_symbol, raw_bits).
/// @return status::invalid_argument on a packing mismatch, else as above.
template <class Packing, class CodeParams>
status check_packing_and_geometry(const CodeParams& p, const dequant_geometry& g) {
  if (Packing::code_bits != p.bits || Packing::codes_per_symbol != p.codes_per_symbol ||
      Packing::raw_bits != p.raw_bits)
    return status::invalid_argument;
  return check_code_geometry<Packing>(g);
}

}  // namespace detail

/// Builds a code_dequantizer over checked side data.
/// @return status::ok; status::bad_shape if the geometry or raw plane size
///         does not match Packing.
template <class Packing, class Lookup>
status make_code_dequantizer(const Lookup& lookup, const dequant_geometry& g, code_dequantizer<Packing>* out) {
  status s = detail::check_code_geometry<Packing>(g);
  if (s != status::ok) return s;
  out->symbols_per_row = g.symbols_per_row;
  return detail::bind_raw_plane<Packing>(lookup, g, &out->raw_plane);
}

/// The reference path: dequantises every symbol of a row-major symbol array
/// (rows x symbols_per_row) into out[rows * cols], dropping padding weights.
template <class Dequantizer, class Symbol, class Out>
void dequantize_tensor(const Dequantizer& dq, const Symbol* symbols, std::uint64_t rows, std::uint64_t cols,
                       std::uint64_t symbols_per_row, Out* out) {
  constexpr int wps = Dequantizer::weights_per_symbol;
  typename Dequantizer::value_type w[wps];
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t c = 0; c < symbols_per_row; ++c) {
      dq(r, c, std::uint32_t(symbols[r * symbols_per_row + c]), w);
      for (int j = 0; j < wps; ++j) {
        const std::uint64_t col = c * wps + std::uint64_t(j);
        if (col < cols) out[r * cols + col] = Out(w[j]);
      }
    }
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_DEQUANTIZER_HPP
