"""The four example models (rnnx.examples): their data, gradients, training and CLI.

Each example trains in its reduced ``--quick`` configuration (a few seconds) and must
reach a threshold well above what the same model reaches before training and above
the simple baselines the example computes (tagging every word 0, looking words up
one at a time, counting sentiment words, ...).
"""

import datetime
import doctest
import subprocess
import sys

import numpy as np
import pytest

from rnnx.examples import _common, generate, sentiment, seq2seq, tagging

# ----------------------------------------------------------------------------------
# data generators: the labels are right
# ----------------------------------------------------------------------------------


def test_tagging_labels():
    rng = np.random.default_rng(1)
    names = set(tagging.FIRST) | set(tagging.LAST)
    ordinary = set().union(*tagging.WORDS.values())
    amb = set(tagging.ambiguous_words())
    assert {"will", "may", "mark", "young", "stone"} <= amb
    seen = {w: set() for w in amb}
    persons = 0
    for _ in range(2000):
        words, tags = tagging.make_sentence(rng)
        assert len(words) == len(tags) and set(tags) <= {0, 1}
        for i, (w, t) in enumerate(zip(words, tags)):
            if t == 1:
                assert w in names, (words, tags)
            elif w in names - ordinary:          # a name that is never an ordinary word
                pytest.fail(f"name word {w!r} tagged 0 in {words}")
            if w in amb:
                seen[w].add(t)
        # each run of 1s is one person: a first name, a last name, or first + last
        i = 0
        while i < len(words):
            if tags[i] == 1:
                j = i
                while j < len(words) and tags[j] == 1:
                    j += 1
                run = words[i:j]
                assert len(run) <= 2, (words, tags)
                assert (len(run) == 1 and run[0] in names) or \
                    (run[0] in tagging.FIRST and run[1] in tagging.LAST)
                if i > 0:
                    assert tags[i - 1] == 0
                persons += 1
                i = j
            else:
                i += 1
    assert persons > 1000
    # every ambiguous word turns up both as a name and as an ordinary word
    assert all(s == {0, 1} for s in seen.values()), seen


def test_tagging_templates_literal_words():
    """A sentence with 'with {P}' at its end: everything after 'with' is the person."""
    rng = np.random.default_rng(2)
    checked = 0
    for _ in range(500):
        words, tags = tagging.make_sentence(rng)
        if words[:1] == ["we"] and "with" in words:
            checked += 1
            k = words.index("with")
            assert tags[:k + 1] == [0] * (k + 1)
            rest = tags[k + 1:]
            assert rest in ([1], [1, 1], [0, 1], [0, 1, 1])
            assert (rest[0] == 0) == (words[k + 1] in tagging.TITLES)
    assert checked > 10


def _clause_polarity(clause):
    """The polarity of one clause worked out from its words (None for neutral ones)."""
    pos = set(sentiment.POSITIVE) | set(sentiment.LIKE) | {"like", "love", "enjoy"}
    neg = set(sentiment.NEGATIVE) | set(sentiment.DISLIKE) | {"hate", "dislike"}
    signs = [1 for w in clause if w in pos] + [-1 for w in clause if w in neg]
    if not signs:
        return None
    assert len(signs) == 1, clause
    flip = -1 if ("not" in clause or "never" in clause) else 1
    return signs[0] * flip


def test_sentiment_labels():
    rng = np.random.default_rng(3)
    labels = []
    for _ in range(2000):
        words, label, polarities = sentiment.make_review(rng)
        clauses, cur = [], []
        for w in words:
            if w in sentiment.JOINS:
                clauses.append(cur)
                cur = []
            else:
                cur.append(w)
        clauses.append(cur)
        found = [p for p in map(_clause_polarity, clauses) if p is not None]
        assert found == polarities, words
        assert len(found) in (1, 3)
        assert label == int(sum(found) > 0)
        labels.append(label)
    assert 0.4 < np.mean(labels) < 0.6


@pytest.mark.parametrize("cls,size", [("count", 6), ("ramp", 30), ("echo", 105)])
def test_generate_members_are_valid(cls, size):
    m = generate.members(cls)
    assert len(m) == len(set(m)) == size
    assert all(generate.is_valid(cls, s) for s in m)
    others = [c for c in generate.CLASSES if c != cls]
    assert not any(generate.is_valid(o, s) for o in others for s in m)


@pytest.mark.parametrize("cls,bad", [
    ("count", ["", "a", "aab", "abb", "ba", "abab", "a" * 7 + "b" * 7]),
    ("ramp", ["", "12", "1235", "321", "01234567", "345a", "890"]),
    ("echo", ["", "ko", "kokok", "koka", "okok", "kakakakaka", "aeae"]),
])
def test_generate_rejects_near_misses(cls, bad):
    assert not any(generate.is_valid(cls, s) for s in bad)


def test_generate_sequences():
    v = generate.Vocabulary()
    inp, tgt = v.sequences(1, "345")
    assert inp[0] == v.start(1) and inp[1:] == tgt[:-1] and tgt[-1] == v.end
    assert v.decode(tgt) == "345"
    with pytest.raises(KeyError, match="cls"):
        generate.members("nope")


def _parse_back(s, fmt):
    if fmt == "day month year":
        return datetime.datetime.strptime(s, "%d %B %Y").date()
    if fmt == "month day, year":
        return datetime.datetime.strptime(s, "%B %d, %Y").date()
    if fmt == "day mon year":
        return datetime.datetime.strptime(s, "%d %b %Y").date()
    if fmt == "m/d/yy":
        m, d, yy = (int(p) for p in s.split("/"))
        return datetime.date(yy + (1900 if yy >= 50 else 2000), m, d)
    return datetime.datetime.strptime(s, "%d.%m.%Y").date()


def test_dates_parse_back():
    rng = np.random.default_rng(4)
    lengths = []
    for date in [datetime.date(1950, 1, 1), datetime.date(2049, 12, 31),
                 datetime.date(2000, 2, 29), datetime.date(1999, 9, 30)] + \
            [seq2seq.random_date(rng) for _ in range(500)]:
        for fmt in seq2seq.FORMATS:
            s = seq2seq.format_date(date, fmt)
            assert _parse_back(s, fmt) == date, (s, fmt)
            lengths.append(len(s))
    assert min(lengths) >= 6 and max(lengths) <= 18
    _, tgt, date = seq2seq.make_pair(rng)
    assert datetime.date.fromisoformat(tgt) == date and len(tgt) == seq2seq.OUT_LEN
    with pytest.raises(KeyError, match="fmt"):
        seq2seq.format_date(date, "yyyy")


@pytest.mark.parametrize("module", [_common, generate, seq2seq], ids=lambda m: m.__name__)
def test_docstring_examples(module):
    failed, attempted = doctest.testmod(module)
    assert attempted > 0 and failed == 0


def test_pad_and_mask():
    ids, lengths = _common.pad([[3, 4, 5], [6]], pad_id=9)
    assert ids.tolist() == [[3, 6], [4, 9], [5, 9]] and lengths.tolist() == [3, 1]
    assert _common.step_mask(lengths, 3).tolist() == [[True, True], [True, False],
                                                      [True, False]]
    with pytest.raises(ValueError, match="empty"):
        _common.pad([[1], []])


# ----------------------------------------------------------------------------------
# models: every parameter gets a gradient and is trained
# ----------------------------------------------------------------------------------


def _tagging_batch(rng):
    v = tagging.Vocabulary()
    model = tagging.Tagger(len(v), hidden=6, seed=0)
    data = tagging.make_dataset(4, rng, v)
    ids, lengths = _common.pad([d[1] for d in data])
    tags, _ = _common.pad([d[2] for d in data])
    return model, (ids, lengths, tags)


def _sentiment_batch(rng):
    v = sentiment.Vocabulary()
    model = sentiment.Classifier(len(v), hidden=6, seed=0)
    data = sentiment.make_dataset(4, rng, v)
    ids, lengths = _common.pad([d[1] for d in data])
    return model, (ids, lengths, np.array([d[2] for d in data]))


def _generate_batch(rng):
    v = generate.Vocabulary()
    model = generate.Generator(len(v), hidden=6, seed=0)
    pairs = [v.sequences(*generate.make_example(rng)) for _ in range(4)]
    inputs, lengths = _common.pad([p[0] for p in pairs])
    targets, _ = _common.pad([p[1] for p in pairs])
    return model, (inputs, targets, lengths)


def _seq2seq_batch(rng):
    vin, vout = seq2seq.vocabularies()
    model = seq2seq.Translator(len(vin), len(vout), hidden=6, seed=0)
    return model, seq2seq.encode_batch([seq2seq.make_pair(rng) for _ in range(4)], vin, vout)


BATCHES = {"tagging": _tagging_batch, "sentiment": _sentiment_batch,
           "generate": _generate_batch, "seq2seq": _seq2seq_batch}


@pytest.mark.parametrize("name", sorted(BATCHES))
def test_gradients_cover_and_match(name):
    """One gradient per parameter, and a few entries agree with central differences."""
    rng = np.random.default_rng(5)
    model, batch = BATCHES[name](rng)
    _, grads = model.loss_and_grads(*batch)
    arrays = model.params.arrays
    assert sorted(grads) == sorted(arrays)
    for key in sorted(arrays):
        a, g = arrays[key], grads[key]
        assert g.shape == a.shape and g.dtype == a.dtype
        idx = np.unravel_index(np.argmax(np.abs(g)), g.shape)
        if g[idx] == 0:  # e.g. an unused embedding row: nothing to check
            continue
        old, eps = a[idx], 1e-2
        a[idx] = old + eps
        plus, _ = model.loss_and_grads(*batch)
        a[idx] = old - eps
        minus, _ = model.loss_and_grads(*batch)
        a[idx] = old
        numeric = (plus - minus) / (2 * eps)
        assert numeric == pytest.approx(float(g[idx]), rel=0.05, abs=2e-4), key


# ----------------------------------------------------------------------------------
# training: each example learns its task in the quick configuration
# ----------------------------------------------------------------------------------

MODULES = {"tagging": tagging, "sentiment": sentiment, "generate": generate,
           "seq2seq": seq2seq}


def test_tagging_learns():
    r = tagging.main(["--quick", "--quiet"])
    assert r["token_accuracy"] >= 0.97 and r["ambiguous_accuracy"] >= 0.9
    # before training, tagging everything 0, or one word at a time, is not enough
    assert r["untrained_token_accuracy"] < 0.9 and r["majority_accuracy"] < 0.9
    assert r["lookup_accuracy"] < 0.95 and r["lookup_ambiguous_accuracy"] < 0.8


def test_sentiment_learns():
    r = sentiment.main(["--quick", "--quiet"])
    assert r["accuracy"] >= 0.9
    assert r["untrained_accuracy"] < 0.7 and r["word_count_accuracy"] < 0.7


def test_generate_learns():
    r = generate.main(["--quick", "--quiet"])
    assert r["valid"] >= 0.75 and min(r["valid_by_class"].values()) >= 0.6
    assert min(r["coverage_by_class"].values()) >= 0.3  # varied, not one string
    assert r["untrained_valid"] < 0.05


def test_seq2seq_learns():
    r = seq2seq.main(["--quick", "--quiet"])
    assert r["exact_match"] >= 0.2 and r["char_accuracy"] >= 0.8
    assert r["untrained_exact_match"] < 0.01 and r["untrained_char_accuracy"] < 0.3


@pytest.mark.parametrize("name", sorted(MODULES))
def test_deterministic_under_seed(name):
    main = MODULES[name].main
    a = main(["--quick", "--quiet", "--steps", "3", "--seed", "7"])
    b = main(["--quick", "--quiet", "--steps", "3", "--seed", "7"])
    c = main(["--quick", "--quiet", "--steps", "3", "--seed", "8"])
    assert a["final_loss"] == b["final_loss"]
    assert all(np.array_equal(a["params"][k], b["params"][k]) for k in a["params"])
    assert any(not np.array_equal(a["params"][k], c["params"][k]) for k in a["params"])


# ----------------------------------------------------------------------------------
# command line
# ----------------------------------------------------------------------------------


BAD_ARGUMENTS = [
    (name, ["--steps", "-1"], "--steps must be >= 0") for name in sorted(MODULES)] + [
    ("tagging", ["--batch-size", "0"], "--batch-size must be >= 1"),
    ("tagging", ["--hidden", "0"], "--hidden must be >= 1"),
    ("sentiment", ["--hidden", "0"], "--hidden must be >= 1"),
    ("seq2seq", ["--hidden", "0"], "--hidden must be >= 1"),
    ("seq2seq", ["--lr", "0"], "--lr must be > 0"),
    ("sentiment", ["--lr", "nan"], "--lr must be > 0"),
    ("generate", ["--samples", "0"], "--samples must be >= 1"),
    ("generate", ["--temperature", "0"], "--temperature must be > 0"),
    ("generate", ["--steps", "many"], "invalid int value"),
]


@pytest.mark.parametrize("name,argv,message", BAD_ARGUMENTS,
                         ids=[f"{n}{'_'.join(a)}" for n, a, _ in BAD_ARGUMENTS])
def test_bad_arguments_exit_with_a_message(name, argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        MODULES[name].main(argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err


def test_runs_as_a_module():
    out = subprocess.run([sys.executable, "-m", "rnnx.examples.tagging", "--steps", "2",
                          "--quick", "--quiet"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("held-out token accuracy:")
