"""Specification of the reference backward pass (solutions/scratchnet/backward.py).

Gradients are checked twice: with scratchnet.gradcheck (what students use)
and with a finite-difference loop written out below, and the two numerical
gradients are compared with each other, so a bug in the checker cannot make
a wrong backward pass look right.
"""
import numpy as np
import pytest

from scratchnet.backward import backward, linear_backward, softmax_cross_entropy_backward
from scratchnet.forward import cross_entropy, forward, init_params
from scratchnet.gradcheck import gradient_report, numerical_gradients, relative_error

GRAD_TOL = 1e-7
"""Largest relative error accepted between analytic and numerical gradients (eps = 1e-5, float64)."""

ACTIVATIONS = ["relu", "sigmoid", "tanh"]
LAYER_SIZES = {1: [4, 3], 2: [4, 5, 3], 3: [4, 5, 4, 3]}


def small_problem(layers, seed):
    """A network with layer sizes LAYER_SIZES[layers], non-zero biases, 6 examples and one-hot labels."""
    rng = np.random.default_rng(seed)
    params = init_params(LAYER_SIZES[layers], rng)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}
    X = rng.standard_normal((6, 4))
    Y = np.eye(3)[rng.integers(0, 3, size=6)]
    return params, X, Y


def loss_of(params, X, Y, activation):
    return cross_entropy(forward(params, X, activation)[0], Y)


def inline_numerical_gradients(params, X, Y, activation, eps=1e-5):
    """Centered differences, one entry at a time, on copies built fresh for every evaluation."""
    grads = {}
    for key, value in params.items():
        grads[key] = np.empty_like(value)
        for index in np.ndindex(value.shape):
            shifted = []
            for sign in (+1.0, -1.0):
                p = {k: v.copy() for k, v in params.items()}
                p[key][index] += sign * eps
                shifted.append(loss_of(p, X, Y, activation))
            grads[key][index] = (shifted[0] - shifted[1]) / (2.0 * eps)
    return grads


def test_softmax_cross_entropy_backward_is_probs_minus_Y_over_N():
    """Is dZ_L = (probs - Y) / N, with the shape of probs?"""
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(4), size=5)
    Y = np.eye(4)[rng.integers(0, 4, size=5)]
    np.testing.assert_allclose(softmax_cross_entropy_backward(probs, Y), (probs - Y) / 5, rtol=1e-15)


def test_softmax_cross_entropy_backward_is_gradient_wrt_scores():
    """Is (softmax(Z) - Y) / N the numerical gradient of cross_entropy(softmax(Z), Y) with respect to Z?"""
    from scratchnet.activations import softmax

    rng = np.random.default_rng(1)
    Z = rng.normal(size=(5, 4))
    Y = np.eye(4)[rng.integers(0, 4, size=5)]
    numeric = numerical_gradients(lambda p: cross_entropy(softmax(p["Z"]), Y), {"Z": Z})["Z"]
    assert relative_error(softmax_cross_entropy_backward(softmax(Z), Y), numeric) < GRAD_TOL


def test_linear_backward_matches_finite_differences():
    """Are dA_prev, dW, db the gradients of sum(G * (A_prev W + b)) for a fixed upstream G = dZ?"""
    rng = np.random.default_rng(2)
    A, W, b = rng.normal(size=(6, 4)), rng.normal(size=(4, 3)), rng.normal(size=3)
    G = rng.normal(size=(6, 3))
    inputs = {"A": A.copy(), "W": W.copy(), "b": b.copy(), "G": G.copy()}
    dA, dW, db = linear_backward(G, A, W)
    assert (dA.shape, dW.shape, db.shape) == (A.shape, W.shape, b.shape)
    numeric = numerical_gradients(lambda p: float(np.sum(G * (p["A"] @ p["W"] + p["b"]))),
                                  {"A": A, "W": W, "b": b})
    for name, analytic in (("A", dA), ("W", dW), ("b", db)):
        assert relative_error(analytic, numeric[name]) < GRAD_TOL, name
    for name, value in (("A", A), ("W", W), ("b", b), ("G", G)):
        np.testing.assert_array_equal(value, inputs[name], err_msg=f"{name} was modified")


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_passes_gradient_check(activation, layers):
    """Does backward agree with numerical gradients (relative error < GRAD_TOL) for every parameter?"""
    params, X, Y = small_problem(layers, seed=10 * layers + ACTIVATIONS.index(activation))
    _, cache = forward(params, X, activation)
    analytic = backward(params, cache, Y, activation)
    assert {k: v.shape for k, v in analytic.items()} == {k: v.shape for k, v in params.items()}

    rows = gradient_report(params, X, Y, activation)
    assert [r.name for r in rows] == list(params)
    worst = max(rows, key=lambda r: r.rel_error)
    assert worst.rel_error < GRAD_TOL, f"{worst.name}: relative error {worst.rel_error:.1e} >= {GRAD_TOL:.0e}"

    inline = inline_numerical_gradients(params, X, Y, activation)
    for key in params:
        err = relative_error(analytic[key], inline[key])
        assert err < GRAD_TOL, f"{key}: relative error {err:.1e} against the inline loop"


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradcheck_and_inline_loop_agree(activation):
    """Do gradcheck.numerical_gradients and the inline loop compute the same numerical gradient?"""
    params, X, Y = small_problem(2, seed=99)
    ours = numerical_gradients(lambda p: loss_of(p, X, Y, activation), params)
    inline = inline_numerical_gradients(params, X, Y, activation)
    for key in params:
        assert relative_error(ours[key], inline[key]) < 1e-9, key


def test_gradient_check_catches_a_wrong_gradient():
    """Does the check fail when one gradient is off by a little (so the tolerance has teeth)?"""
    params, X, Y = small_problem(2, seed=5)

    def slightly_wrong_backward(params, cache, Y, activation):
        grads = backward(params, cache, Y, activation)
        grads["b1"] = grads["b1"] * 1.001
        return grads

    rows = {r.name: r.rel_error for r in gradient_report(params, X, Y, "tanh", backward_fn=slightly_wrong_backward)}
    assert rows["b1"] > GRAD_TOL
    assert rows["W1"] < GRAD_TOL


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_does_not_modify_inputs(activation):
    """Are params, the cache and Y unchanged by backward?"""
    params, X, Y = small_problem(3, seed=7)
    _, cache = forward(params, X, activation)
    before = ({k: v.copy() for k, v in params.items()}, {k: v.copy() for k, v in cache.items()}, Y.copy())
    backward(params, cache, Y, activation)
    for now, then in zip((params, cache), before[:2]):
        assert now.keys() == then.keys()
        for k in now:
            np.testing.assert_array_equal(now[k], then[k], err_msg=k)
    np.testing.assert_array_equal(Y, before[2])


def test_backward_rejects_unknown_activation():
    """Does an unknown activation name raise ValueError listing the valid names?"""
    params, X, Y = small_problem(2, seed=3)
    _, cache = forward(params, X, "relu")
    with pytest.raises(ValueError, match="sigmoid"):
        backward(params, cache, Y, "elu")
