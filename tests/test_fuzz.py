"""Fuzz the public API and the compiled bindings with generated bad input.

The cases come from ``fuzz_cases.py`` (hypothesis): valid calls of every public function
with zero to two mutations of their arguments (rank, shape, dtype, layout, NaN/inf,
huge values and shapes, wrong types, missing keys). Each group runs in a child
interpreter, so that a segfault or abort fails the test with the case that caused it
instead of killing pytest. ``RNNX_FUZZ_EXAMPLES`` sets the examples per group (default
60) and ``RNNX_FUZZ_SEED`` the seed (default 20261128), e.g.
``RNNX_FUZZ_EXAMPLES=2000 python -m pytest tests/test_fuzz.py``.
"""

import os
import pathlib
import re
import signal
import subprocess
import sys

import pytest

import rnnx

HERE = pathlib.Path(__file__).parent
EXAMPLES = int(os.environ.get("RNNX_FUZZ_EXAMPLES", "60"))
SEED = int(os.environ.get("RNNX_FUZZ_SEED", "20261128"))
GROUPS = ["course", "dinos", "kernels", "heads", "layers", "optim", "bindings"]


def run_group(group, examples=EXAMPLES, seed=SEED):
    package_root = str(pathlib.Path(rnnx.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (package_root, os.environ.get("PYTHONPATH")) if p))
    env.pop("RNNX_FUZZ_KEEP_GOING", None)
    return subprocess.run(
        [sys.executable, str(HERE / "fuzz_cases.py"), group, str(examples), str(seed)],
        capture_output=True, text=True, timeout=max(300, examples * 5), env=env, cwd=HERE)


def describe(proc):
    cases = [line for line in proc.stderr.splitlines() if line.startswith("CASE ")]
    how = (f"killed by signal {signal.Signals(-proc.returncode).name}" if proc.returncode < 0
           else f"exit status {proc.returncode}")
    tail = "\n".join(line for line in proc.stderr.splitlines()[-60:]
                     if not line.startswith("CASE "))
    return f"fuzz child {how}; last case: {cases[-1] if cases else '(none)'}\n{tail}"


@pytest.mark.parametrize("group", GROUPS)
def test_fuzz(group):
    proc = run_group(group)
    assert proc.returncode == 0, describe(proc)
    done = re.search(rf"^FUZZ-DONE {group} (\d+)$", proc.stdout, re.M)
    assert done, describe(proc)
    assert int(done.group(1)) >= EXAMPLES  # every example ran (shrinking adds more)


def test_fuzz_child_reports_a_crash():
    """The harness itself: a child that dies by a signal is reported with its last case."""
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}  # no sanitizer report
    proc = subprocess.run(
        [sys.executable, "-c", "import os, signal, sys; print('CASE 7 boom', file=sys.stderr, "
         "flush=True); os.kill(os.getpid(), signal.SIGSEGV)"],
        capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == -signal.SIGSEGV
    message = describe(proc)
    assert "SIGSEGV" in message and "CASE 7 boom" in message
