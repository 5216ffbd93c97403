"""Specification of the reference forward pass (solutions/scratchnet/forward.py)."""
import numpy as np
import pytest

from scratchnet.forward import cross_entropy, forward, init_params, linear_forward, predict
from tests.arrays import assert_same, copies

ACTIVATIONS = ["relu", "sigmoid", "tanh"]
RTOL = 1e-12


@pytest.fixture
def net():
    """A 3-layer network [5, 4, 3, 3] with non-zero biases, and a batch of 6 inputs."""
    rng = np.random.default_rng(0)
    params = init_params([5, 4, 3, 3], rng)
    params = {k: v + 0.1 * rng.standard_normal(v.shape) for k, v in params.items()}
    return params, rng.standard_normal((6, 5))


def test_init_params_keys_shapes_and_zero_biases():
    """Does init_params give W_l of shape (n_{l-1}, n_l) and zero float64 biases b_l of shape (n_l,)?"""
    params = init_params([7, 5, 3, 2], np.random.default_rng(0))
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    for l, (n_in, n_out) in enumerate([(7, 5), (5, 3), (3, 2)], start=1):
        assert params[f"W{l}"].shape == (n_in, n_out) and params[f"W{l}"].dtype == np.float64
        np.testing.assert_array_equal(params[f"b{l}"], np.zeros(n_out))


def test_init_params_draws_he_weights_in_layer_order():
    """Is W_l the l-th standard_normal draw of the generator, scaled by sqrt(2 / n_{l-1})?"""
    sizes = [6, 4, 3]
    params = init_params(sizes, np.random.default_rng(42))
    rng = np.random.default_rng(42)
    for l in (1, 2):
        draw = rng.standard_normal((sizes[l - 1], sizes[l]))
        np.testing.assert_allclose(params[f"W{l}"], draw * (2.0 / sizes[l - 1]) ** 0.5, rtol=RTOL)


def test_init_params_scale_is_he():
    """Is the spread of a large first layer close to sqrt(2 / D) (He initialisation)?"""
    W = init_params([1000, 500, 2], np.random.default_rng(1))["W1"]
    assert abs(W.std() / np.sqrt(2.0 / 1000) - 1.0) < 0.01
    assert abs(W.mean()) < 0.01 * W.std()


def test_init_params_is_deterministic():
    """Do equal seeds give equal networks, and different seeds different ones?"""
    a = init_params([4, 3, 2], np.random.default_rng(5))
    b = init_params([4, 3, 2], np.random.default_rng(5))
    c = init_params([4, 3, 2], np.random.default_rng(6))
    assert_same(a, b)
    assert not np.array_equal(a["W1"], c["W1"])


def test_linear_forward_matches_einsum():
    """Is Z[i, j] = sum_k A[i, k] W[k, j] + b[j] (computed here with einsum)?"""
    rng = np.random.default_rng(2)
    A, W, b = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=5)
    args = copies({"A": A, "W": W, "b": b})
    Z = linear_forward(A, W, b)
    np.testing.assert_allclose(Z, np.einsum("ik,kj->ij", A, W) + b[None, :], rtol=RTOL)
    assert_same({"A": A, "W": W, "b": b}, args)


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_forward_cache_holds_every_layer(net, activation):
    """Does the cache hold A0 = X and, per layer, Z_l = A_{l-1} W_l + b_l and A_l = g(Z_l)?"""
    params, X = net
    g = {"relu": lambda z: np.where(z > 0, z, 0.0),
         "sigmoid": lambda z: 0.5 * (1 + np.tanh(z / 2)),
         "tanh": lambda z: np.sinh(z) / np.cosh(z)}[activation]
    probs, cache = forward(params, X, activation)
    np.testing.assert_array_equal(cache["A0"], X)
    A = X
    for l in (1, 2, 3):
        Z = A @ params[f"W{l}"] + params[f"b{l}"]
        A = g(Z) if l < 3 else np.exp(Z - np.logaddexp.reduce(Z, axis=1, keepdims=True))
        np.testing.assert_allclose(cache[f"Z{l}"], Z, rtol=1e-12, atol=1e-14, err_msg=f"Z{l}")
        np.testing.assert_allclose(cache[f"A{l}"], A, rtol=1e-12, atol=1e-14, err_msg=f"A{l}")
    assert probs is cache["A3"] or np.array_equal(probs, cache["A3"])
    assert probs.shape == (6, 3)
    np.testing.assert_allclose(probs.sum(axis=1), np.ones(6), rtol=RTOL)


def test_forward_single_layer_is_softmax_regression():
    """With one layer, is forward just softmax(X W1 + b1) whatever the activation?"""
    rng = np.random.default_rng(3)
    params = {"W1": rng.normal(size=(4, 3)), "b1": rng.normal(size=3)}
    X = rng.normal(size=(5, 4))
    Z = X @ params["W1"] + params["b1"]
    expected = np.exp(Z - np.logaddexp.reduce(Z, axis=1, keepdims=True))
    for activation in ACTIVATIONS:
        np.testing.assert_allclose(forward(params, X, activation)[0], expected, rtol=RTOL)


def test_forward_does_not_modify_inputs(net):
    """Are params and X unchanged by forward and predict?"""
    params, X = net
    p0, x0 = copies(params), X.copy()
    for activation in ACTIVATIONS:
        forward(params, X, activation)
        predict(params, X, activation)
    assert_same(params, p0)
    np.testing.assert_array_equal(X, x0)


def test_forward_rejects_unknown_activation(net):
    """Does an unknown activation name raise ValueError listing the valid names?"""
    params, X = net
    with pytest.raises(ValueError, match="relu"):
        forward(params, X, "softplus")


def test_cross_entropy_matches_label_lookup():
    """Is cross_entropy the mean of -log(probs[i, y_i]) (looked up by label, not by one-hot product)?"""
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(8, 5))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    y = rng.integers(0, 5, size=8)
    Y = np.eye(5)[y]
    p0, y0 = probs.copy(), Y.copy()
    loss = cross_entropy(probs, Y)
    assert isinstance(loss, float)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(8), y])), rel=RTOL)
    np.testing.assert_array_equal(probs, p0)
    np.testing.assert_array_equal(Y, y0)


def test_cross_entropy_clips_zero_probabilities():
    """Is a zero probability on the true class clipped to 1e-12 (finite loss -log(1e-12) / N)?"""
    probs = np.array([[0.0, 1.0], [0.5, 0.5]])
    Y = np.array([[1.0, 0.0], [1.0, 0.0]])
    with np.errstate(all="raise"):
        loss = cross_entropy(probs, Y)
    assert loss == pytest.approx((-np.log(1e-12) - np.log(0.5)) / 2, rel=RTOL)


def test_cross_entropy_of_perfect_prediction_is_zero():
    """Is the loss 0 when every true class has probability 1?"""
    Y = np.eye(3)
    assert cross_entropy(Y.copy(), Y) == 0.0


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_predict_is_argmax_of_probs(net, activation):
    """Does predict return the (N,) int index of each row's largest probability?"""
    params, X = net
    probs, _ = forward(params, X, activation)
    pred = predict(params, X, activation)
    assert pred.shape == (6,) and np.issubdtype(pred.dtype, np.integer)
    np.testing.assert_array_equal(probs[np.arange(6), pred], probs.max(axis=1))
