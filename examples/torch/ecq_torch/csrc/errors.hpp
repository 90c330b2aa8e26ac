// examples/torch/ecq_torch/csrc/errors.hpp — READ ME FIRST
//
// The extension's argument checks: ECQ_TORCH_REQUIRE(cond, parts...) raises
// ValueError (std::invalid_argument) with the parts concatenated: strings,
// integers, a device, a shape, a dtype. The message is built with std::string
// alone, never through an ostream: TORCH_CHECK's formatting (c10::str, an
// ostringstream) crashed the CUDA build of this extension on the H200 machine
// (torch 2.11, g++ 13.3) with a segfault in the extension's call of
// std::ostream::_M_insert<long>, twice, at the first failing check (not at
// build time, not in the CPU build); the cause was not found, so no error
// path of either build goes through std::ostream.
#ifndef ECQ_TORCH_ERRORS_HPP
#define ECQ_TORCH_ERRORS_HPP

#include <c10/core/Device.h>
#include <c10/core/ScalarType.h>
#include <c10/util/ArrayRef.h>

#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace ecq_torch {
namespace detail {

inline void append(std::string& s, const std::string& v) { s += v; }
inline void append(std::string& s, const char* v) { s += v; }
template <class T, typename std::enable_if<std::is_integral<T>::value && !std::is_same<T, bool>::value, int>::type = 0>
void append(std::string& s, T v) {
  s += std::to_string(v);
}
inline void append(std::string& s, const c10::Device& d) { s += d.str(); }
inline void append(std::string& s, c10::ScalarType t) { s += c10::toString(t); }
inline void append(std::string& s, c10::IntArrayRef sizes) {
  s += "[";
  for (std::size_t i = 0; i < sizes.size(); ++i) s += (i ? ", " : "") + std::to_string(sizes[i]);
  s += "]";
}

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  std::string s;
  (void)std::initializer_list<int>{(append(s, parts), 0)...};
  throw std::invalid_argument(s);
}

}  // namespace detail
}  // namespace ecq_torch

#define ECQ_TORCH_REQUIRE(cond, ...)                           \
  do {                                                         \
    if (!(cond)) ::ecq_torch::detail::fail(__VA_ARGS__);       \
  } while (0)

#endif  // ECQ_TORCH_ERRORS_HPP
