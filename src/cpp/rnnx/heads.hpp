// Heads and losses around the recurrent kernels, for the four shapes of an RNN model:
// embedding (ids in), dense (any-step projection: many-to-many), last-step pooling
// (many-to-one), and softmax cross-entropy (the loss of a language model).
//
// Dimensions (besides common.hpp's T, B, V): N rows, the product of any leading
// dimensions (T*B for a sequence); F features in, O features out of a dense layer;
// E embedding width; R rows of logits (T*B for a sequence, B for one per example).
// Every array is C-contiguous and time-major where it has a time axis; ids, targets and
// lengths are int64, mask is one byte per position (0 masked, 1 kept).
//
// Results never depend on the number of threads: work is split into blocks whose sizes
// depend only on the problem's sizes (parallel.hpp), and every sum runs in a fixed order.
#pragma once

#include <cstdint>

#include "rnnx/common.hpp"

namespace rnnx {

// Dense (PyTorch's nn.Linear):  y = x Wᵀ + b
//   x (N,F)  w (O,F)  b (O) or nullptr  ->  y (N,O)
template <typename S>
void dense_forward(Index N, Index F, Index O, const S* x, const S* w, const S* b, S* y);

// dx = dy W (N,F) or nullptr,  dw = dyᵀ x (O,F),  db = Σ_rows dy (O) or nullptr.
template <typename S>
void dense_backward(Index N, Index F, Index O, const S* dy, const S* x, const S* w, S* dx,
                    S* dw, S* db);

// Embedding (a gather):  y[n] = W[ids[n]]
//   ids (N) in [0,V)  w (V,E)  ->  y (N,E)
template <typename S>
void embedding_forward(Index N, Index V, Index E, const std::int64_t* ids, const S* w, S* y);

// dw[v] = Σ_{n : ids[n] = v} dy[n], summed in increasing n (a scatter-add).
//   dy (N,E)  ids (N)  ->  dw (V,E)
template <typename S>
void embedding_backward(Index N, Index V, Index E, const std::int64_t* ids, const S* dy, S* dw);

// Softmax cross-entropy over R rows of V classes:
//   p_r = softmax(l_r),   loss = Σ_{r : mask_r} -log p_r[targets_r]   (a sum, not a mean)
//   logits (R,V)  targets (R), in [0,V) where kept  mask (R) or nullptr (all kept)
//   -> probs (R,V), *loss. Targets of masked rows are not read.
template <typename S>
void softmax_cross_entropy_forward(Index R, Index V, const S* logits,
                                   const std::int64_t* targets, const std::uint8_t* mask,
                                   S* probs, S* loss);
// The same for targets the caller has checked (in [0,V) where kept; the Tagger checks
// its own before any work): no second pass over them (R >= 1, V >= 1 still checked).
template <typename S>
void softmax_cross_entropy_checked(Index R, Index V, const S* logits,
                                   const std::int64_t* targets, const std::uint8_t* mask,
                                   S* probs, S* loss);

// dlogits_r = (p_r - onehot(targets_r)) * mask_r   (dL/dl of the summed loss above)
template <typename S>
void softmax_cross_entropy_backward(Index R, Index V, const S* probs,
                                    const std::int64_t* targets, const std::uint8_t* mask,
                                    S* dlogits);

// Last-step pooling (many-to-one):  out[b] = y[lengths[b] - 1, b]   (lengths nullptr: T-1)
//   y (T,B,F)  lengths (B) in 1..T  ->  out (B,F)
template <typename S>
void last_step_forward(Index T, Index B, Index F, const S* y, const std::int64_t* lengths,
                       S* out);

// dy[t, b] = dout[b] where t = lengths[b] - 1, else 0.   dout (B,F)  ->  dy (T,B,F)
template <typename S>
void last_step_backward(Index T, Index B, Index F, const S* dout, const std::int64_t* lengths,
                        S* dy);

// Dense head + softmax cross-entropy + both backwards, in one call (the training step of
// a classifier or language-model head): the composition, bit for bit, of
//   logits = dense_forward(x, w, b)                                       (N,O)
//   probs, *loss = softmax_cross_entropy_forward(logits, targets, mask)   R = N, V = O
//   dlogits = softmax_cross_entropy_backward(probs, targets, mask)        (N,O)
//   dx, dw, db = dense_backward(dlogits, x, w)
//   x (N,F)  w (O,F)  b (O) or nullptr  targets (N), in [0,O) where kept  mask (N) or nullptr
//   -> *loss, dx (N,F), dw (O,F), db (O) or nullptr
// The logits and probs live in one workspace of this call. Throws std::invalid_argument
// for a kept target outside 0..O-1 and when a logit is not finite (as the unfused
// softmax_cross_entropy refuses such logits).
template <typename S>
void dense_softmax_cross_entropy(Index N, Index F, Index O, const S* x, const S* w, const S* b,
                                 const std::int64_t* targets, const std::uint8_t* mask, S* loss,
                                 S* dx, S* dw, S* db);
// The same for targets the caller has checked (the Tagger, before any work).
template <typename S>
void dense_softmax_cross_entropy_checked(Index N, Index F, Index O, const S* x, const S* w,
                                         const S* b, const std::int64_t* targets,
                                         const std::uint8_t* mask, S* loss, S* dx, S* dw, S* db);

}  // namespace rnnx
