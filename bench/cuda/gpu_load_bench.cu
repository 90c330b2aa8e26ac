// bench/cuda/gpu_load_bench.cu — READ ME FIRST
//
// Issue #12's product path, measured in one run: synthetic weights of a
// 28672 x 8192 matrix (Student-t, as gpu_bench makes them) are encoded by the
// library's GPU-layout encoders (ecq/gpu_container.hpp: lossless bf16 pairs,
// and 4-bit affine codes from affine_quantize, group 128, bfloat16 side
// data), written into an .ecq file in memory (ecq_file_writer), read back
// (ecq_file_reader), loaded by the device loader (ecq/device_tensor.cuh) and
// decoded on the device through the public API (ecq/device_decode.cuh):
//   * copy bandwidths: device to device (1 GiB, bytes read + written) by
//     cudaMemcpyAsync and by a plain 16-byte copy kernel (the memcpy figure
//     is far below what kernels reach on an H200, issue #13), and host to
//     device from pinned and from pageable memory (256 MiB);
//   * load: host checks + staging + H2D of each tensor, wall time;
//   * decode_codes / decode_bf16: median per launch over CUDA graphs that
//     rotate over two loaded copies (each larger than L2), checked bit for
//     bit against the input, weights/s and (compressed read + output write)
//     bytes/s next to the copy kernel's bandwidth.
// Prints a table last and writes JSON (--json PATH). --test: a 4096 x 4096
// matrix, every check and no timing (for compute-sanitizer); --profile: the
// full matrix, one launch of each decode and one of the copy kernel (256 MiB
// each way), no timing (for ncu). With the tool:
//   ecq_gpu_load_bench --write-safetensors w.safetensors   (the bf16 weights)
//   ecq pack w.safetensors w_bf16.ecq --scheme bf16 --layout gpu
//   ecq pack w.safetensors w_q4.ecq --scheme affine4-g128-bf16 --layout gpu
//   ecq_gpu_load_bench --files w_bf16.ecq w_q4.ecq          (load, decode, check)
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include <ecq/device_decode.cuh>
#include <ecq/device_tensor.cuh>
#include <ecq/gpu_container.hpp>
#include <ecq/io/ecq_file.hpp>
#include <ecq/io/safetensors.hpp>
#include <ecq/schemes/affine.hpp>

#include "tile_codec.hpp"

#define CK(call)                                                                                   \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                                \
    }                                                                                              \
  } while (0)

namespace {

using clock_type = std::chrono::steady_clock;
double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

bool g_test = false;
bool g_profile = false;  // --profile: full size, one launch of each decode, no timing (for ncu)
int g_failures = 0;

struct row {
  std::string what;
  double us = 0, weights = 0, bytes = 0;
  bool ok = true;
  std::string note;
};
std::vector<row> g_rows;

void record(const row& r) {
  g_rows.push_back(r);
  std::printf("  %-34s %10.2f us %9.3f Tw/s %8.1f GB/s %s %s\n", r.what.c_str(), r.us,
              r.us > 0 ? r.weights / r.us / 1e6 : 0.0, r.us > 0 ? r.bytes / r.us / 1e3 : 0.0, r.ok ? "ok" : "FAIL",
              r.note.c_str());
  std::fflush(stdout);
  if (!r.ok) ++g_failures;
}

/// Median time per launch (us) of launch(copy, stream), captured `per_graph`
/// times in a graph rotating over `copies`, over 7 replays.
double time_graph(const std::function<void(int, cudaStream_t)>& launch, int copies, int per_graph) {
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  for (int i = 0; i < copies; ++i) launch(i, st);
  CK(cudaStreamSynchronize(st));
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < per_graph; ++i) launch(i % copies, st);
  CK(cudaStreamEndCapture(st, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaGraphLaunch(exec, st));
  CK(cudaStreamSynchronize(st));
  std::vector<double> t;
  for (int r = 0; r < 7; ++r) {
    CK(cudaEventRecord(a, st));
    CK(cudaGraphLaunch(exec, st));
    CK(cudaEventRecord(b, st));
    CK(cudaEventSynchronize(b));
    float ms = 0;
    CK(cudaEventElapsedTime(&ms, a, b));
    t.push_back(ms * 1000.0 / per_graph);
  }
  std::sort(t.begin(), t.end());
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  CK(cudaStreamDestroy(st));
  return t[t.size() / 2];
}

/// GB/s of `n`-byte copies of kind `kind` between a and b (median of graphs).
double copy_gbs(void* dst, const void* src, std::size_t n, cudaMemcpyKind kind, double bytes_per_copy) {
  const double us = time_graph([&](int, cudaStream_t st) { CK(cudaMemcpyAsync(dst, src, n, kind, st)); }, 1, 8);
  return bytes_per_copy / us / 1e3;
}

/// The copy kernel of the bandwidth reference: 16 bytes per thread and
/// iteration, grid-stride.
__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, std::size_t n) {
  for (std::size_t i = std::size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

/// The loaded copies of one tensor and its decoded output.
struct loaded {
  std::vector<ecq::device_tensor> copies;
  double load_s = 0;        // wall time of the first load (checks, staging, copy), stream synchronised
  std::size_t file_bytes = 0;
};

loaded load_copies(const ecq::ecq_file_reader& file, std::size_t index, int copies, ecq::pinned_staging* staging) {
  loaded l;
  l.file_bytes = std::size_t(file.tensors()[index].size);
  for (int c = 0; c < copies; ++c) {
    ecq::device_tensor d;
    const auto t0 = clock_type::now();
    const ecq::status st = ecq::device_tensor::load(file, index, 0, staging, &d);
    CK(cudaStreamSynchronize(0));
    if (c == 0) l.load_s = seconds_since(t0);
    if (st != ecq::status::ok) {
      std::printf("  load: %s\n", ecq::status_string(st));
      ++g_failures;
      return l;
    }
    l.copies.push_back(std::move(d));
  }
  return l;
}

/// Where the run's tensors come from: encoded here, or files `ecq pack
/// --layout gpu` made from the safetensors file --write-safetensors wrote.
struct sources {
  std::string safetensors_out;     // write the weights there and stop
  std::string bf16_file, q4_file;  // tool-made .ecq files (tensor 0 of each)
};

bool read_whole(const std::string& path, std::vector<std::uint8_t>* out) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  std::fseek(f, 0, SEEK_END);
  out->resize(std::size_t(std::ftell(f)));
  std::fseek(f, 0, SEEK_SET);
  const bool ok = std::fread(out->data(), 1, out->size(), f) == out->size();
  std::fclose(f);
  return ok;
}

using view = ecq::device_tensor_view;
template <class Out>
using decode_fn = std::function<ecq::status(const view&, Out*, std::uint32_t*, cudaStream_t)>;
template <class Out>
struct decode_variant {
  std::string what;
  decode_fn<Out> fn;
  bool writes_output = true;  // false: a diagnostic that decodes without storing the rows (nothing to check)
};

/// Diagnostic sink: decode_bf16's sink with the rows put in the shared-memory
/// stage but never flushed to device memory, so that decode + reads can be
/// timed without the writes (the stream-end check still runs).
struct bf16_no_store_sink : ecq::detail::bf16_store_sink<ecq::detail::row_stage128> {
  using bf16_store_sink::bf16_store_sink;
  __device__ __forceinline__ void end_block(std::uint32_t, std::uint32_t block) {
    const std::uint32_t at = (block % blocks_per_flush) * 32;
    stage.put(at, make_uint4(w8[0], w8[1], w8[2], w8[3]));
    stage.put(at + 16, make_uint4(w8[4], w8[5], w8[6], w8[7]));
  }
};

/// Each entry: one checked decode of copy 0 (every element against `want`), then the timing over the loaded
/// copies; bytes = the file's tensor bytes + `out_bytes`, `weights` per decode.
template <class Out>
void time_decodes(const std::vector<decode_variant<Out>>& variants, const loaded& l, const std::vector<Out>& want,
                  double weights, double out_bytes, int per_graph, double copy_kernel_gbs) {
  const std::size_t n = want.size();
  for (const auto& [what, fn, writes_output] : variants) {
    Out* out = nullptr;
    std::uint32_t* flags = nullptr;
    CK(cudaMalloc(&out, n * sizeof(Out)));
    CK(cudaMalloc(&flags, 4));
    CK(cudaMemset(out, 0xff, n * sizeof(Out)));
    CK(cudaMemset(flags, 0, 4));
    row r;
    r.what = what;
    r.ok = fn(l.copies[0].view(), out, flags, 0) == ecq::status::ok && ecq::read_decode_flags(flags, 0) == ecq::status::ok;
    std::vector<Out> back(n);
    CK(cudaMemcpy(back.data(), out, n * sizeof(Out), cudaMemcpyDeviceToHost));
    std::size_t bad = 0;
    if (writes_output)
      for (std::size_t i = 0; i < n; ++i) bad += back[i] != want[i];
    r.ok = r.ok && bad == 0;
    r.weights = weights;
    r.bytes = double(l.file_bytes) + (writes_output ? out_bytes : 0.0);
    if (!g_test && !g_profile) {
      r.us = time_graph([&, f = fn](int c, cudaStream_t s) { f(l.copies[c].view(), out, flags, s); },
                        int(l.copies.size()), per_graph);
      if (writes_output) {  // the output of the timed launches (back to back) checked again
        CK(cudaMemcpy(back.data(), out, n * sizeof(Out), cudaMemcpyDeviceToHost));
        for (std::size_t i = 0; i < n; ++i) bad += back[i] != want[i];
        r.ok = r.ok && bad == 0 && ecq::read_decode_flags(flags, 0) == ecq::status::ok;
      }
    }
    char note[96];
    if (writes_output)
      std::snprintf(note, sizeof note, "%zu wrong; %.0f%% of the copy kernel's bandwidth", bad,
                    r.us > 0 ? 100.0 * r.bytes / r.us / 1e3 / copy_kernel_gbs : 0.0);
    else
      std::snprintf(note, sizeof note, "diagnostic: no output written, bytes = reads only");
    r.note = note;
    record(r);
    CK(cudaFree(out));
    CK(cudaFree(flags));
  }
}

void run(std::uint32_t M, std::uint32_t K, double copy_kernel_gbs, const sources& src) {
  const std::size_t n = std::size_t(M) * K;
  std::printf("shape %ux%u\n", M, K);
  auto t0 = clock_type::now();
  std::vector<float> wf(n);
  ecq_bench::parallel_for(M, [&](std::size_t a, std::size_t b) {
    for (std::size_t r = a; r < b; ++r) {
      const float rs = 0.02f * float(0.5 + ecq_bench::uniform01(ecq_bench::mix64(0xabcd + r)));
      for (std::uint32_t c = 0; c < K; ++c) wf[r * K + c] = ecq_bench::t8_at(0x5eed, r * K + c, rs);
    }
  });
  // The checkpoint is bf16; the 4-bit codes are quantised from its values, as `ecq pack` does.
  std::vector<std::uint16_t> wb(n);
  ecq_bench::parallel_for(n, [&](std::size_t a, std::size_t b) {
    for (std::size_t i = a; i < b; ++i) {
      wb[i] = ecq_bench::float_to_bf16(wf[i]);
      wf[i] = ecq_bench::bf16_to_float(wb[i]);
    }
  });
  std::printf("  weights made in %.1f s\n", seconds_since(t0));
  if (!src.safetensors_out.empty()) {
    ecq::safetensors_writer w;
    std::vector<std::uint8_t> bytes(n * 2);
    std::memcpy(bytes.data(), wb.data(), bytes.size());
    std::string error;
    if (w.add("w", ecq::tensor_dtype::bf16, {M, K}, std::move(bytes)) != ecq::status::ok ||
        ecq::write_file_bytes(src.safetensors_out, w.serialize(), &error) != ecq::status::ok) {
      std::printf("  cannot write %s %s\n", src.safetensors_out.c_str(), error.c_str());
      ++g_failures;
    }
    return;
  }
  ecq::affine_params p;
  p.bits = 4;
  p.group_size = 128;
  p.side_format = ecq::float16_format::bfloat16;
  ecq::quantized_tensor q;
  std::vector<std::uint8_t> codes;
  t0 = clock_type::now();
  ecq::status sa = ecq::affine_quantize(wf.data(), M, K, p, &q, &codes);
  std::vector<float>().swap(wf);

  // The product path: encoder (here, or the tool's) -> .ecq file -> reader -> loader.
  std::vector<std::uint8_t> bytes_b, bytes_q;
  std::size_t index_b = 0, index_q = 0;
  if (src.bf16_file.empty()) {
    ecq::encoded_tensor tb, ta;
    std::vector<std::uint16_t> scales, biases;
    if (sa == ecq::status::ok) {
      const auto* s = q.find(ecq::section_tag::scales);
      const auto* b = q.find(ecq::section_tag::biases);
      scales.resize(s->bytes.size() / 2);
      biases.resize(b->bytes.size() / 2);
      std::memcpy(scales.data(), s->bytes.data(), s->bytes.size());
      std::memcpy(biases.data(), b->bytes.data(), b->bytes.size());
      sa = ecq::encode_gpu_affine4(codes.data(), scales, biases, M, K, 128, &ta);
    }
    const double enc_a = seconds_since(t0);
    t0 = clock_type::now();
    const ecq::status st = ecq::encode_gpu_bf16(wb.data(), M, K, &tb);
    const double enc_b = seconds_since(t0);
    if (st != ecq::status::ok || sa != ecq::status::ok) {
      std::printf("  encode failed: bf16 %s, affine4 %s\n", ecq::status_string(st), ecq::status_string(sa));
      ++g_failures;
      return;
    }
    std::printf("  encoded: bf16 S=%u %.3f bits/weight (%.1f s), affine4 g128 S=%u %.3f bits/weight incl. side "
                "(quantise + encode %.1f s)\n",
                tb.geometry().scale_bits, double(tb.size()) * 8 / double(n), enc_b, ta.geometry().scale_bits,
                double(ta.size()) * 8 / double(n), enc_a);
    ecq::ecq_file_writer writer;
    if (writer.add("w.bf16", ecq::tensor_dtype::bf16, {M, K}, tb) != ecq::status::ok ||
        writer.add("w.q4", ecq::tensor_dtype::bf16, {M, K}, ta) != ecq::status::ok) {
      ++g_failures;
      return;
    }
    bytes_b = writer.serialize();
    index_q = 1;
  } else if (!read_whole(src.bf16_file, &bytes_b) || !read_whole(src.q4_file, &bytes_q)) {
    std::printf("  cannot read %s or %s\n", src.bf16_file.c_str(), src.q4_file.c_str());
    ++g_failures;
    return;
  } else {
    std::printf("  files made by the tool: %s (%.1f MB), %s (%.1f MB)\n", src.bf16_file.c_str(),
                double(bytes_b.size()) / 1e6, src.q4_file.c_str(), double(bytes_q.size()) / 1e6);
  }
  ecq::ecq_file_reader file_b, file_q;
  if (file_b.parse(bytes_b.data(), bytes_b.size()) != ecq::status::ok ||
      (!bytes_q.empty() && file_q.parse(bytes_q.data(), bytes_q.size()) != ecq::status::ok)) {
    ++g_failures;
    return;
  }
  const ecq::ecq_file_reader& fq = bytes_q.empty() ? file_b : file_q;
  ecq::pinned_staging staging;
  const int copies = g_test ? 1 : 2;
  loaded lb = load_copies(file_b, index_b, copies, &staging);
  loaded la = load_copies(fq, index_q, copies, &staging);
  if (int(lb.copies.size()) != copies || int(la.copies.size()) != copies) return;
  std::printf("  load (open + checks + tables + pinned staging + H2D): bf16 %.1f MB in %.3f s, affine4 %.1f MB in %.3f s\n",
              double(lb.file_bytes) / 1e6, lb.load_s, double(la.file_bytes) / 1e6, la.load_s);

  // decode bf16 and 4-bit codes through the public calls, next to session 5's item order (contiguous ranges per
  // warp) and, for bf16, the decode without its stores (a diagnostic: what reads + decoding cost alone)
  using ecq::detail::item_order;
  using ecq::detail::row_stage64;
  using ecq::detail::row_stage128;
  auto bf16_with = [](auto stage, item_order o) {  // row_stage64, contiguous: session 5's kernel
    using sink = ecq::detail::bf16_store_sink<decltype(stage)>;
    return [o](const view& v, std::uint16_t* out, std::uint32_t* f, cudaStream_t s) {
      return ecq::detail::dispatch_decode<sink>(v, v.table, out, f, s, o);
    };
  };
  auto bf16_no_store = [](item_order o) {
    return [o](const view& v, std::uint16_t* out, std::uint32_t* f, cudaStream_t s) {
      return ecq::detail::dispatch_decode<bf16_no_store_sink>(v, v.table, out, f, s, o);
    };
  };
  {
    using ecq::detail::bf16_store_sink;
    using D = ecq::detail::decode_warp_decoder<11>;
    std::printf("  decode grids at ScaleBits 11 (blocks of %d warps): 128-byte stage %d, 64-byte stage %d\n",
                ecq::detail::decode_block_warps,
                ecq::detail::decode_grid<D, bf16_store_sink<row_stage128>, std::uint16_t>(),
                ecq::detail::decode_grid<D, bf16_store_sink<row_stage64>, std::uint16_t>());
  }
  time_decodes<std::uint16_t>(
      {{"decode_bf16 (bit-exact)", [](const view& v, std::uint16_t* o, std::uint32_t* f,
                                      cudaStream_t s) { return ecq::decode_bf16(v, o, f, s); }},
       {"bf16 64 B stage, contiguous (s5)", bf16_with(row_stage64{}, item_order::contiguous)},
       {"bf16 64 B stage, interleaved", bf16_with(row_stage64{}, item_order::interleaved)},
       {"bf16 128 B stage, contiguous", bf16_with(row_stage128{}, item_order::contiguous)},
       {"decode_bf16 again", [](const view& v, std::uint16_t* o, std::uint32_t* f,
                                cudaStream_t s) { return ecq::decode_bf16(v, o, f, s); }},
       {"bf16 64 B stage, contiguous (s5) again", bf16_with(row_stage64{}, item_order::contiguous)},
       {"bf16 no stores, interleaved", bf16_no_store(item_order::interleaved), false}},
      lb, wb, double(n), double(n) * 2, 20, copy_kernel_gbs);
  std::vector<std::uint8_t> want(n / 2);
  for (std::size_t i = 0; i < n / 2; ++i) want[i] = std::uint8_t(codes[2 * i] | (codes[2 * i + 1] << 4));
  time_decodes<std::uint8_t>(
      {{"decode_codes (exact)", [](const view& v, std::uint8_t* o, std::uint32_t* f,
                                   cudaStream_t s) { return ecq::decode_codes(v, o, f, s); }},
       {"decode_codes contiguous (session 5)",
        [](const view& v, std::uint8_t* o, std::uint32_t* f, cudaStream_t s) {
          return ecq::detail::dispatch_decode<ecq::detail::code_store_sink>(v, v.code_table, o, f, s,
                                                                            item_order::contiguous);
        }}},
      la, want, double(n), double(n) / 2, 40, copy_kernel_gbs);
}

}  // namespace

int main(int argc, char** argv) {
  std::string json;
  sources src;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--test")) g_test = true;
    if (!std::strcmp(argv[i], "--profile")) g_profile = true;
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) json = argv[++i];
    if (!std::strcmp(argv[i], "--write-safetensors") && i + 1 < argc) src.safetensors_out = argv[++i];
    if (!std::strcmp(argv[i], "--files") && i + 2 < argc) {
      src.bf16_file = argv[++i];
      src.q4_file = argv[++i];
    }
  }
  cudaDeviceProp prop;
  CK(cudaGetDeviceProperties(&prop, 0));
  std::printf("device %s, %d SMs\n", prop.name, prop.multiProcessorCount);
  double d2d = 0, d2d_kernel = 0, h2d_pinned = 0, h2d_pageable = 0;
  if (!g_test && !g_profile && src.safetensors_out.empty()) {
    const std::size_t big = std::size_t(1) << 30, mid = std::size_t(256) << 20;
    void *a = nullptr, *b = nullptr, *pinned = nullptr;
    CK(cudaMalloc(&a, big));
    CK(cudaMalloc(&b, big));
    CK(cudaMemset(a, 1, big));
    d2d = copy_gbs(b, a, big, cudaMemcpyDeviceToDevice, 2.0 * double(big));
    d2d_kernel = 2.0 * double(big) / 1e3 / time_graph([&](int, cudaStream_t st) {
      copy_kernel<<<prop.multiProcessorCount * 8, 256, 0, st>>>(static_cast<const uint4*>(a), static_cast<uint4*>(b),
                                                               big / 16);
    }, 1, 8);
    CK(cudaMallocHost(&pinned, mid));
    std::memset(pinned, 1, mid);
    h2d_pinned = copy_gbs(b, pinned, mid, cudaMemcpyHostToDevice, double(mid));
    std::vector<std::uint8_t> pageable(mid, 1);
    h2d_pageable = copy_gbs(b, pageable.data(), mid, cudaMemcpyHostToDevice, double(mid));
    CK(cudaFreeHost(pinned));
    CK(cudaFree(a));
    CK(cudaFree(b));
    std::printf("copy bandwidth: D2D cudaMemcpy %.1f GB/s, copy kernel %.1f GB/s (read + write); H2D pinned %.1f GB/s, "
                "pageable %.1f GB/s\n", d2d, d2d_kernel, h2d_pinned, h2d_pageable);
  }
  if (g_profile) {  // one launch of the copy kernel, for ncu's figures next to the decoders' (256 MiB each way)
    const std::size_t n = std::size_t(256) << 20;
    void *a = nullptr, *b = nullptr;
    CK(cudaMalloc(&a, n));
    CK(cudaMalloc(&b, n));
    CK(cudaMemset(a, 1, n));
    copy_kernel<<<prop.multiProcessorCount * 8, 256>>>(static_cast<const uint4*>(a), static_cast<uint4*>(b), n / 16);
    CK(cudaDeviceSynchronize());
    CK(cudaFree(a));
    CK(cudaFree(b));
  }
  if (g_test)
    run(4096, 4096, d2d_kernel, src);
  else
    run(28672, 8192, d2d_kernel, src);
  if (!src.safetensors_out.empty()) return g_failures == 0 ? 0 : 1;  // only the weights were asked for

  if (!json.empty()) {
    if (FILE* f = std::fopen(json.c_str(), "w")) {
      std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"d2d_memcpy_GBps\": %.1f,\n  \"d2d_copy_kernel_GBps\": %.1f,\n"
                   "  \"h2d_pinned_GBps\": %.1f,\n  \"h2d_pageable_GBps\": %.1f,\n  \"rows\": [\n", prop.name, d2d,
                   d2d_kernel, h2d_pinned, h2d_pageable);
      for (std::size_t i = 0; i < g_rows.size(); ++i)
        std::fprintf(f, "    {\"what\": \"%s\", \"us\": %.3f, \"weights\": %.0f, \"bytes\": %.0f, \"ok\": %s}%s\n",
                     g_rows[i].what.c_str(), g_rows[i].us, g_rows[i].weights, g_rows[i].bytes,
                     g_rows[i].ok ? "true" : "false", i + 1 < g_rows.size() ? "," : "");
      std::fprintf(f, "  ]\n}\n");
      std::fclose(f);
    }
  }
  std::printf("\n%-34s %10s %9s %8s\n", "what", "us", "Tw/s", "GB/s");
  for (const row& r : g_rows)
    std::printf("%-34s %10.2f %9.3f %8.1f %s %s\n", r.what.c_str(), r.us, r.us > 0 ? r.weights / r.us / 1e6 : 0.0,
                r.us > 0 ? r.bytes / r.us / 1e3 : 0.0, r.ok ? "ok" : "FAIL", r.note.c_str());
  std::printf("D2D memcpy %.1f GB/s, copy kernel %.1f GB/s, H2D pinned %.1f GB/s, pageable %.1f GB/s, failures %d\n",
              d2d, d2d_kernel, h2d_pinned, h2d_pageable, g_failures);
  return g_failures == 0 ? 0 : 1;
}
