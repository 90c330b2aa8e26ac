// examples/torch/ecq_torch/csrc/rmsnorm_gemv.hpp — READ ME FIRST
//
// RMSNorm fused into the coded GEMV's activation staging (issue #14, point 5):
//
//   y[b][r] = sum over c of W[r][c] * xn[b][c],   xn[b][c] = x[b][c] * s[b] * g[c],
//   s[b] = 1 / sqrt(mean over c of x[b][c]^2 + eps)
//
// In a Llama block an RMSNorm always feeds GEMVs (attention norm -> wq, wk,
// wv; FFN norm -> w1, w3). Unfused, the norm is its own kernel: it reads x,
// writes xn, and the GEMV reads xn back. Fused, only the per-token scale s[b]
// is computed up front (one pass over x); each piece of normalised
// activations is made while the GEMV stages it, right before the rows of the
// tile use it, so xn never exists as a tensor.
//
// The loop is ecq::gemv's generic one (ecq/cpu/tensor_ops.hpp) with one
// change, the staging step: tiles run in parallel on the executor; per tile,
// every block is decoded by tensor_decoder, and for each piece of 256
// symbols the batch's normalised activations are staged once, then every row
// of the tile dequantises its piece (row_dequantizer) and accumulates its
// dots with eight partial sums. Any order of summation meets the error bound
// documented there, so it holds here against the float64 dot product of W
// with the staged xn. The rmsnorm() kernel below computes xn with the same
// expression, so the unfused pair rmsnorm() + ecq::gemv sums the same values;
// in the same order where ecq::gemv runs its generic loop, in another where
// it has a dedicated one (affine codes: a SIMD loop over the block's stream
// order, ecq/cpu/detail/affine_block_dot.hpp), which this kernel does not
// have.
//
// Built from ecq's public CPU API only; every block decode is checked, and
// the status is that of the first failing tile in tile order.
#ifndef ECQ_TORCH_RMSNORM_GEMV_HPP
#define ECQ_TORCH_RMSNORM_GEMV_HPP

#include <ecq/cpu/row_dequantizer.hpp>
#include <ecq/cpu/tensor_decoder.hpp>
#include <ecq/cpu/tensor_ops.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace ecq_torch {

/// s = 1 / sqrt(mean(x^2) + eps) over n values (accumulated in double: the
/// mean of squares is the one sum of the norm whose rounding grows with n).
inline float rms_scale(const float* x, std::size_t n, float eps) {
  double sum = 0.0;
  for (std::size_t i = 0; i < n; ++i) sum += double(x[i]) * double(x[i]);
  return float(1.0 / std::sqrt(sum / double(n) + double(eps)));
}

/// One normalised activation: the expression both the unfused and the fused
/// kernel use, so that they stage the same values.
inline float normalized(float x, float scale, float g) { return (x * scale) * g; }

/// The unfused norm kernel: out[b * n + c] = normalized(x[b * n + c], s[b], g[c]).
inline void rmsnorm(const float* x, const float* g, float eps, std::size_t batch, std::size_t n, float* out) {
  for (std::size_t b = 0; b < batch; ++b) {
    const float s = rms_scale(x + b * n, n, eps);
    for (std::size_t c = 0; c < n; ++c) out[b * n + c] = normalized(x[b * n + c], s, g[c]);
  }
}

namespace detail {

/// sum a[i] * b[i] with eight partial sums, combined pairwise: ecq::gemv's order.
inline float dot8(const float* a, const float* b, std::size_t n) {
  float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) s[j] += a[i + std::size_t(j)] * b[i + std::size_t(j)];
  for (int j = 0; i < n; ++i, ++j) s[j] += a[i] * b[i];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

/// Per-thread buffers of the tile tasks (reused across calls on one thread).
struct rmsnorm_gemv_buffers {
  ecq::block_scratch scratch;
  std::vector<std::uint16_t> symbols;  // one decoded block, row-major
  std::vector<float> weights;          // one row's piece
  std::vector<float> staged;           // the batch's normalised piece, batch x piece weights
  std::vector<float> sums;             // the tile's rows x batch
};
inline rmsnorm_gemv_buffers& thread_buffers() {
  static thread_local rmsnorm_gemv_buffers b;
  return b;
}

}  // namespace detail

/// y[b * rows + r] = sum over c of W[r][c] * normalized(x[b * cols + c], s[b], g[c])
/// for b < batch (see the file comment). x: batch * cols floats, g: cols, y: batch * rows.
/// @return status::ok; status::invalid_argument if t holds no container or
///         batch == 0; the status of row_dequantizer::build or
///         tensor_decoder::build; else the first failing tile's decode status
///         (y is then partly written).
inline ecq::status rmsnorm_gemv(const ecq::encoded_tensor& t, const float* x, const float* g, float eps,
                                std::size_t batch, float* y, const ecq::cpu_options& o) {
  using ecq::status;
  if (t.data() == nullptr || batch == 0) return status::invalid_argument;
  ecq::row_dequantizer rd;
  status st = rd.build(t);
  if (st != status::ok) return st;
  ecq::tensor_decoder d;
  if ((st = d.build(t, o.path)) != status::ok) return st;
  const ecq::tensor_geometry& geo = t.geometry();
  const ecq::encoded_tensor_view v = t.view();
  const std::uint64_t rows = geo.rows, cols = geo.cols, wps = std::uint64_t(rd.weights_per_symbol());
  constexpr std::size_t piece_symbols = 256;
  const std::size_t piece_weights = piece_symbols * std::size_t(wps);

  std::vector<float> scale(batch);
  for (std::size_t b = 0; b < batch; ++b) scale[b] = rms_scale(x + b * cols, std::size_t(cols), eps);

  std::vector<status> result(std::size_t(geo.num_tiles()), status::ok);
  auto task = [&](std::size_t tile) {
    detail::rmsnorm_gemv_buffers& buf = detail::thread_buffers();
    const std::size_t tile_rows = std::size_t(geo.rows_in_tile(tile));
    buf.sums.assign(tile_rows * batch, 0.0f);
    buf.weights.resize(piece_weights);
    buf.staged.resize(piece_weights * batch);
    for (std::uint64_t chunk = 0; chunk < geo.num_chunks(); ++chunk) {
      const ecq::block_view blk = v.block(tile, chunk);
      const std::size_t n = tile_rows * std::size_t(blk.columns);
      if (buf.symbols.size() < n) buf.symbols.resize(n);
      result[tile] = d.decode_block(tile, chunk, buf.symbols.data(), std::size_t(blk.columns), buf.scratch);
      if (result[tile] != status::ok) return;
      for (std::uint64_t k = 0; k < blk.columns; k += piece_symbols) {
        const std::size_t count = std::size_t(blk.columns - k < piece_symbols ? blk.columns - k : piece_symbols);
        const std::uint64_t first_weight = (blk.first_column + k) * wps;
        const std::size_t m = std::size_t(cols - first_weight < count * wps ? cols - first_weight : count * wps);
        // The staging step: this piece of every token's normalised activations, used by all the tile's rows.
        for (std::size_t b = 0; b < batch; ++b) {
          const float* xb = x + b * cols + first_weight;
          float* sb = buf.staged.data() + b * piece_weights;
          for (std::size_t c = 0; c < m; ++c) sb[c] = normalized(xb[c], scale[b], g[first_weight + c]);
        }
        for (std::size_t r = 0; r < tile_rows; ++r) {
          rd.weights(blk.first_row + r, blk.first_column + k, buf.symbols.data() + r * std::size_t(blk.columns) + k,
                     count, buf.weights.data());
          for (std::size_t b = 0; b < batch; ++b)
            buf.sums[r * batch + b] += detail::dot8(buf.weights.data(), buf.staged.data() + b * piece_weights, m);
        }
      }
    }
    for (std::size_t r = 0; r < tile_rows; ++r)
      for (std::size_t b = 0; b < batch; ++b) y[b * rows + tile * geo.tile_rows + r] = buf.sums[r * batch + b];
  };
  const ecq::task_ref ref(task);
  if (o.executor != nullptr && *o.executor)
    (*o.executor)(result.size(), ref);
  else
    ecq::default_thread_pool().parallel_for(result.size(), ref);
  for (status s : result)
    if (s != status::ok) return s;
  return status::ok;
}

}  // namespace ecq_torch

#endif  // ECQ_TORCH_RMSNORM_GEMV_HPP
