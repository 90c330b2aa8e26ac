// bench/gemv_bench.cpp — single-thread GEMV y = W x on a matrix larger than
// the last-level cache, W in four forms:
//   gemv/<data>/fp32_avx512        W as fp32, AVX-512 FMAs;
//   gemv/<data>/q4_avx512          plain 4-bit affine: codes packed two per
//                                  byte (low nibble first), fp32 scale and
//                                  bias per group of 64, AVX-512;
//   gemv/<data>/ecq_fused_*        ecq: each row one interleaved stream,
//                                  decoded, dequantised and dotted in
//                                  registers (cpu_decoder::dot_affine);
//   gemv/<data>/ecq_decode_only_*  the same streams decoded to one code per
//                                  byte (cpu_decoder::decode_codes), no dot:
//                                  the decode-only rate the fused GEMV is
//                                  held against.
//   gemv/<data>/container_*        the product path: the same codes as an
//                                  affine4-g64 tensor (scales and biases as
//                                  binary16), one code (p1) or two (p2) per
//                                  symbol, packed in the default layout into
//                                  a real .ecq file and run through
//                                  ecq::gemv (ecq/cpu/tensor_ops.hpp), 1 and
//                                  all threads;
//   gemv/synthetic268M/<scheme>/...  ecq::gemv over every tensor of the
//                                  268 M-weight synthetic checkpoint of
//                                  bench/bench_checkpoint.hpp, 1 and all
//                                  threads (the thread scaling).
// <data> is "real" or "synthetic" (see below).
// ecq codes the 4-bit codes two per symbol (symbol_packing<4, 2>,
// rans32x16<12>, gather kernel) or one per symbol (rans32x16<7>, the
// gather-free permute kernel). Every benchmark reports weights/s (items) and
// bytes/s of the matrix in its own form (side data included), and checks its
// y against a float64 reference once.
//
// Matrix: 16384 x 8192 weights (537 MB as fp32, 75 MB as 4-bit with side
// data, about 72 MB as ecq): every form is larger than a 32 MB L3. The codes
// are the real affine 4-bit codes of use-lite.safetensors, repeated group by
// group to fill the matrix, when ../shared/data is present, else synthetic
// (a quantised Gaussian over 16 levels). The context block says which.
//
//   ecq_bench_gemv [--benchmark_filter=REGEX] [--benchmark_out=f.json --benchmark_out_format=json]
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "bench_checkpoint.hpp"
#include "bench_common.hpp"
#include "ecq/cpu_decode.hpp"
#include "ecq/ecq.hpp"

#if ECQ_HAS_X86_KERNELS()
#include <immintrin.h>
#define ECQ_BENCH_AVX512 __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,fma")))
#endif

namespace {

constexpr std::size_t rows = 16384, cols = 8192, group = 64;
constexpr std::size_t groups_per_row = cols / group;

/// The matrix as codes with side data, the activations and the reference y.
struct problem {
  std::vector<std::uint8_t> codes;  // rows * cols, one per byte
  std::vector<float> scales, biases;  // rows * groups_per_row
  std::vector<float> x;
  std::vector<double> y_ref;  // float64 reference of the first check_rows rows
  std::string source;
};
constexpr std::size_t check_rows = 64;

const problem& the_problem() {
  static const problem p = [] {
    problem q;
    q.codes.resize(rows * cols);
    q.scales.resize(rows * groups_per_row);
    q.biases.resize(rows * groups_per_row);
    const auto& real = ecq_bench::real_affine4_codes();
    const std::size_t real_groups = real.codes.size() / group;
    if (real_groups > 0) {
      q.source = "real: " + real.source + " (4-bit affine g64 codes, repeated group by group)";
      for (std::size_t g = 0; g < rows * groups_per_row; ++g) {
        const std::size_t from = g % real_groups;
        std::memcpy(&q.codes[g * group], &real.codes[from * group], group);
        q.scales[g] = real.scales[from];
        q.biases[g] = real.biases[from];
      }
    } else {
      q.source = "synthetic: quantised Gaussian over 16 levels";
      q.codes = ecq_bench::quantised_gaussian(rows * cols, 16, 7);
      ecq_bench::splitmix64 rng{3};
      for (std::size_t g = 0; g < rows * groups_per_row; ++g) {
        q.scales[g] = float(0.002 + 0.004 * rng.uniform());
        q.biases[g] = -7.5f * q.scales[g];
      }
    }
    ecq_bench::splitmix64 rng{11};
    q.x.resize(cols);
    for (auto& v : q.x) v = float(2.0 * rng.uniform() - 1.0);
    q.y_ref.resize(check_rows);
    for (std::size_t r = 0; r < check_rows; ++r) {
      double s = 0;
      for (std::size_t c = 0; c < cols; ++c) {
        const std::size_t g = r * groups_per_row + c / group;
        s += (double(q.scales[g]) * q.codes[r * cols + c] + double(q.biases[g])) * double(q.x[c]);
      }
      q.y_ref[r] = s;
    }
    return q;
  }();
  return p;
}

/// @return whether y matches the reference on the checked rows (relative to the row's magnitude).
bool check(const std::vector<float>& y) {
  const problem& p = the_problem();
  for (std::size_t r = 0; r < check_rows; ++r) {
    double magnitude = 0;
    for (std::size_t c = 0; c < cols; ++c) {
      const std::size_t g = r * groups_per_row + c / group;
      magnitude += std::abs((double(p.scales[g]) * p.codes[r * cols + c] + double(p.biases[g])) * double(p.x[c]));
    }
    if (!(std::abs(double(y[r]) - p.y_ref[r]) <= 1e-4 * magnitude + 1e-6)) return false;
  }
  return true;
}

void set_counters(benchmark::State& state, std::size_t matrix_bytes) {
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(rows * cols));
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(matrix_bytes));
  state.counters["bits_per_weight"] = 8.0 * double(matrix_bytes) / double(rows * cols);
  state.counters["matrix_MB"] = double(matrix_bytes) / 1e6;
}

// ---------------------------------------------------------------------------
// Baselines.

#if ECQ_HAS_X86_KERNELS()
/// Sum of the 16 lanes (not _mm512_reduce_add_ps, which trips GCC 12's
/// -Wuninitialized inside its own header, GCC bug 105593).
ECQ_BENCH_AVX512 float sum_lanes(__m512 v) {
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  float s = 0;
  for (float f : t) s += f;
  return s;
}

ECQ_BENCH_AVX512 void gemv_fp32(const float* w, const float* x, float* y) {
  for (std::size_t r = 0; r < rows; ++r) {
    const float* row = w + r * cols;
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (std::size_t c = 0; c < cols; c += 64) {
      a0 = _mm512_fmadd_ps(_mm512_loadu_ps(row + c), _mm512_loadu_ps(x + c), a0);
      a1 = _mm512_fmadd_ps(_mm512_loadu_ps(row + c + 16), _mm512_loadu_ps(x + c + 16), a1);
      a2 = _mm512_fmadd_ps(_mm512_loadu_ps(row + c + 32), _mm512_loadu_ps(x + c + 32), a2);
      a3 = _mm512_fmadd_ps(_mm512_loadu_ps(row + c + 48), _mm512_loadu_ps(x + c + 48), a3);
    }
    y[r] = sum_lanes(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
  }
}

/// Plain 4-bit GEMV. Per group: sum_c (s * code + b) x_c = s * sum_c code x_c
/// + b * sum_c x_c. The activations are prepared once per GEMV (as any
/// 4-bit kernel does): split into the even and odd positions of each group,
/// matching the low and high nibbles, plus the group sums of x.
ECQ_BENCH_AVX512 void gemv_q4(const std::uint8_t* packed, const float* scales, const float* biases,
                              const float* x_split, const float* x_group_sum, float* y) {
  const __m128i low = _mm_set1_epi8(0x0f);
  for (std::size_t r = 0; r < rows; ++r) {
    const std::uint8_t* row = packed + r * cols / 2;
    __m512 acc = _mm512_setzero_ps(), bias_acc = _mm512_setzero_ps();
    for (std::size_t g = 0; g < groups_per_row; g += 16) {
      const std::size_t gi = r * groups_per_row + g;
      bias_acc = _mm512_fmadd_ps(_mm512_loadu_ps(biases + gi), _mm512_loadu_ps(x_group_sum + g), bias_acc);
      for (std::size_t k = 0; k < 16; ++k) {
        const std::uint8_t* b = row + (g + k) * 32;
        const float* xe = x_split + (g + k) * 64;
        const __m128i b0 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
        const __m128i b1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 16));
        const __m128i l0 = _mm_and_si128(b0, low), h0 = _mm_and_si128(_mm_srli_epi16(b0, 4), low);
        const __m128i l1 = _mm_and_si128(b1, low), h1 = _mm_and_si128(_mm_srli_epi16(b1, 4), low);
        __m512 s = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(l0)), _mm512_loadu_ps(xe));
        s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(l1)), _mm512_loadu_ps(xe + 16), s);
        s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(h0)), _mm512_loadu_ps(xe + 32), s);
        s = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(h1)), _mm512_loadu_ps(xe + 48), s);
        acc = _mm512_fmadd_ps(s, _mm512_set1_ps(scales[gi + k]), acc);
      }
    }
    y[r] = sum_lanes(_mm512_add_ps(acc, bias_acc));
  }
}
#endif

void fp32_gemv(benchmark::State& state) {
#if ECQ_HAS_X86_KERNELS()
  if (!ecq::cpu_path_supported(ecq::cpu_path::avx512)) return state.SkipWithError("needs AVX-512");
  const problem& p = the_problem();
  std::vector<float> w(rows * cols);
  for (std::size_t i = 0; i < rows * cols; ++i) {
    const std::size_t g = i / group;
    w[i] = p.scales[g] * float(p.codes[i]) + p.biases[g];
  }
  std::vector<float> y(rows);
  for (auto _ : state) {
    gemv_fp32(w.data(), p.x.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  if (!check(y)) return state.SkipWithError("y differs from the reference");
  set_counters(state, w.size() * sizeof(float));
#else
  state.SkipWithError("needs x86-64");
#endif
}

void q4_gemv(benchmark::State& state) {
#if ECQ_HAS_X86_KERNELS()
  if (!ecq::cpu_path_supported(ecq::cpu_path::avx512)) return state.SkipWithError("needs AVX-512");
  const problem& p = the_problem();
  std::vector<std::uint8_t> packed(rows * cols / 2);
  for (std::size_t i = 0; i < packed.size(); ++i) packed[i] = std::uint8_t(p.codes[2 * i] | (p.codes[2 * i + 1] << 4));
  std::vector<float> y(rows), x_split(cols), x_sum(groups_per_row);
  for (auto _ : state) {
    // Preparing the activations is part of the GEMV.
    for (std::size_t g = 0; g < groups_per_row; ++g) {
      float s = 0;
      for (std::size_t k = 0; k < 32; ++k) {
        const float e = p.x[g * 64 + 2 * k], o = p.x[g * 64 + 2 * k + 1];
        x_split[g * 64 + k] = e;       // low nibble of byte k of the group: code 2k
        x_split[g * 64 + 32 + k] = o;  // high nibble: code 2k + 1
        s += e + o;
      }
      x_sum[g] = s;
    }
    gemv_q4(packed.data(), p.scales.data(), p.biases.data(), x_split.data(), x_sum.data(), y.data());
    benchmark::DoNotOptimize(y.data());
  }
  if (!check(y)) return state.SkipWithError("y differs from the reference");
  set_counters(state, packed.size() + (p.scales.size() + p.biases.size()) * sizeof(float));
#else
  state.SkipWithError("needs x86-64");
#endif
}

// ---------------------------------------------------------------------------
// ecq: one stream per row, one table for the matrix.

template <class Packing, int ScaleBits, int Lanes>
struct encoded_matrix {
  using params = ecq::rans32x16<ScaleBits>;
  static constexpr int symbol_bits = Packing::symbol_bits;
  ecq::encode_table<params> enc;
  ecq::decode_table<ScaleBits, symbol_bits> dec;
  std::vector<std::uint16_t> words;
  std::vector<std::size_t> row_begin;  // rows + 1 offsets into words

  bool build(const problem& p) {
    const std::size_t per_row = Packing::symbol_count(cols);
    std::vector<std::uint8_t> symbols(rows * per_row);
    for (std::size_t r = 0; r < rows; ++r) Packing::pack(&p.codes[r * cols], cols, &symbols[r * per_row], nullptr);
    const auto counts = ecq::histogram(symbols.data(), symbols.size(), Packing::alphabet_size);
    std::vector<std::uint32_t> freqs(Packing::alphabet_size);
    if (ecq::normalize_frequencies(counts.data(), Packing::alphabet_size, ScaleBits, freqs.data()) != ecq::status::ok ||
        enc.build(freqs.data(), Packing::alphabet_size) != ecq::status::ok ||
        dec.build(freqs.data(), Packing::alphabet_size) != ecq::status::ok)
      return false;
    const std::size_t bound = ecq::interleaved_layout<params, Lanes>::max_encoded_words(per_row);
    std::vector<std::uint16_t> buffer(bound);
    row_begin.assign(1, 0);
    for (std::size_t r = 0; r < rows; ++r) {
      std::size_t written = 0;
      if (ecq::interleaved_encode<params, Lanes>(&symbols[r * per_row], per_row, enc.data(), Packing::alphabet_size,
                                                 buffer.data(), bound, &written) != ecq::status::ok)
        return false;
      words.insert(words.end(), buffer.begin(), buffer.begin() + std::ptrdiff_t(written));
      row_begin.push_back(words.size());
    }
    return true;
  }
  std::size_t bytes(const problem& p) const {
    return words.size() * 2 + (p.scales.size() + p.biases.size()) * sizeof(float);
  }
};

template <class Packing, int ScaleBits, int Lanes>
const encoded_matrix<Packing, ScaleBits, Lanes>* matrix() {
  static encoded_matrix<Packing, ScaleBits, Lanes> m;
  static const bool ok = m.build(the_problem());
  return ok ? &m : nullptr;
}

template <class Packing, int ScaleBits, int Lanes>
void ecq_fused(benchmark::State& state) {
  const problem& p = the_problem();
  const auto* m = matrix<Packing, ScaleBits, Lanes>();
  if (m == nullptr) return state.SkipWithError("encoding failed");
  ecq::cpu_decoder<ecq::rans32x16<ScaleBits>, Lanes, Packing::symbol_bits> d;
  if (d.build(m->dec.view()) != ecq::status::ok) return state.SkipWithError("no decoder");
  state.SetLabel(ecq::cpu_kernel_name(d.kernel()));
  std::vector<float> y(rows);
  bool ok = true;
  for (auto _ : state) {
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t b = m->row_begin[r];
      ok &= d.template dot_affine<Packing>(&m->words[b], m->row_begin[r + 1] - b, cols, p.x.data(),
                                           &p.scales[r * groups_per_row], &p.biases[r * groups_per_row], group,
                                           &y[r]) == ecq::status::ok;
    }
    benchmark::DoNotOptimize(y.data());
  }
  if (!ok || !check(y)) return state.SkipWithError("y differs from the reference");
  set_counters(state, m->bytes(p));
}

template <class Packing, int ScaleBits, int Lanes>
void ecq_decode_only(benchmark::State& state) {
  const problem& p = the_problem();
  const auto* m = matrix<Packing, ScaleBits, Lanes>();
  if (m == nullptr) return state.SkipWithError("encoding failed");
  ecq::cpu_decoder<ecq::rans32x16<ScaleBits>, Lanes, Packing::symbol_bits> d;
  if (d.build(m->dec.view()) != ecq::status::ok) return state.SkipWithError("no decoder");
  state.SetLabel(ecq::cpu_kernel_name(d.kernel()));
  std::vector<std::uint8_t> row(cols);
  bool ok = true, same = true;
  for (auto _ : state) {
    for (std::size_t r = 0; r < rows; ++r) {
      const std::size_t b = m->row_begin[r];
      ok &= d.template decode_codes<Packing>(&m->words[b], m->row_begin[r + 1] - b, cols, row.data()) ==
            ecq::status::ok;
      benchmark::DoNotOptimize(row.data());
      benchmark::ClobberMemory();
    }
  }
  for (std::size_t r = 0; r < check_rows; ++r) {  // the check, outside the timed loop
    const std::size_t b = m->row_begin[r];
    d.template decode_codes<Packing>(&m->words[b], m->row_begin[r + 1] - b, cols, row.data());
    same &= std::memcmp(row.data(), &p.codes[r * cols], cols) == 0;
  }
  if (!ok || !same) return state.SkipWithError("decoded codes differ");
  set_counters(state, m->bytes(p));
}

// ---------------------------------------------------------------------------
// The product path: the codes as a container in a real .ecq file, through ecq::gemv.

struct container_matrix {
  std::vector<std::uint8_t> file;
  ecq::encoded_tensor tensor;  // borrowed from file
  std::vector<double> y_ref;   // float64 reference of the first check_rows rows, from the container's own weights
  std::vector<double> magnitude;
};

const container_matrix* packed(int codes_per_symbol) {
  static container_matrix m[2];
  static bool built[2] = {false, false};
  container_matrix& c = m[codes_per_symbol - 1];
  if (built[codes_per_symbol - 1]) return c.file.empty() ? nullptr : &c;
  built[codes_per_symbol - 1] = true;
  const problem& p = the_problem();
  std::vector<std::uint16_t> scales(p.scales.size()), biases(p.biases.size());
  for (std::size_t g = 0; g < scales.size(); ++g) {
    scales[g] = ecq::float_to_f16(p.scales[g]);
    biases[g] = ecq::float_to_f16(p.biases[g]);
  }
  ecq::affine_params ap;
  ap.codes_per_symbol = codes_per_symbol;
  ecq::quantized_tensor q;
  ecq::encoded_tensor t;
  if (ecq::affine_from_codes(p.codes.data(), rows, cols, scales, biases, ap, &q) != ecq::status::ok ||
      ecq::encode_quantized(q, ecq::choose_coding_options(q, ecq::layout_goal::storage), &t) != ecq::status::ok)
    return nullptr;
  ecq::ecq_file_writer w;
  w.add("matrix", ecq::tensor_dtype::f32, {rows, cols}, t);
  c.file = w.serialize();
  ecq::ecq_file_reader r;
  if (r.parse(c.file.data(), c.file.size()) != ecq::status::ok ||
      ecq::encoded_tensor::open_borrowed(r.container_data(0), std::size_t(r.tensors()[0].size), &c.tensor) !=
          ecq::status::ok) {
    c.file.clear();
    return nullptr;
  }
  std::vector<float> wts(rows * cols);
  ecq::decode_to_float(c.tensor, wts.data(), wts.size());
  for (std::size_t row = 0; row < check_rows; ++row) {
    double sum = 0, mag = 0;
    for (std::size_t col = 0; col < cols; ++col) {
      sum += double(wts[row * cols + col]) * double(p.x[col]);
      mag += std::abs(double(wts[row * cols + col]) * double(p.x[col]));
    }
    c.y_ref.push_back(sum);
    c.magnitude.push_back(mag);
  }
  return &c;
}

void container_gemv(benchmark::State& state, int codes_per_symbol, unsigned threads) {
  const problem& p = the_problem();
  const container_matrix* m = packed(codes_per_symbol);
  if (m == nullptr) return state.SkipWithError("packing failed");
  ecq::cpu_options o;
  o.threads = threads;
  std::vector<float> y(rows);
  ecq::status st = ecq::status::ok;
  for (auto _ : state) {
    st = ecq::gemv(m->tensor, p.x.data(), 1, y.data(), o);
    benchmark::DoNotOptimize(y.data());
  }
  if (st != ecq::status::ok) return state.SkipWithError(ecq::status_string(st));
  for (std::size_t r = 0; r < check_rows; ++r)
    if (!(std::abs(double(y[r]) - m->y_ref[r]) <= double(cols) * 0x1p-24 * m->magnitude[r]))
      return state.SkipWithError("y differs from the float64 reference beyond the documented bound");
  ecq::tensor_decoder d;
  d.build(m->tensor);
  state.SetLabel(std::string(ecq::cpu_kernel_name(d.kernel())) + " lanes " +
                 std::to_string(m->tensor.geometry().lanes) + " S" + std::to_string(m->tensor.geometry().scale_bits));
  set_counters(state, m->file.size());
  state.counters["threads"] = double(threads == 0 ? ecq::default_thread_pool().size() : threads);
}

/// ecq::gemv over every tensor of the synthetic checkpoint (batch 1).
void checkpoint_gemv(benchmark::State& state, std::string scheme, unsigned threads) {
  const ecq_bench::ecq_checkpoint& c = ecq_bench::synthetic_checkpoint(scheme);
  if (c.tensors.empty()) return state.SkipWithError("no checkpoint");
  std::vector<float> x(4096, 0.5f), y(4096);
  ecq::cpu_options o;
  o.threads = threads;
  ecq::status st = ecq::status::ok;
  for (auto _ : state) {
    for (const auto& t : c.tensors)
      if ((st = ecq::gemv(t, x.data(), 1, y.data(), o)) != ecq::status::ok) break;
    benchmark::DoNotOptimize(y.data());
  }
  if (st != ecq::status::ok) return state.SkipWithError(ecq::status_string(st));
  state.SetItemsProcessed(std::int64_t(state.iterations()) * std::int64_t(c.weights));
  state.SetBytesProcessed(std::int64_t(state.iterations()) * std::int64_t(c.file.size()));
  state.counters["bits_per_weight"] = 8.0 * double(c.file.size()) / double(c.weights);
  state.counters["threads"] = double(threads == 0 ? ecq::default_thread_pool().size() : threads);
}

void add(const std::string& name, void (*fn)(benchmark::State&)) {
  benchmark::RegisterBenchmark(name.c_str(), fn)->Unit(benchmark::kMillisecond);
}

}  // namespace

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  ecq_bench::add_machine_context();
  benchmark::AddCustomContext("matrix", std::to_string(rows) + " x " + std::to_string(cols) + ", affine 4-bit, group 64");
  benchmark::AddCustomContext("weights", the_problem().source);
  using pairs = ecq::symbol_packing<4, 2>;
  using singles = ecq::symbol_packing<4, 1>;
  const std::string prefix = std::string("gemv/") + (ecq_bench::real_affine4_codes().codes.empty() ? "synthetic" : "real") + "/";
  add(prefix + "fp32_avx512", fp32_gemv);
  add(prefix + "q4_avx512", q4_gemv);
  add(prefix + "ecq_fused_pairs_S12/N32", ecq_fused<pairs, 12, 32>);
  add(prefix + "ecq_fused_pairs_S12/N64", ecq_fused<pairs, 12, 64>);
  add(prefix + "ecq_fused_S7/N64", ecq_fused<singles, 7, 64>);
  add(prefix + "ecq_fused_S7/N128", ecq_fused<singles, 7, 128>);
  add(prefix + "ecq_decode_only_pairs_S12/N32", ecq_decode_only<pairs, 12, 32>);
  add(prefix + "ecq_decode_only_pairs_S12/N64", ecq_decode_only<pairs, 12, 64>);
  add(prefix + "ecq_decode_only_S7/N64", ecq_decode_only<singles, 7, 64>);
  add(prefix + "ecq_decode_only_S7/N128", ecq_decode_only<singles, 7, 128>);
  for (int cps : {1, 2})
    for (unsigned threads : {1u, 0u}) {
      const std::string name = prefix + "container_gemv_p" + std::to_string(cps) + (threads == 1 ? "/threads:1" : "/threads:all");
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { container_gemv(st, cps, threads); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  for (const char* scheme : {"affine4-g64", "bf16"})
    for (unsigned threads : {1u, 0u}) {
      const std::string name = std::string("gemv/synthetic268M/") + scheme + (threads == 1 ? "/threads:1" : "/threads:all");
      const std::string sch = scheme;
      benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& st) { checkpoint_gemv(st, sch, threads); })
          ->Unit(benchmark::kMillisecond)
          ->UseRealTime();
    }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
