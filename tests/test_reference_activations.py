"""Specification of the reference activations (solutions/scratchnet/activations.py).

Expected values come from formulas other than the ones the reference uses
(tanh identities, cosh, np.logaddexp), so a shared mistake cannot hide.
"""
import warnings

import numpy as np
import pytest

from scratchnet.activations import (
    relu, relu_derivative, sigmoid, sigmoid_derivative, softmax, tanh, tanh_derivative,
)

ELEMENTWISE = [sigmoid, sigmoid_derivative, relu, relu_derivative, tanh, tanh_derivative]
RTOL = 1e-12


def strict(f, *args):
    """Call f with overflow, invalid operations, division by zero and any warning as errors.

    Underflow (exp of a very negative number rounding to 0) is the correct
    result, not a problem, so it stays allowed.
    """
    with np.errstate(all="raise", under="ignore"), warnings.catch_warnings():
        warnings.simplefilter("error")
        return f(*args)


@pytest.fixture
def z():
    return np.random.default_rng(0).uniform(-8.0, 8.0, size=(5, 7))


def test_sigmoid_matches_tanh_identity(z):
    """Is sigmoid(z) = (1 + tanh(z / 2)) / 2?"""
    np.testing.assert_allclose(sigmoid(z), 0.5 * (1.0 + np.tanh(0.5 * z)), rtol=RTOL, atol=1e-15)


def test_sigmoid_derivative_matches_tanh_identity(z):
    """Is sigmoid'(z) = (1 - tanh(z / 2)**2) / 4?"""
    np.testing.assert_allclose(sigmoid_derivative(z), 0.25 * (1.0 - np.tanh(0.5 * z) ** 2),
                               rtol=1e-10, atol=1e-15)


def test_tanh_matches_sinh_over_cosh(z):
    """Is tanh(z) = sinh(z) / cosh(z)?"""
    np.testing.assert_allclose(tanh(z), np.sinh(z) / np.cosh(z), rtol=RTOL, atol=1e-15)


def test_tanh_derivative_is_sech_squared(z):
    """Is tanh'(z) = 1 / cosh(z)**2?"""
    np.testing.assert_allclose(tanh_derivative(z), 1.0 / np.cosh(z) ** 2, rtol=1e-9, atol=1e-15)


def test_relu_and_derivative_match_heaviside():
    """Are relu(z) = z * H(z) and relu'(z) = H(z), with H(0) = 0?"""
    z = np.array([[-2.0, -0.0, 0.0, 1e-300, 3.5]])
    np.testing.assert_array_equal(relu(z), z * np.heaviside(z, 0.0))
    np.testing.assert_array_equal(relu_derivative(z), np.heaviside(z, 0.0))
    assert relu_derivative(z).dtype == np.float64


@pytest.mark.parametrize("g, dg", [(sigmoid, sigmoid_derivative), (relu, relu_derivative),
                                   (tanh, tanh_derivative)], ids=["sigmoid", "relu", "tanh"])
def test_derivatives_match_finite_differences(g, dg, z):
    """Does each derivative agree with a centered difference of its function?"""
    z = z[np.abs(z) > 1e-3]  # keep away from relu's kink
    h = 1e-6
    np.testing.assert_allclose(dg(z), (g(z + h) - g(z - h)) / (2 * h), rtol=1e-6, atol=1e-9)


def test_softmax_matches_logaddexp():
    """Is softmax(z) = exp(z - logsumexp(z)) row by row, with logsumexp from np.logaddexp?"""
    z = np.random.default_rng(1).normal(0.0, 3.0, size=(6, 4))
    lse = np.logaddexp.reduce(z, axis=1, keepdims=True)
    np.testing.assert_allclose(softmax(z), np.exp(z - lse), rtol=RTOL)


def test_softmax_is_row_wise():
    """Does each row of softmax depend on that row only (not on the whole matrix)?"""
    z = np.random.default_rng(2).normal(size=(3, 5))
    whole = softmax(z)
    for i in range(3):
        np.testing.assert_allclose(whole[i], softmax(z[i:i + 1])[0], rtol=RTOL)
    np.testing.assert_allclose(whole.sum(axis=1), np.ones(3), rtol=RTOL)


def test_sigmoid_is_stable_at_plus_minus_1000():
    """Is sigmoid of +-1000 finite, exact at the ends and free of overflow warnings?"""
    z = np.array([-1000.0, -745.0, -100.0, 0.0, 100.0, 1000.0])
    s = strict(sigmoid, z)
    assert np.all(np.isfinite(s))
    assert s[0] == 0.0 and s[-1] == 1.0 and s[3] == 0.5
    d = strict(sigmoid_derivative, z)
    assert np.all(np.isfinite(d)) and d[0] == 0.0 and d[-1] == 0.0


def test_tanh_is_stable_at_plus_minus_1000():
    """Are tanh and its derivative finite and warning-free at +-1000?"""
    z = np.array([-1000.0, 1000.0])
    np.testing.assert_array_equal(strict(tanh, z), [-1.0, 1.0])
    np.testing.assert_array_equal(strict(tanh_derivative, z), [0.0, 0.0])


def test_softmax_is_stable_for_entries_of_1e4():
    """Is softmax finite, warning-free and correct for entries of magnitude 1e4?"""
    z = np.array([[1e4, 1e4 - 1.0, -1e4], [-1e4, -1e4, -1e4], [1e4, 0.0, 1e4]])
    p = strict(softmax, z)
    assert np.all(np.isfinite(p))
    e = np.exp(-1.0)
    np.testing.assert_allclose(p[0], [1.0 / (1.0 + e), e / (1.0 + e), 0.0], rtol=RTOL)
    np.testing.assert_allclose(p[1], np.full(3, 1.0 / 3.0), rtol=RTOL)
    np.testing.assert_allclose(p[2], [0.5, 0.0, 0.5], rtol=RTOL)


@pytest.mark.parametrize("f", ELEMENTWISE + [softmax], ids=lambda f: f.__name__)
def test_shape_dtype_and_input_unmodified(f, z):
    """Does each function return a new float64 array of z's shape and leave z alone?"""
    before = z.copy()
    out = f(z)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == z.shape
    assert not np.shares_memory(out, z)
    np.testing.assert_array_equal(z, before)


@pytest.mark.parametrize("f", ELEMENTWISE, ids=lambda f: f.__name__)
def test_elementwise_functions_accept_any_shape(f):
    """Do the elementwise functions work on scalars-as-arrays, vectors and 3-D arrays?"""
    for shape in [(), (4,), (2, 3, 4)]:
        z = np.random.default_rng(3).normal(size=shape)
        assert np.shape(f(z)) == shape
