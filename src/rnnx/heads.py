"""Heads and losses for the four shapes of an RNN model, computed in C++.

A recurrent kernel (:mod:`rnnx.kernels`) maps a sequence ``x (T, B, D)`` to states
``h (T, B, H)``. These functions turn it into a model:

==================  ===============================================================
shape               pipeline
==================  ===============================================================
many-to-many        ``embedding_forward`` -> RNN -> ``dense_forward`` on every step ->
                    ``softmax_cross_entropy`` over ``(T, B, V)`` (a language model)
many-to-one         RNN -> ``last_step_forward`` -> ``dense_forward`` ->
                    ``softmax_cross_entropy`` over ``(B, V)`` (a classifier)
one-to-many         a vector as ``h0`` (or as ``x`` at every step) -> RNN -> dense ->
                    loss over ``(T, B, V)`` (sampling feeds each output back in)
encoder-decoder     encoder RNN -> ``last_step_forward`` -> the decoder's ``h0`` ->
                    decoder RNN -> dense -> loss with ``mask`` for the padding
==================  ===============================================================

Every forward has a backward that takes the gradient of the loss with respect to the
forward's output and returns the gradients with respect to its inputs, so a model's
backward pass is the forwards' chain read in reverse.

Conventions: sequences are time-major; weights follow PyTorch (``nn.Linear`` ``weight
(O, F)``, ``nn.Embedding`` ``weight (V, E)``); float32 or float64, all float arrays of one
call share one dtype (mixing is a ``TypeError``, never a silent cast) and the results
keep it; integer arrays (``ids``, ``targets``, ``lengths``) may have any integer dtype.
Results do not depend on the number of threads. :mod:`rnnx.reference.heads` holds the
same functions in plain NumPy.

:func:`dense_softmax_cross_entropy` is the training step of a dense head with this loss
in one call: the same results as the four functions it fuses, bit for bit.

Validation: the compiled layer checks every argument (types, dtypes, shapes, values,
finiteness), so a call goes to it first; only when it refuses one (TypeError, ValueError,
or MemoryError for a copy too large) do the Python checks here run, to raise the error
they always raised (the first of these checks that fails, else the compiled layer's). A
valid call thus pays for each check once, in C++, and a bad one raises what it did
before.
"""

import operator

import numpy as np

from ._loader import core as _core

_h = _core.heads

__all__ = [
    "dense_forward", "dense_backward", "embedding_forward", "embedding_backward",
    "softmax_cross_entropy", "softmax_cross_entropy_backward", "last_step_forward",
    "last_step_backward", "dense_softmax_cross_entropy",
]

_FLOATS = (np.float32, np.float64)


# ----------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------


def _float(name, a):
    """The dtype of the float array `a` that sets a call's precision."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of dtype float32 or float64, "
                        f"got {type(a).__name__}")
    if a.dtype not in _FLOATS:
        raise TypeError(f"{name} must have dtype float32 or float64, got {a.dtype}")
    return a.dtype


def _like(name, a, dtype, first):
    """`a` must be an ndarray of `dtype`, the dtype of the argument `first`."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy.ndarray of dtype {dtype}, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"{name} must have dtype {dtype} like {first}, got {a.dtype} "
                        "(mixed dtypes are not converted silently)")


def _shape(name, a, shape, dims):
    if a.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {dims} = {tuple(shape)}, got {a.shape}")


def _ints(name, a):
    """`a` as an integer ndarray (lists and tuples are converted; floats and bools are
    refused rather than rounded)."""
    if isinstance(a, (list, tuple)) or np.isscalar(a):
        a = np.asarray(a)
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be an integer numpy.ndarray, got {type(a).__name__}")
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must have an integer dtype, got {a.dtype}")
    return a


def _in_range(name, a, lo, hi, what, keep=None):
    """Raise ValueError naming the first entry of `a` outside lo..hi (where `keep`)."""
    bad = (a < lo) | (a > hi)
    if keep is not None:
        bad &= keep
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        where = f"[{', '.join(map(str, idx))}]" if idx else ""
        raise ValueError(f"{name}{where} = {a[idx]} is outside {what} = {lo}..{hi}")


def _count(name, n):
    """`n` as a positive int (bools refused)."""
    if isinstance(n, (bool, np.bool_)):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        n = operator.index(n)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(n).__name__}") from None
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    if n >= 2 ** 62:
        raise ValueError(f"{name} = {n} is too large (must be < 2**62)")
    return n


def _lengths(lengths, B, T):
    """lengths (B,) with values in 1..T as int64, or None."""
    if lengths is None:
        return None
    lengths = _ints("lengths", lengths)
    _shape("lengths", lengths, (B,), "(B,)")
    _in_range("lengths", lengths, 1, T, "1..T")
    return lengths.astype(np.int64, copy=False)


def _mask(mask, shape):
    """mask as bool of `shape` (bool, or numbers that are all 0 or 1), or None."""
    if mask is None:
        return None
    if isinstance(mask, (list, tuple)):
        mask = np.asarray(mask)
    if not isinstance(mask, np.ndarray):
        raise TypeError(f"mask must be a numpy.ndarray of bool, got {type(mask).__name__}")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"mask must have dtype bool (or hold 0 and 1), got {mask.dtype}")
    _shape("mask", mask, shape, "targets.shape")
    if mask.dtype != bool:
        if not np.isin(mask, (0, 1)).all():
            raise ValueError("mask must hold only 0 and 1 (or False and True)")
        mask = mask != 0
    return mask


def _classes(name, a):
    """(leading shape, V) of logits or probs (..., V)."""
    if a.ndim < 1 or 0 in a.shape:
        raise ValueError(f"{name} must have shape (..., V), e.g. (T, B, V), and not be "
                         f"empty, got {a.shape}")
    return a.shape[:-1], a.shape[-1]


def _targets(targets, lead, V, mask, first):
    targets = _ints("targets", targets)
    _shape("targets", targets, lead, f"{first}.shape[:-1]")
    _in_range("targets", targets, 0, V - 1, "0..V-1", keep=mask)
    return targets


# ----------------------------------------------------------------------------------
# dense
# ----------------------------------------------------------------------------------


def _dense_shapes(x, weight):
    dt = _float("x", x)
    if x.ndim < 1 or x.shape[-1] == 0:
        raise ValueError(f"x must have shape (..., F) with F >= 1, got {x.shape}")
    F = x.shape[-1]
    _like("weight", weight, dt, "x")
    if weight.ndim != 2 or weight.shape[0] == 0 or weight.shape[1] != F:
        raise ValueError(f"weight must have shape (O, F) = (O, {F}) with O >= 1 for x of "
                         f"shape {x.shape}, got {weight.shape}")
    return dt, weight.shape[0]


def _check_dense(x, weight, bias):
    dt, O = _dense_shapes(x, weight)
    if bias is not None:
        _like("bias", bias, dt, "x")
        _shape("bias", bias, (O,), "(O,)")


def dense_forward(x, weight, bias=None):
    """A linear layer on the last axis: ``y = x weightᵀ + bias`` (PyTorch's ``nn.Linear``).

    Parameters
    ----------
    x : ndarray of shape (..., F)
        Any leading shape: ``(T, B, F)`` for every step of a sequence, ``(B, F)`` for
        one vector per example.
    weight : ndarray of shape (O, F)
    bias : ndarray of shape (O,), optional

    Returns
    -------
    y : ndarray of shape (..., O)

    Raises
    ------
    TypeError
        If an array is not float32/float64 or the dtypes differ.
    ValueError
        If a shape does not fit, or an array holds NaN or infinity.

    Notes
    -----
    ``y[..., o] = Σ_f x[..., f] weight[o, f] + bias[o]``: the leading dimensions are rows
    of one matrix product.

    Examples
    --------
    >>> x = np.ones((3, 2, 4))
    >>> dense_forward(x, np.full((5, 4), 0.5), np.arange(5.0))[0, 0]
    array([2., 3., 4., 5., 6.])
    """
    try:  # the compiled layer checks everything below (see the module docstring)
        return _h.dense_forward(x, weight, bias)
    except (TypeError, ValueError, MemoryError):
        pass
    _check_dense(x, weight, bias)
    return _h.dense_forward(x, weight, bias)


def dense_backward(dy, x, weight, bias_present=True):
    """Gradients of :func:`dense_forward`.

    Parameters
    ----------
    dy : ndarray of shape (..., O)
        Gradient of the loss with respect to ``y``.
    x, weight : ndarray
        As given to :func:`dense_forward`: ``(..., F)`` and ``(O, F)``.
    bias_present : bool, default True
        Whether the forward had a bias (else ``dbias`` is None).

    Returns
    -------
    dx : ndarray of shape (..., F)
    dweight : ndarray of shape (O, F)
    dbias : ndarray of shape (O,) or None

    Raises
    ------
    TypeError
        If an array is not float32/float64, the dtypes differ, or `bias_present` is
        not a bool.
    ValueError
        If a shape does not fit, or an array holds NaN or infinity.

    Notes
    -----
    With every leading index as a row ``n``: ``dx = dy weight``,
    ``dweight = Σ_n dy[n]ᵀ x[n]`` and ``dbias = Σ_n dy[n]``.
    """
    # pybind11 would take 1 or None as a bool: this check stays in Python, first
    if bias_present is not True and bias_present is not False:
        if not isinstance(bias_present, np.bool_):
            dt, O = _dense_shapes(x, weight)
            _like("dy", dy, dt, "x")
            _shape("dy", dy, x.shape[:-1] + (O,), "(..., O)")
            raise TypeError(f"bias_present must be a bool, got {type(bias_present).__name__}")
        bias_present = bool(bias_present)
    try:  # the compiled layer checks the arrays (see the module docstring)
        return _h.dense_backward(dy, x, weight, bias_present)
    except (TypeError, ValueError, MemoryError):
        pass
    dt, O = _dense_shapes(x, weight)
    _like("dy", dy, dt, "x")
    _shape("dy", dy, x.shape[:-1] + (O,), "(..., O)")
    return _h.dense_backward(dy, x, weight, bias_present)


# ----------------------------------------------------------------------------------
# embedding
# ----------------------------------------------------------------------------------


def embedding_forward(ids, weight):
    """Look up rows: ``y[...] = weight[ids[...]]`` (PyTorch's ``nn.Embedding``).

    Parameters
    ----------
    ids : ndarray of int, any shape, e.g. (T, B)
        Token ids, each in ``0 .. V-1``; any integer dtype.
    weight : ndarray of shape (V, E)

    Returns
    -------
    y : ndarray of shape (*ids.shape, E)

    Raises
    ------
    TypeError
        If `ids` is not an integer array (floats and bools are refused) or `weight` is
        not float32/float64.
    ValueError
        If an id is outside ``0 .. V-1`` or `weight` is not 2-D or holds NaN/infinity.

    Notes
    -----
    The same as ``onehot(ids, V) @ weight``, computed as a gather of rows (no one-hot).

    Examples
    --------
    >>> w = np.arange(6.0).reshape(3, 2)
    >>> embedding_forward(np.array([[2], [0]]), w)
    array([[[4., 5.]],
    <BLANKLINE>
           [[0., 1.]]])
    """
    _float("weight", weight)
    if weight.ndim != 2 or 0 in weight.shape:
        raise ValueError(f"weight must have shape (V, E) with V, E >= 1, got {weight.shape}")
    ids = _ints("ids", ids)
    _in_range("ids", ids, 0, weight.shape[0] - 1, "0..V-1")
    return _h.embedding_forward(ids, weight)


def embedding_backward(dy, ids, V):
    """Gradient of :func:`embedding_forward` with respect to its weight (a scatter-add).

    Parameters
    ----------
    dy : ndarray of shape (*ids.shape, E)
        Gradient of the loss with respect to ``y``.
    ids : ndarray of int
        As given to :func:`embedding_forward`.
    V : int
        Rows of the weight (the vocabulary size).

    Returns
    -------
    dweight : ndarray of shape (V, E)

    Raises
    ------
    TypeError
        If `dy` is not float32/float64, `ids` not an integer array or `V` not an int.
    ValueError
        If `dy` does not have shape ``ids.shape + (E,)``, an id is outside ``0 .. V-1``,
        or `dy` holds NaN or infinity.

    Notes
    -----
    ``dweight[v] = Σ_{n : ids[n] = v} dy[n]`` (``onehot(ids)ᵀ dy``), the rows added in
    order of position whatever the number of threads (as ``np.add.at``). Rows of ids that
    do not occur are 0.
    """
    _float("dy", dy)
    ids = _ints("ids", ids)
    V = _count("V", V)
    if dy.shape[:-1] != ids.shape or dy.ndim != ids.ndim + 1 or dy.shape[-1] == 0:
        raise ValueError(f"dy must have shape ids.shape + (E,) = {ids.shape} + (E,) with "
                         f"E >= 1, got {dy.shape}")
    _in_range("ids", ids, 0, V - 1, "0..V-1")
    return _h.embedding_backward(dy, ids, V)


# ----------------------------------------------------------------------------------
# softmax cross-entropy
# ----------------------------------------------------------------------------------


def softmax_cross_entropy(logits, targets, mask=None):
    """Softmax over the last axis and the cross-entropy, summed over kept positions.

    Parameters
    ----------
    logits : ndarray of shape (T, B, V), or any (..., V)
        Unnormalised scores: ``(T, B, V)`` for every step of a sequence, ``(B, V)`` for
        one prediction per example.
    targets : ndarray of int, shape (T, B) (``logits.shape[:-1]``)
        The correct class of every position, in ``0 .. V-1`` (at masked positions it
        is not read and may be anything, e.g. -1 for padding).
    mask : ndarray of bool (or 0/1), shape (T, B), optional
        True where a position counts; None for all.

    Returns
    -------
    loss : float32 or float64 scalar (the dtype of `logits`)
        ``Σ_{kept (t, b)} -log probs[t, b, targets[t, b]]``: a **sum**, not a mean;
        divide by the number of kept positions (``mask.sum()``) for the mean.
    probs : ndarray of shape (T, B, V)
        The softmax at every position (masked ones too); what
        :func:`softmax_cross_entropy_backward` needs.

    Raises
    ------
    TypeError
        If `logits` is not float32/float64, `targets` not an integer array, or `mask`
        neither bool nor numeric.
    ValueError
        If a shape does not fit, a kept target is outside ``0 .. V-1``, `mask` holds
        values other than 0 and 1, or `logits` holds NaN or infinity.

    Notes
    -----
    Per position, with ``m = max_j l_j``::

        probs_j = exp(l_j - m) / Σ_k exp(l_k - m)
        -log probs_t = log Σ_k exp(l_k - m) - (l_t - m)

    Subtracting ``m`` keeps every ``exp`` at most 1 (logits of ±1e4 are fine), and the
    loss never takes the log of an underflowed probability. The per-position losses are
    added in order (in float64, then rounded to the dtype of `logits`).

    Examples
    --------
    >>> logits = np.zeros((1, 2, 4))
    >>> loss, probs = softmax_cross_entropy(logits, np.array([[1, 3]]))
    >>> round(float(loss), 6), probs[0, 0]
    (2.772589, array([0.25, 0.25, 0.25, 0.25]))
    """
    try:  # the compiled layer checks everything below (see the module docstring)
        loss, probs = _h.softmax_cross_entropy(logits, targets, mask)
        return loss[()], probs
    except (TypeError, ValueError, MemoryError):
        pass
    _float("logits", logits)
    lead, V = _classes("logits", logits)
    mask = _mask(mask, lead)
    targets = _targets(targets, lead, V, mask, "logits")
    loss, probs = _h.softmax_cross_entropy(logits, targets, mask)
    return loss[()], probs


def softmax_cross_entropy_backward(probs, targets, mask=None):
    """Gradient of :func:`softmax_cross_entropy`'s loss with respect to the logits.

    Parameters
    ----------
    probs : ndarray of shape (T, B, V), or any (..., V)
        The softmax that :func:`softmax_cross_entropy` returned.
    targets, mask
        As given to it.

    Returns
    -------
    dlogits : ndarray of shape (T, B, V)

    Raises
    ------
    TypeError, ValueError
        As :func:`softmax_cross_entropy`, for `probs` in place of `logits`.

    Notes
    -----
    ``dlogits[t, b] = (probs[t, b] - onehot(targets[t, b])) * mask[t, b]``: the softmax's
    Jacobian and the log's derivative fold into this difference, computed in one pass
    (no one-hot is formed). It is the gradient of the summed loss; scale it by
    ``1 / mask.sum()`` for the mean.
    """
    try:  # the compiled layer checks everything below (see the module docstring)
        return _h.softmax_cross_entropy_backward(probs, targets, mask)
    except (TypeError, ValueError, MemoryError):
        pass
    _float("probs", probs)
    lead, V = _classes("probs", probs)
    mask = _mask(mask, lead)
    targets = _targets(targets, lead, V, mask, "probs")
    return _h.softmax_cross_entropy_backward(probs, targets, mask)


# ----------------------------------------------------------------------------------
# last-step pooling
# ----------------------------------------------------------------------------------


def last_step_forward(y, lengths=None):
    """Each example's output at its own last step (many-to-one pooling).

    Parameters
    ----------
    y : ndarray of shape (T, B, F)
        Outputs of every step, e.g. the states ``h`` of an RNN.
    lengths : ndarray of int, shape (B,), optional
        Length of every example, each in ``1 .. T`` (any order); None for all ``T``.

    Returns
    -------
    out : ndarray of shape (B, F)

    Raises
    ------
    TypeError
        If `y` is not float32/float64 or `lengths` not an integer array.
    ValueError
        If `y` is not 3-D and non-empty, `lengths` does not have shape ``(B,)``, a length
        is outside ``1 .. T``, or `y` holds NaN or infinity.

    Notes
    -----
    ``out[b] = y[lengths[b] - 1, b]`` (``y[T - 1, b]`` without lengths). With the
    ``lengths`` of :mod:`rnnx.kernels`, where padded steps carry the state, this equals
    ``h[T - 1]``; for outputs of another layer it picks the right step.

    Examples
    --------
    >>> y = np.arange(12.0).reshape(3, 2, 2)
    >>> last_step_forward(y, np.array([1, 3]))
    array([[ 0.,  1.],
           [10., 11.]])
    """
    _float("y", y)
    if y.ndim != 3 or 0 in y.shape:
        raise ValueError(f"y must have shape (T, B, F) and not be empty, got {y.shape}")
    T, B, _ = y.shape
    return _h.last_step_forward(y, _lengths(lengths, B, T))


def last_step_backward(dout, lengths, T):
    """Gradient of :func:`last_step_forward`.

    Parameters
    ----------
    dout : ndarray of shape (B, F)
        Gradient of the loss with respect to ``out``.
    lengths : ndarray of int, shape (B,), or None
        As given to :func:`last_step_forward`.
    T : int
        Steps of its ``y``.

    Returns
    -------
    dy : ndarray of shape (T, B, F)

    Raises
    ------
    TypeError
        If `dout` is not float32/float64, `lengths` not an integer array or `T` not an
        int.
    ValueError
        If `dout` is not 2-D and non-empty, `T` < 1, a length is outside ``1 .. T``, or
        `dout` holds NaN or infinity.

    Notes
    -----
    ``dy[lengths[b] - 1, b] = dout[b]`` and 0 at every other step.
    """
    _float("dout", dout)
    if dout.ndim != 2 or 0 in dout.shape:
        raise ValueError(f"dout must have shape (B, F) and not be empty, got {dout.shape}")
    T = _count("T", T)
    return _h.last_step_backward(dout, _lengths(lengths, dout.shape[0], T), T)


# ----------------------------------------------------------------------------------
# dense head + softmax cross-entropy, fused
# ----------------------------------------------------------------------------------


def dense_softmax_cross_entropy(x, weight, bias, targets, mask=None):
    """A dense head's loss and every gradient in one call: the training step of
    :func:`dense_forward`, :func:`softmax_cross_entropy` and their backwards.

    Parameters
    ----------
    x : ndarray of shape (..., F), e.g. (T, B, F), not empty
        The head's input, e.g. the states of an RNN.
    weight : ndarray of shape (O, F)
    bias : ndarray of shape (O,) or None
    targets : ndarray of int, shape ``x.shape[:-1]``
        The correct class of every position, in ``0 .. O-1`` (at masked positions it
        is not read).
    mask : ndarray of bool (or 0/1), shape ``x.shape[:-1]``, optional
        True where a position counts; None for all.

    Returns
    -------
    loss : float32 or float64 scalar (the dtype of `x`)
        The summed cross-entropy, as :func:`softmax_cross_entropy` returns it.
    dx : ndarray of shape (..., F)
    dweight : ndarray of shape (O, F)
    dbias : ndarray of shape (O,) or None (None when `bias` is None)

    Raises
    ------
    TypeError
        If an array is not float32/float64, the dtypes differ, `targets` is not an
        integer array, or `mask` neither bool nor numeric.
    ValueError
        If a shape does not fit, `x` is empty, a kept target is outside ``0 .. O-1``,
        `mask` holds values other than 0 and 1, an array holds NaN or infinity, or a
        logit overflows to infinity.

    Notes
    -----
    The same numbers, bit for bit, as::

        logits = dense_forward(x, weight, bias)
        loss, probs = softmax_cross_entropy(logits, targets, mask)
        dlogits = softmax_cross_entropy_backward(probs, targets, mask)
        dx, dweight, dbias = dense_backward(dlogits, x, weight, bias is not None)

    without the intermediate arrays or the three calls between them (for small heads
    those calls cost more than the arithmetic). The logits and probabilities are not
    returned; call the unfused functions where they are needed.

    Examples
    --------
    >>> x = np.ones((2, 3, 4))
    >>> loss, dx, dw, db = dense_softmax_cross_entropy(
    ...     x, np.zeros((5, 4)), np.zeros(5), np.zeros((2, 3), dtype=int))
    >>> round(float(loss), 6), dx.shape, dw.shape, db
    (9.656627, (2, 3, 4), (5, 4), array([-4.8,  1.2,  1.2,  1.2,  1.2]))
    """
    try:  # the compiled layer checks everything below (see the module docstring)
        loss, dx, dweight, dbias = _h.dense_softmax_cross_entropy(x, weight, bias, targets, mask)
        return loss[()], dx, dweight, dbias
    except (TypeError, ValueError, MemoryError):
        pass
    _check_dense(x, weight, bias)
    lead = x.shape[:-1]
    if 0 in lead:
        raise ValueError(f"x must not be empty (a loss needs at least one row), got shape "
                         f"{x.shape}")
    mask = _mask(mask, lead)
    targets = _targets(targets, lead, weight.shape[0], mask, "x")
    loss, dx, dweight, dbias = _h.dense_softmax_cross_entropy(x, weight, bias, targets, mask)
    return loss[()], dx, dweight, dbias
