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
  MapConstMat<S> X(x, TB, D), Wih(w_ih, 4 * H, D);
  MapMat<S> G(gates, TB, 4 * H), Hall(h_all, (T + 1) * B, H), Call(c_all, (T + 1) * B, H);

  // Input projection for all steps and all four gates: one GEMM before the loop.
  const InputWeights<S> w_in(d, w_ih, 4 * H);
  const Index n_rows = ceil_div(TB, kRowsPerTask);
  parallel_for(n_rows, [&](Index k) {
    const Rows r(k, TB);
    auto Gr = G.middleRows(r.r0, r.n);
    project_input(Gr, d, x, w_in, r.r0);
    if (b) Gr.rowwise() += MapConstRowVec<S>(b, 4 * H);
  }, worth_parallel(double(TB) * D * 4 * H / double(n_rows)));

  // The time loop: a task owns hidden units [j0, j0+c), i.e. those rows of each gate's
  // block of W_hh, and computes their four gates, cell and hidden state. The task's rows
  // of W_hh are packed once per call into one (4c x H) block (by the thread that will use
  // them, so they stay in its core's cache), so that a step is one GEMM per task (the
  // shared h_{t-1} is packed once, not once per gate). The gates then go through a
  // contiguous scratch (4 blocks of B x c) so that the activations run at full SIMD width
  // even when c is smaller than a vector.
  const Index n_units = ceil_div(H, kUnitsPerTask), cmax = std::min(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * 4 * H * H);
  std::vector<PackedLhs<S>> w_tasks(static_cast<size_t>(n_units));
  parallel_for(n_units, [&](Index k) {
    w_tasks[size_t(k)] = pack_gate_rows(w_hh, H, 0, 4, Units(k, H));
  }, par);
  const Index work = PackedLhs<S>::work_size(H, B);
  const Index gate_blocks = pad16(8 * B * cmax), per_task = gate_blocks + work;
  AlignedVec<S> scratch(size_t(n_units * per_task));
  for (Index t = 0; t < T; ++t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      const Index n = B * u.c;
      S* sc = scratch.data() + k * per_task;  // 4 gate blocks, the product, work
      MapMat<S> prod(sc + 4 * n, B, 4 * u.c);
      prod.setZero();
      w_tasks[size_t(k)].multiply_add(h_all + t * B * H, B, H, prod.data(), 4 * u.c,
                                      sc + gate_blocks);
      for (Index q = 0; q < 4; ++q)  // gate q: columns q*H + [j0, j0+c) of the step's gates
        MapMat<S>(sc + q * n, B, u.c) =
            G.block(t * B, q * H + u.j0, B, u.c) + prod.middleCols(q * u.c, u.c);
      auto gate = [&](Index q) { return MapMat<S>(sc + q * n, B, u.c).array(); };
      auto cprev = Call.block(t * B, u.j0, B, u.c).array();
      auto peep = [&](Index q) { return MapConstRowVec<S>(peephole + q * H + u.j0, u.c).array(); };
      if (peephole) {  // i and f look at c_{t-1}
        gate(0) += cprev.rowwise() * peep(0);
        gate(1) += cprev.rowwise() * peep(1);
      }
      apply(Sigmoid(), sc, sc, 2 * n);  // i, f
      apply(Tanh(), sc + 2 * n, sc + 2 * n, n);  // g
      auto ct = Call.block((t + 1) * B, u.j0, B, u.c);
      auto ht = Hall.block((t + 1) * B, u.j0, B, u.c);
      ct.array() = gate(1) * cprev + gate(0) * gate(2);  // c_t = f*c_{t-1} + i*g
      if (peephole) gate(3) += ct.array().rowwise() * peep(2);  // o looks at c_t
      apply(Sigmoid(), sc + 3 * n, sc + 3 * n, n);  // o
      for (Index q = 0; q < 4; ++q)
        G.block(t * B, q * H + u.j0, B, u.c) = MapMat<S>(sc + q * n, B, u.c);
      apply_block(Tanh(), ct, ht);  // h_t = o*tanh(c_t)
      ht.array() *= gate(3);
      if (len.any(t))  // padded examples keep their state
        for (Index b = 0; b < B; ++b)
          if (len.padded(t, b)) {
            ct.row(b) = Call.block(t * B + b, u.j0, 1, u.c);
            ht.row(b) = Hall.block(t * B + b, u.j0, 1, u.c);
          }
    }, par);
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
  MapConstMat<S> X(x, TB, D), Wih(w_ih, 4 * H, D);
  MapConstMat<S> G(gates, TB, 4 * H), Hprev(h_prev, TB, H);
  MapConstMat<S> C(c, TB, H), Cprev(c_prev, TB, H);
  MapMat<S> dG(dgates, TB, 4 * H), dH(dh0, B, H), dC(dc0, B, H);

  // Carries dH = dL/dh_t and dC = dL/dc_t arriving from step t+1; they end as dh0, dc0.
  // A task owns units [j0, j0+c): at step t it finishes dH[:, j] = dG_{t+1} W_hh[:, j],
  // then the gate gradients of its units.
  if (dh_n) dH = MapConstMat<S>(dh_n, B, H); else dH.setZero();
  if (dc_n) dC = MapConstMat<S>(dc_n, B, H); else dC.setZero();
  const Index n_units = ceil_div(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * 4 * H * H);
  if (peephole) MapRowVec<S>(dpeephole, 3 * H).setZero();
  // Per task: gates, their gradients, tanh(c) (blocks 0-8), then for variable lengths a
  // product (9) and the carries kept for padded examples (10, 11); blocks of B x c.
  const Index work = PackedLhs<S>::work_size(4 * H, B);
  const Index per_task = pad16(12 * B * std::min(H, kUnitsPerTask)) + work;
  AlignedVec<S> scratch(size_t(n_units * per_task));
  std::vector<PackedLhs<S>> w_tasks(static_cast<size_t>(n_units));  // W_hh[:, j0:j0+c]
  parallel_for(n_units, [&](Index k) {
    w_tasks[size_t(k)] = pack_carry_cols(w_hh, H, 0, 4 * H, Units(k, H));
  }, par);
  for (Index t = T - 1; t >= -1; --t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      const Index n = B * u.c;
      S* sc = scratch.data() + k * per_task;
      auto dHu = dH.middleCols(u.j0, u.c);
      auto dCu = dC.middleCols(u.j0, u.c);
      if (t < T - 1) {
        const S* dg_next = dgates + (t + 1) * B * 4 * H;
        S* wk = sc + pad16(12 * B * std::min(H, kUnitsPerTask));
        if (len.any(t + 1)) {  // a padded step passes dL/dh through unchanged
          MapMat<S> acc(sc + 9 * n, B, u.c);
          acc.setZero();
          w_tasks[size_t(k)].multiply_add(dg_next, B, 4 * H, acc.data(), u.c, wk);
          for (Index b = 0; b < B; ++b)
            if (!len.padded(t + 1, b)) dHu.row(b) = acc.row(b);
        } else {
          dHu.setZero();
          w_tasks[size_t(k)].multiply_add(dg_next, B, 4 * H, dh0 + u.j0, H, wk);
        }
      }
      if (t < 0) return;  // the carry of step 0 is dh0
      const bool pad = len.any(t);
      MapMat<S> keep_h(sc + 10 * n, B, u.c), keep_c(sc + 11 * n, B, u.c);
      if (pad) {
        keep_h = dHu;
        keep_c = dCu;
      }
      if (dh) dHu += MapConstMat<S>(dh + t * B * H, B, H).middleCols(u.j0, u.c);
      // The task's gates and gate gradients in contiguous blocks of B x c (full SIMD width).
      for (Index q = 0; q < 4; ++q)
        MapMat<S>(sc + q * n, B, u.c) = G.block(t * B, q * H + u.j0, B, u.c);
      // tanh(c_t) of the task's units into scratch block 8
      apply_rows(Tanh(), c + t * B * H + u.j0, H, sc + 8 * n, u.c, B, u.c);
      auto step = [](auto&& i, auto&& f, auto&& g, auto&& o, auto&& di, auto&& df, auto&& dg,
                     auto&& d_o, auto&& tc, auto&& cp, auto&& dh, auto&& dc) {
        using T_ = typename std::decay_t<decltype(i)>::Scalar;
        const T_ one(1);
        // h = o*tanh(c):  dL/do = dh*tanh(c);  dL/dc += dh*o*(1 - tanh(c)^2)
        d_o = dh * tc * o * (one - o);  // σ'(a) = σ(1-σ)
        dc += dh * o * (one - tc.square());
        // c = f*c_prev + i*g
        dg = dc * i * (one - g.square());  // tanh'(a) = 1 - tanh^2
        di = dc * g * i * (one - i);
        df = dc * cp * f * (one - f);
        dc *= f;  // dL/dc_{t-1}
      };
      if (peephole) {
        // With peepholes, o = σ(· + p_o c_t) and i, f = σ(· + p_{i,f} c_{t-1}):
        //   dL/dc_t += d_o p_o;  dL/dc_{t-1} = dc f + di p_i + df p_f
        auto a = [&](Index q) { return MapMat<S>(sc + q * n, B, u.c).array(); };
        auto peep = [&](Index q) {
          return MapConstRowVec<S>(peephole + q * H + u.j0, u.c).array();
        };
        auto i = a(0), f = a(1), g = a(2), o = a(3), di = a(4), df = a(5), dg = a(6), d_o = a(7),
             tc = a(8);
        auto cp = Cprev.block(t * B, u.j0, B, u.c).array();
        auto dc = dCu.array();
        const auto dha = dHu.array();
        d_o = dha * tc * o * (S(1) - o);
        dc += dha * o * (S(1) - tc.square()) + d_o.rowwise() * peep(2);
        dg = dc * i * (S(1) - g.square());
        di = dc * g * i * (S(1) - i);
        df = dc * cp * f * (S(1) - f);
        dc = dc * f + di.rowwise() * peep(0) + df.rowwise() * peep(1);
      } else if (u.c == H) {
        auto a = [&](Index q) { return MapArr<S>(sc + q * n, n); };
        step(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7), a(8),
             MapConstArr<S>(c_prev + t * B * H, n), MapArr<S>(dh0, n), MapArr<S>(dc0, n));
      } else {
        auto a = [&](Index q) { return MapMat<S>(sc + q * n, B, u.c).array(); };
        step(a(0), a(1), a(2), a(3), a(4), a(5), a(6), a(7), a(8),
             Cprev.block(t * B, u.j0, B, u.c).array(), dHu.array(), dCu.array());
      }
      for (Index q = 0; q < 4; ++q)
        dG.block(t * B, q * H + u.j0, B, u.c) = MapMat<S>(sc + (4 + q) * n, B, u.c);
      if (pad)  // padded examples: carries pass through, no gate gradients
        for (Index b = 0; b < B; ++b)
          if (len.padded(t, b)) {
            dHu.row(b) = keep_h.row(b);
            dCu.row(b) = keep_c.row(b);
            for (Index q = 0; q < 4; ++q) dG.block(t * B + b, q * H + u.j0, 1, u.c).setZero();
          }
      if (peephole)  // dp_i = Σ di c_{t-1}, dp_f = Σ df c_{t-1}, dp_o = Σ do c_t, row by row
        for (Index b = 0; b < B; ++b) {
          const Index row = t * B + b;
          auto cp = Cprev.block(row, u.j0, 1, u.c).array();
          MapRowVec<S>(dpeephole + u.j0, u.c).array() += dG.block(row, u.j0, 1, u.c).array() * cp;
          MapRowVec<S>(dpeephole + H + u.j0, u.c).array() +=
              dG.block(row, H + u.j0, 1, u.c).array() * cp;
          MapRowVec<S>(dpeephole + 2 * H + u.j0, u.c).array() +=
              dG.block(row, 3 * H + u.j0, 1, u.c).array() * C.block(row, u.j0, 1, u.c).array();
        }
    }, par);
  }

  // Input and parameter gradients: whole-sequence GEMMs after the loop (gemm.hpp):
  //   dx = dG W_ih,  dW_ih = dGᵀ X,  dW_hh = dGᵀ H_prev,  db = Σ_rows dG.
  RNNX_REQUIRE(!(dx && d.ids), "index input has no dx (pass nullptr)");
  if (dx) rows_times(TB, dG.data(), 4 * H, PackedLhs<S>(w_ih, D, 4 * H, D, true), dx, D);
  input_weight_grad(d, 4 * H, dG.data(), 4 * H, x, dw_ih);
  weight_grad(TB, H, 4 * H, Hprev.data(), H, dG.data(), 4 * H, dw_hh, H);
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
