// examples/ecq_tool.cpp — the `ecq` command-line tool (built as `ecq`).
//
//   ecq inspect FILE.safetensors [--scheme S]... [--layout storage|kernel] [--json] [--quiet]
//       Per tensor and in total, for each scheme: elements, entropy of the
//       scheme's symbols, coded bits/weight counting every byte of the
//       container (header, parameters, table, section directory, block
//       index, flushed states, side data, padding, checksum), SQNR for lossy
//       schemes, and whether decoding the container reproduces the
//       quantiser's output bit for bit. Without --scheme: bf16, affine4-g64
//       and a uniform scheme at the SQNR affine4-g64 reached, side by side.
//   ecq pack IN.safetensors OUT.ecq --scheme S [--layout storage|kernel|gpu] [--mlx-bits B] [--quiet]
//       Codes every float tensor with S. --layout gpu writes the layout the
//       CUDA loader and kernels read (docs/format.md section 15) for S = bf16
//       or affine4-g64/g128/g256-bf16, and keeps the storage layout for the
//       tensors it cannot hold (cols not a multiple of 256, ...), naming them. With --mlx-bits B, every MLX
//       quantized weight (X.weight of dtype U32 next to X.scales and
//       X.biases) is coded losslessly as one affine<B>-g<G> container instead
//       (see "MLX quantized weights" below); empty tensors are kept as such.
//   ecq unpack IN.ecq OUT.safetensors [--dtype auto|F32|BF16|F16]
//       auto: bf16/f16 containers give their own format back, others F32
//       (MLX weights too: the dequantised values, not the triplet).
//   ecq verify FILE.ecq
//   ecq                 usage, then a self-test on synthetic weights (pack,
//                       unpack, verify in a temporary folder); exit 0 if it passes
//
// Exit codes: 0 success, 1 a file is invalid or an operation failed, 2 usage.
// Progress goes to stderr for files above 2^22 weights (not with --quiet).
#include <ecq/gpu_container.hpp>
#include <ecq/io/ecq_file.hpp>
#include <ecq/io/safetensors.hpp>
#include <ecq/schemes/scheme.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace {

using ecq::status;

constexpr std::uint64_t progress_threshold = std::uint64_t(1) << 22;

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "ecq: %s\nRun `ecq help` for usage.\n", message.c_str());
  std::exit(2);
}

[[noreturn]] void fail(const std::string& message) {
  std::fprintf(stderr, "ecq: %s\n", message.c_str());
  std::exit(1);
}

void print_usage(std::FILE* f) {
  std::fputs(
      "usage:\n"
      "  ecq inspect FILE.safetensors [--scheme S]... [--layout storage|kernel] [--json] [--quiet]\n"
      "  ecq pack IN.safetensors OUT.ecq --scheme S [--layout storage|kernel|gpu] [--mlx-bits B] [--quiet]\n"
      "  ecq unpack IN.ecq OUT.safetensors [--dtype auto|F32|BF16|F16]\n"
      "  ecq verify FILE.ecq\n"
      "schemes: bf16, f16, affine<b>-g<G>[-bf16][-p<C>[r<R>]], codebook-nf4-g<G>[-bf16][-p<C>[r<R>]],\n"
      "         uniform-sqnr<dB>[-row|-g<G>][-bf16]   e.g. affine4-g64, affine4-g64-p2, uniform-sqnr21.05\n"
      "layouts: storage (default; big blocks, smallest files), kernel (32-row x 256-symbol blocks),\n"
      "  gpu (pack only: what ecq/device_tensor.cuh loads; --scheme bf16 or affine4-g64|g128|g256-bf16)\n",
      f);
}

// --------------------------------------------------------------------------
// Loading tensors.

struct loaded_file {
  std::vector<std::uint8_t> bytes;
  ecq::safetensors_file st;
};

void load_safetensors(const std::string& path, loaded_file* f) {
  std::string error;
  if (ecq::read_file_bytes(path, &f->bytes, &error) != status::ok) fail(error);
  const status s = f->st.parse(f->bytes.data(), f->bytes.size(), &error);
  if (s != status::ok) fail(path + ": not a valid safetensors file (" + ecq::status_string(s) + "): " + error);
}

/// The values of a 16-bit tensor (little-endian in the file, whatever the host).
std::vector<std::uint16_t> u16_values(const ecq::safetensors_file& st, const ecq::safetensors_tensor& t) {
  std::vector<std::uint16_t> v(std::size_t(t.elements()));
  const std::uint8_t* p = st.data(t);
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::uint16_t(p[2 * i] | p[2 * i + 1] << 8);
  return v;
}

// Quantises one tensor with spec; lossless 16-bit schemes code 16-bit input
// of their own format from its bits, so nothing is rounded.
status quantize_tensor(const ecq::scheme_spec& spec, const ecq::safetensors_file& st, const ecq::safetensors_tensor& t,
                       const std::vector<float>& w, ecq::quantized_tensor* q) {
  const std::uint64_t rows = ecq::shape_rows(t.shape), cols = ecq::shape_cols(t.shape);
  const bool bf = spec.kind == ecq::scheme_kind::bf16 && t.dtype == ecq::tensor_dtype::bf16;
  const bool hf = spec.kind == ecq::scheme_kind::f16 && t.dtype == ecq::tensor_dtype::f16;
  if (bf || hf) {
    const std::vector<std::uint16_t> h = u16_values(st, t);
    ecq::float16_encode(h.data(), rows, cols, bf ? ecq::float16_format::bfloat16 : ecq::float16_format::binary16, q);
    return status::ok;
  }
  return ecq::quantize(spec, w.data(), rows, cols, q);
}

// --------------------------------------------------------------------------
// MLX quantized weights: X.weight (U32: each row's b-bit codes packed into
// words, ecq/schemes/affine.hpp's mlx_words_per_row), X.scales and X.biases
// (F16 or BF16, one per group of codes; w = scale * q + bias). The triplet
// is exactly an affine<b>-g<G> tensor of ecq's, so pack codes it without
// loss: one container named X.weight, with the codes' shape (the last
// dimension counts codes, not words) and source dtype U32, that holds the
// scales and biases. Unpacking gives the dequantised weights.

struct mlx_triplet {
  const ecq::safetensors_tensor* weight = nullptr;
  const ecq::safetensors_tensor* scales = nullptr;
  const ecq::safetensors_tensor* biases = nullptr;
};

const ecq::safetensors_tensor* find_tensor(const ecq::safetensors_file& st, const std::string& name) {
  for (const auto& t : st.tensors())
    if (t.name == name) return &t;
  return nullptr;
}

/// @return whether t is the weight of an MLX triplet (U32, a name ending in
///         ".weight", siblings ".scales" and ".biases"), filling *m.
bool find_mlx_triplet(const ecq::safetensors_file& st, const ecq::safetensors_tensor& t, mlx_triplet* m) {
  const std::string suffix = ".weight";
  if (t.dtype != ecq::tensor_dtype::u32 || t.name.size() <= suffix.size() ||
      t.name.compare(t.name.size() - suffix.size(), suffix.size(), suffix) != 0)
    return false;
  const std::string stem = t.name.substr(0, t.name.size() - suffix.size());
  *m = {&t, find_tensor(st, stem + ".scales"), find_tensor(st, stem + ".biases")};
  return m->scales != nullptr && m->biases != nullptr;
}

/// Builds the affine quantized tensor of an MLX triplet with `bits`-bit codes
/// and its shape in codes; on failure returns false with the reason.
bool mlx_quantized(const ecq::safetensors_file& st, const mlx_triplet& m, int bits, ecq::quantized_tensor* q,
                   std::vector<std::uint64_t>* shape, std::string* why) {
  const ecq::safetensors_tensor &w = *m.weight, &sc = *m.scales, &bi = *m.biases;
  if (sc.dtype != bi.dtype || (sc.dtype != ecq::tensor_dtype::f16 && sc.dtype != ecq::tensor_dtype::bf16)) {
    *why = "scales and biases must both be F16 or both BF16";
    return false;
  }
  if (w.shape.empty() || sc.shape != bi.shape || sc.shape.size() != w.shape.size() ||
      !std::equal(w.shape.begin(), w.shape.end() - 1, sc.shape.begin())) {
    *why = "the shapes of weight, scales and biases do not match (same leading dimensions, one scale per group)";
    return false;
  }
  const std::uint64_t words = w.shape.back(), groups = sc.shape.back();
  const std::uint64_t cols = words * 32 / std::uint64_t(bits);
  ecq::affine_params p;
  p.bits = bits;
  p.side_format = sc.dtype == ecq::tensor_dtype::bf16 ? ecq::float16_format::bfloat16 : ecq::float16_format::binary16;
  p.group_size = groups != 0 && cols % groups == 0 ? std::uint32_t(cols / groups) : 0;
  if (ecq::mlx_words_per_row(cols, bits) != words || !p.valid()) {
    *why = std::to_string(words) + " words and " + std::to_string(groups) + " groups per row are not an MLX " +
           std::to_string(bits) + "-bit layout with a power-of-two group size (check --mlx-bits)";
    return false;
  }
  const std::uint64_t rows = ecq::shape_rows(w.shape);
  std::vector<std::uint32_t> packed(std::size_t(rows * words));
  const std::uint8_t* b = st.data(w);
  for (std::size_t i = 0; i < packed.size(); ++i)
    packed[i] = std::uint32_t(b[4 * i]) | std::uint32_t(b[4 * i + 1]) << 8 | std::uint32_t(b[4 * i + 2]) << 16 |
                std::uint32_t(b[4 * i + 3]) << 24;
  std::vector<std::uint8_t> codes(std::size_t(rows * cols));
  if (ecq::unpack_mlx_words(packed.data(), rows, cols, bits, codes.data()) != status::ok ||
      ecq::affine_from_codes(codes.data(), rows, cols, u16_values(st, sc), u16_values(st, bi), p, q) != status::ok) {
    *why = "cannot build the affine tensor";
    return false;
  }
  *shape = w.shape;
  shape->back() = cols;
  return true;
}

// --------------------------------------------------------------------------
// inspect

struct tensor_report {
  std::string name;
  std::vector<std::uint64_t> shape;
  std::uint64_t elements = 0;
  bool skipped = false;
  std::string skip_reason;
  double entropy_bits_per_symbol = 0;  // of the coded symbols
  std::uint64_t symbols = 0;
  std::uint32_t alphabet = 0;
  ecq::container_overhead overhead;
  ecq::coding_options options;
  double signal = 0, noise = 0;  // sums of squares, for SQNR
  bool round_trip = false;
  std::uint64_t p1_container_bytes = 0;  // the same codes, one code per symbol (packed schemes only)
  std::uint64_t raw_bytes = 0;           // the raw plane, inside the side sections
};

struct scheme_report {
  ecq::scheme_spec spec;
  std::vector<tensor_report> tensors;
  std::uint64_t elements = 0, symbols = 0, container_bytes = 0, side_bytes = 0, flush_index_bytes = 0,
                header_bytes = 0, table_bytes = 0, word_bytes = 0, state_bytes = 0, p1_container_bytes = 0,
                wrapper_bytes = 0, raw_bytes = 0;
  double entropy_bits = 0, symbol_entropy_bits = 0, signal = 0, noise = 0;
  bool round_trip = true;
  std::size_t skipped = 0;

  double per_weight(double bits) const { return elements == 0 ? 0.0 : bits / double(elements); }
  double sqnr_db() const { return noise == 0 ? INFINITY : 10.0 * std::log10(signal / noise); }
  bool packed() const {
    return (spec.kind == ecq::scheme_kind::affine || spec.kind == ecq::scheme_kind::codebook) &&
           (spec.codes.codes_per_symbol != 1 || spec.codes.raw_bits != 0);
  }
  /// Entropy of the codes (one code per symbol) for code schemes, else of the symbols, in bits per weight.
  double entropy_per_weight() const { return per_weight(entropy_bits); }
  /// Side data other than the raw plane (scales, biases, steps, tables), bits per weight.
  double side_per_weight() const { return per_weight(8.0 * double(side_bytes - raw_bytes)); }
  double raw_per_weight() const { return per_weight(8.0 * double(raw_bytes)); }
  /// What an ideal coder would spend: the entropy, the side data, and the raw
  /// plane unless the entropy already covers those bits (whole codes).
  double ideal_per_weight() const {
    return entropy_per_weight() + side_per_weight() + (packed() ? 0.0 : raw_per_weight());
  }
  double coded_per_weight() const { return per_weight(8.0 * double(container_bytes)); }
};

double entropy_bits_of(const ecq::quantized_tensor& q) {
  const auto h = ecq::histogram(q.symbols.data(), q.symbols.size(), q.alphabet_size);
  return ecq::entropy_bits_per_symbol(h.data(), q.alphabet_size) * double(q.symbols.size());
}

std::uint64_t encoded_size(const ecq::quantized_tensor& q, ecq::layout_goal goal, ecq::encoded_tensor* e,
                           ecq::coding_options* used = nullptr) {
  const ecq::coding_options o = ecq::choose_coding_options(q, goal);
  const status s = ecq::encode_quantized(q, o, e);
  if (s != status::ok) fail(std::string("encoding failed: ") + ecq::status_string(s));
  if (used != nullptr) *used = o;
  return e->size();
}

scheme_report inspect_scheme(const loaded_file& f, const ecq::scheme_spec& spec, ecq::layout_goal goal, bool progress) {
  scheme_report rep;
  rep.spec = spec;
  ecq::ecq_file_writer wrapper;  // to count the .ecq wrapper bytes
  std::size_t index = 0;
  for (const auto& t : f.st.tensors()) {
    ++index;
    tensor_report tr;
    tr.name = t.name;
    tr.shape = t.shape;
    tr.elements = t.elements();
    std::vector<float> w;
    if (tr.elements == 0) {
      tr.skipped = true;
      tr.skip_reason = "no elements";
    } else if (ecq::to_float(t, f.st.data(t), &w) != status::ok) {
      tr.skipped = true;
      tr.skip_reason = std::string("dtype ") + ecq::dtype_name(t.dtype) + " is not supported";
    }
    if (tr.skipped) {
      ++rep.skipped;
      rep.tensors.push_back(tr);
      continue;
    }
    if (progress)
      std::fprintf(stderr, "[%s %zu/%zu] %s (%llu weights)\n", spec.name().c_str(), index, f.st.tensors().size(),
                   t.name.c_str(), static_cast<unsigned long long>(tr.elements));
    ecq::quantized_tensor q;
    const status s = quantize_tensor(spec, f.st, t, w, &q);
    if (s != status::ok) fail("tensor \"" + t.name + "\": " + spec.name() + " cannot quantise it (" +
                              ecq::status_string(s) + "; non-finite weights?)");
    std::vector<float> expect;
    if (ecq::dequantize(q, &expect) != status::ok) fail("internal error: dequantising \"" + t.name + "\"");
    for (std::size_t i = 0; i < w.size(); ++i) {
      const double d = double(w[i]) - double(expect[i]);
      tr.signal += double(w[i]) * double(w[i]);
      tr.noise += d * d;
    }
    tr.symbols = q.symbols.size();
    tr.alphabet = q.alphabet_size;
    tr.raw_bytes = q.raw_plane.size() * 4;
    ecq::encoded_tensor e;
    encoded_size(q, goal, &e, &tr.options);
    tr.overhead = e.overhead();
    // Decoding the container (checked) must give the quantiser's output back.
    std::vector<float> got;
    tr.round_trip = ecq::decode_and_dequantize(e, &got) == status::ok && got.size() == expect.size() &&
                    std::memcmp(got.data(), expect.data(), got.size() * sizeof(float)) == 0;
    wrapper.add(t.name, t.dtype, t.shape, e);
    // Entropy of the coded symbols; the reference for the ratio is that of
    // the codes for code schemes (whatever the packing), else the same.
    const double symbol_entropy = entropy_bits_of(q);
    double entropy = symbol_entropy;
    if (rep.packed()) {
      ecq::scheme_spec p1 = spec;
      p1.codes.codes_per_symbol = 1;
      p1.codes.raw_bits = 0;
      ecq::quantized_tensor q1;
      if (quantize_tensor(p1, f.st, t, w, &q1) != status::ok) fail("internal error: p1 quantisation");
      ecq::encoded_tensor e1;
      tr.p1_container_bytes = encoded_size(q1, goal, &e1);
      entropy = entropy_bits_of(q1);
    }
    tr.entropy_bits_per_symbol = tr.symbols == 0 ? 0 : symbol_entropy / double(tr.symbols);
    rep.symbol_entropy_bits += symbol_entropy;
    rep.elements += tr.elements;
    rep.symbols += tr.symbols;
    rep.entropy_bits += entropy;
    rep.container_bytes += tr.overhead.container_bytes;
    rep.side_bytes += tr.overhead.section_bytes;
    rep.raw_bytes += tr.raw_bytes;
    rep.flush_index_bytes += tr.overhead.flush_index_bytes();
    rep.header_bytes += tr.overhead.header_bytes + tr.overhead.directory_bytes + tr.overhead.checksum_bytes;
    rep.table_bytes += tr.overhead.table_bytes;
    rep.word_bytes += tr.overhead.word_bytes;
    rep.state_bytes += tr.overhead.state_bytes;
    rep.p1_container_bytes += tr.p1_container_bytes;
    rep.signal += tr.signal;
    rep.noise += tr.noise;
    rep.round_trip = rep.round_trip && tr.round_trip;
    rep.tensors.push_back(tr);
  }
  rep.wrapper_bytes = wrapper.wrapper_bytes();
  return rep;
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

std::string json_number(double v, int digits = 6) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string s = "[";
  for (std::size_t k = 0; k < shape.size(); ++k) s += (k ? "," : "") + std::to_string(shape[k]);
  return s + "]";
}

void print_json(const std::string& path, const char* layout, const std::vector<scheme_report>& reports) {
  std::printf("{\n  \"file\": %s,\n  \"layout\": \"%s\",\n  \"schemes\": [\n", json_string(path).c_str(), layout);
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const scheme_report& r = reports[i];
    const double coded = r.coded_per_weight();
    std::printf("    {\n      \"scheme\": %s,\n      \"lossless\": %s,\n", json_string(r.spec.name()).c_str(),
                r.spec.lossless() ? "true" : "false");
    std::printf("      \"total\": {\"elements\": %llu, \"symbols\": %llu, \"tensors\": %zu, \"skipped_tensors\": %zu,\n",
                static_cast<unsigned long long>(r.elements), static_cast<unsigned long long>(r.symbols),
                r.tensors.size() - r.skipped, r.skipped);
    std::printf("        \"entropy_bits_per_weight\": %s, \"entropy_of\": \"%s\", \"coded_bits_per_weight\": %s, "
                "\"side_bits_per_weight\": %s, \"raw_bits_per_weight\": %s,\n",
                json_number(r.entropy_per_weight()).c_str(),
                r.spec.kind == ecq::scheme_kind::affine || r.spec.kind == ecq::scheme_kind::codebook ? "codes" : "symbols",
                json_number(coded).c_str(), json_number(r.side_per_weight()).c_str(),
                json_number(r.raw_per_weight()).c_str());
    std::printf("        \"symbol_entropy_bits_per_symbol\": %s, \"ideal_bits_per_weight\": %s, \"coded_over_ideal\": %s,\n",
                json_number(r.symbols == 0 ? 0.0 : r.symbol_entropy_bits / double(r.symbols)).c_str(),
                json_number(r.ideal_per_weight()).c_str(), json_number(coded / r.ideal_per_weight()).c_str());
    std::printf("        \"payload_bits_per_weight\": %s, \"state_bits_per_weight\": %s, "
                "\"flush_index_bits_per_weight\": %s, \"header_bits_per_weight\": %s, \"table_bits_per_weight\": %s,\n",
                json_number(r.per_weight(8.0 * double(r.word_bytes))).c_str(),
                json_number(r.per_weight(8.0 * double(r.state_bytes))).c_str(),
                json_number(r.per_weight(8.0 * double(r.flush_index_bytes))).c_str(),
                json_number(r.per_weight(8.0 * double(r.header_bytes))).c_str(),
                json_number(r.per_weight(8.0 * double(r.table_bytes))).c_str());
    std::printf("        \"ecq_file_bits_per_weight\": %s, \"sqnr_db\": %s, \"round_trip_bit_exact\": %s",
                json_number(r.per_weight(8.0 * double(r.container_bytes + r.wrapper_bytes))).c_str(),
                json_number(r.sqnr_db()).c_str(), r.round_trip ? "true" : "false");
    if (r.packed())
      std::printf(",\n        \"one_code_per_symbol_bits_per_weight\": %s, \"packing_cost_bits_per_weight\": %s",
                  json_number(r.per_weight(8.0 * double(r.p1_container_bytes))).c_str(),
                  json_number(r.per_weight(8.0 * (double(r.container_bytes) - double(r.p1_container_bytes)))).c_str());
    std::printf("},\n      \"tensors\": [\n");
    for (std::size_t k = 0; k < r.tensors.size(); ++k) {
      const tensor_report& t = r.tensors[k];
      std::printf("        {\"name\": %s, \"shape\": %s, \"elements\": %llu", json_string(t.name).c_str(),
                  shape_string(t.shape).c_str(), static_cast<unsigned long long>(t.elements));
      if (t.skipped) {
        std::printf(", \"skipped\": %s}", json_string(t.skip_reason).c_str());
      } else {
        const double n = double(t.elements);
        std::printf(", \"alphabet\": %u, \"entropy_bits_per_symbol\": %s, \"coded_bits_per_weight\": %s, "
                    "\"side_bits_per_weight\": %s, \"raw_bits_per_weight\": %s, \"flush_index_bits_per_weight\": %s, "
                    "\"sqnr_db\": %s, "
                    "\"lanes\": %u, \"tile_rows\": %u, \"chunk_symbols\": %llu, \"scale_bits\": %d, \"blocks\": %llu, "
                    "\"round_trip_bit_exact\": %s}",
                    t.alphabet, json_number(t.entropy_bits_per_symbol).c_str(),
                    json_number(8.0 * double(t.overhead.container_bytes) / n).c_str(),
                    json_number(8.0 * double(t.overhead.section_bytes - t.raw_bytes) / n).c_str(),
                    json_number(8.0 * double(t.raw_bytes) / n).c_str(),
                    json_number(8.0 * double(t.overhead.flush_index_bytes()) / n).c_str(),
                    json_number(t.noise == 0 ? INFINITY : 10 * std::log10(t.signal / t.noise)).c_str(), t.options.lanes,
                    t.options.tile_rows, static_cast<unsigned long long>(t.options.chunk_symbols), t.options.scale_bits,
                    static_cast<unsigned long long>(t.overhead.blocks), t.round_trip ? "true" : "false");
      }
      std::printf("%s\n", k + 1 < r.tensors.size() ? "," : "");
    }
    std::printf("      ]\n    }%s\n", i + 1 < reports.size() ? "," : "");
  }
  std::printf("  ]\n}\n");
}

std::string short_name(const std::string& name, std::size_t width) {
  if (name.size() <= width) return name;
  return "..." + name.substr(name.size() - (width - 3));
}

void print_text(const std::string& path, const char* layout, const std::vector<scheme_report>& reports) {
  std::printf("%s  (layout: %s; bits per weight count every container byte)\n", path.c_str(), layout);
  for (const scheme_report& r : reports) {
    std::printf("\nscheme %s%s\n", r.spec.name().c_str(), r.spec.lossless() ? " (lossless)" : "");
    std::printf("  %-44s %10s %7s %8s %8s %7s %7s %7s %8s\n", "tensor", "elements", "alpha", "H/sym", "bits/w", "side",
                "raw", "flush", "SQNR dB");
    for (const tensor_report& t : r.tensors) {
      if (t.skipped) {
        std::printf("  %-44s %10llu  skipped: %s\n", short_name(t.name, 44).c_str(),
                    static_cast<unsigned long long>(t.elements), t.skip_reason.c_str());
        continue;
      }
      const double n = double(t.elements);
      std::printf("  %-44s %10llu %7u %8.4f %8.4f %7.4f %7.4f %7.4f %8.2f%s\n", short_name(t.name, 44).c_str(),
                  static_cast<unsigned long long>(t.elements), t.alphabet, t.entropy_bits_per_symbol,
                  8.0 * double(t.overhead.container_bytes) / n, 8.0 * double(t.overhead.section_bytes - t.raw_bytes) / n,
                  8.0 * double(t.raw_bytes) / n, 8.0 * double(t.overhead.flush_index_bytes()) / n,
                  t.noise == 0 ? INFINITY : 10 * std::log10(t.signal / t.noise), t.round_trip ? "" : "  ROUND TRIP FAILED");
    }
  }
  std::printf("\ntotals, side by side (bits per weight):\n");
  std::printf("  %-26s %10s %9s %9s %8s %8s %8s %9s %9s %8s %6s\n", "scheme", "elements", "entropy", "coded", "side",
              "raw", "flush", "ratio*", ".ecq file", "SQNR dB", "exact");
  for (const scheme_report& r : reports) {
    std::printf("  %-26s %10llu %9.4f %9.4f %8.4f %8.4f %8.4f %9.5f %9.4f %8.3f %6s\n", r.spec.name().c_str(),
                static_cast<unsigned long long>(r.elements), r.entropy_per_weight(), r.coded_per_weight(),
                r.side_per_weight(), r.raw_per_weight(), r.per_weight(8.0 * double(r.flush_index_bytes)),
                r.coded_per_weight() / r.ideal_per_weight(),
                r.per_weight(8.0 * double(r.container_bytes + r.wrapper_bytes)), r.sqnr_db(),
                r.round_trip ? "yes" : "NO");
    if (r.packed())
      std::printf("  %-26s packing cost vs one code per symbol: %+.4f bits/weight (%.4f with one code per symbol)\n",
                  "", r.per_weight(8.0 * (double(r.container_bytes) - double(r.p1_container_bytes))),
                  r.per_weight(8.0 * double(r.p1_container_bytes)));
  }
  std::printf("  entropy: of the codes for affine/codebook (whatever the packing), of the coded symbols otherwise;\n"
              "  side: scales, biases, steps, tables; raw: uncoded bits (bf16/f16 sign+mantissa, split symbols);\n"
              "  * ratio = coded / ideal, ideal = entropy + side (+ raw when the entropy does not cover it);\n"
              "  .ecq file adds tensor names, shapes and the file directory; exact: the container decodes to the\n"
              "  quantiser's output bit for bit.\n");
}

ecq::layout_goal parse_layout(const std::string& s) {
  if (s == "storage") return ecq::layout_goal::storage;
  if (s == "kernel") return ecq::layout_goal::kernel;
  usage_error("unknown layout \"" + s + "\" (storage or kernel)");
}

int cmd_inspect(const std::vector<std::string>& args) {
  std::string path;
  std::vector<std::string> schemes;
  bool json = false, quiet = false;
  std::string layout = "storage";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--scheme" && i + 1 < args.size()) schemes.push_back(args[++i]);
    else if (args[i] == "--layout" && i + 1 < args.size()) layout = args[++i];
    else if (args[i] == "--json") json = true;
    else if (args[i] == "--quiet") quiet = true;
    else if (path.empty() && args[i].rfind("--", 0) != 0) path = args[i];
    else usage_error("inspect: unexpected argument \"" + args[i] + "\"");
  }
  if (path.empty()) usage_error("inspect: missing FILE.safetensors");
  const ecq::layout_goal goal = parse_layout(layout);
  loaded_file f;
  load_safetensors(path, &f);
  std::uint64_t total = 0;
  for (const auto& t : f.st.tensors()) total += t.elements();
  const bool progress = !quiet && total > progress_threshold;

  std::vector<scheme_report> reports;
  auto run = [&](const std::string& name) {
    ecq::scheme_spec spec;
    std::string error;
    if (ecq::parse_scheme(name, &spec, &error) != status::ok) usage_error(error);
    reports.push_back(inspect_scheme(f, spec, goal, progress));
  };
  if (schemes.empty()) {
    run("bf16");
    run("affine4-g64");
    // A uniform scheme at the SQNR affine4-g64 reached, rounded up to 0.01 dB.
    const double target = std::ceil(reports.back().sqnr_db() * 100.0) / 100.0;
    char name[64];
    std::snprintf(name, sizeof name, "uniform-sqnr%.2f", std::isfinite(target) ? target : 40.0);
    run(name);
  } else {
    for (const auto& s : schemes) run(s);
  }
  if (json) print_json(path, layout.c_str(), reports);
  else print_text(path, layout.c_str(), reports);
  for (const auto& r : reports)
    if (!r.round_trip) return 1;
  return 0;
}

// --------------------------------------------------------------------------
// pack / unpack / verify

// --layout gpu: one tensor in the GPU layout (ecq/gpu_container.hpp).
// @return status::ok; bad_shape or unsupported_parameters when the layout
//         cannot hold the tensor (cols not a multiple of 256, more than 64
//         exponents, a symbol too frequent for the kernels' tables).
status encode_gpu_tensor(const ecq::scheme_spec& spec, const ecq::safetensors_file& st, const ecq::safetensors_tensor& t,
                         const std::vector<float>& w, ecq::encoded_tensor* e) {
  const std::uint64_t rows = ecq::shape_rows(t.shape), cols = ecq::shape_cols(t.shape);
  if (cols % ecq::gpu_layout::chunk_weights != 0) return status::bad_shape;
  if (spec.kind == ecq::scheme_kind::bf16) {
    std::vector<std::uint16_t> h;
    if (t.dtype == ecq::tensor_dtype::bf16) {
      h = u16_values(st, t);  // the bits themselves: nothing rounded
    } else {
      h.resize(w.size());
      for (std::size_t i = 0; i < w.size(); ++i) h[i] = ecq::float_to_bf16(w[i]);
    }
    return ecq::encode_gpu_bf16(h.data(), rows, cols, e);
  }
  ecq::quantized_tensor q;
  std::vector<std::uint8_t> codes;
  const status s = ecq::affine_quantize(w.data(), rows, cols, spec.codes, &q, &codes);
  if (s != status::ok) return s;
  auto u16s = [&](ecq::section_tag tag) {
    const ecq::side_section* sec = q.find(tag);
    std::vector<std::uint16_t> v(sec->bytes.size() / 2);
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::uint16_t(sec->bytes[2 * i] | sec->bytes[2 * i + 1] << 8);
    return v;
  };
  return ecq::encode_gpu_affine4(codes.data(), u16s(ecq::section_tag::scales), u16s(ecq::section_tag::biases), rows,
                                 cols, spec.codes.group_size, e);
}

// Weights of any container: the schemes' dequantisers, or the GPU layout's reader.
status dequantize_container(const ecq::encoded_tensor& e, std::vector<float>* v) {
  if (ecq::gpu_layout::weights_per_symbol(e.geometry().scheme_id) != 0) return ecq::gpu_dequantize(e, v);
  return ecq::decode_and_dequantize(e, v);
}

int cmd_pack(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  std::string scheme, layout = "storage";
  bool quiet = false;
  int mlx_bits = 0;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--scheme" && i + 1 < args.size()) scheme = args[++i];
    else if (args[i] == "--layout" && i + 1 < args.size()) layout = args[++i];
    else if (args[i] == "--mlx-bits" && i + 1 < args.size()) {
      const std::string b = args[++i];
      if (b != "2" && b != "4" && b != "8") usage_error("pack: --mlx-bits must be 2, 4 or 8 (MLX's packed widths)");
      mlx_bits = std::stoi(b);
    }
    else if (args[i] == "--quiet") quiet = true;
    else if (args[i].rfind("--", 0) != 0) paths.push_back(args[i]);
    else usage_error("pack: unexpected argument \"" + args[i] + "\"");
  }
  if (paths.size() != 2) usage_error("pack: expected IN.safetensors OUT.ecq");
  if (scheme.empty()) usage_error("pack: --scheme is required");
  ecq::scheme_spec spec;
  std::string error;
  if (ecq::parse_scheme(scheme, &spec, &error) != status::ok) usage_error(error);
  const bool gpu = layout == "gpu";
  if (gpu && !(spec.kind == ecq::scheme_kind::bf16 ||
               (spec.kind == ecq::scheme_kind::affine && spec.codes.bits == 4 &&
                spec.codes.side_format == ecq::float16_format::bfloat16 &&
                (spec.codes.group_size == 64 || spec.codes.group_size == 128 || spec.codes.group_size == 256))))
    usage_error("pack: --layout gpu takes --scheme bf16 or affine4-g64|g128|g256-bf16 (the schemes the CUDA kernels run)");
  if (gpu && mlx_bits != 0) usage_error("pack: --layout gpu does not take MLX quantized weights (--mlx-bits)");
  const ecq::layout_goal goal = gpu ? ecq::layout_goal::storage : parse_layout(layout);  // gpu: for the fallbacks
  loaded_file f;
  load_safetensors(paths[0], &f);
  // MLX triplets: their weights are packed as one tensor, their scales and biases go inside it.
  std::vector<mlx_triplet> triplets;
  std::vector<const ecq::safetensors_tensor*> inside;
  for (const auto& t : f.st.tensors()) {
    mlx_triplet m;
    if (!find_mlx_triplet(f.st, t, &m)) continue;
    if (mlx_bits == 0)
      fail("tensor \"" + t.name + "\" looks like an MLX quantized weight (U32, with .scales and .biases); pass "
           "--mlx-bits B, the bits of the model's quantization config, to code it losslessly");
    triplets.push_back(m);
    inside.push_back(m.scales);
    inside.push_back(m.biases);
  }
  auto triplet_of = [&](const ecq::safetensors_tensor& t) -> const mlx_triplet* {
    for (const auto& m : triplets)
      if (m.weight == &t) return &m;
    return nullptr;
  };
  auto is_inside = [&](const ecq::safetensors_tensor& t) {
    return std::find(inside.begin(), inside.end(), &t) != inside.end();
  };
  for (const auto& t : f.st.tensors()) {
    if (!ecq::converts_to_float(t.dtype) && triplet_of(t) == nullptr && !is_inside(t))
      fail("tensor \"" + t.name + "\" has dtype " + ecq::dtype_name(t.dtype) +
           "; ecq packs F32, F16, BF16, F64, I8 and I16 tensors, and MLX quantized weights with --mlx-bits");
  }
  std::uint64_t total = 0, weights = 0, bytes = 0;
  for (const auto& t : f.st.tensors()) total += t.elements();
  const bool progress = !quiet && total > progress_threshold;
  ecq::ecq_file_writer out;
  std::vector<std::string> not_gpu;  // --layout gpu: tensors kept in the storage layout
  std::size_t index = 0;
  for (const auto& t : f.st.tensors()) {
    ++index;
    if (is_inside(t)) continue;
    if (progress)
      std::fprintf(stderr, "[%zu/%zu] %s (%llu %s)\n", index, f.st.tensors().size(), t.name.c_str(),
                   static_cast<unsigned long long>(t.elements()), triplet_of(t) ? "MLX words" : "weights");
    status s;
    if (const mlx_triplet* m = triplet_of(t)) {
      ecq::quantized_tensor q;
      std::vector<std::uint64_t> shape;
      std::string why;
      if (!mlx_quantized(f.st, *m, mlx_bits, &q, &shape, &why)) fail("MLX weight \"" + t.name + "\": " + why);
      ecq::encoded_tensor e;
      encoded_size(q, goal, &e);
      bytes += e.size();
      weights += q.rows * q.cols;
      if ((s = out.add(t.name, t.dtype, shape, e)) != status::ok)
        fail("tensor \"" + t.name + "\": " + ecq::status_string(s));
      continue;
    }
    if (t.elements() == 0) {  // kept with its name, shape and dtype; no container
      if ((s = out.add_empty(t.name, t.dtype, t.shape)) != status::ok)
        fail("tensor \"" + t.name + "\": " + ecq::status_string(s));
      continue;
    }
    std::vector<float> w;
    ecq::to_float(t, f.st.data(t), &w);
    if (gpu) {
      ecq::encoded_tensor e;
      s = encode_gpu_tensor(spec, f.st, t, w, &e);
      if (s == status::ok) {
        bytes += e.size();
        weights += t.elements();
        if ((s = out.add(t.name, t.dtype, t.shape, e)) != status::ok)
          fail("tensor \"" + t.name + "\": " + ecq::status_string(s));
        continue;
      }
      if (s != status::bad_shape && s != status::unsupported_parameters)
        fail("tensor \"" + t.name + "\": cannot encode in the GPU layout (" + ecq::status_string(s) + ")");
      not_gpu.push_back(t.name + " (" + ecq::status_string(s) + ")");
    }
    ecq::quantized_tensor q;
    s = quantize_tensor(spec, f.st, t, w, &q);
    if (s != status::ok) fail("tensor \"" + t.name + "\": cannot quantise with " + spec.name() + " (" +
                              ecq::status_string(s) + ")");
    ecq::encoded_tensor e;
    encoded_size(q, goal, &e);
    bytes += e.size();
    weights += t.elements();
    if ((s = out.add(t.name, t.dtype, t.shape, e)) != status::ok)
      fail("tensor \"" + t.name + "\": " + ecq::status_string(s));
  }
  if (!quiet && !not_gpu.empty()) {
    std::fprintf(stderr, "%zu tensors kept in the storage layout (no GPU layout):", not_gpu.size());
    for (const auto& n : not_gpu) std::fprintf(stderr, " %s", n.c_str());
    std::fprintf(stderr, "\n");
  }
  for (const auto& kv : f.st.metadata()) out.add_metadata(kv.first, kv.second);
  const std::vector<std::uint8_t> file = out.serialize();
  if (ecq::write_file_bytes(paths[1], file, &error) != status::ok) fail(error);
  if (!quiet)
    std::fprintf(stderr, "%s: %zu tensors (%zu MLX), %llu weights, %s, %.4f bits/weight in containers, %.4f with the wrapper\n",
                 paths[1].c_str(), f.st.tensors().size() - inside.size(), triplets.size(),
                 static_cast<unsigned long long>(weights), spec.name().c_str(),
                 weights ? 8.0 * double(bytes) / double(weights) : 0.0,
                 weights ? 8.0 * double(file.size()) / double(weights) : 0.0);
  return 0;
}

void open_ecq(const std::string& path, std::vector<std::uint8_t>* bytes, ecq::ecq_file_reader* r) {
  std::string error;
  if (ecq::read_file_bytes(path, bytes, &error) != status::ok) fail(error);
  const status s = r->parse(bytes->data(), bytes->size(), &error);
  if (s != status::ok) fail(path + ": not a valid .ecq file (" + ecq::status_string(s) + "): " + error);
}

int cmd_unpack(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  std::string dtype = "auto";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--dtype" && i + 1 < args.size()) dtype = args[++i];
    else if (args[i].rfind("--", 0) != 0) paths.push_back(args[i]);
    else usage_error("unpack: unexpected argument \"" + args[i] + "\"");
  }
  if (paths.size() != 2) usage_error("unpack: expected IN.ecq OUT.safetensors");
  if (dtype != "auto" && dtype != "F32" && dtype != "BF16" && dtype != "F16")
    usage_error("unpack: --dtype must be auto, F32, BF16 or F16");
  std::vector<std::uint8_t> bytes;
  ecq::ecq_file_reader r;
  open_ecq(paths[0], &bytes, &r);
  ecq::safetensors_writer w;
  for (std::size_t i = 0; i < r.tensors().size(); ++i) {
    const ecq::ecq_file_tensor& t = r.tensors()[i];
    status s;
    if (t.elements() == 0) {  // no container; auto: the source dtype where unpack can write it, else float32
      ecq::tensor_dtype out = ecq::tensor_dtype::f32;
      if (dtype == "BF16" || (dtype == "auto" && t.source_dtype == ecq::tensor_dtype::bf16)) out = ecq::tensor_dtype::bf16;
      if (dtype == "F16" || (dtype == "auto" && t.source_dtype == ecq::tensor_dtype::f16)) out = ecq::tensor_dtype::f16;
      if ((s = w.add(t.name, out, t.shape, {})) != status::ok) fail("tensor \"" + t.name + "\": " + ecq::status_string(s));
      continue;
    }
    ecq::encoded_tensor e;
    s = r.open_tensor(i, &e);
    std::vector<float> v;
    if (s == status::ok) s = dequantize_container(e, &v);
    if (s != status::ok) fail("tensor \"" + t.name + "\": " + ecq::status_string(s));
    // auto: the lossless 16-bit schemes give their own format back; others float32.
    ecq::tensor_dtype out = ecq::tensor_dtype::f32;
    if (dtype == "BF16" || (dtype == "auto" && (e.geometry().scheme_id == std::uint32_t(ecq::scheme_kind::bf16) ||
                                                e.geometry().scheme_id == ecq::gpu_layout::bf16_pairs_scheme)))
      out = ecq::tensor_dtype::bf16;
    if (dtype == "F16" || (dtype == "auto" && e.geometry().scheme_id == std::uint32_t(ecq::scheme_kind::f16)))
      out = ecq::tensor_dtype::f16;
    std::vector<std::uint8_t> data;
    if (out == ecq::tensor_dtype::f32) {
      data.resize(v.size() * 4);
      if (!v.empty()) std::memcpy(data.data(), v.data(), data.size());
    } else {
      data.resize(v.size() * 2);
      for (std::size_t k = 0; k < v.size(); ++k) {
        const std::uint16_t h = out == ecq::tensor_dtype::bf16 ? ecq::float_to_bf16(v[k]) : ecq::float_to_f16(v[k]);
        data[2 * k] = std::uint8_t(h);
        data[2 * k + 1] = std::uint8_t(h >> 8);
      }
    }
    if ((s = w.add(t.name, out, t.shape, std::move(data))) != status::ok)
      fail("tensor \"" + t.name + "\": " + ecq::status_string(s));
  }
  for (const auto& kv : r.metadata()) w.add_metadata(kv.first, kv.second);
  std::string error;
  if (ecq::write_file_bytes(paths[1], w.serialize(), &error) != status::ok) fail(error);
  return 0;
}

int cmd_verify(const std::vector<std::string>& args) {
  if (args.size() != 1) usage_error("verify: expected FILE.ecq");
  std::vector<std::uint8_t> bytes;
  ecq::ecq_file_reader r;
  open_ecq(args[0], &bytes, &r);
  std::size_t bad = 0;
  std::uint64_t weights = 0;
  for (std::size_t i = 0; i < r.tensors().size(); ++i) {
    const ecq::ecq_file_tensor& t = r.tensors()[i];
    if (t.elements() == 0) continue;  // nothing to check: the reader has checked it has no container
    ecq::encoded_tensor e;
    status s = r.open_tensor(i, &e);
    std::vector<float> v;
    if (s == status::ok) s = dequantize_container(e, &v);
    if (s != status::ok) {
      ++bad;
      std::printf("%s: %s\n", t.name.c_str(), ecq::status_string(s));
    }
    weights += v.size();
  }
  std::printf("%s: %zu tensors, %llu weights: %s\n", args[0].c_str(), r.tensors().size(),
              static_cast<unsigned long long>(weights), bad == 0 ? "OK" : "INVALID");
  return bad == 0 ? 0 : 1;
}

// --------------------------------------------------------------------------
// Self-test: run with no arguments (this example is also a ctest test).

int self_test() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ecq_tool_self_test_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  std::mt19937 rng(1);
  std::student_t_distribution<float> t(4.0f);
  ecq::safetensors_writer w;
  std::vector<float> a(96 * 80), b(50);
  for (auto& x : a) x = 0.02f * t(rng);
  for (auto& x : b) x = 0.1f * t(rng);
  std::vector<std::uint8_t> ab(a.size() * 4), bb(b.size() * 4);
  std::memcpy(ab.data(), a.data(), ab.size());
  std::memcpy(bb.data(), b.data(), bb.size());
  w.add("layer.weight", ecq::tensor_dtype::f32, {96, 80}, ab);
  w.add("layer.bias", ecq::tensor_dtype::f32, {50}, bb);
  w.add("layer.unused", ecq::tensor_dtype::bf16, {0, 80}, {});  // empty tensors pass through
  // An MLX 4-bit triplet with groups of 64: 8 rows of 128 codes as 16 words, F16 scales and biases.
  const std::uint64_t mlx_rows = 8, mlx_cols = 128, mlx_groups = 2;
  std::vector<std::uint8_t> mlx_codes(mlx_rows * mlx_cols);
  std::binomial_distribution<int> code(15, 0.5);
  for (auto& c : mlx_codes) c = std::uint8_t(code(rng));
  std::vector<std::uint32_t> mlx_words(mlx_rows * mlx_cols / 8);
  ecq::pack_mlx_words(mlx_codes.data(), mlx_rows, mlx_cols, 4, mlx_words.data());
  std::vector<std::uint16_t> mlx_scales(mlx_rows * mlx_groups), mlx_biases(mlx_rows * mlx_groups);
  for (std::size_t k = 0; k < mlx_scales.size(); ++k) {
    mlx_scales[k] = ecq::float_to_f16(0.01f * float(1 + k % 3));
    mlx_biases[k] = ecq::float_to_f16(-0.07f - 0.001f * float(k));
  }
  auto bytes_of = [](const auto& v) {
    std::vector<std::uint8_t> b(v.size() * sizeof(v[0]));
    std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  w.add("mlp.weight", ecq::tensor_dtype::u32, {mlx_rows, mlx_cols / 8}, bytes_of(mlx_words));
  w.add("mlp.scales", ecq::tensor_dtype::f16, {mlx_rows, mlx_groups}, bytes_of(mlx_scales));
  w.add("mlp.biases", ecq::tensor_dtype::f16, {mlx_rows, mlx_groups}, bytes_of(mlx_biases));
  const std::string in = (dir / "in.safetensors").string();
  if (ecq::write_file_bytes(in, w.serialize()) != status::ok) fail("self-test: cannot write " + in);
  int failures = 0;
  for (const char* scheme : {"bf16", "affine4-g64", "affine4-g32-p2r1", "codebook-nf4-g64", "uniform-sqnr25"}) {
    const std::string packed = (dir / "x.ecq").string(), out = (dir / "out.safetensors").string();
    cmd_pack({in, packed, "--scheme", scheme, "--mlx-bits", "4", "--quiet"});
    if (cmd_verify({packed}) != 0) ++failures;
    cmd_unpack({packed, out});
    loaded_file f;
    load_safetensors(out, &f);
    ecq::scheme_spec spec;
    ecq::parse_scheme(scheme, &spec);
    for (std::size_t k = 0; k < 2; ++k) {
      const auto& src = k == 0 ? a : b;
      const auto& tt = f.st.tensors()[k];
      std::vector<float> v;
      ecq::to_float(tt, f.st.data(tt), &v);
      ecq::quantized_tensor q;
      ecq::quantize(spec, src.data(), k == 0 ? 96 : 1, k == 0 ? 80 : 50, &q);
      std::vector<float> expect;
      ecq::dequantize(q, &expect);
      if (v != expect) {
        ++failures;
        std::printf("self-test: %s, %s: unpacked values differ from the quantiser's\n", scheme, tt.name.c_str());
      }
    }
    const auto& empty = f.st.tensors()[2];
    if (empty.name != "layer.unused" || empty.dtype != ecq::tensor_dtype::bf16 ||
        empty.shape != std::vector<std::uint64_t>{0, 80}) {
      ++failures;
      std::printf("self-test: %s: the empty tensor did not come back as it went in\n", scheme);
    }
    // The MLX weight comes back dequantised, w = scale * q + bias, whatever --scheme says.
    const auto& mlx = f.st.tensors()[3];
    std::vector<float> v;
    bool same = mlx.name == "mlp.weight" && mlx.shape == std::vector<std::uint64_t>{mlx_rows, mlx_cols} &&
                f.st.tensors().size() == 4 && ecq::to_float(mlx, f.st.data(mlx), &v) == status::ok;
    for (std::size_t i = 0; same && i < v.size(); ++i) {
      const std::size_t g = i / 64;
      same = v[i] == ecq::f16_to_float(mlx_scales[g]) * float(mlx_codes[i]) + ecq::f16_to_float(mlx_biases[g]);
    }
    if (!same) {
      ++failures;
      std::printf("self-test: %s: the MLX weight did not come back as scale * q + bias\n", scheme);
    }
  }
  // --layout gpu: a BF16 matrix with whole 256-column chunks goes in the GPU layout (bf16 bits exactly; affine4
  // as affine_quantize makes it), the 80-column one keeps the storage layout.
  {
    ecq::safetensors_writer g;
    std::vector<std::uint16_t> gb(40 * 512);
    for (auto& x : gb) x = ecq::float_to_bf16(0.02f * t(rng));
    g.add("gpu.weight", ecq::tensor_dtype::bf16, {40, 512}, bytes_of(gb));
    g.add("layer.weight", ecq::tensor_dtype::f32, {96, 80}, ab);
    const std::string gin = (dir / "gpu.safetensors").string(), packed = (dir / "gpu.ecq").string();
    const std::string out = (dir / "gpu_out.safetensors").string();
    if (ecq::write_file_bytes(gin, g.serialize()) != status::ok) fail("self-test: cannot write " + gin);
    for (const char* scheme : {"bf16", "affine4-g128-bf16"}) {
      cmd_pack({gin, packed, "--scheme", scheme, "--layout", "gpu", "--quiet"});
      if (cmd_verify({packed}) != 0) ++failures;
      std::vector<std::uint8_t> fb;
      ecq::ecq_file_reader r;
      open_ecq(packed, &fb, &r);
      ecq::encoded_tensor e;
      const bool is_gpu = r.open_tensor(0, &e) == status::ok &&
                          ecq::gpu_layout::weights_per_symbol(e.geometry().scheme_id) != 0;
      cmd_unpack({packed, out});
      loaded_file f;
      load_safetensors(out, &f);
      const auto& tt = f.st.tensors()[0];
      std::vector<float> v, gf(gb.size());
      ecq::to_float(tt, f.st.data(tt), &v);
      for (std::size_t i = 0; i < gb.size(); ++i) gf[i] = ecq::bf16_to_float(gb[i]);
      bool same = is_gpu && v.size() == gb.size() && f.st.tensors().size() == 2;
      if (same && scheme[0] == 'b') {
        for (std::size_t i = 0; same && i < v.size(); ++i) same = ecq::float_to_bf16(v[i]) == gb[i];
      } else if (same) {
        ecq::scheme_spec spec;
        ecq::parse_scheme(scheme, &spec);
        ecq::quantized_tensor q;
        ecq::quantize(spec, gf.data(), 40, 512, &q);
        std::vector<float> expect;
        ecq::dequantize(q, &expect);
        same = v == expect;
      }
      if (!same) {
        ++failures;
        std::printf("self-test: %s --layout gpu: the GPU-layout tensor did not come back\n", scheme);
      }
    }
  }
  fs::remove_all(dir);
  std::printf("self-test: %s\n", failures == 0 ? "passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stdout);
    return self_test();
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "inspect") return cmd_inspect(args);
  if (cmd == "pack") return cmd_pack(args);
  if (cmd == "unpack") return cmd_unpack(args);
  if (cmd == "verify") return cmd_verify(args);
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    print_usage(stdout);
    return 0;
  }
  usage_error("unknown command \"" + cmd + "\"");
}
