// ecq/cpu/detail/row_dequant_simd.hpp — SIMD dequantisation of row pieces, behind ecq/cpu/row_dequantizer.hpp.
//
// READ ME FIRST
// * Input: the one-byte symbols of `count` consecutive symbol columns of one
//   row (as decode_block's byte overload writes them), for the schemes whose
//   symbols are at most 8 bits and carry no raw bits in the codes:
//     affine  codes_per_symbol in [1, 3], code j of a symbol in bits
//             [j * code_bits, (j + 1) * code_bits) (symbol_packing with
//             RawBits 0 and symbol_bits <= 8), w = scale * q + bias;
//     bf16    the lossless bf16 scheme: pattern = float16_split::join(symbol,
//             raw byte), the raw bytes row-major beside the symbols.
//   Output: float weights, or bfloat16 patterns (round to nearest even, as
//   float_to_bf16, for affine; the stored patterns for bf16), n =
//   min(count * codes_per_symbol, cols - first_symbol * codes_per_symbol) of
//   them (a row's padded last symbol carries weights past cols: dropped).
// * Bit for bit the portable row dequantiser's values. The side values are
//   binary16 or bfloat16 (at most 11 significant bits) and codes have at
//   most 8 bits, so scale * q is exact; it is computed by a multiply and an
//   add that are never contracted into an FMA (the _round_ intrinsics are
//   builtins, not the vector arithmetic that -ffp-contract may fuse): an FMA
//   would differ where scale * q overflows and the bias brings the sum back.
//   A 16-weight vector that touches a group whose scale or bias is infinite
//   or NaN (which only a crafted file holds) is computed by the portable
//   function instead (`portable`, a function pointer so it is never inlined
//   into, and recompiled for, the AVX-512 target): a NaN's payload depends
//   on the operand order the compiler picked for the scalar expression.
// * Stores: cached (ordinary unaligned stores) or streaming (the first
//   weights up to the output's next 64-byte line with a masked store, then
//   whole lines with non-temporal stores, the tail masked). After streaming
//   stores the caller runs _mm_sfence (streaming_fence) before the memory
//   is handed to another thread.
// * Reads: only symbols [0, count), the side values of the row's groups the
//   output weights use, and the row's raw bytes [first_symbol, first_symbol
//   + count); masked loads at every end, so a piece that ends at a page
//   boundary reads nothing past it.
// * Two targets, the same values and stores: AVX-512 (16 weights a vector,
//   masked loads and stores at the ends) and AVX2 (8 weights a vector,
//   partial lines through a buffer, side values converted by the portable
//   functions once per window of 8 groups; no FMA in the target at all).
// * Compiled with target attributes, called only after the CPU was checked
//   (ecq/cpu_features.hpp: cpu_path::avx512 needs AVX-512 F/BW/DQ/VL,
//   cpu_path::avx2 AVX2); x86-64 only.
#ifndef ECQ_CPU_DETAIL_ROW_DEQUANT_SIMD_HPP
#define ECQ_CPU_DETAIL_ROW_DEQUANT_SIMD_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../config.hpp"
#include "../../cpu_features.hpp"
#include "../../schemes/float_formats.hpp"

ECQ_NAMESPACE_BEGIN
namespace detail {

/// The portable dequantiser of one row piece (16-bit symbols in, floats out),
/// the exact reference; ctx is the caller's (a row_dequantizer).
using row_weights_fn = void (*)(const void* ctx, std::uint64_t row, std::uint64_t first_symbol,
                                const std::uint16_t* symbols, std::size_t count, float* w);

/// What the SIMD row dequantisers read of a tensor's scheme (see the file comment).
struct row_dequant_plan {
  enum class scheme_form : std::uint8_t { none, affine, bf16 };
  scheme_form form = scheme_form::none;
  std::uint64_t cols = 0;
  std::uint64_t symbols_per_row = 0;
  // affine
  int codes_per_symbol = 1;
  int code_bits = 0;
  float16_format format = float16_format::binary16;
  const std::uint16_t* scales = nullptr;
  const std::uint16_t* biases = nullptr;
  std::uint64_t groups_per_row = 0;
  std::uint32_t group_shift = 0;
  // bf16: raw byte of symbol (row, column) at raw[row * symbols_per_row + column]
  const std::uint8_t* raw = nullptr;
};

/// The shape of one row piece's output, shared by the AVX-512 and AVX2 loops:
/// n values to write (the piece's symbols, cut at the row's end), and when
/// streaming, the head values that reach dest's next 64-byte line (every
/// later whole line is then aligned); stream is dropped for a misaligned dest.
struct row_piece_shape {
  std::size_t n = 0, head = 0;
  bool stream = false;
};
template <class T>
inline row_piece_shape row_piece_shape_of(const row_dequant_plan& p, std::uint64_t first_symbol, std::size_t count,
                                          const T* dest, bool stream) {
  const std::uint64_t cps = p.form == row_dequant_plan::scheme_form::affine ? std::uint64_t(p.codes_per_symbol) : 1;
  const std::uint64_t left = p.cols - first_symbol * cps;
  row_piece_shape r;
  r.n = std::size_t(count * cps < left ? count * cps : left);
  const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(dest);
  r.stream = stream && at % sizeof(T) == 0;
  if (r.stream) r.head = (64 - at % 64) % 64 / sizeof(T);
  return r;
}

}  // namespace detail
ECQ_NAMESPACE_END

#if ECQ_HAS_X86_KERNELS()

// GCC 12 reports (maybe-)uninitialized variables inside its own intrinsics
// headers (GCC bug 105593) wherever they are inlined; off for this header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

ECQ_NAMESPACE_BEGIN
namespace detail {

#define ECQ_ROW_DEQUANT_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl")))

/// Lanes [0, n) of a 16-lane mask (n <= 16).
ECQ_ROW_DEQUANT_AVX512_TARGET ECQ_FORCEINLINE __mmask16 first_lanes16(std::size_t n) {
  return n >= 16 ? __mmask16(0xffff) : __mmask16((1u << n) - 1);
}

/// float weights -> bfloat16 patterns (in the low 16 bits of each lane), as float_to_bf16.
ECQ_ROW_DEQUANT_AVX512_TARGET ECQ_FORCEINLINE __m256i float_to_bf16_avx512(__m512 w) {
  const __m512i u = _mm512_castps_si512(w);
  const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000));
  const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
  __m512i r = _mm512_srli_epi32(_mm512_add_epi32(_mm512_add_epi32(u, _mm512_set1_epi32(0x7fff)), lsb), 16);
  r = _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(0x40)));
  return _mm512_cvtepi32_epi16(r);
}

/// The affine weights of one row piece, 16 at a time (see the file comment).
class affine_row_avx512 {
 public:
  ECQ_ROW_DEQUANT_AVX512_TARGET affine_row_avx512(const row_dequant_plan& p, std::uint64_t row,
                                                  std::uint64_t first_symbol, const std::uint8_t* symbols,
                                                  row_weights_fn portable, const void* ctx)
      : p_(p), row_(row), first_symbol_(first_symbol), symbols_(symbols), portable_(portable),
        ctx_(ctx), first_weight_(first_symbol * std::uint64_t(p.codes_per_symbol)) {}

  /// Weights [k, k + n) of the piece (n <= 16; lanes past n are unspecified).
  ECQ_ROW_DEQUANT_AVX512_TARGET ECQ_FORCEINLINE __m512 weights(std::size_t k, std::size_t n) {
    const std::uint64_t col = first_weight_ + k;  // tensor column of weight k
    const std::uint64_t g_first = col >> p_.group_shift, g_last = (col + n - 1) >> p_.group_shift;
    if (!loaded_ || g_first < window_ || g_last >= window_ + 16) load_window(g_first);
    // Group of each lane, relative to the window (lanes past n may leave it: masked by the caller).
    const std::uint32_t offset = std::uint32_t(col - (window_ << p_.group_shift));
    const __m512i lane_col = _mm512_add_epi32(_mm512_set1_epi32(int(offset)), iota());
    const __m512i g = _mm512_srli_epi32(lane_col, unsigned(p_.group_shift));
    const __m512 scale = _mm512_permutexvar_ps(g, scale_), bias = _mm512_permutexvar_ps(g, bias_);
    const __m512 q = _mm512_cvtepi32_ps(codes(k, n));
    // scale * q is exact; no FMA (see the file comment).
    __m512 w = _mm512_add_round_ps(_mm512_mul_round_ps(scale, q, _MM_FROUND_CUR_DIRECTION), bias,
                                   _MM_FROUND_CUR_DIRECTION);
    if (bad_ != 0) {
      const std::uint32_t used = std::uint32_t(((std::uint64_t(2) << (g_last - g_first)) - 1) << (g_first - window_));
      if ((bad_ & used) != 0) w = portable_weights(k, n);
    }
    return w;
  }

 private:
  ECQ_ROW_DEQUANT_AVX512_TARGET static ECQ_FORCEINLINE __m512i iota() {
    return _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  }

  /// Side values of groups [g, g + 16) of the row (as many as the row has).
  ECQ_ROW_DEQUANT_AVX512_TARGET void load_window(std::uint64_t g) {
    window_ = g;
    loaded_ = true;
    const std::uint64_t left = p_.groups_per_row - g;
    const __mmask16 m = first_lanes16(std::size_t(left < 16 ? left : 16));
    const std::size_t at = std::size_t(row_ * p_.groups_per_row + g);
    const __m256i s = _mm256_maskz_loadu_epi16(m, p_.scales + at), b = _mm256_maskz_loadu_epi16(m, p_.biases + at);
    __m256i exponent;
    if (p_.format == float16_format::bfloat16) {
      scale_ = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(s), 16));
      bias_ = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(b), 16));
      exponent = _mm256_set1_epi16(0x7f80);
    } else {
      scale_ = _mm512_cvtph_ps(s);  // exact, as f16_to_float, for every finite value
      bias_ = _mm512_cvtph_ps(b);
      exponent = _mm256_set1_epi16(0x7c00);
    }
    // Infinite or NaN: every exponent bit set.
    bad_ = std::uint32_t(_mm256_mask_cmpeq_epi16_mask(m, _mm256_and_si256(s, exponent), exponent) |
                         _mm256_mask_cmpeq_epi16_mask(m, _mm256_and_si256(b, exponent), exponent));
  }

  /// Codes of weights [k, k + n) as 32-bit lanes.
  ECQ_ROW_DEQUANT_AVX512_TARGET ECQ_FORCEINLINE __m512i codes(std::size_t k, std::size_t n) {
    const __m512i mask = _mm512_set1_epi32((1 << p_.code_bits) - 1);
    if (p_.codes_per_symbol == 1)
      return _mm512_and_si512(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(first_lanes16(n), symbols_ + k)), mask);
    const std::uint32_t cps = std::uint32_t(p_.codes_per_symbol);
    const std::size_t s0 = k / cps, phase = k % cps;
    const std::size_t symbols = (k + n - 1) / cps - s0 + 1;
    const __m512i s = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(first_lanes16(symbols), symbols_ + s0));
    // Lane i holds code (phase + i) % cps of symbol s0 + (phase + i) / cps.
    const __m512i at = _mm512_add_epi32(_mm512_set1_epi32(int(phase)), iota());
    __m512i index, shift;
    if (cps == 2) {
      index = _mm512_srli_epi32(at, 1);
      shift = _mm512_and_si512(at, _mm512_set1_epi32(1));
    } else {  // 3: at < 18, at / 3 == (at * 11) >> 5
      index = _mm512_srli_epi32(_mm512_mullo_epi32(at, _mm512_set1_epi32(11)), 5);
      shift = _mm512_sub_epi32(at, _mm512_mullo_epi32(index, _mm512_set1_epi32(3)));
    }
    shift = _mm512_mullo_epi32(shift, _mm512_set1_epi32(p_.code_bits));
    return _mm512_and_si512(_mm512_srlv_epi32(_mm512_permutexvar_epi32(index, s), shift), mask);
  }

  /// Weights [k, k + n) from the portable dequantiser (a group with a non-finite side value).
  ECQ_ROW_DEQUANT_AVX512_TARGET __m512 portable_weights(std::size_t k, std::size_t n) {
    const std::size_t cps = std::size_t(p_.codes_per_symbol);
    const std::size_t s0 = k / cps, s1 = (k + n - 1) / cps + 1;
    std::uint16_t s[16];
    float w[24];  // (s1 - s0) * cps <= 18
    for (std::size_t i = s0; i < s1; ++i) s[i - s0] = symbols_[i];
    portable_(ctx_, row_, first_symbol_ + s0, s, s1 - s0, w);
    return _mm512_maskz_loadu_ps(first_lanes16(n), w + (k - s0 * cps));
  }

  const row_dequant_plan& p_;
  std::uint64_t row_, first_symbol_;
  const std::uint8_t* symbols_;
  row_weights_fn portable_;
  const void* ctx_;
  std::uint64_t first_weight_;
  std::uint64_t window_ = 0;
  bool loaded_ = false;
  std::uint32_t bad_ = 0;  // groups of the window with an infinite or NaN scale or bias
  __m512 scale_, bias_;
};

/// Patterns of the lossless bf16 scheme, weights [k, k + n) (n <= 32), 16 bits a lane.
ECQ_ROW_DEQUANT_AVX512_TARGET ECQ_FORCEINLINE __m512i bf16_patterns_avx512(const std::uint8_t* symbols,
                                                                           const std::uint8_t* raw, std::size_t k,
                                                                           std::size_t n) {
  const __mmask32 m = n >= 32 ? ~__mmask32(0) : __mmask32((1u << n) - 1);
  const __m512i s = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, symbols + k));
  const __m512i r = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m, raw + k));
  // join: (raw & 0x80) << 8 | symbol << 7 | (raw & 0x7f)
  return _mm512_or_si512(_mm512_or_si512(_mm512_slli_epi16(s, 7), _mm512_and_si512(r, _mm512_set1_epi16(0x7f))),
                         _mm512_and_si512(_mm512_slli_epi16(r, 8), _mm512_set1_epi16(std::int16_t(0x8000))));
}

/// Stores 64 bytes (lanes [0, n) of `units` values of sizeof(T) bytes; n == units: a whole register) at dest.
template <class T>
ECQ_ROW_DEQUANT_AVX512_TARGET ECQ_FORCEINLINE void store_line_avx512(T* dest, __m512i v, std::size_t n, bool stream) {
  constexpr std::size_t units = 64 / sizeof(T);
  if (n == units) {
    if (stream) _mm512_stream_si512(reinterpret_cast<__m512i*>(dest), v);
    else _mm512_storeu_si512(dest, v);
  } else if (sizeof(T) == 4) {
    _mm512_mask_storeu_epi32(dest, first_lanes16(n), v);
  } else {
    _mm512_mask_storeu_epi16(dest, n >= 32 ? ~__mmask32(0) : __mmask32((1u << n) - 1), v);
  }
}

/// 16 weights of affine_lines_avx512 from weight k of the piece on.
template <int Cps>
ECQ_ROW_DEQUANT_AVX512_TARGET ECQ_FORCEINLINE __m512 affine_weights16(const std::uint8_t* symbols, std::size_t k,
                                                                      __mmask16 symbol_mask, __m512i index,
                                                                      __m512i shift, __m512i mask, __m128i shift_count,
                                                                      __m512i* lane_col, __m512 scale, __m512 bias) {
  __m512i c;
  if constexpr (Cps == 1) {
    (void)symbol_mask, (void)index, (void)shift;
    c = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(symbols + k)));
  } else {
    const __m512i s = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(symbol_mask, symbols + k / Cps));
    c = _mm512_srlv_epi32(_mm512_permutexvar_epi32(index, s), shift);
  }
  const __m512 q = _mm512_cvtepi32_ps(_mm512_and_si512(c, mask));
  const __m512i g = _mm512_srl_epi32(*lane_col, shift_count);
  *lane_col = _mm512_add_epi32(*lane_col, _mm512_set1_epi32(16));
  // scale * q is exact; no FMA (see the file comment).
  return _mm512_add_round_ps(_mm512_mul_round_ps(_mm512_permutexvar_ps(g, scale), q, _MM_FROUND_CUR_DIRECTION),
                             _mm512_permutexvar_ps(g, bias), _MM_FROUND_CUR_DIRECTION);
}

/// The affine weights of whole 64-byte lines [k, k + lines * units) of a row
/// piece whose groups' side values (scale, bias: groups [window, window +
/// 16) of the row, all finite) cover them: the loop of dequant_row_avx512
/// for Cps codes per symbol (1 or 2: every line starts at the same code of
/// a symbol; 3 takes the general loop). Returns the next k.
template <int Cps, class T>
ECQ_ROW_DEQUANT_AVX512_TARGET ECQ_FORCEINLINE std::size_t affine_lines_avx512(
    const std::uint8_t* symbols, std::size_t k, std::size_t lines, std::uint32_t offset, std::uint32_t group_shift,
    int code_bits, __m512 scale, __m512 bias, T* dest, bool stream) {
  constexpr std::size_t units = 64 / sizeof(T);
  const __m512i mask = _mm512_set1_epi32((1 << code_bits) - 1);
  const __m512i iota = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
  const __m128i shift_count = _mm_cvtsi32_si128(int(group_shift));
  // Column of each lane relative to the window's first weight; group = column >> group_shift.
  __m512i lane_col = _mm512_add_epi32(_mm512_set1_epi32(int(offset)), iota);
  // Cps > 1: lane i is code (phase + i) % Cps of symbol (phase + i) / Cps from the vector's first symbol.
  const std::uint32_t phase = std::uint32_t(k % Cps);
  const __m512i at = _mm512_add_epi32(_mm512_set1_epi32(int(phase)), iota);
  const __m512i index = _mm512_srli_epi32(at, Cps == 2 ? 1 : 0);
  const __m512i shift =
      _mm512_mullo_epi32(_mm512_and_si512(at, _mm512_set1_epi32(Cps - 1)), _mm512_set1_epi32(code_bits));
  const __mmask16 symbol_mask = first_lanes16((phase + 15) / Cps + 1);
  for (std::size_t j = 0; j < lines; ++j, k += units) {
    __m512i v;
    if constexpr (sizeof(T) == 4) {
      v = _mm512_castps_si512(affine_weights16<Cps>(symbols, k, symbol_mask, index, shift, mask, shift_count,
                                                    &lane_col, scale, bias));
    } else {
      const __m256i lo = float_to_bf16_avx512(
          affine_weights16<Cps>(symbols, k, symbol_mask, index, shift, mask, shift_count, &lane_col, scale, bias));
      const __m256i hi = float_to_bf16_avx512(
          affine_weights16<Cps>(symbols, k + 16, symbol_mask, index, shift, mask, shift_count, &lane_col, scale, bias));
      v = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    }
    if (stream) _mm512_stream_si512(reinterpret_cast<__m512i*>(dest + k), v);
    else _mm512_storeu_si512(dest + k, v);
  }
  return k;
}

/// One 64-byte line of output (or less: the head, the tail), weights [k, k + m), through affine_row_avx512.
template <class T>
ECQ_ROW_DEQUANT_AVX512_TARGET std::size_t affine_line_avx512(affine_row_avx512& a, std::size_t k, std::size_t m,
                                                             T* dest, bool stream) {
  constexpr std::size_t units = 64 / sizeof(T);
  if constexpr (sizeof(T) == 4) {
    store_line_avx512(dest + k, _mm512_castps_si512(a.weights(k, m)), m, stream && m == units);
  } else {
    const __m256i lo = float_to_bf16_avx512(a.weights(k, m < 16 ? m : 16));
    const __m256i hi = m > 16 ? float_to_bf16_avx512(a.weights(k + 16, m - 16)) : _mm256_setzero_si256();
    store_line_avx512(dest + k, _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1), m, stream && m == units);
  }
  return k + m;
}

/// The weights of `count` symbols of one row (see the file comment) to dest:
/// T = float (weights) or std::uint16_t (bfloat16 patterns). `stream`:
/// non-temporal stores for the whole 64-byte lines of dest.
template <class T>
ECQ_ROW_DEQUANT_AVX512_TARGET void dequant_row_avx512(const row_dequant_plan& p, std::uint64_t row,
                                                      std::uint64_t first_symbol, const std::uint8_t* symbols,
                                                      std::size_t count, T* dest, bool stream, row_weights_fn portable,
                                                      const void* ctx) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 2, "T is float or std::uint16_t");
  constexpr std::size_t units = 64 / sizeof(T);  // values of one 64-byte line
  const std::uint64_t cps = p.form == row_dequant_plan::scheme_form::affine ? std::uint64_t(p.codes_per_symbol) : 1;
  const row_piece_shape shape = row_piece_shape_of(p, first_symbol, count, dest, stream);
  const std::size_t n = shape.n, head = shape.head;
  stream = shape.stream;
  auto piece = [&](std::size_t k) {
    const std::size_t want = k == 0 && head != 0 ? head : units;
    return n - k < want ? n - k : want;
  };
  if (p.form == row_dequant_plan::scheme_form::bf16) {
    const std::uint8_t* raw = p.raw + row * p.symbols_per_row + first_symbol;
    for (std::size_t k = 0; k < n;) {
      const std::size_t m = piece(k);
      const __m512i h = bf16_patterns_avx512(symbols, raw, k, m);
      if constexpr (sizeof(T) == 2) {
        store_line_avx512(dest + k, h, m, stream && m == units);
      } else {
        const __m512i lo = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16);
        store_line_avx512(dest + k, lo, m, stream && m == units);
      }
      k += m;
    }
    return;
  }
  affine_row_avx512 a(p, row, first_symbol, symbols, portable, ctx);
  std::size_t k = head != 0 ? affine_line_avx512(a, 0, piece(0), dest, stream) : 0;
  const std::uint32_t shift = p.group_shift;
  const std::uint64_t first_weight = first_symbol * cps;
  const std::size_t side_row = std::size_t(row * p.groups_per_row);
  const bool bf16_side = p.format == float16_format::bfloat16;
  const __m256i exponent = _mm256_set1_epi16(bf16_side ? 0x7f80 : 0x7c00);
  while (n - k >= units) {
    // A window of 16 groups from the next line's first weight on, and the whole lines inside it.
    const std::uint64_t col = first_weight + k, window = col >> shift;
    const std::uint64_t groups = p.groups_per_row - window < 16 ? p.groups_per_row - window : 16;
    const std::uint64_t window_end = (window + groups) << shift;  // may pass cols: the last group's padding
    std::size_t lines = std::size_t((window_end - col) / units);
    if (lines > (n - k) / units) lines = (n - k) / units;
    const __mmask16 m = first_lanes16(std::size_t(groups));
    const __m256i sh = _mm256_maskz_loadu_epi16(m, p.scales + side_row + window);
    const __m256i bh = _mm256_maskz_loadu_epi16(m, p.biases + side_row + window);
    const bool finite = (_mm256_mask_cmpeq_epi16_mask(m, _mm256_and_si256(sh, exponent), exponent) |
                         _mm256_mask_cmpeq_epi16_mask(m, _mm256_and_si256(bh, exponent), exponent)) == 0;
    if (lines == 0 || !finite || cps == 3) {
      k = affine_line_avx512(a, k, piece(k), dest, stream);
      continue;
    }
    __m512 scale, bias;
    if (bf16_side) {
      scale = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(sh), 16));
      bias = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bh), 16));
    } else {
      scale = _mm512_cvtph_ps(sh);  // exact, as f16_to_float, for every finite value
      bias = _mm512_cvtph_ps(bh);
    }
    const std::uint32_t offset = std::uint32_t(col - (window << shift));
    if (cps == 1)
      k = affine_lines_avx512<1>(symbols, k, lines, offset, shift, p.code_bits, scale, bias, dest, stream);
    else
      k = affine_lines_avx512<2>(symbols, k, lines, offset, shift, p.code_bits, scale, bias, dest, stream);
  }
  while (k < n) k = affine_line_avx512(a, k, piece(k), dest, stream);
}

#define ECQ_ROW_DEQUANT_AVX2_TARGET __attribute__((target("avx2")))

/// float weights -> bfloat16 patterns in the low 16 bits of each 32-bit lane, as float_to_bf16 (AVX2).
ECQ_ROW_DEQUANT_AVX2_TARGET ECQ_FORCEINLINE __m256i float_to_bf16_avx2(__m256 w) {
  const __m256i u = _mm256_castps_si256(w);
  // Both sides are below 2^31: the signed compare is the unsigned one.
  const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(u, _mm256_set1_epi32(0x7fffffff)),
                                         _mm256_set1_epi32(0x7f800000));
  const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
  const __m256i r = _mm256_srli_epi32(_mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb), 16);
  return _mm256_blendv_epi8(r, _mm256_or_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(0x40)), nan);
}

/// The weights of one row piece, 8 at a time, on AVX2 (no FMA: multiply, then add; see the file comment).
/// Side values are converted by the portable functions (once per window of 8 groups: exact by definition).
class affine_row_avx2 {
 public:
  ECQ_ROW_DEQUANT_AVX2_TARGET affine_row_avx2(const row_dequant_plan& p, std::uint64_t row, std::uint64_t first_symbol,
                                              const std::uint8_t* symbols, std::size_t count, row_weights_fn portable,
                                              const void* ctx)
      : p_(p), row_(row), first_symbol_(first_symbol), symbols_(symbols), count_(count), portable_(portable),
        ctx_(ctx), first_weight_(first_symbol * std::uint64_t(p.codes_per_symbol)) {}

  /// Weights [k, k + n) of the piece (n <= 8; lanes past n are unspecified).
  ECQ_ROW_DEQUANT_AVX2_TARGET __m256 weights(std::size_t k, std::size_t n) {
    const std::uint64_t col = first_weight_ + k;
    const std::uint64_t g_first = col >> p_.group_shift, g_last = (col + n - 1) >> p_.group_shift;
    if (!loaded_ || g_first < window_ || g_last >= window_ + 8) load_window(g_first);
    if ((bad_ & (((2u << (g_last - g_first)) - 1) << (g_first - window_))) != 0) return portable_weights(k, n);
    const std::uint32_t offset = std::uint32_t(col - (window_ << p_.group_shift));
    const __m256i lane_col = _mm256_add_epi32(_mm256_set1_epi32(int(offset)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    const __m256i g = _mm256_srl_epi32(lane_col, _mm_cvtsi32_si128(int(p_.group_shift)));
    const __m256 scale = _mm256_permutevar8x32_ps(_mm256_loadu_ps(scale_), g);
    const __m256 bias = _mm256_permutevar8x32_ps(_mm256_loadu_ps(bias_), g);
    return _mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(codes(k, n))), bias);
  }

 private:
  ECQ_ROW_DEQUANT_AVX2_TARGET void load_window(std::uint64_t g) {
    window_ = g;
    loaded_ = true;
    bad_ = 0;
    const std::uint16_t exponent = p_.format == float16_format::bfloat16 ? 0x7f80 : 0x7c00;
    const std::size_t at = std::size_t(row_ * p_.groups_per_row);
    for (std::uint64_t i = 0; i < 8; ++i) {
      const std::uint64_t gi = g + i < p_.groups_per_row ? g + i : p_.groups_per_row - 1;
      const std::uint16_t sh = p_.scales[at + gi], bh = p_.biases[at + gi];
      scale_[i] = float16_to_float(sh, p_.format);
      bias_[i] = float16_to_float(bh, p_.format);
      if ((sh & exponent) == exponent || (bh & exponent) == exponent) bad_ |= 1u << i;
    }
  }

  /// Codes of weights [k, k + n) as 32-bit lanes (symbols past the piece are never read).
  ECQ_ROW_DEQUANT_AVX2_TARGET __m256i codes(std::size_t k, std::size_t n) {
    const std::uint32_t cps = std::uint32_t(p_.codes_per_symbol);
    const std::size_t s0 = k / cps, phase = k % cps, symbols = (k + n - 1) / cps - s0 + 1;
    alignas(16) std::uint8_t bytes[16] = {};
    const std::uint8_t* src = symbols_ + s0;
    if (count_ - s0 < 8) {
      for (std::size_t i = 0; i < symbols; ++i) bytes[i] = src[i];
      src = bytes;
    }
    const __m256i s = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(src)));
    const __m256i mask = _mm256_set1_epi32((1 << p_.code_bits) - 1);
    if (cps == 1) return _mm256_and_si256(s, mask);
    alignas(32) std::uint32_t index[8], shift[8];
    for (std::uint32_t i = 0; i < 8; ++i) {
      index[i] = std::uint32_t((phase + i) / cps);
      shift[i] = std::uint32_t((phase + i) % cps) * std::uint32_t(p_.code_bits);
    }
    const __m256i picked = _mm256_permutevar8x32_epi32(s, _mm256_load_si256(reinterpret_cast<const __m256i*>(index)));
    return _mm256_and_si256(_mm256_srlv_epi32(picked, _mm256_load_si256(reinterpret_cast<const __m256i*>(shift))),
                            mask);
  }

  ECQ_ROW_DEQUANT_AVX2_TARGET __m256 portable_weights(std::size_t k, std::size_t n) {
    const std::size_t cps = std::size_t(p_.codes_per_symbol);
    const std::size_t s0 = k / cps, s1 = (k + n - 1) / cps + 1;
    std::uint16_t s[8];
    float w[16] = {};  // (s1 - s0) * cps <= 12
    for (std::size_t i = s0; i < s1; ++i) s[i - s0] = symbols_[i];
    portable_(ctx_, row_, first_symbol_ + s0, s, s1 - s0, w);
    return _mm256_loadu_ps(w + (k - s0 * cps));
  }

  const row_dequant_plan& p_;
  std::uint64_t row_, first_symbol_;
  const std::uint8_t* symbols_;
  std::size_t count_;
  row_weights_fn portable_;
  const void* ctx_;
  std::uint64_t first_weight_;
  std::uint64_t window_ = 0;
  bool loaded_ = false;
  std::uint32_t bad_ = 0;
  float scale_[8], bias_[8];
};

/// The AVX2 form of affine_lines_avx512: whole 64-byte lines [k, k + lines * units) whose weights lie in groups
/// [window, window + 8) of the row (all finite; their scale and bias in scale, bias), 8 weights a vector. Every
/// symbol load (8 bytes) stays inside the piece: the caller checks (k_last / Cps + 8 <= count). Returns the next k.
template <int Cps, class T>
ECQ_ROW_DEQUANT_AVX2_TARGET std::size_t affine_lines_avx2(const std::uint8_t* symbols, std::size_t k, std::size_t lines,
                                                          std::uint32_t offset, std::uint32_t group_shift,
                                                          int code_bits, __m256 scale, __m256 bias, T* dest,
                                                          bool stream) {
  constexpr std::size_t units = 64 / sizeof(T);
  const __m256i mask = _mm256_set1_epi32((1 << code_bits) - 1);
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m128i shift_count = _mm_cvtsi32_si128(int(group_shift));
  __m256i lane_col = _mm256_add_epi32(_mm256_set1_epi32(int(offset)), iota);
  // Cps > 1: lane i is code (phase + i) % Cps of symbol (phase + i) / Cps (phase: the same for every vector).
  const __m256i at = _mm256_add_epi32(_mm256_set1_epi32(int(k % Cps)), iota);
  const __m256i index = _mm256_srli_epi32(at, Cps == 2 ? 1 : 0);
  const __m256i shift =
      _mm256_mullo_epi32(_mm256_and_si256(at, _mm256_set1_epi32(Cps - 1)), _mm256_set1_epi32(code_bits));
  for (std::size_t j = 0; j < lines; ++j, k += units) {
    __m256i v[units / 8];
    for (std::size_t u = 0; u < units / 8; ++u) {
      const std::size_t kk = k + 8 * u;
      __m256i c = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(symbols + kk / Cps)));
      if constexpr (Cps > 1) c = _mm256_srlv_epi32(_mm256_permutevar8x32_epi32(c, index), shift);
      const __m256 q = _mm256_cvtepi32_ps(_mm256_and_si256(c, mask));
      const __m256i g = _mm256_srl_epi32(lane_col, shift_count);
      lane_col = _mm256_add_epi32(lane_col, _mm256_set1_epi32(8));
      const __m256 w = _mm256_add_ps(_mm256_mul_ps(_mm256_permutevar8x32_ps(scale, g), q),
                                     _mm256_permutevar8x32_ps(bias, g));
      v[u] = sizeof(T) == 4 ? _mm256_castps_si256(w) : float_to_bf16_avx2(w);
    }
    __m256i lo, hi;
    if constexpr (sizeof(T) == 4) {
      lo = v[0], hi = v[1];
    } else {  // the low 16 bits of each lane, in order
      lo = _mm256_permute4x64_epi64(_mm256_packus_epi32(v[0], v[1]), 0xd8);
      hi = _mm256_permute4x64_epi64(_mm256_packus_epi32(v[2], v[3]), 0xd8);
    }
    if (stream) {
      _mm256_stream_si256(reinterpret_cast<__m256i*>(dest + k), lo);
      _mm256_stream_si256(reinterpret_cast<__m256i*>(dest + k) + 1, hi);
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dest + k), lo);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dest + k) + 1, hi);
    }
  }
  return k;
}

/// dequant_row_avx512 on AVX2: the same values and stores (non-temporal for whole 64-byte lines when `stream`),
/// 8 weights a vector; partial lines go out through a buffer.
template <class T>
ECQ_ROW_DEQUANT_AVX2_TARGET void dequant_row_avx2(const row_dequant_plan& p, std::uint64_t row,
                                                  std::uint64_t first_symbol, const std::uint8_t* symbols,
                                                  std::size_t count, T* dest, bool stream, row_weights_fn portable,
                                                  const void* ctx) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 2, "T is float or std::uint16_t");
  constexpr std::size_t units = 64 / sizeof(T);
  const bool affine = p.form == row_dequant_plan::scheme_form::affine;
  const std::uint64_t cps = affine ? std::uint64_t(p.codes_per_symbol) : 1;
  const row_piece_shape shape = row_piece_shape_of(p, first_symbol, count, dest, stream);
  const std::size_t n = shape.n, head = shape.head;
  stream = shape.stream;
  affine_row_avx2 a(p, row, first_symbol, symbols, count, portable, ctx);
  const std::uint8_t* raw = affine ? nullptr : p.raw + row * p.symbols_per_row + first_symbol;
  alignas(64) T line[units];
  for (std::size_t k = 0; k < n;) {
    if (affine && (k != 0 || head == 0) && n - k >= units && cps != 3) {
      // Whole lines in a window of 8 finite groups: the loop of affine_lines_avx2.
      const std::uint32_t shift = p.group_shift;
      const std::uint64_t col = first_symbol * cps + k, window = col >> shift;
      const std::uint64_t groups = p.groups_per_row - window < 8 ? p.groups_per_row - window : 8;
      std::size_t lines = std::size_t((((window + groups) << shift) - col) / units);
      if (lines > (n - k) / units) lines = (n - k) / units;
      // The last vector's 8-byte load must stay inside the piece.
      while (lines != 0 && (k + lines * units - 8) / cps + 8 > count) --lines;
      alignas(32) float sc[8], bi[8];
      const std::uint16_t exponent = p.format == float16_format::bfloat16 ? 0x7f80 : 0x7c00;
      bool finite = true;
      const std::size_t side = std::size_t(row * p.groups_per_row + window);
      for (std::uint64_t i = 0; i < 8; ++i) {
        const std::size_t gi = side + std::size_t(i < groups ? i : groups - 1);
        sc[i] = float16_to_float(p.scales[gi], p.format);
        bi[i] = float16_to_float(p.biases[gi], p.format);
        finite &= (p.scales[gi] & exponent) != exponent && (p.biases[gi] & exponent) != exponent;
      }
      if (lines != 0 && finite) {
        const std::uint32_t offset = std::uint32_t(col - (window << shift));
        const __m256 scale = _mm256_load_ps(sc), bias = _mm256_load_ps(bi);
        if (cps == 1)
          k = affine_lines_avx2<1>(symbols, k, lines, offset, shift, p.code_bits, scale, bias, dest, stream);
        else
          k = affine_lines_avx2<2>(symbols, k, lines, offset, shift, p.code_bits, scale, bias, dest, stream);
        continue;
      }
    }
    const std::size_t want = k == 0 && head != 0 ? head : units;
    const std::size_t m = n - k < want ? n - k : want;
    for (std::size_t j = 0; j < m; j += 8) {  // 8 weights into line[j, j + 8)
      const std::size_t v = m - j < 8 ? m - j : 8;
      __m256i bits;
      if (affine) {
        const __m256 w = a.weights(k + j, v);
        bits = sizeof(T) == 4 ? _mm256_castps_si256(w) : float_to_bf16_avx2(w);
      } else {
        alignas(16) std::uint8_t s8[8] = {}, r8[8] = {};
        const std::uint8_t *ps = symbols + k + j, *pr = raw + k + j;
        if (v < 8) {  // never read past the piece
          for (std::size_t i = 0; i < v; ++i) s8[i] = ps[i], r8[i] = pr[i];
          ps = s8, pr = r8;
        }
        const __m256i s = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(ps)));
        const __m256i r = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(pr)));
        // join: (raw & 0x80) << 8 | symbol << 7 | (raw & 0x7f)
        bits = _mm256_or_si256(_mm256_or_si256(_mm256_slli_epi32(s, 7), _mm256_and_si256(r, _mm256_set1_epi32(0x7f))),
                               _mm256_slli_epi32(_mm256_and_si256(r, _mm256_set1_epi32(0x80)), 8));
        if (sizeof(T) == 4) bits = _mm256_slli_epi32(bits, 16);
      }
      if constexpr (sizeof(T) == 4) {
        _mm256_store_si256(reinterpret_cast<__m256i*>(line + j), bits);
      } else {  // the low 16 bits of each lane, in order
        const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(bits, bits), 0x08);
        _mm_store_si128(reinterpret_cast<__m128i*>(line + j), _mm256_castsi256_si128(packed));
      }
    }
    if (m == units) {
      const __m256i lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(line));
      const __m256i hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(line) + 1);
      if (stream) {
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dest + k), lo);
        _mm256_stream_si256(reinterpret_cast<__m256i*>(dest + k) + 1, hi);
      } else {
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dest + k), lo);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(dest + k) + 1, hi);
      }
    } else {
      std::memcpy(dest + k, line, m * sizeof(T));
    }
    k += m;
  }
}

}  // namespace detail
ECQ_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // ECQ_HAS_X86_KERNELS()

#endif  // ECQ_CPU_DETAIL_ROW_DEQUANT_SIMD_HPP
