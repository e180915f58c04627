"""Replay the published course values stored as seeded recipes.

``course-published-values.json`` (in the ``shared/contracts`` folder beside the
repository checkout) lists every expected value that the course notebooks publish,
together with the exact steps that produce its inputs.  This module replays those
steps against any implementation of the course functions and checks the results.

The shared folder is ``<checkout>/../shared`` unless the environment variable
``RNNX_SHARED`` points elsewhere.

Typical use::

    data = load()
    for recipe in data["recipes"]:
        ns = replay(recipe, sbs=rnnx, dinos=rnnx.dinos)
        check(recipe, ns)
"""

import copy
import json
import os
import re
from pathlib import Path

import numpy as np

__all__ = [
    "shared_dir",
    "load",
    "replay",
    "mismatches",
    "check",
    "parse_model_listing",
    "DEFAULT_RTOL",
    "DEFAULT_ATOL",
]

DEFAULT_RTOL = 1e-7
DEFAULT_ATOL = 1e-8

_VALUES_FILE = "contracts/course-published-values.json"
_VOCAB = ["\n"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]


def shared_dir():
    """The ``shared`` folder: ``$RNNX_SHARED`` or ``shared/`` beside the checkout."""
    env = os.environ.get("RNNX_SHARED")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "shared"


def load(path=None):
    """Parse ``course-published-values.json``.

    Parameters
    ----------
    path : str or Path, optional
        The JSON file; default ``shared_dir() / "contracts/course-published-values.json"``.

    Returns
    -------
    dict
        With keys ``about``, ``sources``, ``dinos_txt``, ``recipes``, ``model``.
    """
    path = Path(path) if path is not None else shared_dir() / _VALUES_FILE
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ----------------------------------------------------------------------------------
# replay
# ----------------------------------------------------------------------------------


def _resolve_function(qualname, sbs, dinos):
    """``"sbs.f"`` or ``"dinos.f"`` -> the function object."""
    prefix, _, name = qualname.partition(".")
    if prefix == "sbs":
        if hasattr(sbs, name):
            return getattr(sbs, name)
        # helpers that exist only in the reference, e.g. lstm_backward_2018_published
        from rnnx.reference import course

        return getattr(course, name)
    if prefix == "dinos":
        return getattr(dinos, name)
    raise ValueError(f"unknown function namespace in {qualname!r}")


def _call_args(args, ns):
    """Turn recipe call arguments into ``(positional, keyword)``."""
    positional, keyword = [], {}
    for arg in args:
        if isinstance(arg, str):
            positional.append(ns[arg])
        elif isinstance(arg, dict) and "lit" in arg:
            positional.append(arg["lit"])
        elif isinstance(arg, dict) and "kw" in arg:
            keyword.update(arg["kw"])
        else:
            raise ValueError(f"unknown call argument {arg!r}")
    return positional, keyword


def replay(recipe, sbs, dinos):
    """Run the steps of one recipe and return its namespace.

    Parameters
    ----------
    recipe : dict
        One entry of ``load()["recipes"]``.
    sbs : module or object
        Provides the Step-by-Step functions (``rnn_forward``, ...).  A name it lacks
        (such as ``lstm_backward_2018_published``) is taken from
        ``rnnx.reference.course``.
    dinos : module or object
        Provides the Dinosaurus Island functions (``clip``, ``sample``, ...).

    Returns
    -------
    dict
        Every variable the recipe created, by name.

    Notes
    -----
    The recipes draw from NumPy's **global** RNG (``np.random.seed``,
    ``np.random.randn``), exactly as the notebooks did.
    """
    ns = {}
    for step in recipe["steps"]:
        op, rest = step[0], step[1:]
        if op == "seed":
            np.random.seed(rest[0])
        elif op == "randn":
            name, shape = rest[0], rest[1]
            value = np.random.randn(*shape)
            if len(rest) > 2:
                value = value * rest[2]
            ns[name] = value
        elif op == "zeros":
            ns[rest[0]] = np.zeros(rest[1])
        elif op == "set":
            ns[rest[0]] = copy.deepcopy(rest[1])
        elif op == "params":
            ns[rest[0]] = {key: ns[var] for key, var in rest[1].items()}
        elif op == "deepcopy":
            ns[rest[0]] = copy.deepcopy(ns[rest[1]])
        elif op == "charmap":
            ns["char_to_ix"] = {ch: i for i, ch in enumerate(_VOCAB)}
            ns["ix_to_char"] = {i: ch for i, ch in enumerate(_VOCAB)}
        elif op == "call":
            func = _resolve_function(rest[0], sbs, dinos)
            positional, keyword = _call_args(rest[1], ns)
            result = func(*positional, **keyword)
            out = rest[2]
            if isinstance(out, str):
                ns[out] = result
            else:
                if len(result) != len(out):
                    raise AssertionError(
                        f"{recipe['id']}: {rest[0]} returned {len(result)} values, "
                        f"the recipe unpacks {len(out)} ({', '.join(out)})"
                    )
                ns.update(zip(out, result))
        else:
            raise ValueError(f"{recipe['id']}: unknown recipe step {step!r}")
    return ns


# ----------------------------------------------------------------------------------
# check
# ----------------------------------------------------------------------------------


def _plain(value):
    """NumPy arrays, scalars and tuples -> plain Python lists/numbers for ``==``."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _compare(actual, expected, options, ns):
    """Return ``None`` if `actual` matches `expected`, else a reason string."""
    if isinstance(expected, dict) and "var" in expected:
        expected = ns[expected["var"]]
    exact = options.get("exact", False)

    # strings, booleans and shapes (tuples of ints) compare exactly
    if exact or isinstance(expected, (str, bool)) or isinstance(actual, tuple):
        if isinstance(expected, np.ndarray) or isinstance(actual, np.ndarray):
            same = np.array_equal(np.asarray(actual), np.asarray(expected))
        else:
            same = _plain(actual) == _plain(expected)
        return None if same else "not equal"

    rtol = options.get("rtol", DEFAULT_RTOL)
    atol = options.get("atol", DEFAULT_ATOL)
    try:
        a = np.asarray(actual, dtype=np.float64)
        e = np.asarray(expected, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        return f"not numeric ({exc})"
    if a.shape != e.shape:
        return f"shape {a.shape} != expected shape {e.shape}"
    if not np.allclose(a, e, rtol=rtol, atol=atol):
        worst = float(np.max(np.abs(a - e)))
        return f"max |actual - expected| = {worst:.3g} (rtol={rtol:g}, atol={atol:g})"
    return None


def mismatches(recipe, ns):
    """Evaluate every expectation of `recipe` in `ns`; list the ones that fail.

    Each expectation is ``[python_expression, expected_value(, options)]``.  The
    expression is evaluated with the recipe's variables and ``np`` in scope.
    Options: ``rtol``/``atol`` (defaults ``DEFAULT_RTOL``/``DEFAULT_ATOL``),
    ``exact`` (compare with ``==``), ``note`` (ignored).  An expected value
    ``{"var": name}`` means "the recipe variable `name`".  Strings, booleans and
    tuples (shapes) always compare exactly.

    Returns
    -------
    list of str
        One line per failed expectation; empty when all pass.
    """
    scope = dict(ns)
    scope["np"] = np
    failures = []
    for item in recipe["expected"]:
        expr, expected = item[0], item[1]
        options = item[2] if len(item) > 2 else {}
        try:
            actual = eval(expr, scope)  # noqa: S307 - trusted project data
        except Exception as exc:  # report, do not hide, a broken expression
            failures.append(f"{expr}: raised {type(exc).__name__}: {exc}")
            continue
        reason = _compare(actual, expected, options, ns)
        if reason is not None:
            failures.append(
                f"{expr}: {reason}\n    expected {expected!r}\n    got      {_plain(actual)!r}"
            )
    return failures


def check(recipe, ns):
    """Assert that every expectation of `recipe` holds in the replayed `ns`.

    Raises
    ------
    AssertionError
        Listing every failed expectation with the expected and the actual value.
    """
    failures = mismatches(recipe, ns)
    if failures:
        raise AssertionError(
            f"recipe {recipe['id']!r}: {len(failures)} of {len(recipe['expected'])} "
            "expectations failed:\n  " + "\n  ".join(failures)
        )


# ----------------------------------------------------------------------------------
# model() listings
# ----------------------------------------------------------------------------------

_HEADER = re.compile(r"^Iteration: (\d+), Loss: (\S+)$")


def parse_model_listing(text, dino_names=7):
    """Parse what ``dinos.model`` prints into ``{iteration: (loss_str, names)}``.

    The listing is a sequence of blocks::

        Iteration: 2000, Loss: 27.884160
        <empty line>
        Liusskeomnolxeros
        ... (dino_names names, one per line)
        <two empty lines>

    Other lines (the ``verbose`` output) between blocks are ignored.

    Parameters
    ----------
    text : str
        Captured standard output of ``model()``.
    dino_names : int, default 7
        Number of names printed per block.  Names are taken by count, not up to
        the next empty line, because a sampled name can itself be empty.

    Returns
    -------
    dict
        ``{iteration (int): (loss as printed (str), [names] (list of str))}``.

    Raises
    ------
    ValueError
        If a block is cut short.
    """
    lines = text.split("\n")
    listing = {}
    i = 0
    while i < len(lines):
        match = _HEADER.match(lines[i])
        if not match:
            i += 1
            continue
        iteration, loss = int(match.group(1)), match.group(2)
        names = lines[i + 2 : i + 2 + dino_names]
        if lines[i + 1 : i + 2] != [""] or len(names) != dino_names:
            raise ValueError(f"incomplete listing block for iteration {iteration}")
        listing[iteration] = (loss, names)
        i += 2 + dino_names
    return listing
