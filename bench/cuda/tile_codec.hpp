// bench/cuda/tile_codec.hpp — READ ME FIRST
//
// Host side of the GPU benchmark and examples: synthetic weights, the two
// schemes the GPU kernels run (lossless bf16 with exponent pairs, 4-bit
// affine with four codes per symbol), and their encoding into the tile
// layout of the container (ecq/tensor_view.hpp: a block = 32 rows x a chunk
// of symbol columns, symbol index c * 32 + r) with the core encoder
// (ecq/interleaved_rans.hpp), plus the raw bits and side data in the kernel
// layout of ecq/gemv_dequant.cuh. Host only; compiled by nvcc in the .cu
// files that include it.
//
// Item order: item = tile * chunks + chunk, so one warp's contiguous range of
// items walks along K of a row tile before the next one.
//
// The layouts the library writes (32-row tiles of 256 weights, ecq pack
// --layout gpu) come from the library's encoder, ecq/gpu_container.hpp:
// from_container turns such a container into this file's arrays. The
// encoder here remains for what the GPU layout does not hold (64-row tiles,
// other chunk sizes) and for the plain 4-bit baseline.
#ifndef ECQ_BENCH_CUDA_TILE_CODEC_HPP
#define ECQ_BENCH_CUDA_TILE_CODEC_HPP

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <thread>
#include <vector>

#include <ecq/ecq.hpp>
#include <ecq/gemv_dequant.cuh>
#include <ecq/gpu_container.hpp>
#include <ecq/narrow_decode_table.hpp>

namespace ecq_bench {

/// Runs f(begin, end) over [0, n) on all hardware threads.
inline void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& f) {
  const std::size_t threads = std::max<std::size_t>(1, std::min<std::size_t>(std::thread::hardware_concurrency(), 64));
  if (n < 4096 || threads == 1) {
    f(0, n);
    return;
  }
  std::vector<std::thread> pool;
  for (std::size_t t = 0; t < threads; ++t)
    pool.emplace_back([&, t] { f(n * t / threads, n * (t + 1) / threads); });
  for (auto& th : pool) th.join();
}

/// splitmix64: seeds and the per-element generator (counter based, so the
/// weights do not depend on the thread count).
inline std::uint64_t mix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
inline double uniform01(std::uint64_t bits) { return (double(bits >> 11) + 0.5) * (1.0 / 9007199254740992.0); }
inline double normal_at(std::uint64_t seed, std::uint64_t i, int k) {
  const double u1 = uniform01(mix64(seed ^ (i * 16 + std::uint64_t(k) * 2)));
  const double u2 = uniform01(mix64(seed ^ (i * 16 + std::uint64_t(k) * 2 + 1)));
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

/// Student-t with 8 degrees of freedom times `scale`: a heavy-tailed stand-in
/// for trained weights (bf16 exponent entropy ~2.62 bits and affine-4 g64
/// code entropy ~3.69 bits, next to 2.55-2.63 and 3.73-3.78 measured on the
/// real transformer in ../shared/data). chi2_8 / 8 = Gamma(4, 1) / 4.
inline float t8_at(std::uint64_t seed, std::uint64_t i, float scale) {
  double g = 0.0;
  for (int k = 0; k < 4; ++k) g -= std::log(uniform01(mix64(seed ^ ~(i * 8 + std::uint64_t(k)))));
  return float(normal_at(seed, i, 0) / std::sqrt(g / 4.0)) * scale;
}

inline std::uint16_t float_to_bf16(float f) {
  std::uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fffu + ((u >> 16) & 1u);
  return std::uint16_t(u >> 16);
}
inline float bf16_to_float(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

/// Geometry of a matrix cut into items of tile_rows (32 or 64) rows x
/// chunk_cols weight columns; an item's stream interleaves tile_rows states.
struct tile_layout {
  std::uint32_t rows = 0, cols = 0, chunk_cols = 0, weights_per_symbol = 1, tile_rows = 32;
  std::uint32_t tiles() const { return rows / tile_rows; }
  std::uint32_t chunks() const { return cols / chunk_cols; }
  std::uint32_t items() const { return tiles() * chunks(); }
  std::uint32_t rounds() const { return chunk_cols / weights_per_symbol; }
  std::uint32_t symbols_per_row() const { return cols / weights_per_symbol; }
};

/// Every item's stream, each padded to 8 words (16 bytes) as the container does.
struct encoded_streams {
  int scale_bits = 0;
  std::vector<std::uint32_t> freqs;
  std::vector<std::uint16_t> words;
  std::vector<std::uint32_t> offset;  // first word of item i
  std::vector<std::uint32_t> count;   // words of item i (unpadded)
  double entropy_bits_per_symbol = 0;
  std::uint64_t stream_bytes() const { return std::uint64_t(words.size()) * 2; }
};

namespace detail {

template <int S, int N>
bool encode_items_n(const tile_layout& L, const std::vector<std::uint16_t>& symbols, std::uint32_t alphabet,
                    encoded_streams* out) {
  using params = ecq::rans32x16<S>;
  ecq::encode_table<params> table;
  if (table.build(out->freqs.data(), alphabet) != ecq::status::ok) return false;
  const std::uint32_t items = L.items(), rounds = L.rounds(), spr = L.symbols_per_row();
  std::vector<std::vector<std::uint16_t>> streams(items);
  bool ok = true;
  parallel_for(items, [&](std::size_t a, std::size_t b) {
    std::vector<std::uint16_t> sym(std::size_t(rounds) * N);
    for (std::size_t it = a; it < b; ++it) {
      const std::uint32_t tile = std::uint32_t(it / L.chunks()), chunk = std::uint32_t(it % L.chunks());
      for (std::uint32_t c = 0; c < rounds; ++c)
        for (std::uint32_t r = 0; r < N; ++r)
          sym[std::size_t(c) * N + r] = symbols[std::size_t(tile * N + r) * spr + std::size_t(chunk) * rounds + c];
      ecq::status st;
      streams[it] = ecq::interleaved_encode<params, N>(sym.data(), sym.size(), table, &st);
      if (st != ecq::status::ok) ok = false;
    }
  });
  if (!ok) return false;
  out->offset.resize(items);
  out->count.resize(items);
  std::size_t total = 0;
  for (std::uint32_t i = 0; i < items; ++i) {
    out->offset[i] = std::uint32_t(total);
    out->count[i] = std::uint32_t(streams[i].size());
    total += (streams[i].size() + 7) & ~std::size_t(7);
  }
  out->words.assign(total, 0);
  for (std::uint32_t i = 0; i < items; ++i)
    std::copy(streams[i].begin(), streams[i].end(), out->words.begin() + out->offset[i]);
  return true;
}

template <int S>
bool encode_items_s(const tile_layout& L, const std::vector<std::uint16_t>& symbols, std::uint32_t alphabet,
                    encoded_streams* out) {
  if (L.tile_rows == 64) return encode_items_n<S, 64>(L, symbols, alphabet, out);
  return L.tile_rows == 32 && encode_items_n<S, 32>(L, symbols, alphabet, out);
}

}  // namespace detail

/// Normalises the symbols' histogram for the largest ScaleBits in [10,
/// max_scale_bits] (at most 12) that admits a narrow decode table, and
/// encodes every item. @return false if no ScaleBits qualifies or encoding fails.
inline bool encode_items(const tile_layout& L, const std::vector<std::uint16_t>& symbols, std::uint32_t alphabet,
                         encoded_streams* out, int max_scale_bits = 12) {
  std::vector<std::uint64_t> counts(alphabet, 0);
  for (std::uint16_t s : symbols) ++counts[s];
  out->entropy_bits_per_symbol = ecq::entropy_bits_per_symbol(counts.data(), alphabet);
  out->freqs.assign(alphabet, 0);
  out->scale_bits = ecq::choose_narrow_scale_bits(counts.data(), alphabet, 10, max_scale_bits < 12 ? max_scale_bits : 12,
                                                  out->freqs.data());
  switch (out->scale_bits) {
    case 10: return detail::encode_items_s<10>(L, symbols, alphabet, out);
    case 11: return detail::encode_items_s<11>(L, symbols, alphabet, out);
    case 12: return detail::encode_items_s<12>(L, symbols, alphabet, out);
    default: return false;
  }
}

/// Lossless bf16 with exponent pairs (ecq/gemv_dequant.cuh, bf16_pair_dequant).
struct bf16_pair_tensor {
  tile_layout layout;                  // weights_per_symbol = 2
  std::vector<std::uint8_t> exponents; // rank -> exponent (at most 64)
  std::vector<std::uint16_t> symbols;  // row-major, rows * cols / 2
  std::vector<std::uint32_t> raw;      // kernel layout, per item
  std::uint32_t raw_words_per_item = 0;
};

/// Splits bf16 weights (row-major rows x cols) into exponent-pair symbols and
/// kernel-layout raw units. With high_byte, the split is at the byte boundary
/// instead (session 7's prototype, bf16_byte_split_dequant in
/// reference_kernels.cuh; not a file format): the coded part is the high byte
/// (sign and the exponent's top 7 bits; `exponents` then lists high bytes),
/// the raw byte the low one. @return false if more than 64 values occur.
inline bool make_bf16_pairs(const std::vector<std::uint16_t>& w, tile_layout L, bf16_pair_tensor* out,
                            bool high_byte = false) {
  auto coded = [high_byte](std::uint16_t b) { return high_byte ? std::uint32_t(b >> 8) : std::uint32_t((b >> 7) & 0xff); };
  auto raw_byte = [high_byte](std::uint16_t b) {
    return high_byte ? std::uint32_t(b & 0xffu) : ecq::bf16_pair_dequant::raw_byte(b);
  };
  L.weights_per_symbol = 2;
  out->layout = L;
  int rank[256];
  std::vector<std::uint8_t> present(256, 0);
  for (std::uint16_t b : w) present[coded(b)] = 1;
  out->exponents.clear();
  for (int e = 0; e < 256; ++e) {
    rank[e] = present[e] ? int(out->exponents.size()) : -1;
    if (present[e]) out->exponents.push_back(std::uint8_t(e));
  }
  if (out->exponents.size() > 64) return false;
  const std::size_t n = std::size_t(L.rows) * L.cols;
  out->symbols.resize(n / 2);
  parallel_for(n / 2, [&](std::size_t a, std::size_t b) {
    for (std::size_t i = a; i < b; ++i)
      out->symbols[i] = std::uint16_t(rank[coded(w[2 * i])] | (rank[coded(w[2 * i + 1])] << 6));
  });
  // Raw: per item, units of 8 rounds, [unit][tile row][16 bytes]; round k of
  // a unit in bytes 2k, 2k+1.
  const std::uint32_t rounds = L.rounds(), T = L.tile_rows;
  out->raw_words_per_item = rounds * T * 16 / 32;  // 16 raw bits per row-round
  out->raw.assign(std::size_t(L.items()) * out->raw_words_per_item, 0);
  parallel_for(L.items(), [&](std::size_t a, std::size_t b) {
    for (std::size_t it = a; it < b; ++it) {
      const std::uint32_t tile = std::uint32_t(it / L.chunks()), chunk = std::uint32_t(it % L.chunks());
      std::uint32_t* dst = out->raw.data() + it * out->raw_words_per_item;
      for (std::uint32_t r = 0; r < T; ++r)
        for (std::uint32_t k = 0; k < rounds; ++k) {
          const std::size_t col = std::size_t(chunk) * L.chunk_cols + 2 * k;
          const std::size_t row = std::size_t(tile) * T + r;
          const std::uint32_t v = raw_byte(w[row * L.cols + col]) | (raw_byte(w[row * L.cols + col + 1]) << 8);
          const std::uint32_t unit = k / 8, in_unit = k % 8;
          const std::size_t word = (std::size_t(unit) * T + r) * 4 + in_unit / 2;
          dst[word] |= v << (16 * (in_unit % 2));
        }
    }
  });
  return true;
}

/// 4-bit affine (min/max per group of G along a row; scale, bias in bf16)
/// with symbol_packing<4, 4, 2> symbols.
struct affine4_tensor {
  tile_layout layout;                  // weights_per_symbol = 4
  std::uint32_t group = 128;
  std::vector<std::uint8_t> codes;     // row-major, one code per byte
  std::vector<std::uint16_t> scale, bias;  // bf16, row-major [row][group]
  std::vector<std::uint16_t> symbols;  // row-major, rows * cols / 4
  std::vector<std::uint32_t> raw;      // kernel layout, per item
  std::vector<std::uint32_t> side;     // kernel layout: per item, per group, tile_rows rows
  std::vector<std::uint32_t> plain;    // plain 4-bit kernel layout (32-row tiles only): per item, per 32 columns,
                                       // 32 lanes x 4 words
  std::uint32_t raw_words_per_item = 0, side_words_per_item = 0, plain_words_per_item = 0;
  /// Dequantised weight (row, col), as the scheme defines it.
  double weight(std::size_t row, std::size_t col) const {
    const std::size_t g = row * (layout.cols / group) + col / group;
    return double(bf16_to_float(scale[g])) * codes[row * layout.cols + col] + double(bf16_to_float(bias[g]));
  }
};

inline void make_affine4_layout(affine4_tensor* out);

inline void make_affine4(const std::vector<float>& w, tile_layout L, std::uint32_t group, affine4_tensor* out) {
  L.weights_per_symbol = 4;
  out->layout = L;
  out->group = group;
  const std::size_t n = std::size_t(L.rows) * L.cols, gpr = L.cols / group;
  out->codes.resize(n);
  out->scale.resize(std::size_t(L.rows) * gpr);
  out->bias.resize(std::size_t(L.rows) * gpr);
  parallel_for(std::size_t(L.rows) * gpr, [&](std::size_t a, std::size_t b) {
    for (std::size_t g = a; g < b; ++g) {
      const float* x = w.data() + g * group;
      float mn = x[0], mx = x[0];
      for (std::uint32_t j = 1; j < group; ++j) {
        mn = std::min(mn, x[j]);
        mx = std::max(mx, x[j]);
      }
      const std::uint16_t sb = float_to_bf16(mx > mn ? (mx - mn) / 15.0f : 1.0f), bb = float_to_bf16(mn);
      out->scale[g] = sb;
      out->bias[g] = bb;
      const float s = bf16_to_float(sb), o = bf16_to_float(bb);
      for (std::uint32_t j = 0; j < group; ++j)
        out->codes[g * group + j] = std::uint8_t(std::min(15.0f, std::max(0.0f, std::nearbyint((x[j] - o) / s))));
    }
  });
  out->symbols.resize(n / 4);
  parallel_for(n / 4, [&](std::size_t a, std::size_t b) {
    for (std::size_t i = a; i < b; ++i)
      out->symbols[i] = std::uint16_t(ecq::symbol_packing<4, 4, 2>::symbol_of(&out->codes[4 * i]));
  });
  make_affine4_layout(out);
}

/// (Re)builds the kernel-layout arrays (raw, side, plain) of an affine4_tensor
/// for its layout's chunk size.
inline void make_affine4_layout(affine4_tensor* out) {
  const tile_layout L = out->layout;
  const std::uint32_t group = out->group;
  const std::size_t gpr = L.cols / group;
  const std::uint32_t rounds = L.rounds(), groups_per_item = L.chunk_cols / group, T = L.tile_rows;
  const bool plain_too = T == 32;
  out->raw_words_per_item = rounds * T * 8 / 32;
  out->side_words_per_item = groups_per_item * T;
  out->plain_words_per_item = plain_too ? L.chunk_cols / 8 * 32 : 0;
  out->raw.assign(std::size_t(L.items()) * out->raw_words_per_item, 0);
  out->side.assign(std::size_t(L.items()) * out->side_words_per_item, 0);
  out->plain.assign(std::size_t(L.items()) * out->plain_words_per_item, 0);
  parallel_for(L.items(), [&](std::size_t a, std::size_t b) {
    for (std::size_t it = a; it < b; ++it) {
      const std::uint32_t tile = std::uint32_t(it / L.chunks()), chunk = std::uint32_t(it % L.chunks());
      std::uint32_t* raw = out->raw.data() + it * out->raw_words_per_item;
      std::uint32_t* side = out->side.data() + it * out->side_words_per_item;
      std::uint32_t* plain = out->plain.data() + it * out->plain_words_per_item;
      for (std::uint32_t r = 0; r < T; ++r) {
        const std::size_t row = std::size_t(tile) * T + r, col0 = std::size_t(chunk) * L.chunk_cols;
        const std::uint8_t* q = out->codes.data() + row * L.cols + col0;
        for (std::uint32_t k = 0; k < rounds; ++k) {
          // raw unit = 8 rounds: [unit][lane][2 words], word = k % 8 / 4
          const std::size_t word = (std::size_t(k / 8) * T + r) * 2 + (k % 8) / 4;
          raw[word] |= ecq::affine4_quad_dequant<64>::raw_bits(int(k % 4), q[4 * k] & 3u, q[4 * k + 1] & 3u,
                                                               q[4 * k + 2] & 3u, q[4 * k + 3] & 3u);
        }
        for (std::uint32_t g = 0; g < groups_per_item; ++g) {
          const std::size_t gi = row * gpr + col0 / group + g;
          side[g * T + r] = std::uint32_t(out->scale[gi]) | (std::uint32_t(out->bias[gi]) << 16);
        }
        for (std::uint32_t c = 0; plain_too && c < L.chunk_cols; ++c)  // [32-column block][lane][16 bytes], nibble c % 32
          plain[(std::size_t(c / 32) * 32 + r) * 4 + (c % 32) / 8] |= std::uint32_t(q[c]) << (4 * (c % 8));
      }
    }
  });
}

/// The arrays of a GPU-layout container made by the library
/// (ecq/gpu_container.hpp): the streams (the container's payload, blocks
/// padded to 16 bytes as here), each item's word offset and count (its block
/// index), the raw units (section 10), the side words (section 11, if side
/// is not null) and, if table is not null, the narrow table of `kind`.
/// @return false if the container is not in the GPU layout.
inline bool from_container(const ecq::encoded_tensor& t, ecq::gpu_table_kind kind, encoded_streams* s,
                           std::vector<std::uint32_t>* raw, std::vector<std::uint32_t>* side,
                           std::vector<std::uint32_t>* table) {
  ecq::gpu_tensor_layout L;
  if (ecq::check_gpu_layout(t, &L) != ecq::status::ok ||
      (table != nullptr && ecq::build_gpu_table(t, L, kind, table) != ecq::status::ok))
    return false;
  const std::size_t blocks = std::size_t(L.tiles) * L.chunks;
  const std::uint64_t* index = t.view().block_index();
  s->scale_bits = int(L.scale_bits);
  s->freqs = t.frequencies();
  std::vector<std::uint64_t> f(s->freqs.begin(), s->freqs.end());
  s->entropy_bits_per_symbol = ecq::entropy_bits_per_symbol(f.data(), std::uint32_t(f.size()));  // of the table
  s->words.resize(std::size_t(t.size() - ecq::container_checksum_size - L.payload_offset) / 2);
  std::memcpy(s->words.data(), t.data() + L.payload_offset, s->words.size() * 2);
  s->offset.resize(blocks);
  s->count.resize(blocks);
  for (std::size_t b = 0; b < blocks; ++b) {
    s->offset[b] = std::uint32_t(index[2 * b] / 2);
    s->count[b] = std::uint32_t(index[2 * b + 1] / 2);
  }
  raw->resize(blocks * L.raw_words);
  std::memcpy(raw->data(), t.data() + L.raw_offset, raw->size() * 4);
  if (side != nullptr) {
    side->resize(blocks * L.side_words);
    std::memcpy(side->data(), t.data() + L.side_offset, side->size() * 4);
  }
  return true;
}

}  // namespace ecq_bench

#endif  // ECQ_BENCH_CUDA_TILE_CODEC_HPP
