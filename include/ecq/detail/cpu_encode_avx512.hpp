// ecq/detail/cpu_encode_avx512.hpp — the AVX-512 kernel behind ecq/cpu_encode.hpp.
//
// READ ME FIRST
// * rans32x16<ScaleBits <= 12> streams with Lanes = 16 * Vectors, 8-bit
//   symbols; output identical, word for word, to interleaved_encode.
// * The encoder runs backwards like the scalar one: the partial last round
//   first, then whole rounds from the end; within a round the registers
//   from the highest lanes down. The scalar encoder's lanes j = N-1 .. 0 emit
//   their words downwards, so a register's emitted words, in lane order, are
//   the `count` words just below the write pointer: vpcompressw packs them
//   and a masked store (not the microcoded compress-to-memory form) writes
//   exactly those words.
// * Per symbol the encoder needs freq, bias, rcp_freq and rcp_shift (and
//   M - freq). They are repacked from encode_symbol into two dwords:
//   rcp_freq, and [freq:13][bias:13][rcp_shift:5] (freq <= 2^12, bias <
//   2^13 for ScaleBits <= 12). Alphabets of at most 16 symbols look them up
//   with vpermd from registers, larger ones with two gathers.
// * x / freq is computed as in rans_put: mul_high(x, rcp_freq) >> rcp_shift,
//   the 32x32 -> high 32 multiply done as two vpmuludq (even and odd lanes).
// * Compiled with a target attribute; callers check the CPU first. No lambdas.
#ifndef ECQ_DETAIL_CPU_ENCODE_AVX512_HPP
#define ECQ_DETAIL_CPU_ENCODE_AVX512_HPP

#include "../cpu_features.hpp"

#if ECQ_HAS_X86_KERNELS()

// GCC 12 false positives inside its intrinsics headers; see cpu_decode_avx512.hpp.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "../status.hpp"
#include "cpu_decode_avx512.hpp"

ECQ_NAMESPACE_BEGIN
namespace detail {
namespace avx512 {

/// The repacked encode table (see the file comment), 256 entries.
struct encode_entries {
  const std::uint32_t* rcp;     // rcp_freq
  const std::uint32_t* packed;  // freq | bias << 13 | rcp_shift << 26
  const std::uint8_t* valid;    // 1 for symbols that can be encoded (freq > 0), else 0
  bool small;                   // alphabet <= 16: use the register lookup
};

/// Symbol -> (rcp_freq, packed) for 16 lanes.
struct encode_lookup {
  __m512i rcp16, packed16;
  const int* rcp;
  const int* packed;
  bool small;
  ECQ_AVX512_TARGET explicit encode_lookup(const encode_entries& e)
      : rcp16(_mm512_loadu_si512(e.rcp)),
        packed16(_mm512_loadu_si512(e.packed)),
        rcp(reinterpret_cast<const int*>(e.rcp)),
        packed(reinterpret_cast<const int*>(e.packed)),
        small(e.small) {}
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void get(__m512i s, __m512i* r, __m512i* p) const {
    if (small) {
      *r = _mm512_permutexvar_epi32(s, rcp16);
      *p = _mm512_permutexvar_epi32(s, packed16);
    } else {
      *r = _mm512_i32gather_epi32(s, rcp, 4);
      *p = _mm512_i32gather_epi32(s, packed, 4);
    }
  }
};

/// @return whether every symbol of s[0, n) has valid[symbol] != 0.
ECQ_AVX512_TARGET inline bool all_encodable(const std::uint8_t* s, std::size_t n, const std::uint8_t* valid) {
  const __m512i t0 = _mm512_loadu_si512(valid), t1 = _mm512_loadu_si512(valid + 64);
  const __m512i t2 = _mm512_loadu_si512(valid + 128), t3 = _mm512_loadu_si512(valid + 192);
  __mmask64 bad = 0;
  for (std::size_t i = 0; i < n; i += 64) {
    const __mmask64 in = n - i >= 64 ? ~__mmask64(0) : (__mmask64(1) << (n - i)) - 1;
    const __m512i v = _mm512_maskz_loadu_epi8(in, s + i);
    const __mmask64 high = _mm512_movepi8_mask(v);  // bit 7: symbols 128..255
    const __m512i lo = _mm512_permutex2var_epi8(t0, v, t1);
    const __m512i hi = _mm512_permutex2var_epi8(t2, v, t3);
    const __m512i ok = _mm512_mask_blend_epi8(high, lo, hi);
    bad |= _mm512_mask_testn_epi8_mask(in, ok, ok);
  }
  return bad == 0;
}

/// One register's step of rans_put for the lanes in `active`: emit the low
/// word of every lane with x >= freq << (31 - ScaleBits) below *p (lane
/// order = address order), then x = x + bias + (x / freq) * (M - freq).
template <int ScaleBits>
ECQ_AVX512_TARGET ECQ_FORCEINLINE __m512i put(__m512i x, __m512i symbol, __mmask16 active, const encode_lookup& lookup,
                                              std::uint16_t** p) {
  __m512i rcp, packed;
  lookup.get(symbol, &rcp, &packed);
  const __m512i field = _mm512_set1_epi32(0x1fff);
  const __m512i freq = _mm512_and_si512(packed, field);
  const __m512i bias = _mm512_and_si512(_mm512_srli_epi32(packed, 13), field);
  const __m512i shift = _mm512_srli_epi32(packed, 26);
  const __mmask16 emit = _mm512_mask_cmpge_epu32_mask(active, _mm512_srli_epi32(x, 31 - ScaleBits), freq);
  const unsigned count = unsigned(_mm_popcnt_u32(emit));
  const __m256i words = _mm256_maskz_compress_epi16(__mmask16(emit), _mm512_cvtepi32_epi16(x));
  *p -= count;
  _mm256_mask_storeu_epi16(*p, __mmask16((1u << count) - 1), words);
  x = _mm512_mask_srli_epi32(x, emit, x, 16);
  // mul_high(x, rcp): even lanes from vpmuludq of the low dwords, odd lanes of the high dwords.
  const __m512i even = _mm512_srli_epi64(_mm512_mul_epu32(x, rcp), 32);
  const __m512i odd = _mm512_mul_epu32(_mm512_srli_epi64(x, 32), _mm512_srli_epi64(rcp, 32));
  const __m512i q = _mm512_srlv_epi32(_mm512_mask_blend_epi32(__mmask16(0xaaaa), even, odd), shift);
  const __m512i cmpl = _mm512_sub_epi32(_mm512_set1_epi32(1 << ScaleBits), freq);
  const __m512i next = _mm512_add_epi32(_mm512_add_epi32(x, bias), _mm512_mullo_epi32(q, cmpl));
  return _mm512_mask_mov_epi32(x, active, next);
}

/// Encodes symbols[0, n) into the top of out[0, capacity) like
/// interleaved_encode, then moves the stream to the front. The caller has
/// checked the capacity and the symbols.
/// @return the stream length in words.
template <int ScaleBits, int Vectors>
ECQ_AVX512_TARGET std::size_t encode_stream(const std::uint8_t* symbols, std::size_t n, const encode_entries& entries,
                                            std::uint16_t* out, std::size_t capacity) {
  constexpr std::size_t lanes = 16 * std::size_t(Vectors);
  const encode_lookup lookup(entries);
  __m512i x[Vectors];
  for (int v = 0; v < Vectors; ++v) x[v] = _mm512_set1_epi32(int(lower_bound));
  std::uint16_t* p = out + capacity;

  const std::size_t full_rounds_end = n - n % lanes;
  for (int v = Vectors - 1; v >= 0; --v) {  // the partial last round
    const std::size_t index = full_rounds_end + 16 * std::size_t(v);
    const __mmask16 active = first_lanes(std::ptrdiff_t(n) - std::ptrdiff_t(index));
    if (active == 0) continue;
    const __m512i s = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(active, symbols + index));
    x[v] = put<ScaleBits>(x[v], s, active, lookup, &p);
  }
  for (std::size_t base = full_rounds_end; base > 0;) {
    base -= lanes;
    ECQ_PRAGMA_UNROLL
    for (int v = Vectors - 1; v >= 0; --v) {
      const __m512i s = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(symbols + base + 16 * v)));
      x[v] = put<ScaleBits>(x[v], s, __mmask16(0xffff), lookup, &p);
    }
  }
  // Flush: lane 0 first, each state least significant word first.
  p -= 2 * lanes;
  for (int v = 0; v < Vectors; ++v) _mm512_storeu_si512(p + 32 * v, x[v]);
  const std::size_t size = std::size_t(out + capacity - p);
  for (std::size_t k = 0; k < size; ++k) out[k] = p[k];  // forward copy: out <= p, regions may overlap
  return size;
}

}  // namespace avx512
}  // namespace detail
ECQ_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // ECQ_HAS_X86_KERNELS()

#endif  // ECQ_DETAIL_CPU_ENCODE_AVX512_HPP
