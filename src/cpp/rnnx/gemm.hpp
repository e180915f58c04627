// The whole-sequence products around the time loop, on rnnx's micro-kernel
// (packed_gemm.hpp; Eigen's product on portable builds):
//
//   weight_grad:  C = dAᵀ X over all T*B rows   the weight gradients dW_ih, dW_hh, dW_head
//   rows_times:   Y = A op(W) in row blocks     dx = dA W_ih, dy = dlogits W, logits = y Wᵀ
//
// Every entry of a result is summed over the depth in order, in depth blocks of
// PackedLhs::kDepth, block after block: it depends on the sizes alone, never on the
// number of threads or on how the work is split (bit-identical for any thread count).
#pragma once

#include <algorithm>
#include <cstring>

#include "rnnx/common.hpp"
#include "rnnx/packed_gemm.hpp"
#include "rnnx/packets.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

// C (N x M, row-major, leading dimension ldc) = dAᵀ X summed over R rows:
//   C[j, i] = Σ_r dA[r, j] X[r, i],   X (R x M, ld ldx),  dA (R x N, ld ldda).
// With R = 0, C = 0.
//
// FMA builds: per depth block of rows, X's block is packed into panels of MR columns and
// dA's into panels of NR, both once and shared by all tasks, which then take NC columns
// of dA each; both packings are row-by-row copies (no transposition), because the
// micro-kernel takes its right operand k-major. dA is packed in tiles of 64 rows, each
// tile panel by panel: when each task packed its own NC columns over all kc rows, the
// packing took a fifth of the product's time at W_mid's GRU (pieces of rows 6 KB apart
// at every k); row by row across all panels, every store went to another panel 12 KB
// away. The tiles gave 3-13% more GFLOP/s at R = 6400 with N = 1536 or 1024 (same bits),
// 2-3% less time for a W_mid training step. A panel of dA (kc x NR, 12 KB in float)
// stays in L1 while it meets every panel of X's block, which streams from L2 (measured a
// little faster than the other order, 138-146 against 134-137 GFLOP/s at R = 6400,
// M = N = 1024, float).
template <typename S>
void weight_grad(Index R, Index M, Index N, const S* x, Index ldx, const S* da, Index ldda,
                 S* c, Index ldc) {
  if (M <= 0 || N <= 0) return;
#if defined(__FMA__)
  using Kernel = MicroKernel<S>;
  constexpr Index MR = Kernel::MR, NR = Kernel::NR, KC = PackedLhs<S>::kDepth;
  // Columns per task: at most 24 panels, split evenly over the threads (balanced_split:
  // whole panels, so no sum depends on the split).
  Index NC = 0;
  const Index n_tasks = balanced_split(N, 24 * NR, NR, NC);
  if (R <= 0) {
    for (Index j = 0; j < N; ++j) std::fill_n(c + j * ldc, M, S(0));
    return;
  }
  const Index n_panels = ceil_div(M, MR), kc_max = std::min(KC, R);
  const Index n_bpanels = ceil_div(N, NR);
  AlignedVec<S> apack(size_t(n_panels * MR * kc_max));
  // dA's block: panel q holds columns [q*NR, q*NR+NR) (a task's columns start on a panel).
  AlignedVec<S> bpack(size_t(n_bpanels * NR * kc_max));
  const bool par = worth_parallel(double(kc_max) * M * std::min(N, NC));
  constexpr Index kPanelsPerPackTask = 8, kRowsPerPackTask = 64;
  const Index n_xpack = ceil_div(n_panels, kPanelsPerPackTask);
  for (Index r0 = 0; r0 < R; r0 += KC) {
    const Index kc = std::min(KC, R - r0);
    // Both blocks of rows [r0, r0+kc) packed before the products, shared by all tasks:
    // X's panel p holds columns [p*MR, p*MR+MR): ap[k*MR + i]; dA's panel q holds
    // columns [q*NR, q*NR+NR): bp[q*NR*kc + k*NR + j], packed kRowsPerPackTask rows at a
    // time (the tile's rows stay in L1 from one panel to the next).
    parallel_for(n_xpack + ceil_div(kc, kRowsPerPackTask), [&](Index t) {
      if (t < n_xpack) {
        const Index p1 = std::min(n_panels, (t + 1) * kPanelsPerPackTask);
        for (Index p = t * kPanelsPerPackTask; p < p1; ++p) {
          S* ap = apack.data() + p * MR * kc;
          const Index i0 = p * MR, m = std::min(MR, M - i0);
          for (Index k = 0; k < kc; ++k) copy_padded(x + (r0 + k) * ldx + i0, m, ap + k * MR, MR);
        }
        return;
      }
      const Index k0 = (t - n_xpack) * kRowsPerPackTask, k1 = std::min(kc, k0 + kRowsPerPackTask);
      for (Index q = 0; q < n_bpanels; ++q) {
        const Index n = std::min(NR, N - q * NR);
        const S* src = da + r0 * ldda + q * NR;
        S* dst = bpack.data() + q * NR * kc;
        if (n == NR)  // a fixed-size copy (unmasked moves): the masked store of copy_padded
                      // took 60% of the packing's time (perf); 1-16% more GFLOP/s for the
                      // product (median, R = 2048 to 6400), the most where M is small
          for (Index k = k0; k < k1; ++k) std::memcpy(dst + k * NR, src + k * ldda, sizeof(S) * NR);
        else
          for (Index k = k0; k < k1; ++k) copy_padded(src + k * ldda, n, dst + k * NR, n);
      }
    }, par);
    parallel_for(n_tasks, [&](Index t) {
      const Index j0 = t * NC, nc = std::min(NC, N - j0);
      // Columns past nc are never read: the kernel is told how many there are.
      const S* bp = bpack.data() + j0 * kc;
      if (r0 == 0) {
        if (ldc == M)  // the task's rows of C are one run
          std::fill_n(c + j0 * ldc, nc * M, S(0));
        else
          for (Index j = 0; j < nc; ++j) std::fill_n(c + (j0 + j) * ldc, M, S(0));
      }
      for (Index q = 0; q * NR < nc; ++q)
        for (Index p = 0; p < n_panels; ++p)
          Kernel::template dispatch<true>(int(std::min(NR, nc - q * NR)),
                                          apack.data() + p * MR * kc, bp + q * NR * kc, NR, kc,
                                          c + (j0 + q * NR) * ldc + p * MR, ldc,
                                          std::min(MR, M - p * MR));
    }, par);
  }
#else
  using Stride = Eigen::OuterStride<>;
  constexpr Index NC = 256;
  const Eigen::Map<const RowMat<S>, 0, Stride> X(x, R, M, Stride(ldx)), dA(da, R, N, Stride(ldda));
  Eigen::Map<RowMat<S>, 0, Stride> C(c, N, M, Stride(ldc));
  parallel_for(ceil_div(N, NC), [&](Index t) {
    const Index j0 = t * NC, nc = std::min(NC, N - j0);
    if (R <= 0)
      C.middleRows(j0, nc).setZero();
    else
      matmul<false>(C.middleRows(j0, nc), dA.middleCols(j0, nc).transpose(), X);
  }, worth_parallel(double(R) * M * std::min(N, NC)));
#endif
}

// One block of rows of rows_times (below): Y (n x M) = bias + A (n x K) op(W), in groups
// of kRowGroup rows, each group's rows of Y set to the bias (or zero) just before the
// product adds into them, so that they are still in cache (Y is often tens of MB: filled
// all at once, every line would come back from memory for the product). work:
// PackedLhs::work_size(K, kRowGroup) elements.
// Blocks split at multiples of kRowQuantum rows and groups of kRowGroup: both whole panels
// of 12 (AVX-512) or 6 (AVX2) columns of the product, so that every panel keeps its
// columns whatever the split. A group streams all of W through the cache once: 96 rows
// instead of 48 measured 1-6% more GFLOP/s (rows_times alone, one thread, R = 6400, K and
// M from 256 to 4096, same bits) and 1-5% less time for W_big's RNN forward.
constexpr Index kRowQuantum = 48, kRowGroup = 96;

template <typename S>
void rows_times_block(Index n, const S* a, Index lda, const PackedLhs<S>& w, S* y, Index ldy,
                      const S* bias, S* work) {
#if defined(__FMA__)
  // Whole panels of columns in every group: otherwise a panel's width, and with it the
  // micro-kernel's summation order, would depend on how rows_times splits R.
  static_assert(kRowGroup % MicroKernel<S>::NR == 0 && kRowQuantum % MicroKernel<S>::NR == 0,
                "kRowGroup and kRowQuantum must be whole panels");
#endif
  const Index M = w.rows();
  for (Index i0 = 0; i0 < n; i0 += kRowGroup) {
    const Index g = std::min(kRowGroup, n - i0);
    for (Index i = i0; i < i0 + g; ++i) {
      S* yi = y + i * ldy;
      if (bias)
        copy_padded(bias, M, yi, M);
      else
        std::fill_n(yi, M, S(0));
    }
    w.multiply_add(a + i0 * lda, g, lda, y + i0 * ldy, ldy, work);
  }
}

// Y (R x M, row-major, ld ldy) = A (R x K, ld lda) times w, packed once per call:
//   w = PackedLhs(W, M, K, ldw, true)   for Y = A W  (W is K x M), e.g. dx = dA W_ih;
//   w = PackedLhs(W, M, K, ldw, false)  for Y = A Wᵀ (W is M x K), e.g. logits = y Wᵀ.
// With bias (M values), every row of Y starts from it instead of zero: Y = bias + A op(W).
// In blocks of about kRowsPerTask rows of A (balanced_split); each block's rows are the
// columns of one product.
template <typename S>
void rows_times(Index R, const S* a, Index lda, const PackedLhs<S>& w, S* y, Index ldy,
                const S* bias = nullptr) {
  const Index M = w.rows(), K = w.depth();
  if (R <= 0 || M <= 0) return;
  // Blocks of whole groups of rows, split evenly over the threads (balanced_split: a
  // group's rows are whole panels of columns of the product, so no sum depends on it).
  Index rows = 0;
  const Index n_blocks = balanced_split(R, kRowsPerTask, kRowQuantum, rows);
  const Index work = PackedLhs<S>::work_size(K, std::min(R, rows));
  AlignedVec<S> scratch(size_t(n_blocks * work));
  parallel_for(n_blocks, [&](Index k) {
    const Block r(k, R, rows);
    rows_times_block(r.c, a + r.j0 * lda, lda, w, y + r.j0 * ldy, ldy, bias,
                     scratch.data() + k * work);
  }, worth_parallel(double(std::min(R, rows)) * M * K));
}

// db (N) = Σ_r dA[r, :] over R rows (dA: ld ldda), the rows added in order (the same
// additions whatever the alignment or vector width), in blocks of columns. Within a block of rows, each packet of columns is summed in a register and
// stored once (a row at a time, a partial packet would be stored and loaded back at
// every row); blocks of kRows rows keep the rows in cache while the packets go over them.
template <typename S>
void bias_grad(Index R, Index N, const S* da, Index ldda, S* db) {
  constexpr Index kCols = 256, kRows = 64;
  parallel_for(ceil_div(N, kCols), [&](Index k) {
    const Block u(k, N, kCols);
    S* d = db + u.j0;
    std::fill_n(d, u.c, S(0));
    for (Index r0 = 0; r0 < R; r0 += kRows) {
      const Index r1 = std::min(R, r0 + kRows);
      for_packets<S>(u.c, [&](const Lanes<S>& l) {
        Packet<S> acc = l.load(d);
        for (Index r = r0; r < r1; ++r)
          acc = Eigen::internal::padd(acc, l.load(da + r * ldda + u.j0));
        l.store(d, acc);
      });
    }
  }, worth_parallel(double(R) * std::min(N, kCols)));
}

}  // namespace rnnx
