"""Recurrent layers: RNN, GRU and LSTM, stacked and bidirectional, with variable lengths.

The classes take PyTorch's constructor arguments and parameter names, and run every
layer-direction's whole sequence in one C++ call (:mod:`rnnx.kernels`); Python only
loops over layers and directions. Forward and backward are explicit (no autograd):

    y, state, cache = layer.forward(x, state=None, lengths=None)
    dx, dstate0, grads = layer.backward(dy, cache, dstate=None)

Shapes: ``x (T, B, input_size)``, ``y (T, B, D*hidden_size)`` with ``D = 2`` when
bidirectional (forward direction first), ``state`` ``h_n (num_layers*D, B, hidden_size)``
(and ``c_n`` for the LSTM), index ``layer*D + direction`` as in PyTorch.

``lengths`` (``(B,)`` ints in ``1..T``, any order) marks the valid steps of each
sequence: ``y`` is zero at padded steps, which receive no gradient; the final state is
the state at each sequence's own last step; the reverse direction runs over each
sequence's valid part only, as PyTorch does with ``pack_padded_sequence``.
"""

import numbers
import os

import numpy as np

from . import kernels as _kernels
from ._aligned import aligned_copy

_core = _kernels._k  # the compiled kernels (the fast path of backward, see _Saved)

__all__ = ["RNN", "GRU", "LSTM", "LayerCache"]


def _reverse_in_length(a, lengths):
    """a (T, B, ...) with each sequence's first lengths[b] steps in reverse order.

    Steps past a sequence's length stay where they are. The map is its own inverse.
    """
    if lengths is None:
        return np.ascontiguousarray(a[::-1])
    T, B = a.shape[:2]
    t = np.arange(T)[:, None]
    idx = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)
    return np.ascontiguousarray(a[idx, np.arange(B)[None, :]])


class LayerCache:
    """What :meth:`backward` needs, and every state and gate of every step, as NumPy arrays.

    Attributes
    ----------
    states : dict
        ``states[(layer, direction)]`` is a dict with ``"h"`` ``(T, B, H)``, ``"gates"``
        ``(T, B, G*H)`` (the activated gates in gate order), and ``"c"`` (LSTM) or
        ``"aux"`` (GRU). Arrays are the kernels' outputs, not copies. For the reverse
        direction they are in processing order: step ``t`` of sequence ``b`` is input
        step ``lengths[b] - 1 - t``.
    lengths : ndarray of shape (B,) or None
    """

    def __init__(self, kind, gate_names, lengths):
        self.kind = kind
        self.gate_names = gate_names
        self.lengths = lengths
        self.states = {}
        self.inputs = {}     # (layer, direction) -> the input the kernel saw
        self.initial = {}    # (layer, direction) -> (h0, c0 or None)
        self.dropout = {}    # layer -> the scaled mask applied to its output
        self.shape = None    # (T, B)
        self._saved = {}     # (layer, direction) -> _Saved

    def gate(self, name, layer=0, direction=0):
        """The ``(T, B, H)`` view of one gate's activations (e.g. ``"f"`` of the LSTM)."""
        if name not in self.gate_names:
            raise KeyError(f"gate must be one of {', '.join(self.gate_names)}, got {name!r}")
        if (layer, direction) not in self.states:
            raise KeyError(f"no layer {layer}, direction {direction} in this cache")
        gates = self.states[(layer, direction)]["gates"]
        H = gates.shape[2] // len(self.gate_names)
        q = self.gate_names.index(name)
        return gates[:, :, q * H:(q + 1) * H]


class _Saved:
    """What forward kept of one layer-direction beyond ``cache.states``: the kernel's
    ``(T+1, B, H)`` output(s) whose rows ``0 .. T-1`` are the states each step started
    from, so that backward hands them to the kernel as views instead of rebuilding them
    (:func:`rnnx.kernels._prev` costs microseconds per call on tiny problems).

    Backward takes this path only while ``cache.states`` and ``cache.initial`` still hold
    the very arrays forward put there and the initial state still has the values forward
    started from (then rows ``0 .. T-1`` are exactly what ``_prev`` would give); otherwise
    it goes through :mod:`rnnx.kernels` as before, with its checks and messages.
    """

    __slots__ = ("arrays", "c_prev", "h_prev", "initial", "start")

    def __init__(self, rec, initial, h_all, c_all=None):
        self.arrays = (rec.get("h"), rec.get("gates"), rec.get("c"), rec.get("aux"))
        self.initial = initial
        h0, c0 = initial
        self.start = (h0.tobytes(), None if c0 is None else c0.tobytes())
        self.h_prev = None if h_all is None else h_all[:-1]
        self.c_prev = None if c_all is None else c_all[:-1]

    def prev(self, cache, key):
        """(h_prev, c_prev or None) as views, or None when the cache was changed."""
        rec, initial, a = cache.states.get(key), cache.initial.get(key), self.arrays
        if (self.h_prev is None or initial is not self.initial or type(rec) is not dict
                or rec.get("h") is not a[0] or rec.get("gates") is not a[1]
                or rec.get("c") is not a[2] or rec.get("aux") is not a[3]):
            return None
        h0, c0 = initial
        if h0.tobytes() != self.start[0] or (c0 is not None and c0.tobytes() != self.start[1]):
            return None
        return self.h_prev, self.c_prev


def _flag(name, value):
    """A yes/no argument: a bool (or 0/1), never a string or None read as truthy."""
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, numbers.Integral)
                                               and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False, got {value!r}")


def _physical_memory():
    """Bytes of physical memory, or None where the platform does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def _check_parameter_memory(layer, G):
    """MemoryError, before allocating, for parameters larger than physical memory (e.g.
    ``num_layers=2**40``, which would otherwise loop for ever)."""
    H, D, L = layer.hidden_size, layer._directions, layer.num_layers
    per = lambda width: G * H * (width + H + 2 * layer.bias) + 3 * H  # noqa: E731
    count = D * (per(layer.input_size) + (L - 1) * per(H * D))
    need, ram = count * layer.dtype.itemsize, _physical_memory()
    if ram and need > ram:
        raise MemoryError(f"the parameters of {type(layer).__name__}({layer.input_size}, {H}, "
                          f"num_layers={L}) need {need} bytes, more than this machine's "
                          f"{ram / 2**30:.1f} GiB of memory")


class _Recurrent:
    _kind = None
    _gate_names = ()
    _infix = ""

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, bidirectional=False,
                 dropout=0.0, dtype=np.float32, seed=None):
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size),
                            ("num_layers", num_layers)):
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(dropout, numbers.Real) or not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        self.input_size, self.hidden_size = int(input_size), int(hidden_size)
        self.num_layers, self.bias = int(num_layers), _flag("bias", bias)
        self.bidirectional, self.dropout = _flag("bidirectional", bidirectional), float(dropout)
        self.dtype = dtype
        self.training = True
        self._rng = np.random.default_rng(seed)
        self._params = {}
        H, G = self.hidden_size, len(self._gate_names)
        _check_parameter_memory(self, G)
        k = 1.0 / np.sqrt(H)
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else self.hidden_size * self._directions
            for d in range(self._directions):
                shapes = {"weight_ih": (G * H, width), "weight_hh": (G * H, H)}
                if self.bias:
                    shapes.update(bias_ih=(G * H,), bias_hh=(G * H,))
                for base, shape in shapes.items():
                    self._params[self._name(base, layer, d)] = \
                        aligned_copy(self._rng.uniform(-k, k, size=shape), dtype)

    # -- parameters ---------------------------------------------------------------------

    @property
    def _directions(self):
        return 2 if self.bidirectional else 1

    def _name(self, base, layer, direction):
        return f"{base}{self._infix}_l{layer}" + ("_reverse" if direction else "")

    _BASES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh", "weight_peephole")

    def _cell_args(self):
        """(kind, nonlinearity, reset_after, simplified): the cell as the one-call model
        kernels take it (``_core.models``), read at every call (the attributes are
        public); the defaults where the cell has no such choice."""
        return self._kind, "tanh", True, False

    def _names(self, layer, d):
        """{base: parameter name} of one layer-direction, for every base in _BASES (made
        once per layer object: the names never change)."""
        table = self.__dict__.get("_name_table")
        if table is None:
            table = self._name_table = {
                (i, j): {base: self._name(base, i, j) for base in self._BASES}
                for i in range(self.num_layers) for j in range(self._directions)}
        return table[(layer, d)]

    def _weights(self, layer, d, params):
        """(weight_ih, weight_hh, bias_ih, bias_hh, weight_peephole) of one layer-direction
        from `params` (None where absent)."""
        table = self.__dict__.get("_weight_names")
        if table is None:
            table = self._weight_names = {
                (i, j): tuple(self._names(i, j)[base] for base in self._BASES)
                for i in range(self.num_layers) for j in range(self._directions)}
        n, get = table[(layer, d)], params.get
        return get(n[0]), get(n[1]), get(n[2]), get(n[3]), get(n[4])

    def state_dict(self):
        """The parameters, a dict of NumPy arrays named and laid out like PyTorch's.

        The arrays are the layer's own (as PyTorch's tensors are): changing them in place
        changes the layer. :meth:`load_state_dict` replaces them with copies.
        """
        return dict(self._params)

    def load_state_dict(self, state_dict):
        """Replace every parameter; accepts NumPy arrays or torch tensors.

        Raises
        ------
        KeyError
            A key is missing or unexpected.
        ValueError
            An array has the wrong shape or is not finite.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        missing = [k for k in self._params if k not in state_dict]
        extra = [k for k in state_dict if k not in self._params]
        if missing or extra:
            raise KeyError(f"state_dict keys do not match: missing {missing}, unexpected {extra}")
        new = {}
        for key, old in self._params.items():
            value = state_dict[key]
            if hasattr(value, "detach"):  # a torch tensor
                value = value.detach().cpu().numpy()
            value = np.asarray(value)
            if value.shape != old.shape:
                raise ValueError(f"state_dict[{key!r}] must have shape {old.shape}, got {value.shape}")
            if value.dtype.kind not in "fiu":
                raise TypeError(f"state_dict[{key!r}] must be numeric, got {value.dtype}")
            value = aligned_copy(value, self.dtype)
            if not np.all(np.isfinite(value)):
                raise ValueError(f"state_dict[{key!r}] contains NaN or infinity")
            new[key] = value
        self._params = new

    def train(self, mode=True):
        """Training mode (dropout between layers on) or not; returns self."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Evaluation mode (no dropout); returns self."""
        return self.train(False)

    # -- forward and backward ---------------------------------------------------------

    def forward(self, x, state=None, lengths=None):
        """Run the whole sequence through every layer and direction.

        Parameters
        ----------
        x : ndarray of shape (T, B, input_size)
            Of the layer's dtype; or index input, ints of shape (T, B) in
            ``0 .. input_size-1``: ``x[t, b] = k`` stands for the one-hot vector ``e_k``,
            and the first layer gathers column k of ``weight_ih_l0`` instead of a GEMM
            (no one-hot is formed). Backward then returns ``dx = None``.
        state : optional
            The initial state (zeros when None), shaped like the returned one.
        lengths : ndarray of shape (B,), optional
            Valid steps of each sequence, ints in 1..T, any order.

        Returns
        -------
        y : ndarray of shape (T, B, D*hidden_size)
        state : ndarray of shape (num_layers*D, B, hidden_size), or a pair for the LSTM
        cache : LayerCache
        """
        x = self._check_x(x)
        T, B = x.shape[:2]
        lengths = self._check_lengths(lengths, T, B)
        h0, c0 = self._initial_state(state, B)
        mask = None if lengths is None else (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
        cache = LayerCache(self._kind, self._gate_names, lengths)
        cache.shape = (T, B)
        cache.params = dict(self._params)  # backward differentiates these, even after a reload
        H, D = self.hidden_size, self._directions
        lstm = self._kind == "lstm"
        single = self.num_layers * D == 1  # h_n (c_n) is then the last step's copy
        h_n = None if single else np.empty((self.num_layers * D, B, H), dtype=self.dtype)
        c_n = np.empty_like(h_n) if lstm and not single else None
        inp = x
        for layer in range(self.num_layers):
            y = None if D == 1 else np.empty((T, B, D * H), dtype=self.dtype)
            for d in range(D):
                i = layer * D + d
                xin = inp if d == 0 else _reverse_in_length(inp, lengths)
                initial = (h0[i], None if c0 is None else c0[i])
                rec, h_all, c_all = self._kernel_forward(layer, d, xin, initial[0], initial[1],
                                                         lengths)
                cache.states[(layer, d)] = rec
                cache.inputs[(layer, d)] = xin
                cache.initial[(layer, d)] = initial
                cache._saved[(layer, d)] = _Saved(rec, initial, h_all, c_all)
                h = rec["h"]
                if single:
                    h_n = h[-1:].copy()
                    c_n = rec["c"][-1:].copy() if lstm else None
                else:
                    h_n[i] = h[-1]
                    if c_n is not None:
                        c_n[i] = rec["c"][-1]
                if D == 1:
                    y = h.copy()  # y is the layer's own array, not the cache's h
                else:
                    y[:, :, d * H:(d + 1) * H] = h if d == 0 else _reverse_in_length(h, lengths)
            if mask is not None:
                y *= mask
            if layer < self.num_layers - 1 and self.training and self.dropout > 0:
                keep = self._rng.random(y.shape) >= self.dropout
                scaled = (keep / (1.0 - self.dropout)).astype(self.dtype)
                cache.dropout[layer] = scaled
                y = y * scaled
            inp = y
        state_out = (h_n, c_n) if lstm else h_n
        return inp, state_out, cache

    def backward(self, dy, cache, dstate=None):
        """Backpropagation through every layer, direction and step.

        Parameters
        ----------
        dy : ndarray of shape (T, B, D*hidden_size)
            Gradient of the loss with respect to ``y`` (padded steps are ignored).
        cache : LayerCache
            From :meth:`forward`.
        dstate : optional
            Gradient with respect to the returned state (same structure), or None.

        Returns
        -------
        dx : ndarray of shape (T, B, input_size), or None for index input
        dstate0 : gradient with respect to the initial state (same structure as state)
        grads : dict keyed like :meth:`state_dict`
        """
        if not isinstance(cache, LayerCache) or cache.kind != self._kind:
            raise TypeError("cache must be the LayerCache this layer's forward returned")
        T, B = cache.shape
        H, D, L = self.hidden_size, self._directions, self.num_layers
        dy = self._check_array("dy", dy, (T, B, D * H))
        dh_n, dc_n = self._final_state_grad(dstate, B)
        lengths = cache.lengths
        grads = {}
        single = L * D == 1  # dh0 (and dc0) are then the kernel's (B, H) outputs as (1, B, H)
        dh0 = None if single else np.zeros((L * D, B, H), dtype=self.dtype)
        dc0 = None if single or self._kind != "lstm" else np.zeros_like(dh0)
        d_out = dy
        for layer in reversed(range(L)):
            if layer in cache.dropout:
                d_out = d_out * cache.dropout[layer]
            dx = None
            for d in range(D):
                i = layer * D + d
                g = d_out if D == 1 else np.ascontiguousarray(d_out[:, :, d * H:(d + 1) * H])
                if d == 1:
                    g = _reverse_in_length(g, lengths)
                dxd, dstates, pgrads = self._kernel_backward(
                    layer, d, cache, g, None if dh_n is None else dh_n[i],
                    None if dc_n is None else dc_n[i])
                if d == 1 and dxd is not None:
                    dxd = _reverse_in_length(dxd, lengths)
                dx = dxd if dx is None else dx + dxd
                if single:
                    dh0 = dstates[0][None]
                    dc0 = dstates[1][None] if len(dstates) > 1 else None
                else:
                    dh0[i] = dstates[0]
                    if dc0 is not None:
                        dc0[i] = dstates[1]
                names = self._names(layer, d)
                for base, value in pgrads.items():
                    grads[names[base]] = value
            d_out = dx
        grads = {k: grads[k] for k in cache.params}  # state_dict order
        dstate0 = (dh0, dc0) if self._kind == "lstm" else dh0
        return d_out, dstate0, grads

    # -- checks -------------------------------------------------------------------------

    def _check_array(self, name, a, shape):
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name} must be a numpy.ndarray of dtype {self.dtype}, got "
                            f"{type(a).__name__}")
        if a.dtype != self.dtype:
            raise TypeError(f"{name} must have the layer's dtype {self.dtype}, got {a.dtype}")
        if a.shape != tuple(shape):
            raise ValueError(f"{name} must have shape {tuple(shape)}, got {a.shape}")
        return a

    def _check_x(self, x):
        if (type(x) is np.ndarray and x.dtype == self.dtype and x.ndim == 3
                and x.shape[2] == self.input_size and 0 not in x.shape):
            return x  # the common case, in one test; the checks below say what is wrong
        if not isinstance(x, np.ndarray):
            raise TypeError(f"x must be a numpy.ndarray, got {type(x).__name__}")
        if x.dtype.kind in "iu":  # index input: x[t, b] = k stands for the one-hot e_k
            if x.ndim != 2 or 0 in x.shape:
                raise ValueError(f"x of integer dtype (index input) must have shape (T, B), "
                                 f"got {x.shape}")
            if x.min() < 0 or x.max() >= self.input_size:
                bad = tuple(int(i) for i in np.argwhere((x < 0) | (x >= self.input_size))[0])
                raise ValueError(f"x{list(bad)} = {x[bad]} is outside 0..input_size-1 = "
                                 f"0..{self.input_size - 1}")
            return np.ascontiguousarray(x, dtype=np.int64)
        if x.ndim != 3 or x.shape[2] != self.input_size or 0 in x.shape:
            raise ValueError(f"x must have shape (T, B, {self.input_size}) for input_size="
                             f"{self.input_size}, got {x.shape}")
        return self._check_array("x", x, x.shape)

    @staticmethod
    def _check_lengths(lengths, T, B):
        if lengths is None:
            return None
        if isinstance(lengths, (list, tuple)):
            lengths = np.asarray(lengths)
        if not isinstance(lengths, np.ndarray) or lengths.dtype.kind not in "iu":
            raise TypeError("lengths must be an integer array of shape (B,)")
        if lengths.shape != (B,):
            raise ValueError(f"lengths must have shape (B,) = ({B},), got {lengths.shape}")
        if lengths.min() < 1 or lengths.max() > T:
            raise ValueError(f"lengths must lie in 1..T = 1..{T}, got "
                             f"{lengths.min()}..{lengths.max()}")
        return lengths.astype(np.int64)

    def _state_shape(self, B):
        return (self.num_layers * self._directions, B, self.hidden_size)

    def _initial_state(self, state, B):
        shape = self._state_shape(B)
        if self._kind == "lstm":
            if state is None:
                return np.zeros(shape, self.dtype), np.zeros(shape, self.dtype)
            if not isinstance(state, (tuple, list)) or len(state) != 2:
                raise TypeError("state must be the pair (h_0, c_0) for the LSTM")
            return (self._check_array("state[0] (h_0)", state[0], shape),
                    self._check_array("state[1] (c_0)", state[1], shape))
        if state is None:
            return np.zeros(shape, self.dtype), None
        return self._check_array("state", state, shape), None

    def _final_state_grad(self, dstate, B):
        if dstate is None:
            return None, None
        shape = self._state_shape(B)
        if self._kind == "lstm":
            if not isinstance(dstate, (tuple, list)) or len(dstate) != 2:
                raise TypeError("dstate must be the pair (dh_n, dc_n) for the LSTM")
            dh = None if dstate[0] is None else self._check_array("dstate[0]", dstate[0], shape)
            dc = None if dstate[1] is None else self._check_array("dstate[1]", dstate[1], shape)
            return dh, dc
        return self._check_array("dstate", dstate, shape), None

    def __repr__(self):
        return (f"{type(self).__name__}({self.input_size}, {self.hidden_size}, num_layers="
                f"{self.num_layers}, bias={self.bias}, bidirectional={self.bidirectional}, "
                f"dropout={self.dropout}, dtype={self.dtype.name})")


def _saved_prev(cache, key):
    """The saved (h_prev, c_prev) views of forward's outputs (see _Saved), or None.

    With them, backward calls the compiled kernel directly: it checks every argument as
    :mod:`rnnx.kernels` does (and more: finiteness). When there are none (the cache was
    changed since forward) or the kernel refuses an argument, backward goes through
    :mod:`rnnx.kernels`, whose checks raise the error with their message (or the
    kernel's, for what only it checks)."""
    saved = getattr(cache, "_saved", {}).get(key)
    return None if saved is None else saved.prev(cache, key)


def _bias_sum(b_ih, b_hh):
    return None if b_ih is None else b_ih + b_hh


class RNN(_Recurrent):
    """Elman RNN: ``h_t = f(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)``, f = tanh or relu.

    Parameters
    ----------
    input_size, hidden_size, num_layers, bias, bidirectional, dropout
        As in PyTorch's ``nn.RNN``.
    nonlinearity : {"tanh", "relu"}
    dtype : float32 or float64
    seed : int, optional
        Seeds the parameters' initialisation and the dropout masks.
    """

    _kind = "rnn"
    _gate_names = ("h",)

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, bidirectional=False,
                 dropout=0.0, nonlinearity="tanh", dtype=np.float32, seed=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, bidirectional, dropout,
                         dtype, seed)

    def _cell_args(self):
        return "rnn", self.nonlinearity, True, False

    def _kernel_forward(self, layer, d, x, h0, c0, lengths):
        w_ih, w_hh, b_ih, b_hh, _ = self._weights(layer, d, self._params)
        b = _bias_sum(b_ih, b_hh)
        try:  # the compiled kernel checks every argument (see _saved_prev)
            h_all = _core.rnn_forward(x, h0, w_ih, w_hh, b, self.nonlinearity, lengths)
            h = h_all[1:]
        except (TypeError, ValueError, MemoryError):
            h_all = None
            h = _kernels.rnn_forward(x, np.ascontiguousarray(h0), w_ih, w_hh, b,
                                     self.nonlinearity, lengths=lengths)
        return {"h": h, "gates": h}, h_all, None

    def _kernel_backward(self, layer, d, cache, dh, dh_n, dc_n):
        key = (layer, d)
        w_ih, w_hh = self._weights(layer, d, cache.params)[:2]
        rec, (h0, _) = cache.states[key], cache.initial[key]
        out, prev = None, _saved_prev(cache, key)
        if prev is not None:
            try:
                out = _core.rnn_backward(cache.inputs[key], w_ih, w_hh, rec["h"], prev[0], dh,
                                         dh_n, self.nonlinearity, cache.lengths)
            except (TypeError, ValueError, MemoryError):
                pass
        dx, dh0, dw_ih, dw_hh, db = out or _kernels.rnn_backward(
            dh, cache.inputs[key], np.ascontiguousarray(h0), rec["h"], w_ih, w_hh,
            self.nonlinearity, dh_n=dh_n, lengths=cache.lengths)
        grads = {"weight_ih": dw_ih, "weight_hh": dw_hh}
        if self.bias:
            grads.update(bias_ih=db, bias_hh=db.copy())
        return dx, (dh0,), grads


class GRU(_Recurrent):
    """Gated recurrent unit, in PyTorch's form or the course's.

    Notes
    -----
    Gate order r, z, n::

        r = σ(x W_irᵀ + b_ir + h W_hrᵀ + b_hr)
        z = σ(x W_izᵀ + b_iz + h W_hzᵀ + b_hz)
        n = tanh(x W_inᵀ + b_in + r * (h W_hnᵀ + b_hn))   reset_after=True (PyTorch, cuDNN)
        n = tanh(x W_inᵀ + b_in + (r * h) W_hnᵀ + b_hn)   reset_after=False (the course)
        h' = (1 - z) * n + z * h

    ``simplified=True`` is the course's GRU with an update gate only (gates z, n;
    ``n = tanh(x W_inᵀ + b_in + h W_hnᵀ + b_hn)``); its parameters are named
    ``weight_ih_zn_l0`` etc., so that a full GRU's cannot be loaded into it by mistake.
    """

    _kind = "gru"

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, bidirectional=False,
                 dropout=0.0, dtype=np.float32, seed=None, reset_after=True, simplified=False):
        self.reset_after = _flag("reset_after", reset_after)
        self.simplified = _flag("simplified", simplified)
        self._gate_names = ("z", "n") if self.simplified else ("r", "z", "n")
        self._infix = "_zn" if self.simplified else ""
        super().__init__(input_size, hidden_size, num_layers, bias, bidirectional, dropout,
                         dtype, seed)

    def _cell_args(self):
        return "gru", "tanh", self.reset_after, self.simplified

    def _kernel_forward(self, layer, d, x, h0, c0, lengths):
        w_ih, w_hh, b_ih, b_hh, _ = self._weights(layer, d, self._params)
        try:  # the compiled kernel checks every argument (see _saved_prev)
            gates, aux, h_all = _core.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, self.reset_after,
                                                  self.simplified, lengths)
            h = h_all[1:]
        except (TypeError, ValueError, MemoryError):
            h_all = None
            h, gates, aux = _kernels.gru_forward(
                x, np.ascontiguousarray(h0), w_ih, w_hh, b_ih, b_hh, self.reset_after,
                self.simplified, lengths=lengths)
        return {"h": h, "gates": gates, "aux": aux}, h_all, None

    def _kernel_backward(self, layer, d, cache, dh, dh_n, dc_n):
        key = (layer, d)
        w_ih, w_hh = self._weights(layer, d, cache.params)[:2]
        rec, (h0, _) = cache.states[key], cache.initial[key]
        out, prev = None, _saved_prev(cache, key)
        if prev is not None:
            try:
                out = _core.gru_backward(cache.inputs[key], w_ih, w_hh, prev[0], rec["gates"],
                                         rec["aux"], dh, dh_n, self.reset_after, self.simplified,
                                         cache.lengths)
            except (TypeError, ValueError, MemoryError):
                pass
        dx, dh0, dw_ih, dw_hh, db_ih, db_hh = out or _kernels.gru_backward(
            dh, cache.inputs[key], np.ascontiguousarray(h0), rec["h"], rec["gates"],
            rec["aux"], w_ih, w_hh, self.reset_after, self.simplified, dh_n=dh_n,
            lengths=cache.lengths)
        grads = {"weight_ih": dw_ih, "weight_hh": dw_hh}
        if self.bias:
            grads.update(bias_ih=db_ih, bias_hh=db_hh)
        return dx, (dh0,), grads


class LSTM(_Recurrent):
    """Long short-term memory, gate order i, f, g, o (PyTorch's).

    Notes
    -----
    ``i, f, o = σ(·)`` and ``g = tanh(·)`` of ``x W_ihᵀ + b_ih + h W_hhᵀ + b_hh``;
    ``c' = f * c + i * g``; ``h' = o * tanh(c')``. ``forget_bias`` is added to the forget
    gate's part of ``bias_ih`` at initialisation.

    ``peephole=True`` adds diagonal peepholes from the cell state, one vector per layer
    and direction, ``weight_peephole_l{k}`` of shape ``(3H,)`` = ``[p_i, p_f, p_o]``:
    ``p_i * c`` and ``p_f * c`` inside i and f, ``p_o * c'`` inside o.
    """

    _kind = "lstm"
    _gate_names = ("i", "f", "g", "o")

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, bidirectional=False,
                 dropout=0.0, dtype=np.float32, seed=None, forget_bias=0.0, peephole=False):
        self.peephole = _flag("peephole", peephole)
        super().__init__(input_size, hidden_size, num_layers, bias, bidirectional, dropout,
                         dtype, seed)
        if self.peephole:  # weight_peephole_l{k} (3H,): [p_i, p_f, p_o], after the others
            k = 1.0 / np.sqrt(self.hidden_size)
            for layer in range(self.num_layers):
                for d in range(self._directions):
                    self._params[self._name("weight_peephole", layer, d)] = aligned_copy(
                        self._rng.uniform(-k, k, size=3 * self.hidden_size), self.dtype)
        if not isinstance(forget_bias, numbers.Real) or not np.isfinite(forget_bias):
            raise ValueError(f"forget_bias must be a finite number, got {forget_bias!r}")
        self.forget_bias = float(forget_bias)
        if self.bias and self.forget_bias:
            H = self.hidden_size
            for key in self._params:
                if key.startswith("bias_ih"):
                    self._params[key][H:2 * H] += self.dtype.type(self.forget_bias)

    def _kernel_forward(self, layer, d, x, h0, c0, lengths):
        w_ih, w_hh, b_ih, b_hh, peep = self._weights(layer, d, self._params)
        b = _bias_sum(b_ih, b_hh)
        try:  # the compiled kernel checks every argument (see _saved_prev)
            gates, h_all, c_all = _core.lstm_forward(x, h0, c0, w_ih, w_hh, b, lengths, peep)
            h, c = h_all[1:], c_all[1:]
        except (TypeError, ValueError, MemoryError):
            h_all = c_all = None
            h, c, gates = _kernels.lstm_forward(
                x, np.ascontiguousarray(h0), np.ascontiguousarray(c0), w_ih, w_hh, b,
                lengths=lengths, peephole=peep)
        return {"h": h, "c": c, "gates": gates}, h_all, c_all

    def _kernel_backward(self, layer, d, cache, dh, dh_n, dc_n):
        key = (layer, d)
        w_ih, w_hh, _, _, peep = self._weights(layer, d, cache.params)
        rec, (h0, c0) = cache.states[key], cache.initial[key]
        out, prev = None, _saved_prev(cache, key)
        if prev is not None:
            try:
                out = _core.lstm_backward(cache.inputs[key], w_ih, w_hh, rec["gates"], prev[0],
                                          rec["c"], prev[1], dh, dh_n, dc_n, cache.lengths, peep)
            except (TypeError, ValueError, MemoryError):
                pass
        out = out or _kernels.lstm_backward(
            dh, cache.inputs[key], np.ascontiguousarray(h0), np.ascontiguousarray(c0),
            rec["h"], rec["c"], rec["gates"], w_ih, w_hh, dh_n=dh_n, dc_n=dc_n,
            lengths=cache.lengths, peephole=peep)
        dx, dh0, dc0, dw_ih, dw_hh, db = out[:6]
        grads = {"weight_ih": dw_ih, "weight_hh": dw_hh}
        if self.bias:
            grads.update(bias_ih=db, bias_hh=db.copy())
        if self.peephole:
            grads["weight_peephole"] = out[6]
        return dx, (dh0, dc0), grads
