// bench/cuda/reference_kernels.cuh — READ ME FIRST
//
// The kernels the GPU benchmark (gpu_bench.cu) and the GPU tests run, built on
// the collectives of include/ecq/*.cuh:
//   fused_gemv_kernel      persistent block_fused_gemv (bf16 pairs or affine-4)
//   decode_nibbles_kernel  decode-to-memory of 4-bit codes (row-major nibbles)
//   decode_bf16_kernel     decode-to-memory of lossless bf16 (row-major bf16)
//   plain_w4_gemv_kernel   the baseline: the same affine-4 codes stored plainly
//                          (4 bits each, no entropy coding), same scales, same
//                          tensor-core dot and persistent item split
//   plain_w4_rowmajor_gemv_kernel  the plain baseline an engine would run at
//                          batch 1: row-major nibbles, PRMT dequantisation to
//                          fp32 (128 + q by a magic exponent, as Marlin does
//                          for fp16), FFMA, no tensor cores
//   plain_w4_mma_gemv_kernel  the same codes in an offline-permuted layout
//                          (as Marlin permutes its weights): one 32-bit word
//                          per lane is one m16n8k16 A fragment, dequantised
//                          by LOP3 magic numbers to bf16x2, tensor-core dot,
//                          weights streamed through a per-warp cp.async ring
// Items are 32 rows x chunk_cols columns (tile_codec.hpp); each block serves
// one K-part (all of K for small batches) and splits its part's items over
// its warps; see part_of_block.
#ifndef ECQ_BENCH_CUDA_REFERENCE_KERNELS_CUH
#define ECQ_BENCH_CUDA_REFERENCE_KERNELS_CUH

#include <cstdint>
#include <vector>

#include <ecq/block_decode.cuh>
#include <ecq/fused_gemv.cuh>
#include <ecq/gemv_dequant.cuh>
#include <ecq/warp_decode.cuh>
#include <ecq/warp_row_dot.cuh>

namespace ecq_bench {

/// n / d for n < 2^24 by multiply and shift (the divisor is a kernel
/// argument, and integer division costs ~35 instructions).
struct fast_div {
  std::uint32_t d = 1, mul = 0, shift = 0;
  /// Powers of two shift (mul = 0); otherwise mul = ceil(2^(31 + l) / d) with
  /// 2^(l-1) < d < 2^l, exact for n < 2^31 (Granlund-Montgomery).
  static fast_div of(std::uint32_t d) {
    fast_div f;
    f.d = d;
    std::uint32_t l = 0;
    while ((std::uint64_t(1) << l) < d) ++l;
    if ((std::uint64_t(1) << l) == d) {
      f.shift = l;
    } else {
      f.shift = l - 1;
      f.mul = std::uint32_t(((std::uint64_t(1) << (31 + l)) + d - 1) / d);
    }
    return f;
  }
  __host__ __device__ __forceinline__ std::uint32_t div(std::uint32_t n) const {
#if defined(__CUDA_ARCH__)
    return mul == 0 ? n >> shift : __umulhi(n, mul) >> shift;
#else
    return mul == 0 ? n >> shift : std::uint32_t((std::uint64_t(n) * mul) >> 32) >> shift;
#endif
  }
};

/// Session 7 prototype (issue #13), not a file format: lossless bf16 split at
/// the byte boundary. The pair symbol codes the two weights' high bytes (sign
/// and the exponent's top 7 bits; payload h0 | h1 << 8 in the narrow entry's
/// bytes 0 and 2), the raw unit holds the low bytes (the exponent's last bit
/// and the mantissa) where bf16_pair_dequant holds its sign | mantissa bytes
/// (tile_codec.hpp's make_bf16_pairs with high_byte). One PRMT of the entry and
/// the raw word builds the bf16x2, where the field split takes PRMT, shift and
/// LOP3; the high bytes cost ~1.35% more coded bits (docs/cuda-notes.md).
struct bf16_byte_split_dequant {
  static constexpr int weights_per_round = 2;
  static constexpr int raw_bits_per_round = 16;
  static constexpr int rounds_per_unit = 8;
  static constexpr int unit_words = 4;
  static constexpr int group_size = 0;
  static constexpr std::uint32_t payload(std::uint32_t h0, std::uint32_t h1) { return h0 | (h1 << 8); }
  __host__ __device__ static constexpr float column_scale(std::uint32_t) { return 1.0f; }
  /// (weight 2c, weight 2c+1) = (lo0 | h0 << 8, lo1 | h1 << 8): bytes 4/6 and 5/7 of the raw word for even/odd k.
  __device__ __forceinline__ static std::uint32_t fragment(std::uint32_t entry, const std::uint32_t* raw, int k) {
    return ecq::detail::prmt(entry, raw[k / 2], (k & 1) ? 0x2706u : 0x2504u);
  }
};

/// Items of a matrix as the collectives see them. Items are enumerated
/// part-major (part, tile, chunk of the part) so that a K-part's items are
/// contiguous; storage is in (tile, chunk) order.
struct bench_tiles {
  const std::uint16_t* words;
  const std::uint32_t* offset;
  const std::uint32_t* count;
  const std::uint32_t* raw;    // per stored item: raw_words words
  const std::uint32_t* side;   // per stored item: side_words words (null without groups)
  std::uint32_t raw_words, side_words;
  std::uint32_t rounds, tiles, chunks, chunk_cols, chunks_per_part, tile_rows;
  fast_div by_per_part, by_chunks_per_part, by_chunks;

  /// The geometry fields (pointers and per-item word counts left zero) of a
  /// matrix of `tiles` row tiles of tile_rows rows x `chunks` chunks of
  /// chunk_cols weight columns (`rounds` symbol columns), K split in `parts`.
  static bench_tiles geometry(std::uint32_t tiles, std::uint32_t chunks, std::uint32_t chunk_cols,
                              std::uint32_t rounds, std::uint32_t tile_rows, std::uint32_t parts) {
    bench_tiles t{};
    t.rounds = rounds;
    t.tiles = tiles;
    t.chunks = chunks;
    t.chunk_cols = chunk_cols;
    t.tile_rows = tile_rows;
    t.chunks_per_part = chunks / parts;
    t.by_per_part = fast_div::of(tiles * t.chunks_per_part);
    t.by_chunks_per_part = fast_div::of(t.chunks_per_part);
    t.by_chunks = fast_div::of(chunks);
    return t;
  }

  __device__ __forceinline__ std::uint32_t stored(std::uint32_t i, std::uint32_t* column_in_part) const {
    const std::uint32_t part = by_per_part.div(i), rem = i - part * by_per_part.d;
    const std::uint32_t tile = by_chunks_per_part.div(rem), c = rem - tile * chunks_per_part;
    *column_in_part = c * chunk_cols;
    return tile * chunks + part * chunks_per_part + c;
  }
  __device__ __forceinline__ ecq::tile_stream_view operator()(std::uint32_t i) const {
    std::uint32_t col;
    const std::uint32_t s = stored(i, &col);
    return {words + offset[s], count[s], rounds};
  }
  __device__ __forceinline__ ecq::gemv_tile tile(std::uint32_t i) const {
    std::uint32_t col;
    const std::uint32_t s = stored(i, &col);
    return {raw + std::size_t(s) * raw_words, side ? side + std::size_t(s) * side_words : nullptr,
            by_chunks.div(s) * tile_rows, col};
  }
  __host__ __device__ __forceinline__ std::uint32_t items_per_part() const { return tiles * chunks_per_part; }
  /// Absolute first column of item i.
  __device__ __forceinline__ std::uint32_t column(std::uint32_t i) const {
    std::uint32_t col;
    const std::uint32_t s = stored(i, &col);
    return (s - by_chunks.div(s) * chunks) * chunk_cols;
  }
};

/// This warp's range of work items (Ways streams each): blocks are split
/// evenly over `parts`, and the first `static_items` items of a part evenly
/// over its blocks' warps.
template <int BlockWarps, int Ways>
__device__ __forceinline__ ecq::item_range part_of_block(const bench_tiles& t, std::uint32_t parts,
                                                         std::uint32_t static_items, std::uint32_t* part) {
  const std::uint32_t blocks_per_part = gridDim.x / parts;
  const std::uint32_t per_part = t.items_per_part() / Ways;
  *part = blockIdx.x / blocks_per_part;
  const std::uint32_t warp = (blockIdx.x % blocks_per_part) * BlockWarps + threadIdx.x / 32;
  ecq::item_range r = ecq::warp_item_range(static_items, warp, blocks_per_part * BlockWarps);
  r.first += *part * per_part;
  r.last += *part * per_part;
  return r;
}

/// %globaltimer (ns).
__device__ __forceinline__ std::uint64_t global_ns() {
  std::uint64_t t;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

/// Work split: the first `static_items` items of each K-part go to its warps
/// in contiguous ranges (all of them with static_items = items per part);
/// the rest are taken one at a time through pool[part] (zeroed before the
/// launch) by the warps that finish first. The scheduler does not serve the
/// warps of an SM evenly (docs/cuda-notes.md, v8), so a purely static split
/// leaves the last stretch of a launch to a few warps.
/// With `timeline` (else null) lane 0 of each warp records {block start,
/// decode start, end, SM} as 4 words at timeline[4 * global warp]: where the
/// time of a launch goes (staging, decoding, the tail of the last warps).
template <int BlockWarps, int MinBlocks, class WarpDecoder, class Dequant, int Batch>
__global__ void __launch_bounds__(BlockWarps * 32, MinBlocks)
    fused_gemv_kernel(bench_tiles t, const std::uint32_t* table, const std::uint16_t* x, std::uint32_t K,
                      std::uint32_t parts, float* y, std::uint32_t M, std::uint32_t static_items,
                      std::uint32_t* pool, std::uint64_t* timeline) {
  using gemv = ecq::block_fused_gemv<BlockWarps, WarpDecoder, Dequant, Batch>;
  extern __shared__ uint4 smem[];
  const std::uint64_t t0 = timeline ? global_ns() : 0;
  std::uint32_t part;
  const ecq::item_range r = part_of_block<BlockWarps, WarpDecoder::ways>(t, parts, static_items, &part);
  const std::uint32_t columns = t.chunks_per_part * t.chunk_cols;
  gemv g(smem, columns);
  g.load(table, x, K, part * columns);
  const std::uint64_t t1 = timeline ? global_ns() : 0;
  g.run(t, r.first, r.last, y, M);
  const std::uint32_t per_part = t.items_per_part() / WarpDecoder::ways;
  while (pool != nullptr) {
    std::uint32_t i = 0;
    if (ecq::detail::lane_id() == 0) i = atomicAdd(pool + part, 1u);
    i = static_items + __shfl_sync(0xffffffffu, i, 0);
    if (i >= per_part) break;
    g.run(t, part * per_part + i, part * per_part + i + 1, y, M);
  }
  if (timeline && ecq::detail::lane_id() == 0) {
    std::uint32_t sm;
    asm("mov.u32 %0, %%smid;" : "=r"(sm));
    std::uint64_t* rec = timeline + 4 * (std::size_t(blockIdx.x) * BlockWarps + threadIdx.x / 32);
    rec[0] = t0;
    rec[1] = t1;
    rec[2] = global_ns();
    rec[3] = sm;
  }
}

/// Row-major output of a warp's 32-row tile, staged in shared memory: each
/// lane puts 16-byte pieces of its own row (put), and every RowBytes a row
/// the warp writes the 32 rows' RowBytes contiguously (flush): RowBytes / 16
/// lanes a row, 512 / RowBytes rows per store instruction, instead of 32
/// rows' half sectors per instruction. Rows are padded by 16 bytes so that
/// the 16-byte puts of 8 consecutive lanes (one shared-memory wavefront)
/// fall in different banks. RowBytes 128 writes whole L2 lines; 64 halves
/// the buffer (4.5 -> 2.5 KB per warp) so that more warps fit an SM.
template <int RowBytes>
struct row_stage {
  static_assert(RowBytes == 64 || RowBytes == 128, "RowBytes must be 64 or 128");
  static constexpr std::uint32_t row_bytes = RowBytes;
  static constexpr std::uint32_t pitch = RowBytes + 16;
  struct TempStorage {
    alignas(16) std::uint8_t bytes[32 * pitch];
  };
  std::uint8_t* buf = nullptr;

  /// This lane's 16 bytes at byte `offset` (< RowBytes, a multiple of 16) of its row.
  __device__ __forceinline__ void put(std::uint32_t offset, const uint4& v) {
    *reinterpret_cast<uint4*>(buf + ecq::detail::lane_id() * pitch + offset) = v;
  }
  /// Writes the 32 staged rows' RowBytes to row0 + r * row_stride (16-byte
  /// aligned). Whole warp.
  __device__ __forceinline__ void flush(std::uint8_t* row0, std::size_t row_stride) {
    constexpr std::uint32_t lanes_per_row = RowBytes / 16, rows_per_store = 32 / lanes_per_row;
    __syncwarp();
    const std::uint32_t lane = ecq::detail::lane_id(), c = (lane % lanes_per_row) * 16;
#pragma unroll
    for (std::uint32_t j = 0; j < lanes_per_row; ++j) {
      const std::uint32_t r = rows_per_store * j + lane / lanes_per_row;
      *reinterpret_cast<uint4*>(row0 + r * row_stride + c) = *reinterpret_cast<const uint4*>(buf + r * pitch + c);
    }
    __syncwarp();  // the next puts overwrite what was just read
  }
};

/// 4-bit codes of symbol_packing<4, 4, 2> symbols -> row-major nibbles. The
/// table's payload is h0 << 2 | h1 << 6 | (h2 << 2 | h3 << 6) << 8
/// (nibble_payload). A block of 8 rounds is 16 bytes of a lane's row;
/// RowBytes / 16 blocks go out through a row_stage, so an item's rounds must
/// be a multiple of RowBytes / 2.
template <int Rounds, int Ways, int RowBytes = 128>
struct nibble_store_sink {
  static_assert(Rounds == 8, "a block of 8 rounds is 16 bytes of a row");
  using stage_type = row_stage<RowBytes>;
  static constexpr std::uint32_t blocks_per_flush = RowBytes / 16;
  struct TempStorage {
    typename stage_type::TempStorage way[Ways];
  };
  const bench_tiles& t;
  std::uint8_t* out;
  std::uint32_t K;
  ecq::raw_pipeline<2, Rounds, Ways, bench_tiles> raw[Ways];
  stage_type stage[Ways];
  std::uint8_t* seg_out[Ways] = {};
  std::uint32_t codes[Ways][4] = {};

  __host__ __device__ static constexpr std::uint32_t nibble_payload(std::uint32_t s) {
    return ((s & 3u) << 2) | (((s >> 2) & 3u) << 6) | ((((s >> 4) & 3u) << 2) << 8) | (((s >> 6) & 3u) << 14);
  }
  __device__ nibble_store_sink(const bench_tiles& tiles, TempStorage& storage, std::uint8_t* o, std::uint32_t k,
                               std::uint32_t first, std::uint32_t last)
      : t(tiles), out(o), K(k) {
    for (int w = 0; w < Ways; ++w) {
      raw[w] = ecq::raw_pipeline<2, Rounds, Ways, bench_tiles>(tiles, first, last, w);
      stage[w].buf = storage.way[w].bytes;
    }
  }
  __device__ __forceinline__ void begin_tile(std::uint32_t) {}
  __device__ __forceinline__ void begin_block(std::uint32_t item, std::uint32_t block) {
#pragma unroll
    for (int w = 0; w < Ways; ++w) {
      raw[w].advance();
      const std::uint32_t s = item * Ways + w;
      if (block % blocks_per_flush == 0)
        seg_out[w] = out + std::size_t(t.tile(s).row) * (K / 2) + (t.column(s) + block * Rounds * 4) / 2;
    }
  }
  __device__ __forceinline__ void step(int k, int w, std::uint32_t e) {
    std::uint32_t v = raw[w].words[k / 4] >> (4 * (k % 4));
    v &= 0x000F000Fu;
    v |= v >> 12;  // l0 [0,2) l2 [2,4) l1 [4,6) l3 [6,8)
    const std::uint32_t h = (e & 0xffu) | ((e >> 8) & 0xff00u);
    const std::uint32_t c = (v & 0x33u) | ((v << 6) & 0x3300u) | h;
    if (k % 2 == 0)
      codes[w][k / 2] = c;
    else
      codes[w][k / 2] |= c << 16;
  }
  __device__ __forceinline__ void end_block(std::uint32_t, std::uint32_t block) {
#pragma unroll
    for (int w = 0; w < Ways; ++w) {
      stage[w].put((block % blocks_per_flush) * 16, make_uint4(codes[w][0], codes[w][1], codes[w][2], codes[w][3]));
      if (block % blocks_per_flush == blocks_per_flush - 1) stage[w].flush(seg_out[w], K / 2);
    }
  }
  __device__ __forceinline__ void end_tile(std::uint32_t) {}
};

/// Exponent pairs + raw bytes -> row-major bf16 (bit-exact weights); a block
/// of 8 rounds is 32 bytes of a lane's row; RowBytes / 32 blocks go out
/// through a row_stage, so an item's rounds must be a multiple of RowBytes / 4.
template <int Rounds, int Ways, int RowBytes = 128>
struct bf16_store_sink {
  static_assert(Rounds == 8, "a block of 8 rounds is 32 bytes of a row");
  using stage_type = row_stage<RowBytes>;
  static constexpr std::uint32_t blocks_per_flush = RowBytes / 32;
  struct TempStorage {
    typename stage_type::TempStorage way[Ways];
  };
  const bench_tiles& t;
  std::uint16_t* out;
  std::uint32_t K;
  ecq::raw_pipeline<4, Rounds, Ways, bench_tiles> raw[Ways];
  stage_type stage[Ways];
  std::uint16_t* seg_out[Ways] = {};
  std::uint32_t w8[Ways][8] = {};

  __device__ bf16_store_sink(const bench_tiles& tiles, TempStorage& storage, std::uint16_t* o, std::uint32_t k,
                             std::uint32_t first, std::uint32_t last)
      : t(tiles), out(o), K(k) {
    for (int w = 0; w < Ways; ++w) {
      raw[w] = ecq::raw_pipeline<4, Rounds, Ways, bench_tiles>(tiles, first, last, w);
      stage[w].buf = storage.way[w].bytes;
    }
  }
  __device__ __forceinline__ void begin_tile(std::uint32_t) {}
  __device__ __forceinline__ void begin_block(std::uint32_t item, std::uint32_t block) {
#pragma unroll
    for (int w = 0; w < Ways; ++w) {
      raw[w].advance();
      const std::uint32_t s = item * Ways + w;
      if (block % blocks_per_flush == 0)
        seg_out[w] = out + std::size_t(t.tile(s).row) * K + t.column(s) + block * Rounds * 2;
    }
  }
  __device__ __forceinline__ void step(int k, int w, std::uint32_t e) {
    w8[w][k] = ecq::bf16_pair_dequant::fragment(e, raw[w].words, k);
  }
  __device__ __forceinline__ void end_block(std::uint32_t, std::uint32_t block) {
#pragma unroll
    for (int w = 0; w < Ways; ++w) {
      const std::uint32_t at = (block % blocks_per_flush) * 32;
      stage[w].put(at, make_uint4(w8[w][0], w8[w][1], w8[w][2], w8[w][3]));
      stage[w].put(at + 16, make_uint4(w8[w][4], w8[w][5], w8[w][6], w8[w][7]));
      if (block % blocks_per_flush == blocks_per_flush - 1)
        stage[w].flush(reinterpret_cast<std::uint8_t*>(seg_out[w]), std::size_t(K) * 2);
    }
  }
  __device__ __forceinline__ void end_tile(std::uint32_t) {}
};

/// Dynamic shared memory of decode_nibbles_kernel / decode_bf16_kernel.
template <int BlockWarps, class WarpDecoder, class Sink>
constexpr std::size_t decode_shared_bytes() {
  return sizeof(typename ecq::block_decoder<BlockWarps, WarpDecoder>::TempStorage) +
         BlockWarps * sizeof(typename Sink::TempStorage);
}

template <int BlockWarps, int MinBlocks, class WarpDecoder, int RowBytes = 128>
__global__ void __launch_bounds__(BlockWarps * 32, MinBlocks)
    decode_nibbles_kernel(bench_tiles t, const std::uint32_t* table, std::uint8_t* out, std::uint32_t K) {
  using block = ecq::block_decoder<BlockWarps, WarpDecoder>;
  extern __shared__ uint4 smem[];
  block b(*reinterpret_cast<typename block::TempStorage*>(smem));
  b.load_table(table);
  std::uint32_t part;
  const ecq::item_range r = part_of_block<BlockWarps, WarpDecoder::ways>(t, 1, t.items_per_part() / WarpDecoder::ways, &part);
  using sink_type = nibble_store_sink<WarpDecoder::rounds_per_block, WarpDecoder::ways, RowBytes>;
  auto* st = reinterpret_cast<typename sink_type::TempStorage*>(reinterpret_cast<unsigned char*>(smem) +
                                                                sizeof(typename block::TempStorage));
  sink_type sink(t, st[threadIdx.x / 32], out, K, r.first, r.last);
  b.decode(t, r.first, r.last, sink);
}

template <int BlockWarps, int MinBlocks, class WarpDecoder, int RowBytes = 128>
__global__ void __launch_bounds__(BlockWarps * 32, MinBlocks)
    decode_bf16_kernel(bench_tiles t, const std::uint32_t* table, std::uint16_t* out, std::uint32_t K) {
  using block = ecq::block_decoder<BlockWarps, WarpDecoder>;
  extern __shared__ uint4 smem[];
  block b(*reinterpret_cast<typename block::TempStorage*>(smem));
  b.load_table(table);
  std::uint32_t part;
  const ecq::item_range r = part_of_block<BlockWarps, WarpDecoder::ways>(t, 1, t.items_per_part() / WarpDecoder::ways, &part);
  using sink_type = bf16_store_sink<WarpDecoder::rounds_per_block, WarpDecoder::ways, RowBytes>;
  auto* st = reinterpret_cast<typename sink_type::TempStorage*>(reinterpret_cast<unsigned char*>(smem) +
                                                                sizeof(typename block::TempStorage));
  sink_type sink(t, st[threadIdx.x / 32], out, K, r.first, r.last);
  b.decode(t, r.first, r.last, sink);
}

/// The plain 4-bit baseline. Per item and lane: chunk_cols / 32 uint4 of 32
/// codes (nibble j of the unit = column 32u + j), plus the same side data as
/// the fused kernel. Fragments per quad (columns c0..c3 = two bytes B0, B1):
/// P = B0 | B1 << 16; b0 = (128 + q0, 128 + q2), b1 = (128 + 8 q1, 128 + 8 q3)
/// (q1 and q3 one bit up, so a single shift serves both), so the staged A
/// records of a quad hold (x0, x2) and (x1 / 8, x3 / 8).
template <int BlockWarps, int Batch, int Group>
__global__ void __launch_bounds__(BlockWarps * 32)
    plain_w4_gemv_kernel(bench_tiles t, const uint4* plain, std::uint32_t plain_u4, const std::uint16_t* x,
                         std::uint32_t K, std::uint32_t parts, float* y, std::uint32_t M) {
  constexpr int depth = Group / 32;  // uint4 per group and lane; one group in flight
  static_assert(Group % 64 == 0, "Group must be a multiple of 64");
  extern __shared__ uint4 smem[];
  std::uint32_t part;
  const ecq::item_range r = part_of_block<BlockWarps, 1>(t, parts, t.items_per_part(), &part);
  const std::uint32_t columns = t.chunks_per_part * t.chunk_cols, k_begin = part * columns;
  constexpr int records = ecq::warp_row_dot<Batch>::records_per_quad;
  uint4* act = smem;
  float2* consts = reinterpret_cast<float2*>(act + columns / 4 * records);
  // Stage A records: per quad (c0..c3) the fragment order is (x0, x2 | x1/8, x3/8).
  auto pairs = [&](std::uint32_t b, std::uint32_t q, std::uint32_t* p02, std::uint32_t* p13) {
    if (b >= std::uint32_t(Batch)) {
      *p02 = *p13 = 0;
      return;
    }
    const std::uint16_t* src = x + std::size_t(b) * K + k_begin + 4 * q;
    const float x0 = ecq::detail::bf16_bits_to_float(src[0]), x1 = ecq::detail::bf16_bits_to_float(src[1]);
    const float x2 = ecq::detail::bf16_bits_to_float(src[2]), x3 = ecq::detail::bf16_bits_to_float(src[3]);
    *p02 = ecq::detail::float_to_bf16_bits_exact(x0) | (ecq::detail::float_to_bf16_bits_exact(x2) << 16);
    *p13 = ecq::detail::float_to_bf16_bits_exact(x1 * 0.125f) | (ecq::detail::float_to_bf16_bits_exact(x3 * 0.125f) << 16);
  };
  for (std::uint32_t i = threadIdx.x; i < columns / 4 * records; i += BlockWarps * 32) {
    const std::uint32_t q = i / records, rr = i % records, lo = 4 * (rr / 2) + rr % 2;
    std::uint32_t a, b, c, d;
    pairs(lo, q, &a, &b);
    pairs(lo + 2, q, &c, &d);
    act[i] = ecq::warp_row_dot<Batch>::make_record(a, b, c, d);
  }
  {
    const std::uint32_t lane = ecq::detail::lane_id(), warp = threadIdx.x / 32;
    for (std::uint32_t p = warp; p < columns / Group * Batch; p += BlockWarps) {
      const std::uint32_t g = p / Batch, b = p % Batch;
      float sx = 0.0f, sxs = 0.0f;
      for (std::uint32_t c = lane; c < std::uint32_t(Group); c += 32) {
        const float v = ecq::detail::bf16_bits_to_float(x[std::size_t(b) * K + k_begin + g * Group + c]);
        sx += v;
        sxs += (c & 1u) ? v * 0.125f : v;
      }
      for (int o = 16; o > 0; o /= 2) {
        sx += __shfl_xor_sync(0xffffffffu, sx, o);
        sxs += __shfl_xor_sync(0xffffffffu, sxs, o);
      }
      if (lane == 0) consts[p] = make_float2(128.0f * sxs, sx);
    }
  }
  __syncthreads();
  if (r.first >= r.last) return;

  ecq::warp_row_dot<Batch> dot;
  float acc[(Batch + 3) / 4][4] = {};
  const std::uint32_t lane = ecq::detail::lane_id();
  const std::uint32_t groups_per_item = t.chunk_cols / Group;
  // Pipeline over (item, group): the next group's units are loaded while
  // the current one is computed.
  std::uint32_t load_item = r.first, load_group = 0;
  uint4 next[depth];
  std::uint32_t next_side[2];
  auto load = [&]() {
    const ecq::gemv_tile g = t.tile(load_item);
    std::uint32_t col;
    const std::uint32_t s = t.stored(load_item, &col);
    const uint4* src = plain + std::size_t(s) * plain_u4 + std::size_t(load_group) * depth * 32 + lane;
    for (int u = 0; u < depth; ++u) next[u] = ecq::detail::load_streaming(src + u * 32);
    next_side[0] = g.side[load_group * 32 + dot.row_of(0)];
    next_side[1] = g.side[load_group * 32 + dot.row_of(1)];
    if (++load_group == groups_per_item) {
      load_group = 0;
      ++load_item;
    }
  };
  load();
  for (std::uint32_t item = r.first; item < r.last; ++item) {
    const ecq::gemv_tile g = t.tile(item);
    for (std::uint32_t grp = 0; grp < groups_per_item; ++grp) {
      uint4 cur[depth];
      for (int u = 0; u < depth; ++u) cur[u] = next[u];
      const std::uint32_t side[2] = {next_side[0], next_side[1]};
      if (load_item < r.last) load();
      const uint4* a = act + std::size_t(g.column + grp * Group) / 4 * records;
#pragma unroll
      for (int u = 0; u < depth; ++u) {
        const std::uint32_t w4[4] = {cur[u].x, cur[u].y, cur[u].z, cur[u].w};
#pragma unroll
        for (int j = 0; j < 4; ++j) {
#pragma unroll
          for (int q = 0; q < 2; ++q) {
            dot.load_activations(a + (8 * u + 2 * j + q) * records);
            const std::uint32_t p = ecq::detail::prmt(w4[j], 0u, q ? 0x4342u : 0x4140u);
            const std::uint32_t b0 = (p & 0x000F000Fu) | 0x43004300u;
            const std::uint32_t b1 = ((p >> 1) & 0x00780078u) | 0x43004300u;
            dot.mma(b0, b1);
          }
        }
      }
      const std::uint32_t gcol = (g.column + grp * Group) / Group;
#pragma unroll
      for (int s = 0; s < dot.sets; ++s)
#pragma unroll
        for (int i = 0; i < 4; ++i) {
          if (!dot.holds(s, i, Batch)) continue;
          const float2 c = consts[gcol * Batch + dot.batch_of(s, i)];
          const float scale = ecq::detail::bf16_bits_to_float(side[i & 1] & 0xffffu);
          const float bias = ecq::detail::bf16_bits_to_float(side[i & 1] >> 16);
          acc[s][i] = fmaf(scale, dot.d[s][i] - c.x, fmaf(bias, c.y, acc[s][i]));
        }
      dot.zero();
    }
    if (item + 1 < r.last && t.tile(item + 1).row == g.row) continue;
#pragma unroll
    for (int s = 0; s < dot.sets; ++s)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        if (dot.holds(s, i, Batch)) atomicAdd(y + dot.batch_of(s, i) * M + g.row + dot.row_of(i), acc[s][i]);
        acc[s][i] = 0.0f;
      }
  }
}

/// Shared memory of plain_w4_gemv_kernel for `columns` staged columns.
template <int Batch, int Group>
constexpr std::size_t plain_w4_shared_bytes(std::uint32_t columns) {
  return std::size_t(columns / 4) * ecq::warp_row_dot<Batch>::records_per_quad * 16 +
         std::size_t(columns / Group) * Batch * 8;
}

/// plain_w4_rowmajor_gemv_kernel: y = W x at batch 1 for W stored as an engine
/// stores it: row-major codes, two per byte (low nibble = even column), side
/// words row-major [row][K / Group] (bf16 scale | bf16 bias << 16), weight =
/// scale * q + bias. Work unit: 4 rows x 1024 columns; lane l reads 16 bytes
/// (32 codes, columns 32 l .. 32 l + 31 of the slab) of each of the 4 rows, so
/// every load instruction of a warp is 512 contiguous bytes of one row. Units
/// are dealt to warps round-robin (persistent grid); the next unit's 4 x 16
/// bytes and side words are loaded while the current one is computed.
/// Dequantisation without shifts per weight: t0 = w & 0x0F0F0F0F (even
/// columns) and t1 = (w >> 4) & 0x0F0F0F0F (odd), then one PRMT per weight
/// puts a code byte under the exponent byte 0x43: the float 128 + q. Per code:
/// 1 PRMT + 1 FFMA, plus 3 LOP3/SHF per 8 codes; the activations (fp32, staged
/// once per block in shared memory, permuted so that each LDS.128 of a warp
/// reads 512 contiguous bytes) are loaded once per unit for all 4 rows. Per
/// unit and row: y += scale * D + (bias - 128 scale) * S, with D = sum of
/// (128 + q) x and S = sum of x over the lane's 32 columns (staged too); the
/// 4 rows' sums are reduced across the warp in 6 shuffles and added with one
/// atomic per row and unit (y is zeroed before the launch).
/// Slabs = 2: units of 4 rows x 2048 columns (two 16-byte loads per lane and
/// row), so the per-unit work (addresses, reduction, atomics) is paid half as
/// often. Needs K % (1024 Slabs) == 0, M % 4 == 0, Group % 32 == 0.
template <int BlockWarps, int Group, int Slabs = 1>
__global__ void __launch_bounds__(BlockWarps * 32)
    plain_w4_rowmajor_gemv_kernel(const uint4* w, const std::uint32_t* side, const std::uint16_t* x,
                                  std::uint32_t M, std::uint32_t K, float* y) {
  static_assert(Group % 32 == 0, "a lane's 32 columns must lie in one group");
  constexpr std::uint32_t rows = 4;
  extern __shared__ float4 smem_f4[];
  float* xs = reinterpret_cast<float*>(smem_f4);  // K floats, permuted (below)
  float* sx = xs + K;                             // K / 32 sums of 32 columns
  // Column c = 1024 s + 32 l + 8 j + 2 e + p sits at xs[((8 s + 2 j + p) * 32 + l) * 4 + e].
  for (std::uint32_t c = threadIdx.x; c < K; c += BlockWarps * 32) {
    const std::uint32_t s = c >> 10, l = (c >> 5) & 31u, j = (c >> 3) & 3u, e = (c >> 1) & 3u, p = c & 1u;
    xs[((8 * s + 2 * j + p) * 32 + l) * 4 + e] = ecq::detail::bf16_bits_to_float(x[c]);
  }
  for (std::uint32_t seg = threadIdx.x; seg < K / 32; seg += BlockWarps * 32) {
    float a = 0.0f;
    for (std::uint32_t i = 0; i < 32; ++i) a += ecq::detail::bf16_bits_to_float(x[32 * seg + i]);
    sx[seg] = a;
  }
  __syncthreads();
  const std::uint32_t lane = ecq::detail::lane_id();
  const std::uint32_t slabs = K / (1024 * Slabs), units = M / rows * slabs;  // here a slab is Slabs x 1024 columns
  const std::uint32_t warps = gridDim.x * BlockWarps, u4_per_row = K / 32, side_per_row = K / Group;
  const std::uint32_t step_group = warps / slabs, step_slab = warps % slabs;
  std::uint32_t u = blockIdx.x * BlockWarps + threadIdx.x / 32;
  if (u >= units) return;
  std::uint32_t group = u / slabs, slab = u % slabs;  // the unit being loaded
  uint4 next[Slabs][rows];
  std::uint32_t next_side[Slabs][rows];
  auto load = [&]() {
#pragma unroll
    for (int h = 0; h < Slabs; ++h)
#pragma unroll
      for (std::uint32_t r = 0; r < rows; ++r) {
        const std::size_t row = std::size_t(group) * rows + r;
        const std::uint32_t s1024 = slab * Slabs + h;
        next[h][r] = ecq::detail::load_streaming(w + row * u4_per_row + s1024 * 32 + lane);
        next_side[h][r] = ecq::detail::load_streaming1(side + row * side_per_row + (s1024 * 1024 + 32 * lane) / Group);
      }
  };
  load();
  const float4* xs4 = smem_f4;
  for (; u < units; u += warps) {
    const std::uint32_t row0 = group * rows, cur_slab = slab;
    uint4 cur[Slabs][rows];
    std::uint32_t cur_side[Slabs][rows];
#pragma unroll
    for (int h = 0; h < Slabs; ++h)
#pragma unroll
      for (std::uint32_t r = 0; r < rows; ++r) {
        cur[h][r] = next[h][r];
        cur_side[h][r] = next_side[h][r];
      }
    slab += step_slab;
    group += step_group;
    if (slab >= slabs) {
      slab -= slabs;
      ++group;
    }
    if (u + warps < units) load();
    float v[rows] = {};
#pragma unroll
    for (int h = 0; h < Slabs; ++h) {
      const std::uint32_t s1024 = cur_slab * Slabs + h;
      float d[rows] = {};
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const float4 xe = xs4[(8 * s1024 + 2 * j) * 32 + lane], xo = xs4[(8 * s1024 + 2 * j + 1) * 32 + lane];
#pragma unroll
        for (std::uint32_t r = 0; r < rows; ++r) {
          const uint4 c4 = cur[h][r];
          const std::uint32_t word = j == 0 ? c4.x : j == 1 ? c4.y : j == 2 ? c4.z : c4.w;
          const std::uint32_t t0 = word & 0x0F0F0F0Fu, t1 = (word >> 4) & 0x0F0F0F0Fu;
          // prmt(t, 0x43, 0x4b55): byte 3 = 0x43, byte 2 = byte b of t, bytes 1, 0 = 0: the float 128 + code.
          d[r] = fmaf(__uint_as_float(ecq::detail::prmt(t0, 0x43u, 0x4055u)), xe.x, d[r]);
          d[r] = fmaf(__uint_as_float(ecq::detail::prmt(t1, 0x43u, 0x4055u)), xo.x, d[r]);
          d[r] = fmaf(__uint_as_float(ecq::detail::prmt(t0, 0x43u, 0x4155u)), xe.y, d[r]);
          d[r] = fmaf(__uint_as_float(ecq::detail::prmt(t1, 0x43u, 0x4155u)), xo.y, d[r]);
          d[r] = fmaf(__uint_as_float(ecq::detail::prmt(t0, 0x43u, 0x4255u)), xe.z, d[r]);
          d[r] = fmaf(__uint_as_float(ecq::detail::prmt(t1, 0x43u, 0x4255u)), xo.z, d[r]);
          d[r] = fmaf(__uint_as_float(ecq::detail::prmt(t0, 0x43u, 0x4355u)), xe.w, d[r]);
          d[r] = fmaf(__uint_as_float(ecq::detail::prmt(t1, 0x43u, 0x4355u)), xo.w, d[r]);
        }
      }
      const float s_lane = sx[s1024 * 32 + lane];
#pragma unroll
      for (std::uint32_t r = 0; r < rows; ++r) {
        const float scale = ecq::detail::bf16_bits_to_float(cur_side[h][r] & 0xffffu);
        const float bias = ecq::detail::bf16_bits_to_float(cur_side[h][r] >> 16);
        v[r] += fmaf(scale, d[r], fmaf(-128.0f, scale, bias) * s_lane);
      }
    }
    // Transposed reduction: after the first two steps lane l holds row 2 * bit4(l) + bit3(l) of its 8-lane group.
    const bool h4 = (lane & 16u) != 0, h3 = (lane & 8u) != 0;
    const float k0 = (h4 ? v[2] : v[0]) + __shfl_xor_sync(0xffffffffu, h4 ? v[0] : v[2], 16);
    const float k1 = (h4 ? v[3] : v[1]) + __shfl_xor_sync(0xffffffffu, h4 ? v[1] : v[3], 16);
    float k = (h3 ? k1 : k0) + __shfl_xor_sync(0xffffffffu, h3 ? k0 : k1, 8);
    k += __shfl_xor_sync(0xffffffffu, k, 4);
    k += __shfl_xor_sync(0xffffffffu, k, 2);
    k += __shfl_xor_sync(0xffffffffu, k, 1);
    if ((lane & 7u) == 0) atomicAdd(y + row0 + (h4 ? 2 : 0) + (h3 ? 1 : 0), k);
  }
}

/// Shared memory of plain_w4_rowmajor_gemv_kernel.
constexpr std::size_t plain_w4_rowmajor_shared_bytes(std::uint32_t K) { return std::size_t(K) * 4 + K / 32 * 4; }

/// cp.async of 8 bytes (the .ca form: .cg takes 16 only).
__device__ __forceinline__ void cp_async_8(void* smem, const void* gmem) {
  const std::uint32_t s = std::uint32_t(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.ca.shared.global [%0], [%1], 8;\n" ::"r"(s), "l"(gmem) : "memory");
}

/// mbarrier and bulk-copy (TMA) helpers of plain_w4_mma_gemv_kernel.
__device__ __forceinline__ std::uint32_t smem_addr(const void* p) {
  return std::uint32_t(__cvta_generic_to_shared(p));
}
__device__ __forceinline__ void mbar_init(std::uint64_t* bar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;\n" ::"r"(smem_addr(bar)) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(std::uint64_t* bar, std::uint32_t bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(smem_addr(bar)), "r"(bytes) : "memory");
}
__device__ __forceinline__ void bulk_copy(void* dst, const void* src, std::uint32_t bytes, std::uint64_t* bar) {
  asm volatile("cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];\n" ::"r"(
                   smem_addr(dst)),
               "l"(src), "r"(bytes), "r"(smem_addr(bar))
               : "memory");
}
/// Waits until the barrier's phase of parity `parity` has completed (acquire: the copies' bytes are visible).
__device__ __forceinline__ void mbar_wait(std::uint64_t* bar, std::uint32_t parity) {
  std::uint32_t done = 0;
  do {
    asm volatile("{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n selp.u32 %0, 1, 0, p;\n}\n"
                 : "=r"(done)
                 : "r"(smem_addr(bar)), "r"(parity)
                 : "memory");
  } while (!done);
}

/// plain_w4_mma_gemv_kernel: y = W x for batch 1..8, W the affine 4-bit codes
/// of plain_w4_rowmajor_gemv_kernel (group 128, bf16 scale | bias << 16 per
/// row and group) in the layout of plain_w4_mma_layout (below): for 16-row
/// tile T, 64-column chunk c and lane l = 4g + t, 16 bytes = 4 words, word j
/// (k-step s = 4c + j, columns 16s..16s+15) holding the lane's m16n8k16 A
/// fragment: nibble 4i + h (i = 0..3 = fragment register, h = 0, 1 = its
/// half) = W[16T + g + 8 (i & 1)][16s + 2t + 8 (i >> 1) + h]. Dequantisation
/// is then a_i = ((w >> 4i) & 0x000F000F) | 0x43004300 = the bf16x2 of
/// 128 + q (3 IMAD.HI + 4 LOP3 per 8 codes), one HMMA per 8 codes of a lane.
/// Activations are the B fragment (column n = batch), staged once per block
/// in shared memory as bf16 in fragment order; one LDS.64 per k-step serves
/// the unit's TileRows tiles; lanes of absent batch columns read zeros.
/// Per group of 128 columns the accumulators start at zero and are folded
/// into the row sums in fp32: v += s D + (b - 128 s) S (Exact: the 128 is
/// subtracted from a_i in bf16 first, exact for q < 16, and v += s D + b S),
/// S = the group's sum of activations (staged). Work unit: TileRows x 16 rows
/// x Chunks x 64 columns, contiguous unit ranges per warp; each warp streams
/// its units' codes and side words through its own ring of Stages slots
/// (cp.async, Stages - 1 units in flight), issued before the activations
/// are staged so that the first loads overlap the staging. Row sums go out
/// by one atomic per row and tile visit (y zeroed before the launch).
/// BlockOwned: each block owns a contiguous range of whole row groups (its
/// warps split the range's units), adds its warps' row sums in shared memory
/// and stores its rows once at the end: no zeroing of y, no global atomics.
/// Bulk: lane 0 fills a slot with one bulk copy (TMA, cp.async.bulk) per
/// tile for the codes and one for the side words, completed on the slot's
/// mbarrier, instead of 32 lanes' 16-byte cp.async.
/// Pdl (programmatic dependent launch; launch with
/// cudaLaunchAttributeProgrammaticStreamSerialization): the kernel lets the
/// next launch start at once, and waits for the previous kernel on the
/// stream (griddepcontrol.wait) after issuing its first units' weight copies
/// and before it reads x or writes y, so that a launch's first weights stream
/// while the previous launch's last blocks finish, on the SMs they left
/// (the weights must not be written by the previous kernel).
/// Needs M % (16 TileRows) == 0, K % (64 Chunks) == 0, Chunks even.
template <int BlockWarps, int TileRows, int Chunks, int Stages, int Batch, bool Exact, bool BlockOwned = false,
          bool Bulk = false, bool Pdl = false>
__global__ void __launch_bounds__(BlockWarps * 32, 1)
    plain_w4_mma_gemv_kernel(const uint4* codes, const uint2* side, const std::uint16_t* x, std::uint32_t M,
                             std::uint32_t K, float* y) {
  static_assert(Chunks % 2 == 0 && Stages >= 2 && Batch >= 1 && Batch <= 8, "whole groups per unit");
  constexpr int groups = Chunks / 2, side_u2 = TileRows * groups * 8;
  constexpr int slot_u4 = TileRows * Chunks * 32 + side_u2 / 2;  // codes, then side words
  extern __shared__ uint4 smem_u4[];
  const std::uint32_t lane = ecq::detail::lane_id(), warp = threadIdx.x / 32, g = lane / 4, t = lane % 4;
  constexpr int bar_u4 = Bulk ? (BlockWarps * Stages * 8 + 15) / 16 : 0;  // one mbarrier per slot
  uint4* ring = smem_u4 + warp * (Stages * slot_u4);
  std::uint64_t* bars = reinterpret_cast<std::uint64_t*>(smem_u4 + BlockWarps * Stages * slot_u4) + warp * Stages;
  uint2* xs = reinterpret_cast<uint2*>(smem_u4 + BlockWarps * Stages * slot_u4 + bar_u4);  // [n][k-step][t]
  const std::uint32_t ksteps = K / 16, chunks_row = K / 64, groups_row = K / 128;
  uint2* zeros = xs + std::size_t(Batch) * ksteps * 4;  // Chunks * 4 k-steps x 4 lanes
  float* gsum = reinterpret_cast<float*>(zeros + Chunks * 16);  // [n][group]
  const std::uint32_t kparts = K / (64 * Chunks), units = M / (16 * TileRows) * kparts;
  float* ys = gsum + Batch * groups_row;  // BlockOwned: [n][row of the block]
  std::uint32_t first, last, row_begin = 0, block_rows = 0;
  if constexpr (BlockOwned) {
    const std::uint32_t row_groups = M / (16 * TileRows);
    const std::uint32_t g0 = std::uint32_t(std::uint64_t(row_groups) * blockIdx.x / gridDim.x);
    const std::uint32_t g1 = std::uint32_t(std::uint64_t(row_groups) * (blockIdx.x + 1) / gridDim.x);
    const std::uint32_t n = (g1 - g0) * kparts;
    first = g0 * kparts + n * warp / BlockWarps;
    last = g0 * kparts + n * (warp + 1) / BlockWarps;
    row_begin = g0 * 16 * TileRows;
    block_rows = (g1 - g0) * 16 * TileRows;
    for (std::uint32_t i = threadIdx.x; i < Batch * block_rows; i += BlockWarps * 32) ys[i] = 0.0f;
  } else {
    const std::uint32_t warps = gridDim.x * BlockWarps, w = blockIdx.x * BlockWarps + warp;
    first = std::uint32_t(std::uint64_t(units) * w / warps);
    last = std::uint32_t(std::uint64_t(units) * (w + 1) / warps);
  }
  // Unit u = (tile group u / kparts, K-part u % kparts); both cursors (the unit being issued and the one being
  // computed) advance without divisions.
  struct cursor {
    std::uint32_t kp, tile0, slot;
    __device__ void next(std::uint32_t kparts) {
      slot = slot + 1 == std::uint32_t(Stages) ? 0 : slot + 1;
      if (++kp == kparts) {
        kp = 0;
        tile0 += TileRows;
      }
    }
  };
  cursor ic{first % kparts, first / kparts * TileRows, 0};
  std::uint32_t issued = first;
  if constexpr (Bulk) {
    if (lane == 0)
      for (int i = 0; i < Stages; ++i) mbar_init(bars + i);
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // the barriers, as the copy engine sees them
    __syncwarp();
  }
  auto issue = [&]() {
    if (Bulk && issued < last) {
      if (lane == 0) {
        uint4* slot = ring + ic.slot * slot_u4;
        const std::uint32_t c0 = ic.kp * Chunks;
        std::uint64_t* bar = bars + ic.slot;
        mbar_expect_tx(bar, TileRows * (Chunks * 512 + groups * 64));
#pragma unroll
        for (int tr = 0; tr < TileRows; ++tr) {
          bulk_copy(slot + tr * Chunks * 32, codes + (std::size_t(ic.tile0 + tr) * chunks_row + c0) * 32,
                    Chunks * 512, bar);
          bulk_copy(slot + TileRows * Chunks * 32 + tr * groups * 4,
                    side + (std::size_t(ic.tile0 + tr) * groups_row + c0 / 2) * 8, groups * 64, bar);
        }
      }
      ic.next(kparts);
      ++issued;
      return;
    }
    if (!Bulk && issued < last) {
      uint4* slot = ring + ic.slot * slot_u4;
      const std::uint32_t c0 = ic.kp * Chunks;
#pragma unroll
      for (int tr = 0; tr < TileRows; ++tr)
#pragma unroll
        for (int c = 0; c < Chunks; ++c)
          ecq::detail::cp_async_16(slot + (tr * Chunks + c) * 32 + lane,
                                   codes + (std::size_t(ic.tile0 + tr) * chunks_row + c0 + c) * 32 + lane, 16);
      uint2* ss = reinterpret_cast<uint2*>(slot + TileRows * Chunks * 32);
#pragma unroll
      for (int i = int(lane); i < side_u2; i += 32) {
        const int tr = i / (groups * 8), j = i % (groups * 8);
        cp_async_8(ss + i, side + (std::size_t(ic.tile0 + tr) * groups_row + c0 / 2) * 8 + j);
      }
      ic.next(kparts);
      ++issued;
    }
    if (!Bulk) ecq::detail::cp_async_commit();  // one group per unit, empty past the end
  };
  for (int i = 0; i < Stages - 1; ++i) issue();
  if constexpr (Pdl) {
    asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
    asm volatile("griddepcontrol.wait;\n" ::: "memory");  // the previous kernel's writes (x, y) are complete
  }
  // Activations in fragment order: uint2 (n, s, t) = {x[16s + 2t], x[16s + 2t + 1], x[16s + 2t + 8], x[16s + 2t + 9]};
  // 32 consecutive uint2 of one n are one group of 128 columns, summed by the warp that stages them.
  const std::uint32_t* xw = reinterpret_cast<const std::uint32_t*>(x);
  for (int n = 0; n < Batch; ++n)
    for (std::uint32_t i = threadIdx.x; i < ksteps * 4; i += BlockWarps * 32) {
      const std::uint32_t* xr = xw + std::size_t(n) * (K / 2) + (i / 4) * 8 + (i % 4);
      const std::uint32_t lo = xr[0], hi = xr[4];
      xs[std::size_t(n) * ksteps * 4 + i] = make_uint2(lo, hi);
      float a = __uint_as_float(lo << 16) + __uint_as_float(lo & 0xffff0000u) + __uint_as_float(hi << 16) +
                __uint_as_float(hi & 0xffff0000u);
#pragma unroll
      for (int o = 16; o > 0; o /= 2) a += __shfl_xor_sync(0xffffffffu, a, o);
      if (lane == 0) gsum[n * groups_row + i / 32] = a;
    }
  for (std::uint32_t i = threadIdx.x; i < Chunks * 16; i += BlockWarps * 32) zeros[i] = make_uint2(0, 0);
  __syncthreads();
  const bool real = g < Batch;
  const uint2* xl = real ? xs + std::size_t(g) * ksteps * 4 + t : zeros + t;
  const std::uint32_t step_l = real ? Chunks * 16 : 0;  // uint2 per unit's k range, for lanes with a batch column
  const std::uint32_t n0 = 2 * t < Batch ? 2 * t : 0, n1 = 2 * t + 1 < Batch ? 2 * t + 1 : 0;
  // The dequantisation constants, kept in registers: opaque to the compiler so that it does not fold them back
  // into immediates.
  std::uint32_t mask = 0x000F000Fu, magic = 0x43004300u;
  asm volatile("" : "+r"(mask), "+r"(magic));
  float v[TileRows][4] = {};
  cursor cc_{first % kparts, first / kparts * TileRows, 0};
  std::uint32_t phase = 0;  // Bulk: parity of the slots' current use, flipped when the slot index wraps
  for (std::uint32_t u = first; u < last; ++u) {
    __syncwarp();  // every lane is done with the slot that the next issue overwrites
    issue();
    if constexpr (Bulk) {
      mbar_wait(bars + cc_.slot, phase);
      if (cc_.slot == Stages - 1) phase ^= 1u;
    } else {
      ecq::detail::cp_async_wait<Stages - 1>();
      __syncwarp();  // side words copied by other lanes are visible
    }
    const uint4* sc = ring + cc_.slot * slot_u4;
    const uint2* ss = reinterpret_cast<const uint2*>(sc + TileRows * Chunks * 32);
    const std::uint32_t kp = cc_.kp, tile0 = cc_.tile0;
    cc_.next(kparts);
    const uint2* xu = xl + kp * step_l;
#pragma unroll
    for (int gr = 0; gr < groups; ++gr) {
      float d[TileRows][4];
#pragma unroll
      for (int tr = 0; tr < TileRows; ++tr)
#pragma unroll
        for (int i = 0; i < 4; ++i) d[tr][i] = 0.0f;
#pragma unroll
      for (int cc = 0; cc < 2; ++cc) {
        const int c = 2 * gr + cc;
        uint4 cw[TileRows];
#pragma unroll
        for (int tr = 0; tr < TileRows; ++tr) cw[tr] = sc[(tr * Chunks + c) * 32 + lane];
#pragma unroll
        for (int j = 0; j < 4; ++j) {
          const uint2 b = xu[(4 * c + j) * 4];
#pragma unroll
          for (int tr = 0; tr < TileRows; ++tr) {
            const std::uint32_t wj = j == 0 ? cw[tr].x : j == 1 ? cw[tr].y : j == 2 ? cw[tr].z : cw[tr].w;
            std::uint32_t a[4];
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              // w >> 4i as IMAD.HI (FMA pipe), then one LOP3 (w & mask) | magic with both constants in registers
              // (as C++, ptxas splits it into two LOP3 with one immediate each: device run 2's SASS)
              const std::uint32_t sh = i == 0 ? wj : __umulhi(wj, 1u << (32 - 4 * i));
              asm("lop3.b32 %0, %1, %2, %3, 0xEA;\n" : "=r"(a[i]) : "r"(sh), "r"(mask), "r"(magic));
              if constexpr (Exact) asm("sub.rn.bf16x2 %0, %0, %1;\n" : "+r"(a[i]) : "r"(magic));
            }
            asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
                "{%0,%1,%2,%3};\n"
                : "+f"(d[tr][0]), "+f"(d[tr][1]), "+f"(d[tr][2]), "+f"(d[tr][3])
                : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b.x), "r"(b.y));
          }
        }
      }
      const std::uint32_t grow = kp * groups + gr;
      const float S0 = gsum[n0 * groups_row + grow], S1 = gsum[n1 * groups_row + grow];
#pragma unroll
      for (int tr = 0; tr < TileRows; ++tr) {
        const uint2 sd = ss[(tr * groups + gr) * 8 + g];  // rows g, g + 8
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const std::uint32_t word = h == 0 ? sd.x : sd.y;
          const float sc_ = __uint_as_float(word << 16), bi = __uint_as_float(word & 0xffff0000u);
          const float c = Exact ? bi : fmaf(-128.0f, sc_, bi);
          v[tr][2 * h] = fmaf(sc_, d[tr][2 * h], fmaf(c, S0, v[tr][2 * h]));
          if constexpr (Batch > 1) v[tr][2 * h + 1] = fmaf(sc_, d[tr][2 * h + 1], fmaf(c, S1, v[tr][2 * h + 1]));
        }
      }
    }
    if (u + 1 < last && cc_.kp != 0) continue;  // the next unit adds to the same rows
#pragma unroll
    for (int tr = 0; tr < TileRows; ++tr) {
      // y (global, zeroed) or the block's rows (shared)
      const std::uint32_t row = (tile0 + tr) * 16 + g - row_begin;
      float* out = BlockOwned ? ys : y;
      const std::uint32_t stride = BlockOwned ? block_rows : M;
      if (2 * t < Batch) {
        atomicAdd(out + std::size_t(2 * t) * stride + row, v[tr][0]);
        atomicAdd(out + std::size_t(2 * t) * stride + row + 8, v[tr][2]);
      }
      if (2 * t + 1 < Batch) {
        atomicAdd(out + std::size_t(2 * t + 1) * stride + row, v[tr][1]);
        atomicAdd(out + std::size_t(2 * t + 1) * stride + row + 8, v[tr][3]);
      }
#pragma unroll
      for (int i = 0; i < 4; ++i) v[tr][i] = 0.0f;
    }
  }
  if constexpr (BlockOwned) {
    __syncthreads();
    for (std::uint32_t i = threadIdx.x; i < Batch * block_rows; i += BlockWarps * 32)
      y[std::size_t(i / block_rows) * M + row_begin + i % block_rows] = ys[i];
  }
}

/// Shared memory of plain_w4_mma_gemv_kernel for a grid of `grid` blocks.
template <int BlockWarps, int TileRows, int Chunks, int Stages, int Batch, bool BlockOwned, bool Bulk>
constexpr std::size_t plain_w4_mma_shared_bytes(std::uint32_t M, std::uint32_t K, std::uint32_t grid) {
  const std::size_t row_groups = M / (16 * TileRows), owned_rows = (row_groups + grid - 1) / grid * 16 * TileRows;
  return std::size_t(BlockWarps) * Stages * (TileRows * Chunks * 512 + TileRows * Chunks / 2 * 64) +
         (Bulk ? (std::size_t(BlockWarps) * Stages * 8 + 15) / 16 * 16 : 0) +
         std::size_t(Batch) * K * 2 + Chunks * 128 + std::size_t(Batch) * (K / 128) * 4 +
         (BlockOwned ? std::size_t(Batch) * owned_rows * 4 : 0);
}

/// The layout of plain_w4_mma_gemv_kernel from row-major codes (one per
/// byte) and side words [row][K / 128]: codes as 16-byte lane records
/// ((tile * K / 64 + chunk) * 32 + lane), side as uint2 {row g, row g + 8}
/// per (tile, group, g). Needs M % 16 == 0, K % 128 == 0.
inline void plain_w4_mma_layout(const std::uint8_t* q, const std::uint32_t* side_rm, std::uint32_t M, std::uint32_t K,
                                std::vector<std::uint32_t>* codes, std::vector<std::uint32_t>* side) {
  codes->assign(std::size_t(M) * K / 8, 0);
  side->assign(std::size_t(M) * (K / 128), 0);
  for (std::uint32_t T = 0; T < M / 16; ++T)
    for (std::uint32_t s = 0; s < K / 16; ++s)
      for (std::uint32_t l = 0; l < 32; ++l) {
        const std::uint32_t g = l / 4, t = l % 4;
        std::uint32_t word = 0;
        for (std::uint32_t i = 0; i < 4; ++i)
          for (std::uint32_t h = 0; h < 2; ++h) {
            const std::size_t row = std::size_t(T) * 16 + g + 8 * (i & 1), col = 16 * s + 2 * t + 8 * (i >> 1) + h;
            word |= std::uint32_t(q[row * K + col] & 15u) << (4 * i + 16 * h);
          }
        (*codes)[((std::size_t(T) * (K / 64) + s / 4) * 32 + l) * 4 + s % 4] = word;
      }
  for (std::uint32_t T = 0; T < M / 16; ++T)
    for (std::uint32_t gr = 0; gr < K / 128; ++gr)
      for (std::uint32_t g = 0; g < 8; ++g) {
        const std::size_t o = ((std::size_t(T) * (K / 128) + gr) * 8 + g) * 2;
        (*side)[o] = side_rm[(std::size_t(T) * 16 + g) * (K / 128) + gr];
        (*side)[o + 1] = side_rm[(std::size_t(T) * 16 + g + 8) * (K / 128) + gr];
      }
}

}  // namespace ecq_bench

#endif  // ECQ_BENCH_CUDA_REFERENCE_KERNELS_CUH
