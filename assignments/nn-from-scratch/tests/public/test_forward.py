"""Public tests of forward.py: He initialisation from its stated formula,
the cache's layer-by-layer relations, exact small cases of the loss, and
predictions that agree with the forward pass."""
import numpy as np
import pytest

from nnkit.testing.inputs import random_params
from nnkit.course.causes import cause
from nnkit.testing.checks import (
    check_array, check_close, check_keys, check_no_warnings, check_scalar, check_unmodified,
    check_tuple, describe_call, fail, first_match, scale_factor,
)

pytestmark = pytest.mark.part("forward")

ACTIVATIONS = ("relu", "sigmoid", "tanh")


def forward_probs(submission, params, X, activation):
    """probs of forward(params, X, activation), checked enough to compute with."""
    what = describe_call(f"forward(params, X, {activation!r})", params=params, X=X)
    probs, _ = check_tuple(submission.forward(params, X, activation), ("probs", "cache"), what=what)
    return check_array(probs, what=what + ": probs", shape=(X.shape[0], params[f"W{len(params) // 2}"].shape[1]))


def he_weights(layer_sizes, seed, reverse=False):
    """The weights the init_params docstring specifies for this seed, and the rng state after them;
    ``reverse``: the weights a loop from the last layer down to the first would draw instead."""
    rng = np.random.default_rng(seed)
    shapes = list(zip(layer_sizes[:-1], layer_sizes[1:]))
    order = reversed(range(len(shapes))) if reverse else range(len(shapes))
    weights = {i: rng.standard_normal(shapes[i]) * np.sqrt(2.0 / shapes[i][0]) for i in order}
    return [weights[i] for i in range(len(shapes))], rng.bit_generator.state


def shape_hint(value, shape):
    """The cause of a weight matrix of the wrong shape, when it is the transpose of the right one."""
    if isinstance(value, np.ndarray) and value.shape == tuple(shape)[::-1] != tuple(shape):
        return cause("weight_shape_transposed")
    return "W_l has shape (n_{l-1}, n_l): one row per input unit, one column per output unit"


def random_biases(params):
    """Whether init_params' result holds a non-zero bias (a draw from the rng)."""
    return any(isinstance(v, np.ndarray) and np.any(v != 0.0) for k, v in params.items() if k.startswith("b"))


@pytest.mark.points(1)
@pytest.mark.parametrize("layer_sizes", [[4, 3], [4, 5, 3], [6, 5, 4, 3]], ids=["1-layer", "2-layer", "3-layer"])
def test_init_params_structure(submission, layer_sizes):
    """Does init_params return W1, b1, ..., WL, bL with the contract's shapes, float64 and zero biases?"""
    params = submission.init_params(layer_sizes, 0)
    what = describe_call("init_params(layer_sizes, rng)", layer_sizes=layer_sizes)
    L = len(layer_sizes) - 1
    keys = [f"{k}{l}" for l in range(1, L + 1) for k in "Wb"]
    check_keys(params, keys, what=what, hint="one 'W{l}' and one 'b{l}' per layer, l = 1..L")
    if set(params) != set(keys):
        fail(what, f"exactly the keys {sorted(keys)}", f"keys {sorted(params)}",
             "a network with layer_sizes of length L + 1 has L layers")
    for l in range(1, L + 1):
        n_in, n_out = layer_sizes[l - 1], layer_sizes[l]
        check_array(params[f"W{l}"], what=f"{what}: W{l}", shape=(n_in, n_out),
                    hint=shape_hint(params[f"W{l}"], (n_in, n_out)))
        b = check_array(params[f"b{l}"], what=f"{what}: b{l}", shape=(n_out,),
                        hint="b_l is a vector of shape (n_l,), e.g. np.zeros(n_l)")
        if np.any(b != 0.0):
            fail(f"{what}: b{l}", "zeros", "non-zero entries", cause("init_random_biases"))


@pytest.mark.points(1)
def test_init_params_he_formula(submission):
    """Are the weights exactly rng.standard_normal((n_{l-1}, n_l)) * sqrt(2 / n_{l-1}), drawn W1 first?"""
    layer_sizes, seed = [5, 4, 3, 2], 7
    got = submission.call("init_params", layer_sizes, seed)
    what = describe_call("init_params(layer_sizes, np.random.default_rng(7))", layer_sizes=layer_sizes)
    weights, state = he_weights(layer_sizes, seed)
    reversed_weights, _ = he_weights(layer_sizes, seed, reverse=True)
    check_keys(got.value, [f"W{l}" for l in range(1, 4)], what=what)
    for l, expected in enumerate(weights, start=1):
        value = got.value[f"W{l}"]
        check_array(value, what=f"{what}: W{l}", shape=expected.shape, hint=shape_hint(value, expected.shape))
        factor = scale_factor(value, expected)
        if factor is not None and not np.isclose(factor, 1.0):
            hint = cause("init_wrong_scale")
        elif random_biases(got.value):
            hint = cause("init_random_biases")
        else:
            hint = first_match(value, {cause("init_draw_order"): reversed_weights[l - 1]},
                               "draw one rng.standard_normal((n_{l-1}, n_l)) per layer, in the order W1, W2, ..., "
                               "with no other draws from the rng (biases are zeros, not random)")
        check_close(value, expected, what=f"{what}: W{l}", rtol=1e-12, atol=0, hint=hint)
    if got.rng_state != state:
        fail(what, "the rng to be left where drawing W1, ..., WL leaves it",
             "a different rng state (more or fewer numbers were drawn)",
             cause("init_random_biases") if random_biases(got.value) else
             "one standard_normal call per layer and nothing else: no np.random.* functions")


@pytest.mark.points(1)
def test_linear_forward(submission, rng):
    """Is linear_forward A_prev @ W + b, with b broadcast over the rows, for a square W, a batch
    and a batch of one?"""
    for N, n_in, n_out in ((4, 3, 3), (4, 3, 2), (1, 3, 2)):
        A_prev, W, b = rng.normal(size=(N, n_in)), rng.normal(size=(n_in, n_out)), rng.normal(size=n_out)
        got = submission.call("linear_forward", A_prev, W, b)
        what = describe_call("linear_forward(A_prev, W, b)", A_prev=A_prev, W=W, b=b)
        mistakes = [(cause("bias_missing"), A_prev @ W)]
        if n_in == n_out:  # a square W lets W.T through, with wrong values
            mistakes.append((cause("linear_forward_transposed_W"), A_prev @ W.T + b))
        hint = first_match(got.value, mistakes, "Z = A_prev @ W + b, shape (N, n_l)")
        check_close(got.value, A_prev @ W + b, what=what, hint=hint)
        for name, before, after in zip(("A_prev", "W", "b"), (A_prev, W, b), got.args):
            check_unmodified(before, after, what=what, name=name)


@pytest.mark.points(1)
def test_forward_softmax_regression_small_case(submission):
    """With one layer, W = 0 and b = log([1, 2, 3]), is every row of probs [1/6, 2/6, 3/6]?"""
    params = {"W1": np.zeros((4, 3)), "b1": np.log([1.0, 2.0, 3.0])}
    X = np.arange(8.0).reshape(2, 4)
    got = submission.call("forward", params, X, "relu")
    what = describe_call("forward(params, X)", params=params, X=X)
    probs, _ = check_tuple(got.value, ("probs", "cache"), what=what)
    hint = first_match(probs, {cause("no_softmax_output"): np.tile(params["b1"], (2, 1)),
                               cause("bias_missing"): np.full((2, 3), 1 / 3)},
                       "the output layer is softmax(A_{L-1} @ W_L + b_L); a one-layer network has no hidden layer")
    check_close(probs, np.tile([1 / 6, 2 / 6, 3 / 6], (2, 1)), what=what + ": probs", hint=hint)


@pytest.mark.points(1)
@pytest.mark.parametrize("activation,layer_sizes", [
    ("relu", [4, 5, 3]), ("sigmoid", [4, 5, 3]), ("tanh", [4, 6, 5, 3]), ("relu", [5, 3]),
], ids=["relu-2-layer", "sigmoid-2-layer", "tanh-3-layer", "1-layer"])
def test_forward_cache(submission, rng, activation, layer_sizes):
    """Does the cache hold A0 = X, Z_l = A_{l-1} @ W_l + b_l, A_l = g(Z_l) and A_L = probs = softmax(Z_L)?"""
    params, X = random_params(rng, layer_sizes, scale=2.0, bias_scale=0.5), rng.normal(size=(6, layer_sizes[0]))
    got = submission.call("forward", params, X, activation)
    what = describe_call(f"forward(params, X, {activation!r})", params=params, X=X)
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(X, got.args[1], what=what, name="X")
    probs, cache = check_tuple(got.value, ("probs", "cache"), what=what)
    N, L = X.shape[0], len(layer_sizes) - 1
    check_array(probs, what=what + ": probs", shape=(N, layer_sizes[-1]))
    keys = ["A0"] + [f"{k}{l}" for l in range(1, L + 1) for k in "ZA"]
    check_keys(cache, keys, what=what + ": cache", hint="store A0 = X, and Z{l}, A{l} for every layer l = 1..L")
    check_close(cache["A0"], X, what=what + ': cache["A0"]', hint='cache["A0"] is the input X itself')
    for l in range(1, L + 1):
        A_prev, Z, A = cache[f"A{l - 1}"], cache[f"Z{l}"], cache[f"A{l}"]
        shape = (N, layer_sizes[l])
        check_array(Z, what=f'{what}: cache["Z{l}"]', shape=shape)
        check_array(A, what=f'{what}: cache["A{l}"]', shape=shape)
        check_close(Z, A_prev @ params[f"W{l}"] + params[f"b{l}"], what=f'{what}: cache["Z{l}"]',
                    hint=first_match(Z, {cause("cache_Z_holds_A"): A, cause("bias_missing"): A_prev @ params[f"W{l}"]},
                                     f"Z{l} = A{l - 1} @ W{l} + b{l}, computed from the previous layer's A"))
        if l < L:
            candidates = [(cause("activation_not_passed_on"), submission.call(other, Z).value)
                          for other in ACTIVATIONS if other != activation]
            expected = submission.call(activation, Z).value
            check_close(A, expected, what=f'{what}: cache["A{l}"]',
                        hint=first_match(A, candidates, f"A{l} = {activation}(Z{l}) in a hidden layer"))
        else:
            expected = submission.call("softmax", Z).value
            candidates = {cause("output_activation_before_softmax"):
                          submission.call("softmax", submission.call(activation, Z).value).value,
                          cause("no_softmax_output"): Z}
            check_close(A, expected, what=f'{what}: cache["A{L}"]', hint=first_match(A, candidates))
            check_close(probs, A, what=what + ": probs", hint=f'probs is the last activation, cache["A{L}"]')
    check_close(probs.sum(axis=1), np.ones(N), what=what + ": row sums of probs")


@pytest.mark.points(1)
def test_forward_single_example(submission, rng):
    """Does forward work on a batch of one example, X of shape (1, D)?"""
    params, X = random_params(rng, [4, 5, 3], scale=1.0, bias_scale=0.5), rng.normal(size=(1, 4))
    got = submission.call("forward", params, X, "tanh")
    what = describe_call("forward(params, X, 'tanh')", params=params, X=X)
    probs, cache = check_tuple(got.value, ("probs", "cache"), what=what)
    check_array(probs, what=what + ": probs", shape=(1, 3),
                hint="keep the batch axis; avoid squeezing or summing over axis 0")
    check_keys(cache, ["A0", "Z1", "A1", "Z2", "A2"], what=what + ": cache")
    check_array(cache["Z1"], what=what + ': cache["Z1"]', shape=(1, 5))
    check_close(probs.sum(axis=1), np.ones(1), what=what + ": row sums of probs")


@pytest.mark.points(1)
def test_forward_large_scores(submission, rng):
    """Do scores around 1e3 give finite probabilities without warnings?"""
    params, X = random_params(rng, [4, 6, 3], scale=1.0, bias_scale=0.5), rng.normal(size=(5, 4))
    params["W2"] *= 1e3
    got = submission.call("forward", params, X, "tanh")
    what = describe_call("forward(params, X, 'tanh')", params=params, X=X)
    probs, cache = check_tuple(got.value, ("probs", "cache"), what=what)
    scores = cache.get("Z2") if isinstance(cache, dict) else None
    if isinstance(probs, np.ndarray) and isinstance(scores, np.ndarray) and probs.shape == scores.shape \
            and np.array_equal(probs, scores):
        hint = cause("no_softmax_output")
    else:
        hint = cause("forward_unstable_softmax")
    check_no_warnings(got.warnings, what=what, hint=hint)
    probs = check_array(probs, what=what + ": probs", shape=(5, 3), hint=hint)
    check_close(probs.sum(axis=1), np.ones(5), what=what + ": row sums of probs", hint=hint)


@pytest.mark.points(1)
def test_cross_entropy_small_case(submission):
    """Is cross_entropy the mean over rows of -log(probability of the true class), as a float?"""
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    got = submission.call("cross_entropy", probs, Y)
    what = describe_call("cross_entropy(probs, Y)", probs=probs, Y=Y)
    expected = -(np.log(0.5) + np.log(0.8)) / 2
    mistakes = {2.0: cause("loss_not_mean"), 1 / 3: cause("loss_mean_over_entries"), -1.0: cause("loss_sign")}
    hint = next((h for k, h in mistakes.items()
                 if isinstance(got.value, float) and np.isclose(got.value, k * expected)), None)
    check_scalar(got.value, expected, what=what, hint=hint)
    check_unmodified(probs, got.args[0], what=what, name="probs")
    check_unmodified(Y, got.args[1], what=what, name="Y")


@pytest.mark.points(1)
def test_cross_entropy_zero_probability(submission):
    """Does a zero probability on the true class give the clipped value -log(1e-12) / N, without warnings?"""
    probs = np.array([[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]])
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    got = submission.call("cross_entropy", probs, Y)
    what = describe_call("cross_entropy(probs, Y)", probs=probs, Y=Y)
    check_no_warnings(got.warnings, what=what, hint=cause("log_of_zero"))
    expected = -(np.log(1e-12) + np.log(0.5)) / 2
    summed = isinstance(got.value, float) and np.isclose(got.value, 2 * expected)
    check_scalar(got.value, expected, what=what, hint=cause("loss_not_mean") if summed else cause("log_of_zero"))


@pytest.mark.points(1)
def test_predict(submission, rng):
    """Does predict return, as ints of shape (N,), the argmax over classes of forward's probs?"""
    params, X = random_params(rng, [4, 6, 3], scale=3.0, bias_scale=0.5), rng.normal(size=(40, 4))
    got = submission.call("predict", params, X, "tanh")
    what = describe_call("predict(params, X, 'tanh')", params=params, X=X)
    probs = forward_probs(submission, params, X, "tanh")
    shape = getattr(got.value, "shape", None)
    hint = (cause("predict_not_class_ids") if shape == probs.shape else
            cause("argmax_wrong_axis") if shape == (probs.shape[1],) else
            "one class id per row: np.argmax(probs, axis=1)")
    pred = check_array(got.value, what=what, shape=(40,), dtype=None, hint=hint)
    if pred.dtype.kind not in "iu":
        hint = first_match(pred, {cause("predict_not_class_ids"): probs.max(axis=1),
                                  cause("class_ids_as_float"): np.argmax(probs, axis=1)},
                           "one integer class id per row")
        fail(what, "an integer array", f"dtype {pred.dtype}", hint)
    hint = first_match(pred, {cause("activation_not_passed_on"):
                              np.argmax(forward_probs(submission, params, X, "relu"), axis=1)},
                       "the index of the largest probability of each row, np.argmax(probs, axis=1)")
    check_close(pred.astype(np.int64), np.argmax(probs, axis=1).astype(np.int64), what=what,
                rtol=0, atol=0, hint=hint)
    check_unmodified(params, got.args[0], what=what, name="params")
