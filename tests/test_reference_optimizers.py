"""Specification of the reference optimizers and schedule (solutions/scratchnet/optimizers.py).

Each optimizer is checked against its update rule unrolled by hand for three
steps on fixed gradients, written with scalars per entry where possible.
"""
import inspect
import math

import numpy as np
import pytest

from scratchnet.optimizers import (
    adam_init, adam_step, cosine_lr, momentum_init, momentum_step, rmsprop_init, rmsprop_step,
)
from tests.arrays import assert_same, copies

RTOL = 1e-13


@pytest.fixture
def problem():
    """params of a [3, 2] network and three different gradient dicts (one per step)."""
    rng = np.random.default_rng(0)
    params = {"W1": rng.normal(size=(3, 2)), "b1": rng.normal(size=2)}
    grads = [{k: rng.normal(size=v.shape) for k, v in params.items()} for _ in range(3)]
    return params, grads


@pytest.mark.parametrize("init, keys", [(momentum_init, ["v"]), (rmsprop_init, ["s"]),
                                        (adam_init, ["m", "v", "t"])])
def test_init_gives_zero_state_shaped_like_params(problem, init, keys):
    """Does *_init return zero float64 arrays with the keys and shapes of params, owning their memory?"""
    params, _ = problem
    p0 = copies(params)
    state = init(params)
    assert sorted(state) == sorted(keys)
    arrays = []
    for key in keys:
        if key == "t":
            assert state["t"] == 0
            continue
        assert state[key].keys() == params.keys()
        for k, v in params.items():
            assert state[key][k].shape == v.shape and state[key][k].dtype == np.float64
            np.testing.assert_array_equal(state[key][k], 0.0)
            assert not np.shares_memory(state[key][k], v)
            arrays.append(state[key][k])
    assert len({id(a) for a in arrays}) == len(arrays)
    assert_same(params, p0)


def test_default_hyperparameters_are_torch_optim_defaults():
    """Are the defaults beta = 0.9 (momentum), rho = 0.99, eps = 1e-8 (RMSprop), 0.9, 0.999, 1e-8 (Adam)?"""
    def defaults(f):
        return {n: p.default for n, p in inspect.signature(f).parameters.items() if p.default is not p.empty}

    assert defaults(momentum_step) == {"beta": 0.9}
    assert defaults(rmsprop_step) == {"rho": 0.99, "eps": 1e-8}
    assert defaults(adam_step) == {"beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    assert defaults(cosine_lr) == {"lr_min": 0.0}


def run_steps(step, init, params, grads, lr, **kwargs):
    """Apply ``step`` once per gradient dict; check in-place updates, None returns and untouched grads."""
    identity = {k: id(v) for k, v in params.items()}
    state = init(params)
    g0 = [copies(g) for g in grads]
    for g in grads:
        assert step(params, g, state, lr, **kwargs) is None
    assert {k: id(v) for k, v in params.items()} == identity
    for g, before in zip(grads, g0):
        assert_same(g, before)
    return state


@pytest.mark.parametrize("beta", [0.9, 0.5])
def test_momentum_three_steps_unrolled(problem, beta):
    """Is momentum v = beta * v + g, p -= lr * v, i.e. p3 = p0 - lr (g1 (1 + b + b^2) + g2 (1 + b) + g3)?"""
    params, grads = problem
    p0 = copies(params)
    kwargs = {} if beta == 0.9 else {"beta": beta}
    state = run_steps(momentum_step, momentum_init, params, grads, 0.1, **kwargs)
    g1, g2, g3 = grads
    for k in params:
        v1 = g1[k]
        v2 = beta * g1[k] + g2[k]
        v3 = beta * beta * g1[k] + beta * g2[k] + g3[k]
        np.testing.assert_allclose(params[k], p0[k] - 0.1 * (v1 + v2 + v3), rtol=RTOL)
        np.testing.assert_allclose(state["v"][k], v3, rtol=RTOL)


def test_momentum_first_step_is_sgd(problem):
    """From the zero state, is the first momentum step a plain SGD step?"""
    params, grads = problem
    expected = {k: params[k] - 0.3 * grads[0][k] for k in params}
    momentum_step(params, grads[0], momentum_init(params), 0.3)
    for k in params:
        np.testing.assert_allclose(params[k], expected[k], rtol=RTOL)


@pytest.mark.parametrize("rho, eps", [(0.99, 1e-8), (0.9, 1e-3)])
def test_rmsprop_three_steps_unrolled(problem, rho, eps):
    """Is RMSprop s = rho s + (1 - rho) g^2, p -= lr g / (sqrt(s) + eps), step by step?"""
    params, grads = problem
    expected = copies(params)
    kwargs = {} if (rho, eps) == (0.99, 1e-8) else {"rho": rho, "eps": eps}
    state = run_steps(rmsprop_step, rmsprop_init, params, grads, 0.01, **kwargs)
    for k in params:
        s = np.zeros_like(expected[k])
        for g in grads:
            s = rho * s + (1 - rho) * g[k] * g[k]
            expected[k] = expected[k] - 0.01 * g[k] / (np.sqrt(s) + eps)
        np.testing.assert_allclose(params[k], expected[k], rtol=RTOL)
        np.testing.assert_allclose(state["s"][k], s, rtol=RTOL)


def test_rmsprop_first_step_closed_form(problem):
    """Is the first RMSprop step -lr * g / (sqrt(1 - rho) |g| + eps)?"""
    params, grads = problem
    p0 = copies(params)
    rmsprop_step(params, grads[0], rmsprop_init(params), 0.01)
    for k in params:
        g = grads[0][k]
        np.testing.assert_allclose(params[k], p0[k] - 0.01 * g / (math.sqrt(0.01) * np.abs(g) + 1e-8),
                                   rtol=1e-12)


@pytest.mark.parametrize("hyper", [{}, {"beta1": 0.8, "beta2": 0.9, "eps": 1e-4}])
def test_adam_three_steps_unrolled(problem, hyper):
    """Is Adam's update, with bias corrections 1 - beta^t, what the rule unrolled entry by entry gives?"""
    params, grads = problem
    b1, b2, eps = hyper.get("beta1", 0.9), hyper.get("beta2", 0.999), hyper.get("eps", 1e-8)
    p0 = copies(params)
    state = run_steps(adam_step, adam_init, params, grads, 0.05, **hyper)
    assert state["t"] == 3
    for k in params:
        for index in np.ndindex(params[k].shape):
            p, m, v = float(p0[k][index]), 0.0, 0.0
            for t, g in enumerate(grads, start=1):
                gi = float(g[k][index])
                m = b1 * m + (1 - b1) * gi
                v = b2 * v + (1 - b2) * gi * gi
                p -= 0.05 * (m / (1 - b1 ** t)) / (math.sqrt(v / (1 - b2 ** t)) + eps)
            assert params[k][index] == pytest.approx(p, rel=RTOL)
            assert state["m"][k][index] == pytest.approx(m, rel=RTOL)
            assert state["v"][k][index] == pytest.approx(v, rel=RTOL)


def test_adam_first_step_moves_by_lr_times_sign(problem):
    """Is the first Adam step -lr * g / (|g| + eps), i.e. almost exactly lr against the sign of g?"""
    params, grads = problem
    p0 = copies(params)
    state = adam_init(params)
    adam_step(params, grads[0], state, 0.01)
    assert state["t"] == 1
    for k in params:
        g = grads[0][k]
        np.testing.assert_allclose(params[k], p0[k] - 0.01 * g / (np.abs(g) + 1e-8), rtol=1e-12)


def test_adam_counts_steps_not_keys():
    """Does state["t"] grow by one per step, however many parameter arrays there are?"""
    params = {f"{kind}{l}": np.ones(2) for l in (1, 2, 3) for kind in "Wb"}
    state = adam_init(params)
    for _ in range(4):
        adam_step(params, {k: np.ones(2) for k in params}, state, 0.1)
    assert state["t"] == 4


def test_cosine_lr_endpoints_and_midpoint():
    """Does cosine_lr start at lr0, pass (lr0 + lr_min) / 2 half way and end at lr_min, as floats?"""
    assert cosine_lr(0.1, 0, 100) == pytest.approx(0.1, rel=1e-15)
    assert cosine_lr(0.1, 50, 100) == pytest.approx(0.05, rel=1e-14)
    assert cosine_lr(0.1, 100, 100) == pytest.approx(0.0, abs=1e-17)
    assert cosine_lr(0.1, 0, 10, lr_min=0.02) == pytest.approx(0.1, rel=1e-15)
    assert cosine_lr(0.1, 5, 10, lr_min=0.02) == pytest.approx(0.06, rel=1e-14)
    assert cosine_lr(0.1, 10, 10, lr_min=0.02) == pytest.approx(0.02, rel=1e-14)
    assert isinstance(cosine_lr(0.1, 3, 10), float)


def test_cosine_lr_closed_form_and_monotone():
    """Is cosine_lr lr_min + (lr0 - lr_min) (1 + cos(pi t / T)) / 2 at every step, decreasing in t?"""
    values = [cosine_lr(0.5, t, 37, lr_min=0.01) for t in range(38)]
    expected = [0.01 + 0.5 * 0.49 * (1 + math.cos(math.pi * t / 37)) for t in range(38)]
    np.testing.assert_allclose(values, expected, rtol=1e-14)
    assert all(a > b for a, b in zip(values, values[1:]))
