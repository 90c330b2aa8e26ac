// ecq_test_support: the fast-path decoder (see ecq_test_support.hpp).
#include "ecq_test_support.hpp"

namespace ecq_test {

void decode(const ecq::encoded_tensor& t, std::uint16_t* out) { t.decode(out); }

}  // namespace ecq_test
