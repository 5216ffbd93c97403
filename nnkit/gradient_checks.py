"""Checking a whole set of gradients, with a hint that names the likely mistake.

Shared by the public and hidden backward tests (shipped with the public tests).
"""
from __future__ import annotations

import numpy as np

from nnkit.checks import check_array, check_keys, check_relative_error, first_match, scale_factor

GRAD_TOL = 1e-6
"""Largest accepted relative error of a gradient (a correct backward gives about 1e-9)."""


def gradient_hint(key: str, got, expected, N: int, L: int, mistakes: dict | None = None) -> str:
    """The most likely cause of a wrong gradient for ``key`` ("W2", "b1", ...).

    ``mistakes`` maps a hint to the gradients a known mistake produces; the
    first one ``got`` equals wins. Then scale factors (N, 1/N, -1) name a
    missing or doubled 1/N or a flipped sign; otherwise the layer decides.
    """
    known = first_match(got, {hint: grads[key] for hint, grads in (mistakes or {}).items()})
    if known:
        return known
    factor = scale_factor(got, expected)
    if factor is not None and np.isclose(factor, N):
        return "missing the 1/N of the mean loss: dZ_L = (probs - Y) / N"
    if factor is not None and np.isclose(factor, 1.0 / N):
        return "divided by N twice: dZ_L already carries the 1/N, so linear_backward must not divide again"
    if factor is not None and np.isclose(factor, -1.0):
        return "gradient with the wrong sign: dZ_L = (probs - Y) / N, not (Y - probs) / N"
    if int(key[1:]) == L:
        return ("the output layer's gradient is wrong: start from softmax_cross_entropy_backward(probs, Y) "
                "and pass the layer's input A_{L-1} (not its output) to linear_backward")
    return (f"the layers above are right but {key} is not: in hidden layers multiply dA by the "
            "activation's derivative at the pre-activation Z of that layer (not at the activation A, "
            "and not at the Z of the layer above)")


def check_gradients(grads, params: dict, expected: dict, what: str, N: int, *,
                    against: str = "centered finite differences of the loss",
                    mistakes: dict | None = None) -> None:
    """Compare every gradient with ``expected``, last layer first (an error there flows into every
    layer below), within GRAD_TOL relative error; shapes first, with their own hints."""
    check_keys(grads, list(params), what=what, hint="one gradient per parameter, with the same keys as params")
    L = sum(1 for key in params if key.startswith("W"))
    for l in range(L, 0, -1):
        for key in (f"W{l}", f"b{l}"):
            shape_hint = ("db must have shape (n_l,): sum dZ over axis 0 (the examples) without keepdims"
                          if key.startswith("b") else "dW has the shape of W, (n_{l-1}, n_l)")
            check_array(grads[key], what=f"{what}: grads[{key!r}]", shape=params[key].shape, hint=shape_hint)
            check_relative_error(grads[key], expected[key], what=f"{what}: grads[{key!r}]", tol=GRAD_TOL,
                                 against=against,
                                 hint=gradient_hint(key, grads[key], expected[key], N, L, mistakes))
