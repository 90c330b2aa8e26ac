// ecq/device_tensor.cuh — READ ME FIRST
//
// The device loader (CUDA only): a container in the GPU layout
// (ecq/gpu_layout.hpp) goes from host memory to device memory, and the
// collectives get a trivially copyable view of it (cuCollections' owning
// object + ref pattern):
//
//   device_tensor         owns the device copy: the container bytes, verbatim
//                         (one allocation, so the streams, the block index
//                         and the sections keep their 16-byte alignment),
//                         and the narrow decode tables built on the host.
//   device_tensor::load   CHECKED on the host, then stream-ordered: the
//                         container's format rules (encoded_tensor::open, or
//                         ecq_file_reader::open_tensor) and the layout's
//                         (check_gpu_layout) give a status for untrusted
//                         bytes; the bytes then go through pinned staging
//                         with one cudaMemcpyAsync. No full decode on the
//                         host: what the kernels could do wrong is bounded
//                         by sizes checked here (see below).
//   pinned_staging        the reusable page-locked buffer of load; a load
//                         waits (event) until the previous copy out of it
//                         has finished before overwriting it.
//   device_image          the bytes load copies (container + tables), for
//                         pipelines that hold tensors in host memory and
//                         copy them themselves (view_at gives their view).
//   device_tensor_view    what kernels take by value: it is the Tiles /
//                         Streams functor of ecq/fused_gemv.cuh and
//                         ecq/block_decode.cuh, with the activations' K
//                         range optionally split into parts (work item i
//                         enumerated part-major, so a part's items are
//                         contiguous).
//
// Why a corrupt payload cannot make a kernel leave its buffers: the block
// index the kernels read is the one open validated (every stream inside the
// payload, at least the 2 x 32 state words); the warp decoder copies at most
// a stream's num_words words and reads them from its shared-memory ring;
// table slots are state & (2^S - 1) of a 2^S-entry table; raw units and side
// words are read at offsets fixed by the geometry, and the sections' sizes
// are checked to hold them; outputs are indexed by tile and chunk, and rows
// past the tensor's end are left out. A corrupt stream therefore yields
// wrong values, never an access outside these regions; the decode kernels
// (ecq/device_decode.cuh) also check each stream's end (format rules 21, 22)
// and report corrupt_stream.
//
// Lifetime: device memory is freed by the destructor without
// synchronisation; the caller must not destroy a device_tensor while work
// that uses it is still queued.
#ifndef ECQ_DEVICE_TENSOR_CUH
#define ECQ_DEVICE_TENSOR_CUH

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>
#include <vector>

#include "config.hpp"
#include "container.hpp"
#include "fused_gemv.cuh"
#include "gpu_container.hpp"
#include "gpu_layout.hpp"
#include "io/ecq_file.hpp"
#include "status.hpp"
#include "warp_decode.cuh"

ECQ_NAMESPACE_BEGIN

namespace detail {

/// n / d for n < 2^31 by multiply and shift: item enumeration divides by
/// run-time counts in every item, and a 32-bit division costs ~35
/// instructions. Powers of two shift (mul = 0); otherwise mul =
/// ceil(2^(31 + l) / d) with 2^(l-1) < d < 2^l (Granlund-Montgomery).
struct fast_div {
  std::uint32_t d = 1, mul = 0, shift = 0;
  static fast_div of(std::uint32_t d) {
    fast_div f;
    f.d = d;
    std::uint32_t l = 0;
    while ((std::uint64_t(1) << l) < d) ++l;
    if ((std::uint64_t(1) << l) == d) {
      f.shift = l;
    } else {
      f.shift = l - 1;
      f.mul = std::uint32_t(((std::uint64_t(1) << (31 + l)) + d - 1) / d);
    }
    return f;
  }
  ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint32_t div(std::uint32_t n) const {
#if ECQ_IS_DEVICE_CODE()
    return mul == 0 ? n >> shift : __umulhi(n, mul) >> shift;
#else
    return mul == 0 ? n >> shift : std::uint32_t((std::uint64_t(n) * mul) >> 32) >> shift;
#endif
  }
};

}  // namespace detail

/// A device tensor as kernels see it (see the file comment). Stored item s =
/// tile * chunks + chunk (the container's block order); work item i of the
/// functor = (part, tile, chunk within the part), part-major.
struct device_tensor_view {
  const std::uint16_t* payload;  // the container's payload (block streams)
  const std::uint64_t* index;    // the container's block index: (offset, size) in bytes per block
  const std::uint32_t* raw;      // section 10
  const std::uint32_t* side;     // section 11; null for scheme 8
  const std::uint32_t* table;    // narrow entries, gpu_table_kind::gemv
  const std::uint32_t* code_table;  // scheme 9: gpu_table_kind::codes; else null
  std::uint32_t scheme_id, scale_bits, group_size;
  std::uint32_t rows, cols, tiles, chunks, rounds, raw_words, side_words;
  std::uint32_t chunks_per_part;
  detail::fast_div by_per_part, by_chunks_per_part, by_chunks;

  static constexpr std::uint32_t tile_rows = gpu_layout::tile_rows;
  static constexpr std::uint32_t chunk_cols = gpu_layout::chunk_weights;

  /// Work items per K-part (all of them with one part).
  ECQ_HOST_DEVICE std::uint32_t items_per_part() const { return tiles * chunks_per_part; }
  ECQ_HOST_DEVICE std::uint32_t parts() const { return chunks / chunks_per_part; }
  /// Stored block of work item i; *column_in_part = its first weight column
  /// relative to its part.
  ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint32_t stored(std::uint32_t i, std::uint32_t* column_in_part) const {
    const std::uint32_t part = by_per_part.div(i), rem = i - part * by_per_part.d;
    const std::uint32_t tile = by_chunks_per_part.div(rem), c = rem - tile * chunks_per_part;
    *column_in_part = c * chunk_cols;
    return tile * chunks + part * chunks_per_part + c;
  }
  /// The stream of work item i (ecq/warp_decode.cuh's Streams functor).
  ECQ_HOST_DEVICE ECQ_FORCEINLINE tile_stream_view operator()(std::uint32_t i) const {
    std::uint32_t col;
    const std::uint32_t s = stored(i, &col);
    return {payload + index[2 * s] / 2, std::uint32_t(index[2 * s + 1] / 2), rounds};
  }
  /// The rest of work item i (ecq/fused_gemv.cuh's Tiles functor).
  ECQ_HOST_DEVICE ECQ_FORCEINLINE gemv_tile tile(std::uint32_t i) const {
    std::uint32_t col;
    const std::uint32_t s = stored(i, &col);
    return {raw + std::size_t(s) * raw_words, side ? side + std::size_t(s) * side_words : nullptr,
            by_chunks.div(s) * tile_rows, col};
  }
  /// Absolute first weight column of work item i.
  ECQ_HOST_DEVICE ECQ_FORCEINLINE std::uint32_t column(std::uint32_t i) const {
    std::uint32_t col;
    const std::uint32_t s = stored(i, &col);
    return (s - by_chunks.div(s) * chunks) * chunk_cols;
  }
  /// The same tensor with K split into `parts` parts (a divisor of chunks).
  /// @return false (and *out unchanged) if parts does not divide chunks.
  bool with_parts(std::uint32_t parts, device_tensor_view* out) const {
    if (parts == 0 || chunks % parts != 0) return false;
    device_tensor_view v = *this;
    v.chunks_per_part = chunks / parts;
    v.by_per_part = detail::fast_div::of(tiles * v.chunks_per_part);
    v.by_chunks_per_part = detail::fast_div::of(v.chunks_per_part);
    *out = v;
    return true;
  }

  /// The view of a checked layout L whose container bytes are at
  /// `container` in device memory and whose tables are at table /
  /// code_table (device memory; code_table null for scheme 8). K in one part.
  static device_tensor_view of(const gpu_tensor_layout& L, const std::uint8_t* container,
                               const std::uint32_t* table, const std::uint32_t* code_table) {
    device_tensor_view v{};
    v.payload = reinterpret_cast<const std::uint16_t*>(container + L.payload_offset);
    v.index = reinterpret_cast<const std::uint64_t*>(container + L.index_offset);
    v.raw = reinterpret_cast<const std::uint32_t*>(container + L.raw_offset);
    v.side = L.side_offset ? reinterpret_cast<const std::uint32_t*>(container + L.side_offset) : nullptr;
    v.table = table;
    v.code_table = code_table;
    v.scheme_id = L.scheme_id;
    v.scale_bits = L.scale_bits;
    v.group_size = L.group_size;
    v.rows = L.rows;
    v.cols = L.cols;
    v.tiles = L.tiles;
    v.chunks = L.chunks;
    v.rounds = L.rounds;
    v.raw_words = L.raw_words;
    v.side_words = L.side_words;
    v.chunks_per_part = L.chunks;
    v.by_per_part = detail::fast_div::of(L.tiles * L.chunks);
    v.by_chunks_per_part = detail::fast_div::of(L.chunks);
    v.by_chunks = detail::fast_div::of(L.chunks);
    return v;
  }
};

static_assert(std::is_trivially_copyable<device_tensor_view>::value, "device_tensor_view is passed by value into kernels");

/// Page-locked host memory that loads copy through. Move-only.
class pinned_staging {
 public:
  pinned_staging() = default;
  pinned_staging(const pinned_staging&) = delete;
  pinned_staging& operator=(const pinned_staging&) = delete;
  pinned_staging(pinned_staging&& o) noexcept { swap(o); }
  pinned_staging& operator=(pinned_staging&& o) noexcept {
    swap(o);
    return *this;
  }
  ~pinned_staging() {
    if (done_ != nullptr) {
      cudaEventSynchronize(done_);
      cudaEventDestroy(done_);
    }
    if (data_ != nullptr) cudaFreeHost(data_);
  }

  /// Waits for the previous copy out of the buffer and returns room for n
  /// bytes (16-byte aligned). @return null if a CUDA call failed.
  std::uint8_t* acquire(std::size_t n) {
    if (done_ == nullptr && cudaEventCreateWithFlags(&done_, cudaEventDisableTiming) != cudaSuccess) {
      done_ = nullptr;
      return nullptr;
    }
    if (cudaEventSynchronize(done_) != cudaSuccess) return nullptr;
    if (n > capacity_) {
      if (data_ != nullptr) cudaFreeHost(data_);
      data_ = nullptr;
      capacity_ = 0;
      void* p = nullptr;
      if (cudaMallocHost(&p, n) != cudaSuccess) return nullptr;
      data_ = static_cast<std::uint8_t*>(p);
      capacity_ = n;
    }
    return data_;
  }
  /// Marks the buffer busy until the work queued on `stream` so far is done.
  bool release(cudaStream_t stream) { return cudaEventRecord(done_, stream) == cudaSuccess; }

 private:
  void swap(pinned_staging& o) {
    std::swap(data_, o.data_);
    std::swap(capacity_, o.capacity_);
    std::swap(done_, o.done_);
  }
  std::uint8_t* data_ = nullptr;
  std::size_t capacity_ = 0;
  cudaEvent_t done_ = nullptr;
};

/// What load copies to the device for one tensor, built on the host: the
/// container verbatim, then its narrow tables at 256-byte boundaries. A
/// pipeline that keeps tensors in (pinned) host memory and copies them
/// itself places images anywhere 256-byte aligned and takes view_at.
struct device_image {
  gpu_tensor_layout layout{};
  std::size_t table_at = 0, code_table_at = 0;  // byte offsets; code_table_at = 0 for scheme 8
  std::vector<std::uint8_t> bytes;

  /// CHECKED: check_gpu_layout and build_gpu_table, then the bytes.
  /// @return status::ok; else the status of check_gpu_layout or
  ///         build_gpu_table (*out is then empty).
  static status of(const encoded_tensor& t, device_image* out) {
    *out = device_image{};
    device_image m;
    status st = check_gpu_layout(t, &m.layout);
    if (st != status::ok) return st;
    std::vector<std::uint32_t> table, code_table;
    if ((st = build_gpu_table(t, m.layout, gpu_table_kind::gemv, &table)) != status::ok) return st;
    const bool codes = m.layout.scheme_id == gpu_layout::affine4_scheme;
    if (codes && (st = build_gpu_table(t, m.layout, gpu_table_kind::codes, &code_table)) != status::ok) return st;
    m.table_at = (t.size() + 255) / 256 * 256;
    m.code_table_at = codes ? m.table_at + table.size() * 4 : 0;
    m.bytes.assign(m.table_at + (table.size() + code_table.size()) * 4, 0);
    std::memcpy(m.bytes.data(), t.data(), t.size());
    std::memcpy(m.bytes.data() + m.table_at, table.data(), table.size() * 4);
    if (codes) std::memcpy(m.bytes.data() + m.code_table_at, code_table.data(), code_table.size() * 4);
    *out = std::move(m);
    return status::ok;
  }
  /// The view of this image copied to `device` (device memory, 16-byte aligned).
  device_tensor_view view_at(const std::uint8_t* device) const {
    return device_tensor_view::of(layout, device, reinterpret_cast<const std::uint32_t*>(device + table_at),
                                  code_table_at ? reinterpret_cast<const std::uint32_t*>(device + code_table_at)
                                                : nullptr);
  }
};

/// A tensor in device memory (see the file comment). Move-only.
class device_tensor {
 public:
  device_tensor() = default;
  device_tensor(const device_tensor&) = delete;
  device_tensor& operator=(const device_tensor&) = delete;
  device_tensor(device_tensor&& o) noexcept { swap(o); }
  device_tensor& operator=(device_tensor&& o) noexcept {
    swap(o);
    return *this;
  }
  ~device_tensor() {
    if (memory_ != nullptr) cudaFree(memory_);
  }

  /// CHECKED: checks t against the GPU layout, builds its tables and queues
  /// the copy of the container and tables on `stream` through `staging`.
  /// The device copy is ready when the work queued on `stream` is; t may be
  /// destroyed as soon as load returns.
  /// @return status::ok; the status of check_gpu_layout or build_gpu_table;
  ///         status::device_error if a CUDA call failed (out of memory, no
  ///         device, ...). *out is empty unless ok.
  static status load(const encoded_tensor& t, cudaStream_t stream, pinned_staging* staging, device_tensor* out) {
    *out = device_tensor{};
    device_image m;
    const status st = device_image::of(t, &m);
    if (st != status::ok) return st;
    device_tensor d;
    void* mem = nullptr;
    if (cudaMalloc(&mem, m.bytes.size()) != cudaSuccess) return status::device_error;
    d.memory_ = static_cast<std::uint8_t*>(mem);
    d.bytes_ = m.bytes.size();
    std::uint8_t* host = staging->acquire(m.bytes.size());
    if (host == nullptr) return status::device_error;
    std::memcpy(host, m.bytes.data(), m.bytes.size());
    if (cudaMemcpyAsync(d.memory_, host, m.bytes.size(), cudaMemcpyHostToDevice, stream) != cudaSuccess ||
        !staging->release(stream))
      return status::device_error;
    d.layout_ = m.layout;
    d.view_ = m.view_at(d.memory_);
    *out = std::move(d);
    return status::ok;
  }

  /// CHECKED: tensor i of an .ecq file (ecq_file_reader::open_tensor, then
  /// load). @return status::invalid_argument if i is out of range or the
  ///         tensor is empty; else as open_tensor and load.
  static status load(const ecq_file_reader& file, std::size_t i, cudaStream_t stream, pinned_staging* staging,
                     device_tensor* out) {
    *out = device_tensor{};
    encoded_tensor t;
    const status st = file.open_tensor(i, &t);
    if (st != status::ok) return st;
    return load(t, stream, staging, out);
  }

  /// The kernels' view, K in one part (device_tensor_view::with_parts splits it).
  const device_tensor_view& view() const { return view_; }
  const gpu_tensor_layout& layout() const { return layout_; }
  /// Device bytes held: the container plus its tables.
  std::size_t device_bytes() const { return bytes_; }

 private:
  void swap(device_tensor& o) {
    std::swap(memory_, o.memory_);
    std::swap(bytes_, o.bytes_);
    std::swap(layout_, o.layout_);
    std::swap(view_, o.view_);
  }
  std::uint8_t* memory_ = nullptr;
  std::size_t bytes_ = 0;
  gpu_tensor_layout layout_{};
  device_tensor_view view_{};
};

ECQ_NAMESPACE_END

#endif  // ECQ_DEVICE_TENSOR_CUH
