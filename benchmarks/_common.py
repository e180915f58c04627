"""Helpers shared by the benchmark scripts: a clean BLAS environment, the machine, timing.

Import this before NumPy and call :func:`reexec_without_slow_blas` first thing: on the
development machines ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` are preset to values
that slow OpenBLAS (and so NumPy) down, and OpenBLAS reads them once, when it loads.
The benchmark commands restart themselves without them; tests and CI keep them.
"""

import os
import sys
import time

SLOW_BLAS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def reexec_without_slow_blas():
    """Restart this script (same interpreter and arguments) without :data:`SLOW_BLAS`.

    Does nothing when neither variable is set, so the restarted process goes on.
    Must run before NumPy is imported.
    """
    if any(v in os.environ for v in SLOW_BLAS):
        env = {k: v for k, v in os.environ.items() if k not in SLOW_BLAS}
        os.execve(sys.executable, [sys.executable] + sys.argv, env)


def cpu_name():
    """The CPU's model name (the one ``rnnx.show_config()`` reports)."""
    from rnnx._config import _cpu_model  # imported late: this module re-execs first

    return _cpu_model()


def busy_fraction(seconds=1.0):
    """Share of all CPUs' time spent busy (by any process) over `seconds`, or None."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return sum(v), v[3] + v[4]  # total, idle + iowait
    try:
        t0, i0 = sample()
        time.sleep(seconds)
        t1, i1 = sample()
    except (OSError, IndexError, ValueError):
        return None
    return 1 - (i1 - i0) / max(1, t1 - t0)


def loadavg():
    """The 1-, 5- and 15-minute load averages, or None where the OS has none."""
    try:
        return list(os.getloadavg())
    except (AttributeError, OSError):
        return None


def calibrate(fn, target):
    """``(n, seconds_per_call)``: how many calls of `fn` take about `target` seconds.

    Calls `fn` in growing batches (1, 4, 16, ...) until a batch lasts a quarter of the
    target, so it doubles as a warm-up.
    """
    n = 1
    while True:
        t = time.perf_counter()
        for _ in range(n):
            fn()
        dt = time.perf_counter() - t
        if dt >= target / 4 or n >= 1 << 20:
            per_call = dt / n
            return max(1, round(target / max(per_call, 1e-9))), per_call
        n *= 4


def per_call(fn, n, pause=0.0):
    """Mean seconds per call over `n` back-to-back calls, after sleeping `pause` seconds.

    OpenBLAS's and OpenMP's worker threads keep spinning for a while after a call
    (OpenBLAS: about 0.1 s) and would take the cores from whatever runs next; a pause
    lets them go idle. It matters only with more than one thread.
    """
    if pause:
        time.sleep(pause)
    t = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t) / n
