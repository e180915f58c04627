"""Layer classes ``rnnx.RNN``, ``rnnx.GRU``, ``rnnx.LSTM``: stacked, bidirectional,
variable-length layers on top of the C++ kernels.

What is checked:

* PyTorch (``nn.RNN`` tanh/relu, ``nn.GRU``, ``nn.LSTM``): 1 and 2 layers, uni- and
  bidirectional, all steps valid or unsorted ``lengths`` (``pack_padded_sequence(...,
  enforce_sorted=False)``), with and without biases: outputs, final states and every
  gradient (``x``, initial states, each parameter) of ``sum(y*dy) + sum(h_n*dh_n)
  (+ sum(c_n*dc_n))``, float64 to 1e-10 and float32 to 1e-5, after loading the torch
  module's ``state_dict`` into rnnx; and an rnnx ``state_dict`` loaded into torch gives
  the same outputs.
* The NumPy reference composed here by hand (``rnnx.reference.masking``, the reverse
  direction run on each sequence reversed within its own length): every cell, including
  the GRU variants torch lacks (``reset_after=False``, ``simplified``), forward and
  backward in float64 to 1e-10; central-difference gradient checks of
  ``layer.backward`` (2 layers, bidirectional, lengths, ``dstate`` given).
* Dropout between layers: inverted scaling ``1/(1-p)`` on every layer's output but the
  last, training mode only, reproducible under a seed, a fresh mask on every call, the
  cached mask replayed by backward (gradient check with ``p > 0``), ``p`` in ``[0, 1)``.
* Parameters: PyTorch's names, order and shapes (``*_zn_*`` for the simplified GRU),
  ``U(-1/sqrt(H), 1/sqrt(H))`` from the seed, LSTM ``forget_bias``, round trips.
* Glass box: ``cache.states[(layer, direction)]`` holds the kernels' arrays ``h``,
  ``gates`` and ``c`` (LSTM) / ``aux`` (GRU; None for the simplified GRU), not copies,
  and ``cache.gate(name, layer, direction)`` is a view of one gate block.  Behaviour
  checked: for the reverse direction (``direction=1``) these arrays are in processing
  order, i.e. step ``t`` of example ``b`` is time ``lengths[b] - 1 - t`` (for
  ``t < lengths[b]``); values at padded steps are not checked.
* Bad input raises ``TypeError`` / ``ValueError`` (``KeyError`` for state_dict keys)
  with a message naming the argument or key.

Sizes are tiny and all different: T=7, B=3, input 5, hidden 6; lengths [5, 1, 7]
(unsorted, with a length 1 and a full-length example).
"""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import assert_gradients  # noqa: E402

import rnnx  # noqa: E402
from rnnx.reference import masking  # noqa: E402

T, B, D, H = 7, 3, 5, 6
LENGTHS = np.array([5, 1, 7])

# cell id: (class name in rnnx, constructor options)
CELLS = {
    "rnn_tanh": ("RNN", {"nonlinearity": "tanh"}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),  # reset_after=True: PyTorch's
    "gru_reset_before": ("GRU", {"reset_after": False}),
    "gru_simplified": ("GRU", {"simplified": True}),
}
TORCH_CELLS = ["rnn_tanh", "rnn_relu", "gru", "lstm"]
GATE_NAMES = {"lstm": "ifgo", "gru": "rzn", "gru_simplified": "zn"}
DTYPES = {"float64": np.float64, "float32": np.float32}
TOL = {np.float64: 1e-10, np.float32: 1e-5}


def kind_of(cell):
    return CELLS[cell][0].lower()


def gate_names(cell):
    if cell == "gru_simplified":
        return GATE_NAMES["gru_simplified"]
    return GATE_NAMES.get(kind_of(cell), "")


def gate_count(cell):
    return {"rnn": 1, "lstm": 4}.get(kind_of(cell)) or len(gate_names(cell))


def make(cell, num_layers=1, bidirectional=False, dtype=np.float64, **kw):
    name, opts = CELLS[cell]
    return getattr(rnnx, name)(D, H, num_layers=num_layers, bidirectional=bidirectional,
                               dtype=dtype, **{**opts, **kw})


def config_id(num_layers, bidirectional, lengths):
    return f"L{num_layers}-{'bi' if bidirectional else 'uni'}-{'lengths' if lengths else 'full'}"


CONFIGS = [(L, bi, ln) for L in (1, 2) for bi in (False, True) for ln in (False, True)]
CONFIG_IDS = [config_id(*c) for c in CONFIGS]


# ----------------------------------------------------------------------------------
# states and comparisons
# ----------------------------------------------------------------------------------


def parts(state):
    """The arrays of a state: (h,) for RNN/GRU, (h, c) for the LSTM."""
    return tuple(state) if isinstance(state, tuple) else (state,)


def shaped_like(kind, arrays):
    return tuple(arrays) if kind == "lstm" else arrays[0]


def random_state(kind, num_layers, bidirectional, rng, dtype=np.float64, batch=B):
    shape = (num_layers * (2 if bidirectional else 1), batch, H)
    n = 2 if kind == "lstm" else 1
    return shaped_like(kind, [rng.uniform(-1, 1, shape).astype(dtype) for _ in range(n)])


def random_inputs(cell, num_layers, bidirectional, seed, dtype=np.float64, batch=B):
    """x, initial state, dy and dstate as a dict."""
    rng = np.random.default_rng(seed)
    kind = kind_of(cell)
    Dn = 2 if bidirectional else 1
    return {
        "x": rng.uniform(-1, 1, (T, batch, D)).astype(dtype),
        "state": random_state(kind, num_layers, bidirectional, rng, dtype, batch),
        "dy": rng.uniform(-1, 1, (T, batch, Dn * H)).astype(dtype),
        "dstate": random_state(kind, num_layers, bidirectional, rng, dtype, batch),
    }


def assert_close(got, want, dtype, what):
    """Agreement to rtol = TOL[dtype], with an absolute floor of TOL times the largest
    magnitude of `want` (for entries that cancel to almost 0)."""
    want = np.asarray(want)
    assert isinstance(got, np.ndarray), f"{what}: expected a numpy array, got {type(got)}"
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    assert got.dtype == np.dtype(dtype), f"{what}: dtype {got.dtype}, expected {np.dtype(dtype)}"
    tol = TOL[dtype]
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * scale, err_msg=what)


def assert_results_close(got, want, kind, dtype):
    """Compare two result dicts of :func:`rnnx_run` / :func:`torch_run` / reference."""
    for name in ("y", "dx"):
        assert_close(got[name], want[name], dtype, name)
    for name in ("state", "dstate0"):
        if kind == "lstm":
            assert isinstance(got[name], tuple) and len(got[name]) == 2, \
                f"{name} must be a tuple (h, c) for the LSTM, got {type(got[name])}"
        else:
            assert isinstance(got[name], np.ndarray), f"{name} must be an array"
        for i, (g, w) in enumerate(zip(parts(got[name]), parts(want[name]))):
            assert_close(g, w, dtype, f"{name}[{i}]")
    assert list(got["grads"]) == list(want["grads"]), "gradient keys"
    for key in want["grads"]:
        assert_close(got["grads"][key], want["grads"][key], dtype, f"grads[{key!r}]")


def rnnx_run(layer, a, lengths):
    y, state, cache = layer.forward(a["x"], state=a["state"], lengths=lengths)
    dx, dstate0, grads = layer.backward(a["dy"], cache, dstate=a["dstate"])
    return {"y": y, "state": state, "dx": dx, "dstate0": dstate0, "grads": grads,
            "cache": cache}


def weighted_loss(y, state, dy, dstate):
    """sum(y*dy) + sum(h_n*dh_n) (+ sum(c_n*dc_n)); padded steps of y are 0."""
    return float(np.sum(y * dy) + sum(np.sum(s * d) for s, d in zip(parts(state), parts(dstate))))


# ----------------------------------------------------------------------------------
# the NumPy reference, composed layer by layer and direction by direction
# ----------------------------------------------------------------------------------


def reverse_within(a, lengths):
    """Each example's valid steps in reverse order, 0 at padded steps (an involution on
    the valid part): ``out[t, b] = a[lengths[b] - 1 - t, b]`` for ``t < lengths[b]``."""
    out = np.zeros_like(a)
    for b, n in enumerate(lengths):
        out[:n, b] = a[:n, b][::-1]
    return out


def pname(prefix, layer, direction, zn=False):
    return f"{prefix}{'_zn' if zn else ''}_l{layer}{'_reverse' if direction else ''}"


def reference_forward(cell, sd, x, state, lengths, num_layers, bidirectional):
    """(y, final state, runs): runs[(l, d)] holds the masking kernels' inputs and
    outputs of every layer and direction, in processing order."""
    kind, opts = kind_of(cell), CELLS[cell][1]
    zn = cell == "gru_simplified"
    T_, B_ = x.shape[:2]
    lens = np.full(B_, T_) if lengths is None else np.asarray(lengths)
    m = masking.step_mask(lens, T_)[:, :, None]
    Dn = 2 if bidirectional else 1
    if state is None:
        state = shaped_like(kind, [np.zeros((num_layers * Dn, B_, H))] * (1 + (kind == "lstm")))
    s0 = parts(state)
    runs, finals = {}, [[], []]
    inp = x
    for layer in range(num_layers):
        outs = []
        for d in range(Dn):
            idx = layer * Dn + d
            p = {k: sd.get(pname(k, layer, d, zn)) for k in
                 ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
            xin = inp if d == 0 else reverse_within(inp, lens)
            run = {"x": xin, "p": p, "h0": s0[0][idx], "lens": lens}
            if kind == "rnn":
                b = None if p["bias_ih"] is None else p["bias_ih"] + p["bias_hh"]
                run["h"] = masking.rnn_forward(xin, run["h0"], p["weight_ih"], p["weight_hh"], b,
                                               opts["nonlinearity"], lengths=lens)
            elif kind == "lstm":
                b = None if p["bias_ih"] is None else p["bias_ih"] + p["bias_hh"]
                run["c0"] = s0[1][idx]
                run["h"], run["c"], run["gates"] = masking.lstm_forward(
                    xin, run["h0"], run["c0"], p["weight_ih"], p["weight_hh"], b, lengths=lens)
            else:
                run["gates_opts"] = {"reset_after": opts.get("reset_after", True),
                                     "simplified": opts.get("simplified", False)}
                run["h"], run["gates"], run["aux"] = masking.gru_forward(
                    xin, run["h0"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"],
                    **run["gates_opts"], lengths=lens)
            runs[(layer, d)] = run
            outs.append(run["h"] * m if d == 0 else reverse_within(run["h"], lens))
            finals[0].append(run["h"][-1])
            if kind == "lstm":
                finals[1].append(run["c"][-1])
        inp = np.concatenate(outs, axis=2)
    final = shaped_like(kind, [np.stack(f) for f in finals[: 1 + (kind == "lstm")]])
    return inp, final, runs


def reference_backward(cell, runs, dy, dstate, num_layers, bidirectional):
    """(dx, dstate0, grads) of :func:`reference_forward` by the masking backward kernels."""
    kind = kind_of(cell)
    zn = cell == "gru_simplified"
    Dn = 2 if bidirectional else 1
    ds = parts(dstate)
    d0 = [np.zeros_like(a) for a in ds]
    grads = {}
    dcur = dy
    for layer in reversed(range(num_layers)):
        dinp = None
        for d in range(Dn):
            idx = layer * Dn + d
            run = runs[(layer, d)]
            lens, p = run["lens"], run["p"]
            dh = dcur[:, :, d * H:(d + 1) * H]
            dh = dh if d == 0 else reverse_within(dh, lens)
            if kind == "rnn":
                dx, dh0, dw_ih, dw_hh, db = masking.rnn_backward(
                    dh, run["x"], run["h0"], run["h"], p["weight_ih"], p["weight_hh"],
                    CELLS[cell][1]["nonlinearity"], dh_n=ds[0][idx], lengths=lens)
                db_ih = db_hh = db
            elif kind == "lstm":
                dx, dh0, dc0, dw_ih, dw_hh, db = masking.lstm_backward(
                    dh, run["x"], run["h0"], run["c0"], run["h"], run["c"], run["gates"],
                    p["weight_ih"], p["weight_hh"], dh_n=ds[0][idx], dc_n=ds[1][idx],
                    lengths=lens)
                db_ih = db_hh = db
                d0[1][idx] = dc0
            else:
                dx, dh0, dw_ih, dw_hh, db_ih, db_hh = masking.gru_backward(
                    dh, run["x"], run["h0"], run["h"], run["gates"], run["aux"],
                    p["weight_ih"], p["weight_hh"], **run["gates_opts"], dh_n=ds[0][idx],
                    lengths=lens)
            d0[0][idx] = dh0
            dx = dx if d == 0 else reverse_within(dx, lens)
            dinp = dx if dinp is None else dinp + dx
            grads[pname("weight_ih", layer, d, zn)] = dw_ih
            grads[pname("weight_hh", layer, d, zn)] = dw_hh
            if p["bias_ih"] is not None:
                grads[pname("bias_ih", layer, d, zn)] = db_ih
                grads[pname("bias_hh", layer, d, zn)] = db_hh
        dcur = dinp
    grads = {k: grads[k] for k in sorted(grads, key=key_order(num_layers, Dn))}
    return dcur, shaped_like(kind, d0), grads


PREFIXES = ["weight_ih", "weight_hh", "bias_ih", "bias_hh"]


def prefix_of(key):
    return next(p for p in PREFIXES if key.startswith(p))


def layer_of(key):
    return int(key.split("_l")[-1].split("_")[0])


def key_order(num_layers, Dn):
    """PyTorch's parameter order: by layer, then direction, then w_ih, w_hh, b_ih, b_hh."""
    def order(key):
        return (layer_of(key), int(key.endswith("_reverse")), PREFIXES.index(prefix_of(key)))
    return order


def expected_keys(cell, num_layers, bidirectional, bias=True):
    zn = cell == "gru_simplified"
    keys = []
    for layer in range(num_layers):
        for d in range(2 if bidirectional else 1):
            keys += [pname(k, layer, d, zn) for k in PREFIXES[:4 if bias else 2]]
    return keys


def reference_run(cell, layer, a, lengths, num_layers, bidirectional):
    sd = {k: np.asarray(v) for k, v in layer.state_dict().items()}
    y, state, runs = reference_forward(cell, sd, a["x"], a["state"], lengths, num_layers,
                                       bidirectional)
    dx, dstate0, grads = reference_backward(cell, runs, a["dy"], a["dstate"], num_layers,
                                            bidirectional)
    return {"y": y, "state": state, "dx": dx, "dstate0": dstate0, "grads": grads,
            "runs": runs}


def test_reference_helpers_agree_with_themselves():
    """The composed reference itself: key order as PyTorch's, reverse_within an
    involution on the valid part."""
    assert expected_keys("gru_simplified", 2, True, bias=False) == [
        "weight_ih_zn_l0", "weight_hh_zn_l0", "weight_ih_zn_l0_reverse",
        "weight_hh_zn_l0_reverse", "weight_ih_zn_l1", "weight_hh_zn_l1",
        "weight_ih_zn_l1_reverse", "weight_hh_zn_l1_reverse"]
    keys = expected_keys("lstm", 2, True)
    shuffled = [keys[i] for i in np.random.default_rng(0).permutation(len(keys))]
    assert sorted(shuffled, key=key_order(2, 2)) == keys
    a = np.arange(T * B, dtype=float).reshape(T, B, 1)
    r = reverse_within(a, LENGTHS)
    assert r[0, 0, 0] == a[4, 0, 0] and r[4, 0, 0] == a[0, 0, 0] and r[5, 0, 0] == 0
    m = masking.step_mask(LENGTHS, T)[:, :, None]
    np.testing.assert_array_equal(reverse_within(r, LENGTHS), a * m)


# ----------------------------------------------------------------------------------
# PyTorch parity
# ----------------------------------------------------------------------------------


def torch_module(cell, num_layers, bidirectional, bias, dtype, seed):
    """The torch module with parameters U(-0.5, 0.5) drawn from a NumPy seed."""
    torch = pytest.importorskip("torch")
    name, opts = CELLS[cell]
    kw = {"nonlinearity": opts["nonlinearity"]} if name == "RNN" else {}
    tdtype = torch.float64 if dtype == np.float64 else torch.float32
    module = getattr(torch.nn, name)(D, H, num_layers=num_layers, bias=bias,
                                     bidirectional=bidirectional, dtype=tdtype, **kw)
    rng = np.random.default_rng(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, tuple(p.shape))))
    return module


def torch_run(module, kind, a, lengths):
    """PyTorch's outputs, final states and gradients of the weighted loss, as NumPy."""
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    def leaf(array):
        return torch.from_numpy(array.copy()).requires_grad_()

    x = leaf(a["x"])
    state = shaped_like(kind, [leaf(s) for s in parts(a["state"])])
    inp = x if lengths is None else pack_padded_sequence(x, torch.as_tensor(lengths),
                                                         enforce_sorted=False)
    out, final = module(inp, state)
    if lengths is not None:
        out, _ = pad_packed_sequence(out, total_length=a["x"].shape[0])
    loss = (out * torch.from_numpy(a["dy"])).sum()
    for f, d in zip(parts(final), parts(a["dstate"])):
        loss = loss + (f * torch.from_numpy(d)).sum()
    for p in module.parameters():
        p.grad = None
    loss.backward()
    return {
        "y": out.detach().numpy(),
        "state": shaped_like(kind, [f.detach().numpy() for f in parts(final)]),
        "dx": x.grad.numpy(),
        "dstate0": shaped_like(kind, [s.grad.numpy() for s in parts(state)]),
        "grads": {n: p.grad.numpy() for n, p in module.named_parameters()},
    }


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("num_layers, bidirectional, lengths", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_equals_pytorch(cell, num_layers, bidirectional, lengths, dtype):
    lengths = LENGTHS if lengths else None
    kind = kind_of(cell)
    module = torch_module(cell, num_layers, bidirectional, True, dtype, seed=1)
    layer = make(cell, num_layers, bidirectional, dtype=dtype, seed=2)
    assert list(layer.state_dict()) == list(module.state_dict())
    layer.load_state_dict(module.state_dict())  # torch tensors
    a = random_inputs(cell, num_layers, bidirectional, seed=3, dtype=dtype)
    got = rnnx_run(layer, a, lengths)
    assert list(got["grads"]) == list(layer.state_dict())
    assert_results_close(got, torch_run(module, kind, a, lengths), kind, dtype)


@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_equals_pytorch_without_bias(cell):
    kind = kind_of(cell)
    module = torch_module(cell, 2, True, False, np.float64, seed=4)
    layer = make(cell, 2, True, bias=False, seed=5)
    assert list(layer.state_dict()) == list(module.state_dict())
    assert not any(k.startswith("bias") for k in layer.state_dict())
    layer.load_state_dict(module.state_dict())
    a = random_inputs(cell, 2, True, seed=6)
    got = rnnx_run(layer, a, LENGTHS)
    assert_results_close(got, torch_run(module, kind, a, LENGTHS), kind, np.float64)


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("cell", TORCH_CELLS)
def test_rnnx_state_dict_loads_into_pytorch(cell, dtype):
    """The seeded rnnx parameters, loaded into torch (strict), give the same outputs."""
    torch = pytest.importorskip("torch")
    kind = kind_of(cell)
    layer = make(cell, 2, True, dtype=dtype, seed=7)
    module = torch_module(cell, 2, True, True, dtype, seed=8)
    module.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            layer.state_dict().items()})
    a = random_inputs(cell, 2, True, seed=9, dtype=dtype)
    got = rnnx_run(layer, a, LENGTHS)
    want = torch_run(module, kind, a, LENGTHS)
    assert_close(got["y"], want["y"], dtype, "y")
    for i, (g, w) in enumerate(zip(parts(got["state"]), parts(want["state"]))):
        assert_close(g, w, dtype, f"state[{i}]")


def test_torch_tensors_are_converted_to_the_layer_dtype():
    module = torch_module("lstm", 1, False, True, np.float32, seed=10)
    layer = make("lstm", dtype=np.float64, seed=11)
    layer.load_state_dict(module.state_dict())
    for key, value in layer.state_dict().items():
        assert isinstance(value, np.ndarray) and value.dtype == np.float64, key
        np.testing.assert_array_equal(value, module.state_dict()[key].double().numpy())


# ----------------------------------------------------------------------------------
# the NumPy reference: every cell, including the GRU variants torch lacks
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("num_layers, bidirectional, lengths", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_equals_the_composed_reference(cell, num_layers, bidirectional, lengths):
    lengths = LENGTHS if lengths else None
    kind = kind_of(cell)
    layer = make(cell, num_layers, bidirectional, seed=12)
    a = random_inputs(cell, num_layers, bidirectional, seed=13)
    got = rnnx_run(layer, a, lengths)
    want = reference_run(cell, layer, a, lengths, num_layers, bidirectional)
    assert_results_close(got, want, kind, np.float64)
    if lengths is not None:  # padded steps: exactly 0 in y and in dx
        pad = ~masking.step_mask(lengths, T)
        assert np.all(got["y"][pad] == 0) and np.all(got["dx"][pad] == 0)


@pytest.mark.parametrize("cell", ["gru_reset_before", "gru_simplified"])
def test_reference_variants_with_bias_false(cell):
    layer = make(cell, 2, True, bias=False, seed=14)
    assert list(layer.state_dict()) == expected_keys(cell, 2, True, bias=False)
    a = random_inputs(cell, 2, True, seed=15)
    got = rnnx_run(layer, a, LENGTHS)
    assert_results_close(got, reference_run(cell, layer, a, LENGTHS, 2, True), "gru",
                         np.float64)


@pytest.mark.parametrize("cell", ["gru_reset_before", "gru_simplified", "lstm", "rnn_tanh"])
def test_gradients_by_central_differences(cell):
    """2 layers, bidirectional, unsorted lengths, dstate given."""
    layer = make(cell, 2, True, seed=16)
    a = random_inputs(cell, 2, True, seed=17)
    params = {k: np.array(v) for k, v in layer.state_dict().items()}
    got = rnnx_run(layer, a, LENGTHS)

    def loss():
        layer.load_state_dict(params)
        y, state, _ = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)
        return weighted_loss(y, state, a["dy"], a["dstate"])

    names = ["h0", "c0"] if kind_of(cell) == "lstm" else ["h0"]
    inputs = {"x": a["x"], **dict(zip(names, parts(a["state"]))), **params}
    analytic = {"x": got["dx"], **dict(zip(names, parts(got["dstate0"]))), **got["grads"]}
    assert_gradients(loss, inputs, analytic)


def test_state_none_is_zeros_and_dstate_none_is_zeros():
    layer = make("lstm", 2, True, seed=18)
    a = random_inputs("lstm", 2, True, seed=19)
    zeros = tuple(np.zeros_like(s) for s in a["state"])
    y1, s1, c1 = layer.forward(a["x"], lengths=LENGTHS)
    y2, s2, c2 = layer.forward(a["x"], state=zeros, lengths=LENGTHS)
    np.testing.assert_array_equal(y1, y2)
    for p, q in zip(s1, s2):
        np.testing.assert_array_equal(p, q)
    g1 = layer.backward(a["dy"], c1)
    g2 = layer.backward(a["dy"], c2, dstate=tuple(np.zeros_like(s) for s in a["state"]))
    np.testing.assert_array_equal(g1[0], g2[0])
    assert isinstance(g1[1], tuple) and [d.shape for d in g1[1]] == [s.shape for s in zeros]
    for p, q in zip(g1[1], g2[1]):
        np.testing.assert_array_equal(p, q)
    assert list(g1[2]) == list(g2[2])
    for k in g1[2]:
        np.testing.assert_array_equal(g1[2][k], g2[2][k])


def test_lengths_all_T_equal_no_lengths_and_inputs_are_not_modified():
    layer = make("gru", 2, True, seed=20)
    a = random_inputs("gru", 2, True, seed=21)
    before = {k: np.copy(v) for k, v in a.items()}
    full = rnnx_run(layer, a, None)
    all_t = rnnx_run(layer, a, np.full(B, T))
    assert_results_close(all_t, full, "gru", np.float64)
    for k, v in before.items():
        np.testing.assert_array_equal(a[k], v, err_msg=f"{k} was modified")


def test_non_contiguous_input_gives_the_same_result():
    layer = make("lstm", 2, True, seed=22)
    a = random_inputs("lstm", 2, True, seed=23)
    x_strided = np.asfortranarray(a["x"])
    y1, s1, _ = layer.forward(a["x"], lengths=LENGTHS)
    y2, s2, _ = layer.forward(x_strided, lengths=LENGTHS)
    np.testing.assert_array_equal(y1, y2)
    for p, q in zip(s1, s2):
        np.testing.assert_array_equal(p, q)


def test_backward_leaves_the_cache_unchanged_and_can_run_twice():
    layer = make("lstm", 2, True, seed=24)
    a = random_inputs("lstm", 2, True, seed=25)
    _, _, cache = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)
    snapshot = {key: {k: None if v is None else np.copy(v) for k, v in run.items()}
                for key, run in cache.states.items()}
    first = layer.backward(a["dy"], cache, dstate=a["dstate"])
    second = layer.backward(a["dy"], cache, dstate=a["dstate"])
    np.testing.assert_array_equal(first[0], second[0])
    for k in first[2]:
        np.testing.assert_array_equal(first[2][k], second[2][k], err_msg=k)
    for key, run in snapshot.items():
        for k, v in run.items():
            if v is not None:
                np.testing.assert_array_equal(cache.states[key][k], v, err_msg=f"{key} {k}")


def _backward_bits(out):
    """Every array of backward's (dx, dstate0, grads) as bytes, for bit-for-bit checks."""
    dx, dstate0, grads = out
    arrays = [dx, *parts(dstate0), *grads.values()]
    return [None if a is None else (a.dtype, a.shape, a.tobytes()) for a in arrays], list(grads)


@pytest.mark.parametrize("config", CONFIGS, ids=CONFIG_IDS)
@pytest.mark.parametrize("cell", list(CELLS))
def test_backward_through_the_kernel_wrappers_gives_the_same_bits(cell, config):
    """Backward hands forward's (T+1, B, H) outputs to the compiled kernels directly while
    the cache is as forward left it; with an array of cache.states replaced (a copy with
    the same values) it goes through rnnx.kernels instead. Both give the same bits."""
    num_layers, bidirectional, lengths = config
    layer = make(cell, num_layers, bidirectional, seed=40)
    a = random_inputs(cell, num_layers, bidirectional, seed=41)
    ln = LENGTHS if lengths else None
    _, _, cache = layer.forward(a["x"], state=a["state"], lengths=ln)
    fast = layer.backward(a["dy"], cache, dstate=a["dstate"])
    for run in cache.states.values():
        run["h"] = run["h"].copy()
    slow = layer.backward(a["dy"], cache, dstate=a["dstate"])
    assert _backward_bits(fast) == _backward_bits(slow)


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
def test_backward_reads_the_initial_state_as_the_kernels_did(cell):
    """An initial state changed in place between forward and backward: backward reads
    its new values, as rnnx.kernels' backward given that state does (the saved outputs'
    first row no longer matches it, so they are not used)."""
    layer = make(cell, seed=42)
    a = random_inputs(cell, 1, False, seed=43)
    _, _, cache = layer.forward(a["x"], state=a["state"])
    before = _backward_bits(layer.backward(a["dy"], cache))
    for arr in parts(a["state"]):
        arr *= 0.5
    after = layer.backward(a["dy"], cache)
    assert _backward_bits(after) != before
    for run in cache.states.values():
        run["h"] = run["h"].copy()  # the kernels' path, with the changed state
    assert _backward_bits(layer.backward(a["dy"], cache)) == _backward_bits(after)


# ----------------------------------------------------------------------------------
# parameters: names, shapes, initialisation
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_state_dict_names_and_shapes(cell, bias):
    layer = make(cell, 2, True, bias=bias, dtype=np.float32, seed=26)
    sd = layer.state_dict()
    assert list(sd) == expected_keys(cell, 2, True, bias)
    G = gate_count(cell)
    for key, value in sd.items():
        assert isinstance(value, np.ndarray) and value.dtype == np.float32, key
        fan_in = D if layer_of(key) == 0 else 2 * H
        shape = {"weight_ih": (G * H, fan_in), "weight_hh": (G * H, H),
                 "bias_ih": (G * H,), "bias_hh": (G * H,)}[prefix_of(key)]
        assert value.shape == shape, key


@pytest.mark.parametrize("cell", list(CELLS))
def test_initialisation_is_uniform_and_seeded(cell):
    bound = 1 / np.sqrt(H)
    layer = make(cell, 2, True, seed=27)
    sd = layer.state_dict()
    values = np.concatenate([v.ravel() for v in sd.values()])
    assert np.all(np.abs(values) <= bound)
    assert values.max() > 0.9 * bound and values.min() < -0.9 * bound  # not a narrower range
    assert len(np.unique(values)) == values.size
    same = make(cell, 2, True, seed=27).state_dict()
    other = make(cell, 2, True, seed=28).state_dict()
    for key in sd:
        np.testing.assert_array_equal(sd[key], same[key], err_msg=key)
        assert not np.array_equal(sd[key], other[key]), key
    unseeded = np.concatenate([v.ravel() for v in make(cell, 2, True).state_dict().values()])
    assert np.all(np.abs(unseeded) <= bound)
    f32 = make(cell, 1, dtype=np.float32, seed=27).state_dict()
    assert all(v.dtype == np.float32 for v in f32.values())


def test_lstm_forget_bias_is_added_to_the_forget_gate_of_bias_ih():
    plain = make("lstm", 2, True, seed=29).state_dict()
    biased = make("lstm", 2, True, seed=29, forget_bias=1.0).state_dict()
    assert list(plain) == list(biased)
    for key in plain:
        if key.startswith("bias_ih"):
            delta = biased[key] - plain[key]
            np.testing.assert_allclose(delta[H:2 * H], 1.0, rtol=1e-12, err_msg=key)
            np.testing.assert_array_equal(delta[:H], 0, err_msg=key)
            np.testing.assert_array_equal(delta[2 * H:], 0, err_msg=key)
        else:
            np.testing.assert_array_equal(biased[key], plain[key], err_msg=key)


def test_state_dict_round_trip():
    src = make("gru_simplified", 2, True, seed=30)
    dst = make("gru_simplified", 2, True, seed=31)
    dst.load_state_dict(src.state_dict())
    a = random_inputs("gru_simplified", 2, True, seed=32)
    np.testing.assert_array_equal(src.forward(a["x"], lengths=LENGTHS)[0],
                                  dst.forward(a["x"], lengths=LENGTHS)[0])


# ----------------------------------------------------------------------------------
# dropout
# ----------------------------------------------------------------------------------


def test_training_flag():
    layer = make("gru", 2, dropout=0.5, seed=33)
    assert layer.training is True
    layer.eval()
    assert layer.training is False
    layer.train()
    assert layer.training is True


@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
def test_eval_mode_ignores_dropout(cell):
    a = random_inputs(cell, 2, True, seed=34)
    layer = make(cell, 2, True, dropout=0.5, seed=35)
    plain = make(cell, 2, True, seed=36)
    plain.load_state_dict(layer.state_dict())
    layer.eval()
    got, want = rnnx_run(layer, a, LENGTHS), rnnx_run(plain, a, LENGTHS)
    assert_results_close(got, want, kind_of(cell), np.float64)
    again = rnnx_run(layer, a, LENGTHS)
    np.testing.assert_array_equal(again["y"], got["y"])
    layer.train()
    assert not np.allclose(rnnx_run(layer, a, LENGTHS)["y"], got["y"])


def test_dropout_is_inverted_and_between_layers_only():
    """RNN relu, 2 layers, layer 1 = identity: its output is dropout(layer 0's output),
    each entry 0 or scaled by 1/(1-p); the last layer's output is not dropped."""
    p = 0.25
    rng = np.random.default_rng(37)
    layer = make("rnn_relu", 2, dropout=p, seed=38)
    sd = {"weight_ih_l0": rng.uniform(0.1, 0.5, (H, D)), "weight_hh_l0": rng.uniform(0, .2, (H, H)),
          "bias_ih_l0": np.full(H, 0.1), "bias_hh_l0": np.full(H, 0.1),
          "weight_ih_l1": np.eye(H), "weight_hh_l1": np.zeros((H, H)),
          "bias_ih_l1": np.zeros(H), "bias_hh_l1": np.zeros(H)}
    layer.load_state_dict(sd)
    first = make("rnn_relu", 1, seed=39)
    first.load_state_dict({k: v for k, v in sd.items() if k.endswith("l0")})
    x = rng.uniform(0.1, 1, (T, B, D))
    y0 = first.forward(x)[0]
    assert np.all(y0 > 0)
    ratios = []
    for _ in range(3):
        ratio = layer.forward(x)[0] / y0
        assert np.all(np.isclose(ratio, 0, atol=1e-12) | np.isclose(ratio, 1 / (1 - p))), \
            np.unique(np.round(ratio, 6))
        ratios.append(ratio)
    dropped = np.mean([np.isclose(r, 0, atol=1e-12).mean() for r in ratios])
    assert 0.1 < dropped < 0.45  # p = 0.25 of 3 * 126 entries
    layer.eval()
    np.testing.assert_allclose(layer.forward(x)[0], y0, rtol=1e-12)


def test_dropout_is_reproducible_under_a_seed_and_fresh_on_every_call():
    a = random_inputs("lstm", 3, False, seed=40)
    one, two = (make("lstm", 3, dropout=0.5, seed=41) for _ in range(2))
    y1 = [one.forward(a["x"], state=a["state"])[0] for _ in range(2)]
    y2 = [two.forward(a["x"], state=a["state"])[0] for _ in range(2)]
    np.testing.assert_array_equal(y1[0], y2[0])
    np.testing.assert_array_equal(y1[1], y2[1])
    assert not np.allclose(y1[0], y1[1]), "the same dropout mask on every call"


def test_backward_replays_the_cached_dropout_mask():
    a = random_inputs("gru", 2, True, seed=42)
    layer = make("gru", 2, True, dropout=0.5, seed=43)
    y, _, cache = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)
    first = layer.backward(a["dy"], cache, dstate=a["dstate"])
    y_other = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)[0]
    assert not np.allclose(y, y_other)
    again = layer.backward(a["dy"], cache, dstate=a["dstate"])
    np.testing.assert_array_equal(first[0], again[0])
    for k in first[2]:
        np.testing.assert_array_equal(first[2][k], again[2][k], err_msg=k)


def test_gradients_with_dropout_by_central_differences():
    """A fresh layer with the same seed draws the same mask for every evaluation."""
    cell, p = "gru_reset_before", 0.5
    a = random_inputs(cell, 2, True, seed=44)
    params = {k: np.array(v) for k, v in make(cell, 2, True, dropout=p, seed=45)
              .state_dict().items()}

    def fresh():
        layer = make(cell, 2, True, dropout=p, seed=45)
        layer.load_state_dict(params)
        return layer

    got = rnnx_run(fresh(), a, LENGTHS)
    plain = make(cell, 2, True, seed=45)
    plain.load_state_dict(params)
    assert not np.allclose(got["y"], plain.forward(a["x"], a["state"], LENGTHS)[0]), \
        "dropout had no effect"

    def loss():
        y, state, _ = fresh().forward(a["x"], state=a["state"], lengths=LENGTHS)
        return weighted_loss(y, state, a["dy"], a["dstate"])

    inputs = {"x": a["x"], "h0": a["state"], **params}
    analytic = {"x": got["dx"], "h0": got["dstate0"], **got["grads"]}
    assert_gradients(loss, inputs, analytic)


@pytest.mark.parametrize("dropout", [1.0, -0.1, 1.5])
@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "lstm"])
def test_dropout_out_of_range_raises(cell, dropout):
    with pytest.raises(ValueError, match="dropout"):
        make(cell, 2, dropout=dropout)


# ----------------------------------------------------------------------------------
# glass box: cache.states and cache.gate
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", list(CELLS))
def test_cache_states_hold_the_kernel_arrays(cell):
    """cache.states[(layer, direction)] equals the reference kernels' arrays on valid
    steps, in processing order (reversed within each length for direction 1)."""
    kind = kind_of(cell)
    layer = make(cell, 2, True, seed=46)
    a = random_inputs(cell, 2, True, seed=47)
    y, _, cache = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)
    want = reference_run(cell, layer, a, LENGTHS, 2, True)["runs"]
    assert set(cache.states) == {(0, 0), (0, 1), (1, 0), (1, 1)}
    m = masking.step_mask(LENGTHS, T)
    names = {"rnn": ["h"], "lstm": ["h", "gates", "c"], "gru": ["h", "gates", "aux"]}[kind]
    for key, run in cache.states.items():
        assert run is cache.states[key]
        for name in names:
            arr = run[name]
            if cell == "gru_simplified" and name == "aux":
                assert arr is None
                continue
            assert isinstance(arr, np.ndarray), f"{key} {name}"
            assert arr is cache.states[key][name], f"{key} {name}: a new array on every access"
            # the kernels return views of their buffers (h_all[1:], pybind11 capsules); a
            # copy made by the layer would own its data
            assert arr.base is not None, f"{key} {name}: a copy, not the kernel's array"
            assert arr.shape == want[key][name].shape, f"{key} {name}"
            assert_close(arr[m], want[key][name][m], np.float64, f"states[{key}][{name!r}]")
    # processing order of the reverse direction, against the returned output
    for b, n in enumerate(LENGTHS):
        np.testing.assert_array_equal(cache.states[(1, 0)]["h"][:n, b], y[:n, b, :H])
        np.testing.assert_array_equal(cache.states[(1, 1)]["h"][:n, b], y[:n, b, H:][::-1])


@pytest.mark.parametrize("cell", ["lstm", "gru", "gru_reset_before", "gru_simplified"])
def test_cache_gate_views(cell):
    layer = make(cell, 2, True, seed=48)
    a = random_inputs(cell, 2, True, seed=49)
    _, _, cache = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)
    for (lay, d), run in cache.states.items():
        for k, name in enumerate(gate_names(cell)):
            view = cache.gate(name, layer=lay, direction=d)
            assert view.shape == (T, B, H)
            np.testing.assert_array_equal(view, run["gates"][:, :, k * H:(k + 1) * H])
            assert view.base is not None and np.shares_memory(view, run["gates"]), \
                f"gate {name!r} of {(lay, d)} is a copy"
    with pytest.raises((KeyError, ValueError)):
        cache.gate("r" if cell in ("lstm", "gru_simplified") else "i")
    # defaults: layer 0, direction 0
    np.testing.assert_array_equal(cache.gate(gate_names(cell)[-1]),
                                  cache.states[(0, 0)]["gates"][:, :, -H:])


def test_lstm_gates_satisfy_the_cell_equations():
    """h = o * tanh(c), c = f * c_prev + i * g on the valid steps of every layer and
    direction (processing order; c_prev of step 0 is c0)."""
    layer = make("lstm", 2, True, seed=50)
    a = random_inputs("lstm", 2, True, seed=51)
    _, _, cache = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)
    m = masking.step_mask(LENGTHS, T)
    for (lay, d), run in cache.states.items():
        i, f, g, o = (cache.gate(n, layer=lay, direction=d) for n in "ifgo")
        c_prev = np.concatenate((a["state"][1][lay * 2 + d][None], run["c"][:-1]))
        np.testing.assert_allclose(run["h"][m], (o * np.tanh(run["c"]))[m], rtol=1e-12)
        np.testing.assert_allclose(run["c"][m], (f * c_prev + i * g)[m], rtol=1e-12,
                                   atol=1e-15)


def test_gru_gates_satisfy_the_cell_equations():
    """h = (1 - z) * n + z * h_prev; reset_after: n = tanh(x W_in + b_in + r * aux)."""
    layer = make("gru", 1, True, seed=52)
    a = random_inputs("gru", 1, True, seed=53)
    _, _, cache = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)
    sd = layer.state_dict()
    m = masking.step_mask(LENGTHS, T)
    for d in range(2):
        run = cache.states[(0, d)]
        r, z, n = (cache.gate(k, layer=0, direction=d) for k in "rzn")
        h_prev = np.concatenate((a["state"][d][None], run["h"][:-1]))
        np.testing.assert_allclose(run["h"][m], ((1 - z) * n + z * h_prev)[m], rtol=1e-12,
                                   atol=1e-15)
        x = a["x"] if d == 0 else reverse_within(a["x"], LENGTHS)
        sfx = "_reverse" if d else ""
        a_in = x @ sd["weight_ih_l0" + sfx][2 * H:].T + sd["bias_ih_l0" + sfx][2 * H:]
        np.testing.assert_allclose(n[m], np.tanh(a_in + r * run["aux"])[m], rtol=1e-12,
                                   atol=1e-15)


# ----------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------


def bad_forward(cell, **changes):
    """forward of a float32, 2-layer bidirectional layer with one argument changed."""
    layer = make(cell, 2, True, dtype=np.float32, seed=54)
    a = random_inputs(cell, 2, True, seed=55, dtype=np.float32)
    args = {"x": a["x"], "state": a["state"], "lengths": LENGTHS, **changes}
    return lambda: layer.forward(args["x"], state=args["state"], lengths=args["lengths"])


def bad_backward(cell, **changes):
    layer = make(cell, 2, True, dtype=np.float32, seed=56)
    a = random_inputs(cell, 2, True, seed=57, dtype=np.float32)
    _, _, cache = layer.forward(a["x"], state=a["state"], lengths=LENGTHS)
    args = {"dy": a["dy"], "dstate": a["dstate"], **changes}
    return lambda: layer.backward(args["dy"], cache, dstate=args["dstate"])


def _f32(shape):
    return np.zeros(shape, dtype=np.float32)


STATE = r"state|h0|c0|h_0|c_0"
# id: (call, exception, message pattern)
BAD_INPUT = {
    "x_rank_2": (lambda: bad_forward("gru", x=_f32((T, D))), ValueError, r"\bx\b"),
    "x_rank_4": (lambda: bad_forward("gru", x=_f32((T, B, D, 1))), ValueError, r"\bx\b"),
    "x_features": (lambda: bad_forward("lstm", x=_f32((T, B, D + 1))), ValueError, r"\bx\b"),
    "x_float64": (lambda: bad_forward("lstm", x=np.zeros((T, B, D))), TypeError, r"\bx\b"),
    "x_int": (lambda: bad_forward("rnn_tanh", x=np.zeros((T, B, D), dtype=int)), ValueError,
              r"x of integer dtype \(index input\) must have shape \(T, B\)"),
    "lengths_zero": (lambda: bad_forward("gru", lengths=np.array([5, 0, 7])), ValueError,
                     "lengths"),
    "lengths_above_T": (lambda: bad_forward("gru", lengths=np.array([5, 1, T + 1])),
                        ValueError, "lengths"),
    "lengths_wrong_size": (lambda: bad_forward("lstm", lengths=np.array([5, 1])), ValueError,
                           "lengths"),
    "lengths_2d": (lambda: bad_forward("lstm", lengths=np.array([[5, 1, 7]])), ValueError,
                   "lengths"),
    "lengths_float": (lambda: bad_forward("rnn_tanh", lengths=np.array([5.0, 1.0, 7.0])),
                      TypeError, "lengths"),
    "state_layers": (lambda: bad_forward("gru", state=_f32((2, B, H))), ValueError, STATE),
    "state_hidden": (lambda: bad_forward("rnn_tanh", state=_f32((4, B, H + 1))), ValueError,
                     STATE),
    "state_float64": (lambda: bad_forward("gru", state=np.zeros((4, B, H))), TypeError, STATE),
    "lstm_state_not_a_tuple": (lambda: bad_forward("lstm", state=_f32((4, B, H))),
                               (TypeError, ValueError), STATE),
    "lstm_c0_batch": (lambda: bad_forward("lstm", state=(_f32((4, B, H)), _f32((4, B + 1, H)))),
                      ValueError, STATE),
    "dy_shape": (lambda: bad_backward("gru", dy=_f32((T, B, H))), ValueError, r"\bdy\b"),
    "dy_float64": (lambda: bad_backward("gru", dy=np.zeros((T, B, 2 * H))), TypeError,
                   r"\bdy\b"),
    "dstate_shape": (lambda: bad_backward("lstm", dstate=(_f32((4, B, H)), _f32((2, B, H)))),
                     ValueError, "dstate"),
    "nonlinearity": (lambda: lambda: make("rnn_tanh", nonlinearity="sigmoid"), ValueError,
                     "nonlinearity"),
    "bidirectional_str": (lambda: lambda: rnnx.GRU(D, H, bidirectional="no"), TypeError,
                          "bidirectional"),
    "bias_none": (lambda: lambda: rnnx.RNN(D, H, bias=None), TypeError, "bias"),
    "peephole_str": (lambda: lambda: rnnx.LSTM(D, H, peephole="yes"), TypeError, "peephole"),
    "num_layers_huge": (lambda: lambda: rnnx.LSTM(D, H, num_layers=2 ** 50), MemoryError,
                        r"need \d+ bytes"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_raises_a_clear_exception(case):
    call, exc, pattern = BAD_INPUT[case]
    with pytest.raises(exc, match=pattern):
        call()()


def test_valid_input_of_the_bad_input_cases_runs():
    for cell in ("gru", "lstm", "rnn_tanh"):
        bad_forward(cell)()
        bad_backward(cell)()


def _sd_missing(sd):
    del sd["weight_hh_l1_reverse"]
    return sd, "weight_hh_l1_reverse", (KeyError, ValueError)


def _sd_extra(sd):
    sd["weight_hh_l2"] = sd["weight_hh_l1"]
    return sd, "weight_hh_l2", (KeyError, ValueError)


def _sd_misshaped(sd):
    sd["bias_ih_l1_reverse"] = sd["bias_ih_l1_reverse"][:-1]
    return sd, "bias_ih_l1_reverse", ValueError


def _sd_transposed(sd):
    sd["weight_ih_l0"] = np.ascontiguousarray(sd["weight_ih_l0"][:D].T)  # (D, H) for (3H, D)
    return sd, "weight_ih_l0", ValueError


SD_CASES = {"missing": _sd_missing, "extra": _sd_extra, "misshaped": _sd_misshaped,
            "transposed": _sd_transposed}


@pytest.mark.parametrize("case", list(SD_CASES))
def test_bad_state_dict_raises_naming_the_key(case):
    layer = make("gru", 2, True, seed=58)
    sd, key, exc = SD_CASES[case]({k: np.array(v) for k, v in layer.state_dict().items()})
    with pytest.raises(exc, match=key):
        layer.load_state_dict(sd)


def test_full_gru_state_dict_does_not_load_into_the_simplified_gru():
    full = make("gru", 1, seed=59).state_dict()
    with pytest.raises((KeyError, ValueError), match="weight_ih"):
        make("gru_simplified", 1, seed=60).load_state_dict(full)


def test_backward_uses_the_parameters_forward_used():
    """Reloading parameters between forward and backward does not mix old and new weights."""
    layer = rnnx.GRU(3, 4, dtype=np.float64, seed=1)
    x = np.random.default_rng(0).standard_normal((5, 2, 3))
    y, _, cache = layer.forward(x)
    want = layer.backward(np.ones_like(y), cache)
    layer.load_state_dict({k: v * 2 for k, v in layer.state_dict().items()})
    got = layer.backward(np.ones_like(y), cache)
    np.testing.assert_array_equal(got[0], want[0])
    for key in want[2]:
        np.testing.assert_array_equal(got[2][key], want[2][key])
