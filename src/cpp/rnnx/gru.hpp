// GRU: whole-sequence forward and backpropagation through time, three variants.
//
// Full GRU, gate order r, z, n (PyTorch's), G = 3:
//   r = σ(x_t W_irᵀ + b_ir + h_{t-1} W_hrᵀ + b_hr)
//   z = σ(x_t W_izᵀ + b_iz + h_{t-1} W_hzᵀ + b_hz)
//   reset_after (PyTorch, cuDNN):  n = tanh(x_t W_inᵀ + b_in + r * (h_{t-1} W_hnᵀ + b_hn))
//   reset before (the course, Cho et al.): n = tanh(x_t W_inᵀ + b_in + (r * h_{t-1}) W_hnᵀ + b_hn)
//   h_t = (1 - z) * n + z * h_{t-1}
// Simplified GRU (the course's, update gate only), gate order z, n, G = 2:
//   z = σ(x_t W_izᵀ + b_iz + h_{t-1} W_hzᵀ + b_hz)
//   n = tanh(x_t W_inᵀ + b_in + h_{t-1} W_hnᵀ + b_hn)
//   h_t = (1 - z) * n + z * h_{t-1}
//
// Shapes (time-major, C-contiguous): x (T,B,D) (nullptr with index input d.ids), w_ih (G*H,D), w_hh (G*H,H), b_ih and b_hh
// (G*H) or nullptr; gates (T,B,G*H) the activated gates (written); aux (T,B,H) (written):
// h_{t-1} W_hnᵀ + b_hn for reset_after, r * h_{t-1} for reset before, unused (may be
// nullptr) for the simplified GRU; h_all (T+1,B,H) with h_all[0] = h0 on entry.
#pragma once

#include "rnnx/common.hpp"

namespace rnnx {

struct GruVariant {
  bool reset_after = true;
  bool simplified = false;
  Index gates() const { return simplified ? 2 : 3; }
};

template <typename S>
void gru_forward(const SeqDims& d, GruVariant v, const S* x, const S* w_ih, const S* w_hh,
                 const S* b_ih, const S* b_hh, S* gates, S* aux, S* h_all,
                 const std::int64_t* lengths = nullptr);

// Backward through time. dh (T,B,H) dL/dh_t from above or nullptr; dh_n (B,H) extra
// gradient on the final state or nullptr; h_prev (T,B,H) the state each step started
// from; gates, aux from forward. Outputs (overwritten): dx (T,B,D) or nullptr (always with index input), dh0 (B,H),
// dw_ih (G*H,D), dw_hh (G*H,H), db_ih, db_hh (G*H). Scratch (caller-provided):
// dgx, dgh (T,B,G*H) hold the gradients of the input-side and recurrent-side
// pre-activations on return.
template <typename S>
void gru_backward(const SeqDims& d, GruVariant v, const S* x, const S* w_ih, const S* w_hh,
                  const S* h_prev, const S* gates, const S* aux, const S* dh, const S* dh_n,
                  S* dgx, S* dgh, S* dx, S* dh0, S* dw_ih, S* dw_hh, S* db_ih, S* db_hh,
                  const std::int64_t* lengths = nullptr);

}  // namespace rnnx
