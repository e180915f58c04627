#include "rnnx/gru.hpp"

#include <algorithm>

#include "rnnx/activations.hpp"
#include "rnnx/gemm.hpp"
#include "rnnx/input.hpp"
#include "rnnx/packed_gemm.hpp"
#include "rnnx/packets.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

namespace {
// h_t = (1 - z) n + z h_{t-1}, one packet.
template <typename S>
Packet<S> blend(const Packet<S>& z, const Packet<S>& n, const Packet<S>& h_prev) {
  using namespace Eigen::internal;
  return padd(pmul(psub(pset1<Packet<S>>(S(1)), z), n), pmul(z, h_prev));
}

// h_t over c units (z, n: the row's activated gates, stored by an earlier pass).
template <typename S>
void update_row(const S* z, const S* n, const S* h_prev, S* h, Index c) {
  for_packets<S>(c, [&](const Lanes<S>& l) {
    l.store(h, blend<S>(l.load(z), l.load(n), l.load(h_prev)));
  });
}

// The time loop of gru_forward when one task holds every unit (H <= kUnitsPerTask),
// under reset_after or for the simplified GRU, on builds whose kernel sums a row alike
// wherever it is packed (kRowsIndependent): the results of the general loop, bit for
// bit. The step's products for every gate are one call into a private buffer, each gate
// in whole packets (zero rows pad W_hh's gates to Hp units), read back by the pass that
// activates the gates; h_{t-1} is read from a private copy, Hp values a row. Under
// reset_after the general loop makes two product calls a step, into the rows of gates
// and into aux, and first copies b_hn into every row of aux (a memmove per row at H = 5);
// its loads also span the masked stores of other rows (gates are 3H values apart). At
// W_tiny (H = 5, B = 10) this loop's reset_after forward takes 7% fewer instructions
// and 11% less time (Tagger calls); the simplified GRU (one product call a step in both)
// measured the same time. The same layout for the LSTM and the RNN (one product and one
// pass a step already) measured more instructions and 3-10% more time, so they have none.
//   a = gx + p (gx: the input projection in gates; p: the product), as (gates = gx) += p.
template <typename S>
void forward_one_task(const SeqDims& d, GruVariant v, const S* w_hh, const S* b_hh, S* gates,
                      S* aux, S* h_all, const Lengths& len) {
  using namespace Eigen::internal;
  const Index T = d.T, B = d.B, H = d.H, G = v.gates(), GH = G * H;
  const Index Hp = ceil_div(H, kLanes<S>) * kLanes<S>, M = G * Hp;
  const Index qz = v.simplified ? 0 : 1, qn = qz + 1;
  // W_hh's row q*H + i as the packed row q*Hp + i, zero rows between the gates
  const PackedLhs<S> w(M, H, [&](Index i) -> const S* {
    const Index q = i / Hp, u = i % Hp;
    return u < H ? w_hh + (q * H + u) * H : nullptr;
  });
  // The product (B x M) and h_{t-1} (B x Hp, its padding zero) in one block.
  AlignedVec<S> buf(size_t(B * (M + Hp)), S(0));
  S* const prod = buf.data();
  S* const hq = prod + B * M;
  S* const work = nullptr;  // none needed: the kernel reads h_{t-1} in place
  for (Index b = 0; b < B; ++b) std::copy_n(h_all + b * H, H, hq + b * Hp);
  const Packet<S> zero = pset1<Packet<S>>(S(0));
  for (Index t = 0; t < T; ++t) {
    w.multiply(hq, B, Hp, prod, M, work);
    for (Index b = 0; b < B; ++b) {
      S* g0 = gates + (t * B + b) * GH;  // gate q of the row at g0 + q*H
      const S* pb = prod + b * M;
      S* hb = hq + b * Hp;
      S* ht = h_all + ((t + 1) * B + b) * H;
      S* ab = v.simplified ? nullptr : aux + (t * B + b) * H;
      const bool padded = len.padded(t, b);
      for_packets<S>(H, [&](const Lanes<S>& l) {
        const auto p = [&](Index q) { return pload<Packet<S>>(pb + q * Hp + l.j); };
        Packet<S> z, n;
        if (v.simplified) {  // z = σ(a_z), n = tanh(a_n)
          z = Sigmoid()(padd(l.load(g0), p(0)));
          n = Tanh()(padd(l.load(g0 + H), p(1)));
        } else {  // n = tanh(a_n + r * (h_{t-1} W_hnᵀ + b_hn)), the latter kept in aux
          const Packet<S> r = Sigmoid()(padd(l.load(g0), p(0)));
          z = Sigmoid()(padd(l.load(g0 + H), p(1)));
          const Packet<S> hn = padd(b_hh ? l.load(b_hh + 2 * H) : zero, p(2));
          n = Tanh()(padd(l.load(g0 + 2 * H), pmul(r, hn)));
          l.store(g0, r);
          l.store(ab, hn);
        }
        l.store(g0 + qz * H, z);
        l.store(g0 + qn * H, n);
        if (!padded) {
          const Packet<S> h = blend<S>(z, n, pload<Packet<S>>(hb + l.j));
          l.store(ht, h);
          pstore(hb + l.j, h);
        }
      });
      if (padded) std::copy_n(ht - B * H, H, ht);  // a padded example keeps its state
    }
  }
}

// Backward through one row of a step, units [0, c): the activated gates at g + q*H,
// h_{t-1} at hp, h_{t-1} W_hnᵀ + b_hn at ghn (reset_after) or null; dh_in: dL/dh_t from
// above (or null), added to the carry dha (dL/dh_t); out: dL/da of the gates, against
// the input projection (dgx) and against the recurrent product (dgh).
//   h = (1-z) n + z h_prev:  dn = dh (1-z);  dz = dh (h_prev - n)
//   n = tanh(a_n): da_n = dn (1 - n^2);  z = σ(a_z): da_z = dz z (1-z)
//   reset_after, a_n = x W_inᵀ + b_in + r * ghn:  da_r = da_n ghn r (1-r);  d ghn = da_n r
//   (reset before: da_r needs every unit's da_n, so it is a second pass)
template <typename S>
void backward_row(const GruVariant& v, const S* g, Index H, const S* hp, const S* ghn,
                  const S* dh_in, S* dha_, S* dgx, S* dgh, Index c) {
  using namespace Eigen::internal;
  const Index qz = v.simplified ? 0 : 1, qn = qz + 1;
  const Packet<S> one = pset1<Packet<S>>(S(1));
  for_packets<S>(c, [&](const Lanes<S>& l) {
    Packet<S> dha = l.load(dha_);
    if (dh_in) {
      dha = padd(dha, l.load(dh_in));
      l.store(dha_, dha);
    }
    const Packet<S> z = l.load(g + qz * H), n = l.load(g + qn * H);
    const Packet<S> dan = pmul(pmul(dha, psub(one, z)), psub(one, pmul(n, n)));
    const Packet<S> daz = pmul(pmul(pmul(dha, psub(l.load(hp), n)), z), psub(one, z));
    l.store(dgx + qn * H, dan);
    l.store(dgx + qz * H, daz);
    l.store(dgh + qz * H, daz);
    if (ghn) {
      const Packet<S> r = l.load(g);
      const Packet<S> dar = pmul(pmul(pmul(dan, l.load(ghn)), r), psub(one, r));
      l.store(dgx, dar);
      l.store(dgh, dar);
      l.store(dgh + qn * H, pmul(dan, r));
    } else {
      l.store(dgh + qn * H, dan);
    }
  });
}
}  // namespace

template <typename S>
void gru_forward(const SeqDims& d, GruVariant v, const S* x, const S* w_ih, const S* w_hh,
                 const S* b_ih, const S* b_hh, S* gates, S* aux, S* h_all,
                 const std::int64_t* lengths) {
  check_dims(d);
  const Lengths len(lengths, d.B, d.T);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B, G = v.gates(), GH = G * H;
  const bool before = !v.simplified && !v.reset_after;
  const Index qz = v.simplified ? 0 : 1, qn = qz + 1;

  // Input projection for all steps: x W_ihᵀ + b_ih, plus the recurrent biases that sit
  // outside the reset gate (all of them except b_hn under reset_after).
  const InputWeights<S> w_in(d, w_ih, GH);
  AlignedVec<S> bias(size_t(b_ih || b_hh ? GH : 0), S(0));
  if (b_ih) std::copy_n(b_ih, GH, bias.data());
  if (b_hh) {
    const Index folded = (v.reset_after && !v.simplified) ? 2 * H : GH;
    for (Index i = 0; i < folded; ++i) bias[size_t(i)] += b_hh[i];
  }
  const S* const b_in = bias.empty() ? nullptr : bias.data();
  // The one-task loop where it measured faster (AVX-512, float, Tagger calls, against the
  // general loop, in-process A/B): H = 5 at B = 10 11% less time, H = 8, 12, 16, 32, 48,
  // 64 1-7% less; with AVX2, H = 5, 8, 16: 5-10% less. H = 20, 24 and 33 (a partial last
  // packet after whole ones) measured 2-6% slower there, cause not found: they keep the
  // general loop.
  constexpr Index L = kLanes<S>;
  if constexpr (PackedLhs<S>::kRowsIndependent) {  // (rnnx's own kernel: FMA builds)
    if (!before && H <= kUnitsPerTask && (H <= L || H % L == 0)) {
      project_inputs(gates, GH, d, x, w_in, b_in);
      return forward_one_task(d, v, w_hh, b_hh, gates, aux, h_all, len);
    }
  }
  // The general loop: index input's projection is gathered by each task, its own units'
  // columns of a step (gather_input_cols); dense input's is one GEMM before the loop.
  if (!d.ids) project_inputs(gates, GH, d, x, w_in, b_in);

  // Each task packs its rows of W_hh once per call, one block per gate. A step adds
  // h_{t-1} W_hqᵀ straight into the task's columns of the step's gates (on top of the
  // input projection) for every gate computed from h_{t-1} directly: all of them for the
  // simplified GRU, r and z otherwise. Under reset_after, h_{t-1} W_hnᵀ + b_hn goes to aux;
  // under reset before, (r * h_{t-1}) W_hnᵀ is added in a second pass, once every unit's
  // r * h_{t-1} is known. The element-wise work runs row by row on contiguous runs of units.
  const Index n_units = ceil_div(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * GH * H);
  const bool after = v.reset_after && !v.simplified;
  const Index n_direct = v.simplified ? G : 2;
  // With one task (H <= kUnitsPerTask) the direct gates' blocks are the first n_direct*H
  // values of the step's rows of gates, side by side: packed as one block (then W_hn's;
  // same results, see kRowsIndependent).
  const bool whole = n_units == 1 && PackedLhs<S>::kRowsIndependent;
  std::vector<PackedLhs<S>> w_tasks(static_cast<size_t>(G * n_units));
  parallel_for(n_units, [&](Index k) {
    for (Index q = 0; q < G; ++q) {
      if (whole && q > 0 && q < n_direct) continue;
      const Index q1 = whole && q == 0 ? n_direct : q + 1;
      w_tasks[size_t(G * k + q)] = pack_gate_rows(w_hh, H, q, q1, Units(k, H));
    }
  }, par);
  const Index work = PackedLhs<S>::work_size(H, B);
  AlignedVec<S> scratch(size_t(n_units * work));
  for (Index t = 0; t < T; ++t) {
    S* gt = gates + t * B * GH;  // the step's gates (B x GH)
    const S* hp = h_all + t * B * H;
    S* at = v.simplified ? nullptr : aux + t * B * H;
    // h_t of row b's units (their gates done): (1 - z) n + z h_{t-1}, or for a padded
    // example its state kept.
    auto update = [&](const Units& u, Index b) {
      S* ht = h_all + ((t + 1) * B + b) * H + u.j0;
      const S* hb = hp + b * H + u.j0;
      if (len.padded(t, b))
        std::copy_n(hb, u.c, ht);
      else
        update_row(gt + b * GH + qz * H + u.j0, gt + b * GH + qn * H + u.j0, hb, ht, u.c);
    };
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      S* wk = scratch.data() + k * work;
      if (d.ids)
        for (Index q = 0; q < G; ++q)
          gather_input_cols(d, w_in, GH, b_in, t * B, B, q * H + u.j0, u.c, gt + q * H + u.j0,
                            GH);
      for (Index q = 0; q < (whole ? 1 : n_direct); ++q)
        w_tasks[size_t(G * k + q)].multiply_add(hp, B, H, gt + q * H + u.j0, GH, wk);
      if (after) {  // aux = h_{t-1} W_hnᵀ + b_hn
        for (Index b = 0; b < B; ++b) {
          S* ab = at + b * H + u.j0;
          if (b_hh)
            std::copy_n(b_hh + 2 * H + u.j0, u.c, ab);
          else
            std::fill_n(ab, u.c, S(0));
        }
        w_tasks[size_t(G * k + 2)].multiply_add(hp, B, H, at + u.j0, H, wk);
      }
      for (Index b = 0; b < B; ++b) {
        S* g0 = gt + b * GH + u.j0;  // gate q of this row's units at g0 + q*H
        const S* hb = hp + b * H + u.j0;
        // h_t in the same pass, from the gates still in registers (reading them back
        // right after the masked stores of a partial packet would stall on each),
        // unless n comes in a second pass (reset before) or the example is padded.
        S* ht = before || len.padded(t, b) ? nullptr : h_all + ((t + 1) * B + b) * H + u.j0;
        if (v.simplified) {
          for_packets<S>(u.c, [&](const Lanes<S>& l) {  // z = σ(a_z), n = tanh(a_n)
            const Packet<S> z = Sigmoid()(l.load(g0)), n = Tanh()(l.load(g0 + H));
            l.store(g0, z);
            l.store(g0 + H, n);
            if (ht) l.store(ht, blend<S>(z, n, l.load(hb)));
          });
        } else {
          S* ab = at + b * H + u.j0;
          for_packets<S>(u.c, [&](const Lanes<S>& l) {
            using Eigen::internal::padd, Eigen::internal::pmul;
            const Packet<S> r = Sigmoid()(l.load(g0)), z = Sigmoid()(l.load(g0 + H));
            l.store(g0, r);
            l.store(g0 + H, z);
            if (after) {  // n = tanh(a_n + r * (h_{t-1} W_hnᵀ + b_hn))
              const Packet<S> n = Tanh()(padd(l.load(g0 + 2 * H), pmul(r, l.load(ab))));
              l.store(g0 + 2 * H, n);
              if (ht) l.store(ht, blend<S>(z, n, l.load(hb)));
            } else {  // reset before: aux = r * h_{t-1} (n in a second pass)
              l.store(ab, pmul(r, l.load(hb)));
            }
          });
        }
        if (!before && !ht) update(u, b);  // a padded example keeps its state
      }
    }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
    if (before) {
      parallel_for(n_units, [&](Index k) {
        const Units u(k, H);  // n += (r * h_{t-1}) W_hnᵀ
        w_tasks[size_t(G * k + 2)].multiply_add(at, B, H, gt + 2 * H + u.j0, GH,
                                                scratch.data() + k * work);
        for (Index b = 0; b < B; ++b) {
          S* n = gt + b * GH + 2 * H + u.j0;
          apply(Tanh(), n, n, u.c);
          update(u, b);
        }
      }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
    }
  }
}

template <typename S>
void gru_backward(const SeqDims& d, GruVariant v, const S* x, const S* w_ih, const S* w_hh,
                  const S* h_prev, const S* gates, const S* aux, const S* dh, const S* dh_n,
                  S* dgx, S* dgh, S* dx, S* dh0, S* dw_ih, S* dw_hh, S* db_ih, S* db_hh,
                  const std::int64_t* lengths) {
  check_dims(d);
  const Lengths len(lengths, d.B, d.T);
  const Index T = d.T, B = d.B, D = d.D, H = d.H, TB = T * B, G = v.gates(), GH = G * H;
  const bool before = !v.simplified && !v.reset_after;
  const Index qz = v.simplified ? 0 : 1;
  using Eigen::internal::padd, Eigen::internal::pmul, Eigen::internal::psub,
      Eigen::internal::pset1;
  MapMat<S> dH(dh0, B, H);
  // Rows of W_hh that act on h_{t-1} directly (under reset before, W_hn acts on r * h).
  const Index direct = before ? 2 * H : GH;

  // dH holds dL/dh_t in total (from above and from step t+1); it ends as dh0.
  // drh = dL/d(r * h_{t-1}) of the step after (reset before only).
  if (dh_n) dH = MapConstMat<S>(dh_n, B, H); else dH.setZero();
  const Index n_units = ceil_div(H, kUnitsPerTask), cmax = std::min(H, kUnitsPerTask);
  const bool par = worth_parallel(double(B) * GH * H);
  // Per task: its columns of the rows of W_hh the carry needs (and of W_hn under reset
  // before), packed once per call; scratch holds a (B x c) product and the work space
  // (none on FMA builds).
  std::vector<PackedLhs<S>> w_carry(static_cast<size_t>(n_units));
  std::vector<PackedLhs<S>> w_rn(static_cast<size_t>(before ? n_units : 0));
  parallel_for(n_units, [&](Index k) {
    const Units u(k, H);
    w_carry[size_t(k)] = pack_carry_cols(w_hh, H, 0, direct, u);
    if (before) w_rn[size_t(k)] = pack_carry_cols(w_hh, H, 2 * H, H, u);
  }, par);
  const Index work = PackedLhs<S>::work_size(std::max(direct, H), B);
  const Index per_task = pad16(B * cmax) + work;
  AlignedVec<S> scratch(size_t(n_units * per_task)), drh_buf(size_t(before ? B * H : 0));
  MapMat<S> drh(before ? drh_buf.data() : dh0, B, H);
  for (Index t = T - 1; t >= -1; --t) {
    parallel_for(n_units, [&](Index k) {
      const Units u(k, H);
      const Index c = u.c;
      if (t < T - 1) {  // dL/dh_t through step t+1: h_{t+1} = (1-z) n + z h_t, and the gates
        const Index r1 = (t + 1) * B;
        S* acc = scratch.data() + k * per_task;  // (B x c)
        for (Index b = 0; b < B; ++b) {
          const S* z = gates + (r1 + b) * GH + qz * H + u.j0;
          const S* dhb = dh0 + b * H + u.j0;
          S* ab = acc + b * c;
          for_packets<S>(c, [&](const Lanes<S>& l) { l.store(ab, pmul(l.load(dhb), l.load(z))); });
        }
        // += dA_h[:, :direct] W_hh[:direct, j0:j0+c]
        w_carry[size_t(k)].multiply_add(dgh + r1 * GH, B, GH, acc, c, acc + pad16(B * cmax));
        for (Index b = 0; b < B; ++b) {
          if (len.padded(t + 1, b)) continue;  // a padded step passes dL/dh through unchanged
          const S* ab = acc + b * c;
          S* dhb = dh0 + b * H + u.j0;
          if (before) {  // += dL/d(r * h_t) of step t+1 times its r
            const S* r = gates + (r1 + b) * GH + u.j0;
            const S* drhb = drh.data() + b * H + u.j0;
            for_packets<S>(c, [&](const Lanes<S>& l) {
              l.store(dhb, padd(l.load(ab), pmul(l.load(drhb), l.load(r))));
            });
          } else {
            std::copy_n(ab, c, dhb);
          }
        }
      }
      if (t < 0) return;
      for (Index b = 0; b < B; ++b) {
        const Index row = t * B + b;
        if (len.padded(t, b)) {  // no gate gradients; dh of a padded step is ignored
          for (Index q = 0; q < G; ++q) {
            std::fill_n(dgx + row * GH + q * H + u.j0, c, S(0));
            std::fill_n(dgh + row * GH + q * H + u.j0, c, S(0));
          }
          continue;
        }
        backward_row(v, gates + row * GH + u.j0, H, h_prev + row * H + u.j0,
                     v.reset_after && !v.simplified ? aux + row * H + u.j0 : nullptr,
                     dh ? dh + row * H + u.j0 : nullptr, dh0 + b * H + u.j0,
                     dgx + row * GH + u.j0, dgh + row * GH + u.j0, c);
      }
    }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
    if (before && t >= 0) {
      // a_n = x W_inᵀ + b_in + (r * h_prev) W_hnᵀ + b_hn:  d(r h) = da_n W_hn;
      // dr = d(r h) * h_prev;  da_r = dr r (1-r)
      parallel_for(n_units, [&](Index k) {
        const Units u(k, H);
        const Index r0 = t * B;
        drh.middleCols(u.j0, u.c).setZero();  // = da_n W_hn[:, j0:j0+c]
        w_rn[size_t(k)].multiply_add(dgx + r0 * GH + 2 * H, B, GH, drh.data() + u.j0, H,
                                     scratch.data() + k * per_task + pad16(B * cmax));
        const Packet<S> one = pset1<Packet<S>>(S(1));
        for (Index b = 0; b < B; ++b) {
          const S* r = gates + (r0 + b) * GH + u.j0;
          const S* hp = h_prev + (r0 + b) * H + u.j0;
          const S* drhb = drh.data() + b * H + u.j0;
          S* dx_r = dgx + (r0 + b) * GH + u.j0;
          S* dh_r = dgh + (r0 + b) * GH + u.j0;
          for_packets<S>(u.c, [&](const Lanes<S>& l) {
            const Packet<S> rl = l.load(r);
            const Packet<S> da = pmul(pmul(pmul(l.load(drhb), l.load(hp)), rl), psub(one, rl));
            l.store(dx_r, da);
            l.store(dh_r, da);
          });
        }
      }, par, (t & 1) != 0);  // alternate order: see parallel.hpp
    }
  }

  // Input and parameter gradients: whole-sequence GEMMs after the loop (gemm.hpp):
  //   dx = dA_x W_ih,  dW_ih = dA_xᵀ X,  dW_hh = dA_hᵀ H_prev (W_hn: dA_hnᵀ (r * H_prev)
  //   under reset before),  db_ih = Σ_rows dA_x,  db_hh = Σ_rows dA_h.
  RNNX_REQUIRE(!(dx && d.ids), "index input has no dx (pass nullptr)");
  if (dx) rows_times(TB, dgx, GH, PackedLhs<S>(w_ih, D, GH, D, true), dx, D);
  // (The biases' sums in the products' passes over dA_x and dA_h: under reset before,
  // db_hh's first 2H columns with W_hh's direct rows, the last H with W_hn's.)
  input_weight_grad(d, GH, dgx, GH, x, dw_ih, db_ih);
  weight_grad(TB, H, direct, h_prev, H, dgh, GH, dw_hh, H, db_hh);
  if (before) weight_grad(TB, H, H, aux, H, dgh + 2 * H, GH, dw_hh + 2 * H * H, H, db_hh + 2 * H);
}

#define RNNX_INSTANTIATE(S)                                                                   \
  template void gru_forward<S>(const SeqDims&, GruVariant, const S*, const S*, const S*,      \
                               const S*, const S*, S*, S*, S*, const std::int64_t*);          \
  template void gru_backward<S>(const SeqDims&, GruVariant, const S*, const S*, const S*,     \
                                const S*, const S*, const S*, const S*, const S*, S*, S*, S*, \
                                S*, S*, S*, S*, S*, const std::int64_t*);
RNNX_INSTANTIATE(float)
RNNX_INSTANTIATE(double)
#undef RNNX_INSTANTIATE

}  // namespace rnnx
