// ecq/cpu/detail/streaming_copy.hpp — copies to memory that will not be read soon, behind ecq/cpu/tensor_ops.hpp.
//
// READ ME FIRST
// * copy_streaming(dest, src, bytes) is std::memcpy with non-temporal stores
//   on x86-64 (SSE2 `movntdq`, part of the base ISA, so no run-time
//   dispatch): whole 16-byte pieces of dest go to memory without first
//   reading their cache lines (no read-for-ownership), which halves the
//   memory traffic of an output far larger than the caches. The unaligned
//   head and the tail are copied with memcpy. Other targets: memcpy.
// * After a run of copy_streaming, streaming_fence() orders those stores
//   before any later store (sfence), as every user of non-temporal stores
//   must before handing the memory to another thread.
// * Used for the weights of decode_to_float / decode_to_bf16 (dequantised
//   row by row into an L1-sized buffer, then copied) when the whole output is
//   at least streaming_output_bytes.
#ifndef ECQ_CPU_DETAIL_STREAMING_COPY_HPP
#define ECQ_CPU_DETAIL_STREAMING_COPY_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "../../config.hpp"
#include "../../cpu_features.hpp"

#if ECQ_HAS_X86_KERNELS()
#include <immintrin.h>
#endif

ECQ_NAMESPACE_BEGIN
namespace detail {

/// memcpy(dest, src, bytes) with non-temporal stores where the target has them (see the file comment).
inline void copy_streaming(void* dest, const void* src, std::size_t bytes) {
#if ECQ_HAS_X86_KERNELS()
  auto* d = static_cast<unsigned char*>(dest);
  const auto* s = static_cast<const unsigned char*>(src);
  const std::size_t head = (16 - (reinterpret_cast<std::uintptr_t>(d) & 15)) & 15;
  if (bytes < head + 64) {
    std::memcpy(d, s, bytes);
    return;
  }
  std::memcpy(d, s, head);
  d += head;
  s += head;
  bytes -= head;
  for (; bytes >= 16; d += 16, s += 16, bytes -= 16)
    _mm_stream_si128(reinterpret_cast<__m128i*>(d), _mm_loadu_si128(reinterpret_cast<const __m128i*>(s)));
  std::memcpy(d, s, bytes);
#else
  std::memcpy(dest, src, bytes);
#endif
}

/// Orders the non-temporal stores of copy_streaming before later stores.
inline void streaming_fence() {
#if ECQ_HAS_X86_KERNELS()
  _mm_sfence();
#endif
}

}  // namespace detail
ECQ_NAMESPACE_END

#endif  // ECQ_CPU_DETAIL_STREAMING_COPY_HPP
