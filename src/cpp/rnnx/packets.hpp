// Runs of values taken one SIMD packet at a time, the last packet of a run partial.
//
// The element-wise loops of the cells (activations, c_t and h_t, the gate gradients)
// go over a row's units packet by packet with for_packets(): every value goes through
// the same packet operations whether it sits in a full packet or in the partial last
// one, so a result never depends on the length of a run or on where it starts (the
// time loops split the units between tasks, and H may be 5). The partial packet is
// read and written with masked loads and stores on AVX2 and AVX-512 builds (lanes past
// the run are zero and never touched in memory), through a zero-padded buffer on
// portable builds.
#pragma once

#include <Eigen/Core>
#include <algorithm>

#if defined(__AVX2__) || defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "rnnx/common.hpp"

namespace rnnx {

template <typename S>
using Packet = typename Eigen::internal::packet_traits<S>::type;
template <typename S>
inline constexpr Index kLanes = Eigen::internal::unpacket_traits<Packet<S>>::size;

// p[0, n) as a packet whose other lanes are zero; n < kLanes<S>.
template <typename S>
inline Packet<S> load_part(const S* p, Index n) {
#if defined(__AVX512F__)
  if constexpr (kLanes<S> == 16) return _mm512_maskz_loadu_ps(__mmask16((1u << n) - 1), p);
  if constexpr (kLanes<S> == 8 && sizeof(S) == 8)
    return _mm512_maskz_loadu_pd(__mmask8((1u << n) - 1), p);
#elif defined(__AVX2__)
  if constexpr (kLanes<S> == 8 && sizeof(S) == 4)
    return _mm256_maskload_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)),
                                                    _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)));
  if constexpr (kLanes<S> == 4 && sizeof(S) == 8)
    return _mm256_maskload_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n),
                                                    _mm256_setr_epi64x(0, 1, 2, 3)));
#endif
  alignas(64) S buf[kLanes<S>] = {};
  std::copy_n(p, n, buf);
  return Eigen::internal::pload<Packet<S>>(buf);
}

// p[0, n) = the first n lanes of v; n < kLanes<S>.
template <typename S>
inline void store_part(S* p, const Packet<S>& v, Index n) {
#if defined(__AVX512F__)
  if constexpr (kLanes<S> == 16) return _mm512_mask_storeu_ps(p, __mmask16((1u << n) - 1), v);
  if constexpr (kLanes<S> == 8 && sizeof(S) == 8)
    return _mm512_mask_storeu_pd(p, __mmask8((1u << n) - 1), v);
#elif defined(__AVX2__)
  if constexpr (kLanes<S> == 8 && sizeof(S) == 4)
    return _mm256_maskstore_ps(p, _mm256_cmpgt_epi32(_mm256_set1_epi32(int(n)),
                                                     _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),
                               v);
  if constexpr (kLanes<S> == 4 && sizeof(S) == 8)
    return _mm256_maskstore_pd(p, _mm256_cmpgt_epi64(_mm256_set1_epi64x(n),
                                                     _mm256_setr_epi64x(0, 1, 2, 3)),
                               v);
#endif
  alignas(64) S buf[kLanes<S>];
  Eigen::internal::pstore(buf, v);
  std::copy_n(buf, n, p);
}

// Lanes [j, j+n) of a run: load(p) reads p[j, j+n) as a packet (zero past n), store(p, v)
// writes the first n lanes of v to p[j, j+n).
template <typename S>
struct Lanes {
  Index j, n;
  Packet<S> load(const S* p) const {
    return n == kLanes<S> ? Eigen::internal::ploadu<Packet<S>>(p + j) : load_part(p + j, n);
  }
  void store(S* p, const Packet<S>& v) const {
    if (n == kLanes<S>)
      Eigen::internal::pstoreu(p + j, v);
    else
      store_part(p + j, v, n);
  }
};

// body(Lanes<S>) for each packet of a run of c values, the last one partial.
template <typename S, typename Body>
inline void for_packets(Index c, Body&& body) {
  constexpr Index L = kLanes<S>;
  for (Index j = 0; j < c; j += L) body(Lanes<S>{j, std::min(L, c - j)});
}

// dst[0, w) = src[0, n) followed by w - n zeros (0 <= n <= w): a short run copied (and
// padded) a packet at a time, where std::copy_n and std::fill_n would call memcpy and
// memset for a few values each (weight_grad's packing, rows_times' bias rows).
template <typename S>
inline void copy_padded(const S* src, Index n, S* dst, Index w) {
  for_packets<S>(w, [&](const Lanes<S>& l) {
    const Index c = std::clamp<Index>(n - l.j, 0, l.n);  // lanes of this packet from src
    l.store(dst, c == kLanes<S>  ? Eigen::internal::ploadu<Packet<S>>(src + l.j)
                 : c > 0         ? load_part(src + l.j, c)
                                 : Eigen::internal::pset1<Packet<S>>(S(0)));
  });
}

}  // namespace rnnx
