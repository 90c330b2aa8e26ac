// ecq/cpu/detail/row_group_scatter.hpp — from stream order to row-major, behind ecq/cpu/tensor_decoder.hpp.
//
// READ ME FIRST
// * A container block is coded lane-interleaved: the symbols of one row group
//   arrive as columns x lanes bytes, src[c * lanes + r] = symbol (row r,
//   column c) (ecq/tensor_view.hpp). Users want rows. scatter_row_group
//   writes them to dest[r * stride + c] as 16-bit symbols.
// * x86-64: whole 16 x 16 squares go through SSE2 (part of the x86-64 base
//   ISA, so no run-time dispatch is needed): four rounds of byte
//   interleaves transpose a square (each round rotates the row and column
//   index bits by one), and one more widens the bytes to 16 bits. About 100
//   instructions per 256 symbols, so the scatter costs a tenth of what the
//   decoding of those symbols does. Edges (fewer than 16 columns or rows
//   left) and other targets use the scalar loop; both give identical output.
#ifndef ECQ_CPU_DETAIL_ROW_GROUP_SCATTER_HPP
#define ECQ_CPU_DETAIL_ROW_GROUP_SCATTER_HPP

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../cpu_features.hpp"

#if ECQ_HAS_X86_KERNELS()
#include <emmintrin.h>
#endif

ECQ_NAMESPACE_BEGIN
namespace detail {

/// Scalar scatter of columns [first, columns) of rows [row_first, row_end).
inline void scatter_rows_scalar(const std::uint8_t* src, std::uint64_t columns, std::uint32_t lanes,
                                std::uint32_t row_first, std::uint32_t row_end, std::uint64_t first,
                                std::uint16_t* dest, std::size_t stride) {
  for (std::uint32_t r = row_first; r < row_end; ++r) {
    std::uint16_t* out = dest + std::size_t(r) * stride;
    for (std::uint64_t c = first; c < columns; ++c) out[c] = src[c * lanes + r];
  }
}

#if ECQ_HAS_X86_KERNELS()
/// Rows [r0, r0 + 16) x columns [c0, c0 + 16): src rows are columns, 16 lanes each.
inline void scatter_square_sse2(const std::uint8_t* src, std::uint32_t lanes, std::uint32_t r0, std::uint64_t c0,
                                std::uint16_t* dest, std::size_t stride) {
  __m128i a[16], b[16];
  for (int k = 0; k < 16; ++k)
    a[k] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + (c0 + std::uint64_t(k)) * lanes + r0));
  for (int round = 0; round < 4; ++round) {
    for (int k = 0; k < 8; ++k) {
      b[2 * k] = _mm_unpacklo_epi8(a[k], a[k + 8]);
      b[2 * k + 1] = _mm_unpackhi_epi8(a[k], a[k + 8]);
    }
    for (int k = 0; k < 16; ++k) a[k] = b[k];
  }
  const __m128i zero = _mm_setzero_si128();
  for (int k = 0; k < 16; ++k) {
    std::uint16_t* out = dest + std::size_t(r0 + std::uint32_t(k)) * stride + c0;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), _mm_unpacklo_epi8(a[k], zero));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm_unpackhi_epi8(a[k], zero));
  }
}
#endif

/// Writes rows [0, rows) of one row group (src: columns x lanes bytes in
/// stream order) to dest[r * stride + c]. rows <= lanes; rows past `rows`
/// are padding and are not written.
inline void scatter_row_group(const std::uint8_t* src, std::uint64_t columns, std::uint32_t lanes, std::uint32_t rows,
                              std::uint16_t* dest, std::size_t stride) {
  std::uint32_t r = 0;
#if ECQ_HAS_X86_KERNELS()
  if (lanes % 16 == 0) {
    const std::uint64_t whole_columns = columns / 16 * 16;
    for (; r + 16 <= rows; r += 16)
      for (std::uint64_t c = 0; c < whole_columns; c += 16) scatter_square_sse2(src, lanes, r, c, dest, stride);
    scatter_rows_scalar(src, columns, lanes, 0, r, whole_columns, dest, stride);
  }
#endif
  scatter_rows_scalar(src, columns, lanes, r, rows, 0, dest, stride);
}

/// @return whether every padding position (rows [rows, lanes) of the group) holds `pad`.
inline bool padding_holds(const std::uint8_t* src, std::uint64_t columns, std::uint32_t lanes, std::uint32_t rows,
                          std::uint32_t pad) {
  if (rows == lanes) return true;
  bool ok = true;
  for (std::uint64_t c = 0; c < columns; ++c)
    for (std::uint32_t r = rows; r < lanes; ++r) ok &= src[c * lanes + r] == pad;
  return ok;
}

}  // namespace detail
ECQ_NAMESPACE_END

#endif  // ECQ_CPU_DETAIL_ROW_GROUP_SCATTER_HPP
