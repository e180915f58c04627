#include "rnnx/lstm.hpp"

#include <algorithm>
#include <type_traits>
#include <vector>

#include "rnnx/activations.hpp"
#include "rnnx/gemm.hpp"
#include "rnnx/input.hpp"
#include "rnnx/packed_gemm.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

template <typename S>
void lstm_forward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* b,
                  S* gates, S* h_all, S* c_all, const std::int64_t* lengths,
                  const S* peephole) {
  check_dims(d);
  const Lengths len(lengths, d.B, d.T);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B;

  // Input projection for all steps and all four gates: one GEMM before the loop.
  const InputWeights<S> w_in(d, w_ih, 4 * H);
  project_inputs(gates, 4 * H, d, x, w_in, b);

  // The time loop: a task owns hidden units [j0, j0+c), i.e. those rows of each gate's
  // block of W_hh, packed once per call (by the thread that will use them, so they stay
  // in its core's cache), one block per gate. A step adds h_{t-1} W_hhᵀ straight into the
  // task's columns of the step's gates (on top of the input projection), then activates
  // them and computes c_t and h_t row by row, each row's units in one contiguous run.
  const Index n_units = ceil_div(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * 4 * H * H);
  std::vector<PackedLhs<S>> w_tasks(static_cast<size_t>(4 * n_units));
  parallel_for(n_units, [&](Index k) {
    for (Index q = 0; q < 4; ++q)
      w_tasks[size_t(4 * k + q)] = pack_gate_rows(w_hh, H, q, q + 1, Units(k, H));
  }, par);
  const Index work = PackedLhs<S>::work_size(H, B);
  AlignedVec<S> scratch(size_t(n_units * work));
  for (Index t = 0; t < T; ++t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      const Index cu = u.c;
      S* gt = gates + t * B * 4 * H;  // the step's gates (B x 4H): i, f, g, o blocks of H
      for (Index q = 0; q < 4; ++q)
        w_tasks[size_t(4 * k + q)].multiply_add(h_all + t * B * H, B, H, gt + q * H + u.j0,
                                                4 * H, scratch.data() + k * work);
      for (Index b = 0; b < B; ++b) {
        S* g0 = gt + b * 4 * H + u.j0;  // gate q of this row's units at g0 + q*H
        auto gate = [&](Index q) { return MapArr<S>(g0 + q * H, cu); };
        const S* cp_ = c_all + (t * B + b) * H + u.j0;
        S* ct_ = c_all + ((t + 1) * B + b) * H + u.j0;
        S* ht_ = h_all + ((t + 1) * B + b) * H + u.j0;
        const auto cprev = MapConstArr<S>(cp_, cu);
        auto peep = [&](Index q) { return MapConstArr<S>(peephole + q * H + u.j0, cu); };
        if (peephole) {  // i and f look at c_{t-1}
          gate(0) += cprev * peep(0);
          gate(1) += cprev * peep(1);
        }
        apply(Sigmoid(), g0, g0, cu);  // i
        apply(Sigmoid(), g0 + H, g0 + H, cu);  // f
        apply(Tanh(), g0 + 2 * H, g0 + 2 * H, cu);  // g
        auto ct = MapArr<S>(ct_, cu);
        ct = gate(1) * cprev + gate(0) * gate(2);  // c_t = f*c_{t-1} + i*g
        if (peephole) gate(3) += ct * peep(2);  // o looks at c_t
        apply(Sigmoid(), g0 + 3 * H, g0 + 3 * H, cu);  // o
        apply(Tanh(), ct_, ht_, cu);  // h_t = o*tanh(c_t)
        MapArr<S>(ht_, cu) *= gate(3);
        if (len.padded(t, b)) {  // padded examples keep their state
          std::copy_n(cp_, cu, ct_);
          std::copy_n(h_all + (t * B + b) * H + u.j0, cu, ht_);
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
  MapMat<S> dG(dgates, TB, 4 * H), dH(dh0, B, H), dC(dc0, B, H);

  // Carries dH = dL/dh_t and dC = dL/dc_t arriving from step t+1; they end as dh0, dc0.
  // A task owns units [j0, j0+c): at step t it finishes dH[:, j] = dG_{t+1} W_hh[:, j],
  // then the gate gradients of its units.
  if (dh_n) dH = MapConstMat<S>(dh_n, B, H); else dH.setZero();
  if (dc_n) dC = MapConstMat<S>(dc_n, B, H); else dC.setZero();
  const Index n_units = ceil_div(H, kUnitsPerTask), cmax = std::min(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * 4 * H * H);
  if (peephole) MapRowVec<S>(dpeephole, 3 * H).setZero();
  // Per task: the work space, tanh(c_t) of one row, and for variable lengths a (B x cu)
  // product.
  const Index work = PackedLhs<S>::work_size(4 * H, B);
  const Index per_task = work + pad16(cmax) + pad16(B * cmax);
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
      S* tc_ = wk + work;
      auto dHu = dH.middleCols(u.j0, cu);
      if (t < T - 1) {
        const S* dg_next = dgates + (t + 1) * B * 4 * H;
        if (len.any(t + 1)) {  // a padded step passes dL/dh through unchanged
          MapMat<S> acc(tc_ + pad16(cmax), B, cu);
          acc.setZero();
          w_tasks[size_t(k)].multiply_add(dg_next, B, 4 * H, acc.data(), cu, wk);
          for (Index b = 0; b < B; ++b)
            if (!len.padded(t + 1, b)) dHu.row(b) = acc.row(b);
        } else {
          dHu.setZero();
          w_tasks[size_t(k)].multiply_add(dg_next, B, 4 * H, dh0 + u.j0, H, wk);
        }
      }
      if (t < 0) return;  // the carry of step 0 is dh0
      // Row by row, each row's units in contiguous runs: the gates i, f, g, o of the row
      // at g0 + q*H, their gradients at dg0 + q*H.
      for (Index b = 0; b < B; ++b) {
        const Index row = t * B + b;
        S* dh_ = dh0 + b * H + u.j0;
        S* dc_ = dc0 + b * H + u.j0;
        S* dg0 = dgates + row * 4 * H + u.j0;
        if (len.padded(t, b)) {  // carries pass through, no gate gradients
          for (Index q = 0; q < 4; ++q) std::fill_n(dg0 + q * H, cu, S(0));
          continue;
        }
        const S* g0 = gates + row * 4 * H + u.j0;
        auto gate = [&](Index q) { return MapConstArr<S>(g0 + q * H, cu); };
        auto dgate = [&](Index q) { return MapArr<S>(dg0 + q * H, cu); };
        auto i = gate(0), f = gate(1), g = gate(2), o = gate(3);
        auto di = dgate(0), df = dgate(1), dg = dgate(2), d_o = dgate(3);
        auto dha = MapArr<S>(dh_, cu), dc = MapArr<S>(dc_, cu);
        const auto cp = MapConstArr<S>(c_prev + row * H + u.j0, cu);
        if (dh) dha += MapConstArr<S>(dh + row * H + u.j0, cu);
        apply(Tanh(), c + row * H + u.j0, tc_, cu);
        const auto tc = MapConstArr<S>(tc_, cu);
        // h = o*tanh(cu):  dL/do = dh*tanh(cu);  dL/dc += dh*o*(1 - tanh(cu)^2); σ' = σ(1-σ)
        d_o = dha * tc * o * (S(1) - o);
        if (peephole) {
          // With peepholes, o = σ(· + p_o c_t) and i, f = σ(· + p_{i,f} c_{t-1}):
          //   dL/dc_t += d_o p_o;  dL/dc_{t-1} = dc f + di p_i + df p_f
          auto peep = [&](Index q) { return MapConstArr<S>(peephole + q * H + u.j0, cu); };
          dc += dha * o * (S(1) - tc.square()) + d_o * peep(2);
          dg = dc * i * (S(1) - g.square());  // c = f*c_prev + i*g; tanh' = 1 - tanh^2
          di = dc * g * i * (S(1) - i);
          df = dc * cp * f * (S(1) - f);
          dc = dc * f + di * peep(0) + df * peep(1);
          // dp_i = Σ di c_{t-1}, dp_f = Σ df c_{t-1}, dp_o = Σ do c_t, row by row
          MapArr<S>(dpeephole + u.j0, cu) += di * cp;
          MapArr<S>(dpeephole + H + u.j0, cu) += df * cp;
          MapArr<S>(dpeephole + 2 * H + u.j0, cu) += d_o * MapConstArr<S>(c + row * H + u.j0, cu);
        } else {
          dc += dha * o * (S(1) - tc.square());
          dg = dc * i * (S(1) - g.square());  // c = f*c_prev + i*g; tanh' = 1 - tanh^2
          di = dc * g * i * (S(1) - i);
          df = dc * cp * f * (S(1) - f);
          dc *= f;  // dL/dc_{t-1}
        }
      }
    }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
  }

  // Input and parameter gradients: whole-sequence GEMMs after the loop (gemm.hpp):
  //   dx = dG W_ih,  dW_ih = dGᵀ X,  dW_hh = dGᵀ H_prev,  db = Σ_rows dG.
  RNNX_REQUIRE(!(dx && d.ids), "index input has no dx (pass nullptr)");
  if (dx) rows_times(TB, dG.data(), 4 * H, PackedLhs<S>(w_ih, D, 4 * H, D, true), dx, D);
  input_weight_grad(d, 4 * H, dG.data(), 4 * H, x, dw_ih);
  weight_grad(TB, H, 4 * H, h_prev, H, dgates, 4 * H, dw_hh, H);
  if (db) bias_grad(TB, 4 * H, dG.data(), 4 * H, db);
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
