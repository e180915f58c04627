"""Time-major RNN, LSTM and GRU kernels in plain NumPy (the math of the C++ core).

These are the functions that ``src/cpp/rnnx`` implements, written so that they can
be read in one sitting.  The conventions are PyTorch's:

* sequences are time-major and C-contiguous: ``x`` is ``(T, B, D)``;
* weights multiply on the right as transposes: ``x_t @ w_ih.T`` with ``w_ih (H, D)``;
* the LSTM stacks its four gates in the order **i, f, g, o** along the first axis of
  ``w_ih (4H, D)``, ``w_hh (4H, H)`` and ``b (4H,)``;
* one bias vector ``b`` (PyTorch's ``b_ih + b_hh``), or ``None`` for no bias;
* the GRU stacks its gates in the order **r, z, n** (``G = 3``; the simplified GRU
  **z, n**, ``G = 2``) and keeps PyTorch's two biases ``b_ih`` and ``b_hh``, which
  differ in effect because ``b_hn`` sits inside the reset gate's product.

Dimension alphabet: ``T`` time, ``B`` batch, ``D`` input features, ``H`` hidden,
``G`` gates (LSTM 4, GRU 3, simplified GRU 2): weights have ``G*H`` rows.

All arrays must share one floating dtype; the computation and the results use it.

Structure (the same as the C++ core): the input projection of all time steps is one
matrix product before the time loop, only the recurrent product is inside it, and
the parameter gradients are whole-sequence products after the backward loop.
"""

import numpy as np

__all__ = [
    "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward", "gru_forward",
    "gru_backward",
]

_NONLINEARITIES = ("tanh", "relu")


def _float_dtype(**arrays):
    """The common floating dtype of the given arrays (``None`` entries are skipped).

    Raises
    ------
    TypeError
        If an array is not floating point, or two arrays differ in dtype.
    """
    dtype, first = None, None
    for name, array in arrays.items():
        if array is None:
            continue
        if not np.issubdtype(array.dtype, np.floating):
            raise TypeError(f"{name} must be a floating-point array, got dtype {array.dtype}")
        if dtype is None:
            dtype, first = array.dtype, name
        elif array.dtype != dtype:
            raise TypeError(
                f"{name} has dtype {array.dtype} but {first} has dtype {dtype}; "
                "mixed dtypes are not converted silently"
            )
    return dtype


def _check_nonlinearity(nonlinearity):
    if nonlinearity not in _NONLINEARITIES:
        raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def _sigmoid(z):
    # 1 / (1 + exp(-z)); exp overflows to inf for very negative z, giving exactly 0
    with np.errstate(over="ignore"):
        return 1 / (1 + np.exp(-z))


def _previous(first, seq):
    """``[first, seq[0], ..., seq[T-2]]``: the state entering each step, (T, B, H)."""
    return np.concatenate((first[None], seq[:-1]), axis=0)


# ----------------------------------------------------------------------------------
# Elman RNN
# ----------------------------------------------------------------------------------


def rnn_forward(x, h0, w_ih, w_hh, b=None, nonlinearity="tanh"):
    """Elman RNN over a sequence.

    ``h_t = f(x_t w_ih^T + h_{t-1} w_hh^T + b)`` for ``t = 0 .. T-1``, with
    ``h_{-1} = h0`` and ``f = tanh`` or ``relu``.

    Parameters
    ----------
    x : ndarray, shape (T, B, D)
        Input sequence.
    h0 : ndarray, shape (B, H)
        Initial hidden state.
    w_ih : ndarray, shape (H, D)
        Input-to-hidden weights.
    w_hh : ndarray, shape (H, H)
        Hidden-to-hidden weights.
    b : ndarray, shape (H,), optional
        Bias; ``None`` for none.
    nonlinearity : {"tanh", "relu"}, default "tanh"

    Returns
    -------
    h : ndarray, shape (T, B, H)
        Hidden state of every step (``h[-1]`` is the final state).

    Raises
    ------
    ValueError
        For an unknown `nonlinearity`.
    TypeError
        For mixed or non-floating dtypes.

    Examples
    --------
    >>> x = np.zeros((2, 1, 3)); h0 = np.zeros((1, 4))
    >>> h = rnn_forward(x, h0, np.ones((4, 3)), np.eye(4), np.full(4, 0.5))
    >>> h.shape, bool(np.allclose(h[0], np.tanh(0.5)))
    ((2, 1, 4), True)
    """
    _check_nonlinearity(nonlinearity)
    dtype = _float_dtype(x=x, h0=h0, w_ih=w_ih, w_hh=w_hh, b=b)
    T, B, D = x.shape
    H = w_hh.shape[0]

    # input projection of all steps at once: (T, B, D) @ (D, H) -> (T, B, H)
    z_in = x @ w_ih.T
    if b is not None:
        z_in = z_in + b

    h = np.empty((T, B, H), dtype=dtype)
    h_prev = h0
    for t in range(T):
        z = z_in[t] + h_prev @ w_hh.T  # (B, H)
        h[t] = np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)
        h_prev = h[t]
    return h


def rnn_backward(dh, x, h0, h, w_ih, w_hh, nonlinearity="tanh", dh_n=None):
    """Backpropagation through time for :func:`rnn_forward`.

    With ``z_t`` the pre-activation and ``L`` the loss::

        dh_total_t = dh_t + dz_{t+1} w_hh      (output gradient + carry from t+1;
                                                at t = T-1 the carry is dh_n)
        dz_t = dh_total_t * f'(z_t)            tanh'(z) = 1 - h_t^2
                                               relu'(z) = 1 if h_t > 0 else 0
        dx_t = dz_t w_ih
        dh0  = dz_0 w_hh
        dw_ih = sum_t dz_t^T x_t,  dw_hh = sum_t dz_t^T h_{t-1},  db = sum_{t,b} dz_t

    Parameters
    ----------
    dh : ndarray, shape (T, B, H)
        ``dL/dh_t`` for every output ``h_t``.
    x : ndarray, shape (T, B, D)
        Input of the forward pass.
    h0 : ndarray, shape (B, H)
        Initial state of the forward pass.
    h : ndarray, shape (T, B, H)
        Output of the forward pass.
    w_ih : ndarray, shape (H, D)
    w_hh : ndarray, shape (H, H)
    nonlinearity : {"tanh", "relu"}, default "tanh"
    dh_n : ndarray, shape (B, H), optional
        Extra gradient on the final state ``h[-1]`` (e.g. from a loss on ``h_n``).

    Returns
    -------
    dx : ndarray, shape (T, B, D)
    dh0 : ndarray, shape (B, H)
    dw_ih : ndarray, shape (H, D)
    dw_hh : ndarray, shape (H, H)
    db : ndarray, shape (H,)
    """
    _check_nonlinearity(nonlinearity)
    dtype = _float_dtype(dh=dh, x=x, h0=h0, h=h, w_ih=w_ih, w_hh=w_hh, dh_n=dh_n)
    T, B, H = h.shape
    D = x.shape[2]

    dz = np.empty((T, B, H), dtype=dtype)  # dL/dz_t for every step
    dh_carry = np.zeros((B, H), dtype=dtype) if dh_n is None else dh_n
    for t in reversed(range(T)):
        dh_total = dh[t] + dh_carry
        if nonlinearity == "tanh":
            dz[t] = dh_total * (1 - h[t] * h[t])  # tanh'(z) = 1 - tanh(z)^2
        else:
            dz[t] = dh_total * (h[t] > 0)  # relu'(z) = [z > 0] = [h > 0]
        dh_carry = dz[t] @ w_hh  # (B, H) @ (H, H): dL/dh_{t-1} through the recurrence

    # whole-sequence products: fold (T, B) into T*B rows
    dz_rows = dz.reshape(T * B, H)
    dx = dz @ w_ih  # (T, B, H) @ (H, D)
    dw_ih = dz_rows.T @ x.reshape(T * B, D)
    dw_hh = dz_rows.T @ _previous(h0, h).reshape(T * B, H)
    db = dz_rows.sum(axis=0)
    return dx, dh_carry, dw_ih, dw_hh, db


# ----------------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------------


def lstm_forward(x, h0, c0, w_ih, w_hh, b=None, peephole=None):
    """LSTM over a sequence (PyTorch gate order i, f, g, o).

    For ``t = 0 .. T-1``, with ``h_{-1} = h0``, ``c_{-1} = c0``::

        z_t = x_t w_ih^T + h_{t-1} w_hh^T + b            (B, 4H), blocks [i|f|g|o]
        i = sigmoid(z_i)   input gate
        f = sigmoid(z_f)   forget gate
        g = tanh(z_g)      candidate cell value
        o = sigmoid(z_o)   output gate
        c_t = f * c_{t-1} + i * g
        h_t = o * tanh(c_t)

    Parameters
    ----------
    x : ndarray, shape (T, B, D)
    h0 : ndarray, shape (B, H)
    c0 : ndarray, shape (B, H)
    w_ih : ndarray, shape (4H, D)
        Rows ``[0:H]`` i, ``[H:2H]`` f, ``[2H:3H]`` g, ``[3H:4H]`` o.
    w_hh : ndarray, shape (4H, H)
        Same row blocks.
    b : ndarray, shape (4H,), optional
        Same blocks; ``None`` for no bias.

    Returns
    -------
    h : ndarray, shape (T, B, H)
        Hidden states.
    c : ndarray, shape (T, B, H)
        Cell states.
    gates : ndarray, shape (T, B, 4H)
        The activated gates ``[i, f, g, o]`` of every step (what backward needs).

    Raises
    ------
    TypeError
        For mixed or non-floating dtypes.
    """
    dtype = _float_dtype(x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b=b)
    T, B, D = x.shape
    H = w_hh.shape[1]

    # input projection of all steps at once: (T, B, D) @ (D, 4H) -> (T, B, 4H)
    z_in = x @ w_ih.T
    if b is not None:
        z_in = z_in + b

    h = np.empty((T, B, H), dtype=dtype)
    c = np.empty((T, B, H), dtype=dtype)
    gates = np.empty((T, B, 4 * H), dtype=dtype)
    h_prev, c_prev = h0, c0
    for t in range(T):
        z = z_in[t] + h_prev @ w_hh.T  # (B, 4H)
        z_i, z_f, z_o = z[:, 0 * H : 1 * H], z[:, 1 * H : 2 * H], z[:, 3 * H : 4 * H]
        if peephole is not None:  # diagonal peepholes [p_i, p_f, p_o] from the cell state
            z_i = z_i + peephole[0 * H : 1 * H] * c_prev
            z_f = z_f + peephole[1 * H : 2 * H] * c_prev
        i = _sigmoid(z_i)
        f = _sigmoid(z_f)
        g = np.tanh(z[:, 2 * H : 3 * H])
        c[t] = f * c_prev + i * g
        if peephole is not None:
            z_o = z_o + peephole[2 * H : 3 * H] * c[t]  # the output gate looks at c_t
        o = _sigmoid(z_o)
        h[t] = o * np.tanh(c[t])
        gates[t] = np.concatenate((i, f, g, o), axis=1)
        h_prev, c_prev = h[t], c[t]
    return h, c, gates


def lstm_backward(dh, x, h0, c0, h, c, gates, w_ih, w_hh, dh_n=None, dc_n=None,
                  peephole=None):
    """Backpropagation through time for :func:`lstm_forward`.

    Going backwards with carries ``dh_carry`` (starts at `dh_n`) and ``dc_carry``
    (starts at `dc_n`), and ``tc = tanh(c_t)``::

        dh_total = dh_t + dh_carry
        dc_total = dc_carry + dh_total * o * (1 - tc^2)        tanh' = 1 - tanh^2
        d_o = dh_total * tc          d_i = dc_total * g
        d_f = dc_total * c_{t-1}     d_g = dc_total * i
        pre-activations:  dz_i = d_i * i (1 - i)               sigmoid' = s (1 - s)
                          dz_f = d_f * f (1 - f)
                          dz_g = d_g * (1 - g^2)
                          dz_o = d_o * o (1 - o)
        dc_carry = dc_total * f                                (to c_{t-1})
        dh_carry = dz_t w_hh                                   (to h_{t-1})

    then ``dx_t = dz_t w_ih``, ``dw_ih = sum_t dz_t^T x_t``,
    ``dw_hh = sum_t dz_t^T h_{t-1}``, ``db = sum_{t,b} dz_t``, and ``dh0``, ``dc0``
    are the final carries.

    Parameters
    ----------
    dh : ndarray, shape (T, B, H)
        ``dL/dh_t`` for every output ``h_t``.
    x : ndarray, shape (T, B, D)
    h0 : ndarray, shape (B, H)
    c0 : ndarray, shape (B, H)
    h : ndarray, shape (T, B, H)
        Hidden states from the forward pass.
    c : ndarray, shape (T, B, H)
        Cell states from the forward pass.
    gates : ndarray, shape (T, B, 4H)
        Activated gates ``[i, f, g, o]`` from the forward pass.
    w_ih : ndarray, shape (4H, D)
    w_hh : ndarray, shape (4H, H)
    dh_n : ndarray, shape (B, H), optional
        Extra gradient on the final hidden state ``h[-1]``.
    dc_n : ndarray, shape (B, H), optional
        Gradient on the final cell state ``c[-1]``.
    peephole : ndarray, shape (3H,), optional
        As given to :func:`lstm_forward`; with peepholes ``dc_total`` also gains
        ``dz_o * p_o``, the carry to ``c_{t-1}`` gains ``dz_i * p_i + dz_f * p_f``, and a
        7th result ``dpeephole (3H,)`` is returned.

    Returns
    -------
    dx : ndarray, shape (T, B, D)
    dh0 : ndarray, shape (B, H)
    dc0 : ndarray, shape (B, H)
    dw_ih : ndarray, shape (4H, D)
    dw_hh : ndarray, shape (4H, H)
    db : ndarray, shape (4H,)
    """
    dtype = _float_dtype(
        dh=dh, x=x, h0=h0, c0=c0, h=h, c=c, gates=gates, w_ih=w_ih, w_hh=w_hh,
        dh_n=dh_n, dc_n=dc_n,
    )
    T, B, H = h.shape
    D = x.shape[2]

    dz = np.empty((T, B, 4 * H), dtype=dtype)  # dL/d(pre-activation), blocks [i|f|g|o]
    dh_carry = np.zeros((B, H), dtype=dtype) if dh_n is None else dh_n
    dc_carry = np.zeros((B, H), dtype=dtype) if dc_n is None else dc_n
    dpeep = None if peephole is None else np.zeros(3 * H, dtype=dtype)
    for t in reversed(range(T)):
        i, f, g, o = np.split(gates[t], 4, axis=1)
        c_prev = c[t - 1] if t > 0 else c0
        tc = np.tanh(c[t])

        dh_total = dh[t] + dh_carry
        dz[t, :, 3 * H : 4 * H] = dh_total * tc * o * (1 - o)
        dc_total = dc_carry + dh_total * o * (1 - tc * tc)
        if peephole is not None:  # o = σ(... + p_o c_t): c_t also reaches the loss via o
            dc_total = dc_total + dz[t, :, 3 * H : 4 * H] * peephole[2 * H : 3 * H]

        dz[t, :, 0 * H : 1 * H] = dc_total * g * i * (1 - i)
        dz[t, :, 1 * H : 2 * H] = dc_total * c_prev * f * (1 - f)
        dz[t, :, 2 * H : 3 * H] = dc_total * i * (1 - g * g)

        dc_carry = dc_total * f
        if peephole is not None:  # i, f = σ(... + p c_{t-1}): c_{t-1} reaches them too
            dz_i, dz_f = dz[t, :, 0 * H : 1 * H], dz[t, :, 1 * H : 2 * H]
            dc_carry = dc_carry + dz_i * peephole[0 * H : 1 * H] + dz_f * peephole[1 * H : 2 * H]
            dpeep[0 * H : 1 * H] += (dz_i * c_prev).sum(axis=0)
            dpeep[1 * H : 2 * H] += (dz_f * c_prev).sum(axis=0)
            dpeep[2 * H : 3 * H] += (dz[t, :, 3 * H : 4 * H] * c[t]).sum(axis=0)
        dh_carry = dz[t] @ w_hh  # (B, 4H) @ (4H, H)

    # whole-sequence products: fold (T, B) into T*B rows
    dz_rows = dz.reshape(T * B, 4 * H)
    dx = dz @ w_ih  # (T, B, 4H) @ (4H, D)
    dw_ih = dz_rows.T @ x.reshape(T * B, D)
    dw_hh = dz_rows.T @ _previous(h0, h).reshape(T * B, H)
    db = dz_rows.sum(axis=0)
    if peephole is not None:
        return dx, dh_carry, dc_carry, dw_ih, dw_hh, db, dpeep
    return dx, dh_carry, dc_carry, dw_ih, dw_hh, db


# ----------------------------------------------------------------------------------
# GRU
# ----------------------------------------------------------------------------------


def _gru_blocks(w_ih, w_hh, simplified):
    """``(H, blocks)``: the hidden size and a slice per gate block of the ``G*H`` rows.

    ``blocks`` maps ``"r"``, ``"z"``, ``"n"`` (no ``"r"`` when `simplified`) to the
    slices of the gate axis, in PyTorch's order.

    Raises
    ------
    ValueError
        If `w_ih` or `w_hh` does not have ``G*H`` rows.
    """
    names = "zn" if simplified else "rzn"
    G, H = len(names), w_hh.shape[1]
    for name, w in (("w_ih", w_ih), ("w_hh", w_hh)):
        if w.shape[0] != G * H:
            raise ValueError(
                f"{name} must have {G}H = {G * H} rows for H={H} "
                f"(simplified={simplified}), got shape {w.shape}"
            )
    return H, {g: slice(k * H, (k + 1) * H) for k, g in enumerate(names)}


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, reset_after=True, simplified=False):
    """GRU over a sequence (PyTorch gate order r, z, n; simplified: z, n).

    For ``t = 0 .. T-1``, with ``h_{-1} = h0`` and the row blocks ``W_ir, W_iz, W_in``
    of `w_ih`, ``W_hr, W_hz, W_hn`` of `w_hh` (biases likewise)::

        r = sigmoid(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)     reset gate
        z = sigmoid(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)     update gate
        reset_after=True (PyTorch, cuDNN):
            ghn = h_{t-1} W_hn^T + b_hn
            n = tanh(x_t W_in^T + b_in + r * ghn)                  aux_t = ghn
        reset_after=False (Cho et al. 2014, the course):
            n = tanh(x_t W_in^T + b_in + (r * h_{t-1}) W_hn^T + b_hn)
                                                                   aux_t = r * h_{t-1}
        h_t = (1 - z) * n + z * h_{t-1}

    The simplified GRU (``simplified=True``, `reset_after` ignored) has no reset gate::

        z = sigmoid(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
        n = tanh(x_t W_in^T + b_in + h_{t-1} W_hn^T + b_hn)
        h_t = (1 - z) * n + z * h_{t-1}

    Parameters
    ----------
    x : ndarray, shape (T, B, D)
        Input sequence.
    h0 : ndarray, shape (B, H)
        Initial hidden state.
    w_ih : ndarray, shape (G*H, D)
        Input weights, row blocks ``[r | z | n]`` (``G = 3``), or ``[z | n]``
        (``G = 2``) when `simplified`.
    w_hh : ndarray, shape (G*H, H)
        Recurrent weights, same row blocks.
    b_ih, b_hh : ndarray, shape (G*H,), optional
        Input and recurrent biases, same blocks; ``None`` for none.
    reset_after : bool, default True
        Apply the reset gate after the recurrent product (PyTorch) or before it.
    simplified : bool, default False
        The two-gate GRU with only an update gate.

    Returns
    -------
    h : ndarray, shape (T, B, H)
        Hidden state of every step (``h[-1]`` is the final state).
    gates : ndarray, shape (T, B, G*H)
        The activated gates ``[r, z, n]`` (or ``[z, n]``) of every step.
    aux : ndarray, shape (T, B, H), or None
        ``ghn`` (reset_after) or ``r * h_{t-1}`` (not reset_after) of every step, what
        backward needs besides the gates; ``None`` when `simplified`.

    Raises
    ------
    ValueError
        If the weights do not have ``G*H`` rows.
    TypeError
        For mixed or non-floating dtypes.

    Examples
    --------
    With zero weights every gate is sigmoid(0) = 1/2 and n = 0, so ``h_t = h_{t-1}/2``:

    >>> x = np.zeros((2, 1, 3)); h0 = np.ones((1, 4))
    >>> h, gates, aux = gru_forward(x, h0, np.zeros((12, 3)), np.zeros((12, 4)))
    >>> h[:, 0, 0].tolist(), gates.shape, aux.shape
    ([0.5, 0.25], (2, 1, 12), (2, 1, 4))
    """
    dtype = _float_dtype(x=x, h0=h0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    H, blk = _gru_blocks(w_ih, w_hh, simplified)
    T, B, _ = x.shape
    R, Z, N = blk.get("r"), blk["z"], blk["n"]
    RZ = slice(0, 2 * H)  # the r and z blocks of the full GRU
    if b_hh is None:
        b_hh = np.zeros(w_hh.shape[0], dtype=dtype)

    # input projection of all steps at once: (T, B, D) @ (D, G*H) -> (T, B, G*H)
    a_in = x @ w_ih.T
    if b_ih is not None:
        a_in = a_in + b_ih

    h = np.empty((T, B, H), dtype=dtype)
    gates = np.empty((T, B, w_hh.shape[0]), dtype=dtype)
    aux = None if simplified else np.empty((T, B, H), dtype=dtype)
    h_prev = h0
    for t in range(T):
        if simplified or reset_after:
            a_hh = h_prev @ w_hh.T + b_hh  # (B, G*H), blocks as w_hh
        else:  # the n rows act on r * h_{t-1}: only the r and z rows here
            a_hh = h_prev @ w_hh[RZ].T + b_hh[RZ]  # (B, 2H), blocks [r|z]
        z = _sigmoid(a_in[t, :, Z] + a_hh[:, Z])
        if simplified:
            n = np.tanh(a_in[t, :, N] + a_hh[:, N])
            gates[t] = np.concatenate((z, n), axis=1)
        else:
            r = _sigmoid(a_in[t, :, R] + a_hh[:, R])
            if reset_after:
                aux[t] = a_hh[:, N]  # ghn = h_{t-1} W_hn^T + b_hn
                n = np.tanh(a_in[t, :, N] + r * aux[t])
            else:
                aux[t] = r * h_prev
                n = np.tanh(a_in[t, :, N] + aux[t] @ w_hh[N].T + b_hh[N])
            gates[t] = np.concatenate((r, z, n), axis=1)
        h[t] = (1 - z) * n + z * h_prev
        h_prev = h[t]
    return h, gates, aux


def gru_backward(dh, x, h0, h, gates, aux, w_ih, w_hh, reset_after=True, simplified=False,
                 dh_n=None):
    """Backpropagation through time for :func:`gru_forward`.

    Two gradients per gate: ``da_in`` of the input-side sum (``x_t W_i*^T + b_i*``,
    the rows of `w_ih` and `b_ih`) and ``da_hh`` of the recurrent-side sum (the rows
    of `w_hh` and `b_hh`).  Going backwards with the carry ``dL/dh_{t-1}`` (it starts
    at `dh_n`)::

        dh_total = dh_t + carry
        h_t = (1 - z) n + z h_{t-1}:
            dn = dh_total * (1 - z)      dz = dh_total * (h_{t-1} - n)
            carry = dh_total * z                         (the direct path)
        da_n = dn * (1 - n^2)                            tanh' = 1 - tanh^2
        da_z = dz * z (1 - z)                            sigmoid' = s (1 - s)
        reset_after=True, n = tanh(a_in_n + r * ghn):
            da_r = (da_n * ghn) * r (1 - r)
            da_in = [da_r, da_z, da_n],  da_hh = [da_r, da_z, da_n * r]
            carry += da_hh w_hh
        reset_after=False, n = tanh(a_in_n + (r h_{t-1}) W_hn^T + b_hn):
            d(rh) = da_n W_hn                            dL/d(r * h_{t-1})
            da_r = (d(rh) * h_{t-1}) * r (1 - r)
            da_in = da_hh = [da_r, da_z, da_n]
            carry += d(rh) * r + [da_r, da_z] [W_hr; W_hz]
        simplified:
            da_in = da_hh = [da_z, da_n],  carry += da_hh w_hh

    then ``dx_t = da_in_t w_ih``, ``dw_ih = sum_t da_in_t^T x_t``,
    ``dw_hh = sum_t da_hh_t^T h_{t-1}`` (the n rows of the reset_after=False GRU use
    ``r * h_{t-1}`` instead of ``h_{t-1}``), ``db_ih``, ``db_hh`` the sums of
    ``da_in``, ``da_hh`` over time and batch, and ``dh0`` the final carry.

    Parameters
    ----------
    dh : ndarray, shape (T, B, H), or None
        ``dL/dh_t`` for every output ``h_t``; ``None`` for zeros.
    x : ndarray, shape (T, B, D)
    h0 : ndarray, shape (B, H)
    h : ndarray, shape (T, B, H)
        Hidden states from the forward pass.
    gates : ndarray, shape (T, B, G*H)
        Activated gates from the forward pass.
    aux : ndarray, shape (T, B, H), or None
        `aux` from the forward pass (``None`` when `simplified`).
    w_ih : ndarray, shape (G*H, D)
    w_hh : ndarray, shape (G*H, H)
    reset_after, simplified : bool
        As given to :func:`gru_forward`.
    dh_n : ndarray, shape (B, H), optional
        Extra gradient on the final hidden state ``h[-1]``.

    Returns
    -------
    dx : ndarray, shape (T, B, D)
    dh0 : ndarray, shape (B, H)
    dw_ih : ndarray, shape (G*H, D)
    dw_hh : ndarray, shape (G*H, H)
    db_ih : ndarray, shape (G*H,)
        Gradient of `b_ih` (returned also when the forward pass had no bias).
    db_hh : ndarray, shape (G*H,)
        Gradient of `b_hh`.

    Raises
    ------
    ValueError
        If the weights do not have ``G*H`` rows.
    TypeError
        For mixed or non-floating dtypes.
    """
    dtype = _float_dtype(dh=dh, x=x, h0=h0, h=h, gates=gates, aux=aux, w_ih=w_ih, w_hh=w_hh,
                         dh_n=dh_n)
    H, blk = _gru_blocks(w_ih, w_hh, simplified)
    T, B, _ = x.shape
    GH = w_hh.shape[0]
    R, Z, N = blk.get("r"), blk["z"], blk["n"]
    RZ = slice(0, 2 * H)  # the r and z blocks of the full GRU
    h_prev_all = _previous(h0, h)  # (T, B, H)

    da_in = np.empty((T, B, GH), dtype=dtype)  # dL/d(input-side sums), blocks as w_ih
    da_hh = np.empty((T, B, GH), dtype=dtype)  # dL/d(recurrent-side sums), blocks as w_hh
    carry = np.zeros((B, H), dtype=dtype) if dh_n is None else dh_n
    for t in reversed(range(T)):
        h_prev = h_prev_all[t]
        dh_total = carry if dh is None else dh[t] + carry
        z, n = gates[t, :, Z], gates[t, :, N]

        # h_t = (1 - z) n + z h_{t-1}
        dn = dh_total * (1 - z)
        dz = dh_total * (h_prev - n)
        carry = dh_total * z  # direct path to h_{t-1}
        da_n = dn * (1 - n * n)  # tanh' = 1 - tanh^2
        da_z = dz * z * (1 - z)  # sigmoid' = s (1 - s)
        da_in[t, :, Z], da_in[t, :, N] = da_z, da_n

        if simplified:
            da_hh[t] = da_in[t]
            carry = carry + da_hh[t] @ w_hh  # (B, 2H) @ (2H, H)
        elif reset_after:
            # n = tanh(a_in_n + r * ghn): dL/dr = da_n * ghn, dL/dghn = da_n * r
            r = gates[t, :, R]
            da_in[t, :, R] = da_n * aux[t] * r * (1 - r)
            da_hh[t, :, RZ], da_hh[t, :, N] = da_in[t, :, RZ], da_n * r
            carry = carry + da_hh[t] @ w_hh  # (B, 3H) @ (3H, H)
        else:
            # n = tanh(a_in_n + (r h_{t-1}) W_hn^T + b_hn)
            r = gates[t, :, R]
            d_rh = da_n @ w_hh[N]  # dL/d(r * h_{t-1}), (B, H) @ (H, H)
            da_in[t, :, R] = d_rh * h_prev * r * (1 - r)
            da_hh[t] = da_in[t]
            carry = carry + d_rh * r + da_hh[t, :, RZ] @ w_hh[RZ]  # (B, 2H) @ (2H, H)

    # whole-sequence products: fold (T, B) into T*B rows
    def rows(a):
        return a.reshape(T * B, a.shape[-1])

    dx = da_in @ w_ih  # (T, B, G*H) @ (G*H, D)
    dw_ih = rows(da_in).T @ rows(x)
    # the rows of w_hh multiply h_{t-1}, except the n rows of the reset_after=False GRU,
    # which multiply r * h_{t-1} (= aux)
    n_input = h_prev_all if simplified or reset_after else aux
    dw_hh = np.concatenate((rows(da_hh[:, :, : GH - H]).T @ rows(h_prev_all),
                            rows(da_hh[:, :, N]).T @ rows(n_input)))
    db_ih = rows(da_in).sum(axis=0)
    db_hh = rows(da_hh).sum(axis=0)
    return dx, carry, dw_ih, dw_hh, db_ih, db_hh
