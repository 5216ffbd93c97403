"""Hidden tests of batchnorm.py: every function against the reference on secret
shapes, scales and eps, batchnorm_backward against centered finite differences
of the reference's forward pass, and batches of one row."""
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


def secret_batch(rng, N=None, H=None):
    """Secret Z (with a random offset and scale per feature), gamma and beta."""
    N = int(rng.integers(2, 30)) if N is None else N
    H = int(rng.integers(1, 12)) if H is None else H
    Z = rng.normal(rng.normal(0.0, 3.0, size=H), rng.uniform(0.1, 5.0, size=H), size=(N, H))
    return Z, rng.normal(1.0, 0.5, size=H), rng.normal(0.0, 1.0, size=H)


def forward_mistakes(Z, gamma, beta, eps):
    mu, std = Z.mean(axis=0), np.sqrt(Z.var(axis=0) + eps)
    with np.errstate(all="ignore"):
        return [(cause("bn_forward_unbiased_variance"), gamma * (Z - mu) / np.sqrt(Z.var(axis=0, ddof=1) + eps) + beta),
                (cause("bn_eps_outside_sqrt"), gamma * (Z - mu) / (np.sqrt(Z.var(axis=0)) + eps) + beta),
                (cause("bn_eps_ignored"), gamma * (Z - mu) / np.sqrt(Z.var(axis=0) + 1e-5) + beta),
                (cause("bn_gamma_beta_swapped"), beta * (Z - mu) / std + gamma),
                (cause("bn_wrong_axis"), gamma * (Z - Z.mean(axis=1, keepdims=True))
                 / np.sqrt(Z.var(axis=1, keepdims=True) + eps) + beta)]


def forward_call(submission, Z, gamma, beta, eps=None):
    got = submission.call("batchnorm_forward", Z, gamma, beta, *(() if eps is None else (eps,)))
    what = describe_call("batchnorm_forward(Z, gamma, beta" + ("" if eps is None else ", eps") + ")",
                         Z=Z, gamma=gamma, beta=beta)
    out, cache = check_tuple(got.value, ("out", "cache"), what=what)
    return got, what, out, cache


@pytest.mark.points(1)
@pytest.mark.parametrize("eps", ["default", "secret"])
def test_batchnorm_forward_matches_reference(submission, reference, rng, eps):
    """Does out match the reference on secret batches (with the default eps, or a secret one and a constant
    feature), leaving the inputs alone?"""
    Z, gamma, beta = secret_batch(rng)
    eps = None if eps == "default" else float(rng.uniform(1e-3, 1.0))
    if eps is not None:
        Z[:, int(rng.integers(0, Z.shape[1]))] = float(rng.normal())
    got, what, out, _ = forward_call(submission, Z, gamma, beta, eps)
    expected = reference.batchnorm.batchnorm_forward(Z, gamma, beta, *(() if eps is None else (eps,)))[0]
    hint = first_match(out, forward_mistakes(Z, gamma, beta, 1e-5 if eps is None else eps),
                       "per feature: mean and biased variance over the rows (axis 0)")
    if isinstance(out, np.ndarray) and out.shape == Z.shape and not np.all(np.isfinite(out)):
        hint = cause("bn_eps_ignored")
    check_close(out, expected, what=what + ": out", reveal=False, hint=hint)
    for name, before, after in zip(("Z", "gamma", "beta"), (Z, gamma, beta), got.args):
        check_unmodified(before, after, what=what, name=name)


def backward_mistakes(dout, Z, gamma, eps=1e-5):
    N = Z.shape[0]
    inv_std = 1.0 / np.sqrt(Z.var(axis=0) + eps)
    x_hat = (Z - Z.mean(axis=0)) * inv_std
    dx_hat = dout * gamma
    dgamma, dbeta = (dout * x_hat).sum(axis=0), dout.sum(axis=0)
    dZ = inv_std / N * (N * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))
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


FORWARD_FIRST = ("batchnorm_backward gets the cache of your batchnorm_forward, whose out is wrong on this batch "
                 "(see its tests): fix batchnorm_forward first")


def forward_agrees(out, expected):
    """Whether batchnorm_forward's out (None: not checked) is the expected one."""
    return out is None or (isinstance(out, np.ndarray) and out.shape == expected.shape
                           and np.allclose(out, expected, rtol=1e-7, atol=1e-10))


def check_backward(value, expected, mistakes, what, against, N, H, forward_out=None, forward_expected=None):
    grads = check_tuple(value, ("dZ", "dgamma", "dbeta"), what=what)
    for i, (name, shape) in enumerate((("dZ", (N, H)), ("dgamma", (H,)), ("dbeta", (H,)))):
        hint = None
        if name != "dZ" and getattr(grads[i], "shape", None) in ((N, H), (1, H)) + (((N,),) if N != H else ()):
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
@pytest.mark.parametrize("size", ["small", "tall"])
def test_batchnorm_backward_matches_finite_differences(submission, reference, rng, size):
    """Does batchnorm_backward agree with centered finite differences of sum(dout * out) through the reference's
    batchnorm_forward, on a secret batch?"""
    N, H = (int(rng.integers(3, 7)), int(rng.integers(2, 6))) if size == "small" else \
        (int(rng.integers(10, 25)), int(rng.integers(1, 4)))
    Z, gamma, beta = secret_batch(rng, N, H)
    dout = rng.normal(size=(N, H))
    _, _, out, cache = forward_call(submission, Z, gamma, beta)
    got = submission.call("batchnorm_backward", dout, cache)
    what = describe_call("batchnorm_backward(dout, cache)", dout=dout) + \
        ", cache from batchnorm_forward(Z, gamma, beta)"
    fw = reference.batchnorm.batchnorm_forward
    numeric = numerical_gradients(lambda p: float(np.sum(dout * fw(p["Z"], p["gamma"], p["beta"])[0])),
                                  {"Z": Z, "gamma": gamma, "beta": beta}, EPS)
    check_backward(got.value, (numeric["Z"], numeric["gamma"], numeric["beta"]), backward_mistakes(dout, Z, gamma),
                   what, f"centered finite differences (eps={EPS:g})", N, H, out, fw(Z, gamma, beta)[0])


@pytest.mark.points(1)
@pytest.mark.parametrize("eps", ["default", "secret"])
def test_batchnorm_backward_matches_reference(submission, reference, rng, eps):
    """Do dZ, dgamma and dbeta match the reference on a larger secret batch (the cache of the student's own
    batchnorm_forward, with the default or a secret eps)?"""
    Z, gamma, beta = secret_batch(rng, int(rng.integers(20, 60)), int(rng.integers(5, 20)))
    eps = None if eps == "default" else float(rng.uniform(1e-3, 1.0))
    dout = rng.normal(size=Z.shape)
    _, _, out, cache = forward_call(submission, Z, gamma, beta, eps)
    got = submission.call("batchnorm_backward", dout, cache)
    what = describe_call("batchnorm_backward(dout, cache)", dout=dout)
    bn = reference.batchnorm
    out_ref, cache_ref = bn.batchnorm_forward(Z, gamma, beta, *(() if eps is None else (eps,)))
    check_backward(got.value, bn.batchnorm_backward(dout, cache_ref),
                   backward_mistakes(dout, Z, gamma, 1e-5 if eps is None else eps), what,
                   "the reference's gradients", *Z.shape, out, out_ref)
    check_unmodified(dout, got.args[0], what=what, name="dout")
    check_unmodified(cache, got.args[1], what=what, name="cache")


def single_row_nan_hint(submission, Z, gamma, beta):
    """The cause of a non-finite out on one row (zero variance): eps left out gives NaN on any constant
    column, the unbiased variance (divided by N - 1 = 0) only on one row; told apart on two equal rows."""
    try:
        out = submission.batchnorm_forward(np.repeat(Z, 2, axis=0), gamma, beta)[0]
        finite = bool(np.all(np.isfinite(out)))
    except Exception:  # noqa: BLE001 - the probe failed: nothing recognised
        return "with one row, var is 0: divide by np.sqrt(var + eps)"
    return cause("bn_forward_unbiased_variance") if finite else cause("bn_eps_ignored")


@pytest.mark.points(1)
def test_batchnorm_single_row(submission, reference, rng):
    """For a batch of one row (zero variance), do batchnorm_forward and batchnorm_backward match the reference
    (out = beta, dZ = 0)?"""
    Z, gamma, beta = secret_batch(rng, 1)
    got, what, out, cache = forward_call(submission, Z, gamma, beta)
    hint = first_match(out, {cause("bn_gamma_beta_swapped"): np.broadcast_to(gamma, Z.shape)},
                       "with one row, x_hat is 0 and out is beta")
    if isinstance(out, np.ndarray) and not np.all(np.isfinite(out)):
        hint = single_row_nan_hint(submission, Z, gamma, beta)
    check_close(out, reference.batchnorm.batchnorm_forward(Z, gamma, beta)[0], what=what + ": out", reveal=False,
                hint=hint)
    dout = rng.normal(size=Z.shape)
    got = submission.call("batchnorm_backward", dout, cache)
    what = describe_call("batchnorm_backward(dout, cache)", dout=dout)
    expected = reference.batchnorm.batchnorm_backward(dout, reference.batchnorm.batchnorm_forward(Z, gamma, beta)[1])
    grads = check_tuple(got.value, ("dZ", "dgamma", "dbeta"), what=what)
    mistakes = backward_mistakes(dout, Z, gamma)
    for i, (name, value, exp) in enumerate(zip(("dZ", "dgamma", "dbeta"), grads, expected)):
        # with one row several mistakes give the same value: name a cause only when one mistake alone explains it
        found = {c.id: c for c, m in mistakes.items() if not np.allclose(m[i], exp, atol=1e-8)
                 and first_match(value, [(c, m[i])])}
        hint = next(iter(found.values())) if len(found) == 1 else \
            "with one row, x_hat is 0: dZ is 0, dgamma is 0 and dbeta is dout"
        check_close(value, exp, what=f"{what}: {name}", reveal=False, atol=1e-8, hint=hint)


def eval_mistakes(Z, gamma, beta, mean, var, eps):
    with np.errstate(all="ignore"):
        return [(cause("bn_eval_uses_batch_statistics"), gamma * (Z - Z.mean(axis=0)) / np.sqrt(Z.var(axis=0) + eps)
                 + beta),
                (cause("bn_eval_variance_as_std"), gamma * (Z - mean) / (var + eps) + beta),
                (cause("bn_eps_outside_sqrt"), gamma * (Z - mean) / (np.sqrt(var) + eps) + beta),
                (cause("bn_eps_ignored"), gamma * (Z - mean) / np.sqrt(var + 1e-5) + beta),
                (cause("bn_gamma_beta_swapped"), beta * (Z - mean) / np.sqrt(var + eps) + gamma)]


@pytest.mark.points(1)
@pytest.mark.parametrize("rows", ["batch", "single"])
def test_batchnorm_eval_matches_reference(submission, reference, rng, rows):
    """Does batchnorm_eval match the reference for secret statistics and eps, on a batch and on a single row?"""
    Z, gamma, beta = secret_batch(rng, 1 if rows == "single" else None)
    H = Z.shape[1]
    mean, var, eps = rng.normal(size=H), rng.uniform(0.1, 5.0, size=H), float(rng.uniform(1e-4, 0.5))
    got = submission.call("batchnorm_eval", Z, gamma, beta, mean, var, eps)
    what = describe_call("batchnorm_eval(Z, gamma, beta, mean, var, eps)", Z=Z, gamma=gamma, beta=beta)
    expected = reference.batchnorm.batchnorm_eval(Z, gamma, beta, mean, var, eps)
    hint = first_match(got.value, eval_mistakes(Z, gamma, beta, mean, var, eps),
                       "gamma * (Z - mean) / sqrt(var + eps) + beta, with the statistics given")
    if isinstance(got.value, np.ndarray) and not np.all(np.isfinite(got.value)):
        hint = cause("bn_eval_uses_batch_statistics")
    check_close(got.value, expected, what=what, reveal=False, hint=hint)
    for name, before, after in zip(("Z", "gamma", "beta", "mean", "var"), (Z, gamma, beta, mean, var), got.args):
        check_unmodified(before, after, what=what, name=name)


@pytest.mark.points(1)
@pytest.mark.parametrize("momentum", ["default", "secret"])
def test_running_stats_matches_reference(submission, reference, rng, momentum):
    """Does running_stats match the reference on secret statistics and batches, with the default or a secret
    momentum, leaving its inputs alone?"""
    Z, _, _ = secret_batch(rng)
    H = Z.shape[1]
    mean, var = rng.normal(size=H), rng.uniform(0.1, 5.0, size=H)
    m = 0.9 if momentum == "default" else float(rng.uniform(0.05, 0.95))
    extra = () if momentum == "default" else (m,)
    got = submission.call("running_stats", mean, var, Z, *extra)
    what = describe_call("running_stats(mean, var, Z" + (", momentum)" if extra else ")"), mean=mean, var=var, Z=Z)
    expected = reference.batchnorm.running_stats(mean, var, Z, *extra)
    new_mean, new_var = check_tuple(got.value, ("new_mean", "new_var"), what=what)
    check_close(new_mean, expected[0], what=what + ": new_mean", reveal=False,
                hint=first_match(new_mean, {cause("bn_momentum_reversed"): (1 - m) * mean + m * Z.mean(axis=0)},
                                 "momentum * mean + (1 - momentum) * Z.mean(axis=0)"))
    check_close(new_var, expected[1], what=what + ": new_var", reveal=False,
                hint=first_match(new_var, {cause("bn_running_variance_biased"): m * var + (1 - m) * Z.var(axis=0),
                                           cause("bn_momentum_reversed"): (1 - m) * var + m * Z.var(axis=0, ddof=1)},
                                 "momentum * var + (1 - momentum) * Z.var(axis=0, ddof=1)"))
    for name, before, after in zip(("mean", "var", "Z"), (mean, var, Z), got.args):
        check_unmodified(before, after, what=what, name=name)


@pytest.mark.points(1)
def test_running_stats_over_batches(submission, reference, rng):
    """Starting from mean 0 and var 1, do five updates with secret batches (each from the previous result) end
    where the reference's do?"""
    H = int(rng.integers(2, 8))
    mean, var = np.zeros(H), np.ones(H)
    expected = (mean, var)
    for k in range(5):
        Z, _, _ = secret_batch(rng, int(rng.integers(2, 20)), H)
        got = submission.call("running_stats", mean, var, Z)
        what = describe_call(f"running_stats(mean, var, Z) at update {k + 1} of 5", Z=Z)
        previous = mean, var  # the mistakes below, from the student's previous values (right until now)
        mean, var = check_tuple(got.value, ("new_mean", "new_var"), what=what)
        expected = reference.batchnorm.running_stats(*expected, Z)
        check_close(mean, expected[0], what=what + ": new_mean", reveal=False, hint=first_match(
            mean, {cause("bn_momentum_reversed"): 0.1 * previous[0] + 0.9 * Z.mean(axis=0)},
            "0.9 * mean + 0.1 * Z.mean(axis=0)"))
        check_close(var, expected[1], what=what + ": new_var", reveal=False, hint=first_match(
            var, {cause("bn_running_variance_biased"): 0.9 * previous[1] + 0.1 * Z.var(axis=0),
                  cause("bn_momentum_reversed"): 0.1 * previous[1] + 0.9 * Z.var(axis=0, ddof=1)},
            "0.9 * var + 0.1 * Z.var(axis=0, ddof=1)"))
