// ecq/io/ecq_file.hpp — READ ME FIRST
//
// The .ecq file: several tensors, each with its name, original shape and
// dtype, in one file -- what `ecq pack` writes and `ecq unpack` reads. A
// thin wrapper: every coded tensor stays a complete, independently valid
// container (own header, table, sections, checksum), so a reader can
// memory-map the file (ecq/io/file_bytes.hpp) and open any tensor in place
// (open_tensor_borrowed). Normative description: docs/format.md, section
// "Multi-tensor files (.ecq)". Host only.
//
//   offset 0    file header, 32 bytes:
//               magic "\x89ECQFILE" (8), version u32 (1 or 2), tensor count u32,
//               directory size u64, XXH64 (seed 0) of the directory u64
//   32          directory, per tensor in file order:
//                 name length u16 (>= 1), name (UTF-8 bytes),
//                 source dtype u8 (tensor_dtype), rank u8 (<= 8), rank x u64 dims,
//                 version 2 only: storage u8 (0 container, 1 raw),
//                 container: offset u64, size u64
//                 raw: the tensor's bytes, elements x dtype size, as in safetensors
//               then metadata count u32 and per entry key length u32, key,
//               value length u32, value (the safetensors __metadata__)
//   ...         the containers, in directory order, each at a multiple of
//               16 bytes; gaps are zero bytes; the file ends with the last
//               container
//
// Raw entries (version 2) keep a tensor's bytes as they are, inside the
// directory, so its checksum covers them: for tensors so small that a
// container's fixed cost (about 170 bytes) would exceed their bytes, and for
// dtypes no scheme codes (integers, booleans, 8-bit and 64-bit floats). A raw
// entry costs its bytes plus one storage byte, 16 bytes less than a container
// entry's offset and size. The writer writes version 1, byte for byte as
// before, when a file has no raw entry, so readers that predate raw entries
// read every file that does not need them; they reject version 2 rather than
// misread a raw entry's bytes as an offset.
//
// An empty tensor (a zero among its dimensions) has no container: its
// offset and size are 0 and it takes no place in the container area. Every
// other tensor has a container (size > 0) or is raw.
//
// All integers little-endian. The shape is the tensor's own (any rank); its
// container holds it as rows = product of all but the last dimension, cols =
// the last dimension (1-D tensors: one row), which the reader checks.
//
// Which path is which: ecq_file_reader::parse is the checked parser for
// untrusted bytes (every length, offset and padding byte is checked, the
// directory checksum verified; nothing is read outside the buffer);
// open_tensor (a copy) and open_tensor_borrowed (in place, no copy) then
// open a container with the container's checked parser.
#ifndef ECQ_IO_ECQ_FILE_HPP
#define ECQ_IO_ECQ_FILE_HPP

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../checksum.hpp"
#include "../config.hpp"
#include "../container.hpp"
#include "../detail/byte_io.hpp"
#include "../schemes/quantized_tensor.hpp"
#include "../status.hpp"
#include "safetensors.hpp"

ECQ_NAMESPACE_BEGIN

inline constexpr std::uint8_t ecq_file_magic[8] = {0x89, 'E', 'C', 'Q', 'F', 'I', 'L', 'E'};
/// The version written when a file has raw entries; files without them are
/// written as version 1 (see the file comment). Readers accept both.
inline constexpr std::uint32_t ecq_file_version = 2;
inline constexpr std::size_t ecq_file_header_size = 32;
/// Largest rank stored (safetensors has no limit; 8 covers every model format in use).
inline constexpr std::uint8_t ecq_file_max_rank = 8;

/// How a tensor's values are stored. Stored in version 2 directories: never renumber.
enum class ecq_storage : std::uint8_t {
  container = 0,  // an encoded container (or nothing, for an empty tensor)
  raw = 1,        // the tensor's bytes, inside the directory
};

/// One directory entry.
struct ecq_file_tensor {
  std::string name;
  tensor_dtype source_dtype = tensor_dtype::f32;
  std::vector<std::uint64_t> shape;
  ecq_storage storage = ecq_storage::container;
  std::uint64_t offset = 0;  // container: from the start of the file (0: empty tensor); raw: of the bytes
  std::uint64_t size = 0;    // container: its size (0: empty tensor); raw: elements x dtype size

  /// @return the product of the dimensions (1 for rank 0). The reader has
  ///         checked that it does not overflow.
  std::uint64_t elements() const {
    std::uint64_t n = 1;
    for (std::uint64_t d : shape) n *= d;
    return n;
  }
};

/// Parsed .ecq file over bytes the caller keeps alive.
class ecq_file_reader {
 public:
  /// CHECKED. Parses and validates data[0..size) (see the file comment).
  /// @return status::ok; status::truncated (shorter than the header, the
  ///         directory, or a container it lists); status::bad_magic;
  ///         status::unsupported_version; status::checksum_mismatch
  ///         (directory); status::corrupt_stream (malformed directory:
  ///         empty or duplicate name, unknown dtype, rank above 8, shape
  ///         product overflow, unknown storage, an empty raw tensor, raw
  ///         bytes past the directory, bytes left over); status::bad_offset
  ///         (containers not where the layout puts them, non-zero gap bytes,
  ///         bytes after the last container, an empty tensor with a
  ///         container or a non-empty one without). `error` receives a message.
  status parse(const std::uint8_t* data, std::size_t size, std::string* error = nullptr) {
    tensors_.clear();
    metadata_.clear();
    data_ = data;
    size_ = size;
    auto fail = [&](status s, const std::string& what) {
      if (error != nullptr) *error = what;
      tensors_.clear();
      metadata_.clear();
      return s;
    };
    if (size < ecq_file_header_size) return fail(status::truncated, "shorter than the 32-byte .ecq header");
    if (std::memcmp(data, ecq_file_magic, sizeof ecq_file_magic) != 0) return fail(status::bad_magic, "not an .ecq file");
    detail::byte_reader h(data + 8, ecq_file_header_size - 8);
    const std::uint32_t version = h.u32();
    const std::uint32_t count = h.u32();
    const std::uint64_t dir_size = h.u64();
    const std::uint64_t dir_hash = h.u64();
    if (version != 1 && version != 2)
      return fail(status::unsupported_version, ".ecq version " + std::to_string(version) + " (this build reads 1 and 2)");
    if (dir_size > size - ecq_file_header_size) return fail(status::truncated, "directory runs past the end of the file");
    const std::uint8_t* dir = data + ecq_file_header_size;
    if (xxh64(dir, std::size_t(dir_size)) != dir_hash) return fail(status::checksum_mismatch, "directory checksum mismatch");

    detail::byte_reader r(dir, std::size_t(dir_size));
    auto bad = [&](const std::string& what) { return fail(status::corrupt_stream, "directory: " + what); };
    // Every entry takes at least 21 bytes (version 2: 7, a raw one-byte
    // scalar with a one-byte name), so count is bounded by the directory.
    if (count > dir_size / (version >= 2 ? 7 : 21)) return bad("tensor count exceeds the directory");
    for (std::uint32_t i = 0; i < count; ++i) {
      ecq_file_tensor t;
      const std::uint16_t n = r.u16();
      if (r.overrun() || n == 0 || r.remaining() < n) return bad("bad name length of tensor " + std::to_string(i));
      t.name.assign(reinterpret_cast<const char*>(dir + r.position()), n);
      r.skip(n);
      const std::uint8_t dtype = r.u8();
      const std::uint8_t rank = r.u8();
      if (r.overrun() || dtype >= tensor_dtype_count || rank > ecq_file_max_rank)
        return bad("bad dtype or rank of \"" + t.name + "\"");
      t.source_dtype = tensor_dtype(dtype);
      std::uint64_t elements = 1;
      for (std::uint8_t k = 0; k < rank; ++k) {
        const std::uint64_t d = r.u64();
        if (!detail::checked_mul(elements, d, &elements)) return bad("shape of \"" + t.name + "\" overflows");
        t.shape.push_back(d);
      }
      const std::uint8_t storage = version >= 2 ? r.u8() : 0;
      if (r.overrun() || storage > std::uint8_t(ecq_storage::raw)) return bad("bad storage of \"" + t.name + "\"");
      t.storage = ecq_storage(storage);
      if (t.storage == ecq_storage::raw) {
        std::uint64_t bytes = 0;
        if (elements == 0 || !detail::checked_mul(elements, dtype_size(t.source_dtype), &bytes) ||
            bytes > r.remaining())
          return bad("raw bytes of \"" + t.name + "\" are empty or run past the directory");
        t.offset = ecq_file_header_size + r.position();
        t.size = bytes;
        r.skip(std::size_t(bytes));
      } else {
        t.offset = r.u64();
        t.size = r.u64();
      }
      if (r.overrun()) return bad("entry of \"" + t.name + "\" is cut short");
      for (const auto& u : tensors_)
        if (u.name == t.name) return bad("duplicate name \"" + t.name + "\"");
      tensors_.push_back(std::move(t));
    }
    const std::uint32_t meta = r.u32();
    if (r.overrun() || meta > r.remaining() / 8) return bad("bad metadata count");
    for (std::uint32_t i = 0; i < meta; ++i) {
      std::string kv[2];
      for (auto& s : kv) {
        const std::uint32_t n = r.u32();
        if (r.overrun() || r.remaining() < n) return bad("metadata entry " + std::to_string(i) + " is cut short");
        s.assign(reinterpret_cast<const char*>(dir + r.position()), n);
        r.skip(n);
      }
      metadata_.emplace_back(std::move(kv[0]), std::move(kv[1]));
    }
    if (r.remaining() != 0) return bad(std::to_string(r.remaining()) + " bytes left over");

    // Containers: each at the next multiple of 16, zero gaps, file ends after the last.
    std::uint64_t cursor = ecq_file_header_size + dir_size;
    for (const auto& t : tensors_) {
      if (t.storage == ecq_storage::raw) continue;  // inside the directory, checked above
      const bool empty = t.elements() == 0;
      if (empty != (t.size == 0))
        return fail(status::bad_offset, empty ? "empty tensor \"" + t.name + "\" has a container"
                                              : "tensor \"" + t.name + "\" has no container");
      if (empty) {
        if (t.offset != 0) return fail(status::bad_offset, "empty tensor \"" + t.name + "\" has a container offset");
        continue;
      }
      const std::uint64_t at = detail::align_up(cursor, container_alignment);
      if (at > size) return fail(status::truncated, "container of \"" + t.name + "\" starts past the end");
      if (t.offset != at) return fail(status::bad_offset, "container of \"" + t.name + "\" is not where the layout puts it");
      if (!detail::all_zero(data + cursor, at - cursor)) return fail(status::bad_offset, "non-zero gap bytes");
      if (t.size > size - at) return fail(status::truncated, "container of \"" + t.name + "\" runs past the end");
      cursor = at + t.size;
    }
    if (cursor != size) return fail(status::bad_offset, std::to_string(size - cursor) + " bytes after the last container");
    return status::ok;
  }

  const std::vector<ecq_file_tensor>& tensors() const { return tensors_; }
  const std::vector<std::pair<std::string, std::string>>& metadata() const { return metadata_; }
  /// @return the container bytes of tensor i (inside the caller's buffer);
  ///         nullptr for an empty or a raw tensor, which have none.
  const std::uint8_t* container_data(std::size_t i) const {
    const ecq_file_tensor& t = tensors_[i];
    return t.size == 0 || t.storage == ecq_storage::raw ? nullptr : data_ + t.offset;
  }
  /// @return the bytes of raw tensor i (tensors()[i].size of them, inside
  ///         the caller's buffer, with no alignment); nullptr for a tensor
  ///         that is not raw.
  const std::uint8_t* raw_data(std::size_t i) const {
    return tensors_[i].storage == ecq_storage::raw ? data_ + tensors_[i].offset : nullptr;
  }

  /// CHECKED: opens tensor i's container (a copy, encoded_tensor::open) and
  /// checks that its rows and cols are those of the tensor's shape.
  /// @return status::invalid_argument for i out of range, an empty or a raw
  ///         tensor (no container: check elements() and storage first); the
  ///         status of encoded_tensor::open; status::bad_shape if the shape
  ///         disagrees.
  status open_tensor(std::size_t i, encoded_tensor* out, open_options o = {}) const {
    return open_checked(i, out, o, false);
  }
  /// CHECKED, without a copy: as open_tensor, with encoded_tensor::open_borrowed
  /// over the bytes given to parse, which must stay alive and unchanged while
  /// *out is used. Containers lie at multiples of 16 from the start of the
  /// file, so this works when the file's first byte is 16-byte aligned (a
  /// memory-mapped file, or ecq/io/file_bytes.hpp's buffer).
  /// @return as open_tensor; status::invalid_argument also when the
  ///         container is not 16-byte aligned in memory.
  status open_tensor_borrowed(std::size_t i, encoded_tensor* out, open_options o = {}) const {
    return open_checked(i, out, o, true);
  }

 private:
  status open_checked(std::size_t i, encoded_tensor* out, open_options o, bool borrow) const {
    *out = encoded_tensor{};
    if (i >= tensors_.size() || container_data(i) == nullptr) return status::invalid_argument;
    const std::size_t n = std::size_t(tensors_[i].size);
    const status st = borrow ? encoded_tensor::open_borrowed(container_data(i), n, out, o)
                             : encoded_tensor::open(container_data(i), n, out, o);
    if (st != status::ok) return st;
    const tensor_geometry& g = out->geometry();
    if (g.rows != shape_rows(tensors_[i].shape) || g.cols != shape_cols(tensors_[i].shape)) {
      *out = encoded_tensor{};
      return status::bad_shape;
    }
    return status::ok;
  }

  std::vector<ecq_file_tensor> tensors_;
  std::vector<std::pair<std::string, std::string>> metadata_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

/// Builds an .ecq file in memory.
class ecq_file_writer {
 public:
  /// Adds a tensor: its name, source dtype, shape and encoded container.
  /// @return status::ok; status::invalid_argument for an empty, over-long
  ///         (> 65535 bytes) or duplicate name, a rank above 8, or an
  ///         encoded_tensor that holds no container;
  ///         status::bad_shape if the container's rows and cols are not the
  ///         shape's.
  status add(const std::string& name, tensor_dtype source_dtype, const std::vector<std::uint64_t>& shape,
             const encoded_tensor& container) {
    if (!name_and_rank_ok(name, shape) || container.size() == 0) return status::invalid_argument;
    if (container.geometry().rows != shape_rows(shape) || container.geometry().cols != shape_cols(shape))
      return status::bad_shape;
    entries_.push_back({name, source_dtype, shape, ecq_storage::container,
                        std::vector<std::uint8_t>(container.data(), container.data() + container.size())});
    return status::ok;
  }
  /// Adds a tensor stored raw: `bytes` are its values as they are (row-major,
  /// little-endian, elements x dtype_size(source_dtype) of them). The file
  /// becomes version 2 (see the file comment).
  /// @return status::ok; status::invalid_argument as add, or for an empty
  ///         tensor (add_empty keeps those); status::bad_shape if bytes does
  ///         not hold exactly the shape's elements.
  status add_raw(const std::string& name, tensor_dtype source_dtype, const std::vector<std::uint64_t>& shape,
                 std::vector<std::uint8_t> bytes) {
    if (!name_and_rank_ok(name, shape)) return status::invalid_argument;
    std::uint64_t n = 1;
    for (std::uint64_t d : shape)
      if (!detail::checked_mul(n, d, &n)) return status::bad_shape;
    if (n == 0) return status::invalid_argument;
    std::uint64_t expect = 0;
    if (!detail::checked_mul(n, dtype_size(source_dtype), &expect) || expect != bytes.size()) return status::bad_shape;
    entries_.push_back({name, source_dtype, shape, ecq_storage::raw, std::move(bytes)});
    return status::ok;
  }
  /// Adds an empty tensor (a zero among `shape`'s dimensions): it is stored
  /// without a container (see the file comment).
  /// @return status::ok; status::invalid_argument as add, or if no
  ///         dimension is zero.
  status add_empty(const std::string& name, tensor_dtype source_dtype, const std::vector<std::uint64_t>& shape) {
    if (!name_and_rank_ok(name, shape) || std::find(shape.begin(), shape.end(), 0u) == shape.end())
      return status::invalid_argument;
    entries_.push_back({name, source_dtype, shape, ecq_storage::container, {}});
    return status::ok;
  }
  void add_metadata(std::string key, std::string value) { metadata_.emplace_back(std::move(key), std::move(value)); }

  /// @return the version serialize writes: 2 if a tensor is raw, else 1.
  std::uint32_t version() const {
    for (const auto& e : entries_)
      if (e.storage == ecq_storage::raw) return 2;
    return 1;
  }

  /// @return the complete file.
  std::vector<std::uint8_t> serialize() const {
    std::vector<std::uint8_t> dir;
    detail::byte_writer d(&dir);
    const std::uint32_t v = version();
    std::uint64_t cursor = ecq_file_header_size + directory_size();
    for (const auto& e : entries_) {
      d.u16(std::uint16_t(e.name.size()));
      d.bytes(reinterpret_cast<const std::uint8_t*>(e.name.data()), e.name.size());
      d.u8(std::uint8_t(e.source_dtype));
      d.u8(std::uint8_t(e.shape.size()));
      for (std::uint64_t x : e.shape) d.u64(x);
      if (v >= 2) d.u8(std::uint8_t(e.storage));
      if (e.storage == ecq_storage::raw) {
        d.bytes(e.bytes.data(), e.bytes.size());
        continue;
      }
      const std::uint64_t at = e.bytes.empty() ? 0 : detail::align_up(cursor, container_alignment);
      d.u64(at);
      d.u64(e.bytes.size());
      if (!e.bytes.empty()) cursor = at + e.bytes.size();
    }
    d.u32(std::uint32_t(metadata_.size()));
    for (const auto& kv : metadata_)
      for (const std::string* s : {&kv.first, &kv.second}) {
        d.u32(std::uint32_t(s->size()));
        d.bytes(reinterpret_cast<const std::uint8_t*>(s->data()), s->size());
      }
    std::vector<std::uint8_t> out;
    detail::byte_writer w(&out);
    w.bytes(ecq_file_magic, sizeof ecq_file_magic);
    w.u32(v);
    w.u32(std::uint32_t(entries_.size()));
    w.u64(dir.size());
    w.u64(xxh64(dir.data(), dir.size()));
    w.bytes(dir.data(), dir.size());
    for (const auto& e : entries_) {
      if (e.bytes.empty() || e.storage == ecq_storage::raw) continue;  // no container
      w.pad_to(container_alignment);
      w.bytes(e.bytes.data(), e.bytes.size());
    }
    return out;
  }

  /// @return the bytes of everything but the containers and the raw
  ///         tensors' bytes: file header, directory (names, shapes,
  ///         metadata) and alignment gaps.
  std::uint64_t wrapper_bytes() const {
    std::uint64_t cursor = ecq_file_header_size + directory_size(), containers = 0;
    for (const auto& e : entries_) {
      if (e.storage == ecq_storage::raw) containers += e.bytes.size();
      if (e.bytes.empty() || e.storage == ecq_storage::raw) continue;
      cursor = detail::align_up(cursor, container_alignment) + e.bytes.size();
      containers += e.bytes.size();
    }
    return cursor - containers;
  }

 private:
  bool name_and_rank_ok(const std::string& name, const std::vector<std::uint64_t>& shape) const {
    if (name.empty() || name.size() > 65535 || shape.size() > ecq_file_max_rank) return false;
    for (const auto& e : entries_)
      if (e.name == name) return false;
    return true;
  }

  std::uint64_t directory_size() const {
    std::uint64_t n = 4;  // metadata count
    const bool v2 = version() >= 2;
    for (const auto& e : entries_)
      n += 2 + e.name.size() + 2 + 8 * e.shape.size() + (v2 ? 1 : 0) +
           (e.storage == ecq_storage::raw ? e.bytes.size() : 16);
    for (const auto& kv : metadata_) n += 8 + kv.first.size() + kv.second.size();
    return n;
  }

  struct entry {
    std::string name;
    tensor_dtype source_dtype;
    std::vector<std::uint64_t> shape;
    ecq_storage storage;
    std::vector<std::uint8_t> bytes;  // the container, or the raw bytes
  };
  std::vector<entry> entries_;
  std::vector<std::pair<std::string, std::string>> metadata_;
};

ECQ_NAMESPACE_END

#endif  // ECQ_IO_ECQ_FILE_HPP
