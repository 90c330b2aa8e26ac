// ecq/io/policy.hpp — READ ME FIRST
//
// How each tensor of a checkpoint is stored in an .ecq file, and how it
// comes back: the per-tensor policy of `ecq pack`, as quantisation tools
// apply it (llama.cpp's quantize, MLX's convert, GPTQ/AWQ quantise weight
// matrices and keep norms, biases, statistics and small tensors in their own
// precision). Host only. It lives in io/ because it decides between the
// schemes (ecq/schemes/) and the file's raw entries (ecq/io/ecq_file.hpp) by
// source dtype.
//
// Four decisions (tensor_decision), in the order plan_tensor tries them:
//   empty     a zero among the dimensions: no values, no container.
//   lossless  the source dtype's own lossless coding: F32 -> f32 (or bf16
//             when every value is a bfloat16: the low halves are all zero),
//             F16 -> f16, BF16 -> bf16, each bit-exact; no coding for the
//             other dtypes (F64, integers, BOOL, F8), which are stored raw.
//   raw       the bytes as they are, in the .ecq directory: whenever they are
//             no more than the lossless container plus the 16 bytes of a
//             container entry, so a tiny tensor never costs more than its
//             own bytes (plus one storage byte in the directory).
//   scheme    the chosen lossy scheme (--scheme), for tensors that suit it:
//               * a float dtype (F32, F16, BF16, F64);
//               * a matrix: at least 2-D with more than one row (the rows
//                 are all dimensions but the last);
//               * at least a group of columns (the scheme's group size);
//               * a name that policy.keep does not match, and that
//                 policy.only (when set) matches;
//               * not a norm, bias or statistic by its name (guess_role):
//                 the defaults of the tools above, since those tensors are
//                 small and sensitive; embeddings and the output head get
//                 the scheme unless policy says otherwise.
//             A tensor the scheme cannot represent (non-finite values, a
//             range beyond its 16-bit side data) falls back to lossless with
//             the reason; so does one whose scheme container would be larger
//             than its lossless storage. Packing never fails a file.
// Every decision carries a reason in words, which `ecq pack` and `ecq
// inspect` print.
//
// unpack_tensor is the inverse: raw entries give their bytes back; lossless
// containers give the source bytes back, bit for bit (decoded as bit
// patterns, so NaN payloads survive); lossy containers give float32.
#ifndef ECQ_IO_POLICY_HPP
#define ECQ_IO_POLICY_HPP

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../container.hpp"
#include "../cpu/tensor_ops.hpp"
#include "../gpu_container.hpp"
#include "../schemes/scheme.hpp"
#include "../status.hpp"
#include "ecq_file.hpp"
#include "safetensors.hpp"

ECQ_NAMESPACE_BEGIN

/// How a tensor is stored (see the file comment).
enum class tensor_decision : std::uint8_t { scheme, lossless, raw, empty };

/// @return "scheme", "lossless", "raw" or "empty".
inline const char* decision_name(tensor_decision d) {
  switch (d) {
    case tensor_decision::scheme: return "scheme";
    case tensor_decision::lossless: return "lossless";
    case tensor_decision::raw: return "raw";
    case tensor_decision::empty: return "empty";
  }
  return "?";
}

/// What a tensor's name says it is.
enum class tensor_role { weight, norm, bias, statistic, embedding, output_head };

/// Guesses a tensor's role from its name, the way checkpoints of the common
/// frameworks name them. The name is cut into parts at '.', '/' and ':' and
/// each part is compared in lower case:
///   statistic    running_mean, running_var, num_batches_tracked,
///                moving_mean, moving_variance (batch-norm statistics)
///   norm         a part containing "norm" (layer_norm, rms_norm, batch_norm,
///                input_layernorm, attention_norm), or starting with "ln"
///                followed by nothing, '_' or a digit (ln_f, ln_1, ln2), or
///                with "rms" (rms_att, rms_final)
///   bias         a part containing "bias"
///   embedding    a part containing "embed" (embed_tokens, tok_embeddings,
///                Embeddings_en), or wte / wpe
///   output_head  lm_head, or a name that is "output.weight" or "output"
///   weight       anything else
/// Statistics are tested first (batch_norm_0 holds running means), then
/// norms, biases, embeddings, the head.
inline tensor_role guess_role(const std::string& name) {
  std::vector<std::string> parts(1);
  for (char ch : name) {
    if (ch == '.' || ch == '/' || ch == ':') {
      parts.emplace_back();
    } else {
      parts.back() += (ch >= 'A' && ch <= 'Z') ? char(ch - 'A' + 'a') : ch;
    }
  }
  auto any = [&](auto&& pred) {
    for (const std::string& p : parts)
      if (pred(p)) return true;
    return false;
  };
  auto has = [](const std::string& p, const char* s) { return p.find(s) != std::string::npos; };
  auto starts = [](const std::string& p, const char* s) { return p.rfind(s, 0) == 0; };
  if (any([](const std::string& p) {
        return p == "running_mean" || p == "running_var" || p == "num_batches_tracked" || p == "moving_mean" ||
               p == "moving_variance";
      }))
    return tensor_role::statistic;
  if (any([&](const std::string& p) {
        return has(p, "norm") || starts(p, "rms") ||
               (starts(p, "ln") && (p.size() == 2 || p[2] == '_' || (p[2] >= '0' && p[2] <= '9')));
      }))
    return tensor_role::norm;
  if (any([&](const std::string& p) { return has(p, "bias"); })) return tensor_role::bias;
  if (any([&](const std::string& p) { return has(p, "embed") || p == "wte" || p == "wpe"; }))
    return tensor_role::embedding;
  if (any([](const std::string& p) { return p == "lm_head"; }) || name == "output.weight" || name == "output")
    return tensor_role::output_head;
  return tensor_role::weight;
}

/// @return "weight", "norm", "bias", "statistic", "embedding" or "output head".
inline const char* role_name(tensor_role r) {
  switch (r) {
    case tensor_role::weight: return "weight";
    case tensor_role::norm: return "norm";
    case tensor_role::bias: return "bias";
    case tensor_role::statistic: return "statistic";
    case tensor_role::embedding: return "embedding";
    case tensor_role::output_head: return "output head";
  }
  return "?";
}

/// Which tensors get the lossy scheme (see the file comment).
struct tensor_policy {
  /// Tensors it accepts keep their own precision (`ecq pack --keep REGEX`). Empty: none.
  std::function<bool(const std::string&)> keep;
  /// When set, only tensors it accepts may get the scheme (`--only REGEX`).
  std::function<bool(const std::string&)> only;
  bool quantize_embeddings = true;
  bool quantize_output_head = true;
  /// Offer every float tensor to the scheme, whatever its name or shape
  /// (keep and only still apply; a tensor the scheme cannot represent, or
  /// stores larger than lossless, still falls back). What `ecq pack` did
  /// before the policy (`--all-tensors`).
  bool all_tensors = false;
};

/// A decision and why.
struct tensor_plan {
  tensor_decision decision = tensor_decision::empty;
  std::string reason;
};

/// @return whether dtype d holds floating-point values a scheme can quantise.
inline bool is_float_dtype(tensor_dtype d) {
  return d == tensor_dtype::f32 || d == tensor_dtype::f16 || d == tensor_dtype::bf16 || d == tensor_dtype::f64;
}

/// @return the columns one group of the scheme spans (1 for schemes without groups).
inline std::uint64_t scheme_group_columns(const scheme_spec& s) {
  if (s.kind == scheme_kind::affine || s.kind == scheme_kind::codebook) return s.codes.group_size;
  if (s.kind == scheme_kind::uniform && s.uniform.granularity == step_granularity::group) return s.uniform.group_size;
  return 1;
}

/// Decides from the name, dtype and shape alone what pack_tensor tries
/// first (the values can still turn scheme into lossless, and lossless into
/// raw). `scheme` null: lossless for every tensor (`--scheme lossless`).
inline tensor_plan plan_tensor(const tensor_policy& policy, const scheme_spec* scheme, const std::string& name,
                               tensor_dtype dtype, const std::vector<std::uint64_t>& shape) {
  std::uint64_t elements = 1;
  for (std::uint64_t d : shape) elements *= d;
  auto lossless = [](std::string why) { return tensor_plan{tensor_decision::lossless, std::move(why)}; };
  if (elements == 0) return {tensor_decision::empty, "no elements"};
  if (scheme == nullptr) return lossless("lossless for every tensor");
  if (!is_float_dtype(dtype)) return lossless(std::string(dtype_name(dtype)) + " values are kept exactly");
  if (policy.only && !policy.only(name)) return lossless("not matched by --only");
  if (policy.keep && policy.keep(name)) return lossless("matched by --keep");
  const std::uint64_t rows = shape_rows(shape), cols = shape_cols(shape);
  if (policy.all_tensors) return {tensor_decision::scheme, "every tensor offered (--all-tensors)"};
  if (shape.size() < 2 || rows == 1) return lossless(shape.size() < 2 ? std::to_string(shape.size()) + "-D" : "one row");
  const tensor_role role = guess_role(name);
  if (role == tensor_role::norm || role == tensor_role::bias || role == tensor_role::statistic)
    return lossless(std::string("a ") + role_name(role) + ", by its name");
  if (role == tensor_role::embedding && !policy.quantize_embeddings) return lossless("an embedding (kept by the policy)");
  if (role == tensor_role::output_head && !policy.quantize_output_head)
    return lossless("the output head (kept by the policy)");
  const std::uint64_t group = scheme_group_columns(*scheme);
  if (cols < group)
    return lossless(std::to_string(cols) + " columns, fewer than a group of " + std::to_string(group));
  std::string why = std::to_string(rows) + " x " + std::to_string(cols);
  if (role != tensor_role::weight) why += std::string(", ") + role_name(role);
  return {tensor_decision::scheme, why};
}

/// A packed tensor, ready for ecq_file_writer (add_packed).
struct packed_tensor {
  tensor_decision decision = tensor_decision::empty;
  std::string reason;
  std::string coding;             // the scheme that coded it ("affine4-g64", "f32", ...), "raw" or "empty"
  encoded_tensor container;       // decisions scheme and lossless
  std::vector<std::uint8_t> raw;  // decision raw
  quantized_tensor quantized;     // what the container codes, when pack_options::keep_quantized
  std::vector<float> values;      // the source as float, when keep_quantized and the scheme quantised it

  /// @return the bytes the tensor takes in the file: its container and the
  ///         16 bytes of offset and size a container entry has, or its raw
  ///         bytes (alignment padding and the names not counted).
  std::uint64_t stored_bytes() const {
    if (decision == tensor_decision::raw) return raw.size();
    return container.size() == 0 ? 0 : container.size() + 16;
  }
};

struct pack_options {
  layout_goal goal = layout_goal::storage;
  /// Keep the quantized tensor (and the float values the scheme saw) in the
  /// result, for reports such as `ecq inspect`'s entropy and SQNR.
  bool keep_quantized = false;
};

namespace detail {

inline std::uint16_t load_le16(const std::uint8_t* p) { return std::uint16_t(p[0] | p[1] << 8); }

/// Why `scheme` could not quantise w (after it returned `s`), in words.
inline std::string why_unrepresentable(const scheme_spec& scheme, const std::vector<float>& w, status s) {
  std::uint64_t non_finite = 0;
  float lo = INFINITY, hi = -INFINITY;
  for (float x : w) {
    if (!std::isfinite(x)) {
      ++non_finite;
      continue;
    }
    lo = x < lo ? x : lo;
    hi = x > hi ? x : hi;
  }
  const std::string head = scheme.name() + " cannot represent it: ";
  if (non_finite != 0) return head + std::to_string(non_finite) + " non-finite values (NaN or infinity)";
  const bool binary16 =
      (scheme.kind == scheme_kind::uniform ? scheme.uniform.step_format : scheme.codes.side_format) ==
      float16_format::binary16;
  char range[96];
  std::snprintf(range, sizeof range, "values in [%.4g, %.4g]", double(lo), double(hi));
  if (binary16 && (hi > 65504.0f || lo < -65504.0f))
    return head + range + " exceed what binary16 scales and biases hold (|x| <= 65504; a -bf16 scheme holds them)";
  return head + range + " (" + status_string(s) + ")";
}

/// Quantises float-dtype values with a scheme; a 16-bit scheme of the
/// source's own format codes the bits, so nothing is rounded.
inline status quantize_source(const scheme_spec& scheme, tensor_dtype dtype, const std::uint8_t* data,
                              const std::vector<float>& w, std::uint64_t rows, std::uint64_t cols,
                              quantized_tensor* q) {
  const bool bf = scheme.kind == scheme_kind::bf16 && dtype == tensor_dtype::bf16;
  const bool hf = scheme.kind == scheme_kind::f16 && dtype == tensor_dtype::f16;
  if (bf || hf) {
    std::vector<std::uint16_t> h(w.size());
    for (std::size_t i = 0; i < h.size(); ++i) h[i] = load_le16(data + 2 * i);
    float16_encode(h.data(), rows, cols, bf ? float16_format::bfloat16 : float16_format::binary16, q);
    return status::ok;
  }
  return quantize(scheme, w.data(), rows, cols, q);
}

/// Codes the source losslessly by dtype into q; false for dtypes stored raw.
/// *coding receives the scheme's name, *note what the choice says.
inline bool lossless_source(tensor_dtype dtype, const std::uint8_t* data, std::uint64_t rows, std::uint64_t cols,
                            quantized_tensor* q, std::string* coding, std::string* note) {
  const std::size_t n = std::size_t(rows * cols);
  if (dtype == tensor_dtype::f16 || dtype == tensor_dtype::bf16) {
    std::vector<std::uint16_t> h(n);
    for (std::size_t i = 0; i < n; ++i) h[i] = load_le16(data + 2 * i);
    const float16_format f = dtype == tensor_dtype::bf16 ? float16_format::bfloat16 : float16_format::binary16;
    float16_encode(h.data(), rows, cols, f, q);
    *coding = f == float16_format::bfloat16 ? "bf16" : "f16";
    return true;
  }
  if (dtype != tensor_dtype::f32) return false;
  std::vector<std::uint32_t> u(n);
  bool bf16_values = true;
  for (std::size_t i = 0; i < n; ++i) {
    u[i] = detail::load_u32(data + 4 * i);
    bf16_values = bf16_values && (u[i] & 0xffffu) == 0;
  }
  if (bf16_values) {  // e.g. a bf16 model saved as float32: bf16 codes it exactly, 16 bits a weight cheaper
    std::vector<std::uint16_t> h(n);
    for (std::size_t i = 0; i < n; ++i) h[i] = std::uint16_t(u[i] >> 16);
    float16_encode(h.data(), rows, cols, float16_format::bfloat16, q);
    *coding = "bf16";
    *note = "every value is a bfloat16";
    return true;
  }
  float32_encode(u.data(), rows, cols, q);
  *coding = "f32";
  return true;
}

}  // namespace detail

namespace detail {

/// Stores a tensor losslessly (out->decision lossless and its reason set):
/// in the source's own coding, or raw when the raw bytes are no more than
/// that container plus a container entry's 16 bytes, or when no scheme codes
/// the dtype. Appends to out->reason what the values or the sizes decided.
inline void pack_lossless(tensor_dtype dtype, const std::uint8_t* data, std::uint64_t rows, std::uint64_t cols,
                          const pack_options& options, packed_tensor* out) {
  const std::size_t raw_bytes = std::size_t(rows * cols * dtype_size(dtype));
  quantized_tensor q;
  std::string coding, note;
  if (lossless_source(dtype, data, rows, cols, &q, &coding, &note)) {
    encoded_tensor e;
    const status s = encode_quantized(q, choose_coding_options(q, options.goal), &e);
    if (s == status::ok && raw_bytes > e.size() + 16) {
      out->container = std::move(e);
      out->coding = coding;
      if (!note.empty()) out->reason += "; " + note;
      if (options.keep_quantized) out->quantized = std::move(q);
      return;
    }
    // A container's header, table and checksum cost ~170 bytes: small tensors are cheaper as they are.
    out->reason += s == status::ok ? "; " + std::to_string(raw_bytes) + " bytes, no more than a " +
                                         std::to_string(e.size()) + "-byte " + coding + " container"
                                   : "; " + coding + " coding failed (" + status_string(s) + ")";
  } else {
    out->reason += std::string("; no scheme codes ") + dtype_name(dtype);
  }
  out->decision = tensor_decision::raw;
  out->coding = "raw";
  out->raw.assign(data, data + raw_bytes);
}

}  // namespace detail

/// Packs one tensor by the policy (see the file comment) into *out: the
/// decision, its reason, the coding and the container or raw bytes. `data`
/// holds its elements x dtype_size(dtype) bytes, little-endian, row-major
/// (a safetensors tensor's bytes); `scheme` null packs it losslessly. Every
/// tensor gets a decision: a scheme that fails falls back to lossless, a
/// lossless coding that fails to raw.
inline void pack_tensor(const tensor_policy& policy, const scheme_spec* scheme, const std::string& name,
                        tensor_dtype dtype, const std::vector<std::uint64_t>& shape, const std::uint8_t* data,
                        const pack_options& options, packed_tensor* out) {
  *out = packed_tensor{};
  const tensor_plan plan = plan_tensor(policy, scheme, name, dtype, shape);
  out->decision = plan.decision;
  out->reason = plan.reason;
  if (plan.decision == tensor_decision::empty) {
    out->coding = "empty";
    return;
  }
  const std::uint64_t rows = shape_rows(shape), cols = shape_cols(shape);
  if (plan.decision == tensor_decision::scheme) {
    safetensors_tensor t;
    t.dtype = dtype;
    t.shape = shape;
    std::vector<float> w;
    to_float(t, data, &w);  // a float dtype: plan_tensor checked it
    quantized_tensor q;
    const status s = detail::quantize_source(*scheme, dtype, data, w, rows, cols, &q);
    encoded_tensor e;
    const status se = s == status::ok ? encode_quantized(q, choose_coding_options(q, options.goal), &e) : s;
    if (se == status::ok) {
      out->container = std::move(e);
      out->coding = scheme->name();
      if (options.keep_quantized) {
        out->quantized = std::move(q);
        out->values = std::move(w);
      }
      // Lossless storage costs at least a byte a weight (the 8 raw bits of
      // bf16, f16 and f32, and every raw dtype): only a scheme container of
      // at least that much can lose to it.
      if (out->container.size() < rows * cols) return;
      packed_tensor alt;
      alt.decision = tensor_decision::lossless;
      detail::pack_lossless(dtype, data, rows, cols, options, &alt);
      if (alt.stored_bytes() >= out->stored_bytes()) return;  // ties keep the scheme the user asked for
      alt.reason = alt.coding + " is smaller than " + scheme->name() + " (" + std::to_string(alt.stored_bytes()) +
                   " vs " + std::to_string(out->stored_bytes()) + " bytes)" + alt.reason;
      *out = std::move(alt);
      return;
    }
    out->decision = tensor_decision::lossless;
    out->reason = s != status::ok ? detail::why_unrepresentable(*scheme, w, s)
                                  : scheme->name() + ": the container refused it (" + status_string(se) + ")";
  }
  detail::pack_lossless(dtype, data, rows, cols, options, out);
}

/// Adds a packed tensor to a file under its name, dtype and shape.
/// @return the status of ecq_file_writer::add, add_raw or add_empty.
inline status add_packed(ecq_file_writer* w, const std::string& name, tensor_dtype dtype,
                         const std::vector<std::uint64_t>& shape, packed_tensor&& p) {
  switch (p.decision) {
    case tensor_decision::empty: return w->add_empty(name, dtype, shape);
    case tensor_decision::raw: return w->add_raw(name, dtype, shape, std::move(p.raw));
    default: return w->add(name, dtype, shape, p.container);
  }
}

namespace detail {

/// Decodes an opened lossless container (bf16, f16, f32) to its bit
/// patterns, widened to u32 (16-bit patterns in the low half): the symbols
/// through the CPU decode stack, then the dequantiser's exact patterns.
/// @return status::ok; status::unsupported_parameters for other schemes; the
///         status of visit_dequantizer or decode_to_symbols;
///         status::output_too_small above max_weights values.
inline status decode_lossless_bits(const encoded_tensor& t, std::vector<std::uint32_t>* bits,
                                   std::uint64_t max_weights, const cpu_options& cpu) {
  const tensor_geometry& g = t.geometry();
  const encoded_tensor_view v = t.view();
  return visit_dequantizer(g.scheme_id, t.scheme_params(), t.scheme_params_size(), container_sections{&v},
                           geometry_of(g), [&](const auto& dq) {
                             using D = std::decay_t<decltype(dq)>;
                             if constexpr (std::is_same<D, float32_dequantizer>::value ||
                                           std::is_same<D, float16_dequantizer<float16_format::bfloat16>>::value ||
                                           std::is_same<D, float16_dequantizer<float16_format::binary16>>::value) {
                               if (g.cols > max_weights / g.rows) return status::output_too_small;
                               // One symbol per weight and at most 256 symbols (the factory checked
                               // both): one byte each.
                               std::vector<std::uint8_t> symbols(std::size_t(g.rows * g.cols));
                               const status st = decode_to_symbols(t, symbols.data(), symbols.size(), cpu);
                               if (st != status::ok) return st;
                               bits->resize(symbols.size());
                               for (std::uint64_t r = 0; r < g.rows; ++r)
                                 for (std::uint64_t c = 0; c < g.cols; ++c) {
                                   const std::size_t i = std::size_t(r * g.cols + c);
                                   (*bits)[i] = std::uint32_t(dq.bits(r, c, symbols[i]));
                                 }
                               return status::ok;
                             } else {
                               return status::unsupported_parameters;
                             }
                           });
}

inline void append_le(std::vector<std::uint8_t>* out, std::uint64_t v, int bytes) {
  for (int k = 0; k < bytes; ++k) out->push_back(std::uint8_t(v >> (8 * k)));
}

/// Float values as bytes of a float dtype (F32, F16, BF16: rounded to
/// nearest even; F64 exact).
inline void floats_as(const std::vector<float>& v, tensor_dtype d, std::vector<std::uint8_t>* out) {
  out->clear();
  out->reserve(v.size() * dtype_size(d));
  for (float x : v) {
    if (d == tensor_dtype::f32) append_le(out, float_to_bits(x), 4);
    else if (d == tensor_dtype::bf16) append_le(out, float_to_bf16(x), 2);
    else if (d == tensor_dtype::f16) append_le(out, float_to_f16(x), 2);
    else {
      const double y = double(x);
      std::uint64_t u;
      std::memcpy(&u, &y, 8);
      append_le(out, u, 8);
    }
  }
}

/// How unpack_tensor writes container e's values as `dtype`: straight into the output (the bf16 scheme's
/// patterns or any scheme's rounded weights as BF16; a lossy scheme's floats as F32), or through a copy (0).
enum class unpack_direct { none, bf16, f32 };
inline unpack_direct unpack_direct_kind(const encoded_tensor& e, tensor_dtype dtype, const tensor_dtype* want) {
  if (gpu_layout::weights_per_symbol(e.geometry().scheme_id) != 0) return unpack_direct::none;
  const scheme_kind kind = scheme_kind(e.geometry().scheme_id);
  if (dtype == tensor_dtype::bf16 && (kind == scheme_kind::bf16 || want != nullptr)) return unpack_direct::bf16;
  if (dtype == tensor_dtype::f32 && kind != scheme_kind::bf16 && kind != scheme_kind::f16 && kind != scheme_kind::f32)
    return unpack_direct::f32;
  return unpack_direct::none;
}

}  // namespace detail

/// The dtype unpack_tensor gives tensor t of a file (see unpack_tensor for
/// the rules): e is its opened container, or null for raw and empty tensors
/// (`want` as for unpack_tensor, already checked to be a float dtype or null).
inline tensor_dtype unpacked_dtype(const ecq_file_tensor& t, const encoded_tensor* e, const tensor_dtype* want) {
  if (t.storage == ecq_storage::raw)
    return want == nullptr || !is_float_dtype(t.source_dtype) ? t.source_dtype : *want;
  if (want != nullptr) return *want;
  if (e == nullptr || e->data() == nullptr) return t.source_dtype;  // empty
  const std::uint32_t id = e->geometry().scheme_id;
  if (gpu_layout::weights_per_symbol(id) != 0)
    return id == gpu_layout::bf16_pairs_scheme && t.source_dtype != tensor_dtype::f32 ? tensor_dtype::bf16
                                                                                      : tensor_dtype::f32;
  const scheme_kind kind = scheme_kind(id);
  if (kind != scheme_kind::bf16 && kind != scheme_kind::f16 && kind != scheme_kind::f32) return tensor_dtype::f32;
  const tensor_dtype own = kind == scheme_kind::bf16 ? tensor_dtype::bf16
                           : kind == scheme_kind::f16 ? tensor_dtype::f16
                                                      : tensor_dtype::f32;
  return t.source_dtype == own || t.source_dtype == tensor_dtype::f32 ? t.source_dtype : own;
}

/// CHECKED: tensor i of a parsed .ecq file as bytes of a dtype.
///   want null (automatic): raw entries give their bytes and dtype back;
///     lossless containers (bf16, f16, f32) give the source dtype back bit
///     for bit when it is their own format or F32 (bf16 and f16 widen into
///     F32 exactly, NaN payloads kept), else their own format; other (lossy)
///     schemes give F32. The GPU layout's containers (docs/format.md section
///     15) likewise: bf16 pairs as BF16 (F32 for an F32 source), affine as F32.
///   want F32, F16, BF16 or F64: float tensors converted to it (rounded to
///     nearest even); raw entries of other dtypes (integers, BOOL, F8) keep
///     their bytes and dtype.
/// (unpacked_dtype gives the dtype without decoding.) Empty tensors give no
/// bytes and the requested (or source) dtype.
/// Containers are opened in place when the file's bytes are 16-byte aligned
/// (open_tensor_borrowed; else copied), or `opened` is used when not null
/// (the caller's open_tensor(_borrowed) of tensor i), and decoded by the CPU
/// decode stack (ecq/cpu/tensor_ops.hpp: SIMD, checked, blocks on `cpu`'s
/// threads). `bytes` keeps its capacity: a caller that reuses one vector
/// for many tensors allocates once; on failure it holds no particular bytes.
/// @return status::ok; status::invalid_argument for i out of range or a
///         requested dtype that is not a float dtype; the status of
///         open_tensor, of the checked decode, or status::output_too_small
///         above max_weights values.
inline status unpack_tensor(const ecq_file_reader& r, std::size_t i, const tensor_dtype* want,
                            std::vector<std::uint8_t>* bytes, tensor_dtype* dtype,
                            std::uint64_t max_weights = default_max_decoded_weights, const cpu_options& cpu = {},
                            const encoded_tensor* opened = nullptr) {
  if (i >= r.tensors().size() || (want != nullptr && !is_float_dtype(*want))) return status::invalid_argument;
  const ecq_file_tensor& t = r.tensors()[i];
  if (t.storage == ecq_storage::raw) {
    *dtype = unpacked_dtype(t, nullptr, want);
    bytes->assign(r.raw_data(i), r.raw_data(i) + t.size);
    if (*dtype == t.source_dtype) return status::ok;
    safetensors_tensor st;
    st.dtype = t.source_dtype;
    st.shape = t.shape;
    std::vector<float> v;
    to_float(st, r.raw_data(i), &v);
    detail::floats_as(v, *dtype, bytes);
    return status::ok;
  }
  if (t.elements() == 0) {
    bytes->clear();
    *dtype = unpacked_dtype(t, nullptr, want);
    return status::ok;
  }
  encoded_tensor own_open;
  status s = status::ok;
  if (opened == nullptr) {
    s = r.open_tensor_borrowed(i, &own_open);
    if (s == status::invalid_argument) s = r.open_tensor(i, &own_open);  // not 16-byte aligned in memory
    if (s != status::ok) return s;
    opened = &own_open;
  }
  const encoded_tensor& e = *opened;
  const tensor_geometry& g = e.geometry();
  *dtype = unpacked_dtype(t, &e, want);
  if (g.cols > max_weights / g.rows) return status::output_too_small;
  const std::size_t n = std::size_t(g.rows * g.cols);
  if (gpu_layout::weights_per_symbol(g.scheme_id) != 0) {
    // The GPU layout (docs/format.md section 15): scheme 8 holds bf16 patterns
    // exactly (their floats widen them, so the upper halves are the patterns),
    // scheme 9 affine codes.
    std::vector<float> v;
    if ((s = gpu_dequantize(e, &v)) != status::ok) return s;
    if (want == nullptr && g.scheme_id == gpu_layout::bf16_pairs_scheme) {
      bytes->clear();
      for (float x : v)
        detail::append_le(bytes, *dtype == tensor_dtype::f32 ? float_to_bits(x) : float_to_bits(x) >> 16,
                          int(dtype_size(*dtype)));
      return status::ok;
    }
    detail::floats_as(v, *dtype, bytes);
    return status::ok;
  }
  const scheme_kind kind = scheme_kind(g.scheme_id);
  const detail::unpack_direct direct = detail::unpack_direct_kind(e, *dtype, want);
  if (direct == detail::unpack_direct::bf16) {
    // Straight into the bytes (a little-endian target: ecq/config.hpp), in
    // parallel: the stored patterns of the bf16 scheme, the rounded weights
    // of the others.
    bytes->resize(n * 2);  // no fill when the caller's vector already had this size
    return decode_to_bf16(e, reinterpret_cast<std::uint16_t*>(bytes->data()), n, cpu);
  }
  if (direct == detail::unpack_direct::f32) {
    bytes->resize(n * 4);  // a lossy scheme's float weights
    return decode_to_float(e, reinterpret_cast<float*>(bytes->data()), n, cpu);
  }
  if (want == nullptr) {  // the other lossless cases: their bit patterns
    std::vector<std::uint32_t> bits;
    s = detail::decode_lossless_bits(e, &bits, max_weights, cpu);
    if (s != status::ok) return s;
    const tensor_dtype own = kind == scheme_kind::f16    ? tensor_dtype::f16
                             : kind == scheme_kind::bf16 ? tensor_dtype::bf16
                                                         : tensor_dtype::f32;
    bytes->clear();
    if (*dtype == own) {
      bytes->reserve(bits.size() * dtype_size(own));
      for (std::uint32_t b : bits) detail::append_le(bytes, b, int(dtype_size(own)));
      return status::ok;
    }
    // Widening to F32: bfloat16 is the upper half of a float32; binary16
    // widens by moving its fields (f16_to_float, exact, NaN payloads kept).
    bytes->reserve(bits.size() * 4);
    for (std::uint32_t b : bits)
      detail::append_le(bytes, own == tensor_dtype::bf16 ? b << 16 : float_to_bits(f16_to_float(std::uint16_t(b))), 4);
    return status::ok;
  }
  std::vector<float> v(n);
  s = decode_to_float(e, v.data(), v.size(), cpu);
  if (s != status::ok) return s;
  detail::floats_as(v, *dtype, bytes);
  return status::ok;
}

/// CHECKED: unpack_tensor into the caller's memory: `out` holds `size`
/// bytes, the unpacked tensor's (its elements times the size of
/// unpacked_dtype). Where unpack_tensor decodes straight into its bytes (BF16
/// from the bf16 scheme or any requested BF16, a lossy scheme's F32) the
/// values are decoded into `out` when it is aligned for the dtype; the other
/// cases go through `scratch` (reused as unpack_tensor's `bytes`) and one
/// copy. For a caller that owns the output memory: an aligned O_DIRECT
/// buffer (ecq unpack), a mapped file, pinned staging.
/// @return as unpack_tensor, and status::bad_shape when `size` is not the
///         unpacked tensor's size (nothing decoded).
inline status unpack_tensor_to(const ecq_file_reader& r, std::size_t i, const tensor_dtype* want, std::uint8_t* out,
                               std::size_t size, std::vector<std::uint8_t>* scratch, tensor_dtype* dtype,
                               std::uint64_t max_weights = default_max_decoded_weights, const cpu_options& cpu = {},
                               const encoded_tensor* opened = nullptr) {
  if (i >= r.tensors().size() || (want != nullptr && !is_float_dtype(*want))) return status::invalid_argument;
  const ecq_file_tensor& t = r.tensors()[i];
  encoded_tensor own_open;
  if (opened == nullptr && t.storage != ecq_storage::raw && t.elements() != 0) {
    status s = r.open_tensor_borrowed(i, &own_open);
    if (s == status::invalid_argument) s = r.open_tensor(i, &own_open);  // not 16-byte aligned in memory
    if (s != status::ok) return s;
    opened = &own_open;
  }
  const encoded_tensor* e = t.storage == ecq_storage::raw || t.elements() == 0 ? nullptr : opened;
  const tensor_dtype d = unpacked_dtype(t, e, want);
  const std::uint64_t n = t.elements();
  if (n > ~std::uint64_t(0) / dtype_size(d) || n * dtype_size(d) != size) return status::bad_shape;
  const detail::unpack_direct direct = e != nullptr ? detail::unpack_direct_kind(*e, d, want) : detail::unpack_direct::none;
  const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(out);
  if (direct == detail::unpack_direct::bf16 && at % alignof(std::uint16_t) == 0) {
    if (n > max_weights) return status::output_too_small;
    *dtype = d;
    return decode_to_bf16(*e, reinterpret_cast<std::uint16_t*>(out), std::size_t(n), cpu);
  }
  if (direct == detail::unpack_direct::f32 && at % alignof(float) == 0) {
    if (n > max_weights) return status::output_too_small;
    *dtype = d;
    return decode_to_float(*e, reinterpret_cast<float*>(out), std::size_t(n), cpu);
  }
  const status s = unpack_tensor(r, i, want, scratch, dtype, max_weights, cpu, e);
  if (s != status::ok) return s;
  if (scratch->size() != size) return status::bad_shape;
  if (size != 0) std::memcpy(out, scratch->data(), size);
  return status::ok;
}

ECQ_NAMESPACE_END

#endif  // ECQ_IO_POLICY_HPP
