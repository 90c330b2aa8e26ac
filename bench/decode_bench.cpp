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

#include "bench_checkpoint.hpp"
#include "bench_common.hpp"
#include "ecq/cpu/tensor_ops.hpp"
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

// ---------------------------------------------------------------------------
// The product path on a packed checkpoint.

using checkpoint_fn = const ecq_bench::ecq_checkpoint& (*)(const std::string&);

/// Every block of t through cpu_decoder<rans32x16<S>, Lanes, 8> into stream order: the kernel alone.
/// (One lane, which no SIMD kernel takes, runs the core's checked decoder: the kernel cpu_decoder has for it.)
/// to_memory false (`kernel_only`): every block into the same block-sized buffer, which stays in L2 (512 KB for
/// the 268M checkpoint's blocks): the kernel's rate with no output traffic at all. to_memory true
/// (`kernel_to_memory`): each block to its own place in a tensor-sized buffer, one byte per symbol, as a caller
/// that keeps the symbols needs: the kernel's rate with the least output a decode to memory can write.
template <int ScaleBits, int Lanes>
ecq::status kernel_only_tensor(const ecq::encoded_tensor& t, std::vector<std::uint8_t>* scratch, bool to_memory,
                               ecq::cpu_kernel* k) {
  constexpr int symbol_bits = ScaleBits < 8 ? ScaleBits : 8;  // as tensor_decoder's tables
  ecq::decode_table<ScaleBits, symbol_bits> table;
  ecq::status st = table.build(t.frequencies().data(), std::uint32_t(t.frequencies().size()));
  ecq::cpu_decoder<ecq::rans32x16<ScaleBits>, Lanes, symbol_bits> d;
  if (st != ecq::status::ok || (st = d.build(table.view())) != ecq::status::ok) return st;
  if (Lanes > 1) *k = d.kernel();
  const ecq::encoded_tensor_view v = t.view();
  const ecq::tensor_geometry& g = t.geometry();
  std::size_t at = 0;
  for (std::uint64_t tile = 0; tile < g.num_tiles() && st == ecq::status::ok; ++tile)
    for (std::uint64_t chunk = 0; chunk < g.num_chunks() && st == ecq::status::ok; ++chunk) {
      const ecq::block_view b = v.block(tile, chunk);
      if (scratch->size() < at + b.num_symbols()) scratch->resize(at + std::size_t(b.num_symbols()));
      st = d.decode(b.words<std::uint16_t>(), std::size_t(b.num_words<std::uint16_t>()), std::size_t(b.num_symbols()),
                    scratch->data() + at);
      if (to_memory) at += std::size_t(b.num_symbols());
    }
  return st;
}

template <int ScaleBits>
ecq::status kernel_only_lanes(const ecq::encoded_tensor& t, std::vector<std::uint8_t>* scratch, bool to_memory,
                              ecq::cpu_kernel* k) {
  switch (t.geometry().lanes) {
    case 1: return kernel_only_tensor<ScaleBits, 1>(t, scratch, to_memory, k);
    case 8: return kernel_only_tensor<ScaleBits, 8>(t, scratch, to_memory, k);
    case 16: return kernel_only_tensor<ScaleBits, 16>(t, scratch, to_memory, k);
    case 32: return kernel_only_tensor<ScaleBits, 32>(t, scratch, to_memory, k);
    case 64: return kernel_only_tensor<ScaleBits, 64>(t, scratch, to_memory, k);
    default: return ecq::status::unsupported_parameters;
  }
}

ecq::status kernel_only(const ecq::encoded_tensor& t, std::vector<std::uint8_t>* scratch, bool to_memory,
                        ecq::cpu_kernel* k) {
  if (t.geometry().alphabet_size > 256) return ecq::status::unsupported_parameters;
  switch (t.geometry().scale_bits) {
    case 7: return kernel_only_lanes<7>(t, scratch, to_memory, k);
    case 8: return kernel_only_lanes<8>(t, scratch, to_memory, k);
    case 9: return kernel_only_lanes<9>(t, scratch, to_memory, k);
    case 10: return kernel_only_lanes<10>(t, scratch, to_memory, k);
    case 11: return kernel_only_lanes<11>(t, scratch, to_memory, k);
    case 12: return kernel_only_lanes<12>(t, scratch, to_memory, k);
    default: return ecq::status::unsupported_parameters;
  }
}

// symbols: decode_to_symbols into 16-bit symbols; symbol_bytes: its one-byte overload (alphabets <= 256).
enum class container_op { kernel_only, kernel_to_memory, symbols, symbol_bytes, to_float, to_bf16 };

void container_decode(benchmark::State& state, checkpoint_fn get, std::string scheme, container_op op,
                      unsigned threads) {
  const ecq_bench::ecq_checkpoint& c = get(scheme);
  if (c.tensors.empty()) return state.SkipWithError("no checkpoint (weights absent or not codable)");
  std::uint64_t largest = 0;
  for (const auto& t : c.tensors) largest = std::max(largest, t.geometry().rows * t.geometry().cols);
  std::vector<std::uint16_t> symbols, h;
  std::vector<float> w;
  std::vector<std::uint8_t> scratch, bytes;
  if (op == container_op::symbols || op == container_op::to_bf16) (op == container_op::symbols ? symbols : h).resize(largest);
  if (op == container_op::symbol_bytes) bytes.resize(largest);
  if (op == container_op::kernel_to_memory) {  // the largest tensor's blocks, padding rows included, touched before timing
    std::uint64_t stream_symbols = 0;
    for (const auto& t : c.tensors) {
      std::uint64_t sum = 0;
      for (std::uint64_t b = 0; b < t.geometry().num_blocks(); ++b)
        sum += t.view().block(b / t.geometry().num_chunks(), b % t.geometry().num_chunks()).num_symbols();
      stream_symbols = std::max(stream_symbols, sum);
    }
    scratch.resize(std::size_t(stream_symbols));
  }
  if (op == container_op::to_float) w.resize(largest);
  ecq::cpu_options o;
  o.threads = threads;
  ecq::status st = ecq::status::ok;
  ecq::cpu_kernel kernel = ecq::cpu_kernel::scalar;
  for (auto _ : state) {
    for (const auto& t : c.tensors) {
      switch (op) {
        case container_op::kernel_only: st = kernel_only(t, &scratch, false, &kernel); break;
        case container_op::kernel_to_memory: st = kernel_only(t, &scratch, true, &kernel); break;
        case container_op::symbols: st = ecq::decode_to_symbols(t, symbols.data(), symbols.size(), o); break;
        case container_op::symbol_bytes: st = ecq::decode_to_symbols(t, bytes.data(), bytes.size(), o); break;
        case container_op::to_float: st = ecq::decode_to_float(t, w.data(), w.size(), o); break;
        case container_op::to_bf16: st = ecq::decode_to_bf16(t, h.data(), h.size(), o); break;
      }
      if (st != ecq::status::ok) break;
      benchmark::ClobberMemory();
    }
    if (st != ecq::status::ok) break;
  }
  if (st != ecq::status::ok) return state.SkipWithError(ecq::status_string(st));
  ecq::tensor_decoder d;
  d.build(c.tensors.front());
  const bool kernel_row = op == container_op::kernel_only || op == container_op::kernel_to_memory;
  state.SetLabel(std::string(kernel_row ? ecq::cpu_kernel_name(kernel) : ecq::cpu_kernel_name(d.kernel())) +
                 " lanes " + std::to_string(c.tensors.front().geometry().lanes) + " S" +
                 std::to_string(c.tensors.front().geometry().scale_bits));
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(c.weights));
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(c.file.size()));
  state.counters["bits_per_weight"] = 8.0 * double(c.file.size()) / double(c.weights);
  state.counters["threads"] = double(threads == 0 ? ecq::default_thread_pool().size() : threads);
}

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

  // The product path: checkpoints packed as `ecq pack` does, decoded through ecq/cpu/tensor_ops.hpp.
  struct checkpoint_set {
    const char* name;
    checkpoint_fn get;
  };
  std::vector<checkpoint_set> checkpoints;
  if (!ecq_bench::real_affine4_codes().codes.empty()) checkpoints.push_back({"real", ecq_bench::real_checkpoint});
  checkpoints.push_back({"synthetic268M", ecq_bench::synthetic_checkpoint});
  struct op_name {
    container_op op;
    const char* name;
  };
  const op_name ops[] = {{container_op::kernel_only, "kernel_only"},
                         {container_op::kernel_to_memory, "kernel_to_memory"},
                         {container_op::symbols, "decode_to_symbols"},
                         {container_op::symbol_bytes, "decode_to_symbol_bytes"},
                         {container_op::to_float, "decode_to_float"},
                         {container_op::to_bf16, "decode_to_bf16"}};
  for (const auto& cp : checkpoints)
    for (const char* scheme : {"affine4-g64", "bf16"})
      for (const auto& op : ops)
        for (unsigned threads : {1u, 0u}) {
          if ((op.op == container_op::kernel_only || op.op == container_op::kernel_to_memory) && threads != 1) continue;
          const std::string name = std::string("container/") + cp.name + "/" + scheme + "/" + op.name +
                                   (threads == 1 ? "/threads:1" : "/threads:all");
          const checkpoint_fn get = cp.get;
          const container_op which = op.op;
          const std::string sch = scheme;
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& s) { container_decode(s, get, sch, which, threads); })
              ->Unit(benchmark::kMillisecond)
              ->UseRealTime();
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
