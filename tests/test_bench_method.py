"""The benchmark's bookkeeping (no timing): paired thread scaling, pauses, targets."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import bench_workloads as bw  # noqa: E402


def info(samples):
    return {"skipped": None, "samples_s": samples, "median_s": sorted(samples)[len(samples) // 2]}


def test_paired_scaling_is_the_median_of_per_round_ratios():
    infos = {"rnnx": info([1.0, 2.0, 1.0]), bw.ONE_THREAD: info([1.8, 3.0, 1.5])}
    # per round: 1.8, 1.5, 1.5 -> median 1.5 (the ratio of the medians would be 1.8)
    assert bw.paired_scaling(infos) == pytest.approx(1.5)


def test_paired_scaling_needs_both():
    assert bw.paired_scaling({"rnnx": info([1.0])}) is None
    skipped = {"skipped": "ERROR", "samples_s": []}
    assert bw.paired_scaling({"rnnx": info([1.0]), bw.ONE_THREAD: skipped}) is None


def test_wait_after_numpy_outlasts_openblas_spin():
    assert bw.wait_after("numpy", 0.1) >= 0.2
    assert bw.wait_after("torch", 0.1) == 0.1
    assert bw.wait_after("numpy", 0.0) == 0.0  # one thread: no pause at all


def row(threads, rnnx_s, scaling=None):
    r = {"workload": "W_mid", "cell": "rnn", "dtype": "float32", "mode": "train",
         "threads": threads, "impls": {"rnnx": info([rnnx_s])}}
    if scaling is not None:
        r["thread_scaling"] = scaling
    return r


def scaling_rows(results):
    return [t for t in bw.evaluate_targets(results) if t["metric"] == "thread_scaling"]


def test_scaling_target_prefers_the_same_rounds():
    (t,) = scaling_rows([row(1, 2.0), row(2, 1.9, scaling=1.8)])
    assert t["value"] == pytest.approx(1.8) and t["met"]


def test_scaling_target_falls_back_to_across_children():
    (t,) = scaling_rows([row(1, 2.0), row(2, 1.6)])
    assert t["value"] == pytest.approx(1.25) and not t["met"]


def test_one_thread_results_must_match_bit_for_bit():
    out = (1.0, None, None)
    assert bw.check_outputs({"rnnx": out, bw.ONE_THREAD: out}, "float32")["ok"]
    off = (1.0 + 1e-12, None, None)
    assert not bw.check_outputs({"rnnx": out, bw.ONE_THREAD: off}, "float32")["ok"]


def test_time_config_rotation_pauses_and_scopes(monkeypatch):
    """Blocks go round in the builders' order; each waits after its predecessor (0.25 s
    after NumPy's); the one-thread scope wraps the implementation's calibration and every
    one of its blocks, and nothing else."""
    import contextlib
    from types import SimpleNamespace

    state = {"scoped": False}
    log = []

    @contextlib.contextmanager
    def scope():
        state["scoped"] = True
        try:
            yield
        finally:
            state["scoped"] = False

    def builder(name):
        def fn():
            log.append(("call", name, state["scoped"]))
            return (1.0, None, None)
        return lambda: {"v": fn}

    def per_call(fn, n, pause=0.0):
        log.append(("block", pause))
        fn()
        return 0.01

    monkeypatch.setattr(bw._common, "per_call", per_call)
    monkeypatch.setattr(bw._common, "calibrate", lambda fn, target: (fn(), (1, 0.01))[1])
    opts = SimpleNamespace(max_call=30.0, block=0.05, quick=False, budget=0.0,
                           min_rounds=2, max_rounds=2)
    builders = {name: builder(name) for name in ("rnnx", "numpy", "torch", bw.ONE_THREAD)}
    infos, outs = bw.time_config(builders, opts, 0.1, 1.0, None, {bw.ONE_THREAD: scope})
    calls = [e for e in log if e[0] == "call"]
    assert all(scoped == (name == bw.ONE_THREAD) for _, name, scoped in calls)
    pauses = [e[1] for e in log if e[0] == "block"]
    # rnnx after the one-thread rnnx, numpy after rnnx, torch after numpy, 1t after torch
    assert pauses == [0.1, 0.1, 0.25, 0.1] * 2
    assert len(infos["rnnx"]["samples_s"]) == len(infos[bw.ONE_THREAD]["samples_s"]) == 2
    assert set(outs) == set(builders)


def test_long_calls_choose_their_variant_by_warm_calls_and_one_thread_follows(monkeypatch):
    """A variant whose first (cold) call is slow but whose warm calls are the fastest is
    the one kept; the one-thread time runs the variant chosen for rnnx, and only it."""
    import time
    from types import SimpleNamespace

    log = []
    warm_s = {"cold-fast": 0.02, "cold-slow": 0.01}

    def variants(impl):
        def make(name):
            first = [True]

            def fn():
                log.append((impl, name))
                if name == "cold-slow" and first[0]:
                    time.sleep(0.02)  # the first call only
                first[0] = False
                return (1.0, None, None)
            fn.variant = name
            return fn
        return lambda: {name: make(name) for name in warm_s}

    def per_call(fn, n, pause=0.0):
        fn()
        return warm_s[fn.variant]

    monkeypatch.setattr(bw._common, "per_call", per_call)
    # block 0: every call counts as a long one (its first call is the warm-up)
    opts = SimpleNamespace(max_call=30.0, block=0.0, quick=False, budget=0.0,
                           min_rounds=2, max_rounds=2)
    builders = {"rnnx": variants("rnnx"), bw.ONE_THREAD: variants(bw.ONE_THREAD)}
    infos, _ = bw.time_config(builders, opts, 0.0, 1.0, None, None, {bw.ONE_THREAD: "rnnx"})
    assert infos["rnnx"]["input_path"] == "cold-slow"
    assert infos["rnnx"]["variants_s"]["cold-slow"] == 0.01  # the best warm call
    assert infos["rnnx"]["median_s"] == 0.01
    assert infos[bw.ONE_THREAD]["input_path"] == "cold-slow"
    assert {name for impl, name in log if impl == bw.ONE_THREAD} == {"cold-slow"}
    # rnnx: a first call of each, then VARIANT_ROUNDS warm calls of each, then the rounds
    assert sum(1 for impl, _ in log if impl == "rnnx") == 2 * (1 + bw.VARIANT_ROUNDS) + 2
