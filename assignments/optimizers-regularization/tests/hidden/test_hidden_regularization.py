"""Hidden tests of regularization.py: every function against the reference on
secret shapes, strengths, dropout probabilities and seeds (values and the rng
state afterwards), and backward_dropout against centered finite differences
of the reference's loss with the masks held fixed."""
import numpy as np
import pytest

from nnkit.course.causes import cause
from nnkit.grading.proxy import NotImplementedYet, StudentError
from nnkit.testing.checks import (
    check_close, check_keys, check_scalar, check_tuple, check_unmodified, describe_call, fail, first_match,
    numerical_gradients, relative_error,
)
from nnkit.testing.gradient_checks import GRAD_TOL, check_gradients
from nnkit.testing.inputs import random_params

pytestmark = pytest.mark.part("regularization")

EPS = 1e-6
"""Step of the centered finite differences."""
KINK = 1e-3
"""Smallest |pre-activation| allowed in relu networks, so no difference step crosses the kink at 0."""


def random_sizes(rng, layers, low=3, high=8):
    """layer_sizes [D, H..., C], neighbours of different sizes."""
    sizes = [int(rng.integers(low, high))]
    for _ in range(layers):
        sizes.append(int(rng.integers(low, high)))
        if sizes[-1] == sizes[-2]:
            sizes[-1] += 1
    return sizes


def state_after(seed, *shapes):
    rng = np.random.default_rng(seed)
    for shape in shapes:
        rng.random(shape)
    return rng.bit_generator.state


def secret_network(rng, reference, sizes, N, activation, p_drop):
    """Secret params, X, one-hot Y, a seed and the reference's forward_dropout (probs, cache) for it;
    relu networks are redrawn until no hidden pre-activation lies within KINK of 0."""
    reg = reference.regularization
    for _ in range(200):
        params = random_params(rng, sizes, scale=1.5, bias_scale=0.5)
        X = rng.normal(size=(N, sizes[0]))
        Y = np.eye(sizes[-1])[rng.integers(0, sizes[-1], size=N)]
        seed = int(rng.integers(2**31))
        probs, cache = reg.forward_dropout(params, X, activation, p_drop, np.random.default_rng(seed))
        hidden = [cache[f"Z{l}"] for l in range(1, len(sizes) - 1)]
        if activation != "relu" or all(np.min(np.abs(Z)) > KINK for Z in hidden):
            break
    return params, X, Y, seed, probs, cache


@pytest.mark.points(1)
def test_l2_penalty_matches_reference(submission, reference, rng):
    """Does l2_penalty match the reference on secret networks of 1 to 3 layers and secret strengths?"""
    for layers in (1, 2, 3):
        params = random_params(rng, random_sizes(rng, layers), scale=2.0, bias_scale=1.0)
        lam = float(rng.uniform(1e-3, 1.0))
        got = submission.call("l2_penalty", params, lam)
        what = describe_call("l2_penalty(params, lam)", params=params)
        expected = reference.regularization.l2_penalty(params, lam)
        with_biases = 0.5 * lam * sum(float(np.sum(v ** 2)) for v in params.values())
        value = float(got.value) if isinstance(got.value, (float, np.floating)) else None
        hint = (cause("l2_on_biases") if value is not None and np.isclose(value, with_biases) else
                cause("l2_missing_half") if value is not None and np.isclose(value, 2 * expected) else
                "0.5 * lam * the sum over the layers of sum(W_l ** 2), a Python float")
        check_scalar(got.value, expected, what=what, rtol=1e-10, reveal=False, hint=hint)
        check_unmodified(params, got.args[0], what=what, name="params")


@pytest.mark.points(1)
def test_l2_grads_matches_reference(submission, reference, rng):
    """Does l2_grads match the reference on a secret network and strength, leaving its inputs alone?"""
    params = random_params(rng, random_sizes(rng, 3), scale=2.0, bias_scale=1.0)
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
    lam = float(rng.uniform(1e-3, 1.0))
    got = submission.call("l2_grads", params, grads, lam)
    what = describe_call("l2_grads(params, grads, lam)", params=params, grads=grads)
    expected = reference.regularization.l2_grads(params, grads, lam)
    new = check_keys(got.value, list(expected), what=what)
    for key in expected:
        mistakes = [(cause("l2_on_biases"), grads[key] + lam * params[key])] if key.startswith("b") else \
            [(cause("l2_grad_factor"), grads[key] + f * lam * params[key]) for f in (2.0, 0.5)] + \
            [(cause("l2_grads_replaced"), lam * params[key])]
        check_close(new[key], expected[key], what=f"{what}: result[{key!r}]", reveal=False,
                    hint=first_match(new[key], mistakes, "grads[W] + lam * params[W]; biases unchanged"))
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(grads, got.args[1], what=what, name="grads")


@pytest.mark.points(1)
def test_dropout_forward_matches_reference(submission, reference, rng):
    """Do out, mask and the rng afterwards match the reference for secret shapes, probabilities and seeds?"""
    for _ in range(3):
        A = rng.normal(size=(int(rng.integers(1, 20)), int(rng.integers(1, 20))))
        p_drop, seed = float(rng.uniform(0.05, 0.95)), int(rng.integers(2**31))
        got = submission.call("dropout_forward", A, p_drop, seed)
        what = describe_call(f"dropout_forward(A, p_drop={p_drop:.3f}, rng)", A=A)
        ref_rng = np.random.default_rng(seed)
        expected = reference.regularization.dropout_forward(A, p_drop, ref_rng)
        out, mask = check_tuple(got.value, ("out", "mask"), what=what)
        r = np.random.default_rng(seed).random(A.shape)
        keep = (r >= p_drop).astype(np.float64)
        hint = first_match(mask, [(cause("dropout_mask_not_scaled"), keep),
                                  (cause("dropout_scaled_by_keep_probability"), keep * (1 - p_drop)),
                                  (cause("dropout_keep_drop_swapped"), (r < p_drop) / (1 - p_drop)),
                                  (cause("dropout_keep_drop_swapped"), (r < 1 - p_drop) / (1 - p_drop)),
                                  (cause("dropout_keep_drop_swapped"), (r < p_drop) / p_drop)],
                           cause("dropout_rng_misused") if got.rng_state != ref_rng.bit_generator.state else
                           "mask = (rng.random(A.shape) >= p_drop) / (1 - p_drop)")
        check_close(mask, expected[1], what=what + ": mask", reveal=False, hint=hint)
        check_close(out, expected[0], what=what + ": out", reveal=False, hint="out = A * mask")
        if got.rng_state != ref_rng.bit_generator.state:
            fail(what, "the rng to be called exactly once, rng.random(A.shape)", "a different rng state",
                 cause("dropout_rng_misused"))
        check_unmodified(A, got.args[0], what=what, name="A")


@pytest.mark.points(1)
def test_dropout_forward_p_zero_and_invalid_p(submission, rng):
    """Does p_drop == 0 leave A and the rng alone on a secret input, and do secret invalid p_drop
    (1, above 1, below 0) raise ValueError?"""
    A, seed = rng.normal(size=(int(rng.integers(1, 9)), int(rng.integers(1, 9)))), int(rng.integers(2**31))
    got = submission.call("dropout_forward", A, 0.0, seed)
    what = describe_call("dropout_forward(A, p_drop=0.0, rng)", A=A)
    out, mask = check_tuple(got.value, ("out", "mask"), what=what)
    check_close(out, A, what=what + ": out", rtol=0, atol=0, reveal=False)
    check_close(mask, np.ones(A.shape), what=what + ": mask", rtol=0, atol=0, reveal=False)
    if got.rng_state != np.random.default_rng(seed).bit_generator.state:
        fail(what, "the rng left untouched", "numbers drawn from it", cause("dropout_p_zero_uses_rng"))
    for p_drop in (1.0, float(rng.uniform(1.0, 3.0)), -float(rng.uniform(0.01, 1.0))):
        what = describe_call(f"dropout_forward(A, p_drop={p_drop:.3f}, rng)", A=A)
        try:
            submission.call("dropout_forward", A, p_drop, seed)
        except NotImplementedYet:
            raise
        except StudentError as exc:
            if exc.exc_type != "ValueError":
                fail(what, "ValueError", f"{exc.exc_type}: {exc.message}", cause("dropout_p_not_checked"))
            continue
        fail(what, "ValueError", "a result", cause("dropout_p_not_checked"))


@pytest.mark.points(1)
def test_dropout_backward_matches_reference(submission, reference, rng):
    """Does dropout_backward match the reference for a secret mask?"""
    shape = (int(rng.integers(1, 15)), int(rng.integers(1, 15)))
    p_drop = float(rng.uniform(0.1, 0.9))
    dout, mask = rng.normal(size=shape), (rng.random(shape) >= p_drop) / (1 - p_drop)
    got = submission.call("dropout_backward", dout, mask)
    what = describe_call("dropout_backward(dout, mask)", dout=dout, mask=mask)
    hint = first_match(got.value, {cause("dropout_backward_ignores_mask"): dout,
                                   cause("dropout_backward_mask_unscaled"): dout * (mask > 0)}, "dout * mask")
    check_close(got.value, reference.regularization.dropout_backward(dout, mask), what=what, reveal=False, hint=hint)
    check_unmodified(dout, got.args[0], what=what, name="dout")
    check_unmodified(mask, got.args[1], what=what, name="mask")


@pytest.mark.points(1)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_forward_dropout_matches_reference(submission, reference, rng, activation):
    """Do probs, every cache entry and the rng afterwards match the reference on a secret network,
    probability and seed?"""
    sizes, N = random_sizes(rng, int(rng.integers(2, 4))), int(rng.integers(2, 12))
    p_drop = float(rng.uniform(0.1, 0.8))
    params, X, Y, seed, probs_ref, cache_ref = secret_network(rng, reference, sizes, N, activation, p_drop)
    got = submission.call("forward_dropout", params, X, activation, p_drop, seed)
    what = describe_call(f"forward_dropout(params, X, {activation!r}, p_drop, rng)", params=params, X=X)
    probs, cache = check_tuple(got.value, ("probs", "cache"), what=what)
    check_keys(cache, list(cache_ref), what=what + ": cache",
               hint="A0, Z{l} and A{l} for every layer, M{l} for every hidden layer")
    L = len(sizes) - 1
    g = reference.forward.hidden_activation(activation)
    for key in ["A0"] + [f"{k}{l}" for l in range(1, L + 1) for k in ("MZA" if l < L else "ZA")]:
        l = int(key[1:])
        mistakes = {}
        if key[0] == "A" and 0 < l < L:
            mistakes = {cause("cache_A_before_mask"): g(cache_ref[f"Z{l}"]),
                        cause("dropout_before_activation"): g(cache_ref[f"Z{l}"] * cache_ref[f"M{l}"])}
        elif key[0] == "Z" and l < L:
            mistakes = {cause("dropout_before_activation"): cache_ref[key] * cache_ref[f"M{l}"]}
        elif key == "M1":
            r = np.random.default_rng(seed).random((N, sizes[1]))
            after_X = np.random.default_rng(seed)
            after_X.random((N, sizes[0]))  # a mask drawn for the input X first
            mistakes = {cause("dropout_mask_not_scaled"): (r >= p_drop).astype(np.float64),
                        cause("dropout_scaled_by_keep_probability"): (r >= p_drop) * (1 - p_drop),
                        cause("dropout_keep_drop_swapped"): (r < 1 - p_drop) / (1 - p_drop),
                        cause("dropout_on_input"): (after_X.random((N, sizes[1])) >= p_drop) / (1 - p_drop)}
        hint = first_match(cache[key], mistakes, {"A": "A{l} = g(Z{l}) * M{l} in a hidden layer, softmax(Z_L) "
                                                       "at the output", "Z": "Z{l} = A{l-1} @ W{l} + b{l}",
                                                  "M": "the mask of dropout_forward, layer 1 drawn first"}[key[0]])
        if key == "A0":
            hint = cause("dropout_on_input")
        elif key == f"A{L}" and isinstance(cache[key], np.ndarray) and cache[key].shape == probs_ref.shape \
                and not np.allclose(cache[key].sum(axis=1), 1.0):
            hint = cause("dropout_on_output_layer")
        check_close(cache[key], cache_ref[key], what=f'{what}: cache["{key}"]', reveal=False, hint=hint)
    check_close(probs, probs_ref, what=what + ": probs", reveal=False, hint='probs is cache["A{L}"]')
    expected_state = state_after(seed, *[(N, n) for n in sizes[1:-1]])
    if got.rng_state != expected_state:
        hint = (cause("dropout_on_output_layer") if got.rng_state == state_after(seed, *[(N, n) for n in sizes[1:]])
                else cause("dropout_on_input") if got.rng_state == state_after(seed, *[(N, n) for n in sizes[:-1]])
                else "one dropout_forward call per hidden layer, in the order 1, ..., L-1, and nothing else")
        fail(what, f"the rng to be called once per hidden layer ({L - 1} rng.random calls)", "a different rng state",
             hint)
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(X, got.args[1], what=what, name="X")


@pytest.mark.points(1)
def test_forward_dropout_p_zero_is_forward(submission, reference, rng):
    """With p_drop == 0, are probs those of Assignment 1's reference forward on a secret network, the rng untouched?"""
    sizes, N = random_sizes(rng, 3), int(rng.integers(2, 12))
    params, X = random_params(rng, sizes, scale=1.5, bias_scale=0.5), rng.normal(size=(N, sizes[0]))
    seed = int(rng.integers(2**31))
    got = submission.call("forward_dropout", params, X, "sigmoid", 0.0, seed)
    what = describe_call("forward_dropout(params, X, 'sigmoid', p_drop=0.0, rng)", params=params, X=X)
    probs, cache = check_tuple(got.value, ("probs", "cache"), what=what)
    expected, expected_cache = reference.forward.forward(params, X, "sigmoid")
    check_close(probs, expected, what=what + ": probs", reveal=False)
    for l in range(1, len(sizes) - 1):
        check_close(check_keys(cache, [f"A{l}"], what=what + ": cache")[f"A{l}"], expected_cache[f"A{l}"],
                    what=f'{what}: cache["A{l}"]', reveal=False)
    if got.rng_state != np.random.default_rng(seed).bit_generator.state:
        fail(what, "the rng left untouched", "numbers drawn from it", cause("dropout_p_zero_uses_rng"))


def mistaken_gradients(reference, params, cache, Y, activation):
    """Gradients common backward_dropout mistakes give, keyed by cause: the reference's backward_dropout
    run on a cache doctored so that it makes the mistake."""
    L = sum(1 for key in params if key.startswith("W"))
    backward = reference.regularization.backward_dropout
    ones, unscaled, wrong_layer = dict(cache), dict(cache), dict(cache)
    for l in range(1, L):
        ones[f"M{l}"] = np.ones_like(cache[f"M{l}"])
        unscaled[f"M{l}"] = (cache[f"M{l}"] > 0).astype(np.float64)
    mistakes = [(cause("dropout_backward_ignores_mask"), backward(params, ones, Y, activation)),
                (cause("dropout_backward_mask_unscaled"), backward(params, unscaled, Y, activation))]
    if L > 2 and all(cache[f"M{l}"].shape == cache["M1"].shape for l in range(1, L)):
        for l in range(1, L):
            wrong_layer[f"M{l}"] = cache[f"M{l + 1}"] if l + 1 < L else cache[f"M{l - 1}"]
        mistakes.append((cause("backward_dropout_mask_wrong_layer"), backward(params, wrong_layer, Y, activation)))
    return mistakes


def agree(grads, expected):
    return isinstance(grads, dict) and all(
        isinstance(grads.get(k), np.ndarray) and grads[k].shape == v.shape and relative_error(grads[k], v) <= GRAD_TOL
        for k, v in expected.items())


def check_backward_dropout(submission, reference, got, params, cache, Y, activation, expected, what, N, against):
    rerun = lambda changed, name: submission.backward_dropout(params, changed, Y, name)  # noqa: E731
    mistakes = [] if agree(got.value, expected) else mistaken_gradients(reference, params, cache, Y, activation)
    check_gradients(got.value, params, expected, what, N, against=against, mistakes=mistakes,
                    cache=cache, activation=activation, rerun=rerun)


@pytest.mark.points(1)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backward_dropout_matches_finite_differences(submission, reference, rng, activation):
    """Does backward_dropout agree with centered finite differences of the reference loss, masks fixed,
    on a secret network of 2 or 3 layers?"""
    sizes, N, p_drop = random_sizes(rng, int(rng.integers(2, 4))), int(rng.integers(3, 7)), float(rng.uniform(0.2, 0.7))
    params, X, Y, seed, _, cache = secret_network(rng, reference, sizes, N, activation, p_drop)
    got = submission.call("backward_dropout", params, cache, Y, activation)
    what = describe_call(f"backward_dropout(params, cache, Y, {activation!r})", params=params, Y=Y)
    fw, reg = reference.forward, reference.regularization

    def loss(p):  # the same seed draws the same masks: they do not depend on the parameters
        return fw.cross_entropy(reg.forward_dropout(p, X, activation, p_drop, np.random.default_rng(seed))[0], Y)

    numeric = numerical_gradients(loss, params, EPS)
    check_backward_dropout(submission, reference, got, params, cache, Y, activation, numeric, what, N,
                           f"centered finite differences of the loss with the masks fixed (eps={EPS:g})")


@pytest.mark.points(1)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backward_dropout_matches_reference(submission, reference, rng, activation):
    """Does backward_dropout match the reference's gradients on a larger secret 3-layer network whose
    hidden layers have one width (where a mask of the wrong layer gives wrong values, not an error)?"""
    N, H = int(rng.integers(8, 20)), int(rng.integers(5, 10))
    sizes = [int(rng.integers(4, 12)), H, H, int(rng.integers(3, 6))]
    params, X, Y, seed, _, cache = secret_network(rng, reference, sizes, N, activation, float(rng.uniform(0.2, 0.7)))
    got = submission.call("backward_dropout", params, cache, Y, activation)
    what = describe_call(f"backward_dropout(params, cache, Y, {activation!r})", params=params, Y=Y)
    expected = reference.regularization.backward_dropout(params, cache, Y, activation)
    check_backward_dropout(submission, reference, got, params, cache, Y, activation, expected, what, N,
                           "the reference's gradients")


@pytest.mark.points(1)
def test_backward_dropout_inputs_unmodified(submission, reference, rng):
    """Does backward_dropout leave params, cache and Y exactly as they were?"""
    sizes = random_sizes(rng, 3)
    params, X, Y, seed, _, cache = secret_network(rng, reference, sizes, int(rng.integers(3, 9)), "tanh", 0.4)
    got = submission.call("backward_dropout", params, cache, Y, "tanh")
    what = describe_call("backward_dropout(params, cache, Y, 'tanh')", params=params, Y=Y)
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(cache, got.args[1], what=what, name="cache")
    check_unmodified(Y, got.args[2], what=what, name="Y")
