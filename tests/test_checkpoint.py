"""Checkpoint files: round trip, atomic writes, and refusal of damaged or foreign files."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import zipfile

import numpy as np
import pytest

import rnnx
from rnnx import checkpoint as ckpt
from rnnx.checkpoint import CheckpointError

# the directory holding the rnnx this process imported (src/ here, site-packages when
# installed), so that the subprocesses run the same one
SRC = os.path.dirname(os.path.dirname(os.path.abspath(rnnx.__file__)))


def _arrays(v=0.0):
    return {"w": np.arange(6, dtype=np.float32).reshape(2, 3) + v,
            "opt/m": np.full(4, 0.25 + v), "ids": np.arange(3, dtype=np.int64)}


def _rewrite(path, change):
    """Rewrite the npz at `path` after `change(members)` (a dict name -> ndarray)."""
    with np.load(path, allow_pickle=False) as z:
        members = {n: z[n] for n in z.files}
    change(members)
    with open(path, "wb") as f:
        np.savez(f, **members)


def test_round_trip(tmp_path):
    p = tmp_path / "a.npz"
    meta = {"step": 3, "nested": {"x": [1, 2.5, None, "s"]}, "big": 2 ** 70}
    ckpt.save(p, _arrays(), meta)
    arrays, got = ckpt.load(p)
    assert got == meta
    assert set(arrays) == set(_arrays())
    for k, v in _arrays().items():
        np.testing.assert_array_equal(arrays[k], v)
        assert arrays[k].dtype == v.dtype
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".tmp")]


def test_plain_numpy_can_read_it(tmp_path):
    p = tmp_path / "a.npz"
    ckpt.save(p, _arrays(), {"k": 1})
    with np.load(p, allow_pickle=False) as z:
        header = json.loads(z["__header__"].tobytes())
        np.testing.assert_array_equal(z["w"], _arrays()["w"])
    assert header["format"] == "rnnx-checkpoint" and header["version"] == ckpt.VERSION
    assert len(header["sha256"]) == 64 and header["meta"] == {"k": 1}


@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_file_is_refused(tmp_path, keep):
    p = tmp_path / "a.npz"
    ckpt.save(p, _arrays(), {"k": 1})
    data = p.read_bytes()
    p.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(CheckpointError, match="truncated or damaged"):
        ckpt.load(p)


def test_flipped_byte_is_refused(tmp_path):
    p = tmp_path / "a.npz"
    ckpt.save(p, {"w": np.zeros(1000)}, {"k": 1})
    data = bytearray(p.read_bytes())
    data[len(data) // 3] ^= 0xFF  # inside the array data
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        ckpt.load(p)


def test_changed_array_fails_the_checksum(tmp_path):
    p = tmp_path / "a.npz"
    ckpt.save(p, _arrays(), {"k": 1})

    def change(m):
        m["w"] = m["w"] + 1  # a valid archive with a modified array
    _rewrite(p, change)
    with pytest.raises(CheckpointError, match="checksum"):
        ckpt.load(p)


def test_changed_meta_fails_the_checksum(tmp_path):
    p = tmp_path / "a.npz"
    ckpt.save(p, _arrays(), {"step": 1})

    def change(m):
        h = json.loads(m["__header__"].tobytes())
        h["meta"]["step"] = 2
        m["__header__"] = np.frombuffer(json.dumps(h).encode(), np.uint8)
    _rewrite(p, change)
    with pytest.raises(CheckpointError, match="checksum"):
        ckpt.load(p)


def test_added_array_fails_the_checksum(tmp_path):
    p = tmp_path / "a.npz"
    ckpt.save(p, _arrays(), {})
    _rewrite(p, lambda m: m.update(extra=np.ones(2)))
    with pytest.raises(CheckpointError, match="checksum"):
        ckpt.load(p)


def test_other_version_is_refused(tmp_path):
    p = tmp_path / "a.npz"
    ckpt.save(p, _arrays(), {})

    def change(m):
        h = json.loads(m["__header__"].tobytes())
        h["version"] = 99
        m["__header__"] = np.frombuffer(json.dumps(h).encode(), np.uint8)
    _rewrite(p, change)
    with pytest.raises(CheckpointError, match="version 99"):
        ckpt.load(p)


def test_foreign_files_are_refused(tmp_path):
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.ones(3))
    with pytest.raises(CheckpointError, match="not an rnnx checkpoint"):
        ckpt.load(plain)
    text = tmp_path / "text.npz"
    text.write_text("hello, not a zip file")
    with pytest.raises(CheckpointError):
        ckpt.load(text)
    bad_json = tmp_path / "badjson.npz"
    np.savez(bad_json, __header__=np.frombuffer(b"{not json", np.uint8))
    with pytest.raises(CheckpointError, match="not valid JSON"):
        ckpt.load(bad_json)
    with pytest.raises(FileNotFoundError):
        ckpt.load(tmp_path / "missing.npz")


def test_pickled_arrays_are_never_loaded(tmp_path):
    p = tmp_path / "a.npz"
    buf = io.BytesIO()
    np.savez(buf, obj=np.array([{"a": 1}], dtype=object),
             __header__=np.frombuffer(b"{}", np.uint8))
    p.write_bytes(buf.getvalue())
    with pytest.raises(CheckpointError):
        ckpt.load(p)


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="Python objects"):
        ckpt.save(tmp_path / "a.npz", {"o": np.array([object()])}, {})
    with pytest.raises(TypeError, match="meta must be JSON"):
        ckpt.save(tmp_path / "a.npz", {}, {"f": object()})
    with pytest.raises(ValueError, match="array names"):
        ckpt.save(tmp_path / "a.npz", {"__header__": np.ones(1)}, {})
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("where", ["savez", "fsync", "replace"])
def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch, where):
    p = tmp_path / "a.npz"
    ckpt.save(p, _arrays(0.0), {"step": 1})
    before = p.read_bytes()

    def boom(*args, **kwargs):
        raise OSError("disk full (simulated)")
    if where == "savez":  # fails after part of the archive was written
        def partial(f, **kw):
            f.write(b"PK\x03\x04 half an archive")
            boom()
        monkeypatch.setattr(np, "savez", partial)
    elif where == "fsync":
        monkeypatch.setattr(os, "fsync", boom)
    else:
        monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        ckpt.save(p, _arrays(1.0), {"step": 2})
    monkeypatch.undo()
    assert p.read_bytes() == before
    _, meta = ckpt.load(p)
    assert meta == {"step": 1}
    assert os.listdir(tmp_path) == ["a.npz"]  # no temporary file left behind


def test_process_killed_while_saving_keeps_the_previous_file(tmp_path):
    p = tmp_path / "a.npz"
    script = textwrap.dedent(f"""
        import os, signal, numpy as np
        from rnnx import checkpoint as ckpt
        ckpt.save({str(p)!r}, {{"w": np.zeros(200000)}}, {{"step": 1}})
        def die(fd):  # the new archive is written but not yet renamed
            os.kill(os.getpid(), signal.SIGKILL)
        os.fsync = die
        ckpt.save({str(p)!r}, {{"w": np.ones(200000)}}, {{"step": 2}})
        print("not reached")
    """)
    env = dict(os.environ, PYTHONPATH=SRC)
    r = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == -signal.SIGKILL, r.stderr
    assert "not reached" not in r.stdout
    arrays, meta = ckpt.load(p)
    assert meta == {"step": 1}
    assert not arrays["w"].any()


def test_language_model_round_trip(tmp_path):
    text = "abcab cab bca\n" * 20
    lm = rnnx.LanguageModel.from_text(text, hidden_size=8, embedding_size=4, seed=3)
    lm.fit(text, steps=3, batch_size=2, seq_len=5, progress=False)
    p = tmp_path / "lm.npz"
    lm.save(p)
    back = rnnx.LanguageModel.load(p)
    assert back.config() == lm.config() and back.vocab == lm.vocab
    for k, v in lm.parameters().items():
        np.testing.assert_array_equal(back.parameters()[k], v)
    assert back.sample(30, seed=5) == lm.sample(30, seed=5)
    assert back.training_state is not None


def test_language_model_load_refuses_other_checkpoints(tmp_path):
    p = tmp_path / "x.npz"
    ckpt.save(p, {"w": np.ones(2)}, {"kind": "something-else"})
    with pytest.raises(CheckpointError, match="does not hold a language model"):
        rnnx.LanguageModel.load(p)
    ckpt.save(p, {"w": np.ones(2)}, {"kind": "language-model", "config": {}, "vocab": ["a"]})
    with pytest.raises(CheckpointError, match="inconsistent"):
        rnnx.LanguageModel.load(p)


def test_zip_crc_damage_is_a_checkpoint_error(tmp_path):
    # a member whose stored CRC no longer matches: zipfile notices while reading
    p = tmp_path / "a.npz"
    ckpt.save(p, {"w": np.arange(100.0)}, {})
    with zipfile.ZipFile(p) as z:
        info = z.getinfo("w.npy")
    data = bytearray(p.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    data[start] ^= 0x01
    p.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        ckpt.load(p)
