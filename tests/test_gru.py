"""The GRU: the NumPy reference and the C++ kernels (``rnnx.kernels.gru_*``).

Three variants: ``reset_after`` (PyTorch's and cuDNN's GRU), ``reset_before`` (Cho et
al.'s and the course's: the reset gate multiplies ``h_{t-1}`` before ``W_hn``) and
``simplified`` (update gate only, gate order z, n).

* reference: central-difference checks of every gradient (with and without ``dh``,
  ``dh_n`` and biases), the forward pass against the equations written one gate at a
  time, relations between the variants, and PyTorch's ``nn.GRU`` (when installed);
* C++ against the reference: float64 to rtol 1e-12, float32 to ~1e-5 with float32
  outputs, B = 1, T = 1, odd sizes, ``dh=None``, ``dh_n``; central-difference checks
  of the C++ backward; bad input raises an exception that names the argument;
  results that do not depend on the thread count; the portable build
  (``RNNX_ISA=generic``) in a fresh interpreter; saturated gates stay finite.

Sizes are tiny and all different (T=3, B=2, D=4, H=5: ``G*H`` = 15 or 10 rows).
"""

import pathlib
import sys
import textwrap

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import B, D, H, T, assert_close, assert_gradients, run_python  # noqa: E402

import rnnx  # noqa: E402
from rnnx import kernels  # noqa: E402
from rnnx.reference import kernels as ref  # noqa: E402

VARIANTS = {
    "reset_after": {"reset_after": True, "simplified": False},
    "reset_before": {"reset_after": False, "simplified": False},
    "simplified": {"reset_after": True, "simplified": True},
}
DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]
UPSTREAMS = {"dh": ("dh",), "dh_n": ("dh_n",), "dh_and_dh_n": ("dh", "dh_n")}
OUTPUT_NAMES = ["h", "gates", "aux", "dx", "dh0", "dw_ih", "dw_hh", "db_ih", "db_hh"]
PARAM_NAMES = ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"]


def gate_count(variant):
    return 2 if VARIANTS[variant]["simplified"] else 3


def inputs(variant, steps=T, batch=B, features=D, hidden=H, bias=True, given=("dh",), seed=0,
           scale=0.5):
    """Random float64 inputs of one forward and backward call, as a dict of named arrays."""
    rng = np.random.default_rng(seed)
    GH = gate_count(variant) * hidden
    return {
        "x": rng.standard_normal((steps, batch, features)),
        "h0": rng.standard_normal((batch, hidden)),
        "w_ih": rng.standard_normal((GH, features)) * scale,
        "w_hh": rng.standard_normal((GH, hidden)) * scale,
        "b_ih": rng.standard_normal(GH) * scale if bias else None,
        "b_hh": rng.standard_normal(GH) * scale if bias else None,
        "dh": rng.standard_normal((steps, batch, hidden)) if "dh" in given else None,
        "dh_n": rng.standard_normal((batch, hidden)) if "dh_n" in given else None,
    }


def cast(arrays, dtype):
    return {k: (None if v is None else v.astype(dtype)) for k, v in arrays.items()}


def forward(impl, variant, a):
    return impl.gru_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"], a["b_hh"],
                            **VARIANTS[variant])


def run(impl, variant, a):
    """Forward then backward: a dict of every output (see ``OUTPUT_NAMES``)."""
    h, gates, aux = forward(impl, variant, a)
    grads = impl.gru_backward(a["dh"], a["x"], a["h0"], h, gates, aux, a["w_ih"], a["w_hh"],
                              dh_n=a["dh_n"], **VARIANTS[variant])
    assert len(grads) == 6
    return dict(zip(OUTPUT_NAMES, (h, gates, aux) + tuple(grads)))


def weighted_sum(h, dh, dh_n):
    """The loss whose gradient with respect to ``h`` is `dh` (+ `dh_n` on ``h[-1]``)."""
    total = np.sum(dh * h) if dh is not None else 0.0
    return total + (np.sum(dh_n * h[-1]) if dh_n is not None else 0.0)


def assert_outputs_close(got, want, dtype, rtol=None):
    """Every output of :func:`run`: same type, dtype and shape; values close."""
    assert list(got) == list(want) == OUTPUT_NAMES
    for name in OUTPUT_NAMES:
        g, w = got[name], want[name]
        if w is None:  # aux of the simplified GRU
            assert g is None, name
            continue
        assert type(g) is np.ndarray and g.dtype == dtype, name
        assert g.shape == w.shape, name
        if dtype == np.float64:
            assert_close(g, w, rtol=rtol or 1e-12, err_msg=name)
        else:
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(g, w, rtol=rtol or 1e-5, atol=1e-5 * scale, err_msg=name)


def check_gradients(impl, variant, upstream, bias, seed):
    """Central differences of ``sum(dh * h) + sum(dh_n * h[-1])`` for every gradient.

    Without biases, the forward and backward calls get ``b_ih = b_hh = None`` and the
    returned bias gradients are compared with the numerical ones at zero biases.
    """
    a = inputs(variant, bias=bias, given=UPSTREAMS[upstream], seed=seed)
    G = gate_count(variant)
    params = {k: a[k] for k in PARAM_NAMES}
    if not bias:
        params["b_ih"], params["b_hh"] = np.zeros(G * H), np.zeros(G * H)

    def loss():
        h = impl.gru_forward(*(params[k] for k in PARAM_NAMES), **VARIANTS[variant])[0]
        return weighted_sum(h, a["dh"], a["dh_n"])

    out = run(impl, variant, a)
    if not bias:  # None biases act as zero biases
        np.testing.assert_array_equal(
            out["h"], impl.gru_forward(*(params[k] for k in PARAM_NAMES), **VARIANTS[variant])[0])
    analytic = {k: out["d" + k] for k in PARAM_NAMES}
    assert_gradients(loss, params, analytic)


# ----------------------------------------------------------------------------------
# the reference
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_reference_gradients(variant, upstream, bias):
    check_gradients(ref, variant, upstream, bias, seed=100 + len(upstream))


def gru_by_the_equations(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, simplified):
    """``(h, gates, aux)`` computed one gate at a time, straight from the equations."""
    names = "zn" if simplified else "rzn"

    def blocks(a):
        return dict(zip(names, np.split(a, len(names))))

    Wi, Wh, bi, bh = blocks(w_ih), blocks(w_hh), blocks(b_ih), blocks(b_hh)

    def sigmoid(v):
        return 1 / (1 + np.exp(-v))

    h_prev, hs, gates, aux = h0, [], [], []
    for xt in x:
        z = sigmoid(xt @ Wi["z"].T + bi["z"] + h_prev @ Wh["z"].T + bh["z"])
        if simplified:
            n = np.tanh(xt @ Wi["n"].T + bi["n"] + h_prev @ Wh["n"].T + bh["n"])
            gates.append(np.concatenate((z, n), axis=1))
        else:
            r = sigmoid(xt @ Wi["r"].T + bi["r"] + h_prev @ Wh["r"].T + bh["r"])
            if reset_after:
                ghn = h_prev @ Wh["n"].T + bh["n"]
                n = np.tanh(xt @ Wi["n"].T + bi["n"] + r * ghn)
                aux.append(ghn)
            else:
                n = np.tanh(xt @ Wi["n"].T + bi["n"] + (r * h_prev) @ Wh["n"].T + bh["n"])
                aux.append(r * h_prev)
            gates.append(np.concatenate((r, z, n), axis=1))
        h_prev = (1 - z) * n + z * h_prev
        hs.append(h_prev)
    return np.array(hs), np.array(gates), (None if simplified else np.array(aux))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_reference_forward_follows_the_equations(variant):
    a = inputs(variant, seed=110)
    got = forward(ref, variant, a)
    want = gru_by_the_equations(*(a[k] for k in PARAM_NAMES), **VARIANTS[variant])
    for name, g, w in zip(["h", "gates", "aux"], got, want):
        if w is None:
            assert g is None
        else:
            assert_close(g, w, rtol=1e-13, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_reference_computes_in_the_input_dtype(variant, dtype):
    a = inputs(variant, given=("dh", "dh_n"), seed=111)
    got = run(ref, variant, cast(a, dtype))
    want = run(ref, variant, a)
    assert_outputs_close(got, want, dtype, rtol=1e-4 if dtype == np.float32 else 1e-15)


def test_reference_rejects_mixed_dtypes_and_wrong_gate_rows():
    a = inputs("reset_after", seed=112)
    with pytest.raises(TypeError, match="b_hh has dtype float32 but x has dtype float64"):
        ref.gru_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"],
                        a["b_hh"].astype(np.float32))
    with pytest.raises(ValueError, match=r"w_ih must have 2H = 10 rows.*\(15, 4\)"):
        ref.gru_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"][:10], simplified=True)


# relations between the variants, for the reference and for the C++ kernels

IMPLS = {"reference": ref, "kernels": kernels}


@pytest.mark.parametrize("impl", list(IMPLS))
def test_reset_after_and_before_differ_except_for_a_diagonal_w_hn(impl):
    # r * (h W_hn^T + b_hn) == (r * h) W_hn^T + b_hn when W_hn is diagonal and b_hn = 0
    impl = IMPLS[impl]
    a = inputs("reset_after", given=("dh", "dh_n"), seed=113)
    after, before = run(impl, "reset_after", a), run(impl, "reset_before", a)
    assert not np.allclose(after["h"], before["h"], rtol=1e-3, atol=0)
    assert not np.allclose(after["dw_hh"], before["dw_hh"], rtol=1e-3, atol=0)
    a["w_hh"][2 * H:] = np.diag(np.arange(1.0, H + 1) / H)
    a["b_hh"][2 * H:] = 0
    after, before = run(impl, "reset_after", a), run(impl, "reset_before", a)
    for name in ["h", "gates", "dx", "dh0", "dw_ih", "db_ih"]:
        assert_close(after[name], before[name], rtol=1e-13, err_msg=name)
    # what backward needs: ghn = h_{t-1} W_hn^T + b_hn in one, r * h_{t-1} in the other
    h_prev = np.concatenate((a["h0"][None], after["h"][:-1]))
    assert_close(after["aux"], h_prev @ a["w_hh"][2 * H:].T, rtol=1e-13, err_msg="aux")
    assert_close(before["aux"], after["gates"][:, :, :H] * h_prev, rtol=1e-13, err_msg="aux")


@pytest.mark.parametrize("reset_after", [True, False], ids=["reset_after", "reset_before"])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_simplified_is_the_full_gru_with_an_open_reset_gate(impl, reset_after):
    # r = sigmoid(50) rounds to 1 in float64: the full GRU is then the simplified one
    impl = IMPLS[impl]
    two = inputs("simplified", given=("dh", "dh_n"), seed=114)
    three = dict(two)
    three["w_ih"] = np.concatenate((np.zeros((H, D)), two["w_ih"]))
    three["w_hh"] = np.concatenate((np.zeros((H, H)), two["w_hh"]))
    three["b_ih"] = np.concatenate((np.full(H, 50.0), two["b_ih"]))
    three["b_hh"] = np.concatenate((np.zeros(H), two["b_hh"]))
    variant = "reset_after" if reset_after else "reset_before"
    simple, full = run(impl, "simplified", two), run(impl, variant, three)
    np.testing.assert_allclose(full["gates"][:, :, :H], 1.0, rtol=0, atol=1e-15)
    assert_close(full["h"], simple["h"], rtol=1e-13, err_msg="h")
    assert_close(full["gates"][:, :, H:], simple["gates"], rtol=1e-13, err_msg="gates")
    for name in ["dx", "dh0"]:
        assert_close(full[name], simple[name], rtol=1e-13, err_msg=name)
    for name in ["dw_ih", "dw_hh", "db_ih", "db_hh"]:
        assert_close(full[name][H:], simple[name], rtol=1e-13, err_msg=name)


@pytest.mark.parametrize("impl", list(IMPLS))
def test_simplified_ignores_reset_after(impl):
    impl = IMPLS[impl]
    a = inputs("simplified", given=("dh", "dh_n"), seed=115)
    results = []
    for reset_after in (True, False):
        h, gates, aux = impl.gru_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"],
                                         a["b_hh"], reset_after=reset_after, simplified=True)
        assert aux is None
        results.append((h, gates) + tuple(impl.gru_backward(
            a["dh"], a["x"], a["h0"], h, gates, None, a["w_ih"], a["w_hh"],
            reset_after=reset_after, simplified=True, dh_n=a["dh_n"])))
    for name, one, other in zip(["h", "gates"] + OUTPUT_NAMES[3:], *results):
        np.testing.assert_array_equal(one, other, err_msg=name)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
def test_reference_equals_torch_gru(bias):
    torch = pytest.importorskip("torch")
    a = inputs("reset_after", bias=bias, given=("dh", "dh_n"), seed=120)
    want = run(ref, "reset_after", a)

    gru = torch.nn.GRU(D, H, num_layers=1, bias=bias, dtype=torch.float64)
    names = ["w_ih", "w_hh"] + (["b_ih", "b_hh"] if bias else [])
    torch_names = {"w_ih": "weight_ih_l0", "w_hh": "weight_hh_l0", "b_ih": "bias_ih_l0",
                   "b_hh": "bias_hh_l0"}
    with torch.no_grad():
        for name in names:
            getattr(gru, torch_names[name]).copy_(torch.from_numpy(a[name]))
    x = torch.tensor(a["x"], requires_grad=True)
    h0 = torch.tensor(a["h0"][None], requires_grad=True)  # (layers, B, H)
    out, h_n = gru(x, h0)
    loss = (out * torch.from_numpy(a["dh"])).sum() + (h_n[0] * torch.from_numpy(a["dh_n"])).sum()
    loss.backward()

    got = {"h": out.detach().numpy(), "h_n": h_n[0].detach().numpy(),
           "dx": x.grad.numpy(), "dh0": h0.grad[0].numpy()}
    for name in names:
        got["d" + name] = getattr(gru, torch_names[name]).grad.numpy()
    want["h_n"] = want["h"][-1]
    for name, g in got.items():
        w = want[name]
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10 * max(1.0, np.abs(w).max()),
                                   err_msg=name)


# ----------------------------------------------------------------------------------
# the C++ kernels against the reference
# ----------------------------------------------------------------------------------

# case: (T, B, D, H, bias, upstream gradients given)
CASES = {
    "dh": (T, B, D, H, True, ("dh",)),
    "dh_none_dh_n": (T, B, D, H, True, ("dh_n",)),
    "dh_and_dh_n": (T, B, D, H, True, ("dh", "dh_n")),
    "no_bias": (T, B, D, H, False, ("dh",)),
    "B1": (T, 1, D, H, True, ("dh", "dh_n")),
    "T1": (1, B, D, H, True, ("dh", "dh_n")),
    "odd_sizes": (7, 3, 11, 13, True, ("dh", "dh_n")),
    # gru_forward has two time loops for H <= 64 on the AVX2 and AVX-512 builds, chosen by
    # H against the packet width (4 to 16 lanes by build and dtype): H = 16, 20, 24 and 33
    # reach both there (the generic build has the general loop only)
    "H16": (3, 5, 4, 16, True, ("dh", "dh_n")),
    "H20_no_bias": (3, 4, 3, 20, False, ("dh",)),
    "H24": (2, 3, 5, 24, True, ("dh", "dh_n")),
    "H33": (2, 3, 4, 33, True, ("dh",)),
    # 700 rows: the weight gradients' depth blocks of 256, 256 and 188 rows, the biases
    # summed in the same passes over the gate gradients
    "depth_blocks": (35, 20, 5, 13, True, ("dh", "dh_n")),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kernel_equals_the_reference(variant, dtype, case):
    steps, batch, features, hidden, bias, given = CASES[case]
    a = cast(inputs(variant, steps, batch, features, hidden, bias, given, seed=len(case)), dtype)
    assert_outputs_close(run(kernels, variant, a), run(ref, variant, a), dtype)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_float32_kernels_agree_with_float64(variant):
    a = inputs(variant, given=("dh", "dh_n"), seed=5)
    got32 = run(kernels, variant, cast(a, np.float32))
    want64 = run(ref, variant, a)
    assert_outputs_close(got32, want64, np.float32, rtol=1e-4)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("upstream", list(UPSTREAMS))
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_kernel_gradients(variant, upstream, bias):
    check_gradients(kernels, variant, upstream, bias, seed=130 + len(upstream))


# ----------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------

# sizes of the bad-input cases: H = 7 so that 2H rows are not a multiple of 3, nor 3H of 2
ET, EB, ED, EH = 3, 2, 4, 7


def valid(variant="reset_after"):
    """Valid arguments of gru_forward and gru_backward (and the forward outputs)."""
    a = inputs(variant, ET, EB, ED, EH, given=("dh", "dh_n"), seed=140)
    a["h"], a["gates"], a["aux"] = ref.gru_forward(
        *(a[k] for k in PARAM_NAMES), **VARIANTS[variant])
    return a


def call_forward(a, variant="reset_after", **changes):
    a = dict(a, **changes)
    return kernels.gru_forward(*(a[k] for k in PARAM_NAMES), **VARIANTS[variant])


def call_backward(a, variant="reset_after", **changes):
    a = dict(a, **changes)
    return kernels.gru_backward(a["dh"], a["x"], a["h0"], a["h"], a["gates"], a["aux"],
                                a["w_ih"], a["w_hh"], dh_n=a["dh_n"], **VARIANTS[variant])


def with_nan(arr, value=np.nan):
    arr = arr.copy()
    arr.flat[arr.size // 2] = value
    return arr


def f32(arr):
    return arr.astype(np.float32)


# case: (call, exception, fragments the message must contain)
BAD = {
    # ---- gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, simplified)
    "forward-x-rank": (lambda a: call_forward(a, x=a["x"][0]), ValueError, ["x", "(2, 4)"]),
    "forward-x-empty": (lambda a: call_forward(a, x=a["x"][:0]), ValueError, ["x", "(0, 2, 4)"]),
    "forward-h0-shape": (lambda a: call_forward(a, h0=a["h0"][:1]), ValueError, ["h0", "(1, 7)"]),
    "forward-w_ih-rows": (lambda a: call_forward(a, w_ih=a["w_ih"][:14]), ValueError,
                          ["w_ih", "(14, 4)"]),
    "forward-w_ih-columns": (lambda a: call_forward(a, w_ih=a["w_ih"][:, :3]), ValueError,
                             ["w_ih", "(21, 3)"]),
    "forward-w_ih-rank": (lambda a: call_forward(a, w_ih=a["w_ih"][None]), ValueError,
                          ["w_ih", "(1, 21, 4)"]),
    "forward-w_hh-shape": (lambda a: call_forward(a, w_hh=a["w_hh"][:, :2]), ValueError,
                           ["w_hh", "(21, 2)"]),
    "forward-w_hh-rows": (lambda a: call_forward(a, w_hh=a["w_hh"][:14]), ValueError,
                          ["w_hh", "(14, 7)"]),
    "forward-b_ih-shape": (lambda a: call_forward(a, b_ih=a["b_ih"][:7]), ValueError,
                           ["b_ih", "(7,)"]),
    "forward-b_hh-shape": (lambda a: call_forward(a, b_hh=a["b_hh"][:, None]), ValueError,
                           ["b_hh", "(21, 1)"]),
    "forward-simplified-w_ih-rows": (lambda a: call_forward(a, "simplified"), ValueError,
                                     ["w_ih", "(21, 4)"]),
    "forward-x-int": (lambda a: call_forward(a, x=a["x"].astype(int)), ValueError,
                      ["x", "index input", "(T, B)"]),
    "forward-x-float16": (lambda a: call_forward(a, x=a["x"].astype(np.float16)), TypeError,
                          ["x", "float16"]),
    "forward-x-list": (lambda a: call_forward(a, x=a["x"].tolist()), TypeError, ["x"]),
    "forward-w_hh-list": (lambda a: call_forward(a, w_hh=a["w_hh"].tolist()), TypeError,
                          ["w_hh"]),
    "forward-h0-none": (lambda a: call_forward(a, h0=None), TypeError, ["h0"]),
    "forward-b_hh-float32": (lambda a: call_forward(a, b_hh=f32(a["b_hh"])), TypeError,
                             ["b_hh", "float32"]),
    "forward-h0-float64-with-float32": (lambda a: call_forward(
        a, x=f32(a["x"]), w_ih=f32(a["w_ih"]), w_hh=f32(a["w_hh"]), b_ih=f32(a["b_ih"]),
        b_hh=f32(a["b_hh"])), TypeError, ["h0"]),
    "forward-x-nan": (lambda a: call_forward(a, x=with_nan(a["x"])), ValueError, ["x"]),
    "forward-h0-nan": (lambda a: call_forward(a, h0=with_nan(a["h0"])), ValueError, ["h0"]),
    "forward-w_ih-nan": (lambda a: call_forward(a, w_ih=with_nan(a["w_ih"])), ValueError,
                         ["w_ih"]),
    "forward-w_hh-inf": (lambda a: call_forward(a, w_hh=with_nan(a["w_hh"], np.inf)), ValueError,
                         ["w_hh"]),
    "forward-b_ih-nan": (lambda a: call_forward(a, b_ih=with_nan(a["b_ih"])), ValueError,
                         ["b_ih"]),
    "forward-b_hh-nan": (lambda a: call_forward(a, b_hh=with_nan(a["b_hh"])), ValueError,
                         ["b_hh"]),
    # ---- gru_backward(dh, x, h0, h, gates, aux, w_ih, w_hh, reset_after, simplified, dh_n)
    "backward-dh-shape": (lambda a: call_backward(a, dh=a["dh"][:, :, :3]), ValueError,
                          ["dh", "(3, 2, 3)"]),
    "backward-x-rank": (lambda a: call_backward(a, x=a["x"][0]), ValueError, ["x", "(2, 4)"]),
    "backward-h0-shape": (lambda a: call_backward(a, h0=a["h0"][:, :6]), ValueError,
                          ["h0", "(2, 6)"]),
    "backward-h-shape": (lambda a: call_backward(a, h=a["h"][:2]), ValueError, ["h", "(2, 2, 7)"]),
    "backward-gates-shape": (lambda a: call_backward(a, gates=a["gates"][:, :, :14]), ValueError,
                             ["gates", "(3, 2, 14)"]),
    "backward-aux-shape": (lambda a: call_backward(a, aux=a["aux"][:, :, :3]), ValueError,
                           ["aux", "(3, 2, 3)"]),
    "backward-aux-none": (lambda a: call_backward(a, aux=None), TypeError, ["aux"]),
    "backward-w_ih-rows": (lambda a: call_backward(a, w_ih=a["w_ih"][:14]), ValueError,
                           ["w_ih", "(14, 4)"]),
    "backward-w_hh-shape": (lambda a: call_backward(a, w_hh=a["w_hh"][:, :2]), ValueError,
                            ["w_hh", "(21, 2)"]),
    "backward-dh_n-shape": (lambda a: call_backward(a, dh_n=a["dh_n"][:1]), ValueError,
                            ["dh_n", "(1, 7)"]),
    "backward-dh-list": (lambda a: call_backward(a, dh=a["dh"].tolist()), TypeError, ["dh"]),
    "backward-gates-float32": (lambda a: call_backward(a, gates=f32(a["gates"])), TypeError,
                               ["gates", "float32"]),
    "backward-aux-float32": (lambda a: call_backward(a, aux=f32(a["aux"])), TypeError,
                             ["aux", "float32"]),
    "backward-dh_n-float32": (lambda a: call_backward(a, dh_n=f32(a["dh_n"])), TypeError,
                              ["dh_n", "float32"]),
    "backward-dh-nan": (lambda a: call_backward(a, dh=with_nan(a["dh"])), ValueError, ["dh"]),
    "backward-h-nan": (lambda a: call_backward(a, h=with_nan(a["h"])), ValueError, ["h"]),
    "backward-gates-nan": (lambda a: call_backward(a, gates=with_nan(a["gates"])), ValueError,
                           ["gates"]),
    "backward-aux-inf": (lambda a: call_backward(a, aux=with_nan(a["aux"], -np.inf)),
                         ValueError, ["aux"]),
    "backward-dh_n-nan": (lambda a: call_backward(a, dh_n=with_nan(a["dh_n"])), ValueError,
                          ["dh_n"]),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_a_clear_exception(case):
    call, exception, fragments = BAD[case]
    with pytest.raises(exception) as info:
        call(valid())
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_valid_input_of_the_bad_input_cases_runs():
    # the bad cases change one argument of these calls
    a = valid()
    call_backward(a, **dict(zip(["h", "gates", "aux"], call_forward(a))))
    s = valid("simplified")
    outputs = call_forward(s, "simplified")
    call_backward(s, "simplified", **dict(zip(["h", "gates", "aux"], outputs)))


# ----------------------------------------------------------------------------------
# threads, builds, saturation
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_results_do_not_depend_on_the_thread_count(variant):
    # big enough for several task blocks: G*H = 480 or 320 gate rows, B = 8
    a = inputs(variant, 5, 8, 16, 160, given=("dh", "dh_n"), seed=150, scale=0.1)
    threads = rnnx.get_num_threads()
    try:
        results = []
        for n in (1, 2):
            rnnx.set_num_threads(n)
            assert rnnx.get_num_threads() == n
            results.append(run(kernels, variant, a))
    finally:
        rnnx.set_num_threads(threads)
    serial, threaded = results
    for name in OUTPUT_NAMES:
        if serial[name] is None:
            assert threaded[name] is None
        else:
            np.testing.assert_array_equal(threaded[name], serial[name], err_msg=name)
    assert_outputs_close(serial, run(ref, variant, a), np.float64, rtol=1e-10)


PORTABLE_BUILD_CHECK = textwrap.dedent(
    """
    import os
    import numpy as np
    import rnnx
    from rnnx import kernels
    from rnnx.reference import kernels as ref

    assert rnnx.isa == os.environ["RNNX_ISA"], rnnx.isa
    rng = np.random.default_rng(160)
    T, B, D, H = 3, 2, 4, 5
    for simplified, reset_after in ((False, True), (False, False), (True, True)):
        GH = (2 if simplified else 3) * H
        arrays = [rng.standard_normal(s) * 0.5 for s in
                  [(T, B, D), (B, H), (GH, D), (GH, H), (GH,), (GH,), (T, B, H), (B, H)]]
        kw = dict(reset_after=reset_after, simplified=simplified)
        for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
            x, h0, w_ih, w_hh, b_ih, b_hh, dh, dh_n = (v.astype(dtype) for v in arrays)
            outputs = []
            for impl in (kernels, ref):
                h, gates, aux = impl.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, **kw)
                grads = impl.gru_backward(dh, x, h0, h, gates, aux, w_ih, w_hh, dh_n=dh_n, **kw)
                outputs.append((h, gates, aux) + tuple(grads))
            for got, want in zip(*outputs):
                if want is None:
                    assert got is None
                    continue
                assert got.dtype == dtype
                np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 10)
    print(rnnx.isa, "build OK")
    """
)


def test_portable_build_in_a_fresh_interpreter():
    proc = run_python(PORTABLE_BUILD_CHECK, RNNX_ISA="generic")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "generic build OK"


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_saturated_gates_stay_finite(variant, dtype):
    # input weights scaled so that pre-activations reach about ±1e4
    a = inputs(variant, given=("dh", "dh_n"), seed=170, scale=1.0)
    a["w_ih"] = a["w_ih"] * 1e4
    a = cast(a, dtype)
    assert np.abs(a["x"][0] @ a["w_ih"].T).max() > 1e4
    got = run(kernels, variant, a)
    for name in OUTPUT_NAMES:
        assert got[name] is None or np.isfinite(got[name]).all(), name
    # h_t is a convex combination of n in [-1, 1] and h_{t-1}
    assert np.abs(got["h"]).max() <= max(1.0, np.abs(a["h0"]).max()) * (1 + 1e-6)
    with np.errstate(over="ignore"):
        want = run(ref, variant, a)
    for name in ["h", "gates"]:
        np.testing.assert_allclose(got[name], want[name],
                                   rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6,
                                   err_msg=name)
