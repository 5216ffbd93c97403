"""In-process backend: imports the student's package into this process.

Used by students' `make check` (their own package for every part) and by the
benchmark that measures the sandbox's overhead. Never used for grading
untrusted code: see nnkit.sandbox.backend for that.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from nnkit.sandbox.invoke import ContractViolation, describe_exception, invoke, module_name, pick_item
from nnkit.sandbox.profiling import Profile
from nnkit.grading.proxy import CallResult, NotImplementedYet, StudentError


def _forget_scratchnet() -> None:
    for name in [m for m in sys.modules if m == "scratchnet" or m.startswith("scratchnet.")]:
        del sys.modules[name]


def import_package(root: Path, names) -> dict:
    """Import ``scratchnet.<name>`` for each name from the package under ``root``
    only, forgetting any other copy before and after; return name -> module.

    Raises ImportError when a module would come from anywhere else.
    """
    root = Path(root).resolve()
    _forget_scratchnet()
    sys.path.insert(0, str(root))
    modules = {}
    try:
        importlib.invalidate_caches()
        for name in names:
            module = importlib.import_module(f"scratchnet.{name}")
            origin = Path(getattr(module, "__file__", "") or "").resolve()
            if root not in origin.parents:
                raise ImportError(f"no scratchnet package in {root} (found {origin} instead)")
            modules[name] = module
    finally:
        sys.path.remove(str(root))
        _forget_scratchnet()
    return modules


def _import_in_place(root: Path, dotted: str):
    """Import ``dotted`` normally (``root`` is on sys.path) and check where it came from."""
    module = importlib.import_module(dotted)
    origin = Path(getattr(module, "__file__", "") or "").resolve()
    if root not in origin.parents:
        raise ImportError(f"no scratchnet package in {root} (found {origin} instead)")
    return module


def _import_fresh(root: Path, dotted: str):
    """Import ``dotted`` (e.g. "scratchnet.forward") from the package under ``root`` alone."""
    name = dotted.split(".", 1)[1]
    return import_package(root, [name])[name]


def raise_student_error(function: str, info: dict):
    """Raise NotImplementedYet or StudentError from a describe_exception() record."""
    cls = NotImplementedYet if info.get("not_implemented") else StudentError
    raise cls(function, info["type"], info["message"], info.get("location", ""))


class LocalBackend:
    """Runs contract functions in this process.

    ``roots`` maps a part (or None for end to end) to a folder holding a
    ``scratchnet`` package; a single folder serves every part. With a single
    folder (a student's own package) it stays on sys.path, so imports inside
    functions work as they would for the student; with several (the staged
    parts of the overhead benchmark) each is imported alone and forgotten.
    """

    tier = "none (in-process)"

    def __init__(self, roots: dict | str | Path):
        if not isinstance(roots, dict):
            roots = {None: Path(roots)}
        self.roots = {part: Path(root).resolve() for part, root in roots.items()}
        self._modules: dict[tuple, object] = {}
        self._single = len(set(self.roots.values())) == 1
        if self._single:
            _forget_scratchnet()
            sys.path.insert(0, str(next(iter(self.roots.values()))))

    def _root(self, part):
        return self.roots.get(part, self.roots.get(None))

    def _module(self, part, function):
        root = self._root(part)
        key = (root, module_name(function))
        if key not in self._modules:
            filename = module_name(function).split(".")[-1] + ".py"
            if not (root / "scratchnet" / filename).is_file():
                raise StudentError(function, "MissingFile", f"{filename} was not found in your submission")
            try:
                self._modules[key] = (_import_in_place(root, module_name(function)) if self._single
                                      else _import_fresh(root, module_name(function)))
            except Exception as exc:  # the student's file does not import
                raise_student_error(function, describe_exception(exc))
        return self._modules[key]

    def call(self, part, function, args, kwargs, timeout=None, keep_args=None, measure=None) -> CallResult:
        module = self._module(part, function)
        try:
            out = invoke(module, function, args, kwargs, keep_args, measure=measure)
        except ContractViolation as exc:
            raise StudentError(function, "ContractViolation", str(exc)) from None
        except Exception as exc:
            raise_student_error(function, describe_exception(exc))
        profile = out.pop("profile")
        return CallResult(**out, profile=None if profile is None else Profile.from_plain(profile))

    def call_many(self, part, function, calls, timeout=None, item=None) -> list:
        return [pick_item(self.call(part, function, args, kwargs, keep_args=()).value, item)
                for args, kwargs in calls]

    def close(self) -> None:
        self._modules.clear()
