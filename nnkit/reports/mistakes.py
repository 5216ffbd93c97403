"""Common mistakes across a class: how many submissions hit each cause of the
catalogue, and how many got each contract function fully right.

The tally behind the report's "Common mistakes" section and ``OUT/mistakes.csv``,
sorted so that what most submissions got wrong comes first: what to revisit
in the next lecture.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from nnkit.course.causes import Cause
from nnkit.course.contract import FUNCTIONS
from nnkit.grading.results import SubmissionResult

CSV_COLUMNS = ["kind", "id", "part", "submissions", "total", "names", "fully_right", "text"]
"""Columns of mistakes.csv. One row per cause (kind "cause": ``submissions`` hit it, ``names``
lists them, ``text`` is its sentence) and per contract function (kind "function": ``submissions``
did not get it fully right, ``names`` lists them, ``fully_right`` counts the others)."""


@dataclass
class CauseCount:
    """One cause of the catalogue across the class."""

    cause: Cause
    submissions: list[str] = field(default_factory=list)
    """Submissions with at least one failed test naming this cause, sorted."""
    tests: int = 0
    """Failed tests naming it, over all submissions."""


@dataclass
class FunctionCount:
    """One contract function across the class."""

    function: str
    part: str
    tests: int
    """Tests whose function under test it is (in any submission's results)."""
    fully_right: list[str] = field(default_factory=list)
    """Submissions that passed every one of those tests."""
    not_right: list[str] = field(default_factory=list)
    """Submissions that failed (or did not run) at least one."""


@dataclass
class Mistakes:
    """The class's common mistakes."""

    total: int
    """Submissions counted."""
    causes: list[CauseCount]
    """Every cause of the catalogue (plus any unknown id a result names), most submissions first."""
    functions: list[FunctionCount]
    """Every contract function some test exercises, fewest fully right first."""


def tally(results: list[SubmissionResult], catalogue: dict[str, Cause]) -> Mistakes:
    """Count causes and fully-right functions over ``results``.

    A test's function is the one its results record (nnkit.grading.harness: the first
    function of its part it called). A test that never got to call anything in
    one submission still counts for its function, known from the others.
    """
    causes = {cid: CauseCount(c) for cid, c in catalogue.items()}
    for r in results:
        named = {}
        for t in r.tests:
            if not t.passed and t.cause:
                named[t.cause] = named.get(t.cause, 0) + 1
        for cid, n in named.items():
            if cid not in causes:  # a result from an older catalogue
                causes[cid] = CauseCount(Cause(cid, "(not in the current catalogue)", ()))
            causes[cid].submissions.append(r.submission)
            causes[cid].tests += n
    function_of: dict[tuple[str, str, str], str] = {}
    for r in results:
        for t in r.tests:
            if t.function:
                function_of.setdefault((t.part, t.suite, t.name), t.function)
    functions = []
    for function, part in FUNCTIONS.items():
        keys = {k for k, f in function_of.items() if f == function}
        if not keys:
            continue
        count = FunctionCount(function, part, len(keys))
        for r in results:
            ran = {(t.part, t.suite, t.name): t.passed for t in r.tests}
            right = all(ran.get(k, False) for k in keys)
            (count.fully_right if right else count.not_right).append(r.submission)
        functions.append(count)
    order = list(catalogue)
    return Mistakes(
        total=len(results),
        causes=sorted(causes.values(), key=lambda c: (-len(c.submissions), -c.tests,
                                                     order.index(c.cause.id) if c.cause.id in order else len(order))),
        functions=sorted(functions, key=lambda f: (len(f.fully_right), list(FUNCTIONS).index(f.function))),
    )


def write_csv(mistakes: Mistakes, path: Path) -> Path:
    """mistakes.csv (see CSV_COLUMNS)."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for c in mistakes.causes:
            parts = sorted({FUNCTIONS[fn] for fn in c.cause.functions if fn in FUNCTIONS})
            writer.writerow({"kind": "cause", "id": c.cause.id, "part": "; ".join(parts),
                             "submissions": len(c.submissions), "total": mistakes.total,
                             "names": "; ".join(c.submissions), "fully_right": "", "text": c.cause.text})
        for fn in mistakes.functions:
            writer.writerow({"kind": "function", "id": fn.function, "part": fn.part,
                             "submissions": len(fn.not_right), "total": mistakes.total,
                             "names": "; ".join(fn.not_right), "fully_right": len(fn.fully_right), "text": ""})
    return path
