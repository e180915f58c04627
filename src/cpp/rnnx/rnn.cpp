#include "rnnx/rnn.hpp"

#include "rnnx/activations.hpp"

namespace rnnx {

template <typename S>
void rnn_forward(const SeqDims& d, Nonlinearity f, const S* x, const S* w_ih, const S* w_hh,
                 const S* b, S* h_all) {
  check_dims(d);
  const Index T = d.T, B = d.B, D = d.D, H = d.H;
  MapConstMat<S> X(x, T * B, D), Wih(w_ih, H, D), Whh(w_hh, H, H);
  MapMat<S> Hall(h_all, (T + 1) * B, H);
  auto Z = Hall.bottomRows(T * B);  // z_t is computed in place of h_t

  // Input projection for all steps: one GEMM before the loop.
  Z.noalias() = X * Wih.transpose();
  if (b) Z.rowwise() += MapConstRowVec<S>(b, H);

  for (Index t = 0; t < T; ++t) {
    auto zt = Z.middleRows(t * B, B);
    zt.noalias() += Hall.middleRows(t * B, B) * Whh.transpose();  // + h_{t-1} W_hhᵀ
    if (f == Nonlinearity::Tanh)
      tanh_to(zt.array(), zt.array());
    else
      zt = zt.cwiseMax(S(0));
  }
}

template <typename S>
void rnn_backward(const SeqDims& d, Nonlinearity f, const S* x, const S* w_ih, const S* w_hh,
                  const S* h, const S* h_prev, const S* dh, const S* dh_n, S* dz, S* dx, S* dh0,
                  S* dw_ih, S* dw_hh, S* db) {
  check_dims(d);
  const Index T = d.T, B = d.B, D = d.D, H = d.H;
  MapConstMat<S> X(x, T * B, D), Wih(w_ih, H, D), Whh(w_hh, H, H);
  MapConstMat<S> Hs(h, T * B, H), Hprev(h_prev, T * B, H);
  MapMat<S> dZ(dz, T * B, H), dH0(dh0, B, H);

  // carry = dL/dh_t arriving through the recurrence; it ends as dL/dh0.
  if (dh_n)
    dH0 = MapConstMat<S>(dh_n, B, H);
  else
    dH0.setZero();
  for (Index t = T - 1; t >= 0; --t) {
    auto dzt = dZ.middleRows(t * B, B);
    auto ht = Hs.middleRows(t * B, B);
    if (dh)
      dzt = MapConstMat<S>(dh + t * B * H, B, H) + dH0;
    else
      dzt = dH0;
    if (f == Nonlinearity::Tanh)
      dzt.array() *= S(1) - ht.array().square();  // tanh'(z) = 1 - tanh(z)^2
    else
      dzt.array() = (ht.array() > S(0)).select(dzt.array(), S(0));  // relu'(z) = [z > 0]
    dH0.noalias() = dzt * Whh;  // dL/dh_{t-1} = dz_t W_hh
  }

  // Parameter and input gradients: whole-sequence GEMMs after the loop.
  if (dx) MapMat<S>(dx, T * B, D).noalias() = dZ * Wih;
  MapMat<S>(dw_ih, H, D).noalias() = dZ.transpose() * X;
  MapMat<S>(dw_hh, H, H).noalias() = dZ.transpose() * Hprev;
  if (db) MapRowVec<S>(db, H) = dZ.colwise().sum();
}

#define RNNX_INSTANTIATE(S)                                                                    \
  template void rnn_forward<S>(const SeqDims&, Nonlinearity, const S*, const S*, const S*,     \
                               const S*, S*);                                                  \
  template void rnn_backward<S>(const SeqDims&, Nonlinearity, const S*, const S*, const S*,    \
                                const S*, const S*, const S*, const S*, S*, S*, S*, S*, S*, S*);
RNNX_INSTANTIATE(float)
RNNX_INSTANTIATE(double)
#undef RNNX_INSTANTIATE

}  // namespace rnnx
