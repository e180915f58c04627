"""The "Building your Recurrent Neural Network - Step by Step" functions, in C++.

Drop-in replacements for the course's NumPy functions, with the same names,
arguments, return tuples, caches, dict keys and numbers (float64), as the contract
in ``shared/contracts/course-kernels.md`` describes. Conventions: batch on the
second axis, steps ``(n, m)``, sequences ``(n, m, T_x)``, biases ``(n, 1)``.

Each sequence function runs its whole time loop in one C++ call. The returned
arrays (``a``, ``y_pred``, ``c``, the gates and states inside the caches) are views
of the contiguous buffers that loop filled; the per-step caches are built from them
on first use (:class:`rnnx._lazy.LazyList`). Backward functions accept those caches
and caches built by any other code with the course's layout.

The LSTM's ``i`` is the update gate; its gates act on ``concat = [a_prev; xt]``.
"""

import numpy as np

from ._lazy import LazyList
from ._loader import core as _core
from .reference import course as _reference

_k = _core.course

__all__ = [
    "softmax", "sigmoid",
    "rnn_cell_forward", "rnn_forward", "rnn_cell_backward", "rnn_backward",
    "lstm_cell_forward", "lstm_forward", "lstm_cell_backward", "lstm_backward",
]


def softmax(x):
    """Softmax over axis 0, shifted by the global max of ``x`` as the course does.

    Parameters
    ----------
    x : ndarray of shape (n, ...)

    Returns
    -------
    ndarray of the same shape, each column summing to 1.

    Notes
    -----
    ``e = exp(x - max(x)); e / e.sum(axis=0)``. Where a whole column lies more than
    ~745 below the global max, the course's formula gives 0/0 = NaN; rnnx shifts such a
    column by its own max instead, which gives its softmax.

    Examples
    --------
    >>> softmax(np.array([[0.0], [np.log(3.0)]])).ravel().round(6).tolist()
    [0.25, 0.75]
    """
    x = np.asarray(x)
    e = np.exp(x - np.max(x))
    s = e.sum(axis=0)
    if np.any(s == 0):
        lost = s == 0
        e2 = np.exp(x - np.max(x, axis=0, keepdims=True))
        s = np.where(lost, e2.sum(axis=0), s)
        e = np.where(lost, e2, e)
    return e / s


def sigmoid(x):
    """``1 / (1 + exp(-x))``, element-wise.

    Examples
    --------
    >>> float(sigmoid(np.array(0.0)))
    0.5
    """
    with np.errstate(over="ignore"):  # exp(-x) = inf gives exactly 0, as it should
        return 1 / (1 + np.exp(-x))


def _one_parameters_dict(cells, index):
    """Whether every step cache holds the same parameters dict (the C++ loop uses one).

    Caches edited to mix parameter dicts are rare; they go to the NumPy reference, which
    reads each step's own. Malformed caches answer True and get their error from C++.
    """
    try:
        first = cells[0][index]
        return all(c[index] is first for c in cells)
    except (TypeError, IndexError, KeyError):
        return True


def _cell_call(fn, *args):
    """Run a one-step backward through the sequence kernel, whose messages name the step
    cache ``caches[0][0]``; here the user passed it as ``cache``."""
    try:
        return fn(*args)
    except (TypeError, ValueError, KeyError, IndexError) as e:
        msg = e.args[0] if e.args and isinstance(e.args[0], str) else None
        if msg is None or "caches[0]" not in msg:
            raise
        raise type(e)(msg.replace("caches[0][0]", "cache").replace("caches[0]", "[cache]")) \
            from None


def _reference_backward(fn, da, caches):
    """The NumPy reference for caches whose steps hold different parameter dicts; a
    malformed entry is a TypeError naming caches, not an AttributeError from inside."""
    try:
        return fn(da, caches)
    except AttributeError as e:
        raise TypeError(f"caches holds a step cache entry that is not an array: {e}") from None


def _cells(caches):
    if not isinstance(caches, (tuple, list)) or len(caches) != 2:
        raise TypeError("caches must be the pair (list_of_step_caches, x) returned by the forward function")
    return caches[0], caches[1]


# ---------------------------------------------------------------------------------------
# Basic RNN


def rnn_cell_forward(xt, a_prev, parameters):
    """One step of the basic RNN.

    Parameters
    ----------
    xt : ndarray of shape (n_x, m)
    a_prev : ndarray of shape (n_a, m)
    parameters : dict
        ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, ``Wya (n_y, n_a)``, ``ba (n_a, 1)``,
        ``by (n_y, 1)``.

    Returns
    -------
    a_next : ndarray of shape (n_a, m)
        ``tanh(Waa a_prev + Wax xt + ba)``
    yt_pred : ndarray of shape (n_y, m)
        ``softmax(Wya a_next + by)``
    cache : tuple
        ``(a_next, a_prev, xt, parameters)``

    Raises
    ------
    TypeError, ValueError, KeyError
        For a non-float64 array, a wrong shape or rank, NaN/inf, a missing key.
    """
    a_next, yt_pred = _k.rnn_cell_forward(xt, a_prev, parameters)
    return a_next, yt_pred, (a_next, a_prev, xt, parameters)


def rnn_forward(x, a0, parameters):
    """The basic RNN over a whole sequence.

    Parameters
    ----------
    x : ndarray of shape (n_x, m, T_x)
    a0 : ndarray of shape (n_a, m)
    parameters : dict
        As for :func:`rnn_cell_forward`.

    Returns
    -------
    a : ndarray of shape (n_a, m, T_x)
    y_pred : ndarray of shape (n_y, m, T_x)
    caches : tuple
        ``(list of T_x cell caches, x)``; cell cache t is ``(a_next, a_prev, xt,
        parameters)`` as :func:`rnn_cell_forward` makes it.
    """
    a, y_pred, h_all = _k.rnn_forward(x, a0, parameters)
    T = a.shape[2]

    def build():
        states = [h.T for h in h_all]
        return [(states[t + 1], a0 if t == 0 else states[t], x[:, :, t], parameters)
                for t in range(T)]

    return a, y_pred, (LazyList(T, build, (h_all, parameters, a0)), x)


def rnn_cell_backward(da_next, cache):
    """Backward of one basic-RNN step (the softmax head is not differentiated).

    Parameters
    ----------
    da_next : ndarray of shape (n_a, m)
        Gradient of the loss with respect to ``a_next``.
    cache : tuple
        ``(a_next, a_prev, xt, parameters)`` from :func:`rnn_cell_forward`.

    Returns
    -------
    dict
        ``dxt (n_x, m)``, ``da_prev (n_a, m)``, ``dWax``, ``dWaa``, ``dba (n_a, 1)``.

    Notes
    -----
    ``dz = da_next * (1 - a_next**2)``; ``dxt = Waxᵀ dz``; ``dWax = dz xtᵀ``;
    ``da_prev = Waaᵀ dz``; ``dWaa = dz a_prevᵀ``; ``dba = Σ_m dz``.
    """
    return _cell_call(_k.rnn_cell_backward, da_next, cache)


def rnn_backward(da, caches):
    """Backpropagation through time for the basic RNN.

    Parameters
    ----------
    da : ndarray of shape (n_a, m, T_x)
        Upstream gradients of every hidden state. ``T_x`` is read from ``da``; the
        caches must cover at least that many steps (IndexError otherwise).
    caches : tuple
        ``(list of cell caches, x)`` from :func:`rnn_forward` or any code with the
        course's layout.

    Returns
    -------
    dict
        ``dx (n_x, m, T_x)``, ``da0 (n_a, m)``, ``dWax``, ``dWaa``, ``dba`` (sums over
        steps and examples, no division by m).
    """
    cells, x = _cells(caches)
    if type(cells) is LazyList and cells.pristine:
        h_all, parameters, a0 = cells.payload
        return _k.rnn_backward_own(da, x, h_all, parameters, a0)
    if not _one_parameters_dict(cells, 3):
        return _reference_backward(_reference.rnn_backward, da, caches)
    return _k.rnn_backward_cells(da, cells)


# ---------------------------------------------------------------------------------------
# LSTM


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    """One LSTM step.

    Parameters
    ----------
    xt : ndarray of shape (n_x, m)
    a_prev, c_prev : ndarray of shape (n_a, m)
    parameters : dict
        ``Wf, Wi, Wc, Wo (n_a, n_a + n_x)``, ``bf, bi, bc, bo (n_a, 1)``,
        ``Wy (n_y, n_a)``, ``by (n_y, 1)``.

    Returns
    -------
    a_next, c_next : ndarray of shape (n_a, m)
    yt_pred : ndarray of shape (n_y, m)
    cache : tuple
        ``(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)``

    Notes
    -----
    With ``concat = [a_prev; xt]``: ``ft = σ(Wf concat + bf)``, ``it = σ(Wi concat + bi)``,
    ``cct = tanh(Wc concat + bc)``, ``c_next = ft*c_prev + it*cct``,
    ``ot = σ(Wo concat + bo)``, ``a_next = ot*tanh(c_next)``,
    ``yt_pred = softmax(Wy a_next + by)``.
    """
    a_next, c_next, yt, ft, it, cct, ot = _k.lstm_cell_forward(xt, a_prev, c_prev, parameters)
    return a_next, c_next, yt, (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)


def lstm_forward(x, a0, parameters):
    """The LSTM over a whole sequence, from ``c0 = 0``.

    Parameters
    ----------
    x : ndarray of shape (n_x, m, T_x)
    a0 : ndarray of shape (n_a, m)
    parameters : dict
        As for :func:`lstm_cell_forward`.

    Returns
    -------
    a : ndarray of shape (n_a, m, T_x)
    y : ndarray of shape (n_y, m, T_x)
    c : ndarray of shape (n_a, m, T_x)
    caches : tuple
        ``(list of T_x cell caches, x)`` (note the order ``a, y, c, caches``).
    """
    a, y, c, h_all, c_all, gates = _k.lstm_forward(x, a0, parameters)
    T, H = a.shape[2], a.shape[0]

    def build():
        hs = [h.T for h in h_all]
        cs = [s.T for s in c_all]
        out = []
        for t in range(T):
            g = gates[t]
            out.append((hs[t + 1], cs[t + 1], a0 if t == 0 else hs[t], cs[t],
                        g[:, H:2 * H].T, g[:, :H].T, g[:, 2 * H:3 * H].T, g[:, 3 * H:].T,
                        x[:, :, t], parameters))
        return out

    return a, y, c, (LazyList(T, build, (h_all, c_all, gates, parameters, a0)), x)


def lstm_cell_backward(da_next, dc_next, cache):
    """Backward of one LSTM step.

    Parameters
    ----------
    da_next, dc_next : ndarray of shape (n_a, m)
    cache : tuple
        From :func:`lstm_cell_forward`.

    Returns
    -------
    dict
        ``dxt, da_prev, dc_prev, dWf, dbf, dWi, dbi, dWc, dbc, dWo, dbo``.

    Notes
    -----
    ``dC = dc_next + da_next*ot*(1 - tanh(c_next)**2)``;
    ``dot = da_next*tanh(c_next)*ot*(1-ot)``; ``dcct = dC*it*(1-cct**2)``;
    ``dit = dC*cct*it*(1-it)``; ``dft = dC*c_prev*ft*(1-ft)``; ``dW* = d* concatᵀ``,
    ``db* = Σ_m d*``; ``dconcat = Σ W*ᵀ d*`` splits into ``da_prev`` (first n_a rows)
    and ``dxt``; ``dc_prev = dC*ft``.
    """
    return _cell_call(_k.lstm_cell_backward, da_next, dc_next, cache)


def lstm_backward(da, caches):
    """Backpropagation through time for the LSTM.

    Parameters
    ----------
    da : ndarray of shape (n_a, m, T_x)
        Upstream gradients of the hidden states only; ``T_x`` is read from ``da``.
    caches : tuple
        From :func:`lstm_forward` or any code with the course's layout.

    Returns
    -------
    dict
        ``dx (n_x, m, T_x)``, ``da0 (n_a, m)``, ``dWf, dbf, dWi, dbi, dWc, dbc, dWo,
        dbo``. Both carries (``da_prev`` and ``dc_prev``) are propagated from
        ``dc = 0``; there is no ``dc0`` key.
    """
    cells, x = _cells(caches)
    if type(cells) is LazyList and cells.pristine:
        h_all, c_all, gates, parameters, a0 = cells.payload
        return _k.lstm_backward_own(da, x, h_all, c_all, gates, parameters, a0)
    if not _one_parameters_dict(cells, 9):
        return _reference_backward(_reference.lstm_backward, da, caches)
    return _k.lstm_backward_cells(da, cells)
