"""Grading where Linux's confinement is missing (macOS, no root, an old kernel).

The kit must still grade there, and every report must say plainly that the
student's code ran with resource limits only. The weakest configuration is
the rlimits tier without Landlock; ``NNKIT_NO_LANDLOCK=1`` makes a Linux
machine grade as one without Landlock would, which is how it is tested here.
"""
from __future__ import annotations

import csv
import fcntl
import html
import json
import os
import resource
import shutil
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest

from nnkit.sandbox import landlock

from nnkit.grading import runner

from nnkit.sandbox import backend as sandbox
from nnkit.course.config import AUTOGRADER_CONFIG_PATH, EXAMPLES_DIR, ROOT
from nnkit.grading.gradescope import validate_results
from nnkit.sandbox.landlock import NO_LANDLOCK_ENV
from nnkit.grading.proxy import GraderError
from nnkit.reports.report import write_report
from nnkit.grading.results import SubmissionResult
from nnkit.sandbox.backend import (TIER_DESCRIPTIONS, UNCONFINED_ADVICE, UNCONFINED_DESCRIPTION, UNCONFINED_WARNING,
                           SandboxBackend, tier_warning)

TEMPLATE = EXAMPLES_DIR / "template"


def _probe_package(tmp_path: Path) -> Path:
    """A staged package whose relu reports whether it could read the course secret's file."""
    root = tmp_path / "pkg"
    (root / "scratchnet").mkdir(parents=True)
    (root / "scratchnet" / "__init__.py").write_text("")
    (root / "scratchnet" / "activations.py").write_text(textwrap.dedent(f"""
        import numpy as np

        def relu(z):
            try:
                with open({str(AUTOGRADER_CONFIG_PATH)!r}) as f:
                    secret_read = "course_secret" in f.read()
            except OSError:
                secret_read = False
            return {{"relu": np.maximum(z, 0.0), "secret_read": secret_read}}
    """))
    for path in [tmp_path, root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return root


def _rlimits_backend(root: Path) -> SandboxBackend:
    try:
        return SandboxBackend({None: root}, {"tier": "rlimits"})
    except GraderError as exc:
        pytest.skip(f"the rlimits tier is not available here: {exc}")


def test_only_the_rlimits_tier_without_landlock_is_warned_about():
    """Is the warning given for the rlimits tier without Landlock, and for no stronger configuration?"""
    assert tier_warning(UNCONFINED_DESCRIPTION) == UNCONFINED_WARNING
    assert "no Landlock" in UNCONFINED_DESCRIPTION and UNCONFINED_DESCRIPTION.startswith("rlimits:")
    for abi in (1, 4, 6):
        described = sandbox._describe_tiers(abi)
        assert all(tier_warning(text) == "" for text in described.values()), described
    assert tier_warning(sandbox._describe_tiers(0)["setuid"]) == ""
    result = SubmissionResult(submission="ada", tier=TIER_DESCRIPTIONS["bwrap"])
    assert "Warning" not in result.feedback_markdown() and "Warning" not in result.csv_row()["tier"]
    assert "Warning" not in result.to_gradescope({})["output"] and result.to_json()["tier_warning"] == ""


def _refuse_address_space_limit(monkeypatch) -> None:
    """setrlimit fails for RLIMIT_AS, as on macOS (in the worker too: it is forked from here)."""
    setrlimit = resource.setrlimit

    def refusing(kind, limits):
        if kind == resource.RLIMIT_AS:
            raise ValueError("current limit exceeds maximum limit")
        setrlimit(kind, limits)

    monkeypatch.setattr(resource, "setrlimit", refusing)


def test_the_report_says_how_many_submissions_ran_unconfined(tmp_path):
    """When only some submissions ran in the weakest configuration, does the banner say how many,
    and is there no banner when none did?"""
    results = [SubmissionResult(submission="ada", tier=UNCONFINED_DESCRIPTION),
               SubmissionResult(submission="bob", tier=TIER_DESCRIPTIONS["bwrap"])]
    page = write_report(results, tmp_path / "mixed").read_text()
    assert f"{html.escape(UNCONFINED_WARNING)}</strong> This concerns 1 submission." in page
    assert "class='banner'" not in write_report(results[1:], tmp_path / "strong").read_text()


def test_the_kit_grades_where_linux_only_calls_are_missing(tmp_path, monkeypatch):
    """Without Landlock, prctl, setpriv, bubblewrap, sched_setaffinity, big pipes or an address-space
    limit (as on macOS, not root), does the kit pick the rlimits tier, run the student's code, and
    describe it as unconfined?"""
    monkeypatch.setattr(landlock, "sys", types.SimpleNamespace(platform="darwin"))
    monkeypatch.setattr(os, "geteuid", lambda: 501)
    monkeypatch.delattr(os, "sched_setaffinity")
    monkeypatch.delattr(os, "sched_getaffinity")
    which = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in ("setpriv", "prlimit", "bwrap")
                        else which(name, *a, **k))
    monkeypatch.setattr(sandbox, "ctypes", types.SimpleNamespace(CDLL=lambda *a, **k: types.SimpleNamespace()))
    real_fcntl = fcntl.fcntl

    def no_pipe_sizes(fd, cmd, *args):
        if cmd == getattr(fcntl, "F_SETPIPE_SZ", 1031):
            raise OSError(22, "Invalid argument")
        return real_fcntl(fd, cmd, *args)

    monkeypatch.setattr(fcntl, "fcntl", no_pipe_sizes)
    _refuse_address_space_limit(monkeypatch)
    monkeypatch.setattr(sandbox, "LIMITS_MAY_BE_REFUSED", True)

    assert landlock.landlock_abi() == 0 and landlock.landlock_ruleset(["/usr"], ["/tmp"]) is None
    assert sandbox.become_subreaper() is False
    sandbox.keep_on_cpu(0)  # no affinity to set: nothing happens
    slots = runner._cpu_slots(2)
    assert [slots.get(), slots.get()] == [None, None]
    assert sandbox.detect_tier() == "rlimits" and not sandbox.forking_available("rlimits")
    assert tier_warning(sandbox._describe_tiers(landlock.landlock_abi())["rlimits"]) == UNCONFINED_WARNING

    backend = SandboxBackend({None: _probe_package(tmp_path)}, {})
    try:
        assert backend.tier == "rlimits"
        answer = backend.call(None, "relu", (np.array([-1.0, 2.0]),), {}).value
        assert answer["relu"].tolist() == [0.0, 2.0]
        worker = next(iter(backend.workers.values()))
        assert worker.proc.args[0] == str(sandbox._python_paths()["executable"])  # no setpriv in front
    finally:
        backend.close()


def test_on_linux_a_refused_limit_stops_the_worker(tmp_path, monkeypatch):
    """On Linux, where every limit must hold, is a refused limit a grader error rather than skipped?"""
    _refuse_address_space_limit(monkeypatch)
    monkeypatch.setattr(sandbox, "LIMITS_MAY_BE_REFUSED", False)
    backend = _rlimits_backend(_probe_package(tmp_path))
    try:
        with pytest.raises(GraderError, match="could not start the worker"):
            backend.call(None, "relu", (np.zeros(2),), {})
    finally:
        backend.close()


def test_as_root_the_rlimits_tier_needs_setpriv(monkeypatch):
    """Run as root without setpriv, is the rlimits tier refused (its worker would keep root's powers)?"""
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(GraderError, match="rlimits"):
        sandbox.detect_tier("rlimits")


def test_no_landlock_switch_is_honest(tmp_path, monkeypatch):
    """With NNKIT_NO_LANDLOCK=1, do the rlimits workers really run unconfined (so the warning is true),
    and does the test process that starts them get the switch too?"""
    monkeypatch.setenv(NO_LANDLOCK_ENV, "1")
    assert landlock.landlock_abi() == 0
    assert runner._pytest_env()[NO_LANDLOCK_ENV] == "1"
    backend = _rlimits_backend(_probe_package(tmp_path))
    try:
        assert backend.call(None, "relu", (np.zeros(2),), {}).value["secret_read"] is True
    finally:
        backend.close()
    monkeypatch.delenv(NO_LANDLOCK_ENV)
    assert NO_LANDLOCK_ENV not in runner._pytest_env()
    if landlock.landlock_abi() > 0:  # the same probe, confined: the file is out of its reach
        backend = _rlimits_backend(_probe_package(tmp_path / "confined"))
        try:
            assert backend.call(None, "relu", (np.zeros(2),), {}).value["secret_read"] is False
        finally:
            backend.close()


@pytest.mark.slow
def test_every_report_warns_when_student_code_ran_with_rlimits_only(tmp_path):
    """Graded in the rlimits tier without Landlock, do the printed summary, grades.csv, report.html,
    feedback.md, results.json and result.json all carry the warning?"""
    submissions = tmp_path / "submissions"
    shutil.copytree(TEMPLATE, submissions / "template")
    out = tmp_path / "out"
    env = {**os.environ, NO_LANDLOCK_ENV: "1"}
    done = subprocess.run([sys.executable, "-m", "nnkit", "grade", str(submissions), "--out", str(out),
                           "--tier", "rlimits", "--jobs", "1", "--no-progress"],
                          capture_output=True, text=True, cwd=ROOT, env=env)
    if done.returncode == 2 and "not available here" in done.stderr:
        pytest.skip(done.stderr.strip())
    assert done.returncode == 0, done.stderr[-3000:]

    summary = done.stdout[done.stdout.index("isolation:"):]
    assert f"isolation: {UNCONFINED_DESCRIPTION}\n{UNCONFINED_WARNING}\n{UNCONFINED_ADVICE}\n" in summary, summary

    with open(out / "grades.csv", newline="") as f:
        (row,) = csv.DictReader(f)
    assert row["tier"] == f"{UNCONFINED_WARNING} {UNCONFINED_DESCRIPTION}"

    page = (out / "report.html").read_text()
    banner = page.index("<p class='banner' role='alert'>")
    assert page.index(html.escape(UNCONFINED_WARNING), banner) < page.index(html.escape(UNCONFINED_ADVICE), banner)
    assert "This concerns every submission." in page[banner:page.index("</p>", banner)]
    assert banner < page.index("Student code ran in:") < page.index("<h2>Summary</h2>")

    feedback = (out / "template" / "feedback.md").read_text()
    assert f"**{UNCONFINED_WARNING}**" in feedback and "isolated sandbox" not in feedback

    gradescope = json.loads((out / "template" / "results.json").read_text())
    validate_results(gradescope)
    assert f"{UNCONFINED_WARNING}\nIsolation: {UNCONFINED_DESCRIPTION}." in gradescope["output"]

    record = json.loads((out / "template" / "result.json").read_text())
    assert record["tier_warning"] == UNCONFINED_WARNING and record["tier"] == UNCONFINED_DESCRIPTION
