// A weight matrix packed once for Eigen's GEMM micro-kernel, then multiplied at every
// time step without packing it again.
//
// Eigen's product packs both operands on every call. In the time loop the recurrent
// weights are the same at every step, and repacking them costs a fifth of a step at
// B = 32. PackedLhs packs an (M x K) block of weights once, in fixed depth blocks of
// kDepth (so the summation order depends only on K, never on threads or alignment), and
// multiply_add() packs only the small per-step operand and calls the micro-kernel.
// Built on Eigen 3.4's internal gemm_pack_lhs / gemm_pack_rhs / gebp_kernel, the same
// pieces its general_matrix_matrix_product uses.
#pragma once

#include <Eigen/Core>
#include <algorithm>

#include "rnnx/common.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

template <typename S>
class PackedLhs {
 public:
  static constexpr Index kDepth = 256;
  using Traits = Eigen::internal::gebp_traits<S, S>;

  // A(i, k) = a[i * row_stride + k] (a row-major block) when transpose is false,
  // A(i, k) = a[k * row_stride + i] (the transpose of a row-major block) when true.
  PackedLhs() : M_(0), K_(0) {}
  PackedLhs(const S* a, Index M, Index K, Index row_stride, bool transpose)
      : M_(M), K_(K), packed_(size_t(std::max<Index>(M * K, 1))) {
    for (Index k0 = 0; k0 < K; k0 += kDepth) {
      const Index kc = std::min(kDepth, K - k0);
      S* block = packed_.data() + k0 * M;
      if (transpose) {
        using Mapper = Eigen::internal::const_blas_data_mapper<S, Index, Eigen::ColMajor>;
        Eigen::internal::gemm_pack_lhs<S, Index, Mapper, Traits::mr, Traits::LhsProgress,
                                       typename Traits::LhsPacket4Packing, Eigen::ColMajor>
            pack;
        pack(block, Mapper(a, row_stride).getSubMapper(0, k0), kc, M);
      } else {
        using Mapper = Eigen::internal::const_blas_data_mapper<S, Index, Eigen::RowMajor>;
        Eigen::internal::gemm_pack_lhs<S, Index, Mapper, Traits::mr, Traits::LhsProgress,
                                       typename Traits::LhsPacket4Packing, Eigen::RowMajor>
            pack;
        pack(block, Mapper(a, row_stride).getSubMapper(0, k0), kc, M);
      }
    }
  }

  Index rows() const { return M_; }
  Index depth() const { return K_; }
  // Scratch multiply_add() needs for N columns.
  static Index work_size(Index K, Index N) { return std::min(K, kDepth) * N + 64; }

  // C += A * Bm for Bm(k, j) = b[j * ldb + k] (the transpose of a row-major (N x K)
  // block, e.g. h_{t-1}) and C(i, j) = c[j * ldc + i] (a row-major (N x M) block, e.g.
  // the step's gates). work: work_size(K, N) elements, aligned.
  void multiply_add(const S* b, Index N, Index ldb, S* c, Index ldc, S* work) const {
    using RhsMapper = Eigen::internal::const_blas_data_mapper<S, Index, Eigen::ColMajor>;
    using ResMapper = Eigen::internal::blas_data_mapper<S, Index, Eigen::ColMajor>;
    Eigen::internal::gemm_pack_rhs<S, Index, RhsMapper, Traits::nr, Eigen::ColMajor> pack_rhs;
    Eigen::internal::gebp_kernel<S, S, Index, ResMapper, Traits::mr, Traits::nr> gebp;
    const RhsMapper rhs(b, ldb);
    const ResMapper res(c, ldc);
    for (Index k0 = 0; k0 < K_; k0 += kDepth) {
      const Index kc = std::min(kDepth, K_ - k0);
      pack_rhs(work, rhs.getSubMapper(k0, 0), kc, N);
      gebp(res, packed_.data() + k0 * M_, work, M_, kc, N, S(1));
    }
  }

 private:
  Index M_, K_;
  AlignedVec<S> packed_;
};

// The recurrent weights of time-loop task u, packed once per call.
//
// Forward: the rows q*H + [j0, j0+c) of w_hh (G*H x H) for the gates q in [q0, q1),
// stacked into one ((q1-q0)*c x H) block, so that one product per step gives the task's
// pre-activations of all those gates: C (B x (q1-q0)*c, row-major) += h_{t-1} Wᵀ.
template <typename S>
PackedLhs<S> pack_gate_rows(const S* w_hh, Index H, Index q0, Index q1, const Units& u) {
  const Index n = q1 - q0;
  AlignedVec<S> rows(size_t(n * u.c * H));
  for (Index q = 0; q < n; ++q)
    for (Index i = 0; i < u.c; ++i)
      std::copy_n(w_hh + ((q0 + q) * H + u.j0 + i) * H, H, rows.data() + (q * u.c + i) * H);
  return PackedLhs<S>(rows.data(), n * u.c, H, H, false);
}

// Backward: the columns [j0, j0+c) of the rows [r0, r0+K) of w_hh (G*H x H), as the
// (c x K) left operand of the carry dL/dh_{t}[:, j] = dA_{t+1}[:, r0:r0+K] w_hh[r0:r0+K, j]:
// C (B x c, row-major) += dA Wᵀ-block.
template <typename S>
PackedLhs<S> pack_carry_cols(const S* w_hh, Index H, Index r0, Index K, const Units& u) {
  return PackedLhs<S>(w_hh + r0 * H + u.j0, u.c, K, H, true);
}

}  // namespace rnnx
