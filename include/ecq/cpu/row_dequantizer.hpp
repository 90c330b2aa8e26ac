// ecq/cpu/row_dequantizer.hpp — READ ME FIRST
//
// A container's scheme, applied to rows of decoded symbols: the step after
// tensor_decoder (ecq/cpu/tensor_decoder.hpp) in every CPU entry point of
// ecq/cpu/tensor_ops.hpp. Host only.
//
//   row_dequantizer rd;
//   rd.build(tensor);                          // checks the scheme's side data
//   rd.weights(row, first_symbol, symbols, count, w);   // floats
//   rd.bf16_bits(row, first_symbol, symbols, count, h); // bf16 patterns
//
// weights() writes the weights of `count` consecutive symbols of one row,
// symbols[k] being symbol column first_symbol + k, to w[0 .. n) with
// n = min(count * weights_per_symbol, cols - first_symbol * weights_per_symbol):
// the weights a row's padded last symbol carries past `cols` are dropped.
// The values equal the scheme's dequantiser (ecq/schemes/dequantizer.hpp)
// bit for bit: the code-based schemes hoist a group's scale and bias out of
// the loop but compute each weight with the dequantiser's own expression.
// bf16_bits() gives the stored patterns for the lossless bf16 scheme and the
// weights rounded to bfloat16 (to nearest, ties to even) for every other.
//
// The dequantiser is chosen once per tensor (visit_dequantizer) and called
// through one indirection per row segment, so each scheme is compiled once,
// not once per entry point or coder configuration.
//
// One-byte symbols (decode_block's byte overload, alphabets <= 256):
//   rd.weights(row, first_symbol, bytes, count, w, stores);
//   rd.bf16_bits(row, first_symbol, bytes, count, h, stores);
// give the same values. For affine codes of up to 8 bits a symbol without
// raw bits and for the lossless bf16 scheme they run the SIMD row kernels
// (ecq/cpu/detail/row_dequant_simd.hpp) on the path build() chose
// (simd_path(): AVX-512 or AVX2, or scalar for every other scheme, CPU and
// path, where the portable loop runs); row_stores::streaming writes whole 64-byte
// lines of the output with non-temporal stores (the caller then runs
// detail::streaming_fence()).
//
// Trusts what the container's decoders guarantee: row < rows, the symbols
// are a row's symbols (each < alphabet_size), first_symbol + count <=
// symbols_per_row.
#ifndef ECQ_CPU_ROW_DEQUANTIZER_HPP
#define ECQ_CPU_ROW_DEQUANTIZER_HPP

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <type_traits>

#include "../config.hpp"
#include "../container.hpp"
#include "../cpu_features.hpp"
#include "../schemes/scheme.hpp"
#include "../status.hpp"
#include "detail/row_dequant_simd.hpp"
#include "detail/row_group_scatter.hpp"
#include "detail/streaming_copy.hpp"

ECQ_NAMESPACE_BEGIN

namespace detail {

/// Any dequantiser: one call per symbol.
template <class Dequantizer>
void row_weights(const Dequantizer& dq, std::uint64_t cols, std::uint64_t row, std::uint64_t first,
                 const std::uint16_t* symbols, std::size_t count, float* w) {
  constexpr int wps = Dequantizer::weights_per_symbol;
  typename Dequantizer::value_type v[wps];
  const std::uint64_t end = cols - first * wps;
  for (std::size_t k = 0; k < count; ++k) {
    dq(row, first + k, symbols[k], v);
    for (int j = 0; j < wps; ++j)
      if (k * wps + std::size_t(j) < end) w[k * wps + std::size_t(j)] = float(v[j]);
  }
}

/// The code-based schemes share this loop: per group of the row, its side
/// values once, then weight(side, code) for every code of the group.
template <class Packing, class Weight>
void code_row_weights(const std::uint32_t* raw_plane, std::uint64_t symbols_per_row, std::uint32_t group_shift,
                      std::uint64_t cols, std::uint64_t row, std::uint64_t first, const std::uint16_t* symbols,
                      std::size_t count, float* w, Weight&& weight) {
  constexpr int wps = Packing::codes_per_symbol;
  const std::uint64_t group = std::uint64_t(1) << group_shift;
  const std::uint64_t base = row * symbols_per_row + first;
  std::size_t k = 0;
  while (k < count) {
    const std::uint64_t weight0 = (first + k) * wps;
    const std::uint64_t g = weight0 >> group_shift;
    // Symbols of this group (a symbol never straddles two: the caller checks group % wps == 0).
    const std::uint64_t group_end_symbol = ((g + 1) * group) / wps;
    std::size_t stop = std::size_t(group_end_symbol - first);
    if (stop > count) stop = count;
    const auto side = weight.side(row, g);
    for (; k < stop; ++k) {
      const std::uint32_t s = symbols[k];
      const std::uint32_t raw = Packing::raw_field(raw_plane, std::size_t(base + k));
      if constexpr (wps == 1) {
        w[k] = weight(side, Packing::code(s, raw, 0));
      } else {
        const std::uint64_t left = cols - (first + k) * wps;
        for (int j = 0; j < wps; ++j)
          if (std::uint64_t(j) < left) w[k * wps + std::size_t(j)] = weight(side, Packing::code(s, raw, j));
      }
    }
  }
}

template <class Packing>
void row_weights(const affine_dequantizer<Packing>& dq, std::uint64_t cols, std::uint64_t row, std::uint64_t first,
                 const std::uint16_t* symbols, std::size_t count, float* w) {
  if ((std::uint64_t(1) << dq.group_shift) % Packing::codes_per_symbol != 0)
    return row_weights<affine_dequantizer<Packing>>(dq, cols, row, first, symbols, count, w);
  struct side_values {
    float scale, bias;
  };
  struct affine_weight {
    const affine_dequantizer<Packing>& dq;
    side_values side(std::uint64_t r, std::uint64_t g) const {
      const std::uint64_t i = r * dq.groups_per_row + g;
      return {float16_to_float(dq.scales[i], dq.format), float16_to_float(dq.biases[i], dq.format)};
    }
    float operator()(const side_values& s, std::uint32_t code) const { return s.scale * float(code) + s.bias; }
  };
  code_row_weights<Packing>(dq.raw_plane, dq.symbols_per_row, dq.group_shift, cols, row, first, symbols, count, w,
                            affine_weight{dq});
}

template <class Packing>
void row_weights(const codebook_dequantizer<Packing>& dq, std::uint64_t cols, std::uint64_t row, std::uint64_t first,
                 const std::uint16_t* symbols, std::size_t count, float* w) {
  if ((std::uint64_t(1) << dq.group_shift) % Packing::codes_per_symbol != 0)
    return row_weights<codebook_dequantizer<Packing>>(dq, cols, row, first, symbols, count, w);
  struct codebook_weight {
    const codebook_dequantizer<Packing>& dq;
    float side(std::uint64_t r, std::uint64_t g) const {
      return float16_to_float(dq.scales[r * dq.groups_per_row + g], dq.format);
    }
    float operator()(float scale, std::uint32_t code) const { return dq.table[code] * scale; }
  };
  code_row_weights<Packing>(dq.raw_plane, dq.symbols_per_row, dq.group_shift, cols, row, first, symbols, count, w,
                            codebook_weight{dq});
}

/// The raw byte of symbol i of a float16 scheme (one byte per symbol, little-endian words).
inline const std::uint8_t* float16_raw_bytes(const std::uint32_t* raw_plane) {
  return reinterpret_cast<const std::uint8_t*>(raw_plane);
}

template <float16_format Format>
void row_weights(const float16_dequantizer<Format>& dq, std::uint64_t, std::uint64_t row, std::uint64_t first,
                 const std::uint16_t* symbols, std::size_t count, float* w) {
  const std::uint8_t* raw = float16_raw_bytes(dq.raw_plane) + row * dq.symbols_per_row + first;
  for (std::size_t k = 0; k < count; ++k) {
    const std::uint16_t h = float16_split::join(symbols[k], raw[k]);
    w[k] = Format == float16_format::bfloat16 ? bf16_to_float(h) : f16_to_float(h);
  }
}

}  // namespace detail

/// See the file comment. Copyable; holds views into the tensor it was built
/// for, which must outlive it.
class row_dequantizer {
 public:
  using weights_fn = std::function<void(std::uint64_t row, std::uint64_t first_symbol, const std::uint16_t* symbols,
                                        std::size_t count, float* w)>;

  /// path: the instruction-set path of the one-byte symbol calls
  /// (automatic: default_cpu_path(), which honours ECQ_CPU_PATH); a path
  /// this CPU cannot run, or one without a kernel for the scheme, runs the
  /// portable loop.
  /// @return status::ok, or the status of visit_dequantizer (the scheme id,
  ///         parameters or side data do not fit the tensor).
  status build(const encoded_tensor& t, cpu_path path = cpu_path::automatic) {
    const std::uint64_t cols = t.geometry().cols;
    raw_plane_ = nullptr;
    symbols_per_row_ = t.geometry().symbols_per_row;
    plan_ = detail::row_dequant_plan{};
    plan_.cols = cols;
    plan_.symbols_per_row = symbols_per_row_;
    simd_path_ = cpu_path::scalar;
    const status st = visit_dequantizer(t, [&](const auto& dq) {
      using D = std::decay_t<decltype(dq)>;
      weights_per_symbol_ = D::weights_per_symbol;
      weights_ = [dq, cols](std::uint64_t row, std::uint64_t first, const std::uint16_t* s, std::size_t n, float* w) {
        detail::row_weights(dq, cols, row, first, s, n, w);
      };
      if constexpr (std::is_same<D, float16_dequantizer<float16_format::bfloat16>>::value) {
        raw_plane_ = dq.raw_plane;
        plan_.form = detail::row_dequant_plan::scheme_form::bf16;
        plan_.raw = detail::float16_raw_bytes(dq.raw_plane);
      }
      plan_affine(dq);
      return status::ok;
    });
    if (st != status::ok) return st;
    const cpu_path p = path == cpu_path::automatic ? default_cpu_path() : path;
#if ECQ_HAS_X86_KERNELS()
    if (plan_.form != detail::row_dequant_plan::scheme_form::none && (p == cpu_path::avx512 || p == cpu_path::avx2) &&
        cpu_path_supported(p))
      simd_path_ = p;
#endif
    (void)p;
    return status::ok;
  }

  /// The path of the one-byte symbol calls: cpu_path::avx512 or avx2 where
  /// a SIMD kernel runs them, else cpu_path::scalar (the portable loop).
  cpu_path simd_path() const { return simd_path_; }

  int weights_per_symbol() const { return weights_per_symbol_; }
  /// Whether bf16_bits() gives stored patterns (the lossless bf16 scheme) rather than rounded weights.
  bool exact_bf16() const { return raw_plane_ != nullptr; }
  /// The lossless bf16 scheme's raw bytes, one per weight, row-major
  /// (rows x cols; float16_split::join(symbol, byte) is the pattern);
  /// nullptr for every other scheme.
  const std::uint8_t* bf16_raw_bytes() const {
    return raw_plane_ != nullptr ? detail::float16_raw_bytes(raw_plane_) : nullptr;
  }

  /// Weights of `count` symbols of one row; see the file comment.
  void weights(std::uint64_t row, std::uint64_t first_symbol, const std::uint16_t* symbols, std::size_t count,
               float* w) const {
    weights_(row, first_symbol, symbols, count, w);
  }

  /// bfloat16 patterns of the same weights; see the file comment.
  void bf16_bits(std::uint64_t row, std::uint64_t first_symbol, const std::uint16_t* symbols, std::size_t count,
                 std::uint16_t* h, std::uint64_t cols) const {
    if (raw_plane_ != nullptr) {
      const std::uint8_t* raw = detail::float16_raw_bytes(raw_plane_) + row * symbols_per_row_ + first_symbol;
      for (std::size_t k = 0; k < count; ++k) h[k] = float16_split::join(symbols[k], raw[k]);
      return;
    }
    constexpr std::size_t piece = 256;
    float w[piece];
    const std::size_t wps = std::size_t(weights_per_symbol_);
    const std::uint64_t end = cols - first_symbol * wps;  // weights of the row from first_symbol on
    for (std::size_t k = 0; k < count; k += piece / wps) {
      const std::size_t n = count - k < piece / wps ? count - k : piece / wps;
      weights_(row, first_symbol + k, symbols + k, n, w);
      const std::uint64_t done = k * wps;
      const std::size_t m = std::size_t(end - done < n * wps ? end - done : n * wps);
      for (std::size_t j = 0; j < m; ++j) h[done + j] = float_to_bf16(w[j]);
    }
  }

  /// weights() of one-byte symbols; see the file comment.
  void weights(std::uint64_t row, std::uint64_t first_symbol, const std::uint8_t* symbols, std::size_t count, float* w,
               detail::row_stores stores = detail::row_stores::cached) const {
#if ECQ_HAS_X86_KERNELS()
    if (simd_path_ == cpu_path::avx512)
      return detail::dequant_row_avx512(plan_, row, first_symbol, symbols, count, w,
                                        stores == detail::row_stores::streaming, &portable_weights, this);
    if (simd_path_ == cpu_path::avx2)
      return detail::dequant_row_avx2(plan_, row, first_symbol, symbols, count, w,
                                      stores == detail::row_stores::streaming, &portable_weights, this);
#endif
    (void)stores;
    widened(first_symbol, symbols, count, w, [&](std::uint64_t f, const std::uint16_t* s, std::size_t n, float* o) {
      weights(row, f, s, n, o);
    });
  }

  /// bf16_bits() of one-byte symbols; see the file comment.
  void bf16_bits(std::uint64_t row, std::uint64_t first_symbol, const std::uint8_t* symbols, std::size_t count,
                 std::uint16_t* h, detail::row_stores stores = detail::row_stores::cached) const {
#if ECQ_HAS_X86_KERNELS()
    if (simd_path_ == cpu_path::avx512)
      return detail::dequant_row_avx512(plan_, row, first_symbol, symbols, count, h,
                                        stores == detail::row_stores::streaming, &portable_weights, this);
    if (simd_path_ == cpu_path::avx2)
      return detail::dequant_row_avx2(plan_, row, first_symbol, symbols, count, h,
                                      stores == detail::row_stores::streaming, &portable_weights, this);
#endif
    (void)stores;
    const std::uint64_t cols = plan_.cols;
    widened(first_symbol, symbols, count, h,
            [&](std::uint64_t f, const std::uint16_t* s, std::size_t n, std::uint16_t* o) {
              bf16_bits(row, f, s, n, o, cols);
            });
  }

 private:
  template <class D>
  void plan_affine(const D&) {}
  template <class Packing>
  void plan_affine(const affine_dequantizer<Packing>& dq) {
    // Codes of at most 8 bits a symbol, none of them raw (see ecq/cpu/detail/row_dequant_simd.hpp).
    if constexpr (Packing::raw_bits == 0 && Packing::symbol_bits <= 8 && Packing::codes_per_symbol <= 3) {
      plan_.form = detail::row_dequant_plan::scheme_form::affine;
      plan_.codes_per_symbol = Packing::codes_per_symbol;
      plan_.code_bits = Packing::code_bits;
      plan_.format = dq.format;
      plan_.scales = dq.scales;
      plan_.biases = dq.biases;
      plan_.groups_per_row = dq.groups_per_row;
      plan_.group_shift = dq.group_shift;
    }
  }

  // The SIMD kernels' reference for groups with a non-finite side value.
  static void portable_weights(const void* ctx, std::uint64_t row, std::uint64_t first, const std::uint16_t* s,
                               std::size_t n, float* w) {
    static_cast<const row_dequantizer*>(ctx)->weights(row, first, s, n, w);
  }

  // The portable calls on one-byte symbols, widened 256 at a time.
  template <class T, class F>
  void widened(std::uint64_t first, const std::uint8_t* symbols, std::size_t count, T* out,
               F&& f) const {
    constexpr std::size_t piece = 256;
    std::uint16_t s[piece];
    const std::size_t wps = std::size_t(weights_per_symbol_);
    for (std::size_t k = 0; k < count; k += piece) {
      const std::size_t n = count - k < piece ? count - k : piece;
      for (std::size_t i = 0; i < n; ++i) s[i] = symbols[k + i];
      f(first + k, s, n, out + k * wps);
    }
  }

  weights_fn weights_;
  detail::row_dequant_plan plan_;
  cpu_path simd_path_ = cpu_path::scalar;
  const std::uint32_t* raw_plane_ = nullptr;  // set for the lossless bf16 scheme
  std::uint64_t symbols_per_row_ = 0;
  int weights_per_symbol_ = 1;
};

ECQ_NAMESPACE_END

#endif  // ECQ_CPU_ROW_DEQUANTIZER_HPP
