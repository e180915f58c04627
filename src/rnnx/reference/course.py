"""Step-by-Step RNN and LSTM in plain NumPy, with the course's layout.

These are the functions of the course assignment "Building your Recurrent Neural
Network - Step by Step", written from the equations alone.  They are the readable
ground truth for the drop-in layer of rnnx: same names, arguments, return tuples,
cache layouts and gradient-dict keys (in the same key order).

Layout
------
Everything is float64.  The batch is the **second** axis:

* one time step: ``(n, m)``; a sequence: ``(n, m, T)``;
* biases are column vectors ``(n, 1)`` that broadcast over ``m``;
* matrices multiply on the left, e.g. ``Wax @ xt`` with ``Wax`` of shape ``(n_a, n_x)``.

Sizes: ``n_x`` input features, ``n_a`` hidden units, ``n_y`` outputs, ``m`` examples,
``T`` time steps.  ``n_a`` and ``n_y`` are always read from ``Wya.shape`` (RNN) or
``Wy.shape`` (LSTM).

Parameters
----------
basic RNN
    ``Wax (n_a, n_x)``, ``Waa (n_a, n_a)``, ``Wya (n_y, n_a)``, ``ba (n_a, 1)``,
    ``by (n_y, 1)``.
LSTM
    ``Wf, Wi, Wc, Wo (n_a, n_a + n_x)``, ``bf, bi, bc, bo (n_a, 1)``,
    ``Wy (n_y, n_a)``, ``by (n_y, 1)``.  The gates act on
    ``concat = [a_prev; xt]`` (the ``a_prev`` rows come first); ``i`` is the update
    gate.

The output layer ``softmax(W a + b)`` is computed by the forward functions but the
backward functions do not differentiate it: the incoming ``da`` already holds the
gradient that flows into the hidden state.
"""

import numpy as np

__all__ = [
    "softmax",
    "sigmoid",
    "rnn_cell_forward",
    "rnn_forward",
    "rnn_cell_backward",
    "rnn_backward",
    "lstm_cell_forward",
    "lstm_forward",
    "lstm_cell_backward",
    "lstm_backward",
    "lstm_backward_2018_published",
]


# ----------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------


def softmax(x):
    """Softmax over the first axis, shifted by the global maximum.

    ``e = exp(x - max(x))`` and ``e / e.sum(axis=0)``.  The shift uses the maximum of
    the **whole** array, not one per column, as the course does.  The result equals a
    per-column shift unless a column lies more than about 745 below the global
    maximum; that column then becomes ``0/0 = nan``.

    Parameters
    ----------
    x : ndarray, shape (n, ...)
        Scores; each column (index along the axes after the first) is one
        distribution.

    Returns
    -------
    ndarray, shape (n, ...)
        Probabilities; every column sums to 1.

    Examples
    --------
    >>> softmax(np.array([[0.0], [np.log(3.0)]])).ravel().round(3).tolist()
    [0.25, 0.75]
    """
    e = np.exp(x - np.max(x))
    return e / e.sum(axis=0)


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``, element-wise.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    ndarray, same shape as `x`

    Examples
    --------
    >>> float(sigmoid(np.array(0.0)))
    0.5
    """
    return 1 / (1 + np.exp(-x))


# ----------------------------------------------------------------------------------
# basic RNN
# ----------------------------------------------------------------------------------


def rnn_cell_forward(xt, a_prev, parameters):
    """One step of the basic RNN.

    ``a_next = tanh(Waa a_prev + Wax xt + ba)``,
    ``yt_pred = softmax(Wya a_next + by)``.

    Parameters
    ----------
    xt : ndarray, shape (n_x, m)
        Input at this step.
    a_prev : ndarray, shape (n_a, m)
        Hidden state of the previous step.
    parameters : dict
        ``Waa (n_a, n_a)``, ``Wax (n_a, n_x)``, ``Wya (n_y, n_a)``, ``ba (n_a, 1)``,
        ``by (n_y, 1)``.

    Returns
    -------
    a_next : ndarray, shape (n_a, m)
    yt_pred : ndarray, shape (n_y, m)
    cache : tuple
        ``(a_next, a_prev, xt, parameters)``; `parameters` is the same dict object
        that was passed in.
    """
    Wax, Waa, Wya = parameters["Wax"], parameters["Waa"], parameters["Wya"]
    ba, by = parameters["ba"], parameters["by"]

    a_next = np.tanh(Waa @ a_prev + Wax @ xt + ba)
    yt_pred = softmax(Wya @ a_next + by)

    cache = (a_next, a_prev, xt, parameters)
    return a_next, yt_pred, cache


def rnn_forward(x, a0, parameters):
    """The basic RNN over a whole sequence.

    For ``t = 0 .. T-1``: ``a<t>, y<t> = rnn_cell_forward(x<t>, a<t-1>)`` with
    ``a<-1> = a0``.

    Parameters
    ----------
    x : ndarray, shape (n_x, m, T)
        Input sequence.
    a0 : ndarray, shape (n_a, m)
        Initial hidden state.
    parameters : dict
        As for :func:`rnn_cell_forward`.

    Returns
    -------
    a : ndarray, shape (n_a, m, T)
        Hidden state of every step.
    y_pred : ndarray, shape (n_y, m, T)
        Softmax output of every step.
    caches : tuple
        ``(list of the T cell caches, x)``.
    """
    n_x, m, T = x.shape
    n_y, n_a = parameters["Wya"].shape

    a = np.zeros((n_a, m, T))
    y_pred = np.zeros((n_y, m, T))
    cell_caches = []

    a_next = a0
    for t in range(T):
        a_next, yt_pred, cache = rnn_cell_forward(x[:, :, t], a_next, parameters)
        a[:, :, t] = a_next
        y_pred[:, :, t] = yt_pred
        cell_caches.append(cache)

    return a, y_pred, (cell_caches, x)


def rnn_cell_backward(da_next, cache):
    """Backward pass of one basic-RNN step (the softmax output is not included).

    With ``z = Waa a_prev + Wax xt + ba`` and ``a_next = tanh(z)``:

    * ``dz = da_next * (1 - a_next**2)``        (tanh'(z) = 1 - tanh(z)^2)
    * ``dxt = Wax.T dz``, ``dWax = dz xt.T``
    * ``da_prev = Waa.T dz``, ``dWaa = dz a_prev.T``
    * ``dba = sum of dz over the m columns``

    Parameters
    ----------
    da_next : ndarray, shape (n_a, m)
        Gradient of the loss with respect to ``a_next``.
    cache : tuple
        ``(a_next, a_prev, xt, parameters)`` from :func:`rnn_cell_forward`.

    Returns
    -------
    dict
        ``dxt (n_x, m)``, ``da_prev (n_a, m)``, ``dWax (n_a, n_x)``,
        ``dWaa (n_a, n_a)``, ``dba (n_a, 1)``, in this key order.
    """
    a_next, a_prev, xt, parameters = cache
    Wax, Waa = parameters["Wax"], parameters["Waa"]

    dz = da_next * (1 - a_next**2)

    dxt = Wax.T @ dz
    dWax = dz @ xt.T
    da_prev = Waa.T @ dz
    dWaa = dz @ a_prev.T
    dba = np.sum(dz, axis=1, keepdims=True)

    return {"dxt": dxt, "da_prev": da_prev, "dWax": dWax, "dWaa": dWaa, "dba": dba}


def rnn_backward(da, caches):
    """Backpropagation through time for the basic RNN.

    The number of steps ``T`` is read from ``da.shape``; the first ``T`` cell caches
    are used.  Going backwards, each step receives its own upstream gradient plus
    the gradient carried from the step after it::

        carry = 0
        for t = T-1 .. 0:
            g = rnn_cell_backward(da<t> + carry, cache<t>)
            carry = g["da_prev"]

    Parameter gradients are summed over the steps (not divided by ``m``); ``da0``
    is the final carry.

    Parameters
    ----------
    da : ndarray, shape (n_a, m, T)
        Gradient of the loss with respect to every hidden state.
    caches : tuple
        ``(list of cell caches, x)`` from :func:`rnn_forward`.

    Returns
    -------
    dict
        ``dx (n_x, m, T)``, ``da0 (n_a, m)``, ``dWax (n_a, n_x)``,
        ``dWaa (n_a, n_a)``, ``dba (n_a, 1)``, in this key order.
    """
    cell_caches, x = caches
    n_a, m, T = da.shape
    n_x = cell_caches[0][2].shape[0]
    parameters = cell_caches[0][3]

    dx = np.zeros((n_x, m, T))
    dWax = np.zeros_like(parameters["Wax"])
    dWaa = np.zeros_like(parameters["Waa"])
    dba = np.zeros((n_a, 1))
    da_carry = np.zeros((n_a, m))

    for t in reversed(range(T)):
        g = rnn_cell_backward(da[:, :, t] + da_carry, cell_caches[t])
        dx[:, :, t] = g["dxt"]
        dWax += g["dWax"]
        dWaa += g["dWaa"]
        dba += g["dba"]
        da_carry = g["da_prev"]

    return {"dx": dx, "da0": da_carry, "dWax": dWax, "dWaa": dWaa, "dba": dba}


# ----------------------------------------------------------------------------------
# LSTM
# ----------------------------------------------------------------------------------


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    """One LSTM step.

    With ``concat = [a_prev; xt]`` (shape ``(n_a + n_x, m)``, a_prev rows first)::

        ft  = sigmoid(Wf concat + bf)        forget gate
        it  = sigmoid(Wi concat + bi)        update gate
        cct = tanh(Wc concat + bc)           candidate cell value
        c_next = ft * c_prev + it * cct
        ot  = sigmoid(Wo concat + bo)        output gate
        a_next = ot * tanh(c_next)
        yt_pred = softmax(Wy a_next + by)

    Parameters
    ----------
    xt : ndarray, shape (n_x, m)
    a_prev : ndarray, shape (n_a, m)
    c_prev : ndarray, shape (n_a, m)
    parameters : dict
        ``Wf, Wi, Wc, Wo (n_a, n_a + n_x)``, ``bf, bi, bc, bo (n_a, 1)``,
        ``Wy (n_y, n_a)``, ``by (n_y, 1)``.

    Returns
    -------
    a_next : ndarray, shape (n_a, m)
    c_next : ndarray, shape (n_a, m)
    yt_pred : ndarray, shape (n_y, m)
    cache : tuple
        ``(a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)``.
    """
    p = parameters
    concat = np.concatenate((a_prev, xt), axis=0)

    ft = sigmoid(p["Wf"] @ concat + p["bf"])
    it = sigmoid(p["Wi"] @ concat + p["bi"])
    cct = np.tanh(p["Wc"] @ concat + p["bc"])
    c_next = ft * c_prev + it * cct
    ot = sigmoid(p["Wo"] @ concat + p["bo"])
    a_next = ot * np.tanh(c_next)
    yt_pred = softmax(p["Wy"] @ a_next + p["by"])

    cache = (a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters)
    return a_next, c_next, yt_pred, cache


def lstm_forward(x, a0, parameters):
    """The LSTM over a whole sequence; the initial cell state is zero.

    Parameters
    ----------
    x : ndarray, shape (n_x, m, T)
    a0 : ndarray, shape (n_a, m)
        Initial hidden state.  There is no ``c0`` argument: ``c<-1> = 0``.
    parameters : dict
        As for :func:`lstm_cell_forward`.

    Returns
    -------
    a : ndarray, shape (n_a, m, T)
        Hidden states.
    y : ndarray, shape (n_y, m, T)
        Softmax outputs.
    c : ndarray, shape (n_a, m, T)
        Cell states.
    caches : tuple
        ``(list of the T cell caches, x)``.

    Notes
    -----
    The return order is ``a, y, c, caches`` (``y`` before ``c``).
    """
    n_x, m, T = x.shape
    n_y, n_a = parameters["Wy"].shape

    a = np.zeros((n_a, m, T))
    c = np.zeros((n_a, m, T))
    y = np.zeros((n_y, m, T))
    cell_caches = []

    a_next = a0
    c_next = np.zeros((n_a, m))
    for t in range(T):
        a_next, c_next, yt, cache = lstm_cell_forward(x[:, :, t], a_next, c_next, parameters)
        a[:, :, t] = a_next
        c[:, :, t] = c_next
        y[:, :, t] = yt
        cell_caches.append(cache)

    return a, y, c, (cell_caches, x)


def lstm_cell_backward(da_next, dc_next, cache):
    """Backward pass of one LSTM step (the softmax output is not included).

    Let ``tc = tanh(c_next)``.  The total gradient reaching the cell state is::

        dC = dc_next + da_next * ot * (1 - tc**2)          (tanh' = 1 - tanh^2)

    The gradients with respect to the gate pre-activations are (sigmoid' = s (1 - s)
    and tanh' = 1 - tanh^2)::

        dot  = da_next * tc * ot * (1 - ot)
        dcct = dC * it * (1 - cct**2)
        dit  = dC * cct * it * (1 - it)
        dft  = dC * c_prev * ft * (1 - ft)

    and then, with ``concat = [a_prev; xt]``::

        dW* = d* concat.T,   db* = sum of d* over the m columns
        dconcat = Wf.T dft + Wi.T dit + Wc.T dcct + Wo.T dot
        da_prev = dconcat[:n_a],  dxt = dconcat[n_a:]
        dc_prev = dC * ft

    Parameters
    ----------
    da_next : ndarray, shape (n_a, m)
        Gradient with respect to ``a_next``.
    dc_next : ndarray, shape (n_a, m)
        Gradient with respect to ``c_next``.
    cache : tuple
        From :func:`lstm_cell_forward`.

    Returns
    -------
    dict
        ``dxt (n_x, m)``, ``da_prev (n_a, m)``, ``dc_prev (n_a, m)``,
        ``dWf (n_a, n_a + n_x)``, ``dbf (n_a, 1)``, ``dWi``, ``dbi``, ``dWc``, ``dbc``,
        ``dWo``, ``dbo``, in this key order.
    """
    a_next, c_next, a_prev, c_prev, ft, it, cct, ot, xt, parameters = cache
    p = parameters
    n_a = a_next.shape[0]

    tc = np.tanh(c_next)
    dC = dc_next + da_next * ot * (1 - tc**2)

    dot = da_next * tc * ot * (1 - ot)
    dcct = dC * it * (1 - cct**2)
    dit = dC * cct * it * (1 - it)
    dft = dC * c_prev * ft * (1 - ft)

    concat = np.concatenate((a_prev, xt), axis=0)
    dconcat = p["Wf"].T @ dft + p["Wi"].T @ dit + p["Wc"].T @ dcct + p["Wo"].T @ dot

    return {
        "dxt": dconcat[n_a:],
        "da_prev": dconcat[:n_a],
        "dc_prev": dC * ft,
        "dWf": dft @ concat.T,
        "dbf": np.sum(dft, axis=1, keepdims=True),
        "dWi": dit @ concat.T,
        "dbi": np.sum(dit, axis=1, keepdims=True),
        "dWc": dcct @ concat.T,
        "dbc": np.sum(dcct, axis=1, keepdims=True),
        "dWo": dot @ concat.T,
        "dbo": np.sum(dot, axis=1, keepdims=True),
    }


_LSTM_PARAM_GRADS = ("dWf", "dbf", "dWi", "dbi", "dWc", "dbc", "dWo", "dbo")


def _zero_lstm_param_grads(parameters):
    """Zero arrays for the eight LSTM parameter gradients, in key order."""
    return {k: np.zeros_like(parameters[k[1:]]) for k in _LSTM_PARAM_GRADS}


def lstm_backward(da, caches):
    """Backpropagation through time for the LSTM.

    Only hidden-state gradients come in; the cell-state carry starts at zero.  ``T``
    is read from ``da.shape`` and the first ``T`` cell caches are used::

        da_carry = 0, dc_carry = 0
        for t = T-1 .. 0:
            g = lstm_cell_backward(da<t> + da_carry, dc_carry, cache<t>)
            da_carry, dc_carry = g["da_prev"], g["dc_prev"]

    Parameter gradients are summed over the steps.  ``da0`` is the final
    ``da_carry``; there is no ``dc0`` key (``c0`` is a constant zero).

    Parameters
    ----------
    da : ndarray, shape (n_a, m, T)
        Gradient of the loss with respect to every hidden state.
    caches : tuple
        ``(list of cell caches, x)`` from :func:`lstm_forward`.

    Returns
    -------
    dict
        ``dx (n_x, m, T)``, ``da0 (n_a, m)``, then ``dWf, dbf, dWi, dbi, dWc, dbc,
        dWo, dbo`` with the shapes of the parameters, in this key order.
    """
    cell_caches, x = caches
    n_a, m, T = da.shape
    n_x = cell_caches[0][8].shape[0]
    parameters = cell_caches[0][9]

    dx = np.zeros((n_x, m, T))
    grads = _zero_lstm_param_grads(parameters)
    da_carry = np.zeros((n_a, m))
    dc_carry = np.zeros((n_a, m))

    for t in reversed(range(T)):
        g = lstm_cell_backward(da[:, :, t] + da_carry, dc_carry, cell_caches[t])
        dx[:, :, t] = g["dxt"]
        for k in _LSTM_PARAM_GRADS:
            grads[k] += g[k]
        da_carry, dc_carry = g["da_prev"], g["dc_prev"]

    return {"dx": dx, "da0": da_carry, **grads}


def lstm_backward_2018_published(da, caches):
    """The **buggy** 2018 solution behind the published 2018/v3a numbers.

    Kept only so that the published 2018 values can be replayed and shown to differ
    from the correct gradient.  Do not use it for training.  It differs from
    :func:`lstm_backward` in two ways:

    * nothing is carried between steps: step ``t`` gets ``da_next = da<t>`` and
      ``dc_next = 0``, and ``da0`` is the ``da_prev`` of step 0;
    * ``dbi``, ``dbc`` and ``dbo`` are each ``sum_t dbf<t>`` plus their own step-0
      value, i.e. contaminated by the forget-gate bias gradient.

    Parameters
    ----------
    da : ndarray, shape (n_a, m, T)
    caches : tuple
        ``(list of cell caches, x)`` from :func:`lstm_forward`.

    Returns
    -------
    dict
        Same keys and shapes as :func:`lstm_backward`.
    """
    cell_caches, x = caches
    n_a, m, T = da.shape
    n_x = cell_caches[0][8].shape[0]
    parameters = cell_caches[0][9]

    dx = np.zeros((n_x, m, T))
    grads = _zero_lstm_param_grads(parameters)
    dc_zero = np.zeros((n_a, m))

    for t in reversed(range(T)):
        g = lstm_cell_backward(da[:, :, t], dc_zero, cell_caches[t])  # bug 1: no carry
        dx[:, :, t] = g["dxt"]
        for k in _LSTM_PARAM_GRADS:
            grads[k] += g[k]

    # after the loop g holds step 0
    for k in ("dbi", "dbc", "dbo"):
        grads[k] = grads["dbf"] + g[k]  # bug 2: sum of dbf plus the step-0 value

    return {"dx": dx, "da0": g["da_prev"], **grads}
