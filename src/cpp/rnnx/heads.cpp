#include "rnnx/heads.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <type_traits>

#include "rnnx/activations.hpp"
#include "rnnx/gemm.hpp"
#include "rnnx/parallel.hpp"

namespace rnnx {

namespace {
// Rows per task for row-independent work (each row computed alone, by the same code, so
// the split changes no result): about 64K elements per task.
Index rows_per_task(Index row_size) {
  return std::max<Index>(1, 65536 / std::max<Index>(1, row_size));
}

void check_ids(const std::int64_t* ids, Index N, Index V, const char* name) {
  for (Index n = 0; n < N; ++n)
    RNNX_REQUIRE(ids[n] >= 0 && ids[n] < V, std::string(name) + "[" + std::to_string(n) + "] = " +
                                           std::to_string(ids[n]) + " is outside 0..V-1 = 0.." +
                                           std::to_string(V - 1));
}

// Every kept row's target in 0..V-1 (masked rows' targets are not read).
void check_targets(const std::int64_t* targets, const std::uint8_t* mask, Index R, Index V) {
  for (Index r = 0; r < R; ++r)
    if (!mask || mask[r])
      RNNX_REQUIRE(targets[r] >= 0 && targets[r] < V,
                   "targets[" + std::to_string(r) + "] = " + std::to_string(targets[r]) +
                       " is outside 0..V-1 = 0.." + std::to_string(V - 1));
}

void check_seq(Index T, Index B, Index F) {
  RNNX_REQUIRE(T >= 1 && B >= 1 && F >= 1, "last_step: need T, B, F >= 1, got (" +
                                          std::to_string(T) + ", " + std::to_string(B) + ", " +
                                          std::to_string(F) + ")");
}

// exp(x - m), vectorised (see activations.hpp's apply). Eigen's pexp clamps its argument
// at about -709.78 (double) / -88.72 (float) and so returns a tiny positive number where
// the true exp underflows into or below the subnormals: such values are flushed to 0.
template <typename S>
struct ExpShifted {
  S m;
  template <typename Packet>
  Packet operator()(const Packet& x) const {
    using namespace Eigen::internal;
    const Packet z = psub(x, pset1<Packet>(m));
    const Packet lo = pset1<Packet>(std::is_same_v<S, float> ? S(-88.72) : S(-709.78));
    return pselect(pcmp_lt(z, lo), pzero(z), pexp(z));
  }
};

// log(x), vectorised (Eigen's plog; within about an ulp of the exact value, like the C
// library's, but a packet at a time: the 40 rows of a W_tiny Tagger call took 1.4K
// instructions in logf, one call each, callgrind). Lanes are independent, so a row's log
// does not depend on the rows computed beside it.
struct LogOf {
  template <typename Packet>
  Packet operator()(const Packet& x) const {
    return Eigen::internal::plog(x);
  }
};
constexpr Index kLogRows = 32;  // rows whose sums' logs are taken together

// max_j l[j] (n >= 1), and p[j] *= f for j < n. Rows shorter than a packet (a tag set
// of 2 at W_tiny) take a plain loop: Eigen's reduction and map cost about 70 instructions
// each to set up around 2 values (the loop took 6% of the instructions off a W_tiny
// Tagger forward call, callgrind). The same bits either way: below a packet Eigen's
// maxCoeff also starts from l[0] and takes max(m, l[j]) in order (so NaN, infinities and
// signed zeros come out alike; every caller's logits are checked finite anyway), and the
// products are the same products.
template <typename S>
S row_max(const S* l, Index n) {
  if (n >= kLanes<S>) return MapConstArr<S>(l, n).maxCoeff();
  S m = l[0];
  for (Index j = 1; j < n; ++j) m = std::max(m, l[j]);
  return m;
}

template <typename S>
void row_scale(S* p, Index n, S f) {
  if (n >= kLanes<S>) {
    MapArr<S>(p, n) *= f;
    return;
  }
  for (Index j = 0; j < n; ++j) p[j] *= f;
}

// p[0] + ... + p[n-1] in a fixed order that depends on n only (never on where p starts):
// whole packets from p[0] into one packet of partial sums, then its lanes, then the tail.
template <typename S>
S row_sum(const S* p, Index n) {
  using namespace Eigen::internal;
  constexpr Index L = kLanes<S>;
  Index i = 0;
  S s = S(0);
  if (n >= L) {
    Packet<S> acc = ploadu<Packet<S>>(p);
    for (i = L; i + L <= n; i += L) acc = padd(acc, ploadu<Packet<S>>(p + i));
    s = predux(acc);
  }
  for (; i < n; ++i) s += p[i];
  return s;
}

// Rows of a small fixed width (a tag set of 2 at W_tiny): with_width calls
// f(std::integral_constant<Index, W>) with W = V for V = 1, 2, 3, else W = 0 (the width
// read at run time). The row passes then take their width as fixed<W>(V): a constant the
// compiler folds into row_max, row_sum and row_scale (the same functions, so the same
// bits), whose short-row loops then run unrolled, without the per-row set-up (the softmax
// of 40 rows of 2 took 7,200 instructions, callgrind).
template <typename F>
void with_width(Index V, F&& f) {
  switch (V) {
    case 1: return f(std::integral_constant<Index, 1>{});
    case 2: return f(std::integral_constant<Index, 2>{});
    case 3: return f(std::integral_constant<Index, 3>{});
    default: return f(std::integral_constant<Index, 0>{});
  }
}
template <Index W>
constexpr Index fixed(Index V) {
  return W ? W : V;
}

// The softmax cross-entropy's rows (softmax_cross_entropy_forward has the equations):
// probs (R,V) from logits (R,V), and the sum of the kept rows' losses (in double, rows in
// order), returned; on_row(r, kept, V) runs once row r's probs and loss are done (the
// fused head writes its dlogits there, over the row's logits; V is a constant there for
// rows of 1-3 classes, see with_width). Each task: z = l - m row by row
// into probs (m kept in row_loss until the row's loss is taken), then the exps of all its
// rows in one pass (exp(z - 0) = exp(z), lane by lane: a value does not depend on its
// neighbours, and a row of V < 16 floats is not padded to a packet of its own), then for
// kLogRows rows at a time each row's sum and scale, the sums' logs in one pass, and each
// row's loss. With one task the losses are summed as the rows come (the
// same additions in the same order as the pass over row_loss after the tasks).
template <typename S, typename OnRow>
double softmax_rows(Index R, Index V, const S* logits, const std::int64_t* targets,
                    const std::uint8_t* mask, S* probs, OnRow&& on_row) {
  AlignedVec<S> row_loss(static_cast<size_t>(R));
  const Index per = rows_per_task(V), n_tasks = ceil_div(R, per);
  const ExpShifted<S> exp0{S(0)};  // exp(z), flushed below the subnormals
  double total = 0;
  with_width(V, [&](auto width) {
    constexpr Index W = decltype(width)::value;
    parallel_for(n_tasks, [&](Index k) {
      const Index r0 = k * per, r1 = std::min(R, r0 + per);
      for (Index r = r0; r < r1; ++r) {
        const S* l = logits + r * V;
        const S m = row_max(l, fixed<W>(V));
        row_loss[size_t(r)] = m;
        for (Index j = 0; j < fixed<W>(V); ++j) probs[r * V + j] = l[j] - m;
      }
      apply(exp0, probs + r0 * V, probs + r0 * V, (r1 - r0) * V);
      for (Index c0 = r0; c0 < r1; c0 += kLogRows) {  // kLogRows rows at a time:
        const Index c1 = std::min(r1, c0 + kLogRows);
        S log_s[kLogRows];
        for (Index r = c0; r < c1; ++r) {  // their sums, and their probs scaled
          S* p = probs + r * V;
          const S s = row_sum(p, fixed<W>(V));  // >= 1: the maximum contributes exp(0) = 1
          row_scale(p, fixed<W>(V), S(1) / s);  // (a vector division costs as much as the exp)
          log_s[r - c0] = s;
        }
        apply(LogOf(), log_s, log_s, c1 - c0);  // the sums' logs, a packet at a time
        for (Index r = c0; r < c1; ++r) {  // their losses
          const bool kept = !mask || mask[r];
          if (kept) {
            row_loss[size_t(r)] = log_s[r - c0] - (logits[r * V + targets[r]] - row_loss[size_t(r)]);
            if (n_tasks == 1) total += double(row_loss[size_t(r)]);
          }
          on_row(r, kept, fixed<W>(V));
        }
      }
    }, worth_parallel(double(per) * V * 8));  // ~8 multiply-adds per exp
  });
  if (n_tasks > 1)
    for (Index r = 0; r < R; ++r)
      if (!mask || mask[r]) total += double(row_loss[size_t(r)]);
  return total;
}
}  // namespace

// ---------------------------------------------------------------------------------------
// Dense
// ---------------------------------------------------------------------------------------

// y = x Wᵀ + b, in blocks of rows of x (gemm.hpp: rows_times).
//   x (N,F)  w (O,F)  b (O) or nullptr  ->  y (N,O)
template <typename S>
void dense_forward(Index N, Index F, Index O, const S* x, const S* w, const S* b, S* y) {
  RNNX_REQUIRE(N >= 0 && F >= 1 && O >= 1, "dense: need N >= 0, F >= 1, O >= 1");
  if (N == 0) return;
  rows_times(N, x, F, PackedLhs<S>(w, O, F, F, false), y, O, b);
}

// With y = x Wᵀ + b (gemm.hpp):
//   dL/dx = dy W        (N,F)
//   dL/dW = dyᵀ x       (O,F)
//   dL/db = Σ_rows dy   (O)     rows summed in order
template <typename S>
void dense_backward(Index N, Index F, Index O, const S* dy, const S* x, const S* w, S* dx,
                    S* dw, S* db) {
  RNNX_REQUIRE(N >= 0 && F >= 1 && O >= 1, "dense: need N >= 0, F >= 1, O >= 1");
  if (dx && N > 0) rows_times(N, dy, O, PackedLhs<S>(w, F, O, F, true), dx, F);
  weight_grad(N, F, O, x, F, dy, O, dw, F, db);  // db in the same pass over dy
}

// ---------------------------------------------------------------------------------------
// Embedding
// ---------------------------------------------------------------------------------------

// y[n] = W[ids[n]]: a gather of rows (the product onehot(ids) W without the one-hot).
//   ids (N) in [0,V)  w (V,E)  ->  y (N,E)
template <typename S>
void embedding_forward(Index N, Index V, Index E, const std::int64_t* ids, const S* w, S* y) {
  RNNX_REQUIRE(N >= 0 && V >= 1 && E >= 1, "embedding: need N >= 0, V >= 1, E >= 1");
  check_ids(ids, N, V, "ids");
  const Index per = rows_per_task(E), n_tasks = ceil_div(N, per);
  parallel_for(n_tasks, [&](Index k) {
    const Index n0 = k * per, n1 = std::min(N, n0 + per);
    for (Index n = n0; n < n1; ++n) std::copy_n(w + ids[n] * E, E, y + n * E);
  }, worth_parallel(double(per) * E));
}

// dL/dW = onehot(ids)ᵀ dy: row v of dW is the sum of the rows dy[n] with ids[n] = v.
// The rows are first grouped by id with a stable counting sort (start[v] .. start[v+1]
// index `order`, which lists each id's n in increasing order), then every row of dW is
// summed alone in that order: no two tasks write one row, and the order of the additions
// is that of np.add.at, whatever the number of threads.
//   dy (N,E)  ids (N)  ->  dw (V,E)
template <typename S>
void embedding_backward(Index N, Index V, Index E, const std::int64_t* ids, const S* dy, S* dw) {
  RNNX_REQUIRE(N >= 0 && V >= 1 && E >= 1, "embedding: need N >= 0, V >= 1, E >= 1");
  check_ids(ids, N, V, "ids");
  AlignedVec<Index> start(static_cast<size_t>(V + 1), Index(0)), order(static_cast<size_t>(N));
  for (Index n = 0; n < N; ++n) ++start[size_t(ids[n] + 1)];
  for (Index v = 0; v < V; ++v) start[size_t(v + 1)] += start[size_t(v)];
  {
    AlignedVec<Index> next(start.begin(), start.end() - 1);
    for (Index n = 0; n < N; ++n) order[size_t(next[size_t(ids[n])]++)] = n;
  }
  MapConstMat<S> dY(dy, N, E);
  MapMat<S> dW(dw, V, E);
  const Index per = rows_per_task(E), n_tasks = ceil_div(V, per);
  parallel_for(n_tasks, [&](Index k) {
    const Index v0 = k * per, v1 = std::min(V, v0 + per);
    for (Index v = v0; v < v1; ++v) {
      auto row = dW.row(v);
      row.setZero();
      for (Index i = start[size_t(v)]; i < start[size_t(v + 1)]; ++i)
        row += dY.row(order[size_t(i)]);
    }
  }, worth_parallel(double(N) * E / double(n_tasks)));
}

// ---------------------------------------------------------------------------------------
// Softmax cross-entropy
// ---------------------------------------------------------------------------------------

// Per row r (R rows, e.g. T*B, of V classes), with the row's maximum m = max_j l[j] subtracted
// first so that no exp overflows (logits of ±1e4 are fine):
//   e[j] = exp(l[j] - m)   s = Σ_j e[j]   p[j] = e[j] * (1/s)
//   -log p[t] = log s - (l[t] - m)        (never log of an underflowed p[t])
//   loss = Σ_{r kept} -log p_r[targets_r]  (a sum; rows summed in order, in double)
// The rows are independent (row blocks in parallel); the sum runs after, serially (with
// one block, as the rows come: the same additions in the same order).
//   logits (R,V)  targets (R)  mask (R) or nullptr  ->  probs (R,V), *loss
template <typename S>
void softmax_cross_entropy_forward(Index R, Index V, const S* logits,
                                   const std::int64_t* targets, const std::uint8_t* mask,
                                   S* probs, S* loss) {
  RNNX_REQUIRE(R >= 1 && V >= 1, "softmax_cross_entropy: need R >= 1, V >= 1");
  check_targets(targets, mask, R, V);
  softmax_cross_entropy_checked(R, V, logits, targets, mask, probs, loss);
}

template <typename S>
void softmax_cross_entropy_checked(Index R, Index V, const S* logits,
                                   const std::int64_t* targets, const std::uint8_t* mask,
                                   S* probs, S* loss) {
  RNNX_REQUIRE(R >= 1 && V >= 1, "softmax_cross_entropy: need R >= 1, V >= 1");
  *loss = S(softmax_rows(R, V, logits, targets, mask, probs, [](Index, bool, Index) {}));
}

// dL/dl_r[j] = p_r[j] - [j = targets_r] for kept rows, 0 for masked ones (the softmax
// and the log fold into this: no Jacobian, no one-hot is formed).
//   probs (R,V)  targets (R)  mask (R) or nullptr  ->  dlogits (R,V)
template <typename S>
void softmax_cross_entropy_backward(Index R, Index V, const S* probs,
                                    const std::int64_t* targets, const std::uint8_t* mask,
                                    S* dlogits) {
  RNNX_REQUIRE(R >= 1 && V >= 1, "softmax_cross_entropy: need R >= 1, V >= 1");
  check_targets(targets, mask, R, V);
  const Index per = rows_per_task(V), n_tasks = ceil_div(R, per);
  parallel_for(n_tasks, [&](Index k) {
    const Index r0 = k * per, r1 = std::min(R, r0 + per);
    for (Index r = r0; r < r1; ++r) {
      S* d = dlogits + r * V;
      if (mask && !mask[r]) {
        std::fill_n(d, V, S(0));
        continue;
      }
      std::copy_n(probs + r * V, V, d);
      d[targets[r]] -= S(1);
    }
  }, worth_parallel(double(per) * V));
}

// ---------------------------------------------------------------------------------------
// Last-step pooling
// ---------------------------------------------------------------------------------------

// out[b] = y[last_b, b] with last_b = lengths[b] - 1 (T - 1 without lengths): the output
// at each example's own last step, for many-to-one models.
//   y (T,B,F)  lengths (B) in 1..T or nullptr  ->  out (B,F)
template <typename S>
void last_step_forward(Index T, Index B, Index F, const S* y, const std::int64_t* lengths,
                       S* out) {
  check_seq(T, B, F);
  const Lengths valid(lengths, B, T);  // throws unless every length is in 1..T
  for (Index b = 0; b < B; ++b) {
    const Index last = lengths ? Index(lengths[b]) - 1 : T - 1;
    std::copy_n(y + (last * B + b) * F, F, out + b * F);
  }
}

// dL/dy[t, b] = dout[b] at t = last_b, 0 at every other step (nothing else was read).
// Rows of the (T*B, F) result in blocks, each zeroed then given its last steps.
//   dout (B,F)  lengths (B) or nullptr  ->  dy (T,B,F)
template <typename S>
void last_step_backward(Index T, Index B, Index F, const S* dout, const std::int64_t* lengths,
                        S* dy) {
  check_seq(T, B, F);
  const Lengths valid(lengths, B, T);  // throws unless every length is in 1..T
  const Index TB = T * B, per = rows_per_task(F), n_tasks = ceil_div(TB, per);
  parallel_for(n_tasks, [&](Index k) {
    const Index r0 = k * per, r1 = std::min(TB, r0 + per);
    std::fill(dy + r0 * F, dy + r1 * F, S(0));
    for (Index r = r0; r < r1; ++r) {
      const Index t = r / B, b = r % B;
      if (t == (lengths ? Index(lengths[b]) - 1 : T - 1)) std::copy_n(dout + b * F, F, dy + r * F);
    }
  }, worth_parallel(double(per) * F));
}

#define RNNX_INSTANTIATE(S)                                                                     \
  template void dense_forward<S>(Index, Index, Index, const S*, const S*, const S*, S*);        \
  template void dense_backward<S>(Index, Index, Index, const S*, const S*, const S*, S*, S*,    \
                                  S*);                                                          \
  template void embedding_forward<S>(Index, Index, Index, const std::int64_t*, const S*, S*);   \
  template void embedding_backward<S>(Index, Index, Index, const std::int64_t*, const S*, S*);  \
  template void softmax_cross_entropy_forward<S>(Index, Index, const S*, const std::int64_t*,   \
                                                 const std::uint8_t*, S*, S*);                  \
  template void softmax_cross_entropy_checked<S>(Index, Index, const S*, const std::int64_t*,   \
                                                 const std::uint8_t*, S*, S*);                  \
  template void softmax_cross_entropy_backward<S>(Index, Index, const S*, const std::int64_t*,  \
                                                  const std::uint8_t*, S*);                     \
  template void last_step_forward<S>(Index, Index, Index, const S*, const std::int64_t*, S*);   \
  template void last_step_backward<S>(Index, Index, Index, const S*, const std::int64_t*, S*);
RNNX_INSTANTIATE(float)
RNNX_INSTANTIATE(double)
#undef RNNX_INSTANTIATE

// ---------------------------------------------------------------------------------------
// Dense head + softmax cross-entropy, forward and backward in one call
// ---------------------------------------------------------------------------------------

// The four functions above in sequence, with the same arithmetic, on buffers placed as
// the unfused calls place theirs (each on a kAlign boundary, see common.hpp), so that
// every result is the one the separate calls give. One thing differs, not in value:
// dlogits is written as each row's probs are done. The targets are checked
// before any arithmetic; a logit that overflowed to infinity (finite x, w, b can give one)
// is refused as the unfused softmax_cross_entropy refuses it.
//   x (N,F)  w (O,F)  b (O) or nullptr  targets (N)  mask (N) or nullptr
//   -> *loss, dx (N,F), dw (O,F), db (O) or nullptr
template <typename S>
void dense_softmax_cross_entropy(Index N, Index F, Index O, const S* x, const S* w, const S* b,
                                 const std::int64_t* targets, const std::uint8_t* mask, S* loss,
                                 S* dx, S* dw, S* db) {
  RNNX_REQUIRE(N >= 1 && F >= 1 && O >= 1,
               "dense_softmax_cross_entropy: need N >= 1, F >= 1, O >= 1");
  check_targets(targets, mask, N, O);
  dense_softmax_cross_entropy_checked(N, F, O, x, w, b, targets, mask, loss, dx, dw, db);
}

template <typename S>
void dense_softmax_cross_entropy_checked(Index N, Index F, Index O, const S* x, const S* w,
                                         const S* b, const std::int64_t* targets,
                                         const std::uint8_t* mask, S* loss, S* dx, S* dw, S* db) {
  RNNX_REQUIRE(N >= 1 && F >= 1 && O >= 1,
               "dense_softmax_cross_entropy: need N >= 1, F >= 1, O >= 1");
  // logits | probs, each starting on a kAlign boundary; dlogits overwrites the logits
  constexpr Index per_line = Index(kAlign / sizeof(S));
  const Index stride = ceil_div(N * O, per_line) * per_line;
  AlignedVec<S> ws(size_t(2 * stride));
  S *logits = ws.data(), *probs = ws.data() + stride;
  dense_forward<S>(N, F, O, x, w, b, logits);
  const MapConstArr<S> all(logits, N * O);
  RNNX_REQUIRE((all - all).sum() == S(0),  // x - x is NaN exactly for NaN and ±inf
               "logits = x weightᵀ + bias contain NaN or infinity (the values overflow)");
  // softmax_cross_entropy_forward and _backward, row for row (see there):
  //   m = max_j l[j]   e[j] = exp(l[j] - m)   s = Σ_j e[j]   p[j] = e[j] * (1/s)
  //   -log p[t] = log s - (l[t] - m)           dl[j] = p[j] - [j = t]  (0 if masked)
  // dlogits over the logits, row by row as each is done (its logits are not read again).
  const double total =
      softmax_rows(N, O, logits, targets, mask, probs, [&](Index r, bool kept, Index n) {
        S* d = logits + r * O;
        if (!kept) {
          std::fill_n(d, n, S(0));
          return;
        }
        for (Index j = 0; j < n; ++j) d[j] = probs[r * O + j];
        d[targets[r]] -= S(1);
      });
  *loss = S(total);
  dense_backward<S>(N, F, O, logits, x, w, dx, dw, db);
}

#define RNNX_INSTANTIATE(S)                                                                   \
  template void dense_softmax_cross_entropy<S>(Index, Index, Index, const S*, const S*,        \
                                               const S*, const std::int64_t*,                   \
                                               const std::uint8_t*, S*, S*, S*, S*);            \
  template void dense_softmax_cross_entropy_checked<S>(Index, Index, Index, const S*, const S*, \
                                                       const S*, const std::int64_t*,           \
                                                       const std::uint8_t*, S*, S*, S*, S*);
RNNX_INSTANTIATE(float)
RNNX_INSTANTIATE(double)
#undef RNNX_INSTANTIATE

}  // namespace rnnx
