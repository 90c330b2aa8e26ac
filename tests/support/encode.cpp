// ecq_test_support: the encoders (see ecq_test_support.hpp). One translation
// unit per group of instantiations, so that a parallel build spreads them.
#include "ecq_test_support.hpp"

namespace ecq_test {

ecq::status encode(const std::uint16_t* symbols, const ecq::tensor_description& d, const ecq::coding_options& o,
                   ecq::encoded_tensor* out) {
  return ecq::encoded_tensor::encode(symbols, d, o, out);
}

ecq::status encode_quantized(const ecq::quantized_tensor& q, const ecq::coding_options& o, ecq::encoded_tensor* out) {
  return ecq::encode_quantized(q, o, out);
}

}  // namespace ecq_test
