// Tests for include/ecq/io/safetensors.hpp: writer -> parser round trips
// (names with escapes, metadata, every dtype, 0-D and empty tensors), the
// real files in ECQ_SHARED_DATA_DIR when present, conversions to float, and
// rejection of malformed files with the documented status: every truncation,
// random corruption (never a crash; asan runs this too), and one hand-made
// file per rule.
#include <ecq/io/safetensors.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

namespace {

using ecq::status;
using ecq::tensor_dtype;

std::vector<std::uint8_t> bytes_of(const void* p, std::size_t n) {
  const auto* b = static_cast<const std::uint8_t*>(p);
  return std::vector<std::uint8_t>(b, b + n);
}

// A file from a literal JSON header and a data section.
std::vector<std::uint8_t> make_file(const std::string& json, std::size_t data_bytes) {
  std::vector<std::uint8_t> f(8);
  for (int k = 0; k < 8; ++k) f[std::size_t(k)] = std::uint8_t(std::uint64_t(json.size()) >> (8 * k));
  f.insert(f.end(), json.begin(), json.end());
  for (std::size_t i = 0; i < data_bytes; ++i) f.push_back(std::uint8_t(i * 7 + 1));
  return f;
}

status parse(const std::vector<std::uint8_t>& f, std::string* error = nullptr) {
  ecq::safetensors_file s;
  return s.parse(f.data(), f.size(), error);
}

std::vector<std::uint8_t> sample_file() {
  ecq::safetensors_writer w;
  const float a[6] = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-3f};
  const std::uint16_t h[3] = {0x3c00, 0xc000, 0x7bff};  // f16 1, -2, 65504
  const std::int8_t c[4] = {-128, -1, 0, 127};
  EXPECT_EQ(w.add("layer.0/w\"quoted\"\\", tensor_dtype::f32, {2, 3}, bytes_of(a, sizeof a)), status::ok);
  EXPECT_EQ(w.add("h", tensor_dtype::f16, {3}, bytes_of(h, sizeof h)), status::ok);
  EXPECT_EQ(w.add("c\x01\xc3\xa9", tensor_dtype::i8, {2, 2}, bytes_of(c, sizeof c)), status::ok);
  EXPECT_EQ(w.add("scalar", tensor_dtype::f32, {}, bytes_of(a, 4)), status::ok);
  EXPECT_EQ(w.add("empty", tensor_dtype::bf16, {0, 5}, {}), status::ok);
  w.add_metadata("format", "pt");
  w.add_metadata("note", "line\nbreak \"q\"");
  return w.serialize();
}

TEST(Safetensors, WriterOutputParsesBack) {
  const std::vector<std::uint8_t> f = sample_file();
  ecq::safetensors_file s;
  std::string error;
  ASSERT_EQ(s.parse(f.data(), f.size(), &error), status::ok) << error;
  EXPECT_EQ(ecq::detail::load_u64_le(f.data()) % 8, 0u) << "header padded to 8 bytes";
  ASSERT_EQ(s.tensors().size(), 5u);
  EXPECT_EQ(s.tensors()[0].name, "layer.0/w\"quoted\"\\");
  EXPECT_EQ(s.tensors()[2].name, "c\x01\xc3\xa9");
  EXPECT_THAT(s.tensors()[0].shape, ::testing::ElementsAre(2u, 3u));
  EXPECT_TRUE(s.tensors()[3].shape.empty());
  EXPECT_EQ(s.tensors()[3].elements(), 1u);
  EXPECT_EQ(s.tensors()[4].elements(), 0u);
  EXPECT_THAT(s.metadata(), ::testing::ElementsAre(::testing::Pair("format", "pt"),
                                                   ::testing::Pair("note", "line\nbreak \"q\"")));
  std::vector<float> v;
  ASSERT_EQ(ecq::to_float(s.tensors()[0], s.data(s.tensors()[0]), &v), status::ok);
  EXPECT_THAT(v, ::testing::ElementsAre(1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-3f));
  ASSERT_EQ(ecq::to_float(*s.find("h"), s.data(*s.find("h")), &v), status::ok);
  EXPECT_THAT(v, ::testing::ElementsAre(1.0f, -2.0f, 65504.0f));
  ASSERT_EQ(ecq::to_float(s.tensors()[2], s.data(s.tensors()[2]), &v), status::ok);
  EXPECT_THAT(v, ::testing::ElementsAre(-128.0f, -1.0f, 0.0f, 127.0f));
  EXPECT_EQ(s.find("missing"), nullptr);
  // The data section starts 8-byte aligned; tensors follow without gaps.
  EXPECT_EQ((s.data(s.tensors()[0]) - f.data()) % 8, 0);
  EXPECT_EQ(s.data(s.tensors()[1]), s.data(s.tensors()[0]) + 24);
}

TEST(Safetensors, ConversionsOfEveryFloatAndSmallIntegerDtype) {
  ecq::safetensors_writer w;
  const std::uint16_t bf[2] = {0x3fc0, 0xc080};  // 1.5, -4
  const double d[2] = {0.1, -1e300};
  const std::int16_t i16[2] = {-32768, 12345};
  const std::uint8_t u8[2] = {1, 2};
  ASSERT_EQ(w.add("bf", tensor_dtype::bf16, {2}, bytes_of(bf, sizeof bf)), status::ok);
  ASSERT_EQ(w.add("d", tensor_dtype::f64, {2}, bytes_of(d, sizeof d)), status::ok);
  ASSERT_EQ(w.add("i16", tensor_dtype::i16, {2}, bytes_of(i16, sizeof i16)), status::ok);
  ASSERT_EQ(w.add("u8", tensor_dtype::u8, {2}, bytes_of(u8, sizeof u8)), status::ok);
  const auto f = w.serialize();
  ecq::safetensors_file s;
  ASSERT_EQ(s.parse(f.data(), f.size()), status::ok);
  std::vector<float> v;
  ASSERT_EQ(ecq::to_float(*s.find("bf"), s.data(*s.find("bf")), &v), status::ok);
  EXPECT_THAT(v, ::testing::ElementsAre(1.5f, -4.0f));
  ASSERT_EQ(ecq::to_float(*s.find("d"), s.data(*s.find("d")), &v), status::ok);
  EXPECT_EQ(v[0], float(0.1));
  EXPECT_TRUE(std::isinf(v[1]) && v[1] < 0);
  ASSERT_EQ(ecq::to_float(*s.find("i16"), s.data(*s.find("i16")), &v), status::ok);
  EXPECT_THAT(v, ::testing::ElementsAre(-32768.0f, 12345.0f));
  EXPECT_EQ(ecq::to_float(*s.find("u8"), s.data(*s.find("u8")), &v), status::unsupported_parameters);
  EXPECT_FALSE(ecq::converts_to_float(s.find("u8")->dtype));
  for (const char* name : {"bf", "d", "i16"}) EXPECT_TRUE(ecq::converts_to_float(s.find(name)->dtype)) << name;
  EXPECT_TRUE(v.empty());
}

TEST(Safetensors, DtypeNamesAndSizes) {
  const char* names[] = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8",
                         "U64", "U32", "U16", "U8", "BOOL", "F8_E4M3", "F8_E5M2"};
  const std::size_t sizes[] = {8, 4, 2, 2, 8, 4, 2, 1, 8, 4, 2, 1, 1, 1, 1};
  for (std::size_t k = 0; k < 15; ++k) {
    tensor_dtype d = tensor_dtype::boolean;
    ASSERT_TRUE(ecq::dtype_from_name(names[k], &d)) << names[k];
    EXPECT_STREQ(ecq::dtype_name(d), names[k]);
    EXPECT_EQ(ecq::dtype_size(d), sizes[k]) << names[k];
  }
  tensor_dtype d = tensor_dtype::boolean;
  EXPECT_FALSE(ecq::dtype_from_name("f32", &d));
  EXPECT_FALSE(ecq::dtype_from_name("F4", &d));
}

TEST(Safetensors, WriterRejectsBadTensors) {
  ecq::safetensors_writer w;
  EXPECT_EQ(w.add("", tensor_dtype::u8, {1}, {0}), status::invalid_argument);
  EXPECT_EQ(w.add("__metadata__", tensor_dtype::u8, {1}, {0}), status::invalid_argument);
  EXPECT_EQ(w.add("x", tensor_dtype::f32, {2}, {0, 0, 0, 0}), status::bad_shape);
  // 2^62 x 4 elements wrap to 0 in 64 bits, which an unchecked product would take for an empty tensor.
  EXPECT_EQ(w.add("x", tensor_dtype::u8, {std::uint64_t(1) << 62, 4}, {}), status::bad_shape);
  EXPECT_EQ(w.add("x", tensor_dtype::f32, {std::uint64_t(1) << 62}, {}), status::bad_shape);
  EXPECT_EQ(w.add("empty", tensor_dtype::f32, {0, 5}, {}), status::ok);
  EXPECT_EQ(w.add("x", tensor_dtype::u8, {1}, {0}), status::ok);
  EXPECT_EQ(w.add("x", tensor_dtype::u8, {1}, {0}), status::invalid_argument);
}

TEST(Safetensors, EveryTruncationIsRejected) {
  const std::vector<std::uint8_t> f = sample_file();
  for (std::size_t n = 0; n < f.size(); ++n) {
    const std::vector<std::uint8_t> cut(f.begin(), f.begin() + std::ptrdiff_t(n));
    EXPECT_NE(parse(cut), status::ok) << n;
  }
}

TEST(Safetensors, RandomCorruptionNeverCrashes) {
  // Mostly rejected; when accepted (a flip inside a name or the data), every
  // tensor must still lie inside the buffer, which to_float then reads.
  const std::vector<std::uint8_t> f = sample_file();
  std::mt19937 rng(3);
  int accepted = 0;
  for (int trial = 0; trial < 3000; ++trial) {
    std::vector<std::uint8_t> g = f;
    const int flips = 1 + int(rng() % 4);
    for (int k = 0; k < flips; ++k) g[rng() % g.size()] ^= std::uint8_t(1u << (rng() % 8));
    ecq::safetensors_file s;
    if (s.parse(g.data(), g.size()) != status::ok) continue;
    ++accepted;
    for (const auto& t : s.tensors()) {
      ASSERT_LE(s.data(t) + (t.end - t.begin), g.data() + g.size());
      std::vector<float> v;
      ecq::to_float(t, s.data(t), &v);
    }
  }
  EXPECT_LT(accepted, 3000);
}

struct bad_case {
  const char* json;
  std::size_t data;
  status expect;
};

TEST(Safetensors, MalformedHeadersGiveTheDocumentedStatus) {
  const bad_case cases[] = {
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, status::ok},
      {R"({})", 0, status::ok},
      {R"([])", 0, status::bad_magic},
      {R"({"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", 4, status::corrupt_stream},
      {R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", 4, status::bad_shape},
      {R"({"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}})", 4, status::bad_shape},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", 4, status::bad_offset},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 8, status::bad_offset},  // trailing bytes
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8, status::bad_offset},  // gap at 0
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 2, status::bad_offset},  // past the end
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
       8, status::bad_offset},  // overlap
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       8, status::corrupt_stream},  // duplicate name
      {R"({"a":{"dtype":"F32","shape":[1]}})", 4, status::corrupt_stream},                      // missing key
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", 4, status::corrupt_stream},   // one offset
      {R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", 4, status::corrupt_stream},
      {R"({"a":{"dtype":"F32","shape":[01],"data_offsets":[0,4]}})", 4, status::corrupt_stream},
      {R"({"a":{"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", 4, status::corrupt_stream},
      {R"({"a":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,4]}})", 4, status::corrupt_stream},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})", 4, status::corrupt_stream},  // unclosed
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}} x)", 4, status::corrupt_stream},
      {R"({"a\q":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, status::corrupt_stream},  // bad escape
      {R"({"\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, status::corrupt_stream},  // lone surrogate
      {R"({"\ud83d\ude00":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, status::ok},
      {R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":{"x":[1,true,null,-2.5e3]}}})", 4, status::ok},
      {R"({"__metadata__":{"k":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4, status::corrupt_stream},
      {R"({"__metadata__":{},"__metadata__":{}})", 0, status::corrupt_stream},
  };
  for (const bad_case& c : cases) {
    std::string error;
    EXPECT_EQ(parse(make_file(c.json, c.data), &error), c.expect) << c.json << "\n" << error;
    if (c.expect != status::ok) {
      EXPECT_FALSE(error.empty()) << c.json;
    }
  }
}

TEST(Safetensors, DeepNestingAndOversizedHeadersAreRejected) {
  std::string deep = R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":)";
  for (int i = 0; i < 100000; ++i) deep += '[';
  EXPECT_EQ(parse(make_file(deep, 4)), status::corrupt_stream);
  std::vector<std::uint8_t> f(16, 0);
  f[5] = 1;  // header length 2^40
  EXPECT_EQ(parse(f), status::bad_magic);
  f = make_file("{}", 0);
  f[0] = 9;  // longer than the file
  EXPECT_EQ(parse(f), status::truncated);
}

TEST(Safetensors, RealFilesParse) {
  const std::string dir = ECQ_SHARED_DATA_DIR;
  std::vector<std::uint8_t> bytes;
  if (ecq::read_file_bytes(dir + "/stories260K.safetensors", &bytes) != status::ok)
    GTEST_SKIP() << "no " << dir << "/stories260K.safetensors";
  ecq::safetensors_file s;
  std::string error;
  ASSERT_EQ(s.parse(bytes.data(), bytes.size(), &error), status::ok) << error;
  std::uint64_t params = 0;
  for (const auto& t : s.tensors()) {
    EXPECT_EQ(t.dtype, tensor_dtype::f32);
    params += t.elements();
    std::vector<float> v;
    ASSERT_EQ(ecq::to_float(t, s.data(t), &v), status::ok);
    for (float x : v) ASSERT_TRUE(std::isfinite(x)) << t.name;
  }
  EXPECT_EQ(params, 260032u);  // the README's count
}

TEST(Safetensors, FileHelpersReportErrors) {
  std::vector<std::uint8_t> bytes;
  std::string error;
  EXPECT_EQ(ecq::read_file_bytes("/nonexistent/ecq/file", &bytes, &error), status::invalid_argument);
  EXPECT_THAT(error, ::testing::HasSubstr("/nonexistent/ecq/file"));
  EXPECT_EQ(ecq::write_file_bytes("/nonexistent/dir/x", {1}, &error), status::invalid_argument);
  const std::string path = ::testing::TempDir() + "ecq_safetensors_test.bin";
  ASSERT_EQ(ecq::write_file_bytes(path, sample_file()), status::ok);
  ASSERT_EQ(ecq::read_file_bytes(path, &bytes), status::ok);
  EXPECT_EQ(bytes, sample_file());
  std::remove(path.c_str());
}

/// write_file streams added tensors and declared ones (produced one at a time, while the one before is written)
/// into the same bytes serialize() builds, and reports a producer's failure or a wrong size.
TEST(Safetensors, WriteFileStreamsDeclaredTensors) {
  const std::string path = ::testing::TempDir() + "ecq_safetensors_stream_test.bin";
  std::vector<std::vector<std::uint8_t>> data;
  ecq::safetensors_writer all, streamed;
  for (std::size_t i = 0; i < 7; ++i) {
    data.emplace_back((i + 1) * 1000 * 4);
    for (std::size_t k = 0; k < data.back().size(); ++k) data.back()[k] = std::uint8_t(k * 31 + i);
    const std::string name = "t" + std::to_string(i);
    ASSERT_EQ(all.add(name, tensor_dtype::f32, {i + 1, 1000}, data.back()), status::ok);
    if (i % 3 == 1) ASSERT_EQ(streamed.add(name, tensor_dtype::f32, {i + 1, 1000}, data.back()), status::ok);
    else ASSERT_EQ(streamed.declare(name, tensor_dtype::f32, {i + 1, 1000}), status::ok);
  }
  EXPECT_EQ(streamed.declare("t0", tensor_dtype::f32, {1}), status::invalid_argument) << "a duplicate name";
  all.add_metadata("k", "v");
  streamed.add_metadata("k", "v");
  std::vector<std::size_t> asked;
  auto produce = [&](std::size_t i, std::vector<std::uint8_t>* out) {
    asked.push_back(i);
    *out = data[i];
    return status::ok;
  };
  ASSERT_EQ(streamed.write_file(path, produce), status::ok);
  EXPECT_EQ(asked, (std::vector<std::size_t>{0, 2, 3, 5, 6}));
  std::vector<std::uint8_t> bytes;
  ASSERT_EQ(ecq::read_file_bytes(path, &bytes), status::ok);
  EXPECT_EQ(bytes, all.serialize());
  // header_bytes() is the file's beginning, and the first tensor's bytes follow it (ecq unpack's O_DIRECT writer
  // places every tensor by it).
  const std::vector<std::uint8_t> head = streamed.header_bytes();
  ASSERT_EQ(head.size() % 8, 0u);
  ASSERT_LE(head.size() + data[0].size(), bytes.size());
  EXPECT_TRUE(std::equal(head.begin(), head.end(), bytes.begin()));
  EXPECT_TRUE(std::equal(data[0].begin(), data[0].end(), bytes.begin() + std::ptrdiff_t(head.size())));
  std::string error;
  EXPECT_EQ(streamed.write_file(path, [](std::size_t, std::vector<std::uint8_t>* out) {
    out->assign(3, 0);
    return status::ok;
  }, &error), status::bad_shape);
  EXPECT_THAT(error, ::testing::HasSubstr("t0"));
  EXPECT_EQ(streamed.write_file(path, [&](std::size_t i, std::vector<std::uint8_t>* out) {
    *out = data[i];
    return i == 3 ? status::corrupt_stream : status::ok;
  }, &error), status::corrupt_stream);
  EXPECT_THAT(error, ::testing::HasSubstr("t3"));
  EXPECT_EQ(streamed.write_file("/nonexistent/dir/x", produce, &error), status::invalid_argument);
  std::remove(path.c_str());
}

}  // namespace
