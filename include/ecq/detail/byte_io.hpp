// ecq/detail/byte_io.hpp — READ ME FIRST
//
// Machinery for the container and table serialisation (host only):
//   byte_reader   a bounded cursor over untrusted bytes. Every read checks the
//                 remaining length first; a read past the end returns 0 and
//                 sets a sticky `overrun` flag, so a parser can read a group
//                 of fields and test the flag once (zstd style).
//   byte_writer   appends little-endian fields and varints to a std::vector.
//   checked_add / checked_mul   64-bit arithmetic that reports overflow, for
//                 sizes computed from untrusted header fields.
//
// Varints are unsigned LEB128: 7 bits per byte, least significant group
// first, high bit set on every byte but the last. Readers accept only the
// canonical (shortest) encoding of a value of at most `max_bits` bits, so
// each value has exactly one encoding.
#ifndef ECQ_DETAIL_BYTE_IO_HPP
#define ECQ_DETAIL_BYTE_IO_HPP

#include <cstddef>
#include <cstdint>
#include <vector>

#include "../config.hpp"

ECQ_NAMESPACE_BEGIN

namespace detail {

/// @return false if a + b overflows; else true with the sum in *out.
inline bool checked_add(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  *out = a + b;
  return *out >= a;
}

/// @return false if a * b overflows; else true with the product in *out.
inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t* out) {
  *out = a * b;
  return a == 0 || *out / a == b;
}

/// @return x rounded up to a multiple of the power of two `alignment`
///         (callers keep x far below 2^64, see the container limits).
inline constexpr std::uint64_t align_up(std::uint64_t x, std::uint64_t alignment) {
  return (x + alignment - 1) & ~(alignment - 1);
}

class byte_reader {
 public:
  byte_reader(const std::uint8_t* data, std::size_t size) : data_(data), size_(size) {}

  std::size_t position() const { return pos_; }
  std::size_t remaining() const { return size_ - pos_; }
  /// True once any read went past the end (sticky).
  bool overrun() const { return overrun_; }
  /// True once a varint was not canonical or too large (sticky).
  bool malformed() const { return malformed_; }

  std::uint8_t u8() { return std::uint8_t(le(1)); }
  std::uint16_t u16() { return std::uint16_t(le(2)); }
  std::uint32_t u32() { return std::uint32_t(le(4)); }
  std::uint64_t u64() { return le(8); }
  /// Moves past n bytes (all remaining ones and sets overrun if fewer remain).
  void skip(std::size_t n) {
    if (size_ - pos_ < n) {
      overrun_ = true;
      pos_ = size_;
      return;
    }
    pos_ += n;
  }

  /// Reads a canonical LEB128 varint of at most `max_bits` (<= 63) bits.
  std::uint64_t varint(int max_bits) {
    std::uint64_t value = 0;
    for (int shift = 0;; shift += 7) {
      if (pos_ >= size_) {
        overrun_ = true;
        return 0;
      }
      const std::uint8_t b = data_[pos_++];
      const std::uint64_t group = b & 0x7f;
      // A group that does not fit max_bits, or a final zero group after the
      // first (an overlong encoding), is rejected.
      if (shift >= max_bits || (group >> (max_bits - shift)) != 0 || (shift > 0 && b == 0)) {
        malformed_ = true;
        return 0;
      }
      value |= group << shift;
      if ((b & 0x80) == 0) return value;
    }
  }

 private:
  std::uint64_t le(int bytes) {
    if (size_ - pos_ < std::size_t(bytes)) {
      overrun_ = true;
      pos_ = size_;
      return 0;
    }
    std::uint64_t v = 0;
    for (int k = 0; k < bytes; ++k) v |= std::uint64_t(data_[pos_ + std::size_t(k)]) << (8 * k);
    pos_ += std::size_t(bytes);
    return v;
  }

  const std::uint8_t* data_;
  std::size_t size_;
  std::size_t pos_ = 0;
  bool overrun_ = false;
  bool malformed_ = false;
};

class byte_writer {
 public:
  explicit byte_writer(std::vector<std::uint8_t>* out) : out_(out) {}

  void u8(std::uint8_t v) { le(v, 1); }
  void u16(std::uint16_t v) { le(v, 2); }
  void u32(std::uint32_t v) { le(v, 4); }
  void u64(std::uint64_t v) { le(v, 8); }
  void bytes(const std::uint8_t* p, std::size_t n) { out_->insert(out_->end(), p, p + n); }
  /// Appends zero bytes up to the next multiple of `alignment` (a power of two).
  void pad_to(std::size_t alignment) { out_->resize(std::size_t(align_up(out_->size(), alignment)), 0); }
  void varint(std::uint64_t v) {
    while (v >= 0x80) {
      out_->push_back(std::uint8_t(v | 0x80));
      v >>= 7;
    }
    out_->push_back(std::uint8_t(v));
  }

 private:
  void le(std::uint64_t v, int bytes) {
    for (int k = 0; k < bytes; ++k) out_->push_back(std::uint8_t(v >> (8 * k)));
  }
  std::vector<std::uint8_t>* out_;
};

}  // namespace detail

ECQ_NAMESPACE_END

#endif  // ECQ_DETAIL_BYTE_IO_HPP
