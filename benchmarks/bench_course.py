"""Time the course drop-in against its NumPy reference, side by side, and print ratios.

    python benchmarks/bench_course.py [--repeats N] [--json FILE] [--quick]

For each workload and cell (basic RNN, LSTM) it times forward plus backward
(``rnn_forward`` + ``rnn_backward``, ``lstm_forward`` + ``lstm_backward``), float64,
for ``rnnx`` and ``rnnx.reference.course`` in alternation (with a 0.25 s pause before
each timed block, so that one library's idle-spinning threads do not slow the other),
and reports the median of the repeats and the ratio reference/rnnx. Both run with
their default threads.

NumPy is slowed on these machines by the preset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE; the script restarts itself without them before NumPy is imported.
"""

import _common

if __name__ == "__main__":
    _common.reexec_without_slow_blas()

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402

import numpy as np  # noqa: E402

import rnnx  # noqa: E402
from rnnx.reference import course as ref  # noqa: E402

WORKLOADS = {
    # name: (n_x, n_a, n_y, m, T)
    "course (n_x=3, n_a=5, n_y=2, m=10, T=4)": (3, 5, 2, 10, 4),
    "realistic (n_x=n_y=65, n_a=256, m=32, T=100)": (65, 256, 65, 32, 100),
}


def make_inputs(cell, n_x, n_a, n_y, m, T, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n_x, m, T))
    a0 = rng.standard_normal((n_a, m)) * 0.1
    s = 1 / np.sqrt(n_a + n_x)
    if cell == "rnn":
        p = {"Wax": rng.standard_normal((n_a, n_x)) * s, "Waa": rng.standard_normal((n_a, n_a)) * s,
             "Wya": rng.standard_normal((n_y, n_a)) * s, "ba": np.zeros((n_a, 1)),
             "by": np.zeros((n_y, 1))}
    else:
        p = {}
        for g in "fioc":
            p["W" + g] = rng.standard_normal((n_a, n_a + n_x)) * s
            p["b" + g] = np.zeros((n_a, 1))
        p["Wy"] = rng.standard_normal((n_y, n_a)) * s
        p["by"] = np.zeros((n_y, 1))
    da = rng.standard_normal((n_a, m, T))
    return x, a0, p, da


def step_fn(module, cell, x, a0, p, da):
    if cell == "rnn":
        def run():
            _, _, caches = module.rnn_forward(x, a0, p)
            return module.rnn_backward(da, caches)
    else:
        def run():
            _, _, _, caches = module.lstm_forward(x, a0, p)
            return module.lstm_backward(da, caches)
    return run


def calibrate(fn, target=0.2):
    """Number of calls that take about `target` seconds."""
    return _common.calibrate(fn, target)[0]


def per_call(fn, n):
    # let OpenBLAS's spinning threads go idle before each block (see _common.per_call)
    return _common.per_call(fn, n, pause=0.25)


cpu_name = _common.cpu_name
busy_fraction = _common.busy_fraction


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--json", help="also write the results to this file")
    ap.add_argument("--quick", action="store_true", help="3 repeats (a smoke run)")
    args = ap.parse_args()
    repeats = 3 if args.quick else max(3, args.repeats)

    busy = busy_fraction()
    cores = os.cpu_count()
    print(f"# rnnx {rnnx.__version__} ({rnnx.isa} build, {rnnx.get_num_threads()} threads) vs "
          f"rnnx.reference (NumPy {np.__version__})")
    print(f"# machine: {cpu_name()}, {cores} cores, Python {platform.python_version()}; "
          f"median of {repeats} repeats, float64, forward + backward, default threads")
    if busy is not None and busy > 0.15:
        print(f"# WARNING: the machine was busy before the run ({busy:.0%} of CPU time used by "
              "other work); ratios may be off")
    print()
    print("| workload | cell | rnnx (ms) | NumPy reference (ms) | speed-up |")
    print("|---|---|---:|---:|---:|")
    results = []
    for wname, dims in WORKLOADS.items():
        for cell in ("rnn", "lstm"):
            x, a0, p, da = make_inputs(cell, *dims)
            fast, slow = step_fn(rnnx, cell, x, a0, p, da), step_fn(ref, cell, x, a0, p, da)
            fast(), slow()  # warm-up
            nf, ns = calibrate(fast), calibrate(slow)
            tf, ts = [], []
            for _ in range(repeats):  # interleaved, so both see the same machine
                tf.append(per_call(fast, nf))
                ts.append(per_call(slow, ns))
            mf, ms = statistics.median(tf), statistics.median(ts)
            results.append({"workload": wname, "cell": cell, "rnnx_s": mf, "numpy_s": ms,
                            "speedup": ms / mf})
            print(f"| {wname} | {cell} | {mf * 1e3:.4f} | {ms * 1e3:.4f} | {ms / mf:.1f}x |",
                  flush=True)
    if args.json:
        meta = {"rnnx": rnnx.__version__, "isa": rnnx.isa, "threads": rnnx.get_num_threads(),
                "numpy": np.__version__, "cpu": cpu_name(), "cores": cores, "repeats": repeats,
                "busy_before": busy}
        with open(args.json + ".tmp", "w") as f:
            json.dump({"meta": meta, "results": results}, f, indent=1)
        os.replace(args.json + ".tmp", args.json)


if __name__ == "__main__":
    main()
