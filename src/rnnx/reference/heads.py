"""Heads and losses in plain NumPy (the math of ``src/cpp/rnnx/heads.cpp``).

The layers around a recurrent kernel that give an RNN model its shape:

* ``embedding``: token ids in, vectors out (the input of a language model);
* ``dense``: a linear layer on every step or on one vector (``y = x Wᵀ + b``);
* ``last_step``: each example's output at its own last step (many-to-one);
* ``softmax_cross_entropy``: the loss of a classifier or a language model;
* ``dense_softmax_cross_entropy``: a dense head's loss and all its gradients at once.

Each has a forward and a backward; backward takes the gradient of the loss with respect
to the forward's output (``dy``, ``dout``) and returns those with respect to its inputs.

Conventions: time-major ``(T, B, ...)`` sequences; weights as PyTorch's ``nn.Linear``
(``weight (O, F)``) and ``nn.Embedding`` (``weight (V, E)``); float arrays of one call
share one dtype, which the results keep. Dimension alphabet: ``T`` time, ``B`` batch,
``F`` features in, ``O`` features out, ``V`` vocabulary / classes, ``E`` embedding width.

These functions check nothing beyond what NumPy itself refuses; :mod:`rnnx.heads`
validates its arguments.
"""

import numpy as np

__all__ = [
    "dense_forward", "dense_backward", "embedding_forward", "embedding_backward",
    "softmax_cross_entropy", "softmax_cross_entropy_backward", "last_step_forward",
    "last_step_backward", "dense_softmax_cross_entropy",
]


def dense_forward(x, weight, bias=None):
    """``y = x @ weight.T + bias``: x (..., F), weight (O, F), bias (O,) -> y (..., O)."""
    y = x @ weight.T
    return y if bias is None else y + bias


def dense_backward(dy, x, weight, bias_present=True):
    """Gradients of :func:`dense_forward`: ``dx = dy W``, ``dW = dyᵀ x``, ``db = Σ dy``.

    All leading dimensions count as rows: ``dW`` and ``db`` sum over them.
    Returns ``(dx (..., F), dweight (O, F), dbias (O,) or None)``.
    """
    O, F = weight.shape
    dy2, x2 = dy.reshape(-1, O), x.reshape(-1, F)
    dx = dy @ weight
    dweight = dy2.T @ x2
    dbias = dy2.sum(axis=0) if bias_present else None
    return dx, dweight, dbias


def embedding_forward(ids, weight):
    """``y[...] = weight[ids[...]]``: ids (...) in [0, V), weight (V, E) -> y (..., E).

    The same as ``onehot(ids) @ weight``, without forming the one-hot matrix.
    """
    return weight[ids]


def embedding_backward(dy, ids, V):
    """Gradient of :func:`embedding_forward`: row ``v`` of ``dweight`` is the sum of the
    rows of ``dy`` whose id is ``v`` (``onehot(ids)ᵀ @ dy``), added in order of position.

    dy (..., E), ids (...) -> dweight (V, E).
    """
    E = dy.shape[-1]
    dweight = np.zeros((V, E), dtype=dy.dtype)
    np.add.at(dweight, ids.ravel(), dy.reshape(-1, E))
    return dweight


def _keep(mask, shape):
    """The mask as bool (True where a position counts); all True for None."""
    return np.ones(shape, dtype=bool) if mask is None else np.asarray(mask).astype(bool)


def softmax_cross_entropy(logits, targets, mask=None):
    """Summed softmax cross-entropy and the softmax.

    logits (..., V), e.g. (T, B, V); targets (...) in [0, V); mask (...) or None.
    Returns ``(loss, probs)``: ``loss = Σ_{kept} -log softmax(logits)[target]`` (a sum,
    not a mean) in the dtype of ``logits``, and ``probs (..., V)`` at every position.
    The row maximum is subtracted before ``exp`` (no overflow), and ``-log p`` is formed
    as ``log Σ exp(l - m) - (l_target - m)`` (never the log of an underflowed ``p``).
    Targets at masked positions are not read.
    """
    keep = _keep(mask, targets.shape)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(shifted)
    s = e.sum(axis=-1, keepdims=True)
    probs = e / s
    t = np.where(keep, targets, 0)  # masked targets may be anything (e.g. -1)
    nll = np.log(s[..., 0]) - np.take_along_axis(shifted, t[..., None], axis=-1)[..., 0]
    loss = np.where(keep, nll, 0).sum()
    return logits.dtype.type(loss), probs


def softmax_cross_entropy_backward(probs, targets, mask=None):
    """``dlogits = (probs - onehot(targets)) * mask``: the gradient of the summed loss of
    :func:`softmax_cross_entropy` with respect to its logits. probs (..., V)."""
    keep = _keep(mask, targets.shape)
    dlogits = probs.copy()
    idx = np.nonzero(keep)
    dlogits[idx + (targets[idx],)] -= 1
    dlogits[~keep] = 0
    return dlogits


def _last(lengths, T, B):
    """Each example's last valid step: ``lengths - 1``, or ``T - 1`` for all."""
    return np.full(B, T - 1) if lengths is None else np.asarray(lengths) - 1


def last_step_forward(y, lengths=None):
    """``out[b] = y[lengths[b] - 1, b]`` (``y[T-1, b]`` without lengths): y (T, B, F) ->
    out (B, F), each example's output at its own last step."""
    T, B, _ = y.shape
    return y[_last(lengths, T, B), np.arange(B)]


def last_step_backward(dout, lengths, T):
    """Gradient of :func:`last_step_forward`: dout (B, F) -> dy (T, B, F), ``dout[b]`` at
    step ``lengths[b] - 1`` of example ``b`` and 0 at every other step."""
    B, F = dout.shape
    dy = np.zeros((T, B, F), dtype=dout.dtype)
    dy[_last(lengths, T, B), np.arange(B)] = dout
    return dy


def dense_softmax_cross_entropy(x, weight, bias, targets, mask=None):
    """A dense head's summed cross-entropy and every gradient, in one call: the forward
    and backward of :func:`dense_forward` and :func:`softmax_cross_entropy` chained.

    x (..., F), weight (O, F), bias (O,) or None, targets (...) in [0, O), mask (...) or
    None. Returns ``(loss, dx (..., F), dweight (O, F), dbias (O,) or None)``.
    """
    logits = dense_forward(x, weight, bias)
    loss, probs = softmax_cross_entropy(logits, targets, mask)
    dlogits = softmax_cross_entropy_backward(probs, targets, mask)
    dx, dweight, dbias = dense_backward(dlogits, x, weight, bias is not None)
    return loss, dx, dweight, dbias
