// ecq/cpu/tensor_decoder.hpp — READ ME FIRST
//
// The block decoder every CPU entry point of a container goes through
// (ecq/cpu/tensor_ops.hpp, the `ecq` tool, the examples): it picks the
// fastest kernel of ecq/cpu_decode.hpp for the container once, then decodes
// any block into row-major 16-bit symbols. Host only.
//
//   tensor_decoder d;
//   d.build(tensor);                                  // picks the kernel
//   d.decode_block(tile, chunk, dest, stride, scratch);
//   d.dot_affine_block(tile, chunk, args);           // fused affine GEMV of a block (AVX-512)
//
// Kernels. A container whose coder the SIMD kernels run (rans32x16,
// ScaleBits <= 12, at most 256 symbols, 8, 16, 32 or 64 lanes; ScaleBits <= 8
// with at most 16 symbols takes AVX-512's gather-free permute kernel, the
// fastest for 4-bit codes) is decoded by
// cpu_decoder (AVX-512, AVX2 or NEON, whatever the CPU and ECQ_CPU_PATH
// allow; the core step below when the scalar path is asked for or no SIMD
// kernel fits) into the block's stream order, then scattered to rows
// (ecq/cpu/detail/row_group_scatter.hpp; decode_block_float16 joins each
// symbol with its raw byte on the way, for the lossless float16 schemes);
// 64-lane blocks on the AVX-512 kernels are scattered while they decode,
// 64 columns at a time (row_scatter_sink64), never stored whole in stream
// order. Every other container (ScaleBits 13-15, larger alphabets, one lane)
// runs the core's checked decoding step with a sink that stores rows
// directly. Rows are 16-bit symbols, or bytes (decode_block's std::uint8_t
// overload) for alphabets of at most 256 symbols.
//
// Every path is CHECKED: for any payload bytes of a container that
// encoded_tensor::open accepted, decoding never reads outside the block or
// writes outside the block's rectangle of dest, and returns exactly the
// status decode_block_checked returns (truncated, corrupt_stream,
// trailing_data; corrupt_stream for a padding row that does not hold the pad
// symbol). On success the symbols equal decode_block_checked's, bit for bit.
// There is no separate unchecked path: the checks cost the SIMD kernels
// nothing measurable, so a tensor needs no trusted state to decode at full
// speed.
//
// Instantiations. The kernels are compiled for the 24 SIMD coder
// configurations (ScaleBits 7-12 x 4 lane counts; their SIMD kernels only,
// cpu_decoder::decode_simd) and the core step for the 9 ScaleBits, which is
// also their scalar path, once per program however many schemes and entry points use
// them: schemes are applied to decoded rows afterwards, so the decoders
// never multiply with the dequantisers. The one exception is the fused affine
// GEMV (dot_affine_block): 8 more decoding loops, for the 64-lane
// configurations (the gather kernel at ScaleBits 7-12, the permute kernel at
// 7 and 8), whatever the affine scheme: its sink takes the codes' shape at
// run time.
#ifndef ECQ_CPU_TENSOR_DECODER_HPP
#define ECQ_CPU_TENSOR_DECODER_HPP

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../config.hpp"
#include "../container.hpp"
#include "../cpu_decode.hpp"
#include "../cpu_features.hpp"
#include "../status.hpp"
#include "../symbol_table.hpp"
#include "../schemes/float16.hpp"
#include "../tensor_view.hpp"
#include "detail/affine_block_dot.hpp"
#include "detail/row_group_scatter.hpp"

ECQ_NAMESPACE_BEGIN

/// Per-thread scratch of tensor_decoder::decode_block (reuse it across calls
/// on one thread to avoid reallocations).
struct block_scratch {
  std::vector<std::uint8_t> stream_order;
};

/// See the file comment. Holds a view of the tensor it was built for, which
/// must outlive it. Const member functions may be called from many threads.
class tensor_decoder {
 public:
  /// Chooses the kernel for t.
  /// @return status::ok; status::invalid_argument if t holds no container;
  ///         status::unsupported_parameters if `path` names a path this CPU
  ///         cannot run (ecq/cpu_features.hpp).
  status build(const encoded_tensor& t, cpu_path path = cpu_path::automatic) {
    impl_.reset();
    if (t.data() == nullptr) return status::invalid_argument;
    if (path != cpu_path::automatic && !cpu_path_supported(path)) return status::unsupported_parameters;
    view_ = t.view();
    const tensor_geometry& g = t.geometry();
    if (g.state_bits != 32 || g.word_bits != 16) return status::unsupported_parameters;
    if (g.alphabet_size <= 256) {
      const status st = build_simd(t, path);
      if (st != status::ok || impl_) return st;
    }
    switch (g.scale_bits) {
      case 7: return make_core<7>();
      case 8: return make_core<8>();
      case 9: return make_core<9>();
      case 10: return make_core<10>();
      case 11: return make_core<11>();
      case 12: return make_core<12>();
      case 13: return make_core<13>();
      case 14: return make_core<14>();
      case 15: return make_core<15>();
      default: return status::unsupported_parameters;
    }
  }

  /// The kernel the blocks run.
  cpu_kernel kernel() const { return impl_ ? impl_->kernel() : cpu_kernel::scalar; }
  /// Whether decode_stream_order is available (the coder is one of the SIMD
  /// configurations, whatever kernel runs it).
  bool has_stream_order() const { return impl_ && impl_->has_stream_order(); }

  /// CHECKED decode of block (tile, chunk) in stream order, one byte per
  /// symbol: scratch.stream_order[(g * columns + c) * lanes + r] is symbol
  /// (row g * lanes + r of the block, column c), padding rows included (and
  /// checked: they must hold the pad symbol).
  /// @return as decode_block; status::unsupported_parameters when
  ///         !has_stream_order().
  status decode_stream_order(std::uint64_t tile, std::uint64_t chunk, block_scratch& scratch) const {
    const tensor_geometry& g = view_.geometry;
    if (!impl_ || tile >= g.num_tiles() || chunk >= g.num_chunks()) return status::invalid_argument;
    return impl_->decode_stream_order(view_.block(tile, chunk), scratch);
  }

  /// CHECKED fused decode and affine dot of block (tile, chunk): what
  /// decode_stream_order followed by detail::affine_block_dot_simd<16, ...>(a)
  /// computes (the same sums, bit for bit, and the same status), without
  /// storing the symbols (detail::affine_rows_dot_sink). a describes the
  /// block (a.symbols is not read); a.batch <= affine_rows_dot_sink::max_batch.
  /// @return as decode_stream_order; status::unsupported_parameters when the
  ///         block's kernel is not an AVX-512 one or the coder has other than
  ///         64 lanes (then nothing was decoded).
  status dot_affine_block(std::uint64_t tile, std::uint64_t chunk, const detail::affine_block_dot_args& a) const {
    const tensor_geometry& g = view_.geometry;
    if (!impl_ || tile >= g.num_tiles() || chunk >= g.num_chunks()) return status::invalid_argument;
    return impl_->dot_affine(view_.block(tile, chunk), a);
  }

  /// CHECKED decode of block (tile, chunk): symbol (row, column) of the block
  /// goes to dest[(row - first_row) * stride + (column - first_column)], for
  /// the block's valid rows (ecq/tensor_view.hpp: block_view).
  /// @return status::ok; status::invalid_argument before build() or for a
  ///         tile or chunk out of range, or stride < the block's columns;
  ///         else as decode_block_checked (see the file comment).
  /// stores: row_stores::streaming for output far larger than the caches
  /// that is not read again soon (ecq/cpu/detail/row_group_scatter.hpp).
  status decode_block(std::uint64_t tile, std::uint64_t chunk, std::uint16_t* dest, std::size_t stride,
                      block_scratch& scratch, detail::row_stores stores = detail::row_stores::cached) const {
    const tensor_geometry& g = view_.geometry;
    if (!impl_ || tile >= g.num_tiles() || chunk >= g.num_chunks() || stride < g.columns_in_chunk(chunk))
      return status::invalid_argument;
    return impl_->decode(view_.block(tile, chunk), dest, stride, {}, stores, scratch);
  }

  /// As decode_block, one byte per symbol: for alphabets of at most 256
  /// symbols, half the output of the 16-bit version (what a large tensor's
  /// decode costs in memory traffic).
  /// @return as decode_block; status::unsupported_parameters if the
  ///         tensor's alphabet has more than 256 symbols.
  status decode_block(std::uint64_t tile, std::uint64_t chunk, std::uint8_t* dest, std::size_t stride,
                      block_scratch& scratch, detail::row_stores stores = detail::row_stores::cached) const {
    const tensor_geometry& g = view_.geometry;
    if (!impl_ || tile >= g.num_tiles() || chunk >= g.num_chunks() || stride < g.columns_in_chunk(chunk))
      return status::invalid_argument;
    if (g.alphabet_size > 256) return status::unsupported_parameters;
    return impl_->decode(view_.block(tile, chunk), dest, stride, stores, scratch);
  }

  /// As decode_block, storing the 16-bit patterns of a lossless float16
  /// scheme (ecq/schemes/float16.hpp) instead of the symbols: symbol (row,
  /// column) of the block goes to dest[...] as above, as
  /// float16_split::join(symbol, raw[(row - first_row) * raw_stride +
  /// (column - first_column)]). raw holds the block's valid rows of raw
  /// bytes, each at least the block's columns long.
  /// @return as decode_block.
  status decode_block_float16(std::uint64_t tile, std::uint64_t chunk, const std::uint8_t* raw, std::size_t raw_stride,
                              std::uint16_t* dest, std::size_t stride, block_scratch& scratch,
                              detail::row_stores stores = detail::row_stores::cached) const {
    const tensor_geometry& g = view_.geometry;
    if (!impl_ || tile >= g.num_tiles() || chunk >= g.num_chunks() || stride < g.columns_in_chunk(chunk) ||
        raw == nullptr || raw_stride < g.columns_in_chunk(chunk))
      return status::invalid_argument;
    return impl_->decode(view_.block(tile, chunk), dest, stride, detail::raw_rows{raw, raw_stride}, stores, scratch);
  }

 private:
  struct kernel_base {
    virtual ~kernel_base() = default;
    virtual cpu_kernel kernel() const = 0;
    virtual status decode(const block_view& b, std::uint16_t* dest, std::size_t stride, detail::raw_rows raw,
                          detail::row_stores stores, block_scratch& s) const = 0;
    virtual status decode(const block_view& b, std::uint8_t* dest, std::size_t stride, detail::row_stores stores,
                          block_scratch& s) const = 0;
    virtual bool has_stream_order() const { return false; }
    virtual status decode_stream_order(const block_view&, block_scratch&) const {
      return status::unsupported_parameters;
    }
    virtual status dot_affine(const block_view&, const detail::affine_block_dot_args&) const {
      return status::unsupported_parameters;
    }
  };

  // The other coder configurations: the core's checked decoding step with the
  // lane count a run-time value, so one instance per ScaleBits serves every
  // lane count (compile time: 9 instances instead of visit_coder's 45).
  // Its statuses are interleaved_decode_checked's: the same checks in the
  // same order (decode_block_checked's tests hold it to that).
  template <int ScaleBits>
  struct core_kernel final : kernel_base {
    using params = rans32x16<ScaleBits>;
    using table_view = decode_table_view<ScaleBits, decode_symbol_bits(ScaleBits)>;
    table_view table;
    explicit core_kernel(table_view t) : table(t) {}
    cpu_kernel kernel() const override { return cpu_kernel::scalar; }
    status decode(const block_view& b, std::uint16_t* dest, std::size_t stride, detail::raw_rows raw,
                  detail::row_stores, block_scratch&) const override {
      return decode_rows(b, dest, stride, raw);
    }
    status decode(const block_view& b, std::uint8_t* dest, std::size_t stride, detail::row_stores,
                  block_scratch&) const override {
      return decode_rows(b, dest, stride, {});
    }
    template <class T>
    status decode_rows(const block_view& b, T* dest, std::size_t stride, detail::raw_rows raw) const {
      using word = std::uint16_t;
      if (b.size_bytes % sizeof(word) != 0 || b.lanes == 0 || b.lanes > max_lanes) return status::invalid_argument;
      auto store = [&](std::uint64_t row, std::uint64_t column, std::uint32_t symbol) {
        const std::size_t r = std::size_t(row - b.first_row), c = std::size_t(column - b.first_column);
        dest[r * stride + c] = raw.bytes == nullptr ? T(symbol) : T(float16_split::join(symbol, raw.bytes[r * raw.stride + c]));
      };
      detail::tile_order_sink<decltype(store), true> to{store, b};
      const word* words = b.words<word>();
      const std::size_t num_words = std::size_t(b.num_words<word>()), n = std::size_t(b.num_symbols());
      const std::size_t lanes = b.lanes;
      if (num_words < lanes * params::words_per_state) return status::truncated;
      std::uint32_t x[max_lanes];
      for (std::size_t j = 0; j < lanes; ++j) {
        x[j] = rans_load_state<params>(words + j * params::words_per_state);
        if (!rans_state_in_range<params>(x[j])) return status::corrupt_stream;
      }
      detail::checked_word_reader<word> read{words + lanes * params::words_per_state, words + num_words, false};
      std::size_t i = 0;
      for (; n - i >= lanes && !read.overrun; i += lanes)
        for (std::size_t j = 0; j < lanes; ++j) detail::decode_one<params>(x[j], i + j, table, read, to);
      for (std::size_t j = 0; !read.overrun && i + j < n; ++j) detail::decode_one<params>(x[j], i + j, table, read, to);
      if (read.overrun) return status::truncated;
      for (std::size_t j = 0; j < lanes; ++j)
        if (x[j] != rans_init<params>()) return status::corrupt_stream;
      if (read.p != read.end) return status::trailing_data;
      return to.bad_padding ? status::corrupt_stream : status::ok;
    }
  };
  static constexpr std::uint32_t max_lanes = 64;

  template <int ScaleBits>
  status make_core() {
    using table_view = typename core_kernel<ScaleBits>::table_view;
    impl_.reset(new core_kernel<ScaleBits>(
        table_view{static_cast<const typename table_view::entry_type*>(view_.decode_table)}));
    return status::ok;
  }

  // A cpu_decoder kernel into stream order, then a scatter to rows. Symbols
  // of up to 8 bits (at most ScaleBits: a table has as many slots).
  template <int ScaleBits, int Lanes>
  struct simd_kernel final : kernel_base {
    static constexpr int symbol_bits = ScaleBits < 8 ? ScaleBits : 8;
    decode_table<ScaleBits, symbol_bits> table;
    cpu_decoder<rans32x16<ScaleBits>, Lanes, symbol_bits> decoder;

    cpu_kernel kernel() const override { return decoder.kernel(); }
    bool has_stream_order() const override { return true; }
    status decode_stream_order(const block_view& b, block_scratch& s) const override {
      if (b.lanes != std::uint32_t(Lanes) || b.size_bytes % 2 != 0) return status::invalid_argument;
      const std::size_t n = std::size_t(b.num_symbols());
      if (s.stream_order.size() < n) s.stream_order.resize(n);
      const status st = decoder.decode_simd(b.words<std::uint16_t>(), std::size_t(b.num_words<std::uint16_t>()), n,
                                            s.stream_order.data());
      if (st != status::ok) return st;
      // Only the last row group can hold padding rows.
      const std::uint32_t last = (b.row_groups - 1) * std::uint32_t(Lanes);
      return detail::padding_holds(s.stream_order.data() + std::size_t(last) * b.columns, b.columns, Lanes,
                                   b.valid_rows - last, b.pad_symbol)
                 ? status::ok
                 : status::corrupt_stream;
    }
#if ECQ_HAS_X86_KERNELS()
    status dot_affine(const block_view& b, const detail::affine_block_dot_args& a) const override {
      // 64 lanes only (the storage layout of large tensors, where the GEMV's
      // time goes): each configuration instantiates the decoding loop once more.
      if constexpr (decltype(decoder)::has_avx512_kernel && Lanes == 64) {
        using sink = detail::affine_rows_dot_sink<Lanes>;
        if (decoder.path() != cpu_path::avx512 || a.batch > sink::max_batch) return status::unsupported_parameters;
        if (b.lanes != std::uint32_t(Lanes) || a.lanes != std::uint32_t(Lanes) || b.size_bytes % 2 != 0)
          return status::invalid_argument;
        typename sink::args sa{&a, b.pad_symbol, false};
        const status st = decoder.template decode_to_sink<sink>(
            b.words<std::uint16_t>(), std::size_t(b.num_words<std::uint16_t>()), std::size_t(b.num_symbols()), sa);
        return st != status::ok ? st : sa.padding_ok ? status::ok : status::corrupt_stream;
      }
      (void)b, (void)a;
      return status::unsupported_parameters;
    }
#endif
    status decode(const block_view& b, std::uint16_t* dest, std::size_t stride, detail::raw_rows raw,
                  detail::row_stores stores, block_scratch& s) const override {
      return decode_rows(b, dest, stride, raw, stores, s);
    }
    status decode(const block_view& b, std::uint8_t* dest, std::size_t stride, detail::row_stores stores,
                  block_scratch& s) const override {
      return decode_rows(b, dest, stride, {}, stores, s);
    }
    template <class T>
    status decode_rows(const block_view& b, T* dest, std::size_t stride, detail::raw_rows raw,
                       detail::row_stores stores, block_scratch& s) const {
#if ECQ_HAS_X86_KERNELS()
      // 64 lanes on AVX-512: scattered to rows as the kernel decodes (row_scatter_sink64).
      if constexpr (Lanes == 64) {
        if (decoder.path() == cpu_path::avx512) {
          if (b.lanes != std::uint32_t(Lanes) || b.size_bytes % 2 != 0) return status::invalid_argument;
          using sink = detail::row_scatter_sink64<T>;
          typename sink::args a{dest, stride, raw, stores, b.columns, b.valid_rows, b.pad_symbol, false};
          const status st = decoder.template decode_to_sink<sink>(
              b.words<std::uint16_t>(), std::size_t(b.num_words<std::uint16_t>()), std::size_t(b.num_symbols()), a);
          if (stores == detail::row_stores::streaming) _mm_sfence();  // on every status: ordered before the caller's next step
          if (st != status::ok) return st;
          return a.bad_padding ? status::corrupt_stream : status::ok;
        }
      }
#endif
      const status st = decode_stream_order(b, s);
      if (st != status::ok) return st;
      (void)stores;  // for the AVX-512 pieces only
      const std::size_t group_symbols = std::size_t(b.columns) * Lanes;
      for (std::uint32_t grp = 0; grp < b.row_groups; ++grp) {
        const std::uint32_t first = grp * std::uint32_t(Lanes);
        const std::uint32_t rows = b.valid_rows - first < std::uint32_t(Lanes) ? b.valid_rows - first : Lanes;
        const detail::raw_rows group_raw{raw.bytes ? raw.bytes + std::size_t(first) * raw.stride : nullptr, raw.stride};
        detail::scatter_row_group(s.stream_order.data() + grp * group_symbols, b.columns, Lanes, rows,
                                  dest + std::size_t(first) * stride, stride, group_raw);
      }
      return status::ok;
    }
  };

  template <int ScaleBits, int Lanes>
  status make_simd(const encoded_tensor& t, cpu_path path) {
    std::unique_ptr<simd_kernel<ScaleBits, Lanes>> k(new simd_kernel<ScaleBits, Lanes>());
    status st = k->table.build(t.frequencies().data(), std::uint32_t(t.frequencies().size()));
    if (st != status::ok) return st;
    // The scalar path, or an explicit path without a kernel for these
    // parameters, runs the core step (run-time lanes): compiling cpu_decoder's
    // scalar loop for each of the 24 configurations made a program using
    // ecq/cpu/tensor_ops.hpp take 30% longer to compile (docs/performance.md).
    if (k->decoder.build(k->table.view(), path) != status::ok || k->decoder.kernel() == cpu_kernel::scalar)
      return make_core<ScaleBits>();
    impl_ = std::move(k);
    return status::ok;
  }

  template <int ScaleBits>
  status build_simd_lanes(const encoded_tensor& t, cpu_path path) {
    switch (t.geometry().lanes) {
      case 8: return make_simd<ScaleBits, 8>(t, path);
      case 16: return make_simd<ScaleBits, 16>(t, path);
      case 32: return make_simd<ScaleBits, 32>(t, path);
      case 64: return make_simd<ScaleBits, 64>(t, path);
      default: return status::ok;
    }
  }

  status build_simd(const encoded_tensor& t, cpu_path path) {
    // ScaleBits 7 holds at most 128 symbols.
    if (t.geometry().scale_bits == 7 && t.geometry().alphabet_size > 128) return status::ok;
    switch (t.geometry().scale_bits) {
      case 7: return build_simd_lanes<7>(t, path);
      case 8: return build_simd_lanes<8>(t, path);
      case 9: return build_simd_lanes<9>(t, path);
      case 10: return build_simd_lanes<10>(t, path);
      case 11: return build_simd_lanes<11>(t, path);
      case 12: return build_simd_lanes<12>(t, path);
      default: return status::ok;
    }
  }

  encoded_tensor_view view_{};
  std::shared_ptr<const kernel_base> impl_;
};

ECQ_NAMESPACE_END

#endif  // ECQ_CPU_TENSOR_DECODER_HPP
