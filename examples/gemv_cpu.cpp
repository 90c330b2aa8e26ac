// examples/gemv_cpu.cpp — multi-threaded CPU GEMV straight from entropy-coded weights.
//
//   example_gemv_cpu [FILE.safetensors] [--scheme S]... [--threads N] [--layout kernel|storage]
//                    [--iterations K]
//
// For every tensor of the file (default: ECQ_SHARED_DATA_DIR/stories260K.safetensors,
// or synthetic weights when that folder is missing) and every scheme (default: the
// ones listed below), the tensor is quantised and encoded, then y = W x is computed
// by the fused functor (ecq/fused_dot.hpp): the blocks are decoded, dequantised
// and multiplied with x in registers, rows split across std::threads by tiles
// (tiles are independent, so the threads share nothing but x and y). Every row
// is checked against a float64 dot product of the decoded weights, within the
// bound ecq/fused_dot.hpp states (n * 2^-24 * sum |w x|); the example exits 1 on
// any mismatch. It also prints the time of the fused GEMV (best of K runs).
//
// Instantiations: one coder configuration (rans32x16<12>, lanes 1, 8 or 32) per
// dequantiser type this example compiles in (the schemes listed in
// `compiled_in`); other schemes are reported as not compiled in.
#include <ecq/fused_dot.hpp>
#include <ecq/io/safetensors.hpp>
#include <ecq/schemes/scheme.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using ecq::status;
using P12 = ecq::rans32x16<12>;

const char* const default_schemes[] = {"bf16", "affine4-g64", "affine4-g64-p2", "affine4-g64-p4r1", "codebook-nf4-g64",
                                       "uniform-sqnr21", "uniform-sqnr24-row"};

template <class D>
constexpr bool compiled_in =
    std::is_same<D, ecq::float16_dequantizer<ecq::float16_format::bfloat16>>::value ||
    std::is_same<D, ecq::float16_dequantizer<ecq::float16_format::binary16>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<4, 1, 0>>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<4, 2, 0>>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<4, 4, 1>>>::value ||
    std::is_same<D, ecq::affine_dequantizer<ecq::symbol_packing<8, 1, 0>>>::value ||
    std::is_same<D, ecq::codebook_dequantizer<ecq::symbol_packing<4, 1, 0>>>::value ||
    std::is_same<D, ecq::uniform_dequantizer>::value;

/// Runs f(thread_index) on `n` persistent threads and waits for all of them.
class thread_pool {
 public:
  explicit thread_pool(unsigned n) : size_(n) {
    for (unsigned i = 1; i < n; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~thread_pool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }
  unsigned size() const { return size_; }
  void run(const std::function<void(unsigned)>& f) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &f;
      pending_ = size_ - 1;
      ++generation_;
    }
    wake_.notify_all();
    f(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return pending_ == 0; });
  }

 private:
  void loop(unsigned index) {
    std::uint64_t seen = 0;
    for (;;) {
      const std::function<void(unsigned)>* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        job = job_;
      }
      (*job)(index);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--pending_ == 0) done_.notify_one();
    }
  }
  unsigned size_;
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  const std::function<void(unsigned)>* job_ = nullptr;
  unsigned pending_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

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
  bool compiled = true;
  double seconds = 0;      // best fused GEMV time
  double max_ratio = 0;    // max |y - reference| / bound over rows
};

result run_tensor(const tensor& t, const ecq::scheme_spec& spec, ecq::layout_goal goal, thread_pool& pool,
                  int iterations, std::uint64_t* coded_bytes) {
  result r;
  ecq::quantized_tensor q;
  if (ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q) != status::ok) {
    r.ok = false;
    return r;
  }
  ecq::coding_options o = ecq::choose_coding_options(q, goal);
  o.scale_bits = 12;                      // the one ScaleBits compiled in
  if (o.lanes == 16) o.lanes = 8;         // tile_rows stays a multiple
  ecq::encoded_tensor e;
  if (ecq::encode_quantized(q, o, &e) != status::ok) {
    r.ok = false;
    return r;
  }
  *coded_bytes += e.size();
  std::vector<float> w;  // the reference weights: decode, then dequantise
  if (ecq::decode_and_dequantize(e, &w) != status::ok) {
    r.ok = false;
    return r;
  }
  std::mt19937 rng(7);
  std::normal_distribution<float> nd;
  std::vector<float> x(t.cols), y(t.rows);
  for (auto& v : x) v = nd(rng);

  const ecq::encoded_tensor_view v = e.view();
  const std::uint64_t tiles = v.geometry.num_tiles();
  const status st = ecq::visit_dequantizer(e, [&](const auto& dq) {
    using D = std::decay_t<decltype(dq)>;
    if constexpr (!compiled_in<D>) {
      r.compiled = false;
      return status::ok;
    } else {
      status first_error = status::ok;
      std::mutex m;
      // Rows split across threads by tiles: thread i takes tiles [i*T/n, (i+1)*T/n).
      const std::function<void(unsigned)> job = [&](unsigned i) {
        const std::uint64_t a = tiles * i / pool.size(), b = tiles * (i + 1) / pool.size();
        status s = status::ok;
        switch (v.geometry.lanes) {
          case 1: s = ecq::fused_gemv_with<P12, 1>(v, dq, x.data(), y.data(), a, b); break;
          case 8: s = ecq::fused_gemv_with<P12, 8>(v, dq, x.data(), y.data(), a, b); break;
          case 32: s = ecq::fused_gemv_with<P12, 32>(v, dq, x.data(), y.data(), a, b); break;
          default: s = status::unsupported_parameters;
        }
        if (s != status::ok) {
          std::lock_guard<std::mutex> lock(m);
          first_error = s;
        }
      };
      r.seconds = INFINITY;
      for (int k = 0; k < iterations; ++k) {
        const auto t0 = std::chrono::steady_clock::now();
        pool.run(job);
        r.seconds = std::min(r.seconds, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
      return first_error;
    }
  });
  if (st != status::ok) {
    r.ok = false;
    return r;
  }
  if (!r.compiled) return r;
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
  std::string layout = "kernel";
  int iterations = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--scheme" && i + 1 < argc) schemes.push_back(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = unsigned(std::max(1, std::atoi(argv[++i])));
    else if (a == "--layout" && i + 1 < argc) layout = argv[++i];
    else if (a == "--iterations" && i + 1 < argc) iterations = std::max(1, std::atoi(argv[++i]));
    else if (path.empty() && a.rfind("--", 0) != 0) path = a;
    else {
      std::fprintf(stderr, "usage: %s [FILE.safetensors] [--scheme S]... [--threads N] [--layout kernel|storage] "
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
  thread_pool pool(threads);
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
    bool ok = true, compiled = true;
    double seconds = 0, ratio = 0;
    std::uint64_t coded = 0;
    for (const auto& t : tensors) {
      const result r = run_tensor(t, spec, goal, pool, iterations, &coded);
      ok = ok && r.ok;
      compiled = compiled && r.compiled;
      seconds += r.seconds;
      ratio = std::max(ratio, r.max_ratio);
    }
    all_ok = all_ok && ok;
    if (!compiled) {
      std::printf("  %-22s not compiled into this example (see compiled_in)\n", spec.name().c_str());
      continue;
    }
    std::printf("  %-22s %10.4f %12.3f %14.3e %10.3f  %s\n", spec.name().c_str(), 8.0 * double(coded) / double(weights),
                seconds * 1e3, double(weights) / seconds, ratio, ok ? "matches float64 reference" : "MISMATCH");
  }
  return all_ok ? 0 : 1;
}
