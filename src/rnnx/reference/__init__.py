"""Plain-NumPy ground truth for rnnx.

Every kernel that rnnx implements in C++ is written here once more in plain,
readable NumPy.  The tests compare the compiled code against these functions,
and a learner can read the equations here without any C++.

Modules
-------
course
    The "Building your Recurrent Neural Network - Step by Step" functions with the
    course layout: float64, batch on the second axis, sequences ``(n, m, T)``.
dinos
    The "Dinosaurus Island" character-level language model (2021 semantics,
    including the global-RNG side effects and the printed progress listing).
kernels
    The time-major ``(T, B, D)`` RNN, GRU and LSTM kernels with PyTorch conventions
    that the C++ core implements.
masking
    The same kernels for batches of sequences of different lengths (``lengths``).
heads
    Dense, embedding, softmax cross-entropy and last-step pooling layers.
tagger
    The tagging model's whole training step (a layer, a dense softmax head per step).
"""

from . import course, dinos, heads, kernels, masking, tagger

__all__ = ["course", "dinos", "heads", "kernels", "masking", "tagger"]
