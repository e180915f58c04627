"""rnnx.Tagger: the one-call training step against the composed calls (bit for bit), against
central differences, across threads, and its refusals."""

import pathlib
import sys

import numpy as np
import pytest

import rnnx
from rnnx import heads

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import misaligned  # noqa: E402

# (cell, constructor keyword arguments)
CELLS = {
    "rnn-tanh": ("rnn", {}),
    "rnn-relu": ("rnn", {"nonlinearity": "relu"}),
    "gru": ("gru", {}),
    "gru-reset-before": ("gru", {"reset_after": False}),
    "gru-simplified": ("gru", {"simplified": True}),
    "lstm": ("lstm", {}),
    "lstm-peephole": ("lstm", {"peephole": True}),
}
MAKE = {"rnn": rnnx.RNN, "gru": rnnx.GRU, "lstm": rnnx.LSTM}


def make(cell_id, D=3, H=5, C=4, dtype=np.float64, seed=0, bias=True, head_bias=True, **kw):
    cell, extra = CELLS[cell_id]
    layer = MAKE[cell](D, H, dtype=dtype, seed=seed, bias=bias, **extra, **kw)
    tagger = rnnx.Tagger(layer, C, bias=head_bias, seed=seed + 1)
    if head_bias:  # a non-zero head bias, so that its gradient path is exercised
        tagger.head_bias[:] = np.random.default_rng(seed + 2).uniform(-0.5, 0.5, C)
    return tagger


def batch(T=4, B=3, D=3, C=4, dtype=np.float64, seed=0, index=False, lengths=False):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, D, (T, B)) if index else rng.standard_normal((T, B, D)).astype(dtype)
    targets = rng.integers(0, C, (T, B))
    lens = None
    if lengths:
        lens = rng.integers(1, T + 1, B)
        lens[0] = T
        lens[-1] = 1
    return x, targets, lens


def composed(tagger, x, targets, lengths):
    """The step as the separate public calls: layer.forward, the fused head, layer.backward."""
    layer = tagger.layer
    T, B = targets.shape
    mask = None if lengths is None else np.arange(T)[:, None] < lengths[None, :]
    y, _, cache = layer.forward(x, lengths=lengths)
    loss, dy, dw, db = heads.dense_softmax_cross_entropy(y, tagger.head_weight,
                                                          tagger.head_bias, targets, mask)
    _, _, rgrads = layer.backward(dy, cache)
    grads = {f"rnn.{k}": v for k, v in rgrads.items()}
    grads["head.weight"] = dw
    if db is not None:
        grads["head.bias"] = db
    return float(loss), grads


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["f32", "f64"])
@pytest.mark.parametrize("inputs", ["dense", "index", "dense-lengths", "index-lengths"])
@pytest.mark.parametrize("cell_id", list(CELLS))
def test_one_call_equals_the_composed_calls_bit_for_bit(cell_id, inputs, dtype):
    tagger = make(cell_id, dtype=dtype)
    assert tagger._fused
    x, targets, lengths = batch(dtype=dtype, index="index" in inputs, lengths="lengths" in inputs)
    loss, grads = tagger.loss_and_grads(x, targets, lengths)
    want_loss, want = composed(tagger, x, targets, lengths)
    assert isinstance(loss, float) and loss == want_loss
    assert list(grads) == list(want) == list(tagger.parameters())
    for k in want:
        assert grads[k].dtype == dtype and grads[k].shape == want[k].shape, k
        np.testing.assert_array_equal(grads[k], want[k], err_msg=k)
    assert tagger.loss(x, targets, lengths) == want_loss


@pytest.mark.parametrize("bias,head_bias", [(False, True), (True, False), (False, False)])
@pytest.mark.parametrize("cell_id", list(CELLS))
def test_without_biases(cell_id, bias, head_bias):
    tagger = make(cell_id, bias=bias, head_bias=head_bias)
    x, targets, lengths = batch(lengths=True)
    loss, grads = tagger.loss_and_grads(x, targets, lengths)
    want_loss, want = composed(tagger, x, targets, lengths)
    assert loss == want_loss and list(grads) == list(want) == list(tagger.parameters())
    assert any(k.startswith("rnn.bias_ih") for k in grads) == bias
    assert ("head.bias" in grads) == head_bias
    for k in want:
        np.testing.assert_array_equal(grads[k], want[k], err_msg=k)


# The masked reference LSTM has no peepholes: peepholes with lengths are held against the
# separate calls and central differences above and below instead.
TWIN_CASES = [(c, i) for c in CELLS for i in ("dense", "index", "dense-lengths")
              if not (c == "lstm-peephole" and i == "dense-lengths")]


@pytest.mark.parametrize("cell_id,inputs", TWIN_CASES)
def test_the_numpy_twin_agrees(cell_id, inputs):
    from rnnx.reference.tagger import tagger_loss_and_grads

    tagger = make(cell_id, D=3, H=6, C=4)
    x, targets, lengths = batch(T=5, B=3, D=3, C=4, index=inputs == "index",
                                lengths="lengths" in inputs)
    layer = tagger.layer
    w_ih, w_hh, b_ih, b_hh, peep = (layer._params.get(n) for n in tagger._param_names)
    want_loss, want = tagger_loss_and_grads(
        x, targets, w_ih, w_hh, b_ih, b_hh, tagger.head_weight, tagger.head_bias,
        cell=layer._kind, nonlinearity=getattr(layer, "nonlinearity", "tanh"),
        reset_after=getattr(layer, "reset_after", True),
        simplified=getattr(layer, "simplified", False), peephole=peep, lengths=lengths)
    loss, grads = tagger.loss_and_grads(x, targets, lengths)
    assert loss == pytest.approx(want_loss, rel=1e-12)
    names = dict(zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole"),
                     ("rnn." + n for n in tagger._param_names)))
    for k, v in want.items():
        np.testing.assert_allclose(grads[names.get(k, k)], v, rtol=1e-10, atol=1e-12,
                                   err_msg=k)
    assert len(grads) == len(want)


def numeric_grads(tagger, x, targets, lengths, eps=1e-6, picks=3, seed=0):
    """Central differences of the loss at a few entries of every parameter."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, p in tagger.parameters().items():
        flat = p.reshape(-1)
        for i in rng.choice(flat.size, size=min(picks, flat.size), replace=False):
            keep = flat[i]
            flat[i] = keep + eps
            up = tagger.loss(x, targets, lengths)
            flat[i] = keep - eps
            down = tagger.loss(x, targets, lengths)
            flat[i] = keep
            out[(name, int(i))] = (up - down) / (2 * eps)
    return out


@pytest.mark.parametrize("cell_id", list(CELLS))
@pytest.mark.parametrize("shape", ["single", "stacked-bidirectional"])
def test_gradients_match_central_differences(cell_id, shape):
    kw = {} if shape == "single" else {"num_layers": 2, "bidirectional": True}
    tagger = make(cell_id, D=3, H=4, C=5, **kw)
    assert tagger._fused == (shape == "single")
    x, targets, lengths = batch(T=5, B=3, D=3, C=5, lengths=True)
    loss, grads = tagger.loss_and_grads(x, targets, lengths)
    assert loss == pytest.approx(tagger.loss(x, targets, lengths), rel=1e-12)
    for (name, i), num in numeric_grads(tagger, x, targets, lengths).items():
        assert grads[name].reshape(-1)[i] == pytest.approx(num, rel=1e-5, abs=1e-7), (name, i)


def test_loss_is_the_summed_cross_entropy_of_the_valid_steps():
    tagger = make("gru", C=3)
    x, targets, lengths = batch(C=3, lengths=True)
    logits = tagger.forward(x, lengths)
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    T, B = targets.shape
    want = -sum(logp[t, b, targets[t, b]] for t in range(T) for b in range(B) if t < lengths[b])
    assert tagger.loss(x, targets, lengths) == pytest.approx(want, rel=1e-12)
    # targets of padded steps are not read: any value there gives the same loss
    padded = np.arange(T)[:, None] >= lengths[None, :]
    assert padded.any()
    wild = np.where(padded, 999, targets)
    assert tagger.loss(x, wild, lengths) == tagger.loss(x, targets, lengths)
    tags = tagger.predict(x, lengths)
    assert tags.shape == (T, B) and (tags[padded] == -1).all()
    np.testing.assert_array_equal(tags[~padded], logits.argmax(-1)[~padded])


@pytest.mark.parametrize("cell_id", ["rnn-tanh", "gru", "lstm-peephole"])
def test_threads_do_not_change_the_numbers(cell_id):
    # big enough for the kernels to split work: H=70 (two unit blocks), 7*33 rows
    tagger = make(cell_id, D=20, H=70, C=11, dtype=np.float32)
    x, targets, lengths = batch(T=7, B=33, D=20, C=11, dtype=np.float32, lengths=True)
    before = rnnx.get_num_threads()
    try:
        rnnx.set_num_threads(1)
        one = tagger.loss_and_grads(x, targets, lengths)
        rnnx.set_num_threads(3)
        three = tagger.loss_and_grads(x, targets, lengths)
    finally:
        rnnx.set_num_threads(before)
    assert one[0] == three[0]
    for k in one[1]:
        np.testing.assert_array_equal(one[1][k], three[1][k], err_msg=k)
    # and at these sizes (the kernels split their work, the GIL is released) the one call
    # still equals the separate calls
    want_loss, want = composed(tagger, x, targets, lengths)
    assert one[0] == want_loss
    for k in want:
        np.testing.assert_array_equal(one[1][k], want[k], err_msg=k)


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no-bias"])
@pytest.mark.parametrize("H", [5, 150], ids=["small", "large"])
@pytest.mark.parametrize("cell_id", ["rnn-tanh", "gru", "lstm-peephole"])
def test_each_gradient_is_its_own_aligned_array(cell_id, H, bias):
    # Small gradients share one block (one allocation and one owner a call), large ones
    # get one each; at both sizes every gradient is a writeable, aligned, C-contiguous
    # array that overlaps no other and outlives the rest.
    tagger = make(cell_id, D=20, H=H, C=11, dtype=np.float32, bias=bias, head_bias=bias)
    x, targets, _ = batch(T=7, B=3, D=20, C=11, dtype=np.float32)
    _, grads = tagger.loss_and_grads(x, targets)
    params = tagger.parameters()
    assert sorted(grads) == sorted(params)
    assert len(grads) == 3 + 3 * bias + (cell_id == "lstm-peephole")
    for k, g in grads.items():
        assert g.shape == params[k].shape and g.dtype == np.float32, k
        assert g.flags.c_contiguous and g.flags.writeable and g.ctypes.data % 64 == 0, k
        for k2, g2 in grads.items():
            assert k == k2 or not np.shares_memory(g, g2), (k, k2)
    kept = {k: g.copy() for k, g in grads.items()}
    for k in grads:  # writing one changes no other
        grads[k][...] = -7.0
        for k2 in grads:
            if k2 != k:
                np.testing.assert_array_equal(grads[k2], kept[k2], err_msg=(k, k2))
        grads[k][...] = kept[k]
    last = grads.pop("head.weight")
    del grads, g, g2  # (the loops' names held two of the arrays)
    np.testing.assert_array_equal(last, kept["head.weight"])  # its block outlived the rest
    _ = [tagger.loss_and_grads(x, targets) for _ in range(3)]  # calls that reuse freed blocks
    np.testing.assert_array_equal(last, kept["head.weight"])


@pytest.mark.parametrize("T,B,C", [(1, 1, 1), (1, 5, 3), (6, 1, 2), (3, 4, 1)])
@pytest.mark.parametrize("cell_id", ["rnn-tanh", "gru", "lstm"])
def test_edge_sizes_and_strided_inputs(cell_id, T, B, C):
    tagger = make(cell_id, C=C)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, 3))[:, :, :].transpose(1, 0, 2)  # not C-contiguous
    targets = np.asfortranarray(rng.integers(0, C, (T, B)).astype(np.int32))
    assert not x.flags.c_contiguous or T == 1 or B == 1
    loss, grads = tagger.loss_and_grads(x, targets)
    want_loss, want = composed(tagger, np.ascontiguousarray(x), targets.astype(np.int64), None)
    assert loss == want_loss
    for k in want:
        np.testing.assert_array_equal(grads[k], want[k], err_msg=k)
    if C == 1:  # one class: every probability is 1, the loss and its gradients are 0
        assert loss == 0 and not grads["head.weight"].any()


def test_lengths_as_a_list_and_options_read_at_each_call():
    tagger = make("rnn-tanh")
    x, targets, lengths = batch(lengths=True)
    as_list = tagger.loss_and_grads(x, targets, lengths.tolist())
    as_array = tagger.loss_and_grads(x, targets, lengths)
    assert as_list[0] == as_array[0] and tagger.loss(x, targets, tuple(lengths)) == as_list[0]
    tagger.layer.nonlinearity = "relu"  # the one call follows the layer as it is now
    assert tagger.loss_and_grads(x, targets, lengths)[0] == composed(tagger, x, targets,
                                                                     lengths)[0]
    assert tagger.loss(x, targets, lengths) != as_list[0]


def test_training_lowers_the_loss():
    rng = np.random.default_rng(3)
    T, B, V, C = 6, 16, 5, 3
    x = rng.integers(0, V, (T, B))
    targets = x % C  # the tag is a function of the current token: learnable
    tagger = rnnx.Tagger(rnnx.LSTM(V, 8, seed=0), C, seed=0)
    opt = rnnx.optim.Adam(tagger.parameters(), lr=0.05)
    first = tagger.loss(x, targets)
    for _ in range(60):
        _, grads = tagger.loss_and_grads(x, targets)
        opt.step(grads)
    assert tagger.loss(x, targets) < 0.1 * first
    assert (tagger.predict(x) == targets).mean() > 0.95


# -- refusals ------------------------------------------------------------------------


@pytest.mark.parametrize("fused", [True, False], ids=["one-call", "composed"])
@pytest.mark.parametrize("case,error,match", [
    ("targets-shape", ValueError, r"targets must have shape \(T, B\) = \(4, 3\)"),
    ("targets-float", TypeError, "targets must have an integer dtype"),
    ("targets-list", TypeError, "targets must be a numpy.ndarray"),
    ("targets-range", ValueError, r"targets\[2, 1\] = 9 is outside 0..C-1 = 0..3"),
    ("x-shape", ValueError, r"x must have shape \(T, B, 3\)"),
    ("x-dtype", TypeError, "x must have the layer's dtype"),
    ("x-nan", ValueError, "x contains NaN"),
    ("ids-range", ValueError, r"x\[1, 2\] = 7 is outside 0..input_size-1"),
    ("lengths-range", ValueError, r"lengths must lie in 1..T = 1..4"),
    ("head-shape", ValueError, r"head_weight must have shape \(4, 5\)"),
    ("head-dtype", TypeError, "head_weight must be a numpy.ndarray of the layer's dtype"),
    ("head-nan", ValueError, "head_weight contains NaN or infinity"),
    ("param-nan", ValueError, "parameter weight_hh_l0 contains NaN or infinity"),
    ("overflow", ValueError, r"logits = h head_weightᵀ \+ head_bias contain NaN or infinity"),
])
def test_bad_input_is_refused_with_its_name(case, error, match, fused):
    tagger = make("lstm") if fused else make("lstm", num_layers=2)
    assert tagger._fused == fused
    x, targets, lengths = batch()
    if case == "targets-shape":
        targets = targets[:, :2]
    elif case == "targets-float":
        targets = targets.astype(np.float64)
    elif case == "targets-list":
        targets = targets.tolist()
    elif case == "targets-range":
        targets[2, 1] = 9
    elif case == "x-shape":
        x = x[:, :, :2]
    elif case == "x-dtype":
        x = x.astype(np.float32)
    elif case == "x-nan":
        x[1, 1, 1] = np.nan
    elif case == "ids-range":
        x = np.zeros((4, 3), dtype=np.int64)
        x[1, 2] = 7
    elif case == "lengths-range":
        lengths = np.array([4, 0, 2])
    elif case == "head-shape":
        tagger.head_weight = tagger.head_weight[:, :4].copy()
    elif case == "head-dtype":
        tagger.head_weight = tagger.head_weight.astype(np.float32)
    elif case == "head-nan":
        tagger.head_weight[1, 2] = np.inf
    elif case == "param-nan":
        tagger.layer.state_dict()["weight_hh_l0"][0, 0] = np.nan
    elif case == "overflow":  # finite, but the logits overflow: h = relu(1) = 1 everywhere
        tagger = make("rnn-relu") if fused else make("rnn-relu", num_layers=2)
        for name, p in tagger.layer.state_dict().items():
            p[:] = 1.0 if name.startswith("bias_ih") else 0.0
        tagger.head_weight[:] = 1e308
    for call in (tagger.loss_and_grads, tagger.loss):
        with pytest.raises(error, match=match):
            call(x, targets, lengths)


def test_constructor_refusals():
    with pytest.raises(TypeError, match="layer must be an rnnx.RNN"):
        rnnx.Tagger(np.zeros(3), 2)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_classes must be an int >= 1"):
            rnnx.Tagger(rnnx.GRU(3, 4), bad)
    with pytest.raises(TypeError, match="bias must be True or False"):
        rnnx.Tagger(rnnx.GRU(3, 4), 2, bias="yes")


def test_docstring_examples():
    import doctest

    import rnnx.tagger

    failed, attempted = doctest.testmod(rnnx.tagger)
    assert attempted > 0 and failed == 0



@pytest.mark.parametrize("cell_id", ["rnn-tanh", "gru", "lstm-peephole"])
def test_parameters_are_aligned_and_misaligned_ones_give_the_same_bits(cell_id):
    # The layer's and the head's own arrays start on a 64-byte boundary (the kernels would
    # copy them at every call otherwise); arrays that do not still give the same bits.
    tagger = make(cell_id, dtype=np.float32)
    for name, p in tagger.parameters().items():
        assert p.ctypes.data % 64 == 0 and p.flags.c_contiguous and p.flags.writeable, name
    x, targets, lengths = batch(dtype=np.float32, lengths=True)
    want = tagger.loss_and_grads(x, targets, lengths)
    tagger.layer.load_state_dict({k: misaligned(v) for k, v in tagger.layer.state_dict().items()})
    for name, p in tagger.layer.state_dict().items():  # load_state_dict copies, aligned
        assert p.ctypes.data % 64 == 0, name
    layer = tagger.layer
    layer._params = {k: misaligned(v) for k, v in layer._params.items()}  # set directly
    tagger.head_weight = misaligned(tagger.head_weight)
    tagger.head_bias = misaligned(tagger.head_bias)
    for name, p in tagger.parameters().items():
        assert p.ctypes.data % 64 == 8, name
    got = tagger.loss_and_grads(misaligned(x), targets, lengths)
    assert got[0] == want[0] and tagger.loss(x, targets, lengths) == want[0]
    for k in want[1]:
        np.testing.assert_array_equal(got[1][k], want[1][k], err_msg=k)


def test_targets_in_any_integer_layout_give_the_same_bits():
    # int64 targets that are C-contiguous and aligned are read in place; every other
    # layout (other widths, byte order, strides, a misaligned start) is converted first
    tagger = make("gru")
    x, targets, lengths = batch(lengths=True)
    want = tagger.loss_and_grads(x, targets, lengths)
    raw = np.empty(targets.nbytes + 1, np.uint8)
    unaligned = raw[1:].view(np.int64).reshape(targets.shape)
    unaligned[...] = targets
    assert not unaligned.flags.aligned
    layouts = {"int32": targets.astype(np.int32), "uint8": targets.astype(np.uint8),
               "big-endian": targets.astype(">i8"), "fortran": np.asfortranarray(targets),
               "strided": np.repeat(targets, 2, axis=1)[:, ::2], "unaligned": unaligned}
    for name, t in layouts.items():
        got = tagger.loss_and_grads(x, t, lengths)
        assert got[0] == want[0], name
        for k in want[1]:
            np.testing.assert_array_equal(got[1][k], want[1][k], err_msg=f"{name} {k}")
        lens = lengths.astype(">i8") if name == "big-endian" else lengths.astype(t.dtype)
        assert tagger.loss(x, t, lens) == want[0], name
    ids = np.random.default_rng(5).integers(0, 3, (4, 3))
    want_ids = tagger.loss(ids, targets)
    assert tagger.loss(ids.astype(">i8"), targets) == want_ids
    assert tagger.loss(np.asfortranarray(ids.astype(np.int32)), targets) == want_ids


def _step_args(tagger):
    layer = tagger.layer
    return (layer._params, tagger._param_names, tagger.head_weight, tagger.head_bias)


def test_the_core_entry_takes_keywords_and_defaults_as_positions():
    """_core.models.tagger_step is a plain CPython function (no pybind11 dispatcher): the
    same results by position, by keyword and with its defaults."""
    from rnnx.tagger import _step

    tagger = make("gru-reset-before", dtype=np.float32)
    x, targets, _ = batch(dtype=np.float32)
    params, names, hw, hb = _step_args(tagger)
    cell = tagger.layer._cell_args()
    by_position = _step(x, params, names, hw, hb, targets, None, *cell, None)
    by_keyword = _step(grad_names=None, simplified=cell[3], reset_after=cell[2],
                       nonlinearity=cell[1], cell=cell[0], lengths=None, targets=targets,
                       head_b=hb, head_w=hw, names=names, params=params, x=x)
    assert by_position == by_keyword == tagger.loss(x, targets)
    lstm = make("lstm", dtype=np.float32)
    params, names, hw, hb = _step_args(lstm)
    with_defaults = _step(x, params, names, hw, hb, targets, None, "lstm")
    assert with_defaults == lstm.loss(x, targets)
    # the flags and names as pybind11's casters took them: NumPy bools, 0 and 1, None
    # (False), bytes
    gru = make("gru-reset-before", dtype=np.float32)
    gparams, gnames, ghw, ghb = _step_args(gru)
    for reset_after, simplified in ((np.False_, np.bool_(False)), (0, None), (0.0, 0)):
        assert _step(x, gparams, gnames, ghw, ghb, targets, None, b"gru", b"tanh",
                     reset_after, simplified) == gru.loss(x, targets)
    loss, grads = _step(x, params, names, hw, hb, targets, None, "lstm",
                        grad_names=lstm._grad_names)
    ref_loss, ref_grads = lstm.loss_and_grads(x, targets)
    assert loss == ref_loss and grads.keys() == ref_grads.keys()
    assert all(np.array_equal(grads[k], ref_grads[k]) for k in grads)


def _aligned(a):
    """A copy of `a` whose data start on a 64-byte boundary (C order)."""
    raw = np.empty(a.nbytes + 64, np.uint8)
    start = (-raw.ctypes.data) % 64
    out = raw[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("arg", ["x", "w_ih", "w_hh", "b_ih", "b_hh", "head_w", "head_b"])
def test_the_core_entry_reads_each_array_in_any_layout(arg):
    """Each float array of tagger_step: taken in place when it is aligned, C-contiguous,
    of the dtype in native byte order and of the shape (checked straight from NumPy's
    struct); copied in any other layout (the same bits); refused with its name when it
    holds a NaN (in place or not), has another dtype or byte order, or another shape."""
    from rnnx.tagger import _step

    tagger = make("rnn-tanh", dtype=np.float32)
    x, targets, _ = batch(dtype=np.float32)
    params, names, hw, hb = _step_args(tagger)
    key = {"w_ih": names[0], "w_hh": names[1], "b_ih": names[2], "b_hh": names[3]}.get(arg)

    def call(a, grad_names=None):
        p = dict(params)
        if key:
            p[key] = a
        args = {"x": x, "head_w": hw, "head_b": hb, **({arg: a} if not key else {})}
        return _step(args["x"], p, names, args["head_w"], args["head_b"], targets, None, "rnn",
                     grad_names=grad_names)

    value = {"x": x, "head_w": hw, "head_b": hb}.get(arg, params.get(key))
    want = call(_aligned(value))
    want_loss, want_grads = call(_aligned(value), tagger._grad_names)
    assert want_loss == want
    layouts = {"aligned": _aligned(value), "misaligned": misaligned(value),
               "fortran": np.asfortranarray(value),  # (for a 1-D array, C order too)
               "strided": np.repeat(value, 2, axis=-1)[..., ::2]}
    for name, a in layouts.items():
        assert call(a) == want, name
        loss, grads = call(a, tagger._grad_names)
        assert loss == want and grads.keys() == want_grads.keys(), name
        for k in grads:
            assert np.array_equal(grads[k], want_grads[k]), (name, k)
    name = {"x": "x", "head_w": "head_w", "head_b": "head_b"}.get(arg, arg)
    for bad in (_aligned(value), misaligned(value)):  # read in place, and copied
        bad.flat[bad.size - 1] = np.nan
        with pytest.raises(ValueError, match=f"{name} contains NaN"):
            call(bad)
    with pytest.raises(TypeError, match=f"{name} must"):
        call(_aligned(value.astype(">f4")))
    if arg != "w_ih":  # (w_ih's dtype is the call's: in float64 the others are wrong)
        with pytest.raises(TypeError, match=f"{name} must"):
            call(_aligned(value.astype(np.float64)))
    if arg == "x":  # (its last size is the layer's input size: a wrong one names w_ih)
        with pytest.raises(ValueError, match=r"x must be a 3-D array"):
            call(_aligned(value[0]))
    else:
        with pytest.raises(ValueError, match=f"{name} must have shape"):
            call(_aligned(np.concatenate([value, value], axis=-1)))
    assert call(value) == want  # nothing left behind


@pytest.mark.parametrize("call, error, match", [
    (lambda f, a: f(*a[:3]), TypeError, r"missing required argument 'head_w'"),
    (lambda f, a: f(*a, "tanh", True, False, None, 1), TypeError, r"at most 12 arguments"),
    (lambda f, a: f(*a, bogus=1), TypeError, r"unexpected keyword argument 'bogus'"),
    (lambda f, a: f(*a, cell="rnn"), TypeError, r"multiple values for argument 'cell'"),
    (lambda f, a: f(*a[:7], 3), TypeError, r"cell must be a str, got int"),
    (lambda f, a: f(*a[:7], "elman"), ValueError, r"cell must be 'rnn', 'gru' or 'lstm'"),
    (lambda f, a: f(*a, nonlinearity=5), TypeError, r"nonlinearity must be a str, got int"),
    (lambda f, a: f(*a, reset_after="yes"), TypeError, r"reset_after must be True or False"),
    (lambda f, a: f(*a, simplified=[]), TypeError, r"simplified must be True or False"),
    (lambda f, a: f(*a, grad_names=("x",)), TypeError, r"grad_names must be a tuple of 7 names"),
    (lambda f, a: f(a[0], [], *a[2:]), TypeError, r"params must be a dict"),
    # raised in the core as std::invalid_argument: a ValueError with its message
    (lambda f, a: f(*a[:5], np.full((4, 3), 9), *a[6:]), ValueError,
     r"targets\[0, 0\] = 9 is outside 0..C-1 = 0..3"),
])
def test_the_core_entry_refuses_bad_calls(call, error, match):
    from rnnx.tagger import _step

    tagger = make("rnn-tanh")
    x, targets, _ = batch()
    params, names, hw, hb = _step_args(tagger)
    args = (x, params, names, hw, hb, targets, None, "rnn")
    with pytest.raises(error, match=match):
        call(_step, args)
    assert tagger.loss(x, targets) == _step(*args)  # nothing left behind
