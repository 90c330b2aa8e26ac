// examples/torch/ecq_torch/csrc/gpu_fused_bf16.cu — the fused GEMV's lossless bf16 kernels (gpu_fused_gemv.cuh).
#include "gpu_fused_gemv.cuh"

namespace ecq_torch {
namespace gpu {
namespace detail {

ECQ_TORCH_FUSED_ENTRY(fused_bf16) { return dispatch_fused<ecq::bf16_pair_dequant>(v, x, batch, y, stream); }

}  // namespace detail
}  // namespace gpu
}  // namespace ecq_torch
