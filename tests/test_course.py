"""rnnx's "Step by Step" drop-in (``rnnx.rnn_forward``, ...) against ``rnnx.reference.course``.

* values: float64 to rtol 1e-12 on tiny, all-different sizes, including m = 1, T = 1
  and n_a != n_x;
* structure: return tuples, cache layouts, dict keys and their order, identities;
* the backward functions take caches made by rnnx and by plain NumPy code, honour
  caches the user changed, and read T from ``da``;
* the lazily built cache list behaves as a list;
* central-difference gradient checks of rnnx's own backward functions;
* ``softmax`` and ``sigmoid`` in extreme ranges.
"""

import copy
import pathlib
import pickle
import sys
import warnings

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import (  # noqa: E402
    LSTM_GRAD_KEYS,
    LSTM_PARAM_GRAD_KEYS,
    LSTM_SEQ_GRAD_KEYS,
    RNN_GRAD_KEYS,
    RNN_SEQ_GRAD_KEYS,
    B,
    D,
    H,
    T,
    assert_close,
    assert_dicts_close,
    lstm_params,
    rnn_params,
)

import rnnx  # noqa: E402
from rnnx.reference import course as ref  # noqa: E402

# (n_x, n_a, n_y, m, T)
SIZES = [(3, 5, 2, 10, 4), (1, 1, 1, 1, 1), (7, 3, 4, 1, 6), (2, 9, 5, 3, 1)]
SIZE_IDS = ["nx{}-na{}-ny{}-m{}-T{}".format(*s) for s in SIZES]
MULTI_STEP = [s for s in SIZES if s[4] >= 2]
MULTI_STEP_IDS = ["nx{}-na{}-ny{}-m{}-T{}".format(*s) for s in MULTI_STEP]
CELLS = ["rnn", "lstm"]


class Case:
    """Random inputs of one size for one cell type (rnn or lstm)."""

    def __init__(self, cell, size, seed=0):
        n_x, n_a, n_y, m, steps = size
        rng = np.random.default_rng(seed)
        self.cell, self.n_x, self.n_a, self.n_y, self.m, self.T = cell, n_x, n_a, n_y, m, steps
        make = rnn_params if cell == "rnn" else lstm_params
        self.p = make(rng, n_x=n_x, n_a=n_a, n_y=n_y)
        self.x = rng.standard_normal((n_x, m, steps))
        self.a0 = rng.standard_normal((n_a, m))
        self.c_prev = rng.standard_normal((n_a, m))
        self.da = rng.standard_normal((n_a, m, steps))
        self.da_next = rng.standard_normal((n_a, m))
        self.dc_next = rng.standard_normal((n_a, m))
        self.rng = rng

    # forward with either implementation; returns (outputs..., caches)
    def forward(self, impl):
        f = impl.rnn_forward if self.cell == "rnn" else impl.lstm_forward
        return f(self.x, self.a0, self.p)

    def backward(self, impl, da, caches):
        f = impl.rnn_backward if self.cell == "rnn" else impl.lstm_backward
        return f(da, caches)

    def step(self, entries):
        """A new per-step cache of this cell type with the given arrays."""
        return tuple(entries) + (self.p,)

    def random_step(self):
        """A per-step cache with fresh random arrays (gates in (0, 1) for the LSTM)."""
        r, n_a, m = self.rng, self.n_a, self.m
        if self.cell == "rnn":
            return self.step([np.tanh(r.standard_normal((n_a, m))), r.standard_normal((n_a, m)),
                              r.standard_normal((self.n_x, m))])
        gates = [r.uniform(0.05, 0.95, (n_a, m)) for _ in range(4)]
        gates[2] = np.tanh(r.standard_normal((n_a, m)))  # cct
        return self.step([r.standard_normal((n_a, m)) for _ in range(4)] + gates
                         + [r.standard_normal((self.n_x, m))])


def assert_step_caches_equal(got, want):
    """Two per-step cache lists hold the same values, entry by entry (params by key)."""
    assert len(got) == len(want)
    for t, (g, w) in enumerate(zip(got, want)):
        assert isinstance(g, tuple) and len(g) == len(w), t
        for k, (ge, we) in enumerate(zip(g, w)):
            if isinstance(we, dict):
                assert list(ge) == list(we), (t, k)
                for key in we:
                    np.testing.assert_array_equal(ge[key], we[key])
            else:
                assert_close(ge, we, err_msg=f"step {t} entry {k}")


# ----------------------------------------------------------------------------------
# values and structure: basic RNN
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_rnn_cell_forward(size):
    c = Case("rnn", size)
    xt = c.x[:, :, 0]
    result = rnnx.rnn_cell_forward(xt, c.a0, c.p)
    a_want, y_want, cache_want = ref.rnn_cell_forward(xt, c.a0, c.p)
    assert isinstance(result, tuple) and len(result) == 3
    a_next, yt_pred, cache = result
    assert a_next.shape == (c.n_a, c.m) and yt_pred.shape == (c.n_y, c.m)
    assert a_next.dtype == yt_pred.dtype == np.float64
    assert_close(a_next, a_want)
    assert_close(yt_pred, y_want)
    assert isinstance(cache, tuple) and len(cache) == 4
    assert cache[0] is a_next and cache[1] is c.a0 and cache[2] is xt and cache[3] is c.p
    assert_step_caches_equal([cache], [cache_want])


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_rnn_forward(size):
    c = Case("rnn", size)
    result = c.forward(rnnx)
    a_want, y_want, caches_want = c.forward(ref)
    assert isinstance(result, tuple) and len(result) == 3
    a, y_pred, caches = result
    assert a.shape == (c.n_a, c.m, c.T) and y_pred.shape == (c.n_y, c.m, c.T)
    assert_close(a, a_want)
    assert_close(y_pred, y_want)
    assert isinstance(caches, tuple) and len(caches) == 2
    assert caches[1] is c.x
    cells = caches[0]
    assert isinstance(cells, list) and len(cells) == c.T
    assert cells[0][1] is c.a0
    for t, step in enumerate(cells):
        assert len(step) == 4 and step[3] is c.p
        assert step[0].shape == step[1].shape == (c.n_a, c.m) and step[2].shape == (c.n_x, c.m)
        np.testing.assert_array_equal(step[0], a[:, :, t])
        np.testing.assert_array_equal(step[2], c.x[:, :, t])
    assert_step_caches_equal(cells, caches_want[0])


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_rnn_cell_backward(size):
    c = Case("rnn", size)
    xt = c.x[:, :, 0]
    want = ref.rnn_cell_backward(c.da_next, ref.rnn_cell_forward(xt, c.a0, c.p)[2])
    assert list(want) == RNN_GRAD_KEYS
    own = rnnx.rnn_cell_backward(c.da_next, rnnx.rnn_cell_forward(xt, c.a0, c.p)[2])
    theirs = rnnx.rnn_cell_backward(c.da_next, ref.rnn_cell_forward(xt, c.a0, c.p)[2])
    assert_dicts_close(own, want)
    assert_dicts_close(theirs, want)
    assert own["dxt"].shape == (c.n_x, c.m) and own["dba"].shape == (c.n_a, 1)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_rnn_backward(size):
    c = Case("rnn", size)
    want = ref.rnn_backward(c.da, c.forward(ref)[2])
    assert list(want) == RNN_SEQ_GRAD_KEYS
    own = rnnx.rnn_backward(c.da, c.forward(rnnx)[2])
    theirs = rnnx.rnn_backward(c.da, c.forward(ref)[2])
    assert_dicts_close(own, want)
    assert_dicts_close(theirs, want)
    assert own["dx"].shape == (c.n_x, c.m, c.T) and own["da0"].shape == (c.n_a, c.m)


# ----------------------------------------------------------------------------------
# values and structure: LSTM
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_lstm_cell_forward(size):
    c = Case("lstm", size)
    xt = c.x[:, :, 0]
    result = rnnx.lstm_cell_forward(xt, c.a0, c.c_prev, c.p)
    a_want, c_want, y_want, cache_want = ref.lstm_cell_forward(xt, c.a0, c.c_prev, c.p)
    assert isinstance(result, tuple) and len(result) == 4
    a_next, c_next, yt_pred, cache = result
    assert a_next.shape == c_next.shape == (c.n_a, c.m) and yt_pred.shape == (c.n_y, c.m)
    assert_close(a_next, a_want)
    assert_close(c_next, c_want)
    assert_close(yt_pred, y_want)
    assert isinstance(cache, tuple) and len(cache) == 10
    assert cache[0] is a_next and cache[1] is c_next
    assert cache[2] is c.a0 and cache[3] is c.c_prev and cache[8] is xt and cache[9] is c.p
    assert_step_caches_equal([cache], [cache_want])


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_lstm_forward(size):
    c = Case("lstm", size)
    result = c.forward(rnnx)
    a_want, y_want, c_want, caches_want = c.forward(ref)
    assert isinstance(result, tuple) and len(result) == 4
    a, y, cell_states, caches = result  # the course's order: a, y, c, caches
    assert a.shape == cell_states.shape == (c.n_a, c.m, c.T) and y.shape == (c.n_y, c.m, c.T)
    assert_close(a, a_want)
    assert_close(y, y_want)
    assert_close(cell_states, c_want)
    assert isinstance(caches, tuple) and len(caches) == 2
    assert caches[1] is c.x
    cells = caches[0]
    assert isinstance(cells, list) and len(cells) == c.T
    assert cells[0][2] is c.a0
    np.testing.assert_array_equal(cells[0][3], np.zeros((c.n_a, c.m)))  # c0 = 0
    for t, step in enumerate(cells):
        assert len(step) == 10 and step[9] is c.p
        for k in range(8):
            assert step[k].shape == (c.n_a, c.m), (t, k)
        assert step[8].shape == (c.n_x, c.m)
        np.testing.assert_array_equal(step[0], a[:, :, t])
        np.testing.assert_array_equal(step[1], cell_states[:, :, t])
    assert_step_caches_equal(cells, caches_want[0])


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_lstm_cell_backward(size):
    c = Case("lstm", size)
    xt = c.x[:, :, 0]
    want = ref.lstm_cell_backward(c.da_next, c.dc_next,
                                  ref.lstm_cell_forward(xt, c.a0, c.c_prev, c.p)[3])
    assert list(want) == LSTM_GRAD_KEYS
    own = rnnx.lstm_cell_backward(c.da_next, c.dc_next,
                                  rnnx.lstm_cell_forward(xt, c.a0, c.c_prev, c.p)[3])
    theirs = rnnx.lstm_cell_backward(c.da_next, c.dc_next,
                                     ref.lstm_cell_forward(xt, c.a0, c.c_prev, c.p)[3])
    assert_dicts_close(own, want)
    assert_dicts_close(theirs, want)
    assert own["dWf"].shape == (c.n_a, c.n_a + c.n_x) and own["dbo"].shape == (c.n_a, 1)


@pytest.mark.parametrize("size", SIZES, ids=SIZE_IDS)
def test_lstm_backward(size):
    c = Case("lstm", size)
    want = ref.lstm_backward(c.da, c.forward(ref)[3])
    assert list(want) == LSTM_SEQ_GRAD_KEYS  # no dc0
    own = rnnx.lstm_backward(c.da, c.forward(rnnx)[3])
    theirs = rnnx.lstm_backward(c.da, c.forward(ref)[3])
    assert_dicts_close(own, want)
    assert_dicts_close(theirs, want)
    assert own["dx"].shape == (c.n_x, c.m, c.T) and own["da0"].shape == (c.n_a, c.m)


# ----------------------------------------------------------------------------------
# T from da.shape
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("made_by", ["rnnx_caches", "numpy_caches"])
@pytest.mark.parametrize("size", MULTI_STEP, ids=MULTI_STEP_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_backward_takes_T_from_da(cell, size, made_by):
    # the published 2021 lstm_backward test feeds da with T=4 into a T=7 forward pass
    c = Case(cell, size)
    caches = c.forward(rnnx if made_by == "rnnx_caches" else ref)[-1]
    ref_caches = c.forward(ref)[-1]
    steps = c.T - 1
    da = c.da[:, :, :steps]
    got = c.backward(rnnx, da, caches)
    assert got["dx"].shape == (c.n_x, c.m, steps)
    assert_dicts_close(got, c.backward(ref, da, ref_caches))


@pytest.mark.parametrize("made_by", ["rnnx_caches", "numpy_caches"])
@pytest.mark.parametrize("cell", CELLS)
def test_backward_with_more_steps_in_da_raises_index_error(cell, made_by):
    c = Case(cell, SIZES[0])
    caches = c.forward(rnnx if made_by == "rnnx_caches" else ref)[-1]
    da = c.rng.standard_normal((c.n_a, c.m, c.T + 1))
    with pytest.raises(IndexError):
        c.backward(ref, da, c.forward(ref)[-1])  # the original raises IndexError too
    with pytest.raises(IndexError):
        c.backward(rnnx, da, caches)


# ----------------------------------------------------------------------------------
# changed caches are honoured
# ----------------------------------------------------------------------------------


def changed(grads, before):
    """Whether some gradient differs from `before` (so that the change mattered)."""
    return any(not np.allclose(grads[k], before[k]) for k in before)


@pytest.mark.parametrize("size", MULTI_STEP, ids=MULTI_STEP_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_backward_honours_a_replaced_step(cell, size):
    c = Case(cell, size)
    caches = c.forward(rnnx)[-1]
    before = c.backward(rnnx, c.da, caches)
    caches[0][1] = c.random_step()
    want = c.backward(ref, c.da, (list(caches[0]), c.x))
    got = c.backward(rnnx, c.da, caches)
    assert changed(got, before)
    assert_dicts_close(got, want)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_honours_an_appended_step(cell):
    c = Case(cell, SIZES[0])
    caches = c.forward(rnnx)[-1]
    caches[0].append(c.random_step())
    da = c.rng.standard_normal((c.n_a, c.m, c.T + 1))
    assert_dicts_close(c.backward(rnnx, da, caches), c.backward(ref, da, (list(caches[0]), c.x)))


@pytest.mark.parametrize("cell", CELLS)
def test_backward_after_deleting_a_step_raises_index_error(cell):
    c = Case(cell, SIZES[0])
    caches = c.forward(rnnx)[-1]
    del caches[0][-1]
    with pytest.raises(IndexError):
        c.backward(ref, c.da, (list(caches[0]), c.x))
    with pytest.raises(IndexError):
        c.backward(rnnx, c.da, caches)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_honours_arrays_changed_in_place_in_the_caches(cell):
    c = Case(cell, SIZES[0])
    caches = c.forward(rnnx)[-1]
    before = c.backward(rnnx, c.da, caches)
    hidden = caches[0][1][0]  # a_next of step 1 (the course's step 2 a_prev is the same)
    hidden *= 0.5
    xt = caches[0][2][2 if cell == "rnn" else 8]
    xt += 1.0
    want = c.backward(ref, c.da, (list(caches[0]), c.x))
    got = c.backward(rnnx, c.da, caches)
    assert changed(got, before)
    assert_dicts_close(got, want)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_honours_a0_changed_in_place(cell):
    # the course's step-0 cache holds a0 itself: changing it in place changes the
    # gradients of the original code (BUG: rnnx keeps its own copy of a0)
    c = Case(cell, SIZES[0])
    caches = c.forward(rnnx)[-1]
    ref_caches = c.forward(ref)[-1]
    assert caches[0][0][1 if cell == "rnn" else 2] is c.a0
    c.a0 += 1.0
    assert_dicts_close(c.backward(rnnx, c.da, caches), c.backward(ref, c.da, ref_caches))


@pytest.mark.parametrize("cell", CELLS)
def test_returned_states_are_independent_of_the_caches(cell):
    # the course's a (and c) are fresh arrays; changing them in place must not change
    # what backward computes (BUG: rnnx returns views of the buffers backward reads)
    c = Case(cell, SIZES[0])
    want = c.backward(ref, c.da, c.forward(ref)[-1])
    result = c.forward(rnnx)
    for state in (result[0], result[2]) if cell == "lstm" else (result[0],):
        state *= 3.0
    assert_dicts_close(c.backward(rnnx, c.da, result[-1]), want)


@pytest.mark.parametrize("cell", CELLS)
def test_backward_uses_each_steps_own_parameters(cell):
    # the original calls the cell backward with every step's own cache, parameters
    # included (BUG: rnnx reads the parameters of step 0 only)
    c = Case(cell, SIZES[0])
    caches = c.forward(rnnx)[-1]
    other = {k: v * 1.25 for k, v in c.p.items()}
    caches[0][2] = caches[0][2][:-1] + (other,)
    assert_dicts_close(c.backward(rnnx, c.da, caches),
                       c.backward(ref, c.da, (list(caches[0]), c.x)))


# ----------------------------------------------------------------------------------
# the lazily built cache list
# ----------------------------------------------------------------------------------

READS = {
    "list": lambda cells: list(cells),
    "iterate": lambda cells: [step for step in cells],
    "index": lambda cells: [cells[t] for t in range(len(cells))],
    "negative_index": lambda cells: [cells[t - len(cells)] for t in range(len(cells))],
    "slice": lambda cells: cells[:],
    "reversed": lambda cells: list(reversed(cells))[::-1],
    "tuple": lambda cells: list(tuple(cells)),
    "copy_method": lambda cells: cells.copy(),
    "concatenate": lambda cells: cells + [],
    "deepcopy": lambda cells: copy.deepcopy(cells),
    "pickle": lambda cells: pickle.loads(pickle.dumps(cells)),
}


@pytest.mark.parametrize("read", list(READS))
@pytest.mark.parametrize("cell", CELLS)
def test_cache_list_first_read(cell, read):
    # each way of reading works as the first access to a fresh list
    c = Case(cell, SIZES[0])
    cells = c.forward(rnnx)[-1][0]
    assert len(cells) == c.T
    got = READS[read](cells)
    assert type(got) is list
    assert_step_caches_equal(got, c.forward(ref)[-1][0])
    # and whatever it produced works as a cache list
    want = c.backward(ref, c.da, c.forward(ref)[-1])
    assert_dicts_close(c.backward(rnnx, c.da, (got, c.x)), want)


@pytest.mark.parametrize("cell", CELLS)
def test_cache_list_behaves_as_a_list(cell):
    c = Case(cell, SIZES[0])
    x_cached = c.forward(rnnx)[-1]
    cells = x_cached[0]
    assert isinstance(cells, list) and len(cells) == c.T and bool(cells)
    assert cells[-1] is cells[c.T - 1] and cells[-c.T] is cells[0]
    assert cells[1:3] == [cells[1], cells[2]] and type(cells[1:3]) is list
    assert [step for step in cells] == [cells[t] for t in range(c.T)]
    assert list(reversed(cells)) == [cells[t] for t in reversed(range(c.T))]
    materialised = list(cells)
    assert cells == materialised and materialised == cells and not cells != materialised
    assert cells != materialised[:-1] and cells != []
    assert cells[0] in cells and cells.index(cells[0]) == 0  # found by identity
    with pytest.raises(IndexError):
        cells[c.T]
    # copies are plain lists with equal values; the parameters stay shared within one
    copied = copy.deepcopy(cells)
    assert type(copied) is list and copied[0][-1] is copied[-1][-1]
    assert copied[0][-1] is not c.p
    assert_step_caches_equal(copied, materialised)
    restored = pickle.loads(pickle.dumps(x_cached))
    assert type(restored) is tuple and type(restored[0]) is list
    assert_step_caches_equal(restored[0], materialised)
    np.testing.assert_array_equal(restored[1], c.x)


# ----------------------------------------------------------------------------------
# softmax and sigmoid
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6,), (4, 3), (5, 2, 3), (1, 1)], ids=str)
def test_softmax_equals_the_reference(shape):
    x = np.random.default_rng(20).standard_normal(shape) * 5
    got = rnnx.softmax(x)
    np.testing.assert_array_equal(got, ref.softmax(x))
    assert_close(got.sum(axis=0), np.ones(shape[1:]))


@pytest.mark.parametrize("where", ["first_column", "last_column"])
def test_softmax_column_far_below_the_global_max(where):
    x = np.array([[0.0, -1000.0, 3.0], [1.0, -999.0, 2.0]])
    if where == "first_column":
        x = x[:, ::-1].copy()
    with np.errstate(invalid="ignore"):
        assert np.isnan(ref.softmax(x)[:, 1]).all()  # the course's 0/0
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        got = rnnx.softmax(x)
    assert np.isfinite(got).all()
    assert_close(got.sum(axis=0), np.ones(3))
    per_column = np.exp(x - x.max(axis=0)) / np.exp(x - x.max(axis=0)).sum(axis=0)
    assert_close(got, per_column)


def test_forward_head_with_columns_far_apart_is_finite():
    # the C++ head's softmax: one example's logits lie ~7000 below the other's
    n_x, n_a, m = 2, 3, 2
    p = {"Waa": np.zeros((n_a, n_a)), "Wax": np.full((n_a, n_x), 10.0),
         "Wya": np.full((2, n_a), 1200.0), "ba": np.zeros((n_a, 1)), "by": np.array([[0.0], [1.0]])}
    xt = np.array([[1.0, -1.0], [1.0, -1.0]])
    _, yt, _ = rnnx.rnn_cell_forward(xt, np.zeros((n_a, m)), p)
    with np.errstate(invalid="ignore"):
        assert np.isnan(ref.rnn_cell_forward(xt, np.zeros((n_a, m)), p)[1][:, 1]).all()
    column = np.array([1.0, np.e]) / (1.0 + np.e)
    assert_close(yt, np.stack([column, column], axis=1))


def test_sigmoid_saturates_without_nan_or_warnings():
    x = np.array([[-1e4, -50.0, 0.0], [50.0, 1e4, 3.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = rnnx.sigmoid(x)
    assert not np.isnan(got).any()
    assert got[0, 0] == 0.0 and got[1, 1] == 1.0 and got[0, 2] == 0.5
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got, ref.sigmoid(x))
