// Tests for ecq/cpu/tensor_ops.hpp (and through it ecq/cpu/tensor_decoder.hpp and
// ecq/cpu/row_dequantizer.hpp): every dispatched path against the core's scalar checked decoder and the schemes'
// reference dequantiser, on random symbols of many distributions and shapes, on real weights when
// ../shared/data exists, and on corrupted containers (statuses included).
#include <ecq/cpu/tensor_ops.hpp>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "schemes_test_weights.hpp"
#include "support/ecq_test_support.hpp"

namespace {

using ecq::status;

/// The CPU paths this machine can run, automatic first.
std::vector<ecq::cpu_path> runnable_paths() {
  std::vector<ecq::cpu_path> p{ecq::cpu_path::automatic, ecq::cpu_path::scalar};
  for (ecq::cpu_path q : {ecq::cpu_path::avx2, ecq::cpu_path::avx512, ecq::cpu_path::neon})
    if (ecq::cpu_path_supported(q)) p.push_back(q);
  return p;
}

struct coded {
  std::vector<std::uint16_t> symbols;
  ecq::encoded_tensor tensor;
};

/// rows x spr symbols of a geometric-like distribution over `alphabet` (skew s), coded with o.
coded make_coded(std::uint64_t rows, std::uint64_t spr, std::uint32_t alphabet, double skew, ecq::coding_options o,
                 std::uint32_t seed) {
  coded c;
  std::mt19937 rng(seed);
  std::vector<double> weights(alphabet);
  for (std::uint32_t s = 0; s < alphabet; ++s) weights[s] = std::pow(skew, double(s % 64)) + 1e-3;
  std::discrete_distribution<std::uint32_t> dist(weights.begin(), weights.end());
  c.symbols.resize(std::size_t(rows * spr));
  for (auto& s : c.symbols) s = std::uint16_t(dist(rng));
  ecq::tensor_description d;
  d.rows = rows;
  d.cols = spr;
  d.symbols_per_row = spr;
  d.alphabet_size = alphabet;
  EXPECT_EQ(ecq_test::encode(c.symbols.data(), d, o, &c.tensor), status::ok);
  return c;
}

ecq::coding_options options(int scale_bits, std::uint32_t lanes, std::uint32_t tile_rows, std::uint64_t chunk) {
  ecq::coding_options o;
  o.scale_bits = scale_bits;
  o.lanes = lanes;
  o.tile_rows = tile_rows;
  o.chunk_symbols = chunk;
  return o;
}

TEST(DecodeToSymbols, EqualsTheCheckedDecoderOnEveryPathAndShape) {
  struct shape {
    std::uint64_t rows, spr;
    std::uint32_t lanes, tile_rows;
    std::uint64_t chunk;
  };
  const shape shapes[] = {{37, 300, 8, 16, 0},   {100, 77, 16, 32, 32}, {64, 256, 32, 64, 0},
                          {130, 129, 64, 64, 50}, {5, 1000, 1, 1, 0},    {200, 40, 32, 96, 17},
                          {33, 64, 64, 64, 0},    {1, 5000, 16, 16, 0}};
  std::uint32_t seed = 1;
  for (const shape& sh : shapes)
    for (std::uint32_t alphabet : {2u, 16u, 200u, 256u, 700u})
      for (int s : {7, 8, 10, 12, 14}) {
        if (alphabet > (1u << ecq::decode_symbol_bits(s))) continue;
        coded c = make_coded(sh.rows, sh.spr, alphabet, alphabet > 16 ? 0.93 : 0.6,
                             options(s, sh.lanes, sh.tile_rows, sh.chunk), seed++);
        for (ecq::cpu_path p : runnable_paths())
          for (unsigned threads : {1u, 2u}) {
            std::vector<std::uint16_t> out(c.symbols.size(), 0xffff);
            ecq::cpu_options o;
            o.path = p;
            o.threads = threads;
            ASSERT_EQ(ecq::decode_to_symbols(c.tensor, out.data(), out.size(), o), status::ok);
            ASSERT_EQ(out, c.symbols) << "rows " << sh.rows << " lanes " << sh.lanes << " alphabet " << alphabet
                                      << " S " << s << " path " << ecq::cpu_path_name(p);
            std::vector<std::uint8_t> bytes(c.symbols.size(), 0xee);
            if (alphabet > 256) {
              ASSERT_EQ(ecq::decode_to_symbols(c.tensor, bytes.data(), bytes.size(), o), status::unsupported_parameters);
              continue;
            }
            ASSERT_EQ(ecq::decode_to_symbols(c.tensor, bytes.data(), bytes.size(), o), status::ok);
            ASSERT_TRUE(std::equal(bytes.begin(), bytes.end(), c.symbols.begin()))
                << "bytes: rows " << sh.rows << " lanes " << sh.lanes << " alphabet " << alphabet << " S " << s
                << " path " << ecq::cpu_path_name(p);
          }
      }
}

TEST(DecodeToSymbols, PicksASimdKernelForTheSimdConfigurations) {
  if (!ecq::cpu_path_supported(ecq::cpu_path::avx2) && !ecq::cpu_path_supported(ecq::cpu_path::neon))
    GTEST_SKIP() << "no SIMD path on this CPU";
  coded c = make_coded(64, 256, 16, 0.6, options(12, 32, 32, 0), 7);
  ecq::tensor_decoder d;
  ASSERT_EQ(d.build(c.tensor), status::ok);
  EXPECT_NE(d.kernel(), ecq::cpu_kernel::scalar);
  ASSERT_EQ(d.build(c.tensor, ecq::cpu_path::scalar), status::ok);
  EXPECT_EQ(d.kernel(), ecq::cpu_kernel::scalar);
  coded wide = make_coded(64, 256, 16, 0.6, options(14, 32, 32, 0), 8);
  ASSERT_EQ(d.build(wide.tensor), status::ok);
  EXPECT_EQ(d.kernel(), ecq::cpu_kernel::scalar) << "ScaleBits 14 has no 32-bit SIMD table";
  if (ecq::cpu_path_supported(ecq::cpu_path::avx512)) {
    coded narrow = make_coded(64, 256, 16, 0.6, options(8, 64, 64, 0), 9);
    ASSERT_EQ(d.build(narrow.tensor), status::ok);
    EXPECT_EQ(d.kernel(), ecq::cpu_kernel::avx512_permute) << "16 symbols at ScaleBits 8: no gather";
  }
}

TEST(DecodeToSymbols, RejectsBadArguments) {
  coded c = make_coded(40, 50, 16, 0.6, options(11, 8, 8, 0), 3);
  std::vector<std::uint16_t> out(c.symbols.size());
  EXPECT_EQ(ecq::decode_to_symbols(c.tensor, out.data(), out.size() - 1), status::output_too_small);
  EXPECT_EQ(ecq::decode_to_symbols(ecq::encoded_tensor{}, out.data(), out.size()), status::invalid_argument);
  std::vector<std::uint8_t> bytes(c.symbols.size());
  EXPECT_EQ(ecq::decode_to_symbols(c.tensor, bytes.data(), bytes.size() - 1), status::output_too_small);
  EXPECT_EQ(ecq::decode_to_symbols(ecq::encoded_tensor{}, bytes.data(), bytes.size()), status::invalid_argument);
  coded wide = make_coded(10, 20, 300, 0.95, options(12, 8, 8, 0), 4);
  EXPECT_EQ(ecq::decode_to_symbols(wide.tensor, bytes.data(), 0), status::unsupported_parameters)
      << "300 symbols do not fit a byte (checked before the capacity)";
}

/// Flips payload bytes (and trailing block bytes) of a container and reopens it without the checksum, so the
/// corrupt streams reach the decoders.
TEST(DecodeToSymbols, CorruptStreamsGiveTheCheckedDecodersStatus) {
  std::mt19937 rng(11);
  int mismatched_statuses = 0, failures = 0;
  for (int trial = 0; trial < 300; ++trial) {
    const std::uint32_t lanes = std::uint32_t(8) << (trial % 4);  // 8, 16, 32, 64
    // ScaleBits 7-12 and alphabets of 16 or 256 run the SIMD kernels (7-8 with 16 symbols the permute kernel),
    // ScaleBits 13-14 and 300 symbols the core step.
    const std::uint32_t alphabet = trial % 3 == 0 ? 16 : trial % 3 == 1 ? 256 : 300;
    const int scale_bits = alphabet == 16 ? 7 + trial % 8 : 9 + trial % 6;
    coded c = make_coded(70 + trial % 50, 90 + trial % 70, alphabet, alphabet == 16 ? 0.6 : 0.95,
                         options(scale_bits, lanes, lanes * 2, trial % 7 == 0 ? 40 : 0), std::uint32_t(trial));
    std::vector<std::uint8_t> bytes(c.tensor.data(), c.tensor.data() + c.tensor.size());
    const std::size_t payload = c.tensor.view().payload_offset;
    const int flips = 1 + trial % 4;
    for (int f = 0; f < flips; ++f) {
      std::uniform_int_distribution<std::size_t> at(payload, bytes.size() - 9);
      bytes[at(rng)] ^= std::uint8_t(1u << (rng() % 8));
    }
    ecq::encoded_tensor t;
    // A flip in a block's zero padding or its index is caught by open (bad_offset): only streams go on.
    if (ecq::encoded_tensor::open(bytes.data(), bytes.size(), &t, ecq::open_options{false}) != status::ok) continue;
    std::vector<std::uint16_t> ref(c.symbols.size()), out(c.symbols.size());
    const status expected = ecq_test::decode_checked(t, ref.data(), ref.size());
    for (ecq::cpu_path p : runnable_paths()) {
      ecq::cpu_options o;
      o.path = p;
      o.threads = trial % 2 ? 2 : 1;
      const status got = ecq::decode_to_symbols(t, out.data(), out.size(), o);
      mismatched_statuses += got != expected;
      if (expected == status::ok) {
        EXPECT_EQ(out, ref);
      }
      if (alphabet <= 256) {
        std::vector<std::uint8_t> bytes(ref.size());
        mismatched_statuses += ecq::decode_to_symbols(t, bytes.data(), bytes.size(), o) != expected;
        if (expected == status::ok) {
          EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), ref.begin()));
        }
      }
    }
    failures += expected != status::ok;
  }
  EXPECT_EQ(mismatched_statuses, 0);
  EXPECT_GT(failures, 100) << "the corruption should break most streams";
}

/// A container borrowed from memory just before a PROT_NONE page: no kernel may read past it. A container's
/// size is 8 modulo 16 and it must start 16-byte aligned, so it ends 8 bytes before the page (its last block's
/// stream ends before the 8-byte checksum and any block padding).
TEST(DecodeToSymbols, StaysInsideAContainerThatEndsAtAGuardPage) {
  const long page = sysconf(_SC_PAGESIZE);
  for (std::uint32_t lanes : {8u, 16u, 32u, 64u}) {
    coded c = make_coded(lanes * 3 + 1, 333, 16, 0.6, options(12, lanes, lanes, 0), lanes);
    const std::size_t size = c.tensor.size();
    const std::size_t span = (size + 8 + std::size_t(page) - 1) / std::size_t(page) * std::size_t(page);
    // The container ends 8 bytes before the guard page: containers are 16-byte aligned with an 8-byte checksum tail.
    void* mem = mmap(nullptr, span + std::size_t(page), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ASSERT_NE(mem, MAP_FAILED);
    auto* base = static_cast<std::uint8_t*>(mem);
    ASSERT_EQ(mprotect(base + span, std::size_t(page), PROT_NONE), 0);
    std::uint8_t* start = base + span - size - 8;
    ASSERT_EQ(reinterpret_cast<std::uintptr_t>(start) % 16, 0u);
    std::memcpy(start, c.tensor.data(), size);
    ecq::encoded_tensor t;
    ASSERT_EQ(ecq::encoded_tensor::open_borrowed(start, size, &t), status::ok);
    std::vector<std::uint16_t> out(c.symbols.size());
    for (ecq::cpu_path p : runnable_paths()) {
      ecq::cpu_options o;
      o.path = p;
      ASSERT_EQ(ecq::decode_to_symbols(t, out.data(), out.size(), o), status::ok);
      EXPECT_EQ(out, c.symbols);
      std::vector<std::uint8_t> bytes(c.symbols.size());
      ASSERT_EQ(ecq::decode_to_symbols(t, bytes.data(), bytes.size(), o), status::ok);
      EXPECT_TRUE(std::equal(bytes.begin(), bytes.end(), c.symbols.begin()));
    }
    munmap(mem, span + std::size_t(page));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Schemes: decode_to_float / decode_to_bf16 / gemv against the reference dequantiser.

std::vector<ecq_test::test_tensor> test_tensors() {
  std::vector<ecq_test::test_tensor> v{ecq_test::synthetic_tensor(96, 320, 1), ecq_test::synthetic_tensor(37, 200, 2)};
  int taken = 0;  // a few real matrices (stories260K: 64-wide attention and 172-wide FFN ones) when ../shared exists
  for (auto& t : ecq_test::real_tensors("stories260K.safetensors"))
    if (t.rows > 1 && t.cols >= 64 && taken < 3 && (taken == 0 || t.cols != v.back().cols)) {
      v.push_back(std::move(t));
      ++taken;
    }
  return v;
}

ecq::encoded_tensor encode_with(const std::string& scheme, const ecq_test::test_tensor& w, ecq::layout_goal goal,
                                ecq::quantized_tensor* q) {
  ecq::scheme_spec spec;
  EXPECT_EQ(ecq::parse_scheme(scheme, &spec), status::ok) << scheme;
  EXPECT_EQ(ecq::quantize(spec, w.w.data(), w.rows, w.cols, q), status::ok) << scheme;
  ecq::encoded_tensor t;
  EXPECT_EQ(ecq_test::encode_quantized(*q, ecq::choose_coding_options(*q, goal), &t), status::ok) << scheme;
  return t;
}

const char* const schemes[] = {"bf16",          "f16",          "affine4-g64",  "affine4-g64-p2", "affine4-g64-p4r2",
                               "affine4-g64-p3", "affine8-g32",  "affine3-g128-bf16-p4r1", "codebook-nf4-g64",
                               "codebook-nf4-g64-p2", "uniform-sqnr20", "uniform-sqnr25-row"};

TEST(DecodeToFloat, EqualsTheReferenceDequantiserBitForBit) {
  for (const auto& w : test_tensors())
    for (const char* scheme : schemes)
      for (ecq::layout_goal goal : {ecq::layout_goal::storage, ecq::layout_goal::kernel}) {
        ecq::quantized_tensor q;
        const ecq::encoded_tensor t = encode_with(scheme, w, goal, &q);
        std::vector<float> ref;
        ASSERT_EQ(ecq::dequantize(q, &ref), status::ok);
        for (unsigned threads : {1u, 2u}) {
          ecq::cpu_options o;
          o.threads = threads;
          std::vector<float> out(ref.size(), -1.0f);
          ASSERT_EQ(ecq::decode_to_float(t, out.data(), out.size(), o), status::ok) << scheme;
          ASSERT_EQ(std::memcmp(out.data(), ref.data(), ref.size() * 4), 0) << scheme << " on " << w.name;
          std::vector<std::uint16_t> h(ref.size());
          ASSERT_EQ(ecq::decode_to_bf16(t, h.data(), h.size(), o), status::ok);
          for (std::size_t i = 0; i < ref.size(); ++i)
            ASSERT_EQ(h[i], ecq::float_to_bf16(ref[i])) << scheme << " weight " << i;
        }
        std::vector<float> out(ref.size());
        EXPECT_EQ(ecq::decode_to_float(t, out.data(), out.size() - 1), status::output_too_small);
      }
}

// Outputs of at least streaming_output_bytes go out with non-temporal stores (the SIMD row dequantisers' own, or
// detail::copy_streaming from a per-thread buffer): 2050 columns make every row start at a different alignment and
// end in a tail; affine codes one and two a symbol, and the lossless bf16 scheme.
TEST(DecodeToFloat, LargeOutputsGoOutWithNonTemporalStoresBitForBit) {
  const ecq_test::test_tensor w = ecq_test::synthetic_tensor(2050, 2050, 5);
  ASSERT_GE(w.w.size() * sizeof(std::uint16_t), ecq::detail::streaming_output_bytes) << "bf16 output must stream too";
  for (const char* scheme : {"affine4-g64", "affine4-g64-p2", "bf16"})
    for (std::uint32_t lanes : {0u, 64u}) {  // the storage layout's (8 lanes here), and 64 (the AVX-512 scatter sink)
      SCOPED_TRACE(std::string(scheme) + ", lanes " + std::to_string(lanes));
      ecq::quantized_tensor q;
      ecq::encoded_tensor t = encode_with(scheme, w, ecq::layout_goal::storage, &q);
      if (lanes != 0) {
        ecq::coding_options o = ecq::choose_coding_options(q, ecq::layout_goal::storage);
        o.lanes = lanes;
        o.tile_rows = 128;
        ASSERT_EQ(ecq_test::encode_quantized(q, o, &t), status::ok);
      }
      std::vector<float> ref;
      ASSERT_EQ(ecq::dequantize(q, &ref), status::ok);
      std::vector<float> out(ref.size() + 1, -1.0f);
      ASSERT_EQ(ecq::decode_to_float(t, out.data() + 1, ref.size()), status::ok);  // rows start 4 bytes off 16
      ASSERT_EQ(std::memcmp(out.data() + 1, ref.data(), ref.size() * 4), 0);
      EXPECT_EQ(out[0], -1.0f) << "nothing before the output is written";
      std::vector<std::uint16_t> h(ref.size());
      ASSERT_EQ(ecq::decode_to_bf16(t, h.data(), h.size()), status::ok);
      for (std::size_t i = 0; i < ref.size(); ++i) ASSERT_EQ(h[i], ecq::float_to_bf16(ref[i])) << "weight " << i;
    }
}

// The SIMD row dequantisers (ecq/cpu/detail/row_dequant_simd.hpp) on every path and block layout (blocks decoded
// into rows of bytes by every kernel, 64-lane ones by the AVX-512 scatter-as-you-decode sink): outputs at 0 and 4
// bytes off a 64-byte line, whole and partial row groups, chunks; the schemes with a kernel and one without, bit for
// bit against the reference dequantiser.
TEST(DecodeToFloat, EveryPathAndLayoutEqualsTheReference) {
  struct layout {
    std::uint32_t lanes, tile_rows;
    std::uint64_t chunk;
  };
  const layout layouts[] = {{64, 128, 0}, {64, 64, 70}, {32, 64, 0}, {16, 32, 33}, {8, 8, 0}};
  const ecq_test::test_tensor tensors[] = {ecq_test::synthetic_tensor(130, 256, 7),
                                           ecq_test::synthetic_tensor(65, 333, 8)};
  for (const auto& w : tensors)
    for (const char* scheme : {"affine4-g64", "affine4-g64-p2", "affine2-g8-p3", "affine3-g128-bf16", "bf16",
                               "codebook-nf4-g64"})
      for (const layout& l : layouts) {
        ecq::scheme_spec spec;
        ASSERT_EQ(ecq::parse_scheme(scheme, &spec), status::ok);
        ecq::quantized_tensor q;
        ASSERT_EQ(ecq::quantize(spec, w.w.data(), w.rows, w.cols, &q), status::ok);
        ecq::coding_options o = ecq::choose_coding_options(q, ecq::layout_goal::storage);
        o.lanes = l.lanes;
        o.tile_rows = l.tile_rows;
        o.chunk_symbols = l.chunk == 0 ? q.symbols_per_row : std::min<std::uint64_t>(l.chunk, q.symbols_per_row);
        ecq::encoded_tensor t;
        ASSERT_EQ(ecq_test::encode_quantized(q, o, &t), status::ok);
        std::vector<float> ref;
        ASSERT_EQ(ecq::dequantize(q, &ref), status::ok);
        for (ecq::cpu_path p : runnable_paths())
          for (std::size_t offset : {0u, 1u}) {
            ecq::cpu_options co;
            co.path = p;
            co.threads = offset == 0 ? 1 : 2;
            const std::string where = std::string(scheme) + " on " + w.name + ", " + std::to_string(l.lanes) +
                                      " lanes, chunk " + std::to_string(l.chunk) + ", " + ecq::cpu_path_name(p) +
                                      ", offset " + std::to_string(offset);
            std::vector<float> space(ref.size() + 32, -1.0f);
            float* out = space.data();
            while (reinterpret_cast<std::uintptr_t>(out) % 64 != 0) ++out;
            out += offset;
            ASSERT_EQ(ecq::decode_to_float(t, out, ref.size(), co), status::ok) << where;
            ASSERT_EQ(std::memcmp(out, ref.data(), ref.size() * 4), 0) << where;
            for (float* x = space.data(); x < out; ++x) ASSERT_EQ(*x, -1.0f) << where;
            for (float* x = out + ref.size(); x < space.data() + space.size(); ++x) ASSERT_EQ(*x, -1.0f) << where;
            std::vector<std::uint16_t> hs(ref.size() + 64, 0x5a5a);
            std::uint16_t* h = hs.data();
            while (reinterpret_cast<std::uintptr_t>(h) % 64 != 0) ++h;
            h += 2 * offset;
            ASSERT_EQ(ecq::decode_to_bf16(t, h, ref.size(), co), status::ok) << where;
            for (std::size_t i = 0; i < ref.size(); ++i)
              ASSERT_EQ(h[i], ecq::float_to_bf16(ref[i])) << where << " weight " << i;
            for (std::uint16_t* x = h + ref.size(); x < hs.data() + hs.size(); ++x) ASSERT_EQ(*x, 0x5a5a) << where;
          }
      }
}

/// rows x cols bf16 patterns of synthetic weights, coded losslessly with the bf16 scheme in the given layout.
struct bf16_coded {
  std::vector<std::uint16_t> patterns;
  ecq::encoded_tensor tensor;
};
bf16_coded make_bf16(std::uint64_t rows, std::uint64_t cols, std::uint32_t lanes, std::uint32_t tile_rows,
                     std::uint64_t chunk, std::uint32_t seed) {
  bf16_coded c;
  const ecq_test::test_tensor w = ecq_test::synthetic_tensor(rows, cols, seed);
  c.patterns.resize(w.w.size());
  for (std::size_t i = 0; i < w.w.size(); ++i) c.patterns[i] = ecq::float_to_bf16(w.w[i]);
  ecq::quantized_tensor q;
  ecq::float16_encode(c.patterns.data(), rows, cols, ecq::float16_format::bfloat16, &q);
  ecq::coding_options o = ecq::choose_coding_options(q, ecq::layout_goal::storage);
  if (lanes != 0) {
    o.lanes = lanes;
    o.tile_rows = tile_rows;
    o.chunk_symbols = chunk;
  }
  EXPECT_EQ(ecq_test::encode_quantized(q, o, &c.tensor), status::ok);
  return c;
}

/// 64-lane blocks on AVX-512 are scattered to rows as the kernel decodes them (row_scatter_sink64): pieces cut at
/// the output's 64-byte lines, so every alignment of the output, every column count (tails of 1-63 columns, a
/// first piece shorter than 64) and padding rows are exercised, with cached and non-temporal stores, into 16-bit
/// symbols, bytes and joined bf16 patterns; nothing outside the block's rows may be written.
TEST(DecodeBlock, SixtyFourLanesScatterAsTheyDecodeAtAnyAlignment) {
  if (!ecq::cpu_path_supported(ecq::cpu_path::avx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  struct shape {
    std::uint64_t rows, cols;
    std::uint32_t tile_rows;
    std::uint64_t chunk;
  };
  const shape shapes[] = {{128, 4096, 128, 0}, {100, 200, 128, 0}, {64, 64, 64, 0},  {65, 130, 128, 70},
                          {1, 1, 64, 0},       {130, 127, 64, 0},  {64, 1000, 64, 333}};
  std::uint32_t seed = 40;
  for (const shape& sh : shapes)
    for (std::uint32_t alphabet : {16u, 256u}) {
      const coded c = make_coded(sh.rows, sh.cols, alphabet, alphabet == 16 ? 0.6 : 0.95,
                                 options(alphabet == 16 ? 7 : 12, 64, sh.tile_rows, sh.chunk), seed++);
      const bf16_coded h = make_bf16(sh.rows, sh.cols, 64, sh.tile_rows, sh.chunk, seed++);
      ecq::row_dequantizer rd;
      ASSERT_EQ(rd.build(h.tensor), status::ok);
      ecq::tensor_decoder d, dh;
      ASSERT_EQ(d.build(c.tensor, ecq::cpu_path::avx512), status::ok);
      ASSERT_EQ(dh.build(h.tensor, ecq::cpu_path::avx512), status::ok);
      const ecq::tensor_geometry& g = c.tensor.geometry();
      ecq::block_scratch scratch;
      for (std::size_t offset : {0u, 1u, 7u, 31u, 32u})
        for (ecq::detail::row_stores stores : {ecq::detail::row_stores::cached, ecq::detail::row_stores::streaming}) {
          const std::size_t n = std::size_t(sh.rows * sh.cols), guard = 64;
          std::vector<std::uint16_t> space16(n + 2 * guard + 64, 0xabcd), spaceh(space16);
          std::vector<std::uint8_t> space8(n + 2 * guard + 64, 0xab);
          std::uint16_t* out16 = space16.data() + guard;
          std::uint16_t* outh = spaceh.data() + guard;
          std::uint8_t* out8 = space8.data() + guard;
          while (reinterpret_cast<std::uintptr_t>(out16) % 64 != 0) ++out16, ++outh;
          while (reinterpret_cast<std::uintptr_t>(out8) % 64 != 0) ++out8;
          out16 += offset, outh += offset, out8 += offset;
          const ecq::encoded_tensor_view v = c.tensor.view();
          for (std::uint64_t tile = 0; tile < g.num_tiles(); ++tile)
            for (std::uint64_t chunk = 0; chunk < g.num_chunks(); ++chunk) {
              const ecq::block_view b = v.block(tile, chunk);
              const std::size_t at = std::size_t(b.first_row * sh.cols + b.first_column);
              ASSERT_EQ(d.decode_block(tile, chunk, out16 + at, std::size_t(sh.cols), scratch, stores), status::ok);
              ASSERT_EQ(d.decode_block(tile, chunk, out8 + at, std::size_t(sh.cols), scratch, stores), status::ok);
              ASSERT_EQ(dh.decode_block_float16(tile, chunk, rd.bf16_raw_bytes() + at, std::size_t(sh.cols), outh + at,
                                                std::size_t(sh.cols), scratch, stores),
                        status::ok);
            }
          const std::string where = std::to_string(sh.rows) + " x " + std::to_string(sh.cols) + ", chunk " +
                                    std::to_string(sh.chunk) + ", alphabet " + std::to_string(alphabet) + ", offset " +
                                    std::to_string(offset) +
                                    (stores == ecq::detail::row_stores::streaming ? ", streaming" : ", cached");
          ASSERT_TRUE(std::equal(c.symbols.begin(), c.symbols.end(), out16)) << where;
          ASSERT_TRUE(std::equal(c.symbols.begin(), c.symbols.end(), out8)) << where;
          ASSERT_TRUE(std::equal(h.patterns.begin(), h.patterns.end(), outh)) << where;
          for (std::uint16_t* p = space16.data(); p < out16; ++p) ASSERT_EQ(*p, 0xabcd) << where;
          for (std::uint16_t* p = out16 + n; p < space16.data() + space16.size(); ++p) ASSERT_EQ(*p, 0xabcd) << where;
          for (std::uint8_t* p = space8.data(); p < out8; ++p) ASSERT_EQ(*p, 0xab) << where;
          for (std::uint8_t* p = out8 + n; p < space8.data() + space8.size(); ++p) ASSERT_EQ(*p, 0xab) << where;
        }
    }
}

TEST(DecodeToBf16, GivesTheStoredPatternsOfTheLosslessScheme) {
  // The patterns are joined with their raw bytes as the rows are scattered: 64 lanes on AVX-512 (64-column
  // pieces, tails of 1-63 columns, partial row groups), 16-32 lanes through SSE2 squares, 8 lanes scalar.
  struct shape {
    std::uint64_t rows, cols;
    std::uint32_t lanes, tile_rows;
    std::uint64_t chunk;
  };
  const shape shapes[] = {{70, 130, 0, 0, 0},     {130, 4100, 64, 128, 0}, {64, 64, 64, 64, 0}, {65, 200, 64, 64, 70},
                          {33, 1000, 32, 64, 0},  {40, 300, 16, 16, 33},   {9, 77, 8, 8, 0},    {1, 129, 64, 64, 0}};
  std::uint32_t seed = 5;
  for (const shape& sh : shapes) {
    const bf16_coded c = make_bf16(sh.rows, sh.cols, sh.lanes, sh.tile_rows, sh.chunk, seed++);
    for (ecq::cpu_path p : runnable_paths())
      for (unsigned threads : {1u, 2u}) {
        ecq::cpu_options o;
        o.path = p;
        o.threads = threads;
        std::vector<std::uint16_t> h(c.patterns.size(), 0x5555);
        ASSERT_EQ(ecq::decode_to_bf16(c.tensor, h.data(), h.size(), o), status::ok);
        ASSERT_EQ(h, c.patterns) << sh.rows << " x " << sh.cols << ", " << sh.lanes << " lanes, path "
                                 << ecq::cpu_path_name(p);
        EXPECT_EQ(ecq::check_decode(c.tensor, o), status::ok);
      }
    std::vector<std::uint16_t> h(c.patterns.size());
    EXPECT_EQ(ecq::decode_to_bf16(c.tensor, h.data(), h.size() - 1), status::output_too_small);
  }
}

/// check_decode and the joined bf16 path report what the checked decoder reports on corrupt streams.
TEST(CheckDecode, CorruptStreamsGiveTheCheckedDecodersStatus) {
  std::mt19937 rng(12);
  int mismatched_statuses = 0, failures = 0;
  for (int trial = 0; trial < 120; ++trial) {
    const std::uint32_t lanes = std::uint32_t(8) << (trial % 4);
    const bf16_coded c = make_bf16(50 + trial % 40, 60 + trial % 90, lanes, lanes * 2, trial % 5 == 0 ? 40 : 0,
                                   std::uint32_t(100 + trial));
    std::vector<std::uint8_t> bytes(c.tensor.data(), c.tensor.data() + c.tensor.size());
    const ecq::encoded_tensor_view v = c.tensor.view();
    // Flip bits of the block streams only (the raw plane after them is not checked by decoding).
    const std::size_t payload = v.payload_offset, end = payload + std::size_t(v.block(0, 0).size_bytes);
    for (int f = 0; f < 1 + trial % 3; ++f) {
      std::uniform_int_distribution<std::size_t> at(payload, end - 1);
      bytes[at(rng)] ^= std::uint8_t(1u << (rng() % 8));
    }
    ecq::encoded_tensor t;
    if (ecq::encoded_tensor::open(bytes.data(), bytes.size(), &t, ecq::open_options{false}) != status::ok) continue;
    std::vector<std::uint16_t> ref(c.patterns.size()), out(c.patterns.size());
    const status expected = ecq_test::decode_checked(t, ref.data(), ref.size());
    for (ecq::cpu_path p : runnable_paths()) {
      ecq::cpu_options o;
      o.path = p;
      o.threads = trial % 2 ? 2 : 1;
      mismatched_statuses += ecq::check_decode(t, o) != expected;
      mismatched_statuses += ecq::decode_to_bf16(t, out.data(), out.size(), o) != expected;
      if (expected == status::ok) {
        EXPECT_EQ(out, c.patterns);
      }
      std::vector<float> w(c.patterns.size());
      mismatched_statuses += ecq::decode_to_float(t, w.data(), w.size(), o) != expected;
      if (expected == status::ok) {
        for (std::size_t i = 0; i < w.size(); ++i)
          ASSERT_EQ(ecq::float_to_bits(w[i]), std::uint32_t(c.patterns[i]) << 16);
      }
    }
    failures += expected != status::ok;
  }
  EXPECT_EQ(mismatched_statuses, 0);
  EXPECT_GT(failures, 40) << "the corruption should break most streams";
  EXPECT_EQ(ecq::check_decode(ecq::encoded_tensor{}), status::invalid_argument);
}

/// Scatters rows the way `path` says: 0 scatter_row_group (SSE2 squares and scalar edges), 1 the AVX-512 pieces
/// of 64 lanes (scatter_piece64_avx512, 64 columns at a time, the last piece shorter) with `stores`.
template <class T>
void scatter_by(int path, const std::vector<std::uint8_t>& src, std::uint64_t columns, std::uint32_t lanes,
                std::uint32_t rows, T* dest, std::size_t stride, ecq::detail::raw_rows raw,
                ecq::detail::row_stores stores) {
  if (path == 0) return ecq::detail::scatter_row_group(src.data(), columns, lanes, rows, dest, stride, raw);
#if ECQ_HAS_X86_KERNELS()
  for (std::uint64_t c1 = 0; c1 < columns; c1 += 64) {
    const std::uint32_t count = std::uint32_t(columns - c1 < 64 ? columns - c1 : 64);
    const ecq::detail::raw_rows piece_raw{raw.bytes != nullptr ? raw.bytes + c1 : nullptr, raw.stride};
    ecq::detail::scatter_piece64_avx512(src.data() + c1 * 64, rows, count, dest + c1, stride, piece_raw, stores);
  }
  _mm_sfence();
#else
  (void)stores;
#endif
}

/// Every scatter path (AVX-512 64-lane pieces, SSE2 squares, scalar) equals the definition, 16-bit symbols, joined
/// patterns and bytes, on random bytes, for any columns, rows and strides, and writes nothing outside the rows.
TEST(RowGroupScatter, EveryPathEqualsTheDefinition) {
  std::mt19937 rng(21);
  const bool avx512 = ecq::cpu_path_supported(ecq::cpu_path::avx512);
  for (std::uint32_t lanes : {8u, 16u, 32u, 64u})
    for (std::uint64_t columns : {1u, 15u, 16u, 63u, 64u, 65u, 130u, 1000u})
      for (std::uint32_t rows : {lanes, lanes - 1, 1u, lanes / 2 + 1})
        for (std::size_t pad : {0u, 3u, 64u})
          for (bool joined : {false, true}) {
            const std::size_t stride = std::size_t(columns) + pad;
            std::vector<std::uint8_t> src(std::size_t(columns) * lanes), raw(rows * stride);
            for (auto& b : src) b = std::uint8_t(rng());
            for (auto& b : raw) b = std::uint8_t(rng());
            const ecq::detail::raw_rows r{joined ? raw.data() : nullptr, stride};
            std::vector<std::uint16_t> want(lanes * stride, 0xabcd);
            for (std::size_t row = 0; row < rows; ++row)
              for (std::size_t col = 0; col < columns; ++col) {
                const std::uint8_t symbol = src[col * lanes + row];
                want[row * stride + col] = joined ? ecq::float16_split::join(symbol, raw[row * stride + col]) : symbol;
              }
            for (int path : {0, 1}) {
              if (path == 1 && (!avx512 || lanes != 64)) continue;
              for (ecq::detail::row_stores stores : {ecq::detail::row_stores::cached, ecq::detail::row_stores::streaming}) {
                // 64-byte aligned, so that the streaming stores are taken where a row's pieces are aligned.
                std::vector<std::uint16_t> space(want.size() + 32, 0xabcd);
                std::uint16_t* got = space.data();
                while (reinterpret_cast<std::uintptr_t>(got) % 64 != 0) ++got;
                scatter_by(path, src, columns, lanes, rows, got, stride, r, stores);
                ASSERT_TRUE(std::equal(want.begin(), want.end(), got))
                    << lanes << " lanes, " << columns << " columns, " << rows << " rows, stride " << stride
                    << (joined ? ", joined" : "") << (path == 1 ? ", avx512" : "")
                    << (stores == ecq::detail::row_stores::streaming ? ", streaming" : "");
                if (joined) continue;
                std::vector<std::uint8_t> bytes(want.size() + 64, 0xcd);
                std::uint8_t* got8 = bytes.data();
                while (reinterpret_cast<std::uintptr_t>(got8) % 64 != 0) ++got8;
                scatter_by(path, src, columns, lanes, rows, got8, stride, {}, stores);
                for (std::size_t i = 0; i < want.size(); ++i)
                  ASSERT_EQ(got8[i], want[i] == 0xabcd ? 0xcd : want[i])
                      << "bytes: " << lanes << " lanes, " << columns << " columns, " << rows << " rows, value " << i
                      << (path == 1 ? ", avx512" : "");
              }
            }
          }
}

TEST(Gemv, MatchesTheFloat64ReferenceWithinTheDocumentedBound) {
  std::mt19937 rng(3);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  std::vector<ecq_test::test_tensor> tensors = test_tensors();
  tensors.push_back(ecq_test::synthetic_tensor(64, 131, 6));  // odd columns: a padded last pair per row
  for (const auto& w : tensors)
    for (const char* scheme : schemes)
      for (std::size_t batch : {std::size_t(1), std::size_t(3), std::size_t(8)})
        for (ecq::cpu_path path : runnable_paths()) {
        if (path == ecq::cpu_path::scalar && batch == 3) continue;  // the scalar path is the same for every batch
        ecq::quantized_tensor q;
        const ecq::layout_goal goal = batch == 3 ? ecq::layout_goal::storage : ecq::layout_goal::kernel;
        const ecq::encoded_tensor t = encode_with(scheme, w, goal, &q);
        std::vector<float> ref;
        ASSERT_EQ(ecq::dequantize(q, &ref), status::ok);
        std::vector<float> x(batch * w.cols);
        for (float& v : x) v = n01(rng);
        std::vector<float> y(batch * w.rows, -7.0f);
        ecq::cpu_options o;
        o.threads = 2;
        o.path = path;
        ASSERT_EQ(ecq::gemv(t, x.data(), batch, y.data(), o), status::ok);
        for (std::size_t b = 0; b < batch; ++b)
          for (std::uint64_t r = 0; r < w.rows; ++r) {
            double exact = 0.0, magnitude = 0.0;
            for (std::uint64_t c = 0; c < w.cols; ++c) {
              const double p = double(ref[r * w.cols + c]) * double(x[b * w.cols + c]);
              exact += p;
              magnitude += std::fabs(p);
            }
            const double bound = double(w.cols) * std::ldexp(1.0, -24) * magnitude;
            ASSERT_LE(std::fabs(double(y[b * w.rows + r]) - exact), bound)
                << scheme << " row " << r << " batch " << b << " on " << w.name << " path "
                << ecq::cpu_path_name(path);
          }
        }
}

/// An affine tensor in the SIMD layouts the fused loop sees: `lanes` lanes, rows that pad the last row group, and
/// chunks that start inside a side-data group.
ecq::encoded_tensor encode_affine_layout(const std::string& scheme, const ecq_test::test_tensor& w, std::uint32_t lanes,
                                         std::uint64_t chunk_symbols) {
  ecq::scheme_spec spec;
  EXPECT_EQ(ecq::parse_scheme(scheme, &spec), status::ok) << scheme;
  ecq::quantized_tensor q;
  EXPECT_EQ(ecq::quantize(spec, w.w.data(), w.rows, w.cols, &q), status::ok) << scheme;
  ecq::coding_options o = ecq::choose_coding_options(q, ecq::layout_goal::storage);
  o.lanes = lanes;
  o.tile_rows = 2 * lanes;
  o.chunk_symbols = chunk_symbols;
  ecq::encoded_tensor t;
  EXPECT_EQ(ecq_test::encode_quantized(q, o, &t), status::ok) << scheme;
  return t;
}

/// Up to 8 activation columns the AVX-512 path dots each register of a 64-lane block as the kernel decodes it
/// (tensor_decoder::dot_affine_block); more columns, and 16 or 32 lanes, run the loop over the block's stream
/// order. All give the same y bit for bit, for every column count 1..8, and match the float64 product within the
/// documented bound.
TEST(Gemv, TheFusedAffineLoopEqualsTheStreamOrderLoopBitForBit) {
  if (!ecq::cpu_path_supported(ecq::cpu_path::avx512)) GTEST_SKIP() << "no AVX-512 on this CPU";
  std::mt19937 rng(17);
  std::normal_distribution<float> n01(0.0f, 1.0f);
  int fused_layouts = 0;
  for (std::uint32_t lanes : {16u, 32u, 64u})
    for (const char* scheme : {"affine4-g64", "affine4-g64-p2", "affine8-g32"}) {
      const ecq_test::test_tensor w = ecq_test::synthetic_tensor(2 * lanes + 2 * lanes + 5, 389, lanes);  // odd cols
      const std::uint64_t spr = std::string(scheme) == "affine4-g64-p2" ? (w.cols + 1) / 2 : w.cols;
      for (std::uint64_t chunk : {spr, std::uint64_t(96)}) {  // one chunk; chunks that start inside a group
        const ecq::encoded_tensor t = encode_affine_layout(scheme, w, lanes, chunk);
        ASSERT_EQ(t.geometry().lanes, lanes);
        ecq::tensor_decoder d;
        ASSERT_EQ(d.build(t, ecq::cpu_path::avx512), status::ok);
        fused_layouts += ecq::cpu_kernel_path(d.kernel()) == ecq::cpu_path::avx512 && lanes == 64;
        std::vector<float> ref(w.w.size());
        ASSERT_EQ(ecq::decode_to_float(t, ref.data(), ref.size()), status::ok);
        const std::size_t wide = 9;  // past affine_rows_dot_sink::max_batch: the stream-order loop
        std::vector<float> x(wide * w.cols);
        for (float& v : x) v = n01(rng);
        std::vector<float> y_wide(wide * w.rows);
        ecq::cpu_options o;
        o.path = ecq::cpu_path::avx512;
        o.threads = 2;
        ASSERT_EQ(ecq::gemv(t, x.data(), wide, y_wide.data(), o), status::ok);
        for (std::size_t batch = 1; batch <= 8; ++batch) {
          std::vector<float> y(batch * w.rows, -7.0f);
          ASSERT_EQ(ecq::gemv(t, x.data(), batch, y.data(), o), status::ok);
          for (std::size_t b = 0; b < batch; ++b)
            for (std::uint64_t r = 0; r < w.rows; ++r) {
              ASSERT_EQ(y[b * w.rows + r], y_wide[b * w.rows + r])
                  << scheme << " lanes " << lanes << " chunk " << chunk << " batch " << batch << " row " << r;
              double exact = 0.0, magnitude = 0.0;
              for (std::uint64_t c = 0; c < w.cols; ++c) {
                const double p = double(ref[r * w.cols + c]) * double(x[b * w.cols + c]);
                exact += p;
                magnitude += std::fabs(p);
              }
              ASSERT_LE(std::fabs(double(y[b * w.rows + r]) - exact), double(w.cols) * std::ldexp(1.0, -24) * magnitude)
                  << scheme << " lanes " << lanes << " batch " << batch << " row " << r;
            }
        }
      }
    }
  EXPECT_GT(fused_layouts, 0);
}

/// A padding row that does not hold the pad symbol is corrupt_stream on every path and column count, as for
/// the checked decoder (the fused loop checks the padding rows it never stores).
TEST(Gemv, APaddingRowThatIsNotThePadSymbolIsACorruptStream) {
  for (std::uint32_t lanes : {16u, 32u, 64u})
    for (const char* scheme : {"affine4-g64", "affine4-g64-p2"}) {
      const ecq_test::test_tensor w = ecq_test::synthetic_tensor(lanes + 3, 256, 5);
      const ecq::encoded_tensor good =
          encode_affine_layout(scheme, w, lanes, std::string(scheme) == "affine4-g64-p2" ? w.cols / 2 : w.cols);
      ASSERT_GT(good.geometry().tile_rows * good.geometry().num_tiles(), good.geometry().rows);
      std::vector<std::uint8_t> bytes(good.data(), good.data() + good.size());
      const std::size_t pad_at = sizeof(ecq::container_magic) + 56;  // the header's pad_symbol (docs/format.md)
      std::uint32_t pad = 0;
      std::memcpy(&pad, &bytes[pad_at], 4);
      ASSERT_EQ(pad, good.geometry().pad_symbol);
      std::uint32_t other = 0;
      while (other == pad || good.frequencies()[other] == 0) ++other;
      std::memcpy(&bytes[pad_at], &other, 4);
      ecq::encoded_tensor bad;
      ASSERT_EQ(ecq::encoded_tensor::open(bytes.data(), bytes.size(), &bad, ecq::open_options{false}), status::ok);
      std::vector<std::uint16_t> symbols(std::size_t(w.rows * bad.geometry().symbols_per_row));
      const status expected = ecq_test::decode_checked(bad, symbols.data(), symbols.size());
      ASSERT_EQ(expected, status::corrupt_stream);
      std::vector<float> x(9 * w.cols, 0.5f), y(9 * w.rows);
      for (ecq::cpu_path path : runnable_paths())
        for (std::size_t batch : {std::size_t(1), std::size_t(8), std::size_t(9)}) {
          ecq::cpu_options o;
          o.path = path;
          EXPECT_EQ(ecq::gemv(bad, x.data(), batch, y.data(), o), expected)
              << scheme << " lanes " << lanes << " batch " << batch << " path " << ecq::cpu_path_name(path);
        }
    }
}

TEST(Gemv, ReportsTheFirstBadBlockAndRejectsBadArguments) {
  const ecq_test::test_tensor w = ecq_test::synthetic_tensor(64, 512, 9);
  ecq::quantized_tensor q;
  const ecq::encoded_tensor good = encode_with("affine4-g64", w, ecq::layout_goal::kernel, &q);
  std::vector<float> x(w.cols, 1.0f), y(w.rows);
  EXPECT_EQ(ecq::gemv(good, x.data(), 0, y.data()), status::invalid_argument);
  std::vector<std::uint8_t> bytes(good.data(), good.data() + good.size());
  bytes[good.view().payload_offset + 3] ^= 0x40;  // the first block's flushed states
  ecq::encoded_tensor bad;
  ASSERT_EQ(ecq::encoded_tensor::open(bytes.data(), bytes.size(), &bad, ecq::open_options{false}), status::ok);
  std::vector<std::uint16_t> symbols(std::size_t(w.rows * bad.geometry().symbols_per_row));
  const status expected = ecq_test::decode_checked(bad, symbols.data(), symbols.size());
  ASSERT_NE(expected, status::ok);
  EXPECT_EQ(ecq::gemv(bad, x.data(), 1, y.data()), expected);
  std::vector<float> f(w.w.size());
  EXPECT_EQ(ecq::decode_to_float(bad, f.data(), f.size()), expected);
}

TEST(Executor, AnEnginesExecutorRunsEveryTask) {
  const ecq_test::test_tensor w = ecq_test::synthetic_tensor(256, 256, 4);
  ecq::quantized_tensor q;
  const ecq::encoded_tensor t = encode_with("bf16", w, ecq::layout_goal::kernel, &q);
  std::size_t tasks_seen = 0;
  const ecq::parallel_for_fn serial = [&](std::size_t count, const ecq::task_ref& task) {
    for (std::size_t i = 0; i < count; ++i) task(i);
    tasks_seen += count;
  };
  ecq::cpu_options o;
  o.executor = &serial;
  std::vector<float> out(w.w.size()), ref;
  ASSERT_EQ(ecq::decode_to_float(t, out.data(), out.size(), o), status::ok);
  ASSERT_EQ(ecq::dequantize(q, &ref), status::ok);
  EXPECT_EQ(out, ref);
  EXPECT_EQ(tasks_seen, t.geometry().num_blocks());
}

}  // namespace
