"""A sequence tagger: a recurrent layer and a softmax classifier at every step.

The many-to-many shape with ``T_x = T_y`` (e.g. a tag per word for named entities). One
single-layer, one-direction training step (forward, loss and backward through time)
runs as one C++ call; see :class:`Tagger`.
"""

import numbers

import numpy as np

from . import heads as _heads
from ._aligned import aligned_copy
from ._loader import core as _core
from .layers import GRU, LSTM, RNN

__all__ = ["Tagger"]

_step = _core.models.tagger_step


class Tagger:
    """Tags every step of a sequence: ``layer``, then a dense softmax head per step.

    Parameters
    ----------
    layer : rnnx.RNN, rnnx.GRU or rnnx.LSTM
        The recurrent layer, any number of layers, one or two directions. Its output
        ``y`` has ``F = D * hidden_size`` features (``D = 2`` when bidirectional).
    num_classes : int
        ``C``, the number of tags.
    bias : bool, default True
        Whether the head has a bias.
    seed : int, optional
        Seeds the head's initial weights: uniform in ``±1/sqrt(F)`` (as ``nn.Linear``),
        the bias zero.

    Attributes
    ----------
    layer : the recurrent layer (its parameters are its own, see ``layer.state_dict()``)
    head_weight : ndarray of shape (C, F)
    head_bias : ndarray of shape (C,), or None

    Notes
    -----
    For ``x (T, B, input_size)`` (or integer ids ``(T, B)``, see ``layer.forward``) and
    ``targets (T, B)`` in ``0 .. C-1``::

        y = layer(x)                               (T, B, F), from a zero state
        logits = y head_weightᵀ + head_bias        (T, B, C)
        loss = Σ_{t, b : t < lengths[b]} -log softmax(logits[t, b])[targets[t, b]]

    The head's arrays, as the layer's, start on a 64-byte boundary, where the kernels
    read them in place. An array assigned in their place works as well, but unless it is
    C-contiguous and 64-byte aligned it is copied at every call: to set values, write
    into the arrays (``tagger.head_weight[...] = w``).

    The loss is a sum over the valid steps (divide by their number for a mean), as
    :func:`rnnx.heads.softmax_cross_entropy`'s. Targets of padded steps are not read.

    A layer with one layer and one direction runs the whole step in one C++ call
    (``rnnx.tagger`` → ``_core.models.tagger_step``): no Python between the layer, the
    head and the loss, one workspace for the layer's buffers, and no gradient for x (the
    input is data). Other layers go through ``layer.forward``,
    :func:`rnnx.heads.dense_softmax_cross_entropy` and ``layer.backward``. Both give the
    same loss and gradients, bit for bit (tested): the one call runs the same kernels in
    the same order. Its NumPy twin is :func:`rnnx.reference.tagger.tagger_loss_and_grads`.
    Dropout between stacked layers applies in :meth:`loss_and_grads` when the layer is
    in training mode; :meth:`loss`, :meth:`forward` and :meth:`predict` run without it.

    Examples
    --------
    >>> import numpy as np, rnnx
    >>> tagger = rnnx.Tagger(rnnx.GRU(3, 5, seed=0), num_classes=2, seed=0)
    >>> x = np.random.default_rng(0).standard_normal((4, 10, 3)).astype(np.float32)
    >>> tags = np.zeros((4, 10), dtype=np.int64)
    >>> loss, grads = tagger.loss_and_grads(x, tags)
    >>> sorted(grads) == sorted(tagger.parameters())
    True
    >>> tagger.predict(x).shape
    (4, 10)
    """

    def __init__(self, layer, num_classes, bias=True, seed=None):
        if not isinstance(layer, (RNN, GRU, LSTM)):
            raise TypeError(f"layer must be an rnnx.RNN, rnnx.GRU or rnnx.LSTM, got "
                            f"{type(layer).__name__}")
        if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) \
                or num_classes < 1:
            raise ValueError(f"num_classes must be an int >= 1, got {num_classes!r}")
        if not isinstance(bias, (bool, np.bool_)):
            raise TypeError(f"bias must be True or False, got {bias!r}")
        self.layer = layer
        self.num_classes = int(num_classes)
        F = layer.hidden_size * (2 if layer.bidirectional else 1)
        k = 1.0 / np.sqrt(F)
        rng = np.random.default_rng(seed)
        # aligned as the kernels take them: no copy per call (rnnx._aligned)
        self.head_weight = aligned_copy(rng.uniform(-k, k, (self.num_classes, F)), layer.dtype)
        self.head_bias = aligned_copy(np.zeros(self.num_classes), layer.dtype) if bias else None
        # The one-call path: the layer's parameter names (w_ih, w_hh, b_ih, b_hh,
        # peephole), and the keys of the gradients it returns (dw_ih, dw_hh, db_ih, db_hh,
        # dpeephole, dhead_w, dhead_b; the absent ones left out).
        self._fused = layer.num_layers == 1 and not layer.bidirectional
        names = layer._names(0, 0)
        self._param_names = tuple(names[base] for base in layer._BASES)
        self._grad_names = tuple(["rnn." + n for n in self._param_names]
                                 + ["head.weight", "head.bias"])

    # -- parameters -------------------------------------------------------------------

    def parameters(self):
        """Every parameter array, by name (the model's own arrays, updated in place by an
        optimizer): ``rnn.<layer key>`` for each of the layer's, then ``head.weight`` and
        ``head.bias`` (when the head has a bias)."""
        out = {f"rnn.{k}": v for k, v in self.layer.state_dict().items()}
        out["head.weight"] = self.head_weight
        if self.head_bias is not None:
            out["head.bias"] = self.head_bias
        return out

    # -- the model --------------------------------------------------------------------

    def loss_and_grads(self, x, targets, lengths=None):
        """The summed cross-entropy of one batch and the gradient of every parameter.

        Parameters
        ----------
        x : ndarray of shape (T, B, input_size), or of int, shape (T, B) (index input)
        targets : ndarray of int, shape (T, B)
            The tag of every step, in ``0 .. C-1`` (padded steps are not read).
        lengths : ndarray of int, shape (B,), optional
            Valid steps of each sequence, in ``1 .. T``.

        Returns
        -------
        loss : float
        grads : dict keyed like :meth:`parameters`

        Raises
        ------
        TypeError, ValueError
            For a bad ``x``, ``targets`` or ``lengths`` (naming it), or parameters of the
            wrong dtype or shape.
        """
        if self._fused:
            # The one call, made here and in loss (the same lines: a shared helper would be
            # a Python frame more per call, 5% of a call at W_tiny's sizes, callgrind).
            layer = self.layer
            try:
                kind, nonlinearity, reset_after, simplified = layer._cell_args()
                return _step(x, layer._params, self._param_names, self.head_weight,
                             self.head_bias, targets, lengths, kind, nonlinearity,
                             reset_after, simplified, self._grad_names)
            except (TypeError, ValueError) as e:
                error = e
            return self._refused(x, targets, lengths, self._grad_names, error)
        x, targets, lengths, mask = self._checked(x, targets, lengths)
        self._check_head()
        try:
            y, _, cache = self.layer.forward(x, lengths=lengths)
            loss, dy, dw, db = _heads.dense_softmax_cross_entropy(
                y, self.head_weight, self.head_bias, targets, mask)
        except ValueError as e:
            self._reword(e)
            raise
        _, _, rgrads = self.layer.backward(dy, cache)
        grads = {f"rnn.{k}": v for k, v in rgrads.items()}
        grads["head.weight"] = dw
        if db is not None:
            grads["head.bias"] = db
        return float(loss), grads

    def loss(self, x, targets, lengths=None):
        """The summed cross-entropy of one batch (no gradients, no dropout); arguments
        as :meth:`loss_and_grads`."""
        if self._fused:  # the one call, as in loss_and_grads
            layer = self.layer
            try:
                kind, nonlinearity, reset_after, simplified = layer._cell_args()
                return _step(x, layer._params, self._param_names, self.head_weight,
                             self.head_bias, targets, lengths, kind, nonlinearity,
                             reset_after, simplified, None)
            except (TypeError, ValueError) as e:
                error = e
            return self._refused(x, targets, lengths, None, error)
        x, targets, lengths, mask = self._checked(x, targets, lengths)
        self._check_head()
        try:
            logits = self._logits(x, lengths)
            return float(_heads.softmax_cross_entropy(logits, targets, mask)[0])
        except ValueError as e:
            self._reword(e)
            raise

    def forward(self, x, lengths=None):
        """The tag scores of every step (no dropout).

        Returns
        -------
        logits : ndarray of shape (T, B, C)
            ``softmax`` over the last axis gives the tag probabilities; padded steps
            hold the head's bias.
        """
        return self._logits(x, lengths)

    def predict(self, x, lengths=None):
        """The most likely tag of every step, ints of shape (T, B) (-1 at padded steps
        when ``lengths`` is given)."""
        logits = self._logits(x, lengths)
        tags = logits.argmax(axis=-1)
        if lengths is not None:
            T = tags.shape[0]
            tags[np.arange(T)[:, None] >= np.asarray(lengths)[None, :]] = -1
        return tags

    # -- helpers ----------------------------------------------------------------------

    def _logits(self, x, lengths):
        was = self.layer.training
        self.layer.eval()
        try:
            y, _, _ = self.layer.forward(x, lengths=lengths)
        finally:
            self.layer.train(was)
        return _heads.dense_forward(y, self.head_weight, self.head_bias)

    def _refused(self, x, targets, lengths, grad_names, error):
        """After the one call (``_core.models.tagger_step``, which looks up the layer's
        parameters by name and builds the gradients' dict itself) refused with `error`:
        lengths given as a list or tuple are taken as an array and the call made again;
        any other refusal is raised in the model's words (the checks below name the
        argument). Called outside the except clause, so the first refusal is not chained
        to what is raised here."""
        if isinstance(lengths, (list, tuple)):
            again = self.loss if grad_names is None else self.loss_and_grads
            return again(x, targets, np.asarray(lengths))
        self._checked(x, targets, lengths)
        self._check_head()
        self._reword(error)
        raise error

    def _reword(self, e):
        """Raise the error `e` of a kernel in the model's words, where they differ."""
        for name, p in self.layer.state_dict().items():
            if not np.isfinite(p).all():
                raise ValueError(f"the layer's parameter {name} contains NaN or infinity") from e
        if str(e).startswith("logits"):  # the head kernel's words for its input
            raise ValueError("logits = h head_weightᵀ + head_bias contain NaN or infinity "
                             "(the values overflow)") from e

    def _checked(self, x, targets, lengths):
        """(x, targets as int64, lengths, mask or None), or the error naming the argument."""
        layer = self.layer
        x = layer._check_x(x)
        T, B = x.shape[:2]
        lengths = layer._check_lengths(lengths, T, B)
        if not isinstance(targets, np.ndarray):
            raise TypeError(f"targets must be a numpy.ndarray of integers, got "
                            f"{type(targets).__name__}")
        if targets.dtype.kind not in "iu":
            raise TypeError(f"targets must have an integer dtype, got {targets.dtype}")
        if targets.shape != (T, B):
            raise ValueError(f"targets must have shape (T, B) = {(T, B)} like x, got "
                             f"{targets.shape}")
        mask = None if lengths is None else np.arange(T)[:, None] < lengths[None, :]
        valid = targets if mask is None else np.where(mask, targets, 0)
        bad = np.argwhere((valid < 0) | (valid >= self.num_classes))
        if bad.size:
            t, b = (int(i) for i in bad[0])
            raise ValueError(f"targets[{t}, {b}] = {targets[t, b]} is outside 0..C-1 = "
                             f"0..{self.num_classes - 1}")
        return x, targets.astype(np.int64, copy=False), lengths, mask

    def _check_head(self):
        want = (self.num_classes, self.layer.hidden_size * (2 if self.layer.bidirectional
                                                             else 1))
        for name, a, shape in (("head_weight", self.head_weight, want),
                               ("head_bias", self.head_bias, want[:1])):
            if name == "head_bias" and a is None:
                continue
            if not isinstance(a, np.ndarray) or a.dtype != self.layer.dtype:
                raise TypeError(f"{name} must be a numpy.ndarray of the layer's dtype "
                                f"{self.layer.dtype}")
            if a.shape != shape:
                raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
            if not np.isfinite(a).all():
                raise ValueError(f"{name} contains NaN or infinity")

    def __repr__(self):
        return (f"Tagger({self.layer!r}, num_classes={self.num_classes}, "
                f"bias={self.head_bias is not None})")
