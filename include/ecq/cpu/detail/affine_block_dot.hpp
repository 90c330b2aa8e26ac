// ecq/cpu/detail/affine_block_dot.hpp — the fused GEMV of affine codes, behind ecq/cpu/tensor_ops.hpp.
//
// READ ME FIRST
// * Input: one block's symbols in stream order (src[(g * columns + c) *
//   lanes + r], as the SIMD decoders write them), affine codes without raw
//   bits, one or two codes per symbol. In that order the 16 (AVX-512) or 8
//   (AVX2) rows of one register share every column, so a column costs one
//   load of their symbols, w = scale * q + bias for the register's rows
//   (the dequantiser's own expression, unfused, so w is the scheme's weight
//   bit for bit) and one multiply-add per activation column into per-row
//   sums. No transposition, no weight ever stored.
// * Per row, the sum runs in column order (recursive summation), and the
//   caller adds the block's sums to the row's: the error bound of
//   ecq/cpu/tensor_ops.hpp holds.
// * Side data arrives converted to float, row-major (rows of the block x
//   groups_per_row); a register's scales are gathered once per group.
// * Rows past valid_rows (padding of the last row group) are computed and
//   dropped; their side-data reads are masked off. Weights past `cols` (the
//   padded last symbol of a row) are never multiplied: the last symbol
//   column of a row whose codes run past cols is done by the scalar loop.
// * Compiled with target attributes, called only after the CPU was checked
//   (ecq/cpu_features.hpp); x86-64 only.
#ifndef ECQ_CPU_DETAIL_AFFINE_BLOCK_DOT_HPP
#define ECQ_CPU_DETAIL_AFFINE_BLOCK_DOT_HPP

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../cpu_features.hpp"

ECQ_NAMESPACE_BEGIN
namespace detail {

/// One block of the fused affine GEMV; see the file comment.
struct affine_block_dot_args {
  const std::uint8_t* symbols;  // stream order
  std::uint32_t lanes;
  std::uint32_t row_groups;
  std::uint32_t valid_rows;
  std::uint64_t columns;        // symbol columns of the block
  std::uint64_t first_column;   // tensor symbol column of the block's first
  int codes_per_symbol;         // 1 or 2
  int code_bits;
  const float* scales;          // valid_rows x groups_per_row
  const float* biases;
  std::uint64_t groups_per_row;
  std::uint32_t group_shift;
  const float* x;               // batch x cols
  std::uint64_t cols;
  std::size_t batch;
  float* sums;                  // valid_rows x batch, added to
};

/// The scalar loop for symbol columns [first, end) of the block (any ISA); the reference of the SIMD loops.
inline void affine_block_dot_columns(const affine_block_dot_args& a, std::uint64_t first, std::uint64_t end) {
  const std::uint32_t wps = std::uint32_t(a.codes_per_symbol);
  const std::uint32_t mask = (1u << a.code_bits) - 1;
  for (std::uint32_t r = 0; r < a.valid_rows; ++r) {
    const std::uint32_t g = r / a.lanes, lane = r % a.lanes;
    for (std::size_t b = 0; b < a.batch; ++b) {
      float s = 0.0f;
      for (std::uint64_t c = first; c < end; ++c) {
        const std::uint32_t symbol = a.symbols[(g * a.columns + c) * a.lanes + lane];
        for (std::uint32_t j = 0; j < wps; ++j) {
          const std::uint64_t col = (a.first_column + c) * wps + j;
          if (col >= a.cols) break;
          const std::uint64_t side = std::uint64_t(r) * a.groups_per_row + (col >> a.group_shift);
          const float w = a.scales[side] * float((symbol >> (j * std::uint32_t(a.code_bits))) & mask) + a.biases[side];
          s += w * a.x[b * a.cols + col];
        }
      }
      a.sums[std::size_t(r) * a.batch + b] += s;
    }
  }
}

/// Symbol columns of the block whose codes all lie inside the row: [0, whole).
inline std::uint64_t affine_whole_columns(const affine_block_dot_args& a) {
  const std::uint64_t wps = std::uint64_t(a.codes_per_symbol);
  const std::uint64_t end_symbol = a.cols / wps;  // symbols [0, end_symbol) of a row are whole
  if (end_symbol <= a.first_column) return 0;
  const std::uint64_t whole = end_symbol - a.first_column;
  return whole < a.columns ? whole : a.columns;
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

#include <type_traits>

#include "../../schemes/float_formats.hpp"

ECQ_NAMESPACE_BEGIN
namespace detail {

/// binary16 to float, 16 (AVX-512) or 8 (F16C) at a time; exact, as f16_to_float.
__attribute__((target("avx512f"))) inline void f16_to_float_avx512(const std::uint16_t* h, std::size_t n, float* out) {
  std::size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(out + i, _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(h + i))));
  for (; i < n; ++i) out[i] = f16_to_float(h[i]);
}
__attribute__((target("avx2,f16c"))) inline void f16_to_float_f16c(const std::uint16_t* h, std::size_t n, float* out) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(h + i))));
  for (; i < n; ++i) out[i] = f16_to_float(h[i]);
}

#define ECQ_AFFINE_DOT_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#define ECQ_AFFINE_DOT_AVX2_TARGET __attribute__((target("avx2")))

/// 16 rows (one register) of row group g, lanes [lane0, lane0 + 16), Batch activation columns from x_first on.
template <int Wps, int Batch>
ECQ_AFFINE_DOT_AVX512_TARGET void affine_rows_avx512(const affine_block_dot_args& a, std::uint32_t g, std::uint32_t lane0,
                                                     std::uint64_t whole, std::size_t x_first) {
  const std::uint32_t r0 = g * a.lanes + lane0;
  const std::uint32_t left = a.valid_rows - r0;
  const __mmask16 valid = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
  const __m512i side_row = _mm512_mullo_epi32(
      _mm512_add_epi32(_mm512_set1_epi32(int(r0)), _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
      _mm512_set1_epi32(int(a.groups_per_row)));
  const __m512i code_mask = _mm512_set1_epi32((1 << a.code_bits) - 1);
  __m512 acc[Batch];
  for (int b = 0; b < Batch; ++b) acc[b] = _mm512_setzero_ps();
  const std::uint8_t* column0 = a.symbols + std::size_t(g) * a.columns * a.lanes + lane0;
  const float* x = a.x + x_first * a.cols;
  std::uint64_t c = 0;
  while (c < whole) {
    const std::uint64_t first_weight = (a.first_column + c) * Wps;
    const std::uint64_t group = first_weight >> a.group_shift;
    const std::uint64_t group_end = (((group + 1) << a.group_shift) / Wps) - a.first_column;
    const std::uint64_t stop = group_end < whole ? group_end : whole;
    const __m512i index = _mm512_add_epi32(side_row, _mm512_set1_epi32(int(group)));
    const __m512 scale = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, index, a.scales, 4);
    const __m512 bias = _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, index, a.biases, 4);
    for (; c < stop; ++c) {
      const __m512i s = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(column0 + c * a.lanes)));
      const std::uint64_t col = (a.first_column + c) * Wps;
      if constexpr (Wps == 1) {
        const __m512 w = _mm512_add_ps(_mm512_mul_ps(scale, _mm512_cvtepi32_ps(s)), bias);
        for (int b = 0; b < Batch; ++b) acc[b] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[std::size_t(b) * a.cols + col]), acc[b]);
      } else {
        const __m512 w0 = _mm512_add_ps(_mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_and_si512(s, code_mask))), bias);
        const __m512 w1 = _mm512_add_ps(
            _mm512_mul_ps(scale, _mm512_cvtepi32_ps(_mm512_srlv_epi32(s, _mm512_set1_epi32(a.code_bits)))), bias);
        for (int b = 0; b < Batch; ++b) {
          acc[b] = _mm512_fmadd_ps(w0, _mm512_set1_ps(x[std::size_t(b) * a.cols + col]), acc[b]);
          acc[b] = _mm512_fmadd_ps(w1, _mm512_set1_ps(x[std::size_t(b) * a.cols + col + 1]), acc[b]);
        }
      }
    }
  }
  alignas(64) float out[16];
  for (int b = 0; b < Batch; ++b) {
    _mm512_store_ps(out, acc[b]);
    for (std::uint32_t k = 0; k < 16 && k < left; ++k) a.sums[std::size_t(r0 + k) * a.batch + x_first + std::size_t(b)] += out[k];
  }
}

/// 8 rows (one register) of row group g; as affine_rows_avx512 (no FMA: the AVX2 path does not require it).
template <int Wps, int Batch>
ECQ_AFFINE_DOT_AVX2_TARGET void affine_rows_avx2(const affine_block_dot_args& a, std::uint32_t g, std::uint32_t lane0,
                                                 std::uint64_t whole, std::size_t x_first) {
  const std::uint32_t r0 = g * a.lanes + lane0;
  const std::uint32_t left = a.valid_rows - r0;
  const __m256i lane_index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i valid = _mm256_cmpgt_epi32(_mm256_set1_epi32(int(left < 8 ? left : 8)), lane_index);
  const __m256i side_row = _mm256_mullo_epi32(_mm256_add_epi32(_mm256_set1_epi32(int(r0)), lane_index),
                                              _mm256_set1_epi32(int(a.groups_per_row)));
  const __m256i code_mask = _mm256_set1_epi32((1 << a.code_bits) - 1);
  const __m128i code_shift = _mm_cvtsi32_si128(a.code_bits);
  __m256 acc[Batch];
  for (int b = 0; b < Batch; ++b) acc[b] = _mm256_setzero_ps();
  const std::uint8_t* column0 = a.symbols + std::size_t(g) * a.columns * a.lanes + lane0;
  const float* x = a.x + x_first * a.cols;
  std::uint64_t c = 0;
  while (c < whole) {
    const std::uint64_t first_weight = (a.first_column + c) * Wps;
    const std::uint64_t group = first_weight >> a.group_shift;
    const std::uint64_t group_end = (((group + 1) << a.group_shift) / Wps) - a.first_column;
    const std::uint64_t stop = group_end < whole ? group_end : whole;
    const __m256i index = _mm256_add_epi32(side_row, _mm256_set1_epi32(int(group)));
    const __m256 scale = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), a.scales, index, _mm256_castsi256_ps(valid), 4);
    const __m256 bias = _mm256_mask_i32gather_ps(_mm256_setzero_ps(), a.biases, index, _mm256_castsi256_ps(valid), 4);
    for (; c < stop; ++c) {
      const __m256i s = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(column0 + c * a.lanes)));
      const std::uint64_t col = (a.first_column + c) * Wps;
      if constexpr (Wps == 1) {
        const __m256 w = _mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(s)), bias);
        for (int b = 0; b < Batch; ++b)
          acc[b] = _mm256_add_ps(acc[b], _mm256_mul_ps(w, _mm256_set1_ps(x[std::size_t(b) * a.cols + col])));
      } else {
        const __m256 w0 = _mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_and_si256(s, code_mask))), bias);
        const __m256 w1 = _mm256_add_ps(_mm256_mul_ps(scale, _mm256_cvtepi32_ps(_mm256_srl_epi32(s, code_shift))), bias);
        for (int b = 0; b < Batch; ++b) {
          acc[b] = _mm256_add_ps(acc[b], _mm256_mul_ps(w0, _mm256_set1_ps(x[std::size_t(b) * a.cols + col])));
          acc[b] = _mm256_add_ps(acc[b], _mm256_mul_ps(w1, _mm256_set1_ps(x[std::size_t(b) * a.cols + col + 1])));
        }
      }
    }
  }
  alignas(32) float out[8];
  for (int b = 0; b < Batch; ++b) {
    _mm256_store_ps(out, acc[b]);
    for (std::uint32_t k = 0; k < 8 && k < left; ++k) a.sums[std::size_t(r0 + k) * a.batch + x_first + std::size_t(b)] += out[k];
  }
}

/// The whole block with the SIMD loops (Vector = 16: AVX-512, 8: AVX2); lanes must be a multiple of Vector.
template <int Vector, int Wps>
void affine_block_dot_simd(const affine_block_dot_args& a) {
  const std::uint64_t whole = affine_whole_columns(a);
  for (std::uint32_t g = 0; g < a.row_groups; ++g)
    for (std::uint32_t lane0 = 0; lane0 < a.lanes && g * a.lanes + lane0 < a.valid_rows; lane0 += Vector)
      for (std::size_t b = 0; b < a.batch;) {
        const std::size_t left = a.batch - b;
        auto run = [&](auto batch) {
          if constexpr (Vector == 16) affine_rows_avx512<Wps, decltype(batch)::value>(a, g, lane0, whole, b);
          else affine_rows_avx2<Wps, decltype(batch)::value>(a, g, lane0, whole, b);
          b += decltype(batch)::value;
        };
        if (left >= 4) run(std::integral_constant<int, 4>{});
        else if (left >= 2) run(std::integral_constant<int, 2>{});
        else run(std::integral_constant<int, 1>{});
      }
  if (whole < a.columns) affine_block_dot_columns(a, whole, a.columns);
}

}  // namespace detail
ECQ_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // ECQ_HAS_X86_KERNELS()

#endif  // ECQ_CPU_DETAIL_AFFINE_BLOCK_DOT_HPP
