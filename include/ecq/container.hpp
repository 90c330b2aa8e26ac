// ecq/container.hpp — READ ME FIRST
//
// The encoded-tensor container (normative spec: docs/format.md, version 1):
// one tensor's symbols as independently decodable blocks, its frequency
// table, scheme parameters, side-data sections and an XXH64 checksum, in one
// little-endian byte string. Host only; kernels receive the
// encoded_tensor_view of ecq/tensor_view.hpp.
//
//   offset               region
//   0                    fixed header, 80 bytes
//   80                   scheme parameters (opaque to the container)   } each region
//   .                    frequency table (ecq/frequency_table_io.hpp)   } starts at a
//   .                    section directory, 16 bytes per section        } multiple of 16;
//   .                    block index, 16 bytes per block               } gaps are zero
//   .                    section data, in directory order              }
//   payload_offset       block streams, in block order                 }
//   container_size - 8   XXH64 (seed 0) of bytes [0, container_size - 8)
//
// encoded_tensor is the owning host type:
//   encode         symbols + description + options -> container (validates
//                  its input and returns a status; never produces a
//                  container that open rejects).
//   open           CHECKED: validates every header field, region, offset,
//                  size, padding byte and the frequency table, and (by
//                  default) the checksum, before anything is decoded. Copies
//                  the bytes into 16-byte-aligned storage.
//   open_borrowed  the same checks on caller memory that stays alive and is
//                  16-byte aligned (e.g. a memory-mapped file); no copy.
//   decode_checked / decode_block_checked
//                  CHECKED decoding of the streams (untrusted bytes).
//   decode         FAST PATH: only for streams known to be valid (encoded by
//                  this library in this process, or accepted once by
//                  decode_checked). A hostile file can carry a correct
//                  checksum, so a checksum never makes streams trusted.
//   These decoders are the portable scalar reference (one thread, any
//   configuration); ecq/cpu/tensor_ops.hpp's decode_to_symbols gives the
//   same symbols and statuses through the run-time-dispatched SIMD kernels on
//   every core, and is what the tool and engines call.
//   overhead       the byte accounting `ecq inspect` prints: headers, table,
//                  index, flushed states, renormalisation words, padding.
// peek_container_size reads one header field, to walk a file of several
// containers.
//
// Supported coder configurations: see visit_coder (ecq/tensor_view.hpp);
// other valid headers open with status::unsupported_parameters.
#ifndef ECQ_CONTAINER_HPP
#define ECQ_CONTAINER_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "checksum.hpp"
#include "config.hpp"
#include "detail/byte_io.hpp"
#include "frequency_table.hpp"
#include "frequency_table_io.hpp"
#include "histogram.hpp"
#include "interleaved_rans.hpp"
#include "rans_state.hpp"
#include "status.hpp"
#include "symbol_table.hpp"
#include "tensor_view.hpp"

ECQ_NAMESPACE_BEGIN

/// "\x89ECQ\r\n\x1a\n": a non-ASCII first byte and the CR-LF / LF pair catch
/// files mangled by text-mode transfers (the PNG signature's trick).
inline constexpr std::uint8_t container_magic[8] = {0x89, 'E', 'C', 'Q', '\r', '\n', 0x1a, '\n'};
inline constexpr std::uint32_t container_version = 1;
inline constexpr std::size_t container_header_size = 80;
/// Every region and every block starts at a multiple of 16 bytes: 16-byte
/// vector loads (uint4 on a GPU, SSE/NEON on a CPU) need no realignment.
inline constexpr std::size_t container_alignment = 16;
inline constexpr std::size_t container_checksum_size = 8;
/// Shape limits; they keep every size computed from the header below 2^63.
inline constexpr std::uint64_t max_container_rows = std::uint64_t(1) << 48;
inline constexpr std::uint64_t max_container_symbols = std::uint64_t(1) << 56;  // padded rows * symbols_per_row
inline constexpr std::uint32_t max_tile_rows = 65536;
inline constexpr std::size_t max_scheme_params_size = 65535;  // a 16-bit header field

/// One side-data section to store: `size` bytes of `item_size`-byte items
/// (item_size 1, 2, 4, 8 or 16; size a multiple of it). `tag` is defined by
/// the scheme; tags are unique within a container.
struct section_input {
  std::uint32_t tag = 0;
  std::uint32_t item_size = 1;
  const void* data = nullptr;
  std::uint64_t size = 0;
};

/// What is being encoded, apart from the symbols.
struct tensor_description {
  std::uint64_t rows = 0;             // >= 1 (a 1-D tensor is one row)
  std::uint64_t cols = 0;             // weights per row, >= 1; stored for the scheme
  std::uint64_t symbols_per_row = 0;  // >= 1
  std::uint32_t alphabet_size = 0;    // 1 .. min(4096, 2^decode_symbol_bits)
  std::uint32_t scheme_id = 0;        // defined by the schemes; opaque here
  std::vector<std::uint8_t> scheme_params;  // at most max_scheme_params_size bytes
  std::vector<section_input> sections;      // at most max_sections
};

/// How to encode.
struct coding_options {
  int scale_bits = 12;           // 7 .. 15
  std::uint32_t lanes = 32;      // interleave width N: 1, 8, 16, 32 or 64
  std::uint32_t tile_rows = 0;   // rows per block, a multiple of lanes; 0 = lanes
  std::uint64_t chunk_symbols = 0;  // symbol columns per block; 0 = the whole row
  /// Optional normalised table (alphabet_size entries summing to
  /// 2^scale_bits, nonzero for every symbol that occurs). Null: the
  /// optimal table for the symbols is computed (ecq/frequency_table.hpp).
  const std::uint32_t* frequencies = nullptr;
};

struct open_options {
  bool verify_checksum = true;
};

/// Where the bytes of a container go. The parts add up to container_bytes.
struct container_overhead {
  std::uint64_t container_bytes = 0;
  std::uint64_t header_bytes = 0;         // fixed header + scheme parameters, with padding
  std::uint64_t table_bytes = 0;          // serialised frequency table, with padding
  std::uint64_t directory_bytes = 0;      // section directory
  std::uint64_t index_bytes = 0;          // block index
  std::uint64_t section_bytes = 0;        // side data, with padding
  std::uint64_t state_bytes = 0;          // flushed rANS states at the head of every block
  std::uint64_t word_bytes = 0;           // renormalisation words (the entropy-coded payload)
  std::uint64_t block_padding_bytes = 0;  // zero bytes that align blocks
  std::uint64_t checksum_bytes = 0;
  std::uint64_t blocks = 0;
  std::uint64_t coded_symbols = 0;        // including padding rows
  std::uint64_t padding_symbols = 0;      // symbols coded for rows past the tensor's end
  double padding_symbol_bytes = 0;        // their ideal cost, log2(2^S / f_pad) bits each

  /// Flushed states + block index + block alignment: the cost of cutting the
  /// tensor into independently decodable blocks.
  std::uint64_t flush_index_bytes() const { return state_bytes + index_bytes + block_padding_bytes; }
  /// flush_index_bytes relative to the renormalisation words.
  double flush_index_fraction() const { return word_bytes == 0 ? 0.0 : double(flush_index_bytes()) / double(word_bytes); }
};

namespace detail {

/// Storage unit that gives owned container bytes 16-byte alignment.
struct alignas(16) aligned_bytes16 {
  std::uint8_t bytes[16];
};

/// Offsets and sizes of a validated container.
struct container_layout {
  tensor_geometry geometry{};
  std::uint64_t container_size = 0;
  std::uint64_t scheme_params_offset = 0;
  std::uint64_t scheme_params_size = 0;
  std::uint64_t table_offset = 0;
  std::uint64_t table_size = 0;
  std::uint64_t directory_offset = 0;
  std::uint64_t index_offset = 0;
  std::uint64_t section_data_offset = 0;
  std::uint64_t payload_offset = 0;
  std::uint32_t num_sections = 0;
  section_view sections[max_sections]{};
};

inline bool all_zero(const std::uint8_t* p, std::uint64_t n) {
  for (std::uint64_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

inline bool supported_lanes(std::uint64_t lanes) {
  return lanes == 1 || lanes == 8 || lanes == 16 || lanes == 32 || lanes == 64;
}

/// Shape rules of docs/format.md section 2; @return status::ok or bad_shape.
inline status check_shape(const tensor_geometry& g) {
  if (g.rows == 0 || g.rows > max_container_rows || g.cols == 0 || g.cols > max_container_rows ||
      g.symbols_per_row == 0 || g.symbols_per_row > max_container_rows || g.chunk_symbols == 0 ||
      g.chunk_symbols > g.symbols_per_row || g.lanes == 0 || g.tile_rows < g.lanes || g.tile_rows > max_tile_rows ||
      g.tile_rows % g.lanes != 0)
    return status::bad_shape;
  const std::uint64_t padded_rows = (g.rows + g.lanes - 1) / g.lanes * g.lanes;
  std::uint64_t total = 0;
  if (!checked_mul(padded_rows, g.symbols_per_row, &total) || total > max_container_symbols) return status::bad_shape;
  return status::ok;
}

/// Coder rules: @return status::ok or unsupported_parameters.
inline status check_coder(const tensor_geometry& g) {
  if (g.state_bits != 32 || g.word_bits != 16 || g.scale_bits < 7 || g.scale_bits > 15 || !supported_lanes(g.lanes))
    return status::unsupported_parameters;
  return status::ok;
}

/// Alphabet rules: @return status::ok, corrupt_table or unsupported_parameters.
inline status check_alphabet(const tensor_geometry& g) {
  if (g.alphabet_size == 0 || g.alphabet_size > max_alphabet_size || g.pad_symbol >= g.alphabet_size)
    return status::corrupt_table;
  if (g.alphabet_size > (std::uint32_t(1) << decode_symbol_bits(int(g.scale_bits))))
    return status::unsupported_parameters;
  return status::ok;
}

/// Bytes of the flushed states at the head of every block.
inline std::uint64_t state_bytes_per_block(const tensor_geometry& g) {
  return std::uint64_t(g.lanes) * (g.state_bits / 8);
}

/// CHECKED PARSER of a whole container (docs/format.md section 7 lists the
/// rules and the status each violation returns). Fills *out and
/// freqs[0..alphabet_size) (freqs has room for max_alphabet_size entries).
inline status parse_container(const std::uint8_t* data, std::size_t size, bool verify_checksum,
                              container_layout* out, std::uint32_t* freqs) {
  *out = container_layout{};
  if (size < sizeof(container_magic)) return status::truncated;
  if (std::memcmp(data, container_magic, sizeof(container_magic)) != 0) return status::bad_magic;
  if (size < container_header_size) return status::truncated;

  byte_reader r(data + sizeof(container_magic), container_header_size - sizeof(container_magic));
  const std::uint32_t version = r.u32();
  if (version != container_version) return status::unsupported_version;
  tensor_geometry g{};
  g.scheme_id = r.u32();
  const std::uint64_t container_size = r.u64();
  g.rows = r.u64();
  g.cols = r.u64();
  g.symbols_per_row = r.u64();
  g.chunk_symbols = r.u64();
  g.tile_rows = r.u32();
  g.alphabet_size = r.u32();
  g.pad_symbol = r.u32();
  g.lanes = r.u16();
  g.state_bits = r.u8();
  g.word_bits = r.u8();
  g.scale_bits = r.u8();
  const std::uint32_t num_sections = r.u8();
  const std::uint64_t scheme_params_size = r.u16();
  const std::uint64_t table_size = r.u32();

  // Size first, so that a truncated file reads as truncated, then the
  // checksum, so that any corruption of a complete file reads as such.
  if (container_size > size) return status::truncated;
  if (container_size < size) return status::trailing_data;
  if (container_size < container_header_size + container_checksum_size ||
      container_size % container_alignment != container_checksum_size)
    return status::bad_offset;
  const std::uint64_t checksum_offset = container_size - container_checksum_size;
  if (verify_checksum) {
    byte_reader cr(data + checksum_offset, container_checksum_size);
    if (cr.u64() != xxh64(data, std::size_t(checksum_offset))) return status::checksum_mismatch;
  }

  status st = check_coder(g);
  if (st != status::ok) return st;
  if ((st = check_shape(g)) != status::ok) return st;
  if ((st = check_alphabet(g)) != status::ok) return st;
  if (num_sections > std::uint32_t(max_sections)) return status::bad_offset;

  // Regions. Every size below is bounded by container_size (< 2^64 / 2) before
  // it is added, so the sums cannot overflow.
  const std::uint64_t params_offset = container_header_size;
  const std::uint64_t table_offset = align_up(params_offset + scheme_params_size, container_alignment);
  const std::uint64_t directory_offset = align_up(table_offset + table_size, container_alignment);
  if (directory_offset > checksum_offset) return status::bad_offset;
  const std::uint64_t index_offset = directory_offset + std::uint64_t(num_sections) * 16;
  const std::uint64_t num_blocks = g.num_blocks();
  if (index_offset > checksum_offset || num_blocks > (checksum_offset - index_offset) / 16) return status::bad_offset;
  const std::uint64_t section_data_offset = index_offset + num_blocks * 16;

  // Frequency table: exactly table_size bytes, consistent with the header.
  frequency_table_info info;
  st = read_frequency_table(data + table_offset, std::size_t(table_size), freqs, max_alphabet_size, &info);
  if (st != status::ok) return status::corrupt_table;
  if (info.size_bytes != table_size || info.alphabet_size != g.alphabet_size ||
      info.scale_bits != int(g.scale_bits) || freqs[g.pad_symbol] == 0)
    return status::corrupt_table;
  if (!all_zero(data + params_offset + scheme_params_size, table_offset - params_offset - scheme_params_size) ||
      !all_zero(data + table_offset + table_size, directory_offset - table_offset - table_size))
    return status::bad_offset;

  // Section directory; data laid out in directory order.
  byte_reader dr(data + directory_offset, std::size_t(num_sections) * 16);
  std::uint64_t cursor = section_data_offset;
  for (std::uint32_t i = 0; i < num_sections; ++i) {
    section_view& s = out->sections[i];
    s.tag = dr.u32();
    s.item_size = dr.u32();
    s.size = dr.u64();
    const std::uint32_t k = s.item_size;
    if (k == 0 || k > 16 || (k & (k - 1)) != 0 || s.size % k != 0) return status::bad_offset;
    for (std::uint32_t j = 0; j < i; ++j)
      if (out->sections[j].tag == s.tag) return status::bad_offset;
    if (s.size > checksum_offset - cursor) return status::bad_offset;
    s.offset = cursor;
    const std::uint64_t end = align_up(cursor + s.size, container_alignment);
    if (end > checksum_offset || !all_zero(data + cursor + s.size, end - cursor - s.size)) return status::bad_offset;
    cursor = end;
  }
  const std::uint64_t payload_offset = cursor;

  // Block index: canonical offsets, whole words, sizes between the flushed
  // states alone and the encoder's maximum for the block's symbol count.
  byte_reader ir(data + index_offset, std::size_t(num_blocks) * 16);
  const std::uint64_t payload_capacity = checksum_offset - payload_offset;
  const std::uint64_t word_size = g.word_bits / 8;
  const std::uint64_t min_block = state_bytes_per_block(g);
  const std::uint64_t num_chunks = g.num_chunks();
  std::uint64_t expected_offset = 0;
  for (std::uint64_t b = 0; b < num_blocks; ++b) {
    const std::uint64_t offset = ir.u64();
    const std::uint64_t block_size = ir.u64();
    // max_words_per_symbol is 1 for every supported coder (ScaleBits <= WordBits).
    const std::uint64_t max_block = min_block + g.symbols_in_block(b / num_chunks, b % num_chunks) * word_size;
    if (offset != expected_offset || block_size % word_size != 0 || block_size < min_block || block_size > max_block ||
        block_size > payload_capacity - offset)
      return status::bad_offset;
    const std::uint64_t end = align_up(offset + block_size, container_alignment);
    if (end > payload_capacity || !all_zero(data + payload_offset + offset + block_size, end - offset - block_size))
      return status::bad_offset;
    expected_offset = end;
  }
  if (payload_offset + expected_offset != checksum_offset) return status::bad_offset;

  out->geometry = g;
  out->container_size = container_size;
  out->scheme_params_offset = params_offset;
  out->scheme_params_size = scheme_params_size;
  out->table_offset = table_offset;
  out->table_size = table_size;
  out->directory_offset = directory_offset;
  out->index_offset = index_offset;
  out->section_data_offset = section_data_offset;
  out->payload_offset = payload_offset;
  out->num_sections = num_sections;
  return status::ok;
}

}  // namespace detail

/// Reads the container_size field of the container that starts at data[0]:
/// a file holding several containers back to back (each padded to a multiple
/// of 16 bytes by the file's writer) is walked with it. Checks only the magic
/// and version; open validates the rest.
/// @return status::ok; status::truncated if size < container_header_size;
///         status::bad_magic; status::unsupported_version.
inline status peek_container_size(const std::uint8_t* data, std::size_t size, std::uint64_t* container_size) {
  *container_size = 0;
  if (size >= sizeof(container_magic) && std::memcmp(data, container_magic, sizeof(container_magic)) != 0)
    return status::bad_magic;
  if (size < container_header_size) return status::truncated;
  detail::byte_reader r(data + 8, 16);
  if (r.u32() != container_version) return status::unsupported_version;
  r.u32();  // scheme_id
  *container_size = r.u64();
  return status::ok;
}

/// The owning host type; see the file comment. Move-only.
class encoded_tensor {
 public:
  encoded_tensor() = default;
  encoded_tensor(const encoded_tensor&) = delete;
  encoded_tensor& operator=(const encoded_tensor&) = delete;
  encoded_tensor(encoded_tensor&&) noexcept = default;
  encoded_tensor& operator=(encoded_tensor&&) noexcept = default;

  /// Encodes `symbols` (row-major, rows x symbols_per_row, each <
  /// alphabet_size) into a container and opens it in *out.
  /// @return status::ok; status::bad_shape for shapes outside the format
  ///         rules (docs/format.md section 2); status::unsupported_parameters
  ///         for coder options visit_coder does not support, or an alphabet
  ///         too large for scale_bits; status::invalid_argument for a symbol
  ///         >= alphabet_size or of frequency 0 in options.frequencies, more
  ///         than max_sections sections, a bad section (item size, size,
  ///         duplicate tag) or oversized scheme parameters;
  ///         status::corrupt_table if options.frequencies is not normalised;
  ///         status::too_many_symbols if more than 2^S symbols occur.
  template <class Symbol>
  static status encode(const Symbol* symbols, const tensor_description& d, const coding_options& o,
                       encoded_tensor* out);

  /// CHECKED. Validates `data[0..size)` (exactly one container) and keeps a
  /// 16-byte-aligned copy.
  /// @return status::ok, or the first rule violated (docs/format.md section 7).
  static status open(const std::uint8_t* data, std::size_t size, encoded_tensor* out, open_options o = {}) {
    *out = encoded_tensor{};
    std::vector<detail::aligned_bytes16> storage((size + 15) / 16);
    if (size != 0) std::memcpy(storage.data(), data, size);
    const status st = out->adopt(reinterpret_cast<const std::uint8_t*>(storage.data()), size, o);
    if (st == status::ok) out->storage_ = std::move(storage);  // the buffer (and bytes_) stays where it is
    else *out = encoded_tensor{};
    return st;
  }

  /// CHECKED, without copying: `data` must stay alive and unchanged while
  /// *out is used, and be 16-byte aligned.
  /// @return as open, or status::invalid_argument if data is misaligned.
  static status open_borrowed(const std::uint8_t* data, std::size_t size, encoded_tensor* out, open_options o = {}) {
    *out = encoded_tensor{};
    if (reinterpret_cast<std::uintptr_t>(data) % container_alignment != 0) return status::invalid_argument;
    const status st = out->adopt(data, size, o);
    if (st != status::ok) *out = encoded_tensor{};
    return st;
  }

  /// The container bytes (valid after a successful encode or open).
  const std::uint8_t* data() const { return bytes_; }
  std::size_t size() const { return size_; }
  const tensor_geometry& geometry() const { return layout_.geometry; }
  /// The normalised frequency table, alphabet_size entries.
  const std::vector<std::uint32_t>& frequencies() const { return freqs_; }
  const std::uint8_t* scheme_params() const { return bytes_ + layout_.scheme_params_offset; }
  std::size_t scheme_params_size() const { return std::size_t(layout_.scheme_params_size); }

  /// The host view; its decode_table points at this object's decode table.
  encoded_tensor_view view() const {
    encoded_tensor_view v{};
    v.geometry = layout_.geometry;
    v.base = bytes_;
    v.decode_table = decode_table_bytes_ == 0 ? nullptr
                     : entries32_.empty() ? static_cast<const void*>(entries64_.data())
                                          : static_cast<const void*>(entries32_.data());
    v.index_offset = layout_.index_offset;
    v.payload_offset = layout_.payload_offset;
    v.num_sections = layout_.num_sections;
    for (int i = 0; i < max_sections; ++i) v.sections[i] = layout_.sections[i];
    return v;
  }
  /// Bytes of the decode table (2^S entries of 4 or 8 bytes), for copying it.
  std::size_t decode_table_bytes() const { return decode_table_bytes_; }

  /// CHECKED decode of block (tile, chunk) into its rectangle of
  /// out[row * symbols_per_row + column] (a whole-tensor buffer of
  /// `capacity` entries). For other sinks use ecq::decode_block_checked on
  /// view().block(tile, chunk) inside visit_coder.
  /// @return status::ok; status::invalid_argument if tile or chunk is out of
  ///         range or nothing is open; status::output_too_small if capacity
  ///         < rows * symbols_per_row; else the status of
  ///         ecq::decode_block_checked (the rectangle is then partly written).
  template <class Symbol>
  status decode_block_checked(std::uint64_t tile, std::uint64_t chunk, Symbol* out, std::size_t capacity) const {
    const tensor_geometry& g = layout_.geometry;
    if (bytes_ == nullptr || tile >= g.num_tiles() || chunk >= g.num_chunks()) return status::invalid_argument;
    const std::uint64_t b = tile * g.num_chunks() + chunk;
    return decode_blocks_checked(b, b + 1, out, capacity);
  }

  /// CHECKED decode of the whole tensor into out[row * symbols_per_row + column].
  /// @return status::ok; status::output_too_small if capacity < rows *
  ///         symbols_per_row; status::invalid_argument if nothing is open;
  ///         else the first failing block's status (out is then partly written).
  template <class Symbol>
  status decode_checked(Symbol* out, std::size_t capacity) const {
    if (bytes_ == nullptr) return status::invalid_argument;
    return decode_blocks_checked(0, layout_.geometry.num_blocks(), out, capacity);
  }

  /// FAST PATH: decodes the whole tensor into out[row * symbols_per_row +
  /// column] (rows * symbols_per_row entries). Only for valid streams (see
  /// the file comment).
  template <class Symbol>
  void decode(Symbol* out) const {
    const tensor_geometry& g = layout_.geometry;
    const encoded_tensor_view v = view();
    visit_coder(g, v.decode_table, [&](auto params, auto lanes, auto table) {
      auto store = [out, &g](std::uint64_t row, std::uint64_t column, std::uint32_t s) {
        out[row * g.symbols_per_row + column] = Symbol(s);
      };
      for (std::uint64_t t = 0; t < g.num_tiles(); ++t)
        for (std::uint64_t k = 0; k < g.num_chunks(); ++k)
          ecq::decode_block<decltype(params), decltype(lanes)::value>(v.block(t, k), table, store);
      return status::ok;
    });
  }

  /// The byte accounting of this container.
  container_overhead overhead() const;

 private:
  status adopt(const std::uint8_t* data, std::size_t size, open_options o);

  // Blocks [first, last) into a whole-tensor buffer. One sink type for both
  // public checked decoders keeps the instantiations at one per configuration.
  template <class Symbol>
  status decode_blocks_checked(std::uint64_t first, std::uint64_t last, Symbol* out, std::size_t capacity) const {
    const tensor_geometry& g = layout_.geometry;
    if (capacity / g.symbols_per_row < g.rows) return status::output_too_small;
    const encoded_tensor_view v = view();
    const std::uint64_t num_chunks = g.num_chunks();
    return visit_coder(g, v.decode_table, [&](auto params, auto lanes, auto table) {
      auto store = [out, &g](std::uint64_t row, std::uint64_t column, std::uint32_t s) {
        out[row * g.symbols_per_row + column] = Symbol(s);
      };
      for (std::uint64_t b = first; b < last; ++b) {
        const status st = ecq::decode_block_checked<decltype(params), decltype(lanes)::value>(
            v.block(b / num_chunks, b % num_chunks), table, store);
        if (st != status::ok) return st;
      }
      return status::ok;
    });
  }
  std::vector<std::uint32_t>& select_entries(std::uint32_t) { return entries32_; }
  std::vector<std::uint64_t>& select_entries(std::uint64_t) { return entries64_; }

  std::vector<detail::aligned_bytes16> storage_;  // owned copy; empty when borrowed
  const std::uint8_t* bytes_ = nullptr;
  std::size_t size_ = 0;
  detail::container_layout layout_{};
  std::vector<std::uint32_t> freqs_;
  // 2^S packed decode entries, in whichever vector matches the entry size.
  std::vector<std::uint32_t> entries32_;
  std::vector<std::uint64_t> entries64_;
  std::size_t decode_table_bytes_ = 0;
};

inline status encoded_tensor::adopt(const std::uint8_t* data, std::size_t size, open_options o) {
  // Room for the largest table, left uninitialised: the parser writes the
  // alphabet_size entries it accepts, and only those are kept.
  std::unique_ptr<std::uint32_t[]> freqs(new std::uint32_t[max_alphabet_size]);
  const status st = detail::parse_container(data, size, o.verify_checksum, &layout_, freqs.get());
  if (st != status::ok) return st;
  freqs_.assign(freqs.get(), freqs.get() + layout_.geometry.alphabet_size);
  bytes_ = data;
  size_ = size;
  // The packed decode table for the (ScaleBits, SymbolBits) that visit_coder
  // hands to decoders.
  return visit_coder(layout_.geometry, nullptr, [&](auto, auto, auto table) {
    using layout = typename decltype(table)::layout;
    using entry_type = typename layout::entry_type;
    constexpr std::size_t slots = decltype(table)::size;
    decode_table_bytes_ = slots * sizeof(entry_type);
    std::vector<entry_type>& storage = select_entries(entry_type{});
    storage.assign(slots, 0);
    entry_type* entries = storage.data();
    std::uint32_t slot = 0;
    for (std::uint32_t s = 0; s < freqs_.size(); ++s)
      for (std::uint32_t k = 0; k < freqs_[s]; ++k) entries[slot++] = layout::pack(s, freqs_[s], k);
    return status::ok;
  });
}

inline container_overhead encoded_tensor::overhead() const {
  container_overhead r;
  if (bytes_ == nullptr) return r;
  const tensor_geometry& g = layout_.geometry;
  const encoded_tensor_view v = view();
  r.container_bytes = layout_.container_size;
  r.header_bytes = layout_.table_offset;
  r.table_bytes = layout_.directory_offset - layout_.table_offset;
  r.directory_bytes = layout_.index_offset - layout_.directory_offset;
  r.index_bytes = layout_.section_data_offset - layout_.index_offset;
  r.section_bytes = layout_.payload_offset - layout_.section_data_offset;
  r.checksum_bytes = container_checksum_size;
  r.blocks = g.num_blocks();
  const std::uint64_t state = detail::state_bytes_per_block(g);
  for (std::uint64_t t = 0; t < g.num_tiles(); ++t)
    for (std::uint64_t k = 0; k < g.num_chunks(); ++k) {
      const block_view b = v.block(t, k);
      r.state_bytes += state;
      r.word_bytes += b.size_bytes - state;
      r.block_padding_bytes += detail::align_up(b.size_bytes, container_alignment) - b.size_bytes;
      r.coded_symbols += b.num_symbols();
      r.padding_symbols += (std::uint64_t(b.row_groups) * b.lanes - b.valid_rows) * b.columns;
    }
  r.padding_symbol_bytes =
      double(r.padding_symbols) * (double(g.scale_bits) - std::log2(double(freqs_[g.pad_symbol]))) / 8.0;
  return r;
}

template <class Symbol>
status encoded_tensor::encode(const Symbol* symbols, const tensor_description& d, const coding_options& o,
                              encoded_tensor* out) {
  *out = encoded_tensor{};
  tensor_geometry g{};
  g.rows = d.rows;
  g.cols = d.cols;
  g.symbols_per_row = d.symbols_per_row;
  g.chunk_symbols = o.chunk_symbols == 0 ? d.symbols_per_row : o.chunk_symbols;
  g.lanes = o.lanes;
  g.tile_rows = o.tile_rows == 0 ? o.lanes : o.tile_rows;
  g.alphabet_size = d.alphabet_size;
  g.scheme_id = d.scheme_id;
  g.state_bits = 32;
  g.word_bits = 16;
  g.scale_bits = std::uint32_t(o.scale_bits);
  if (o.scale_bits < 7 || o.scale_bits > 15 || !detail::supported_lanes(o.lanes))
    return status::unsupported_parameters;
  status st = detail::check_shape(g);
  if (st != status::ok) return st;
  if (d.alphabet_size == 0 || d.alphabet_size > max_alphabet_size) return status::invalid_argument;
  if (d.alphabet_size > (std::uint32_t(1) << decode_symbol_bits(o.scale_bits)))
    return status::unsupported_parameters;
  if (d.scheme_params.size() > max_scheme_params_size || d.sections.size() > std::size_t(max_sections))
    return status::invalid_argument;
  for (std::size_t i = 0; i < d.sections.size(); ++i) {
    const std::uint32_t k = d.sections[i].item_size;
    if (k == 0 || k > 16 || (k & (k - 1)) != 0 || d.sections[i].size % k != 0 ||
        (d.sections[i].size != 0 && d.sections[i].data == nullptr))
      return status::invalid_argument;
    for (std::size_t j = 0; j < i; ++j)
      if (d.sections[j].tag == d.sections[i].tag) return status::invalid_argument;
  }

  // Frequencies: given, or optimal for the symbols plus the padding, which is
  // coded as the most frequent symbol (the cheapest one).
  const std::uint64_t n = g.rows * g.symbols_per_row;
  std::vector<std::uint64_t> counts(d.alphabet_size, 0);
  if (count_symbols(symbols, std::size_t(n), d.alphabet_size, counts.data()) != status::ok)
    return status::invalid_argument;
  std::vector<std::uint32_t> freqs(d.alphabet_size);
  std::uint32_t pad = 0;
  if (o.frequencies != nullptr) {
    st = validate_frequencies(o.frequencies, d.alphabet_size, o.scale_bits);
    if (st != status::ok) return st;
    freqs.assign(o.frequencies, o.frequencies + d.alphabet_size);
    for (std::uint32_t s = 1; s < d.alphabet_size; ++s)
      if (freqs[s] > freqs[pad]) pad = s;
  } else {
    for (std::uint32_t s = 1; s < d.alphabet_size; ++s)
      if (counts[s] > counts[pad]) pad = s;
    const std::uint64_t padded_rows = (g.rows + g.lanes - 1) / g.lanes * g.lanes;
    counts[pad] += (padded_rows - g.rows) * g.symbols_per_row;
    st = normalize_frequencies(counts.data(), d.alphabet_size, o.scale_bits, freqs.data());
    if (st != status::ok) return st;
  }
  for (std::uint32_t s = 0; s < d.alphabet_size; ++s)
    if (counts[s] != 0 && freqs[s] == 0) return status::invalid_argument;
  g.pad_symbol = pad;

  // Block streams, each padded to 16 bytes (8 words).
  std::vector<std::uint16_t> payload;
  std::vector<std::uint64_t> index;  // (offset, size) in bytes per block
  st = visit_coder(g, nullptr, [&](auto params, auto lanes, auto) {
    using P = decltype(params);
    constexpr int N = decltype(lanes)::value;
    encode_table<P> table;
    status s = table.build(freqs.data(), d.alphabet_size);
    if (s != status::ok) return s;
    std::vector<std::uint16_t> block;
    std::vector<std::uint16_t> words;
    for (std::uint64_t t = 0; t < g.num_tiles(); ++t)
      for (std::uint64_t k = 0; k < g.num_chunks(); ++k) {
        const std::uint64_t first_row = t * g.tile_rows, first_col = k * g.chunk_symbols;
        const std::uint64_t columns = g.columns_in_chunk(k), groups = g.row_groups_in_tile(t);
        const std::uint64_t valid = g.rows_in_tile(t);
        block.resize(std::size_t(groups * N * columns));
        std::size_t i = 0;
        for (std::uint64_t grp = 0; grp < groups; ++grp)
          for (std::uint64_t c = 0; c < columns; ++c)
            for (std::uint64_t r = 0; r < std::uint64_t(N); ++r) {
              const std::uint64_t row = grp * N + r;
              block[i++] = row < valid ? std::uint16_t(symbols[(first_row + row) * g.symbols_per_row + first_col + c])
                                       : std::uint16_t(pad);
            }
        words.resize(interleaved_layout<P, N>::max_encoded_words(block.size()));
        std::size_t written = 0;
        s = interleaved_encode<P, N>(block.data(), block.size(), table.data(), table.alphabet_size(), words.data(),
                                     words.size(), &written);
        if (s != status::ok) return s;
        index.push_back(std::uint64_t(payload.size()) * 2);
        index.push_back(std::uint64_t(written) * 2);
        payload.insert(payload.end(), words.begin(), words.begin() + std::ptrdiff_t(written));
        payload.resize(std::size_t(detail::align_up(payload.size(), container_alignment / 2)), 0);
      }
    return status::ok;
  });
  if (st != status::ok) return st;

  std::vector<std::uint8_t> table_bytes;
  st = write_frequency_table(freqs.data(), d.alphabet_size, o.scale_bits, &table_bytes);
  if (st != status::ok) return st;

  std::vector<std::uint8_t> bytes;
  detail::byte_writer w(&bytes);
  w.bytes(container_magic, sizeof(container_magic));
  w.u32(container_version);
  w.u32(g.scheme_id);
  w.u64(0);  // container_size, patched below
  w.u64(g.rows);
  w.u64(g.cols);
  w.u64(g.symbols_per_row);
  w.u64(g.chunk_symbols);
  w.u32(g.tile_rows);
  w.u32(g.alphabet_size);
  w.u32(g.pad_symbol);
  w.u16(std::uint16_t(g.lanes));
  w.u8(std::uint8_t(g.state_bits));
  w.u8(std::uint8_t(g.word_bits));
  w.u8(std::uint8_t(g.scale_bits));
  w.u8(std::uint8_t(d.sections.size()));
  w.u16(std::uint16_t(d.scheme_params.size()));
  w.u32(std::uint32_t(table_bytes.size()));
  w.bytes(d.scheme_params.data(), d.scheme_params.size());
  w.pad_to(container_alignment);
  w.bytes(table_bytes.data(), table_bytes.size());
  w.pad_to(container_alignment);
  for (const section_input& s : d.sections) {
    w.u32(s.tag);
    w.u32(s.item_size);
    w.u64(s.size);
  }
  for (std::uint64_t e : index) w.u64(e);
  for (const section_input& s : d.sections) {
    w.bytes(static_cast<const std::uint8_t*>(s.data), std::size_t(s.size));
    w.pad_to(container_alignment);
  }
  for (std::uint16_t word : payload) w.u16(word);
  const std::uint64_t container_size = bytes.size() + container_checksum_size;
  for (int k = 0; k < 8; ++k) bytes[16 + std::size_t(k)] = std::uint8_t(container_size >> (8 * k));
  w.u64(xxh64(bytes.data(), bytes.size()));
  // Parse our own output: it also builds the view and the decode table.
  return open(bytes.data(), bytes.size(), out, open_options{false});
}

ECQ_NAMESPACE_END

#endif  // ECQ_CONTAINER_HPP
