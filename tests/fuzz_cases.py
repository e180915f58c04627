"""Generated bad input for rnnx's public API and its compiled bindings (run by test_fuzz.py).

Each case starts from a valid call of one function (sizes, dtype and options drawn by
hypothesis), then applies zero to two mutations to its arguments: another rank, shape,
dtype or type; NaN, infinity or huge values; Fortran order, strided, negatively strided,
misaligned or read-only layouts of the same values; very large shapes (zero-stride
views, so nothing big is allocated to make them); missing, extra or wrong dict keys;
out-of-range or oversized integers. The rules:

* a call without mutations succeeds;
* a call may raise only the documented exceptions (``ALLOWED``); anything else fails;
* a call whose arguments only changed layout (same values) either raises one of those
  or returns bit-for-bit what the plain call returns (copy or reject, never misread);
* a crash (segfault, abort, sanitizer report) kills the interpreter: test_fuzz.py runs
  this module in a child process and reports the last case it started.

Run as ``python fuzz_cases.py GROUP N SEED``: N examples of GROUP, one line per case on
stderr (``CASE <n> <description>``), ``FUZZ-DONE <group> <n>`` on stdout at the end.
"""

import math
import os
import sys
import warnings

import numpy as np

import rnnx
from rnnx import dinos, heads, kernels, optim
from rnnx._loader import core as _core

ALLOWED = (TypeError, ValueError, KeyError, MemoryError)
COURSE_ALLOWED = ALLOWED + (IndexError,)  # the course drop-in documents IndexError too

# Shapes with at least this many elements cannot be allocated on any machine this runs on;
# they are made as zero-stride views.
IMPOSSIBLE = 2 ** 44
LARGE = 2 ** 16  # a large dimension whose arrays are still small to copy


class Case:
    """A call: fn(*args, **kwargs), with what a failure report needs."""

    def __init__(self, name, fn, args, kwargs=None, allowed=ALLOWED, compare=True, huge=True):
        self.name, self.fn, self.args, self.kwargs = name, fn, list(args), dict(kwargs or {})
        self.allowed, self.compare = allowed, compare
        self.huge = huge  # False: plain NumPy code that would iterate a huge view for hours


# ----------------------------------------------------------------------------------
# valid calls
# ----------------------------------------------------------------------------------


def _dims(draw, n, lo=1, hi=4):
    return [draw(lo, hi) for _ in range(n)]


def _course_rnn_params(rng, n_x, n_a, n_y):
    return {"Waa": rng.standard_normal((n_a, n_a)), "Wax": rng.standard_normal((n_a, n_x)),
            "Wya": rng.standard_normal((n_y, n_a)), "ba": rng.standard_normal((n_a, 1)),
            "by": rng.standard_normal((n_y, 1))}


def _course_lstm_params(rng, n_x, n_a, n_y):
    p = {}
    for g in "fico":
        p["W" + g] = rng.standard_normal((n_a, n_a + n_x))
        p["b" + g] = rng.standard_normal((n_a, 1))
    p["Wy"] = rng.standard_normal((n_y, n_a))
    p["by"] = rng.standard_normal((n_y, 1))
    return p


def course_cases(draw, rng):
    n_x, n_a, n_y, m, T = _dims(draw, 5)
    rp, lp = _course_rnn_params(rng, n_x, n_a, n_y), _course_lstm_params(rng, n_x, n_a, n_y)
    x, a0 = rng.standard_normal((n_x, m, T)), rng.standard_normal((n_a, m))
    xt, c0 = rng.standard_normal((n_x, m)), rng.standard_normal((n_a, m))
    da, da1 = rng.standard_normal((n_a, m, T)), rng.standard_normal((n_a, m))
    A = COURSE_ALLOWED
    return [
        lambda: Case("rnn_cell_forward", rnnx.rnn_cell_forward, (xt, a0, rp), allowed=A),
        lambda: Case("rnn_forward", rnnx.rnn_forward, (x, a0, rp), allowed=A),
        lambda: Case("rnn_cell_backward", rnnx.rnn_cell_backward,
                     (da1, rnnx.rnn_cell_forward(xt, a0, rp)[2]), allowed=A),
        lambda: Case("rnn_backward", rnnx.rnn_backward, (da, rnnx.rnn_forward(x, a0, rp)[2]),
                     allowed=A),
        lambda: Case("lstm_cell_forward", rnnx.lstm_cell_forward, (xt, a0, c0, lp), allowed=A),
        lambda: Case("lstm_forward", rnnx.lstm_forward, (x, a0, lp), allowed=A),
        lambda: Case("lstm_cell_backward", rnnx.lstm_cell_backward,
                     (da1, c0, rnnx.lstm_cell_forward(xt, a0, c0, lp)[3]), allowed=A),
        lambda: Case("lstm_backward", rnnx.lstm_backward, (da, rnnx.lstm_forward(x, a0, lp)[3]),
                     allowed=A),
        lambda: Case("softmax", rnnx.softmax, (x,), allowed=A, huge=False),
        lambda: Case("sigmoid", rnnx.sigmoid, (x,), allowed=A, huge=False),
    ]


def dinos_cases(draw, rng):
    V, n_a, T = draw(2, 6), draw(1, 4), draw(1, 5)
    p = {"Wax": rng.standard_normal((n_a, V)) * 0.1, "Waa": rng.standard_normal((n_a, n_a)) * 0.1,
         "Wya": rng.standard_normal((V, n_a)) * 0.1, "b": rng.standard_normal((n_a, 1)) * 0.1,
         "by": rng.standard_normal((V, 1)) * 0.1}
    X = [None] + [int(i) for i in rng.integers(0, V, T - 1)]
    Y = X[1:] + [0]
    a0 = rng.standard_normal((n_a, 1))
    grads = {"dWaa": rng.standard_normal((n_a, n_a)) * 10, "dWax": rng.standard_normal((n_a, V)),
             "dWya": rng.standard_normal((V, n_a)), "db": rng.standard_normal((n_a, 1)),
             "dby": rng.standard_normal((V, 1)) * 10}
    char_to_ix = {"\n": 0, **{chr(97 + i): i + 1 for i in range(V - 1)}}
    A = COURSE_ALLOWED

    def params():
        return {k: v.copy() for k, v in p.items()}

    return [
        lambda: Case("dinos.rnn_forward", dinos.rnn_forward, (X, Y, a0, p, V), allowed=A),
        lambda: Case("dinos.rnn_backward", dinos.rnn_backward,
                     (X, Y, p, dinos.rnn_forward(X, Y, a0, p, V)[1]), allowed=A),
        lambda: Case("dinos.clip", dinos.clip, (grads, 5.0), allowed=A),
        lambda: Case("dinos.clip(inplace)", dinos.clip,
                     ({k: v.copy() for k, v in grads.items()}, 5.0, True), allowed=A),
        lambda: Case("dinos.sample", dinos.sample, (p, char_to_ix, draw(0, 20)), allowed=A),
        lambda: Case("dinos.optimize", dinos.optimize, (X, Y, a0, params(), 0.01), allowed=A),
    ]


def _kernel_weights(rng, dt, G, D, H, bias=True):
    w_ih = rng.standard_normal((G * H, D)).astype(dt)
    w_hh = (rng.standard_normal((G * H, H)) * 0.5).astype(dt)
    b = rng.standard_normal(G * H).astype(dt) if bias else None
    return w_ih, w_hh, b


def kernel_cases(draw, rng):
    T, B, D, H = _dims(draw, 4)
    dt = (np.float32, np.float64)[draw(0, 1)]
    x = rng.standard_normal((T, B, D)).astype(dt)
    h0, c0 = rng.standard_normal((B, H)).astype(dt), rng.standard_normal((B, H)).astype(dt)
    dh = rng.standard_normal((T, B, H)).astype(dt)
    lengths = rng.integers(1, T + 1, B) if draw(0, 1) else None
    nl = ("tanh", "relu")[draw(0, 1)]
    w1 = _kernel_weights(rng, dt, 1, D, H)
    w3 = _kernel_weights(rng, dt, 3, D, H)
    w4 = _kernel_weights(rng, dt, 4, D, H)
    peep = rng.standard_normal(3 * H).astype(dt) if draw(0, 1) else None
    b_hh = rng.standard_normal(3 * H).astype(dt)

    def rnn_bwd():
        h = kernels.rnn_forward(x, h0, *w1, nonlinearity=nl, lengths=lengths)
        return Case("kernels.rnn_backward", kernels.rnn_backward,
                    (dh, x, h0, h, w1[0], w1[1]), dict(nonlinearity=nl, dh_n=h0, lengths=lengths))

    def gru_bwd():
        h, gates, aux = kernels.gru_forward(x, h0, w3[0], w3[1], w3[2], b_hh, lengths=lengths)
        return Case("kernels.gru_backward", kernels.gru_backward,
                    (dh, x, h0, h, gates, aux, w3[0], w3[1]), dict(dh_n=h0, lengths=lengths))

    def lstm_bwd():
        h, c, gates = kernels.lstm_forward(x, h0, c0, *w4, lengths=lengths, peephole=peep)
        return Case("kernels.lstm_backward", kernels.lstm_backward,
                    (dh, x, h0, c0, h, c, gates, w4[0], w4[1]),
                    dict(dh_n=h0, dc_n=c0, lengths=lengths, peephole=peep))

    return [
        lambda: Case("kernels.rnn_forward", kernels.rnn_forward, (x, h0, *w1),
                     dict(nonlinearity=nl, lengths=lengths)),
        rnn_bwd,
        lambda: Case("kernels.gru_forward", kernels.gru_forward, (x, h0, w3[0], w3[1], w3[2], b_hh),
                     dict(lengths=lengths)),
        gru_bwd,
        lambda: Case("kernels.lstm_forward", kernels.lstm_forward, (x, h0, c0, *w4),
                     dict(lengths=lengths, peephole=peep)),
        lstm_bwd,
    ]


def heads_cases(draw, rng):
    T, B, F, O, V = _dims(draw, 5)
    dt = (np.float32, np.float64)[draw(0, 1)]
    x = rng.standard_normal((T, B, F)).astype(dt)
    w, b = rng.standard_normal((O, F)).astype(dt), rng.standard_normal(O).astype(dt)
    dy = rng.standard_normal((T, B, O)).astype(dt)
    ids = rng.integers(0, V, (T, B))
    emb = rng.standard_normal((V, F)).astype(dt)
    logits = rng.standard_normal((T, B, V)).astype(dt)
    targets = rng.integers(0, V, (T, B))
    mask = rng.random((T, B)) < 0.7 if draw(0, 1) else None
    lengths = rng.integers(1, T + 1, B) if draw(0, 1) else None
    probs = heads.softmax_cross_entropy(logits, targets)[1]
    return [
        lambda: Case("heads.dense_forward", heads.dense_forward, (x, w, b)),
        lambda: Case("heads.dense_backward", heads.dense_backward, (dy, x, w, True)),
        lambda: Case("heads.embedding_forward", heads.embedding_forward, (ids, emb)),
        lambda: Case("heads.embedding_backward", heads.embedding_backward, (x, ids, V)),
        lambda: Case("heads.softmax_cross_entropy", heads.softmax_cross_entropy,
                     (logits, targets, mask)),
        lambda: Case("heads.softmax_cross_entropy_backward",
                     heads.softmax_cross_entropy_backward, (probs, targets, mask)),
        lambda: Case("heads.last_step_forward", heads.last_step_forward, (x, lengths)),
        lambda: Case("heads.last_step_backward", heads.last_step_backward,
                     (x[0], lengths, T)),
    ]


def layer_cases(draw, rng):
    T, B, D, H = _dims(draw, 4)
    cls = (rnnx.RNN, rnnx.GRU, rnnx.LSTM)[draw(0, 2)]
    dt = (np.float32, np.float64)[draw(0, 1)]
    L, bi, bias = draw(1, 2), bool(draw(0, 1)), bool(draw(0, 1))
    ctor = dict(num_layers=L, bias=bias, bidirectional=bi, dtype=dt, seed=draw(0, 9))
    lengths = rng.integers(1, T + 1, B) if draw(0, 1) else None
    x = rng.standard_normal((T, B, D)).astype(dt)
    S = (L * (2 if bi else 1), B, H)
    state = rng.standard_normal(S).astype(dt)
    if cls is rnnx.LSTM:
        state = (state, rng.standard_normal(S).astype(dt))
    dy = rng.standard_normal((T, B, H * (2 if bi else 1))).astype(dt)

    def layer():
        return cls(D, H, **ctor)

    def fwd():
        lay = layer()
        return Case(f"{cls.__name__}.forward", lay.forward, (x, state, lengths))

    def bwd():
        lay = layer()
        y, st, cache = lay.forward(x, state, lengths)
        return Case(f"{cls.__name__}.backward", lay.backward, (dy, cache, st))

    def load():
        lay = layer()
        sd = {k: v * 0.5 for k, v in layer().state_dict().items()}
        return Case(f"{cls.__name__}.load_state_dict", lambda s: (lay.load_state_dict(s),
                                                                   lay.state_dict())[1], (sd,))

    def gate():
        cache = layer().forward(x, state, lengths)[2]
        return Case(f"{cls.__name__}.cache.gate", cache.gate, (cls._gate_names[-1] if
                    cls is not rnnx.GRU else "z", L - 1, int(bi)))

    return [
        lambda: Case(f"{cls.__name__}()", lambda *a, **k: cls(*a, **k).state_dict(), (D, H),
                     ctor),
        fwd, bwd, load, gate,
    ]


def optim_cases(draw, rng):
    shapes = [tuple(_dims(draw, draw(1, 2))) for _ in range(draw(1, 3))]
    dt = (np.float32, np.float64)[draw(0, 1)]
    p = {f"p{i}": rng.standard_normal(s).astype(dt) for i, s in enumerate(shapes)}
    g = {k: rng.standard_normal(v.shape).astype(dt) for k, v in p.items()}
    cls = (optim.SGD, optim.Adagrad, optim.RMSprop, optim.Adam)[draw(0, 3)]

    def params():
        return {k: v.copy() for k, v in p.items()}

    def step():
        ps = params()
        opt = cls(ps, lr=0.1)
        return Case(f"{cls.__name__}.step", lambda gr: (opt.step(gr), opt.step(gr), ps)[2], (g,))

    def load():
        ps = params()
        src = cls(params(), lr=0.1)
        src.step(g)
        opt = cls(ps, lr=0.1)
        return Case(f"{cls.__name__}.load_state_dict",
                    lambda s: (opt.load_state_dict(s), opt.step(g), ps)[2], (src.state_dict(),))

    def threads():
        def run(n):
            before = rnnx.get_num_threads()
            try:
                rnnx.set_num_threads(n)
                return rnnx.get_num_threads()
            finally:
                _core.set_num_threads(before)
        return Case("set_num_threads", run, (2,))

    return [
        lambda: Case(f"{cls.__name__}()", lambda *a, **k: cls(*a, **k).state_dict(), (params(),),
                     dict(lr=0.1)),
        step, load,
        lambda: Case("clip_by_value", optim.clip_by_value, ({k: v.copy() for k, v in g.items()},
                                                            0.5)),
        lambda: Case("clip_by_global_norm", optim.clip_by_global_norm,
                     ({k: v.copy() for k, v in g.items()}, 0.5)),
        threads,
    ]


class _Recorder:
    """Stands in for a bindings submodule and records the calls made through it."""

    def __init__(self, module, calls):
        self._module, self._calls = module, calls

    def __getattr__(self, name):
        fn = getattr(self._module, name)

        def record(*args):
            self._calls.append((name, fn, args))
            return fn(*args)

        return record


def binding_cases(draw, rng):
    """The compiled functions themselves, called with the arguments the Python layer
    passed them in a valid call (so the C++ checks are fuzzed without the Python ones)."""
    group = ("course", "dinos", "kernels", "heads")[draw(0, 3)]
    module = {"course": sys.modules["rnnx.course"], "dinos": dinos, "kernels": kernels,
              "heads": heads}[group]
    attr = "_h" if group == "heads" else "_k"
    makers = {"course": course_cases, "dinos": dinos_cases, "kernels": kernel_cases,
              "heads": heads_cases}[group](draw, rng)
    maker = makers[draw(0, len(makers) - 1)]

    def make():
        calls = []
        original = getattr(module, attr)
        setattr(module, attr, _Recorder(original, calls))
        try:
            case = maker()
            case.fn(*case.args, **case.kwargs)
        except ALLOWED + (IndexError,):
            pass
        finally:
            setattr(module, attr, original)
        if not calls:  # the function runs in NumPy (softmax, clip): nothing compiled
            return case
        name, fn, args = calls[-1]
        return Case(f"_core.{group}.{name}", fn, args, allowed=COURSE_ALLOWED)

    return [make]


GROUPS = {"course": course_cases, "dinos": dinos_cases, "kernels": kernel_cases,
          "heads": heads_cases, "layers": layer_cases, "optim": optim_cases,
          "bindings": binding_cases}


# ----------------------------------------------------------------------------------
# mutations
# ----------------------------------------------------------------------------------


def _leaves(obj, path=(), depth=0):
    """Paths to the mutable leaves of nested tuples, lists and dicts."""
    out = [path] if len(path) > 1 else []  # not args or kwargs themselves
    if depth > 4:
        return out
    if isinstance(obj, (tuple, list)):
        for i, v in enumerate(obj):
            out += _leaves(v, path + (i,), depth + 1)
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, path + (k,), depth + 1)
    return out


def _get(obj, path):
    for p in path:
        obj = obj[p]
    return obj


def _replace(obj, path, fn):
    """A copy of obj (containers along `path` only) with fn(leaf) at `path`; fn may return
    _DELETE to drop a dict key or list entry."""
    if not path:
        return fn(obj)
    head, rest = path[0], path[1:]
    if isinstance(obj, dict):
        new = dict(obj)
        value = _replace(obj[head], rest, fn)
        if value is _DELETE:
            del new[head]
        else:
            new[head] = value
        return new
    new = list(obj)
    value = _replace(obj[head], rest, fn)
    if value is _DELETE:
        del new[head]
    else:
        new[head] = value
    return tuple(new) if isinstance(obj, tuple) else new


_DELETE = object()
_JUNK = [None, "x", 1, -1, 0, 1.5, float("nan"), 2 ** 70, [], (), {}, object(), b"ab", 3j, True]


def _fortran(a):
    return np.asfortranarray(a) if a.ndim else a


def _strided(a):
    big = np.zeros(tuple(2 * s for s in a.shape), a.dtype)
    view = big[tuple(slice(None, None, 2) for _ in a.shape)]
    view[...] = a
    return view


def _negative(a):
    flipped = a[tuple(slice(None, None, -1) for _ in a.shape)].copy()
    return flipped[tuple(slice(None, None, -1) for _ in a.shape)]


def _misaligned(a):
    buf = bytearray(a.nbytes + 1)
    out = np.frombuffer(buf, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    return out


def _readonly(a):
    out = a.copy()
    out.flags.writeable = False
    return out


def _byteswapped(a):
    return a.astype(a.dtype.newbyteorder())


LAYOUTS = {"fortran": _fortran, "strided": _strided, "negative strides": _negative,
           "misaligned": _misaligned, "read-only": _readonly}


def _huge(a, axis, n):
    shape = list(a.shape)
    shape[axis] = n
    return np.broadcast_to(np.zeros((), a.dtype), shape)


def mutate_array(draw, a, huge=True):
    """(description, new value, layout_only) for an ndarray leaf."""
    kinds = ["layout", "dtype", "shape", "values", "junk", "list", "rank"]
    kind = kinds[draw(0, len(kinds) - 1)]
    if kind == "layout" and a.dtype.kind != "O":
        name = sorted(LAYOUTS)[draw(0, len(LAYOUTS) - 1)]
        return name, LAYOUTS[name](a), True
    if kind == "dtype":
        dts = [np.float32, np.float64, np.float16, np.int64, np.int32, np.uint8, np.bool_,
               np.complex128, object, "U3"]
        dt = dts[draw(0, len(dts) - 1) ] if draw(0, 4) else None
        if dt is None:
            return "byte-swapped", _byteswapped(a), False
        return f"dtype {np.dtype(dt)}", a.astype(dt), False
    if kind == "shape" and a.ndim:
        axis = draw(0, a.ndim - 1)
        rest = math.prod(s for i, s in enumerate(a.shape) if i != axis) or 1
        choice = draw(0, 4)
        if choice == 0:
            n = 0
        elif choice == 1:
            n = max(0, a.shape[axis] + (1 if draw(0, 1) else -1))
        elif choice == 2:
            n = 1
        elif choice == 3:
            n = max(1, LARGE // rest)
        else:
            n = IMPOSSIBLE // rest + 1 if huge else 1
        return f"shape[{axis}]={n}", _huge(a, axis, n) if n >= LARGE else np.resize(a, (
            *a.shape[:axis], n, *a.shape[axis + 1:])), False
    if kind == "values" and a.size:
        vals = [np.nan, np.inf, -np.inf, 1e300, -1e300, 3e38, 1e4, -1e4, 0.0, 2 ** 62]
        v = vals[draw(0, len(vals) - 1)]
        out = a.copy()
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            try:
                if draw(0, 1):
                    out.flat[draw(0, a.size - 1)] = v
                else:
                    out[...] = v
            except (OverflowError, ValueError, TypeError):
                return "values (unrepresentable)", a, True
        return f"value {v}", out, False
    if kind == "list":
        return "as list", a.tolist(), False
    if kind == "rank":
        if a.ndim and draw(0, 1):
            return "rank - 1", a.reshape(a.shape[:-2] + (-1,)) if a.ndim > 1 else a[0], False
        return "rank + 1", a[None], False
    junk = _JUNK[draw(0, len(_JUNK) - 1)]
    return f"junk {junk!r}", junk, False


def mutate_scalar(draw, v):
    if isinstance(v, bool):
        options = [None, 1, "yes", np.bool_(True), not v]
    elif isinstance(v, int):
        options = [0, -1, 2 ** 31, 2 ** 63, 2 ** 70, -(2 ** 70), 1.5, "3", None, True,
                   np.int64(v), np.float64(v), v + 1, float("nan")]
    elif isinstance(v, float):
        options = [float("nan"), float("inf"), -1.0, 0.0, 1e308, "5", None, 3j, True,
                   np.float32(v), 2 ** 70]
    elif isinstance(v, str):
        options = ["", v + "x", v.upper(), None, 1, b"tanh"]
    elif v is None:
        options = [np.zeros(3), np.zeros((2, 2), np.float32), 1, "x", np.array([1, 2])]
    else:
        options = _JUNK
    new = options[draw(0, len(options) - 1)]
    # a numpy scalar holding exactly the Python int/float/bool is the same value
    same = isinstance(new, np.generic) and type(new.item()) is type(v) and new.item() == v
    return f"{new!r}", new, same


def mutate_container(draw, c):
    choice = draw(0, 3)
    if isinstance(c, dict):
        if choice == 0 and c:
            key = list(c)[draw(0, len(c) - 1)]
            return f"drop key {key!r}", {k: v for k, v in c.items() if k != key}, False
        if choice == 1:
            return "extra key", {**c, "zz_extra": np.zeros(2)}, False
        if choice == 2:
            return "as list", list(c.values()), False
        return "junk", _JUNK[draw(0, len(_JUNK) - 1)], False
    if choice == 0 and len(c):
        return "shortened", type(c)(list(c)[:-1]) if isinstance(c, tuple) else list(c)[:-1], False
    if choice == 1:
        return "longer", list(c) + [list(c)[-1] if len(c) else 0], False
    if choice == 2:
        arr = np.empty(len(c), dtype=object)
        for i, v in enumerate(c):
            arr[i] = v
        return "as object array", arr, False
    return "junk", _JUNK[draw(0, len(_JUNK) - 1)], False


def mutate(draw, case):
    """Apply one mutation to a random leaf of case's arguments; (description, layout_only)."""
    root = (case.args, case.kwargs)
    paths = _leaves(root)
    if not paths:
        return "nothing to mutate", True
    path = paths[draw(0, len(paths) - 1)]
    leaf = _get(root, path)
    try:
        if isinstance(leaf, np.ndarray) and leaf.size <= LARGE * 64:
            desc, new, layout = mutate_array(draw, leaf, case.huge)
        elif isinstance(leaf, (dict, list, tuple)) and not draw(0, 3) == 0:
            desc, new, layout = mutate_container(draw, leaf)
        else:
            desc, new, layout = mutate_scalar(draw, leaf)
    except Exception:  # noqa: BLE001 - this mutation cannot apply to this leaf (e.g. a huge int)
        return "(mutation skipped)", True
    args, kwargs = _replace(root, path, lambda _: new)
    case.args, case.kwargs = list(args), dict(kwargs)
    return f"{'/'.join(map(str, path))}: {desc}", layout


# ----------------------------------------------------------------------------------
# running
# ----------------------------------------------------------------------------------


def flatten(obj, depth=0):
    """The arrays and numbers inside a result, in order, for bitwise comparison."""
    if isinstance(obj, np.ndarray):
        return [obj]
    if isinstance(obj, (int, float, np.generic)):
        return [np.asarray(obj)]
    if depth > 6:
        return []
    if isinstance(obj, dict):
        return [np.asarray(list(obj))] + [x for v in obj.values() for x in flatten(v, depth + 1)]
    if isinstance(obj, (tuple, list)):
        return [x for v in obj for x in flatten(v, depth + 1)]
    return []


def same(a, b):
    fa, fb = flatten(a), flatten(b)
    if len(fa) != len(fb):
        return False
    for x, y in zip(fa, fb):
        if x.ndim == 0 and y.ndim == 0 and x.dtype.kind == y.dtype.kind:
            if x.item() != y.item() and not (x.item() != x.item() and y.item() != y.item()):
                return False  # a scalar argument: its value, not its NumPy type
            continue
        if x.shape != y.shape or x.dtype != y.dtype:
            return False
        if x.dtype.kind in "fc":
            if not np.array_equal(x, y, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def build(group, draw, seed):
    """The valid call number draw(...) of `group`, its sizes and options drawn by `draw`."""
    makers = GROUPS[group](draw, np.random.default_rng(seed))
    return makers[draw(0, len(makers) - 1)]()


def call(case):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        result = case.fn(*case.args, **case.kwargs)
    return result, case.args, case.kwargs


def run_case(group, draw, counter):
    """Build, mutate and run one case; AssertionError for a finding."""
    seed = draw(0, 2 ** 16)
    coin = draw(0, 9)  # hypothesis favours small draws: 0 means one mutation
    n_mutations = 0 if coin == 9 else 1 + coin % 2
    build_log = []

    def logged(lo, hi):
        build_log.append(draw(lo, hi))
        return build_log[-1]

    case = build(group, logged, seed)
    descriptions, layout_only = [], True
    for _ in range(n_mutations):
        desc, layout = mutate(draw, case)
        descriptions.append(desc)
        layout_only &= layout
    counter[0] += 1
    print(f"CASE {counter[0]} {case.name} seed={seed} build={build_log} mutations={descriptions}",
          file=sys.stderr, flush=True)
    try:
        result = call(case)
    except case.allowed as e:
        if not n_mutations:
            raise AssertionError(f"{case.name}: a valid call raised {e!r}") from e
        if not str(e) and not isinstance(e, MemoryError):  # NumPy's random may raise a bare one
            raise AssertionError(f"{case.name}: {type(e).__name__} without a message") from e
        return
    except Exception as e:  # noqa: BLE001 - anything else is the finding
        raise AssertionError(f"{case.name} {descriptions}: undocumented {type(e).__name__}: "
                             f"{e}") from e
    if n_mutations and layout_only and case.compare:
        replay = iter(build_log)
        plain = call(build(group, lambda lo, hi: next(replay), seed))
        if not same(result, plain):
            raise AssertionError(f"{case.name} {descriptions}: the same values in another "
                                 "layout gave a different result")


def main(group, n, seed):
    from hypothesis import HealthCheck, given, settings, strategies as st
    from hypothesis import seed as hseed

    if "asan" not in os.environ.get("LD_PRELOAD", ""):
        import resource  # a safety net: no case may take more than a few GB
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, resource.RLIM_INFINITY))
    counter, findings = [0], []
    keep_going = bool(os.environ.get("RNNX_FUZZ_KEEP_GOING"))

    @hseed(seed)
    @settings(max_examples=n, deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(st.data())
    def fuzz(data):
        try:
            run_case(group, lambda lo, hi: data.draw(st.integers(lo, hi)), counter)
        except AssertionError as e:
            if not keep_going:
                raise
            findings.append(str(e))
            print(f"FINDING {e}", flush=True)

    fuzz()
    print(f"FUZZ-DONE {group} {counter[0]}", flush=True)
    if findings:
        sys.exit(1)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
