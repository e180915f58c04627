"""NumPy arrays whose data start on a 64-byte boundary, as the kernels' own buffers do.

The compiled kernels take every float input at a 64-byte boundary (vectorised loops then
split an array the same way whatever memory it came from, so results never depend on
where a caller's array lies) and copy an input that is not aligned so. NumPy aligns its
allocations to 16 bytes only; the layers and the Tagger keep their parameters in arrays
made here, so that a call copies none of them (at W_tiny's sizes the six copies were
about 4% of a Tagger call's instructions). A copy made elsewhere (``copy.deepcopy``,
unpickling, ``np.array``) is NumPy's own allocation again: the same results, with the
copies per call back.
"""

import math

import numpy as np

ALIGN = 64  # bytes; rnnx::kAlign in src/cpp/rnnx/memory.hpp


def aligned_empty(shape, dtype):
    """An uninitialised C-contiguous array whose data start on an ALIGN-byte boundary."""
    dtype = np.dtype(dtype)
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(n) for n in shape)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = -raw.ctypes.data % ALIGN
    return raw[start:start + nbytes].view(dtype).reshape(shape)


def aligned_copy(a, dtype=None):
    """A copy of `a` (in `dtype` when given) in an aligned_empty array."""
    a = np.asarray(a)
    out = aligned_empty(a.shape, a.dtype if dtype is None else dtype)
    out[...] = a
    return out
