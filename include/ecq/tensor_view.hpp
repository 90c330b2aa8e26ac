// ecq/tensor_view.hpp — READ ME FIRST
//
// What a kernel receives: trivially copyable views of one encoded tensor
// (docs/format.md), and the decoders of one block. Host and device.
//
// Geometry. The tensor has `rows` rows of `symbols_per_row` symbols (a row of
// `cols` weights becomes symbols_per_row symbols; with multi-weight symbols,
// fewer). Rows are grouped into tiles of `tile_rows` rows, a multiple of the
// interleave width N = `lanes`; symbol columns into chunks of `chunk_symbols`
// (the last tile and chunk may be smaller). Block (tile t, chunk k) is one
// independently decodable N-way interleaved stream (ecq/interleaved_rans.hpp)
// holding the tile's rows and the chunk's columns:
//
//   * the tile's rows form row groups of N consecutive rows; the last tile
//     has ceil(rows_in_tile / N) groups, and rows past the tensor's end in
//     its last group are padding, coded as `pad_symbol`;
//   * symbol index i in the stream is (g * columns + c) * N + r for row
//     group g, column c of the chunk and row r of the group, so lane
//     i mod N = r: lane r decodes row r of every group, and all lanes of one
//     round share one column (one activation value in a GEMV).
//
// Block b = t * num_chunks + k; its stream lies at payload + offset(b) and is
// 16-byte aligned. The block index holds (offset, size) in bytes.
//
// Which path is which:
//   decode_block          FAST PATH: assumes the stream is valid (produced by
//                         the library's encoder, or already accepted once by
//                         decode_block_checked). Reads past the block on
//                         corrupt input.
//   decode_block_checked  for untrusted streams of a container whose layout
//                         was validated (encoded_tensor::open): never reads
//                         outside the block, never calls the sink for a row
//                         or column outside the block, and checks that every
//                         padding position decodes to pad_symbol.
//   encoded_tensor_view::block and visit_coder trust the view: build views
//   only with encoded_tensor (ecq/container.hpp), which validates.
//
// Sinks receive (std::uint64_t row, std::uint64_t column, std::uint32_t
// symbol) in stream order, tensor coordinates, padding rows skipped.
//
// Moving a view to the device: copy the container bytes and the decode table
// to device memory, then view.rebased(device_bytes, device_table).
#ifndef ECQ_TENSOR_VIEW_HPP
#define ECQ_TENSOR_VIEW_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "config.hpp"
#include "interleaved_rans.hpp"
#include "rans_state.hpp"
#include "status.hpp"
#include "symbol_table.hpp"

ECQ_NAMESPACE_BEGIN

/// Side-data sections a view can describe (the format's limit per container).
inline constexpr int max_sections = 8;

/// The header fields that shape decoding (docs/format.md section 2).
struct tensor_geometry {
  std::uint64_t rows;
  std::uint64_t cols;             // weights per row, for the scheme
  std::uint64_t symbols_per_row;
  std::uint64_t chunk_symbols;    // symbol columns per block (last chunk may be shorter)
  std::uint32_t tile_rows;        // rows per block, a multiple of lanes
  std::uint32_t lanes;            // interleave width N
  std::uint32_t alphabet_size;
  std::uint32_t pad_symbol;
  std::uint32_t scheme_id;
  std::uint32_t state_bits;
  std::uint32_t word_bits;
  std::uint32_t scale_bits;

  ECQ_HOST_DEVICE std::uint64_t num_tiles() const { return (rows + tile_rows - 1) / tile_rows; }
  ECQ_HOST_DEVICE std::uint64_t num_chunks() const { return (symbols_per_row + chunk_symbols - 1) / chunk_symbols; }
  ECQ_HOST_DEVICE std::uint64_t num_blocks() const { return num_tiles() * num_chunks(); }
  /// Rows of tile t inside the tensor.
  ECQ_HOST_DEVICE std::uint64_t rows_in_tile(std::uint64_t t) const {
    const std::uint64_t first = t * tile_rows;
    return rows - first < tile_rows ? rows - first : tile_rows;
  }
  /// Row groups coded in tile t: ceil(rows_in_tile / lanes).
  ECQ_HOST_DEVICE std::uint64_t row_groups_in_tile(std::uint64_t t) const {
    return (rows_in_tile(t) + lanes - 1) / lanes;
  }
  /// Symbol columns of chunk k.
  ECQ_HOST_DEVICE std::uint64_t columns_in_chunk(std::uint64_t k) const {
    const std::uint64_t first = k * chunk_symbols;
    return symbols_per_row - first < chunk_symbols ? symbols_per_row - first : chunk_symbols;
  }
  /// Symbols coded in block (t, k), padding included.
  ECQ_HOST_DEVICE std::uint64_t symbols_in_block(std::uint64_t t, std::uint64_t k) const {
    return row_groups_in_tile(t) * lanes * columns_in_chunk(k);
  }
};

/// One side-data section: `size` bytes of `item_size`-byte items at
/// container offset `offset` (16-byte aligned); meaning given by `tag`.
struct section_view {
  std::uint32_t tag;
  std::uint32_t item_size;
  std::uint64_t offset;
  std::uint64_t size;
};

/// One block: a stream plus the rectangle of the tensor it covers.
struct block_view {
  const std::uint8_t* data;     // first byte of the stream, 16-byte aligned
  std::uint64_t size_bytes;     // stream length, a multiple of the word size
  std::uint64_t first_row;      // tensor row of group 0, lane 0
  std::uint64_t first_column;   // first symbol column
  std::uint64_t columns;        // symbol columns in the chunk
  std::uint32_t row_groups;     // groups of `lanes` rows, coded one after another
  std::uint32_t valid_rows;     // rows [first_row, first_row + valid_rows) are real
  std::uint32_t lanes;
  std::uint32_t pad_symbol;     // the symbol coded at every padding position

  ECQ_HOST_DEVICE std::uint64_t num_symbols() const { return std::uint64_t(row_groups) * lanes * columns; }
  template <class Word>
  ECQ_HOST_DEVICE const Word* words() const {
    return reinterpret_cast<const Word*>(data);
  }
  template <class Word>
  ECQ_HOST_DEVICE std::uint64_t num_words() const {
    return size_bytes / sizeof(Word);
  }
};

/// The whole tensor: geometry, container bytes and the host-built decode
/// table (entries as for decode_table_view<S, decode_symbol_bits(S)>).
struct encoded_tensor_view {
  tensor_geometry geometry;
  const std::uint8_t* base;        // first byte of the container
  const void* decode_table;        // 2^scale_bits packed entries
  std::uint64_t index_offset;      // block index: num_blocks pairs of uint64 (offset, size)
  std::uint64_t payload_offset;    // block streams; offsets in the index are relative to it
  std::uint32_t num_sections;
  section_view sections[max_sections];

  ECQ_HOST_DEVICE const std::uint8_t* payload() const { return base + payload_offset; }
  ECQ_HOST_DEVICE const std::uint64_t* block_index() const {
    return reinterpret_cast<const std::uint64_t*>(base + index_offset);
  }

  /// Block b = tile * num_chunks + chunk. Precondition: b < num_blocks().
  ECQ_HOST_DEVICE block_view block(std::uint64_t tile, std::uint64_t chunk) const {
    const std::uint64_t b = tile * geometry.num_chunks() + chunk;
    const std::uint64_t* entry = block_index() + 2 * b;
    block_view v;
    v.data = payload() + entry[0];
    v.size_bytes = entry[1];
    v.first_row = tile * geometry.tile_rows;
    v.first_column = chunk * geometry.chunk_symbols;
    v.columns = geometry.columns_in_chunk(chunk);
    v.row_groups = std::uint32_t(geometry.row_groups_in_tile(tile));
    v.valid_rows = std::uint32_t(geometry.rows_in_tile(tile));
    v.lanes = geometry.lanes;
    v.pad_symbol = geometry.pad_symbol;
    return v;
  }

  /// @return the section with `tag`, or null if there is none.
  ECQ_HOST_DEVICE const section_view* find_section(std::uint32_t tag) const {
    for (std::uint32_t i = 0; i < num_sections; ++i)
      if (sections[i].tag == tag) return &sections[i];
    return nullptr;
  }
  /// @return the bytes of section s.
  ECQ_HOST_DEVICE const std::uint8_t* section_data(const section_view& s) const { return base + s.offset; }

  /// The same view over a copy of the container bytes and decode table (for
  /// example in device memory).
  ECQ_HOST_DEVICE encoded_tensor_view rebased(const std::uint8_t* new_base, const void* new_decode_table) const {
    encoded_tensor_view v = *this;
    v.base = new_base;
    v.decode_table = new_decode_table;
    return v;
  }
};

static_assert(std::is_trivially_copyable<block_view>::value, "block_view is passed by value into kernels");
static_assert(std::is_trivially_copyable<encoded_tensor_view>::value,
              "encoded_tensor_view is passed by value into kernels");

/// The SymbolBits of the decode table that visit_coder hands out for
/// ScaleBits S: min(12, S), the widest the packed entry allows (an alphabet
/// of 2^SymbolBits symbols needs at least as many slots). A container's
/// alphabet must fit: alphabet_size <= 2^decode_symbol_bits(S). Entries are
/// 4 bytes for S <= 10 and 8 bytes above; kernels that want a narrower layout
/// build their own table from the frequencies (ecq/symbol_table.hpp).
/// One SymbolBits per ScaleBits keeps visit_coder at 9 x 5 instantiations.
ECQ_HOST_DEVICE constexpr int decode_symbol_bits(int scale_bits) { return scale_bits < 12 ? scale_bits : 12; }

namespace detail {

/// Maps stream indices (delivered in order) to tensor coordinates by keeping
/// counters, and skips padding rows. In checked mode it records whether a
/// padding position decoded to anything but pad_symbol.
template <class Sink, bool Checked>
struct tile_order_sink {
  Sink& sink;
  const block_view& b;
  std::uint32_t lane = 0;
  std::uint32_t group = 0;
  std::uint64_t column = 0;
  bool bad_padding = false;

  ECQ_EXEC_CHECK_DISABLE
  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::size_t, std::uint32_t symbol) {
    const std::uint32_t row_in_tile = group * b.lanes + lane;
    if (row_in_tile < b.valid_rows) {
      sink(b.first_row + row_in_tile, b.first_column + column, symbol);
    } else if (Checked) {
      bad_padding |= symbol != b.pad_symbol;
    }
    if (++lane == b.lanes) {
      lane = 0;
      if (++column == b.columns) {
        column = 0;
        ++group;
      }
    }
  }
};

}  // namespace detail

/// FAST PATH. Decodes block `b` (a valid stream, see the file comment) with
/// `table`; calls sink(row, column, symbol) for every non-padding position.
/// Preconditions: b.lanes == Lanes; the table has the block's ScaleBits.
template <class Params, int Lanes, class TableView, class Sink>
ECQ_HOST_DEVICE void decode_block(const block_view& b, TableView table, Sink&& sink) {
  ECQ_ASSERT(b.lanes == std::uint32_t(Lanes));
  detail::tile_order_sink<std::remove_reference_t<Sink>, false> to{sink, b};
  using word_type = typename Params::word_type;
  interleaved_decode<Params, Lanes>(b.words<word_type>(), std::size_t(b.num_words<word_type>()),
                                    std::size_t(b.num_symbols()), table, to);
}

/// CHECKED PATH for an untrusted stream (the block view itself must come
/// from a validated container). Calls sink(row, column, symbol) as
/// decode_block does; on error the sink may have received wrong symbols.
/// @return status::ok; status::invalid_argument if b.lanes != Lanes or the
///         block is not a whole number of words; status::truncated,
///         status::corrupt_stream or status::trailing_data from
///         interleaved_decode_checked; status::corrupt_stream if a padding
///         position holds a symbol other than pad_symbol.
template <class Params, int Lanes, class TableView, class Sink>
ECQ_HOST_DEVICE status decode_block_checked(const block_view& b, TableView table, Sink&& sink) {
  using word_type = typename Params::word_type;
  if (b.lanes != std::uint32_t(Lanes) || b.size_bytes % sizeof(word_type) != 0) return status::invalid_argument;
  detail::tile_order_sink<std::remove_reference_t<Sink>, true> to{sink, b};
  const status st = interleaved_decode_checked<Params, Lanes>(
      b.words<word_type>(), std::size_t(b.num_words<word_type>()), std::size_t(b.num_symbols()), table, to);
  if (st != status::ok) return st;
  return to.bad_padding ? status::corrupt_stream : status::ok;
}

/// Calls `f(Params{}, std::integral_constant<int, Lanes>{}, table_view)` with
/// the rans_params, interleave width and decode_table_view<S,
/// decode_symbol_bits(S)> (over `decode_table`, which may be a device
/// pointer; null is fine when f does not decode) that the geometry
/// names, and returns what f returns (an ecq::status). Host only: kernels
/// are instantiated for one configuration.
/// Supported: rans32x16 (state_bits 32, word_bits 16), scale_bits 7..15,
/// lanes 1, 8, 16, 32, 64.
/// @return f's status, or status::unsupported_parameters for any other
///         configuration (f is then not called).
template <class F>
status visit_coder(const tensor_geometry& g, const void* decode_table, F&& f) {
  if (g.state_bits != 32 || g.word_bits != 16) return status::unsupported_parameters;
  auto with_scale = [&](auto params) -> status {
    constexpr int scale_bits = decltype(params)::scale_bits;
    using table_view = decode_table_view<scale_bits, decode_symbol_bits(scale_bits)>;
    const table_view table{static_cast<const typename table_view::entry_type*>(decode_table)};
    switch (g.lanes) {
      case 1: return f(params, std::integral_constant<int, 1>{}, table);
      case 8: return f(params, std::integral_constant<int, 8>{}, table);
      case 16: return f(params, std::integral_constant<int, 16>{}, table);
      case 32: return f(params, std::integral_constant<int, 32>{}, table);
      case 64: return f(params, std::integral_constant<int, 64>{}, table);
      default: return status::unsupported_parameters;
    }
  };
  switch (g.scale_bits) {
    case 7: return with_scale(rans32x16<7>{});
    case 8: return with_scale(rans32x16<8>{});
    case 9: return with_scale(rans32x16<9>{});
    case 10: return with_scale(rans32x16<10>{});
    case 11: return with_scale(rans32x16<11>{});
    case 12: return with_scale(rans32x16<12>{});
    case 13: return with_scale(rans32x16<13>{});
    case 14: return with_scale(rans32x16<14>{});
    case 15: return with_scale(rans32x16<15>{});
    default: return status::unsupported_parameters;
  }
}

ECQ_NAMESPACE_END

#endif  // ECQ_TENSOR_VIEW_HPP
