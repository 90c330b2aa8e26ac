// fuzz/fuzz_check.hpp — READ ME FIRST
//
// ECQ_FUZZ_CHECK(cond): the one way a fuzz target reports a broken property.
// It aborts with the condition's text, which libFuzzer (and replay_main.cpp
// under ctest) turns into a failure with the input saved. Active in every
// build type: a fuzz target without its checks would test nothing.
#ifndef ECQ_FUZZ_CHECK_HPP
#define ECQ_FUZZ_CHECK_HPP

#include <cstdio>
#include <cstdlib>

#define ECQ_FUZZ_CHECK(cond)                                                              \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      std::fprintf(stderr, "%s:%d: ECQ_FUZZ_CHECK(%s) failed\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                       \
    }                                                                                     \
  } while (0)

#endif  // ECQ_FUZZ_CHECK_HPP
