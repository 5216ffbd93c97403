"""Hidden tests of activations.py: values against the reference on secret
inputs of several shapes and scales, and stability on secret extreme inputs."""
import numpy as np
import pytest

from nnkit.course.causes import cause
from nnkit.testing.checks import check_close, check_no_warnings, check_unmodified, describe_call, first_match

pytestmark = pytest.mark.part("activations")

HINTS = {
    "sigmoid": "sigmoid(z) = 1 / (1 + exp(-z)) for every entry and every shape of z",
    "sigmoid_derivative": "evaluate at the pre-activation: s = sigmoid(z), then s * (1 - s)",
    "relu": "max(0, z) entry by entry (np.maximum(z, 0.0), not np.max)",
    "relu_derivative": "1.0 where z > 0 and 0.0 elsewhere, including z == 0, as float64",
    "tanh": "np.tanh(z), entry by entry",
    "tanh_derivative": "evaluate at the pre-activation: 1 - tanh(z)**2 (not 1 - z**2)",
}


def mistakes(name, z):
    """What common mistakes in ``name`` would return on z, keyed by their cause."""
    with np.errstate(over="ignore"):
        return {
            "sigmoid": {cause("sigmoid_sign_in_exponent"): 1.0 / (1.0 + np.exp(z))},
            "sigmoid_derivative": {cause("derivative_of_output_form"): z * (1.0 - z),
                                   cause("derivative_returns_activation"): 1.0 / (1.0 + np.exp(-z))},
            "relu_derivative": {cause("relu_derivative_at_zero"): (z >= 0).astype(np.float64)},
            "tanh_derivative": {cause("derivative_of_output_form"): 1.0 - z * z,
                                cause("derivative_returns_activation"): np.tanh(z)},
        }.get(name, {})


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


def _inputs(rng):
    """Secret inputs of several shapes: a batch, a vector, a 3-d array and a single row,
    with some exact zeros (where relu_derivative must give 0.0)."""
    arrays = [rng.normal(0.0, 4.0, size=(int(rng.integers(2, 9)), int(rng.integers(2, 9)))),
              rng.normal(0.0, 4.0, size=int(rng.integers(3, 12))),
              rng.normal(0.0, 4.0, size=(2, 3, int(rng.integers(2, 5)))),
              rng.normal(0.0, 4.0, size=(1, int(rng.integers(2, 9))))]
    for z in arrays:
        z.reshape(-1)[rng.integers(0, z.size, size=2)] = 0.0
    return arrays


@pytest.mark.points(1)
@pytest.mark.parametrize("name", list(HINTS))
def test_elementwise_matches_reference(submission, reference, rng, name):
    """Does each elementwise function match the reference on secret inputs of every shape?"""
    for z in _inputs(rng):
        got = submission.call(name, z)
        what = describe_call(f"{name}(z)", z=z)
        expected = getattr(reference.activations, name)(z)
        hint = first_match(got.value, mistakes(name, z), HINTS[name])
        check_close(got.value, expected, what=what, hint=hint, reveal=False)
        check_unmodified(z, got.args[0], what=what, name="z")


@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["sigmoid", "sigmoid_derivative"])
def test_sigmoid_stable_matches_reference(submission, reference, rng, name):
    """Do sigmoid and its derivative stay finite and warning-free on secret inputs up to +-1000?"""
    z = rng.uniform(-1000.0, 1000.0, size=(int(rng.integers(3, 8)), 6))
    z[0, :4] = [-1000.0, 1000.0, -709.0 - rng.uniform(0, 5), 709.0 + rng.uniform(0, 5)]
    got = submission.call(name, z)
    what = describe_call(f"{name}(z)", z=z)
    hint = first_match(got.value, mistakes(name, z), cause("exp_overflow"))
    check_no_warnings(got.warnings, what=what, hint=hint)
    check_close(got.value, getattr(reference.activations, name)(z), what=what, hint=hint, reveal=False)
    check_unmodified(z, got.args[0], what=what, name="z")


@pytest.mark.points(1)
def test_softmax_matches_reference(submission, reference, rng):
    """Does softmax match the reference on secret batches, including a single row?"""
    for shape in [(int(rng.integers(2, 9)), int(rng.integers(2, 9))), (1, int(rng.integers(2, 9))),
                  (int(rng.integers(2, 9)), 1)]:
        z = rng.normal(0.0, 3.0, size=shape)
        got = submission.call("softmax", z)
        what = describe_call("softmax(z)", z=z)
        expected = reference.activations.softmax(z)
        hint = first_match(got.value, mistaken_softmax(z), "out[i, j] = exp(z[i, j]) / sum_k exp(z[i, k]), row by row")
        check_close(got.value, expected, what=what, hint=hint, reveal=False)
        check_unmodified(z, got.args[0], what=what, name="z")


@pytest.mark.points(1)
def test_softmax_large_matches_reference(submission, reference, rng):
    """Is softmax finite, warning-free and exact on secret rows with entries up to 1e4?"""
    N, C = int(rng.integers(4, 9)), int(rng.integers(3, 7))
    z = rng.normal(0.0, 1.0, size=(N, C)) * rng.choice([1.0, 30.0, 1e3], size=(N, 1))
    z += rng.uniform(-1e4, 1e4, size=(N, 1))
    z[0] = rng.uniform(9000.0, 10000.0, size=C)
    z[1] = -rng.uniform(9000.0, 10000.0, size=C)
    got = submission.call("softmax", z)
    what = describe_call("softmax(z)", z=z)
    check_no_warnings(got.warnings, what=what, hint=cause("softmax_no_max_shift"))
    finite = isinstance(got.value, np.ndarray) and got.value.dtype.kind == "f" and np.all(np.isfinite(got.value))
    hint = first_match(got.value, mistaken_softmax(z), cause("softmax_no_max_shift") if not finite else
                       "subtract each row's own max before exp, then divide by each row's own sum")
    check_close(got.value, reference.activations.softmax(z), what=what, hint=hint, reveal=False)
    check_unmodified(z, got.args[0], what=what, name="z")
