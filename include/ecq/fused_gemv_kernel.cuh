// ecq/fused_gemv_kernel.cuh — READ ME FIRST
//
// The fused decode -> dequantise -> dot GEMV (ecq/fused_gemv.cuh) as a
// complete kernel over a device tensor (ecq/device_tensor.cuh), in the
// configuration docs/cuda-notes.md measured fastest: 16-warp blocks, two per
// SM, one 32-row stream per warp, 16-round blocks for bf16 pairs and 8-round
// blocks for 4-bit quads (fused_gemv_words; CUDA only).
//
//   fused_gemv_kernel<Dequant, S, Batch>(t, x, y)
//       y[b * t.rows + r] += sum_c W[r][c] x[b * t.cols + c] for b < Batch:
//       x bf16 bits, Batch rows of t.cols; y float, accumulated with
//       atomicAdd, so the caller zeroes it. Dequant: bf16_pair_dequant (scheme
//       8) or affine4_quad_dequant<G> (scheme 9, G = t.group_size); S =
//       t.scale_bits. K runs in t.parts() parts (device_tensor_view::
//       with_parts): the grid must be a multiple of the parts, the blocks of
//       a part share its work items evenly, and every block stages its part's
//       activations: dynamic shared memory fused_gemv_block<...>::
//       shared_bytes(t.cols / t.parts()), above 48 KB only once the caller has
//       raised the kernel's cudaFuncAttributeMaxDynamicSharedMemorySize.
//   fused_gemv_block<Dequant, S, Batch>   the kernel's block_fused_gemv
//   fused_gemv_warps                      warps per block (the launch's blockDim is 32x that)
//
// Example: one plan per matrix, as examples/torch/ecq_torch/csrc/gpu_fused_gemv.cuh
// and bench/cuda/gpu_stream_bench.cu make it: the fewest parts whose staged
// activations fit two blocks an SM, a grid of 2 x SMs rounded down to a
// multiple of the parts.
#ifndef ECQ_FUSED_GEMV_KERNEL_CUH
#define ECQ_FUSED_GEMV_KERNEL_CUH

#include <cstdint>
#include <type_traits>

#include "block_decode.cuh"
#include "config.hpp"
#include "device_tensor.cuh"
#include "fused_gemv.cuh"
#include "narrow_decode_table.hpp"
#include "rans_state.hpp"
#include "warp_decode.cuh"

ECQ_NAMESPACE_BEGIN

inline constexpr int fused_gemv_warps = 16;
/// The word ring of Dequant's streams. bf16 pairs take ~190 words per 16
/// rounds of a warp: 16-round blocks with copies 768 words ahead (one
/// worst-case block of 520 words plus that) keep the ring at 2 KB, so that two
/// 16-warp blocks fit an SM in one K-part, and pay the per-block work half as
/// often as 8-round blocks (docs/cuda-notes.md, session 7). 4-bit quads take
/// ~470 words per 16 rounds, more than that margin: 8-round blocks.
template <class Dequant>
using fused_gemv_words = std::conditional_t<Dequant::weights_per_round == 2, staged_words<1024, 16, 1, 32, 768>,
                                            staged_words<1024, 8, 1>>;
template <class Dequant, int S>
using fused_gemv_decoder = warp_decoder<rans32x16<S>, narrow_entry_policy, 1, fused_gemv_words<Dequant>>;
template <class Dequant, int S, int Batch>
using fused_gemv_block = block_fused_gemv<fused_gemv_warps, fused_gemv_decoder<Dequant, S>, Dequant, Batch>;

template <class Dequant, int S, int Batch>
__global__ void __launch_bounds__(fused_gemv_warps * 32, 2)
    fused_gemv_kernel(device_tensor_view t, const std::uint16_t* x, float* y) {
  extern __shared__ uint4 smem[];
  const std::uint32_t blocks_per_part = gridDim.x / t.parts(), part = blockIdx.x / blocks_per_part;
  const std::uint32_t columns = t.chunks_per_part * device_tensor_view::chunk_cols;
  fused_gemv_block<Dequant, S, Batch> g(smem, columns);
  g.load(t.table, x, t.cols, part * columns);
  const item_range r = warp_item_range(t.items_per_part(),
                                       (blockIdx.x % blocks_per_part) * fused_gemv_warps + threadIdx.x / 32,
                                       blocks_per_part * fused_gemv_warps);
  g.run(t, r.first + part * t.items_per_part(), r.last + part * t.items_per_part(), y, t.rows);
}

ECQ_NAMESPACE_END

#endif  // ECQ_FUSED_GEMV_KERNEL_CUH
