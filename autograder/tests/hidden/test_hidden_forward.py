"""Hidden tests of forward.py: every output and cache entry against the
reference on secret networks (1, 2 and 3 layers, every activation), secret
seeds for init_params, and secret probabilities for the loss."""
import numpy as np
import pytest

from nnkit.inputs import random_params
from nnkit.checks import (
    check_array, check_close, check_keys, check_no_warnings, check_scalar, check_unmodified,
    check_tuple, describe_call, fail, first_match, scale_factor,
)

pytestmark = pytest.mark.part("forward")


def random_sizes(rng, layers):
    """layer_sizes [D, H..., C] with layers layers, all sizes distinct from their neighbours."""
    sizes = [int(rng.integers(3, 8))]
    for _ in range(layers):
        sizes.append(int(rng.integers(2, 8)))
        if sizes[-1] == sizes[-2]:
            sizes[-1] += 1
    return sizes


@pytest.mark.points(1)
@pytest.mark.parametrize("layers", [1, 2, 3], ids=["1-layer", "2-layer", "3-layer"])
def test_init_params_matches_reference(submission, reference, rng, layers):
    """Does init_params give the reference's network for a secret seed and secret sizes?"""
    sizes, seed = random_sizes(rng, layers), int(rng.integers(2**31))
    got = submission.call("init_params", sizes, seed)
    what = describe_call("init_params(layer_sizes, rng)", layer_sizes=sizes)
    expected_rng = np.random.default_rng(seed)
    expected = reference.forward.init_params(sizes, expected_rng)
    check_keys(got.value, list(expected), what=what)
    if set(got.value) != set(expected):
        fail(what, f"exactly the keys {sorted(expected)}", f"keys {sorted(got.value)}")
    for key in expected:
        value = got.value[key]
        factor = scale_factor(value, expected[key]) if key.startswith("W") else None
        if isinstance(value, np.ndarray) and value.shape == expected[key].shape[::-1] != expected[key].shape:
            hint = "W_l has shape (n_{l-1}, n_l): one row per input unit, one column per output unit"
        elif key.startswith("b"):
            hint = "biases start at zero, np.zeros(n_l); only the weights are random"
        elif factor is not None and not np.isclose(factor, 1.0):
            hint = (f"the weights are {factor:.4g} times the reference's: scale by the He factor "
                    "sqrt(2 / n_{l-1}), where n_{l-1} is the layer's fan-in")
        else:
            hint = ("draw one rng.standard_normal((n_{l-1}, n_l)) per layer, in the order W1, W2, ..., "
                    "with no other draws from the rng")
        check_close(value, expected[key], what=f"{what}: {key}", rtol=1e-12, atol=0, reveal=False, hint=hint)
    if got.rng_state != expected_rng.bit_generator.state:
        fail(what, "the rng to be left where drawing W1, ..., WL leaves it", "a different rng state",
             "one standard_normal call per layer and nothing else")


@pytest.mark.points(1)
def test_linear_forward_matches_reference(submission, reference, rng):
    """Does linear_forward match the reference on secret shapes, including a batch of one?"""
    for N in (int(rng.integers(2, 9)), 1):
        n_in, n_out = int(rng.integers(2, 8)), int(rng.integers(2, 8))
        A_prev, W, b = rng.normal(size=(N, n_in)), rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
        got = submission.call("linear_forward", A_prev, W, b)
        what = describe_call("linear_forward(A_prev, W, b)", A_prev=A_prev, W=W, b=b)
        check_close(got.value, reference.forward.linear_forward(A_prev, W, b), what=what, reveal=False,
                    hint="Z = A_prev @ W + b, with b added to every row")
        for name, before, after in zip(("A_prev", "W", "b"), (A_prev, W, b), got.args):
            check_unmodified(before, after, what=what, name=name)


def cache_mistakes(key, ref_cache, params, activation, reference):
    """What common mistakes would store under cache[key], keyed by their hint."""
    act, l = reference.activations, int(key[1:])
    L = sum(1 for k in params if k.startswith("W"))
    if key == "A0":
        return {}
    if key.startswith("Z"):
        return {f"Z{l} holds the activation; store the pre-activation A{l - 1} @ W{l} + b{l} there":
                ref_cache[f"A{l}"],
                f"the bias is missing: Z{l} = A{l - 1} @ W{l} + b{l}": ref_cache[f"A{l - 1}"] @ params[f"W{l}"]}
    Z = ref_cache[f"Z{l}"]
    if l < L:
        return {f"hidden layers must use the activation argument ({activation!r}), not {other!r}":
                getattr(act, other)(Z) for other in ("relu", "sigmoid", "tanh") if other != activation}
    return {"the output layer must apply softmax to its scores Z_L": Z,
            "the output layer is softmax(Z_L) alone: do not apply the hidden activation first":
                act.softmax(getattr(act, activation)(Z))}


def _check_forward(got, params, activation, reference, what):
    """Compare forward's (probs, cache) with the reference's on every required entry."""
    probs, cache = check_tuple(got.value, ("probs", "cache"), what=what)
    ref_probs, ref_cache = reference.forward.forward(params, got.args[1], activation)
    check_keys(cache, list(ref_cache), what=what + ": cache")
    for key in ref_cache:
        default = ('cache["A0"] is X' if key == "A0" else
                   "Z_l = A_(l-1) @ W_l + b_l; A_l = g(Z_l) in hidden layers and softmax(Z_L) in the last")
        hint = first_match(cache[key], cache_mistakes(key, ref_cache, params, activation, reference), default)
        check_close(cache[key], ref_cache[key], what=f'{what}: cache["{key}"]', hint=hint, reveal=False)
    check_close(probs, ref_probs, what=what + ": probs", reveal=False,
                hint='probs is the last layer\'s activation, cache["A{L}"]')


@pytest.mark.points(1)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_forward_matches_reference(submission, reference, rng, activation):
    """Do probs and every cache entry match the reference for 1-, 2- and 3-layer secret networks and N == 1?"""
    for layers, N in ((1, int(rng.integers(2, 9))), (2, int(rng.integers(2, 9))),
                      (3, int(rng.integers(2, 9))), (2, 1)):
        sizes = random_sizes(rng, layers)
        params, X = random_params(rng, sizes, scale=1.5, bias_scale=0.5), rng.normal(size=(N, sizes[0]))
        got = submission.call("forward", params, X, activation)
        what = describe_call(f"forward(params, X, {activation!r})", params=params, X=X)
        _check_forward(got, params, activation, reference, what)
        check_unmodified(params, got.args[0], what=what, name="params")
        check_unmodified(X, got.args[1], what=what, name="X")


@pytest.mark.points(1)
def test_forward_large_scores_matches_reference(submission, reference, rng):
    """Does forward stay finite and warning-free, and exact, when the scores are in the thousands?"""
    sizes = random_sizes(rng, 2)
    params = random_params(rng, sizes, scale=1.5, bias_scale=0.5)
    X = rng.normal(size=(int(rng.integers(3, 9)), sizes[0]))
    params["W2"] *= rng.uniform(1e3, 5e3)
    got = submission.call("forward", params, X, "tanh")
    what = describe_call("forward(params, X, 'tanh')", params=params, X=X)
    check_no_warnings(got.warnings, what=what,
                      hint="use the stable softmax of activations.py for the output layer")
    _check_forward(got, params, "tanh", reference, what)


@pytest.mark.points(1)
def test_cross_entropy_matches_reference(submission, reference, rng):
    """Does cross_entropy match the reference on secret batches, with tiny and zero probabilities?"""
    N, C = int(rng.integers(3, 9)), int(rng.integers(2, 6))
    scores = rng.normal(0.0, 4.0, size=(N, C))
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    labels = rng.integers(0, C, size=N)
    probs[0, labels[0]] = 0.0
    probs[1, labels[1]] = 1e-14
    Y = np.zeros((N, C))
    Y[np.arange(N), labels] = 1.0
    got = submission.call("cross_entropy", probs, Y)
    what = describe_call("cross_entropy(probs, Y)", probs=probs, Y=Y)
    check_no_warnings(got.warnings, what=what, hint="clip before the log: np.log(np.maximum(probs, 1e-12))")
    expected = reference.forward.cross_entropy(probs, Y)
    hint = ("missing the 1/N of the mean loss: divide the sum by N = probs.shape[0]"
            if isinstance(got.value, float) and np.isclose(got.value, N * expected) else
            "the mean over the N rows of -sum_c Y * log(max(probs, 1e-12))")
    check_scalar(got.value, expected, what=what, reveal=False, hint=hint)
    check_unmodified(probs, got.args[0], what=what, name="probs")
    check_unmodified(Y, got.args[1], what=what, name="Y")


@pytest.mark.points(1)
def test_predict_matches_reference(submission, reference, rng):
    """Does predict match the reference's class ids on a secret 3-layer sigmoid network?"""
    sizes = random_sizes(rng, 3)
    params = random_params(rng, sizes, scale=4.0, bias_scale=0.5)
    X = rng.normal(size=(int(rng.integers(20, 40)), sizes[0]))
    got = submission.call("predict", params, X, "sigmoid")
    what = describe_call("predict(params, X, 'sigmoid')", params=params, X=X)
    expected = reference.forward.predict(params, X, "sigmoid")
    pred = check_array(got.value, what=what, shape=expected.shape, dtype=None,
                       hint="one class id per row: np.argmax(probs, axis=1)")
    if pred.dtype.kind not in "iu":
        fail(what, "an integer array", f"dtype {pred.dtype}", "np.argmax returns ints; do not convert to float")
    wrong = int(np.sum(pred != expected))
    if wrong:
        fail(what, "the reference's class ids", f"{wrong} of {len(expected)} rows differ",
             "np.argmax of forward(params, X, activation)'s probs over axis 1, with the activation passed on")
