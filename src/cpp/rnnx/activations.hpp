// Element-wise activations, vectorised for float and double.
//
// Eigen 3.4 vectorises exp() for float and double but tanh() only for float, and its
// select() does not vectorise at all, so the double tanh is an Eigen functor with a
// packet path written from Eigen's packet primitives:
//   |x| <  0.625: tanh(x) = x + x*z*P(z)/Q(z), z = x^2 (a rational minimax fit with the
//                 coefficients published in the Cephes math library; ~1 ulp)
//   |x| >= 0.625: tanh(|x|) = 1 - 2/(exp(2|x|) + 1), sign restored (no cancellation:
//                 the result is at least 0.55)
// Both branches are computed and blended per lane. exp(2|x|) = inf for |x| > ~355 gives
// exactly 1; NaN propagates. Tails shorter than a packet use std::tanh.
//   sigmoid(x) = 1 / (1 + exp(-x))   (exp(-x) = inf gives exactly 0, never NaN)
//
// Each function writes dst = f(x) for Eigen array expressions of equal shape; dst may
// be x itself (evaluation is coefficient-wise, no temporaries, no allocation).
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <type_traits>

namespace rnnx {

struct TanhDoubleOp {
  double operator()(double x) const { return std::tanh(x); }

  template <typename Packet>
  Packet packetOp(const Packet& x) const {
    using namespace Eigen::internal;
    const Packet one = pset1<Packet>(1.0), two = pset1<Packet>(2.0);
    const Packet z = pmul(x, x);
    Packet p = pset1<Packet>(-9.64399179425052238628e-1);
    p = padd(pmul(p, z), pset1<Packet>(-9.92877231001918586564e1));
    p = padd(pmul(p, z), pset1<Packet>(-1.61468768441708447952e3));
    Packet q = padd(z, pset1<Packet>(1.12811678491632931402e2));
    q = padd(pmul(q, z), pset1<Packet>(2.23548839060100448583e3));
    q = padd(pmul(q, z), pset1<Packet>(4.84406305325125486048e3));
    const Packet small = padd(x, pdiv(pmul(pmul(x, z), p), q));
    const Packet ax = pabs(x);
    const Packet big = psub(one, pdiv(two, padd(pexp(pmul(two, ax)), one)));
    const Packet signed_big = pselect(pcmp_lt(x, pzero(x)), pnegate(big), big);
    return pselect(pcmp_lt(ax, pset1<Packet>(0.625)), small, signed_big);
  }
};

template <typename Dst, typename Src>
inline void sigmoid_to(Dst&& dst, const Src& x) {
  using S = typename std::decay_t<Src>::Scalar;
  dst = (S(1) + (-x).exp()).inverse();
}

template <typename Dst, typename Src>
inline void tanh_to(Dst&& dst, const Src& x) {
  using S = typename std::decay_t<Src>::Scalar;
  if constexpr (std::is_same_v<S, double>)
    dst = x.unaryExpr(TanhDoubleOp());
  else
    dst = x.tanh();
}

}  // namespace rnnx

namespace Eigen::internal {
template <>
struct functor_traits<rnnx::TanhDoubleOp> {
  enum { Cost = 40 * NumTraits<double>::MulCost, PacketAccess = packet_traits<double>::HasExp };
};
}  // namespace Eigen::internal
