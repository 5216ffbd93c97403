"""Public tests of regularization.py: the L2 penalty and its gradient on small
cases, the dropout mask drawn exactly as the docstring says (and the rng left
where one rng.random call leaves it), forward_dropout's cache, and
backward_dropout against centered finite differences of the loss with the
masks held fixed. The part's gate: backward_dropout must be backpropagation
(test_backward_dropout_is_backpropagation; when it fails, every test of this
part scores zero).

The expected values here are computed in the tests themselves with NumPy, so
a mistake in forward_dropout does not also fail the tests of backward_dropout.
"""
import numpy as np
import pytest

from nnkit.course.causes import cause
from nnkit.grading.proxy import NotImplementedYet, StudentCrash, StudentError, StudentTimeout
from nnkit.testing.checks import (
    CheckFailed, check_array, check_close, check_keys, check_scalar, check_tuple, check_unmodified, describe_call,
    fail, first_match, numerical_gradients, relative_error,
)
from nnkit.testing.gradient_checks import GRAD_TOL, check_gradients
from nnkit.testing.inputs import random_params

pytestmark = pytest.mark.part("regularization")

EPS = 1e-6
"""Step of the centered finite differences."""
KINK = 1e-3
"""Smallest |pre-activation| allowed in relu networks, so no difference step crosses the kink at 0."""
ACTIVATIONS = {
    "relu": lambda z: np.maximum(z, 0.0),
    "sigmoid": lambda z: 1.0 / (1.0 + np.exp(-z)),
    "tanh": np.tanh,
}


def one_hot(labels, C):
    Y = np.zeros((len(labels), C))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y


def softmax(Z):
    e = np.exp(Z - Z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def cross_entropy(probs, Y):
    return float(-np.sum(Y * np.log(np.maximum(probs, 1e-12))) / probs.shape[0])


def masks_for(seed, N, sizes, p_drop):
    """The masks forward_dropout draws from default_rng(seed) for hidden layers 1..L-1, and the rng
    state after them."""
    rng = np.random.default_rng(seed)
    masks = {l: (rng.random((N, sizes[l])) >= p_drop) / (1.0 - p_drop) for l in range(1, len(sizes) - 1)}
    return masks, rng.bit_generator.state


def forward_with_masks(params, X, activation, masks, *, mask_Z=False, cache_before_mask=False):
    """probs and cache of a forward pass with these masks on the hidden activations (the result
    forward_dropout must give); ``mask_Z`` and ``cache_before_mask`` make two known mistakes."""
    L = len(params) // 2
    g = ACTIVATIONS[activation]
    cache, A = {"A0": X}, X
    for l in range(1, L + 1):
        Z = A @ params[f"W{l}"] + params[f"b{l}"]
        cache[f"Z{l}"] = Z
        if l == L:
            A = softmax(Z)
        else:
            A = g(Z * masks[l]) if mask_Z else g(Z) * masks[l]
            cache[f"M{l}"] = masks[l]
        cache[f"A{l}"] = g(Z) if cache_before_mask and l < L else A
    return A, cache


def dropout_call(submission, A, p_drop, seed):
    """dropout_forward(A, p_drop, rng) for rng = default_rng(seed): the CallResult and (out, mask)."""
    got = submission.call("dropout_forward", A, p_drop, seed)
    what = describe_call(f"dropout_forward(A, p_drop={p_drop}, rng)", A=A)
    out, mask = check_tuple(got.value, ("out", "mask"), what=what)
    return got, what, out, mask


@pytest.mark.points(1)
def test_l2_penalty_small_case(submission):
    """Is l2_penalty 0.5 * lam * (sum of the squared weights), biases left out, as a float (0.0 for lam = 0)?"""
    params = {"W1": np.array([[1.0, -2.0], [0.5, 0.0]]), "b1": np.array([3.0, -1.0]),
              "W2": np.array([[2.0], [-1.0]]), "b2": np.array([4.0])}
    weights, biases = 1.0 + 4.0 + 0.25 + 4.0 + 1.0, 9.0 + 1.0 + 16.0
    for lam in (0.1, 0.0):
        got = submission.call("l2_penalty", params, lam)
        what = describe_call(f"l2_penalty(params, lam={lam})", params=params)
        hint = None
        if isinstance(got.value, (float, np.floating)) and lam:
            hint = {round(0.5 * lam * (weights + biases), 9): cause("l2_on_biases"),
                    round(lam * weights, 9): cause("l2_missing_half")}.get(round(float(got.value), 9))
        if not isinstance(got.value, float):
            fail(what, "a Python float", type(got.value).__name__, hint or "return float(...)")
        check_scalar(got.value, 0.5 * lam * weights, what=what, hint=hint)
        check_unmodified(params, got.args[0], what=what, name="params")


@pytest.mark.points(1)
def test_l2_grads(submission, rng):
    """Does l2_grads return a new dict with grads["W{l}"] + lam * params["W{l}"] and the bias gradients
    unchanged, leaving params and grads alone?"""
    params = random_params(rng, [4, 5, 3], scale=1.0, bias_scale=0.5)
    grads = {k: rng.normal(size=v.shape) for k, v in params.items()}
    lam = 0.3
    got = submission.call("l2_grads", params, grads, lam)
    what = describe_call("l2_grads(params, grads, lam=0.3)", params=params, grads=grads)
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(grads, got.args[1], what=what, name="grads")
    new = check_keys(got.value, list(grads), what=what, hint="return a new dict with every key of grads")
    for key in grads:
        if key.startswith("W"):
            expected = grads[key] + lam * params[key]
            hint = first_match(new[key], [(cause("l2_grad_factor"), grads[key] + 2 * lam * params[key]),
                                          (cause("l2_grad_factor"), grads[key] + 0.5 * lam * params[key]),
                                          (cause("l2_grads_replaced"), lam * params[key])],
                               "grads[W] + lam * params[W]")
        else:
            expected = grads[key]
            hint = first_match(new[key], {cause("l2_on_biases"): grads[key] + lam * params[key]},
                               "the bias gradients are returned unchanged")
        check_close(new[key], expected, what=f"{what}: result[{key!r}]", hint=hint)


def mask_mistakes(A, p_drop, seed):
    """The masks of common dropout_forward mistakes, as (cause, mask) pairs."""
    r = np.random.default_rng(seed).random(A.shape)
    keep = (r >= p_drop).astype(np.float64)
    return [(cause("dropout_mask_not_scaled"), keep),
            (cause("dropout_scaled_by_keep_probability"), keep * (1 - p_drop)),
            (cause("dropout_keep_drop_swapped"), (r < p_drop) / (1 - p_drop)),
            (cause("dropout_keep_drop_swapped"), (r < 1 - p_drop) / (1 - p_drop)),
            (cause("dropout_keep_drop_swapped"), (r < p_drop) / p_drop)]


def state_after(seed, *shapes):
    """The state of default_rng(seed) after one rng.random(shape) call per shape."""
    rng = np.random.default_rng(seed)
    for shape in shapes:
        rng.random(shape)
    return rng.bit_generator.state


@pytest.mark.points(1)
def test_dropout_forward_mask(submission, rng):
    """Is the mask (rng.random(A.shape) >= p_drop) / (1 - p_drop) from one rng.random call, and out = A * mask,
    for p_drop = 0.25 and 0.6?"""
    for p_drop in (0.25, 0.6):
        check_dropout_forward(submission, rng.normal(size=(6, 5)), p_drop, 42)


def check_dropout_forward(submission, A, p_drop, seed):
    got, what, out, mask = dropout_call(submission, A, p_drop, seed)
    expected = (np.random.default_rng(seed).random(A.shape) >= p_drop) / (1 - p_drop)
    check_array(mask, what=what + ": mask", shape=A.shape)
    rng_used_otherwise = got.rng_state != state_after(seed, A.shape)
    hint = first_match(mask, mask_mistakes(A, p_drop, seed),
                       cause("dropout_rng_misused") if rng_used_otherwise else
                       "keep the entries where rng.random(A.shape) >= p_drop, scaled by 1 / (1 - p_drop)")
    check_close(mask, expected, what=what + ": mask", hint=hint)
    check_close(out, A * expected, what=what + ": out", hint="out = A * mask")
    if rng_used_otherwise:
        fail(what, "the rng to be called exactly once, rng.random(A.shape)", "a different rng state",
             cause("dropout_rng_misused"))
    check_unmodified(A, got.args[0], what=what, name="A")


@pytest.mark.points(1)
def test_dropout_forward_p_zero(submission, rng):
    """With p_drop == 0, is the result (a copy of A, a mask of ones) with the rng left untouched?"""
    A, seed = rng.normal(size=(4, 3)), 7
    got, what, out, mask = dropout_call(submission, A, 0.0, seed)
    check_close(out, A, what=what + ": out", rtol=0, atol=0, hint="with p_drop == 0 nothing is dropped: out is A")
    check_close(mask, np.ones(A.shape), what=what + ": mask", rtol=0, atol=0, hint="np.ones(A.shape)")
    if got.rng_state != np.random.default_rng(seed).bit_generator.state:
        fail(what, "the rng left untouched", "numbers drawn from it", cause("dropout_p_zero_uses_rng"))
    check_unmodified(A, got.args[0], what=what, name="A")


@pytest.mark.points(1)
def test_dropout_forward_rejects_invalid_p(submission, rng):
    """Does dropout_forward raise ValueError for p_drop = 1, 1.5 and -0.1?"""
    A = rng.normal(size=(3, 4))
    for p_drop in (1.0, 1.5, -0.1):
        what = describe_call(f"dropout_forward(A, p_drop={p_drop}, rng)", A=A)
        try:
            submission.call("dropout_forward", A, p_drop, 0)
        except NotImplementedYet:
            raise
        except StudentError as exc:
            if exc.exc_type != "ValueError":
                fail(what, "ValueError", f"{exc.exc_type}: {exc.message}", cause("dropout_p_not_checked"))
            continue
        fail(what, "ValueError", "a result", cause("dropout_p_not_checked"))


@pytest.mark.points(1)
def test_dropout_backward(submission, rng):
    """Is dropout_backward dout * mask, the mask holding 0 or 1 / (1 - p_drop)?"""
    dout = rng.normal(size=(5, 4))
    mask = (rng.random((5, 4)) >= 0.4) / 0.6
    got = submission.call("dropout_backward", dout, mask)
    what = describe_call("dropout_backward(dout, mask)", dout=dout, mask=mask)
    hint = first_match(got.value, {cause("dropout_backward_ignores_mask"): dout,
                                   cause("dropout_backward_mask_unscaled"): dout * (mask > 0)}, "dout * mask")
    check_close(got.value, dout * mask, what=what, hint=hint)
    check_unmodified(dout, got.args[0], what=what, name="dout")
    check_unmodified(mask, got.args[1], what=what, name="mask")


def forward_dropout_call(submission, params, X, activation, p_drop, seed):
    got = submission.call("forward_dropout", params, X, activation, p_drop, seed)
    what = describe_call(f"forward_dropout(params, X, {activation!r}, p_drop={p_drop}, rng)", params=params, X=X)
    probs, cache = check_tuple(got.value, ("probs", "cache"), what=what)
    return got, what, probs, cache


def rng_state_hint(got_state, seed, N, sizes):
    """The cause a wrong rng state after forward_dropout shows, else advice."""
    if got_state == state_after(seed, *[(N, n) for n in sizes[1:]]):
        return cause("dropout_on_output_layer")
    if got_state == state_after(seed, *[(N, n) for n in sizes[:-1]]):
        return cause("dropout_on_input")
    return "one dropout_forward call per hidden layer (one rng.random each), none for the input or the output layer"


@pytest.mark.points(1)
@pytest.mark.parametrize("activation,sizes", [("relu", [4, 6, 3]), ("tanh", [5, 6, 4, 3]), ("sigmoid", [4, 7, 5, 3])],
                         ids=["relu-2-layer", "tanh-3-layer", "sigmoid-3-layer"])
def test_forward_dropout_cache(submission, rng, activation, sizes):
    """Does forward_dropout mask each hidden activation with dropout_forward's masks, drawn layer 1 first,
    and cache A0, Z{l}, A{l} (after the mask) and M{l}, with probs = softmax(Z_L) undropped?"""
    N, p_drop, seed = 8, 0.4, 3
    params, X = random_params(rng, sizes, scale=2.0, bias_scale=0.5), rng.normal(size=(N, sizes[0]))
    got, what, probs, cache = forward_dropout_call(submission, params, X, activation, p_drop, seed)
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(X, got.args[1], what=what, name="X")
    masks, state = masks_for(seed, N, sizes, p_drop)
    expected_probs, expected = forward_with_masks(params, X, activation, masks)
    L = len(sizes) - 1
    keys = ["A0"] + [f"{k}{l}" for l in range(1, L + 1) for k in "ZA"] + [f"M{l}" for l in range(1, L)]
    check_keys(cache, keys, what=what + ": cache",
               hint="store A0 = X, Z{l} and A{l} for every layer, and the mask M{l} of every hidden layer")
    check_close(cache["A0"], X, what=what + ': cache["A0"]', hint=cause("dropout_on_input"))
    reversed_masks, _ = masks_for(seed, N, sizes[::-1], p_drop)
    input_first, _ = masks_for(seed, N, [0, *sizes], p_drop)  # a mask drawn for X too: layer l gets draw l + 1
    for l in range(1, L):
        mistakes = [(cause("dropout_masks_out_of_order"), reversed_masks[L - l])] \
            if reversed_masks[L - l].shape == masks[l].shape else []
        mistakes += [(cause("dropout_on_input"), input_first[l + 1])]
        mistakes += [(c, m) for c, m in mask_mistakes(np.zeros((N, sizes[l])), p_drop, seed) if l == 1]
        check_close(cache[f"M{l}"], masks[l], what=f'{what}: cache["M{l}"]',
                    hint=first_match(cache[f"M{l}"], mistakes, "the mask dropout_forward returns for layer "
                                     f"{l}, the {l}th draw from the rng"))
    before_mask = forward_with_masks(params, X, activation, masks, cache_before_mask=True)[1]
    on_Z = forward_with_masks(params, X, activation, masks, mask_Z=True)[1]
    for l in range(1, L + 1):
        for k in "ZA":
            key = f"{k}{l}"
            if key == f"A{L}":
                value = check_array(cache[key], what=f'{what}: cache["{key}"]', shape=expected[key].shape)
                hint = (f"A{L} = softmax(Z{L}) is probs" if np.allclose(value.sum(axis=1), 1.0)
                        else cause("dropout_on_output_layer"))
            else:
                masked_Z = {cause("dropout_before_activation"): expected[key] * masks[l]} if l < L else {}
                hint = first_match(cache[key], {cause("cache_A_before_mask"): before_mask[key],
                                                cause("dropout_before_activation"): on_Z[key]} if k == "A" else
                                   masked_Z,
                                   f"{key} as in Assignment 1's forward, with A{l} = {activation}(Z{l}) * M{l} in "
                                   "a hidden layer")
            check_close(cache[key], expected[key], what=f'{what}: cache["{key}"]', hint=hint)
    probs = check_array(probs, what=what + ": probs", shape=expected_probs.shape)
    sums_to_one = np.allclose(probs.sum(axis=1), 1.0)
    check_close(probs, expected_probs, what=what + ": probs",
                hint=None if sums_to_one else cause("dropout_on_output_layer"))
    if got.rng_state != state:
        fail(what, f"the rng to be called once per hidden layer ({L - 1} rng.random calls)", "a different rng state",
             rng_state_hint(got.rng_state, seed, N, sizes))


@pytest.mark.points(1)
def test_forward_dropout_p_zero(submission, rng):
    """With p_drop == 0, is forward_dropout Assignment 1's forward pass (masks of ones) with the rng untouched?"""
    sizes, N = [5, 6, 4, 3], 7
    params, X = random_params(rng, sizes, scale=2.0, bias_scale=0.5), rng.normal(size=(N, 5))
    got, what, probs, cache = forward_dropout_call(submission, params, X, "tanh", 0.0, 5)
    ones = {l: np.ones((N, sizes[l])) for l in range(1, 3)}
    expected_probs, expected = forward_with_masks(params, X, "tanh", ones)
    check_close(probs, expected_probs, what=what + ": probs")
    check_keys(cache, list(expected), what=what + ": cache")
    for key, value in expected.items():
        check_close(cache[key], value, what=f'{what}: cache["{key}"]')
    if got.rng_state != np.random.default_rng(5).bit_generator.state:
        fail(what, "the rng left untouched", "numbers drawn from it", cause("dropout_p_zero_uses_rng"))


def masked_network(rng, sizes, N, activation, p_drop):
    """Random params, X, Y, masks and the forward pass's cache; relu networks are redrawn (up to 100
    times) until no hidden pre-activation lies within KINK of 0."""
    for _ in range(100):
        params, X = random_params(rng, sizes, scale=1.5, bias_scale=0.5), rng.normal(size=(N, sizes[0]))
        Y = one_hot(rng.integers(0, sizes[-1], size=N), sizes[-1])
        masks = {l: (rng.random((N, sizes[l])) >= p_drop) / (1 - p_drop) for l in range(1, len(sizes) - 1)}
        _, cache = forward_with_masks(params, X, activation, masks)
        hidden = [cache[f"Z{l}"] for l in range(1, len(sizes) - 1)]
        if activation != "relu" or all(np.min(np.abs(Z)) > KINK for Z in hidden):
            break
    return params, X, Y, masks, cache


def gradients_agree(grads, expected):
    """Whether ``grads`` holds every gradient of ``expected`` within GRAD_TOL (no message: a quick look)."""
    return isinstance(grads, dict) and all(
        isinstance(grads.get(k), np.ndarray) and grads[k].shape == v.shape and relative_error(grads[k], v) <= GRAD_TOL
        for k, v in expected.items())


def dropout_mistakes(params, X, Y, activation, masks, cache, rerun, numeric):
    """Gradients common backward_dropout mistakes give, keyed by cause: the finite differences ``numeric``
    of the right gradients as a 0/1 mask passes them down, finite differences with the masks doctored
    (0/1 masks), and the student's own backward_dropout rerun on a cache whose masks are ones (if nothing
    changes, the masks are ignored)."""
    loss = lambda m: lambda p: cross_entropy(forward_with_masks(p, X, activation, m)[0], Y)  # noqa: E731
    unscaled = {l: (m > 0).astype(np.float64) for l, m in masks.items()}
    L = len(params) // 2
    keep = {l: 1.0 / m.max() for l, m in masks.items() if m.max() > 0}  # 1 - p_drop: a kept unit's mask is 1 / keep
    # through a 0/1 mask each hidden layer passes its gradient down times (1 - p_drop): layer l gets (1 - p)**(L - l)
    through_01 = {k: v * np.prod([keep.get(j, 1.0) for j in range(int(k[1:]), L)]) for k, v in numeric.items()}
    mistakes = [(cause("dropout_backward_mask_unscaled"), through_01),
                (cause("dropout_backward_mask_unscaled"), numerical_gradients(loss(unscaled), params, EPS))]
    ones = dict(cache) | {f"M{l}": np.ones_like(m) for l, m in masks.items()}
    try:
        ignored = rerun(ones, activation)
        if isinstance(ignored, dict):
            mistakes.append((cause("dropout_backward_ignores_mask"), ignored))
    except Exception:  # noqa: BLE001 - the rerun failed: nothing recognised
        pass
    return mistakes


@pytest.mark.points(1)
@pytest.mark.parametrize("activation,sizes", [("relu", [4, 6, 3]), ("tanh", [4, 5, 6, 3]), ("sigmoid", [5, 4, 6, 3])],
                         ids=["relu-2-layer", "tanh-3-layer", "sigmoid-3-layer"])
def test_backward_dropout_gradient_check(submission, rng, activation, sizes):
    """Does backward_dropout agree with centered finite differences of the cross-entropy of the forward pass
    with the cache's masks held fixed?"""
    N, p_drop = 6, 0.5
    params, X, Y, masks, cache = masked_network(rng, sizes, N, activation, p_drop)
    got = submission.call("backward_dropout", params, cache, Y, activation)
    what = describe_call(f"backward_dropout(params, cache, Y, {activation!r}) with p_drop={p_drop}",
                         params=params, Y=Y)
    numeric = numerical_gradients(lambda p: cross_entropy(forward_with_masks(p, X, activation, masks)[0], Y),
                                  params, EPS)
    rerun = lambda changed, name: submission.backward_dropout(params, changed, Y, name)  # noqa: E731
    mistakes = [] if gradients_agree(got.value, numeric) else \
        dropout_mistakes(params, X, Y, activation, masks, cache, rerun, numeric)  # the hints cost calls: failures only
    check_gradients(got.value, params, numeric, what, N, cache=cache, activation=activation, rerun=rerun,
                    mistakes=mistakes)


@pytest.mark.points(1)
def test_backward_dropout_structure_and_inputs(submission, rng):
    """Does backward_dropout return float64 gradients with the keys and shapes of params, leaving params,
    cache and Y alone?"""
    params, X, Y, masks, cache = masked_network(rng, [6, 5, 4, 3], 7, "sigmoid", 0.3)
    got = submission.call("backward_dropout", params, cache, Y, "sigmoid")
    what = describe_call("backward_dropout(params, cache, Y, 'sigmoid')", params=params, Y=Y)
    grads = check_keys(got.value, list(params), what=what, hint="one gradient per parameter: W1, b1, ..., WL, bL")
    for key, value in params.items():
        check_array(grads[key], what=f"{what}: grads[{key!r}]", shape=value.shape)
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(cache, got.args[1], what=what, name="cache")
    check_unmodified(Y, got.args[2], what=what, name="Y")


# ---- the part's gate ------------------------------------------------------------

GATE = "backward_dropout must compute gradients by backpropagation"
"""The part's gate: when test_backward_dropout_is_backpropagation fails, every test of regularization scores zero."""
GATE_SIZES, GATE_N, GATE_P = [784, 16, 12, 10], 16, 0.5
"""The gate's network: 12,894 parameters, a batch of 16, half the hidden units dropped."""
MAX_CALLS = 10
"""Most calls of forward_dropout that one backward_dropout may make (backpropagation needs none)."""
WORK_FACTOR = 50
"""Most array work of one backward_dropout, in forward passes of the same network (backpropagation does about 2;
finite differences on the gate's network tens of thousands)."""
CPU_FACTOR = 5000
"""Most processor time of one backward_dropout, in forward passes: a backstop for work the array count cannot see."""
MEASURING_SECONDS = 1.0
"""Processor time after which the counting call is stopped without a verdict."""
GATE_TIMEOUT = 20.0
"""Wall-clock limit of the gate's calls."""


def _unless_it_fails_everywhere(submission, rng, exc, what):
    """backward_dropout failed on the gate's network: fail the gate if it works on a small network, else
    leave the gate undecided (the other tests report the failure)."""
    try:
        params, X, Y, masks, cache = masked_network(rng, [4, 5, 3], 5, "relu", GATE_P)
        submission.backward_dropout(params, cache, Y, "relu")
    except NotImplementedYet:
        raise
    except (StudentError, StudentTimeout, StudentCrash, CheckFailed) as small:
        pytest.skip(f"backpropagation not measured: {small} (also on a 4-5-3 network; see the other tests "
                    "of this part)")
    fail(what, "gradients, as it returns for a small 4-5-3 network", str(exc),
         cause("backward_dropout_not_backpropagation"))


@pytest.mark.points(0)
@pytest.mark.gate(GATE)
def test_backward_dropout_is_backpropagation(submission, rng):
    """Is backward_dropout backpropagation: on a 784-16-12-10 network (12,894 parameters) with dropout, does it
    do the work of a few forward passes? (The part's gate.)"""
    params = random_params(rng, GATE_SIZES, scale=np.sqrt(2.0), bias_scale=0.1)
    X, Y = rng.random((GATE_N, GATE_SIZES[0])), one_hot(rng.integers(0, 10, size=GATE_N), 10)
    masks = {l: (rng.random((GATE_N, GATE_SIZES[l])) >= GATE_P) / (1 - GATE_P) for l in (1, 2)}
    _, cache = forward_with_masks(params, X, "relu", masks)
    parameters = sum(v.size for v in params.values())
    what = describe_call(f"backward_dropout(params, cache, Y, 'relu') on a 784-16-12-10 network "
                         f"({parameters:,} parameters)", Y=Y)
    try:
        forward_work = max(submission.measure("forward_dropout", params, X, "relu", GATE_P, 0).profile.work,
                           GATE_N * parameters)
        forward_cpu = min(submission.measure("forward_dropout", params, X, "relu", GATE_P, 0,
                                             arrays=False).profile.cpu_seconds for _ in range(5))
    except NotImplementedYet:
        raise
    except (StudentError, StudentTimeout, StudentCrash) as exc:
        pytest.skip(f"backpropagation not measured: forward_dropout(), needed to measure backward_dropout, "
                    f"failed: {exc}")
    cpu_limit = CPU_FACTOR * max(forward_cpu, 1e-5)
    try:
        counted = submission.measure("backward_dropout", params, cache, Y, "relu", count=("forward_dropout",),
                                     max_work=WORK_FACTOR * forward_work, max_calls=MAX_CALLS,
                                     max_seconds=MEASURING_SECONDS, timeout=GATE_TIMEOUT).profile
        timed = submission.measure("backward_dropout", params, cache, Y, "relu", arrays=False,
                                   max_seconds=cpu_limit, timeout=GATE_TIMEOUT).profile
    except (StudentError, StudentTimeout, StudentCrash) as exc:
        _unless_it_fails_everywhere(submission, rng, exc, what)
        return
    hint = cause("backward_dropout_not_backpropagation")
    calls = counted.calls.get("forward_dropout", 0)
    if counted.stopped == "calls" or calls > MAX_CALLS:
        fail(what, f"backpropagation, which needs no call of forward_dropout() (at most {MAX_CALLS} are allowed)",
             f"{calls} calls when it was stopped", hint)
    if counted.stopped == "work" or counted.work > WORK_FACTOR * forward_work:
        fail(what, f"at most {WORK_FACTOR} forward passes' worth of array work (backpropagation does about 2)",
             f"more than {WORK_FACTOR} when it was stopped", hint)
    if timed.stopped == "time" or timed.cpu_seconds > cpu_limit:
        fail(what, f"at most {CPU_FACTOR:,} forward passes' worth of processor time (backpropagation takes a few)",
             f"{timed.cpu_seconds:.2f} s against {1e3 * forward_cpu:.2f} ms for one forward pass", hint)
