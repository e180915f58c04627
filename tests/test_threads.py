"""Python threads: shared layers give the same results as serial calls; the GIL is free.

Eight threads call forward and backward on the same layer objects (and the kernels,
heads and course functions on shared weights) at once; every result equals, bit for bit,
the result of the same call made serially beforehand. A second test shows that the GIL
is released during a long kernel: a pure-Python thread keeps running while the call is
in progress (no gap as long as the call in the sampling thread's timeline).
"""

import threading
import time

import numpy as np

import rnnx
from rnnx import heads, kernels

THREADS = 8
CALLS = 12  # per thread and workload


def make_workloads():
    """name -> (function of an int seed returning a tuple of result arrays)."""
    T, B, D, H, V = 7, 5, 6, 16, 9
    layers = {
        "RNN": rnnx.RNN(D, H, num_layers=2, seed=1),
        "GRU": rnnx.GRU(D, H, bidirectional=True, seed=2, dtype=np.float64),
        "LSTM": rnnx.LSTM(D, H, num_layers=2, bidirectional=True, seed=3),
    }
    rng = np.random.default_rng(0)
    w_ih, w_hh = rng.standard_normal((4 * H, D)), rng.standard_normal((4 * H, H)) * 0.3
    emb, dense_w = rng.standard_normal((V, D)), rng.standard_normal((V, H))
    course_p = {"Waa": rng.standard_normal((H, H)) * 0.3, "Wax": rng.standard_normal((H, D)),
                "Wya": rng.standard_normal((V, H)), "ba": np.zeros((H, 1)),
                "by": np.zeros((V, 1))}

    def layer_run(layer):
        def run(seed):
            r = np.random.default_rng(seed)
            x = r.standard_normal((T, B, D)).astype(layer.dtype)
            lengths = r.integers(1, T + 1, B)
            y, state, cache = layer.forward(x, lengths=lengths)
            dx, dstate0, grads = layer.backward(np.ones_like(y), cache)
            return (y, dx, *grads.values())
        return run

    def kernel_run(seed):
        r = np.random.default_rng(seed)
        x, h0 = r.standard_normal((T, B, D)), r.standard_normal((B, H))
        h, c, gates = kernels.lstm_forward(x, h0, h0, w_ih, w_hh)
        return (h, *kernels.lstm_backward(h, x, h0, h0, h, c, gates, w_ih, w_hh))

    def heads_run(seed):
        r = np.random.default_rng(seed)
        ids = r.integers(0, V, (T, B))
        e = heads.embedding_forward(ids, emb)
        logits = heads.dense_forward(np.tanh(e @ np.ones((D, H))), dense_w)
        loss, probs = heads.softmax_cross_entropy(logits, ids)
        return (np.asarray(loss), probs, heads.softmax_cross_entropy_backward(probs, ids))

    def course_run(seed):
        r = np.random.default_rng(seed)
        x, a0 = r.standard_normal((D, B, T)), r.standard_normal((H, B))
        a, y, caches = rnnx.rnn_forward(x, a0, course_p)
        return (a, y, *rnnx.rnn_backward(a, caches).values())

    work = {name: layer_run(layer) for name, layer in layers.items()}
    work.update(kernels=kernel_run, heads=heads_run, course=course_run)
    return work


def test_threads_agree_with_serial_calls_bit_for_bit():
    work = make_workloads()
    names = sorted(work)
    jobs = [(name, 1000 * t + c) for t in range(THREADS) for c in range(CALLS) for name in names]
    serial = {job: work[job[0]](job[1]) for job in jobs}
    results, errors = {}, []
    start = threading.Barrier(THREADS)

    def worker(t):
        try:
            start.wait()
            mine = [job for job in jobs if job[1] // 1000 == t]
            for job in mine[::-1] if t % 2 else mine:  # threads interleave different calls
                results[job] = work[job[0]](job[1])
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(results) == len(jobs) == THREADS * CALLS * len(names)
    for job in jobs:
        for got, want in zip(results[job], serial[job], strict=True):
            np.testing.assert_array_equal(got, want, err_msg=str(job))


def gap_during(fn):
    """(longest gap in a pure-Python sampling thread's timeline while fn() ran, fn's time).

    The sampler runs only while it holds the GIL. If fn holds the GIL throughout, the
    sampler stops for fn's whole run (minus at most one switch interval); if fn releases
    it, the sampler's gaps are the OS scheduler's, far shorter.
    """
    window = {}
    ready = threading.Event()

    def call():
        ready.set()
        time.sleep(0.05)  # let the sampler get going
        window["start"] = time.perf_counter()
        fn()
        window["end"] = time.perf_counter()

    caller = threading.Thread(target=call)
    samples = [0.0]
    caller.start()
    ready.wait()
    while caller.is_alive():
        now = time.perf_counter()
        if now - samples[-1] > 2e-4:  # keep the list short; a gap is still seen
            samples.append(now)
    caller.join()
    t0, t1 = window["start"], window["end"]
    inside = [t0] + [s for s in samples if t0 < s < t1] + [t1]
    return max(b - a for a, b in zip(inside, inside[1:])), t1 - t0


def test_gil_is_released_during_a_long_kernel():
    rng = np.random.default_rng(0)
    T, B, D, H = 100, 32, 128, 128
    x, h0 = rng.standard_normal((T, B, D)), np.zeros((B, H))
    w_ih, w_hh = rng.standard_normal((4 * H, D)) * 0.1, rng.standard_normal((4 * H, H)) * 0.1
    gap, duration = gap_during(lambda: kernels.lstm_forward(x, h0, h0, w_ih, w_hh))
    assert duration > 0.02, "the call was too short to tell"
    assert gap < 0.5 * duration, (gap, duration)


def test_the_gil_check_sees_a_call_that_holds_the_gil():
    """Sorting a long list runs in C without releasing the GIL: one gap covers it."""
    values = np.random.default_rng(0).random(300_000).tolist()
    gap, duration = gap_during(lambda: sorted(values))
    assert duration > 0.02, "the call was too short to tell"
    assert gap > 0.5 * duration, (gap, duration)
