// ecq/cpu/detail/affine_block_dot.hpp — the fused GEMV of affine codes, behind ecq/cpu/tensor_ops.hpp.
//
// READ ME FIRST
// * Input: one block's symbols in stream order (src[(g * columns + c) *
//   lanes + r], as the SIMD decoders write them), affine codes without raw
//   bits, one or two codes per symbol. In that order the 16 (AVX-512) or 8
//   (AVX2) rows of one register share every column, so a column costs one
//   load of their symbols, w = scale * q + bias for the register's rows
//   and one multiply-add per activation column into per-row sums. No
//   transposition, no weight ever stored.
// * w is the scheme's weight bit for bit. The side data are binary16 or
//   bfloat16 values (at most 11 significant bits) and codes have at most 8
//   bits, so scale * q is exact in float: the AVX-512 loops compute w with
//   one FMA, which rounds once, as the dequantiser's scale * q + bias does
//   (the AVX2 loop, which does not require FMA, multiplies and adds).
// * Per row, the sum runs in column order (recursive summation), and the
//   caller adds the block's sums to the row's: the error bound of
//   ecq/cpu/tensor_ops.hpp holds.
// * Side data arrives converted to float, row-major (rows of the block x
//   groups_per_row); a register's scales are gathered once per group.
// * Rows past valid_rows (padding of the last row group) are computed and
//   dropped; their side-data reads are masked off. Weights past `cols` (the
//   padded last symbol of a row) are never multiplied: the last symbol
//   column of a row whose codes run past cols is done by the scalar loop.
// * Two forms. affine_block_dot_simd runs over a block already decoded into
//   stream order (tensor_decoder::decode_stream_order): AVX2, and AVX-512
//   for more than 8 activation columns (the block is decoded once for all of
//   them) or fewer than 64 lanes. affine_rows_dot_sink<Lanes> (used for 64
//   lanes, the storage layout of large tensors) is the same loop as a sink of the
//   AVX-512 decoding loop (tensor_decoder::dot_affine_block): each register
//   of 16 rows is dequantised and dotted as it is decoded, so the block's
//   symbols are never written (a 64-lane block of 128 x 8192 codes is 1 MB of
//   stream order, which the two-pass form writes and reads back from L2).
//   Both give the same sums bit for bit (tests/cpu_tensor_ops_test.cpp).
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
  const float* scales;          // valid_rows x groups_per_row, 16-bit values (see the file comment)
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

#include "../../detail/cpu_decode_avx512.hpp"
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
        const __m512 w = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(s), bias);
        for (int b = 0; b < Batch; ++b) acc[b] = _mm512_fmadd_ps(w, _mm512_set1_ps(x[std::size_t(b) * a.cols + col]), acc[b]);
      } else {
        const __m512 w0 = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(_mm512_and_si512(s, code_mask)), bias);
        const __m512 w1 =
            _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(_mm512_srlv_epi32(s, _mm512_set1_epi32(a.code_bits))), bias);
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

/// affine_block_dot_simd<16, Wps> fused into the decoder: a sink of
/// ecq/detail/cpu_decode_avx512.hpp's decode_stream (run with
/// cpu_decoder::decode_to_sink) that dequantises and dots each register of
/// 16 rows as the kernel decodes it, so the block's symbols are never stored.
/// The same expressions in the same order as affine_block_dot_simd<16, Wps>
/// followed by affine_block_dot_columns for the columns past `whole`: the
/// sums are bit for bit those of the two-pass form. It also checks, as
/// tensor_decoder::decode_stream_order does, that every padding row of the
/// last row group decoded to the pad symbol.
/// Lanes (16, 32 or 64) is the stream's; a.batch <= max_batch. The
/// accumulators live in the sink (in L1: a register's column costs one load
/// and one store per activation column, off the decoder's critical path);
/// everything that changes less often than every column (side data, row
/// group, padding) is set up by column_event, so put() is a few scalar
/// instructions around the multiply-adds.
template <int Lanes>
struct affine_rows_dot_sink {
  static_assert(Lanes == 16 || Lanes == 32 || Lanes == 64, "affine_rows_dot_sink takes 16, 32 or 64 lanes");
  static constexpr std::size_t max_batch = 8;
  struct args {
    const affine_block_dot_args* a;  // a->symbols is not read; a->lanes == Lanes
    std::uint32_t pad_symbol;
    bool padding_ok;  // set by finish: the padding rows held pad_symbol
  };

  ECQ_AVX512_TARGET explicit affine_rows_dot_sink(const args& s)
      : a(*s.a),
        x(s.a->x),
        cols(s.a->cols),
        batch(s.a->batch),
        wps_shift(std::uint32_t(s.a->codes_per_symbol - 1)),
        whole(affine_whole_columns(*s.a)),
        pad_symbol(s.pad_symbol),
        pad(_mm512_set1_epi32(int(s.pad_symbol))),
        code_mask(_mm512_set1_epi32((1 << s.a->code_bits) - 1)),
        code_shift(_mm512_set1_epi32(s.a->code_bits)) {
    for (std::size_t i = 0; i < batch * Lanes; ++i) acc[i] = 0.0f;
  }

  ECQ_AVX512_TARGET ECQ_FORCEINLINE void put(std::size_t index, __m512i symbol) {
    if (__builtin_expect(index >= next_event, 0) && column_event(index, symbol)) return;
    const std::size_t lane0 = index % Lanes;
    if (check_padding) bad |= _mm512_mask_cmpneq_epi32_mask(pad_lanes[lane0 / 16], symbol, pad);
    const float* xc = x + (x_offset + ((index / Lanes) << wps_shift));  // x_offset wraps, the sum does not
    float* sum = acc + lane0;
    const __m512 scale = _mm512_load_ps(scales + lane0), bias = _mm512_load_ps(biases + lane0);
    std::size_t b = 0;
    if (wps_shift == 0) {
      const __m512 w = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(symbol), bias);
      do {
        _mm512_store_ps(sum, _mm512_fmadd_ps(w, _mm512_set1_ps(xc[0]), _mm512_load_ps(sum)));
        xc += cols;
        sum += Lanes;
      } while (++b < batch);
    } else {
      const __m512 w0 = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(_mm512_and_si512(symbol, code_mask)), bias);
      const __m512 w1 = _mm512_fmadd_ps(scale, _mm512_cvtepi32_ps(_mm512_srlv_epi32(symbol, code_shift)), bias);
      do {
        const __m512 s0 = _mm512_fmadd_ps(w0, _mm512_set1_ps(xc[0]), _mm512_load_ps(sum));
        _mm512_store_ps(sum, _mm512_fmadd_ps(w1, _mm512_set1_ps(xc[1]), s0));
        xc += cols;
        sum += Lanes;
      } while (++b < batch);
    }
  }
  /// decode_stream calls put_partial only for a last register that the
  /// stream's n does not fill; a block's n (row_groups * columns * lanes) is
  /// a multiple of 16, so `active` is always every lane.
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void put_partial(std::size_t index, __m512i symbol, __mmask16) { put(index, symbol); }
  ECQ_AVX512_TARGET void finish(args& s) {
    flush();
    s.padding_ok = bad == 0 && padding_ok;
  }

 private:
  /// Column setup at the first register of a column (next_event): the end of
  /// a row group (its sums added to a.sums), the side data of a new group,
  /// the padding check of the last row group. Columns past `whole` run the
  /// scalar loop (put_scalar); @return true when it handled the register.
  ECQ_AVX512_TARGET bool column_event(std::size_t index, __m512i symbol) {
    if (index >= partial_end) {
      const std::uint64_t round = index / Lanes;
      if (round == group_base + a.columns) {
        flush();
        ++g;
        group_base += a.columns;
      }
      const std::uint64_t c = round - group_base;
      x_offset = (a.first_column - group_base) << wps_shift;  // wraps: see put
      const std::uint32_t r0 = g * std::uint32_t(Lanes);
      check_padding = r0 + std::uint32_t(Lanes) > a.valid_rows;
      for (std::uint32_t v = 0; v < std::uint32_t(Lanes) / 16; ++v)
        pad_lanes[v] = __mmask16(~avx512::first_lanes(std::ptrdiff_t(a.valid_rows) - std::ptrdiff_t(r0 + 16 * v)));
      if (c >= whole) {
        partial_end = index + Lanes;
        next_event = index;
      } else {
        const std::uint64_t wps = std::uint64_t(a.codes_per_symbol);
        const std::uint64_t group = ((a.first_column + c) * wps) >> a.group_shift;
        const std::uint64_t group_end = (((group + 1) << a.group_shift) / wps) - a.first_column;
        const std::uint64_t stop = group_end < whole ? group_end : whole;
        next_event = std::size_t(group_base + stop) * Lanes;
        for (std::uint32_t v = 0; v < std::uint32_t(Lanes) / 16; ++v) {
          const __mmask16 valid = avx512::first_lanes(std::ptrdiff_t(a.valid_rows) - std::ptrdiff_t(r0 + 16 * v));
          const __m512i side = _mm512_add_epi32(
              _mm512_mullo_epi32(_mm512_add_epi32(_mm512_set1_epi32(int(r0 + 16 * v)),
                                                  _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
                                 _mm512_set1_epi32(int(a.groups_per_row))),
              _mm512_set1_epi32(int(group)));
          _mm512_store_ps(scales + 16 * v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, side, a.scales, 4));
          _mm512_store_ps(biases + 16 * v, _mm512_mask_i32gather_ps(_mm512_setzero_ps(), valid, side, a.biases, 4));
        }
        return false;
      }
    }
    alignas(64) std::uint32_t q[16];
    _mm512_store_si512(q, symbol);
    for (std::uint32_t k = 0; k < 16; ++k) put_scalar(index + k, q[k]);
    return true;
  }

  /// One symbol of a column past `whole`, as affine_block_dot_columns (into `tail`).
  ECQ_AVX512_TARGET void put_scalar(std::size_t index, std::uint32_t symbol) {
    const std::uint32_t lane = std::uint32_t(index % Lanes), r = g * std::uint32_t(Lanes) + lane;
    if (r >= a.valid_rows) {
      padding_ok &= symbol == pad_symbol;
      return;
    }
    const std::uint32_t wps = std::uint32_t(a.codes_per_symbol), mask = (1u << a.code_bits) - 1;
    const std::uint64_t c = index / Lanes - group_base;
    for (std::size_t b = 0; b < batch; ++b) {
      float s = tail[lane * max_batch + b];
      for (std::uint32_t j = 0; j < wps; ++j) {
        const std::uint64_t col = (a.first_column + c) * wps + j;
        if (col >= cols) break;
        const std::uint64_t side = std::uint64_t(r) * a.groups_per_row + (col >> a.group_shift);
        const float w = a.scales[side] * float((symbol >> (j * std::uint32_t(a.code_bits))) & mask) + a.biases[side];
        s += w * x[b * cols + col];
      }
      tail[lane * max_batch + b] = s;
    }
    has_tail = true;
  }

  /// Adds the row group's sums (then its tail, as the two-pass form does) to a.sums.
  ECQ_AVX512_TARGET void flush() {
    const std::uint32_t r0 = g * std::uint32_t(Lanes);
    const std::uint32_t rows = a.valid_rows - r0 < std::uint32_t(Lanes) ? a.valid_rows - r0 : std::uint32_t(Lanes);
    for (std::uint32_t k = 0; k < rows; ++k)
      for (std::size_t b = 0; b < batch; ++b) {
        a.sums[std::size_t(r0 + k) * batch + b] += acc[b * Lanes + k];
        acc[b * Lanes + k] = 0.0f;
      }
    if (has_tail)
      for (std::uint32_t k = 0; k < rows; ++k)
        for (std::size_t b = 0; b < batch; ++b) {
          a.sums[std::size_t(r0 + k) * batch + b] += tail[k * max_batch + b];
          tail[k * max_batch + b] = 0.0f;
        }
    has_tail = false;
  }

  const affine_block_dot_args& a;
  const float* const x;
  const std::uint64_t cols;
  const std::size_t batch;
  const std::uint32_t wps_shift;  // codes per symbol - 1 (1 or 2 codes)
  const std::uint64_t whole;
  const std::uint32_t pad_symbol;
  const __m512i pad, code_mask, code_shift;
  std::size_t next_event = 0;   // stream index of the next column_event
  std::size_t partial_end = 0;  // [.., partial_end): a column past `whole`, symbol by symbol
  std::uint64_t group_base = 0;  // stream column of the row group's column 0
  std::uint64_t x_offset = 0;    // x + x_offset + (stream column << wps_shift): the column's first activation
  std::uint32_t g = 0;           // the row group
  bool check_padding = false, padding_ok = true, has_tail = false;
  __mmask16 bad = 0;
  __mmask16 pad_lanes[Lanes / 16] = {};
  alignas(64) float scales[Lanes];
  alignas(64) float biases[Lanes];
  alignas(64) float acc[max_batch * Lanes];
  float tail[Lanes * max_batch] = {};
};

}  // namespace detail
ECQ_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // ECQ_HAS_X86_KERNELS()

#endif  // ECQ_CPU_DETAIL_AFFINE_BLOCK_DOT_HPP
