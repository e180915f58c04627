#include "rnnx/tagger.hpp"

#include <algorithm>
#include <vector>

#include "rnnx/heads.hpp"
#include "rnnx/lstm.hpp"
#include "rnnx/rnn.hpp"

namespace rnnx {

namespace {
// Carves one aligned workspace into pieces, each starting on a 16-element boundary.
template <typename S>
class Workspace {
 public:
  Index add(Index n) {
    const Index at = size_;
    size_ += pad16(n);
    return at;
  }
  void allocate() { buf_.resize(size_t(size_)); }
  S* at(Index offset) { return buf_.data() + offset; }

 private:
  Index size_ = 0;
  AlignedVec<S> buf_;
};
}  // namespace

template <typename S>
S tagger_step(const CellSpec& cell, const SeqDims& d, Index C, const S* x,
              const TaggerParams<S>& p, const std::int64_t* targets,
              const std::int64_t* lengths, const TaggerGrads<S>* grads) {
  check_dims(d);
  RNNX_REQUIRE(C >= 1, "the head needs C >= 1 classes, got " + std::to_string(C));
  RNNX_REQUIRE((p.b_ih == nullptr) == (p.b_hh == nullptr),
               "b_ih and b_hh must be given together (or neither)");
  const Lengths len(lengths, d.B, d.T);
  const Index T = d.T, B = d.B, H = d.H, G = cell.gates(), N = T * B, BH = B * H;
  for (Index t = 0; t < T; ++t)  // before any work; targets of padded steps are not read
    for (Index b = 0; b < B; ++b)
      RNNX_REQUIRE(len.padded(t, b) || (targets[t * B + b] >= 0 && targets[t * B + b] < C),
                   "targets[" + std::to_string(t) + ", " + std::to_string(b) + "] = " +
                       std::to_string(targets[t * B + b]) + " is outside 0..C-1 = 0.." +
                       std::to_string(C - 1));
  const bool lstm = cell.kind == CellKind::Lstm, gru = cell.kind == CellKind::Gru;
  const bool train = grads != nullptr;

  // One workspace for everything the composition's calls would each have allocated.
  Workspace<S> ws;
  const Index o_h = ws.add((T + 1) * BH), o_c = lstm ? ws.add((T + 1) * BH) : -1;
  const Index o_gates = cell.kind == CellKind::Rnn ? -1 : ws.add(N * G * H);
  const Index o_aux = gru && !cell.gru.simplified ? ws.add(N * H) : -1;
  const Index o_b = !gru && p.b_ih ? ws.add(G * H) : -1;  // b = b_ih + b_hh (RNN, LSTM)
  const Index o_y = lengths ? ws.add(N * H) : -1;       // h with padded steps zeroed
  const Index o_logits = train ? -1 : ws.add(2 * N * C);  // logits | probs (loss only)
  Index o_dy = -1, o_scratch = -1, o_dh0 = -1, o_dc0 = -1, o_dbias = -1;
  if (train) {
    o_dy = ws.add(N * H);
    // dz (RNN) | dgates, rows lstm_dgates_stride apart (LSTM) | dgx, dgh (GRU)
    o_scratch = ws.add(lstm ? N * lstm_dgates_stride<S>(H) : (gru ? 2 : 1) * N * G * H);
    o_dh0 = ws.add(BH);
    o_dc0 = lstm ? ws.add(BH) : -1;
    o_dbias = ws.add(2 * G * H);  // stands in for db_ih, db_hh where they are not wanted
  }
  ws.allocate();

  // ---- forward: the layer (from zero state), as RNN/GRU/LSTM.forward run it
  S* h_all = ws.at(o_h);
  S* c_all = lstm ? ws.at(o_c) : nullptr;
  S* gates = o_gates < 0 ? nullptr : ws.at(o_gates);
  S* aux = o_aux < 0 ? nullptr : ws.at(o_aux);
  std::fill_n(h_all, BH, S(0));
  if (c_all) std::fill_n(c_all, BH, S(0));
  const S* b = nullptr;
  if (o_b >= 0) {  // the layers add the two biases in NumPy, element by element
    S* sum = ws.at(o_b);
    for (Index i = 0; i < G * H; ++i) sum[i] = p.b_ih[i] + p.b_hh[i];
    b = sum;
  }
  switch (cell.kind) {
    case CellKind::Rnn:
      rnn_forward<S>(d, cell.f, x, p.w_ih, p.w_hh, b, h_all, lengths);
      break;
    case CellKind::Gru:
      gru_forward<S>(d, cell.gru, x, p.w_ih, p.w_hh, p.b_ih, p.b_hh, gates, aux, h_all, lengths);
      break;
    case CellKind::Lstm:
      lstm_forward<S>(d, x, p.w_ih, p.w_hh, b, gates, h_all, c_all, lengths, p.peephole);
      break;
  }
  const S* h = h_all + BH;
  std::vector<std::uint8_t> mask;
  const S* y = h;  // the layer's output: h, times the step mask where lengths are given
  if (lengths) {
    mask.resize(size_t(N));
    S* ym = ws.at(o_y);
    for (Index t = 0; t < T; ++t)
      for (Index bb = 0; bb < B; ++bb) {
        const bool keep = !len.padded(t, bb);
        mask[size_t(t * B + bb)] = keep;
        const S m = keep ? S(1) : S(0);
        for (Index j = 0; j < H; ++j) ym[(t * B + bb) * H + j] = h[(t * B + bb) * H + j] * m;
      }
    y = ym;
  }
  const std::uint8_t* maskp = lengths ? mask.data() : nullptr;
  {
    const MapConstArr<S> all(y, N * H);  // x - x is NaN exactly for NaN and ±inf
    RNNX_REQUIRE((all - all).sum() == S(0),
                 "the layer's output h contains NaN or infinity (the values overflow)");
  }

  S loss = S(0);
  if (!train) {  // the head's forward and the loss only
    S* logits = ws.at(o_logits);
    S* probs = logits + N * C;
    dense_forward<S>(N, H, C, y, p.head_w, p.head_b, logits);
    const MapConstArr<S> all(logits, N * C);
    RNNX_REQUIRE((all - all).sum() == S(0),  // x - x is NaN exactly for NaN and ±inf
                 "logits = h head_weightᵀ + head_bias contain NaN or infinity (the values "
                 "overflow)");
    softmax_cross_entropy_checked<S>(N, C, logits, targets, maskp, probs, &loss);  // checked above
    return loss;
  }

  // ---- the head, forward and backward; then the layer's backward through time
  const TaggerGrads<S>& g = *grads;
  S* dy = ws.at(o_dy);
  dense_softmax_cross_entropy_checked<S>(N, H, C, y, p.head_w, p.head_b, targets, maskp, &loss,
                                         dy, g.dhead_w, p.head_b ? g.dhead_b : nullptr);
  S* scratch = ws.at(o_scratch);
  S* dh0 = ws.at(o_dh0);
  S* db_ih = g.db_ih ? g.db_ih : ws.at(o_dbias);
  S* db_hh = g.db_hh ? g.db_hh : ws.at(o_dbias) + G * H;
  switch (cell.kind) {
    case CellKind::Rnn:
      rnn_backward<S>(d, cell.f, x, p.w_ih, p.w_hh, h, h_all, dy, nullptr, scratch, nullptr,
                      dh0, g.dw_ih, g.dw_hh, p.b_ih ? db_ih : nullptr, lengths);
      break;
    case CellKind::Gru:
      gru_backward<S>(d, cell.gru, x, p.w_ih, p.w_hh, h_all, gates, aux, dy, nullptr, scratch,
                      scratch + N * G * H, nullptr, dh0, g.dw_ih, g.dw_hh, db_ih, db_hh, lengths);
      break;
    case CellKind::Lstm:
      lstm_backward<S>(d, x, p.w_ih, p.w_hh, gates, h_all, c_all + BH, c_all, dy, nullptr,
                       nullptr, scratch, nullptr, dh0, ws.at(o_dc0), g.dw_ih, g.dw_hh,
                       p.b_ih ? db_ih : nullptr, lengths, p.peephole, g.dpeephole);
      break;
  }
  if (!gru && p.b_ih && g.db_hh) std::copy_n(db_ih, G * H, g.db_hh);  // one bias, two names
  return loss;
}

template float tagger_step<float>(const CellSpec&, const SeqDims&, Index, const float*,
                                  const TaggerParams<float>&, const std::int64_t*,
                                  const std::int64_t*, const TaggerGrads<float>*);
template double tagger_step<double>(const CellSpec&, const SeqDims&, Index, const double*,
                                    const TaggerParams<double>&, const std::int64_t*,
                                    const std::int64_t*, const TaggerGrads<double>*);

}  // namespace rnnx
