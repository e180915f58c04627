"""Many-to-many, T_x = T_y: tag every word that belongs to a person's name.

``python -m rnnx.examples.tagging`` reaches >= 98% token accuracy (and >= 95% on the
words that are names in some sentences and ordinary words in others) on held-out
sentences in about 10 s on a 2-core machine (the best tagger that looks at one word
at a time gets about 91%, and about 61% on those ambiguous words).

The sentences come from a small grammar. A person is a first name, a last name, or
both, sometimes after a title (``dr``, ``ms``, ``mr``: tagged 0). Many names are also
ordinary words (``will``, ``may``, ``mark``, ``bill``, ``june``, ``young``, ``stone``,
...) that the grammar uses in their ordinary sense too, so a tagger that only looks up
words cannot be right; it has to read the context on both sides, which is what the
bidirectional GRU gives every step::

    we will mark the bill with june young   ->  0 0 0 0 0 0 1 1
    will young said the bill was frank      ->  1 1 0 0 0 0 0

Model: embedding (V, 32) -> bidirectional GRU (32 -> 2 x 48), variable lengths ->
dense (2, 96) at every step -> softmax cross-entropy over the valid steps, Adam.
"""

import numpy as np

from .. import GRU, heads
from ..optim import Adam, clip_by_global_norm
from ._common import (Params, Progress, arg_parser, dense_params, embedding_params, finish,
                      mean_cross_entropy, pad, parse, step_mask)
from ._common import Vocabulary as _Vocabulary

__all__ = ["FIRST", "LAST", "make_sentence", "make_dataset", "Vocabulary", "Tagger",
           "evaluate", "main"]

# First and last names: disjoint lists; the ones that are also ordinary words in the
# grammar below are the ambiguous words.
FIRST = ["anna", "ben", "carla", "david", "elena", "farid", "hugo", "ines", "jonas", "kofi",
         "lena", "nora", "omar", "paula", "sami", "tara", "yusuf", "zoe",
         "will", "may", "mark", "bill", "june", "hope", "frank", "grace", "rose"]
LAST = ["smith", "garcia", "okafor", "novak", "tanaka", "muller", "rossi", "silva", "ivanova",
        "brown", "young", "king", "cook", "baker", "stone", "wood", "hill"]
TITLES = ["dr", "ms", "mr"]

WORDS = {
    "noun": ["bill", "king", "cook", "baker", "stone", "wood", "hill", "rose", "report",
             "car", "house", "dog", "garden", "letter", "plan", "team"],
    "adj": ["brown", "young", "frank", "green", "old", "quiet", "happy", "long"],
    "verb": ["signed", "painted", "sold", "found", "visited", "left", "built", "liked"],
    "base": ["mark", "sign", "paint", "sell", "find", "visit", "build", "like"],
    "modal": ["will", "may", "must", "can", "should"],
    "month": ["may", "june", "march", "april", "august"],
    "feel": ["hope", "think", "know"],
}

# {P} is a person; {noun}, {adj}, ... draw from WORDS; other words are literal.
TEMPLATES = [
    "{P} met {P} in {month}",
    "{P} said the {noun} was {adj}",
    "yesterday {P} and {P} {verb} the {noun}",
    "we {modal} {base} the {noun} with {P}",
    "the {noun} of {P} {verb} the {adj} {noun}",
    "{P} {modal} call {P} in {month}",
    "according to {P} the {adj} {noun} was {adj}",
    "a {adj} {noun} {verb} the {noun}",
    "i {feel} {P} {modal} {base} the {noun}",
    "{P} , the {noun} , {verb} {P}",
    "the {adj} {noun} {modal} {base} the {noun} in {month}",
    "we {feel} the {noun} was {adj}",
]


def make_person(rng):
    """The words of one person's name: first and last (60%), first only, or last only,
    after a title 20% of the time. Returns ``(words, tags)``; the title is tagged 0."""
    r = rng.random()
    if r < 0.6:
        name = [FIRST[rng.integers(len(FIRST))], LAST[rng.integers(len(LAST))]]
    elif r < 0.8:
        name = [FIRST[rng.integers(len(FIRST))]]
    else:
        name = [LAST[rng.integers(len(LAST))]]
    if rng.random() < 0.2:
        return [TITLES[rng.integers(len(TITLES))]] + name, [0] + [1] * len(name)
    return name, [1] * len(name)


def make_sentence(rng):
    """One sentence of the grammar and its tags.

    Parameters
    ----------
    rng : numpy.random.Generator

    Returns
    -------
    words : list of str
    tags : list of int
        1 for every word of a person's name, 0 for every other word.
    """
    words, tags = [], []
    for token in TEMPLATES[rng.integers(len(TEMPLATES))].split():
        if token == "{P}":
            w, t = make_person(rng)
        elif token.startswith("{"):
            choices = WORDS[token[1:-1]]
            w, t = [choices[rng.integers(len(choices))]], [0]
        else:
            w, t = [token], [0]
        words += w
        tags += t
    return words, tags


class Vocabulary(_Vocabulary):
    """Word <-> id; id 0 is the padding."""

    def __init__(self):
        words = {"<pad>"}
        words.update(FIRST, LAST, TITLES, *WORDS.values())
        for template in TEMPLATES:
            words.update(w for w in template.split() if not w.startswith("{"))
        super().__init__(words)


def make_dataset(n, rng, vocab):
    """`n` sentences as ``(words, ids, tags)`` lists."""
    data = [make_sentence(rng) for _ in range(n)]
    return [(w, vocab.encode(w), t) for w, t in data]


def ambiguous_words():
    """Name words that the grammar also uses as ordinary words."""
    ordinary = set().union(*WORDS.values())
    return sorted((set(FIRST) | set(LAST)) & ordinary)


class Tagger:
    """Embedding -> bidirectional GRU -> dense(2) at every step.

    Parameters
    ----------
    vocab_size : int
    embed, hidden : int
        Embedding width ``E`` and hidden size ``H`` of each direction.
    seed : int
    """

    def __init__(self, vocab_size, embed=32, hidden=48, seed=0):
        rng = np.random.default_rng(seed)
        self.V = vocab_size
        self.gru = GRU(embed, hidden, bidirectional=True, seed=seed + 1)
        self.params = Params()
        W, b = dense_params(rng, 2, 2 * hidden)
        self.p = self.params.add("head", {"emb": embedding_params(rng, vocab_size, embed),
                                          "W": W, "b": b})
        self.params.add("gru", self.gru.state_dict())

    def logits(self, ids, lengths):
        """``logits (T, B, 2)`` for ``ids (T, B)``, and what :meth:`loss_and_grads` needs."""
        x = heads.embedding_forward(ids, self.p["emb"])          # (T, B, E)
        y, _, cache = self.gru.forward(x, lengths=lengths)      # (T, B, 2H)
        return heads.dense_forward(y, self.p["W"], self.p["b"]), (ids, y, cache)

    def loss_and_grads(self, ids, lengths, tags):
        """Mean cross-entropy over the valid steps and the gradient of every parameter."""
        logits, (ids, y, cache) = self.logits(ids, lengths)
        mask = step_mask(lengths, ids.shape[0])
        loss, dlogits = mean_cross_entropy(logits, tags, mask)
        dy, dW, db = heads.dense_backward(dlogits, y, self.p["W"])
        dx, _, gru_grads = self.gru.backward(dy, cache)
        demb = heads.embedding_backward(dx, ids, self.V)
        grads = Params.grads("head", {"emb": demb, "W": dW, "b": db})
        grads.update(Params.grads("gru", gru_grads))
        return loss, grads

    def predict(self, ids, lengths):
        """Tags ``(T, B)`` (argmax at every step; padded steps are meaningless)."""
        return self.logits(ids, lengths)[0].argmax(axis=-1)


def lookup_accuracy(data, ambiguous=()):
    """Accuracy of the best tagger that looks at the word alone (each word tagged with its
    most frequent tag in `data` itself): an upper bound for any context-free tagger.

    Returns ``(token accuracy, accuracy on the words in ambiguous)``.
    """
    ids = np.concatenate([d[1] for d in data])
    tags = np.concatenate([d[2] for d in data])
    ones = np.bincount(ids, weights=tags, minlength=ids.max() + 1)
    count = np.bincount(ids, minlength=ids.max() + 1)
    pred = (2 * ones > count).astype(int)[ids]
    amb = np.isin(ids, list(ambiguous))
    return float(np.mean(pred == tags)), float(np.mean(pred[amb] == tags[amb]))


def evaluate(model, data, ambiguous=()):
    """Token accuracy, sentence accuracy (every tag right) and accuracy on the words in
    `ambiguous`, over ``data`` as :func:`make_dataset` returns it."""
    ids, lengths = pad([d[1] for d in data])
    tags, _ = pad([d[2] for d in data])
    pred = model.predict(ids, lengths)
    mask = step_mask(lengths, ids.shape[0])
    right = (pred == tags) & mask
    amb = np.isin(ids, list(ambiguous)) & mask
    return {"token_accuracy": float(right.sum() / mask.sum()),
            "sentence_accuracy": float(np.mean(right.sum(axis=0) == lengths)),
            "ambiguous_accuracy": float(right[amb].mean()) if amb.any() else float("nan")}


def main(argv=None):
    """Train the tagger on generated sentences and report held-out accuracy.

    Parameters
    ----------
    argv : list of str, optional
        Command-line arguments (``--help`` lists them); None reads ``sys.argv``.

    Returns
    -------
    dict
        ``token_accuracy``, ``sentence_accuracy``, ``ambiguous_accuracy`` (held out),
        ``untrained_token_accuracy`` (the same model before training),
        ``majority_accuracy`` (tagging every word 0), ``lookup_accuracy`` and
        ``lookup_ambiguous_accuracy`` (the best context-free tagger), ``final_loss``, ``seconds``,
        ``steps`` and ``params`` (the trained arrays).
    """
    parser = arg_parser("Tag the words of person names in generated sentences "
                        "(many-to-many, bidirectional GRU).",
                        steps=700, batch_size=32, quick_steps=150, lr=0.01)
    parser.add_argument("--hidden", type=int, default=None,
                        help="GRU hidden size per direction (default 48; 32 with --quick)")
    args = parse(parser, argv)
    hidden = args.hidden if args.hidden is not None else (32 if args.quick else 48)
    if hidden < 1:
        parser.error(f"--hidden must be >= 1, got {hidden}")

    rng = np.random.default_rng(args.seed)
    vocab = Vocabulary()
    test = make_dataset(500 if args.quick else 2000, np.random.default_rng(args.seed + 10_000),
                        vocab)
    amb = vocab.encode(ambiguous_words())
    model = Tagger(len(vocab), hidden=hidden, seed=args.seed)
    opt = Adam(model.params.arrays, lr=args.lr)

    untrained = evaluate(model, test, amb)
    all_tags = np.concatenate([d[2] for d in test])
    majority = float(np.mean(all_tags == 0))
    lookup, lookup_amb = lookup_accuracy(test, amb)
    progress = Progress(args.steps, args.quiet)
    loss = float("nan")
    for step in range(args.steps):
        batch = make_dataset(args.batch_size, rng, vocab)
        ids, lengths = pad([d[1] for d in batch])
        tags, _ = pad([d[2] for d in batch])
        loss, grads = model.loss_and_grads(ids, lengths, tags)
        clip_by_global_norm(grads, 5.0)
        opt.step(grads)
        progress.update(step, loss)

    result = evaluate(model, test, amb)
    result.update(untrained_token_accuracy=untrained["token_accuracy"],
                  majority_accuracy=majority, lookup_accuracy=lookup,
                  lookup_ambiguous_accuracy=lookup_amb, final_loss=loss, seconds=progress.seconds(),
                  steps=args.steps, params=model.params.snapshot())
    if not args.quiet:
        print(f"baselines: untrained {untrained['token_accuracy']:.2%}, all tags 0 "
              f"{majority:.2%}, best word-by-word lookup {lookup:.2%} ({lookup_amb:.2%} on "
              f"ambiguous words)")
        print(f"trained: sentences all right {result['sentence_accuracy']:.2%}, "
              f"ambiguous words {result['ambiguous_accuracy']:.2%}")
    return finish(result, "token_accuracy", 0.98, args.quick)


if __name__ == "__main__":
    main()
