"""Variable-length batches: ``rnnx.reference.masking`` and the ``lengths`` argument of
the C++ kernels (``rnnx.kernels.*(..., lengths=...)``).

Semantics under test: a step ``t >= lengths[b]`` carries example ``b``'s state
unchanged (``h``, and ``c`` for the LSTM); backward ignores ``dh`` there, gives
``dx = 0`` there, and passes the carried gradient through to the step before.

* reference: ``lengths=None`` and ``lengths = T`` for every example give the unmasked
  reference (``rnnx.reference.kernels``) bit for bit; with unsorted lengths, every
  gradient against central differences, against the unmasked reference run on each
  example cut to its own length, and the behaviour at padded steps (carried states,
  ``dx = 0``, padded ``x``, ``dh``, gates and ``aux`` change nothing);
* PyTorch (when installed): ``nn.RNN``, ``nn.LSTM``, ``nn.GRU`` on
  ``pack_padded_sequence(..., enforce_sorted=False)``, outputs, final states and every
  gradient to 1e-10;
* C++ against the reference: float64 to rtol 1e-12, float32 to ~1e-5, every cell and
  GRU variant, unsorted lengths, B = 1; bad ``lengths`` raise an exception naming it.

Sizes are tiny and all different: T=4, B=3, D=2, H=5, lengths [3, 1, 4] (unsorted,
with a length 1 and a full-length example).
"""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import assert_close, assert_gradients  # noqa: E402

from rnnx import kernels  # noqa: E402
from rnnx.reference import kernels as ref  # noqa: E402
from rnnx.reference import masking  # noqa: E402

T, B, D, H = 4, 3, 2, 5
LENGTHS = np.array([3, 1, 4])

# cell: (kind, keyword options of its forward and backward)
CELLS = {
    "rnn_tanh": ("rnn", {"nonlinearity": "tanh"}),
    "rnn_relu": ("rnn", {"nonlinearity": "relu"}),
    "lstm": ("lstm", {}),
    "gru_reset_after": ("gru", {"reset_after": True, "simplified": False}),
    "gru_reset_before": ("gru", {"reset_after": False, "simplified": False}),
    "gru_simplified": ("gru", {"reset_after": True, "simplified": True}),
}
GATES = {"rnn": 1, "lstm": 4}
# the differentiable inputs of each kind, in the order backward returns their gradients
PARAMS = {
    "rnn": ["x", "h0", "w_ih", "w_hh", "b"],
    "lstm": ["x", "h0", "c0", "w_ih", "w_hh", "b"],
    "gru": ["x", "h0", "w_ih", "w_hh", "b_ih", "b_hh"],
}
DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]
# C++ cases: (batch, lengths)
CASES = {
    "unsorted": (B, LENGTHS),
    "B1": (1, np.array([2])),
    "all_T": (B, np.full(B, T)),
}
BAD_LENGTHS = {
    "wrong_size": (np.array([3, 1, 4, 2]), ValueError),
    "zero": (np.array([3, 0, 4]), ValueError),
    "above_T": (np.array([3, 1, T + 1]), ValueError),
    "float": (np.array([3.0, 1.0, 4.0]), TypeError),
    "2d": (np.array([[3, 1, 4]]), ValueError),
}


def gate_count(cell):
    kind, opts = CELLS[cell]
    if kind == "gru":
        return 2 if opts["simplified"] else 3
    return GATES[kind]


def inputs(cell, steps=T, batch=B, seed=0, scale=0.5, hidden=H):
    """Random float64 inputs and upstream gradients of one call, as a dict."""
    H = hidden
    rng = np.random.default_rng(seed)
    kind = CELLS[cell][0]
    GH = gate_count(cell) * H
    a = {
        "x": rng.standard_normal((steps, batch, D)),
        "h0": rng.standard_normal((batch, H)),
        "w_ih": rng.standard_normal((GH, D)) * scale,
        "w_hh": rng.standard_normal((GH, H)) * scale,
        "dh": rng.standard_normal((steps, batch, H)),
        "dh_n": rng.standard_normal((batch, H)),
    }
    if kind == "gru":
        a["b_ih"] = rng.standard_normal(GH) * scale
        a["b_hh"] = rng.standard_normal(GH) * scale
    else:
        a["b"] = rng.standard_normal(GH) * scale
    if kind == "lstm":
        a["c0"] = rng.standard_normal((batch, H))
        a["dc_n"] = rng.standard_normal((batch, H))
    return a


def cast(a, dtype):
    return {k: v.astype(dtype) for k, v in a.items()}


def forward(impl, cell, a, **lk):
    """Forward outputs as a dict: h, and c, gates, aux where the cell has them."""
    kind, opts = CELLS[cell]
    if kind == "rnn":
        return {"h": impl.rnn_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b"], **opts,
                                      **lk)}
    if kind == "lstm":
        h, c, gates = impl.lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"],
                                        a["b"], **lk)
        return {"h": h, "c": c, "gates": gates}
    h, gates, aux = impl.gru_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b_ih"],
                                     a["b_hh"], **opts, **lk)
    return {"h": h, "gates": gates, "aux": aux}


def backward(impl, cell, a, out, **lk):
    """Gradients as a dict keyed by the input they belong to (``PARAMS``)."""
    kind, opts = CELLS[cell]
    if kind == "rnn":
        grads = impl.rnn_backward(a["dh"], a["x"], a["h0"], out["h"], a["w_ih"], a["w_hh"],
                                  opts["nonlinearity"], dh_n=a["dh_n"], **lk)
    elif kind == "lstm":
        grads = impl.lstm_backward(a["dh"], a["x"], a["h0"], a["c0"], out["h"], out["c"],
                                   out["gates"], a["w_ih"], a["w_hh"], dh_n=a["dh_n"],
                                   dc_n=a["dc_n"], **lk)
    else:
        grads = impl.gru_backward(a["dh"], a["x"], a["h0"], out["h"], out["gates"],
                                  out["aux"], a["w_ih"], a["w_hh"], dh_n=a["dh_n"], **opts,
                                  **lk)
    assert len(grads) == len(PARAMS[kind])
    return dict(zip(PARAMS[kind], grads))


def mask(lengths, steps=T):
    """(T, B, 1) bool: True at valid steps."""
    return masking.step_mask(lengths, steps)[:, :, None]


def masked_inputs(cell, lengths=LENGTHS, seed=0, margin=0.05):
    """:func:`inputs`; for relu, redrawn until no valid pre-activation is near 0
    (relu is not differentiable at 0, where central differences would disagree)."""
    for s in range(seed, seed + 200):
        a = inputs(cell, batch=len(lengths), seed=s)
        if cell != "rnn_relu":
            return a
        h = masking.rnn_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b"], "relu",
                                lengths=lengths)
        h_prev = np.concatenate((a["h0"][None], h[:-1]))
        z = a["x"] @ a["w_ih"].T + h_prev @ a["w_hh"].T + a["b"]
        valid = np.broadcast_to(mask(lengths), z.shape)
        if np.abs(z[valid]).min() > margin and 0 < (z[valid] > 0).mean() < 1:
            return a
    raise RuntimeError("no relu inputs with pre-activations away from 0")


# ----------------------------------------------------------------------------------
# step_mask and the validation of lengths
# ----------------------------------------------------------------------------------


def test_step_mask_marks_the_valid_steps():
    m = masking.step_mask(LENGTHS, T)
    assert m.dtype == bool and m.shape == (T, B)
    assert m.astype(int).tolist() == [[1, 1, 1], [1, 0, 1], [1, 0, 1], [0, 0, 1]]
    assert m.sum(axis=0).tolist() == LENGTHS.tolist()
    assert masking.step_mask([1], 1).tolist() == [[True]]
    assert masking.step_mask(np.array([2, 3], dtype=np.int32), 3).sum() == 5


@pytest.mark.parametrize("bad", list(BAD_LENGTHS))
def test_step_mask_refuses_bad_lengths(bad):
    lengths, error = BAD_LENGTHS[bad]
    with pytest.raises(error, match="lengths"):
        masking.step_mask(lengths, T, B)


def test_step_mask_refuses_bool_and_negative_lengths():
    with pytest.raises(TypeError, match="lengths"):
        masking.step_mask(np.array([True, True, False]), T)
    with pytest.raises(ValueError, match="lengths"):
        masking.step_mask(np.array([3, -1, 4]), T)


@pytest.mark.parametrize("bad", list(BAD_LENGTHS))
@pytest.mark.parametrize("cell", list(CELLS))
def test_reference_refuses_bad_lengths(cell, bad):
    lengths, error = BAD_LENGTHS[bad]
    a = inputs(cell)
    out = forward(masking, cell, a, lengths=LENGTHS)
    with pytest.raises(error, match="lengths"):
        forward(masking, cell, a, lengths=lengths)
    with pytest.raises(error, match="lengths"):
        backward(masking, cell, a, out, lengths=lengths)


# ----------------------------------------------------------------------------------
# reference: all steps valid = the unmasked reference
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("lengths", ["None", "all_T"])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_full_lengths_equal_the_unmasked_reference_exactly(cell, dtype, lengths):
    a = cast(inputs(cell, seed=1), dtype)
    lk = {"lengths": None if lengths == "None" else np.full(B, T)}
    got_out, want_out = forward(masking, cell, a, **lk), forward(ref, cell, a)
    got = {**got_out, **backward(masking, cell, a, got_out, **lk)}
    want = {**want_out, **backward(ref, cell, a, want_out)}
    assert list(got) == list(want)
    for name, value in want.items():
        if value is None:  # aux of the simplified GRU
            assert got[name] is None, name
            continue
        assert got[name].dtype == dtype, name
        np.testing.assert_array_equal(got[name], value, err_msg=name)


# ----------------------------------------------------------------------------------
# reference with unsorted lengths
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", list(CELLS))
def test_reference_gradients_match_central_differences(cell):
    kind = CELLS[cell][0]
    a = masked_inputs(cell)
    m = mask(LENGTHS)

    def loss():
        # what backward differentiates: dh at valid steps, dh_n (dc_n) on the final states
        out = forward(masking, cell, a, lengths=LENGTHS)
        value = np.sum(a["dh"] * m * out["h"]) + np.sum(a["dh_n"] * out["h"][-1])
        if kind == "lstm":
            value += np.sum(a["dc_n"] * out["c"][-1])
        return value

    grads = backward(masking, cell, a, forward(masking, cell, a, lengths=LENGTHS),
                     lengths=LENGTHS)
    assert_gradients(loss, {name: a[name] for name in PARAMS[kind]}, grads)


@pytest.mark.parametrize("cell", list(CELLS))
def test_each_example_equals_the_unmasked_reference_on_its_own_length(cell):
    """Example b of the padded batch = example b alone, cut to lengths[b] steps."""
    kind = CELLS[cell][0]
    a = masked_inputs(cell, seed=2)
    out = forward(masking, cell, a, lengths=LENGTHS)
    grads = backward(masking, cell, a, out, lengths=LENGTHS)
    summed = {name: 0 for name in PARAMS[kind] if name not in ("x", "h0", "c0")}
    for b, n in enumerate(LENGTHS):
        one = dict(a)  # example b alone: its first n steps, batch of 1
        for k in ("x", "dh"):
            one[k] = a[k][:n, b : b + 1]
        for k in ("h0", "c0", "dh_n", "dc_n"):
            if k in a:
                one[k] = a[k][b : b + 1]
        one_out = forward(ref, cell, one)
        one_grads = backward(ref, cell, one, one_out)
        for name, value in one_out.items():
            if value is not None:
                assert_close(out[name][:n, b], value[:, 0], err_msg=f"{name}, example {b}")
        assert_close(grads["x"][:n, b], one_grads["x"][:, 0], err_msg=f"dx, example {b}")
        assert_close(grads["h0"][b], one_grads["h0"][0], err_msg=f"dh0, example {b}")
        if kind == "lstm":
            assert_close(grads["c0"][b], one_grads["c0"][0], err_msg=f"dc0, example {b}")
        summed = {name: value + one_grads[name] for name, value in summed.items()}
    for name, value in summed.items():
        assert_close(grads[name], value, err_msg=f"d{name}")


@pytest.mark.parametrize("cell", list(CELLS))
def test_padded_steps_carry_the_last_valid_state(cell):
    out = forward(masking, cell, inputs(cell, seed=3), lengths=LENGTHS)
    for name in ("h", "c") if cell == "lstm" else ("h",):
        for b, n in enumerate(LENGTHS):
            for t in range(n, T):
                np.testing.assert_array_equal(out[name][t, b], out[name][n - 1, b],
                                              err_msg=f"{name}[{t}, {b}]")
        # and the states do change at valid steps (so the check above can fail)
        assert not np.array_equal(out[name][1, 0], out[name][0, 0]), name


@pytest.mark.parametrize("cell", list(CELLS))
def test_dx_is_exactly_zero_at_padded_steps(cell):
    a = inputs(cell, seed=4)
    grads = backward(masking, cell, a, forward(masking, cell, a, lengths=LENGTHS),
                     lengths=LENGTHS)
    valid = mask(LENGTHS)[:, :, 0]
    assert np.all(grads["x"][~valid] == 0)
    assert np.all(np.abs(grads["x"][valid]).max(axis=-1) > 0)


def _changed_at_padded_steps(a, names, value_of, lengths=LENGTHS):
    """A copy of `a` whose arrays `names` hold ``value_of(shape)`` at padded steps."""
    b = dict(a)
    padded = ~masking.step_mask(lengths, a["x"].shape[0])
    for name in names:
        b[name] = a[name].copy()
        b[name][padded] = value_of(b[name][padded].shape)
    return b


def _assert_same_at_valid_steps(got, want, lengths=LENGTHS):
    """Equal bit for bit; gates and aux only at valid steps (the rest is unspecified)."""
    valid = masking.step_mask(lengths, next(iter(want.values())).shape[0])
    for name in want:
        g, w = got[name], want[name]
        if w is None:
            assert g is None, name
        elif name in ("gates", "aux"):
            np.testing.assert_array_equal(g[valid], w[valid], err_msg=name)
        else:
            np.testing.assert_array_equal(g, w, err_msg=name)


@pytest.mark.parametrize("cell", list(CELLS))
def test_x_at_padded_steps_changes_nothing(cell):
    a = inputs(cell, seed=5)
    rng = np.random.default_rng(6)
    b = _changed_at_padded_steps(a, ["x"], lambda shape: 10 * rng.standard_normal(shape))
    assert not np.array_equal(a["x"], b["x"])
    out_a, out_b = forward(masking, cell, a, lengths=LENGTHS), forward(masking, cell, b,
                                                                        lengths=LENGTHS)
    _assert_same_at_valid_steps(out_b, out_a)
    grads_a = backward(masking, cell, a, out_a, lengths=LENGTHS)
    grads_b = backward(masking, cell, b, out_b, lengths=LENGTHS)
    _assert_same_at_valid_steps(grads_b, grads_a)


def _poisoned(out, lengths, fill):
    """`out` with `fill(shape)` in the gates and aux of padded steps."""
    padded = ~masking.step_mask(lengths, out["h"].shape[0])
    result = dict(out)
    for name in ("gates", "aux"):
        if out.get(name) is not None:
            result[name] = out[name].copy()
            result[name][padded] = fill(result[name][padded].shape)
    return result


def _nan(shape):
    return np.full(shape, np.nan)


def _garbage(shape):
    return np.random.default_rng(99).standard_normal(shape) * 1e3


def _check_backward_ignores_padded_steps(impl, cell, a, lengths, fill):
    """Other values in dh, gates and aux at padded steps change no gradient (bit for bit)."""
    out = forward(impl, cell, a, lengths=lengths)
    want = backward(impl, cell, a, out, lengths=lengths)
    changed = _changed_at_padded_steps(a, ["dh"], fill, lengths)
    got = backward(impl, cell, changed, _poisoned(out, lengths, fill), lengths=lengths)
    for name, value in want.items():
        np.testing.assert_array_equal(got[name], value, err_msg=name)


@pytest.mark.parametrize("cell", list(CELLS))
def test_reference_backward_reads_nothing_at_padded_steps(cell):
    _check_backward_ignores_padded_steps(masking, cell, inputs(cell, seed=7), LENGTHS, _nan)


# ----------------------------------------------------------------------------------
# PyTorch parity (packed sequences)
# ----------------------------------------------------------------------------------

TORCH_CELLS = ["rnn_tanh", "rnn_relu", "lstm", "gru_reset_after"]


def torch_packed(cell, a, lengths, b_ih):
    """PyTorch's module on ``pack_padded_sequence(x, lengths, enforce_sorted=False)``.

    ``loss = sum(out * dh) + sum(h_n * dh_n) (+ sum(c_n * dc_n))``.  For the RNN and the
    LSTM, whose single bias ``b`` is PyTorch's ``b_ih + b_hh``, the biases are `b_ih`
    and ``b - b_ih``.  Returns the padded outputs, the final states and the gradients,
    as NumPy arrays.
    """
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    kind, opts = CELLS[cell]
    f64 = torch.float64
    if kind == "rnn":
        module = torch.nn.RNN(D, H, nonlinearity=opts["nonlinearity"], dtype=f64)
    elif kind == "lstm":
        module = torch.nn.LSTM(D, H, dtype=f64)
    else:
        module = torch.nn.GRU(D, H, dtype=f64)
    biases = (a["b_ih"], a["b_hh"]) if kind == "gru" else (b_ih, a["b"] - b_ih)
    with torch.no_grad():
        for name, value in zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"],
                               [a["w_ih"], a["w_hh"], *biases]):
            getattr(module, name).copy_(torch.from_numpy(value))

    def leaf(array):
        return torch.from_numpy(array.copy()).requires_grad_()

    x, h0 = leaf(a["x"]), leaf(a["h0"][None])
    state = (h0, leaf(a["c0"][None])) if kind == "lstm" else h0
    packed = pack_padded_sequence(x, torch.as_tensor(lengths), enforce_sorted=False)
    out_packed, final = module(packed, state)
    out, _ = pad_packed_sequence(out_packed, total_length=a["x"].shape[0])
    h_n, c_n = final if kind == "lstm" else (final, None)
    loss = (out * torch.from_numpy(a["dh"])).sum() + (h_n[0] * torch.from_numpy(a["dh_n"])).sum()
    if kind == "lstm":
        loss = loss + (c_n[0] * torch.from_numpy(a["dc_n"])).sum()
    loss.backward()

    result = {"out": out, "h_n": h_n[0], "dx": x.grad, "dh0": h0.grad[0],
              "dw_ih": module.weight_ih_l0.grad, "dw_hh": module.weight_hh_l0.grad,
              "db_ih": module.bias_ih_l0.grad, "db_hh": module.bias_hh_l0.grad}
    if kind == "lstm":
        result |= {"c_n": c_n[0], "dc0": state[1].grad[0]}
    return {k: v.detach().numpy() for k, v in result.items()}


@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_reference_equals_pytorch_on_packed_sequences(cell):
    kind = CELLS[cell][0]
    a = masked_inputs(cell, seed=8)
    b_ih = np.random.default_rng(9).standard_normal(gate_count(cell) * H)
    want = torch_packed(cell, a, LENGTHS, b_ih)

    m = mask(LENGTHS)
    masked_dh = dict(a, dh=a["dh"] * m)
    out = forward(masking, cell, masked_dh, lengths=LENGTHS)
    grads = backward(masking, cell, masked_dh, out, lengths=LENGTHS)

    def close(got, name):
        np.testing.assert_allclose(got, want[name], rtol=1e-10, atol=1e-10, err_msg=name)

    close(out["h"] * m, "out")
    close(out["h"][-1], "h_n")
    close(grads["x"], "dx")
    close(grads["h0"], "dh0")
    close(grads["w_ih"], "dw_ih")
    close(grads["w_hh"], "dw_hh")
    if kind == "gru":
        close(grads["b_ih"], "db_ih")
        close(grads["b_hh"], "db_hh")
    else:  # one bias b = b_ih + b_hh: both of PyTorch's gradients equal db
        close(grads["b"], "db_ih")
        close(grads["b"], "db_hh")
    if kind == "lstm":
        close(out["c"][-1], "c_n")
        close(grads["c0"], "dc0")


# ----------------------------------------------------------------------------------
# C++ kernels against the reference
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_kernel_lengths_equal_the_reference(cell, dtype, case):
    batch, lengths = CASES[case]
    check_kernel_lengths(cell, dtype, batch, lengths, H)


# gru_forward's two time loops for H <= 64, chosen by H against the packet width (see
# test_gru.py): with H = 5 above, H = 16 and 20 reach both on the AVX2 and AVX-512 builds.
@pytest.mark.parametrize("hidden", [16, 20])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_kernel_lengths_equal_the_reference_at_hidden_sizes(cell, dtype, hidden):
    check_kernel_lengths(cell, dtype, B, LENGTHS, hidden)


def check_kernel_lengths(cell, dtype, batch, lengths, hidden):
    a = cast(inputs(cell, batch=batch, seed=10, hidden=hidden), dtype)
    got_out = forward(kernels, cell, a, lengths=lengths)
    want_out = forward(masking, cell, a, lengths=lengths)
    got = {**got_out, **backward(kernels, cell, a, got_out, lengths=lengths)}
    want = {**want_out, **backward(masking, cell, a, want_out, lengths=lengths)}
    assert list(got) == list(want)
    valid = masking.step_mask(lengths, T)
    for name, w in want.items():
        g = got[name]
        if w is None:
            assert g is None, name
            continue
        assert type(g) is np.ndarray and g.dtype == dtype and g.shape == w.shape, name
        if name in ("gates", "aux"):  # unspecified at padded steps
            g, w = g[valid], w[valid]
        if dtype == np.float64:
            assert_close(g, w, err_msg=name)
        else:
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("cell", list(CELLS))
def test_kernel_backward_reads_nothing_at_padded_steps(cell):
    # The C++ kernels refuse NaN and infinity in every input (a ValueError naming the
    # argument), so their check poisons the padded steps with large finite values.
    _check_backward_ignores_padded_steps(kernels, cell, inputs(cell, seed=11), LENGTHS, _garbage)


@pytest.mark.parametrize("bad", list(BAD_LENGTHS))
@pytest.mark.parametrize("cell", list(CELLS))
def test_kernel_refuses_bad_lengths(cell, bad):
    lengths, _ = BAD_LENGTHS[bad]
    a = inputs(cell)
    out = forward(kernels, cell, a, lengths=LENGTHS)  # good lengths are accepted
    backward(kernels, cell, a, out, lengths=LENGTHS)
    with pytest.raises((ValueError, TypeError), match="lengths"):
        forward(kernels, cell, a, lengths=lengths)
    with pytest.raises((ValueError, TypeError), match="lengths"):
        backward(kernels, cell, a, out, lengths=lengths)
