// Tests for ecq/checksum.hpp: XXH64 against frozen vectors produced by the
// reference tool (`xxhsum -H64`, xxHash 0.8.1, Debian package xxhash) on the
// inputs described next to each vector.
#include <ecq/checksum.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace {

// Bytes i * 131 + 7 (mod 256), i = 0, 1, ...: a deterministic pattern that
// reproduces in a shell with
//   python3 -c "import sys; sys.stdout.buffer.write(bytes((i*131+7)&255 for i in range(N)))"
std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = std::uint8_t(i * 131 + 7);
  return v;
}

TEST(Xxh64, EmptyInputMatchesReference) {
  EXPECT_EQ(ecq::xxh64(nullptr, 0), 0xEF46DB3751D8E999ull);
}

TEST(Xxh64, AbcMatchesReference) {
  const std::uint8_t abc[3] = {'a', 'b', 'c'};
  EXPECT_EQ(ecq::xxh64(abc, 3), 0x44BC2CF5AD770999ull);
}

// Lengths chosen to cover each code path: 13 (an 8-byte, a 4-byte and a
// 1-byte tail, no stripe), 31 (largest without a stripe), 32 (one stripe, no
// tail), 100 (three stripes and a 4-byte tail).
TEST(Xxh64, PatternInputsMatchReference) {
  struct vector_case {
    std::size_t size;
    std::uint64_t digest;
  };
  const vector_case cases[] = {
      {13, 0xDADC8A6255B4829Bull},
      {31, 0x6711D55E306B5D8Full},
      {32, 0x07F7B8E3BC5D6E25ull},
      {100, 0x9DDADA11D3DC2D8Full},
  };
  for (const vector_case& c : cases) {
    const std::vector<std::uint8_t> bytes = pattern(c.size);
    EXPECT_EQ(ecq::xxh64(bytes.data(), bytes.size()), c.digest) << "size " << c.size;
  }
}

// Usable in constant expressions (a compile-time check).
constexpr std::uint8_t abc_bytes[3] = {'a', 'b', 'c'};
static_assert(ecq::xxh64(abc_bytes, 3) == 0x44BC2CF5AD770999ull, "xxh64 must be constexpr");

TEST(Xxh64, DoesNotDependOnAlignment) {
  const std::vector<std::uint8_t> bytes = pattern(200);
  std::vector<std::uint8_t> shifted(bytes.size() + 7);
  for (std::size_t offset = 0; offset < 8; ++offset) {
    std::copy(bytes.begin(), bytes.end(), shifted.begin() + std::ptrdiff_t(offset));
    EXPECT_EQ(ecq::xxh64(shifted.data() + offset, bytes.size()), ecq::xxh64(bytes.data(), bytes.size()));
  }
}

TEST(Xxh64, EverySingleBitFlipChangesTheDigest) {
  std::vector<std::uint8_t> bytes = pattern(77);
  const std::uint64_t original = ecq::xxh64(bytes.data(), bytes.size());
  for (std::size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    bytes[bit / 8] ^= std::uint8_t(1u << (bit % 8));
    EXPECT_NE(ecq::xxh64(bytes.data(), bytes.size()), original) << "bit " << bit;
    bytes[bit / 8] ^= std::uint8_t(1u << (bit % 8));
  }
}

TEST(Xxh64, SeedChangesTheDigest) {
  const std::vector<std::uint8_t> bytes = pattern(40);
  EXPECT_NE(ecq::xxh64(bytes.data(), bytes.size(), 1), ecq::xxh64(bytes.data(), bytes.size(), 0));
}

}  // namespace
