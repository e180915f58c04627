// Vanilla RNN: whole-sequence forward and backpropagation through time.
//
//   z_t = x_t W_ihᵀ + h_{t-1} W_hhᵀ + b          h_t = f(z_t),  f = tanh or relu
//
// Shapes (time-major, C-contiguous, dimension alphabet of common.hpp):
//   x (T,B,D) (nullptr with index input d.ids, see input.hpp)  w_ih (H,D)  w_hh (H,H)  b (H) or nullptr
//   h_all (T+1,B,H): h_all[0] = h0 on entry, h_all[t+1] = h_t on return.
#pragma once

#include "rnnx/common.hpp"

namespace rnnx {

template <typename S>
void rnn_forward(const SeqDims& d, Nonlinearity f, const S* x, const S* w_ih, const S* w_hh,
                 const S* b, S* h_all, const std::int64_t* lengths = nullptr);

// Backward through time. Inputs:
//   dh (T,B,H)    dL/dh_t from above each step (nullptr: zeros)
//   dh_n (B,H)    extra dL/dh_{T-1} on the final state (nullptr: zeros)
//   h (T,B,H)     the outputs of forward;  h_prev (T,B,H) the state each step started
//                 from (for rnnx's own forward: h_all and h_all + B*H)
// Outputs (overwritten): dx (T,B,D) or nullptr (always with index input), dh0 (B,H), dw_ih (H,D), dw_hh (H,H),
//   db (H) or nullptr. dz (T,B,H) is caller-provided scratch that holds dL/dz_t on return.
template <typename S>
void rnn_backward(const SeqDims& d, Nonlinearity f, const S* x, const S* w_ih, const S* w_hh,
                  const S* h, const S* h_prev, const S* dh, const S* dh_n, S* dz, S* dx, S* dh0,
                  S* dw_ih, S* dw_hh, S* db, const std::int64_t* lengths = nullptr);

}  // namespace rnnx
