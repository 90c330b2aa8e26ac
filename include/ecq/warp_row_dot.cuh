// ecq/warp_row_dot.cuh — READ ME FIRST
//
// Tensor-core dot products for a warp whose lane r holds the weights of row
// r (CUDA only, sm_80+). That is how a warp decodes a 32-row tile
// (ecq/warp_decode.cuh): lane r produces row r's weights column after
// column, and all lanes share the activations of those columns. A GEMV then
// needs y[r] += sum_c w[r][c] * x[c] for 32 rows at once; warp_row_dot does
// it with mma.sync.m16n8k16 (bf16 in, fp32 accumulate) instead of one FFMA
// per weight.
//
// The trick. An m16n8k16 MMA multiplies A (16 x 16) by B (16 x 8). Lane
// l = 4g + t (g = l / 4, t = l % 4) supplies B[2t + j][g] and B[2t + 8 + j][g]
// (j = 0, 1): four k-values of column n = g. Give it the weights of its own
// row at four columns c0..c3: B[2t + j][g] = w[l][c_j], B[2t + 8 + j][g] =
// w[l][c_{2+j}]. Put activations in A only where the row index m = t + 4b
// (b = batch index) meets k in {2t, 2t+1, 2t+8, 2t+9}:
//     A[t + 4b][2t + j] = x_b[c_j],   A[t + 4b][2t + 8 + j] = x_b[c_{2+j}],
// zero elsewhere. Then D[t + 4b][g] = sum_j x_b[c_j] w[4g + t][c_j]: row
// 4g + t, batch b, over the four columns. One MMA does four columns of 32
// rows for up to 4 batch columns; a second one (sets = 2) takes batches 4-7.
// A is 75% zeros, but the MMA still costs one instruction per 128 weights
// where FFMA costs 32.
//
// Fragments. Per four columns (a "quad") the caller gives two bf16x2
// registers: b0 = (w[c0], w[c1]) and b1 = (w[c2], w[c3]) (low half first).
// Activations come from shared memory as ready-made A fragments: per quad,
// records_per_quad 16-byte records, record 2s + l = {x_lo[c0,c1],
// x_hi[c0,c1], x_lo[c2,c3], x_hi[c2,c3]} (bf16x2, low column first) for
// batch columns lo = 4s + l and hi = lo + 2, zero where a batch column does
// not exist. A lane with g % 4 == t loads record 2s + g / 4 straight into
// the MMA's A registers (one LDS.128, no moves); the others keep zeros.
// make_record builds a record (host or device).
//
// Results. d[s][i] holds (row, batch) = (row_of(i), batch_of(s, i)) of the
// tile; with batch 1 only lanes 0-15 hold real values (two rows each).
//
// Example (complete kernel: y = W x for one 32 x K bf16 tile, W row-major,
// x bf16 bits as pairs (x[2i], x[2i+1]), K a multiple of 4, K <= 8192):
//
//   __global__ void k(const std::uint32_t* w, const std::uint32_t* x_pairs, int K, float* y) {
//     __shared__ uint4 act[2048];                          // Batch 1: one record per quad
//     for (int q = threadIdx.x; q < K / 4; q += 32) act[q] = make_uint4(x_pairs[2 * q], 0, x_pairs[2 * q + 1], 0);
//     __syncwarp();
//     ecq::warp_row_dot<1> dot;
//     const std::uint32_t* row = w + (threadIdx.x & 31) * (K / 2);   // lane r = row r, bf16 pairs
//     for (int q = 0; q < K / 4; ++q) {
//       dot.load_activations(act + q * dot.records_per_quad);
//       dot.mma(row[2 * q], row[2 * q + 1]);
//     }
//     if (dot.holds(0, 0, 1)) y[dot.row_of(0)] = dot.d[0][0];
//     if (dot.holds(0, 1, 1)) y[dot.row_of(1)] = dot.d[0][1];
//   }
#ifndef ECQ_WARP_ROW_DOT_CUH
#define ECQ_WARP_ROW_DOT_CUH

#include <cstdint>

#include "config.hpp"
#include "warp_decode.cuh"

ECQ_NAMESPACE_BEGIN

/// @tparam Batch  activation columns (1..8)
template <int Batch>
class warp_row_dot {
  static_assert(Batch >= 1 && Batch <= 8, "Batch must be in [1, 8]");

 public:
  static constexpr int batch = Batch;
  static constexpr int sets = (Batch + 3) / 4;
  /// 16-byte A records per quad of columns in shared memory.
  static constexpr int records_per_quad = Batch == 1 ? 1 : 2 * sets;

  /// Accumulators: d[s][i] for (row_of(i), batch_of(s, i)).
  float d[sets][4];

  ECQ_DEVICE warp_row_dot() {
    const std::uint32_t lane = detail::lane_id();
    g_ = lane >> 2;
    t_ = lane & 3;
    const bool diagonal = (g_ & 3) == t_;
    ECQ_PRAGMA_UNROLL
    for (int s = 0; s < sets; ++s) {
      load_[s] = diagonal && 4u * std::uint32_t(s) + (g_ >> 2) < std::uint32_t(Batch);
      ECQ_PRAGMA_UNROLL
      for (int r = 0; r < 4; ++r) a_[s][r] = 0;
    }
    zero();
  }

  ECQ_DEVICE ECQ_FORCEINLINE void zero() {
    ECQ_PRAGMA_UNROLL
    for (int s = 0; s < sets; ++s)
      ECQ_PRAGMA_UNROLL
      for (int i = 0; i < 4; ++i) d[s][i] = 0.0f;
  }

  /// The A record of batch columns lo and hi = lo + 2 for one quad: x_lo and
  /// x_hi are (x[c0,c1], x[c2,c3]) as bf16x2 (zero for a missing column).
  ECQ_HOST_DEVICE static constexpr uint4 make_record(std::uint32_t lo01, std::uint32_t lo23, std::uint32_t hi01,
                                                     std::uint32_t hi23) {
    return uint4{lo01, hi01, lo23, hi23};
  }

  /// Loads this lane's A registers for one quad: `quad` points at the quad's
  /// records_per_quad records.
  ECQ_DEVICE ECQ_FORCEINLINE void load_activations(const uint4* quad) {
    ECQ_PRAGMA_UNROLL
    for (int s = 0; s < sets; ++s) {
      if (load_[s]) {
        const uint4 v = quad[Batch == 1 ? 0 : 2 * s + int(g_ >> 2)];
        a_[s][0] = v.x;
        a_[s][1] = v.y;
        a_[s][2] = v.z;
        a_[s][3] = v.w;
      }
    }
  }

  /// D += A(loaded quad) x B for the quad's four columns of every row.
  ECQ_DEVICE ECQ_FORCEINLINE void mma(std::uint32_t b0, std::uint32_t b1) { mma(b0, b1, *this); }

  /// D += A x B with the A registers `a` loaded (another accumulator set of
  /// the same lanes, e.g. the other 32 rows of a 64-row tile, whose columns
  /// are the same): one activation load serves both.
  ECQ_DEVICE ECQ_FORCEINLINE void mma(std::uint32_t b0, std::uint32_t b1, const warp_row_dot& a) {
    ECQ_PRAGMA_UNROLL
    for (int s = 0; s < sets; ++s) {
      asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, "
          "{%0,%1,%2,%3};\n"
          : "+f"(d[s][0]), "+f"(d[s][1]), "+f"(d[s][2]), "+f"(d[s][3])
          : "r"(a.a_[s][0]), "r"(a.a_[s][1]), "r"(a.a_[s][2]), "r"(a.a_[s][3]), "r"(b0), "r"(b1));
    }
  }

  /// Tile row of accumulator i (0..3).
  ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t row_of(int i) const { return 8 * t_ + 4 * std::uint32_t(i & 1) + (g_ & 3); }
  /// Batch column of accumulator d[s][i].
  ECQ_DEVICE ECQ_FORCEINLINE std::uint32_t batch_of(int s, int i) const {
    return 4u * std::uint32_t(s) + 2u * std::uint32_t(i >> 1) + (g_ >> 2);
  }
  /// Whether d[s][i] is a real result for `batch` columns.
  ECQ_DEVICE ECQ_FORCEINLINE bool holds(int s, int i, int batch_columns) const {
    return batch_of(s, i) < std::uint32_t(batch_columns);
  }

 private:
  std::uint32_t g_, t_;
  bool load_[sets];
  std::uint32_t a_[sets][4];  // R0..R3 of the m16n8k16 A fragment
};

ECQ_NAMESPACE_END

#endif  // ECQ_WARP_ROW_DOT_CUH
