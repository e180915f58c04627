#include "rnnx/rnn.hpp"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "rnnx/activations.hpp"
#include "rnnx/gemm.hpp"
#include "rnnx/input.hpp"
#include "rnnx/packed_gemm.hpp"
#include "rnnx/packets.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

namespace {
// h = f(z) in place on a block of a row-major matrix.
template <typename Blk>
void activate(Nonlinearity f, Blk&& z) {
  using S = typename std::decay_t<Blk>::Scalar;
  if (f == Nonlinearity::Tanh)
    apply_block(Tanh(), z, z);
  else
    z = z.cwiseMax(S(0));
}

// One row of dz_t over c units: dz = (dh + carry) f'(z), written with h = f(z):
// tanh'(z) = 1 - h^2, relu'(z) = [h > 0]; dh (from above) may be null.
template <typename S>
void grad_row(Nonlinearity f, const S* dh, const S* carry, const S* h, S* dz, Index c) {
  using namespace Eigen::internal;
  const Packet<S> one = pset1<Packet<S>>(S(1)), zero = pset1<Packet<S>>(S(0));
  const bool is_tanh = f == Nonlinearity::Tanh;
  for_packets<S>(c, [&](const Lanes<S>& l) {
    const Packet<S> g = dh ? padd(l.load(dh), l.load(carry)) : l.load(carry);
    const Packet<S> hl = l.load(h);
    l.store(dz, is_tanh ? pmul(g, psub(one, pmul(hl, hl))) : pselect(pcmp_lt(zero, hl), g, zero));
  });
}
}  // namespace

template <typename S>
void rnn_forward(const SeqDims& d, Nonlinearity f, const S* x, const S* w_ih, const S* w_hh,
                 const S* b, S* h_all, const std::int64_t* lengths) {
  check_dims(d);
  const Lengths len(lengths, d.B, d.T);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B;
  MapMat<S> Hall(h_all, (T + 1) * B, H);
  auto Z = Hall.bottomRows(TB);  // z_t is computed in place of h_t

  // Input projection for all steps: one GEMM before the loop (in row blocks; index input:
  // each task gathers its own columns of a step in the loop, gather_input_cols).
  const InputWeights<S> w_in(d, w_ih, H);
  if (!d.ids) project_inputs(h_all + B * H, H, d, x, w_in, b);

  // The time loop: each task owns a block of hidden units and its rows of W_hh, packed
  // once per call by the thread that will use them (they stay in that core's cache).
  const Index n_units = ceil_div(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * H * H);
  std::vector<PackedLhs<S>> w_tasks(static_cast<size_t>(n_units));
  const Index work = PackedLhs<S>::work_size(H, B);
  AlignedVec<S> scratch(size_t(n_units * work));
  parallel_for(n_units, [&](Index k) {
    w_tasks[size_t(k)] = pack_gate_rows(w_hh, H, 0, 1, Units(k, H));
  }, par);
  for (Index t = 0; t < T; ++t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      auto zt = Z.block(t * B, u.j0, B, u.c);  // z_t = (x W_ihᵀ + b)_t + h_{t-1} W_hhᵀ
      if (d.ids)
        gather_input_cols(d, w_in, H, b, t * B, B, u.j0, u.c, h_all + (t + 1) * B * H + u.j0, H);
      w_tasks[size_t(k)].multiply_add(h_all + t * B * H, B, H, h_all + (t + 1) * B * H + u.j0,
                                      H, scratch.data() + k * work);
      activate(f, zt);
      if (len.any(t))  // padded examples keep their state
        for (Index b = 0; b < B; ++b)
          if (len.padded(t, b)) zt.row(b) = Hall.block(t * B + b, u.j0, 1, u.c);
    }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
  }
}

template <typename S>
void rnn_backward(const SeqDims& d, Nonlinearity f, const S* x, const S* w_ih, const S* w_hh,
                  const S* h, const S* h_prev, const S* dh, const S* dh_n, S* dz, S* dx, S* dh0,
                  S* dw_ih, S* dw_hh, S* db, const std::int64_t* lengths) {
  check_dims(d);
  const Lengths len(lengths, d.B, d.T);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B;
  MapMat<S> dH(dh0, B, H);

  // dH = dL/dh_t arriving through the recurrence (from step t+1); it ends as dh0.
  // A task owns units [j0, j0+c): at step t it first finishes the carry for its units,
  // dH[:, j] = dz_{t+1} W_hh[:, j], then dz_t[:, j] = (dh_t + dH)[:, j] * f'(h_t[:, j]).
  if (dh_n)
    dH = MapConstMat<S>(dh_n, B, H);
  else
    dH.setZero();
  const Index n_units = ceil_div(H, kUnitsPerTask), cmax = std::min(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * H * H);
  // Per task: its columns of W_hh packed once, the product's work space (none on FMA
  // builds), and for variable lengths a (B x c) product.
  std::vector<PackedLhs<S>> w_tasks(static_cast<size_t>(n_units));
  const Index work = PackedLhs<S>::work_size(H, B), per_task = work + pad16(B * cmax);
  AlignedVec<S> scratch(size_t(n_units * per_task));
  parallel_for(n_units, [&](Index k) {
    w_tasks[size_t(k)] = pack_carry_cols(w_hh, H, 0, H, Units(k, H));
  }, par);
  for (Index t = T - 1; t >= -1; --t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      auto carry = dH.middleCols(u.j0, u.c);
      S* sc = scratch.data() + k * per_task;
      if (t < T - 1) {
        const S* dz_next = dz + (t + 1) * B * H;
        if (len.any(t + 1)) {  // a padded step passes dL/dh through unchanged
          auto acc = MapMat<S>(sc + work, B, u.c);
          acc.setZero();
          w_tasks[size_t(k)].multiply_add(dz_next, B, H, acc.data(), u.c, sc);
          for (Index b = 0; b < B; ++b)
            if (!len.padded(t + 1, b)) carry.row(b) = acc.row(b);
        } else {
          carry.setZero();
          w_tasks[size_t(k)].multiply_add(dz_next, B, H, dh0 + u.j0, H, sc);
        }
      }
      if (t < 0) return;  // the carry of step 0 is dh0
      // dz_t = (dh_t + carry) f'(z_t), row by row in one pass; zero for padded examples.
      for (Index b = 0; b < B; ++b) {
        const Index at = (t * B + b) * H + u.j0;
        if (len.padded(t, b))
          std::fill_n(dz + at, u.c, S(0));
        else
          grad_row(f, dh ? dh + at : nullptr, dh0 + b * H + u.j0, h + at, dz + at, u.c);
      }
    }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
  }

  // Input and parameter gradients: whole-sequence GEMMs after the loop (gemm.hpp):
  //   dx = dZ W_ih,  dW_ih = dZᵀ X,  dW_hh = dZᵀ H_prev,  db = Σ_rows dZ.
  RNNX_REQUIRE(!(dx && d.ids), "index input has no dx (pass nullptr)");
  if (dx) rows_times(TB, dz, H, PackedLhs<S>(w_ih, D, H, D, true), dx, D);
  layer_weight_grads(d, H, dz, H, x, dw_ih, h_prev, dw_hh, db);
}

#define RNNX_INSTANTIATE(S)                                                                    \
  template void rnn_forward<S>(const SeqDims&, Nonlinearity, const S*, const S*, const S*,     \
                               const S*, S*, const std::int64_t*);                             \
  template void rnn_backward<S>(const SeqDims&, Nonlinearity, const S*, const S*, const S*,    \
                                const S*, const S*, const S*, const S*, S*, S*, S*, S*, S*, S*, \
                                const std::int64_t*);
RNNX_INSTANTIATE(float)
RNNX_INSTANTIATE(double)
#undef RNNX_INSTANTIATE

}  // namespace rnnx
