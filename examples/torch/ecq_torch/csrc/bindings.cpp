// examples/torch/ecq_torch/csrc/bindings.cpp — READ ME FIRST
//
// The C++ half of the Python package ecq_torch: ecq's containers, .ecq and
// safetensors files and CPU entry points, as PyTorch tensors. Built by
// ecq_torch/_extension.py with torch.utils.cpp_extension; ecq stays
// header-only and std-only, this file is the only one that sees both.
//
//   CodedTensor            one encoded container (ecq::encoded_tensor) that
//                          owns its bytes: encode(weight, scheme, layout),
//                          from_bytes(b) (checked), to_bytes(); rows, cols,
//                          nbytes, scheme, gpu_layout; decode_float(),
//                          decode_bf16(), gemv(x), rmsnorm_gemv(x, g, eps).
//                          layout "gpu" codes bf16 or affine4-g64|g128|g256
//                          in the GPU layout (ecq/gpu_container.hpp; scale and
//                          bias in bfloat16): the CUDA kernels' container,
//                          decoded on the host by ecq::gpu_dequantize.
//   GpuImage               (CUDA builds: has_cuda) gpu_tensor.hpp
//   rmsnorm(x, g, eps)     the unfused norm kernel (the fusion's baseline)
//   read_safetensors(p)    [(name, dtype, shape, float32 tensor)]
//   read_ecq(p)            ([(name, dtype, shape, CodedTensor or None)], metadata)
//   write_ecq(p, entries, metadata)
//
// Conventions. Activations are float32 tensors [batch, cols] (a 1-D x is one
// token); outputs are [batch, rows]. Every call runs on PyTorch's intra-op
// threads (torch_executor.hpp) with the GIL released. A failing ecq call
// raises RuntimeError naming the operation, the tensor and ecq's status; a
// bad argument raises ValueError (errors.hpp).
#include <torch/extension.h>

#include <ecq/cpu/tensor_ops.hpp>
#include <ecq/gpu_container.hpp>
#include <ecq/io/ecq_file.hpp>
#include <ecq/io/safetensors.hpp>
#include <ecq/schemes/scheme.hpp>
#include <ecq/status.hpp>

#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "errors.hpp"
#include "rmsnorm_gemv.hpp"
#include "torch_executor.hpp"
#ifdef ECQ_TORCH_CUDA
#include "gpu_tensor.hpp"
#endif

namespace py = pybind11;

namespace ecq_torch {
namespace {

[[noreturn]] void raise(const std::string& what, ecq::status s) {
  throw std::runtime_error(what + ": " + ecq::status_string(s));
}

/// The canonical scheme name of an opened container, from its scheme id and
/// parameter block ("uniform" alone: its target SQNR is not stored).
std::string scheme_name_of(const ecq::encoded_tensor& t) {
  ecq::scheme_spec spec;
  const std::uint32_t id = t.geometry().scheme_id;
  if (id == ecq::gpu_layout::bf16_pairs_scheme) return "gpu-bf16";
  if (id == ecq::gpu_layout::affine4_scheme)
    return ecq::affine_params::parse(t.scheme_params(), t.scheme_params_size(), &spec.codes) == ecq::status::ok
               ? "gpu-affine4-g" + std::to_string(spec.codes.group_size) + "-bf16"
               : "unknown";
  spec.kind = ecq::scheme_kind(t.geometry().scheme_id);
  switch (spec.kind) {
    case ecq::scheme_kind::bf16:
    case ecq::scheme_kind::f16:
      return spec.name();
    case ecq::scheme_kind::affine:
    case ecq::scheme_kind::codebook:
      if (ecq::affine_params::parse(t.scheme_params(), t.scheme_params_size(), &spec.codes) != ecq::status::ok)
        return "unknown";
      return spec.name();
    case ecq::scheme_kind::uniform:
      return "uniform";
  }
  return "unknown";
}

class CodedTensor {
 public:
  explicit CodedTensor(ecq::encoded_tensor t) : t_(std::move(t)), scheme_(scheme_name_of(t_)) {}

  static CodedTensor encode(const torch::Tensor& weight, const std::string& scheme, const std::string& layout) {
    ECQ_TORCH_REQUIRE(weight.dim() == 2, "ecq_torch.encode: expected a 2-D weight [rows, cols], got ", weight.dim(), "-D");
    ECQ_TORCH_REQUIRE(weight.size(0) > 0 && weight.size(1) > 0, "ecq_torch.encode: the weight is empty");
    ECQ_TORCH_REQUIRE(layout == "storage" || layout == "kernel" || layout == "gpu",
                "ecq_torch.encode: layout must be 'storage', 'kernel' or 'gpu', got '", layout, "'");
    ecq::scheme_spec spec;
    std::string error;
    if (ecq::parse_scheme(scheme, &spec, &error) != ecq::status::ok) throw std::invalid_argument(error);
    const torch::Tensor w = weight.detach().to(torch::kCPU, torch::kFloat32).contiguous();
    const std::uint64_t rows = std::uint64_t(w.size(0)), cols = std::uint64_t(w.size(1));
    if (layout == "gpu") return encode_gpu(w, spec);
    ecq::encoded_tensor t;
    ecq::status st;
    {
      py::gil_scoped_release release;
      ecq::quantized_tensor q;
      st = ecq::quantize(spec, w.data_ptr<float>(), rows, cols, &q);
      if (st != ecq::status::ok)
        raise("cannot quantise a " + shape_string(rows, cols) + " weight with " + spec.name() +
                  " (non-finite weights, or parameters the shape does not allow)",
              st);
      const ecq::layout_goal goal = layout == "kernel" ? ecq::layout_goal::kernel : ecq::layout_goal::storage;
      st = ecq::encode_quantized(q, ecq::choose_coding_options(q, goal), &t);
    }
    if (st != ecq::status::ok) raise("cannot encode a " + shape_string(rows, cols) + " " + spec.name() + " weight", st);
    return CodedTensor(std::move(t));
  }

  static CodedTensor from_bytes(const py::bytes& b) {
    const std::string s = b;  // one copy; open() takes another that the container owns
    ecq::encoded_tensor t;
    const ecq::status st =
        ecq::encoded_tensor::open(reinterpret_cast<const std::uint8_t*>(s.data()), s.size(), &t);
    if (st != ecq::status::ok) raise("not a valid ecq container (" + std::to_string(s.size()) + " bytes)", st);
    return CodedTensor(std::move(t));
  }

  /// The GPU layout's encoders: bf16 (the weights rounded to bfloat16, then lossless) or affine 4-bit with
  /// bfloat16 scales and biases (whatever side format the name gave).
  static CodedTensor encode_gpu(const torch::Tensor& w, ecq::scheme_spec spec) {
    const std::uint64_t rows = std::uint64_t(w.size(0)), cols = std::uint64_t(w.size(1));
    const bool bf16 = spec.kind == ecq::scheme_kind::bf16;
    ECQ_TORCH_REQUIRE(bf16 || (spec.kind == ecq::scheme_kind::affine && spec.codes.bits == 4),
                "ecq_torch.encode: layout 'gpu' takes bf16 or affine4-g64|g128|g256, got ", spec.name());
    ECQ_TORCH_REQUIRE(cols % ecq::gpu_layout::chunk_weights == 0, "ecq_torch.encode: layout 'gpu' needs a multiple of ",
                ecq::gpu_layout::chunk_weights, " columns, got ", cols, " (EcqLinear pads the columns)");
    ecq::encoded_tensor t;
    ecq::status st;
    {
      py::gil_scoped_release release;
      const float* f = w.data_ptr<float>();
      const std::size_t n = std::size_t(rows * cols);
      if (bf16) {
        std::vector<std::uint16_t> h(n);
        for (std::size_t i = 0; i < n; ++i) h[i] = ecq::float_to_bf16(f[i]);
        st = ecq::encode_gpu_bf16(h.data(), rows, cols, &t);
      } else {
        spec.codes.side_format = ecq::float16_format::bfloat16;
        ecq::quantized_tensor q;
        std::vector<std::uint8_t> codes;
        st = ecq::affine_quantize(f, rows, cols, spec.codes, &q, &codes);
        if (st == ecq::status::ok) {
          const std::vector<std::uint16_t> scales = side_values(q, ecq::section_tag::scales);
          const std::vector<std::uint16_t> biases = side_values(q, ecq::section_tag::biases);
          st = ecq::encode_gpu_affine4(codes.data(), scales, biases, rows, cols, spec.codes.group_size, &t);
        }
      }
    }
    if (st != ecq::status::ok)
      raise("cannot encode a " + shape_string(rows, cols) + " weight in the GPU layout as " + spec.name() +
                " (more than 64 exponents, a symbol too frequent for the kernels' narrow tables, or a group size "
                "other than 64, 128, 256)",
            st);
    return CodedTensor(std::move(t));
  }

  /// Whether the container is in the GPU layout (scheme 8 or 9): the CUDA path's, decoded here by gpu_dequantize.
  bool gpu_layout() const { return ecq::gpu_layout::weights_per_symbol(t_.geometry().scheme_id) != 0; }

  py::bytes to_bytes() const { return py::bytes(reinterpret_cast<const char*>(t_.data()), t_.size()); }
  std::int64_t rows() const { return std::int64_t(t_.geometry().rows); }
  std::int64_t cols() const { return std::int64_t(t_.geometry().cols); }
  std::int64_t nbytes() const { return std::int64_t(t_.size()); }
  const std::string& scheme() const { return scheme_; }
  const ecq::encoded_tensor& container() const { return t_; }

  torch::Tensor decode_float() const {
    torch::Tensor w = torch::empty({rows(), cols()}, torch::kFloat32);
    ecq::status st;
    {
      py::gil_scoped_release release;
      if (gpu_layout()) {
        std::vector<float> v;
        st = ecq::gpu_dequantize(t_, &v);
        if (st == ecq::status::ok) std::memcpy(w.data_ptr<float>(), v.data(), v.size() * sizeof(float));
      } else {
        st = ecq::decode_to_float(t_, w.data_ptr<float>(), std::size_t(w.numel()), torch_cpu_options());
      }
    }
    if (st != ecq::status::ok) raise("decode_float of " + describe(), st);
    return w;
  }

  torch::Tensor decode_bf16() const {
    if (gpu_layout()) return decode_float().to(torch::kBFloat16);  // scheme 8: exact; scheme 9: rounded to nearest
    torch::Tensor h = torch::empty({rows(), cols()}, torch::kBFloat16);
    ecq::status st;
    {
      py::gil_scoped_release release;
      st = ecq::decode_to_bf16(t_, reinterpret_cast<std::uint16_t*>(h.data_ptr<at::BFloat16>()),
                               std::size_t(h.numel()), torch_cpu_options());
    }
    if (st != ecq::status::ok) raise("decode_bf16 of " + describe(), st);
    return h;
  }

  torch::Tensor gemv(const torch::Tensor& x) const {
    const torch::Tensor xs = activations(x, "gemv");
    torch::Tensor y = torch::empty({xs.size(0), rows()}, torch::kFloat32);
    ecq::status st;
    {
      py::gil_scoped_release release;
      st = ecq::gemv(t_, xs.data_ptr<float>(), std::size_t(xs.size(0)), y.data_ptr<float>(), torch_cpu_options());
    }
    if (st != ecq::status::ok) raise("gemv of " + describe(), st);
    return x.dim() == 1 ? y.squeeze(0) : y;
  }

  torch::Tensor rmsnorm_gemv(const torch::Tensor& x, const torch::Tensor& g, double eps) const {
    const torch::Tensor xs = activations(x, "rmsnorm_gemv");
    const torch::Tensor gs = g.detach().to(torch::kFloat32).contiguous();
    ECQ_TORCH_REQUIRE(gs.dim() == 1 && gs.size(0) == cols(), "ecq_torch.rmsnorm_gemv: the norm weight must have ", cols(),
                " values, got shape ", gs.sizes());
    torch::Tensor y = torch::empty({xs.size(0), rows()}, torch::kFloat32);
    ecq::status st;
    {
      py::gil_scoped_release release;
      st = ecq_torch::rmsnorm_gemv(t_, xs.data_ptr<float>(), gs.data_ptr<float>(), float(eps),
                                   std::size_t(xs.size(0)), y.data_ptr<float>(), torch_cpu_options());
    }
    if (st != ecq::status::ok) raise("rmsnorm_gemv of " + describe(), st);
    return x.dim() == 1 ? y.squeeze(0) : y;
  }

#ifdef ECQ_TORCH_CUDA
  /// CHECKED: the device image (built once per container; the GpuImage handles share it).
  ecq_torch::GpuImage gpu_image() const {
    if (!gpu_) gpu_ = std::make_shared<const ecq_torch::GpuImage>(t_, describe());
    return *gpu_;
  }
#endif

  std::string describe() const { return "a " + shape_string(t_.geometry().rows, t_.geometry().cols) + " " + scheme_ + " tensor"; }

 private:
  static std::string shape_string(std::uint64_t rows, std::uint64_t cols) {
    return std::to_string(rows) + "x" + std::to_string(cols);
  }

  static std::vector<std::uint16_t> side_values(const ecq::quantized_tensor& q, ecq::section_tag tag) {
    const ecq::side_section* sec = q.find(tag);
    std::vector<std::uint16_t> v(sec->bytes.size() / 2);
    std::memcpy(v.data(), sec->bytes.data(), v.size() * 2);  // little-endian u16, as the section stores them
    return v;
  }

  /// x as a contiguous float32 [batch, cols] CPU tensor (a 1-D x is one token).
  torch::Tensor activations(const torch::Tensor& x, const char* op) const {
    ECQ_TORCH_REQUIRE(!gpu_layout(), "ecq_torch.", op, ": ", describe(), " is in the GPU layout, which runs on CUDA "
                "(EcqLinear on a CUDA device); on the CPU, decode it");
    ECQ_TORCH_REQUIRE(x.device().is_cpu(), "ecq_torch.", op, ": the CPU path needs CPU activations, got ", x.device());
    ECQ_TORCH_REQUIRE(x.dim() == 1 || x.dim() == 2, "ecq_torch.", op, ": expected x of shape [batch, ", cols(),
                "] or [", cols(), "], got ", x.sizes());
    const torch::Tensor x2 = x.dim() == 1 ? x.unsqueeze(0) : x;
    ECQ_TORCH_REQUIRE(x2.size(1) == cols(), "ecq_torch.", op, ": x has ", x2.size(1), " columns, ", describe(), " has ",
                cols());
    ECQ_TORCH_REQUIRE(x2.size(0) > 0, "ecq_torch.", op, ": empty batch");
    return x2.detach().to(torch::kFloat32).contiguous();
  }

  ecq::encoded_tensor t_;
  std::string scheme_;
#ifdef ECQ_TORCH_CUDA
  mutable std::shared_ptr<const ecq_torch::GpuImage> gpu_;
#endif
};

torch::Tensor rmsnorm_tensor(const torch::Tensor& x, const torch::Tensor& g, double eps) {
  ECQ_TORCH_REQUIRE(x.device().is_cpu() && x.dim() == 2, "ecq_torch.rmsnorm: expected a 2-D CPU tensor, got ", x.sizes());
  const torch::Tensor xs = x.detach().to(torch::kFloat32).contiguous();
  const torch::Tensor gs = g.detach().to(torch::kFloat32).contiguous();
  ECQ_TORCH_REQUIRE(gs.dim() == 1 && gs.size(0) == xs.size(1), "ecq_torch.rmsnorm: the norm weight must have ", xs.size(1),
              " values, got shape ", gs.sizes());
  torch::Tensor out = torch::empty_like(xs);
  {
    py::gil_scoped_release release;
    ecq_torch::rmsnorm(xs.data_ptr<float>(), gs.data_ptr<float>(), float(eps), std::size_t(xs.size(0)),
                       std::size_t(xs.size(1)), out.data_ptr<float>());
  }
  return out;
}

std::vector<std::int64_t> to_shape(const std::vector<std::uint64_t>& s) { return {s.begin(), s.end()}; }

py::list read_safetensors(const std::string& path) {
  std::vector<std::uint8_t> bytes;
  ecq::safetensors_file f;
  std::string error;
  if (ecq::read_file_bytes(path, &bytes, &error) != ecq::status::ok) throw std::runtime_error(error);
  const ecq::status st = f.parse(bytes.data(), bytes.size(), &error);
  if (st != ecq::status::ok) throw std::runtime_error(path + ": not a valid safetensors file (" + error + ")");
  py::list out;
  for (const ecq::safetensors_tensor& t : f.tensors()) {
    if (!ecq::converts_to_float(t.dtype))
      throw std::runtime_error(path + ": tensor \"" + t.name + "\" has dtype " + ecq::dtype_name(t.dtype) +
                               ", which does not convert to float32");
    std::vector<float> w;
    ecq::to_float(t, f.data(t), &w);
    torch::Tensor x = torch::empty({std::int64_t(w.size())}, torch::kFloat32);
    if (!w.empty()) std::memcpy(x.data_ptr<float>(), w.data(), w.size() * sizeof(float));
    out.append(py::make_tuple(t.name, ecq::dtype_name(t.dtype), to_shape(t.shape), x.reshape(to_shape(t.shape))));
  }
  return out;
}

py::tuple read_ecq(const std::string& path) {
  std::vector<std::uint8_t> bytes;
  ecq::ecq_file_reader f;
  std::string error;
  if (ecq::read_file_bytes(path, &bytes, &error) != ecq::status::ok) throw std::runtime_error(error);
  const ecq::status st = f.parse(bytes.data(), bytes.size(), &error);
  if (st != ecq::status::ok)
    throw std::runtime_error(path + ": not a valid .ecq file (" + ecq::status_string(st) + "): " + error);
  py::list tensors;
  for (std::size_t i = 0; i < f.tensors().size(); ++i) {
    const ecq::ecq_file_tensor& t = f.tensors()[i];
    py::object coded = py::none();
    if (t.elements() != 0) {
      ecq::encoded_tensor e;
      const ecq::status s = f.open_tensor(i, &e);
      if (s != ecq::status::ok) raise(path + ": tensor \"" + t.name + "\"", s);
      coded = py::cast(CodedTensor(std::move(e)));
    }
    tensors.append(py::make_tuple(t.name, ecq::dtype_name(t.source_dtype), to_shape(t.shape), coded));
  }
  py::dict metadata;
  for (const auto& kv : f.metadata()) metadata[py::str(kv.first)] = py::str(kv.second);
  return py::make_tuple(tensors, metadata);
}

/// entries: (name, source dtype name, shape, CodedTensor or None for an empty tensor).
void write_ecq(const std::string& path, const std::vector<py::tuple>& entries,
               const std::vector<std::pair<std::string, std::string>>& metadata) {
  ecq::ecq_file_writer w;
  for (const py::tuple& e : entries) {
    ECQ_TORCH_REQUIRE(e.size() == 4, "ecq_torch.write_ecq: entries are (name, dtype, shape, CodedTensor or None)");
    const std::string name = e[0].cast<std::string>();
    ecq::tensor_dtype dtype;
    if (!ecq::dtype_from_name(e[1].cast<std::string>(), &dtype))
      throw std::invalid_argument("write_ecq: tensor \"" + name + "\": unknown dtype \"" + e[1].cast<std::string>() + "\"");
    std::vector<std::uint64_t> shape;
    for (std::int64_t d : e[2].cast<std::vector<std::int64_t>>()) {
      ECQ_TORCH_REQUIRE(d >= 0, "ecq_torch.write_ecq: tensor \"", name, "\" has a negative dimension");
      shape.push_back(std::uint64_t(d));
    }
    const ecq::status s = e[3].is_none() ? w.add_empty(name, dtype, shape)
                                         : w.add(name, dtype, shape, e[3].cast<const CodedTensor&>().container());
    if (s != ecq::status::ok)
      raise("write_ecq: tensor \"" + name + "\" (an empty, over-long or duplicate name, a rank above 8, or a shape "
            "whose rows x cols is not the container's)", s);
  }
  for (const auto& kv : metadata) w.add_metadata(kv.first, kv.second);
  std::string error;
  if (ecq::write_file_bytes(path, w.serialize(), &error) != ecq::status::ok) throw std::runtime_error(error);
}

}  // namespace
}  // namespace ecq_torch

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  using ecq_torch::CodedTensor;
  m.doc() = "ecq's containers, files and CPU kernels for PyTorch (see ecq_torch/csrc/bindings.cpp)";
  py::class_<CodedTensor>(m, "CodedTensor")
      .def_static("encode", &CodedTensor::encode, py::arg("weight"), py::arg("scheme"), py::arg("layout") = "storage")
      .def_static("from_bytes", &CodedTensor::from_bytes, py::arg("data"))
      .def("to_bytes", &CodedTensor::to_bytes)
      .def_property_readonly("rows", &CodedTensor::rows)
      .def_property_readonly("cols", &CodedTensor::cols)
      .def_property_readonly("nbytes", &CodedTensor::nbytes)
      .def_property_readonly("scheme", &CodedTensor::scheme)
      .def_property_readonly("gpu_layout", &CodedTensor::gpu_layout)
      .def("decode_float", &CodedTensor::decode_float)
      .def("decode_bf16", &CodedTensor::decode_bf16)
      .def("gemv", &CodedTensor::gemv, py::arg("x"))
      .def("rmsnorm_gemv", &CodedTensor::rmsnorm_gemv, py::arg("x"), py::arg("norm_weight"), py::arg("eps"))
#ifdef ECQ_TORCH_CUDA
      .def("gpu_image", &CodedTensor::gpu_image)
#endif
      .def("__repr__", [](const CodedTensor& t) { return "<ecq_torch.CodedTensor " + t.describe() + ", " +
                                                          std::to_string(t.nbytes()) + " bytes>"; });
#ifdef ECQ_TORCH_CUDA
  ecq_torch::register_gpu_image(m);
  m.attr("has_cuda") = true;
#else
  m.attr("has_cuda") = false;
#endif
  m.def("rmsnorm", &ecq_torch::rmsnorm_tensor, py::arg("x"), py::arg("norm_weight"), py::arg("eps"));
  m.def("read_safetensors", &ecq_torch::read_safetensors, py::arg("path"));
  m.def("read_ecq", &ecq_torch::read_ecq, py::arg("path"));
  m.def("write_ecq", &ecq_torch::write_ecq, py::arg("path"), py::arg("entries"), py::arg("metadata"));
}
