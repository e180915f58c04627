"""The time-major C++ kernels (``rnnx.kernels``) against ``rnnx.reference.kernels``.

* RNN (tanh, relu) and LSTM, forward and backward, float64 to rtol 1e-12 and float32
  to ~1e-5 (outputs stay float32), with and without ``dh``, ``dh_n``, ``dc_n``, bias,
  and with B = 1 and T = 1;
* central-difference gradient checks of the C++ backward kernels (float64);
* every instruction-set build (``RNNX_ISA=generic``, ``avx2``, ``avx512``) in a fresh
  interpreter, and results that do not depend on the thread count;
* saturated gates and activations (pre-activations of about ±1e4) stay finite.
"""

import pathlib
import sys
import textwrap

import numpy as np
import pytest

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import (  # noqa: E402
    B,
    D,
    H,
    T,
    assert_close,
    assert_gradients,
    rnn_kernel_inputs,
    run_python,
)

import rnnx  # noqa: E402
from rnnx import kernels  # noqa: E402
from rnnx.reference import kernels as ref  # noqa: E402

CELLS = ["rnn_tanh", "rnn_relu", "lstm"]
DTYPES = [np.float64, np.float32]
DTYPE_IDS = ["float64", "float32"]
# variant: (T, B, bias, upstream gradients: which of dh, dh_n, dc_n are given)
VARIANTS = {
    "dh": (T, B, True, ("dh",)),
    "dh_none_final_only": (T, B, True, ("dh_n", "dc_n")),
    "dh_and_final": (T, B, True, ("dh", "dh_n", "dc_n")),
    "no_bias": (T, B, False, ("dh",)),
    "B1": (T, 1, True, ("dh", "dh_n", "dc_n")),
    "T1": (1, B, True, ("dh", "dh_n")),
}


def inputs(cell, steps=T, batch=B, bias=True, given=("dh",), seed=0, scale=0.5, hidden=H):
    """Random float64 inputs of one kernel call, as a dict of named arrays."""
    H = hidden
    rng = np.random.default_rng(seed)
    G = 4 if cell == "lstm" else 1
    a = {
        "x": rng.standard_normal((steps, batch, D)),
        "h0": rng.standard_normal((batch, H)),
        "w_ih": rng.standard_normal((G * H, D)) * scale,
        "w_hh": rng.standard_normal((G * H, H)) * scale,
        "b": rng.standard_normal(G * H) * scale if bias else None,
        "dh": rng.standard_normal((steps, batch, H)) if "dh" in given else None,
        "dh_n": rng.standard_normal((batch, H)) if "dh_n" in given else None,
    }
    if cell == "lstm":
        a["c0"] = rng.standard_normal((batch, H))
        a["dc_n"] = rng.standard_normal((batch, H)) if "dc_n" in given else None
    return a


def cast(arrays, dtype):
    return {k: (None if v is None else v.astype(dtype)) for k, v in arrays.items()}


def run(impl, cell, a):
    """Forward then backward; returns every output array, forward ones first."""
    dh = a["dh"]
    if impl is ref and dh is None:  # the reference needs an explicit zero dh
        dh = np.zeros(a["x"].shape[:2] + a["h0"].shape[1:], dtype=a["x"].dtype)
    if cell == "lstm":
        h, c, gates = impl.lstm_forward(a["x"], a["h0"], a["c0"], a["w_ih"], a["w_hh"], a["b"])
        grads = impl.lstm_backward(dh, a["x"], a["h0"], a["c0"], h, c, gates, a["w_ih"],
                                   a["w_hh"], dh_n=a["dh_n"], dc_n=a["dc_n"])
        return (h, c, gates) + tuple(grads)
    nl = cell.split("_")[1]
    h = impl.rnn_forward(a["x"], a["h0"], a["w_ih"], a["w_hh"], a["b"], nl)
    grads = impl.rnn_backward(dh, a["x"], a["h0"], h, a["w_ih"], a["w_hh"], nl, dh_n=a["dh_n"])
    return (h,) + tuple(grads)


OUTPUT_NAMES = {
    "lstm": ["h", "c", "gates", "dx", "dh0", "dc0", "dw_ih", "dw_hh", "db"],
    "rnn": ["h", "dx", "dh0", "dw_ih", "dw_hh", "db"],
}


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_kernel_equals_the_reference(cell, dtype, variant):
    steps, batch, bias, given = VARIANTS[variant]
    if cell != "lstm":
        given = tuple(g for g in given if g != "dc_n")
    a = cast(inputs(cell, steps, batch, bias, given, seed=len(variant)), dtype)
    assert_outputs_match(cell, dtype, run(kernels, cell, a), run(ref, cell, a))


# Hidden sizes around the packet widths (4 to 16 lanes by build and dtype): whole
# packets only, and a partial packet after whole ones; at H = 64 the LSTM's dgates rows
# are padded (lstm_dgates_stride).
@pytest.mark.parametrize("hidden", [16, 20, 24, 33, 64])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_kernel_equals_the_reference_at_hidden_sizes(cell, dtype, hidden):
    given = ("dh", "dh_n", "dc_n") if cell == "lstm" else ("dh", "dh_n")
    a = cast(inputs(cell, 3, 4, hidden % 2 == 0, given, seed=hidden, hidden=hidden), dtype)
    assert_outputs_match(cell, dtype, run(kernels, cell, a), run(ref, cell, a))


# 700 rows (T*B = 35*20): the weight gradients' depth blocks of 256, 256 and 188 rows,
# with dW_ih, dW_hh and db summed in one pass over the gate gradients; input 4 and
# hidden 13: panels that end part-way (gate columns 13 or 52). Against the reference,
# and the same bits on 1 and 3 threads.
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_kernel_equals_the_reference_over_several_depth_blocks(cell, dtype):
    given = ("dh", "dh_n", "dc_n") if cell == "lstm" else ("dh", "dh_n")
    a = cast(inputs(cell, 35, 20, True, given, seed=77, hidden=13), dtype)
    threads = rnnx.get_num_threads()
    try:
        rnnx.set_num_threads(1)
        got = run(kernels, cell, a)
        rnnx.set_num_threads(3)
        again = run(kernels, cell, a)
    finally:
        rnnx.set_num_threads(threads)
    assert_outputs_match(cell, dtype, got, run(ref, cell, a))
    for name, g, h in zip(OUTPUT_NAMES["lstm" if cell == "lstm" else "rnn"], got, again):
        np.testing.assert_array_equal(g, h, err_msg=name)


def assert_outputs_match(cell, dtype, got, want):
    names = OUTPUT_NAMES["lstm" if cell == "lstm" else "rnn"]
    assert len(got) == len(names)
    for name, g, w in zip(names, got, want):
        assert type(g) is np.ndarray and g.dtype == dtype, name
        assert g.shape == w.shape, name
        if dtype == np.float64:
            assert_close(g, w, err_msg=name)
        else:
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-5 * scale, err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_float32_kernels_agree_with_float64(cell):
    a = inputs(cell, given=("dh", "dh_n", "dc_n") if cell == "lstm" else ("dh", "dh_n"), seed=5)
    got32 = run(kernels, cell, cast(a, np.float32))
    want64 = run(ref, cell, a)
    for g, w in zip(got32, want64):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * max(1.0, float(np.abs(w).max())))


# ----------------------------------------------------------------------------------
# gradient checks of the C++ backward kernels (float64)
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("upstream", ["dh", "dh_n", "dh_and_dh_n"])
@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
def test_rnn_kernel_gradients(nonlinearity, upstream):
    x, h0, w_ih, w_hh, b = rnn_kernel_inputs(60, nonlinearity)
    rng = np.random.default_rng(61)
    dh = rng.standard_normal((T, B, H)) if upstream != "dh_n" else None
    dh_n = rng.standard_normal((B, H)) if upstream != "dh" else None

    def loss():
        h = kernels.rnn_forward(x, h0, w_ih, w_hh, b, nonlinearity)
        total = np.sum(dh * h) if dh is not None else 0.0
        return total + (np.sum(dh_n * h[-1]) if dh_n is not None else 0.0)

    h = kernels.rnn_forward(x, h0, w_ih, w_hh, b, nonlinearity)
    dx, dh0, dw_ih, dw_hh, db = kernels.rnn_backward(dh, x, h0, h, w_ih, w_hh, nonlinearity,
                                                     dh_n=dh_n)
    assert_gradients(
        loss,
        {"x": x, "h0": h0, "w_ih": w_ih, "w_hh": w_hh, "b": b},
        {"x": dx, "h0": dh0, "w_ih": dw_ih, "w_hh": dw_hh, "b": db},
    )


@pytest.mark.parametrize("upstream", ["dh", "dh_n_dc_n", "all"])
def test_lstm_kernel_gradients(upstream):
    a = inputs("lstm", given={"dh": ("dh",), "dh_n_dc_n": ("dh_n", "dc_n"),
                              "all": ("dh", "dh_n", "dc_n")}[upstream], seed=62)
    x, h0, c0, w_ih, w_hh, b = (a[k] for k in ("x", "h0", "c0", "w_ih", "w_hh", "b"))
    dh, dh_n, dc_n = a["dh"], a["dh_n"], a["dc_n"]

    def loss():
        h, c, _ = kernels.lstm_forward(x, h0, c0, w_ih, w_hh, b)
        total = np.sum(dh * h) if dh is not None else 0.0
        if dh_n is not None:
            total += np.sum(dh_n * h[-1]) + np.sum(dc_n * c[-1])
        return total

    h, c, gates = kernels.lstm_forward(x, h0, c0, w_ih, w_hh, b)
    dx, dh0, dc0, dw_ih, dw_hh, db = kernels.lstm_backward(
        dh, x, h0, c0, h, c, gates, w_ih, w_hh, dh_n=dh_n, dc_n=dc_n
    )
    assert_gradients(
        loss,
        {"x": x, "h0": h0, "c0": c0, "w_ih": w_ih, "w_hh": w_hh, "b": b},
        {"x": dx, "h0": dh0, "c0": dc0, "w_ih": dw_ih, "w_hh": dw_hh, "b": db},
    )


# ----------------------------------------------------------------------------------
# the builds and the thread pool
# ----------------------------------------------------------------------------------

BUILD_CHECK = textwrap.dedent(
    """
    import os
    import numpy as np
    import rnnx
    from rnnx import kernels
    from rnnx.reference import course, kernels as ref

    assert rnnx.isa == os.environ["RNNX_ISA"], rnnx.isa
    rng = np.random.default_rng(70)
    T, B, D, H = 3, 2, 4, 5
    x = rng.standard_normal((T, B, D))
    h0, c0 = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    w_ih, w_hh = rng.standard_normal((4 * H, D)) * 0.5, rng.standard_normal((4 * H, H)) * 0.5
    b, dh = rng.standard_normal(4 * H) * 0.5, rng.standard_normal((T, B, H))
    dh_n, dc_n = rng.standard_normal((B, H)), rng.standard_normal((B, H))
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        args = [v.astype(dtype) for v in (x, h0, c0, w_ih, w_hh, b, dh, dh_n, dc_n)]
        xx, hh0, cc0, wi, wh, bb, ddh, dhn, dcn = args
        got = kernels.lstm_forward(xx, hh0, cc0, wi, wh, bb)
        want = ref.lstm_forward(xx, hh0, cc0, wi, wh, bb)
        got += kernels.lstm_backward(ddh, xx, hh0, cc0, *got, wi, wh, dh_n=dhn, dc_n=dcn)
        want += ref.lstm_backward(ddh, xx, hh0, cc0, *want, wi, wh, dh_n=dhn, dc_n=dcn)
        for g, w in zip(got, want):
            assert g.dtype == dtype
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * 10)
    p = {}
    for gate in "fioc":
        p["W" + gate] = rng.standard_normal((H, H + D))
        p["b" + gate] = rng.standard_normal((H, 1))
    p["Wy"], p["by"] = rng.standard_normal((6, H)), rng.standard_normal((6, 1))
    xc, a0 = rng.standard_normal((D, B, T)), rng.standard_normal((H, B))
    da = rng.standard_normal((H, B, T))
    got, want = rnnx.lstm_forward(xc, a0, p), course.lstm_forward(xc, a0, p)
    for g, w in zip(got[:3], want[:3]):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)
    gg, gw = rnnx.lstm_backward(da, got[3]), course.lstm_backward(da, want[3])
    assert list(gg) == list(gw)
    for k in gw:
        np.testing.assert_allclose(gg[k], gw[k], rtol=1e-12, atol=1e-13)
    # 700 rows: the weight gradients' depth blocks of 256, 256 and 188 rows and the bias
    # summed in the same pass, on this build's panel widths (hidden 13: a part panel)
    T, B, H = 35, 20, 13
    x, h0, dh = (rng.standard_normal(s) for s in ((T, B, D), (B, H), (T, B, H)))
    w_ih, w_hh = rng.standard_normal((H, D)) * 0.5, rng.standard_normal((H, H)) * 0.5
    b = rng.standard_normal(H) * 0.5
    for dtype, rtol in ((np.float64, 1e-12), (np.float32, 1e-5)):
        xx, hh0, wi, wh, bb, ddh = (v.astype(dtype) for v in (x, h0, w_ih, w_hh, b, dh))
        got = [kernels.rnn_forward(xx, hh0, wi, wh, bb, "tanh")]
        want = [ref.rnn_forward(xx, hh0, wi, wh, bb, "tanh")]
        got += kernels.rnn_backward(ddh, xx, hh0, got[0], wi, wh, "tanh")
        want += ref.rnn_backward(ddh, xx, hh0, want[0], wi, wh, "tanh")
        for g, w in zip(got, want):
            assert g.dtype == dtype
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * scale)
    print(rnnx.isa, "build OK")
    """
)


@pytest.mark.parametrize("isa", ["generic", "avx2", "avx512"])
def test_each_build_in_a_fresh_interpreter(isa):
    # the main process tests the build RNNX_ISA=auto picks; each build is checked here
    proc = run_python(BUILD_CHECK, RNNX_ISA=isa)
    if isa != "generic" and "but this CPU supports only" in proc.stderr:
        pytest.skip(f"this CPU cannot run the {isa} build")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"{isa} build OK"


def large_inputs(cell, seed=75):
    """Inputs above the thread pool's thresholds: several unit blocks and row blocks."""
    rng = np.random.default_rng(seed)
    steps, batch, hidden, G = 20, 16, 130, 4 if cell == "lstm" else 1
    return {"x": rng.standard_normal((steps, batch, 30)),
            "h0": rng.standard_normal((batch, hidden)), "c0": rng.standard_normal((batch, hidden)),
            "w_ih": rng.standard_normal((G * hidden, 30)) * 0.1,
            "w_hh": rng.standard_normal((G * hidden, hidden)) * 0.1,
            "b": rng.standard_normal(G * hidden) * 0.1,
            "dh": rng.standard_normal((steps, batch, hidden)), "dh_n": None, "dc_n": None}


def at_offset(a, offset):
    """A C-contiguous copy of `a` whose data starts `offset` bytes after a 64-byte boundary."""
    buffer = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = (-buffer.ctypes.data) % 64 + offset
    out = buffer[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("batch", [1, 2, 3, 13, 16])
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_every_column_count_of_the_micro_kernel(cell, dtype, batch):
    # Batches 1 and 2 take the split-depth path of the recurrent product, 3..12 a
    # partial panel of columns, 13 and 16 one full panel of 12 (AVX-512) plus a partial
    # one; hidden 130 gives several unit blocks, depths 130 and 4*130 with a tail after
    # the groups of 4, and row panels that end part-way.
    a = large_inputs(cell)
    a = {k: (None if v is None else (v[:, :batch] if v.ndim == 3 else
                                     v[:batch] if k in ("h0", "c0") else v)) for k, v in a.items()}
    a = cast(a, dtype)
    got, want = run(kernels, cell, a), run(ref, cell, a)
    for name, g, w in zip(OUTPUT_NAMES["lstm" if cell == "lstm" else "rnn"], got, want):
        if dtype == np.float64:
            assert_close(g, w, err_msg=name)
        else:
            scale = max(1.0, float(np.abs(w).max()))
            np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def per_sequence_outputs(cell, x, h0, c0, w_ih, w_hh, b, dh):
    """The outputs of a forward and backward call that belong to each sequence alone:
    the states of every step (axis 1) and the carries into step 0 (axis 0)."""
    if cell == "lstm":
        h, c, gates = kernels.lstm_forward(x, h0, c0, w_ih, w_hh, b)
        _, dh0, dc0, *_ = kernels.lstm_backward(dh, x, h0, c0, h, c, gates, w_ih, w_hh)
        return {"h": h, "c": c, "gates": gates}, {"dh0": dh0, "dc0": dc0}
    if cell.startswith("gru"):
        reset_after, simplified = cell != "gru_before", cell == "gru_simplified"
        h, gates, aux = kernels.gru_forward(x, h0, w_ih, w_hh, b, b, reset_after, simplified)
        _, dh0, *_ = kernels.gru_backward(dh, x, h0, h, gates, aux, w_ih, w_hh, reset_after,
                                          simplified)
        return {"h": h, "gates": gates}, {"dh0": dh0}
    h = kernels.rnn_forward(x, h0, w_ih, w_hh, b, cell.split("_")[1])
    _, dh0, *_ = kernels.rnn_backward(dh, x, h0, h, w_ih, w_hh, cell.split("_")[1])
    return {"h": h}, {"dh0": dh0}


@pytest.mark.skipif(rnnx.isa == "generic", reason="the portable build's products are "
                    "Eigen's, whose narrowest panels sum the depth in another order")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", ["rnn_tanh", "gru", "gru_before", "gru_simplified", "lstm"])
def test_a_sequence_has_the_same_bits_in_any_batch_of_three_or_more(cell, dtype):
    """The recurrent product of a step sums every column (sequence) over the depth in
    one chain once the batch has 3 sequences or more: batches of 13 and 14 end in two
    panels of about half the micro-kernel's width (6+4+3 or 6+4+4 on AVX2, 7+6 or 7+7 on
    AVX-512), not in a panel of 1 or 2 columns, whose depth is summed in 4 interleaved
    chains. So each sequence's states and carries are the same bits as in a
    batch of 3. x = 0: the input projection is then the bias exactly, whatever its order
    of summation (that product's panels follow its T*B rows, not the batch)."""
    G = {"lstm": 4, "gru_simplified": 2}.get(cell, 3 if cell.startswith("gru") else 1)
    hidden, steps = 40, 5
    for batch in (13, 14):
        rng = np.random.default_rng(batch)
        x = np.zeros((steps, batch, 3), dtype)
        h0, c0 = (rng.standard_normal((batch, hidden)).astype(dtype) for _ in range(2))
        w_ih = rng.standard_normal((G * hidden, 3)).astype(dtype)
        w_hh = (rng.standard_normal((G * hidden, hidden)) * 0.3).astype(dtype)
        b = (rng.standard_normal(G * hidden) * 0.3).astype(dtype)
        dh = rng.standard_normal((steps, batch, hidden)).astype(dtype)
        states, carries = per_sequence_outputs(cell, x, h0, c0, w_ih, w_hh, b, dh)
        for first in range(0, batch, 3):
            rows = [(first + i) % batch for i in range(3)]
            sub_states, sub_carries = per_sequence_outputs(
                cell, x[:, rows], h0[rows], c0[rows], w_ih, w_hh, b, dh[:, rows])
            for name, whole in states.items():
                np.testing.assert_array_equal(sub_states[name], whole[:, rows], err_msg=name)
            for name, whole in carries.items():
                np.testing.assert_array_equal(sub_carries[name], whole[rows], err_msg=name)


@pytest.mark.parametrize("cell", CELLS)
def test_results_do_not_depend_on_the_thread_count(cell):
    # documented: bit-identical results for any thread count
    a = large_inputs(cell)
    threads = rnnx.get_num_threads()
    try:
        results = []
        for n in (1, 3):
            rnnx.set_num_threads(n)
            assert rnnx.get_num_threads() == n
            results.append(run(kernels, cell, a))
    finally:
        rnnx.set_num_threads(threads)
    names = OUTPUT_NAMES["lstm" if cell == "lstm" else "rnn"]
    for name, serial, threaded in zip(names, *results):
        np.testing.assert_array_equal(threaded, serial, err_msg=name)
    for got, want in zip(results[0][:3], run(ref, cell, a)[:3]):
        assert_close(got, want)


@pytest.mark.parametrize("cell", CELLS)
def test_results_do_not_depend_on_the_alignment_of_the_arrays(cell):
    # NumPy aligns arrays to 16 bytes only; the same numbers must give the same bits
    # wherever they lie (BUG: the last bit follows the 32-byte alignment)
    a = large_inputs(cell)
    results = [run(kernels, cell, {k: None if v is None else at_offset(v, offset)
                                   for k, v in a.items()}) for offset in (0, 8, 16, 24)]
    names = OUTPUT_NAMES["lstm" if cell == "lstm" else "rnn"]
    for other in results[1:]:
        for name, first, again in zip(names, results[0], other):
            np.testing.assert_array_equal(again, first, err_msg=name)


# ----------------------------------------------------------------------------------
# saturation
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("cell", CELLS)
def test_saturated_activations_stay_finite(cell, dtype):
    # weights scaled so that pre-activations reach about ±1e4
    a = inputs(cell, given=("dh", "dh_n", "dc_n") if cell == "lstm" else ("dh", "dh_n"),
               seed=80, scale=1.0)
    a["w_ih"] = a["w_ih"] * 1e4
    a = cast(a, dtype)
    z = np.abs(a["x"][0] @ a["w_ih"].T)
    assert z.max() > 1e4
    got = run(kernels, cell, a)
    for name, g in zip(OUTPUT_NAMES["lstm" if cell == "lstm" else "rnn"], got):
        assert g.dtype == dtype and np.isfinite(g).all(), name
    with np.errstate(over="ignore"):
        want = run(ref, cell, a)
    forward = 3 if cell == "lstm" else 1
    for g, w in zip(got[:forward], want[:forward]):
        np.testing.assert_allclose(g, w, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    if cell != "rnn_relu":
        assert np.abs(got[0]).max() <= 1
