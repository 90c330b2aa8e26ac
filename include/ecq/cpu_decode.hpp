// ecq/cpu_decode.hpp — READ ME FIRST
//
// CPU decoders of N-way interleaved streams (ecq/interleaved_rans.hpp) at the
// speed of the machine, chosen at run time (ecq/cpu_features.hpp). Host only.
//
//   cpu_decoder<Params, Lanes, SymbolBits> d;
//   d.build(table.view());                      // picks the kernel once
//   d.decode(words, num_words, n, symbols);     // symbols to memory
//   d.decode_codes<symbol_packing<4, 2>>(...);  // multi-weight symbols to one code per byte
//   d.dot_affine<symbol_packing<4, 2>>(...);    // fused decode -> dequantise -> dot
//
// Kernels (cpu_kernel), bit-exact with each other and with
// interleaved_decode_checked:
//   scalar          portable C++ for any Params and Lanes: the core's
//                   interleaved_decode_checked (branch-free refill).
//   avx2_gather     rans32x16, Lanes a multiple of 8 (up to 64), table
//                   entries of 32 bits (2 * ScaleBits + SymbolBits <= 32).
//   avx512_gather   rans32x16, Lanes in {16, 32, 64, 128}, 32-bit entries.
//   avx512_permute  as avx512_gather, for ScaleBits <= 8 and at most 16
//                   symbols: no gather, the table lives in registers. This
//                   is the fast configuration for 4-bit weights: their codes
//                   lose under 0.05 % of coded size at ScaleBits = 7.
//   neon            AArch64: rans32x16, Lanes a multiple of 4 (up to 64),
//                   32-bit entries; decode() only (decode_codes and
//                   dot_affine run the scalar kernel there).
// build() chooses the fastest kernel the CPU, the requested path and the
// parameters allow; an explicitly requested path that has no kernel for the
// parameters is an error, so a benchmark never measures a silent fallback.
//
// Every decoding function is a CHECKED path: for any bytes it never reads
// outside words[0, num_words) or writes outside its output, and it returns
// the status interleaved_decode_checked would (truncated, corrupt_stream,
// trailing_data). The table, however, is trusted: build it with
// decode_table::build, which validates it. On an error the output may hold
// some (wrong) symbols.
//
// The SIMD kernels need the stream to be words of the rans32x16 format; the
// dispatch is by template parameters, so other formats compile to the
// scalar kernel only. Under nvcc, and on targets other than x86-64 and
// AArch64, only the scalar kernel exists.
#ifndef ECQ_CPU_DECODE_HPP
#define ECQ_CPU_DECODE_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "config.hpp"
#include "cpu_features.hpp"
#include "detail/cpu_decode_avx2.hpp"
#include "detail/cpu_decode_avx512.hpp"
#include "detail/cpu_decode_neon.hpp"
#include "detail/cpu_decode_scalar.hpp"
#include "interleaved_rans.hpp"
#include "rans_state.hpp"
#include "status.hpp"
#include "symbol_packing.hpp"
#include "symbol_table.hpp"

ECQ_NAMESPACE_BEGIN

/// The kernel a cpu_decoder runs.
enum class cpu_kernel : int {
  scalar = 0,
  avx2_gather = 1,
  avx512_gather = 2,
  avx512_permute = 3,
  neon = 4,
};

/// @return "scalar", "avx2_gather", "avx512_gather", "avx512_permute" or "neon".
inline const char* cpu_kernel_name(cpu_kernel k) {
  switch (k) {
    case cpu_kernel::scalar: return "scalar";
    case cpu_kernel::avx2_gather: return "avx2_gather";
    case cpu_kernel::avx512_gather: return "avx512_gather";
    case cpu_kernel::avx512_permute: return "avx512_permute";
    case cpu_kernel::neon: return "neon";
  }
  return "unknown";
}

/// @return the instruction-set path a kernel belongs to.
inline cpu_path cpu_kernel_path(cpu_kernel k) {
  switch (k) {
    case cpu_kernel::scalar: return cpu_path::scalar;
    case cpu_kernel::avx2_gather: return cpu_path::avx2;
    case cpu_kernel::avx512_gather:
    case cpu_kernel::avx512_permute: return cpu_path::avx512;
    case cpu_kernel::neon: return cpu_path::neon;
  }
  return cpu_path::scalar;
}

/// Decoder of interleaved streams with one decode table, for host code.
/// @tparam Params     the stream's rans_params (rans32x16<S> for the SIMD kernels).
/// @tparam Lanes      the interleave width N of the stream.
/// @tparam SymbolBits bits of a symbol, as in the decode table (<= 8 for the SIMD kernels).
template <class Params, int Lanes, int SymbolBits = 8>
class cpu_decoder {
 public:
  using params = Params;
  using word_type = typename Params::word_type;
  using table_view = decode_table_view<Params::scale_bits, SymbolBits>;
  using symbol_type = typename table_view::symbol_type;
  static constexpr int lanes = Lanes;
  static constexpr int scale_bits = Params::scale_bits;

 private:
  static constexpr bool rans32x16 =
      std::is_same<typename Params::state_type, std::uint32_t>::value && std::is_same<word_type, std::uint16_t>::value;
  static constexpr bool packed32 = std::is_same<typename table_view::entry_type, std::uint32_t>::value;
  static constexpr bool simd_shape = ECQ_HAS_X86_KERNELS() && rans32x16 && packed32 && SymbolBits <= 8;
  // The permute kernel keeps the slot -> symbol map (at most 256 slots) in registers.
  static constexpr bool permute_shape = Params::scale_bits <= 8;

 public:
  /// Whether an AVX-512 / AVX2 kernel exists for these template parameters.
  static constexpr bool has_avx512_kernel = simd_shape && (Lanes == 16 || Lanes == 32 || Lanes == 64 || Lanes == 128);
  static constexpr bool has_avx2_kernel = simd_shape && Lanes % 8 == 0 && Lanes <= 64;
  /// Whether the NEON kernel exists for these template parameters (AArch64 only).
  static constexpr bool has_neon_kernel =
      ECQ_HAS_NEON_KERNELS() && rans32x16 && packed32 && SymbolBits <= 8 && Lanes % 4 == 0 && Lanes <= 64;

  /// Chooses the kernel for `table` (which must outlive the decoder: the
  /// gather kernels read it in place) and prepares its tables.
  /// @return status::ok; status::unsupported_parameters if `path` names a
  ///         path this CPU cannot run, or one with no kernel for these
  ///         parameters (then the decoder keeps its previous kernel).
  status build(table_view table, cpu_path path = cpu_path::automatic) {
    const bool automatic = path == cpu_path::automatic;
    const cpu_path limit = automatic ? default_cpu_path() : path;
    if (!cpu_path_supported(limit)) return status::unsupported_parameters;

    bool small_alphabet = permute_shape;
    if constexpr (permute_shape) {
      for (std::uint32_t slot = 0; slot < (std::uint32_t(1) << scale_bits); ++slot)
        if (table_view::layout::symbol(table[slot]) >= 16) small_alphabet = false;
    }
    cpu_kernel chosen = cpu_kernel::scalar;
    if (limit == cpu_path::neon && has_neon_kernel)
      chosen = cpu_kernel::neon;
    else if (limit == cpu_path::avx512 && has_avx512_kernel)
      chosen = small_alphabet ? cpu_kernel::avx512_permute : cpu_kernel::avx512_gather;
    else if ((limit == cpu_path::avx512 || limit == cpu_path::avx2) && has_avx2_kernel)
      chosen = cpu_kernel::avx2_gather;
    if (!automatic && cpu_kernel_path(chosen) != path) return status::unsupported_parameters;

    table_ = table;
    kernel_ = chosen;
    if (chosen == cpu_kernel::avx512_permute) {
      const std::uint32_t m = std::uint32_t(1) << scale_bits;
      for (std::uint32_t s = 0; s < 16; ++s) freq_[s] = start_[s] = 0;
      for (std::uint32_t slot = 0; slot < m; ++slot) {
        const auto e = table[slot];
        const std::uint32_t s = table_view::layout::symbol(e);
        freq_[s] = table_view::layout::freq(e);
        start_[s] = slot - table_view::layout::offset(e);
      }
      for (std::uint32_t i = 0; i < 256; ++i)  // repeated with period M, see permute16_lookup
        slot_symbol_[i] = std::uint8_t(table_view::layout::symbol(table[i & (m - 1)]));
    }
    return status::ok;
  }

  cpu_kernel kernel() const { return kernel_; }
  cpu_path path() const { return cpu_kernel_path(kernel_); }

  /// Decodes n symbols from words[0, num_words) to out[0, n). CHECKED path.
  /// @return as interleaved_decode_checked; status::invalid_argument before
  ///         build() succeeded.
  status decode(const word_type* words, std::size_t num_words, std::size_t n, symbol_type* out) const {
    if (table_.entries == nullptr) return status::invalid_argument;
    if (kernel_ != cpu_kernel::scalar) return decode_simd(words, num_words, n, out);
    detail::scalar::store_symbols_sink<symbol_type> sink{out};
    return interleaved_decode_checked<Params, Lanes>(words, num_words, n, table_, sink);
  }

  /// decode() through the SIMD kernel build() chose, without the scalar
  /// kernel: a caller with a scalar path of its own (ecq/cpu/tensor_decoder.hpp)
  /// does not compile the scalar loop once more for every configuration (its
  /// compile-time lanes unroll it: a third of a program's compile time).
  /// @return as decode; status::unsupported_parameters when kernel() is
  ///         cpu_kernel::scalar.
  status decode_simd(const word_type* words, std::size_t num_words, std::size_t n, symbol_type* out) const {
    if (table_.entries == nullptr) return status::invalid_argument;
#if ECQ_HAS_NEON_KERNELS()
    if constexpr (has_neon_kernel) {
      if (kernel_ == cpu_kernel::neon)
        return detail::neon::decode_stream<scale_bits, Lanes / 4>(words, num_words, n, table_.entries, out);
    }
#endif
#if ECQ_HAS_X86_KERNELS()
    if constexpr (simd_shape) {
      if (kernel_ != cpu_kernel::scalar) {
        using avx512_sink = detail::avx512::store_bytes_sink;
        using avx2_sink = detail::avx2::store_bytes_sink;
        typename avx512_sink::args a512{out};
        typename avx2_sink::args a2{out};
        return run_simd<avx512_sink, avx2_sink>(words, num_words, n, a512, a2);
      }
    }
#endif
    (void)words, (void)num_words, (void)n, (void)out;
    return status::unsupported_parameters;
  }

#if ECQ_HAS_X86_KERNELS()
  /// Decodes n symbols from words[0, num_words) into an AVX-512 sink of the
  /// caller's (the interface of the sinks of ecq/detail/cpu_decode_avx512.hpp:
  /// constructed from `args`, put / put_partial for 16 lanes at a time in
  /// stream order, finish(args) after a successful decode), for consumers
  /// that use the symbols as they come (ecq/cpu/tensor_decoder.hpp scatters
  /// them to rows). CHECKED path, statuses as decode.
  /// @return as decode; status::unsupported_parameters unless path() is
  ///         cpu_path::avx512.
  template <class Avx512Sink>
  status decode_to_sink(const word_type* words, std::size_t num_words, std::size_t n,
                        typename Avx512Sink::args& args) const {
    if (table_.entries == nullptr) return status::invalid_argument;
    if constexpr (has_avx512_kernel) {
      if (path() == cpu_path::avx512) return run_avx512<Avx512Sink>(words, num_words, n, args);
    }
    (void)words, (void)num_words, (void)n, (void)args;
    return status::unsupported_parameters;
  }
#endif

  /// Decodes the stream of Packing::symbol_count(num_codes) multi-weight
  /// symbols to codes[0, num_codes), one code per byte. CHECKED path.
  /// Packing is a symbol_packing without raw bits whose symbols have
  /// SymbolBits bits.
  /// @return as decode.
  template <class Packing>
  status decode_codes(const word_type* words, std::size_t num_words, std::size_t num_codes, std::uint8_t* codes) const {
    static_assert(Packing::raw_bits == 0, "decode_codes needs a symbol_packing without raw bits");
    static_assert(Packing::symbol_bits == SymbolBits, "the packing's symbols must have SymbolBits bits");
    if (table_.entries == nullptr) return status::invalid_argument;
    const std::size_t n = Packing::symbol_count(num_codes);
#if ECQ_HAS_X86_KERNELS()
    constexpr int k = Packing::codes_per_symbol;
    if constexpr (simd_shape && (k == 1 || k == 2 || k == 4)) {
      if (kernel_ != cpu_kernel::scalar) {
        using avx512_sink = detail::avx512::store_codes_sink<Packing::code_bits, k>;
        using avx2_sink = detail::avx2::store_codes_sink<Packing::code_bits, k>;
        typename avx512_sink::args a512{codes, num_codes};
        typename avx2_sink::args a2{codes, num_codes};
        return run_simd<avx512_sink, avx2_sink>(words, num_words, n, a512, a2);
      }
    }
#endif
    detail::scalar::store_codes_sink<Packing> sink{codes, num_codes};
    return interleaved_decode_checked<Params, Lanes>(words, num_words, n, table_, sink);
  }

  /// Fused decode -> affine dequantisation -> dot product, weights never
  /// stored: *result = sum over c < num_codes of
  ///   (scales[c / group_size] * code_c + biases[c / group_size]) * activations[c],
  /// for the stream of Packing::symbol_count(num_codes) multi-weight symbols
  /// (as for decode_codes). The SIMD kernels take CodeBits <= 4, one or two
  /// codes per symbol and group_size a multiple of 32 (AVX-512) or 16
  /// (AVX2); other shapes run the scalar kernel. Sums are in float, in an
  /// order that depends on the kernel. CHECKED path for the stream;
  /// activations[0, num_codes) and scales/biases[0, ceil(num_codes /
  /// group_size)) must be readable.
  /// @return as decode (then *result is 0), or status::invalid_argument for
  ///         group_size == 0.
  template <class Packing>
  status dot_affine(const word_type* words, std::size_t num_words, std::size_t num_codes, const float* activations,
                    const float* scales, const float* biases, std::size_t group_size, float* result) const {
    static_assert(Packing::raw_bits == 0, "dot_affine needs a symbol_packing without raw bits");
    static_assert(Packing::symbol_bits == SymbolBits, "the packing's symbols must have SymbolBits bits");
    *result = 0.0f;
    if (table_.entries == nullptr || group_size == 0) return status::invalid_argument;
    const std::size_t n = Packing::symbol_count(num_codes);
#if ECQ_HAS_X86_KERNELS()
    constexpr int k = Packing::codes_per_symbol;
    if constexpr (simd_shape && Packing::code_bits <= 4 && (k == 1 || k == 2)) {
      const std::size_t simd_group = std::size_t(kernel_ == cpu_kernel::avx2_gather ? 8 : 16) * k;
      if (kernel_ != cpu_kernel::scalar && group_size % simd_group == 0) {
        using avx512_sink = detail::avx512::affine_dot_sink<Packing::code_bits, k>;
        using avx2_sink = detail::avx2::affine_dot_sink<Packing::code_bits, k>;
        typename avx512_sink::args a512{activations, scales, biases, group_size, num_codes, 0.0f};
        typename avx2_sink::args a2{activations, scales, biases, group_size, num_codes, 0.0f};
        const status st = run_simd<avx512_sink, avx2_sink>(words, num_words, n, a512, a2);
        if (st == status::ok) *result = kernel_ == cpu_kernel::avx2_gather ? a2.result : a512.result;
        return st;
      }
    }
#endif
    detail::scalar::affine_dot_sink<Packing> sink{activations, scales, biases, group_size, num_codes, 0.0f};
    const status st = interleaved_decode_checked<Params, Lanes>(words, num_words, n, table_, sink);
    if (st == status::ok) *result = sink.sum;
    return st;
  }

 private:
#if ECQ_HAS_X86_KERNELS()
  // The AVX-512 kernel build() chose (permute or gather); precondition: path() == cpu_path::avx512.
  template <class Avx512Sink>
  status run_avx512(const word_type* words, std::size_t num_words, std::size_t n,
                    typename Avx512Sink::args& a512) const {
    if constexpr (permute_shape) {
      if (kernel_ == cpu_kernel::avx512_permute) {
        using lookup = detail::avx512::permute16_lookup<scale_bits>;
        const typename lookup::args la{slot_symbol_, freq_, start_};
        return detail::avx512::decode_stream<scale_bits, Lanes / 16, lookup, Avx512Sink>(words, num_words, n, la, a512);
      }
    }
    using lookup = detail::avx512::gather_lookup<scale_bits>;
    const typename lookup::args la{table_.entries};
    return detail::avx512::decode_stream<scale_bits, Lanes / 16, lookup, Avx512Sink>(words, num_words, n, la, a512);
  }

  template <class Avx512Sink, class Avx2Sink>
  status run_simd(const word_type* words, std::size_t num_words, std::size_t n, typename Avx512Sink::args& a512,
                  typename Avx2Sink::args& a2) const {
    if constexpr (has_avx512_kernel) {
      if (kernel_ == cpu_kernel::avx512_permute || kernel_ == cpu_kernel::avx512_gather)
        return run_avx512<Avx512Sink>(words, num_words, n, a512);
    }
    if constexpr (has_avx2_kernel) {
      using lookup = detail::avx2::gather_lookup<scale_bits>;
      const typename lookup::args la{table_.entries};
      return detail::avx2::decode_stream<scale_bits, Lanes / 8, lookup, Avx2Sink>(words, num_words, n, la, a2);
    }
    return status::unsupported_parameters;  // unreachable: build() chose a SIMD kernel that exists
  }
#endif

  table_view table_{nullptr};
  cpu_kernel kernel_ = cpu_kernel::scalar;
  alignas(64) std::uint8_t slot_symbol_[256] = {};
  alignas(64) std::uint32_t freq_[16] = {};
  alignas(64) std::uint32_t start_[16] = {};
};

ECQ_NAMESPACE_END

#endif  // ECQ_CPU_DECODE_HPP
