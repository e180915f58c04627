"""``rnnx.dinos`` (the Dinosaurus Island drop-in) against ``rnnx.reference.dinos``.

Values agree to 1e-12 and the side effects are the course's: cache dicts keyed by
step, gradient-dict keys and their order, ``clip`` copying (or, on request, clipping
in place), ``sample`` reseeding NumPy's global RNG and leaving it exactly where the
course's code leaves it, ``optimize`` updating the parameter arrays in place, and
``model`` printing through ``sys.stdout``.
"""

import contextlib
import copy
import io
import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import (  # noqa: E402
    CLIP_KEYS,
    DINOS_PARAM_KEYS,
    assert_close,
    assert_dicts_close,
    five_gradients,
    sample_parameters,
)

from rnnx import dinos  # noqa: E402
from rnnx.reference import dinos as ref  # noqa: E402

N_A = 5
VOCAB = ["\n"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
CHAR_TO_IX = {ch: i for i, ch in enumerate(VOCAB)}
IX_TO_CHAR = {i: ch for i, ch in enumerate(VOCAB)}
GRAD_KEYS = ["dWax", "dWaa", "dWya", "db", "dby", "da_next"]


def parameters(rng, V=27, n_a=N_A, scale=0.3):
    """Dinosaurus parameters ``Wax, Waa, Wya, b, by`` (keys in the course's order)."""
    shapes = {"Wax": (n_a, V), "Waa": (n_a, n_a), "Wya": (V, n_a), "b": (n_a, 1), "by": (V, 1)}
    return {k: rng.standard_normal(s) * scale for k, s in shapes.items()}


def sequence(rng, V, length, first_none=True):
    """Random X (``None`` first, as ``model`` builds it) and Y = X shifted + newline."""
    ix = [int(i) for i in rng.integers(1, V, length)]
    X = ([None] + ix) if first_none else ix
    return X, X[1:] + [0]


def rng_state():
    """NumPy's global RNG state as comparable parts: (key array, pos, has_gauss, gauss)."""
    name, key, pos, has_gauss, gauss = np.random.get_state()
    assert name == "MT19937"
    return key.copy(), pos, has_gauss, gauss


def assert_same_rng_state(got, want):
    np.testing.assert_array_equal(got[0], want[0])
    assert got[1:] == want[1:]


# ----------------------------------------------------------------------------------
# rnn_forward / rnn_backward
# ----------------------------------------------------------------------------------

FORWARD_CASES = {"V27_none_first": (27, True), "V7_none_first": (7, True), "V7_no_none": (7, False)}


@pytest.mark.parametrize("case", list(FORWARD_CASES))
def test_rnn_forward(case):
    V, first_none = FORWARD_CASES[case]
    rng = np.random.default_rng(1)
    p = parameters(rng, V)
    X, Y = sequence(rng, V, 6, first_none)
    a0 = rng.standard_normal((N_A, 1))
    loss, cache = dinos.rnn_forward(X, Y, a0, p, vocab_size=V)
    want_loss, want_cache = ref.rnn_forward(X, Y, a0, p, vocab_size=V)
    assert_close(loss, want_loss)
    assert isinstance(cache, tuple) and len(cache) == 3
    y_hat, a, x = cache
    assert all(type(d) is dict for d in cache)
    T = len(X)
    assert list(y_hat) == list(x) == list(range(T))
    assert list(a) == [-1] + list(range(T))  # as the course fills it
    for got, want in zip(cache, want_cache):
        assert list(got) == list(want)
        for t in want:
            assert_close(got[t], want[t], err_msg=f"step {t}")
    for t in range(T):
        assert y_hat[t].shape == x[t].shape == (V, 1) and a[t].shape == (N_A, 1)
        assert_close(y_hat[t].sum(), 1.0)
        onehot = np.zeros((V, 1))
        if X[t] is not None:
            onehot[X[t]] = 1
        np.testing.assert_array_equal(x[t], onehot)
    # a[-1] is a copy of a0: equal, but neither the same object nor sharing memory
    np.testing.assert_array_equal(a[-1], a0)
    assert a[-1] is not a0 and not np.shares_memory(a[-1], a0)
    a0 += 1.0
    assert not np.array_equal(a[-1], a0)


@pytest.mark.parametrize("made_by", ["rnnx_cache", "numpy_cache"])
@pytest.mark.parametrize("V", [27, 7], ids=["V27", "V7"])
def test_rnn_backward(V, made_by):
    rng = np.random.default_rng(2)
    p = parameters(rng, V)
    X, Y = sequence(rng, V, 5)
    a0 = rng.standard_normal((N_A, 1))
    cache = (dinos if made_by == "rnnx_cache" else ref).rnn_forward(X, Y, a0, p, vocab_size=V)[1]
    want, want_a = ref.rnn_backward(X, Y, p, ref.rnn_forward(X, Y, a0, p, vocab_size=V)[1])
    result = dinos.rnn_backward(X, Y, p, cache)
    assert isinstance(result, tuple) and len(result) == 2
    gradients, a = result
    assert list(gradients) == GRAD_KEYS
    assert_dicts_close(gradients, want)
    assert a is cache[1]
    for k in DINOS_PARAM_KEYS:
        assert gradients["d" + k].shape == p[k].shape
    assert gradients["da_next"].shape == (N_A, 1)


# ----------------------------------------------------------------------------------
# clip
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("max_value", [5, 10, 0.5])
def test_clip_default_copies(max_value):
    g = five_gradients(np.random.default_rng(10))
    before = copy.deepcopy(g)
    clipped = dinos.clip(g, max_value)
    assert list(clipped) == CLIP_KEYS  # da_next dropped, the course's key order
    want = ref.clip(copy.deepcopy(g), max_value)
    for k in CLIP_KEYS:
        np.testing.assert_array_equal(clipped[k], want[k])
        np.testing.assert_array_equal(clipped[k], np.clip(before[k], -max_value, max_value))
        assert clipped[k] is not g[k]
        np.testing.assert_array_equal(g[k], before[k])  # the caller's arrays untouched
    assert np.abs(before["dWaa"]).max() > max_value  # so the clipping did something


def test_clip_inplace_clips_the_callers_arrays():
    g = five_gradients(np.random.default_rng(11))
    before = copy.deepcopy(g)
    clipped = dinos.clip(g, 5, inplace=True)
    assert list(clipped) == CLIP_KEYS
    for k in CLIP_KEYS:
        assert clipped[k] is g[k]
        np.testing.assert_array_equal(g[k], np.clip(before[k], -5, 5))
    np.testing.assert_array_equal(g["da_next"], before["da_next"])


@pytest.mark.parametrize("missing", CLIP_KEYS)
def test_clip_missing_key(missing):
    g = five_gradients(np.random.default_rng(12))
    del g[missing]
    with pytest.raises(KeyError, match=missing):
        dinos.clip(g, 5)


def test_clip_inf_and_nan():
    g = five_gradients(np.random.default_rng(13))
    g["dWaa"][0, 0], g["dWaa"][1, 2] = np.inf, -np.inf
    g["db"][3, 0] = np.nan
    clipped = dinos.clip(g, 5)
    assert clipped["dWaa"][0, 0] == 5 and clipped["dWaa"][1, 2] == -5
    assert np.isnan(clipped["db"][3, 0])
    assert np.isnan(clipped["db"]).sum() == 1
    want = ref.clip(g, 5)
    for k in CLIP_KEYS:
        np.testing.assert_array_equal(clipped[k], want[k])


# ----------------------------------------------------------------------------------
# sample
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("before", ["fresh_state", "cached_gaussian"])
@pytest.mark.parametrize("seed", [0, 3, 24, 1000])
@pytest.mark.parametrize("param_seed", [20, 21, 22])
def test_sample_equals_the_reference_and_leaves_the_same_rng_state(param_seed, seed, before):
    p = sample_parameters(np.random.default_rng(param_seed), V=27, n_a=N_A, by0=1.0)

    def run(impl):
        np.random.seed(123)
        if before == "cached_gaussian":
            np.random.randn(3)  # leaves has_gauss = 1
        indices = impl.sample(p, CHAR_TO_IX, seed)
        return indices, rng_state()

    want, want_state = run(ref)
    got, got_state = run(dinos)
    assert type(got) is list
    assert [int(i) for i in got] == [int(i) for i in want]
    assert all(isinstance(i, (int, np.integer)) for i in got)
    assert_same_rng_state(got_state, want_state)


def test_sample_hits_the_cap_of_50():
    # a strongly preferred ordinary character: 50 draws, then the newline is appended
    p = sample_parameters(np.random.default_rng(23), V=27, n_a=N_A)
    p["by"][3] += 50.0
    np.random.seed(7)
    want = ref.sample(p, CHAR_TO_IX, 5)
    want_state = rng_state()
    got = dinos.sample(p, CHAR_TO_IX, 5)
    assert len(got) == 51 and int(got[-1]) == CHAR_TO_IX["\n"]
    assert [int(i) for i in got] == [int(i) for i in want]
    assert all(isinstance(i, np.integer) for i in got[:-1])
    assert_same_rng_state(rng_state(), want_state)


@pytest.mark.parametrize("newline", [0, 2], ids=["newline0", "newline2"])
@pytest.mark.parametrize("V", [7, 40], ids=["V7", "V40"])
def test_sample_other_vocabulary_sizes(V, newline):
    # the vocabulary size is read from by, as the course's sample does
    char_to_ix = {"\n": newline}
    for param_seed in range(3):
        p = sample_parameters(np.random.default_rng(30 + param_seed), V=V, n_a=N_A)
        p["by"][newline] += 1.0
        for seed in (0, 11):
            want = ref.sample(p, char_to_ix, seed)
            want_state = rng_state()
            got = dinos.sample(p, char_to_ix, seed)
            assert [int(i) for i in got] == [int(i) for i in want]
            assert int(got[-1]) == newline
            assert_same_rng_state(rng_state(), want_state)


# ----------------------------------------------------------------------------------
# optimize
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scale", [0.1, 3.0], ids=["small_gradients", "clipped_gradients"])
def test_optimize_equals_the_reference(scale):
    rng = np.random.default_rng(40)
    p = parameters(rng, 27, scale=scale)
    X, Y = sequence(rng, 27, 12)
    a_prev = rng.standard_normal((N_A, 1))
    p_ref = copy.deepcopy(p)
    arrays = dict(p)
    unclipped, _ = ref.rnn_backward(X, Y, p, ref.rnn_forward(X, Y, a_prev, p)[1])

    loss, gradients, a_last = dinos.optimize(X, Y, a_prev, p, learning_rate=0.05)
    want_loss, want_gradients, want_a_last = ref.optimize(X, Y, a_prev, p_ref, learning_rate=0.05)

    assert_close(loss, want_loss)
    assert list(gradients) == CLIP_KEYS
    assert_dicts_close(gradients, want_gradients)
    assert_close(a_last, want_a_last)
    assert a_last.shape == (N_A, 1)
    assert list(p) == DINOS_PARAM_KEYS
    for k in DINOS_PARAM_KEYS:
        assert p[k] is arrays[k]  # updated in place, the same arrays
        assert_close(p[k], p_ref[k], err_msg=k)
        assert np.abs(gradients["d" + k]).max() <= 5
    if scale > 1:  # the clipping mattered
        assert max(np.abs(unclipped["d" + k]).max() for k in DINOS_PARAM_KEYS) > 5
        assert max(np.abs(gradients["d" + k]).max() for k in DINOS_PARAM_KEYS) == 5


@pytest.mark.parametrize("V", [7, 40], ids=["V7", "V40"])
def test_optimize_other_vocabulary_sizes(V):
    # the course's optimize only works for V = 27; rnnx reads V from the parameters
    rng = np.random.default_rng(41)
    p = parameters(rng, V, scale=1.0)
    X, Y = sequence(rng, V, 8)
    a_prev = rng.standard_normal((N_A, 1))
    p_ref = copy.deepcopy(p)

    want_loss, cache = ref.rnn_forward(X, Y, a_prev, p_ref, vocab_size=V)
    unclipped, a = ref.rnn_backward(X, Y, p_ref, cache)
    want_gradients = ref.clip(unclipped, 5)
    ref.update_parameters(p_ref, want_gradients, 0.02)

    loss, gradients, a_last = dinos.optimize(X, Y, a_prev, p, 0.02)
    assert_close(loss, want_loss)
    assert_dicts_close(gradients, want_gradients)
    assert_close(a_last, a[len(X) - 1])
    for k in DINOS_PARAM_KEYS:
        assert_close(p[k], p_ref[k], err_msg=k)


# ----------------------------------------------------------------------------------
# model
# ----------------------------------------------------------------------------------


def test_model_verbose_prints_as_the_reference():
    names = ["abc ", "de", "fgh\n", "ij"]  # stripped: ' ' and '\n' are not in any example

    def run(impl):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            result = impl.model(names, IX_TO_CHAR, CHAR_TO_IX, 6, n_a=6, dino_names=3,
                                verbose=True)
        return out.getvalue(), result, rng_state()

    want_text, (want_p, want_last), want_state = run(ref)
    text, (p, last), state = run(dinos)
    j_lines = [line for line in text.split("\n") if line.startswith("j = ")]
    assert j_lines == ["j =  0 idx =  0", "j =  3 idx =  3", "j =  4 idx =  0"]
    assert "X = [None, " in text and "Y = [" in text
    assert text == want_text
    assert last == want_last and last.endswith("\n")
    assert list(p) == DINOS_PARAM_KEYS
    for k in DINOS_PARAM_KEYS:
        assert_close(p[k], want_p[k], err_msg=k)
    assert_same_rng_state(state, want_state)


def test_model_without_verbose_prints_no_j_lines():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        dinos.model(["ab", "cd"], IX_TO_CHAR, CHAR_TO_IX, 3, n_a=4, dino_names=1)
    assert "j = " not in out.getvalue() and out.getvalue().startswith("Iteration: 0, Loss: ")
