// Tests for ecq/device_tensor.cuh and ecq/device_decode.cuh (GPU; skipped
// without one): containers written by the library's GPU-layout encoder
// (ecq/gpu_container.hpp), with a last tile of padding rows, go through the
// loader (from an encoded_tensor and from an .ecq file) and decode on the
// device bit for bit; the fused GEMV runs on the loader's view (K split in
// parts, y only as long as the tensor); and damaged files (bit flips,
// truncations) through the loader give a status or exact data, with the
// checksum verified, and never a device error, with it ignored (a hostile
// writer recomputes it). Run under compute-sanitizer memcheck too
// (bench/cuda/run_device.sh).
#include <ecq/device_decode.cuh>
#include <ecq/device_tensor.cuh>
#include <ecq/fused_gemv.cuh>
#include <ecq/gpu_container.hpp>
#include <ecq/io/ecq_file.hpp>

#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <vector>

namespace {

#define ECQ_REQUIRE_GPU()                                                                  \
  do {                                                                                     \
    int n_ = 0;                                                                            \
    if (cudaGetDeviceCount(&n_) != cudaSuccess || n_ == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)

template <class T>
struct device_buffer {
  T* p = nullptr;
  std::size_t n = 0;
  explicit device_buffer(std::size_t count) : n(count) {
    if (cudaMalloc(&p, (count ? count : 1) * sizeof(T)) != cudaSuccess) p = nullptr;
  }
  device_buffer(const device_buffer&) = delete;
  device_buffer& operator=(const device_buffer&) = delete;
  ~device_buffer() { cudaFree(p); }
  std::vector<T> get() const {
    std::vector<T> v(n);
    cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost);
    return v;
  }
};

std::uint64_t hash(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}
float bf16_value(std::uint16_t b) {
  const std::uint32_t u = std::uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

constexpr std::uint32_t kRows = 45, kCols = 1024;  // tiles of 32 and 13 rows; 4 chunks

// Exponents 116..125 (triangular) with random signs and mantissas: values
// of the size of trained weights.
std::vector<std::uint16_t> bf16_weights(std::uint32_t rows = kRows, std::uint32_t cols = kCols) {
  std::vector<std::uint16_t> w(std::size_t(rows) * cols);
  for (std::size_t i = 0; i < w.size(); ++i) {
    const std::uint64_t h = hash(i);
    const std::uint32_t e = 116 + std::uint32_t((h % 6) + ((h >> 3) % 5));
    w[i] = std::uint16_t(((h >> 8) & 0x8000u) | (e << 7) | ((h >> 20) & 0x7fu));
  }
  return w;
}

struct affine4_input {
  std::vector<std::uint8_t> codes;
  std::vector<std::uint16_t> scales, biases;
  double weight(std::size_t r, std::size_t c) const {
    const std::size_t g = r * (kCols / 128) + c / 128;
    return double(bf16_value(scales[g])) * codes[r * kCols + c] + double(bf16_value(biases[g]));
  }
};
affine4_input affine4_weights(std::uint32_t rows = kRows, std::uint32_t cols = kCols) {
  affine4_input a;
  a.codes.resize(std::size_t(rows) * cols);
  for (std::size_t i = 0; i < a.codes.size(); ++i) {
    const std::uint64_t h = hash(i + 5);
    a.codes[i] = std::uint8_t(((h & 15) + ((h >> 4) & 15) + ((h >> 8) & 15)) / 3);
  }
  for (std::size_t g = 0; g < a.codes.size() / 128; ++g) {
    a.scales.push_back(std::uint16_t(0x3c00u + (hash(g) & 0xffu)));   // ~0.008
    a.biases.push_back(std::uint16_t(0xbdf0u + (hash(g + 99) & 0xfu)));  // ~-0.06
  }
  return a;
}

std::vector<std::uint16_t> activations(int batch) {
  std::vector<std::uint16_t> x(std::size_t(batch) * kCols);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = std::uint16_t(0x3f00u + (hash(i + 1234) & 0x1ffu));  // 0.5..2, +-
  for (std::size_t i = 0; i < x.size(); ++i) x[i] ^= std::uint16_t(hash(i) & 0x8000u);
  return x;
}

// The fused GEMV on a loader's view: blocks split evenly over the K-parts,
// each part's items evenly over its blocks' warps.
template <class Decoder, class Dequant, int Batch>
__global__ void __launch_bounds__(128) gemv_kernel(ecq::device_tensor_view t, const std::uint16_t* x, float* y) {
  using G = ecq::block_fused_gemv<4, Decoder, Dequant, Batch>;
  extern __shared__ uint4 smem[];
  const std::uint32_t blocks_per_part = gridDim.x / t.parts(), part = blockIdx.x / blocks_per_part;
  const std::uint32_t columns = t.chunks_per_part * ecq::device_tensor_view::chunk_cols;
  G g(smem, columns);
  g.load(t.table, x, t.cols, part * columns);
  ecq::item_range r = ecq::warp_item_range(t.items_per_part(), (blockIdx.x % blocks_per_part) * 4 + threadIdx.x / 32,
                                           blocks_per_part * 4);
  g.run(t, r.first + part * t.items_per_part(), r.last + part * t.items_per_part(), y, t.rows);
}

template <class Decoder, class Dequant, int Batch>
double gemv_error(const ecq::device_tensor& d, std::uint32_t parts, const std::function<double(std::size_t, std::size_t)>& w) {
  ecq::device_tensor_view v;
  if (!d.view().with_parts(parts, &v)) return -1;
  const std::vector<std::uint16_t> xh = activations(Batch);
  device_buffer<std::uint16_t> x(xh.size());
  cudaMemcpy(x.p, xh.data(), xh.size() * 2, cudaMemcpyHostToDevice);
  // y holds Batch * rows floats and a guard after them that must stay untouched.
  device_buffer<float> y(std::size_t(Batch) * kRows + 64);
  cudaMemset(y.p, 0, y.n * 4);
  using G = ecq::block_fused_gemv<4, Decoder, Dequant, Batch>;
  const std::size_t smem = G::shared_bytes(kCols / parts);
  auto kern = gemv_kernel<Decoder, Dequant, Batch>;
  if (cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)) != cudaSuccess) return -1;
  kern<<<3 * parts, 128, smem>>>(v, x.p, y.p);
  if (cudaDeviceSynchronize() != cudaSuccess) return -1;
  const std::vector<float> got = y.get();
  double num = 0, den = 0;
  for (int b = 0; b < Batch; ++b)
    for (std::uint32_t r = 0; r < kRows; ++r) {
      double ref = 0;
      for (std::uint32_t c = 0; c < kCols; ++c) ref += w(r, c) * bf16_value(xh[std::size_t(b) * kCols + c]);
      const double e = got[std::size_t(b) * kRows + r] - ref;
      num += e * e;
      den += ref * ref;
    }
  for (std::size_t i = std::size_t(Batch) * kRows; i < got.size(); ++i)
    if (got[i] != 0.0f) return 1.0;  // written past the tensor's rows
  return std::sqrt(num / den);
}

std::vector<std::uint8_t> pack_nibbles(const std::vector<std::uint8_t>& codes) {
  std::vector<std::uint8_t> p(codes.size() / 2);
  for (std::size_t i = 0; i < p.size(); ++i) p[i] = std::uint8_t(codes[2 * i] | (codes[2 * i + 1] << 4));
  return p;
}

/// Loads t, decodes it on the device and compares with the expectation:
/// @return ok with *exact telling whether the output equals `want`; else
///         the loader's or the decode's status.
ecq::status load_and_decode(const ecq::encoded_tensor& t, ecq::pinned_staging* staging, cudaStream_t stream,
                            const std::vector<std::uint8_t>& want, bool* exact) {
  *exact = false;
  ecq::device_tensor d;
  ecq::status st = ecq::device_tensor::load(t, stream, staging, &d);
  if (st != ecq::status::ok) return st;
  const ecq::device_tensor_view& v = d.view();
  const std::size_t weights = std::size_t(v.rows) * v.cols;
  device_buffer<std::uint8_t> out(v.scheme_id == 8 ? 2 * weights : weights / 2);  // bf16, or two codes a byte
  device_buffer<std::uint32_t> flags(1);
  cudaMemsetAsync(flags.p, 0, 4, stream);
  st = v.scheme_id == 8 ? ecq::decode_bf16(v, reinterpret_cast<std::uint16_t*>(out.p), flags.p, stream)
                        : ecq::decode_codes(v, out.p, flags.p, stream);
  if (st != ecq::status::ok) return st;
  st = ecq::read_decode_flags(flags.p, stream);
  if (st != ecq::status::ok) return st;
  *exact = out.get() == want;
  return ecq::status::ok;
}

std::vector<std::uint8_t> bytes_of(const std::vector<std::uint16_t>& w) {
  std::vector<std::uint8_t> b(w.size() * 2);
  std::memcpy(b.data(), w.data(), b.size());
  return b;
}

TEST(DeviceTensor, Bf16DecodesBitExactlyAndRunsTheFusedGemv) {
  ECQ_REQUIRE_GPU();
  const std::vector<std::uint16_t> w = bf16_weights();
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq::encode_gpu_bf16(w.data(), kRows, kCols, &t), ecq::status::ok);
  ASSERT_EQ(t.geometry().scale_bits, 12u);  // the kernels below are instantiated for it
  ecq::pinned_staging staging;
  bool exact = false;
  ASSERT_EQ(load_and_decode(t, &staging, 0, bytes_of(w), &exact), ecq::status::ok);
  EXPECT_TRUE(exact);

  ecq::device_tensor d;
  ASSERT_EQ(ecq::device_tensor::load(t, 0, &staging, &d), ecq::status::ok);
  using dec = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, ecq::staged_words<1024, 8, 1>>;
  using bd = ecq::bf16_pair_dequant;
  auto wv = [&](std::size_t r, std::size_t c) { return double(bf16_value(w[r * kCols + c])); };
  EXPECT_LT((gemv_error<dec, bd, 1>(d, 1, wv)), 1e-5);
  EXPECT_LT((gemv_error<dec, bd, 8>(d, 2, wv)), 1e-5);
  EXPECT_LT((gemv_error<dec, bd, 8>(d, 4, wv)), 1e-5);
}

TEST(DeviceTensor, Affine4CodesDecodeExactlyAndRunTheFusedGemv) {
  ECQ_REQUIRE_GPU();
  const affine4_input a = affine4_weights();
  ecq::encoded_tensor t;
  ASSERT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, kRows, kCols, 128, &t), ecq::status::ok);
  ASSERT_EQ(t.geometry().scale_bits, 12u);
  ecq::pinned_staging staging;
  bool exact = false;
  ASSERT_EQ(load_and_decode(t, &staging, 0, pack_nibbles(a.codes), &exact), ecq::status::ok);
  EXPECT_TRUE(exact);

  ecq::device_tensor d;
  ASSERT_EQ(ecq::device_tensor::load(t, 0, &staging, &d), ecq::status::ok);
  using dec = ecq::warp_decoder<ecq::rans32x16<12>, ecq::narrow_entry_policy, 1, ecq::staged_words<1024, 8, 1>>;
  using ad = ecq::affine4_quad_dequant<128>;
  auto wv = [&](std::size_t r, std::size_t c) { return a.weight(r, c); };
  EXPECT_LT((gemv_error<dec, ad, 1>(d, 1, wv)), 1e-5);
  EXPECT_LT((gemv_error<dec, ad, 8>(d, 2, wv)), 1e-5);
}

TEST(DeviceTensor, LoadsATensorOfAnEcqFile) {
  ECQ_REQUIRE_GPU();
  const std::vector<std::uint16_t> w = bf16_weights();
  const affine4_input a = affine4_weights();
  ecq::encoded_tensor tb, ta;
  ASSERT_EQ(ecq::encode_gpu_bf16(w.data(), kRows, kCols, &tb), ecq::status::ok);
  ASSERT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, kRows, kCols, 128, &ta), ecq::status::ok);
  ecq::ecq_file_writer writer;
  ASSERT_EQ(writer.add("w_bf16", ecq::tensor_dtype::bf16, {kRows, kCols}, tb), ecq::status::ok);
  ASSERT_EQ(writer.add("w_q4", ecq::tensor_dtype::bf16, {kRows, kCols}, ta), ecq::status::ok);
  const std::vector<std::uint8_t> file = writer.serialize();
  ecq::ecq_file_reader reader;
  ASSERT_EQ(reader.parse(file.data(), file.size()), ecq::status::ok);
  ecq::pinned_staging staging;
  ecq::device_tensor d;
  ASSERT_EQ(ecq::device_tensor::load(reader, 1, 0, &staging, &d), ecq::status::ok);
  EXPECT_EQ(d.view().scheme_id, 9u);
  device_buffer<std::uint8_t> out(std::size_t(kRows) * kCols / 2);
  ASSERT_EQ(ecq::decode_codes(d.view(), out.p, nullptr, 0), ecq::status::ok);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(out.get(), pack_nibbles(a.codes));
  EXPECT_EQ(ecq::decode_bf16(d.view(), nullptr, nullptr, 0), ecq::status::invalid_argument);  // scheme 9
  EXPECT_EQ(ecq::device_tensor::load(reader, 2, 0, &staging, &d), ecq::status::invalid_argument);
  ecq::encoded_tensor plain;  // a format-valid container outside the GPU layout
  const std::vector<std::uint16_t> symbols(64, 3);
  ecq::tensor_description desc;
  desc.rows = 4;
  desc.cols = 16;
  desc.symbols_per_row = 16;
  desc.alphabet_size = 8;
  ASSERT_EQ(ecq::encoded_tensor::encode(symbols.data(), desc, ecq::coding_options{}, &plain), ecq::status::ok);
  EXPECT_EQ(ecq::device_tensor::load(plain, 0, &staging, &d), ecq::status::unsupported_parameters);
}

// The decoders' sinks (bf16 through the 128-byte and the 64-byte row
// stage, which decode_bf16 picks between by ScaleBits; 4-bit codes) in both
// item orders (interleaved: warp g of G takes items g, g + G, ...;
// contiguous ranges) on grids of 1 and 3 blocks as well as the default
// one: each warp then decodes many
// items, so its word ring, raw pipeline and stores cross item boundaries
// that are not neighbours in memory, and the last tile's 8 rows end the
// tensor. Every launch must write exactly the tensor's bytes (a guard after
// them stays as poisoned).
TEST(DeviceTensor, DecodesExactlyInEveryItemOrderAndGrid) {
  ECQ_REQUIRE_GPU();
  constexpr std::uint32_t rows = 200, cols = 4096;  // 7 tiles (the last of 8 rows) x 16 chunks = 112 items
  const std::vector<std::uint16_t> w = bf16_weights(rows, cols);
  const affine4_input a = affine4_weights(rows, cols);
  ecq::encoded_tensor tb, ta;
  ASSERT_EQ(ecq::encode_gpu_bf16(w.data(), rows, cols, &tb), ecq::status::ok);
  ASSERT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, rows, cols, 128, &ta), ecq::status::ok);
  ecq::pinned_staging staging;
  ecq::device_tensor db, da;
  ASSERT_EQ(ecq::device_tensor::load(tb, 0, &staging, &db), ecq::status::ok);
  ASSERT_EQ(ecq::device_tensor::load(ta, 0, &staging, &da), ecq::status::ok);
  const std::vector<std::uint8_t> want_b = bytes_of(w), want_a = pack_nibbles(a.codes);
  constexpr std::size_t guard = 256;
  using ecq::detail::item_order;
  for (item_order order : {item_order::interleaved, item_order::contiguous})
    for (int blocks : {1, 3, 0})
      for (int sink = 0; sink < 3; ++sink) {  // bf16 128-byte stage, bf16 64-byte stage, codes
        const int scheme = sink < 2 ? 0 : 1;
        const std::vector<std::uint8_t>& want = scheme == 0 ? want_b : want_a;
        device_buffer<std::uint8_t> out(want.size() + guard);
        device_buffer<std::uint32_t> flags(1);
        ASSERT_EQ(cudaMemset(out.p, 0xa5, out.n), cudaSuccess);
        ASSERT_EQ(cudaMemset(flags.p, 0, 4), cudaSuccess);
        const ecq::device_tensor_view& v = scheme == 0 ? db.view() : da.view();
        auto* out16 = reinterpret_cast<std::uint16_t*>(out.p);
        const ecq::status st =
            sink == 0   ? ecq::detail::dispatch_decode<ecq::detail::bf16_store_sink<ecq::detail::row_stage128>>(
                              v, v.table, out16, flags.p, 0, order, blocks)
            : sink == 1 ? ecq::detail::dispatch_decode<ecq::detail::bf16_store_sink<ecq::detail::row_stage64>>(
                              v, v.table, out16, flags.p, 0, order, blocks)
                        : ecq::detail::dispatch_decode<ecq::detail::code_store_sink>(v, v.code_table, out.p, flags.p,
                                                                                    0, order, blocks);
        ASSERT_EQ(st, ecq::status::ok);
        ASSERT_EQ(ecq::read_decode_flags(flags.p, 0), ecq::status::ok);
        std::vector<std::uint8_t> got = out.get();
        const std::string what = std::string(sink == 0   ? "bf16 128-byte stage"
                                             : sink == 1 ? "bf16 64-byte stage"
                                                         : "codes") +
                                 (order == item_order::interleaved ? " interleaved" : " contiguous") +
                                 ", blocks " + std::to_string(blocks);
        for (std::size_t i = want.size(); i < got.size(); ++i) ASSERT_EQ(got[i], 0xa5) << what << ": guard byte " << i;
        got.resize(want.size());
        EXPECT_TRUE(got == want) << what;
      }
}

// The acceptance's loader check: 1000 bit-flipped and 100 truncated files.
// With the checksum verified every damaged file must give a status or decode
// exactly; with it ignored (as a hostile writer would make it match), a file
// the host checks accept may decode to other data, flagged or not, but the
// device must report no error (and memcheck none).
TEST(DeviceTensor, DamagedFilesGiveAStatusOrExactDataAndNoDeviceError) {
  ECQ_REQUIRE_GPU();
  const std::vector<std::uint16_t> w = bf16_weights();
  const affine4_input a = affine4_weights();
  ecq::encoded_tensor tb, ta;
  ASSERT_EQ(ecq::encode_gpu_bf16(w.data(), kRows, kCols, &tb), ecq::status::ok);
  ASSERT_EQ(ecq::encode_gpu_affine4(a.codes.data(), a.scales, a.biases, kRows, kCols, 128, &ta), ecq::status::ok);
  const std::vector<std::uint8_t> want[2] = {bytes_of(w), pack_nibbles(a.codes)};
  const ecq::encoded_tensor* src[2] = {&tb, &ta};
  ecq::pinned_staging staging;
  cudaStream_t stream;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  int counts[2][4] = {};  // [checksum verified?][status, exact, flagged, other data]
  for (int i = 0; i < 1100; ++i) {
    const ecq::encoded_tensor& t = *src[i % 2];
    std::vector<std::uint8_t> bytes(t.data(), t.data() + t.size());
    if (i < 1000) {
      const std::uint64_t bit = hash(std::uint64_t(i) * 7 + 1) % (bytes.size() * 8);
      bytes[bit / 8] ^= std::uint8_t(1u << (bit % 8));
    } else {
      bytes.resize(hash(std::uint64_t(i)) % bytes.size());
    }
    for (int verify = 0; verify < 2; ++verify) {
      ecq::encoded_tensor opened;
      ecq::status st = ecq::encoded_tensor::open(bytes.data(), bytes.size(), &opened, ecq::open_options{verify == 1});
      bool exact = false;
      if (st == ecq::status::ok) st = load_and_decode(opened, &staging, stream, want[i % 2], &exact);
      ASSERT_NE(st, ecq::status::device_error) << "case " << i << ": " << cudaGetErrorString(cudaGetLastError());
      const int kind = st == ecq::status::corrupt_stream ? 2 : st != ecq::status::ok ? 0 : exact ? 1 : 3;
      ++counts[verify][kind];
      if (verify == 1) EXPECT_NE(kind, 3) << "case " << i << ": checksum-verified file decoded to other data";
    }
  }
  ASSERT_EQ(cudaStreamDestroy(stream), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  for (int verify = 1; verify >= 0; --verify)
    std::printf("checksum %s: %d statuses, %d exact, %d flagged corrupt_stream on the device, %d other data\n",
                verify ? "verified" : "ignored", counts[verify][0], counts[verify][1], counts[verify][2],
                counts[verify][3]);
}

}  // namespace
