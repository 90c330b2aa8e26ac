// bench/decode_bench.cpp — decode throughput: ecq's CPU kernels against the
// core's portable decoder and against htscodecs, on the same bytes, in one
// binary (ratios from one run are side by side).
//
// Groups (benchmark name prefix):
//   decode/a256/...   2^20 symbols, quantised Gaussian over 256 symbols
//                     (H = 7.65 bits), rans32x16<12>.
//   decode/a16/...    the same over 16 symbols (H = 3.68 bits), rans32x16<12>
//                     (gather kernels) and rans32x16<7> (the permute kernel).
//   codes/synthetic4/ and codes/real4/...
//                     4-bit codes to one code per byte: synthetic (the a16
//                     data) and, when ../shared/data is present, the affine
//                     4-bit g64 codes of every tensor of use-lite.safetensors.
//                     ecq codes them one per symbol (rans32x16<7>, permute
//                     kernel) or two per symbol (symbol_packing<4, 2>,
//                     rans32x16<12>); htscodecs in its order-0 modes,
//                     including PACK (nibbles packed before coding).
// Each benchmark reports bytes/s and items/s of decoded output (one byte per
// symbol or code), the coded size in bits per item, checks its output once,
// and names the kernel it ran in its label. Kernels the CPU cannot run are
// reported as skipped. Machine and compiler are in the context block.
//
//   ecq_bench_decode [--benchmark_filter=REGEX] [--benchmark_out=f.json --benchmark_out_format=json]
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "ecq/cpu_decode.hpp"
#include "ecq/ecq.hpp"

#if defined(ECQ_HAVE_HTSCODECS)
#include <htscodecs/rANS_static4x16.h>
#endif

namespace {

using ecq::cpu_path;
constexpr std::size_t symbol_count = std::size_t(1) << 20;

const std::vector<std::uint8_t>& gaussian(std::uint32_t alphabet) {
  static const std::vector<std::uint8_t> a16 = ecq_bench::quantised_gaussian(symbol_count, 16);
  static const std::vector<std::uint8_t> a256 = ecq_bench::quantised_gaussian(symbol_count, 256);
  return alphabet == 16 ? a16 : a256;
}

/// ecq: symbols (one per byte) with the kernel `path` picks.
template <int ScaleBits, int Lanes, int SymbolBits>
void ecq_symbols(benchmark::State& state, const std::vector<std::uint8_t>* data, std::uint32_t alphabet, cpu_path path) {
  using params = ecq::rans32x16<ScaleBits>;
  const std::size_t n = data->size();
  ecq_bench::coded<params, Lanes, SymbolBits> c;
  if (!c.build(data->data(), n, alphabet)) return state.SkipWithError("encoding failed");
  ecq::cpu_decoder<params, Lanes, SymbolBits> d;
  if (d.build(c.dec.view(), path) != ecq::status::ok) return state.SkipWithError("no kernel for this CPU");
  state.SetLabel(ecq::cpu_kernel_name(d.kernel()));
  std::vector<std::uint8_t> out(n);
  ecq::status st = ecq::status::ok;
  for (auto _ : state) {
    st = d.decode(c.words.data(), c.words.size(), n, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  if (st != ecq::status::ok || std::memcmp(out.data(), data->data(), n) != 0)
    return state.SkipWithError("decoded symbols differ from the input");
  ecq_bench::set_decode_counters(state, n, c.bytes(), c.entropy_bits);
}

/// ecq: 4-bit codes coded two per symbol (symbol_packing<4, 2>), decoded to one code per byte.
template <int Lanes>
void ecq_pairs(benchmark::State& state, const std::vector<std::uint8_t>* codes, cpu_path path) {
  using packing = ecq::symbol_packing<4, 2>;
  using params = ecq::rans32x16<12>;
  const std::size_t n = codes->size();
  std::vector<std::uint8_t> symbols(packing::symbol_count(n));
  packing::pack(codes->data(), n, symbols.data(), nullptr);
  ecq_bench::coded<params, Lanes, 8> c;
  if (!c.build(symbols.data(), symbols.size(), 256)) return state.SkipWithError("encoding failed");
  ecq::cpu_decoder<params, Lanes, 8> d;
  if (d.build(c.dec.view(), path) != ecq::status::ok) return state.SkipWithError("no kernel for this CPU");
  state.SetLabel(std::string(ecq::cpu_kernel_name(d.kernel())) + " 2 codes/symbol");
  std::vector<std::uint8_t> out(n);
  ecq::status st = ecq::status::ok;
  for (auto _ : state) {
    st = d.template decode_codes<packing>(c.words.data(), c.words.size(), n, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  if (st != ecq::status::ok || std::memcmp(out.data(), codes->data(), n) != 0)
    return state.SkipWithError("decoded codes differ from the input");
  ecq_bench::set_decode_counters(state, n, c.bytes(), c.entropy_bits / 2);
}

/// The core's portable decoder (ecq/interleaved_rans.hpp), the baseline.
template <int Lanes>
void core_decode(benchmark::State& state, const std::vector<std::uint8_t>* data, std::uint32_t alphabet) {
  using params = ecq::rans32x16<12>;
  const std::size_t n = data->size();
  ecq_bench::coded<params, Lanes> c;
  if (!c.build(data->data(), n, alphabet)) return state.SkipWithError("encoding failed");
  std::vector<std::uint8_t> out(n);
  const auto table = c.dec.view();
  for (auto _ : state) {
    ecq::interleaved_decode<params, Lanes>(c.words.data(), c.words.size(), n, table, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  if (std::memcmp(out.data(), data->data(), n) != 0) return state.SkipWithError("decoded symbols differ from the input");
  ecq_bench::set_decode_counters(state, n, c.bytes(), c.entropy_bits);
}

#if defined(ECQ_HAVE_HTSCODECS)
/// htscodecs rANS_static4x16 with the given order byte (flags included).
void htscodecs_decode(benchmark::State& state, const std::vector<std::uint8_t>* data, int order) {
  const unsigned n = unsigned(data->size());
  std::vector<unsigned char> packed(rans_compress_bound_4x16(n, order));
  unsigned packed_size = unsigned(packed.size());
  if (rans_compress_to_4x16(const_cast<unsigned char*>(data->data()), n, packed.data(), &packed_size, order) == nullptr)
    return state.SkipWithError("htscodecs encoding failed");
  std::vector<unsigned char> out(n);
  bool ok = true;
  for (auto _ : state) {
    unsigned out_size = n;
    ok = rans_uncompress_to_4x16(packed.data(), packed_size, out.data(), &out_size) != nullptr && out_size == n;
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  if (!ok || std::memcmp(out.data(), data->data(), n) != 0) return state.SkipWithError("htscodecs output differs");
  const auto counts = ecq::histogram(data->data(), n, 256);
  ecq_bench::set_decode_counters(state, n, packed_size, ecq::entropy_bits_per_symbol(counts.data(), 256));
}

struct htscodecs_mode {
  const char* name;
  int order;
};
// Order-0 modes: the classic 4-way, the 32-way interleave with SIMD chosen
// at run time (32x16 AVX-512 on CPUs that have it), and PACK (2 codes of 4
// bits per byte before coding) with both.
constexpr htscodecs_mode htscodecs_modes[] = {
    {"htscodecs_o0_4x16", 0},
    {"htscodecs_o0_32x16", RANS_ORDER_X32 | RANS_ORDER_SIMD_AUTO},
    {"htscodecs_o0_pack_4x16", RANS_ORDER_PACK},
    {"htscodecs_o0_pack_32x16", RANS_ORDER_PACK | RANS_ORDER_X32 | RANS_ORDER_SIMD_AUTO},
};
#endif

using bench_fn = std::function<void(benchmark::State&)>;

void add(const std::string& name, bench_fn fn) {
  benchmark::RegisterBenchmark(name.c_str(), fn)->Unit(benchmark::kMicrosecond);
}

constexpr cpu_path simd_paths[] = {cpu_path::avx2, cpu_path::avx512};

template <int Lanes>
void add_gaussian(std::uint32_t alphabet) {
  const auto* data = &gaussian(alphabet);
  const std::string prefix = "decode/a" + std::to_string(alphabet) + "/";
  const std::string lanes = "/N" + std::to_string(Lanes);
  for (cpu_path p : simd_paths)
    add(prefix + "ecq_" + ecq::cpu_path_name(p) + "_S12" + lanes,
        [=](benchmark::State& s) { ecq_symbols<12, Lanes, 8>(s, data, alphabet, p); });
}

void register_benchmarks() {
  for (std::uint32_t alphabet : {256u, 16u}) {
    const auto* data = &gaussian(alphabet);
    const std::string prefix = "decode/a" + std::to_string(alphabet) + "/";
    add(prefix + "core_interleaved_decode_S12/N8", [=](benchmark::State& s) { core_decode<8>(s, data, alphabet); });
    add(prefix + "core_interleaved_decode_S12/N32", [=](benchmark::State& s) { core_decode<32>(s, data, alphabet); });
    add(prefix + "ecq_scalar_S12/N8",
        [=](benchmark::State& s) { ecq_symbols<12, 8, 8>(s, data, alphabet, cpu_path::scalar); });
    add(prefix + "ecq_scalar_S12/N32",
        [=](benchmark::State& s) { ecq_symbols<12, 32, 8>(s, data, alphabet, cpu_path::scalar); });
    add_gaussian<16>(alphabet);
    add_gaussian<32>(alphabet);
    add_gaussian<64>(alphabet);
    add(prefix + "ecq_avx512_S12/N128",
        [=](benchmark::State& s) { ecq_symbols<12, 128, 8>(s, data, alphabet, cpu_path::avx512); });
#if defined(ECQ_HAVE_HTSCODECS)
    for (const auto& m : htscodecs_modes)
      if (alphabet == 16 || (m.order & RANS_ORDER_PACK) == 0)
        add(prefix + m.name, [=](benchmark::State& s) { htscodecs_decode(s, data, m.order); });
#endif
  }

  // 4-bit codes to one code per byte: synthetic, and real weights when present.
  struct code_set {
    const char* name;
    const std::vector<std::uint8_t>* codes;
  };
  std::vector<code_set> sets = {{"synthetic4", &gaussian(16)}};
  if (!ecq_bench::real_affine4_codes().codes.empty()) sets.push_back({"real4", &ecq_bench::real_affine4_codes().codes});
  for (const auto& set : sets) {
    const auto* codes = set.codes;
    const std::string prefix = std::string("codes/") + set.name + "/";
    add(prefix + "ecq_avx512_S7/N64", [=](benchmark::State& s) { ecq_symbols<7, 64, 4>(s, codes, 16, cpu_path::avx512); });
    add(prefix + "ecq_avx512_S7/N128", [=](benchmark::State& s) { ecq_symbols<7, 128, 4>(s, codes, 16, cpu_path::avx512); });
    add(prefix + "ecq_avx512_pairs_S12/N64", [=](benchmark::State& s) { ecq_pairs<64>(s, codes, cpu_path::avx512); });
    add(prefix + "ecq_avx512_pairs_S12/N128", [=](benchmark::State& s) { ecq_pairs<128>(s, codes, cpu_path::avx512); });
    add(prefix + "ecq_avx2_pairs_S12/N64", [=](benchmark::State& s) { ecq_pairs<64>(s, codes, cpu_path::avx2); });
    add(prefix + "ecq_scalar_S7/N32", [=](benchmark::State& s) { ecq_symbols<7, 32, 4>(s, codes, 16, cpu_path::scalar); });
#if defined(ECQ_HAVE_HTSCODECS)
    for (const auto& m : htscodecs_modes)
      add(prefix + m.name, [=](benchmark::State& s) { htscodecs_decode(s, codes, m.order); });
#endif
  }
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ecq_bench::add_machine_context();
  benchmark::AddCustomContext("ecq_cpu_path", ecq::cpu_path_name(ecq::default_cpu_path()));
  const auto& real = ecq_bench::real_affine4_codes();
  benchmark::AddCustomContext("real_weights", real.codes.empty() ? "absent (synthetic data only)" : real.source);
#if defined(ECQ_HAVE_HTSCODECS)
  benchmark::AddCustomContext("htscodecs", "linked");
#else
  benchmark::AddCustomContext("htscodecs", "not found at build time");
#endif
  register_benchmarks();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
