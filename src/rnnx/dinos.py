"""The "Dinosaurus Island - Character-level language model" functions, in C++.

Drop-in replacements for the course's functions (2021 semantics), as the contract in
``shared/contracts/course-kernels.md`` describes: batch of one, states ``(n_a, 1)``,
one-hot inputs ``(V, 1)`` given as index lists ``X`` (``None`` = zero input),
parameters ``Wax (n_a, V)``, ``Waa (n_a, n_a)``, ``Wya (V, n_a)``, ``b (n_a, 1)``,
``by (V, 1)``.

:func:`rnn_forward`, :func:`rnn_backward`, :func:`optimize` and :func:`sample` run
their loops in C++. :func:`sample` replays NumPy's legacy Mersenne Twister in C++ and
hands the final state back to ``np.random``, so the global RNG ends exactly where the
course's code leaves it. The small per-step helpers are the NumPy reference's own.
"""

import copy
import numbers
import operator

import numpy as np

from ._loader import core as _core
from .reference.dinos import (  # noqa: F401  (re-exported: per-step helpers)
    get_initial_loss,
    get_sample,
    initialize_parameters,
    print_sample,
    rnn_step_backward,
    rnn_step_forward,
    smooth,
    update_parameters,
)
from .course import softmax  # noqa: F401  (the course's utils.py softmax)

_k = _core.dinos

__all__ = [
    "softmax", "smooth", "print_sample", "get_sample", "get_initial_loss",
    "initialize_parameters", "rnn_step_forward", "rnn_step_backward", "update_parameters",
    "rnn_forward", "rnn_backward", "clip", "sample", "optimize", "model",
]

_CLIP_KEYS = ("dWaa", "dWax", "dWya", "db", "dby")


def _out_of_range(error, **named):
    """The ValueError for an OverflowError of the bindings: names the int (or the entry
    of an index list) too big for 64 bits."""
    for name, value in named.items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for t, v in enumerate(items):
            if isinstance(v, int) and not -(2 ** 63) <= v < 2 ** 63:
                where = f"{name}[{t}]" if items is value else name
                return ValueError(f"{where} = {v} is out of range (too large for an index)")
    return ValueError(f"an integer argument is out of range: {error}")


def rnn_forward(X, Y, a0, parameters, vocab_size=27):
    """Forward pass over one example and its cross-entropy loss.

    Parameters
    ----------
    X, Y : list of int
        Input and target indices of equal length; ``X[t] is None`` is a zero input.
    a0 : ndarray of shape (n_a, 1)
    parameters : dict
        ``Wax, Waa, Wya, b, by``.
    vocab_size : int, default 27

    Returns
    -------
    loss : float
        ``-Σ_t log ŷ_t[Y[t]]`` (a sum, not a mean).
    cache : tuple
        ``(y_hat, a, x)``: dicts keyed by step ``t`` of ``(V, 1)``, ``(n_a, 1)`` and
        one-hot ``(V, 1)`` arrays; ``a[-1]`` is a copy of ``a0``.
    """
    if isinstance(vocab_size, (bool, np.bool_)):
        raise TypeError("vocab_size must be an int, got bool")
    try:
        vocab_size = operator.index(vocab_size)
    except TypeError:
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}") from None
    if not 1 <= vocab_size < 2 ** 62:
        raise ValueError(f"vocab_size must be a positive int below 2**62, got {vocab_size}")
    try:
        loss, a_all, y_all = _k.rnn_forward(X, Y, a0, parameters, vocab_size)
    except OverflowError as e:
        raise _out_of_range(e, X=X, Y=Y) from None
    T = len(X)
    onehots = np.zeros((T, vocab_size, 1))
    x, a, y_hat = {}, {-1: a_all[0][:, None]}, {}
    for t in range(T):
        if X[t] is not None:
            onehots[t, X[t], 0] = 1
        x[t] = onehots[t]
        a[t] = a_all[t + 1][:, None]
        y_hat[t] = y_all[t][:, None]
    return np.float64(loss), (y_hat, a, x)


def rnn_backward(X, Y, parameters, cache):
    """Backward pass of :func:`rnn_forward`.

    Parameters
    ----------
    X, Y : list of int
    parameters : dict
    cache : tuple
        ``(y_hat, a, x)`` from :func:`rnn_forward` (or the course's own). The inputs
        are taken from ``X``.

    Returns
    -------
    gradients : dict
        ``dWax, dWaa, dWya, db, dby`` and ``da_next`` (the gradient reaching ``a0``).
    a : dict
        The cache's hidden states.
    """
    if not isinstance(cache, (tuple, list)) or len(cache) != 3:
        raise TypeError("cache must be the triple (y_hat, a, x) returned by rnn_forward")
    y_hat, a, _ = cache
    T = len(X)
    try:
        states = np.stack([np.asarray(a[t]).reshape(-1) for t in range(-1, T)])
        probs = np.stack([np.asarray(y_hat[t]).reshape(-1) for t in range(T)])
    except KeyError as e:
        raise KeyError(f"cache lacks step {e.args[0]} for X of length {T}") from None
    try:
        gradients = _k.rnn_backward(X, Y, parameters, states[1:], states[:-1], probs)
    except OverflowError as e:
        raise _out_of_range(e, X=X, Y=Y) from None
    return gradients, a


def clip(gradients, maxValue, inplace=False):
    """Clip the five gradients element-wise to ``[-maxValue, maxValue]``.

    Parameters
    ----------
    gradients : dict
        Must hold ``dWaa, dWax, dWya, db, dby`` (KeyError otherwise); other keys such
        as ``da_next`` are dropped from the result.
    maxValue : float
        A non-negative bound.
    inplace : bool, default False
        False (the 2021 course) clips copies and leaves the caller's arrays as they
        were; True (2018/v3a) clips the caller's arrays in place.

    Returns
    -------
    dict
        The five clipped arrays, keys in the order ``dWaa, dWax, dWya, db, dby``.
    """
    if not isinstance(gradients, dict):
        raise TypeError(f"gradients must be a dict, got {type(gradients).__name__}")
    if isinstance(maxValue, (bool, np.bool_)) or not isinstance(maxValue, numbers.Real):
        raise TypeError(f"maxValue must be a number, got {type(maxValue).__name__}")
    bound = float(maxValue)
    if not bound >= 0:
        raise ValueError(f"maxValue must be >= 0, got {maxValue!r}")
    for key in _CLIP_KEYS:
        if key not in gradients:
            raise KeyError(f"gradients is missing the key '{key}'")
        g = gradients[key]
        if not isinstance(g, np.ndarray) or g.dtype.kind != "f":
            raise TypeError(f"gradients['{key}'] must be a float ndarray")
    if not inplace:
        gradients = copy.deepcopy(gradients)
    out = {}
    for key in _CLIP_KEYS:
        np.clip(gradients[key], -bound, bound, out=gradients[key])
        out[key] = gradients[key]
    return out


def sample(parameters, char_to_ix, seed):
    """Sample a sequence of indices from the model, as the course does.

    From ``x = 0, a = 0``: one step forward, ``np.random.seed(counter + seed)``,
    ``idx ~ np.random.choice(V, p=ŷ)``, feed ``idx`` back one-hot, ``seed += 1``, until
    ``idx`` is ``char_to_ix['\\n']`` or 50 indices were drawn (then the newline index
    is appended). Step k thus draws under seed ``seed + 2k``.

    Parameters
    ----------
    parameters : dict
        ``Wax, Waa, Wya, b, by``; ``V = by.shape[0]``, ``n_a = Waa.shape[1]``.
    char_to_ix : dict
        Must map ``'\\n'``.
    seed : int

    Returns
    -------
    list
        The indices (NumPy ints; the appended newline a Python int).

    Notes
    -----
    Leaves NumPy's global RNG in the state right after the last draw, as the course's
    code does.
    """
    if "\n" not in char_to_ix:
        raise KeyError("char_to_ix is missing the key '\\n'")
    newline = char_to_ix["\n"]
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError(f"seed must be an int, got {type(seed).__name__}") from None
    try:
        ix, key, pos = _k.sample(parameters, newline, seed)
    except OverflowError as e:
        raise _out_of_range(e, seed=seed, **{"char_to_ix['\\n']": newline}) from None
    np.random.set_state(("MT19937", key, pos, 0, 0.0))
    indices = list(ix)
    if len(indices) > 50:  # the cap was hit: the course appends the plain newline index
        indices[-1] = newline
    return indices


def optimize(X, Y, a_prev, parameters, learning_rate=0.01):
    """One training step: forward, backward, clip to 5, update in place.

    Parameters
    ----------
    X, Y : list of int
    a_prev : ndarray of shape (n_a, 1)
    parameters : dict
        Updated in place (``p += -learning_rate * dp``).
    learning_rate : float, default 0.01

    Returns
    -------
    loss : float
    gradients : dict
        The clipped ``dWaa, dWax, dWya, db, dby``.
    a_last : ndarray of shape (n_a, 1)
        The hidden state after the last step.

    Notes
    -----
    The course's ``optimize`` only works for a vocabulary of 27 (it calls
    ``rnn_forward`` with the default ``vocab_size``); rnnx reads the vocabulary from
    the parameters instead.
    """
    try:
        learning_rate = float(learning_rate)
    except (TypeError, ValueError):
        raise TypeError(f"learning_rate must be a number, got {learning_rate!r}") from None
    try:
        loss, gradients, a_last = _k.optimize(X, Y, a_prev, parameters, learning_rate, 5.0)
    except OverflowError as e:
        raise _out_of_range(e, X=X, Y=Y) from None
    return np.float64(loss), gradients, a_last


def model(data_x, ix_to_char, char_to_ix, num_iterations=35000, n_a=50, dino_names=7,
          vocab_size=27, verbose=False):
    """Train the character-level model, one name per iteration (the 2021 course's loop).

    Parameters
    ----------
    data_x : list of str
        The names, e.g. ``data.split("\\n")``.
    ix_to_char, char_to_ix : dict
    num_iterations : int, default 35000
    n_a : int, default 50
    dino_names : int, default 7
        Names sampled every 1000 iterations.
    vocab_size : int, default 27
    verbose : bool, default False

    Returns
    -------
    parameters : dict
    last_dino_name : str

    Notes
    -----
    Reseeds NumPy's global RNG (1 in :func:`initialize_parameters`, 0 for the shuffle,
    then per draw in :func:`sample`) and prints through ``sys.stdout`` every 1000
    iterations: ``Iteration: j, Loss: <smoothed loss>``, a blank line, the sampled
    names and two blank lines.
    """
    parameters = initialize_parameters(n_a, vocab_size, vocab_size)
    loss = get_initial_loss(vocab_size, dino_names)
    examples = [name.strip() for name in data_x]
    if not examples:
        raise ValueError("data_x must hold at least one name")
    np.random.seed(0)
    np.random.shuffle(examples)
    a_prev = np.zeros((n_a, 1))
    last_dino_name = "abc"
    newline = char_to_ix["\n"]
    for j in range(num_iterations):
        idx = j % len(examples)
        example_ix = [char_to_ix[ch] for ch in examples[idx]]
        X = [None] + example_ix
        Y = X[1:] + [newline]
        if verbose and j in (0, len(examples) - 1, len(examples)):
            print("j = ", j, "idx = ", idx)
        if verbose and j == 0:
            print("example =", examples[idx])
            print("chars =", list(examples[idx]))
            print("ix =", example_ix)
            print("X =", X)
            print("Y =", Y)
        curr_loss, _, a_prev = optimize(X, Y, a_prev, parameters, 0.01)
        loss = smooth(loss, curr_loss)
        if j % 1000 == 0:
            print("Iteration: %d, Loss: %f" % (j, loss) + "\n")
            for seed in range(dino_names):
                last_dino_name = get_sample(sample(parameters, char_to_ix, seed), ix_to_char)
                print(last_dino_name.replace("\n", ""))
            print("\n")
    return parameters, last_dino_name
