// Tests for ecq/cpu_decode.hpp: every kernel this CPU can run, forced one by
// one, against interleaved_decode_checked (the reference) on random streams
// of many lengths (all tails), on damaged streams (same status), on streams
// that end at a page boundary followed by an inaccessible page, and for the
// multi-weight outputs (codes, fused affine dot product).
#include "ecq/cpu_decode.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "ecq/ecq.hpp"

#if defined(__unix__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace {

using ecq::cpu_path;
using ecq::status;

constexpr cpu_path all_paths[] = {cpu_path::scalar, cpu_path::avx2, cpu_path::avx512, cpu_path::neon};

/// Symbols of one of several shapes over [0, alphabet).
std::vector<std::uint16_t> make_symbols(std::mt19937_64& rng, std::size_t n, std::uint32_t alphabet, int shape) {
  std::vector<std::uint16_t> s(n);
  std::normal_distribution<double> gauss(0.0, 1.0);
  std::uniform_int_distribution<std::uint32_t> uni(0, alphabet - 1);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (auto& v : s) {
    switch (shape % 5) {
      case 0: {  // quantised Gaussian, sd alphabet / 5
        const double g = std::nearbyint((alphabet - 1) / 2.0 + gauss(rng) * alphabet / 5.0);
        v = std::uint16_t(std::clamp(g, 0.0, double(alphabet - 1)));
        break;
      }
      case 1: v = std::uint16_t(uni(rng)); break;                      // uniform
      case 2: v = std::uint16_t(alphabet - 1); break;                  // one symbol
      case 3: v = std::uint16_t(unit(rng) < 0.001 ? 1 : 0); break;     // skewed pair
      default: v = std::uint16_t(std::min<double>(alphabet - 1, -std::log(unit(rng)) * 2)); break;  // geometric-ish
    }
  }
  return s;
}

/// A stream, its tables and the reference decoding.
template <class Params, int Lanes, int SymbolBits>
struct stream {
  using table_type = ecq::decode_table<Params::scale_bits, SymbolBits>;
  std::vector<std::uint32_t> freqs;
  ecq::encode_table<Params> enc;
  table_type dec;
  std::vector<typename Params::word_type> words;

  template <class Symbol>
  void build(const std::vector<Symbol>& symbols, std::uint32_t alphabet) {
    auto counts = ecq::histogram(symbols.data(), symbols.size(), alphabet);
    freqs.assign(alphabet, 0);
    ASSERT_EQ(ecq::normalize_frequencies(counts.data(), alphabet, Params::scale_bits, freqs.data()), status::ok);
    ASSERT_EQ(enc.build(freqs.data(), alphabet), status::ok);
    ASSERT_EQ(dec.build(freqs.data(), alphabet), status::ok);
    status st = status::invalid_argument;
    words = ecq::interleaved_encode<Params, Lanes>(symbols.data(), symbols.size(), enc, &st);
    ASSERT_EQ(st, status::ok);
  }
};

/// interleaved_decode_checked into a vector (status in *st).
template <class Params, int Lanes, class View>
std::vector<typename View::symbol_type> reference(const typename Params::word_type* words, std::size_t num_words,
                                                  std::size_t n, View view, status* st) {
  std::vector<typename View::symbol_type> out(n);
  *st = ecq::interleaved_decode_checked<Params, Lanes>(words, num_words, n, view, out.data());
  return out;
}

/// Every decoder this CPU can build for the parameters, one per path.
template <class Decoder>
std::vector<Decoder> all_decoders(typename Decoder::table_view view) {
  std::vector<Decoder> out;
  for (cpu_path p : all_paths) {
    Decoder d;
    if (d.build(view, p) == status::ok) out.push_back(d);
  }
  return out;
}

template <class Params, int Lanes, int SymbolBits, std::uint32_t Alphabet>
struct config {
  using params = Params;
  static constexpr int lanes = Lanes;
  static constexpr int symbol_bits = SymbolBits;
  static constexpr std::uint32_t alphabet = Alphabet;
};

template <class C>
class CpuDecode : public ::testing::Test {};

using configs = ::testing::Types<
    config<ecq::rans32x16<12>, 16, 8, 256>,   // avx512_gather, 1 register
    config<ecq::rans32x16<11>, 64, 8, 200>,   // avx512_gather, 4 registers
    config<ecq::rans32x16<12>, 128, 8, 256>,  // avx512_gather, 8 registers (no avx2 kernel)
    config<ecq::rans32x16<7>, 64, 4, 16>,     // avx512_permute, one vpermi2b
    config<ecq::rans32x16<8>, 32, 4, 16>,     // avx512_permute, two vpermi2b
    config<ecq::rans32x16<5>, 16, 4, 12>,     // avx512_permute, table repeated
    config<ecq::rans32x16<10>, 24, 8, 100>,   // avx2 only, 3 registers
    config<ecq::rans32x8<10>, 32, 8, 256>,    // scalar only: two words per symbol
    config<ecq::rans64x16<12>, 16, 8, 256>,   // scalar only: 64-bit states
    config<ecq::rans32x16<12>, 64, 10, 1024>  // scalar only: 64-bit table entries
    >;
/// Test names like "r32x16_S12_N64_B8" (also keeps clang's
/// -Wgnu-zero-variadic-macro-arguments quiet: the macro gets its third argument).
struct config_names {
  template <class C>
  static std::string GetName(int) {
    using P = typename C::params;
    return "r" + std::to_string(P::state_bits) + "x" + std::to_string(P::word_bits) + "_S" +
           std::to_string(P::scale_bits) + "_N" + std::to_string(C::lanes) + "_B" + std::to_string(C::symbol_bits);
  }
};
TYPED_TEST_SUITE(CpuDecode, configs, config_names);

TYPED_TEST(CpuDecode, EveryKernelMatchesTheCheckedDecoder) {
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  constexpr int B = TypeParam::symbol_bits;
  using decoder = ecq::cpu_decoder<P, N, B>;
  std::mt19937_64 rng(N * 1000 + P::scale_bits);
  const std::size_t lengths[] = {0, 1, N - 1, N, N + 1, 2 * N + 3, 7 * N + 5, 1000, 4099};
  int shape = 0;
  for (std::size_t n : lengths) {
    for (int rep = 0; rep < 2; ++rep, ++shape) {
      const auto symbols = make_symbols(rng, n, TypeParam::alphabet, shape);
      stream<P, N, B> st;
      st.build(symbols, TypeParam::alphabet);
      if (::testing::Test::HasFatalFailure()) return;
      const auto decoders = all_decoders<decoder>(st.dec.view());
      ASSERT_FALSE(decoders.empty());
      for (const auto& d : decoders) {
        std::vector<typename decoder::symbol_type> out(n + 1, 0xab);
        EXPECT_EQ(d.decode(st.words.data(), st.words.size(), n, out.data()), status::ok)
            << ecq::cpu_kernel_name(d.kernel()) << " n=" << n;
        EXPECT_TRUE(std::equal(symbols.begin(), symbols.end(), out.begin())) << ecq::cpu_kernel_name(d.kernel());
        EXPECT_EQ(out[n], 0xab) << "wrote past the end";
      }
    }
  }
}

TYPED_TEST(CpuDecode, DecodeSimdIsDecodeWithoutTheScalarKernel) {
  // decode_simd (what the container's block decoder calls): decode's symbols and statuses on every SIMD kernel,
  // whole and truncated streams; unsupported_parameters, nothing written, when the decoder runs the scalar kernel.
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  constexpr int B = TypeParam::symbol_bits;
  using decoder = ecq::cpu_decoder<P, N, B>;
  using symbol = typename decoder::symbol_type;
  std::mt19937_64 rng(N * 11 + 5);
  for (std::size_t n : {std::size_t(0), std::size_t(N + 1), std::size_t(6 * N + 5), std::size_t(4099)}) {
    const auto symbols = make_symbols(rng, n, TypeParam::alphabet, 2);
    stream<P, N, B> st;
    st.build(symbols, TypeParam::alphabet);
    if (::testing::Test::HasFatalFailure()) return;
    for (const auto& d : all_decoders<decoder>(st.dec.view())) {
      const bool simd = d.kernel() != ecq::cpu_kernel::scalar;
      for (std::size_t cut : {std::size_t(0), std::size_t(1)}) {  // whole, then truncated
        std::vector<symbol> want(n + 1, symbol(0xab)), got(n + 1, symbol(0xab));
        const status ref = d.decode(st.words.data(), st.words.size() - cut, n, want.data());
        EXPECT_EQ(d.decode_simd(st.words.data(), st.words.size() - cut, n, got.data()),
                  simd ? ref : status::unsupported_parameters)
            << ecq::cpu_kernel_name(d.kernel()) << " n=" << n << " cut " << cut;
        if (simd && ref == status::ok) {
          EXPECT_EQ(got, want) << ecq::cpu_kernel_name(d.kernel()) << " n=" << n;
        }
        if (!simd) {
          EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](symbol v) { return v == symbol(0xab); }))
              << "decode_simd ran the scalar kernel";
        }
        EXPECT_EQ(got[n], symbol(0xab)) << "wrote past the end";
      }
    }
  }
}

#if ECQ_HAS_X86_KERNELS()
TYPED_TEST(CpuDecode, DecodeToSinkRunsTheAvx512KernelOnly) {
  // The caller's-sink entry (decode_to_sink, used by the container's fused GEMV) with the byte sink decode() uses:
  // the same symbols and statuses on the AVX-512 kernels, unsupported_parameters (nothing decoded) on the others.
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  constexpr int B = TypeParam::symbol_bits;
  using decoder = ecq::cpu_decoder<P, N, B>;
  std::mt19937_64 rng(N * 7 + 3);
  for (std::size_t n : {std::size_t(0), std::size_t(N), std::size_t(5 * N + 3), std::size_t(4099)}) {
    const auto symbols = make_symbols(rng, n, TypeParam::alphabet, 1);
    stream<P, N, B> st;
    st.build(symbols, TypeParam::alphabet);
    if (::testing::Test::HasFatalFailure()) return;
    for (const auto& d : all_decoders<decoder>(st.dec.view())) {
      if constexpr (sizeof(typename decoder::symbol_type) == 1) {
        std::vector<std::uint8_t> out(n + 1, 0xab);
        ecq::detail::avx512::store_bytes_sink::args a{out.data()};
        const bool avx512 = d.path() == cpu_path::avx512;
        for (std::size_t cut : {std::size_t(0), std::size_t(1)}) {  // whole, then truncated
          status want = status::unsupported_parameters;
          if (avx512) {
            std::vector<std::uint8_t> ref(n + 1, 0xab);
            want = d.decode(st.words.data(), st.words.size() - cut, n, ref.data());
          }
          EXPECT_EQ(d.template decode_to_sink<ecq::detail::avx512::store_bytes_sink>(st.words.data(),
                                                                                     st.words.size() - cut, n, a),
                    want)
              << ecq::cpu_kernel_name(d.kernel()) << " n=" << n << " cut " << cut;
          if (cut == 0 && avx512) {
            EXPECT_TRUE(std::equal(symbols.begin(), symbols.end(), out.begin()));
          }
          EXPECT_EQ(out[n], 0xab) << "wrote past the end";
          if (!avx512) {
            EXPECT_TRUE(std::all_of(out.begin(), out.end(), [](std::uint8_t v) { return v == 0xab; }))
                << "decoded without an AVX-512 kernel";
          }
        }
      }
    }
  }
}
#endif

TYPED_TEST(CpuDecode, EveryTailLength) {
  // n = 2N + r for every r in [0, N): every partial last round, each with its own stream end.
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  constexpr int B = TypeParam::symbol_bits;
  using decoder = ecq::cpu_decoder<P, N, B>;
  std::mt19937_64 rng(N + 17);
  for (std::size_t r = 0; r < std::size_t(N); ++r) {
    const std::size_t n = 2 * N + r;
    const auto symbols = make_symbols(rng, n, TypeParam::alphabet, 0);
    stream<P, N, B> st;
    st.build(symbols, TypeParam::alphabet);
    if (::testing::Test::HasFatalFailure()) return;
    for (const auto& d : all_decoders<decoder>(st.dec.view())) {
      std::vector<typename decoder::symbol_type> out(n);
      EXPECT_EQ(d.decode(st.words.data(), st.words.size(), n, out.data()), status::ok)
          << ecq::cpu_kernel_name(d.kernel()) << " n=" << n;
      EXPECT_TRUE(std::equal(symbols.begin(), symbols.end(), out.begin())) << ecq::cpu_kernel_name(d.kernel());
    }
  }
}

TYPED_TEST(CpuDecode, DamagedStreamsGiveTheCheckedDecodersStatus) {
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  constexpr int B = TypeParam::symbol_bits;
  using decoder = ecq::cpu_decoder<P, N, B>;
  using word_type = typename P::word_type;
  std::mt19937_64 rng(77 + N);
  for (std::size_t n : {std::size_t(N / 2), std::size_t(3 * N + 1), std::size_t(2000)}) {
    auto symbols = make_symbols(rng, n, TypeParam::alphabet, 0);
    stream<P, N, B> st;
    st.build(symbols, TypeParam::alphabet);
    if (::testing::Test::HasFatalFailure()) return;
    const auto decoders = all_decoders<decoder>(st.dec.view());
    std::vector<std::vector<word_type>> damaged;
    for (std::size_t cut = 1; cut <= 3 && cut <= st.words.size(); ++cut)
      damaged.emplace_back(st.words.begin(), st.words.end() - std::ptrdiff_t(cut));  // truncated
    damaged.push_back(st.words);
    damaged.back().push_back(word_type(rng()));  // trailing word
    for (int k = 0; k < 12; ++k) {               // one word changed
      damaged.push_back(st.words);
      damaged.back()[rng() % st.words.size()] ^= word_type(1 + rng() % 0xffff);
    }
    for (int k = 0; k < 6; ++k) {  // random words of random length
      damaged.emplace_back(rng() % (st.words.size() + 8));
      for (auto& w : damaged.back()) w = word_type(rng());
    }
    for (const auto& words : damaged) {
      status want = status::ok;
      const auto ref = reference<P, N>(words.data(), words.size(), n, st.dec.view(), &want);
      for (const auto& d : decoders) {
        std::vector<typename decoder::symbol_type> out(n);
        const status got = d.decode(words.data(), words.size(), n, out.data());
        EXPECT_EQ(got, want) << ecq::cpu_kernel_name(d.kernel()) << " n=" << n << " words=" << words.size();
        if (got == status::ok && want == status::ok) {
          EXPECT_EQ(out, ref) << ecq::cpu_kernel_name(d.kernel());
        }
      }
    }
  }
}

#if defined(__unix__)
/// Two-page mappings whose second page is inaccessible: a T array placed to
/// end exactly at the boundary faults on any read or write past its end.
template <class T>
class guarded {
 public:
  explicit guarded(std::size_t count) {
    page_ = std::size_t(sysconf(_SC_PAGESIZE));
    bytes_ = ((count * sizeof(T) + page_ - 1) / page_ + 1) * page_;
    base_ = static_cast<char*>(mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    mprotect(base_ + bytes_ - page_, page_, PROT_NONE);
    data_ = reinterpret_cast<T*>(base_ + bytes_ - page_ - count * sizeof(T));
  }
  ~guarded() { munmap(base_, bytes_); }
  guarded(const guarded&) = delete;
  guarded& operator=(const guarded&) = delete;
  T* data() { return data_; }

 private:
  char* base_;
  std::size_t bytes_, page_;
  T* data_;
};

TYPED_TEST(CpuDecode, StreamsEndingAtAPageBoundary) {
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  constexpr int B = TypeParam::symbol_bits;
  using decoder = ecq::cpu_decoder<P, N, B>;
  using word_type = typename P::word_type;
  using symbol_type = typename decoder::symbol_type;
  std::mt19937_64 rng(5);
  for (std::size_t n : {std::size_t(1), std::size_t(N + 3), std::size_t(5 * N), std::size_t(3001)}) {
    auto symbols = make_symbols(rng, n, TypeParam::alphabet, 0);
    stream<P, N, B> st;
    st.build(symbols, TypeParam::alphabet);
    if (::testing::Test::HasFatalFailure()) return;
    for (std::size_t cut : {std::size_t(0), std::size_t(1), std::size_t(5)}) {
      if (cut > st.words.size()) continue;
      const std::size_t num_words = st.words.size() - cut;
      guarded<word_type> in(num_words);
      std::copy(st.words.begin(), st.words.begin() + std::ptrdiff_t(num_words), in.data());
      guarded<symbol_type> out(n);
      status want = status::ok;
      reference<P, N>(st.words.data(), num_words, n, st.dec.view(), &want);
      for (const auto& d : all_decoders<decoder>(st.dec.view())) {
        EXPECT_EQ(d.decode(in.data(), num_words, n, out.data()), want) << ecq::cpu_kernel_name(d.kernel());
        if (cut == 0) {
          EXPECT_TRUE(std::equal(symbols.begin(), symbols.end(), out.data()));
        }
      }
    }
  }
}
#endif

TEST(CpuDecoder, BuildReportsPathsWithoutAKernel) {
  using P = ecq::rans32x16<12>;
  std::vector<std::uint32_t> freqs(256, 16);
  ecq::decode_table<12, 8> table;
  ASSERT_EQ(table.build(freqs.data(), 256), status::ok);

  ecq::cpu_decoder<P, 8> eight;  // no AVX-512 kernel for 8 lanes
  EXPECT_EQ(eight.build(table.view(), cpu_path::avx512), status::unsupported_parameters);
  ecq::cpu_decoder<P, 128> wide;  // no AVX2 kernel for 128 lanes
  EXPECT_EQ(wide.build(table.view(), cpu_path::avx2), status::unsupported_parameters);
  ecq::cpu_decoder<ecq::rans32x8<12>, 32> bytes;  // SIMD kernels need 16-bit words
  EXPECT_EQ(bytes.build(table.view(), cpu_path::avx2), status::unsupported_parameters);
  EXPECT_EQ(bytes.build(table.view(), cpu_path::scalar), status::ok);
  EXPECT_EQ(bytes.kernel(), ecq::cpu_kernel::scalar);
  EXPECT_EQ(bytes.build(table.view()), status::ok);  // automatic always finds one
  EXPECT_EQ(bytes.kernel(), ecq::cpu_kernel::scalar);

  ecq::cpu_decoder<P, 32> unbuilt;
  std::uint8_t out[1];
  const std::uint16_t words[64] = {};
  EXPECT_EQ(unbuilt.decode(words, 64, 1, out), status::invalid_argument);
}

TEST(CpuDecoder, AutomaticPicksTheFastestKernel) {
  std::vector<std::uint32_t> small(16, 8);  // 16 symbols, ScaleBits 7
  ecq::decode_table<7, 4> small_table;
  ASSERT_EQ(small_table.build(small.data(), 16), status::ok);
  ecq::cpu_decoder<ecq::rans32x16<7>, 64, 4> d;
  ASSERT_EQ(d.build(small_table.view()), status::ok);
  switch (ecq::default_cpu_path()) {
    case cpu_path::avx512: EXPECT_EQ(d.kernel(), ecq::cpu_kernel::avx512_permute); break;
    case cpu_path::avx2: EXPECT_EQ(d.kernel(), ecq::cpu_kernel::avx2_gather); break;
    case cpu_path::neon: EXPECT_EQ(d.kernel(), ecq::cpu_kernel::neon); break;
    default: EXPECT_EQ(d.kernel(), ecq::cpu_kernel::scalar); break;
  }
  EXPECT_EQ(d.path(), ecq::cpu_kernel_path(d.kernel()));

  std::vector<std::uint32_t> large(17, 0);  // a 17th symbol rules out the permute kernel
  large[0] = 128 - 16;
  for (int s = 1; s < 17; ++s) large[s] = 1;
  ecq::decode_table<7, 5> large_table;
  ASSERT_EQ(large_table.build(large.data(), 17), status::ok);
  ecq::cpu_decoder<ecq::rans32x16<7>, 64, 5> g;
  ASSERT_EQ(g.build(large_table.view()), status::ok);
  EXPECT_NE(g.kernel(), ecq::cpu_kernel::avx512_permute);
}

// ---------------------------------------------------------------------------
// Multi-weight symbols: codes to memory and the fused affine dot product.

template <class Packing, class Params, int Lanes>
struct packed_case {
  using packing = Packing;
  using params = Params;
  static constexpr int lanes = Lanes;
};

template <class C>
class CpuDecodePacked : public ::testing::Test {};

using packed_cases = ::testing::Types<packed_case<ecq::symbol_packing<4, 2>, ecq::rans32x16<12>, 64>,  // gather
                                      packed_case<ecq::symbol_packing<4, 2>, ecq::rans32x16<12>, 16>,
                                      packed_case<ecq::symbol_packing<4, 1>, ecq::rans32x16<7>, 64>,   // permute
                                      packed_case<ecq::symbol_packing<4, 1>, ecq::rans32x16<8>, 32>,   // permute
                                      packed_case<ecq::symbol_packing<2, 4>, ecq::rans32x16<12>, 32>,  // 4 codes
                                      packed_case<ecq::symbol_packing<3, 2>, ecq::rans32x16<10>, 32>,  // 6-bit symbols
                                      packed_case<ecq::symbol_packing<1, 8>, ecq::rans32x16<12>, 32>,  // scalar only
                                      packed_case<ecq::symbol_packing<4, 2>, ecq::rans32x8<12>, 16>>;  // scalar only
struct packed_names {
  template <class C>
  static std::string GetName(int) {
    using K = typename C::packing;
    using P = typename C::params;
    return "codes" + std::to_string(K::code_bits) + "x" + std::to_string(K::codes_per_symbol) + "_r" +
           std::to_string(P::state_bits) + "x" + std::to_string(P::word_bits) + "_S" + std::to_string(P::scale_bits) +
           "_N" + std::to_string(C::lanes);
  }
};
TYPED_TEST_SUITE(CpuDecodePacked, packed_cases, packed_names);

/// Codes of a quantised Gaussian, like affine 4-bit weights.
std::vector<std::uint8_t> make_codes(std::mt19937_64& rng, std::size_t n, int code_bits) {
  std::vector<std::uint8_t> c(n);
  std::normal_distribution<double> gauss(0.0, 1.0);
  const double top = double((1 << code_bits) - 1);
  for (auto& v : c) v = std::uint8_t(std::clamp(std::nearbyint(top / 2 + gauss(rng) * top / 5), 0.0, top));
  return c;
}

TYPED_TEST(CpuDecodePacked, CodesAndDotProductsMatchTheReference) {
  using K = typename TypeParam::packing;
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  constexpr int B = K::symbol_bits;
  using decoder = ecq::cpu_decoder<P, N, B>;
  std::mt19937_64 rng(99 + N + B);
  std::normal_distribution<float> gauss(0.0f, 1.0f);
  for (std::size_t num_codes : {std::size_t(0), std::size_t(1), std::size_t(2 * N + 1), std::size_t(64 * 7),
                                std::size_t(4095), std::size_t(10000)}) {
    const auto codes = make_codes(rng, num_codes, K::code_bits);
    std::vector<std::uint8_t> symbols(K::symbol_count(num_codes));
    std::vector<std::uint32_t> raw(K::raw_plane_words(num_codes) + 1);
    K::pack(codes.data(), num_codes, symbols.data(), raw.data());
    stream<P, N, B> st;
    st.build(symbols, K::alphabet_size);
    if (::testing::Test::HasFatalFailure()) return;

    std::vector<float> act(num_codes);
    for (auto& a : act) a = gauss(rng);
    for (std::size_t group : {std::size_t(64), std::size_t(32), std::size_t(48), std::size_t(128)}) {
      const std::size_t groups = (num_codes + group - 1) / group;
      std::vector<float> scales(groups), biases(groups);
      for (std::size_t g = 0; g < groups; ++g) {
        scales[g] = 0.01f + 0.1f * std::abs(gauss(rng));
        biases[g] = -8.0f * scales[g] + 0.05f * gauss(rng);
      }
      double want = 0.0, magnitude = 0.0;
      for (std::size_t c = 0; c < num_codes; ++c) {
        const double w = double(scales[c / group]) * codes[c] + double(biases[c / group]);
        want += w * act[c];
        magnitude += std::abs(w * act[c]);
      }
      for (const auto& d : all_decoders<decoder>(st.dec.view())) {
        float got = -1.0f;
        ASSERT_EQ(d.template dot_affine<K>(st.words.data(), st.words.size(), num_codes, act.data(), scales.data(),
                                           biases.data(), group, &got),
                  status::ok);
        EXPECT_NEAR(got, want, 1e-4 * magnitude + 1e-6)
            << ecq::cpu_kernel_name(d.kernel()) << " codes=" << num_codes << " group=" << group;
      }
    }
    for (const auto& d : all_decoders<decoder>(st.dec.view())) {
      std::vector<std::uint8_t> out(num_codes + 1, 0xcd);
      ASSERT_EQ(d.template decode_codes<K>(st.words.data(), st.words.size(), num_codes, out.data()), status::ok);
      EXPECT_TRUE(std::equal(codes.begin(), codes.end(), out.begin())) << ecq::cpu_kernel_name(d.kernel());
      EXPECT_EQ(out[num_codes], 0xcd) << "wrote past the last code";
      if (!st.words.empty()) {
        float got = 0.0f;
        EXPECT_EQ(d.template dot_affine<K>(st.words.data(), st.words.size() - 1, num_codes, act.data(), act.data(),
                                           act.data(), 64, &got),
                  status::truncated);
        EXPECT_EQ(got, 0.0f);
      }
    }
  }
}

TEST(CpuDecoder, DotRejectsAZeroGroupSize) {
  std::vector<std::uint32_t> freqs(256, 16);
  ecq::decode_table<12, 8> table;
  ASSERT_EQ(table.build(freqs.data(), 256), status::ok);
  ecq::cpu_decoder<ecq::rans32x16<12>, 32> d;
  ASSERT_EQ(d.build(table.view()), status::ok);
  const std::uint16_t words[64] = {};
  float r = 1.0f;
  using packing = ecq::symbol_packing<4, 2>;
  EXPECT_EQ(d.dot_affine<packing>(words, 64, 0, nullptr, nullptr, nullptr, 0, &r), status::invalid_argument);
  EXPECT_EQ(r, 0.0f);
}

}  // namespace
