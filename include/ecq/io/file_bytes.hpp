// ecq/io/file_bytes.hpp — READ ME FIRST
//
// The read-only bytes of a whole file, 16-byte aligned, for the parsers of
// ecq/io/ (safetensors_file::parse, ecq_file_reader::parse) and for opening
// containers in place (ecq_file_reader::open_tensor_borrowed). Host only.
//
//   file_access::map        memory-map the file (POSIX mmap, read-only,
//                           private): nothing is read until it is touched, so
//                           opening a multi-gigabyte checkpoint and decoding
//                           one tensor reads that tensor's pages only.
//   file_access::read       read the file into owned, 16-byte-aligned memory.
//   file_access::automatic  map where mapping is available, else read.
//
// Mapping is the one part of ecq beyond the C++ standard library: it is
// compiled where <sys/mman.h> exists (Linux, macOS, the BSDs) unless
// ECQ_NO_MMAP is defined, and ECQ_HAVE_MMAP says which (1 or 0); elsewhere
// file_access::map returns status::unsupported_parameters and automatic
// reads. A page-aligned mapping is 16-byte aligned, as is the read buffer.
//
// A mapped file must not be truncated or rewritten while it is mapped (the
// usual rule of mmap: the pages would change under the reader, or a read past
// the new end would fault). Parsers still check everything they read.
#ifndef ECQ_IO_FILE_BYTES_HPP
#define ECQ_IO_FILE_BYTES_HPP

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "../config.hpp"
#include "../status.hpp"

#if !defined(ECQ_NO_MMAP) && defined(__has_include)
#if __has_include(<sys/mman.h>) && __has_include(<sys/stat.h>) && __has_include(<fcntl.h>) && __has_include(<unistd.h>)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#define ECQ_HAVE_MMAP 1
#endif
#endif
#ifndef ECQ_HAVE_MMAP
#define ECQ_HAVE_MMAP 0
#endif

ECQ_NAMESPACE_BEGIN

enum class file_access { automatic, map, read };

/// A whole file's bytes, mapped or read (see the file comment). Move-only.
class file_bytes {
 public:
  file_bytes() = default;
  file_bytes(const file_bytes&) = delete;
  file_bytes& operator=(const file_bytes&) = delete;
  file_bytes(file_bytes&& o) noexcept { *this = std::move(o); }
  file_bytes& operator=(file_bytes&& o) noexcept {
    if (this != &o) {
      release();
      owned_ = std::move(o.owned_);
      data_ = o.data_;
      size_ = o.size_;
      mapped_ = o.mapped_;
      o.data_ = nullptr;
      o.size_ = 0;
      o.mapped_ = false;
    }
    return *this;
  }
  ~file_bytes() { release(); }

  /// Opens `path` with `access`. On failure *out is empty.
  /// @return status::ok; status::invalid_argument if the file cannot be
  ///         opened, sized, mapped or read (`error` receives the reason);
  ///         status::unsupported_parameters for file_access::map where
  ///         mapping is not compiled in (ECQ_HAVE_MMAP is 0).
  static status open(const std::string& path, file_bytes* out, std::string* error = nullptr,
                     file_access access = file_access::automatic) {
    *out = file_bytes{};
    auto fail = [&](status s, const std::string& why) {
      if (error != nullptr) *error = why;
      *out = file_bytes{};
      return s;
    };
#if ECQ_HAVE_MMAP
    if (access != file_access::read) {
      const int fd = ::open(path.c_str(), O_RDONLY);
      if (fd < 0) return fail(status::invalid_argument, "cannot open " + path + ": " + std::strerror(errno));
      struct stat st;
      if (::fstat(fd, &st) != 0) {
        const int e = errno;
        ::close(fd);
        return fail(status::invalid_argument, "cannot stat " + path + ": " + std::strerror(e));
      }
      const bool regular = S_ISREG(st.st_mode);
      if (!regular && access == file_access::map) {
        ::close(fd);
        return fail(status::invalid_argument, "cannot map " + path + ": not a regular file");
      }
      // A pipe or device has no size to map: read it below. An empty regular
      // file maps to nothing (mmap refuses length 0): an empty, valid buffer.
      if (!regular) {
        ::close(fd);
      } else if (st.st_size > 0) {
        void* p = ::mmap(nullptr, std::size_t(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
        const int e = errno;
        ::close(fd);  // the mapping stays valid without the descriptor
        if (p == MAP_FAILED) return fail(status::invalid_argument, "cannot map " + path + ": " + std::strerror(e));
        out->data_ = static_cast<const std::uint8_t*>(p);
        out->size_ = std::size_t(st.st_size);
        out->mapped_ = true;
        return status::ok;
      } else {
        ::close(fd);
        return status::ok;
      }
    }
#else
    if (access == file_access::map)
      return fail(status::unsupported_parameters, "memory mapping is not available in this build");
#endif
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) return fail(status::invalid_argument, "cannot open " + path + ": " + std::strerror(errno));
    std::vector<chunk> buffer;
    std::size_t size = 0;
    for (;;) {
      // Grow by doubling, reading straight into the aligned buffer.
      if (size == buffer.size() * sizeof(chunk)) buffer.resize(buffer.empty() ? 4096 : 2 * buffer.size());
      const std::size_t room = buffer.size() * sizeof(chunk) - size;
      const std::size_t got = std::fread(reinterpret_cast<std::uint8_t*>(buffer.data()) + size, 1, room, f);
      size += got;
      if (got < room) break;
    }
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) return fail(status::invalid_argument, "cannot read " + path);
    buffer.resize((size + sizeof(chunk) - 1) / sizeof(chunk));
    buffer.shrink_to_fit();
    out->owned_ = std::move(buffer);
    out->data_ = reinterpret_cast<const std::uint8_t*>(out->owned_.data());
    out->size_ = size;
    return status::ok;
  }

  /// The bytes (null when the file is empty); 16-byte aligned.
  const std::uint8_t* data() const { return data_; }
  std::size_t size() const { return size_; }
  /// Whether the bytes are a memory mapping (else an owned copy).
  bool mapped() const { return mapped_; }

 private:
  struct alignas(16) chunk {
    std::uint8_t bytes[16];
  };

  void release() {
#if ECQ_HAVE_MMAP
    if (mapped_) ::munmap(const_cast<std::uint8_t*>(data_), size_);
#endif
    owned_.clear();
    data_ = nullptr;
    size_ = 0;
    mapped_ = false;
  }

  std::vector<chunk> owned_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  bool mapped_ = false;
};

ECQ_NAMESPACE_END

#endif  // ECQ_IO_FILE_BYTES_HPP
