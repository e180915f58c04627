"""Training a :class:`rnnx.LanguageModel`: truncated BPTT, optimizers, clipping, decay,
validation, early stopping, checkpoints, a divergence guard and exact resuming.

The token stream is read as ``B`` parallel rows in chunks of ``T`` steps
(:class:`rnnx.text.Batches`); the hidden state at the end of a chunk starts the next
one (and is reset at the start of every pass over the data). One chunk is one
optimizer step. Everything that decides the trajectory (parameters, optimizer state,
the dropout generators, the position in the data, the carried hidden state, the
early-stopping counters) is saved in a checkpoint, so a resumed run repeats an
uninterrupted one bit for bit.
"""

import dataclasses
import hashlib
import math
import numbers
import os
import sys
import time

import numpy as np

from . import optim as _optim
from .text import Batches, split_ids, tokenize

__all__ = ["FitResult", "TrainingDiverged", "fit", "DEFAULTS"]

#: The training options and their defaults (chosen so that the default corpus gives
#: readable samples in about a minute on two cores; see the README).
DEFAULTS = {
    "steps": 500, "batch_size": 32, "seq_len": 64, "optimizer": "adam", "lr": 2e-3,
    "momentum": 0.9, "clip_value": None, "clip_norm": 5.0, "lr_decay": 1.0,
    "decay_every": 100, "val_fraction": 0.05, "eval_every": 100, "patience": None,
    "max_loss_factor": 3.0,
}


class TrainingDiverged(RuntimeError):
    """The loss became NaN/infinite or exploded; training stopped before saving it."""


@dataclasses.dataclass
class FitResult:
    """What :func:`fit` did.

    Attributes
    ----------
    steps : int
        Optimizer steps done in total (earlier runs of a resumed training included).
    history : list of (step, loss)
        Training loss of every step.
    val_history : list of (step, loss)
        Validation loss at every evaluation.
    stopped : str
        ``"steps"`` (done), ``"early-stopping"``, or ``"diverged"``.
    message : str
        One line that says why training stopped.
    checkpoint : str or None
        The file written last (None without a checkpoint path).
    final_val : float or None
        Validation loss of the final parameters (also measured when the run ends
        between two evaluations; then it is not part of ``val_history``).
    """
    steps: int
    history: list = dataclasses.field(repr=False)
    val_history: list = dataclasses.field(repr=False)
    stopped: str
    message: str
    checkpoint: object = None
    final_val: object = None

    @property
    def loss(self):
        """Training loss of the last step (NaN when no step was done)."""
        return self.history[-1][1] if self.history else float("nan")

    @property
    def val_loss(self):
        """Validation loss at the end (NaN without validation)."""
        return float("nan") if self.final_val is None else self.final_val


def _opt_config(options):
    name = options["optimizer"]
    if name not in _optim.OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {', '.join(_optim.OPTIMIZERS)}, "
                         f"got {name!r}")
    return name


def _make_optimizer(params, options):
    name, lr = options["optimizer"], options["lr"]
    if name == "sgd":
        return _optim.SGD(params, lr=lr)
    if name == "momentum":
        return _optim.SGD(params, lr=lr, momentum=options["momentum"])
    return _optim.OPTIMIZERS[name](params, lr=lr)


def _check_options(options):
    unknown = [k for k in options if k not in DEFAULTS]
    if unknown:
        raise TypeError(f"unknown training option {unknown[0]!r}")
    o = dict(DEFAULTS)
    # None means "the default", except where it means "off"
    o.update({k: v for k, v in options.items()
              if v is not None or k in ("clip_value", "clip_norm", "patience")})
    for name in ("steps", "batch_size", "seq_len", "decay_every", "eval_every"):
        v = o[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if o["patience"] is not None and (isinstance(o["patience"], bool) or
                                      not isinstance(o["patience"], numbers.Integral) or
                                      o["patience"] < 1):
        raise ValueError(f"patience must be an int >= 1, got {o['patience']!r}")
    for name in ("lr", "max_loss_factor"):
        v = o[name]
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not v > 0 or \
                not math.isfinite(v):
            raise ValueError(f"{name} must be a number > 0, got {v!r}")
    for name in ("clip_value", "clip_norm"):
        v = o[name]
        if v is not None and (isinstance(v, bool) or not isinstance(v, numbers.Real) or
                              not v > 0 or not math.isfinite(v)):
            raise ValueError(f"{name} must be a number > 0 (or None for no clipping), "
                             f"got {v!r}")
    if not isinstance(o["lr_decay"], numbers.Real) or not 0 < o["lr_decay"] <= 1:
        raise ValueError(f"lr_decay must be in (0, 1], got {o['lr_decay']!r}")
    if not isinstance(o["momentum"], numbers.Real) or not 0 <= o["momentum"] < 1:
        raise ValueError(f"momentum must be in [0, 1), got {o['momentum']!r}")
    split_ids(np.zeros(0), o["val_fraction"])  # checks the range
    _opt_config(o)
    return o


def _corpus_digest(ids):
    return hashlib.sha256(np.ascontiguousarray(ids, dtype=np.int64).tobytes()).hexdigest()


class _Progress:
    """A tqdm bar (when wanted and on a terminal) or plain log lines, and samples."""

    def __init__(self, enabled, total, initial, sample_every, sample_fn, stream):
        self.enabled, self.stream = enabled, stream
        self.sample_every, self.sample_fn = sample_every, sample_fn
        self.bar = None
        self.t0, self.tokens = time.perf_counter(), 0
        if enabled and hasattr(stream, "isatty") and stream.isatty():
            from tqdm import tqdm
            self.bar = tqdm(total=total, initial=initial, file=stream, unit="step",
                            dynamic_ncols=True, leave=True)

    def write(self, line):
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(line, file=self.stream)
        else:
            print(line, file=self.stream, flush=True)

    def rate(self):
        return self.tokens / max(time.perf_counter() - self.t0, 1e-9)

    def step(self, step, loss, tokens):
        self.tokens += tokens
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{loss:.3f}", ppl=f"{math.exp(min(loss, 50)):.2f}",
                                 tok_s=f"{self.rate():.0f}", refresh=False)
            self.bar.update(1)
        if self.enabled and self.sample_every and step % self.sample_every == 0:
            self.write(f"--- sample at step {step} (loss {loss:.3f}) ---\n"
                       f"{self.sample_fn()}\n---")

    def evaluated(self, step, loss, val):
        if self.bar is None:
            v = "" if val is None else f"  val {val:.3f} (ppl {math.exp(min(val, 50)):.2f})"
            self.write(f"step {step}: loss {loss:.3f} (ppl {math.exp(min(loss, 50)):.2f})"
                       f"{v}  {self.rate():.0f} tokens/s")
        elif val is not None:
            self.write(f"step {step}: validation loss {val:.3f} "
                       f"(ppl {math.exp(min(val, 50)):.2f})")

    def close(self):
        if self.bar is not None:
            self.bar.close()


def fit(model, text=None, *, checkpoint=None, resume=False, progress=True, sample_every=None,
        sample_length=200, stream=None, **options):
    """Train ``model`` on ``text``, or continue the training its checkpoint holds.

    Parameters
    ----------
    model : rnnx.LanguageModel
    text : str
        The corpus (tokenized at the model's level; tokens outside the vocabulary count
        as ``<UNK>``). When resuming it must be the corpus of the first run.
    checkpoint : str or os.PathLike, optional
        Written (atomically) after every evaluation and at the end; a diverged run
        leaves the last good one in place.
    resume : bool, default False
        Continue from ``model.training_state`` (set by :meth:`LanguageModel.load`), with
        the options saved there; only ``steps`` (the total to reach) may be given anew.
    progress : bool, default True
        A progress bar with loss, perplexity and tokens per second when ``stream`` is a
        terminal, else a line per evaluation; samples every ``sample_every`` steps; a
        summary at the end. False prints nothing.
    sample_every : int, optional
        Steps between printed samples (default: every evaluation).
    sample_length : int, default 200
    stream : file, default sys.stderr
    steps : int, default 500
        Optimizer steps in total (one chunk of ``batch_size`` x ``seq_len`` tokens each).
    batch_size : int, default 32
    seq_len : int, default 64
        Backpropagation is truncated after this many steps; the state carries on.
    optimizer : {"adam", "sgd", "momentum", "adagrad", "rmsprop"}, default "adam"
    lr : float, default 2e-3
    momentum : float, default 0.9
        For ``optimizer="momentum"``.
    clip_value : float, optional
        Clip every gradient entry to ``[-clip_value, clip_value]``.
    clip_norm : float or None, default 5
        Scale the gradients so that their global L2 norm is at most this.
    lr_decay : float in (0, 1], default 1
        The learning rate is ``lr * lr_decay ** (step // decay_every)``.
    decay_every : int, default 100
    val_fraction : float in [0, 1), default 0.05
        The tail of the corpus held out for validation.
    eval_every : int, default 100
        Steps between validations (and checkpoints).
    patience : int, optional
        Stop when the validation loss has not improved for this many evaluations.
    max_loss_factor : float, default 3
        Stop (diverged) when a step's loss exceeds ``max_loss_factor * log(V)``, three
        times the loss of guessing uniformly, or is NaN/infinite, or the gradient norm is.

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        For a bad option, an empty or too short corpus, or (resuming) another corpus.
    """
    from .lm import LanguageModel
    if not isinstance(model, LanguageModel):
        raise TypeError(f"model must be an rnnx.LanguageModel, got {type(model).__name__}")
    stream = sys.stderr if stream is None else stream
    if resume:
        if model.training_state is None:
            raise ValueError("resume=True needs a model loaded from a checkpoint written "
                             "during training")
        t_arrays, t_meta = model.training_state
        extra = [k for k in options if k != "steps" and options[k] is not None]
        if extra:
            raise ValueError(f"option {extra[0]!r} cannot change when resuming (the "
                             "checkpoint's options are used)")
        saved = dict(t_meta["options"])
        if options.get("steps") is not None:
            saved["steps"] = options["steps"]
        o = _check_options(saved)
    else:
        o = _check_options(options)
    if text is None or not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    ids = model.vocab.encode(tokenize(text, model.level))
    if len(ids) == 0:
        raise ValueError("the corpus is empty")
    digest = _corpus_digest(ids)
    train_ids, val_ids = split_ids(ids, o["val_fraction"])
    batches = Batches(train_ids, o["batch_size"], o["seq_len"])
    has_val = len(val_ids) >= 2
    params = model.parameters()
    opt = _make_optimizer(params, o)
    limit = o["max_loss_factor"] * math.log(len(model.vocab))

    # the state of the run
    step, chunk, state = 0, 0, None
    history, val_history = [], []
    best_val, bad_evals = math.inf, 0
    if resume:
        if t_meta["corpus_sha256"] != digest:
            raise ValueError("the corpus differs from the one this checkpoint was trained on")
        step, chunk = int(t_meta["step"]), int(t_meta["chunk"])
        opt.load_state_dict({**t_meta["optimizer"],
                             **{k[6:]: v for k, v in t_arrays.items()
                                if k.startswith("optim/")}})
        if "state/h" in t_arrays:
            h = t_arrays["state/h"].astype(model.dtype)
            state = (h, t_arrays["state/c"].astype(model.dtype)) if model.cell == "lstm" else h
        history = [(int(s), v) for s, v in t_arrays["history/train"].tolist()]
        val_history = [(int(s), v) for s, v in t_arrays["history/val"].tolist()]
        best_val = float(t_meta["best_val"])
        bad_evals = int(t_meta["bad_evals"])

    def snapshot():
        arrays = {f"optim/{k}": v for k, v in opt.state_dict().items()
                  if isinstance(v, np.ndarray)}
        if state is not None:
            h = state[0] if isinstance(state, tuple) else state
            arrays["state/h"] = h
            if isinstance(state, tuple):
                arrays["state/c"] = state[1]
        arrays["history/train"] = np.array(history, dtype=np.float64).reshape(-1, 2)
        arrays["history/val"] = np.array(val_history, dtype=np.float64).reshape(-1, 2)
        meta = {"options": o, "step": step, "chunk": chunk, "corpus_sha256": digest,
                "optimizer": {k: v for k, v in opt.state_dict().items()
                              if not isinstance(v, np.ndarray)},
                "best_val": best_val if math.isfinite(best_val) else 1e308,
                "bad_evals": bad_evals}
        return arrays, meta

    def save():
        if checkpoint is None:
            return None
        model.training_state = snapshot()
        model.save(checkpoint)
        return os.fspath(checkpoint)

    seed = model.seed if model.seed is not None else 0

    def sample_text():
        return model.sample(sample_length, seed=seed + step, temperature=0.8)

    bar = _Progress(bool(progress), o["steps"], step,
                    sample_every if sample_every is not None else o["eval_every"],
                    sample_text, stream)
    saved_path, last_good = None, None
    final_val = val_history[-1][1] if val_history else None
    stopped, message = "steps", ""
    try:
        while step < o["steps"]:
            if chunk == 0:
                state = None  # a new pass over the data starts from zeros
            x, y = batches.chunk(chunk)
            opt.lr = o["lr"] * o["lr_decay"] ** (step // o["decay_every"])
            try:
                loss, grads, new_state = model.loss_and_grads(x, y, state)
            except ValueError as e:
                # the kernels refuse NaN/infinity in weights, states and logits: the
                # parameters have blown up (to NaN, or so far that float overflows)
                if "NaN or infinity" not in str(e):
                    raise
                loss, grads = math.nan, None
            norm = 0.0
            if grads is not None and math.isfinite(loss):
                if o["clip_value"] is not None:
                    _optim.clip_by_value(grads, o["clip_value"])
                # without clip_norm, a bound no norm reaches: it only measures the norm
                norm = _optim.clip_by_global_norm(
                    grads, o["clip_norm"] if o["clip_norm"] is not None else 1e300)
            if not math.isfinite(loss) or loss > limit or not math.isfinite(norm):
                if not math.isfinite(loss):
                    what = f"loss {loss}"
                elif loss > limit:
                    what = (f"loss {loss:.4g} above {o['max_loss_factor']:g} x log(V) = "
                            f"{limit:.4g}")
                else:
                    what = f"gradient norm {norm}"
                kept = (f"; the last good checkpoint (step {last_good}) is kept at "
                        f"{saved_path}") if saved_path else "; no checkpoint was written"
                stopped = "diverged"
                message = (f"training diverged at step {step + 1} ({what}); stopped{kept}. "
                           "Try a lower learning rate or stronger clipping.")
                break
            opt.step(grads)
            state = new_state
            step += 1
            chunk = (chunk + 1) % len(batches)
            history.append((step, loss))
            bar.step(step, loss, y.size)
            if step % o["eval_every"] == 0:
                val = model.evaluate(val_ids, o["batch_size"], o["seq_len"]) if has_val \
                    else None
                if val is not None:
                    val_history.append((step, val))
                    final_val = val
                    if val < best_val - 1e-6:
                        best_val, bad_evals = val, 0
                    else:
                        bad_evals += 1
                bar.evaluated(step, loss, val)
                saved_path = save() or saved_path
                last_good = step
                if o["patience"] is not None and has_val and bad_evals >= o["patience"]:
                    stopped = "early-stopping"
                    message = (f"early stopping at step {step}: the validation loss has not "
                               f"improved for {bad_evals} evaluations (best {best_val:.4f})")
                    break
            elif step == o["steps"]:
                # the end between two evaluations: save, and measure validation for the
                # summary only (recording it would make a resumed run differ)
                saved_path = save() or saved_path
                last_good = step
                if has_val:
                    final_val = model.evaluate(val_ids, o["batch_size"], o["seq_len"])
                    bar.evaluated(step, loss, final_val)
    finally:
        bar.close()
    if stopped == "steps":  # the last step was evaluated and saved in the loop
        message = f"finished {step} steps"
    result = FitResult(step, history, val_history, stopped, message, saved_path, final_val)
    if progress:
        lines = [message]
        if history:
            lines.append(f"final training loss {result.loss:.4f} "
                         f"(perplexity {math.exp(min(result.loss, 50)):.2f})")
        if final_val is not None:
            best = (f", best {best_val:.4f}" if math.isfinite(best_val) else
                    " (no evaluation before the end)")
            lines.append(f"validation loss {result.val_loss:.4f} "
                         f"(perplexity {math.exp(min(result.val_loss, 50)):.2f}){best}")
        if saved_path:
            lines.append(f"checkpoint: {saved_path}")
        print("\n".join(lines), file=stream, flush=True)
    # after a divergence the model holds the parameters that failed; only the file is good
    model.training_state = snapshot() if stopped != "diverged" else None
    return result
