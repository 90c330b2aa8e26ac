// ecq/detail/cpu_decode_scalar.hpp — the sinks of the portable path of ecq/cpu_decode.hpp.
//
// READ ME FIRST
// * The portable path is the core's checked decoder,
//   interleaved_decode_checked (ecq/interleaved_rans.hpp: any rans_params,
//   any Lanes, plain C++ with a branch-free refill), so it is also what nvcc
//   and non-x86 targets get, and its results and statuses are by definition
//   those the SIMD kernels must match.
// * This header holds what cpu_decoder hands it: sinks that store symbols,
//   unpack multi-weight symbols to codes, or fuse affine dequantisation with
//   a dot product.
#ifndef ECQ_DETAIL_CPU_DECODE_SCALAR_HPP
#define ECQ_DETAIL_CPU_DECODE_SCALAR_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"

ECQ_NAMESPACE_BEGIN
namespace detail {
namespace scalar {

/// Symbols to memory.
template <class Symbol>
struct store_symbols_sink {
  Symbol* out;
  ECQ_FORCEINLINE void operator()(std::size_t index, std::uint32_t symbol) const { out[index] = Symbol(symbol); }
};

/// Multi-weight symbols (symbol_packing with no raw bits) to one code per
/// byte; the padding codes of a last, partial symbol are dropped.
template <class Packing>
struct store_codes_sink {
  std::uint8_t* out;
  std::size_t num_codes;
  ECQ_FORCEINLINE void operator()(std::size_t index, std::uint32_t symbol) const {
    const std::size_t first = index * Packing::codes_per_symbol;
    ECQ_PRAGMA_UNROLL
    for (int j = 0; j < Packing::codes_per_symbol; ++j)
      if (first + std::size_t(j) < num_codes) out[first + std::size_t(j)] = std::uint8_t(Packing::code(symbol, 0, j));
  }
};

/// Fused affine dequantisation and dot product: sum over codes c of
/// (scales[g] * code_c + biases[g]) * activations[c], g = c / group_size.
template <class Packing>
struct affine_dot_sink {
  const float* activations;
  const float* scales;
  const float* biases;
  std::size_t group_size;
  std::size_t num_codes;
  float sum;
  ECQ_FORCEINLINE void operator()(std::size_t index, std::uint32_t symbol) {
    const std::size_t first = index * Packing::codes_per_symbol;
    ECQ_PRAGMA_UNROLL
    for (int j = 0; j < Packing::codes_per_symbol; ++j) {
      const std::size_t c = first + std::size_t(j);
      if (c < num_codes) {
        const std::size_t g = c / group_size;
        sum += (scales[g] * float(Packing::code(symbol, 0, j)) + biases[g]) * activations[c];
      }
    }
  }
};

}  // namespace scalar
}  // namespace detail
ECQ_NAMESPACE_END

#endif  // ECQ_DETAIL_CPU_DECODE_SCALAR_HPP
