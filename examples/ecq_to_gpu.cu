// examples/ecq_to_gpu.cu — an .ecq file to the GPU with the public API.
//
//   ecq pack model.safetensors model.ecq --scheme bf16 --layout gpu
//   example_ecq_to_gpu model.ecq
//
// Every tensor in the GPU layout (docs/format.md section 15) is checked on
// the host and copied to the device (ecq/device_tensor.cuh), then decoded
// there at load (ecq/device_decode.cuh): bf16 bit patterns for scheme 8,
// 4-bit codes (two per byte) for scheme 9; a device_tensor_view of the same
// tensor is what the fused GEMV (ecq/fused_gemv.cuh) takes instead. Tensors
// in another layout are named and skipped. Without an argument it prints
// this usage and exits 0.
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <ecq/device_decode.cuh>
#include <ecq/device_tensor.cuh>
#include <ecq/io/ecq_file.hpp>
#include <ecq/io/safetensors.hpp>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::printf("usage: %s FILE.ecq   (made by: ecq pack IN.safetensors FILE.ecq --scheme bf16 --layout gpu)\n",
                argv[0]);
    return 0;
  }
  std::vector<std::uint8_t> bytes;
  std::string error;
  ecq::ecq_file_reader file;
  if (ecq::read_file_bytes(argv[1], &bytes, &error) != ecq::status::ok ||
      file.parse(bytes.data(), bytes.size(), &error) != ecq::status::ok) {
    std::fprintf(stderr, "%s: %s\n", argv[1], error.c_str());
    return 1;
  }
  cudaStream_t stream;
  if (cudaStreamCreate(&stream) != cudaSuccess) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  ecq::pinned_staging staging;  // reused by every load
  int failures = 0;
  for (std::size_t i = 0; i < file.tensors().size(); ++i) {
    const ecq::ecq_file_tensor& t = file.tensors()[i];
    if (t.elements() == 0) continue;
    if (t.storage == ecq::ecq_storage::raw) {  // ecq pack's small and integer tensors: bytes, no container
      std::printf("%-40s raw (%llu bytes in the file's directory)\n", t.name.c_str(), (unsigned long long)t.size);
      continue;
    }
    ecq::device_tensor d;
    ecq::status st = ecq::device_tensor::load(file, i, stream, &staging, &d);
    if (st == ecq::status::unsupported_parameters || st == ecq::status::bad_shape) {
      std::printf("%-40s not in the GPU layout (%s)\n", t.name.c_str(), ecq::status_string(st));
      continue;
    }
    const ecq::device_tensor_view& v = d.view();
    const std::size_t weights = std::size_t(v.rows) * v.cols;
    const bool bf16 = v.scheme_id == ecq::gpu_layout::bf16_pairs_scheme;
    void* out = nullptr;
    std::uint32_t* flags = nullptr;
    if (st == ecq::status::ok &&
        (cudaMalloc(&out, bf16 ? 2 * weights : weights / 2) != cudaSuccess || cudaMalloc(&flags, 4) != cudaSuccess ||
         cudaMemsetAsync(flags, 0, 4, stream) != cudaSuccess))
      st = ecq::status::device_error;
    if (st == ecq::status::ok)
      st = bf16 ? ecq::decode_bf16(v, static_cast<std::uint16_t*>(out), flags, stream)
                : ecq::decode_codes(v, static_cast<std::uint8_t*>(out), flags, stream);
    if (st == ecq::status::ok) st = ecq::read_decode_flags(flags, stream);  // waits for the stream
    std::printf("%-40s %u x %u  %s  %.1f MB on the device  %s\n", t.name.c_str(), v.rows, v.cols,
                bf16 ? "bf16 (lossless)" : "4-bit codes", double(d.device_bytes()) / 1e6, ecq::status_string(st));
    failures += st == ecq::status::ok ? 0 : 1;
    cudaFree(out);
    cudaFree(flags);
  }
  cudaStreamDestroy(stream);
  return failures == 0 ? 0 : 1;
}
