"""One-to-many: from one class token, generate a string of that class, step by step.

``python -m rnnx.examples.generate`` trains in about 20 s on a 2-core machine, after
which >= 95% of the strings it samples (temperature 1) are valid members of the class
they were asked for, and they are varied: most members of every class turn up.

Three classes of strings, each a small language with a rule a sample must keep:

=========  ===================================  ==============================
class      members                              e.g.
=========  ===================================  ==============================
``count``  ``a`` n times then ``b`` n times,    ``aabb``, ``aaaaabbbbb``
           n = 1..6
``ramp``   3 to 7 consecutive rising digits     ``345``, ``0123456``
``echo``   one consonant-vowel syllable,        ``kokoko``, ``mimi``
           repeated 2 to 4 times
=========  ===================================  ==============================

The one input is the class: its token is the input at the first step. From then on
the model feeds itself: each step's input is the character chosen at the step before,
until it chooses the end token. Training uses teacher forcing (the inputs are the true
previous characters, all steps in one call with variable lengths); sampling runs the
GRU one step at a time and carries its state from call to call.

Model: embedding (V, 16) -> GRU (16 -> 64) -> dense (V, 64) at every step -> softmax
cross-entropy over the valid steps, Adam.
"""

import numpy as np

from .. import GRU, heads
from ..optim import Adam, clip_by_global_norm
from ._common import (Params, Progress, arg_parser, dense_params, embedding_params, finish,
                      mean_cross_entropy, pad, parse, step_mask)

__all__ = ["CLASSES", "members", "is_valid", "make_example", "Vocabulary", "Generator",
           "evaluate", "main"]

CLASSES = ["count", "ramp", "echo"]
CONSONANTS = "bdkmnpt"
VOWELS = "aeiou"
MAX_LEN = 24  # sampling stops here if no end token came


def members(cls):
    """Every member of the class `cls`, as a sorted list of strings.

    Raises
    ------
    KeyError
        If `cls` is not one of :data:`CLASSES`.
    """
    if cls == "count":
        return sorted("a" * n + "b" * n for n in range(1, 7))
    if cls == "ramp":
        return sorted("".join(str(d) for d in range(s, s + n))
                      for s in range(10) for n in range(3, 8) if s + n <= 10)
    if cls == "echo":
        return sorted((c + v) * k for c in CONSONANTS for v in VOWELS for k in range(2, 5))
    raise KeyError(f"cls must be one of {', '.join(CLASSES)}, got {cls!r}")


_MEMBERS = {c: frozenset(members(c)) for c in CLASSES}


def is_valid(cls, s):
    """Whether the string `s` is a member of the class `cls` (checked by its rule).

    Examples
    --------
    >>> is_valid("count", "aaabbb"), is_valid("count", "aabbb")
    (True, False)
    >>> is_valid("ramp", "4567"), is_valid("echo", "kokoko"), is_valid("echo", "kokaka")
    (True, True, False)
    """
    if cls == "count":
        n = len(s) // 2
        return 1 <= n <= 6 and s == "a" * n + "b" * n
    if cls == "ramp":
        return (3 <= len(s) <= 7 and s.isdigit()
                and all(int(b) == int(a) + 1 for a, b in zip(s, s[1:])))
    if cls == "echo":
        return (len(s) in (4, 6, 8) and s[0] in CONSONANTS and s[1] in VOWELS
                and s == s[:2] * (len(s) // 2))
    raise KeyError(f"cls must be one of {', '.join(CLASSES)}, got {cls!r}")


def make_example(rng):
    """A random ``(class index, member)``: the class uniformly, then the member."""
    k = int(rng.integers(len(CLASSES)))
    m = members(CLASSES[k])
    return k, m[rng.integers(len(m))]


class Vocabulary:
    """Ids: 0 the end token, then one start token per class, then the characters."""

    def __init__(self):
        chars = sorted(set("".join(m for c in CLASSES for m in _MEMBERS[c])))
        self.tokens = ["<end>"] + [f"<{c}>" for c in CLASSES] + chars
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        self.end = 0

    def __len__(self):
        return len(self.tokens)

    def start(self, k):
        """The start token of class index `k`."""
        return 1 + k

    def sequences(self, k, s):
        """Inputs ``[<class>, s...]`` and targets ``[s..., <end>]`` (one longer than s)."""
        chars = [self.ids[ch] for ch in s]
        return [self.start(k)] + chars, chars + [self.end]

    def decode(self, ids):
        """The characters of `ids` up to the first end token."""
        out = []
        for i in ids:
            if i == self.end:
                break
            out.append(self.tokens[i] if len(self.tokens[i]) == 1 else "?")
        return "".join(out)


class Generator:
    """Embedding -> GRU -> dense(V) at every step.

    Parameters
    ----------
    vocab_size : int
    embed, hidden : int
    seed : int
    """

    def __init__(self, vocab_size, embed=16, hidden=64, seed=0):
        rng = np.random.default_rng(seed)
        self.V = vocab_size
        self.gru = GRU(embed, hidden, seed=seed + 1)
        self.params = Params()
        W, b = dense_params(rng, vocab_size, hidden)
        self.p = self.params.add("head", {"emb": embedding_params(rng, vocab_size, embed),
                                          "W": W, "b": b})
        self.params.add("gru", self.gru.state_dict())

    def loss_and_grads(self, inputs, targets, lengths):
        """Teacher forcing: mean cross-entropy over the valid steps and the gradients.

        ``inputs``, ``targets`` ``(T, B)`` ids, ``lengths`` ``(B,)``.
        """
        x = heads.embedding_forward(inputs, self.p["emb"])         # (T, B, E)
        h, _, cache = self.gru.forward(x, lengths=lengths)        # (T, B, H)
        logits = heads.dense_forward(h, self.p["W"], self.p["b"])  # (T, B, V)
        mask = step_mask(lengths, inputs.shape[0])
        loss, dlogits = mean_cross_entropy(logits, targets, mask)
        dh, dW, db = heads.dense_backward(dlogits, h, self.p["W"])
        dx, _, gru_grads = self.gru.backward(dh, cache)
        demb = heads.embedding_backward(dx, inputs, self.V)
        grads = Params.grads("head", {"emb": demb, "W": dW, "b": db})
        grads.update(Params.grads("gru", gru_grads))
        return loss, grads

    def sample(self, start_ids, rng, temperature=1.0, max_len=MAX_LEN, end=0):
        """Generate from each start token until the end token (or `max_len` steps).

        Parameters
        ----------
        start_ids : ndarray of int, shape (B,)
            The first input of every sequence (a class token).
        rng : numpy.random.Generator
        temperature : float
            Logits are divided by it before the softmax (> 0; lower is greedier).
        max_len : int
        end : int
            The end token.

        Returns
        -------
        ids : ndarray of int64, shape (max_len, B)
            The chosen tokens; after a sequence's end token the rest is `end`.
        """
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature!r}")
        B = len(start_ids)
        out = np.full((max_len, B), end, dtype=np.int64)
        prev = np.asarray(start_ids, dtype=np.int64)
        state = None
        done = np.zeros(B, dtype=bool)
        for t in range(max_len):
            x = heads.embedding_forward(prev[None, :], self.p["emb"])     # (1, B, E)
            h, state, _ = self.gru.forward(x, state=state)                 # state carried
            logits = heads.dense_forward(h[0], self.p["W"], self.p["b"])    # (B, V)
            z = logits.astype(np.float64) / temperature
            p = np.exp(z - z.max(axis=1, keepdims=True))
            p /= p.sum(axis=1, keepdims=True)
            # one uniform draw per sequence, inverted through the cumulative distribution
            choice = (p.cumsum(axis=1) < rng.random((B, 1))).sum(axis=1)
            choice = np.minimum(choice, self.V - 1)
            choice[done] = end
            out[t] = choice
            done |= choice == end
            if done.all():
                break
            prev = choice
        return out


def evaluate(model, vocab, n_per_class, rng, temperature=1.0):
    """Sample `n_per_class` strings of every class and check them.

    Returns
    -------
    dict
        ``valid`` (fraction of all samples that are valid members of their class),
        ``valid_by_class`` and ``coverage_by_class`` (distinct valid samples over the
        size of the class), and ``examples`` (a few samples of each class).
    """
    valid, by_class, coverage, examples = 0, {}, {}, {}
    for k, cls in enumerate(CLASSES):
        ids = model.sample(np.full(n_per_class, vocab.start(k)), rng, temperature)
        strings = [vocab.decode(ids[:, b]) for b in range(n_per_class)]
        ok = [s for s in strings if is_valid(cls, s)]
        valid += len(ok)
        by_class[cls] = len(ok) / n_per_class
        coverage[cls] = len(set(ok)) / len(_MEMBERS[cls])
        examples[cls] = strings[:6]
    return {"valid": valid / (n_per_class * len(CLASSES)), "valid_by_class": by_class,
            "coverage_by_class": coverage, "examples": examples}


def main(argv=None):
    """Train the generator and report how many of its samples are valid.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (``--help`` lists them); None reads ``sys.argv``.

    Returns
    -------
    dict
        ``valid``, ``valid_by_class``, ``coverage_by_class``, ``examples`` (samples
        after training, see :func:`evaluate`), ``untrained_valid`` (the same model's
        samples before training), ``final_loss``, ``seconds``, ``steps`` and ``params``.
    """
    parser = arg_parser("Generate strings of a requested class from a class token "
                        "(one-to-many, GRU, sampled step by step).",
                        steps=1500, batch_size=32, quick_steps=300, lr=0.02)
    parser.add_argument("--samples", type=int, default=None,
                        help="samples per class to check (default 300; 100 with --quick)")
    parser.add_argument("--temperature", type=float, default=1.0,
                        help="sampling temperature (default 1)")
    args = parse(parser, argv)
    n_samples = args.samples if args.samples is not None else (100 if args.quick else 300)
    if n_samples < 1:
        parser.error(f"--samples must be >= 1, got {n_samples}")
    if not args.temperature > 0:
        parser.error(f"--temperature must be > 0, got {args.temperature}")

    rng = np.random.default_rng(args.seed)
    vocab = Vocabulary()
    model = Generator(len(vocab), seed=args.seed)
    opt = Adam(model.params.arrays, lr=args.lr)
    untrained = evaluate(model, vocab, n_samples, np.random.default_rng(args.seed + 1))

    progress = Progress(args.steps, args.quiet)
    loss = float("nan")
    for step in range(args.steps):
        pairs = [vocab.sequences(*make_example(rng)) for _ in range(args.batch_size)]
        inputs, lengths = pad([p[0] for p in pairs])
        targets, _ = pad([p[1] for p in pairs])
        loss, grads = model.loss_and_grads(inputs, targets, lengths)
        clip_by_global_norm(grads, 5.0)
        opt.lr = args.lr * (1.0 - 0.9 * step / max(1, args.steps))  # to a tenth at the end
        opt.step(grads)
        progress.update(step, loss)

    result = evaluate(model, vocab, n_samples, np.random.default_rng(args.seed + 2),
                      args.temperature)
    result.update(untrained_valid=untrained["valid"], final_loss=loss,
                  seconds=progress.seconds(), steps=args.steps,
                  params=model.params.snapshot())
    if not args.quiet:
        for cls in CLASSES:
            print(f"{cls:6s} valid {result['valid_by_class'][cls]:.0%}, distinct members "
                  f"seen {result['coverage_by_class'][cls]:.0%}, e.g. "
                  f"{' '.join(result['examples'][cls])}")
        print(f"baseline: untrained samples valid {untrained['valid']:.2%}")
    return finish(result, "valid", 0.95, args.quick)


if __name__ == "__main__":
    main()
