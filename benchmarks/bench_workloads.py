"""Time RNN, GRU and LSTM language-model steps in rnnx, its NumPy reference and PyTorch.

    python benchmarks/bench_workloads.py [--quick] [--workloads W_char,W_mid]
        [--cells lstm] [--dtypes float32] [--threads 1] [--modes train]
        [--impls rnnx,numpy,torch] [--budget S] [--max-call S]
        [--json PATH] [--markdown PATH]

The model of every workload, the same in the three implementations::

    x (T, B, n_x) one-hot floats, or ids (T, B) for "index input" workloads
      -> one recurrent layer (RNN tanh, GRU or LSTM; hidden H)      y (T, B, H)
      -> dense head on every step                                logits (T, B, n_y)
      -> softmax cross-entropy against random targets, summed    loss

* ``forward``: the lines above, loss included (PyTorch under ``torch.no_grad``).
* ``train``: forward, then backward through the loss, the head and the layer down to
  every parameter gradient (no optimizer update; PyTorch's grads are set to None
  before each step).
* rnnx: ``rnnx.RNN/GRU/LSTM`` + ``rnnx.heads`` (the head's four calls, or its fused
  one), and ``rnnx.Tagger`` on the same layer (the whole step in one C++ call); the
  fastest is kept and named in the notes (by calibration's warm calls, or where a call
  fills a timing block by itself by the best of 2 more calls of each variant, taking
  turns; with ``--quick`` by their first calls). Index input goes to the layer as ids
  where the layer takes integer input (a column gather), else as one-hot floats made
  inside the step; the JSON records which (``input_path``).
* NumPy: ``rnnx.reference.kernels`` + ``rnnx.reference.heads`` (one-hot input made
  inside the step). Skipped where one call would take longer than ``--max-call``.
* PyTorch (when importable): ``nn.RNN/GRU/LSTM`` + ``nn.Linear`` +
  ``F.cross_entropy(reduction="sum")`` + ``loss.backward()``. Index input: the faster of
  ``F.one_hot`` and an identity ``nn.Embedding`` inside the step (chosen as rnnx's
  variants are; the JSON records the choice).

All three start from the same parameters, inputs and targets; the first call of each
is compared (loss, the gradient of ``weight_hh_l0`` and of the head's weight, as
``|a - b| / |b|`` in the 2-norm against the NumPy reference, or rnnx where NumPy was
skipped; tolerance 1e-4 float32, 1e-9 float64). A mismatch is marked in the table and
makes the command exit with status 1 (after writing its results), ``--quick`` included.

FLOPs (for GFLOP/s and % of peak) count the matrix products only, 2*m*n*k each, with
``G`` = 1 (RNN), 3 (GRU), 4 (LSTM) gate blocks::

    forward = 2*T*B*(n_x*G*H  +  H*G*H  +  H*n_y)
                     input       recurrent  head      (input = 0 for index input)
    train   = 3 * forward - 2*T*B*n_x*G*H
              (backward: for each forward product one for its weight gradient and one
               for the gradient of its operand, but the input's: x is data, and no
               step needs dL/dx; PyTorch computes none for an x without requires_grad)

The count is the workload's, not the implementation's: one-hot input fed to a GEMM
still counts zero for an index-input workload, and the NumPy reference's dx (its
kernels return one) is not counted, so GFLOP/s ratios equal time ratios.
% of peak divides by the best large square matmul (N=1024; NumPy, PyTorch, or
``rnnx.heads.dense_forward``) measured in the same process with the same dtype and
thread count, before and after the workloads (the larger of the two is used).

Method: each thread count runs in its own child process whose environment sets
OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS and RNNX_NUM_THREADS, which also
calls ``rnnx.set_num_threads`` and ``torch.set_num_threads``. Within a configuration
(workload, cell, dtype, mode) each implementation is warmed up and calibrated to
blocks of about ``--block`` seconds, then the implementations take turns (rnnx, NumPy,
PyTorch, rnnx, ...) for as many rounds as ``--budget`` allows (``--min-rounds`` 3 to
``--max-rounds`` 11); a
configuration's time is the median over rounds of the mean per call in a block. With
more than one thread each block starts after a pause, so that the previous library's
spinning threads have gone idle: 0.1 s, and 0.25 s after NumPy's (OpenBLAS's threads
spin for 2^28 time-stamp ticks after a call, 0.128 s at this machine's 2.1 GHz; a W_mid
RNN training step at 2 threads measured 8-10% slower 0.1 s after a 2-thread NumPy
matmul, the same as without it from 0.15 s on). NumPy's OpenBLAS runs without the preset
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE (the script restarts itself without them).

Thread scaling (rnnx's 1-thread time over its time with more threads) is measured in the
same rounds: a child with more than one thread also times rnnx on one thread
(``rnnx.set_num_threads(1)`` around its blocks, "rnnx 1t" in the JSON), so that both
times see the machine in the same state; the scaling is the median over rounds of the
ratio of the two blocks, both of the variant chosen for the multi-thread time (one code
path). Measured across the two children instead (minutes apart) it swung from 0.95x to
2.1x between runs on this machine (its host has two speeds about 1.5x apart); that
ratio is kept in the JSON as ``thread_scaling_across``, and the scaling target falls
back to it where a row has no same-round measurement (JSON written before this method).
The first call on one thread must give rnnx's results bit for bit (checked). After each
one-thread block the thread count is restored and the pool's workers started by an
untimed call, so the next multi-thread block does not start them.

The run warns when the machine was busy: CPU use by other work before it, the load
average after it, the spread (max - min) / median of a configuration's blocks above
10%, and a GEMM peak that moved by more than 15% during the run.

The targets (TARGETS below) are checked at the end and printed as a second table.

Duration: a default run is estimated at about 20-25 minutes on the 2-core development
machine (GEMM peak ~85 GFLOP/s float32 per core), most of it W_big, where every call takes
seconds and a warm-up plus 3 rounds of each implementation is the floor; W_mid takes
about 3 minutes, the other workloads about 1 minute each. ``--workloads`` splits a run.
``--quick`` takes under a minute on a quiet machine.
"""

import os
import sys

import _common

if __name__ == "__main__":
    _common.reexec_without_slow_blas()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime  # noqa: E402
import functools  # noqa: E402
import gc  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections import namedtuple  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent

# ------------------------------------------------------------------------------------
# workloads, targets
# ------------------------------------------------------------------------------------

Workload = namedtuple("Workload", "n_x hidden n_y batch T index")

WORKLOADS = {
    "W_tiny": Workload(3, 5, 2, 10, 4, False),
    "W_char": Workload(65, 256, 65, 32, 100, True),
    "W_mid": Workload(256, 512, 256, 64, 100, False),
    "W_big": Workload(1024, 1024, 1024, 128, 50, False),
    "W_seq1": Workload(65, 512, 65, 1, 1000, True),
}
# --quick: W_tiny and small variants of the index-input workloads (seconds, not minutes)
QUICK_WORKLOADS = {
    "W_tiny": WORKLOADS["W_tiny"],
    "W_char_small": Workload(65, 32, 65, 4, 12, True),
    "W_seq1_small": Workload(65, 48, 65, 1, 40, True),
}
CELLS = ("rnn", "gru", "lstm")
GATES = {"rnn": 1, "gru": 3, "lstm": 4}
DTYPES = ("float32", "float64")
MODES = ("forward", "train")
IMPLS = ("rnnx", "numpy", "torch")
ONE_THREAD = "rnnx 1t"  # rnnx timed on one thread in a multi-thread child
VARIANT_ROUNDS = 2  # warm calls per variant that choose among variants of long calls
IMPL_NAMES = {"rnnx": "rnnx", "numpy": "NumPy", "torch": "PyTorch",
              ONE_THREAD: "rnnx on 1 thread"}
RTOL = {"float32": 1e-4, "float64": 1e-9}
# Seconds a library's worker threads go on spinning after a multi-threaded call, where
# that is longer than the pause (see the module docstring): OpenBLAS's 2^28 time-stamp
# ticks, with room for a time-stamp counter down to about 1.1 GHz.
SPIN_S = {"numpy": 0.25}

ALL = None  # a target field that matches anything

# The goals of issue 4. Each entry matches result rows (workload x cell x dtype x mode x
# threads); a field left out means float32, 1 thread, both modes, every cell. metric:
#   vs_torch        PyTorch time / rnnx time (rnnx's throughput relative to PyTorch's)
#   vs_numpy        NumPy reference time / rnnx time
#   pct_peak        rnnx GFLOP/s as % of the GEMM peak (same dtype and threads)
#   thread_scaling  rnnx time with 1 thread / rnnx time with `threads` threads (both in the
#                   same rounds of the multi-thread child, see the module docstring)
TARGETS = [
    dict(workloads=["W_tiny"], modes=["train"], metric="vs_torch", min=20),
    dict(workloads=["W_char"], cells=["lstm", "gru"], modes=["train"], metric="vs_torch",
         min=1.5),
    dict(workloads=["W_mid"], cells=["rnn", "gru"], modes=["train"], metric="vs_torch", min=1.2),
    dict(workloads=["W_mid"], cells=["lstm"], modes=["train"], metric="vs_torch", min=1.1),
    dict(workloads=["W_big"], metric="vs_torch", min=0.95),
    dict(workloads=["W_big"], metric="pct_peak", min=85),
    dict(workloads=["W_seq1"], cells=["lstm"], modes=["forward"], metric="vs_torch", min=1.3),
    dict(workloads=["W_seq1"], cells=["lstm"], modes=["forward"], threads=[2],
         metric="vs_torch", min=1.6),
    dict(workloads=["W_char", "W_mid"], dtypes=["float64"], metric="vs_torch", min=1.3),
    dict(workloads=["W_mid", "W_big"], threads=[2], metric="thread_scaling", min=1.7),
    dict(workloads=["W_mid", "W_big"], metric="vs_numpy", min=1.3),
    dict(workloads=["W_char"], metric="vs_numpy", min=2),
    dict(workloads=["W_tiny"], metric="vs_numpy", min=20),
    dict(workloads=["W_seq1"], modes=["train"], metric="vs_numpy", min=20),
]
TARGET_DEFAULTS = dict(cells=ALL, dtypes=["float32"], modes=ALL, threads=[1])
METRIC_TEXT = {
    "vs_torch": "x PyTorch", "vs_numpy": "x NumPy", "pct_peak": "% of GEMM peak",
    "thread_scaling": "x the 1-thread speed",
}


def flops(w, cell, mode):
    """GEMM FLOPs of one step of `mode` (see the module docstring)."""
    G, rows = GATES[cell], w.T * w.batch
    proj = 0 if w.index else 2 * rows * w.n_x * G * w.hidden
    forward = proj + 2 * rows * w.hidden * G * w.hidden + 2 * rows * w.hidden * w.n_y
    return forward if mode == "forward" else 3 * forward - proj  # no dL/dx: x is data


# ------------------------------------------------------------------------------------
# the three implementations (child process)
# ------------------------------------------------------------------------------------


class Problem:
    """Parameters, inputs and targets of one configuration, shared by all implementations."""

    def __init__(self, w, cell, dtype, seed=0):
        import numpy as np
        import rnnx

        rng = np.random.default_rng(seed)
        self.w, self.cell, self.dtype = w, cell, np.dtype(dtype)
        self.ids = rng.integers(0, w.n_x, size=(w.T, w.batch))
        self.targets = rng.integers(0, w.n_y, size=(w.T, w.batch))
        self.eye = np.eye(w.n_x, dtype=self.dtype)
        self.x = None if w.index else self.eye[self.ids]  # the data: one-hot rows
        make = {"rnn": lambda: rnnx.RNN(w.n_x, w.hidden, nonlinearity="tanh", dtype=dtype,
                                        seed=seed),
                "gru": lambda: rnnx.GRU(w.n_x, w.hidden, dtype=dtype, seed=seed),
                "lstm": lambda: rnnx.LSTM(w.n_x, w.hidden, dtype=dtype, seed=seed)}
        self.layer = make[cell]()
        k = 1 / math.sqrt(w.hidden)
        self.head_w = rng.uniform(-k, k, (w.n_y, w.hidden)).astype(self.dtype)
        self.head_b = rng.uniform(-k, k, w.n_y).astype(self.dtype)
        self.params = {key: v.copy() for key, v in self.layer.state_dict().items()}

    def onehot(self):
        """One-hot float input (T, B, n_x) from the ids (inside the step for index input)."""
        return self.eye[self.ids]


# Each builder returns {variant: fn}; fn() runs one step and returns
# (loss, dL/dweight_hh_l0, dL/dhead_weight), the gradients None in forward mode.
# Where there are several variants (PyTorch's ways of taking ids) the fastest is kept.


def rnnx_variants(p, mode):
    import rnnx
    from rnnx import heads

    layer, W, b, targets = p.layer, p.head_w, p.head_b, p.targets

    def step(get_x, mode):
        def forward():
            y, _, cache = layer.forward(get_x())
            loss, probs = heads.softmax_cross_entropy(heads.dense_forward(y, W, b), targets)
            return loss, y, cache, probs

        def train():
            loss, y, cache, probs = forward()
            dlogits = heads.softmax_cross_entropy_backward(probs, targets)
            dy, dW, _ = heads.dense_backward(dlogits, y, W)
            _, _, grads = layer.backward(dy, cache)
            return loss, grads["weight_hh_l0"], dW

        return train if mode == "train" else (lambda: (forward()[0], None, None))

    def fused_step(get_x):  # train: the head's forward and backward in one call
        def train():
            y, _, cache = layer.forward(get_x())
            loss, dy, dW, _ = heads.dense_softmax_cross_entropy(y, W, b, targets)
            _, _, grads = layer.backward(dy, cache)
            return loss, grads["weight_hh_l0"], dW

        return train

    def tagger_step(get_x):  # the whole step in one call: rnnx.Tagger on the same layer
        tagger = rnnx.Tagger(layer, p.w.n_y)
        tagger.head_weight[...], tagger.head_bias[...] = W, b  # the same values, in its own arrays
        if mode != "train":
            return lambda: (tagger.loss(get_x(), targets), None, None)

        def train():
            loss, grads = tagger.loss_and_grads(get_x(), targets)
            return loss, grads["rnn.weight_hh_l0"], grads["head.weight"]

        return train

    def variants(name, get_x):
        out = {name: step(get_x, mode)}
        if mode == "train" and hasattr(heads, "dense_softmax_cross_entropy"):
            out[f"{name}, fused head"] = fused_step(get_x)
        if hasattr(rnnx, "Tagger"):
            out[f"{name}, Tagger"] = tagger_step(get_x)
        return out

    if not p.w.index:
        return variants("one-hot (data)", lambda: p.x)
    try:  # does the layer take integer ids (a column gather)? One training step tells.
        step(lambda: p.ids, "train")()
    except (TypeError, ValueError):
        return variants("one-hot (in step)", p.onehot)
    return variants("ids", lambda: p.ids)


def numpy_variants(p, mode):
    import numpy as np
    from rnnx.reference import heads as rh
    from rnnx.reference import kernels as rk

    w, cell, targets, W, b = p.w, p.cell, p.targets, p.head_w, p.head_b
    w_ih, w_hh = p.params["weight_ih_l0"], p.params["weight_hh_l0"]
    b_ih, b_hh = p.params["bias_ih_l0"], p.params["bias_hh_l0"]
    h0 = np.zeros((w.batch, w.hidden), dtype=p.dtype)
    c0 = np.zeros_like(h0)
    get_x = p.onehot if w.index else (lambda: p.x)

    def forward():
        x = get_x()
        if cell == "rnn":
            h = rk.rnn_forward(x, h0, w_ih, w_hh, b_ih + b_hh)
            saved = (x, h0, h)
        elif cell == "gru":
            h, gates, aux = rk.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)
            saved = (x, h0, h, gates, aux)
        else:
            h, c, gates = rk.lstm_forward(x, h0, c0, w_ih, w_hh, b_ih + b_hh)
            saved = (x, h0, c0, h, c, gates)
        loss, probs = rh.softmax_cross_entropy(rh.dense_forward(h, W, b), targets)
        return loss, h, saved, probs

    backward = {"rnn": rk.rnn_backward, "gru": rk.gru_backward, "lstm": rk.lstm_backward}[cell]
    at_dw_hh = 4 if cell == "lstm" else 3  # (dx, dh0, [dc0,] dw_ih, dw_hh, ...)

    def train():
        loss, h, saved, probs = forward()
        dlogits = rh.softmax_cross_entropy_backward(probs, targets)
        dh, dW, _ = rh.dense_backward(dlogits, h, W)
        return loss, backward(dh, *saved, w_ih, w_hh)[at_dw_hh], dW

    path = "one-hot (in step)" if w.index else "one-hot (data)"
    return {path: train if mode == "train" else (lambda: (forward()[0], None, None))}


def torch_variants(p, mode, torch):
    import torch.nn.functional as F

    w = p.w
    tdt = {"float32": torch.float32, "float64": torch.float64}[p.dtype.name]
    make = {"rnn": lambda: torch.nn.RNN(w.n_x, w.hidden, nonlinearity="tanh", dtype=tdt),
            "gru": lambda: torch.nn.GRU(w.n_x, w.hidden, dtype=tdt),
            "lstm": lambda: torch.nn.LSTM(w.n_x, w.hidden, dtype=tdt)}
    rnn = make[p.cell]()
    rnn.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in p.params.items()})
    lin = torch.nn.Linear(w.hidden, w.n_y, dtype=tdt)
    with torch.no_grad():
        lin.weight.copy_(torch.from_numpy(p.head_w))
        lin.bias.copy_(torch.from_numpy(p.head_b))
    params = list(rnn.parameters()) + list(lin.parameters())
    targets = torch.from_numpy(p.targets.reshape(-1))

    def step(get_x):
        def loss_of():
            out, _ = rnn(get_x())
            return F.cross_entropy(lin(out).reshape(-1, w.n_y), targets, reduction="sum")

        def train():
            for q in params:
                q.grad = None
            loss = loss_of()
            loss.backward()
            return loss, rnn.weight_hh_l0.grad, lin.weight.grad

        def forward():
            with torch.no_grad():
                return loss_of(), None, None

        return train if mode == "train" else forward

    if not w.index:
        x = torch.from_numpy(p.x)
        return {"one-hot (data)": step(lambda: x)}
    ids = torch.from_numpy(p.ids)
    emb = torch.nn.Embedding(w.n_x, w.n_x, dtype=tdt)  # the identity: row v is onehot(v)
    with torch.no_grad():
        emb.weight.copy_(torch.eye(w.n_x, dtype=tdt))
    emb.weight.requires_grad_(False)
    return {"F.one_hot": step(lambda: F.one_hot(ids, w.n_x).to(tdt)),
            "nn.Embedding": step(lambda: emb(ids))}


# ------------------------------------------------------------------------------------
# timing and checking (child process)
# ------------------------------------------------------------------------------------


def as_array(v):
    import numpy as np
    if v is None:
        return None
    if hasattr(v, "detach"):
        v = v.detach().cpu().numpy()
    return np.asarray(v, dtype=np.float64)


def rel_err(out, ref):
    """Largest ``|a - b| / |b|`` (2-norm) over the loss and the gradients both have."""
    import numpy as np
    worst = 0.0
    for a, b in zip(out, ref):
        a, b = as_array(a), as_array(b)
        if a is None or b is None:
            continue
        scale = max(float(np.linalg.norm(b)), np.finfo(np.float64).tiny)
        worst = max(worst, float(np.linalg.norm(a - b)) / scale)
    return worst


def wait_after(prev, pause):
    """The pause before a block that follows one of `prev` (see SPIN_S); 0 if `pause` is."""
    return max(pause, SPIN_S.get(prev, 0.0)) if pause else 0.0


def time_config(builders, opts, pause, flop, peak, scopes=None, same_variant=None):
    """Warm up, calibrate and time the implementations in turns; see the module docstring.

    builders: {impl: callable returning {variant: fn}}; flop: FLOPs per call; peak: the
    GEMM peak in FLOP/s (for skipping a NumPy call predicted to take too long); scopes:
    {impl: context manager factory} entered around an implementation's calibration and
    each of its blocks, outside the timed calls (e.g. one thread for ONE_THREAD);
    same_variant: {impl: other}: impl runs only the variant chosen for other (built
    before it), e.g. ONE_THREAD the one of rnnx, so that a scaling compares one code path.
    Returns ({impl: info}, {impl: first output}).
    """
    scopes, same_variant = scopes or {}, same_variant or {}
    infos, outs, live = {}, {}, {}
    for impl, build in builders.items():
        scope = scopes.get(impl, contextlib.nullcontext)
        info = infos[impl] = {"skipped": None}
        if impl == "numpy" and peak and flop / peak > opts.max_call:
            info["skipped"] = (f"predicted {flop / peak:.0f} s a call (FLOPs / GEMM peak) > "
                               f"--max-call {opts.max_call:g} s")
            continue
        tried = {}
        try:  # a failing implementation is reported (and fails the run), the rest go on
            variants = build()
            chosen = (infos.get(same_variant.get(impl)) or {}).get("input_path")
            if chosen is not None:
                if chosen not in variants:
                    raise KeyError(f"{impl} has no variant {chosen!r} to match "
                                   f"{same_variant[impl]}'s")
                variants = {chosen: variants[chosen]}
            for name, fn in variants.items():
                with scope():
                    t = time.perf_counter()
                    out = fn()
                    first = time.perf_counter() - t
                    if first > opts.max_call:
                        info["skipped"] = (f"one call took {first:.0f} s > --max-call "
                                           f"{opts.max_call:g} s")
                        break
                    if first < opts.block and not opts.quick:
                        n, pc = _common.calibrate(fn, opts.block)
                    else:
                        n, pc = 1, first  # for now: the first call, a cold one
                tried[name] = (pc, n, fn, out)
            # A variant whose call fills a block by itself (one call per block) was timed
            # by its first call, its warm-up (fresh memory, first touches), which may be
            # well off its steady time. Then all variants take turns for VARIANT_ROUNDS
            # more calls each, and the fastest call of each counts (W_mid's GRU training
            # step: a cold first call picked the heads' variant over the Tagger, 10%
            # slower on warm calls). Not with --quick (single calls throughout).
            if len(tried) > 1 and not opts.quick and not info["skipped"] \
                    and any(v[1] == 1 for v in tried.values()):
                warm = {k: [] for k in tried}
                for _ in range(VARIANT_ROUNDS):
                    for k in tried:
                        with scope():
                            warm[k].append(_common.per_call(tried[k][2], 1, pause))
                for k, times in warm.items():
                    tried[k] = (min(times),) + tried[k][1:]
        except Exception as e:  # noqa: BLE001 - any failure is the result to report
            info["skipped"] = info["error"] = f"ERROR {type(e).__name__}: {e}"
            traceback.print_exc()
        if info["skipped"]:
            continue
        best = min(tried, key=lambda k: tried[k][0])
        pc, n, fn, outs[impl] = tried[best]
        info.update(input_path=best, calls_per_sample=n, samples_s=[])
        if len(tried) > 1:
            info["variants_s"] = {k: v[0] for k, v in tried.items()}
        live[impl] = (fn, n, pc)
    if live:
        order = list(live)
        before = {impl: order[i - 1] for i, impl in enumerate(order)}  # in rotation
        round_s = sum(n * pc + wait_after(before[impl], pause)
                      for impl, (_, n, pc) in live.items())
        rounds = max(opts.min_rounds, min(opts.max_rounds, int(opts.budget / round_s)))
        for _ in range(rounds):  # interleaved: each sees the machine as the others do
            for impl, (fn, n, _) in live.items():
                with scopes.get(impl, contextlib.nullcontext)():
                    infos[impl]["samples_s"].append(
                        _common.per_call(fn, n, wait_after(before[impl], pause)))
    for impl, info in infos.items():
        if info["skipped"]:
            continue
        med = statistics.median(info["samples_s"])
        info["median_s"] = med
        info["spread"] = (max(info["samples_s"]) - min(info["samples_s"])) / med
        info["gflops"] = flop / med / 1e9
        info["pct_peak"] = 100 * flop / med / peak if peak else None
    return infos, outs


def check_outputs(outs, dtype):
    """Agreement of the first calls: rnnx and PyTorch against NumPy (else against rnnx)."""
    truth = "numpy" if "numpy" in outs else "rnnx" if "rnnx" in outs else None
    res = {"against": truth, "rtol": RTOL[dtype], "errors": {}, "ok": True}
    for impl in ("rnnx", "torch"):
        if truth and impl != truth and impl in outs:
            e = rel_err(outs[impl], outs[truth])
            res["errors"][impl] = e
            res["ok"] = res["ok"] and e <= RTOL[dtype]
    if ONE_THREAD in outs and "rnnx" in outs:  # rnnx's results whatever the thread count
        e = rel_err(outs[ONE_THREAD], outs["rnnx"])
        res["errors"][ONE_THREAD] = e
        res["ok"] = res["ok"] and e == 0.0
    return res


def gemm_peaks(dtypes, torch, n, reps, pause):
    """{dtype: {"gflops": best, "by": library, "all": {library: GFLOP/s}}}: n x n matmul."""
    import numpy as np
    import rnnx

    rng = np.random.default_rng(1)
    peaks = {}
    for dt in dtypes:
        a = rng.standard_normal((n, n)).astype(dt)
        b = rng.standard_normal((n, n)).astype(dt)
        cands = {"numpy": lambda: a @ b, "rnnx": lambda: rnnx.heads.dense_forward(a, b)}
        if torch is not None:
            ta, tb = torch.from_numpy(a), torch.from_numpy(b)
            cands["torch"] = lambda: torch.mm(ta, tb)
        by = {}
        prev = "torch"
        for name, fn in cands.items():
            time.sleep(wait_after(prev, pause))
            fn()
            best = min(_common.per_call(fn, 1, wait_after(name, pause)) for _ in range(reps))
            by[name] = 2 * n ** 3 / best / 1e9
            prev = name
        top = max(by, key=by.get)
        peaks[dt] = {"gflops": by[top], "by": top, "all": by}
    return peaks


def fmt_ms(seconds):
    if seconds is None:
        return "-"
    ms = seconds * 1e3
    for limit, digits in ((100, 0), (10, 1), (1, 2), (0.1, 3)):
        if ms >= limit:
            return f"{ms:.{digits}f}"
    return f"{ms:.4f}"


def paired_scaling(infos):
    """Median over rounds of rnnx's one-thread block time over its block time (the same
    round), or None where either was not timed."""
    one, many = infos.get(ONE_THREAD) or {}, infos.get("rnnx") or {}
    if one.get("skipped") or many.get("skipped") or not one.get("samples_s") \
            or not many.get("samples_s"):
        return None
    return statistics.median(a / b for a, b in zip(one["samples_s"], many["samples_s"]))


def child_main(args, opts, threads):
    """Run every selected configuration with `threads` threads; write JSON to args.child_out."""
    import numpy as np
    import rnnx

    rnnx.set_num_threads(threads)
    torch = None
    torch_missing = "PyTorch not selected"
    if "torch" in opts.impls:
        try:
            import torch
            torch.set_num_threads(threads)
        except ImportError as e:
            torch, torch_missing = None, f"PyTorch not importable ({e})"
    pause = opts.pause if threads > 1 else 0.0

    warm = np.ones((512, 64), dtype=np.float32)  # a product big enough to run in parallel

    @contextlib.contextmanager
    def one_thread():
        rnnx.set_num_threads(1)
        try:
            yield
        finally:
            rnnx.set_num_threads(threads)  # stops the workers; start them, untimed
            rnnx.heads.dense_forward(warm, warm)
    show = getattr(rnnx, "show_config", None)
    meta = {
        "threads": threads,
        "rnnx_threads": rnnx.get_num_threads(),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "torch": torch.__version__ if torch is not None else None,
        "torch_missing": None if torch is not None else torch_missing,
        "numpy": np.__version__,
        "env": {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                               "MKL_NUM_THREADS", "RNNX_NUM_THREADS")
                + _common.SLOW_BLAS},
        "config": show(quiet=True) if show else {"isa": rnnx.isa, "version": rnnx.__version__},
        "loadavg_start": _common.loadavg(),
    }
    state = {"meta": meta, "peaks": {}, "results": []}

    def save():
        tmp = args.child_out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, args.child_out)

    t_start = time.perf_counter()
    state["peaks"]["before"] = gemm_peaks(opts.dtypes, torch, opts.peak_n, opts.peak_reps, pause)
    save()
    for wname in opts.workloads:
        w = opts.table[wname]
        for cell in opts.cells:
            for dtype in opts.dtypes:
                for mode in opts.modes:
                    p = Problem(w, cell, dtype)
                    builders = {}
                    if "rnnx" in opts.impls:
                        builders["rnnx"] = functools.partial(rnnx_variants, p, mode)
                    if "numpy" in opts.impls:
                        builders["numpy"] = functools.partial(numpy_variants, p, mode)
                    if torch is not None:
                        builders["torch"] = functools.partial(torch_variants, p, mode, torch)
                    if threads > 1 and "rnnx" in opts.impls:  # scaling, in the same rounds
                        builders[ONE_THREAD] = builders["rnnx"]
                    flop = flops(w, cell, mode)
                    peak = state["peaks"]["before"][dtype]["gflops"] * 1e9
                    infos, outs = time_config(builders, opts, pause, flop, peak,
                                              {ONE_THREAD: one_thread}, {ONE_THREAD: "rnnx"})
                    if "torch" in opts.impls and torch is None:
                        infos["torch"] = {"skipped": torch_missing}
                    row = {"workload": wname, "cell": cell, "dtype": dtype, "mode": mode,
                           "threads": threads, "sizes": w._asdict(), "flops": flop,
                           "impls": infos, "check": check_outputs(outs, dtype)}
                    scaling = paired_scaling(infos)
                    if scaling is not None:
                        row["thread_scaling"] = scaling
                    state["results"].append(row)
                    save()
                    print(progress_line(row), flush=True)
                    del p, builders, outs
                    gc.collect()
    state["peaks"]["after"] = gemm_peaks(opts.dtypes, torch, opts.peak_n, opts.peak_reps, pause)
    meta["loadavg_end"] = _common.loadavg()
    meta["seconds"] = time.perf_counter() - t_start
    save()


def progress_line(row):
    parts = []
    for impl in IMPLS:
        info = row["impls"].get(impl)
        if info is None:
            continue
        if info["skipped"]:
            parts.append(f"{IMPL_NAMES[impl]} skipped")
        else:
            parts.append(f"{IMPL_NAMES[impl]} {fmt_ms(info['median_s'])} ms")
    chk = row["check"]
    flag = "ok" if chk["ok"] else "MISMATCH " + ", ".join(
        f"{k} {v:.1e}" for k, v in chk["errors"].items())
    return (f"  [{row['threads']}t] {row['workload']} {row['cell']} {row['dtype']} "
            f"{row['mode']}: " + " | ".join(parts) + f"  ({flag})")


# ------------------------------------------------------------------------------------
# ratios, targets, tables (parent process)
# ------------------------------------------------------------------------------------


def median_of(row, impl):
    info = row["impls"].get(impl)
    return None if not info or info["skipped"] else info["median_s"]


def ratio(row, slow_impl):
    """`slow_impl`'s time / rnnx's time (rnnx's throughput relative to it), or None."""
    r, s = median_of(row, "rnnx"), median_of(row, slow_impl)
    return None if r is None or s is None else s / r


def _key(row, threads=None):
    return (row["workload"], row["cell"], row["dtype"], row["mode"],
            row["threads"] if threads is None else threads)


def target_value(t, row, by_key):
    """(value, why-not) of target `t` on result `row`."""
    m = t["metric"]
    if m in ("vs_torch", "vs_numpy"):
        other = "torch" if m == "vs_torch" else "numpy"
        v = ratio(row, other)
        if v is None:
            for impl in ("rnnx", other):
                if median_of(row, impl) is None:
                    info = row["impls"].get(impl) or {}
                    return None, f"{IMPL_NAMES[impl]}: {info.get('skipped') or 'not run'}"
        return v, None
    if m == "pct_peak":
        info = row["impls"].get("rnnx") or {}
        v = info.get("pct_peak")
        return (v, None) if v is not None else (None, "rnnx not timed")
    if m == "thread_scaling":
        if row.get("thread_scaling") is not None:  # measured in the same rounds
            return row["thread_scaling"], None
        across = scaling_across(row, by_key)
        if across is None:
            return None, "needs rnnx timed with 1 thread too"
        return across, None
    raise ValueError(f"unknown metric {m!r}")


def scaling_across(row, by_key):
    """rnnx's median time in the 1-thread child over its time in this row's, or None."""
    one = by_key.get(_key(row, threads=1))
    a, b = (median_of(one, "rnnx") if one else None), median_of(row, "rnnx")
    return None if a is None or b is None else a / b


def evaluate_targets(results):
    by_key = {_key(r): r for r in results}
    rows = []
    for i, t in enumerate(TARGETS):
        t = {**TARGET_DEFAULTS, **t}
        for r in results:
            if r["workload"] not in t["workloads"]:
                continue
            if any(t[f] is not ALL and r[k] not in t[f] for f, k in
                   (("cells", "cell"), ("dtypes", "dtype"), ("modes", "mode"),
                    ("threads", "threads"))):
                continue
            value, why = target_value(t, r, by_key)
            if value is None:
                status = f"n/a ({why})"
            elif value >= t["min"]:
                status = f"met (+{100 * (value / t['min'] - 1):.0f}%)"
            else:
                status = f"MISSED by {100 * (1 - value / t['min']):.0f}%"
            rows.append({"target": i, "metric": t["metric"], "min": t["min"],
                         "workload": r["workload"], "cell": r["cell"], "dtype": r["dtype"],
                         "mode": r["mode"], "threads": r["threads"], "value": value,
                         "met": None if value is None else value >= t["min"],
                         "status": status})
    return rows


def fmt_value(metric, v):
    if v is None:
        return "-"
    return f"{v:.0f}%" if metric == "pct_peak" else f"{v:.2f}x"


def results_table(results):
    lines = [
        "| workload | cell | dtype | mode | threads | rnnx ms | rnnx GFLOP/s | rnnx % peak "
        "| PyTorch ms | PyTorch % peak | NumPy ms | rnnx/PyTorch | rnnx/NumPy | notes |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        ri, ti = r["impls"].get("rnnx") or {}, r["impls"].get("torch") or {}
        notes = []
        if r["sizes"]["index"]:
            notes.append(f"rnnx input: {ri.get('input_path', '-')}")
            if ti.get("input_path"):
                notes.append(f"PyTorch input: {ti['input_path']}")
        for impl in IMPLS + (ONE_THREAD,):
            info = r["impls"].get(impl)
            if info and info["skipped"] and not (impl == "torch" and "not selected" in
                                                 info["skipped"]):
                notes.append(f"{IMPL_NAMES[impl]} skipped: {info['skipped']}")
            elif info and info.get("spread", 0) > 0.10:
                notes.append(f"{IMPL_NAMES[impl]} spread {100 * info['spread']:.0f}%")
        if r["threads"] > 1 and r.get("thread_scaling") is not None:
            across = r.get("thread_scaling_across")
            notes.append(f"rnnx {r['threads']} threads / 1 thread: "
                         f"{r['thread_scaling']:.2f}x in the same rounds"
                         + (f", {across:.2f}x across the children" if across else ""))
        if not r["check"]["ok"]:
            notes.append("MISMATCH " + ", ".join(f"{IMPL_NAMES[k]} {v:.1e}" for k, v in
                                                 r["check"]["errors"].items()))
        vt, vn = ratio(r, "torch"), ratio(r, "numpy")
        pct = ri.get("pct_peak")
        tpct = ti.get("pct_peak")
        lines.append(
            f"| {r['workload']} | {r['cell']} | {r['dtype']} | {r['mode']} | {r['threads']} "
            f"| {fmt_ms(ri.get('median_s'))} "
            f"| {'-' if ri.get('gflops') is None else format(ri['gflops'], '.2f')} "
            f"| {'-' if pct is None else format(pct, '.1f')} "
            f"| {fmt_ms(median_of(r, 'torch'))} "
            f"| {'-' if tpct is None else format(tpct, '.1f')} "
            f"| {fmt_ms(median_of(r, 'numpy'))} "
            f"| {fmt_value('x', vt)} | {fmt_value('x', vn)} | {'; '.join(notes)} |")
    return lines


def targets_table(rows):
    if not rows:
        return ["(no target covers the configurations run)"]
    lines = ["| needed | configuration | value | status |", "|---|---|---:|---|"]
    for t in rows:
        need = (f">= {t['min']:g}% of GEMM peak" if t["metric"] == "pct_peak"
                else f">= {t['min']:g}{METRIC_TEXT[t['metric']]}")
        conf = f"{t['workload']} {t['cell']} {t['dtype']} {t['mode']} {t['threads']}t"
        lines.append(f"| {need} | {conf} | {fmt_value(t['metric'], t['value'])} "
                     f"| {t['status']} |")
    met = sum(t["met"] is True for t in rows)
    missed = sum(t["met"] is False for t in rows)
    lines += ["", f"targets: {met} met, {missed} missed, {len(rows) - met - missed} not "
              "measurable, of the configurations run"]
    return lines


def peaks_table(children):
    lines = ["| threads | float32 GFLOP/s | float64 GFLOP/s |", "|---:|---|---|"]
    for n, child in children.items():
        cells = []
        for dt in ("float32", "float64"):
            before = child["peaks"].get("before", {}).get(dt)
            after = child["peaks"].get("after", {}).get(dt)
            if before is None:
                cells.append("-")
                continue
            text = f"{before['gflops']:.1f} ({before['by']})"
            if after is not None:
                text += f", after the run {after['gflops']:.1f}"
            cells.append(text)
        lines.append(f"| {n} | {cells[0]} | {cells[1]} |")
    return lines


def used_peaks(child):
    """{dtype: GFLOP/s}: the larger of the before and after peaks."""
    out = {}
    for when in ("before", "after"):
        for dt, p in child["peaks"].get(when, {}).items():
            out[dt] = max(out.get(dt, 0.0), p["gflops"])
    return out


def rescale_to_peak(children):
    """Recompute % of peak with the larger of the before/after peaks of each child."""
    for child in children.values():
        peak = used_peaks(child)
        for r in child["results"]:
            for impl, info in r["impls"].items():
                if impl == ONE_THREAD:  # one thread: no peak of this child applies
                    info["pct_peak"] = None
                elif info.get("gflops") is not None and peak.get(r["dtype"]):
                    info["pct_peak"] = 100 * info["gflops"] / peak[r["dtype"]]


def busy_warnings(parent, children, results):
    out = []
    busy = parent.get("busy_before")
    if busy is not None and busy > 0.15:
        out.append(f"the machine was busy before the run: {busy:.0%} of CPU time went to "
                   "other work")
    la = parent.get("loadavg_after")
    most = max([int(n) for n in children] or [1])
    if la and la[0] > most + 0.5:
        out.append(f"load average after the run {la[0]:.2f} exceeds the {most} threads this "
                   "run used: other work was running")
    for n, child in children.items():
        for dt, after in child["peaks"].get("after", {}).items():
            before = child["peaks"].get("before", {}).get(dt)
            if before and abs(after["gflops"] / before["gflops"] - 1) > 0.15:
                out.append(f"{n} thread(s) {dt}: the GEMM peak moved from "
                           f"{before['gflops']:.1f} to {after['gflops']:.1f} GFLOP/s "
                           "during the run")
    noisy = [r for r in results if any(i.get("spread", 0) > 0.10 for i in r["impls"].values())]
    if results and len(noisy) > 0.25 * len(results):
        out.append(f"{len(noisy)} of {len(results)} configurations have a spread of their "
                   "rounds above 10%")
    return out


def header(parent, children):
    first = next(iter(children.values()), None)
    lines = []
    if first:
        m = first["meta"]
        cfg = m["config"].get("rnnx", m["config"])
        blas = (m["config"].get("numpy", {}).get("blas") or {})
        lines.append(f"# rnnx {cfg.get('version')} ({cfg.get('isa')} build) vs rnnx.reference "
                     f"(NumPy {m['numpy']}, {blas.get('name', 'BLAS ?')} "
                     f"{blas.get('version', '')}) vs "
                     + (f"PyTorch {m['torch']}" if m["torch"] else m["torch_missing"]))
    lines.append(f"# machine: {parent['cpu']}, {parent['cpus']} CPUs, Python "
                 f"{parent['python']}; OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset for this run")
    lines.append(f"# {parent['method']}")
    if parent["quick"]:
        lines.append("# --quick: single calls on small sizes, a smoke run of the script and "
                     "an agreement check; its times are not measurements")
    return lines


# ------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------


def _list(value, choices, flag):
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise argparse.ArgumentTypeError(f"{flag} needs at least one value")
    bad = [v for v in items if v not in choices]
    if bad:
        raise argparse.ArgumentTypeError(f"{flag}: unknown {', '.join(map(repr, bad))} "
                                         f"(choose from {', '.join(choices)})")
    return list(dict.fromkeys(items))


def _threads(value):
    out = []
    for v in value.split(","):
        try:
            n = int(v)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{v!r} is not an integer") from None
        if n < 1:
            raise argparse.ArgumentTypeError(f"{n} must be >= 1")
        out.append(n)
    return list(dict.fromkeys(out))


def _positive(flag):
    def parse(value):
        try:
            x = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{value!r} is not a number") from None
        if not x > 0 or not math.isfinite(x):
            raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
        return x
    return parse


def parse_args(argv=None):
    ap = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        epilog="The model, FLOP count and method are described in the module docstring.")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: W_tiny and small variants, 3 rounds of single calls; "
                         "exits 1 if rnnx, NumPy and PyTorch disagree")
    ap.add_argument("--workloads", help="comma list of " + ", ".join(WORKLOADS)
                    + " (with --quick: " + ", ".join(QUICK_WORKLOADS) + ")")
    ap.add_argument("--cells", default=",".join(CELLS), help="comma list of rnn, gru, lstm")
    ap.add_argument("--dtypes", default=",".join(DTYPES), help="float32, float64")
    ap.add_argument("--modes", default=",".join(MODES), help="forward, train")
    ap.add_argument("--threads", default="1,2", type=_threads, help="comma list, e.g. 1,2")
    ap.add_argument("--impls", default=",".join(IMPLS), help="rnnx, numpy, torch")
    ap.add_argument("--budget", type=_positive("--budget"), default=None,
                    help="seconds of timed rounds per configuration, all implementations "
                         "together (default 1.5; --quick 0.01)")
    ap.add_argument("--block", type=_positive("--block"), default=None,
                    help="seconds of back-to-back calls per timed sample (default 0.05)")
    ap.add_argument("--min-rounds", type=int, default=3,
                    help="fewest timed rounds per configuration (default 3)")
    ap.add_argument("--max-rounds", type=int, default=11,
                    help="most timed rounds per configuration (default 11; --quick 3)")
    ap.add_argument("--max-call", type=_positive("--max-call"), default=30.0,
                    help="skip an implementation whose one call takes longer (default 30 s)")
    ap.add_argument("--json", help="results file (default "
                    "benchmarks/results/workloads-<date>-<time>.json)")
    ap.add_argument("--markdown", help="also write the tables to this file")
    ap.add_argument("--child", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    table = QUICK_WORKLOADS if args.quick else WORKLOADS
    try:
        workloads = (_list(args.workloads, tuple(table), "--workloads") if args.workloads
                     else list(table))
        opts = argparse.Namespace(
            table=table, workloads=workloads,
            cells=_list(args.cells, CELLS, "--cells"),
            dtypes=_list(args.dtypes, DTYPES, "--dtypes"),
            modes=_list(args.modes, MODES, "--modes"),
            impls=_list(args.impls, IMPLS, "--impls"),
            threads=args.threads, max_call=args.max_call,
        )
    except argparse.ArgumentTypeError as e:
        ap.error(str(e))
    quick = opts.quick = args.quick
    opts.budget = args.budget or (0.01 if quick else 1.5)
    opts.block = args.block or (0.001 if quick else 0.05)  # --quick: 1 call, no calibration
    if args.min_rounds < 1 or args.max_rounds < args.min_rounds:
        ap.error(f"need 1 <= --min-rounds <= --max-rounds, got {args.min_rounds} and "
                 f"{args.max_rounds}")
    opts.min_rounds = args.min_rounds
    opts.max_rounds = max(opts.min_rounds, min(args.max_rounds, 3)) if quick else args.max_rounds
    opts.pause = 0.0 if quick else 0.1
    opts.peak_n, opts.peak_reps = (256, 2) if quick else (1024, 5)
    if args.child is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        args.json = args.json or str(HERE / "results" / f"workloads-{stamp}.json")
        for flag, path in (("--json", args.json), ("--markdown", args.markdown)):
            if path is None:
                continue
            if os.path.isdir(path):
                ap.error(f"{flag} {path} is a directory; give a file name")
            try:
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            except OSError as e:
                ap.error(f"{flag}: cannot create the folder of {path}: {e.strerror}")
            if not os.access(os.path.dirname(os.path.abspath(path)), os.W_OK):
                ap.error(f"{flag}: the folder of {path} is not writable")
    return args, opts


def write_atomic(path, text):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def main(argv=None):
    args, opts = parse_args(argv)
    if args.child is not None:
        try:
            child_main(args, opts, args.child)
        except KeyboardInterrupt:
            return 130
        return 0

    parent = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "argv": sys.argv[1:], "quick": args.quick,
        "cpu": _common.cpu_name(), "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform(),
        "options": {k: v for k, v in vars(opts).items() if k != "table"},
        "method": (f"median of {opts.min_rounds}-{opts.max_rounds} interleaved rounds after "
                   f"warm-up, blocks of ~{opts.block:g} s; GFLOP/s counts GEMM FLOPs "
                   "(training = 3x forward less the data gradient; ids input: no "
                   "projection FLOPs); "
                   "ratios are speed-ups of rnnx (>1: rnnx faster)"),
    }
    if max(opts.threads) > (os.cpu_count() or 1):
        print(f"# note: {max(opts.threads)} threads on {os.cpu_count()} CPUs", flush=True)
    print("# measuring how busy the machine is (1 s) ...", flush=True)
    parent["busy_before"] = _common.busy_fraction(1.0)
    parent["loadavg_before"] = _common.loadavg()
    children, failed = {}, []
    started = time.perf_counter()
    try:
        for n in opts.threads:
            env = dict(os.environ)
            for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                        "RNNX_NUM_THREADS"):
                env[var] = str(n)
            fd, out = tempfile.mkstemp(prefix="rnnx-bench-", suffix=".json")
            os.close(fd)
            print(f"# {n} thread(s): child process ...", flush=True)
            try:
                rc = subprocess.call([sys.executable, str(Path(__file__).resolve())]
                                     + sys.argv[1:] + ["--child", str(n), "--child-out", out],
                                     env=env)
                if rc != 0:
                    failed.append(f"{n} thread(s): the child process exited with status {rc}")
            finally:  # an interrupted child has saved every configuration it finished
                try:
                    with open(out) as f:
                        children[n] = json.load(f)
                except (OSError, ValueError):
                    failed.append(f"{n} thread(s): no results came back")
                os.unlink(out)
    except KeyboardInterrupt:
        failed.append("interrupted: the tables hold what had finished")
    parent["seconds"] = time.perf_counter() - started
    parent["loadavg_after"] = _common.loadavg()

    rescale_to_peak(children)
    results = [r for c in children.values() for r in c["results"]]
    by_key = {_key(r): r for r in results}
    for r in results:
        if r["threads"] > 1:
            r["thread_scaling_across"] = scaling_across(r, by_key)
    targets = evaluate_targets(results)
    warnings = busy_warnings(parent, children, results)
    mismatches = [r for r in results if not r["check"]["ok"]]
    failed += [f"{r['workload']} {r['cell']} {r['dtype']} {r['mode']} {r['threads']}t: "
               f"{IMPL_NAMES[k]}: {i['error']}" for r in results
               for k, i in r["impls"].items() if i.get("error")]

    lines = header(parent, children) + ["", "GEMM peak (best large square matmul):", ""]
    lines += peaks_table(children) + [""] + results_table(results)
    lines += ["", "targets: met/missed (by how much)", ""] + targets_table(targets)
    if warnings:
        lines += [""] + [f"WARNING: {w}; ratios may be off" for w in warnings]
    if mismatches:
        lines += ["", f"ERROR: {len(mismatches)} configuration(s) where rnnx or PyTorch "
                  "disagree with the NumPy reference, or rnnx on one thread with rnnx "
                  "(MISMATCH in the notes)"]
    lines += ["", f"# {parent['seconds']:.0f} s"] + [f"ERROR: {f}" for f in failed]
    text = "\n".join(lines) + "\n"
    print()
    print(text, end="")

    doc = {"meta": parent, "per_threads": {str(n): {"meta": c["meta"], "peaks": c["peaks"],
                                                     "peak_used": used_peaks(c)}
                                           for n, c in children.items()},
           "results": results, "targets": targets, "warnings": warnings, "errors": failed}
    write_atomic(args.json, json.dumps(doc, indent=1) + "\n")
    print(f"# JSON: {args.json}")
    if args.markdown:
        write_atomic(args.markdown, text)
        print(f"# markdown: {args.markdown}")
    return 1 if failed or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
