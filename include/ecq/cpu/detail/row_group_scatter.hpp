// ecq/cpu/detail/row_group_scatter.hpp — from stream order to row-major, behind ecq/cpu/tensor_decoder.hpp.
//
// READ ME FIRST
// * A container block is coded lane-interleaved: the symbols of one row group
//   arrive as columns x lanes bytes, src[c * lanes + r] = symbol (row r,
//   column c) (ecq/tensor_view.hpp). Users want rows. scatter_row_group
//   writes them to dest[r * stride + c] as 16-bit values: the symbol, or,
//   given the raw bytes of the rows (the lossless float16 schemes,
//   ecq/schemes/float16.hpp), the pattern float16_split::join(symbol, raw).
// * AVX-512 (64 lanes, when the caller's kernel runs on the AVX-512 path):
//   16 columns of 64 lanes are 16 registers; four rounds of byte interleaves
//   transpose the four 16 x 16 squares held in their 128-bit lanes at once,
//   and the rows go, widened, to a small buffer with a stride of 96 values.
//   Only then are 64-column pieces of each row copied (or joined with the raw
//   bytes) to dest. The buffer is the point: dest's stride is usually a power
//   of two (4096 columns: 8 KB), so the 64 rows written at once all fall in
//   one set of the 12-way L1 cache, and writing 32-byte pieces straight to
//   them evicts every line before it is complete (1.5-3.3 G symbols/s; 4.8-7.5
//   G/s through the buffer, measured on 4096-column rows in and out of cache).
// * x86-64 otherwise: the same interleaves on 16 x 16 squares in SSE2
//   registers (part of the x86-64 base ISA, so no run-time dispatch), stored
//   straight to dest. Edges (fewer than 16 or 64 columns or rows left) and
//   other targets use the scalar loop; every path gives identical output.
#ifndef ECQ_CPU_DETAIL_ROW_GROUP_SCATTER_HPP
#define ECQ_CPU_DETAIL_ROW_GROUP_SCATTER_HPP

#include <cstddef>
#include <cstdint>

#include "../../config.hpp"
#include "../../cpu_features.hpp"
#include "../../schemes/float16.hpp"

#if ECQ_HAS_X86_KERNELS()
#include <immintrin.h>
#endif

ECQ_NAMESPACE_BEGIN
namespace detail {

/// The rows' raw bytes for the joined output: byte (row r, column c) at
/// bytes[r * stride + c], r and c counted from the row group's first row and
/// column. bytes == nullptr: the symbols themselves are written.
struct raw_rows {
  const std::uint8_t* bytes = nullptr;
  std::size_t stride = 0;
};

/// How the AVX-512 path stores whole 64-byte lines of dest: through the
/// cache, or with non-temporal stores (output much larger than the caches,
/// not read again soon: no read-for-ownership of each line, which halves
/// the memory traffic; 4.8 vs 3.1 G symbols/s measured on 4096-column rows
/// out of cache).
enum class row_stores { cached, streaming };

/// Scalar scatter of columns [first, columns) of rows [row_first, row_end).
inline void scatter_rows_scalar(const std::uint8_t* src, std::uint64_t columns, std::uint32_t lanes,
                                std::uint32_t row_first, std::uint32_t row_end, std::uint64_t first,
                                std::uint16_t* dest, std::size_t stride, raw_rows raw) {
  for (std::uint32_t r = row_first; r < row_end; ++r) {
    std::uint16_t* out = dest + std::size_t(r) * stride;
    if (raw.bytes == nullptr) {
      for (std::uint64_t c = first; c < columns; ++c) out[c] = src[c * lanes + r];
    } else {
      const std::uint8_t* low = raw.bytes + std::size_t(r) * raw.stride;
      for (std::uint64_t c = first; c < columns; ++c) out[c] = float16_split::join(src[c * lanes + r], low[c]);
    }
  }
}

#if ECQ_HAS_X86_KERNELS()
/// x = symbol << 8 | raw in each 16-bit lane -> float16_split::join(symbol, raw).
inline __m128i join_sse2(__m128i x) {
  const __m128i symbol = _mm_and_si128(_mm_srli_epi16(x, 1), _mm_set1_epi16(0x7f80));
  const __m128i mantissa = _mm_and_si128(x, _mm_set1_epi16(0x7f));
  const __m128i sign = _mm_and_si128(_mm_slli_epi16(x, 8), _mm_set1_epi16(std::int16_t(0x8000)));
  return _mm_or_si128(_mm_or_si128(symbol, mantissa), sign);
}

/// Rows [r0, r0 + 16) x columns [c0, c0 + 16): src rows are columns, 16 lanes each.
inline void scatter_square_sse2(const std::uint8_t* src, std::uint32_t lanes, std::uint32_t r0, std::uint64_t c0,
                                std::uint16_t* dest, std::size_t stride, raw_rows raw) {
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
  for (int k = 0; k < 16; ++k) {
    const std::size_t r = std::size_t(r0 + std::uint32_t(k));
    std::uint16_t* out = dest + r * stride + c0;
    __m128i lo, hi;
    if (raw.bytes == nullptr) {
      lo = _mm_unpacklo_epi8(a[k], _mm_setzero_si128());
      hi = _mm_unpackhi_epi8(a[k], _mm_setzero_si128());
    } else {
      const __m128i low = _mm_loadu_si128(reinterpret_cast<const __m128i*>(raw.bytes + r * raw.stride + c0));
      lo = join_sse2(_mm_unpacklo_epi8(low, a[k]));
      hi = join_sse2(_mm_unpackhi_epi8(low, a[k]));
    }
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out), lo);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), hi);
  }
}

#define ECQ_SCATTER_AVX512_TARGET __attribute__((target("avx512f,avx512bw")))

/// A 64-lane row group on AVX-512 (see the file comment); rows <= 64.
ECQ_SCATTER_AVX512_TARGET inline void scatter_group64_avx512(const std::uint8_t* src, std::uint64_t columns,
                                                             std::uint32_t rows, std::uint16_t* dest,
                                                             std::size_t stride, raw_rows raw, row_stores stores) {
  constexpr std::size_t buffer_stride = 96;  // 192 bytes: consecutive rows in different L1 sets, 64-byte aligned
  alignas(64) std::uint16_t buffer[64 * buffer_stride];
  const std::uint64_t whole = columns / 64 * 64;
  for (std::uint64_t c1 = 0; c1 < whole; c1 += 64) {
    for (std::uint64_t q = 0; q < 4; ++q) {
      __m512i a[16], b[16];
      for (std::uint64_t k = 0; k < 16; ++k) a[k] = _mm512_loadu_si512(src + (c1 + 16 * q + k) * 64);
      for (int round = 0; round < 4; ++round) {
        for (int k = 0; k < 8; ++k) {
          b[2 * k] = _mm512_unpacklo_epi8(a[k], a[k + 8]);
          b[2 * k + 1] = _mm512_unpackhi_epi8(a[k], a[k + 8]);
        }
        for (int k = 0; k < 16; ++k) a[k] = b[k];
      }
      // a[k], 128-bit lane j: row 16 j + k, columns 16 q .. 16 q + 15.
      for (std::size_t k = 0; k < 16; ++k) {
        const __m512i lo = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(a[k]));        // rows k, 16 + k
        const __m512i hi = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(a[k], 1));  // rows 32 + k, 48 + k
        std::uint16_t* o = buffer + k * buffer_stride + 16 * q;
        _mm256_store_si256(reinterpret_cast<__m256i*>(o), _mm512_castsi512_si256(lo));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o + 16 * buffer_stride), _mm512_extracti64x4_epi64(lo, 1));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o + 32 * buffer_stride), _mm512_castsi512_si256(hi));
        _mm256_store_si256(reinterpret_cast<__m256i*>(o + 48 * buffer_stride), _mm512_extracti64x4_epi64(hi, 1));
      }
    }
    for (std::size_t r = 0; r < rows; ++r) {
      __m512i x0 = _mm512_load_si512(buffer + r * buffer_stride);
      __m512i x1 = _mm512_load_si512(buffer + r * buffer_stride + 32);
      if (raw.bytes != nullptr) {
        const std::uint8_t* low = raw.bytes + r * raw.stride + c1;
        const __m512i l0 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(low)));
        const __m512i l1 = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(low + 32)));
        // join: symbol << 7 | (raw & 0x7f) | (raw & 0x80) << 8
        const __m512i m7f = _mm512_set1_epi16(0x7f), sign = _mm512_set1_epi16(std::int16_t(0x8000));
        x0 = _mm512_or_si512(_mm512_or_si512(_mm512_slli_epi16(x0, 7), _mm512_and_si512(l0, m7f)),
                             _mm512_and_si512(_mm512_slli_epi16(l0, 8), sign));
        x1 = _mm512_or_si512(_mm512_or_si512(_mm512_slli_epi16(x1, 7), _mm512_and_si512(l1, m7f)),
                             _mm512_and_si512(_mm512_slli_epi16(l1, 8), sign));
      }
      std::uint16_t* o = dest + r * stride + c1;
      if (stores == row_stores::streaming && reinterpret_cast<std::uintptr_t>(o) % 64 == 0) {
        _mm512_stream_si512(reinterpret_cast<__m512i*>(o), x0);
        _mm512_stream_si512(reinterpret_cast<__m512i*>(o + 32), x1);
      } else {
        _mm512_storeu_si512(o, x0);
        _mm512_storeu_si512(o + 32, x1);
      }
    }
  }
  if (stores == row_stores::streaming) _mm_sfence();  // ordered before whatever the caller does next
  scatter_rows_scalar(src, columns, 64, 0, rows, whole, dest, stride, raw);
}
#endif

/// Writes rows [0, rows) of one row group (src: columns x lanes bytes in
/// stream order) to dest[r * stride + c], joined with `raw` when it has
/// bytes (see the file comment). rows <= lanes; rows past `rows` are padding
/// and are not written. avx512: the caller runs on the AVX-512 path (its
/// kernel does), so this may too; `stores` applies to that path.
inline void scatter_row_group(const std::uint8_t* src, std::uint64_t columns, std::uint32_t lanes, std::uint32_t rows,
                              std::uint16_t* dest, std::size_t stride, bool avx512, raw_rows raw = {},
                              row_stores stores = row_stores::cached) {
  std::uint32_t r = 0;
#if ECQ_HAS_X86_KERNELS()
  if (avx512 && lanes == 64) return scatter_group64_avx512(src, columns, rows, dest, stride, raw, stores);
  if (lanes % 16 == 0) {
    const std::uint64_t whole_columns = columns / 16 * 16;
    for (; r + 16 <= rows; r += 16)
      for (std::uint64_t c = 0; c < whole_columns; c += 16) scatter_square_sse2(src, lanes, r, c, dest, stride, raw);
    scatter_rows_scalar(src, columns, lanes, 0, r, whole_columns, dest, stride, raw);
  }
#else
  (void)avx512;
  (void)stores;
#endif
  scatter_rows_scalar(src, columns, lanes, r, rows, 0, dest, stride, raw);
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
