// examples/torch/ecq_torch/csrc/gpu_fused_affine4_g256.cu — the fused GEMV's affine 4-bit kernels, groups of 256
// (gpu_fused_gemv.cuh).
#include "gpu_fused_gemv.cuh"

namespace ecq_torch {
namespace gpu {
namespace detail {

ECQ_TORCH_FUSED_ENTRY(fused_affine4_g256) { return dispatch_fused<ecq::affine4_quad_dequant<256>>(v, x, batch, y, stream); }

}  // namespace detail
}  // namespace gpu
}  // namespace ecq_torch
