// ecq/detail/cpu_decode_scalar.hpp — the portable kernel behind ecq/cpu_decode.hpp.
//
// READ ME FIRST
// * Any rans_params and any Lanes; plain C++, so it is also what nvcc and
//   non-x86 targets get.
// * Same contract as the SIMD kernels: results and status equal those of
//   interleaved_decode_checked, and nothing outside words[0, num_words) is
//   read. Rounds that have a whole round of words left (Lanes *
//   max_words_per_symbol) run without bounds checks; the rest goes through
//   the checked decoder of ecq/interleaved_rans.hpp.
// * The refill is branch-free: a refill happens for about half the symbols
//   of well-compressed data, so a branch on it is mispredicted constantly
//   (GCC 12 compiles `x < L ? (x << W) | w : x` to a branch, and the core
//   interleaved_decode runs 3x slower for it). The word is always loaded and
//   the pointer advanced by 0 or 1.
#ifndef ECQ_DETAIL_CPU_DECODE_SCALAR_HPP
#define ECQ_DETAIL_CPU_DECODE_SCALAR_HPP

#include <cstddef>
#include <cstdint>

#include "../config.hpp"
#include "../interleaved_rans.hpp"
#include "../rans_state.hpp"
#include "../status.hpp"

ECQ_NAMESPACE_BEGIN
namespace detail {
namespace scalar {

/// Passes (first + index, symbol) on to another sink: the checked decoder
/// numbers the symbols of the tail from 0.
template <class Sink>
struct offset_sink {
  Sink* sink;
  std::size_t first;
  ECQ_FORCEINLINE void operator()(std::size_t index, std::uint32_t symbol) const { (*sink)(first + index, symbol); }
};

/// Decodes n symbols of an interleaved stream into sink(index, symbol).
/// Same statuses as interleaved_decode_checked.
template <class Params, int Lanes, class TableView, class Sink>
status decode_stream(const typename Params::word_type* words, std::size_t num_words, std::size_t n,
                     const TableView& table, Sink& sink) {
  using state_type = typename Params::state_type;
  using word_type = typename Params::word_type;
  using entry_layout = typename TableView::layout;
  using layout = interleaved_layout<Params, Lanes>;
  if (num_words < layout::state_words) return status::truncated;

  state_type x[Lanes];
  for (int j = 0; j < Lanes; ++j) {
    x[j] = rans_load_state<Params>(words + std::size_t(j) * Params::words_per_state);
    if (!rans_state_in_range<Params>(x[j])) return status::corrupt_stream;
  }
  const word_type* p = words + layout::state_words;
  const word_type* const end = words + num_words;
  constexpr std::size_t round_words = std::size_t(Lanes) * Params::max_words_per_symbol;

  std::size_t i = 0;
  for (; i + Lanes <= n && std::size_t(end - p) >= round_words; i += Lanes) {
    ECQ_PRAGMA_UNROLL
    for (int j = 0; j < Lanes; ++j) {
      const auto e = table[rans_get<Params>(x[j])];
      sink(i + std::size_t(j), entry_layout::symbol(e));
      state_type y = rans_advance<Params>(x[j], entry_layout::freq(e), entry_layout::offset(e));
      ECQ_PRAGMA_UNROLL
      for (int k = 0; k < Params::max_words_per_symbol; ++k) {
        const state_type need = y < Params::lower_bound;
        y = (y << (need * Params::word_bits)) | (state_type(*p) & (state_type(0) - need));
        p += need;
      }
      x[j] = y;
    }
  }

  checked_word_reader<word_type> read{p, end, false};
  offset_sink<Sink> rest{&sink, i};
  decode_rounds<Params, Lanes>(x, n - i, table, read, rest, &read.overrun);
  if (read.overrun) return status::truncated;
  for (int j = 0; j < Lanes; ++j)
    if (x[j] != rans_init<Params>()) return status::corrupt_stream;
  if (read.p != read.end) return status::trailing_data;
  return status::ok;
}

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
