"""A part's failed tests grouped by likely cause, as feedback a student reads in one go.

Failures naming the same cause (by its id in the catalogue, nnkit.course.causes)
form one group: the cause once, in the catalogue's wording, then the tests
it explains and one example of what was expected and what came back.
Failures without a recognised cause follow, each on its own. The same
groups serve feedback.md, Gradescope's summary and ``make check``.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence

from nnkit.course.causes import Cause, without_cause


class Failure(Protocol):
    """What grouping needs of a failed test (nnkit.grading.results.TestResult has it)."""

    name: str
    suite: str
    max_score: float
    output: str
    cause: str


@dataclass
class Group:
    """Failed tests explained by one cause, or a single failure with no recognised cause."""

    cause: Cause | None
    """The likely cause; None for a failure whose cause no test recognised."""
    tests: list = field(default_factory=list)
    """The failures, in test order."""

    @property
    def points(self) -> float:
        """Points lost in these tests."""
        return float(sum(t.max_score for t in self.tests))

    @property
    def example(self) -> str:
        """The first failure's message, without the cause's sentence (said once for the group)."""
        first = self.tests[0]
        return without_cause(first.output, self.cause) if self.cause else first.output


def group_failures(failures: Sequence[Failure], catalogue: dict[str, Cause]) -> list[Group]:
    """Groups of ``failures``: recognised causes first (most tests first, ties in order of
    first appearance), then one group per failure without a cause in ``catalogue``."""
    by_cause: dict[str, Group] = {}
    alone: list[Group] = []
    for t in failures:
        found = catalogue.get(t.cause or "")
        if found is None:
            alone.append(Group(None, [t]))
        else:
            by_cause.setdefault(found.id, Group(found)).tests.append(t)
    recognised = sorted(by_cause.values(), key=lambda g: -len(g.tests))  # stable: first appearance breaks ties
    return recognised + alone


def _points(x: float) -> str:
    return f"{x:g} pt"


def _test_label(t: Failure) -> str:
    return f"{t.name} ({_points(t.max_score)}, {t.suite})"


def markdown(groups: list[Group]) -> list[str]:
    """Markdown lines for one part's groups (feedback.md)."""
    lines: list[str] = []
    for g in groups:
        if g.cause is None:
            continue
        n = len(g.tests)
        lines += [f"**Likely cause of {n} failed test{'s' if n > 1 else ''} ({_points(g.points)}):** "
                  f"{g.cause.text}", ""]
        lines += [f"- {_test_label(t)}" for t in g.tests]
        lines += ["", f"  Example, {g.tests[0].name}: {g.example}", ""]
    alone = [g.tests[0] for g in groups if g.cause is None]
    if alone:
        if len(alone) < len(groups):
            lines += ["**Other failures:**", ""]
        lines += [f"- **{t.name}** ({_points(t.max_score)}, {t.suite}): {t.output}" for t in alone]
        lines.append("")
    return lines[:-1] if lines and lines[-1] == "" else lines


def summary_lines(groups: list[Group], indent: str = "  ") -> list[str]:
    """Plain-text lines for one part's groups: each cause with the tests it explains, then the
    number of other failures (whose messages are shown with each test). For Gradescope's
    summary and ``make check``."""
    lines: list[str] = []
    for g in groups:
        if g.cause is None:
            continue
        n = len(g.tests)
        lines.append(f"{indent}Likely cause of {n} failed test{'s' if n > 1 else ''}: {g.cause.text}")
        lines.append(f"{indent}  tests: " + ", ".join(t.name for t in g.tests))
        lines.append(f"{indent}  e.g. {g.example}")
    others = sum(1 for g in groups if g.cause is None)
    if others:
        lines.append(f"{indent}{others} failed test{'s' if others > 1 else ''} without a recognised cause: "
                     "see each test's message.")
    return lines
