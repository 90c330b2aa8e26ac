// examples/torch/ecq_torch/csrc/gpu_fused_gemv.cuh — READ ME FIRST
//
// The fused decode -> dequantise -> dot GEMV of ecq_torch's CUDA path: ecq's
// kernel (ecq/fused_gemv_kernel.cuh) and its launch plan.
// dispatch_fused instantiates it for one dequantiser at ScaleBits 10..12 (the
// GPU layout's range) and batch 1 and 8 only (the caller pads 2..7 tokens to
// 8): six kernels, in one gpu_fused_<dequantiser>.cu file each, which
// declare themselves here for gpu_ops.cu's dispatch.
//
// Plan: K is split into the fewest parts (a divisor of the tensor's chunks)
// whose staged activations fit 110 KB of shared memory, so that two blocks
// share an SM; the grid is 2 x SMs rounded down to a multiple of the parts,
// and the blocks of a part split its work items evenly. y is accumulated
// with atomicAdd: the caller zeroes it.
#ifndef ECQ_TORCH_GPU_FUSED_GEMV_CUH
#define ECQ_TORCH_GPU_FUSED_GEMV_CUH

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include <ecq/device_tensor.cuh>
#include <ecq/fused_gemv_kernel.cuh>
#include <ecq/gemv_dequant.cuh>
#include <ecq/status.hpp>

namespace ecq_torch {
namespace gpu {
namespace detail {

constexpr std::size_t fused_max_shared = 110 * 1024;

/// Multiprocessors of the current device (0 if the query failed).
inline int multiprocessors() {
  int device = 0, sms = 0;
  if (cudaGetDevice(&device) != cudaSuccess ||
      cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device) != cudaSuccess)
    return 0;
  return sms;
}

/// Queues y += W x for `Batch` tokens (see the file comment).
template <class Dequant, int S, int Batch>
ecq::status launch_fused(const ecq::device_tensor_view& v, const std::uint16_t* x, float* y, cudaStream_t stream) {
  auto kernel = ecq::fused_gemv_kernel<Dequant, S, Batch>;
  // The attribute is the kernel's: set once to the most any plan takes.
  static const bool attribute_set = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                                         int(fused_max_shared)) == cudaSuccess;
  static const int sms = multiprocessors();
  if (!attribute_set || sms == 0) return ecq::status::device_error;
  for (std::uint32_t parts = 1; parts <= v.chunks; ++parts) {
    if (v.chunks % parts != 0) continue;
    const std::size_t smem = ecq::fused_gemv_block<Dequant, S, Batch>::shared_bytes(v.cols / parts);
    if (smem > fused_max_shared) continue;
    ecq::device_tensor_view vp;
    if (!v.with_parts(parts, &vp)) return ecq::status::invalid_argument;
    const int grid = int((2 * std::uint32_t(sms)) / parts * parts);
    if (grid == 0) return ecq::status::unsupported_parameters;
    kernel<<<grid, ecq::fused_gemv_warps * 32, smem, stream>>>(vp, x, y);
    return cudaGetLastError() == cudaSuccess ? ecq::status::ok : ecq::status::device_error;
  }
  return ecq::status::unsupported_parameters;  // no split of K fits shared memory
}

/// The kernels of one dequantiser, by ScaleBits and batch (1 or 8).
template <class Dequant>
ecq::status dispatch_fused(const ecq::device_tensor_view& v, const std::uint16_t* x, std::uint32_t batch, float* y,
                           cudaStream_t stream) {
  if (batch != 1 && batch != 8) return ecq::status::invalid_argument;
  switch (v.scale_bits) {
    case 10: return batch == 1 ? launch_fused<Dequant, 10, 1>(v, x, y, stream) : launch_fused<Dequant, 10, 8>(v, x, y, stream);
    case 11: return batch == 1 ? launch_fused<Dequant, 11, 1>(v, x, y, stream) : launch_fused<Dequant, 11, 8>(v, x, y, stream);
    case 12: return batch == 1 ? launch_fused<Dequant, 12, 1>(v, x, y, stream) : launch_fused<Dequant, 12, 8>(v, x, y, stream);
    default: return ecq::status::unsupported_parameters;
  }
}

#define ECQ_TORCH_FUSED_ENTRY(name)                                                                   \
  ecq::status name(const ecq::device_tensor_view& v, const std::uint16_t* x, std::uint32_t batch, float* y, \
                   cudaStream_t stream)
ECQ_TORCH_FUSED_ENTRY(fused_bf16);         // gpu_fused_bf16.cu
ECQ_TORCH_FUSED_ENTRY(fused_affine4_g64);  // gpu_fused_affine4_g64.cu, and so on
ECQ_TORCH_FUSED_ENTRY(fused_affine4_g128);
ECQ_TORCH_FUSED_ENTRY(fused_affine4_g256);

}  // namespace detail
}  // namespace gpu
}  // namespace ecq_torch

#endif  // ECQ_TORCH_GPU_FUSED_GEMV_CUH
