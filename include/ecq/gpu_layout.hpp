// ecq/gpu_layout.hpp — READ ME FIRST
//
// The GPU layout of a container (docs/format.md section 15): what the CUDA
// collectives (ecq/warp_decode.cuh, ecq/fused_gemv.cuh, ecq/device_decode.cuh)
// read, expressed with the container's ordinary byte format, so that a file
// written once by the library's encoder (ecq/gpu_container.hpp) or by
// `ecq pack --layout gpu` goes to the GPU as it is. This header holds the
// numbers and bit placements both sides agree on; it is device-usable and
// includes nothing host-only.
//
// Geometry (fixed; a reader rejects anything else): lanes = tile_rows = 32,
// so a block is one 32-row tile and lane r of a warp decodes row r; a chunk
// is 256 weights (chunk_symbols = 256 / weights per symbol), so cols must be
// a multiple of 256; rows is any count from 1 (the last tile's missing rows
// are the container's padding rows, and every kernel leaves them out).
// ScaleBits 10..12 with every frequency <= 255, so that the narrow decode
// table (ecq/narrow_decode_table.hpp) of 2^S 32-bit entries exists.
//
// Schemes (ids from 8 up; 6 and 7 are reserved for the tool's schemes):
//   8  bf16 pairs, lossless. Symbol of weights (2c, 2c+1) of a row =
//      rank(e0) * E + rank(e1), e = the 8 exponent bits, rank = position in
//      the list of the E distinct exponents (scheme parameters: u8 E in
//      1..64, then the E exponents in increasing order). alphabet = E * E.
//      Section 10 holds the sign and mantissa bytes as raw units.
//   9  affine 4-bit, four codes per symbol (symbol_packing<4, 4, 2>: the
//      high 2 bits of codes 4c..4c+3). Scheme parameters are affine's 8 bytes
//      (ecq/schemes/affine.hpp) with b = 4, bfloat16 side data, C = 4, R' = 2
//      and a group size G of 64, 128 or 256. Section 10 holds the low 2 bits
//      of the codes as raw units, section 11 the scales and biases.
//
// Sections, both in block order (block b = tile * chunks + chunk, as the
// container stores its streams), each block's part of a fixed size:
//   10 raw units (item size 16): per block, rounds / 8 units; a unit is 8
//      rounds x 32 rows x unit_words u32 words, [unit][row][word], so one
//      warp load fetches a unit for all 32 lanes. Where a round's bits sit in
//      its unit: raw_unit_word / raw_unit_shift below.
//   11 group side data (item size 4, scheme 9): per block, per group of the
//      chunk (256 / G), 32 u32 words, one per row: scale | bias << 16 as
//      bfloat16 bit patterns.
// Padding rows have zero raw bits and zero side words.
#ifndef ECQ_GPU_LAYOUT_HPP
#define ECQ_GPU_LAYOUT_HPP

#include <cstdint>

#include "config.hpp"

ECQ_NAMESPACE_BEGIN

namespace gpu_layout {

inline constexpr std::uint32_t bf16_pairs_scheme = 8;
inline constexpr std::uint32_t affine4_scheme = 9;
inline constexpr std::uint32_t raw_units_tag = 10;
inline constexpr std::uint32_t group_side_tag = 11;

/// One warp per block, one lane per row.
inline constexpr std::uint32_t tile_rows = 32;
/// Weights per chunk: whole 128-byte output rows for the decode-to-memory
/// kernels (64 4-bit rounds = 128 bytes of nibbles, 128 bf16 rounds = 512
/// bytes), and whole groups for G <= 256.
inline constexpr std::uint32_t chunk_weights = 256;
/// Rounds per raw unit: the fused GEMV's block of rounds.
inline constexpr std::uint32_t rounds_per_unit = 8;
inline constexpr int min_scale_bits = 10;
inline constexpr int max_scale_bits = 12;
/// Distinct exponents scheme 8 can list (6 bits of rank per weight).
inline constexpr std::uint32_t max_exponents = 64;

/// Weights per symbol of a GPU-layout scheme (0 for any other id).
ECQ_HOST_DEVICE constexpr std::uint32_t weights_per_symbol(std::uint32_t scheme_id) {
  return scheme_id == bf16_pairs_scheme ? 2u : scheme_id == affine4_scheme ? 4u : 0u;
}
/// u32 words per row and unit in section 10.
ECQ_HOST_DEVICE constexpr std::uint32_t unit_words(std::uint32_t scheme_id) {
  return scheme_id == bf16_pairs_scheme ? 4u : 2u;
}
/// Rounds (symbol columns) per block.
ECQ_HOST_DEVICE constexpr std::uint32_t rounds_per_block(std::uint32_t scheme_id) {
  return chunk_weights / weights_per_symbol(scheme_id);
}
/// u32 words of section 10 per block.
ECQ_HOST_DEVICE constexpr std::uint32_t raw_words_per_block(std::uint32_t scheme_id) {
  return rounds_per_block(scheme_id) / rounds_per_unit * tile_rows * unit_words(scheme_id);
}
/// u32 words of section 11 per block for group size g.
ECQ_HOST_DEVICE constexpr std::uint32_t side_words_per_block(std::uint32_t group_size) {
  return chunk_weights / group_size * tile_rows;
}

/// Word of a block's section-10 data that holds round k of row r.
ECQ_HOST_DEVICE constexpr std::uint32_t raw_unit_word(std::uint32_t scheme_id, std::uint32_t k, std::uint32_t r) {
  return (k / rounds_per_unit * tile_rows + r) * unit_words(scheme_id) +
         (k % rounds_per_unit) / (scheme_id == bf16_pairs_scheme ? 2u : 4u);
}

/// Scheme 8: the raw byte of a bf16 pattern (sign << 7 | mantissa) and the
/// 16 bits of round k, byte(2c) | byte(2c + 1) << 8, at bit 16 (k % 2) of
/// its word.
ECQ_HOST_DEVICE constexpr std::uint32_t bf16_raw_byte(std::uint16_t bf16) {
  return (std::uint32_t(bf16) & 0x7fu) | ((std::uint32_t(bf16) >> 8) & 0x80u);
}
ECQ_HOST_DEVICE constexpr std::uint32_t bf16_raw_bits(std::uint32_t k, std::uint16_t w0, std::uint16_t w1) {
  return (bf16_raw_byte(w0) | (bf16_raw_byte(w1) << 8)) << (16 * (k % 2));
}
/// Scheme 8: the narrow payload of a symbol whose exponents are e0, e1:
/// e0 | e1 << 8, which the bf16 fragment shifts into place.
ECQ_HOST_DEVICE constexpr std::uint32_t bf16_payload(std::uint32_t e0, std::uint32_t e1) { return e0 | (e1 << 8); }

/// Scheme 9: the bits of round q = k % 4 of its word for the low bits
/// l0..l3 of the four codes: l0 at [4q, 4q+2), l2 at [4q+2, 4q+4), l1 at
/// [16+4q, 18+4q), l3 at [18+4q, 20+4q) (where the tensor-core fragment
/// needs them, ecq/gemv_dequant.cuh).
ECQ_HOST_DEVICE constexpr std::uint32_t affine4_raw_bits(std::uint32_t q, std::uint32_t l0, std::uint32_t l1,
                                                         std::uint32_t l2, std::uint32_t l3) {
  return (l0 << (4 * q)) | (l2 << (4 * q + 2)) | (l1 << (16 + 4 * q)) | (l3 << (18 + 4 * q));
}
/// Scheme 9, fused GEMV: payload h0 << 2 | h2 << 4 | (h1 << 2 | h3 << 4) << 8
/// for the symbol's high bits h_j = (s >> 2j) & 3.
ECQ_HOST_DEVICE constexpr std::uint32_t affine4_gemv_payload(std::uint32_t s) {
  return ((s & 3u) << 2) | (((s >> 4) & 3u) << 4) | ((((s >> 2) & 3u) << 2) << 8) | (((s >> 6) & 3u) << 12);
}
/// Scheme 9, decode to codes: payload h0 << 2 | h1 << 6 | (h2 << 2 | h3 << 6)
/// << 8, so that the low bits complete two bytes of two nibbles each.
ECQ_HOST_DEVICE constexpr std::uint32_t affine4_code_payload(std::uint32_t s) {
  return ((s & 3u) << 2) | (((s >> 2) & 3u) << 6) | ((((s >> 4) & 3u) << 2) << 8) | (((s >> 6) & 3u) << 14);
}

}  // namespace gpu_layout

ECQ_NAMESPACE_END

#endif  // ECQ_GPU_LAYOUT_HPP
