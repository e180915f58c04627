#include "rnnx/lstm.hpp"

#include <vector>

#include "rnnx/activations.hpp"

namespace rnnx {

template <typename S>
void lstm_forward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* b,
                  S* gates, S* h_all, S* c_all) {
  check_dims(d);
  const Index T = d.T, B = d.B, D = d.D, H = d.H;
  MapConstMat<S> X(x, T * B, D), Wih(w_ih, 4 * H, D), Whh(w_hh, 4 * H, H);
  MapMat<S> G(gates, T * B, 4 * H), Hall(h_all, (T + 1) * B, H), Call(c_all, (T + 1) * B, H);

  // Input projection for all steps and all four gates: one GEMM before the loop.
  G.noalias() = X * Wih.transpose();
  if (b) G.rowwise() += MapConstRowVec<S>(b, 4 * H);

  for (Index t = 0; t < T; ++t) {
    auto gt = G.middleRows(t * B, B);
    gt.noalias() += Hall.middleRows(t * B, B) * Whh.transpose();
    auto i_f = gt.leftCols(2 * H).array();  // i and f are adjacent: one sigmoid pass
    sigmoid_to(i_f, i_f);
    auto g = gt.middleCols(2 * H, H).array();
    tanh_to(g, g);
    auto o = gt.rightCols(H).array();
    sigmoid_to(o, o);
    auto ct = Call.middleRows((t + 1) * B, B).array();
    ct = gt.middleCols(H, H).array() * Call.middleRows(t * B, B).array() +
         gt.leftCols(H).array() * g;
    auto ht = Hall.middleRows((t + 1) * B, B).array();
    tanh_to(ht, ct);
    ht *= o;
  }
}

template <typename S>
void lstm_backward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* gates,
                   const S* h_prev, const S* c, const S* c_prev, const S* dh, const S* dh_n,
                   const S* dc_n, S* dgates, S* dx, S* dh0, S* dc0, S* dw_ih, S* dw_hh, S* db) {
  check_dims(d);
  const Index T = d.T, B = d.B, D = d.D, H = d.H;
  MapConstMat<S> X(x, T * B, D), Wih(w_ih, 4 * H, D), Whh(w_hh, 4 * H, H);
  MapConstMat<S> G(gates, T * B, 4 * H), Hprev(h_prev, T * B, H);
  MapConstMat<S> C(c, T * B, H), Cprev(c_prev, T * B, H);
  MapMat<S> dG(dgates, T * B, 4 * H), dH(dh0, B, H), dC(dc0, B, H);

  // Carries: dH = dL/dh_t and dC = dL/dc_t arriving from step t+1; they end as dh0, dc0.
  if (dh_n) dH = MapConstMat<S>(dh_n, B, H); else dH.setZero();
  if (dc_n) dC = MapConstMat<S>(dc_n, B, H); else dC.setZero();
  Eigen::Array<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> tc(B, H);  // tanh(c_t)

  for (Index t = T - 1; t >= 0; --t) {
    auto gt = G.middleRows(t * B, B).array();
    auto i = gt.leftCols(H), f = gt.middleCols(H, H), g = gt.middleCols(2 * H, H),
         o = gt.rightCols(H);
    auto dgt = dG.middleRows(t * B, B).array();
    auto di = dgt.leftCols(H), df = dgt.middleCols(H, H), dg = dgt.middleCols(2 * H, H),
         d_o = dgt.rightCols(H);
    tanh_to(tc, C.middleRows(t * B, B).array());
    if (dh) dH += MapConstMat<S>(dh + t * B * H, B, H);  // dh_t in total
    // h = o*tanh(c):  dL/do = dh*tanh(c);  dL/dc += dh*o*(1 - tanh(c)^2)
    d_o = dH.array() * tc * o * (S(1) - o);  // σ'(a) = σ(1-σ)
    dC.array() += dH.array() * o * (S(1) - tc.square());
    // c = f*c_prev + i*g
    dg = dC.array() * i * (S(1) - g.square());  // tanh'(a) = 1 - tanh^2
    di = dC.array() * g * i * (S(1) - i);
    df = dC.array() * Cprev.middleRows(t * B, B).array() * f * (S(1) - f);
    dC.array() *= f;                                    // dL/dc_{t-1}
    dH.noalias() = dG.middleRows(t * B, B) * Whh;       // dL/dh_{t-1}
  }

  // Parameter and input gradients: whole-sequence GEMMs after the loop.
  if (dx) MapMat<S>(dx, T * B, D).noalias() = dG * Wih;
  MapMat<S>(dw_ih, 4 * H, D).noalias() = dG.transpose() * X;
  MapMat<S>(dw_hh, 4 * H, H).noalias() = dG.transpose() * Hprev;
  if (db) MapRowVec<S>(db, 4 * H) = dG.colwise().sum();
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
