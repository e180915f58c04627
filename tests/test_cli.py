"""The rnnx command, run as a user runs it: in a subprocess, checking output and exit codes."""

import os
import subprocess
import sys

import numpy as np
import pytest

import rnnx
from rnnx import checkpoint as ckpt

# the directory holding the rnnx this process imported (src/ here, site-packages when
# installed), so that the subprocesses run the same one
SRC = os.path.dirname(os.path.dirname(os.path.abspath(rnnx.__file__)))
CORPUS = ("the cat sat on the mat.\nthe dog sat on the log.\na cat and a dog met.\n") * 15
TINY = ["--hidden", "10", "--embedding", "4", "--batch-size", "4", "--seq-len", "8",
        "--threads", "1"]


def rnnx(*args, stdin=None, cwd=None, code=None):
    """Run ``python -m rnnx ARGS`` (or ``code`` with -c) with PYTHONPATH=src."""
    env = dict(os.environ, PYTHONPATH=SRC)
    cmd = [sys.executable, "-c", code] if code else [sys.executable, "-m", "rnnx"]
    return subprocess.run(cmd + [str(a) for a in args], env=env, capture_output=True,
                          text=True, input=stdin, cwd=cwd, timeout=120)


class Result:
    def __init__(self, returncode, stdout, stderr):
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


def main(capsys, *args):
    """Run rnnx.cli.main in this process (fast; for the many small option checks)."""
    from rnnx.cli import main as cli_main
    capsys.readouterr()
    try:
        code = cli_main([str(a) for a in args])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return Result(code, out, err)


def assert_one_line_error(r, *words):
    assert r.returncode != 0
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rnnx: error: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    corpus = d / "corpus.txt"
    corpus.write_text(CORPUS)
    model = d / "m.npz"
    r = rnnx("train", corpus, "-o", model, "--steps", 40, "--eval-every", 20, "--lr", "0.01",
             "--seed", 3, *TINY)
    assert r.returncode == 0, r.stderr
    return d, corpus, model, r


def test_train_prints_progress_samples_and_a_summary(trained):
    d, corpus, model, r = trained
    assert r.stdout == ""  # progress goes to stderr
    err = r.stderr
    assert "step 20: loss" in err and "val" in err and "tokens/s" in err  # no tty: lines
    assert "--- sample at step 20" in err and "--- sample at step 40" in err
    assert "finished 40 steps" in err and "checkpoint:" in err
    arrays, meta = ckpt.load(model)
    assert meta["training"]["step"] == 40 and arrays["history/train"].shape == (40, 2)
    q = rnnx("train", corpus, "-o", d / "q.npz", "--steps", 2, "--quiet", *TINY)
    assert q.returncode == 0 and q.stderr == "" and q.stdout == ""
    # a run that ends before its first evaluation reports its validation loss, no "best inf"
    e = rnnx("train", corpus, "-o", d / "e.npz", "--steps", 3, "--eval-every", 100, *TINY)
    assert e.returncode == 0 and "validation loss" in e.stderr
    assert "(no evaluation before the end)" in e.stderr and "inf" not in e.stderr


def test_sample_options(trained, capsys):
    _, _, model, _ = trained
    a = rnnx("sample", model, "-n", 40, "--seed", 1)
    assert a.returncode == 0 and len(a.stdout) >= 20
    assert main(capsys, "sample", model, "-n", 40, "--seed", 1).stdout == a.stdout
    g1 = main(capsys, "sample", model, "-n", 30, "--greedy", "--prime", "the ")
    g2 = main(capsys, "sample", model, "-n", 30, "--greedy", "--prime", "the ", "--seed", 9)
    assert g1.returncode == 0 and g1.stdout == g2.stdout and g1.stdout.startswith("the ")
    for extra in (["--top-k", 3], ["--top-p", "0.9"], ["--temperature", "0.5"],
                  ["--beam", 3], ["--no-unk"], ["--no-eos-stop"]):
        r = main(capsys, "sample", model, "-n", 10, "--seed", 2, *extra)
        assert r.returncode == 0 and r.stdout.strip(), (extra, r.stderr)


def test_score(trained):
    _, _, model, _ = trained
    r = rnnx("score", model, "the cat sat")
    assert r.returncode == 0, r.stderr
    out = dict(line.split(": ", 1) for line in r.stdout.strip().splitlines())
    assert out["tokens"] == "11"
    lp, ppl = float(out["log-probability"].split()[0]), float(out["perplexity"])
    assert lp < 0 and ppl == pytest.approx(np.exp(-lp / 11), rel=1e-3)
    s = rnnx("score", model, "-", "--tokens", stdin="the cat sat")
    assert s.returncode == 0 and s.stdout.count("\n") == 11 + 5
    assert s.stdout.endswith(r.stdout)


def test_plot(trained, tmp_path):
    pytest.importorskip("matplotlib")
    _, _, model, _ = trained
    png = tmp_path / "loss.png"
    r = rnnx("plot", model, "-o", png)
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_is_one_clear_line(trained, tmp_path):
    _, _, model, _ = trained
    code = ("import sys; sys.modules['matplotlib'] = None; from rnnx.cli import main; "
            "sys.exit(main(sys.argv[1:]))")
    r = rnnx("plot", model, "-o", tmp_path / "x.png", code=code)
    assert_one_line_error(r, "matplotlib", "pip install")
    assert not (tmp_path / "x.png").exists()


def test_resume_continues_exactly(trained, tmp_path):
    _, corpus, _, _ = trained
    full, part = tmp_path / "full.npz", tmp_path / "part.npz"
    args = ["--eval-every", 5, "--dropout", "0.2", "--layers", 2, "--quiet", *TINY]
    assert rnnx("train", corpus, "-o", full, "--steps", 18, *args).returncode == 0
    assert rnnx("train", corpus, "-o", part, "--steps", 7, *args).returncode == 0
    r = rnnx("train", corpus, "--resume", part, "--steps", 18, "--quiet", "--threads", 2)
    assert r.returncode == 0, r.stderr
    a, _ = ckpt.load(full)
    b, _ = ckpt.load(part)
    np.testing.assert_array_equal(a["history/train"], b["history/train"])
    for k in a:
        if k.startswith("param/"):
            np.testing.assert_array_equal(a[k], b[k])


def test_divergence_is_a_clean_stop(trained, tmp_path):
    _, corpus, _, _ = trained
    out = tmp_path / "d.npz"
    r = rnnx("train", corpus, "-o", out, "--optimizer", "sgd", "--lr", "10000",
             "--clip-norm", 0, "--eval-every", 1, "--steps", 50, "--quiet", *TINY)
    assert_one_line_error(r, "diverged", "last good checkpoint")
    _, meta = ckpt.load(out)
    assert 1 <= meta["training"]["step"] < 50


def test_default_corpus_is_used_without_a_file(tmp_path):
    r = rnnx("train", "--steps", 1, "-o", "m.npz", *TINY, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "built-in help text" in r.stderr
    assert (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("args,words", [
    (["train", "no/such/file.txt"], ["does not exist"]),
    (["train", "--cell", "transformer"], ["--cell", "transformer"]),
    (["train", "--level", "byte"], ["--level"]),
    (["train", "--lr", "-1"], ["--lr"]),
    (["train", "--lr", "abc"], ["--lr"]),
    (["train", "--dropout", "1.5"], ["--dropout"]),
    (["train", "--steps", "0"], ["--steps"]),
    (["train", "--optimizer", "lbfgs"], ["--optimizer"]),
    (["train", "--steps", "3", "--epochs", "1"], ["--steps or --epochs"]),
    (["sample", "missing.npz"], ["does not exist"]),
    (["sample"], ["CHECKPOINT"]),
    (["score", "missing.npz", "hi"], ["does not exist"]),
    (["fly"], ["invalid choice"]),
    ([], ["COMMAND"]),
])
def test_bad_usage_gets_one_line(tmp_path, monkeypatch, capsys, args, words):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(main(capsys, *args), *words)


def test_bad_usage_in_a_subprocess(tmp_path):
    assert_one_line_error(rnnx("train", "--cell", "transformer", cwd=tmp_path), "--cell")
    assert_one_line_error(rnnx("sample", "missing.npz", cwd=tmp_path), "does not exist")


def test_bad_files_get_one_line(trained, tmp_path, capsys):
    _, corpus, model, _ = trained

    def rnnx(*args):  # in this process: many cases, each quick
        return main(capsys, *args)
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n")
    assert_one_line_error(rnnx("train", empty), "empty")
    binary = tmp_path / "bin.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81 not utf-8")
    assert_one_line_error(rnnx("train", binary), "UTF-8")
    assert_one_line_error(rnnx("train", tmp_path), "directory")
    short = tmp_path / "short.txt"
    short.write_text("ab")
    assert_one_line_error(rnnx("train", short, "--batch-size", 4), "too short")

    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a checkpoint")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(model.read_bytes()[:-300])
    for bad in (garbage, truncated):
        for cmd in (["sample", bad], ["score", bad, "the cat"], ["plot", bad],
                    ["train", corpus, "--resume", bad]):
            assert_one_line_error(rnnx(*cmd), "cannot load checkpoint")

    assert_one_line_error(rnnx("score", model, "   "), "empty")
    assert_one_line_error(rnnx("sample", model, "--greedy", "--beam", 2), "--greedy")
    assert_one_line_error(rnnx("train", corpus, "--resume", model, "--hidden", 20),
                          "--hidden cannot change")
    other = tmp_path / "other.txt"
    other.write_text(CORPUS + "a new line.\n")
    assert_one_line_error(rnnx("train", other, "--resume", model, "--steps", 50),
                          "corpus differs")
