// Fuzz target (e): arbitrary bytes as a container in the GPU layout
// (ecq/gpu_container.hpp, docs/format.md section 15).
//
// Input: arbitrary bytes, opened as one encoded tensor (checksum not
// verified, as a hostile writer would make it match), then checked against
// the layout. Properties checked, for every container check_gpu_layout
// accepts:
//   * what the device loader and kernels will read lies inside the
//     container: sections 10 and 11 hold exactly blocks x their part, every
//     stream holds at least the 2 x 32 state words and ends before the
//     checksum, every region is 16-byte aligned;
//   * the narrow tables build (the checks guarantee frequencies <= 255);
//   * for tensors small enough to decode in milliseconds, the host reader
//     gpu_dequantize never reads outside the container (AddressSanitizer)
//     and returns rows x cols weights or a status.
#include <cstddef>
#include <cstdint>
#include <vector>

#include <ecq/container.hpp>
#include <ecq/gpu_container.hpp>

#include "fuzz_check.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ecq::encoded_tensor t;
  if (ecq::encoded_tensor::open(data, size, &t, ecq::open_options{false}) != ecq::status::ok) return 0;
  ecq::gpu_tensor_layout L;
  if (ecq::check_gpu_layout(t, &L) != ecq::status::ok) return 0;

  const std::uint64_t end = t.size() - ecq::container_checksum_size, blocks = std::uint64_t(L.tiles) * L.chunks;
  const std::uint32_t w = ecq::gpu_layout::weights_per_symbol(L.scheme_id);
  ECQ_FUZZ_CHECK(w != 0 && L.rounds * w == ecq::gpu_layout::chunk_weights && L.rounds % 8 == 0);
  ECQ_FUZZ_CHECK(L.tiles == (L.rows + 31) / 32 && L.chunks == L.cols / ecq::gpu_layout::chunk_weights);
  ECQ_FUZZ_CHECK(L.raw_offset % 16 == 0 && L.raw_offset + blocks * L.raw_words * 4 <= end);
  if (L.scheme_id == ecq::gpu_layout::affine4_scheme)
    ECQ_FUZZ_CHECK(L.side_offset % 16 == 0 && L.side_offset + blocks * L.side_words * 4 <= end);
  ECQ_FUZZ_CHECK(L.payload_offset % 16 == 0 && L.index_offset % 16 == 0);
  const std::uint64_t* index = t.view().block_index();
  for (std::uint64_t b = 0; b < blocks; ++b) {
    ECQ_FUZZ_CHECK(index[2 * b] % 16 == 0 && index[2 * b + 1] >= 128);
    ECQ_FUZZ_CHECK(L.payload_offset + index[2 * b] + index[2 * b + 1] <= end);
  }
  std::vector<std::uint32_t> table;
  ECQ_FUZZ_CHECK(ecq::build_gpu_table(t, L, ecq::gpu_table_kind::gemv, &table) == ecq::status::ok);
  ECQ_FUZZ_CHECK(table.size() == std::size_t(1) << L.scale_bits);
  if (L.scheme_id == ecq::gpu_layout::affine4_scheme)
    ECQ_FUZZ_CHECK(ecq::build_gpu_table(t, L, ecq::gpu_table_kind::codes, &table) == ecq::status::ok);

  if (std::uint64_t(L.rows) * L.cols > (std::uint64_t(1) << 18)) return 0;
  std::vector<float> weights;
  if (ecq::gpu_dequantize(t, &weights) == ecq::status::ok)
    ECQ_FUZZ_CHECK(weights.size() == std::size_t(L.rows) * L.cols);
  return 0;
}
