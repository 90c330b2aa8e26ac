// ecq/detail/cpu_decode_avx2.hpp — AVX2 kernels behind ecq/cpu_decode.hpp.
//
// READ ME FIRST
// * For rans32x16 streams with Lanes = 8 * Vectors: lane j of the stream is
//   dword j % 8 of ymm register j / 8. Table lookups are 8-lane gathers from
//   the packed decode table (2 * ScaleBits + SymbolBits <= 32).
// * AVX2 has no expand instruction: the refill words of a register (taken in
//   lane order) are moved to their lanes with vpermd, using a 256-entry table
//   of lane permutations indexed by the refill mask.
// * Compiled with a target attribute (ECQ_AVX2_TARGET), never with -march;
//   callers check the CPU first. No lambdas (see cpu_decode_avx512.hpp).
// * Memory-safe like the AVX-512 kernel: fast rounds need Lanes words left;
//   nearer the end the (at most 8) words a register may take are copied to a
//   zero-padded buffer first. Statuses equal interleaved_decode_checked's.
#ifndef ECQ_DETAIL_CPU_DECODE_AVX2_HPP
#define ECQ_DETAIL_CPU_DECODE_AVX2_HPP

#include "../cpu_features.hpp"

#if ECQ_HAS_X86_KERNELS()

// GCC 12 reports (maybe-)uninitialized variables inside its own intrinsics
// headers (the _mm512_undefined_* passthroughs, GCC bug 105593) wherever
// they are inlined; the two warnings are switched off for this header only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../status.hpp"

#define ECQ_AVX2_TARGET __attribute__((target("avx2,fma,bmi,bmi2,popcnt")))

ECQ_NAMESPACE_BEGIN
namespace detail {
namespace avx2 {

constexpr std::uint32_t lower_bound = std::uint32_t(1) << 15;  // rans32x16: L = 2^15
constexpr std::uint32_t upper_bound = std::uint32_t(1) << 31;  // U = 2^31

/// expand_permutation.lane[m] holds, for refill mask m, byte j = the index of
/// lane j's word among the words of the register (the number of refilling
/// lanes below j), so vpermd moves word k to the k-th refilling lane.
struct expand_permutation {
  std::uint64_t lane[256];
  constexpr expand_permutation() : lane() {
    for (int m = 0; m < 256; ++m) {
      std::uint64_t v = 0;
      int k = 0;
      for (int j = 0; j < 8; ++j) {
        if ((m >> j) & 1) v |= std::uint64_t(k++) << (8 * j);
      }
      lane[m] = v;
    }
  }
};
inline constexpr expand_permutation expand_table{};

/// Lanes [0, count) of an 8-lane register as a vector mask.
ECQ_AVX2_TARGET ECQ_FORCEINLINE __m256i first_lanes(std::ptrdiff_t count) {
  const __m256i iota = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const int c = count <= 0 ? 0 : count >= 8 ? 8 : int(count);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(c), iota);
}

/// One 8-lane gather from the packed decode table.
template <int ScaleBits>
struct gather_lookup {
  struct args {
    const std::uint32_t* entries;
  };
  const int* entries;
  __m256i slot_mask;
  ECQ_AVX2_TARGET explicit gather_lookup(const args& a)
      : entries(reinterpret_cast<const int*>(a.entries)), slot_mask(_mm256_set1_epi32((1 << ScaleBits) - 1)) {}
  /// The table entry of each lane's slot (fetch for every register of a
  /// round first, so the gathers get distinct registers and overlap; see
  /// cpu_decode_avx512.hpp).
  ECQ_AVX2_TARGET ECQ_FORCEINLINE __m256i fetch(__m256i x) const {
    return _mm256_i32gather_epi32(entries, _mm256_and_si256(x, slot_mask), 4);
  }
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void finish(__m256i x, __m256i e, __m256i* next, __m256i* symbol) const {
    const __m256i q = _mm256_srli_epi32(x, ScaleBits);
    const __m256i freq_minus_1 = _mm256_and_si256(_mm256_srli_epi32(e, ScaleBits), slot_mask);
    const __m256i offset = _mm256_and_si256(e, slot_mask);
    *next = _mm256_add_epi32(_mm256_mullo_epi32(freq_minus_1, q), _mm256_add_epi32(q, offset));
    *symbol = _mm256_srli_epi32(e, 2 * ScaleBits);
  }
};

/// Byte 0 of each dword, packed into the low 8 bytes.
ECQ_AVX2_TARGET ECQ_FORCEINLINE __m128i low_bytes(__m256i v) {
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,  //
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i t = _mm256_shuffle_epi8(v, pick);
  return _mm_unpacklo_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

/// Symbols to memory, one byte each.
struct store_bytes_sink {
  struct args {
    std::uint8_t* out;
  };
  std::uint8_t* out;
  ECQ_AVX2_TARGET explicit store_bytes_sink(const args& a) : out(a.out) {}
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void put(std::size_t index, __m256i symbol) {
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out + index), low_bytes(symbol));
  }
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void put_partial(std::size_t index, __m256i symbol, int count) {
    alignas(16) std::uint8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), low_bytes(symbol));
    std::memcpy(out + index, tmp, std::size_t(count));
  }
  ECQ_AVX2_TARGET void finish(args&) const {}
};

/// Multi-weight symbols to one code per byte (CodesPerSymbol in {1, 2, 4}).
template <int CodeBits, int CodesPerSymbol>
struct store_codes_sink {
  static_assert(CodesPerSymbol == 1 || CodesPerSymbol == 2 || CodesPerSymbol == 4,
                "store_codes_sink handles 1, 2 or 4 codes per symbol");
  static_assert(CodeBits * CodesPerSymbol <= 8, "the codes of one symbol must fit 8 bits");
  struct args {
    std::uint8_t* out;
    std::size_t num_codes;
  };
  std::uint8_t* out;
  std::size_t num_codes;
  ECQ_AVX2_TARGET explicit store_codes_sink(const args& a) : out(a.out), num_codes(a.num_codes) {}

  /// Code j of each symbol moved to byte j of its dword.
  ECQ_AVX2_TARGET ECQ_FORCEINLINE __m256i spread(__m256i s) const {
    const __m256i m = _mm256_set1_epi32((1 << CodeBits) - 1);
    __m256i r = _mm256_and_si256(s, m);
    for (int j = 1; j < CodesPerSymbol; ++j)
      r = _mm256_or_si256(r, _mm256_slli_epi32(_mm256_and_si256(_mm256_srli_epi32(s, j * CodeBits), m), 8 * j));
    return r;
  }
  /// The 8 * CodesPerSymbol code bytes, in order, into dst[0, 32).
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void codes_of(__m256i symbol, std::uint8_t* dst) const {
    const __m256i c = spread(symbol);
    if constexpr (CodesPerSymbol == 1) {
      _mm_storel_epi64(reinterpret_cast<__m128i*>(dst), low_bytes(c));
    } else if constexpr (CodesPerSymbol == 2) {
      const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(c, c), 0x08);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm256_castsi256_si128(words));
    } else {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), c);
    }
  }
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void put(std::size_t index, __m256i symbol) {
    // The last symbol of the stream may carry padding codes past num_codes.
    if ((index + 8) * CodesPerSymbol > num_codes) return put_partial(index, symbol, 8);
    codes_of(symbol, out + index * CodesPerSymbol);
  }
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void put_partial(std::size_t index, __m256i symbol, int) {
    alignas(32) std::uint8_t tmp[32];
    codes_of(symbol, tmp);
    const std::size_t first = index * CodesPerSymbol;
    const std::size_t left = num_codes > first ? num_codes - first : 0;
    std::memcpy(out + first, tmp, left < 8 * CodesPerSymbol ? left : 8 * CodesPerSymbol);
  }
  ECQ_AVX2_TARGET void finish(args&) const {}
};

/// Fused affine dequantisation and dot product (CodesPerSymbol in {1, 2};
/// group_size a multiple of 8 * CodesPerSymbol).
template <int CodeBits, int CodesPerSymbol>
struct affine_dot_sink {
  static_assert(CodesPerSymbol == 1 || CodesPerSymbol == 2, "affine_dot_sink handles 1 or 2 codes per symbol");
  struct args {
    const float* activations;
    const float* scales;
    const float* biases;
    std::size_t group_size;
    std::size_t num_codes;
    float result;
  };
  const float* act;
  const float* scales;
  const float* biases;
  std::size_t group_size;
  std::size_t num_codes;
  __m256 acc0, acc1;
  ECQ_AVX2_TARGET explicit affine_dot_sink(const args& a)
      : act(a.activations),
        scales(a.scales),
        biases(a.biases),
        group_size(a.group_size),
        num_codes(a.num_codes),
        acc0(_mm256_setzero_ps()),
        acc1(_mm256_setzero_ps()) {}

  /// Weights of the 8 * CodesPerSymbol codes, in code order (lo, hi).
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void weights(std::size_t first, __m256i s, __m256* lo, __m256* hi) const {
    const std::size_t g = first / group_size;
    const __m256 scale = _mm256_set1_ps(scales[g]), bias = _mm256_set1_ps(biases[g]);
    const __m256i m = _mm256_set1_epi32((1 << CodeBits) - 1);
    const __m256 w0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_and_si256(s, m)), scale, bias);
    if constexpr (CodesPerSymbol == 1) {
      *lo = w0;
      *hi = _mm256_setzero_ps();
    } else {
      const __m256 w1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_srli_epi32(s, CodeBits)), scale, bias);
      const __m256 a = _mm256_unpacklo_ps(w0, w1), b = _mm256_unpackhi_ps(w0, w1);
      *lo = _mm256_permute2f128_ps(a, b, 0x20);
      *hi = _mm256_permute2f128_ps(a, b, 0x31);
    }
  }
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void put(std::size_t index, __m256i symbol) {
    const std::size_t first = index * CodesPerSymbol;
    if (first + 8 * CodesPerSymbol > num_codes) return put_partial(index, symbol, 8);  // padding codes
    __m256 lo, hi;
    weights(first, symbol, &lo, &hi);
    acc0 = _mm256_fmadd_ps(lo, _mm256_loadu_ps(act + first), acc0);
    if constexpr (CodesPerSymbol == 2) acc1 = _mm256_fmadd_ps(hi, _mm256_loadu_ps(act + first + 8), acc1);
  }
  /// Codes at or past num_codes contribute nothing; their activations are not read.
  ECQ_AVX2_TARGET ECQ_FORCEINLINE void put_partial(std::size_t index, __m256i symbol, int) {
    const std::size_t first = index * CodesPerSymbol;
    const std::ptrdiff_t left = std::ptrdiff_t(num_codes > first ? num_codes - first : 0);
    __m256 lo, hi;
    weights(first, symbol, &lo, &hi);
    const __m256i k0 = first_lanes(left), k1 = first_lanes(left - 8);
    acc0 = _mm256_fmadd_ps(_mm256_and_ps(lo, _mm256_castsi256_ps(k0)), _mm256_maskload_ps(act + first, k0), acc0);
    if constexpr (CodesPerSymbol == 2)
      acc1 = _mm256_fmadd_ps(_mm256_and_ps(hi, _mm256_castsi256_ps(k1)), _mm256_maskload_ps(act + first + 8, k1), acc1);
  }
  ECQ_AVX2_TARGET void finish(args& a) const {
    const __m256 s = _mm256_add_ps(acc0, acc1);
    __m128 t = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    t = _mm_add_ps(t, _mm_movehl_ps(t, t));
    t = _mm_add_ss(t, _mm_movehdup_ps(t));
    a.result = _mm_cvtss_f32(t);
  }
};

/// Refills the lanes of `need` (x < L, as a vector mask; `bits` its movemask)
/// from the words at the start of `window` (8 words, lane order).
ECQ_AVX2_TARGET ECQ_FORCEINLINE __m256i refill(__m256i x, __m256i need, int bits, __m128i window) {
  const __m256i perm = _mm256_cvtepu8_epi32(_mm_cvtsi64_si128(static_cast<long long>(expand_table.lane[bits])));
  const __m256i w = _mm256_permutevar8x32_epi32(_mm256_cvtepu16_epi32(window), perm);
  return _mm256_blendv_epi8(x, _mm256_or_si256(_mm256_slli_epi32(x, 16), w), need);
}

/// Decodes n symbols of a rans32x16<ScaleBits> stream with 8 * Vectors lanes.
/// Same statuses as interleaved_decode_checked; never reads outside
/// words[0, num_words).
template <int ScaleBits, int Vectors, class Lookup, class Sink>
ECQ_AVX2_TARGET status decode_stream(const std::uint16_t* words, std::size_t num_words, std::size_t n,
                                     const typename Lookup::args& lookup_args, typename Sink::args& sink_args) {
  constexpr std::size_t lanes = 8 * std::size_t(Vectors);
  if (num_words < 2 * lanes) return status::truncated;
  const Lookup lookup(lookup_args);
  Sink sink(sink_args);
  // States are < 2^31, so signed compares are exact.
  const __m256i low = _mm256_set1_epi32(int(lower_bound));

  __m256i x[Vectors];
  for (int v = 0; v < Vectors; ++v) {
    x[v] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(words + 16 * v));
    const __m256i bad = _mm256_or_si256(_mm256_cmpgt_epi32(low, x[v]),
                                        _mm256_cmpgt_epi32(_mm256_setzero_si256(), x[v]));  // >= 2^31
    if (!_mm256_testz_si256(bad, bad)) return status::corrupt_stream;
  }
  const std::uint16_t* p = words + 2 * lanes;
  const std::uint16_t* const end = words + num_words;

  std::size_t i = 0;
  for (; i + lanes <= n && std::size_t(end - p) >= lanes; i += lanes) {
    __m256i e[Vectors];
    ECQ_PRAGMA_UNROLL
    for (int v = 0; v < Vectors; ++v) e[v] = lookup.fetch(x[v]);
    ECQ_PRAGMA_UNROLL
    for (int v = 0; v < Vectors; ++v) {
      __m256i next, symbol;
      lookup.finish(x[v], e[v], &next, &symbol);
      sink.put(i + 8 * std::size_t(v), symbol);
      const __m256i need = _mm256_cmpgt_epi32(low, next);
      const int bits = _mm256_movemask_ps(_mm256_castsi256_ps(need));
      x[v] = refill(next, need, bits, _mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
      p += _mm_popcnt_u32(unsigned(bits));
    }
  }

  bool overrun = false;
  for (; i < n && !overrun; i += lanes) {
    for (int v = 0; v < Vectors; ++v) {
      const std::size_t index = i + 8 * std::size_t(v);
      if (index >= n) break;
      const std::size_t count = n - index < 8 ? n - index : 8;
      const __m256i active = first_lanes(std::ptrdiff_t(count));
      __m256i next, symbol;
      lookup.finish(x[v], lookup.fetch(x[v]), &next, &symbol);
      if (count == 8) sink.put(index, symbol);
      else sink.put_partial(index, symbol, int(count));
      const __m256i need = _mm256_and_si256(_mm256_cmpgt_epi32(low, next), active);
      const int bits = _mm256_movemask_ps(_mm256_castsi256_ps(need));
      const std::size_t left = std::size_t(end - p);
      alignas(16) std::uint16_t buffer[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      std::memcpy(buffer, p, (left < 8 ? left : 8) * sizeof(std::uint16_t));
      const __m256i refilled = refill(next, need, bits, _mm_load_si128(reinterpret_cast<const __m128i*>(buffer)));
      x[v] = _mm256_blendv_epi8(x[v], refilled, active);
      const unsigned needed = unsigned(_mm_popcnt_u32(unsigned(bits)));
      if (needed > left) {
        overrun = true;
        p = end;
      } else {
        p += needed;
      }
    }
  }
  if (overrun) return status::truncated;
  for (int v = 0; v < Vectors; ++v) {
    const __m256i diff = _mm256_xor_si256(x[v], low);
    if (!_mm256_testz_si256(diff, diff)) return status::corrupt_stream;
  }
  if (p != end) return status::trailing_data;
  sink.finish(sink_args);
  return status::ok;
}

}  // namespace avx2
}  // namespace detail
ECQ_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // ECQ_HAS_X86_KERNELS()

#endif  // ECQ_DETAIL_CPU_DECODE_AVX2_HPP
