"""Does the sandbox hold when submissions attack the grader?

Every case of tests/hostile/ (the format is in tests/hostile/cases.py) is
graded together with the reference, in one batch per isolation tier this
machine offers, by the real grader: ``build_grader`` and ``grade_folder``
with two jobs, the MNIST test included. The grading limits are lowered
(LIMITS) so hanging submissions cost seconds, not minutes.

Per case: the tests it attacks fail, every other test passes as it does for
the reference, and the status column names the reason. Per batch: the
reference gets full marks; every results.json is valid and agrees with
grades.csv; no process of a submission outlives grading; nothing is
written outside the grader's own folders; and nothing changes in the
output folder afterwards.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from nnkit.course.config import ROOT, load_config
from nnkit.grading.grade import build_grader
from nnkit.grading.proxy import GraderError
from nnkit.grading.runner import grade_folder
from nnkit.sandbox.backend import detect_tier, landlock_abi
from tests.hostile.cases import GENERATORS, load_cases
from tests.hostile.cases import build as build_case
from tests.figures import report_figure
from tests.tiers import REQUIRED, tier_missing

CASES = load_cases()
REFERENCE_DIR = ROOT / "solutions" / "scratchnet"
REFERENCE = "reference"
"""Name of the reference's submission in the batch."""
TIERS = ("bwrap", "setuid", "rlimits")
LIMITS = {"call_timeout": 3.0, "submission_budget": 150.0}
"""Grading limits of the batch: a hanging call costs 3 s, a hanging submission 150 s (the reference needs about 60)."""
SETTLE_SECONDS = 4.0
"""How long after grading the output must stay unchanged (the daemon case rewrites every second)."""
PLANTED_NAMES = {"nnkit-hostile-escape.txt", "nnkit-hostile-escape-deep.txt", "nnkit-hostile-absolute.txt",
                 "nnkit-hostile-flood.bin"}
"""Files the cases try to create outside their sandbox."""
LITTER_PREFIX = "nnkit-hostile-litter-"
"""Files that files_outside_scratch writes to every world-writable place and home folder."""
LITTER_PLACES = ("/var/tmp", "/dev/shm", "/root", "/nonexistent", "/home")
FORGED_MARK = b"nnkit-hostile forged"


def _tier_available(tier: str) -> bool:
    try:
        return detect_tier(tier) == tier
    except GraderError:
        return False


def _tree_digest(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of the content (a symlink: its target), for every entry under ``folder``."""
    digest = {}
    for path in sorted(Path(folder).rglob("*")):
        rel = str(path.relative_to(folder))
        if path.is_symlink():
            digest[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            digest[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            digest[rel] = "dir" if path.is_dir() else "special"
    return digest


def _survivors(marker: str) -> list[str]:
    """Live processes that belong to the batch: children of this process, and any
    process whose command line or environment mentions the grader's temp folder
    (every worker's does: its staged package lives there)."""
    found = {}
    try:
        for proc in psutil.Process().children(recursive=True):
            found[proc.pid] = proc
    except psutil.Error:
        pass
    for proc in psutil.process_iter(["cmdline", "environ"]):
        info = proc.info
        text = " ".join(info.get("cmdline") or []) + " ".join((info.get("environ") or {}).values())
        if marker in text:
            found[proc.pid] = proc
    alive = []
    for pid, proc in sorted(found.items()):
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{pid} ({proc.username()}): {' '.join(proc.cmdline())[:160]}")
        except psutil.Error:
            pass
    return alive


def _planted(submissions: Path) -> list[str]:
    """Files the cases tried to plant outside their sandbox, wherever they landed."""
    found = [str(p) for p in (Path("/autograder"), submissions.parent / "forward.py") if p.exists()]
    for top in map(Path, LITTER_PLACES):  # where the litter lands, if anywhere (top level only)
        found += [str(p) for p in (top.glob(LITTER_PREFIX + "*") if top.is_dir() else ())]
    for top in dict.fromkeys([Path(tempfile.gettempdir()), Path("/tmp")]):
        for folder, dirs, files in os.walk(top):
            if len(Path(folder).relative_to(top).parts) >= 7:
                dirs[:] = []
            for name in files:
                path = Path(folder) / name
                if name in PLANTED_NAMES or name.startswith(LITTER_PREFIX):
                    found.append(str(path))
                elif name == "results.json":
                    try:
                        if FORGED_MARK in path.read_bytes()[:4096]:
                            found.append(str(path))
                    except OSError:
                        pass
    found += [str(ROOT / name) for name in PLANTED_NAMES | {"results.json"} if (ROOT / name).exists()]
    return sorted(set(found))


@dataclass
class Batch:
    """One graded batch and what was observed around it."""

    tier: str
    cases: dict
    """Name -> expectations in this tier, for the cases graded in it."""
    results: dict
    out: Path
    seconds: float
    survivors: list[str] = field(default_factory=list)
    survivors_later: list[str] = field(default_factory=list)
    changed_later: list[str] = field(default_factory=list)
    planted_before: list[str] = field(default_factory=list)
    planted_after: list[str] = field(default_factory=list)
    grader_tmp_left: list[str] = field(default_factory=list)
    submissions_changed: bool = False


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    """The texts the cases' generators make (e.g. pretrained MNIST weights), once per module."""
    names = {case.generate for case in CASES if case.generate}
    if not names:
        return {}
    grader = build_grader(limits=LIMITS)
    return {name: GENERATORS[name](Path(grader.mnist["data"])) for name in names}


def _expectations(tier: str) -> dict:
    """Case name -> its expectations in ``tier``, for the cases that tier can grade here."""
    found = {case.name: case.expect.in_tier(tier, landlock_abi()) for case in CASES}
    return {name: expect for name, expect in found.items() if expect is not None}


@pytest.fixture(scope="module", params=TIERS)
def batch(request, generated, tmp_path_factory) -> Batch:
    """Grade the cases and the reference once per available tier, watching processes and files."""
    tier = request.param
    if not _tier_available(tier):
        tier_missing(f"isolation tier {tier!r} is not available on this machine")
    if tier == "rlimits" and os.geteuid() == 0 and REQUIRED:
        pytest.skip("in CI, this batch runs as an ordinary user, where instructors meet the rlimits tier "
                    "(tests/test_unprivileged_instructor.py)")
    if tier == "setuid" and REQUIRED:
        pytest.skip("in CI, this batch runs in the Gradescope-like container, where instructors meet the setuid "
                    "tier, with Landlock refused (tests/test_gradescope_container.py)")
    expectations = _expectations(tier)
    submissions = tmp_path_factory.mktemp(f"nnkit-hostile-submissions-{tier}")
    for case in CASES:
        if case.name in expectations:
            build_case(case, submissions, REFERENCE_DIR, generated)
    (submissions / REFERENCE).mkdir()
    for name in load_config().files.values():
        (submissions / REFERENCE / name).write_bytes((REFERENCE_DIR / name).read_bytes())
    grader_tmp = tmp_path_factory.mktemp(f"nnkit-hostile-gradertmp-{tier}")
    grader_tmp.chmod(0o711)  # as /tmp is for the grader's own folders: workers pass through to theirs
    out = tmp_path_factory.mktemp(f"nnkit-hostile-out-{tier}")
    grader = build_grader(tier=tier, limits=LIMITS)
    before = _tree_digest(submissions)
    planted_before = _planted(submissions)
    saved, tempfile.tempdir = tempfile.tempdir, str(grader_tmp)  # the grader's folders go here
    start = time.monotonic()
    try:
        results = grade_folder(grader, submissions, out, jobs=2, progress=False)
    finally:
        tempfile.tempdir = saved
    seconds = time.monotonic() - start
    found = Batch(tier=tier, cases=expectations, results={r.submission: r for r in results}, out=out,
                  seconds=seconds)
    found.survivors = _survivors(str(grader_tmp))
    output = _tree_digest(out)
    time.sleep(SETTLE_SECONDS)
    found.survivors_later = _survivors(str(grader_tmp))
    later = _tree_digest(out)
    found.changed_later = sorted(k for k in set(output) | set(later) if output.get(k) != later.get(k))
    found.planted_before, found.planted_after = planted_before, _planted(submissions)
    found.grader_tmp_left = sorted(str(p) for p in grader_tmp.iterdir())
    found.submissions_changed = _tree_digest(submissions) != before
    report_figure(f"\n[{tier}] graded {len(results)} submissions in {seconds:.0f} s (jobs=2)")
    return found


# ------------------------------------------------------------------ the corpus


def test_every_case_builds(tmp_path):
    """Does every attack.toml load, apply to the current reference and build a submission?"""
    assert len(CASES) >= 20
    values = {name: "AAAA" for name in GENERATORS}
    for case in CASES:
        built = build_case(case, tmp_path, REFERENCE_DIR, values)
        assert built.exists(), case.name
        for pattern in case.expect.fail:
            re.compile(pattern)


# ------------------------------------------------------------------ the batch


@pytest.mark.slow
def test_batch_grades_every_submission(batch):
    """Does the batch finish with a full result for every submission, and the reference at full marks?"""
    assert set(batch.results) == set(batch.cases) | {REFERENCE}
    reference = batch.results[REFERENCE]
    failed = [f"{t.part}: {t.name}: {t.output}" for t in reference.tests if not t.passed]
    assert reference.score == reference.max_score == load_config().max_score, failed
    assert reference.status == "ok"
    for result in batch.results.values():
        assert len(result.tests) == len(reference.tests), result.submission


@pytest.mark.slow
def test_results_files_are_valid(batch):
    """Is every results.json valid Gradescope JSON whose score adds up, and does grades.csv agree?"""
    max_score = load_config().max_score
    for name, result in batch.results.items():
        data = json.loads((batch.out / name / "results.json").read_text())
        assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"])), name
        assert sum(t["max_score"] for t in data["tests"]) == pytest.approx(max_score), name
        assert data["score"] == pytest.approx(result.score), name
        full = json.loads((batch.out / name / "result.json").read_text())
        assert full["score"] == pytest.approx(result.score) and full["status"] == result.status, name
    with open(batch.out / "grades.csv", newline="") as f:
        rows = {row["submission"]: row for row in csv.DictReader(f)}
    assert set(rows) == set(batch.results)
    for name, result in batch.results.items():
        assert float(rows[name]["score"]) == pytest.approx(result.score), name
        assert rows[name]["status"] == result.status, name


@pytest.mark.slow
def test_no_process_survives(batch):
    """Is every process the submissions started gone once grading returns, and still gone a few seconds later?"""
    assert batch.survivors == []
    assert batch.survivors_later == []


@pytest.mark.slow
def test_nothing_written_outside(batch):
    """Did no submission write outside its sandbox: no planted or forged file, the grader's
    temp folder emptied, the submissions untouched?"""
    assert batch.planted_before == [], "left over from an earlier run: remove them and rerun"
    assert batch.planted_after == []
    assert batch.grader_tmp_left == []
    assert not batch.submissions_changed


@pytest.mark.slow
def test_output_unchanged_after_grading(batch):
    """Does the output folder stay exactly as the grader left it?"""
    assert batch.changed_later == []


# ------------------------------------------------------------------ each case


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_attack_is_contained(batch, case):
    """Does the attack cost exactly the tests it breaks, earn nothing, and show in the status?"""
    if case.name not in batch.cases:
        pytest.xfail(f"the rlimits tier contains {case.name} only with Landlock ABI {case.expect.landlock} "
                     f"(this kernel: {landlock_abi()}); not graded here")
    expect = batch.cases[case.name]
    result, reference = batch.results[case.name], batch.results[REFERENCE]
    reference_passed = {(t.part, t.name): t.passed for t in reference.tests}
    for pattern in expect.fail:
        assert any(re.fullmatch(pattern, f"{t.part}:{t.name}") for t in result.tests), \
            f"no test matches {pattern!r}: update {case.name}/attack.toml"
    wrong = []
    for t in result.tests:
        if expect.must_fail(t.part, t.name):
            if t.passed:
                wrong.append(f"passed although attacked: {t.part}: {t.name}")
            elif expect.output not in t.output:
                wrong.append(f"message lacks {expect.output!r}: {t.part}: {t.name}: {t.output}")
        elif t.passed != reference_passed[(t.part, t.name)]:
            wrong.append(f"{'lost' if not t.passed else 'gained'} an honest test: {t.part}: {t.name}: {t.output}")
    assert wrong == []
    for reason in expect.status:
        assert reason in result.status, f"status {result.status!r} does not name {reason!r}"
