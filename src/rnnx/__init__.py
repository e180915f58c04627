"""rnnx: recurrent neural networks whose loops run in C++, with readable NumPy twins.

* ``rnnx.rnn_forward``, ``rnnx.lstm_backward``, ...: the course's "Step by Step"
  functions as a drop-in (see :mod:`rnnx.course`).
* ``rnnx.dinos``: the course's "Dinosaurus Island" functions as a drop-in.
* ``rnnx.kernels``: the time-major ``(T, B, D)`` RNN and LSTM kernels.
* ``rnnx.reference``: the same math in plain NumPy, the ground truth of the tests.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import dinos, kernels, reference
from ._loader import core as _core
from .course import (
    lstm_backward,
    lstm_cell_backward,
    lstm_cell_forward,
    lstm_forward,
    rnn_backward,
    rnn_cell_backward,
    rnn_cell_forward,
    rnn_forward,
    sigmoid,
    softmax,
)

try:
    __version__ = _version("rnnx")
except PackageNotFoundError:  # running from a source tree
    __version__ = _core.__version__

isa = _core.isa  # the instruction-set build in use: "avx2" or "generic"

__all__ = [
    "rnn_cell_forward", "rnn_forward", "rnn_cell_backward", "rnn_backward",
    "lstm_cell_forward", "lstm_forward", "lstm_cell_backward", "lstm_backward",
    "softmax", "sigmoid", "dinos", "kernels", "reference", "isa", "__version__",
]
