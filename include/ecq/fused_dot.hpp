// ecq/fused_dot.hpp — READ ME FIRST
//
// The fused decode -> dequantise -> dot functor: y = W x for an encoded
// weight matrix W (rows x cols) without materialising W. A block decoder
// (ecq/tensor_view.hpp) hands each decoded symbol, with its tensor
// coordinates, to a dot_sink; the sink dequantises it in registers with the
// scheme's dequantiser (ecq/schemes/dequantizer.hpp) and multiply-adds it
// into the row's accumulator. No weight is ever stored. One implementation
// serves host and device (ECQ_HOST_DEVICE).
//
// Layers, from the inside out:
//   symbol_dot           the contribution of one symbol (weights_per_symbol
//                        weights of one row) to its row's dot product. The
//                        building block for kernels that keep their own
//                        accumulators, e.g. one per GPU lane.
//   dot_sink             a sink for decode_block(_checked): acc[row -
//                        first_row] += symbol_dot(...).
//   fused_block_dot      FAST PATH: one block, valid stream.
//   fused_block_dot_checked
//                        CHECKED: one block of an untrusted stream (the view
//                        from a validated container). Returns a status; on
//                        error the accumulators hold partial sums.
//   fused_gemv_with      host: every block of a range of tiles, either path,
//                        for one coder configuration known at compile time.
//   fused_gemv           the same for any configuration (visit_coder).
//
// Numerics. Accumulation runs in Accumulator (float, double or an integer
// type), in column order within a row (blocks of one row are visited in
// chunk order). Integer paths (code_dequantizer, integer activations and
// accumulators) are exact. With float accumulators the result differs from
// the float64 dot product of the same dequantised weights by at most
// n * u * sum_j |w_j x_j|, u = 2^-24, n = cols (recursive summation,
// Higham, "Accuracy and Stability of Numerical Algorithms", eq. 3.5), which
// tests/fused_dot_test.cpp checks; the dequantised weights themselves are
// the scheme's (float arithmetic on the stored side data).
//
// Activations are read at x[column * weights_per_symbol + j]; weights past
// the end of a row (the zero codes padding a row's last multi-weight symbol)
// are skipped, so x needs exactly cols entries.
#ifndef ECQ_FUSED_DOT_HPP
#define ECQ_FUSED_DOT_HPP

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "config.hpp"
#include "status.hpp"
#include "tensor_view.hpp"

ECQ_NAMESPACE_BEGIN

/// @return sum_j w_j * x[column * W + j] over the weights of one symbol
///         (W = weights_per_symbol; weights at columns >= cols skipped).
template <class Accumulator, class Dequantizer, class Activation>
ECQ_HOST_DEVICE ECQ_FORCEINLINE Accumulator symbol_dot(const Dequantizer& dq, const Activation* x, std::uint64_t cols,
                                                       std::uint64_t row, std::uint64_t column, std::uint32_t symbol) {
  constexpr int wps = Dequantizer::weights_per_symbol;
  typename Dequantizer::value_type w[wps];
  dq(row, column, symbol, w);
  const std::uint64_t first = column * std::uint64_t(wps);
  if constexpr (wps == 1) {
    (void)cols;
    return Accumulator(w[0]) * Accumulator(x[first]);
  } else {
    Accumulator acc = Accumulator(w[0]) * Accumulator(x[first]);
    if (first + std::uint64_t(wps) <= cols) {  // every symbol but a row's padded last one
      ECQ_PRAGMA_UNROLL
      for (int j = 1; j < wps; ++j) acc += Accumulator(w[j]) * Accumulator(x[first + std::uint64_t(j)]);
    } else {
      for (int j = 1; j < wps; ++j)
        if (first + std::uint64_t(j) < cols) acc += Accumulator(w[j]) * Accumulator(x[first + std::uint64_t(j)]);
    }
    return acc;
  }
}

/// Sink for decode_block / decode_block_checked: accumulates row r's dot
/// product into acc[r - first_row]. Trivially copyable when Dequantizer is.
template <class Dequantizer, class Activation, class Accumulator>
struct dot_sink {
  Dequantizer dq;
  const Activation* x;
  std::uint64_t cols;
  std::uint64_t first_row;
  Accumulator* acc;

  ECQ_HOST_DEVICE ECQ_FORCEINLINE void operator()(std::uint64_t row, std::uint64_t column, std::uint32_t symbol) const {
    acc[row - first_row] += symbol_dot<Accumulator>(dq, x, cols, row, column, symbol);
  }
};

/// FAST PATH. acc[r] += the dot product of row b.first_row + r, restricted to
/// the block's columns, with x (cols entries), for r < b.valid_rows.
/// Preconditions: the stream is valid (see ecq/tensor_view.hpp), b.lanes ==
/// Lanes, the dequantiser was built for this tensor.
template <class Params, int Lanes, class TableView, class Dequantizer, class Activation, class Accumulator>
ECQ_HOST_DEVICE void fused_block_dot(const block_view& b, TableView table, const Dequantizer& dq, const Activation* x,
                                     std::uint64_t cols, Accumulator* acc) {
  dot_sink<Dequantizer, Activation, Accumulator> sink{dq, x, cols, b.first_row, acc};
  decode_block<Params, Lanes>(b, table, sink);
}

/// CHECKED PATH for an untrusted stream, as fused_block_dot otherwise.
/// @return the status of decode_block_checked; on error acc holds partial,
///         meaningless sums (never an out-of-bounds access).
template <class Params, int Lanes, class TableView, class Dequantizer, class Activation, class Accumulator>
ECQ_HOST_DEVICE status fused_block_dot_checked(const block_view& b, TableView table, const Dequantizer& dq,
                                               const Activation* x, std::uint64_t cols, Accumulator* acc) {
  dot_sink<Dequantizer, Activation, Accumulator> sink{dq, x, cols, b.first_row, acc};
  return decode_block_checked<Params, Lanes>(b, table, sink);
}

/// Which decoder fused_gemv runs.
enum class decode_path { fast, checked };

namespace detail {

template <class Params, int Lanes, class TableView, class Dequantizer, class Activation, class Accumulator>
status gemv_tiles(const encoded_tensor_view& v, TableView table, const Dequantizer& dq, const Activation* x,
                  Accumulator* y, std::uint64_t first_tile, std::uint64_t end_tile, decode_path path) {
  const tensor_geometry& g = v.geometry;
  for (std::uint64_t r = first_tile * g.tile_rows; r < g.rows && r < end_tile * g.tile_rows; ++r) y[r] = Accumulator(0);
  for (std::uint64_t t = first_tile; t < end_tile; ++t)
    for (std::uint64_t k = 0; k < g.num_chunks(); ++k) {
      const block_view b = v.block(t, k);
      Accumulator* acc = y + b.first_row;
      if (path == decode_path::checked) {
        const status st = fused_block_dot_checked<Params, Lanes>(b, table, dq, x, g.cols, acc);
        if (st != status::ok) return st;
      } else {
        fused_block_dot<Params, Lanes>(b, table, dq, x, g.cols, acc);
      }
    }
  return status::ok;
}

}  // namespace detail

/// Host: y[row] = dot(row, x) for every row of tiles [first_tile, end_tile)
/// (y has rows entries; other rows are not touched), for a tensor coded with
/// rans32x16-style Params and Lanes known at compile time. Tiles are
/// independent, so threads may run disjoint tile ranges on one y.
/// @return status::ok; status::invalid_argument for a tile range outside the
///         tensor; status::unsupported_parameters if the tensor was coded
///         with another state/word width, ScaleBits or lane count; with
///         decode_path::checked, the first block error.
template <class Params, int Lanes, class Dequantizer, class Activation, class Accumulator>
status fused_gemv_with(const encoded_tensor_view& v, const Dequantizer& dq, const Activation* x, Accumulator* y,
                       std::uint64_t first_tile, std::uint64_t end_tile, decode_path path = decode_path::fast) {
  const tensor_geometry& g = v.geometry;
  if (first_tile > end_tile || end_tile > g.num_tiles()) return status::invalid_argument;
  if (g.state_bits != std::uint32_t(Params::state_bits) || g.word_bits != std::uint32_t(Params::word_bits) ||
      g.scale_bits != std::uint32_t(Params::scale_bits) || g.lanes != std::uint32_t(Lanes))
    return status::unsupported_parameters;
  using table_view = decode_table_view<Params::scale_bits, decode_symbol_bits(Params::scale_bits)>;
  const table_view table{static_cast<const typename table_view::entry_type*>(v.decode_table)};
  return detail::gemv_tiles<Params, Lanes>(v, table, dq, x, y, first_tile, end_tile, path);
}

/// As fused_gemv_with, for any coder configuration visit_coder supports.
/// Convenient, but it compiles one decoder per configuration (30) for every
/// dequantiser type it is called with; kernels and tools that handle many
/// schemes call fused_gemv_with for the few configurations they produce.
template <class Dequantizer, class Activation, class Accumulator>
status fused_gemv(const encoded_tensor_view& v, const Dequantizer& dq, const Activation* x, Accumulator* y,
                  std::uint64_t first_tile, std::uint64_t end_tile, decode_path path = decode_path::fast) {
  const tensor_geometry& g = v.geometry;
  if (first_tile > end_tile || end_tile > g.num_tiles()) return status::invalid_argument;
  return visit_coder(g, v.decode_table, [&](auto params, auto lanes, auto table) {
    return detail::gemv_tiles<decltype(params), decltype(lanes)::value>(v, table, dq, x, y, first_tile, end_tile, path);
  });
}

ECQ_NAMESPACE_END

#endif  // ECQ_FUSED_DOT_HPP
