"""Memory: flat over many calls, and a clear MemoryError for what cannot fit.

* 10,000 forward + backward pairs (a layer, a kernel, a course function, a head) in a
  fresh interpreter: the resident set size after a warm-up grows by less than a few MiB
  (a leak of a few hundred bytes per call would exceed it; a self-check shows it does).
* A request whose arrays could never fit in this machine's memory raises MemoryError
  naming the bytes it needed, before anything is allocated, and the process carries on.
"""

import os
import sys

import numpy as np
import pytest

import rnnx
from rnnx import heads, kernels

from helpers import run_python

CALLS = 10_000
BOUND_MIB = 4

LOOP = r"""
import os, numpy as np, rnnx
from rnnx import heads, kernels

def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

rng = np.random.default_rng(0)
T, B, D, H, V = 5, 3, 4, 6, 7
lstm = rnnx.LSTM(D, H, bidirectional=True, seed=0)
x32 = rng.standard_normal((T, B, D)).astype(np.float32)
dy = np.ones((T, B, 2 * H), np.float32)
x, h0 = rng.standard_normal((T, B, D)), rng.standard_normal((B, H))
w_ih, w_hh, b = rng.standard_normal((3 * H, D)), rng.standard_normal((3 * H, H)), np.zeros(3 * H)
xc, a0 = rng.standard_normal((D, B, T)), rng.standard_normal((H, B))
p = {"Waa": rng.standard_normal((H, H)), "Wax": rng.standard_normal((H, D)),
     "Wya": rng.standard_normal((V, H)), "ba": np.zeros((H, 1)), "by": np.zeros((V, 1))}
logits, targets = rng.standard_normal((T, B, V)), rng.integers(0, V, (T, B))
leak = []

def one(i):
    k = i % 4
    if k == 0:
        y, state, cache = lstm.forward(x32, lengths=np.array([5, 2, 4]))
        lstm.backward(dy, cache, state)
    elif k == 1:
        h, gates, aux = kernels.gru_forward(x, h0, w_ih, w_hh, b, b)
        kernels.gru_backward(h, x, h0, h, gates, aux, w_ih, w_hh)
    elif k == 2:
        a, y, caches = rnnx.rnn_forward(xc, a0, p)
        rnnx.rnn_backward(a, caches)
    else:
        loss, probs = heads.softmax_cross_entropy(logits, targets)
        heads.softmax_cross_entropy_backward(probs, targets)
    if LEAK:
        leak.append(np.ones(LEAK // 8))

for i in range(2000):  # warm-up: caches, the allocator's free lists, lazy imports
    one(i)
before = rss()
for i in range(CALLS):
    one(i)
print("GROWTH", rss() - before)
"""


def growth(leak_bytes=0):
    code = f"CALLS = {CALLS}\nLEAK = {leak_bytes}\n" + LOOP
    proc = run_python(code, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split("GROWTH")[1])


needs_proc = pytest.mark.skipif(
    not sys.platform.startswith("linux") or "asan" in os.environ.get("LD_PRELOAD", ""),
    reason="reads the resident set size from /proc (not meaningful under AddressSanitizer, "
           "whose quarantine keeps freed memory)")


@needs_proc
def test_memory_stays_flat_over_10000_forward_backward_calls():
    grew = growth()
    assert grew < BOUND_MIB << 20, f"resident memory grew by {grew / 2**20:.1f} MiB"


@needs_proc
def test_the_flatness_check_sees_a_small_leak():
    """A leak of 512 bytes per call (about 5 MiB over the loop) exceeds the bound."""
    assert growth(leak_bytes=512) > BOUND_MIB << 20




@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_output_too_large_raises_memory_error_with_the_size(dtype):
    dout = np.ones((1, 8), dtype)
    T = 2 ** 40  # (T, 1, 8) outputs: 2**43 elements
    with pytest.raises(MemoryError, match=rf"need {2 ** 43 * np.dtype(dtype).itemsize} bytes"):
        heads.last_step_backward(dout, None, T)
    # the process carries on and the next call works
    assert heads.last_step_backward(dout, None, 3).shape == (3, 1, 8)


def test_size_overflow_raises_memory_error():
    with pytest.raises(MemoryError, match="more than 2\\*\\*64 bytes"):
        heads.last_step_backward(np.ones((4, 8)), None, 2 ** 61)


def test_huge_vocabulary_raises_memory_error_with_the_size():
    dy, ids = np.ones((2, 3)), np.array([0, 1])
    with pytest.raises(MemoryError, match=rf"need {2 ** 45 * 3 * 8} bytes"):
        heads.embedding_backward(dy, ids, 2 ** 45)


def test_huge_zero_stride_input_raises_memory_error():
    """A (2**40, 1, 4) view of one value takes no memory, but its copy would."""
    x = np.broadcast_to(np.zeros((), np.float32), (2 ** 40, 1, 4))
    w = np.ones((3, 4), np.float32)
    with pytest.raises(MemoryError):
        kernels.rnn_forward(x, np.zeros((1, 3), np.float32), w, np.ones((3, 3), np.float32))
    with pytest.raises(MemoryError):
        heads.dense_forward(x, w)


def test_release_memory_returns_the_cached_blocks():
    # forward's gates and backward's, each larger than the former 64 MiB cap: the cache
    # (512 MiB, or an eighth of the memory) keeps both
    if os.environ.get("RNNX_MEMORY_CACHE_MB") is not None or \
            os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") < 4 << 30:
        pytest.skip("needs the default cache limit and 4 GiB of memory")
    layer = rnnx.LSTM(8, 80, dtype=np.float64, seed=0)
    x = np.zeros((420, 64, 8))
    y, _, cache = layer.forward(x)
    layer.backward(np.ones_like(y), cache)
    del y, cache
    freed = rnnx.release_memory()
    gates = 420 * 64 * 4 * 80 * 8  # 68.8 MB: a block above the former 64 MiB cap
    assert gates > 64 << 20
    assert isinstance(freed, int) and freed >= 2 * gates  # forward's gates, backward's too
    assert rnnx.release_memory() == 0  # nothing is left to release
    y, _, cache = layer.forward(x)  # and the kernels still work
    assert np.isfinite(y).all()


@pytest.mark.parametrize("limit_mb,kept", [("0", False), ("200", True)])
def test_the_cache_limit_can_be_set(limit_mb, kept):
    code = (
        "import numpy as np, rnnx\n"
        "layer = rnnx.LSTM(8, 80, dtype=np.float64, seed=0)\n"
        "y, _, cache = layer.forward(np.zeros((100, 64, 8)))\n"  # gates: 16.4 MB
        "del y, cache\n"
        "print(rnnx.release_memory())\n")
    out = run_python(code, RNNX_MEMORY_CACHE_MB=limit_mb)
    assert out.returncode == 0, out.stderr
    freed = int(out.stdout.split()[-1])
    gates = 100 * 64 * 4 * 80 * 8
    assert (freed >= gates) == kept, freed
