// ecq/io/safetensors.hpp — READ ME FIRST
//
// A small reader and writer for the safetensors format (host only), enough
// for the `ecq` tool and for tests that read real weights:
//
//   bytes [0, 8)          N, the JSON header length, little-endian uint64
//   bytes [8, 8 + N)      JSON object: tensor name -> {"dtype": "F32",
//                         "shape": [d0, d1, ...], "data_offsets": [b, e]},
//                         plus an optional "__metadata__": {string: string}
//   bytes [8 + N, end)    the data section; tensor bytes are [b, e) of it,
//                         little-endian, row-major
//
// The reader treats the bytes as untrusted and validates everything before
// anything is returned: the JSON syntax (strings with escapes, nesting depth
// bounded), every tensor's dtype, shape and offsets (no overflow, inside the
// data section, size == product(shape) * element size), and, as the
// reference implementation does, that the tensors tile the data section
// without gaps or overlaps. Nothing is read outside [bytes, bytes + size).
// A failure returns an ecq::status and, when asked, a message naming the
// byte offset or the tensor.
//
// Conversions to float (to_float) cover F32, F16, BF16, F64, I8 and I16;
// other dtypes are parsed and kept (so files holding them can be listed and
// copied) but to_float returns status::unsupported_parameters for them.
//
// The writer (in memory, or streamed to a file with tensors produced one at a
// time) lays tensors out in the order they were added, without gaps (the
// format requires it), writes the keys in that order, and pads the JSON
// header with spaces to a multiple of 8 bytes, so that the data section
// starts 8-byte aligned when the file is mapped.
#ifndef ECQ_IO_SAFETENSORS_HPP
#define ECQ_IO_SAFETENSORS_HPP

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../schemes/float_formats.hpp"
#include "../status.hpp"

ECQ_NAMESPACE_BEGIN

/// Element types of the safetensors format. The values are stored in .ecq
/// files (ecq/io/ecq_file.hpp): never renumber.
enum class tensor_dtype : std::uint8_t {
  f64 = 0,
  f32 = 1,
  f16 = 2,
  bf16 = 3,
  i64 = 4,
  i32 = 5,
  i16 = 6,
  i8 = 7,
  u64 = 8,
  u32 = 9,
  u16 = 10,
  u8 = 11,
  boolean = 12,
  f8_e4m3 = 13,
  f8_e5m2 = 14,
};
/// One past the largest tensor_dtype value.
inline constexpr std::uint8_t tensor_dtype_count = 15;

/// @return the format's name of `d` ("F32", "BF16", ...).
inline const char* dtype_name(tensor_dtype d) {
  switch (d) {
    case tensor_dtype::f64: return "F64";
    case tensor_dtype::f32: return "F32";
    case tensor_dtype::f16: return "F16";
    case tensor_dtype::bf16: return "BF16";
    case tensor_dtype::i64: return "I64";
    case tensor_dtype::i32: return "I32";
    case tensor_dtype::i16: return "I16";
    case tensor_dtype::i8: return "I8";
    case tensor_dtype::u64: return "U64";
    case tensor_dtype::u32: return "U32";
    case tensor_dtype::u16: return "U16";
    case tensor_dtype::u8: return "U8";
    case tensor_dtype::boolean: return "BOOL";
    case tensor_dtype::f8_e4m3: return "F8_E4M3";
    case tensor_dtype::f8_e5m2: return "F8_E5M2";
  }
  return "?";
}

/// @return the size of one element of `d` in bytes.
inline std::size_t dtype_size(tensor_dtype d) {
  switch (d) {
    case tensor_dtype::f64: case tensor_dtype::i64: case tensor_dtype::u64: return 8;
    case tensor_dtype::f32: case tensor_dtype::i32: case tensor_dtype::u32: return 4;
    case tensor_dtype::f16: case tensor_dtype::bf16: case tensor_dtype::i16: case tensor_dtype::u16: return 2;
    default: return 1;
  }
}

/// Parses a dtype name. @return false if `name` is not one of the format's names.
inline bool dtype_from_name(const std::string& name, tensor_dtype* d) {
  static constexpr tensor_dtype all[] = {tensor_dtype::f64,  tensor_dtype::f32,     tensor_dtype::f16,
                                         tensor_dtype::bf16, tensor_dtype::i64,     tensor_dtype::i32,
                                         tensor_dtype::i16,  tensor_dtype::i8,      tensor_dtype::u64,
                                         tensor_dtype::u32,  tensor_dtype::u16,     tensor_dtype::u8,
                                         tensor_dtype::boolean, tensor_dtype::f8_e4m3, tensor_dtype::f8_e5m2};
  for (tensor_dtype c : all)
    if (name == dtype_name(c)) {
      *d = c;
      return true;
    }
  return false;
}

/// One tensor of a parsed file; `begin`/`end` are offsets into the data section.
struct safetensors_tensor {
  std::string name;
  tensor_dtype dtype = tensor_dtype::f32;
  std::vector<std::uint64_t> shape;
  std::uint64_t begin = 0;
  std::uint64_t end = 0;

  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (std::uint64_t d : shape) n *= d;  // validated not to overflow by the parser
    return n;
  }
};

namespace detail {

/// Bounds-checked recursive-descent JSON reader over [p, end). Every method
/// returns false on a syntax error and leaves the position at the error.
struct json_cursor {
  const char* begin;
  const char* p;
  const char* end;
  int depth = 0;
  static constexpr int max_depth = 64;  // deeper values are refused, so recursion stays bounded

  void skip_space() {
    while (p != end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  }
  bool consume(char c) {
    skip_space();
    if (p == end || *p != c) return false;
    ++p;
    return true;
  }
  bool peek(char c) {
    skip_space();
    return p != end && *p == c;
  }
  std::size_t offset() const { return std::size_t(p - begin); }

  static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }
  bool read_hex4(std::uint32_t* v) {
    if (end - p < 4) return false;
    std::uint32_t x = 0;
    for (int k = 0; k < 4; ++k) {
      const int h = hex_value(p[k]);
      if (h < 0) return false;
      x = x << 4 | std::uint32_t(h);
    }
    p += 4;
    *v = x;
    return true;
  }
  static void append_utf8(std::string* s, std::uint32_t cp) {
    if (cp < 0x80) {
      s->push_back(char(cp));
    } else if (cp < 0x800) {
      s->push_back(char(0xc0 | (cp >> 6)));
      s->push_back(char(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      s->push_back(char(0xe0 | (cp >> 12)));
      s->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
      s->push_back(char(0x80 | (cp & 0x3f)));
    } else {
      s->push_back(char(0xf0 | (cp >> 18)));
      s->push_back(char(0x80 | ((cp >> 12) & 0x3f)));
      s->push_back(char(0x80 | ((cp >> 6) & 0x3f)));
      s->push_back(char(0x80 | (cp & 0x3f)));
    }
  }
  /// A JSON string; escapes decoded (\uXXXX, surrogate pairs, to UTF-8).
  bool read_string(std::string* out) {
    if (!consume('"')) return false;
    out->clear();
    while (p != end) {
      const char c = *p++;
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return false;  // raw control characters are not allowed
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (p == end) return false;
      const char e = *p++;
      switch (e) {
        case '"': out->push_back('"'); break;
        case '\\': out->push_back('\\'); break;
        case '/': out->push_back('/'); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!read_hex4(&cp)) return false;
          if (cp >= 0xd800 && cp < 0xdc00) {  // high surrogate: a low one must follow
            std::uint32_t lo = 0;
            if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return false;
            p += 2;
            if (!read_hex4(&lo) || lo < 0xdc00 || lo >= 0xe000) return false;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp < 0xe000) {
            return false;
          }
          append_utf8(out, cp);
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  /// A non-negative integer without sign, fraction or exponent that fits in 64 bits.
  bool read_uint(std::uint64_t* v) {
    skip_space();
    if (p == end || *p < '0' || *p > '9') return false;
    if (*p == '0' && end - p > 1 && p[1] >= '0' && p[1] <= '9') return false;  // no leading zeros
    std::uint64_t x = 0;
    while (p != end && *p >= '0' && *p <= '9') {
      const std::uint64_t d = std::uint64_t(*p - '0');
      if (x > (~std::uint64_t(0) - d) / 10) return false;
      x = x * 10 + d;
      ++p;
    }
    if (p != end && (*p == '.' || *p == 'e' || *p == 'E')) return false;
    *v = x;
    return true;
  }
  /// An array of non-negative integers.
  bool read_uint_array(std::vector<std::uint64_t>* out) {
    out->clear();
    if (!consume('[')) return false;
    if (consume(']')) return true;
    do {
      std::uint64_t v = 0;
      if (!read_uint(&v)) return false;
      out->push_back(v);
    } while (consume(','));
    return consume(']');
  }
  bool skip_literal(const char* word) {
    const std::size_t n = std::strlen(word);
    if (std::size_t(end - p) < n || std::memcmp(p, word, n) != 0) return false;
    p += n;
    return true;
  }
  bool skip_number() {
    const char* start = p;
    if (p != end && *p == '-') ++p;
    while (p != end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' || *p == '-'))
      ++p;
    return p != start;
  }
  /// Any JSON value, discarded (for keys this reader does not use).
  bool skip_value() {
    skip_space();
    if (p == end) return false;
    if (*p == '"') {
      std::string ignored;
      return read_string(&ignored);
    }
    if (*p == '{' || *p == '[') {
      if (++depth > max_depth) return false;
      const char close = *p == '{' ? '}' : ']';
      const bool object = *p == '{';
      ++p;
      if (!consume(close)) {
        do {
          if (object) {
            std::string key;
            if (!read_string(&key) || !consume(':')) return false;
          }
          if (!skip_value()) return false;
        } while (consume(','));
        if (!consume(close)) return false;
      }
      --depth;
      return true;
    }
    if (*p == 't') return skip_literal("true");
    if (*p == 'f') return skip_literal("false");
    if (*p == 'n') return skip_literal("null");
    return skip_number();
  }
};

inline void set_error(std::string* error, std::string message) {
  if (error != nullptr) *error = std::move(message);
}

inline std::uint64_t load_u64_le(const std::uint8_t* b) {
  std::uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = v << 8 | b[k];
  return v;
}

}  // namespace detail

/// A parsed safetensors file: a validated table of contents over bytes the
/// caller keeps alive (nothing is copied).
class safetensors_file {
 public:
  /// Largest JSON header accepted, as in the reference implementation.
  static constexpr std::uint64_t max_header_size = 100u << 20;

  /// Parses and validates `bytes[0..size)` (see the file comment).
  /// @return status::ok; status::truncated (shorter than the 8-byte length
  ///         or than the header it announces); status::bad_magic (header
  ///         length above max_header_size, or the header is not a JSON
  ///         object); status::corrupt_stream (JSON syntax error, missing or
  ///         duplicate keys, unknown dtype); status::bad_shape (shape product
  ///         overflows or disagrees with the byte size); status::bad_offset
  ///         (offsets reversed, outside the data section, overlapping or
  ///         leaving gaps). `error`, if not null, receives a message.
  status parse(const std::uint8_t* bytes, std::size_t size, std::string* error = nullptr) {
    tensors_.clear();
    metadata_.clear();
    data_ = nullptr;
    data_size_ = 0;
    if (size < 8) {
      detail::set_error(error, "file is shorter than the 8-byte header length");
      return status::truncated;
    }
    const std::uint64_t n = detail::load_u64_le(bytes);
    if (n > max_header_size) {
      detail::set_error(error, "header length " + std::to_string(n) + " is above the 100 MiB limit");
      return status::bad_magic;
    }
    if (n > size - 8) {
      detail::set_error(error, "header length " + std::to_string(n) + " runs past the end of the file (" +
                                   std::to_string(size) + " bytes)");
      return status::truncated;
    }
    const char* json = reinterpret_cast<const char*>(bytes + 8);
    detail::json_cursor c{json, json, json + n};
    if (!c.consume('{')) {
      detail::set_error(error, "header is not a JSON object");
      return status::bad_magic;
    }
    auto syntax = [&](const char* what) {
      detail::set_error(error, std::string("JSON header: ") + what + " at header byte " + std::to_string(c.offset()));
      return status::corrupt_stream;
    };
    bool have_metadata = false;
    if (!c.consume('}')) {
      do {
        std::string key;
        if (!c.read_string(&key)) return syntax("expected a string key");
        if (!c.consume(':')) return syntax("expected ':'");
        if (key == "__metadata__") {
          if (have_metadata) return syntax("duplicate __metadata__");
          have_metadata = true;
          const status s = parse_metadata(c, error);
          if (s != status::ok) return s;
          continue;
        }
        for (const auto& t : tensors_)
          if (t.name == key) return syntax(("duplicate tensor name \"" + key + "\"").c_str());
        safetensors_tensor t;
        t.name = key;
        const status s = parse_tensor(c, &t, error);
        if (s != status::ok) return s;
        tensors_.push_back(std::move(t));
      } while (c.consume(','));
      if (!c.consume('}')) return syntax("expected ',' or '}'");
    }
    c.skip_space();
    if (c.p != c.end) return syntax("unexpected bytes after the header object");

    data_ = bytes + 8 + n;
    data_size_ = size - 8 - std::size_t(n);
    return validate_layout(error);
  }

  const std::vector<safetensors_tensor>& tensors() const { return tensors_; }
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  /// @return the first byte of tensor t's data (inside the caller's buffer).
  const std::uint8_t* data(const safetensors_tensor& t) const { return data_ + t.begin; }
  /// @return the tensor called `name`, or null.
  const safetensors_tensor* find(const std::string& name) const {
    for (const auto& t : tensors_)
      if (t.name == name) return &t;
    return nullptr;
  }

 private:
  status parse_metadata(detail::json_cursor& c, std::string* error) {
    auto bad = [&](const char* what) {
      detail::set_error(error, std::string("__metadata__: ") + what + " at header byte " + std::to_string(c.offset()));
      return status::corrupt_stream;
    };
    if (!c.consume('{')) return bad("expected an object");
    if (c.consume('}')) return status::ok;
    do {
      std::string k, v;
      if (!c.read_string(&k) || !c.consume(':') || !c.read_string(&v)) return bad("expected \"key\": \"string\"");
      metadata_.emplace_back(std::move(k), std::move(v));
    } while (c.consume(','));
    return c.consume('}') ? status::ok : bad("expected ',' or '}'");
  }

  status parse_tensor(detail::json_cursor& c, safetensors_tensor* t, std::string* error) {
    auto bad = [&](const std::string& what, status s = status::corrupt_stream) {
      detail::set_error(error, "tensor \"" + t->name + "\": " + what + " at header byte " + std::to_string(c.offset()));
      return s;
    };
    if (!c.consume('{')) return bad("expected an object");
    bool have_dtype = false, have_shape = false, have_offsets = false;
    if (!c.consume('}')) {
      do {
        std::string key;
        if (!c.read_string(&key) || !c.consume(':')) return bad("expected a key");
        if (key == "dtype") {
          std::string name;
          if (have_dtype || !c.read_string(&name)) return bad("bad or duplicate dtype");
          if (!dtype_from_name(name, &t->dtype)) return bad("unknown dtype \"" + name + "\"");
          have_dtype = true;
        } else if (key == "shape") {
          if (have_shape || !c.read_uint_array(&t->shape)) return bad("bad or duplicate shape");
          have_shape = true;
        } else if (key == "data_offsets") {
          std::vector<std::uint64_t> o;
          if (have_offsets || !c.read_uint_array(&o) || o.size() != 2) return bad("bad or duplicate data_offsets");
          t->begin = o[0];
          t->end = o[1];
          have_offsets = true;
        } else if (!c.skip_value()) {
          return bad("bad value for key \"" + key + "\"");
        }
      } while (c.consume(','));
      if (!c.consume('}')) return bad("expected ',' or '}'");
    }
    if (!have_dtype || !have_shape || !have_offsets) return bad("dtype, shape and data_offsets are required");
    std::uint64_t elements = 1;
    for (std::uint64_t d : t->shape) {
      if (d != 0 && elements > ~std::uint64_t(0) / d) return bad("shape product overflows", status::bad_shape);
      elements *= d;
    }
    if (t->end < t->begin) return bad("data_offsets are reversed", status::bad_offset);
    const std::uint64_t esize = dtype_size(t->dtype);
    if (elements > ~std::uint64_t(0) / esize || elements * esize != t->end - t->begin)
      return bad("byte size " + std::to_string(t->end - t->begin) + " does not match shape and dtype",
                 status::bad_shape);
    return status::ok;
  }

  status validate_layout(std::string* error) {
    std::vector<const safetensors_tensor*> order;
    for (const auto& t : tensors_) order.push_back(&t);
    std::sort(order.begin(), order.end(), [](const safetensors_tensor* a, const safetensors_tensor* b) {
      return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
    });
    std::uint64_t expected = 0;
    for (const safetensors_tensor* t : order) {
      if (t->begin != expected) {
        detail::set_error(error, "tensor \"" + t->name + "\" starts at data byte " + std::to_string(t->begin) +
                                     ", expected " + std::to_string(expected) + " (gap or overlap)");
        return status::bad_offset;
      }
      if (t->end > data_size_) {
        detail::set_error(error, "tensor \"" + t->name + "\" ends at data byte " + std::to_string(t->end) +
                                     ", past the data section (" + std::to_string(data_size_) + " bytes)");
        return status::bad_offset;
      }
      expected = t->end;
    }
    if (expected != data_size_) {
      detail::set_error(error, std::to_string(data_size_ - expected) + " bytes after the last tensor");
      return status::bad_offset;
    }
    return status::ok;
  }

  std::vector<safetensors_tensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  const std::uint8_t* data_ = nullptr;
  std::size_t data_size_ = 0;
};

/// Whether to_float converts tensors of dtype `d`.
inline bool converts_to_float(tensor_dtype d) {
  switch (d) {
    case tensor_dtype::f32:
    case tensor_dtype::f64:
    case tensor_dtype::f16:
    case tensor_dtype::bf16:
    case tensor_dtype::i16:
    case tensor_dtype::i8:
      return true;
    default:
      return false;
  }
}

/// Converts the elements of `t` (data at `data`, as returned by
/// safetensors_file::data) to float: exact for F32, F16, BF16, I8 and I16,
/// rounded to nearest for F64.
/// @return status::ok, or status::unsupported_parameters for other dtypes
///         (converts_to_float(t.dtype) is false).
inline status to_float(const safetensors_tensor& t, const std::uint8_t* data, std::vector<float>* out) {
  if (!converts_to_float(t.dtype)) {
    out->clear();
    return status::unsupported_parameters;
  }
  const std::size_t n = std::size_t(t.elements());
  out->resize(n);
  float* o = out->data();
  switch (t.dtype) {
    case tensor_dtype::f32:
      if (n != 0) std::memcpy(o, data, n * 4);
      return status::ok;
    case tensor_dtype::f64:
      for (std::size_t i = 0; i < n; ++i) {
        double d;
        std::memcpy(&d, data + 8 * i, 8);
        o[i] = float(d);
      }
      return status::ok;
    case tensor_dtype::f16:
    case tensor_dtype::bf16:
    case tensor_dtype::i16:
      for (std::size_t i = 0; i < n; ++i) {
        const std::uint16_t h = std::uint16_t(data[2 * i] | data[2 * i + 1] << 8);
        o[i] = t.dtype == tensor_dtype::f16 ? f16_to_float(h)
               : t.dtype == tensor_dtype::bf16 ? bf16_to_float(h)
                                               : float(std::int16_t(h));
      }
      return status::ok;
    default:  // i8
      for (std::size_t i = 0; i < n; ++i) o[i] = float(std::int8_t(data[i]));
      return status::ok;
  }
}

/// Reads a whole file into `bytes`.
/// @return status::ok, or status::invalid_argument if it cannot be opened or
///         read (`error` receives the reason).
inline status read_file_bytes(const std::string& path, std::vector<std::uint8_t>* bytes, std::string* error = nullptr) {
  bytes->clear();
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    detail::set_error(error, "cannot open " + path + ": " + std::strerror(errno));
    return status::invalid_argument;
  }
  std::uint8_t buffer[1 << 16];
  std::size_t got = 0;
  while ((got = std::fread(buffer, 1, sizeof buffer, f)) > 0) bytes->insert(bytes->end(), buffer, buffer + got);
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    detail::set_error(error, "cannot read " + path);
    return status::invalid_argument;
  }
  return status::ok;
}

/// Writes `bytes` to a file (replacing it).
/// @return status::ok, or status::invalid_argument if the file cannot be written.
inline status write_file_bytes(const std::string& path, const std::vector<std::uint8_t>& bytes,
                               std::string* error = nullptr) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    detail::set_error(error, "cannot create " + path + ": " + std::strerror(errno));
    return status::invalid_argument;
  }
  // An empty vector's data() may be null, which fwrite must not be given even for 0 bytes.
  const bool ok = bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  const bool closed = std::fclose(f) == 0;
  if (!ok || !closed) {
    detail::set_error(error, "cannot write " + path);
    return status::invalid_argument;
  }
  return status::ok;
}

/// Builds a safetensors file: in memory (serialize), or streamed to a file
/// (write_file) with tensors whose bytes are produced one at a time.
class safetensors_writer {
 public:
  /// Adds a tensor; `bytes` must hold product(shape) * dtype_size(dtype) bytes.
  /// @return status::ok, status::invalid_argument (empty or duplicate name,
  ///         "__metadata__"), or status::bad_shape (size mismatch, or a
  ///         shape whose byte size overflows 64 bits).
  status add(const std::string& name, tensor_dtype dtype, std::vector<std::uint64_t> shape,
             std::vector<std::uint8_t> bytes) {
    std::uint64_t size = 0;
    const status st = check_entry(name, dtype, shape, &size);
    if (st != status::ok) return st;
    if (size != bytes.size()) return status::bad_shape;
    entries_.push_back({name, dtype, std::move(shape), size, false, std::move(bytes)});
    return status::ok;
  }
  /// Declares a tensor whose bytes write_file's `produce` gives when the file
  /// is written (serialize() writes zeros for it).
  /// @return as add.
  status declare(const std::string& name, tensor_dtype dtype, std::vector<std::uint64_t> shape) {
    std::uint64_t size = 0;
    const status st = check_entry(name, dtype, shape, &size);
    if (st != status::ok) return st;
    entries_.push_back({name, dtype, std::move(shape), size, true, {}});
    return status::ok;
  }
  void add_metadata(std::string key, std::string value) { metadata_.emplace_back(std::move(key), std::move(value)); }

  /// @return the complete file.
  std::vector<std::uint8_t> serialize() const {
    const std::vector<std::uint8_t> head = header_bytes();
    // Sized once and filled in place (GCC 12 at -O3 reports a false -Warray-bounds on insert() after an
    // 8-byte vector).
    std::size_t total = head.size();
    for (const auto& e : entries_) total += std::size_t(e.size);
    std::vector<std::uint8_t> out(total);
    std::memcpy(out.data(), head.data(), head.size());
    std::size_t at = head.size();
    for (const auto& e : entries_) {
      if (!e.bytes.empty()) std::memcpy(out.data() + at, e.bytes.data(), e.bytes.size());
      at += std::size_t(e.size);
    }
    return out;
  }

  /// The file's first bytes, which serialize and write_file begin with: the
  /// 8-byte little-endian length and the JSON header, padded with spaces to a
  /// multiple of 8; tensor k's bytes follow at header_bytes().size() plus the
  /// sizes of the tensors added or declared before it (a caller that writes
  /// the file itself, ecq unpack's O_DIRECT output, places them so).
  std::vector<std::uint8_t> header_bytes() const {
    std::string json = "{";
    bool first = true;
    if (!metadata_.empty()) {
      json += "\"__metadata__\":{";
      for (std::size_t k = 0; k < metadata_.size(); ++k) {
        if (k) json += ',';
        append_string(&json, metadata_[k].first);
        json += ':';
        append_string(&json, metadata_[k].second);
      }
      json += '}';
      first = false;
    }
    std::uint64_t offset = 0;
    for (const auto& e : entries_) {
      if (!first) json += ',';
      first = false;
      append_string(&json, e.name);
      json += ":{\"dtype\":\"";
      json += dtype_name(e.dtype);
      json += "\",\"shape\":[";
      for (std::size_t k = 0; k < e.shape.size(); ++k) {
        if (k) json += ',';
        json += std::to_string(e.shape[k]);
      }
      json += "],\"data_offsets\":[" + std::to_string(offset) + ',' + std::to_string(offset + e.size) + "]}";
      offset += e.size;
    }
    json += '}';
    while (json.size() % 8 != 0) json += ' ';
    std::vector<std::uint8_t> out(8 + json.size());
    for (int k = 0; k < 8; ++k) out[std::size_t(k)] = std::uint8_t(std::uint64_t(json.size()) >> (8 * k));
    std::memcpy(out.data() + 8, json.data(), json.size());
    return out;
  }

  /// Produces the bytes of declared tensor i (its index in the order of
  /// add and declare) into *buffer, which is reused from call to call.
  using produce_fn = std::function<status(std::size_t i, std::vector<std::uint8_t>* buffer)>;

  /// Writes the file to `path` (replacing it) without building it in
  /// memory: the header, then each tensor's bytes, in order; declared
  /// tensors' from produce, which runs on the calling thread while a second
  /// thread writes the tensor before (two buffers), so that producing and
  /// the operating system's copy of the bytes overlap.
  /// @return status::ok; the first status produce returns that is not ok;
  ///         status::bad_shape if it gives a size other than the declared
  ///         tensor's; status::invalid_argument if the file cannot be written
  ///         (`error` receives the reason).
  status write_file(const std::string& path, const produce_fn& produce, std::string* error = nullptr) const {
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) {
      detail::set_error(error, "cannot create " + path + ": " + std::strerror(errno));
      return status::invalid_argument;
    }
    bool written = true;  // every write so far succeeded (touched by one thread at a time)
    auto put = [f, &written](const std::vector<std::uint8_t>* b) {
      written = written && (b->empty() || std::fwrite(b->data(), 1, b->size(), f) == b->size());
    };
    const std::vector<std::uint8_t> head = header_bytes();
    put(&head);
    status st = status::ok;
    std::string why;
    std::vector<std::uint8_t> buffers[2];
    std::thread writer;
    auto wait = [&writer] {
      if (writer.joinable()) writer.join();
    };
    for (std::size_t i = 0; i < entries_.size(); ++i) {
      const entry& e = entries_[i];
      const std::vector<std::uint8_t>* bytes = &e.bytes;
      if (e.declared) {
        std::vector<std::uint8_t>* buffer = &buffers[i % 2];  // the writer holds the other one
        st = produce ? produce(i, buffer) : status::invalid_argument;
        if (st == status::ok && buffer->size() != e.size) st = status::bad_shape;
        if (st != status::ok) {
          why = "tensor \"" + e.name + "\": " + status_string(st);
          break;
        }
        bytes = buffer;
      }
      wait();
      writer = std::thread(put, bytes);
    }
    wait();
    const bool closed = std::fclose(f) == 0;
    if (st == status::ok && !(written && closed)) st = status::invalid_argument;
    if (st != status::ok) detail::set_error(error, why.empty() ? "cannot write " + path : why);
    return st;
  }

 private:
  status check_entry(const std::string& name, tensor_dtype dtype, const std::vector<std::uint64_t>& shape,
                     std::uint64_t* size) const {
    if (name.empty() || name == "__metadata__") return status::invalid_argument;
    for (const auto& e : entries_)
      if (e.name == name) return status::invalid_argument;
    std::uint64_t n = 1;
    for (std::uint64_t d : shape) {
      if (d != 0 && n > ~std::uint64_t(0) / d) return status::bad_shape;
      n *= d;
    }
    if (n > ~std::uint64_t(0) / dtype_size(dtype)) return status::bad_shape;
    *size = n * dtype_size(dtype);
    return status::ok;
  }


  static void append_string(std::string* json, const std::string& s) {
    static const char hex[] = "0123456789abcdef";
    *json += '"';
    for (char ch : s) {
      const unsigned char c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        *json += '\\';
        *json += ch;
      } else if (c < 0x20) {
        *json += "\\u00";
        *json += hex[c >> 4];
        *json += hex[c & 15];
      } else {
        *json += ch;
      }
    }
    *json += '"';
  }

  struct entry {
    std::string name;
    tensor_dtype dtype;
    std::vector<std::uint64_t> shape;
    std::uint64_t size;  // bytes
    bool declared;       // bytes produced by write_file's produce
    std::vector<std::uint8_t> bytes;
  };
  std::vector<entry> entries_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

ECQ_NAMESPACE_END

#endif  // ECQ_IO_SAFETENSORS_HPP
