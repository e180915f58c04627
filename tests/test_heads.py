"""Heads and losses: ``rnnx.heads`` (C++) against ``rnnx.reference.heads`` (NumPy).

* every forward and backward against the reference: float64 to rtol 1e-12, float32 to
  1e-5, over leading shapes, with and without bias / mask / lengths, any integer dtype
  of ids, targets and lengths;
* every backward against central differences of its forward (float64), the
  cross-entropy's backward against the gradient of its loss, and two small models
  chained from the pieces (many-to-many and many-to-one);
* behaviour: logits of ±1e4 neither overflow nor lose the loss; masked positions
  contribute nothing (their logits and targets are not read); the scatter-add adds in
  order (bit-identical to ``np.add.at``); results are bit-identical for 1 and 3 threads;
  strided inputs; bad input raises TypeError / ValueError naming the argument, in the
  Python layer and again in the compiled layer underneath it.

Sizes are tiny and all different: T=4, B=3, F=5, O=6, V=7, E=2, lengths [3, 1, 4]
(unsorted, with a length 1 and a full-length example).
"""

import pathlib
import sys

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import numerical_gradient  # noqa: E402

import rnnx  # noqa: E402
from rnnx import heads  # noqa: E402
from rnnx._loader import core  # noqa: E402
from rnnx.reference import heads as ref  # noqa: E402

T, B, F, O, V, E = 4, 3, 5, 6, 7, 2
LENGTHS = np.array([3, 1, 4])
MASK = np.array([[1, 1, 1], [1, 0, 1], [1, 0, 1], [0, 0, 1]], dtype=bool)  # = t < LENGTHS

DTYPES = {"float64": np.float64, "float32": np.float32}
RTOL = {np.float64: 1e-12, np.float32: 1e-5}

# leading shapes of dense inputs and of ids: a sequence, a batch, one vector, no rows
LEADS = {"TB": (T, B), "B": (B,), "scalar": (), "empty": (0, B)}
# masks: absent, bool, and the 0/1 numbers that are accepted as well
MASKS = {"none": None, "bool": MASK, "int": MASK.astype(np.int32), "float": MASK.astype(float)}
INT_DTYPES = {"int64": np.int64, "int32": np.int32, "uint8": np.uint8}


def close(got, want, dtype, err_msg=""):
    """Same shape and dtype; values to the dtype's tolerance (with an absolute floor
    scaled by the largest magnitude, for entries that cancel to almost 0)."""
    want = np.asarray(want)
    assert isinstance(got, (np.ndarray, np.generic)), err_msg
    assert got.dtype == dtype, f"{err_msg}: dtype {got.dtype} != {np.dtype(dtype)}"
    assert got.shape == want.shape, f"{err_msg}: shape {got.shape} != {want.shape}"
    rtol = RTOL[dtype]
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * 1e-2 * scale, err_msg=err_msg)


def rand(rng, shape, dtype=np.float64, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(dtype)


def class_inputs(seed=0, dtype=np.float64, lead=(T, B), scale=2.0):
    rng = np.random.default_rng(seed)
    return rand(rng, lead + (V,), dtype, scale), rng.integers(0, V, lead)


# ----------------------------------------------------------------------------------
# against the reference
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("lead", list(LEADS))
@pytest.mark.parametrize("dt", list(DTYPES))
def test_dense_matches_reference(dt, lead, bias):
    dtype, rng = DTYPES[dt], np.random.default_rng(1)
    x = rand(rng, LEADS[lead] + (F,), dtype)
    w, b = rand(rng, (O, F), dtype), rand(rng, (O,), dtype) if bias else None
    dy = rand(rng, LEADS[lead] + (O,), dtype)
    close(heads.dense_forward(x, w, b), ref.dense_forward(x, w, b), dtype, "y")
    got, want = heads.dense_backward(dy, x, w, bias), ref.dense_backward(dy, x, w, bias)
    for name, g, r in zip(["dx", "dweight", "dbias"], got, want):
        if r is None:
            assert g is None, name
        else:
            close(g, r, dtype, name)


@pytest.mark.parametrize("outputs", [289, 290, 295, 300, 301])
@pytest.mark.parametrize("dt", list(DTYPES))
def test_dense_at_sizes_that_end_every_block_part_way(dt, outputs):
    # 700 rows: depth blocks of 256, 256 and 188 in the weight gradient; 45 features:
    # row panels of the micro-kernel that end part-way (32 or 16 rows); 289..301 outputs:
    # a second block of columns past the first 288, ending in a panel of 1, 2, 7, 12 or
    # 13 columns (1 and 2 take the split-depth path). Checked against float64 products.
    dtype, rng = DTYPES[dt], np.random.default_rng(outputs)
    x, w = rand(rng, (700, 45), dtype), rand(rng, (outputs, 45), dtype)
    b, dy = rand(rng, (outputs,), dtype), rand(rng, (700, outputs), dtype)
    x64, w64, dy64 = (a.astype(np.float64) for a in (x, w, dy))
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == np.float64 else dict(rtol=1e-4, atol=1e-3)
    y = heads.dense_forward(x, w, b)
    np.testing.assert_allclose(y, x64 @ w64.T + b, **tol, err_msg="y")
    dx, dw, db = heads.dense_backward(dy, x, w, True)
    np.testing.assert_allclose(dx, dy64 @ w64, **tol, err_msg="dx")
    np.testing.assert_allclose(dw, dy64.T @ x64, **tol, err_msg="dweight")
    np.testing.assert_allclose(db, dy64.sum(axis=0), **tol, err_msg="dbias")
    threads = rnnx.get_num_threads()
    try:  # the same bits on one thread as on three
        rnnx.set_num_threads(1)
        serial = heads.dense_backward(dy, x, w, True)
        rnnx.set_num_threads(3)
        for name, g, s in zip(["dx", "dweight", "dbias"], heads.dense_backward(dy, x, w, True),
                              serial):
            np.testing.assert_array_equal(g, s, err_msg=name)
    finally:
        rnnx.set_num_threads(threads)


@pytest.mark.parametrize("int_dt", list(INT_DTYPES))
@pytest.mark.parametrize("lead", ["TB", "B", "scalar", "empty"])
@pytest.mark.parametrize("dt", list(DTYPES))
def test_embedding_matches_reference(dt, lead, int_dt):
    dtype, rng = DTYPES[dt], np.random.default_rng(2)
    ids = rng.integers(0, V, LEADS[lead]).astype(INT_DTYPES[int_dt])
    w = rand(rng, (V, E), dtype)
    dy = rand(rng, LEADS[lead] + (E,), dtype)
    y = heads.embedding_forward(ids, w)
    close(y, ref.embedding_forward(ids, w), dtype, "y")
    np.testing.assert_array_equal(y, w[ids])  # a gather: exact
    close(heads.embedding_backward(dy, ids, V), ref.embedding_backward(dy, ids, V), dtype,
          "dweight")


@pytest.mark.parametrize("dt", list(DTYPES))
def test_embedding_backward_adds_in_order_like_add_at(dt):
    """Repeated ids are summed in order of position: bit-identical to np.add.at, and
    rows of ids that never occur are exactly 0."""
    dtype, rng = DTYPES[dt], np.random.default_rng(3)
    ids = np.array([[4, 1, 4], [4, 0, 1], [6, 4, 4], [1, 0, 4]])
    dy = rand(rng, ids.shape + (E,), dtype, scale=1e3)
    dw = heads.embedding_backward(dy, ids, V)
    np.testing.assert_array_equal(dw, ref.embedding_backward(dy, ids, V))
    assert not dw[[2, 3, 5]].any()


@pytest.mark.parametrize("lead", ["TB", "B"])
@pytest.mark.parametrize("mask", list(MASKS))
@pytest.mark.parametrize("dt", list(DTYPES))
def test_softmax_cross_entropy_matches_reference(dt, mask, lead):
    dtype = DTYPES[dt]
    shape = LEADS[lead]
    logits, targets = class_inputs(4, dtype, shape)
    m = MASKS[mask] if mask == "none" or lead == "TB" else MASKS[mask][0]
    loss, probs = heads.softmax_cross_entropy(logits, targets, m)
    want_loss, want_probs = ref.softmax_cross_entropy(logits, targets, m)
    assert np.isscalar(loss) and type(loss) is dtype
    close(loss, want_loss, dtype, "loss")
    close(probs, want_probs, dtype, "probs")
    close(heads.softmax_cross_entropy_backward(probs, targets, m),
          ref.softmax_cross_entropy_backward(want_probs, targets, m), dtype, "dlogits")


def test_softmax_cross_entropy_is_a_sum_of_per_position_losses():
    logits, targets = class_inputs(5)
    loss, probs = heads.softmax_cross_entropy(logits, targets, MASK)
    per_position = -np.log(np.take_along_axis(probs, targets[..., None], -1)[..., 0])
    np.testing.assert_allclose(loss, per_position[MASK].sum(), rtol=1e-12)
    np.testing.assert_allclose(probs.sum(-1), 1, rtol=1e-14)
    # the mean is the caller's choice
    np.testing.assert_allclose(loss / MASK.sum(), per_position[MASK].mean(), rtol=1e-12)


@pytest.mark.parametrize("lengths", ["none", "unsorted"])
@pytest.mark.parametrize("dt", list(DTYPES))
def test_last_step_matches_reference(dt, lengths):
    dtype, rng = DTYPES[dt], np.random.default_rng(6)
    lens = None if lengths == "none" else LENGTHS
    y, dout = rand(rng, (T, B, F), dtype), rand(rng, (B, F), dtype)
    out = heads.last_step_forward(y, lens)
    close(out, ref.last_step_forward(y, lens), dtype, "out")
    last = np.full(B, T - 1) if lens is None else lens - 1
    np.testing.assert_array_equal(out, y[last, np.arange(B)])  # a gather: exact
    dy = heads.last_step_backward(dout, lens, T)
    close(dy, ref.last_step_backward(dout, lens, T), dtype, "dy")
    assert np.count_nonzero(np.abs(dy).sum(-1)) == B  # one step per example


def test_last_step_accepts_any_integer_lengths():
    y = np.random.default_rng(7).standard_normal((T, B, F))
    want = heads.last_step_forward(y, LENGTHS)
    for lens in (LENGTHS.astype(np.int32), LENGTHS.astype(np.uint16), LENGTHS.tolist()):
        np.testing.assert_array_equal(heads.last_step_forward(y, lens), want)
    np.testing.assert_array_equal(heads.last_step_backward(y[0], LENGTHS.astype(np.uint8), T),
                                  heads.last_step_backward(y[0], LENGTHS, T))


# ----------------------------------------------------------------------------------
# gradients against central differences (float64)
# ----------------------------------------------------------------------------------


def check_gradients(loss, inputs, analytic):
    for name, array in inputs.items():
        np.testing.assert_allclose(analytic[name], numerical_gradient(loss, array), rtol=1e-6,
                                   atol=1e-8, err_msg=f"gradient of {name}")


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("lead", ["TB", "B"])
def test_dense_gradients(lead, bias):
    rng = np.random.default_rng(8)
    x, w = rand(rng, LEADS[lead] + (F,)), rand(rng, (O, F))
    b = rand(rng, (O,)) if bias else None
    g = rand(rng, LEADS[lead] + (O,))

    def loss():
        return float(np.sum(g * heads.dense_forward(x, w, b)))

    dx, dw, db = heads.dense_backward(g, x, w, bias)
    inputs, analytic = {"x": x, "weight": w}, {"x": dx, "weight": dw}
    if bias:
        inputs["bias"], analytic["bias"] = b, db
    check_gradients(loss, inputs, analytic)


def test_embedding_gradient():
    rng = np.random.default_rng(9)
    ids = np.array([[4, 1, 4], [4, 0, 1], [6, 4, 4], [1, 0, 4]])  # repeats and gaps
    w, g = rand(rng, (V, E)), rand(rng, (T, B, E))

    def loss():
        return float(np.sum(g * heads.embedding_forward(ids, w)))

    check_gradients(loss, {"weight": w}, {"weight": heads.embedding_backward(g, ids, V)})


@pytest.mark.parametrize("mask", ["none", "bool"])
@pytest.mark.parametrize("lead", ["TB", "B"])
def test_cross_entropy_backward_is_the_gradient_of_its_loss(lead, mask):
    logits, targets = class_inputs(10, lead=LEADS[lead])
    m = None if mask == "none" else (MASK if lead == "TB" else MASK[1])

    def loss():
        return float(heads.softmax_cross_entropy(logits, targets, m)[0])

    probs = heads.softmax_cross_entropy(logits, targets, m)[1]
    dlogits = heads.softmax_cross_entropy_backward(probs, targets, m)
    check_gradients(loss, {"logits": logits}, {"logits": dlogits})


@pytest.mark.parametrize("lengths", ["none", "unsorted"])
def test_last_step_gradient(lengths):
    rng = np.random.default_rng(11)
    lens = None if lengths == "none" else LENGTHS
    y, g = rand(rng, (T, B, F)), rand(rng, (B, F))

    def loss():
        return float(np.sum(g * heads.last_step_forward(y, lens)))

    check_gradients(loss, {"y": y}, {"y": heads.last_step_backward(g, lens, T)})


def test_many_to_many_chain_gradients():
    """ids -> embedding -> dense on every step -> masked cross-entropy: the backwards
    chained in reverse give the gradients of the whole model."""
    rng = np.random.default_rng(12)
    ids, targets = rng.integers(0, V, (T, B)), rng.integers(0, V, (T, B))
    emb, w, b = rand(rng, (V, E)), rand(rng, (O + 1, E)), rand(rng, (O + 1,))  # O+1 = V

    def forward():
        x = heads.embedding_forward(ids, emb)
        logits = heads.dense_forward(x, w, b)
        return x, heads.softmax_cross_entropy(logits, targets, MASK)

    x, (_, probs) = forward()
    dlogits = heads.softmax_cross_entropy_backward(probs, targets, MASK)
    dx, dw, db = heads.dense_backward(dlogits, x, w)
    demb = heads.embedding_backward(dx, ids, V)
    check_gradients(lambda: float(forward()[1][0]), {"emb": emb, "w": w, "b": b},
                    {"emb": demb, "w": dw, "b": db})


def test_many_to_one_chain_gradients():
    """states -> last step of each example -> dense -> cross-entropy over (B, V)."""
    rng = np.random.default_rng(13)
    h, w = rand(rng, (T, B, F)), rand(rng, (V, F))
    targets = rng.integers(0, V, B)

    def forward():
        logits = heads.dense_forward(heads.last_step_forward(h, LENGTHS), w)
        return heads.softmax_cross_entropy(logits, targets)

    _, probs = forward()
    dlogits = heads.softmax_cross_entropy_backward(probs, targets)
    dlast, dw, db = heads.dense_backward(dlogits, heads.last_step_forward(h, LENGTHS), w,
                                         bias_present=False)
    assert db is None
    dh = heads.last_step_backward(dlast, LENGTHS, T)
    check_gradients(lambda: float(forward()[0]), {"h": h, "w": w}, {"h": dh, "w": dw})


# ----------------------------------------------------------------------------------
# numerical stability and masks
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dt", list(DTYPES))
def test_cross_entropy_is_stable_at_large_logits(dt):
    dtype = DTYPES[dt]
    logits = np.zeros((2, 3, V), dtype)
    logits[0, 0, 2], logits[0, 0, 5] = 1e4, -1e4  # the target is far below the maximum
    logits[0, 1] = 1e4                            # all equal and huge
    logits[0, 2] = -1e4                           # all equal and very negative
    logits[1, 0, 3] = 1e4                         # the target is the maximum
    logits[1, 1] = np.linspace(-1e4, 1e4, V)
    logits[1, 2, 0] = -1e4
    targets = np.array([[5, 0, 6], [3, 2, 1]])
    loss, probs = heads.softmax_cross_entropy(logits, targets)
    assert np.isfinite(loss) and np.isfinite(probs).all()
    # exact values: row (0,0): 1e4 - (-1e4); (0,1), (0,2): log V; (1,0): 0;
    # (1,1): the gap to the maximum; (1,2): log(V - 1) (exp(-1e4) adds nothing)
    row = logits[1, 1].astype(np.float64)
    per = [2e4, np.log(V), np.log(V), 0.0, row.max() - row[2], np.log(V - 1)]
    np.testing.assert_allclose(loss, sum(per), rtol=RTOL[dtype])
    want_loss, want_probs = ref.softmax_cross_entropy(logits, targets)
    close(loss, want_loss, dtype, "loss")
    close(probs, want_probs, dtype, "probs")
    assert probs[0, 0, 5] == 0 and probs[0, 0, 2] == 1  # underflow is exactly 0
    np.testing.assert_allclose(probs[0, 1], 1 / V, rtol=RTOL[dtype])
    dlogits = heads.softmax_cross_entropy_backward(probs, targets)
    assert np.isfinite(dlogits).all()
    assert dlogits[0, 0, 5] == -1 and dlogits[1, 0].tolist() == [0] * V


@pytest.mark.parametrize("dt", list(DTYPES))
def test_masked_positions_contribute_nothing(dt):
    dtype = DTYPES[dt]
    logits, targets = class_inputs(14, dtype)
    loss, probs = heads.softmax_cross_entropy(logits, targets, MASK)
    # change every masked position's logits and make its target invalid: nothing changes
    logits2, targets2 = logits.copy(), targets.copy()
    logits2[~MASK] = 1e3
    targets2[~MASK] = -1
    loss2, probs2 = heads.softmax_cross_entropy(logits2, targets2, MASK)
    assert loss2 == loss
    np.testing.assert_array_equal(probs2[MASK], probs[MASK])
    dlogits = heads.softmax_cross_entropy_backward(probs2, targets2, MASK)
    assert not dlogits[~MASK].any()
    close(dlogits[MASK], heads.softmax_cross_entropy_backward(probs, targets)[MASK], dtype,
          "kept rows")
    # each kept position alone adds its own loss
    by_hand = sum(float(heads.softmax_cross_entropy(logits[t, b][None, None],
                                                    targets[t, b][None, None])[0])
                  for t, b in zip(*np.nonzero(MASK)))
    np.testing.assert_allclose(loss, by_hand, rtol=RTOL[dtype])
    # nothing kept: zero loss, zero gradient
    none = np.zeros((T, B), bool)
    assert heads.softmax_cross_entropy(logits, targets2, none)[0] == 0
    assert not heads.softmax_cross_entropy_backward(probs, targets2, none).any()


# ----------------------------------------------------------------------------------
# threads, layouts, outputs
# ----------------------------------------------------------------------------------


@pytest.fixture
def restore_threads():
    n = rnnx.get_num_threads()
    yield
    rnnx.set_num_threads(n)


def test_results_do_not_depend_on_the_thread_count(restore_threads):
    """Sizes past every block size (256 rows, 64 units, 64K elements per task)."""
    rng = np.random.default_rng(15)
    N1, N2, F2, O2, V2, E2 = 30, 23, 17, 130, 3000, 200
    x, w, b = rng.standard_normal((N1, N2, F2)), rng.standard_normal((O2, F2)), rng.standard_normal(O2)
    dy = rng.standard_normal((N1, N2, O2))
    ids = rng.integers(0, V2, (N1, N2))
    emb, demb = rng.standard_normal((V2, E2)), rng.standard_normal((N1, N2, E2))
    logits, targets = rng.standard_normal((N1, N2, V2)) * 3, rng.integers(0, V2, (N1, N2))
    mask = rng.random((N1, N2)) < 0.8

    def run():
        loss, probs = heads.softmax_cross_entropy(logits, targets, mask)
        return [heads.dense_forward(x, w, b), *heads.dense_backward(dy, x, w),
                heads.embedding_forward(ids, emb), heads.embedding_backward(demb, ids, V2),
                np.array(loss), probs, heads.softmax_cross_entropy_backward(probs, targets, mask),
                heads.last_step_backward(dy[0], None, 7),
                *heads.dense_softmax_cross_entropy(x, w, b, targets % O2, mask)]

    rnnx.set_num_threads(1)
    serial = run()
    rnnx.set_num_threads(3)
    for a, b_ in zip(serial, run()):
        np.testing.assert_array_equal(a, b_)


def test_strided_inputs_give_the_same_results():
    rng = np.random.default_rng(16)
    x, w = rng.standard_normal((B, T, F)).transpose(1, 0, 2), rng.standard_normal((F, O)).T
    assert not x.flags.c_contiguous and not w.flags.c_contiguous
    np.testing.assert_array_equal(heads.dense_forward(x, w),
                                  heads.dense_forward(x.copy(), w.copy()))
    logits = rng.standard_normal((T, B, 2 * V))[:, :, ::2]
    targets = rng.integers(0, V, (B, T)).T
    got = heads.softmax_cross_entropy(logits, targets)
    want = heads.softmax_cross_entropy(logits.copy(), targets.copy())
    assert got[0] == want[0]
    np.testing.assert_array_equal(got[1], want[1])
    ids, emb = rng.integers(0, V, (B, T)).T, rng.standard_normal((E, V)).T
    np.testing.assert_array_equal(heads.embedding_forward(ids, emb), emb[ids])
    dy = rng.standard_normal((B, T, E)).transpose(1, 0, 2)
    np.testing.assert_array_equal(heads.embedding_backward(dy, ids, V),
                                  heads.embedding_backward(dy.copy(), ids.copy(), V))


def test_outputs_are_fresh_aligned_c_arrays():
    x, w = np.ones((T, B, F)), np.ones((O, F))
    logits, targets = class_inputs(17)
    outs = [heads.dense_forward(x, w), *heads.dense_backward(np.ones((T, B, O)), x, w),
            heads.embedding_forward(np.zeros((T, B), int), w), heads.last_step_forward(x),
            heads.last_step_backward(np.ones((B, F)), None, T),
            *heads.softmax_cross_entropy(logits, targets)[1:]]
    for a in outs:
        assert a.flags.c_contiguous and a.flags.writeable and a.ctypes.data % 64 == 0
        assert not np.shares_memory(a, x) and not np.shares_memory(a, w)


def test_reference_is_exported_like_the_module():
    assert set(heads.__all__) == set(ref.__all__)
    assert set(dir(core.heads)) >= set(heads.__all__)


# ----------------------------------------------------------------------------------
# bad input
# ----------------------------------------------------------------------------------


def _valid():
    """One valid float64 argument set per function."""
    rng = np.random.default_rng(18)
    x, w, b = rng.standard_normal((T, B, F)), rng.standard_normal((O, F)), rng.standard_normal(O)
    logits, targets = class_inputs(19)
    return {
        "dense_forward": {"x": x, "weight": w, "bias": b},
        "dense_backward": {"dy": rng.standard_normal((T, B, O)), "x": x, "weight": w,
                           "bias_present": True},
        "embedding_forward": {"ids": rng.integers(0, V, (T, B)),
                              "weight": rng.standard_normal((V, E))},
        "embedding_backward": {"dy": rng.standard_normal((T, B, E)),
                               "ids": rng.integers(0, V, (T, B)), "V": V},
        "softmax_cross_entropy": {"logits": logits, "targets": targets, "mask": MASK},
        "softmax_cross_entropy_backward": {"probs": np.full((T, B, V), 1 / V),
                                           "targets": targets, "mask": MASK},
        "last_step_forward": {"y": x, "lengths": LENGTHS},
        "last_step_backward": {"dout": x[0], "lengths": LENGTHS, "T": T},
        "dense_softmax_cross_entropy": {"x": x, "weight": rng.standard_normal((V, F)),
                                        "bias": rng.standard_normal(V), "targets": targets,
                                        "mask": MASK},
    }


def _nan(a):
    a = a.copy()
    a.flat[1] = np.nan
    return a


# (function, argument, bad value (or a function of the valid one), error); the message
# must name the argument
BAD = {
    "dense/x_int": ("dense_forward", "x", lambda a: a.astype(int), TypeError),
    "dense/x_list": ("dense_forward", "x", lambda a: a.tolist(), TypeError),
    "dense/x_0d": ("dense_forward", "x", lambda a: np.float64(1.0), TypeError),
    "dense/weight_shape": ("dense_forward", "weight", lambda a: a[:, :-1], ValueError),
    "dense/weight_1d": ("dense_forward", "weight", lambda a: a[0], ValueError),
    "dense/weight_mixed": ("dense_forward", "weight", lambda a: a.astype(np.float32), TypeError),
    "dense/bias_shape": ("dense_forward", "bias", lambda a: a[:-1], ValueError),
    "dense/bias_mixed": ("dense_forward", "bias", lambda a: a.astype(np.float32), TypeError),
    "dense/x_nan": ("dense_forward", "x", _nan, ValueError),
    "dense/weight_inf": ("dense_forward", "weight", lambda a: a * np.inf, ValueError),
    "dense_bwd/dy_shape": ("dense_backward", "dy", lambda a: a[:, :-1], ValueError),
    "dense_bwd/dy_mixed": ("dense_backward", "dy", lambda a: a.astype(np.float32), TypeError),
    "dense_bwd/dy_nan": ("dense_backward", "dy", _nan, ValueError),
    "dense_bwd/bias_present": ("dense_backward", "bias_present", lambda a: 1, TypeError),
    "emb/ids_float": ("embedding_forward", "ids", lambda a: a.astype(float), TypeError),
    "emb/ids_bool": ("embedding_forward", "ids", lambda a: a > 2, TypeError),
    "emb/ids_high": ("embedding_forward", "ids", lambda a: a + V, ValueError),
    "emb/ids_negative": ("embedding_forward", "ids", lambda a: a - V, ValueError),
    "emb/weight_1d": ("embedding_forward", "weight", lambda a: a[0], ValueError),
    "emb/weight_int": ("embedding_forward", "weight", lambda a: a.astype(int), TypeError),
    "emb/weight_nan": ("embedding_forward", "weight", _nan, ValueError),
    "emb_bwd/dy_shape": ("embedding_backward", "dy", lambda a: a[1:], ValueError),
    "emb_bwd/dy_nan": ("embedding_backward", "dy", _nan, ValueError),
    "emb_bwd/ids_high": ("embedding_backward", "ids", lambda a: a + V, ValueError),
    "emb_bwd/ids_float": ("embedding_backward", "ids", lambda a: a * 1.0, TypeError),
    "emb_bwd/V_zero": ("embedding_backward", "V", lambda a: 0, ValueError),
    "emb_bwd/V_float": ("embedding_backward", "V", lambda a: 7.0, TypeError),
    "ce/logits_nan": ("softmax_cross_entropy", "logits", _nan, ValueError),
    "ce/logits_inf": ("softmax_cross_entropy", "logits", lambda a: a * np.inf, ValueError),
    "ce/logits_int": ("softmax_cross_entropy", "logits", lambda a: a.astype(int), TypeError),
    "ce/logits_empty": ("softmax_cross_entropy", "logits", lambda a: a[:, :, :0], ValueError),
    "ce/targets_high": ("softmax_cross_entropy", "targets", lambda a: a + V, ValueError),
    "ce/targets_negative": ("softmax_cross_entropy", "targets", lambda a: a - V, ValueError),
    "ce/targets_float": ("softmax_cross_entropy", "targets", lambda a: a * 1.0, TypeError),
    "ce/targets_shape": ("softmax_cross_entropy", "targets", lambda a: a[:-1], ValueError),
    "ce/targets_none": ("softmax_cross_entropy", "targets", lambda a: None, TypeError),
    "ce/mask_shape": ("softmax_cross_entropy", "mask", lambda a: a[:-1], ValueError),
    "ce/mask_values": ("softmax_cross_entropy", "mask", lambda a: a * 2, ValueError),
    "ce/mask_str": ("softmax_cross_entropy", "mask", lambda a: a.astype(str), TypeError),
    "ce_bwd/probs_nan": ("softmax_cross_entropy_backward", "probs", _nan, ValueError),
    "ce_bwd/probs_f16": ("softmax_cross_entropy_backward", "probs",
                         lambda a: a.astype(np.float16), TypeError),
    "ce_bwd/targets_high": ("softmax_cross_entropy_backward", "targets", lambda a: a + V,
                            ValueError),
    "last/y_2d": ("last_step_forward", "y", lambda a: a[0], ValueError),
    "last/lengths_zero": ("last_step_forward", "lengths", lambda a: a - 1, ValueError),
    "last/lengths_above_T": ("last_step_forward", "lengths", lambda a: a + 1, ValueError),
    "last/lengths_float": ("last_step_forward", "lengths", lambda a: a * 1.0, TypeError),
    "last/lengths_shape": ("last_step_forward", "lengths", lambda a: a[:-1], ValueError),
    "last/y_nan": ("last_step_forward", "y", _nan, ValueError),
    "last_bwd/T_zero": ("last_step_backward", "T", lambda a: 0, ValueError),
    "last_bwd/T_float": ("last_step_backward", "T", lambda a: 4.0, TypeError),
    "last_bwd/lengths_above_T": ("last_step_backward", "lengths", lambda a: a + 1, ValueError),
    "last_bwd/dout_3d": ("last_step_backward", "dout", lambda a: a[None], ValueError),
    "fused/x_int": ("dense_softmax_cross_entropy", "x", lambda a: a.astype(int), TypeError),
    "fused/x_list": ("dense_softmax_cross_entropy", "x", lambda a: a.tolist(), TypeError),
    "fused/x_empty": ("dense_softmax_cross_entropy", "x", lambda a: a[:0], ValueError),
    "fused/x_nan": ("dense_softmax_cross_entropy", "x", _nan, ValueError),
    "fused/weight_shape": ("dense_softmax_cross_entropy", "weight", lambda a: a[:, :-1],
                           ValueError),
    "fused/weight_mixed": ("dense_softmax_cross_entropy", "weight",
                           lambda a: a.astype(np.float32), TypeError),
    "fused/weight_inf": ("dense_softmax_cross_entropy", "weight", lambda a: a * np.inf,
                         ValueError),
    "fused/bias_shape": ("dense_softmax_cross_entropy", "bias", lambda a: a[:-1], ValueError),
    "fused/bias_mixed": ("dense_softmax_cross_entropy", "bias", lambda a: a.astype(np.float32),
                         TypeError),
    "fused/targets_high": ("dense_softmax_cross_entropy", "targets", lambda a: a + V,
                           ValueError),
    "fused/targets_negative": ("dense_softmax_cross_entropy", "targets", lambda a: a - V,
                               ValueError),
    "fused/targets_float": ("dense_softmax_cross_entropy", "targets", lambda a: a * 1.0,
                            TypeError),
    "fused/targets_shape": ("dense_softmax_cross_entropy", "targets", lambda a: a[:-1],
                            ValueError),
    "fused/targets_none": ("dense_softmax_cross_entropy", "targets", lambda a: None,
                           TypeError),
    "fused/mask_shape": ("dense_softmax_cross_entropy", "mask", lambda a: a[:-1], ValueError),
    "fused/mask_values": ("dense_softmax_cross_entropy", "mask", lambda a: a * 2, ValueError),
    "fused/mask_str": ("dense_softmax_cross_entropy", "mask", lambda a: a.astype(str),
                       TypeError),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raises_naming_the_argument(case):
    func, arg, make, error = BAD[case]
    kwargs = _valid()[func]
    getattr(heads, func)(**kwargs)  # valid as given
    kwargs[arg] = make(kwargs[arg])
    with pytest.raises(error, match=arg):
        getattr(heads, func)(**kwargs)


# the compiled layer checks again: what reaches it past the Python layer still raises
# (its messages name the argument too), never reads out of bounds
CORE_BAD = [c for c in BAD if c != "dense_bwd/bias_present"]  # pybind11 takes 1 as True


@pytest.mark.parametrize("case", CORE_BAD)
def test_compiled_layer_raises_too(case):
    func, arg, make, error = BAD[case]
    kwargs = _valid()[func]
    getattr(core.heads, func)(**kwargs)
    kwargs[arg] = make(kwargs[arg])
    with pytest.raises(error, match=arg):
        getattr(core.heads, func)(**kwargs)


def test_embedding_reads_only_the_selected_rows():
    """A gather reads (and checks) only the rows that ids select."""
    w = np.arange(V * E, dtype=float).reshape(V, E)
    w[5] = np.nan
    ids = np.array([[0, 6], [2, 0]])
    np.testing.assert_array_equal(heads.embedding_forward(ids, w), w[ids])
    with pytest.raises(ValueError, match="weight"):
        heads.embedding_forward(np.array([1, 5]), w)


def test_mask_and_targets_accept_lists_and_numbers():
    logits, targets = class_inputs(20)
    want = heads.softmax_cross_entropy(logits, targets, MASK)[0]
    assert heads.softmax_cross_entropy(logits, targets.tolist(), MASK.tolist())[0] == want
    assert heads.softmax_cross_entropy(logits, targets.astype(np.uint8), MASK * 1.0)[0] == want


def test_reference_agrees_with_itself_on_one_hot():
    """The reference's fused backward equals the textbook (probs - onehot) * mask."""
    logits, targets = class_inputs(21)
    _, probs = ref.softmax_cross_entropy(logits, targets, MASK)
    onehot = np.eye(V)[targets]
    np.testing.assert_array_equal(ref.softmax_cross_entropy_backward(probs, targets, MASK),
                                  (probs - onehot) * MASK[..., None])


# ----------------------------------------------------------------------------------
# the fused head: dense_softmax_cross_entropy
# ----------------------------------------------------------------------------------


def unfused(x, w, b, targets, mask):
    """The composition that dense_softmax_cross_entropy fuses, from the public functions."""
    loss, probs = heads.softmax_cross_entropy(heads.dense_forward(x, w, b), targets, mask)
    dlogits = heads.softmax_cross_entropy_backward(probs, targets, mask)
    return (loss,) + heads.dense_backward(dlogits, x, w, b is not None)


@pytest.mark.parametrize("mask", ["none", "bool", "int"])
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no_bias"])
@pytest.mark.parametrize("lead", ["TB", "B", "scalar"])
@pytest.mark.parametrize("dt", list(DTYPES))
def test_fused_head_is_the_unfused_composition_bit_for_bit(dt, lead, bias, mask):
    dtype, shape = DTYPES[dt], LEADS[lead]
    rng = np.random.default_rng(30)
    x, w = rand(rng, shape + (F,), dtype), rand(rng, (V, F), dtype)
    b = rand(rng, (V,), dtype) if bias else None
    targets = rng.integers(0, V, shape)
    m = None
    if mask != "none":
        m = np.asarray(rng.random(shape) < 0.6)
        m.flat[0] = True  # one kept position at least
        m = m.astype({"bool": bool, "int": np.int32}[mask])
    got = heads.dense_softmax_cross_entropy(x, w, b, targets, m)
    want = unfused(x, w, b, targets, m)
    assert len(got) == 4
    for name, g, u in zip(("loss", "dx", "dweight", "dbias"), got, want):
        if u is None:
            assert g is None, name
            continue
        assert type(g) is type(u) and g.dtype == dtype and g.shape == u.shape, name
        assert g.tobytes() == u.tobytes(), f"{name} differs from the unfused composition"
    # against the reference in float64 (in float32 the sums of dbias cancel to a few ulps of
    # float32 noise; the unfused functions' own reference tests cover float32)
    if not shape or dtype is not np.float64:  # (the reference's backward needs an axis)
        return
    for name, g, r in zip(("loss", "dx", "dweight", "dbias"), got,
                          ref.dense_softmax_cross_entropy(x, w, b, targets, m)):
        if r is not None:
            close(g, r, dtype, name)


@pytest.mark.parametrize("dt", list(DTYPES))
def test_fused_head_is_bit_for_bit_on_wide_heads_and_extreme_logits(dt):
    """V = 37 (whole vector packets and a tail in every row), 2000 rows (more than one
    block of rows), logits spread over thousands (exps that underflow to 0) and a mask."""
    dtype = DTYPES[dt]
    rng = np.random.default_rng(33)
    x, w = rand(rng, (40, 50, 9), dtype, 30.0), rand(rng, (37, 9), dtype, 30.0)
    b = rand(rng, (37,), dtype)
    targets = rng.integers(0, 37, (40, 50))
    m = rng.random((40, 50)) < 0.8
    got = heads.dense_softmax_cross_entropy(x, w, b, targets, m)
    want = unfused(x, w, b, targets, m)
    for name, g, u in zip(("loss", "dx", "dweight", "dbias"), got, want):
        assert g.tobytes() == u.tobytes(), f"{name} differs from the unfused composition"


def test_fused_head_gradients():
    """dx, dweight, dbias are the gradients of the loss it returns (central differences)."""
    rng = np.random.default_rng(31)
    x, w, b = rand(rng, (T, B, F)), rand(rng, (V, F)), rand(rng, (V,))
    targets = rng.integers(0, V, (T, B))

    def loss():
        return float(heads.dense_softmax_cross_entropy(x, w, b, targets, MASK)[0])

    _, dx, dw, db = heads.dense_softmax_cross_entropy(x, w, b, targets, MASK)
    check_gradients(loss, {"x": x, "weight": w, "bias": b}, {"x": dx, "weight": dw, "bias": db})
    assert not dx[~MASK].any()  # masked positions: no gradient


def test_fused_head_refuses_logits_that_overflow_like_the_unfused_loss():
    """Finite x, weight and bias can still give an infinite logit (float32 overflow): the
    unfused softmax_cross_entropy refuses it, so does the fused call."""
    x = np.full((2, 3, 4), 1e20, np.float32)
    w = np.full((5, 4), 1e20, np.float32)
    targets = np.zeros((2, 3), dtype=int)
    with pytest.raises(ValueError, match="logits"):
        unfused(x, w, None, targets, None)
    with pytest.raises(ValueError, match="logits"):
        heads.dense_softmax_cross_entropy(x, w, None, targets, None)


def test_fused_head_accepts_lists_and_numbers_like_the_loss():
    rng = np.random.default_rng(32)
    x, w = rand(rng, (T, B, F)), rand(rng, (V, F))
    targets = rng.integers(0, V, (T, B))
    want = heads.dense_softmax_cross_entropy(x, w, None, targets, MASK)
    for t, m in ((targets.tolist(), MASK.tolist()), (targets.astype(np.uint8), MASK * 1.0)):
        got = heads.dense_softmax_cross_entropy(x, w, None, t, m)
        assert got[0] == want[0] and np.array_equal(got[1], want[1])


# ----------------------------------------------------------------------------------
# the compiled layer is asked first; the Python checks still choose the message
# ----------------------------------------------------------------------------------


def _put(a, index, value):
    a = a.copy()
    a[index] = value
    return a


@pytest.mark.parametrize("func, kwargs, message", [
    ("softmax_cross_entropy", {"targets": lambda t: _put(t, (1, 2), V + 2)},
     r"^targets\[1, 2\] = 9 is outside 0..V-1 = 0..6$"),
    ("softmax_cross_entropy", {"logits": lambda a: a.astype(np.float32)}, None),
    ("dense_forward", {"weight": lambda a: a.astype(np.float32)},
     r"^weight must have dtype float64 like x, got float32 \(mixed dtypes"),
    ("dense_backward", {"bias_present": lambda a: None}, r"^bias_present must be a bool"),
    ("dense_softmax_cross_entropy", {"targets": lambda t: _put(t, (2, 0), -1)},
     r"^targets\[2, 0\] = -1 is outside 0..V-1 = 0..6$"),
])
def test_python_messages_are_kept(func, kwargs, message):
    """Calls go to the compiled layer first; a refused one is checked again in Python, and
    the error raised is the Python layer's (multi-index positions, 'like x' for dtypes)."""
    args = _valid()[func]
    for name, make in kwargs.items():
        args[name] = make(args[name])
    if message is None:  # valid after all (a float32 call): no error
        getattr(heads, func)(**args)
        return
    with pytest.raises((TypeError, ValueError), match=message):
        getattr(heads, func)(**args)


def test_dense_backward_bias_present_takes_only_bools():
    """pybind11 would read 1, 0 or None as a bool; the Python layer refuses them first."""
    args = _valid()["dense_backward"]
    want = heads.dense_backward(**args)
    for value in (1, 0, None, "yes"):
        with pytest.raises(TypeError, match="bias_present"):
            heads.dense_backward(**dict(args, bias_present=value))
    got = heads.dense_backward(**dict(args, bias_present=np.True_))
    assert all(np.array_equal(g, w) for g, w in zip(got, want))
    assert heads.dense_backward(**dict(args, bias_present=np.False_))[2] is None


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("classes", [1, 2])
def test_rows_of_a_fixed_small_width_give_the_general_paths_bits(classes, dtype):
    # Rows of 1 to 3 classes take loops of a fixed count. Padded with classes whose exp
    # underflows to 0 (every max, sum and product then the same) the rows take the
    # general path, and give the same bits. (3 classes: the next test.)
    rng = np.random.default_rng(classes)
    R, pad = 37, 3
    logits = (rng.standard_normal((R, classes)) * 3).astype(dtype)
    wide = np.concatenate([logits, np.full((R, pad), -1e30, dtype)], axis=1)
    targets = rng.integers(0, classes, R)
    for m in (None, rng.random(R) < 0.8):
        loss, probs = heads.softmax_cross_entropy(logits, targets, m)
        wide_loss, wide_probs = heads.softmax_cross_entropy(wide, targets, m)
        assert loss == wide_loss
        np.testing.assert_array_equal(probs, wide_probs[:, :classes])
        assert not wide_probs[:, classes:].any()


@pytest.mark.skipif(rnnx.isa == "generic", reason="needs packets of 8 floats or more")
def test_rows_of_three_classes_give_the_general_paths_bits():
    # As above with 3 classes, padded to 7, still shorter than a packet of floats on the
    # avx2 and avx512 builds: the general path's sum is then the plain loop too, in the
    # same order. (On the portable build a packet holds 4 floats, and the padded row's
    # sum would go through a packet's lanes in another order.)
    rng = np.random.default_rng(3)
    R = 37
    logits = (rng.standard_normal((R, 3)) * 3).astype(np.float32)
    wide = np.concatenate([logits, np.full((R, 4), -1e30, np.float32)], axis=1)
    targets = rng.integers(0, 3, R)
    loss, probs = heads.softmax_cross_entropy(logits, targets)
    wide_loss, wide_probs = heads.softmax_cross_entropy(wide, targets)
    assert loss == wide_loss
    np.testing.assert_array_equal(probs, wide_probs[:, :3])


@pytest.mark.parametrize("dtype", DTYPES.values(), ids=DTYPES.keys())
@pytest.mark.parametrize("classes", [1, 2, 3])
def test_fused_head_is_the_unfused_composition_at_fixed_small_widths(classes, dtype):
    rng = np.random.default_rng(classes + 10)
    R = 45
    x, w = rand(rng, (R, F), dtype), rand(rng, (classes, F), dtype)
    b = rand(rng, (classes,), dtype)
    targets = rng.integers(0, classes, R)
    for m in (None, rng.random(R) < 0.7):
        got = heads.dense_softmax_cross_entropy(x, w, b, targets, m)
        want = unfused(x, w, b, targets, m)
        for name, g, u in zip(("loss", "dx", "dweight", "dbias"), got, want):
            assert np.asarray(g).tobytes() == np.asarray(u).tobytes(), name


@pytest.mark.skipif(rnnx.isa == "generic", reason="the portable build's products are "
                    "Eigen's, which sum a block's last rows in another order")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N", [1, 2, 7, 13])
@pytest.mark.parametrize("F", [3, 300])
def test_an_output_does_not_depend_on_the_rows_computed_beside_it(dtype, N, F):
    """The micro-kernel computes a panel of weight rows that fits one SIMD packet (a
    head of 1-8 classes, the last rows of a larger one) with half the registers: each
    output must still be the same sum as in a full panel, bit for bit, in the forward
    product, in dx and in the weight gradient (F = 300: two depth blocks)."""
    rng = np.random.default_rng(N * 1000 + F)
    # 40 weight rows: panels of 16, 16 and 8 rows (AVX2 float, AVX-512 double), of 8 (AVX2
    # double) or of 32 and 8 (AVX-512 float); blocks of L rows below give panels of one
    # packet, full (L = the lanes of some build) or partial
    O = 40
    x = rng.standard_normal((N, F)).astype(dtype)
    w = rng.standard_normal((O, F)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    dy = rng.standard_normal((N, O)).astype(dtype)
    y = heads.dense_forward(x, w, b)
    dx, dw, db = heads.dense_backward(dy, x, w)
    for L in (1, 3, 4, 8, 16):  # the weights' first L rows: the forward product's panels
        for i in (0, O - L):
            yi = heads.dense_forward(x, w[i:i + L], b[i:i + L])
            assert np.array_equal(yi, y[:, i:i + L])
    # the first L columns of x and w: rows of dx's (transposed) weights and the panels of
    # dw (dy, whose columns set the other side's panel widths, is the same)
    for L in (1, 3, 4, 8, 16):
        dxl, dwl, dbl = heads.dense_backward(dy, x[:, :L], w[:, :L])
        assert np.array_equal(dxl, dx[:, :L])
        assert np.array_equal(dwl, dw[:, :L])
        assert np.array_equal(dbl, db)


@pytest.mark.skipif(rnnx.isa == "generic", reason="the portable build's products are "
                    "Eigen's, which sum a block's last rows in another order")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("O", [1, 2, 5, 6, 7, 13])
@pytest.mark.parametrize("F", [1, 3, 4, 5, 8, 9])
def test_small_weight_gradients_equal_the_packed_ones(dtype, O, F):
    """A small weight gradient (W_tiny's: one depth block, x a packet of columns wide) is
    computed from x and dy where they lie, without packing them; with zero rows appended
    (a problem too large for that, in two depth blocks of the packed path) the sums and
    their order are the same, so the same bits (R a multiple of 4: the one- and
    two-column panels sum the rows in 4 interleaved chains)."""
    rng = np.random.default_rng(O * 100 + F)
    R, pad = 40, 300
    x = rng.standard_normal((R, F)).astype(dtype)
    w = rng.standard_normal((O, F)).astype(dtype)
    dy = rng.standard_normal((R, O)).astype(dtype)
    _, dw, db = heads.dense_backward(dy, x, w)
    xp = np.concatenate([x, np.zeros((pad, F), dtype)])
    dyp = np.concatenate([dy, np.zeros((pad, O), dtype)])
    _, dwp, dbp = heads.dense_backward(dyp, xp, w)
    assert np.array_equal(dw, dwp) and np.array_equal(db, dbp)
    np.testing.assert_allclose(dw, dy.T.astype(np.float64) @ x, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N,F,O", [(40, 5, 2), (40, 3, 5), (7, 20, 17), (100, 256, 33)])
def test_the_bias_is_added_to_each_sum_as_it_is_stored(dtype, N, F, O):
    """The products write each output once: its sum plus the bias, or plus +0 without one
    (the same bits as the rows set to the bias first and the sums added). With one depth
    block (F <= 256), dense_forward(x, w, b) is then dense_forward(x, w) + b bit for bit,
    and a sum that underflows to -0 comes out +0."""
    rng = np.random.default_rng(N + F + O)
    x = rng.standard_normal((N, F)).astype(dtype)
    w = rng.standard_normal((O, F)).astype(dtype)
    b = rng.standard_normal(O).astype(dtype)
    assert np.array_equal(heads.dense_forward(x, w, b), heads.dense_forward(x, w) + b)
    tiny = np.finfo(dtype).tiny  # every product -tiny**2: -0 after rounding
    y = heads.dense_forward(np.full((N, F), tiny, dtype), np.full((O, F), -tiny, dtype))
    assert np.all(y == 0) and not np.signbit(y).any()
    dx0, _, _ = heads.dense_backward(np.full((N, O), tiny, dtype), x, np.full((O, F), -tiny, dtype))
    assert np.all(dx0 == 0) and not np.signbit(dx0).any()
