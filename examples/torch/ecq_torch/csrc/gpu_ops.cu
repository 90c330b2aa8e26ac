// examples/torch/ecq_torch/csrc/gpu_ops.cu — READ ME FIRST
//
// Defines gpu_ops.hpp: the device image through ecq's loader
// (ecq/device_tensor.cuh), the dispatch to the fused GEMV of the four
// dequantisers the GPU layout has (lossless bf16 pairs; affine 4-bit with
// groups of 64, 128, 256; each instantiated in its own gpu_fused_*.cu, so
// that the CUDA sources compile in parallel), the decode at load
// (ecq/device_decode.cuh) and the affine dequantising pass.
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include <ecq/device_decode.cuh>
#include <ecq/device_tensor.cuh>
#include <ecq/gemv_dequant.cuh>
#include <ecq/gpu_layout.hpp>
#include <ecq/schemes/float_formats.hpp>

#include "gpu_fused_gemv.cuh"
#include "gpu_ops.hpp"

namespace ecq_torch {
namespace gpu {

struct image::impl {
  ecq::device_image d;
};

image::image() : impl_(new impl) {}
image::~image() = default;
const ecq::gpu_tensor_layout& image::layout() const { return impl_->d.layout; }
const std::uint8_t* image::bytes() const { return impl_->d.bytes.data(); }
std::size_t image::size() const { return impl_->d.bytes.size(); }

ecq::status image::of(const ecq::encoded_tensor& t, std::shared_ptr<const image>* out) {
  out->reset();
  std::shared_ptr<image> m(new image);
  const ecq::status st = ecq::device_image::of(t, &m->impl_->d);
  if (st == ecq::status::ok) *out = std::move(m);
  return st;
}

namespace {

bool aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % image_alignment == 0; }

/// Scheme 9 codes (two per byte, low nibble first) -> bf16(scale * code + bias), one byte per thread. The side
/// word of (row, group) sits at block (tile, chunk), group g, row r (ecq/gpu_layout.hpp, section 11). Multiply and
/// add are rounded separately (__fmul_rn, __fadd_rn: no FMA contraction), as the host reader computes them.
__global__ void dequant_affine4_kernel(const std::uint8_t* codes, const std::uint32_t* side, std::uint32_t rows,
                                       std::uint32_t cols, std::uint32_t chunks, std::uint32_t group_size,
                                       std::uint32_t side_words, std::uint32_t* out) {
  const std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x;  // byte i = weights 2i, 2i + 1
  if (i >= std::size_t(rows) * cols / 2) return;
  const std::uint32_t row = std::uint32_t(2 * i / cols), col = std::uint32_t(2 * i % cols);
  const std::uint32_t chunk = col / ecq::gpu_layout::chunk_weights;
  const std::uint32_t g = col % ecq::gpu_layout::chunk_weights / group_size;
  const std::size_t block = std::size_t(row / ecq::gpu_layout::tile_rows) * chunks + chunk;
  const std::uint32_t w = side[block * side_words + g * ecq::gpu_layout::tile_rows + row % ecq::gpu_layout::tile_rows];
  const float scale = ecq::bf16_to_float(std::uint16_t(w & 0xffffu)), bias = ecq::bf16_to_float(std::uint16_t(w >> 16));
  const std::uint32_t c = codes[i];
  const std::uint32_t lo = ecq::float_to_bf16(__fadd_rn(__fmul_rn(scale, float(c & 15u)), bias));
  const std::uint32_t hi = ecq::float_to_bf16(__fadd_rn(__fmul_rn(scale, float(c >> 4)), bias));
  out[i] = lo | hi << 16;
}

}  // namespace

ecq::status fused_gemv(const image& m, const std::uint8_t* base, const std::uint16_t* x, std::uint32_t batch,
                       float* y, cudaStream_t stream) {
  if (!aligned(base)) return ecq::status::invalid_argument;
  const ecq::device_tensor_view v = m.get().d.view_at(base);
  if (v.scheme_id == ecq::gpu_layout::bf16_pairs_scheme) return detail::fused_bf16(v, x, batch, y, stream);
  switch (v.group_size) {
    case 64: return detail::fused_affine4_g64(v, x, batch, y, stream);
    case 128: return detail::fused_affine4_g128(v, x, batch, y, stream);
    case 256: return detail::fused_affine4_g256(v, x, batch, y, stream);
    default: return ecq::status::unsupported_parameters;
  }
}

ecq::status decode_weights(const image& m, const std::uint8_t* base, std::uint16_t* out, std::uint8_t* codes,
                           std::uint32_t* flags, cudaStream_t stream) {
  if (!aligned(base)) return ecq::status::invalid_argument;
  const ecq::device_tensor_view v = m.get().d.view_at(base);
  if (v.scheme_id == ecq::gpu_layout::bf16_pairs_scheme) return ecq::decode_bf16(v, out, flags, stream);
  if (codes == nullptr) return ecq::status::invalid_argument;
  const ecq::status st = ecq::decode_codes(v, codes, flags, stream);
  if (st != ecq::status::ok) return st;
  const std::size_t bytes = std::size_t(v.rows) * v.cols / 2;
  constexpr unsigned threads = 256;
  dequant_affine4_kernel<<<unsigned((bytes + threads - 1) / threads), threads, 0, stream>>>(
      codes, v.side, v.rows, v.cols, v.chunks, v.group_size, v.side_words, reinterpret_cast<std::uint32_t*>(out));
  return cudaGetLastError() == cudaSuccess ? ecq::status::ok : ecq::status::device_error;
}

ecq::status flags_status(const std::uint32_t* flags, cudaStream_t stream) { return ecq::read_decode_flags(flags, stream); }

}  // namespace gpu
}  // namespace ecq_torch
