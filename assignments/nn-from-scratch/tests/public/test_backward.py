"""Public tests of backward.py: gradients checked against centered finite
differences of the loss (computed with forward and cross_entropy), exact
formulas from the docstrings, shapes, untouched inputs, speed, and the
part's gate: backward must be backpropagation (test_backward_is_backpropagation;
when it fails, every test of this part scores zero).

In the grader, forward and cross_entropy come from the reference solution
when backward.py is tested, so a bug in forward.py costs points only once.
"""
import numpy as np
import pytest

from nnkit.testing.inputs import random_params
from nnkit.course.causes import cause
from nnkit.testing.checks import (
    CheckFailed, check_array, check_close, check_keys, check_relative_error, check_tuple, check_unmodified,
    describe_call, fail, first_match, numerical_gradients, scale_factor,
)
from nnkit.testing.gradient_checks import GRAD_TOL, check_gradients, shape_hint
from nnkit.grading.proxy import NotImplementedYet, StudentCrash, StudentError, StudentTimeout

pytestmark = pytest.mark.part("backward")

EPS = 1e-6
"""Step of the centered finite differences."""
KINK = 1e-3
"""Smallest |pre-activation| allowed in relu networks, so no difference step crosses the kink at 0."""


def one_hot(labels, C):
    Y = np.zeros((len(labels), C))
    Y[np.arange(len(labels)), labels] = 1.0
    return Y


def forward(submission, params, X, activation):
    """forward(params, X, activation), checked enough to test backward with."""
    what = describe_call(f"forward(params, X, {activation!r}), needed to test backward,", params=params, X=X)
    probs, cache = check_tuple(submission.forward(params, X, activation), ("probs", "cache"), what=what)
    L = len(params) // 2
    check_keys(cache, ["A0"] + [f"{k}{l}" for l in range(1, L + 1) for k in "ZA"], what=what + " cache")
    return check_array(probs, what=what + " probs", shape=(X.shape[0], params[f"W{L}"].shape[1])), cache


def network(submission, rng, sizes, N, activation):
    """Random params, X and Y, and forward's cache; relu networks are redrawn (up to
    100 times) until no hidden pre-activation lies within KINK of 0."""
    for _ in range(100):
        params, X = random_params(rng, sizes, scale=1.5, bias_scale=0.5), rng.normal(size=(N, sizes[0]))
        Y = one_hot(rng.integers(0, sizes[-1], size=N), sizes[-1])
        _, cache = forward(submission, params, X, activation)
        hidden = [cache[f"Z{l}"] for l in range(1, len(sizes) - 1)]
        if activation != "relu" or all(np.min(np.abs(Z)) > KINK for Z in hidden):
            break
    return params, X, Y, cache


def losses(submission, X, Y, activation):
    """The mean cross-entropy of the network at each params dict of a list (two round trips in all;
    forward's cache, checked once by network(), stays behind)."""
    def evaluate(points):
        probs = submission.map("forward", [(p, X, activation) for p in points], item=0)
        what = describe_call(f"forward(params, X, {activation!r}), needed to test backward,", X=X)
        shape = (X.shape[0], points[0][f"W{len(points[0]) // 2}"].shape[1])
        probs = [check_array(P, what=what + " probs", shape=shape) for P in probs]
        return submission.map("cross_entropy", [(P, Y) for P in probs])
    return evaluate


GATE = "backward must compute gradients by backpropagation"
"""The part's gate: when test_backward_is_backpropagation fails, every test of backward scores zero."""
GATE_SIZES, GATE_N = [784, 16, 12, 10], 16
"""The gate's network: 12,894 parameters, a batch of 16."""
COUNTED = ("forward", "cross_entropy")
"""Functions whose calls during backward are counted."""
MAX_CALLS = 10
"""Most calls of forward and cross_entropy together that one backward may make. Backpropagation needs none
(the cache holds everything it needs); finite differences need two forward passes per parameter."""
WORK_FACTOR = 50
"""Most array work of one backward, in forward passes of the same network (work: element operations of the
NumPy operations on arrays derived from backward's inputs; a product of (n, k) by (k, m) counts n * k * m).
Backpropagation does about 2 (two products per layer where forward does one), also one example or one entry at a
time; finite differences on the gate's network do about 25,800."""
CPU_FACTOR = 5000
"""Most processor time of one backward, in forward passes of the same network: a backstop for work the array
count cannot see (arrays converted with np.asarray, Python numbers). Backpropagation stays far below it, even
with Python loops over every weight (up to about 2,000); finite differences on the gate's network take about
20,000 to 45,000."""
MEASURING_SECONDS = 1.0
"""Processor time after which the counting call is stopped without a verdict (counting slows the student's
code down; the uncounted, timed call then decides)."""
GATE_TIMEOUT = 20.0
"""Wall-clock limit of the gate's calls: both stop themselves after a second or less of processor time, so this
leaves room for a busy grading machine."""


def _unless_it_fails_everywhere(submission, rng, exc, what, activation):
    """backward failed on the gate's network with ``exc``: fail the gate if it works on a small network
    (a backward that only breaks when large or when measured), else leave the gate undecided."""
    try:
        params, X, Y, cache = network(submission, rng, [4, 5, 3], 5, activation)
        submission.backward(params, cache, Y, activation)
    except NotImplementedYet:
        raise
    except (StudentError, StudentTimeout, StudentCrash, CheckFailed) as small:
        pytest.skip(f"backpropagation not measured: {small} (also on a 4-5-3 network; see the other tests "
                    "of this part)")
    fail(what, "gradients, as it returns for a small 4-5-3 network", str(exc),
         "a backward that works on small networks only, as numerical differentiation does: backpropagation "
         "costs about two forward passes at any size")


@pytest.mark.points(0)
@pytest.mark.gate(GATE)
def test_backward_is_backpropagation(submission, rng):
    """Is backward backpropagation: on a 784-16-12-10 network (12,894 parameters), does it do the work of a few
    forward passes, without calling forward or cross_entropy over and over? (The part's gate; first in the file,
    so that no earlier timeout of backward keeps it from measuring.)"""
    activation = "relu"
    params = random_params(rng, GATE_SIZES, scale=np.sqrt(2.0), bias_scale=0.1)
    X, Y = rng.random((GATE_N, GATE_SIZES[0])), one_hot(rng.integers(0, GATE_SIZES[-1], size=GATE_N), 10)
    parameters = sum(value.size for value in params.values())
    what = describe_call(f"backward(params, cache, Y, {activation!r}) on a 784-16-12-10 network "
                         f"({parameters:,} parameters)", Y=Y)
    try:
        _, cache = forward(submission, params, X, activation)
        # One forward pass's work: as measured, and at least its multiply-adds (N per weight).
        forward_work = max(submission.measure("forward", params, X, activation).profile.work, GATE_N * parameters)
        forward_cpu = min(submission.measure("forward", params, X, activation, arrays=False).profile.cpu_seconds
                          for _ in range(5))
    except NotImplementedYet:
        raise
    except (StudentError, StudentTimeout, StudentCrash, CheckFailed) as exc:
        pytest.skip(f"backpropagation not measured: forward(), needed to measure backward, failed: {exc}")
    cpu_limit = CPU_FACTOR * max(forward_cpu, 1e-5)
    try:
        counted = submission.measure("backward", params, cache, Y, activation, count=COUNTED,
                                     max_work=WORK_FACTOR * forward_work, max_calls=MAX_CALLS,
                                     max_seconds=MEASURING_SECONDS, timeout=GATE_TIMEOUT).profile
        timed = submission.measure("backward", params, cache, Y, activation, arrays=False,
                                   max_seconds=cpu_limit, timeout=GATE_TIMEOUT).profile
    except (StudentError, StudentTimeout, StudentCrash) as exc:
        _unless_it_fails_everywhere(submission, rng, exc, what, activation)
        return
    total = sum(counted.calls.values())
    calls = " and ".join(f"{name}() {counted.calls[name]} times" for name in COUNTED)
    hint = ("numerical differentiation (two forward passes per parameter) is for checking gradients, not for "
            "computing them: apply the chain rule to the cache, walking the layers from L down to 1")
    if counted.stopped == "calls" or total > MAX_CALLS:
        fail(what, f"backpropagation, which needs no call of forward() or cross_entropy() (at most {MAX_CALLS} "
                   "are allowed)", f"{total} calls ({calls}) when it was stopped", hint)
    if counted.stopped == "work" or counted.work > WORK_FACTOR * forward_work:
        fail(what, f"at most {WORK_FACTOR} forward passes' worth of array work (backpropagation does about 2)",
             f"more than {WORK_FACTOR} when it was stopped, "
             + (f"after calling {calls}" if total else "without a call of forward() or cross_entropy() (a "
                "forward pass of its own?)"), hint)
    if timed.stopped == "time" or timed.cpu_seconds > cpu_limit:
        took = (f"more than {CPU_FACTOR:,} when it was stopped" if timed.stopped == "time"
                else f"{timed.cpu_seconds / max(forward_cpu, 1e-5):,.0f}")
        fail(what, f"at most {CPU_FACTOR:,} forward passes' worth of processor time (backpropagation takes a few)",
             f"{took} ({timed.cpu_seconds:.2f} s against {1e3 * forward_cpu:.2f} ms for one forward pass)", hint)


@pytest.mark.points(1)
def test_softmax_cross_entropy_backward(submission, rng):
    """Is softmax_cross_entropy_backward (probs - Y) / N, shape (N, C)?"""
    N, C = 5, 3
    scores = rng.normal(size=(N, C))
    probs = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    Y = one_hot(rng.integers(0, C, size=N), C)
    got = submission.call("softmax_cross_entropy_backward", probs, Y)
    what = describe_call("softmax_cross_entropy_backward(probs, Y)", probs=probs, Y=Y)
    expected = (probs - Y) / N
    factor = scale_factor(got.value, expected)
    hint = {N: cause("dZ_missing_1_over_N"), -1: cause("gradient_sign")}.get(
        None if factor is None else round(factor), "dZ_L = (probs - Y) / N")
    check_close(got.value, expected, what=what, hint=hint)
    check_unmodified(probs, got.args[0], what=what, name="probs")
    check_unmodified(Y, got.args[1], what=what, name="Y")


@pytest.mark.points(1)
def test_linear_backward_shapes(submission, rng):
    """Does linear_backward return (dA_prev, dW, db) of shapes (N, n_{l-1}), (n_{l-1}, n_l) and (n_l,)?"""
    N, n_in, n_out = 5, 4, 3
    dZ, A_prev, W = rng.normal(size=(N, n_out)), rng.normal(size=(N, n_in)), rng.normal(size=(n_in, n_out))
    got = submission.call("linear_backward", dZ, A_prev, W)
    what = describe_call("linear_backward(dZ, A_prev, W)", dZ=dZ, A_prev=A_prev, W=W)
    dA_prev, dW, db = check_tuple(got.value, ("dA_prev", "dW", "db"), what=what)
    check_array(dA_prev, what=what + ": dA_prev", shape=(N, n_in),
                hint="dA_prev has the shape of A_prev: multiply dZ by the transpose of W")
    check_array(dW, what=what + ": dW", shape=(n_in, n_out), hint=shape_hint("W", dW, (n_in, n_out), N))
    check_array(db, what=what + ": db", shape=(n_out,), hint=shape_hint("b", db, (n_out,), N))
    for name, before, after in zip(("dZ", "A_prev", "W"), (dZ, A_prev, W), got.args):
        check_unmodified(before, after, what=what, name=name)


@pytest.mark.points(1)
def test_linear_backward_values(submission, rng):
    """Are dA_prev, dW and db the gradients of sum(dZ * (A_prev @ W + b)), for a square W, a batch
    and a batch of one?"""
    for N, n_in, n_out in ((5, 3, 3), (5, 4, 3), (1, 4, 3)):
        dZ, A_prev, W = rng.normal(size=(N, n_out)), rng.normal(size=(N, n_in)), rng.normal(size=(n_in, n_out))
        got = submission.call("linear_backward", dZ, A_prev, W)
        what = describe_call("linear_backward(dZ, A_prev, W)", dZ=dZ, A_prev=A_prev, W=W)
        result = check_tuple(got.value, ("dA_prev", "dW", "db"), what=what)
        # Z = A_prev @ W + b is linear, so the upstream gradient dZ makes sum(dZ * Z) the loss to differentiate.
        inputs = {"A_prev": A_prev, "W": W, "b": rng.normal(size=n_out)}
        numeric = numerical_gradients(lambda p: np.sum(dZ * (p["A_prev"] @ p["W"] + p["b"])), inputs, EPS)
        # With a square W, the two transposition mistakes give values of the right shape.
        square = {"dA_prev": (cause("dA_prev_untransposed"), dZ @ W),
                  "dW": (cause("dW_transposed"), numeric["W"].T)} if n_in == n_out else {}
        for name, value in zip(("dA_prev", "dW", "db"), result):
            expected = numeric[name[1:]]
            advice = {"dA_prev": "dA_prev has the shape of A_prev, (N, n_{l-1}): it carries dZ back "
                                 "through the weights W (chain rule on Z = A_prev @ W + b)",
                      "dW": "dW has the shape of W, (n_{l-1}, n_l): each entry pairs one input column of "
                            "A_prev with one column of dZ, summed over the N examples",
                      "db": "db is dZ summed over the examples (axis 0)"}[name]
            hint = first_match(value, [square[name]] if name in square else [], advice)
            factor = scale_factor(value, expected)
            if factor is not None and N > 1 and np.isclose(factor, 1.0 / N):
                hint = cause("divided_by_N_twice")
            if name != "dA_prev" and getattr(value, "shape", None) != expected.shape:
                hint = shape_hint(name[1], value, expected.shape, N)
            check_relative_error(value, expected, what=f"{what}: {name}", tol=GRAD_TOL,
                                 against="centered finite differences", hint=hint)


@pytest.mark.points(1)
@pytest.mark.parametrize("activation,sizes", [
    ("sigmoid", [4, 3]), ("tanh", [4, 5, 3]), ("sigmoid", [4, 5, 3]), ("relu", [4, 5, 3]), ("tanh", [4, 5, 4, 3]),
], ids=["1-layer", "tanh-2-layer", "sigmoid-2-layer", "relu-2-layer", "tanh-3-layer"])
def test_backward_gradient_check(submission, rng, activation, sizes):
    """Does backward agree with centered finite differences of cross_entropy(forward(params, X)[0], Y)?"""
    N = 5
    params, X, Y, cache = network(submission, rng, sizes, N, activation)
    got = submission.call("backward", params, cache, Y, activation)
    what = describe_call(f"backward(params, cache, Y, {activation!r})", params=params, Y=Y)
    numeric = numerical_gradients(None, params, EPS, many=losses(submission, X, Y, activation))
    check_gradients(got.value, params, numeric, what, N, cache=cache, activation=activation,
                    rerun=lambda changed, name: submission.backward(params, changed, Y, name))


@pytest.mark.points(1)
def test_backward_single_example(submission, rng):
    """Does backward work, and agree with finite differences, for a batch of one example?"""
    params, X, Y, cache = network(submission, rng, [4, 5, 3], 1, "tanh")
    grads = submission.backward(params, cache, Y, "tanh")
    what = describe_call("backward(params, cache, Y, 'tanh')", params=params, Y=Y)
    numeric = numerical_gradients(None, params, EPS, many=losses(submission, X, Y, "tanh"))
    check_gradients(grads, params, numeric, what, 1, cache=cache, activation="tanh",
                    rerun=lambda changed, name: submission.backward(params, changed, Y, name))


@pytest.mark.points(1)
def test_backward_structure_and_inputs(submission, rng):
    """Does backward return float64 gradients with the keys and shapes of params, leaving its inputs alone?"""
    params, X, Y, cache = network(submission, rng, [6, 5, 4, 3], 7, "sigmoid")
    got = submission.call("backward", params, cache, Y, "sigmoid")
    what = describe_call("backward(params, cache, Y, 'sigmoid')", params=params, Y=Y)
    grads = check_keys(got.value, list(params), what=what,
                       hint=cause("missing_gradients") if isinstance(got.value, dict) else
                       "return a dict with a gradient for every parameter: W1, b1, ..., WL, bL")
    extra = sorted(set(grads) - set(params))
    if extra:
        fail(what, f"exactly the keys {sorted(params)}", f"extra keys {extra}",
             "return only the parameter gradients")
    for key, value in params.items():
        check_array(grads[key], what=f"{what}: grads[{key!r}]", shape=value.shape,
                    hint=shape_hint(key, grads[key], value.shape, 7))
    check_unmodified(params, got.args[0], what=what, name="params")
    check_unmodified(cache, got.args[1], what=what, name="cache")
    check_unmodified(Y, got.args[2], what=what, name="Y")


@pytest.mark.points(2)
def test_backward_is_fast(submission, rng):
    """Is backward fast on a 784-128-10 network with N = 32 (a few matrix products per layer)?"""
    sizes, N, limit = [784, 128, 10], 32, 2.0
    params = {"W1": rng.normal(0.0, np.sqrt(2 / 784), size=(784, 128)), "b1": np.zeros(128),
              "W2": rng.normal(0.0, np.sqrt(2 / 128), size=(128, 10)), "b2": np.zeros(10)}
    X, Y = rng.random((N, 784)), one_hot(rng.integers(0, 10, size=N), 10)
    _, cache = forward(submission, params, X, "relu")
    got = submission.call("backward", params, cache, Y, "relu", timeout=5)
    what = describe_call("backward(params, cache, Y, 'relu')", params=params, Y=Y)
    grads = check_keys(got.value, list(params), what=what,
                       hint=cause("missing_gradients") if isinstance(got.value, dict) else None)
    for key, value in params.items():
        check_array(grads[key], what=f"{what}: grads[{key!r}]", shape=value.shape,
                    hint=shape_hint(key, grads[key], value.shape, N))
    if got.seconds >= limit:
        fail(what, f"to finish in under {limit:g} s (the reference takes a few milliseconds)",
             f"{got.seconds:.2f} s", cause("backward_not_backpropagation"))
