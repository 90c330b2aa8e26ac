// Tests for ecq/gemv_dequant.cuh (GPU; skipped without one): the fragments
// built from a narrow entry and raw bits are the exact weights (bf16 pairs)
// or the exact centred codes (4-bit affine), for every symbol and raw pattern.
#include <ecq/gemv_dequant.cuh>

#include "gpu_test_support.cuh"

namespace {

/// For each case i: entry[i] and the raw words of a block (raw_words per
/// case), round k[i] -> out[2 i], out[2 i + 1].
template <class Dequant>
__global__ void fragment_kernel(const std::uint32_t* entry, const std::uint32_t* raw, const int* k, int n,
                                std::uint32_t* out) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  std::uint32_t words[8];
  for (int j = 0; j < 8; ++j) words[j] = raw[8 * i + j];
  if constexpr (Dequant::weights_per_round == 2) {
    out[2 * i] = Dequant::fragment(entry[i], words, k[i]);
    out[2 * i + 1] = 0;
  } else {
    Dequant::fragments(entry[i], words, k[i], out[2 * i], out[2 * i + 1]);
  }
}

TEST(GemvDequant, Bf16PairsAreBitExact) {
  ECQ_REQUIRE_GPU();
  std::mt19937 rng(3);
  std::vector<std::uint32_t> entry, raw;
  std::vector<int> k;
  std::vector<std::uint16_t> want;
  for (int i = 0; i < 4096; ++i) {
    const std::uint16_t w0 = std::uint16_t(rng()), w1 = std::uint16_t(rng());  // any bit patterns, NaN and Inf too
    const int kk = int(rng() % 16);
    entry.push_back(ecq::narrow_entry::pack(3, 7, ecq::bf16_pair_dequant::payload((w0 >> 7) & 0xff, (w1 >> 7) & 0xff)));
    std::uint32_t words[8];
    for (auto& v : words) v = std::uint32_t(rng());
    const std::uint32_t half = ecq::bf16_pair_dequant::raw_byte(w0) | (ecq::bf16_pair_dequant::raw_byte(w1) << 8);
    words[kk / 2] = (kk & 1) ? (words[kk / 2] & 0xffffu) | (half << 16) : (words[kk / 2] & 0xffff0000u) | half;
    raw.insert(raw.end(), words, words + 8);
    k.push_back(kk);
    want.push_back(w0);
    want.push_back(w1);
  }
  ecq_test::device_vector<std::uint32_t> e(entry), r(raw), out(2 * entry.size());
  ecq_test::device_vector<int> kd(k);
  fragment_kernel<ecq::bf16_pair_dequant><<<16, 256>>>(e.p, r.p, kd.p, int(entry.size()), out.p);
  ECQ_TEST_CUDA(cudaDeviceSynchronize());
  const auto got = out.get();
  for (std::size_t i = 0; i < entry.size(); ++i) {
    ASSERT_EQ(got[2 * i] & 0xffffu, want[2 * i]) << i;
    ASSERT_EQ(got[2 * i] >> 16, want[2 * i + 1]) << i;
  }
}

TEST(GemvDequant, Affine4QuadsGiveTheCodes) {
  ECQ_REQUIRE_GPU();
  using D = ecq::affine4_quad_dequant<128>;
  std::mt19937 rng(4);
  std::vector<std::uint32_t> entry, raw;
  std::vector<int> k;
  std::vector<std::uint8_t> codes;
  for (int i = 0; i < 4096; ++i) {
    std::uint8_t q[4];
    for (auto& v : q) v = std::uint8_t(rng() & 15);
    const int kk = int(rng() % 8);
    entry.push_back(ecq::narrow_entry::pack(0, 1, D::payload(ecq::symbol_packing<4, 4, 2>::symbol_of(q))));
    std::uint32_t words[8];
    for (auto& v : words) v = std::uint32_t(rng());
    const std::uint32_t bits = D::raw_bits(kk % 4, q[0] & 3u, q[1] & 3u, q[2] & 3u, q[3] & 3u);
    const std::uint32_t mask = D::raw_bits(kk % 4, 3, 3, 3, 3);
    words[kk / 4] = (words[kk / 4] & ~mask) | bits;
    raw.insert(raw.end(), words, words + 8);
    k.push_back(kk);
    codes.insert(codes.end(), q, q + 4);
  }
  ecq_test::device_vector<std::uint32_t> e(entry), r(raw), out(2 * entry.size());
  ecq_test::device_vector<int> kd(k);
  fragment_kernel<D><<<16, 256>>>(e.p, r.p, kd.p, int(entry.size()), out.p);
  ECQ_TEST_CUDA(cudaDeviceSynchronize());
  const auto got = out.get();
  for (std::size_t i = 0; i < entry.size(); ++i) {
    // b0 = (q0 - 8, q1 - 8), b1 = 4 (q2 - 8, q3 - 8), each exact.
    const float v[4] = {ecq_bench::bf16_to_float(std::uint16_t(got[2 * i])),
                        ecq_bench::bf16_to_float(std::uint16_t(got[2 * i] >> 16)),
                        ecq_bench::bf16_to_float(std::uint16_t(got[2 * i + 1])) / 4,
                        ecq_bench::bf16_to_float(std::uint16_t(got[2 * i + 1] >> 16)) / 4};
    for (int j = 0; j < 4; ++j)
      ASSERT_EQ(v[j], float(codes[4 * i + std::size_t(j)]) - D::code_centre) << i << " code " << j;
  }
}

}  // namespace
