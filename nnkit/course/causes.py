"""The catalogue of likely causes: what a failed test says a student most likely did wrong.

Each assignment keeps one catalogue, ``causes.toml`` next to its config.toml,
shared by its public and hidden tests so that a mistake reads the same
wherever it is caught. A test names a cause by its id, ``hint=cause("db_keepdims")``
in the check helpers of nnkit.testing.checks; the failure then carries the id
(``CheckFailed.cause``), which the harness records next to the message, so
feedback can group failures by cause without reading their prose.

This module knows no function of the assignment by name: the ids, sentences
and functions all come from the file.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from nnkit.course.config import ASSIGNMENT_DIR, read_toml
from nnkit.course.contract import FUNCTIONS

CATALOGUE_PATH = ASSIGNMENT_DIR / "causes.toml"
"""The assignment's catalogue of causes."""

ANY_FUNCTION = "*"
"""In ``functions``: a mistake any contract function can make (an input changed in place, ...)."""

PREFIX = " Likely cause: "
"""What joins a failure message and its cause's sentence."""

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class CatalogueError(ValueError):
    """The catalogue is malformed, or a test names a cause it does not hold."""


@dataclass(frozen=True)
class Cause:
    """One likely cause of failed tests."""

    id: str
    """Stable name the tests use, e.g. "derivative_at_A"."""
    text: str
    """The sentence a student reads after "Likely cause:"."""
    functions: tuple[str, ...]
    """Contract functions the mistake can be made in ("*": any)."""


def load_catalogue(path: Path | str = CATALOGUE_PATH) -> dict[str, Cause]:
    """Read and check a catalogue: id -> Cause, in file order.

    Raises CatalogueError naming the file and the cause for a missing or
    empty text, an unknown function, an id that is not an identifier, or
    a key other than ``text`` and ``functions``.
    """
    path = Path(path)
    data = read_toml(path, "catalogue of causes", CatalogueError)
    causes = {}
    for key, entry in data.items():
        where = f"{path}: cause [{key}]"
        if not _ID.match(key):
            raise CatalogueError(f"{where}: an id is letters, digits and underscores, starting with a letter")
        if not isinstance(entry, dict):
            raise CatalogueError(f"{where}: expected a table with text and functions, got {entry!r}")
        unknown = sorted(set(entry) - {"text", "functions"})
        if unknown:
            raise CatalogueError(f"{where}: unknown keys {unknown}; expected text and functions")
        text, functions = entry.get("text"), entry.get("functions")
        if not isinstance(text, str) or not text.strip():
            raise CatalogueError(f"{where}: text must be a non-empty sentence")
        if not (isinstance(functions, list) and functions and all(isinstance(f, str) for f in functions)):
            raise CatalogueError(f"{where}: functions must be a non-empty list of contract function names")
        bad = sorted(set(functions) - set(FUNCTIONS) - {ANY_FUNCTION})
        if bad:
            raise CatalogueError(f"{where}: {bad} are not contract functions (nnkit/course/contract.py) or {ANY_FUNCTION!r}")
        causes[key] = Cause(id=key, text=" ".join(text.split()), functions=tuple(functions))
    return causes


_CATALOGUE: dict[str, Cause] | None = None


def catalogue() -> dict[str, Cause]:
    """The assignment's catalogue, read once per process."""
    global _CATALOGUE
    if _CATALOGUE is None:
        _CATALOGUE = load_catalogue()
    return _CATALOGUE


def cause(cause_id: str) -> Cause:
    """The cause with this id; CatalogueError (a kit bug, not the student's) for an unknown id."""
    causes = catalogue()
    if cause_id not in causes:
        raise CatalogueError(f"cause {cause_id!r} is not in the catalogue {CATALOGUE_PATH}")
    return causes[cause_id]


def with_cause(message: str, found: Cause) -> str:
    """A failure message followed by its likely cause: "... got x. Likely cause: <sentence>"."""
    return message + PREFIX + found.text


def without_cause(output: str, found: Cause) -> str:
    """A recorded failure message without its cause's sentence (the inverse of with_cause)."""
    suffix = PREFIX + found.text
    return output[: -len(suffix)] if output.endswith(suffix) else output
