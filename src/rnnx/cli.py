"""The ``rnnx`` command: ``train``, ``sample``, ``score`` and ``plot`` for language models.

Every user error (a missing file, an empty corpus, an option out of range, a damaged
checkpoint) ends with one line on stderr, ``rnnx: error: ...``, and a non-zero exit
status: 2 for bad usage, 1 for everything else.
"""

import argparse
import math
import os
import sys

__all__ = ["main"]

PROG = "rnnx"
DEFAULT_CHECKPOINT = "rnnx-model.npz"


class UserError(Exception):
    """A problem the user can fix; printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        self.exit(2, f"{PROG}: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def _at_least_3(text):
    v = _positive_int(text)
    if v < 3:
        raise argparse.ArgumentTypeError(f"expected an integer >= 3 (<UNK>, <EOS> and a "
                                         f"token), got {v}")
    return v


def _nonneg_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _number(lo=None, hi=None, lo_open=True, hi_open=False):
    def parse(text):
        try:
            v = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(v) or (lo is not None and (v <= lo if lo_open else v < lo)) or \
                (hi is not None and (v >= hi if hi_open else v > hi)):
            left = "(" if lo_open else "["
            right = ")" if hi_open else "]"
            raise argparse.ArgumentTypeError(
                f"expected a number in {left}{'-inf' if lo is None else lo}, "
                f"{'inf' if hi is None else hi}{right}, got {text}")
        return v
    return parse


def _build_parser():
    from .lm import CELLS
    from .optim import OPTIMIZERS
    from .text import LEVELS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--threads", type=_positive_int, metavar="N",
                        help="threads for rnnx's kernels (default: all CPUs)")

    parser = _Parser(prog=PROG, description="Train, sample from and score recurrent "
                     "language models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    t = sub.add_parser("train", parents=[common], help="train a language model",
                       description="Train a character- or word-level language model. "
                       "Without CORPUS it trains on English text shipped with Python.")
    t.add_argument("corpus", nargs="?", metavar="CORPUS", help="a UTF-8 text file")
    t.add_argument("--level", choices=LEVELS, help="tokens: characters (default) or words")
    t.add_argument("--min-count", type=_positive_int, metavar="N",
                   help="word level: rarer words become <UNK> (default 1)")
    t.add_argument("--max-vocab", type=_at_least_3, metavar="N",
                   help="keep at most N tokens (with <UNK> and <EOS>)")
    t.add_argument("--cell", choices=sorted(CELLS), help="recurrent cell (default lstm)")
    t.add_argument("--hidden", type=_positive_int, metavar="H", help="hidden size (default 128)")
    t.add_argument("--layers", type=_positive_int, metavar="L", help="stacked layers (default 1)")
    t.add_argument("--embedding", type=_positive_int, metavar="E", help="token vector size (default 64)")
    t.add_argument("--dropout", type=_number(0, 1, lo_open=False, hi_open=True), metavar="P",
                   help="between layers and before the output, in training (default 0)")
    t.add_argument("--dtype", choices=("float32", "float64"), help="default float32")
    t.add_argument("--steps", type=_positive_int, metavar="N",
                   help="optimizer steps in all, one chunk of batch x seq tokens each "
                   "(default 500)")
    t.add_argument("--epochs", type=_number(0), metavar="N",
                   help="passes over the training text (instead of --steps)")
    t.add_argument("--batch-size", type=_positive_int, metavar="B", help="default 32")
    t.add_argument("--seq-len", type=_positive_int, metavar="T",
                   help="steps of truncated backpropagation; the state carries on "
                   "(default 64)")
    t.add_argument("--optimizer", choices=sorted(OPTIMIZERS), help="default adam")
    t.add_argument("--lr", type=_number(0), metavar="LR", help="learning rate (default 0.002)")
    t.add_argument("--momentum", type=_number(0, 1, lo_open=False, hi_open=True), metavar="M",
                   help="for --optimizer momentum (default 0.9)")
    t.add_argument("--clip-value", type=_number(0), metavar="C",
                   help="clip every gradient entry to [-C, C]")
    t.add_argument("--clip-norm", type=_number(0, lo_open=False), metavar="C",
                   help="clip the global gradient norm to C (default 5; 0: off)")
    t.add_argument("--lr-decay", type=_number(0, 1), metavar="F",
                   help="multiply the learning rate by F every --decay-every steps "
                   "(default 1: no decay)")
    t.add_argument("--decay-every", type=_positive_int, metavar="N", help="default 100")
    t.add_argument("--val-fraction", type=_number(0, 1, lo_open=False, hi_open=True),
                   metavar="F", help="tail of the corpus held out (default 0.05)")
    t.add_argument("--eval-every", type=_positive_int, metavar="N",
                   help="steps between validations, samples and checkpoints (default 100)")
    t.add_argument("--patience", type=_positive_int, metavar="N",
                   help="early stopping after N evaluations without improvement")
    t.add_argument("--max-loss-factor", type=_number(0), metavar="F",
                   help="stop when the loss exceeds F x log(V) (default 3)")
    t.add_argument("--checkpoint", "-o", metavar="PATH",
                   help=f"where to save (default {DEFAULT_CHECKPOINT}, or the --resume file)")
    t.add_argument("--resume", metavar="PATH",
                   help="continue the training saved in PATH (same corpus)")
    t.add_argument("--seed", type=_nonneg_int, help="makes the run reproducible (default 0)")
    t.add_argument("--sample-every", type=_nonneg_int, metavar="N",
                   help="steps between printed samples (0: none)")
    t.add_argument("--quiet", "-q", action="store_true",
                   help="no progress bar, samples or summary")

    s = sub.add_parser("sample", parents=[common], help="generate text from a checkpoint")
    s.add_argument("checkpoint", metavar="CHECKPOINT")
    s.add_argument("--length", "-n", type=_positive_int, default=500, metavar="N",
                   help="tokens to generate (default 500)")
    s.add_argument("--temperature", type=_number(0), default=1.0, metavar="T")
    s.add_argument("--top-k", type=_positive_int, metavar="K")
    s.add_argument("--top-p", type=_number(0, 1), metavar="P")
    s.add_argument("--greedy", action="store_true", help="always the most likely token")
    s.add_argument("--beam", type=_positive_int, metavar="N", help="beam search with N beams")
    s.add_argument("--prime", default="", metavar="TEXT", help="text to start from")
    s.add_argument("--seed", type=_nonneg_int)
    s.add_argument("--no-unk", action="store_true", help="never produce <UNK>")
    s.add_argument("--no-eos-stop", action="store_true", help="do not stop at <EOS>")

    c = sub.add_parser("score", parents=[common], help="how likely a checkpoint finds a text")
    c.add_argument("checkpoint", metavar="CHECKPOINT")
    c.add_argument("text", metavar="TEXT", help="the text ('-' reads standard input)")
    c.add_argument("--tokens", action="store_true", help="also list every token's log-prob")

    p = sub.add_parser("plot", help="training and validation loss to a PNG")
    p.add_argument("checkpoint", metavar="CHECKPOINT")
    p.add_argument("--output", "-o", default="loss.png", metavar="PNG")
    return parser


def _read_corpus(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise UserError(f"corpus {path!r} does not exist") from None
    except IsADirectoryError:
        raise UserError(f"corpus {path!r} is a directory, not a text file") from None
    except UnicodeDecodeError:
        raise UserError(f"corpus {path!r} is not UTF-8 text") from None
    except OSError as e:
        raise UserError(f"cannot read corpus {path!r}: {e.strerror or e}") from None
    if not text.strip():
        raise UserError(f"corpus {path!r} is empty")
    return text


def _load_model(path):
    from .checkpoint import CheckpointError
    from .lm import LanguageModel
    if not os.path.exists(path):
        raise UserError(f"checkpoint {path!r} does not exist")
    if os.path.isdir(path):
        raise UserError(f"checkpoint {path!r} is a directory")
    try:
        return LanguageModel.load(path)
    except CheckpointError as e:
        raise UserError(f"cannot load checkpoint: {e}") from None


_MODEL_OPTIONS = {"level": "level", "min_count": "min-count", "max_vocab": "max-vocab",
                  "cell": "cell", "hidden": "hidden", "layers": "layers",
                  "embedding": "embedding", "dropout": "dropout", "dtype": "dtype",
                  "seed": "seed"}
_TRAIN_OPTIONS = {"batch_size": "batch_size", "seq_len": "seq_len", "optimizer": "optimizer",
                  "lr": "lr", "momentum": "momentum", "clip_value": "clip_value",
                  "clip_norm": "clip_norm", "lr_decay": "lr_decay",
                  "decay_every": "decay_every", "val_fraction": "val_fraction",
                  "eval_every": "eval_every", "patience": "patience",
                  "max_loss_factor": "max_loss_factor"}


def _train(args):
    from .lm import LanguageModel
    from .text import Batches, default_corpus, split_ids, tokenize
    from .training import DEFAULTS, fit

    out = sys.stderr
    if args.steps is not None and args.epochs is not None:
        raise UserError("give --steps or --epochs, not both")
    if args.corpus is None:
        text = default_corpus()
        if not args.quiet:
            print(f"{PROG}: no corpus given: training on Python's built-in help text "
                  f"({len(text)} characters)", file=out)
    else:
        text = _read_corpus(args.corpus)

    if args.resume:
        given = [flag for dest, flag in {**_MODEL_OPTIONS, **_TRAIN_OPTIONS}.items()
                 if getattr(args, dest) is not None]
        if given:
            raise UserError(f"--{given[0].replace('_', '-')} cannot change when resuming: "
                            "the checkpoint's settings are used")
        model = _load_model(args.resume)
        if model.training_state is None:
            raise UserError(f"checkpoint {args.resume!r} holds no training state to resume")
        options = dict(model.training_state[1]["options"])
        checkpoint = args.checkpoint or args.resume
    else:
        model = LanguageModel.from_text(
            text, level=args.level or "char", min_count=args.min_count or 1,
            max_size=args.max_vocab, cell=args.cell or "lstm", hidden_size=args.hidden or 128,
            num_layers=args.layers or 1, embedding_size=args.embedding or 64,
            dropout=args.dropout or 0.0, dtype=args.dtype or "float32",
            seed=0 if args.seed is None else args.seed)
        options = {**DEFAULTS, **{k: getattr(args, k) for k in _TRAIN_OPTIONS
                                  if getattr(args, k) is not None}}
        if args.clip_norm == 0:
            options["clip_norm"] = None
        checkpoint = args.checkpoint or DEFAULT_CHECKPOINT
    # check that the corpus fills the batches before anything starts
    train_ids, _ = split_ids(model.vocab.encode(tokenize(text, model.level)),
                             options["val_fraction"])
    per_epoch = len(Batches(train_ids, options["batch_size"], options["seq_len"]))
    steps = args.steps
    if args.epochs is not None:
        steps = max(1, round(args.epochs * per_epoch))
    if args.resume:
        result = fit(model, text, resume=True, steps=steps, checkpoint=checkpoint,
                     progress=not args.quiet, sample_every=args.sample_every, stream=out)
    else:
        if steps is not None:
            options["steps"] = steps
        if not args.quiet:
            print(f"{PROG}: {model!r}, {options['steps']} steps of {options['batch_size']} x "
                  f"{options['seq_len']} tokens ({options['steps'] / per_epoch:.2g} epochs), "
                  f"{options['optimizer']} lr {options['lr']}", file=out)
        result = fit(model, text, checkpoint=checkpoint, progress=not args.quiet,
                     sample_every=args.sample_every, stream=out, **options)
    if result.stopped == "diverged":
        raise UserError(result.message)
    return 0


def _sample(args):
    model = _load_model(args.checkpoint)
    if args.greedy and args.beam:
        raise UserError("give --greedy or --beam, not both")
    text = model.sample(args.length, prime=args.prime, temperature=args.temperature,
                        top_k=args.top_k, top_p=args.top_p, greedy=args.greedy,
                        beam=args.beam, seed=args.seed, no_unk=args.no_unk,
                        stop_at_eos=not args.no_eos_stop)
    sep = " " if model.level == "word" and args.prime and text and \
        not args.prime.endswith((" ", "\n")) else ""
    sys.stdout.write(args.prime + sep + text + ("" if text.endswith("\n") else "\n"))
    return 0


def _score(args):
    model = _load_model(args.checkpoint)
    text = sys.stdin.read() if args.text == "-" else args.text
    if not text.strip():
        raise UserError("TEXT is empty: there is nothing to score")
    r = model.score(text)
    w = sys.stdout.write
    if args.tokens:
        for tok, lp in zip(r["tokens"], r["token_logprobs"]):
            w(f"{tok!r}\t{lp:.4f}\n")
    w(f"tokens: {len(r['tokens'])}" + (f" ({r['unknown']} unknown)" if r["unknown"] else "")
      + "\n")
    w(f"log-probability: {r['logprob']:.4f} (natural log)\n")
    w(f"probability: {r['prob']:.6g}\n")
    w(f"log-probability per token: {r['logprob_per_token']:.4f}\n")
    w(f"perplexity: {r['perplexity']:.4f}\n")
    return 0


def _plot(args):
    from .plot import plot_history
    model = _load_model(args.checkpoint)
    if model.training_state is None:
        raise UserError(f"checkpoint {args.checkpoint!r} holds no loss history")
    arrays = model.training_state[0]
    try:
        plot_history(arrays["history/train"], arrays["history/val"], args.output)
    except ImportError as e:
        raise UserError(str(e)) from None
    print(f"wrote {args.output}")
    return 0


def main(argv=None):
    """Run the ``rnnx`` command with ``argv`` (default ``sys.argv[1:]``); returns the exit
    status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "threads", None) is not None:
            from . import set_num_threads
            set_num_threads(args.threads)
        return {"train": _train, "sample": _sample, "score": _score,
                "plot": _plot}[args.command](args)
    except UserError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except (ValueError, TypeError, KeyError, OSError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
        if isinstance(e, OSError) and e.filename:
            msg = f"{e.strerror or e}: {e.filename}"
        print(f"{PROG}: error: {msg}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted (the last checkpoint written is kept)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
