// examples/ecq_tool.cpp — the `ecq` command-line tool (built as `ecq`).
//
//   ecq inspect FILE.safetensors [--scheme S|lossless]... [policy options] [--layout storage|kernel] [--json]
//       Per tensor and in total, for each scheme: the policy's decision and
//       why (io/policy.hpp: the scheme, lossless in the tensor's own dtype,
//       raw bytes, or empty), elements, entropy of the coded symbols, coded
//       bits/weight counting every byte of the container (header,
//       parameters, table, section directory, block index, flushed states,
//       side data, padding, checksum), SQNR for lossy schemes, and whether
//       decoding the container reproduces the quantiser's output bit for
//       bit; totals split by decision. Without --scheme: bf16, affine4-g64
//       and a uniform scheme at the SQNR affine4-g64 reached, side by side.
//   ecq inspect FILE.ecq [--json]
//       Lists the tensors of an .ecq file: dtype, shape, storage, scheme,
//       bytes and bits/weight, coding layout; totals per scheme. Opens each
//       container (checked, checksum included) without decoding it.
//   ecq pack IN.safetensors OUT.ecq --scheme S|lossless [policy options] [--layout storage|kernel|gpu] [--mlx-bits B]
//       Packs every tensor by the policy: the float matrices it suits get S,
//       the others their own dtype's lossless coding or their raw bytes;
//       prints each tensor's decision and why, and the totals per decision.
//       `--scheme lossless` codes every tensor losslessly in its own dtype.
//       --layout gpu writes the tensors that get S in the layout the CUDA
//       loader and kernels read (docs/format.md section 15) for S = bf16 or
//       affine4-g64/g128/g256-bf16, and keeps the storage layout for those it
//       cannot hold (cols not a multiple of 256, ...), saying so in the reason.
//       With --mlx-bits B, every MLX quantized weight (X.weight of dtype U32
//       next to X.scales and X.biases) is coded losslessly as one
//       affine<B>-g<G> container (see "MLX quantized weights" below).
//   ecq unpack IN.ecq OUT.safetensors [--dtype auto|F32|BF16|F16] [--write auto|direct|buffered]
//       auto: lossless tensors and raw ones in their own dtype and bytes;
//       lossy ones as F32 (MLX weights too: the dequantised values).
//       --write: the output with O_DIRECT (Linux; auto, the default, falls
//       back to buffered writes where the file system refuses O_DIRECT;
//       direct fails there), or buffered.
//   ecq verify FILE.ecq
//       Checks the file's structure and checksums, each container's scheme
//       and side data, and decodes every block (checked, nothing stored);
//       says whether all are valid.
//   ecq selftest
//       pack, unpack, verify and inspect of synthetic weights in a temporary
//       folder; exit 0 if every check passes (a ctest test runs it).
//   ecq                 usage
//
// Policy options (pack and inspect): --keep REGEX (tensors whose name it
// matches keep their precision; repeatable), --only REGEX (only those may
// get the scheme; repeatable), --keep-embeddings, --keep-head, --all-tensors
// (every float tensor is offered to the scheme, whatever its name or shape;
// what ecq did before the policy). Common options: --threads N (default:
// every core; pack and inspect code tensors in parallel, verify and unpack
// decode one tensor at a time with its blocks in parallel through
// ecq/cpu/tensor_ops.hpp), --quiet.
//
// Exit codes: 0 success, 1 a file is invalid or an operation failed, 2 usage.
// Progress goes to stderr for files above 2^22 weights (not with --quiet).
#include <ecq/cpu/tensor_ops.hpp>
#include <ecq/gpu_container.hpp>
#include <ecq/io/ecq_file.hpp>
#include <ecq/io/file_bytes.hpp>
#include <ecq/io/policy.hpp>
#include <ecq/io/safetensors.hpp>
#include <ecq/schemes/scheme.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <regex>
#include <string>
#include <thread>
#include <vector>

// unpack's output with O_DIRECT (Linux; see write_unpacked_direct): the one use of the operating system beyond
// the C++ standard library (and the library's optional mmap in ecq/io/file_bytes.hpp) in the tool.
#if defined(__has_include)
#if __has_include(<fcntl.h>) && __has_include(<unistd.h>)
#include <fcntl.h>
#include <unistd.h>
#endif
#if __has_include(<sys/mman.h>)
#include <sys/mman.h>
#endif
#endif
#if defined(O_DIRECT)
#define ECQ_TOOL_HAVE_O_DIRECT 1
#else
#define ECQ_TOOL_HAVE_O_DIRECT 0
#endif

namespace {

using ecq::status;
using ecq::tensor_decision;

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
      "  ecq inspect FILE.safetensors [--scheme S|lossless]... [POLICY] [--layout storage|kernel] [--json] [COMMON]\n"
      "  ecq inspect FILE.ecq [--json]\n"
      "  ecq pack IN.safetensors OUT.ecq --scheme S|lossless [POLICY] [--layout storage|kernel|gpu] [--mlx-bits B] [COMMON]\n"
      "  ecq unpack IN.ecq OUT.safetensors [--dtype auto|F32|BF16|F16] [--write auto|direct|buffered] [COMMON]\n"
      "  ecq verify FILE.ecq [COMMON]\n"
      "  ecq selftest\n"
      "schemes: bf16, f16, f32, affine<b>-g<G>[-bf16][-p<C>[r<R>]], codebook-nf4-g<G>[-bf16][-p<C>[r<R>]],\n"
      "         uniform-sqnr<dB>[-row|-g<G>][-bf16]   e.g. affine4-g64, affine4-g64-p2, uniform-sqnr21.05;\n"
      "         lossless: every tensor in its own dtype, bit for bit (F32 -> f32, F16 -> f16, BF16 -> bf16, others raw)\n"
      "POLICY:  which tensors get the scheme (the others: lossless in their dtype, or raw when that is smaller):\n"
      "         float matrices (>= 2-D, > 1 row) with at least a group of columns, except norms, biases and\n"
      "         statistics by name;  --keep REGEX  keep matching tensors;  --only REGEX  only matching ones get\n"
      "         the scheme (both repeatable, ECMAScript syntax, matched anywhere in the name);  --keep-embeddings;\n"
      "         --keep-head;  --all-tensors  offer every float tensor to the scheme\n"
      "COMMON:  --threads N (default: every core)  --quiet\n"
      "layouts: storage (default; big blocks, smallest files), kernel (32-row x 256-symbol blocks),\n"
      "  gpu (pack only: what ecq/device_tensor.cuh loads; --scheme bf16 or affine4-g64|g128|g256-bf16)\n",
      f);
}

// --------------------------------------------------------------------------
// Options shared by the commands.

struct common_options {
  unsigned threads = 0;  // 0: every core
  bool quiet = false;

  /// Consumes args[*i] (and its value) if it is a common option.
  bool parse(const std::vector<std::string>& args, std::size_t* i) {
    if (args[*i] == "--quiet") {
      quiet = true;
      return true;
    }
    if (args[*i] != "--threads") return false;
    if (*i + 1 >= args.size()) usage_error("--threads needs a count");
    const std::string& v = args[++*i];
    char* end = nullptr;
    const unsigned long n = std::strtoul(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || n < 1 || n > 4096) usage_error("--threads must be a count from 1 to 4096");
    threads = unsigned(n);
    return true;
  }
  unsigned thread_count() const {
    if (threads != 0) return threads;
    const unsigned n = std::thread::hardware_concurrency();
    return n == 0 ? 1 : n;
  }
};

struct policy_options {
  std::vector<std::string> keep, only;
  bool keep_embeddings = false, keep_head = false, all_tensors = false;

  bool parse(const std::vector<std::string>& args, std::size_t* i) {
    const std::string& a = args[*i];
    if ((a == "--keep" || a == "--only") && *i + 1 < args.size()) {
      (a == "--keep" ? keep : only).push_back(args[++*i]);
      return true;
    }
    if (a == "--keep-embeddings") keep_embeddings = true;
    else if (a == "--keep-head") keep_head = true;
    else if (a == "--all-tensors") all_tensors = true;
    else return false;
    return true;
  }
  /// The library policy; a regex that does not compile is a usage error.
  ecq::tensor_policy build() const {
    ecq::tensor_policy p;
    p.quantize_embeddings = !keep_embeddings;
    p.quantize_output_head = !keep_head;
    p.all_tensors = all_tensors;
    auto matcher = [](const std::vector<std::string>& patterns, const char* option) {
      std::vector<std::regex> res;
      for (const auto& s : patterns) {
        try {
          res.emplace_back(s, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          usage_error(std::string(option) + " \"" + s + "\" is not a valid regular expression (" + e.what() + ")");
        }
      }
      return [res](const std::string& name) {
        for (const auto& re : res)
          if (std::regex_search(name, re)) return true;
        return false;
      };
    };
    if (!keep.empty()) p.keep = matcher(keep, "--keep");
    if (!only.empty()) p.only = matcher(only, "--only");
    return p;
  }
};

/// Runs f(i) for i in [0, n) on up to `threads` threads (each takes the next
/// index when it is done, so one large tensor does not hold up the others).
/// f must not exit the process: workers report through their results.
template <class F>
void parallel_for(std::size_t n, unsigned threads, F&& f) {
  const std::size_t t = std::min<std::size_t>(threads, n);
  if (t <= 1) {
    for (std::size_t i = 0; i < n; ++i) f(i);
    return;
  }
  std::atomic<std::size_t> next{0};
  std::vector<std::thread> pool;
  for (std::size_t k = 0; k < t; ++k)
    pool.emplace_back([&] {
      for (std::size_t i; (i = next.fetch_add(1)) < n;) f(i);
    });
  for (auto& th : pool) th.join();
}

/// Serialises progress lines from worker threads.
std::mutex progress_mutex;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// --------------------------------------------------------------------------
// Loading tensors.

struct loaded_file {
  ecq::file_bytes bytes;  // mapped where the platform can, so only the tensors read are paged in
  ecq::safetensors_file st;
};

/// @return whether the file at `path` starts with the .ecq magic.
bool is_ecq_file(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return false;
  std::uint8_t magic[8] = {};
  const bool ok = std::fread(magic, 1, 8, f) == 8 && std::memcmp(magic, ecq::ecq_file_magic, 8) == 0;
  std::fclose(f);
  return ok;
}

void load_safetensors(const std::string& path, loaded_file* f) {
  std::string error;
  if (ecq::file_bytes::open(path, &f->bytes, &error) != status::ok) fail(error);
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

ecq::layout_goal parse_layout(const std::string& s) {
  if (s == "storage") return ecq::layout_goal::storage;
  if (s == "kernel") return ecq::layout_goal::kernel;
  usage_error("unknown layout \"" + s + "\" (storage or kernel)");
}

/// A --scheme argument: a scheme, or "lossless" (null spec: every tensor lossless).
struct scheme_choice {
  std::string name;
  bool lossless = false;
  ecq::scheme_spec spec;
  const ecq::scheme_spec* get() const { return lossless ? nullptr : &spec; }
};

scheme_choice parse_scheme_choice(const std::string& name) {
  scheme_choice c;
  c.name = name;
  if (name == "lossless") {
    c.lossless = true;
    return c;
  }
  std::string error;
  if (ecq::parse_scheme(name, &c.spec, &error) != status::ok) usage_error(error);
  c.name = c.spec.name();
  return c;
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
  ecq::tensor_dtype dtype = ecq::tensor_dtype::f32;
  std::vector<std::uint64_t> shape;
  std::uint64_t elements = 0;
  tensor_decision decision = tensor_decision::empty;
  std::string reason, coding;
  std::uint64_t stored_bytes = 0;      // container + 16 bytes of entry, or raw bytes
  bool coded = false;                  // has a container (the statistics below are its)
  double entropy_bits_per_symbol = 0;  // of the coded symbols
  std::uint64_t symbols = 0;
  std::uint32_t alphabet = 0;
  ecq::container_overhead overhead;
  ecq::coding_options options;
  double signal = 0, noise = 0;  // sums of squares, for SQNR
  double entropy_bits = 0;       // of the codes (packed schemes: one code per symbol), else of the symbols
  bool round_trip = true;
  std::uint64_t p1_container_bytes = 0;  // the same codes, one code per symbol (packed schemes only)
  std::uint64_t raw_bytes = 0;           // the raw plane, inside the side sections
};

struct decision_total {
  std::size_t tensors = 0;
  std::uint64_t elements = 0, bytes = 0;
};

struct scheme_report {
  scheme_choice scheme;
  std::vector<tensor_report> tensors;
  // Over the coded tensors (those with a container):
  std::uint64_t elements = 0, symbols = 0, container_bytes = 0, side_bytes = 0, flush_index_bytes = 0,
                header_bytes = 0, table_bytes = 0, word_bytes = 0, state_bytes = 0, p1_container_bytes = 0,
                raw_bytes = 0;
  double entropy_bits = 0, symbol_entropy_bits = 0, signal = 0, noise = 0;
  bool round_trip = true;
  // Over every tensor:
  decision_total decisions[4];  // by tensor_decision
  std::uint64_t all_elements = 0, stored_bytes = 0, file_bytes = 0;

  double per_weight(double bits) const { return elements == 0 ? 0.0 : bits / double(elements); }
  double sqnr_db() const { return noise == 0 ? INFINITY : 10.0 * std::log10(signal / noise); }
  bool packed() const {
    return !scheme.lossless &&
           (scheme.spec.kind == ecq::scheme_kind::affine || scheme.spec.kind == ecq::scheme_kind::codebook) &&
           (scheme.spec.codes.codes_per_symbol != 1 || scheme.spec.codes.raw_bits != 0);
  }
  bool lossless() const { return scheme.lossless || scheme.spec.lossless(); }
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
  double stored_per_weight() const { return all_elements == 0 ? 0.0 : 8.0 * double(stored_bytes) / double(all_elements); }
  double file_per_weight() const { return all_elements == 0 ? 0.0 : 8.0 * double(file_bytes) / double(all_elements); }
};

double entropy_bits_of(const ecq::quantized_tensor& q) {
  const auto h = ecq::histogram(q.symbols.data(), q.symbols.size(), q.alphabet_size);
  return ecq::entropy_bits_per_symbol(h.data(), q.alphabet_size) * double(q.symbols.size());
}

/// The statistics of one packed tensor (run in a worker thread).
void measure(const ecq::safetensors_file& st, const ecq::safetensors_tensor& t, const scheme_choice& scheme,
             ecq::layout_goal goal, ecq::packed_tensor& p, tensor_report* tr) {
  tr->name = t.name;
  tr->dtype = t.dtype;
  tr->shape = t.shape;
  tr->elements = t.elements();
  tr->decision = p.decision;
  tr->reason = p.reason;
  tr->coding = p.coding;
  tr->stored_bytes = p.stored_bytes();
  tr->coded = p.container.size() != 0;
  if (!tr->coded) return;
  const ecq::quantized_tensor& q = p.quantized;
  tr->symbols = q.symbols.size();
  tr->alphabet = q.alphabet_size;
  tr->raw_bytes = q.raw_plane.size() * 4;
  tr->overhead = p.container.overhead();
  tr->options.lanes = p.container.geometry().lanes;
  tr->options.tile_rows = p.container.geometry().tile_rows;
  tr->options.chunk_symbols = p.container.geometry().chunk_symbols;
  tr->options.scale_bits = p.container.geometry().scale_bits;
  // Decoding the container (checked) must give the quantiser's output back, bit for bit.
  // This runs in a worker thread already: the decode stays on it.
  std::vector<float> expect, got;
  ecq::cpu_options one;
  one.threads = 1;
  tr->round_trip = ecq::dequantize(q, &expect) == status::ok;
  got.resize(expect.size());
  tr->round_trip = tr->round_trip && ecq::decode_to_float(p.container, got.data(), got.size(), one) == status::ok &&
                   std::memcmp(got.data(), expect.data(), got.size() * sizeof(float)) == 0;
  std::vector<float> w;
  if (ecq::to_float(t, st.data(t), &w) == status::ok && w.size() == expect.size())
    for (std::size_t i = 0; i < w.size(); ++i) {
      tr->signal += double(w[i]) * double(w[i]);
      if (p.decision == tensor_decision::scheme) {
        const double d = double(w[i]) - double(expect[i]);
        tr->noise += d * d;
      }
    }
  tr->p1_container_bytes = p.container.size();  // packing applies to the scheme's tensors only
  const double symbol_entropy = entropy_bits_of(q);
  tr->entropy_bits_per_symbol = tr->symbols == 0 ? 0 : symbol_entropy / double(tr->symbols);
  tr->entropy_bits = symbol_entropy;
  if (p.decision == tensor_decision::scheme && !scheme.lossless &&
      (scheme.spec.kind == ecq::scheme_kind::affine || scheme.spec.kind == ecq::scheme_kind::codebook) &&
      (scheme.spec.codes.codes_per_symbol != 1 || scheme.spec.codes.raw_bits != 0)) {
    // The reference of a packed scheme: the same codes, one per symbol.
    ecq::scheme_spec p1 = scheme.spec;
    p1.codes.codes_per_symbol = 1;
    p1.codes.raw_bits = 0;
    ecq::quantized_tensor q1;
    ecq::encoded_tensor e1;
    if (ecq::quantize(p1, p.values.data(), q.rows, q.cols, &q1) == status::ok &&
        ecq::encode_quantized(q1, ecq::choose_coding_options(q1, goal), &e1) == status::ok) {
      tr->p1_container_bytes = e1.size();
      tr->entropy_bits = entropy_bits_of(q1);
    } else {
      tr->round_trip = false;
    }
  }
}

scheme_report inspect_scheme(const loaded_file& f, const scheme_choice& scheme, const ecq::tensor_policy& policy,
                             ecq::layout_goal goal, const common_options& common, bool progress) {
  scheme_report rep;
  rep.scheme = scheme;
  const auto& tensors = f.st.tensors();
  rep.tensors.resize(tensors.size());
  std::vector<ecq::packed_tensor> packed(tensors.size());
  std::atomic<std::size_t> done{0};
  ecq::pack_options o;
  o.goal = goal;
  o.keep_quantized = true;
  parallel_for(tensors.size(), common.thread_count(), [&](std::size_t i) {
    const auto& t = tensors[i];
    ecq::pack_tensor(policy, scheme.get(), t.name, t.dtype, t.shape, f.st.data(t), o, &packed[i]);
    measure(f.st, t, scheme, goal, packed[i], &rep.tensors[i]);
    packed[i].quantized = ecq::quantized_tensor{};  // only the container is kept, for the file size
    packed[i].values = {};
    if (progress) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      std::fprintf(stderr, "[%s %zu/%zu] %s (%llu weights)\n", scheme.name.c_str(), ++done, tensors.size(),
                   t.name.c_str(), static_cast<unsigned long long>(t.elements()));
    }
  });
  ecq::ecq_file_writer wrapper;  // to count the .ecq file's bytes
  for (const auto& kv : f.st.metadata()) wrapper.add_metadata(kv.first, kv.second);
  std::uint64_t payload = 0;     // containers and raw bytes
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    const tensor_report& tr = rep.tensors[i];
    decision_total& d = rep.decisions[int(tr.decision)];
    ++d.tensors;
    d.elements += tr.elements;
    d.bytes += tr.stored_bytes;
    rep.all_elements += tr.elements;
    rep.stored_bytes += tr.stored_bytes;
    payload += tr.coded ? tr.overhead.container_bytes : tr.stored_bytes;  // raw: the bytes alone
    ecq::add_packed(&wrapper, tensors[i].name, tensors[i].dtype, tensors[i].shape, std::move(packed[i]));
    packed[i] = ecq::packed_tensor{};
    if (!tr.coded) continue;
    rep.symbol_entropy_bits += tr.entropy_bits_per_symbol * double(tr.symbols);
    rep.elements += tr.elements;
    rep.symbols += tr.symbols;
    rep.entropy_bits += tr.entropy_bits;
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
  }
  rep.file_bytes = wrapper.wrapper_bytes() + payload;
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

const char* const decision_order[] = {"scheme", "lossless", "raw", "empty"};

void print_json(const std::string& path, const char* layout, const std::vector<scheme_report>& reports) {
  std::printf("{\n  \"file\": %s,\n  \"layout\": \"%s\",\n  \"schemes\": [\n", json_string(path).c_str(), layout);
  for (std::size_t i = 0; i < reports.size(); ++i) {
    const scheme_report& r = reports[i];
    const double coded = r.coded_per_weight();
    std::printf("    {\n      \"scheme\": %s,\n      \"lossless\": %s,\n", json_string(r.scheme.name).c_str(),
                r.lossless() ? "true" : "false");
    std::printf("      \"decisions\": {");
    for (int d = 0; d < 4; ++d)
      std::printf("%s\"%s\": {\"tensors\": %zu, \"elements\": %llu, \"bytes\": %llu}", d ? ", " : "",
                  decision_order[d], r.decisions[d].tensors,
                  static_cast<unsigned long long>(r.decisions[d].elements),
                  static_cast<unsigned long long>(r.decisions[d].bytes));
    std::printf("},\n");
    std::printf("      \"total\": {\"elements\": %llu, \"coded_elements\": %llu, \"symbols\": %llu, \"tensors\": %zu,\n",
                static_cast<unsigned long long>(r.all_elements), static_cast<unsigned long long>(r.elements),
                static_cast<unsigned long long>(r.symbols), r.tensors.size());
    std::printf("        \"stored_bits_per_weight\": %s, \"ecq_file_bits_per_weight\": %s, \"ecq_file_bytes\": %llu,\n",
                json_number(r.stored_per_weight()).c_str(), json_number(r.file_per_weight()).c_str(),
                static_cast<unsigned long long>(r.file_bytes));
    std::printf("        \"entropy_bits_per_weight\": %s, \"entropy_of\": \"%s\", \"coded_bits_per_weight\": %s, "
                "\"side_bits_per_weight\": %s, \"raw_bits_per_weight\": %s,\n",
                json_number(r.entropy_per_weight()).c_str(),
                !r.scheme.lossless && (r.scheme.spec.kind == ecq::scheme_kind::affine ||
                                       r.scheme.spec.kind == ecq::scheme_kind::codebook)
                    ? "codes"
                    : "symbols",
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
    std::printf("        \"sqnr_db\": %s, \"round_trip_bit_exact\": %s", json_number(r.sqnr_db()).c_str(),
                r.round_trip ? "true" : "false");
    if (r.packed())
      std::printf(",\n        \"one_code_per_symbol_bits_per_weight\": %s, \"packing_cost_bits_per_weight\": %s",
                  json_number(r.per_weight(8.0 * double(r.p1_container_bytes))).c_str(),
                  json_number(r.per_weight(8.0 * (double(r.container_bytes) - double(r.p1_container_bytes)))).c_str());
    std::printf("},\n      \"tensors\": [\n");
    for (std::size_t k = 0; k < r.tensors.size(); ++k) {
      const tensor_report& t = r.tensors[k];
      std::printf("        {\"name\": %s, \"dtype\": \"%s\", \"shape\": %s, \"elements\": %llu, \"decision\": \"%s\", "
                  "\"coding\": %s, \"reason\": %s, \"stored_bytes\": %llu",
                  json_string(t.name).c_str(), ecq::dtype_name(t.dtype), shape_string(t.shape).c_str(),
                  static_cast<unsigned long long>(t.elements), ecq::decision_name(t.decision),
                  json_string(t.coding).c_str(), json_string(t.reason).c_str(),
                  static_cast<unsigned long long>(t.stored_bytes));
      if (t.coded) {
        const double n = double(t.elements);
        std::printf(", \"alphabet\": %u, \"entropy_bits_per_symbol\": %s, \"coded_bits_per_weight\": %s, "
                    "\"side_bits_per_weight\": %s, \"raw_bits_per_weight\": %s, \"flush_index_bits_per_weight\": %s, "
                    "\"sqnr_db\": %s, "
                    "\"lanes\": %u, \"tile_rows\": %u, \"chunk_symbols\": %llu, \"scale_bits\": %d, \"blocks\": %llu, "
                    "\"round_trip_bit_exact\": %s",
                    t.alphabet, json_number(t.entropy_bits_per_symbol).c_str(),
                    json_number(8.0 * double(t.overhead.container_bytes) / n).c_str(),
                    json_number(8.0 * double(t.overhead.section_bytes - t.raw_bytes) / n).c_str(),
                    json_number(8.0 * double(t.raw_bytes) / n).c_str(),
                    json_number(8.0 * double(t.overhead.flush_index_bytes()) / n).c_str(),
                    json_number(t.noise == 0 ? INFINITY : 10 * std::log10(t.signal / t.noise)).c_str(), t.options.lanes,
                    t.options.tile_rows, static_cast<unsigned long long>(t.options.chunk_symbols), t.options.scale_bits,
                    static_cast<unsigned long long>(t.overhead.blocks), t.round_trip ? "true" : "false");
      }
      std::printf("}%s\n", k + 1 < r.tensors.size() ? "," : "");
    }
    std::printf("      ]\n    }%s\n", i + 1 < reports.size() ? "," : "");
  }
  std::printf("  ]\n}\n");
}

std::string short_name(const std::string& name, std::size_t width) {
  if (name.size() <= width) return name;
  return "..." + name.substr(name.size() - (width - 3));
}

void print_decision_totals(const decision_total (&d)[4], std::uint64_t all_elements, std::uint64_t file_bytes,
                           const char* indent) {
  for (int k = 0; k < 4; ++k) {
    if (d[k].tensors == 0) continue;
    std::printf("%s%-9s %5zu tensors %12llu weights %12llu bytes", indent, decision_order[k], d[k].tensors,
                static_cast<unsigned long long>(d[k].elements), static_cast<unsigned long long>(d[k].bytes));
    if (d[k].elements != 0) std::printf("  %8.4f bits/weight", 8.0 * double(d[k].bytes) / double(d[k].elements));
    std::printf("\n");
  }
  if (all_elements != 0)
    std::printf("%s.ecq file: %llu bytes, %.4f bits/weight (names, shapes, directory included)\n", indent,
                static_cast<unsigned long long>(file_bytes), 8.0 * double(file_bytes) / double(all_elements));
}

void print_text(const std::string& path, const char* layout, const std::vector<scheme_report>& reports) {
  std::printf("%s  (layout: %s; bits per weight count every container byte)\n", path.c_str(), layout);
  for (const scheme_report& r : reports) {
    std::printf("\nscheme %s%s\n", r.scheme.name.c_str(), r.lossless() ? " (lossless)" : "");
    std::printf("  %-44s %10s %-8s %-12s %7s %8s %8s %7s %7s %7s %8s  %s\n", "tensor", "elements", "decision",
                "coding", "alpha", "H/sym", "bits/w", "side", "raw", "flush", "SQNR dB", "reason");
    for (const tensor_report& t : r.tensors) {
      std::printf("  %-44s %10llu %-8s %-12s", short_name(t.name, 44).c_str(),
                  static_cast<unsigned long long>(t.elements), ecq::decision_name(t.decision), t.coding.c_str());
      if (t.coded) {
        const double n = double(t.elements);
        std::printf(" %7u %8.4f %8.4f %7.4f %7.4f %7.4f %8.2f", t.alphabet, t.entropy_bits_per_symbol,
                    8.0 * double(t.overhead.container_bytes) / n,
                    8.0 * double(t.overhead.section_bytes - t.raw_bytes) / n, 8.0 * double(t.raw_bytes) / n,
                    8.0 * double(t.overhead.flush_index_bytes()) / n,
                    t.noise == 0 ? INFINITY : 10 * std::log10(t.signal / t.noise));
      } else if (t.elements != 0) {
        std::printf(" %7s %8s %8.4f %7s %7s %7s %8s", "", "", 8.0 * double(t.stored_bytes) / double(t.elements), "",
                    "", "", "exact");
      } else {
        std::printf(" %7s %8s %8s %7s %7s %7s %8s", "", "", "", "", "", "", "");
      }
      std::printf("  %s%s\n", t.reason.c_str(), t.round_trip ? "" : "  ROUND TRIP FAILED");
    }
    std::printf("  by decision:\n");
    print_decision_totals(r.decisions, r.all_elements, r.file_bytes, "    ");
  }
  std::printf("\ntotals of the coded tensors, side by side (bits per weight):\n");
  std::printf("  %-26s %10s %9s %9s %8s %8s %8s %9s %9s %8s %6s\n", "scheme", "elements", "entropy", "coded", "side",
              "raw", "flush", "ratio*", ".ecq file", "SQNR dB", "exact");
  for (const scheme_report& r : reports) {
    std::printf("  %-26s %10llu %9.4f %9.4f %8.4f %8.4f %8.4f %9.5f %9.4f %8.3f %6s\n", r.scheme.name.c_str(),
                static_cast<unsigned long long>(r.elements), r.entropy_per_weight(), r.coded_per_weight(),
                r.side_per_weight(), r.raw_per_weight(), r.per_weight(8.0 * double(r.flush_index_bytes)),
                r.coded_per_weight() / r.ideal_per_weight(), r.file_per_weight(), r.sqnr_db(),
                r.round_trip ? "yes" : "NO");
    if (r.packed())
      std::printf("  %-26s packing cost vs one code per symbol: %+.4f bits/weight (%.4f with one code per symbol)\n",
                  "", r.per_weight(8.0 * (double(r.container_bytes) - double(r.p1_container_bytes))),
                  r.per_weight(8.0 * double(r.p1_container_bytes)));
  }
  std::printf("  decision: scheme (the one named), lossless (the tensor's own dtype, bit for bit), raw (its bytes,\n"
              "  when no larger), empty; coded columns cover the tensors with a container (scheme and lossless);\n"
              "  entropy: of the codes for affine/codebook (whatever the packing), of the coded symbols otherwise;\n"
              "  side: scales, biases, steps, tables; raw: uncoded bits (sign+mantissa of float schemes, split\n"
              "  symbols); * ratio = coded / ideal, ideal = entropy + side (+ raw when the entropy does not cover\n"
              "  it); .ecq file: every tensor, raw ones included, with names, shapes and the file directory, per\n"
              "  weight of the whole file; SQNR over the coded tensors (lossless ones add signal, no noise);\n"
              "  exact: each container decodes to the quantiser's output bit for bit.\n");
}

/// The scheme name a container's id and parameters give (uniform: its
/// granularity; its SQNR target is not stored).
std::string container_scheme_name(const ecq::encoded_tensor& e) {
  const std::uint32_t id = e.geometry().scheme_id;
  ecq::scheme_spec s;
  switch (ecq::scheme_kind(id)) {
    case ecq::scheme_kind::bf16: return "bf16";
    case ecq::scheme_kind::f16: return "f16";
    case ecq::scheme_kind::f32: return "f32";
    case ecq::scheme_kind::affine:
    case ecq::scheme_kind::codebook:
      if (ecq::affine_params::parse(e.scheme_params(), e.scheme_params_size(), &s.codes) != status::ok) break;
      s.kind = ecq::scheme_kind(id);
      return s.name();
    case ecq::scheme_kind::uniform: {
      ecq::uniform_params u;
      if (ecq::uniform_params::parse(e.scheme_params(), e.scheme_params_size(), &u) != status::ok) break;
      if (u.granularity == ecq::step_granularity::row) return "uniform-row";
      if (u.granularity == ecq::step_granularity::group) return "uniform-g" + std::to_string(u.group_size);
      return "uniform";
    }
  }
  if (id == ecq::gpu_layout::bf16_pairs_scheme) return "gpu-bf16";
  if (id == ecq::gpu_layout::affine4_scheme && ecq::affine_params::parse(e.scheme_params(), e.scheme_params_size(), &s.codes) == status::ok)
    return "gpu-affine4-g" + std::to_string(s.codes.group_size) + "-bf16";
  return "scheme " + std::to_string(id);
}

void open_ecq(const std::string& path, ecq::file_bytes* bytes, ecq::ecq_file_reader* r) {
  std::string error;
  if (ecq::file_bytes::open(path, bytes, &error) != status::ok) fail(error);
  const status s = r->parse(bytes->data(), bytes->size(), &error);
  if (s != status::ok) fail(path + ": not a valid .ecq file (" + ecq::status_string(s) + "): " + error);
}

/// `ecq inspect FILE.ecq`: what the file holds, without decoding.
int inspect_ecq(const std::string& path, bool json, const common_options& common) {
  ecq::file_bytes bytes;
  ecq::ecq_file_reader r;
  open_ecq(path, &bytes, &r);
  struct row {
    std::string storage, scheme;
    status open = status::ok;
    ecq::tensor_geometry g{};
    std::uint64_t blocks = 0;
  };
  const auto& ts = r.tensors();
  std::vector<row> rows(ts.size());
  parallel_for(ts.size(), common.thread_count(), [&](std::size_t i) {
    row& w = rows[i];
    if (ts[i].storage == ecq::ecq_storage::raw) {
      w.storage = w.scheme = "raw";
      return;
    }
    if (ts[i].elements() == 0) {
      w.storage = w.scheme = "empty";
      return;
    }
    w.storage = "container";
    ecq::encoded_tensor e;
    w.open = r.open_tensor_borrowed(i, &e);
    if (w.open == status::invalid_argument) w.open = r.open_tensor(i, &e);  // not 16-byte aligned in memory
    if (w.open != status::ok) {
      w.scheme = "?";
      return;
    }
    w.scheme = container_scheme_name(e);
    w.g = e.geometry();
    w.blocks = e.overhead().blocks;
  });
  std::uint64_t elements = 0, stored = 0;
  std::size_t bad = 0;
  std::vector<std::pair<std::string, decision_total>> by_scheme;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    elements += ts[i].elements();
    stored += ts[i].size;
    bad += rows[i].open != status::ok;
    auto it = std::find_if(by_scheme.begin(), by_scheme.end(), [&](const auto& p) { return p.first == rows[i].scheme; });
    if (it == by_scheme.end()) it = by_scheme.insert(by_scheme.end(), {rows[i].scheme, decision_total{}});
    ++it->second.tensors;
    it->second.elements += ts[i].elements();
    it->second.bytes += ts[i].size;
  }
  const unsigned version = bytes.size() >= 12 ? unsigned(bytes.data()[8]) : 0;
  if (json) {
    std::printf("{\n  \"file\": %s,\n  \"format\": \"ecq\",\n  \"version\": %u,\n  \"bytes\": %zu,\n  \"elements\": %llu,\n"
                "  \"metadata\": {",
                json_string(path).c_str(), version, bytes.size(), static_cast<unsigned long long>(elements));
    for (std::size_t k = 0; k < r.metadata().size(); ++k)
      std::printf("%s%s: %s", k ? ", " : "", json_string(r.metadata()[k].first).c_str(),
                  json_string(r.metadata()[k].second).c_str());
    std::printf("},\n  \"tensors\": [\n");
    for (std::size_t i = 0; i < ts.size(); ++i) {
      const row& w = rows[i];
      std::printf("    {\"name\": %s, \"dtype\": \"%s\", \"shape\": %s, \"elements\": %llu, \"storage\": \"%s\", "
                  "\"scheme\": %s, \"bytes\": %llu",
                  json_string(ts[i].name).c_str(), ecq::dtype_name(ts[i].source_dtype), shape_string(ts[i].shape).c_str(),
                  static_cast<unsigned long long>(ts[i].elements()), w.storage.c_str(), json_string(w.scheme).c_str(),
                  static_cast<unsigned long long>(ts[i].size));
      if (w.open != status::ok) std::printf(", \"error\": \"%s\"", ecq::status_string(w.open));
      if (w.open == status::ok && w.storage == "container")
        std::printf(", \"bits_per_weight\": %s, \"lanes\": %u, \"tile_rows\": %u, \"chunk_symbols\": %llu, "
                    "\"scale_bits\": %u, \"blocks\": %llu",
                    json_number(8.0 * double(ts[i].size) / double(ts[i].elements())).c_str(), unsigned(w.g.lanes),
                    w.g.tile_rows, static_cast<unsigned long long>(w.g.chunk_symbols), unsigned(w.g.scale_bits),
                    static_cast<unsigned long long>(w.blocks));
      std::printf("}%s\n", i + 1 < ts.size() ? "," : "");
    }
    std::printf("  ]\n}\n");
    return bad == 0 ? 0 : 1;
  }
  std::printf("%s: .ecq version %u, %zu tensors, %llu weights, %zu bytes (%.4f bits/weight)\n", path.c_str(), version,
              ts.size(), static_cast<unsigned long long>(elements), bytes.size(),
              elements ? 8.0 * double(bytes.size()) / double(elements) : 0.0);
  std::printf("  %-44s %-7s %-16s %-16s %12s %8s %5s %6s %7s\n", "tensor", "dtype", "shape", "scheme", "bytes", "bits/w",
              "lanes", "tile", "blocks");
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const row& w = rows[i];
    std::printf("  %-44s %-7s %-16s %-16s %12llu", short_name(ts[i].name, 44).c_str(),
                ecq::dtype_name(ts[i].source_dtype), shape_string(ts[i].shape).c_str(), w.scheme.c_str(),
                static_cast<unsigned long long>(ts[i].size));
    if (ts[i].elements() != 0) std::printf(" %8.4f", 8.0 * double(ts[i].size) / double(ts[i].elements()));
    if (w.open != status::ok) std::printf("  INVALID: %s", ecq::status_string(w.open));
    else if (w.storage == "container")
      std::printf(" %5u %6u %7llu", unsigned(w.g.lanes), w.g.tile_rows, static_cast<unsigned long long>(w.blocks));
    std::printf("\n");
  }
  std::printf("  by scheme:\n");
  for (const auto& p : by_scheme) {
    std::printf("    %-16s %5zu tensors %12llu weights %12llu bytes", p.first.c_str(), p.second.tensors,
                static_cast<unsigned long long>(p.second.elements), static_cast<unsigned long long>(p.second.bytes));
    if (p.second.elements != 0)
      std::printf("  %8.4f bits/weight", 8.0 * double(p.second.bytes) / double(p.second.elements));
    std::printf("\n");
  }
  std::printf("  wrapper (header, names, shapes, directory, alignment): %llu bytes\n",
              static_cast<unsigned long long>(bytes.size() - stored));
  if (bad != 0) std::printf("  %zu tensors do not open\n", bad);
  return bad == 0 ? 0 : 1;
}

int cmd_inspect(const std::vector<std::string>& args) {
  std::string path;
  std::vector<std::string> schemes;
  bool json = false;
  std::string layout = "storage";
  common_options common;
  policy_options policy;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (common.parse(args, &i) || policy.parse(args, &i)) continue;
    if (args[i] == "--scheme" && i + 1 < args.size()) schemes.push_back(args[++i]);
    else if (args[i] == "--layout" && i + 1 < args.size()) layout = args[++i];
    else if (args[i] == "--json") json = true;
    else if (path.empty() && args[i].rfind("--", 0) != 0) path = args[i];
    else usage_error("inspect: unexpected argument \"" + args[i] + "\"");
  }
  if (path.empty()) usage_error("inspect: missing FILE.safetensors or FILE.ecq");
  if (is_ecq_file(path)) {
    if (!schemes.empty()) usage_error("inspect: --scheme applies to safetensors files; an .ecq file is already coded");
    return inspect_ecq(path, json, common);
  }
  const ecq::layout_goal goal = parse_layout(layout);
  const ecq::tensor_policy p = policy.build();
  loaded_file f;
  load_safetensors(path, &f);
  std::uint64_t total = 0;
  for (const auto& t : f.st.tensors()) total += t.elements();
  const bool progress = !common.quiet && total > progress_threshold;

  std::vector<scheme_report> reports;
  auto run = [&](const std::string& name) {
    reports.push_back(inspect_scheme(f, parse_scheme_choice(name), p, goal, common, progress));
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

struct pack_request {
  std::string in, out;
  scheme_choice scheme;
  ecq::tensor_policy policy;
  ecq::layout_goal goal = ecq::layout_goal::storage;
  bool gpu = false;  // --layout gpu (goal: storage, for the tensors the GPU layout cannot hold)
  int mlx_bits = 0;
  common_options common;
};

// --layout gpu: one tensor in the GPU layout (ecq/gpu_container.hpp).
// @return status::ok; bad_shape or unsupported_parameters when the layout
//         cannot hold the tensor (cols not a multiple of 256, more than 64
//         exponents, a symbol too frequent for the kernels' tables).
status encode_gpu_tensor(const ecq::scheme_spec& spec, const ecq::safetensors_file& st, const ecq::safetensors_tensor& t,
                         ecq::encoded_tensor* e) {
  const std::uint64_t rows = ecq::shape_rows(t.shape), cols = ecq::shape_cols(t.shape);
  if (cols % ecq::gpu_layout::chunk_weights != 0) return status::bad_shape;
  std::vector<float> w;
  ecq::to_float(t, st.data(t), &w);
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


struct pack_result {
  std::string report;  // each tensor's decision and why, then the totals by decision
  std::vector<std::pair<std::string, tensor_decision>> decisions;  // in file order
  std::size_t tensors = 0, mlx = 0;
  std::uint64_t elements = 0, file_bytes = 0;
};

/// Packs a safetensors file into an .ecq file by the policy; fails (exits)
/// only on files it cannot read or write and on MLX triplets it cannot
/// take, never on a tensor the scheme cannot represent.
pack_result run_pack(const pack_request& q) {
  loaded_file f;
  load_safetensors(q.in, &f);
  // MLX triplets: their weights are packed as one tensor, their scales and biases go inside it.
  std::vector<mlx_triplet> triplets;
  std::vector<const ecq::safetensors_tensor*> inside;
  for (const auto& t : f.st.tensors()) {
    mlx_triplet m;
    if (!find_mlx_triplet(f.st, t, &m)) continue;
    if (q.mlx_bits == 0)
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
  const auto& ts = f.st.tensors();
  std::uint64_t total = 0;
  for (const auto& t : ts) total += t.elements();
  const bool progress = !q.common.quiet && total > progress_threshold;
  std::vector<ecq::packed_tensor> packed(ts.size());
  std::vector<std::vector<std::uint64_t>> shapes(ts.size());
  std::vector<std::string> errors(ts.size());
  std::atomic<std::size_t> done{0};
  ecq::pack_options o;
  o.goal = q.goal;
  parallel_for(ts.size(), q.common.thread_count(), [&](std::size_t i) {
    const auto& t = ts[i];
    if (is_inside(t)) return;
    shapes[i] = t.shape;
    if (const mlx_triplet* m = triplet_of(t)) {
      ecq::quantized_tensor qt;
      std::string why;
      ecq::packed_tensor& p = packed[i];
      if (!mlx_quantized(f.st, *m, q.mlx_bits, &qt, &shapes[i], &why)) {
        errors[i] = "MLX weight \"" + t.name + "\": " + why;
        return;
      }
      const status s = ecq::encode_quantized(qt, ecq::choose_coding_options(qt, q.goal), &p.container);
      if (s != status::ok) {
        errors[i] = "MLX weight \"" + t.name + "\": encoding failed (" + ecq::status_string(s) + ")";
        return;
      }
      p.decision = tensor_decision::lossless;
      p.coding = "affine" + std::to_string(q.mlx_bits) + "-g" + std::to_string(qt.cols / (m->scales->shape.back()));
      p.reason = "MLX quantized weight with its scales and biases, codes kept exactly";
    } else {
      ecq::packed_tensor& p = packed[i];
      ecq::pack_tensor(q.policy, q.scheme.get(), t.name, t.dtype, t.shape, f.st.data(t), o, &p);
      if (q.gpu && p.decision == tensor_decision::scheme) {
        ecq::encoded_tensor e;
        const status s = encode_gpu_tensor(q.scheme.spec, f.st, t, &e);
        if (s == status::ok) {
          p.container = std::move(e);
          p.coding += " (gpu)";
        } else if (s == status::bad_shape || s == status::unsupported_parameters) {
          p.reason += std::string("; storage layout: no GPU layout (") + ecq::status_string(s) + ")";
        } else {
          errors[i] = "tensor \"" + t.name + "\": cannot encode in the GPU layout (" + ecq::status_string(s) + ")";
          return;
        }
      }
    }
    if (progress) {
      std::lock_guard<std::mutex> lock(progress_mutex);
      std::fprintf(stderr, "[%zu/%zu] %s (%llu %s)\n", ++done, ts.size(), t.name.c_str(),
                   static_cast<unsigned long long>(t.elements()), triplet_of(t) ? "MLX words" : "weights");
    }
  });
  for (const auto& e : errors)
    if (!e.empty()) fail(e);

  pack_result res;
  ecq::ecq_file_writer out;
  decision_total totals[4];
  char line[160];
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (is_inside(ts[i])) continue;
    ecq::packed_tensor& p = packed[i];
    std::uint64_t n = 1;
    for (std::uint64_t d : shapes[i]) n *= d;
    const std::uint64_t bytes = p.stored_bytes();
    decision_total& d = totals[int(p.decision)];
    ++d.tensors;
    d.elements += n;
    d.bytes += bytes;
    res.elements += n;
    ++res.tensors;
    if (n != 0) std::snprintf(line, sizeof line, "  %-8s %-16s %9.4f %12llu  ", ecq::decision_name(p.decision),
                              p.coding.c_str(), 8.0 * double(bytes) / double(n), static_cast<unsigned long long>(bytes));
    else std::snprintf(line, sizeof line, "  %-8s %-16s %9s %12s  ", ecq::decision_name(p.decision), p.coding.c_str(), "", "");
    res.report += line + ts[i].name + "  (" + p.reason + ")\n";
    res.decisions.emplace_back(ts[i].name, p.decision);
    const std::string why = p.reason;
    const status s = ecq::add_packed(&out, ts[i].name, ts[i].dtype, shapes[i], std::move(p));
    if (s != status::ok) fail("tensor \"" + ts[i].name + "\": cannot be stored (" + ecq::status_string(s) + "; " + why + ")");
    p = ecq::packed_tensor{};
  }
  res.mlx = triplets.size();
  for (const auto& kv : f.st.metadata()) out.add_metadata(kv.first, kv.second);
  const std::vector<std::uint8_t> file = out.serialize();
  res.file_bytes = file.size();
  std::string error;
  if (ecq::write_file_bytes(q.out, file, &error) != status::ok) fail(error);
  res.report += "totals by decision (bytes: containers with their 16-byte entries, or raw bytes):\n";
  for (int k = 0; k < 4; ++k) {
    if (totals[k].tensors == 0) continue;
    std::snprintf(line, sizeof line, "  %-9s %5zu tensors %12llu weights %12llu bytes", decision_order[k],
                  totals[k].tensors, static_cast<unsigned long long>(totals[k].elements),
                  static_cast<unsigned long long>(totals[k].bytes));
    res.report += line;
    if (totals[k].elements != 0) {
      std::snprintf(line, sizeof line, "  %8.4f bits/weight", 8.0 * double(totals[k].bytes) / double(totals[k].elements));
      res.report += line;
    }
    res.report += "\n";
  }
  return res;
}

int cmd_pack(const std::vector<std::string>& args) {
  pack_request q;
  std::vector<std::string> paths;
  std::string scheme, layout = "storage";
  policy_options policy;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (q.common.parse(args, &i) || policy.parse(args, &i)) continue;
    if (args[i] == "--scheme" && i + 1 < args.size()) scheme = args[++i];
    else if (args[i] == "--layout" && i + 1 < args.size()) layout = args[++i];
    else if (args[i] == "--mlx-bits" && i + 1 < args.size()) {
      const std::string b = args[++i];
      if (b != "2" && b != "4" && b != "8") usage_error("pack: --mlx-bits must be 2, 4 or 8 (MLX's packed widths)");
      q.mlx_bits = std::stoi(b);
    }
    else if (args[i].rfind("--", 0) != 0) paths.push_back(args[i]);
    else usage_error("pack: unexpected argument \"" + args[i] + "\"");
  }
  if (paths.size() != 2) usage_error("pack: expected IN.safetensors OUT.ecq");
  if (scheme.empty()) usage_error("pack: --scheme is required (a scheme, or lossless)");
  q.in = paths[0];
  q.out = paths[1];
  q.scheme = parse_scheme_choice(scheme);
  q.policy = policy.build();
  q.gpu = layout == "gpu";
  const ecq::scheme_spec& spec = q.scheme.spec;
  if (q.gpu && (q.scheme.lossless ||
                !(spec.kind == ecq::scheme_kind::bf16 ||
                  (spec.kind == ecq::scheme_kind::affine && spec.codes.bits == 4 &&
                   spec.codes.side_format == ecq::float16_format::bfloat16 &&
                   (spec.codes.group_size == 64 || spec.codes.group_size == 128 || spec.codes.group_size == 256)))))
    usage_error("pack: --layout gpu takes --scheme bf16 or affine4-g64|g128|g256-bf16 (the schemes the CUDA kernels run)");
  if (q.gpu && q.mlx_bits != 0) usage_error("pack: --layout gpu does not take MLX quantized weights (--mlx-bits)");
  q.goal = q.gpu ? ecq::layout_goal::storage : parse_layout(layout);
  const auto start = std::chrono::steady_clock::now();
  const pack_result r = run_pack(q);
  if (!q.common.quiet) {
    std::fputs(r.report.c_str(), stdout);
    std::printf("%s: %zu tensors (%zu MLX), %llu weights, %s, %llu bytes, %.4f bits/weight with the wrapper (%.2f s, "
                "%u threads)\n",
                q.out.c_str(), r.tensors, r.mlx, static_cast<unsigned long long>(r.elements), q.scheme.name.c_str(),
                static_cast<unsigned long long>(r.file_bytes),
                r.elements ? 8.0 * double(r.file_bytes) / double(r.elements) : 0.0, seconds_since(start),
                q.common.thread_count());
  }
  return 0;
}

// --------------------------------------------------------------------------
// unpack's output written with O_DIRECT.
//
// Buffered writes cost this 2-core VM as much CPU as decoding (the kernel copies 512 MiB into the page cache:
// 0.17-0.19 s of system time, the same as `dd`, and over 1 s when earlier dirty pages are being written back),
// so they compete with the decoder for the cores. O_DIRECT hands the user buffer to the device (0.06-0.08 s of
// system time for 512 MiB), and the decoder keeps both cores (docs/performance.md, "The CPU product path").
// O_DIRECT needs the file offset, the length and the buffer address aligned to the device's logical block:
// the file is written as a stream of direct_align-aligned pieces (each tensor's bytes after the < 4 KiB that
// the one before left over, the header before the first), and its last < 4 KiB buffered.

/// The alignment of O_DIRECT's offsets, lengths and addresses: logical blocks are 512 B or 4 KiB.
constexpr std::size_t direct_align = 4096;

enum class unpack_io { automatic, direct, buffered };

struct direct_result {
  status st = status::ok;
  bool refused = false;   // the file system refused O_DIRECT at open: nothing was written, use the buffered path
  bool buffered = false;  // it refused a direct write (EINVAL): the rest was written buffered
  std::string error;      // when st is not ok
};

/// Fills `size` bytes at `out` with tensor i's (unpack_tensor_to).
using produce_into_fn = std::function<status(std::size_t i, std::uint8_t* out, std::size_t size)>;

/// Writes `head` then the bytes produce(i, ...) gives for i in [0, sizes.size()) (sizes[i] each) to `path`,
/// replacing it, with O_DIRECT: produce runs on the calling thread (decoding on every core) straight into one
/// of two aligned buffers, while a second thread writes the other (the tensor before).
direct_result write_unpacked_direct(const std::string& path, const std::vector<std::uint8_t>& head,
                                    const std::vector<std::uint64_t>& sizes, const std::vector<std::string>& names,
                                    const produce_into_fn& produce) {
  direct_result res;
#if ECQ_TOOL_HAVE_O_DIRECT
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0666);
  if (fd < 0) {
    const int e = errno;
    res.refused = e == EINVAL;
    res.st = status::invalid_argument;
    res.error = "cannot create " + path + " with O_DIRECT: " + std::strerror(e) +
                (res.refused ? " (the file system refuses O_DIRECT: --write buffered)" : "");
    return res;
  }
  std::uint64_t largest = 0;
  for (std::uint64_t z : sizes) largest = std::max(largest, z);
  // Room for a tensor after what the one before left (< direct_align, or the header before the first).
  const std::uint64_t lead = std::max<std::uint64_t>(head.size(), direct_align);
  // The buffers in 2 MiB pages where the kernel offers them (transparent huge pages on request): the first
  // tensor is decoded into fresh memory before anything can be written, and 4 KiB pages cost 8192 faults
  // per 32 MiB there.
  constexpr std::size_t huge_page = std::size_t(1) << 21;
  const std::size_t capacity = std::size_t((largest + lead + huge_page - 1) / huge_page * huge_page);
  using block = std::unique_ptr<std::uint8_t, decltype(&std::free)>;
  block slots[2] = {block(static_cast<std::uint8_t*>(std::aligned_alloc(huge_page, capacity)), &std::free),
                    block(static_cast<std::uint8_t*>(std::aligned_alloc(huge_page, capacity)), &std::free)};
  if (!slots[0] || !slots[1]) {
    ::close(fd);
    res.st = status::invalid_argument;
    res.error = "cannot allocate 2 x " + std::to_string(capacity) + " bytes of output buffers";
    return res;
  }
#ifdef MADV_HUGEPAGE
  for (const block& b : slots) ::madvise(b.get(), capacity, MADV_HUGEPAGE);  // a hint: 4 KiB pages where refused
#endif
  // The writer's state (direct, res.buffered: touched by the caller only after joining it):
  std::atomic<int> write_errno{0};  // the first failed write's errno
  bool direct = true;               // the descriptor has O_DIRECT
  auto buffered_from_now = [fd, &direct] {
    const int flags = ::fcntl(fd, F_GETFL);
    direct = !(flags >= 0 && ::fcntl(fd, F_SETFL, flags & ~O_DIRECT) == 0);
    return !direct;
  };
  auto put = [fd, &write_errno, &direct, &res, &buffered_from_now](const std::uint8_t* b, std::size_t n,
                                                                   std::uint64_t at) {
    while (n > 0 && write_errno == 0) {
      const ssize_t k = ::pwrite(fd, b, n, off_t(at));
      if (k < 0 && errno == EINTR) continue;
      if (k < 0 && errno == EINVAL && direct && buffered_from_now()) {  // O_DIRECT refused at write time
        res.buffered = true;
        continue;
      }
      if (k <= 0) {
        write_errno = k < 0 ? errno : EIO;
        break;
      }
      b += k;
      n -= std::size_t(k);
      at += std::uint64_t(k);
    }
  };
  std::vector<std::uint8_t> carry = head;  // bytes not yet written, from file offset `at` (aligned)
  std::uint64_t at = 0;
  // One writer thread for the whole file, fed in order with at most one piece per slot: when the device has
  // taken a piece and the next is ready, the writer goes on at once (a thread started per tensor waited
  // ~5 ms for a core at load 3-4 before its write, every tensor, and the device idled meanwhile).
  struct piece {
    const std::uint8_t* b;
    std::size_t n;
    std::uint64_t at;
  };
  std::mutex m;
  std::condition_variable cv;
  std::deque<piece> queue;
  bool closing = false;
  std::uint64_t submitted = 0, completed = 0, slot_last[2] = {0, 0};  // pieces; the last one of each slot
  std::thread writer([&] {
    std::unique_lock<std::mutex> lock(m);
    for (;;) {
      cv.wait(lock, [&] { return !queue.empty() || closing; });
      if (queue.empty()) return;
      const piece p = queue.front();
      lock.unlock();
      put(p.b, p.n, p.at);
      lock.lock();
      queue.pop_front();
      ++completed;
      cv.notify_all();
    }
  });
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    std::uint8_t* b = slots[i % 2].get();
    {
      std::unique_lock<std::mutex> lock(m);
      cv.wait(lock, [&] { return completed >= slot_last[i % 2]; });  // the writer is done with this slot
    }
    if (write_errno != 0) break;
    std::memcpy(b, carry.data(), carry.size());
    res.st = produce(i, b + carry.size(), std::size_t(sizes[i]));
    if (res.st != status::ok) {
      res.error = "tensor \"" + names[i] + "\": " + ecq::status_string(res.st);
      break;
    }
    const std::size_t total = carry.size() + std::size_t(sizes[i]), aligned = total / direct_align * direct_align;
    carry.assign(b + aligned, b + total);
    if (aligned > 0) {
      std::lock_guard<std::mutex> lock(m);
      queue.push_back({b, aligned, at});
      slot_last[i % 2] = ++submitted;
      cv.notify_all();
    }
    at += aligned;
  }
  {
    std::lock_guard<std::mutex> lock(m);
    closing = true;
    cv.notify_all();
  }
  writer.join();
  if (res.st == status::ok && write_errno == 0 && !carry.empty()) {  // the unaligned end, buffered
    if (direct && !buffered_from_now()) write_errno = errno;
    put(carry.data(), carry.size(), at);
  }
  if (::close(fd) != 0 && write_errno == 0) write_errno = errno;
  if (res.st == status::ok && write_errno != 0) {
    res.st = status::invalid_argument;
    res.error = "cannot write " + path + ": " + std::strerror(write_errno);
  }
#else
  (void)head;
  (void)sizes;
  (void)names;
  (void)produce;
  res.refused = true;
  res.st = status::invalid_argument;
  res.error = "cannot write " + path + " with O_DIRECT: this platform has no O_DIRECT";
#endif
  return res;
}

int cmd_unpack(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  std::string dtype = "auto", write = "auto";
  common_options common;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (common.parse(args, &i)) continue;
    if (args[i] == "--dtype" && i + 1 < args.size()) dtype = args[++i];
    else if (args[i] == "--write" && i + 1 < args.size()) write = args[++i];
    else if (args[i].rfind("--", 0) != 0) paths.push_back(args[i]);
    else usage_error("unpack: unexpected argument \"" + args[i] + "\"");
  }
  if (paths.size() != 2) usage_error("unpack: expected IN.ecq OUT.safetensors");
  unpack_io io = unpack_io::automatic;
  if (write == "direct") io = unpack_io::direct;
  else if (write == "buffered") io = unpack_io::buffered;
  else if (write != "auto") usage_error("unpack: --write must be auto, direct or buffered");
  ecq::tensor_dtype want = ecq::tensor_dtype::f32;
  if (dtype != "auto" && (dtype == "F64" || !ecq::dtype_from_name(dtype, &want) || !ecq::is_float_dtype(want)))
    usage_error("unpack: --dtype must be auto, F32, BF16 or F16");
  const auto start = std::chrono::steady_clock::now();
  ecq::file_bytes bytes;
  ecq::ecq_file_reader r;
  open_ecq(paths[0], &bytes, &r);
  const auto& ts = r.tensors();
  const ecq::tensor_dtype* requested = dtype == "auto" ? nullptr : &want;
  // Every container's structure checked on every thread (the dtypes unpack gives, for the output's header),
  // then the output streamed: the header, then one tensor at a time opened again, checksum included (so the
  // hashing of the later tensors overlaps the writing of the earlier ones instead of delaying the first
  // write: 0.04-0.1 s for 357 MB), decoded with its blocks on every thread (ecq/cpu/tensor_ops.hpp: a huge
  // tensor uses every core) and written while the next one is decoded. A checksum that fails stops the
  // unpack and removes the output. (--write buffered: unpack_tensor opens each tensor when it decodes it.)
  std::vector<ecq::encoded_tensor> opened(ts.size());
  std::vector<status> st(ts.size(), status::ok);
  ecq::open_options structure;
  structure.verify_checksum = false;
  parallel_for(ts.size(), common.thread_count(), [&](std::size_t i) {
    if (r.container_data(i) == nullptr) return;
    st[i] = r.open_tensor_borrowed(i, &opened[i], structure);
    if (st[i] == status::invalid_argument) st[i] = r.open_tensor(i, &opened[i], structure);  // not 16-aligned
  });
  ecq::safetensors_writer w;
  std::uint64_t weights = 0;
  std::vector<std::uint64_t> sizes(ts.size());
  std::vector<std::string> names(ts.size());
  for (std::size_t i = 0; i < ts.size(); ++i) {
    if (st[i] != status::ok) fail("tensor \"" + ts[i].name + "\": " + ecq::status_string(st[i]));
    weights += ts[i].elements();
    const ecq::encoded_tensor* e = opened[i].data() != nullptr ? &opened[i] : nullptr;
    const ecq::tensor_dtype d = ecq::unpacked_dtype(ts[i], e, requested);
    const status s = w.declare(ts[i].name, d, ts[i].shape);
    if (s != status::ok) fail("tensor \"" + ts[i].name + "\": " + ecq::status_string(s));
    sizes[i] = ts[i].elements() * ecq::dtype_size(d);  // declare checked that it does not overflow
    names[i] = ts[i].name;
  }
  opened.clear();
  for (const auto& kv : r.metadata()) w.add_metadata(kv.first, kv.second);
  ecq::cpu_options cpu;
  cpu.threads = common.threads;
  const ecq::safetensors_writer::produce_fn produce = [&](std::size_t i, std::vector<std::uint8_t>* out) {
    ecq::tensor_dtype got;
    return ecq::unpack_tensor(r, i, requested, out, &got, ecq::default_max_decoded_weights, cpu);
  };
  // O_DIRECT unless asked otherwise; --write auto falls back to the library's buffered writer where the file
  // system refuses O_DIRECT at open (tmpfs before Linux 6.6, /dev/null, some network and FUSE file systems).
  direct_result d;
  d.refused = io == unpack_io::buffered;
  std::vector<std::uint8_t> scratch;  // for the tensors that are not decoded straight into the output
  // Each container is opened with its checksum on a thread of its own while the tensor before decodes (else a
  // core idles for the 2-5 ms that hashing a 22 MB container takes, every tensor); the first before its decode.
  std::vector<ecq::encoded_tensor> checked(ts.size());
  std::vector<status> checked_st(ts.size(), status::ok);
  auto check = [&](std::size_t i) {
    if (r.container_data(i) == nullptr) return;  // raw or empty: nothing to open
    checked_st[i] = r.open_tensor_borrowed(i, &checked[i]);
    if (checked_st[i] == status::invalid_argument) checked_st[i] = r.open_tensor(i, &checked[i]);  // not 16-aligned
  };
  const produce_into_fn produce_into = [&](std::size_t i, std::uint8_t* out, std::size_t size) {
    if (i == 0) check(0);
    std::thread next;
    if (i + 1 < ts.size()) next = std::thread(check, i + 1);
    ecq::tensor_dtype got;
    status u = checked_st[i];
    if (u == status::ok)
      u = ecq::unpack_tensor_to(r, i, requested, out, size, &scratch, &got, ecq::default_max_decoded_weights, cpu,
                                checked[i].data() != nullptr ? &checked[i] : nullptr);
    if (next.joinable()) next.join();
    checked[i] = ecq::encoded_tensor{};
    return u;
  };
  if (io != unpack_io::buffered) d = write_unpacked_direct(paths[1], w.header_bytes(), sizes, names, produce_into);
  const char* how = d.buffered ? "O_DIRECT, then buffered where refused" : "O_DIRECT";
  if (d.refused && io != unpack_io::direct) {
    how = "buffered";
    d.st = w.write_file(paths[1], produce, &d.error);
  }
  if (d.st != status::ok) {
    std::error_code ec;
    if (std::filesystem::is_regular_file(paths[1], ec)) std::remove(paths[1].c_str());  // no partial output
    fail(paths[1] + ": " + d.error);
  }
  const double t = seconds_since(start);
  if (!common.quiet)
    std::printf("%s: %zu tensors, %llu weights in %.3f s (%.3g weights/s, %u threads, %s)\n", paths[1].c_str(),
                ts.size(), static_cast<unsigned long long>(weights), t, t > 0 ? double(weights) / t : 0.0,
                common.thread_count(), how);
  return 0;
}

int cmd_verify(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  common_options common;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (common.parse(args, &i)) continue;
    if (args[i].rfind("--", 0) != 0) paths.push_back(args[i]);
    else usage_error("verify: unexpected argument \"" + args[i] + "\"");
  }
  if (paths.size() != 1) usage_error("verify: expected FILE.ecq");
  const auto start = std::chrono::steady_clock::now();
  ecq::file_bytes bytes;
  ecq::ecq_file_reader r;
  open_ecq(paths[0], &bytes, &r);
  const auto& ts = r.tensors();
  std::vector<status> st(ts.size(), status::ok);
  // What is checked: the file's structure and directory checksum (the reader); each container's structure and
  // XXH64 checksum (open, the tensors on every thread: a checksum is one sequential pass); then each container's
  // scheme checks and a checked decode of every block, one tensor at a time with its blocks on every thread
  // (ecq::check_decode: the status decode_to_float would give, nothing stored). Raw and empty tensors: nothing
  // to decode; the reader has checked their bytes (directory checksum) and sizes.
  std::vector<ecq::encoded_tensor> opened(ts.size());
  parallel_for(ts.size(), common.thread_count(), [&](std::size_t i) {
    if (r.container_data(i) == nullptr) return;
    st[i] = r.open_tensor_borrowed(i, &opened[i]);
    if (st[i] == status::invalid_argument) st[i] = r.open_tensor(i, &opened[i]);  // not 16-byte aligned in memory
  });
  ecq::cpu_options cpu;
  cpu.threads = common.threads;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const ecq::encoded_tensor& e = opened[i];
    if (st[i] != status::ok || e.data() == nullptr) continue;
    if (ecq::gpu_layout::weights_per_symbol(e.geometry().scheme_id) != 0) {  // the GPU layout: its own host reader
      const ecq::tensor_geometry& g = e.geometry();
      std::vector<float> v;
      st[i] = g.cols > ecq::default_max_decoded_weights / g.rows ? status::output_too_small : ecq::gpu_dequantize(e, &v);
      continue;
    }
    st[i] = ecq::check_decode(e, cpu);
    opened[i] = ecq::encoded_tensor{};
  }
  std::size_t bad = 0;
  std::uint64_t weights = 0;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    weights += ts[i].elements();
    if (st[i] == status::ok) continue;
    ++bad;
    std::printf("%s: %s\n", ts[i].name.c_str(), ecq::status_string(st[i]));
  }
  const double t = seconds_since(start);
  if (!common.quiet || bad != 0)
    std::printf("%s: %zu tensors, %llu weights: %s (%.3f s, %.3g weights/s, %u threads)\n", paths[0].c_str(),
                ts.size(), static_cast<unsigned long long>(weights), bad == 0 ? "OK" : "INVALID", t,
                t > 0 ? double(weights) / t : 0.0, common.thread_count());
  return bad == 0 ? 0 : 1;
}

// --------------------------------------------------------------------------
// Self-test: `ecq selftest` (also a ctest test).

int self_test() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("ecq_tool_self_test_" + std::to_string(std::random_device{}()));
  fs::create_directories(dir);
  std::mt19937 rng(1);
  std::student_t_distribution<float> t(4.0f);
  auto bytes_of = [](const auto& v) {
    std::vector<std::uint8_t> b(v.size() * sizeof(v[0]));
    if (!b.empty()) std::memcpy(b.data(), v.data(), b.size());
    return b;
  };
  auto floats = [&](std::size_t n, float scale) {
    std::vector<float> v(n);
    for (auto& x : v) x = scale * t(rng);
    return v;
  };
  ecq::safetensors_writer w;
  const std::vector<float> a = floats(96 * 80, 0.02f), b = floats(50, 0.1f);
  w.add("layer.weight", ecq::tensor_dtype::f32, {96, 80}, bytes_of(a));
  w.add("layer.bias", ecq::tensor_dtype::f32, {50}, bytes_of(b));
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
  w.add("mlp.weight", ecq::tensor_dtype::u32, {mlx_rows, mlx_cols / 8}, bytes_of(mlx_words));
  w.add("mlp.scales", ecq::tensor_dtype::f16, {mlx_rows, mlx_groups}, bytes_of(mlx_scales));
  w.add("mlp.biases", ecq::tensor_dtype::f16, {mlx_rows, mlx_groups}, bytes_of(mlx_biases));
  // What a convolutional network's checkpoint holds besides matrices.
  w.add("bn.running_var", ecq::tensor_dtype::f32, {16}, bytes_of(floats(16, 9.8e7f)));
  w.add("wide.weight", ecq::tensor_dtype::f32, {8, 64}, bytes_of(floats(8 * 64, 1.0e7f)));  // beyond binary16 side data
  w.add("conv.weight", ecq::tensor_dtype::f32, {4, 3, 3, 3}, bytes_of(floats(108, 0.1f)));
  w.add("ids", ecq::tensor_dtype::i32, {2, 5}, bytes_of(std::vector<std::int32_t>{0, 1, 2, 3, 4, -1, -2, 7, 8, 9}));
  w.add("step", ecq::tensor_dtype::i64, {}, bytes_of(std::vector<std::int64_t>{123456789012345}));
  std::vector<std::uint16_t> norm(80), emb(40 * 64);
  for (auto& h : norm) h = ecq::float_to_bf16(1.0f + 0.01f * t(rng));
  for (auto& h : emb) h = ecq::float_to_f16(0.05f * t(rng));
  w.add("norm.weight", ecq::tensor_dtype::bf16, {80}, bytes_of(norm));
  w.add("embed.weight", ecq::tensor_dtype::f16, {40, 64}, bytes_of(emb));
  const std::string in = (dir / "in.safetensors").string();
  if (ecq::write_file_bytes(in, w.serialize()) != status::ok) fail("self-test: cannot write " + in);
  loaded_file src;
  load_safetensors(in, &src);

  int failures = 0;
  auto check = [&](bool ok, const std::string& what) {
    if (ok) return;
    ++failures;
    std::printf("self-test: %s\n", what.c_str());
  };
  const char* const schemes[] = {"bf16", "affine4-g64", "affine4-g32-p2r1", "codebook-nf4-g64", "uniform-sqnr25",
                                 "lossless"};
  for (const char* scheme : schemes) {
    const std::string packed = (dir / "x.ecq").string(), out = (dir / "out.safetensors").string();
    pack_request q;
    q.in = in;
    q.out = packed;
    q.scheme = parse_scheme_choice(scheme);
    q.mlx_bits = 4;
    q.common.threads = 2;  // the parallel path, whatever the machine
    const pack_result res = run_pack(q);
    check(cmd_verify({packed, "--quiet"}) == 0, std::string(scheme) + ": verify failed");
    check(cmd_unpack({packed, out, "--quiet", "--threads", "3"}) == 0, std::string(scheme) + ": unpack failed");
    {
      // The O_DIRECT output (tensors not multiples of 4 KiB: the carried and the buffered end) equals the
      // library's buffered writer's, byte for byte; --write auto falls back to it where O_DIRECT is refused
      // at open (as /dev/null does).
      const std::string buffered = (dir / "out_buffered.safetensors").string();
      check(cmd_unpack({packed, buffered, "--quiet", "--write", "buffered"}) == 0,
            std::string(scheme) + ": unpack --write buffered failed");
      std::vector<std::uint8_t> a, b;
      check(ecq::read_file_bytes(out, &a) == status::ok && ecq::read_file_bytes(buffered, &b) == status::ok &&
                a == b && a.size() % direct_align != 0,
            std::string(scheme) + ": the O_DIRECT and the buffered output differ");
#if ECQ_TOOL_HAVE_O_DIRECT
      if (fs::exists("/dev/null"))
        check(cmd_unpack({packed, "/dev/null", "--quiet"}) == 0, std::string(scheme) + ": unpack to /dev/null failed");
#endif
    }
    check(cmd_inspect({packed, "--json"}) == 0, std::string(scheme) + ": inspect of the .ecq file failed");
    loaded_file f;
    load_safetensors(out, &f);
    const bool lossless = q.scheme.lossless;
    // The report names each decision and why.
    auto reported = [&](const std::string& name, const std::string& decision, const std::string& why) {
      const std::size_t at = res.report.find(decision);
      for (std::size_t p = at; p != std::string::npos; p = res.report.find(decision, p + 1)) {
        const std::size_t end = res.report.find('\n', p);
        const std::string line = res.report.substr(p, end - p);
        if (line.find("  " + name + "  (") != std::string::npos && line.find(why) != std::string::npos) return true;
      }
      return false;
    };
    check(reported("ids", "raw", "no scheme codes I32"), std::string(scheme) + ": the I32 tensor is not reported raw");
    check(reported("step", "raw", "no scheme codes I64"), std::string(scheme) + ": the I64 scalar is not reported raw");
    // Kept in their own precision: coded losslessly, or raw where that is no larger (small tensors).
    auto kept = [&](const std::string& name, const std::string& why) {
      return reported(name, "lossless", why) || reported(name, "raw", why);
    };
    check(kept("layer.bias", lossless ? "lossless for every tensor" : "1-D"),
          std::string(scheme) + ": the bias is not reported kept");
    check(reported("layer.weight", lossless ? "lossless" : "scheme", lossless ? "f32" : "96 x 80"),
          std::string(scheme) + ": the matrix is not reported with its decision");
    const bool side16 = std::string(scheme).rfind("affine", 0) == 0 || std::string(scheme).rfind("codebook", 0) == 0;
    if (side16) {
      check(kept("wide.weight", "cannot represent it"),
            std::string(scheme) + ": the wide-range tensor did not fall back with its reason");
      check(kept("conv.weight", "3 columns, fewer than a group of"),
            std::string(scheme) + ": the convolution is not kept for its width");
    }
    auto decision_of = [&](const std::string& name) {
      for (const auto& d : res.decisions)
        if (d.first == name) return d.second;
      return tensor_decision::empty;
    };
    check(res.report.find("totals by decision") != std::string::npos, std::string(scheme) + ": no totals");
    // Tensors kept losslessly or raw come back with their bytes and dtype; the scheme's with its values.
    for (const auto& s : src.st.tensors()) {
      if (s.name == "mlp.scales" || s.name == "mlp.biases") continue;  // inside the MLX weight
      const ecq::safetensors_tensor* o = f.st.find(s.name);
      if (o == nullptr) {
        check(false, std::string(scheme) + ": " + s.name + " is missing");
        continue;
      }
      const bool by_scheme = decision_of(s.name) == tensor_decision::scheme;
      check(!lossless || !by_scheme, std::string(scheme) + ", " + s.name + ": given a scheme by lossless");
      if (s.name == "mlp.weight") {
        // The MLX weight comes back dequantised, w = scale * q + bias, whatever --scheme says.
        std::vector<float> v;
        bool same = o->shape == std::vector<std::uint64_t>{mlx_rows, mlx_cols} &&
                    ecq::to_float(*o, f.st.data(*o), &v) == status::ok;
        for (std::size_t i = 0; same && i < v.size(); ++i) {
          const std::size_t g = i / 64;
          same = v[i] == ecq::f16_to_float(mlx_scales[g]) * float(mlx_codes[i]) + ecq::f16_to_float(mlx_biases[g]);
        }
        check(same, std::string(scheme) + ": the MLX weight did not come back as scale * q + bias");
      } else if (by_scheme) {
        ecq::scheme_spec spec = q.scheme.spec;
        std::vector<float> v, x;
        ecq::to_float(*o, f.st.data(*o), &v);
        ecq::to_float(s, src.st.data(s), &x);
        ecq::quantized_tensor qt;
        ecq::quantize(spec, x.data(), ecq::shape_rows(s.shape), ecq::shape_cols(s.shape), &qt);
        std::vector<float> expect;
        ecq::dequantize(qt, &expect);
        check(v == expect, std::string(scheme) + ", " + s.name + ": unpacked values differ from the quantiser's");
      } else {
        const bool same = o->dtype == s.dtype && o->shape == s.shape && o->end - o->begin == s.end - s.begin &&
                          std::memcmp(f.st.data(*o), src.st.data(s), std::size_t(s.end - s.begin)) == 0;
        check(same, std::string(scheme) + ", " + s.name + ": did not come back bit for bit in its dtype");
      }
    }
  }
  check(cmd_inspect({in, "--scheme", "affine4-g64", "--scheme", "lossless", "--keep", "^layer\\.", "--quiet"}) == 0,
        "inspect of the safetensors file failed");
  // --layout gpu: a BF16 matrix with whole 256-column chunks goes in the GPU layout (bf16 bits exactly; affine4
  // as affine_quantize makes it), the 80-column one keeps the storage layout.
  {
    ecq::safetensors_writer g;
    std::vector<std::uint16_t> gb(40 * 512);
    for (auto& x : gb) x = ecq::float_to_bf16(0.02f * t(rng));
    g.add("gpu.weight", ecq::tensor_dtype::bf16, {40, 512}, bytes_of(gb));
    g.add("layer.weight", ecq::tensor_dtype::f32, {96, 80}, bytes_of(a));
    const std::string gin = (dir / "gpu.safetensors").string(), packed = (dir / "gpu.ecq").string();
    const std::string out = (dir / "gpu_out.safetensors").string();
    if (ecq::write_file_bytes(gin, g.serialize()) != status::ok) fail("self-test: cannot write " + gin);
    for (const char* scheme : {"bf16", "affine4-g128-bf16"}) {
      cmd_pack({gin, packed, "--scheme", scheme, "--layout", "gpu", "--quiet"});
      check(cmd_verify({packed, "--quiet"}) == 0, std::string(scheme) + " --layout gpu: verify failed");
      ecq::file_bytes fb;
      ecq::ecq_file_reader r;
      open_ecq(packed, &fb, &r);
      ecq::encoded_tensor e, e1;
      const bool is_gpu = r.open_tensor(0, &e) == status::ok &&
                          ecq::gpu_layout::weights_per_symbol(e.geometry().scheme_id) != 0 &&
                          r.open_tensor(1, &e1) == status::ok &&
                          ecq::gpu_layout::weights_per_symbol(e1.geometry().scheme_id) == 0;
      cmd_unpack({packed, out, "--quiet"});
      loaded_file f;
      load_safetensors(out, &f);
      const auto& tt = f.st.tensors()[0];
      std::vector<float> v, gf(gb.size());
      ecq::to_float(tt, f.st.data(tt), &v);
      for (std::size_t i = 0; i < gb.size(); ++i) gf[i] = ecq::bf16_to_float(gb[i]);
      bool same = is_gpu && v.size() == gb.size() && f.st.tensors().size() == 2;
      if (same && scheme[0] == 'b') {
        same = tt.dtype == ecq::tensor_dtype::bf16;
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
      check(same, std::string(scheme) + " --layout gpu: the GPU-layout tensor did not come back");
    }
  }
  fs::remove_all(dir);
  std::printf("self-test: %s\n", failures == 0 ? "passed" : "FAILED");
  return failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const std::string cmd = argv[1];
  const std::vector<std::string> args(argv + 2, argv + argc);
  if (cmd == "inspect") return cmd_inspect(args);
  if (cmd == "pack") return cmd_pack(args);
  if (cmd == "unpack") return cmd_unpack(args);
  if (cmd == "verify") return cmd_verify(args);
  if (cmd == "selftest") return self_test();
  if (cmd == "help" || cmd == "--help" || cmd == "-h") {
    print_usage(stdout);
    return 0;
  }
  usage_error("unknown command \"" + cmd + "\"");
}
