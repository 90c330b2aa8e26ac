// ecq/schemes/codebook.hpp — READ ME FIRST
//
// Codebook (lookup-table) quantisation with a per-group absmax scale, as in
// QLoRA's NF4 and bitsandbytes' FP4:
//     w ~= table[q] * scale,   scale = max |w| over the group,
// with b-bit codes q indexing a table of 2^b float32 entries, normally in
// [-1, 1]. The NF4 table of QLoRA (Dettmers et al. 2023, quantiles of a
// normal distribution) is built in (nf4_table); any user table of 2^b finite
// values can be given instead. Codes are entropy coded; the scales are side
// data (16-bit floats), the table is one side section per tensor.
//
// Quantiser: scale rounded to its 16-bit format first; q = the index of the
// table entry nearest to w / scale (ties to the smaller entry value). A group
// of zeros gets scale 0 and the code of the entry nearest to 0.
//
// Parameter block (8 bytes, the affine layout): byte 0 bits, 1 float16_format
// of the scales, 2 codes_per_symbol, 3 raw_bits, 4-7 group_size uint32 LE.
// Sections: scales (rows * groups_per_row 16-bit floats), codebook (2^bits
// float32), and raw_plane when raw_bits > 0.
#ifndef ECQ_SCHEMES_CODEBOOK_HPP
#define ECQ_SCHEMES_CODEBOOK_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <vector>

#include "../config.hpp"
#include "../status.hpp"
#include "affine.hpp"
#include "dequantizer.hpp"
#include "float_formats.hpp"
#include "quantized_tensor.hpp"

ECQ_NAMESPACE_BEGIN

/// QLoRA's NormalFloat-4 table (bitsandbytes' values, exactly as float32).
inline constexpr float nf4_table[16] = {-1.0f,
                                        -0.6961928009986877f,
                                        -0.5250730514526367f,
                                        -0.39491748809814453f,
                                        -0.28444138169288635f,
                                        -0.18477343022823334f,
                                        -0.09105003625154495f,
                                        0.0f,
                                        0.07958029955625534f,
                                        0.16093020141124725f,
                                        0.24611230194568634f,
                                        0.33791524171829224f,
                                        0.44070982933044434f,
                                        0.5626170039176941f,
                                        0.7229568362236023f,
                                        1.0f};

/// Codebook parameters share the affine layout (bits, format, packing, group
/// size); the table travels separately.
using codebook_params = affine_params;

/// Dequantiser (see ecq/schemes/dequantizer.hpp): w = table[q] * scale.
template <class Packing>
struct codebook_dequantizer {
  using value_type = float;
  using packing = Packing;
  static constexpr int weights_per_symbol = Packing::codes_per_symbol;

  const float* table;  // 2^bits entries
  const std::uint16_t* scales;
  const std::uint32_t* raw_plane;
  std::uint64_t symbols_per_row;
  std::uint64_t groups_per_row;
  std::uint32_t group_shift;
  float16_format format;

  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::uint64_t row, std::uint64_t column, std::uint32_t symbol,
                                                  float* w) const {
    const std::uint32_t raw = Packing::raw_field(raw_plane, std::size_t(row * symbols_per_row + column));
    const std::uint64_t row_base = row * groups_per_row;
    const std::uint64_t first = column * weights_per_symbol;
    const std::uint64_t g0 = first >> group_shift;
    bool one_group = true;  // see affine_dequantizer
    if constexpr (weights_per_symbol > 1) one_group = ((first + weights_per_symbol - 1) >> group_shift) == g0;
    if (one_group) {
      const float scale = float16_to_float(scales[row_base + g0], format);
      ECQ_PRAGMA_UNROLL
      for (int j = 0; j < weights_per_symbol; ++j) w[j] = table[Packing::code(symbol, raw, j)] * scale;
    } else {
      for (int j = 0; j < weights_per_symbol; ++j) {
        std::uint64_t g = (first + std::uint64_t(j)) >> group_shift;
        if (g >= groups_per_row) g = groups_per_row - 1;  // padding past the row's end
        w[j] = table[Packing::code(symbol, raw, j)] * float16_to_float(scales[row_base + g], format);
      }
    }
  }
};

/// Builds a codebook_dequantizer over checked side data (see
/// make_affine_dequantizer). The table section must hold 2^bits float32.
/// @return status::ok; status::invalid_argument if Packing does not match p;
///         status::bad_shape for a missing or mis-sized section.
template <class Packing, class Lookup>
status make_codebook_dequantizer(const codebook_params& p, const Lookup& lookup, const dequant_geometry& g,
                                 codebook_dequantizer<Packing>* out) {
  const status s = detail::check_packing_and_geometry<Packing>(p, g);
  if (s != status::ok) return s;
  const std::uint64_t gpr = affine_groups_per_row(g.cols, p.group_size);
  const side_span sc = lookup(section_tag::scales), tb = lookup(section_tag::codebook);
  if (sc.size != g.rows * gpr * 2 || tb.size != (std::uint64_t(4) << p.bits)) return status::bad_shape;
  out->table = reinterpret_cast<const float*>(tb.data);
  out->scales = reinterpret_cast<const std::uint16_t*>(sc.data);
  out->symbols_per_row = g.symbols_per_row;
  out->groups_per_row = gpr;
  out->group_shift = log2_pow2(p.group_size);
  out->format = p.side_format;
  return detail::bind_raw_plane<Packing>(lookup, g, &out->raw_plane);
}

/// Quantises w[0 .. rows * cols) with `table` (2^p.bits finite entries; the
/// NF4 table when p.bits == 4 and table is empty). If `codes_out` is not null
/// it receives the codes.
/// @return status::ok; status::invalid_argument if p is not valid, the table
///         has the wrong size or a non-finite entry, w holds a non-finite
///         value, or a scale overflows its 16-bit format.
inline status codebook_quantize(const float* w, std::uint64_t rows, std::uint64_t cols, const codebook_params& p,
                                std::vector<float> table, quantized_tensor* q,
                                std::vector<std::uint8_t>* codes_out = nullptr) {
  if (!p.valid()) return status::invalid_argument;
  if (table.empty() && p.bits == 4) table.assign(nf4_table, nf4_table + 16);
  if (table.size() != (std::size_t(1) << p.bits)) return status::invalid_argument;
  for (float t : table)
    if (!std::isfinite(t)) return status::invalid_argument;
  // Entries in increasing order; the nearest entry is found by binary search.
  std::vector<std::uint32_t> order(table.size());
  std::iota(order.begin(), order.end(), 0u);
  std::stable_sort(order.begin(), order.end(), [&](std::uint32_t a, std::uint32_t b) { return table[a] < table[b]; });
  auto nearest = [&](float x) {
    std::size_t lo = 0, hi = order.size();  // first entry >= x
    while (lo < hi) {
      const std::size_t mid = (lo + hi) / 2;
      if (table[order[mid]] < x) lo = mid + 1; else hi = mid;
    }
    if (lo == order.size()) return order.back();
    if (lo == 0) return order.front();
    const float below = table[order[lo - 1]], above = table[order[lo]];
    return x - below <= above - x ? order[lo - 1] : order[lo];
  };

  const std::uint64_t gpr = affine_groups_per_row(cols, p.group_size);
  std::vector<std::uint8_t> codes(std::size_t(rows * cols));
  std::vector<std::uint16_t> scales(std::size_t(rows * gpr));
  for (std::uint64_t r = 0; r < rows; ++r)
    for (std::uint64_t g = 0; g < gpr; ++g) {
      const std::uint64_t begin = r * cols + g * p.group_size;
      const std::uint64_t end = begin + std::min<std::uint64_t>(cols - g * p.group_size, p.group_size);
      float absmax = 0.0f;
      for (std::uint64_t i = begin; i < end; ++i) {
        if (!std::isfinite(w[i])) return status::invalid_argument;
        absmax = std::max(absmax, std::fabs(w[i]));
      }
      const std::uint16_t s16 = float_to_float16(absmax, p.side_format);
      const float scale = float16_to_float(s16, p.side_format);
      if (!std::isfinite(scale)) return status::invalid_argument;
      scales[std::size_t(r * gpr + g)] = s16;
      for (std::uint64_t i = begin; i < end; ++i)
        codes[std::size_t(i)] = std::uint8_t(nearest(scale > 0.0f ? w[i] / scale : 0.0f));
    }

  *q = quantized_tensor{};
  q->kind = scheme_kind::codebook;
  q->rows = rows;
  q->cols = cols;
  visit_code_packing(p.bits, p.codes_per_symbol, p.raw_bits,
                     [&](auto packing) { pack_code_rows<decltype(packing)>(codes.data(), rows, cols, q); });
  p.serialize(&q->params);
  q->sections.push_back(detail::u16_section(section_tag::scales, scales));
  side_section tb{section_tag::codebook, 4, {}};
  for (float t : table) detail::append_f32(t, &tb.bytes);
  q->sections.push_back(std::move(tb));
  if (!q->raw_plane.empty()) q->sections.push_back(detail::u32_section(section_tag::raw_plane, q->raw_plane));
  if (codes_out != nullptr) *codes_out = std::move(codes);
  return status::ok;
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_CODEBOOK_HPP
