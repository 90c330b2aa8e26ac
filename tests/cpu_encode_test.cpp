// Tests for ecq/cpu_encode.hpp: every kernel this CPU can run produces the
// stream of interleaved_encode word for word (all tails, several alphabets,
// both lookup modes), and rejects bad symbols and small buffers before
// writing anything.
#include "ecq/cpu_encode.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "ecq/ecq.hpp"

namespace {

using ecq::cpu_path;
using ecq::status;

template <class Params, int Lanes, std::uint32_t Alphabet>
struct config {
  using params = Params;
  static constexpr int lanes = Lanes;
  static constexpr std::uint32_t alphabet = Alphabet;
};

template <class C>
class CpuEncode : public ::testing::Test {};

using configs = ::testing::Types<config<ecq::rans32x16<12>, 16, 256>,   // gathers
                                 config<ecq::rans32x16<12>, 64, 256>,
                                 config<ecq::rans32x16<11>, 128, 200>,
                                 config<ecq::rans32x16<12>, 32, 16>,    // register lookups
                                 config<ecq::rans32x16<7>, 64, 16>,
                                 config<ecq::rans32x16<5>, 16, 9>,
                                 config<ecq::rans32x16<12>, 8, 256>,    // scalar only (8 lanes)
                                 config<ecq::rans32x16<14>, 32, 256>,   // scalar only (ScaleBits > 12)
                                 config<ecq::rans32x8<10>, 32, 256>>;  // scalar only (8-bit words)
struct config_names {
  template <class C>
  static std::string GetName(int) {
    using P = typename C::params;
    return "r" + std::to_string(P::state_bits) + "x" + std::to_string(P::word_bits) + "_S" +
           std::to_string(P::scale_bits) + "_N" + std::to_string(C::lanes) + "_A" + std::to_string(C::alphabet);
  }
};
TYPED_TEST_SUITE(CpuEncode, configs, config_names);

std::vector<std::uint8_t> gaussian_symbols(std::mt19937_64& rng, std::size_t n, std::uint32_t alphabet) {
  std::normal_distribution<double> g(0.0, 1.0);
  std::vector<std::uint8_t> s(n);
  for (auto& v : s)
    v = std::uint8_t(std::clamp(std::nearbyint((alphabet - 1) / 2.0 + g(rng) * alphabet / 5.0), 0.0, alphabet - 1.0));
  return s;
}

template <class Params>
ecq::encode_table<Params> table_for(const std::vector<std::uint8_t>& symbols, std::uint32_t alphabet) {
  auto counts = ecq::histogram(symbols.data(), symbols.size(), alphabet);
  std::vector<std::uint32_t> freqs(alphabet);
  EXPECT_EQ(ecq::normalize_frequencies(counts.data(), alphabet, Params::scale_bits, freqs.data()), status::ok);
  ecq::encode_table<Params> t;
  EXPECT_EQ(t.build(freqs.data(), alphabet), status::ok);
  return t;
}

TYPED_TEST(CpuEncode, EveryKernelWritesTheCoreEncodersStream) {
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  using layout = ecq::interleaved_layout<P, N>;
  std::mt19937_64 rng(N + P::scale_bits);
  const std::size_t lengths[] = {0, 1, 15, 16, 17, N - 1, N, N + 1, 3 * N + 7, 1000, 5003};
  for (std::size_t n : lengths) {
    auto symbols = gaussian_symbols(rng, n, TypeParam::alphabet);
    if (n > 10) symbols[n / 2] = std::uint8_t(TypeParam::alphabet - 1);  // a rare symbol (frequency 1 likely)
    const auto table = table_for<P>(symbols, TypeParam::alphabet);
    const std::size_t capacity = layout::max_encoded_words(n) + 3;
    std::vector<typename P::word_type> want(capacity);
    std::size_t want_size = 0;
    const status core = ecq::interleaved_encode<P, N>(symbols.data(), n, table.data(), TypeParam::alphabet,
                                                      want.data(), capacity, &want_size);
    ASSERT_EQ(core, status::ok);
    want.resize(want_size);
    int kernels = 0;
    for (cpu_path path : {cpu_path::scalar, cpu_path::avx512}) {
      ecq::cpu_encoder<P, N> e;
      if (e.build(table, path) != status::ok) continue;
      ++kernels;
      std::vector<typename P::word_type> got(capacity, typename P::word_type(0x5a));
      std::size_t size = 0;
      ASSERT_EQ(e.encode(symbols.data(), n, got.data(), capacity, &size), status::ok) << ecq::cpu_path_name(path);
      got.resize(size);
      EXPECT_EQ(got, want) << ecq::cpu_path_name(path) << " n=" << n;
    }
    EXPECT_GE(kernels, 1);
  }
}

TYPED_TEST(CpuEncode, RejectsBadInputBeforeWriting) {
  using P = typename TypeParam::params;
  constexpr int N = TypeParam::lanes;
  using layout = ecq::interleaved_layout<P, N>;
  std::mt19937_64 rng(3);
  const std::size_t n = 777;
  auto symbols = gaussian_symbols(rng, n, TypeParam::alphabet);
  const auto table = table_for<P>(symbols, TypeParam::alphabet);
  std::uint8_t absent = 0;  // a symbol with frequency 0, or one past the alphabet
  while (absent < TypeParam::alphabet - 1 && table[absent].freq != 0) ++absent;
  if (table[absent].freq != 0) absent = std::uint8_t(TypeParam::alphabet < 256 ? TypeParam::alphabet : 0);
  const bool has_bad_symbol = TypeParam::alphabet < 256 || table[absent].freq == 0;
  for (cpu_path path : {cpu_path::scalar, cpu_path::avx512}) {
    ecq::cpu_encoder<P, N> e;
    if (e.build(table, path) != status::ok) continue;
    const std::size_t capacity = layout::max_encoded_words(n);
    using word_type = typename P::word_type;
    const word_type fill = word_type(0x34);
    std::vector<word_type> out(capacity, fill);
    std::size_t size = 99;
    EXPECT_EQ(e.encode(symbols.data(), n, out.data(), capacity - 1, &size), status::output_too_small);
    EXPECT_EQ(size, 0u);
    if (has_bad_symbol) {
      for (std::size_t where : {std::size_t(0), n / 3, n - 1}) {
        auto bad = symbols;
        bad[where] = absent;
        EXPECT_EQ(e.encode(bad.data(), n, out.data(), capacity, &size), status::invalid_argument)
            << ecq::cpu_path_name(path) << " at " << where;
      }
    }
    EXPECT_EQ(std::size_t(std::count(out.begin(), out.end(), fill)), out.size()) << "wrote before failing";
  }
}

TEST(CpuEncoder, PathsWithoutAKernelAreReported) {
  std::vector<std::uint32_t> freqs(256, 16);
  ecq::encode_table<ecq::rans32x16<12>> table;
  ASSERT_EQ(table.build(freqs.data(), 256), status::ok);
  ecq::cpu_encoder<ecq::rans32x16<12>, 8> narrow;
  EXPECT_EQ(narrow.build(table, cpu_path::avx512), status::unsupported_parameters);
  EXPECT_EQ(narrow.build(table, cpu_path::avx2), status::unsupported_parameters);  // no AVX2 encoder
  EXPECT_EQ(narrow.build(table), status::ok);
  EXPECT_EQ(narrow.path(), cpu_path::scalar);

  ecq::cpu_encoder<ecq::rans32x16<12>, 64> wide;
  ASSERT_EQ(wide.build(table), status::ok);
  EXPECT_EQ(wide.path(), ecq::default_cpu_path() == cpu_path::avx512 ? cpu_path::avx512 : cpu_path::scalar);

  ecq::cpu_encoder<ecq::rans32x16<12>, 64> unbuilt;
  std::uint16_t out[256];
  std::size_t size = 1;
  const std::uint8_t s[1] = {0};
  EXPECT_EQ(unbuilt.encode(s, 1, out, 256, &size), status::invalid_argument);
}

}  // namespace
