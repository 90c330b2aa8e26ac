// ecq/warp_decode.cuh — READ ME FIRST
//
// Warp-level decoding of N = 32 or N = 64 interleaved rANS streams (CUDA
// only). One warp decodes one stream at a time; lane j owns state j (and
// state j + 32 when N = 64), so with the container's tile layout
// (ecq/tensor_view.hpp: symbol index c * N + r) lane r decodes row r (and
// row r + 32) of an N-row tile and every round of N symbols is one symbol
// column, shared by all lanes.
//
// The stream is the core format (ecq/interleaved_rans.hpp), rans32x16 only:
// N initial states (2N words), then the renormalisation words in decode
// order. After a round, the states that fell below L take the next words in
// state order: a ballot of "needs a word" and a popcount of the lanes below
// give each lane its word, one at most per state (ScaleBits <= 16). With
// N = 64 a lane's two states form independent dependency chains, so one
// warp overlaps two rounds' latencies; on the H100 the fused GEMV kernels
// are issue-bound and do not gain from it (docs/cuda-notes.md, v8), but it
// decodes containers written with N = 64 as they are.
//
// Pieces, each a template argument of warp_decoder:
//   Params      rans32x16<S>.
//   Entry       how a 32-bit shared-memory entry advances the state:
//               narrow_entry_policy (ecq/narrow_decode_table.hpp, any
//               payload, freq <= 255) or packed_entry_policy<SymbolBits>
//               (ecq/symbol_table.hpp's packed entries when 2S + SymbolBits
//               <= 32). The sink receives the entry itself.
//   Replicas    copies of the table interleaved in shared memory: lane j
//               reads copy j % Replicas, so fewer lanes compete for a bank.
//   Words       staged_words: the warp's streams are copied into a
//               shared-memory ring with cp.async, several blocks of rounds
//               ahead, across stream boundaries, so neither a word read nor a
//               stream start waits for device memory.
//
// Work comes as a sequence of items (streams) i in [first, last) described by
// a Streams functor: `tile_stream_view operator()(std::uint32_t i) const`.
// Streams must start at 16-byte aligned addresses (the container aligns every
// block) and hold a multiple of `rounds_per_block` rounds.
//
// Paths: FAST PATH only. The decoder trusts the stream and the table (a
// corrupt stream yields wrong symbols but never reads outside the words the
// Streams functor describes: every copy is bounded by num_words). Check
// untrusted blocks first with decode_block_checked (ecq/tensor_view.hpp).
//
// Example (complete kernel: one warp per block decodes items [first, last)
// of 8-bit symbols, 32-row tiles of `rounds` symbol columns, to memory):
//
//   using words = ecq::staged_words<1024, 8>;                // 8 rounds per block
//   using decoder = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, words>;
//   struct streams {                                        // stream i: words + offset[i], count[i] words
//     const std::uint16_t* w; const std::uint32_t* offset; const std::uint32_t* count; std::uint32_t rounds;
//     __device__ ecq::tile_stream_view operator()(std::uint32_t i) const { return {w + offset[i], count[i], rounds}; }
//   };
//   struct store {                                          // symbol = the narrow payload (built as s -> s)
//     std::uint8_t* out; std::uint32_t rounds, item = 0, block = 0;
//     __device__ void step(int k, int, std::uint32_t e) {
//       out[(std::size_t(item) * rounds + block * 8 + k) * 32 + threadIdx.x] = ecq::narrow_entry::payload(e);
//     }
//   };
//   __global__ void k(streams s, const std::uint32_t* table, std::uint32_t per_block, std::uint32_t items,
//                     std::uint8_t* out) {
//     __shared__ std::uint32_t t[decoder::table_entries];
//     __shared__ decoder::TempStorage ring;
//     for (int i = threadIdx.x; i < 4096; i += 32) t[i] = table[i];
//     __syncthreads();
//     const std::uint32_t first = blockIdx.x * per_block, last = min(items, first + per_block);
//     if (first >= last) return;
//     decoder d(ring, t);
//     store sink{out, s.rounds};
//     d.start(s, first, last);
//     for (sink.item = first; sink.item < last; ++sink.item) {
//       d.begin_tile(s);
//       for (sink.block = 0; sink.block < s.rounds / 8; ++sink.block) d.decode_block(s, sink);
//       d.end_tile(s, sink.item);
//     }
//   }
//   // launch: k<<<(items + per_block - 1) / per_block, 32>>>(...)
// block_decoder (ecq/block_decode.cuh) packages this loop for several warps.
#ifndef ECQ_WARP_DECODE_CUH
#define ECQ_WARP_DECODE_CUH

#include <cstdint>
#include <type_traits>

#include "config.hpp"
#include "narrow_decode_table.hpp"
#include "rans_state.hpp"
#include "symbol_table.hpp"
#include "tensor_view.hpp"

ECQ_NAMESPACE_BEGIN

/// One stream as a warp decodes it.
struct tile_stream_view {
  const std::uint16_t* words;  // 16-byte aligned: 64 state words, then renormalisation words
  std::uint32_t num_words;     // >= 64
  std::uint32_t rounds;        // symbols / 32; a multiple of the decoder's rounds_per_block

  /// The stream of a container block with 32 lanes and one row group.
  ECQ_HOST_DEVICE static tile_stream_view of(const block_view& b) {
    return {b.words<std::uint16_t>(), std::uint32_t(b.num_words<std::uint16_t>()), std::uint32_t(b.columns)};
  }
};

namespace detail {

ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t lane_id() {
  std::uint32_t l;
  asm("mov.u32 %0, %%laneid;" : "=r"(l));
  return l;
}

ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t lanemask_lt() {
  std::uint32_t m;
  asm("mov.u32 %0, %%lanemask_lt;" : "=r"(m));
  return m;
}

/// 16-byte asynchronous copy global -> shared that reads only `src_bytes`
/// (0..16) and zero-fills the rest; .cg bypasses L1 (the data is read once).
ECQ_DEVICE ECQ_FORCEINLINE void cp_async_16(void* smem, const void* gmem, std::uint32_t src_bytes) {
  const std::uint32_t s = std::uint32_t(__cvta_generic_to_shared(smem));
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(s), "l"(gmem), "r"(src_bytes) : "memory");
}

ECQ_DEVICE ECQ_FORCEINLINE void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }

template <int Pending>
ECQ_DEVICE ECQ_FORCEINLINE void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(Pending) : "memory");
}

/// cp.async.wait_group 1 where `newest_pending` holds, else wait_group 0: two
/// predicated instructions, no branch.
ECQ_DEVICE ECQ_FORCEINLINE void cp_async_wait_1_or_0(bool newest_pending) {
  asm volatile(
      "{\n .reg .pred p;\n setp.ne.u32 p, %0, 0;\n @p cp.async.wait_group 1;\n @!p cp.async.wait_group 0;\n}\n" ::"r"(
          std::uint32_t(newest_pending))
      : "memory");
}

}  // namespace detail

/// Narrow entries (ecq/narrow_decode_table.hpp).
struct narrow_entry_policy {
  template <class Params>
  ECQ_DEVICE ECQ_FORCEINLINE static std::uint32_t advance(std::uint32_t x, std::uint32_t e) {
    return narrow_advance<Params>(x, e);
  }
};

/// The core's packed entries (ecq/symbol_table.hpp), 32-bit ones only.
template <int SymbolBits>
struct packed_entry_policy {
  template <class Params>
  ECQ_DEVICE ECQ_FORCEINLINE static std::uint32_t advance(std::uint32_t x, std::uint32_t e) {
    static_assert(2 * Params::scale_bits + SymbolBits <= 32, "packed entries must be 32 bits for shared memory");
    using layout = decode_entry_layout<Params::scale_bits, SymbolBits>;
    return rans_advance<Params>(x, layout::freq(e), layout::offset(e));
  }
};

/// Word source of warp_decoder: a per-warp ring of RingWords 16-bit words in
/// shared memory, filled with cp.async. Before each block of RoundsPerBlock
/// rounds, prepare() issues copies up to (Depth + 1) blocks ahead and waits
/// for the copies issued Depth blocks ago, which cover the block about to be
/// decoded even if every lane takes a word every round. (Measured on an
/// H100: typical streams consume a third of that worst case, so the copies
/// land long before they are read; waits on them are under 1% of stalls.)
///
/// With Lookahead > 0 (Depth 1 only) copies run Lookahead words ahead instead
/// (at least one block's worst case), and prepare() waits for the previous
/// block's copies only when they cover the block about to be decoded, for
/// all copies otherwise (the worst case stays correct, it only waits). A
/// lookahead of one worst-case block plus the typical consumption of one
/// block keeps the ring at 1024 words for 16-round blocks: 32 warps per SM
/// keep the per-block work of 16 rounds without a second K-part.
///
/// The ring has a mirrored tail: a copy into the first mirror_words slots is
/// also written past the end, so reads within a block need no wrap-around
/// (one LEA per word instead of add, mask and add).
/// @tparam RingWords       ring size, a power of two >= lookahead + 256
/// @tparam RoundsPerBlock  rounds decoded between two prepare() calls
/// @tparam Depth           blocks a copy has to land (latency hiding)
/// @tparam States          interleaved states of a stream: 32, or 64 when
///                         every lane owns two (warp_decoder's StatesPerLane)
/// @tparam Lookahead       0: (Depth + 1) worst-case blocks; else the words
///                         copies run ahead (>= block_words, Depth 1)
template <int RingWords, int RoundsPerBlock, int Depth = 1, int States = 32, int Lookahead = 0>
class staged_words {
 public:
  static constexpr int rounds_per_block = RoundsPerBlock;
  static constexpr int states = States;
  /// The most one prepare() period can consume: a block in which every state
  /// takes a word every round plus the skip to the next 16-byte boundary
  /// (at most 7 words), or a stream start (2 words per state). Each state
  /// takes at most one word per round whatever the stream holds, so this
  /// bound holds for corrupt streams too.
  static constexpr std::uint32_t block_words =
      std::uint32_t(RoundsPerBlock > 2 ? RoundsPerBlock : 2) * std::uint32_t(States) + 8;
  static constexpr bool adaptive = Lookahead != 0;
  static constexpr std::uint32_t lookahead = adaptive ? std::uint32_t(Lookahead) : std::uint32_t(Depth + 1) * block_words;
  /// Reads within a block reach at most this far past the block's start.
  static constexpr std::uint32_t mirror_words = (block_words + 7) & ~7u;
  static_assert(RingWords > 0 && (RingWords & (RingWords - 1)) == 0, "RingWords must be a power of two");
  static_assert(RoundsPerBlock >= 2 && RoundsPerBlock <= 64, "RoundsPerBlock must be in [2, 64]");
  static_assert(Depth >= 1 && Depth <= 6, "Depth must be in [1, 6]");
  static_assert(States == 32 || States == 64, "a stream has 32 or 64 states");
  static_assert(!adaptive || (Depth == 1 && lookahead >= block_words),
                "a Lookahead must cover one worst-case block and comes with Depth 1");
  static_assert(std::uint32_t(RingWords) >= lookahead + 256,
                "RingWords must hold the lookahead plus one 512-byte warp copy");

  struct TempStorage {
    alignas(16) std::uint16_t ring[RingWords + mirror_words];
  };

  staged_words() = default;
  ECQ_DEVICE explicit staged_words(TempStorage& t)
      : ring_(t.ring), ring_addr_(std::uint32_t(__cvta_generic_to_shared(t.ring))) {}

  /// Starts the sequence of streams [first, last) (first < last): issues the
  /// first copies and waits for them. Whole warp.
  template <class Streams>
  ECQ_DEVICE void start(const Streams& streams, std::uint32_t first, std::uint32_t last) {
    detail::cp_async_wait<0>();  // copies of an earlier sequence must not land in the new one
    __syncwarp();
    base_ = 0;
    block_ = cur_ = ring_addr_;
    issued_ = 0;
    issue_item_ = first;
    last_item_ = last;
    issue_off_ = 0;
    load_issue_stream(streams);
    issue(streams, lookahead);
    detail::cp_async_commit();
    detail::cp_async_wait<0>();
    __syncwarp();
  }

  /// Makes the next block_words words readable. Whole warp, once per block.
  template <class Streams>
  ECQ_DEVICE ECQ_FORCEINLINE void prepare(const Streams& streams) {
    base_ = position();
    block_ = cur_ = ring_addr_ + 2 * (base_ & (RingWords - 1));
    __syncwarp();  // every lane has read the ring slots the new copies may reuse
    // Whether the copies issued before this call already cover the block (all
    // but the newest group may then stay pending).
    [[maybe_unused]] const bool covered = issued_ >= base_ + block_words;
    issue(streams, base_ + lookahead);
    detail::cp_async_commit();
    if constexpr (adaptive)
      detail::cp_async_wait_1_or_0(covered);
    else
      detail::cp_async_wait<Depth>();
    __syncwarp();
  }

  /// Initial state j (the stream's words 2j, 2j+1) at a stream start.
  ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t initial_state(std::uint32_t j) const {
    std::uint32_t x;
    asm volatile("ld.shared.u32 %0, [%1];\n" : "=r"(x) : "r"(cur_ + 4 * j));
    return x;
  }
  /// The word `pos` places after the next unread one (pos <= States). Volatile,
  /// so that the compiler neither moves it across prepare() nor sinks it
  /// into a branch: every lane loads, and the state merge is a select.
  ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t word(std::uint32_t pos) const {
    std::uint32_t w;
    asm volatile("ld.shared.u16 %0, [%1];\n" : "=r"(w) : "r"(cur_ + 2 * pos));
    return w;
  }
  ECQ_DEVICE ECQ_FORCEINLINE void consume(std::uint32_t n) { cur_ += 2 * n; }
  /// Sequence position of the next unread word.
  ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t position() const { return base_ + (cur_ - block_) / 2; }
  /// Moves to the next stream, which starts at the 16-byte boundary after
  /// the current one's `stream_start + num_words` words.
  ECQ_DEVICE ECQ_FORCEINLINE void skip_to(std::uint32_t stream_start, std::uint32_t num_words) {
    base_ = stream_start + ((num_words + 7) & ~7u);
    block_ = cur_ = ring_addr_ + 2 * (base_ & (RingWords - 1));
  }

 private:
  template <class Streams>
  ECQ_DEVICE ECQ_FORCEINLINE void load_issue_stream(const Streams& streams) {
    const tile_stream_view s = streams(issue_item_);
    issue_ptr_ = s.words;
    issue_words_ = s.num_words;
    issue_padded_ = (s.num_words + 7) & ~7u;
  }

  /// Issues 16-byte copies, 32 per warp instruction, until `target` words of
  /// the sequence are issued or it ends. Warp-uniform control flow.
  template <class Streams>
  ECQ_DEVICE ECQ_FORCEINLINE void issue(const Streams& streams, std::uint32_t target) {
    const std::uint32_t lane = detail::lane_id();
    while (issued_ < target && issue_item_ < last_item_) {
      const std::uint32_t off = issue_off_ + lane * 8;
      if (off < issue_padded_) {
        const std::uint32_t left = off < issue_words_ ? issue_words_ - off : 0;
        const std::uint32_t bytes = left >= 8 ? 16 : left * 2;
        const std::uint16_t* src = issue_ptr_ + (bytes ? off : 0);
        const std::uint32_t slot = (issued_ + lane * 8) & (RingWords - 1);
        detail::cp_async_16(ring_ + slot, src, bytes);
        if (slot < mirror_words) detail::cp_async_16(ring_ + RingWords + slot, src, bytes);
      }
      const std::uint32_t step = issue_padded_ - issue_off_ < 256 ? issue_padded_ - issue_off_ : 256;
      issued_ += step;
      issue_off_ += step;
      if (issue_off_ == issue_padded_) {
        issue_off_ = 0;
        if (++issue_item_ < last_item_) load_issue_stream(streams);
      }
    }
  }

  std::uint16_t* ring_ = nullptr;
  std::uint32_t ring_addr_ = 0;  // shared-window byte address of ring_
  std::uint32_t block_ = 0;     // address of the ring slot of base_
  std::uint32_t cur_ = 0;       // address of the next unread word (block_ + 2 * words consumed since)
  std::uint32_t base_ = 0;      // sequence position at block_
  std::uint32_t issued_ = 0;    // sequence words whose copies are issued
  std::uint32_t issue_item_ = 0, last_item_ = 0, issue_off_ = 0;
  const std::uint16_t* issue_ptr_ = nullptr;
  std::uint32_t issue_words_ = 0, issue_padded_ = 0;
};

/// Stream `item * Ways + way` of the underlying Streams: the sequence one way
/// of a warp_decoder decodes.
template <class Streams, int Ways>
struct way_streams {
  const Streams& streams;
  std::uint32_t way;
  ECQ_DEVICE ECQ_FORCEINLINE tile_stream_view operator()(std::uint32_t item) const {
    return streams(item * std::uint32_t(Ways) + way);
  }
};

/// Decodes a sequence of streams, one warp. With StatesPerLane = 1 a stream
/// has 32 states and lane j owns state j (row j of a 32-row tile). With
/// StatesPerLane = 2 a stream has 64 states (a 64-row tile, the container's
/// N = 64) and lane j owns states j and j + 32 (rows j and j + 32): the two
/// states' chains are independent, so one warp overlaps two rounds'
/// latencies while sharing the ring, the activations and the per-block work.
/// With Ways > 1 the warp instead decodes Ways streams in lockstep (work
/// item i = streams i * Ways + w, w < Ways, each with its own ring).
/// After round k of state set j (j = w * StatesPerLane + h, h the lane's
/// state: rows h * 32 + lane) the sink gets step(k, j, entry).
/// @tparam Params         rans32x16<S> (32-bit states, 16-bit words, one word per round at most)
/// @tparam Entry          narrow_entry_policy or packed_entry_policy<SymbolBits>
/// @tparam Replicas       table copies in shared memory (entry of slot s, copy k at s * Replicas + k)
/// @tparam Words          staged_words<..., States = 32 * StatesPerLane>
/// @tparam Ways           streams decoded at once (1..4); items must have equal rounds
/// @tparam StatesPerLane  1 or 2 (only with Ways = 1)
template <class Params, class Entry, int Replicas, class Words, int Ways = 1, int StatesPerLane = 1>
class warp_decoder {
  static_assert(Params::state_bits == 32 && Params::word_bits == 16, "warp_decoder decodes rans32x16 streams");
  static_assert(Params::max_words_per_symbol == 1, "one renormalisation word per round at most (ScaleBits <= 16)");
  static_assert(Replicas == 1 || Replicas == 2 || Replicas == 4 || Replicas == 8 || Replicas == 16 || Replicas == 32,
                "Replicas must be a power of two in [1, 32]");
  static_assert(Ways >= 1 && Ways <= 4, "Ways must be in [1, 4]");
  static_assert(StatesPerLane == 1 || StatesPerLane == 2, "StatesPerLane must be 1 or 2");
  static_assert(StatesPerLane == 1 || Ways == 1, "two states per lane decode one stream at a time");
  static_assert(Words::states == 32 * StatesPerLane, "the word source must be sized for 32 * StatesPerLane states");

 public:
  using params = Params;
  using words_type = Words;
  struct TempStorage {
    typename Words::TempStorage way[Ways];
  };
  static constexpr int rounds_per_block = Words::rounds_per_block;
  static constexpr int replicas = Replicas;
  static constexpr int ways = Ways;
  static constexpr int states_per_lane = StatesPerLane;
  /// Rows of a stream's tile: 32 * StatesPerLane.
  static constexpr int tile_rows = 32 * StatesPerLane;
  /// 32-bit entries a block's shared-memory table holds.
  static constexpr std::uint32_t table_entries = (std::uint32_t(1) << Params::scale_bits) * Replicas;

  /// @param table  the shared-memory table (table_entries entries, filled and synchronised)
  ECQ_DEVICE warp_decoder(TempStorage& storage, const std::uint32_t* table)
      : table_(std::uint32_t(__cvta_generic_to_shared(table)) + 4 * (detail::lane_id() % Replicas)),
        below_(detail::lane_id() == 0 ? 0u : 1u << (32 - detail::lane_id())) {
    ECQ_PRAGMA_UNROLL
    for (int w = 0; w < Ways; ++w) words_[w] = Words(storage.way[w]);
  }

  /// Begins the work items [first, last), first < last. Whole warp.
  template <class Streams>
  ECQ_DEVICE void start(const Streams& streams, std::uint32_t first, std::uint32_t last) {
    ECQ_PRAGMA_UNROLL
    for (int w = 0; w < Ways; ++w) words_[w].start(way_streams<Streams, Ways>{streams, std::uint32_t(w)}, first, last);
  }

  /// Reads the next item's initial states. Whole warp.
  template <class Streams>
  ECQ_DEVICE ECQ_FORCEINLINE void begin_tile(const Streams& streams) {
    ECQ_PRAGMA_UNROLL
    for (int w = 0; w < Ways; ++w) {
      words_[w].prepare(way_streams<Streams, Ways>{streams, std::uint32_t(w)});
      stream_start_[w] = words_[w].position();
      ECQ_PRAGMA_UNROLL
      for (int h = 0; h < StatesPerLane; ++h) x_[w][h] = words_[w].initial_state(detail::lane_id() + 32u * h);
      words_[w].consume(64 * StatesPerLane);
    }
  }

  /// Decodes rounds_per_block rounds of every way; after round k (0-based,
  /// a compile-time constant after unrolling) calls sink.step(k, j, entry)
  /// with this lane's table entry of state set j (see the class comment).
  /// Whole warp.
  template <class Streams, class Sink>
  ECQ_DEVICE ECQ_FORCEINLINE void decode_block(const Streams& streams, Sink& sink) {
    ECQ_PRAGMA_UNROLL
    for (int w = 0; w < Ways; ++w) words_[w].prepare(way_streams<Streams, Ways>{streams, std::uint32_t(w)});
    ECQ_PRAGMA_UNROLL
    for (int k = 0; k < rounds_per_block; ++k) {
      ECQ_PRAGMA_UNROLL
      for (int w = 0; w < Ways; ++w) {
        std::uint32_t e[StatesPerLane];
        round(w, e);
        ECQ_PRAGMA_UNROLL
        for (int h = 0; h < StatesPerLane; ++h) sink.step(k, w * StatesPerLane + h, e[h]);
      }
    }
  }

  /// Ends the current item, whose stream of way w has num_words(w) words.
  template <class Streams>
  ECQ_DEVICE ECQ_FORCEINLINE void end_tile(const Streams& streams, std::uint32_t item) {
    ECQ_PRAGMA_UNROLL
    for (int w = 0; w < Ways; ++w)
      words_[w].skip_to(stream_start_[w], streams(item * std::uint32_t(Ways) + std::uint32_t(w)).num_words);
  }

  /// This lane's state h of way w (every state equals L after a valid stream).
  ECQ_DEVICE std::uint32_t state(int w = 0, int h = 0) const { return x_[w][h]; }
  /// Words of way w's current stream read so far, initial states included
  /// (all of its num_words after a valid stream). Before end_tile.
  ECQ_DEVICE std::uint32_t words_read(int w = 0) const { return words_[w].position() - stream_start_[w]; }

 private:
  /// One round of way w: table lookups, state advances, renormalisation.
  /// The StatesPerLane chains only meet in the word positions: state set h
  /// takes its words after every lane of the sets below it.
  ECQ_DEVICE ECQ_FORCEINLINE void round(int w, std::uint32_t (&e)[StatesPerLane]) {
    std::uint32_t x[StatesPerLane], wanting[StatesPerLane];
    bool need[StatesPerLane];
    ECQ_PRAGMA_UNROLL
    for (int h = 0; h < StatesPerLane; ++h) {
      std::uint32_t slot;
      // The mask in PTX keeps the compiler from rewriting (x & m) * 4 as
      // (x << 2) & (m << 2) plus an add: LOP3 + LEA instead of three.
      asm("and.b32 %0, %1, %2;\n" : "=r"(slot) : "r"(x_[w][h]), "n"(Params::slot_mask));
      asm("ld.shared.u32 %0, [%1];\n" : "=r"(e[h]) : "r"(table_ + slot * (4 * Replicas)));
    }
    ECQ_PRAGMA_UNROLL
    for (int h = 0; h < StatesPerLane; ++h) {
      x[h] = Entry::template advance<Params>(x_[w][h], e[h]);
      need[h] = x[h] < Params::lower_bound;
      wanting[h] = __ballot_sync(0xffffffffu, need[h]);
    }
    // wanting * 2^(32 - lane) keeps the bits of the lanes below this one (an
    // IMAD instead of a LOP3 with %lanemask_lt: the ALU pipe is the busy one).
    // Every lane reads (a landed slot at most one past the round's words),
    // so the merge is a select, not a branch.
    std::uint32_t before = 0;
    ECQ_PRAGMA_UNROLL
    for (int h = 0; h < StatesPerLane; ++h) {
      const std::uint32_t word = words_[w].word(before + __popc(wanting[h] * below_));
      x_[w][h] = need[h] ? x[h] * 65536u + word : x[h];  // (x << 16) | word
      before += __popc(wanting[h]);
    }
    words_[w].consume(before);
  }

  Words words_[Ways];
  std::uint32_t table_;  // shared-window address of this lane's replica of slot 0
  std::uint32_t below_;  // 2^(32 - lane), 0 for lane 0
  std::uint32_t x_[Ways][StatesPerLane] = {};
  std::uint32_t stream_start_[Ways] = {};
};

ECQ_NAMESPACE_END

#endif  // ECQ_WARP_DECODE_CUH
