"""rnnx.optim against torch.optim, and the clipping helpers."""

import numpy as np
import pytest

import rnnx
from rnnx import optim

torch = pytest.importorskip("torch")

CASES = {
    "sgd": (dict(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    "momentum": (dict(lr=0.1, momentum=0.9), lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9)),
    "nesterov": (dict(lr=0.1, momentum=0.8, nesterov=True),
                 lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.8, nesterov=True)),
    "adagrad": (dict(lr=0.05), lambda p: torch.optim.Adagrad(p, lr=0.05)),
    "rmsprop": (dict(lr=0.01, alpha=0.9), lambda p: torch.optim.RMSprop(p, lr=0.01, alpha=0.9)),
    "adam": (dict(lr=0.01, betas=(0.8, 0.99)),
             lambda p: torch.optim.Adam(p, lr=0.01, betas=(0.8, 0.99))),
}
CLASSES = {"sgd": optim.SGD, "momentum": optim.SGD, "nesterov": optim.SGD,
           "adagrad": optim.Adagrad, "rmsprop": optim.RMSprop, "adam": optim.Adam}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch(name):
    rng = np.random.default_rng(0)
    shapes = {"w": (3, 4), "b": (4,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    tparams = {k: torch.tensor(v.copy(), requires_grad=True) for k, v in params.items()}
    kwargs, make = CASES[name]
    ours, theirs = CLASSES[name](params, **kwargs), make(list(tparams.values()))
    for _ in range(5):
        grads = {k: rng.standard_normal(s) for k, s in shapes.items()}
        ours.step(grads)
        for k, t in tparams.items():
            t.grad = torch.tensor(grads[k])
        theirs.step()
    for k in shapes:
        np.testing.assert_allclose(params[k], tparams[k].detach().numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", ["momentum", "adagrad", "rmsprop", "adam"])
def test_state_dict_resumes_the_same_trajectory(name):
    rng = np.random.default_rng(1)
    grads = [{"w": rng.standard_normal(5).astype(np.float32)} for _ in range(6)]
    a = {"w": np.linspace(-1, 1, 5, dtype=np.float32)}
    b = {"w": a["w"].copy()}
    kwargs = CASES[name][0]
    one = CLASSES[name](a, **kwargs)
    for g in grads:
        one.step(g)
    two = CLASSES[name](b, **kwargs)
    for g in grads[:3]:
        two.step(g)
    saved = two.state_dict()
    three = CLASSES[name]({"w": b["w"].copy()}, **kwargs)
    three.load_state_dict(saved)
    for g in grads[3:]:
        three.step(g)
    assert three.steps == 6
    np.testing.assert_array_equal(three.params["w"], a["w"])


def test_updates_a_layer_in_place():
    layer = rnnx.RNN(2, 3, dtype=np.float64, seed=0)
    params = layer.state_dict()
    before = params["weight_hh_l0"].copy()
    opt = optim.SGD(params, lr=1.0)
    opt.step({k: np.ones_like(v) for k, v in params.items()})
    np.testing.assert_array_equal(layer.state_dict()["weight_hh_l0"], before - 1.0)


def test_clip_by_value_matches_course_clip():
    rng = np.random.default_rng(2)
    g = {k: 20 * rng.standard_normal((3, 2)) for k in ("dWaa", "dWax", "dWya", "db", "dby")}
    g["db"][0, 0] = np.inf
    expected = rnnx.reference.dinos.clip({k: v.copy() for k, v in g.items()}, 5)
    got = optim.clip_by_value(g, 5)
    for k in expected:
        np.testing.assert_array_equal(got[k], expected[k])
    assert got["db"][0, 0] == 5


def test_clip_by_global_norm():
    g = {"a": np.array([3.0, 0.0]), "b": np.array([[4.0]])}
    norm = optim.clip_by_global_norm(g, 1.0)
    assert norm == 5.0
    np.testing.assert_allclose(np.sqrt(np.sum(g["a"] ** 2) + np.sum(g["b"] ** 2)), 1.0)
    np.testing.assert_allclose(g["a"], [0.6, 0.0])
    small = {"a": np.array([0.3, 0.4])}
    assert optim.clip_by_global_norm(small, 1.0) == pytest.approx(0.5)
    np.testing.assert_array_equal(small["a"], [0.3, 0.4])
    bad = {"a": np.array([np.inf, 1.0])}
    assert optim.clip_by_global_norm(bad, 1.0) == np.inf
    assert bad["a"][1] == 1.0


@pytest.mark.parametrize("make, exc, match", [
    (lambda: optim.SGD({}, lr=0.1), TypeError, "params"),
    (lambda: optim.SGD({"w": np.ones(2)}, lr=-1), ValueError, "lr"),
    (lambda: optim.SGD({"w": np.ones(2, dtype=int)}, lr=0.1), TypeError, r"params\['w'\]"),
    (lambda: optim.SGD({"w": np.ones(2)}, lr=0.1, momentum=1.5), ValueError, "momentum"),
    (lambda: optim.Adam({"w": np.ones(2)}, betas=(0.9, 1.0)), ValueError, r"betas\[1\]"),
    (lambda: optim.Adam({"w": np.ones(2)}, betas=0.9), TypeError, "betas"),
    (lambda: optim.RMSprop({"w": np.ones(2)}, eps=0), ValueError, "eps"),
    (lambda: optim.clip_by_value({"w": np.ones(2)}, float("nan")), TypeError, "max_value"),
    (lambda: optim.clip_by_global_norm({"w": np.ones(2)}, 0), ValueError, "max_norm"),
    (lambda: optim.clip_by_value([np.ones(2)], 1.0), TypeError, "grads must be a dict"),
    (lambda: optim.clip_by_global_norm(None, 1.0), TypeError, "grads must be a dict"),
    (lambda: optim.clip_by_value({"w": np.ones(2, int)}, 1.0), TypeError, r"grads\['w'\]"),
    (lambda: optim.SGD({"w": np.ones(2)}).load_state_dict([1]), TypeError, "state"),
    (lambda: optim.SGD({"w": np.ones(2)}).load_state_dict({"steps": -1}), ValueError, "steps"),
    (lambda: optim.Adam({"w": np.ones(2)}).load_state_dict(
        {"steps": 1, "m/w": [0.0, 0.0], "v/w": np.zeros(2)}), TypeError, "'m/w'"),
])
def test_bad_arguments(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("grads, exc, match", [
    ({}, KeyError, "'w'"),
    ({"w": np.ones(2), "v": np.ones(2)}, KeyError, "'v', which is not one of the optimizer's"),
    ({"w": np.ones(3)}, ValueError, r"grads\['w'\] must have shape \(2,\)"),
    ({"w": np.ones(2, dtype=np.float32)}, TypeError, "float64"),
    ([1, 2], TypeError, "grads must be a dict"),
])
def test_bad_grads(grads, exc, match):
    opt = optim.Adam({"w": np.ones(2)})
    with pytest.raises(exc, match=match):
        opt.step(grads)
    assert opt.steps == 0
