// ecq/checksum.hpp — READ ME FIRST
//
// The container checksum: XXH64 with seed 0, written from the public xxHash
// specification (Yann Collet, "xxHash fast digest algorithm", doc/xxhash_spec.md,
// version 0.1.1). It is not a cryptographic hash: it detects accidental
// corruption (bit flips, truncation, torn writes), not forgery. A hostile file
// can carry a correct checksum, so a passing checksum never makes bytes
// trusted; the checked decoders still validate everything.
//
// Why XXH64: a 64-bit digest makes an undetected random corruption a 2^-64
// event; it runs at several GB/s on one core with plain 64-bit integer code
// (no SIMD, no tables), so it also compiles for the device; and its frozen test
// vectors are reproducible with the stock `xxhsum -H64` tool.
//
// Test vectors (seed 0), frozen in tests/checksum_test.cpp and docs/format.md:
//   xxh64("", 0)    = 0xEF46DB3751D8E999
//   xxh64("abc", 3) = 0x44BC2CF5AD770999
//
// Bytes are read one at a time and assembled little-endian, so the function
// has no alignment requirement and the same result on every target.
#ifndef ECQ_CHECKSUM_HPP
#define ECQ_CHECKSUM_HPP

#include <cstddef>
#include <cstdint>

#include "config.hpp"

ECQ_NAMESPACE_BEGIN

namespace detail {

// The five 64-bit primes of the specification.
inline constexpr std::uint64_t xxh64_prime1 = 0x9E3779B185EBCA87ull;
inline constexpr std::uint64_t xxh64_prime2 = 0xC2B2AE3D27D4EB4Full;
inline constexpr std::uint64_t xxh64_prime3 = 0x165667B19E3779F9ull;
inline constexpr std::uint64_t xxh64_prime4 = 0x85EBCA77C2B2AE63ull;
inline constexpr std::uint64_t xxh64_prime5 = 0x27D4EB2F165667C5ull;

ECQ_HOST_DEVICE ECQ_FORCEINLINE constexpr std::uint64_t rotl64(std::uint64_t x, int r) {
  return (x << r) | (x >> (64 - r));
}

// Written out rather than as a loop: GCC 12 at -O2 does not unroll the loop,
// and runs it byte by byte (2 GB/s); the written-out form is merged into one
// 8-byte load on little-endian targets.
ECQ_HOST_DEVICE ECQ_FORCEINLINE constexpr std::uint64_t load_le64(const std::uint8_t* p) {
  return std::uint64_t(p[0]) | (std::uint64_t(p[1]) << 8) | (std::uint64_t(p[2]) << 16) |
         (std::uint64_t(p[3]) << 24) | (std::uint64_t(p[4]) << 32) | (std::uint64_t(p[5]) << 40) |
         (std::uint64_t(p[6]) << 48) | (std::uint64_t(p[7]) << 56);
}

ECQ_HOST_DEVICE ECQ_FORCEINLINE constexpr std::uint32_t load_le32(const std::uint8_t* p) {
  return std::uint32_t(p[0]) | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}

ECQ_HOST_DEVICE ECQ_FORCEINLINE constexpr std::uint64_t xxh64_round(std::uint64_t acc, std::uint64_t lane) {
  return rotl64(acc + lane * xxh64_prime2, 31) * xxh64_prime1;
}

ECQ_HOST_DEVICE ECQ_FORCEINLINE constexpr std::uint64_t xxh64_merge(std::uint64_t acc, std::uint64_t v) {
  return (acc ^ xxh64_round(0, v)) * xxh64_prime1 + xxh64_prime4;
}

}  // namespace detail

/// XXH64 of `data[0..size)` with `seed` (the container uses seed 0).
/// Accepts any input, including size 0 (data may then be null).
/// @return the 64-bit digest.
ECQ_HOST_DEVICE constexpr std::uint64_t xxh64(const std::uint8_t* data, std::size_t size, std::uint64_t seed = 0) {
  using namespace detail;
  const std::uint8_t* p = data;
  const std::uint8_t* const end = data + size;
  std::uint64_t acc = 0;
  if (size >= 32) {
    // Four accumulators over 32-byte stripes.
    std::uint64_t v1 = seed + xxh64_prime1 + xxh64_prime2;
    std::uint64_t v2 = seed + xxh64_prime2;
    std::uint64_t v3 = seed;
    std::uint64_t v4 = seed - xxh64_prime1;
    const std::uint8_t* const last_stripe = end - 32;
    do {
      v1 = xxh64_round(v1, load_le64(p));
      v2 = xxh64_round(v2, load_le64(p + 8));
      v3 = xxh64_round(v3, load_le64(p + 16));
      v4 = xxh64_round(v4, load_le64(p + 24));
      p += 32;
    } while (p <= last_stripe);
    acc = rotl64(v1, 1) + rotl64(v2, 7) + rotl64(v3, 12) + rotl64(v4, 18);
    acc = xxh64_merge(acc, v1);
    acc = xxh64_merge(acc, v2);
    acc = xxh64_merge(acc, v3);
    acc = xxh64_merge(acc, v4);
  } else {
    acc = seed + xxh64_prime5;
  }
  acc += std::uint64_t(size);
  // The remaining 0..31 bytes: 8, then 4, then 1 at a time.
  for (; end - p >= 8; p += 8) acc = rotl64(acc ^ xxh64_round(0, load_le64(p)), 27) * xxh64_prime1 + xxh64_prime4;
  if (end - p >= 4) {
    acc = rotl64(acc ^ (std::uint64_t(load_le32(p)) * xxh64_prime1), 23) * xxh64_prime2 + xxh64_prime3;
    p += 4;
  }
  for (; p < end; ++p) acc = rotl64(acc ^ (std::uint64_t(*p) * xxh64_prime5), 11) * xxh64_prime1;
  // Avalanche.
  acc ^= acc >> 33;
  acc *= xxh64_prime2;
  acc ^= acc >> 29;
  acc *= xxh64_prime3;
  acc ^= acc >> 32;
  return acc;
}

ECQ_NAMESPACE_END

#endif  // ECQ_CHECKSUM_HPP
