"""Public tests of activations.py: values from the docstrings, exact small
cases, shapes, dtypes, untouched inputs and numerical stability."""
import numpy as np
import pytest

from nnkit.course.causes import cause
from nnkit.testing.checks import (
    check_array, check_close, check_no_warnings, check_unmodified, describe_call, fail, first_match,
)

pytestmark = pytest.mark.part("activations")

EXTREMES = np.array([[-1000.0, -710.0, -50.0, 0.0, 50.0, 710.0, 1000.0]])
"""Inputs where a naive exp(-z) overflows (below about -709)."""



def _call(submission, name, z):
    """Call an activation; check it returned a float64 array of z's shape and left z alone."""
    got = submission.call(name, z)
    what = describe_call(f"{name}(z)", z=z)
    check_array(got.value, what=what, shape=z.shape)
    check_unmodified(z, got.args[0], what=what, name="z")
    return got, what


def mistaken_softmax(z):
    """What softmax mistakes give on z, as (cause, array) pairs: normalised over axis 0, or divided
    by the row sums without keepdims (where those broadcast), each with and without the max shift."""
    N, C = z.shape
    pairs = []
    with np.errstate(all="ignore"):
        for shift in (z.max(axis=0, keepdims=True), 0.0):
            powers = np.exp(z - shift)
            pairs.append((cause("softmax_wrong_axis"), powers / powers.sum(axis=0, keepdims=True)))
        if C == N or N == 1 or C == 1:
            for shift in (z.max(axis=1, keepdims=True), 0.0):
                powers = np.exp(z - shift)
                pairs.append((cause("softmax_sum_no_keepdims"), powers / powers.sum(axis=1)))
    return pairs


@pytest.mark.points(1)
def test_sigmoid_values(submission, rng):
    """Does sigmoid match 1 / (1 + exp(-z)) on moderate inputs, for any shape?"""
    for z in (rng.uniform(-6, 6, size=(4, 3)), rng.uniform(-6, 6, size=5), np.array([[0.0]])):
        got, what = _call(submission, "sigmoid", z)
        check_close(got.value, 1.0 / (1.0 + np.exp(-z)), what=what,
                    hint=first_match(got.value, {cause("sigmoid_sign_in_exponent"): 1.0 / (1.0 + np.exp(z))},
                                     "sigmoid(z) = 1 / (1 + exp(-z)) for every entry"))


@pytest.mark.points(1)
def test_sigmoid_extremes(submission):
    """Is sigmoid finite and warning-free at +-1000, with limits 0 and 1?"""
    z = EXTREMES
    got, what = _call(submission, "sigmoid", z)
    check_no_warnings(got.warnings, what=what, hint=cause("exp_overflow"))
    expected = np.array([[0.0, 0.0, np.exp(-50.0), 0.5, 1.0, 1.0, 1.0]])
    check_close(got.value, expected, what=what, rtol=1e-7, atol=1e-12, hint=cause("exp_overflow"))


@pytest.mark.points(1)
def test_sigmoid_derivative_values(submission, rng):
    """Is sigmoid_derivative s(z) * (1 - s(z)), evaluated at the pre-activation z?"""
    z = np.concatenate([[0.0], rng.uniform(-6, 6, size=7)]).reshape(2, 4)
    got, what = _call(submission, "sigmoid_derivative", z)
    s = 1.0 / (1.0 + np.exp(-z))
    hint = first_match(got.value, {cause("derivative_of_output_form"): z * (1.0 - z),
                                   cause("derivative_returns_activation"): s},
                       "compute s = sigmoid(z), then return s * (1 - s)")
    check_close(got.value, s * (1.0 - s), what=what, hint=hint)


@pytest.mark.points(1)
def test_sigmoid_derivative_extremes(submission):
    """Is sigmoid_derivative finite, warning-free and near 0 at +-1000?"""
    z = EXTREMES
    got, what = _call(submission, "sigmoid_derivative", z)
    with np.errstate(over="ignore"):
        output_form = z * (1.0 - z)
    hint = first_match(got.value, {cause("derivative_of_output_form"): output_form}, cause("exp_overflow"))
    check_no_warnings(got.warnings, what=what, hint=hint)
    expected = np.array([[0.0, 0.0, np.exp(-50.0), 0.25, np.exp(-50.0), 0.0, 0.0]])
    check_close(got.value, expected, what=what, rtol=1e-6, atol=1e-12, hint=hint)


@pytest.mark.points(1)
def test_relu_small_case(submission):
    """Is relu max(0, z) elementwise, with the input left untouched?"""
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0], [1e-3, -1e-3, 7.0, -7.0, 0.0]])
    got, what = _call(submission, "relu", z)
    expected = np.array([[0.0, 0.0, 0.0, 0.5, 3.0], [1e-3, 0.0, 7.0, 0.0, 0.0]])
    check_close(got.value, expected, what=what, rtol=0, atol=0,
                hint="relu keeps positive entries and replaces the others by 0.0 (np.maximum(z, 0.0))")


@pytest.mark.points(1)
def test_relu_derivative_small_case(submission):
    """Is relu_derivative 1.0 where z > 0 and 0.0 elsewhere, including z == 0?"""
    z = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0], [1e-3, -1e-3, 7.0, -7.0, 0.0]])
    got = submission.call("relu_derivative", z)
    what = describe_call("relu_derivative(z)", z=z)
    check_array(got.value, what=what, shape=z.shape, hint="float64 zeros and ones of z's shape")
    check_unmodified(z, got.args[0], what=what, name="z")
    expected = np.array([[0.0, 0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 1.0, 0.0, 0.0]])
    hint = first_match(got.value, {cause("relu_derivative_at_zero"): (z >= 0).astype(float)},
                       "1.0 where z > 0, else 0.0")
    check_close(got.value, expected, what=what, rtol=0, atol=0, hint=hint)


@pytest.mark.points(1)
def test_tanh_values(submission, rng):
    """Does tanh match the hyperbolic tangent, including its limits at +-1000?"""
    z = np.concatenate([rng.uniform(-4, 4, size=6), [-1000.0, 1000.0]]).reshape(2, 4)
    got, what = _call(submission, "tanh", z)
    check_no_warnings(got.warnings, what=what, hint=cause("tanh_overflow"))
    check_close(got.value, np.tanh(z), what=what, hint="use np.tanh(z)")


@pytest.mark.points(1)
def test_tanh_derivative_values(submission, rng):
    """Is tanh_derivative 1 - tanh(z)**2, evaluated at the pre-activation z?"""
    z = np.concatenate([[0.0], rng.uniform(-3, 3, size=5)]).reshape(3, 2)
    got, what = _call(submission, "tanh_derivative", z)
    hint = first_match(got.value, {cause("derivative_of_output_form"): 1.0 - z * z},
                       "compute t = tanh(z), then return 1 - t**2")
    check_close(got.value, 1.0 - np.tanh(z) ** 2, what=what, hint=hint)


@pytest.mark.points(1)
def test_softmax_small_cases(submission, rng):
    """Is softmax row-wise: an exact small case, rows summing to 1 on a non-square input, and N == 1?"""
    z = np.array([[0.0, np.log(2.0), np.log(3.0)], [5.0, 5.0, 5.0], [np.log(4.0), 0.0, 0.0]])
    got, what = _call(submission, "softmax", z)
    # z is square, so the two usual axis mistakes give values of the right shape, told apart here.
    hint = first_match(got.value, mistaken_softmax(z), "out[i, j] = exp(z[i, j]) / sum_k exp(z[i, k]), row by row")
    check_close(got.value, np.array([[1 / 6, 2 / 6, 3 / 6], [1 / 3, 1 / 3, 1 / 3], [4 / 6, 1 / 6, 1 / 6]]),
                what=what, hint=hint)

    z = rng.normal(0.0, 2.0, size=(5, 3))
    got, what = _call(submission, "softmax", z)
    probs = got.value
    if np.any(probs < 0):
        fail(what, "non-negative probabilities", f"minimum {probs.min():.3g}", None)
    hint = cause("softmax_wrong_axis") if np.allclose(probs.sum(axis=0), 1.0) else \
        "divide exp(z) by each row's sum, keeping the axis (keepdims=True) so it broadcasts row by row"
    check_close(probs.sum(axis=1), np.ones(5), what=what + " (row sums)", hint=hint)
    e = np.exp(z)
    check_close(probs, e / e.sum(axis=1, keepdims=True), what=what, hint=hint)

    z = rng.normal(0.0, 3.0, size=(1, 6))  # a batch of one example
    got, what = _call(submission, "softmax", z)
    e = np.exp(z)
    check_close(got.value, e / e.sum(), what=what,
                hint="keep the batch axis: sum over axis=1 with keepdims=True works for N == 1 too")


@pytest.mark.points(1)
def test_softmax_large_entries(submission):
    """Is softmax finite, warning-free and exact for entries around 1e3 and 1e4?"""
    z = np.array([[1000.0, 1001.0, 1002.0],
                  [-1000.0, -1000.0, -1000.0],
                  [-10000.0, 0.0, 10000.0],
                  [10000.0, 10001.0, 10002.0]])
    got = submission.call("softmax", z)
    what = describe_call("softmax(z)", z=z)
    check_no_warnings(got.warnings, what=what, hint=cause("softmax_no_max_shift"))
    check_array(got.value, what=what, shape=z.shape,
                hint=cause("softmax_no_max_shift") if getattr(got.value, "shape", None) == z.shape else None)
    check_unmodified(z, got.args[0], what=what, name="z")
    hint = first_match(got.value, mistaken_softmax(z), "subtract each row's own max before exp, then divide by "
                                                       "each row's own sum")
    small = np.exp([0.0, 1.0, 2.0]) / np.exp([0.0, 1.0, 2.0]).sum()  # softmax ignores a shift per row
    expected = np.array([small, [1 / 3, 1 / 3, 1 / 3], [0.0, 0.0, 1.0], small])
    check_close(got.value, expected, what=what, hint=hint)
