// LSTM: whole-sequence forward and backpropagation through time.
//
// Gate order i, f, g, o (PyTorch's); the four gates of a step are one row-major
// (B x 4H) block, so one GEMM per step serves all of them:
//   [a_i a_f a_g a_o] = x_t W_ihᵀ + h_{t-1} W_hhᵀ + b
//   i = σ(a_i)  f = σ(a_f)  g = tanh(a_g)  o = σ(a_o)
//   c_t = f*c_{t-1} + i*g       h_t = o*tanh(c_t)
//
// Shapes (time-major, C-contiguous):
//   x (T,B,D) (nullptr for index input d.ids, see input.hpp)
//   w_ih (4H,D)  w_hh (4H,H)  b (4H) or nullptr
//   gates (T,B,4H): the activated gates [i f g o] of every step (written)
//   h_all, c_all (T+1,B,H): [0] = h0 / c0 on entry, [t+1] = h_t / c_t on return.
//   peephole (3H) or nullptr: diagonal peepholes [p_i p_f p_o] from the cell state:
//     i = σ(a_i + p_i c_{t-1}),  f = σ(a_f + p_f c_{t-1}),  o = σ(a_o + p_o c_t)
//   (backward then also writes their gradient dpeephole (3H)).
#pragma once

#include "rnnx/common.hpp"

namespace rnnx {

template <typename S>
void lstm_forward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* b,
                  S* gates, S* h_all, S* c_all, const std::int64_t* lengths = nullptr,
                  const S* peephole = nullptr);

// Backward through time. Inputs:
//   dh (T,B,H) dL/dh_t from above (nullptr: zeros); dh_n, dc_n (B,H) extra gradients on
//   the final h and c (nullptr: zeros); gates, h, c (T,B,H) from forward, h_prev and
//   c_prev (T,B,H) the states each step started from.
// Outputs (overwritten): dx (T,B,D) or nullptr, dh0, dc0 (B,H), dw_ih (4H,D),
//   dw_hh (4H,H), db (4H) or nullptr. dgates is caller-provided scratch of T*B rows of
//   lstm_dgates_stride<S>(H) values that holds dL/d[a_i a_f a_g a_o] (4H of each row) on
//   return.
// The row stride of lstm_backward's dgates: 4H, plus 64 bytes where 4H values are a
// multiple of 1 KiB. The carry product of each step reads 6 to 12 rows of dgates side by
// side; rows a multiple of 4 KiB apart fall in the same set of the L1 cache (and 4 KiB
// apart alias in its load/store disambiguation); the padding spreads them out.
template <typename S>
constexpr Index lstm_dgates_stride(Index H) {
  return (4 * H * Index(sizeof(S))) % 1024 == 0 ? 4 * H + 64 / Index(sizeof(S)) : 4 * H;
}

template <typename S>
void lstm_backward(const SeqDims& d, const S* x, const S* w_ih, const S* w_hh, const S* gates,
                   const S* h_prev, const S* c, const S* c_prev, const S* dh, const S* dh_n,
                   const S* dc_n, S* dgates, S* dx, S* dh0, S* dc0, S* dw_ih, S* dw_hh, S* db,
                   const std::int64_t* lengths = nullptr, const S* peephole = nullptr,
                   S* dpeephole = nullptr);

}  // namespace rnnx
