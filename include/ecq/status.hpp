// ecq/status.hpp — READ ME FIRST
//
// Every function that reads untrusted bytes, or can fail for a reason the
// caller cannot rule out in advance, returns an ecq::status. Device code
// cannot throw, so this is the only error channel of the library.
//
// The numeric values are stable: they are part of the API and may be stored
// or compared across versions. New codes are only ever appended.
#ifndef ECQ_STATUS_HPP
#define ECQ_STATUS_HPP

#include "config.hpp"

ECQ_NAMESPACE_BEGIN

enum class status : int {
  ok = 0,
  invalid_argument = 1,      // caller passed parameters outside the documented range
  output_too_small = 2,      // a caller-provided buffer cannot hold the result
  truncated = 3,             // encoded data ends before the decoder is done
  corrupt_stream = 4,        // rANS states or words inconsistent with the table
  corrupt_table = 5,         // frequency table does not sum to 2^ScaleBits, bad symbol, ...
  bad_magic = 6,             // container does not start with the ecq magic bytes
  unsupported_version = 7,   // container version this build cannot read
  bad_offset = 8,            // an offset or size points outside the container
  bad_shape = 9,             // tensor shape or block geometry is inconsistent
  checksum_mismatch = 10,    // content checksum differs from the stored one
  unsupported_parameters = 11,  // valid format, but parameters this build has no decoder for
  too_many_symbols = 12,     // more present symbols than 2^ScaleBits slots
  trailing_data = 13,        // decoding finished but unread words remain
  device_error = 14,         // a CUDA call failed (no device, out of device or pinned memory, ...)
};

/// @return a short, stable, human-readable name for `s` ("ok", "truncated", ...).
ECQ_HOST_DEVICE constexpr const char* status_string(status s) noexcept {
  switch (s) {
    case status::ok: return "ok";
    case status::invalid_argument: return "invalid argument";
    case status::output_too_small: return "output buffer too small";
    case status::truncated: return "truncated data";
    case status::corrupt_stream: return "corrupt rANS stream";
    case status::corrupt_table: return "corrupt frequency table";
    case status::bad_magic: return "bad magic";
    case status::unsupported_version: return "unsupported version";
    case status::bad_offset: return "offset or size out of bounds";
    case status::bad_shape: return "inconsistent shape";
    case status::checksum_mismatch: return "checksum mismatch";
    case status::unsupported_parameters: return "unsupported parameters";
    case status::too_many_symbols: return "more symbols than frequency slots";
    case status::trailing_data: return "trailing data after the stream";
    case status::device_error: return "CUDA call failed";
  }
  return "unknown status";
}

ECQ_HOST_DEVICE constexpr bool is_ok(status s) noexcept { return s == status::ok; }

ECQ_NAMESPACE_END

#endif  // ECQ_STATUS_HPP
