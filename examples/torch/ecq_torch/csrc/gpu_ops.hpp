// examples/torch/ecq_torch/csrc/gpu_ops.hpp — READ ME FIRST
//
// The CUDA half of ecq_torch, as the torch-facing C++ (gpu_bindings.cpp,
// compiled by the host compiler) sees it: no device code here, so the
// torch headers and ecq's .cuh collectives never meet in one translation
// unit; gpu_ops.cu (nvcc) defines it all. Compiled only when torch has CUDA.
//
//   image          a GPU-layout container's device image, built and CHECKED on
//                  the host by ecq's device loader (ecq::device_image::of:
//                  check_gpu_layout, then the narrow decode tables): the
//                  container bytes verbatim, then its tables. The caller
//                  copies bytes() to device memory (256-byte aligned) itself
//                  (torch's allocator, pinned host buffers, double buffers),
//                  and passes that address (`base`) to the operations below.
//   fused_gemv     y += W x, x bf16 [batch, cols] with batch 1 or 8, y float32
//                  [batch, rows] zeroed by the caller: ecq's fused decode ->
//                  dequantise -> dot (gpu_fused_gemv.cuh).
//   decode_weights W as bf16 [rows, cols] in device memory: scheme 8 through
//                  ecq::decode_bf16 (bit-exact), scheme 9 through
//                  ecq::decode_codes into `codes` (rows * cols / 2 bytes) and
//                  one dequantising pass, bf16(scale * code + bias) with the
//                  host reader's float arithmetic (ecq::gpu_dequantize), so
//                  the result is that of rounding the host's weights to bf16.
//                  A stream that fails the format's end checks ORs 1 into
//                  *flags (device memory); read it with ecq::read_decode_flags
//                  semantics through flags_status.
//
// Every operation is queued on `stream` and returns the launch's status;
// none synchronises.
#ifndef ECQ_TORCH_GPU_OPS_HPP
#define ECQ_TORCH_GPU_OPS_HPP

#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include <ecq/container.hpp>
#include <ecq/gpu_container.hpp>
#include <ecq/status.hpp>

namespace ecq_torch {
namespace gpu {

class image {
 public:
  /// CHECKED (see the file comment). @return status::ok; else the status of
  ///         check_gpu_layout or build_gpu_table.
  static ecq::status of(const ecq::encoded_tensor& t, std::shared_ptr<const image>* out);
  ~image();
  const ecq::gpu_tensor_layout& layout() const;
  const std::uint8_t* bytes() const;
  std::size_t size() const;

  struct impl;
  const impl& get() const { return *impl_; }

 private:
  image();
  std::unique_ptr<impl> impl_;
};

/// Alignment of an image's device copy (its tables sit at 256-byte offsets).
inline constexpr std::size_t image_alignment = 256;

ecq::status fused_gemv(const image& m, const std::uint8_t* base, const std::uint16_t* x, std::uint32_t batch,
                       float* y, cudaStream_t stream);
ecq::status decode_weights(const image& m, const std::uint8_t* base, std::uint16_t* out, std::uint8_t* codes,
                           std::uint32_t* flags, cudaStream_t stream);
/// Waits for `stream` and reads *flags. @return status::ok, corrupt_stream or device_error.
ecq::status flags_status(const std::uint32_t* flags, cudaStream_t stream);

}  // namespace gpu
}  // namespace ecq_torch

#endif  // ECQ_TORCH_GPU_OPS_HPP
