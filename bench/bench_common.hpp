// bench/bench_common.hpp — READ ME FIRST
//
// What every ecq benchmark shares: deterministic synthetic inputs, coding
// them with the library, and the machine description printed in the
// benchmark context (a number means nothing without the machine it came from).
//
// Synthetic data: a quantised Gaussian over an alphabet of A symbols with
// standard deviation A / 5 (clamped to the alphabet). For A = 256 this has an
// entropy of about 7.65 bits, for A = 16 about 3.68 bits. The generator is a
// fixed splitmix64 + Box-Muller, so every run and every compiler produces the
// same symbols (std::normal_distribution is implementation-defined).
//
// Real data: real_affine4_codes() reads every F32 tensor of
// $ECQ_SHARED_DATA_DIR/use-lite.safetensors (a small reader for this bench,
// not a validating parser) and quantises it to 4-bit affine codes with groups
// of 64 consecutive weights (scale = (max - min) / 15, bias = min, as MLX
// does). Without the file it returns an empty set and the benchmarks that
// need it are not registered.
#ifndef ECQ_BENCH_BENCH_COMMON_HPP
#define ECQ_BENCH_BENCH_COMMON_HPP

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "ecq/ecq.hpp"

namespace ecq_bench {

/// splitmix64: a small, fixed, portable generator.
struct splitmix64 {
  std::uint64_t s;
  std::uint64_t operator()() {
    std::uint64_t z = (s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return (double((*this)() >> 11) + 0.5) * (1.0 / 9007199254740992.0); }  // (0, 1)
};

/// n symbols of a Gaussian with mean (A - 1) / 2 and sd A / 5, rounded and clamped to [0, A).
inline std::vector<std::uint8_t> quantised_gaussian(std::size_t n, std::uint32_t alphabet, std::uint64_t seed = 1) {
  splitmix64 rng{seed};
  std::vector<std::uint8_t> out(n);
  const double mean = (double(alphabet) - 1.0) / 2.0, sd = double(alphabet) / 5.0;
  for (std::size_t i = 0; i < n; ++i) {
    const double g = std::sqrt(-2.0 * std::log(rng.uniform())) * std::cos(6.283185307179586 * rng.uniform());
    const double v = std::nearbyint(mean + sd * g);
    out[i] = std::uint8_t(v < 0 ? 0 : v > double(alphabet - 1) ? double(alphabet - 1) : v);
  }
  return out;
}

/// A symbol sequence coded with one configuration, plus everything needed to decode it.
template <class Params, int Lanes, int SymbolBits = 8>
struct coded {
  std::vector<std::uint64_t> counts;
  std::vector<std::uint32_t> freqs;
  ecq::encode_table<Params> enc;
  ecq::decode_table<Params::scale_bits, SymbolBits> dec;
  std::vector<typename Params::word_type> words;
  double entropy_bits = 0;  // empirical, per symbol

  /// @return false (and prints why) when the data cannot be coded.
  bool build(const std::uint8_t* symbols, std::size_t n, std::uint32_t alphabet) {
    counts = ecq::histogram(symbols, n, alphabet);
    freqs.assign(alphabet, 0);
    if (counts.empty() ||
        ecq::normalize_frequencies(counts.data(), alphabet, Params::scale_bits, freqs.data()) != ecq::status::ok ||
        enc.build(freqs.data(), alphabet) != ecq::status::ok || dec.build(freqs.data(), alphabet) != ecq::status::ok)
      return false;
    ecq::status st = ecq::status::ok;
    words = ecq::interleaved_encode<Params, Lanes>(symbols, n, enc, &st);
    entropy_bits = ecq::entropy_bits_per_symbol(counts.data(), alphabet);
    return st == ecq::status::ok;
  }
  std::size_t bytes() const { return words.size() * sizeof(typename Params::word_type); }
};

/// Affine 4-bit codes of real weights with their group side data.
struct affine4_codes {
  std::vector<std::uint8_t> codes;  // one code per byte
  std::vector<float> scales, biases;  // per group of 64 codes
  std::string source;                 // file the weights came from ("" when there are none)
};

/// The folder with real weights: $ECQ_SHARED_DATA_DIR, else the build's ECQ_SHARED_DATA_DIR.
inline std::string shared_data_dir() {
  if (const char* env = std::getenv("ECQ_SHARED_DATA_DIR")) return env;
#if defined(ECQ_SHARED_DATA_DIR)
  return ECQ_SHARED_DATA_DIR;
#else
  return {};
#endif
}

/// Quantises w[0, n) group by group (64 consecutive weights) and appends the
/// codes and side data to `out`.
inline void quantise_affine4(const float* w, std::size_t n, affine4_codes* out) {
  for (std::size_t g = 0; g < n; g += 64) {
    const std::size_t len = std::min<std::size_t>(64, n - g);
    const auto mm = std::minmax_element(w + g, w + g + len);
    const float lo = *mm.first, scale = (*mm.second - lo) / 15.0f;
    out->scales.push_back(scale);
    out->biases.push_back(lo);
    for (std::size_t j = 0; j < len; ++j) {
      const float c = scale > 0 ? std::nearbyint((w[g + j] - lo) / scale) : 0.0f;
      out->codes.push_back(std::uint8_t(std::min(15.0f, std::max(0.0f, c))));
    }
  }
}

/// 4-bit affine codes of every F32 tensor of use-lite.safetensors, in file order.
inline const affine4_codes& real_affine4_codes() {
  static const affine4_codes cached = [] {
    affine4_codes out;
    const std::string path = shared_data_dir() + "/use-lite.safetensors";
    std::ifstream in(path, std::ios::binary);
    std::uint64_t header_len = 0;
    if (!in.read(reinterpret_cast<char*>(&header_len), 8) || header_len > (std::uint64_t(1) << 24)) return out;
    std::string header(header_len, ' ');
    if (!in.read(&header[0], std::streamsize(header_len))) return out;
    const std::vector<char> data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // Each tensor object holds "dtype":"..." and "data_offsets":[begin,end].
    for (std::size_t pos = header.find("\"data_offsets\""); pos != std::string::npos;
         pos = header.find("\"data_offsets\"", pos + 1)) {
      const std::size_t object = header.rfind('{', pos);
      const std::size_t dtype = header.find("\"dtype\"", object);
      if (dtype == std::string::npos || header.compare(header.find('"', dtype + 8), 5, "\"F32\"") != 0) continue;
      unsigned long long begin = 0, end = 0;
      if (std::sscanf(header.c_str() + header.find('[', pos), "[%llu,%llu]", &begin, &end) != 2 || end < begin ||
          end > data.size() || (end - begin) % 4 != 0)
        continue;
      std::vector<float> w((end - begin) / 4);
      std::memcpy(w.data(), data.data() + begin, end - begin);
      quantise_affine4(w.data(), w.size(), &out);
    }
    if (!out.codes.empty()) out.source = path;
    return out;
  }();
  return cached;
}

/// The CPU model from /proc/cpuinfo ("unknown" where there is none).
inline std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(line.find_first_not_of(' ', colon + 1));
    }
  }
  return "unknown";
}

/// The value of one /proc/cpuinfo field ("cpu family", "model", ...) or "".
inline std::string cpuinfo_field(const char* name) {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  const std::string key(name);
  while (std::getline(in, line)) {
    if (line.rfind(key, 0) == 0 && line.find(':') != std::string::npos &&
        line.substr(0, line.find_last_not_of(" \t", line.find(':') - 1) + 1) == key) {
      const auto v = line.find_first_not_of(' ', line.find(':') + 1);
      return v == std::string::npos ? std::string() : line.substr(v);
    }
  }
  return {};
}

/// Adds the machine to the benchmark context (printed above the table and stored in the JSON).
inline void add_machine_context() {
  benchmark::AddCustomContext("cpu_model", cpu_model());
  benchmark::AddCustomContext("cpu_family", cpuinfo_field("cpu family"));
  benchmark::AddCustomContext("cpu_model_number", cpuinfo_field("model"));
#if defined(__VERSION__)
  benchmark::AddCustomContext("compiler", __VERSION__);
#endif
}

/// Sets the counters every decode benchmark reports: bytes/s and items/s of
/// decoded symbols (one byte each), and the coded size.
inline void set_decode_counters(benchmark::State& state, std::size_t n, std::size_t coded_bytes, double entropy) {
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
  state.counters["coded_bits_per_symbol"] = 8.0 * double(coded_bytes) / double(n);
  state.counters["entropy_bits"] = entropy;
}

}  // namespace ecq_bench

#endif  // ECQ_BENCH_BENCH_COMMON_HPP
