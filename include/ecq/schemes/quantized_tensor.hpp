// ecq/schemes/quantized_tensor.hpp — READ ME FIRST
//
// What every quantiser (ecq/schemes/affine.hpp, codebook.hpp, float16.hpp,
// float32.hpp, uniform.hpp) produces on the host, and what the container encodes: a 2-D
// tensor of symbols plus the side data its dequantiser needs. Host only.
//
// Shape. A tensor of any rank is viewed as `rows` x `cols` with cols = the
// last dimension (1-D tensors are one row): groups, rows of steps and packed
// codes all run along the last dimension, as in MLX and GGUF.
//
// Symbols. Row r holds symbols_per_row = ceil(cols / weights_per_symbol)
// symbols, row-major: symbol (r, c) = symbols[r * symbols_per_row + c] covers
// weights [c * weights_per_symbol, (c + 1) * weights_per_symbol) of row r; a
// row's last symbol is padded with zero codes when cols is not a multiple.
// With multi-weight symbols (ecq/symbol_packing.hpp) the low bits of each
// code may be kept out of the symbol, in a raw plane.
//
// Raw plane. raw_bits_per_symbol bits per symbol (0, or a power of two up to
// 32), uint32 words, least significant bit first, in the same row-major
// symbol order: symbol (r, c) owns bits [i * R, (i + 1) * R) with
// i = r * symbols_per_row + c. So a kernel finds a symbol's raw field from its
// tensor coordinates alone, whatever block layout the container chose.
//
// Side sections. Tagged byte arrays (scales, biases, steps, the codebook, the
// raw plane), little-endian, stored verbatim as the container's side-data
// sections; `params` is the scheme's parameter block, stored as the
// container's scheme parameters. Each scheme documents its parameter block,
// its sections and the exact sizes it requires; the parameter parsers and
// dequantiser factories (make_*_dequantizer) check them, so a dequantiser
// built from an untrusted container never reads outside its sections.
#ifndef ECQ_SCHEMES_QUANTIZED_TENSOR_HPP
#define ECQ_SCHEMES_QUANTIZED_TENSOR_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "../config.hpp"
#include "../status.hpp"
#include "../symbol_packing.hpp"

ECQ_NAMESPACE_BEGIN

/// The schemes, as stored in a container's scheme_id field. Stable: never renumber.
enum class scheme_kind : std::uint32_t {
  affine = 1,    // ecq/schemes/affine.hpp
  codebook = 2,  // ecq/schemes/codebook.hpp
  bf16 = 3,      // ecq/schemes/float16.hpp, lossless bfloat16
  f16 = 4,       // ecq/schemes/float16.hpp, lossless binary16
  uniform = 5,   // ecq/schemes/uniform.hpp
  f32 = 6,       // ecq/schemes/float32.hpp, lossless float32
};

/// Side-section tags. Stable: never renumber.
enum class section_tag : std::uint32_t {
  raw_plane = 1,  // raw bits of multi-weight / split symbols (uint32 words)
  scales = 2,     // per-group scales (16-bit floats)
  biases = 3,     // per-group biases (16-bit floats)
  steps = 4,      // per-row or per-group quantiser steps (16-bit floats)
  codebook = 5,   // 2^bits codebook entries (float32)
  low_halves = 6, // the low 16 bits of each float32 weight (uint16), scheme f32
};

struct side_section {
  section_tag tag;
  std::uint32_t item_size;  // 1, 2 or 4: the width the items are stored at
  std::vector<std::uint8_t> bytes;
};

/// A quantised tensor, ready to be entropy coded (see the file comment).
struct quantized_tensor {
  scheme_kind kind = scheme_kind::affine;
  std::uint64_t rows = 0;
  std::uint64_t cols = 0;
  std::uint32_t weights_per_symbol = 1;
  std::uint32_t raw_bits_per_symbol = 0;
  std::uint64_t symbols_per_row = 0;
  std::uint32_t alphabet_size = 0;       // every symbol is below this
  std::vector<std::uint16_t> symbols;    // rows * symbols_per_row, row-major
  std::vector<std::uint32_t> raw_plane;  // empty when raw_bits_per_symbol == 0
  std::vector<std::uint8_t> params;      // the scheme's parameter block
  std::vector<side_section> sections;    // side data, raw plane included

  /// @return the section with `tag`, or null.
  const side_section* find(section_tag tag) const {
    for (const auto& s : sections)
      if (s.tag == tag) return &s;
    return nullptr;
  }
  /// @return the bytes of side data (every section, raw plane included; not params).
  std::uint64_t side_bytes() const {
    std::uint64_t n = 0;
    for (const auto& s : sections) n += s.bytes.size();
    return n;
  }
};

/// @return rows when the shape is viewed as rows x last dimension (1 for a 1-D or 0-D tensor).
inline std::uint64_t shape_rows(const std::vector<std::uint64_t>& shape) {
  std::uint64_t r = 1;
  for (std::size_t k = 0; k + 1 < shape.size(); ++k) r *= shape[k];
  return r;
}
/// @return the last dimension (1 for a 0-D tensor).
inline std::uint64_t shape_cols(const std::vector<std::uint64_t>& shape) { return shape.empty() ? 1 : shape.back(); }

namespace detail {

inline void append_u16s(const std::vector<std::uint16_t>& v, std::vector<std::uint8_t>* out) {
  for (std::uint16_t x : v) {
    out->push_back(std::uint8_t(x));
    out->push_back(std::uint8_t(x >> 8));
  }
}
inline void append_u32(std::uint32_t x, std::vector<std::uint8_t>* out) {
  for (int k = 0; k < 4; ++k) out->push_back(std::uint8_t(x >> (8 * k)));
}
inline std::uint32_t load_u32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
inline void append_f32(float f, std::vector<std::uint8_t>* out) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  append_u32(u, out);
}
inline float load_f32(const std::uint8_t* p) {
  const std::uint32_t u = load_u32(p);
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline side_section u16_section(section_tag tag, const std::vector<std::uint16_t>& v) {
  side_section s{tag, 2, {}};
  append_u16s(v, &s.bytes);
  return s;
}
inline side_section u32_section(section_tag tag, const std::vector<std::uint32_t>& v) {
  side_section s{tag, 4, {}};
  for (std::uint32_t x : v) append_u32(x, &s.bytes);
  return s;
}

}  // namespace detail

/// Splits each row of codes[0 .. rows * cols) (row-major, each < 2^CodeBits)
/// into symbols and raw fields with Packing (a symbol_packing), filling
/// q->symbols, q->raw_plane, q->weights_per_symbol, q->raw_bits_per_symbol,
/// q->symbols_per_row and q->alphabet_size. Rows are packed separately, so
/// a row's last symbol carries zero codes past the row's end.
template <class Packing>
void pack_code_rows(const std::uint8_t* codes, std::uint64_t rows, std::uint64_t cols, quantized_tensor* q) {
  const std::uint64_t spr = Packing::symbol_count(std::size_t(cols));
  q->weights_per_symbol = Packing::codes_per_symbol;
  q->raw_bits_per_symbol = Packing::raw_bits_per_symbol;
  q->symbols_per_row = spr;
  q->alphabet_size = Packing::alphabet_size;
  q->symbols.assign(std::size_t(rows * spr), 0);
  const std::uint64_t raw_bits = rows * spr * std::uint64_t(Packing::raw_bits_per_symbol);
  q->raw_plane.assign(std::size_t((raw_bits + 31) / 32), 0);
  for (std::uint64_t r = 0; r < rows; ++r) {
    const std::uint8_t* row = codes + r * cols;
    for (std::uint64_t c = 0; c < spr; ++c) {
      const std::uint64_t first = c * Packing::codes_per_symbol;
      const int count = cols - first < std::uint64_t(Packing::codes_per_symbol) ? int(cols - first)
                                                                                : Packing::codes_per_symbol;
      const std::uint64_t i = r * spr + c;
      q->symbols[std::size_t(i)] = std::uint16_t(Packing::symbol_of(row + first, count));
      if constexpr (Packing::raw_bits_per_symbol != 0) {
        const std::uint64_t bit = i * Packing::raw_bits_per_symbol;
        q->raw_plane[std::size_t(bit / 32)] |= Packing::raw_of(row + first, count) << (bit % 32);
      }
    }
  }
}

/// Calls f(symbol_packing<CodeBits, C, R>{}) for the packings the library
/// instantiates for b-bit codes, and returns true; false (f not called) for
/// any other (codes_per_symbol, raw_bits) pair. Supported, when the symbol
/// fits 12 bits: (1, 0), (2, 0), (3, 0), (2, 1), (4, 1), (4, 2).
template <int CodeBits, class F>
bool visit_code_packing(int codes_per_symbol, int raw_bits, F&& f) {
  auto fits = [](int c, int r) { return (CodeBits - r) * c <= 12 && r < CodeBits; };
  if (!fits(codes_per_symbol, raw_bits)) return false;
  auto call = [&](auto packing) {
    f(packing);
    return true;
  };
  if (codes_per_symbol == 1 && raw_bits == 0) return call(symbol_packing<CodeBits, 1, 0>{});
  if constexpr (2 * CodeBits <= 12)
    if (codes_per_symbol == 2 && raw_bits == 0) return call(symbol_packing<CodeBits, 2, 0>{});
  if constexpr (3 * CodeBits <= 12)
    if (codes_per_symbol == 3 && raw_bits == 0) return call(symbol_packing<CodeBits, 3, 0>{});
  if constexpr (2 * (CodeBits - 1) <= 12)
    if (codes_per_symbol == 2 && raw_bits == 1) return call(symbol_packing<CodeBits, 2, 1>{});
  if constexpr (4 * (CodeBits - 1) <= 12)
    if (codes_per_symbol == 4 && raw_bits == 1) return call(symbol_packing<CodeBits, 4, 1>{});
  if constexpr (CodeBits >= 3 && 4 * (CodeBits - 2) <= 12)
    if (codes_per_symbol == 4 && raw_bits == 2) return call(symbol_packing<CodeBits, 4, 2>{});
  return false;
}

/// Run-time code width: calls visit_code_packing<b> for b = code_bits in [2, 8].
template <class F>
bool visit_code_packing(int code_bits, int codes_per_symbol, int raw_bits, F&& f) {
  switch (code_bits) {
    case 2: return visit_code_packing<2>(codes_per_symbol, raw_bits, f);
    case 3: return visit_code_packing<3>(codes_per_symbol, raw_bits, f);
    case 4: return visit_code_packing<4>(codes_per_symbol, raw_bits, f);
    case 5: return visit_code_packing<5>(codes_per_symbol, raw_bits, f);
    case 6: return visit_code_packing<6>(codes_per_symbol, raw_bits, f);
    case 7: return visit_code_packing<7>(codes_per_symbol, raw_bits, f);
    case 8: return visit_code_packing<8>(codes_per_symbol, raw_bits, f);
    default: return false;
  }
}

/// Signal-to-quantisation-noise ratio of approx against ref, in dB:
/// 10 log10(sum ref^2 / sum (ref - approx)^2); +infinity when they are equal.
inline double sqnr_db(const float* ref, const float* approx, std::size_t n) {
  double signal = 0.0, noise = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = double(ref[i]) - double(approx[i]);
    signal += double(ref[i]) * double(ref[i]);
    noise += d * d;
  }
  if (noise == 0.0) return INFINITY;
  return 10.0 * std::log10(signal / noise);
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_QUANTIZED_TENSOR_HPP
