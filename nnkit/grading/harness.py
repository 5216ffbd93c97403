"""The pytest plugin behind every suite: markers, fixtures, readable failures.

Load it with ``-p nnkit.grading.harness``. Two ways to run:

- Students (``make check``): ``--submission=DIR`` runs the public tests
  against the ``scratchnet`` package in DIR, in this process.
- The grader (nnkit.grading.runner): ``--grading-spec=FILE`` names a JSON file that
  says where each part's staged package is, which backend runs it (a
  sandboxed worker, or in-process for the overhead benchmark), where the
  reference is and where to record results.

Markers: ``part(name)`` (module level), ``points(n)`` (per test),
``gate(requirement)`` (a test whose failure means the part was not done as
asked: every test of the part then scores zero; see nnkit.grading.gates) and
``end_to_end`` (the MNIST test: all four student files, no reference swap).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import types
from pathlib import Path

import numpy as np
import pytest

from nnkit.testing.checks import CheckFailed
from nnkit.course.contract import FUNCTIONS, PARTS
from nnkit.grading.proxy import GraderError, NotImplementedYet, StudentCrash, StudentError, StudentTimeout, Submission

_STATE = types.SimpleNamespace(backend=None, spec=None, records=[], results_file=None, tier=None)


def pytest_addoption(parser):
    group = parser.getgroup("nnkit", "Neural Networks from Scratch grading")
    group.addoption("--submission", default=None,
                    help="folder holding your scratchnet package (default: the current folder)")
    group.addoption("--grading-spec", default=None, help="JSON spec written by the grader")


def pytest_configure(config):
    config.addinivalue_line("markers", "part(name): the graded part a test belongs to")
    config.addinivalue_line("markers", "points(n): points the test is worth")
    config.addinivalue_line("markers", "gate(requirement): when this test fails, every test of its part "
                                       "scores zero (see nnkit.grading.gates)")
    config.addinivalue_line("markers", "end_to_end: uses all four student files (no reference swap)")
    spec_path = config.getoption("--grading-spec")
    if spec_path:
        _STATE.spec = json.loads(Path(spec_path).read_text())
        _STATE.results_file = _STATE.spec.get("results")
        if _STATE.spec.get("cpu") is not None:  # one processor per parallel job (nnkit.grading.runner._cpu_slots)
            try:
                os.sched_setaffinity(0, {int(_STATE.spec["cpu"])})
            except (AttributeError, OSError, ValueError):
                pass
        if _STATE.spec.get("backend") == "sandbox" and not config.getoption("collectonly"):
            _backend(config).warm()  # started already by nnkit.grading.runner's test command, unless run otherwise


def _backend(config):
    if _STATE.backend is not None:
        return _STATE.backend
    spec = _STATE.spec
    if spec is None:
        from nnkit.grading.local import LocalBackend

        root = Path(config.getoption("--submission") or ".").resolve()
        _STATE.backend = LocalBackend(root)
    elif spec["backend"] == "local":
        from nnkit.grading.local import LocalBackend
        from nnkit.grading.stage import roots_by_part

        _STATE.backend = LocalBackend(roots_by_part(spec["roots"]))
    else:
        from nnkit.sandbox.backend import EARLY, SandboxBackend
        from nnkit.grading.stage import roots_by_part

        early = EARLY.pop(str(Path(config.getoption("--grading-spec")).resolve()), None)
        _STATE.backend = early or SandboxBackend(roots_by_part(spec["roots"]), spec)
    _STATE.tier = _STATE.backend.tier
    return _STATE.backend


def pytest_unconfigure(config):
    if _STATE.backend is not None:
        _STATE.backend.close()
        _STATE.backend = None


def part_of(item) -> str | None:
    """The part a test belongs to (from its ``part`` marker)."""
    marker = item.get_closest_marker("part")
    return marker.args[0] if marker else None


def points_of(item) -> float:
    """The points a test is worth (from its ``points`` marker; 0 without one)."""
    marker = item.get_closest_marker("points")
    return float(marker.args[0]) if marker else 0.0


def gate_of(item) -> str:
    """The requirement a test is the gate of (from its ``gate`` marker; "" for an ordinary test)."""
    marker = item.get_closest_marker("gate")
    return str(marker.args[0]) if marker else ""


def is_hidden(item) -> bool:
    """Hidden tests live in a folder named ``hidden``."""
    return "hidden" in Path(str(item.fspath)).parts


def _default_timeout():
    spec = _STATE.spec or {}
    return spec.get("limits", {}).get("call_timeout")


@pytest.fixture
def submission(request) -> Submission:
    """The student's code, configured for the part under test."""
    item = request.node
    part = part_of(item)
    if part not in PARTS:
        raise GraderError(f"{item.nodeid} has no valid part marker (got {part!r})")
    if item.get_closest_marker("end_to_end"):
        part = None
    item.nnkit_calls = []
    return Submission(_Recorder(_backend(request.config), item.nnkit_calls), part, timeout=_default_timeout())


class _Recorder:
    """A backend that notes the contract functions a test calls, then passes each call on."""

    def __init__(self, backend, calls: list):
        self._backend, self.calls = backend, calls

    def call(self, part, function, *args, **kwargs):
        self.calls.append(function)
        return self._backend.call(part, function, *args, **kwargs)

    def call_many(self, part, function, *args, **kwargs):
        self.calls.append(function)
        return self._backend.call_many(part, function, *args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._backend, name)


def function_under_test(item) -> str:
    """The first function of the test's own part that it called ("" if none): the function its
    outcome speaks for (the others of its part, if any, only help to compute what is expected)."""
    part = part_of(item)
    return next((f for f in getattr(item, "nnkit_calls", []) if FUNCTIONS.get(f) == part), "")


def _seed(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


@pytest.fixture
def rng(request) -> np.random.Generator:
    """Inputs of this test. Public tests: a fixed seed per test. Hidden tests:
    a seed derived from the course secret and the test's name, so inputs are
    unknown to students yet identical on every regrade."""
    name = request.node.nodeid.split("::", 1)[-1]
    if is_hidden(request.node):
        secret = (_STATE.spec or {}).get("secret")
        if not secret:
            raise GraderError("hidden tests need the course secret (run them through the grader)")
        return np.random.default_rng(_seed(f"{secret}:{name}"))
    return np.random.default_rng(_seed(f"public:{name}"))


class ReferencePackage:
    """The reference package's modules as attributes (``reference.forward``), each imported from the
    reference folder alone the first time a test asks for it."""

    def __init__(self, root: Path):
        self._root = root

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        from nnkit.grading.local import import_package

        if not (self._root / "scratchnet" / f"{name}.py").is_file():
            raise AttributeError(f"the reference package has no module {name!r}")
        try:
            module = import_package(self._root, [name])[name]
        except ImportError as exc:
            raise GraderError(f"the reference solution could not be imported: {exc}") from None
        setattr(self, name, module)
        return module


@pytest.fixture(scope="session")
def reference():
    """The reference solution's modules (grader only; never shipped to students), as attributes:
    ``reference.forward.init_params``."""
    if not (_STATE.spec and _STATE.spec.get("reference")):
        raise GraderError("the reference solution is not configured (run hidden tests through the grader)")
    return ReferencePackage(Path(_STATE.spec["reference"]))


@pytest.fixture(scope="session")
def grading_spec() -> dict:
    """The grader's spec (limits, MNIST cache path, ...); {} when students run the tests."""
    return dict(_STATE.spec or {})


# ---------------------------------------------------------------- reporting

def pytest_collection_finish(session):
    """With a spec naming a "manifest" file, write every collected test to it."""
    target = (_STATE.spec or {}).get("manifest")
    if not target:
        return
    items = [{"nodeid": item.nodeid, "name": item.nodeid.split("::", 1)[-1],
              "file": Path(str(item.fspath)).name, "part": part_of(item), "points": points_of(item),
              "gate": gate_of(item), "suite": "hidden" if is_hidden(item) else "public"} for item in session.items]
    Path(target).write_text(json.dumps(items, indent=1))


def pytest_collection_modifyitems(session, config, items):
    """Failures are reported as ``student_message`` (see pytest_runtest_makereport): spare pytest
    formatting a long traceback for each, which would cost more than many tests themselves.

    For students (no grading spec), the tests run part by part in the order of the
    assignment's config, the order they work in, rather than by file name."""
    for item in items:
        item.repr_failure = _student_repr
    if _STATE.spec is None:
        order = _part_order()
        items.sort(key=lambda item: order.get(part_of(item), len(order)))


def _part_order() -> dict:
    """Part -> its position in the assignment's config ({} when the config cannot be read)."""
    from nnkit.course.config import ConfigError, load_config

    try:
        return {part: i for i, part in enumerate(load_config().parts)}
    except (ConfigError, OSError):
        return {}


def _student_repr(excinfo, style=None) -> str:
    return student_message(excinfo.value)


def pytest_runtest_logstart(nodeid, location):
    """Record that a test started, so the grader knows which one a crash interrupted."""
    if _STATE.results_file:
        with open(_STATE.results_file, "a", encoding="utf-8") as f:
            f.write(json.dumps({"started": nodeid}) + "\n")


def student_message(exc: BaseException) -> str:
    """What the student reads for a failed test."""
    if isinstance(exc, NotImplementedYet):
        return exc.describe()
    if isinstance(exc, StudentError):
        return exc.describe()
    if isinstance(exc, (StudentTimeout, StudentCrash, CheckFailed)):
        return str(exc)
    if isinstance(exc, pytest.skip.Exception):
        return exc.msg
    if isinstance(exc, GraderError):
        return f"grader error: {exc} (this is not your fault; your instructor has been told)"
    if isinstance(exc, AssertionError):
        return str(exc).split("\nassert ")[0].strip() or "a check failed"
    return f"grader error: {type(exc).__name__}: {exc} (this is not your fault)"


def _kind(exc: BaseException | None) -> str:
    if exc is None:
        return "passed"
    if isinstance(exc, NotImplementedYet):
        return "not-implemented"
    if isinstance(exc, pytest.skip.Exception):
        return "skipped"
    if isinstance(exc, (StudentError, StudentTimeout, StudentCrash, CheckFailed, AssertionError)):
        return {StudentTimeout: "timeout", StudentCrash: "crash"}.get(type(exc), "failed")
    return "grader-error"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if call.when == "setup" and report.passed:
        return
    if call.when == "teardown" and report.passed:
        return
    exc = call.excinfo.value if call.excinfo is not None else None
    if exc is not None and not report.skipped:  # pytest keeps a skip's reason as (path, line, reason)
        report.longrepr = student_message(exc)
    if call.when == "call" or exc is not None:
        _record(item, exc, call.duration)


def _record(item, exc, duration):
    record = {
        "nodeid": item.nodeid,
        "name": item.nodeid.split("::", 1)[-1],
        "file": Path(str(item.fspath)).name,
        "suite": "hidden" if is_hidden(item) else "public",
        "part": part_of(item),
        "points": points_of(item),
        "gate": gate_of(item),
        "passed": exc is None,
        "kind": _kind(exc),
        "output": "" if exc is None else student_message(exc),
        "cause": getattr(exc, "cause", "") or "",
        "function": function_under_test(item),
        "seconds": round(duration, 4),
        "tier": _STATE.tier,
    }
    _STATE.records = [r for r in _STATE.records if r["nodeid"] != item.nodeid] + [record]
    if _STATE.results_file:
        with open(_STATE.results_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """Points per part, so a student sees at once where they stand (a failed gate applied, as the grader
    does), then each part's failures grouped by likely cause (nnkit.reports.grouping), in the order of the parts."""
    if not _STATE.records:
        return
    from nnkit.grading.gates import apply_gates, failed_gates
    from nnkit.grading.results import TestResult

    tests = [TestResult(name=r["name"], part=r["part"], suite=r["suite"], max_score=r["points"],
                        passed=r["passed"], kind=r["kind"], output=r["output"], gate=r.get("gate", ""))
             for r in _STATE.records]
    gates = failed_gates(tests)
    tests = apply_gates(tests)
    tr = terminalreporter
    tr.section("scratchnet: points per part")
    by_part = {}
    for t in tests:
        earned, possible, passed, total = by_part.get(t.part, (0.0, 0.0, 0, 0))
        by_part[t.part] = (earned + t.score, possible + t.max_score, passed + t.passed, total + 1)
    order = _part_order() or {p: i for i, p in enumerate(PARTS)}
    parts = sorted(by_part, key=lambda p: (order.get(p, len(order)), str(p)))
    for part in parts:
        earned, possible, passed, total = by_part[part]
        not_impl = sum(1 for t in tests if t.part == part and t.kind == "not-implemented")
        note = f"  ({not_impl} not implemented yet)" if not_impl else ""
        tr.write_line(f"  {str(part):<12} {passed:>3}/{total:<3} tests  {earned:g}/{possible:g} points{note}")
        if part in gates:
            tr.write_line(f"  {'':<12} gate failed: {gates[part].gate} (every test of this part scores zero)")
    for part in parts:
        lines = _grouped_failures(part)
        if lines:
            tr.write_line("")
            tr.write_line(f"  {part}:")
            for line in lines:
                tr.write_line(line)
    if _STATE.tier and _STATE.spec:
        tr.write_line(f"  isolation: {_STATE.tier}")


def _grouped_failures(part) -> list[str]:
    """The part's failures grouped by likely cause ("not implemented yet" ones left out: the
    part's line counts them); [] when none of them names a cause."""
    from nnkit.course.causes import CatalogueError, catalogue
    from nnkit.reports.grouping import group_failures, summary_lines

    failed = [types.SimpleNamespace(name=r["name"], suite=r["suite"], max_score=r["points"], output=r["output"],
                                    cause=r.get("cause", "")) for r in _STATE.records
              if r["part"] == part and not r["passed"] and r["kind"] != "not-implemented"]
    try:
        groups = group_failures(failed, catalogue())
    except CatalogueError:
        return []
    if not any(g.cause for g in groups):
        return []
    return summary_lines(groups, indent="    ")
