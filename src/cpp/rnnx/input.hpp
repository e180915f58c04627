// The input side of every cell: the projection x_t W_ihᵀ of all steps before the time
// loop and the gradient dW_ih = dAᵀ X after it, for dense input x (T,B,D) and for index
// input (SeqDims::ids, one-hot rows given by their index).
//
// Index input: (e_k)ᵀ W_ihᵀ = row k of W_ihᵀ, so the projection of row r is a copy of
// column ids[r] of W_ih (no one-hot, no GEMM); and dW_ih[:, k] = Σ_{r: ids[r] = k} dA[r, :]ᵀ,
// a scatter-add over the rows in order (the same additions for any thread count).
#pragma once

#include "rnnx/common.hpp"

namespace rnnx {

// W_ihᵀ (D x GH), row-major, for index input; empty for dense input.
template <typename S>
AlignedVec<S> input_weights_transposed(const SeqDims& d, const S* w_ih, Index GH) {
  AlignedVec<S> wt;
  if (!d.ids) return wt;
  wt.resize(size_t(d.D * GH));
  MapMat<S>(wt.data(), d.D, GH) = MapConstMat<S>(w_ih, GH, d.D).transpose();
  return wt;
}

// out (n x GH, a block of rows [r0, r0+n) of the projection) = X[r0:r0+n] W_ihᵀ, or for
// index input the rows ids[r0..r0+n) of wt = W_ihᵀ.
template <typename Out, typename S>
void project_input(Out&& out, const SeqDims& d, const MapConstMat<S>& X,
                   const MapConstMat<S>& Wih, const AlignedVec<S>& wt, Index r0) {
  if (!d.ids) {
    matmul<false>(out, X.middleRows(r0, out.rows()), Wih.transpose());
    return;
  }
  const Index GH = out.cols();
  for (Index i = 0; i < out.rows(); ++i)
    out.row(i) = MapConstRowVec<S>(wt.data() + d.ids[r0 + i] * GH, GH);
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
