// rnnx core: shared definitions. Math only: no pybind11, no Python.h.
//
// One dimension alphabet, used by every kernel:
//   T time steps, B batch, D input features, H hidden units, V vocabulary / classes,
//   G gates per cell (1 RNN, 4 LSTM).
// Every sequence lives time-major and C-contiguous: x is (T, B, D), so the step
// x[t] is a row-major (B x D) block and all steps together form one row-major
// (T*B x D) matrix. Weights follow PyTorch: w_ih (G*H, D), w_hh (G*H, H).
#pragma once

#include <Eigen/Core>
#include <algorithm>

#include "rnnx/memory.hpp"
#include <cstdint>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace rnnx {

using Index = Eigen::Index;

template <typename S>
using RowMat = Eigen::Matrix<S, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using RowVec = Eigen::Matrix<S, 1, Eigen::Dynamic, Eigen::RowMajor>;
template <typename S>
using MapMat = Eigen::Map<RowMat<S>>;
template <typename S>
using MapConstMat = Eigen::Map<const RowMat<S>>;
template <typename S>
using MapConstRowVec = Eigen::Map<const RowVec<S>>;
template <typename S>
using MapRowVec = Eigen::Map<RowVec<S>>;

template <typename S>
using MapArr = Eigen::Map<Eigen::Array<S, Eigen::Dynamic, 1>>;
template <typename S>
using MapConstArr = Eigen::Map<const Eigen::Array<S, Eigen::Dynamic, 1>>;

enum class Nonlinearity { Tanh, Relu };

// Every buffer the kernels read or write starts on a 64-byte boundary (kAlign, see
// memory.hpp). Eigen's vectorised reductions peel unaligned leading elements, so the
// summation order (and the last bit of a result) would otherwise depend on where an
// array happened to be placed.
template <typename T>
struct AlignedAllocator {
  using value_type = T;
  AlignedAllocator() = default;
  template <typename U>
  AlignedAllocator(const AlignedAllocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(aligned_allocate(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) { aligned_release(p); }
  // Elements are left uninitialised unless a value is given: buffers are written before
  // they are read, and zero-filling large workspaces costs a full pass over memory.
  template <typename U, typename... Args>
  void construct(U* p, Args&&... args) {
    if constexpr (sizeof...(Args) == 0)
      ::new (static_cast<void*>(p)) U;
    else
      ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  template <typename U>
  bool operator==(const AlignedAllocator<U>&) const { return true; }
  template <typename U>
  bool operator!=(const AlignedAllocator<U>&) const { return false; }
};

template <typename T>
using AlignedVec = std::vector<T, AlignedAllocator<T>>;

inline bool is_aligned(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % kAlign == 0; }

// dst (+)= a * b through Eigen's GEMM (measured faster than its coefficient-based
// product here even at the course's sizes, e.g. 180 ns against 570 ns for 10x5 by 5x20).
template <bool Accumulate, typename Dst, typename A, typename B>
inline void matmul(Dst&& dst, const A& a, const B& b) {
  if constexpr (Accumulate)
    dst.noalias() += a * b;
  else
    dst.noalias() = a * b;
}

// n rounded up to a multiple of 16 elements (64 bytes for float), so that scratch carved
// into per-task pieces keeps every piece aligned (Eigen's kernels load packed operands
// with aligned loads).
inline Index pad16(Index n) { return (n + 15) / 16 * 16; }

struct SeqDims {
  Index T, B, D, H;
  // Index input (or nullptr): row r of x is the one-hot vector e_{ids[r]} of length D,
  // ids (T*B) each in 0..D-1, and x is not read. The input projection is then a gather
  // of columns of w_ih, and its weight gradient a scatter-add (see input.hpp).
  const std::int64_t* ids = nullptr;
};

// Throw std::invalid_argument (arrives in Python as ValueError) unless cond holds. A
// macro, so that the message (often built with std::to_string) is only formed on failure:
// a function argument would be built on every call, e.g. once per row in a loop.
#define RNNX_REQUIRE(cond, message)                                  \
  do {                                                               \
    if (!(cond)) throw std::invalid_argument(std::string(message));  \
  } while (0)

// Variable lengths: lengths (B), each in 1..T, or nullptr for all T. A step t >= lengths[b]
// is padding for example b: its state is carried through unchanged, its outputs are not
// used, and in backward it passes the gradient through and contributes nothing.
struct Lengths {
  const std::int64_t* len = nullptr;
  Index min_len = 0;  // no step before this is padding for anyone
  Lengths(const std::int64_t* lengths, Index B, Index T) : len(lengths), min_len(T) {
    if (!len) return;
    for (Index b = 0; b < B; ++b) {
      RNNX_REQUIRE(len[b] >= 1 && len[b] <= T, "lengths[" + std::to_string(b) + "] = " +
                                               std::to_string(len[b]) + " is outside 1..T = 1.." +
                                               std::to_string(T));
      min_len = std::min<Index>(min_len, Index(len[b]));
    }
  }
  bool any(Index t) const { return len && t >= min_len; }  // is any example padded at t?
  bool padded(Index t, Index b) const { return len && t >= len[b]; }
};

inline void check_dims(const SeqDims& d) {
  RNNX_REQUIRE(d.T >= 1, "sequence length T must be >= 1, got " + std::to_string(d.T));
  RNNX_REQUIRE(d.B >= 1, "batch size B must be >= 1, got " + std::to_string(d.B));
  RNNX_REQUIRE(d.D >= 1, "input size D must be >= 1, got " + std::to_string(d.D));
  RNNX_REQUIRE(d.H >= 1, "hidden size H must be >= 1, got " + std::to_string(d.H));
}

}  // namespace rnnx
