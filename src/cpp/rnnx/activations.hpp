// Element-wise activations, vectorised for float and double.
//
// Eigen 3.4 vectorises exp() for float and double but tanh() only for float, so the
// double tanh is written here from vectorisable pieces:
//   |x| <  0.625: tanh(x) = x + x*z*P(z)/Q(z), z = x^2 (a rational minimax fit with the
//                 coefficients published in the Cephes math library; ~1 ulp)
//   |x| >= 0.625: tanh(|x|) = 1 - 2/(exp(2|x|) + 1), sign restored (no cancellation:
//                 the result is at least 0.55)
// Both branches are evaluated and blended with select(), which keeps the loop SIMD.
// exp(2|x|) = inf for |x| > ~355 gives exactly 1; NaN propagates.
//   sigmoid(x) = 1 / (1 + exp(-x))   (exp(-x) = inf gives exactly 0, never NaN)
//
// Each function writes dst = f(x) for Eigen array expressions of equal shape; dst may
// be x itself (evaluation is coefficient-wise, no temporaries, no allocation).
#pragma once

#include <Eigen/Core>
#include <type_traits>

namespace rnnx {

template <typename Dst, typename Src>
inline void sigmoid_to(Dst&& dst, const Src& x) {
  using S = typename std::decay_t<Src>::Scalar;
  dst = (S(1) + (-x).exp()).inverse();
}

template <typename Dst, typename Src>
inline void tanh_to(Dst&& dst, const Src& x) {
  using S = typename std::decay_t<Src>::Scalar;
  if constexpr (std::is_same_v<S, double>) {
    const S P0 = -9.64399179425052238628e-1, P1 = -9.92877231001918586564e1,
            P2 = -1.61468768441708447952e3;
    const S Q0 = 1.12811678491632931402e2, Q1 = 2.23548839060100448583e3,
            Q2 = 4.84406305325125486048e3;
    const auto z = x * x;
    const auto small = x + x * z * ((P0 * z + P1) * z + P2) / (((z + Q0) * z + Q1) * z + Q2);
    const auto big = S(1) - S(2) / ((S(2) * x.abs()).exp() + S(1));
    dst = (x.abs() < S(0.625)).select(small, (x < S(0)).select(-big, big));
  } else {
    dst = x.tanh();
  }
}

}  // namespace rnnx
