// A tagging model (many-to-many, T_x = T_y): one recurrent layer (RNN, GRU or LSTM) and a
// dense softmax head at every step, with the summed per-step cross-entropy as its loss:
//
//   h_t = cell(x_t, h_{t-1})   from h_0 = 0 (and c_0 = 0)
//   logits_t = h_t W_headᵀ + b_head         (B, C)
//   loss = Σ_{t, b : t < lengths[b]} -log softmax(logits_t[b])[targets[t, b]]
//
// One call runs the forward pass and, when gradients are asked for, the whole backward
// pass: the composition, bit for bit, of the calls it replaces (the layer's kernel, the
// dense head and the cross-entropy, then the head's and the layer's backward), with one
// workspace for the layer's buffers and none of the calls' overhead. That overhead is
// most of a training step for small models (e.g. 4 steps of 10 x 5: about 30 µs in
// calls, 3 µs of math). No dL/dx: the model's input is data.
//
// Shapes (time-major, C-contiguous; C classes):
//   x (T,B,D), or nullptr for index input d.ids (input.hpp)
//   w_ih (G*H,D)  w_hh (G*H,H)  b_ih, b_hh (G*H) or both nullptr  peephole (3H) or nullptr
//   head_w (C,H)  head_b (C) or nullptr  targets (T*B), in 0..C-1 where valid
//   lengths (B) in 1..T or nullptr (all T)
// Gradients (TaggerGrads, each nullptr where not wanted): the layer's dw_ih, dw_hh,
// db_ih, db_hh, dpeephole, and the head's dhead_w, dhead_b. The RNN and LSTM kernels take
// one bias b = b_ih + b_hh: its gradient is written to both db_ih and db_hh.
#pragma once

#include <cstdint>

#include "rnnx/common.hpp"
#include "rnnx/gru.hpp"

namespace rnnx {

enum class CellKind { Rnn, Gru, Lstm };

struct CellSpec {
  CellKind kind = CellKind::Lstm;
  Nonlinearity f = Nonlinearity::Tanh;  // RNN only
  GruVariant gru;                       // GRU only
  Index gates() const {
    return kind == CellKind::Rnn ? 1 : kind == CellKind::Lstm ? 4 : gru.gates();
  }
};

template <typename S>
struct TaggerParams {
  const S* w_ih = nullptr;
  const S* w_hh = nullptr;
  const S* b_ih = nullptr;
  const S* b_hh = nullptr;
  const S* peephole = nullptr;  // LSTM only
  const S* head_w = nullptr;
  const S* head_b = nullptr;
};

template <typename S>
struct TaggerGrads {
  S* dw_ih = nullptr;
  S* dw_hh = nullptr;
  S* db_ih = nullptr;
  S* db_hh = nullptr;
  S* dpeephole = nullptr;
  S* dhead_w = nullptr;
  S* dhead_b = nullptr;
};

// The loss; the gradients too when grads is not nullptr. Throws std::invalid_argument
// (before any work) for a valid step's target outside 0..C-1, and when the layer's output
// or the logits are not finite (the values overflowed).
template <typename S>
S tagger_step(const CellSpec& cell, const SeqDims& d, Index C, const S* x,
              const TaggerParams<S>& p, const std::int64_t* targets,
              const std::int64_t* lengths, const TaggerGrads<S>* grads);

}  // namespace rnnx
