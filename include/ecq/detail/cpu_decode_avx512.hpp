// ecq/detail/cpu_decode_avx512.hpp — AVX-512 kernels behind ecq/cpu_decode.hpp.
//
// READ ME FIRST
// * Only for rans32x16 streams (32-bit states, 16-bit words, ScaleBits <= 15,
//   so a lane takes at most one word per symbol) with Lanes = 16 * Vectors:
//   lane j of the stream is dword j % 16 of zmm register j / 16.
// * Compiled with a target attribute (ECQ_AVX512_TARGET), never with -march:
//   callers must have checked the CPU (ecq/cpu_features.hpp). Every function
//   that touches a vector type carries the attribute, and no lambda is used
//   (GCC does not propagate target attributes into lambdas).
// * One decoding loop (decode_stream) serves every output: it is
//   parameterised by a Lookup (slot -> symbol and next state) and a Sink
//   (what happens to the 16 symbols of a register: store them, split them
//   into codes, or dequantise them into a dot product).
// * decode_stream is memory-safe for any bytes: the fast rounds run while a
//   whole round's worth of words (Lanes) is left, so their unmasked 32-byte
//   loads stay inside the stream; the remaining rounds use masked loads
//   (which never touch masked-off memory) and masked stores. Its results and
//   status equal those of interleaved_decode_checked.
#ifndef ECQ_DETAIL_CPU_DECODE_AVX512_HPP
#define ECQ_DETAIL_CPU_DECODE_AVX512_HPP

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

#include "../config.hpp"
#include "../status.hpp"

#define ECQ_AVX512_TARGET \
  __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi,avx512vbmi2,bmi,bmi2,popcnt")))

ECQ_NAMESPACE_BEGIN
namespace detail {
namespace avx512 {

/// rans32x16: L = 2^15 (refill below), U = 2^31.
constexpr std::uint32_t lower_bound = std::uint32_t(1) << 15;
constexpr std::uint32_t upper_bound = std::uint32_t(1) << 31;

/// Lanes [0, count) of a 16-lane register (count may be <= 0 or >= 16).
ECQ_AVX512_TARGET ECQ_FORCEINLINE __mmask16 first_lanes(std::ptrdiff_t count) {
  return count >= 16 ? __mmask16(0xffff) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// ---------------------------------------------------------------------------
// Lookups: slot -> (symbol, advanced state before renormalisation), in two
// steps: fetch() does the table access, finish() the arithmetic. The
// decoding loop fetches for every register of a round before finishing any,
// so the gathers of a round are in flight together (with one step, GCC gives
// every gather the same destination register, whose merge dependency then
// serialises them: 1.3 instead of 2.1 G symbols/s at 64 lanes on Zen 5).

/// The general lookup: one 16-lane gather from the packed decode table
/// (uint32 entries [offset:S][freq-1:S][symbol], 2S + SymbolBits <= 32).
template <int ScaleBits>
struct gather_lookup {
  struct args {
    const std::uint32_t* entries;
  };
  const int* entries;
  __m512i slot_mask;

  ECQ_AVX512_TARGET explicit gather_lookup(const args& a)
      : entries(reinterpret_cast<const int*>(a.entries)), slot_mask(_mm512_set1_epi32((1 << ScaleBits) - 1)) {}

  /// The table entry of each lane's slot.
  ECQ_AVX512_TARGET ECQ_FORCEINLINE __m512i fetch(__m512i x) const {
    return _mm512_i32gather_epi32(_mm512_and_si512(x, slot_mask), entries, 4);
  }
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void finish(__m512i x, __m512i e, __m512i* next, __m512i* symbol) const {
    const __m512i q = _mm512_srli_epi32(x, ScaleBits);
    const __m512i freq_minus_1 = _mm512_and_si512(_mm512_srli_epi32(e, ScaleBits), slot_mask);
    const __m512i offset = _mm512_and_si512(e, slot_mask);
    // freq * q + offset = (freq - 1) * q + (q + offset)
    *next = _mm512_add_epi32(_mm512_mullo_epi32(freq_minus_1, q), _mm512_add_epi32(q, offset));
    *symbol = _mm512_srli_epi32(e, 2 * ScaleBits);
  }
};

/// Gather-free lookup for ScaleBits <= 8 and alphabets of at most 16 symbols:
/// the slot -> symbol map (256 bytes) lives in four zmm registers and is read
/// with vpermi2b (one instruction for ScaleBits <= 7, two for 8); frequency
/// and start of the symbol come from 16-entry vpermd tables. On Zen 4/5 a
/// 16-lane gather costs about as much as 20 of these instructions.
template <int ScaleBits>
struct permute16_lookup {
  static_assert(ScaleBits <= 8, "permute16_lookup holds at most 256 slots");
  struct args {
    const std::uint8_t* slot_symbol;  // 256 bytes: symbol of slot (i mod 2^ScaleBits)
    const std::uint32_t* freq;        // 16 entries
    const std::uint32_t* start;       // 16 entries
  };
  __m512i t0, t1, t2, t3, freq, start, slot_mask, bit7;

  ECQ_AVX512_TARGET explicit permute16_lookup(const args& a)
      : t0(_mm512_loadu_si512(a.slot_symbol)),
        t1(_mm512_loadu_si512(a.slot_symbol + 64)),
        t2(_mm512_loadu_si512(a.slot_symbol + 128)),
        t3(_mm512_loadu_si512(a.slot_symbol + 192)),
        freq(_mm512_loadu_si512(a.freq)),
        start(_mm512_loadu_si512(a.start)),
        slot_mask(_mm512_set1_epi32((1 << ScaleBits) - 1)),
        bit7(_mm512_set1_epi32(0x80)) {}

  /// The symbol of each lane's slot (dword lanes).
  ECQ_AVX512_TARGET ECQ_FORCEINLINE __m512i fetch(__m512i x) const {
    constexpr __mmask64 byte0 = 0x1111111111111111ull;  // byte 0 of every dword
    if constexpr (ScaleBits <= 7) {
      // vpermi2b reads the low 7 bits of each index byte; the table repeats
      // with period 2^ScaleBits, so bits of x above the slot do not matter.
      return _mm512_maskz_permutex2var_epi8(byte0, t0, x, t1);
    } else {
      const __mmask64 high = _mm512_mask_test_epi8_mask(byte0, x, bit7);
      const __m512i lo = _mm512_maskz_permutex2var_epi8(byte0 & ~high, t0, x, t1);
      const __m512i hi = _mm512_maskz_permutex2var_epi8(high, t2, x, t3);
      return _mm512_or_si512(lo, hi);
    }
  }
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void finish(__m512i x, __m512i s, __m512i* next, __m512i* symbol) const {
    const __m512i f = _mm512_permutexvar_epi32(s, freq);
    const __m512i b = _mm512_permutexvar_epi32(s, start);
    const __m512i q = _mm512_srli_epi32(x, ScaleBits);
    *next = _mm512_add_epi32(_mm512_mullo_epi32(f, q), _mm512_sub_epi32(_mm512_and_si512(x, slot_mask), b));
    *symbol = s;
  }
};

// ---------------------------------------------------------------------------
// Sinks: what happens to the symbols of 16 lanes (stream indices
// index .. index + 15). put() gets all 16, put_partial() the lanes in `active`
// (a prefix), at the end of the stream.

/// Symbols to memory, one byte each.
struct store_bytes_sink {
  struct args {
    std::uint8_t* out;
  };
  std::uint8_t* out;
  ECQ_AVX512_TARGET explicit store_bytes_sink(const args& a) : out(a.out) {}
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void put(std::size_t index, __m512i symbol) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + index), _mm512_cvtepi32_epi8(symbol));
  }
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void put_partial(std::size_t index, __m512i symbol, __mmask16 active) {
    _mm512_mask_cvtepi32_storeu_epi8(out + index, active, symbol);
  }
  ECQ_AVX512_TARGET void finish(args&) const {}
};

/// Multi-weight symbols to codes, one byte per code: symbol_packing<CodeBits,
/// CodesPerSymbol, 0> with CodesPerSymbol in {1, 2, 4}: code j of a symbol is
/// bits [j * CodeBits, (j + 1) * CodeBits). vpmultishiftqb moves every code to
/// its own byte of the symbol's dword; the dwords are then narrowed.
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
  __m512i shifts, code_mask;

  ECQ_AVX512_TARGET explicit store_codes_sink(const args& a)
      : out(a.out), num_codes(a.num_codes), shifts(make_shifts()), code_mask(_mm512_set1_epi8((1 << CodeBits) - 1)) {}

  // Byte b of qword lane: dword (b / 4) of the qword, code (b % 4) of it.
  ECQ_AVX512_TARGET static __m512i make_shifts() {
    alignas(64) std::uint8_t s[64];
    for (int b = 0; b < 64; ++b) s[b] = std::uint8_t(32 * ((b / 4) % 2) + CodeBits * (b % 4));
    return _mm512_load_si512(s);
  }

  ECQ_AVX512_TARGET ECQ_FORCEINLINE __m512i spread(__m512i symbol) const {
    if constexpr (CodesPerSymbol == 1) {
      return symbol;
    } else {
      return _mm512_and_si512(_mm512_multishift_epi64_epi8(shifts, symbol), code_mask);
    }
  }
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void store(std::size_t index, __m512i codes, __mmask16 active, bool all) {
    std::uint8_t* dst = out + index * CodesPerSymbol;
    if constexpr (CodesPerSymbol == 1) {
      if (all) _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), _mm512_cvtepi32_epi8(codes));
      else _mm512_mask_cvtepi32_storeu_epi8(dst, active, codes);
    } else if constexpr (CodesPerSymbol == 2) {
      if (all) _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm512_cvtepi32_epi16(codes));
      else _mm256_mask_storeu_epi8(dst, __mmask32(code_limit(index)), _mm512_cvtepi32_epi16(codes));
    } else {
      if (all) _mm512_storeu_si512(dst, codes);
      else _mm512_mask_storeu_epi8(dst, code_limit(index), codes);
    }
    (void)active;
  }
  /// Byte mask of the codes of symbols index.. that are < num_codes.
  ECQ_AVX512_TARGET ECQ_FORCEINLINE __mmask64 code_limit(std::size_t index) const {
    const std::size_t first = index * CodesPerSymbol;
    const std::size_t left = num_codes > first ? num_codes - first : 0;
    return left >= 64 ? ~__mmask64(0) : (__mmask64(1) << left) - 1;
  }
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void put(std::size_t index, __m512i symbol) {
    // The last symbol of the stream may carry padding codes past num_codes.
    store(index, spread(symbol), 0xffff, (index + 16) * CodesPerSymbol <= num_codes);
  }
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void put_partial(std::size_t index, __m512i symbol, __mmask16 active) {
    store(index, spread(symbol), active, false);
  }
  ECQ_AVX512_TARGET void finish(args&) const {}
};

/// Fused decode -> affine dequantisation -> dot product with fp32
/// activations, for symbol_packing<CodeBits, CodesPerSymbol, 0> with
/// CodeBits <= 4 and CodesPerSymbol in {1, 2}. Weight c of group g is
/// scale[g] * code + bias[g]; the 16 possible weights of a group are built
/// once per register (one FMA) and looked up with vpermps, which reads only
/// the low 4 bits of each index, so the code needs no masking.
/// Requires group_size to be a multiple of 16 * CodesPerSymbol, so the codes
/// of one register never straddle two groups.
template <int CodeBits, int CodesPerSymbol>
struct affine_dot_sink {
  static_assert(CodeBits <= 4, "affine_dot_sink looks weights up in a 16-entry table");
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
  __m512 acc0, acc1, iota, even, odd;

  ECQ_AVX512_TARGET explicit affine_dot_sink(const args& a)
      : act(a.activations),
        scales(a.scales),
        biases(a.biases),
        group_size(a.group_size),
        num_codes(a.num_codes),
        acc0(_mm512_setzero_ps()),
        acc1(_mm512_setzero_ps()),
        iota(_mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15)),
        even(_mm512_castsi512_ps(_mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30))),
        odd(_mm512_castsi512_ps(_mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31))) {}

  ECQ_AVX512_TARGET ECQ_FORCEINLINE __m512 weights_of_group(std::size_t first_code) const {
    const std::size_t g = first_code / group_size;
    return _mm512_fmadd_ps(iota, _mm512_set1_ps(scales[g]), _mm512_set1_ps(biases[g]));
  }

  /// Code 0 of each symbol as a vpermps index (the low 4 bits must be the code).
  ECQ_AVX512_TARGET ECQ_FORCEINLINE __m512i code0(__m512i symbol) const {
    if constexpr (CodesPerSymbol * CodeBits > 4) return _mm512_and_si512(symbol, _mm512_set1_epi32((1 << CodeBits) - 1));
    else return symbol;
  }

  ECQ_AVX512_TARGET ECQ_FORCEINLINE void put(std::size_t index, __m512i symbol) {
    const std::size_t first = index * CodesPerSymbol;
    if (first + 16 * CodesPerSymbol > num_codes) return put_partial(index, symbol, 0xffff);  // padding codes
    const __m512 table = weights_of_group(first);
    if constexpr (CodesPerSymbol == 1) {
      const __m512 w = _mm512_permutexvar_ps(symbol, table);
      acc0 = _mm512_fmadd_ps(w, _mm512_loadu_ps(act + first), acc0);
    } else {
      const __m512 w0 = _mm512_permutexvar_ps(code0(symbol), table);
      const __m512 w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(symbol, CodeBits), table);
      const __m512 a_lo = _mm512_loadu_ps(act + first), a_hi = _mm512_loadu_ps(act + first + 16);
      acc0 = _mm512_fmadd_ps(w0, _mm512_permutex2var_ps(a_lo, _mm512_castps_si512(even), a_hi), acc0);
      acc1 = _mm512_fmadd_ps(w1, _mm512_permutex2var_ps(a_lo, _mm512_castps_si512(odd), a_hi), acc1);
    }
  }

  /// The codes of the lanes in `active`, cut at num_codes (a last symbol may
  /// carry padding codes); activations past num_codes are never read.
  ECQ_AVX512_TARGET ECQ_FORCEINLINE void put_partial(std::size_t index, __m512i symbol, __mmask16 active) {
    const std::size_t first = index * CodesPerSymbol;
    const std::size_t left = num_codes > first ? num_codes - first : 0;
    const __m512 table = weights_of_group(first);
    if constexpr (CodesPerSymbol == 1) {
      const __mmask16 k = active & first_lanes(std::ptrdiff_t(left));
      const __m512 w = _mm512_permutexvar_ps(symbol, table);
      acc0 = _mm512_mask3_fmadd_ps(w, _mm512_maskz_loadu_ps(k, act + first), acc0, k);
    } else {
      const __m512 w0 = _mm512_permutexvar_ps(code0(symbol), table);
      const __m512 w1 = _mm512_permutexvar_ps(_mm512_srli_epi32(symbol, CodeBits), table);
      const __m512 a_lo = _mm512_maskz_loadu_ps(first_lanes(std::ptrdiff_t(left)), act + first);
      const __m512 a_hi = _mm512_maskz_loadu_ps(first_lanes(std::ptrdiff_t(left) - 16), act + first + 16);
      const __m512 e = _mm512_permutex2var_ps(a_lo, _mm512_castps_si512(even), a_hi);
      const __m512 o = _mm512_permutex2var_ps(a_lo, _mm512_castps_si512(odd), a_hi);
      acc0 = _mm512_mask3_fmadd_ps(w0, e, acc0, active);
      acc1 = _mm512_mask3_fmadd_ps(w1, o, acc1, active);
    }
  }
  ECQ_AVX512_TARGET void finish(args& a) const { a.result = _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1)); }
};

// ---------------------------------------------------------------------------
// The decoding loop.

/// Refills the lanes of `k` (x < L) with the next words, in lane order, from
/// a 16-word window at p whose unused tail is zero: x = (x << 16) | word.
ECQ_AVX512_TARGET ECQ_FORCEINLINE __m512i refill(__m512i x, __mmask16 k, __m256i window) {
  const __m512i w = _mm512_maskz_expand_epi32(k, _mm512_cvtepu16_epi32(window));
  return _mm512_or_si512(_mm512_mask_slli_epi32(x, k, x, 16), w);
}

/// Decodes n symbols of a rans32x16<ScaleBits> stream with 16 * Vectors lanes
/// from words[0, num_words) into the sink. Same statuses as
/// interleaved_decode_checked; never reads outside words[0, num_words).
template <int ScaleBits, int Vectors, class Lookup, class Sink>
ECQ_AVX512_TARGET status decode_stream(const std::uint16_t* words, std::size_t num_words, std::size_t n,
                                       const typename Lookup::args& lookup_args, typename Sink::args& sink_args) {
  constexpr std::size_t lanes = 16 * std::size_t(Vectors);
  if (num_words < 2 * lanes) return status::truncated;
  const Lookup lookup(lookup_args);
  Sink sink(sink_args);
  const __m512i low = _mm512_set1_epi32(int(lower_bound));
  const __m512i high = _mm512_set1_epi32(int(upper_bound));

  __m512i x[Vectors];
  for (int v = 0; v < Vectors; ++v) {
    x[v] = _mm512_loadu_si512(words + 32 * v);
    if (_mm512_cmplt_epu32_mask(x[v], low) != 0 || _mm512_cmpge_epu32_mask(x[v], high) != 0)
      return status::corrupt_stream;
  }
  const std::uint16_t* p = words + 2 * lanes;
  const std::uint16_t* const end = words + num_words;

  std::size_t i = 0;
  // Fast rounds: at least `lanes` words are left, so each register's 16-word
  // window lies inside the stream (a register consumes at most 16 words).
  for (; i + lanes <= n && std::size_t(end - p) >= lanes; i += lanes) {
    __m512i e[Vectors];
    ECQ_PRAGMA_UNROLL
    for (int v = 0; v < Vectors; ++v) e[v] = lookup.fetch(x[v]);
    ECQ_PRAGMA_UNROLL
    for (int v = 0; v < Vectors; ++v) {
      __m512i next, symbol;
      lookup.finish(x[v], e[v], &next, &symbol);
      sink.put(i + 16 * std::size_t(v), symbol);
      const __mmask16 k = _mm512_cmplt_epu32_mask(next, low);
      x[v] = refill(next, k, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
      p += _mm_popcnt_u32(k);
    }
  }

  // Careful rounds: masked loads, lanes past n left untouched, and a sticky
  // overrun flag (missing words read as zero, as in the checked decoder, and
  // decoding stops after the round).
  bool overrun = false;
  for (; i < n && !overrun; i += lanes) {
    for (int v = 0; v < Vectors; ++v) {
      const std::size_t index = i + 16 * std::size_t(v);
      const __mmask16 active = first_lanes(std::ptrdiff_t(n) - std::ptrdiff_t(index));
      if (active == 0) break;
      __m512i next, symbol;
      lookup.finish(x[v], lookup.fetch(x[v]), &next, &symbol);
      if (active == 0xffff) sink.put(index, symbol);
      else sink.put_partial(index, symbol, active);
      const __mmask16 k = _mm512_mask_cmplt_epu32_mask(active, next, low);
      const std::size_t left = std::size_t(end - p);
      const __m256i window = _mm256_maskz_loadu_epi16(left >= 16 ? 0xffff : (1u << left) - 1, p);
      const __m512i refilled = refill(next, k, window);
      x[v] = _mm512_mask_mov_epi32(x[v], active, refilled);
      const unsigned needed = unsigned(_mm_popcnt_u32(k));
      if (needed > left) {
        overrun = true;
        p = end;
      } else {
        p += needed;
      }
    }
  }
  if (overrun) return status::truncated;
  for (int v = 0; v < Vectors; ++v)
    if (_mm512_cmpneq_epu32_mask(x[v], low) != 0) return status::corrupt_stream;
  if (p != end) return status::trailing_data;
  sink.finish(sink_args);
  return status::ok;
}

}  // namespace avx512
}  // namespace detail
ECQ_NAMESPACE_END

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

#endif  // ECQ_HAS_X86_KERNELS()

#endif  // ECQ_DETAIL_CPU_DECODE_AVX512_HPP
