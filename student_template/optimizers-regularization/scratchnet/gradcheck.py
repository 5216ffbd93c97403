"""Numerical gradient checking (provided, not graded).

Compare the gradients of your ``backward`` with centered finite differences
of the loss. The check works on any network built from the assignment's
functions; it uses them only through their public names, so it checks your
code, not a hidden copy.

    from scratchnet.gradcheck import gradient_report, format_report
    print(format_report(gradient_report(params, X, Y, "relu")))

A correct backward pass on a small float64 network gives relative errors
around 1e-9 or below; anything above 1e-5 is almost always a bug. ReLU has a
kink at 0: if a pre-activation lies within ``eps`` of 0 the numerical
gradient is wrong there, so use random, non-degenerate inputs.

Scope: this is a debugging aid for small networks (each parameter entry
costs two forward passes), not something to run on MNIST-sized layers.
"""
from dataclasses import dataclass

import numpy as np

TINY = 1e-300
"""Floor of the denominator of relative_error, so two all-zero arrays compare as equal."""

DEFAULT_TOLERANCE = 1e-7
"""Relative error below which format_report marks a parameter as passing."""


def numerical_gradients(loss_fn, params, eps=1e-5):
    """Centered finite-difference gradients of a scalar function of a dict of arrays.

    Inputs:
    - loss_fn: function taking a dict shaped like ``params`` and returning a float.
    - params: dict of float arrays, e.g. "W1" (D, H), "b1" (H,), "W2" (H, C), "b2" (C,).
    - eps: step of the finite difference.

    Returns:
    - grads: dict with the same keys and shapes as params, where each entry is
      (loss_fn(p + eps * e) - loss_fn(p - eps * e)) / (2 * eps) for the unit
      vector e of that entry. The error of this formula shrinks like eps**2.

    ``params`` is not modified: loss_fn receives copies, one entry of which is
    nudged at a time.
    """
    work = {key: np.array(value, dtype=np.float64, copy=True) for key, value in params.items()}
    grads = {}
    for key, array in work.items():
        flat = array.reshape(-1)  # a view: nudging flat[i] nudges work[key]
        grad = np.zeros(flat.size)
        for i in range(flat.size):
            original = flat[i]
            flat[i] = original + eps
            plus = float(loss_fn(work))
            flat[i] = original - eps
            minus = float(loss_fn(work))
            flat[i] = original
            grad[i] = (plus - minus) / (2.0 * eps)
        grads[key] = grad.reshape(array.shape)
    return grads


def relative_error(a, b):
    """Relative distance between two arrays of the same shape.

    relative_error(a, b) = max_i |a_i - b_i| / max(max_i (|a_i| + |b_i|), TINY)

    The largest absolute difference is divided by the largest magnitude of
    the two arrays (not entry by entry), so entries that are both nearly zero
    cannot blow the ratio up through rounding noise. The result is 0 for
    equal arrays, symmetric in a and b, and at most 1.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"relative_error needs equal shapes, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    scale = float(np.max(np.abs(a) + np.abs(b)))
    return float(np.max(np.abs(a - b)) / max(scale, TINY))


@dataclass(frozen=True)
class GradientCheckRow:
    """The gradient check of one parameter array."""

    name: str
    """Key of the parameter, e.g. "W1"."""
    shape: tuple
    """Shape of the parameter, e.g. (D, H)."""
    rel_error: float
    """relative_error(analytic gradient, numerical gradient)."""

    def passed(self, tol=DEFAULT_TOLERANCE):
        """Is the relative error below ``tol``?"""
        return self.rel_error < tol


def gradient_report(params, X, Y, activation, backward_fn=None, forward_fn=None,
                    loss_fn=None, eps=1e-5):
    """Check ``backward`` against numerical gradients of the loss.

    Inputs:
    - params: dict "W1" (D, H), "b1" (H,), ..., "WL" (H, C), "bL" (C,).
    - X: inputs, shape (N, D).
    - Y: one-hot labels, shape (N, C).
    - activation: name of the hidden-layer activation.
    - backward_fn, forward_fn, loss_fn: the functions to check, with the
      signatures of ``backward``, ``forward`` and ``cross_entropy``; each
      defaults to the one in the scratchnet package.
    - eps: finite-difference step.

    Returns:
    - a list of GradientCheckRow, one per key of params, in the order of params.
    """
    if forward_fn is None or loss_fn is None:
        from scratchnet.forward import cross_entropy, forward

        forward_fn = forward if forward_fn is None else forward_fn
        loss_fn = cross_entropy if loss_fn is None else loss_fn
    if backward_fn is None:
        from scratchnet.backward import backward as backward_fn

    probs, cache = forward_fn(params, X, activation)
    analytic = backward_fn(params, cache, Y, activation)
    numeric = numerical_gradients(
        lambda p: loss_fn(forward_fn(p, X, activation)[0], Y), params, eps=eps
    )
    rows = []
    for key, value in params.items():
        if key not in analytic:
            raise KeyError(f"backward returned no gradient for {key!r} (got keys {sorted(analytic)})")
        grad = np.asarray(analytic[key])
        if grad.shape != np.shape(value):
            raise ValueError(
                f"gradient of {key!r} has shape {grad.shape}, expected {np.shape(value)} "
                "(the shape of the parameter)"
            )
        rows.append(GradientCheckRow(key, tuple(np.shape(value)), relative_error(grad, numeric[key])))
    return rows


def format_report(rows, tol=DEFAULT_TOLERANCE):
    """A table of a gradient report, one line per parameter, with a verdict.

    Example:

        param  shape        rel. error  (ok below 1e-07)
        W1     (4, 5)         3.1e-10   ok
        b1     (5,)           2.2e-11   ok
    """
    lines = [f"{'param':<6} {'shape':<12} {'rel. error':>10}  (ok below {tol:.0e})"]
    for row in rows:
        verdict = "ok" if row.passed(tol) else "CHECK THIS GRADIENT"
        lines.append(f"{row.name:<6} {str(row.shape):<12} {row.rel_error:>10.1e}  {verdict}")
    return "\n".join(lines)
