"""Checking a whole set of gradients, with a hint that names the likely mistake.

Shared by the public and hidden backward tests (shipped with the public tests).
"""
from __future__ import annotations

import numpy as np

from nnkit.course.causes import Cause, cause
from nnkit.testing.checks import check_array, check_keys, check_relative_error, first_match, relative_error, scale_factor

GRAD_TOL = 1e-6
"""Largest accepted relative error of a gradient (a correct backward gives about 1e-9)."""


def shape_hint(key: str, got, expected_shape: tuple, N: int):
    """The cause of a gradient of the wrong shape, when the shape tells it; else advice."""
    shape = getattr(got, "shape", None)
    if key.startswith("b"):
        n = expected_shape[0]
        if shape == (1, n):
            return cause("db_keepdims")
        if shape == (N,) and N != n:
            return cause("db_wrong_axis")
        return "db must have shape (n_l,): sum dZ over axis 0 (the examples) without keepdims"
    n_in, n_out = expected_shape
    if shape == (n_out, n_in) and n_in != n_out:
        return cause("dW_transposed")
    if shape == (n_out, n_out) and n_in != n_out:
        return cause("linear_backward_wrong_input")
    return "dW has the shape of W, (n_{l-1}, n_l)"


def gradient_hint(key: str, got, expected, N: int, L: int, mistakes=None):
    """The most likely cause of a wrong gradient for ``key`` ("W2", "b1", ...), or advice.

    ``mistakes`` maps a cause to the gradients a known mistake produces (or is
    a list of such pairs); the first one ``got`` equals wins. Then a transposed
    square dW, and scale factors (N, 1/N, -1) that name a missing or doubled
    1/N or a flipped sign; otherwise the layer decides the advice.
    """
    pairs = mistakes.items() if isinstance(mistakes, dict) else (mistakes or [])
    known = first_match(got, [(hint, grads[key]) for hint, grads in pairs if key in grads])
    if known:
        return known
    expected = np.asarray(expected)
    if key.startswith("W") and expected.ndim == 2 and expected.shape[0] == expected.shape[1]:
        known = first_match(got, {cause("dW_transposed"): expected.T})
        if known and not np.allclose(expected, expected.T):
            return known
    factor = scale_factor(got, expected)
    if factor is not None and N > 1 and np.isclose(factor, N):
        return cause("dZ_missing_1_over_N")
    if factor is not None and N > 1 and np.isclose(factor, 1.0 / N):
        return cause("divided_by_N_twice")
    if factor is not None and np.isclose(factor, -1.0):
        return cause("gradient_sign")
    if int(key[1:]) == L:
        return ("the output layer's gradient is wrong: start from softmax_cross_entropy_backward(probs, Y) "
                "and pass the layer's input A_{L-1} (not its output) to linear_backward")
    return (f"the layers above are right but {key} is not: in hidden layers multiply dA by the "
            "activation's derivative at the pre-activation Z of that layer (not at the activation A, "
            "and not at the Z of the layer above)")


def ignores_Z(grads: dict, cache: dict, L: int, activation: str, rerun):
    """The cause of wrong hidden-layer gradients that do not depend on the pre-activations Z, or None.

    A correct backward reads each hidden Z{l} (the derivative is taken there).
    ``rerun(cache, activation)`` runs the same backward on a changed cache: if
    its gradients stay the same with every hidden Z set to ones and relu (whose
    derivative there is 1), the derivative is missing; if they stay the same
    with Z{l} replaced by A{l}, the derivative is taken at A. Nothing of the
    expected gradients is computed here: the student's own backward answers.
    """
    def same(changed, name):
        try:
            other = rerun(changed, name)
            return isinstance(other, dict) and all(
                isinstance(other.get(k), np.ndarray) and np.shape(other[k]) == np.shape(v)
                and np.allclose(other[k], v, rtol=1e-9, atol=1e-12) for k, v in grads.items())
        except Exception:  # the rerun failed: nothing recognised
            return False

    hidden = range(1, L)
    ones = dict(cache) | {f"Z{l}": np.ones_like(cache[f"Z{l}"]) for l in hidden}
    if same(ones, "relu"):
        return cause("derivative_missing")
    at_A = dict(cache) | {f"Z{l}": cache[f"A{l}"] for l in hidden}
    if same(at_A, activation):
        return cause("derivative_at_A")
    return None


def check_gradients(grads, params: dict, expected: dict, what: str, N: int, *,
                    against: str = "centered finite differences of the loss",
                    mistakes=None, cache: dict | None = None, activation: str | None = None, rerun=None) -> None:
    """Compare every gradient with ``expected``, last layer first (an error there flows into every
    layer below), within GRAD_TOL relative error; shapes first, with their own hints.

    With ``cache``, ``activation`` and ``rerun`` (the student's backward on another cache, see
    ignores_Z), a wrong hidden-layer gradient that no other check explains is tested for a
    derivative missing or taken at A."""
    check_keys(grads, list(params), what=what,
               hint=cause("missing_gradients") if isinstance(grads, dict) else
               "one gradient per parameter, with the same keys as params")
    L = sum(1 for key in params if key.startswith("W"))
    for l in range(L, 0, -1):
        for key in (f"W{l}", f"b{l}"):
            check_array(grads[key], what=f"{what}: grads[{key!r}]", shape=params[key].shape,
                        hint=shape_hint(key, grads[key], params[key].shape, N))
            hint = None
            if not relative_error(grads[key], expected[key]) <= GRAD_TOL:  # the hints cost calls: failures only
                hint = gradient_hint(key, grads[key], expected[key], N, L, mistakes)
                if not isinstance(hint, Cause) and rerun is not None and l < L:
                    hint = ignores_Z(grads, cache, L, activation, rerun) or hint
            check_relative_error(grads[key], expected[key], what=f"{what}: grads[{key!r}]", tol=GRAD_TOL,
                                 against=against, hint=hint)
