// Tests for include/ecq/interleaved_rans.hpp:
//   * round trips (fast and checked decoders, and a lane-parallel reference
//     decoder written from the documented layout) over many distributions,
//     sampled lengths 0..100000, N in {1,2,4,7,8,16,32,64} (and 3) and every
//     state/word configuration at several ScaleBits;
//   * exact consumption: the checked decoder accepts exactly the written
//     words, and the fast decoder reads nothing past them (guard page);
//   * the checked decoder on truncated, extended, out-of-range and corrupted
//     streams, and the encoder's error cases;
//   * the acceptance point of issue #2 (coded size vs n*H at N = 32);
//   * golden vectors that freeze the stream format, including the worked
//     example of docs/design.md step by step.
#include <ecq/interleaved_rans.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <iomanip>
#include <iostream>
#include <ostream>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(__unix__)
#include <sys/mman.h>
#include <unistd.h>
#endif

#include <ecq/frequency_table.hpp>
#include <ecq/histogram.hpp>

ECQ_NAMESPACE_BEGIN
// Readable status values in failure messages.
inline void PrintTo(status s, std::ostream* os) { *os << status_string(s); }
ECQ_NAMESPACE_END

namespace {

using ecq::status;
using ::testing::AnyOf;
using ::testing::ElementsAreArray;

template <class P>
using word_t = typename P::word_type;
template <class P>
using state_t = typename P::state_type;
template <class P>
using W_of = word_t<P>;

double uniform01(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1p-53; }

// Box-Muller on mt19937_64 (whose output the standard fixes), so the data of
// the acceptance test is the same with every standard library.
double gaussian(std::mt19937_64& rng) {
  const double u = 1.0 - uniform01(rng), v = uniform01(rng);
  return std::sqrt(-2.0 * std::log(u)) * std::cos(6.283185307179586 * v);
}

std::uint16_t quantise(double x, std::uint32_t levels) {
  const double r = std::floor(x + 0.5);
  return std::uint16_t(std::min(std::max(r, 0.0), double(levels - 1)));
}

// ---------------------------------------------------------------------------
// Test data: a normalised table and symbols coded with it.
struct coding_case {
  std::string kind;
  std::vector<std::uint32_t> freqs;
  std::vector<std::uint16_t> symbols;
};

enum class dist { uniform, gaussian, laplacian, single, skewed, all256 };
constexpr int dist_count = 6;

std::vector<std::uint32_t> table_for(const std::vector<std::uint64_t>& counts, int scale_bits) {
  std::vector<std::uint32_t> f(counts.size());
  const status st = ecq::normalize_frequencies(counts.data(), std::uint32_t(counts.size()), scale_bits, f.data());
  EXPECT_EQ(st, status::ok);
  return f;
}

coding_case make_case(dist d, std::size_t n, int scale_bits, std::mt19937_64& rng) {
  coding_case c;
  c.symbols.resize(n);
  std::uint32_t alphabet = 256;
  switch (d) {
    case dist::uniform:
      alphabet = 1 + std::uint32_t(rng() % 256);
      c.kind = "uniform/" + std::to_string(alphabet);
      for (auto& s : c.symbols) s = std::uint16_t(rng() % alphabet);
      break;
    case dist::gaussian:
    case dist::laplacian: {
      alphabet = rng() % 2 ? 16 : 256;
      const double sigma = 0.3 + uniform01(rng) * double(alphabet) / 4;
      const double mu = uniform01(rng) * double(alphabet - 1);
      c.kind = std::string(d == dist::gaussian ? "gaussian/" : "laplacian/") + std::to_string(alphabet);
      for (auto& s : c.symbols) {
        double x;
        if (d == dist::gaussian) {
          x = gaussian(rng);
        } else {
          const double u = uniform01(rng) - 0.5;
          x = (u < 0 ? 1 : -1) * std::log(1 - 2 * std::fabs(u)) / std::sqrt(2.0);  // unit variance
        }
        s = quantise(mu + sigma * x, alphabet);
      }
      break;
    }
    case dist::single: {
      alphabet = 1 + std::uint32_t(rng() % 256);
      const auto only = std::uint16_t(rng() % alphabet);
      c.kind = "single/" + std::to_string(only);
      for (auto& s : c.symbols) s = only;
      break;
    }
    case dist::skewed: {
      // Two symbols at 1 : 10^6; the table comes from that model, so the rare
      // symbol has frequency 1. It is forced into the data a few times.
      alphabet = 2;
      c.kind = "skewed-1:1e6";
      for (auto& s : c.symbols) s = rng() % 1000001 == 0 ? 1 : 0;
      for (int k = 0; k < 3 && n != 0; ++k) c.symbols[rng() % n] = 1;
      c.freqs = table_for({1000000, 1}, scale_bits);
      return c;
    }
    case dist::all256: {
      // Every one of the 256 symbols has a nonzero frequency (counts + 1),
      // with a skewed, mostly small-valued data distribution.
      c.kind = "all256";
      for (auto& s : c.symbols) s = std::uint16_t(rng() % 2 ? rng() % 256 : std::min<std::uint64_t>(255, rng() % 8 * (rng() % 8)));
      auto counts = ecq::histogram(c.symbols.data(), n, 256);
      for (auto& x : counts) ++x;
      c.freqs = table_for(counts, scale_bits);
      return c;
    }
  }
  c.freqs = table_for(ecq::histogram(c.symbols.data(), n, alphabet), scale_bits);
  return c;
}

// A sink that stores symbol i at out[i] and records how it was called. One
// named type for every checked decode keeps the number of instantiations down.
struct recording_sink {
  std::vector<std::uint16_t>* out;
  std::size_t calls = 0;
  bool in_order = true;      // index i arrived as call number i
  bool index_in_range = true;  // never an index >= out->size()

  explicit recording_sink(std::vector<std::uint16_t>* o, std::size_t n) : out(o) { o->assign(n, 0xffff); }
  void operator()(std::size_t i, std::uint32_t s) {
    in_order = in_order && i == calls;
    ++calls;
    if (i < out->size()) {
      (*out)[i] = std::uint16_t(s);
    } else {
      index_in_range = false;
    }
  }
};

// ---------------------------------------------------------------------------
// A copy of a word stream whose last word ends right before an inaccessible
// page, so that reading past the end faults even without a sanitizer.
template <class W>
class guarded_stream {
 public:
  explicit guarded_stream(const std::vector<W>& words) {
#if defined(__unix__)
    const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
    const std::size_t bytes = words.size() * sizeof(W);
    data_pages_ = (bytes + page - 1) / page;
    map_bytes_ = (data_pages_ + 1) * page;
    void* m = mmap(nullptr, map_bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) {
      fallback_ = words;
      data_ = fallback_.data();
      return;
    }
    map_ = static_cast<unsigned char*>(m);
    unsigned char* guard = map_ + data_pages_ * page;
    mprotect(guard, page, PROT_NONE);
    data_ = reinterpret_cast<W*>(guard - bytes);
    if (bytes != 0) std::memcpy(data_, words.data(), bytes);
#else
    fallback_ = words;
    data_ = fallback_.data();
#endif
  }
  ~guarded_stream() {
#if defined(__unix__)
    if (map_ != nullptr) munmap(map_, map_bytes_);
#endif
  }
  guarded_stream(const guarded_stream&) = delete;
  guarded_stream& operator=(const guarded_stream&) = delete;
  const W* data() const { return data_; }

 private:
  unsigned char* map_ = nullptr;
  std::size_t map_bytes_ = 0, data_pages_ = 0;
  std::vector<W> fallback_;
  W* data_ = nullptr;
};

// The documented lane-parallel rule, written independently of the library's
// decode loop: per round, (1) every lane decodes its symbol without reading,
// (2) each lane's word count follows from its state alone (shift in words
// while x < L), (3) an exclusive prefix sum over the lanes gives each lane the
// start of its contiguous run, read in lane order.
template <class P, int Lanes, class View>
std::vector<std::uint16_t> lane_parallel_decode(const std::vector<word_t<P>>& words, std::size_t n, View table,
                                                bool* consumed_exactly) {
  using layout = typename View::layout;
  std::vector<std::uint16_t> out(n);
  state_t<P> x[Lanes];
  for (int j = 0; j < Lanes; ++j) x[j] = ecq::rans_load_state<P>(words.data() + std::size_t(j) * P::words_per_state);
  std::size_t pos = std::size_t(Lanes) * P::words_per_state;
  for (std::size_t base = 0; base < n; base += Lanes) {
    const int active = int(std::min<std::size_t>(Lanes, n - base));
    std::size_t need[Lanes] = {};
    for (int j = 0; j < active; ++j) {
      const auto e = table[std::uint32_t(x[j]) & P::slot_mask];
      out[base + std::size_t(j)] = std::uint16_t(layout::symbol(e));
      x[j] = state_t<P>(layout::freq(e)) * (x[j] >> P::scale_bits) + layout::offset(e);
      for (state_t<P> y = x[j]; y < P::lower_bound; y <<= P::word_bits) ++need[j];
    }
    std::size_t first[Lanes], total = 0;
    for (int j = 0; j < active; ++j) {
      first[j] = total;
      total += need[j];
    }
    if (pos + total > words.size()) {
      *consumed_exactly = false;
      return out;
    }
    for (int j = 0; j < active; ++j)
      for (std::size_t k = 0; k < need[j]; ++k) x[j] = (x[j] << P::word_bits) | words[pos + first[j] + k];
    pos += total;
  }
  bool all_final = true;
  for (int j = 0; j < Lanes; ++j) all_final &= x[j] == P::lower_bound;
  *consumed_exactly = all_final && pos == words.size();
  return out;
}

// What one round trip produced; checked by check_round_trip_result, which
// is not a template, so that the assertions are compiled once rather than for
// every (config, N) instantiation.
struct round_trip_result {
  std::string config;
  status encode_table_status = status::corrupt_table, decode_table_status = status::corrupt_table;
  status encode_status = status::corrupt_stream;
  std::size_t words = 0, state_words = 0, max_words = 0;
  std::vector<std::uint16_t> fast, checked, lane_parallel;
  status checked_status = status::corrupt_stream;
  std::size_t checked_calls = 0;
  bool checked_in_order = false, checked_index_in_range = false;
  status one_word_more = status::ok, one_word_less = status::ok;
  bool lane_parallel_exact = false;
};

void check_round_trip_result(const coding_case& c, const round_trip_result& r) {
  SCOPED_TRACE(::testing::Message() << r.config << " n " << c.symbols.size() << " " << c.kind);
  ASSERT_EQ(r.encode_table_status, status::ok);
  ASSERT_EQ(r.decode_table_status, status::ok);
  ASSERT_EQ(r.encode_status, status::ok);
  ASSERT_GE(r.words, r.state_words);
  ASSERT_LE(r.words, r.max_words);
  ASSERT_EQ(r.checked_status, status::ok);
  EXPECT_EQ(r.checked_calls, c.symbols.size());
  EXPECT_TRUE(r.checked_in_order);
  EXPECT_TRUE(r.checked_index_in_range);
  ASSERT_EQ(r.checked, c.symbols) << "checked decoder";
  ASSERT_EQ(r.fast, c.symbols) << "fast decoder";
  EXPECT_EQ(r.one_word_more, status::trailing_data);
  EXPECT_EQ(r.one_word_less, status::truncated);
  ASSERT_EQ(r.lane_parallel, c.symbols) << "lane-parallel rule";
  EXPECT_TRUE(r.lane_parallel_exact) << "lane-parallel rule: stream not consumed exactly or final states != L";
}

// Encodes and decodes `c` with every decoder; see check_round_trip_result
// for what must hold.
template <class P, int Lanes, int SymbolBits = 8>
round_trip_result run_round_trip(const coding_case& c) {
  using layout = ecq::interleaved_layout<P, Lanes>;
  using W = word_t<P>;
  const std::size_t n = c.symbols.size();
  round_trip_result r;
  r.config = "state " + std::to_string(P::state_bits) + " word " + std::to_string(P::word_bits) + " S " +
             std::to_string(P::scale_bits) + " N " + std::to_string(Lanes);
  ecq::encode_table<P> et;
  r.encode_table_status = et.build(c.freqs.data(), std::uint32_t(c.freqs.size()));
  ecq::decode_table<P::scale_bits, SymbolBits> dt;
  r.decode_table_status = dt.build(c.freqs.data(), std::uint32_t(c.freqs.size()));
  if (r.encode_table_status != status::ok || r.decode_table_status != status::ok) return r;

  const std::vector<W> words = ecq::interleaved_encode<P, Lanes>(c.symbols.data(), n, et, &r.encode_status);
  r.words = words.size();
  r.state_words = layout::state_words;
  r.max_words = layout::max_encoded_words(n);
  if (r.encode_status != status::ok) return r;

  // Checked path, callable sink: indices 0..n-1 in order, each once.
  {
    recording_sink sink(&r.checked, n);
    r.checked_status = ecq::interleaved_decode_checked<P, Lanes>(words.data(), words.size(), n, dt.view(), sink);
    r.checked_calls = sink.calls;
    r.checked_in_order = sink.in_order;
    r.checked_index_in_range = sink.index_in_range;
  }

  // Fast path, pointer sink, on a stream followed by a guard page: reading
  // past the last written word faults. Only on streams the checked decoder
  // accepted: the fast path's contract excludes anything else.
  if (r.checked_status == status::ok) {
    const guarded_stream<W> guarded(words);
    r.fast.assign(n, 0xffff);
    ecq::interleaved_decode<P, Lanes>(guarded.data(), words.size(), n, dt.view(), r.fast.data());
  }

  // The checked decoder consumes exactly the written words: one word fewer
  // runs out (the decoder reads the same prefix until then), one more is left over.
  {
    std::vector<std::uint16_t> scratch;
    recording_sink sink(&scratch, n);
    std::vector<W> longer = words;
    longer.push_back(W(0));
    r.one_word_more = ecq::interleaved_decode_checked<P, Lanes>(longer.data(), longer.size(), n, dt.view(), sink);
    r.one_word_less = ecq::interleaved_decode_checked<P, Lanes>(words.data(), words.size() - 1, n, dt.view(), sink);
  }

  // The lane-parallel reading of the documented layout gives the same symbols
  // and consumes exactly the stream.
  r.lane_parallel = lane_parallel_decode<P, Lanes>(words, n, dt.view(), &r.lane_parallel_exact);
  return r;
}

template <class P, int Lanes, int SymbolBits = 8>
void check_round_trip(const coding_case& c) {
  check_round_trip_result(c, run_round_trip<P, Lanes, SymbolBits>(c));
}

template <int... Ls>
struct lane_list {};
using all_lanes = lane_list<1, 2, 4, 7, 8, 16, 32, 64>;

template <int... Ls, class F>
void for_each_lanes(lane_list<Ls...>, F&& f) {
  (f(std::integral_constant<int, Ls>{}), ...);
}

// Every N with every state/word combination at ScaleBits 12; the other
// ScaleBits (the smallest and largest each combination allows here) with one
// N each, odd ones included. Each (config, N) pair is a separate
// instantiation of the coder and compile time is the cost of this matrix, so
// it holds what adds coverage: the lane logic does not depend on ScaleBits.
template <class P, class Lanes>
struct coder_config {
  using params = P;
  using lanes = Lanes;
};
template <class C>
class InterleavedRans : public ::testing::Test {};
using coder_configs =
    ::testing::Types<coder_config<ecq::rans32x8<12>, all_lanes>, coder_config<ecq::rans32x16<12>, all_lanes>,
                     coder_config<ecq::rans64x16<12>, all_lanes>, coder_config<ecq::rans64x32<12>, all_lanes>,
                     coder_config<ecq::rans32x8<8>, lane_list<3>>, coder_config<ecq::rans32x16<8>, lane_list<32>>,
                     coder_config<ecq::rans32x16<15>, lane_list<3>>, coder_config<ecq::rans64x16<16>, lane_list<32>>,
                     coder_config<ecq::rans64x32<16>, lane_list<7>>>;
template <int... Ls>
std::string lane_names(lane_list<Ls...>) {
  std::string s;
  ((s += "_N" + std::to_string(Ls)), ...);
  return s;
}
// Readable test names ("rans32x16_S12_N1_N2..."); naming the generator also
// keeps clang's -Wpedantic quiet about the macro's empty variadic argument.
struct config_names {
  template <class P>
  static std::string name_of(P*) {
    return "rans" + std::to_string(P::state_bits) + "x" + std::to_string(P::word_bits) + "_S" +
           std::to_string(P::scale_bits);
  }
  template <class P, class Lanes>
  static std::string name_of(coder_config<P, Lanes>*) {
    return name_of(static_cast<P*>(nullptr)) + lane_names(Lanes{});
  }
  template <class T>
  static std::string GetName(int) {
    return name_of(static_cast<T*>(nullptr));
  }
};
TYPED_TEST_SUITE(InterleavedRans, coder_configs, config_names);

TYPED_TEST(InterleavedRans, RoundTripsOverDistributionsLengthsAndLanes) {
  using P = typename TypeParam::params;
  std::mt19937_64 rng(std::uint64_t(P::state_bits) * 1000 + std::uint64_t(P::word_bits) * 100 + P::scale_bits);
  int combination = 0;
  for_each_lanes(typename TypeParam::lanes{}, [&](auto lanes) {
    constexpr int N = decltype(lanes)::value;
    // Lengths are sampled, not enumerated: every distribution at a random
    // length up to 3000, one of them (rotating) up to 100000 ...
    for (int d = 0; d < dist_count; ++d) {
      const bool long_one = (combination + d) % dist_count == 0;
      const std::size_t n = std::size_t(rng() % (long_one ? 100001 : 3001));
      check_round_trip<P, N>(make_case(dist(d), n, P::scale_bits, rng));
    }
    // ... and the lengths around the round size, where partial rounds and
    // lanes without symbols appear, with a random distribution.
    for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(N - 1), std::size_t(N), std::size_t(N + 1),
                          std::size_t(2 * N + 1), std::size_t(5 * N - 1)})
      check_round_trip<P, N>(make_case(dist(rng() % dist_count), n, P::scale_bits, rng));
    ++combination;
  });
  // The longest length once per configuration.
  check_round_trip<P, 32>(make_case(dist::gaussian, 100000, P::scale_bits, rng));
}

TEST(InterleavedRansTwelveBitSymbols, RoundTripWithSixtyFourBitDecodeEntries) {
  // 4096-symbol alphabets: decode entries are 64-bit at S = 12.
  std::mt19937_64 rng(41);
  for (int trial = 0; trial < 6; ++trial) {
    coding_case c;
    c.kind = "4096-symbol gaussian";
    const std::size_t n = std::size_t(rng() % 50000);
    const double sigma = 50 + 500 * uniform01(rng);
    c.symbols.resize(n);
    for (auto& s : c.symbols) s = quantise(2047.5 + sigma * gaussian(rng), 4096);
    auto counts = ecq::histogram(c.symbols.data(), n, 4096);
    c.freqs = table_for(counts, 12);
    check_round_trip<ecq::rans32x16<12>, 32, 12>(c);
    check_round_trip<ecq::rans32x8<12>, 7, 12>(c);
    check_round_trip<ecq::rans64x32<12>, 16, 12>(c);
    c.freqs = table_for(counts, 16);
    check_round_trip<ecq::rans64x16<16>, 8, 12>(c);
  }
}

// ---------------------------------------------------------------------------
// The checked decoder on bad input.
template <class P, int Lanes>
struct bad_input_fixture {
  using W = word_t<P>;
  coding_case c;
  ecq::encode_table<P> et;
  ecq::decode_table<P::scale_bits, 8> dt;
  std::vector<W> words;

  bad_input_fixture(std::size_t n, std::uint64_t seed) {
    std::mt19937_64 rng(seed);
    c = make_case(dist::gaussian, n, P::scale_bits, rng);
    EXPECT_EQ(et.build(c.freqs.data(), std::uint32_t(c.freqs.size())), status::ok);
    EXPECT_EQ(dt.build(c.freqs.data(), std::uint32_t(c.freqs.size())), status::ok);
    status st = status::corrupt_stream;
    words = ecq::interleaved_encode<P, Lanes>(c.symbols.data(), n, et, &st);
    EXPECT_EQ(st, status::ok);
  }

  // Decodes `stream` with the checked decoder; records in *out the symbols and
  // fails the test if the sink sees an index >= n or out of order.
  status decode(const std::vector<W>& stream, std::size_t num_words, std::size_t n, std::vector<std::uint16_t>* out,
                std::size_t* calls) const {
    recording_sink sink(out, n);
    const status st = ecq::interleaved_decode_checked<P, Lanes>(stream.data(), num_words, n, dt.view(), sink);
    EXPECT_TRUE(sink.index_in_range) << "sink called with an index >= n";
    EXPECT_TRUE(sink.in_order) << "sink called out of order";
    *calls = sink.calls;
    return st;
  }
};

// The four state/word combinations (the checks do not depend on ScaleBits).
template <class P>
class CheckedDecoder : public ::testing::Test {};
using checked_configs =
    ::testing::Types<ecq::rans32x8<12>, ecq::rans32x16<12>, ecq::rans64x16<12>, ecq::rans64x32<12>>;
TYPED_TEST_SUITE(CheckedDecoder, checked_configs, config_names);

template <class P, int Lanes>
void check_truncations() {
  bad_input_fixture<P, Lanes> f(300, 51);
  const std::size_t size = f.words.size();
  ASSERT_GT(size, (ecq::interleaved_layout<P, Lanes>::state_words)) << "the stream must hold renormalisation words";
  std::vector<std::uint16_t> out;
  std::size_t calls = 0;
  for (std::size_t k = 0; k < size; ++k) {
    // Every proper prefix: never ok (the decoder reads the same words as on the
    // full stream until it runs out).
    std::vector<W_of<P>> prefix(f.words.begin(), f.words.begin() + std::ptrdiff_t(k));  // exact size for ASan
    ASSERT_EQ(f.decode(prefix, k, 300, &out, &calls), status::truncated) << "prefix of " << k << " words";
    ASSERT_LE(calls, 300u);
  }
  ASSERT_EQ(f.decode(f.words, size, 300, &out, &calls), status::ok);
  EXPECT_EQ(out, f.c.symbols);
}

TYPED_TEST(CheckedDecoder, EveryTruncationIsReported) {
  check_truncations<TypeParam, 4>();
  check_truncations<TypeParam, 7>();
}

TYPED_TEST(CheckedDecoder, AppendedWordsAreTrailingData) {
  using P = TypeParam;
  bad_input_fixture<P, 4> f(1000, 52);
  std::vector<std::uint16_t> out;
  std::size_t calls = 0;
  for (W_of<P> extra : {W_of<P>(0), W_of<P>(1), W_of<P>(~W_of<P>(0))}) {
    auto longer = f.words;
    longer.push_back(extra);
    EXPECT_EQ(f.decode(longer, longer.size(), 1000, &out, &calls), status::trailing_data);
    EXPECT_EQ(out, f.c.symbols) << "the symbols before the extra words decode normally";
    longer.push_back(extra);
    EXPECT_EQ(f.decode(longer, longer.size(), 1000, &out, &calls), status::trailing_data);
  }
}

TYPED_TEST(CheckedDecoder, OutOfRangeInitialStateIsCorrupt) {
  using P = TypeParam;
  constexpr int N = 4;
  bad_input_fixture<P, N> f(500, 53);
  std::vector<std::uint16_t> out;
  std::size_t calls = 0;
  const state_t<P> bad_states[] = {0, P::lower_bound - 1, P::upper_bound, ~state_t<P>(0)};
  for (int lane = 0; lane < N; ++lane) {
    for (const state_t<P> bad : bad_states) {
      auto stream = f.words;
      W_of<P>* w = stream.data() + std::size_t(lane) * P::words_per_state;
      for (int k = 0; k < P::words_per_state; ++k) w[k] = W_of<P>(bad >> (k * P::word_bits));
      ASSERT_EQ(ecq::rans_load_state<P>(w), bad);
      EXPECT_EQ(f.decode(stream, stream.size(), 500, &out, &calls), status::corrupt_stream) << "lane " << lane;
      EXPECT_EQ(calls, 0u) << "states are checked before anything is decoded";
    }
  }
}

TYPED_TEST(CheckedDecoder, WrongSymbolCountIsDetected) {
  using P = TypeParam;
  bad_input_fixture<P, 4> f(1000, 54);
  // Guarantee frequencies below M for the checks' reasoning: a Gaussian case
  // with a single symbol would code every symbol in zero bits.
  std::uint32_t max_freq = 0;
  for (auto x : f.c.freqs) max_freq = std::max(max_freq, x);
  ASSERT_LT(max_freq, P::total_frequency);
  std::vector<std::uint16_t> out;
  std::size_t calls = 0;
  // One symbol fewer: that symbol's lane is left above L.
  EXPECT_EQ(f.decode(f.words, f.words.size(), 999, &out, &calls), status::corrupt_stream);
  EXPECT_EQ(calls, 999u);
  // One more: the extra symbol pulls its lane below L and the refill runs out.
  EXPECT_EQ(f.decode(f.words, f.words.size(), 1001, &out, &calls), status::truncated);
  EXPECT_LE(calls, 1001u);
}

TYPED_TEST(CheckedDecoder, RandomCorruptionIsContained) {
  using P = TypeParam;
  constexpr int N = 7;
  const std::size_t n = 400;
  bad_input_fixture<P, N> f(n, 55);
  std::mt19937_64 rng(56);
  std::vector<std::uint16_t> out;
  std::size_t calls = 0;
  int not_ok = 0;
  for (int trial = 0; trial < 300; ++trial) {
    auto stream = f.words;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) stream[rng() % stream.size()] ^= W_of<P>(std::uint64_t(1) << (rng() % P::word_bits));
    // Sometimes also cut or extend the corrupted stream.
    if (trial % 3 == 1) stream.resize(stream.size() - 1 - rng() % 5);
    if (trial % 3 == 2) stream.push_back(W_of<P>(rng()));
    const status st = f.decode(stream, stream.size(), n, &out, &calls);  // exact-size vector: ASan checks bounds
    ASSERT_LE(calls, n);
    ASSERT_THAT(st, AnyOf(status::ok, status::truncated, status::corrupt_stream, status::trailing_data));
    if (st == status::ok) {
      // Accepted only if the stream is a valid encoding of what it decoded to.
      status est = status::corrupt_stream;
      EXPECT_EQ((ecq::interleaved_encode<P, N>(out.data(), n, f.et, &est)), stream);
    } else {
      ++not_ok;
    }
  }
  EXPECT_GT(not_ok, 250) << "corruption should almost always be detected";
}

TEST(CheckedDecoderEdgeCases, StreamsShorterThanTheStatesAreTruncated) {
  using P = ecq::rans32x16<12>;
  const std::uint32_t freqs[] = {4096};
  ecq::decode_table<12, 8> dt;
  ASSERT_EQ(dt.build(freqs, 1), status::ok);
  // Four words holding two states equal to L = 0x8000 (LSW first): an empty stream.
  const std::uint16_t empty_stream[4] = {0x8000, 0x0000, 0x8000, 0x0000};
  auto count = [](std::size_t, std::uint32_t) {};
  for (std::size_t num_words = 0; num_words < 4; ++num_words)
    EXPECT_EQ((ecq::interleaved_decode_checked<P, 2>(empty_stream, num_words, 0, dt.view(), count)), status::truncated);
  EXPECT_EQ((ecq::interleaved_decode_checked<P, 2>(empty_stream, 4, 0, dt.view(), count)), status::ok);
  // A symbol of frequency M costs nothing: the same words decode any number of them.
  std::vector<std::uint8_t> out(10, 1);
  EXPECT_EQ((ecq::interleaved_decode_checked<P, 2>(empty_stream, 4, 10, dt.view(), out.data())), status::ok);
  EXPECT_EQ(out, std::vector<std::uint8_t>(10, 0));
}

TEST(InterleavedDecode, CallableSinkKeepsItsState) {
  // A stateful sink passed as an lvalue is used by reference.
  using P = ecq::rans32x16<12>;
  std::mt19937_64 rng(57);
  const coding_case c = make_case(dist::gaussian, 777, 12, rng);
  ecq::encode_table<P> et;
  ASSERT_EQ(et.build(c.freqs.data(), std::uint32_t(c.freqs.size())), status::ok);
  ecq::decode_table<12, 8> dt;
  ASSERT_EQ(dt.build(c.freqs.data(), std::uint32_t(c.freqs.size())), status::ok);
  const auto words = ecq::interleaved_encode<P, 16>(c.symbols.data(), c.symbols.size(), et);
  struct summing_sink {
    std::uint64_t sum = 0;
    std::size_t calls = 0;
    void operator()(std::size_t, std::uint32_t s) {
      sum += s;
      ++calls;
    }
  };
  summing_sink fast, checked;
  ecq::interleaved_decode<P, 16>(words.data(), words.size(), c.symbols.size(), dt.view(), fast);
  EXPECT_EQ((ecq::interleaved_decode_checked<P, 16>(words.data(), words.size(), c.symbols.size(), dt.view(), checked)),
            status::ok);
  std::uint64_t expected = 0;
  for (auto s : c.symbols) expected += s;
  EXPECT_EQ(fast.calls, 777u);
  EXPECT_EQ(fast.sum, expected);
  EXPECT_EQ(checked.calls, 777u);
  EXPECT_EQ(checked.sum, expected);
}

// ---------------------------------------------------------------------------
// Encoder errors: detected before anything is written.
template <class W>
bool all_equal(const std::vector<W>& v, W value) {
  return std::all_of(v.begin(), v.end(), [value](W w) { return w == value; });
}

TEST(InterleavedEncode, InvalidSymbolsAreRejectedBeforeWriting) {
  using P = ecq::rans32x16<12>;
  using layout = ecq::interleaved_layout<P, 4>;
  const std::uint32_t freqs[] = {2000, 0, 2000, 95, 1};  // symbol 1 has frequency 0
  ecq::encode_table<P> et;
  ASSERT_EQ(et.build(freqs, 5), status::ok);
  std::vector<std::uint8_t> symbols(100, 2);
  const std::size_t capacity = layout::max_encoded_words(100);
  for (std::uint8_t bad : {std::uint8_t(5), std::uint8_t(200), std::uint8_t(1)}) {
    for (std::size_t pos : {std::size_t(0), std::size_t(57), std::size_t(99)}) {
      symbols[pos] = bad;
      std::vector<std::uint16_t> out(capacity, 0x5a5a);
      std::size_t written = 12345;
      EXPECT_EQ((ecq::interleaved_encode<P, 4>(symbols.data(), 100, et.data(), 5, out.data(), capacity, &written)),
                status::invalid_argument)
          << "symbol " << int(bad) << " at " << pos;
      EXPECT_EQ(written, 0u);
      EXPECT_TRUE(all_equal(out, std::uint16_t(0x5a5a))) << "nothing may be written";
      status st = status::ok;
      EXPECT_TRUE((ecq::interleaved_encode<P, 4>(symbols.data(), 100, et, &st)).empty());
      EXPECT_EQ(st, status::invalid_argument);
      symbols[pos] = 2;
    }
  }
}

TEST(InterleavedEncode, TooSmallCapacityIsRejectedBeforeWriting) {
  using P = ecq::rans32x8<12>;
  using layout = ecq::interleaved_layout<P, 3>;
  static_assert(layout::state_words == 12, "3 states of 4 bytes");
  EXPECT_EQ(layout::max_encoded_words(0), 12u);
  EXPECT_EQ(layout::max_encoded_words(10), 12u + 20u);  // two bytes per symbol at most (S = 12)
  const std::uint32_t freqs[] = {4095, 1};
  ecq::encode_table<P> et;
  ASSERT_EQ(et.build(freqs, 2), status::ok);
  const std::vector<std::uint8_t> symbols(50, 1);
  for (std::size_t n : {std::size_t(0), std::size_t(1), std::size_t(50)}) {
    const std::size_t need = layout::max_encoded_words(n);
    std::vector<std::uint8_t> out(need, 0xa5);
    std::size_t written = 999;
    EXPECT_EQ((ecq::interleaved_encode<P, 3>(symbols.data(), n, et.data(), 2, out.data(), need - 1, &written)),
              status::output_too_small);
    EXPECT_EQ(written, 0u);
    EXPECT_TRUE(all_equal(out, std::uint8_t(0xa5)));
    // An invalid symbol with a too-small buffer: still nothing written.
    const std::uint8_t bad[] = {7};
    EXPECT_NE((ecq::interleaved_encode<P, 3>(bad, 1, et.data(), 2, out.data(), 1, &written)), status::ok);
    EXPECT_TRUE(all_equal(out, std::uint8_t(0xa5)));
  }
}

TEST(InterleavedEncode, WorstCaseFitsTheBoundExactly) {
  // All symbols of frequency 1 in a 4096-symbol alphabet at S = 12 with byte
  // words: the largest renormalisations. The output buffer is exactly
  // max_encoded_words(n) long (ASan checks the speculative stores), and the
  // stream in a larger buffer is the same, moved to the front.
  using P = ecq::rans32x8<12>;
  using layout = ecq::interleaved_layout<P, 5>;
  const std::vector<std::uint32_t> freqs(4096, 1);
  ecq::encode_table<P> et;
  ASSERT_EQ(et.build(freqs.data(), 4096), status::ok);
  std::mt19937_64 rng(58);
  std::vector<std::uint16_t> symbols(20001);
  for (auto& s : symbols) s = std::uint16_t(rng() % 4096);
  const std::size_t n = symbols.size();
  std::vector<std::uint8_t> tight(layout::max_encoded_words(n));
  std::size_t written = 0;
  ASSERT_EQ((ecq::interleaved_encode<P, 5>(symbols.data(), n, et.data(), 4096, tight.data(), tight.size(), &written)),
            status::ok);
  // 12 bits per symbol in byte words: 1.5 words per symbol on average, so
  // the two-word path is taken for about half of the symbols.
  EXPECT_GT(written, layout::state_words + 5 * n / 4);
  std::vector<std::uint8_t> roomy(tight.size() + 100, 0);
  std::size_t written2 = 0;
  ASSERT_EQ((ecq::interleaved_encode<P, 5>(symbols.data(), n, et.data(), 4096, roomy.data(), roomy.size(), &written2)),
            status::ok);
  ASSERT_EQ(written2, written);
  EXPECT_TRUE(std::equal(tight.begin(), tight.begin() + std::ptrdiff_t(written), roomy.begin()));
  ecq::decode_table<12, 12> dt;
  ASSERT_EQ(dt.build(freqs.data(), 4096), status::ok);
  std::vector<std::uint16_t> out(n);
  ASSERT_EQ((ecq::interleaved_decode_checked<P, 5>(tight.data(), written, n, dt.view(), out.data())), status::ok);
  EXPECT_EQ(out, symbols);
}

// ---------------------------------------------------------------------------
// Acceptance point of issue #2: 2^20 symbols of a quantised Gaussian with
// 16 and 256 levels, sigma = levels / 6 around the middle level (mu =
// (levels - 1) / 2), rounded to the nearest level and clamped to [0,
// levels - 1]; table normalised at ScaleBits 12 from the data's own
// histogram; rans32x16, N = 32. Coded size (all words, flushed states
// included) <= 1.001 * n * H, and normalisation loss <= 0.05 %.
TEST(InterleavedRansAcceptance, QuantisedGaussianCodesWithin0p1PercentOfEntropy) {
  using P = ecq::rans32x16<12>;
  constexpr int N = 32;
  const std::size_t n = std::size_t(1) << 20;
  for (std::uint32_t levels : {16u, 256u}) {
    std::mt19937_64 rng(levels);
    const double mu = (double(levels) - 1) / 2, sigma = double(levels) / 6;
    std::vector<std::uint8_t> symbols(n);
    for (auto& s : symbols) s = std::uint8_t(quantise(mu + sigma * gaussian(rng), levels));
    const auto counts = ecq::histogram(symbols.data(), n, levels);
    const auto freqs = ecq::normalized_frequencies(counts, 12);
    ASSERT_EQ(freqs.size(), levels);
    const double h = ecq::entropy_bits_per_symbol(counts.data(), levels);
    const double expected = ecq::expected_bits_per_symbol(counts.data(), freqs.data(), levels, 12);
    const double loss = ecq::normalization_loss(counts.data(), freqs.data(), levels, 12);

    ecq::encode_table<P> et;
    ASSERT_EQ(et.build(freqs.data(), levels), status::ok);
    status st = status::corrupt_stream;
    const auto words = ecq::interleaved_encode<P, N>(symbols.data(), n, et, &st);
    ASSERT_EQ(st, status::ok);
    const double coded_bits = double(words.size()) * P::word_bits;
    const double ratio = coded_bits / (double(n) * h);

    ecq::decode_table<12, 8> dt;
    ASSERT_EQ(dt.build(freqs.data(), levels), status::ok);
    std::vector<std::uint8_t> out(n);
    ASSERT_EQ((ecq::interleaved_decode_checked<P, N>(words.data(), words.size(), n, dt.view(), out.data())), status::ok);
    ASSERT_EQ(out, symbols);

    const std::string tag = "levels" + std::to_string(levels);
    ::testing::Test::RecordProperty(tag + "_entropy_bits", std::to_string(h));
    ::testing::Test::RecordProperty(tag + "_size_over_nH", std::to_string(ratio));
    ::testing::Test::RecordProperty(tag + "_normalization_loss", std::to_string(loss));
    std::cout << std::fixed << std::setprecision(6) << "[acceptance] " << levels << " levels, sigma " << sigma
              << ", n 2^20, S 12, N 32, rans32x16: H " << h << " bits, table " << expected << " bits, coded "
              << coded_bits / double(n) << " bits/symbol; size/(nH) " << ratio << ", normalisation loss "
              << loss * 100 << " %\n";
    EXPECT_LE(ratio, 1.001) << tag;
    EXPECT_LE(loss, 0.0005) << tag;
  }
}

// ---------------------------------------------------------------------------
// Golden vectors. Any change of the stream format (state order, word order,
// flush layout, table layout, normalisation-independent coding steps) changes
// these bytes. They were generated once from the code and, for the worked
// example of docs/design.md, checked by hand.
template <class P, int Lanes, std::size_t NumWords>
void check_golden(const std::vector<std::uint32_t>& freqs, const std::vector<std::uint8_t>& symbols,
                  const word_t<P> (&golden)[NumWords]) {
  ecq::encode_table<P> et;
  ASSERT_EQ(et.build(freqs.data(), std::uint32_t(freqs.size())), status::ok);
  status st = status::corrupt_stream;
  const auto words = ecq::interleaved_encode<P, Lanes>(symbols.data(), symbols.size(), et, &st);
  ASSERT_EQ(st, status::ok);
  EXPECT_THAT(words, ElementsAreArray(golden));
  // And the frozen bytes decode back with both decoders.
  ecq::decode_table<P::scale_bits, (P::scale_bits < 8 ? P::scale_bits : 8)> dt;
  ASSERT_EQ(dt.build(freqs.data(), std::uint32_t(freqs.size())), status::ok);
  std::vector<std::uint8_t> fast(symbols.size()), checked(symbols.size());
  ecq::interleaved_decode<P, Lanes>(golden, NumWords, symbols.size(), dt.view(), fast.data());
  EXPECT_EQ(fast, symbols);
  EXPECT_EQ((ecq::interleaved_decode_checked<P, Lanes>(golden, NumWords, symbols.size(), dt.view(), checked.data())),
            status::ok);
  EXPECT_EQ(checked, symbols);
}

// 40 symbols over a 5-symbol alphabet, roughly following the table.
const std::vector<std::uint8_t> golden_symbols = {0, 1, 0, 2, 0, 0, 1, 3, 0, 4, 1, 0, 2, 2, 0, 1, 0, 0, 3, 1,
                                                  0, 2, 1, 0, 0, 4, 0, 1, 2, 0, 3, 0, 1, 0, 0, 2, 1, 0, 4, 0};
const std::vector<std::uint32_t> golden_freqs12 = {1600, 1200, 800, 400, 96};  // sum 4096
const std::vector<std::uint32_t> golden_freqs10 = {400, 300, 200, 100, 24};     // sum 1024

TEST(InterleavedRansGolden, Rans32x16S12N4) {
  const std::uint16_t golden[] = {
      0xa36a, 0x0000, 0xc807, 0x0085, 0x81ae, 0x003d, 0x8b41, 0x0003,  // states of lanes 0..3
      0x9160, 0x3350, 0x2bc0, 0x58d0,                                  // renormalisation words
  };
  check_golden<ecq::rans32x16<12>, 4>(golden_freqs12, golden_symbols, golden);
}

TEST(InterleavedRansGolden, Rans32x8S10N2) {
  const std::uint8_t golden[] = {
      0xf7, 0x08, 0x79, 0x4c, 0xa1, 0xf1, 0xbb, 0x03,  // states of lanes 0, 1
      0x69, 0x89, 0x39, 0x8a, 0x3b, 0x91, 0x96, 0x7c, 0x60,
  };
  check_golden<ecq::rans32x8<10>, 2>(golden_freqs10, golden_symbols, golden);
}

TEST(InterleavedRansGolden, Rans64x32S12N3) {
  // 64-bit states absorb 40 symbols without renormalising; three copies of
  // the message make every lane emit words.
  std::vector<std::uint8_t> symbols;
  for (int k = 0; k < 3; ++k) symbols.insert(symbols.end(), golden_symbols.begin(), golden_symbols.end());
  const std::uint32_t golden[] = {
      0x12ba54f0, 0x00023b2b, 0xffb8f7f3, 0x00023b2a, 0xf9f1439d, 0x00023b2a,  // states of lanes 0..2
      0xcc1f6c81, 0x73dbee02, 0x70efa6a7, 0x4d2aff50, 0x07af5110, 0x1e2558e0,  // renormalisation words
  };
  check_golden<ecq::rans64x32<12>, 3>(golden_freqs12, symbols, golden);
}

// The worked example of docs/design.md: alphabet {a, b, c} = {0, 1, 2} with
// frequencies {8, 6, 2} (M = 16), message "c a c b c", N = 2.
const std::vector<std::uint32_t> example_freqs = {8, 6, 2};
const std::vector<std::uint8_t> example_message = {2, 0, 2, 1, 2};

TEST(InterleavedRansGolden, WorkedExampleRans32x8S4N2) {
  using P = ecq::rans32x8<4>;
  // The final stream of the design document.
  const std::uint8_t golden[] = {
      0x0e, 0x00, 0x00, 0x01,  // lane 0: 0x0100000e
      0xb2, 0xaa, 0xaa, 0x02,  // lane 1: 0x02aaaab2
      0x7e,                    // refill of lane 0 after symbol 0
  };
  check_golden<P, 2>(example_freqs, example_message, golden);

  // The encoder's steps, backwards, as tabulated in the document.
  ecq::encode_table<P> et;
  ASSERT_EQ(et.build(example_freqs.data(), 3), status::ok);
  std::uint8_t buffer[4] = {0, 0, 0, 0};
  std::uint8_t* p = buffer + 4;
  struct step {
    int index;
    std::uint32_t before, after;
    int emitted;
  };
  const step encode_steps[] = {
      {4, 0x00800000, 0x0400000e, 0}, {3, 0x00800000, 0x0155555a, 0}, {2, 0x0400000e, 0x2000007e, 0},
      {1, 0x0155555a, 0x02aaaab2, 0}, {0, 0x2000007e, 0x0100000e, 1},
  };
  std::uint32_t x[2] = {P::lower_bound, P::lower_bound};
  for (const step& s : encode_steps) {
    std::uint32_t& lane = x[s.index % 2];
    ASSERT_EQ(lane, s.before) << "symbol " << s.index;
    std::uint8_t* const before = p;
    lane = ecq::rans_put<P>(lane, et[example_message[std::size_t(s.index)]], &p);
    EXPECT_EQ(lane, s.after) << "symbol " << s.index;
    EXPECT_EQ(before - p, s.emitted) << "symbol " << s.index;
  }
  EXPECT_EQ(p[0], 0x7e) << "the one renormalisation byte";

  // The decoder's steps, forwards: (state before, slot, symbol, state after
  // the decode step, state after refilling).
  ecq::decode_table<4, 2> dt;  // 2-bit symbols: the alphabet has 3
  ASSERT_EQ(dt.build(example_freqs.data(), 3), status::ok);
  using L = ecq::decode_table<4, 2>::layout;
  struct dstep {
    std::uint32_t before, slot, symbol, advanced, refilled;
  };
  const dstep decode_steps[] = {
      {0x0100000e, 14, 2, 0x00200000, 0x2000007e}, {0x02aaaab2, 2, 0, 0x0155555a, 0x0155555a},
      {0x2000007e, 14, 2, 0x0400000e, 0x0400000e}, {0x0155555a, 10, 1, 0x00800000, 0x00800000},
      {0x0400000e, 14, 2, 0x00800000, 0x00800000},
  };
  std::uint32_t y[2] = {ecq::rans_load_state<P>(golden), ecq::rans_load_state<P>(golden + 4)};
  const std::uint8_t* r = golden + 8;
  for (std::size_t i = 0; i < 5; ++i) {
    const dstep& d = decode_steps[i];
    std::uint32_t& lane = y[i % 2];
    ASSERT_EQ(lane, d.before) << "symbol " << i;
    const std::uint32_t slot = ecq::rans_get<P>(lane);
    EXPECT_EQ(slot, d.slot);
    const auto e = dt.view()[slot];
    EXPECT_EQ(L::symbol(e), d.symbol);
    lane = ecq::rans_advance<P>(lane, L::freq(e), L::offset(e));
    EXPECT_EQ(lane, d.advanced);
    lane = ecq::rans_renormalize<P>(lane, [&r] { return *r++; });
    EXPECT_EQ(lane, d.refilled);
  }
  EXPECT_EQ(r, golden + sizeof(golden));
  EXPECT_EQ(y[0], P::lower_bound);
  EXPECT_EQ(y[1], P::lower_bound);
}

TEST(InterleavedRansGolden, WorkedExampleRans32x16S4N2) {
  // The same message with 16-bit words: L = 2^15, and five symbols never grow
  // a state to the renormalisation bound, so the stream is the two states.
  const std::uint16_t golden[] = {0x03fe, 0x0100, 0xaab2, 0x0002};
  check_golden<ecq::rans32x16<4>, 2>(example_freqs, example_message, golden);
}

}  // namespace
