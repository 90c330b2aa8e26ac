// ecq/gpu_container.hpp — READ ME FIRST
//
// Containers in the GPU layout (ecq/gpu_layout.hpp, docs/format.md section
// 15), on the host: the library's encoder for the two schemes the CUDA
// kernels run, the reader's check of a container against the layout, and
// the narrow decode tables the kernels take. Host only.
//
//   encode_gpu_bf16     bf16 bit patterns -> scheme 8 (lossless)
//   encode_gpu_affine4  4-bit codes + bfloat16 scales and biases -> scheme 9
//                       (affine_quantize of ecq/schemes/affine.hpp with
//                       side_format bfloat16 makes them from floats)
//   check_gpu_layout    CHECKED: every rule of section 15 on an opened
//                       container (open has already checked the format's own
//                       rules); fills the gpu_tensor_layout a device loader
//                       needs. After it, a kernel that follows the layout
//                       reads and writes only inside the container's
//                       regions, whatever the stream bytes hold.
//   build_gpu_table     the 2^S narrow entries with the payload a kernel wants
//                       (fused GEMV / bf16 decode, or 4-bit codes).
//   gpu_dequantize      CHECKED: the weights on the host (decode_checked and
//                       the sections), for tools and tests; the GPU path is
//                       ecq/device_decode.cuh.
//
// Both encoders pick the largest ScaleBits in [10, 12] whose optimal table has
// every frequency <= 255 and the alphabet within 2^S; a tensor with none (a
// symbol of probability above 255/1024, e.g. a constant tensor) is
// unsupported_parameters: it has no GPU layout.
#ifndef ECQ_GPU_CONTAINER_HPP
#define ECQ_GPU_CONTAINER_HPP

#include <cstdint>
#include <cstring>
#include <vector>

#include "config.hpp"
#include "container.hpp"
#include "frequency_table.hpp"
#include "gpu_layout.hpp"
#include "narrow_decode_table.hpp"
#include "schemes/affine.hpp"
#include "schemes/float_formats.hpp"
#include "status.hpp"
#include "symbol_packing.hpp"

ECQ_NAMESPACE_BEGIN

/// What a device loader needs of a container that check_gpu_layout accepted.
/// Offsets are from the container's first byte.
struct gpu_tensor_layout {
  std::uint32_t scheme_id = 0;
  std::uint32_t rows = 0, cols = 0;
  std::uint32_t tiles = 0, chunks = 0;      // blocks = tiles * chunks
  std::uint32_t rounds = 0;                 // symbol columns per block
  std::uint32_t scale_bits = 0;
  std::uint32_t group_size = 0;             // scheme 9; 0 for scheme 8
  std::uint32_t raw_words = 0, side_words = 0;  // per block
  std::uint64_t index_offset = 0, payload_offset = 0, raw_offset = 0, side_offset = 0;
  std::uint64_t container_size = 0;
  std::uint32_t num_exponents = 0;          // scheme 8
  std::uint8_t exponents[gpu_layout::max_exponents] = {};
};

namespace detail {

/// The largest S in [10, 12] with alphabet <= 2^S whose optimal table has
/// every frequency <= 255; writes it to freqs. @return S, or 0 if none.
inline int choose_gpu_scale_bits(const std::vector<std::uint64_t>& counts, std::vector<std::uint32_t>* freqs) {
  const std::uint32_t a = std::uint32_t(counts.size());
  freqs->assign(a, 0);
  for (int s = gpu_layout::max_scale_bits; s >= gpu_layout::min_scale_bits; --s) {
    if (a > (std::uint32_t(1) << s)) continue;
    if (normalize_frequencies(counts.data(), a, s, freqs->data()) != status::ok) return 0;
    bool fits = true;
    for (std::uint32_t k = 0; k < a && fits; ++k) fits = (*freqs)[k] <= narrow_entry::max_frequency;
    if (fits) return s;
  }
  return 0;
}

/// Encodes row-major symbols with the fixed GPU geometry. The table is the
/// real symbols' alone: counting the padding rows (which the container codes
/// as the most frequent symbol) would push that symbol past the narrow
/// limit in small tensors, where up to 31 of every 32 rows can be padding.
inline status encode_gpu_symbols(const std::vector<std::uint16_t>& symbols, std::uint64_t rows, std::uint64_t cols,
                                 std::uint32_t alphabet, tensor_description d, encoded_tensor* out) {
  const std::uint32_t w = gpu_layout::weights_per_symbol(d.scheme_id);
  std::vector<std::uint64_t> counts(alphabet, 0);
  for (std::uint16_t s : symbols) ++counts[s];
  std::vector<std::uint32_t> freqs;
  const int s = choose_gpu_scale_bits(counts, &freqs);
  if (s == 0) return status::unsupported_parameters;
  d.rows = rows;
  d.cols = cols;
  d.symbols_per_row = cols / w;
  d.alphabet_size = alphabet;
  coding_options o;
  o.scale_bits = s;
  o.lanes = gpu_layout::tile_rows;
  o.tile_rows = gpu_layout::tile_rows;
  o.chunk_symbols = gpu_layout::rounds_per_block(d.scheme_id);
  o.frequencies = freqs.data();
  return encoded_tensor::encode(symbols.data(), d, o, out);
}

/// Shape rules shared by the encoders and the checker: rows in [1, 2^31),
/// cols a multiple of 256 below 2^31 (32-bit row and column indices in the
/// kernels).
inline bool gpu_shape_ok(std::uint64_t rows, std::uint64_t cols) {
  return rows >= 1 && rows < (std::uint64_t(1) << 31) && cols >= gpu_layout::chunk_weights &&
         cols < (std::uint64_t(1) << 31) && cols % gpu_layout::chunk_weights == 0;
}

}  // namespace detail

/// Encodes bf16 bit patterns w[0 .. rows * cols) (row-major) as scheme 8.
/// @return status::ok; status::bad_shape if rows is 0 or 2^31 or more, or
///         cols is not a multiple of 256 (or 2^31 or more);
///         status::unsupported_parameters if more than 64 distinct exponents
///         occur or no ScaleBits admits a narrow table; else the status of
///         encoded_tensor::encode.
inline status encode_gpu_bf16(const std::uint16_t* w, std::uint64_t rows, std::uint64_t cols, encoded_tensor* out) {
  *out = encoded_tensor{};
  if (!detail::gpu_shape_ok(rows, cols)) return status::bad_shape;
  const std::size_t n = std::size_t(rows * cols);
  bool present[256] = {};
  for (std::size_t i = 0; i < n; ++i) present[(w[i] >> 7) & 0xffu] = true;
  std::uint32_t rank[256] = {}, e = 0;
  tensor_description d;
  d.scheme_id = gpu_layout::bf16_pairs_scheme;
  d.scheme_params.push_back(0);  // E, set below
  for (std::uint32_t x = 0; x < 256; ++x)
    if (present[x]) {
      rank[x] = e++;
      d.scheme_params.push_back(std::uint8_t(x));
    }
  if (e > gpu_layout::max_exponents) return status::unsupported_parameters;
  d.scheme_params[0] = std::uint8_t(e);
  std::vector<std::uint16_t> symbols(n / 2);
  for (std::size_t i = 0; i < n / 2; ++i)
    symbols[i] = std::uint16_t(rank[(w[2 * i] >> 7) & 0xffu] * e + rank[(w[2 * i + 1] >> 7) & 0xffu]);

  const std::uint32_t sid = gpu_layout::bf16_pairs_scheme, rounds = gpu_layout::rounds_per_block(sid);
  const std::uint64_t tiles = (rows + gpu_layout::tile_rows - 1) / gpu_layout::tile_rows;
  const std::uint64_t chunks = cols / gpu_layout::chunk_weights, per_block = gpu_layout::raw_words_per_block(sid);
  std::vector<std::uint32_t> raw(std::size_t(tiles * chunks * per_block), 0);
  for (std::uint64_t row = 0; row < rows; ++row) {
    const std::uint64_t t = row / gpu_layout::tile_rows;
    const std::uint32_t r = std::uint32_t(row % gpu_layout::tile_rows);
    for (std::uint64_t k = 0; k < chunks; ++k) {
      std::uint32_t* block = raw.data() + (t * chunks + k) * per_block;
      const std::uint16_t* src = w + row * cols + k * gpu_layout::chunk_weights;
      for (std::uint32_t c = 0; c < rounds; ++c)
        block[gpu_layout::raw_unit_word(sid, c, r)] |= gpu_layout::bf16_raw_bits(c, src[2 * c], src[2 * c + 1]);
    }
  }
  d.sections.push_back({gpu_layout::raw_units_tag, 16, raw.data(), std::uint64_t(raw.size()) * 4});
  return detail::encode_gpu_symbols(symbols, rows, cols, e * e, d, out);
}

/// Encodes 4-bit codes[0 .. rows * cols) (row-major, each < 16) with their
/// bfloat16 scales and biases ([row][group], rows * cols / group_size each)
/// as scheme 9; weight = scale * code + bias.
/// @return status::ok; status::bad_shape as encode_gpu_bf16;
///         status::invalid_argument for a group size other than 64, 128 or
///         256, a code >= 16, or side arrays of the wrong length;
///         status::unsupported_parameters if no ScaleBits admits a narrow
///         table; else the status of encoded_tensor::encode.
inline status encode_gpu_affine4(const std::uint8_t* codes, const std::vector<std::uint16_t>& scales,
                                 const std::vector<std::uint16_t>& biases, std::uint64_t rows, std::uint64_t cols,
                                 std::uint32_t group_size, encoded_tensor* out) {
  *out = encoded_tensor{};
  if (!detail::gpu_shape_ok(rows, cols)) return status::bad_shape;
  if (group_size != 64 && group_size != 128 && group_size != 256) return status::invalid_argument;
  const std::size_t n = std::size_t(rows * cols), gpr = std::size_t(cols / group_size);
  if (scales.size() != rows * gpr || biases.size() != rows * gpr) return status::invalid_argument;
  using packing = symbol_packing<4, 4, 2>;
  std::vector<std::uint16_t> symbols(n / 4);
  for (std::size_t i = 0; i < n; ++i)
    if (codes[i] > 15) return status::invalid_argument;
  for (std::size_t i = 0; i < n / 4; ++i) symbols[i] = std::uint16_t(packing::symbol_of(codes + 4 * i));

  const std::uint32_t sid = gpu_layout::affine4_scheme, rounds = gpu_layout::rounds_per_block(sid);
  const std::uint64_t tiles = (rows + gpu_layout::tile_rows - 1) / gpu_layout::tile_rows;
  const std::uint64_t chunks = cols / gpu_layout::chunk_weights, per_block = gpu_layout::raw_words_per_block(sid);
  const std::uint32_t groups_per_chunk = gpu_layout::chunk_weights / group_size;
  const std::uint64_t side_per_block = gpu_layout::side_words_per_block(group_size);
  std::vector<std::uint32_t> raw(std::size_t(tiles * chunks * per_block), 0);
  std::vector<std::uint32_t> side(std::size_t(tiles * chunks * side_per_block), 0);
  for (std::uint64_t row = 0; row < rows; ++row) {
    const std::uint64_t t = row / gpu_layout::tile_rows;
    const std::uint32_t r = std::uint32_t(row % gpu_layout::tile_rows);
    for (std::uint64_t k = 0; k < chunks; ++k) {
      const std::uint64_t b = t * chunks + k;
      std::uint32_t* block = raw.data() + b * per_block;
      const std::uint8_t* q = codes + row * cols + k * gpu_layout::chunk_weights;
      for (std::uint32_t c = 0; c < rounds; ++c)
        block[gpu_layout::raw_unit_word(sid, c, r)] |=
            gpu_layout::affine4_raw_bits(c % 4, q[4 * c] & 3u, q[4 * c + 1] & 3u, q[4 * c + 2] & 3u, q[4 * c + 3] & 3u);
      for (std::uint32_t g = 0; g < groups_per_chunk; ++g) {
        const std::size_t gi = std::size_t(row) * gpr + std::size_t(k) * groups_per_chunk + g;
        side[std::size_t(b * side_per_block) + g * gpu_layout::tile_rows + r] =
            std::uint32_t(scales[gi]) | (std::uint32_t(biases[gi]) << 16);
      }
    }
  }
  affine_params p;
  p.bits = 4;
  p.group_size = group_size;
  p.side_format = float16_format::bfloat16;
  p.codes_per_symbol = 4;
  p.raw_bits = 2;
  tensor_description d;
  d.scheme_id = sid;
  p.serialize(&d.scheme_params);
  d.sections.push_back({gpu_layout::raw_units_tag, 16, raw.data(), std::uint64_t(raw.size()) * 4});
  d.sections.push_back({gpu_layout::group_side_tag, 4, side.data(), std::uint64_t(side.size()) * 4});
  return detail::encode_gpu_symbols(symbols, rows, cols, packing::alphabet_size, d, out);
}

/// CHECKED: the rules of docs/format.md section 15 on an opened container.
/// @return status::ok (and *out filled); status::invalid_argument if t holds
///         nothing; status::unsupported_parameters for a scheme id other than
///         8 or 9, a coder configuration or ScaleBits outside the layout,
///         scheme parameters of the wrong size or values, or a frequency
///         above 255; status::bad_shape for a geometry, alphabet or section
///         set (tags, item sizes, sizes) other than the layout's.
inline status check_gpu_layout(const encoded_tensor& t, gpu_tensor_layout* out) {
  *out = gpu_tensor_layout{};
  if (t.data() == nullptr) return status::invalid_argument;
  const tensor_geometry& g = t.geometry();
  const std::uint32_t sid = g.scheme_id, w = gpu_layout::weights_per_symbol(sid);
  if (w == 0 || g.scale_bits < std::uint32_t(gpu_layout::min_scale_bits) ||
      g.scale_bits > std::uint32_t(gpu_layout::max_scale_bits))
    return status::unsupported_parameters;
  for (std::uint32_t f : t.frequencies())
    if (f > narrow_entry::max_frequency) return status::unsupported_parameters;
  gpu_tensor_layout L;
  L.scheme_id = sid;
  const std::uint8_t* params = t.scheme_params();
  const std::size_t params_size = t.scheme_params_size();
  std::uint32_t alphabet = 0;
  if (sid == gpu_layout::bf16_pairs_scheme) {
    if (params_size < 2 || params[0] == 0 || params[0] > gpu_layout::max_exponents || params_size != 1u + params[0])
      return status::unsupported_parameters;
    L.num_exponents = params[0];
    for (std::uint32_t i = 0; i < L.num_exponents; ++i) {
      L.exponents[i] = params[1 + i];
      if (i > 0 && L.exponents[i] <= L.exponents[i - 1]) return status::unsupported_parameters;
    }
    alphabet = L.num_exponents * L.num_exponents;
  } else {
    affine_params p;
    if (affine_params::parse(params, params_size, &p) != status::ok || p.bits != 4 || p.codes_per_symbol != 4 ||
        p.raw_bits != 2 || p.side_format != float16_format::bfloat16 ||
        (p.group_size != 64 && p.group_size != 128 && p.group_size != 256))
      return status::unsupported_parameters;
    L.group_size = p.group_size;
    alphabet = symbol_packing<4, 4, 2>::alphabet_size;
  }
  if (!detail::gpu_shape_ok(g.rows, g.cols) || g.lanes != gpu_layout::tile_rows ||
      g.tile_rows != gpu_layout::tile_rows || g.symbols_per_row != g.cols / w ||
      g.chunk_symbols != gpu_layout::rounds_per_block(sid) || g.alphabet_size != alphabet)
    return status::bad_shape;
  L.rows = std::uint32_t(g.rows);
  L.cols = std::uint32_t(g.cols);
  L.tiles = std::uint32_t(g.num_tiles());
  L.chunks = std::uint32_t(g.num_chunks());
  L.rounds = gpu_layout::rounds_per_block(sid);
  L.scale_bits = g.scale_bits;
  L.raw_words = gpu_layout::raw_words_per_block(sid);
  L.side_words = sid == gpu_layout::affine4_scheme ? gpu_layout::side_words_per_block(L.group_size) : 0;
  const encoded_tensor_view v = t.view();
  const std::uint64_t blocks = std::uint64_t(L.tiles) * L.chunks;
  const std::uint32_t want_sections = sid == gpu_layout::affine4_scheme ? 2 : 1;
  if (v.num_sections != want_sections) return status::bad_shape;
  const section_view* raw = v.find_section(gpu_layout::raw_units_tag);
  if (raw == nullptr || raw->item_size != 16 || raw->size != blocks * L.raw_words * 4) return status::bad_shape;
  L.raw_offset = raw->offset;
  if (sid == gpu_layout::affine4_scheme) {
    const section_view* side = v.find_section(gpu_layout::group_side_tag);
    if (side == nullptr || side->item_size != 4 || side->size != blocks * L.side_words * 4) return status::bad_shape;
    L.side_offset = side->offset;
  }
  L.index_offset = v.index_offset;
  L.payload_offset = v.payload_offset;
  L.container_size = t.size();
  *out = L;
  return status::ok;
}

/// Which payload a narrow table carries.
enum class gpu_table_kind {
  gemv,   // the fused GEMV's (scheme 8: both exponents, also the bf16 decode's; scheme 9: the fragment's high bits)
  codes,  // scheme 9 decode to 4-bit codes
};

/// The 2^scale_bits narrow entries of a container check_gpu_layout accepted.
/// @return status::ok; status::invalid_argument for kind codes with scheme 8;
///         else the status of build_narrow_decode_table.
inline status build_gpu_table(const encoded_tensor& t, const gpu_tensor_layout& L, gpu_table_kind kind,
                              std::vector<std::uint32_t>* entries) {
  entries->assign(std::size_t(1) << L.scale_bits, 0);
  const std::vector<std::uint32_t>& f = t.frequencies();
  const std::uint32_t a = std::uint32_t(f.size());
  if (L.scheme_id == gpu_layout::bf16_pairs_scheme) {
    if (kind != gpu_table_kind::gemv) return status::invalid_argument;
    const std::uint32_t e = L.num_exponents;
    return build_narrow_decode_table(
        f.data(), a, int(L.scale_bits),
        [&](std::uint32_t s) { return gpu_layout::bf16_payload(L.exponents[s / e], L.exponents[s % e]); },
        entries->data());
  }
  if (kind == gpu_table_kind::gemv)
    return build_narrow_decode_table(f.data(), a, int(L.scale_bits), gpu_layout::affine4_gemv_payload,
                                     entries->data());
  return build_narrow_decode_table(f.data(), a, int(L.scale_bits), gpu_layout::affine4_code_payload,
                                   entries->data());
}

/// CHECKED: the weights of a GPU-layout container, row-major rows x cols, on
/// the host: scheme 8 the bf16 values exactly, scheme 9 scale * code + bias
/// (float, as ecq/schemes/affine.hpp computes it).
/// @return status::ok; the status of check_gpu_layout; the status of
///         encoded_tensor::decode_checked (corrupt or truncated streams).
inline status gpu_dequantize(const encoded_tensor& t, std::vector<float>* out) {
  out->clear();
  gpu_tensor_layout L;
  status st = check_gpu_layout(t, &L);
  if (st != status::ok) return st;
  const std::uint64_t spr = t.geometry().symbols_per_row;
  std::vector<std::uint16_t> symbols(std::size_t(L.rows * spr));
  if ((st = t.decode_checked(symbols.data(), symbols.size())) != status::ok) return st;
  const std::uint8_t* raw = t.data() + L.raw_offset;
  auto word = [](const std::uint8_t* p, std::uint64_t i) {
    return std::uint32_t(p[4 * i]) | std::uint32_t(p[4 * i + 1]) << 8 | std::uint32_t(p[4 * i + 2]) << 16 |
           std::uint32_t(p[4 * i + 3]) << 24;
  };
  std::vector<float> w(std::size_t(L.rows) * L.cols);
  for (std::uint64_t row = 0; row < L.rows; ++row) {
    const std::uint32_t r = std::uint32_t(row % gpu_layout::tile_rows);
    for (std::uint64_t c = 0; c < spr; ++c) {
      const std::uint64_t block = row / gpu_layout::tile_rows * L.chunks + c / L.rounds;
      const std::uint32_t k = std::uint32_t(c % L.rounds), s = symbols[std::size_t(row * spr + c)];
      const std::uint32_t bits = word(raw, block * L.raw_words + gpu_layout::raw_unit_word(L.scheme_id, k, r));
      float* dst = w.data() + row * L.cols;
      if (L.scheme_id == gpu_layout::bf16_pairs_scheme) {
        const std::uint32_t e = L.num_exponents, half = bits >> (16 * (k % 2));
        for (std::uint32_t j = 0; j < 2; ++j) {
          const std::uint32_t b = (half >> (8 * j)) & 0xffu, x = L.exponents[j == 0 ? s / e : s % e];
          dst[2 * c + j] = bf16_to_float(std::uint16_t((b & 0x80u) << 8 | x << 7 | (b & 0x7fu)));
        }
      } else {
        const std::uint32_t q = k % 4, at[4] = {4 * q, 16 + 4 * q, 4 * q + 2, 18 + 4 * q};
        const std::uint64_t g = (c * 4) % gpu_layout::chunk_weights / L.group_size;
        const std::uint32_t side = word(t.data() + L.side_offset, block * L.side_words + g * gpu_layout::tile_rows + r);
        const float scale = bf16_to_float(std::uint16_t(side & 0xffffu)), bias = bf16_to_float(std::uint16_t(side >> 16));
        for (std::uint32_t j = 0; j < 4; ++j) {
          const std::uint32_t code = ((s >> (2 * j)) & 3u) << 2 | ((bits >> at[j]) & 3u);
          dst[4 * c + j] = scale * float(code) + bias;
        }
      }
    }
  }
  *out = std::move(w);
  return status::ok;
}

ECQ_NAMESPACE_END

#endif  // ECQ_GPU_CONTAINER_HPP
