// ecq/frequency_table.hpp — READ ME FIRST
//
// Frequency normalisation: turn symbol counts into integer frequencies f_s
// that sum to exactly M = 2^ScaleBits, with f_s >= 1 for every symbol that
// occurs and f_s = 0 for every symbol that does not.
//
// Objective. Coding symbol s with frequency f_s costs log2(M / f_s) bits, so
// the coded size of the data the counts came from is
//     C(f) = sum_s c_s * log2(M / f_s)   bits.
// normalize_frequencies returns the integer f that minimises C exactly.
//
// Algorithm (documented in docs/design.md):
//   1. Proportional rounding: f_s = max(1, round(c_s * M / n)).
//   2. Repair the sum greedily: while sum < M add 1 to the symbol with the
//      largest gain c_s * log2((f_s + 1) / f_s); while sum > M take 1 from the
//      symbol (f_s >= 2) with the smallest loss c_s * log2(f_s / (f_s - 1)).
//   3. Exchange: while the best gain exceeds the smallest loss of a different
//      symbol, move one unit from the latter to the former.
// C is a sum of convex functions of the individual f_s, so a table that no
// single-unit exchange improves is a global minimum; step 3 ends there.
// Steps 2 and 3 use binary heaps: O((A + k) log A) for k moves, typically a
// few hundred even for 4096-symbol alphabets.
//
// Reported numbers: expected_bits_per_symbol (C / n under the normalised
// table) next to entropy_bits_per_symbol (ecq/histogram.hpp); their ratio
// minus one is the normalisation loss.
#ifndef ECQ_FREQUENCY_TABLE_HPP
#define ECQ_FREQUENCY_TABLE_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <queue>
#include <utility>
#include <vector>

#include "config.hpp"
#include "histogram.hpp"
#include "status.hpp"

ECQ_NAMESPACE_BEGIN

/// The largest alphabet the library supports (12-bit symbols).
inline constexpr std::uint32_t max_alphabet_size = 4096;

namespace detail {

/// Change of sum_s c_s log2 f_s when f_s moves by one unit up (gain) or down (loss).
inline double unit_gain(std::uint64_t count, std::uint32_t f) {
  return double(count) * (std::log2(double(f) + 1.0) - std::log2(double(f)));
}
inline double unit_loss(std::uint64_t count, std::uint32_t f) {
  return double(count) * (std::log2(double(f)) - std::log2(double(f) - 1.0));
}

}  // namespace detail

/// Normalises `counts[0..alphabet_size)` to `freqs[0..alphabet_size)` summing
/// to 2^scale_bits, minimising the coded size (see the file comment). If every
/// count is zero (empty input), symbol 0 receives the whole range, so that an
/// empty stream still has a valid table.
/// @return status::ok; status::invalid_argument if alphabet_size is 0 or
///         above max_alphabet_size or scale_bits is outside [1, 16];
///         status::too_many_symbols if more than 2^scale_bits symbols occur.
inline status normalize_frequencies(const std::uint64_t* counts, std::uint32_t alphabet_size, int scale_bits,
                                    std::uint32_t* freqs) {
  if (alphabet_size == 0 || alphabet_size > max_alphabet_size || scale_bits < 1 || scale_bits > 16)
    return status::invalid_argument;
  const std::uint32_t total = std::uint32_t(1) << scale_bits;

  std::uint64_t n = 0;
  std::uint32_t present = 0;
  for (std::uint32_t s = 0; s < alphabet_size; ++s) {
    n += counts[s];
    present += counts[s] != 0;
  }
  for (std::uint32_t s = 0; s < alphabet_size; ++s) freqs[s] = 0;
  if (n == 0) {
    freqs[0] = total;
    return status::ok;
  }
  if (present > total) return status::too_many_symbols;

  // 1. Proportional rounding, every present symbol at least 1.
  std::int64_t sum = 0;
  for (std::uint32_t s = 0; s < alphabet_size; ++s) {
    if (counts[s] == 0) continue;
    const double share = double(counts[s]) * double(total) / double(n);
    const double rounded = std::floor(share + 0.5);
    freqs[s] = rounded < 1.0 ? 1u : std::uint32_t(rounded);
    sum += freqs[s];
  }

  // Max-heap on gain (candidates to grow) and min-heap on loss (candidates to
  // shrink). Entries go stale when f_s changes; they are recognised by
  // comparing the stored frequency with the current one and skipped.
  struct candidate {
    double value;
    std::uint32_t symbol;
    std::uint32_t freq_when_pushed;
  };
  struct by_gain {
    bool operator()(const candidate& a, const candidate& b) const { return a.value < b.value; }
  };
  struct by_loss {
    bool operator()(const candidate& a, const candidate& b) const { return a.value > b.value; }
  };
  std::priority_queue<candidate, std::vector<candidate>, by_gain> grow;
  std::priority_queue<candidate, std::vector<candidate>, by_loss> shrink;
  auto push_grow = [&](std::uint32_t s) { grow.push({detail::unit_gain(counts[s], freqs[s]), s, freqs[s]}); };
  auto push_shrink = [&](std::uint32_t s) {
    if (freqs[s] >= 2) shrink.push({detail::unit_loss(counts[s], freqs[s]), s, freqs[s]});
  };
  auto top_valid = [&](auto& heap) {
    while (!heap.empty() && freqs[heap.top().symbol] != heap.top().freq_when_pushed) heap.pop();
    return !heap.empty();
  };
  auto change = [&](std::uint32_t s, int delta) {
    freqs[s] = std::uint32_t(std::int64_t(freqs[s]) + delta);
    push_grow(s);
    push_shrink(s);
  };
  for (std::uint32_t s = 0; s < alphabet_size; ++s) {
    if (counts[s] == 0) continue;
    push_grow(s);
    push_shrink(s);
  }

  // 2. Repair the sum. Shrinking always has a candidate while sum > total,
  //    because sum > total >= present means some f_s >= 2.
  while (sum < std::int64_t(total) && top_valid(grow)) {
    const std::uint32_t s = grow.top().symbol;
    change(s, +1);
    ++sum;
  }
  while (sum > std::int64_t(total) && top_valid(shrink)) {
    const std::uint32_t s = shrink.top().symbol;
    change(s, -1);
    --sum;
  }

  // 3. Exchange units while that lowers the cost. If one symbol tops both
  //    heaps its gain is below its own loss (log2 is concave), and it is the
  //    largest gain, so no exchange helps: the table is optimal. Each move
  //    lowers the cost by a relative margin, which keeps rounding noise from
  //    moving a unit back and forth, so the loop ends.
  const double margin = 1e-12;
  while (top_valid(grow) && top_valid(shrink)) {
    const candidate up = grow.top();
    const candidate down = shrink.top();
    if (up.symbol == down.symbol || !(down.value * (1 + margin) < up.value)) break;
    change(down.symbol, -1);
    change(up.symbol, +1);
  }
  return status::ok;
}

/// Convenience: normalised frequencies of `counts` as a vector (empty on error).
inline std::vector<std::uint32_t> normalized_frequencies(const std::vector<std::uint64_t>& counts, int scale_bits) {
  std::vector<std::uint32_t> freqs(counts.size());
  if (normalize_frequencies(counts.data(), std::uint32_t(counts.size()), scale_bits, freqs.data()) != status::ok)
    freqs.clear();
  return freqs;
}

/// @return the ideal coded size, in bits per symbol, of data with these
///         counts under `freqs` (sum 2^scale_bits); +infinity if a present
///         symbol has frequency 0; 0 for empty counts.
inline double expected_bits_per_symbol(const std::uint64_t* counts, const std::uint32_t* freqs,
                                       std::uint32_t alphabet_size, int scale_bits) {
  std::uint64_t n = 0;
  double bits = 0.0;
  for (std::uint32_t s = 0; s < alphabet_size; ++s) {
    if (counts[s] == 0) continue;
    if (freqs[s] == 0) return INFINITY;
    n += counts[s];
    bits += double(counts[s]) * (double(scale_bits) - std::log2(double(freqs[s])));
  }
  return n == 0 ? 0.0 : bits / double(n);
}

/// @return expected / entropy - 1: the relative size cost of quantising the
///         probabilities to ScaleBits (0 when the entropy is 0).
inline double normalization_loss(const std::uint64_t* counts, const std::uint32_t* freqs, std::uint32_t alphabet_size,
                                  int scale_bits) {
  const double h = entropy_bits_per_symbol(counts, alphabet_size);
  const double e = expected_bits_per_symbol(counts, freqs, alphabet_size, scale_bits);
  return h == 0.0 ? 0.0 : e / h - 1.0;
}

ECQ_NAMESPACE_END

#endif  // ECQ_FREQUENCY_TABLE_HPP
