"""Dinosaurus Island: a character-level RNN language model in plain NumPy.

The functions of the course assignment "Dinosaurus Island - Character-level
language model" (2021 semantics), written from the equations alone.  They are the
readable ground truth for ``rnnx.dinos``.

Conventions
-----------
* One example at a time (``m = 1``): states are columns ``(n_a, 1)``, inputs and
  outputs are one-hot / probability columns ``(V, 1)``.
* Parameters: ``Wax (n_a, V)``, ``Waa (n_a, n_a)``, ``Wya (V, n_a)``, ``b (n_a, 1)``
  (not ``ba``) and ``by (V, 1)``.
* Vocabulary: the 27 symbols of ``dinos.txt`` after ``lower()``, sorted, so
  ``'\\n'`` (end of name) is 0 and ``a .. z`` are 1 .. 26.
* A sequence is a list of indices ``X`` and targets ``Y`` of the same length;
  ``X[t] is None`` means a zero input vector.

Side effects that the course relies on, and that are reproduced here:

* NumPy's **global** RNG: :func:`initialize_parameters` calls ``np.random.seed(1)``,
  :func:`sample` reseeds before every draw, :func:`model` shuffles with seed 0;
* in-place updates: :func:`rnn_step_backward` accumulates into the gradient dict,
  :func:`update_parameters` (and so :func:`optimize`) updates the parameter arrays;
* printing through Python's ``print`` (``sys.stdout``).
"""

import copy

import numpy as np

from .course import softmax

__all__ = [
    "softmax",
    "smooth",
    "print_sample",
    "get_sample",
    "get_initial_loss",
    "initialize_parameters",
    "rnn_step_forward",
    "rnn_step_backward",
    "update_parameters",
    "rnn_forward",
    "rnn_backward",
    "clip",
    "sample",
    "optimize",
    "model",
]

_PARAM_KEYS = ("Wax", "Waa", "Wya", "b", "by")
_CLIP_KEYS = ("dWaa", "dWax", "dWya", "db", "dby")


# ----------------------------------------------------------------------------------
# helpers (the course's utils.py)
# ----------------------------------------------------------------------------------


def smooth(loss, cur_loss):
    """Exponential moving average of the loss: ``loss * 0.999 + cur_loss * 0.001``."""
    return loss * 0.999 + cur_loss * 0.001


def get_sample(sample_ix, ix_to_char):
    """Turn sampled indices into text with the first character upper-cased.

    Parameters
    ----------
    sample_ix : list of int
        Indices from :func:`sample`.
    ix_to_char : dict
        Index -> character.

    Returns
    -------
    str
        The name, including the trailing ``'\\n'`` that :func:`sample` appends.

    Examples
    --------
    >>> get_sample([20, 18, 15, 4, 15, 14, 0], {0: "\\n", 4: "d", 14: "n", 15: "o",
    ...                                          18: "r", 20: "t"})
    'Trodon\\n'
    """
    txt = "".join(ix_to_char[ix] for ix in sample_ix)
    return txt[:1].upper() + txt[1:]


def print_sample(sample_ix, ix_to_char):
    """Print :func:`get_sample` to ``sys.stdout`` with ``end=''``.

    The sampled trailing ``'\\n'`` ends the line.
    """
    print(get_sample(sample_ix, ix_to_char), end="")


def get_initial_loss(vocab_size, seq_length):
    """Loss of a uniform guess over `seq_length` characters: ``-log(1/V) * seq_length``."""
    return -np.log(1.0 / vocab_size) * seq_length


def initialize_parameters(n_a, n_x, n_y):
    """Small random weights and zero biases; **reseeds the global RNG with 1**.

    Draws, in this order, ``Wax = randn(n_a, n_x) * 0.01``,
    ``Waa = randn(n_a, n_a) * 0.01`` and ``Wya = randn(n_y, n_a) * 0.01``.

    Parameters
    ----------
    n_a : int
        Hidden size.
    n_x : int
        Input size (the vocabulary size).
    n_y : int
        Output size (the vocabulary size).

    Returns
    -------
    dict
        ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, ``Wya (n_y, n_a)``, ``b (n_a, 1)``,
        ``by (n_y, 1)``, in this key order.
    """
    np.random.seed(1)
    Wax = np.random.randn(n_a, n_x) * 0.01
    Waa = np.random.randn(n_a, n_a) * 0.01
    Wya = np.random.randn(n_y, n_a) * 0.01
    b = np.zeros((n_a, 1))
    by = np.zeros((n_y, 1))
    return {"Wax": Wax, "Waa": Waa, "Wya": Wya, "b": b, "by": by}


# ----------------------------------------------------------------------------------
# one step forward / backward, parameter update
# ----------------------------------------------------------------------------------


def rnn_step_forward(parameters, a_prev, x):
    """One RNN step with its softmax output (note the argument order).

    ``a_next = tanh(Wax x + Waa a_prev + b)``, ``p_t = softmax(Wya a_next + by)``.

    Parameters
    ----------
    parameters : dict
        ``Wax (n_a, V)``, ``Waa (n_a, n_a)``, ``Wya (V, n_a)``, ``b (n_a, 1)``,
        ``by (V, 1)``.
    a_prev : ndarray, shape (n_a, 1)
    x : ndarray, shape (V, 1)
        One-hot input (or zeros).

    Returns
    -------
    a_next : ndarray, shape (n_a, 1)
    p_t : ndarray, shape (V, 1)
        Probabilities of the next character.
    """
    p = parameters
    a_next = np.tanh(p["Wax"] @ x + p["Waa"] @ a_prev + p["b"])
    p_t = softmax(p["Wya"] @ a_next + p["by"])
    return a_next, p_t


def rnn_step_backward(dy, gradients, parameters, x, a, a_prev):
    """Backward pass of one step; accumulates **in place** into `gradients`.

    With ``dy = dL/d(Wya a + by)`` (softmax + cross-entropy: ``p_t - onehot(Y[t])``)::

        dWya += dy a.T
        dby  += dy
        da    = Wya.T dy + gradients["da_next"]     (output path + carry from t+1)
        dz    = (1 - a**2) * da                     (tanh' = 1 - tanh^2)
        db   += dz
        dWax += dz x.T
        dWaa += dz a_prev.T
        gradients["da_next"] = Waa.T dz             (carry to step t-1)

    Parameters
    ----------
    dy : ndarray, shape (V, 1)
    gradients : dict
        ``dWax, dWaa, dWya, db, dby`` and ``da_next (n_a, 1)``; updated in place.
    parameters : dict
    x : ndarray, shape (V, 1)
        Input of this step.
    a : ndarray, shape (n_a, 1)
        Hidden state of this step.
    a_prev : ndarray, shape (n_a, 1)
        Hidden state of the step before.

    Returns
    -------
    dict
        The same `gradients` object.
    """
    g, p = gradients, parameters
    g["dWya"] += dy @ a.T
    g["dby"] += dy
    da = p["Wya"].T @ dy + g["da_next"]
    dz = (1 - a * a) * da
    g["db"] += dz
    g["dWax"] += dz @ x.T
    g["dWaa"] += dz @ a_prev.T
    g["da_next"] = p["Waa"].T @ dz
    return g


def update_parameters(parameters, gradients, lr):
    """Gradient descent step ``W += -lr * dW``, **in place on the arrays**.

    Parameters
    ----------
    parameters : dict
        ``Wax, Waa, Wya, b, by``; each array is modified in place.
    gradients : dict
        ``dWax, dWaa, dWya, db, dby``.
    lr : float
        Learning rate.

    Returns
    -------
    dict
        The same `parameters` object.
    """
    for k in _PARAM_KEYS:
        parameters[k] += -lr * gradients["d" + k]
    return parameters


# ----------------------------------------------------------------------------------
# a whole name forward / backward
# ----------------------------------------------------------------------------------


def rnn_forward(X, Y, a0, parameters, vocab_size=27):
    """Forward pass over one sequence and its cross-entropy loss.

    ``loss = - sum_t log(y_hat<t>[Y[t]])`` (a sum over steps, not a mean).

    Parameters
    ----------
    X : list of int or None, length T
        Input indices; ``None`` gives a zero input vector.
    Y : list of int, length T
        Target indices.
    a0 : ndarray, shape (n_a, 1)
        Initial hidden state.
    parameters : dict
    vocab_size : int, default 27

    Returns
    -------
    loss : float
    cache : tuple
        ``(y_hat, a, x)``: three dicts keyed by the step ``t``, with
        ``y_hat[t] (V, 1)``, ``a[t] (n_a, 1)``, ``x[t] (V, 1)``, and
        ``a[-1]`` a copy of `a0`.
    """
    x, a, y_hat = {}, {}, {}
    a[-1] = np.copy(a0)
    loss = 0
    for t in range(len(X)):
        x[t] = np.zeros((vocab_size, 1))
        if X[t] is not None:
            x[t][X[t]] = 1
        a[t], y_hat[t] = rnn_step_forward(parameters, a[t - 1], x[t])
        loss -= np.log(y_hat[t][Y[t], 0])
    return loss, (y_hat, a, x)


def rnn_backward(X, Y, parameters, cache):
    """Backpropagation through time over one sequence.

    Parameters
    ----------
    X : list of int or None, length T
    Y : list of int, length T
    parameters : dict
    cache : tuple
        ``(y_hat, a, x)`` from :func:`rnn_forward`.

    Returns
    -------
    gradients : dict
        ``dWax, dWaa, dWya, db, dby`` (the shapes of the parameters) and
        ``da_next (n_a, 1)``, the gradient with respect to ``a0``.
    a : dict
        The hidden states from the cache.
    """
    y_hat, a, x = cache
    p = parameters
    gradients = {
        "dWax": np.zeros_like(p["Wax"]),
        "dWaa": np.zeros_like(p["Waa"]),
        "dWya": np.zeros_like(p["Wya"]),
        "db": np.zeros_like(p["b"]),
        "dby": np.zeros_like(p["by"]),
        "da_next": np.zeros_like(a[0]),
    }
    for t in reversed(range(len(X))):
        # softmax + cross-entropy: dL/dz = p - onehot(target)
        dy = np.copy(y_hat[t])
        dy[Y[t]] -= 1
        rnn_step_backward(dy, gradients, parameters, x[t], a[t], a[t - 1])
    return gradients, a


# ----------------------------------------------------------------------------------
# the graded functions
# ----------------------------------------------------------------------------------


def clip(gradients, maxValue, inplace=False):
    """Clip the five gradients element-wise to ``[-maxValue, maxValue]``.

    Parameters
    ----------
    gradients : dict
        Must hold ``dWaa, dWax, dWya, db, dby`` (``KeyError`` otherwise); other keys
        such as ``da_next`` are dropped from the result.
    maxValue : float
    inplace : bool, default False
        False (2021 behaviour): work on a deep copy, the caller's arrays are left
        unchanged.  True (2018/v3a behaviour): clip the caller's five arrays in place.

    Returns
    -------
    dict
        A new dict with the keys ``dWaa, dWax, dWya, db, dby`` in this order.

    Examples
    --------
    >>> g = {k: np.array([[-7.0, 3.0]]) for k in ["dWaa", "dWax", "dWya", "db", "dby"]}
    >>> clip(g, 5)["db"].tolist(), g["db"].tolist()
    ([[-5.0, 3.0]], [[-7.0, 3.0]])
    """
    if not inplace:
        gradients = copy.deepcopy(gradients)
    clipped = {k: gradients[k] for k in _CLIP_KEYS}
    for array in clipped.values():
        np.clip(array, -maxValue, maxValue, out=array)
    return clipped


def sample(parameters, char_to_ix, seed):
    """Sample one name, character by character, from the model.

    Starting from ``x = 0`` and ``a = 0``, repeat one :func:`rnn_step_forward` and
    draw the next index from its probabilities until the newline index is drawn or
    50 indices have been drawn.  Before draw ``k`` (k = 0, 1, ...) the **global** RNG
    is reseeded with ``seed + 2k`` (the loop adds 1 both to ``seed`` and to the
    counter), then ``np.random.choice(range(V), p=y.ravel())`` draws.  If the cap of
    50 is hit, the newline index is appended, so the list can have 51 entries.

    Parameters
    ----------
    parameters : dict
        ``Wax, Waa, Wya, b, by``; ``V = by.shape[0]``, ``n_a = Waa.shape[1]``.
    char_to_ix : dict
        Character -> index; only ``char_to_ix['\\n']`` is used.
    seed : int

    Returns
    -------
    list
        The sampled indices (NumPy integers; the appended newline is an ``int``).

    Notes
    -----
    The global RNG is left in the state after the last draw.
    """
    V = parameters["by"].shape[0]
    n_a = parameters["Waa"].shape[1]
    newline = char_to_ix["\n"]

    x = np.zeros((V, 1))
    a_prev = np.zeros((n_a, 1))
    indices = []
    idx = -1
    counter = 0
    while idx != newline and counter != 50:
        a, y = rnn_step_forward(parameters, a_prev, x)
        np.random.seed(counter + seed)
        idx = np.random.choice(range(V), p=y.ravel())
        indices.append(idx)
        x = np.zeros((V, 1))
        x[idx] = 1
        a_prev = a
        seed += 1
        counter += 1
    if counter == 50:
        indices.append(newline)
    return indices


def optimize(X, Y, a_prev, parameters, learning_rate=0.01):
    """One step of training: forward, backward, clip to 5, update in place.

    Parameters
    ----------
    X : list of int or None
    Y : list of int
    a_prev : ndarray, shape (n_a, 1)
        Initial hidden state for this sequence.
    parameters : dict
        Updated **in place**.
    learning_rate : float, default 0.01

    Returns
    -------
    loss : float
    gradients : dict
        The clipped ``dWaa, dWax, dWya, db, dby`` (no ``da_next``).
    a_last : ndarray, shape (n_a, 1)
        Hidden state of the last step.

    Notes
    -----
    :func:`rnn_forward` is called with its default ``vocab_size=27``, as in the
    course, so this only works for a 27-symbol vocabulary.
    """
    loss, cache = rnn_forward(X, Y, a_prev, parameters)
    gradients, a = rnn_backward(X, Y, parameters, cache)
    gradients = clip(gradients, 5)
    update_parameters(parameters, gradients, learning_rate)
    return loss, gradients, a[len(X) - 1]


def model(
    data_x,
    ix_to_char,
    char_to_ix,
    num_iterations=35000,
    n_a=50,
    dino_names=7,
    vocab_size=27,
    verbose=False,
):
    """Train the character-level model, one name per iteration.

    Setup: :func:`initialize_parameters` (reseeds the global RNG with 1), the
    smoothed loss starts at ``get_initial_loss(vocab_size, dino_names)``, the names
    are stripped and shuffled with ``np.random.seed(0)``.  Iteration ``j`` trains on
    name ``j % len(names)`` with ``X = [None] + indices`` and ``Y = indices + [newline]``;
    the hidden state is carried from one name to the next.

    Every 1000 iterations it prints::

        Iteration: <j>, Loss: <smoothed loss, %f>
        <empty line>
        <dino_names sampled names, seeds 0, 1, ..., one per line>
        <two empty lines>

    Parameters
    ----------
    data_x : list of str
        The names, e.g. ``data.split("\\n")``.
    ix_to_char, char_to_ix : dict
        The vocabulary maps.
    num_iterations : int, default 35000
    n_a : int, default 50
        Hidden size.
    dino_names : int, default 7
        Names sampled at each report.
    vocab_size : int, default 27
    verbose : bool, default False
        Also print the iteration and example index at the first iteration and at the
        wrap-around of the data, and the first training example.

    Returns
    -------
    parameters : dict
        The trained parameters.
    last_dino_name : str
        The last sampled name, with its trailing ``'\\n'`` (``"abc"`` if none was
        sampled).
    """
    n_x, n_y = vocab_size, vocab_size
    parameters = initialize_parameters(n_a, n_x, n_y)
    loss = get_initial_loss(vocab_size, dino_names)

    examples = [name.strip() for name in data_x]
    np.random.seed(0)
    np.random.shuffle(examples)

    a_prev = np.zeros((n_a, 1))
    last_dino_name = "abc"
    newline = char_to_ix["\n"]

    for j in range(num_iterations):
        idx = j % len(examples)
        example = examples[idx]
        example_chars = list(example)
        example_ix = [char_to_ix[ch] for ch in example_chars]
        X = [None] + example_ix
        Y = X[1:] + [newline]

        if verbose and j in (0, len(examples) - 1, len(examples)):
            print("j = ", j, "idx = ", idx)
        if verbose and j == 0:
            print("example =", example)
            print("chars =", example_chars)
            print("ix =", example_ix)
            print("X =", X)
            print("Y =", Y)

        curr_loss, _, a_prev = optimize(X, Y, a_prev, parameters, learning_rate=0.01)
        loss = smooth(loss, curr_loss)

        if j % 1000 == 0:
            print("Iteration: %d, Loss: %f" % (j, loss) + "\n")
            for seed in range(dino_names):
                sampled = sample(parameters, char_to_ix, seed)
                last_dino_name = get_sample(sampled, ix_to_char)
                print(last_dino_name.replace("\n", ""))
            print("\n")

    return parameters, last_dino_name
