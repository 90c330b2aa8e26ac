// Tests for include/ecq/schemes/float_formats.hpp: every binary16 and
// bfloat16 pattern widens exactly and narrows back to itself; narrowing of
// random and boundary floats matches a reference written with double
// arithmetic (round to nearest, ties to even) in both formats.
#include <ecq/schemes/float_formats.hpp>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

namespace {

float from_bits(std::uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Reference narrowing, by exhaustive comparison of distances in double: the
// nearest finite pattern (or infinity beyond the overflow threshold), ties to
// the pattern with an even last bit. Patterns are ordered by magnitude, so a
// binary search over magnitudes finds the two neighbours.
struct format_desc {
  int mantissa_bits;
  int exponent_bias;
  int exponent_bits;
};

double value_of(std::uint32_t magnitude_bits, const format_desc& f) {
  const std::uint32_t m = magnitude_bits & ((1u << f.mantissa_bits) - 1);
  const std::uint32_t e = magnitude_bits >> f.mantissa_bits;
  if (e == 0) return std::ldexp(double(m), 1 - f.exponent_bias - f.mantissa_bits);
  return std::ldexp(double(m | (1u << f.mantissa_bits)), int(e) - f.exponent_bias - f.mantissa_bits);
}

std::uint16_t reference_narrow(float x, const format_desc& f) {
  const std::uint16_t sign = std::signbit(x) ? std::uint16_t(0x8000) : std::uint16_t(0);
  const double a = std::fabs(double(x));
  const std::uint32_t inf = ((1u << f.exponent_bits) - 1) << f.mantissa_bits;
  const std::uint32_t max_finite = inf - 1;
  const double top = value_of(max_finite, f);
  const double ulp_top = top - value_of(max_finite - 1, f);
  if (a >= top + ulp_top / 2) {
    // Exactly halfway to the next binade rounds to even: max_finite is odd, so infinity.
    return std::uint16_t(sign | inf);
  }
  std::uint32_t lo = 0, hi = max_finite;  // largest pattern with value <= a
  while (lo < hi) {
    const std::uint32_t mid = (lo + hi + 1) / 2;
    if (value_of(mid, f) <= a) lo = mid; else hi = mid - 1;
  }
  if (lo == max_finite) return std::uint16_t(sign | lo);
  const double below = value_of(lo, f), above = value_of(lo + 1, f);
  std::uint32_t pick = lo;
  if (a - below > above - a || (a - below == above - a && (lo & 1u))) pick = lo + 1;
  return std::uint16_t(sign | pick);
}

constexpr format_desc binary16{10, 15, 5};
constexpr format_desc bfloat16{7, 127, 8};

TEST(FloatFormats, EveryF16PatternRoundTrips) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = ecq::f16_to_float(std::uint16_t(h));
    if (((h >> 10) & 0x1f) == 0x1f && (h & 0x3ff) != 0) {
      EXPECT_TRUE(std::isnan(f)) << h;
      EXPECT_TRUE(std::isnan(ecq::f16_to_float(ecq::float_to_f16(f)))) << h;
      continue;
    }
    const double expect = ((h >> 10) & 0x1f) == 0x1f ? INFINITY : value_of(h & 0x7fff, binary16);
    EXPECT_EQ(double(std::fabs(f)), expect) << h;
    EXPECT_EQ(std::signbit(f), (h & 0x8000) != 0) << h;
    EXPECT_EQ(ecq::float_to_f16(f), h) << h;
  }
}

TEST(FloatFormats, EveryBf16PatternRoundTrips) {
  for (std::uint32_t h = 0; h < 65536; ++h) {
    const float f = ecq::bf16_to_float(std::uint16_t(h));
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    EXPECT_EQ(u, h << 16) << h;
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(ecq::bf16_to_float(ecq::float_to_bf16(f)))) << h;
      EXPECT_EQ(ecq::float_to_bf16(f) & 0x8000, h & 0x8000) << "sign of NaN " << h;
    } else {
      EXPECT_EQ(ecq::float_to_bf16(f), h) << h;
    }
  }
}

TEST(FloatFormats, NarrowingMatchesReferenceOnRandomFloats) {
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) {
    // Half arbitrary bit patterns, half values inside binary16's range
    // (subnormals included), where its rounding is exercised.
    float x = from_bits(rng());
    if (i % 2) x = (rng() % 2 ? -1.0f : 1.0f) * std::ldexp(float(rng() % 100000) / 65536.0f, int(rng() % 50) - 30);
    if (std::isnan(x)) continue;
    ASSERT_EQ(ecq::float_to_f16(x), reference_narrow(x, binary16)) << x;
    if (!std::isinf(x)) {
      ASSERT_EQ(ecq::float_to_bf16(x), reference_narrow(x, bfloat16)) << x;
    }
  }
}

TEST(FloatFormats, NarrowingBoundaries) {
  // Ties to even, overflow thresholds, subnormal edges.
  EXPECT_EQ(ecq::float_to_f16(65504.0f), 0x7bff);
  EXPECT_EQ(ecq::float_to_f16(65519.99f), 0x7bff);
  EXPECT_EQ(ecq::float_to_f16(65520.0f), 0x7c00);  // halfway: even is infinity
  EXPECT_EQ(ecq::float_to_f16(-1e9f), 0xfc00);
  EXPECT_EQ(ecq::float_to_f16(std::ldexp(1.0f, -24)), 0x0001);   // smallest subnormal
  EXPECT_EQ(ecq::float_to_f16(std::ldexp(1.0f, -25)), 0x0000);   // half of it: ties to even 0
  EXPECT_EQ(ecq::float_to_f16(std::ldexp(1.5f, -25)), 0x0001);
  EXPECT_EQ(ecq::float_to_f16(std::ldexp(3.0f, -25)), 0x0002);   // 1.5 ulp: ties to even 2
  EXPECT_EQ(ecq::float_to_f16(std::ldexp(1023.5f, -24)), 0x0400);  // carries into the smallest normal
  EXPECT_EQ(ecq::float_to_f16(1.0f + std::ldexp(1.0f, -11)), 0x3c00);  // tie, even down
  EXPECT_EQ(ecq::float_to_f16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);  // tie, even up
  EXPECT_EQ(ecq::float_to_f16(-0.0f), 0x8000);
  EXPECT_EQ(ecq::float_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);     // tie, even down
  EXPECT_EQ(ecq::float_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);  // tie, even up
  EXPECT_EQ(ecq::float_to_bf16(std::numeric_limits<float>::max()), 0x7f80);  // rounds up to infinity
  EXPECT_EQ(ecq::float_to_bf16(-INFINITY), 0xff80);
  EXPECT_TRUE(std::isnan(ecq::f16_to_float(ecq::float_to_f16(NAN))));
  EXPECT_TRUE(std::isnan(ecq::bf16_to_float(ecq::float_to_bf16(-NAN))));
}

TEST(FloatFormats, RunTimeFormatSelects) {
  EXPECT_EQ(ecq::float_to_float16(1.5f, ecq::float16_format::binary16), ecq::float_to_f16(1.5f));
  EXPECT_EQ(ecq::float_to_float16(1.5f, ecq::float16_format::bfloat16), ecq::float_to_bf16(1.5f));
  EXPECT_EQ(ecq::float16_to_float(0x3e00, ecq::float16_format::binary16), 1.5f);
  EXPECT_EQ(ecq::float16_to_float(0x3fc0, ecq::float16_format::bfloat16), 1.5f);
  // The enum values are stored in parameter blocks.
  EXPECT_EQ(int(ecq::float16_format::binary16), 0);
  EXPECT_EQ(int(ecq::float16_format::bfloat16), 1);
}

}  // namespace
