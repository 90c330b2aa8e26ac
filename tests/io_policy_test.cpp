// Tests for include/ecq/io/policy.hpp: roles guessed from the names of the
// common frameworks; the decisions on a checkpoint built here (matrices,
// norms, biases, statistics, embeddings, convolutions, scalars, integers,
// wide-range and non-finite tensors, --keep and --only); that no tensor
// stored by the scheme is larger than its lossless storage and none stored
// losslessly larger than its bytes; and bit-exact round trips through an
// .ecq file for every dtype (F32 with NaNs, infinities, subnormals and
// negative zero; every F16 and BF16 pattern; integers, BOOL, F64).
#include <ecq/io/ecq_file.hpp>
#include <ecq/io/policy.hpp>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <iterator>
#include <random>
#include <string>
#include <vector>

#include "schemes_test_weights.hpp"

namespace {

using ecq::status;
using ecq::tensor_decision;
using ecq::tensor_dtype;
using ecq::tensor_role;

TEST(Policy, RolesFromTheNamesFrameworksUse) {
  const std::pair<const char*, tensor_role> cases[] = {
      {"model.layers.0.input_layernorm.weight", tensor_role::norm},
      {"model.norm.weight", tensor_role::norm},
      {"layers.3.attention_norm.weight", tensor_role::norm},
      {"transformer.h.0.ln_1.weight", tensor_role::norm},
      {"transformer.ln_f.bias", tensor_role::norm},  // a norm's bias is the norm's
      {"rms_att.weight", tensor_role::norm},
      {"Encode/Layer_0/layer_norm/layer_norm_scale/concat", tensor_role::norm},
      {"batch_norm_0.w_2", tensor_role::norm},
      {"bn1.running_mean", tensor_role::statistic},
      {"features.1.running_var", tensor_role::statistic},
      {"bn1.num_batches_tracked", tensor_role::statistic},
      {"encoder.layer.0.attention.output.dense.bias", tensor_role::bias},
      {"mlp.biases", tensor_role::bias},
      {"model.embed_tokens.weight", tensor_role::embedding},
      {"tok_embeddings.weight", tensor_role::embedding},
      {"module/Embeddings_en", tensor_role::embedding},
      {"transformer.wte.weight", tensor_role::embedding},
      {"lm_head.weight", tensor_role::output_head},
      {"output.weight", tensor_role::output_head},
      {"model.layers.0.mlp.down_proj.weight", tensor_role::weight},
      {"conv1.weight", tensor_role::weight},
      {"lnx.weight", tensor_role::weight},  // "ln" followed by a letter is not a layer norm
      {"layers.0.output.dense.weight", tensor_role::weight},
  };
  for (const auto& c : cases) EXPECT_EQ(ecq::guess_role(c.first), c.second) << c.first;
}

struct source_tensor {
  std::string name;
  tensor_dtype dtype;
  std::vector<std::uint64_t> shape;
  std::vector<std::uint8_t> bytes;
};

std::uint64_t elements_of(const std::vector<std::uint64_t>& shape) {
  std::uint64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

source_tensor f32_tensor(std::string name, std::vector<std::uint64_t> shape, std::uint32_t seed, float scale = 0.02f) {
  source_tensor t{std::move(name), tensor_dtype::f32, std::move(shape), {}};
  const std::uint64_t n = elements_of(t.shape);
  const auto w = ecq_test::synthetic_tensor(1, n, seed).w;
  t.bytes.resize(std::size_t(4 * n));
  for (std::size_t i = 0; i < w.size(); ++i) {
    const float x = w[i] * (scale / 0.02f);
    std::memcpy(&t.bytes[4 * i], &x, 4);
  }
  return t;
}

source_tensor bytes_tensor(std::string name, tensor_dtype d, std::vector<std::uint64_t> shape, std::uint32_t seed) {
  source_tensor t{std::move(name), d, std::move(shape), {}};
  t.bytes.resize(std::size_t(elements_of(t.shape) * ecq::dtype_size(d)));
  std::mt19937 rng(seed);
  for (auto& b : t.bytes) b = std::uint8_t(d == tensor_dtype::boolean ? rng() % 2 : rng());
  return t;
}

/// A checkpoint shaped like a small convolutional network with a transformer head.
std::vector<source_tensor> checkpoint() {
  std::vector<source_tensor> c;
  c.push_back(f32_tensor("embed_tokens.weight", {96, 128}, 1));
  c.push_back(f32_tensor("layers.0.mlp.weight", {160, 128}, 2));
  c.push_back(f32_tensor("layers.0.mlp.bias", {160}, 3));
  c.push_back(f32_tensor("layers.0.post_norm.weight", {128}, 4, 1.0f));
  c.push_back(f32_tensor("conv1.weight", {16, 3, 3, 3}, 5));  // 3 columns: no group of 64
  c.push_back(f32_tensor("bn1.running_var", {16}, 6, 9.8e7f));
  c.push_back(f32_tensor("wide.weight", {8, 64}, 7, 2.0e6f));  // beyond binary16 scales and biases
  auto nan = f32_tensor("nan.weight", {8, 64}, 8);
  const float q = std::nanf("");
  std::memcpy(&nan.bytes[40], &q, 4);
  c.push_back(nan);
  c.push_back(f32_tensor("lm_head.weight", {64, 128}, 9));
  c.push_back(f32_tensor("scale", {}, 10));
  c.push_back(bytes_tensor("step", tensor_dtype::i64, {}, 11));
  c.push_back(bytes_tensor("position_ids", tensor_dtype::i32, {1, 300}, 12));
  c.push_back(source_tensor{"unused", tensor_dtype::f16, {0, 4}, {}});
  return c;
}

ecq::packed_tensor pack(const ecq::tensor_policy& p, const char* scheme, const source_tensor& t) {
  ecq::scheme_spec spec;
  if (scheme != nullptr) {
    EXPECT_EQ(ecq::parse_scheme(scheme, &spec), status::ok);
  }
  ecq::packed_tensor out;
  ecq::pack_tensor(p, scheme != nullptr ? &spec : nullptr, t.name, t.dtype, t.shape, t.bytes.data(), {}, &out);
  return out;
}

TEST(Policy, DecisionsOnAConvolutionalCheckpoint) {
  const auto c = checkpoint();
  const ecq::tensor_policy defaults;
  struct expect {
    tensor_decision decision;
    const char* reason;  // a part of the reason
  };
  const expect want[] = {
      {tensor_decision::scheme, "96 x 128, embedding"},
      {tensor_decision::scheme, "160 x 128"},
      {tensor_decision::lossless, "1-D"},
      {tensor_decision::lossless, "1-D"},
      {tensor_decision::lossless, "3 columns, fewer than a group of 64"},
      {tensor_decision::raw, "1-D; 64 bytes, no more than a"},
      {tensor_decision::lossless, "exceed what binary16 scales and biases hold"},
      {tensor_decision::lossless, "1 non-finite values"},
      {tensor_decision::scheme, "64 x 128, output head"},
      {tensor_decision::raw, "0-D; 4 bytes, no more than a"},
      {tensor_decision::raw, "I64 values are kept exactly; no scheme codes I64"},
      {tensor_decision::raw, "no scheme codes I32"},
      {tensor_decision::empty, "no elements"},
  };
  ASSERT_EQ(c.size(), std::size(want));
  for (std::size_t i = 0; i < c.size(); ++i) {
    const auto p = pack(defaults, "affine4-g64", c[i]);
    // Small 1-D tensors may go either way between lossless and raw; the test names the decisions that are certain.
    if (want[i].decision == tensor_decision::lossless && p.decision == tensor_decision::raw) {
      EXPECT_THAT(p.reason, ::testing::HasSubstr("no more than a")) << c[i].name;
    } else {
      EXPECT_EQ(p.decision, want[i].decision) << c[i].name << ": " << p.reason;
    }
    EXPECT_THAT(p.reason, ::testing::HasSubstr(want[i].reason)) << c[i].name;
    if (p.decision == tensor_decision::scheme) {
      EXPECT_EQ(p.coding, "affine4-g64") << c[i].name;
    }
    if (p.decision == tensor_decision::lossless) {
      EXPECT_EQ(p.coding, "f32") << c[i].name;
    }
  }
  // The running variance of up to ~1e8 would fail affine4-g64 if it got there: it falls back, named so.
  ecq::tensor_policy all;
  ecq::scheme_spec spec;
  ASSERT_EQ(ecq::parse_scheme("affine4-g64", &spec), status::ok);
  auto wide = f32_tensor("stats", {4, 64}, 13, 9.8e7f);
  ecq::packed_tensor p;
  ecq::pack_tensor(all, &spec, wide.name, wide.dtype, wide.shape, wide.bytes.data(), {}, &p);
  EXPECT_NE(p.decision, tensor_decision::scheme);  // lossless f32, or raw where f32 would not be smaller
  EXPECT_THAT(p.reason, ::testing::StartsWith("affine4-g64 cannot represent it: values in ["));
  // ... and a -bf16 scheme holds the range.
  ASSERT_EQ(ecq::parse_scheme("affine4-g64-bf16", &spec), status::ok);
  ecq::pack_tensor(all, &spec, wide.name, wide.dtype, wide.shape, wide.bytes.data(), {}, &p);
  EXPECT_EQ(p.decision, tensor_decision::scheme) << p.reason;
}

TEST(Policy, KeepOnlyEmbeddingsAndHeadAreConfigurable) {
  const auto c = checkpoint();
  ecq::tensor_policy p;
  p.keep = [](const std::string& n) { return n.find("mlp") != std::string::npos; };
  EXPECT_EQ(pack(p, "affine4-g64", c[1]).decision, tensor_decision::lossless);
  EXPECT_THAT(pack(p, "affine4-g64", c[1]).reason, ::testing::HasSubstr("matched by --keep"));
  EXPECT_EQ(pack(p, "affine4-g64", c[0]).decision, tensor_decision::scheme);
  ecq::tensor_policy only;
  only.only = [](const std::string& n) { return n.find("mlp") != std::string::npos; };
  EXPECT_EQ(pack(only, "affine4-g64", c[1]).decision, tensor_decision::scheme);
  EXPECT_THAT(pack(only, "affine4-g64", c[0]).reason, ::testing::HasSubstr("not matched by --only"));
  ecq::tensor_policy kept;
  kept.quantize_embeddings = false;
  kept.quantize_output_head = false;
  EXPECT_THAT(pack(kept, "affine4-g64", c[0]).reason, ::testing::HasSubstr("an embedding (kept by the policy)"));
  EXPECT_THAT(pack(kept, "affine4-g64", c[8]).reason, ::testing::HasSubstr("the output head (kept by the policy)"));
  EXPECT_EQ(pack(kept, "affine4-g64", c[8]).decision, tensor_decision::lossless);
  ecq::tensor_policy all;
  all.all_tensors = true;
  EXPECT_EQ(pack(all, "affine4-g64", c[3]).decision, tensor_decision::scheme) << "a norm, offered anyway";
  EXPECT_NE(pack(all, "affine4-g64", c[6]).decision, tensor_decision::scheme) << "still unrepresentable";
  // Without a scheme, everything is lossless or raw.
  for (const auto& t : c) {
    const auto l = pack({}, nullptr, t);
    EXPECT_NE(l.decision, tensor_decision::scheme) << t.name;
  }
}

TEST(Policy, NoTensorCostsMoreThanItsLosslessStorageOrItsBytes) {
  auto c = checkpoint();
  c.push_back(f32_tensor("tiny.weight", {2, 64}, 14));  // a matrix whose affine container is mostly fixed cost
  for (const char* scheme : {"affine4-g64", "bf16", "uniform-sqnr25", "codebook-nf4-g64"}) {
    for (const auto& t : c) {
      const auto s = pack({}, scheme, t);
      const auto l = pack({}, nullptr, t);
      EXPECT_LE(s.stored_bytes(), l.stored_bytes()) << scheme << " " << t.name;
      EXPECT_LE(l.stored_bytes(), t.bytes.size()) << t.name;
      if (l.decision == tensor_decision::raw) {
        EXPECT_EQ(l.raw, t.bytes) << t.name;
      }
    }
  }
}

/// Packs with `scheme` (null: lossless), writes an .ecq file, reads it back.
std::vector<std::uint8_t> pack_file(const std::vector<source_tensor>& c, const char* scheme) {
  ecq::ecq_file_writer w;
  for (const auto& t : c)
    EXPECT_EQ(ecq::add_packed(&w, t.name, t.dtype, t.shape, pack({}, scheme, t)), status::ok) << t.name;
  return w.serialize();
}

void expect_bit_exact(const std::vector<source_tensor>& c, const std::vector<std::uint8_t>& file) {
  ecq::ecq_file_reader r;
  std::string error;
  ASSERT_EQ(r.parse(file.data(), file.size(), &error), status::ok) << error;
  ASSERT_EQ(r.tensors().size(), c.size());
  for (std::size_t i = 0; i < c.size(); ++i) {
    std::vector<std::uint8_t> bytes;
    tensor_dtype d{};
    ASSERT_EQ(ecq::unpack_tensor(r, i, nullptr, &bytes, &d), status::ok) << c[i].name;
    EXPECT_EQ(d, c[i].dtype) << c[i].name;
    EXPECT_TRUE(bytes == c[i].bytes) << c[i].name << ": not bit-exact";
    EXPECT_EQ(r.tensors()[i].shape, c[i].shape);
  }
}

TEST(Policy, LosslessRoundTripsAreBitExactForEveryDtype) {
  std::vector<source_tensor> c;
  // F32 with every kind of special value among random patterns.
  source_tensor f{"f32.weight", tensor_dtype::f32, {40, 70}, {}};
  std::mt19937 rng(16);
  const std::uint32_t specials[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u,
                                    0xffc12345u, 0x7f800001u, 0x00000001u, 0x807fffffu, 0x00800000u};
  for (std::size_t i = 0; i < 40 * 70; ++i) {
    const std::uint32_t u = i < std::size(specials) ? specials[i] : (i % 3 == 0 ? std::uint32_t(rng()) : 0x3c000000u + std::uint32_t(rng() % 0x01000000u));
    for (int k = 0; k < 4; ++k) f.bytes.push_back(std::uint8_t(u >> (8 * k)));
  }
  c.push_back(f);
  // Every 16-bit pattern, as F16 and as BF16 (NaNs, infinities, subnormals, -0 among them), one in 16 of
  // the values; the others weight-like, so that the coding (not raw storage) carries them.
  const auto weights = ecq_test::synthetic_tensor(1, 16 * 65536, 17).w;
  for (auto d : {tensor_dtype::f16, tensor_dtype::bf16}) {
    source_tensor h{d == tensor_dtype::f16 ? "f16" : "bf16", d, {1024, 1024}, {}};
    const auto format = d == tensor_dtype::f16 ? ecq::float16_format::binary16 : ecq::float16_format::bfloat16;
    for (std::uint32_t i = 0; i < 16 * 65536; ++i) {
      const std::uint16_t v = i % 16 == 0 ? std::uint16_t((i / 16) * 40503u) : ecq::float_to_float16(weights[i], format);
      h.bytes.push_back(std::uint8_t(v));
      h.bytes.push_back(std::uint8_t(v >> 8));
    }
    c.push_back(h);
  }
  // F32 values that are all bfloat16 values: coded as bf16, given back as F32.
  source_tensor b{"bf16_as_f32", tensor_dtype::f32, {32, 64}, {}};
  for (std::size_t i = 0; i < 32 * 64; ++i) {
    const std::uint32_t u = std::uint32_t(0x3c00u + rng() % 0x0400u) << 16;
    for (int k = 0; k < 4; ++k) b.bytes.push_back(std::uint8_t(u >> (8 * k)));
  }
  c.push_back(b);
  std::uint32_t seed = 20;
  for (auto d : {tensor_dtype::i8, tensor_dtype::u8, tensor_dtype::i16, tensor_dtype::u16, tensor_dtype::i32,
                 tensor_dtype::u32, tensor_dtype::i64, tensor_dtype::u64, tensor_dtype::boolean, tensor_dtype::f64,
                 tensor_dtype::f8_e4m3}) {
    c.push_back(bytes_tensor(std::string("x_") + ecq::dtype_name(d), d, {3, 50}, seed++));
    c.push_back(bytes_tensor(std::string("s_") + ecq::dtype_name(d), d, {}, seed++));
  }
  c.push_back(source_tensor{"empty", tensor_dtype::bf16, {2, 0}, {}});
  for (const char* scheme : {static_cast<const char*>(nullptr), "affine4-g64"}) {
    // With a lossy scheme, only the matrices of float dtypes change; check the others.
    std::vector<source_tensor> exact;
    for (const auto& t : c)
      if (scheme == nullptr || pack({}, scheme, t).decision != tensor_decision::scheme) exact.push_back(t);
    if (scheme != nullptr) {
      EXPECT_LT(exact.size(), c.size());
    }
    expect_bit_exact(exact, pack_file(exact, scheme));
  }
  EXPECT_EQ(pack({}, nullptr, c[0]).coding, "f32");
  EXPECT_EQ(pack({}, nullptr, c[1]).coding, "f16");
  EXPECT_EQ(pack({}, nullptr, c[2]).coding, "bf16");
  const auto as_bf16 = pack({}, nullptr, c[3]);
  EXPECT_EQ(as_bf16.coding, "bf16");
  EXPECT_THAT(as_bf16.reason, ::testing::HasSubstr("every value is a bfloat16"));
  EXPECT_LT(as_bf16.stored_bytes(), c[3].bytes.size() / 2);
}

TEST(Policy, UnpackConvertsOnRequestAndGivesLossyTensorsAsFloat32) {
  const auto c = checkpoint();
  const auto file = pack_file(c, "affine4-g64");
  ecq::ecq_file_reader r;
  ASSERT_EQ(r.parse(file.data(), file.size()), status::ok);
  // A scheme tensor: F32 values, those of the decoded container.
  std::vector<std::uint8_t> bytes;
  tensor_dtype d{};
  ASSERT_EQ(ecq::unpack_tensor(r, 1, nullptr, &bytes, &d), status::ok);
  EXPECT_EQ(d, tensor_dtype::f32);
  ecq::encoded_tensor e;
  ASSERT_EQ(r.open_tensor(1, &e), status::ok);
  std::vector<float> v;
  ASSERT_EQ(ecq::decode_and_dequantize(e, &v), status::ok);
  ASSERT_EQ(bytes.size(), 4 * v.size());
  EXPECT_EQ(std::memcmp(bytes.data(), v.data(), bytes.size()), 0);
  // Requested BF16: floats rounded; an integer raw tensor keeps its bytes and dtype.
  const tensor_dtype bf = tensor_dtype::bf16;
  ASSERT_EQ(ecq::unpack_tensor(r, 1, &bf, &bytes, &d), status::ok);
  EXPECT_EQ(d, tensor_dtype::bf16);
  ASSERT_EQ(bytes.size(), 2 * v.size());
  EXPECT_EQ(bytes[0] | bytes[1] << 8, ecq::float_to_bf16(v[0]));
  ASSERT_EQ(ecq::unpack_tensor(r, 11, &bf, &bytes, &d), status::ok);
  EXPECT_EQ(d, tensor_dtype::i32);
  EXPECT_EQ(bytes, c[11].bytes);
  // A raw F32 scalar converted to BF16.
  ASSERT_EQ(ecq::unpack_tensor(r, 9, &bf, &bytes, &d), status::ok);
  float scalar;
  std::memcpy(&scalar, c[9].bytes.data(), 4);
  EXPECT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes[0] | bytes[1] << 8, ecq::float_to_bf16(scalar));
  const tensor_dtype i8 = tensor_dtype::i8;
  EXPECT_EQ(ecq::unpack_tensor(r, 1, &i8, &bytes, &d), status::invalid_argument);
  EXPECT_EQ(ecq::unpack_tensor(r, 99, nullptr, &bytes, &d), status::invalid_argument);
  // Decoding is bounded: a limit below the tensor's size is refused, for lossless containers too.
  ASSERT_EQ(r.tensors()[6].storage, ecq::ecq_storage::container);  // "wide.weight", f32-coded
  ASSERT_EQ(r.open_tensor(6, &e), status::ok);
  EXPECT_EQ(e.geometry().scheme_id, std::uint32_t(ecq::scheme_kind::f32));
  EXPECT_EQ(ecq::unpack_tensor(r, 6, nullptr, &bytes, &d, 100), status::output_too_small);
  EXPECT_EQ(ecq::unpack_tensor(r, 1, nullptr, &bytes, &d, 100), status::output_too_small);
}

/// unpack_tensor_to gives unpack_tensor's bytes and dtype for every tensor, lossless, lossy, raw and empty, in
/// automatic and requested dtypes, whether the memory is aligned (decoded in place) or not (through scratch),
/// and refuses a size other than the tensor's.
TEST(Policy, UnpackIntoCallerMemoryEqualsUnpack) {
  const auto c = checkpoint();
  for (const char* scheme : {static_cast<const char*>(nullptr), "affine4-g64", "bf16"}) {
    const auto file = pack_file(c, scheme);
    ecq::ecq_file_reader r;
    ASSERT_EQ(r.parse(file.data(), file.size()), status::ok);
    const tensor_dtype bf = tensor_dtype::bf16, f32 = tensor_dtype::f32;
    for (const tensor_dtype* want : {static_cast<const tensor_dtype*>(nullptr), &bf, &f32}) {
      for (std::size_t i = 0; i < r.tensors().size(); ++i) {
        const std::string what = std::string(scheme ? scheme : "lossless") + ", " + r.tensors()[i].name;
        std::vector<std::uint8_t> expect, scratch;
        tensor_dtype d{}, got{};
        ASSERT_EQ(ecq::unpack_tensor(r, i, want, &expect, &d), status::ok) << what;
        std::vector<std::uint32_t> memory(expect.size() / 4 + 2, 0xdeadbeefu);  // 4-byte aligned
        for (std::size_t shift : {std::size_t(0), std::size_t(1)}) {
          auto* out = reinterpret_cast<std::uint8_t*>(memory.data()) + shift;
          ASSERT_EQ(ecq::unpack_tensor_to(r, i, want, out, expect.size(), &scratch, &got), status::ok) << what;
          EXPECT_EQ(got, d) << what;
          EXPECT_TRUE(std::equal(expect.begin(), expect.end(), out)) << what << ", shifted by " << shift;
        }
        EXPECT_EQ(ecq::unpack_tensor_to(r, i, want, reinterpret_cast<std::uint8_t*>(memory.data()),
                                        expect.size() + 1, &scratch, &got),
                  status::bad_shape)
            << what;
      }
    }
  }
  std::vector<std::uint8_t> scratch;
  tensor_dtype d{};
  const auto file = pack_file(checkpoint(), "affine4-g64");
  ecq::ecq_file_reader r;
  ASSERT_EQ(r.parse(file.data(), file.size()), status::ok);
  std::vector<float> big(r.tensors()[1].elements());
  EXPECT_EQ(ecq::unpack_tensor_to(r, 99, nullptr, nullptr, 0, &scratch, &d), status::invalid_argument);
  EXPECT_EQ(ecq::unpack_tensor_to(r, 1, nullptr, reinterpret_cast<std::uint8_t*>(big.data()), big.size() * 4,
                                  &scratch, &d, 100),
            status::output_too_small);
}

TEST(Policy, RealCheckpointsPackEveryTensorNoneLargerThanLossless) {
  bool any = false;
  for (const char* file : {"stories260K.safetensors", "use-lite.safetensors"}) {
    std::vector<std::uint8_t> bytes;
    if (ecq::read_file_bytes(std::string(ECQ_SHARED_DATA_DIR) + "/" + file, &bytes) != status::ok) continue;
    ecq::safetensors_file f;
    ASSERT_EQ(f.parse(bytes.data(), bytes.size()), status::ok);
    any = true;
    ecq::scheme_spec spec;
    ASSERT_EQ(ecq::parse_scheme("affine4-g64", &spec), status::ok);
    std::uint64_t source = 0, lossless = 0;
    for (const auto& t : f.tensors()) {
      if (t.elements() > (1u << 20)) continue;  // keeps the test fast: the 2 M-weight embedding is left out
      ecq::packed_tensor s, l;
      ecq::pack_tensor({}, &spec, t.name, t.dtype, t.shape, f.data(t), {}, &s);
      ecq::pack_tensor({}, nullptr, t.name, t.dtype, t.shape, f.data(t), {}, &l);
      EXPECT_LE(s.stored_bytes(), l.stored_bytes()) << file << " " << t.name;
      EXPECT_LE(l.stored_bytes(), t.end - t.begin) << file << " " << t.name;
      if (ecq::guess_role(t.name) == tensor_role::norm) {
        EXPECT_NE(s.decision, tensor_decision::scheme) << t.name;
      }
      source += t.end - t.begin;
      lossless += l.stored_bytes();
    }
    EXPECT_LT(double(lossless), 0.9 * double(source)) << file << ": f32 lossless below 28.8 bits/weight";
  }
  if (!any) GTEST_SKIP() << "no real weights in " << ECQ_SHARED_DATA_DIR;
}

}  // namespace
