// ecq/device_decode.cuh — READ ME FIRST
//
// Decode at load (CUDA only): a device tensor (ecq/device_tensor.cuh) decoded
// into plain row-major weights in device memory, stream-ordered, by the warp
// decoder (ecq/warp_decode.cuh) in the configuration measured fastest
// (docs/cuda-notes.md: one 32-row stream per warp, 8-round blocks, 16-warp
// blocks, two per SM):
//
//   decode_codes  scheme 9 -> 4-bit codes, two per byte, low nibble first
//                 (byte k of a row = codes 2k | 2k+1 << 4): rows * cols / 2
//                 bytes. Scales and biases stay where they are (section 11).
//   decode_bf16   scheme 8 -> the original bf16 bit patterns, bit-exact:
//                 rows * cols u16.
//
// Each lane decodes its row of a tile; the output goes through a per-warp
// shared-memory row stage so that a store instruction writes whole row
// pieces rather than 32 rows' half sectors: 4 rows x 128 bytes (whole L2
// lines) for bf16 where two blocks still fit an SM (ScaleBits <= 11), else 8
// rows x 64 bytes, as for the codes. Rows past the tensor's end (the last
// tile's padding rows) are decoded and dropped.
//
// Stream checks: after each stream the warp checks the format's rules 21 and
// 22 (every state back at L, exactly the stream's words read) and ORs 1 into
// *flags when one fails; read_decode_flags turns that into a status. The
// kernels follow the loader's bounds (ecq/device_tensor.cuh), so a corrupt
// stream gives wrong values and the flag, never an access outside the
// tensor's regions and the output.
//
// Launch: a persistent grid of (blocks per SM) x SMs; warp g of the G warps
// of the grid decodes items g, g + G, g + 2G, ... (interleaved), so that at
// any time the grid reads and writes one band of G consecutive items (whole
// rows of the output) instead of G places spread over the tensor (bf16: 6%
// faster on an H200, docs/cuda-notes.md, session 6). The first call of each
// kernel per process sets its shared memory attribute and caches its
// occupancy (for the current device).
#ifndef ECQ_DEVICE_DECODE_CUH
#define ECQ_DEVICE_DECODE_CUH

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "block_decode.cuh"
#include "config.hpp"
#include "device_tensor.cuh"
#include "fused_gemv.cuh"
#include "gemv_dequant.cuh"
#include "gpu_layout.hpp"
#include "narrow_decode_table.hpp"
#include "rans_state.hpp"
#include "status.hpp"
#include "warp_decode.cuh"

ECQ_NAMESPACE_BEGIN

namespace detail {

/// How the grid's warps share the items of a view.
enum class item_order : std::uint32_t {
  interleaved,  // warp g of G: items g, g + G, ... (what decode_bf16 / decode_codes run)
  contiguous,   // warp g of G: warp_item_range(items, g, G) (session 5's order, timed against in gpu_load_bench)
};

/// The items of one warp renumbered 0..count-1 (item i is the view's item
/// first + i * stride): the Streams and Tiles functor of the warp's decoder
/// and raw pipeline.
struct warp_items {
  device_tensor_view view;
  std::uint32_t first, stride, count;

  /// Warp g of the grid's G warps, in `order`; every item it gets is < the view's items_per_part().
  ECQ_DEVICE ECQ_FORCEINLINE static warp_items of(const device_tensor_view& v, std::uint32_t g, std::uint32_t G,
                                                   item_order order) {
    const std::uint32_t n = v.items_per_part();
    if (order == item_order::interleaved) return {v, g, G, g < n ? (n - 1 - g) / G + 1 : 0u};
    const item_range r = warp_item_range(n, g, G);
    return {v, r.first, 1, r.last - r.first};
  }
  ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t item(std::uint32_t i) const { return first + i * stride; }
  ECQ_DEVICE ECQ_FORCEINLINE tile_stream_view operator()(std::uint32_t i) const { return view(item(i)); }
  ECQ_DEVICE ECQ_FORCEINLINE gemv_tile tile(std::uint32_t i) const { return view.tile(item(i)); }
  ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t column(std::uint32_t i) const { return view.column(item(i)); }
};

/// A warp's 32 output rows of 64 bytes each, staged in shared memory: each
/// lane puts 16-byte pieces of its own row, and flush writes 8 rows x 64
/// bytes per store instruction. Rows are padded by 16 bytes so that the puts
/// of 8 consecutive lanes (one wavefront) fall in different banks; 64-byte
/// rows (2.5 KB per warp, against 4.5 KB for 128) let two 16-warp blocks
/// share an SM, which measured faster (docs/cuda-notes.md, v7).
struct row_stage64 {
  static constexpr std::uint32_t row_bytes = 64;
  static constexpr std::uint32_t pitch = row_bytes + 16;
  struct TempStorage {
    alignas(16) std::uint8_t bytes[32 * pitch];
  };
  std::uint8_t* buf = nullptr;

  ECQ_DEVICE ECQ_FORCEINLINE void put(std::uint32_t offset, const uint4& v) {
    *reinterpret_cast<uint4*>(buf + lane_id() * pitch + offset) = v;
  }
  /// Writes staged rows [0, valid) to row0 + r * row_stride. Whole warp.
  ECQ_DEVICE ECQ_FORCEINLINE void flush(std::uint8_t* row0, std::size_t row_stride, std::uint32_t valid) {
    constexpr std::uint32_t lanes_per_row = row_bytes / 16, rows_per_store = 32 / lanes_per_row;
    __syncwarp();
    const std::uint32_t lane = lane_id(), c = (lane % lanes_per_row) * 16;
    ECQ_PRAGMA_UNROLL
    for (std::uint32_t j = 0; j < lanes_per_row; ++j) {
      const std::uint32_t r = rows_per_store * j + lane / lanes_per_row;
      if (r < valid)
        *reinterpret_cast<uint4*>(row0 + r * row_stride + c) = *reinterpret_cast<const uint4*>(buf + r * pitch + c);
    }
    __syncwarp();  // the next puts overwrite what was just read
  }
};

/// A warp's 32 output rows of 128 bytes each (whole L2 lines), 4 KB: the
/// 16-byte chunk c of row r sits at chunk c ^ (r % 8) of its row (an XOR
/// swizzle instead of padding, so that two 16-warp blocks still share an SM
/// at ScaleBits <= 11), so the puts of 8 consecutive lanes and the flush's
/// reads of one row each hit 8 different bank quads. Flush writes 4 rows x
/// 128 bytes per store instruction, so each L2 line arrives whole (bf16 on
/// an H200: 251 us against 271 us with 64-byte pieces and 295 us with
/// 32-byte ones, docs/cuda-notes.md, session 6).
struct row_stage128 {
  static constexpr std::uint32_t row_bytes = 128;
  struct TempStorage {
    alignas(16) std::uint8_t bytes[32 * row_bytes];
  };
  std::uint8_t* buf = nullptr;

  /// offset: a multiple of 16 in [0, 128).
  ECQ_DEVICE ECQ_FORCEINLINE void put(std::uint32_t offset, const uint4& v) {
    const std::uint32_t lane = lane_id();
    *reinterpret_cast<uint4*>(buf + lane * row_bytes + (((offset / 16) ^ (lane % 8)) * 16)) = v;
  }
  /// Writes staged rows [0, valid) to row0 + r * row_stride. Whole warp.
  ECQ_DEVICE ECQ_FORCEINLINE void flush(std::uint8_t* row0, std::size_t row_stride, std::uint32_t valid) {
    __syncwarp();
    const std::uint32_t lane = lane_id(), c = lane % 8;
    ECQ_PRAGMA_UNROLL
    for (std::uint32_t j = 0; j < 8; ++j) {
      const std::uint32_t r = 4 * j + lane / 8;
      if (r < valid)
        *reinterpret_cast<uint4*>(row0 + r * row_stride + c * 16) =
            *reinterpret_cast<const uint4*>(buf + r * row_bytes + ((c ^ (r % 8)) * 16));
    }
    __syncwarp();  // the next puts overwrite what was just read
  }
};

/// Scheme 9 -> nibbles. A block of 8 rounds is 32 codes = 16 bytes of a
/// lane's row; 4 blocks fill a 64-byte stage row.
struct code_store_sink {
  static constexpr int rounds = 8;
  static constexpr std::uint32_t blocks_per_flush = row_stage64::row_bytes / 16;
  using TempStorage = row_stage64::TempStorage;
  const warp_items& t;
  std::uint8_t* out;
  raw_pipeline<2, rounds, 1, warp_items> raw;
  row_stage64 stage;
  std::uint8_t* seg_out = nullptr;
  std::uint32_t valid = 0;
  std::uint32_t codes[4] = {};

  ECQ_DEVICE code_store_sink(const warp_items& tiles, TempStorage& storage, std::uint8_t* o,
                             std::uint32_t first, std::uint32_t last)
      : t(tiles), out(o), raw(tiles, first, last, 0) {
    stage.buf = storage.bytes;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void begin_tile(std::uint32_t item) {
    const std::uint32_t row = t.tile(item).row;
    valid = t.view.rows - row < 32u ? t.view.rows - row : 32u;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void begin_block(std::uint32_t item, std::uint32_t block) {
    raw.advance();
    if (block % blocks_per_flush == 0)
      seg_out = out + std::size_t(t.tile(item).row) * (t.view.cols / 2) + (t.column(item) + block * rounds * 4) / 2;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void step(int k, int, std::uint32_t e) {
    // Low bits of round k: l0 [0,2) l2 [2,4) l1 [4,6) l3 [6,8) after the fold;
    // the payload holds h0 << 2 | h1 << 6 | (h2 << 2 | h3 << 6) << 8.
    std::uint32_t v = raw.words[k / 4] >> (4 * (k % 4));
    v &= 0x000F000Fu;
    v |= v >> 12;
    const std::uint32_t c = (v & 0x33u) | ((v << 6) & 0x3300u) | narrow_entry::payload(e);
    if (k % 2 == 0)
      codes[k / 2] = c;
    else
      codes[k / 2] |= c << 16;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void end_block(std::uint32_t, std::uint32_t block) {
    stage.put((block % blocks_per_flush) * 16, make_uint4(codes[0], codes[1], codes[2], codes[3]));
    if (block % blocks_per_flush == blocks_per_flush - 1) stage.flush(seg_out, t.view.cols / 2, valid);
  }
  ECQ_DEVICE ECQ_FORCEINLINE void end_tile(std::uint32_t) {}
};

/// Scheme 8 -> bf16. A block of 8 rounds is 16 weights = 32 bytes of a
/// lane's row; Stage::row_bytes / 32 blocks fill a stage row. decode_bf16
/// runs row_stage128, or row_stage64 where the larger stage would cost
/// blocks per SM (launch_bf16).
template <class Stage>
struct bf16_store_sink {
  static constexpr int rounds = 8;
  static constexpr std::uint32_t blocks_per_flush = Stage::row_bytes / 32;
  using TempStorage = typename Stage::TempStorage;
  const warp_items& t;
  std::uint16_t* out;
  raw_pipeline<4, rounds, 1, warp_items> raw;
  Stage stage;
  std::uint16_t* seg_out = nullptr;
  std::uint32_t valid = 0;
  std::uint32_t w8[8] = {};

  ECQ_DEVICE bf16_store_sink(const warp_items& tiles, TempStorage& storage, std::uint16_t* o, std::uint32_t first,
                             std::uint32_t last)
      : t(tiles), out(o), raw(tiles, first, last, 0) {
    stage.buf = storage.bytes;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void begin_tile(std::uint32_t item) {
    const std::uint32_t row = t.tile(item).row;
    valid = t.view.rows - row < 32u ? t.view.rows - row : 32u;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void begin_block(std::uint32_t item, std::uint32_t block) {
    raw.advance();
    if (block % blocks_per_flush == 0)
      seg_out = out + std::size_t(t.tile(item).row) * t.view.cols + t.column(item) + block * rounds * 2;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void step(int k, int, std::uint32_t e) {
    w8[k] = bf16_pair_dequant::fragment(e, raw.words, k);
  }
  ECQ_DEVICE ECQ_FORCEINLINE void end_block(std::uint32_t, std::uint32_t block) {
    const std::uint32_t at = (block % blocks_per_flush) * 32;
    stage.put(at, make_uint4(w8[0], w8[1], w8[2], w8[3]));
    stage.put(at + 16, make_uint4(w8[4], w8[5], w8[6], w8[7]));
    if (block % blocks_per_flush == blocks_per_flush - 1)
      stage.flush(reinterpret_cast<std::uint8_t*>(seg_out), std::size_t(t.view.cols) * 2, valid);
  }
  ECQ_DEVICE ECQ_FORCEINLINE void end_tile(std::uint32_t) {}
};

constexpr int decode_block_warps = 16;
template <int S>
using decode_warp_decoder = warp_decoder<rans32x16<S>, narrow_entry_policy, 1, staged_words<1024, 8, 1>>;

template <class WarpDecoder, class Sink>
constexpr std::size_t decode_shared_bytes() {
  return sizeof(typename block_decoder<decode_block_warps, WarpDecoder>::TempStorage) +
         decode_block_warps * sizeof(typename Sink::TempStorage);
}

/// Every warp decodes its items (warp_items, in `order`) into its sink and
/// checks each stream's end (see the file comment).
template <class WarpDecoder, class Sink, class Out>
__global__ void __launch_bounds__(decode_block_warps * 32, 2)
    decode_kernel(device_tensor_view t, const std::uint32_t* table, Out* out, std::uint32_t* flags, item_order order) {
  using block = block_decoder<decode_block_warps, WarpDecoder>;
  extern __shared__ uint4 smem[];
  auto& tmp = *reinterpret_cast<typename block::TempStorage*>(smem);
  block(tmp).load_table(table);
  const std::uint32_t warp = threadIdx.x / 32;
  const warp_items w = warp_items::of(t, blockIdx.x * decode_block_warps + warp, gridDim.x * decode_block_warps, order);
  if (w.count == 0) return;
  auto* stages = reinterpret_cast<typename Sink::TempStorage*>(reinterpret_cast<unsigned char*>(smem) +
                                                               sizeof(typename block::TempStorage));
  Sink sink(w, stages[warp], out, 0, w.count);
  WarpDecoder d(tmp.warp[warp], tmp.table);
  d.start(w, 0, w.count);
  bool ok = true;
  for (std::uint32_t i = 0; i < w.count; ++i) {
    const tile_stream_view s = w(i);
    d.begin_tile(w);
    sink.begin_tile(i);
    for (std::uint32_t b = 0; b < s.rounds / std::uint32_t(WarpDecoder::rounds_per_block); ++b) {
      sink.begin_block(i, b);
      d.decode_block(w, sink);
      sink.end_block(i, b);
    }
    ok &= d.state() == WarpDecoder::params::lower_bound && d.words_read() == s.num_words;
    d.end_tile(w, i);
    sink.end_tile(i);
  }
  if (!__all_sync(0xffffffffu, ok) && lane_id() == 0 && flags != nullptr) atomicOr(flags, 1u);
}

/// Sets the kernel's shared-memory attribute once and @return its grid for
/// the current device (0 if a CUDA call failed).
template <class WarpDecoder, class Sink, class Out>
int decode_grid() {
  static const int grid = [] {
    auto kern = decode_kernel<WarpDecoder, Sink, Out>;
    constexpr std::size_t smem = decode_shared_bytes<WarpDecoder, Sink>();
    int device = 0, sms = 0, per_sm = 0;
    if (cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)) != cudaSuccess ||
        cudaGetDevice(&device) != cudaSuccess ||
        cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess ||
        cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kern, decode_block_warps * 32, smem) != cudaSuccess)
      return 0;
    return sms * per_sm;
  }();
  return grid;
}

/// Queues the kernel on `stream` with `blocks` blocks (0: the persistent
/// grid of decode_grid; tests pass small grids so that warps get many items).
template <int S, class Sink, class Out>
status launch_decode(const device_tensor_view& v, const std::uint32_t* table, Out* out, std::uint32_t* flags,
                     cudaStream_t stream, item_order order, int blocks) {
  using D = decode_warp_decoder<S>;
  const int grid = decode_grid<D, Sink, Out>();
  if (grid == 0 || blocks < 0) return status::device_error;
  decode_kernel<D, Sink, Out><<<blocks > 0 ? blocks : grid, decode_block_warps * 32, decode_shared_bytes<D, Sink>(),
                                stream>>>(v, table, out, flags, order);
  return cudaGetLastError() == cudaSuccess ? status::ok : status::device_error;
}

/// A decode with the sink, item order and grid as parameters (decode_codes
/// passes interleaved, 0; the tests and gpu_load_bench the others).
template <class Sink, class Out>
status dispatch_decode(const device_tensor_view& v, const std::uint32_t* table, Out* out, std::uint32_t* flags,
                       cudaStream_t stream, item_order order = item_order::interleaved, int blocks = 0) {
  if (v.parts() != 1) return status::invalid_argument;
  switch (v.scale_bits) {
    case 10: return launch_decode<10, Sink>(v, table, out, flags, stream, order, blocks);
    case 11: return launch_decode<11, Sink>(v, table, out, flags, stream, order, blocks);
    case 12: return launch_decode<12, Sink>(v, table, out, flags, stream, order, blocks);
    default: return status::unsupported_parameters;
  }
}

/// decode_bf16's sink at ScaleBits S: the 128-byte stage where it keeps as
/// many blocks per SM as the 64-byte stage (on an H200: S <= 11, a table of
/// at most 8 KB), else the 64-byte stage (S = 12: with a 16 KB table one
/// 128-byte-stage block fits an SM, and one block per SM measured 11% slower
/// than two with the 64-byte stage; the 128-byte stage at one block per SM
/// was not measured).
template <int S>
status launch_bf16(const device_tensor_view& v, std::uint16_t* out, std::uint32_t* flags, cudaStream_t stream) {
  using D = decode_warp_decoder<S>;
  using lines = bf16_store_sink<row_stage128>;
  using halves = bf16_store_sink<row_stage64>;
  if (decode_grid<D, lines, std::uint16_t>() >= decode_grid<D, halves, std::uint16_t>())
    return launch_decode<S, lines>(v, v.table, out, flags, stream, item_order::interleaved, 0);
  return launch_decode<S, halves>(v, v.table, out, flags, stream, item_order::interleaved, 0);
}

}  // namespace detail

/// Queues the decode of a scheme 9 tensor into 4-bit codes (see the file
/// comment) on `stream`. out: rows * cols / 2 bytes of device memory.
/// flags: device memory ORed with 1 if a stream is inconsistent, or null.
/// @return status::ok (queued); status::invalid_argument if v is not scheme
///         9 or has K split; status::device_error if the launch failed.
inline status decode_codes(const device_tensor_view& v, std::uint8_t* out, std::uint32_t* flags, cudaStream_t stream) {
  if (v.scheme_id != gpu_layout::affine4_scheme) return status::invalid_argument;
  return detail::dispatch_decode<detail::code_store_sink>(v, v.code_table, out, flags, stream);
}

/// Queues the decode of a scheme 8 tensor into its bf16 bit patterns on
/// `stream`. out: rows * cols u16 of device memory; flags as decode_codes.
/// @return as decode_codes, for scheme 8.
inline status decode_bf16(const device_tensor_view& v, std::uint16_t* out, std::uint32_t* flags, cudaStream_t stream) {
  if (v.scheme_id != gpu_layout::bf16_pairs_scheme) return status::invalid_argument;
  if (v.parts() != 1) return status::invalid_argument;
  switch (v.scale_bits) {
    case 10: return detail::launch_bf16<10>(v, out, flags, stream);
    case 11: return detail::launch_bf16<11>(v, out, flags, stream);
    case 12: return detail::launch_bf16<12>(v, out, flags, stream);
    default: return status::unsupported_parameters;
  }
}

/// Waits for `stream` and reads the flags word of earlier decodes.
/// @return status::ok; status::corrupt_stream if a decode flagged a stream;
///         status::device_error if a CUDA call (or queued work) failed.
inline status read_decode_flags(const std::uint32_t* flags, cudaStream_t stream) {
  std::uint32_t h = 0;
  if (cudaMemcpyAsync(&h, flags, 4, cudaMemcpyDeviceToHost, stream) != cudaSuccess ||
      cudaStreamSynchronize(stream) != cudaSuccess)
    return status::device_error;
  return h == 0 ? status::ok : status::corrupt_stream;
}

ECQ_NAMESPACE_END

#endif  // ECQ_DEVICE_DECODE_CUH
