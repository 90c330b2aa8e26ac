// bench/encode_bench.cpp — encode throughput of ecq's encoders: the core's
// interleaved_encode (ecq/interleaved_rans.hpp, the "scalar" path of
// cpu_encoder) and the AVX-512 kernel of ecq/cpu_encode.hpp, which writes the
// same stream; htscodecs on the same data for reference.
//
// Inputs as in decode_bench.cpp: 2^20 symbols of a quantised Gaussian over
// 256 and 16 symbols, and the real 4-bit affine codes when ../shared/data is
// present. The output buffer is allocated once and reused: a fresh buffer
// per call would measure page faults (this VM charges about 0.25 us per 4 KiB
// page), not the coder. Tables are built once, outside the timed loop, as a
// codec that encodes many blocks with one table does. Reports bytes/s and
// items/s of input symbols (one byte each) and checks one encoding by
// decoding it.
//
//   ecq_bench_encode [--benchmark_filter=REGEX] [--benchmark_out=f.json --benchmark_out_format=json]
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "ecq/cpu_encode.hpp"
#include "ecq/ecq.hpp"

#if defined(ECQ_HAVE_HTSCODECS)
#include <htscodecs/rANS_static4x16.h>
#endif

namespace {

constexpr std::size_t symbol_count = std::size_t(1) << 20;

template <int ScaleBits, int Lanes>
void ecq_encode(benchmark::State& state, const std::vector<std::uint8_t>* data, std::uint32_t alphabet,
                ecq::cpu_path path) {
  using params = ecq::rans32x16<ScaleBits>;
  const std::size_t n = data->size();
  ecq_bench::coded<params, Lanes, (ScaleBits < 8 ? ScaleBits : 8)> c;  // tables (and one reference encoding)
  if (!c.build(data->data(), n, alphabet)) return state.SkipWithError("table construction failed");
  ecq::cpu_encoder<params, Lanes> e;
  if (e.build(c.enc, path) != ecq::status::ok) return state.SkipWithError("no kernel for this CPU");
  state.SetLabel(ecq::cpu_path_name(e.path()));
  std::vector<std::uint16_t> out(ecq::interleaved_layout<params, Lanes>::max_encoded_words(n));
  std::size_t written = 0;
  ecq::status st = ecq::status::ok;
  for (auto _ : state) {
    st = e.encode(data->data(), n, out.data(), out.size(), &written);
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  std::vector<std::uint8_t> back(n);
  if (st != ecq::status::ok || written != c.words.size() ||
      !std::equal(c.words.begin(), c.words.end(), out.begin()) ||
      ecq::interleaved_decode_checked<params, Lanes>(out.data(), written, n, c.dec.view(), back.data()) !=
          ecq::status::ok ||
      back != *data)
    return state.SkipWithError("encoding differs from interleaved_encode's or does not decode to the input");
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
  state.counters["coded_bits_per_symbol"] = 16.0 * double(written) / double(n);
}

#if defined(ECQ_HAVE_HTSCODECS)
void htscodecs_encode(benchmark::State& state, const std::vector<std::uint8_t>* data, int order) {
  const unsigned n = unsigned(data->size());
  std::vector<unsigned char> out(rans_compress_bound_4x16(n, order));
  unsigned size = 0;
  bool ok = true;
  for (auto _ : state) {
    size = unsigned(out.size());
    ok = rans_compress_to_4x16(const_cast<unsigned char*>(data->data()), n, out.data(), &size, order) != nullptr;
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  std::vector<unsigned char> back(n);
  unsigned back_size = n;
  if (!ok || rans_uncompress_to_4x16(out.data(), size, back.data(), &back_size) == nullptr || back_size != n ||
      std::memcmp(back.data(), data->data(), n) != 0)
    return state.SkipWithError("htscodecs round trip failed");
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(n));
  state.counters["coded_bits_per_symbol"] = 8.0 * double(size) / double(n);
}
#endif

void add(const std::string& name, std::function<void(benchmark::State&)> fn) {
  benchmark::RegisterBenchmark(name.c_str(), fn)->Unit(benchmark::kMicrosecond);
}

void register_benchmarks() {
  static const std::vector<std::uint8_t> a256 = ecq_bench::quantised_gaussian(symbol_count, 256);
  static const std::vector<std::uint8_t> a16 = ecq_bench::quantised_gaussian(symbol_count, 16);
  struct input {
    std::string name;
    const std::vector<std::uint8_t>* data;
    std::uint32_t alphabet;
  };
  std::vector<input> inputs = {{"a256", &a256, 256}, {"a16", &a16, 16}};
  if (!ecq_bench::real_affine4_codes().codes.empty()) inputs.push_back({"real4", &ecq_bench::real_affine4_codes().codes, 16});
  for (const auto& in : inputs) {
    const auto* data = in.data;
    const std::uint32_t a = in.alphabet;
    const std::string prefix = "encode/" + in.name + "/";
    using ecq::cpu_path;
    add(prefix + "ecq_scalar_S12/N32", [=](benchmark::State& s) { ecq_encode<12, 32>(s, data, a, cpu_path::scalar); });
    add(prefix + "ecq_avx512_S12/N16", [=](benchmark::State& s) { ecq_encode<12, 16>(s, data, a, cpu_path::avx512); });
    add(prefix + "ecq_avx512_S12/N32", [=](benchmark::State& s) { ecq_encode<12, 32>(s, data, a, cpu_path::avx512); });
    add(prefix + "ecq_avx512_S12/N64", [=](benchmark::State& s) { ecq_encode<12, 64>(s, data, a, cpu_path::avx512); });
    add(prefix + "ecq_avx512_S12/N128", [=](benchmark::State& s) { ecq_encode<12, 128>(s, data, a, cpu_path::avx512); });
    if (a == 16) {
      add(prefix + "ecq_scalar_S7/N64", [=](benchmark::State& s) { ecq_encode<7, 64>(s, data, a, cpu_path::scalar); });
      add(prefix + "ecq_avx512_S7/N64", [=](benchmark::State& s) { ecq_encode<7, 64>(s, data, a, cpu_path::avx512); });
      add(prefix + "ecq_avx512_S7/N128", [=](benchmark::State& s) { ecq_encode<7, 128>(s, data, a, cpu_path::avx512); });
    }
#if defined(ECQ_HAVE_HTSCODECS)
    add(prefix + "htscodecs_o0_32x16",
        [=](benchmark::State& s) { htscodecs_encode(s, data, RANS_ORDER_X32 | RANS_ORDER_SIMD_AUTO); });
#endif
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ecq_bench::add_machine_context();
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
