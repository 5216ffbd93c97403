"""Gates: tests whose failure means a part was not done as the assignment asks.

A test marked ``@pytest.mark.gate("requirement")`` is a gate of its part
(e.g. "backward must compute gradients by backpropagation"). When a gate
fails on the student's code, every test of that part scores zero: each test
it zeroes says so in one line that names the requirement, and the gate's own
message starts with it. Gates carry no points of their own.

A gate fails when its test ends "failed", "timeout" or "crash" (the test
process killed during it counts: a crash cannot dodge a gate). A gate that
did not decide leaves its part alone: "not-implemented" (the function is not
written yet), "skipped" (the test could not measure, e.g. the function fails
on every input, which the part's other tests report), "grader-error", and a
test that never ran (the submission's time budget ran out before it, or the
submission could not be read).

Applied where a submission's results are assembled (nnkit.grading.runner, after the
test process is gone), so the order of the tests cannot avoid it, and to the
points summary students see after `make check` (nnkit.grading.harness).
"""
from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace

from nnkit.grading.results import TestResult

GATE_FAILURES = frozenset({"failed", "timeout", "crash"})
"""Kinds of a gate test's outcome that fail the gate."""


def failed_gates(tests: list[TestResult], unreached: Collection[int] = ()) -> dict[str, TestResult]:
    """Part -> its first failed gate test. ``unreached``: positions in ``tests`` of tests that never ran."""
    failed: dict[str, TestResult] = {}
    for i, test in enumerate(tests):
        if test.gate and test.kind in GATE_FAILURES and i not in unreached:
            failed.setdefault(test.part, test)
    return failed


def apply_gates(tests: list[TestResult], unreached: Collection[int] = ()) -> list[TestResult]:
    """``tests`` with every failed gate applied (new objects where something changes).

    In a part whose gate failed, each test that passed scores zero (kind
    "gated") and says why; tests that failed keep their own message; the gate
    test's message starts with the requirement it checks.
    """
    failed = failed_gates(tests, unreached)
    out = []
    for test in tests:
        gate = failed.get(test.part)
        if gate is None:
            out.append(test)
        elif test.gate and test.kind in GATE_FAILURES:
            out.append(replace(test, output=f"{test.gate}; failing it makes every test of {test.part} score "
                                            f"zero: {test.output}"))
        elif test.passed:
            out.append(replace(test, passed=False, kind="gated",
                               output=f"{gate.gate}: {gate.name} failed, so every test of {test.part} scores "
                                      "zero (this test passed on its own)"))
        else:
            out.append(test)
    return out
