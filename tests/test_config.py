"""rnnx.show_config(): the dict it returns and what it prints, read from the running core."""

import io
import json

import numpy as np
import pytest

import rnnx
from rnnx import _loader


def test_dict_reports_the_running_core():
    cfg = rnnx.show_config(quiet=True)
    assert set(cfg) == {"rnnx", "cpu", "numpy", "python"}
    r = cfg["rnnx"]
    assert r["version"] == rnnx.__version__
    assert r["isa"] == rnnx.isa == _loader.core.isa
    assert r["isa"] in r["isa_available"]
    assert r["isa_available"][0] == "generic"
    assert r["num_threads"] == rnnx.get_num_threads()
    assert r["core_module"].startswith(f"_core_{rnnx.isa}")
    assert r["eigen_version"].startswith("3.4.")  # the cmeel-eigen the build required
    assert cfg["cpu"]["features"] == {k: bool(v) for k, v in
                                      _loader._core_generic.cpu_features().items()}
    assert cfg["numpy"]["version"] == np.__version__


def test_available_builds_follow_the_cpu_features():
    cfg = rnnx.show_config(quiet=True)
    f, avail = cfg["cpu"]["features"], cfg["rnnx"]["isa_available"]
    assert ("avx2" in avail) == (f["avx2"] and f["fma"])
    assert ("avx512" in avail) == (f["avx2"] and f["fma"] and f["avx512"])


def test_threads_follow_set_num_threads():
    before = rnnx.get_num_threads()
    try:
        rnnx.set_num_threads(1)
        assert rnnx.show_config(quiet=True)["rnnx"]["num_threads"] == 1
        rnnx.set_num_threads(3)
        assert rnnx.show_config(quiet=True)["rnnx"]["num_threads"] == 3
    finally:
        rnnx.set_num_threads(before)


def test_dict_is_plain_json():
    cfg = rnnx.show_config(quiet=True)
    assert json.loads(json.dumps(cfg)) == cfg


def test_prints_to_stdout_by_default(capsys):
    cfg = rnnx.show_config()
    out = capsys.readouterr().out
    for line in ("rnnx:", "cpu:", "numpy:", "python:"):
        assert line in out.splitlines()
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()
            if line.startswith("  ")}
    assert rows["isa"] == [rnnx.isa]
    assert rows["num_threads"] == [str(rnnx.get_num_threads())]
    assert cfg["rnnx"]["version"] in out and np.__version__ in out


def test_environment_variables_are_reported(monkeypatch):
    monkeypatch.setenv("RNNX_NUM_THREADS", "7")
    monkeypatch.delenv("RNNX_ISA", raising=False)
    r = rnnx.show_config(quiet=True)["rnnx"]
    assert r["RNNX_NUM_THREADS"] == "7" and r["RNNX_ISA"] is None
    out = io.StringIO()
    rnnx.show_config(file=out)
    assert "unset (auto)" in out.getvalue()


def test_prints_to_a_given_file_and_nothing_when_quiet(capsys):
    buf = io.StringIO()
    rnnx.show_config(file=buf)
    assert "isa" in buf.getvalue() and rnnx.isa in buf.getvalue()
    rnnx.show_config(quiet=True)
    assert capsys.readouterr().out == ""


@pytest.mark.parametrize("bad, name", [(("file",), "file"), (object(), "file")],
                         ids=["tuple", "object"])
def test_bad_file_is_a_type_error(bad, name):
    with pytest.raises(TypeError, match=name):
        rnnx.show_config(file=bad)


def test_bad_quiet_is_a_type_error():
    with pytest.raises(TypeError, match="quiet"):
        rnnx.show_config(quiet="yes")
