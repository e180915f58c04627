#include "rnnx/lstm.hpp"

#include <algorithm>
#include <vector>

#include "rnnx/activations.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

namespace {
struct Units {
  Index j0, c;
  Units(Index k, Index H) : j0(k * kUnitsPerTask), c(std::min(kUnitsPerTask, H - k * kUnitsPerTask)) {}
};
struct Rows {
  Index r0, n;
  Rows(Index k, Index R) : r0(k * kRowsPerTask), n(std::min(kRowsPerTask, R - k * kRowsPerTask)) {}
};
}  // namespace

template <typename S>
void lstm_forward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* b,
                  S* gates, S* h_all, S* c_all) {
  check_dims(d);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B;
  MapConstMat<S> X(x, TB, D), Wih(w_ih, 4 * H, D), Whh(w_hh, 4 * H, H);
  MapMat<S> G(gates, TB, 4 * H), Hall(h_all, (T + 1) * B, H), Call(c_all, (T + 1) * B, H);

  // Input projection for all steps and all four gates: one GEMM before the loop.
  const Index n_rows = ceil_div(TB, kRowsPerTask);
  parallel_for(n_rows, [&](Index k) {
    const Rows r(k, TB);
    auto Gr = G.middleRows(r.r0, r.n);
    Gr.noalias() = X.middleRows(r.r0, r.n) * Wih.transpose();
    if (b) Gr.rowwise() += MapConstRowVec<S>(b, 4 * H);
  }, worth_parallel(double(TB) * D * 4 * H / double(n_rows)));

  // The time loop: a task owns hidden units [j0, j0+c), i.e. those rows of each gate's
  // block of W_hh, and computes their four gates, cell and hidden state.
  const Index n_units = ceil_div(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * 4 * H * H);
  for (Index t = 0; t < T; ++t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      auto gt = G.middleRows(t * B, B);
      auto hprev = Hall.middleRows(t * B, B);
      for (Index q = 0; q < 4; ++q)  // gate q: columns q*H + [j0, j0+c)
        gt.middleCols(q * H + u.j0, u.c).noalias() +=
            hprev * Whh.middleRows(q * H + u.j0, u.c).transpose();
      auto i = gt.middleCols(u.j0, u.c).array();
      auto f = gt.middleCols(H + u.j0, u.c).array();
      auto g = gt.middleCols(2 * H + u.j0, u.c).array();
      auto o = gt.middleCols(3 * H + u.j0, u.c).array();
      sigmoid_to(i, i);
      sigmoid_to(f, f);
      tanh_to(g, g);
      sigmoid_to(o, o);
      auto ct = Call.block((t + 1) * B, u.j0, B, u.c).array();
      ct = f * Call.block(t * B, u.j0, B, u.c).array() + i * g;  // c_t = f*c_{t-1} + i*g
      auto ht = Hall.block((t + 1) * B, u.j0, B, u.c).array();
      tanh_to(ht, ct);
      ht *= o;  // h_t = o*tanh(c_t)
    }, par);
  }
}

template <typename S>
void lstm_backward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* gates,
                   const S* h_prev, const S* c, const S* c_prev, const S* dh, const S* dh_n,
                   const S* dc_n, S* dgates, S* dx, S* dh0, S* dc0, S* dw_ih, S* dw_hh, S* db) {
  check_dims(d);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B;
  MapConstMat<S> X(x, TB, D), Wih(w_ih, 4 * H, D), Whh(w_hh, 4 * H, H);
  MapConstMat<S> G(gates, TB, 4 * H), Hprev(h_prev, TB, H);
  MapConstMat<S> C(c, TB, H), Cprev(c_prev, TB, H);
  MapMat<S> dG(dgates, TB, 4 * H), dH(dh0, B, H), dC(dc0, B, H);

  // Carries dH = dL/dh_t and dC = dL/dc_t arriving from step t+1; they end as dh0, dc0.
  // A task owns units [j0, j0+c): at step t it finishes dH[:, j] = dG_{t+1} W_hh[:, j],
  // then the gate gradients of its units.
  if (dh_n) dH = MapConstMat<S>(dh_n, B, H); else dH.setZero();
  if (dc_n) dC = MapConstMat<S>(dc_n, B, H); else dC.setZero();
  Eigen::Array<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> tanh_c(B, H);
  const Index n_units = ceil_div(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * 4 * H * H);
  for (Index t = T - 1; t >= -1; --t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      auto dHu = dH.middleCols(u.j0, u.c);
      if (t < T - 1) dHu.noalias() = dG.middleRows((t + 1) * B, B) * Whh.middleCols(u.j0, u.c);
      if (t < 0) return;  // the carry of step 0 is dh0
      if (dh) dHu += MapConstMat<S>(dh + t * B * H, B, H).middleCols(u.j0, u.c);
      auto gt = G.middleRows(t * B, B).array();
      auto i = gt.middleCols(u.j0, u.c), f = gt.middleCols(H + u.j0, u.c),
           g = gt.middleCols(2 * H + u.j0, u.c), o = gt.middleCols(3 * H + u.j0, u.c);
      auto dgt = dG.middleRows(t * B, B).array();
      auto di = dgt.middleCols(u.j0, u.c), df = dgt.middleCols(H + u.j0, u.c),
           dg = dgt.middleCols(2 * H + u.j0, u.c), d_o = dgt.middleCols(3 * H + u.j0, u.c);
      auto tc = tanh_c.middleCols(u.j0, u.c);
      auto dCu = dC.middleCols(u.j0, u.c).array();
      tanh_to(tc, C.block(t * B, u.j0, B, u.c).array());
      // h = o*tanh(c):  dL/do = dh*tanh(c);  dL/dc += dh*o*(1 - tanh(c)^2)
      d_o = dHu.array() * tc * o * (S(1) - o);  // σ'(a) = σ(1-σ)
      dCu += dHu.array() * o * (S(1) - tc.square());
      // c = f*c_prev + i*g
      dg = dCu * i * (S(1) - g.square());  // tanh'(a) = 1 - tanh^2
      di = dCu * g * i * (S(1) - i);
      df = dCu * Cprev.block(t * B, u.j0, B, u.c).array() * f * (S(1) - f);
      dCu *= f;  // dL/dc_{t-1}
    }, par);
  }

  // Input and parameter gradients: whole-sequence GEMMs after the loop, in fixed blocks
  // of rows (dx) and of gate rows (dW_ih, dW_hh, db).
  const Index n_rows = dx ? ceil_div(TB, kRowsPerTask) : 0;
  const Index n_gate_rows = ceil_div(4 * H, kUnitsPerTask);
  parallel_for(n_rows + n_gate_rows, [&](Index k) {
    if (k < n_rows) {
      const Rows r(k, TB);
      MapMat<S>(dx, TB, D).middleRows(r.r0, r.n).noalias() = dG.middleRows(r.r0, r.n) * Wih;
      return;
    }
    const Units u(k - n_rows, 4 * H);
    auto dGu = dG.middleCols(u.j0, u.c);
    MapMat<S>(dw_ih, 4 * H, D).middleRows(u.j0, u.c).noalias() = dGu.transpose() * X;
    MapMat<S>(dw_hh, 4 * H, H).middleRows(u.j0, u.c).noalias() = dGu.transpose() * Hprev;
    if (db) MapRowVec<S>(db, 4 * H).segment(u.j0, u.c) = dGu.colwise().sum();
  }, worth_parallel(double(TB) * (D + H) * std::min(4 * H, kUnitsPerTask)));
}

#define RNNX_INSTANTIATE(S)                                                                  \
  template void lstm_forward<S>(const SeqDims&, const S*, const S*, const S*, const S*, S*,  \
                                S*, S*);                                                     \
  template void lstm_backward<S>(const SeqDims&, const S*, const S*, const S*, const S*,     \
                                 const S*, const S*, const S*, const S*, const S*, const S*, \
                                 S*, S*, S*, S*, S*, S*, S*);
RNNX_INSTANTIATE(float)
RNNX_INSTANTIATE(double)
#undef RNNX_INSTANTIATE

}  // namespace rnnx
