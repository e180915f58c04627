"""rnnx.text, rnnx.LanguageModel, its training loop and rnnx.sampling."""

import io
import math
import pathlib
import sys

import numpy as np
import pytest

import rnnx
from rnnx import optim, sampling

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from helpers import misaligned  # noqa: E402
from rnnx.reference import heads as ref_heads
from rnnx.reference import kernels as ref_kernels
from rnnx.text import EOS, UNK, Batches, Vocabulary, detokenize, split_ids, tokenize

TEXT = ("the cat sat on the mat.\nthe dog sat on the log.\na cat and a dog met.\n"
        "the mat was red and the log was brown.\n") * 12
TINY = dict(hidden_size=12, embedding_size=5)
FAST = dict(batch_size=4, seq_len=8, progress=False)


def _model(cell="lstm", level="char", **kw):
    return rnnx.LanguageModel.from_text(TEXT, level=level, cell=cell, seed=kw.pop("seed", 0),
                                        **{**TINY, **kw})


# ----------------------------------------------------------------------------------
# text
# ----------------------------------------------------------------------------------


def test_tokenize_levels():
    assert tokenize("ab\nc", "char") == ["a", "b", "\n", "c"]
    assert tokenize("Hello, world!\n\nIt's me.", "word") == \
        ["Hello", ",", "world", "!", EOS, "It's", "me", ".", EOS]
    assert detokenize(["Hello", ",", "world", "!", EOS, "It's"], "word") == \
        "Hello, world!\nIt's"
    with pytest.raises(ValueError, match="level"):
        tokenize("x", "byte")
    with pytest.raises(TypeError, match="text"):
        tokenize(b"x")


def test_vocabulary_specials_min_count_and_max_size():
    tokens = "a b a c a b d".split()
    v = Vocabulary.build(tokens)
    assert v.itos[:2] == [UNK, EOS] and v.unk_id == 0 and v.eos_id == 1
    assert v.to_list() == ["a", "b", "c", "d"]  # by count, ties alphabetical
    assert list(v.encode(["a", "zzz", "d"])) == [2, 0, 5]
    assert v.decode([2, 0, 1]) == ["a", UNK, EOS]
    assert Vocabulary.build(tokens, min_count=2).to_list() == ["a", "b"]
    assert Vocabulary.build(tokens, max_size=3).to_list() == ["a"]
    assert Vocabulary(v.to_list()) == v
    with pytest.raises(ValueError, match="min_count"):
        Vocabulary.build(tokens, min_count=0)
    with pytest.raises(ValueError, match="max_size"):
        Vocabulary.build(tokens, max_size=2)
    with pytest.raises(ValueError, match="special"):
        Vocabulary(["a", EOS])
    with pytest.raises(ValueError, match="outside"):
        v.decode([99])


def test_batches_carry_rows_across_chunks():
    ids = np.arange(2 * 11)
    b = Batches(ids, batch_size=2, seq_len=4)
    assert b.data.tolist() == [list(range(11)), list(range(11, 22))]
    assert len(b) == 3  # 10 predictions per row: chunks of 4, 4, 2
    x0, y0 = b.chunk(0)
    assert x0.shape == (4, 2) and x0[:, 1].tolist() == [11, 12, 13, 14]
    np.testing.assert_array_equal(y0, x0 + 1)
    x1, _ = b.chunk(1)
    assert x1[0].tolist() == [4, 15]  # the next chunk starts where the last ended
    x2, y2 = b.chunk(2)
    assert x2.shape == (2, 2) and y2[-1].tolist() == [10, 21]
    with pytest.raises(ValueError, match="too short"):
        Batches(np.arange(3), batch_size=2, seq_len=4)


def test_split_and_default_corpus():
    tr, va = split_ids(np.arange(100), 0.1)
    assert len(tr) == 90 and va.tolist() == list(range(90, 100))
    with pytest.raises(ValueError, match="val_fraction"):
        split_ids(np.arange(5), 1.0)
    text = rnnx.text.default_corpus(5000)
    assert len(text) == 5000 and "statement" in rnnx.text.default_corpus()


# ----------------------------------------------------------------------------------
# training
# ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
def test_training_lowers_the_loss_and_is_deterministic(cell):
    runs = []
    for _ in range(2):
        m = _model(cell)
        r = m.fit(TEXT, steps=60, eval_every=30, lr=1e-2, **FAST)
        runs.append((r, m))
    (r1, m1), (r2, m2) = runs
    first = np.mean([loss for _, loss in r1.history[:5]])
    last = np.mean([loss for _, loss in r1.history[-5:]])
    assert last < first - 0.5, (first, last)
    assert r1.stopped == "steps" and r1.steps == 60 and len(r1.val_history) == 2
    assert r1.history == r2.history  # bit-identical under the same seed
    for k, v in m1.parameters().items():
        np.testing.assert_array_equal(m2.parameters()[k], v)
    other = _model(cell, seed=1).fit(TEXT, steps=5, **FAST)
    assert other.history != r1.history[:5]


@pytest.mark.parametrize("name,lr", [("sgd", 1.0), ("momentum", 0.3), ("adagrad", 0.1),
                                     ("rmsprop", 0.01), ("adam", 0.01)])
def test_every_optimizer_trains(name, lr):
    m = _model("gru")
    r = m.fit(TEXT, steps=40, optimizer=name, lr=lr, **FAST)
    assert np.mean([v for _, v in r.history[-5:]]) < r.history[0][1] - 0.3


def test_clipping_and_learning_rate_decay(monkeypatch):
    seen = {"value": [], "lr": []}
    clip = optim.clip_by_value

    def spy_clip(grads, m):
        seen["value"].append(m)
        out = clip(grads, m)
        assert max(np.abs(g).max() for g in grads.values()) <= m
        return out
    monkeypatch.setattr(optim, "clip_by_value", spy_clip)
    step = optim.Adam.step

    def spy_step(self, grads):
        seen["lr"].append(self.lr)
        norm = math.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in grads.values()))
        assert norm <= 0.5 + 1e-5  # clip_norm applied after clip_value
        return step(self, grads)
    monkeypatch.setattr(optim.Adam, "step", spy_step)
    _model().fit(TEXT, steps=7, clip_value=0.01, clip_norm=0.5, lr=0.1, lr_decay=0.5,
                 decay_every=3, **FAST)
    assert seen["value"] == [0.01] * 7
    assert seen["lr"] == [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025]


@pytest.mark.parametrize("cell,layers,dropout", [("lstm", 2, 0.3), ("gru", 1, 0.2),
                                                 ("rnn", 1, 0.0)])
def test_resume_repeats_the_uninterrupted_run_bit_for_bit(tmp_path, cell, layers, dropout):
    opts = dict(lr=5e-3, eval_every=4, **FAST)
    full = _model(cell, num_layers=layers, dropout=dropout)
    r_full = full.fit(TEXT, steps=30, **opts)  # 30 steps cross epoch borders (len 25)
    part = _model(cell, num_layers=layers, dropout=dropout)
    p = tmp_path / "part.npz"
    part.fit(TEXT, steps=13, checkpoint=p, **opts)
    resumed = rnnx.LanguageModel.load(p)
    r_res = resumed.fit(TEXT, resume=True, steps=30, progress=False, checkpoint=p)
    assert r_res.history == r_full.history
    assert r_res.val_history == r_full.val_history
    for k, v in full.parameters().items():
        np.testing.assert_array_equal(resumed.parameters()[k], v)
    assert resumed.sample(40, seed=2) == full.sample(40, seed=2)


def test_resume_refuses_other_corpus_and_new_options(tmp_path):
    p = tmp_path / "c.npz"
    _model().fit(TEXT, steps=2, checkpoint=p, **FAST)
    m = rnnx.LanguageModel.load(p)
    with pytest.raises(ValueError, match="corpus differs"):
        m.fit(TEXT + "more", resume=True, steps=4, progress=False)
    with pytest.raises(ValueError, match="'lr' cannot change"):
        m.fit(TEXT, resume=True, lr=0.1, progress=False)
    with pytest.raises(ValueError, match="resume=True needs"):
        _model().fit(TEXT, resume=True, progress=False)


def test_early_stopping():
    # a learning rate too small to move the validation loss: no improvement
    r = _model().fit(TEXT, steps=50, lr=1e-12, eval_every=5, patience=2, **FAST)
    assert r.stopped == "early-stopping" and r.steps == 15
    assert "early stopping" in r.message and len(r.val_history) == 3


def test_divergence_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    p = tmp_path / "d.npz"
    m = _model()
    r = m.fit(TEXT, steps=50, optimizer="sgd", lr=1e4, clip_norm=None, eval_every=1,
              checkpoint=p, **FAST)
    assert r.stopped == "diverged", r.message
    assert "diverged" in r.message and "last good checkpoint" in r.message
    kept = rnnx.LanguageModel.load(p)
    step = kept.training_state[1]["step"]
    assert step == r.steps and step < 50
    assert f"step {step + 1}" in r.message
    assert all(np.isfinite(v).all() for v in kept.parameters().values())
    assert m.training_state is None


def test_bad_training_options():
    m = _model()
    with pytest.raises(ValueError, match="optimizer"):
        m.fit(TEXT, optimizer="lbfgs", **FAST)
    with pytest.raises(ValueError, match="steps"):
        m.fit(TEXT, steps=0, **FAST)
    with pytest.raises(ValueError, match="lr_decay"):
        m.fit(TEXT, lr_decay=1.5, **FAST)
    with pytest.raises(TypeError, match="unknown training option"):
        m.fit(TEXT, stepz=3, **FAST)
    with pytest.raises(ValueError, match="empty"):
        m.fit("", **FAST)
    with pytest.raises(ValueError, match="too short"):
        m.fit("abc", **FAST)


# ----------------------------------------------------------------------------------
# scoring against a NumPy reference
# ----------------------------------------------------------------------------------


def _reference_logprob(model, text):
    """log p(text) from rnnx.reference kernels and heads, in float64."""
    ids = model.vocab.encode(tokenize(text, model.level))
    inputs = np.concatenate([[model.start_id], ids[:-1]])[:, None]  # (T, 1)
    p = {k: v.astype(np.float64) for k, v in model.parameters().items()}
    x = ref_heads.embedding_forward(inputs, p["embedding.weight"])   # (T, 1, E)
    H = model.hidden_size
    for layer in range(model.num_layers):
        w_ih, w_hh = p[f"rnn.weight_ih_l{layer}"], p[f"rnn.weight_hh_l{layer}"]
        b_ih, b_hh = p[f"rnn.bias_ih_l{layer}"], p[f"rnn.bias_hh_l{layer}"]
        h0 = np.zeros((1, H))
        if model.cell == "lstm":
            x = ref_kernels.lstm_forward(x, h0, h0, w_ih, w_hh, b_ih + b_hh)[0]
        elif model.cell == "gru":
            x = ref_kernels.gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh)[0]
        else:
            x = ref_kernels.rnn_forward(x, h0, w_ih, w_hh, b_ih + b_hh)
            x = x[0] if isinstance(x, tuple) else x
    logits = ref_heads.dense_forward(x, p["decoder.weight"], p["decoder.bias"])
    total = 0.0
    for t in range(len(ids)):  # one position at a time: the sum of per-step log-probs
        loss, _ = ref_heads.softmax_cross_entropy(logits[t:t + 1], ids[t:t + 1, None])
        total -= float(loss)
    return total, len(ids)


@pytest.mark.parametrize("cell", ["rnn", "gru", "lstm"])
@pytest.mark.parametrize("level", ["char", "word"])
def test_score_matches_the_numpy_reference(cell, level):
    m = _model(cell, level=level, num_layers=2, dtype=np.float64)
    m.fit(TEXT, steps=5, lr=1e-2, **FAST)
    sentence = "the cat sat on the red log."
    s = m.score(sentence)
    ref, n = _reference_logprob(m, sentence)
    assert len(s["tokens"]) == n
    assert s["logprob"] == pytest.approx(ref, abs=1e-9)
    assert sum(s["token_logprobs"]) == pytest.approx(s["logprob"], abs=1e-12)
    assert s["logprob_per_token"] == pytest.approx(ref / n)
    assert s["perplexity"] == pytest.approx(math.exp(-ref / n))
    assert s["prob"] == pytest.approx(math.exp(ref))
    if level == "word":
        assert s["tokens"][-1] == EOS
    with pytest.raises(ValueError, match="no tokens"):
        m.score("")


def test_score_counts_unknown_tokens():
    m = _model(level="word")
    assert m.score("the zebra sat")["unknown"] == 1


# ----------------------------------------------------------------------------------
# sampling
# ----------------------------------------------------------------------------------


def test_next_token_probs_top_k_top_p_banned_temperature():
    logits = np.log(np.array([0.05, 0.4, 0.1, 0.3, 0.15]))
    p = sampling.next_token_probs(logits)
    np.testing.assert_allclose(p, np.exp(logits) / np.exp(logits).sum())
    p = sampling.next_token_probs(logits, top_k=2)
    assert set(np.nonzero(p)[0]) == {1, 3}
    np.testing.assert_allclose(p[[1, 3]], [0.4 / 0.7, 0.3 / 0.7])
    p = sampling.next_token_probs(logits, top_p=0.7)  # 0.4 + 0.3 reaches 0.7
    assert set(np.nonzero(p)[0]) == {1, 3}
    p = sampling.next_token_probs(logits, top_p=0.71)
    assert set(np.nonzero(p)[0]) == {1, 3, 4}
    p = sampling.next_token_probs(logits, banned=[1])
    assert p[1] == 0 and p.sum() == pytest.approx(1)
    cold = sampling.next_token_probs(logits, temperature=0.1)
    hot = sampling.next_token_probs(logits, temperature=10)
    assert cold[1] > 0.9 and hot.max() < 0.25
    for bad in (dict(temperature=0), dict(top_k=0), dict(top_p=0), dict(top_p=1.5)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            sampling.next_token_probs(logits, **bad)
    with pytest.raises(ValueError, match="no token"):
        sampling.next_token_probs(logits[:1], banned=[0])


def test_top_k_never_leaves_the_top_k(monkeypatch):
    m = _model()
    m.fit(TEXT, steps=10, lr=1e-2, **FAST)
    seen = []
    real = sampling.next_token_probs

    def spy(logits, *a, **kw):
        p = real(logits, *a, **kw)
        seen.append((np.argsort(-logits, kind="stable")[:3], p))
        return p
    monkeypatch.setattr(sampling, "next_token_probs", spy)
    text = m.sample(60, top_k=3, seed=4)
    ids = m.vocab.encode(list(text))
    seen = seen[1:]  # the first call only checks the options
    assert len(seen) == len(ids) == 60
    for (top, p), tok in zip(seen, ids):
        assert tok in top and np.count_nonzero(p) == 3


def test_greedy_is_deterministic_and_follows_the_argmax():
    m = _model()
    m.fit(TEXT, steps=20, lr=1e-2, **FAST)
    a = m.sample(30, prime="the ", greedy=True, seed=1)
    assert a == m.sample(30, prime="the ", greedy=True, seed=2)
    # replay with the stateful step: every token is the argmax of the scores
    logits, state = m.forward(np.array([[m.start_id]] + [[i] for i in m.vocab.encode(
        list("the "))]), None)
    lg = logits[-1, 0]
    for ch in a:
        assert m.vocab.itos[int(np.argmax(lg))] == ch
        lg, state = m.step(np.array([m.vocab.stoi[ch]]), state)
        lg = lg[0]
    assert m.sample(30, seed=7) == m.sample(30, seed=7)


def test_unk_suppression_and_eos_stop():
    m = _model(level="word")
    m.decoder_bias[m.vocab.unk_id] = 50.0  # the model now all but always says <UNK>
    assert m.sample(5, seed=0, stop_at_eos=False) == "<UNK> <UNK> <UNK> <UNK> <UNK>"
    out = m.sample(20, seed=0, no_unk=True, stop_at_eos=False)
    assert UNK not in out and len(out.split()) >= 5
    m.decoder_bias[m.vocab.unk_id] = 0.0
    m.decoder_bias[m.vocab.eos_id] = 50.0
    assert m.sample(20, seed=0) == "\n"  # the first token is <EOS>: stop there
    assert m.sample(4, seed=0, stop_at_eos=False) == "\n\n\n\n"
    assert m.beams(6, 3)[0][0] == [m.vocab.eos_id]


def test_beam_returns_the_best_scoring_of_its_beams():
    m = _model(level="word", dtype=np.float64)
    m.fit(TEXT, steps=30, lr=1e-2, **FAST)
    beams = m.beams(6, 4, prime="the", stop_at_eos=False)
    assert len(beams) == 4
    scores = [s for _, s in beams]
    assert scores == sorted(scores, reverse=True)
    # every beam's score is the sum of its tokens' log-probs, recomputed independently
    prime = [m.start_id] + list(m.vocab.encode(["the"]))
    for ids, s in beams:
        seq = np.array(prime + ids)
        logits, _ = m.forward(seq[:-1, None])
        lp = sampling.log_softmax(logits[:, 0])[np.arange(len(seq) - 1), seq[1:]]
        assert lp[len(prime) - 1:].sum() == pytest.approx(s, abs=1e-9)
    text = m.sample(6, beam=4, prime="the", stop_at_eos=False)
    assert text == rnnx.text.detokenize(m.vocab.decode(beams[0][0]), "word")
    assert m.sample(6, beam=1, prime="the", stop_at_eos=False) == \
        m.sample(6, greedy=True, prime="the", stop_at_eos=False)


def test_sample_arguments():
    m = _model()
    with pytest.raises(ValueError, match="temperature"):
        m.sample(5, temperature=-1)
    with pytest.raises(ValueError, match="beam"):
        m.sample(5, beam=0)
    with pytest.raises(TypeError, match="prime"):
        m.sample(5, prime=3)
    assert m.sample(0) == ""


def test_model_arguments():
    with pytest.raises(ValueError, match="cell"):
        _model("transformer")
    with pytest.raises(ValueError, match="hidden_size"):
        _model(hidden_size=0)
    with pytest.raises(ValueError, match="dropout"):
        _model(dropout=1.0)
    with pytest.raises(ValueError, match="empty"):
        rnnx.LanguageModel.from_text("")
    with pytest.raises(ValueError, match="ids"):
        _model().forward(np.array([[999]]))


# ----------------------------------------------------------------------------------
# progress
# ----------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_and_lines_elsewhere():
    pytest.importorskip("tqdm")
    tty = _Terminal()
    _model().fit(TEXT, steps=4, eval_every=2, stream=tty, sample_length=10,
                 **{**FAST, "progress": True})
    out = tty.getvalue()
    assert "loss=" in out and "ppl=" in out and "tok_s=" in out  # the bar's fields
    assert "--- sample at step 2" in out and "finished 4 steps" in out
    plain = io.StringIO()
    _model().fit(TEXT, steps=4, eval_every=2, stream=plain, sample_every=0,
                 **{**FAST, "progress": True})
    out = plain.getvalue()
    assert "\r" not in out and "step 2: loss" in out and "sample" not in out
    silent = io.StringIO()
    _model().fit(TEXT, steps=2, stream=silent, **FAST)
    assert silent.getvalue() == ""


def test_fit_result_reports_the_final_validation():
    r = _model().fit(TEXT, steps=6, eval_every=3, **FAST)
    assert r.val_loss == r.val_history[-1][1] and r.loss == r.history[-1][1]
    r = _model().fit(TEXT, steps=7, eval_every=3, **FAST)  # ends between evaluations
    assert [s for s, _ in r.val_history] == [3, 6] and math.isfinite(r.val_loss)


def test_divergence_from_nan_weights_and_from_a_loss_limit():
    m = _model()
    m.decoder_weight[3, 2] = np.nan
    r = m.fit(TEXT, steps=3, **FAST)
    assert r.stopped == "diverged" and r.steps == 0 and "loss nan" in r.message
    assert "no checkpoint was written" in r.message
    m = _model()
    r = m.fit(TEXT, steps=3, max_loss_factor=0.5, **FAST)  # log(V) / 2: at once
    assert r.stopped == "diverged" and "above 0.5 x log(V)" in r.message


def test_parameters_are_aligned_after_init_and_load():
    # the model's arrays start on a 64-byte boundary, as the kernels take them (no copy)
    lm = rnnx.LanguageModel.from_text("abc ab", cell="gru", hidden_size=8, seed=0)
    for name, p in lm.parameters().items():
        assert p.ctypes.data % 64 == 0, name
    lm.load_parameters({k: misaligned(v) for k, v in lm.parameters().items()})
    for name, p in lm.parameters().items():
        assert p.ctypes.data % 64 == 0, name

