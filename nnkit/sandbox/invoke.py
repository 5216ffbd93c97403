"""Calling one contract function of a loaded student package.

Shared by the in-process backend (nnkit.grading.local) and the sandboxed worker
(nnkit.sandbox.worker), so both give a test exactly the same observations. Depends
only on numpy and the standard library: it runs inside the sandbox.
"""
from __future__ import annotations

import copy
import os
import time
import traceback
import warnings

import numpy as np

from nnkit.sandbox import transport
from nnkit.course.contract import FUNCTIONS, GENERATOR_FUNCTIONS, MODULE_OF_PART, RNG_ARGUMENTS, SIGNATURES
from nnkit.sandbox.profiling import measured_call

GRADED_FILES = frozenset(f"{m}.py" for m in MODULE_OF_PART.values())
MAX_MESSAGE = 500


class ContractViolation(Exception):
    """The student's module lacks a contract function or returned something unusable."""


def module_name(function: str) -> str:
    """Dotted module name of the graded file owning ``function``."""
    return f"scratchnet.{MODULE_OF_PART[FUNCTIONS[function]]}"


def import_chain(dotted: str) -> list[str]:
    """The graded modules up to ``dotted``, in dependency order (activations first)."""
    order = [f"scratchnet.{m}" for m in MODULE_OF_PART.values()]
    return order[:order.index(dotted) + 1]


def _swap_rng(function, args, kwargs):
    """Replace the seed given for a Generator argument by ``default_rng(seed)``."""
    name = RNG_ARGUMENTS.get(function)
    if name is None:
        return None
    position = SIGNATURES[function].index(name)
    if len(args) > position:
        rng = args[position] = np.random.default_rng(args[position])
    elif name in kwargs:
        rng = kwargs[name] = np.random.default_rng(kwargs[name])
    else:
        return None
    return rng


def _unswap(values, rng):
    if rng is None:
        return values
    if isinstance(values, dict):
        return {k: (None if v is rng else v) for k, v in values.items()}
    return [None if v is rng else v for v in values]


def measure_options(measure: dict) -> dict:
    """measured_call's keyword arguments from a request's ``measure``: {"count": [contract names],
    "max_work", "max_calls", "max_seconds", "arrays"} (see nnkit.grading.proxy.Submission.measure)."""
    count = {name: f"{MODULE_OF_PART[FUNCTIONS[name]]}.py" for name in measure.get("count") or ()
             if name in FUNCTIONS}
    return {"count": count, "max_work": measure.get("max_work"), "max_calls": measure.get("max_calls"),
            "max_seconds": measure.get("max_seconds"), "arrays": bool(measure.get("arrays", True))}


def invoke(module, function: str, args: tuple, kwargs: dict, keep_args=None, *, copy_args=True,
           measure: dict | None = None) -> dict:
    """Call ``module.<function>`` on copies of the arguments.

    Returns a dict with "value", "args", "kwargs" (the arguments as the
    callee left them; the rng replaced by None), "rng_state", "warnings",
    "seconds" and "profile" (None, or with ``measure`` what
    nnkit.sandbox.profiling.measured_call saw, as plain data). With ``keep_args``
    (positions), the other arguments and the keyword arguments come back as
    None and {}. Exceptions of the student's code propagate.
    """
    fn = getattr(module, function, None)
    if not callable(fn):
        raise ContractViolation(f"{module.__name__.split('.')[-1]}.py has no function {function}()")
    # Copies, so the caller's arrays stay as they were (the worker's are fresh already).
    # A shared file's array gets a copy-on-write mapping, as the worker does: no bytes are copied.
    if copy_args:
        memo = {id(a): transport.private_copy(transport.shared_file(a))
                for a in (*args, *kwargs.values()) if transport.shared_file(a) is not None}
        args, kwargs = copy.deepcopy((list(args), dict(kwargs)), memo)
    else:
        args, kwargs = list(args), dict(kwargs)
    rng = _swap_rng(function, args, kwargs)

    def call(*args, **kwargs):
        value = fn(*args, **kwargs)
        if function in GENERATOR_FUNCTIONS:
            if not hasattr(value, "__iter__"):
                raise ContractViolation(f"{function}() must yield batches, got {type(value).__name__}")
            value = [tuple(item) if isinstance(item, (tuple, list)) else item for item in value]
        return value

    profile = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        if measure is None:
            value = call(*args, **kwargs)
        else:
            value, args, kwargs, profile = measured_call(call, args, kwargs, **measure_options(measure))
            profile = profile.to_plain()
        seconds = time.perf_counter() - start
    args_after, kwargs_after = _unswap(args, rng), _unswap(kwargs, rng)
    if keep_args is not None:
        args_after = [a if i in keep_args else None for i, a in enumerate(args_after)]
        kwargs_after = {}
    return {
        "value": value,
        "args": tuple(args_after),
        "kwargs": kwargs_after,
        "rng_state": rng.bit_generator.state if rng is not None else None,
        "warnings": [f"{w.category.__name__}: {w.message}"[:MAX_MESSAGE] for w in caught[:20]],
        "seconds": seconds,
        "profile": profile,
    }


def pick_item(value, item: int | None):
    """``value[item]`` when ``item`` is given and ``value`` is a tuple or list long enough; else ``value``."""
    if item is not None and isinstance(value, (tuple, list)) and 0 <= item < len(value):
        return value[item]
    return value


def memory_limit_hint() -> str:
    """What a student reads after a MemoryError: the limit, and the usual way past it."""
    import resource

    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    size = f"{limit >> 20} MB" if limit != resource.RLIM_INFINITY else "a limited amount"
    return (f"memory limit reached: the process running your code may use {size} of memory; a copy of a "
            "large input (X / 1.0, X.astype(float), np.array(X)) needs as much memory again, so work on "
            "views and mini-batches instead")


def describe_exception(exc: BaseException) -> dict:
    """Type, message and innermost graded-file location of a student exception."""
    location = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if os.path.basename(frame.filename) in GRADED_FILES:
            location = f"{os.path.basename(frame.filename)}:{frame.lineno} in {frame.name}"
    message = str(exc)
    if isinstance(exc, MemoryError):
        message = f"{message} ({memory_limit_hint()})" if message else memory_limit_hint()
    if isinstance(exc, SyntaxError) and exc.filename:
        location = f"{os.path.basename(exc.filename)}:{exc.lineno}"
        message = exc.msg
    return {
        "type": type(exc).__name__,
        "message": message[:MAX_MESSAGE],
        "location": location,
        "not_implemented": isinstance(exc, NotImplementedError),
    }
