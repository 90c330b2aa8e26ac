// ecq/schemes/scheme.hpp — READ ME FIRST
//
// Schemes chosen at run time: by name on the way in (quantise + encode a
// tensor into a container), by the container's scheme id and parameters on
// the way out (the dequantiser a decoder or fused kernel needs). Host only;
// the dequantisers it hands out are device-usable views.
//
// Names (parse_scheme; scheme_spec::name gives the canonical spelling):
//   bf16, f16                      lossless 16-bit floats (ecq/schemes/float16.hpp)
//   f32                            lossless float32 (ecq/schemes/float32.hpp)
//   affine<b>-g<G>                 b-bit affine codes, group size G (affine.hpp)
//   codebook-nf4-g<G>              NF4 codebook, absmax per group (codebook.hpp)
//   uniform-sqnr<T>                uniform steps for a target SQNR of T dB, one
//                                  step per tensor (uniform.hpp); T may have
//                                  decimals (uniform-sqnr21.05)
//   uniform-sqnr<T>-row, -g<G>     one step per row / per group of G
// Suffixes, in this order, for the code-based schemes (affine, codebook):
//   -bf16                          scales/biases stored as bfloat16 (default binary16)
//   -p<C>  or  -p<C>r<R>           C codes per symbol, R low bits of each raw
//                                  (visit_code_packing lists the supported pairs)
// and -bf16 for uniform's per-row / per-group steps.
//
// Coding layout (choose_coding_options). The container cuts a tensor into
// blocks; each block pays its flushed states (4 bytes per lane, about half
// of it returned by the words the final states save), an index entry (16
// bytes) and alignment (8 bytes on average); and the rows that pad the last
// row group up to a whole number of lanes are coded too, as the most
// frequent symbol (about 3 bits per padding symbol for 4-bit codes). Two goals:
//   layout_goal::storage  files at rest and CPU decoding (the default of
//                         `ecq pack`). The widest of 64, 32, 16, 8 lanes whose
//                         flushed states and padding rows cost at most 1/2000
//                         (0.05 %) of the tensor's estimated size, with as many blocks of
//                         whole rows as that allows (a block of about 2^20
//                         weights at 64 lanes and 4 bits a weight): the CPU kernels
//                         run 3x faster at 64 lanes than at 16 (more
//                         independent states per register), so wide blocks
//                         pay where a tensor is large, and small tensors stay
//                         cheap. A tensor too small for 8 lanes at that
//                         cost keeps 8 lanes and blocks of at least 2^17
//                         weights (a few thousandths of a bit per weight).
//   layout_goal::kernel   the widest of 32, 16, 8 lanes, one tile of that
//                         many rows x 256 symbols per block: many independent
//                         blocks for GPU warps, at ~0.1 to 0.2 bits/weight
//                         more (the tool reports it).
// A width that pads more than 1/8 of the rows is not used; 1 lane is the
// fallback (tensors of a few rows). ScaleBits: the value in [7, 15] that
// minimises payload + table, among those whose decode table can hold the
// alphabet; instead, when it costs at most 1/2000 of the tensor's estimated
// size (coded symbols and side data) more, 7, else the best value <= 8, for at
// most 16 symbols (AVX-512's gather-free permute kernel, ~4x the gather kernel's
// speed on 4-bit codes; one vpermi2b at 7, two at 8) or the best value <= 12
// for at most 256, since the SIMD kernels take
// ScaleBits <= 12 (32-bit table entries; ecq/cpu_decode.hpp).
#ifndef ECQ_SCHEMES_SCHEME_HPP
#define ECQ_SCHEMES_SCHEME_HPP

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "../config.hpp"
#include "../container.hpp"
#include "../frequency_table.hpp"
#include "../frequency_table_io.hpp"
#include "../histogram.hpp"
#include "../status.hpp"
#include "../tensor_view.hpp"
#include "affine.hpp"
#include "codebook.hpp"
#include "dequantizer.hpp"
#include "float16.hpp"
#include "float32.hpp"
#include "quantized_tensor.hpp"
#include "uniform.hpp"

ECQ_NAMESPACE_BEGIN

/// A scheme and its parameters, as a name describes it.
struct scheme_spec {
  scheme_kind kind = scheme_kind::bf16;
  affine_params codes;          // affine and codebook: bits, group, side format, packing
  uniform_params uniform;       // uniform: granularity, step format, group
  double target_sqnr_db = 0.0;  // uniform

  /// @return the canonical name (parse_scheme(name()) gives this spec back).
  std::string name() const {
    std::string s;
    const bool bf = (kind == scheme_kind::uniform ? uniform.step_format : codes.side_format) == float16_format::bfloat16;
    switch (kind) {
      case scheme_kind::bf16: return "bf16";
      case scheme_kind::f16: return "f16";
      case scheme_kind::f32: return "f32";
      case scheme_kind::affine:
        s = "affine" + std::to_string(codes.bits) + "-g" + std::to_string(codes.group_size);
        break;
      case scheme_kind::codebook: s = "codebook-nf4-g" + std::to_string(codes.group_size); break;
      case scheme_kind::uniform: {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.6g", target_sqnr_db);
        s = std::string("uniform-sqnr") + buf;
        if (uniform.granularity == step_granularity::row) s += "-row";
        if (uniform.granularity == step_granularity::group) s += "-g" + std::to_string(uniform.group_size);
        if (bf && uniform.granularity != step_granularity::tensor) s += "-bf16";
        return s;
      }
    }
    if (bf) s += "-bf16";
    if (codes.codes_per_symbol != 1 || codes.raw_bits != 0) {
      s += "-p" + std::to_string(codes.codes_per_symbol);
      if (codes.raw_bits != 0) s += "r" + std::to_string(codes.raw_bits);
    }
    return s;
  }
  /// @return whether decoding gives the input back exactly (bf16, f16:
  ///         after the rounding to the 16-bit format, for float32 input).
  bool lossless() const { return kind == scheme_kind::bf16 || kind == scheme_kind::f16 || kind == scheme_kind::f32; }
};

namespace detail {

/// Reads an unsigned decimal integer at s[*pos]; false if there is none or it exceeds `max`.
inline bool read_number(const std::string& s, std::size_t* pos, std::uint32_t max, std::uint32_t* out) {
  std::size_t p = *pos;
  std::uint64_t v = 0;
  while (p < s.size() && s[p] >= '0' && s[p] <= '9' && v <= max) v = v * 10 + std::uint64_t(s[p++] - '0');
  if (p == *pos || v > max) return false;
  *pos = p;
  *out = std::uint32_t(v);
  return true;
}
inline bool eat(const std::string& s, std::size_t* pos, const char* word) {
  const std::string w(word);
  if (s.compare(*pos, w.size(), w) != 0) return false;
  *pos += w.size();
  return true;
}

}  // namespace detail

/// Parses a scheme name (see the file comment).
/// @return status::ok, or status::invalid_argument with a message in *error.
inline status parse_scheme(const std::string& name, scheme_spec* out, std::string* error = nullptr) {
  auto fail = [&](const std::string& why) {
    if (error != nullptr) *error = "bad scheme \"" + name + "\": " + why;
    return status::invalid_argument;
  };
  scheme_spec s;
  std::size_t p = 0;
  std::uint32_t v = 0;
  if (name == "bf16" || name == "f16" || name == "f32") {
    s.kind = name == "bf16" ? scheme_kind::bf16 : name == "f16" ? scheme_kind::f16 : scheme_kind::f32;
    *out = s;
    return status::ok;
  }
  const bool affine = detail::eat(name, &p, "affine");
  const bool codebook = !affine && detail::eat(name, &p, "codebook-nf4");
  if (affine || codebook) {
    s.kind = affine ? scheme_kind::affine : scheme_kind::codebook;
    if (affine) {
      if (!detail::read_number(name, &p, 8, &v) || v < 2) return fail("expected a code width 2..8 after 'affine'");
      s.codes.bits = int(v);
    } else {
      s.codes.bits = 4;
    }
    if (!detail::eat(name, &p, "-g") || !detail::read_number(name, &p, 1u << 16, &v))
      return fail("expected -g<group size>");
    s.codes.group_size = v;
    if (detail::eat(name, &p, "-bf16")) s.codes.side_format = float16_format::bfloat16;
    if (detail::eat(name, &p, "-p")) {
      if (!detail::read_number(name, &p, 12, &v)) return fail("expected -p<codes per symbol>[r<raw bits>]");
      s.codes.codes_per_symbol = int(v);
      if (detail::eat(name, &p, "r")) {
        if (!detail::read_number(name, &p, 8, &v)) return fail("expected r<raw bits>");
        s.codes.raw_bits = int(v);
      }
    }
    if (p != name.size()) return fail("unexpected '" + name.substr(p) + "'");
    if (!s.codes.valid())
      return fail("unsupported parameters (group size a power of two >= 2; packings p1, p2, p3, p2r1, p4r1, p4r2 "
                  "with at most 12 coded bits per symbol)");
    *out = s;
    return status::ok;
  }
  if (detail::eat(name, &p, "uniform-sqnr")) {
    s.kind = scheme_kind::uniform;
    const char* start = name.c_str() + p;
    char* end = nullptr;
    s.target_sqnr_db = std::strtod(start, &end);
    if (end == start || !std::isfinite(s.target_sqnr_db) || s.target_sqnr_db <= 0.0 || s.target_sqnr_db > 200.0)
      return fail("expected a target SQNR in (0, 200] dB after 'uniform-sqnr'");
    p += std::size_t(end - start);
    if (detail::eat(name, &p, "-row")) {
      s.uniform.granularity = step_granularity::row;
    } else if (detail::eat(name, &p, "-g")) {
      if (!detail::read_number(name, &p, 1u << 16, &v)) return fail("expected -g<group size>");
      s.uniform.granularity = step_granularity::group;
      s.uniform.group_size = v;
    }
    if (s.uniform.granularity != step_granularity::tensor && detail::eat(name, &p, "-bf16"))
      s.uniform.step_format = float16_format::bfloat16;
    if (p != name.size()) return fail("unexpected '" + name.substr(p) + "'");
    if (!s.uniform.valid()) return fail("group size must be a power of two in [2, 65536]");
    *out = s;
    return status::ok;
  }
  return fail("unknown scheme (bf16, f16, f32, affine<b>-g<G>, codebook-nf4-g<G>, uniform-sqnr<T>[-row|-g<G>])");
}

/// Quantises float weights w[0 .. rows * cols) with spec into q.
/// @return status::ok or the quantiser's status (invalid_argument for
///         non-finite weights or invalid parameters).
inline status quantize(const scheme_spec& spec, const float* w, std::uint64_t rows, std::uint64_t cols,
                       quantized_tensor* q) {
  switch (spec.kind) {
    case scheme_kind::affine: return affine_quantize(w, rows, cols, spec.codes, q);
    case scheme_kind::codebook: return codebook_quantize(w, rows, cols, spec.codes, {}, q);
    case scheme_kind::uniform: return uniform_quantize(w, rows, cols, spec.target_sqnr_db, spec.uniform, q);
    case scheme_kind::bf16: float16_quantize(w, rows, cols, float16_format::bfloat16, q); return status::ok;
    case scheme_kind::f16: float16_quantize(w, rows, cols, float16_format::binary16, q); return status::ok;
    case scheme_kind::f32: float32_quantize(w, rows, cols, q); return status::ok;
  }
  return status::invalid_argument;
}

/// What a coding layout is for (see the file comment).
enum class layout_goal { storage, kernel };

/// Weights per block of the storage layout when 8 lanes already cost more
/// than storage_state_fraction (see the file comment).
inline constexpr std::uint64_t storage_block_weights = std::uint64_t(1) << 17;
/// The share of a tensor's size that the storage layout lets flushed states take.
inline constexpr double storage_state_fraction = 1.0 / 2000.0;
/// The share of size the storage layout gives up for a ScaleBits the SIMD kernels take.
inline constexpr double simd_scale_bits_tolerance = 1.0 / 2000.0;
/// Symbol columns per block of the kernel layout.
inline constexpr std::uint64_t kernel_chunk_symbols = 256;

/// @return the widest interleave width for `rows` rows and a goal that pads
///         at most 1/8 of the rows (kernel: 32, 16, 8; storage: 64, 32, 16,
///         8), else 1. The storage layout may then choose a narrower width
///         (choose_coding_options).
inline std::uint32_t choose_lanes(std::uint64_t rows, layout_goal goal) {
  static constexpr std::uint32_t widths[] = {64, 32, 16, 8};
  for (std::uint32_t n : widths) {
    if (goal == layout_goal::kernel && n > 32) continue;
    const std::uint64_t padded = (rows + n - 1) / n * n;
    if (n <= rows && (padded - rows) * 8 <= rows) return n;
  }
  return 1;
}

/// @return payload + serialised table in bits for these symbol counts at
///         ScaleBits s, or infinity when the table cannot be built.
inline double coded_bits_at(const std::vector<std::uint64_t>& counts, int s) {
  const std::uint32_t a = std::uint32_t(counts.size());
  if (a == 0 || a > (1u << decode_symbol_bits(s))) return INFINITY;
  std::vector<std::uint32_t> freqs(a);
  if (normalize_frequencies(counts.data(), a, s, freqs.data()) != status::ok) return INFINITY;
  double bits = 0.0;
  for (std::uint32_t k = 0; k < a; ++k)
    if (counts[k] != 0) bits += double(counts[k]) * (double(s) - std::log2(double(freqs[k])));
  std::vector<std::uint8_t> table;
  write_frequency_table(freqs.data(), a, s, &table);
  return bits + 8.0 * double(table.size());
}

/// @return the ScaleBits in [first, last] minimising coded_bits_at (ties go
///         to the smaller table), or 0 if none can hold the alphabet.
///         [7, 15] is the container's range (docs/format.md).
inline int choose_scale_bits(const std::vector<std::uint64_t>& counts, int first = 7, int last = 15) {
  int best = 0;
  double best_bits = INFINITY;
  for (int s = first; s <= last; ++s) {
    const double bits = coded_bits_at(counts, s);
    if (bits < best_bits * (1.0 - 1e-9)) {
      best_bits = bits;
      best = s;
    }
  }
  return best;
}

namespace detail {

/// Lanes and rows per tile of the storage layout (see the file comment), for
/// a tensor of `rows` rows of `row_weights` weights whose container is
/// estimated at `estimated_bytes` (`coded_bytes` of it entropy-coded): the
/// widest width for which the padding rows and at least one block's flushed
/// states fit the budget, with as many blocks (of whole rows) as the budget
/// pays for, so that threads can share a large tensor.
inline void choose_storage_blocks(std::uint64_t rows, std::uint64_t row_weights, double estimated_bytes,
                                  double coded_bytes, coding_options* o) {
  const std::uint32_t widest = choose_lanes(rows, layout_goal::storage);
  const double full_budget = storage_state_fraction * estimated_bytes;
  auto whole_rows = [&](std::uint32_t n, std::uint64_t tile) {
    const std::uint64_t padded_rows = (rows + n - 1) / n * n;
    tile = (tile + n - 1) / n * n;
    const std::uint64_t cap = max_tile_rows / n * n;
    return std::uint32_t(std::min(std::min(tile, padded_rows), cap));
  };
  for (std::uint32_t n = widest; n >= 8 && widest >= 8; n /= 2) {
    // Padding rows are coded too (as the cheapest symbol: at most a real row's cost each).
    const double padding_rows = double((rows + n - 1) / n * n - rows);
    const double budget = full_budget - padding_rows / double(rows) * coded_bytes;
    const double state_bytes = 4.0 * n;
    if (budget <= 0) continue;
    const std::uint64_t max_blocks = std::uint64_t(budget / state_bytes);
    if (max_blocks == 0) continue;
    const std::uint32_t tile = whole_rows(n, (rows + max_blocks - 1) / max_blocks);
    if (state_bytes * double((rows + tile - 1) / tile) <= budget) {
      o->lanes = n;
      o->tile_rows = tile;
      return;
    }
  }
  o->lanes = widest >= 8 ? 8 : widest;
  o->tile_rows = whole_rows(o->lanes, (storage_block_weights + row_weights - 1) / row_weights);
}

}  // namespace detail

/// Coding options for q with the given goal (see the file comment).
inline coding_options choose_coding_options(const quantized_tensor& q, layout_goal goal) {
  coding_options o;
  const std::vector<std::uint64_t> counts = histogram(q.symbols.data(), q.symbols.size(), q.alphabet_size);
  int s = choose_scale_bits(counts);
  const double side_bits = 8.0 * double(q.side_bytes());
  const double best = coded_bits_at(counts, s) + side_bits;
  // The fastest kernel the size allows: for at most 16 symbols gather-free,
  // ScaleBits 7 (one vpermi2b per register) before 8 (two, and a mask: the
  // 4-bit codes decode ~15 % slower), then 32-bit gather tables (<= 12) for
  // at most 256.
  for (const int limit : {7, 8, 12}) {
    if (s <= limit || q.alphabet_size > (limit <= 8 ? 16u : 256u)) continue;
    const int fast = choose_scale_bits(counts, 7, limit);
    if (fast != 0 && coded_bits_at(counts, fast) + side_bits <= best * (1.0 + simd_scale_bits_tolerance)) {
      s = fast;
      break;
    }
  }
  o.scale_bits = s == 0 ? 12 : s;
  if (goal == layout_goal::kernel) {
    o.lanes = choose_lanes(q.rows, goal);
    o.tile_rows = o.lanes;
    o.chunk_symbols = q.symbols_per_row < kernel_chunk_symbols ? q.symbols_per_row : kernel_chunk_symbols;
  } else {
    const double coded_bytes = coded_bits_at(counts, o.scale_bits) / 8.0;
    detail::choose_storage_blocks(q.rows, q.symbols_per_row * q.weights_per_symbol, coded_bytes + side_bits / 8.0,
                                  coded_bytes, &o);
    o.chunk_symbols = q.symbols_per_row;
  }
  return o;
}

/// Encodes q into a container (scheme id, parameters and sections from q).
/// @return the status of encoded_tensor::encode.
inline status encode_quantized(const quantized_tensor& q, const coding_options& o, encoded_tensor* out) {
  tensor_description d;
  d.rows = q.rows;
  d.cols = q.cols;
  d.symbols_per_row = q.symbols_per_row;
  d.alphabet_size = q.alphabet_size;
  d.scheme_id = std::uint32_t(q.kind);
  d.scheme_params = q.params;
  for (const side_section& s : q.sections)
    d.sections.push_back(section_input{std::uint32_t(s.tag), s.item_size, s.bytes.data(), s.bytes.size()});
  return encoded_tensor::encode(q.symbols.data(), d, o, out);
}

/// Side-data lookup over an encoded_tensor_view's sections (host or device
/// pointers, whichever the view holds). Section bounds were validated when
/// the container was opened.
struct container_sections {
  const encoded_tensor_view* view;
  side_span operator()(section_tag tag) const {
    const section_view* s = view->find_section(std::uint32_t(tag));
    if (s == nullptr) return {nullptr, 0};
    return {view->section_data(*s), s->size};
  }
};

/// @return the dequant_geometry of a container.
inline dequant_geometry geometry_of(const tensor_geometry& g) {
  return dequant_geometry{g.rows, g.cols, g.symbols_per_row, g.alphabet_size};
}
/// @return the dequant_geometry of a quantized tensor.
inline dequant_geometry geometry_of(const quantized_tensor& q) {
  return dequant_geometry{q.rows, q.cols, q.symbols_per_row, q.alphabet_size};
}

/// Builds the dequantiser that `kind` and the parameter block describe, over
/// the side data `lookup` finds, checks it against the geometry, and returns
/// f(dequantizer) (f returns an ecq::status). Parameters and sections may be
/// untrusted: every size is checked first.
/// @return f's status; status::unsupported_parameters for an unknown scheme
///         id or a parameter block that does not parse; status::bad_shape if
///         the sections or the geometry do not fit the parameters.
template <class Lookup, class F>
status visit_dequantizer(std::uint32_t kind, const std::uint8_t* params, std::size_t params_size, const Lookup& lookup,
                         const dequant_geometry& g, F&& f) {
  switch (scheme_kind(kind)) {
    case scheme_kind::affine:
    case scheme_kind::codebook: {
      affine_params p;
      status st = affine_params::parse(params, params_size, &p);
      if (st != status::ok) return st;
      const bool is_affine = scheme_kind(kind) == scheme_kind::affine;
      visit_code_packing(p.bits, p.codes_per_symbol, p.raw_bits, [&](auto packing) {
        using P = decltype(packing);
        if (is_affine) {
          affine_dequantizer<P> dq{};
          st = make_affine_dequantizer(p, lookup, g, &dq);
          if (st == status::ok) st = f(dq);
        } else {
          codebook_dequantizer<P> dq{};
          st = make_codebook_dequantizer(p, lookup, g, &dq);
          if (st == status::ok) st = f(dq);
        }
      });
      return st;
    }
    case scheme_kind::uniform: {
      uniform_params p;
      status st = uniform_params::parse(params, params_size, &p);
      if (st != status::ok) return st;
      uniform_dequantizer dq{};
      st = make_uniform_dequantizer(p, lookup, g, &dq);
      return st == status::ok ? f(dq) : st;
    }
    case scheme_kind::bf16:
    case scheme_kind::f16: {
      if (params_size != 0) return status::unsupported_parameters;
      if (scheme_kind(kind) == scheme_kind::bf16) {
        float16_dequantizer<float16_format::bfloat16> dq{};
        const status st = make_float16_dequantizer(lookup, g, &dq);
        return st == status::ok ? f(dq) : st;
      }
      float16_dequantizer<float16_format::binary16> dq{};
      const status st = make_float16_dequantizer(lookup, g, &dq);
      return st == status::ok ? f(dq) : st;
    }
    case scheme_kind::f32: {
      if (params_size != 0) return status::unsupported_parameters;
      float32_dequantizer dq{};
      const status st = make_float32_dequantizer(lookup, g, &dq);
      return st == status::ok ? f(dq) : st;
    }
  }
  return status::unsupported_parameters;
}

/// visit_dequantizer for an opened container (host pointers).
template <class F>
status visit_dequantizer(const encoded_tensor& t, F&& f) {
  const encoded_tensor_view v = t.view();
  return visit_dequantizer(t.geometry().scheme_id, t.scheme_params(), t.scheme_params_size(), container_sections{&v},
                           geometry_of(t.geometry()), f);
}

/// visit_dequantizer for a quantized tensor (before encoding).
template <class F>
status visit_dequantizer(const quantized_tensor& q, F&& f) {
  return visit_dequantizer(std::uint32_t(q.kind), q.params.data(), q.params.size(), quantized_tensor_sections{&q},
                           geometry_of(q), f);
}

/// Dequantises a whole tensor: decoded symbols (rows x symbols_per_row) with
/// the dequantiser the scheme id, parameters and side data describe, into
/// out (rows * cols floats). The parameters and side data are checked before
/// anything is allocated.
/// @return status::ok or the status of visit_dequantizer.
template <class Lookup, class Symbol>
status dequantize(std::uint32_t kind, const std::uint8_t* params, std::size_t params_size, const Lookup& lookup,
                  const dequant_geometry& g, const Symbol* symbols, std::vector<float>* out) {
  return visit_dequantizer(kind, params, params_size, lookup, g, [&](const auto& dq) {
    out->assign(std::size_t(g.rows * g.cols), 0.0f);
    dequantize_tensor(dq, symbols, g.rows, g.cols, g.symbols_per_row, out->data());
    return status::ok;
  });
}

/// Dequantises a quantized tensor (the reference for SQNR and for tests).
inline status dequantize(const quantized_tensor& q, std::vector<float>* out) {
  return dequantize(std::uint32_t(q.kind), q.params.data(), q.params.size(), quantized_tensor_sections{&q},
                    geometry_of(q), q.symbols.data(), out);
}

/// Default limit on the weights decode_and_dequantize produces. A container
/// whose symbols are nearly all one symbol codes a huge tensor in a few
/// bytes; a decoder of untrusted files bounds what it allocates.
inline constexpr std::uint64_t default_max_decoded_weights = std::uint64_t(1) << 31;

/// CHECKED: decodes and dequantises an opened container into out (rows *
/// cols floats). Parameters and side data are checked first, then the size.
/// The portable reference, on one thread (encoded_tensor::decode_checked, then
/// the scheme's dequantiser): tests and fuzzers compare the dispatched path
/// with it. Engines call ecq::decode_to_float (ecq/cpu/tensor_ops.hpp), which
/// returns the same status and weights through the SIMD kernels on every core.
/// @return status::ok; the status of visit_dequantizer (checked first);
///         status::output_too_small if rows * cols or rows * symbols_per_row
///         exceeds max_weights; else the status of decode_checked.
inline status decode_and_dequantize(const encoded_tensor& t, std::vector<float>* out,
                                    std::uint64_t max_weights = default_max_decoded_weights) {
  const tensor_geometry& g = t.geometry();
  const encoded_tensor_view v = t.view();
  const container_sections lookup{&v};
  status st = visit_dequantizer(g.scheme_id, t.scheme_params(), t.scheme_params_size(), lookup, geometry_of(g),
                                [](const auto&) { return status::ok; });
  if (st != status::ok) return st;
  if (g.cols > max_weights / g.rows || g.symbols_per_row > max_weights / g.rows) return status::output_too_small;
  std::vector<std::uint16_t> symbols(std::size_t(g.rows * g.symbols_per_row));
  st = t.decode_checked(symbols.data(), symbols.size());
  if (st != status::ok) return st;
  return dequantize(g.scheme_id, t.scheme_params(), t.scheme_params_size(), lookup, geometry_of(g), symbols.data(),
                    out);
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_SCHEME_HPP
