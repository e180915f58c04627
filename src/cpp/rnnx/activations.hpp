// Element-wise activations, vectorised for float and double.
//
// Eigen 3.4 vectorises exp() for float and double but tanh() only for float, so the
// double tanh is written here from Eigen's packet primitives:
//   |x| <  0.625: tanh(x) = x + x*z*P(z)/Q(z), z = x^2 (a rational minimax fit with the
//                 coefficients published in the Cephes math library; ~1 ulp)
//   |x| >= 0.625: tanh(|x|) = 1 - 2/(exp(2|x|) + 1), sign restored (no cancellation:
//                 the result is at least 0.55)
// Both branches are computed and blended per lane. exp(2|x|) = inf for |x| > ~355 gives
// exactly 1; NaN propagates.
//   sigmoid(x) = 1 / (1 + exp(-x))   (exp(-x) = inf gives exactly 0, never NaN)
//
// apply() runs an activation over a contiguous run of values packet by packet, the
// tail in a partial packet (packets.hpp), so every value takes the same path (the
// result never depends on where a run starts or ends) and tiny runs (the course's
// n_a = 5) are as vectorised as long ones.
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <type_traits>

#include "rnnx/common.hpp"
#include "rnnx/packets.hpp"

namespace rnnx {

struct Sigmoid {
  template <typename Packet>
  Packet operator()(const Packet& x) const {
    using namespace Eigen::internal;
    const Packet one = pset1<Packet>(typename unpacket_traits<Packet>::type(1));
    return pdiv(one, padd(one, pexp(pnegate(x))));
  }
};

struct Tanh {
  template <typename Packet>
  Packet operator()(const Packet& x) const {
    using namespace Eigen::internal;
    using S = typename unpacket_traits<Packet>::type;
    if constexpr (std::is_same_v<S, float>) {
      return ptanh(x);
    } else {
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
  }
};

// dst[i] = op(src[i]) for i < n; dst may equal src.
template <typename Op, typename S>
inline void apply(const Op& op, const S* src, S* dst, Index n) {
  for_packets<S>(n, [&](const Lanes<S>& l) { l.store(dst, op(l.load(src))); });
}

// The same over `rows` runs of `cols` values, rows `src_stride` / `dst_stride` apart.
template <typename Op, typename S>
inline void apply_rows(const Op& op, const S* src, Index src_stride, S* dst, Index dst_stride,
                       Index rows, Index cols) {
  if (src_stride == cols && dst_stride == cols) return apply(op, src, dst, rows * cols);
  for (Index r = 0; r < rows; ++r) apply(op, src + r * src_stride, dst + r * dst_stride, cols);
}

// Row-major Eigen blocks (contiguous rows): dst = op(src).
template <typename Op, typename Src, typename Dst>
inline void apply_block(const Op& op, const Src& src, Dst&& dst) {
  apply_rows(op, src.data(), src.outerStride(), dst.data(), dst.outerStride(), src.rows(),
             src.cols());
}

}  // namespace rnnx
