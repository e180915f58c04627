"""Text for language models: tokens, a vocabulary, the default corpus and TBPTT batches.

A corpus becomes one long stream of token ids. At the character level every character
is a token; at the word level every line is split into words and punctuation marks and
ends with the ``<EOS>`` token, so a model learns where sentences end. Every vocabulary
holds two special tokens: ``<UNK>`` (id 0) for tokens it does not know and ``<EOS>``
(id 1) for the end of a sentence.

For truncated backpropagation through time the stream is cut into ``B`` equal rows
read side by side; chunk ``k`` holds steps ``k*T .. k*T+T-1`` of every row, so the
hidden state at the end of a chunk is the right start for the next one.
"""

import collections
import numbers
import re

import numpy as np

__all__ = ["UNK", "EOS", "LEVELS", "tokenize", "detokenize", "Vocabulary", "default_corpus",
           "split_ids", "Batches"]

UNK = "<UNK>"
EOS = "<EOS>"
LEVELS = ("char", "word")

_WORD = re.compile(r"\w+(?:'\w+)*|[^\w\s]")
_PUNCT = re.compile(r"[^\w\s]")


def _level(level):
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
    return level


def tokenize(text, level="char"):
    """Split text into tokens.

    Parameters
    ----------
    text : str
    level : {"char", "word"}
        ``"char"``: every character (newlines included). ``"word"``: words (letters,
        digits, inner apostrophes) and single punctuation marks, with ``<EOS>`` after
        every non-empty line.

    Returns
    -------
    list of str

    Examples
    --------
    >>> tokenize("Hi, you.\\n\\nBye", "word")
    ['Hi', ',', 'you', '.', '<EOS>', 'Bye', '<EOS>']
    >>> tokenize("ab", "char")
    ['a', 'b']
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if _level(level) == "char":
        return list(text)
    tokens = []
    for line in text.splitlines():
        words = _WORD.findall(line)
        if words:
            tokens.extend(words)
            tokens.append(EOS)
    return tokens


def detokenize(tokens, level="char"):
    """Join tokens back into text: characters as they are; words with spaces, no space
    before punctuation, and a newline for ``<EOS>``."""
    if _level(level) == "char":
        return "".join(tokens)
    out = []
    for tok in tokens:
        if tok == EOS:
            out.append("\n")
        elif out and not out[-1].endswith("\n") and not _PUNCT.fullmatch(tok):
            out.append(" " + tok)
        else:
            out.append(tok)
    return "".join(out)


class Vocabulary:
    """Tokens and their ids: ``<UNK>`` = 0, ``<EOS>`` = 1, then the corpus's tokens.

    Parameters
    ----------
    tokens : sequence of str
        The ordinary tokens, in id order (ids 2, 3, ...). Must be unique and not
        special.

    Attributes
    ----------
    itos : list of str
        Token of every id.
    stoi : dict of str to int
        Id of every token.
    """

    specials = (UNK, EOS)
    unk_id = 0
    eos_id = 1

    def __init__(self, tokens):
        tokens = list(tokens)
        for t in tokens:
            if not isinstance(t, str):
                raise TypeError(f"tokens must be str, got {type(t).__name__}")
            if t in self.specials:
                raise ValueError(f"tokens must not contain the special token {t!r}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens must be unique")
        self.itos = list(self.specials) + tokens
        self.stoi = {t: i for i, t in enumerate(self.itos)}

    @classmethod
    def build(cls, tokens, min_count=1, max_size=None):
        """The vocabulary of a token list: the most frequent tokens first.

        Parameters
        ----------
        tokens : sequence of str
        min_count : int, default 1
            Tokens seen fewer times become ``<UNK>``.
        max_size : int, optional
            At most this many ids in all (the two specials included); the rarest
            tokens become ``<UNK>``.

        Returns
        -------
        Vocabulary
            Ties in frequency are broken alphabetically, so the ids do not depend on
            the order of the corpus.
        """
        if isinstance(min_count, bool) or not isinstance(min_count, numbers.Integral) \
                or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        if max_size is not None and (isinstance(max_size, bool) or
                                     not isinstance(max_size, numbers.Integral) or max_size < 3):
            raise ValueError(f"max_size must be an int >= 3 (two specials and a token), "
                             f"got {max_size!r}")
        counts = collections.Counter(t for t in tokens if t not in cls.specials)
        kept = sorted((t for t, n in counts.items() if n >= min_count),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max_size - len(cls.specials)]
        return cls(kept)

    def __len__(self):
        return len(self.itos)

    def __eq__(self, other):
        return isinstance(other, Vocabulary) and self.itos == other.itos

    def encode(self, tokens):
        """Ids of ``tokens`` (unknown ones as ``<UNK>``), an int64 array of shape (N,)."""
        get = self.stoi.get
        return np.fromiter((get(t, self.unk_id) for t in tokens), dtype=np.int64,
                           count=len(tokens))

    def decode(self, ids):
        """Tokens of ``ids`` (a sequence of ints in ``0 .. len(self)-1``)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.itos):
                raise ValueError(f"id {i} is outside the vocabulary 0..{len(self.itos) - 1}")
            out.append(self.itos[i])
        return out

    def to_list(self):
        """The ordinary tokens in id order (what the constructor takes)."""
        return self.itos[len(self.specials):]

    def __repr__(self):
        return f"Vocabulary({len(self)} tokens)"


def default_corpus(max_chars=300_000):
    """English text that ships with CPython: the help topics of ``pydoc_data.topics``.

    Parameters
    ----------
    max_chars : int, default 300000
        Length of the slice returned (the whole text is about 460 000 characters).

    Returns
    -------
    str
        The topics in alphabetical order of their names, joined; works offline.
    """
    try:
        from pydoc_data.topics import topics
    except ImportError as e:  # pragma: no cover - stripped-down Python builds only
        raise RuntimeError("the default corpus needs pydoc_data (part of CPython's standard "
                           "library); give a text file instead") from e
    text = "".join(topics[name] for name in sorted(topics))
    return text[:int(max_chars)]


def split_ids(ids, val_fraction):
    """Split a token stream into a training head and a validation tail.

    Parameters
    ----------
    ids : ndarray of int, shape (N,)
    val_fraction : float in [0, 1)

    Returns
    -------
    train, val : ndarray
        ``val`` is the last ``round(N * val_fraction)`` ids (empty for 0).
    """
    if not isinstance(val_fraction, numbers.Real) or not 0 <= val_fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction!r}")
    n_val = round(len(ids) * float(val_fraction))
    return ids[:len(ids) - n_val], ids[len(ids) - n_val:]


class Batches:
    """A token stream as ``B`` parallel rows, read in chunks of ``T`` steps (TBPTT).

    Parameters
    ----------
    ids : ndarray of int, shape (N,)
    batch_size : int
        ``B``, rows read side by side.
    seq_len : int
        ``T``, steps per chunk (backpropagation is truncated at chunk borders).

    Attributes
    ----------
    data : ndarray of int64, shape (B, N // B)
        Row ``b`` is the ``b``-th contiguous piece of the stream (the tail that does not
        fill a row is dropped).
    n_chunks : int
        Chunks per pass: ``ceil((N // B - 1) / T)``; the last may be shorter.

    Raises
    ------
    ValueError
        If the stream is too short for two steps per row.
    """

    def __init__(self, ids, batch_size, seq_len):
        for name, v in (("batch_size", batch_size), ("seq_len", seq_len)):
            if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
                raise ValueError(f"{name} must be an int >= 1, got {v!r}")
        ids = np.asarray(ids, dtype=np.int64)
        per_row = len(ids) // batch_size
        if per_row < 2:
            raise ValueError(f"the text is too short: {len(ids)} tokens cannot fill "
                             f"batch_size={batch_size} rows of at least 2 tokens")
        self.data = ids[:per_row * batch_size].reshape(batch_size, per_row)
        self.batch_size, self.seq_len = int(batch_size), int(seq_len)
        self.n_chunks = -(-(per_row - 1) // seq_len)

    def chunk(self, k):
        """Inputs and targets of chunk ``k``: two int64 arrays of shape (T_k, B).

        ``targets[t, b]`` is the token after ``inputs[t, b]`` in row ``b``.
        """
        if not 0 <= k < self.n_chunks:
            raise IndexError(f"chunk {k} is outside 0..{self.n_chunks - 1}")
        start = k * self.seq_len
        stop = min(start + self.seq_len, self.data.shape[1] - 1)
        x = np.ascontiguousarray(self.data[:, start:stop].T)
        y = np.ascontiguousarray(self.data[:, start + 1:stop + 1].T)
        return x, y

    def __len__(self):
        return self.n_chunks
