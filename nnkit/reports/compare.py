"""What a regrade changed: scores and test statuses against an earlier grading run.

Works on the saved records (``<OUT>/<name>/result.json``, read with
nnkit.grading.runner.load_results): ``make grade ... COMPARE=old_out_dir`` loads the
old ones before grading (so COMPARE may be OUT itself), then writes
``OUT/changes.csv`` and the report's "Changes since ..." section. A test is
matched by part, suite and name; it changed when its status (passed, failed,
timeout, ...) or its points (earned or possible) differ.
"""
from __future__ import annotations

import csv
import html
from dataclasses import dataclass, field
from pathlib import Path

from nnkit.grading.results import SubmissionResult, TestResult

CSV_COLUMNS = ["submission", "old_score", "new_score", "delta", "part", "suite", "test",
               "old_status", "new_status", "old_points", "new_points"]
"""Columns of changes.csv: one row per changed test of a submission (a submission that is new
or gone has one row with an empty test and status "absent" on the side where it is missing)."""

ABSENT = "absent"
"""Status of a test (or submission) missing from one of the two runs."""


@dataclass(frozen=True)
class TestChange:
    """One test whose status or points differ between the runs."""

    __test__ = False  # not a pytest test class

    part: str
    suite: str
    name: str
    old_status: str
    """passed, failed, timeout, ... or "absent" (the test did not exist in the old run)."""
    new_status: str
    old_points: str
    """Earned / possible, e.g. "1 / 1"; "" when absent."""
    new_points: str


@dataclass
class SubmissionChange:
    """One submission whose score or test results changed."""

    submission: str
    old_score: float | None
    """None: the submission was not in the old run."""
    new_score: float | None
    """None: the submission is not in the new run."""
    tests: list[TestChange] = field(default_factory=list)

    @property
    def delta(self) -> float:
        """New score minus old score (0 when either is missing)."""
        if self.old_score is None or self.new_score is None:
            return 0.0
        return self.new_score - self.old_score


@dataclass
class Comparison:
    """A regrade against an earlier run."""

    old_dir: str
    """The earlier run's folder, as given."""
    compared: int
    """Submissions present in both runs."""
    changes: list[SubmissionChange]
    """Submissions that changed, largest score change first."""

    @property
    def nothing_changed(self) -> bool:
        return not self.changes

    def summary(self) -> str:
        """One line: what changed, or that nothing did."""
        if self.nothing_changed:
            return (f"Compared with {self.old_dir}: nothing changed ({_plural(self.compared, 'submission')}, "
                    "same scores and the same status and points in every test).")
        scored = sum(1 for c in self.changes if c.old_score is not None and c.new_score is not None
                     and c.delta != 0)
        tests = sum(len(c.tests) for c in self.changes)
        return (f"Compared with {self.old_dir}: {_plural(scored, 'submission')} changed score, "
                f"{_plural(tests, 'test result')} changed in {_plural(len(self.changes), 'submission')}.")


def compare(old: list[SubmissionResult], new: list[SubmissionResult], old_dir: str = "the earlier run") -> Comparison:
    """What changed from ``old`` to ``new`` results (matched by submission name)."""
    before = {r.submission: r for r in old}
    after = {r.submission: r for r in new}
    changes = []
    for name in sorted(set(before) | set(after)):
        b, a = before.get(name), after.get(name)
        if b is None or a is None:
            changes.append(SubmissionChange(name, b.score if b else None, a.score if a else None))
            continue
        tests = _test_changes(b.tests, a.tests)
        if tests or b.score != a.score or b.max_score != a.max_score:
            changes.append(SubmissionChange(name, b.score, a.score, tests))
    changes.sort(key=lambda c: (-abs(c.delta), c.submission))
    return Comparison(old_dir=str(old_dir), compared=len(set(before) & set(after)), changes=changes)


def _test_changes(old: list[TestResult], new: list[TestResult]) -> list[TestChange]:
    before = {(t.part, t.suite, t.name): t for t in old}
    after = {(t.part, t.suite, t.name): t for t in new}
    order = list(after) + [k for k in before if k not in after]
    out = []
    for key in order:
        b, a = before.get(key), after.get(key)
        if b is not None and a is not None and (b.kind, b.score, b.max_score) == (a.kind, a.score, a.max_score):
            continue
        out.append(TestChange(*key, old_status=b.kind if b else ABSENT, new_status=a.kind if a else ABSENT,
                              old_points=_points(b), new_points=_points(a)))
    return out


def _points(t: TestResult | None) -> str:
    return f"{t.score:g} / {t.max_score:g}" if t is not None else ""


def load_previous(folder: Path) -> list[SubmissionResult]:
    """The results of an earlier run; ValueError naming the folder when it holds none."""
    from nnkit.grading.runner import load_results

    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"COMPARE={folder} is not a folder")
    results = load_results(folder)
    if not results:
        raise ValueError(f"COMPARE={folder} holds no <submission>/result.json of an earlier grading run")
    return results


def regrade_report(previous: list[SubmissionResult], old_dir: Path, submissions: Path, out: Path) -> Comparison:
    """Compare ``out``'s results (those still in ``submissions``) with ``previous``; write
    ``out/changes.csv`` and rewrite ``out/report.html`` with the changes section."""
    from nnkit.reports import report
    from nnkit.grading.runner import find_entries, load_results
    from nnkit.grading.submission import submission_name

    names = {submission_name(e) for e in find_entries(submissions)[0]}
    results = load_results(out, names)
    comparison = compare(previous, results, str(old_dir))
    write_csv(comparison, Path(out) / "changes.csv")
    report.write_report(results, out, comparison=comparison)
    return comparison


def write_csv(comparison: Comparison, path: Path) -> Path:
    """changes.csv (see CSV_COLUMNS); just the header when nothing changed."""
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for c in comparison.changes:
            scores = {"submission": c.submission, "old_score": _score(c.old_score),
                      "new_score": _score(c.new_score), "delta": f"{c.delta:+g}"}
            if not c.tests:
                writer.writerow(scores | {"old_status": "" if c.old_score is not None else ABSENT,
                                          "new_status": "" if c.new_score is not None else ABSENT})
            for t in c.tests:
                writer.writerow(scores | {"part": t.part, "suite": t.suite, "test": t.name,
                                          "old_status": t.old_status, "new_status": t.new_status,
                                          "old_points": t.old_points, "new_points": t.new_points})
    return path


def changes_html(comparison: Comparison) -> str:
    """The report's section: one line when nothing changed, else a table per submission and test."""
    e = lambda v: html.escape(str(v), quote=True)  # noqa: E731
    head = f"<h2>Changes since {e(comparison.old_dir)}</h2>\n<p>{e(comparison.summary())}</p>"
    if comparison.nothing_changed:
        return head
    rows = []
    for c in comparison.changes:
        score = f"{_score(c.old_score) or ABSENT} &rarr; {_score(c.new_score) or ABSENT} ({c.delta:+g})"
        tests = "<br>".join(f"{e(t.part)}: {e(t.name)} ({e(t.suite)}): {e(t.old_status)} {e(t.old_points)} "
                            f"&rarr; {e(t.new_status)} {e(t.new_points)}" for t in c.tests) or "&mdash;"
        rows.append(f"<tr><td>{e(c.submission)}</td><td>{score}</td><td>{tests}</td></tr>")
    return (head + "\n<table>\n<thead><tr><th>Submission</th><th>Score</th><th>Tests that changed</th></tr></thead>"
            "\n<tbody>\n" + "\n".join(rows) + "\n</tbody>\n</table>")


def _score(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"
