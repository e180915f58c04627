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
#include <cstdint>
#include <stdexcept>
#include <string>

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

enum class Nonlinearity { Tanh, Relu };

struct SeqDims {
  Index T, B, D, H;
};

// Throw std::invalid_argument (arrives in Python as ValueError) unless cond holds.
inline void require(bool cond, const std::string& message) {
  if (!cond) throw std::invalid_argument(message);
}

inline void check_dims(const SeqDims& d) {
  require(d.T >= 1, "sequence length T must be >= 1, got " + std::to_string(d.T));
  require(d.B >= 1, "batch size B must be >= 1, got " + std::to_string(d.B));
  require(d.D >= 1, "input size D must be >= 1, got " + std::to_string(d.D));
  require(d.H >= 1, "hidden size H must be >= 1, got " + std::to_string(d.H));
}

}  // namespace rnnx
