// Kernels behind the course drop-in (rnnx.course, rnnx.dinos) that the generic cells
// do not cover: the per-step softmax head of "Step by Step" and the character-level
// model of "Dinosaurus Island" (batch of one, one-hot input given as indices).
#pragma once

#include <cstdint>
#include <vector>

#include "rnnx/common.hpp"
#include "rnnx/mt19937.hpp"

namespace rnnx {

// y (T,B,V) := softmax of every step's (B x V) block in place, shifted by the block's
// global max (the course's softmax over an (n_y, m) slice):
//   y = exp(z - max(z)) / Σ_V exp(z - max(z))
template <typename S>
void softmax_steps(Index T, Index B, Index V, S* y);

// Logits of a dense head for all steps: y (T*B, V) = h (T*B, H) W_yᵀ + b_y.
template <typename S>
void dense_head(Index TB, Index H, Index V, const S* h, const S* w_y, const S* b_y, S* y);

// Parameters of the Dinosaurus model: wax (H,V), waa (H,H), wya (V,H), b (H), by (V).
template <typename S>
struct CharRnnParams {
  Index H, V;
  const S *wax, *waa, *wya, *b, *by;
};

// Forward over one sequence, batch 1:
//   a_t = tanh(W_ax x_t + W_aa a_{t-1} + b)   (x_t one-hot at X[t]; X[t] < 0: zeros)
//   ŷ_t = softmax(W_ya a_t + b_y)              loss = -Σ_t log ŷ_t[Y[t]]
// a_all (T+1,H): a_all[0] = a0 on entry; y_hat (T,V). Returns the loss.
template <typename S>
S char_rnn_forward(const CharRnnParams<S>& p, Index T, const std::int64_t* X,
                   const std::int64_t* Y, S* a_all, S* y_hat);

// Backward of the loss above:
//   dy_t = ŷ_t - onehot(Y[t]);  da_t = W_yaᵀ dy_t + da_next;  dz_t = (1 - a_t^2) da_t
//   da_next := W_aaᵀ dz_t; dW_ya = Σ dy_t a_tᵀ; db_y = Σ dy_t; dW_aa = Σ dz_t a_{t-1}ᵀ;
//   db = Σ dz_t; column X[t] of dW_ax += dz_t.
// a (T,H) and a_prev (T,H) are the states after and before each step. dz (T,H) scratch.
// Outputs overwritten: dwax (H,V), dwaa (H,H), dwya (V,H), db (H), dby (V), da_next (H).
template <typename S>
void char_rnn_backward(const CharRnnParams<S>& p, Index T, const std::int64_t* X,
                       const std::int64_t* Y, const S* a, const S* a_prev, const S* y_hat,
                       S* dz, S* dwax, S* dwaa, S* dwya, S* db, S* dby, S* da_next);

// The course's sample(): from x = 0, a = 0, repeat one forward step, reseed the legacy
// RNG with seed0 + 2k, draw idx ~ ŷ by inverse CDF (as RandomState.choice does), feed
// idx back as one-hot, until idx == eos or 50 draws (then eos is appended).
// rng holds the RNG state after the last draw on return.
template <typename S>
std::vector<std::int64_t> char_rnn_sample(const CharRnnParams<S>& p, std::int64_t eos,
                                          std::int64_t seed0, LegacyMT19937& rng);

}  // namespace rnnx
