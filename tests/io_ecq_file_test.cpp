// Tests for include/ecq/io/ecq_file.hpp: writer -> reader round trips
// (names, dtypes, shapes of any rank, metadata, container bytes and their
// 16-byte alignment, empty tensors without a container, raw tensors in a
// version 2 directory), frozen header layout, opening containers in place
// (borrowed) with the same checks, and rejection of malformed files: every
// truncation, random flips (never a crash), hand-made cases.
#include <ecq/io/ecq_file.hpp>
#include <ecq/schemes/scheme.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
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
  EXPECT_EQ(reparse(with(8, 3)), status::unsupported_version);
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

/// A file with a container between raw tensors of several dtypes.
std::vector<std::uint8_t> sample_with_raw(ecq::encoded_tensor* a_out = nullptr) {
  ecq::ecq_file_writer w;
  const auto a = encode(ecq_test::synthetic_tensor(6, 40, 1), "affine4-g32");
  EXPECT_EQ(w.add_raw("step", ecq::tensor_dtype::i64, {}, {7, 0, 0, 0, 0, 0, 0, 0x80}), status::ok);
  EXPECT_EQ(w.add("w", ecq::tensor_dtype::f32, {6, 40}, a), status::ok);
  EXPECT_EQ(w.add_raw("mask", ecq::tensor_dtype::boolean, {3}, {1, 0, 1}), status::ok);
  EXPECT_EQ(w.add_raw("ids", ecq::tensor_dtype::i32, {2, 1}, {1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff}), status::ok);
  EXPECT_EQ(w.version(), 2u);
  if (a_out != nullptr) ecq::encoded_tensor::open(a.data(), a.size(), a_out);
  const auto bytes = w.serialize();
  EXPECT_EQ(w.wrapper_bytes(), bytes.size() - a.size() - 8 - 3 - 8);
  return bytes;
}

TEST(EcqFile, RawTensorsRoundTripInAVersion2Directory) {
  ecq::encoded_tensor a;
  const auto bytes = sample_with_raw(&a);
  EXPECT_EQ(bytes[8], 2);
  ecq::ecq_file_reader r;
  std::string error;
  ASSERT_EQ(r.parse(bytes.data(), bytes.size(), &error), status::ok) << error;
  ASSERT_EQ(r.tensors().size(), 4u);
  const auto raw = [&](std::size_t i) {
    return std::vector<std::uint8_t>(r.raw_data(i), r.raw_data(i) + r.tensors()[i].size);
  };
  EXPECT_EQ(r.tensors()[0].storage, ecq::ecq_storage::raw);
  EXPECT_TRUE(r.tensors()[0].shape.empty());
  EXPECT_THAT(raw(0), ::testing::ElementsAre(7, 0, 0, 0, 0, 0, 0, 0x80));
  EXPECT_THAT(raw(2), ::testing::ElementsAre(1, 0, 1));
  EXPECT_EQ(r.tensors()[3].source_dtype, ecq::tensor_dtype::i32);
  EXPECT_THAT(raw(3), ::testing::ElementsAre(1, 2, 3, 4, 0xff, 0xff, 0xff, 0xff));
  EXPECT_EQ(r.tensors()[1].storage, ecq::ecq_storage::container);
  EXPECT_EQ(r.raw_data(1), nullptr);
  EXPECT_EQ(r.container_data(0), nullptr);
  EXPECT_EQ(std::vector<std::uint8_t>(r.container_data(1), r.container_data(1) + r.tensors()[1].size),
            std::vector<std::uint8_t>(a.data(), a.data() + a.size()));
  EXPECT_EQ(r.tensors()[1].offset % 16, 0u);
  ecq::encoded_tensor e;
  EXPECT_EQ(r.open_tensor(0, &e), status::invalid_argument) << "a raw tensor has no container";
  ASSERT_EQ(r.open_tensor(1, &e), status::ok);
  // Every truncation fails, and a raw entry's bytes are covered by the directory checksum.
  for (std::size_t n = 0; n < bytes.size(); ++n) EXPECT_NE(r.parse(bytes.data(), n), status::ok) << n;
  auto b = bytes;
  b[32 + 2 + 4 + 2 + 1 + 7] ^= 1;  // the last raw byte of "step"
  EXPECT_EQ(r.parse(b.data(), b.size()), status::checksum_mismatch);
}

TEST(EcqFile, FilesWithoutRawTensorsStayVersion1) {
  ecq::ecq_file_writer w;
  ASSERT_EQ(w.add_empty("e", ecq::tensor_dtype::f32, {0}), status::ok);
  EXPECT_EQ(w.version(), 1u);
  EXPECT_EQ(w.serialize()[8], 1);
  EXPECT_EQ(sample()[8], 1);
}

TEST(EcqFile, TinyRawEntriesAreNotMistakenForATooLargeCount) {
  // 7-byte entries (one-byte name, one-byte scalar): far below a container entry's 21 bytes.
  ecq::ecq_file_writer w;
  for (char c = 'a'; c <= 'z'; ++c) ASSERT_EQ(w.add_raw(std::string(1, c), ecq::tensor_dtype::u8, {}, {std::uint8_t(c)}), status::ok);
  const auto bytes = w.serialize();
  EXPECT_EQ(bytes.size(), 32u + 26 * 7 + 4);
  ecq::ecq_file_reader r;
  std::string error;
  ASSERT_EQ(r.parse(bytes.data(), bytes.size(), &error), status::ok) << error;
  ASSERT_EQ(r.tensors().size(), 26u);
  EXPECT_EQ(*r.raw_data(25), 'z');
}

TEST(EcqFile, MalformedRawEntriesGiveTheDocumentedStatus) {
  const auto good = sample_with_raw();
  ecq::ecq_file_reader r;
  std::string error;
  // Entry of "step": name length 32, name 34, dtype 38, rank 39, storage 40, bytes 41..48.
  auto edited = [&](std::size_t at, std::uint8_t v) {
    auto b = good;
    b[at] = v;
    return reseal(b);
  };
  auto b = edited(40, 2);
  EXPECT_EQ(r.parse(b.data(), b.size(), &error), status::corrupt_stream);
  EXPECT_THAT(error, ::testing::HasSubstr("bad storage of \"step\""));
  b = edited(38, std::uint8_t(ecq::tensor_dtype::i32));  // 4 bytes instead of 8: the rest misparses
  EXPECT_NE(r.parse(b.data(), b.size()), status::ok);
  // A version 1 directory has no storage byte: the same bytes read as version 1 do not parse.
  b = good;
  b[8] = 1;
  EXPECT_NE(r.parse(b.data(), b.size()), status::ok);
  // A raw entry may not be empty, nor run past the directory.
  ecq::ecq_file_writer w;
  EXPECT_EQ(w.add_raw("z", ecq::tensor_dtype::u8, {0}, {}), status::invalid_argument);
  EXPECT_EQ(w.add_raw("z", ecq::tensor_dtype::u16, {3}, {1, 2, 3}), status::bad_shape);
  ASSERT_EQ(w.add_raw("z", ecq::tensor_dtype::u8, {2}, {5, 6}), status::ok);
  auto one = w.serialize();
  // Header 32, name length 2, "z" 1, dtype 1, rank 1, dim 8, storage 1: the bytes at 46.
  ASSERT_EQ(one[46], 5);
  one[37] = 0xff;  // dimension 255: more raw bytes than the directory holds
  one = reseal(one);
  EXPECT_EQ(r.parse(one.data(), one.size(), &error), status::corrupt_stream);
  EXPECT_THAT(error, ::testing::HasSubstr("run past the directory")) << error;
}

TEST(EcqFile, BorrowedTensorsOpenInPlaceWithTheSameChecks) {
  ecq::encoded_tensor a;
  const auto bytes = sample(&a);
  // 16-byte-aligned copies of the file, and one at an odd address.
  std::vector<ecq::detail::aligned_bytes16> storage((bytes.size() + 1 + 15) / 16 + 1);
  std::uint8_t* aligned = reinterpret_cast<std::uint8_t*>(storage.data());
  std::memcpy(aligned, bytes.data(), bytes.size());
  ecq::ecq_file_reader r;
  ASSERT_EQ(r.parse(aligned, bytes.size()), status::ok);
  ecq::encoded_tensor e;
  ASSERT_EQ(r.open_tensor_borrowed(0, &e), status::ok);
  EXPECT_EQ(e.data(), r.container_data(0)) << "no copy";
  EXPECT_EQ(e.geometry().rows, 6u);
  EXPECT_EQ(r.open_tensor_borrowed(2, &e), status::invalid_argument);
  // The shape check applies as for open_tensor.
  auto wrong = reseal([&] {
    auto b = bytes;
    b[46] = 3;  // dims 3 x 3 x 40: 9 rows, the container has 6
    return b;
  }());
  std::memcpy(aligned, wrong.data(), wrong.size());
  ASSERT_EQ(r.parse(aligned, wrong.size()), status::ok);
  EXPECT_EQ(r.open_tensor_borrowed(0, &e), status::bad_shape);
  // A flipped byte inside the container: the container's checksum catches it in place too.
  std::memcpy(aligned, bytes.data(), bytes.size());
  aligned[r.tensors()[0].offset + 100] ^= 1;
  ASSERT_EQ(r.parse(aligned, bytes.size()), status::ok);
  EXPECT_EQ(r.open_tensor_borrowed(0, &e), status::checksum_mismatch);
  // Misaligned in memory: borrowing is refused, copying still works.
  std::memcpy(aligned + 1, bytes.data(), bytes.size());
  ASSERT_EQ(r.parse(aligned + 1, bytes.size()), status::ok);
  EXPECT_EQ(r.open_tensor_borrowed(0, &e), status::invalid_argument);
  EXPECT_EQ(r.open_tensor(0, &e), status::ok);
}

}  // namespace
