"""Peephole LSTM: the C++ kernel against the NumPy reference, gradient checks, the layer."""

import numpy as np
import pytest

import rnnx
from rnnx.reference import kernels as ref

T, B, D, H = 4, 3, 2, 5
LENGTHS = np.array([2, 4, 1])


def make(dtype=np.float64, seed=5):
    rng = np.random.default_rng(seed)
    a = {
        "x": rng.standard_normal((T, B, D)), "h0": rng.standard_normal((B, H)),
        "c0": rng.standard_normal((B, H)), "w_ih": rng.standard_normal((4 * H, D)) * 0.5,
        "w_hh": rng.standard_normal((4 * H, H)) * 0.5, "b": rng.standard_normal(4 * H) * 0.1,
        "peephole": rng.standard_normal(3 * H) * 0.5, "dh": rng.standard_normal((T, B, H)),
        "dh_n": rng.standard_normal((B, H)), "dc_n": rng.standard_normal((B, H)),
    }
    return {k: v.astype(dtype) for k, v in a.items()}


def forward(impl, a, lengths=None):
    kw = {} if lengths is None else {"lengths": lengths}
    return impl.lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b"],
                             peephole=a["peephole"], **kw)


def backward(impl, a, out, lengths=None):
    h, c, gates = out
    kw = {} if lengths is None else {"lengths": lengths}
    return impl.lstm_backward(a["dh"], a["x"], a["h0"], a["c0"], h, c, gates, a["w_ih"],
                              a["w_hh"], a["dh_n"], a["dc_n"], peephole=a["peephole"], **kw)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
def test_kernel_matches_reference(dtype):
    a = make(dtype)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == np.float64 else dict(rtol=2e-5, atol=2e-5)
    want, got = forward(ref, a), forward(rnnx.kernels, a)
    for w, g in zip(want, got):
        assert g.dtype == dtype
        np.testing.assert_allclose(g, w, **tol)
    gw, gg = backward(ref, a, want), backward(rnnx.kernels, a, got)
    assert len(gg) == 7  # dpeephole comes last
    for w, g in zip(gw, gg):
        np.testing.assert_allclose(g, w, **tol)


def test_without_peephole_there_is_no_seventh_result():
    a = make()
    h, c, gates = rnnx.kernels.lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b"])
    out = rnnx.kernels.lstm_backward(a["dh"], a["x"], a["h0"], a["c0"], h, c, gates, a["w_ih"],
                                     a["w_hh"])
    assert len(out) == 6


def test_peephole_changes_the_result():
    a = make()
    h_peep = forward(rnnx.kernels, a)[0]
    a["peephole"] = np.zeros_like(a["peephole"])
    h_zero = forward(rnnx.kernels, a)[0]
    plain = rnnx.kernels.lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b"])[0]
    np.testing.assert_array_equal(h_zero, plain)
    assert np.abs(h_peep - plain).max() > 1e-3


@pytest.mark.parametrize("lengths", [None, LENGTHS], ids=["full", "lengths"])
def test_kernel_gradients_by_central_differences(lengths):
    a = make()
    if lengths is not None:  # dh at padded steps is not a gradient of any output
        a["dh"] = a["dh"] * (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
    names = ["x", "h0", "c0", "w_ih", "w_hh", "b", "peephole"]

    def loss():
        h, c, _ = forward(rnnx.kernels, a, lengths)
        return float((h * a["dh"]).sum() + (h[-1] * a["dh_n"]).sum() + (c[-1] * a["dc_n"]).sum())

    grads = backward(rnnx.kernels, a, forward(rnnx.kernels, a, lengths), lengths)
    analytic = dict(zip(["x", "h0", "c0", "w_ih", "w_hh", "b", "peephole"], grads))
    for name in names:
        p = a[name]
        num = np.zeros_like(p)
        for idx in np.ndindex(p.shape):
            old = p[idx]
            p[idx] = old + 1e-6
            up = loss()
            p[idx] = old - 1e-6
            down = loss()
            p[idx] = old
            num[idx] = (up - down) / 2e-6
        np.testing.assert_allclose(analytic[name], num, rtol=1e-6, atol=1e-8, err_msg=name)


def test_bad_peephole_shape_is_named():
    a = make()
    a["peephole"] = a["peephole"][:-1]
    with pytest.raises(ValueError, match="peephole"):
        forward(rnnx.kernels, a)


def test_layer_with_peepholes():
    layer = rnnx.LSTM(D, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=3,
                      peephole=True)
    sd = layer.state_dict()
    for key in ("weight_peephole_l0", "weight_peephole_l0_reverse", "weight_peephole_l1",
                "weight_peephole_l1_reverse"):
        assert sd[key].shape == (3 * H,)
    rng = np.random.default_rng(9)
    x = rng.standard_normal((T, B, D))
    dy = rng.standard_normal((T, B, 2 * H)) * (np.arange(T)[:, None] < LENGTHS[None, :])[:, :, None]
    y, state, cache = layer.forward(x, lengths=LENGTHS)
    dx, _, grads = layer.backward(dy, cache)
    key = "weight_peephole_l0_reverse"
    p = sd[key]
    num = np.zeros_like(p)
    for j in range(p.size):
        old = p[j]
        p[j] = old + 1e-6
        up = float((layer.forward(x, lengths=LENGTHS)[0] * dy).sum())
        p[j] = old - 1e-6
        down = float((layer.forward(x, lengths=LENGTHS)[0] * dy).sum())
        p[j] = old
        num[j] = (up - down) / 2e-6
    np.testing.assert_allclose(grads[key], num, rtol=1e-6, atol=1e-8)
    plain = rnnx.LSTM(D, H, num_layers=2, bidirectional=True, dtype=np.float64, seed=3)
    assert not any(k.startswith("weight_peephole") for k in plain.state_dict())
