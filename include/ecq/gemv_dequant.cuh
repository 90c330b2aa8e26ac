// ecq/gemv_dequant.cuh — READ ME FIRST
//
// Dequantisers for the fused GEMV (ecq/fused_gemv.cuh): they turn one
// decoded table entry (ecq/narrow_decode_table.hpp) plus the lane's raw bits
// into bf16x2 B fragments for warp_row_dot (ecq/warp_row_dot.cuh), in a few
// integer instructions and without any per-weight floating-point work.
//
// Both keep everything the symbol alone determines in the narrow entry's
// 16-bit payload, already at the bit positions of the fragment, and the raw
// bits of each row in a "kernel layout": units of 8 rounds, one per row, the
// tile's rows contiguous (32 or 64: one coalesced warp load of 32 *
// unit_words words per row set), unit after unit along the item. Within a unit the bits sit where the
// fragment needs them, so a round costs a shift and two LOP3s per register.
//
// bf16_pair_dequant (lossless bf16, two weights per symbol)
//   symbol  = the ranks of the 8-bit exponents of weights 2c and 2c+1 of a
//             row in the tensor's list of exponents (6 bits each: at most 64
//             distinct exponents, checked by the encoder);
//   payload = e0 | e1 << 8 (the exponents themselves);
//   raw     = per round 16 bits: byte(2c) | byte(2c+1) << 8 with
//             byte = sign << 7 | mantissa (the scheme's raw byte,
//             ecq/schemes/float16.hpp); unit = 8 rounds = 4 words, round k in
//             bits [16 (k % 8), 16 (k % 8) + 16) of the little-endian 16 bytes.
//   Fragment: prmt with sign replication puts sign and mantissa in place,
//             (entry << 7) puts both exponents in place, one LOP3 merges:
//             the weights come out bit-exact.
//
// affine4_quad_dequant<GroupSize> (4-bit affine codes, four per symbol)
//   symbol  = symbol_packing<4, 4, 2>: the high 2 bits of codes 4c..4c+3
//             (code j's in bits [2j, 2j + 2));
//   payload = h0 << 2 | h2 << 4 | (h1 << 2 | h3 << 4) << 8, so that
//             masking in the raw bits under 128 = 0x4300 (which supplies
//             the exponent; the code lands in the mantissa) makes the bf16
//             pairs (128 + q0, 128 + q1) and (128 + 4 q2, 128 + 4 q3), and
//             one bf16x2 subtraction of (136, 136) and (160, 160) makes the
//             fragments b0 = (q0 - 8, q1 - 8), b1 = 4 (q2 - 8, q3 - 8):
//             exact small integers, centred so that the fp32 sums stay small;
//   raw     = the low 2 bits l0..l3 of the four codes; unit = 8 rounds =
//             2 words, word w = rounds 4w..4w+3, round q = k % 4 of it holding
//             l0 at bits [4q, 4q+2), l2 at [4q+2, 4q+4), l1 at [16+4q, 18+4q)
//             and l3 at [18+4q, 20+4q).
//   The activations of columns 4c+2, 4c+3 are pre-scaled by 1/4
//   (column_scale), so each group's tensor-core dot is D = sum (q - 8) x,
//   and y += scale * D + (bias + 8 scale) * sum x: affine w = scale * q +
//   bias exactly as the scheme (ecq/schemes/affine.hpp) defines it, with
//   fp32 accumulation. Centring matters: with the uncentred 128 + q the two
//   terms were ~128 sum x and cancelled, losing ~7 bits of the fp32 sum.
//   Side data per (item, group, lane): scale | bias << 16 as bf16 bits.
#ifndef ECQ_GEMV_DEQUANT_CUH
#define ECQ_GEMV_DEQUANT_CUH

#include <cstdint>

#include "config.hpp"
#include "narrow_decode_table.hpp"

ECQ_NAMESPACE_BEGIN

namespace detail {

/// prmt.b32 with the sign-replicating selector modes (bit 3 of a nibble).
ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t prmt(std::uint32_t a, std::uint32_t b, std::uint32_t selector) {
  std::uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;\n" : "=r"(d) : "r"(a), "r"(b), "r"(selector));
  return d;
}

/// a - b per bf16 half, rounded to nearest (exact for the small integers here).
ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t sub_bf16x2(std::uint32_t a, std::uint32_t b) {
  std::uint32_t d;
  asm("sub.rn.bf16x2 %0, %1, %2;\n" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

}  // namespace detail

/// Lossless bf16 with two exponents per symbol (see the file comment).
struct bf16_pair_dequant {
  static constexpr int weights_per_round = 2;
  static constexpr int raw_bits_per_round = 16;
  static constexpr int rounds_per_unit = 8;
  static constexpr int unit_words = 4;
  static constexpr int group_size = 0;  // no per-group correction

  /// Narrow payload of the symbol whose exponents are e0 (weight 2c) and e1.
  ECQ_HOST_DEVICE static constexpr std::uint32_t payload(std::uint32_t e0, std::uint32_t e1) { return e0 | (e1 << 8); }
  /// The raw byte of a bf16 bit pattern.
  ECQ_HOST_DEVICE static constexpr std::uint32_t raw_byte(std::uint16_t bf16) {
    return (std::uint32_t(bf16) & 0x7fu) | ((std::uint32_t(bf16) >> 8) & 0x80u);
  }
  ECQ_HOST_DEVICE static constexpr float column_scale(std::uint32_t) { return 1.0f; }

  /// The bf16x2 (weight 2c, weight 2c+1) of round k of a block, from the
  /// narrow entry and the lane's raw words of the block (unit after unit).
  ECQ_DEVICE ECQ_FORCEINLINE static std::uint32_t fragment(std::uint32_t entry, const std::uint32_t* raw, int k) {
    const std::uint32_t sign_mantissa = detail::prmt(raw[k / 2], 0u, (k & 1) ? 0xB3A2u : 0x9180u);
    // One LOP3: exponents from entry << 7 where the mask is set, the rest from sign_mantissa.
    std::uint32_t d;
    asm("lop3.b32 %0, %1, %2, %3, 0xE4;\n" : "=r"(d) : "r"(entry << 7), "r"(sign_mantissa), "r"(0x7F807F80u));
    return d;
  }
};

/// 4-bit affine codes, four per symbol (see the file comment).
/// @tparam GroupSize  weights per scale/bias group along a row: 64 or a multiple of it
template <int GroupSize>
struct affine4_quad_dequant {
  static_assert(GroupSize >= 64 && GroupSize % 64 == 0,
                "GroupSize must be a multiple of 64: a group ends at a boundary of 16 rounds of 4 weights");
  static constexpr int weights_per_round = 4;
  static constexpr int raw_bits_per_round = 8;
  static constexpr int rounds_per_unit = 8;
  static constexpr int unit_words = 2;
  static constexpr int group_size = GroupSize;
  static constexpr std::uint32_t magic = 0x43004300u;        // bf16 128.0 in both halves
  static constexpr std::uint32_t centre_low = 0x43084308u;   // bf16 136.0 = 128 + 8
  static constexpr std::uint32_t centre_high = 0x43204320u;  // bf16 160.0 = 128 + 4 * 8

  /// Narrow payload of symbol_packing<4, 4, 2> symbol s.
  ECQ_HOST_DEVICE static constexpr std::uint32_t payload(std::uint32_t s) {
    return ((s & 3u) << 2) | (((s >> 4) & 3u) << 4) | ((((s >> 2) & 3u) << 2) << 8) | (((s >> 6) & 3u) << 12);
  }
  /// Bits of the raw unit word for round q (0..3) of the word and the low
  /// bits l[0..3] of its four codes.
  ECQ_HOST_DEVICE static constexpr std::uint32_t raw_bits(int q, std::uint32_t l0, std::uint32_t l1, std::uint32_t l2,
                                                          std::uint32_t l3) {
    return (l0 << (4 * q)) | (l2 << (4 * q + 2)) | (l1 << (16 + 4 * q)) | (l3 << (18 + 4 * q));
  }
  /// Activation scale of column c (1/4 for the second pair of each quad).
  ECQ_HOST_DEVICE static constexpr float column_scale(std::uint32_t c) { return (c & 2u) ? 0.25f : 1.0f; }
  /// The code the fragments are centred on: D = sum (q - code_centre) x.
  static constexpr float code_centre = 8.0f;

  /// Fragments (b0, b1) of round k of a block.
  ECQ_DEVICE ECQ_FORCEINLINE static void fragments(std::uint32_t entry, const std::uint32_t* raw, int k,
                                                   std::uint32_t& b0, std::uint32_t& b1) {
    const std::uint32_t w = raw[k / 4] >> (4 * (k % 4));
    b0 = detail::sub_bf16x2((entry & 0x000C000Cu) | ((w & 0x00030003u) | magic), centre_low);
    b1 = detail::sub_bf16x2((entry & 0x00300030u) | ((w & 0x000C000Cu) | magic), centre_high);
  }
};

ECQ_NAMESPACE_END

#endif  // ECQ_GEMV_DEQUANT_CUH
