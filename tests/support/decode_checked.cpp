// ecq_test_support: the checked decoders (see ecq_test_support.hpp);
// decode_and_dequantize shares decode_checked's instantiations.
#include "ecq_test_support.hpp"

namespace ecq_test {

ecq::status decode_checked(const ecq::encoded_tensor& t, std::uint16_t* out, std::size_t capacity) {
  return t.decode_checked(out, capacity);
}

ecq::status decode_and_dequantize(const ecq::encoded_tensor& t, std::vector<float>* out, std::uint64_t max_weights) {
  return ecq::decode_and_dequantize(t, out, max_weights);
}

}  // namespace ecq_test
