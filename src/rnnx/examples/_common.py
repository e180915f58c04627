"""Small helpers shared by the examples: padding, parameters, options, reporting.

Nothing here is part of rnnx's API; the examples keep their models in plain dicts of
NumPy arrays so that every forward and backward call is visible in the example itself.
"""

import argparse
import time

import numpy as np

from .. import heads

__all__ = ["pad", "step_mask", "dense_params", "embedding_params", "Params",
           "arg_parser", "parse", "Progress", "finish"]


def pad(seqs, pad_id=0):
    """Lists of ids as one time-major array.

    Parameters
    ----------
    seqs : sequence of sequences of int
        ``B`` sequences, each of length >= 1.
    pad_id : int, default 0
        Written after the end of each shorter sequence.

    Returns
    -------
    ids : ndarray of int64, shape (T, B)
        ``T`` is the longest length.
    lengths : ndarray of int64, shape (B,)

    Raises
    ------
    ValueError
        If `seqs` is empty or holds an empty sequence.

    Examples
    --------
    >>> ids, lengths = pad([[5, 6, 7], [8]])
    >>> ids.tolist(), lengths.tolist()
    ([[5, 8], [6, 0], [7, 0]], [3, 1])
    """
    if len(seqs) == 0:
        raise ValueError("seqs must hold at least one sequence")
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    if lengths.min() < 1:
        raise ValueError("seqs must not hold an empty sequence")
    ids = np.full((int(lengths.max()), len(seqs)), pad_id, dtype=np.int64)
    for b, s in enumerate(seqs):
        ids[:len(s), b] = s
    return ids, lengths


def step_mask(lengths, T):
    """``mask (T, B)``: True at the valid steps ``t < lengths[b]``."""
    return np.arange(T)[:, None] < np.asarray(lengths)[None, :]


def dense_params(rng, out_features, in_features, dtype=np.float32):
    """``weight (O, F)`` and ``bias (O,)`` drawn as PyTorch's ``nn.Linear`` draws them."""
    k = 1.0 / np.sqrt(in_features)
    return (rng.uniform(-k, k, (out_features, in_features)).astype(dtype),
            rng.uniform(-k, k, out_features).astype(dtype))


def embedding_params(rng, vocab_size, dim, dtype=np.float32):
    """``weight (V, E)`` with entries of standard deviation 0.1."""
    return (0.1 * rng.standard_normal((vocab_size, dim))).astype(dtype)


class Params:
    """The parameters of a model built from several parts, as one flat dict.

    Layers give their own arrays (``layer.state_dict()``), so an optimizer that updates
    :attr:`arrays` in place trains the layers too. Keys are ``"<part>.<name>"``.
    """

    def __init__(self):
        self.arrays = {}

    def add(self, part, arrays):
        """Add a dict of arrays under the prefix `part`; returns that dict.

        The dict must be complete: arrays put into it later are not added.
        """
        for name, a in arrays.items():
            self.arrays[f"{part}.{name}"] = a
        return arrays

    @staticmethod
    def grads(part, grads):
        """A part's gradient dict with its keys prefixed like :meth:`add`."""
        return {f"{part}.{name}": g for name, g in grads.items()}

    def snapshot(self):
        """Copies of every array (to compare two runs)."""
        return {k: a.copy() for k, a in self.arrays.items()}


def arg_parser(description, *, steps, batch_size, quick_steps, lr, quick_lr=None):
    """The options every example has: ``--seed``, ``--steps``, ``--batch-size``, ``--lr``,
    ``--quick`` and ``--quiet``; `quick_steps` and `quick_lr` are the defaults with
    ``--quick``."""
    quick_lr = lr if quick_lr is None else quick_lr
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--seed", type=int, default=0, help="seed of data and initial weights")
    p.add_argument("--steps", type=int, default=None,
                   help=f"training steps (default {steps}; {quick_steps} with --quick)")
    p.add_argument("--batch-size", type=int, default=batch_size, help="examples per step")
    p.add_argument("--lr", type=float, default=None,
                   help=f"Adam's learning rate (default {lr}; {quick_lr} with --quick)")
    p.add_argument("--quick", action="store_true",
                   help="a smaller, faster configuration (the tests use it)")
    p.add_argument("--quiet", action="store_true", help="print only the final result")
    p.set_defaults(_steps=steps, _quick_steps=quick_steps, _lr=lr, _quick_lr=quick_lr)
    return p


def parse(parser, argv):
    """Parse `argv` and fill in ``steps`` and ``lr`` from ``--quick``; checks the counts and the
    learning rate (a bad value exits with a usage message, as argparse does)."""
    args = parser.parse_args(argv)
    if args.steps is None:
        args.steps = args._quick_steps if args.quick else args._steps
    if args.lr is None:
        args.lr = args._quick_lr if args.quick else args._lr
    if args.steps < 0:
        parser.error(f"--steps must be >= 0, got {args.steps}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if not args.lr > 0 or args.lr == float("inf"):
        parser.error(f"--lr must be > 0 and finite, got {args.lr}")
    return args


class Progress:
    """Prints the running mean loss a few times during training (unless quiet)."""

    def __init__(self, steps, quiet, every=None):
        self.steps, self.quiet = steps, quiet
        self.every = every or max(1, steps // 5)
        self.total, self.count = 0.0, 0
        self.start = time.perf_counter()

    def update(self, step, loss, extra=""):
        """Record the mean loss of step `step` (0-based); print at every `every`-th."""
        self.total += float(loss)
        self.count += 1
        if not self.quiet and ((step + 1) % self.every == 0 or step + 1 == self.steps):
            print(f"step {step + 1:5d}/{self.steps}  loss {self.total / self.count:.4f}"
                  f"{extra}  ({time.perf_counter() - self.start:.1f} s)", flush=True)
            self.total, self.count = 0.0, 0

    def seconds(self):
        return time.perf_counter() - self.start


def finish(result, name, target, quick):
    """Print the final line: the held-out score against the stated target."""
    value = result[name]
    stated = "" if quick else f" (stated target >= {target:.0%}: " \
        f"{'reached' if value >= target else 'NOT reached'})"
    print(f"held-out {name.replace('_', ' ')}: {value:.2%}{stated}; "
          f"trained in {result['seconds']:.1f} s", flush=True)
    return result


class Vocabulary:
    """Tokens <-> ids: `first` (padding or a start token) is id 0, the others follow sorted."""

    kind = "word"  # what a token is, for the error message

    def __init__(self, tokens, first="<pad>"):
        self.tokens = [first] + sorted(set(tokens) - {first})
        self.ids = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def encode(self, tokens):
        """Ids of `tokens`; KeyError naming the first unknown one."""
        try:
            return [self.ids[t] for t in tokens]
        except KeyError as e:
            raise KeyError(f"{self.kind} {e.args[0]!r} is not in the vocabulary") from None


def mean_cross_entropy(logits, targets, mask=None):
    """Softmax cross-entropy averaged over the kept positions, and its gradient.

    Returns ``(loss, dlogits)``: the mean loss as a float and ``dL/dlogits`` of that mean.
    """
    loss, probs = heads.softmax_cross_entropy(logits, targets, mask)
    n = float(targets.size if mask is None else mask.sum())
    dlogits = heads.softmax_cross_entropy_backward(probs, targets, mask)
    dlogits *= 1.0 / n
    return float(loss) / n, dlogits
