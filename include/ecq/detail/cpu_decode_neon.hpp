// ecq/detail/cpu_decode_neon.hpp — the AArch64 NEON kernel behind ecq/cpu_decode.hpp.
//
// READ ME FIRST
// * rans32x16 streams, 8-bit symbols, packed 32-bit decode entries, Lanes =
//   4 * Vectors (up to 64): lane j of the stream is lane j % 4 of register
//   j / 4. Decodes symbols to memory; ecq/cpu_decode.hpp sends the other
//   outputs (codes, fused dot) to the scalar kernel on AArch64.
// * NEON has no gather: the four table entries of a register are loaded
//   one lane at a time. The refill words of a register (in lane order) are
//   moved to their lanes with one TBL, using a 16-entry table of byte
//   shuffles indexed by the refill mask.
// * ASIMD is part of every AArch64 CPU, so this kernel needs no run-time
//   check; it is compiled wherever ECQ_HAS_NEON_KERNELS() is 1.
// * Memory-safe like the x86 kernels: fast rounds need Lanes words left;
//   nearer the end the (at most 4) words a register may take are copied to a
//   zero-padded buffer. Statuses equal interleaved_decode_checked's.
//
// Tested under qemu-user (Debian's aarch64 cross toolchain); see
// docs/performance.md for how, and for why there are no ARM timings.
#ifndef ECQ_DETAIL_CPU_DECODE_NEON_HPP
#define ECQ_DETAIL_CPU_DECODE_NEON_HPP

#include "../cpu_features.hpp"

#if ECQ_HAS_NEON_KERNELS()

#include <arm_neon.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../config.hpp"
#include "../status.hpp"

ECQ_NAMESPACE_BEGIN
namespace detail {
namespace neon {

constexpr std::uint32_t lower_bound = std::uint32_t(1) << 15;  // rans32x16: L = 2^15
constexpr std::uint32_t upper_bound = std::uint32_t(1) << 31;  // U = 2^31

/// refill_shuffle.bytes[m]: for refill mask m (bit j = lane j refills), the
/// TBL indices that put word k of the window into the k-th refilling lane's
/// low half; 0xff (out of range) zeroes every other byte.
struct refill_shuffle {
  std::uint8_t bytes[16][16];
  constexpr refill_shuffle() : bytes() {
    for (int m = 0; m < 16; ++m) {
      int k = 0;
      for (int j = 0; j < 4; ++j) {
        const bool refill = (m >> j) & 1;
        bytes[m][4 * j + 0] = refill ? std::uint8_t(2 * k) : std::uint8_t(0xff);
        bytes[m][4 * j + 1] = refill ? std::uint8_t(2 * k + 1) : std::uint8_t(0xff);
        bytes[m][4 * j + 2] = 0xff;
        bytes[m][4 * j + 3] = 0xff;
        k += refill;
      }
    }
  }
};
inline constexpr refill_shuffle refill_table{};

/// One decode step of 4 lanes: table lookup, state update, symbols out.
template <int ScaleBits>
ECQ_FORCEINLINE uint32x4_t advance(uint32x4_t x, const std::uint32_t* entries, uint32x4_t* symbol) {
  constexpr std::uint32_t mask = (std::uint32_t(1) << ScaleBits) - 1;
  uint32x4_t e = vdupq_n_u32(0);
  e = vsetq_lane_u32(entries[vgetq_lane_u32(x, 0) & mask], e, 0);
  e = vsetq_lane_u32(entries[vgetq_lane_u32(x, 1) & mask], e, 1);
  e = vsetq_lane_u32(entries[vgetq_lane_u32(x, 2) & mask], e, 2);
  e = vsetq_lane_u32(entries[vgetq_lane_u32(x, 3) & mask], e, 3);
  const uint32x4_t m = vdupq_n_u32(mask);
  const uint32x4_t q = vshrq_n_u32(x, ScaleBits);
  const uint32x4_t freq_minus_1 = vandq_u32(vshrq_n_u32(e, ScaleBits), m);
  *symbol = vshrq_n_u32(e, 2 * ScaleBits);
  // freq * q + offset = (freq - 1) * q + (q + offset)
  return vmlaq_u32(vaddq_u32(q, vandq_u32(e, m)), freq_minus_1, q);
}

/// Refills the lanes of `need` (all-ones lanes) from the words at the start of `window`.
ECQ_FORCEINLINE uint32x4_t refill(uint32x4_t x, uint32x4_t need, unsigned bits, uint16x4_t window) {
  const uint8x16_t words = vcombine_u8(vreinterpret_u8_u16(window), vdup_n_u8(0));
  const uint32x4_t w = vreinterpretq_u32_u8(vqtbl1q_u8(words, vld1q_u8(refill_table.bytes[bits])));
  return vbslq_u32(need, vorrq_u32(vshlq_n_u32(x, 16), w), x);
}

/// Bit j set for the lanes j of `need`.
ECQ_FORCEINLINE unsigned lane_bits(uint32x4_t need) {
  const std::uint32_t weights[4] = {1, 2, 4, 8};
  return vaddvq_u32(vandq_u32(need, vld1q_u32(weights)));
}

/// The low byte of 4 lanes, in lane order, to out[0, count).
ECQ_FORCEINLINE void store_bytes(std::uint8_t* out, uint32x4_t symbol, std::size_t count) {
  const uint16x4_t h = vmovn_u32(symbol);
  const uint8x8_t b = vmovn_u16(vcombine_u16(h, h));
  std::uint8_t tmp[8];
  vst1_u8(tmp, b);
  std::memcpy(out, tmp, count);
}

/// Decodes n symbols of a rans32x16<ScaleBits> stream with 4 * Vectors lanes
/// into out[0, n). Same statuses as interleaved_decode_checked.
template <int ScaleBits, int Vectors>
status decode_stream(const std::uint16_t* words, std::size_t num_words, std::size_t n, const std::uint32_t* entries,
                     std::uint8_t* out) {
  constexpr std::size_t lanes = 4 * std::size_t(Vectors);
  if (num_words < 2 * lanes) return status::truncated;
  const uint32x4_t low = vdupq_n_u32(lower_bound);
  uint32x4_t x[Vectors];
  for (int v = 0; v < Vectors; ++v) {
    std::uint32_t s[4];
    std::memcpy(s, words + 8 * v, sizeof s);
    x[v] = vld1q_u32(s);
    const uint32x4_t bad = vorrq_u32(vcltq_u32(x[v], low), vcgeq_u32(x[v], vdupq_n_u32(upper_bound)));
    if (vmaxvq_u32(bad) != 0) return status::corrupt_stream;
  }
  const std::uint16_t* p = words + 2 * lanes;
  const std::uint16_t* const end = words + num_words;

  std::size_t i = 0;
  for (; i + lanes <= n && std::size_t(end - p) >= lanes; i += lanes) {
    ECQ_PRAGMA_UNROLL
    for (int v = 0; v < Vectors; ++v) {
      uint32x4_t symbol;
      const uint32x4_t next = advance<ScaleBits>(x[v], entries, &symbol);
      store_bytes(out + i + 4 * std::size_t(v), symbol, 4);
      const uint32x4_t need = vcltq_u32(next, low);
      const unsigned bits = lane_bits(need);
      x[v] = refill(next, need, bits, vld1_u16(p));
      p += __builtin_popcount(bits);
    }
  }

  bool overrun = false;
  for (; i < n && !overrun; i += lanes) {
    for (int v = 0; v < Vectors; ++v) {
      const std::size_t index = i + 4 * std::size_t(v);
      if (index >= n) break;
      const std::size_t count = n - index < 4 ? n - index : 4;
      const std::uint32_t active_lanes[4] = {0u - std::uint32_t(count > 0), 0u - std::uint32_t(count > 1),
                                             0u - std::uint32_t(count > 2), 0u - std::uint32_t(count > 3)};
      const uint32x4_t active = vld1q_u32(active_lanes);
      uint32x4_t symbol;
      const uint32x4_t next = advance<ScaleBits>(x[v], entries, &symbol);
      store_bytes(out + index, symbol, count);
      const uint32x4_t need = vandq_u32(vcltq_u32(next, low), active);
      const unsigned bits = lane_bits(need);
      const std::size_t left = std::size_t(end - p);
      std::uint16_t buffer[4] = {0, 0, 0, 0};
      std::memcpy(buffer, p, (left < 4 ? left : 4) * sizeof(std::uint16_t));
      x[v] = vbslq_u32(active, refill(next, need, bits, vld1_u16(buffer)), x[v]);
      const unsigned needed = unsigned(__builtin_popcount(bits));
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
    if (vmaxvq_u32(veorq_u32(x[v], low)) != 0) return status::corrupt_stream;
  if (p != end) return status::trailing_data;
  return status::ok;
}

}  // namespace neon
}  // namespace detail
ECQ_NAMESPACE_END

#endif  // ECQ_HAS_NEON_KERNELS()

#endif  // ECQ_DETAIL_CPU_DECODE_NEON_HPP
