"""Optimizers and gradient clipping over dicts of NumPy arrays.

Every optimizer updates the arrays of ``params`` in place (they are usually a layer's
own, from ``state_dict()``), so the layer sees the new values without a reload. The
update rules are PyTorch's (``torch.optim``), checked against it in the tests.

Examples
--------
>>> import numpy as np, rnnx
>>> params = {"w": np.ones(3)}
>>> opt = rnnx.optim.SGD(params, lr=0.5)
>>> opt.step({"w": np.array([1.0, 2.0, 0.0])})
>>> params["w"]
array([0.5, 0. , 1. ])
"""

import numbers

import numpy as np

__all__ = ["SGD", "Adagrad", "RMSprop", "Adam", "OPTIMIZERS", "clip_by_value",
           "clip_by_global_norm"]


def _positive(name, value, allow_zero=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}")
    return float(value)


class Optimizer:
    """Base class: holds ``params``, per-parameter state arrays and the step count.

    Parameters
    ----------
    params : dict of str to ndarray
        Float arrays, updated in place by :meth:`step`.
    lr : float
        The learning rate (> 0); it may be changed between steps (``opt.lr = ...``).
    """

    _slots = ()  # names of the per-parameter state arrays

    def __init__(self, params, lr):
        if not isinstance(params, dict) or not params:
            raise TypeError("params must be a non-empty dict of NumPy arrays")
        for k, p in params.items():
            if not isinstance(p, np.ndarray) or p.dtype not in (np.float32, np.float64):
                raise TypeError(f"params[{k!r}] must be a float32 or float64 ndarray")
            if not p.flags.writeable:
                raise ValueError(f"params[{k!r}] is read-only; the optimizer updates in place")
        self.params = params
        self.lr = _positive("lr", lr)
        self.steps = 0
        self.state = {s: {k: np.zeros_like(p) for k, p in params.items()} for s in self._slots}

    def _check_grads(self, grads):
        if not isinstance(grads, dict):
            raise TypeError(f"grads must be a dict, got {type(grads).__name__}")
        missing = [k for k in self.params if k not in grads]
        if missing:
            raise KeyError(f"grads lacks {missing[0]!r} (one per parameter)")
        extra = [k for k in grads if k not in self.params]
        if extra:  # a gradient with no parameter is almost always a parameter left out
            raise KeyError(f"grads has {extra[0]!r}, which is not one of the optimizer's "
                           f"params (pass every parameter to the optimizer)")
        for k, p in self.params.items():
            g = grads[k]
            if not isinstance(g, np.ndarray) or g.shape != p.shape:
                shape = getattr(g, "shape", type(g).__name__)
                raise ValueError(f"grads[{k!r}] must have shape {p.shape}, got {shape}")
            if g.dtype != p.dtype:
                raise TypeError(f"grads[{k!r}] must be {p.dtype}, got {g.dtype}")

    def step(self, grads):
        """Apply one update from ``grads`` (a dict keyed like ``params``)."""
        self._check_grads(grads)
        self.steps += 1
        for k, p in self.params.items():
            self._update(k, p, grads[k])

    def _update(self, k, p, g):
        raise NotImplementedError  # pragma: no cover - every subclass defines it

    def state_dict(self):
        """Everything a checkpoint needs to resume: hyper-parameters, step and state arrays.

        Returns a flat dict of NumPy arrays and numbers, keys ``"<slot>/<param>"`` for
        the state arrays.
        """
        out = {"steps": self.steps, "lr": self.lr}
        out.update({f"hp/{k}": v for k, v in self._hyper().items()})
        for s in self._slots:
            for k, v in self.state[s].items():
                out[f"{s}/{k}"] = v.copy()
        return out

    def load_state_dict(self, state):
        """Restore what :meth:`state_dict` returned (copies the arrays)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be the dict state_dict() returned, got "
                            f"{type(state).__name__}")
        steps, lr = state.get("steps", 0), state.get("lr", self.lr)
        steps, lr = (v.item() if isinstance(v, np.ndarray) and v.ndim == 0 else v  # from .npz
                     for v in (steps, lr))
        if isinstance(steps, bool) or not isinstance(steps, numbers.Integral):
            raise TypeError(f"optimizer state 'steps' must be an int, got {steps!r}")
        if steps < 0:
            raise ValueError(f"optimizer state 'steps' must be >= 0, got {steps!r}")
        lr = _positive("state['lr']", lr)
        for s in self._slots:
            for k, p in self.params.items():
                key = f"{s}/{k}"
                if key not in state:
                    raise KeyError(f"optimizer state lacks {key!r}")
                v = state[key]
                if not isinstance(v, np.ndarray) or v.dtype.kind != "f":
                    raise TypeError(f"optimizer state {key!r} must be a float ndarray, got "
                                    f"{getattr(v, 'dtype', type(v).__name__)}")
                if v.shape != p.shape:
                    raise ValueError(f"optimizer state {key!r} must have shape {p.shape}, "
                                     f"got {v.shape}")
                self.state[s][k] = v.astype(p.dtype, copy=True)
        self.steps = int(steps)
        self.lr = lr

    def _hyper(self):
        return {}


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum.

    ``v = momentum * v + g``; ``p -= lr * v`` (or ``lr * (g + momentum * v)`` with
    Nesterov). With ``momentum=0`` this is the course's ``p -= lr * g``.
    """

    def __init__(self, params, lr=0.01, momentum=0.0, nesterov=False):
        self._slots = ("velocity",) if momentum else ()
        super().__init__(params, lr)
        self.momentum = _positive("momentum", momentum, allow_zero=True)
        if self.momentum >= 1:
            raise ValueError(f"momentum must be < 1, got {momentum!r}")
        if nesterov and not self.momentum:
            raise ValueError("nesterov needs momentum > 0")
        self.nesterov = bool(nesterov)

    def _update(self, k, p, g):
        if not self.momentum:
            p -= self.lr * g
            return
        v = self.state["velocity"][k]
        if self.steps == 1:
            v[...] = g
        else:
            v *= self.momentum
            v += g
        p -= self.lr * (g + self.momentum * v if self.nesterov else v)

    def _hyper(self):
        return {"momentum": self.momentum, "nesterov": float(self.nesterov)}


class Adagrad(Optimizer):
    """``s += g**2``; ``p -= lr * g / (sqrt(s) + eps)``."""

    _slots = ("sum_sq",)

    def __init__(self, params, lr=0.01, eps=1e-10):
        super().__init__(params, lr)
        self.eps = _positive("eps", eps)

    def _update(self, k, p, g):
        s = self.state["sum_sq"][k]
        s += g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)

    def _hyper(self):
        return {"eps": self.eps}


class RMSprop(Optimizer):
    """``s = alpha * s + (1 - alpha) * g**2``; ``p -= lr * g / (sqrt(s) + eps)``."""

    _slots = ("mean_sq",)

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8):
        super().__init__(params, lr)
        self.alpha = _positive("alpha", alpha, allow_zero=True)
        if self.alpha >= 1:
            raise ValueError(f"alpha must be < 1, got {alpha!r}")
        self.eps = _positive("eps", eps)

    def _update(self, k, p, g):
        s = self.state["mean_sq"][k]
        s *= self.alpha
        s += (1 - self.alpha) * g * g
        p -= self.lr * g / (np.sqrt(s) + self.eps)

    def _hyper(self):
        return {"alpha": self.alpha, "eps": self.eps}


class Adam(Optimizer):
    """Adam with bias correction.

    ``m = b1 m + (1-b1) g``; ``v = b2 v + (1-b2) g**2``;
    ``p -= lr * (m / (1-b1**t)) / (sqrt(v / (1-b2**t)) + eps)``.
    """

    _slots = ("m", "v")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8):
        super().__init__(params, lr)
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise TypeError(f"betas must be a pair of floats, got {betas!r}") from None
        self.b1 = _positive("betas[0]", b1, allow_zero=True)
        self.b2 = _positive("betas[1]", b2, allow_zero=True)
        for name, b in (("betas[0]", self.b1), ("betas[1]", self.b2)):
            if b >= 1:
                raise ValueError(f"{name} must be < 1, got {b!r}")
        self.eps = _positive("eps", eps)

    def _update(self, k, p, g):
        m, v = self.state["m"][k], self.state["v"][k]
        m *= self.b1
        m += (1 - self.b1) * g
        v *= self.b2
        v += (1 - self.b2) * g * g
        c1 = 1 - self.b1 ** self.steps
        c2 = 1 - self.b2 ** self.steps
        p -= (self.lr / c1) * m / (np.sqrt(v) / np.sqrt(c2) + self.eps)

    def _hyper(self):
        return {"beta1": self.b1, "beta2": self.b2, "eps": self.eps}


OPTIMIZERS = {"sgd": SGD, "momentum": SGD, "adagrad": Adagrad, "rmsprop": RMSprop,
              "adam": Adam}


def _check_grad_dict(grads):
    if not isinstance(grads, dict):
        raise TypeError(f"grads must be a dict of NumPy arrays, got {type(grads).__name__}")
    for k, g in grads.items():
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(f"grads[{k!r}] must be a float ndarray, got "
                            f"{getattr(g, 'dtype', type(g).__name__)}")
        if not g.flags.writeable:
            raise ValueError(f"grads[{k!r}] is read-only; clipping works in place")


def clip_by_value(grads, max_value):
    """Clip every gradient to ``[-max_value, max_value]`` in place (the course's ``clip``).

    NaN stays NaN; +-Inf becomes +-max_value. Returns ``grads``.
    """
    m = _positive("max_value", max_value)
    _check_grad_dict(grads)
    for k, g in grads.items():
        if not isinstance(g, np.ndarray):
            raise TypeError(f"grads[{k!r}] must be an ndarray, got {type(g).__name__}")
        np.clip(g, -m, m, out=g)
    return grads


def clip_by_global_norm(grads, max_norm):
    """Scale all gradients in place so their joint L2 norm is at most ``max_norm``.

    Returns the norm before clipping (``inf`` or ``nan`` when a gradient holds one; the
    gradients are then left unchanged so the caller can see and skip the step). Finite
    gradients are always clipped, even where the norm itself overflows to ``inf``.
    """
    m = _positive("max_norm", max_norm)
    _check_grad_dict(grads)
    peaks = [float(np.max(np.abs(g))) for g in grads.values() if g.size]
    if any(np.isnan(p) for p in peaks):
        return float("nan")
    peak = max(peaks, default=0.0)
    if peak == 0.0 or np.isinf(peak):
        return peak
    # Squares of gradients near the float64 range overflow: sum the squares of g / peak.
    total = sum(float(np.sum(np.square(g / g.dtype.type(peak) if g.dtype == np.float64
                                       else g.astype(np.float64) / peak))) for g in grads.values())
    norm = peak * float(np.sqrt(total))  # may round to inf; the scale below does not
    if norm > m:
        scale = (m / (norm + 1e-12) if np.isfinite(norm)
                 else (m / peak) / float(np.sqrt(total)))
        for g in grads.values():
            g *= g.dtype.type(scale)
    return norm
