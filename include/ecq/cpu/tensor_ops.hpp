// ecq/cpu/tensor_ops.hpp — READ ME FIRST
//
// One call per tensor and job, on the CPU: what an engine, the `ecq` tool and
// every example use. Host only.
//
//   decode_to_symbols(t, symbols, capacity)   the coded symbols, row-major
//                                             (16 bits each, or 8 bits for
//                                             alphabets of <= 256 symbols)
//   decode_to_float(t, w, capacity)           the weights as float32
//   decode_to_bf16(t, h, capacity)            the weights as bfloat16 patterns
//   gemv(t, x, batch, y)                      y = W x for `batch` activation columns
//   check_decode(t)                           the status decode_to_float would
//                                             return, nothing stored (`ecq verify`)
//
// Each takes an opened container (encoded_tensor, ecq/container.hpp) and
// cpu_options, and runs the same stack: the blocks are decoded by
// tensor_decoder (ecq/cpu/tensor_decoder.hpp: the fastest SIMD kernel of this
// CPU, checked), the scheme is applied to the decoded rows by row_dequantizer
// (ecq/cpu/row_dequantizer.hpp), and blocks (tiles, for gemv) run in parallel
// on the executor (ecq/cpu/thread_pool.hpp).
//
// Every call is CHECKED: any bytes that encoded_tensor::open accepted are
// safe (no read or write outside the container and the caller's buffers),
// and a corrupt stream gives the status encoded_tensor::decode_checked gives:
// blocks are independent, and the status of the first failing block in block
// order is returned, whichever thread found it. The output buffer then holds
// some wrong values; nothing outside it is touched.
//
// Results. Symbols equal encoded_tensor::decode_checked's; float weights the
// scheme's dequantiser's (ecq::dequantize, bit for bit); bf16 output is the
// stored patterns for the lossless bf16 scheme and round-to-nearest-even of
// the float weights otherwise. gemv: y[b * rows + r] = sum over c of
// W[r][c] * x[b * cols + c], accumulated in float in pieces of 256 weights
// with eight partial sums each; the error against the float64 dot product of
// the same weights is at most cols * 2^-24 * sum |W[r][c] x[b * cols + c]|
// (Higham, "Accuracy and Stability of Numerical Algorithms", eq. 3.5, which
// holds for any order of summation).
//
// Cost: the decoded symbols of one block stay in cache (the block's rows,
// 16 bits a symbol); weights are never stored by gemv. For plain affine codes
// in 64-lane blocks on AVX-512 with up to 8 activation columns, gemv stores no symbols either:
// the decoding kernel's registers are dequantised and dotted as they come
// (tensor_decoder::dot_affine_block).
#ifndef ECQ_CPU_TENSOR_OPS_HPP
#define ECQ_CPU_TENSOR_OPS_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "../config.hpp"
#include "../container.hpp"
#include "../cpu_features.hpp"
#if ECQ_HAS_X86_KERNELS()
#include <cpuid.h>
#endif
#include "../status.hpp"
#include "../schemes/scheme.hpp"
#include "detail/affine_block_dot.hpp"
#include "detail/streaming_copy.hpp"
#include "row_dequantizer.hpp"
#include "tensor_decoder.hpp"
#include "thread_pool.hpp"

ECQ_NAMESPACE_BEGIN

/// Where and how the CPU entry points run.
struct cpu_options {
  /// 0: default_thread_pool() (one thread per hardware thread); 1: the
  /// calling thread only; n > 1: a pool of n threads started for the call.
  unsigned threads = 0;
  /// An engine's own executor (ecq/cpu/thread_pool.hpp); overrides threads.
  const parallel_for_fn* executor = nullptr;
  /// The instruction-set path (ecq/cpu_features.hpp); automatic honours ECQ_CPU_PATH.
  cpu_path path = cpu_path::automatic;
};

namespace detail {

template <class F>
void run_tasks(const cpu_options& o, std::size_t count, F& f) {
  const task_ref task(f);
  if (o.executor != nullptr && *o.executor) {
    (*o.executor)(count, task);
  } else if (o.threads == 1 || count <= 1) {
    for (std::size_t i = 0; i < count; ++i) f(i);
  } else if (o.threads == 0) {
    default_thread_pool().parallel_for(count, task);
  } else {
    thread_pool pool(o.threads);
    pool.parallel_for(count, task);
  }
}

/// Output of a whole tensor this large (bytes) is stored with non-temporal
/// stores (row_stores::streaming): it does not stay in the caches anyway (a
/// quarter of the 32 MB L3 of a Zen 5 CCD, shared by its cores; Intel's
/// server parts have less per core). Measured on the 2-vCPU Zen 5 VM of
/// docs/performance.md: 16 MB of byte symbols per tensor took 2x longer with
/// ordinary stores than with non-temporal ones.
inline constexpr std::uint64_t streaming_output_bytes = std::uint64_t(8) << 20;

inline row_stores output_stores(std::uint64_t bytes) {
  return bytes >= streaming_output_bytes ? row_stores::streaming : row_stores::cached;
}

/// The first non-ok status in index order.
inline status first_failure(const std::vector<status>& s) {
  for (status x : s)
    if (x != status::ok) return x;
  return status::ok;
}

/// Per-thread buffers of the block tasks.
struct block_buffers {
  block_scratch scratch;
  std::vector<std::uint16_t> rows;    // the decoded block, row-major
  std::vector<std::uint8_t> row_bytes;  // the same, one byte a symbol (dequantize_blocks on a SIMD path)
  std::vector<float> weights;         // gemv: one piece of a row
  std::vector<float> sums;            // gemv: the tile's rows x batch
};
inline block_buffers& thread_buffers() {
  static thread_local block_buffers b;
  return b;
}

/// Common checks and setup. rows * per_row must fit `capacity`.
inline status prepare(const encoded_tensor& t, std::uint64_t per_row, std::size_t capacity, const cpu_options& o,
                      tensor_decoder* d) {
  if (t.data() == nullptr) return status::invalid_argument;
  if (capacity / per_row < t.geometry().rows) return status::output_too_small;
  return d->build(t, o.path);
}

/// The scheme's checks, then the decoder (check_decode and gemv start so).
inline status build_stack(const encoded_tensor& t, const cpu_options& o, row_dequantizer* rd, tensor_decoder* d) {
  const status st = rd->build(t);
  return st != status::ok ? st : d->build(t, o.path);
}

/// sum a[i] * b[i], eight partial sums (see the file comment).
inline float dot(const float* a, const float* b, std::size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + std::size_t(j)] * b[i + std::size_t(j)];
  for (int j = 0; i < n; ++i, ++j) s[j] += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/// Runs f(block, rows, row_stride) for every block of t after decoding it
/// into rows (valid_rows x columns symbols, row-major); one task per block.
template <class F>
status for_each_decoded_block(const encoded_tensor& t, const tensor_decoder& d, const cpu_options& o, F&& f) {
  const tensor_geometry& g = t.geometry();
  const encoded_tensor_view v = t.view();
  const std::uint64_t num_chunks = g.num_chunks();
  std::vector<status> result(std::size_t(g.num_blocks()), status::ok);
  auto task = [&](std::size_t i) {
    block_buffers& buf = thread_buffers();
    const block_view b = v.block(i / num_chunks, i % num_chunks);
    const std::size_t n = std::size_t(b.valid_rows) * std::size_t(b.columns);
    if (buf.rows.size() < n) buf.rows.resize(n);
    result[i] = d.decode_block(i / num_chunks, i % num_chunks, buf.rows.data(), std::size_t(b.columns), buf.scratch);
    if (result[i] == status::ok) f(b, buf.rows.data());
  };
  run_tasks(o, result.size(), task);
  return first_failure(result);
}

/// The affine scheme's side data when gemv can take the stream-order SIMD
/// loop (ecq/cpu/detail/affine_block_dot.hpp): no raw bits, one or two codes
/// of at most 8 bits per symbol.
struct affine_dot_plan {
  bool usable = false;
  const std::uint16_t* scales = nullptr;
  const std::uint16_t* biases = nullptr;
  float16_format format = float16_format::binary16;
  std::uint64_t groups_per_row = 0;
  std::uint32_t group_shift = 0;
  int codes_per_symbol = 1;
  int code_bits = 4;
};

template <class D>
struct plain_affine : std::false_type {};
template <class Packing>
struct plain_affine<affine_dequantizer<Packing>>
    : std::integral_constant<bool, Packing::raw_bits == 0 && Packing::codes_per_symbol <= 2 &&
                                       Packing::symbol_bits <= 8> {};

inline affine_dot_plan plan_affine_dot(const encoded_tensor& t) {
  affine_dot_plan p;
  visit_dequantizer(t, [&](const auto& dq) {
    using D = std::decay_t<decltype(dq)>;
    if constexpr (plain_affine<D>::value) {
      p = {true, dq.scales, dq.biases, dq.format, dq.groups_per_row, dq.group_shift,
           D::packing::codes_per_symbol, D::packing::code_bits};
    }
    return status::ok;
  });
  return p;
}


/// The 16-bit side values h[0, n) as floats (exact conversions; the vector
/// instructions give the same values as f16_to_float for every non-NaN input).
inline void side_to_float(const std::uint16_t* h, std::size_t n, float16_format format, cpu_path path, float* out) {
  if (format == float16_format::bfloat16) {
    for (std::size_t i = 0; i < n; ++i) out[i] = bf16_to_float(h[i]);
    return;
  }
#if ECQ_HAS_X86_KERNELS()
  if (path == cpu_path::avx512) return f16_to_float_avx512(h, n, out);
  static const bool f16c = [] {  // CPUID leaf 1, ECX bit 29 (clang's __builtin_cpu_supports lacks "f16c")
    unsigned a = 0, b = 0, c = 0, d = 0;
    return __get_cpuid(1, &a, &b, &c, &d) != 0 && (c & bit_F16C) != 0;
  }();
  if (path == cpu_path::avx2 && f16c) return f16_to_float_f16c(h, n, out);
#endif
  (void)path;
  for (std::size_t i = 0; i < n; ++i) out[i] = f16_to_float(h[i]);
}

}  // namespace detail

namespace detail {

/// decode_to_symbols for 16-bit or 8-bit symbols (T), after its checks.
template <class T>
status decode_symbols_to(const encoded_tensor& t, const tensor_decoder& d, T* symbols, const cpu_options& o) {
  const tensor_geometry& g = t.geometry();
  const std::uint64_t num_chunks = g.num_chunks();
  const row_stores stores = output_stores(g.rows * g.symbols_per_row * sizeof(T));
  std::vector<status> result(std::size_t(g.num_blocks()), status::ok);
  auto task = [&](std::size_t i) {
    const std::uint64_t tile = i / num_chunks, chunk = i % num_chunks;
    T* dest = symbols + tile * g.tile_rows * g.symbols_per_row + chunk * g.chunk_symbols;
    result[i] = d.decode_block(tile, chunk, dest, std::size_t(g.symbols_per_row), thread_buffers().scratch, stores);
  };
  run_tasks(o, result.size(), task);
  return first_failure(result);
}

}  // namespace detail

/// Decodes every symbol of t into symbols[row * symbols_per_row + column].
/// @return status::ok; status::invalid_argument if t holds no container;
///         status::output_too_small if capacity < rows * symbols_per_row;
///         status::unsupported_parameters if o.path cannot run on this CPU;
///         else the first failing block's status (see the file comment).
inline status decode_to_symbols(const encoded_tensor& t, std::uint16_t* symbols, std::size_t capacity,
                                const cpu_options& o = {}) {
  tensor_decoder d;
  const status st = detail::prepare(t, t.geometry().symbols_per_row, capacity, o, &d);
  return st != status::ok ? st : detail::decode_symbols_to(t, d, symbols, o);
}

/// As above, one byte per symbol, for tensors whose alphabet has at most 256
/// symbols (geometry().alphabet_size: bf16, f16, f32, and codes of up to 8
/// bits a symbol; not packings of wider symbols such as affine4-g64-p3): the
/// same symbols and statuses, half the bytes written, which is what decoding
/// a large tensor costs once the kernel is fast (docs/performance.md, issue
/// #11). Prefer it whenever geometry().alphabet_size <= 256.
/// @return as above; status::unsupported_parameters if the alphabet has more
///         than 256 symbols (checked after invalid_argument, before the
///         capacity).
inline status decode_to_symbols(const encoded_tensor& t, std::uint8_t* symbols, std::size_t capacity,
                                const cpu_options& o = {}) {
  if (t.data() == nullptr) return status::invalid_argument;
  if (t.geometry().alphabet_size > 256) return status::unsupported_parameters;
  tensor_decoder d;
  const status st = detail::prepare(t, t.geometry().symbols_per_row, capacity, o, &d);
  return st != status::ok ? st : detail::decode_symbols_to(t, d, symbols, o);
}

/// Checks that t decodes: the scheme's checks (visit_dequantizer: parameters
/// and side data) and a checked decode of every block, in parallel, without
/// storing symbols or weights (blocks of the SIMD configurations are decoded
/// into their stream order only, padding checked, and never scattered to
/// rows). Given a buffer large enough, decode_to_float, decode_to_bf16 and
/// decode_to_symbols (when the scheme checks pass) return the same status,
/// and return ok exactly when this does.
/// @return status::ok; status::invalid_argument if t holds no container; the
///         status of visit_dequantizer; status::unsupported_parameters if
///         o.path cannot run on this CPU; else the first failing block's status.
inline status check_decode(const encoded_tensor& t, const cpu_options& o = {}) {
  if (t.data() == nullptr) return status::invalid_argument;
  row_dequantizer rd;
  tensor_decoder d;
  const status st = detail::build_stack(t, o, &rd, &d);
  if (st != status::ok) return st;
  const tensor_geometry& g = t.geometry();
  const encoded_tensor_view v = t.view();
  const std::uint64_t num_chunks = g.num_chunks();
  std::vector<status> result(std::size_t(g.num_blocks()), status::ok);
  auto task = [&](std::size_t i) {
    const std::uint64_t tile = i / num_chunks, chunk = i % num_chunks;
    detail::block_buffers& buf = detail::thread_buffers();
    if (d.has_stream_order()) {
      result[i] = d.decode_stream_order(tile, chunk, buf.scratch);
      return;
    }
    const block_view b = v.block(tile, chunk);
    const std::size_t n = std::size_t(b.valid_rows) * std::size_t(b.columns);
    if (buf.rows.size() < n) buf.rows.resize(n);
    result[i] = d.decode_block(tile, chunk, buf.rows.data(), std::size_t(b.columns), buf.scratch);
  };
  detail::run_tasks(o, result.size(), task);
  return detail::first_failure(result);
}

namespace detail {

/// decode_to_float and decode_to_bf16: the scheme's checks, then
/// put(rd, row, first_symbol, symbols, count, dest, stores) for every row
/// piece of every decoded block, dest receiving the piece's weights (row *
/// cols + first_symbol * weights_per_symbol of out on). When the whole
/// output is at least streaming_output_bytes, stores is
/// row_stores::streaming: measured on the 268 M-weight checkpoint, the
/// ordinary stores' read-for-ownership made decode_to_float of affine codes
/// take 1.4x longer (docs/performance.md, session 6).
/// Where the row dequantiser has a SIMD kernel (row_dequantizer::simd_path)
/// and the alphabet fits a byte, a block is decoded into one byte a symbol
/// (half the bytes of a block in cache) and its rows are dequantised
/// straight into out, non-temporal stores included: 0.6x the speed of
/// decode_to_symbols for 4-bit affine codes, 1.5x faster than the portable
/// loop (docs/performance.md, session 7; dequantising 64-lane blocks inside
/// the decoding loop's scatter, 16 rows of 64 columns at a time, was 1.2-1.4x
/// slower than this second pass over the block's rows). Otherwise the rows
/// are 16-bit symbols, dequantised by the portable loop into a per-thread
/// buffer that goes to out with copy_streaming when streaming.
template <class T, class Put>
status dequantize_blocks(const encoded_tensor& t, T* out, std::size_t capacity, const cpu_options& o, Put&& put) {
  row_dequantizer rd;
  if (t.data() == nullptr) return status::invalid_argument;
  status st = rd.build(t, o.path);
  if (st != status::ok) return st;
  tensor_decoder d;
  if ((st = prepare(t, t.geometry().cols, capacity, o, &d)) != status::ok) return st;
  const tensor_geometry& g = t.geometry();
  const std::uint64_t cols = g.cols, wps = std::uint64_t(rd.weights_per_symbol());
  const row_stores stores = output_stores(g.rows * cols * sizeof(T));
  const bool streaming = stores == row_stores::streaming;
  if (rd.simd_path() != cpu_path::scalar && g.alphabet_size <= 256) {
    const encoded_tensor_view v = t.view();
    const std::uint64_t num_chunks = g.num_chunks();
    std::vector<status> result(std::size_t(g.num_blocks()), status::ok);
    auto task = [&](std::size_t i) {
      block_buffers& buf = thread_buffers();
      const block_view b = v.block(i / num_chunks, i % num_chunks);
      const std::size_t columns = std::size_t(b.columns);
      const std::size_t n = std::size_t(b.valid_rows) * columns;
      if (buf.row_bytes.size() < n) buf.row_bytes.resize(n);
      result[i] = d.decode_block(i / num_chunks, i % num_chunks, buf.row_bytes.data(), columns, buf.scratch);
      if (result[i] != status::ok) return;
      for (std::uint32_t r = 0; r < b.valid_rows; ++r) {
        const std::uint64_t row = b.first_row + r;
        put(rd, row, b.first_column, buf.row_bytes.data() + std::size_t(r) * columns, columns,
            out + row * cols + b.first_column * wps, stores);
      }
      if (streaming) streaming_fence();
    };
    run_tasks(o, result.size(), task);
    return first_failure(result);
  }
  return for_each_decoded_block(t, d, o, [&](const block_view& b, const std::uint16_t* rows) {
    static thread_local std::vector<T> piece;
    const std::uint64_t first_weight = b.first_column * wps;
    const std::size_t n = std::size_t(std::min<std::uint64_t>(std::uint64_t(b.columns) * wps, cols - first_weight));
    if (streaming && piece.size() < n) piece.resize(n);
    for (std::uint32_t r = 0; r < b.valid_rows; ++r) {
      const std::uint64_t row = b.first_row + r;
      T* dest = out + row * cols + first_weight;
      put(rd, row, b.first_column, rows + std::size_t(r) * b.columns, std::size_t(b.columns),
          streaming ? piece.data() : dest, row_stores::cached);
      if (streaming) copy_streaming(dest, piece.data(), n * sizeof(T));
    }
    if (streaming) streaming_fence();
  });
}

// The row calls of dequantize_blocks for 16-bit symbols (the portable loop, cached stores into a buffer) and
// one-byte symbols (the SIMD kernels, any stores).
inline void put_weights(const row_dequantizer& rd, std::uint64_t row, std::uint64_t first, const std::uint16_t* s,
                        std::size_t count, float* dest, row_stores) {
  rd.weights(row, first, s, count, dest);
}
inline void put_weights(const row_dequantizer& rd, std::uint64_t row, std::uint64_t first, const std::uint8_t* s,
                        std::size_t count, float* dest, row_stores stores) {
  rd.weights(row, first, s, count, dest, stores);
}
inline void put_bf16_bits(const row_dequantizer& rd, std::uint64_t row, std::uint64_t first, const std::uint16_t* s,
                          std::size_t count, std::uint16_t* dest, std::uint64_t cols, row_stores) {
  rd.bf16_bits(row, first, s, count, dest, cols);
}
inline void put_bf16_bits(const row_dequantizer& rd, std::uint64_t row, std::uint64_t first, const std::uint8_t* s,
                          std::size_t count, std::uint16_t* dest, std::uint64_t, row_stores stores) {
  rd.bf16_bits(row, first, s, count, dest, stores);
}

}  // namespace detail

/// Decodes and dequantises t into w[row * cols + column] (float32).
/// @return as decode_to_symbols (capacity counted in weights: rows * cols),
///         or the status of visit_dequantizer if the scheme's parameters or
///         side data do not fit the tensor (checked first).
inline status decode_to_float(const encoded_tensor& t, float* w, std::size_t capacity, const cpu_options& o = {}) {
  return detail::dequantize_blocks(t, w, capacity, o,
                                   [](const row_dequantizer& rd, std::uint64_t row, std::uint64_t first,
                                      const auto* symbols, std::size_t count, float* dest, detail::row_stores stores) {
                                     detail::put_weights(rd, row, first, symbols, count, dest, stores);
                                   });
}

namespace detail {

/// decode_to_bf16 of the lossless bf16 scheme: each block's symbols are
/// joined with their raw bytes as they are scattered to rows
/// (tensor_decoder::decode_block_float16), with the checks of
/// dequantize_blocks in the same order.
inline status decode_bf16_patterns(const encoded_tensor& t, const row_dequantizer& rd, std::uint16_t* h,
                                   std::size_t capacity, const cpu_options& o) {
  tensor_decoder d;
  const status st = prepare(t, t.geometry().cols, capacity, o, &d);
  if (st != status::ok) return st;
  const tensor_geometry& g = t.geometry();
  const encoded_tensor_view v = t.view();
  const std::uint64_t num_chunks = g.num_chunks(), cols = g.cols;  // one symbol per weight: cols == symbols_per_row
  const row_stores stores = output_stores(g.rows * cols * 2);
  std::vector<status> result(std::size_t(g.num_blocks()), status::ok);
  auto task = [&](std::size_t i) {
    const std::uint64_t tile = i / num_chunks, chunk = i % num_chunks;
    const block_view b = v.block(tile, chunk);
    const std::size_t at = std::size_t(b.first_row * cols + b.first_column);
    result[i] = d.decode_block_float16(tile, chunk, rd.bf16_raw_bytes() + at, std::size_t(cols), h + at,
                                       std::size_t(cols), thread_buffers().scratch, stores);
  };
  run_tasks(o, result.size(), task);
  return first_failure(result);
}

}  // namespace detail

/// Decodes t into bfloat16 patterns h[row * cols + column] (see the file comment).
/// @return as decode_to_float.
inline status decode_to_bf16(const encoded_tensor& t, std::uint16_t* h, std::size_t capacity,
                             const cpu_options& o = {}) {
  const std::uint64_t cols = t.geometry().cols;
  if (t.data() != nullptr) {
    row_dequantizer rd;
    if (rd.build(t) == status::ok && rd.exact_bf16()) return detail::decode_bf16_patterns(t, rd, h, capacity, o);
  }
  return detail::dequantize_blocks(t, h, capacity, o,
                                   [cols](const row_dequantizer& rd, std::uint64_t row, std::uint64_t first,
                                          const auto* symbols, std::size_t count, std::uint16_t* dest,
                                          detail::row_stores stores) {
                                     detail::put_bf16_bits(rd, row, first, symbols, count, dest, cols, stores);
                                   });
}

/// y[b * rows + r] = sum over c of W[r][c] * x[b * cols + c] for b < batch:
/// the fused decode -> dequantise -> dot, weights never stored (see the file
/// comment for the accumulation and its error bound). x holds batch * cols
/// floats, y batch * rows.
/// @return status::ok; status::invalid_argument if t holds no container or
///         batch == 0; the status of visit_dequantizer; status::unsupported_parameters
///         if o.path cannot run here; else the first failing block's status
///         (y is then partly written).
inline status gemv(const encoded_tensor& t, const float* x, std::size_t batch, float* y, const cpu_options& o = {}) {
  if (t.data() == nullptr || batch == 0) return status::invalid_argument;
  row_dequantizer rd;
  tensor_decoder d;
  const status st = detail::build_stack(t, o, &rd, &d);
  if (st != status::ok) return st;
  const tensor_geometry& g = t.geometry();
  const encoded_tensor_view v = t.view();
  const std::uint64_t rows = g.rows, cols = g.cols, wps = std::uint64_t(rd.weights_per_symbol());
  constexpr std::size_t piece_symbols = 256;
#if ECQ_HAS_X86_KERNELS()
  // Affine codes on an x86 SIMD kernel: the stream-order loop, no transposition.
  const cpu_path isa = cpu_kernel_path(d.kernel());
  detail::affine_dot_plan plan;
  if (d.has_stream_order() && ((isa == cpu_path::avx512 && g.lanes % 16 == 0) || (isa == cpu_path::avx2 && g.lanes % 8 == 0)))
    plan = detail::plan_affine_dot(t);
  // Up to affine_rows_dot_sink<>::max_batch columns, the AVX-512 kernels dot
  // each register of symbols of a 64-lane block as they decode it
  // (tensor_decoder::dot_affine_block); more columns, or fewer lanes, decode
  // each block once into stream order and run the loop over it once per four
  // columns.
  const bool fused = isa == cpu_path::avx512 && g.lanes == 64 && batch <= detail::affine_rows_dot_sink<64>::max_batch;
#endif
  std::vector<status> result(std::size_t(g.num_tiles()), status::ok);
  auto task = [&](std::size_t tile) {
    detail::block_buffers& buf = detail::thread_buffers();
    const std::size_t tile_rows = std::size_t(g.rows_in_tile(tile));
    buf.sums.assign(tile_rows * batch, 0.0f);
#if ECQ_HAS_X86_KERNELS()
    if (plan.usable) {
      const std::size_t side = tile_rows * std::size_t(plan.groups_per_row);
      const std::size_t first = std::size_t(tile) * g.tile_rows * std::size_t(plan.groups_per_row);
      buf.weights.resize(2 * side);
      detail::side_to_float(plan.scales + first, side, plan.format, isa, buf.weights.data());
      detail::side_to_float(plan.biases + first, side, plan.format, isa, buf.weights.data() + side);
      for (std::uint64_t chunk = 0; chunk < g.num_chunks(); ++chunk) {
        const block_view b = v.block(tile, chunk);
        detail::affine_block_dot_args a{nullptr, b.lanes, b.row_groups, b.valid_rows, b.columns, b.first_column,
                                        plan.codes_per_symbol, plan.code_bits, buf.weights.data(),
                                        buf.weights.data() + side, plan.groups_per_row, plan.group_shift, x, cols,
                                        batch, buf.sums.data()};
        if (fused) {
          if ((result[tile] = d.dot_affine_block(tile, chunk, a)) != status::ok) return;
          continue;
        }
        result[tile] = d.decode_stream_order(tile, chunk, buf.scratch);
        if (result[tile] != status::ok) return;
        a.symbols = buf.scratch.stream_order.data();
        if (isa == cpu_path::avx512)
          plan.codes_per_symbol == 1 ? detail::affine_block_dot_simd<16, 1>(a) : detail::affine_block_dot_simd<16, 2>(a);
        else
          plan.codes_per_symbol == 1 ? detail::affine_block_dot_simd<8, 1>(a) : detail::affine_block_dot_simd<8, 2>(a);
      }
      for (std::size_t r = 0; r < tile_rows; ++r)
        for (std::size_t c = 0; c < batch; ++c) y[c * rows + tile * g.tile_rows + r] = buf.sums[r * batch + c];
      return;
    }
#endif
    buf.weights.resize(piece_symbols * std::size_t(wps));
    for (std::uint64_t chunk = 0; chunk < g.num_chunks(); ++chunk) {
      const block_view b = v.block(tile, chunk);
      const std::size_t n = tile_rows * std::size_t(b.columns);
      if (buf.rows.size() < n) buf.rows.resize(n);
      result[tile] = d.decode_block(tile, chunk, buf.rows.data(), std::size_t(b.columns), buf.scratch);
      if (result[tile] != status::ok) return;
      for (std::size_t r = 0; r < tile_rows; ++r) {
        const std::uint64_t row = b.first_row + r;
        const std::uint16_t* symbols = buf.rows.data() + r * std::size_t(b.columns);
        for (std::uint64_t k = 0; k < b.columns; k += piece_symbols) {
          const std::size_t count = std::size_t(b.columns - k < piece_symbols ? b.columns - k : piece_symbols);
          const std::uint64_t first_weight = (b.first_column + k) * wps;
          const std::size_t m = std::size_t(cols - first_weight < count * wps ? cols - first_weight : count * wps);
          rd.weights(row, b.first_column + k, symbols + k, count, buf.weights.data());
          for (std::size_t c = 0; c < batch; ++c)
            buf.sums[r * batch + c] += detail::dot(buf.weights.data(), x + c * cols + first_weight, m);
        }
      }
    }
    for (std::size_t r = 0; r < tile_rows; ++r)
      for (std::size_t c = 0; c < batch; ++c) y[c * rows + tile * g.tile_rows + r] = buf.sums[r * batch + c];
  };
  detail::run_tasks(o, result.size(), task);
  return detail::first_failure(result);
}

ECQ_NAMESPACE_END

#endif  // ECQ_CPU_TENSOR_OPS_HPP
