// examples/gemv_cpu.cpp — multi-threaded CPU GEMV straight from entropy-coded weights.
//
//   example_gemv_cpu [FILE.safetensors] [--scheme S]... [--threads N] [--layout storage|kernel]
//                    [--iterations K]
//
// For every tensor of the file (default: ECQ_SHARED_DATA_DIR/stories260K.safetensors,
// or synthetic weights when that folder is missing) and every scheme (default: the
// ones listed below), the tensor is quantised and encoded as `ecq pack` does, then
// y = W x is computed by the one-call fused GEMV (ecq::gemv, ecq/cpu/tensor_ops.hpp):
// the SIMD decoder of this CPU, the scheme applied in registers, tiles spread over an
// ecq::thread_pool of N threads passed as the executor (as an engine passes its own).
// Every row is checked against a float64 dot product of the decoded weights, within
// the bound ecq/cpu/tensor_ops.hpp states (n * 2^-24 * sum |w x|); the example exits 1
// on any mismatch. It also prints the time of the fused GEMV (best of K runs).
#include <ecq/cpu/tensor_ops.hpp>
#include <ecq/io/safetensors.hpp>
#include <ecq/schemes/scheme.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using ecq::status;

const char* const default_schemes[] = {"bf16", "affine4-g64", "affine4-g64-p2", "affine4-g64-p4r1", "codebook-nf4-g64",
                                       "uniform-sqnr21", "uniform-sqnr24-row"};

struct tensor {
  std::string name;
  std::uint64_t rows, cols;
  std::vector<float> w;
};

std::vector<tensor> load(const std::string& path) {
  std::vector<tensor> out;
  std::vector<std::uint8_t> bytes;
  std::string error;
  if (ecq::read_file_bytes(path, &bytes, &error) != status::ok) return out;
  ecq::safetensors_file f;
  if (f.parse(bytes.data(), bytes.size(), &error) != status::ok) {
    std::fprintf(stderr, "%s: %s\n", path.c_str(), error.c_str());
    std::exit(1);
  }
  for (const auto& t : f.tensors()) {
    tensor x{t.name, ecq::shape_rows(t.shape), ecq::shape_cols(t.shape), {}};
    if (t.elements() != 0 && ecq::to_float(t, f.data(t), &x.w) == status::ok) out.push_back(std::move(x));
  }
  return out;
}

std::vector<tensor> synthetic() {
  std::vector<tensor> out;
  std::mt19937 rng(1);
  std::student_t_distribution<float> t(4.0f);
  for (auto [rows, cols] : {std::pair<std::uint64_t, std::uint64_t>{256, 512}, {1000, 96}, {1, 300}}) {
    tensor x{"synthetic_" + std::to_string(rows) + "x" + std::to_string(cols), rows, cols, {}};
    x.w.resize(rows * cols);
    for (auto& v : x.w) v = 0.02f * t(rng);
    out.push_back(std::move(x));
  }
  return out;
}

struct result {
  bool ok = true;
  double seconds = 0;      // best fused GEMV time
  double max_ratio = 0;    // max |y - reference| / bound over rows
};

result run_tensor(const tensor& t, const ecq::scheme_spec& spec, ecq::layout_goal goal,
                  const ecq::parallel_for_fn& executor, int iterations, std::uint64_t* coded_bytes) {
  result r;
  ecq::quantized_tensor q;
  ecq::encoded_tensor e;
  if (ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q) != status::ok ||
      ecq::encode_quantized(q, ecq::choose_coding_options(q, goal), &e) != status::ok) {
    r.ok = false;
    return r;
  }
  *coded_bytes += e.size();
  ecq::cpu_options o;
  o.executor = &executor;
  std::vector<float> w(t.rows * t.cols);  // the reference weights: decode, then dequantise
  if (ecq::decode_to_float(e, w.data(), w.size(), o) != status::ok) {
    r.ok = false;
    return r;
  }
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<float> x(t.cols), y(t.rows);
  for (auto& v : x) v = nd(rng);
  r.seconds = INFINITY;
  for (int k = 0; k < iterations; ++k) {
    const auto t0 = std::chrono::steady_clock::now();
    if (ecq::gemv(e, x.data(), 1, y.data(), o) != status::ok) {
      r.ok = false;
      return r;
    }
    r.seconds = std::min(r.seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  for (std::uint64_t row = 0; row < t.rows; ++row) {
    double exact = 0, magnitude = 0;
    for (std::uint64_t c = 0; c < t.cols; ++c) {
      const double p = double(w[row * t.cols + c]) * double(x[c]);
      exact += p;
      magnitude += std::fabs(p);
    }
    const double bound = double(t.cols) * std::ldexp(1.0, -24) * magnitude;
    const double err = std::fabs(double(y[row]) - exact);
    if (err > bound) r.ok = false;
    if (bound > 0) r.max_ratio = std::max(r.max_ratio, err / bound);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string path;
  std::vector<std::string> schemes;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::string layout = "storage";
  int iterations = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--scheme" && i + 1 < argc) schemes.push_back(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = unsigned(std::max(1, std::atoi(argv[++i])));
    else if (a == "--layout" && i + 1 < argc) layout = argv[++i];
    else if (a == "--iterations" && i + 1 < argc) iterations = std::max(1, std::atoi(argv[++i]));
    else if (path.empty() && a.rfind("--", 0) != 0) path = a;
    else {
      std::fprintf(stderr, "usage: %s [FILE.safetensors] [--scheme S]... [--threads N] [--layout storage|kernel] "
                           "[--iterations K]\n", argv[0]);
      return 2;
    }
  }
  if (layout != "kernel" && layout != "storage") {
    std::fprintf(stderr, "--layout must be kernel or storage\n");
    return 2;
  }
  const ecq::layout_goal goal = layout == "kernel" ? ecq::layout_goal::kernel : ecq::layout_goal::storage;
  std::vector<tensor> tensors;
  if (path.empty()) {
    path = std::string(ECQ_SHARED_DATA_DIR) + "/stories260K.safetensors";
    tensors = load(path);
    if (tensors.empty()) {
      path = "synthetic weights";
      tensors = synthetic();
    }
  } else {
    tensors = load(path);
    if (tensors.empty()) {
      std::fprintf(stderr, "%s: no tensors read\n", path.c_str());
      return 1;
    }
  }
  if (schemes.empty()) schemes.assign(std::begin(default_schemes), std::end(default_schemes));
  ecq::thread_pool pool(threads);
  const ecq::parallel_for_fn executor = pool.executor();
  std::uint64_t weights = 0;
  for (const auto& t : tensors) weights += t.rows * t.cols;
  std::printf("%s: %zu tensors, %llu weights; %u threads, layout %s\n", path.c_str(), tensors.size(),
              static_cast<unsigned long long>(weights), threads, layout.c_str());
  std::printf("  %-22s %10s %12s %14s %10s  %s\n", "scheme", "bits/w", "GEMV (ms)", "weights/s", "max err/bound",
              "check");
  bool all_ok = true;
  for (const auto& name : schemes) {
    ecq::scheme_spec spec;
    std::string error;
    if (ecq::parse_scheme(name, &spec, &error) != status::ok) {
      std::fprintf(stderr, "%s\n", error.c_str());
      return 2;
    }
    bool ok = true;
    double seconds = 0, ratio = 0;
    std::uint64_t coded = 0;
    for (const auto& t : tensors) {
      const result r = run_tensor(t, spec, goal, executor, iterations, &coded);
      ok = ok && r.ok;
      seconds += r.seconds;
      ratio = std::max(ratio, r.max_ratio);
    }
    all_ok = all_ok && ok;
    std::printf("  %-22s %10.4f %12.3f %14.3e %10.3f  %s\n", spec.name().c_str(), 8.0 * double(coded) / double(weights),
                seconds * 1e3, double(weights) / seconds, ratio, ok ? "matches float64 reference" : "MISMATCH");
  }
  return all_ok ? 0 : 1;
}
