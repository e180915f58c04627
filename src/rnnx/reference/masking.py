"""Variable-length batches: the RNN, LSTM and GRU kernels with a ``lengths`` argument.

The functions of :mod:`rnnx.reference.kernels` (same names, arguments, returns and
conventions), plus ``lengths (B,)``: example ``b`` of the batch is
``lengths[b]`` steps long (``1 <= lengths[b] <= T``; any order, not only sorted) and
the steps ``t >= lengths[b]`` of ``x`` are padding.  ``lengths=None`` means that every
step is valid; the results are then those of :mod:`rnnx.reference.kernels`, bit for
bit, because both go through the same per-step code.

Semantics (the same for every cell), with the step mask
``m_t[b] = t < lengths[b]`` (:func:`step_mask`)::

    forward:   h_t = where(m_t, cell(x_t, h_{t-1}), h_{t-1})
               c_t = where(m_t, c_cell,             c_{t-1})      (LSTM)

A padded step carries the state unchanged, so ``h[T-1][b]`` (and ``c[T-1][b]``) is
example ``b``'s state after its own last step -- what PyTorch returns as ``h_n`` for a
``PackedSequence``.  The gates (and GRU ``aux``) of a padded step hold whatever the
cell computed from the carried state; backward does not read them.  Backward is the
derivative of that ``where``::

    dh_total_t = where(m_t, dh_t, 0) + carry_t        dh at padded steps is ignored
    valid step:   the cell's own backward (dz_t, carry_{t-1} = dL/dh_{t-1})
    padded step:  dz_t = 0, carry_{t-1} = carry_t     (and dc likewise for the LSTM)

so a padded step adds nothing to any parameter gradient, ``dx`` is exactly 0 there,
and the gradient on the final state (``dh_n``, ``dc_n``) flows through the padding to
each example's last valid step.  This equals PyTorch on ``pack_padded_sequence(x,
lengths, enforce_sorted=False)`` with ``dh`` masked: its unpacked outputs are
``h * m`` and its final states ``h[T-1]``.

Each cell's per-step math is written once below (``_*_step`` and
``_*_step_backward``); the sequence functions add the input projection of all steps
before the time loop and the whole-sequence parameter products after it, as the
unmasked reference and the C++ core do.

Dimension alphabet: ``T`` time, ``B`` batch, ``D`` input features, ``H`` hidden,
``G`` gates (RNN 1, LSTM 4, GRU 3, simplified GRU 2).
"""

import numpy as np

from .kernels import _check_nonlinearity, _float_dtype, _gru_blocks, _previous, _sigmoid

__all__ = [
    "step_mask", "rnn_forward", "rnn_backward", "lstm_forward", "lstm_backward",
    "gru_forward", "gru_backward",
]


# ----------------------------------------------------------------------------------
# the mask
# ----------------------------------------------------------------------------------


def step_mask(lengths, T, B=None):
    """Which steps of a padded batch are valid: ``mask[t, b] = t < lengths[b]``.

    Parameters
    ----------
    lengths : array_like of int, shape (B,)
        Length of every example, each in ``1 .. T``, in any order.
    T : int
        Number of steps of the padded batch.
    B : int, optional
        Batch size that `lengths` must match; ``None`` to take it from `lengths`.

    Returns
    -------
    mask : ndarray of bool, shape (T, B)

    Raises
    ------
    TypeError
        If `lengths` is not an integer array (floats and bools are refused rather
        than rounded).
    ValueError
        If `lengths` is not 1-D, does not have `B` entries, or has an entry outside
        ``1 .. T``.

    Examples
    --------
    >>> step_mask([3, 1, 2], 3).astype(int)
    array([[1, 1, 1],
           [1, 0, 1],
           [1, 0, 0]])
    """
    lengths = np.asarray(lengths)
    if not np.issubdtype(lengths.dtype, np.integer):
        raise TypeError(f"lengths must be an integer array, got dtype {lengths.dtype}")
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D of shape (B,), got shape {lengths.shape}")
    if B is not None and lengths.shape[0] != B:
        raise ValueError(f"lengths must have shape (B,) = ({B},), got {lengths.shape}")
    bad = (lengths < 1) | (lengths > T)
    if bad.any():
        raise ValueError(
            f"lengths must lie in 1 .. T = 1 .. {T}, got lengths[{np.argmax(bad)}] = "
            f"{lengths[np.argmax(bad)]}"
        )
    return np.arange(T)[:, None] < lengths[None, :]


def _mask(lengths, T, B):
    """``(T, B, 1)`` bool mask (all True for ``lengths=None``), ready to broadcast."""
    if lengths is None:
        return np.ones((T, B, 1), dtype=bool)
    return step_mask(lengths, T, B)[:, :, None]


# ----------------------------------------------------------------------------------
# Elman RNN
# ----------------------------------------------------------------------------------


def _rnn_step(z_in_t, h_prev, w_hh, nonlinearity):
    """One step: ``h_t = f(z_in_t + h_{t-1} w_hh^T)``, all ``(B, H)``."""
    z = z_in_t + h_prev @ w_hh.T  # (B, H)
    return np.tanh(z) if nonlinearity == "tanh" else np.maximum(z, 0)


def _rnn_step_backward(dh_total, h_t, w_hh, nonlinearity):
    """``(dz_t, dL/dh_{t-1})`` of one step, from ``dh_total = dL/dh_t``."""
    if nonlinearity == "tanh":
        dz = dh_total * (1 - h_t * h_t)  # tanh'(z) = 1 - tanh(z)^2
    else:
        dz = dh_total * (h_t > 0)  # relu'(z) = [z > 0] = [h > 0]
    return dz, dz @ w_hh  # (B, H) @ (H, H)


def rnn_forward(x, h0, w_ih, w_hh, b=None, nonlinearity="tanh", lengths=None):
    """Elman RNN over a padded batch.

    ``h_t = where(t < lengths, f(x_t w_ih^T + h_{t-1} w_hh^T + b), h_{t-1})``, with
    ``h_{-1} = h0`` and ``f = tanh`` or ``relu``.

    Parameters
    ----------
    x : ndarray, shape (T, B, D)
        Input sequence; the steps ``t >= lengths[b]`` of example ``b`` are ignored.
    h0 : ndarray, shape (B, H)
    w_ih : ndarray, shape (H, D)
    w_hh : ndarray, shape (H, H)
    b : ndarray, shape (H,), optional
    nonlinearity : {"tanh", "relu"}, default "tanh"
    lengths : array_like of int, shape (B,), optional
        Valid steps of every example (``1 .. T``); ``None`` for all ``T``.

    Returns
    -------
    h : ndarray, shape (T, B, H)
        Hidden states; at a padded step, the state after the example's last valid
        step (so ``h[-1]`` holds every example's final state).

    Raises
    ------
    ValueError
        For an unknown `nonlinearity` or bad `lengths`.
    TypeError
        For mixed or non-floating dtypes, or non-integer `lengths`.

    Examples
    --------
    >>> x = np.ones((3, 2, 1)); h0 = np.zeros((2, 1)); w = np.ones((1, 1))
    >>> h = rnn_forward(x, h0, w, w, nonlinearity="relu", lengths=[3, 1])
    >>> h[:, :, 0].tolist()
    [[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]
    """
    _check_nonlinearity(nonlinearity)
    dtype = _float_dtype(x=x, h0=h0, w_ih=w_ih, w_hh=w_hh, b=b)
    T, B, _ = x.shape
    m = _mask(lengths, T, B)

    # input projection of all steps at once: (T, B, D) @ (D, H) -> (T, B, H)
    z_in = x @ w_ih.T
    if b is not None:
        z_in = z_in + b

    h = np.empty((T, B, w_hh.shape[0]), dtype=dtype)
    h_prev = h0
    for t in range(T):
        h[t] = np.where(m[t], _rnn_step(z_in[t], h_prev, w_hh, nonlinearity), h_prev)
        h_prev = h[t]
    return h


def rnn_backward(dh, x, h0, h, w_ih, w_hh, nonlinearity="tanh", dh_n=None, lengths=None):
    """Backpropagation through time for :func:`rnn_forward`.

    ::

        dh_total_t = where(m_t, dh_t, 0) + carry_t       (carry_{T-1} = dh_n)
        dz_t       = where(m_t, dh_total_t * f'(z_t), 0)  tanh' = 1 - h_t^2
                                                          relu' = [h_t > 0]
        carry_{t-1} = where(m_t, dz_t w_hh, carry_t)
        dx_t = dz_t w_ih,  dh0 = carry_{-1}
        dw_ih = sum_t dz_t^T x_t,  dw_hh = sum_t dz_t^T h_{t-1},  db = sum_{t,b} dz_t

    Parameters
    ----------
    dh : ndarray, shape (T, B, H), or None
        ``dL/dh_t``; entries at padded steps are ignored.  ``None`` for zeros.
    x, h0, w_ih, w_hh, nonlinearity, lengths
        As given to :func:`rnn_forward`.
    h : ndarray, shape (T, B, H)
        Its output.
    dh_n : ndarray, shape (B, H), optional
        Gradient on the final states ``h[-1]``.

    Returns
    -------
    dx : ndarray, shape (T, B, D)
        0 at padded steps.
    dh0 : ndarray, shape (B, H)
    dw_ih : ndarray, shape (H, D)
    dw_hh : ndarray, shape (H, H)
    db : ndarray, shape (H,)

    Raises
    ------
    ValueError
        For an unknown `nonlinearity` or bad `lengths`.
    TypeError
        For mixed or non-floating dtypes, or non-integer `lengths`.
    """
    _check_nonlinearity(nonlinearity)
    dtype = _float_dtype(dh=dh, x=x, h0=h0, h=h, w_ih=w_ih, w_hh=w_hh, dh_n=dh_n)
    T, B, H = h.shape
    D = x.shape[2]
    m = _mask(lengths, T, B)

    dz = np.empty((T, B, H), dtype=dtype)  # dL/dz_t, 0 at padded steps
    carry = np.zeros((B, H), dtype=dtype) if dh_n is None else dh_n
    for t in reversed(range(T)):
        dh_total = carry if dh is None else np.where(m[t], dh[t], 0) + carry
        dz_t, dh_prev = _rnn_step_backward(dh_total, h[t], w_hh, nonlinearity)
        dz[t] = np.where(m[t], dz_t, 0)
        carry = np.where(m[t], dh_prev, carry)  # a padded step passes the carry on

    # whole-sequence products: fold (T, B) into T*B rows
    dz_rows = dz.reshape(T * B, H)
    dx = dz @ w_ih  # (T, B, H) @ (H, D)
    dw_ih = dz_rows.T @ x.reshape(T * B, D)
    dw_hh = dz_rows.T @ _previous(h0, h).reshape(T * B, H)
    db = dz_rows.sum(axis=0)
    return dx, carry, dw_ih, dw_hh, db


# ----------------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------------


def _lstm_step(z_in_t, h_prev, c_prev, w_hh):
    """One step: ``(h_t, c_t, gates_t)`` from ``z_in_t = x_t w_ih^T + b``, (B, 4H).

    ``z = z_in_t + h_{t-1} w_hh^T``; ``i, f, o = sigmoid``, ``g = tanh`` of its
    blocks; ``c_t = f c_{t-1} + i g``; ``h_t = o tanh(c_t)``.
    """
    H = h_prev.shape[1]
    z = z_in_t + h_prev @ w_hh.T  # (B, 4H)
    i = _sigmoid(z[:, 0 * H : 1 * H])
    f = _sigmoid(z[:, 1 * H : 2 * H])
    g = np.tanh(z[:, 2 * H : 3 * H])
    o = _sigmoid(z[:, 3 * H : 4 * H])
    c = f * c_prev + i * g
    h = o * np.tanh(c)
    return h, c, np.concatenate((i, f, g, o), axis=1)


def _lstm_step_backward(dh_total, dc_carry, gates_t, c_t, c_prev, w_hh):
    """``(dz_t, dL/dh_{t-1}, dL/dc_{t-1})`` of one step.

    ``dc_total = dc_carry + dh_total o (1 - tanh(c_t)^2)``; ``dz`` of the blocks
    ``i f g o`` are ``dc_total g``, ``dc_total c_{t-1}``, ``dc_total i``,
    ``dh_total tanh(c_t)`` times ``s (1 - s)`` (sigmoid') or ``1 - g^2`` (tanh').
    """
    H = c_t.shape[1]
    i, f, g, o = np.split(gates_t, 4, axis=1)
    tc = np.tanh(c_t)
    dc_total = dc_carry + dh_total * o * (1 - tc * tc)  # tanh' = 1 - tanh^2

    dz = np.empty_like(gates_t)  # (B, 4H), blocks [i|f|g|o]
    dz[:, 0 * H : 1 * H] = dc_total * g * i * (1 - i)  # sigmoid' = s (1 - s)
    dz[:, 1 * H : 2 * H] = dc_total * c_prev * f * (1 - f)
    dz[:, 2 * H : 3 * H] = dc_total * i * (1 - g * g)
    dz[:, 3 * H : 4 * H] = dh_total * tc * o * (1 - o)
    return dz, dz @ w_hh, dc_total * f  # (B, 4H) @ (4H, H)


def lstm_forward(x, h0, c0, w_ih, w_hh, b=None, lengths=None):
    """LSTM over a padded batch (PyTorch gate order i, f, g, o).

    ``(h_t, c_t) = where(t < lengths, cell(x_t, h_{t-1}, c_{t-1}), (h_{t-1}, c_{t-1}))``
    with the cell of :func:`rnnx.reference.kernels.lstm_forward`::

        z_t = x_t w_ih^T + h_{t-1} w_hh^T + b            (B, 4H), blocks [i|f|g|o]
        i, f, o = sigmoid(z_i), sigmoid(z_f), sigmoid(z_o);  g = tanh(z_g)
        c = f * c_{t-1} + i * g;  h = o * tanh(c)

    Parameters
    ----------
    x : ndarray, shape (T, B, D)
        Input sequence; the steps ``t >= lengths[b]`` of example ``b`` are ignored.
    h0, c0 : ndarray, shape (B, H)
    w_ih : ndarray, shape (4H, D)
    w_hh : ndarray, shape (4H, H)
    b : ndarray, shape (4H,), optional
    lengths : array_like of int, shape (B,), optional
        Valid steps of every example (``1 .. T``); ``None`` for all ``T``.

    Returns
    -------
    h, c : ndarray, shape (T, B, H)
        Hidden and cell states; at a padded step, those after the example's last
        valid step.
    gates : ndarray, shape (T, B, 4H)
        The activated gates ``[i, f, g, o]`` (at padded steps: computed from the
        carried state, not used by backward).

    Raises
    ------
    ValueError
        For bad `lengths`.
    TypeError
        For mixed or non-floating dtypes, or non-integer `lengths`.
    """
    dtype = _float_dtype(x=x, h0=h0, c0=c0, w_ih=w_ih, w_hh=w_hh, b=b)
    T, B, _ = x.shape
    H = w_hh.shape[1]
    m = _mask(lengths, T, B)

    # input projection of all steps at once: (T, B, D) @ (D, 4H) -> (T, B, 4H)
    z_in = x @ w_ih.T
    if b is not None:
        z_in = z_in + b

    h = np.empty((T, B, H), dtype=dtype)
    c = np.empty((T, B, H), dtype=dtype)
    gates = np.empty((T, B, 4 * H), dtype=dtype)
    h_prev, c_prev = h0, c0
    for t in range(T):
        h_new, c_new, gates[t] = _lstm_step(z_in[t], h_prev, c_prev, w_hh)
        h[t] = np.where(m[t], h_new, h_prev)
        c[t] = np.where(m[t], c_new, c_prev)
        h_prev, c_prev = h[t], c[t]
    return h, c, gates


def lstm_backward(dh, x, h0, c0, h, c, gates, w_ih, w_hh, dh_n=None, dc_n=None, lengths=None):
    """Backpropagation through time for :func:`lstm_forward`.

    The step of :func:`rnnx.reference.kernels.lstm_backward` at valid steps; a padded
    step passes both carries on unchanged and has ``dz_t = 0``::

        dh_total_t = where(m_t, dh_t, 0) + dh_carry_t
        valid:  (dz_t, dh_carry_{t-1}, dc_carry_{t-1}) = cell backward
        padded: dz_t = 0, dh_carry_{t-1} = dh_carry_t, dc_carry_{t-1} = dc_carry_t

    then ``dx_t = dz_t w_ih``, ``dw_ih = sum_t dz_t^T x_t``,
    ``dw_hh = sum_t dz_t^T h_{t-1}``, ``db = sum_{t,b} dz_t``.

    Parameters
    ----------
    dh : ndarray, shape (T, B, H), or None
        ``dL/dh_t``; entries at padded steps are ignored.  ``None`` for zeros.
    x, h0, c0, w_ih, w_hh, lengths
        As given to :func:`lstm_forward`.
    h, c, gates : ndarray
        Its outputs.
    dh_n, dc_n : ndarray, shape (B, H), optional
        Gradients on the final states ``h[-1]``, ``c[-1]``.

    Returns
    -------
    dx : ndarray, shape (T, B, D)
        0 at padded steps.
    dh0, dc0 : ndarray, shape (B, H)
    dw_ih : ndarray, shape (4H, D)
    dw_hh : ndarray, shape (4H, H)
    db : ndarray, shape (4H,)

    Raises
    ------
    ValueError
        For bad `lengths`.
    TypeError
        For mixed or non-floating dtypes, or non-integer `lengths`.
    """
    dtype = _float_dtype(
        dh=dh, x=x, h0=h0, c0=c0, h=h, c=c, gates=gates, w_ih=w_ih, w_hh=w_hh,
        dh_n=dh_n, dc_n=dc_n,
    )
    T, B, H = h.shape
    D = x.shape[2]
    m = _mask(lengths, T, B)
    c_prev_all = _previous(c0, c)

    dz = np.empty((T, B, 4 * H), dtype=dtype)  # dL/d(pre-activation), 0 at padded steps
    dh_carry = np.zeros((B, H), dtype=dtype) if dh_n is None else dh_n
    dc_carry = np.zeros((B, H), dtype=dtype) if dc_n is None else dc_n
    for t in reversed(range(T)):
        dh_total = dh_carry if dh is None else np.where(m[t], dh[t], 0) + dh_carry
        dz_t, dh_prev, dc_prev = _lstm_step_backward(
            dh_total, dc_carry, gates[t], c[t], c_prev_all[t], w_hh)
        dz[t] = np.where(m[t], dz_t, 0)
        dh_carry = np.where(m[t], dh_prev, dh_carry)  # a padded step passes both on
        dc_carry = np.where(m[t], dc_prev, dc_carry)

    # whole-sequence products: fold (T, B) into T*B rows
    dz_rows = dz.reshape(T * B, 4 * H)
    dx = dz @ w_ih  # (T, B, 4H) @ (4H, D)
    dw_ih = dz_rows.T @ x.reshape(T * B, D)
    dw_hh = dz_rows.T @ _previous(h0, h).reshape(T * B, H)
    db = dz_rows.sum(axis=0)
    return dx, dh_carry, dc_carry, dw_ih, dw_hh, db


# ----------------------------------------------------------------------------------
# GRU
# ----------------------------------------------------------------------------------


def _gru_step(a_in_t, h_prev, w_hh, b_hh, blk, reset_after, simplified):
    """One step: ``(h_t, gates_t, aux_t)`` from ``a_in_t = x_t w_ih^T + b_ih``.

    See :func:`gru_forward` for the equations; ``blk`` maps the gate names to their
    slices of the ``G*H`` axis; ``aux_t`` is ``None`` when `simplified`.
    """
    H = h_prev.shape[1]
    R, Z, N = blk.get("r"), blk["z"], blk["n"]
    RZ = slice(0, 2 * H)  # the r and z blocks of the full GRU
    aux = None
    if simplified or reset_after:
        a_hh = h_prev @ w_hh.T + b_hh  # (B, G*H), blocks as w_hh
    else:  # the n rows act on r * h_{t-1}: only the r and z rows here
        a_hh = h_prev @ w_hh[RZ].T + b_hh[RZ]  # (B, 2H), blocks [r|z]
    z = _sigmoid(a_in_t[:, Z] + a_hh[:, Z])
    if simplified:
        n = np.tanh(a_in_t[:, N] + a_hh[:, N])
        gates = np.concatenate((z, n), axis=1)
    else:
        r = _sigmoid(a_in_t[:, R] + a_hh[:, R])
        if reset_after:
            aux = a_hh[:, N]  # ghn = h_{t-1} W_hn^T + b_hn
            n = np.tanh(a_in_t[:, N] + r * aux)
        else:
            aux = r * h_prev
            n = np.tanh(a_in_t[:, N] + aux @ w_hh[N].T + b_hh[N])
        gates = np.concatenate((r, z, n), axis=1)
    h = (1 - z) * n + z * h_prev
    return h, gates, aux


def _gru_step_backward(dh_total, h_prev, gates_t, aux_t, w_hh, blk, reset_after, simplified):
    """``(da_in_t, da_hh_t, dL/dh_{t-1})`` of one step (see :func:`gru_backward`)."""
    H = h_prev.shape[1]
    R, Z, N = blk.get("r"), blk["z"], blk["n"]
    RZ = slice(0, 2 * H)
    z, n = gates_t[:, Z], gates_t[:, N]
    da_in = np.empty_like(gates_t)  # (B, G*H), blocks as w_ih
    da_hh = np.empty_like(gates_t)  # (B, G*H), blocks as w_hh

    # h_t = (1 - z) n + z h_{t-1}
    dn = dh_total * (1 - z)
    dz = dh_total * (h_prev - n)
    carry = dh_total * z  # direct path to h_{t-1}
    da_n = dn * (1 - n * n)  # tanh' = 1 - tanh^2
    da_z = dz * z * (1 - z)  # sigmoid' = s (1 - s)
    da_in[:, Z], da_in[:, N] = da_z, da_n

    if simplified:
        da_hh[:] = da_in
        carry = carry + da_hh @ w_hh  # (B, 2H) @ (2H, H)
    elif reset_after:
        # n = tanh(a_in_n + r * ghn): dL/dr = da_n * ghn, dL/dghn = da_n * r
        r = gates_t[:, R]
        da_in[:, R] = da_n * aux_t * r * (1 - r)
        da_hh[:, RZ], da_hh[:, N] = da_in[:, RZ], da_n * r
        carry = carry + da_hh @ w_hh  # (B, 3H) @ (3H, H)
    else:
        # n = tanh(a_in_n + (r h_{t-1}) W_hn^T + b_hn)
        r = gates_t[:, R]
        d_rh = da_n @ w_hh[N]  # dL/d(r * h_{t-1}), (B, H) @ (H, H)
        da_in[:, R] = d_rh * h_prev * r * (1 - r)
        da_hh[:] = da_in
        carry = carry + d_rh * r + da_hh[:, RZ] @ w_hh[RZ]  # (B, 2H) @ (2H, H)
    return da_in, da_hh, carry


def gru_forward(x, h0, w_ih, w_hh, b_ih=None, b_hh=None, reset_after=True, simplified=False,
                lengths=None):
    """GRU over a padded batch (PyTorch gate order r, z, n; simplified: z, n).

    ``h_t = where(t < lengths, cell(x_t, h_{t-1}), h_{t-1})`` with the cell of
    :func:`rnnx.reference.kernels.gru_forward`::

        r = sigmoid(x_t W_ir^T + b_ir + h_{t-1} W_hr^T + b_hr)
        z = sigmoid(x_t W_iz^T + b_iz + h_{t-1} W_hz^T + b_hz)
        reset_after=True:   n = tanh(x_t W_in^T + b_in + r * (h_{t-1} W_hn^T + b_hn))
                            aux_t = h_{t-1} W_hn^T + b_hn
        reset_after=False:  n = tanh(x_t W_in^T + b_in + (r * h_{t-1}) W_hn^T + b_hn)
                            aux_t = r * h_{t-1}
        simplified (no r):  n = tanh(x_t W_in^T + b_in + h_{t-1} W_hn^T + b_hn)
        cell = (1 - z) * n + z * h_{t-1}

    Parameters
    ----------
    x : ndarray, shape (T, B, D)
        Input sequence; the steps ``t >= lengths[b]`` of example ``b`` are ignored.
    h0 : ndarray, shape (B, H)
    w_ih : ndarray, shape (G*H, D)
        Row blocks ``[r | z | n]`` (``G = 3``), or ``[z | n]`` (``G = 2``) when
        `simplified`.
    w_hh : ndarray, shape (G*H, H)
    b_ih, b_hh : ndarray, shape (G*H,), optional
    reset_after : bool, default True
    simplified : bool, default False
    lengths : array_like of int, shape (B,), optional
        Valid steps of every example (``1 .. T``); ``None`` for all ``T``.

    Returns
    -------
    h : ndarray, shape (T, B, H)
        Hidden states; at a padded step, the state after the example's last valid
        step.
    gates : ndarray, shape (T, B, G*H)
        Activated gates (at padded steps: computed from the carried state, not used
        by backward).
    aux : ndarray, shape (T, B, H), or None
        ``h_{t-1} W_hn^T + b_hn`` or ``r * h_{t-1}``; ``None`` when `simplified`.

    Raises
    ------
    ValueError
        If the weights do not have ``G*H`` rows, or for bad `lengths`.
    TypeError
        For mixed or non-floating dtypes, or non-integer `lengths`.

    Examples
    --------
    With zero weights ``h_t = h_{t-1} / 2`` at every valid step:

    >>> x = np.zeros((3, 2, 1)); h0 = np.ones((2, 1))
    >>> h, gates, aux = gru_forward(x, h0, np.zeros((3, 1)), np.zeros((3, 1)),
    ...                             lengths=[1, 3])
    >>> h[:, :, 0].tolist()
    [[0.5, 0.5], [0.5, 0.25], [0.5, 0.125]]
    """
    dtype = _float_dtype(x=x, h0=h0, w_ih=w_ih, w_hh=w_hh, b_ih=b_ih, b_hh=b_hh)
    H, blk = _gru_blocks(w_ih, w_hh, simplified)
    T, B, _ = x.shape
    m = _mask(lengths, T, B)
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
        h_new, gates[t], aux_t = _gru_step(a_in[t], h_prev, w_hh, b_hh, blk, reset_after,
                                           simplified)
        if aux is not None:
            aux[t] = aux_t
        h[t] = np.where(m[t], h_new, h_prev)
        h_prev = h[t]
    return h, gates, aux


def gru_backward(dh, x, h0, h, gates, aux, w_ih, w_hh, reset_after=True, simplified=False,
                 dh_n=None, lengths=None):
    """Backpropagation through time for :func:`gru_forward`.

    The step of :func:`rnnx.reference.kernels.gru_backward` at valid steps; a padded
    step passes the carry on and adds nothing::

        dh_total_t = where(m_t, dh_t, 0) + carry_t       (carry_{T-1} = dh_n)
        valid:  (da_in_t, da_hh_t, carry_{t-1}) = cell backward
        padded: da_in_t = da_hh_t = 0, carry_{t-1} = carry_t

    then ``dx_t = da_in_t w_ih``, ``dw_ih = sum_t da_in_t^T x_t``,
    ``dw_hh = sum_t da_hh_t^T h_{t-1}`` (the n rows of the reset_after=False GRU use
    ``r * h_{t-1}``), ``db_ih``, ``db_hh`` the sums of ``da_in``, ``da_hh``.

    Parameters
    ----------
    dh : ndarray, shape (T, B, H), or None
        ``dL/dh_t``; entries at padded steps are ignored.  ``None`` for zeros.
    x, h0, w_ih, w_hh, reset_after, simplified, lengths
        As given to :func:`gru_forward`.
    h, gates, aux
        Its outputs.
    dh_n : ndarray, shape (B, H), optional
        Gradient on the final states ``h[-1]``.

    Returns
    -------
    dx : ndarray, shape (T, B, D)
        0 at padded steps.
    dh0 : ndarray, shape (B, H)
    dw_ih : ndarray, shape (G*H, D)
    dw_hh : ndarray, shape (G*H, H)
    db_ih, db_hh : ndarray, shape (G*H,)

    Raises
    ------
    ValueError
        If the weights do not have ``G*H`` rows, or for bad `lengths`.
    TypeError
        For mixed or non-floating dtypes, or non-integer `lengths`.
    """
    dtype = _float_dtype(dh=dh, x=x, h0=h0, h=h, gates=gates, aux=aux, w_ih=w_ih, w_hh=w_hh,
                         dh_n=dh_n)
    H, blk = _gru_blocks(w_ih, w_hh, simplified)
    T, B, _ = x.shape
    GH = w_hh.shape[0]
    m = _mask(lengths, T, B)
    h_prev_all = _previous(h0, h)  # (T, B, H)

    da_in = np.empty((T, B, GH), dtype=dtype)  # dL/d(input-side sums), 0 at padded steps
    da_hh = np.empty((T, B, GH), dtype=dtype)  # dL/d(recurrent-side sums), likewise
    carry = np.zeros((B, H), dtype=dtype) if dh_n is None else dh_n
    for t in reversed(range(T)):
        dh_total = carry if dh is None else np.where(m[t], dh[t], 0) + carry
        da_in_t, da_hh_t, dh_prev = _gru_step_backward(
            dh_total, h_prev_all[t], gates[t], None if aux is None else aux[t], w_hh, blk,
            reset_after, simplified)
        da_in[t] = np.where(m[t], da_in_t, 0)
        da_hh[t] = np.where(m[t], da_hh_t, 0)
        carry = np.where(m[t], dh_prev, carry)  # a padded step passes the carry on

    # whole-sequence products: fold (T, B) into T*B rows
    def rows(a):
        return a.reshape(T * B, a.shape[-1])

    dx = da_in @ w_ih  # (T, B, G*H) @ (G*H, D)
    dw_ih = rows(da_in).T @ rows(x)
    # the n rows of the reset_after=False GRU multiply r * h_{t-1} (= aux; its padded
    # rows are not read: where() keeps a NaN there out of 0 * NaN)
    n_input = h_prev_all if simplified or reset_after else np.where(m, aux, 0)
    dw_hh = np.concatenate((rows(da_hh[:, :, : GH - H]).T @ rows(h_prev_all),
                            rows(da_hh[:, :, blk["n"]]).T @ rows(n_input)))
    db_ih = rows(da_in).sum(axis=0)
    db_hh = rows(da_hh).sum(axis=0)
    return dx, carry, dw_ih, dw_hh, db_ih, db_hh
