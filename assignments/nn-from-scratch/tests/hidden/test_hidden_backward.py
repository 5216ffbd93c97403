"""Hidden tests of backward.py: gradients against centered finite differences
of the reference loss on secret networks (every activation, 1 to 3 layers),
and every function against the reference on secret inputs."""
import numpy as np
import pytest

from nnkit.course.causes import cause
from nnkit.testing.checks import (
    check_close, check_tuple, check_unmodified, describe_call, first_match, numerical_gradients, scale_factor,
)
from nnkit.testing.gradient_checks import check_gradients, shape_hint

pytestmark = pytest.mark.part("backward")

EPS = 1e-6
"""Step of the centered finite differences."""
KINK = 1e-3
"""Smallest |pre-activation| allowed in relu networks, so no difference step crosses the kink at 0."""


def random_sizes(rng, layers, low=3, high=7):
    """layer_sizes [D, H..., C], neighbours of different sizes (so a transposed product cannot fit)."""
    sizes = [int(rng.integers(low, high))]
    for _ in range(layers):
        sizes.append(int(rng.integers(low, high)))
        if sizes[-1] == sizes[-2]:
            sizes[-1] += 1
    return sizes


def random_network(rng, sizes, N, reference, activation):
    """Secret params, X, one-hot Y and the reference's cache; relu networks are redrawn
    (up to 200 times) until no hidden pre-activation lies within KINK of 0."""
    for _ in range(200):
        params = {}
        for l in range(1, len(sizes)):
            params[f"W{l}"] = rng.normal(0.0, 1.5 / np.sqrt(sizes[l - 1]), size=(sizes[l - 1], sizes[l]))
            params[f"b{l}"] = rng.normal(0.0, 0.5, size=sizes[l])
        X = rng.normal(size=(N, sizes[0]))
        Y = np.zeros((N, sizes[-1]))
        Y[np.arange(N), rng.integers(0, sizes[-1], size=N)] = 1.0
        _, cache = reference.forward.forward(params, X, activation)
        hidden = [cache[f"Z{l}"] for l in range(1, len(sizes) - 1)]
        if activation != "relu" or all(np.min(np.abs(Z)) > KINK for Z in hidden):
            break
    return params, X, Y, cache


def mistaken_gradients(reference, params, cache, Y, activation):
    """The gradients common mistakes give, keyed by their cause: the reference's backward
    run on a cache (or weights) doctored so that it makes the mistake. Mistakes that
    only fit networks whose neighbouring layers have equal widths are left out of others."""
    L = sum(1 for key in params if key.startswith("W"))
    at_A, no_derivative, wrong_layer, outputs = dict(cache), dict(cache), dict(cache), dict(cache)
    for l in range(1, L):
        at_A[f"Z{l}"] = cache[f"A{l}"]
        no_derivative[f"Z{l}"] = np.ones_like(cache[f"Z{l}"])  # relu'(1) == 1
        wrong_layer[f"Z{l}"] = cache[f"Z{l + 1}"]
    for l in range(1, L + 1):
        outputs[f"A{l - 1}"] = cache[f"A{l}"]  # linear_backward given each layer's output
    backward = reference.backward.backward
    mistakes = {cause("derivative_at_A"): backward(params, at_A, Y, activation),
                cause("derivative_missing"): backward(params, no_derivative, Y, "relu"),
                cause("linear_backward_wrong_input"): backward(params, outputs, Y, activation)}
    if all(cache[f"Z{l}"].shape == cache[f"Z{l + 1}"].shape for l in range(1, L)):
        mistakes[cause("derivative_wrong_layer")] = backward(params, wrong_layer, Y, activation)
    if all(params[f"W{l}"].shape[0] == params[f"W{l}"].shape[1] for l in range(1, L + 1)):
        transposed = {k: (v.T if k.startswith("W") else v) for k, v in params.items()}
        # W enters only dA_prev = dZ @ W.T, so the transposed weights give dA_prev = dZ @ W.
        mistakes[cause("dA_prev_untransposed")] = backward(transposed, cache, Y, activation)
    return mistakes


@pytest.mark.points(1)
@pytest.mark.parametrize("layers", [1, 2, 3], ids=["1-layer", "2-layer", "3-layer"])
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backward_matches_finite_differences(submission, reference, rng, activation, layers):
    """Does backward agree with centered finite differences of the reference loss on a secret network?"""
    N = int(rng.integers(4, 7))
    sizes = random_sizes(rng, layers)
    params, X, Y, cache = random_network(rng, sizes, N, reference, activation)
    got = submission.call("backward", params, cache, Y, activation)
    what = describe_call(f"backward(params, cache, Y, {activation!r})", params=params, Y=Y)
    fw = reference.forward
    numeric = numerical_gradients(lambda p: fw.cross_entropy(fw.forward(p, X, activation)[0], Y), params, EPS)
    check_gradients(got.value, params, numeric, what, N,
                    against=f"centered finite differences of the loss (eps={EPS:g})",
                    mistakes=mistaken_gradients(reference, params, cache, Y, activation))


@pytest.mark.points(1)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backward_matches_reference(submission, reference, rng, activation):
    """Does backward match the reference's gradients on a larger secret 3-layer network?"""
    N = int(rng.integers(12, 24))
    sizes = random_sizes(rng, 3, low=5, high=12)
    params, X, Y, cache = random_network(rng, sizes, N, reference, activation)
    got = submission.call("backward", params, cache, Y, activation)
    what = describe_call(f"backward(params, cache, Y, {activation!r})", params=params, Y=Y)
    expected = reference.backward.backward(params, cache, Y, activation)
    check_gradients(got.value, params, expected, what, N, against="the reference's gradients",
                    mistakes=mistaken_gradients(reference, params, cache, Y, activation))


@pytest.mark.points(1)
def test_backward_four_layers(submission, reference, rng):
    """Does backward handle any depth: a secret 4-layer tanh network whose layers all have the width
    of the output (where mixing up two layers gives wrong values rather than a shape error)?"""
    N = int(rng.integers(4, 9))
    C = int(rng.integers(3, 7))
    sizes = [C + 1 + int(rng.integers(0, 3))] + [C] * 4
    params, X, Y, cache = random_network(rng, sizes, N, reference, "tanh")
    got = submission.call("backward", params, cache, Y, "tanh")
    what = describe_call("backward(params, cache, Y, 'tanh')", params=params, Y=Y)
    expected = reference.backward.backward(params, cache, Y, "tanh")
    check_gradients(got.value, params, expected, what, N, against="the reference's gradients",
                    mistakes=mistaken_gradients(reference, params, cache, Y, "tanh"))


@pytest.mark.points(1)
def test_backward_single_example(submission, reference, rng):
    """Does backward match the reference for a batch of one example?"""
    sizes = random_sizes(rng, 2)
    params, X, Y, cache = random_network(rng, sizes, 1, reference, "sigmoid")
    got = submission.call("backward", params, cache, Y, "sigmoid")
    what = describe_call("backward(params, cache, Y, 'sigmoid')", params=params, Y=Y)
    expected = reference.backward.backward(params, cache, Y, "sigmoid")
    check_gradients(got.value, params, expected, what, 1, against="the reference's gradients",
                    mistakes=mistaken_gradients(reference, params, cache, Y, "sigmoid"))


@pytest.mark.points(1)
def test_backward_inputs_unmodified(submission, reference, rng):
    """Does backward leave params, cache and Y exactly as they were?"""
    sizes = random_sizes(rng, 3)
    params, X, Y, cache = random_network(rng, sizes, int(rng.integers(3, 9)), reference, "tanh")
    got = submission.call("backward", params, cache, Y, "tanh")
    what = describe_call("backward(params, cache, Y, 'tanh')", params=params, Y=Y)
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(cache, got.args[1], what=what, name="cache")
    check_unmodified(Y, got.args[2], what=what, name="Y")


@pytest.mark.points(1)
def test_softmax_cross_entropy_backward_matches_reference(submission, reference, rng):
    """Does softmax_cross_entropy_backward match the reference on secret batches, including N == 1?"""
    for N in (int(rng.integers(2, 12)), 1):
        C = int(rng.integers(2, 7))
        scores = rng.normal(0.0, 3.0, size=(N, C))
        probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
        Y = np.zeros((N, C))
        Y[np.arange(N), rng.integers(0, C, size=N)] = 1.0
        got = submission.call("softmax_cross_entropy_backward", probs, Y)
        what = describe_call("softmax_cross_entropy_backward(probs, Y)", probs=probs, Y=Y)
        expected = reference.backward.softmax_cross_entropy_backward(probs, Y)
        factor = scale_factor(got.value, expected)
        hint = (cause("dZ_missing_1_over_N") if factor is not None and N > 1 and np.isclose(factor, N)
                else cause("gradient_sign") if factor is not None and np.isclose(factor, -1.0)
                else "dZ_L = (probs - Y) / N")
        check_close(got.value, expected, what=what, hint=hint, reveal=False)
        check_unmodified(probs, got.args[0], what=what, name="probs")
        check_unmodified(Y, got.args[1], what=what, name="Y")


@pytest.mark.points(1)
@pytest.mark.parametrize("batch", ["batch", "single"])
def test_linear_backward_matches_reference(submission, reference, rng, batch):
    """Does linear_backward match the reference on secret shapes (a batch, and a single example),
    first with a square W (where a transposed product gives wrong values, not a shape error)?"""
    N = 1 if batch == "single" else int(rng.integers(2, 12))
    n_in, n_out = random_sizes(rng, 1, low=2, high=9)
    for n_in, n_out in ((n_out, n_out), (n_in, n_out)):
        dZ, A_prev, W = rng.normal(size=(N, n_out)), rng.normal(size=(N, n_in)), rng.normal(size=(n_in, n_out))
        got = submission.call("linear_backward", dZ, A_prev, W)
        what = describe_call("linear_backward(dZ, A_prev, W)", dZ=dZ, A_prev=A_prev, W=W)
        result = check_tuple(got.value, ("dA_prev", "dW", "db"), what=what)
        expected = reference.backward.linear_backward(dZ, A_prev, W)
        mistakes = {"dA_prev": [(cause("dA_prev_untransposed"), reference.backward.linear_backward(dZ, A_prev, W.T)[0])]
                    if n_in == n_out else [],
                    "dW": [(cause("dW_transposed"), expected[1].T), (cause("divided_by_N_twice"), expected[1] / N)]
                    if N > 1 else [(cause("dW_transposed"), expected[1].T)],
                    "db": []}
        advice = {"dA_prev": "dA_prev has the shape of A_prev: dZ times the transpose of W",
                  "dW": "dW has the shape of W: A_prev transposed times dZ, with no extra 1/N",
                  "db": "db is dZ summed over the examples (axis 0)"}
        for name, value, exp in zip(advice, result, expected):
            hint = first_match(value, mistakes[name], advice[name])
            if name != "dA_prev" and getattr(value, "shape", None) != exp.shape:
                hint = shape_hint(name[1], value, exp.shape, N)
            check_close(value, exp, what=f"{what}: {name}", hint=hint, reveal=False)
        for name, before, after in zip(("dZ", "A_prev", "W"), (dZ, A_prev, W), got.args):
            check_unmodified(before, after, what=what, name=name)
