// bench/cuda/gpu_bench.cu — READ ME FIRST
//
// The GPU benchmark of issue #6, one program, one run (see docs/cuda-notes.md
// and docs/performance.md "GPU (H100)"):
//   * memory bandwidth, the reference of every "% of bandwidth": a 16-byte
//     grid-stride copy kernel (bytes read + written) and a read-only kernel
//     (bytes read), 1 GiB each; cudaMemcpy device to device is printed next
//     to them (on an H200 it reaches only ~70% of the copy kernel's rate);
//   * per shape (M x K, y = W x): synthetic heavy-tailed weights (Student-t,
//     8 degrees of freedom) encoded as
//       - lossless bf16 with exponent pairs (fused GEMV; decode-to-memory,
//         checked bit for bit against the original bf16);
//       - 4-bit affine, group 128, four codes per symbol (fused GEMV;
//         decode-to-memory of the codes, checked byte for byte);
//       - the same 4-bit codes stored plainly (the plain 4-bit GEMV baselines:
//         the tensor-core one on the fused kernel's item layout, and at batch
//         1 the row-major PRMT/FFMA one an engine would run, and on an
//         offline-permuted layout the tensor-core one of Marlin's kind,
//         plain_w4_mma_gemv_kernel, batch 1-8), with a read kernel over the
//         same codes for the bytes' own streaming time;
//       - the bf16 weights through cuBLAS (cublasGemmEx, fp32 and bf16 out);
//     every GEMV result checked against a float64 CPU reference;
//   * timing: every kernel in a CUDA graph of many launches that rotate over
//     enough copies of its data to keep L2 (50 MB) cold; median of replays.
// Prints a table last and writes JSON (argv: --json PATH).
//
// Modes: (default) all shapes; --quick: the acceptance shape only;
// --test: small shapes, every kernel once with checks and no timing (for
// compute-sanitizer memcheck/racecheck); --profile: one launch each at
// 28672 x 8192 (for ncu); --plain: cuBLAS and the plain 4-bit kernels only;
// --bf16: cuBLAS and the fused bf16 block-length variants and the byte-split
// prototype, all four shapes, batch 1-8 (with --test: the small shapes);
// --zero-copy: the weights in mapped pinned host memory, read over PCIe.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "reference_kernels.cuh"
#include "tile_codec.hpp"

using namespace ecq_bench;

#define CK(call)                                                                                   \
  do {                                                                                             \
    cudaError_t e_ = (call);                                                                       \
    if (e_ != cudaSuccess) {                                                                       \
      std::fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_)); \
      std::exit(2);                                                                                \
    }                                                                                              \
  } while (0)
#define CB(call)                                                                              \
  do {                                                                                        \
    cublasStatus_t s_ = (call);                                                               \
    if (s_ != CUBLAS_STATUS_SUCCESS) {                                                        \
      std::fprintf(stderr, "%s:%d: %s: cublas status %d\n", __FILE__, __LINE__, #call, int(s_)); \
      std::exit(2);                                                                           \
    }                                                                                         \
  } while (0)

namespace {

bool g_test = false;
bool g_profile = false;  // one launch of the main kernels, no graphs (for ncu)
bool g_cublas = true;
bool g_timeline = false;  // --timeline: per-warp start/end of one launch of each fused configuration
bool g_plain_only = false;  // --plain: cuBLAS and the plain 4-bit kernels only (no fused, no decode)
// --bf16: cuBLAS and the fused bf16 configurations of session 7 (with the byte-split prototype) on issue #13's
// four shapes, batch 1-8 (no decode, no 4-bit); with --profile 28672 x 8192 batch 1 only
bool g_bf16_only = false;
// --zero-copy: the weights (streams, raw and side words, codes, bf16 W) in mapped pinned host memory, read by the
// kernels over PCIe; 28672 x 8192, batch 1, one configuration per kernel (issue #13's "where it pays" check)
bool g_zero_copy = false;
int g_failures = 0;
int g_sms = 0;
std::string g_json;

template <class T>
struct dbuf {
  T* p = nullptr;
  std::size_t n = 0;
  dbuf() = default;
  bool host = false;  // mapped pinned host memory (the pointer is valid on the device too)
  explicit dbuf(std::size_t count, bool on_host = false) : n(count), host(on_host) {
    const std::size_t b = std::max<std::size_t>(1, n) * sizeof(T);
    if (host)
      CK(cudaHostAlloc(&p, b, cudaHostAllocMapped | cudaHostAllocPortable));
    else
      CK(cudaMalloc(&p, b));
  }
  dbuf(const dbuf&) = delete;
  dbuf& operator=(const dbuf&) = delete;
  dbuf(dbuf&& o) noexcept : p(o.p), n(o.n), host(o.host) { o.p = nullptr; }
  dbuf& operator=(dbuf&& o) noexcept {
    std::swap(p, o.p);
    std::swap(n, o.n);
    std::swap(host, o.host);
    return *this;
  }
  ~dbuf() {
    if (p && host) cudaFreeHost(p);
    if (p && !host) cudaFree(p);
  }
  std::size_t bytes() const { return n * sizeof(T); }
};
template <class T>
dbuf<T> upload(const std::vector<T>& v, bool on_host = false) {
  dbuf<T> d(v.size(), on_host);
  if (!v.empty()) CK(cudaMemcpy(d.p, v.data(), v.size() * sizeof(T), cudaMemcpyDefault));
  return d;
}
/// Weights: device memory, or mapped host memory with --zero-copy.
template <class T>
dbuf<T> upload_weights(const std::vector<T>& v) {
  return upload(v, g_zero_copy);
}
template <class T>
std::vector<T> download(const T* p, std::size_t n) {
  std::vector<T> v(n);
  CK(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
  return v;
}

struct result_row {
  std::string shape, kernel, config;
  int batch = 1;
  double us = 0, bytes = 0, weights = 0, err = -1;
  bool ok = true;
};
std::vector<result_row> g_rows;

void record(const result_row& r) {
  g_rows.push_back(r);
  std::printf("  %-10s %-26s b=%d %-22s %9.2f us %8.1f GB/s %8.3f Tw/s err=%.2e %s\n", r.shape.c_str(),
              r.kernel.c_str(), r.batch, r.config.c_str(), r.us, r.us > 0 ? r.bytes / r.us / 1e3 : 0.0,
              r.us > 0 ? r.weights / r.us / 1e6 : 0.0, r.err, r.ok ? "ok" : "FAIL");
  std::fflush(stdout);
  if (!r.ok) ++g_failures;
}

/// Median time per launch (us) of `launch(copy, stream)` captured `per_graph`
/// times into a graph, copies rotating, over `reps` replays.
double time_graph(const std::function<void(int, cudaStream_t)>& launch, int copies, double est_us) {
  cudaStream_t st;
  CK(cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking));
  for (int i = 0; i < copies; ++i) launch(i, st);  // warm-up: module load, first touch
  CK(cudaStreamSynchronize(st));
  CK(cudaGetLastError());
  if (g_zero_copy) est_us *= 60;  // PCIe instead of HBM
  int per_graph = int(std::max(2.0, std::min(400.0, 3000.0 / std::max(est_us, 1.0))));
  per_graph = (per_graph + copies - 1) / copies * copies;
  cudaGraph_t graph;
  cudaGraphExec_t exec;
  CK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
  for (int i = 0; i < per_graph; ++i) launch(i % copies, st);
  CK(cudaStreamEndCapture(st, &graph));
  CK(cudaGraphInstantiate(&exec, graph, 0));
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  CK(cudaGraphLaunch(exec, st));  // warm replay
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
  CK(cudaGetLastError());
  std::sort(t.begin(), t.end());
  CK(cudaEventDestroy(a));
  CK(cudaEventDestroy(b));
  CK(cudaGraphExecDestroy(exec));
  CK(cudaGraphDestroy(graph));
  CK(cudaStreamDestroy(st));
  return t[t.size() / 2];
}

/// Summary of a fused launch's per-warp timeline ({block start, decode start,
/// end, SM} per warp, ns): when warps start decoding, when they and their SMs
/// finish, and the share of SM time left idle before the last warp ends.
void print_timeline(const std::string& what, const std::vector<std::uint64_t>& tl, int sms) {
  const std::size_t warps = tl.size() / 4;
  std::uint64_t t0 = ~0ull, t1 = 0;
  for (std::size_t w = 0; w < warps; ++w) {
    t0 = std::min(t0, tl[4 * w]);
    t1 = std::max(t1, tl[4 * w + 2]);
  }
  std::vector<double> start(warps), end(warps), sm_end(std::size_t(sms), 0.0);
  for (std::size_t w = 0; w < warps; ++w) {
    start[w] = double(tl[4 * w + 1] - t0) / 1e3;
    end[w] = double(tl[4 * w + 2] - t0) / 1e3;
    const std::size_t sm = std::size_t(tl[4 * w + 3]);
    if (sm < sm_end.size()) sm_end[sm] = std::max(sm_end[sm], end[w]);
  }
  const double total = double(t1 - t0) / 1e3;
  double idle = 0;
  for (double e : sm_end) idle += total - e;
  auto pct = [](std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, std::size_t(p * double(v.size())))];
  };
  std::printf("  timeline %s: %.1f us; decode starts p50 %.1f max %.1f; warp ends p10 %.1f p50 %.1f p90 %.1f; "
              "SM ends min %.1f p50 %.1f; SM time idle before the end %.1f%%\n",
              what.c_str(), total, pct(start, 0.5), pct(start, 1.0), pct(end, 0.1), pct(end, 0.5), pct(end, 0.9),
              pct(sm_end, 0.0), pct(sm_end, 0.5), 100.0 * idle / (total * double(sm_end.size())));
}

int copies_for(double bytes) { return std::max(2, int(std::ceil(150e6 / std::max(bytes, 1.0)))); }

double rel_l2(const std::vector<float>& y, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    if (!std::isfinite(y[i])) return INFINITY;
    num += (double(y[i]) - ref[i]) * (double(y[i]) - ref[i]);
    den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

/// y[b][r] = sum_c w(r, c) x[b][c] in float64.
std::vector<double> reference_gemv(std::uint32_t M, std::uint32_t K, int batch,
                                   const std::function<void(std::size_t, double*)>& row_weights,
                                   const std::vector<std::uint16_t>& x) {
  std::vector<double> y(std::size_t(batch) * M);
  std::vector<double> xd(x.size());
  for (std::size_t i = 0; i < x.size(); ++i) xd[i] = bf16_to_float(x[i]);
  parallel_for(M, [&](std::size_t a, std::size_t b) {
    std::vector<double> w(K);
    for (std::size_t r = a; r < b; ++r) {
      row_weights(r, w.data());
      for (int bb = 0; bb < batch; ++bb) {
        double s = 0;
        const double* xb = xd.data() + std::size_t(bb) * K;
        for (std::uint32_t c = 0; c < K; ++c) s += w[c] * xb[c];
        y[std::size_t(bb) * M + r] = s;
      }
    }
  });
  return y;
}

/// Device copies of an encoded matrix: streams + raw + side, `copies` times.
struct device_tiles {
  std::vector<dbuf<std::uint16_t>> words;
  std::vector<dbuf<std::uint32_t>> raw, side;
  dbuf<std::uint32_t> offset, count;
  bench_tiles view(int copy, std::uint32_t parts) const {
    bench_tiles t = bench_tiles::geometry(layout.tiles(), layout.chunks(), layout.chunk_cols, layout.rounds(),
                                          layout.tile_rows, parts);
    t.words = words[copy].p;
    t.offset = offset.p;
    t.count = count.p;
    t.raw = raw[copy].p;
    t.side = side.empty() ? nullptr : side[copy].p;
    t.raw_words = raw_words;
    t.side_words = side_words;
    return t;
  }
  tile_layout layout;
  std::uint32_t raw_words = 0, side_words = 0;
  double bytes = 0;  // streams + raw + side of one copy
};

device_tiles make_device_tiles(const encoded_streams& s, const tile_layout& L, const std::vector<std::uint32_t>& raw,
                               std::uint32_t raw_words_per_item, const std::vector<std::uint32_t>* side,
                               std::uint32_t side_words_per_item, int copies) {
  device_tiles d;
  d.layout = L;
  d.raw_words = raw_words_per_item;
  d.side_words = side_words_per_item;
  d.offset = upload(s.offset);
  d.count = upload(s.count);
  for (int c = 0; c < copies; ++c) {
    d.words.push_back(upload_weights(s.words));
    d.raw.push_back(upload_weights(raw));
    if (side) d.side.push_back(upload_weights(*side));
  }
  d.bytes = double(s.words.size()) * 2 + double(raw.size()) * 4 + (side ? double(side->size()) * 4 : 0.0);
  return d;
}

template <class Kernel>
int blocks_per_sm(Kernel k, int threads, std::size_t smem) {
  int n = 0;
  CK(cudaFuncSetAttribute(k, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&n, k, threads, smem));
  return n;
}

std::vector<std::uint16_t> make_activations(int batch, std::uint32_t K, std::uint64_t seed) {
  std::vector<std::uint16_t> x(std::size_t(batch) * K);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = float_to_bf16(float(normal_at(seed, i, 3)));
  return x;
}

// ------------------------------------------------------------------------------------------------
// Kernel configurations: decoder variants measured side by side.
/// S: ScaleBits; R: table replicas; Words: word source; Ways: streams per warp; Warps per block; MinBlocks for
/// __launch_bounds__ (register cap).
/// SPL: states per lane (2: 64-row tiles, lane j decodes rows j and j + 32).
/// MinParts: the fewest K-parts (run_fused takes more where MinBlocks blocks would not fit an SM).
template <int S, int R, class Words, int Ways, int Warps, int MinBlocks, int SPL = 1, int MinParts = 1>
struct config {
  using decoder = ecq::warp_decoder<ecq::rans32x16<S>, ecq::narrow_entry_policy, R, Words, Ways, SPL>;
  static constexpr int warps = Warps, min_blocks = MinBlocks, ways = Ways, states_per_lane = SPL,
                       min_parts = MinParts;
  static std::string name() {
    char b[64];
    std::snprintf(b, sizeof b, "R%d w%d%s %dw/b r%d%s", R, Ways, SPL == 2 ? " x2" : "", Warps,
                  Words::rounds_per_block, Words::adaptive ? " la" : "");
    return b;
  }
};
using ring8 = ecq::staged_words<1024, 8, 1>;    // 8 rounds per block, 2 KB + mirror per stream
using ring16 = ecq::staged_words<2048, 16, 1>;  // 16 rounds per block (half the per-block work), 4 KB + mirror
using ring4x2 = ecq::staged_words<1024, 4, 1, 64>;  // two states per lane, 4 rounds per block: 2 KB + mirror
using ring8x2 = ecq::staged_words<2048, 8, 1, 64>;  // two states per lane, 8 rounds per block: 4 KB + mirror
// 16 rounds per block in 2 KB + mirror: copies 768 words ahead (one worst-case block of 520 + the ~190 a bf16
// block takes), the wait for the newest copies only when the older ones do not cover the block
using ring16a = ecq::staged_words<1024, 16, 1, 32, 768>;
constexpr int kWarps = 8;

/// Parts (at least min_parts) so that Batch * columns * 2 bytes of activations fit `budget` bytes and, where
/// `fits` is given, fits(parts) holds (the blocks per SM the configuration is built for).
template <class Fits>
std::uint32_t parts_for(int batch, const tile_layout& L, std::size_t budget, std::uint32_t min_parts, Fits&& fits) {
  for (std::uint32_t p : {1u, 2u, 4u, 6u, 11u, 12u}) {
    if (p < min_parts || L.chunks() % p != 0 || std::uint32_t(g_sms) % p != 0) continue;
    if (std::size_t(batch) * (L.cols / p) * 2 <= budget && fits(p)) return p;
  }
  return 0;
}
std::uint32_t parts_for(int batch, const tile_layout& L, std::size_t budget) {
  return parts_for(batch, L, budget, 1, [](std::uint32_t) { return true; });
}

/// One result row of a GEMV: a first launch onto a poisoned y, the check against the float64 reference,
/// then (unless --test or --profile) the timing over `copies` rotating weight copies.
void record_gemv(const std::string& shape, const std::string& kernel, int batch, const std::string& config,
                 const dbuf<float>& y, const std::vector<double>& ref, double bytes, std::uint32_t M, std::uint32_t K,
                 const std::function<void(int, cudaStream_t)>& launch, int copies, double est_us) {
  CK(cudaMemset(y.p, 0xff, y.bytes()));
  launch(0, 0);
  CK(cudaDeviceSynchronize());
  CK(cudaGetLastError());
  result_row r;
  r.shape = shape;
  r.kernel = kernel;
  r.batch = batch;
  r.config = config;
  r.err = rel_l2(download(y.p, y.n), ref);
  r.ok = r.err < 1e-4;
  r.bytes = bytes;
  r.weights = double(M) * K;
  if (!g_test && !g_profile) {
    r.us = time_graph(launch, copies, est_us);
    // y of the timed launches (back to back; programmatic dependent ones overlap) checked again
    const double err2 = rel_l2(download(y.p, y.n), ref);
    r.ok = r.ok && err2 < 1e-4;
  }
  record(r);
}

template <class C, class Dequant, int Batch>
void run_fused(const std::string& shape, const std::string& name, const device_tiles& dt, const dbuf<std::uint32_t>& table,
               const dbuf<std::uint16_t>& x, std::uint32_t M, std::uint32_t K, const std::vector<double>& ref,
               double table_bytes) {
  using D = typename C::decoder;
  constexpr int kWarps = C::warps;
  using G = ecq::block_fused_gemv<kWarps, D, Dequant, Batch>;
  auto kern = fused_gemv_kernel<kWarps, C::min_blocks, D, Dequant, Batch>;
  if (dt.layout.tile_rows != 32u * C::states_per_lane) return;  // the configuration decodes the other tile height
  // The fewest parts (from C::min_parts) whose blocks fit MinBlocks to an SM, as the library's plans choose them.
  const std::uint32_t parts = parts_for(Batch, dt.layout, 40 * 1024, C::min_parts, [&](std::uint32_t p) {
    return blocks_per_sm(kern, kWarps * 32, G::shared_bytes(K / p)) >= C::min_blocks;
  });
  if (parts == 0 || (dt.layout.chunks() / parts) % C::ways != 0) return;
  const std::uint32_t columns = K / parts;
  const std::size_t smem = G::shared_bytes(columns);
  const int max_bps = blocks_per_sm(kern, kWarps * 32, smem);
  dbuf<float> y(std::size_t(Batch) * M);
  dbuf<std::uint32_t> pool(parts);
  const std::uint32_t per_part = dt.layout.items() / parts / C::ways;
  std::vector<int> bps_list;
  for (int b = max_bps; b >= 1 && int(bps_list.size()) < (g_test || g_bf16_only ? 1 : 3); --b) bps_list.push_back(b);
  // Static split (every item in contiguous ranges), then at the most blocks per SM a dynamic tail: 80% static,
  // the last 20% taken one item at a time by the warps that finish first.
  std::vector<std::pair<int, std::uint32_t>> runs;
  for (int bps : bps_list) runs.push_back({bps, per_part});
  runs.push_back({bps_list.front(), per_part * 4 / 5});
  for (const auto& run : runs) {
    const int bps = run.first;
    const std::uint32_t static_items = run.second;
    const int grid = g_sms * bps;
    if (grid % int(parts) != 0) continue;
    auto launch_with = [&](int copy, cudaStream_t st, std::uint64_t* timeline) {
      CK(cudaMemsetAsync(y.p, 0, y.bytes(), st));
      CK(cudaMemsetAsync(pool.p, 0, pool.bytes(), st));
      kern<<<grid, kWarps * 32, smem, st>>>(dt.view(copy, parts), table.p, x.p, K, parts, y.p, M, static_items, pool.p,
                                            timeline);
    };
    auto launch = [&](int copy, cudaStream_t st) { launch_with(copy, st, nullptr); };
    char cfg[64];
    std::snprintf(cfg, sizeof cfg, " %dx%dw p%u%s", bps, kWarps, parts, static_items < per_part ? " dyn" : "");
    const std::string config = C::name() + cfg;
    // y is poisoned first: the memset in launch must clear it
    record_gemv(shape, name, Batch, config, y, ref, dt.bytes + table_bytes, M, K, launch, int(dt.words.size()), 100.0);
    if (g_profile) break;
    if (g_timeline && !g_test && bps == bps_list.front()) {
      // One more launch (the last copy: L2-cold) with the per-warp timeline.
      dbuf<std::uint64_t> tl(4 * std::size_t(grid) * kWarps);
      launch_with(int(dt.words.size()) - 1, 0, tl.p);
      CK(cudaDeviceSynchronize());
      print_timeline(name + " " + config, download(tl.p, tl.n), g_sms);
    }
  }
}

template <int Batch>
void run_plain(const std::string& shape, const device_tiles& dt, const std::vector<dbuf<std::uint32_t>>& plain,
               const std::vector<dbuf<std::uint32_t>>& side, std::uint32_t plain_u4, const dbuf<std::uint16_t>& x,
               std::uint32_t M, std::uint32_t K, const std::vector<double>& ref, double bytes) {
  auto kern = plain_w4_gemv_kernel<kWarps, Batch, 128>;
  const std::uint32_t parts = parts_for(Batch, dt.layout, 40 * 1024);
  if (parts == 0) return;
  const std::size_t smem = plain_w4_shared_bytes<Batch, 128>(K / parts);
  const int max_bps = blocks_per_sm(kern, kWarps * 32, smem);
  dbuf<float> y(std::size_t(Batch) * M);
  std::vector<int> bps_list;
  for (int b = max_bps; b >= 1 && int(bps_list.size()) < (g_test ? 1 : 3); --b) bps_list.push_back(b);
  for (int bps : bps_list) {
    const int grid = g_sms * bps;
    if (grid % int(parts) != 0) continue;
    auto launch = [&](int copy, cudaStream_t st) {
      CK(cudaMemsetAsync(y.p, 0, y.bytes(), st));
      bench_tiles v = dt.view(0, parts);  // geometry only: the plain kernel reads no stream
      v.side = side[copy].p;
      kern<<<grid, kWarps * 32, smem, st>>>(v, reinterpret_cast<const uint4*>(plain[copy].p), plain_u4, x.p, K, parts,
                                            y.p, M);
    };
    char cfg[64];
    std::snprintf(cfg, sizeof cfg, "%dx%dw p%u", bps, kWarps, parts);
    record_gemv(shape, "plain w4 g128", Batch, cfg, y, ref, bytes, M, K, launch, int(plain.size()), 50.0);
    if (g_profile) break;
  }
}

/// The row-major plain 4-bit GEMV (batch 1) on `w` (two codes per byte) and `side` ([row][K / 128]).
template <int Warps, int Slabs>
void run_plain_rowmajor(const std::string& shape, const std::vector<dbuf<std::uint8_t>>& w,
                        const std::vector<dbuf<std::uint32_t>>& side, const dbuf<std::uint16_t>& x, std::uint32_t M,
                        std::uint32_t K, const std::vector<double>& ref, double bytes) {
  if (K % (1024 * Slabs) != 0 || M % 4 != 0) return;
  auto kern = plain_w4_rowmajor_gemv_kernel<Warps, 128, Slabs>;
  const std::size_t smem = plain_w4_rowmajor_shared_bytes(K);
  const int max_bps = blocks_per_sm(kern, Warps * 32, smem);
  dbuf<float> y(M);
  for (int bps = max_bps; bps >= std::max(1, max_bps - 2); --bps) {
    const int grid = g_sms * bps;
    auto launch = [&](int copy, cudaStream_t st) {
      CK(cudaMemsetAsync(y.p, 0, y.bytes(), st));
      kern<<<grid, Warps * 32, smem, st>>>(reinterpret_cast<const uint4*>(w[copy].p), side[copy].p, x.p, M, K, y.p);
    };
    char cfg[64];
    std::snprintf(cfg, sizeof cfg, "%dx%dw u%d prmt+ffma", bps, Warps, 1024 * Slabs);
    record_gemv(shape, "plain w4 g128 row-major", 1, cfg, y, ref, bytes, M, K, launch, int(w.size()), 40.0);
    if (g_test || g_profile) break;
  }
}

/// The tensor-core plain 4-bit GEMV (plain_w4_mma_gemv_kernel) on `codes` / `side` in plain_w4_mma_layout.
/// Owned: blocks own whole row ranges and store y (no memset, no global atomics). Pdl: launched as a
/// programmatic dependent launch (the kernel's Pdl form).
template <int Warps, int TileRows, int Chunks, int Stages, int Batch, bool Exact, bool Owned = false, bool Bulk = false,
          bool Pdl = false>
void run_plain_mma(const std::string& shape, const std::vector<dbuf<std::uint32_t>>& codes,
                   const std::vector<dbuf<std::uint32_t>>& side, const dbuf<std::uint16_t>& x, std::uint32_t M,
                   std::uint32_t K, const std::vector<double>& ref, double bytes) {
  if (K % (64 * Chunks) != 0 || M % (16 * TileRows) != 0) return;
  auto kern = plain_w4_mma_gemv_kernel<Warps, TileRows, Chunks, Stages, Batch, Exact, Owned, Bulk, Pdl>;
  int max_smem = 0;
  CK(cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0));
  // blocks per SM from the shared memory of a one-block-per-SM grid, then the grid's own (owned rows shrink)
  std::size_t smem = plain_w4_mma_shared_bytes<Warps, TileRows, Chunks, Stages, Batch, Owned, Bulk>(M, K, g_sms);
  if (smem > std::size_t(max_smem)) return;  // this configuration does not fit K's activations
  const int bps = blocks_per_sm(kern, Warps * 32, smem);
  if (bps == 0) return;
  // --test also runs a 3-block grid, so that each warp crosses several units and row groups
  for (const int grid : {g_sms * bps, g_test ? 3 : 0}) {
    if (grid == 0) continue;
    smem = plain_w4_mma_shared_bytes<Warps, TileRows, Chunks, Stages, Batch, Owned, Bulk>(M, K, grid);
    if (smem > std::size_t(max_smem)) continue;
    CK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));  // a 3-block grid owns more rows
    dbuf<float> y(std::size_t(Batch) * M);
    auto launch = [&](int copy, cudaStream_t st) {
      if (!Owned) CK(cudaMemsetAsync(y.p, 0, y.bytes(), st));
      cudaLaunchConfig_t lc = {};
      lc.gridDim = dim3(unsigned(grid));
      lc.blockDim = dim3(Warps * 32);
      lc.dynamicSmemBytes = smem;
      lc.stream = st;
      cudaLaunchAttribute attr[1];
      attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
      attr[0].val.programmaticStreamSerializationAllowed = 1;
      lc.attrs = attr;
      lc.numAttrs = Pdl ? 1 : 0;
      CK(cudaLaunchKernelEx(&lc, kern, reinterpret_cast<const uint4*>(codes[copy].p),
                            reinterpret_cast<const uint2*>(side[copy].p), x.p, M, K, y.p));
    };
    char cfg[64];
    std::snprintf(cfg, sizeof cfg, "%dx%dw %ux%u s%d%s%s%s%s", grid == g_sms * bps ? bps : 0, Warps, 16 * TileRows,
                  64 * Chunks, Stages, Owned ? " own" : "", Bulk ? " tma" : "", Exact ? " exact" : "",
                  Pdl ? " pdl" : "");
    record_gemv(shape, "plain w4 g128 mma", Batch, grid == g_sms * bps ? std::string(cfg) : std::string(cfg) + " g3", y,
                ref, bytes, M, K, launch, int(codes.size()), 35.0);
  }
}

void run_cublas(const std::string& shape, cublasHandle_t h, const std::vector<dbuf<std::uint16_t>>& w,
                const std::vector<std::uint16_t>& xh, std::uint32_t M, std::uint32_t K, int batch,
                const std::vector<double>& ref) {
  dbuf<std::uint16_t> x = upload(std::vector<std::uint16_t>(xh.begin(), xh.begin() + std::size_t(batch) * K));
  for (int out_bf16 = 0; out_bf16 < 2; ++out_bf16) {
    dbuf<float> y(std::size_t(batch) * M);
    dbuf<std::uint16_t> yb(std::size_t(batch) * M);
    const float alpha = 1.0f, beta = 0.0f;
    auto launch = [&](int copy, cudaStream_t st) {
      CB(cublasSetStream(h, st));
      CB(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, int(M), batch, int(K), &alpha, w[copy].p, CUDA_R_16BF, int(K), x.p,
                      CUDA_R_16BF, int(K), &beta, out_bf16 ? static_cast<void*>(yb.p) : static_cast<void*>(y.p),
                      out_bf16 ? CUDA_R_16BF : CUDA_R_32F, int(M), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    launch(0, 0);
    CK(cudaDeviceSynchronize());
    std::vector<float> yv;
    if (out_bf16) {
      const auto hb = download(yb.p, yb.n);
      for (std::uint16_t v : hb) yv.push_back(bf16_to_float(v));
    } else {
      yv = download(y.p, y.n);
    }
    result_row r;
    r.shape = shape;
    r.kernel = out_bf16 ? "cublas bf16->bf16" : "cublas bf16->f32";
    r.batch = batch;
    r.config = "GemmEx default";
    r.err = rel_l2(yv, ref);
    r.ok = r.err < (out_bf16 ? 1e-2 : 1e-4);
    r.bytes = double(M) * K * 2;
    r.weights = double(M) * K;
    if (!g_test) r.us = time_graph(launch, int(w.size()), 100.0);
    record(r);
  }
}

template <class C, class Kernel>
void time_decode(const std::string& shape, const std::string& name, Kernel kern, std::size_t smem,
                 const std::function<void(int, cudaStream_t, int)>& launch_grid, double bytes, double weights,
                 int copies, bool ok, double err, const std::string& extra) {
  const int max_bps = blocks_per_sm(kern, C::warps * 32, smem);
  for (int bps = max_bps; bps >= std::max(1, max_bps - 1); --bps) {
    if (g_profile && bps != max_bps) break;
    result_row r;
    r.shape = shape;
    r.kernel = name;
    char cfg[64];
    std::snprintf(cfg, sizeof cfg, " %dx%dw%s", bps, C::warps, extra.c_str());
    r.config = C::name() + cfg;
    r.ok = ok;
    r.err = err;
    r.bytes = bytes;
    r.weights = weights;
    if (!g_test && !g_profile)
      r.us = time_graph([&](int c, cudaStream_t st) { launch_grid(c, st, g_sms * bps); }, copies, 50.0);
    record(r);
    if (g_test) break;
  }
}

__global__ void copy_kernel(const uint4* __restrict__ src, uint4* __restrict__ dst, std::size_t n) {
  for (std::size_t i = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x; i < n; i += std::size_t(gridDim.x) * blockDim.x)
    dst[i] = src[i];
}

/// Reads n uint4 and writes one word per thread (the XOR of what it read), so that no load is dropped.
__global__ void read_kernel(const uint4* __restrict__ src, std::size_t n, std::uint32_t* out) {
  std::uint32_t a = 0;
  const std::size_t t = blockIdx.x * std::size_t(blockDim.x) + threadIdx.x;
  for (std::size_t i = t; i < n; i += std::size_t(gridDim.x) * blockDim.x) {
    const uint4 v = ecq::detail::load_streaming(src + i);
    a ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  out[t] = a;
}

struct bandwidths {
  double memcpy_gbs = 0, copy_kernel_gbs = 0, read_kernel_gbs = 0;
};

/// Device memory bandwidths (GB/s) of 1 GiB buffers, two of each rotating in the graph: cudaMemcpyAsync and the
/// copy kernel count bytes read + written, the read kernel bytes read.
bandwidths measure_bandwidths() {
  const std::size_t n = std::size_t(1) << 30;
  dbuf<std::uint8_t> a(n), b(n);
  CK(cudaMemset(a.p, 1, n));
  CK(cudaMemset(b.p, 2, n));
  const int grid = g_sms * 8, threads = 256;
  dbuf<std::uint32_t> sink(std::size_t(grid) * threads);
  bandwidths r;
  r.memcpy_gbs = 2.0 * n / time_graph([&](int c, cudaStream_t st) {
    CK(cudaMemcpyAsync(c ? a.p : b.p, c ? b.p : a.p, n, cudaMemcpyDeviceToDevice, st));
  }, 2, 700.0) / 1e3;
  r.copy_kernel_gbs = 2.0 * n / time_graph([&](int c, cudaStream_t st) {
    copy_kernel<<<grid, threads, 0, st>>>(reinterpret_cast<const uint4*>(c ? b.p : a.p),
                                          reinterpret_cast<uint4*>(c ? a.p : b.p), n / 16);
  }, 2, 500.0) / 1e3;
  r.read_kernel_gbs = double(n) / time_graph([&](int c, cudaStream_t st) {
    read_kernel<<<grid, threads, 0, st>>>(reinterpret_cast<const uint4*>(c ? b.p : a.p), n / 16, sink.p);
  }, 2, 250.0) / 1e3;
  CK(cudaGetLastError());
  return r;
}

__global__ void spin_kernel(long long cycles, long long* out) {
  const long long t0 = clock64();
  while (clock64() - t0 < cycles) {
  }
  if (threadIdx.x == 0) out[blockIdx.x] = clock64() - t0;
}

double measure_sm_clock_ghz() {
  dbuf<long long> out(g_sms);
  cudaEvent_t a, b;
  CK(cudaEventCreate(&a));
  CK(cudaEventCreate(&b));
  spin_kernel<<<g_sms, 32>>>(1000000, out.p);
  CK(cudaEventRecord(a));
  spin_kernel<<<g_sms, 32>>>(20000000, out.p);
  CK(cudaEventRecord(b));
  CK(cudaEventSynchronize(b));
  float ms;
  CK(cudaEventElapsedTime(&ms, a, b));
  return 20000000.0 / (ms * 1e6);
}

// ------------------------------------------------------------------------------------------------
void run_shape(std::uint32_t M, std::uint32_t K, const std::vector<int>& batches, cublasHandle_t h) {
  char shape[32];
  std::snprintf(shape, sizeof shape, "%ux%u", M, K);
  std::printf("shape %s\n", shape);
  const auto t0 = std::chrono::steady_clock::now();
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  const std::size_t n = std::size_t(M) * K;

  // Weights: Student-t(8) * 0.02, per-row scale in [0.5, 1.5].
  std::vector<float> wf(n);
  parallel_for(M, [&](std::size_t a, std::size_t b) {
    for (std::size_t r = a; r < b; ++r) {
      const float rs = 0.02f * float(0.5 + uniform01(mix64(0xabcd + r)));
      for (std::uint32_t c = 0; c < K; ++c) wf[r * K + c] = t8_at(0x5eed, r * K + c, rs);
    }
  });
  std::vector<std::uint16_t> wb(n);
  parallel_for(n, [&](std::size_t a, std::size_t b) {
    for (std::size_t i = a; i < b; ++i) wb[i] = float_to_bf16(wf[i]);
  });
  const std::vector<std::uint16_t> xh = make_activations(max_batch, K, 0x77 + M + K);

  // ---- bf16 pairs: 32-row tiles of 256 weights from the library's encoder (the GPU layout, what `ecq pack
  // --layout gpu` writes)
  tile_layout Lb{M, K, 256, 2};
  bf16_pair_tensor bt;
  bt.layout = Lb;
  bt.raw_words_per_item = ecq::gpu_layout::raw_words_per_block(ecq::gpu_layout::bf16_pairs_scheme);
  encoded_streams bs;
  std::vector<std::uint32_t> bf16_table;
  ecq::encoded_tensor container;
  const bool bf16_ok = ecq::encode_gpu_bf16(wb.data(), M, K, &container) == ecq::status::ok &&
                       from_container(container, ecq::gpu_table_kind::gemv, &bs, &bt.raw, nullptr, &bf16_table);
  // The same weights in 64-row tiles, for the decoders with two states per lane: not in the GPU layout, so from
  // this benchmark's encoder, with its own table.
  struct bf16_variant {
    std::string tag;
    bf16_pair_tensor t;
    encoded_streams s;
    std::vector<std::uint32_t> table;
  };
  std::vector<bf16_variant> bf16_variants;
  if (M % 64 == 0 && !g_plain_only && !g_zero_copy && !g_bf16_only) {
    tile_layout L = Lb;
    L.tile_rows = 64;
    bf16_variant v;
    v.table.resize(std::size_t(1) << 11);
    const auto& ex = v.t.exponents;
    if (make_bf16_pairs(wb, L, &v.t) && encode_items(v.t.layout, v.t.symbols, 4096, &v.s) && v.s.scale_bits == 11 &&
        ecq::build_narrow_decode_table(v.s.freqs.data(), 4096, 11, [&](std::uint32_t s) {
          return ecq::bf16_pair_dequant::payload(ex[s & 63], ex[(s >> 6) < ex.size() ? (s >> 6) : 0]);
        }, v.table.data()) == ecq::status::ok)
      bf16_variants.push_back(std::move(v));
  }
  // ---- affine-4 g128, four codes per symbol (the codes and scales do not depend on the chunk size): 32-row tiles
  // of 256 weights from the library's encoder; the plain baseline's layout and the other chunk sizes from this
  // benchmark's. Both encode symbol_packing<4, 4, 2> symbols, so the tables are built alike.
  tile_layout La{M, K, 256, 4};
  affine4_tensor at;
  if (!g_bf16_only) make_affine4(wf, La, 128, &at);
  encoded_streams as;
  const bool a4_ok = !g_bf16_only && ecq::encode_gpu_affine4(at.codes.data(), at.scale, at.bias, M, K, 128, &container) ==
                         ecq::status::ok &&
                     from_container(container, ecq::gpu_table_kind::gemv, &as, &at.raw, &at.side, nullptr);
  container = ecq::encoded_tensor{};
  std::vector<float>().swap(wf);
  std::printf("  prepared in %.1f s: bf16 pairs S=%d H=%.3f bits/pair, %.3f bits/weight coded; "
              "affine4 S=%d H=%.3f bits/symbol, %.3f bits/weight coded (+%.3f side)\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), bs.scale_bits,
              bs.entropy_bits_per_symbol, (double(bs.stream_bytes()) * 8 + double(n) * 8) / double(n), as.scale_bits,
              as.entropy_bits_per_symbol, (double(as.stream_bytes()) * 8 + double(n) * 2) / double(n), 32.0 / 128);
  if (!bf16_ok || bs.scale_bits != 11) {
    std::printf("  bf16 pairs: unsupported (exponents or scale bits %d)\n", bs.scale_bits);
    ++g_failures;
  }
  if (!g_bf16_only && (!a4_ok || as.scale_bits != 12)) {
    std::printf("  affine4: unsupported (scale bits %d)\n", as.scale_bits);
    ++g_failures;
  }

  // ---- references, all batch columns at once ([b][M]; batch b uses the first b)
  const std::vector<double> ref_b = reference_gemv(M, K, max_batch, [&](std::size_t r, double* w) {
    for (std::uint32_t c = 0; c < K; ++c) w[c] = bf16_to_float(wb[r * K + c]);
  }, xh);
  const std::vector<double> ref_a = g_bf16_only ? std::vector<double>() : reference_gemv(M, K, max_batch,
      [&](std::size_t r, double* w) {
        for (std::uint32_t c = 0; c < K; ++c) w[c] = at.weight(r, c);
      }, xh);
  auto ref = [&](const std::vector<double>& all, int b) {
    return std::vector<double>(all.begin(), all.begin() + std::size_t(b) * M);
  };
  std::printf("  references done at %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());

  const dbuf<std::uint16_t> x = upload(xh);
  const double wbytes_b = double(n) * 2;

  // ---- cuBLAS
  {
    std::vector<dbuf<std::uint16_t>> w;
    const int copies = g_test ? 1 : copies_for(wbytes_b);
    for (int c = 0; c < copies; ++c) w.push_back(upload_weights(wb));
    if (g_cublas)
      for (int b : batches) run_cublas(shape, h, w, xh, M, K, b, ref(ref_b, b));
  }

  // ---- bf16 fused + decode
  if (bf16_ok && bs.scale_bits == 11 && !g_plain_only) {
    const int copies = g_test ? 1 : copies_for(double(bs.stream_bytes()) + double(bt.raw.size()) * 4);
    std::vector<device_tiles> fused_tiles;
    std::vector<std::string> fused_tags{""};
    fused_tiles.push_back(make_device_tiles(bs, bt.layout, bt.raw, bt.raw_words_per_item, nullptr, 0, copies));
    for (const bf16_variant& v : bf16_variants) {
      fused_tiles.push_back(make_device_tiles(v.s, v.t.layout, v.t.raw, v.t.raw_words_per_item, nullptr, 0, copies));
      fused_tags.push_back(v.tag);
    }
    const device_tiles& dt32 = fused_tiles[0];
    {
      const std::vector<std::uint32_t>& tab = bf16_table;
      std::vector<dbuf<std::uint32_t>> tables;  // per entry of fused_tiles
      tables.push_back(upload(tab));
      for (const bf16_variant& v : bf16_variants) tables.push_back(upload(v.table));
      const dbuf<std::uint32_t>& table = tables[0];
      const double tb = double(tab.size()) * 4;
      using ca = config<11, 1, ring8, 1, 8, 4>;   // one stream per warp, 8-warp blocks, <= 64 registers
      using cb = config<11, 1, ring8, 1, 16, 2>;  // one stream per warp, 16-warp blocks
      using cc = config<11, 1, ring8, 2, 8, 2>;   // two streams per warp
      using cr = config<11, 2, ring8, 1, 16, 2>;  // cb with two table replicas
      using cd = config<11, 1, ring8, 2, 8, 3>;   // two streams per warp, <= 85 registers
      using ce = config<11, 1, ring8, 1, 12, 3>;  // one stream per warp, 36 warps per SM at <= 56 registers
      using cf = config<11, 1, ring16, 1, 12, 2>;  // 16-round blocks, 24 warps per SM (shared memory)
      using cx = config<11, 1, ring4x2, 1, 16, 2, 2>;  // two states per lane: 32 warps, 64 chains, <= 64 registers
      using cz = config<11, 1, ring8x2, 1, 12, 2, 2>;  // two states per lane, 8-round blocks: 24 warps (shared memory)
      // Session 7: the per-block work (ring refill and wait, raw units, loop) paid every 16 rounds instead of 8 at
      // 32 warps per SM: two K-parts halve the staged activations so that two 16-warp blocks with 4 KB rings fit.
      using cp = config<11, 1, ring8, 1, 16, 2, 1, 2>;    // cb in two K-parts (the parts' own effect)
      using cq = config<11, 1, ring16, 1, 16, 2, 1, 1>;   // 16-round blocks, 16 warps x 2 (parts by fit: 2 at K = 8192)
      using cs = config<11, 1, ring16a, 1, 16, 2, 1, 1>;  // 16-round blocks in the 1024-word ring: one K-part
      using ct = config<11, 2, ring16a, 1, 16, 2, 1, 1>;  // cs with two table replicas (fewer bank conflicts)
      using bd = ecq::bf16_pair_dequant;
      for (std::size_t v = 0; v < fused_tiles.size(); ++v) {
        const device_tiles& dt = fused_tiles[v];
        const dbuf<std::uint32_t>& tv = tables[v];
        const std::string name = "fused bf16" + fused_tags[v];
        for (int b : batches) {
          if (b == 1 && g_zero_copy) run_fused<cb, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
          if (g_bf16_only) {
            if (b == 1) run_fused<cb, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            if (b == 1) run_fused<cq, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            if (b == 1) run_fused<cs, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            if (b == 1) run_fused<ct, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            if (b == 2) run_fused<cs, bd, 2>(shape, name, dt, tv, x, M, K, ref(ref_b, 2), tb);
            if (b == 4) run_fused<cs, bd, 4>(shape, name, dt, tv, x, M, K, ref(ref_b, 4), tb);
            if (b == 8) run_fused<cs, bd, 8>(shape, name, dt, tv, x, M, K, ref(ref_b, 8), tb);
          }
          if (b == 1 && !g_zero_copy && !g_bf16_only) {
            run_fused<ca, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cb, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cc, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cr, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cd, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<ce, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cf, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cx, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cz, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cq, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
            run_fused<cs, bd, 1>(shape, name, dt, tv, x, M, K, ref(ref_b, 1), tb);
          }
          if (b == 2) run_fused<cb, bd, 2>(shape, name, dt, tv, x, M, K, ref(ref_b, 2), tb);
          if (b == 4) run_fused<cb, bd, 4>(shape, name, dt, tv, x, M, K, ref(ref_b, 4), tb);
          if (b == 8) run_fused<cb, bd, 8>(shape, name, dt, tv, x, M, K, ref(ref_b, 8), tb);
        }
      }
      // Session 7 prototype: the byte-boundary split (high bytes coded in pairs, low bytes raw), this benchmark's
      // encoder, the same weights and reference; with the exponent-pair configurations above side by side.
      if (g_bf16_only) {
        bf16_pair_tensor hs;
        encoded_streams hss;
        std::vector<std::uint32_t> htab(2048);
        using hd = bf16_byte_split_dequant;
        const bool hs_ok =
            // ScaleBits 11 as the exponent pairs (the high bytes' pairs would also fit 12): the same decoder.
            make_bf16_pairs(wb, Lb, &hs, true) && encode_items(hs.layout, hs.symbols, 4096, &hss, 11) &&
            hss.scale_bits == 11 &&
            ecq::build_narrow_decode_table(hss.freqs.data(), 4096, 11, [&](std::uint32_t s) {
              const auto& h = hs.exponents;
              return hd::payload(h[(s & 63) % h.size()], h[(s >> 6) % h.size()]);
            }, htab.data()) == ecq::status::ok;
        std::printf("  byte split: %s, S=%d, %.3f bits/weight coded (exponent pairs: %.3f), %zu high bytes\n",
                    hs_ok ? "ok" : "unsupported", hss.scale_bits,
                    (double(hss.stream_bytes()) * 8 + double(n) * 8) / double(n),
                    (double(bs.stream_bytes()) * 8 + double(n) * 8) / double(n), hs.exponents.size());
        if (!hs_ok) {
          ++g_failures;
        } else {
          const device_tiles dth = make_device_tiles(hss, hs.layout, hs.raw, hs.raw_words_per_item, nullptr, 0, copies);
          const dbuf<std::uint32_t> th = upload(htab);
          const std::string hn = "fused bf16 bytesplit";
          for (int b : batches) {
            if (b == 1) run_fused<cb, hd, 1>(shape, hn, dth, th, x, M, K, ref(ref_b, 1), tb);
            if (b == 1) run_fused<cq, hd, 1>(shape, hn, dth, th, x, M, K, ref(ref_b, 1), tb);
            if (b == 1) run_fused<cs, hd, 1>(shape, hn, dth, th, x, M, K, ref(ref_b, 1), tb);
            if (b == 2) run_fused<cs, hd, 2>(shape, hn, dth, th, x, M, K, ref(ref_b, 2), tb);
            if (b == 4) run_fused<cs, hd, 4>(shape, hn, dth, th, x, M, K, ref(ref_b, 4), tb);
            if (b == 8) run_fused<cs, hd, 8>(shape, hn, dth, th, x, M, K, ref(ref_b, 8), tb);
          }
        }
      }
      const device_tiles& dt = dt32;
      // decode-to-memory, bit-exact check, for two decoder configurations
      auto decode_bf16 = [&](auto cfg, auto row_bytes) {
        constexpr int RB = decltype(row_bytes)::value;
        using C = decltype(cfg);
        using D = typename C::decoder;
        auto kern = decode_bf16_kernel<C::warps, C::min_blocks, D, RB>;
        using S = bf16_store_sink<D::rounds_per_block, D::ways, RB>;
        if (bt.layout.rounds() % (S::blocks_per_flush * D::rounds_per_block) != 0) {  // whole 128-byte rows
          std::printf("  decode: items of %u rounds are not whole 128-byte rows\n", bt.layout.rounds());
          ++g_failures;
          return;
        }
        const std::size_t smem = decode_shared_bytes<C::warps, D, S>();
        dbuf<std::uint16_t> out(n);
        auto launch = [&](int c, cudaStream_t st, int grid) {
          kern<<<grid, C::warps * 32, smem, st>>>(dt.view(c, 1), table.p, out.p, K);
        };
        blocks_per_sm(kern, C::warps * 32, smem);
        CK(cudaMemset(out.p, 0xff, out.bytes()));
        launch(0, 0, g_sms);
        CK(cudaDeviceSynchronize());
        CK(cudaGetLastError());
        const auto back = download(out.p, n);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n; ++i) bad += back[i] != wb[i];
        time_decode<C>(shape, "decode bf16 (bit-exact)", kern, smem, launch, dt.bytes + tb + double(n) * 2, double(n),
                       copies, bad == 0, double(bad), " s" + std::to_string(RB));
      };
      if (!g_zero_copy && !g_bf16_only) {
        decode_bf16(cb{}, std::integral_constant<int, 128>{});  // 1 block of 16 warps per SM (shared memory)
        decode_bf16(cb{}, std::integral_constant<int, 64>{});   // 2 blocks
      }
    }
  }

  // ---- affine-4: fused, plain, decode; per chunk size (the main shape also runs 512-column chunks)
  auto affine_pass = [&](const affine4_tensor& at, const encoded_streams& as, bool with_plain, const std::string& tag) {
  if (a4_ok && as.scale_bits == 12) {
    const int copies = g_test ? 1 : copies_for(double(as.stream_bytes()) + double(at.raw.size() + at.side.size()) * 4);
    device_tiles dt =
        make_device_tiles(as, at.layout, at.raw, at.raw_words_per_item, &at.side, at.side_words_per_item, copies);
    std::vector<std::uint32_t> tab(4096), tabn(4096);
    const bool tables_ok =
        ecq::build_narrow_decode_table(as.freqs.data(), 256, 12,
                                       [](std::uint32_t s) { return ecq::affine4_quad_dequant<128>::payload(s); },
                                       tab.data()) == ecq::status::ok &&
        ecq::build_narrow_decode_table(as.freqs.data(), 256, 12,
                                       [](std::uint32_t s) { return nibble_store_sink<8, 1>::nibble_payload(s); },
                                       tabn.data()) == ecq::status::ok;
    if (!tables_ok) {
      std::printf("  affine4 table build failed\n");
      ++g_failures;
    } else {
      const dbuf<std::uint32_t> table = upload(tab), tablen = upload(tabn);
      const double tb = 4096.0 * 4;
      using ca = config<12, 1, ring8, 1, 8, 4>;
      using cb = config<12, 1, ring8, 1, 16, 2>;
      using cc = config<12, 1, ring8, 2, 8, 2>;
      using cr = config<12, 2, ring8, 1, 16, 2>;
      using cd = config<12, 1, ring8, 2, 8, 3>;
      using cf = config<12, 1, ring16, 1, 12, 2>;  // 16-round blocks, 24 warps per SM (shared memory)
      using cx = config<12, 1, ring4x2, 1, 16, 2, 2>;  // two states per lane (64-row tiles)
      using cz = config<12, 1, ring8x2, 1, 12, 2, 2>;
      using ad = ecq::affine4_quad_dequant<128>;
      for (int b : batches) {
        if (g_plain_only) break;
        if (b == 1 && g_zero_copy) run_fused<cb, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
        if (b == 1 && !g_zero_copy) {
          run_fused<ca, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
          run_fused<cb, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
          run_fused<cc, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
          run_fused<cr, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
          run_fused<cd, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
          run_fused<cf, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
          run_fused<cx, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
          run_fused<cz, ad, 1>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 1), tb);
        }
        if (at.layout.tile_rows != 32) continue;  // the batched runs, plain and decode kernels use 32-row tiles
        if (b == 2) run_fused<cb, ad, 2>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 2), tb);
        if (b == 4) run_fused<cb, ad, 4>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 4), tb);
        if (b == 8) run_fused<cb, ad, 8>(shape, "fused w4 g128" + tag, dt, table, x, M, K, ref(ref_a, 8), tb);
      }
      // plain baseline on the same codes and side data
      if (with_plain) {
        const int pc = g_test ? 1 : copies_for(double(at.plain.size() + at.side.size()) * 4);
        std::vector<dbuf<std::uint32_t>> plain, side;
        for (int c = 0; c < pc; ++c) {
          plain.push_back(upload(at.plain));
          side.push_back(upload(at.side));
        }
        const double pbytes = double(at.plain.size() + at.side.size()) * 4;
        const std::uint32_t pu4 = at.plain_words_per_item / 4;
        for (int b : batches) {
          if (g_zero_copy) break;
          if (b == 1) run_plain<1>(shape, dt, plain, side, pu4, x, M, K, ref(ref_a, 1), pbytes);
          if (b == 2) run_plain<2>(shape, dt, plain, side, pu4, x, M, K, ref(ref_a, 2), pbytes);
          if (b == 4) run_plain<4>(shape, dt, plain, side, pu4, x, M, K, ref(ref_a, 4), pbytes);
          if (b == 8) run_plain<8>(shape, dt, plain, side, pu4, x, M, K, ref(ref_a, 8), pbytes);
        }
        // the row-major layout: codes two per byte, side words [row][group]
        plain.clear();
        side.clear();
        std::vector<std::uint8_t> packed(n / 2);
        for (std::size_t i = 0; i < n / 2; ++i) packed[i] = std::uint8_t(at.codes[2 * i] | (at.codes[2 * i + 1] << 4));
        std::vector<std::uint32_t> side_rm(at.scale.size());
        for (std::size_t g = 0; g < side_rm.size(); ++g)
          side_rm[g] = std::uint32_t(at.scale[g]) | (std::uint32_t(at.bias[g]) << 16);
        const double rbytes = double(packed.size()) + double(side_rm.size()) * 4;
        const int rc = g_test ? 1 : copies_for(rbytes);
        std::vector<dbuf<std::uint8_t>> wrm;
        std::vector<dbuf<std::uint32_t>> srm;
        for (int c = 0; c < rc; ++c) {
          wrm.push_back(upload_weights(packed));
          srm.push_back(upload_weights(side_rm));
        }
        // the tensor-core layout (plain_w4_mma_layout): same bytes, offline-permuted
        std::vector<dbuf<std::uint32_t>> wmma, smma;
        if (M % 16 == 0 && K % 128 == 0) {
          std::vector<std::uint32_t> mc, ms;
          plain_w4_mma_layout(at.codes.data(), side_rm.data(), M, K, &mc, &ms);
          for (int c = 0; c < rc; ++c) {
            wmma.push_back(upload_weights(mc));
            smma.push_back(upload_weights(ms));
          }
          // the read kernel on these codes (same copies, same rotation): what streaming this many bytes takes
          if (!g_test && !g_profile) {
            const std::size_t n16 = mc.size() / 4;
            const int grid = g_sms * 8;
            dbuf<std::uint32_t> sink(std::size_t(grid) * 256);
            result_row r;
            r.shape = shape;
            r.kernel = "read kernel (w4 codes)";
            r.batch = 1;
            r.config = g_zero_copy ? "8x256t grid-stride, host" : "8x256t grid-stride";
            r.ok = true;
            r.bytes = double(mc.size()) * 4;
            r.weights = double(M) * K;
            r.us = time_graph([&](int c, cudaStream_t st) {
              read_kernel<<<grid, 256, 0, st>>>(reinterpret_cast<const uint4*>(wmma[c].p), n16, sink.p);
            }, rc, 30.0);
            record(r);
          }
        }
        for (int b : batches) {
          if (!wmma.empty()) {
            if (b == 1 && g_zero_copy)  // cp.async slots (plain loads over PCIe), block-owned rows
              run_plain_mma<16, 1, 8, 3, 1, false, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
            if (b == 1 && !g_zero_copy) {
              // 16 x 512 units, 16 warps, 3 slots (memset + global atomics), then the block-owned rows (no
              // memset) with cp.async or bulk copies (TMA) and other shapes of the same (docs/performance.md)
              run_plain_mma<16, 1, 8, 3, 1, false>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              run_plain_mma<16, 1, 8, 3, 1, false, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              run_plain_mma<16, 1, 8, 3, 1, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              run_plain_mma<16, 2, 4, 3, 1, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              run_plain_mma<12, 1, 8, 4, 1, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              run_plain_mma<24, 1, 4, 3, 1, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              run_plain_mma<32, 1, 4, 3, 1, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              run_plain_mma<16, 1, 8, 3, 1, true, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              run_plain_mma<12, 1, 8, 3, 1, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
              // programmatic dependent launches (session 7): the next launch's first weights stream during
              // this one's tail; each next to the same kernel launched plainly, twice
              for (int rep = 0; rep < 2; ++rep) {
                run_plain_mma<16, 1, 8, 3, 1, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1), rbytes);
                run_plain_mma<16, 1, 8, 3, 1, false, true, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1),
                                                                       rbytes);
                run_plain_mma<16, 1, 8, 3, 1, false, true, false, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1),
                                                                        rbytes);
                run_plain_mma<16, 2, 4, 3, 1, false, true, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1),
                                                                       rbytes);
                run_plain_mma<24, 1, 4, 3, 1, false, true, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 1),
                                                                       rbytes);
              }
            }
            if (b == 2) run_plain_mma<8, 1, 8, 4, 2, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 2), rbytes);
            if (b == 4) run_plain_mma<8, 1, 8, 4, 4, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 4), rbytes);
            if (b == 8) run_plain_mma<8, 1, 8, 2, 8, false, true, true>(shape, wmma, smma, x, M, K, ref(ref_a, 8), rbytes);
          }
          if (b != 1) continue;
          if (g_zero_copy) {
            run_plain_rowmajor<16, 2>(shape, wrm, srm, x, M, K, ref(ref_a, 1), rbytes);
            continue;
          }
          run_plain_rowmajor<8, 1>(shape, wrm, srm, x, M, K, ref(ref_a, 1), rbytes);
          run_plain_rowmajor<16, 1>(shape, wrm, srm, x, M, K, ref(ref_a, 1), rbytes);
          run_plain_rowmajor<8, 2>(shape, wrm, srm, x, M, K, ref(ref_a, 1), rbytes);
          run_plain_rowmajor<16, 2>(shape, wrm, srm, x, M, K, ref(ref_a, 1), rbytes);
        }
      }
      // decode-to-memory of the codes, byte-exact check against the plain nibbles, two configurations
      auto decode_codes = [&](auto cfg, auto row_bytes) {
        constexpr int RB = decltype(row_bytes)::value;
        using C = decltype(cfg);
        using D = typename C::decoder;
        auto kern = decode_nibbles_kernel<C::warps, C::min_blocks, D, RB>;
        using S = nibble_store_sink<D::rounds_per_block, D::ways, RB>;
        if (at.layout.rounds() % (S::blocks_per_flush * D::rounds_per_block) != 0) {  // whole 128-byte rows
          std::printf("  decode: items of %u rounds are not whole 128-byte rows\n", at.layout.rounds());
          ++g_failures;
          return;
        }
        const std::size_t smem = decode_shared_bytes<C::warps, D, S>();
        dbuf<std::uint8_t> out(n / 2);
        auto launch = [&](int c, cudaStream_t st, int grid) {
          kern<<<grid, C::warps * 32, smem, st>>>(dt.view(c, 1), tablen.p, out.p, K);
        };
        blocks_per_sm(kern, C::warps * 32, smem);
        CK(cudaMemset(out.p, 0xff, out.bytes()));
        launch(0, 0, g_sms);
        CK(cudaDeviceSynchronize());
        CK(cudaGetLastError());
        const auto back = download(out.p, n / 2);
        std::size_t bad = 0;
        for (std::size_t i = 0; i < n / 2; ++i)
          bad += back[i] != std::uint8_t(at.codes[2 * i] | (at.codes[2 * i + 1] << 4));
        time_decode<C>(shape, "decode w4 codes (exact)" + tag, kern, smem, launch,
                       double(as.stream_bytes()) + double(at.raw.size()) * 4 + tb + double(n) / 2, double(n), copies,
                       bad == 0, double(bad), " s" + std::to_string(RB));
      };
      if (at.layout.tile_rows == 32 && !g_plain_only && !g_zero_copy) {  // the decode sinks store 32-row tiles
        decode_codes(cb{}, std::integral_constant<int, 128>{});  // 1 block of 16 warps per SM (shared memory)
        decode_codes(cb{}, std::integral_constant<int, 64>{});   // 2 blocks
      }
    }
  }
  };
  if (!g_bf16_only) affine_pass(at, as, true, "");
  if (M % 64 == 0 && !g_plain_only && !g_zero_copy && !g_bf16_only) {  // the same codes in 64-row tiles, for the decoders with two states per lane
    affine4_tensor at64 = at;
    at64.layout.tile_rows = 64;
    at64.layout.chunk_cols = 128;  // as many items as 32 x 256 tiles: the same tail when warps finish
    make_affine4_layout(&at64);
    encoded_streams as64;
    if (encode_items(at64.layout, at64.symbols, 256, &as64)) affine_pass(at64, as64, false, " c128");
  }
  if (K >= 8192 && !g_test && !g_plain_only && !g_zero_copy && !g_bf16_only) {
    affine4_tensor at512;
    encoded_streams as512;
    at512 = at;
    at512.layout.chunk_cols = 512;
    make_affine4_layout(&at512);
    if (encode_items(at512.layout, at512.symbols, 256, &as512)) affine_pass(at512, as512, false, " c512");
  }
  std::printf("  shape done at %.1f s\n", std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
}

void write_json(const bandwidths& bw, double clock_ghz, const cudaDeviceProp& p) {
  if (g_json.empty()) return;
  FILE* f = std::fopen(g_json.c_str(), "w");
  if (!f) return;
  std::fprintf(f, "{\n  \"device\": \"%s\",\n  \"sms\": %d,\n  \"l2_bytes\": %d,\n  \"copy_kernel_GBps\": %.1f,\n"
               "  \"read_kernel_GBps\": %.1f,\n  \"d2d_memcpy_GBps\": %.1f,\n  \"sm_clock_GHz\": %.3f,\n  \"rows\": [\n",
               p.name, p.multiProcessorCount, p.l2CacheSize, bw.copy_kernel_gbs, bw.read_kernel_gbs, bw.memcpy_gbs,
               clock_ghz);
  for (std::size_t i = 0; i < g_rows.size(); ++i) {
    const auto& r = g_rows[i];
    std::fprintf(f, "    {\"shape\": \"%s\", \"kernel\": \"%s\", \"batch\": %d, \"config\": \"%s\", \"us\": %.3f, "
                 "\"bytes\": %.0f, \"weights\": %.0f, \"rel_err\": %.3e, \"ok\": %s}%s\n",
                 r.shape.c_str(), r.kernel.c_str(), r.batch, r.config.c_str(), r.us, r.bytes, r.weights, r.err,
                 r.ok ? "true" : "false", i + 1 < g_rows.size() ? "," : "");
  }
  std::fprintf(f, "  ]\n}\n");
  std::fclose(f);
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--test")) g_test = true;
    if (!std::strcmp(argv[i], "--quick")) quick = true;
    if (!std::strcmp(argv[i], "--profile")) g_profile = quick = true;
    if (!std::strcmp(argv[i], "--no-cublas")) g_cublas = false;
    if (!std::strcmp(argv[i], "--timeline")) g_timeline = true;
    if (!std::strcmp(argv[i], "--plain")) g_plain_only = true;
    if (!std::strcmp(argv[i], "--bf16")) g_bf16_only = true;
    if (!std::strcmp(argv[i], "--zero-copy")) g_zero_copy = true;
    if (!std::strcmp(argv[i], "--json") && i + 1 < argc) g_json = argv[++i];
  }
  cudaDeviceProp p;
  CK(cudaGetDeviceProperties(&p, 0));
  g_sms = p.multiProcessorCount;
  std::printf("device %s, %d SMs, L2 %d MB, %d CPU threads\n", p.name, g_sms, p.l2CacheSize >> 20,
              int(std::thread::hardware_concurrency()));
  cublasHandle_t h;
  CB(cublasCreate(&h));
  dbuf<std::uint8_t> ws(32u << 20);
  CB(cublasSetWorkspace(h, ws.p, ws.bytes()));

  bandwidths bw;
  double clock_ghz = 0;
  if (!g_test && !g_profile) {
    bw = measure_bandwidths();
    std::printf("bandwidth: copy kernel %.1f GB/s (read+write), read kernel %.1f GB/s, cudaMemcpy D2D %.1f GB/s "
                "(read+write)\n", bw.copy_kernel_gbs, bw.read_kernel_gbs, bw.memcpy_gbs);
  }
  if (g_test) {
    run_shape(64, 1024, {1, 2, 8}, h);
    run_shape(96, 2048, {1, 4}, h);
    if (g_plain_only) run_shape(544, 4096, {1}, h);  // 34 row groups x 8 K-parts: 3-block grids cross row groups
  } else if (g_profile || g_zero_copy) {
    run_shape(28672, 8192, {1}, h);
  } else if (g_bf16_only) {
    run_shape(28672, 8192, {1, 2, 4, 8}, h);
    run_shape(4096, 4096, {1, 2, 4, 8}, h);
    run_shape(14336, 4096, {1, 2, 4, 8}, h);
    run_shape(4096, 14336, {1, 2, 4, 8}, h);
  } else if (quick) {
    run_shape(28672, 8192, {1, 2, 4, 8}, h);
  } else {
    run_shape(28672, 8192, {1, 2, 4, 8}, h);
    run_shape(4096, 4096, {1}, h);
    run_shape(14336, 4096, {1}, h);
    run_shape(4096, 14336, {1}, h);
  }
  if (!g_test && !g_profile) clock_ghz = measure_sm_clock_ghz();
  write_json(bw, clock_ghz, p);

  // %copy: bytes moved per second against the copy kernel's (read + write); %read: against the read kernel's.
  std::printf("\n%-11s %-26s %-3s %-22s %10s %9s %6s %6s %9s %10s %s\n", "shape", "kernel", "b", "config", "us", "GB/s",
              "%copy", "%read", "Tw/s", "rel_err", "");
  for (const auto& r : g_rows) {
    const double gbs = r.us > 0 ? r.bytes / r.us / 1e3 : 0.0;
    std::printf("%-11s %-26s %-3d %-22s %10.2f %9.1f %6.1f %6.1f %9.3f %10.2e %s\n", r.shape.c_str(), r.kernel.c_str(),
                r.batch, r.config.c_str(), r.us, gbs, bw.copy_kernel_gbs > 0 ? 100 * gbs / bw.copy_kernel_gbs : 0.0,
                bw.read_kernel_gbs > 0 ? 100 * gbs / bw.read_kernel_gbs : 0.0, r.us > 0 ? r.weights / r.us / 1e6 : 0.0,
                r.err, r.ok ? "ok" : "FAIL");
  }
  std::printf("copy kernel %.1f GB/s, read kernel %.1f GB/s, cudaMemcpy D2D %.1f GB/s, SM clock %.3f GHz, failures %d\n",
              bw.copy_kernel_gbs, bw.read_kernel_gbs, bw.memcpy_gbs, clock_ghz, g_failures);
  CB(cublasDestroy(h));
  return g_failures == 0 ? 0 : 1;
}
