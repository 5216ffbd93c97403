"""Gradescope: the results.json format check.

``gradescope_schema.json`` (next to this file) encodes Gradescope's
documented autograder output format; its "$comment" names the pages.
``validate_results`` checks a dict against it before it is written, so a
malformed file fails here, with the offending field named, rather than on
Gradescope with a generic error.
"""
from __future__ import annotations

import json
import math
from functools import cache
from pathlib import Path

# ---- validation of results.json ---------------------------------------------

SCHEMA_PATH = Path(__file__).with_name("gradescope_schema.json")
MAX_LISTED = 20
"""Problems listed in one error message (the count always covers them all)."""


class ResultsFormatError(ValueError):
    """A results dict that does not follow Gradescope's format."""


@cache
def results_schema() -> dict:
    """The JSON Schema of results.json (draft 2020-12)."""
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def validate_results(data: dict) -> None:
    """Raise ResultsFormatError listing every problem when ``data`` is not a valid results.json.

    Besides the schema, numbers must be finite: JSON has no NaN or Infinity
    (``json.dumps`` would write them anyway, and Gradescope could not read them).
    """
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(results_schema())
    problems = [(_where(e.absolute_path), _message(e)) for e in validator.iter_errors(data)]
    problems += [(where, f"{value!r} is not a finite number (JSON has no NaN or Infinity)")
                 for where, value in _non_finite(data, [])]
    if problems:
        problems.sort()
        lines = [f"  {where}: {message}" for where, message in problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
        count = f"{len(problems)} problem{'s' if len(problems) > 1 else ''}"
        raise ResultsFormatError(f"results.json does not follow Gradescope's format ({count}):\n"
                                 + "\n".join(lines))


def _where(path) -> str:
    """A JSON path as text: tests[3].status, or "top level"."""
    out = ""
    for key in path:
        out += f"[{key}]" if isinstance(key, int) else (f".{key}" if out else str(key))
    return out or "top level"


def _message(error) -> str:
    if error.validator == "anyOf" and "then" in error.schema_path:
        return "has neither 'score' nor 'status' (one is needed when the top level has no 'score')"
    text = error.message
    if "then" in error.schema_path:
        text += " (needed when the top level has no 'score')"
    return text if len(text) <= 300 else text[:297] + "..."


def _non_finite(value, path: list) -> list[tuple[str, float]]:
    if isinstance(value, float) and not math.isfinite(value):
        return [(_where(path), value)]
    if isinstance(value, dict):
        return [hit for k, v in value.items() for hit in _non_finite(v, [*path, k])]
    if isinstance(value, list):
        return [hit for i, v in enumerate(value) for hit in _non_finite(v, [*path, i])]
    return []
