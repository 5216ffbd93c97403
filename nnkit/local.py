"""In-process backend: imports the student's package into this process.

Used by students' `make check` (their own package for every part) and by the
benchmark that measures the sandbox's overhead. Never used for grading
untrusted code: see nnkit.sandbox for that.
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

from nnkit.invoke import ContractViolation, describe_exception, invoke, module_name
from nnkit.proxy import CallResult, NotImplementedYet, StudentError


def _import_fresh(root: Path, dotted: str):
    """Import ``dotted`` from the scratchnet package under ``root``, forgetting any other copy."""
    for name in [m for m in sys.modules if m == "scratchnet" or m.startswith("scratchnet.")]:
        del sys.modules[name]
    sys.path.insert(0, str(root))
    try:
        importlib.invalidate_caches()
        module = importlib.import_module(dotted)
    finally:
        sys.path.remove(str(root))
    origin = Path(getattr(module, "__file__", "") or "").resolve()
    if root.resolve() not in origin.parents:
        raise ImportError(f"no scratchnet package in {root} (found {origin} instead)")
    return module


def raise_student_error(function: str, info: dict):
    """Raise NotImplementedYet or StudentError from a describe_exception() record."""
    cls = NotImplementedYet if info.get("not_implemented") else StudentError
    raise cls(function, info["type"], info["message"], info.get("location", ""))


class LocalBackend:
    """Runs contract functions in this process.

    ``roots`` maps a part (or None for end to end) to a folder holding a
    ``scratchnet`` package; a single folder serves every part.
    """

    tier = "none (in-process)"

    def __init__(self, roots: dict | str | Path):
        if not isinstance(roots, dict):
            roots = {None: Path(roots)}
        self.roots = {part: Path(root).resolve() for part, root in roots.items()}
        self._modules: dict[tuple, object] = {}

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
                self._modules[key] = _import_fresh(root, module_name(function))
            except Exception as exc:  # the student's file does not import
                raise_student_error(function, describe_exception(exc))
        return self._modules[key]

    def call(self, part, function, args, kwargs, timeout=None, keep_args=None) -> CallResult:
        module = self._module(part, function)
        try:
            out = invoke(module, function, args, kwargs, keep_args)
        except ContractViolation as exc:
            raise StudentError(function, "ContractViolation", str(exc)) from None
        except Exception as exc:
            raise_student_error(function, describe_exception(exc))
        return CallResult(**out)

    def close(self) -> None:
        self._modules.clear()
