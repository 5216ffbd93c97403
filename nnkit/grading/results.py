"""Typed grading results: one model serves results.json, grades.csv,
feedback.md and the class report."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from nnkit.reports import grouping
from nnkit.course.causes import CatalogueError, catalogue
from nnkit.course.contract import PARTS

CSV_COLUMNS = ["submission", "score", "max_score", *PARTS, "status",
               "tier", "seconds", "tests_passed", "tests_total"]
"""Columns of grades.csv, in order (the first eight are fixed by the course)."""


@dataclass
class TestResult:
    """The outcome of one test for one submission."""

    __test__ = False  # a result, not a pytest test class

    name: str
    """Test name as pytest shows it (e.g. "test_softmax_rows_sum_to_one[relu]")."""
    part: str
    """Graded part: activations, forward, backward or training."""
    suite: str
    """"public" or "hidden"."""
    max_score: float
    """Points the test is worth."""
    passed: bool
    """Whether it passed."""
    kind: str = "passed"
    """passed, failed, not-implemented, timeout, crash, skipped (the test could not decide), grader-error,
    not-run, or gated (it passed, but its part's gate failed; see nnkit.grading.gates)."""
    output: str = ""
    """Message for the student (empty when passed)."""
    seconds: float = 0.0
    """Wall-clock time of the test."""
    gate: str = ""
    """The requirement this test is the gate of ("" for an ordinary test; see nnkit.grading.gates)."""
    cause: str = ""
    """Id of the likely cause in the assignment's catalogue (causes.toml); "" when none was recognised."""
    function: str = ""
    """The contract function under test: the first function of the test's part it called ("" if none)."""

    @property
    def score(self) -> float:
        """Points earned: all or nothing."""
        return self.max_score if self.passed else 0.0


@dataclass
class SubmissionResult:
    """Everything the grader found about one submission."""

    submission: str
    """Folder name or zip stem."""
    tests: list[TestResult] = field(default_factory=list)
    """One entry per test of both suites, in collection order."""
    problems: list[str] = field(default_factory=list)
    """Short reasons that make the status (empty: ok)."""
    notes: list[str] = field(default_factory=list)
    """Longer remarks for the student (duplicates, refused files, ...)."""
    tier: str = ""
    """Isolation tier the student's code ran under."""
    seconds: float = 0.0
    """Wall-clock time to grade this submission."""

    @property
    def score(self) -> float:
        return float(sum(t.score for t in self.tests))

    @property
    def max_score(self) -> float:
        return float(sum(t.max_score for t in self.tests))

    @property
    def tier_warning(self) -> str:
        """A warning when the student's code ran in the weakest configuration, else ""
        (see nnkit.sandbox.backend.tier_warning)."""
        from nnkit.sandbox.backend import tier_warning  # not at the top: the student release has no sandbox

        return tier_warning(self.tier)

    def part_score(self, part: str) -> float:
        """Points earned in one part."""
        return float(sum(t.score for t in self.tests if t.part == part))

    def part_max(self, part: str) -> float:
        return float(sum(t.max_score for t in self.tests if t.part == part))

    def failed(self, part: str) -> list[TestResult]:
        """The failed tests of one part, in test order."""
        return [t for t in self.tests if t.part == part and not t.passed]

    @property
    def status(self) -> str:
        """"ok", or the reasons grading was not clean, joined by "; "."""
        return "; ".join(self.problems) if self.problems else "ok"

    def csv_row(self) -> dict:
        """One row of grades.csv (see CSV_COLUMNS)."""
        row = {"submission": self.submission, "score": _num(self.score), "max_score": _num(self.max_score)}
        row |= {part: _num(self.part_score(part)) for part in PARTS}
        row |= {"status": self.status, "tier": f"{self.tier_warning} {self.tier}".strip(),
                "seconds": f"{self.seconds:.1f}",
                "tests_passed": sum(t.passed for t in self.tests), "tests_total": len(self.tests)}
        return row

    def to_gradescope(self, visibility: dict[str, str]) -> dict:
        """Gradescope's results.json: score, execution_time, output, tests."""
        lines = [f"Score: {_num(self.score)} / {_num(self.max_score)}."]
        causes = _catalogue()
        for part in PARTS:
            lines.append(f"{part}: {_num(self.part_score(part))} / {_num(self.part_max(part))}")
            # Only tests students may see now (this summary is visible before hidden tests are), and
            # not the untouched stubs: each test says "not implemented yet" itself.
            shown = [t for t in self.failed(part) if visibility.get(t.suite, "visible") == "visible"
                     and t.kind != "not-implemented"]
            lines += grouping.summary_lines(grouping.group_failures(shown, causes))
        lines += self.notes
        lines += [self.tier_warning] if self.tier_warning else []
        lines.append(f"Isolation: {self.tier}.")
        return {
            "score": self.score,
            "execution_time": int(round(self.seconds)),
            "output": "\n".join(lines),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": [
                {
                    "name": f"{t.part}: {t.name}",
                    "score": t.score,
                    "max_score": t.max_score,
                    "status": "passed" if t.passed else "failed",
                    "output": t.output,
                    "visibility": visibility.get(t.suite, "visible"),
                    "tags": [t.part, t.suite],
                }
                for t in self.tests
            ],
        }

    def feedback_markdown(self) -> str:
        """feedback.md: what the student reads first."""
        out = [f"# Feedback for {self.submission}", "",
               f"**Score: {_num(self.score)} / {_num(self.max_score)}**", "",
               "| Part | Points | Tests passed |", "|---|---|---|"]
        for part in PARTS:
            tests = [t for t in self.tests if t.part == part]
            out.append(f"| {part} | {_num(self.part_score(part))} / {_num(self.part_max(part))} "
                       f"| {sum(t.passed for t in tests)} / {len(tests)} |")
        if self.notes:
            out += ["", "## About your files", ""] + [f"- {n}" for n in self.notes]
        causes = _catalogue()
        for part in PARTS:
            failed = self.failed(part)
            if failed:
                out += ["", f"## {part}", ""] + grouping.markdown(grouping.group_failures(failed, causes))
        out += ["", f"**{self.tier_warning}** _(Isolation: {self.tier}.)_" if self.tier_warning
                else f"_Your code ran in an isolated sandbox ({self.tier})._", ""]
        return "\n".join(out)

    def to_json(self) -> dict:
        """Everything, for the class report and regrading comparisons."""
        data = asdict(self)
        data |= {"score": self.score, "max_score": self.max_score, "status": self.status,
                 "tier_warning": self.tier_warning}
        return data

    @classmethod
    def from_json(cls, data: dict) -> "SubmissionResult":
        tests = [TestResult(**t) for t in data.get("tests", [])]
        keep = {k: data[k] for k in ("submission", "problems", "notes", "tier", "seconds") if k in data}
        return cls(tests=tests, **keep)


def _catalogue() -> dict:
    """The catalogue of causes; without a readable one, failures are listed one by one."""
    try:
        return catalogue()
    except CatalogueError:
        return {}


def _num(x: float) -> str:
    """Points as text: 12 rather than 12.0, 2.5 as it is."""
    return f"{x:g}"


def write_submission(result: SubmissionResult, folder: Path, visibility: dict[str, str]) -> None:
    """Write results.json (Gradescope), feedback.md and result.json (full) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(result.to_gradescope(visibility), indent=2) + "\n")
    (folder / "feedback.md").write_text(result.feedback_markdown())
    (folder / "result.json").write_text(json.dumps(result.to_json(), indent=2) + "\n")
