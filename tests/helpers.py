"""Helpers shared by the test modules: sizes, random inputs, gradient checks, data.

Sizes are tiny and all different (T=3, B=2, D=4, H=5, NY=6) so that a swapped index
cannot pass.  Random inputs come from ``np.random.default_rng``; the global RNG is used
only where the course functions themselves use it.
"""

import os
import pathlib
import subprocess
import sys

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import recipes  # noqa: E402

from rnnx.reference import kernels as reference_kernels  # noqa: E402

DATA = recipes.load()
RECIPES = {r["id"]: r for r in DATA["recipes"]}
TARGET_IDS = [rid for rid, r in RECIPES.items() if r["target"]]

# sizes: time, batch, input, hidden, output
T, B, D, H, NY = 3, 2, 4, 5, 6

RNN_GRAD_KEYS = ["dxt", "da_prev", "dWax", "dWaa", "dba"]
RNN_SEQ_GRAD_KEYS = ["dx", "da0", "dWax", "dWaa", "dba"]
LSTM_PARAM_GRAD_KEYS = ["dWf", "dbf", "dWi", "dbi", "dWc", "dbc", "dWo", "dbo"]
LSTM_GRAD_KEYS = ["dxt", "da_prev", "dc_prev"] + LSTM_PARAM_GRAD_KEYS
LSTM_SEQ_GRAD_KEYS = ["dx", "da0"] + LSTM_PARAM_GRAD_KEYS
RNN_PARAM_KEYS = ["Waa", "Wax", "Wya", "ba", "by"]
LSTM_PARAM_KEYS = ["Wf", "bf", "Wi", "bi", "Wo", "bo", "Wc", "bc", "Wy", "by"]
DINOS_PARAM_KEYS = ["Wax", "Waa", "Wya", "b", "by"]
CLIP_KEYS = ["dWaa", "dWax", "dWya", "db", "dby"]


# ----------------------------------------------------------------------------------
# comparisons and gradient checks
# ----------------------------------------------------------------------------------


def assert_close(actual, desired, rtol=1e-12, err_msg=""):
    """float64 agreement: `rtol`, and an absolute floor of 1e-14 times the largest
    magnitude of `desired` (for entries that cancel to almost 0)."""
    desired = np.asarray(desired)
    assert np.shape(actual) == desired.shape, f"{err_msg}: {np.shape(actual)} != {desired.shape}"
    scale = max(1.0, float(np.max(np.abs(desired)))) if desired.size else 1.0
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=1e-14 * scale, err_msg=err_msg)


def assert_dicts_close(actual, desired, rtol=1e-12):
    """Same keys in the same order, every value close (see :func:`assert_close`)."""
    assert list(actual) == list(desired)
    for key in desired:
        assert_close(actual[key], desired[key], rtol=rtol, err_msg=key)


def numerical_gradient(loss, array, eps=1e-6):
    """Central differences of the scalar ``loss()`` with respect to `array`.

    `array` is perturbed in place (and restored), so `loss` must read it by
    reference.
    """
    grad = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        old = array[idx]
        array[idx] = old + eps
        plus = loss()
        array[idx] = old - eps
        minus = loss()
        array[idx] = old
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def assert_gradients(loss, inputs, analytic):
    """Compare each ``analytic[name]`` with the numerical gradient of ``inputs[name]``."""
    assert set(inputs) == set(analytic)
    for name, array in inputs.items():
        numeric = numerical_gradient(loss, array)
        assert analytic[name].shape == array.shape, name
        np.testing.assert_allclose(
            analytic[name], numeric, rtol=1e-6, atol=1e-8, err_msg=f"gradient of {name}"
        )


# ----------------------------------------------------------------------------------
# random inputs
# ----------------------------------------------------------------------------------


def rnn_params(rng, n_x=D, n_a=H, n_y=NY, scale=0.5):
    return {
        "Waa": rng.standard_normal((n_a, n_a)) * scale,
        "Wax": rng.standard_normal((n_a, n_x)) * scale,
        "Wya": rng.standard_normal((n_y, n_a)) * scale,
        "ba": rng.standard_normal((n_a, 1)) * scale,
        "by": rng.standard_normal((n_y, 1)) * scale,
    }


def lstm_params(rng, n_x=D, n_a=H, n_y=NY, scale=0.5):
    p = {}
    for gate in "fioc":
        p["W" + gate] = rng.standard_normal((n_a, n_a + n_x)) * scale
        p["b" + gate] = rng.standard_normal((n_a, 1)) * scale
    p["Wy"] = rng.standard_normal((n_y, n_a)) * scale
    p["by"] = rng.standard_normal((n_y, 1)) * scale
    return p


def five_gradients(rng):
    shapes = {"dWaa": (H, H), "dWax": (H, D), "dWya": (NY, H), "db": (H, 1), "dby": (NY, 1)}
    g = {k: rng.standard_normal(s) * 10 for k, s in shapes.items()}
    g["da_next"] = rng.standard_normal((H, 1)) * 10
    return g


def sample_parameters(rng, V=27, n_a=H, by0=0.0):
    p = {"Wax": rng.standard_normal((n_a, V)), "Waa": rng.standard_normal((n_a, n_a)),
         "Wya": rng.standard_normal((V, n_a)), "b": rng.standard_normal((n_a, 1)),
         "by": rng.standard_normal((V, 1))}
    p["by"][0] += by0
    return p


def rnn_kernel_inputs(seed, nonlinearity, margin=0.05):
    """Random RNN inputs; for relu, redraw until no pre-activation is near 0.

    relu is not differentiable at 0, so a central difference that crosses 0 would
    disagree with the analytic gradient.
    """
    rng = np.random.default_rng(seed)
    for _ in range(200):
        x = rng.standard_normal((T, B, D))
        h0 = rng.standard_normal((B, H))
        w_ih = rng.standard_normal((H, D)) * 0.5
        w_hh = rng.standard_normal((H, H)) * 0.5
        b = rng.standard_normal(H) * 0.5
        if nonlinearity == "tanh":
            return x, h0, w_ih, w_hh, b
        h = reference_kernels.rnn_forward(x, h0, w_ih, w_hh, b, "relu")
        z = x @ w_ih.T + np.concatenate((h0[None], h[:-1])) @ w_hh.T + b
        if np.abs(z).min() > margin and 0 < (z > 0).mean() < 1:
            return x, h0, w_ih, w_hh, b
    raise RuntimeError("no relu inputs with pre-activations away from 0")


# ----------------------------------------------------------------------------------
# data and processes
# ----------------------------------------------------------------------------------


def read_dinos():
    """The course data, read the way the notebook reads it."""
    with open(recipes.shared_dir() / "data" / "dinos.txt") as f:
        data = f.read().lower()
    chars = sorted(set(data))
    char_to_ix = {ch: i for i, ch in enumerate(chars)}
    ix_to_char = {i: ch for i, ch in enumerate(chars)}
    return data, char_to_ix, ix_to_char


def run_python(code, timeout=60, **env):
    """Run `code` in a fresh interpreter that imports the same rnnx as this one.

    Returns the ``subprocess.CompletedProcess`` (text output); `env` adds variables.
    """
    import rnnx

    package_root = str(pathlib.Path(rnnx.__file__).resolve().parents[1])
    environ = dict(os.environ, **env)
    environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (package_root, environ.get("PYTHONPATH")) if p
    )
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=environ
    )


def misaligned(a):
    """A copy of `a` whose data start 8 bytes past a 64-byte boundary (still 8-aligned):
    an input the bindings must copy before the kernels read it."""
    raw = np.empty(a.nbytes + 72, np.uint8)
    start = (-raw.ctypes.data) % 64 + 8
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out
