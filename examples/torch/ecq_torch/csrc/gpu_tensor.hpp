// examples/torch/ecq_torch/csrc/gpu_tensor.hpp — READ ME FIRST
//
// The CUDA path of ecq_torch as Python sees it (CUDA builds only; included by
// bindings.cpp when ECQ_TORCH_CUDA is defined): GpuImage, a GPU-layout
// container's checked device image (gpu_ops.hpp) and the operations on a
// copy of it in device memory. Device memory is torch's (its caching
// allocator: torch.cuda.max_memory_allocated counts it, CUDA graphs can
// capture the calls); every kernel goes on torch's current stream of the
// tensors' device. Nothing here synchronises except check_flags.
//
//   CodedTensor.gpu_image()   CHECKED: ecq::device_image::of; raises with the status
//   host_bytes(pinned)        the image as a CPU uint8 tensor (page-locked if pinned)
//   gemv(base, x)             x [batch <= 8, cols] bf16 CUDA -> float32 [batch, rows]:
//                             the fused GEMV on the image at base (a CUDA uint8 tensor,
//                             256-byte aligned, at least nbytes long); batch 2..7 is
//                             padded to 8 with zero rows
//   decode(base, flags)       bf16 [rows, cols] CUDA; decode stream checks OR 1 into
//                             flags (int32 CUDA [1]); check_flags(flags) raises if set
//
// A failing call raises RuntimeError naming the operation, the tensor, the
// cause and ecq's status (device_error: the CUDA error of the launch); a bad
// argument raises ValueError (errors.hpp).
#ifndef ECQ_TORCH_GPU_TENSOR_HPP
#define ECQ_TORCH_GPU_TENSOR_HPP

#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include <ecq/container.hpp>
#include <ecq/status.hpp>

#include "errors.hpp"
#include "gpu_ops.hpp"

namespace ecq_torch {

class GpuImage {
 public:
  GpuImage(const ecq::encoded_tensor& t, std::string what) : what_(std::move(what)) {
    const ecq::status st = gpu::image::of(t, &m_);
    if (st != ecq::status::ok)
      throw std::runtime_error("gpu_image of " + what_ + ": not in the GPU layout the CUDA kernels read: " +
                               ecq::status_string(st));
  }

  std::int64_t nbytes() const { return std::int64_t(m_->size()); }
  std::int64_t rows() const { return m_->layout().rows; }
  std::int64_t cols() const { return m_->layout().cols; }
  std::int64_t scale_bits() const { return m_->layout().scale_bits; }
  std::int64_t group_size() const { return m_->layout().group_size; }
  bool lossless() const { return m_->layout().scheme_id == ecq::gpu_layout::bf16_pairs_scheme; }

  torch::Tensor host_bytes(bool pinned) const {
    torch::Tensor b = torch::empty({nbytes()}, torch::TensorOptions().dtype(torch::kUInt8).pinned_memory(pinned));
    std::memcpy(b.data_ptr<std::uint8_t>(), m_->bytes(), m_->size());
    return b;
  }

  torch::Tensor gemv(const torch::Tensor& base, const torch::Tensor& x) const {
    check_base(base, "gemv");
    ECQ_TORCH_REQUIRE(x.is_cuda() && x.device() == base.device() && x.scalar_type() == torch::kBFloat16 && x.dim() == 2 &&
                    x.size(1) == cols() && x.size(0) >= 1 && x.size(0) <= 8 && x.is_contiguous(),
                "ecq_torch.GpuImage.gemv: x must be a contiguous bf16 tensor [1..8, ", cols(), "] on ", base.device(),
                ", got ", x.scalar_type(), " ", x.sizes(), " on ", x.device());
    const c10::cuda::CUDAGuard guard(x.device());
    const std::int64_t batch = x.size(0) == 1 ? 1 : 8;
    torch::Tensor xs = x;
    if (batch != x.size(0)) {
      xs = torch::zeros({batch, cols()}, x.options());
      xs.narrow(0, 0, x.size(0)).copy_(x);
    }
    torch::Tensor y = torch::zeros({batch, rows()}, x.options().dtype(torch::kFloat32));
    const ecq::status st =
        gpu::fused_gemv(*m_, base.data_ptr<std::uint8_t>(), reinterpret_cast<const std::uint16_t*>(xs.data_ptr()),
                        std::uint32_t(batch), y.data_ptr<float>(), at::cuda::getCurrentCUDAStream());
    raise_if(st, "gemv");
    return batch == x.size(0) ? y : y.narrow(0, 0, x.size(0));
  }

  torch::Tensor decode(const torch::Tensor& base, const torch::Tensor& flags) const {
    check_base(base, "decode");
    ECQ_TORCH_REQUIRE(flags.is_cuda() && flags.device() == base.device() && flags.scalar_type() == torch::kInt32 &&
                    flags.numel() >= 1,
                "ecq_torch.GpuImage.decode: flags must be an int32 CUDA tensor of one element on ", base.device());
    const c10::cuda::CUDAGuard guard(base.device());
    const auto options = torch::TensorOptions().device(base.device());
    torch::Tensor w = torch::empty({rows(), cols()}, options.dtype(torch::kBFloat16));
    torch::Tensor codes;
    if (!lossless()) codes = torch::empty({rows() * cols() / 2}, options.dtype(torch::kUInt8));
    const ecq::status st = gpu::decode_weights(
        *m_, base.data_ptr<std::uint8_t>(), reinterpret_cast<std::uint16_t*>(w.data_ptr()),
        lossless() ? nullptr : codes.data_ptr<std::uint8_t>(), reinterpret_cast<std::uint32_t*>(flags.data_ptr()),
        at::cuda::getCurrentCUDAStream());
    raise_if(st, "decode");
    return w;
  }

  const std::string& what() const { return what_; }

 private:
  void check_base(const torch::Tensor& base, const char* op) const {
    ECQ_TORCH_REQUIRE(base.is_cuda() && base.scalar_type() == torch::kUInt8 && base.is_contiguous() &&
                    base.numel() >= nbytes() &&
                    reinterpret_cast<std::uintptr_t>(base.data_ptr()) % gpu::image_alignment == 0,
                "ecq_torch.GpuImage.", op, ": base must be a contiguous CUDA uint8 tensor of at least ", nbytes(),
                " bytes at a ", gpu::image_alignment, "-byte aligned address (the image of ", what_, ")");
  }
  void raise_if(ecq::status st, const char* op) const {
    if (st == ecq::status::ok) return;
    std::string why = ecq::status_string(st);
    if (st == ecq::status::device_error) why += std::string(" (CUDA: ") + cudaGetErrorString(cudaGetLastError()) + ")";
    throw std::runtime_error(std::string("ecq_torch.GpuImage.") + op + " of " + what_ + ": " + why);
  }

  std::shared_ptr<const gpu::image> m_;
  std::string what_;
};

/// Raises if a decode flagged a stream (waits for the current stream).
inline void check_flags(const torch::Tensor& flags) {
  ECQ_TORCH_REQUIRE(flags.is_cuda() && flags.scalar_type() == torch::kInt32, "ecq_torch.check_flags: an int32 CUDA tensor");
  const c10::cuda::CUDAGuard guard(flags.device());
  const ecq::status st = gpu::flags_status(reinterpret_cast<const std::uint32_t*>(flags.data_ptr()),
                                           at::cuda::getCurrentCUDAStream());
  if (st != ecq::status::ok)
    throw std::runtime_error(std::string("ecq_torch: a GPU decode failed its stream checks: ") + ecq::status_string(st));
}

/// Registers GpuImage and check_flags (bindings.cpp adds CodedTensor.gpu_image).
inline void register_gpu_image(pybind11::module& m) {
  namespace py = pybind11;
  py::class_<GpuImage>(m, "GpuImage")
      .def_property_readonly("nbytes", &GpuImage::nbytes)
      .def_property_readonly("rows", &GpuImage::rows)
      .def_property_readonly("cols", &GpuImage::cols)
      .def_property_readonly("scale_bits", &GpuImage::scale_bits)
      .def_property_readonly("group_size", &GpuImage::group_size)
      .def_property_readonly("lossless", &GpuImage::lossless)
      .def("host_bytes", &GpuImage::host_bytes, py::arg("pinned") = false)
      .def("gemv", &GpuImage::gemv, py::arg("base"), py::arg("x"))
      .def("decode", &GpuImage::decode, py::arg("base"), py::arg("flags"))
      .def("__repr__", [](const GpuImage& g) { return "<ecq_torch.GpuImage of " + g.what() + ">"; });
  m.def("check_flags", &check_flags, py::arg("flags"));
}

}  // namespace ecq_torch

#endif  // ECQ_TORCH_GPU_TENSOR_HPP
