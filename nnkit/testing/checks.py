"""Assertions whose failure messages teach.

Every message names the call and its input shapes, what was expected, what
came back, the tolerance, and (when the test knows one) the most likely
cause. Hidden tests pass ``reveal=False`` so no expected value is printed.

A ``hint`` is either a recognised mistake from the assignment's catalogue,
``cause("db_keepdims")`` (nnkit.course.causes): the message ends "Likely cause: ..."
and the failure carries the cause's id, by which feedback groups failures;
or a plain string of advice ("Hint: ..."), for a failure whose cause the test
cannot tell.
"""
from __future__ import annotations

from typing import Any, Union

import numpy as np

from nnkit.course.causes import Cause, cause, with_cause

RTOL = 1e-7
"""Default relative tolerance against the reference (float64, same algorithm)."""
ATOL = 1e-10
"""Default absolute tolerance against the reference."""


IN_PLACE = "input_modified_in_place"
"""Cause (in every assignment's catalogue) named by check_unmodified."""
WRONG_DTYPE = "wrong_dtype"
"""Cause (in every assignment's catalogue) of an array of the wrong dtype, unless the test names another."""

Hint = Union[Cause, str, None]
"""A recognised cause from the catalogue, a plain string of advice, or nothing."""


class CheckFailed(AssertionError):
    """A check failed; the message is meant for the student as it is.

    ``cause`` is the id of the likely cause in the catalogue ("" when the
    check recognised none).
    """

    def __init__(self, message: str, cause: str = ""):
        super().__init__(message)
        self.cause = cause


def shape_of(value: Any) -> str:
    """Short description of a value: "array (4, 3) float64", "dict of 4 arrays", "float"."""
    if isinstance(value, np.ndarray):
        return f"array {tuple(value.shape)} {value.dtype}"
    if isinstance(value, dict):
        return f"dict with keys {sorted(value)}"
    if isinstance(value, (list, tuple)):
        return f"{type(value).__name__} of {len(value)} items"
    return type(value).__name__


def describe_call(call: str, **inputs: Any) -> str:
    """ "softmax(z) with z of shape (4, 3)" from the call and its array inputs."""
    parts = []
    for name, value in inputs.items():
        if isinstance(value, np.ndarray):
            parts.append(f"{name} of shape {tuple(value.shape)}")
        elif isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values()):
            shapes = ", ".join(f"{k} {tuple(v.shape)}" for k, v in value.items())
            parts.append(f"{name} = {{{shapes}}}")
        else:
            parts.append(f"{name}={value!r}")
    return f"{call} with " + ", ".join(parts) if parts else call


def fail(what: str, expected: str, got: str, hint: Hint = None) -> None:
    """Raise CheckFailed with the standard four-part message (the fourth: the cause or the advice)."""
    message = f"{what}: expected {expected}, got {got}."
    if isinstance(hint, Cause):
        raise CheckFailed(with_cause(message, hint), cause=hint.id)
    if hint:
        message += f" Hint: {hint}"
    raise CheckFailed(message)


def check_array(value: Any, *, what: str, shape: tuple, dtype=np.float64,
                finite: bool = True, hint: Hint = None) -> np.ndarray:
    """Check type, shape, dtype and finiteness of an array result; return it.

    A wrong dtype names the cause WRONG_DTYPE unless ``hint`` is a cause:
    advice written for a wrong shape would mislead there.
    """
    if not isinstance(value, np.ndarray):
        fail(what, f"a numpy array of shape {shape}", shape_of(value),
             hint or "return the array itself (not a list, a tuple or None)")
    if value.shape != tuple(shape):
        fail(what, f"shape {tuple(shape)}", f"shape {value.shape}", hint)
    if dtype is not None and value.dtype != np.dtype(dtype):
        fail(what, f"dtype {np.dtype(dtype)}", f"dtype {value.dtype}",
             hint if isinstance(hint, Cause) else cause(WRONG_DTYPE))
    if finite and value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        bad = np.argwhere(~np.isfinite(value))[0]
        fail(what, "finite values", f"{value[tuple(bad)]} at index {tuple(int(i) for i in bad)}", hint)
    return value


def check_close(actual: np.ndarray, expected: np.ndarray, *, what: str,
                rtol: float = RTOL, atol: float = ATOL, hint: Hint = None,
                reveal: bool = True) -> None:
    """Check values elementwise: |actual - expected| <= atol + rtol * |expected|."""
    expected = np.asarray(expected)
    check_array(actual, what=what, shape=expected.shape, dtype=expected.dtype, hint=hint)
    err = np.abs(actual - expected)
    bound = atol + rtol * np.abs(expected)
    if np.all(err <= bound):
        return
    worst = np.unravel_index(np.argmax(err - bound), err.shape) if err.ndim else ()
    index = tuple(int(i) for i in worst)
    got = f"max abs error {float(err[worst]):.3g} at index {index}"
    if reveal:
        got += f" (expected {float(expected[worst]):.6g}, got {float(actual[worst]):.6g})"
    else:
        got += f" (your value there: {float(actual[worst]):.6g})"
    fail(what, f"values within rtol={rtol:g}, atol={atol:g} of the "
               + ("reference" if not reveal else "expected values"), got, hint)


def check_scalar(actual: Any, expected: float, *, what: str, rtol: float = RTOL,
                 atol: float = ATOL, hint: Hint = None, reveal: bool = True) -> None:
    """Check a float result (Python float or numpy float64 scalar)."""
    if isinstance(actual, np.ndarray) and actual.shape == ():
        actual = actual[()]
    if not isinstance(actual, (float, np.floating)) or isinstance(actual, np.float32):
        fail(what, "a float", shape_of(actual), hint or "return a single float, e.g. float(loss)")
    if not np.isfinite(actual):
        fail(what, "a finite float", repr(float(actual)), hint)
    if abs(actual - expected) > atol + rtol * abs(expected):
        exp = f"{expected:.8g}" if reveal else f"the reference value (rtol={rtol:g})"
        fail(what, exp, f"{float(actual):.8g}", hint)


def check_unmodified(before: Any, after: Any, *, what: str, name: str) -> None:
    """Check that an input came back exactly as it went in."""
    if isinstance(before, dict):
        for key in before:
            check_unmodified(before[key], after.get(key) if isinstance(after, dict) else None,
                             what=what, name=f"{name}[{key!r}]")
        return
    if isinstance(before, np.ndarray):
        if not (isinstance(after, np.ndarray) and after.shape == before.shape
                and np.array_equal(after, before, equal_nan=True)):
            fail(what, f"{name} left unchanged", f"{name} modified in place", cause(IN_PLACE))


def check_no_warnings(warnings: list[str], *, what: str, hint: Hint = None) -> None:
    """Check that a call emitted no warnings (overflow, invalid value, ...)."""
    if warnings:
        fail(what, "no warnings", f"{len(warnings)} warning(s), first: {warnings[0]}", hint)


def check_keys(value: Any, keys, *, what: str, hint: Hint = None) -> dict:
    """Check that a result is a dict holding at least ``keys``."""
    if not isinstance(value, dict):
        fail(what, f"a dict with keys {sorted(keys)}", shape_of(value), hint)
    missing = sorted(set(keys) - set(value))
    if missing:
        fail(what, f"keys {sorted(keys)}", f"keys {sorted(value)} (missing {missing})", hint)
    return value


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """||a - b|| / max(||a|| + ||b||, 1e-12), Euclidean norms over all entries.

    The gradient-check error measure: about 1e-9 for a correct float64
    gradient on a small network, near 1 for a wrong one.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def check_relative_error(actual: Any, expected: np.ndarray, *, what: str, tol: float,
                         against: str = "the reference", hint: Hint = None) -> float:
    """Check an array result by its relative_error to ``expected``; return the error.

    The measure of gradient checks: one number for the whole array, so a
    few tiny entries cannot dominate it. ``against`` names what ``expected``
    is ("centered finite differences of the loss", ...). Expected values
    are never printed.
    """
    expected = np.asarray(expected)
    check_array(actual, what=what, shape=expected.shape, dtype=expected.dtype, hint=hint)
    err = relative_error(actual, expected)
    if not err <= tol:
        fail(what, f"a relative error of at most {tol:g} against {against}",
             f"a relative error of {err:.3g}", hint)
    return err


def numerical_gradients(f, params: dict, eps: float = 1e-6, *, many=None) -> dict:
    """Centered finite differences of a scalar function of a dict of arrays.

    Inputs:
    - f: function taking a dict shaped like ``params`` and returning a float (None with ``many``).
    - params: dict of float64 arrays (not modified).
    - eps: step; the formula's error shrinks like eps**2.
    - many: optional function taking a list of such dicts and returning the
      list of their values; given, it replaces ``f`` and is called once with
      every nudged point (a sandboxed submission then answers in one round
      trip instead of one per point).

    Returns a dict with the keys and shapes of ``params``: entry i of key k is
    (f(p + eps e) - f(p - eps e)) / (2 eps), e the unit vector of that entry.
    """
    base = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params.items()}
    points, where = [], []
    for key, array in base.items():
        for i in range(array.size):
            for step in (eps, -eps):
                point = {k: v.copy() for k, v in base.items()}
                flat = point[key].reshape(-1)  # a view: nudging flat[i] nudges point[key]
                flat[i] = flat[i] + step
                points.append(point)
            where.append((key, i))
    values = many(points) if many is not None else [f(p) for p in points]
    if len(values) != len(points):
        raise ValueError(f"many() returned {len(values)} values for {len(points)} points")
    grads = {key: np.zeros(array.size) for key, array in base.items()}
    for n, (key, i) in enumerate(where):
        grads[key][i] = (float(values[2 * n]) - float(values[2 * n + 1])) / (2.0 * eps)
    return {key: grad.reshape(base[key].shape) for key, grad in grads.items()}


def scale_factor(actual: Any, expected: Any, rtol: float = 1e-6) -> float | None:
    """The number c with actual == c * expected (within rtol), or None.

    Lets a test name a likely cause: c == N is a missing 1/N, c == -1 a
    flipped sign. None when the shapes differ or no single factor fits.
    """
    if not (isinstance(actual, np.ndarray) and isinstance(expected, np.ndarray)):
        return None
    if actual.shape != expected.shape or actual.dtype.kind != "f" or not np.all(np.isfinite(actual)):
        return None
    norm = float(np.vdot(expected, expected))
    if norm == 0.0:
        return None
    c = float(np.vdot(expected, actual)) / norm
    if np.linalg.norm(actual - c * expected) <= rtol * max(np.linalg.norm(actual), 1e-300):
        return c
    return None


def first_match(value: Any, candidates, default: Hint = None,
                rtol: float = 1e-6, atol: float = 1e-9) -> Hint:
    """The hint of the first candidate that ``value`` equals, else ``default``.

    ``candidates`` maps a hint (usually a cause, ``cause("derivative_at_A")``)
    to the array a function with that mistake would return, so a failure can
    name the mistake it recognises; a list of (hint, array) pairs lets one
    cause come with several arrays.
    """
    if isinstance(value, np.ndarray):
        pairs = candidates.items() if isinstance(candidates, dict) else candidates
        for hint, candidate in pairs:
            candidate = np.asarray(candidate)
            if (value.shape == candidate.shape and value.dtype.kind in "biuf"
                    and np.allclose(value, candidate, rtol=rtol, atol=atol)):
                return hint
    return default


def check_tuple(value: Any, names: tuple[str, ...], *, what: str, hint: Hint = None) -> tuple:
    """Check that a result is a tuple (or list) of ``len(names)`` items; return it as a tuple.

    ``names`` are the contract's names of the items, e.g. ("probs", "cache"),
    so a wrong return reads "expected a tuple (probs, cache)".
    """
    expected = f"a tuple ({', '.join(names)})"
    if not isinstance(value, (tuple, list)):
        fail(what, expected, shape_of(value), hint or f"return {', '.join(names)}")
    if len(value) != len(names):
        fail(what, expected, f"{type(value).__name__} of {len(value)} items", hint or f"return {', '.join(names)}")
    return tuple(value)


def trajectory_distance(params: dict, reference_final: dict, start: dict) -> float:
    """How far trained ``params`` are from the reference's, relative to how far the reference moved:
    max over keys of ||params[k] - reference_final[k]|| / ||reference_final[k] - start[k]||. Correct
    implementations land near 1e-14 (rounding); training along another path lands near 1."""
    worst = 0.0
    for key, ref in reference_final.items():
        moved = max(float(np.linalg.norm(ref - start[key])), 1e-12)
        worst = max(worst, float(np.linalg.norm(params[key] - ref)) / moved)
    return worst
