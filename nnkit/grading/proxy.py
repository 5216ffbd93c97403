"""What a test holds instead of student code: a `Submission` that forwards each
contract call to a backend, and the typed outcomes of such a call.

A test only ever passes plain data (arrays, dicts and lists of them, numbers,
strings, None) and gets plain data back, so the backend can run the student's
code in this process (``nnkit.grading.local``) or in a sandboxed worker
(``nnkit.sandbox.backend``) without any test changing.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from nnkit.course.contract import FUNCTIONS, SIGNATURES
from nnkit.sandbox.profiling import Profile


class StudentError(Exception):
    """The student's function raised an exception.

    Attributes: ``function`` (contract name), ``exc_type`` (the exception's
    class name), ``message`` (its text) and ``location`` ("file.py:LINE in
    name", the innermost frame of a graded file, or "").
    """

    def __init__(self, function: str, exc_type: str, message: str, location: str = ""):
        self.function = function
        self.exc_type = exc_type
        self.message = message
        self.location = location
        super().__init__(self.describe())

    def describe(self) -> str:
        """One line for the student."""
        where = f" (at {self.location})" if self.location else ""
        return f"your {self.function}() raised {self.exc_type}: {self.message}{where}"


class NotImplementedYet(StudentError):
    """The student's function still raises NotImplementedError."""

    def describe(self) -> str:
        return f"{self.function}() is not implemented yet"


class StudentTimeout(Exception):
    """A call into student code ran past its time limit; its process was killed."""

    def __init__(self, function: str, seconds: float, *, earlier: int = 0, importing: str | None = None):
        self.function = function
        self.seconds = seconds
        self.importing = importing
        """Dotted name of the graded module whose import never finished (None: the call itself hung)."""
        if importing:
            filename = importing.split(".")[-1] + ".py"
            message = (f"importing your {filename} did not finish within its time limit "
                       "(code at the top level of the file that runs forever?)")
            if earlier:
                message = f"not run: {message}, in an earlier test"
        elif earlier:
            message = (f"not run: your {function}() did not return within its time limit in {earlier} "
                       "earlier tests, so this test does not wait for it again")
        else:
            message = (f"your {function}() did not return within {seconds:g} s and was stopped "
                       "(an infinite loop, or work far slower than needed?)")
        super().__init__(message)


class StudentCrash(Exception):
    """The process running student code died during a call (exit, signal, memory)."""

    def __init__(self, function: str, detail: str):
        self.function = function
        self.detail = detail
        super().__init__(f"the process running your code stopped during {function}(): {detail}")


class GraderError(Exception):
    """The grading machinery itself failed. The test scores zero (fail closed)."""


@dataclass
class CallResult:
    """Everything a test can observe about one call into student code."""

    value: Any
    """The return value (a generator's items as a list)."""
    args: tuple = ()
    """The positional arguments as the callee left them (to check mutation)."""
    kwargs: dict = field(default_factory=dict)
    """The keyword arguments as the callee left them."""
    rng_state: dict | None = None
    """``bit_generator.state`` of the rng built from the seed argument, after the call."""
    warnings: list[str] = field(default_factory=list)
    """Warnings the call emitted, as "Category: message"."""
    seconds: float = 0.0
    """Wall-clock time of the call in the student's process."""
    profile: Profile | None = None
    """What the call did, for calls made with ``Submission.measure`` (None otherwise)."""


class Backend(Protocol):
    """Runs contract functions of one submission."""

    tier: str

    def call(self, part: str | None, function: str, args: tuple, kwargs: dict,
             timeout: float | None = None, keep_args: tuple | None = None,
             measure: dict | None = None) -> CallResult:
        """Call ``function`` with the configuration used to test ``part`` (None: end to end).

        ``keep_args``: positions of the arguments to send back after the
        call (default: all of them, and the keyword arguments too).
        ``measure``: measure the call (see ``Submission.measure``).
        """

    def call_many(self, part: str | None, function: str, calls: list[tuple[tuple, dict]],
                  timeout: float | None = None, item: int | None = None) -> list:
        """The values of ``function(*args, **kwargs)`` for each (args, kwargs) in ``calls``, in order
        (each reduced by ``pick_item(value, item)``).

        One round trip for all of them; the first exception stops the batch
        and is raised as for ``call``; ``timeout`` bounds the whole batch.
        """

    def close(self) -> None:
        """Stop every process the backend started."""


def check_plain(value: Any, path: str = "argument") -> None:
    """Raise TypeError unless ``value`` is plain data a process boundary can carry."""
    if value is None or isinstance(value, (bool, str, numbers.Number, np.generic)):
        return
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"{path}: object arrays cannot cross to the student's process")
        return
    if isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            check_plain(item, f"{path}[{i}]")
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"{path}: dict keys must be strings, got {key!r}")
            check_plain(item, f"{path}[{key!r}]")
        return
    raise TypeError(f"{path}: {type(value).__name__} cannot cross to the student's process")


class Submission:
    """The student's code as tests see it: ``submission.softmax(z)`` returns the
    value; ``submission.call("sgd_step", params, grads, lr)`` returns the whole
    CallResult. A numpy Generator argument is passed as its int seed."""

    def __init__(self, backend: Backend, part: str | None, timeout: float | None = None):
        self._backend = backend
        self.part = part
        self.timeout = timeout

    @property
    def tier(self) -> str:
        """Isolation tier of the backend."""
        return self._backend.tier

    def call(self, function: str, *args: Any, timeout: float | None = None,
             keep_args: tuple | None = None, **kwargs: Any) -> CallResult:
        """Call a contract function; raise StudentError & co. on failure.

        ``timeout`` overrides the grader's per-call limit; ``keep_args`` lists
        the positions of the arguments worth sending back (large inputs need
        not make the round trip).
        """
        if function not in FUNCTIONS:
            raise GraderError(f"{function!r} is not a contract function")
        if len(args) > len(SIGNATURES[function]):
            raise GraderError(f"{function}() takes at most {len(SIGNATURES[function])} arguments")
        check_plain(args, "args")
        check_plain(kwargs, "kwargs")
        return self._backend.call(self.part, function, tuple(args), dict(kwargs),
                                  timeout if timeout is not None else self.timeout, keep_args)

    def measure(self, function: str, *args: Any, count: tuple[str, ...] = (), max_work: float | None = None,
                max_calls: int | None = None, max_seconds: float | None = None, arrays: bool = True,
                timeout: float | None = None, **kwargs: Any) -> CallResult:
        """Call a contract function and measure what it does (``CallResult.profile``).

        Counts the calls of the contract functions named in ``count``, and with
        ``arrays`` the work of the NumPy operations on arrays derived from the
        arguments (see nnkit.sandbox.profiling); the processor time is always
        measured. The call is stopped once its work exceeds ``max_work``, the
        counted calls together exceed ``max_calls`` or its processor time
        reaches ``max_seconds`` (then the value is None and ``profile.stopped``
        says which). Only the value comes back.
        """
        unknown = [name for name in count if name not in FUNCTIONS]
        if function not in FUNCTIONS or unknown:
            raise GraderError(f"{[function, *unknown]} are not all contract functions")
        if len(args) > len(SIGNATURES[function]):
            raise GraderError(f"{function}() takes at most {len(SIGNATURES[function])} arguments")
        check_plain(args, "args")
        check_plain(kwargs, "kwargs")
        measure = {"count": list(count), "max_work": None if max_work is None else float(max_work),
                   "max_calls": None if max_calls is None else int(max_calls),
                   "max_seconds": None if max_seconds is None else float(max_seconds), "arrays": bool(arrays)}
        result = self._backend.call(self.part, function, tuple(args), dict(kwargs),
                                    timeout if timeout is not None else self.timeout, (), measure)
        if result.profile is None:
            raise GraderError(f"the backend did not measure {function}()")
        return result

    def map(self, function: str, arg_lists: list[tuple], *, item: int | None = None,
            timeout: float | None = None, **kwargs: Any) -> list:
        """``[function(*args, **kwargs) for args in arg_lists]``, evaluated in one round trip.

        For the many small calls of a finite-difference check: a sandboxed
        submission answers them all at once instead of one message each.
        ``item``: keep only ``value[item]`` of each value that is a tuple or
        list long enough (the probs of forward's (probs, cache)), so the rest
        need not cross back. ``timeout`` (default: the per-call limit) bounds
        the whole batch.
        """
        if function not in FUNCTIONS:
            raise GraderError(f"{function!r} is not a contract function")
        calls = []
        for args in arg_lists:
            if len(args) > len(SIGNATURES[function]):
                raise GraderError(f"{function}() takes at most {len(SIGNATURES[function])} arguments")
            calls.append((tuple(args), dict(kwargs)))
        check_plain([list(c) for c in calls], "args")
        return self._backend.call_many(self.part, function, calls,
                                       timeout if timeout is not None else self.timeout, item)

    def __getattr__(self, name: str):
        if name in FUNCTIONS:
            # Only the value is wanted: the arguments need not make the round trip.
            return lambda *args, **kwargs: self.call(name, *args, keep_args=(), **kwargs).value
        raise AttributeError(name)
