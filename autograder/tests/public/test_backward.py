"""Public tests of backward.py: gradients checked against centered finite
differences of the loss (computed with forward and cross_entropy), exact
formulas from the docstrings, shapes, untouched inputs, and speed.

In the grader, forward and cross_entropy come from the reference solution
when backward.py is tested, so a bug in forward.py costs points only once.
"""
import numpy as np
import pytest

from nnkit.inputs import random_params
from nnkit.causes import cause
from nnkit.checks import (
    check_array, check_close, check_keys, check_relative_error, check_tuple, check_unmodified, describe_call,
    fail, first_match, numerical_gradients, scale_factor,
)
from nnkit.gradient_checks import GRAD_TOL, check_gradients, shape_hint

pytestmark = pytest.mark.part("backward")

EPS = 1e-6
"""Step of the centered finite differences."""
KINK = 1e-3
"""Smallest |pre-activation| allowed in relu networks, so no difference step crosses the kink at 0."""


def one_hot(labels, C):
    Y = np.zeros((len(labels), C))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y


def forward(submission, params, X, activation):
    """forward(params, X, activation), checked enough to test backward with."""
    what = describe_call(f"forward(params, X, {activation!r}), needed to test backward,", params=params, X=X)
    probs, cache = check_tuple(submission.forward(params, X, activation), ("probs", "cache"), what=what)
    L = len(params) // 2
    check_keys(cache, ["A0"] + [f"{k}{l}" for l in range(1, L + 1) for k in "ZA"], what=what + " cache")
    return check_array(probs, what=what + " probs", shape=(X.shape[0], params[f"W{L}"].shape[1])), cache


def network(submission, rng, sizes, N, activation):
    """Random params, X and Y, and forward's cache; relu networks are redrawn (up to
    100 times) until no hidden pre-activation lies within KINK of 0."""
    for _ in range(100):
        params, X = random_params(rng, sizes, scale=1.5, bias_scale=0.5), rng.normal(size=(N, sizes[0]))
        Y = one_hot(rng.integers(0, sizes[-1], size=N), sizes[-1])
        _, cache = forward(submission, params, X, activation)
        hidden = [cache[f"Z{l}"] for l in range(1, len(sizes) - 1)]
        if activation != "relu" or all(np.min(np.abs(Z)) > KINK for Z in hidden):
            break
    return params, X, Y, cache


def losses(submission, X, Y, activation):
    """The mean cross-entropy of the network at each params dict of a list (two round trips in all;
    forward's cache, checked once by network(), stays behind)."""
    def evaluate(points):
        probs = submission.map("forward", [(p, X, activation) for p in points], item=0)
        what = describe_call(f"forward(params, X, {activation!r}), needed to test backward,", X=X)
        shape = (X.shape[0], points[0][f"W{len(points[0]) // 2}"].shape[1])
        probs = [check_array(P, what=what + " probs", shape=shape) for P in probs]
        return submission.map("cross_entropy", [(P, Y) for P in probs])
    return evaluate


@pytest.mark.points(1)
def test_softmax_cross_entropy_backward(submission, rng):
    """Is softmax_cross_entropy_backward (probs - Y) / N, shape (N, C)?"""
    N, C = 5, 3
    scores = rng.normal(size=(N, C))
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    Y = one_hot(rng.integers(0, C, size=N), C)
    got = submission.call("softmax_cross_entropy_backward", probs, Y)
    what = describe_call("softmax_cross_entropy_backward(probs, Y)", probs=probs, Y=Y)
    expected = (probs - Y) / N
    factor = scale_factor(got.value, expected)
    hint = {N: cause("dZ_missing_1_over_N"), -1: cause("gradient_sign")}.get(
        None if factor is None else round(factor), "dZ_L = (probs - Y) / N")
    check_close(got.value, expected, what=what, hint=hint)
    check_unmodified(probs, got.args[0], what=what, name="probs")
    check_unmodified(Y, got.args[1], what=what, name="Y")


@pytest.mark.points(1)
def test_linear_backward_shapes(submission, rng):
    """Does linear_backward return (dA_prev, dW, db) of shapes (N, n_{l-1}), (n_{l-1}, n_l) and (n_l,)?"""
    N, n_in, n_out = 5, 4, 3
    dZ, A_prev, W = rng.normal(size=(N, n_out)), rng.normal(size=(N, n_in)), rng.normal(size=(n_in, n_out))
    got = submission.call("linear_backward", dZ, A_prev, W)
    what = describe_call("linear_backward(dZ, A_prev, W)", dZ=dZ, A_prev=A_prev, W=W)
    dA_prev, dW, db = check_tuple(got.value, ("dA_prev", "dW", "db"), what=what)
    check_array(dA_prev, what=what + ": dA_prev", shape=(N, n_in),
                hint="dA_prev has the shape of A_prev: multiply dZ by the transpose of W")
    check_array(dW, what=what + ": dW", shape=(n_in, n_out), hint=shape_hint("W", dW, (n_in, n_out), N))
    check_array(db, what=what + ": db", shape=(n_out,), hint=shape_hint("b", db, (n_out,), N))
    for name, before, after in zip(("dZ", "A_prev", "W"), (dZ, A_prev, W), got.args):
        check_unmodified(before, after, what=what, name=name)


@pytest.mark.points(1)
def test_linear_backward_values(submission, rng):
    """Are dA_prev, dW and db the gradients of sum(dZ * (A_prev @ W + b)), for a square W, a batch
    and a batch of one?"""
    for N, n_in, n_out in ((5, 3, 3), (5, 4, 3), (1, 4, 3)):
        dZ, A_prev, W = rng.normal(size=(N, n_out)), rng.normal(size=(N, n_in)), rng.normal(size=(n_in, n_out))
        got = submission.call("linear_backward", dZ, A_prev, W)
        what = describe_call("linear_backward(dZ, A_prev, W)", dZ=dZ, A_prev=A_prev, W=W)
        result = check_tuple(got.value, ("dA_prev", "dW", "db"), what=what)
        # Z = A_prev @ W + b is linear, so the upstream gradient dZ makes sum(dZ * Z) the loss to differentiate.
        inputs = {"A_prev": A_prev, "W": W, "b": rng.normal(size=n_out)}
        numeric = numerical_gradients(lambda p: np.sum(dZ * (p["A_prev"] @ p["W"] + p["b"])), inputs, EPS)
        # With a square W, the two transposition mistakes give values of the right shape.
        square = {"dA_prev": (cause("dA_prev_untransposed"), dZ @ W),
                  "dW": (cause("dW_transposed"), numeric["W"].T)} if n_in == n_out else {}
        for name, value in zip(("dA_prev", "dW", "db"), result):
            expected = numeric[name[1:]]
            advice = {"dA_prev": "dA_prev has the shape of A_prev, (N, n_{l-1}): it carries dZ back "
                                 "through the weights W (chain rule on Z = A_prev @ W + b)",
                      "dW": "dW has the shape of W, (n_{l-1}, n_l): each entry pairs one input column of "
                            "A_prev with one column of dZ, summed over the N examples",
                      "db": "db is dZ summed over the examples (axis 0)"}[name]
            hint = first_match(value, [square[name]] if name in square else [], advice)
            factor = scale_factor(value, expected)
            if factor is not None and N > 1 and np.isclose(factor, 1.0 / N):
                hint = cause("divided_by_N_twice")
            if name != "dA_prev" and getattr(value, "shape", None) != expected.shape:
                hint = shape_hint(name[1], value, expected.shape, N)
            check_relative_error(value, expected, what=f"{what}: {name}", tol=GRAD_TOL,
                                 against="centered finite differences", hint=hint)


@pytest.mark.points(1)
@pytest.mark.parametrize("activation,sizes", [
    ("sigmoid", [4, 3]), ("tanh", [4, 5, 3]), ("sigmoid", [4, 5, 3]), ("relu", [4, 5, 3]), ("tanh", [4, 5, 4, 3]),
], ids=["1-layer", "tanh-2-layer", "sigmoid-2-layer", "relu-2-layer", "tanh-3-layer"])
def test_backward_gradient_check(submission, rng, activation, sizes):
    """Does backward agree with centered finite differences of cross_entropy(forward(params, X)[0], Y)?"""
    N = 5
    params, X, Y, cache = network(submission, rng, sizes, N, activation)
    got = submission.call("backward", params, cache, Y, activation)
    what = describe_call(f"backward(params, cache, Y, {activation!r})", params=params, Y=Y)
    numeric = numerical_gradients(None, params, EPS, many=losses(submission, X, Y, activation))
    check_gradients(got.value, params, numeric, what, N, cache=cache, activation=activation,
                    rerun=lambda changed, name: submission.backward(params, changed, Y, name))


@pytest.mark.points(1)
def test_backward_single_example(submission, rng):
    """Does backward work, and agree with finite differences, for a batch of one example?"""
    params, X, Y, cache = network(submission, rng, [4, 5, 3], 1, "tanh")
    grads = submission.backward(params, cache, Y, "tanh")
    what = describe_call("backward(params, cache, Y, 'tanh')", params=params, Y=Y)
    numeric = numerical_gradients(None, params, EPS, many=losses(submission, X, Y, "tanh"))
    check_gradients(grads, params, numeric, what, 1, cache=cache, activation="tanh",
                    rerun=lambda changed, name: submission.backward(params, changed, Y, name))


@pytest.mark.points(1)
def test_backward_structure_and_inputs(submission, rng):
    """Does backward return float64 gradients with the keys and shapes of params, leaving its inputs alone?"""
    params, X, Y, cache = network(submission, rng, [6, 5, 4, 3], 7, "sigmoid")
    got = submission.call("backward", params, cache, Y, "sigmoid")
    what = describe_call("backward(params, cache, Y, 'sigmoid')", params=params, Y=Y)
    grads = check_keys(got.value, list(params), what=what,
                       hint=cause("missing_gradients") if isinstance(got.value, dict) else
                       "return a dict with a gradient for every parameter: W1, b1, ..., WL, bL")
    extra = sorted(set(grads) - set(params))
    if extra:
        fail(what, f"exactly the keys {sorted(params)}", f"extra keys {extra}",
             "return only the parameter gradients")
    for key, value in params.items():
        check_array(grads[key], what=f"{what}: grads[{key!r}]", shape=value.shape,
                    hint=shape_hint(key, grads[key], value.shape, 7))
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(cache, got.args[1], what=what, name="cache")
    check_unmodified(Y, got.args[2], what=what, name="Y")


@pytest.mark.points(2)
def test_backward_is_backpropagation(submission, rng):
    """Is backward fast on a 784-128-10 network with N = 32 (backpropagation, not finite differences)?"""
    sizes, N, limit = [784, 128, 10], 32, 2.0
    params = {"W1": rng.normal(0.0, np.sqrt(2 / 784), size=(784, 128)), "b1": np.zeros(128),
              "W2": rng.normal(0.0, np.sqrt(2 / 128), size=(128, 10)), "b2": np.zeros(10)}
    X, Y = rng.random((N, 784)), one_hot(rng.integers(0, 10, size=N), 10)
    _, cache = forward(submission, params, X, "relu")
    got = submission.call("backward", params, cache, Y, "relu", timeout=5)
    what = describe_call("backward(params, cache, Y, 'relu')", params=params, Y=Y)
    grads = check_keys(got.value, list(params), what=what,
                       hint=cause("missing_gradients") if isinstance(got.value, dict) else None)
    for key, value in params.items():
        check_array(grads[key], what=f"{what}: grads[{key!r}]", shape=value.shape,
                    hint=shape_hint(key, grads[key], value.shape, N))
    if got.seconds >= limit:
        fail(what, f"to finish in under {limit:g} s (the reference takes a few milliseconds)",
             f"{got.seconds:.2f} s", cause("backward_not_backpropagation"))
