// ecq/cpu_encode.hpp — READ ME FIRST
//
// The CPU encoder of N-way interleaved streams with the fastest kernel for
// this machine (host only). Its output is the same stream, word for word, as
// interleaved_encode's (ecq/interleaved_rans.hpp); only the speed differs.
//
//   cpu_encoder<Params, Lanes> e;
//   e.build(table);                                  // encode_table, picks the kernel once
//   e.encode(symbols, n, out, capacity, &written);   // as interleaved_encode
//
// Kernels:
//   scalar   interleaved_encode itself: any Params and Lanes.
//   avx512   rans32x16<ScaleBits <= 12>, Lanes in {16, 32, 64, 128}, 8-bit
//            symbols (alphabets of up to 256). Symbols are validated with
//            byte permutes before anything is written; per-symbol encode
//            data comes from registers for alphabets of up to 16 symbols and
//            from two gathers otherwise.
// build() picks avx512 where it exists and the CPU (and ECQ_CPU_PATH, see
// ecq/cpu_features.hpp) allows; an explicitly requested path without a
// kernel for the parameters is an error, as for cpu_decoder.
#ifndef ECQ_CPU_ENCODE_HPP
#define ECQ_CPU_ENCODE_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "config.hpp"
#include "cpu_features.hpp"
#include "detail/cpu_encode_avx512.hpp"
#include "interleaved_rans.hpp"
#include "rans_state.hpp"
#include "status.hpp"
#include "symbol_table.hpp"

ECQ_NAMESPACE_BEGIN

/// Encoder of interleaved streams of 8-bit symbols, for host code.
/// @tparam Params the stream's rans_params (rans32x16<S <= 12> for the AVX-512 kernel).
/// @tparam Lanes  the interleave width N.
template <class Params, int Lanes>
class cpu_encoder {
 public:
  using params = Params;
  using word_type = typename Params::word_type;

  /// Whether an AVX-512 kernel exists for these template parameters.
  static constexpr bool has_avx512_kernel =
      ECQ_HAS_X86_KERNELS() && std::is_same<typename Params::state_type, std::uint32_t>::value &&
      std::is_same<word_type, std::uint16_t>::value && Params::scale_bits <= 12 &&
      (Lanes == 16 || Lanes == 32 || Lanes == 64 || Lanes == 128);

  /// Chooses the kernel for `table` (which must outlive the encoder: the
  /// scalar kernel reads it in place) and prepares its data.
  /// @return status::ok; status::unsupported_parameters if `path` names a
  ///         path this CPU cannot run or one with no kernel for these
  ///         parameters or for the table (more than 256 symbols).
  status build(const encode_table<Params>& table, cpu_path path = cpu_path::automatic) {
    const bool automatic = path == cpu_path::automatic;
    const cpu_path limit = automatic ? default_cpu_path() : path;
    if (!cpu_path_supported(limit)) return status::unsupported_parameters;
    const std::uint32_t alphabet = table.alphabet_size();
    const bool simd = int(limit) >= int(cpu_path::avx512) && has_avx512_kernel && alphabet <= 256;
    const cpu_path chosen = simd ? cpu_path::avx512 : cpu_path::scalar;
    if (!automatic && chosen != path) return status::unsupported_parameters;
    table_ = table.data();
    alphabet_ = alphabet;
    path_ = chosen;
    if (simd) {
      for (std::uint32_t s = 0; s < 256; ++s) {
        const bool present = s < alphabet && table[s].freq != 0;
        const encode_symbol<Params> e = present ? table[s] : encode_symbol<Params>{};
        rcp_[s] = std::uint32_t(e.rcp_freq);
        packed_[s] = e.freq | (e.bias << 13) | (e.rcp_shift << 26);
        valid_[s] = std::uint8_t(present);
      }
    }
    return status::ok;
  }

  cpu_path path() const { return path_; }

  /// Encodes symbols[0, n) into out[0, capacity); on success *written is the
  /// stream length in words. Same contract and output as interleaved_encode.
  /// @return status::ok; status::invalid_argument if a symbol cannot be
  ///         encoded (>= alphabet size or frequency 0) or build() has not
  ///         succeeded; status::output_too_small if capacity <
  ///         interleaved_layout<Params, Lanes>::max_encoded_words(n). Both
  ///         are checked before anything is written.
  status encode(const std::uint8_t* symbols, std::size_t n, word_type* out, std::size_t capacity,
                std::size_t* written) const {
    *written = 0;
    if (table_ == nullptr) return status::invalid_argument;
#if ECQ_HAS_X86_KERNELS()
    if constexpr (has_avx512_kernel) {
      if (path_ == cpu_path::avx512) {
        if (capacity < interleaved_layout<Params, Lanes>::max_encoded_words(n)) return status::output_too_small;
        if (!detail::avx512::all_encodable(symbols, n, valid_)) return status::invalid_argument;
        const detail::avx512::encode_entries entries{rcp_, packed_, valid_, alphabet_ <= 16};
        *written = detail::avx512::encode_stream<Params::scale_bits, Lanes / 16>(symbols, n, entries, out, capacity);
        return status::ok;
      }
    }
#endif
    return interleaved_encode<Params, Lanes>(symbols, n, table_, alphabet_, out, capacity, written);
  }

 private:
  const encode_symbol<Params>* table_ = nullptr;
  std::uint32_t alphabet_ = 0;
  cpu_path path_ = cpu_path::scalar;
  alignas(64) std::uint32_t rcp_[256] = {};
  alignas(64) std::uint32_t packed_[256] = {};
  alignas(64) std::uint8_t valid_[256] = {};
};

ECQ_NAMESPACE_END

#endif  // ECQ_CPU_ENCODE_HPP
