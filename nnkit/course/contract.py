"""The active assignment's contract: which graded module owns each function, and how
its arguments cross a process boundary.

The assignment declares it as plain data in assignments/<name>/contract.py
(see nnkit.course.config for which assignment is active); this module loads
that file and exposes its names. In a sandboxed worker, which sees neither
the assignment folder nor a TOML parser, the file is staged beside this
module as ``assignment_contract.py`` (nnkit.sandbox.backend.worker_modules).

Tests never hold student objects: they pass arrays, dicts of arrays, numbers
and strings. A numpy Generator crosses as its integer seed (the callee builds
``np.random.default_rng(seed)``), and a generator's batches come back as a list.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

CONTRACT_FILE = "contract.py"
"""The contract's file name in an assignment folder."""


def contract_path() -> Path:
    """The active assignment's contract file."""
    from nnkit.course.config import ASSIGNMENT_DIR

    return ASSIGNMENT_DIR / CONTRACT_FILE


def _declared():
    try:  # in a sandboxed worker: staged beside this module
        from nnkit.course import assignment_contract  # type: ignore[attr-defined]

        return assignment_contract
    except ImportError:
        pass
    path = contract_path()
    spec = importlib.util.spec_from_file_location("nnkit_assignment_contract", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_contract = _declared()

PARTS: tuple[str, ...] = tuple(_contract.PARTS)
"""Graded parts in dependency order: each may use the ones before it."""
MODULE_OF_PART: dict[str, str] = dict(_contract.MODULE_OF_PART)
"""Module name (inside the package) of each part."""
FUNCTIONS: dict[str, str] = dict(_contract.FUNCTIONS)
"""Part that owns each contract function."""
RNG_ARGUMENTS: dict[str, str] = dict(_contract.RNG_ARGUMENTS)
"""Functions taking a numpy Generator, and the parameter's name."""
GENERATOR_FUNCTIONS: frozenset[str] = frozenset(_contract.GENERATOR_FUNCTIONS)
"""Functions whose result is a generator; it crosses as a list of its items."""
SIGNATURES: dict[str, tuple[str, ...]] = {name: tuple(args) for name, args in _contract.SIGNATURES.items()}
"""Parameter names of each contract function, in order."""


def student_parts(part: str | None) -> tuple[str, ...]:
    """Parts whose student file is used when testing ``part``.

    The parts upstream of ``part`` come from the reference, so one bug costs
    points in its own part only; ``None`` means end to end (all student files).
    """
    if part is None:
        return PARTS
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}: expected one of {PARTS}")
    return PARTS[PARTS.index(part):]
