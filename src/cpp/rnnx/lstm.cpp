#include "rnnx/lstm.hpp"

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
// One row of a step, units [0, c): the gates i, f, g, o at g + q*H in (pre-activations)
// and out (activations), c_{t-1} at cp, c_t and h_t out to ct and ht; peep: the row's
// [p_i, p_f, p_o] at peep + q*H, or null.
//   i = σ(a_i + p_i c_{t-1}),  f = σ(a_f + p_f c_{t-1}),  g = tanh(a_g)
//   c_t = f c_{t-1} + i g,  o = σ(a_o + p_o c_t),  h_t = o tanh(c_t)
template <typename S>
void forward_row(S* g, Index H, const S* cp, S* ct, S* ht, const S* peep, Index c) {
  using namespace Eigen::internal;
  for_packets<S>(c, [&](const Lanes<S>& l) {
    Packet<S> i = l.load(g), f = l.load(g + H), gg = l.load(g + 2 * H), o = l.load(g + 3 * H);
    const Packet<S> cprev = l.load(cp);
    if (peep) {
      i = padd(i, pmul(cprev, l.load(peep)));
      f = padd(f, pmul(cprev, l.load(peep + H)));
    }
    i = Sigmoid()(i);
    f = Sigmoid()(f);
    gg = Tanh()(gg);
    const Packet<S> cn = padd(pmul(f, cprev), pmul(i, gg));
    if (peep) o = padd(o, pmul(cn, l.load(peep + 2 * H)));
    o = Sigmoid()(o);
    l.store(g, i);
    l.store(g + H, f);
    l.store(g + 2 * H, gg);
    l.store(g + 3 * H, o);
    l.store(ct, cn);
    l.store(ht, pmul(Tanh()(cn), o));
  });
}

// Backward through one row of a step, units [0, c): the activated gates at g + q*H,
// c_t at ct and c_{t-1} at cp; dh_in: dL/dh_t from above (or null), added to the carry
// dha = dL/dh_t; dc: the carry dL/dc_t in, dL/dc_{t-1} out; dg: the gates' gradients
// dL/da out; with peepholes (peep, dpeep at + q*H), their gradients are added to dpeep.
//   h = o tanh(c):  dL/do = dh tanh(c);  dL/dc += dh o (1 - tanh(c)^2) [+ da_o p_o]
//   c = f c_prev + i g;  tanh' = 1 - tanh^2;  σ' = σ (1 - σ)
//   dL/dc_prev = dc f [+ da_i p_i + da_f p_f]
template <typename S>
void backward_row(const S* g, Index H, const S* ct, const S* cp, const S* dh_in, S* dha_,
                  S* dc_, S* dg, const S* peep, S* dpeep, Index c) {
  using namespace Eigen::internal;
  const Packet<S> one = pset1<Packet<S>>(S(1));
  for_packets<S>(c, [&](const Lanes<S>& l) {
    const Packet<S> i = l.load(g), f = l.load(g + H), gg = l.load(g + 2 * H),
                    o = l.load(g + 3 * H), cprev = l.load(cp);
    Packet<S> dha = l.load(dha_), dc = l.load(dc_);
    if (dh_in) {
      dha = padd(dha, l.load(dh_in));
      l.store(dha_, dha);
    }
    const Packet<S> tc = Tanh()(l.load(ct));
    const Packet<S> d_o = pmul(pmul(pmul(dha, tc), o), psub(one, o));
    const Packet<S> dcell = pmul(pmul(dha, o), psub(one, pmul(tc, tc)));
    dc = padd(dc, peep ? padd(dcell, pmul(d_o, l.load(peep + 2 * H))) : dcell);
    const Packet<S> dgg = pmul(pmul(dc, i), psub(one, pmul(gg, gg)));
    const Packet<S> di = pmul(pmul(pmul(dc, gg), i), psub(one, i));
    const Packet<S> df = pmul(pmul(pmul(dc, cprev), f), psub(one, f));
    if (peep) {
      dc = padd(padd(pmul(dc, f), pmul(di, l.load(peep))), pmul(df, l.load(peep + H)));
      l.store(dpeep, padd(l.load(dpeep), pmul(di, cprev)));
      l.store(dpeep + H, padd(l.load(dpeep + H), pmul(df, cprev)));
      l.store(dpeep + 2 * H, padd(l.load(dpeep + 2 * H), pmul(d_o, l.load(ct))));
    } else {
      dc = pmul(dc, f);
    }
    l.store(dg, di);
    l.store(dg + H, df);
    l.store(dg + 2 * H, dgg);
    l.store(dg + 3 * H, d_o);
    l.store(dc_, dc);
  });
}
}  // namespace

template <typename S>
void lstm_forward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* b,
                  S* gates, S* h_all, S* c_all, const std::int64_t* lengths,
                  const S* peephole) {
  check_dims(d);
  const Lengths len(lengths, d.B, d.T);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B;

  // Input projection for all steps and all four gates: one GEMM before the loop (index
  // input: each task gathers its own columns of a step in the loop, gather_input_cols).
  const InputWeights<S> w_in(d, w_ih, 4 * H);
  if (!d.ids) project_inputs(gates, 4 * H, d, x, w_in, b);

  // The time loop: a task owns hidden units [j0, j0+c), i.e. those rows of each gate's
  // block of W_hh, packed once per call (by the thread that will use them, so they stay
  // in its core's cache), one block per gate. A step adds h_{t-1} W_hhᵀ straight into the
  // task's columns of the step's gates (on top of the input projection), then activates
  // them and computes c_t and h_t row by row, each row's units in one contiguous run.
  const Index n_units = ceil_div(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * 4 * H * H);
  // With one task (H <= kUnitsPerTask) the four blocks are the step's whole rows of
  // gates, side by side: packed as one, one product per step (same results, see
  // kRowsIndependent).
  const Index blocks = n_units == 1 && PackedLhs<S>::kRowsIndependent ? 1 : 4;
  std::vector<PackedLhs<S>> w_tasks(static_cast<size_t>(blocks * n_units));
  parallel_for(n_units, [&](Index k) {
    for (Index q = 0; q < blocks; ++q)
      w_tasks[size_t(blocks * k + q)] =
          pack_gate_rows(w_hh, H, q, blocks == 1 ? 4 : q + 1, Units(k, H));
  }, par);
  const Index work = PackedLhs<S>::work_size(H, B);
  AlignedVec<S> scratch(size_t(n_units * work));
  for (Index t = 0; t < T; ++t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      const Index cu = u.c;
      S* gt = gates + t * B * 4 * H;  // the step's gates (B x 4H): i, f, g, o blocks of H
      if (d.ids)
        for (Index q = 0; q < 4; ++q)
          gather_input_cols(d, w_in, 4 * H, b, t * B, B, q * H + u.j0, cu, gt + q * H + u.j0,
                            4 * H);
      for (Index q = 0; q < blocks; ++q)
        w_tasks[size_t(blocks * k + q)].multiply_add(h_all + t * B * H, B, H,
                                                     gt + q * H + u.j0, 4 * H,
                                                     scratch.data() + k * work);
      for (Index b = 0; b < B; ++b) {
        const S* cp = c_all + (t * B + b) * H + u.j0;
        S* ct = c_all + ((t + 1) * B + b) * H + u.j0;
        S* ht = h_all + ((t + 1) * B + b) * H + u.j0;
        forward_row(gt + b * 4 * H + u.j0, H, cp, ct, ht, peephole ? peephole + u.j0 : nullptr,
                    cu);
        if (len.padded(t, b)) {  // padded examples keep their state
          std::copy_n(cp, cu, ct);
          std::copy_n(h_all + (t * B + b) * H + u.j0, cu, ht);
        }
      }
    }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
  }
}

template <typename S>
void lstm_backward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* gates,
                   const S* h_prev, const S* c, const S* c_prev, const S* dh, const S* dh_n,
                   const S* dc_n, S* dgates, S* dx, S* dh0, S* dc0, S* dw_ih, S* dw_hh, S* db,
                   const std::int64_t* lengths, const S* peephole, S* dpeephole) {
  check_dims(d);
  const Lengths len(lengths, d.B, d.T);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B;
  const Index ldg = lstm_dgates_stride<S>(H);  // dgates' row stride
  MapMat<S> dH(dh0, B, H), dC(dc0, B, H);

  // Carries dH = dL/dh_t and dC = dL/dc_t arriving from step t+1; they end as dh0, dc0.
  // A task owns units [j0, j0+c): at step t it finishes dH[:, j] = dG_{t+1} W_hh[:, j],
  // then the gate gradients of its units.
  if (dh_n) dH = MapConstMat<S>(dh_n, B, H); else dH.setZero();
  if (dc_n) dC = MapConstMat<S>(dc_n, B, H); else dC.setZero();
  const Index n_units = ceil_div(H, kUnitsPerTask), cmax = std::min(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * 4 * H * H);
  if (peephole) MapRowVec<S>(dpeephole, 3 * H).setZero();
  // Per task: the product's work space (none on FMA builds) and, for variable lengths, a
  // (B x cu) product.
  const Index work = PackedLhs<S>::work_size(4 * H, B);
  const Index per_task = work + pad16(B * cmax);
  AlignedVec<S> scratch(size_t(n_units * per_task));
  std::vector<PackedLhs<S>> w_tasks(static_cast<size_t>(n_units));  // W_hh[:, j0:j0+c]
  parallel_for(n_units, [&](Index k) {
    w_tasks[size_t(k)] = pack_carry_cols(w_hh, H, 0, 4 * H, Units(k, H));
  }, par);
  for (Index t = T - 1; t >= -1; --t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      const Index cu = u.c;
      S* wk = scratch.data() + k * per_task;
      auto dHu = dH.middleCols(u.j0, cu);
      if (t < T - 1) {
        const S* dg_next = dgates + (t + 1) * B * ldg;
        if (len.any(t + 1)) {  // a padded step passes dL/dh through unchanged
          MapMat<S> acc(wk + work, B, cu);
          acc.setZero();
          w_tasks[size_t(k)].multiply_add(dg_next, B, ldg, acc.data(), cu, wk);
          for (Index b = 0; b < B; ++b)
            if (!len.padded(t + 1, b)) dHu.row(b) = acc.row(b);
        } else {
          dHu.setZero();
          w_tasks[size_t(k)].multiply_add(dg_next, B, ldg, dh0 + u.j0, H, wk);
        }
      }
      if (t < 0) return;  // the carry of step 0 is dh0
      // Row by row, each row's units in contiguous runs (backward_row): the gates i, f,
      // g, o of the row at gates + row*4H + j0 + q*H, their gradients at dg0 + q*H.
      for (Index b = 0; b < B; ++b) {
        const Index row = t * B + b;
        S* dg0 = dgates + row * ldg + u.j0;
        if (len.padded(t, b)) {  // carries pass through, no gate gradients
          for (Index q = 0; q < 4; ++q) std::fill_n(dg0 + q * H, cu, S(0));
          continue;
        }
        const Index at = row * H + u.j0;
        backward_row(gates + row * 4 * H + u.j0, H, c + at, c_prev + at, dh ? dh + at : nullptr,
                     dh0 + b * H + u.j0, dc0 + b * H + u.j0, dg0,
                     peephole ? peephole + u.j0 : nullptr,
                     peephole ? dpeephole + u.j0 : nullptr, cu);
      }
    }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
  }

  // Input and parameter gradients: whole-sequence GEMMs after the loop (gemm.hpp):
  //   dx = dG W_ih,  dW_ih = dGᵀ X,  dW_hh = dGᵀ H_prev,  db = Σ_rows dG.
  RNNX_REQUIRE(!(dx && d.ids), "index input has no dx (pass nullptr)");
  if (dx) rows_times(TB, dgates, ldg, PackedLhs<S>(w_ih, D, 4 * H, D, true), dx, D);
  layer_weight_grads(d, 4 * H, dgates, ldg, x, dw_ih, h_prev, dw_hh, db);
}

#define RNNX_INSTANTIATE(S)                                                                  \
  template void lstm_forward<S>(const SeqDims&, const S*, const S*, const S*, const S*, S*,  \
                                S*, S*, const std::int64_t*, const S*);                      \
  template void lstm_backward<S>(const SeqDims&, const S*, const S*, const S*, const S*,     \
                                 const S*, const S*, const S*, const S*, const S*, const S*, \
                                 S*, S*, S*, S*, S*, S*, S*, const std::int64_t*, const S*,  \
                                 S*);
RNNX_INSTANTIATE(float)
RNNX_INSTANTIATE(double)
#undef RNNX_INSTANTIATE

}  // namespace rnnx
