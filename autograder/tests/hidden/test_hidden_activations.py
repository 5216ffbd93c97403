"""Hidden tests of activations.py: values against the reference on secret
inputs of several shapes and scales, and stability on secret extreme inputs."""
import numpy as np
import pytest

from nnkit.checks import check_close, check_no_warnings, check_unmodified, describe_call, first_match

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
    """What common mistakes in ``name`` would return on z, keyed by their hint."""
    with np.errstate(over="ignore"):
        return {
            "sigmoid": {"sigmoid is 1 / (1 + exp(-z)): check the sign in the exponent": 1.0 / (1.0 + np.exp(z))},
            "sigmoid_derivative": {
                "z * (1 - z) is the derivative written for the activation value; compute s = sigmoid(z) "
                "first, then return s * (1 - s)": z * (1.0 - z),
                "returned the sigmoid itself, not its derivative s * (1 - s)": 1.0 / (1.0 + np.exp(-z))},
            "relu_derivative": {"the derivative at z == 0 is 0.0 by the contract: use z > 0, not z >= 0":
                                (z >= 0).astype(np.float64)},
            "tanh_derivative": {"1 - z**2 is the derivative written for the activation value; "
                                "use 1 - tanh(z)**2": 1.0 - z * z},
        }.get(name, {})


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
        if name == "relu_derivative" and getattr(got.value, "dtype", None) == bool:
            hint = "return float64 zeros and ones, e.g. (z > 0).astype(np.float64), not a boolean mask"
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
    hint = ("exp(-z) overflows for z below about -709: for negative z use exp(z) / (1 + exp(z)), "
            "which only exponentiates non-positive numbers")
    hint = first_match(got.value, mistakes(name, z), hint)
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
        hint = first_match(got.value, {
            "normalised over the wrong axis: divide each row by its own sum (axis=1, keepdims=True)":
                np.exp(z) / np.exp(z).sum(axis=0, keepdims=True),
        }, "out[i, j] = exp(z[i, j]) / sum_k exp(z[i, k]), row by row")
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
    hint = ("subtract each row's own max before exp (z.max(axis=1, keepdims=True)); one max over "
            "the whole array lets rows far below it underflow to 0 / 0")
    check_no_warnings(got.warnings, what=what, hint=hint)
    check_close(got.value, reference.activations.softmax(z), what=what, hint=hint, reveal=False)
    check_unmodified(z, got.args[0], what=what, name="z")
