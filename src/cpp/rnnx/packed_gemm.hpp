// A weight matrix packed once for the micro-kernel, then multiplied at every time step
// without packing it again, and rnnx's own FMA micro-kernel (gemm.hpp builds the
// whole-sequence products on the same kernel).
//
// Eigen's product packs both operands on every call. In the time loop the recurrent
// weights are the same at every step, and repacking them costs a fifth of a step at
// B = 32. PackedLhs packs an (M x K) block of weights once, in fixed depth blocks of
// kDepth (so the summation order depends only on K, never on threads or alignment), and
// multiply_add() reads the per-step operand in place and calls the micro-kernel. On
// portable builds (no FMA) it is built on Eigen 3.4's internal gemm_pack_lhs /
// gemm_pack_rhs / gebp_kernel, the same pieces its general_matrix_matrix_product uses.
#pragma once

#include <Eigen/Core>
#include <algorithm>

#include "rnnx/common.hpp"
#include "rnnx/packets.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

#if defined(__FMA__)
// rnnx's own micro-kernel (FMA builds): C (MR x NR) += A-panel (MR x kc) * B-panel (kc x NR),
// MR = two SIMD packets of rows, NR columns held as 2*NR accumulator registers (NR = 12
// with AVX-512's 32 registers, 6 with AVX2's 16). Eigen 3.4's own kernel keeps 3x4
// packets, which measured about 70% of what the machine's best GEMM reaches.
// Complete unrolling of the loops over the accumulators, so that they live in registers:
// left to itself GCC kept them in an array on the stack (a store after every FMA, half
// the speed).
#if defined(__clang__)
#define RNNX_UNROLL _Pragma("unroll")
#elif defined(__GNUC__)
#define RNNX_UNROLL _Pragma("GCC unroll 32")
#else
#define RNNX_UNROLL
#endif
#if defined(__GNUC__)
#define RNNX_NOINLINE __attribute__((noinline))
#else
#define RNNX_NOINLINE
#endif

template <typename S>
struct MicroKernel {
  using Packet = typename Eigen::internal::packet_traits<S>::type;
  static constexpr Index kLanes = Eigen::internal::unpacket_traits<Packet>::size;
  static constexpr Index MR = 2 * kLanes;
#if defined(__AVX512F__)
  static constexpr Index NR = 12;
#else
  static constexpr Index NR = 6;
#endif

  // a: MR*kc packed values (k-major); B(k, j) = b[j*ldb + k] read in place (rows of
  // h_{t-1}: NR_ streams along k, no packing), or with BKMajor B(k, j) = b[k*ldb + j]
  // (a packed panel, one row of NR values per k); C(i, j) at c[j*ldc + i] for i < m
  // (m <= MR), j < NR_.
  // With Add false, C = the product (C is not read). With Prefetch, `next` is the A panel
  // the caller multiplies after this one (MR*kc values): its lines are asked into L2 as
  // this one's are read (one k of a panel is MR values: two 64-byte lines with AVX-512,
  // one with AVX2), so that it is on its way while this one is computed (see
  // PackedLhs::product). With Half (m <= kLanes: a panel whose rows fit one packet, e.g.
  // the 5 rows of W_tiny's products or the last row of W_char's 65 classes) only the
  // first packet of rows is computed: the same FMAs lane by lane, so the same bits, without
  // the second packet's (padding) loads and FMAs.
  //
  // With AInPlace (Half only), A is not packed: A(i, k) = a[k * lda + i] for i < m, read
  // where it lies (a row-major block's rows, e.g. a weight gradient's X): the same values
  // in the same lanes, so the same bits as from a packed panel, without the packing.
  //
  // With Add false and bias not null, C = bias + the product, bias[i] for row i (the same
  // addition, operands in the same order, as C = bias followed by Add: the same bits,
  // without writing C twice and reading it back right after a partial packet's masked
  // stores, which the loads cannot take from the store buffer).
  template <int NR_, bool BKMajor = false, bool Add = true, bool Prefetch = false,
            bool Half = false, bool AInPlace = false>
  static void run(const S* a, const S* b, Index ldb, Index kc, S* c, Index ldc, Index m,
                  const S* next = nullptr, Index lda = MR, const S* bias = nullptr) {
    using namespace Eigen::internal;
    static_assert(!AInPlace || Half, "A is read in place only a packet of rows at a time");
    constexpr bool Two = !Half;  // the second packet of rows is computed
    const auto bkj = [&](Index k, int j) { return BKMajor ? b[k * ldb + j] : b[j * ldb + k]; };
    const auto ak = [&](Index k) -> Packet {  // the first packet of rows of A's column k
      if constexpr (AInPlace)
        return m == kLanes ? ploadu<Packet>(a + k * lda) : load_part(a + k * lda, m);
      else
        return pload<Packet>(a + k * MR);
    };
    // The C tile is read and written once, after the depth loop: ask for its lines now
    // (NR_ columns ldc apart, usually in as many pages: the hardware prefetchers do not
    // follow that pattern, and the loads would otherwise stall the store phase).
    if constexpr (Add) {
      RNNX_UNROLL
      for (int j = 0; j < NR_; ++j) {
        prefetch(c + j * ldc);
        prefetch(c + j * ldc + m - 1);
      }
    }
    Packet acc0[NR_], acc1[NR_];
    RNNX_UNROLL
    for (int j = 0; j < NR_; ++j) acc0[j] = acc1[j] = pset1<Packet>(S(0));
    Index k = 0;
    if constexpr (NR_ <= 2) {
      // One or two columns (batch 1 or 2, e.g. generation): 2*NR_ chains of dependent FMAs
      // would wait on the FMA latency, so the depth is split over 4 interleaved partial
      // sums (k mod 4), added at the end: 8*NR_ independent chains.
      Packet p0[3][NR_], p1[3][NR_];
      RNNX_UNROLL
      for (int s = 0; s < 3; ++s)
        RNNX_UNROLL
        for (int j = 0; j < NR_; ++j) p0[s][j] = p1[s][j] = pset1<Packet>(S(0));
      for (; k + 4 <= kc; k += 4) {
        RNNX_UNROLL
        for (int j = 0; j < NR_; ++j) {
          const Packet b0 = pset1<Packet>(bkj(k, j));
          acc0[j] = pmadd(ak(k), b0, acc0[j]);
          if constexpr (Two) acc1[j] = pmadd(pload<Packet>(a + k * MR + kLanes), b0, acc1[j]);
        }
        RNNX_UNROLL
        for (int s = 0; s < 3; ++s)
          RNNX_UNROLL
          for (int j = 0; j < NR_; ++j) {
            const Index kk = k + 1 + s;
            const Packet bs = pset1<Packet>(bkj(kk, j));
            p0[s][j] = pmadd(ak(kk), bs, p0[s][j]);
            if constexpr (Two) p1[s][j] = pmadd(pload<Packet>(a + kk * MR + kLanes), bs, p1[s][j]);
          }
      }
      RNNX_UNROLL
      for (int j = 0; j < NR_; ++j) {
        acc0[j] = padd(padd(acc0[j], p0[0][j]), padd(p0[1][j], p0[2][j]));
        if constexpr (Two) acc1[j] = padd(padd(acc1[j], p1[0][j]), padd(p1[1][j], p1[2][j]));
      }
    }
    for (; k < kc; ++k) {
      if constexpr (Prefetch) {
        const char* line = reinterpret_cast<const char*>(next + k * MR);
        RNNX_UNROLL
        for (Index o = 0; o < Index(MR * sizeof(S)); o += 64) _mm_prefetch(line + o, _MM_HINT_T1);
      }
      const Packet a0 = ak(k);
      const Packet a1 = Two ? pload<Packet>(a + k * MR + kLanes) : a0;
      RNNX_UNROLL
      for (int j = 0; j < NR_; ++j) {
        const Packet bj = pset1<Packet>(bkj(k, j));
        acc0[j] = pmadd(a0, bj, acc0[j]);
        if constexpr (Two) acc1[j] = pmadd(a1, bj, acc1[j]);
      }
    }
    if constexpr (Half) {  // m <= kLanes: the first packet of rows only
      const Packet b0 = Add || !bias ? pzero(acc0[0])
                        : m == kLanes ? ploadu<Packet>(bias)
                                      : load_part(bias, m);
      RNNX_UNROLL
      for (int j = 0; j < NR_; ++j) {
        S* cj = c + j * ldc;
        const Packet v = Add    ? padd(m == kLanes ? ploadu<Packet>(cj) : load_part(cj, m), acc0[j])
                         : bias ? padd(b0, acc0[j])
                                : acc0[j];
        if (m == kLanes)
          pstoreu(cj, v);
        else
          store_part(cj, v, m);
      }
    } else if constexpr (!Add) {
      const Index m0 = std::min(m, kLanes), m1 = m - m0;
      if (bias) {
        const Packet b0 = m0 == kLanes ? ploadu<Packet>(bias) : load_part(bias, m0);
        const Packet b1 = m1 == kLanes ? ploadu<Packet>(bias + kLanes)
                          : m1 > 0     ? load_part(bias + kLanes, m1)
                                       : pzero(b0);
        RNNX_UNROLL
        for (int j = 0; j < NR_; ++j) {
          acc0[j] = padd(b0, acc0[j]);
          acc1[j] = padd(b1, acc1[j]);
        }
      }
      RNNX_UNROLL
      for (int j = 0; j < NR_; ++j) {
        S* cj = c + j * ldc;
        if (m0 == kLanes)
          pstoreu(cj, acc0[j]);
        else
          store_part(cj, acc0[j], m0);
        if (m1 == kLanes)
          pstoreu(cj + kLanes, acc1[j]);
        else if (m1 > 0)
          store_part(cj + kLanes, acc1[j], m1);
      }
    } else if (m == MR) {
      RNNX_UNROLL
      for (int j = 0; j < NR_; ++j) {
        S* cj = c + j * ldc;
        pstoreu(cj, padd(ploadu<Packet>(cj), acc0[j]));
        pstoreu(cj + kLanes, padd(ploadu<Packet>(cj + kLanes), acc1[j]));
      }
    } else {  // the last panel of rows: masked (the same sums, lane by lane)
      // Whole-packet loads and stores of the m values: the caller's next pass reads
      // them as packets, and a packet load that spans m separate scalar stores
      // cannot take its data from the store buffer (it waits for all of them).
      const Index m0 = std::min(m, kLanes), m1 = m - m0;
      RNNX_UNROLL
      for (int j = 0; j < NR_; ++j) {
        S* cj = c + j * ldc;
        if (m0 == kLanes)
          pstoreu(cj, padd(ploadu<Packet>(cj), acc0[j]));
        else
          store_part(cj, padd(load_part(cj, m0), acc0[j]), m0);
        if (m1 > 0) store_part(cj + kLanes, padd(load_part(cj + kLanes, m1), acc1[j]), m1);
      }
    }
  }

  // The full-width panel as a function of its own, never inlined: inlined into a time
  // loop's task (rnn_forward's, with its own live values), GCC kept the NR_ row offsets
  // of a Bm read in place on the stack and in vector registers, reloading them at every k
  // (a vmovq from a vector register takes the port of one of the FMAs). Alone, the offsets
  // live in general registers. Measured (AVX-512, float, in-process A/B): RNN Tagger
  // forward 3-6% less time at W_mid's and W_char's sizes, GRU and LSTM 0-3%. The narrower
  // panels (batch under NR, the last panel) stay inlinable: taking those of 3 or more
  // columns out of line too measured no difference (W_char's last panel of 8, W_tiny's
  // batch of 10).
  template <bool BKMajor, bool Add, bool Prefetch = false>
  RNNX_NOINLINE static void run_full(const S* a, const S* b, Index ldb, Index kc, S* c,
                                     Index ldc, Index m, const S* next = nullptr,
                                     const S* bias = nullptr) {
    run<NR, BKMajor, Add, Prefetch>(a, b, ldb, kc, c, ldc, m, next, MR, bias);
  }

  // `next`: see run(); taken by the full-width panel only (nullptr: no prefetching).
  // `bias`: see run() (Add false only).
  template <bool BKMajor = false, int NR_ = NR, bool Add = true>
  static void dispatch(int n, const S* a, const S* b, Index ldb, Index kc, S* c, Index ldc,
                       Index m, const S* next = nullptr, const S* bias = nullptr) {
    if constexpr (NR_ == NR) {
      if (n == NR_) {
        if (next) return run_full<BKMajor, Add, true>(a, b, ldb, kc, c, ldc, m, next, bias);
        return run_full<BKMajor, Add>(a, b, ldb, kc, c, ldc, m, nullptr, bias);
      }
      dispatch<BKMajor, NR_ - 1, Add>(n, a, b, ldb, kc, c, ldc, m, nullptr, bias);
    } else if constexpr (NR_ >= 1) {
      if (n == NR_) return run<NR_, BKMajor, Add>(a, b, ldb, kc, c, ldc, m, nullptr, MR, bias);
      dispatch<BKMajor, NR_ - 1, Add>(n, a, b, ldb, kc, c, ldc, m, nullptr, bias);
    }
  }

  // dispatch() for a panel of m <= kLanes rows (Half: see run()); no prefetching (the
  // panels of one packet are the small products' and the last of a weight matrix).
  // With AInPlace, A is read in place, lda apart (see run()).
  template <bool BKMajor = false, int NR_ = NR, bool Add = true, bool AInPlace = false>
  static void dispatch_half(int n, const S* a, const S* b, Index ldb, Index kc, S* c,
                            Index ldc, Index m, Index lda = MR, const S* bias = nullptr) {
    if constexpr (NR_ >= 1) {
      if (n == NR_)
        return run<NR_, BKMajor, Add, false, true, AInPlace>(a, b, ldb, kc, c, ldc, m, nullptr,
                                                             lda, bias);
      dispatch_half<BKMajor, NR_ - 1, Add, AInPlace>(n, a, b, ldb, kc, c, ldc, m, lda, bias);
    }
  }
};
#endif

template <typename S>
class PackedLhs {
 public:
  static constexpr Index kDepth = 256;

#if defined(__FMA__)
  using Kernel = MicroKernel<S>;
  static constexpr Index MR = Kernel::MR, NR = Kernel::NR;
  // Whether a row's results are the same whatever block of rows it is packed in (and
  // wherever in it): so with rnnx's kernel; Eigen's (below) sums the last rows of a
  // block in another order.
  static constexpr bool kRowsIndependent = true;

  PackedLhs() : M_(0), K_(0), Mp_(0) {}
  // A(i, k) = a[i * row_stride + k] (a row-major block) when transpose is false,
  // A(i, k) = a[k * row_stride + i] (the transpose of a row-major block) when true.
  // Packed in depth blocks of kDepth; within one, panels of MR rows (zero-padded), each
  // k-major: packed[k0*Mp + p*MR*kc + k*MR + i] = A(p*MR + i, k0 + k).
  PackedLhs(const S* a, Index M, Index K, Index row_stride, bool transpose)
      : M_(M), K_(K), Mp_(ceil_div(M, MR) * MR),
        packed_(size_t(std::max<Index>(Mp_ * K, 1)), S(0)) {
    for (Index k0 = 0; k0 < K; k0 += kDepth) {
      const Index kc = std::min(kDepth, K - k0);
      for (Index p = 0; p * MR < M; ++p) {
        S* dst = packed_.data() + k0 * Mp_ + p * MR * kc;
        const Index m = std::min(MR, M - p * MR);
        for (Index k = 0; k < kc; ++k)
          for (Index i = 0; i < m; ++i) {
            const Index r = p * MR + i, col = k0 + k;
            dst[k * MR + i] = transpose ? a[col * row_stride + r] : a[r * row_stride + col];
          }
      }
    }
  }

  // A(i, k) = row(i)[k], or zero where row(i) is null: rows picked one by one (and zero
  // rows inserted) without copying them into a block first. Packed as above.
  template <typename Row>
  PackedLhs(Index M, Index K, Row row)
      : M_(M), K_(K), Mp_(ceil_div(M, MR) * MR),
        packed_(size_t(std::max<Index>(Mp_ * K, 1)), S(0)) {
    for (Index i = 0; i < M; ++i) {
      const S* r = row(i);
      if (!r) continue;
      const Index p = i / MR, ip = i % MR;
      for (Index k0 = 0; k0 < K; k0 += kDepth) {
        const Index kc = std::min(kDepth, K - k0);
        S* dst = packed_.data() + k0 * Mp_ + p * MR * kc + ip;
        for (Index k = 0; k < kc; ++k) dst[k * MR] = r[k0 + k];
      }
    }
  }

  Index rows() const { return M_; }
  Index depth() const { return K_; }
  // Scratch multiply_add() needs for N columns: none here (Bm is read in place), so the
  // callers' scratch vectors stay empty and allocate nothing (three allocations of a
  // W_tiny forward call, about 430 instructions, were for this).
  static Index work_size(Index, Index) { return 0; }

  // C += A * Bm for Bm(k, j) = b[j * ldb + k] (the transpose of a row-major (N x K)
  // block, e.g. h_{t-1}) and C(i, j) = c[j * ldc + i] (a row-major (N x M) block, e.g.
  // the step's gates). work: work_size(K, N) elements, aligned. Each C(i, j) is summed
  // over k in order, one FMA chain per depth block (4 interleaved ones where N is 1 or 2,
  // see MicroKernel::run): the result depends only on K. The last NR + 1 or NR + 2
  // columns make two panels of about half as many (panel_width).
  void multiply_add(const S* b, Index N, Index ldb, S* c, Index ldc, S* work) const {
    product<true>(b, N, ldb, c, ldc, work, nullptr, true);
  }
  // C = A * Bm (C is not read; K >= 1): C(i, j) the same sum as multiply_add() adds, so
  // that x + (C = A Bm) equals (C = x) += A Bm bit for bit when K <= kDepth. (Not always
  // (C = 0) += A Bm: a sum can be -0, an FMA rounding a tiny negative product, where
  // 0 + it is +0.)
  void multiply(const S* b, Index N, Index ldb, S* c, Index ldc, S* work) const {
    product<false>(b, N, ldb, c, ldc, work, nullptr, true);
  }
  // C = bias + A * Bm (bias: M values, bias[i] for row i; K >= 1) in one pass over C:
  // the same bits as C = bias (every column) followed by the product. Its panels are NR
  // wide but the last, never halved (panel_width): rows_times splits its rows into
  // blocks whose sizes follow the thread count, and a panel's width, so its columns'
  // sums, must not depend on that split.
  void multiply_bias(const S* b, Index N, Index ldb, S* c, Index ldc, S* work,
                     const S* bias) const {
    product<false>(b, N, ldb, c, ldc, work, bias);
  }

 private:
  // The width of the panel of columns [j0, j0 + width) of N: NR, but with `halves` the
  // last NR + 1 or NR + 2 columns make two panels of about half that many (a step's
  // batch of 32 on AVX2, NR = 6: 6+6+6+6+4+4, not 6+6+6+6+6+2). A panel of 1 or 2
  // columns sums its depth in 4 interleaved chains for the FMA latency and loads a
  // packet of A for every 2 FMAs: W_char's last panel of 2 ran at about half the rate of
  // the others (perf). Every column of a product of 3 or more is then summed in the
  // same order, over k in one chain: a sequence's recurrent sums are the same bits in any
  // batch of 3 or more (its input projection's need not be: rows_times's panels follow
  // the T*B rows, not the batch).
  static Index panel_width(Index j0, Index N, bool halves) {
    const Index left = N - j0;
    if (halves && left > NR && left <= NR + 2) return (left + 1) / 2;
    return std::min(NR, left);
  }

  template <bool Add>
  void product(const S* b, Index N, Index ldb, S* c, Index ldc, S* work,
               const S* bias = nullptr, bool halves = false) const {
    (void)work;  // Bm is read in place (see MicroKernel::run)
    for (Index k0 = 0; k0 < K_; k0 += kDepth) {
      const Index kc = std::min(kDepth, K_ - k0);
      const S* a_block = packed_.data() + k0 * Mp_;
      // Each panel of A (MR x kc, 32 KB in float) is loaded once and stays in L1 while it
      // meets every panel of columns; the weights of all tasks together may not fit in
      // L2, so going through A once per column panel would stream them N/NR times.
      // The first column panel asks the next panel of A into L2 as it goes: the packed
      // weights of a GRU or LSTM at W_big's sizes (12-16 MB) come from memory at every
      // step, and the hardware's prefetchers did not get them there in time. C++ harness,
      // one thread, one step's product C (128 x M) += W (M x 1024) h: M = 3072 and 4096
      // 7% and 12% more GFLOP/s, M = 1024 2%; at W_mid's sizes no change.
      for (Index p = 0; p * MR < M_; ++p) {
        const S* next = (p + 1) * MR < M_ ? a_block + (p + 1) * MR * kc : nullptr;
        for (Index j0 = 0, width = 0; j0 < N; j0 += width) {
          width = panel_width(j0, N, halves);
          const int n = int(width);
          const S* ap = a_block + p * MR * kc;
          const S* bp = b + j0 * ldb + k0;
          S* cp = c + j0 * ldc + p * MR;
          const Index m = std::min(MR, M_ - p * MR);
          const S* pf = j0 == 0 ? next : nullptr;
          const S* bp_bias = bias ? bias + p * MR : nullptr;  // this panel's rows'
          if (m <= Kernel::kLanes) {  // one packet of rows (the same bits, half the work)
            if (Add || k0 > 0)
              Kernel::dispatch_half(n, ap, bp, ldb, kc, cp, ldc, m);
            else
              Kernel::template dispatch_half<false, NR, false>(n, ap, bp, ldb, kc, cp, ldc, m,
                                                               MR, bp_bias);
          } else if (Add || k0 > 0) {
            Kernel::dispatch(n, ap, bp, ldb, kc, cp, ldc, m, pf);
          } else {
            Kernel::template dispatch<false, NR, false>(n, ap, bp, ldb, kc, cp, ldc, m, pf,
                                                        bp_bias);
          }
        }
      }
    }
  }

  Index M_, K_, Mp_;
  AlignedVec<S> packed_;
#else
  using Traits = Eigen::internal::gebp_traits<S, S>;
  static constexpr bool kRowsIndependent = false;

  PackedLhs() : M_(0), K_(0) {}
  // A(i, k) = a[i * row_stride + k] (a row-major block) when transpose is false,
  // A(i, k) = a[k * row_stride + i] (the transpose of a row-major block) when true.
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
  static Index work_size(Index K, Index N) { return pad16(std::min(K, kDepth) * N + 64); }

  // As above, through Eigen's own packing and gebp micro-kernel (portable builds).
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
  // C = A * Bm (rows of C set to zero, then multiply_add()).
  void multiply(const S* b, Index N, Index ldb, S* c, Index ldc, S* work) const {
    for (Index j = 0; j < N; ++j) std::fill_n(c + j * ldc, M_, S(0));
    multiply_add(b, N, ldb, c, ldc, work);
  }
  // C = bias + A * Bm (every column of C set to bias, then multiply_add()).
  void multiply_bias(const S* b, Index N, Index ldb, S* c, Index ldc, S* work,
                     const S* bias) const {
    for (Index j = 0; j < N; ++j) std::copy_n(bias, M_, c + j * ldc);
    multiply_add(b, N, ldb, c, ldc, work);
  }

 private:
  Index M_, K_;
  AlignedVec<S> packed_;
#endif
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
