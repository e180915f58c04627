"""Time-major RNN and LSTM kernels: whole sequences in one C++ call.

Layout and names follow PyTorch: ``x (T, B, D)``, ``h0 (B, H)``, ``w_ih (G*H, D)``,
``w_hh (G*H, H)``, ``b (G*H,)``; LSTM gates in the order i, f, g, o. float32 and
float64; all arrays of one call share the dtype of ``x`` (mixing is an error, never a
silent cast); outputs have that dtype. :mod:`rnnx.reference.kernels` holds the same
functions in plain NumPy.

Every function takes ``lengths`` (an int array of shape ``(B,)``, values in ``1..T``, any
order) for batches of sequences of different lengths: a step ``t >= lengths[b]`` is
padding for example ``b``, whose state is carried through it unchanged (so the state at
``T-1`` is the state at the example's own last step); in backward such a step passes the
gradient through, ignores ``dh`` there and contributes nothing to any other gradient.
:mod:`rnnx.reference.masking` holds the NumPy twins.
"""

import numpy as np

from ._loader import core as _core

_k = _core.kernels

__all__ = ["rnn_forward", "rnn_backward", "gru_forward", "gru_backward", "lstm_forward",
           "lstm_backward"]


def _dtype_of(x, w_ih=None):
    """(dtype, T, B, D) of a call: from x (T, B, D), or for index input x (T, B) of ints
    from w_ih (its columns are the D one-hot input features)."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
    if x.dtype.kind in "iu" and w_ih is not None:
        if x.ndim != 2:
            raise ValueError(f"x of integer dtype (index input) must have shape (T, B), "
                             f"got {x.shape}")
        if 0 in x.shape:
            raise ValueError(f"x must not be empty, got shape {x.shape}")
        if not isinstance(w_ih, np.ndarray) or w_ih.dtype not in (np.float32, np.float64):
            raise TypeError("w_ih must be a float32 or float64 numpy.ndarray")
        if w_ih.ndim != 2:
            raise ValueError(f"w_ih must have shape (G*H, D), got {w_ih.shape}")
        D = w_ih.shape[1]
        if x.min() < 0 or x.max() >= D:
            bad = tuple(int(i) for i in np.argwhere((x < 0) | (x >= D))[0])
            raise ValueError(f"x{list(bad)} = {x[bad]} is outside 0..D-1 = 0..{D - 1} "
                             f"(index input: w_ih has D = {D} columns)")
        return w_ih.dtype, x.shape[0], x.shape[1], D
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"x must have dtype float32 or float64 (or an integer dtype for "
                        f"index input), got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"x must have shape (T, B, D), got {x.shape}")
    if 0 in x.shape:
        raise ValueError(f"x must not be empty, got shape {x.shape}")
    return x.dtype, *x.shape


def _x(x, T, B, D, dt):
    """x for the core: float (T, B, D) of dtype dt, or index input as int64 (T, B)."""
    if x.dtype.kind in "iu":
        return np.ascontiguousarray(x, dtype=np.int64)
    return _arg("x", x, (T, B, D), "(T, B, D)", dt)


def _arg(name, a, shape, dims, dtype, optional=False):
    """a as a C-contiguous array of `dtype` and `shape`, or a clear exception."""
    if a is None and optional:
        return None
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of dtype {dtype}, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like x, got {a.dtype}")
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {dims} = {tuple(shape)}, got {a.shape}")
    return np.ascontiguousarray(a)


def _hidden(w_ih, gates):
    rows = "H" if gates == 1 else f"{gates}H"
    if not isinstance(w_ih, np.ndarray):
        raise TypeError(f"w_ih must be a numpy.ndarray, got {type(w_ih).__name__}")
    if w_ih.ndim != 2 or w_ih.shape[0] == 0 or w_ih.shape[0] % gates:
        raise ValueError(f"w_ih must have shape ({rows}, D) with H >= 1, got {w_ih.shape}")
    return w_ih.shape[0] // gates


def _lengths(lengths, B, T):
    """lengths as an int64 array of shape (B,) with values in 1..T, or None."""
    if lengths is None:
        return None
    if isinstance(lengths, (list, tuple)):
        lengths = np.asarray(lengths)
    if not isinstance(lengths, np.ndarray):
        raise TypeError(f"lengths must be an array of ints, got {type(lengths).__name__}")
    if lengths.dtype.kind not in "iu":
        raise TypeError(f"lengths must have an integer dtype, got {lengths.dtype}")
    if lengths.shape != (B,):
        raise ValueError(f"lengths must have shape (B,) = ({B},), got {lengths.shape}")
    if lengths.size and (lengths.min() < 1 or lengths.max() > T):
        raise ValueError(f"lengths must lie in 1..T = 1..{T}, got {lengths.min()}..{lengths.max()}")
    return np.ascontiguousarray(lengths, dtype=np.int64)


def _prev(first, seq):
    """(T, B, H) states each step started from: first, seq[0], ..., seq[T-2].

    When seq is the view ``all[1:]`` of a forward's (T+1, B, H) output whose row 0 holds
    exactly ``first`` (as the forward functions here return it), this is the view
    ``all[:-1]``: no copy, and it keeps the output's alignment.
    """
    base = seq.base
    if (isinstance(base, np.ndarray) and base.dtype == seq.dtype and base.flags.c_contiguous
            and base.shape == (seq.shape[0] + 1,) + seq.shape[1:]
            and seq.ctypes.data == base.ctypes.data + base[0].nbytes
            and isinstance(first, np.ndarray) and first.shape == base.shape[1:]
            and first.dtype == base.dtype and base[0].tobytes() == first.tobytes()):
        return base[:-1]
    return np.concatenate((first[None], seq[:-1]), axis=0)


def rnn_forward(x, h0, w_ih, w_hh, b=None, nonlinearity="tanh", lengths=None):
    """Vanilla RNN over a sequence: ``h_t = f(x_t w_ihᵀ + h_{t-1} w_hhᵀ + b)``.

    Parameters
    ----------
    x : ndarray of shape (T, B, D), or of ints with shape (T, B)
        Integers are index input: ``x[t, b] = k`` stands for the one-hot vector ``e_k``
        of length D (``w_ih``'s columns), and the input projection becomes a gather of
        column k of ``w_ih`` (no one-hot, no GEMM); backward then returns ``dx = None``.
    h0 : ndarray of shape (B, H)
    w_ih : ndarray of shape (H, D)
    w_hh : ndarray of shape (H, H)
    b : ndarray of shape (H,), optional
    nonlinearity : {"tanh", "relu"}

    Returns
    -------
    h : ndarray of shape (T, B, H)
    """
    dt, T, B, D = _dtype_of(x, w_ih)
    H = _hidden(w_ih, 1)
    args = (_x(x, T, B, D, dt), _arg("h0", h0, (B, H), "(B, H)", dt),
            _arg("w_ih", w_ih, (H, D), "(H, D)", dt), _arg("w_hh", w_hh, (H, H), "(H, H)", dt),
            _arg("b", b, (H,), "(H,)", dt, optional=True))
    return _k.rnn_forward(*args, nonlinearity, _lengths(lengths, B, T))[1:]


def rnn_backward(dh, x, h0, h, w_ih, w_hh, nonlinearity="tanh", dh_n=None, lengths=None):
    """Backpropagation through time for :func:`rnn_forward`.

    Parameters
    ----------
    dh : ndarray of shape (T, B, H) or None
        Gradient of the loss with respect to every output ``h_t``.
    x, h0, w_ih, w_hh, nonlinearity
        As given to :func:`rnn_forward`.
    h : ndarray of shape (T, B, H)
        Its output.
    dh_n : ndarray of shape (B, H), optional
        Extra gradient on the final state.

    Returns
    -------
    dx : ndarray of shape (T, B, D), or None for index input
    dh0 : ndarray of shape (B, H)
    dw_ih, dw_hh : ndarray
    db : ndarray of shape (H,)
    """
    dt, T, B, D = _dtype_of(x, w_ih)
    H = _hidden(w_ih, 1)
    tbh = (T, B, H)
    h = _arg("h", h, tbh, "(T, B, H)", dt)
    h0 = _arg("h0", h0, (B, H), "(B, H)", dt)
    return _k.rnn_backward(
        _x(x, T, B, D, dt), _arg("w_ih", w_ih, (H, D), "(H, D)", dt),
        _arg("w_hh", w_hh, (H, H), "(H, H)", dt), h, _prev(h0, h),
        _arg("dh", dh, tbh, "(T, B, H)", dt, optional=True),
        _arg("dh_n", dh_n, (B, H), "(B, H)", dt, optional=True), nonlinearity,
        _lengths(lengths, B, T))


def _gru_gates(reset_after, simplified):
    if not isinstance(reset_after, (bool, np.bool_)):
        raise TypeError(f"reset_after must be a bool, got {type(reset_after).__name__}")
    if not isinstance(simplified, (bool, np.bool_)):
        raise TypeError(f"simplified must be a bool, got {type(simplified).__name__}")
    return 2 if simplified else 3


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, reset_after=True, simplified=False,
                lengths=None):
    """GRU over a sequence, in one of three variants.

    Parameters
    ----------
    x : ndarray of shape (T, B, D), or of ints with shape (T, B)
        Integers are index input: ``x[t, b] = k`` stands for the one-hot vector ``e_k``
        of length D (``w_ih``'s columns), and the input projection becomes a gather of
        column k of ``w_ih`` (no one-hot, no GEMM); backward then returns ``dx = None``.
    h0 : ndarray of shape (B, H)
    w_ih : ndarray of shape (G*H, D)
    w_hh : ndarray of shape (G*H, H)
    b_ih, b_hh : ndarray of shape (G*H,), optional
    reset_after : bool, default True
        Where the full GRU applies its reset gate: True (PyTorch's and cuDNN's) to the
        recurrent product, False (the course's) to the previous state before it.
    simplified : bool, default False
        The course's simplified GRU with an update gate only (G = 2, gates z, n);
        otherwise G = 3, gates r, z, n.

    Returns
    -------
    h : ndarray of shape (T, B, H)
    gates : ndarray of shape (T, B, G*H)
        The activated gates of every step, in gate order.
    aux : ndarray of shape (T, B, H) or None
        What backward needs besides: ``h_{t-1} W_hnᵀ + b_hn`` (reset_after), ``r * h_{t-1}``
        (reset before), None (simplified).

    Notes
    -----
    ``r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)``, ``z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)``;
    reset_after: ``n = tanh(x W_inᵀ + b_in + r * (h W_hnᵀ + b_hn))``; reset before:
    ``n = tanh(x W_inᵀ + b_in + (r * h) W_hnᵀ + b_hn)``; simplified:
    ``n = tanh(x W_inᵀ + b_in + h W_hnᵀ + b_hn)``; then ``h' = (1 - z) * n + z * h``.
    """
    G = _gru_gates(reset_after, simplified)
    dt, T, B, D = _dtype_of(x, w_ih)
    H = _hidden(w_ih, G)
    gates, aux, h_all = _k.gru_forward(
        _x(x, T, B, D, dt), _arg("h0", h0, (B, H), "(B, H)", dt),
        _arg("w_ih", w_ih, (G * H, D), f"({G}H, D)", dt),
        _arg("w_hh", w_hh, (G * H, H), f"({G}H, H)", dt),
        _arg("b_ih", b_ih, (G * H,), f"({G}H,)", dt, optional=True),
        _arg("b_hh", b_hh, (G * H,), f"({G}H,)", dt, optional=True),
        bool(reset_after), bool(simplified), _lengths(lengths, B, T))
    return h_all[1:], gates, aux


def gru_backward(dh, x, h0, h, gates, aux, w_ih, w_hh, reset_after=True, simplified=False,
                 dh_n=None, lengths=None):
    """Backpropagation through time for :func:`gru_forward`.

    Parameters
    ----------
    dh : ndarray of shape (T, B, H) or None
    x, h0, w_ih, w_hh, reset_after, simplified
        As given to :func:`gru_forward`.
    h, gates, aux
        Its outputs.
    dh_n : ndarray of shape (B, H), optional
        Extra gradient on the final state.

    Returns
    -------
    dx : ndarray of shape (T, B, D), or None for index input
    dh0 : ndarray of shape (B, H)
    dw_ih, dw_hh : ndarray
    db_ih, db_hh : ndarray of shape (G*H,)
    """
    G = _gru_gates(reset_after, simplified)
    dt, T, B, D = _dtype_of(x, w_ih)
    H = _hidden(w_ih, G)
    tbh = (T, B, H)
    h = _arg("h", h, tbh, "(T, B, H)", dt)
    h0 = _arg("h0", h0, (B, H), "(B, H)", dt)
    if not simplified and aux is None:
        raise TypeError("aux must be the array gru_forward returned, got None")
    return _k.gru_backward(
        _x(x, T, B, D, dt),
        _arg("w_ih", w_ih, (G * H, D), f"({G}H, D)", dt),
        _arg("w_hh", w_hh, (G * H, H), f"({G}H, H)", dt), _prev(h0, h),
        _arg("gates", gates, (T, B, G * H), f"(T, B, {G}H)", dt),
        None if simplified else _arg("aux", aux, tbh, "(T, B, H)", dt),
        _arg("dh", dh, tbh, "(T, B, H)", dt, optional=True),
        _arg("dh_n", dh_n, (B, H), "(B, H)", dt, optional=True), bool(reset_after),
        bool(simplified), _lengths(lengths, B, T))


def lstm_forward(x, h0, c0, w_ih, w_hh, b=None, lengths=None, peephole=None):
    """LSTM over a sequence (gate order i, f, g, o).

    Parameters
    ----------
    x : ndarray of shape (T, B, D), or of ints with shape (T, B)
        Integers are index input: ``x[t, b] = k`` stands for the one-hot vector ``e_k``
        of length D (``w_ih``'s columns), and the input projection becomes a gather of
        column k of ``w_ih`` (no one-hot, no GEMM); backward then returns ``dx = None``.
    h0, c0 : ndarray of shape (B, H)
    w_ih : ndarray of shape (4H, D)
    w_hh : ndarray of shape (4H, H)
    b : ndarray of shape (4H,), optional
    lengths : ndarray of shape (B,), optional
    peephole : ndarray of shape (3H,), optional
        Diagonal peepholes ``[p_i, p_f, p_o]`` from the cell state to the gates.

    Returns
    -------
    h, c : ndarray of shape (T, B, H)
    gates : ndarray of shape (T, B, 4H)
        The activated gates ``[i, f, g, o]`` of every step.

    Notes
    -----
    ``i, f, o = σ(·)``, ``g = tanh(·)`` of ``x_t w_ihᵀ + h_{t-1} w_hhᵀ + b``;
    ``c_t = f*c_{t-1} + i*g``; ``h_t = o*tanh(c_t)``. With peepholes ``p_i * c_{t-1}``
    and ``p_f * c_{t-1}`` are added inside i and f, and ``p_o * c_t`` inside o.
    """
    dt, T, B, D = _dtype_of(x, w_ih)
    H = _hidden(w_ih, 4)
    gates, h_all, c_all = _k.lstm_forward(
        _x(x, T, B, D, dt), _arg("h0", h0, (B, H), "(B, H)", dt),
        _arg("c0", c0, (B, H), "(B, H)", dt), _arg("w_ih", w_ih, (4 * H, D), "(4H, D)", dt),
        _arg("w_hh", w_hh, (4 * H, H), "(4H, H)", dt),
        _arg("b", b, (4 * H,), "(4H,)", dt, optional=True), _lengths(lengths, B, T),
        _arg("peephole", peephole, (3 * H,), "(3H,)", dt, optional=True))
    return h_all[1:], c_all[1:], gates


def lstm_backward(dh, x, h0, c0, h, c, gates, w_ih, w_hh, dh_n=None, dc_n=None, lengths=None,
                  peephole=None):
    """Backpropagation through time for :func:`lstm_forward`.

    Parameters
    ----------
    dh : ndarray of shape (T, B, H) or None
    x, h0, c0, w_ih, w_hh
        As given to :func:`lstm_forward`.
    h, c, gates
        Its outputs.
    dh_n, dc_n : ndarray of shape (B, H), optional
        Extra gradients on the final hidden and cell states.
    lengths, peephole : optional
        As given to :func:`lstm_forward`.

    Returns
    -------
    dx : ndarray of shape (T, B, D), or None for index input
    dh0, dc0 : ndarray of shape (B, H)
    dw_ih, dw_hh : ndarray
    db : ndarray of shape (4H,)
    dpeephole : ndarray of shape (3H,)
        Only when ``peephole`` is given (a 7-tuple then).
    """
    dt, T, B, D = _dtype_of(x, w_ih)
    H = _hidden(w_ih, 4)
    tbh = (T, B, H)
    h = _arg("h", h, tbh, "(T, B, H)", dt)
    c = _arg("c", c, tbh, "(T, B, H)", dt)
    h0 = _arg("h0", h0, (B, H), "(B, H)", dt)
    c0 = _arg("c0", c0, (B, H), "(B, H)", dt)
    return _k.lstm_backward(
        _x(x, T, B, D, dt), _arg("w_ih", w_ih, (4 * H, D), "(4H, D)", dt),
        _arg("w_hh", w_hh, (4 * H, H), "(4H, H)", dt),
        _arg("gates", gates, (T, B, 4 * H), "(T, B, 4H)", dt), _prev(h0, h), c, _prev(c0, c),
        _arg("dh", dh, tbh, "(T, B, H)", dt, optional=True),
        _arg("dh_n", dh_n, (B, H), "(B, H)", dt, optional=True),
        _arg("dc_n", dc_n, (B, H), "(B, H)", dt, optional=True), _lengths(lengths, B, T),
        _arg("peephole", peephole, (3 * H,), "(3H,)", dt, optional=True))
