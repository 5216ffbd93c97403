"""Specification of the reference L2 penalty and dropout (solutions/scratchnet/regularization.py).

Gradients of backward_dropout are checked against centered differences of a
masked forward pass written out below (not forward_dropout), with the masks
of the cache held fixed, and against scratchnet.gradcheck driving
forward_dropout with a freshly seeded rng, so the masks repeat.
"""
import numpy as np
import pytest

from scratchnet.activations import relu, sigmoid, softmax, tanh
from scratchnet.backward import backward
from scratchnet.forward import cross_entropy, forward, init_params
from scratchnet.gradcheck import numerical_gradients, relative_error
from scratchnet.regularization import (
    backward_dropout, dropout_backward, dropout_forward, forward_dropout, l2_grads, l2_penalty,
)
from tests.arrays import assert_same, copies
from tests.rngs import CountingRng

GRAD_TOL = 1e-7
"""Largest relative error accepted between analytic and numerical gradients (eps = 1e-5, float64)."""

ACTIVATIONS = ["relu", "sigmoid", "tanh"]
FUNCTIONS = {"relu": relu, "sigmoid": sigmoid, "tanh": tanh}
LAYER_SIZES = {1: [4, 3], 2: [4, 5, 3], 3: [4, 6, 5, 3]}


def small_problem(layers, seed, N=6):
    """A network with layer sizes LAYER_SIZES[layers], non-zero biases, N examples and one-hot labels."""
    rng = np.random.default_rng(seed)
    params = init_params(LAYER_SIZES[layers], rng)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}
    X = rng.standard_normal((N, 4))
    Y = np.eye(3)[rng.integers(0, 3, size=N)]
    return params, X, Y


def masked_loss(params, X, Y, masks, activation):
    """Cross-entropy of the network with hidden activations g(Z_l) * masks[l], written out independently."""
    L = len(params) // 2
    A = X
    for l in range(1, L + 1):
        Z = A @ params[f"W{l}"] + params[f"b{l}"]
        A = FUNCTIONS[activation](Z) * masks[l] if l < L else Z
    logits = A - A.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return float(-np.sum(Y * log_probs) / len(X))


# --- l2_penalty and l2_grads ---------------------------------------------------------------


def test_l2_penalty_is_half_lambda_sum_of_squared_weights():
    """Is l2_penalty 0.5 * lam * sum_l sum(W_l ** 2), a float, with the biases left out?"""
    params, _, _ = small_problem(3, 0)
    p0 = copies(params)
    expected = 0.5 * 0.3 * sum(np.sum(params[f"W{l}"] ** 2) for l in (1, 2, 3))
    value = l2_penalty(params, 0.3)
    assert isinstance(value, float)
    assert value == pytest.approx(expected, rel=1e-13)
    shifted = {k: v + 5.0 if k.startswith("b") else v for k, v in params.items()}
    assert l2_penalty(shifted, 0.3) == pytest.approx(expected, rel=1e-13)
    assert l2_penalty(params, 0.0) == 0.0
    assert_same(params, p0)


def test_l2_grads_adds_lambda_W_to_weight_gradients_only():
    """Does l2_grads return a new dict with dW_l + lam * W_l and the bias gradients unchanged?"""
    params, _, _ = small_problem(2, 1)
    grads = {k: np.random.default_rng(2).normal(size=v.shape) for k, v in params.items()}
    p0, g0 = copies(params), copies(grads)
    out = l2_grads(params, grads, 0.25)
    assert out is not grads and out.keys() == grads.keys()
    for k in grads:
        expected = grads[k] + 0.25 * params[k] if k.startswith("W") else grads[k]
        np.testing.assert_allclose(out[k], expected, rtol=1e-15)
    assert_same(params, p0)
    assert_same(grads, g0)


def test_l2_grads_is_the_gradient_of_l2_penalty():
    """Is l2_grads(params, zeros, lam) the numerical gradient of l2_penalty(params, lam)?"""
    params, _, _ = small_problem(2, 3)
    zeros = {k: np.zeros_like(v) for k, v in params.items()}
    numeric = numerical_gradients(lambda p: l2_penalty(p, 0.7), params)
    analytic = l2_grads(params, zeros, 0.7)
    for k in params:
        assert relative_error(analytic[k], numeric[k]) < GRAD_TOL, k


# --- dropout_forward and dropout_backward --------------------------------------------------


def test_dropout_forward_mask_formula():
    """Is mask = (rng.random(A.shape) >= p) / (1 - p) and out = A * mask, from the same generator state?"""
    A = np.random.default_rng(0).normal(size=(5, 7))
    A0 = A.copy()
    out, mask = dropout_forward(A, 0.3, np.random.default_rng(11))
    expected_mask = (np.random.default_rng(11).random((5, 7)) >= 0.3) / 0.7
    assert mask.dtype == np.float64 and out.dtype == np.float64
    np.testing.assert_array_equal(mask, expected_mask)
    np.testing.assert_array_equal(out, A * expected_mask)
    assert set(np.unique(mask)) <= {0.0, 1 / 0.7}
    np.testing.assert_array_equal(A, A0)


def test_dropout_forward_calls_rng_random_once():
    """Does dropout_forward make exactly one rng call, rng.random(A.shape)?"""
    rng = CountingRng(4)
    dropout_forward(np.ones((3, 4)), 0.5, rng)
    assert rng.calls == ["random"]
    fresh = np.random.default_rng(4)
    fresh.random((3, 4))
    assert rng.bit_generator.state == fresh.bit_generator.state


def test_dropout_forward_keeps_expected_value():
    """On a large array, is the kept fraction close to 1 - p and the mean of out close to the mean of A?"""
    A = np.ones((400, 500))
    out, mask = dropout_forward(A, 0.25, np.random.default_rng(1))
    assert abs(np.mean(mask > 0) - 0.75) < 0.005
    assert abs(out.mean() - 1.0) < 0.01


def test_dropout_forward_with_p_zero_is_identity_without_rng():
    """With p_drop == 0, is out a copy of A, mask all ones, and the rng not called at all?"""
    A = np.random.default_rng(2).normal(size=(3, 4))
    rng = CountingRng(0)
    out, mask = dropout_forward(A, 0.0, rng)
    assert rng.calls == []
    np.testing.assert_array_equal(out, A)
    assert out is not A and not np.shares_memory(out, A)
    np.testing.assert_array_equal(mask, np.ones((3, 4)))
    assert mask.dtype == np.float64


@pytest.mark.parametrize("p_drop", [-0.1, 1.0, 1.5])
def test_dropout_forward_rejects_invalid_p(p_drop):
    """Does dropout_forward raise ValueError unless 0 <= p_drop < 1, before touching the rng?"""
    rng = CountingRng(0)
    with pytest.raises(ValueError):
        dropout_forward(np.ones((2, 2)), p_drop, rng)
    assert rng.calls == []


def test_dropout_backward_is_dout_times_mask():
    """Is dropout_backward(dout, mask) = dout * mask, the gradient of sum(G * A * mask) with respect to A?"""
    rng = np.random.default_rng(3)
    dout, A = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    _, mask = dropout_forward(A, 0.4, rng)
    d0, m0 = dout.copy(), mask.copy()
    dA = dropout_backward(dout, mask)
    np.testing.assert_array_equal(dA, dout * mask)
    numeric = numerical_gradients(lambda p: float(np.sum(dout * p["A"] * mask)), {"A": A})["A"]
    assert relative_error(dA, numeric) < GRAD_TOL
    np.testing.assert_array_equal(dout, d0)
    np.testing.assert_array_equal(mask, m0)


# --- forward_dropout -----------------------------------------------------------------------


@pytest.mark.parametrize("layers", [1, 2, 3])
def test_forward_dropout_draws_one_mask_per_hidden_layer_in_order(layers):
    """Does forward_dropout call rng.random once per hidden layer (L - 1 calls), masks in layer order?"""
    params, X, _ = small_problem(layers, 4)
    rng = CountingRng(7)
    _, cache = forward_dropout(params, X, "relu", 0.5, rng)
    assert rng.calls == ["random"] * (layers - 1)
    replay = np.random.default_rng(7)
    for l in range(1, layers):
        expected = (replay.random((len(X), LAYER_SIZES[layers][l])) >= 0.5) / 0.5
        np.testing.assert_array_equal(cache[f"M{l}"], expected, err_msg=f"M{l}")
    assert rng.bit_generator.state == replay.bit_generator.state


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_dropout_cache_layout_and_values(activation):
    """Does the cache hold A0, Z_l, A_l (after the mask) and the hidden masks M_l, consistent with each other?"""
    params, X, _ = small_problem(3, 5)
    p0, X0 = copies(params), X.copy()
    probs, cache = forward_dropout(params, X, activation, 0.3, np.random.default_rng(1))
    assert {"A0", "Z1", "A1", "M1", "Z2", "A2", "M2", "Z3", "A3"} <= set(cache)
    assert not any(k == "M3" for k in cache)
    np.testing.assert_array_equal(cache["A0"], X)
    A = X
    for l in (1, 2, 3):
        Z = A @ params[f"W{l}"] + params[f"b{l}"]
        np.testing.assert_allclose(cache[f"Z{l}"], Z, rtol=1e-12, atol=1e-15)
        A = FUNCTIONS[activation](Z) * cache[f"M{l}"] if l < 3 else softmax(Z)
        np.testing.assert_allclose(cache[f"A{l}"], A, rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(probs, cache["A3"])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-12)
    assert_same(params, p0)
    np.testing.assert_array_equal(X, X0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_dropout_with_p_zero_is_forward(activation):
    """With p_drop == 0, is forward_dropout exactly Assignment 1's forward, with unit masks and no rng call?"""
    params, X, _ = small_problem(3, 6)
    rng = CountingRng(0)
    probs, cache = forward_dropout(params, X, activation, 0.0, rng)
    ref_probs, ref_cache = forward(params, X, activation)
    assert rng.calls == []
    np.testing.assert_array_equal(probs, ref_probs)
    for key, value in ref_cache.items():
        np.testing.assert_array_equal(cache[key], value, err_msg=key)
    for l in (1, 2):
        np.testing.assert_array_equal(cache[f"M{l}"], np.ones_like(cache[f"Z{l}"]))


def test_forward_dropout_rejects_invalid_p():
    """Does forward_dropout of a network with hidden layers raise ValueError for p_drop = 1?"""
    params, X, _ = small_problem(2, 0)
    with pytest.raises(ValueError):
        forward_dropout(params, X, "relu", 1.0, np.random.default_rng(0))


# --- backward_dropout ----------------------------------------------------------------------


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("layers", [1, 2, 3])
def test_backward_dropout_matches_finite_differences_with_masks_fixed(activation, layers):
    """Is backward_dropout the numerical gradient of the masked network's cross-entropy, masks held fixed?"""
    params, X, Y = small_problem(layers, 10 + layers)
    probs, cache = forward_dropout(params, X, activation, 0.3, np.random.default_rng(2))
    masks = {l: cache[f"M{l}"] for l in range(1, layers)}
    if activation == "relu":  # keep the check away from the kink at 0
        assert all(np.abs(cache[f"Z{l}"]).min() > 1e-3 for l in range(1, layers + 1))
    c0, p0, Y0 = copies(cache), copies(params), Y.copy()
    grads = backward_dropout(params, cache, Y, activation)
    assert grads.keys() == params.keys()
    numeric = numerical_gradients(lambda p: masked_loss(p, X, Y, masks, activation), params)
    for key in params:
        assert grads[key].shape == params[key].shape
        assert relative_error(grads[key], numeric[key]) < GRAD_TOL, key
    assert cross_entropy(probs, Y) == pytest.approx(masked_loss(params, X, Y, masks, activation), rel=1e-12)
    assert_same(cache, c0)
    assert_same(params, p0)
    np.testing.assert_array_equal(Y, Y0)


def test_backward_dropout_matches_gradcheck_of_forward_dropout():
    """Does gradcheck's numerical gradient of forward_dropout (fresh rng of one seed each time) agree?"""
    params, X, Y = small_problem(3, 20)
    _, cache = forward_dropout(params, X, "tanh", 0.5, np.random.default_rng(9))
    grads = backward_dropout(params, cache, Y, "tanh")
    numeric = numerical_gradients(
        lambda p: cross_entropy(forward_dropout(p, X, "tanh", 0.5, np.random.default_rng(9))[0], Y), params)
    for key in params:
        assert relative_error(grads[key], numeric[key]) < GRAD_TOL, key


def test_backward_dropout_dropped_units_get_no_gradient():
    """Does a hidden unit dropped for every example get zero gradient on its incoming weights and bias?"""
    params, X, Y = small_problem(2, 21)
    _, cache = forward_dropout(params, X, "sigmoid", 0.3, np.random.default_rng(0))
    cache["M1"][:, 0] = 0.0
    cache["A1"][:, 0] = 0.0
    grads = backward_dropout(params, cache, Y, "sigmoid")
    np.testing.assert_array_equal(grads["W1"][:, 0], 0.0)
    assert grads["b1"][0] == 0.0
    np.testing.assert_array_equal(grads["W2"][0], 0.0)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_backward_dropout_with_p_zero_is_backward(activation):
    """With p_drop == 0, is backward_dropout exactly Assignment 1's backward?"""
    params, X, Y = small_problem(3, 22)
    _, cache = forward_dropout(params, X, activation, 0.0, np.random.default_rng(0))
    _, ref_cache = forward(params, X, activation)
    grads = backward_dropout(params, cache, Y, activation)
    assert_same(grads, backward(params, ref_cache, Y, activation))
