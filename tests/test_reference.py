"""Tests of the plain-NumPy reference (``rnnx.reference``) on its own.

* the published course values (seeded recipes in ``course-published-values.json``);
* the published ``model()`` progress listing through iteration 12000;
* central-difference gradient checks of every backward function;
* the course functions agree with the time-major kernels after layout conversion;
* the side effects the course relies on (in-place updates, global RNG, printing).

Sizes are tiny and all different (T=3, B=2, D=4, H=5, ...) so that a swapped index
cannot pass.  Test data comes from ``np.random.default_rng``; the global RNG is used
only where the course functions themselves use it.
"""

import contextlib
import io
import pathlib
import sys
import types

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import recipes  # noqa: E402
from helpers import (  # noqa: E402
    DATA,
    LSTM_PARAM_GRAD_KEYS,
    NY,
    RECIPES,
    RNN_GRAD_KEYS,
    RNN_SEQ_GRAD_KEYS,
    TARGET_IDS,
    B,
    D,
    H,
    T,
    assert_gradients,
    five_gradients,
    lstm_params,
    read_dinos,
    rnn_kernel_inputs,
    rnn_params,
    sample_parameters,
)

import rnnx  # noqa: E402
from rnnx.reference import course, dinos, kernels  # noqa: E402

# The course's backward functions are gradient-checked in the NumPy reference and in
# rnnx's C++ drop-in alike.
IMPLS = [course, rnnx]
IMPL_IDS = ["reference", "rnnx"]

LSTM_2018_ID = "lstm_backward/notebook_2018_published"


# ----------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------


def course_lstm_to_kernel(p, n_a):
    """Course LSTM weights -> (w_ih, w_hh, b) stacked in PyTorch's i, f, g, o order.

    Course ``W* (n_a, n_a + n_x)`` acts on ``[a_prev; x]``: its first ``n_a`` columns
    are the recurrent weights, the rest the input weights.  Course ``c`` is ``g``.
    """
    order = ["i", "f", "c", "o"]
    w_ih = np.concatenate([p["W" + k][:, n_a:] for k in order])
    w_hh = np.concatenate([p["W" + k][:, :n_a] for k in order])
    b = np.concatenate([p["b" + k][:, 0] for k in order])
    return w_ih, w_hh, b


def to_time_major(a):
    """Course ``(n, m, T)`` <-> time-major ``(T, m, n)`` (its own inverse)."""
    return a.transpose(2, 1, 0)


# ----------------------------------------------------------------------------------
# published values
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("recipe_id", TARGET_IDS)
def test_published_recipe(recipe_id):
    recipe = RECIPES[recipe_id]
    ns = recipes.replay(recipe, sbs=course, dinos=dinos)
    recipes.check(recipe, ns)


def test_recipe_selection():
    # the non-target recipe is exactly the buggy 2018 lstm_backward one
    assert [rid for rid, r in RECIPES.items() if not r["target"]] == [LSTM_2018_ID]


def test_2018_lstm_backward_values_come_from_the_buggy_solution():
    recipe = RECIPES[LSTM_2018_ID]
    ns = recipes.replay(recipe, sbs=course, dinos=dinos)
    recipes.check(recipe, ns)


def test_2018_lstm_backward_values_differ_from_the_correct_gradient():
    recipe = RECIPES[LSTM_2018_ID]
    correct = types.SimpleNamespace(
        lstm_forward=course.lstm_forward,
        lstm_backward_2018_published=course.lstm_backward,
    )
    ns = recipes.replay(recipe, sbs=correct, dinos=dinos)
    with pytest.raises(AssertionError, match="10 of 10 expectations failed"):
        recipes.check(recipe, ns)


def test_model_listing_matches_published_2018_v3():
    data, char_to_ix, ix_to_char = read_dinos()
    assert len(data) == DATA["dinos_txt"]["size"]
    assert len(data.split("\n")) == DATA["dinos_txt"]["lines"]

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        parameters, last_name = dinos.model(
            data.split("\n"), ix_to_char, char_to_ix, 12001, verbose=False
        )
    listing = recipes.parse_model_listing(out.getvalue())

    assert sorted(listing) == list(range(0, 12001, 1000))
    robust = DATA["model"]["robust_max_iteration"]
    published = DATA["model"]["listing_2018_v3"]
    for it in range(0, robust + 1, 2000):
        loss, names = published[str(it)]
        assert listing[it] == (loss, names), f"iteration {it}"
    assert last_name == listing[12000][1][-1] + "\n"
    assert list(parameters) == ["Wax", "Waa", "Wya", "b", "by"]


def test_parse_model_listing_reads_blocks_and_skips_other_lines():
    text = (
        "j =  0 idx =  0\n"
        "Iteration: 0, Loss: 23.087336\n\n" + "A\n\nC\n" + "\n\n"
        "Iteration: 1000, Loss: 1.500000\n\n" + "D\nE\nF\n" + "\n\n"
    )
    assert recipes.parse_model_listing(text, dino_names=3) == {
        0: ("23.087336", ["A", "", "C"]),
        1000: ("1.500000", ["D", "E", "F"]),
    }
    with pytest.raises(ValueError, match="iteration 0"):
        recipes.parse_model_listing("Iteration: 0, Loss: 1.0\n\nA\n", dino_names=3)


# ----------------------------------------------------------------------------------
# course functions: structure
# ----------------------------------------------------------------------------------


def test_course_rnn_caches_and_keys():
    rng = np.random.default_rng(1)
    p = rnn_params(rng)
    x = rng.standard_normal((D, B, T))
    a0 = rng.standard_normal((H, B))
    a, y, caches = course.rnn_forward(x, a0, p)
    assert a.shape == (H, B, T) and y.shape == (NY, B, T)
    cells, x_cached = caches
    assert x_cached is x and len(cells) == T
    a_next, a_prev, xt, params = cells[1]
    assert params is p
    np.testing.assert_array_equal(a_next, a[:, :, 1])
    np.testing.assert_array_equal(a_prev, a[:, :, 0])
    np.testing.assert_array_equal(xt, x[:, :, 1])
    np.testing.assert_allclose(y.sum(axis=0), 1.0, rtol=0, atol=1e-12)

    g = course.rnn_backward(rng.standard_normal((H, B, T)), caches)
    assert list(g) == RNN_SEQ_GRAD_KEYS
    assert list(course.rnn_cell_backward(a_next, cells[1])) == RNN_GRAD_KEYS


def test_course_lstm_caches_and_keys():
    rng = np.random.default_rng(2)
    p = lstm_params(rng)
    x = rng.standard_normal((D, B, T))
    a0 = rng.standard_normal((H, B))
    a, y, c, caches = course.lstm_forward(x, a0, p)
    assert a.shape == c.shape == (H, B, T) and y.shape == (NY, B, T)
    cells, x_cached = caches
    assert x_cached is x and len(cells) == T
    a1, c1, a_prev, c_prev, ft, it, cct, ot, xt, params = cells[1]
    assert params is p
    np.testing.assert_array_equal(a1, a[:, :, 1])
    np.testing.assert_array_equal(c1, c[:, :, 1])
    np.testing.assert_array_equal(a_prev, a[:, :, 0])
    np.testing.assert_array_equal(c_prev, c[:, :, 0])
    np.testing.assert_array_equal(xt, x[:, :, 1])
    np.testing.assert_array_equal(cells[0][3], np.zeros((H, B)))  # c0 = 0
    np.testing.assert_allclose(c1, ft * c_prev + it * cct, rtol=1e-14)
    np.testing.assert_allclose(a1, ot * np.tanh(c1), rtol=1e-14)

    g = course.lstm_backward(rng.standard_normal((H, B, T)), caches)
    assert list(g) == ["dx", "da0"] + LSTM_PARAM_GRAD_KEYS
    cell_keys = list(course.lstm_cell_backward(a1, c1, cells[1]))
    assert cell_keys == ["dxt", "da_prev", "dc_prev"] + LSTM_PARAM_GRAD_KEYS


def test_course_softmax_uses_the_global_max():
    x = np.array([[0.0, -800.0], [1.0, -799.0]])
    with np.errstate(invalid="ignore"):
        s = course.softmax(x)
    np.testing.assert_allclose(s[:, 0], [1 / (1 + np.e), np.e / (1 + np.e)])
    assert np.isnan(s[:, 1]).all()  # 0/0 in the column far below the global max


# ----------------------------------------------------------------------------------
# course functions: gradient checks (of the reference and of rnnx's drop-in)
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_rnn_cell_backward_gradients(impl):
    rng = np.random.default_rng(10)
    p = rnn_params(rng)
    xt = rng.standard_normal((D, B))
    a_prev = rng.standard_normal((H, B))
    da_next = rng.standard_normal((H, B))

    def loss():
        return np.sum(da_next * impl.rnn_cell_forward(xt, a_prev, p)[0])

    g = impl.rnn_cell_backward(da_next, impl.rnn_cell_forward(xt, a_prev, p)[2])
    assert_gradients(
        loss,
        {"dxt": xt, "da_prev": a_prev, "dWax": p["Wax"], "dWaa": p["Waa"], "dba": p["ba"]},
        g,
    )


@pytest.mark.parametrize("steps", [T, T - 1], ids=["da_all_steps", "da_shorter"])
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_rnn_backward_gradients(steps, impl):
    # T is read from da.shape: a shorter da uses the first `steps` caches only
    rng = np.random.default_rng(11)
    p = rnn_params(rng)
    x = rng.standard_normal((D, B, T))
    a0 = rng.standard_normal((H, B))
    da = rng.standard_normal((H, B, steps))

    def loss():
        return np.sum(da * impl.rnn_forward(x, a0, p)[0][:, :, :steps])

    g = impl.rnn_backward(da, impl.rnn_forward(x, a0, p)[2])
    assert g["dx"].shape == (D, B, steps)
    dx_full = np.zeros((D, B, T))
    dx_full[:, :, :steps] = g["dx"]
    analytic = dict(g, dx=dx_full)
    assert_gradients(
        loss,
        {"dx": x, "da0": a0, "dWax": p["Wax"], "dWaa": p["Waa"], "dba": p["ba"]},
        analytic,
    )


@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_lstm_cell_backward_gradients(impl):
    rng = np.random.default_rng(12)
    p = lstm_params(rng)
    xt = rng.standard_normal((D, B))
    a_prev = rng.standard_normal((H, B))
    c_prev = rng.standard_normal((H, B))
    da_next = rng.standard_normal((H, B))
    dc_next = rng.standard_normal((H, B))

    def loss():
        a_next, c_next, _, _ = impl.lstm_cell_forward(xt, a_prev, c_prev, p)
        return np.sum(da_next * a_next) + np.sum(dc_next * c_next)

    cache = impl.lstm_cell_forward(xt, a_prev, c_prev, p)[3]
    g = impl.lstm_cell_backward(da_next, dc_next, cache)
    inputs = {"dxt": xt, "da_prev": a_prev, "dc_prev": c_prev}
    inputs.update({k: p[k[1:]] for k in LSTM_PARAM_GRAD_KEYS})
    assert_gradients(loss, inputs, g)


@pytest.mark.parametrize("steps", [T, T - 1], ids=["da_all_steps", "da_shorter"])
@pytest.mark.parametrize("impl", IMPLS, ids=IMPL_IDS)
def test_lstm_backward_gradients(steps, impl):
    rng = np.random.default_rng(13)
    p = lstm_params(rng)
    x = rng.standard_normal((D, B, T))
    a0 = rng.standard_normal((H, B))
    da = rng.standard_normal((H, B, steps))

    def loss():
        return np.sum(da * impl.lstm_forward(x, a0, p)[0][:, :, :steps])

    g = impl.lstm_backward(da, impl.lstm_forward(x, a0, p)[3])
    assert g["dx"].shape == (D, B, steps)
    dx_full = np.zeros((D, B, T))
    dx_full[:, :, :steps] = g["dx"]
    inputs = {"dx": x, "da0": a0}
    inputs.update({k: p[k[1:]] for k in LSTM_PARAM_GRAD_KEYS})
    assert_gradients(loss, inputs, dict(g, dx=dx_full))


def test_dinos_rnn_backward_gradients():
    rng = np.random.default_rng(14)
    V, n_a = 6, 5
    p = {
        "Wax": rng.standard_normal((n_a, V)) * 0.5,
        "Waa": rng.standard_normal((n_a, n_a)) * 0.5,
        "Wya": rng.standard_normal((V, n_a)) * 0.5,
        "b": rng.standard_normal((n_a, 1)) * 0.5,
        "by": rng.standard_normal((V, 1)) * 0.5,
    }
    a0 = rng.standard_normal((n_a, 1))
    X = [None, 3, 1, 4, 2]
    Y = [3, 1, 4, 2, 0]

    def loss():
        return dinos.rnn_forward(X, Y, a0, p, vocab_size=V)[0]

    cache = dinos.rnn_forward(X, Y, a0, p, vocab_size=V)[1]
    g, a = dinos.rnn_backward(X, Y, p, cache)
    assert list(g) == ["dWax", "dWaa", "dWya", "db", "dby", "da_next"]
    assert a is cache[1]
    # after the loop, da_next is the gradient with respect to a0
    assert_gradients(
        loss,
        {"dWax": p["Wax"], "dWaa": p["Waa"], "dWya": p["Wya"], "db": p["b"],
         "dby": p["by"], "da_next": a0},
        g,
    )


# ----------------------------------------------------------------------------------
# time-major kernels
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("final_grad", [False, True], ids=["no_dh_n", "dh_n"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_kernel_rnn_gradients(nonlinearity, final_grad):
    x, h0, w_ih, w_hh, b = rnn_kernel_inputs(20, nonlinearity)
    rng = np.random.default_rng(21)
    dh = rng.standard_normal((T, B, H))
    dh_n = rng.standard_normal((B, H)) if final_grad else None

    def loss():
        h = kernels.rnn_forward(x, h0, w_ih, w_hh, b, nonlinearity)
        extra = np.sum(dh_n * h[-1]) if final_grad else 0.0
        return np.sum(dh * h) + extra

    h = kernels.rnn_forward(x, h0, w_ih, w_hh, b, nonlinearity)
    dx, dh0, dw_ih, dw_hh, db = kernels.rnn_backward(
        dh, x, h0, h, w_ih, w_hh, nonlinearity, dh_n=dh_n
    )
    assert_gradients(
        loss,
        {"x": x, "h0": h0, "w_ih": w_ih, "w_hh": w_hh, "b": b},
        {"x": dx, "h0": dh0, "w_ih": dw_ih, "w_hh": dw_hh, "b": db},
    )


@pytest.mark.parametrize("final_grads", [False, True], ids=["no_dh_n_dc_n", "dh_n_dc_n"])
def test_kernel_lstm_gradients(final_grads):
    rng = np.random.default_rng(30)
    x = rng.standard_normal((T, B, D))
    h0 = rng.standard_normal((B, H))
    c0 = rng.standard_normal((B, H))
    w_ih = rng.standard_normal((4 * H, D)) * 0.5
    w_hh = rng.standard_normal((4 * H, H)) * 0.5
    b = rng.standard_normal(4 * H) * 0.5
    dh = rng.standard_normal((T, B, H))
    dh_n = rng.standard_normal((B, H)) if final_grads else None
    dc_n = rng.standard_normal((B, H)) if final_grads else None

    def loss():
        h, c, _ = kernels.lstm_forward(x, h0, c0, w_ih, w_hh, b)
        extra = np.sum(dh_n * h[-1]) + np.sum(dc_n * c[-1]) if final_grads else 0.0
        return np.sum(dh * h) + extra

    h, c, gates = kernels.lstm_forward(x, h0, c0, w_ih, w_hh, b)
    dx, dh0, dc0, dw_ih, dw_hh, db = kernels.lstm_backward(
        dh, x, h0, c0, h, c, gates, w_ih, w_hh, dh_n=dh_n, dc_n=dc_n
    )
    assert_gradients(
        loss,
        {"x": x, "h0": h0, "c0": c0, "w_ih": w_ih, "w_hh": w_hh, "b": b},
        {"x": dx, "h0": dh0, "c0": dc0, "w_ih": dw_ih, "w_hh": dw_hh, "b": db},
    )


def test_kernel_lstm_gates_are_activated_i_f_g_o():
    rng = np.random.default_rng(31)
    x = rng.standard_normal((T, B, D))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w_ih = rng.standard_normal((4 * H, D))
    w_hh = rng.standard_normal((4 * H, H))
    h, c, gates = kernels.lstm_forward(x, h0, c0, w_ih, w_hh)
    z0 = x[0] @ w_ih.T + h0 @ w_hh.T  # no bias
    sig = course.sigmoid
    expected = np.concatenate(
        (sig(z0[:, :H]), sig(z0[:, H : 2 * H]), np.tanh(z0[:, 2 * H : 3 * H]),
         sig(z0[:, 3 * H :])),
        axis=1,
    )
    np.testing.assert_allclose(gates[0], expected, rtol=1e-13)
    i, f, g, o = np.split(gates[1], 4, axis=1)
    np.testing.assert_allclose(c[1], f * c[0] + i * g, rtol=1e-13)
    np.testing.assert_allclose(h[1], o * np.tanh(c[1]), rtol=1e-13)


def test_kernel_bias_none_equals_zero_bias():
    rng = np.random.default_rng(32)
    x, h0, c0 = (rng.standard_normal(s) for s in [(T, B, D), (B, H), (B, H)])
    w_ih, w_hh = rng.standard_normal((H, D)), rng.standard_normal((H, H))
    np.testing.assert_array_equal(
        kernels.rnn_forward(x, h0, w_ih, w_hh, None),
        kernels.rnn_forward(x, h0, w_ih, w_hh, np.zeros(H)),
    )
    w4_ih, w4_hh = rng.standard_normal((4 * H, D)), rng.standard_normal((4 * H, H))
    for got, want in zip(
        kernels.lstm_forward(x, h0, c0, w4_ih, w4_hh, None),
        kernels.lstm_forward(x, h0, c0, w4_ih, w4_hh, np.zeros(4 * H)),
    ):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_kernel_float32_stays_float32(cell):
    rng = np.random.default_rng(33)
    G = 4 if cell == "lstm" else 1
    arrays64 = [
        rng.standard_normal((T, B, D)),  # x
        rng.standard_normal((B, H)),  # h0
        rng.standard_normal((B, H)),  # c0 (lstm only)
        rng.standard_normal((G * H, D)) * 0.5,  # w_ih
        rng.standard_normal((G * H, H)) * 0.5,  # w_hh
        rng.standard_normal(G * H) * 0.5,  # b
        rng.standard_normal((T, B, H)),  # dh
    ]

    def run(dtype):
        x, h0, c0, w_ih, w_hh, b, dh = (a.astype(dtype) for a in arrays64)
        if cell == "rnn":
            h = kernels.rnn_forward(x, h0, w_ih, w_hh, b)
            return (h,) + kernels.rnn_backward(dh, x, h0, h, w_ih, w_hh)
        h, c, gates = kernels.lstm_forward(x, h0, c0, w_ih, w_hh, b)
        return (h, c, gates) + kernels.lstm_backward(dh, x, h0, c0, h, c, gates, w_ih, w_hh)

    for got32, got64 in zip(run(np.float32), run(np.float64)):
        assert got32.dtype == np.float32
        np.testing.assert_allclose(got32, got64, rtol=1e-4, atol=1e-5)


def test_kernel_rejects_mixed_dtypes_and_bad_nonlinearity():
    x = np.zeros((T, B, D), dtype=np.float32)
    h0 = np.zeros((B, H))
    w_ih, w_hh = np.zeros((H, D), dtype=np.float32), np.zeros((H, H), dtype=np.float32)
    with pytest.raises(TypeError, match="h0 has dtype float64 but x has dtype float32"):
        kernels.rnn_forward(x, h0, w_ih, w_hh)
    with pytest.raises(ValueError, match="nonlinearity"):
        kernels.rnn_forward(x, h0.astype(np.float32), w_ih, w_hh, nonlinearity="sigmoid")


# ----------------------------------------------------------------------------------
# course functions == kernels after layout conversion
# ----------------------------------------------------------------------------------


def test_course_rnn_equals_kernel():
    rng = np.random.default_rng(40)
    p = rnn_params(rng)
    x = rng.standard_normal((D, B, T))
    a0 = rng.standard_normal((H, B))
    da = rng.standard_normal((H, B, T))

    a, _, caches = course.rnn_forward(x, a0, p)
    g = course.rnn_backward(da, caches)

    w_ih, w_hh, b = p["Wax"], p["Waa"], p["ba"][:, 0]
    x_tm, h0 = to_time_major(x), a0.T
    h = kernels.rnn_forward(x_tm, h0, w_ih, w_hh, b)
    dx, dh0, dw_ih, dw_hh, db = kernels.rnn_backward(to_time_major(da), x_tm, h0, h, w_ih, w_hh)

    tol = dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(to_time_major(h), a, **tol)
    np.testing.assert_allclose(to_time_major(dx), g["dx"], **tol)
    np.testing.assert_allclose(dh0.T, g["da0"], **tol)
    np.testing.assert_allclose(dw_ih, g["dWax"], **tol)
    np.testing.assert_allclose(dw_hh, g["dWaa"], **tol)
    np.testing.assert_allclose(db[:, None], g["dba"], **tol)


def test_course_lstm_equals_kernel():
    rng = np.random.default_rng(41)
    p = lstm_params(rng)
    x = rng.standard_normal((D, B, T))
    a0 = rng.standard_normal((H, B))
    da = rng.standard_normal((H, B, T))

    a, _, c, caches = course.lstm_forward(x, a0, p)
    g = course.lstm_backward(da, caches)

    w_ih, w_hh, b = course_lstm_to_kernel(p, H)
    x_tm, h0, c0 = to_time_major(x), a0.T, np.zeros((B, H))
    h, c_tm, gates = kernels.lstm_forward(x_tm, h0, c0, w_ih, w_hh, b)
    dx, dh0, _, dw_ih, dw_hh, db = kernels.lstm_backward(
        to_time_major(da), x_tm, h0, c0, h, c_tm, gates, w_ih, w_hh
    )

    tol = dict(rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(to_time_major(h), a, **tol)
    np.testing.assert_allclose(to_time_major(c_tm), c, **tol)
    np.testing.assert_allclose(to_time_major(dx), g["dx"], **tol)
    np.testing.assert_allclose(dh0.T, g["da0"], **tol)
    for k, gate in enumerate("ifco"):  # kernel blocks i, f, g, o = course i, f, c, o
        rows = slice(k * H, (k + 1) * H)
        dW = np.concatenate((dw_hh[rows], dw_ih[rows]), axis=1)  # [a_prev | x] columns
        np.testing.assert_allclose(dW, g["dW" + gate], **tol, err_msg=gate)
        np.testing.assert_allclose(db[rows, None], g["db" + gate], **tol, err_msg=gate)


# ----------------------------------------------------------------------------------
# Dinosaurus Island side effects
# ----------------------------------------------------------------------------------


def test_clip_returns_new_dict_and_leaves_input_alone():
    g = five_gradients(np.random.default_rng(50))
    before = {k: v.copy() for k, v in g.items()}
    clipped = dinos.clip(g, 5)
    assert list(clipped) == ["dWaa", "dWax", "dWya", "db", "dby"]
    for k, v in clipped.items():
        assert v is not g[k]
        np.testing.assert_array_equal(v, np.clip(before[k], -5, 5))
        np.testing.assert_array_equal(g[k], before[k])


def test_clip_inplace_is_the_2018_behaviour():
    g = five_gradients(np.random.default_rng(51))
    before = {k: v.copy() for k, v in g.items()}
    clipped = dinos.clip(g, 5, inplace=True)
    assert list(clipped) == ["dWaa", "dWax", "dWya", "db", "dby"]
    for k, v in clipped.items():
        assert v is g[k]
        np.testing.assert_array_equal(g[k], np.clip(before[k], -5, 5))
    np.testing.assert_array_equal(g["da_next"], before["da_next"])


def test_clip_needs_all_five_keys():
    g = five_gradients(np.random.default_rng(52))
    del g["db"]
    with pytest.raises(KeyError):
        dinos.clip(g, 5)


def test_update_parameters_is_in_place():
    rng = np.random.default_rng(53)
    p = {"Wax": rng.standard_normal((H, D)), "Waa": rng.standard_normal((H, H)),
         "Wya": rng.standard_normal((NY, H)), "b": rng.standard_normal((H, 1)),
         "by": rng.standard_normal((NY, 1))}
    g = {"d" + k: rng.standard_normal(v.shape) for k, v in p.items()}
    arrays = dict(p)
    before = {k: v.copy() for k, v in p.items()}
    assert dinos.update_parameters(p, g, 0.1) is p
    for k in p:
        assert p[k] is arrays[k]
        np.testing.assert_allclose(p[k], before[k] - 0.1 * g["d" + k], rtol=1e-15)


def test_initialize_parameters_reseeds_the_global_rng():
    np.random.seed(123)
    first = dinos.initialize_parameters(H, 7, 7)
    after_first = np.random.random()
    np.random.random(1000)
    second = dinos.initialize_parameters(H, 7, 7)
    assert list(first) == ["Wax", "Waa", "Wya", "b", "by"]
    for k in first:
        np.testing.assert_array_equal(first[k], second[k])
    assert np.random.random() == after_first
    np.random.seed(1)
    np.testing.assert_array_equal(first["Wax"], np.random.randn(H, 7) * 0.01)


def test_sample_leaves_global_rng_after_its_last_draw():
    char_to_ix = {"\n": 0}
    p = sample_parameters(np.random.default_rng(60), by0=3.0)  # newline likely early
    indices = dinos.sample(p, char_to_ix, 7)
    n = len(indices)
    assert 1 <= n < 50 and indices[-1] == 0 and 0 not in indices[:-1]
    next_value = np.random.random()
    # draw k reseeds with seed + 2k; the last one is k = n - 1
    np.random.seed(7 + 2 * (n - 1))
    np.random.choice(27, p=np.full(27, 1 / 27))  # one draw, whatever p
    assert np.random.random() == next_value
    # and the result does not depend on the global state beforehand
    np.random.seed(999)
    assert [int(i) for i in dinos.sample(p, char_to_ix, 7)] == [int(i) for i in indices]


def test_sample_caps_at_50_draws_and_appends_newline():
    p = sample_parameters(np.random.default_rng(61), by0=-1e3)  # newline never drawn
    indices = dinos.sample(p, {"\n": 0}, 0)
    assert len(indices) == 51
    assert indices[-1] == 0 and 0 not in indices[:-1]
    assert all(isinstance(i, np.integer) for i in indices[:-1])


def test_print_sample_and_get_sample():
    ix_to_char = {0: "\n", 1: "a", 2: "b"}
    assert dinos.get_sample([2, 1, 2, 0], ix_to_char) == "Bab\n"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        dinos.print_sample([2, 1, 2, 0], ix_to_char)
        dinos.print_sample([1, 0], ix_to_char)
    assert out.getvalue() == "Bab\nA\n"


def test_optimize_updates_in_place_and_drops_da_next():
    rng = np.random.default_rng(62)
    p = sample_parameters(rng, V=27, n_a=H)
    for k in p:
        p[k] *= 0.1
    arrays = dict(p)
    before = {k: v.copy() for k, v in p.items()}
    X, Y = [None, 3, 5, 1], [3, 5, 1, 0]
    a_prev = rng.standard_normal((H, 1))
    loss, grads, a_last = dinos.optimize(X, Y, a_prev, p, learning_rate=0.05)
    expected_loss, cache = dinos.rnn_forward(X, Y, a_prev, before)
    assert loss == expected_loss
    np.testing.assert_array_equal(a_last, cache[1][3])
    assert list(grads) == ["dWaa", "dWax", "dWya", "db", "dby"]
    for k in p:
        assert p[k] is arrays[k]
        np.testing.assert_allclose(p[k], before[k] - 0.05 * grads["d" + k], rtol=1e-15)


def test_model_verbose_and_return_value():
    char_to_ix = {ch: i for i, ch in enumerate("\nabcdefghijklmnopqrstuvwxyz")}
    ix_to_char = {i: ch for ch, i in char_to_ix.items()}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        params, last = dinos.model(
            ["abc ", "de\n"], ix_to_char, char_to_ix, 3, n_a=4, dino_names=2, verbose=True
        )  # names are stripped: ' ' and '\n' are not part of any example
    text = out.getvalue()
    # idx = j % len(examples); verbose reports j = 0, len - 1 and len
    j_lines = [line for line in text.split("\n") if line.startswith("j = ")]
    assert j_lines == ["j =  0 idx =  0", "j =  1 idx =  1", "j =  2 idx =  0"]
    listing = recipes.parse_model_listing(text, dino_names=2)
    assert list(listing) == [0]
    assert last.endswith("\n") and last.replace("\n", "") == listing[0][1][-1]
    assert params["Wax"].shape == (4, 27)
