// ecq/schemes/uniform.hpp — READ ME FIRST
//
// Entropy-constrained uniform quantisation: w ~= step * level, level =
// round(w / step) an integer, with as many levels as the data needs and no
// fixed bit width. The entropy coder then pays about log2(sigma / step) + 2
// bits per weight for Gaussian-like weights, and rare large levels (the
// heavy tails of real weights) cost bits only when they occur. At the same
// SQNR this takes fewer bits than a fixed-width quantiser, whose range must
// stretch to the group's outliers: its rate is the coded size, which the
// `ecq` tool reports.
//
// Step choice. The step is chosen per unit -- the whole tensor, each row, or
// each group of `group_size` weights along a row -- as the largest step whose
// SQNR over the unit, 10 log10(sum w^2 / sum (w - step * level)^2), reaches
// `target_sqnr_db` (bisection on log(step); SQNR is checked with the stored,
// rounded step). One step per tensor is the cheapest: at high rate, equal
// steps give equal noise everywhere, which is what minimises the rate for a
// given total noise, and it has no side data. Per-row or per-group steps make
// every row or group meet the target on its own.
//
// Alphabet. Symbols are level - min_level over the tensor, so the alphabet
// is max_level - min_level + 1. The library's alphabets stop at 4096 symbols
// (12-bit symbols): a unit whose target would need levels beyond +-2047 gets
// the smallest step that keeps its levels within +-2047 instead (its SQNR
// then falls short of the target; the tool reports the SQNR reached). No
// escape codes: the alphabet grows with the data instead.
//
// Parameter block (16 bytes): byte 0 granularity, 1 float16_format of the
// steps, 2-3 zero, 4-7 group_size uint32 (0 unless granularity is group),
// 8-11 min_level int32, 12-15 the tensor step float32 (0 unless granularity
// is tensor), all LE. Sections: for row or group granularity, steps (rows or
// rows * groups_per_row 16-bit floats).
#ifndef ECQ_SCHEMES_UNIFORM_HPP
#define ECQ_SCHEMES_UNIFORM_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "../config.hpp"
#include "../frequency_table.hpp"
#include "../status.hpp"
#include "affine.hpp"
#include "dequantizer.hpp"
#include "float_formats.hpp"
#include "quantized_tensor.hpp"

ECQ_NAMESPACE_BEGIN

/// Which weights share one step. Stored in parameter blocks: never renumber.
enum class step_granularity : std::uint8_t { tensor = 0, row = 1, group = 2 };

struct uniform_params {
  step_granularity granularity = step_granularity::tensor;
  float16_format step_format = float16_format::binary16;  // row and group steps
  std::uint32_t group_size = 64;                          // group granularity: a power of two in [2, 2^16]
  std::int32_t min_level = 0;                             // set by the quantiser
  float tensor_step = 0.0f;                               // set by the quantiser (tensor granularity)

  static constexpr std::size_t serialized_size = 16;
  /// Largest |level| the quantiser produces: 2 * 2047 + 1 levels fit 4096 symbols.
  static constexpr std::int32_t max_abs_level = 2047;

  bool valid() const {
    if (granularity != step_granularity::tensor && granularity != step_granularity::row &&
        granularity != step_granularity::group)
      return false;
    if (step_format != float16_format::binary16 && step_format != float16_format::bfloat16) return false;
    if (granularity == step_granularity::group &&
        (group_size < 2 || group_size > (1u << 16) || (group_size & (group_size - 1)) != 0))
      return false;
    return std::isfinite(tensor_step) && min_level >= -std::int32_t(max_alphabet_size) && min_level <= 0;
  }
  void serialize(std::vector<std::uint8_t>* out) const {
    out->push_back(std::uint8_t(granularity));
    out->push_back(std::uint8_t(step_format));
    out->push_back(0);
    out->push_back(0);
    detail::append_u32(granularity == step_granularity::group ? group_size : 0, out);
    detail::append_u32(std::uint32_t(min_level), out);
    detail::append_f32(tensor_step, out);
  }
  /// Parses an untrusted parameter block.
  /// @return status::ok or status::unsupported_parameters.
  static status parse(const std::uint8_t* data, std::uint64_t size, uniform_params* out) {
    if (size != serialized_size || data[2] != 0 || data[3] != 0) return status::unsupported_parameters;
    uniform_params p;
    p.granularity = step_granularity(data[0]);
    p.step_format = float16_format(data[1]);
    p.group_size = detail::load_u32(data + 4);
    p.min_level = std::int32_t(detail::load_u32(data + 8));
    p.tensor_step = detail::load_f32(data + 12);
    if (p.granularity != step_granularity::group) {
      if (p.group_size != 0) return status::unsupported_parameters;
      p.group_size = 64;
    }
    if (!p.valid()) return status::unsupported_parameters;
    *out = p;
    return status::ok;
  }
  /// @return the number of stored steps for a rows x cols tensor (0 for tensor granularity).
  std::uint64_t step_count(std::uint64_t rows, std::uint64_t cols) const {
    switch (granularity) {
      case step_granularity::row: return rows;
      case step_granularity::group: return rows * affine_groups_per_row(cols, group_size);
      default: return 0;
    }
  }
};

/// Dequantiser (see ecq/schemes/dequantizer.hpp): w = step * (symbol + min_level).
/// One weight per symbol.
struct uniform_dequantizer {
  using value_type = float;
  static constexpr int weights_per_symbol = 1;

  const std::uint16_t* steps;  // null for tensor granularity
  float tensor_step;
  std::int32_t min_level;
  std::uint64_t steps_per_row;  // 1 for row granularity, groups per row for group granularity
  std::uint32_t group_shift;    // column -> group (0 for row granularity)
  float16_format format;

  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::uint64_t row, std::uint64_t column, std::uint32_t symbol,
                                                  float* w) const {
    const float level = float(std::int32_t(symbol) + min_level);
    const float step =
        steps == nullptr ? tensor_step : float16_to_float(steps[row * steps_per_row + (column >> group_shift)], format);
    w[0] = step * level;
  }
};

/// Builds a uniform_dequantizer over checked side data.
/// @return status::ok or status::bad_shape (symbols_per_row != cols, alphabet
///         above 4096, or a missing or mis-sized steps section).
template <class Lookup>
status make_uniform_dequantizer(const uniform_params& p, const Lookup& lookup, const dequant_geometry& g,
                                uniform_dequantizer* out) {
  if (g.symbols_per_row != g.cols || g.alphabet_size > max_alphabet_size) return status::bad_shape;
  const side_span s = lookup(section_tag::steps);
  const std::uint64_t count = p.step_count(g.rows, g.cols);
  if (s.size != count * 2) return status::bad_shape;
  out->steps = count == 0 ? nullptr : reinterpret_cast<const std::uint16_t*>(s.data);
  out->tensor_step = p.tensor_step;
  out->min_level = p.min_level;
  out->format = p.step_format;
  if (p.granularity == step_granularity::group) {
    out->steps_per_row = affine_groups_per_row(g.cols, p.group_size);
    out->group_shift = log2_pow2(p.group_size);
  } else {
    out->steps_per_row = 1;
    out->group_shift = 63;  // every column maps to the row's one step
  }
  return status::ok;
}

namespace detail {

/// Level of w for a step (0 for step 0).
inline std::int32_t uniform_level(float w, float step) {
  if (!(step > 0.0f)) return 0;
  const float t = std::nearbyint(w / step);
  const float m = float(uniform_params::max_abs_level);
  return std::int32_t(t < -m ? -m : t > m ? m : t);
}

/// @return whether quantising w[0..n) with `step` keeps the noise within
///         `noise_budget` (squared error summed).
inline bool uniform_step_meets(const float* w, std::size_t n, float step, double noise_budget) {
  double noise = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double d = double(w[i]) - double(step) * double(uniform_level(w[i], step));
    noise += d * d;
  }
  return noise <= noise_budget;
}

/// How a step is stored: float32 (exact) or a 16-bit format. Steps are positive.
struct stored_step {
  bool is_float32;
  float16_format format;

  float nearest(float s) const { return is_float32 ? s : float16_to_float(float_to_float16(s, format), format); }
  /// The smallest stored value >= s.
  float up(float s) const {
    if (is_float32) return s;
    std::uint16_t h = float_to_float16(s, format);
    if (float16_to_float(h, format) < s) ++h;
    return float16_to_float(h, format);
  }
  /// The largest stored value < s (0 if none).
  float below(float s) const {
    if (is_float32) return std::nextafter(s, 0.0f);
    std::uint16_t h = float_to_float16(s, format);
    while (h > 0 && float16_to_float(h, format) >= s) --h;
    return float16_to_float(h, format);
  }
};

/// The step of one unit: the largest stored step meeting the target, but no
/// smaller than the smallest stored step >= max|w| / max_abs_level.
inline float uniform_unit_step(const float* w, std::size_t n, double target_sqnr_db, const stored_step& stored) {
  double energy = 0.0, absmax = 0.0;
  for (std::size_t i = 0; i < n; ++i) {
    energy += double(w[i]) * double(w[i]);
    absmax = std::max(absmax, double(std::fabs(w[i])));
  }
  if (absmax == 0.0) return 0.0f;
  const double budget = energy * std::pow(10.0, -target_sqnr_db / 10.0);
  const float floor_step = stored.up(float(absmax / uniform_params::max_abs_level));
  if (!uniform_step_meets(w, n, floor_step, budget)) return floor_step;
  // Bisection on log(step): lo meets the target, hi does not.
  double lo = floor_step, hi = 2.0 * absmax;
  if (uniform_step_meets(w, n, stored.nearest(float(hi)), budget)) return stored.nearest(float(hi));
  for (int it = 0; it < 40 && hi / lo > 1.0 + 1e-6; ++it) {
    const double mid = std::sqrt(lo * hi);
    if (uniform_step_meets(w, n, float(mid), budget)) lo = mid; else hi = mid;
  }
  // Rounding to the stored format may land above a step that meets: step
  // down, a bounded number of times (SQNR is monotone in the step only
  // nearly, so a pathological unit keeps the last step tried).
  float step = stored.nearest(float(lo));
  for (int k = 0; k < 256 && step > floor_step && !uniform_step_meets(w, n, step, budget); ++k)
    step = stored.below(step);
  return step < floor_step ? floor_step : step;
}

}  // namespace detail

/// Quantises w[0 .. rows * cols) (row-major, finite) for a target SQNR with
/// p's granularity, step format and group size (see the file comment).
/// @return status::ok; status::invalid_argument if p is not valid, the target
///         is not finite, or w holds a non-finite value.
inline status uniform_quantize(const float* w, std::uint64_t rows, std::uint64_t cols, double target_sqnr_db,
                               uniform_params p, quantized_tensor* q) {
  p.min_level = 0;
  p.tensor_step = 0.0f;
  if (!p.valid() || !std::isfinite(target_sqnr_db)) return status::invalid_argument;
  const std::size_t n = std::size_t(rows * cols);
  for (std::size_t i = 0; i < n; ++i)
    if (!std::isfinite(w[i])) return status::invalid_argument;

  std::vector<std::int32_t> levels(n);
  std::vector<std::uint16_t> steps;
  if (p.granularity == step_granularity::tensor) {
    p.tensor_step = detail::uniform_unit_step(w, n, target_sqnr_db, {true, p.step_format});
    for (std::size_t i = 0; i < n; ++i) levels[i] = detail::uniform_level(w[i], p.tensor_step);
  } else {
    const std::uint64_t unit = p.granularity == step_granularity::row ? cols : p.group_size;
    const std::uint64_t per_row = p.granularity == step_granularity::row ? 1 : affine_groups_per_row(cols, unit);
    steps.resize(std::size_t(rows * per_row));
    for (std::uint64_t r = 0; r < rows; ++r)
      for (std::uint64_t u = 0; u < per_row; ++u) {
        const std::uint64_t begin = r * cols + u * unit;
        const std::uint64_t len = std::min<std::uint64_t>(unit, cols - u * unit);
        const float step = detail::uniform_unit_step(w + begin, std::size_t(len), target_sqnr_db, {false, p.step_format});
        steps[std::size_t(r * per_row + u)] = float_to_float16(step, p.step_format);
        for (std::uint64_t i = begin; i < begin + len; ++i) levels[std::size_t(i)] = detail::uniform_level(w[i], step);
      }
  }
  std::int32_t lo = 0, hi = 0;
  for (std::int32_t l : levels) {
    lo = std::min(lo, l);
    hi = std::max(hi, l);
  }
  p.min_level = lo;

  *q = quantized_tensor{};
  q->kind = scheme_kind::uniform;
  q->rows = rows;
  q->cols = cols;
  q->weights_per_symbol = 1;
  q->symbols_per_row = cols;
  q->alphabet_size = std::uint32_t(hi - lo + 1);
  q->symbols.resize(n);
  for (std::size_t i = 0; i < n; ++i) q->symbols[i] = std::uint16_t(levels[i] - lo);
  p.serialize(&q->params);
  if (!steps.empty()) q->sections.push_back(detail::u16_section(section_tag::steps, steps));
  return status::ok;
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_UNIFORM_HPP
