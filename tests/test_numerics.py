"""Numerical edge cases: huge logits and pre-activations, infinite gradients.

Softmax and the cross-entropy stay finite and exact for logits of +-1e4; sigmoid and
tanh saturate to their limits (never NaN) for pre-activations of +-1e4 in float32 and
float64, forward and backward; gradient clipping copes with infinite and overflowing
gradients. pytest turns warnings into errors, so an overflow warning fails here too.
"""

import numpy as np
import pytest

import rnnx
from rnnx import dinos, heads, kernels, optim

DTYPES = [np.float32, np.float64]
BIG = 1e4


def stable_log_softmax(z):
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def huge_logits(dtype):
    # every column mixes +1e4, -1e4 and ordinary values; one row is all -1e4
    z = np.array([[BIG, -BIG, 0.0, 1.0], [-BIG, -BIG, -BIG, -BIG], [3.0, BIG, BIG, -2.0]])
    return z.astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    z = huge_logits(dtype)
    targets = np.array([1, 0, 3])
    loss, probs = heads.softmax_cross_entropy(z, targets)
    logp = stable_log_softmax(z)
    assert np.isfinite(loss) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(loss, -logp[np.arange(3), targets].sum(), rtol=1e-5)
    np.testing.assert_allclose(probs, np.exp(logp), rtol=1e-5, atol=1e-30)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, rtol=1e-6)
    grad = heads.softmax_cross_entropy_backward(probs, targets)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad.sum(axis=-1), 0.0, atol=1e-6)


@pytest.mark.parametrize("softmax", [rnnx.softmax, dinos.softmax], ids=["course", "dinos"])
def test_course_softmax_is_stable_for_huge_logits(softmax):
    z = huge_logits(np.float64).T  # classes on axis 0, as the course has them
    p = softmax(z)
    assert np.all(np.isfinite(p))
    np.testing.assert_allclose(p.sum(axis=0), 1.0)
    np.testing.assert_allclose(p, np.exp(stable_log_softmax(z.T)).T, atol=1e-300)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_course_sigmoid_saturates(dtype):
    s = rnnx.sigmoid(np.array([-BIG, -100.0, 0.0, 100.0, BIG], dtype=dtype))
    assert np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5


def saturating_inputs(dtype, G, T=3, B=4, D=2, H=3):
    """x of +-1e4 with unit input weights: every pre-activation is about +-1e4."""
    sign = np.where(np.arange(T * B).reshape(T, B, 1) % 2, 1.0, -1.0)
    x = np.broadcast_to(sign * BIG, (T, B, D)).astype(dtype)
    w_ih = (np.ones((G * H, D)) * np.where(np.arange(G * H) % 2, 1, -1)[:, None]).astype(dtype)
    w_hh = np.full((G * H, H), 0.5, dtype)
    h0 = np.zeros((B, H), dtype)
    return x, h0, w_ih, w_hh


def all_finite(*arrays):
    return all(np.all(np.isfinite(a)) for a in arrays if a is not None)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_saturates_without_nan(dtype, nonlinearity):
    x, h0, w_ih, w_hh = saturating_inputs(dtype, 1)
    h = kernels.rnn_forward(x, h0, w_ih, w_hh, nonlinearity=nonlinearity)
    assert all_finite(h)
    if nonlinearity == "tanh":
        assert np.all(np.abs(h) <= 1) and np.any(np.abs(h) == 1)
    grads = kernels.rnn_backward(np.ones_like(h), x, h0, h, w_ih, w_hh, nonlinearity=nonlinearity)
    assert all_finite(*grads)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_lstm_gates_saturate_without_nan(dtype):
    x, h0, w_ih, w_hh = saturating_inputs(dtype, 4)
    h, c, gates = kernels.lstm_forward(x, h0, h0, w_ih, w_hh)
    assert all_finite(h, c, gates)
    assert np.all((gates >= -1) & (gates <= 1))
    assert np.any(gates == 0) and np.any(gates == 1)  # sigmoid(-1e4) = 0, sigmoid(1e4) = 1
    grads = kernels.lstm_backward(np.ones_like(h), x, h0, h0, h, c, gates, w_ih, w_hh)
    assert all_finite(*grads)


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
@pytest.mark.parametrize("reset_after", [True, False])
def test_gru_gates_saturate_without_nan(dtype, reset_after):
    x, h0, w_ih, w_hh = saturating_inputs(dtype, 3)
    h, gates, aux = kernels.gru_forward(x, h0, w_ih, w_hh, reset_after=reset_after)
    assert all_finite(h, gates, aux)
    grads = kernels.gru_backward(np.ones_like(h), x, h0, h, gates, aux, w_ih, w_hh,
                                 reset_after=reset_after)
    assert all_finite(*grads)


def test_course_cells_saturate_without_nan():
    rng = np.random.default_rng(0)
    n_x, n_a, n_y, m = 3, 4, 2, 5
    xt = np.where(rng.random((n_x, m)) < 0.5, -BIG, BIG)
    a0 = np.zeros((n_a, m))
    p = {"Waa": np.ones((n_a, n_a)), "Wax": np.ones((n_a, n_x)), "Wya": np.ones((n_y, n_a)) * BIG,
         "ba": np.zeros((n_a, 1)), "by": np.zeros((n_y, 1))}
    a, y, cache = rnnx.rnn_cell_forward(xt, a0, p)
    assert all_finite(a, y)
    assert all_finite(*rnnx.rnn_cell_backward(np.ones_like(a), cache).values())
    lp = {f"W{g}": np.ones((n_a, n_a + n_x)) for g in "fico"}
    lp.update({f"b{g}": np.zeros((n_a, 1)) for g in "fico"}, Wy=np.ones((n_y, n_a)) * BIG,
              by=np.zeros((n_y, 1)))
    a, c, y, cache = rnnx.lstm_cell_forward(xt, a0, a0, lp)
    assert all_finite(a, c, y)
    assert all_finite(*rnnx.lstm_cell_backward(np.ones_like(a), np.ones_like(a), cache).values())


@pytest.mark.parametrize("dtype", DTYPES, ids=["float32", "float64"])
def test_clip_by_value_maps_infinity_to_the_bound(dtype):
    g = {"w": np.array([np.inf, -np.inf, 3.0, -0.5], dtype)}
    optim.clip_by_value(g, 1.0)
    np.testing.assert_array_equal(g["w"], np.array([1.0, -1.0, 1.0, -0.5], dtype))


def test_course_clip_maps_infinity_to_the_bound():
    keys = ["dWaa", "dWax", "dWya", "db", "dby"]
    g = {k: np.array([[np.inf, -np.inf, 2.0]]) for k in keys}
    out = dinos.clip(g, 5)
    for k in keys:
        np.testing.assert_array_equal(out[k], [[5.0, -5.0, 2.0]])


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_clip_by_global_norm_reports_non_finite_and_leaves_gradients(bad):
    g = {"a": np.array([1.0, bad]), "b": np.ones(3, np.float32)}
    before = {k: v.copy() for k, v in g.items()}
    norm = optim.clip_by_global_norm(g, 1.0)
    assert np.isinf(norm) if np.isinf(bad) else np.isnan(norm)
    for k in g:
        np.testing.assert_array_equal(g[k], before[k])


@pytest.mark.parametrize("value", [1e200, 1e308])
def test_clip_by_global_norm_clips_gradients_whose_squares_overflow(value):
    g = {"a": np.full(3, value), "b": np.full(2, -value / 2)}
    norm = optim.clip_by_global_norm(g, 1.0)
    assert norm > 1e199
    total = np.sqrt(sum(float(np.sum(v ** 2)) for v in g.values()))
    np.testing.assert_allclose(total, 1.0, rtol=1e-9)
    assert np.all(g["a"] > 0) and np.all(g["b"] < 0)
