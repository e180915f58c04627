"""The tagging model's step (``rnnx.Tagger`` with one layer, one direction) in NumPy.

One recurrent layer from a zero state, a dense softmax head at every step, and the
summed cross-entropy of the valid steps::

    h = layer(x)                              (T, B, H)
    logits = h head_weightᵀ + head_bias       (T, B, C)
    loss = Σ_{t, b : t < lengths[b]} -log softmax(logits[t, b])[targets[t, b]]

then every gradient by backpropagation through the head and through time. It chains
the reference kernels (:mod:`.kernels`, or :mod:`.masking` for ``lengths``) and heads
(:mod:`.heads`) exactly as the C++ step chains the compiled ones.
"""

import numpy as np

from . import heads, kernels, masking

__all__ = ["tagger_loss_and_grads"]


def tagger_loss_and_grads(x, targets, w_ih, w_hh, b_ih, b_hh, head_weight, head_bias,
                          cell="lstm", nonlinearity="tanh", reset_after=True,
                          simplified=False, peephole=None, lengths=None):
    """The loss and the gradients of one batch.

    Parameters
    ----------
    x : ndarray, shape (T, B, D), or of int, shape (T, B)
        Inputs; integers stand for one-hot rows of length ``D = w_ih.shape[1]``.
    targets : ndarray of int, shape (T, B)
        Tags in ``0 .. C-1`` (those of padded steps are not read).
    w_ih, w_hh, b_ih, b_hh : ndarray
        The layer's parameters in PyTorch's layout (gates stacked: ``(G*H, D)``,
        ``(G*H, H)``, ``(G*H,)``); the biases may be None (both).
    head_weight : ndarray, shape (C, H)
    head_bias : ndarray, shape (C,), or None
    cell : {"rnn", "gru", "lstm"}
    nonlinearity, reset_after, simplified, peephole
        The cell's options (as the layers take them; ``peephole`` ``(3H,)`` or None;
        not with ``lengths``, which the masked LSTM reference does not take).
    lengths : ndarray of int, shape (B,), optional

    Returns
    -------
    loss : float
    grads : dict
        ``weight_ih``, ``weight_hh``, ``bias_ih``, ``bias_hh`` (with biases),
        ``weight_peephole`` (with peepholes), ``head.weight``, ``head.bias`` (with a head
        bias).
    """
    T, B = targets.shape
    H = w_hh.shape[1]
    if np.asarray(x).dtype.kind in "iu":  # index input: the one-hot rows it stands for
        x = np.eye(w_ih.shape[1], dtype=w_ih.dtype)[x]
    h0 = np.zeros((B, H), dtype=w_ih.dtype)
    bias = None if b_ih is None else b_ih + b_hh
    k = kernels if lengths is None else masking
    extra = {} if lengths is None else {"lengths": lengths}
    if peephole is not None:
        if lengths is not None:
            raise ValueError("the masked reference LSTM has no peepholes")
        extra["peephole"] = peephole

    if cell == "rnn":
        h = k.rnn_forward(x, h0, w_ih, w_hh, bias, nonlinearity, **extra)
    elif cell == "gru":
        h, gates, aux = k.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, reset_after, simplified,
                                      **extra)
    else:
        h, c, gates = k.lstm_forward(x, h0, h0, w_ih, w_hh, bias, **extra)

    mask = None if lengths is None else masking.step_mask(lengths, T, B)
    y = h if mask is None else h * mask[:, :, None]
    loss, dy, dhead_w, dhead_b = heads.dense_softmax_cross_entropy(y, head_weight, head_bias,
                                                                   targets, mask)
    if cell == "rnn":
        _, _, dw_ih, dw_hh, db = k.rnn_backward(dy, x, h0, h, w_ih, w_hh, nonlinearity,
                                                **extra)
        db_ih = db_hh = db
    elif cell == "gru":
        _, _, dw_ih, dw_hh, db_ih, db_hh = k.gru_backward(dy, x, h0, h, gates, aux, w_ih, w_hh,
                                                          reset_after, simplified, **extra)
    else:
        out = k.lstm_backward(dy, x, h0, h0, h, c, gates, w_ih, w_hh, **extra)
        dw_ih, dw_hh, db_ih = out[3:6]
        db_hh = db_ih
    grads = {"weight_ih": dw_ih, "weight_hh": dw_hh}
    if b_ih is not None:
        grads.update(bias_ih=db_ih, bias_hh=np.array(db_hh))
    if peephole is not None:
        grads["weight_peephole"] = out[6]
    grads["head.weight"] = dhead_w
    if head_bias is not None:
        grads["head.bias"] = dhead_b
    return float(loss), grads
