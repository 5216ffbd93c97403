"""Measuring what one call into student code does: how often it calls named
contract functions, and how much array arithmetic it performs.

``measured_call(fn, args, kwargs, count=..., max_work=..., max_calls=...)``
runs ``fn`` with every array of its arguments viewed as a ``MeasuredArray``.
That subclass of ``np.ndarray`` tallies each NumPy operation it takes part
in (and hands the subclass on to its results, so arrays derived from the
arguments are measured too); ``sys.setprofile`` counts calls of the named
contract functions wherever they are called from.

The work of an operation is counted in element operations, a stand-in for
its arithmetic: a product of an (n, k) and a (k, m) array (``@``,
``np.dot``, ``np.einsum``...) costs n * k * m, a reduction the size of its
input, a view or a question about an array (``np.transpose``, ``np.shape``)
nothing, any other operation the size of its largest operand or result. The
numbers are deterministic (no clocks), so a test can compare the work of two
calls, e.g. a backward pass against a forward pass of the same network.
Work done on arrays converted back to plain ``np.ndarray`` (``np.asarray``)
or on Python numbers is not seen; call counts still are.

Depends only on NumPy and the standard library: it runs inside the sandbox.
"""
from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field

import numpy as np


class LimitReached(BaseException):
    """Raised inside the measured call once it exceeds its work or call limit, to stop it early.

    A BaseException, so that the student's ``except Exception`` does not swallow it."""


@dataclass
class Profile:
    """What one measured call did."""

    calls: dict[str, int] = field(default_factory=dict)
    """Contract function name -> how many times it was called (only the names asked for)."""
    work: int = 0
    """Element operations of the NumPy operations on measured arrays (see the module docstring)."""
    operations: int = 0
    """Number of those NumPy operations."""
    stopped: str = ""
    """"work", "calls" or "time" when the call was stopped on exceeding that limit; "" when it ran to its end."""
    cpu_seconds: float = 0.0
    """Processor time of the call in the student's process, measurements included."""

    def to_plain(self) -> dict:
        return {"calls": dict(self.calls), "work": int(self.work), "operations": int(self.operations),
                "stopped": self.stopped, "cpu_seconds": float(self.cpu_seconds)}

    @classmethod
    def from_plain(cls, data) -> "Profile":
        """The Profile a worker sent; ValueError when it is malformed."""
        if not isinstance(data, dict) or set(data) != {"calls", "work", "operations", "stopped", "cpu_seconds"}:
            raise ValueError("a profile must hold calls, work, operations, stopped and cpu_seconds")
        calls = data["calls"]
        if not isinstance(calls, dict) or not all(isinstance(k, str) and isinstance(v, int) and v >= 0
                                                   for k, v in calls.items()):
            raise ValueError("profile calls must map names to counts")
        for key in ("work", "operations"):
            if not isinstance(data[key], int) or isinstance(data[key], bool) or data[key] < 0:
                raise ValueError(f"profile {key} must be a count")
        if data["stopped"] not in ("", "work", "calls", "time"):
            raise ValueError("profile stopped must be '', 'work', 'calls' or 'time'")
        seconds = data["cpu_seconds"]
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds < float("inf"):
            raise ValueError("profile cpu_seconds must be a duration")
        return cls(calls=dict(calls), work=data["work"], operations=data["operations"], stopped=data["stopped"],
                   cpu_seconds=float(seconds))


class _Tally:
    """The running counts of the call being measured."""

    def __init__(self, max_work: float | None, max_calls: int | None):
        self.profile = Profile()
        self.max_work = max_work
        self.max_calls = max_calls
        self.depth = 0
        """Nesting of NumPy functions: the operations inside one are part of its own work."""

    def add_work(self, work: float) -> None:
        self.profile.work += int(work)
        self.profile.operations += 1
        if self.max_work is not None and self.profile.work > self.max_work and not self.profile.stopped:
            self.profile.stopped = "work"
        self.check()

    def check(self) -> None:
        if self.profile.stopped:
            raise LimitReached(self.profile.stopped)


_ACTIVE: _Tally | None = None
"""The tally of the measured call in progress (None outside one)."""


def _size(value) -> int:
    return int(value.size) if isinstance(value, (np.ndarray, np.generic)) else 1


def _arrays(values):
    """The arrays among ``values`` and inside lists or tuples of them (one level)."""
    for value in values:
        if isinstance(value, (list, tuple)):
            yield from (v for v in value if isinstance(v, np.ndarray))
        elif isinstance(value, np.ndarray):
            yield value


def _product_work(a, b, out) -> float:
    """Multiply-adds of a product: for (n, k) times (k, m) into (n, m), sqrt(nk * km * nm) = n * k * m."""
    return math.sqrt(float(_size(a)) * _size(b) * max(_size(out), 1))


def _largest(inputs, result) -> int:
    results = result if isinstance(result, tuple) else (result,)
    return max([_size(v) for v in (*inputs, *results) if isinstance(v, (np.ndarray, np.generic))] or [1])


def ufunc_work(ufunc, method: str, inputs: tuple, result) -> float:
    """Element operations of ``ufunc.method(*inputs)`` that returned ``result``."""
    if method in ("reduce", "accumulate", "reduceat"):
        return _size(inputs[0])
    if ufunc is np.matmul and method == "__call__" and len(inputs) >= 2:
        return _product_work(inputs[0], inputs[1], result)
    return _largest(inputs, result)


_PRODUCTS = {np.dot, np.inner, np.vdot, np.outer, np.tensordot, np.kron, np.cross}


def _einsum_work(args, result) -> float:
    subscripts, operands = args[0], args[1:]
    if isinstance(subscripts, str) and "." not in subscripts:
        inputs = subscripts.replace(" ", "").split("->")[0].split(",")
        if len(inputs) == len(operands):
            dims = {}
            for letters, operand in zip(inputs, operands):
                for letter, n in zip(letters, getattr(operand, "shape", ())):
                    dims[letter] = n
            return float(math.prod(dims.values())) if dims else 1.0
    arrays = list(_arrays(args))
    if len(arrays) == 2:
        return _product_work(arrays[0], arrays[1], result)
    return _largest(arrays, result)


def function_work(func, args: tuple, result) -> float:
    """Element operations of the NumPy function ``func(*args)`` that returned ``result``.

    Functions that return no new array data count nothing: views (``np.transpose``, ``np.reshape``...) and
    facts about arrays (``np.shape``, ``np.ndim``...), so asking them in a loop costs no work."""
    if func in _PRODUCTS and len(args) >= 2:
        return _product_work(args[0], args[1], result)
    if func is np.einsum:
        return _einsum_work(args, result)
    results = [r for r in (result if isinstance(result, (tuple, list)) else (result,))
               if isinstance(r, (np.ndarray, np.generic))]
    if all(isinstance(r, np.ndarray) and not r.flags.owndata for r in results):  # also: no array at all
        return 0
    return _largest(list(_arrays(args)), tuple(results))


def _plain(value):
    return value.view(np.ndarray) if isinstance(value, MeasuredArray) else value


def _measured(value):
    """``value`` (an array, or a tuple or list of them) with its arrays viewed as MeasuredArray."""
    if type(value) is np.ndarray:
        return value.view(MeasuredArray)
    if isinstance(value, tuple):
        return tuple(_measured(v) for v in value)
    if isinstance(value, list):
        return [_measured(v) for v in value]
    return value


class MeasuredArray(np.ndarray):
    """An ndarray whose NumPy operations are tallied while a measured call runs."""

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        outs = kwargs.get("out")
        if outs is not None:
            kwargs["out"] = tuple(_plain(o) for o in outs)
        plain_inputs = tuple(_plain(x) for x in inputs)
        result = getattr(ufunc, method)(*plain_inputs, **kwargs)
        tally = _ACTIVE
        if tally is not None and tally.depth == 0:
            tally.add_work(ufunc_work(ufunc, method, plain_inputs, result))
        if method == "at":
            return None
        if outs is None:
            return _measured(result)
        results = result if isinstance(result, tuple) else (result,)
        merged = tuple(o if o is not None else _measured(r) for o, r in zip(outs, results))
        return merged if isinstance(result, tuple) else merged[0]

    def __array_function__(self, func, types, args, kwargs):
        tally = _ACTIVE
        if tally is not None:
            tally.depth += 1
        try:
            result = super().__array_function__(func, types, args, kwargs)
        finally:
            if tally is not None:
                tally.depth -= 1
        if tally is not None and tally.depth == 0 and result is not NotImplemented:
            tally.add_work(function_work(func, args, result))
        return _measured(result)


def measure_tree(value):
    """``value`` with every plain ndarray inside dicts, lists and tuples viewed as a MeasuredArray."""
    if type(value) is np.ndarray:
        return value.view(MeasuredArray)
    if isinstance(value, dict):
        return {k: measure_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(measure_tree(v) for v in value)
    return value


def plain_tree(value):
    """``value`` with every MeasuredArray inside dicts, lists and tuples viewed as a plain ndarray."""
    if isinstance(value, MeasuredArray):
        return value.view(np.ndarray)
    if isinstance(value, dict):
        return {k: plain_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain_tree(v) for v in value)
    return value


def _call_counter(tally: _Tally, targets: dict[tuple[str, str], str]):
    """A sys.setprofile function counting calls of the functions in ``targets``
    ((file name, function name) of a graded module of the package -> contract name)."""
    codes: dict = {}
    calls = tally.profile.calls

    def on_event(frame, event, arg):
        if event != "call":
            return
        code = frame.f_code
        name = codes.get(code, 0)
        if name == 0:
            filename = code.co_filename
            in_package = os.path.basename(os.path.dirname(filename)) == "scratchnet"
            name = codes[code] = targets.get((os.path.basename(filename), code.co_name)) if in_package else None
        if name is None:
            return
        calls[name] += 1
        if tally.max_calls is not None and sum(calls.values()) > tally.max_calls and not tally.profile.stopped:
            tally.profile.stopped = "calls"
            raise LimitReached("calls")

    return on_event


class _CpuLimit:
    """Stop the call once the process has used ``seconds`` of processor time (SIGPROF, where available)."""

    def __init__(self, tally: _Tally, seconds: float | None):
        self.tally, self.seconds, self.previous = tally, seconds, None
        self.active = (seconds is not None and hasattr(signal, "setitimer")
                       and threading.current_thread() is threading.main_thread())

    def _fire(self, signum, frame):
        if not self.tally.profile.stopped:
            self.tally.profile.stopped = "time"
        raise LimitReached("time")

    def __enter__(self):
        if self.active:
            self.previous = signal.signal(signal.SIGPROF, self._fire)
            # Again every 10 ms after the first, in case the student's code catches the first.
            signal.setitimer(signal.ITIMER_PROF, max(self.seconds, 1e-3), 0.01)
        return self

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            signal.signal(signal.SIGPROF, self.previous)
        return False


def measured_call(fn, args: list, kwargs: dict, *, count: dict[str, str] | None = None,
                  max_work: float | None = None, max_calls: int | None = None, max_seconds: float | None = None,
                  arrays: bool = True):
    """Call ``fn(*args, **kwargs)`` measuring it; return (value, args, kwargs, Profile).

    ``count`` maps contract function names to the file of the package that
    defines them ("forward" -> "forward.py"): calls of those are counted.
    With ``arrays``, the arrays of the arguments are measured (see the module
    docstring); without, only calls and the processor time are. The call is
    stopped (value None, ``Profile.stopped`` set) once its work exceeds
    ``max_work``, the counted calls together exceed ``max_calls``, or it has
    used ``max_seconds`` of processor time (measurement included; where the
    platform has no interval timer, this last limit is not enforced).
    Exceptions of ``fn`` propagate. The value and the arguments as the call
    left them come back with plain arrays.
    """
    global _ACTIVE
    tally = _Tally(max_work, max_calls)
    targets = {(filename, name): name for name, filename in (count or {}).items()}
    tally.profile.calls = {name: 0 for name in (count or {})}
    if arrays:
        args, kwargs = measure_tree(list(args)), measure_tree(dict(kwargs))
    previous_profile, previous_tally = sys.getprofile(), _ACTIVE
    _ACTIVE = tally if arrays else None
    start = time.process_time()
    try:
        with _CpuLimit(tally, max_seconds):
            if targets:
                sys.setprofile(_call_counter(tally, targets))
            try:
                value = fn(*args, **kwargs)
            finally:
                sys.setprofile(previous_profile)
        if tally.profile.stopped:  # the student's code caught LimitReached and carried on
            value = None
    except LimitReached:
        value = None
    finally:
        tally.profile.cpu_seconds = time.process_time() - start
        _ACTIVE = previous_tally
    return plain_tree(value), plain_tree(list(args)), plain_tree(dict(kwargs)), tally.profile
