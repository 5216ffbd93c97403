"""Hidden tests of forward.py: every output and cache entry against the
reference on secret networks (1, 2 and 3 layers, every activation), secret
seeds for init_params, and secret probabilities for the loss."""
import numpy as np
import pytest

from nnkit.testing.inputs import random_params
from nnkit.course.causes import cause
from nnkit.testing.checks import (
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
    random_biases = any(isinstance(got.value[k], np.ndarray) and np.any(got.value[k] != 0.0)
                        for k in expected if k.startswith("b"))
    L = len(sizes) - 1
    reverse_rng = np.random.default_rng(seed)  # the draws of a loop from layer L down to layer 1
    reversed_weights = {f"W{l}": reverse_rng.standard_normal((sizes[l - 1], sizes[l])) * np.sqrt(2.0 / sizes[l - 1])
                        for l in range(L, 0, -1)}
    for key in expected:
        value = got.value[key]
        factor = scale_factor(value, expected[key]) if key.startswith("W") else None
        if isinstance(value, np.ndarray) and value.shape == expected[key].shape[::-1] != expected[key].shape:
            hint = cause("weight_shape_transposed")
        elif random_biases:
            hint = cause("init_random_biases")
        elif key.startswith("b"):
            hint = "biases start at zero, np.zeros(n_l); only the weights are random"
        elif factor is not None and not np.isclose(factor, 1.0):
            hint = cause("init_wrong_scale")
        else:
            hint = first_match(value, {cause("init_draw_order"): reversed_weights[key]},
                               "draw one rng.standard_normal((n_{l-1}, n_l)) per layer, in the order W1, W2, ..., "
                               "with no other draws from the rng")
        check_close(value, expected[key], what=f"{what}: {key}", rtol=1e-12, atol=0, reveal=False, hint=hint)
    if got.rng_state != expected_rng.bit_generator.state:
        fail(what, "the rng to be left where drawing W1, ..., WL leaves it", "a different rng state",
             cause("init_random_biases") if random_biases else "one standard_normal call per layer and nothing else")


@pytest.mark.points(1)
def test_linear_forward_matches_reference(submission, reference, rng):
    """Does linear_forward match the reference on secret shapes, including a batch of one?"""
    for N in (int(rng.integers(2, 9)), 1):
        n_in, n_out = int(rng.integers(2, 8)), int(rng.integers(2, 8))
        A_prev, W, b = rng.normal(size=(N, n_in)), rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
        got = submission.call("linear_forward", A_prev, W, b)
        what = describe_call("linear_forward(A_prev, W, b)", A_prev=A_prev, W=W, b=b)
        mistakes = [(cause("bias_missing"), A_prev @ W)]
        if n_in == n_out:
            mistakes.append((cause("linear_forward_transposed_W"), A_prev @ W.T + b))
        hint = first_match(got.value, mistakes, "Z = A_prev @ W + b, with b added to every row")
        check_close(got.value, reference.forward.linear_forward(A_prev, W, b), what=what, reveal=False, hint=hint)
        for name, before, after in zip(("A_prev", "W", "b"), (A_prev, W, b), got.args):
            check_unmodified(before, after, what=what, name=name)


def cache_mistakes(key, ref_cache, params, activation, reference):
    """What common mistakes would store under cache[key], keyed by their hint."""
    act, l = reference.activations, int(key[1:])
    L = sum(1 for k in params if k.startswith("W"))
    if key == "A0":
        return {}
    if key.startswith("Z"):
        return {cause("cache_Z_holds_A"): ref_cache[f"A{l}"],
                cause("bias_missing"): ref_cache[f"A{l - 1}"] @ params[f"W{l}"]}
    Z = ref_cache[f"Z{l}"]
    if l < L:
        return [(cause("activation_not_passed_on"), getattr(act, other)(Z))
                for other in ("relu", "sigmoid", "tanh") if other != activation]
    return {cause("no_softmax_output"): Z,
            cause("output_activation_before_softmax"): act.softmax(getattr(act, activation)(Z))}


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
    check_no_warnings(got.warnings, what=what, hint=cause("forward_unstable_softmax"))
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
    check_no_warnings(got.warnings, what=what, hint=cause("log_of_zero"))
    expected = reference.forward.cross_entropy(probs, Y)
    mistakes = {N: cause("loss_not_mean"), 1 / C: cause("loss_mean_over_entries"), -1.0: cause("loss_sign")}
    value = got.value if isinstance(got.value, float) else None
    hint = next((h for k, h in mistakes.items() if value is not None and np.isclose(value, k * expected)),
                cause("log_of_zero") if value is not None and not np.isfinite(value) else
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
    probs, _ = reference.forward.forward(params, X, "sigmoid")
    shape = getattr(got.value, "shape", None)
    hint = (cause("predict_not_class_ids") if shape == probs.shape else
            cause("argmax_wrong_axis") if shape == (probs.shape[1],) else
            "one class id per row: np.argmax(probs, axis=1)")
    pred = check_array(got.value, what=what, shape=expected.shape, dtype=None, hint=hint)
    if pred.dtype.kind not in "iu":
        hint = first_match(pred, {cause("predict_not_class_ids"): probs.max(axis=1),
                                  cause("class_ids_as_float"): expected},
                           "one integer class id per row")
        fail(what, "an integer array", f"dtype {pred.dtype}", hint)
    wrong = int(np.sum(pred != expected))
    if wrong:
        hint = cause("activation_not_passed_on") if np.array_equal(
            pred, reference.forward.predict(params, X, "relu")) else \
            "np.argmax of forward(params, X, activation)'s probs over axis 1, with the activation passed on"
        fail(what, "the reference's class ids", f"{wrong} of {len(expected)} rows differ", hint)
