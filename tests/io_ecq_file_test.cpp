// Tests for include/ecq/io/ecq_file.hpp: writer -> reader round trips
// (names, dtypes, shapes of any rank, metadata, container bytes and their
// 16-byte alignment, empty tensors without a container), frozen header
// layout, and rejection of malformed files: every truncation, random flips
// (never a crash), hand-made cases.
#include <ecq/io/ecq_file.hpp>
#include <ecq/schemes/scheme.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "schemes_test_weights.hpp"
#include "support/ecq_test_support.hpp"

namespace {

using ecq::status;

ecq::encoded_tensor encode(const ecq_test::test_tensor& t, const char* scheme) {
  ecq::scheme_spec spec;
  EXPECT_EQ(ecq::parse_scheme(scheme, &spec), status::ok);
  ecq::quantized_tensor q;
  EXPECT_EQ(ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q), status::ok);
  ecq::encoded_tensor e;
  EXPECT_EQ(ecq_test::encode_quantized(q, ecq::choose_coding_options(q, ecq::layout_goal::storage), &e), status::ok);
  return e;
}

std::vector<std::uint8_t> sample(ecq::encoded_tensor* a_out = nullptr) {
  ecq::ecq_file_writer w;
  const auto a = encode(ecq_test::synthetic_tensor(6, 40, 1), "affine4-g32");
  const auto b = encode(ecq_test::synthetic_tensor(1, 7, 2), "bf16");
  EXPECT_EQ(w.add("layers.0.w", ecq::tensor_dtype::bf16, {2, 3, 40}, a), status::ok);
  EXPECT_EQ(w.add("bias \xe2\x9c\x93", ecq::tensor_dtype::f32, {7}, b), status::ok);
  w.add_metadata("format", "pt");
  if (a_out != nullptr) ecq::encoded_tensor::open(a.data(), a.size(), a_out);
  const auto bytes = w.serialize();
  EXPECT_EQ(w.wrapper_bytes(), bytes.size() - a.size() - b.size());
  return bytes;
}

/// Recomputes the directory checksum after an edit of the directory.
std::vector<std::uint8_t> reseal(std::vector<std::uint8_t> b) {
  const std::uint64_t dir = ecq::detail::load_le64(b.data() + 16);
  const std::uint64_t h = ecq::xxh64(b.data() + 32, std::size_t(dir));
  for (int k = 0; k < 8; ++k) b[24 + std::size_t(k)] = std::uint8_t(h >> (8 * k));
  return b;
}

TEST(EcqFile, RoundTrips) {
  ecq::encoded_tensor a;
  const auto bytes = sample(&a);
  ecq::ecq_file_reader r;
  std::string error;
  ASSERT_EQ(r.parse(bytes.data(), bytes.size(), &error), status::ok) << error;
  ASSERT_EQ(r.tensors().size(), 2u);
  EXPECT_EQ(r.tensors()[0].name, "layers.0.w");
  EXPECT_EQ(r.tensors()[0].source_dtype, ecq::tensor_dtype::bf16);
  EXPECT_THAT(r.tensors()[0].shape, ::testing::ElementsAre(2u, 3u, 40u));
  EXPECT_EQ(r.tensors()[1].name, "bias \xe2\x9c\x93");
  EXPECT_THAT(r.metadata(), ::testing::ElementsAre(::testing::Pair("format", "pt")));
  for (const auto& t : r.tensors()) EXPECT_EQ(t.offset % 16, 0u) << t.name;
  EXPECT_EQ(std::vector<std::uint8_t>(r.container_data(0), r.container_data(0) + r.tensors()[0].size),
            std::vector<std::uint8_t>(a.data(), a.data() + a.size()));
  ecq::encoded_tensor e;
  ASSERT_EQ(r.open_tensor(0, &e), status::ok);
  EXPECT_EQ(e.geometry().rows, 6u);
  ASSERT_EQ(r.open_tensor(1, &e), status::ok);
  EXPECT_EQ(e.geometry().scheme_id, std::uint32_t(ecq::scheme_kind::bf16));
  EXPECT_EQ(r.open_tensor(2, &e), status::invalid_argument);
}

TEST(EcqFile, HeaderLayoutIsFrozen) {
  const auto bytes = sample();
  EXPECT_THAT(std::vector<std::uint8_t>(bytes.begin(), bytes.begin() + 16),
              ::testing::ElementsAre(0x89, 'E', 'C', 'Q', 'F', 'I', 'L', 'E', 1, 0, 0, 0, 2, 0, 0, 0));
  const std::uint64_t dir = ecq::detail::load_le64(bytes.data() + 16);
  EXPECT_EQ(ecq::detail::load_le64(bytes.data() + 24), ecq::xxh64(bytes.data() + 32, std::size_t(dir)));
  // The first entry: name length, name, dtype 3 (BF16), rank 3.
  EXPECT_EQ(bytes[32], 10);
  EXPECT_EQ(std::string(bytes.begin() + 34, bytes.begin() + 44), "layers.0.w");
  EXPECT_EQ(bytes[44], 3);
  EXPECT_EQ(bytes[45], 3);
}

TEST(EcqFile, WriterChecksItsInput) {
  const auto a = encode(ecq_test::synthetic_tensor(6, 40, 1), "affine4-g32");
  ecq::ecq_file_writer w;
  EXPECT_EQ(w.add("", ecq::tensor_dtype::f32, {6, 40}, a), status::invalid_argument);
  EXPECT_EQ(w.add("x", ecq::tensor_dtype::f32, {1, 1, 1, 1, 1, 1, 1, 6, 40}, a), status::invalid_argument);
  EXPECT_EQ(w.add("x", ecq::tensor_dtype::f32, {40, 6}, a), status::bad_shape);
  EXPECT_EQ(w.add("x", ecq::tensor_dtype::f32, {6, 40}, a), status::ok);
  EXPECT_EQ(w.add("x", ecq::tensor_dtype::f32, {6, 40}, a), status::invalid_argument);
}

TEST(EcqFile, EveryTruncationAndRandomFlipsFailCleanly) {
  const auto bytes = sample();
  ecq::ecq_file_reader r;
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_NE(r.parse(bytes.data(), n), status::ok) << n;
  std::mt19937 rng(4);
  for (int trial = 0; trial < 500; ++trial) {
    auto b = bytes;
    b[rng() % b.size()] ^= std::uint8_t(1u << (rng() % 8));
    if (r.parse(b.data(), b.size()) != status::ok) continue;
    // A flip inside a container: the directory checksum does not cover it,
    // the container's own checksum does.
    for (std::size_t i = 0; i < r.tensors().size(); ++i) {
      ecq::encoded_tensor e;
      r.open_tensor(i, &e);
    }
  }
}

TEST(EcqFile, MalformedFilesGiveTheDocumentedStatus) {
  const auto good = sample();
  ecq::ecq_file_reader r;
  std::string error;
  auto with = [&](std::size_t at, std::uint8_t v) {
    auto b = good;
    b[at] = v;
    return b;
  };
  auto reparse = [&](std::vector<std::uint8_t> b) { return r.parse(b.data(), b.size(), &error); };
  EXPECT_EQ(reparse(with(0, 0x88)), status::bad_magic);
  EXPECT_EQ(reparse(with(8, 2)), status::unsupported_version);
  EXPECT_EQ(reparse(with(40, 'X')), status::checksum_mismatch);
  // Re-sealed directories with bad content.
  auto resealed = [&](std::size_t at, std::uint8_t v) { return reseal(with(at, v)); };
  EXPECT_EQ(reparse(resealed(44, 200)), status::corrupt_stream) << "unknown dtype";
  EXPECT_EQ(reparse(resealed(45, 9)), status::corrupt_stream) << "rank 9";
  EXPECT_EQ(reparse(resealed(32, 0)), status::corrupt_stream) << "empty name";
  const std::size_t offset_at = 46 + 3 * 8;  // first container offset
  EXPECT_EQ(reparse(resealed(offset_at, std::uint8_t(good[offset_at] + 16))), status::bad_offset);
  auto longer = good;
  longer.push_back(0);
  EXPECT_EQ(reparse(longer), status::bad_offset);
  EXPECT_FALSE(error.empty());
  // Shape that disagrees with the container.
  auto b = resealed(46, 3);  // dims 3 x 3 x 40: 9 rows, container has 6
  ASSERT_EQ(r.parse(b.data(), b.size()), status::ok);
  ecq::encoded_tensor e;
  EXPECT_EQ(r.open_tensor(0, &e), status::bad_shape);
}

TEST(EcqFile, EmptyTensorsHaveNoContainer) {
  const auto a = encode(ecq_test::synthetic_tensor(6, 40, 1), "affine4-g32");
  ecq::ecq_file_writer w;
  ASSERT_EQ(w.add_empty("e", ecq::tensor_dtype::bf16, {0, 4}), status::ok);
  ASSERT_EQ(w.add("a", ecq::tensor_dtype::f32, {6, 40}, a), status::ok);
  ASSERT_EQ(w.add_empty("z", ecq::tensor_dtype::f16, {3, 0, 2}), status::ok);
  const auto bytes = w.serialize();
  EXPECT_EQ(w.wrapper_bytes(), bytes.size() - a.size());
  ecq::ecq_file_reader r;
  std::string error;
  ASSERT_EQ(r.parse(bytes.data(), bytes.size(), &error), status::ok) << error;
  ASSERT_EQ(r.tensors().size(), 3u);
  for (std::size_t i : {0u, 2u}) {
    EXPECT_EQ(r.tensors()[i].elements(), 0u);
    EXPECT_EQ(r.tensors()[i].offset, 0u);
    EXPECT_EQ(r.tensors()[i].size, 0u);
    EXPECT_EQ(r.container_data(i), nullptr);
    ecq::encoded_tensor e;
    EXPECT_EQ(r.open_tensor(i, &e), status::invalid_argument);
  }
  EXPECT_THAT(r.tensors()[2].shape, ::testing::ElementsAre(3u, 0u, 2u));
  EXPECT_EQ(r.tensors()[2].source_dtype, ecq::tensor_dtype::f16);
  // The container area holds only "a", which ends the file.
  EXPECT_EQ(r.tensors()[1].offset % 16, 0u);
  EXPECT_EQ(r.tensors()[1].offset + r.tensors()[1].size, bytes.size());
  ecq::encoded_tensor e;
  ASSERT_EQ(r.open_tensor(1, &e), status::ok);
  EXPECT_EQ(e.geometry().cols, 40u);

  // Directory entry of "e": name length at 32, name 34, dtype 35, rank 36, dims 37..52, offset 53, size 61.
  auto edited = [&](std::size_t at, std::uint8_t v) {
    auto b = bytes;
    b[at] = v;
    return reseal(b);
  };
  auto b = edited(61, 1);
  EXPECT_EQ(r.parse(b.data(), b.size(), &error), status::bad_offset);
  EXPECT_THAT(error, ::testing::HasSubstr("empty tensor \"e\" has a container"));
  b = edited(53, 16);
  EXPECT_EQ(r.parse(b.data(), b.size(), &error), status::bad_offset);
  EXPECT_THAT(error, ::testing::HasSubstr("empty tensor \"e\" has a container offset"));
  b = edited(37, 1);  // shape 1 x 4
  EXPECT_EQ(r.parse(b.data(), b.size(), &error), status::bad_offset);
  EXPECT_THAT(error, ::testing::HasSubstr("tensor \"e\" has no container"));
}

TEST(EcqFile, WriterKeepsEmptyAndNonEmptyApart) {
  ecq::ecq_file_writer w;
  EXPECT_EQ(w.add_empty("x", ecq::tensor_dtype::f32, {2, 3}), status::invalid_argument) << "no zero dimension";
  EXPECT_EQ(w.add_empty("x", ecq::tensor_dtype::f32, {}), status::invalid_argument) << "a scalar has one element";
  EXPECT_EQ(w.add("x", ecq::tensor_dtype::f32, {0, 0}, ecq::encoded_tensor{}), status::invalid_argument)
      << "no container";
  EXPECT_EQ(w.add_empty("x", ecq::tensor_dtype::f32, {0}), status::ok);
  EXPECT_EQ(w.add_empty("x", ecq::tensor_dtype::f32, {0}), status::invalid_argument) << "duplicate name";
}

}  // namespace
