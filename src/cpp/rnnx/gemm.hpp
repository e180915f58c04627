// The whole-sequence products around the time loop, on rnnx's micro-kernel
// (packed_gemm.hpp; Eigen's product on portable builds):
//
//   weight_grads: C = dAᵀ X over all T*B rows   the weight gradients dW_ih, dW_hh, dW_head
//                 (up to two X per pass over dA, and the bias gradient Σ_rows dA)
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

// db (N) = Σ_r dA[r, :] over R rows (dA: ld ldda), the rows added in order (the same
// additions whatever the alignment or vector width), in blocks of columns. Within a block
// of rows, each packet of columns is summed in a register and stored once (a row at a
// time, a partial packet would be stored and loaded back at every row); blocks of kRows
// rows keep the rows in cache while the packets go over them.
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

// One weight gradient of weight_grads (below): C (N x M, row-major, leading dimension
// ldc) = dAᵀ X, X (R x M, ld ldx).
template <typename S>
struct GradOperand {
  const S* x;
  Index M, ldx;
  S* c;
  Index ldc;
};

// For each operand: C (N x M, row-major, leading dimension ldc) = dAᵀ X summed over R rows:
//   C[j, i] = Σ_r dA[r, j] X[r, i],   X (R x M, ld ldx),  dA (R x N, ld ldda);
// and with db, db (N) = Σ_r dA[r, :] (as bias_grad), all in one pass over dA (e.g. dW_ih,
// dW_hh and db of a layer: dA is packed once, not once per product). With R = 0, C = 0
// and db = 0.
//
// FMA builds: per depth block of rows, the X blocks are packed into panels of MR columns
// and dA's into panels of NR, both once and shared by all tasks, which then take NC
// columns of dA each; both packings are row-by-row copies (no transposition), because the
// micro-kernel takes its right operand k-major. dA is packed in tiles of 64 rows, each
// tile panel by panel (3-13% more GFLOP/s at R = 6400 than when each task packed its own
// columns over all kc rows, reading rows 6 KB apart at every k; same bits). A panel of dA
// (kc x NR, 12 KB in float) stays in L1 while it meets every panel of the X blocks, which
// stream from L2 (a little faster than the other order: 138-146 against 134-137 GFLOP/s
// at R = 6400, M = N = 1024, float). Each call of the micro-kernel asks the next panel of
// X into L2 as it goes (see MicroKernel::run; C++ harness, one thread, R = 6400: 1-13%
// more GFLOP/s, the most for N = 1536 and M = 256 or 512). db is summed from the same
// panels, the rows in order: the same additions as bias_grad.
template <typename S>
void weight_grads(Index R, Index N, const S* da, Index ldda, const GradOperand<S>* ops,
                  int n_ops, S* db) {
  constexpr int kMaxOps = 2;
  RNNX_REQUIRE(n_ops >= 0 && n_ops <= kMaxOps, "weight_grads: at most 2 operands");
  if (N <= 0 || (n_ops == 0 && !db)) return;
#if defined(__FMA__)
  using Kernel = MicroKernel<S>;
  constexpr Index MR = Kernel::MR, NR = Kernel::NR, KC = PackedLhs<S>::kDepth;
  // Columns per task: at most 24 panels, split evenly over the threads (balanced_split:
  // whole panels, so no sum depends on the split).
  Index NC = 0;
  const Index n_tasks = balanced_split(N, 24 * NR, NR, NC);
  if (R <= 0) {
    for (int o = 0; o < n_ops; ++o)
      for (Index j = 0; j < N; ++j) std::fill_n(ops[o].c + j * ops[o].ldc, ops[o].M, S(0));
    if (db) std::fill_n(db, N, S(0));
    return;
  }
  // The operands' panels one after the other: operand o's panel p is panel first[o] + p.
  Index first[kMaxOps + 1] = {0}, m_total = 0;
  for (int o = 0; o < n_ops; ++o) {
    first[o + 1] = first[o] + ceil_div(ops[o].M, MR);
    m_total += ops[o].M;
  }
  const Index n_panels = first[n_ops], kc_max = std::min(KC, R), n_bpanels = ceil_div(N, NR);
  // Small products (one depth block, one task, every X a packet of columns wide; e.g.
  // W_tiny's dW_ih, dW_hh and the head's dW): X and dA are read where they lie, with the
  // micro-kernel's in-place A and dA's rows as its k-major B. The same values in the same
  // lanes and order as from the packed panels, so the same bits, without the two packing
  // passes, their buffers and their parallel regions (a W_tiny Tagger training call, with
  // its two calls here: 49.7K -> 44.7K instructions, callgrind).
  bool in_place = R <= KC && n_tasks == 1 && R * (N + m_total) <= 4096;
  for (int o = 0; o < n_ops; ++o) in_place = in_place && ops[o].M <= Kernel::kLanes;
  if (in_place) {
    for (int o = 0; o < n_ops; ++o)
      for (Index j = 0; j < N; ++j) std::fill_n(ops[o].c + j * ops[o].ldc, ops[o].M, S(0));
    if (db) std::fill_n(db, N, S(0));
    for (Index q = 0; q < n_bpanels; ++q) {
      const Index n = std::min(NR, N - q * NR);
      const S* bq = da + q * NR;  // B(k, j) = bq[k * ldda + j]
      if (db)  // the rows in order, as below
        for_packets<S>(n, [&](const Lanes<S>& l) {
          S* d = db + q * NR;
          Packet<S> acc = l.load(d);
          for (Index k = 0; k < R; ++k) acc = Eigen::internal::padd(acc, l.load(bq + k * ldda));
          l.store(d, acc);
        });
      for (int o = 0; o < n_ops; ++o)
        Kernel::template dispatch_half<true, NR, true, true>(
            int(n), ops[o].x, bq, ldda, R, ops[o].c + q * NR * ops[o].ldc, ops[o].ldc, ops[o].M,
            ops[o].ldx);
    }
    return;
  }
  AlignedVec<S> apack(size_t(std::max<Index>(n_panels, 1) * MR * kc_max));
  // dA's block: panel q holds columns [q*NR, q*NR+NR) (a task's columns start on a panel).
  AlignedVec<S> bpack(size_t(n_bpanels * NR * kc_max));
  const bool par = worth_parallel(double(kc_max) * std::max<Index>(m_total, 1) * std::min(N, NC));
  constexpr Index kPanelsPerPackTask = 8, kRowsPerPackTask = 64;
  const Index n_xpack = ceil_div(n_panels, kPanelsPerPackTask);
  for (Index r0 = 0; r0 < R; r0 += KC) {
    const Index kc = std::min(KC, R - r0);
    // The blocks of rows [r0, r0+kc) packed before the products, shared by all tasks:
    // X's panel p holds columns [p*MR, p*MR+MR): ap[k*MR + i]; dA's panel q holds
    // columns [q*NR, q*NR+NR): bp[q*NR*kc + k*NR + j], packed kRowsPerPackTask rows at a
    // time (the tile's rows stay in L1 from one panel to the next).
    parallel_for(n_xpack + ceil_div(kc, kRowsPerPackTask), [&](Index t) {
      if (t < n_xpack) {
        const Index g1 = std::min(n_panels, (t + 1) * kPanelsPerPackTask);
        for (Index g = t * kPanelsPerPackTask; g < g1; ++g) {
          int o = 0;
          while (g >= first[o + 1]) ++o;
          const GradOperand<S>& op = ops[o];
          S* ap = apack.data() + g * MR * kc;
          const Index i0 = (g - first[o]) * MR, m = std::min(MR, op.M - i0);
          for (Index k = 0; k < kc; ++k)
            copy_padded(op.x + (r0 + k) * op.ldx + i0, m, ap + k * MR, MR);
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
        for (int o = 0; o < n_ops; ++o) {
          const GradOperand<S>& op = ops[o];
          if (op.ldc == op.M)  // the task's rows of C are one run
            std::fill_n(op.c + j0 * op.ldc, nc * op.M, S(0));
          else
            for (Index j = 0; j < nc; ++j) std::fill_n(op.c + (j0 + j) * op.ldc, op.M, S(0));
        }
        if (db) std::fill_n(db + j0, nc, S(0));
      }
      for (Index q = 0; q * NR < nc; ++q) {
        const Index n = std::min(NR, nc - q * NR);
        const S* bq = bp + q * NR * kc;
        if (db)  // this block's rows of the panel, in order, onto the sums so far
          for_packets<S>(n, [&](const Lanes<S>& l) {
            S* d = db + j0 + q * NR;
            Packet<S> acc = l.load(d);
            for (Index k = 0; k < kc; ++k) acc = Eigen::internal::padd(acc, l.load(bq + k * NR));
            l.store(d, acc);
          });
        for (int o = 0; o < n_ops; ++o) {
          const GradOperand<S>& op = ops[o];
          for (Index p = 0; p < first[o + 1] - first[o]; ++p) {
            const Index g = first[o] + p;
            const S* next = g + 1 < n_panels ? apack.data() + (g + 1) * MR * kc : nullptr;
            const Index m = std::min(MR, op.M - p * MR);
            S* cp = op.c + (j0 + q * NR) * op.ldc + p * MR;
            if (m <= Kernel::kLanes)  // one packet of rows (MicroKernel::run's Half)
              Kernel::template dispatch_half<true>(int(n), apack.data() + g * MR * kc, bq, NR,
                                                   kc, cp, op.ldc, m);
            else
              Kernel::template dispatch<true>(int(n), apack.data() + g * MR * kc, bq, NR, kc,
                                              cp, op.ldc, m, next);
          }
        }
      }
    }, par);
  }
#else
  using Stride = Eigen::OuterStride<>;
  constexpr Index NC = 256;
  const Index rows = std::max<Index>(R, 0);
  const Eigen::Map<const RowMat<S>, 0, Stride> dA(da, rows, N, Stride(ldda));
  for (int o = 0; o < n_ops; ++o) {
    const GradOperand<S>& op = ops[o];
    const Eigen::Map<const RowMat<S>, 0, Stride> X(op.x, rows, op.M, Stride(op.ldx));
    Eigen::Map<RowMat<S>, 0, Stride> C(op.c, N, op.M, Stride(op.ldc));
    parallel_for(ceil_div(N, NC), [&](Index t) {
      const Index j0 = t * NC, nc = std::min(NC, N - j0);
      if (rows == 0)
        C.middleRows(j0, nc).setZero();
      else
        matmul<false>(C.middleRows(j0, nc), dA.middleCols(j0, nc).transpose(), X);
    }, worth_parallel(double(rows) * op.M * std::min(N, NC)));
  }
  if (db) bias_grad(rows, N, da, ldda, db);
#endif
}

// C (N x M, row-major, leading dimension ldc) = dAᵀ X summed over R rows (one operand of
// weight_grads), and with db, db = Σ_r dA[r, :].
template <typename S>
void weight_grad(Index R, Index M, Index N, const S* x, Index ldx, const S* da, Index ldda,
                 S* c, Index ldc, S* db = nullptr) {
  const GradOperand<S> op{x, M, ldx, c, ldc};
  weight_grads(R, N, da, ldda, &op, M > 0 ? 1 : 0, db);
}

// One block of rows of rows_times (below): Y (n x M) = bias + A (n x K) op(W), in groups
// of kRowGroup rows. Y is written once, the bias (or +0) added to each sum as it is stored
// (PackedLhs::multiply_bias: the same bits as Y set to the bias and the product added).
// Setting the rows first cost a pass over Y (tens of MB at W_big's sizes), and at W_tiny's
// a partial packet's masked store per row that the product's loads then waited on: 2.0K
// of the 21.3K instructions of a Tagger forward call (callgrind). work:
// PackedLhs::work_size(K, min(n, kRowGroup)) elements.
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
  // No bias: a bias of +0, so that a sum of -0 still comes out +0 as 0 + sum did.
  const AlignedVec<S> zeros(bias ? 0 : size_t(w.rows()), S(0));
  for (Index i0 = 0; i0 < n; i0 += kRowGroup) {
    const Index g = std::min(kRowGroup, n - i0);
    w.multiply_bias(a + i0 * lda, g, lda, y + i0 * ldy, ldy, work, bias ? bias : zeros.data());
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
  // Blocks of whole multiples of kRowQuantum rows, split evenly over the threads
  // (balanced_split: whole panels of columns of the product, so no sum depends on it).
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

}  // namespace rnnx
