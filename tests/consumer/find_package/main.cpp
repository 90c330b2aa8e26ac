// Consumes an installed ecq through find_package(ecq) and ecq::ecq.
#include <ecq/ecq.hpp>

#include <cstdio>

#ifndef ECQ_VERSION_MAJOR
#error "<ecq/ecq.hpp> must define ECQ_VERSION_MAJOR (from <ecq/config.hpp>)"
#endif
static_assert(ECQ_VERSION_MAJOR == ECQ_EXPECTED_VERSION_MAJOR,
              "ECQ_VERSION_MAJOR in the headers differs from project(ecq VERSION ...) in CMakeLists.txt");

int main() {
  std::printf("ecq %d: consumed through find_package\n", ECQ_VERSION_MAJOR);
  return 0;
}
