// Tests for include/ecq/io/file_bytes.hpp: mapped and read bytes equal the
// file's, both 16-byte aligned; empty and missing files; moves keep the bytes
// alive; a mapped .ecq file opens its containers in place.
#include <ecq/io/ecq_file.hpp>
#include <ecq/io/file_bytes.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "schemes_test_weights.hpp"
#include "support/ecq_test_support.hpp"

namespace {

using ecq::status;

struct temp_file {
  std::string path;
  explicit temp_file(const std::vector<std::uint8_t>& bytes) {
    path = (std::filesystem::temp_directory_path() /
            ("ecq_file_bytes_test_" + std::to_string(std::random_device{}()))).string();
    EXPECT_EQ(ecq::write_file_bytes(path, bytes), status::ok);
  }
  ~temp_file() { std::remove(path.c_str()); }
};

std::vector<std::uint8_t> some_bytes(std::size_t n) {
  std::vector<std::uint8_t> b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = std::uint8_t(i * 131 + 7);
  return b;
}

TEST(FileBytes, MappedAndReadBytesEqualTheFile) {
  // Sizes around the read buffer's first growth (64 KiB) and a page.
  for (std::size_t n : {std::size_t(1), std::size_t(4095), std::size_t(65536), std::size_t(65537 + 4096)}) {
    const auto want = some_bytes(n);
    temp_file f(want);
    for (auto access : {ecq::file_access::automatic, ecq::file_access::map, ecq::file_access::read}) {
      ecq::file_bytes b;
      std::string error;
      const status s = ecq::file_bytes::open(f.path, &b, &error, access);
      if (access == ecq::file_access::map && !ECQ_HAVE_MMAP) {
        EXPECT_EQ(s, status::unsupported_parameters);
        continue;
      }
      ASSERT_EQ(s, status::ok) << error;
      ASSERT_EQ(b.size(), n);
      EXPECT_EQ(reinterpret_cast<std::uintptr_t>(b.data()) % 16, 0u);
      EXPECT_EQ(std::memcmp(b.data(), want.data(), n), 0);
      EXPECT_EQ(b.mapped(), access != ecq::file_access::read && ECQ_HAVE_MMAP);
    }
  }
}

TEST(FileBytes, EmptyAndMissingFiles) {
  temp_file empty({});
  for (auto access : {ecq::file_access::automatic, ecq::file_access::read}) {
    ecq::file_bytes b;
    ASSERT_EQ(ecq::file_bytes::open(empty.path, &b, nullptr, access), status::ok);
    EXPECT_EQ(b.size(), 0u);
  }
  ecq::file_bytes b;
  std::string error;
  EXPECT_EQ(ecq::file_bytes::open(empty.path + ".missing", &b, &error), status::invalid_argument);
  EXPECT_THAT(error, ::testing::HasSubstr("cannot open"));
  EXPECT_EQ(b.data(), nullptr);
  EXPECT_EQ(b.size(), 0u);
}

TEST(FileBytes, MovesKeepTheBytes) {
  const auto want = some_bytes(5000);
  temp_file f(want);
  ecq::file_bytes a;
  ASSERT_EQ(ecq::file_bytes::open(f.path, &a), status::ok);
  const std::uint8_t* p = a.data();
  ecq::file_bytes b = std::move(a);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(a.data(), nullptr);
  EXPECT_EQ(a.size(), 0u);
  ecq::file_bytes c;
  ASSERT_EQ(ecq::file_bytes::open(f.path, &c, nullptr, ecq::file_access::read), status::ok);
  c = std::move(b);  // releases c's own buffer
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(std::memcmp(c.data(), want.data(), want.size()), 0);
}

TEST(FileBytes, AMappedEcqFileOpensItsContainersInPlace) {
  const auto t = ecq_test::synthetic_tensor(20, 64, 3);
  ecq::scheme_spec spec;
  ASSERT_EQ(ecq::parse_scheme("affine4-g32", &spec), status::ok);
  ecq::quantized_tensor q;
  ASSERT_EQ(ecq::quantize(spec, t.w.data(), t.rows, t.cols, &q), status::ok);
  ecq::encoded_tensor e;
  ASSERT_EQ(ecq_test::encode_quantized(q, ecq::choose_coding_options(q, ecq::layout_goal::storage), &e), status::ok);
  ecq::ecq_file_writer w;
  ASSERT_EQ(w.add_raw("n", ecq::tensor_dtype::u8, {3}, {1, 2, 3}), status::ok);  // shifts the container area
  ASSERT_EQ(w.add("w", ecq::tensor_dtype::f32, {20, 64}, e), status::ok);
  temp_file f(w.serialize());
  ecq::file_bytes b;
  ASSERT_EQ(ecq::file_bytes::open(f.path, &b), status::ok);
  ecq::ecq_file_reader r;
  ASSERT_EQ(r.parse(b.data(), b.size()), status::ok);
  ecq::encoded_tensor opened;
  ASSERT_EQ(r.open_tensor_borrowed(1, &opened), status::ok);
  EXPECT_EQ(opened.data(), b.data() + r.tensors()[1].offset);
  std::vector<float> got, want;
  ASSERT_EQ(ecq_test::decode_and_dequantize(opened, &got), status::ok);
  ASSERT_EQ(ecq::dequantize(q, &want), status::ok);
  EXPECT_EQ(got, want);
}

}  // namespace
