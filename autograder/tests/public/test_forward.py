"""Public tests of forward.py: He initialisation from its stated formula,
the cache's layer-by-layer relations, exact small cases of the loss, and
predictions that agree with the forward pass."""
import numpy as np
import pytest

from nnkit.inputs import random_params
from nnkit.checks import (
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


def he_weights(layer_sizes, seed):
    """The weights the init_params docstring specifies for this seed, and the rng state after them."""
    rng = np.random.default_rng(seed)
    weights = [rng.standard_normal((n_in, n_out)) * np.sqrt(2.0 / n_in)
               for n_in, n_out in zip(layer_sizes[:-1], layer_sizes[1:])]
    return weights, rng.bit_generator.state


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
                    hint="W_l has shape (n_{l-1}, n_l): one row per input unit, one column per output unit")
        b = check_array(params[f"b{l}"], what=f"{what}: b{l}", shape=(n_out,),
                        hint="b_l is a vector of shape (n_l,), e.g. np.zeros(n_l)")
        if np.any(b != 0.0):
            fail(f"{what}: b{l}", "zeros", "non-zero entries", "biases start at zero; only the weights are random")


@pytest.mark.points(1)
def test_init_params_he_formula(submission):
    """Are the weights exactly rng.standard_normal((n_{l-1}, n_l)) * sqrt(2 / n_{l-1}), drawn W1 first?"""
    layer_sizes, seed = [5, 4, 3, 2], 7
    got = submission.call("init_params", layer_sizes, seed)
    what = describe_call("init_params(layer_sizes, np.random.default_rng(7))", layer_sizes=layer_sizes)
    weights, state = he_weights(layer_sizes, seed)
    check_keys(got.value, [f"W{l}" for l in range(1, 4)], what=what)
    for l, expected in enumerate(weights, start=1):
        check_array(got.value[f"W{l}"], what=f"{what}: W{l}", shape=expected.shape,
                    hint="W_l has shape (n_{l-1}, n_l): one row per input unit, one column per output unit")
        factor = scale_factor(got.value[f"W{l}"], expected)
        if factor is not None and not np.isclose(factor, 1.0):
            hint = (f"the weights are {factor:.4g} times the expected ones: scale by the He factor "
                    "sqrt(2 / n_{l-1}), where n_{l-1} is the layer's fan-in")
        else:
            hint = ("draw one rng.standard_normal((n_{l-1}, n_l)) per layer, in the order W1, W2, ..., "
                    "with no other draws from the rng (biases are zeros, not random)")
        check_close(got.value[f"W{l}"], expected, what=f"{what}: W{l}", rtol=1e-12, atol=0, hint=hint)
    if got.rng_state != state:
        fail(what, "the rng to be left where drawing W1, ..., WL leaves it",
             "a different rng state (more or fewer numbers were drawn)",
             "one standard_normal call per layer and nothing else: no np.random.* functions, no random biases")


@pytest.mark.points(1)
def test_linear_forward(submission, rng):
    """Is linear_forward A_prev @ W + b, with b broadcast over the rows, also for a batch of one?"""
    for N in (4, 1):
        A_prev, W, b = rng.normal(size=(N, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)
        got = submission.call("linear_forward", A_prev, W, b)
        what = describe_call("linear_forward(A_prev, W, b)", A_prev=A_prev, W=W, b=b)
        hint = first_match(got.value, {"the bias b is missing: Z = A_prev @ W + b": A_prev @ W},
                           "Z = A_prev @ W + b, shape (N, n_l)")
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
    hint = first_match(probs, {"the output layer must apply softmax to its scores Z_L":
                               np.tile(params["b1"], (2, 1)),
                               "the bias is missing: Z_L = A_{L-1} @ W_L + b_L": np.full((2, 3), 1 / 3)},
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
                    hint=first_match(Z, {f"Z{l} holds the activation; store the pre-activation "
                                         f"A{l - 1} @ W{l} + b{l} there": A},
                                     f"Z{l} = A{l - 1} @ W{l} + b{l}, computed from the previous layer's A"))
        if l < L:
            candidates = {f"hidden layers must use the activation argument ({activation!r}), "
                          f"not {other!r}": submission.call(other, Z).value
                          for other in ACTIVATIONS if other != activation}
            expected = submission.call(activation, Z).value
            check_close(A, expected, what=f'{what}: cache["A{l}"]',
                        hint=first_match(A, candidates, f"A{l} = {activation}(Z{l}) in a hidden layer"))
        else:
            expected = submission.call("softmax", Z).value
            candidates = {"the output layer is softmax(Z_L) alone: do not apply the hidden activation first":
                          submission.call("softmax", submission.call(activation, Z).value).value,
                          "the output layer must apply softmax to its scores": Z}
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
    hint = "use the stable softmax of activations.py for the output layer (it subtracts each row's max)"
    check_no_warnings(got.warnings, what=what, hint=hint)
    probs = check_array(check_tuple(got.value, ("probs", "cache"), what=what)[0], what=what + ": probs",
                        shape=(5, 3), hint=hint)
    check_close(probs.sum(axis=1), np.ones(5), what=what + ": row sums of probs", hint=hint)


@pytest.mark.points(1)
def test_cross_entropy_small_case(submission):
    """Is cross_entropy the mean over rows of -log(probability of the true class), as a float?"""
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1]])
    Y = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    got = submission.call("cross_entropy", probs, Y)
    what = describe_call("cross_entropy(probs, Y)", probs=probs, Y=Y)
    expected = -(np.log(0.5) + np.log(0.8)) / 2
    mistakes = {2.0: "missing the 1/N of the mean loss: divide the sum by N = probs.shape[0]",
                1 / 3: "averaged over all N * C entries: divide by the number of rows N only",
                -1.0: "sign flipped: the loss is -sum(Y * log(probs)) / N"}
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
    hint = "log(0) is -inf: clip first, np.log(np.maximum(probs, 1e-12))"
    check_no_warnings(got.warnings, what=what, hint=hint)
    check_scalar(got.value, -(np.log(1e-12) + np.log(0.5)) / 2, what=what, hint=hint)


@pytest.mark.points(1)
def test_predict(submission, rng):
    """Does predict return, as ints of shape (N,), the argmax over classes of forward's probs?"""
    params, X = random_params(rng, [4, 6, 3], scale=3.0, bias_scale=0.5), rng.normal(size=(40, 4))
    got = submission.call("predict", params, X, "tanh")
    what = describe_call("predict(params, X, 'tanh')", params=params, X=X)
    pred = check_array(got.value, what=what, shape=(40,), dtype=None,
                       hint="one class id per row: np.argmax(probs, axis=1)")
    if pred.dtype.kind not in "iu":
        fail(what, "an integer array", f"dtype {pred.dtype}", "np.argmax returns ints; do not convert to float")
    probs = forward_probs(submission, params, X, "tanh")
    hint = first_match(pred, {"predict must pass its activation on to forward":
                              np.argmax(forward_probs(submission, params, X, "relu"), axis=1)},
                       "the index of the largest probability of each row, np.argmax(probs, axis=1)")
    check_close(pred.astype(np.int64), np.argmax(probs, axis=1).astype(np.int64), what=what,
                rtol=0, atol=0, hint=hint)
    check_unmodified(params, got.args[0], what=what, name="params")
