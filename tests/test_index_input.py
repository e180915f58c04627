"""Index input: integer x of shape (T, B) stands for one-hot vectors, and the input
projection is a gather of columns of w_ih instead of a GEMM with a one-hot matrix.

Every kernel and layer is held against the same call with the one-hot array built by
hand: outputs, states and every gradient agree (dx is None for index input), for all
cell variants, float32 and float64, stacked, bidirectional and variable lengths.
"""

import numpy as np
import pytest

import rnnx
from rnnx import kernels

T, B, V, H = 6, 4, 7, 5
LENGTHS = np.array([4, 1, 6, 3])
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}

LAYERS = {
    "rnn_tanh": lambda **kw: rnnx.RNN(V, H, **kw),
    "rnn_relu": lambda **kw: rnnx.RNN(V, H, nonlinearity="relu", **kw),
    "gru": lambda **kw: rnnx.GRU(V, H, **kw),
    "gru_reset_before": lambda **kw: rnnx.GRU(V, H, reset_after=False, **kw),
    "gru_simplified": lambda **kw: rnnx.GRU(V, H, simplified=True, **kw),
    "lstm": lambda **kw: rnnx.LSTM(V, H, **kw),
    "lstm_peephole": lambda **kw: rnnx.LSTM(V, H, peephole=True, **kw),
}
CONFIGS = {"1-layer": dict(num_layers=1, bidirectional=False, lengths=None),
           "2-layer-bidir-lengths": dict(num_layers=2, bidirectional=True, lengths=LENGTHS)}


def ids_and_onehot(dtype, seed=0):
    ids = np.random.default_rng(seed).integers(0, V, size=(T, B))
    ids[0, 0], ids[1, 1] = 0, V - 1  # both ends of the range
    return ids, np.eye(V, dtype=dtype)[ids]


def close(got, want, dtype, what):
    if isinstance(want, tuple):
        for g, w in zip(got, want):
            close(g, w, dtype, what)
        return
    np.testing.assert_allclose(got, want, err_msg=what, **TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("config", CONFIGS, ids=list(CONFIGS))
@pytest.mark.parametrize("cell", LAYERS)
def test_layer_index_input_equals_one_hot(cell, config, dtype):
    cfg = CONFIGS[config]
    layer = LAYERS[cell](num_layers=cfg["num_layers"], bidirectional=cfg["bidirectional"],
                         dtype=dtype, seed=3)
    ids, onehot = ids_and_onehot(dtype)
    y1, s1, c1 = layer.forward(ids, lengths=cfg["lengths"])
    y2, s2, c2 = layer.forward(onehot, lengths=cfg["lengths"])
    close(y1, y2, dtype, "y")
    close(s1, s2, dtype, "state")
    dy = np.random.default_rng(1).standard_normal(y1.shape).astype(dtype)
    dx1, ds1, g1 = layer.backward(dy, c1)
    dx2, ds2, g2 = layer.backward(dy, c2)
    assert dx1 is None and dx2.shape == (T, B, V)
    close(ds1, ds2, dtype, "dstate0")
    assert list(g1) == list(g2)
    for k in g1:
        close(g1[k], g2[k], dtype, k)


KERNELS = {
    "rnn": (1, lambda x, h0, c0, wi, wh, b: kernels.rnn_forward(x, h0, wi, wh, b),
            lambda dh, x, h0, c0, out, wi, wh: kernels.rnn_backward(dh, x, h0, out, wi, wh)),
    "gru": (3, lambda x, h0, c0, wi, wh, b: kernels.gru_forward(x, h0, wi, wh, b, b),
            lambda dh, x, h0, c0, out, wi, wh: kernels.gru_backward(dh, x, h0, *out, wi, wh)),
    "lstm": (4, lambda x, h0, c0, wi, wh, b: kernels.lstm_forward(x, h0, c0, wi, wh, b),
             lambda dh, x, h0, c0, out, wi, wh: kernels.lstm_backward(dh, x, h0, c0, out[0],
                                                                      out[1], out[2], wi, wh)),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", KERNELS)
def test_kernel_index_input_equals_one_hot(name, dtype):
    G, fwd, bwd = KERNELS[name]
    rng = np.random.default_rng(2)
    wi, wh = (rng.standard_normal((G * H, n)).astype(dtype) for n in (V, H))
    b = rng.standard_normal(G * H).astype(dtype)
    h0, c0 = (rng.standard_normal((B, H)).astype(dtype) for _ in range(2))
    ids, onehot = ids_and_onehot(dtype, seed=5)
    for ids_dtype in (np.int64, np.int32, np.uint8):
        out1 = fwd(ids.astype(ids_dtype), h0, c0, wi, wh, b)
        out2 = fwd(onehot, h0, c0, wi, wh, b)
        close(out1, out2, dtype, f"{name} forward")
    dh = rng.standard_normal((T, B, H)).astype(dtype)
    g1 = bwd(dh, ids, h0, c0, out1, wi, wh)
    g2 = bwd(dh, onehot, h0, c0, out2, wi, wh)
    assert g1[0] is None and g2[0].shape == (T, B, V)
    close(tuple(g1[1:]), tuple(g2[1:]), dtype, f"{name} backward")


@pytest.mark.parametrize("bad, exc, match", [
    (np.full((T, B), V), ValueError, r"x\[0, 0\] = 7 is outside 0..input_size-1 = 0..6"),
    (np.full((T, B), -1), ValueError, r"outside 0..input_size-1"),
    (np.zeros((T, B, 1), dtype=np.int64), ValueError, r"index input\) must have shape \(T, B\)"),
    (np.zeros((0, B), dtype=np.int64), ValueError, r"shape \(T, B\)"),
    (np.zeros((T, B), dtype=bool), ValueError, r"x must have shape \(T, B, 7\)"),
])
def test_layer_rejects_bad_indices(bad, exc, match):
    with pytest.raises(exc, match=match):
        rnnx.LSTM(V, H, dtype=np.float64).forward(bad)


def test_kernel_rejects_bad_indices():
    wi, wh = np.zeros((H, V)), np.zeros((H, H))
    with pytest.raises(ValueError, match=r"x\[1, 2\] = 9 is outside 0..D-1 = 0..6"):
        ids = np.zeros((T, B), dtype=np.int64)
        ids[1, 2] = 9
        kernels.rnn_forward(ids, np.zeros((B, H)), wi, wh)
    with pytest.raises(ValueError, match=r"index input\) must have shape \(T, B\)"):
        kernels.rnn_forward(np.zeros((T,), dtype=np.int64), np.zeros((B, H)), wi, wh)


FORWARDS = {  # name: (gates per unit, forward(x, h0, c0, w_ih, w_hh, b, lengths))
    "rnn": (1, lambda x, h0, c0, wi, wh, b, n: kernels.rnn_forward(x, h0, wi, wh, b, lengths=n)),
    "gru": (3, lambda x, h0, c0, wi, wh, b, n: kernels.gru_forward(x, h0, wi, wh, b, b,
                                                                   lengths=n)),
    "gru_reset_before": (3, lambda x, h0, c0, wi, wh, b, n: kernels.gru_forward(
        x, h0, wi, wh, b, b, reset_after=False, lengths=n)),
    "gru_simplified": (2, lambda x, h0, c0, wi, wh, b, n: kernels.gru_forward(
        x, h0, wi, wh, b, b, simplified=True, lengths=n)),
    "lstm": (4, lambda x, h0, c0, wi, wh, b, n: kernels.lstm_forward(x, h0, c0, wi, wh, b,
                                                                     lengths=n)),
}


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("name", FORWARDS)
def test_kernel_index_input_forward_has_the_one_hot_bits(name, dtype, threads):
    """A one-hot row's projection is its column of w_ih plus the bias exactly (the other
    products are zeros), so the forward pass of index input, whose time loop gathers each
    step's columns as it goes, has the same bits as the one-hot one: states and gates.
    Hidden 130: three blocks of units, each gathering its own columns; hidden 16: one
    task; with and without lengths (padded steps)."""
    G, fwd = FORWARDS[name]
    batch = 5
    for hidden in (130, 16):
        rng = np.random.default_rng(hidden)
        wi = rng.standard_normal((G * hidden, V)).astype(dtype)
        wh = (rng.standard_normal((G * hidden, hidden)) * 0.1).astype(dtype)
        b = rng.standard_normal(G * hidden).astype(dtype)
        h0, c0 = (rng.standard_normal((batch, hidden)).astype(dtype) for _ in range(2))
        ids = rng.integers(0, V, size=(T, batch))
        onehot = np.eye(V, dtype=dtype)[ids]
        for lengths in (None, np.array([6, 2, 5, 1, 6])):
            saved = rnnx.get_num_threads()
            try:
                rnnx.set_num_threads(threads)
                got = fwd(ids, h0, c0, wi, wh, b, lengths)
                want = fwd(onehot, h0, c0, wi, wh, b, lengths)
            finally:
                rnnx.set_num_threads(saved)
            got, want = (got, want) if isinstance(got, tuple) else ((got,), (want,))
            for i, (g, w) in enumerate(zip(got, want)):
                np.testing.assert_array_equal(g, w, err_msg=f"{name} {hidden} output {i}")


@pytest.mark.parametrize("name", KERNELS)
def test_kernel_index_input_gradients_do_not_depend_on_the_thread_count(name):
    """dW_ih's scatter-add is split into as many blocks of columns as there are threads:
    every column is still summed over the rows in order, so the same bits on 1 and 3
    threads (hidden 130: 130 to 520 gate columns, one block or three)."""
    G, fwd, bwd = KERNELS[name]
    hidden, batch = 130, 5
    rng = np.random.default_rng(11)
    wi = rng.standard_normal((G * hidden, V)).astype(np.float32)
    wh = (rng.standard_normal((G * hidden, hidden)) * 0.1).astype(np.float32)
    b = rng.standard_normal(G * hidden).astype(np.float32)
    h0, c0 = (rng.standard_normal((batch, hidden)).astype(np.float32) for _ in range(2))
    ids = rng.integers(0, V, size=(T, batch))
    dh = rng.standard_normal((T, batch, hidden)).astype(np.float32)
    saved, results = rnnx.get_num_threads(), []
    try:
        for threads in (1, 3):
            rnnx.set_num_threads(threads)
            out = fwd(ids, h0, c0, wi, wh, b)
            results.append(bwd(dh, ids, h0, c0, out, wi, wh))
    finally:
        rnnx.set_num_threads(saved)
    assert results[0][0] is None and results[1][0] is None
    for i, (one, three) in enumerate(zip(results[0][1:], results[1][1:])):
        np.testing.assert_array_equal(three, one, err_msg=f"{name} gradient {i + 1}")
