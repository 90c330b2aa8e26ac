// ecq/cpu/detail/row_group_scatter.hpp — from stream order to row-major, behind ecq/cpu/tensor_decoder.hpp.
//
// READ ME FIRST
// * A container block is coded lane-interleaved: the symbols of one row group
//   arrive as columns x lanes bytes, src[c * lanes + r] = symbol (row r,
//   column c) (ecq/tensor_view.hpp). Users want rows. scatter_row_group
//   writes them to dest[r * stride + c] as 16-bit values (the symbol, or,
//   given the raw bytes of the rows, for the lossless float16 schemes of
//   ecq/schemes/float16.hpp, the pattern float16_split::join(symbol, raw)) or
//   as bytes (the symbol, for alphabets of <= 256 symbols: half the writes).
// * AVX-512 (64 lanes, when the caller's kernel runs on the AVX-512 path;
//   scatter_piece64_avx512): 16 columns of 64 lanes are 16 registers; four rounds of byte interleaves
//   transpose the four 16 x 16 squares held in their 128-bit lanes at once,
//   and the rows go (widened to 16 bits, or as bytes) to a small buffer with
//   a stride of 192 bytes. Only then are 64-column pieces of each row copied
//   (or joined with the raw bytes) to dest. The buffer is the point: dest's
//   stride is usually a power of two (4096 columns: 8 KB), so the 64 rows
//   written at once all fall in one set of the 12-way L1 cache, and writing
//   32-byte pieces straight to them evicts every line before it is complete
//   (1.5-3.3 G symbols/s; 4.8-7.5 G/s through the buffer, measured on
//   4096-column rows in and out of cache).
// * row_scatter_sink64 runs these pieces inside the AVX-512 decoding loop
//   (ecq/detail/cpu_decode_avx512.hpp): the kernel's symbols collect in a
//   4 KB piece that stays in L1 and go to rows 64 columns at a time, so a
//   block's stream order is never written out whole and the stores of a large
//   output drain while the kernel decodes (docs/performance.md, issue #11).
// * x86-64 otherwise: the same interleaves on 16 x 16 squares in SSE2
//   registers (part of the x86-64 base ISA, so no run-time dispatch), stored
//   straight to dest. Edges (fewer than 16 columns or rows left) and other
//   targets use the scalar loop; every path gives identical output.
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

/// @return whether every padding position (rows [rows, lanes) of the group) holds `pad`.
inline bool padding_holds(const std::uint8_t* src, std::uint64_t columns, std::uint32_t lanes, std::uint32_t rows,
                          std::uint32_t pad) {
  if (rows == lanes) return true;
  bool ok = true;
  for (std::uint64_t c = 0; c < columns; ++c)
    for (std::uint32_t r = rows; r < lanes; ++r) ok &= src[c * lanes + r] == pad;
  return ok;
}

/// Scalar scatter of columns [first, columns) of rows [row_first, row_end).
/// T is std::uint16_t (symbols, or patterns joined with `raw`) or
/// std::uint8_t (symbols only: raw is ignored).
template <class T>
inline void scatter_rows_scalar(const std::uint8_t* src, std::uint64_t columns, std::uint32_t lanes,
                                std::uint32_t row_first, std::uint32_t row_end, std::uint64_t first, T* dest,
                                std::size_t stride, raw_rows raw) {
  for (std::uint32_t r = row_first; r < row_end; ++r) {
    T* out = dest + std::size_t(r) * stride;
    if (sizeof(T) == 1 || raw.bytes == nullptr) {  // bytes: symbols only
      for (std::uint64_t c = first; c < columns; ++c) out[c] = src[c * lanes + r];
    } else {
      const std::uint8_t* low = raw.bytes + std::size_t(r) * raw.stride;
      for (std::uint64_t c = first; c < columns; ++c) out[c] = T(float16_split::join(src[c * lanes + r], low[c]));
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
template <class T>
inline void scatter_square_sse2(const std::uint8_t* src, std::uint32_t lanes, std::uint32_t r0, std::uint64_t c0,
                                T* dest, std::size_t stride, raw_rows raw) {
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
    T* out = dest + r * stride + c0;
    if constexpr (sizeof(T) == 1) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out), a[k]);
      continue;
    }
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

#define ECQ_SCATTER_AVX512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))

/// Rows [16 b, min(rows, 16 b + 16)) of scatter_piece64_avx512.
template <class T>
ECQ_SCATTER_AVX512_TARGET inline void scatter_rows16_avx512(const std::uint8_t* src, std::uint32_t b,
                                                            std::uint32_t rows, std::uint32_t count, T* dest,
                                                            std::size_t stride, raw_rows raw, row_stores stores) {
  const bool whole = count == 64;
  const bool stream = whole && stores == row_stores::streaming;
  const __mmask64 m = whole ? ~__mmask64(0) : (__mmask64(1) << count) - 1;  // bytes of a row that are written
  {
    // a[c], 128-bit lane j: rows 16 b .. 16 b + 15 of column 16 j + c.
    __m512i a[16], t[16];
    for (std::uint32_t c = 0; c < 16; ++c) {
      const std::uint8_t* p = src + std::size_t(c) * 64 + 16 * b;
      if (whole) {
        a[c] = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
        for (std::uint32_t j = 1; j < 4; ++j)
          a[c] = _mm512_mask_broadcast_i32x4(a[c], __mmask16(0xf << (4 * j)),
                                             _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 1024 * j)));
      } else {
        a[c] = _mm512_setzero_si512();
        for (std::uint32_t j = 0; j < 4; ++j)
          if (16 * j + c < count)
            a[c] = _mm512_mask_broadcast_i32x4(a[c], __mmask16(0xf << (4 * j)),
                                               _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 1024 * j)));
      }
    }
    // Four rounds of byte interleaves transpose each lane's 16 x 16 square.
    for (int round = 0; round < 4; ++round) {
      for (int k = 0; k < 8; ++k) {
        t[2 * k] = _mm512_unpacklo_epi8(a[k], a[k + 8]);
        t[2 * k + 1] = _mm512_unpackhi_epi8(a[k], a[k + 8]);
      }
      for (int k = 0; k < 16; ++k) a[k] = t[k];
    }
    // a[k]: row 16 b + k, columns 0 .. 63 in order.
    const std::uint32_t row_end = rows - 16 * b < 16 ? rows - 16 * b : 16;
    for (std::uint32_t k = 0; k < row_end; ++k) {
      const std::size_t r = 16 * std::size_t(b) + k;
      T* o = dest + r * stride;
      const bool aligned = stream && reinterpret_cast<std::uintptr_t>(o) % 64 == 0;
      if constexpr (sizeof(T) == 1) {
        if (aligned) _mm512_stream_si512(reinterpret_cast<__m512i*>(o), a[k]);
        else if (whole) _mm512_storeu_si512(o, a[k]);
        else _mm512_mask_storeu_epi8(o, m, a[k]);
      } else {
        __m512i x0 = _mm512_cvtepu8_epi16(_mm512_castsi512_si256(a[k]));
        __m512i x1 = _mm512_cvtepu8_epi16(_mm512_extracti64x4_epi64(a[k], 1));
        const __mmask32 m0 = __mmask32(m), m1 = __mmask32(m >> 32);
        if (raw.bytes != nullptr) {
          const std::uint8_t* low = raw.bytes + r * raw.stride;
          const __m512i l0 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m0, low));
          const __m512i l1 = _mm512_cvtepu8_epi16(_mm256_maskz_loadu_epi8(m1, low + 32));
          // join: symbol << 7 | (raw & 0x7f) | (raw & 0x80) << 8
          const __m512i m7f = _mm512_set1_epi16(0x7f), sign = _mm512_set1_epi16(std::int16_t(0x8000));
          x0 = _mm512_or_si512(_mm512_or_si512(_mm512_slli_epi16(x0, 7), _mm512_and_si512(l0, m7f)),
                               _mm512_and_si512(_mm512_slli_epi16(l0, 8), sign));
          x1 = _mm512_or_si512(_mm512_or_si512(_mm512_slli_epi16(x1, 7), _mm512_and_si512(l1, m7f)),
                               _mm512_and_si512(_mm512_slli_epi16(l1, 8), sign));
        }
        if (aligned) {
          _mm512_stream_si512(reinterpret_cast<__m512i*>(o), x0);
          _mm512_stream_si512(reinterpret_cast<__m512i*>(o + 32), x1);
        } else if (whole) {
          _mm512_storeu_si512(o, x0);
          _mm512_storeu_si512(o + 32, x1);
        } else {
          _mm512_mask_storeu_epi16(o, m0, x0);
          _mm512_mask_storeu_epi16(o + 32, m1, x1);
        }
      }
    }
  }
}

/// Rows [0, rows) x columns [0, count) of a piece of 64-lane stream order
/// (column c at src + 64 c; count <= 64, only columns < count are read) to
/// dest[r * stride + c] (see the file comment); whole 64-column rows with
/// non-temporal stores for row_stores::streaming where a row piece starts on
/// a 64-byte line.
template <class T>
ECQ_SCATTER_AVX512_TARGET inline void scatter_piece64_avx512(const std::uint8_t* src, std::uint32_t rows,
                                                             std::uint32_t count, T* dest, std::size_t stride,
                                                             raw_rows raw, row_stores stores) {
  for (std::uint32_t b = 0; 16 * b < rows; ++b) scatter_rows16_avx512(src, b, rows, count, dest, stride, raw, stores);
}

/// A sink of detail::avx512::decode_stream (ecq/detail/cpu_decode_avx512.hpp)
/// that scatters a 64-lane block to rows as it is decoded: the symbols of
/// one piece of a row group (up to 64 columns, 4 KB in stream order) collect
/// in one of two buffers that stay in L1; while the kernel fills the other,
/// the full one goes to dest 16 rows at a time, one row block after every 16
/// columns decoded (scatter_rows16_avx512), so a block's stream order is
/// never written out whole and the stores of a large output are spread over
/// the decoding instead of arriving in bursts that fill the store queue.
/// Pieces are cut so that whole 64-column row pieces start on 64-byte lines
/// of dest where its rows allow it (the row stride a multiple of 64 bytes):
/// a first piece per row group of fewer columns takes the misalignment.
/// Padding rows (past valid_rows) are checked, never written.
/// Precondition: the stream holds exactly row_groups * 64 * columns symbols
/// (a block_view's num_symbols()), delivered in order, 16 at a time.
template <class T>
struct row_scatter_sink64 {
  struct args {
    T* dest;                    // row 0, column 0 of the block
    std::size_t stride;         // of dest, in values
    raw_rows raw;               // joined output (T = std::uint16_t), or none
    row_stores stores;
    std::uint64_t columns;      // of the block
    std::uint32_t valid_rows;   // rows past them are padding: checked, never written
    std::uint32_t pad_symbol;
    bool bad_padding;           // out (set by finish): a padding position does not hold pad_symbol
  };
  // A piece being written out: its buffer, shape and place.
  struct pending_piece {
    const std::uint8_t* src = nullptr;
    T* dest = nullptr;
    raw_rows raw;
    std::uint32_t count = 0, rows = 0, next = 0;  // next: the next 16-row block to write
  };
  alignas(64) std::uint8_t piece[2][64 * 64];
  args a;
  pending_piece out;
  std::uint64_t base = 0, flush_at = 0, event_at = 0, column = 0, lead = 0;
  std::uint32_t group = 0, filling = 0;
  bool bad = false;

  ECQ_SCATTER_AVX512_TARGET explicit row_scatter_sink64(const args& x) : a(x) {
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(a.dest);
    if ((a.stride * sizeof(T)) % 64 == 0 && at % sizeof(T) == 0) lead = (64 - at % 64) % 64 / sizeof(T);
    flush_at = event_at = 64 * piece_columns();
  }
  std::uint64_t piece_columns() const {
    const std::uint64_t want = column == 0 && lead != 0 ? lead : 64;
    return a.columns - column < want ? a.columns - column : want;
  }
  ECQ_SCATTER_AVX512_TARGET void write_block() {
    scatter_rows16_avx512(out.src, out.next, out.rows, out.count, out.dest, a.stride, out.raw, a.stores);
    ++out.next;
  }
  // Out of line: once per 16 columns, and the decoding loop stays small.
  ECQ_SCATTER_AVX512_TARGET __attribute__((noinline)) void event() {
    if (event_at == flush_at) {
      while (16 * out.next < out.rows) write_block();
      // The piece just filled becomes the one written out.
      const std::uint32_t count = std::uint32_t((flush_at - base) / 64);
      const std::uint32_t first_row = 64 * group;
      const std::uint32_t left = a.valid_rows > first_row ? a.valid_rows - first_row : 0;
      out.src = piece[filling];
      out.dest = a.dest + std::size_t(first_row) * a.stride + column;
      out.raw = {a.raw.bytes != nullptr ? a.raw.bytes + std::size_t(first_row) * a.raw.stride + column : nullptr,
                 a.raw.stride};
      out.count = count;
      out.rows = left < 64 ? left : 64;
      out.next = 0;
      if (out.rows < 64) bad |= !padding_holds(out.src, count, 64, out.rows, a.pad_symbol);
      filling ^= 1;
      column += count;
      if (column == a.columns) {
        column = 0;
        ++group;
      }
      base = flush_at;
      flush_at = base + 64 * piece_columns();
    } else {
      write_block();
    }
    // The next row block after the next 16 columns, or the end of the piece.
    const std::uint64_t next = event_at + 1024 - (event_at - base) % 1024;
    event_at = 16 * out.next < out.rows && next < flush_at ? next : flush_at;
  }
  ECQ_SCATTER_AVX512_TARGET ECQ_FORCEINLINE void put(std::size_t index, __m512i symbol) {
    _mm_store_si128(reinterpret_cast<__m128i*>(piece[filling] + (index - base)), _mm512_cvtepi32_epi8(symbol));
    if (index + 16 == event_at) event();
  }
  ECQ_SCATTER_AVX512_TARGET ECQ_FORCEINLINE void put_partial(std::size_t index, __m512i symbol, __mmask16 active) {
    _mm512_mask_cvtepi32_storeu_epi8(piece[filling] + (index - base), active, symbol);
    if (index + 16 >= event_at) event();
  }
  ECQ_SCATTER_AVX512_TARGET void finish(args& x) {
    while (16 * out.next < out.rows) write_block();
    x.bad_padding = bad;
  }
};
#endif

/// Writes rows [0, rows) of one row group (src: columns x lanes bytes in
/// stream order) to dest[r * stride + c], joined with `raw` when it has
/// bytes and T is std::uint16_t (see the file comment). rows <= lanes; rows
/// past `rows` are padding and are not written. (64-lane blocks on AVX-512
/// take row_scatter_sink64 instead.)
template <class T>
inline void scatter_row_group(const std::uint8_t* src, std::uint64_t columns, std::uint32_t lanes, std::uint32_t rows,
                              T* dest, std::size_t stride, raw_rows raw = {}) {
  std::uint32_t r = 0;
#if ECQ_HAS_X86_KERNELS()
  if (lanes % 16 == 0) {
    const std::uint64_t whole_columns = columns / 16 * 16;
    for (; r + 16 <= rows; r += 16)
      for (std::uint64_t c = 0; c < whole_columns; c += 16) scatter_square_sse2(src, lanes, r, c, dest, stride, raw);
    scatter_rows_scalar(src, columns, lanes, 0, r, whole_columns, dest, stride, raw);
  }
#endif
  scatter_rows_scalar(src, columns, lanes, r, rows, 0, dest, stride, raw);
}


}  // namespace detail
ECQ_NAMESPACE_END

#endif  // ECQ_CPU_DETAIL_ROW_GROUP_SCATTER_HPP
