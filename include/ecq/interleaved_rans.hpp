// ecq/interleaved_rans.hpp — READ ME FIRST
//
// N-way interleaved static rANS over one word stream: symbol i is coded by
// state i mod N ("lane" i mod N). The stream is designed to be decoded by a
// scalar loop, by SIMD lanes or by a GPU warp, all producing the same result,
// so the order of everything in it is part of the format (docs/design.md
// works through an example by hand):
//
//   words[0 .. N*K)      the N initial decoder states, lane 0 first, each as
//                        K = StateBits / WordBits words, least significant
//                        word first (i.e. little-endian State values when
//                        K words form one State).
//   words[N*K .. end)    renormalisation words, in decoding order: symbols
//                        are decoded in index order 0, 1, ..., n-1; after
//                        decoding symbol i, lane i mod N shifts in words while
//                        its state is below L. A lane-parallel decoder that
//                        decodes a round of N symbols at once therefore reads
//                        the round's words in lane order, each lane taking a
//                        contiguous run (one word at most when ScaleBits <=
//                        WordBits: then a prefix count of the lanes that need
//                        a word gives each lane its word).
//   end                  the stream ends exactly after the last word read;
//                        every state then equals L.
//
// n need not be a multiple of N: the last round simply has fewer lanes. Lanes
// that code no symbol (n < N) flush the initial state L.
//
// Which path is which:
//   interleaved_encode            host/device, validates symbols and capacity.
//   interleaved_decode            FAST PATH: assumes a stream produced by the
//                                 encoder for exactly n symbols and the same
//                                 table. No checks; reads only
//                                 words[0, num_words) of a valid stream.
//   interleaved_decode_checked    for untrusted bytes: never reads outside
//                                 words[0, num_words), never calls the sink
//                                 with an index >= n, and returns a status
//                                 (truncated, corrupt_stream, trailing_data).
//                                 The table itself must be valid: build it
//                                 with ecq/symbol_table.hpp, which validates.
//
// Sinks receive (std::size_t index, std::uint32_t symbol); index runs from 0
// to n-1 in order, lane = index % N.
//
// Both decoders run every round that has a whole round of words left before
// the end of the stream (N * max_words_per_symbol) with a branch-free
// refill, and only the last rounds with a bounds-checked (or, on the fast
// path, trusting) one: a refill happens for about half the symbols of
// well-compressed data, so a branch on it is mispredicted constantly (GCC 12
// compiles `x < L ? (x << W) | w : x` to a branch, 1.2-2.5x slower).
#ifndef ECQ_INTERLEAVED_RANS_HPP
#define ECQ_INTERLEAVED_RANS_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "config.hpp"
#include "rans_state.hpp"
#include "status.hpp"
#include "symbol_table.hpp"

ECQ_NAMESPACE_BEGIN

/// Compile-time facts about an N-way interleaved stream.
template <class Params, int Lanes>
struct interleaved_layout {
  static_assert(Lanes >= 1 && Lanes <= 256, "Lanes (the interleave width N) must be in [1, 256]");
  using params = Params;
  using state_type = typename Params::state_type;
  using word_type = typename Params::word_type;
  static constexpr int lanes = Lanes;
  /// Words holding the N initial states at the start of the stream.
  static constexpr std::size_t state_words = std::size_t(Lanes) * Params::words_per_state;

  /// @return an upper bound on the words interleaved_encode writes for n symbols.
  ECQ_HOST_DEVICE static constexpr std::size_t max_encoded_words(std::size_t n) {
    return state_words + n * std::size_t(Params::max_words_per_symbol);
  }
};

/// Encodes `symbols[0..n)` with the encode table `table[0..alphabet_size)`.
/// The stream is built backwards from the end of `out[0..capacity)` and then
/// moved to the front; on success `*written` holds its length in words.
/// @return status::ok; status::invalid_argument if a symbol is >= alphabet_size
///         or has frequency 0; status::output_too_small if capacity <
///         max_encoded_words(n). Both are checked before anything is written.
template <class Params, int Lanes, class Symbol>
ECQ_HOST_DEVICE status interleaved_encode(const Symbol* symbols, std::size_t n, const encode_symbol<Params>* table,
                                          std::uint32_t alphabet_size, typename Params::word_type* out,
                                          std::size_t capacity, std::size_t* written) {
  using layout = interleaved_layout<Params, Lanes>;
  using state_type = typename Params::state_type;
  using word_type = typename Params::word_type;
  *written = 0;
  if (capacity < layout::max_encoded_words(n)) return status::output_too_small;

  for (std::size_t i = 0; i < n; ++i) {
    const std::uint32_t s = std::uint32_t(symbols[i]);
    if (s >= alphabet_size || table[s].freq == 0) return status::invalid_argument;
  }

  state_type x[Lanes];
  for (int j = 0; j < Lanes; ++j) x[j] = rans_init<Params>();
  word_type* p = out + capacity;
  auto put = [&](state_type& state, std::size_t i) { state = rans_put<Params>(state, table[symbols[i]], &p); };

  // Backwards: first the partial last round, then whole rounds with
  // compile-time lane numbers, so the states stay in registers.
  const std::size_t full_rounds_end = n - n % std::size_t(Lanes);
  for (int j = int(n - full_rounds_end) - 1; j >= 0; --j) put(x[j], full_rounds_end + std::size_t(j));
  for (std::size_t base = full_rounds_end; base > 0;) {
    base -= Lanes;
    ECQ_PRAGMA_UNROLL
    for (int j = Lanes - 1; j >= 0; --j) put(x[j], base + std::size_t(j));
  }
  // p > out + state_words still holds here, so the speculative stores of
  // rans_put stayed inside the buffer; the flushed states fill the gap.
  auto emit = [&p](word_type w) { *--p = w; };
  for (int j = Lanes - 1; j >= 0; --j) rans_flush<Params>(x[j], emit);

  const std::size_t size = std::size_t(out + capacity - p);
  for (std::size_t k = 0; k < size; ++k) out[k] = p[k];  // forward copy: regions may overlap, out <= p
  *written = size;
  return status::ok;
}

/// Host convenience: encodes into a fresh vector (empty on error, with the
/// status in *st when st is not null).
template <class Params, int Lanes, class Symbol>
std::vector<typename Params::word_type> interleaved_encode(const Symbol* symbols, std::size_t n,
                                                           const encode_table<Params>& table,
                                                           status* st = nullptr) {
  std::vector<typename Params::word_type> out(interleaved_layout<Params, Lanes>::max_encoded_words(n));
  std::size_t written = 0;
  const status s =
      interleaved_encode<Params, Lanes>(symbols, n, table.data(), table.alphabet_size(), out.data(), out.size(), &written);
  out.resize(written);
  if (st != nullptr) *st = s;
  return out;
}

namespace detail {

/// Word source of the fast path: trusts the stream.
template <class Word>
struct unchecked_word_reader {
  const Word* p;
  ECQ_HOST_DEVICE ECQ_FORCEINLINE Word operator()() { return *p++; }
};

/// Word source of the checked path: past the end it yields 0 and sets a sticky
/// flag. A state refilled with zeros stays in [L, U), so decoding can run on
/// to the end of the round and the flag be tested once per round.
template <class Word>
struct checked_word_reader {
  const Word* p;
  const Word* end;
  bool overrun;
  ECQ_HOST_DEVICE ECQ_FORCEINLINE Word operator()() {
    if (p == end) {
      overrun = true;
      return 0;
    }
    return *p++;
  }
};

ECQ_EXEC_CHECK_DISABLE
template <class Params, class TableView, class Reader, class Sink>
ECQ_HOST_DEVICE ECQ_FORCEINLINE void decode_one(typename Params::state_type& x, std::size_t index,
                                                const TableView& table, Reader& read, Sink& sink) {
  using entry_layout = typename TableView::layout;
  static_assert(TableView::scale_bits == Params::scale_bits, "the decode table must use the stream's ScaleBits");
  const auto e = table[rans_get<Params>(x)];
  sink(index, entry_layout::symbol(e));
  x = rans_advance<Params>(x, entry_layout::freq(e), entry_layout::offset(e));
  x = rans_renormalize<Params>(x, read);
}

/// Decodes whole rounds from symbol 0 on while the stream holds a round's
/// worth of words from p to end, with a
/// branch-free refill: the word at p is always loaded and p moves by 0 or 1
/// (see the file comment). The inner loop over lanes has a compile-time trip
/// count, so the N states live in registers and their dependency chains
/// overlap (instruction-level parallelism).
/// @return the index of the first symbol not decoded (a round boundary).
ECQ_EXEC_CHECK_DISABLE
template <class Params, int Lanes, class TableView, class Sink>
ECQ_HOST_DEVICE ECQ_FORCEINLINE std::size_t decode_bulk_rounds(typename Params::state_type (&x)[Lanes], std::size_t n,
                                                               const TableView& table,
                                                               const typename Params::word_type*& p,
                                                               const typename Params::word_type* end, Sink& sink) {
  using state_type = typename Params::state_type;
  using entry_layout = typename TableView::layout;
  static_assert(TableView::scale_bits == Params::scale_bits, "the decode table must use the stream's ScaleBits");
  constexpr std::size_t round_words = std::size_t(Lanes) * Params::max_words_per_symbol;
  std::size_t i = 0;
  for (; n - i >= std::size_t(Lanes) && std::size_t(end - p) >= round_words; i += Lanes) {
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
  return i;
}

/// The decoding loop of the last rounds, with a refill through `read`,
/// from symbol `first` (a multiple of Lanes) to n.
/// Stops early, at a round boundary, once *stop_flag is set (checked path).
ECQ_EXEC_CHECK_DISABLE
template <class Params, int Lanes, class TableView, class Reader, class Sink>
ECQ_HOST_DEVICE ECQ_FORCEINLINE void decode_rounds(typename Params::state_type (&x)[Lanes], std::size_t first,
                                                   std::size_t n, const TableView& table, Reader& read, Sink& sink,
                                                   const bool* stop_flag) {
  const std::size_t full_rounds_end = n - n % std::size_t(Lanes);
  std::size_t i = first;
  for (; i < full_rounds_end; i += Lanes) {
    ECQ_PRAGMA_UNROLL
    for (int j = 0; j < Lanes; ++j) decode_one<Params>(x[j], i + std::size_t(j), table, read, sink);
    if (stop_flag != nullptr && *stop_flag) return;
  }
  for (int j = 0; i + std::size_t(j) < n; ++j) decode_one<Params>(x[j], i + std::size_t(j), table, read, sink);
}

template <class Symbol>
struct store_sink {
  Symbol* out;
  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::size_t i, std::uint32_t s) const { out[i] = Symbol(s); }
};

/// A sink argument may be a callable (used by reference, so stateful sinks
/// such as dot-product accumulators keep their state) or a pointer to the
/// output symbols.
ECQ_EXEC_CHECK_DISABLE
template <class Sink>
ECQ_HOST_DEVICE ECQ_FORCEINLINE decltype(auto) as_sink(Sink&& sink) {
  if constexpr (std::is_pointer<std::decay_t<Sink>>::value) {
    return store_sink<std::remove_pointer_t<std::decay_t<Sink>>>{sink};
  } else {
    return static_cast<Sink&&>(sink);
  }
}

}  // namespace detail

/// FAST PATH. Decodes n symbols from a stream of `num_words` words written
/// by interleaved_encode with the same Params, Lanes and frequency table;
/// calls sink(i, symbol) for i = 0 .. n-1 in order, or stores symbol i to
/// sink[i] if sink is a pointer. Reads exactly the words the encoder wrote.
ECQ_EXEC_CHECK_DISABLE
template <class Params, int Lanes, class TableView, class Sink>
ECQ_HOST_DEVICE void interleaved_decode(const typename Params::word_type* words, std::size_t num_words, std::size_t n,
                                        TableView table, Sink&& sink) {
  auto&& to = detail::as_sink(static_cast<Sink&&>(sink));
  typename Params::state_type x[Lanes];
  for (int j = 0; j < Lanes; ++j) x[j] = rans_load_state<Params>(words + std::size_t(j) * Params::words_per_state);
  const typename Params::word_type* p = words + interleaved_layout<Params, Lanes>::state_words;
  const std::size_t i = detail::decode_bulk_rounds<Params, Lanes>(x, n, table, p, words + num_words, to);
  detail::unchecked_word_reader<typename Params::word_type> read{p};
  detail::decode_rounds<Params, Lanes>(x, i, n, table, read, to, nullptr);
}

/// CHECKED PATH for untrusted streams of `num_words` words; the sink is as for
/// interleaved_decode. On any error the sink may already have received
/// (wrong) symbols for some indices < n.
/// @return status::ok if the stream decodes n symbols, is consumed exactly and
///         leaves every state at L; status::truncated if it ends early
///         (including num_words < N*K); status::corrupt_stream if an initial
///         state is out of range or a final state differs from L;
///         status::trailing_data if words remain after the last symbol.
ECQ_EXEC_CHECK_DISABLE
template <class Params, int Lanes, class TableView, class Sink>
ECQ_HOST_DEVICE status interleaved_decode_checked(const typename Params::word_type* words, std::size_t num_words,
                                                  std::size_t n, TableView table, Sink&& sink) {
  auto&& to = detail::as_sink(static_cast<Sink&&>(sink));
  using layout = interleaved_layout<Params, Lanes>;
  if (num_words < layout::state_words) return status::truncated;
  typename Params::state_type x[Lanes];
  for (int j = 0; j < Lanes; ++j) {
    x[j] = rans_load_state<Params>(words + std::size_t(j) * Params::words_per_state);
    if (!rans_state_in_range<Params>(x[j])) return status::corrupt_stream;
  }
  const typename Params::word_type* p = words + layout::state_words;
  const std::size_t i = detail::decode_bulk_rounds<Params, Lanes>(x, n, table, p, words + num_words, to);
  detail::checked_word_reader<typename Params::word_type> read{p, words + num_words, false};
  detail::decode_rounds<Params, Lanes>(x, i, n, table, read, to, &read.overrun);
  if (read.overrun) return status::truncated;
  for (int j = 0; j < Lanes; ++j)
    if (x[j] != rans_init<Params>()) return status::corrupt_stream;
  if (read.p != read.end) return status::trailing_data;
  return status::ok;
}

ECQ_NAMESPACE_END

#endif  // ECQ_INTERLEAVED_RANS_HPP
