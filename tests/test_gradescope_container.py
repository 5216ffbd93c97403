"""Does the Gradescope zip grade correctly in a container that behaves like Gradescope's?

The image is built from ``dist/autograder.zip`` by running its ``setup.sh`` as
root in a Debian root file system (``tests/gradescope/container.py``); then
each submission gets a fresh container running ``run_autograder`` as root with
Docker's default capabilities, a seccomp filter that refuses namespaces as
Docker's does, 768 MB and half a CPU. Bubblewrap cannot start there, so the
grader uses its ``setuid`` tier. Two seccomp filters are used: Docker's, and
one that also refuses Landlock, as Docker releases whose profile predates it do.

As an instructor may, the image's config shortens ``call_timeout`` so that the
hostile cases that hang cost seconds; the host grades with the same limits
when scores are compared.
"""
from __future__ import annotations

import re
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from nnkit.releases import release
from nnkit.course.config import ASSIGNMENT, EXAMPLES_DIR, load_config
from nnkit.grading.gradescope import validate_results
from nnkit.grading.grade import build_grader
from nnkit.grading.runner import grade_folder
from tests.gradescope.container import (Gradescope, base_rootfs, rootfs_key, seccomp_program,
                                        tools_missing)
from tests.hostile.cases import GENERATORS, load_cases
from tests.hostile.cases import build as build_case
from tests.figures import report_figure
from tests.tiers import tier_missing

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = EXAMPLES_DIR
REFERENCE_DIR = ROOT / "solutions" / "scratchnet"
CACHE = ROOT / "build" / "gradescope"
LIMITS = {"call_timeout": 3.0}
"""The image's grading limits (see the module's docstring)."""
CONTAINERS_AT_ONCE = 4
"""Half a CPU each: four keep two processors busy."""
LANDLOCK_ABI_IN_CONTAINER = {True: 6, False: 0}
"""What the hostile cases' expectations assume of each filter (Docker's allows this kernel's Landlock)."""


def _shorten_limits(source: Path) -> None:
    config = source / "assignments" / ASSIGNMENT / "config.toml"
    text = config.read_text()
    text, count = re.subn(r"(?m)^call_timeout = .*$", f"call_timeout = {LIMITS['call_timeout']:g}", text)
    assert count == 1, "config.toml has no call_timeout line to shorten"
    config.write_text(text)


@pytest.fixture(scope="module")
def gradescope(tmp_path_factory) -> Gradescope:
    """The autograder image, built from a freshly built zip with setup.sh."""
    missing = tools_missing()
    if missing:
        tier_missing(f"the Gradescope-like container needs {', '.join(missing)}")
    rootfs = base_rootfs(CACHE)
    zip_path = release.build_autograder(tmp_path_factory.mktemp("dist") / "autograder", check=False).zip_path
    work = tmp_path_factory.mktemp("gradescope")
    image = Gradescope(work, rootfs, pip_cache=CACHE / "pip-cache")
    image.build(zip_path, seccomp=seccomp_program(work, landlock=True), edit=_shorten_limits)
    report_figure(f"\n[gradescope] base {rootfs.name} (key {rootfs_key()}); setup.sh took {image.setup_seconds:.0f} s")
    return image


def _runs(image: Gradescope, submissions: dict[str, Path], landlock: bool) -> dict:
    seccomp = seccomp_program(image.workdir, landlock=landlock)
    with ThreadPoolExecutor(CONTAINERS_AT_ONCE) as pool:
        futures = {name: pool.submit(image.run, path, seccomp=seccomp) for name, path in submissions.items()}
        runs = {name: future.result() for name, future in futures.items()}
    seconds = [r.seconds for r in runs.values()]
    peaks = [r.peak_bytes for r in runs.values() if r.peak_bytes]
    limits = next(iter(runs.values())).limits
    report_figure(f"\n[gradescope, Landlock {'allowed' if landlock else 'refused'}] {len(runs)} submissions: "
          f"{sum(seconds) / len(seconds):.1f} s each on average (max {max(seconds):.1f} s), peak memory "
          f"{max(peaks) / 2**20:.0f} MB; limits applied: {', '.join(limits) or 'none'}")
    return runs


def _tests(results: dict) -> dict[tuple[str, str], dict]:
    return {(t["tags"][0], t["name"].split(": ", 1)[1]): t for t in results["tests"]}


def _check_run(run) -> None:
    assert run.results is not None, f"{run.name}: no results.json\n{run.log[-3000:]}"
    validate_results(run.results)
    assert run.left_running == [], f"{run.name}: still running after run_autograder: {run.left_running}"
    assert run.processes_after_exit == [], f"{run.name}: processes outlived the container"
    assert run.left_files == [], f"{run.name}: files left outside /autograder: {run.left_files}"


# ------------------------------------------------------------------ the examples


@pytest.fixture(scope="module")
def examples(gradescope) -> dict:
    submissions = {}
    for entry in sorted(EXAMPLES.iterdir()):
        if entry.is_dir() or entry.suffix == ".zip":
            submissions[entry.stem] = entry
    return _runs(gradescope, submissions, landlock=True)


@pytest.mark.every_assignment  # each assignment's zip: setup.sh grades its reference and template
def test_setup_graded_the_reference_and_the_template(gradescope):
    """Did setup.sh's --prepare grade the reference (full marks) and the template (zero) in the setuid tier?"""
    log = gradescope.setup_log
    assert "isolation tier setuid" in log, log[-2000:]
    assert re.search(r"self-check: the reference scored 100/100", log), log[-2000:]
    assert re.search(r"self-check: the student template scored 0/100", log), log[-2000:]


def test_examples_score_as_on_the_host(examples, tmp_path):
    """Does every bundled example get the score in the container that `make grade` gives it on the host?"""
    out = tmp_path / "out"
    host = {r.submission: r.score for r in grade_folder(build_grader(limits=LIMITS), EXAMPLES, out, jobs=2,
                                                        progress=False)}
    for name, run in examples.items():
        _check_run(run)
        assert "setuid" in run.results["output"], run.results["output"]
        assert run.score == host[name], f"{name}: {run.score:g} in the container, {host[name]:g} on the host"
    assert examples["reference"].score == load_config().max_score
    assert examples["template"].score == 0


def test_limits_were_applied(examples):
    """Were the memory and CPU limits really applied (this machine has cgroups)?"""
    run = examples["reference"]
    if not run.limits:
        tier_missing("this machine cannot make memory and CPU cgroups")
    assert any(text.startswith("memory 768 MB") for text in run.limits), run.limits
    assert any(text.startswith("cpu 0.5") for text in run.limits), run.limits
    assert run.peak_bytes is not None and run.peak_bytes < 768 << 20


# ------------------------------------------------------------------ memory


def test_a_copy_of_the_training_set_costs_that_test_only(gradescope, tmp_path):
    """Under 768 MB, does a train() that copies the training set lose the MNIST test with a clear
    memory-limit message, and nothing else: no other test, not the grader?"""
    submission = tmp_path / "copies"
    submission.mkdir()
    for name in load_config().files.values():
        shutil.copyfile(REFERENCE_DIR / name, submission / name)
    train = submission / "train.py"
    source = train.read_text()
    anchor = "    Y = one_hot(y, "
    assert source.count(anchor) == 1, "train.py changed: update this test's anchor"
    train.write_text(source.replace(anchor, "    X = X / 1.0  # a copy of the whole training set\n" + anchor))
    run = _runs(gradescope, {"copies": submission}, landlock=True)["copies"]
    _check_run(run)
    failed = {key: t for key, t in _tests(run.results).items() if t["status"] != "passed"}
    assert failed, "the copy was not noticed: is the memory limit applied?"
    for (part, name), test in failed.items():
        assert part == "training" and "mnist" in name, f"{part}: {name} failed: {test['output']}"
        assert "memory limit" in test["output"], test["output"]


# ------------------------------------------------------------------ the hostile corpus

CASES = load_cases()
FOLDER_CASES = [case for case in CASES if not case.zip_entries]
"""Gradescope unpacks a zip upload itself, so the cases that attack the kit's zip reader do not apply."""


@pytest.fixture(scope="module")
def hostile(gradescope, tmp_path_factory) -> tuple[dict, dict]:
    """The hostile corpus and the reference, each in its own container, with Landlock refused."""
    folder = tmp_path_factory.mktemp("hostile")
    names = {case.generate for case in CASES if case.generate}
    grader = build_grader(limits=LIMITS)
    generated = {name: GENERATORS[name](Path(grader.mnist["data"])) for name in names}
    submissions = {}
    for case in FOLDER_CASES:
        submissions[case.name] = build_case(case, folder, REFERENCE_DIR, generated)
    reference = folder / "the-reference"
    reference.mkdir()
    for name in load_config().files.values():
        shutil.copyfile(REFERENCE_DIR / name, reference / name)
    submissions["the-reference"] = reference
    return _runs(gradescope, submissions, landlock=False), submissions


def test_hostile_reference_gets_full_marks(hostile):
    runs, _ = hostile
    _check_run(runs["the-reference"])
    assert runs["the-reference"].score == load_config().max_score
    assert "no Landlock" in runs["the-reference"].results["output"]


@pytest.mark.parametrize("case", FOLDER_CASES, ids=[case.name for case in FOLDER_CASES])
def test_hostile_case_is_contained(hostile, case):
    """Does the attack cost exactly what it breaks, leave nothing behind and nothing running?"""
    runs, _ = hostile
    run = runs[case.name]
    _check_run(run)
    expect = case.expect.in_tier("setuid", LANDLOCK_ABI_IN_CONTAINER[False])
    reference = _tests(runs["the-reference"].results)
    wrong = []
    for key, test in _tests(run.results).items():
        passed = test["status"] == "passed"
        if expect.must_fail(*key):
            if passed:
                wrong.append(f"passed although attacked: {key}")
            elif expect.output not in test["output"]:
                wrong.append(f"message lacks {expect.output!r}: {key}: {test['output']}")
        elif passed != (reference[key]["status"] == "passed"):
            wrong.append(f"{'gained' if passed else 'lost'} an honest test: {key}: {test['output']}")
    assert wrong == []
