"""Choosing the next token: temperature, top-k, top-p (nucleus), greedy and beam search.

These functions see only scores over a vocabulary of ``V`` tokens; the model that makes
the scores is :class:`rnnx.LanguageModel`. ``banned`` ids (e.g. ``<UNK>``) get
probability 0 everywhere.
"""

import numbers

import numpy as np

__all__ = ["log_softmax", "next_token_probs", "choose", "beam_search"]


def log_softmax(logits):
    """``log softmax`` over the last axis, in float64 (stable for large logits).

    logits (..., V) -> (..., V).
    """
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _check(temperature, top_k, top_p, V):
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real) or \
            not np.isfinite(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a number > 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, numbers.Integral)
                              or top_k < 1):
        raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, numbers.Real)
                              or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def next_token_probs(logits, temperature=1.0, top_k=None, top_p=None, banned=()):
    """The distribution to draw the next token from.

    Parameters
    ----------
    logits : ndarray of shape (V,)
        Unnormalised scores of the next token.
    temperature : float > 0, default 1
        Divides the logits: below 1 sharpens the distribution, above 1 flattens it.
    top_k : int, optional
        Keep only the ``k`` most likely tokens (ties at the border broken by lower id).
    top_p : float in (0, 1], optional
        Keep the smallest set of most likely tokens whose probability adds up to at
        least ``top_p`` (the nucleus), applied after `top_k`.
    banned : sequence of int
        Ids that must never be drawn.

    Returns
    -------
    probs : ndarray of float64, shape (V,)
        Sums to 1; zero outside the kept tokens.

    Raises
    ------
    ValueError
        For an option out of range, or if `banned` leaves no token.
    """
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 1 or logits.size == 0:
        raise ValueError(f"logits must have shape (V,), got {logits.shape}")
    V = logits.size
    _check(temperature, top_k, top_p, V)
    z = logits / float(temperature)
    keep = np.ones(V, dtype=bool)
    for i in banned:
        keep[int(i)] = False
    if not keep.any():
        raise ValueError("banned leaves no token to choose")
    z = np.where(keep, z, -np.inf)
    order = np.argsort(-z, kind="stable")  # most likely first, ties by lower id
    if top_k is not None and top_k < V:
        keep[order[top_k:]] = False
    z = np.where(keep, z, -np.inf)
    p = np.exp(z - z.max())
    p /= p.sum()
    if top_p is not None and top_p < 1:
        cum = np.cumsum(p[order])
        n = int(np.searchsorted(cum, top_p - 1e-12)) + 1  # first prefix reaching top_p
        keep[order[n:]] = False
        p = np.where(keep, p, 0.0)
        p /= p.sum()
    return p


def choose(probs, rng=None, greedy=False):
    """Draw one id from ``probs`` (V,) with ``rng`` (a ``numpy.random.Generator``), or
    take the most likely one (lowest id among ties) when ``greedy``."""
    if greedy:
        return int(np.argmax(probs))
    return int(rng.choice(len(probs), p=probs))


def beam_search(step, state, logp0, beams, length, eos_id=None, banned=()):
    """Beam search: the ``beams`` most likely continuations, extended one token at a time.

    Parameters
    ----------
    step : callable
        ``step(ids, state) -> (logp, state)``: feeds ``ids`` (K,) with the batched state
        of K beams and returns the next token's log-probabilities ``(K, V)`` and the new
        state.
    state : object
        State of one beam after the prime (batch size 1).
    logp0 : ndarray of shape (V,)
        Log-probabilities of the first token to choose.
    beams : int
        Beam width.
    length : int
        Tokens to generate per beam (fewer when a beam ends with `eos_id`).
    eos_id : int, optional
        A beam that chooses this id is finished (the id is kept in its tokens).
    banned : sequence of int
        Ids never chosen.

    Returns
    -------
    list of (tokens, logp)
        Every final beam, best first: ``tokens`` is a list of ids and ``logp`` the sum
        of their log-probabilities. Scores are compared as they are (no length
        normalisation).

    Notes
    -----
    The state is an array with the batch on axis 1 (as a layer's ``(layers, B, H)``) or
    a tuple of such arrays (the LSTM's ``(h, c)``); the rows of the surviving beams are
    picked from it before every call of ``step``.
    """
    if isinstance(beams, bool) or not isinstance(beams, numbers.Integral) or beams < 1:
        raise ValueError(f"beams must be an int >= 1, got {beams!r}")
    banned = [int(b) for b in banned]
    done = []
    live = [([], 0.0)]
    logp = np.asarray(logp0, dtype=np.float64)[None, :]
    for _ in range(int(length)):
        cand = []
        lp = logp.copy()
        lp[:, banned] = -np.inf
        for k, (toks, score) in enumerate(live):
            top = np.argsort(-lp[k], kind="stable")[:beams]
            cand.extend((score + lp[k, v], k, int(v)) for v in top if np.isfinite(lp[k, v]))
        cand.sort(key=lambda c: -c[0])
        nxt, rows, ids = [], [], []
        for score, k, v in cand:
            toks = live[k][0] + [v]
            if eos_id is not None and v == eos_id:
                done.append((toks, float(score)))
            else:
                nxt.append((toks, float(score)))
                rows.append(k)
                ids.append(v)
                if len(nxt) == beams:
                    break
        live = nxt
        done.sort(key=lambda c: -c[1])
        # scores only fall as beams grow: stop when no live beam can reach the finished ones
        if not live or (len(done) >= beams and live[0][1] <= done[beams - 1][1]):
            break
        state = _select(state, np.asarray(rows))
        logp, state = step(np.asarray(ids, dtype=np.int64), state)
    out = done + live
    out.sort(key=lambda c: -c[1])
    return out[:beams]


def _select(state, rows):
    if isinstance(state, tuple):
        return tuple(np.ascontiguousarray(s[:, rows]) for s in state)
    return np.ascontiguousarray(state[:, rows])
