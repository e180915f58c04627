// The input side of every cell: the projection x_t W_ihᵀ (of all steps before the time
// loop for dense input; for index input, in the loop, a step's columns by the task that
// owns them: gather_input_cols) and the gradient dW_ih = dAᵀ X after it, for dense input
// x (T,B,D) and for index input (SeqDims::ids, one-hot rows given by their index).
//
// Index input: (e_k)ᵀ W_ihᵀ = row k of W_ihᵀ, so the projection of row r is a copy of
// column ids[r] of W_ih (no one-hot, no GEMM); and dW_ih[:, k] = Σ_{r: ids[r] = k} dA[r, :]ᵀ,
// a scatter-add over the rows in order (the same additions for any thread count).
#pragma once

#include "rnnx/common.hpp"
#include "rnnx/gemm.hpp"
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

// out (n x GH, the rows [r0, r0+n) of the projection, row-major) = bias + X[r0:r0+n] W_ihᵀ,
// or for index input bias + the rows ids[r0..r0+n) of W_ihᵀ (bias: GH values or nullptr).
template <typename Out, typename S>
void project_input(Out&& out, const SeqDims& d, const S* x, const InputWeights<S>& w, Index r0,
                   const S* bias) {
  const Index GH = out.cols();
  if (!d.ids) {
    AlignedVec<S> work(size_t(PackedLhs<S>::work_size(d.D, out.rows())));
    rows_times_block(out.rows(), x + r0 * d.D, d.D, w.packed, out.data(), out.outerStride(),
                     bias, work.data());
    return;
  }
  for (Index i = 0; i < out.rows(); ++i) {
    const auto row = MapConstRowVec<S>(w.wt.data() + d.ids[r0 + i] * GH, GH);
    if (bias)
      out.row(i) = row + MapConstRowVec<S>(bias, GH);
    else
      out.row(i) = row;
  }
}

// Index input only: the columns [c0, c0 + c) of the projection's rows [r0, r0 + n), out
// row i at out + i * ldo: the same values as project_input's (the row of W_ihᵀ plus the
// bias, value by value). A time loop's task takes its own units' columns of its step this
// way, just before it adds the step's product to them, instead of a pass over all T*B
// rows before the loop (W_char's LSTM: 13 MB written, then read back a step at a time
// from far caches).
template <typename S>
void gather_input_cols(const SeqDims& d, const InputWeights<S>& w, Index GH, const S* bias,
                       Index r0, Index n, Index c0, Index c, S* out, Index ldo) {
  for (Index i = 0; i < n; ++i) {
    const auto row = MapConstRowVec<S>(w.wt.data() + d.ids[r0 + i] * GH + c0, c);
    if (bias)
      MapRowVec<S>(out + i * ldo, c) = row + MapConstRowVec<S>(bias + c0, c);
    else
      MapRowVec<S>(out + i * ldo, c) = row;
  }
}

// The projection of all T*B rows into out (T*B x GH, row-major), in blocks of rows split
// evenly over the threads (balanced_split: multiples of kRowQuantum rows, whole panels of
// the product's columns, so no sum depends on it).
template <typename S>
void project_inputs(S* out, Index GH, const SeqDims& d, const S* x, const InputWeights<S>& w,
                    const S* bias) {
  const Index TB = d.T * d.B;
  Index rows = 0;
  const Index n_blocks = balanced_split(TB, kRowsPerTask, kRowQuantum, rows);
  parallel_for(n_blocks, [&](Index k) {
    const Block r(k, TB, rows);
    project_input(MapMat<S>(out, TB, GH).middleRows(r.j0, r.c), d, x, w, r.j0, bias);
  }, worth_parallel(double(std::min(TB, rows)) * d.D * GH));
}

// dW_ih (N x D, row-major) = dAᵀ X over the T*B rows, with dA (T*B x N, ld ldda) the
// pre-activation gradients; for index input a scatter-add into dW_ih's columns, the rows
// in order (the same additions as the product, without its zeros), in blocks of gate rows.
// With db, also db = Σ_rows dA (in the product's pass over dA for dense input).
template <typename S>
void input_weight_grad(const SeqDims& d, Index N, const S* da, Index ldda, const S* x, S* dw,
                       S* db = nullptr) {
  const Index TB = d.T * d.B, D = d.D;
  if (!d.ids) {
    weight_grad(TB, D, N, x, D, da, ldda, dw, D, db);
    return;
  }
  if (db) bias_grad(TB, N, da, ldda, db);
  // Each task sums its columns of dA into the rows of a (D x c) block of dW_ihᵀ, a
  // contiguous add of c values per row of dA (adding straight into dW_ih's columns would
  // touch one cache line per value), then transposes the block into dW_ih. As few tasks
  // as the threads (balanced_split: a column's sum is the same whatever the split), each
  // block at most about 512 KB, half an L2: one task of all 1024 columns of W_char's
  // LSTM on one thread reads each row of dA as one run, against four of 256 before (LSTM
  // training 0.8-1.4% less time, GRU 0.6%, A/B).
  const Index max_cols = std::max<Index>(kUnitsPerTask, Index(512 << 10) / Index(sizeof(S)) /
                                                            std::max<Index>(D, 1));
  Index rows = 0;
  const Index n_tasks = balanced_split(N, max_cols, kUnitsPerTask, rows);
  parallel_for(n_tasks, [&](Index k) {
    const Block u(k, N, rows);
    AlignedVec<S> acc(size_t(D * u.c), S(0));
    for (Index r = 0; r < TB; ++r)
      MapRowVec<S>(acc.data() + d.ids[r] * u.c, u.c) += MapConstRowVec<S>(da + r * ldda + u.j0, u.c);
    for (Index j = 0; j < u.c; ++j)
      for (Index i = 0; i < D; ++i) dw[(u.j0 + j) * D + i] = acc[size_t(i * u.c + j)];
  }, worth_parallel(double(TB) * std::min(N, rows)));
}

// A layer's parameter gradients from its pre-activation gradients dA (T*B x N, ld ldda):
// dW_ih as input_weight_grad, dW_hh (N x H) = dAᵀ H_prev and, with db, db = Σ_rows dA.
// For dense input one pass over dA for all three (weight_grads packs dA once for both
// products and sums db from the same panels).
template <typename S>
void layer_weight_grads(const SeqDims& d, Index N, const S* da, Index ldda, const S* x,
                        S* dw_ih, const S* h_prev, S* dw_hh, S* db) {
  const Index TB = d.T * d.B;
  if (d.ids) {
    input_weight_grad(d, N, da, ldda, x, dw_ih);
    weight_grad(TB, d.H, N, h_prev, d.H, da, ldda, dw_hh, d.H, db);
    return;
  }
  const GradOperand<S> ops[2] = {{x, d.D, d.D, dw_ih, d.D}, {h_prev, d.H, d.H, dw_hh, d.H}};
  weight_grads(TB, N, da, ldda, ops, 2, db);
}

}  // namespace rnnx
