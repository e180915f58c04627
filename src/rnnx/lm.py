"""A token-level language model: embedding -> RNN/GRU/LSTM -> dense -> softmax.

Built only from rnnx's pieces: :func:`rnnx.heads.embedding_forward` turns token ids into
vectors, a layer of :mod:`rnnx.layers` runs over them, :func:`rnnx.heads.dense_forward`
maps every hidden state to scores over the vocabulary and
:func:`rnnx.heads.softmax_cross_entropy` gives the loss. Backward is the same chain in
reverse. Training lives in :mod:`rnnx.training`, choosing tokens in
:mod:`rnnx.sampling`, files in :mod:`rnnx.checkpoint`.

Examples
--------
>>> import rnnx
>>> text = "the cat sat on the mat. " * 40
>>> lm = rnnx.LanguageModel.from_text(text, hidden_size=32, seed=0)
>>> result = lm.fit(text, steps=30, batch_size=4, seq_len=16, progress=False)
>>> result.history[-1][1] < result.history[0][1]
True
>>> text = lm.sample(40, prime="the ", seed=1)          # a str of about 40 characters
>>> lm.score("the cat sat on the mat.")["perplexity"] < len(lm.vocab)
True
"""

import numbers

import numpy as np

from . import checkpoint as _ckpt
from . import heads as _heads
from . import sampling as _sampling
from ._aligned import aligned_copy
from .layers import GRU, LSTM, RNN
from .text import EOS, LEVELS, Vocabulary, detokenize, tokenize

__all__ = ["LanguageModel", "CELLS"]

CELLS = {"rnn": RNN, "gru": GRU, "lstm": LSTM}


def _int(name, value, lo=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
        raise ValueError(f"{name} must be an int >= {lo}, got {value!r}")
    return int(value)


class LanguageModel:
    """Predicts the next token of a text from the tokens before it.

    Parameters
    ----------
    vocab : Vocabulary
        The tokens (:class:`rnnx.text.Vocabulary`); ``V = len(vocab)``.
    level : {"char", "word"}, default "char"
        How text is split into tokens (:func:`rnnx.text.tokenize`).
    cell : {"lstm", "gru", "rnn"}, default "lstm"
    hidden_size : int, default 256
        ``H``.
    num_layers : int, default 1
    embedding_size : int, default 64
        ``E``, width of the token vectors.
    dropout : float in [0, 1), default 0
        Applied between stacked layers and to the last layer's output, in training only.
    dtype : {numpy.float32, numpy.float64}, default float32
    seed : int, optional
        Seeds the initial weights and the dropout masks.

    Attributes
    ----------
    rnn : rnnx.RNN, rnnx.GRU or rnnx.LSTM
        The recurrent layer, input ``E``, hidden ``H``.
    embedding : ndarray of shape (V, E)
    decoder_weight : ndarray of shape (V, H)
    decoder_bias : ndarray of shape (V,)

    Notes
    -----
    For ids ``x (T, B)``: ``e = embedding[x]`` ``(T, B, E)``; ``h = rnn(e)`` ``(T, B, H)``;
    ``logits = h decoder_weightᵀ + decoder_bias`` ``(T, B, V)``; the loss is the mean
    over positions of ``-log softmax(logits)[target]``.
    """

    def __init__(self, vocab, level="char", cell="lstm", hidden_size=256, num_layers=1,
                 embedding_size=64, dropout=0.0, dtype=np.float32, seed=None):
        if not isinstance(vocab, Vocabulary):
            raise TypeError(f"vocab must be an rnnx.text.Vocabulary, got {type(vocab).__name__}")
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {cell!r}")
        H = _int("hidden_size", hidden_size)
        L = _int("num_layers", num_layers)
        E = _int("embedding_size", embedding_size)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) or \
                not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        if seed is not None:
            seed = _int("seed", seed, lo=0)
        self.vocab, self.level, self.cell = vocab, level, cell
        self.hidden_size, self.num_layers, self.embedding_size = H, L, E
        self.dropout, self.dtype, self.seed = float(dropout), dtype, seed
        self.rng = np.random.default_rng(seed)
        V = len(vocab)
        self.embedding = aligned_copy(self.rng.standard_normal((V, E)), dtype)
        k = 1.0 / np.sqrt(H)
        self.decoder_weight = aligned_copy(self.rng.uniform(-k, k, (V, H)), dtype)
        self.decoder_bias = aligned_copy(np.zeros(V), dtype)
        layer_seed = int(self.rng.integers(2 ** 63))
        self.rnn = CELLS[cell](E, H, num_layers=L, dropout=self.dropout, dtype=dtype,
                               seed=layer_seed)
        self.training_state = None  # set by fit() and load(): what resuming needs

    # -- construction ------------------------------------------------------------------

    @classmethod
    def from_text(cls, text, level="char", min_count=1, max_size=None, **kwargs):
        """A new model whose vocabulary is built from ``text``.

        ``min_count`` and ``max_size`` go to :meth:`Vocabulary.build`; the other keyword
        arguments to the constructor.
        """
        tokens = tokenize(text, level)
        if not tokens:
            raise ValueError("text is empty: there is nothing to build a vocabulary from")
        return cls(Vocabulary.build(tokens, min_count, max_size), level=level, **kwargs)

    def config(self):
        """The constructor's arguments (without the vocabulary) as a JSON-ready dict."""
        return {"level": self.level, "cell": self.cell, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "embedding_size": self.embedding_size,
                "dropout": self.dropout, "dtype": self.dtype.name, "seed": self.seed}

    def parameters(self):
        """Every parameter array, by name (the model's own arrays, updated in place by an
        optimizer): ``embedding.weight``, ``rnn.<layer key>``, ``decoder.weight``,
        ``decoder.bias``."""
        out = {"embedding.weight": self.embedding}
        out.update({f"rnn.{k}": v for k, v in self.rnn.state_dict().items()})
        out["decoder.weight"] = self.decoder_weight
        out["decoder.bias"] = self.decoder_bias
        return out

    def load_parameters(self, params):
        """Replace every parameter with a copy from ``params`` (keyed as
        :meth:`parameters`)."""
        mine = self.parameters()
        missing = [k for k in mine if k not in params]
        extra = [k for k in params if k not in mine]
        if missing or extra:
            raise KeyError(f"parameters do not match the model: missing {missing}, "
                           f"unexpected {extra}")
        for k, v in mine.items():
            if np.shape(params[k]) != v.shape:
                raise ValueError(f"parameter {k!r} must have shape {v.shape}, "
                                 f"got {np.shape(params[k])}")
        self.embedding = aligned_copy(params["embedding.weight"], self.dtype)
        self.decoder_weight = aligned_copy(params["decoder.weight"], self.dtype)
        self.decoder_bias = aligned_copy(params["decoder.bias"], self.dtype)
        self.rnn.load_state_dict({k[4:]: params[k] for k in mine if k.startswith("rnn.")})

    @property
    def start_id(self):
        """The token fed before the first one: ``<EOS>`` at the word level (a sentence
        starts after one), the newline at the character level (if known)."""
        if self.level == "char" and "\n" in self.vocab.stoi:
            return self.vocab.stoi["\n"]
        return self.vocab.eos_id

    # -- forward and backward ----------------------------------------------------------

    def initial_state(self, batch_size):
        """Zeros shaped like the layer's state for ``batch_size`` sequences."""
        shape = (self.num_layers, batch_size, self.hidden_size)
        if self.cell == "lstm":
            return (np.zeros(shape, self.dtype), np.zeros(shape, self.dtype))
        return np.zeros(shape, self.dtype)

    def _check_ids(self, name, ids, ndim):
        ids = np.asarray(ids)
        if ids.dtype.kind not in "iu" or ids.ndim != ndim or ids.size == 0:
            raise ValueError(f"{name} must be a non-empty integer array with {ndim} axes, "
                             f"got {ids.dtype} of shape {ids.shape}")
        if ids.min() < 0 or ids.max() >= len(self.vocab):
            raise ValueError(f"{name} must hold ids in 0..{len(self.vocab) - 1}")
        return ids.astype(np.int64, copy=False)

    def forward(self, ids, state=None):
        """Scores of the next token at every step (evaluation mode, no dropout).

        Parameters
        ----------
        ids : ndarray of int, shape (T, B)
        state : optional
            The layer's state to start from (zeros when None).

        Returns
        -------
        logits : ndarray of shape (T, B, V)
        state : the layer's state after the last step
        """
        ids = self._check_ids("ids", ids, 2)
        was = self.rnn.training
        self.rnn.eval()
        try:
            e = _heads.embedding_forward(ids, self.embedding)
            h, state, _ = self.rnn.forward(e, state)
        finally:
            self.rnn.train(was)
        return _heads.dense_forward(h, self.decoder_weight, self.decoder_bias), state

    def step(self, ids, state):
        """One step for ``K`` sequences at once (what sampling uses).

        Parameters
        ----------
        ids : ndarray of int, shape (K,)
            The current token of every sequence.
        state : the layer's state for batch ``K``, or None for zeros.

        Returns
        -------
        logits : ndarray of shape (K, V)
            Scores of the next token.
        state : the new state.
        """
        ids = self._check_ids("ids", ids, 1)
        logits, state = self.forward(ids[None, :], state)
        return logits[0], state

    def loss_and_grads(self, inputs, targets, state=None):
        """Mean cross-entropy of one chunk and the gradients of every parameter.

        Parameters
        ----------
        inputs, targets : ndarray of int, shape (T, B)
        state : the layer's state to start from (None for zeros); training mode
            (dropout) is used.

        Returns
        -------
        loss : float
            ``Σ -log p(target) / (T B)``.
        grads : dict keyed like :meth:`parameters`
        state : the layer's state after the chunk (to carry into the next one)
        """
        x = self._check_ids("inputs", inputs, 2)
        y = self._check_ids("targets", targets, 2)
        if x.shape != y.shape:
            raise ValueError(f"targets must have the shape of inputs {x.shape}, got {y.shape}")
        self.rnn.train()
        e = _heads.embedding_forward(x, self.embedding)              # (T, B, E)
        h, state, cache = self.rnn.forward(e, state)                 # (T, B, H)
        mask = None
        if self.dropout > 0:
            keep = self.rng.random(h.shape) >= self.dropout
            mask = (keep / (1.0 - self.dropout)).astype(self.dtype)
            h = h * mask
        logits = _heads.dense_forward(h, self.decoder_weight, self.decoder_bias)
        total, probs = _heads.softmax_cross_entropy(logits, y)
        n = y.size
        dlogits = _heads.softmax_cross_entropy_backward(probs, y)
        dlogits *= self.dtype.type(1.0 / n)                          # gradient of the mean
        dh, dw, db = _heads.dense_backward(dlogits, h, self.decoder_weight)
        if mask is not None:
            dh *= mask
        de, _, rgrads = self.rnn.backward(dh, cache)
        grads = {"embedding.weight": _heads.embedding_backward(de, x, len(self.vocab))}
        grads.update({f"rnn.{k}": v for k, v in rgrads.items()})
        grads["decoder.weight"] = dw
        grads["decoder.bias"] = db
        return float(total) / n, grads, state

    def evaluate(self, ids, batch_size=32, seq_len=64):
        """Mean cross-entropy per token of a token stream (no dropout, state carried).

        Parameters
        ----------
        ids : ndarray of int, shape (N,)

        Returns
        -------
        float
        """
        from .text import Batches
        ids = self._check_ids("ids", ids, 1)
        B = max(1, min(batch_size, (len(ids) - 1) // 2))
        batches = Batches(ids, B, seq_len)
        state, total, count = None, 0.0, 0
        for k in range(len(batches)):
            x, y = batches.chunk(k)
            logits, state = self.forward(x, state)
            loss, _ = _heads.softmax_cross_entropy(logits, y)
            total += float(loss)
            count += y.size
        return total / count

    # -- training ----------------------------------------------------------------------

    def fit(self, text=None, **options):
        """Train on ``text`` (a str), or continue the training a checkpoint holds.

        See :func:`rnnx.training.fit` for the options (steps, batch size, optimizer,
        clipping, decay, validation, early stopping, checkpoints, progress).

        Returns
        -------
        rnnx.training.FitResult
        """
        from .training import fit
        return fit(self, text, **options)

    # -- generating and scoring --------------------------------------------------------

    def _prime_ids(self, prime):
        if not isinstance(prime, str):
            raise TypeError(f"prime must be a str, got {type(prime).__name__}")
        tokens = tokenize(prime, self.level)
        if self.level == "word" and tokens and tokens[-1] == EOS and \
                not prime.endswith(("\n", "\r")):
            tokens = tokens[:-1]  # an unfinished line does not end its sentence
        return [self.start_id] + list(self.vocab.encode(tokens))

    def _run_prime(self, prime):
        ids = np.asarray(self._prime_ids(prime), dtype=np.int64)
        logits, state = self.forward(ids[:, None], None)
        return logits[-1, 0], state

    def sample(self, length=200, prime="", temperature=1.0, top_k=None, top_p=None,
               greedy=False, beam=None, seed=None, no_unk=False, stop_at_eos=True):
        """Generate text that continues ``prime``.

        Parameters
        ----------
        length : int, default 200
            Tokens to generate (characters or words).
        prime : str, default ""
            Text to start from; the model reads it first. Not part of the result.
        temperature, top_k, top_p
            See :func:`rnnx.sampling.next_token_probs`.
        greedy : bool, default False
            Always take the most likely token (deterministic).
        beam : int, optional
            Beam search with this many beams: the most likely continuation of
            ``length`` tokens found (deterministic; temperature, top-k and top-p unused).
        seed : int, optional
            Seeds the draws (same seed, same text).
        no_unk : bool, default False
            Never produce ``<UNK>``.
        stop_at_eos : bool, default True
            Stop after producing ``<EOS>`` (kept in the result as a newline at the word
            level; not shown at the character level).

        Returns
        -------
        str
        """
        length = _int("length", length, lo=0)
        if beam is not None:
            beam = _int("beam", beam)
        _sampling.next_token_probs(np.zeros(1), temperature, top_k, top_p)  # check options
        banned = [self.vocab.unk_id] if no_unk else []
        if length == 0:
            return ""
        logits, state = self._run_prime(prime)
        eos = self.vocab.eos_id if stop_at_eos else None
        if beam is not None:
            def step(ids, st):
                lg, st = self.step(ids, st)
                return _sampling.log_softmax(lg), st
            best = _sampling.beam_search(step, state, _sampling.log_softmax(logits), beam,
                                         length, eos, banned)[0][0]
            return self._text(best)
        rng = np.random.default_rng(seed)
        out = []
        for _ in range(length):
            probs = _sampling.next_token_probs(logits, temperature, top_k, top_p, banned)
            tok = _sampling.choose(probs, rng, greedy)
            out.append(tok)
            if eos is not None and tok == eos:
                break
            lg, state = self.step(np.array([tok]), state)
            logits = lg[0]
        return self._text(out)

    def _text(self, ids):
        tokens = self.vocab.decode(ids)
        if self.level == "char":
            tokens = [t for t in tokens if t != EOS]
        return detokenize(tokens, self.level)

    def beams(self, length, beam, prime="", no_unk=False, stop_at_eos=True):
        """Every final beam of :meth:`sample` with ``beam=...``: a list of
        ``(ids, logp)`` pairs, best first, ``logp`` the sum of the chosen tokens'
        log-probabilities."""
        length, beam = _int("length", length), _int("beam", beam)
        logits, state = self._run_prime(prime)

        def step(ids, st):
            lg, st = self.step(ids, st)
            return _sampling.log_softmax(lg), st
        return _sampling.beam_search(step, state, _sampling.log_softmax(logits), beam, length,
                                     self.vocab.eos_id if stop_at_eos else None,
                                     [self.vocab.unk_id] if no_unk else [])

    def score(self, text):
        """How likely the model finds ``text``.

        The text is tokenized (at the word level every line ends with ``<EOS>``, which is
        scored too) and each token is predicted from the ones before it, starting after
        :attr:`start_id`.

        Returns
        -------
        dict
            ``tokens`` (list of str), ``token_logprobs`` (natural log of each token's
            probability), ``logprob`` (their sum: the log-probability of the text),
            ``prob`` (``exp(logprob)``), ``logprob_per_token`` (the mean),
            ``perplexity`` (``exp(-mean)``), ``unknown`` (tokens scored as ``<UNK>``).

        Raises
        ------
        ValueError
            If the text has no tokens.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        tokens = tokenize(text, self.level)
        if not tokens:
            raise ValueError("text has no tokens to score")
        ids = self.vocab.encode(tokens)
        inputs = np.concatenate([[self.start_id], ids[:-1]]).astype(np.int64)
        logits, _ = self.forward(inputs[:, None], None)
        logp = _sampling.log_softmax(logits[:, 0])[np.arange(len(ids)), ids]
        total = float(logp.sum())
        mean = total / len(ids)
        return {"tokens": tokens, "token_logprobs": [float(v) for v in logp],
                "logprob": total, "prob": float(np.exp(total)), "logprob_per_token": mean,
                "perplexity": float(np.exp(-mean)),
                "unknown": int(np.sum(ids == self.vocab.unk_id))}

    # -- files -------------------------------------------------------------------------

    def save(self, path):
        """Write the model (and, after :meth:`fit`, what resuming needs) to ``path``
        atomically; see :mod:`rnnx.checkpoint`."""
        arrays = {f"param/{k}": v for k, v in self.parameters().items()}
        meta = {"kind": "language-model", "config": self.config(),
                "vocab": self.vocab.to_list(), "rng": self.rng.bit_generator.state,
                "rnn_rng": self.rnn._rng.bit_generator.state}
        if self.training_state is not None:
            t_arrays, t_meta = self.training_state
            arrays.update(t_arrays)
            meta["training"] = t_meta
        _ckpt.save(path, arrays, meta)

    @classmethod
    def load(cls, path):
        """A model read from a file written by :meth:`save` (with its training state,
        so that :meth:`fit` can resume).

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        rnnx.checkpoint.CheckpointError
            If it is damaged, modified, of another version or not a language model.
        """
        arrays, meta = _ckpt.load(path)
        try:
            if meta.get("kind") != "language-model":
                raise _ckpt.CheckpointError(f"{path} does not hold a language model")
            cfg = dict(meta["config"])
            vocab = Vocabulary(meta["vocab"])
            model = cls(vocab, **cfg)
            model.load_parameters({k[6:]: v for k, v in arrays.items()
                                   if k.startswith("param/")})
            model.rng.bit_generator.state = meta["rng"]
            model.rnn._rng.bit_generator.state = meta["rnn_rng"]
        except _ckpt.CheckpointError:
            raise
        except (KeyError, TypeError, ValueError) as e:
            raise _ckpt.CheckpointError(f"{path} holds an inconsistent model: {e}") from None
        if "training" in meta:
            model.training_state = ({k: v for k, v in arrays.items()
                                     if not k.startswith("param/")}, meta["training"])
        return model

    def __repr__(self):
        return (f"LanguageModel({self.level}, {self.cell}, V={len(self.vocab)}, "
                f"E={self.embedding_size}, H={self.hidden_size}, layers={self.num_layers})")
