// ecq/frequency_table_io.hpp — READ ME FIRST
//
// Compact, validated serialisation of one normalised frequency table (the
// "table" region of a container, docs/format.md section 4). Host only.
//
//   byte 0            ScaleBits S, in [1, 16]
//   varint            alphabet size A, in [1, 4096]
//   tokens            until all A symbols are described, in symbol order:
//     varint t >= 1   the next symbol has frequency t (t <= 2^S)
//     varint 0, varint r
//                     the next r + 1 symbols have frequency 0
//
// Varints are canonical unsigned LEB128 (ecq/detail/byte_io.hpp). A
// frequency costs 1 byte below 128, 2 below 16384, else 3; a run of absent
// symbols 2 or 3 bytes. The seed tables of fuzz/corpus/frequency_table/ give
// the scale: 16 symbols at S = 12 take 22 bytes, 256 symbols (about 100
// present) at S = 15 take 241 bytes.
//
// The encoding is canonical: one table has exactly one byte string. Readers
// reject non-canonical input (overlong varints, a zero run directly followed
// by another zero run) so that read(write(t)) == t and write(read(b)) == b
// for every accepted b, which the fuzz target checks.
//
// Which path is which: read_frequency_table is the checked parser for
// untrusted bytes (never reads outside data[0, size), never writes outside
// freqs[0, capacity)); write_frequency_table validates its input table.
#ifndef ECQ_FREQUENCY_TABLE_IO_HPP
#define ECQ_FREQUENCY_TABLE_IO_HPP

#include <cstddef>
#include <cstdint>
#include <vector>

#include "config.hpp"
#include "detail/byte_io.hpp"
#include "frequency_table.hpp"
#include "status.hpp"
#include "symbol_table.hpp"

ECQ_NAMESPACE_BEGIN

/// What read_frequency_table found.
struct frequency_table_info {
  std::uint32_t alphabet_size = 0;
  int scale_bits = 0;
  std::size_t size_bytes = 0;  // bytes of data the table occupies
};

/// Appends the serialisation of `freqs[0..alphabet_size)` (a table summing to
/// 2^scale_bits) to `*out`.
/// @return status::ok; the status of validate_frequencies (invalid_argument,
///         corrupt_table) otherwise, with *out unchanged.
inline status write_frequency_table(const std::uint32_t* freqs, std::uint32_t alphabet_size, int scale_bits,
                                    std::vector<std::uint8_t>* out) {
  const status st = validate_frequencies(freqs, alphabet_size, scale_bits, max_alphabet_size);
  if (st != status::ok) return st;
  detail::byte_writer w(out);
  w.u8(std::uint8_t(scale_bits));
  w.varint(alphabet_size);
  for (std::uint32_t s = 0; s < alphabet_size;) {
    if (freqs[s] != 0) {
      w.varint(freqs[s]);
      ++s;
      continue;
    }
    std::uint32_t run = 1;
    while (s + run < alphabet_size && freqs[s + run] == 0) ++run;
    w.varint(0);
    w.varint(run - 1);
    s += run;
  }
  return status::ok;
}

/// Host convenience: the serialisation as a fresh vector (empty on error).
inline std::vector<std::uint8_t> serialized_frequency_table(const std::vector<std::uint32_t>& freqs, int scale_bits) {
  std::vector<std::uint8_t> out;
  write_frequency_table(freqs.data(), std::uint32_t(freqs.size()), scale_bits, &out);
  return out;
}

/// CHECKED PARSER. Reads one table from the start of `data[0..size)` into
/// `freqs[0..alphabet_size)`; bytes after the table are not read.
/// @return status::ok with *info filled in; status::truncated if the bytes end
///         inside the table; status::corrupt_table if ScaleBits or the
///         alphabet size is out of range, a frequency exceeds 2^S, a zero run
///         passes the alphabet end, the encoding is not canonical, or the sum
///         is not 2^S; status::output_too_small if alphabet_size > capacity.
inline status read_frequency_table(const std::uint8_t* data, std::size_t size, std::uint32_t* freqs,
                                   std::uint32_t capacity, frequency_table_info* info) {
  *info = frequency_table_info{};
  detail::byte_reader r(data, size);
  const int scale_bits = r.u8();
  if (r.overrun()) return status::truncated;
  if (scale_bits < 1 || scale_bits > 16) return status::corrupt_table;
  const std::uint64_t alphabet = r.varint(13);  // 4096 needs 13 bits
  if (r.overrun()) return status::truncated;
  if (r.malformed() || alphabet == 0 || alphabet > max_alphabet_size) return status::corrupt_table;
  if (alphabet > capacity) return status::output_too_small;

  const std::uint64_t total = std::uint64_t(1) << scale_bits;
  std::uint64_t sum = 0;
  bool previous_was_zero_run = false;
  for (std::uint32_t s = 0; s < alphabet;) {
    const std::uint64_t t = r.varint(17);  // frequencies go up to 2^16
    if (r.overrun()) return status::truncated;
    if (r.malformed()) return status::corrupt_table;
    if (t != 0) {
      if (t > total) return status::corrupt_table;
      freqs[s++] = std::uint32_t(t);
      sum += t;
      previous_was_zero_run = false;
      continue;
    }
    const std::uint64_t run = r.varint(13) + 1;
    if (r.overrun()) return status::truncated;
    if (r.malformed() || previous_was_zero_run || run > alphabet - s) return status::corrupt_table;
    for (std::uint64_t k = 0; k < run; ++k) freqs[s++] = 0;
    previous_was_zero_run = true;
  }
  if (sum != total) return status::corrupt_table;
  info->alphabet_size = std::uint32_t(alphabet);
  info->scale_bits = scale_bits;
  info->size_bytes = r.position();
  return status::ok;
}

ECQ_NAMESPACE_END

#endif  // ECQ_FREQUENCY_TABLE_IO_HPP
