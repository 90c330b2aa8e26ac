// ecq/block_decode.cuh — READ ME FIRST
//
// Block-level decoding (CUDA only): BlockWarps warps share one decode table
// in shared memory and each decodes its own range of work items with a
// warp_decoder (ecq/warp_decode.cuh); a work item is WarpDecoder::ways
// streams (tiles) decoded in lockstep, streams item * ways .. + ways - 1. The usual kernel is persistent: one
// block per multiprocessor, the table loaded once, and every warp of the
// grid given a contiguous range of items (warp_item_range), so each warp's
// word ring runs from one tile into the next without a stall.
//
// Sinks see, per warp:
//   sink.begin_tile(item)         before the item's first round
//   sink.begin_block(item, block) before each block of rounds_per_block rounds
//   sink.step(k, way, entry)      after round k of the block (a constant once
//                                 unrolled) of stream `way` of the item
//   sink.end_block(item, block)   after each block of rounds
//   sink.end_tile(item)           after the item's last round
// All are called by every lane of the warp (warp-uniform control flow),
// so a sink may use warp collectives.
//
// TempStorage holds the table (2^S * Replicas entries) and one word ring per
// warp; put it in (dynamic) shared memory:
//   sizeof(TempStorage) = 4 * 2^S * Replicas + BlockWarps * sizeof(ring)
//
// Example (complete kernel; `decoder`, `streams` and a sink `store` as in
// ecq/warp_decode.cuh's example):
//
//   using block = ecq::block_decoder<8, decoder>;
//   __global__ void __launch_bounds__(256) k(streams s, const std::uint32_t* table, std::uint32_t items, store sink) {
//     extern __shared__ uint4 smem[];
//     auto& tmp = *reinterpret_cast<block::TempStorage*>(smem);
//     block b(tmp);
//     b.load_table(table);                                  // all threads, ends in __syncthreads()
//     const auto r = ecq::warp_item_range(items, blockIdx.x * 8 + threadIdx.x / 32, gridDim.x * 8);
//     b.decode(s, r.first, r.last, sink);                   // per warp
//   }
//   // host: cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, sizeof(block::TempStorage));
//   //       k<<<num_sms, 256, sizeof(block::TempStorage)>>>(...);
#ifndef ECQ_BLOCK_DECODE_CUH
#define ECQ_BLOCK_DECODE_CUH

#include <cstdint>

#include "config.hpp"
#include "warp_decode.cuh"

ECQ_NAMESPACE_BEGIN

/// Items [first, last) of one warp.
struct item_range {
  std::uint32_t first;
  std::uint32_t last;
};

/// Splits `items` into `num_warps` contiguous ranges whose sizes differ by at
/// most one; @return the range of warp `warp`.
ECQ_HOST_DEVICE inline item_range warp_item_range(std::uint32_t items, std::uint32_t warp, std::uint32_t num_warps) {
  return {std::uint32_t(std::uint64_t(items) * warp / num_warps),
          std::uint32_t(std::uint64_t(items) * (warp + 1) / num_warps)};
}

/// @tparam BlockWarps   warps per thread block (the block is 1-D, BlockWarps * 32 threads)
/// @tparam WarpDecoder  warp_decoder<...>
template <int BlockWarps, class WarpDecoder>
class block_decoder {
  static_assert(BlockWarps >= 1 && BlockWarps <= 32, "BlockWarps must be in [1, 32]");

 public:
  static constexpr int block_threads = BlockWarps * 32;
  static constexpr int replicas = WarpDecoder::replicas;
  static constexpr std::uint32_t table_slots = std::uint32_t(1) << WarpDecoder::params::scale_bits;

  struct TempStorage {
    alignas(16) std::uint32_t table[WarpDecoder::table_entries];
    typename WarpDecoder::TempStorage warp[BlockWarps];
  };

  ECQ_DEVICE explicit block_decoder(TempStorage& storage) : storage_(storage) {}

  /// Copies the 2^S entries at `entries` (device memory) into every replica.
  /// All threads of the block; ends with __syncthreads().
  ECQ_DEVICE void load_table(const std::uint32_t* entries) {
    for (std::uint32_t i = threadIdx.x; i < table_slots; i += block_threads) {
      const std::uint32_t e = entries[i];
      ECQ_PRAGMA_UNROLL
      for (int r = 0; r < replicas; ++r) storage_.table[i * replicas + std::uint32_t(r)] = e;
    }
    __syncthreads();
  }

  /// Decodes work items [first, last) with this thread's warp, feeding
  /// `sink` (see the file comment). Whole warp; different warps may pass
  /// different ranges. Preconditions: load_table done; the streams of an
  /// item have equal rounds, a multiple of WarpDecoder::rounds_per_block.
  template <class Streams, class Sink>
  ECQ_DEVICE void decode(const Streams& streams, std::uint32_t first, std::uint32_t last, Sink& sink) {
    if (first >= last) return;
    WarpDecoder d(storage_.warp[threadIdx.x / 32], storage_.table);
    d.start(streams, first, last);
    for (std::uint32_t item = first; item < last; ++item) {
      const tile_stream_view s = streams(item * std::uint32_t(WarpDecoder::ways));
      d.begin_tile(streams);
      sink.begin_tile(item);
      const std::uint32_t blocks = s.rounds / std::uint32_t(WarpDecoder::rounds_per_block);
      for (std::uint32_t b = 0; b < blocks; ++b) {
        sink.begin_block(item, b);
        d.decode_block(streams, sink);
        sink.end_block(item, b);
      }
      d.end_tile(streams, item);
      sink.end_tile(item);
    }
  }

 private:
  TempStorage& storage_;
};

ECQ_NAMESPACE_END

#endif  // ECQ_BLOCK_DECODE_CUH
