"""Measurements the slow tests report: seconds per submission, peak memory and the like."""
from __future__ import annotations

FIGURES: list[str] = []
"""Printed at the end of the run (tests/conftest.py), since pytest keeps a passing test's output to itself."""


def report_figure(line: str) -> None:
    """Print ``line`` now (seen with -s) and again in the run's closing summary."""
    print(line)
    FIGURES.append(line.strip())
