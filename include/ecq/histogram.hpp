// ecq/histogram.hpp — READ ME FIRST
//
// Counting symbols and the empirical (order-0) entropy of the counts: the
// first stage of the pipeline count -> normalise (ecq/frequency_table.hpp) ->
// build tables (ecq/symbol_table.hpp) -> code (ecq/interleaved_rans.hpp).
// Host-side: tables are built on the host and handed to kernels as views.
#ifndef ECQ_HISTOGRAM_HPP
#define ECQ_HISTOGRAM_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "config.hpp"
#include "status.hpp"

ECQ_NAMESPACE_BEGIN

/// Adds the occurrences of `symbols[0..n)` to `counts[0..alphabet_size)`.
/// @return status::ok, or status::invalid_argument if a symbol is
///         >= alphabet_size (counts are then partially updated).
template <class Symbol>
status count_symbols(const Symbol* symbols, std::size_t n, std::uint32_t alphabet_size, std::uint64_t* counts) {
  for (std::size_t i = 0; i < n; ++i) {
    const auto s = symbols[i];
    if (std::uint64_t(s) >= alphabet_size) return status::invalid_argument;
    ++counts[s];
  }
  return status::ok;
}

/// Convenience: a fresh histogram of `symbols[0..n)`; symbols >= alphabet_size
/// make it return an empty vector.
template <class Symbol>
std::vector<std::uint64_t> histogram(const Symbol* symbols, std::size_t n, std::uint32_t alphabet_size) {
  std::vector<std::uint64_t> counts(alphabet_size, 0);
  if (count_symbols(symbols, n, alphabet_size, counts.data()) != status::ok) counts.clear();
  return counts;
}

/// @return the empirical entropy H = -sum p_s log2 p_s of the counts, in bits
///         per symbol (0 for an empty or single-symbol histogram).
inline double entropy_bits_per_symbol(const std::uint64_t* counts, std::uint32_t alphabet_size) {
  std::uint64_t n = 0;
  for (std::uint32_t s = 0; s < alphabet_size; ++s) n += counts[s];
  if (n == 0) return 0.0;
  double bits = 0.0;
  for (std::uint32_t s = 0; s < alphabet_size; ++s)
    if (counts[s] != 0) bits += double(counts[s]) * std::log2(double(n) / double(counts[s]));
  return bits / double(n);
}

ECQ_NAMESPACE_END

#endif  // ECQ_HISTOGRAM_HPP
