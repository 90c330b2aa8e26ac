// ecq/fused_gemv.cuh — READ ME FIRST
//
// The fused decode -> dequantise -> dot collective (CUDA only): y += W x for
// a weight matrix stored as entropy-coded 32-row tiles (64-row tiles with a
// decoder of two states per lane), without writing a weight anywhere. Per
// warp, every round of the decoder (ecq/warp_decode.cuh) gives each lane one
// symbol of each of its rows; the Dequant policy
// (ecq/gemv_dequant.cuh) turns it into bf16 B fragments and warp_row_dot
// (ecq/warp_row_dot.cuh) feeds them to the tensor cores with the
// activations, which the block stages once in shared memory.
//
// Work items. The caller describes streams (one container block each: a
// tile of WarpDecoder::tile_rows rows x a chunk of columns) with a Tiles
// functor:
//     tile_stream_view operator()(std::uint32_t stream) const;   // the stream
//     gemv_tile tile(std::uint32_t stream) const;                // the rest
// A work item is WarpDecoder::ways consecutive streams, which must be chunks
// of the same row tile with equal rounds. Each warp decodes a contiguous
// range of items; consecutive items of the same row tile accumulate in
// registers, and a row tile's sums are added to y with atomicAdd when the
// warp leaves it (several warps, or several K-ranges, may share a row tile:
// zero y first). y has `rows` rows per batch column: a last tile with fewer
// real rows (padding rows, docs/format.md section 6) adds to those only.
//
// Shared memory (dynamic; shared_bytes(columns)):
//   block_decoder storage | activations as A records, columns / 4 quads x
//   records_per_quad (ecq/warp_row_dot.cuh), pre-scaled by
//   Dequant::column_scale | per group and batch column, sum x (float) when
//   Dequant has groups.
// `columns` is the K-range the block stages (all of K for small batches, a
// slice of it when Batch * K * 2 bytes would not fit).
//
// FAST PATH only (see ecq/warp_decode.cuh): streams, raw units and side
// data are trusted.
//
// Example (complete persistent kernel, Batch 1, the bf16 pair scheme):
//
//   using words = ecq::staged_words<1024, 16, 1, 32, 768>;  // bf16's fastest (docs/cuda-notes.md, session 7)
//   using decoder = ecq::warp_decoder<ecq::rans32x16<11>, ecq::narrow_entry_policy, 1, words>;
//   using gemv = ecq::block_fused_gemv<16, decoder, ecq::bf16_pair_dequant, 1>;
//   template <class Tiles>
//   __global__ void __launch_bounds__(512, 2) k(Tiles tiles, std::uint32_t items, const std::uint32_t* table,
//                                                const std::uint16_t* x, std::uint32_t K, float* y, std::uint32_t M) {
//     extern __shared__ uint4 smem[];
//     gemv g(smem, K);
//     g.load(table, x, K, 0);                       // all threads, ends in __syncthreads()
//     const auto r = ecq::warp_item_range(items, blockIdx.x * 16 + threadIdx.x / 32, gridDim.x * 16);
//     g.run(tiles, r.first, r.last, y, M);          // per warp
//   }
//   // host (two blocks per SM): cudaMemsetAsync(y, 0, ...); cudaFuncSetAttribute(k<T>, cudaFuncAttributeMaxDynamicSharedMemorySize,
//   //       gemv::shared_bytes(K)); k<<<2 * num_sms, 512, gemv::shared_bytes(K)>>>(...);
// bench/cuda/gpu_bench.cu has the Tiles functor over its tile arrays.
#ifndef ECQ_FUSED_GEMV_CUH
#define ECQ_FUSED_GEMV_CUH

#include <cstddef>
#include <cstdint>

#include "block_decode.cuh"
#include "config.hpp"
#include "gemv_dequant.cuh"
#include "warp_decode.cuh"
#include "warp_row_dot.cuh"

ECQ_NAMESPACE_BEGIN

/// What the fused GEMV needs of an item besides its stream.
struct gemv_tile {
  const std::uint32_t* raw;    // the stream's raw units, kernel layout (ecq/gemv_dequant.cuh)
  const std::uint32_t* side;   // per group of the item: 32 words (scale | bias << 16); null without groups
  std::uint32_t row;           // first row of the tile
  std::uint32_t column;        // first weight column, relative to the block's staged activations
};

namespace detail {

ECQ_DEVICE ECQ_FORCEINLINE uint4 load_streaming(const uint4* p) {
  uint4 v;
  asm volatile("ld.global.nc.L1::no_allocate.v4.u32 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}

ECQ_DEVICE ECQ_FORCEINLINE uint2 load_streaming2(const uint2* p) {
  uint2 v;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0,%1}, [%2];\n" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t load_streaming1(const std::uint32_t* p) {
  std::uint32_t v;
  asm volatile("ld.global.nc.L1::no_allocate.u32 %0, [%1];\n" : "=r"(v) : "l"(p));
  return v;
}

ECQ_DEVICE ECQ_FORCEINLINE float bf16_bits_to_float(std::uint32_t bits16) { return __uint_as_float(bits16 << 16); }

ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t float_to_bf16_bits_exact(float f) {
  // Only for values that are exact in bf16 (a bf16 times a power of two).
  return __float_as_uint(f) >> 16;
}

}  // namespace detail

/// Software pipeline of a lane's raw units: while block n is decoded, the
/// units of block n + 1 (possibly the next item's first) are in flight.
/// Stream `item * Ways + way` of the Tiles functor (see the file comment);
/// UnitWords words per row and unit, 8 rounds per unit, TileRows rows per
/// unit (32 or 64); the lane reads row lane + row_offset. Rounds per block is
/// a multiple of 8 (whole units) or 4 (each block takes half a unit: rounds
/// 0-3 of a unit are its first UnitWords / 2 words, in the same bit places).
template <int UnitWords, int Rounds, int Ways, class Tiles, int TileRows = 32>
class raw_pipeline {
  static_assert(UnitWords == 2 || UnitWords == 4, "raw units are 8 or 16 bytes per lane");
  static_assert(Rounds % 8 == 0 || Rounds == 4, "a block holds whole 8-round units or half of one");

 public:
  static constexpr bool half_units = Rounds == 4;
  static constexpr int units = half_units ? 1 : Rounds / 8;
  /// Raw words of a block.
  static constexpr int block_words = half_units ? UnitWords / 2 : units * UnitWords;
  raw_pipeline() = default;
  /// Starts loading the first block of item `first` (if first < last).
  ECQ_DEVICE raw_pipeline(const Tiles& tiles, std::uint32_t first, std::uint32_t last, std::uint32_t way,
                          std::uint32_t row_offset = 0)
      : tiles_(&tiles), way_(way), row_offset_(row_offset), last_(last), item_(first) {
    if (first < last) {
      start_item();
      load();
    }
  }
  /// Makes the next block's units current and starts loading the one after.
  ECQ_DEVICE ECQ_FORCEINLINE void advance() {
    ECQ_PRAGMA_UNROLL
    for (int i = 0; i < block_words; ++i) words[i] = next_[i];
    if (item_ < last_) load();
  }
  /// The current block's raw words of this lane, unit after unit.
  std::uint32_t words[block_words];

 private:
  // The Tiles functor is asked once per item; blocks advance a pointer.
  ECQ_DEVICE ECQ_FORCEINLINE void start_item() {
    const std::uint32_t s = item_ * std::uint32_t(Ways) + way_;
    ptr_ = tiles_->tile(s).raw + (detail::lane_id() + row_offset_) * UnitWords;
    blocks_left_ = (*tiles_)(s).rounds / std::uint32_t(Rounds);
    second_half_ = false;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void load() {
    if constexpr (half_units) {
      if constexpr (UnitWords == 4) {
        const uint2 v = detail::load_streaming2(reinterpret_cast<const uint2*>(ptr_));
        next_[0] = v.x;
        next_[1] = v.y;
      } else {
        next_[0] = detail::load_streaming1(ptr_);
      }
      // Second half of this unit next, then the first half of the next one.
      ptr_ += second_half_ ? TileRows * UnitWords - UnitWords / 2 : UnitWords / 2;
      second_half_ = !second_half_;
    } else {
      ECQ_PRAGMA_UNROLL
      for (int u = 0; u < units; ++u) {
        if constexpr (UnitWords == 4) {
          const uint4 v = detail::load_streaming(reinterpret_cast<const uint4*>(ptr_ + u * TileRows * UnitWords));
          next_[4 * u] = v.x;
          next_[4 * u + 1] = v.y;
          next_[4 * u + 2] = v.z;
          next_[4 * u + 3] = v.w;
        } else {
          const uint2 v = detail::load_streaming2(reinterpret_cast<const uint2*>(ptr_ + u * TileRows * UnitWords));
          next_[2 * u] = v.x;
          next_[2 * u + 1] = v.y;
        }
      }
      ptr_ += units * TileRows * UnitWords;
    }
    if (--blocks_left_ == 0 && ++item_ < last_) start_item();
  }

  const Tiles* tiles_ = nullptr;
  const std::uint32_t* ptr_ = nullptr;
  std::uint32_t way_ = 0, row_offset_ = 0, last_ = 0, item_ = 0, blocks_left_ = 0;
  bool second_half_ = false;  // half units: the next load is a unit's second half
  std::uint32_t next_[block_words];
};

/// The per-warp sink that block_decoder drives (see the file comment). Work
/// item i is streams i * Ways + w of the Tiles functor: Ways chunks of the
/// same row tile. State set j = w * StatesPerLane + h (ecq/warp_decode.cuh)
/// covers rows 32 h + lane of way w's tile and has its own raw pipeline and
/// dot accumulators; the sets of one way share the activations.
template <class Dequant, int Batch, int Rounds, int Ways, class Tiles, int StatesPerLane = 1>
class fused_gemv_sink {
  static constexpr int W = Dequant::weights_per_round;
  static constexpr bool grouped = Dequant::group_size != 0;
  static constexpr int blocks_per_group = grouped ? Dequant::group_size / (W * Rounds) : 1;
  static constexpr int sets = warp_row_dot<Batch>::sets;
  static constexpr int state_sets = Ways * StatesPerLane;  // see warp_decoder
  static constexpr int tile_rows = 32 * StatesPerLane;
  // Raw units advance one unit at a time even when a block holds several (the
  // unit's first round is then a step inside the block), so that a lane holds
  // one unit and the next in registers whatever the block length: 16-round
  // blocks of 16-warp blocks fit 64 registers without spills.
  static constexpr int raw_rounds = Rounds % Dequant::rounds_per_unit == 0 ? Dequant::rounds_per_unit : Rounds;
  using raw_type = raw_pipeline<Dequant::unit_words, raw_rounds, Ways, Tiles, tile_rows>;
  static_assert(W == 2 || W == 4, "a dequantiser yields 2 or 4 weights per round");
  static_assert(Rounds % Dequant::rounds_per_unit == 0 || 2 * Rounds == Dequant::rounds_per_unit,
                "a block holds whole raw units or half of one");
  static_assert(!grouped || Dequant::group_size % (W * Rounds) == 0, "a group spans whole blocks");

 public:
  static constexpr int records = warp_row_dot<Batch>::records_per_quad;

  ECQ_DEVICE fused_gemv_sink(const Tiles& tiles, std::uint32_t first, std::uint32_t last, const uint4* act,
                             const float* group_sums, float* y, std::uint32_t rows)
      : tiles_(tiles), last_(last), act_(act), sums_(group_sums), y_(y), rows_(rows) {
    ECQ_PRAGMA_UNROLL
    for (int j = 0; j < state_sets; ++j)
      raw_[j] = raw_type(tiles, first, last, std::uint32_t(j / StatesPerLane), 32u * std::uint32_t(j % StatesPerLane));
    ECQ_PRAGMA_UNROLL
    for (int h = 0; h < StatesPerLane; ++h)
      ECQ_PRAGMA_UNROLL
      for (int s = 0; s < sets; ++s)
        ECQ_PRAGMA_UNROLL
        for (int i = 0; i < 4; ++i) acc_[h][s][i] = 0.0f;
  }

  ECQ_DEVICE ECQ_FORCEINLINE void begin_tile(std::uint32_t item) {
    ECQ_PRAGMA_UNROLL
    for (int w = 0; w < Ways; ++w) tile_[w] = tiles_.tile(item * Ways + w);
  }

  ECQ_DEVICE ECQ_FORCEINLINE void begin_block(std::uint32_t, std::uint32_t block) {
    ECQ_PRAGMA_UNROLL
    for (int w = 0; w < Ways; ++w)
      act_block_[w] = act_ + (tile_[w].column + block * std::uint32_t(W * Rounds)) / 4 * records;
    ECQ_PRAGMA_UNROLL
    for (int j = 0; j < state_sets; ++j) {
      raw_[j].advance();
      if (grouped && block % blocks_per_group == 0) {
        const std::uint32_t* side = tile_[j / StatesPerLane].side + (block / blocks_per_group) * tile_rows +
                                    32 * (j % StatesPerLane);
        side_[j][0] = side[dot_[j].row_of(0)];
        side_[j][1] = side[dot_[j].row_of(1)];
      }
    }
  }

  ECQ_DEVICE ECQ_FORCEINLINE void step(int k, int j, std::uint32_t entry) {
    const int w = j / StatesPerLane, h = j % StatesPerLane;
    const warp_row_dot<Batch>& a = dot_[j - h];  // the way's first set holds the activations
    if (raw_rounds < Rounds && k > 0 && k % raw_rounds == 0) raw_[j].advance();  // the block's next unit
    const int kr = k % raw_rounds;  // round within the raw unit
    if constexpr (W == 2) {  // a quad every two rounds
      const std::uint32_t f = Dequant::fragment(entry, raw_[j].words, kr);
      if (k % 2 == 0) {
        if (h == 0) dot_[j].load_activations(act_block_[w] + (k / 2) * records);
        b0_[j] = f;
      } else {
        dot_[j].mma(b0_[j], f, a);
      }
    } else {  // a quad every round
      if (h == 0) dot_[j].load_activations(act_block_[w] + k * records);
      std::uint32_t b0, b1;
      Dequant::fragments(entry, raw_[j].words, kr, b0, b1);
      dot_[j].mma(b0, b1, a);
    }
  }

  ECQ_DEVICE ECQ_FORCEINLINE void end_block(std::uint32_t, std::uint32_t block) {
    if constexpr (grouped) {
      if ((block + 1) % blocks_per_group != 0) return;
      ECQ_PRAGMA_UNROLL
      for (int j = 0; j < state_sets; ++j) {
        const int w = j / StatesPerLane, h = j % StatesPerLane;
        const std::uint32_t group = (tile_[w].column + block * std::uint32_t(W * Rounds)) / Dequant::group_size;
        ECQ_PRAGMA_UNROLL
        for (int s = 0; s < sets; ++s)
          ECQ_PRAGMA_UNROLL
          for (int i = 0; i < 4; ++i) {
            if (!dot_[j].holds(s, i, Batch)) continue;
            const std::uint32_t side = side_[j][i & 1];
            const float sum_x = sums_[group * Batch + dot_[j].batch_of(s, i)];
            const float scale = detail::bf16_bits_to_float(side & 0xffffu);
            const float bias = detail::bf16_bits_to_float(side >> 16);
            const float centred_bias = fmaf(Dequant::code_centre, scale, bias);
            acc_[h][s][i] = fmaf(scale, dot_[j].d[s][i], fmaf(centred_bias, sum_x, acc_[h][s][i]));
          }
        dot_[j].zero();
      }
    }
  }

  ECQ_DEVICE ECQ_FORCEINLINE void end_tile(std::uint32_t item) {
    if (item + 1 < last_ && tiles_.tile((item + 1) * Ways).row == tile_[0].row) return;
    ECQ_PRAGMA_UNROLL
    for (int h = 0; h < StatesPerLane; ++h)
      ECQ_PRAGMA_UNROLL
      for (int s = 0; s < sets; ++s)
        ECQ_PRAGMA_UNROLL
        for (int i = 0; i < 4; ++i) {
          float v = acc_[h][s][i];
          if constexpr (!grouped) {
            ECQ_PRAGMA_UNROLL
            for (int w = 0; w < Ways; ++w) v += dot_[w * StatesPerLane + h].d[s][i];
          }
          // Rows past the tensor's end (the last tile's padding rows) have no y.
          const std::uint32_t row = tile_[0].row + 32u * h + dot_[0].row_of(i);
          if (dot_[0].holds(s, i, Batch) && row < rows_) atomicAdd(y_ + dot_[0].batch_of(s, i) * rows_ + row, v);
          acc_[h][s][i] = 0.0f;
        }
    if constexpr (!grouped) {
      ECQ_PRAGMA_UNROLL
      for (int j = 0; j < state_sets; ++j) dot_[j].zero();
    }
  }

 private:
  const Tiles& tiles_;
  std::uint32_t last_;
  const uint4* act_;
  const float* sums_;
  float* y_;
  std::uint32_t rows_;
  gemv_tile tile_[Ways] = {};
  const uint4* act_block_[Ways] = {};
  raw_type raw_[state_sets];
  std::uint32_t side_[state_sets][2] = {};
  std::uint32_t b0_[state_sets] = {};
  warp_row_dot<Batch> dot_[state_sets];
  float acc_[StatesPerLane][sets][4];
};

/// @tparam BlockWarps   warps per block
/// @tparam WarpDecoder  warp_decoder<rans32x16<S>, narrow_entry_policy, Replicas, staged_words<...>>
/// @tparam Dequant      bf16_pair_dequant or affine4_quad_dequant<G>
/// @tparam Batch        activation columns, 1..8
template <int BlockWarps, class WarpDecoder, class Dequant, int Batch>
class block_fused_gemv {
 public:
  using decoder_type = block_decoder<BlockWarps, WarpDecoder>;
  static constexpr int block_threads = BlockWarps * 32;
  static constexpr bool grouped = Dequant::group_size != 0;

  /// Dynamic shared memory for a K-range of `columns` (a multiple of 8, and
  /// of the group size when there are groups).
  static constexpr int records = warp_row_dot<Batch>::records_per_quad;

  ECQ_HOST_DEVICE static constexpr std::size_t shared_bytes(std::uint32_t columns) {
    return act_offset() + std::size_t(columns / 4) * records * sizeof(uint4) +
           (grouped ? std::size_t(columns / group_size()) * Batch * sizeof(float) : 0);
  }

  ECQ_DEVICE block_fused_gemv(void* smem, std::uint32_t columns)
      : storage_(*static_cast<typename decoder_type::TempStorage*>(smem)),
        act_(reinterpret_cast<uint4*>(static_cast<char*>(smem) + act_offset())),
        sums_(reinterpret_cast<float*>(act_ + std::size_t(columns / 4) * records)),
        columns_(columns) {}

  /// Loads the decode table and stages activations x[b * x_stride + k_begin
  /// + c] (bf16 bits; c < columns, b < Batch) with the per-group sums.
  /// All threads; ends with __syncthreads(). x_stride and k_begin must be
  /// multiples of 4.
  ECQ_DEVICE void load(const std::uint32_t* table, const std::uint16_t* x, std::uint32_t x_stride,
                       std::uint32_t k_begin) {
    // A records (ecq/warp_row_dot.cuh): per quad, record 2s + l holds batch
    // columns lo = 4s + l and lo + 2, pre-scaled by Dequant::column_scale.
    const std::uint32_t quads = columns_ / 4;
    auto pairs = [&](std::uint32_t b, std::uint32_t q, std::uint32_t* p01, std::uint32_t* p23) {
      if (b >= std::uint32_t(Batch)) {
        *p01 = *p23 = 0;
        return;
      }
      const uint2 v = *reinterpret_cast<const uint2*>(x + std::size_t(b) * x_stride + k_begin + 4 * q);
      const std::uint32_t w[2] = {v.x, v.y};
      std::uint32_t out[2];
      ECQ_PRAGMA_UNROLL
      for (int j = 0; j < 2; ++j) {
        const float lo = detail::bf16_bits_to_float(w[j] & 0xffffu) * Dequant::column_scale(2 * j);
        const float hi = detail::bf16_bits_to_float(w[j] >> 16) * Dequant::column_scale(2 * j + 1);
        out[j] = detail::float_to_bf16_bits_exact(lo) | (detail::float_to_bf16_bits_exact(hi) << 16);
      }
      *p01 = out[0];
      *p23 = out[1];
    };
    for (std::uint32_t i = threadIdx.x; i < quads * records; i += block_threads) {
      const std::uint32_t q = i / records, r = i % records;
      const std::uint32_t lo = 4 * (r / 2) + r % 2;
      std::uint32_t lo01, lo23, hi01, hi23;
      pairs(lo, q, &lo01, &lo23);
      pairs(lo + 2, q, &hi01, &hi23);
      act_[i] = warp_row_dot<Batch>::make_record(lo01, lo23, hi01, hi23);
    }
    if constexpr (grouped) {
      // One warp per (group, batch column): the sum of x.
      const std::uint32_t lane = detail::lane_id(), warp = threadIdx.x / 32;
      const std::uint32_t groups = columns_ / group_size();
      for (std::uint32_t p = warp; p < groups * Batch; p += BlockWarps) {
        const std::uint32_t g = p / Batch, b = p % Batch;
        float sx = 0.0f;
        for (std::uint32_t c = lane; c < std::uint32_t(group_size()); c += 32)
          sx += detail::bf16_bits_to_float(x[std::size_t(b) * x_stride + k_begin + g * group_size() + c]);
        ECQ_PRAGMA_UNROLL
        for (int o = 16; o > 0; o /= 2) sx += __shfl_xor_sync(0xffffffffu, sx, o);
        if (lane == 0) sums_[p] = sx;
      }
    }
    decoder_type(storage_).load_table(table);  // ends with __syncthreads()
  }

  /// Decodes items [first, last) of `tiles` with this thread's warp and adds
  /// the row sums to y[b * rows + row]. Whole warp.
  template <class Tiles>
  ECQ_DEVICE void run(const Tiles& tiles, std::uint32_t first, std::uint32_t last, float* y, std::uint32_t rows) {
    fused_gemv_sink<Dequant, Batch, WarpDecoder::rounds_per_block, WarpDecoder::ways, Tiles,
                    WarpDecoder::states_per_lane>
        sink(
        tiles, first, last, act_, sums_, y, rows);
    decoder_type(storage_).decode(tiles, first, last, sink);
  }

 private:
  ECQ_HOST_DEVICE static constexpr std::size_t act_offset() {
    return (sizeof(typename decoder_type::TempStorage) + 15) / 16 * 16;
  }
  ECQ_HOST_DEVICE static constexpr std::uint32_t group_size() {
    return grouped ? std::uint32_t(Dequant::group_size) : 1u;
  }

  typename decoder_type::TempStorage& storage_;
  uint4* act_;
  float* sums_;
  std::uint32_t columns_;
};

ECQ_NAMESPACE_END

#endif  // ECQ_FUSED_GEMV_CUH
