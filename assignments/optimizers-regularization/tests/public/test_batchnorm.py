"""Public tests of batchnorm.py: training-mode normalisation on small cases
(including a constant feature, where only eps keeps the division finite),
batchnorm_backward against centered finite differences, evaluation mode with
given statistics, and the running averages (unbiased batch variance)."""
import numpy as np
import pytest

from nnkit.course.causes import cause
from nnkit.testing.checks import (
    check_array, check_close, check_relative_error, check_tuple, check_unmodified, describe_call, first_match,
    numerical_gradients, relative_error,
)
from nnkit.testing.gradient_checks import GRAD_TOL

pytestmark = pytest.mark.part("batchnorm")

EPS = 1e-6
"""Step of the centered finite differences."""


def normalise(Z, gamma, beta, eps=1e-5, *, axis=0, ddof=0, eps_outside=False):
    """gamma * (Z - mu) / sqrt(var + eps) + beta with the batch statistics; the keywords make known mistakes."""
    mu, var = Z.mean(axis=axis, keepdims=True), Z.var(axis=axis, ddof=ddof, keepdims=True)
    with np.errstate(all="ignore"):
        std = np.sqrt(var) + eps if eps_outside else np.sqrt(var + eps)
        return gamma * (Z - mu) / std + beta


def forward_mistakes(Z, gamma, beta, eps=1e-5):
    """What common batchnorm_forward mistakes give, as (cause, out) pairs."""
    pairs = [(cause("bn_forward_unbiased_variance"), normalise(Z, gamma, beta, eps, ddof=1)),
             (cause("bn_eps_outside_sqrt"), normalise(Z, gamma, beta, eps, eps_outside=True)),
             (cause("bn_eps_ignored"), normalise(Z, gamma, beta, 1e-5)),
             (cause("bn_eps_ignored"), normalise(Z, gamma, beta, 0.0))]
    if gamma.shape == beta.shape:
        pairs.append((cause("bn_gamma_beta_swapped"), normalise(Z, beta, gamma, eps)))
    pairs.append((cause("bn_wrong_axis"), normalise(Z, gamma, beta, eps, axis=1)))
    return pairs


def forward_call(submission, Z, gamma, beta, **eps):
    got = submission.call("batchnorm_forward", Z, gamma, beta, **eps)
    what = describe_call("batchnorm_forward(Z, gamma, beta" + "".join(f", eps={v}" for v in eps.values()) + ")",
                         Z=Z, gamma=gamma, beta=beta)
    out, cache = check_tuple(got.value, ("out", "cache"), what=what)
    return got, what, out, cache


@pytest.mark.points(1)
def test_batchnorm_forward_small_case(submission):
    """On a 4 x 4 batch with a constant feature, is out = gamma * (Z - mu) / sqrt(var + eps) + beta, with the mean
    and the biased variance of each column (the constant one giving beta), leaving the inputs alone?"""
    Z = np.array([[1.0, 2.0, 5.0, 0.5], [3.0, -2.0, 5.0, 1.5], [5.0, 0.0, 5.0, -0.5], [-1.0, 4.0, 5.0, 2.5]])
    gamma, beta = np.array([2.0, 0.5, 1.5, -1.0]), np.array([0.1, -0.3, 0.7, 1.0])
    got, what, out, cache = forward_call(submission, Z, gamma, beta)
    expected = normalise(Z, gamma, beta)
    hint = first_match(out, forward_mistakes(Z, gamma, beta),
                       "per feature (column): mean and biased variance over the rows, then gamma * x_hat + beta")
    if isinstance(out, np.ndarray) and out.shape == Z.shape and not np.all(np.isfinite(out)):
        hint = cause("bn_eps_ignored")
    check_close(out, expected, what=what + ": out", hint=hint)
    for name, before, after in zip(("Z", "gamma", "beta"), (Z, gamma, beta), got.args):
        check_unmodified(before, after, what=what, name=name)


@pytest.mark.points(1)
def test_batchnorm_forward_statistics_and_eps(submission, rng):
    """With gamma = 1 and beta = 0, does every column of out have mean 0 and variance var / (var + eps),
    with the eps given (0.5 here) or the default 1e-5?"""
    N, H = 7, 5
    Z = rng.normal(2.0, 3.0, size=(N, H))
    ones, zeros = np.ones(H), np.zeros(H)
    for eps in (None, 0.5):
        got, what, out, _ = forward_call(submission, Z, ones, zeros, **({} if eps is None else {"eps": eps}))
        eps = 1e-5 if eps is None else eps
        hint = first_match(out, forward_mistakes(Z, ones, zeros, eps), "normalise each column with its own "
                           "mean and biased variance, Z.mean(axis=0) and Z.var(axis=0)")
        out = check_array(out, what=what + ": out", shape=(N, H), hint=hint)
        check_close(out.mean(axis=0), np.zeros(H), what=what + ": column means of out", hint=hint)
        var = Z.var(axis=0)
        check_close(out.var(axis=0), var / (var + eps), what=what + ": column variances of out", hint=hint)


def backward_mistakes(dout, Z, gamma, eps=1e-5):
    """What common batchnorm_backward mistakes return, as cause -> (dZ, dgamma, dbeta)."""
    N = Z.shape[0]
    inv_std = 1.0 / np.sqrt(Z.var(axis=0) + eps)
    x_hat = (Z - Z.mean(axis=0)) * inv_std
    dx_hat = dout * gamma
    dgamma, dbeta = (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    # the correct dZ, by the chain rule through the batch variance and mean, as the handout derives it
    centred = Z - Z.mean(axis=0)
    dvar = (dx_hat * centred).sum(axis=0) * -0.5 * inv_std ** 3
    dmu = -(dx_hat * inv_std).sum(axis=0) - 2.0 * dvar * centred.mean(axis=0)
    dZ = dx_hat * inv_std + dvar * 2.0 * centred / N + dmu / N
    return {
        cause("bn_backward_ignores_batch_statistics"): (dx_hat * inv_std, dgamma, dbeta),
        cause("bn_backward_missing_mean_term"): (inv_std / N * (N * dx_hat - x_hat * (dx_hat * x_hat).sum(axis=0)),
                                                 dgamma, dbeta),
        cause("bn_backward_missing_variance_term"): (inv_std / N * (N * dx_hat - dx_hat.sum(axis=0)), dgamma, dbeta),
        cause("bn_backward_missing_gamma"): (dZ / gamma, dgamma, dbeta),
        cause("bn_dgamma_dbeta_swapped"): (dZ, dbeta, dgamma),
        cause("bn_dgamma_uses_Z"): (dZ, (dout * Z).sum(axis=0), dbeta),
        cause("bn_param_grads_averaged"): (dZ, dgamma / N, dbeta / N),
    } | ({cause("bn_param_grads_not_summed"): (dZ, (dout * x_hat).sum(axis=1), dout.sum(axis=1))} if N == Z.shape[1]
         else {})  # summed over the features: shape (N,), which is (H,) only when N == H


def not_summed_over_rows(value, N, H):
    """Whether a dgamma or dbeta has the shape of one left unsummed ((N, H) or (1, H)) or summed over the
    features instead of the rows ((N,)), for a batch of N rows and H features."""
    return getattr(value, "shape", None) in ((N, H), (1, H)) + (((N,),) if N != H else ())


FORWARD_FIRST = ("batchnorm_backward gets the cache of your batchnorm_forward, whose out is wrong on this batch "
                 "(see its tests): fix batchnorm_forward first")


def forward_agrees(out, expected):
    """Whether batchnorm_forward's out (None: not checked) is the expected one."""
    return out is None or (isinstance(out, np.ndarray) and out.shape == expected.shape
                           and np.allclose(out, expected, rtol=1e-7, atol=1e-10))


def check_backward(value, expected, mistakes, what, against, N, H, forward_out=None, forward_expected=None):
    """Compare (dZ, dgamma, dbeta) with ``expected`` by relative error, naming a recognised mistake."""
    grads = check_tuple(value, ("dZ", "dgamma", "dbeta"), what=what)
    for i, (name, shape) in enumerate((("dZ", (N, H)), ("dgamma", (H,)), ("dbeta", (H,)))):
        hint = None
        if name != "dZ" and not_summed_over_rows(grads[i], N, H):
            hint = cause("bn_param_grads_not_summed")
        elif not (isinstance(grads[i], np.ndarray) and grads[i].shape == shape
                  and relative_error(grads[i], expected[i]) <= GRAD_TOL):
            hint = first_match(grads[i], [(c, m[i]) for c, m in mistakes.items()
                                          if relative_error(m[i], expected[i]) > GRAD_TOL],
                               FORWARD_FIRST if not forward_agrees(forward_out, forward_expected) else
                               {"dZ": "the docstring's formula for dZ, with dx_hat = dout * gamma",
                                "dgamma": "dgamma = sum over the rows of dout * x_hat",
                                "dbeta": "dbeta = sum over the rows of dout"}[name])
        check_array(grads[i], what=f"{what}: {name}", shape=shape, hint=hint)
        check_relative_error(grads[i], expected[i], what=f"{what}: {name}", tol=GRAD_TOL, against=against, hint=hint)


@pytest.mark.points(1)
@pytest.mark.parametrize("N,H", [(6, 4), (3, 2)], ids=["6x4", "3x2"])
def test_batchnorm_backward_gradient_check(submission, rng, N, H):
    """Do dZ, dgamma and dbeta agree with centered finite differences of sum(dout * out), with out =
    batchnorm_forward(Z, gamma, beta)[0] and the cache of that same call?"""
    Z, dout = rng.normal(1.0, 2.0, size=(N, H)), rng.normal(size=(N, H))
    gamma, beta = rng.normal(1.0, 0.5, size=H), rng.normal(size=H)
    _, _, out, cache = forward_call(submission, Z, gamma, beta)
    got = submission.call("batchnorm_backward", dout, cache)
    what = describe_call("batchnorm_backward(dout, cache)", dout=dout) + \
        ", cache from batchnorm_forward(Z, gamma, beta)"
    numeric = numerical_gradients(lambda p: float(np.sum(dout * normalise(p["Z"], p["gamma"], p["beta"]))),
                                  {"Z": Z, "gamma": gamma, "beta": beta}, EPS)
    check_backward(got.value, (numeric["Z"], numeric["gamma"], numeric["beta"]), backward_mistakes(dout, Z, gamma),
                   what, f"centered finite differences (eps={EPS:g})", N, H, out, normalise(Z, gamma, beta))


@pytest.mark.points(1)
def test_batchnorm_backward_shapes_and_inputs(submission, rng):
    """Does batchnorm_backward return float64 arrays of shapes (N, H), (H,) and (H,), leaving dout and the
    cache alone?"""
    N, H = 5, 3
    Z, dout = rng.normal(size=(N, H)), rng.normal(size=(N, H))
    _, _, _, cache = forward_call(submission, Z, rng.normal(size=H), rng.normal(size=H))
    got = submission.call("batchnorm_backward", dout, cache)
    what = describe_call("batchnorm_backward(dout, cache)", dout=dout)
    dZ, dgamma, dbeta = check_tuple(got.value, ("dZ", "dgamma", "dbeta"), what=what)
    check_array(dZ, what=what + ": dZ", shape=(N, H), hint="dZ has the shape of Z")
    for name, value in (("dgamma", dgamma), ("dbeta", dbeta)):
        check_array(value, what=f"{what}: {name}", shape=(H,),
                    hint=cause("bn_param_grads_not_summed") if not_summed_over_rows(value, N, H)
                    else "one value per feature, shape (H,)")
    check_unmodified(dout, got.args[0], what=what, name="dout")
    check_unmodified(cache, got.args[1], what=what, name="cache")


def eval_mistakes(Z, gamma, beta, mean, var, eps=1e-5):
    """What common batchnorm_eval mistakes give, as (cause, out) pairs."""
    pairs = [(cause("bn_eval_uses_batch_statistics"), normalise(Z, gamma, beta, eps)),
             (cause("bn_eval_variance_as_std"), gamma * (Z - mean) / (var + eps) + beta),
             (cause("bn_eps_outside_sqrt"), gamma * (Z - mean) / (np.sqrt(var) + eps) + beta),
             (cause("bn_eps_ignored"), gamma * (Z - mean) / np.sqrt(var) + beta)]
    if gamma.shape == beta.shape:
        pairs.append((cause("bn_gamma_beta_swapped"), beta * (Z - mean) / np.sqrt(var + eps) + gamma))
    return pairs


@pytest.mark.points(1)
def test_batchnorm_eval(submission, rng):
    """Is batchnorm_eval gamma * (Z - mean) / sqrt(var + eps) + beta with the given statistics, each row on its own
    (a batch of one row gives that row's result)?"""
    N, H = 6, 4
    Z, gamma, beta = rng.normal(size=(N, H)), rng.normal(1.0, 0.5, size=H), rng.normal(size=H)
    mean, var = rng.normal(size=H), rng.uniform(0.5, 3.0, size=H)
    got = submission.call("batchnorm_eval", Z, gamma, beta, mean, var)
    what = describe_call("batchnorm_eval(Z, gamma, beta, mean, var)", Z=Z, gamma=gamma, beta=beta, mean=mean, var=var)
    expected = gamma * (Z - mean) / np.sqrt(var + 1e-5) + beta
    hint = first_match(got.value, eval_mistakes(Z, gamma, beta, mean, var), "normalise with the mean and var given")
    check_close(got.value, expected, what=what, hint=hint)
    for name, before, after in zip(("Z", "gamma", "beta", "mean", "var"), (Z, gamma, beta, mean, var), got.args):
        check_unmodified(before, after, what=what, name=name)
    row = Z[2:3]
    got = submission.call("batchnorm_eval", row, gamma, beta, mean, var, 0.25)
    what = describe_call("batchnorm_eval(Z, gamma, beta, mean, var, eps=0.25)", Z=row)
    hint = first_match(got.value, eval_mistakes(row, gamma, beta, mean, var, 0.25),
                       "each row is normalised on its own, with the eps given")
    if isinstance(got.value, np.ndarray) and not np.all(np.isfinite(got.value)):
        hint = cause("bn_eval_uses_batch_statistics")
    check_close(got.value, gamma * (row - mean) / np.sqrt(var + 0.25) + beta, what=what, hint=hint)


@pytest.mark.points(1)
def test_batchnorm_eval_with_batch_statistics_is_forward(submission, rng):
    """Given the batch's own mean and biased variance, does batchnorm_eval give batchnorm_forward's out?"""
    Z, gamma, beta = rng.normal(size=(8, 3)), rng.normal(size=3), rng.normal(size=3)
    _, what, out, _ = forward_call(submission, Z, gamma, beta)
    check_close(out, normalise(Z, gamma, beta), what=what + ": out", hint=first_match(out, forward_mistakes(
        Z, gamma, beta), "see test_batchnorm_forward_small_case"))
    got = submission.call("batchnorm_eval", Z, gamma, beta, Z.mean(axis=0), Z.var(axis=0))
    what = describe_call("batchnorm_eval(Z, gamma, beta, Z.mean(axis=0), Z.var(axis=0))", Z=Z)
    hint = first_match(got.value, eval_mistakes(Z, gamma, beta, Z.mean(axis=0), Z.var(axis=0))[1:],
                       "the formula of batchnorm_forward, with mean and var given")
    check_close(got.value, out, what=what, hint=hint)


@pytest.mark.points(1)
def test_running_stats(submission, rng):
    """Is running_stats (momentum * mean + (1 - momentum) * Z.mean(axis=0), momentum * var + (1 - momentum) *
    Z.var(axis=0, ddof=1)), with momentum 0.9 by default, leaving its inputs alone?"""
    N, H = 5, 3
    mean, var, Z = rng.normal(size=H), rng.uniform(0.5, 2.0, size=H), rng.normal(1.0, 2.0, size=(N, H))
    for momentum in (None, 0.7):
        got = submission.call("running_stats", mean, var, Z, *(() if momentum is None else (momentum,)))
        what = describe_call("running_stats(mean, var, Z" + ("" if momentum is None else f", momentum={momentum}")
                             + ")", mean=mean, var=var, Z=Z)
        m = 0.9 if momentum is None else momentum
        new_mean, new_var = check_tuple(got.value, ("new_mean", "new_var"), what=what)
        reversed_ = (1 - m) * mean + m * Z.mean(axis=0), (1 - m) * var + m * Z.var(axis=0, ddof=1)
        check_close(new_mean, m * mean + (1 - m) * Z.mean(axis=0), what=what + ": new_mean",
                    hint=first_match(new_mean, {cause("bn_momentum_reversed"): reversed_[0],
                                                cause("bn_wrong_axis"): m * mean + (1 - m) * Z.mean()},
                                     "momentum * mean + (1 - momentum) * Z.mean(axis=0)"))
        check_close(new_var, m * var + (1 - m) * Z.var(axis=0, ddof=1), what=what + ": new_var",
                    hint=first_match(new_var, {cause("bn_running_variance_biased"): m * var + (1 - m) * Z.var(axis=0),
                                               cause("bn_momentum_reversed"): reversed_[1]},
                                     "momentum * var + (1 - momentum) * Z.var(axis=0, ddof=1)"))
        for name, before, after in zip(("mean", "var", "Z"), (mean, var, Z), got.args):
            check_unmodified(before, after, what=what, name=name)
