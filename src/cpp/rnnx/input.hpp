// The input side of every cell: the projection x_t W_ihᵀ of all steps before the time
// loop and the gradient dW_ih = dAᵀ X after it, for dense input x (T,B,D) and for index
// input (SeqDims::ids, one-hot rows given by their index).
//
// Index input: (e_k)ᵀ W_ihᵀ = row k of W_ihᵀ, so the projection of row r is a copy of
// column ids[r] of W_ih (no one-hot, no GEMM); and dW_ih[:, k] = Σ_{r: ids[r] = k} dA[r, :]ᵀ,
// a scatter-add over the rows in order (the same additions for any thread count).
#pragma once

#include "rnnx/common.hpp"
#include "rnnx/packed_gemm.hpp"

namespace rnnx {

// The input projection's weights, prepared once per call: for dense input W_ih packed
// for the micro-kernel (M = GH rows, depth D), for index input W_ihᵀ (D x GH, row-major)
// whose rows the gather copies.
template <typename S>
struct InputWeights {
  PackedLhs<S> packed;
  AlignedVec<S> wt;
  InputWeights(const SeqDims& d, const S* w_ih, Index GH) {
    if (!d.ids) {
      packed = PackedLhs<S>(w_ih, GH, d.D, d.D, false);
      return;
    }
    wt.resize(size_t(d.D * GH));
    MapMat<S>(wt.data(), d.D, GH) = MapConstMat<S>(w_ih, GH, d.D).transpose();
  }
};

// out (n x GH, the rows [r0, r0+n) of the projection, row-major) = X[r0:r0+n] W_ihᵀ, or
// for index input the rows ids[r0..r0+n) of W_ihᵀ.
template <typename Out, typename S>
void project_input(Out&& out, const SeqDims& d, const S* x, const InputWeights<S>& w,
                   Index r0) {
  const Index GH = out.cols();
  if (!d.ids) {
    out.setZero();
    AlignedVec<S> work(size_t(PackedLhs<S>::work_size(d.D, out.rows())));
    w.packed.multiply_add(x + r0 * d.D, out.rows(), d.D, out.data(), out.outerStride(),
                          work.data());
    return;
  }
  for (Index i = 0; i < out.rows(); ++i)
    out.row(i) = MapConstRowVec<S>(w.wt.data() + d.ids[r0 + i] * GH, GH);
}

// dw (c x D, rows [j0, j0+c) of dW_ih) = dAuᵀ X, with dAu (T*B x c) the matching columns
// of the pre-activation gradients; for index input a scatter-add into dw's columns.
template <typename Dw, typename DA, typename S>
void input_weight_grad(Dw&& dw, const SeqDims& d, const DA& dAu, const MapConstMat<S>& X) {
  if (!d.ids) {
    matmul<false>(dw, dAu.transpose(), X);
    return;
  }
  dw.setZero();
  for (Index r = 0; r < dAu.rows(); ++r) dw.col(d.ids[r]) += dAu.row(r).transpose();
}

}  // namespace rnnx
