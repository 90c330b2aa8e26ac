// bench/decode_bench.cpp — decode throughput of ecq's interleaved rANS.
//
// Built-in synthetic data (bench_common.hpp): 2^20 symbols of a quantised
// Gaussian over alphabets of 16 and 256 symbols, coded with rans32x16<12>
// and N = 8 and 32 lanes. Reports bytes/s and items/s of decoded symbols (one
// byte each), checks the decoded symbols once per benchmark, and prints the
// machine in the context block.
//
//   ecq_bench_decode [--benchmark_filter=...] [--benchmark_out=f.json --benchmark_out_format=json]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "ecq/ecq.hpp"

namespace {

constexpr std::size_t symbol_count = std::size_t(1) << 20;

template <std::uint32_t Alphabet, int Lanes>
void decode_scalar(benchmark::State& state) {
  using params = ecq::rans32x16<12>;
  const std::vector<std::uint8_t> symbols = ecq_bench::quantised_gaussian(symbol_count, Alphabet);
  ecq_bench::coded<params, Lanes> c;
  if (!c.build(symbols.data(), symbols.size(), Alphabet)) {
    state.SkipWithError("encoding failed");
    return;
  }
  std::vector<std::uint8_t> out(symbol_count);
  const auto table = c.dec.view();
  for (auto _ : state) {
    ecq::interleaved_decode<params, Lanes>(c.words.data(), symbol_count, table, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  if (std::memcmp(out.data(), symbols.data(), symbol_count) != 0) {
    state.SkipWithError("decoded symbols differ from the input");
    return;
  }
  ecq_bench::set_decode_counters(state, symbol_count, c.bytes(), c.entropy_bits);
}

#define ECQ_DECODE_SCALAR(A, N) \
  BENCHMARK(decode_scalar<A, N>)->Name("decode/scalar/a" #A "/rans32x16_12/N" #N)->Unit(benchmark::kMicrosecond)
ECQ_DECODE_SCALAR(16, 8);
ECQ_DECODE_SCALAR(16, 32);
ECQ_DECODE_SCALAR(256, 8);
ECQ_DECODE_SCALAR(256, 32);

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ecq_bench::add_machine_context();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
