"""rnnx: recurrent neural networks whose loops run in C++, with readable NumPy twins.

* ``rnnx.rnn_forward``, ``rnnx.lstm_backward``, ...: the course's "Step by Step"
  functions as a drop-in (see :mod:`rnnx.course`).
* ``rnnx.dinos``: the course's "Dinosaurus Island" functions as a drop-in.
* ``rnnx.RNN``, ``rnnx.GRU``, ``rnnx.LSTM``: layers (stacked, bidirectional, variable
  lengths) with PyTorch's arguments and parameter names (see :mod:`rnnx.layers`).
* ``rnnx.kernels``: the time-major ``(T, B, D)`` RNN, GRU and LSTM kernels.
* ``rnnx.heads``: dense, embedding, softmax cross-entropy and last-step pooling,
  forward and backward (C++), the heads of the four RNN shapes.
* ``rnnx.Tagger``: a tag per step (many-to-many): a layer and a softmax head, whose
  single-layer training step is one C++ call (see :mod:`rnnx.tagger`).
* ``rnnx.LanguageModel``: a word- or character-level language model (train, sample,
  score, save, load; see :mod:`rnnx.lm` and the ``rnnx`` command).
* ``rnnx.reference``: the same math in plain NumPy, the ground truth of the tests.
* ``rnnx.show_config()``: versions, instruction set, CPU features and threads in use.
"""

from importlib.metadata import PackageNotFoundError, version as _version

from . import dinos, heads, kernels, optim, reference
from .layers import GRU, LSTM, RNN
from .lm import LanguageModel
from .tagger import Tagger
from ._loader import core as _core
from ._config import show_config
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

isa = _core.isa  # the instruction-set build in use: "avx512", "avx2" or "generic"


def get_num_threads():
    """The number of threads rnnx's kernels use (the calling thread included)."""
    return _core.num_threads()


def set_num_threads(n):
    """Set the number of threads rnnx's kernels use.

    The default is the environment variable ``RNNX_NUM_THREADS`` or else the number of
    CPUs this process may run on. Results are bit-identical for any thread count: work
    is split into blocks whose sizes depend only on the problem.

    Parameters
    ----------
    n : int
        At least 1.
    """
    if isinstance(n, bool) or not isinstance(n, int):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    _core.set_num_threads(n)


def release_memory():
    """Return the memory rnnx keeps for reuse to the system, and say how much it was.

    The kernels keep the blocks they free and hand them out again: fresh memory from
    the system costs page faults, up to a fifth of a training step at mid sizes. They
    keep up to 512 MiB, less where an eighth of the memory the process may use (the
    physical memory, or its cgroup's limit in a container) is less, 64 MiB where that is
    not known; the environment variable ``RNNX_MEMORY_CACHE_MB`` (read once, at the
    first release) sets the limit in MiB instead (0: keep no large blocks). Call this
    after the work, e.g. before a long pause, to give the memory back.

    Returns
    -------
    int
        The bytes released.
    """
    return _core.release_memory()


__all__ = [
    "Tagger", "release_memory",
    "rnn_cell_forward", "rnn_forward", "rnn_cell_backward", "rnn_backward",
    "lstm_cell_forward", "lstm_forward", "lstm_cell_backward", "lstm_backward",
    "softmax", "sigmoid", "dinos", "heads", "kernels", "optim", "reference", "isa", "__version__",
    "get_num_threads", "set_num_threads", "RNN", "GRU", "LSTM", "LanguageModel", "show_config",
]
