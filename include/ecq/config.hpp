// ecq/config.hpp — READ ME FIRST
//
// The one place that knows about compilers. Every other ecq header includes
// this one and uses only the macros below:
//
//   ECQ_HOST_DEVICE   on every function a CUDA kernel may call. Expands to
//                     `__host__ __device__` under nvcc, to nothing elsewhere.
//   ECQ_DEVICE        device-only functions (collectives in *.cuh headers).
//   ECQ_FORCEINLINE   hot-loop helpers whose inlining the decoders rely on.
//   ECQ_PRAGMA_UNROLL before a loop with a compile-time trip count.
//   ECQ_EXEC_CHECK_DISABLE before host/device templates that call user
//                     callables, which may be host-only lambdas.
//   ECQ_ASSERT(cond)  programmer errors only (violated preconditions of the
//                     fast path). Off unless ECQ_ENABLE_ASSERTS is defined;
//                     works in device code. Untrusted input never reaches an
//                     assert: it is rejected with an ecq::status instead.
//   ECQ_NAMESPACE_BEGIN / ECQ_NAMESPACE_END
//                     open `namespace ecq { inline namespace v0 {`. The inline
//                     namespace carries the ABI version, so two builds of ecq
//                     with different versions can be linked into one program.
//
// Device-usable headers include nothing host-only; host-only convenience code
// (std::vector, std::string) is kept in separate functions that are not marked
// ECQ_HOST_DEVICE. The library builds with -fno-exceptions.
#ifndef ECQ_CONFIG_HPP
#define ECQ_CONFIG_HPP

#define ECQ_VERSION_MAJOR 0
#define ECQ_VERSION_MINOR 1
#define ECQ_VERSION_PATCH 0

// Encoded streams are arrays of little-endian words read in place, which
// every target ecq supports (x86-64, AArch64, NVIDIA GPUs) satisfies.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ecq requires a little-endian target"
#endif

#if defined(__CUDACC__) || defined(__HIPCC__)
#define ECQ_HOST_DEVICE __host__ __device__
#define ECQ_DEVICE __device__
#define ECQ_IS_CUDA_COMPILER() 1
#else
#define ECQ_HOST_DEVICE
#define ECQ_DEVICE
#define ECQ_IS_CUDA_COMPILER() 0
#endif

// True while compiling the device side of a CUDA translation unit.
#if defined(__CUDA_ARCH__)
#define ECQ_IS_DEVICE_CODE() 1
#else
#define ECQ_IS_DEVICE_CODE() 0
#endif

#if defined(_MSC_VER) && !defined(__clang__)
#define ECQ_FORCEINLINE __forceinline
#else
#define ECQ_FORCEINLINE inline __attribute__((always_inline))
#endif

// Before a host/device function template that calls a user-supplied callable
// (a sink, a dequantiser): the callable may be host-only (a lambda in host
// code), which is fine as long as that instantiation only runs on the host.
// Without this nvcc rejects such instantiations (CUB and Thrust do the same).
#if ECQ_IS_CUDA_COMPILER() && !defined(__HIPCC__)
#define ECQ_EXEC_CHECK_DISABLE _Pragma("nv_exec_check_disable")
#else
#define ECQ_EXEC_CHECK_DISABLE
#endif

// Full unrolling of loops with a compile-time trip count. nvcc's host pass
// accepts neither spelling without a warning, and host code that needs the
// unrolling is compiled by the host compiler itself, so it gets none.
#if ECQ_IS_DEVICE_CODE() || (defined(__clang__) && !ECQ_IS_CUDA_COMPILER())
#define ECQ_PRAGMA_UNROLL _Pragma("unroll")
#elif ECQ_IS_CUDA_COMPILER()
#define ECQ_PRAGMA_UNROLL
#elif defined(__GNUC__)
#define ECQ_PRAGMA_UNROLL _Pragma("GCC unroll 64")
#else
#define ECQ_PRAGMA_UNROLL
#endif

#if defined(ECQ_ENABLE_ASSERTS)
#if ECQ_IS_DEVICE_CODE()
#include <cassert>
#define ECQ_ASSERT(cond) assert(cond)
#else
#include <cstdio>
#include <cstdlib>
#define ECQ_ASSERT(cond)                                                          \
  ((cond) ? (void)0                                                               \
          : (std::fprintf(stderr, "%s:%d: ECQ_ASSERT(%s) failed\n", __FILE__,     \
                          __LINE__, #cond),                                       \
             std::abort()))
#endif
#else
#define ECQ_ASSERT(cond) ((void)0)
#endif

#define ECQ_NAMESPACE_BEGIN \
  namespace ecq {           \
  inline namespace v0 {
#define ECQ_NAMESPACE_END \
  }                       \
  }

#endif  // ECQ_CONFIG_HPP
