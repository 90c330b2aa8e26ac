// ecq/schemes/float_formats.hpp — READ ME FIRST
//
// The 16-bit float formats that weights and their side data are stored in,
// as bit patterns (std::uint16_t), with conversions usable in host and device
// code and no dependence on <cuda_fp16.h> or compiler extensions:
//
//   binary16 ("F16", IEEE half):  1 sign, 5 exponent (bias 15), 10 mantissa.
//   bfloat16 ("BF16"):            1 sign, 8 exponent (bias 127), 7 mantissa:
//                                 the upper half of an IEEE float.
//
// Rules:
//   * Widening (to float) is exact for every pattern, subnormals included.
//   * Narrowing (from float) rounds to nearest, ties to even, like the
//     hardware conversions (cvt.rn) and like PyTorch, NumPy and MLX. Values
//     beyond the largest finite value become infinities, as round-to-nearest
//     requires; NaN stays NaN (quiet, sign kept).
//   * bf16 narrowing of a finite float never fails: the exponent range is the
//     same. binary16 narrowing flushes nothing: results below 2^-14 become
//     binary16 subnormals, exactly rounded.
#ifndef ECQ_SCHEMES_FLOAT_FORMATS_HPP
#define ECQ_SCHEMES_FLOAT_FORMATS_HPP

#include <cstdint>
#include <cstring>

#include "../config.hpp"

ECQ_NAMESPACE_BEGIN

/// Which 16-bit format a side-data array (scales, biases, steps) is stored in.
/// The values are stored in scheme parameter blocks: never renumber.
enum class float16_format : std::uint8_t {
  binary16 = 0,  // IEEE half ("F16")
  bfloat16 = 1,  // "BF16"
};

/// @return the IEEE bit pattern of f.
ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint32_t float_to_bits(float f) {
#if ECQ_IS_DEVICE_CODE()
  return __float_as_uint(f);
#else
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

/// @return the float with IEEE bit pattern u.
ECQ_HOST_DEVICE ECQ_FORCEINLINE float bits_to_float(std::uint32_t u) {
#if ECQ_IS_DEVICE_CODE()
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

/// @return the bfloat16 pattern nearest to f (ties to even; NaN stays a quiet NaN).
ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint16_t float_to_bf16(float f) {
  const std::uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return std::uint16_t((u >> 16) | 0x0040u);  // NaN: set the quiet bit
  // Adding 0x7fff plus the lowest kept bit rounds to nearest with ties to even;
  // a carry into the exponent is the correct rounding up (to infinity at the top).
  return std::uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

/// @return the float value of a bfloat16 pattern (exact).
ECQ_HOST_DEVICE ECQ_FORCEINLINE float bf16_to_float(std::uint16_t h) { return bits_to_float(std::uint32_t(h) << 16); }

/// @return the float value of a binary16 pattern (exact, subnormals included).
ECQ_HOST_DEVICE ECQ_FORCEINLINE float f16_to_float(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t mantissa = h & 0x3ffu;
  if (exponent == 0x1fu) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  if (mantissa == 0) return bits_to_float(sign);  // signed zero
  // Subnormal: value = mantissa * 2^-24. Normalise the mantissa into [2^10, 2^11).
  std::uint32_t e = 113u;  // float exponent field of 2^-14
  while ((mantissa & 0x400u) == 0) {
    mantissa <<= 1;
    --e;
  }
  return bits_to_float(sign | (e << 23) | ((mantissa & 0x3ffu) << 13));
}

/// @return the binary16 pattern nearest to f (ties to even; overflow gives
///         infinity; NaN stays a quiet NaN).
ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint16_t float_to_f16(float f) {
  const std::uint32_t u = float_to_bits(f);
  const std::uint16_t sign = std::uint16_t((u >> 16) & 0x8000u);
  const std::uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return std::uint16_t(sign | 0x7e00u | ((a >> 13) & 0x3ffu));  // NaN, quiet
  if (a >= 0x477ff000u) return std::uint16_t(sign | 0x7c00u);  // >= 65520: rounds to infinity
  if (a >= 0x38800000u) {
    // Normal result (|f| >= 2^-14): rebias the exponent, round away 13 bits.
    const std::uint32_t rebased = a - (112u << 23);
    return std::uint16_t(sign | ((rebased + 0xfffu + ((rebased >> 13) & 1u)) >> 13));
  }
  if (a < 0x33000000u) return sign;  // below 2^-25: rounds to zero (2^-25 itself ties to even 0)
  // Subnormal result: value / 2^-24 rounded to an integer in [0, 1024].
  const std::uint32_t exponent = a >> 23;                       // in [102, 112]
  const std::uint32_t mantissa = (a & 0x7fffffu) | 0x800000u;  // 24 significant bits
  const std::uint32_t shift = 126u - exponent;                  // bits to drop: in [14, 24]
  const std::uint32_t kept = mantissa >> shift;
  const std::uint32_t rest = mantissa & ((1u << shift) - 1u);
  const std::uint32_t half = 1u << (shift - 1u);
  const std::uint32_t rounded = kept + ((rest > half || (rest == half && (kept & 1u))) ? 1u : 0u);
  return std::uint16_t(sign | rounded);  // 1024 carries into the smallest normal, as it should
}

/// Conversions by run-time format.
ECQ_HOST_DEVICE ECQ_FORCEINLINE float float16_to_float(std::uint16_t h, float16_format format) {
  return format == float16_format::bfloat16 ? bf16_to_float(h) : f16_to_float(h);
}
ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint16_t float_to_float16(float f, float16_format format) {
  return format == float16_format::bfloat16 ? float_to_bf16(f) : float_to_f16(f);
}

ECQ_NAMESPACE_END

#endif  // ECQ_SCHEMES_FLOAT_FORMATS_HPP
