"""Specification of the reference batch normalization (solutions/scratchnet/batchnorm.py)."""
import numpy as np
import pytest

from scratchnet.batchnorm import batchnorm_backward, batchnorm_eval, batchnorm_forward, running_stats
from scratchnet.gradcheck import numerical_gradients, relative_error
from tests.arrays import assert_same, copies

GRAD_TOL = 1e-7
"""Largest relative error accepted between analytic and numerical gradients (eps = 1e-5, float64)."""


@pytest.fixture
def batch():
    """Z (8, 5) with features of different means and scales, gamma and beta (5,), an upstream gradient G."""
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(8, 5)) * np.array([0.5, 1.0, 2.0, 3.0, 10.0]) + np.array([-1.0, 0.0, 1.0, 5.0, -3.0])
    gamma = rng.normal(size=5)
    beta = rng.normal(size=5)
    G = rng.normal(size=(8, 5))
    return Z, gamma, beta, G


def test_forward_normalises_each_feature(batch):
    """With gamma = 1 and beta = 0, does every column of out have mean 0 and (biased) variance near 1?"""
    Z = batch[0]
    out, _ = batchnorm_forward(Z, np.ones(5), np.zeros(5))
    assert out.shape == Z.shape and out.dtype == np.float64
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-14)
    var = Z.var(axis=0)
    np.testing.assert_allclose(out.var(axis=0), var / (var + 1e-5), rtol=1e-12)


def test_forward_closed_form_with_biased_variance(batch):
    """Is out = gamma * (Z - mu) / sqrt(var + eps) + beta with mu, var the batch mean and biased variance?"""
    Z, gamma, beta, _ = batch
    args = copies({"Z": Z, "gamma": gamma, "beta": beta})
    mu = Z.sum(axis=0) / 8
    var = ((Z - mu) ** 2).sum(axis=0) / 8
    for eps in (1e-5, 0.5):
        out, _ = batchnorm_forward(Z, gamma, beta, eps=eps)
        np.testing.assert_allclose(out, gamma * (Z - mu) / np.sqrt(var + eps) + beta, rtol=1e-12, atol=1e-14)
    out, _ = batchnorm_forward(Z, gamma, beta)
    np.testing.assert_allclose(out, gamma * (Z - mu) / np.sqrt(var + 1e-5) + beta, rtol=1e-12, atol=1e-14)
    assert_same({"Z": Z, "gamma": gamma, "beta": beta}, args)


def test_forward_of_a_constant_feature_is_beta():
    """Does a feature that is constant over the batch come out as beta (no division by zero)?"""
    Z = np.column_stack([np.full(4, 3.0), np.arange(4.0)])
    out, _ = batchnorm_forward(Z, np.array([2.0, 1.0]), np.array([0.5, 0.0]))
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(out[:, 0], 0.5, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 5), (3, 4), (30, 1)])
def test_backward_matches_finite_differences(shape):
    """Are dZ, dgamma, dbeta the numerical gradients of sum(G * out) for a fixed upstream G?"""
    rng = np.random.default_rng(shape[0])
    Z = rng.normal(size=shape) * 2 + 1
    gamma, beta = rng.normal(size=shape[1]), rng.normal(size=shape[1])
    G = rng.normal(size=shape)
    _, cache = batchnorm_forward(Z, gamma, beta)
    G0 = G.copy()
    dZ, dgamma, dbeta = batchnorm_backward(G, cache)
    assert (dZ.shape, dgamma.shape, dbeta.shape) == (Z.shape, gamma.shape, beta.shape)
    numeric = numerical_gradients(
        lambda p: float(np.sum(G * batchnorm_forward(p["Z"], p["gamma"], p["beta"])[0])),
        {"Z": Z, "gamma": gamma, "beta": beta})
    for name, analytic in (("Z", dZ), ("gamma", dgamma), ("beta", dbeta)):
        assert relative_error(analytic, numeric[name]) < GRAD_TOL, name
    np.testing.assert_array_equal(G, G0)


def test_backward_closed_forms(batch):
    """Is dbeta = sum(G), dgamma = sum(G * x_hat), and do the columns of dZ sum to 0 (shift invariance)?"""
    Z, gamma, beta, G = batch
    _, cache = batchnorm_forward(Z, gamma, beta)
    dZ, dgamma, dbeta = batchnorm_backward(G, cache)
    x_hat = (Z - Z.mean(axis=0)) / np.sqrt(Z.var(axis=0) + 1e-5)
    np.testing.assert_allclose(dbeta, G.sum(axis=0), rtol=1e-13)
    np.testing.assert_allclose(dgamma, (G * x_hat).sum(axis=0), rtol=1e-12)
    # out does not change when a constant is added to a column of Z.
    np.testing.assert_allclose(dZ.sum(axis=0), 0.0, atol=1e-12)


def test_backward_along_x_hat_depends_on_eps(batch):
    """Is sum(dZ * x_hat) = gamma * dgamma * eps / (var + eps) ** 1.5 per column (0 as eps -> 0)?"""
    Z, gamma, beta, G = batch
    eps = 0.5
    _, cache = batchnorm_forward(Z, gamma, beta, eps=eps)
    dZ, dgamma, _ = batchnorm_backward(G, cache)
    var = Z.var(axis=0)
    x_hat = (Z - Z.mean(axis=0)) / np.sqrt(var + eps)
    np.testing.assert_allclose((dZ * x_hat).sum(axis=0), gamma * dgamma * eps / (var + eps) ** 1.5,
                               rtol=1e-9, atol=1e-13)


def test_eval_closed_form_and_rows_independent(batch):
    """Is batchnorm_eval gamma * (Z - mean) / sqrt(var + eps) + beta, row by row?"""
    Z, gamma, beta, _ = batch
    mean, var = np.linspace(-1, 1, 5), np.linspace(0.5, 2.0, 5)
    args = copies({"Z": Z, "gamma": gamma, "beta": beta, "mean": mean, "var": var})
    out = batchnorm_eval(Z, gamma, beta, mean, var)
    np.testing.assert_allclose(out, gamma * (Z - mean) / np.sqrt(var + 1e-5) + beta, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(batchnorm_eval(Z[2:3], gamma, beta, mean, var), out[2:3], rtol=1e-15)
    np.testing.assert_allclose(batchnorm_eval(Z, gamma, beta, mean, var, eps=0.1),
                               gamma * (Z - mean) / np.sqrt(var + 0.1) + beta, rtol=1e-13, atol=1e-15)
    assert_same({"Z": Z, "gamma": gamma, "beta": beta, "mean": mean, "var": var}, args)


def test_eval_with_the_batch_statistics_is_training_mode(batch):
    """With the batch's own mean and biased variance, does batchnorm_eval equal batchnorm_forward?"""
    Z, gamma, beta, _ = batch
    out, _ = batchnorm_forward(Z, gamma, beta)
    np.testing.assert_allclose(batchnorm_eval(Z, gamma, beta, Z.mean(axis=0), Z.var(axis=0)), out,
                               rtol=1e-12, atol=1e-14)


def test_running_stats_closed_form_with_unbiased_variance(batch):
    """Is new = momentum * old + (1 - momentum) * batch statistic, the batch variance with ddof = 1?"""
    Z = batch[0]
    mean, var = np.full(5, 0.5), np.full(5, 2.0)
    args = copies({"mean": mean, "var": var, "Z": Z})
    batch_mean = Z.sum(axis=0) / 8
    batch_var = ((Z - batch_mean) ** 2).sum(axis=0) / 7
    new_mean, new_var = running_stats(mean, var, Z)
    np.testing.assert_allclose(new_mean, 0.9 * mean + 0.1 * batch_mean, rtol=1e-13)
    np.testing.assert_allclose(new_var, 0.9 * var + 0.1 * batch_var, rtol=1e-13)
    new_mean, new_var = running_stats(mean, var, Z, momentum=0.75)
    np.testing.assert_allclose(new_mean, 0.75 * mean + 0.25 * batch_mean, rtol=1e-13)
    np.testing.assert_allclose(new_var, 0.75 * var + 0.25 * batch_var, rtol=1e-13)
    assert_same({"mean": mean, "var": var, "Z": Z}, args)


def test_running_stats_momentum_extremes(batch):
    """Does momentum 0 give the batch statistics and momentum 1 the old ones, as new arrays?"""
    Z = batch[0]
    mean, var = np.zeros(5), np.ones(5)
    m0, v0 = running_stats(mean, var, Z, momentum=0.0)
    np.testing.assert_allclose(m0, Z.mean(axis=0), rtol=1e-14)
    np.testing.assert_allclose(v0, Z.var(axis=0, ddof=1), rtol=1e-14)
    m1, v1 = running_stats(mean, var, Z, momentum=1.0)
    np.testing.assert_array_equal(m1, mean)
    np.testing.assert_array_equal(v1, var)
    assert m1 is not mean and v1 is not var
