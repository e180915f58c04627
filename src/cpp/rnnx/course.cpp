#include "rnnx/course.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "rnnx/activations.hpp"
#include "rnnx/gemm.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

template <typename S>
void softmax_steps(Index T, Index B, Index V, S* y) {
  // exp(z) underflows to 0 exactly when z < log(smallest subnormal) (about -745 in double).
  static const S underflow = std::log(std::numeric_limits<S>::denorm_min());
  for (Index t = 0; t < T; ++t) {
    S* yt = y + t * B * V;
    MapMat<S> Yt(yt, B, V);
    const S shift = Yt.maxCoeff();
    // The course shifts the whole (B x V) block by its max: one contiguous SIMD pass.
    MapArr<S> all(yt, B * V);
    // A row whose max lies ~745 below the block's underflows to all zeros, where the
    // course returns 0/0 = NaN; such a row is shifted by its own max instead.
    for (Index j = 0; j < B; ++j) {
      const S row_max = Yt.row(j).maxCoeff();
      if (!(row_max - shift > underflow)) Yt.row(j).array() += shift - row_max;
    }
    all = (all - shift).exp();
    for (Index j = 0; j < B; ++j) Yt.row(j) /= Yt.row(j).sum();
  }
}

template <typename S>
void dense_head(Index TB, Index H, Index V, const S* h, const S* w_y, const S* b_y, S* y) {
  MapMat<S> Y(y, TB, V);
  MapConstMat<S> Hs(h, TB, H), Wy(w_y, V, H);
  const Index n_rows = ceil_div(TB, kRowsPerTask);
  parallel_for(n_rows, [&](Index k) {
    const Index r0 = k * kRowsPerTask, n = std::min(kRowsPerTask, TB - r0);
    auto Yr = Y.middleRows(r0, n);
    matmul<false>(Yr, Hs.middleRows(r0, n), Wy.transpose());
    Yr.rowwise() += MapConstRowVec<S>(b_y, V);
  }, worth_parallel(double(TB) * H * V / double(n_rows)));
}

namespace {
void check_index(std::int64_t ix, Index V, const char* what, Index t) {
  RNNX_REQUIRE(ix >= 0 && ix < V, std::string(what) + "[" + std::to_string(t) + "] = " +
                                 std::to_string(ix) + " is out of range for vocab_size " +
                                 std::to_string(V));
}
}  // namespace

template <typename S>
S char_rnn_forward(const CharRnnParams<S>& p, Index T, const std::int64_t* X,
                   const std::int64_t* Y, S* a_all, S* y_hat) {
  const Index H = p.H, V = p.V;
  for (Index t = 0; t < T; ++t) {
    if (X[t] >= 0) check_index(X[t], V, "X", t);
    check_index(Y[t], V, "Y", t);
  }
  MapConstMat<S> Wax(p.wax, H, V), Waa(p.waa, H, H);
  MapMat<S> A(a_all, T + 1, H);
  MapConstRowVec<S> b(p.b, H);
  for (Index t = 0; t < T; ++t) {
    auto at = A.row(t + 1);
    matmul<false>(at, A.row(t), Waa.transpose());
    if (X[t] >= 0) at += Wax.col(X[t]).transpose();  // W_ax x_t for a one-hot x_t
    at += b;
    apply(Tanh(), at.data(), at.data(), H);
  }
  dense_head<S>(T, H, V, a_all + H, p.wya, p.by, y_hat);
  softmax_steps<S>(T, 1, V, y_hat);
  S loss = 0;
  for (Index t = 0; t < T; ++t) loss -= std::log(y_hat[t * V + Y[t]]);
  return loss;
}

template <typename S>
void char_rnn_backward(const CharRnnParams<S>& p, Index T, const std::int64_t* X,
                       const std::int64_t* Y, const S* a, const S* a_prev, const S* y_hat,
                       S* dz, S* dwax, S* dwaa, S* dwya, S* db, S* dby, S* da_next) {
  const Index H = p.H, V = p.V;
  for (Index t = 0; t < T; ++t) {
    if (X[t] >= 0) check_index(X[t], V, "X", t);
    check_index(Y[t], V, "Y", t);
  }
  MapConstMat<S> Waa(p.waa, H, H), Wya(p.wya, V, H), A(a, T, H), Aprev(a_prev, T, H);
  MapMat<S> dZ(dz, T, H), dWax(dwax, H, V);
  MapRowVec<S> dA(da_next, H);

  // dy_t = ŷ_t - onehot(Y[t]) for all steps, then the head's gradients as GEMMs.
  RowMat<S> dY = MapConstMat<S>(y_hat, T, V);
  for (Index t = 0; t < T; ++t) dY(t, Y[t]) -= S(1);
  matmul<false>(MapMat<S>(dwya, V, H), dY.transpose(), A);
  bias_grad(T, V, dY.data(), V, dby);
  matmul<false>(dZ, dY, Wya);  // W_yaᵀ dy_t for every step

  dA.setZero();
  for (Index t = T - 1; t >= 0; --t) {
    auto dzt = dZ.row(t);
    dzt += dA;
    dzt.array() *= S(1) - A.row(t).array().square();  // tanh'(z) = 1 - a^2
    matmul<false>(dA, dzt, Waa);
  }
  matmul<false>(MapMat<S>(dwaa, H, H), dZ.transpose(), Aprev);
  bias_grad(T, H, dz, H, db);
  dWax.setZero();
  for (Index t = T - 1; t >= 0; --t)
    if (X[t] >= 0) dWax.col(X[t]) += dZ.row(t).transpose();
}

template <typename S>
std::vector<std::int64_t> char_rnn_sample(const CharRnnParams<S>& p, std::int64_t eos,
                                          std::int64_t seed0, LegacyMT19937& rng) {
  const Index H = p.H, V = p.V;
  RNNX_REQUIRE(eos >= 0 && eos < V, "the end-of-sequence index is out of range for the vocabulary");
  MapConstMat<S> Wax(p.wax, H, V), Waa(p.waa, H, H), Wya(p.wya, V, H);
  MapConstRowVec<S> b(p.b, H), by(p.by, V);
  RowVec<S> a = RowVec<S>::Zero(H), a_next(H), y(V);
  Eigen::Matrix<double, 1, Eigen::Dynamic> cdf(V);
  std::vector<std::int64_t> out;
  std::int64_t idx = -1, seed = seed0;
  int counter = 0;
  for (; idx != eos && counter != 50; ++counter, ++seed) {
    matmul<false>(a_next, a, Waa.transpose());
    if (idx >= 0) a_next += Wax.col(idx).transpose();
    a_next += b;
    apply(Tanh(), a_next.data(), a_next.data(), H);
    matmul<false>(y, a_next, Wya.transpose());
    y += by;
    softmax_steps<S>(1, 1, V, y.data());
    // RandomState.choice(V, p=y): cdf = cumsum(p) / its last entry, u = random_sample(),
    // idx = number of cdf entries <= u (searchsorted side='right').
    double acc = 0;
    for (Index v = 0; v < V; ++v) {
      const double pv = double(y[v]);
      RNNX_REQUIRE(std::isfinite(pv) && pv >= 0,
              "sample: the probabilities contain NaN or negative values (non-finite parameters?)");
      acc += pv;
      cdf[v] = acc;
    }
    RNNX_REQUIRE(std::fabs(acc - 1.0) <= 1.4901161193847656e-08, "sample: probabilities do not sum to 1");
    cdf /= cdf[V - 1];
    RNNX_REQUIRE(seed + counter >= 0 && seed + counter <= 0xffffffffLL,
            "sample: seed must be between 0 and 2**32 - 1");
    rng.seed(std::uint32_t(seed + counter));
    const double u = rng.next_double();
    idx = std::upper_bound(cdf.data(), cdf.data() + V, u) - cdf.data();
    out.push_back(idx);
    a = a_next;
  }
  if (counter == 50) out.push_back(eos);  // as the course does, even after a drawn eos
  return out;
}

#define RNNX_INSTANTIATE(S)                                                                   \
  template void softmax_steps<S>(Index, Index, Index, S*);                                    \
  template void dense_head<S>(Index, Index, Index, const S*, const S*, const S*, S*);         \
  template S char_rnn_forward<S>(const CharRnnParams<S>&, Index, const std::int64_t*,         \
                                 const std::int64_t*, S*, S*);                                \
  template void char_rnn_backward<S>(const CharRnnParams<S>&, Index, const std::int64_t*,     \
                                     const std::int64_t*, const S*, const S*, const S*, S*,   \
                                     S*, S*, S*, S*, S*, S*);                                 \
  template std::vector<std::int64_t> char_rnn_sample<S>(const CharRnnParams<S>&, std::int64_t, \
                                                        std::int64_t, LegacyMT19937&);
RNNX_INSTANTIATE(float)
RNNX_INSTANTIATE(double)
#undef RNNX_INSTANTIATE

}  // namespace rnnx
